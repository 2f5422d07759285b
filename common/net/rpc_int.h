/* SPDX-License-Identifier: Apache-2.0
 *
 * rpc_int.h: internals shared by the RPC server and client: the transport
 * connection (TCP + optional TLS + framing + batched writes + backpressure)
 * and a call-id hash map. Not API.
 *
 * Connection invariants:
 *   1. at most one uv_write is in flight (writing); its bytes are in wbuf;
 *   2. frames are encoded into `out` (plaintext) and only move to TLS/wbuf in
 *      flush, once the transport is ready and no write is in flight;
 *   3. queued = out.len + wbuf.len + TLS ciphertext pending;
 *   4. reading is on iff started && !closing && !paused_hwm && !paused_user;
 *   5. after closing is set no owner callback but on_closed runs, and stats
 *      are not touched after on_closed.
 */
#ifndef FL_NET_RPC_INT_H
#define FL_NET_RPC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/net/frame.h"
#include "common/net/rpc.h"
#include "common/net/tls.h"

/* ---- call id map (open addressing, linear probing, key 0 = empty) ---- */

typedef struct fl__idmap_s {
  uint64_t *keys;
  void **vals;
  size_t cap; /* power of two or 0 */
  size_t n;
} fl__idmap_t;

void *fl__idmap_get(const fl__idmap_t *m, uint64_t key);
/** key must be != 0 and absent. */
void fl__idmap_put(fl__idmap_t *m, uint64_t key, void *val);
/** Removes key; returns its value or NULL. */
void *fl__idmap_del(fl__idmap_t *m, uint64_t key);
/** Moves all values into an owned array (fl_free) and empties the map. */
void **fl__idmap_take_all(fl__idmap_t *m, size_t *n /* out */);
void fl__idmap_free(fl__idmap_t *m);

/* ---- transport connection ---- */

typedef struct fl__conn_s fl__conn_t;

typedef struct fl__conn_ops_s {
  /** The transport is ready (TLS handshake done). */
  void (*on_ready)(fl__conn_t *c);
  /** A decoded frame; takes ownership of f. */
  void (*on_frame)(fl__conn_t *c, fl_frame_t *f);
  /** queued fell to the low watermark (hwm/2) after having been above it
   *  or with drain waiters; owner fires its waiters. */
  void (*on_drain)(fl__conn_t *c);
  /** The connection starts closing (once); owner drops its uses. */
  void (*on_close)(fl__conn_t *c, fl_status_t why, const char *msg);
  /** Every handle is closed; owner may free the memory. */
  void (*on_closed)(fl__conn_t *c);
} fl__conn_ops_t;

struct fl__conn_s {
  uv_tcp_t tcp;
  uv_prepare_t prep;        /* flushes once per loop iteration */
  uv_write_t wreq;
  uv_loop_t *loop;
  const fl__conn_ops_t *ops;
  fl_rpc_stats_t *stats;    /* the owner's counters */
  fl_tls_t *tls;            /* NULL = plaintext */
  fl_frame_decoder_t *dec;
  uint8_t *rbuf;            /* TLS ciphertext read buffer */
  fl_sbuf_t out, wbuf;
  size_t max_frame, hwm;    /* hwm 0 = unlimited */
  int handles;              /* open libuv handles (tcp, prep) */
  bool started, ready, writing, closing, reading, paused_hwm, paused_user;
  bool want_drain;          /* owner has drain waiters */
  fl_status_t close_status;
};

/** Initialises c's handles on loop (tls_ctx NULL = plaintext). Owner fills
 *  nothing else. Returns FL_OK or FL_EIO (nothing to close then). */
fl_status_t fl__conn_init(fl__conn_t *c, uv_loop_t *loop, const fl__conn_ops_t *ops,
                          fl_tls_ctx_t *tls_ctx, size_t max_frame, size_t hwm,
                          fl_rpc_stats_t *stats);
/** The TCP stream is connected/accepted: start reading and the handshake. */
void fl__conn_start(fl__conn_t *c);
/** Encodes f into the write queue and schedules a flush. Returns FL_OK,
 *  FL_ECLOSED when closing, FL_ETOOBIG / FL_EINVAL from the encoder. */
fl_status_t fl__conn_send(fl__conn_t *c, const fl_frame_t *f);
/** Bytes queued (invariant 3). */
size_t fl__conn_queued(const fl__conn_t *c);
/** queued < hwm. */
bool fl__conn_writable(const fl__conn_t *c);
/** Schedules a flush/drain check in this loop iteration. */
void fl__conn_kick(fl__conn_t *c);
/** Pauses/resumes reading at the owner's request. */
void fl__conn_pause(fl__conn_t *c, bool paused);
/** Starts closing (idempotent): best-effort flush of what is queued, then
 *  closes the handles. ops->on_close runs now, ops->on_closed later. */
void fl__conn_close(fl__conn_t *c, fl_status_t why, const char *msg);
/** Frees what the connection still owns (the TLS session). Call after
 *  on_closed, before freeing c's memory. NULL-safe. */
void fl__conn_destroy(fl__conn_t *c);

/** Sets SIGPIPE to SIG_IGN if it still has its default action: a peer that
 *  vanishes must give EPIPE on write, not kill the node. */
void fl__ignore_sigpipe(void);

#endif /* FL_NET_RPC_INT_H */
