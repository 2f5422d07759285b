/* SPDX-License-Identifier: Apache-2.0
 *
 * score.h: mlupdate's acceptance rule for a well-formed update, as one pure
 * function shared by the chaincode (SubmitUpdate, cc_submit.c) and by
 * in-process servers that must decide exactly as the ledger does (the
 * plain-FL runner's `--filter-rule ledger`, bench/fl/server_plain.c).
 *
 * The rule (docs/mlupdate.md, checks 9..11, first failure decides):
 *   9  OUTLIER_MAX_NORM  L2 norm > max_norm            (max_norm 0 = off)
 *   10 OUTLIER_NORM_Z    robust z-score of the norm against ref_norms
 *                        (fl_ml_score_norm_z; 0 without references)
 *                        > max_norm_z                  (max_norm_z 0 = off)
 *   11 OUTLIER_COSINE    cosine to the previous global step < min_cosine,
 *                        computed only when there is a step with a
 *                        non-zero norm                 (min_cosine -1 = off)
 * ref_norms are the ACCEPTED update norms of the previous norm_window
 * rounds, oldest round first and in client id order inside a round
 * (CloseRound writes them into the next round's record); the current
 * round's updates never enter their own reference, so a submission's
 * decision does not depend on the others of its round.
 *
 * Target fl_mlupdate (links fl_ml). Pure: no I/O, no globals, no clock.
 */
#ifndef FL_CHAINCODE_MLUPDATE_SCORE_H
#define FL_CHAINCODE_MLUPDATE_SCORE_H

#include <stddef.h>

#include "chaincode/mlupdate/mlupdate.h"

/** The task's outlier thresholds (task/<task> keys of the same names). */
typedef struct fl_mlu_filter_s {
  double max_norm;   /* 0 = off */
  double max_norm_z; /* 0 = off */
  double min_cosine; /* -1 = off (no cosine is below -1) */
} fl_mlu_filter_t;

/** The scores recorded with an update. */
typedef struct fl_mlu_scores_s {
  double norm;   /* L2 norm (fl_ml_norm) */
  double norm_z; /* fl_ml_score_norm_z against the references */
  double cosine; /* NAN when there is no usable step */
} fl_mlu_scores_t;

/** Scores update u (dim floats) and returns FL_MLU_OK or the first
 *  outlier reason (FL_MLU_OUTLIER_MAX_NORM, _NORM_Z, _COSINE). step (dim
 *  floats) is the previous global step or NULL when there is none.
 *  ref_norms may be NULL when n_ref is 0. Borrows everything. */
fl_mlu_reason_t fl_mlu_score_update(const float *u, size_t dim, const double *ref_norms,
                                    size_t n_ref, const float *step, const fl_mlu_filter_t *f,
                                    fl_mlu_scores_t *out /* out */);

#endif /* FL_CHAINCODE_MLUPDATE_SCORE_H */
