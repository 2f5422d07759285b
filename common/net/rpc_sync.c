/* SPDX-License-Identifier: Apache-2.0
 *
 * rpc_sync.c: a blocking client for CLIs, tests and edge clients. Each
 * fl_rpc_sync_t owns a private uv_loop_t and an async client on it; every
 * function runs that loop on the calling thread until its operation is
 * complete, so the async client's timeouts and error handling apply as is.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/net/rpc.h"

struct fl_rpc_sync_s {
  uv_loop_t loop;
  fl_rpc_client_t *cl;
};

typedef struct wait_s {
  bool done;
  fl_status_t status;
  char *errmsg;
  fl_sbuf_t *reply;
  int (*on_msg)(void *, fl_buf_t);
  void *arg;
  fl_rpc_sync_t *s;
  uint64_t id;
  bool cancelled;
} wait_t;

static void run_until(uv_loop_t *loop, const bool *done) {
  while (!*done) {
    if (uv_run(loop, UV_RUN_ONCE) == 0 && !*done) break; /* nothing left to wait for */
  }
}

static void on_connect(fl_rpc_client_t *c, fl_status_t st, void *arg) {
  (void)c;
  wait_t *w = arg;
  w->done = true;
  w->status = st;
}

static void on_closed(fl_rpc_client_t *c, void *arg) {
  (void)c;
  *(bool *)arg = true;
}

static void shutdown_loop(fl_rpc_sync_t *s) {
  bool closed = false;
  if (s->cl) fl_rpc_client_close(s->cl, on_closed, &closed);
  run_until(&s->loop, &closed);
  uv_run(&s->loop, UV_RUN_DEFAULT); /* remaining close callbacks */
  uv_loop_close(&s->loop);
}

fl_status_t fl_rpc_sync_connect(const fl_rpc_client_opts_t *opts, uint32_t timeout_ms,
                                fl_rpc_sync_t **out, char **errmsg) {
  *out = NULL;
  if (errmsg) *errmsg = NULL;
  if (opts == NULL) return FL_EINVAL;
  fl_rpc_sync_t *s = fl_calloc(1, sizeof(*s));
  if (uv_loop_init(&s->loop) != 0) {
    fl_free(s);
    return FL_EIO;
  }
  wait_t w = {.status = FL_AGAIN};
  fl_rpc_client_opts_t o = *opts;
  o.connect_timeout_ms = timeout_ms;
  o.on_connect = on_connect;
  o.on_disconnect = NULL;
  o.arg = &w;
  fl_status_t rc = fl_rpc_client_new(&s->loop, &o, &s->cl, errmsg);
  if (rc != FL_OK) {
    uv_loop_close(&s->loop);
    fl_free(s);
    return rc;
  }
  run_until(&s->loop, &w.done);
  if (!w.done || w.status != FL_OK) {
    rc = w.done ? w.status : FL_EINTERNAL;
    if (errmsg) *errmsg = fl_sprintf("cannot connect to %s:%u: %s", opts->host, opts->port,
                                     fl_status_str(rc));
    shutdown_loop(s);
    fl_free(s);
    return rc;
  }
  *out = s;
  return FL_OK;
}

static void on_unary(void *arg, fl_status_t st, const char *err, fl_buf_t reply) {
  wait_t *w = arg;
  w->done = true;
  w->status = st;
  if (st == FL_OK) fl_sbuf_append(w->reply, reply.data, reply.len);
  else if (err) w->errmsg = fl_strdup(err);
}

static fl_status_t finish(wait_t *w, char **errmsg) {
  if (!w->done) w->status = FL_EINTERNAL; /* the loop ran dry: cannot happen */
  if (errmsg) *errmsg = w->errmsg;
  else fl_free(w->errmsg);
  return w->status;
}

fl_status_t fl_rpc_sync_unary(fl_rpc_sync_t *s, const char *method, fl_buf_t payload,
                              uint32_t timeout_ms, fl_sbuf_t *reply, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  wait_t w = {.reply = reply};
  /* The loop sleeps between calls and its cached clock does not move: bring
   * it to now, or the call's timer starts from the end of the previous
   * call and fires early after an idle spell. */
  uv_update_time(&s->loop);
  fl_status_t rc = fl_rpc_client_unary(s->cl, method, payload, timeout_ms, on_unary, &w, NULL);
  if (rc != FL_OK) return rc;
  run_until(&s->loop, &w.done);
  return finish(&w, errmsg);
}

static void on_msg(void *arg, fl_buf_t msg) {
  wait_t *w = arg;
  if (w->cancelled) return;
  if (w->on_msg(w->arg, msg) != 0) {
    w->cancelled = true;
    (void)fl_rpc_client_cancel(w->s->cl, w->id);
  }
}

static void on_end(void *arg, fl_status_t st, const char *err) {
  wait_t *w = arg;
  w->done = true;
  w->status = st;
  if (st != FL_OK && err) w->errmsg = fl_strdup(err);
}

fl_status_t fl_rpc_sync_stream(fl_rpc_sync_t *s, const char *method, fl_buf_t payload,
                               uint32_t timeout_ms, int (*cb)(void *arg, fl_buf_t msg),
                               void *arg, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (cb == NULL) return FL_EINVAL;
  wait_t w = {.on_msg = cb, .arg = arg, .s = s};
  uv_update_time(&s->loop); /* as in fl_rpc_sync_unary */
  fl_status_t rc =
      fl_rpc_client_stream(s->cl, method, payload, timeout_ms, on_msg, on_end, &w, &w.id);
  if (rc != FL_OK) return rc;
  run_until(&s->loop, &w.done);
  return finish(&w, errmsg);
}

void fl_rpc_sync_close(fl_rpc_sync_t *s) {
  if (s == NULL) return;
  shutdown_loop(s);
  fl_free(s);
}
