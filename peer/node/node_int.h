/* SPDX-License-Identifier: Apache-2.0
 *
 * node_int.h: the peer process's shared state and the functions its files
 * (node.c, commit.c, service.c, gateway.c) call on each other. Not API.
 *
 * Threads: everything in fl__peer_t belongs to the loop thread, except
 * what worker jobs read: the immutable configuration (net, msp, validator,
 * endorser, ledger handle, signer, identity) and thread-safe objects
 * (ledger, sigcache, ccrt, events publisher, metrics). A worker job never
 * touches the loop-owned fields; its completion (on the loop) does.
 *
 * Invariants:
 *   1. blocks enter stage A (decode, orderer signatures, hash link, then
 *      per-transaction checks in parallel) one at a time, in order;
 *      accept_number/accept_hash name the last block that passed stage A;
 *   2. blocks enter stage B (duplicate tx ids, MVCC, commit) one at a time,
 *      in order; `height` is the ledger height as of the last commit that
 *      finished, and every waiter / Deliver stream is served from it;
 *   3. a Deliver connection (dl) that failed over is never read again: its
 *      callbacks compare their dlconn with p->dl and ignore stale ones.
 */
#ifndef FL_PEER_NODE_NODE_INT_H
#define FL_PEER_NODE_NODE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/base/buf.h"
#include "common/config/config.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"
#include "common/events/events.h"
#include "common/net/rpc.h"
#include "common/ops/metrics.h"
#include "common/ops/ops.h"
#include "common/protoutil/genesis.h"
#include "peer/ccrt/ccrt.h"
#include "peer/ledger/ledger.h"
#include "peer/node/endorser.h"
#include "peer/node/sigcache.h"
#include "peer/node/validator.h"

#define FL__PEER_LOG "peer"

typedef struct fl__peer_s fl__peer_t;

/* A short worker job waiting for the end of the loop iteration (jobs.c). */
typedef struct fl__job_s {
  void (*work)(void *arg);
  void (*done)(void *arg, fl_status_t st);
  void *arg;
} fl__job_t;

/* A lazily connected RPC client to another node (peer or orderer). */
typedef struct fl__remote_s {
  fl__peer_t *p;
  const char *name;     /* for logs */
  const char *mspid;    /* peers: the organisation */
  char *host;
  uint16_t port;
  fl_rpc_client_t *client;
  uint64_t retry_at_ms;  /* after a failure: no new connection before */
  uint32_t backoff_ms;
  bool self;             /* this peer's own entry */
  bool down;             /* the last connection failed or dropped; cleared by
                            the next successful connect */
} fl__remote_t;

/* A Gateway/CommitStatus call waiting for its tx id. */
typedef struct fl__waiter_s {
  struct fl__waiter_s *next, *prev; /* in its hash bucket */
  fl__peer_t *p;
  fl_rpc_call_t *call;
  char tx_id[FL_TXID_HEX_LEN + 1];
  uint64_t deadline_ms;
  bool checking;         /* the ledger lookup job is in flight */
  bool answered;         /* replied; freed when the job is done too */
} fl__waiter_t;

#define FL__WAIT_BUCKETS 1024

/* A Peer/Deliver stream. */
typedef struct fl__dstream_s {
  struct fl__dstream_s *next, *prev;
  fl__peer_t *p;
  fl_rpc_call_t *call;
  uint64_t next_num, stop;
  bool busy;        /* a read job is in flight */
  bool cancelled;   /* the call is over; free when the job is done */
  fl_sbuf_t *pend;  /* read but not yet sent (DeliverResponse bytes) */
  size_t npend, pend_at;
} fl__dstream_t;

/* The Deliver connection to the current orderer. */
typedef struct fl__dlconn_s {
  fl__peer_t *p;
  fl_rpc_client_t *client;
  uint32_t ord;
  uint64_t call_id;
  bool streaming;
} fl__dlconn_t;

/* A received block waiting for stage A. */
typedef struct fl__rawblk_s {
  uint8_t *data;
  size_t len;
  uint32_t ord;
} fl__rawblk_t;

typedef struct fl__metrics_s {
  fl_metrics_t *reg;
  fl_gauge_t *height;
  fl_counter_t *tx_validated;    /* label code */
  fl_histogram_t *endorse_s;
  fl_histogram_t *commit_s;      /* per block: stage B */
  fl_histogram_t *validate_s;    /* per block: stage A */
  fl_counter_t *rpc_errors;      /* label method */
  fl_counter_t *failovers;
  fl_counter_t *blocks_refused;
  fl_gauge_t *sig_hits, *sig_misses;
  fl_gauge_t *rebroadcasts, *watched; /* gateway.c re-broadcast */
  fl_gauge_t *bc_sent, *bc_hinted;    /* gateway.c Broadcast attempts */
  /* the ledger's RocksDB memory (node.c, refreshed once a second) */
  fl_gauge_t *kv_memtables;      /* label cf */
  fl_gauge_t *kv_table_readers;
  fl_gauge_t *kv_cache_usage, *kv_cache_pinned, *kv_cache_capacity;
  fl_gauge_t *heap;              /* label kind: glibc malloc's mallinfo2 */
  uint64_t kv_mem_at_ms;         /* last refresh */
} fl__metrics_t;

struct fl__peer_s {
  uv_loop_t loop;
  fl_config_t *cfg;
  /* settings */
  const char *name, *mspid, *msp_dir, *data_dir, *genesis_path, *cc_dir;
  const char *listen_host, *events_host, *ops_host;
  uint16_t listen_port, events_port, ops_port;
  bool tls_on;
  const char *tls_cert, *tls_key;
  char *tls_roots;
  const char *ca_files[1];
  fl_tls_config_t tls_srv;
  fl_ccrt_mode_t cc_mode;
  unsigned cc_workers;
  uint64_t cc_timeout_ms;
  uint64_t stall_ms, retry_ms, endorse_timeout_ms, broadcast_timeout_ms, commit_timeout_ms;
  uint64_t ts_window_ms;  /* endorser.timestamp_window; UINT64_MAX = off */
  unsigned vparallel;
  size_t max_msg;
  /* identity and configuration */
  fl_block_t *genesis;
  fl_netconfig_t *net;
  fl_msp_t *msp;
  fl_signer_t *signer;
  fl_sbuf_t identity;
  const fl_net_peer_t *self_entry;
  fl_sigcache_t *sigcache;
  fl_validator_t *validator;
  fl_endorser_t *endorser;
  fl_ccrt_t *ccrt;
  fl_ledger_t *ledger;
  fl_events_pub_t *pub;
  fl__metrics_t m;
  fl_ops_server_t *ops;
  fl_rpc_server_t *srv;
  /* remotes */
  fl__remote_t *peers;   /* parallel to net->peers */
  size_t npeers;
  fl__remote_t *ords;    /* deliver/broadcast targets */
  size_t nord;
  uint32_t bc_next;      /* round robin for Broadcast */
  bool ords_by_id;       /* ords[i] is PBFT replica i (the genesis list) */
  bool lead_known;       /* lead_view holds a view seen in a checked block */
  uint64_t lead_view;    /* PBFT view of the newest checked block */
  uint32_t bc_inflight;  /* Broadcasts of Gateway/Submit awaiting an answer */
  uint64_t lead_off_until_ms; /* no leader hint before this (gateway.c) */
  uint32_t rr;           /* round robin among an org's peers */
  /* commit pipeline (invariants 1-2) */
  uint64_t height;
  uint64_t accept_number;
  uint8_t accept_hash[32];
  fl__rawblk_t *rq;      /* received, waiting for stage A */
  size_t rq_head, rq_len, rq_cap;
  bool a_busy;
  size_t a_pending;      /* chunk jobs of the block in stage A */
  fl_vblock_t *a_vb;
  uint64_t a_t0;
  fl_vblock_t **bq;      /* passed stage A, waiting for stage B */
  size_t bq_head, bq_len, bq_cap;
  bool b_busy;
  bool fatal;
  bool disk_low;          /* free space under min_free: commits wait */
  uint64_t min_free;      /* ledger.min_free_bytes (0: no check) */
  /* deliver client (invariant 3) */
  fl__dlconn_t *dl;
  uint32_t cur_ord;
  uint64_t last_block_ms;
  uint64_t connected_ms;  /* when the current stream opened, 0 = none */
  uint32_t fails_in_row;
  bool dl_paused;
  bool probing;
  uv_timer_t dl_timer;    /* reconnect */
  uv_timer_t tick;        /* stall check, waiter timeouts, gauges */
  /* waiters and streams */
  fl__waiter_t *wait[FL__WAIT_BUCKETS];
  fl__dstream_t *streams;
  struct fl__eparked_s *eparked; /* Peer/EndorseAt calls waiting for a height */
  /* submitted envelopes watched until committed (gateway.c, "re-broadcast") */
  struct fl__gwatch_s *gwatch[FL__WAIT_BUCKETS];
  size_t gwatch_n, gwatch_bytes;
  uint64_t rebroadcasts; /* envelopes sent again to another orderer */
  uint64_t bc_sent;      /* Gateway/Submit Broadcast attempts */
  uint64_t bc_hinted;    /* ... of them sent to the hinted primary */
  /* lifecycle */
  uv_signal_t sigterm, sigint;
  bool stopping;
  int exit_code;
  unsigned jobs;          /* worker jobs in flight (for debugging) */
  /* batched short jobs (jobs.c) */
  uv_check_t jcheck_h;
  uv_idle_t jidle_h;      /* active while jq is not empty */
  fl__job_t *jq;
  size_t jq_len, jq_cap;
  bool jq_open;
};

/* node.c */
uint64_t fl__peer_now_ms(void);
void fl__peer_stop(fl__peer_t *p, int code);
void fl__peer_rpc_error(fl__peer_t *p, const char *method);
/** Returns the remote's client, creating it when needed (NULL while it
 *  must not reconnect yet). */
fl_rpc_client_t *fl__remote_client(fl__remote_t *r);
/** Drops the remote's client after a failure (backoff before the next). */
void fl__remote_fail(fl__remote_t *r);
void fl__remote_close(fl__remote_t *r);

/* jobs.c */
void fl__jobs_init(fl__peer_t *p);
/** Like fl_worker_submit, batched with the other jobs of this loop
 *  iteration; FL_OK means done will be called exactly once. */
fl_status_t fl__job_submit(fl__peer_t *p, void (*work)(void *arg),
                           void (*done)(void *arg, fl_status_t st), void *arg);
/** Flushes the queue and closes the handle (shutdown); later submissions
 *  go to the pool one by one. */
void fl__jobs_close(fl__peer_t *p);
void fl__jobs_free(fl__peer_t *p);

/* commit.c */
fl_status_t fl__commit_init(fl__peer_t *p);
void fl__commit_start(fl__peer_t *p);
void fl__commit_tick(fl__peer_t *p);
void fl__commit_close(fl__peer_t *p);

/* service.c */
void fl__service_register(fl__peer_t *p);
void fl__service_block_committed(fl__peer_t *p);
void fl__service_close(fl__peer_t *p);

/* gateway.c */
void fl__gateway_register(fl__peer_t *p);
void fl__gateway_committed(fl__peer_t *p, const fl_vblock_t *vb);
void fl__gateway_tick(fl__peer_t *p);
void fl__gateway_close(fl__peer_t *p);

#endif /* FL_PEER_NODE_NODE_INT_H */
