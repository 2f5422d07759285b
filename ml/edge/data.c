/* SPDX-License-Identifier: Apache-2.0
 *
 * data.c: an edge's local data (data.h): load or generate, split, encode,
 * partition, keep one shard.
 */
#include "ml/edge/data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/base/alloc.h"
#include "ml/rng.h"

static void seterr(char *err, size_t errlen, const char *msg) {
  if (err != NULL && errlen > 0) snprintf(err, errlen, "%s", msg);
}

fl_status_t fl_edge_data_generate(uint32_t features, uint32_t classes, size_t rows, uint64_t seed,
                                  fl_ml_dataset_t *out) {
  memset(out, 0, sizeof *out);
  if (features == 0 || classes < 2 || rows < classes || features > 1u << 16 ||
      rows > (size_t)1 << 24)
    return FL_EINVAL;
  fl_rng_t r;
  fl_rng_seed(&r, seed ^ 0x9e3779b97f4a7c15ULL);
  double *mu = fl_malloc((size_t)classes * features * sizeof(double));
  for (size_t i = 0; i < (size_t)classes * features; i++) mu[i] = fl_rng_normal(&r);
  out->n = rows;
  out->d = features;
  out->n_classes = classes;
  out->x = fl_malloc(rows * features * sizeof(float));
  out->y = fl_malloc(rows * sizeof(int32_t));
  for (size_t i = 0; i < rows; i++) {
    uint32_t y = (uint32_t)(i % classes);
    out->y[i] = (int32_t)y;
    for (uint32_t j = 0; j < features; j++)
      out->x[i * features + j] = (float)(mu[(size_t)y * features + j] + 0.6 * fl_rng_normal(&r));
  }
  fl_free(mu);
  return FL_OK;
}

static bool file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Keeps shard o->part of the train rows in d->train (replacing it). */
static fl_status_t take_shard(const fl_edge_data_opts_t *o, fl_edge_data_t *d, char *err,
                              size_t errlen) {
  fl_ml_partition_t p = {0};
  fl_status_t rc;
  if (o->alpha > 0)
    rc = fl_ml_partition_dirichlet(d->train.y, d->train.n, d->train.n_classes, o->parts,
                                   o->alpha, 1, o->seed, &p);
  else
    rc = fl_ml_partition_iid(d->train.n, o->parts, o->seed, &p);
  if (rc != FL_OK) {
    char m[160];
    snprintf(m, sizeof m, "cannot partition %zu rows into %u parts (alpha %g)", d->train.n,
             o->parts, o->alpha);
    seterr(err, errlen, m);
    return FL_EINVAL;
  }
  size_t a = p.start[o->part], b = p.start[o->part + 1];
  if (b == a) {
    fl_ml_partition_free(&p);
    char m[128];
    snprintf(m, sizeof m, "partition %u/%u has no rows", o->part, o->parts);
    seterr(err, errlen, m);
    return FL_EINVAL;
  }
  fl_ml_dataset_t shard;
  fl_ml_dataset_subset(&d->train, p.idx + a, b - a, &shard);
  fl_ml_partition_free(&p);
  fl_ml_dataset_free(&d->train);
  d->train = shard;
  return FL_OK;
}

static fl_status_t load_generated(const fl_edge_data_opts_t *o, fl_edge_data_t *d, char *err,
                                  size_t errlen) {
  fl_ml_dataset_t all;
  size_t rows = o->gen_rows ? o->gen_rows : 4000;
  if (fl_edge_data_generate(o->gen_features, o->gen_classes, rows, o->seed, &all) != FL_OK) {
    char m[160];
    snprintf(m, sizeof m, "cannot generate data with %u features, %u classes, %zu rows",
             o->gen_features, o->gen_classes, rows);
    seterr(err, errlen, m);
    return FL_EINVAL;
  }
  uint32_t *lab = fl_malloc(all.n * sizeof(uint32_t));
  for (size_t i = 0; i < all.n; i++) lab[i] = (uint32_t)all.y[i];
  uint32_t *tr = NULL, *te = NULL;
  size_t ntr = 0, nte = 0;
  fl_status_t rc = fl_ml_split_stratified(lab, all.n, o->test_frac, o->seed, &tr, &ntr, &te, &nte);
  fl_free(lab);
  if (rc != FL_OK) {
    fl_ml_dataset_free(&all);
    seterr(err, errlen, "data.test_frac must be in (0, 1)");
    return FL_EINVAL;
  }
  fl_ml_dataset_subset(&all, tr, ntr, &d->train);
  fl_ml_dataset_subset(&all, te, nte, &d->test);
  d->total_rows = all.n;
  d->n_classes = all.n_classes;
  fl_free(tr);
  fl_free(te);
  fl_ml_dataset_free(&all);
  return FL_OK;
}

static fl_status_t load_file(const fl_edge_data_opts_t *o, const char *path, fl_edge_data_t *d,
                             char *err, size_t errlen) {
  fl_ml_raw_t raw = {0}, rtr = {0}, rte = {0};
  fl_ml_encoder_t *enc = NULL;
  uint32_t *tr = NULL, *te = NULL;
  size_t ntr = 0, nte = 0;
  static const int classes2 = 2, classes5 = 5;
  fl_ml_encoder_opts_t eo = {.scale = FL_ML_SCALE_MINMAX, .log_threshold = 100, .clip = 1};
  fl_status_t rc;
  if (strcmp(o->dataset, "nsl-kdd") == 0) {
    if (o->classes != 2 && o->classes != 5) {
      seterr(err, errlen, "nsl-kdd: data.classes must be 2 or 5");
      return FL_EINVAL;
    }
    eo.label_map = fl_ml_nsl_kdd_label_map;
    eo.label_ctx = o->classes == 5 ? &classes5 : &classes2;
    eo.class_names = o->classes == 5 ? fl_ml_nsl_kdd_classes5 : fl_ml_binary_classes;
    eo.n_classes = o->classes;
    rc = fl_ml_load_nsl_kdd(path, &raw, err, errlen);
  } else if (strcmp(o->dataset, "iris") == 0) {
    rc = fl_ml_load_iris(path, &raw, err, errlen);
  } else {
    fl_ml_csv_spec_t spec = {.header = true, .label = o->label, .categorical = o->categorical};
    rc = fl_ml_raw_load_csv(path, &spec, &raw, err, errlen);
  }
  if (rc != FL_OK) goto fail;
  if (o->max_rows > 0 && o->max_rows < raw.n) {
    uint32_t *idx = fl_malloc(o->max_rows * sizeof(uint32_t));
    for (size_t i = 0; i < o->max_rows; i++) idx[i] = (uint32_t)i;
    fl_ml_raw_t cut;
    fl_ml_raw_subset(&raw, idx, o->max_rows, &cut);
    fl_free(idx);
    fl_ml_raw_free(&raw);
    raw = cut;
  }
  d->total_rows = raw.n;
  if ((rc = fl_ml_split_stratified(raw.label, raw.n, o->test_frac, o->seed, &tr, &ntr, &te,
                                   &nte)) != FL_OK) {
    seterr(err, errlen, "data.test_frac must be in (0, 1)");
    goto fail;
  }
  fl_ml_raw_subset(&raw, tr, ntr, &rtr);
  fl_ml_raw_subset(&raw, te, nte, &rte);
  if ((rc = fl_ml_encoder_fit(&rtr, &eo, &enc, err, errlen)) != FL_OK) goto fail;
  if ((rc = fl_ml_encoder_apply(enc, &rtr, &d->train, err, errlen)) != FL_OK) goto fail;
  if ((rc = fl_ml_encoder_apply(enc, &rte, &d->test, err, errlen)) != FL_OK) goto fail;
  d->n_classes = fl_ml_encoder_n_classes(enc);
  rc = FL_OK;
fail:
  fl_ml_encoder_free(enc);
  fl_free(tr);
  fl_free(te);
  fl_ml_raw_free(&rtr);
  fl_ml_raw_free(&rte);
  fl_ml_raw_free(&raw);
  return rc;
}

fl_status_t fl_edge_data_load(const fl_edge_data_opts_t *o, fl_edge_data_t *out, char *err,
                              size_t errlen) {
  memset(out, 0, sizeof *out);
  if (err != NULL && errlen > 0) err[0] = '\0';
  fl_status_t rc = FL_EINVAL;
  char *path = NULL;
  if (o == NULL || o->dataset == NULL) {
    seterr(err, errlen, "no dataset given");
    return FL_EINVAL;
  }
  if (o->parts == 0 || o->part >= o->parts) {
    seterr(err, errlen, "the partition must be I/N with I < N");
    return FL_EINVAL;
  }
  if (!(o->test_frac > 0 && o->test_frac < 1)) {
    seterr(err, errlen, "data.test_frac must be in (0, 1)");
    return FL_EINVAL;
  }
  const char *rel = NULL;
  if (strcmp(o->dataset, "nsl-kdd") == 0) rel = "nsl-kdd/KDDTrain+_20Percent.txt.gz";
  else if (strcmp(o->dataset, "iris") == 0) rel = "iris/iris.csv.gz";
  else if (strcmp(o->dataset, "csv") == 0) {
    if (o->file == NULL || o->label == NULL) {
      seterr(err, errlen, "dataset csv needs data.file and data.label");
      return FL_EINVAL;
    }
  } else if (strcmp(o->dataset, "generated") != 0) {
    char m[160];
    snprintf(m, sizeof m, "unknown dataset '%s' (nsl-kdd, iris, csv, generated)", o->dataset);
    seterr(err, errlen, m);
    return FL_EINVAL;
  }
  bool generate = strcmp(o->dataset, "generated") == 0;
  if (!generate) {
    path = o->file != NULL ? fl_strdup(o->file)
                           : fl_sprintf("%s/%s", o->dir ? o->dir : "../shared/datasets", rel);
    if (!file_exists(path)) {
      generate = true;
      snprintf(out->source, sizeof out->source,
               "generated (%s not found: %u features, %u classes, seed %llu)", path,
               o->gen_features, o->gen_classes, (unsigned long long)o->seed);
    }
  } else {
    snprintf(out->source, sizeof out->source, "generated (%u features, %u classes, seed %llu)",
             o->gen_features, o->gen_classes, (unsigned long long)o->seed);
  }
  if (generate) {
    out->generated = true;
    rc = load_generated(o, out, err, errlen);
  } else {
    snprintf(out->source, sizeof out->source, "%s", path);
    rc = load_file(o, path, out, err, errlen);
  }
  if (rc == FL_OK) rc = take_shard(o, out, err, errlen);
  fl_free(path);
  if (rc != FL_OK) {
    char keep[sizeof out->source];
    memcpy(keep, out->source, sizeof keep);
    fl_edge_data_free(out);
    memcpy(out->source, keep, sizeof keep);
  }
  return rc;
}

void fl_edge_data_free(fl_edge_data_t *d) {
  if (d == NULL) return;
  fl_ml_dataset_free(&d->train);
  fl_ml_dataset_free(&d->test);
  memset(d, 0, sizeof *d);
}
