/* SPDX-License-Identifier: Apache-2.0
 *
 * agg.h: robust aggregation rules and outlier scores for model updates.
 *
 * An update is a flat float vector of dim values (a client's model minus the
 * global model it started from). n updates are passed as one row-major
 * matrix updates[n * dim]. THE CALLER PASSES THE UPDATES IN A FIXED,
 * AGREED ORDER (the ledger sorts them by client id): the result is a pure
 * function of (updates in that order, weights, options).
 *
 * Determinism, because every peer of every organisation must produce the
 * same bytes: sums run in index order with double accumulators and are
 * rounded to float once at the end; sorts break ties by index; there are no
 * threads and no data-dependent parallelism; the build never uses
 * -ffast-math or FP contraction (cmake/FlWarnings.cmake). Results are thus
 * bit-identical across runs and processes on IEEE-754 machines with the same
 * libm (only sqrt is used, which IEEE requires to be correctly rounded).
 */
#ifndef FL_ML_AGG_H
#define FL_ML_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "common/base/status.h"

typedef enum fl_ml_rule_e {
  FL_ML_RULE_FEDAVG = 0,    /* sample-weighted mean */
  FL_ML_RULE_KRUM = 1,      /* the update with the lowest Krum score */
  FL_ML_RULE_MULTIKRUM = 2, /* weighted mean of the m lowest Krum scores */
  FL_ML_RULE_MEDIAN = 3,    /* coordinate-wise median */
  FL_ML_RULE_TRIMMED = 4,   /* coordinate-wise mean without f lowest/highest */
  FL_ML_RULE_BULYAN = 5,    /* Krum selection of n-2f, then per coordinate
                               the mean of the n-4f values nearest the median */
} fl_ml_rule_t;

typedef struct fl_ml_agg_opts_s {
  fl_ml_rule_t rule;
  uint32_t f;          /* assumed Byzantine updates (Krum, trimmed, Bulyan) */
  uint32_t m;          /* Multi-Krum: how many to average; 0 means n - f */
  double clip_norm;    /* > 0: scale each update to L2 norm <= clip_norm first */
  /* Optional pre-filters (all off when zero, the defaults): they run after
   * clipping and before the rule, in this order; an update they reject
   * does not enter the rule (selected[i] = 0), and the rule then runs on
   * the survivors with f lowered to what their count allows. Each filter
   * rejects nothing when it would reject half of the updates or more
   * (honest majority: it cannot tell who is honest then). */
  double collusion;    /* > 0: collusion filter with this ratio rho, see
                          fl_ml_filter_collusion (0.1 is a sane value) */
  uint8_t dir_filter;  /* 1: direction filter, see fl_ml_filter_direction */
  double dir_min_cos;  /* the direction filter's bound (e.g. 0) */
} fl_ml_agg_opts_t;

/** Parses "fedavg", "krum", "multikrum", "median", "trimmed", "bulyan".
 *  Returns the rule or -1. */
int fl_ml_rule_parse(const char *s);
/** The rule's name as fl_ml_rule_parse accepts it. */
const char *fl_ml_rule_name(fl_ml_rule_t r);

/** Aggregates n updates (updates: n * dim, borrowed) into out (dim floats).
 *  weights (n entries, > 0; e.g. sample counts) are used by FedAvg and
 *  Multi-Krum and may be NULL for equal weights. selected (n bytes, may be
 *  NULL) gets 1 for each update that entered the result: all that passed
 *  the pre-filters for FedAvg, median and trimmed mean; the chosen ones for
 *  Krum, Multi-Krum, Bulyan.
 *  Returns FL_EINVAL for n == 0, dim == 0, a non-positive weight, or too few
 *  updates for the rule (Krum/Multi-Krum n >= 2f + 3, trimmed n > 2f,
 *  Bulyan n >= 4f + 3; checked on n before the pre-filters). */
fl_status_t fl_ml_aggregate(const float *updates, const double *weights,
                            size_t n, size_t dim, const fl_ml_agg_opts_t *opts,
                            float *out /* out */, uint8_t *selected /* out */);

/** Collusion filter (in the spirit of FoolsGold, Fung et al. 2020: sybils
 *  that pursue one goal send updates far more alike than honest clients
 *  with their own data do; ALIE and IPM attackers send the same vector).
 *  With d_ij = 1 - cos(u_i, u_j) over all pairs i < j and D the median of
 *  those n(n-1)/2 values, a pair is "too close" when d_ij <= rho * D, i.e.
 *  its angular distance is a small fraction of the typical honest spread.
 *  Too-close pairs join updates into groups (connected components); every
 *  member of a group of two or more is rejected (reject[i] = 1, else 0),
 *  except that a group holding half of the updates or more is kept (it is
 *  then the majority, not a minority of sybils), and nothing is rejected
 *  when the rejections would add up to half of n or more. A zero update
 *  has cosine 0 with everything (never too close). Needs n >= 3 (fewer:
 *  nothing rejected). Deterministic: pairs in index order, double sums,
 *  ties in the median by value. Returns the number rejected. */
size_t fl_ml_filter_collusion(const float *updates, size_t n, size_t dim,
                              double rho, uint8_t *reject /* out, n */);
/** Direction filter: sets reject[i] = 1 for every update whose cosine to
 *  the coordinate-wise median of the n updates is below min_cos (other
 *  entries of reject are left as they are); sign-flip and IPM updates point
 *  against the honest majority's median. Updates marked in skip (may be
 *  NULL; e.g. the collusion filter's rejects) are left out of the median
 *  and are not judged. Rejects nothing when that would be half of the
 *  judged updates or more, or when the median is the zero vector. Returns
 *  the number rejected. */
size_t fl_ml_filter_direction(const float *updates, size_t n, size_t dim,
                              double min_cos, const uint8_t *skip,
                              uint8_t *reject /* out, n */);

/** L2 norm of v (double accumulator, index order). */
double fl_ml_norm(const float *v, size_t dim);
/** Cosine similarity of u and ref; 0 when either is the zero vector. */
double fl_ml_cosine(const float *u, const float *ref, size_t dim);
/** Robust z-score of the norm of u against the norms of n_ref reference
 *  updates: (|u| - median) / (1.4826 * MAD), with the MAD floored at
 *  1e-9 * max(median, 1) so that identical references do not divide by
 *  zero. n_ref == 0 returns 0. */
double fl_ml_score_norm_z(const float *u, size_t dim, const double *ref_norms,
                          size_t n_ref);
/** Krum score of u among others (n rows of dim): the sum of squared
 *  distances to its n - f - 2 nearest (at least 1) neighbours. */
double fl_ml_score_krum(const float *u, const float *others, size_t n,
                        size_t dim, uint32_t f);

#endif /* FL_ML_AGG_H */
