/* SPDX-License-Identifier: Apache-2.0
 *
 * harness.h: runs a network of real fedledger-orderer processes on
 * 127.0.0.1 for the integration test and the ordering benchmark (never
 * linked into a production binary).
 *
 * fl_oh_net_new makes a temp dir, generates crypto material with
 * `fedledger cryptogen`, builds a genesis block (fl_genesis_build, signed by
 * the orderer organisation's admin) naming n orderers on free loopback
 * ports, and writes one orderer.yaml per replica. Processes are started and
 * signalled by PID only; fl_oh_net_free kills (SIGKILL) every process it
 * started that is still alive, and an atexit hook does the same if the
 * program exits early.
 *
 * Clients: fl_oh_net_client_opts fills RPC client options for a replica
 * with the client identity's TLS files; fl_oh_envelope builds a signed
 * ENDORSER_TRANSACTION envelope whose data starts with a be64 index.
 *
 * Threads: one thread.
 */
#ifndef FL_ORDERER_HARNESS_HARNESS_H
#define FL_ORDERER_HARNESS_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/sign.h"
#include "common/net/rpc.h"

#define FL_OH_MAXN 16

typedef struct fl_oh_opts_s {
  const char *bin_dir;        /* holds fedledger and fedledger-orderer; NULL:
                                 $FL_BINARY_DIR/bin (ctest sets it), else build/bin */
  uint32_t n;                 /* replicas (3f+1) */
  bool verify;                /* broadcast.verify */
  uint32_t batch_max_count;   /* genesis pbft.batch_max_count; 0 = 500 */
  uint32_t batch_timeout_ms;  /* 0 = 5 */
  uint32_t checkpoint_interval; /* 0 = 32 */
  uint32_t view_change_timeout_ms; /* 0 = 1000 */
  const char *request_timeout; /* orderer.yaml pbft.request_timeout; NULL = default */
  uint32_t max_inflight;      /* orderer.yaml pbft.max_inflight; 0 = default */
  const char *extra_yaml;     /* appended to every orderer.yaml (top-level
                                 sections, e.g. "broadcast:\n  batch: 512\n") */
  const char *log;            /* general.log; NULL = "info" */
  bool keep;                  /* keep the temp dir */
  bool nosync;                /* storage.sync: false */
  bool ops;                   /* operations endpoint on a free port each */
} fl_oh_opts_t;

typedef struct fl_oh_net_s {
  char dir[256];
  uint32_t n, f;
  uint16_t port[FL_OH_MAXN];
  uint16_t ops_port[FL_OH_MAXN]; /* operations endpoint (opts.ops), else 0 */
  pid_t pid[FL_OH_MAXN];
  bool stopped[FL_OH_MAXN];
  char bin_orderer[512];
  fl_signer_t *client_key;    /* client1@org1 */
  fl_sbuf_t client_id;        /* its serialized identity */
  fl_verifier_t *verifiers[FL_OH_MAXN]; /* orderer signing keys by replica */
  uint8_t genesis_hash[32];   /* block 0's header hash (for the first link check) */
  char tls_cert[512], tls_key[512], tls_ca[512];
  const char *ca_files[1];
  fl_tls_config_t tls;
  bool keep;
} fl_oh_net_t;

/** Builds the network's files (no process yet). Returns FL_OK and *out
 *  (fl_oh_net_free) or an error, printed to stderr. */
fl_status_t fl_oh_net_new(const fl_oh_opts_t *opts, fl_oh_net_t **out /* out */);

/** Starts replica i (stdout/stderr to DIR/orderer<i>.log, appended). */
fl_status_t fl_oh_start(fl_oh_net_t *net, uint32_t i);

/** Waits until replica i answers a Deliver of block 0 (up to timeout_ms).
 *  FL_OK or FL_ETIMEDOUT. */
fl_status_t fl_oh_wait_ready(fl_oh_net_t *net, uint32_t i, uint32_t timeout_ms);

/** Sends sig to replica i's process; SIGKILL/SIGTERM also reap it (SIGTERM
 *  waits up to 10 s and returns FL_OK only on exit status 0). */
fl_status_t fl_oh_signal(fl_oh_net_t *net, uint32_t i, int sig);

/** Kills every started process, removes the dir unless keep. NULL-safe. */
void fl_oh_net_free(fl_oh_net_t *net);

/** RPC client options for replica i (TLS with the client identity).
 *  Callbacks are left to the caller. The options borrow net. */
fl_rpc_client_opts_t fl_oh_client_opts(fl_oh_net_t *net, uint32_t i);

/** Builds a signed envelope (client identity) whose data is be64(index)
 *  padded with zeros to `size` total envelope-data bytes (>= 8). */
fl_status_t fl_oh_envelope(fl_oh_net_t *net, uint64_t index, size_t size, fl_sbuf_t *out);

/** What fl_oh_block_check reports about a verified block. */
typedef struct fl_oh_block_s {
  uint64_t number;
  uint64_t view, seq;         /* PBFT metadata (not signed) */
  uint64_t timestamp_ms;      /* metadata: the batch's wall-clock time */
  uint8_t hash[32];           /* header hash */
  size_t nidx;                /* envelope indexes written to idx */
} fl_oh_block_t;

/** Checks one delivered block as a peer does, with common/protoutil:
 *  fl_block_decode (structure, data hash over u32be(len) || envelope,
 *  header hash over the exact header bytes), fl_block_verify_signatures
 *  (2f+1 orderer signatures of SHA-256(header), keys from the genesis
 *  block; skipped for block 0) and, when prev_hash is given,
 *  fl_block_check_link. Fills *out and, for each envelope, its be64 index
 *  (appended to idx, up to cap; idx may be NULL). FL_OK, or the failing
 *  check's status with *why. */
fl_status_t fl_oh_block_check(fl_oh_net_t *net, fl_buf_t block, const uint8_t *prev_hash,
                              fl_oh_block_t *out /* out */, uint64_t *idx, size_t cap,
                              const char **why /* out */);

/** Opens an Orderer/Deliver stream on c for blocks from `start` on (live
 *  tail), signed by the client identity; on_msg gets each DeliverResponse
 *  (fl_ab_deliver_decode). FL_OK or the RPC layer's error. */
fl_status_t fl_oh_deliver(fl_oh_net_t *net, fl_rpc_client_t *c, uint64_t start,
                          fl_rpc_msg_cb on_msg, fl_rpc_end_cb on_end, void *arg);

/** A Deliver reader: follows replica `id`'s chain from block 1, checks every
 *  block with fl_oh_block_check (hash link included) and keeps the header
 *  hash of each height. A block that does not verify or does not follow is
 *  a test failure: the reader prints FAIL and exits 1 (the atexit hook
 *  stops every process). */
typedef struct fl_oh_reader_s fl_oh_reader_t;
/** Called for each verified block; idx holds b->nidx envelope indexes. */
typedef void (*fl_oh_block_fn)(void *arg, fl_oh_reader_t *r, const fl_oh_block_t *b,
                               const uint64_t *idx);
struct fl_oh_reader_s {
  fl_oh_net_t *net;
  uint32_t id;                /* the replica read from */
  fl_rpc_client_t *c;         /* NULL when closed */
  uint64_t height;            /* last verified block (0: the genesis block) */
  uint8_t (*hash)[32];        /* header hash by number, [cap] */
  uint64_t cap;
  uint64_t envelopes;         /* envelopes in the blocks read */
  fl_oh_block_fn on_block;    /* optional */
  void *arg;
};

/** Sets r up for replica id, heights below cap (genesis hash at 0). */
void fl_oh_reader_init(fl_oh_reader_t *r, fl_oh_net_t *net, uint32_t id, uint64_t cap);
/** Connects and opens the stream from r->height + 1. FL_OK or an error. */
fl_status_t fl_oh_reader_open(fl_oh_reader_t *r, uv_loop_t *loop);
/** Closes the stream (NULL-safe); r keeps what it read. */
void fl_oh_reader_close(fl_oh_reader_t *r);
/** Closes and frees what init allocated. */
void fl_oh_reader_free(fl_oh_reader_t *r);
/** The first height at or below the lower of the two where a and b hold
 *  different header hashes, or 0 when they agree. */
uint64_t fl_oh_reader_diverge(const fl_oh_reader_t *a, const fl_oh_reader_t *b);

/** Ends a test's network: closes n readers (rd may be NULL) and n Broadcast
 *  clients (bc may be NULL, NULL entries are skipped), runs loop until the
 *  closes are done, stops every orderer of net with SIGTERM (fl_oh_signal)
 *  and closes loop. Returns a bitmask of the replicas that did not exit
 *  cleanly: 0 when all did. net itself is left to fl_oh_net_free. */
uint32_t fl_oh_shutdown(fl_oh_net_t *net, uv_loop_t *loop, fl_oh_reader_t *rd,
                        fl_rpc_client_t **bc, uint32_t n);

/** Runs loop until pred(arg) or timeout_ms (a 20 ms timer keeps it waking);
 *  returns pred(arg). */
bool fl_oh_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, uint32_t timeout_ms);

/** True when replica i's log (DIR/orderer<i>.log) has a line containing s. */
bool fl_oh_log_has(fl_oh_net_t *net, uint32_t i, const char *s);

/** Monotonic milliseconds. */
uint64_t fl_oh_now_ms(void);

/** GET path from replica i's operations endpoint (127.0.0.1:ops_port[i],
 *  10 s socket timeouts): returns the HTTP status (0 when the connection
 *  failed or the answer is not HTTP) and the whole answer in *out. */
int fl_oh_http_get(fl_oh_net_t *net, uint32_t i, const char *path, fl_sbuf_t *out);

/** A port nobody uses now, for a node to bind a moment later: below the
 *  kernel's ephemeral range, from a block of ports this process owns
 *  (flock on $TMPDIR/fedledger-ports/<k>.lock; FL_PORT_BASE/FL_PORT_SPAN
 *  override). Tests that ctest runs side by side never get the same port.
 *  0 when the block has no free port left. */
uint16_t fl_oh_free_port(void);

#endif /* FL_ORDERER_HARNESS_HARNESS_H */
