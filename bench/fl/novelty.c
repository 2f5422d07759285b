/* SPDX-License-Identifier: Apache-2.0
 *
 * novelty.c: a federated autoencoder of normal traffic (see novelty.h).
 */
#include "bench/fl/novelty.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "ml/metrics.h"

struct fl_nov_s {
  const fl_ml_dataset_t **ds; /* copy of the array; the datasets are borrowed */
  uint32_t n;
  uint32_t **normal; /* per client: indices of its class-0 rows */
  size_t *n_normal;
  fl_nov_opts_t o;
  uint64_t seed;
  fl_ml_model_t *m;
  float *global;
};

fl_nov_t *fl_nov_new(const fl_ml_dataset_t *const *ds, uint32_t n, const fl_nov_opts_t *o,
                     uint64_t seed) {
  fl_nov_t *v = fl_calloc(1, sizeof *v);
  v->ds = fl_memdup(ds, n * sizeof *ds);
  v->n = n;
  v->o = *o;
  v->seed = seed;
  fl_ml_model_spec_t spec = {.kind = FL_ML_AE, .n_in = ds[0]->d,
                             .n_classes = ds[0]->n_classes, .n_hidden = o->n_hidden};
  memcpy(spec.hidden, o->hidden, sizeof spec.hidden);
  if (fl_ml_model_new(&spec, seed ^ 0x6e6f76656c747900ull, &v->m) < 0) {
    fprintf(stderr, "fl_bench: bad autoencoder spec (--novelty-hidden)\n");
    exit(2);
  }
  v->normal = fl_calloc(n, sizeof *v->normal);
  v->n_normal = fl_calloc(n, sizeof *v->n_normal);
  for (uint32_t k = 0; k < n; k++) {
    v->normal[k] = fl_malloc((ds[k]->n + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < ds[k]->n; i++)
      if (ds[k]->y[i] == 0) v->normal[k][v->n_normal[k]++] = (uint32_t)i;
  }
  size_t P = fl_ml_model_cparams(v->m)->n_values;
  v->global = fl_memdup(fl_ml_model_cparams(v->m)->values, P * sizeof(float));
  return v;
}

double fl_nov_round(fl_nov_t *v, uint32_t round) {
  double t0 = (double)fl_mono_ns();
  fl_ml_tensors_t *p = fl_ml_model_params(v->m);
  size_t P = p->n_values;
  double *acc = fl_calloc(P, sizeof(double));
  double wsum = 0;
  fl_ml_train_opts_t to = {.opt = FL_ML_OPT_ADAM, .lr = v->o.lr, .batch = v->o.batch,
                           .epochs = v->o.epochs};
  for (uint32_t k = 0; k < v->n; k++) {
    if (v->n_normal[k] == 0) continue;
    memcpy(p->values, v->global, P * sizeof(float));
    to.seed = v->seed * 1000003ull + (uint64_t)round * 7919ull + k + 0x5eedull;
    if (fl_ml_train(v->m, v->ds[k], v->normal[k], v->n_normal[k], &to, NULL) < 0) {
      fprintf(stderr, "fl_bench: autoencoder training failed\n");
      exit(2);
    }
    double w = (double)v->n_normal[k];
    for (size_t j = 0; j < P; j++) acc[j] += w * p->values[j];
    wsum += w;
  }
  if (wsum > 0)
    for (size_t j = 0; j < P; j++) v->global[j] = (float)(acc[j] / wsum);
  memcpy(p->values, v->global, P * sizeof(float));
  fl_free(acc);
  return ((double)fl_mono_ns() - t0) / 1e6;
}

void fl_nov_score(fl_nov_t *v, const fl_ml_dataset_t *ds, float *out) {
  memcpy(fl_ml_model_params(v->m)->values, v->global,
         fl_ml_model_cparams(v->m)->n_values * sizeof(float));
  if (fl_ml_model_anomaly(v->m, ds->x, ds->n, out) < 0) {
    fprintf(stderr, "fl_bench: autoencoder scoring failed\n");
    exit(2);
  }
}

double fl_nov_threshold(fl_nov_t *v, double q) {
  size_t total = 0;
  for (uint32_t k = 0; k < v->n; k++) total += v->n_normal[k];
  float *s = fl_malloc((total + 1) * sizeof(float));
  int32_t *y = fl_calloc(total + 1, sizeof(int32_t)); /* all class 0 */
  size_t at = 0;
  for (uint32_t k = 0; k < v->n; k++) {
    const fl_ml_dataset_t *ds = v->ds[k];
    float *all = fl_malloc((ds->n + 1) * sizeof(float));
    fl_nov_score(v, ds, all);
    for (size_t i = 0; i < v->n_normal[k]; i++) s[at++] = all[v->normal[k][i]];
    fl_free(all);
  }
  double t = fl_ml_score_threshold(s, 1, y, total, q, 0);
  fl_free(y);
  fl_free(s);
  return t;
}

void fl_nov_free(fl_nov_t *v) {
  if (v == NULL) return;
  for (uint32_t k = 0; k < v->n; k++) fl_free(v->normal[k]);
  fl_free(v->normal);
  fl_free(v->ds);
  fl_free(v->n_normal);
  fl_free(v->global);
  fl_ml_model_free(v->m);
  fl_free(v);
}
