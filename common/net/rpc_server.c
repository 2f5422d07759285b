/* SPDX-License-Identifier: Apache-2.0
 *
 * rpc_server.c: the RPC server: accepts connections, dispatches requests to
 * handlers by method name, and owns the server side of every call.
 *
 * Lifetimes (all on the loop thread):
 *   1. a call has refs: one held by its connection's table while it is
 *      active, one held by the handler until reply/end, one while it waits
 *      for a drain; it is freed at zero;
 *   2. a server connection (sconn) has refs: one for its open handles and
 *      one per call that points to it, so a call completed by a handler after
 *      the connection closed still finds valid (closed) memory;
 *   3. sc->srv is cleared when the connection's handles are closed; no call
 *      path touches the server once the connection is closing;
 *   4. the server is freed after every connection and the listener closed;
 *   5. sc->read_holds counts the calls with holds_pause set (reading is
 *      paused at the owner's request while it is > 0); a call drops its
 *      hold when it is released, completed or cancelled.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/net/rpc_int.h"

#define DEFAULT_MAX_CALLS 1024u
#define DEFAULT_HWM ((size_t)4 << 20)

typedef struct handler_s {
  char *method;
  fl_rpc_kind_t kind;
  fl_rpc_handler_fn fn;
  void *arg;
} handler_t;

typedef struct sconn_s sconn_t;

struct fl_rpc_call_s {
  sconn_t *sc;
  int refs;
  uint64_t id;
  fl_rpc_kind_t kind;
  fl_frame_t *req;
  bool in_table, done, cancelled, waiting_drain;
  bool holds_pause;             /* counted in sc->read_holds */
  fl_rpc_call_cb cancel_cb, drain_cb;
  void *cancel_arg, *drain_arg;
  fl_rpc_call_t *drain_next;
};

struct sconn_s {
  fl__conn_t c; /* first member: (sconn_t *)conn */
  fl_rpc_server_t *srv;
  sconn_t *prev, *next;
  int refs;
  fl__idmap_t calls;
  fl_rpc_call_t *drain_head;
  uint32_t read_holds;      /* calls holding reading paused (fl_rpc_call_pause_reading) */
};

struct fl_rpc_server_s {
  uv_loop_t *loop;
  uv_tcp_t listener;
  fl_tls_ctx_t *tls;
  char *host;
  uint16_t port;
  size_t max_frame, hwm;
  uint32_t max_calls;
  handler_t *handlers;
  size_t nhandlers;
  sconn_t *conns;
  int units; /* listener + open connections */
  bool listening, closing;
  fl_rpc_server_close_cb close_cb;
  void *close_arg;
  fl_rpc_stats_t stats;
};

static void send_error(sconn_t *sc, uint64_t id, fl_status_t st, const char *msg);

/* ---- refcounting ---- */

static void sconn_unref(sconn_t *sc) {
  if (--sc->refs > 0) return;
  fl__conn_destroy(&sc->c);
  fl__idmap_free(&sc->calls);
  fl_free(sc);
}

static void call_unref(fl_rpc_call_t *call) {
  if (--call->refs > 0) return;
  fl_frame_free(call->req);
  sconn_unref(call->sc);
  fl_free(call);
}

/* Drops call's hold on its connection's reading; the last hold resumes it.
 * Returns true when reading resumed. */
static bool pause_drop(fl_rpc_call_t *call) {
  if (!call->holds_pause) return false;
  sconn_t *sc = call->sc;
  call->holds_pause = false;
  if (--sc->read_holds > 0 || sc->c.closing) return false;
  fl__conn_pause(&sc->c, false);
  return true;
}

static void drain_unlink(fl_rpc_call_t *call) {
  if (!call->waiting_drain) return;
  sconn_t *sc = call->sc;
  for (fl_rpc_call_t **pp = &sc->drain_head; *pp; pp = &(*pp)->drain_next) {
    if (*pp == call) {
      *pp = call->drain_next;
      break;
    }
  }
  call->waiting_drain = false;
  call->drain_next = NULL;
  call_unref(call);
}

/* Removes an active call from its table; marks it cancelled and fires the
 * cancel callback. */
static void call_cancel(fl_rpc_call_t *call) {
  if (call->cancelled) return;
  call->cancelled = true;
  call->refs++; /* keep it alive through the callbacks below */
  (void)pause_drop(call);
  drain_unlink(call);
  if (call->in_table) {
    fl__idmap_del(&call->sc->calls, call->id);
    call->in_table = false;
    call_unref(call);
  }
  if (!call->done && call->cancel_cb) {
    fl_rpc_call_cb cb = call->cancel_cb;
    call->cancel_cb = NULL;
    cb(call, call->cancel_arg);
  }
  call_unref(call);
}

/* Cancels every active call of sc; with notify, each client first gets an
 * error frame with status st (the connection must not be closing yet). */
static void cancel_all(sconn_t *sc, bool notify, fl_status_t st, const char *msg) {
  size_t n = 0;
  void **all = fl__idmap_take_all(&sc->calls, &n);
  for (size_t i = 0; i < n; i++) {
    fl_rpc_call_t *call = all[i];
    call->in_table = false; /* its table reference is now ours */
    if (notify) send_error(sc, call->id, st, msg);
    if (sc->srv) sc->srv->stats.calls_cancelled++;
    call_cancel(call);
    call_unref(call);
  }
  fl_free(all);
}

/* ---- connection callbacks ---- */

static void server_maybe_done(fl_rpc_server_t *srv) {
  if (!srv->closing || srv->units > 0) return;
  if (srv->close_cb) srv->close_cb(srv, srv->close_arg);
  fl_tls_ctx_free(srv->tls);
  for (size_t i = 0; i < srv->nhandlers; i++) fl_free(srv->handlers[i].method);
  fl_free(srv->handlers);
  fl_free(srv->host);
  fl_free(srv);
}

static void on_ready(fl__conn_t *c) {
  sconn_t *sc = (sconn_t *)c;
  if (c->tls)
    FL_DEBUG("rpc", "tls ready peer_cn=\"%s\"", fl_tls_peer_cn(c->tls));
  (void)sc;
}

static void send_error(sconn_t *sc, uint64_t id, fl_status_t st, const char *msg) {
  fl_frame_t ef = {.call_id = id, .flags = FL_FRAME_ERROR | FL_FRAME_END_STREAM,
                   .status = st, .error = msg};
  (void)fl__conn_send(&sc->c, &ef);
}

static const handler_t *find_handler(const fl_rpc_server_t *srv, const char *method) {
  for (size_t i = 0; i < srv->nhandlers; i++)
    if (strcmp(srv->handlers[i].method, method) == 0) return &srv->handlers[i];
  return NULL;
}

static void on_request(sconn_t *sc, fl_frame_t *f) {
  fl_rpc_server_t *srv = sc->srv;
  if (fl__idmap_get(&sc->calls, f->call_id) != NULL) {
    srv->stats.protocol_errors++;
    send_error(sc, 0, FL_EPROTO, "duplicate call id");
    fl_frame_free(f);
    fl__conn_close(&sc->c, FL_EPROTO, "duplicate call id");
    return;
  }
  const handler_t *h = find_handler(srv, f->method);
  if (h == NULL || srv->closing || sc->calls.n >= srv->max_calls) {
    srv->stats.calls_rejected++;
    if (h == NULL) {
      char *msg = fl_sprintf("unknown method %s", f->method);
      send_error(sc, f->call_id, FL_ENOMETHOD, msg);
      fl_free(msg);
    } else {
      send_error(sc, f->call_id, srv->closing ? FL_ECANCELED : FL_EUNAVAIL,
                 srv->closing ? "server shutting down" : "too many concurrent calls");
    }
    fl_frame_free(f);
    return;
  }
  fl_rpc_call_t *call = fl_calloc(1, sizeof(*call));
  call->sc = sc;
  sc->refs++;
  call->refs = 2; /* table + handler */
  call->id = f->call_id;
  call->kind = h->kind;
  call->req = f;
  call->in_table = true;
  fl__idmap_put(&sc->calls, call->id, call);
  srv->stats.calls_started++;
  h->fn(call, h->arg);
}

static void on_frame(fl__conn_t *c, fl_frame_t *f) {
  sconn_t *sc = (sconn_t *)c;
  if (f->flags & FL_FRAME_REQUEST) {
    on_request(sc, f); /* takes f */
    return;
  }
  if (f->flags & FL_FRAME_CANCEL) {
    fl_rpc_call_t *call = fl__idmap_get(&sc->calls, f->call_id);
    if (call) {
      sc->srv->stats.calls_cancelled++;
      call_cancel(call);
    }
  } else if (f->flags & FL_FRAME_PING) {
    fl_frame_t pong = {.flags = FL_FRAME_PONG, .payload = f->payload};
    (void)fl__conn_send(c, &pong);
  } else if ((f->flags & FL_FRAME_ERROR) && f->call_id == 0) {
    fl__conn_close(c, (fl_status_t)f->status, "client reported a connection error");
  }
  /* Anything else (PONG, data for a finished call) is ignored. */
  fl_frame_free(f);
}

static void on_drain(fl__conn_t *c) {
  sconn_t *sc = (sconn_t *)c;
  fl_rpc_call_t *list = sc->drain_head;
  sc->drain_head = NULL;
  while (list && !c->closing) {
    fl_rpc_call_t *call = list;
    list = call->drain_next;
    call->drain_next = NULL;
    call->waiting_drain = false;
    fl_rpc_call_cb cb = call->drain_cb;
    call->drain_cb = NULL;
    if (cb && !call->cancelled && !call->done) cb(call, call->drain_arg);
    call_unref(call);
  }
  /* Closed in a callback: the rest are released without a callback. */
  while (list) {
    fl_rpc_call_t *call = list;
    list = call->drain_next;
    call->drain_next = NULL;
    call->waiting_drain = false;
    call_unref(call);
  }
}

static void on_close(fl__conn_t *c, fl_status_t why, const char *msg) {
  sconn_t *sc = (sconn_t *)c;
  FL_DEBUG("rpc", "server conn closing status=%s err=\"%s\" calls=%zu", fl_status_name(why),
           msg ? msg : "", sc->calls.n);
  while (sc->drain_head) drain_unlink(sc->drain_head);
  cancel_all(sc, false, why, NULL);
  if (sc->srv && c->started) sc->srv->stats.conns_open--;
}

static void on_closed(fl__conn_t *c) {
  sconn_t *sc = (sconn_t *)c;
  fl_rpc_server_t *srv = sc->srv;
  if (sc->prev) sc->prev->next = sc->next;
  else srv->conns = sc->next;
  if (sc->next) sc->next->prev = sc->prev;
  sc->srv = NULL;
  srv->units--;
  sconn_unref(sc);
  server_maybe_done(srv);
}

static const fl__conn_ops_t server_conn_ops = {
    .on_ready = on_ready,
    .on_frame = on_frame,
    .on_drain = on_drain,
    .on_close = on_close,
    .on_closed = on_closed,
};

static void on_connection(uv_stream_t *l, int status) {
  fl_rpc_server_t *srv = l->data;
  if (status < 0 || srv->closing) return;
  sconn_t *sc = fl_calloc(1, sizeof(*sc));
  if (fl__conn_init(&sc->c, srv->loop, &server_conn_ops, srv->tls, srv->max_frame, srv->hwm,
                    &srv->stats) != FL_OK) {
    fl_free(sc);
    return;
  }
  sc->srv = srv;
  sc->refs = 1;
  sc->next = srv->conns;
  if (srv->conns) srv->conns->prev = sc;
  srv->conns = sc;
  srv->units++;
  if (uv_accept(l, (uv_stream_t *)&sc->c.tcp) != 0) {
    fl__conn_close(&sc->c, FL_EIO, "accept failed");
    return;
  }
  srv->stats.conns_accepted++;
  srv->stats.conns_open++;
  fl__conn_start(&sc->c);
}

/* ---- server API ---- */

fl_status_t fl_rpc_server_new(uv_loop_t *loop, const fl_rpc_server_opts_t *opts,
                              fl_rpc_server_t **out, char **errmsg) {
  *out = NULL;
  if (errmsg) *errmsg = NULL;
  if (loop == NULL || opts == NULL || opts->max_frame > FL_FRAME_LIMIT) {
    if (errmsg) *errmsg = fl_strdup("bad server options");
    return FL_EINVAL;
  }
  fl_tls_ctx_t *tls = NULL;
  if (opts->tls) {
    fl_status_t rc = fl_tls_ctx_new(opts->tls, true, &tls, errmsg);
    if (rc != FL_OK) return rc;
  }
  fl__ignore_sigpipe();
  fl_rpc_server_t *srv = fl_calloc(1, sizeof(*srv));
  srv->loop = loop;
  srv->tls = tls;
  srv->host = fl_strdup(opts->host ? opts->host : "127.0.0.1");
  srv->port = opts->port;
  srv->max_frame = opts->max_frame ? opts->max_frame : FL_FRAME_DEFAULT_MAX;
  srv->max_calls = opts->max_calls ? opts->max_calls : DEFAULT_MAX_CALLS;
  srv->hwm = opts->write_hwm ? opts->write_hwm : DEFAULT_HWM;
  uv_tcp_init(loop, &srv->listener);
  srv->listener.data = srv;
  srv->units = 1;
  *out = srv;
  return FL_OK;
}

fl_status_t fl_rpc_server_handle(fl_rpc_server_t *srv, const char *method, fl_rpc_kind_t kind,
                                 fl_rpc_handler_fn fn, void *arg) {
  fl_frame_t probe = {.call_id = 1, .flags = FL_FRAME_REQUEST, .method = method};
  if (method == NULL || fn == NULL || fl_frame_validate(&probe, NULL) != FL_OK ||
      (kind != FL_RPC_UNARY && kind != FL_RPC_SERVER_STREAM))
    return FL_EINVAL;
  if (find_handler(srv, method)) return FL_EEXIST;
  srv->handlers = fl_reallocarray(srv->handlers, srv->nhandlers + 1, sizeof(handler_t));
  srv->handlers[srv->nhandlers++] =
      (handler_t){.method = fl_strdup(method), .kind = kind, .fn = fn, .arg = arg};
  return FL_OK;
}

fl_status_t fl_rpc_server_start(fl_rpc_server_t *srv) {
  struct sockaddr_storage ss;
  if (uv_ip4_addr(srv->host, srv->port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(srv->host, srv->port, (struct sockaddr_in6 *)&ss) != 0)
    return FL_EINVAL;
  int r = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
  if (r != 0) {
    FL_ERROR("rpc", "listen failed host=%s port=%u err=\"%s\"", srv->host, srv->port,
             uv_strerror(r));
    return FL_EIO;
  }
  int len = sizeof(ss);
  uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
  srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  srv->listening = true;
  FL_INFO("rpc", "listening host=%s port=%u tls=%s", srv->host, srv->port,
          srv->tls ? "on" : "off");
  return FL_OK;
}

uint16_t fl_rpc_server_port(const fl_rpc_server_t *srv) { return srv->listening ? srv->port : 0; }

void fl_rpc_server_stats(const fl_rpc_server_t *srv, fl_rpc_stats_t *out) { *out = srv->stats; }

static void on_listener_closed(uv_handle_t *h) {
  fl_rpc_server_t *srv = h->data;
  srv->units--;
  server_maybe_done(srv);
}

void fl_rpc_server_close(fl_rpc_server_t *srv, fl_rpc_server_close_cb cb, void *arg) {
  if (srv == NULL || srv->closing) return;
  srv->closing = true;
  srv->close_cb = cb;
  srv->close_arg = arg;
  uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
  for (sconn_t *sc = srv->conns; sc; sc = sc->next) {
    if (sc->c.closing) continue;
    cancel_all(sc, true, FL_ECANCELED, "server shutting down");
    fl__conn_close(&sc->c, FL_ECANCELED, "server shutting down");
  }
}

/* ---- call API ---- */

fl_buf_t fl_rpc_call_request(const fl_rpc_call_t *call) { return call->req->payload; }
const char *fl_rpc_call_method(const fl_rpc_call_t *call) { return call->req->method; }
uint64_t fl_rpc_call_id(const fl_rpc_call_t *call) { return call->id; }

fl_buf_t fl_rpc_call_peer_cert(const fl_rpc_call_t *call) {
  const fl_tls_t *t = call->sc->c.tls;
  return t ? fl_tls_peer_der(t) : FL_BUF(NULL, 0);
}

const char *fl_rpc_call_peer_cn(const fl_rpc_call_t *call) {
  const fl_tls_t *t = call->sc->c.tls;
  return t ? fl_tls_peer_cn(t) : "";
}

bool fl_rpc_call_cancelled(const fl_rpc_call_t *call) {
  return call->cancelled || call->sc->c.closing;
}

void fl_rpc_call_on_cancel(fl_rpc_call_t *call, fl_rpc_call_cb cb, void *arg) {
  call->cancel_cb = cb;
  call->cancel_arg = arg;
}

/* Sends the final frame (if the call is still live) and releases the
 * handler's reference. */
static fl_status_t finish(fl_rpc_call_t *call, const fl_frame_t *f) {
  fl_status_t rc = FL_OK;
  sconn_t *sc = call->sc;
  call->done = true;
  (void)pause_drop(call);
  if (fl_rpc_call_cancelled(call)) {
    rc = FL_ECLOSED;
  } else {
    rc = fl__conn_send(&sc->c, f);
    if (rc == FL_ETOOBIG) send_error(sc, call->id, FL_ETOOBIG, "reply exceeds the frame limit");
    sc->srv->stats.calls_completed++;
    drain_unlink(call);
    if (call->in_table) {
      fl__idmap_del(&sc->calls, call->id);
      call->in_table = false;
      call_unref(call);
    }
  }
  call_unref(call);
  return rc;
}

fl_status_t fl_rpc_call_reply(fl_rpc_call_t *call, fl_status_t status, fl_buf_t payload) {
  if (call->kind != FL_RPC_UNARY) {
    (void)fl_rpc_call_end(call, FL_EINVAL, "reply on a streaming call");
    return FL_EINVAL;
  }
  if (status != FL_OK) return fl_rpc_call_end(call, status, fl_status_str(status));
  fl_frame_t f = {.call_id = call->id, .flags = FL_FRAME_END_STREAM, .payload = payload};
  return finish(call, &f);
}

fl_status_t fl_rpc_call_end(fl_rpc_call_t *call, fl_status_t status, const char *errmsg) {
  fl_frame_t f = {.call_id = call->id, .flags = FL_FRAME_END_STREAM};
  if (status < 0) {
    f.flags |= FL_FRAME_ERROR;
    f.status = status;
    f.error = errmsg ? errmsg : fl_status_str(status);
  }
  return finish(call, &f);
}

bool fl_rpc_call_writable(const fl_rpc_call_t *call) {
  return !fl_rpc_call_cancelled(call) && fl__conn_writable(&call->sc->c);
}

fl_status_t fl_rpc_call_send(fl_rpc_call_t *call, fl_buf_t payload) {
  if (call->kind != FL_RPC_SERVER_STREAM || call->done) return FL_EINVAL;
  if (fl_rpc_call_cancelled(call)) return FL_ECLOSED;
  if (!fl__conn_writable(&call->sc->c)) {
    call->sc->srv->stats.write_stalls++;
    return FL_AGAIN;
  }
  fl_frame_t f = {.call_id = call->id, .payload = payload};
  return fl__conn_send(&call->sc->c, &f);
}

void fl_rpc_call_on_drain(fl_rpc_call_t *call, fl_rpc_call_cb cb, void *arg) {
  call->drain_cb = cb;
  call->drain_arg = arg;
  if (call->waiting_drain || fl_rpc_call_cancelled(call) || call->done) return;
  sconn_t *sc = call->sc;
  call->waiting_drain = true;
  call->refs++;
  call->drain_next = sc->drain_head;
  sc->drain_head = call;
  sc->c.want_drain = true;
  fl__conn_kick(&sc->c);
}

bool fl_rpc_call_pause_reading(fl_rpc_call_t *call, bool pause) {
  if (!pause) return pause_drop(call);
  sconn_t *sc = call->sc;
  if (call->holds_pause || call->done || fl_rpc_call_cancelled(call)) return false;
  call->holds_pause = true;
  if (sc->read_holds++ > 0) return false;
  fl__conn_pause(&sc->c, true);
  return true;
}
