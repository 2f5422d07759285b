/* SPDX-License-Identifier: Apache-2.0
 *
 * client.h: fedledger's Gateway SDK: a connection to one gateway peer and
 * the calls an application makes through it (Fabric's fabric-gateway
 * client, in C).
 *
 * A transaction (fl_client_submit) runs these steps, each checked:
 *   1. build and sign a proposal (fresh nonce; tx id = SHA-256(nonce ||
 *      creator));
 *   2. Gateway/Endorse: the peer collects endorsements that satisfy the
 *      policy and returns a *prepared* envelope;
 *   3. the client signs prepared.payload and then checks the result
 *      decodes as an ENDORSER_TRANSACTION envelope with OUR tx id, that the
 *      Transaction inside carries exactly OUR proposal bytes and signature,
 *      and that the endorsed chaincode response is a success (< 400); with
 *      opts.endorsement_msp also that every endorsement verifies (role
 *      peer). Anything else is refused and nothing is submitted;
 *   4. Gateway/Submit with the client-signed envelope;
 *   5. optionally Gateway/CommitStatus (signed request), which waits until
 *      the transaction is in a block, and reports its validation code.
 *
 * Two APIs over one implementation:
 *   - async (fl_client_t): on the caller's libuv loop; many transactions in
 *     flight on one connection, each with its own completion callback
 *     (calls are pipelined over the multiplexed RPC connection). For
 *     gateways, benchmarks and anything that needs throughput.
 *   - blocking (fl_client_sync_t): a private loop run inside each call, for
 *     CLIs, edge clients and tests. One thread at a time per handle.
 *
 * Errors (fl_client_result_t.status and the other callbacks' status):
 *   transport: what fl_net reports (FL_ECONNREFUSED, FL_ETIMEDOUT,
 *     FL_ECLOSED, FL_EUNTRUSTED, FL_ECANCELED on close) or the error the
 *     gateway sent (its fl_status_t and message);
 *   chaincode refused (response status >= 400): FL_NOTFOUND for 404,
 *     FL_EPERM for 403, FL_EINVAL otherwise; cc_status/cc_message say more;
 *   prepared transaction not ours or malformed: FL_EPROTO;
 *   an endorsement that does not verify (with endorsement_msp): what
 *     fl_endorsement_verify returns (FL_EBADSIG, FL_EUNTRUSTED, FL_EPERM...);
 *   committed but invalid: FL_ECONFLICT (MVCC, phantom, duplicate tx id),
 *     FL_EBADSIG (bad creator signature / endorsement), FL_EPERM (policy,
 *     not authorized), FL_EREVOKED, FL_EMALFORMED (other codes); `code`
 *     holds the TxValidationCode (fl_client_code_name).
 *
 * Threads: an fl_client_t belongs to its loop's thread (every function and
 * callback runs there). The identity is borrowed and must outlive it.
 */
#ifndef FL_CLIENT_CLIENT_H
#define FL_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/client/chain.h"
#include "common/client/identity.h"
#include "common/crypto/msp.h"
#include "common/net/tls.h"
#include "common/protoutil/block.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/protoutil.h"

typedef struct fl_client_s fl_client_t;

/** TxValidationCode VALID. */
#define FL_CLIENT_CODE_VALID 0

typedef struct fl_client_opts_s {
  const char *host;             /* gateway peer: IP literal or name */
  uint16_t port;
  const fl_tls_config_t *tls;   /* mutual TLS (fl_client_tls_config); NULL =
                                   plaintext, for tests and benchmarks only */
  const char *channel;          /* required */
  uint32_t connect_timeout_ms;  /* TCP + TLS; 0 = 10 s */
  uint32_t call_timeout_ms;     /* Endorse, Submit, Evaluate, queries; 0 = 30 s */
  uint32_t commit_timeout_ms;   /* CommitStatus wait; 0 = 60 s */
  size_t max_frame;             /* 0 = the RPC default (16 MiB) */
  fl_msp_t *endorsement_msp;    /* optional, borrowed: verify endorsements */
  /** Called once: FL_OK when connected, or why the connection failed. */
  void (*on_connect)(fl_client_t *c, fl_status_t status, void *arg);
  /** Called once when an established connection is lost (not after close). */
  void (*on_disconnect)(fl_client_t *c, fl_status_t status, void *arg);
  void *arg;
} fl_client_opts_t;

/** What to invoke. Everything borrowed for the duration of the call. */
typedef struct fl_client_proposal_s {
  const char *chaincode;                 /* required */
  const fl_buf_t *args;                  /* args[0] = function; n_args >= 1 */
  size_t n_args;
  const fl_buf_t *blobs;                 /* large arguments, stored by hash */
  size_t n_blobs;
  fl_buf_t transient;                    /* visible to chaincode, never recorded */
  const char *const *endorsing_orgs;     /* optional: restrict to these MSP ids */
  size_t n_endorsing_orgs;
} fl_client_proposal_t;

/** The outcome of submit, evaluate or commit_status. In a callback every
 *  view is valid during the callback only; filled by a blocking call, it
 *  owns its memory until fl_client_result_clear. */
typedef struct fl_client_result_s {
  fl_status_t status;            /* FL_OK: done (and VALID when committed) */
  const char *error;             /* "" when FL_OK, else what went wrong */
  char tx_id[FL_TXID_HEX_LEN + 1];
  int32_t cc_status;             /* chaincode response status; 0 if none */
  const char *cc_message;        /* never NULL */
  fl_buf_t payload;              /* chaincode response payload */
  bool committed;                /* a commit status was received */
  int32_t code;                  /* TxValidationCode, when committed */
  uint64_t block_number;         /* when committed */
  void *mem_;                    /* private */
} fl_client_result_t;

typedef void (*fl_client_result_cb)(void *arg, const fl_client_result_t *res);

/** Frees what a blocking call stored in r and zeroes it. NULL-safe. */
void fl_client_result_clear(fl_client_result_t *r);

/** The name of a TxValidationCode ("VALID", "MVCC_READ_CONFLICT", ...,
 *  "UNKNOWN"). Never NULL. */
const char *fl_client_code_name(int32_t code);

/** The fl_status_t that stands for a committed transaction's code (FL_OK
 *  for VALID; see the top of this file). */
fl_status_t fl_client_code_status(int32_t code);

/* ---- async ------------------------------------------------------------- */

/** Creates a client and starts connecting on loop. Borrows opts (copied)
 *  and id (must outlive the client). Calls made before the connection is
 *  ready are queued. Returns FL_OK with *out owned (fl_client_close);
 *  FL_EINVAL (no channel, host or id), FL_ECONFIG (TLS files) with *errmsg
 *  (optional, owned). */
fl_status_t fl_client_new(uv_loop_t *loop, const fl_client_opts_t *opts,
                          const fl_client_identity_t *id, fl_client_t **out /* out */,
                          char **errmsg /* out, optional */);

/** Completes every operation in flight with FL_ECANCELED, closes the
 *  connection and calls cb (may be NULL) when done; the memory is freed
 *  after cb returns. */
void fl_client_close(fl_client_t *c, void (*cb)(fl_client_t *c, void *arg), void *arg);

/** FL_OK when connected, FL_AGAIN while connecting, else the failure. */
fl_status_t fl_client_state(const fl_client_t *c);

/** Operations (submits, evaluates, queries, delivers) in flight. */
size_t fl_client_inflight(const fl_client_t *c);

/** Runs steps 1-5 above (5 only when wait_commit). Returns FL_OK and the
 *  tx id in tx_id (optional) when the transaction is on its way: cb then
 *  runs exactly once. Returns without calling cb: FL_EINVAL (bad proposal),
 *  FL_ECLOSED/FL_ECONNREFUSED/... when the connection failed, FL_ETOOBIG,
 *  FL_ECRYPTO. */
fl_status_t fl_client_submit(fl_client_t *c, const fl_client_proposal_t *p, bool wait_commit,
                             fl_client_result_cb cb, void *arg,
                             char tx_id[FL_TXID_HEX_LEN + 1] /* out, optional */);

/** A query (Gateway/Evaluate): the chaincode runs, nothing is ordered.
 *  res->payload is the chaincode's answer. Returns like fl_client_submit. */
fl_status_t fl_client_evaluate(fl_client_t *c, const fl_client_proposal_t *p,
                               fl_client_result_cb cb, void *arg);

/** Gateway/CommitStatus for tx_id (64 hex digits): waits until the
 *  transaction is committed (opts.commit_timeout_ms). res has committed,
 *  code and block_number. Returns like fl_client_submit (FL_EINVAL for a
 *  malformed tx id). */
fl_status_t fl_client_commit_status(fl_client_t *c, const char *tx_id, fl_client_result_cb cb,
                                    void *arg);

/** A block (Peer/GetBlock). The callback owns block (fl_block_free; NULL
 *  on error). The block is decoded (data hash checked) but not verified
 *  against the orderers: use fl_client_chain_verify for that. */
typedef void (*fl_client_block_cb)(void *arg, fl_status_t status, const char *errmsg,
                                   fl_block_t *block /* owned */);
fl_status_t fl_client_get_block(fl_client_t *c, uint64_t number, fl_client_block_cb cb,
                                void *arg);

/** A committed transaction (Peer/GetTransaction). */
typedef struct fl_client_tx_info_s {
  fl_envelope_t *envelope;      /* decoded; tx id checked against the request */
  fl_buf_t envelope_bytes;      /* exact bytes as stored */
  int32_t code;                 /* TxValidationCode */
  uint64_t block_num, tx_num;
  void *mem_;                   /* private */
} fl_client_tx_info_t;

/** Frees info. NULL-safe. */
void fl_client_tx_info_free(fl_client_tx_info_t *info);

typedef void (*fl_client_tx_cb)(void *arg, fl_status_t status, const char *errmsg,
                                fl_client_tx_info_t *info /* owned */);
fl_status_t fl_client_get_tx(fl_client_t *c, const char *tx_id, fl_client_tx_cb cb, void *arg);

/** A blob by SHA-256 (Peer/GetBlob). data is a view valid during the
 *  callback; FL_ECORRUPT when the bytes do not hash to `hash`. */
typedef void (*fl_client_blob_cb)(void *arg, fl_status_t status, const char *errmsg,
                                  fl_buf_t data);
fl_status_t fl_client_get_blob(fl_client_t *c, const uint8_t hash[FL_SHA256_LEN],
                               fl_client_blob_cb cb, void *arg);

/** Peer/ChainInfo. */
typedef struct fl_client_chain_info_s {
  uint64_t height;                              /* number of blocks */
  uint8_t current_hash[FL_SHA256_LEN];          /* header hash of block height-1 */
  uint8_t previous_hash[FL_SHA256_LEN];         /* zero when height < 2 */
} fl_client_chain_info_t;

typedef void (*fl_client_info_cb)(void *arg, fl_status_t status, const char *errmsg,
                                  const fl_client_chain_info_t *info);
fl_status_t fl_client_chain_info(fl_client_t *c, fl_client_info_cb cb, void *arg);

/** Deliver callbacks: on_block owns block (fl_block_free) and returns 0 to
 *  go on, non-zero to stop (the stream then ends with FL_OK); on_end runs
 *  exactly once. */
typedef int (*fl_client_deliver_block_cb)(void *arg, fl_block_t *block /* owned */);
typedef void (*fl_client_deliver_end_cb)(void *arg, fl_status_t status, const char *errmsg);

/** Streams blocks [start, stop] from the peer (Peer/Deliver, signed seek
 *  request); stop UINT64_MAX follows new blocks until cancelled. With
 *  chain (borrowed, may be NULL = no verification) every block is verified
 *  (chain.h) before on_block sees it; a block that fails ends the stream
 *  with the verification error (FL_EBADSIG, FL_ECORRUPT, FL_EMALFORMED), as
 *  does a block out of sequence (FL_EPROTO). No call timeout applies.
 *  Returns like fl_client_submit; *id (optional) names the stream for
 *  fl_client_deliver_cancel. */
fl_status_t fl_client_deliver(fl_client_t *c, fl_client_chain_t *chain, uint64_t start,
                              uint64_t stop, fl_client_deliver_block_cb on_block,
                              fl_client_deliver_end_cb on_end, void *arg, uint64_t *id /* out */);

/** Cancels a deliver stream: on_end runs with FL_ECANCELED before this
 *  returns. FL_OK or FL_NOTFOUND. */
fl_status_t fl_client_deliver_cancel(fl_client_t *c, uint64_t id);

/* ---- blocking ------------------------------------------------------------ */

typedef struct fl_client_sync_s fl_client_sync_t;

/** Connects (opts' callbacks are ignored). Borrows opts and id (id must
 *  outlive the handle). Returns FL_OK with *out owned (fl_client_sync_close)
 *  or the failure with *errmsg (optional, owned). */
fl_status_t fl_client_sync_connect(const fl_client_opts_t *opts, const fl_client_identity_t *id,
                                   fl_client_sync_t **out /* out */,
                                   char **errmsg /* out, optional */);

/** Closes and frees. NULL-safe. */
void fl_client_sync_close(fl_client_sync_t *s);

/** Blocking submit; *res (cleared first) owns its memory afterwards
 *  (fl_client_result_clear). Returns res->status. */
fl_status_t fl_client_sync_submit(fl_client_sync_t *s, const fl_client_proposal_t *p,
                                  bool wait_commit, fl_client_result_t *res /* out */);
/** Blocking evaluate; as fl_client_sync_submit. */
fl_status_t fl_client_sync_evaluate(fl_client_sync_t *s, const fl_client_proposal_t *p,
                                    fl_client_result_t *res /* out */);
/** Blocking commit status; as fl_client_sync_submit. */
fl_status_t fl_client_sync_commit_status(fl_client_sync_t *s, const char *tx_id,
                                         fl_client_result_t *res /* out */);
/** Blocking get block: *out owned (fl_block_free) on FL_OK. */
fl_status_t fl_client_sync_get_block(fl_client_sync_t *s, uint64_t number,
                                     fl_block_t **out /* out */, char **errmsg /* out, optional */);
/** Blocking get tx: *out owned (fl_client_tx_info_free) on FL_OK. */
fl_status_t fl_client_sync_get_tx(fl_client_sync_t *s, const char *tx_id,
                                  fl_client_tx_info_t **out /* out */,
                                  char **errmsg /* out, optional */);
/** Blocking get blob: the verified bytes are appended to *out. */
fl_status_t fl_client_sync_get_blob(fl_client_sync_t *s, const uint8_t hash[FL_SHA256_LEN],
                                    fl_sbuf_t *out /* out */, char **errmsg /* out, optional */);
/** Blocking chain info. */
fl_status_t fl_client_sync_chain_info(fl_client_sync_t *s, fl_client_chain_info_t *out /* out */,
                                      char **errmsg /* out, optional */);
/** Blocking deliver: on_block(arg, block) per verified block (view valid
 *  during the call; return non-zero to stop). Returns the end status. */
fl_status_t fl_client_sync_deliver(fl_client_sync_t *s, fl_client_chain_t *chain,
                                   uint64_t start, uint64_t stop,
                                   int (*on_block)(void *arg, const fl_block_t *block),
                                   void *arg, char **errmsg /* out, optional */);

#endif /* FL_CLIENT_CLIENT_H */
