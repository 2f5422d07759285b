/* SPDX-License-Identifier: Apache-2.0
 *
 * ledger.h: what fedledger-edge and fedledger-keeper read from and send to
 * the ledger through the Gateway SDK (common/client): the mlupdate records
 * they need (task, round, update, ListUpdates, events) decoded into C
 * structs, and a session that owns the identity, the gateway connection and
 * the events subscriber, and reconnects after a peer restart.
 *
 * Session invariants:
 *   1. the identity and TLS files are loaded once, at fl_edge_session_open:
 *      a bad MSP or TLS directory is a configuration error there, never later;
 *   2. the gateway connection is made on first use and dropped on any
 *      transport error (connection refused / lost / timed out, TLS refused),
 *      so the next call reconnects; callers retry after
 *      fl_edge_session_backoff, which sleeps min_ms, 2*min_ms, ... up to
 *      max_ms and is reset by any successful call;
 *   3. every sleep and wait returns early once *stop is non-zero.
 * Threads: one thread per session.
 */
#ifndef FL_ML_EDGE_LEDGER_H
#define FL_ML_EDGE_LEDGER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/client/client.h"
#include "common/client/events.h"
#include "common/client/identity.h"
#include "ml/tensor.h"

/* ---- records ----------------------------------------------------------------- */

/** task/<task> as the edge needs it. Owned (fl_edge_task_clear). */
typedef struct fl_edge_task_s {
  char task[65];
  char *arch;               /* owned, may be "" */
  fl_ml_tensors_t layout;   /* the model's tensors (values zero) */
  uint64_t n_params;
  char rule[16];
  uint64_t min_updates, max_updates, round_ms;
  uint8_t init_hash[32];
} fl_edge_task_t;

/** round/<task>/<r>. Plain value. */
typedef struct fl_edge_round_s {
  uint64_t round;
  bool open;                /* status OPEN (else CLOSED) */
  uint8_t start_model[32];
  uint64_t opened_ts, deadline_ts;
  bool has_end;             /* CLOSED: end_model and counts are set */
  uint8_t end_model[32];
  uint64_t accepted, submitted;
} fl_edge_round_t;

/** update/<task>/<r>/<client>. Plain value. */
typedef struct fl_edge_update_rec_s {
  bool accepted;
  int reason_code;
  char reason[32];          /* "" when accepted */
  char detail[256];         /* "" when none */
  char hash[65];
  double norm;              /* NAN when null */
} fl_edge_update_rec_t;

/** A decoded mlupdate chaincode event. Plain value. */
typedef enum fl_edge_event_kind_e {
  FL_EDGE_EV_OTHER = 0,
  FL_EDGE_EV_ROUND_CLOSED = 1,    /* RoundClosed */
  FL_EDGE_EV_UPDATE = 2,          /* UpdateSubmitted */
  FL_EDGE_EV_TASK_CREATED = 3,    /* TaskCreated */
} fl_edge_event_kind_t;

typedef struct fl_edge_event_s {
  fl_edge_event_kind_t kind;
  char task[65];
  uint64_t round;           /* the round closed / submitted to */
  uint64_t next_round;      /* RoundClosed */
  bool accepted;            /* UpdateSubmitted: status ACCEPTED */
  char client[201];         /* UpdateSubmitted */
} fl_edge_event_t;

/** Parse a record (the JSON an Evaluate returns). Each returns FL_OK, or
 *  FL_EMALFORMED with a message in err (errlen bytes) naming the bad field.
 *  Outputs are zeroed on failure. Borrow json. */
fl_status_t fl_edge_task_parse(fl_buf_t json, fl_edge_task_t *out /* out */, char *err,
                               size_t errlen);
void fl_edge_task_clear(fl_edge_task_t *t);
fl_status_t fl_edge_round_parse(fl_buf_t json, fl_edge_round_t *out /* out */, char *err,
                                size_t errlen);
fl_status_t fl_edge_update_rec_parse(fl_buf_t json, fl_edge_update_rec_t *out /* out */,
                                     char *err, size_t errlen);

/** Counts a ListUpdates answer (a JSON array of update records): *accepted
 *  the ACCEPTED first submissions, *records all records (attempts too).
 *  FL_EMALFORMED when it is not such an array. */
fl_status_t fl_edge_count_updates(fl_buf_t json, uint64_t *accepted /* out */,
                                  uint64_t *records /* out */);

/** Decodes an mlupdate event (name and JSON payload). Unknown names give
 *  FL_OK with kind FL_EDGE_EV_OTHER; FL_EMALFORMED for a payload that does
 *  not parse. */
fl_status_t fl_edge_event_parse(const char *name, fl_buf_t payload, fl_edge_event_t *out /* out */);

/* ---- session ------------------------------------------------------------------- */

/** Connection settings (borrowed by fl_edge_session_open, copied). */
typedef struct fl_edge_conn_s {
  const char *mspid, *msp_dir, *tls_dir, *tls_ca; /* tls_ca: extra CA file or NULL */
  const char *gateway;      /* "host:port" */
  const char *server_name;  /* name the gateway's TLS certificate must carry; NULL = host */
  const char *events;       /* nanomsg URL ("tcp://127.0.0.1:7053") or NULL = no events */
  const char *channel;
  uint64_t call_timeout_ms, commit_timeout_ms;
  uint64_t backoff_min_ms, backoff_max_ms;
  volatile sig_atomic_t *stop; /* optional: set by a signal handler */
} fl_edge_conn_t;

typedef struct fl_edge_session_s fl_edge_session_t;

/** Loads the identity and TLS files and checks the settings; connects
 *  nothing yet. Returns FL_OK with *out owned (fl_edge_session_close), or
 *  FL_ECONFIG / what the identity loader said, with *err owned (fl_free)
 *  saying which file or setting is wrong. */
fl_status_t fl_edge_session_open(const fl_edge_conn_t *conn, fl_edge_session_t **out /* out */,
                                  char **err /* out */);
/** Closes connections and frees. NULL-safe. */
void fl_edge_session_close(fl_edge_session_t *s);

/** The identity's client id "<mspid>:<CN>" (valid while s lives), as the
 *  chaincode derives it. */
const char *fl_edge_session_client_id(const fl_edge_session_t *s);
/** The signing key (borrowed, valid while s lives). */
const fl_signer_t *fl_edge_session_signer(const fl_edge_session_t *s);
/** The gateway endpoint "host:port" (for messages). */
const char *fl_edge_session_endpoint(const fl_edge_session_t *s);
/** True when *stop is set. */
bool fl_edge_session_stopped(const fl_edge_session_t *s);

/** True for the statuses that mean "the peer is not reachable right now"
 *  (retry after a backoff): FL_ECONNREFUSED, FL_ECLOSED, FL_ETIMEDOUT,
 *  FL_EUNTRUSTED, FL_ECANCELED, FL_EIO, FL_EUNAVAIL, FL_AGAIN. */
bool fl_edge_status_transport(fl_status_t st);

/** Sleeps the current backoff (then doubles it, up to max), waking early
 *  on *stop. Returns false when stopped. */
bool fl_edge_session_backoff(fl_edge_session_t *s);
/** Sleeps ms milliseconds, waking early on *stop. Returns false when stopped. */
bool fl_edge_session_sleep(fl_edge_session_t *s, uint64_t ms);

/** Gateway/Evaluate of mlupdate args[0..n) (args[0] the function). *res
 *  (cleared first) owns its memory afterwards (fl_client_result_clear).
 *  A transport failure drops the connection. Returns res->status. */
fl_status_t fl_edge_session_evaluate(fl_edge_session_t *s, const fl_buf_t *args, size_t n,
                                     fl_client_result_t *res /* out */);
/** Submits mlupdate args with blobs and waits for the commit status, as
 *  fl_edge_session_evaluate. */
fl_status_t fl_edge_session_submit(fl_edge_session_t *s, const fl_buf_t *args, size_t n,
                                   const fl_buf_t *blobs, size_t n_blobs,
                                   fl_client_result_t *res /* out */);

/** GetTask: FL_OK with *out owned (fl_edge_task_clear); FL_NOTFOUND (no such
 *  task), a transport status, or FL_EMALFORMED (err says why). */
fl_status_t fl_edge_get_task(fl_edge_session_t *s, const char *task, fl_edge_task_t *out /* out */,
                             char *err, size_t errlen);
/** GetRound: FL_OK, FL_NOTFOUND (the round does not exist yet), transport,
 *  FL_EMALFORMED. */
fl_status_t fl_edge_get_round(fl_edge_session_t *s, const char *task, uint64_t round,
                              fl_edge_round_t *out /* out */);
/** GetUpdate for this session's client: FL_OK, FL_NOTFOUND (no record),
 *  transport, FL_EMALFORMED. */
fl_status_t fl_edge_get_update(fl_edge_session_t *s, const char *task, uint64_t round,
                               fl_edge_update_rec_t *out /* out */);
/** The newest round of the task (the open one, unless a close is being
 *  committed): gallops from `hint` (a round known to exist; 0 if none) to
 *  the first missing round, then binary-searches. *out gets its record. */
fl_status_t fl_edge_find_round(fl_edge_session_t *s, const char *task, uint64_t hint,
                               fl_edge_round_t *out /* out */);
/** Fetches a model blob by hash (Peer/GetBlob, else the chaincode's GetBlob
 *  query on blob/<hash>) and checks it with fl_edge_model_check against
 *  `hash` and `layout`. *out owned (fl_ml_tensors_free). FL_ECORRUPT when
 *  the bytes do not hash to `hash` (from either source). */
fl_status_t fl_edge_fetch_model(fl_edge_session_t *s, const uint8_t hash[32],
                                const fl_ml_tensors_t *layout, fl_ml_tensors_t *out /* out */);

/** Waits up to timeout_ms for the next mlupdate event (opens and
 *  subscribes the events socket on first use; nanomsg reconnects by
 *  itself). Returns FL_OK with *out, FL_ETIMEDOUT, FL_EUNAVAIL when the
 *  session has no events URL (after sleeping timeout_ms), or another
 *  failure (the socket is then reopened on the next call). Stops early on
 *  *stop (FL_ECANCELED). */
fl_status_t fl_edge_session_next_event(fl_edge_session_t *s, uint64_t timeout_ms,
                                       fl_edge_event_t *out /* out */);

#endif /* FL_ML_EDGE_LEDGER_H */
