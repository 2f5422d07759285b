/* SPDX-License-Identifier: Apache-2.0
 *
 * rpc_client.c: the RPC client: one connection, many concurrent calls
 * multiplexed by call id, per-call timeouts, cancellation.
 *
 * Invariants (loop thread only):
 *   1. a call is in `calls` until it completes; completing removes it first,
 *      then runs the user callback exactly once, then releases it, so a late
 *      frame for its id finds nothing and is dropped;
 *   2. `units` counts what must close before the memory can go: the
 *      connection's handles (1), the connect timer (1), a pending
 *      getaddrinfo (1) and each call timer (1);
 *   3. state is FL_AGAIN while connecting, FL_OK when ready, and the failure
 *      afterwards; it never goes back to FL_OK.
 */
#include <stdio.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/net/rpc_int.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000u

typedef struct ccall_s {
  fl_rpc_client_t *cl;
  uint64_t id;
  bool stream, has_timer;
  fl_rpc_unary_cb unary_cb;
  fl_rpc_msg_cb on_msg;
  fl_rpc_end_cb on_end;
  void *arg;
  uv_timer_t timer;
} ccall_t;

struct fl_rpc_client_s {
  fl__conn_t c; /* first member */
  uv_loop_t *loop;
  fl_tls_ctx_t *tls;
  char *host;
  uint16_t port;
  uv_connect_t creq;
  uv_getaddrinfo_t gai;
  uv_timer_t ctimer;
  fl__idmap_t calls;
  uint64_t next_id;
  fl_status_t state;
  fl_status_t deferred; /* a synchronous connect failure, reported by ctimer */
  bool closing, connect_reported, gai_pending;
  int units;
  void (*on_connect)(fl_rpc_client_t *, fl_status_t, void *);
  void (*on_disconnect)(fl_rpc_client_t *, fl_status_t, void *);
  void *cb_arg;
  fl_rpc_client_close_cb close_cb;
  void *close_arg;
  fl_rpc_stats_t stats;
};

static void maybe_done(fl_rpc_client_t *cl) {
  if (!cl->closing || cl->units > 0) return;
  if (cl->close_cb) cl->close_cb(cl, cl->close_arg);
  fl__conn_destroy(&cl->c);
  fl__idmap_free(&cl->calls);
  fl_tls_ctx_free(cl->tls);
  fl_free(cl->host);
  fl_free(cl);
}

static void on_call_timer_closed(uv_handle_t *h) {
  ccall_t *cc = h->data;
  fl_rpc_client_t *cl = cc->cl;
  fl_free(cc);
  cl->units--;
  maybe_done(cl);
}

/* Invariant 1. */
static void complete(ccall_t *cc, fl_status_t st, const char *msg, fl_buf_t payload) {
  fl_rpc_client_t *cl = cc->cl;
  fl__idmap_del(&cl->calls, cc->id);
  if (st == FL_OK) cl->stats.calls_completed++;
  else if (st == FL_ECANCELED || st == FL_ETIMEDOUT) cl->stats.calls_cancelled++;
  if (cc->stream) cc->on_end(cc->arg, st, msg);
  else cc->unary_cb(cc->arg, st, msg, payload);
  if (cc->has_timer) {
    uv_timer_stop(&cc->timer);
    uv_close((uv_handle_t *)&cc->timer, on_call_timer_closed);
  } else {
    fl_free(cc);
  }
}

static void complete_all(fl_rpc_client_t *cl, fl_status_t st, const char *msg) {
  size_t n = 0;
  void **all = fl__idmap_take_all(&cl->calls, &n);
  for (size_t i = 0; i < n; i++) {
    ccall_t *cc = all[i];
    fl__idmap_put(&cl->calls, cc->id, cc); /* complete() removes it again */
    complete(cc, st, msg, FL_BUF(NULL, 0));
  }
  fl_free(all);
}

static void send_cancel(fl_rpc_client_t *cl, uint64_t id) {
  fl_frame_t f = {.call_id = id, .flags = FL_FRAME_CANCEL};
  (void)fl__conn_send(&cl->c, &f);
}

/* ---- connection callbacks ---- */

static void on_ready(fl__conn_t *c) {
  fl_rpc_client_t *cl = (fl_rpc_client_t *)c;
  cl->state = FL_OK;
  cl->stats.conns_open++;
  uv_timer_stop(&cl->ctimer);
  if (!cl->connect_reported) {
    cl->connect_reported = true;
    if (cl->on_connect) cl->on_connect(cl, FL_OK, cl->cb_arg);
  }
}

static void on_frame(fl__conn_t *c, fl_frame_t *f) {
  fl_rpc_client_t *cl = (fl_rpc_client_t *)c;
  if (f->flags & FL_FRAME_PING) {
    fl_frame_t pong = {.flags = FL_FRAME_PONG, .payload = f->payload};
    (void)fl__conn_send(c, &pong);
  } else if (f->call_id == 0) {
    if (f->flags & FL_FRAME_ERROR)
      fl__conn_close(c, (fl_status_t)f->status, f->error ? f->error : "server error");
  } else {
    ccall_t *cc = fl__idmap_get(&cl->calls, f->call_id);
    if (cc == NULL) {
      /* A late answer to a call that timed out or was cancelled. */
    } else if (f->flags & FL_FRAME_ERROR) {
      complete(cc, (fl_status_t)f->status, f->error, FL_BUF(NULL, 0));
    } else if (!cc->stream) {
      complete(cc, FL_OK, NULL, f->payload);
    } else if (!(f->flags & FL_FRAME_END_STREAM)) {
      cc->on_msg(cc->arg, f->payload);
    } else {
      uint64_t id = cc->id;
      if (f->payload.len) cc->on_msg(cc->arg, f->payload);
      /* on_msg may have cancelled the call or closed the client. */
      if (fl__idmap_get(&cl->calls, id) == cc) complete(cc, FL_OK, NULL, FL_BUF(NULL, 0));
    }
  }
  fl_frame_free(f);
}

static void on_drain(fl__conn_t *c) { (void)c; }

static void on_close(fl__conn_t *c, fl_status_t why, const char *msg) {
  fl_rpc_client_t *cl = (fl_rpc_client_t *)c;
  bool was_ready = cl->state == FL_OK;
  cl->state = why < 0 ? why : FL_ECLOSED;
  if (was_ready) cl->stats.conns_open--;
  if (!cl->closing) uv_timer_stop(&cl->ctimer);
  FL_DEBUG("rpc", "client conn closing host=%s port=%u status=%s err=\"%s\"", cl->host,
           cl->port, fl_status_name(cl->state), msg ? msg : "");
  complete_all(cl, cl->state, msg);
  if (cl->closing) return;
  if (!cl->connect_reported) {
    cl->connect_reported = true;
    if (cl->on_connect) cl->on_connect(cl, cl->state, cl->cb_arg);
  } else if (cl->on_disconnect) {
    cl->on_disconnect(cl, cl->state, cl->cb_arg);
  }
}

static void on_closed(fl__conn_t *c) {
  fl_rpc_client_t *cl = (fl_rpc_client_t *)c;
  cl->units--;
  maybe_done(cl);
}

static const fl__conn_ops_t client_conn_ops = {
    .on_ready = on_ready,
    .on_frame = on_frame,
    .on_drain = on_drain,
    .on_close = on_close,
    .on_closed = on_closed,
};

/* ---- connecting ---- */

static void on_ctimer(uv_timer_t *t) {
  fl_rpc_client_t *cl = t->data;
  if (cl->deferred != FL_OK) fl__conn_close(&cl->c, cl->deferred, "cannot connect");
  else if (cl->state == FL_AGAIN) fl__conn_close(&cl->c, FL_ETIMEDOUT, "connect timed out");
}

static void on_connected(uv_connect_t *req, int status) {
  fl_rpc_client_t *cl = req->data;
  if (status == UV_ECANCELED || cl->c.closing) return;
  if (status < 0) {
    fl__conn_close(&cl->c, FL_ECONNREFUSED, uv_strerror(status));
    return;
  }
  fl__conn_start(&cl->c);
}

static void defer_failure(fl_rpc_client_t *cl, fl_status_t st) {
  cl->deferred = st;
  uv_timer_start(&cl->ctimer, on_ctimer, 0, 0);
}

static void connect_to(fl_rpc_client_t *cl, const struct sockaddr *sa) {
  cl->creq.data = cl;
  if (uv_tcp_connect(&cl->creq, &cl->c.tcp, sa, on_connected) != 0)
    defer_failure(cl, FL_ECONNREFUSED);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  fl_rpc_client_t *cl = req->data;
  cl->units--;
  cl->gai_pending = false;
  if (cl->closing || cl->c.closing) {
    uv_freeaddrinfo(res);
    maybe_done(cl);
    return;
  }
  if (status < 0 || res == NULL) {
    uv_freeaddrinfo(res);
    fl__conn_close(&cl->c, FL_ECONNREFUSED, "cannot resolve host");
    return;
  }
  /* Prefer IPv4: "localhost" often lists ::1 first while servers bind
   * 127.0.0.1. Only the chosen address is tried. */
  const struct addrinfo *pick = res;
  for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      pick = ai;
      break;
    }
  }
  connect_to(cl, pick->ai_addr);
  uv_freeaddrinfo(res);
}

fl_status_t fl_rpc_client_new(uv_loop_t *loop, const fl_rpc_client_opts_t *opts,
                              fl_rpc_client_t **out, char **errmsg) {
  *out = NULL;
  if (errmsg) *errmsg = NULL;
  if (loop == NULL || opts == NULL || opts->host == NULL || opts->port == 0 ||
      opts->max_frame > FL_FRAME_LIMIT) {
    if (errmsg) *errmsg = fl_strdup("client options need host and port");
    return FL_EINVAL;
  }
  fl_tls_ctx_t *tls = NULL;
  if (opts->tls) {
    fl_status_t rc = fl_tls_ctx_new(opts->tls, false, &tls, errmsg);
    if (rc != FL_OK) return rc;
  }
  fl__ignore_sigpipe();
  fl_rpc_client_t *cl = fl_calloc(1, sizeof(*cl));
  if (fl__conn_init(&cl->c, loop, &client_conn_ops, tls,
                    opts->max_frame ? opts->max_frame : FL_FRAME_DEFAULT_MAX, opts->write_hwm,
                    &cl->stats) != FL_OK) {
    fl_tls_ctx_free(tls);
    fl_free(cl);
    if (errmsg) *errmsg = fl_strdup("cannot create a TCP handle");
    return FL_EIO;
  }
  cl->loop = loop;
  cl->tls = tls;
  cl->host = fl_strdup(opts->host);
  cl->port = opts->port;
  cl->state = FL_AGAIN;
  cl->on_connect = opts->on_connect;
  cl->on_disconnect = opts->on_disconnect;
  cl->cb_arg = opts->arg;
  cl->units = 1;
  uv_timer_init(loop, &cl->ctimer);
  cl->ctimer.data = cl;
  cl->units++;
  uv_timer_start(&cl->ctimer, on_ctimer,
                 opts->connect_timeout_ms ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS,
                 0);
  struct sockaddr_storage ss;
  if (uv_ip4_addr(cl->host, cl->port, (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(cl->host, cl->port, (struct sockaddr_in6 *)&ss) == 0) {
    connect_to(cl, (const struct sockaddr *)&ss);
  } else {
    char port[8];
    snprintf(port, sizeof(port), "%u", cl->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    cl->gai.data = cl;
    if (uv_getaddrinfo(loop, &cl->gai, on_resolved, cl->host, port, &hints) == 0) {
      cl->units++;
      cl->gai_pending = true;
    } else {
      defer_failure(cl, FL_ECONNREFUSED);
    }
  }
  *out = cl;
  return FL_OK;
}

/* ---- calls ---- */

static void on_call_timeout(uv_timer_t *t) {
  ccall_t *cc = t->data;
  send_cancel(cc->cl, cc->id);
  complete(cc, FL_ETIMEDOUT, "call timed out", FL_BUF(NULL, 0));
}

static fl_status_t start_call(fl_rpc_client_t *cl, const char *method, fl_buf_t payload,
                              uint32_t timeout_ms, ccall_t *tmpl, uint64_t *call_id) {
  if (call_id) *call_id = 0;
  if (cl->closing) return FL_ECLOSED;
  if (cl->state != FL_OK && cl->state != FL_AGAIN) return cl->state;
  if (method == NULL) return FL_EINVAL;
  if (cl->c.hwm && fl__conn_queued(&cl->c) >= cl->c.hwm) return FL_AGAIN;
  uint64_t id = ++cl->next_id;
  fl_frame_t f = {.call_id = id, .flags = FL_FRAME_REQUEST | FL_FRAME_END_STREAM,
                  .method = method, .payload = payload};
  fl_status_t rc = fl__conn_send(&cl->c, &f);
  if (rc != FL_OK) return rc;
  ccall_t *cc = fl_malloc(sizeof(*cc));
  *cc = *tmpl;
  cc->cl = cl;
  cc->id = id;
  fl__idmap_put(&cl->calls, id, cc);
  if (timeout_ms > 0) {
    uv_timer_init(cl->loop, &cc->timer);
    cc->timer.data = cc;
    cc->has_timer = true;
    cl->units++;
    uv_timer_start(&cc->timer, on_call_timeout, timeout_ms, 0);
  }
  cl->stats.calls_started++;
  if (call_id) *call_id = id;
  return FL_OK;
}

fl_status_t fl_rpc_client_unary(fl_rpc_client_t *cl, const char *method, fl_buf_t payload,
                                uint32_t timeout_ms, fl_rpc_unary_cb cb, void *arg,
                                uint64_t *call_id) {
  if (cb == NULL) return FL_EINVAL;
  ccall_t t = {.unary_cb = cb, .arg = arg};
  return start_call(cl, method, payload, timeout_ms, &t, call_id);
}

fl_status_t fl_rpc_client_stream(fl_rpc_client_t *cl, const char *method, fl_buf_t payload,
                                 uint32_t timeout_ms, fl_rpc_msg_cb on_msg, fl_rpc_end_cb on_end,
                                 void *arg, uint64_t *call_id) {
  if (on_msg == NULL || on_end == NULL) return FL_EINVAL;
  ccall_t t = {.stream = true, .on_msg = on_msg, .on_end = on_end, .arg = arg};
  return start_call(cl, method, payload, timeout_ms, &t, call_id);
}

fl_status_t fl_rpc_client_cancel(fl_rpc_client_t *cl, uint64_t call_id) {
  ccall_t *cc = fl__idmap_get(&cl->calls, call_id);
  if (cc == NULL) return FL_NOTFOUND;
  send_cancel(cl, call_id);
  complete(cc, FL_ECANCELED, "cancelled by the client", FL_BUF(NULL, 0));
  return FL_OK;
}

void fl_rpc_client_pause(fl_rpc_client_t *cl, bool paused) {
  if (!cl->c.closing) fl__conn_pause(&cl->c, paused);
}

fl_status_t fl_rpc_client_state(const fl_rpc_client_t *cl) {
  return cl->closing ? FL_ECLOSED : cl->state;
}

size_t fl_rpc_client_inflight(const fl_rpc_client_t *cl) { return cl->calls.n; }

fl_buf_t fl_rpc_client_peer_cert(const fl_rpc_client_t *cl) {
  return (cl->c.tls && fl_tls_ready(cl->c.tls)) ? fl_tls_peer_der(cl->c.tls) : FL_BUF(NULL, 0);
}

const char *fl_rpc_client_peer_cn(const fl_rpc_client_t *cl) {
  return (cl->c.tls && fl_tls_ready(cl->c.tls)) ? fl_tls_peer_cn(cl->c.tls) : "";
}

void fl_rpc_client_stats(const fl_rpc_client_t *cl, fl_rpc_stats_t *out) { *out = cl->stats; }

static void on_ctimer_closed(uv_handle_t *h) {
  fl_rpc_client_t *cl = h->data;
  cl->units--;
  maybe_done(cl);
}

void fl_rpc_client_close(fl_rpc_client_t *cl, fl_rpc_client_close_cb cb, void *arg) {
  if (cl == NULL || cl->closing) return;
  cl->closing = true;
  cl->close_cb = cb;
  cl->close_arg = arg;
  if (cl->gai_pending) (void)uv_cancel((uv_req_t *)&cl->gai);
  uv_timer_stop(&cl->ctimer);
  uv_close((uv_handle_t *)&cl->ctimer, on_ctimer_closed);
  complete_all(cl, FL_ECANCELED, "client closed");
  fl__conn_close(&cl->c, FL_ECANCELED, "client closed");
}
