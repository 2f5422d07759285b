/* SPDX-License-Identifier: Apache-2.0
 *
 * ops.h: the operations service of a node (Fabric's operations listener):
 * a small HTTP/1.1 server on the node's libuv loop, on its own plain-TCP
 * port, serving
 *
 *   GET /healthz  200 {"status":"OK"}, or 503 {"status":"Service Unavailable",
 *                 "failed_checks":[{"component":"...","reason":"..."}]}
 *   GET /metrics  the registry in Prometheus text format 0.0.4
 *   GET /version  {"version":"...","commit":"..."}
 *
 * HEAD is answered like GET without a body; another method on these paths
 * gets 405, another path 404, a malformed request 400 (or 414/431/505), and
 * every answer closes the connection (one request per connection).
 *
 * There is no TLS and no authentication: the listener binds 127.0.0.1 by
 * default, and binding it anywhere else exposes health and metrics to
 * whoever can reach the port (docs/operations-endpoint.md).
 *
 * Threads: everything here runs on the loop's thread, health checks
 * included (they must be quick and must not block). Metrics may be updated
 * from any thread (metrics.h).
 *
 * Invariants:
 *   1. at most max_connections connections are open; more are accepted and
 *      closed at once;
 *   2. a connection lives at most idle_timeout_ms waiting for its request
 *      head, the same again for writing its answer, and a short linger after;
 *   3. the server's memory is freed only after every handle it opened has
 *      been closed by libuv, and then the close callback runs.
 */
#ifndef FL_OPS_OPS_H
#define FL_OPS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/ops/metrics.h"

typedef struct fl_ops_config_s {
  const char *host;          /* listen address; NULL = "127.0.0.1" */
  int port;                  /* 0 = any free port (see fl_ops_server_port) */
  const char *version;       /* for /version; NULL = "" */
  const char *commit;        /* for /version; NULL = "" */
  uint64_t idle_timeout_ms;  /* time to receive a request head; 0 = 5000 */
  size_t max_header_bytes;   /* request line + headers; 0 = 8192 */
  size_t max_request_line;   /* 0 = 2048 */
  unsigned max_connections;  /* 0 = 64 */
} fl_ops_config_t;

typedef struct fl_ops_server_s fl_ops_server_t;

/** A health check. Runs on the loop thread each time /healthz is asked;
 *  must be quick. Returns FL_OK when healthy; otherwise a negative status,
 *  and may append a human-readable reason to `reason` (if it appends
 *  nothing, fl_status_str(rc) is used). arg is the pointer given at
 *  registration. */
typedef fl_status_t (*fl_ops_check_fn)(void *arg, fl_sbuf_t *reason);

/** Called once the server has closed and freed everything; arg as given. */
typedef void (*fl_ops_closed_fn)(void *arg);

/** Starts the server on loop: binds, listens, and from then on serves.
 *  cfg is copied. metrics is borrowed and must outlive the server (NULL:
 *  /metrics answers an empty exposition). Call on the loop thread (or before
 *  the loop runs). Returns FL_OK and *out (owned: fl_ops_server_close),
 *  FL_EINVAL for a bad argument or address, FL_EIO when bind or listen
 *  fails (port in use, ...); on failure *out is NULL and nothing stays
 *  open (the loop may need to run once to finish closing). */
fl_status_t fl_ops_server_start(uv_loop_t *loop, const fl_ops_config_t *cfg,
                                fl_metrics_t *metrics, fl_ops_server_t **out /* out */);

/** The port the server listens on (the chosen one when cfg->port was 0). */
int fl_ops_server_port(const fl_ops_server_t *s);

/** Registers a health check named component (copied; unique per server;
 *  [printable UTF-8]). Loop thread. Returns FL_OK, FL_EINVAL (NULL or
 *  empty name, no fn), or FL_EEXIST (name taken). */
fl_status_t fl_ops_register_check(fl_ops_server_t *s, const char *component,
                                  fl_ops_check_fn fn, void *arg);

/** Removes the check named component. Loop thread. Returns FL_OK or
 *  FL_NOTFOUND. */
fl_status_t fl_ops_unregister_check(fl_ops_server_t *s, const char *component);

/** Runs every check now, in registration order, and writes the /healthz
 *  body into body (appended). Returns 200 when all pass, else 503. Loop
 *  thread. */
int fl_ops_health(fl_ops_server_t *s, fl_sbuf_t *body);

/** Number of open client connections (loop thread; for tests). */
size_t fl_ops_server_connections(const fl_ops_server_t *s);

/** Stops listening, closes every connection (answers in flight are cut),
 *  and frees the server once libuv has closed all its handles; then calls
 *  on_closed(arg) if given. Loop thread. NULL-safe (on_closed is then not
 *  called). The server must not be used after this call. */
void fl_ops_server_close(fl_ops_server_t *s, fl_ops_closed_fn on_closed, void *arg);

#endif /* FL_OPS_OPS_H */
