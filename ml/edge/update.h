/* SPDX-License-Identifier: Apache-2.0
 *
 * update.h: what an edge client computes each round, without any network:
 * checking the global model blob against the ledger's hash, the update
 * (local - global), differential-privacy clipping and noise, experiment
 * attacks, the data-batch hash, and the signed SubmitUpdate arguments.
 *
 * Data-batch hash (version 1). The rows an edge trained on in a round are
 * serialised in training-set order, each row as its d features (IEEE-754
 * binary32, little-endian) followed by its label (int32, little-endian):
 *
 *   rows_hash  = SHA-256( x[0][0..d) y[0]  x[1][0..d) y[1]  ...  x[n-1] y[n-1] )
 *   data_hash  = SHA-256( "fedledger-data/v1" 0x00           (18 bytes)
 *                         rows_hash                            (32 bytes)
 *                         timestamp_ms  u64 big-endian         (8 bytes)
 *                         edge id bytes (the client id "<mspid>:<CN>") )
 *
 * The labels are the ones trained on (a label-flipping attacker hashes the
 * flipped labels). The edge logs rows_hash and the timestamp next to the
 * update hash (and writes them to its provenance file when one is set), so
 * that whoever holds the rows can later recompute data_hash and compare it
 * with the `data_hash` recorded in update/<task>/<r>/<client>.
 *
 * Differential privacy (Gaussian mechanism on the update): with clip C > 0
 * the update is scaled to L2 norm <= C, then N(0, (sigma * C)^2) is added
 * to every coordinate; with C = 0 the noise is N(0, sigma^2) (no clipping,
 * hence no formal guarantee). sigma = 0 disables noise.
 */
#ifndef FL_ML_EDGE_UPDATE_H
#define FL_ML_EDGE_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/sign.h"
#include "ml/attack.h"
#include "ml/dataset.h"
#include "ml/model.h"
#include "ml/rng.h"
#include "ml/tensor.h"

#define FL_EDGE_DATA_DOMAIN "fedledger-data/v1"

/** Decodes a global model blob after checking that SHA-256(blob) equals
 *  `expected` (the hash the ledger records). layout (may be NULL) is the
 *  task's tensor layout the model must have. Returns FL_OK with *out owned
 *  (fl_ml_tensors_free); FL_ECORRUPT when the hash differs (nothing is
 *  decoded), FL_EMALFORMED when the blob does not decode, FL_EINVAL when the
 *  layout differs. *out is zeroed on failure. Borrows blob. */
fl_status_t fl_edge_model_check(fl_buf_t blob, const uint8_t expected[32],
                                const fl_ml_tensors_t *layout, fl_ml_tensors_t *out /* out */);

/** delta = local - global, value by value in float, into *out (owned,
 *  fl_ml_tensors_free; same layout). FL_EINVAL when the layouts differ
 *  (*out zeroed). */
fl_status_t fl_edge_update_delta(const fl_ml_tensors_t *global, const fl_ml_tensors_t *local,
                                 fl_ml_tensors_t *out /* out */);

/** What fl_edge_dp_apply did. */
typedef struct fl_edge_dp_stats_s {
  double norm_before;   /* L2 norm of the input */
  double norm_clipped;  /* after clipping (== before when not clipped) */
  bool clipped;
  double noise_sd;      /* the per-coordinate standard deviation added */
} fl_edge_dp_stats_t;

/** Clips u (dim floats) to L2 norm clip (clip > 0) and adds Gaussian noise
 *  as described at the top. rng is required when sigma > 0. st may be
 *  NULL. Returns FL_EINVAL for a negative or non-finite clip or sigma, or
 *  sigma > 0 without rng. */
fl_status_t fl_edge_dp_apply(float *u, size_t dim, double clip, double sigma, fl_rng_t *rng,
                             fl_edge_dp_stats_t *st /* out, optional */);

/** An experiment attack as one edge client can apply it. */
typedef struct fl_edge_attack_s {
  fl_ml_attack_t kind;
  fl_ml_attack_opts_t o;  /* scale, sigma, z, eps, n_total/n_malicious, flips */
  uint32_t shards;        /* ALIE/IPM: local sub-shards to estimate the benign
                             updates from (>= 2 for ALIE; 0 = 4) */
} fl_edge_attack_t;

/** Applies an update attack to u (dim floats). ALIE and IPM are not
 *  omniscient here: `benign` holds n_benign update estimates the client
 *  made itself (fl_edge_train_estimates: updates trained on disjoint
 *  sub-shards of its own data). Data attacks (label flip) and NONE leave u
 *  unchanged (label flip acts on the data, fl_edge_attack_data). Returns
 *  FL_EINVAL when ALIE has fewer than 2 estimates, IPM none, or Gaussian no
 *  rng. */
fl_status_t fl_edge_attack_update(const fl_edge_attack_t *a, float *u, size_t dim,
                                  const float *benign, size_t n_benign, fl_rng_t *rng);

/** Applies a data attack (label flip) to ds's labels in place and returns
 *  how many labels changed; 0 for the other kinds. */
size_t fl_edge_attack_data(const fl_edge_attack_t *a, fl_ml_dataset_t *ds);

/** rows_hash of the rows idx[0..n) of ds (idx NULL: all rows in order), as
 *  defined at the top. */
void fl_edge_rows_hash(const fl_ml_dataset_t *ds, const uint32_t *idx, size_t n,
                       uint8_t out[32] /* out */);

/** data_hash from rows_hash, the timestamp (ms since the epoch) and the edge
 *  id (NUL-terminated), as defined at the top. */
void fl_edge_data_hash(const uint8_t rows_hash[32], uint64_t ts_ms, const char *edge_id,
                       uint8_t out[32] /* out */);

/** A ready SubmitUpdate: the update blob, its hash, the signature and the
 *  rest of the arguments. Owned (fl_edge_submission_clear). */
typedef struct fl_edge_submission_s {
  fl_sbuf_t blob;              /* tensor blob of the update (ml/tensor.h) */
  uint8_t hash[32];            /* SHA-256(blob) */
  char hash_hex[65];
  fl_sbuf_t msg;               /* the signed message (fl_mlu_signed_msg) */
  fl_sbuf_t sig;               /* DER ECDSA signature over SHA-256(msg) */
  char *sig_hex;               /* owned */
  uint64_t round;
  uint64_t samples;
  uint8_t data_hash[32];
  char data_hash_hex[65];
  char round_s[24], samples_s[24];
  double norm;                 /* L2 norm of the update as sent */
} fl_edge_submission_t;

/** Encodes the update, hashes it, signs (task, round, hash) with signer
 *  using the mlupdate signed-message layout, and fills *out. Borrows
 *  everything. Returns FL_OK; FL_EINVAL (bad task id, empty or non-finite
 *  update), FL_ECRYPTO. *out is cleared on failure. */
fl_status_t fl_edge_submission_build(const fl_signer_t *signer, const char *task, uint64_t round,
                                     const fl_ml_tensors_t *update, uint64_t samples,
                                     const uint8_t data_hash[32],
                                     fl_edge_submission_t *out /* out */);

/** The SubmitUpdate arguments (7 views into sub, valid while sub lives):
 *  "SubmitUpdate", task, round, hash, signature, samples, data hash. */
void fl_edge_submission_args(const fl_edge_submission_t *sub, const char *task,
                             fl_buf_t args[7] /* out */);

/** Frees what sub owns and zeroes it. NULL-safe. */
void fl_edge_submission_clear(fl_edge_submission_t *sub);

/** Progress of local training: after each chunk of each epoch. */
typedef void (*fl_edge_progress_fn)(void *arg, uint32_t epoch, uint32_t epochs, size_t done,
                                    size_t total, double loss);

/** Local training with progress: each epoch shuffles rows idx[0..n) (rng
 *  seeded from opts->seed and the epoch) and trains on `chunks` consecutive
 *  slices of it, one fl_ml_train call (one epoch) per slice, calling
 *  progress (may be NULL) after each. chunks 1 is one plain fl_ml_train call
 *  per epoch. Optimizer state (momentum, Adam) restarts at every call, as
 *  fl_ml_train does. *loss (may be NULL) gets the mean loss of the last
 *  epoch's slices. Returns what fl_ml_train returns. */
fl_status_t fl_edge_train(fl_ml_model_t *m, const fl_ml_dataset_t *ds, const uint32_t *idx,
                          size_t n, const fl_ml_train_opts_t *opts, uint32_t chunks,
                          fl_edge_progress_fn progress, void *arg, double *loss /* out */);

/** ALIE/IPM estimates: k updates, each trained from `global` on one of k
 *  disjoint slices of ds's rows (seeded split). *out gets k * n_params
 *  floats (owned, fl_free). FL_EINVAL when k < 1 or ds has fewer than k
 *  rows. */
fl_status_t fl_edge_train_estimates(const fl_ml_model_spec_t *spec, const fl_ml_tensors_t *global,
                                    const fl_ml_dataset_t *ds, const fl_ml_train_opts_t *opts,
                                    uint32_t k, float **out /* out */);

/** Derives the model spec of a task from its tensor layout (the task
 *  record's "tensors"): "protos" [P, d] is PROTO (P / n_classes prototypes
 *  per class; n_classes from the data), l0..lL with L = 0 is LOGREG (l0.w
 *  [d, 1] = 2 classes, [d, K] = K), L > 0 is MLP. The result is checked by
 *  building the model and comparing layouts. Returns FL_OK, or FL_EINVAL
 *  with a message in err (errlen bytes) naming what does not match. */
fl_status_t fl_edge_spec_from_layout(const fl_ml_tensors_t *layout, uint32_t data_classes,
                                     fl_ml_model_spec_t *spec /* out */, char *err,
                                     size_t errlen);

#endif /* FL_ML_EDGE_UPDATE_H */
