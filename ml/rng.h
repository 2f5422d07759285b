/* SPDX-License-Identifier: Apache-2.0
 *
 * rng.h: the small deterministic PRNG of ml/ (xoshiro256** seeded through
 * splitmix64), with the few distributions the experiments need.
 *
 * Every random choice in ml/ (weight init, shuffling, partitioning, attacks)
 * goes through an fl_rng_t the caller seeds, so a run is reproducible from its
 * seed on any machine with IEEE-754 doubles. rand() is never used. The
 * generator is a plain value type: copy it to fork a stream.
 */
#ifndef FL_ML_RNG_H
#define FL_ML_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct fl_rng_s {
  uint64_t s[4];
} fl_rng_t;

/** Seeds r from one 64-bit value (splitmix64 expansion; any seed is fine). */
void fl_rng_seed(fl_rng_t *r, uint64_t seed);
/** Next 64 random bits. */
uint64_t fl_rng_next(fl_rng_t *r);
/** Uniform double in [0, 1) with 53 random bits. */
double fl_rng_uniform(fl_rng_t *r);
/** Uniform integer in [0, n); n must be > 0. Unbiased (rejection). */
uint64_t fl_rng_below(fl_rng_t *r, uint64_t n);
/** Standard normal N(0, 1) (Box-Muller, one value per call). */
double fl_rng_normal(fl_rng_t *r);
/** Gamma(shape, 1) for shape > 0 (Marsaglia-Tsang; shape < 1 boosted). */
double fl_rng_gamma(fl_rng_t *r, double shape);
/** Fisher-Yates shuffle of a[0..n). */
void fl_rng_shuffle_u32(fl_rng_t *r, uint32_t *a, size_t n);

#endif /* FL_ML_RNG_H */
