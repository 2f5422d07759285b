/* SPDX-License-Identifier: Apache-2.0
 *
 * cc_int.h: internals shared by the files of the mlupdate chaincode .so
 * (cc_main.c, cc_records.c, cc_submit.c, cc_close.c). Not an API: the
 * chaincode's only export is fl_chaincode_entry, and its contract is
 * docs/mlupdate.md.
 *
 * Invariants every function keeps:
 *   1. Deterministic: no clock but fl_cc_get_timestamp, no randomness, no
 *      globals; records are written by the fixed-order encoders below.
 *   2. Scratch memory is fl_malloc'd and freed before invoke returns (a
 *      worker process serves many invocations); response bytes are copied
 *      into fl_cc_alloc memory.
 *   3. Key-write discipline (docs/mlupdate.md, "Conflicts"): SubmitUpdate
 *      writes only its own update key (and, when accepted, the content-
 *      addressed blob/<hash>, a blind write); CloseRound writes the round,
 *      the next round, the model record, blobs and client records;
 *      CreateTask and RevokeClient their own keys. task/<t> never changes
 *      after CreateTask.
 */
#ifndef FL_CHAINCODE_MLUPDATE_CC_INT_H
#define FL_CHAINCODE_MLUPDATE_CC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chaincode/mlupdate/json.h"
#include "chaincode/mlupdate/mlupdate.h"
#include "chaincode/shim.h"
#include "common/base/buf.h"
#include "ml/agg.h"
#include "ml/tensor.h"

#define MLU_HASH_LEN 32

/* ---- records ---------------------------------------------------------- */

/** task/<task>: immutable after CreateTask. */
typedef struct mlu_task_s {
  char id[FL_MLU_TASK_MAX + 1];
  char *arch;               /* free text, printable ASCII, <= 256 bytes */
  fl_ml_tensors_t layout;   /* names and shapes of the model (values zero) */
  fl_ml_rule_t rule;
  uint32_t f, m;
  double clip_norm;         /* 0 = no clipping */
  double max_norm_z;        /* 0 = off */
  double min_cosine;        /* <= -1 = off */
  double max_norm;          /* 0 = off */
  double collusion;         /* collusion filter ratio at CloseRound, 0 = off */
  double median_cosine;     /* direction filter bound at CloseRound, <= -1 = off */
  uint32_t norm_window;     /* rounds of accepted norms in the reference */
  uint64_t min_updates, max_updates; /* max 0 = unlimited */
  uint64_t round_ms;
  double reject_limit;      /* revoke when rejected/submitted > limit ... */
  uint64_t reject_min;      /* ... and submitted >= reject_min */
  uint8_t init_hash[MLU_HASH_LEN];
  uint64_t created_ts;
  char *created_by, *created_tx;
} mlu_task_t;

/** round/<task>/<r>. */
typedef struct mlu_round_s {
  uint64_t round;
  bool open;
  uint8_t start_model[MLU_HASH_LEN];
  bool has_step;
  /* the global model before the last change: the previous global step (the
   * cosine reference) is start_model - step_from, value by value in float */
  uint8_t step_from[MLU_HASH_LEN];
  double *ref_norms;
  size_t n_ref;
  uint64_t opened_ts, deadline_ts;
  char *opened_tx;
  /* set when CLOSED */
  uint64_t closed_ts;
  char *closed_tx;
  uint8_t end_model[MLU_HASH_LEN];
  uint64_t submitted, accepted, rejected, aggregated;
  double *acc_norms;
  size_t n_acc;
} mlu_round_t;

/** update/<task>/<r>/<client>[/<tx id>]. */
typedef struct mlu_update_s {
  const char *task;
  uint64_t round;
  const char *client, *mspid, *tx_id;
  uint8_t cert_sha256[MLU_HASH_LEN];
  uint64_t ts;
  uint8_t hash[MLU_HASH_LEN];       /* declared */
  uint8_t blob_sha256[MLU_HASH_LEN]; /* computed */
  fl_buf_t signature;
  uint64_t samples;
  uint8_t data_hash[MLU_HASH_LEN];
  bool has_scores;                  /* norm, norm_z, cosine computed */
  double norm, norm_z, cosine;      /* cosine NaN = no reference (null) */
  bool blob_stored;
  fl_mlu_reason_t reason;
  const char *detail;               /* NULL when accepted */
} mlu_update_t;

/** What CloseRound needs from an update record (owned strings). */
typedef struct mlu_upd_view_s {
  char *client;
  bool accepted;
  uint8_t hash[MLU_HASH_LEN];
  uint64_t samples, ts;
  double norm;
} mlu_upd_view_t;

/** client/<id>. */
typedef struct mlu_client_s {
  uint64_t accepted, rejected;
  bool revoked;
  char *reason, *revoked_by, *revoked_tx;
  uint64_t revoked_ts;
} mlu_client_t;

/** Reads the parameters of a task definition (CreateTask's argument) into
 *  t. Unknown keys are refused. Returns NULL or an owned error text. */
char *mlu_task_def_parse(const fl_mlu_json_t *def, mlu_task_t *t);
/** Encodes the task record. */
void mlu_task_encode(const mlu_task_t *t, fl_sbuf_t *out);
/** Decodes a stored task record. FL_OK or FL_ECORRUPT. */
fl_status_t mlu_task_decode(fl_buf_t v, mlu_task_t *t /* out */);
void mlu_task_free(mlu_task_t *t);

void mlu_round_encode(const char *task, const mlu_round_t *r, fl_sbuf_t *out);
fl_status_t mlu_round_decode(fl_buf_t v, mlu_round_t *r /* out */);
void mlu_round_free(mlu_round_t *r);

void mlu_update_encode(const mlu_update_t *u, fl_sbuf_t *out);
fl_status_t mlu_update_view(fl_buf_t v, mlu_upd_view_t *u /* out */);
void mlu_upd_view_free(mlu_upd_view_t *u);

void mlu_client_encode(const char *id, const mlu_client_t *c, fl_sbuf_t *out);
fl_status_t mlu_client_decode(fl_buf_t v, mlu_client_t *c /* out */);
void mlu_client_free(mlu_client_t *c);

/** Reads a 64-hex-digit JSON string into 32 bytes. */
bool mlu_json_hash(const fl_mlu_json_t *j, uint8_t out[MLU_HASH_LEN]);

/* ---- stub helpers (cc_main.c) ------------------------------------------ */

/** An error response whose message is formatted into stub memory. */
fl_cc_response_t mlu_err(fl_cc_stub_t *s, int32_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** A 200 response whose payload is a copy of b (b is freed). */
fl_cc_response_t mlu_ok(fl_cc_stub_t *s, fl_sbuf_t *b);
/** A 500 response for a failed stub call. */
fl_cc_response_t mlu_stub_fail(fl_cc_stub_t *s, const char *what, int rc);

/** get_state with a C-string key. */
int mlu_get(fl_cc_stub_t *s, const char *key, fl_cc_bytes_t *v /* out */);
/** put_state with a C-string key. */
int mlu_put(fl_cc_stub_t *s, const char *key, fl_buf_t v);

/** Parses a decimal u64 argument (no sign, no leading zeros but "0"). */
bool mlu_arg_u64(fl_cc_bytes_t a, uint64_t *v /* out */);
/** Parses a 64-hex-digit argument into 32 bytes. */
bool mlu_arg_hash(fl_cc_bytes_t a, uint8_t out[MLU_HASH_LEN]);
/** Copies an argument into an owned C string if it has no NUL. */
char *mlu_arg_str(fl_cc_bytes_t a);

/** The creator's client id "<mspid>:<subject CN>" (*id owned, fl_free),
 *  from the certificate the runtime parsed (fl_cc_get_creator_cn). Returns
 *  NULL or a static error text (*id NULL). */
const char *mlu_creator_id(fl_cc_stub_t *s, char **id /* out */);

/** Loads and decodes task/<id>; 404/500 response on failure (*ok false). */
fl_cc_response_t mlu_load_task(fl_cc_stub_t *s, const char *id, mlu_task_t *t,
                               bool *ok /* out */);
/** Reads blob/<hash> and decodes it into t. FL_OK, FL_NOTFOUND, FL_ECORRUPT
 *  or the stub's error (negative FL_CC_ code). */
int mlu_load_blob(fl_cc_stub_t *s, const uint8_t hash[MLU_HASH_LEN],
                  fl_ml_tensors_t *t /* out */);

/* ---- functions --------------------------------------------------------- */

fl_cc_response_t mlu_submit_update(fl_cc_stub_t *s, size_t argc, const fl_cc_bytes_t *argv);
fl_cc_response_t mlu_close_round(fl_cc_stub_t *s, size_t argc, const fl_cc_bytes_t *argv);

#endif /* FL_CHAINCODE_MLUPDATE_CC_INT_H */
