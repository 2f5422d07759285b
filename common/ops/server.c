/* SPDX-License-Identifier: Apache-2.0
 *
 * server.c: the operations HTTP server on libuv.
 *
 * Each connection is a small state machine driven by libuv callbacks:
 *
 *   READ    bytes go into a fixed buffer of max_header_bytes; after every
 *           read the head is parsed (http.c). Complete: route and answer.
 *           Bad: answer 400/414/431/505. Timer: close if nothing came,
 *           else answer 408.
 *   WRITE   the whole answer is one uv_write; then uv_shutdown sends FIN.
 *   LINGER  read and discard what the client still sends (up to a bound)
 *           until it closes or a short timer fires, then close. Closing
 *           with unread bytes would make the kernel send RST, and the
 *           client could lose the answer (nginx's lingering close).
 *   CLOSING both handles (tcp, timer) are being closed; the connection is
 *           freed when the second close callback runs.
 *
 * One request per connection: every answer says "Connection: close".
 * Handles are owned by the server; its memory goes only after the listener
 * and every connection have been closed by libuv (ops.h invariant 3).
 */
#include "common/ops/ops.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/ops/ops_int.h"

#define MOD "ops"
#define LINGER_MS 1000
#define LINGER_MAX_BYTES (64 * 1024)
#define MAX_HEADER_FIELDS 64

typedef enum cstate_e { ST_READ, ST_WRITE, ST_LINGER, ST_CLOSING } cstate_t;

typedef struct conn_s {
  fl_ops_server_t *srv;
  struct conn_s *prev, *next;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  int open_handles;
  cstate_t st;
  char *buf;      /* max_head bytes: the request head, later a drain buffer */
  size_t len;
  size_t drained;
  fl_sbuf_t out;  /* the answer; not touched while the write is pending */
} conn_t;

typedef struct check_s {
  char *component;
  fl_ops_check_fn fn;
  void *arg;
} check_t;

struct fl_ops_server_s {
  uv_loop_t *loop;
  uv_tcp_t listener;
  bool listener_open;
  bool closing;
  fl_metrics_t *metrics;
  char *version, *commit;
  int port;
  uint64_t idle_ms;
  fl__http_limits_t lim;
  unsigned max_conns;
  check_t *checks;
  size_t n_checks;
  conn_t *conns;
  size_t n_conns;
  fl_ops_closed_fn on_closed;
  void *on_closed_arg;
};

/* ---- teardown ---------------------------------------------------------- */

static void server_maybe_free(fl_ops_server_t *s) {
  if (!s->closing || s->listener_open || s->n_conns > 0) return;
  fl_ops_closed_fn cb = s->on_closed;
  void *arg = s->on_closed_arg;
  for (size_t i = 0; i < s->n_checks; i++) fl_free(s->checks[i].component);
  fl_free(s->checks);
  fl_free(s->version);
  fl_free(s->commit);
  fl_free(s);
  if (cb) cb(arg);
}

static void conn_handle_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->open_handles > 0) return;
  fl_ops_server_t *s = c->srv;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->n_conns--;
  fl_sbuf_free(&c->out);
  fl_free(c->buf);
  fl_free(c);
  server_maybe_free(s);
}

static void conn_close(conn_t *c) {
  if (c->st == ST_CLOSING) return;
  c->st = ST_CLOSING;
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

/* ---- answers ----------------------------------------------------------- */

static const char *reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

/* IMF-fixdate (RFC 9110 5.6.7), written without the locale. */
static void http_date(char out[40]) {
  static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm) == NULL) {
    strcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    return;
  }
  snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7], tm.tm_mday,
           mo[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void on_shutdown(uv_shutdown_t *req, int status);
static void on_write(uv_write_t *req, int status);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void on_timer(uv_timer_t *t);

static void restart_timer(conn_t *c, uint64_t ms) {
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* Sends status + body (body_len bytes; omitted when head_only) and moves
 * the connection to WRITE. */
static void respond(conn_t *c, int status, const char *ctype, const void *body,
                    size_t body_len, bool head_only, bool allow) {
  char date[40];
  http_date(date);
  uv_read_stop((uv_stream_t *)&c->tcp);
  fl_sbuf_printf(&c->out,
                 "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                 "Content-Length: %zu\r\nCache-Control: no-store\r\n%s"
                 "Connection: close\r\n\r\n",
                 status, reason_phrase(status), date, ctype, body_len,
                 allow ? "Allow: GET, HEAD\r\n" : "");
  if (!head_only) fl_sbuf_append(&c->out, body, body_len);
  c->st = ST_WRITE;
  restart_timer(c, c->srv->idle_ms);
  uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
  int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc < 0) {
    FL_DEBUG(MOD, "write failed err=%s", uv_strerror(rc));
    conn_close(c);
  }
}

static void respond_error(conn_t *c, int status, const char *why, bool head_only) {
  fl_sbuf_t body = {0};
  fl_sbuf_printf(&body, "%d %s%s%s\n", status, reason_phrase(status), why ? ": " : "",
                 why ? why : "");
  respond(c, status, "text/plain; charset=utf-8", body.data, body.len, head_only,
          status == 405);
  fl_sbuf_free(&body);
}

static void on_write(uv_write_t *req, int status) {
  conn_t *c = req->data;
  if (c->st == ST_CLOSING) return;
  if (status < 0) {
    FL_DEBUG(MOD, "write failed err=%s", uv_strerror(status));
    conn_close(c);
    return;
  }
  int rc = uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown);
  if (rc < 0) conn_close(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  if (c->st == ST_CLOSING) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  c->st = ST_LINGER;
  c->drained = 0;
  restart_timer(c, c->srv->idle_ms < LINGER_MS ? c->srv->idle_ms : LINGER_MS);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) conn_close(c);
}

/* ---- routing ----------------------------------------------------------- */

static bool path_is(const fl__http_req_t *r, const char *p) {
  return r->path_len == strlen(p) && memcmp(r->path, p, r->path_len) == 0;
}

static void route(conn_t *c, const fl__http_req_t *r) {
  fl_ops_server_t *s = c->srv;
  bool head = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
  bool get = r->method_len == 3 && memcmp(r->method, "GET", 3) == 0;
  int which = path_is(r, "/healthz") ? 1 : path_is(r, "/metrics") ? 2
            : path_is(r, "/version") ? 3 : 0;
  FL_DEBUG(MOD, "request method=%.*s path=%.*s", (int)r->method_len, r->method,
           (int)r->path_len, r->path);
  if (which == 0) {
    respond_error(c, 404, NULL, head);
    return;
  }
  if (!get && !head) {
    respond_error(c, 405, NULL, false);
    return;
  }
  fl_sbuf_t body = {0};
  int status = 200;
  const char *ctype = "application/json";
  if (which == 1) {
    status = fl_ops_health(s, &body);
  } else if (which == 2) {
    if (s->metrics) fl_metrics_render(s->metrics, &body);
    ctype = "text/plain; version=0.0.4; charset=utf-8";
  } else {
    fl_sbuf_append_str(&body, "{\"version\":");
    fl__json_str(&body, s->version, strlen(s->version));
    fl_sbuf_append_str(&body, ",\"commit\":");
    fl__json_str(&body, s->commit, strlen(s->commit));
    fl_sbuf_append_str(&body, "}");
  }
  respond(c, status, ctype, body.data, body.len, head, false);
  fl_sbuf_free(&body);
}

/* ---- reading ----------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  conn_t *c = h->data;
  size_t cap = c->srv->lim.max_head;
  if (c->st == ST_READ && c->len < cap) *buf = uv_buf_init(c->buf + c->len, (unsigned)(cap - c->len));
  else if (c->st == ST_LINGER) *buf = uv_buf_init(c->buf, (unsigned)cap);
  else *buf = uv_buf_init(NULL, 0); /* on_read gets UV_ENOBUFS */
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  conn_t *c = st->data;
  if (c->st == ST_CLOSING || nread == 0) return;
  if (nread < 0) {
    if (nread != UV_EOF) FL_DEBUG(MOD, "read failed err=%s", uv_strerror((int)nread));
    conn_close(c);
    return;
  }
  if (c->st == ST_LINGER) {
    c->drained += (size_t)nread;
    if (c->drained > LINGER_MAX_BYTES) conn_close(c);
    return;
  }
  if (c->st != ST_READ) return;
  c->len += (size_t)nread;
  fl__http_req_t req;
  int rc = fl__http_parse(c->buf, c->len, &c->srv->lim, &req);
  if (rc == 0) {
    if (c->len >= c->srv->lim.max_head) respond_error(c, 431, "request head too large", false);
    return;
  }
  if (rc < 0) {
    FL_DEBUG(MOD, "bad request status=%d reason=\"%s\"", req.status, req.error);
    respond_error(c, req.status, req.error, false);
    return;
  }
  route(c, &req);
}

static void on_timer(uv_timer_t *t) {
  conn_t *c = t->data;
  if (c->st == ST_READ && c->len > 0) {
    respond_error(c, 408, "request head not received in time", false);
    return;
  }
  conn_close(c);
}

/* ---- accepting --------------------------------------------------------- */

static void on_connection(uv_stream_t *ls, int status) {
  fl_ops_server_t *s = ls->data;
  if (status < 0) {
    FL_WARN(MOD, "accept failed err=%s", uv_strerror(status));
    return;
  }
  if (s->closing) return;
  conn_t *c = fl_calloc(1, sizeof *c);
  c->srv = s;
  c->st = ST_READ;
  c->buf = fl_malloc(s->lim.max_head);
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c->wreq.data = c->sreq.data = c;
  c->open_handles = 2;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->n_conns++;
  int rc = uv_accept(ls, (uv_stream_t *)&c->tcp);
  if (rc < 0) {
    FL_WARN(MOD, "accept failed err=%s", uv_strerror(rc));
    conn_close(c);
    return;
  }
  if (s->n_conns > s->max_conns) {
    FL_WARN(MOD, "too many connections, closing new one max=%u", s->max_conns);
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, on_timer, s->idle_ms, 0);
  rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc < 0) conn_close(c);
}

/* ---- public ------------------------------------------------------------ */

static void listener_closed(uv_handle_t *h) {
  fl_ops_server_t *s = h->data;
  s->listener_open = false;
  server_maybe_free(s);
}

fl_status_t fl_ops_server_start(uv_loop_t *loop, const fl_ops_config_t *cfg,
                                fl_metrics_t *metrics, fl_ops_server_t **out) {
  if (out) *out = NULL;
  if (loop == NULL || cfg == NULL || out == NULL || cfg->port < 0 || cfg->port > 65535)
    return FL_EINVAL;
  const char *host = cfg->host ? cfg->host : "127.0.0.1";
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (uv_ip4_addr(host, cfg->port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, cfg->port, (struct sockaddr_in6 *)&ss) != 0) {
    FL_ERROR(MOD, "bad listen address host=%s", host);
    return FL_EINVAL;
  }
  fl_ops_server_t *s = fl_calloc(1, sizeof *s);
  s->loop = loop;
  s->metrics = metrics;
  s->version = fl_strdup(cfg->version ? cfg->version : "");
  s->commit = fl_strdup(cfg->commit ? cfg->commit : "");
  s->idle_ms = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : 5000;
  s->lim.max_head = cfg->max_header_bytes ? cfg->max_header_bytes : 8192;
  s->lim.max_request_line = cfg->max_request_line ? cfg->max_request_line : 2048;
  s->lim.max_headers = MAX_HEADER_FIELDS;
  s->max_conns = cfg->max_connections ? cfg->max_connections : 64;
  if (s->lim.max_head > (1u << 20)) s->lim.max_head = 1u << 20;
  if (s->lim.max_request_line >= s->lim.max_head) s->lim.max_request_line = s->lim.max_head - 1;

  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  s->listener_open = true;
  int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
  if (rc == 0) {
    struct sockaddr_storage bound;
    int blen = (int)sizeof bound;
    rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    if (rc == 0) {
      s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
  }
  if (rc < 0) {
    FL_ERROR(MOD, "cannot listen host=%s port=%d err=%s", host, cfg->port, uv_strerror(rc));
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, listener_closed);
    return FL_EIO;
  }
  FL_INFO(MOD, "operations endpoint listening host=%s port=%d", host, s->port);
  *out = s;
  return FL_OK;
}

int fl_ops_server_port(const fl_ops_server_t *s) { return s ? s->port : -1; }

size_t fl_ops_server_connections(const fl_ops_server_t *s) { return s ? s->n_conns : 0; }

fl_status_t fl_ops_register_check(fl_ops_server_t *s, const char *component,
                                  fl_ops_check_fn fn, void *arg) {
  if (s == NULL || component == NULL || component[0] == '\0' || fn == NULL) return FL_EINVAL;
  if (!fl__utf8_valid(component, strlen(component))) return FL_EINVAL;
  for (size_t i = 0; i < s->n_checks; i++)
    if (strcmp(s->checks[i].component, component) == 0) return FL_EEXIST;
  s->checks = fl_reallocarray(s->checks, s->n_checks + 1, sizeof *s->checks);
  s->checks[s->n_checks++] = (check_t){.component = fl_strdup(component), .fn = fn, .arg = arg};
  return FL_OK;
}

fl_status_t fl_ops_unregister_check(fl_ops_server_t *s, const char *component) {
  if (s == NULL || component == NULL) return FL_NOTFOUND;
  for (size_t i = 0; i < s->n_checks; i++) {
    if (strcmp(s->checks[i].component, component) != 0) continue;
    fl_free(s->checks[i].component);
    memmove(&s->checks[i], &s->checks[i + 1], (s->n_checks - i - 1) * sizeof *s->checks);
    s->n_checks--;
    return FL_OK;
  }
  return FL_NOTFOUND;
}

int fl_ops_health(fl_ops_server_t *s, fl_sbuf_t *body) {
  fl_sbuf_t failed = {0}, reason = {0};
  size_t nfailed = 0;
  for (size_t i = 0; s && i < s->n_checks; i++) {
    reason.len = 0;
    fl_status_t rc = s->checks[i].fn(s->checks[i].arg, &reason);
    if (rc == FL_OK) continue;
    if (reason.len == 0) fl_sbuf_append_str(&reason, fl_status_str(rc));
    FL_WARN(MOD, "health check failed component=%s rc=%s", s->checks[i].component,
            fl_status_name(rc));
    fl_sbuf_append_str(&failed, nfailed++ ? ",{\"component\":" : "{\"component\":");
    fl__json_str(&failed, s->checks[i].component, strlen(s->checks[i].component));
    fl_sbuf_append_str(&failed, ",\"reason\":");
    fl__json_str(&failed, (const char *)reason.data, reason.len);
    fl_sbuf_append_str(&failed, "}");
  }
  int status = 200;
  if (nfailed == 0) {
    fl_sbuf_append_str(body, "{\"status\":\"OK\"}");
  } else {
    status = 503;
    fl_sbuf_append_str(body, "{\"status\":\"Service Unavailable\",\"failed_checks\":[");
    fl_sbuf_append(body, failed.data, failed.len);
    fl_sbuf_append_str(body, "]}");
  }
  fl_sbuf_free(&failed);
  fl_sbuf_free(&reason);
  return status;
}

void fl_ops_server_close(fl_ops_server_t *s, fl_ops_closed_fn on_closed, void *arg) {
  if (s == NULL || s->closing) return;
  s->closing = true;
  s->on_closed = on_closed;
  s->on_closed_arg = arg;
  for (conn_t *c = s->conns; c; c = c->next) conn_close(c);
  uv_close((uv_handle_t *)&s->listener, listener_closed);
}
