/* SPDX-License-Identifier: Apache-2.0
 *
 * data.h: an edge client's local data: which dataset, which shard of it, and
 * the held-out rows it evaluates the global model on.
 *
 * A demo gives every edge the same shared dataset file and a different
 * partition index, so that the edges hold disjoint shards as real devices
 * would. Every edge computes the same thing from the same inputs:
 *
 *   1. load the dataset (NSL-KDD, Iris, a CSV file) or generate one;
 *   2. stratified split into train (1 - test_frac) and held-out test rows
 *      (fl_ml_split_stratified, `seed`);
 *   3. fit the encoder (one-hot, min-max scaling) on the train side and
 *      encode both sides;
 *   4. partition the train rows over N edges, IID (alpha 0) or
 *      Dirichlet(alpha) non-IID (fl_ml_partition_*, `seed`), and keep shard I.
 *
 * So every edge agrees on the feature layout without talking to the others.
 * When the dataset file does not exist (no ../shared/datasets on this
 * machine), fl_edge_data_load generates a dataset instead and says so in
 * fl_edge_data_t.generated and .source: a seeded Gaussian mixture with the
 * task's feature count and classes, so that the edge can still train the
 * task's model. A file that exists but does not parse is an error, never a
 * fallback.
 */
#ifndef FL_ML_EDGE_DATA_H
#define FL_ML_EDGE_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/status.h"
#include "ml/dataset.h"

typedef struct fl_edge_data_opts_s {
  const char *dataset;    /* "nsl-kdd", "iris", "csv", "generated" */
  const char *dir;        /* dataset folder (../shared/datasets) */
  const char *file;       /* file to load; NULL = the dataset's default under dir */
  const char *label;      /* csv: label column (required for csv) */
  const char *categorical;/* csv: categorical columns, or NULL */
  uint32_t classes;       /* nsl-kdd: 2 or 5 */
  uint32_t part, parts;   /* shard part of parts (0 <= part < parts) */
  double alpha;           /* 0 = IID, > 0 = Dirichlet(alpha) */
  double test_frac;       /* held-out share, in (0, 1) */
  uint64_t seed;          /* split and partition */
  size_t max_rows;        /* 0 = all; else the first max_rows rows of the file */
  /* For generation (fallback or dataset "generated"): */
  uint32_t gen_features;  /* features (the task's n_in); >= 1 */
  uint32_t gen_classes;   /* classes (the task's); >= 2 */
  size_t gen_rows;        /* rows before the split; >= 10 * gen_classes */
} fl_edge_data_opts_t;

/* Transparent owned value (fl_edge_data_free). */
typedef struct fl_edge_data_s {
  fl_ml_dataset_t train;  /* this edge's shard */
  fl_ml_dataset_t test;   /* the held-out rows (the same on every edge) */
  uint32_t n_classes;
  size_t total_rows;      /* rows before split and partition */
  bool generated;         /* true: no file, a generated dataset */
  char source[512];       /* the file read, or "generated (...)" with why */
} fl_edge_data_t;

/** Loads (or generates) the data as described at the top. Returns FL_OK
 *  with *out owned (fl_edge_data_free); FL_EINVAL (bad options: unknown
 *  dataset, part >= parts, a shard with no rows), FL_EMALFORMED / FL_EIO (a
 *  file that exists but cannot be read or parsed) with err
 *  ("file:line: reason" from the loader). err may be NULL. */
fl_status_t fl_edge_data_load(const fl_edge_data_opts_t *o, fl_edge_data_t *out /* out */,
                              char *err, size_t errlen);

/** Generates the seeded Gaussian mixture described at the top: class k has
 *  mean mu_k (each coordinate N(0, 1) from the seed), rows mu_y + N(0,
 *  0.6^2) per coordinate, labels round-robin. Returns owned *out
 *  (fl_ml_dataset_free); FL_EINVAL for features 0, classes < 2 or rows <
 *  classes. */
fl_status_t fl_edge_data_generate(uint32_t features, uint32_t classes, size_t rows, uint64_t seed,
                                  fl_ml_dataset_t *out /* out */);

/** Frees everything d owns and zeroes it. NULL-safe. */
void fl_edge_data_free(fl_edge_data_t *d);

#endif /* FL_ML_EDGE_DATA_H */
