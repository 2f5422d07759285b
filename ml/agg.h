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
} fl_ml_agg_opts_t;

/** Parses "fedavg", "krum", "multikrum", "median", "trimmed", "bulyan".
 *  Returns the rule or -1. */
int fl_ml_rule_parse(const char *s);
/** The rule's name as fl_ml_rule_parse accepts it. */
const char *fl_ml_rule_name(fl_ml_rule_t r);

/** Aggregates n updates (updates: n * dim, borrowed) into out (dim floats).
 *  weights (n entries, > 0; e.g. sample counts) are used by FedAvg and
 *  Multi-Krum and may be NULL for equal weights. selected (n bytes, may be
 *  NULL) gets 1 for each update that entered the result: all for FedAvg,
 *  median and trimmed mean; the chosen ones for Krum, Multi-Krum, Bulyan.
 *  Returns FL_EINVAL for n == 0, dim == 0, a non-positive weight, or too few
 *  updates for the rule (Krum/Multi-Krum n >= 2f + 3, trimmed n > 2f,
 *  Bulyan n >= 4f + 3). */
fl_status_t fl_ml_aggregate(const float *updates, const double *weights,
                            size_t n, size_t dim, const fl_ml_agg_opts_t *opts,
                            float *out /* out */, uint8_t *selected /* out */);

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
