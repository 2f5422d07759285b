/* SPDX-License-Identifier: Apache-2.0
 *
 * metrics.c: confusion matrices and the metrics derived from them.
 */
#include "ml/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

void fl_ml_confusion(const int32_t *y, const int32_t *pred, size_t n,
                     uint32_t k, uint64_t *cm) {
  memset(cm, 0, (size_t)k * k * sizeof *cm);
  for (size_t i = 0; i < n; i++)
    if (y[i] >= 0 && (uint32_t)y[i] < k && pred[i] >= 0 && (uint32_t)pred[i] < k)
      cm[(size_t)y[i] * k + (size_t)pred[i]]++;
}

void fl_ml_metrics_from_confusion(const uint64_t *cm, uint32_t k, fl_ml_metrics_t *o) {
  memset(o, 0, sizeof *o);
  uint64_t n = 0, correct = 0, tp = 0, fp = 0, fn = 0, tn = 0;
  for (uint32_t t = 0; t < k; t++)
    for (uint32_t p = 0; p < k; p++) {
      uint64_t c = cm[(size_t)t * k + p];
      n += c;
      if (t == p) correct += c;
      if (t != 0 && p != 0) tp += c;
      if (t == 0 && p != 0) fp += c;
      if (t != 0 && p == 0) fn += c;
      if (t == 0 && p == 0) tn += c;
    }
  o->n = n;
  o->accuracy = ratio((double)correct, (double)n);
  o->precision = ratio((double)tp, (double)(tp + fp));
  o->recall = ratio((double)tp, (double)(tp + fn));
  o->f1 = ratio(2.0 * o->precision * o->recall, o->precision + o->recall);
  o->fpr = ratio((double)fp, (double)(fp + tn));
  uint32_t used = 0;
  for (uint32_t c = 0; c < k; c++) {
    uint64_t row = 0, colsum = 0;
    for (uint32_t j = 0; j < k; j++) {
      row += cm[(size_t)c * k + j];
      colsum += cm[(size_t)j * k + c];
    }
    if (row == 0 && colsum == 0) continue;
    double pr = ratio((double)cm[(size_t)c * k + c], (double)colsum);
    double re = ratio((double)cm[(size_t)c * k + c], (double)row);
    o->macro_precision += pr;
    o->macro_recall += re;
    o->macro_f1 += ratio(2 * pr * re, pr + re);
    used++;
  }
  if (used) {
    o->macro_precision /= used;
    o->macro_recall /= used;
    o->macro_f1 /= used;
  }
}

void fl_ml_metrics(const int32_t *y, const int32_t *pred, size_t n, uint32_t k,
                   fl_ml_metrics_t *out) {
  uint64_t cm[64 * 64];
  if (k > 64) k = 64;
  fl_ml_confusion(y, pred, n, k, cm);
  fl_ml_metrics_from_confusion(cm, k, out);
}

double fl_ml_asr(const int32_t *y, const int32_t *pred, const int32_t *pred_clean,
                 size_t n, int32_t src, int32_t dst) {
  uint64_t base = 0, hit = 0;
  for (size_t i = 0; i < n; i++) {
    int in = src < 0 ? y[i] != dst : y[i] == src;
    if (!in || (pred_clean && pred_clean[i] != y[i])) continue;
    base++;
    if (pred[i] == dst) hit++;
  }
  return ratio((double)hit, (double)base);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double fl_ml_score_threshold(const float *score, size_t stride, const int32_t *y,
                             size_t n, double fpr, int flip) {
  double *s = fl_malloc((n ? n : 1) * sizeof(double));
  size_t nn = 0;
  for (size_t i = 0; i < n; i++)
    if (y[i] == 0) s[nn++] = flip ? 1.0 - (double)score[i * stride] : (double)score[i * stride];
  double t = 0.5;
  if (nn > 0) {
    qsort(s, nn, sizeof *s, cmp_double);
    size_t at = nn - 1;
    if (fpr > 0 && fpr < 1) {
      double q = floor((1.0 - fpr) * (double)nn);
      if (q < (double)(nn - 1)) at = (size_t)q;
    } else if (fpr >= 1) {
      at = 0;
    }
    t = s[at];
  }
  fl_free(s);
  return t;
}

double fl_ml_fpr_threshold(const float *proba, const int32_t *y, size_t n,
                           uint32_t k, double fpr) {
  return fl_ml_score_threshold(proba, k, y, n, fpr, 1);
}

void fl_ml_decide(const float *proba, size_t n, uint32_t k, double t, int32_t *pred) {
  for (size_t i = 0; i < n; i++) {
    const float *p = proba + i * k;
    if (k < 2 || 1.0 - (double)p[0] <= t) {
      pred[i] = 0;
      continue;
    }
    uint32_t best = 1;
    for (uint32_t j = 2; j < k; j++)
      if (p[j] > p[best]) best = j;
    pred[i] = (int32_t)best;
  }
}

void fl_ml_novelty_override(const float *proba, const float *novelty, size_t n,
                            uint32_t k, double t, int32_t *pred) {
  for (size_t i = 0; i < n; i++) {
    if (pred[i] != 0 || !((double)novelty[i] > t) || k < 2) continue;
    const float *p = proba + i * k;
    uint32_t best = 1;
    for (uint32_t j = 2; j < k; j++)
      if (p[j] > p[best]) best = j;
    pred[i] = (int32_t)best;
  }
}
