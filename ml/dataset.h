/* SPDX-License-Identifier: Apache-2.0
 *
 * dataset.h: loading tabular datasets, encoding them into feature matrices,
 * splitting and partitioning them over FL clients.
 *
 * Loading is two steps, so that nothing learned from test data leaks into
 * the features:
 *   1. a loader parses a file (plain or gzip, read with zlib) into an
 *      fl_ml_raw_t: numeric columns as doubles, categorical columns and the
 *      label as indices into per-column vocabularies. Every malformed row is
 *      an error naming the file and line ("KDDTest+.txt.gz:17: ...");
 *   2. an fl_ml_encoder_t is fitted on the *training* raw table only (one-hot
 *      vocabularies, optional log1p of heavy-tailed columns, min-max or
 *      z-score scaling, the class list) and then applied to train and test,
 *      giving fl_ml_dataset_t (float32 features, int32 class labels).
 *
 * This is the only I/O in ml/. Nothing here uses global state; every random
 * choice takes a seed.
 */
#ifndef FL_ML_DATASET_H
#define FL_ML_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/status.h"

/* ---- raw tables ---------------------------------------------------------- */

/* A growable list of distinct strings; index = order of first appearance. */
typedef struct fl_ml_vocab_s {
  uint32_t n;
  uint32_t cap;
  char **s; /* owned strings */
} fl_ml_vocab_t;

/* Transparent owned value (fl_ml_raw_free). */
typedef struct fl_ml_raw_s {
  size_t n;           /* rows */
  uint32_t n_num;     /* numeric columns */
  uint32_t n_cat;     /* categorical columns */
  char **num_names;   /* n_num owned names */
  char **cat_names;   /* n_cat owned names */
  double *num;        /* n * n_num, row-major */
  uint32_t *cat;      /* n * n_cat, index into cat_vocab[j] */
  fl_ml_vocab_t *cat_vocab; /* n_cat vocabularies */
  uint32_t *label;    /* n, index into label_vocab */
  fl_ml_vocab_t label_vocab;
} fl_ml_raw_t;

/* How to read a CSV file. Column references are names (when the file has a
 * header or names is given) or "#N", the 0-based column index. Lists are
 * comma-separated. Every column that is neither the label, categorical nor
 * ignored is numeric and must parse as a finite number in every row. */
typedef struct fl_ml_csv_spec_s {
  char sep;                /* field separator; 0 means ',' */
  bool header;             /* the first (non-skipped) line names the columns */
  uint32_t skip_lines;     /* lines to skip first (Iris's metadata line: 1) */
  const char *const *names;/* column names for a headerless file, or NULL */
  uint32_t n_names;        /* entries in names */
  const char *label;       /* the label column (required) */
  const char *categorical; /* categorical columns, or NULL */
  const char *ignore;      /* columns to drop, or NULL */
} fl_ml_csv_spec_t;

/** Loads a CSV file (gzip or plain) as spec says into out (owned,
 *  fl_ml_raw_free). A UTF-8 BOM at the start is skipped; "\r\n" line ends and
 *  blank lines are accepted; double-quoted fields may contain the separator.
 *  Returns FL_EIO (file cannot be read), FL_EINVAL (bad spec, unknown column)
 *  or FL_EMALFORMED (a bad row); on error err holds "file:line: reason" and
 *  out is zeroed. err may be NULL. */
fl_status_t fl_ml_raw_load_csv(const char *path, const fl_ml_csv_spec_t *spec,
                               fl_ml_raw_t *out, char *err, size_t errlen);
/** Loads a LIBSVM sparse file ("label idx:val ...", indices 1-based and
 *  increasing, at most max_features) as a dense numeric table. Errors as
 *  fl_ml_raw_load_csv. */
fl_status_t fl_ml_raw_load_libsvm(const char *path, uint32_t max_features,
                                  fl_ml_raw_t *out, char *err, size_t errlen);
/** Makes out an owned table of rows idx[0..n) of raw (same columns and
 *  vocabularies). Indices must be < raw->n. */
void fl_ml_raw_subset(const fl_ml_raw_t *raw, const uint32_t *idx, size_t n,
                      fl_ml_raw_t *out /* out */);
/** Frees everything raw owns and zeroes it. NULL-safe. */
void fl_ml_raw_free(fl_ml_raw_t *raw);

/* ---- dataset-specific loaders ------------------------------------------- */

/** NSL-KDD (KDDTrain+, KDDTest+, KDDTest-21): 43 headerless columns,
 *  protocol_type/service/flag categorical, the difficulty column dropped,
 *  label = attack name. */
fl_status_t fl_ml_load_nsl_kdd(const char *path, fl_ml_raw_t *out, char *err,
                               size_t errlen);
/** NSL-KDD category of an attack name: 0 normal, 1 DoS, 2 Probe, 3 R2L,
 *  4 U2R, or -1 for an unknown name. Covers the 23 training and the 17
 *  test-only attack names (the map for the latter is ours, from the
 *  literature: mscan/saint probe; apache2/mailbomb/processtable/udpstorm DoS;
 *  snmpguess/snmpgetattack/httptunnel/named/sendmail/xlock/xsnoop/worm R2L;
 *  ps/sqlattack/xterm U2R). */
int32_t fl_ml_nsl_kdd_category(const char *attack);
/** Label map for fl_ml_encoder_opts_t: ctx points to an int (2 or 5 classes). */
int32_t fl_ml_nsl_kdd_label_map(const char *label, const void *ctx);
extern const char *const fl_ml_nsl_kdd_classes5[5];
extern const char *const fl_ml_binary_classes[2]; /* "normal", "attack" */

/** UNSW-NB15 partition CSV (header, BOM): proto/service/state categorical,
 *  id dropped. multiclass: label = attack_cat (binary column dropped), else
 *  label = the 0/1 `label` column (attack_cat dropped). */
fl_status_t fl_ml_load_unsw_nb15(const char *path, bool multiclass,
                                 fl_ml_raw_t *out, char *err, size_t errlen);
/** BoT-IoT CSV schema (full or "10-best" files, by header name): proto,
 *  flgs and state categorical when present; pkSeqID, addresses, ports, MACs
 *  and times dropped (identifiers, not behaviour; ports may be hex). The
 *  *_number columns stay numeric (the 10-best files have state_number but no
 *  state). multiclass: label = category (`attack` and `subcategory`
 *  dropped), else label = attack (0/1). */
fl_status_t fl_ml_load_botiot(const char *path, bool multiclass,
                              fl_ml_raw_t *out, char *err, size_t errlen);
/** Iris as shipped by scikit-learn: first line is metadata, not a header. */
fl_status_t fl_ml_load_iris(const char *path, fl_ml_raw_t *out, char *err,
                            size_t errlen);

/* ---- encoding ------------------------------------------------------------ */

typedef enum fl_ml_scale_e {
  FL_ML_SCALE_MINMAX = 0, /* (x - min) / (max - min), fitted on train */
  FL_ML_SCALE_ZSCORE = 1, /* (x - mean) / sd, fitted on train */
} fl_ml_scale_t;

/** Maps a raw label string to a class in [0, n_classes), or -1. */
typedef int32_t (*fl_ml_label_map_fn)(const char *label, const void *ctx);

typedef struct fl_ml_encoder_opts_s {
  fl_ml_scale_t scale;
  /* log1p numeric columns that are >= 0 on train and whose train max
   * exceeds log_threshold (0 = never). Heavy-tailed byte counts. */
  double log_threshold;
  /* Clamp scaled test values into [-clip, 1 + clip] (min-max) or
   * [-clip, clip] (z-score); 0 = no clamping. */
  double clip;
  /* Classes. With label_map NULL the classes are the distinct train labels,
   * sorted (numerically when all are numbers). */
  fl_ml_label_map_fn label_map;
  const void *label_ctx;
  const char *const *class_names; /* n_classes names, needed with label_map */
  uint32_t n_classes;
} fl_ml_encoder_opts_t;

typedef struct fl_ml_encoder_s fl_ml_encoder_t;

/* Transparent owned value (fl_ml_dataset_free). */
typedef struct fl_ml_dataset_s {
  size_t n;           /* rows */
  uint32_t d;         /* features */
  uint32_t n_classes;
  float *x;           /* n * d, row-major */
  int32_t *y;         /* n labels in [0, n_classes) */
} fl_ml_dataset_t;

/** Fits an encoder on train (one-hot vocabularies, scaling, classes).
 *  Returns owned *out (fl_ml_encoder_free), or FL_EINVAL (no rows, a train
 *  label the map does not know — err names it). */
fl_status_t fl_ml_encoder_fit(const fl_ml_raw_t *train,
                              const fl_ml_encoder_opts_t *opts,
                              fl_ml_encoder_t **out, char *err, size_t errlen);
/** Encodes raw (which must have train's columns) into out (owned). A
 *  categorical value unseen in train gets an all-zero one-hot block. Returns
 *  FL_EINVAL for different columns or a label outside the classes (err names
 *  it); out is zeroed then. */
fl_status_t fl_ml_encoder_apply(const fl_ml_encoder_t *enc, const fl_ml_raw_t *raw,
                                fl_ml_dataset_t *out, char *err, size_t errlen);
/** Number of features the encoder produces. */
uint32_t fl_ml_encoder_dim(const fl_ml_encoder_t *enc);
/** Number of classes and the name of class c (view valid while enc lives). */
uint32_t fl_ml_encoder_n_classes(const fl_ml_encoder_t *enc);
const char *fl_ml_encoder_class_name(const fl_ml_encoder_t *enc, uint32_t c);
/** Frees enc. NULL-safe. */
void fl_ml_encoder_free(fl_ml_encoder_t *enc);

/** Makes out an owned dataset of rows idx[0..n) of ds. */
void fl_ml_dataset_subset(const fl_ml_dataset_t *ds, const uint32_t *idx,
                          size_t n, fl_ml_dataset_t *out /* out */);
/** Frees everything ds owns and zeroes it. NULL-safe. */
void fl_ml_dataset_free(fl_ml_dataset_t *ds);

/* ---- splitting and partitioning ----------------------------------------- */

/* Client k owns idx[start[k] .. start[k+1]). Owned (fl_ml_partition_free). */
typedef struct fl_ml_partition_s {
  uint32_t n_parts;
  size_t *start; /* n_parts + 1 */
  uint32_t *idx;
} fl_ml_partition_t;

/** Stratified split of n labelled rows: about test_frac of every class goes
 *  to the test side. Returns owned index arrays (fl_free), each sorted
 *  ascending. FL_EINVAL when test_frac is not in (0, 1). */
fl_status_t fl_ml_split_stratified(const uint32_t *labels, size_t n,
                                   double test_frac, uint64_t seed,
                                   uint32_t **train_idx, size_t *n_train,
                                   uint32_t **test_idx, size_t *n_test);
/** IID partition of rows 0..n-1 into parts near-equal shards (seeded shuffle).
 *  FL_EINVAL when parts is 0 or above n. */
fl_status_t fl_ml_partition_iid(size_t n, uint32_t parts, uint64_t seed,
                                fl_ml_partition_t *out);
/** Non-IID partition: for each class, shares over the parts are drawn from
 *  Dirichlet(alpha) and that class's rows (shuffled) are cut accordingly.
 *  Draws are repeated (up to 100 times, same seed stream) until every part
 *  has at least min_size rows; the last draw is kept otherwise. FL_EINVAL for
 *  alpha <= 0, parts 0 or labels out of range. */
fl_status_t fl_ml_partition_dirichlet(const int32_t *y, size_t n,
                                      uint32_t n_classes, uint32_t parts,
                                      double alpha, size_t min_size,
                                      uint64_t seed, fl_ml_partition_t *out);
/** Frees p. NULL-safe. */
void fl_ml_partition_free(fl_ml_partition_t *p);

#endif /* FL_ML_DATASET_H */
