/* SPDX-License-Identifier: Apache-2.0
 *
 * rng.c: xoshiro256** (Blackman and Vigna) and the distributions built on it.
 * Written from the published algorithm descriptions.
 */
#include "ml/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void fl_rng_seed(fl_rng_t *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t fl_rng_next(fl_rng_t *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double fl_rng_uniform(fl_rng_t *r) {
  return (double)(fl_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t fl_rng_below(fl_rng_t *r, uint64_t n) {
  if (n <= 1) return 0;
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do v = fl_rng_next(r);
  while (v >= limit);
  return v % n;
}

double fl_rng_normal(fl_rng_t *r) {
  double u1 = fl_rng_uniform(r);
  double u2 = fl_rng_uniform(r);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double fl_rng_gamma(fl_rng_t *r, double shape) {
  if (!(shape > 0)) return 0;
  if (shape < 1) {
    /* Gamma(a) = Gamma(a + 1) * U^(1/a). */
    double u = fl_rng_uniform(r);
    if (u < 1e-300) u = 1e-300;
    return fl_rng_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
  }
  double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = fl_rng_normal(r);
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    double u = fl_rng_uniform(r);
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (u > 0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
  }
}

void fl_rng_shuffle_u32(fl_rng_t *r, uint32_t *a, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)fl_rng_below(r, i);
    uint32_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}
