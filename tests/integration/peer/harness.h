/* SPDX-License-Identifier: Apache-2.0
 *
 * harness.h: a loopback network of real fedledger-orderer and fedledger-peer
 * processes for the peer's integration tests: 4 orderers and 2
 * organisations x 2 peers on 127.0.0.1, the kvstore chaincode and a small
 * test chaincode ("counter", read-modify-write) with the endorsement
 * policy AND('Org1MSP.peer', 'Org2MSP.peer').
 *
 * pn_net_new makes a temp dir, runs `fedledger cryptogen` and `fedledger
 * genesis` (the real CLI), and writes orderer.yaml and core.yaml files with
 * free ports. Processes are started, signalled and killed by PID only;
 * pn_net_free (and an atexit hook, for early exits) SIGKILLs every process
 * still alive. Client helpers build proposals with protoutil and talk to
 * the gateway / peer / orderer over mutual TLS with blocking RPC clients,
 * or, for load, with an async driver on a private libuv loop.
 *
 * Threads: one thread.
 */
#ifndef FL_TESTS_INTEGRATION_PEER_HARNESS_H
#define FL_TESTS_INTEGRATION_PEER_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"
#include "common/net/rpc.h"
#include "common/protoutil/proposal.h"

#define PN_NORD 4
#define PN_NPEER 4
#define PN_CHANNEL "fedledger"

typedef struct pn_opts_s {
  const char *log;            /* peers' and orderers' log spec; NULL = "info" */
  const char *stall_timeout;  /* peers' deliver.stall_timeout; NULL = "2s" */
  const char *batch_timeout;  /* genesis pbft.batch_timeout; NULL = "10ms" */
  bool keep;                  /* keep the temp dir (FL_TEST_KEEP=1 too) */
  uint32_t dedup_window;      /* orderers' pbft.dedup_window (seqs whose tx
                                 ids they remember); 0 = their default */
} pn_opts_t;

/* One client identity: its signer, serialized identity and TLS files. */
typedef struct pn_ident_s {
  char mspid[16];
  fl_signer_t *key;
  fl_sbuf_t id;
  char tls_cert[600], tls_key[600];
} pn_ident_t;

typedef struct pn_net_s {
  char dir[256];
  char bin[512];
  uint16_t oport[PN_NORD];
  uint16_t pport[PN_NPEER], eport[PN_NPEER], opsport[PN_NPEER];
  pid_t opid[PN_NORD], ppid[PN_NPEER];
  const char *pname[PN_NPEER];   /* "peer0.org1.example.com" ... */
  int porg[PN_NPEER];            /* 0 = Org1, 1 = Org2 */
  pn_ident_t client[2];          /* client1@org1, client1@org2 */
  pn_ident_t peerid[PN_NPEER];   /* the peers' signing identities */
  char tls_roots[512];           /* every TLS CA, one bundle */
  const char *ca_files[1];
  fl_tls_config_t tls[2];        /* client TLS per org */
  fl_msp_t *msp;                 /* the network's MSP (for checks) */
  fl_verifier_t *overif[PN_NORD];
  bool keep;
} pn_net_t;

/** Builds the files of the network (no process yet). bin_dir holds
 *  fedledger, fedledger-orderer, fedledger-peer; the two .so files are
 *  copied into the network's chaincode dir. Returns FL_OK with *out
 *  (pn_net_free) or prints why. */
fl_status_t pn_net_new(const pn_opts_t *o, const char *bin_dir, const char *kvstore_so,
                       const char *counter_so, pn_net_t **out);

/** Kills every process still alive (SIGKILL, by PID) and removes the dir
 *  unless kept. NULL-safe. */
void pn_net_free(pn_net_t *net);

fl_status_t pn_start_orderer(pn_net_t *net, int i);
fl_status_t pn_start_peer(pn_net_t *net, int i);
/** Starts peer i with another configuration file (its log is the same). */
fl_status_t pn_start_peer_cfg(pn_net_t *net, int i, const char *config);
/** Counts the lines of peer i's log that contain needle. */
int pn_log_count(pn_net_t *net, int i, const char *needle);
/** Sends sig to peer i; SIGKILL and SIGTERM also reap it. */
fl_status_t pn_signal_peer(pn_net_t *net, int i, int sig);
/** Waits until peer i answers Peer/ChainInfo (up to timeout_ms). */
fl_status_t pn_wait_peer(pn_net_t *net, int i, uint32_t timeout_ms);
/** Waits until orderer i answers Deliver of block 0. */
fl_status_t pn_wait_orderer(pn_net_t *net, int i, uint32_t timeout_ms);
/** Starts all orderers and peers and waits for them. */
fl_status_t pn_start_all(pn_net_t *net);

/** A blocking connection to peer i (as client of org `org`). */
fl_status_t pn_connect_peer(pn_net_t *net, int i, int org, fl_rpc_sync_t **out);
/** A blocking connection to orderer i. */
fl_status_t pn_connect_orderer(pn_net_t *net, int i, fl_rpc_sync_t **out);

/** Builds a signed proposal by org's client. args: NULL-terminated C
 *  strings. sp (replaced) gets the SignedProposal bytes. */
fl_status_t pn_proposal(pn_net_t *net, int org, const char *cc, const char *const *args,
                        fl_sbuf_t *sp, char txid[FL_TXID_HEX_LEN + 1]);

/** Gateway/Endorse: on success *prepared gets the Envelope payload bytes
 *  to sign (replaced) and *cc_status the chaincode status; a chaincode
 *  refusal gives FL_OK with *cc_status >= 400 and prepared empty. */
fl_status_t pn_gw_endorse(fl_rpc_sync_t *s, fl_buf_t sp, const char *txid, fl_sbuf_t *payload,
                          int *cc_status, fl_sbuf_t *cc_payload, char **err);
/** Signs payload by org's client and builds the Envelope (env replaced). */
fl_status_t pn_sign_envelope(pn_net_t *net, int org, fl_buf_t payload, fl_sbuf_t *env);
/** Gateway/Submit of a signed envelope. */
fl_status_t pn_gw_submit(fl_rpc_sync_t *s, fl_buf_t env, const char *txid, char **err);
/** Gateway/CommitStatus (signed by org's client): *code and *block. */
fl_status_t pn_gw_status(pn_net_t *net, fl_rpc_sync_t *s, int org, const char *txid,
                         uint32_t timeout_ms, int *code, uint64_t *block, char **err);
/** Gateway/CommitStatus naming `identity` (serialized), signed by key
 *  (NULL: unsigned; corrupt: one bit of the signature flipped). */
fl_status_t pn_gw_status_as(fl_rpc_sync_t *s, fl_buf_t identity, const fl_signer_t *key,
                            bool corrupt, const char *txid, uint32_t timeout_ms, int *code,
                            uint64_t *block, char **err);
/** Endorse + sign + submit + commit status through gateway s. */
fl_status_t pn_invoke(pn_net_t *net, fl_rpc_sync_t *s, int org, const char *cc,
                      const char *const *args, int *code, char txid[FL_TXID_HEX_LEN + 1]);
/** Endorse + sign + submit + commit status of a ready SignedProposal. */
fl_status_t pn_invoke_sp(pn_net_t *net, fl_rpc_sync_t *s, int org, fl_buf_t sp, const char *txid,
                         int *code);
/** Peer/GetBlob: the bytes (replaced). */
fl_status_t pn_get_blob(fl_rpc_sync_t *s, const uint8_t hash[32], fl_sbuf_t *out);
/** Gateway/Evaluate: chaincode status and payload (replaced). */
fl_status_t pn_gw_evaluate(pn_net_t *net, fl_rpc_sync_t *s, int org, const char *cc,
                           const char *const *args, int *cc_status, fl_sbuf_t *payload);
/** Peer/Endorse directly: the ProposalResponse bytes (replaced). */
fl_status_t pn_peer_endorse(fl_rpc_sync_t *s, fl_buf_t sp, fl_sbuf_t *resp);
/** Orderer/Broadcast: the orderer's status. */
fl_status_t pn_broadcast(fl_rpc_sync_t *s, fl_buf_t env, fl_status_t *st, char **info);
/** Peer/Deliver of blocks [start, stop] (stop UINT64_MAX: follow until cb
 *  returns non-zero); cb gets each Block's bytes (re-encoded by the test's
 *  protobuf-c). Returns the stream's end status. */
fl_status_t pn_deliver(pn_net_t *net, fl_rpc_sync_t *s, uint64_t start, uint64_t stop,
                       int (*cb)(void *arg, fl_buf_t block), void *arg);
/** Peer/ChainInfo. */
fl_status_t pn_chain_info(fl_rpc_sync_t *s, uint64_t *height, uint8_t hash[32]);
/** Peer/GetBlock: the stored bytes (replaced). */
fl_status_t pn_get_block(fl_rpc_sync_t *s, uint64_t number, fl_sbuf_t *out);
/** Peer/GetTransaction: the validation code and block number. */
fl_status_t pn_get_tx(fl_rpc_sync_t *s, const char *txid, int *code, uint64_t *block);
/** Waits until peer i's height reaches h (ChainInfo polling; the test side
 *  only). */
fl_status_t pn_wait_height(pn_net_t *net, int i, uint64_t h, uint32_t timeout_ms);

/** Load driver: n transactions "put <prefix><k> v<k>" spread round robin
 *  over the gateways of `gws` (peer indexes), at most `inflight` at once,
 *  each through Endorse, Submit and CommitStatus. Counts VALID results in
 *  *valid and everything else in *failed (first few failures printed). */
fl_status_t pn_load(pn_net_t *net, const int *gws, int ngw, const char *prefix, uint32_t n,
                    uint32_t inflight, uint32_t *valid, uint32_t *failed);

/** One kvstore transaction through peer 0's gateway must commit VALID
 *  within timeout_ms; otherwise prints why (pn_diagnose) and fails. */
fl_status_t pn_smoke(pn_net_t *net, uint32_t timeout_ms);

/** Prints the known causes of a stuck network found in the peers' logs. */
void pn_diagnose(pn_net_t *net);

/** Monotonic milliseconds. */
uint64_t pn_now_ms(void);
void pn_sleep_ms(uint32_t ms);

#endif /* FL_TESTS_INTEGRATION_PEER_HARNESS_H */
