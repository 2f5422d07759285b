/* SPDX-License-Identifier: Apache-2.0
 *
 * worker.c: FL_CCRT_FORK, chaincode in pre-forked worker processes.
 *
 * Each loaded chaincode owns a pool of workers forked right after the .so
 * was loaded (so they share its code pages). A worker is connected to the
 * peer by a socketpair; it waits for an INVOKE frame, runs the chaincode with
 * a stub whose every state access is a frame to the peer, and ends with a
 * DONE frame carrying the response. The peer side (serve) answers those
 * frames from the simulator (sim.c), so the read-write set is recorded in the
 * peer and a worker never holds anything the peer needs after a crash.
 *
 * Frame: u32be type, u32be length, then length bytes (<= FL__CCRT_MAX_FRAME).
 * Fields inside a frame: u8, u32be, u64be, i32 as u32be, bytes = u32be
 * length + bytes. Messages (W = worker, P = peer):
 *   P->W INVOKE      u8 init, bytes tx_id, u64 ts, u32 nargs, bytes*,
 *                    u32 nblobs, bytes*, bytes transient, bytes mspid,
 *                    bytes cert_pem, bytes role, bytes cert_sha256
 *   W->P GET         bytes key                 -> REPLY i32 rc [bytes value]
 *   W->P PUT         bytes key, bytes value    (no reply)
 *   W->P DEL         bytes key                 (no reply)
 *   W->P RANGE_OPEN  bytes start, bytes end    -> REPLY i32 rc, u32 id
 *   W->P RANGE_NEXT  u32 id  -> REPLY i32 rc, u8 end, u32 n, n x (key, value)
 *   W->P RANGE_CLOSE u32 id, u64 consumed, u8 saw_end   (no reply)
 *   W->P HIST_OPEN   bytes key                 -> REPLY i32 rc, u32 id
 *   W->P HIST_NEXT   u32 id  -> REPLY i32 rc, u8 end, u32 n,
 *                    n x (bytes tx_id, u64 block, u64 tx, u8 del, bytes value)
 *   W->P HIST_CLOSE  u32 id                    (no reply)
 *   W->P PUT_BLOB    bytes data                -> REPLY i32 rc [32 B hash]
 *   W->P GET_BLOB    32 B hash                 -> REPLY i32 rc [bytes blob]
 *   W->P EVENT       bytes name, bytes payload -> REPLY i32 rc
 *   W->P DONE        i32 status, bytes message, bytes payload
 * Range entries come in batches (FL__CCRT_BATCH); the worker reports on
 * RANGE_CLOSE how many it handed to the chaincode, and the simulator keeps
 * only those in the range read, so the rw-set equals the in-process one.
 *
 * Failure handling in the peer: EOF or a bad frame from a worker, or the
 * deadline passing, kills the worker (SIGKILL), reaps it, and forks a fresh
 * one; the invocation fails with FL_EINTERNAL or FL_ETIMEDOUT.
 *
 * In the worker (after fork): only this thread exists. It asks for SIGKILL
 * when the forking thread dies (PR_SET_PDEATHSIG), resets signal handlers
 * and mask, disables core dumps, and closes every descriptor except 0-2 and
 * its channel (moved to fd 3), so chaincode cannot touch the peer's RocksDB
 * files or sockets. It leaves with _exit, never exit (no atexit handlers of
 * the peer run in it).
 */
/* close_range (glibc >= 2.34), prctl and SOCK_CLOEXEC are Linux extensions. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "peer/ccrt/ccrt_int.h"

enum {
  M_INVOKE = 1,
  M_GET = 10,
  M_PUT,
  M_DEL,
  M_RANGE_OPEN,
  M_RANGE_NEXT,
  M_RANGE_CLOSE,
  M_HIST_OPEN,
  M_HIST_NEXT,
  M_HIST_CLOSE,
  M_PUT_BLOB,
  M_EVENT,
  M_DONE,
  M_GET_BLOB, /* fl_cc_get_stored_blob: hash in, status + bytes out */
  M_REPLY = 100,
};

/* ---- encoding ----------------------------------------------------------- */

static void w_u8(fl_sbuf_t *b, uint8_t v) { fl_sbuf_append(b, &v, 1); }
static void w_u32(fl_sbuf_t *b, uint32_t v) { fl_sbuf_append_be32(b, v); }
static void w_u64(fl_sbuf_t *b, uint64_t v) { fl_sbuf_append_be64(b, v); }
static void w_i32(fl_sbuf_t *b, int32_t v) { fl_sbuf_append_be32(b, (uint32_t)v); }
static void w_bytes(fl_sbuf_t *b, const void *p, size_t n) {
  fl_sbuf_append_be32(b, (uint32_t)n);
  fl_sbuf_append(b, p, n);
}
static void w_buf(fl_sbuf_t *b, fl_buf_t v) { w_bytes(b, v.data, v.len); }

typedef struct rdr_s {
  const uint8_t *p;
  size_t n;
  bool bad;
} rdr_t;

static rdr_t rdr(const fl_sbuf_t *b) { return (rdr_t){.p = b->data, .n = b->len}; }

static bool r_need(rdr_t *r, size_t n) {
  if (r->bad || r->n < n) {
    r->bad = true;
    return false;
  }
  return true;
}
static uint8_t r_u8(rdr_t *r) {
  if (!r_need(r, 1)) return 0;
  uint8_t v = r->p[0];
  r->p++, r->n--;
  return v;
}
static uint32_t r_u32(rdr_t *r) {
  if (!r_need(r, 4)) return 0;
  uint32_t v = fl_get_be32(r->p);
  r->p += 4, r->n -= 4;
  return v;
}
static uint64_t r_u64(rdr_t *r) {
  if (!r_need(r, 8)) return 0;
  uint64_t v = fl_get_be64(r->p);
  r->p += 8, r->n -= 8;
  return v;
}
static int32_t r_i32(rdr_t *r) { return (int32_t)r_u32(r); }
static fl_buf_t r_bytes(rdr_t *r) {
  uint32_t n = r_u32(r);
  if (!r_need(r, n)) return (fl_buf_t){0};
  fl_buf_t b = {.data = r->p, .len = n};
  r->p += n, r->n -= n;
  return b;
}

/* ---- I/O with a deadline (0 = none) --------------------------------------- */

static fl_status_t wait_fd(int fd, short ev, uint64_t deadline) {
  for (;;) {
    int ms = -1;
    if (deadline) {
      uint64_t now = fl_mono_ns();
      if (now >= deadline) return FL_ETIMEDOUT;
      uint64_t left = (deadline - now + 999999u) / 1000000u;
      ms = left > 60000 ? 60000 : (int)left;
    }
    struct pollfd p = {.fd = fd, .events = ev};
    int n = poll(&p, 1, ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FL_EIO;
    if (n > 0) return FL_OK; /* readable, writable, or HUP/ERR: let I/O tell */
  }
}

static fl_status_t io_write(int fd, const uint8_t *p, size_t n, uint64_t deadline) {
  while (n) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k > 0) {
      p += k, n -= (size_t)k;
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      FL_FORWARD(wait_fd(fd, POLLOUT, deadline));
      continue;
    }
    return FL_ECLOSED; /* EPIPE, ECONNRESET: the other side is gone */
  }
  return FL_OK;
}

static fl_status_t io_read(int fd, uint8_t *p, size_t n, uint64_t deadline) {
  while (n) {
    ssize_t k = read(fd, p, n);
    if (k > 0) {
      p += k, n -= (size_t)k;
      continue;
    }
    if (k == 0) return FL_ECLOSED;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      FL_FORWARD(wait_fd(fd, POLLIN, deadline));
      continue;
    }
    return FL_ECLOSED;
  }
  return FL_OK;
}

static fl_status_t send_frame(int fd, uint32_t type, const fl_sbuf_t *body,
                              uint64_t deadline) {
  if (body->len > FL__CCRT_MAX_FRAME) return FL_ETOOBIG;
  uint8_t h[8];
  fl_put_be32(h, type);
  fl_put_be32(h + 4, (uint32_t)body->len);
  /* One sendmsg for header and body (one syscall per frame in the usual
   * case); partial sends fall back to io_write for the rest. */
  struct iovec iov[2] = {{.iov_base = h, .iov_len = sizeof h},
                         {.iov_base = body->data, .iov_len = body->len}};
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = body->len ? 2 : 1};
  ssize_t k;
  do {
    k = sendmsg(fd, &m, MSG_NOSIGNAL);
  } while (k < 0 && errno == EINTR);
  if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return FL_ECLOSED;
  size_t sent = k < 0 ? 0 : (size_t)k;
  if (sent < sizeof h) {
    FL_FORWARD(io_write(fd, h + sent, sizeof h - sent, deadline));
    sent = 0;
  } else {
    sent -= sizeof h;
  }
  return io_write(fd, body->data + sent, body->len - sent, deadline);
}

/* Receives one frame into *body (replaced). FL_EPROTO for an over-long one. */
static fl_status_t recv_frame(int fd, uint32_t *type, fl_sbuf_t *body, uint64_t deadline) {
  uint8_t h[8];
  FL_FORWARD(io_read(fd, h, sizeof h, deadline));
  *type = fl_get_be32(h);
  uint32_t len = fl_get_be32(h + 4);
  if (len > FL__CCRT_MAX_FRAME) return FL_EPROTO;
  body->len = 0;
  fl_sbuf_reserve(body, len ? len : 1);
  FL_FORWARD(io_read(fd, body->data, len, deadline));
  body->len = len;
  return FL_OK;
}

/* ========================================================================== */
/* The worker process                                                          */
/* ========================================================================== */

typedef struct w_stub_s w_stub_t;

typedef struct w_range_s {
  fl_cc_range_iter_t base; /* first */
  w_stub_t *st;
  uint32_t id;
  fl_sbuf_t batch;     /* the last reply; entries point into it */
  fl_cc_kv_t *ents;
  size_t n, pos, cap;
  uint64_t consumed;
  bool src_end, saw_end, closed;
} w_range_t;

typedef struct w_hist_s {
  fl_cc_hist_iter_t base;
  w_stub_t *st;
  uint32_t id;
  fl_sbuf_t batch;
  fl_cc_mod_t *ents;
  size_t n, pos, cap;
  bool src_end, closed;
} w_hist_t;

struct w_stub_s {
  fl_cc_stub_t base; /* first */
  int fd;
  bool init;
  fl_cc_bytes_t tx_id, transient;
  uint64_t ts;
  fl_cc_bytes_t *argv;
  size_t argc;
  fl_cc_bytes_t *blobs;
  size_t nblobs;
  fl_cc_creator_t creator;
  fl__certs_t *certs;     /* the worker's, kept between invocations */
  fl__blobs_t *blobcache; /* the worker's stored blobs, kept likewise */
  const fl_cert_t *cert;  /* the creator's, once looked up */
  bool cert_looked_up;
  fl__arena_t arena;
  fl_sbuf_t req, rep;
  fl_sbuf_t outq;      /* frames that need no reply, sent with the next one */
  w_range_t **ranges;
  size_t nranges, rcap;
  w_hist_t **hists;
  size_t nhists, hcap;
};

static fl_buf_t B(fl_cc_bytes_t b) { return (fl_buf_t){.data = b.data, .len = b.len}; }
static fl_cc_bytes_t CB(fl_buf_t b) { return (fl_cc_bytes_t){.data = b.data, .len = b.len}; }

/* The peer is gone or broke the protocol: nothing sensible is left to do. */
static _Noreturn void w_die(int code) { _exit(code); }

/* Writes every queued frame (one write for PUTs, DELs, CLOSEs and the
 * frame that needs an answer or ends the invocation). */
static void w_flush(w_stub_t *st) {
  if (st->outq.len && io_write(st->fd, st->outq.data, st->outq.len, 0) != FL_OK) w_die(5);
  st->outq.len = 0;
}

/* Queues st->req as a frame of `type`. Frames that need no reply wait for
 * the next one that does (or DONE): the peer handles frames in order, so
 * nothing changes but the number of writes and wake-ups. */
static void w_send(w_stub_t *st, uint32_t type) {
  if (st->req.len > FL__CCRT_MAX_FRAME) w_die(5);
  fl_sbuf_append_be32(&st->outq, type);
  fl_sbuf_append_be32(&st->outq, (uint32_t)st->req.len);
  fl_sbuf_append(&st->outq, st->req.data, st->req.len);
  if (st->outq.len >= FL__CCRT_MAX_FRAME) w_flush(st); /* bounded */
}

/* Sends st->req as `type`, receives the reply into *into; returns the
 * reply's rc and leaves *r positioned after it. */
static int w_call(w_stub_t *st, uint32_t type, fl_sbuf_t *into, rdr_t *r) {
  w_send(st, type);
  w_flush(st);
  uint32_t rt;
  if (recv_frame(st->fd, &rt, into, 0) != FL_OK || rt != M_REPLY) w_die(5);
  *r = rdr(into);
  int32_t rc = r_i32(r);
  if (r->bad) w_die(6);
  return rc;
}

static void w_get_args(fl_cc_stub_t *s, size_t *argc, const fl_cc_bytes_t **argv) {
  w_stub_t *st = (w_stub_t *)s;
  *argc = st->argc;
  *argv = st->argv;
}

static int w_get_state(fl_cc_stub_t *s, fl_cc_bytes_t key, fl_cc_bytes_t *value) {
  w_stub_t *st = (w_stub_t *)s;
  *value = (fl_cc_bytes_t){0};
  fl_status_t ck = fl__key_check(B(key));
  if (ck != FL_OK) return fl__cc_rc(ck);
  st->req.len = 0;
  w_buf(&st->req, B(key));
  rdr_t r;
  int rc = w_call(st, M_GET, &st->rep, &r);
  if (rc != FL_OK) return fl__cc_rc(rc);
  fl_buf_t v = r_bytes(&r);
  if (r.bad) w_die(6);
  *value = (fl_cc_bytes_t){.data = fl__arena_dup(&st->arena, v), .len = v.len};
  return FL_CC_OK;
}

static int w_put_state(fl_cc_stub_t *s, fl_cc_bytes_t key, fl_cc_bytes_t value) {
  w_stub_t *st = (w_stub_t *)s;
  fl_status_t ck = fl__key_check(B(key));
  if (ck != FL_OK) return fl__cc_rc(ck);
  if (value.len > FL_CC_MAX_VALUE) return FL_CC_ETOOBIG;
  if (value.len && !value.data) return FL_CC_EINVAL;
  st->req.len = 0;
  w_buf(&st->req, B(key));
  w_buf(&st->req, B(value));
  w_send(st, M_PUT);
  return FL_CC_OK;
}

static int w_del_state(fl_cc_stub_t *s, fl_cc_bytes_t key) {
  w_stub_t *st = (w_stub_t *)s;
  fl_status_t ck = fl__key_check(B(key));
  if (ck != FL_OK) return fl__cc_rc(ck);
  st->req.len = 0;
  w_buf(&st->req, B(key));
  w_send(st, M_DEL);
  return FL_CC_OK;
}

static const fl_cc_stub_ops_t w_ops;

static int w_get_state_range(fl_cc_stub_t *s, fl_cc_bytes_t start, fl_cc_bytes_t end,
                             fl_cc_range_iter_t **it) {
  w_stub_t *st = (w_stub_t *)s;
  *it = NULL;
  st->req.len = 0;
  w_buf(&st->req, B(start));
  w_buf(&st->req, B(end));
  rdr_t r;
  int rc = w_call(st, M_RANGE_OPEN, &st->rep, &r);
  if (rc != FL_OK) return fl__cc_rc(rc);
  uint32_t id = r_u32(&r);
  if (r.bad) w_die(6);
  w_range_t *g = fl_calloc(1, sizeof *g);
  *g = (w_range_t){.base.ops = &w_ops, .st = st, .id = id};
  if (st->nranges == st->rcap) {
    st->rcap = st->rcap ? st->rcap * 2 : 4;
    st->ranges = fl_reallocarray(st->ranges, st->rcap, sizeof *st->ranges);
  }
  st->ranges[st->nranges++] = g;
  *it = &g->base;
  return FL_CC_OK;
}

static int w_range_next(fl_cc_range_iter_t *it, fl_cc_kv_t *kv) {
  w_range_t *g = (w_range_t *)it;
  *kv = (fl_cc_kv_t){0};
  if (g->closed) return FL_CC_EINVAL;
  while (g->pos == g->n) {
    if (g->src_end) {
      g->saw_end = true;
      return FL_CC_NOTFOUND;
    }
    w_stub_t *st = g->st;
    st->req.len = 0;
    w_u32(&st->req, g->id);
    rdr_t r;
    int rc = w_call(st, M_RANGE_NEXT, &g->batch, &r);
    if (rc != FL_OK) return fl__cc_rc(rc);
    g->src_end = r_u8(&r) != 0;
    uint32_t n = r_u32(&r);
    if (r.bad || n > r.n / 8) w_die(6);
    if (n > g->cap) {
      g->cap = n;
      g->ents = fl_reallocarray(g->ents, n, sizeof *g->ents);
    }
    for (uint32_t i = 0; i < n; i++) {
      g->ents[i].key = CB(r_bytes(&r));
      g->ents[i].value = CB(r_bytes(&r));
    }
    if (r.bad) w_die(6);
    g->n = n;
    g->pos = 0;
  }
  *kv = g->ents[g->pos++];
  g->consumed++;
  return FL_CC_OK;
}

static void w_range_close(fl_cc_range_iter_t *it) {
  w_range_t *g = (w_range_t *)it;
  if (g->closed) return;
  g->closed = true;
  w_stub_t *st = g->st;
  st->req.len = 0;
  w_u32(&st->req, g->id);
  w_u64(&st->req, g->consumed);
  w_u8(&st->req, g->saw_end);
  w_send(st, M_RANGE_CLOSE);
  fl_sbuf_free(&g->batch);
}

static int w_get_history(fl_cc_stub_t *s, fl_cc_bytes_t key, fl_cc_hist_iter_t **it) {
  w_stub_t *st = (w_stub_t *)s;
  *it = NULL;
  st->req.len = 0;
  w_buf(&st->req, B(key));
  rdr_t r;
  int rc = w_call(st, M_HIST_OPEN, &st->rep, &r);
  if (rc != FL_OK) return fl__cc_rc(rc);
  uint32_t id = r_u32(&r);
  if (r.bad) w_die(6);
  w_hist_t *h = fl_calloc(1, sizeof *h);
  *h = (w_hist_t){.base.ops = &w_ops, .st = st, .id = id};
  if (st->nhists == st->hcap) {
    st->hcap = st->hcap ? st->hcap * 2 : 4;
    st->hists = fl_reallocarray(st->hists, st->hcap, sizeof *st->hists);
  }
  st->hists[st->nhists++] = h;
  *it = &h->base;
  return FL_CC_OK;
}

static int w_hist_next(fl_cc_hist_iter_t *it, fl_cc_mod_t *mod) {
  w_hist_t *h = (w_hist_t *)it;
  *mod = (fl_cc_mod_t){0};
  if (h->closed) return FL_CC_EINVAL;
  while (h->pos == h->n) {
    if (h->src_end) return FL_CC_NOTFOUND;
    w_stub_t *st = h->st;
    st->req.len = 0;
    w_u32(&st->req, h->id);
    rdr_t r;
    int rc = w_call(st, M_HIST_NEXT, &h->batch, &r);
    if (rc != FL_OK) return fl__cc_rc(rc);
    h->src_end = r_u8(&r) != 0;
    uint32_t n = r_u32(&r);
    if (r.bad || n > r.n / 25) w_die(6);
    if (n > h->cap) {
      h->cap = n;
      h->ents = fl_reallocarray(h->ents, n, sizeof *h->ents);
    }
    for (uint32_t i = 0; i < n; i++) {
      fl_cc_mod_t *m = &h->ents[i];
      m->tx_id = CB(r_bytes(&r));
      m->block_num = r_u64(&r);
      m->tx_num = r_u64(&r);
      m->is_delete = r_u8(&r) != 0;
      m->value = CB(r_bytes(&r));
    }
    if (r.bad) w_die(6);
    h->n = n;
    h->pos = 0;
  }
  *mod = h->ents[h->pos++];
  return FL_CC_OK;
}

static void w_hist_close(fl_cc_hist_iter_t *it) {
  w_hist_t *h = (w_hist_t *)it;
  if (h->closed) return;
  h->closed = true;
  w_stub_t *st = h->st;
  st->req.len = 0;
  w_u32(&st->req, h->id);
  w_send(st, M_HIST_CLOSE);
  fl_sbuf_free(&h->batch);
}

static size_t w_get_blob_count(fl_cc_stub_t *s) { return ((w_stub_t *)s)->nblobs; }

static int w_get_blob(fl_cc_stub_t *s, size_t i, fl_cc_bytes_t *blob) {
  w_stub_t *st = (w_stub_t *)s;
  *blob = (fl_cc_bytes_t){0};
  if (i >= st->nblobs) return FL_CC_NOTFOUND;
  *blob = st->blobs[i];
  return FL_CC_OK;
}

static int w_put_blob(fl_cc_stub_t *s, fl_cc_bytes_t data, uint8_t hash[FL_CC_HASH_LEN]) {
  w_stub_t *st = (w_stub_t *)s;
  if (data.len > FL_CC_MAX_VALUE) return FL_CC_ETOOBIG;
  if (data.len && !data.data) return FL_CC_EINVAL;
  st->req.len = 0;
  w_buf(&st->req, B(data));
  rdr_t r;
  int rc = w_call(st, M_PUT_BLOB, &st->rep, &r);
  if (rc != FL_OK) return fl__cc_rc(rc);
  if (!r_need(&r, FL_CC_HASH_LEN)) w_die(6);
  memcpy(hash, r.p, FL_CC_HASH_LEN);
  return FL_CC_OK;
}

/* Stored blobs come from the worker's cache (blobcache.c) when it has
 * them: the bytes for a hash never change. */
static int w_get_stored_blob(fl_cc_stub_t *s, const uint8_t hash[FL_CC_HASH_LEN],
                             fl_cc_bytes_t *blob) {
  w_stub_t *st = (w_stub_t *)s;
  *blob = (fl_cc_bytes_t){0};
  fl_buf_t v;
  if (fl__blobs_get(st->blobcache, hash, &v)) {
    *blob = (fl_cc_bytes_t){.data = fl__arena_dup(&st->arena, v), .len = v.len};
    return FL_CC_OK;
  }
  st->req.len = 0;
  fl_sbuf_append(&st->req, hash, FL_CC_HASH_LEN);
  rdr_t r;
  int rc = w_call(st, M_GET_BLOB, &st->rep, &r);
  if (rc != FL_OK) return fl__cc_rc(rc);
  v = r_bytes(&r);
  if (r.bad) w_die(6);
  *blob = (fl_cc_bytes_t){.data = fl__arena_dup(&st->arena, v), .len = v.len};
  fl__blobs_put(st->blobcache, hash, v);
  return FL_CC_OK;
}

static fl_cc_bytes_t w_get_transient(fl_cc_stub_t *s) { return ((w_stub_t *)s)->transient; }
static fl_cc_bytes_t w_get_tx_id(fl_cc_stub_t *s) { return ((w_stub_t *)s)->tx_id; }
static uint64_t w_get_timestamp(fl_cc_stub_t *s) { return ((w_stub_t *)s)->ts; }
static void w_get_creator(fl_cc_stub_t *s, fl_cc_creator_t *c) {
  *c = ((w_stub_t *)s)->creator;
}

/* The creator's certificate from the worker's cache (parsed on a miss);
 * NULL when cert_pem does not parse. */
static const fl_cert_t *w_cert(w_stub_t *st) {
  if (!st->cert_looked_up) {
    st->cert = fl__certs_get(st->certs, B(st->creator.cert_pem));
    st->cert_looked_up = true;
  }
  return st->cert;
}

static int w_get_creator_cn(fl_cc_stub_t *s, fl_cc_bytes_t *cn) {
  w_stub_t *st = (w_stub_t *)s;
  int rc = fl__cert_cn(w_cert(st), cn);
  /* A copy in the arena: the view stays valid for the whole invocation
   * (memory rule 2) whatever the cache does. */
  if (rc == FL_CC_OK) cn->data = fl__arena_dup(&st->arena, B(*cn));
  return rc;
}

static int w_verify_creator(fl_cc_stub_t *s, fl_cc_bytes_t msg, fl_cc_bytes_t sig) {
  return fl__cert_verify(w_cert((w_stub_t *)s), msg, sig);
}

static int w_set_event(fl_cc_stub_t *s, fl_cc_bytes_t name, fl_cc_bytes_t payload) {
  w_stub_t *st = (w_stub_t *)s;
  if (name.len > FL_CC_MAX_KEY || payload.len > FL_CC_MAX_VALUE) return FL_CC_ETOOBIG;
  if ((name.len && !name.data) || (payload.len && !payload.data)) return FL_CC_EINVAL;
  st->req.len = 0;
  w_buf(&st->req, B(name));
  w_buf(&st->req, B(payload));
  rdr_t r;
  return fl__cc_rc(w_call(st, M_EVENT, &st->rep, &r));
}

static void *w_alloc(fl_cc_stub_t *s, size_t n) {
  if (n > FL_CC_MAX_VALUE) return NULL;
  return fl__arena_alloc(&((w_stub_t *)s)->arena, n);
}

static const fl_cc_stub_ops_t w_ops = {
    .abi_version = FL_CC_ABI_VERSION,
    .get_args = w_get_args,
    .get_state = w_get_state,
    .put_state = w_put_state,
    .del_state = w_del_state,
    .get_state_range = w_get_state_range,
    .range_next = w_range_next,
    .range_close = w_range_close,
    .get_history_for_key = w_get_history,
    .hist_next = w_hist_next,
    .hist_close = w_hist_close,
    .get_blob_count = w_get_blob_count,
    .get_blob = w_get_blob,
    .put_blob = w_put_blob,
    .get_transient = w_get_transient,
    .get_tx_id = w_get_tx_id,
    .get_timestamp = w_get_timestamp,
    .get_creator = w_get_creator,
    .set_event = w_set_event,
    .alloc = w_alloc,
    .get_stored_blob = w_get_stored_blob,
    .get_creator_cn = w_get_creator_cn,
    .verify_creator = w_verify_creator,
};

/* Decodes an INVOKE frame into st (views into in). False if malformed. */
static bool w_decode_invoke(w_stub_t *st, const fl_sbuf_t *in) {
  rdr_t r = rdr(in);
  st->init = r_u8(&r) != 0;
  st->tx_id = CB(r_bytes(&r));
  st->ts = r_u64(&r);
  uint32_t n = r_u32(&r);
  if (r.bad || n > r.n / 4) return false;
  st->argc = n;
  st->argv = fl__arena_alloc(&st->arena, (n + 1) * sizeof *st->argv);
  for (uint32_t i = 0; i < n; i++) st->argv[i] = CB(r_bytes(&r));
  n = r_u32(&r);
  if (r.bad || n > r.n / 4) return false;
  st->nblobs = n;
  st->blobs = fl__arena_alloc(&st->arena, (n + 1) * sizeof *st->blobs);
  for (uint32_t i = 0; i < n; i++) st->blobs[i] = CB(r_bytes(&r));
  st->transient = CB(r_bytes(&r));
  st->creator.mspid = CB(r_bytes(&r));
  st->creator.cert_pem = CB(r_bytes(&r));
  st->creator.role = CB(r_bytes(&r));
  st->creator.cert_sha256 = CB(r_bytes(&r));
  return !r.bad && r.n == 0;
}

/* Parsed creator certificates a worker keeps (certs.c): enough for the
 * clients, admins and peers that keep submitting to one chaincode. */
#define W_CERT_CACHE 64
/* Stored blobs a worker keeps (blobcache.c): enough for a round's global
 * models and some updates of models of a few MB. */
#define W_BLOB_CACHE_ENTRIES 256
#define W_BLOB_CACHE_BYTES ((size_t)32 << 20)

static _Noreturn void worker_main(const fl_chaincode_t *desc, int fd) {
  fl_sbuf_t in = {0};
  /* Never freed: the worker leaves only by _exit. */
  fl__certs_t *certs = fl__certs_new(W_CERT_CACHE);
  fl__blobs_t *blobcache = fl__blobs_new(W_BLOB_CACHE_ENTRIES, W_BLOB_CACHE_BYTES);
  for (;;) {
    uint32_t type;
    if (recv_frame(fd, &type, &in, 0) != FL_OK) w_die(0); /* the peer closed us */
    if (type != M_INVOKE) w_die(7);
    w_stub_t st = {.base.ops = &w_ops, .fd = fd, .certs = certs, .blobcache = blobcache};
    if (!w_decode_invoke(&st, &in)) w_die(7);

    fl_cc_response_t resp;
    if (st.init && !desc->init)
      resp = fl_cc_error(FL_CC_STATUS_NOT_FOUND, fl_cc_str("chaincode has no init function"));
    else
      resp = st.init ? desc->init(&st.base) : desc->invoke(&st.base);

    for (size_t i = 0; i < st.nranges; i++) {
      w_range_close(&st.ranges[i]->base);
      fl_free(st.ranges[i]->ents);
      fl_free(st.ranges[i]);
    }
    for (size_t i = 0; i < st.nhists; i++) {
      w_hist_close(&st.hists[i]->base);
      fl_free(st.hists[i]->ents);
      fl_free(st.hists[i]);
    }
    if (resp.message.len > FL_CC_MAX_VALUE || resp.payload.len > FL_CC_MAX_VALUE ||
        (resp.message.len && !resp.message.data) || (resp.payload.len && !resp.payload.data))
      w_die(8);
    st.req.len = 0;
    w_i32(&st.req, resp.status);
    w_bytes(&st.req, resp.message.data, resp.message.len);
    w_bytes(&st.req, resp.payload.data, resp.payload.len);
    w_send(&st, M_DONE);
    w_flush(&st);

    fl_free(st.ranges);
    fl_free(st.hists);
    fl_sbuf_free(&st.outq);
    fl_sbuf_free(&st.req);
    fl_sbuf_free(&st.rep);
    fl__arena_free(&st.arena);
  }
}

/* Registered first in the worker, so it runs first if the chaincode calls
 * exit(): it leaves before any atexit handler of the peer (stdio buffers
 * copied from the peer, library destructors) can run in the worker. */
static void worker_atexit(void) { _exit(99); }

/* Runs in the child right after fork; never returns. */
static _Noreturn void child_start(const fl_chaincode_t *desc, int fd, int other,
                                  pid_t parent) {
  /* Die with the thread that forked us (see docs/chaincode.md). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* Every handler of the peer goes: a SIGABRT or SIGSEGV handler inherited
   * from it (a test framework's longjmp, a crash reporter) must not run peer
   * code in the worker. Invalid or reserved numbers just fail. */
  for (int sig = 1; sig <= SIGRTMAX; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  atexit(worker_atexit);
  struct rlimit nocore = {0, 0};
  setrlimit(RLIMIT_CORE, &nocore);
  if (other != fd) close(other);
  if (fd != 3) {
    if (dup2(fd, 3) < 0) _exit(1);
    close(fd);
  }
  close_range(4, ~0u, 0);
  /* Keep what one invocation frees for the next (40 KB model blobs and
   * their tensors): with the peer's inherited policy, page faults were ~10%
   * of a worker's CPU in mlupdate's SubmitUpdate. A failure only costs
   * speed. */
  (void)fl_malloc_keep_freed();
  worker_main(desc, 3);
}

/* ========================================================================== */
/* The peer side                                                               */
/* ========================================================================== */

/* Forks a worker into w. Called with w owned by the caller (busy, or during
 * pool start). Takes cc->mu only to publish pid/fd. */
static fl_status_t spawn(fl_ccrt_cc_t *cc, fl__worker_t *w) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return FL_EINTERNAL;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(sv[0]);
    close(sv[1]);
    return FL_EINTERNAL;
  }
  if (pid == 0) child_start(cc->desc, sv[1], sv[0], parent);
  close(sv[1]);
  int fl = fcntl(sv[0], F_GETFL);
  if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) != 0) {
    close(sv[0]);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    return FL_EINTERNAL;
  }
  pthread_mutex_lock(&cc->mu);
  w->pid = pid;
  w->fd = sv[0];
  pthread_mutex_unlock(&cc->mu);
  return FL_OK;
}

/* Kills and reaps w's process; describes how it ended into why. */
static void reap(fl_ccrt_cc_t *cc, fl__worker_t *w, char *why, size_t whylen) {
  int st = 0;
  if (why) snprintf(why, whylen, "no process");
  if (w->pid > 0) {
    kill(w->pid, SIGKILL); /* no effect on a zombie: its status stays */
    pid_t r;
    while ((r = waitpid(w->pid, &st, 0)) < 0 && errno == EINTR) {
    }
    if (why && r == w->pid) {
      if (WIFSIGNALED(st))
        snprintf(why, whylen, "killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
      else if (WIFEXITED(st))
        snprintf(why, whylen, "exited with status %d", WEXITSTATUS(st));
    }
  }
  if (w->fd >= 0) close(w->fd);
  pthread_mutex_lock(&cc->mu);
  w->pid = 0;
  w->fd = -1;
  pthread_mutex_unlock(&cc->mu);
}

fl_status_t fl__pool_start(fl_ccrt_cc_t *cc, char **err) {
  unsigned n = cc->rt->workers;
  cc->workers = fl_calloc(n, sizeof *cc->workers);
  cc->nworkers = n;
  for (unsigned i = 0; i < n; i++) cc->workers[i] = (fl__worker_t){.fd = -1};
  for (unsigned i = 0; i < n; i++) {
    if (spawn(cc, &cc->workers[i]) != FL_OK) {
      fl__ccrt_err(err, "chaincode %s: cannot start worker process: %s", cc->name,
                   strerror(errno));
      return FL_EINTERNAL;
    }
  }
  return FL_OK;
}

void fl__pool_stop(fl_ccrt_cc_t *cc) {
  for (unsigned i = 0; i < cc->nworkers; i++) reap(cc, &cc->workers[i], NULL, 0);
  fl_free(cc->workers);
  cc->workers = NULL;
  cc->nworkers = 0;
}

unsigned fl__pool_live(fl_ccrt_cc_t *cc) {
  unsigned n = 0;
  pthread_mutex_lock(&cc->mu);
  for (unsigned i = 0; i < cc->nworkers; i++) {
    pid_t pid = cc->workers[i].pid;
    if (pid <= 0) continue;
    /* WNOWAIT: look without reaping (the worker's owner reaps it). */
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0)
      n++;
  }
  pthread_mutex_unlock(&cc->mu);
  return n;
}

/* Takes an idle worker, with a live process (respawned if it died while
 * idle). FL_EUNAVAIL if none could be started. */
static fl_status_t acquire(fl_ccrt_cc_t *cc, fl__worker_t **out) {
  pthread_mutex_lock(&cc->mu);
  fl__worker_t *w = NULL;
  for (;;) {
    for (unsigned i = 0; i < cc->nworkers && !w; i++)
      if (!cc->workers[i].busy) w = &cc->workers[i];
    if (w) break;
    pthread_cond_wait(&cc->cv, &cc->mu);
  }
  w->busy = true;
  pthread_mutex_unlock(&cc->mu);
  if (w->pid > 0) {
    int st;
    pid_t r = waitpid(w->pid, &st, WNOHANG);
    if (r != 0) { /* died while idle (r == pid), or not our child any more */
      FL_WARN(FL__CCRT_LOG, "idle worker died chaincode=%s pid=%d", cc->name, (int)w->pid);
      if (r == w->pid) {
        pthread_mutex_lock(&cc->mu);
        w->pid = 0; /* reaped: reap() must not signal a recycled pid */
        pthread_mutex_unlock(&cc->mu);
      }
      reap(cc, w, NULL, 0);
    }
  }
  if (w->pid == 0 && spawn(cc, w) != FL_OK) {
    pthread_mutex_lock(&cc->mu);
    w->busy = false;
    pthread_cond_signal(&cc->cv);
    pthread_mutex_unlock(&cc->mu);
    return FL_EUNAVAIL;
  }
  *out = w;
  return FL_OK;
}

static void release(fl_ccrt_cc_t *cc, fl__worker_t *w) {
  pthread_mutex_lock(&cc->mu);
  w->busy = false;
  pthread_cond_signal(&cc->cv);
  pthread_mutex_unlock(&cc->mu);
}

/* The peer's side of a worker channel: reads whatever has arrived (the
 * worker sends several frames in one write) and hands out frames from it. */
typedef struct frd_s {
  int fd;
  fl_sbuf_t buf;
  size_t pos;    /* start of the unread bytes */
} frd_t;

/* Makes at least n unread bytes available. */
static fl_status_t frd_fill(frd_t *f, size_t n, uint64_t deadline) {
  if (f->buf.len - f->pos >= n) return FL_OK;
  if (f->pos > 0) { /* compact */
    memmove(f->buf.data, f->buf.data + f->pos, f->buf.len - f->pos);
    f->buf.len -= f->pos;
    f->pos = 0;
  }
  while (f->buf.len < n) {
    size_t want = n - f->buf.len < 65536 ? 65536 : n - f->buf.len;
    fl_sbuf_reserve(&f->buf, f->buf.len + want);
    ssize_t k = read(f->fd, f->buf.data + f->buf.len, want);
    if (k > 0) {
      f->buf.len += (size_t)k;
      continue;
    }
    if (k == 0) return FL_ECLOSED;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      FL_FORWARD(wait_fd(f->fd, POLLIN, deadline));
      continue;
    }
    return FL_ECLOSED;
  }
  return FL_OK;
}

/* The next frame: its type and a view of its body (valid until the next
 * call). FL_EPROTO for an over-long one. */
static fl_status_t frd_next(frd_t *f, uint32_t *type, fl_sbuf_t *view, uint64_t deadline) {
  FL_FORWARD(frd_fill(f, 8, deadline));
  *type = fl_get_be32(f->buf.data + f->pos);
  uint32_t len = fl_get_be32(f->buf.data + f->pos + 4);
  if (len > FL__CCRT_MAX_FRAME) return FL_EPROTO;
  FL_FORWARD(frd_fill(f, 8 + (size_t)len, deadline));
  /* a borrowed view: data/len only, never freed or grown */
  view->data = f->buf.data + f->pos + 8;
  view->len = len;
  f->pos += 8 + (size_t)len;
  return FL_OK;
}

/* Answers the worker's frames until DONE. Returns FL_OK with the response,
 * FL_ETIMEDOUT, FL_ECLOSED (the worker died) or FL_EPROTO. */
static fl_status_t serve(fl__sim_t *sim, int fd, uint64_t deadline, int32_t *status,
                         fl_sbuf_t *msg, fl_sbuf_t *payload) {
  fl_sbuf_t in = {0}, out = {0}, val = {0}, ents = {0};
  frd_t rd = {.fd = fd};
  fl_status_t rc;
  for (;;) {
    uint32_t type;
    rc = frd_next(&rd, &type, &in, deadline);
    if (rc != FL_OK) break;
    rdr_t r = rdr(&in);
    out.len = 0;
    bool reply = true;
    switch (type) {
    case M_GET: {
      fl_buf_t key = r_bytes(&r);
      if (r.bad) break;
      fl_status_t g = fl__sim_get(sim, key, &val);
      w_i32(&out, g);
      if (g == FL_OK) w_buf(&out, fl_sbuf_view(&val));
      break;
    }
    case M_PUT:
    case M_DEL: {
      fl_buf_t key = r_bytes(&r);
      fl_buf_t v = type == M_PUT ? r_bytes(&r) : (fl_buf_t){0};
      reply = false;
      if (r.bad) break;
      if ((type == M_PUT ? fl__sim_put(sim, key, v) : fl__sim_del(sim, key)) != FL_OK)
        r.bad = true; /* the worker validated it: a mismatch is a protocol error */
      break;
    }
    case M_RANGE_OPEN:
    case M_HIST_OPEN: {
      fl_buf_t a = r_bytes(&r);
      fl_buf_t b = type == M_RANGE_OPEN ? r_bytes(&r) : (fl_buf_t){0};
      if (r.bad) break;
      uint32_t id = 0;
      fl_status_t o = type == M_RANGE_OPEN ? fl__sim_range_open(sim, a, b, &id)
                                           : fl__sim_hist_open(sim, a, &id);
      w_i32(&out, o);
      w_u32(&out, id);
      break;
    }
    case M_RANGE_NEXT:
    case M_HIST_NEXT: {
      uint32_t id = r_u32(&r);
      if (r.bad) break;
      ents.len = 0;
      uint32_t n = 0;
      bool end = false;
      fl_status_t g = FL_OK;
      while (n < FL__CCRT_BATCH && ents.len < FL__CCRT_BATCH_BYTES) {
        if (type == M_RANGE_NEXT) {
          fl_buf_t k, v;
          g = fl__sim_range_next(sim, id, &k, &v);
          if (g != FL_OK) break;
          w_buf(&ents, k);
          w_buf(&ents, v);
        } else {
          fl_ccrt_mod_t m;
          g = fl__sim_hist_next(sim, id, &m);
          if (g != FL_OK) break;
          w_buf(&ents, m.tx_id);
          w_u64(&ents, m.block);
          w_u64(&ents, m.tx);
          w_u8(&ents, m.is_delete);
          w_buf(&ents, m.is_delete ? (fl_buf_t){0} : m.value);
        }
        n++;
      }
      if (g == FL_EPROTO) { /* unknown or closed id */
        r.bad = true;
        break;
      }
      if (g == FL_NOTFOUND) {
        end = true;
        g = FL_OK;
      }
      if (g != FL_OK) { /* a state error: nothing of this batch is sent */
        n = 0;
        ents.len = 0;
      }
      w_i32(&out, g);
      w_u8(&out, end);
      w_u32(&out, n);
      fl_sbuf_append(&out, ents.data, ents.len);
      break;
    }
    case M_RANGE_CLOSE: {
      uint32_t id = r_u32(&r);
      uint64_t consumed = r_u64(&r);
      bool saw_end = r_u8(&r) != 0;
      reply = false;
      if (!r.bad && fl__sim_range_close(sim, id, consumed, saw_end) != FL_OK) r.bad = true;
      break;
    }
    case M_HIST_CLOSE: {
      uint32_t id = r_u32(&r);
      reply = false;
      if (!r.bad && fl__sim_hist_close(sim, id) != FL_OK) r.bad = true;
      break;
    }
    case M_PUT_BLOB: {
      fl_buf_t data = r_bytes(&r);
      if (r.bad) break;
      uint8_t hash[FL_CCRT_HASH_LEN];
      fl_status_t g = fl__sim_put_blob(sim, data, hash);
      w_i32(&out, g);
      if (g == FL_OK) fl_sbuf_append(&out, hash, sizeof hash);
      break;
    }
    case M_GET_BLOB: {
      if (!r_need(&r, FL_CCRT_HASH_LEN)) break;
      uint8_t hash[FL_CCRT_HASH_LEN];
      memcpy(hash, r.p, sizeof hash);
      r.p += sizeof hash;
      r.n -= sizeof hash;
      fl_status_t g = fl__sim_blob_get(sim, hash, &val);
      w_i32(&out, g);
      if (g == FL_OK) w_buf(&out, fl_sbuf_view(&val));
      break;
    }
    case M_EVENT: {
      fl_buf_t name = r_bytes(&r), pl = r_bytes(&r);
      if (r.bad) break;
      w_i32(&out, fl__sim_set_event(sim, name, pl));
      break;
    }
    case M_DONE: {
      int32_t s = r_i32(&r);
      fl_buf_t m = r_bytes(&r), p = r_bytes(&r);
      if (r.bad || r.n) {
        rc = FL_EPROTO;
        goto done;
      }
      *status = s;
      fl_sbuf_append(msg, m.data, m.len);
      fl_sbuf_append(payload, p.data, p.len);
      rc = FL_OK;
      goto done;
    }
    default:
      r.bad = true;
    }
    if (r.bad) {
      rc = FL_EPROTO;
      break;
    }
    if (reply) {
      rc = send_frame(fd, M_REPLY, &out, deadline);
      if (rc != FL_OK) break;
    }
  }
done:
  fl_sbuf_free(&rd.buf); /* `in` is a view into it */
  fl_sbuf_free(&out);
  fl_sbuf_free(&val);
  fl_sbuf_free(&ents);
  return rc;
}

fl_status_t fl__fork_simulate(fl_ccrt_cc_t *cc, fl__sim_t *sim,
                              const fl_ccrt_invocation_t *inv, int32_t *status,
                              fl_sbuf_t *msg, fl_sbuf_t *payload, char **err) {
  fl__worker_t *w = NULL;
  if (acquire(cc, &w) != FL_OK) {
    fl__ccrt_err(err, "chaincode %s: no worker process could be started", cc->name);
    return FL_EUNAVAIL;
  }
  uint64_t deadline = fl_mono_ns() + (uint64_t)cc->rt->timeout_ms * 1000000u;
  fl_sbuf_t req = {0};
  w_u8(&req, inv->init);
  w_buf(&req, inv->tx_id);
  w_u64(&req, inv->timestamp_ms);
  w_u32(&req, (uint32_t)inv->nargs);
  for (size_t i = 0; i < inv->nargs; i++) w_buf(&req, inv->args[i]);
  w_u32(&req, (uint32_t)inv->nblobs);
  for (size_t i = 0; i < inv->nblobs; i++) w_buf(&req, inv->blobs[i]);
  w_buf(&req, inv->transient);
  w_buf(&req, inv->creator.mspid);
  w_buf(&req, inv->creator.cert_pem);
  w_buf(&req, inv->creator.role);
  w_bytes(&req, inv->creator.cert_sha256, FL_CCRT_HASH_LEN);

  fl_status_t rc;
  if (req.len > FL__CCRT_MAX_FRAME || inv->nargs > UINT32_MAX || inv->nblobs > UINT32_MAX) {
    fl__ccrt_err(err, "chaincode %s: invocation too large (%zu bytes)", cc->name, req.len);
    fl_sbuf_free(&req);
    release(cc, w);
    return FL_ETOOBIG;
  }
  rc = send_frame(w->fd, M_INVOKE, &req, deadline);
  fl_sbuf_free(&req);
  if (rc == FL_OK) rc = serve(sim, w->fd, deadline, status, msg, payload);
  if (rc != FL_OK) {
    char why[160];
    pid_t pid = w->pid;
    reap(cc, w, why, sizeof why);
    if (rc == FL_ETIMEDOUT) {
      fl__ccrt_err(err, "chaincode %s timed out after %u ms (worker pid %d killed)",
                   cc->name, (unsigned)cc->rt->timeout_ms, (int)pid);
    } else if (rc == FL_EPROTO) {
      fl__ccrt_err(err, "chaincode %s broke the worker protocol (worker pid %d %s)",
                   cc->name, (int)pid, why);
      rc = FL_EINTERNAL;
    } else {
      fl__ccrt_err(err, "chaincode %s crashed: worker pid %d %s", cc->name, (int)pid, why);
      rc = FL_EINTERNAL;
    }
    FL_WARN(FL__CCRT_LOG, "worker replaced chaincode=%s pid=%d rc=%s reason=\"%s\"",
            cc->name, (int)pid, fl_status_name(rc), why);
    msg->len = payload->len = 0;
    if (spawn(cc, w) != FL_OK) /* acquire retries later */
      FL_ERROR(FL__CCRT_LOG, "cannot respawn worker chaincode=%s errno=%d", cc->name, errno);
  }
  release(cc, w);
  return rc;
}
