/* SPDX-License-Identifier: Apache-2.0
 *
 * endorser.h: the peer's endorser (Peer/Endorse) and query path
 * (Peer/Evaluate).
 *
 * fl_endorser_process takes the bytes of a SignedProposal and always
 * answers with a ProposalResponse (its bytes), whose `response` is the
 * verdict:
 *
 *   200..399  the chaincode's response; for Endorse the payload
 *             (ProposalResponsePayload: proposal hash, read-write set,
 *             event, response, chaincode version) is signed by this peer
 *             (endorsement = its identity and its signature over
 *             payload || identity);
 *   400       the proposal does not decode, names another channel, or its
 *             header timestamp is further than the timestamp window from
 *             this peer's clock (either way; the message says by how much);
 *   403       the creator's signature, membership, role (client or admin)
 *             or revocation check failed;
 *   404       the chaincode is not defined or not installed on this peer;
 *   409       the tx id is already in the ledger;
 *   500       the chaincode crashed, timed out or a state read failed (the
 *             message says which); retrying on another peer may work;
 *   >= 400    any other status is the chaincode's own error response.
 * Nothing but a 2xx/3xx chaincode response is ever endorsed, and a
 * refused proposal carries no payload.
 *
 * Simulation runs on a snapshot of the ledger (one per proposal) through
 * the chaincode runtime; state keys are namespaced by chaincode name
 * (wire.h). The creator's signature check goes through the signature
 * cache, and this peer's own endorsement signature is added to it, so the
 * committer does not verify either again.
 *
 * Threads: fl_endorser_process may run on any number of threads at once
 * (the ledger, runtime, MSP and cache are thread-safe; the endorser holds
 * no mutable state). new/free must not overlap it.
 */
#ifndef FL_PEER_NODE_ENDORSER_H
#define FL_PEER_NODE_ENDORSER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"
#include "common/protoutil/protoutil.h"
#include "peer/ccrt/ccrt.h"
#include "peer/ledger/ledger.h"
#include "peer/node/sigcache.h"

typedef struct fl_endorser_s fl_endorser_t;

/** Everything the endorser borrows (all must outlive it). */
typedef struct fl_endorser_opts_s {
  const char *channel;        /* the network's channel name */
  fl_msp_t *msp;
  fl_sigcache_t *sigcache;    /* optional */
  fl_ledger_t *ledger;
  fl_ccrt_t *ccrt;
  const fl_signer_t *signer;  /* this peer's signing key */
  fl_buf_t identity;          /* its serialized identity (copied) */
  /* A proposal whose header timestamp differs from this peer's clock by
   * more than this is refused (400): a captured proposal cannot be
   * endorsed again much later, and clients with a wrong clock learn it at
   * once. 0 = FL_ENDORSER_TS_WINDOW_DEFAULT_MS; UINT64_MAX = no check. */
  uint64_t timestamp_window_ms;
  /* The clock the window is measured against (wall milliseconds since the
   * epoch); NULL = fl_wall_ms. For tests of clock skew. */
  uint64_t (*now_ms)(void);
} fl_endorser_opts_t;

/** Fabric's default (peer.authentication.timewindow): 15 minutes. */
#define FL_ENDORSER_TS_WINDOW_DEFAULT_MS (15ull * 60 * 1000)

/** What one call decided, for logs, metrics and the gateway. */
typedef struct fl_endorse_result_s {
  int32_t status;                   /* the verdict (see top) */
  bool endorsed;                    /* an endorsement was signed */
  char tx_id[FL_TXID_HEX_LEN + 1];  /* "" when the proposal did not decode */
  char reason[192];                 /* "" or why it was refused */
  uint64_t sim_ns;                  /* chaincode time */
} fl_endorse_result_t;

/** Creates an endorser. Checks that identity is a valid peer of the MSP
 *  whose certificate belongs to signer. Returns FL_OK with *out owned
 *  (fl_endorser_free); FL_EINVAL for missing options; what fl_msp_validate
 *  returns for an identity that does not qualify; FL_EPERM when the key
 *  does not match the certificate. */
fl_status_t fl_endorser_new(const fl_endorser_opts_t *opts, fl_endorser_t **out /* out */);

/** Frees e. NULL is fine. */
void fl_endorser_free(fl_endorser_t *e);

/** Processes a SignedProposal (borrowed). endorse = false is Evaluate: the
 *  same checks and simulation, no signature, no payload. Writes the
 *  ProposalResponse bytes into out (replaced) and fills *res. Returns
 *  FL_OK whenever a ProposalResponse was written (also for refusals: see
 *  res->status); FL_EINVAL for NULL arguments; FL_ETOOBIG when the
 *  response cannot be encoded. Thread-safe. */
fl_status_t fl_endorser_process(fl_endorser_t *e, fl_buf_t signed_proposal, bool endorse,
                                fl_sbuf_t *out /* out */, fl_endorse_result_t *res /* out */);

/** The state ops the chaincode runtime reads through: ctx must point to an
 *  fl_endorser_state_t. Exposed for the tests and tools that simulate
 *  against a ledger. */
typedef struct fl_endorser_state_s {
  fl_ledger_t *ledger;
  const fl_ledger_snap_t *snap;  /* NULL = latest */
  const char *ns;                /* chaincode name */
} fl_endorser_state_t;

/** The fl_ccrt_state_ops_t table over an fl_endorser_state_t. */
const fl_ccrt_state_ops_t *fl_endorser_state_ops(void);

#endif /* FL_PEER_NODE_ENDORSER_H */
