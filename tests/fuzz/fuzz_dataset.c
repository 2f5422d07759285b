/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_dataset.c: fuzz target of the dataset loaders (ml/dataset.h), which
 * read files an FL client is given (plain or gzip): generic CSV, LIBSVM,
 * NSL-KDD, UNSW-NB15, BoT-IoT and Iris.
 *
 * Input layout: byte 0 picks the loader (below, modulo their number); the
 * rest is the file's content, written to one temporary file per process
 * (the loaders only read paths). A loaded table must be consistent: every
 * label and categorical value indexes its vocabulary, every numeric value
 * is finite, every name is set; a subset of all rows in reverse order holds
 * the same values; an encoder fitted on the table (min-max and z-score)
 * must apply to it and give finite features of the encoder's dimension and
 * labels below the class count. A failed load must say why and leave the
 * table zeroed.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "ml/dataset.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_check.h"

static char tmp_path[4096];
static int tmp_fd = -1;

static void tmp_remove(void) {
  if (tmp_fd >= 0) {
    close(tmp_fd);
    unlink(tmp_path);
  }
}

static const char *write_tmp(const uint8_t *data, size_t size) {
  if (tmp_fd < 0) {
    const char *dir = getenv("TMPDIR");
    snprintf(tmp_path, sizeof(tmp_path), "%s/fuzz_dataset.XXXXXX", dir && *dir ? dir : "/tmp");
    tmp_fd = mkstemp(tmp_path);
    check(tmp_fd >= 0);
    atexit(tmp_remove);
  }
  check(ftruncate(tmp_fd, 0) == 0);
  size_t off = 0;
  while (off < size) {
    ssize_t w = pwrite(tmp_fd, data + off, size - off, (off_t)off);
    check(w > 0);
    off += (size_t)w;
  }
  return tmp_path;
}

static void check_raw(const fl_ml_raw_t *r) {
  for (uint32_t j = 0; j < r->n_num; j++) check(r->num_names[j] != NULL);
  for (uint32_t j = 0; j < r->n_cat; j++) check(r->cat_names[j] != NULL);
  for (size_t i = 0; i < r->n; i++) {
    check(r->label[i] < r->label_vocab.n);
    for (uint32_t j = 0; j < r->n_num; j++) check(isfinite(r->num[i * r->n_num + j]));
    for (uint32_t j = 0; j < r->n_cat; j++) check(r->cat[i * r->n_cat + j] < r->cat_vocab[j].n);
  }
  for (uint32_t k = 0; k < r->label_vocab.n; k++) check(r->label_vocab.s[k] != NULL);
}

static void check_subset(const fl_ml_raw_t *r) {
  if (r->n == 0 || r->n > 100000) return;
  uint32_t *idx = fl_calloc(r->n, sizeof(uint32_t));
  for (size_t i = 0; i < r->n; i++) idx[i] = (uint32_t)(r->n - 1 - i);
  fl_ml_raw_t s;
  fl_ml_raw_subset(r, idx, r->n, &s);
  check(s.n == r->n && s.n_num == r->n_num && s.n_cat == r->n_cat);
  for (size_t i = 0; i < r->n; i++) {
    size_t o = r->n - 1 - i;
    check(s.label[i] == r->label[o]);
    for (uint32_t j = 0; j < r->n_num; j++)
      check(memcmp(&s.num[i * r->n_num + j], &r->num[o * r->n_num + j], sizeof(double)) == 0);
    for (uint32_t j = 0; j < r->n_cat; j++) check(s.cat[i * r->n_cat + j] == r->cat[o * r->n_cat + j]);
  }
  fl_ml_raw_free(&s);
  fl_free(idx);
}

static void encode(const fl_ml_raw_t *r, fl_ml_scale_t scale, bool nsl5) {
  fl_ml_encoder_opts_t opts = {.scale = scale, .log_threshold = 100.0, .clip = 0.5};
  static const int five = 5;
  if (nsl5) {
    opts.label_map = fl_ml_nsl_kdd_label_map;
    opts.label_ctx = &five;
    opts.class_names = fl_ml_nsl_kdd_classes5;
    opts.n_classes = 5;
  }
  fl_ml_encoder_t *enc = NULL;
  char err[256] = "";
  if (fl_ml_encoder_fit(r, &opts, &enc, err, sizeof(err)) != FL_OK) {
    check(enc == NULL && err[0] != '\0');
    return;
  }
  check(enc != NULL);
  fl_ml_dataset_t ds;
  check(fl_ml_encoder_apply(enc, r, &ds, err, sizeof(err)) == FL_OK);
  check(ds.n == r->n && ds.d == fl_ml_encoder_dim(enc));
  check(ds.n_classes == fl_ml_encoder_n_classes(enc));
  for (uint32_t c = 0; c < ds.n_classes; c++) check(fl_ml_encoder_class_name(enc, c) != NULL);
  for (size_t i = 0; i < ds.n * ds.d; i++) check(isfinite(ds.x[i]));
  for (size_t i = 0; i < ds.n; i++) check(ds.y[i] >= 0 && (uint32_t)ds.y[i] < ds.n_classes);
  fl_ml_dataset_free(&ds);
  fl_ml_encoder_free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1u << 18)) return 0;
  const char *path = write_tmp(data + 1, size - 1);
  static const char *const names3[3] = {"a", "b", "label"};
  fl_ml_raw_t raw;
  memset(&raw, 0x5a, sizeof(raw));
  char err[512] = "";
  fl_status_t rc;
  unsigned which = data[0] % 10u;
  switch (which) {
    case 0: {
      fl_ml_csv_spec_t spec = {.header = true, .label = "label", .categorical = "proto",
                               .ignore = "id"};
      rc = fl_ml_raw_load_csv(path, &spec, &raw, err, sizeof(err));
      break;
    }
    case 1: {
      fl_ml_csv_spec_t spec = {.names = names3, .n_names = 3, .label = "label",
                               .categorical = "#1"};
      rc = fl_ml_raw_load_csv(path, &spec, &raw, err, sizeof(err));
      break;
    }
    case 2: {
      fl_ml_csv_spec_t spec = {.sep = ';', .skip_lines = 1, .label = "#0"};
      rc = fl_ml_raw_load_csv(path, &spec, &raw, err, sizeof(err));
      break;
    }
    case 3: rc = fl_ml_raw_load_libsvm(path, 32, &raw, err, sizeof(err)); break;
    case 4: rc = fl_ml_load_nsl_kdd(path, &raw, err, sizeof(err)); break;
    case 5: rc = fl_ml_load_unsw_nb15(path, true, &raw, err, sizeof(err)); break;
    case 6: rc = fl_ml_load_unsw_nb15(path, false, &raw, err, sizeof(err)); break;
    case 7: rc = fl_ml_load_botiot(path, true, &raw, err, sizeof(err)); break;
    case 8: rc = fl_ml_load_botiot(path, false, &raw, err, sizeof(err)); break;
    default: rc = fl_ml_load_iris(path, &raw, err, sizeof(err)); break;
  }
  if (rc != FL_OK) {
    check(rc == FL_EMALFORMED || rc == FL_EINVAL || rc == FL_EIO);
    check(err[0] != '\0');
    check(raw.n == 0 && raw.num == NULL && raw.label == NULL && raw.cat_vocab == NULL);
    return 0;
  }
  check_raw(&raw);
  check_subset(&raw);
  encode(&raw, FL_ML_SCALE_MINMAX, false);
  encode(&raw, FL_ML_SCALE_ZSCORE, false);
  if (which == 4) encode(&raw, FL_ML_SCALE_MINMAX, true);
  fl_ml_raw_free(&raw);
  return 0;
}
