/* SPDX-License-Identifier: Apache-2.0
 *
 * novelty.h: the novelty half of fl_bench's hybrid detector (--novelty-fpr).
 *
 * A classifier trained on labelled attacks misses attack kinds it never saw
 * (NSL-KDD's KDDTest+ holds 17 of them). An autoencoder trained on NORMAL
 * traffic only (ml/model.h FL_ML_AE) scores every row by how badly it
 * reconstructs it; traffic unlike the normal traffic the clients saw scores
 * high, whatever kind of attack it is. fl_bench flags a row as an attack
 * when the classifier does, or when its novelty score exceeds the threshold
 * of a false-alarm budget Q measured on the clients' own normal rows.
 *
 * The autoencoder is learnt federated, like the classifier: every round each
 * client trains the global autoencoder on its own normal rows and the new
 * global model is the mean of the clients' models weighted by their
 * normal-row counts (FedAvg, fixed client order, so deterministic). This
 * runs in-process beside the classifier's rounds (plain FL only): it is the
 * quality experiment's detector, not part of the robustness experiments or
 * of the ledger runs, which refuse --novelty-fpr.
 *
 * Ownership: fl_nov_new copies the array of dataset pointers but borrows the
 * datasets (they must outlive the returned object); fl_nov_free frees it.
 */
#ifndef FL_BENCH_FL_NOVELTY_H
#define FL_BENCH_FL_NOVELTY_H

#include <stdint.h>

#include "ml/dataset.h"
#include "ml/model.h"

typedef struct fl_nov_opts_s {
  uint32_t n_hidden;                 /* 1..FL_ML_MAX_HIDDEN */
  uint32_t hidden[FL_ML_MAX_HIDDEN]; /* e.g. 32, 8, 32 */
  float lr;                          /* Adam */
  uint32_t batch, epochs;            /* local training per round */
} fl_nov_opts_t;

typedef struct fl_nov_s fl_nov_t;

/** A federated autoencoder over n clients' datasets ds[0..n) (borrowed),
 *  each trained on its rows of class 0. Dies on a bad spec. */
fl_nov_t *fl_nov_new(const fl_ml_dataset_t *const *ds, uint32_t n, const fl_nov_opts_t *o,
                     uint64_t seed);
/** One FedAvg round; returns its wall time in ms. */
double fl_nov_round(fl_nov_t *v, uint32_t round);
/** Novelty scores (reconstruction error) of ds's rows into out (ds->n). */
void fl_nov_score(fl_nov_t *v, const fl_ml_dataset_t *ds, float *out);
/** The threshold of false-alarm budget q: the score that a fraction q of
 *  the clients' normal rows exceed (fl_ml_score_threshold over the union;
 *  federated, each client would send a histogram of its scores). */
double fl_nov_threshold(fl_nov_t *v, double q);
void fl_nov_free(fl_nov_t *v);

#endif /* FL_BENCH_FL_NOVELTY_H */
