/* SPDX-License-Identifier: Apache-2.0
 *
 * rpc.h: gRPC-like calls over TCP + mutual TLS on a libuv loop.
 *
 * A connection carries many concurrent calls, multiplexed by a call id the
 * client picks. Calls are unary (one request, one reply) or server-streaming
 * (one request, many messages, then an end). Frames are described in
 * frame.h; TLS in tls.h.
 *
 * Threads: every function here must be called on the thread running the
 * loop the object belongs to; every callback runs on that thread. Work
 * belongs on worker threads (loop.h: fl_worker_submit, fl_loop_post): hand
 * the fl_rpc_call_t pointer to the worker and complete the call from the
 * completion that runs back on the loop.
 *
 * Throughput: frames queued during one loop iteration leave in one
 * uv_write (one TLS write), and while a write is in flight further frames
 * accumulate for the next one; a connection never has more than one
 * uv_write outstanding. Decoded requests cost one allocation each.
 *
 * Signals: creating a server or client sets SIGPIPE to SIG_IGN when it still
 * has its default action, so a vanished peer yields EPIPE instead of killing
 * the process.
 *
 * Backpressure (server): a connection's queued bytes are the bytes encoded
 * but not yet accepted by the kernel. Above the high watermark (hwm) the
 * server stops reading from the connection and stream sends return
 * FL_AGAIN; once the queue falls to hwm/2 reading resumes and calls waiting
 * with fl_rpc_call_on_drain are called back. A send is accepted while the
 * queue is below hwm, so the queue never exceeds hwm by more than one
 * message (plus unary replies of calls already started, bounded by
 * max_calls).
 */
#ifndef FL_NET_RPC_H
#define FL_NET_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/net/tls.h"

typedef struct fl_rpc_server_s fl_rpc_server_t;
typedef struct fl_rpc_call_s fl_rpc_call_t;
typedef struct fl_rpc_client_s fl_rpc_client_t;

/** Counters of a server or a client (all connections together). */
typedef struct fl_rpc_stats_s {
  uint64_t conns_accepted;     /* server: connections accepted */
  uint64_t conns_open;         /* connections currently open */
  uint64_t handshake_failures; /* TLS handshakes that failed */
  uint64_t protocol_errors;    /* connections closed for bad frames */
  uint64_t calls_started;
  uint64_t calls_completed;    /* completed by the handler / answered */
  uint64_t calls_cancelled;    /* cancelled by the peer, a close or a timeout */
  uint64_t calls_rejected;     /* server: unknown method, too many calls */
  uint64_t frames_in, frames_out;
  uint64_t bytes_in, bytes_out; /* socket bytes, TLS records included */
  uint64_t writes;             /* uv_write calls; frames_out/writes = batching */
  uint64_t write_stalls;       /* stream sends refused with FL_AGAIN */
  uint64_t read_pauses;        /* times reading stopped for backpressure */
  uint64_t queued_bytes_max;   /* highest queued bytes seen on a connection */
} fl_rpc_stats_t;

/* ---- server ---------------------------------------------------------------- */

typedef struct fl_rpc_server_opts_s {
  const char *host;            /* listen address (IPv4/IPv6 literal); NULL = 127.0.0.1 */
  uint16_t port;               /* 0 = ephemeral, see fl_rpc_server_port */
  const fl_tls_config_t *tls;  /* NULL = plaintext, for tests and benchmarks only */
  size_t max_frame;            /* max serialized frame; 0 = FL_FRAME_DEFAULT_MAX */
  uint32_t max_calls;          /* concurrent calls per connection; 0 = 1024 */
  size_t write_hwm;            /* per-connection high watermark; 0 = 4 MiB */
} fl_rpc_server_opts_t;

typedef enum fl_rpc_kind_e {
  FL_RPC_UNARY = 0,
  FL_RPC_SERVER_STREAM = 1,
} fl_rpc_kind_t;

/** A method handler. It receives a call holding one reference that belongs
 *  to the handler until it completes the call, exactly once, with
 *  fl_rpc_call_reply or fl_rpc_call_end (also after a cancellation; those
 *  then return FL_ECLOSED). It may complete synchronously or later. */
typedef void (*fl_rpc_handler_fn)(fl_rpc_call_t *call, void *arg);

/** Called once when a server has finished closing; the server's memory is
 *  freed right after it returns (fl_rpc_server_stats may be read in it). */
typedef void (*fl_rpc_server_close_cb)(fl_rpc_server_t *srv, void *arg);

/** Creates a server on loop (not yet listening). Borrows opts (TLS files
 *  are read now). Returns FL_OK and *out (owned: release with
 *  fl_rpc_server_close); FL_ECONFIG / FL_EINVAL with *errmsg (owned, may be
 *  NULL) when the TLS configuration or an option is bad. */
fl_status_t fl_rpc_server_new(uv_loop_t *loop, const fl_rpc_server_opts_t *opts,
                              fl_rpc_server_t **out /* out */, char **errmsg /* out */);

/** Registers handler for method ("Service/Method", copied). Returns FL_OK,
 *  FL_EEXIST when the method is registered, FL_EINVAL for a bad name. */
fl_status_t fl_rpc_server_handle(fl_rpc_server_t *srv, const char *method, fl_rpc_kind_t kind,
                                 fl_rpc_handler_fn handler, void *arg);

/** Binds and listens. Returns FL_OK, FL_EINVAL for a bad host, FL_EIO when
 *  the bind or listen fails (address in use...). */
fl_status_t fl_rpc_server_start(fl_rpc_server_t *srv);

/** The bound port (useful with port 0), 0 before start. */
uint16_t fl_rpc_server_port(const fl_rpc_server_t *srv);

/** Copies the counters. */
void fl_rpc_server_stats(const fl_rpc_server_t *srv, fl_rpc_stats_t *out /* out */);

/** Stops accepting, cancels every call (cancel callbacks fire, the clients
 *  get an FL_ECANCELED error frame, best effort), closes every connection,
 *  and calls cb (may be NULL) when every libuv handle is closed. Calls still
 *  held by handlers stay valid until the handlers complete them. */
void fl_rpc_server_close(fl_rpc_server_t *srv, fl_rpc_server_close_cb cb, void *arg);

/* ---- server-side calls ----------------------------------------------------- */

/** The request payload. View valid until the call is completed. */
fl_buf_t fl_rpc_call_request(const fl_rpc_call_t *call);
/** The method name. Valid until the call is completed. */
const char *fl_rpc_call_method(const fl_rpc_call_t *call);
/** The client's call id. */
uint64_t fl_rpc_call_id(const fl_rpc_call_t *call);
/** The client's TLS certificate in DER ({NULL,0} without TLS). View valid
 *  until the call is completed. */
fl_buf_t fl_rpc_call_peer_cert(const fl_rpc_call_t *call);
/** The subject CN of the client's certificate ("" without TLS). */
const char *fl_rpc_call_peer_cn(const fl_rpc_call_t *call);
/** True once the client cancelled, disconnected or the server closed. */
bool fl_rpc_call_cancelled(const fl_rpc_call_t *call);

typedef void (*fl_rpc_call_cb)(fl_rpc_call_t *call, void *arg);

/** Sets the callback fired (at most once) when the call is cancelled. It
 *  runs on the loop; the handler still owes the completion. */
void fl_rpc_call_on_cancel(fl_rpc_call_t *call, fl_rpc_call_cb cb, void *arg);

/** Completes a unary call: status FL_OK sends payload as the reply; a
 *  negative status sends an error frame (payload ignored). Releases the
 *  handler's reference: call must not be used afterwards. Returns FL_OK,
 *  FL_ECLOSED when the call was cancelled (nothing sent), FL_EINVAL for a
 *  streaming call (the reference is still released), FL_ETOOBIG when the
 *  payload exceeds the frame limit (an FL_ETOOBIG error is sent instead). */
fl_status_t fl_rpc_call_reply(fl_rpc_call_t *call, fl_status_t status, fl_buf_t payload);

/** Sends one message of a streaming call (payload copied). Returns FL_OK;
 *  FL_AGAIN when the connection is above its high watermark (nothing sent:
 *  wait for fl_rpc_call_on_drain); FL_ECLOSED once cancelled; FL_EINVAL on a
 *  unary call; FL_ETOOBIG when the payload exceeds the frame limit. */
fl_status_t fl_rpc_call_send(fl_rpc_call_t *call, fl_buf_t payload);

/** True when fl_rpc_call_send would not return FL_AGAIN. */
bool fl_rpc_call_writable(const fl_rpc_call_t *call);

/** Asks for cb(call, arg) once the connection's queue has drained to half
 *  the watermark (one-shot; a later call replaces cb). Not called if the
 *  call is cancelled first. */
void fl_rpc_call_on_drain(fl_rpc_call_t *call, fl_rpc_call_cb cb, void *arg);

/** Flow control for a handler that cannot take more requests yet (e.g. a
 *  unary call parked in a wait queue): pause true makes call hold its
 *  connection's reading stopped, so the client's further requests wait in
 *  the socket buffers (TCP pushes back) instead of reaching the handler;
 *  reading resumes once every call of the connection that holds it has
 *  released it (pause false), completed or been cancelled. Frames already
 *  read still reach their handlers. A call holds at most once (repeats are
 *  no-ops); a completed or cancelled call cannot hold. Returns true when
 *  this call stopped reading (the first hold) or resumed it (the last
 *  release; also false when the connection is closing). */
bool fl_rpc_call_pause_reading(fl_rpc_call_t *call, bool pause);

/** Completes any call: ends a stream (status FL_OK) or fails the call with
 *  status < 0 and errmsg (may be NULL). On a unary call FL_OK means an empty
 *  reply. Releases the handler's reference. Returns FL_OK or FL_ECLOSED. */
fl_status_t fl_rpc_call_end(fl_rpc_call_t *call, fl_status_t status, const char *errmsg);

/* ---- client ---------------------------------------------------------------- */

typedef struct fl_rpc_client_opts_s {
  const char *host;            /* IPv4/IPv6 literal or a name to resolve */
  uint16_t port;
  const fl_tls_config_t *tls;  /* NULL = plaintext, for tests and benchmarks only */
  size_t max_frame;            /* 0 = FL_FRAME_DEFAULT_MAX */
  size_t write_hwm;            /* 0 = unlimited; else calls get FL_AGAIN above it */
  uint32_t connect_timeout_ms; /* TCP + TLS handshake; 0 = 10 s */
  /** Called once: FL_OK when the connection is ready, or the failure
   *  (FL_ECONNREFUSED, FL_EUNTRUSTED, FL_ETIMEDOUT, FL_ECLOSED...). */
  void (*on_connect)(fl_rpc_client_t *c, fl_status_t status, void *arg);
  /** Called once when a ready connection is lost (not after close). */
  void (*on_disconnect)(fl_rpc_client_t *c, fl_status_t status, void *arg);
  void *arg;
} fl_rpc_client_opts_t;

/** Unary completion: status FL_OK with the reply (view valid during the
 *  callback only), or an error with errmsg (may be NULL). Called exactly once. */
typedef void (*fl_rpc_unary_cb)(void *arg, fl_status_t status, const char *errmsg,
                                fl_buf_t reply);
/** One stream message (view valid during the callback only). */
typedef void (*fl_rpc_msg_cb)(void *arg, fl_buf_t msg);
/** Stream end: FL_OK, or the error. Called exactly once. */
typedef void (*fl_rpc_end_cb)(void *arg, fl_status_t status, const char *errmsg);
typedef void (*fl_rpc_client_close_cb)(fl_rpc_client_t *c, void *arg);

/** Creates a client and starts connecting. Borrows opts. Returns FL_OK and
 *  *out (owned: fl_rpc_client_close); FL_ECONFIG/FL_EINVAL with *errmsg. The
 *  client never reconnects: after a failure, make a new one. Calls made
 *  before the connection is ready are queued. */
fl_status_t fl_rpc_client_new(uv_loop_t *loop, const fl_rpc_client_opts_t *opts,
                              fl_rpc_client_t **out /* out */, char **errmsg /* out */);

/** Starts a unary call (method and payload copied). timeout_ms 0 = none;
 *  on expiry the call completes with FL_ETIMEDOUT and a late answer is
 *  dropped. Returns FL_OK (cb will run exactly once) and the call id in
 *  *call_id (may be NULL); or, without calling cb: FL_ECLOSED /
 *  FL_ECONNREFUSED / ... when the connection failed or the client is
 *  closing, FL_AGAIN above write_hwm, FL_ETOOBIG, FL_EINVAL. */
fl_status_t fl_rpc_client_unary(fl_rpc_client_t *c, const char *method, fl_buf_t payload,
                                uint32_t timeout_ms, fl_rpc_unary_cb cb, void *arg,
                                uint64_t *call_id /* out */);

/** Starts a server-streaming call: on_msg per message in order, then on_end
 *  exactly once. timeout_ms bounds the whole stream (0 = none). Returns like
 *  fl_rpc_client_unary. */
fl_status_t fl_rpc_client_stream(fl_rpc_client_t *c, const char *method, fl_buf_t payload,
                                 uint32_t timeout_ms, fl_rpc_msg_cb on_msg, fl_rpc_end_cb on_end,
                                 void *arg, uint64_t *call_id /* out */);

/** Cancels a call: tells the server and completes it now with FL_ECANCELED
 *  (the callback runs before this returns). FL_OK or FL_NOTFOUND when the
 *  call already completed. */
fl_status_t fl_rpc_client_cancel(fl_rpc_client_t *c, uint64_t call_id);

/** Stops (true) or resumes (false) reading from the server: a consumer that
 *  cannot keep up pushes back on the server instead of buffering. */
void fl_rpc_client_pause(fl_rpc_client_t *c, bool paused);

/** FL_OK when ready, FL_AGAIN while connecting, else the failure. */
fl_status_t fl_rpc_client_state(const fl_rpc_client_t *c);

/** Calls in flight. */
size_t fl_rpc_client_inflight(const fl_rpc_client_t *c);

/** The server's certificate DER and CN once ready ({NULL,0} / "" before or
 *  without TLS). Views valid until close. */
fl_buf_t fl_rpc_client_peer_cert(const fl_rpc_client_t *c);
const char *fl_rpc_client_peer_cn(const fl_rpc_client_t *c);

/** Copies the counters. */
void fl_rpc_client_stats(const fl_rpc_client_t *c, fl_rpc_stats_t *out /* out */);

/** Completes every call with FL_ECANCELED, closes the connection and calls
 *  cb (may be NULL) once every handle is closed; the memory is freed after
 *  cb returns. */
void fl_rpc_client_close(fl_rpc_client_t *c, fl_rpc_client_close_cb cb, void *arg);

/* ---- blocking client ----------------------------------------------------- */

/* For CLIs, tests and edge clients: each fl_rpc_sync_t runs a private loop
 * on the calling thread inside each function. One thread at a time. */
typedef struct fl_rpc_sync_s fl_rpc_sync_t;

/** Connects (TCP + TLS) within timeout_ms (0 = 10 s). Returns FL_OK and *out
 *  (owned: fl_rpc_sync_close) or the failure with *errmsg (owned, may be
 *  NULL). opts' callbacks are ignored. */
fl_status_t fl_rpc_sync_connect(const fl_rpc_client_opts_t *opts, uint32_t timeout_ms,
                                fl_rpc_sync_t **out /* out */, char **errmsg /* out */);

/** A unary call; the reply is appended to *reply. Returns the call status;
 *  on error *errmsg (when not NULL) gets an owned message or NULL. */
fl_status_t fl_rpc_sync_unary(fl_rpc_sync_t *s, const char *method, fl_buf_t payload,
                              uint32_t timeout_ms, fl_sbuf_t *reply /* out */,
                              char **errmsg /* out */);

/** A streaming call: on_msg(arg, msg) per message (view valid during the
 *  call); a non-zero return cancels the stream (result FL_ECANCELED).
 *  Returns the end status, *errmsg as for fl_rpc_sync_unary. */
fl_status_t fl_rpc_sync_stream(fl_rpc_sync_t *s, const char *method, fl_buf_t payload,
                               uint32_t timeout_ms, int (*on_msg)(void *arg, fl_buf_t msg),
                               void *arg, char **errmsg /* out */);

/** Closes the connection and frees everything. NULL-safe. */
void fl_rpc_sync_close(fl_rpc_sync_t *s);

#endif /* FL_NET_RPC_H */
