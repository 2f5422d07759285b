/* SPDX-License-Identifier: Apache-2.0
 *
 * node_int.h: the orderer node's private state, shared by node.c (setup,
 * PBFT host, persistence, shutdown), rpc.c (Broadcast, Deliver, Consensus,
 * replica links, block sync).
 *
 * Invariants:
 *   1. Everything here is touched only on the loop thread, except what a
 *      worker job is explicitly handed (a kv batch, a list of calls whose
 *      request bytes it reads, a signed seek to verify).
 *   2. Queue q[qhead..qlen) holds the copied PBFT actions not carried out
 *      yet, in order. While `writing`, q[qhead..qbarrier) is covered by the
 *      synced batch in flight: none of its SENDs or DELIVER notifications
 *      happen before that batch is durable.
 *   3. height is the highest block durable in the block store (all of
 *      0..height are there); qheight >= height is the highest block queued
 *      for writing, qhash its header hash.
 */
#ifndef FL_ORDERER_NODE_NODE_INT_H
#define FL_ORDERER_NODE_NODE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <uv.h>

#include "common/base/buf.h"
#include "common/config/config.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"
#include "common/crypto/x509.h"
#include "common/kv/kv.h"
#include "common/net/loop.h"
#include "common/net/rpc.h"
#include "common/ops/metrics.h"
#include "common/ops/ops.h"
#include "common/protoutil/genesis.h"
#include "common/protoutil/protoutil.h"
#include "orderer/pbft/pbft.h"

#define FL__ORD_LOG "orderer"

typedef struct fl__node_s fl__node_t;

/* Broadcast outcomes, the `result` label of
 * fedledger_orderer_broadcast_total (metrics.c holds the names). */
typedef enum fl__bc_result_e {
  FL__BC_ACCEPTED = 0,
  FL__BC_MALFORMED,       /* undecodable envelope or header */
  FL__BC_WRONG_TYPE,      /* not ENDORSER_TRANSACTION */
  FL__BC_WRONG_CHANNEL,
  FL__BC_BAD_SIGNATURE,   /* creator signature does not verify */
  FL__BC_NOT_MEMBER,      /* creator refused by the MSP (unknown CA, revoked, expired) */
  FL__BC_DUPLICATE,       /* tx id pending or ordered */
  FL__BC_BUSY,            /* admission control: retry */
  FL__BC_UNAVAILABLE,     /* shutting down */
  FL__BC_REFUSED,         /* refused by consensus otherwise */
  FL__BC_N
} fl__bc_result_t;

/* RPC methods, the `method` label of fedledger_orderer_rpc_errors_total. */
typedef enum fl__rpc_method_e {
  FL__M_BROADCAST = 0,
  FL__M_DELIVER,
  FL__M_CONSENSUS,        /* streams refused, replica links dropped */
  FL__M_N
} fl__rpc_method_t;

/* The operations endpoint's registry and the handles the node updates
 * (metrics.c). Counters of the PBFT core are mirrored from
 * fl_pbft_stats by delta (`last`). */
typedef struct fl__node_metrics_s {
  fl_metrics_t *reg;
  fl_gauge_t *height, *view, *view_change, *checkpoint, *last_exec, *queue, *links_up;
  fl_counter_t *view_changes, *new_views, *state_transfers, *requests, *blocks;
  fl_counter_t *dropped, *broadcast, *rpc_errors, *relayed, *censor_timeouts, *snapshots;
  fl_gauge_t *parked;           /* Broadcast calls in the wait queue */
  fl_counter_t *read_pauses;    /* connections whose reading a parked call stopped */
  fl_histogram_t *cut, *write;
  fl_pbft_stats_t last;
  uint64_t vc_since;            /* monotonic ms a view change started; 0: none */
} fl__node_metrics_t;

typedef struct fl__qact_s {
  fl_pbft_action_type_t type;
  uint32_t to;
  fl_pbft_record_t kind;
  uint64_t seq, view, block_number;
  uint32_t nreq;
  void *own;            /* owned memory holding bytes (taken from the machine or a copy) */
  const uint8_t *bytes; /* view into own */
  size_t len;
  uint64_t ts;    /* DELIVER: batch timestamp (wall ms) */
} fl__qact_t;

#define FL__LINK_QMAX ((size_t)256 << 20)
#define FL__VCACHE_SLOTS 4096

typedef struct fl__link_s {
  fl__node_t *n;
  uint32_t id;
  char *host;
  uint16_t port;
  fl_rpc_client_t *client;   /* we receive replica id's messages on it */
  bool stream_open;
  bool connected;
  uv_timer_t retry;
  uint32_t backoff_ms;
  fl_rpc_call_t *out;        /* the stream replica id opened to us */
  uint64_t sent, dropped;
  /* Messages for replica id that met backpressure, in order (owned
   * copies); sent from the drain callback. Bounded by FL__LINK_QMAX bytes:
   * beyond that messages are dropped (PBFT retransmits what matters). */
  fl_sbuf_t *oq;
  size_t oq_head, oq_len, oq_cap, oq_bytes;
} fl__link_t;

/* A Broadcast call waiting for room in the replica (rpc.c, flow control):
 * it holds its connection's reading paused and its cancel callback points
 * here, so a connection that closes unlinks and frees it. */
typedef struct fl__bcpark_s fl__bcpark_t;
typedef struct fl__bcq_s {
  fl__bcpark_t *head, *tail;    /* oldest first */
} fl__bcq_t;
struct fl__bcpark_s {
  fl__node_t *n;
  fl__bcq_t *q;                 /* the queue it is in */
  fl_rpc_call_t *call;
  uint64_t since;               /* monotonic ms it was parked */
  char txid[FL_TXID_HEX_LEN];   /* ready queue: the verified envelope's tx id */
  fl__bcpark_t *prev, *nxt;
};

typedef struct fl__dstream_s {
  fl__node_t *n;
  fl_rpc_call_t *call;
  uint64_t next, stop;
  uint64_t fault_id;            /* FL_ORDERER_FAULTS: order of opening */
  struct fl__dstream_s *prev, *nxt;
} fl__dstream_t;

struct fl__node_s {
  uv_loop_t loop;
  /* configuration */
  fl_config_t *cfg;
  uint32_t self, nrep, f;
  const char *data_dir, *genesis_path, *listen_host, *msp_dir;
  uint16_t listen_port;
  bool tls_on, verify, sync;
  bool check_tx;                /* broadcast.check_transaction */
  const char *tls_cert, *tls_key;
  char *tls_roots;
  uint32_t bc_batch, bc_workers, max_pending;
  uint32_t max_parked;          /* broadcast.max_parked (0: refuse at once) */
  uint64_t park_timeout_ms;     /* broadcast.park_timeout */
  uint64_t request_timeout_ms, unreachable_timeout_ms, resend_ms;
  uint64_t censor_timeout_ms;   /* pbft.censor_timeout (0 = off) */
  uint32_t max_inflight;
  uint32_t dedup_window; /* pbft.dedup_window: seqs whose tx ids stay refused */
  uint32_t busy_inflight;       /* pbft.busy_inflight (adaptive batching) */
  uint64_t busy_timeout_ms;     /* pbft.busy_batch_timeout */
  uint64_t forward_interval_ms; /* pbft.forward_interval */
  bool cut_when_idle;           /* pbft.cut_when_idle */
  size_t max_msg;
  /* network and identity */
  fl_netconfig_t *net;
  fl_block_t *genesis;
  fl_msp_t *msp;
  fl_signer_t *signer;
  fl_sbuf_t identity;          /* serialized identity of this replica */
  fl_cert_t **ocerts;          /* orderer signing certificates by id */
  const fl_verifier_t **verifiers;
  /* op_verify's cache of verified consensus-message signatures */
  pthread_mutex_t vc_mu;
  bool vc_mu_ok;
  uint8_t vcache[FL__VCACHE_SLOTS][32];
  fl_tls_config_t tls_srv;
  const char *ca_files[1];
  /* storage */
  fl_kv_t *kv;
  fl_kv_cf_t *cf_blocks, *cf_pbft;
  uint64_t height, qheight;
  uint8_t qhash[32];
  uint64_t entry_lo;            /* lowest ENTRY/PREPARED seq that may exist */
  uint64_t committed_lo, committed_hi; /* COMMITTED records stored */
  uint64_t retention;           /* storage.committed_retention (seqs) */
  /* consensus */
  fl_pbft_t *pbft;
  fl_pbft_info_t info;
  fl_pbft_stats_t stats;
  uv_timer_t timer;
  fl__qact_t *q;
  size_t qlen, qcap, qhead, qbarrier;
  bool writing;
  /* The writer thread: a dedicated thread for the replica log, so that a
   * write never waits behind signature checks in libuv's shared pool. */
  pthread_t wthread;
  pthread_mutex_t wmu;
  pthread_cond_t wcv;
  void *wjob;
  bool wquit, wstarted;
  fl_loop_poster_t *wposter;
  uv_idle_t wclose;
  /* rpc */
  fl_rpc_server_t *srv;
  fl__link_t *links;
  fl_rpc_call_t **bc_pend;
  size_t bc_n, bc_cap;
  uint32_t bc_jobs;
  size_t bc_injob;              /* calls in verification jobs */
  /* Broadcast flow control: `park` holds calls that found the replica
   * full (pending_requests + bc_n + bc_injob >= max_pending); they go to
   * bc_pend as room appears. `ready` holds verified calls the machine
   * refused as full (FL_AGAIN from fl_pbft_submit); they are submitted
   * again first. Either is refused AGAIN after park_timeout_ms. park_n
   * counts both; new calls park only while park_n < max_parked. */
  fl__bcq_t park, ready;
  size_t park_n;
  uv_check_t check;
  /* consensus messages waiting for / in signature verification (rpc.c):
   * received bytes (owned copies) are decoded and verified on worker
   * threads in jobs, and the jobs' results are fed to the machine in the
   * order the messages arrived (cs_head..cs_tail is that order). */
  fl_sbuf_t *cs_pend;           /* consensus proper (verified first) */
  size_t cs_n, cs_cap;
  fl_sbuf_t *cs_bulk;           /* Forward messages (client requests) */
  size_t cs_nb, cs_capb;
  uint32_t cs_jobs;
  struct fl__csjob_s *cs_head, *cs_tail;
  fl__dstream_t *streams;
  /* block sync from peers (gap after a restart) */
  bool syncing;
  uint32_t sync_peer;
  uint64_t sync_call, sync_target;
  /* operations endpoint (metrics.c) */
  const char *ops_host;
  uint16_t ops_port;
  uint64_t stuck_vc_ms;         /* operations.stuck_view_change */
  fl_ops_server_t *ops;
  fl__node_metrics_t mx;
  bool store_failed;            /* a replica log write failed */
#ifdef FL_ORDERER_FAULTS
  /* faults.c: Byzantine hooks of the test build (FL_ORDERER_FAULT) */
  bool fault_equivocate, fault_bad_sig, fault_deliver_lie, fault_withhold, fault_censor;
  uint64_t fault_withhold_at;
  uint64_t fault_streams;       /* Deliver streams opened (parity picks the lie) */
#endif
  /* metrics (log_metrics) */
  uint64_t m_at, m_exec, m_blocks, m_writes, m_write_ms, m_write_max, m_write_bytes;
  /* lifecycle */
  uv_signal_t sigterm, sigint;
  bool stopping;
  int exit_code;
  uint32_t open_handles;
};

/** Milliseconds on the monotonic clock. */
uint64_t fl__node_now(void);
/** Collects the machine's pending actions, carries out what may go now. */
void fl__node_after_pbft(fl__node_t *n);
/** Queues a block for the store (from sync). Borrows bytes. */
void fl__node_queue_block(fl__node_t *n, uint64_t number, const uint8_t hash[32],
                          fl_buf_t bytes);
/** Re-arms the PBFT timer at fl_pbft_next_deadline (after a hint that may
 *  bring it forward; produces no actions). */
void fl__node_rearm(fl__node_t *n);
/** Begins shutdown with exit code `code`. */
void fl__node_stop(fl__node_t *n, int code);
/** Reads block `number` from the store into *out. FL_OK or FL_NOTFOUND. */
fl_status_t fl__node_read_block(fl__node_t *n, uint64_t number, fl_sbuf_t *out);

/** The PBFT host ops of n (ECDSA with the replicas' keys). */
fl_pbft_ops_t fl__node_ops(fl__node_t *n);

/* metrics.c */
/** Creates the registry and registers every metric (at start-up). */
void fl__metrics_setup(fl__node_t *n);
/** Starts the operations endpoint when operations.port is set. */
fl_status_t fl__metrics_start_ops(fl__node_t *n);
/** Closes the endpoint (shutdown, loop thread). */
void fl__metrics_close_ops(fl__node_t *n);
/** Refreshes gauges and mirrored counters from the machine's info/stats. */
void fl__metrics_update(fl__node_t *n, const fl_pbft_info_t *in, const fl_pbft_stats_t *st);
/** A block became durable; ts = its batch timestamp (wall ms). */
void fl__metrics_block(fl__node_t *n, uint64_t number, uint64_t ts);
/** A broadcast was answered with result r. */
void fl__metrics_broadcast(fl__node_t *n, fl__bc_result_t r);
/** The number of parked Broadcast calls changed (sets the gauge). */
void fl__metrics_parked(fl__node_t *n);
/** A parked Broadcast call stopped reading from its connection. */
void fl__metrics_read_pause(fl__node_t *n);
/** An RPC of method m ended with an error. */
void fl__metrics_rpc_error(fl__node_t *n, fl__rpc_method_t m);
/** Frees the registry (after the endpoint closed). NULL-safe. */
void fl__metrics_free(fl__node_t *n);

#ifdef FL_ORDERER_FAULTS
/* faults.c (test build only; each returns false when its fault is off) */
void fl__faults_init(fl__node_t *n);
/** bad-sig: *out = msg with its signature corrupted. */
bool fl__faults_corrupt_sig(fl__node_t *n, fl_buf_t msg, fl_sbuf_t *out);
/** equivocate: *out = another validly signed pre-prepare for msg's (view, seq). */
bool fl__faults_equivocate(fl__node_t *n, fl_buf_t msg, fl_sbuf_t *out);
/** deliver-lie: *out = a tampered copy of block `number` for Deliver stream `stream`. */
bool fl__faults_deliver(fl__node_t *n, uint64_t number, uint64_t stream, fl_buf_t blk,
                        fl_sbuf_t *out);
/** withhold: true if block `number` must not be served. */
bool fl__faults_withhold(const fl__node_t *n, uint64_t number);
#endif

/* rpc.c */
fl_status_t fl__rpc_start(fl__node_t *n);
void fl__rpc_close(fl__node_t *n);
void fl__rpc_send(fl__node_t *n, uint32_t to, fl_buf_t msg);
void fl__rpc_blocks_durable(fl__node_t *n);
void fl__rpc_sync_want(fl__node_t *n, uint64_t target);

#endif /* FL_ORDERER_NODE_NODE_INT_H */
