/* SPDX-License-Identifier: Apache-2.0
 *
 * score.c: the acceptance rule of mlupdate for a well-formed update
 * (score.h), shared by the chaincode and the plain-FL runner.
 */
#include "chaincode/mlupdate/score.h"

#include <math.h>

#include "ml/agg.h"

fl_mlu_reason_t fl_mlu_score_update(const float *u, size_t dim, const double *ref_norms,
                                    size_t n_ref, const float *step, const fl_mlu_filter_t *f,
                                    fl_mlu_scores_t *out) {
  out->norm = fl_ml_norm(u, dim);
  out->norm_z = fl_ml_score_norm_z(u, dim, ref_norms, n_ref);
  out->cosine = NAN;
  if (step != NULL && fl_ml_norm(step, dim) > 0) out->cosine = fl_ml_cosine(u, step, dim);
  if (f->max_norm > 0 && out->norm > f->max_norm) return FL_MLU_OUTLIER_MAX_NORM;
  if (f->max_norm_z > 0 && out->norm_z > f->max_norm_z) return FL_MLU_OUTLIER_NORM_Z;
  if (!isnan(out->cosine) && out->cosine < f->min_cosine) return FL_MLU_OUTLIER_COSINE;
  return FL_MLU_OK;
}
