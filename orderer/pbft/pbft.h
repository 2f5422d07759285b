/* SPDX-License-Identifier: Apache-2.0
 *
 * pbft.h: Castro & Liskov PBFT as a pure state machine (no I/O, no clock, no
 * threads, no randomness), in the spirit of etcd's raft library.
 *
 * The host owns the network, the disk and the clock. It feeds events in:
 *   fl_pbft_step()    a SignedMessage received from another replica,
 *   fl_pbft_submit()  a client request (envelope + tx id) to order,
 *   fl_pbft_tick()    the current time (call at fl_pbft_next_deadline()),
 * and after each call collects the actions the machine produced
 * (fl_pbft_actions()): messages to send, records to persist, committed
 * batches executed, blocks to deliver. Actions must be carried out IN ORDER:
 * a PERSIST action must be durable before any later SEND action is
 * transmitted (that ordering is what lets a restarted replica recover
 * without equivocating). Then fl_pbft_actions_clear(). A DELIVER and the
 * PERSIST of the COMMITTED record that follows it should be written in one
 * batch; after a crash between the two, the restarted replica delivers the
 * same block (same header hash) again and the block store must accept it.
 *
 * N = 3f+1 replicas numbered 0..N-1, primary = view mod N. Signing,
 * verification and hashing go through fl_pbft_ops_t so the orderer can use
 * ECDSA P-256 and a simulation a cheap keyed hash. See docs/ordering.md for
 * the protocol, the persisted records and recovery.
 *
 * Blocks follow docs/protocol.md section 4 exactly: data_hash = SHA-256 over
 * u32be(len) || envelope for each envelope, and every orderer signature is
 * an ECDSA signature of the digest SHA-256(header bytes) (ops.sign_digest),
 * so common/protoutil's fl_block_decode and fl_block_verify_signatures
 * accept every block the machine delivers.
 *
 * Thread-safety: one fl_pbft_t is driven by one thread at a time. The one
 * exception is fl_pbft_msg_decode(), which only reads the immutable
 * configuration and may run on worker threads concurrently with anything
 * (that is how the orderer moves signature checks off its event loop).
 */
#ifndef FL_ORDERER_PBFT_PBFT_H
#define FL_ORDERER_PBFT_PBFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

#define FL_PBFT_MAX_REPLICAS 64u  /* vote sets are 64-bit masks */
#define FL_PBFT_DIGEST_LEN 32u
#define FL_PBFT_MAX_TXID 256u     /* longest accepted tx id, bytes */
#define FL_PBFT_MAX_SIG 512u      /* longest accepted signature, bytes */
#define FL_PBFT_TO_ALL UINT32_MAX /* SEND destination: every other replica */

typedef struct fl_pbft_s fl_pbft_t;

/** Kinds of persisted records (see docs/ordering.md, "Persistence"). */
typedef enum fl_pbft_record_e {
  FL_PBFT_REC_VIEW = 1,       /* ViewState, one per replica (seq 0)        */
  FL_PBFT_REC_ENTRY = 2,      /* LogEntry per seq, deleted by TRUNCATE     */
  FL_PBFT_REC_CHECKPOINT = 3, /* StableCheckpoint per seq                  */
  FL_PBFT_REC_COMMITTED = 4,  /* CommittedEntry per seq, in seq order      */
  FL_PBFT_REC_PREPARED = 5,   /* PreparedVotes per seq, deleted by TRUNCATE */
} fl_pbft_record_t;

/** Host-supplied crypto and storage. All callbacks are called synchronously
 *  from inside fl_pbft_* calls and must not call back into the machine.
 *  verify, verify_digest and sha256 are also called from fl_pbft_msg_decode
 *  and so must be thread-safe if the host decodes on several threads. */
typedef struct fl_pbft_ops_s {
  void *ctx;
  /** Signs the consensus message msg with this replica's key (with ECDSA
   *  P-256: over SHA-256(msg)); appends the signature to *sig. Returns FL_OK
   *  or an error (the machine then drops what it was sending). */
  fl_status_t (*sign)(void *ctx, fl_buf_t msg, fl_sbuf_t *sig);
  /** True iff sig is `replica`'s valid signature over the message msg. */
  bool (*verify)(void *ctx, uint32_t replica, fl_buf_t msg, fl_buf_t sig);
  /** Signs a 32-byte digest AS a digest (no further hashing: with ECDSA
   *  P-256, fl_signer_sign_digest): used for block signatures, which are
   *  over SHA-256(header bytes) (docs/protocol.md section 4). Appends the
   *  signature to *sig; FL_OK or an error. */
  fl_status_t (*sign_digest)(void *ctx, const uint8_t digest[FL_PBFT_DIGEST_LEN],
                             fl_sbuf_t *sig);
  /** True iff sig is `replica`'s valid signature of the 32-byte digest
   *  (the verifying half of sign_digest, fl_verify_digest). */
  bool (*verify_digest)(void *ctx, uint32_t replica,
                        const uint8_t digest[FL_PBFT_DIGEST_LEN], fl_buf_t sig);
  /** out = SHA-256(data). */
  void (*sha256)(void *ctx, fl_buf_t data, uint8_t out[FL_PBFT_DIGEST_LEN]);
  /** Optional (NULL = accept): checks a client request that arrives in a
   *  pre-prepare, a forward or a state transfer, e.g. that tx_id is the one
   *  in the envelope's header. Returning false rejects the request. */
  bool (*check_request)(void *ctx, fl_buf_t envelope, fl_buf_t tx_id);
  /** Loads a persisted record (for serving state transfer): appends its
   *  bytes to *out and returns FL_OK, or FL_NOTFOUND. Used with
   *  FL_PBFT_REC_COMMITTED and FL_PBFT_REC_CHECKPOINT. May be NULL (the
   *  replica then never serves state transfer). */
  fl_status_t (*load)(void *ctx, fl_pbft_record_t kind, uint64_t seq,
                      fl_sbuf_t *out);
  /** Optional: the wall clock in milliseconds since the Unix epoch, read by
   *  the primary when it cuts a batch; the value travels in the batch (so
   *  every replica puts the same timestamp_ms in the block) and is made
   *  non-decreasing along the chain. NULL: the `now` of the call (the
   *  host's monotonic clock; the simulation uses virtual time). Timers
   *  always use `now`. */
  uint64_t (*wall_ms)(void *ctx);
} fl_pbft_ops_t;

/** Parameters. Start from fl_pbft_config_default() and set n and self. */
typedef struct fl_pbft_config_s {
  uint32_t n;                    /* replicas, 3f+1 (1, 4, 7, ...)         */
  uint32_t self;                 /* this replica's id, < n                */
  uint32_t checkpoint_interval;  /* K: checkpoint every K seqs            */
  uint32_t log_window;           /* L: high - low watermark, multiple of K, >= 2K */
  uint32_t max_inflight;         /* primary: proposed but unexecuted seqs */
  uint32_t batch_max_count;      /* cut a batch at this many requests     */
  uint32_t batch_max_bytes;      /* ... or this many envelope bytes       */
  uint64_t batch_timeout_ms;     /* ... or when the oldest waited this    */
  uint64_t request_timeout_ms;   /* unordered request -> vote view change */
  uint64_t unreachable_timeout_ms; /* ... while the host reports the primary
                                    * unreachable (fl_pbft_peer_reachable) */
  uint64_t view_change_timeout_ms; /* NEW-VIEW wait, doubled per failed try */
  uint32_t view_change_max_backoff; /* cap on the doubling exponent       */
  uint64_t resend_ms;            /* status / retransmission interval      */
  uint32_t dedup_window;         /* seqs whose tx ids are remembered      */
  uint32_t max_pending;          /* client requests held at once          */
  uint32_t state_chunk_bytes;    /* soft size limit of a StateResponse    */
  uint64_t base_block_number;    /* number of the block before the first  */
  uint8_t base_header_hash[FL_PBFT_DIGEST_LEN]; /* its header hash        */
  /* Adaptive batching (0 = off, the default): while at least busy_inflight
   * seqs are proposed and not executed, a batch that is not full waits up
   * to busy_timeout_ms (instead of batch_timeout_ms) for more requests.
   * Under load the pipeline is busy anyway: fewer, fuller blocks cost less
   * consensus work per request; when idle nothing changes. */
  uint32_t busy_inflight;
  uint64_t busy_timeout_ms;
  /* Cut when idle (false = off, the default): a primary with no seq
   * proposed and not executed cuts a partial batch at once instead of
   * waiting batch_timeout_ms; while seqs are in flight the timeouts above
   * apply, and the batch waiting behind them is cut as soon as the last
   * one executes. A quiet request is ordered without the batch timeout;
   * under load the pipeline is never empty and nothing changes. */
  bool cut_when_idle;
  /* Censorship (0 = off; default 20 s): a backup that holds a request no
   * pre-prepare has carried for censor_timeout_ms / 2 multicasts it to every
   * replica (once per view), so that every correct replica holds it and
   * times it; a request no pre-prepare has carried for censor_timeout_ms
   * makes a backup vote for a view change even while the primary keeps
   * executing other requests (which restarts the ordinary request timer).
   * At least request_timeout_ms. */
  uint64_t censor_timeout_ms;
  /* Forward pacing (0 = off, the default): a backup sends its requests to
   * the primary at most once per forward_interval_ms (a full batch's worth
   * goes at once). An idle link sends at once, so a lone request waits for
   * nothing; under load the requests of several loop turns share one
   * signed FORWARD, whose signature costs the sender a sign and the primary
   * a verify whatever it carries. */
  uint64_t forward_interval_ms;
} fl_pbft_config_t;

/** Returns the defaults (docs/ordering.md, "Parameters"); n = 4, self = 0. */
fl_pbft_config_t fl_pbft_config_default(void);

typedef enum fl_pbft_action_type_e {
  FL_PBFT_ACT_SEND = 1,     /* send `bytes` (a SignedMessage) to `to`      */
  FL_PBFT_ACT_PERSIST,      /* store record (kind, seq) = bytes            */
  FL_PBFT_ACT_TRUNCATE,     /* delete ENTRY and PREPARED records, seq <= seq */
  FL_PBFT_ACT_EXECUTE,      /* batch at seq executed (in seq order)        */
  FL_PBFT_ACT_DELIVER,      /* block complete: bytes = serialized fl.common.Block */
} fl_pbft_action_type_t;

/** One action. Views (bytes, digests) are owned by the machine and valid until
 *  fl_pbft_actions_clear() or the next fl_pbft_* event call. */
typedef struct fl_pbft_action_s {
  fl_pbft_action_type_t type;
  uint32_t to;               /* SEND: replica id or FL_PBFT_TO_ALL        */
  fl_pbft_record_t kind;     /* PERSIST                                   */
  uint64_t seq;              /* PERSIST/TRUNCATE/EXECUTE/DELIVER          */
  uint64_t view;             /* EXECUTE/DELIVER: view that committed it   */
  uint64_t block_number;     /* EXECUTE: block made (0 = none); DELIVER   */
  uint32_t nrequests;        /* EXECUTE/DELIVER: requests in the block    */
  uint32_t nfiltered;        /* EXECUTE: duplicate tx ids dropped         */
  const uint8_t *digest;     /* EXECUTE: batch digest; DELIVER: header hash (32 bytes) */
  const uint8_t *state;      /* EXECUTE: state digest after seq (32 bytes) */
  fl_buf_t bytes;            /* SEND/PERSIST/DELIVER payload              */
  uint64_t timestamp_ms;     /* DELIVER: the batch's timestamp (primary's clock) */
} fl_pbft_action_t;

/** Counters (monotonic since fl_pbft_new). */
typedef struct fl_pbft_stats_s {
  uint64_t rx_messages;       /* messages given to fl_pbft_step          */
  uint64_t rx_malformed;      /* undecodable or invalid content          */
  uint64_t rx_bad_signature;  /* signature (or an embedded one) invalid  */
  uint64_t rx_non_member;     /* sender id >= n                          */
  uint64_t rx_stale;          /* for an older view / below the watermark */
  uint64_t rx_out_of_window;  /* above the high watermark                */
  uint64_t rx_duplicate;      /* a vote already counted                  */
  uint64_t rx_conflicting;    /* equivocation: a 2nd different message    */
  uint64_t rx_rejected;       /* well-formed but refused (bad pre-prepare, bad VC/NV, bad state) */
  uint64_t rx_redundant;      /* skipped unverified: fl_pbft_redundant() */
  uint64_t view_changes;      /* view changes this replica started/joined */
  uint64_t new_views;         /* views installed                         */
  uint64_t checkpoints_stable;
  uint64_t state_transfers;   /* state transfers completed               */
  uint64_t batches_executed;  /* incl. null requests                     */
  uint64_t blocks_delivered;
  uint64_t requests_executed; /* requests put in blocks                  */
  uint64_t requests_filtered; /* duplicate tx ids dropped at execution   */
  uint64_t requests_refused;  /* submit/forward refused (dup, full, bad) */
  uint64_t batches_fetched;   /* batches of re-proposed pre-prepares fetched */
  uint64_t requests_relayed;  /* held too long: multicast to every replica */
  uint64_t censor_timeouts;   /* view changes voted for a starved request */
  uint64_t snapshots;         /* state transfers that started past a pruned log */
  uint64_t snapshots_served;  /* StateResponses that were snapshots */
  uint64_t records_installed; /* seqs taken by record, not re-executed */
} fl_pbft_stats_t;

/** A snapshot of where the replica is. */
typedef struct fl_pbft_info_s {
  uint64_t view;
  bool view_change;           /* changing to `view`, not installed yet   */
  uint32_t primary;
  uint64_t low_watermark;     /* stable checkpoint seq                   */
  uint64_t last_executed;
  uint64_t last_block;        /* last block number built                 */
  uint64_t delivered_block;   /* last block number delivered             */
  uint64_t pending_requests;
  bool state_transfer;        /* fetching committed batches               */
  uint64_t queued_requests;   /* held, not in any pre-prepare yet         */
  uint64_t inflight_requests; /* in a pre-prepare not executed yet        */
  uint64_t inflight_seqs;     /* primary: seqs proposed, not executed     */
} fl_pbft_info_t;

/** Creates a replica. cfg and ops are copied. Returns FL_OK and *out (free
 *  with fl_pbft_free), or FL_ECONFIG for an invalid configuration (and *out =
 *  NULL). Nothing happens until fl_pbft_start(). */
fl_status_t fl_pbft_new(const fl_pbft_config_t *cfg, const fl_pbft_ops_t *ops,
                        fl_pbft_t **out /* out */);

/** Frees p and everything it owns (pending actions too). NULL-safe. */
void fl_pbft_free(fl_pbft_t *p);

/** Feeds one persisted record back after a restart, before fl_pbft_start().
 *  Pass the VIEW record, the latest CHECKPOINT, every ENTRY and PREPARED
 *  record, and the COMMITTED records of the last dedup_window seqs (any
 *  order). Borrows
 *  bytes. Returns FL_OK, FL_EMALFORMED (record undecodable or inconsistent),
 *  or FL_ESTATE after start. */
fl_status_t fl_pbft_restore(fl_pbft_t *p, fl_pbft_record_t kind, uint64_t seq,
                            fl_buf_t bytes);

/** Starts the replica at time now_ms (after any restores). Returns FL_OK, or
 *  FL_ESTATE when called twice, FL_EMALFORMED when the restored records do
 *  not fit together. */
fl_status_t fl_pbft_start(fl_pbft_t *p, uint64_t now_ms);

/** Feeds one received SignedMessage (borrowed). Returns FL_OK when it was
 *  processed or dropped-and-counted: a bad message is never an error for
 *  the host. FL_ESTATE before start. */
fl_status_t fl_pbft_step(fl_pbft_t *p, fl_buf_t msg, uint64_t now_ms);

/** A received SignedMessage decoded, with every signature it carries
 *  checked (fl_pbft_msg_decode). Opaque. */
typedef struct fl_pbft_msg_s fl_pbft_msg_t;

/** Decodes a received SignedMessage (borrowed) as fl_pbft_step would, and
 *  checks every signature in it: the sender's, every embedded signed
 *  message's, and for a block-signature message each orderer signature
 *  against the header hash it names (the machine later compares that hash
 *  with the one it computed itself). Reads only p's immutable
 *  configuration and ops: callable from any thread, concurrently with
 *  every other call on p (the ops it uses must then be thread-safe).
 *  Returns FL_OK and *out (owned: pass it to fl_pbft_step_msg, or free it
 *  with fl_pbft_msg_free), or FL_EMALFORMED, FL_EBADSIG, FL_EPERM (sender
 *  not a member) with *out = NULL. */
fl_status_t fl_pbft_msg_decode(const fl_pbft_t *p, fl_buf_t bytes,
                               fl_pbft_msg_t **out /* out */);

/** Frees a decoded message. NULL-safe; any thread. */
void fl_pbft_msg_free(fl_pbft_msg_t *m);

/** Feeds a message decoded by fl_pbft_msg_decode: takes msg (NULL when
 *  decoding failed) and decode_rc (the status fl_pbft_msg_decode returned,
 *  counted in the stats when negative). Same effect as fl_pbft_step on the
 *  original bytes. FL_OK, or FL_ESTATE before start (msg is freed). */
fl_status_t fl_pbft_step_msg(fl_pbft_t *p, fl_pbft_msg_t *msg, fl_status_t decode_rc,
                             uint64_t now_ms);

/** Submits a client request to order (borrows both). Returns FL_OK (queued,
 *  and forwarded to the primary if this replica is a backup), FL_EEXIST (tx
 *  id already pending or recently ordered), FL_AGAIN (max_pending reached),
 *  FL_EINVAL (empty envelope, tx id empty or longer than FL_PBFT_MAX_TXID,
 *  envelope larger than batch_max_bytes), FL_ESTATE before start. */
fl_status_t fl_pbft_submit(fl_pbft_t *p, fl_buf_t envelope, fl_buf_t tx_id,
                           uint64_t now_ms);

/** Host hint (liveness only, never safety): the connection to `replica` is
 *  down (reachable = false) or back up. While the current primary is
 *  unreachable, a held request that is not executed within
 *  unreachable_timeout_ms (instead of request_timeout_ms) makes this
 *  replica vote a view change, so a crashed primary is replaced as soon as
 *  its connections drop, while a slow but connected primary still gets the
 *  full timeout. Unknown replica ids are ignored. Call fl_pbft_next_deadline
 *  again afterwards. */
void fl_pbft_peer_reachable(fl_pbft_t *p, uint32_t replica, bool reachable);

/** Advances time to now_ms (never backwards) and fires due timers. FL_OK or
 *  FL_ESTATE before start. */
fl_status_t fl_pbft_tick(fl_pbft_t *p, uint64_t now_ms);

/** Earliest time at which fl_pbft_tick must be called (UINT64_MAX: none). */
uint64_t fl_pbft_next_deadline(const fl_pbft_t *p);

/** Returns the pending actions in order (view valid until the next call of
 *  any other fl_pbft_* function) and their count. */
size_t fl_pbft_actions(const fl_pbft_t *p,
                       const fl_pbft_action_t **acts /* out */);

/** Takes the memory behind action i's `bytes` (i < the count
 *  fl_pbft_actions returned, before fl_pbft_actions_clear): returns the
 *  allocation that holds them, owned by the caller from now on (free with
 *  fl_free); `bytes` (and a DELIVER's `digest`) keep pointing into it, so
 *  a host can queue an action without copying it. NULL when the action
 *  owns no memory or it was taken already (then copy `bytes`). */
void *fl_pbft_action_take(fl_pbft_t *p, size_t i);

/** Drops the pending actions (frees their bytes). */
void fl_pbft_actions_clear(fl_pbft_t *p);

/** Copies the counters into *out. */
void fl_pbft_stats(const fl_pbft_t *p, fl_pbft_stats_t *out /* out */);

/** Fills *out with a snapshot of the replica's position. */
void fl_pbft_info(const fl_pbft_t *p, fl_pbft_info_t *out /* out */);

/* ---- Codec helpers for hosts and tests (protobuf-c stays inside) ---- */

typedef enum fl_pbft_msg_type_e {
  FL_PBFT_MSG_PRE_PREPARE = 1,
  FL_PBFT_MSG_PREPARE = 2,
  FL_PBFT_MSG_COMMIT = 3,
  FL_PBFT_MSG_CHECKPOINT = 4,
  FL_PBFT_MSG_VIEW_CHANGE = 5,
  FL_PBFT_MSG_NEW_VIEW = 6,
  FL_PBFT_MSG_STATE_REQUEST = 7,
  FL_PBFT_MSG_STATE_RESPONSE = 8,
  FL_PBFT_MSG_FORWARD = 9,
  FL_PBFT_MSG_BLOCK_SIGN = 10,
  FL_PBFT_MSG_STATUS = 11,
  FL_PBFT_MSG_BATCH_FETCH = 12,
  FL_PBFT_MSG_BATCH_DATA = 13,
} fl_pbft_msg_type_t;

/** What fl_pbft_msg_peek reports about a SignedMessage. */
typedef struct fl_pbft_msg_info_s {
  fl_pbft_msg_type_t type;
  uint32_t replica;           /* claimed sender (signature NOT checked) */
  uint64_t view;              /* pre-prepare/prepare/commit/new-view/view-change(new view)/status */
  uint64_t seq;               /* pre-prepare/prepare/commit/checkpoint/block-sign/batch-fetch/batch-data */
  uint64_t number;            /* block-sign: the block number */
} fl_pbft_msg_info_t;

/** Decodes the envelope of a SignedMessage (borrowed) without checking the
 *  signature, for routing, logging and tests. FL_OK or FL_EMALFORMED. */
fl_status_t fl_pbft_msg_peek(fl_buf_t msg, fl_pbft_msg_info_t *out /* out */);

/** Whether a received message, known only by what fl_pbft_msg_peek read
 *  from it (its signature NOT checked), would change nothing if it were
 *  stepped now, so that the host may drop it without paying for the
 *  signature check (docs/ordering.md section 2, "Redundant votes"):
 *    - a PREPARE or COMMIT of the current view (no view change running) for
 *      a seq below the low watermark, or whose entry already holds its
 *      pre-prepare and is prepared (PREPARE) or committed (COMMIT) in this
 *      view. Not one for a seq merely executed: a NEW-VIEW re-proposes
 *      those and their executors must still vote;
 *    - a BLOCK-SIGN for a block already delivered, or built and already
 *      holding 2f+1 valid signatures.
 *  Nothing else is ever redundant. When true, counts the message in
 *  rx_redundant. Same thread as the other calls (it reads the state). */
bool fl_pbft_redundant(fl_pbft_t *p, const fl_pbft_msg_info_t *mi);

/** One client request: views, borrowed. */
typedef struct fl_pbft_request_s {
  fl_buf_t envelope;
  fl_buf_t tx_id;
} fl_pbft_request_t;

/** Builds a PRE-PREPARE(view, seq) for the given requests (nreq = 0: null
 *  request) signed through ops as `replica`, appending the SignedMessage
 *  (the batch as its payload) to *out. For tests (Byzantine primaries) and
 *  tools. FL_OK or the sign error. */
fl_status_t fl_pbft_encode_pre_prepare(const fl_pbft_ops_t *ops,
                                       uint32_t replica, uint64_t view,
                                       uint64_t seq,
                                       const fl_pbft_request_t *reqs,
                                       size_t nreq, uint64_t timestamp_ms,
                                       fl_sbuf_t *out);

/** Re-signs a SignedMessage's inner message as `replica` (e.g. to replay
 *  or forge in tests), keeping its payload: appends the new SignedMessage
 *  to *out. FL_OK, FL_EMALFORMED, or the sign error. */
fl_status_t fl_pbft_resign(const fl_pbft_ops_t *ops, uint32_t replica,
                           fl_buf_t msg, fl_sbuf_t *out);

/** Verifies a serialized fl.common.Block as the peer would: parses it,
 *  recomputes SHA-256 of the exact header bytes, checks the header's
 *  data_hash against the data (SHA-256 over u32be(len) || envelope, for
 *  each envelope), and counts distinct replicas < n whose signature of the
 *  header hash verifies with ops.verify_digest. Returns FL_OK when at least
 *  2f+1 do (and fills *number, *header_hash when non-NULL), FL_EMALFORMED,
 *  or FL_EBADSIG. */
fl_status_t fl_pbft_block_verify(const fl_pbft_ops_t *ops, uint32_t n,
                                 fl_buf_t block, uint64_t *number /* out */,
                                 uint8_t header_hash[FL_PBFT_DIGEST_LEN] /* out */);

#endif /* FL_ORDERER_PBFT_PBFT_H */
