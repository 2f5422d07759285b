/* SPDX-License-Identifier: Apache-2.0
 *
 * conn.c: one RPC transport connection, shared by server and client.
 *
 * Read path: libuv -> (TLS: rbuf -> memory BIO -> SSL_read straight into the
 * frame decoder's buffer; plaintext: libuv reads straight into the decoder's
 * buffer) -> complete frames -> owner's on_frame.
 * Write path: owners encode frames into `out`; a uv_prepare handle flushes
 * once per loop iteration (TLS: one SSL_write of everything queued, the
 * ciphertext drained into wbuf; plaintext: out and wbuf are swapped, no
 * copy) with a single uv_write. While that write is in flight new frames
 * accumulate in `out`, and the write callback flushes them together: under
 * load, batches grow by themselves. Invariants are listed in rpc_int.h.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/net/rpc_int.h"

#define RBUF_SIZE (64u * 1024u)
#define TLS_READ_CHUNK (17u * 1024u) /* one TLS record of plaintext fits */
#define SHRINK_ABOVE ((size_t)4 << 20)

static void flush(fl__conn_t *c);
static void process_frames(fl__conn_t *c);

static void on_handle_closed(uv_handle_t *h) {
  fl__conn_t *c = h->data;
  if (--c->handles > 0) return;
  fl_frame_decoder_free(c->dec);
  c->dec = NULL;
  fl_free(c->rbuf);
  c->rbuf = NULL;
  fl_sbuf_free(&c->out);
  fl_sbuf_free(&c->wbuf);
  c->ops->on_closed(c);
}

fl_status_t fl__conn_init(fl__conn_t *c, uv_loop_t *loop, const fl__conn_ops_t *ops,
                          fl_tls_ctx_t *tls_ctx, size_t max_frame, size_t hwm,
                          fl_rpc_stats_t *stats) {
  memset(c, 0, sizeof(*c));
  c->loop = loop;
  c->ops = ops;
  c->stats = stats;
  c->max_frame = max_frame;
  c->hwm = hwm;
  /* uv_tcp_init registers nothing when it fails; uv_prepare_init cannot. */
  if (uv_tcp_init(loop, &c->tcp) != 0) return FL_EIO;
  uv_prepare_init(loop, &c->prep);
  c->tcp.data = c;
  c->prep.data = c;
  c->wreq.data = c;
  c->handles = 2;
  c->dec = fl_frame_decoder_new(max_frame);
  c->tls = tls_ctx ? fl_tls_new(tls_ctx) : NULL;
  return FL_OK;
}

void fl__conn_destroy(fl__conn_t *c) {
  if (c == NULL) return;
  fl_tls_free(c->tls);
  c->tls = NULL;
}

size_t fl__conn_queued(const fl__conn_t *c) {
  return c->out.len + c->wbuf.len + (c->tls ? fl_tls_pending(c->tls) : 0);
}

bool fl__conn_writable(const fl__conn_t *c) {
  return !c->closing && (c->hwm == 0 || fl__conn_queued(c) < c->hwm);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  fl__conn_t *c = h->data;
  if (c->tls) {
    buf->base = (char *)c->rbuf;
    buf->len = RBUF_SIZE;
  } else {
    size_t avail = 0;
    buf->base = (char *)fl_frame_decoder_space(c->dec, RBUF_SIZE, &avail);
    buf->len = avail;
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void update_reading(fl__conn_t *c) {
  bool want = c->started && !c->closing && !c->paused_hwm && !c->paused_user;
  if (want && !c->reading) {
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r != 0) {
      fl__conn_close(c, FL_EIO, uv_strerror(r));
      return;
    }
    c->reading = true;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

/* Reads what the socket holds right now, without waiting for the loop's
 * poll (the fd is non-blocking; libuv keeps no read buffer of its own). */
static void read_now(fl__conn_t *c) {
  uv_os_fd_t fd;
  if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0) return;
  for (int i = 0; i < 4 && !c->closing; i++) {
    uv_buf_t b;
    on_alloc((uv_handle_t *)&c->tcp, RBUF_SIZE, &b);
    ssize_t n = recv(fd, b.base, b.len, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        on_read((uv_stream_t *)&c->tcp, uv_translate_sys_error(errno), &b);
      return;
    }
    on_read((uv_stream_t *)&c->tcp, n == 0 ? UV_EOF : n, &b);
    if ((size_t)n < b.len) return;
  }
}

static void check_drain(fl__conn_t *c) {
  size_t q = fl__conn_queued(c);
  if (c->hwm != 0 && q > c->hwm / 2) return;
  bool was_paused = c->paused_hwm;
  if (was_paused) {
    c->paused_hwm = false;
    update_reading(c);
  }
  if (c->want_drain && !c->closing) {
    /* Producers waiting for the drain would refill the queue and pause
     * reading again before the loop polls: read first, so cancels and new
     * requests are never starved by a fast stream. */
    if (was_paused) read_now(c);
    if (c->closing || !c->want_drain) return;
    c->want_drain = false;
    c->ops->on_drain(c);
  }
}

static void on_prepare(uv_prepare_t *p) {
  fl__conn_t *c = p->data;
  uv_prepare_stop(p);
  if (c->closing) return;
  check_drain(c); /* drain waiters may queue more before the flush */
  if (!c->closing) flush(c);
}

void fl__conn_kick(fl__conn_t *c) {
  if (c->closing || c->writing || uv_is_active((uv_handle_t *)&c->prep)) return;
  uv_prepare_start(&c->prep, on_prepare);
}

void fl__conn_pause(fl__conn_t *c, bool paused) {
  c->paused_user = paused;
  update_reading(c);
}

static void on_write(uv_write_t *req, int status) {
  fl__conn_t *c = req->data;
  c->writing = false;
  size_t n = c->wbuf.len;
  c->wbuf.len = 0;
  if (c->wbuf.cap > SHRINK_ABOVE) fl_sbuf_free(&c->wbuf);
  if (c->closing) return;
  if (status < 0) {
    fl__conn_close(c, FL_ECLOSED, uv_strerror(status));
    return;
  }
  c->stats->bytes_out += n;
  check_drain(c);
  if (!c->closing) flush(c);
}

static void flush(fl__conn_t *c) {
  if (c->closing || c->writing || !c->started) return;
  if (c->tls) {
    if (c->ready && c->out.len > 0) {
      fl_status_t rc = fl_tls_write(c->tls, c->out.data, c->out.len);
      c->out.len = 0;
      if (c->out.cap > SHRINK_ABOVE) fl_sbuf_free(&c->out);
      if (rc != FL_OK) {
        fl__conn_close(c, rc, fl_tls_error(c->tls));
        return;
      }
    }
    size_t n = fl_tls_pending(c->tls);
    if (n > 0) {
      fl_sbuf_reserve(&c->wbuf, n);
      c->wbuf.len = fl_tls_drain(c->tls, c->wbuf.data, n);
    }
  } else if (c->ready && c->out.len > 0) {
    fl_sbuf_t t = c->wbuf; /* empty: no write in flight */
    c->wbuf = c->out;
    c->out = t;
  }
  if (c->wbuf.len == 0) return;
  uv_buf_t b = {.base = (char *)c->wbuf.data, .len = c->wbuf.len};
  int r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (r != 0) {
    c->wbuf.len = 0;
    fl__conn_close(c, FL_ECLOSED, uv_strerror(r));
    return;
  }
  c->writing = true;
  c->stats->writes++;
}

void fl__conn_start(fl__conn_t *c) {
  c->started = true;
  uv_tcp_nodelay(&c->tcp, 1);
  if (c->tls == NULL) {
    c->ready = true;
    c->ops->on_ready(c);
  } else {
    c->rbuf = fl_malloc(RBUF_SIZE);
    fl_status_t rc = fl_tls_handshake(c->tls); /* the client's hello */
    if (rc != FL_OK && rc != FL_AGAIN) {
      c->stats->handshake_failures++;
      fl__conn_close(c, rc, fl_tls_error(c->tls));
      return;
    }
  }
  if (c->closing) return;
  update_reading(c);
  if (!c->closing) fl__conn_kick(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  fl__conn_t *c = s->data;
  if (nread == 0 || c->closing) return;
  if (nread < 0) {
    fl__conn_close(c, FL_ECLOSED, nread == UV_EOF ? "peer closed the connection"
                                                  : uv_strerror((int)nread));
    return;
  }
  c->stats->bytes_in += (uint64_t)nread;
  if (c->tls == NULL) {
    fl_frame_decoder_commit(c->dec, (size_t)nread);
    process_frames(c);
    return;
  }
  fl_tls_feed(c->tls, c->rbuf, (size_t)nread);
  if (!c->ready) {
    fl_status_t rc = fl_tls_handshake(c->tls);
    if (rc == FL_AGAIN) {
      fl__conn_kick(c);
      return;
    }
    if (rc != FL_OK) {
      c->stats->handshake_failures++;
      fl__conn_close(c, rc, fl_tls_error(c->tls));
      return;
    }
    c->ready = true;
    c->ops->on_ready(c);
    if (c->closing) return;
    fl__conn_kick(c);
  }
  fl_status_t rc = FL_OK;
  for (;;) {
    size_t avail = 0, n = 0;
    uint8_t *p = fl_frame_decoder_space(c->dec, TLS_READ_CHUNK, &avail);
    rc = fl_tls_read(c->tls, p, avail, &n);
    if (rc != FL_OK) break;
    fl_frame_decoder_commit(c->dec, n);
  }
  process_frames(c);
  if (c->closing) return;
  if (rc != FL_AGAIN) {
    fl__conn_close(c, rc, fl_tls_error(c->tls));
    return;
  }
  if (fl_tls_pending(c->tls) > 0) fl__conn_kick(c);
}

static void process_frames(fl__conn_t *c) {
  while (!c->closing) {
    fl_frame_t *f = NULL;
    fl_status_t rc = fl_frame_decoder_next(c->dec, &f);
    if (rc == FL_AGAIN) return;
    if (rc != FL_OK) {
      const char *msg = fl_frame_decoder_error(c->dec);
      c->stats->protocol_errors++;
      FL_DEBUG("rpc", "bad frame rc=%s err=\"%s\"", fl_status_name(rc), msg ? msg : "");
      fl_frame_t ef = {.flags = FL_FRAME_ERROR | FL_FRAME_END_STREAM, .status = rc, .error = msg};
      (void)fl__conn_send(c, &ef);
      fl__conn_close(c, rc, msg);
      return;
    }
    c->stats->frames_in++;
    c->ops->on_frame(c, f);
  }
}

fl_status_t fl__conn_send(fl__conn_t *c, const fl_frame_t *f) {
  if (c->closing) return FL_ECLOSED;
  fl_status_t rc = fl_frame_encode(&c->out, f, c->max_frame);
  if (rc != FL_OK) return rc;
  c->stats->frames_out++;
  size_t q = fl__conn_queued(c);
  if (q > c->stats->queued_bytes_max) c->stats->queued_bytes_max = q;
  if (c->hwm && q > c->hwm && !c->paused_hwm) {
    c->paused_hwm = true;
    c->stats->read_pauses++;
    update_reading(c);
  }
  fl__conn_kick(c);
  return FL_OK;
}

void fl__conn_close(fl__conn_t *c, fl_status_t why, const char *msg) {
  if (c->closing) return;
  /* Best effort: whatever is queued (an error frame, a TLS alert or
   * close_notify) goes out now if the socket takes it without blocking.
   * uv_try_write refuses while earlier bytes are still queued in libuv, so
   * this never reorders the stream. */
  if (c->started) {
    fl_sbuf_t tail = {0};
    if (c->tls) {
      if (c->ready) {
        if (c->out.len) (void)fl_tls_write(c->tls, c->out.data, c->out.len);
        fl_tls_shutdown(c->tls);
      }
      size_t n = fl_tls_pending(c->tls);
      if (n) {
        fl_sbuf_reserve(&tail, n);
        tail.len = fl_tls_drain(c->tls, tail.data, n);
      }
    } else if (c->out.len) {
      tail = c->out;
      c->out = (fl_sbuf_t){0};
    }
    if (tail.len) {
      uv_buf_t b = {.base = (char *)tail.data, .len = tail.len};
      (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    fl_sbuf_free(&tail);
  }
  c->out.len = 0;
  c->closing = true;
  c->close_status = why;
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
  uv_prepare_stop(&c->prep);
  c->ops->on_close(c, why, msg);
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->prep, on_handle_closed);
}

void fl__ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
  }
}
