/* SPDX-License-Identifier: Apache-2.0
 *
 * attack.c: the poisoning attacks of attack.h.
 */
#include "ml/attack.h"

#include <math.h>
#include <string.h>

#include "common/base/alloc.h"

static const char *const names[] = {"none", "signflip", "gaussian", "scaling",
                                    "labelflip", "alie", "ipm"};

int fl_ml_attack_parse(const char *s) {
  for (int i = 0; i < 7; i++)
    if (strcmp(s, names[i]) == 0) return i;
  if (strcmp(s, "sign-flip") == 0) return FL_ML_ATTACK_SIGNFLIP;
  if (strcmp(s, "label-flip") == 0) return FL_ML_ATTACK_LABELFLIP;
  if (strcmp(s, "noise") == 0) return FL_ML_ATTACK_GAUSSIAN;
  return -1;
}

const char *fl_ml_attack_name(fl_ml_attack_t a) {
  return (unsigned)a < 7 ? names[a] : "unknown";
}

int fl_ml_attack_is_update(fl_ml_attack_t a) {
  return a != FL_ML_ATTACK_NONE && a != FL_ML_ATTACK_LABELFLIP &&
         (unsigned)a < 7;
}

double fl_ml_norm_ppf(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                             -2.759285104469687e+02, 1.383577518672690e+02,
                             -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                             -1.556989798598866e+02, 6.680131188771972e+01,
                             -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                             -2.400758277161838e+00, -2.549732539343734e+00,
                             4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                             2.445134137142996e+00, 3.754408661907416e+00};
  if (!(p > 0 && p < 1)) return p <= 0 ? -INFINITY : INFINITY;
  double x, q, r;
  if (p < 0.02425) {
    q = sqrt(-2 * log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - 0.02425) {
    q = p - 0.5;
    r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    q = sqrt(-2 * log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  /* One Halley step on the exact CDF. */
  double e = 0.5 * erfc(-x / sqrt(2)) - p;
  double u = e * 2.5066282746310002 * exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

double fl_ml_alie_z(uint32_t n, uint32_t f) {
  long s = (long)(n / 2 + 1) - (long)f;
  if (s <= 0 || s >= (long)n) return 0;
  return fl_ml_norm_ppf((double)((long)n - s) / (double)n);
}

fl_status_t fl_ml_attack_update(fl_ml_attack_t a, float *u, size_t dim,
                                const float *benign, size_t n_benign,
                                const fl_ml_attack_opts_t *o, fl_rng_t *rng) {
  if (u == NULL || o == NULL) return FL_EINVAL;
  switch (a) {
  case FL_ML_ATTACK_NONE:
    return FL_OK;
  case FL_ML_ATTACK_SIGNFLIP: {
    double k = o->scale > 0 ? o->scale : 1.0;
    for (size_t j = 0; j < dim; j++) u[j] = (float)(-k * (double)u[j]);
    return FL_OK;
  }
  case FL_ML_ATTACK_SCALING: {
    double k = o->scale > 0 ? o->scale : 10.0;
    for (size_t j = 0; j < dim; j++) u[j] = (float)(k * (double)u[j]);
    return FL_OK;
  }
  case FL_ML_ATTACK_GAUSSIAN: {
    if (rng == NULL) return FL_EINVAL;
    double s = o->sigma > 0 ? o->sigma : 1.0;
    for (size_t j = 0; j < dim; j++) u[j] = (float)(s * fl_rng_normal(rng));
    return FL_OK;
  }
  case FL_ML_ATTACK_ALIE:
  case FL_ML_ATTACK_IPM: {
    if (benign == NULL || n_benign == 0 || (a == FL_ML_ATTACK_ALIE && n_benign < 2))
      return FL_EINVAL;
    double z = o->z != 0 ? o->z : fl_ml_alie_z(o->n_total, o->n_malicious);
    double eps = o->eps > 0 ? o->eps : 0.5;
    for (size_t j = 0; j < dim; j++) {
      double s = 0, s2 = 0;
      for (size_t i = 0; i < n_benign; i++) {
        double v = benign[i * dim + j];
        s += v;
        s2 += v * v;
      }
      double mean = s / (double)n_benign;
      if (a == FL_ML_ATTACK_IPM) {
        u[j] = (float)(-eps * mean);
      } else {
        double var = s2 / (double)n_benign - mean * mean;
        u[j] = (float)(mean - z * (var > 0 ? sqrt(var) : 0));
      }
    }
    return FL_OK;
  }
  default:
    return FL_EINVAL;
  }
}

size_t fl_ml_attack_flip_labels(int32_t *y, size_t n, const fl_ml_attack_opts_t *o) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int hit = o->flip_src < 0 ? y[i] != o->flip_dst : y[i] == o->flip_src;
    if (hit && y[i] != o->flip_dst) {
      y[i] = o->flip_dst;
      k++;
    }
  }
  return k;
}
