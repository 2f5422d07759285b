/* SPDX-License-Identifier: Apache-2.0
 *
 * attack.h: poisoning attacks, for experiments and tests only.
 *
 * Update attacks rewrite a malicious client's update (a flat float vector,
 * client model minus global model) before it is sent; data attacks (label
 * flip) rewrite the labels the client trains on. ALIE and IPM are
 * "omniscient": they use the benign updates of the same round, as in the
 * papers that define them (Baruch et al. 2019; Xie et al. 2020).
 */
#ifndef FL_ML_ATTACK_H
#define FL_ML_ATTACK_H

#include <stddef.h>
#include <stdint.h>

#include "common/base/status.h"
#include "ml/rng.h"

typedef enum fl_ml_attack_e {
  FL_ML_ATTACK_NONE = 0,
  FL_ML_ATTACK_SIGNFLIP = 1,  /* u <- -scale * u */
  FL_ML_ATTACK_GAUSSIAN = 2,  /* u <- N(0, sigma^2) per coordinate */
  FL_ML_ATTACK_SCALING = 3,   /* u <- scale * u (model replacement) */
  FL_ML_ATTACK_LABELFLIP = 4, /* train on flipped labels (data attack) */
  FL_ML_ATTACK_ALIE = 5,      /* u <- mean - z * sd of the benign updates */
  FL_ML_ATTACK_IPM = 6,       /* u <- -eps * mean of the benign updates */
} fl_ml_attack_t;

typedef struct fl_ml_attack_opts_s {
  double scale;   /* sign flip (default 1) and scaling (default 10) */
  double sigma;   /* Gaussian (default 1) */
  double z;       /* ALIE; 0 = derived from n_total and n_malicious */
  double eps;     /* IPM (default 0.5) */
  uint32_t n_total;     /* clients in the round (ALIE's z) */
  uint32_t n_malicious; /* malicious clients in the round (ALIE's z) */
  int32_t flip_src;     /* label flip: class to relabel, -1 = all but dst */
  int32_t flip_dst;     /* label flip: the label they get */
} fl_ml_attack_opts_t;

/** Parses "none", "signflip", "gaussian", "scaling", "labelflip", "alie",
 *  "ipm" (also "sign-flip", "label-flip", "noise"). Returns -1 if unknown. */
int fl_ml_attack_parse(const char *s);
/** The attack's name as fl_ml_attack_parse accepts it. */
const char *fl_ml_attack_name(fl_ml_attack_t a);
/** True for the attacks applied by fl_ml_attack_update. */
int fl_ml_attack_is_update(fl_ml_attack_t a);

/** ALIE's z for n clients of which f are malicious:
 *  s = floor(n/2 + 1) - f, z = Phi^-1((n - s) / n). Returns 0 when s <= 0
 *  or s >= n. */
double fl_ml_alie_z(uint32_t n, uint32_t f);
/** Inverse of the standard normal CDF for p in (0, 1) (Acklam's rational
 *  approximation refined by one Halley step; |error| < 1e-12). */
double fl_ml_norm_ppf(double p);

/** Rewrites update u (dim floats) with attack a. benign (n_benign * dim,
 *  borrowed) is needed by ALIE and IPM; rng by Gaussian. FL_EINVAL for a
 *  data attack, a missing input, or ALIE/IPM with n_benign == 0 (ALIE needs
 *  2). NONE leaves u as it is. */
fl_status_t fl_ml_attack_update(fl_ml_attack_t a, float *u, size_t dim,
                                const float *benign, size_t n_benign,
                                const fl_ml_attack_opts_t *opts, fl_rng_t *rng);
/** Label flip: sets every label equal to flip_src (or, for flip_src -1,
 *  every label other than flip_dst) to flip_dst. Returns how many changed. */
size_t fl_ml_attack_flip_labels(int32_t *y, size_t n, const fl_ml_attack_opts_t *opts);

#endif /* FL_ML_ATTACK_H */
