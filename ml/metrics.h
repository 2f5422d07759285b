/* SPDX-License-Identifier: Apache-2.0
 *
 * metrics.h: classification metrics for intrusion detection.
 *
 * Class 0 is "normal" by convention of ml/'s loaders. The binary metrics
 * (precision, recall, F1, FPR) are detection metrics: positive = any class
 * other than 0, so they mean the same for 2-class and 5-class models. The
 * macro metrics average the per-class values over the classes that occur
 * in the labels or the predictions.
 */
#ifndef FL_ML_METRICS_H
#define FL_ML_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct fl_ml_metrics_s {
  uint64_t n;
  double accuracy;
  double precision, recall, f1, fpr; /* detection (positive = class != 0) */
  double macro_precision, macro_recall, macro_f1;
} fl_ml_metrics_t;

/** Fills cm (k * k, row = true class, column = predicted) from n pairs.
 *  Pairs with a class outside [0, k) are not counted. */
void fl_ml_confusion(const int32_t *y, const int32_t *pred, size_t n,
                     uint32_t k, uint64_t *cm /* out */);
/** Metrics from a k x k confusion matrix (k >= 2). Ratios with a zero
 *  denominator are 0. */
void fl_ml_metrics_from_confusion(const uint64_t *cm, uint32_t k,
                                  fl_ml_metrics_t *out /* out */);
/** Convenience: confusion + metrics. */
void fl_ml_metrics(const int32_t *y, const int32_t *pred, size_t n, uint32_t k,
                   fl_ml_metrics_t *out /* out */);
/** Attack success rate of a targeted poisoning: among rows whose true class
 *  is src (src < 0: any class but dst) and, when pred_clean is not NULL,
 *  that the clean model classified correctly, the fraction predicted as dst.
 *  0 when no row qualifies. */
double fl_ml_asr(const int32_t *y, const int32_t *pred, const int32_t *pred_clean,
                 size_t n, int32_t src, int32_t dst);

/* ---- operating point ------------------------------------------------------
 * A detector need not decide at argmax. With class probabilities (from
 * fl_ml_model_predict_proba) the attack score of a row is 1 - P(normal);
 * an operator picks a false-alarm budget on data they own (the TRAINING
 * rows, never the test rows) and flags every row whose score exceeds the
 * budget's quantile among the normal rows. */

/** The threshold t for false-alarm budget fpr on n labelled rows (proba:
 *  n * k): with s the ascending attack scores of the class-0 rows (nn of
 *  them), t = s[min(floor((1 - fpr) * nn), nn - 1)], so at most fpr * nn of
 *  those rows score above t. fpr <= 0 gives the largest score (no false
 *  alarm on these rows); no class-0 row gives 0.5. */
double fl_ml_fpr_threshold(const float *proba, const int32_t *y, size_t n,
                           uint32_t k, double fpr);
/** The same quantile for any score: the class-0 rows' values score[i *
 *  stride] (1 - that value when flip is set). fl_ml_fpr_threshold is
 *  (proba, k, ..., flip = 1). */
double fl_ml_score_threshold(const float *score, size_t stride, const int32_t *y,
                             size_t n, double fpr, int flip);
/** Decisions at threshold t: class 0 when 1 - P(normal) <= t, else the
 *  most probable class other than 0 (ties to the lower index). */
void fl_ml_decide(const float *proba, size_t n, uint32_t k, double t,
                  int32_t *pred /* out */);

/** Novelty override (a hybrid detector): a row the classifier called
 *  normal (pred 0) whose novelty score (e.g. an autoencoder's
 *  reconstruction error, fl_ml_model_anomaly, from a model of NORMAL
 *  traffic) exceeds t becomes an attack: the most probable class other
 *  than 0 in proba (n * k; ties to the lower index). Attack decisions of
 *  the classifier stay. t comes from fl_ml_score_threshold on training
 *  rows, never on test rows. */
void fl_ml_novelty_override(const float *proba, const float *novelty, size_t n,
                            uint32_t k, double t, int32_t *pred /* in/out */);

#endif /* FL_ML_METRICS_H */
