/* SPDX-License-Identifier: Apache-2.0
 *
 * events.c: fl_events over nanomsg (libnanomsg 1.1) PUB/SUB sockets.
 *
 * The publisher builds each message in a nanomsg-allocated buffer and hands
 * it over with NN_MSG (zero-copy: nanomsg owns it once nn_send succeeds, we
 * free it when nn_send fails). The subscriber receives with NN_MSG too and
 * gives the caller views into that buffer, released by fl_events_msg_free.
 * Waiting is done with nn_poll and then a non-blocking nn_recv, so that one
 * socket needs no per-call option changes and several threads can receive
 * on it at once.
 *
 * Invariants:
 *   1. Every message this module sends is topic, NUL, payload, with
 *      1 <= strlen(topic) <= FL_EVENTS_TOPIC_MAX (events.h, "layout").
 *   2. A received fl_events_msg_t either owns its nanomsg buffer (raw !=
 *      NULL) or is all zero; no other state exists.
 */
#include "common/events/events.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"

#define MOD "events"

struct fl_events_pub_s {
  int s;
  atomic_uint_fast64_t published;
  atomic_uint_fast64_t dropped;
};

struct fl_events_sub_s {
  int s;
};

/* ---- errors ---------------------------------------------------------- */

static _Thread_local char last_err[512];

const char *fl_events_last_error(void) { return last_err; }

static fl_status_t map_errno(int e) {
  switch (e) {
    case EAGAIN:
    case EINTR:
      return FL_AGAIN;
    case ETIMEDOUT:
      return FL_ETIMEDOUT;
    case EADDRINUSE:
    case EMFILE:
      return FL_EUNAVAIL;
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENAMETOOLONG:
    case ENODEV:
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
      return FL_EINVAL;
    case ECONNREFUSED:
      return FL_ECONNREFUSED;
    case EBADF:
    case ETERM:
      return FL_ECLOSED;
    case EFSM:
    case ENOTSUP:
      return FL_ESTATE;
    case ENOMEM:
      return FL_ENOMEM;
    default:
      return FL_EIO;
  }
}

__attribute__((format(printf, 2, 3)))
static fl_status_t set_error(fl_status_t rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_err, sizeof last_err, fmt, ap);
  va_end(ap);
  return rc;
}

/* Reads nn_errno() now (before anything can change it) and records it. */
static fl_status_t nn_fail(const char *what, const char *arg) {
  int e = nn_errno();
  return set_error(map_errno(e), "%s%s%s: %s (errno %d)", what,
                   arg ? " " : "", arg ? arg : "", nn_strerror(e), e);
}

static void close_socket(int s) {
  /* nn_close fails with EINTR without closing; anything else is final. */
  while (nn_close(s) != 0 && nn_errno() == EINTR) {
  }
}

/* ---- publisher ------------------------------------------------------- */

fl_status_t fl_events_pub_new(size_t sndbuf_bytes, fl_events_pub_t **out) {
  if (out == NULL) return set_error(FL_EINVAL, "events pub: NULL out");
  *out = NULL;
  if (sndbuf_bytes > INT_MAX)
    return set_error(FL_EINVAL, "events pub: sndbuf %zu too big", sndbuf_bytes);
  int s = nn_socket(AF_SP, NN_PUB);
  if (s < 0) return nn_fail("events pub: nn_socket", NULL);
  if (sndbuf_bytes > 0) {
    int v = (int)sndbuf_bytes;
    if (nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDBUF, &v, sizeof v) != 0) {
      fl_status_t rc = nn_fail("events pub: NN_SNDBUF", NULL);
      close_socket(s);
      return rc;
    }
  }
  fl_events_pub_t *pub = fl_calloc(1, sizeof *pub);
  pub->s = s;
  atomic_init(&pub->published, 0);
  atomic_init(&pub->dropped, 0);
  *out = pub;
  return FL_OK;
}

fl_status_t fl_events_pub_bind(fl_events_pub_t *pub, const char *url) {
  if (pub == NULL || url == NULL || *url == '\0')
    return set_error(FL_EINVAL, "events bind: NULL or empty argument");
  if (nn_bind(pub->s, url) < 0) return nn_fail("events bind", url);
  FL_DEBUG(MOD, "bound url=%s", url);
  return FL_OK;
}

fl_status_t fl_events_publish(fl_events_pub_t *pub, const char *topic,
                              const void *payload, size_t len) {
  if (pub == NULL || topic == NULL || (payload == NULL && len > 0))
    return set_error(FL_EINVAL, "events publish: NULL argument");
  size_t tl = strnlen(topic, FL_EVENTS_TOPIC_MAX + 1);
  if (tl == 0 || tl > FL_EVENTS_TOPIC_MAX)
    return set_error(FL_EINVAL, "events publish: topic length must be 1..%d",
                     FL_EVENTS_TOPIC_MAX);
  if (len > (size_t)INT_MAX - tl - 1)
    return set_error(FL_EINVAL, "events publish: payload of %zu bytes too big",
                     len);
  size_t total = tl + 1 + len;
  uint8_t *m = nn_allocmsg(total, 0);
  if (m == NULL) return nn_fail("events publish: nn_allocmsg", NULL);
  memcpy(m, topic, tl);
  m[tl] = 0;
  if (len > 0) memcpy(m + tl + 1, payload, len);
  void *mp = m;
  /* NN_DONTWAIT: a PUB socket never waits for subscribers anyway; the flag
   * makes sure no future nanomsg change can turn this into a block. */
  if (nn_send(pub->s, &mp, NN_MSG, NN_DONTWAIT) < 0) {
    fl_status_t rc = nn_fail("events publish", topic);
    nn_freemsg(m);  /* still ours when nn_send fails */
    if (rc == FL_AGAIN) atomic_fetch_add(&pub->dropped, 1);
    return rc;
  }
  atomic_fetch_add(&pub->published, 1);
  return FL_OK;
}

void fl_events_pub_stats(const fl_events_pub_t *pub,
                         fl_events_pub_stats_t *out) {
  if (out == NULL) return;
  *out = (fl_events_pub_stats_t){0};
  if (pub == NULL) return;
  out->published = atomic_load(&pub->published);
  out->dropped = atomic_load(&pub->dropped);
}

void fl_events_pub_free(fl_events_pub_t *pub) {
  if (pub == NULL) return;
  close_socket(pub->s);
  fl_free(pub);
}

/* ---- subscriber ------------------------------------------------------ */

fl_status_t fl_events_sub_new(size_t max_msg_bytes, fl_events_sub_t **out) {
  if (out == NULL) return set_error(FL_EINVAL, "events sub: NULL out");
  *out = NULL;
  if (max_msg_bytes == 0) max_msg_bytes = FL_EVENTS_DEFAULT_MAX_MSG;
  if (max_msg_bytes > INT_MAX)
    return set_error(FL_EINVAL, "events sub: max message %zu too big",
                     max_msg_bytes);
  int s = nn_socket(AF_SP, NN_SUB);
  if (s < 0) return nn_fail("events sub: nn_socket", NULL);
  int v = (int)max_msg_bytes;
  if (nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &v, sizeof v) != 0) {
    fl_status_t rc = nn_fail("events sub: NN_RCVMAXSIZE", NULL);
    close_socket(s);
    return rc;
  }
  fl_events_sub_t *sub = fl_calloc(1, sizeof *sub);
  sub->s = s;
  *out = sub;
  return FL_OK;
}

fl_status_t fl_events_sub_connect(fl_events_sub_t *sub, const char *url) {
  if (sub == NULL || url == NULL || *url == '\0')
    return set_error(FL_EINVAL, "events connect: NULL or empty argument");
  if (nn_connect(sub->s, url) < 0) return nn_fail("events connect", url);
  FL_DEBUG(MOD, "connecting url=%s", url);
  return FL_OK;
}

static fl_status_t sub_opt(fl_events_sub_t *sub, int opt, const char *prefix,
                           bool exact, const char *what) {
  if (sub == NULL || prefix == NULL)
    return set_error(FL_EINVAL, "%s: NULL argument", what);
  size_t n = strnlen(prefix, FL_EVENTS_TOPIC_MAX + 1);
  if (n > FL_EVENTS_TOPIC_MAX)
    return set_error(FL_EINVAL, "%s: prefix longer than %d bytes", what,
                     FL_EVENTS_TOPIC_MAX);
  if (exact && n == 0)
    return set_error(FL_EINVAL, "%s: empty topic", what);
  /* exact: the filter includes the NUL that ends the topic (layout). */
  if (nn_setsockopt(sub->s, NN_SUB, opt, prefix, n + (exact ? 1 : 0)) != 0)
    return nn_fail(what, prefix);
  return FL_OK;
}

fl_status_t fl_events_sub_subscribe(fl_events_sub_t *sub, const char *prefix) {
  return sub_opt(sub, NN_SUB_SUBSCRIBE, prefix, false, "events subscribe");
}

fl_status_t fl_events_sub_subscribe_topic(fl_events_sub_t *sub,
                                          const char *topic) {
  return sub_opt(sub, NN_SUB_SUBSCRIBE, topic, true, "events subscribe");
}

fl_status_t fl_events_sub_unsubscribe(fl_events_sub_t *sub, const char *prefix,
                                      int exact) {
  return sub_opt(sub, NN_SUB_UNSUBSCRIBE, prefix, exact != 0,
                 "events unsubscribe");
}

/* Splits a received buffer into topic and payload (invariant 2). */
static fl_status_t parse_msg(void *buf, int n, fl_events_msg_t *msg) {
  const uint8_t *p = buf;
  const uint8_t *nul = memchr(p, 0, (size_t)n);
  if (nul == NULL || nul == p) {
    nn_freemsg(buf);
    return set_error(FL_EMALFORMED,
                     "events recv: message of %d bytes has no topic", n);
  }
  size_t tl = (size_t)(nul - p);
  msg->raw = buf;
  msg->topic = (const char *)p;
  msg->topic_len = tl;
  msg->payload = FL_BUF(p + tl + 1, (size_t)n - tl - 1);
  return FL_OK;
}

fl_status_t fl_events_recv(fl_events_sub_t *sub, int timeout_ms,
                           fl_events_msg_t *msg) {
  if (msg != NULL) *msg = (fl_events_msg_t){0};
  if (sub == NULL || msg == NULL)
    return set_error(FL_EINVAL, "events recv: NULL argument");
  uint64_t deadline =
      timeout_ms > 0 ? fl_mono_ns() + (uint64_t)timeout_ms * 1000000u : 0;
  for (;;) {
    void *buf = NULL;
    int n = nn_recv(sub->s, &buf, NN_MSG, NN_DONTWAIT);
    if (n >= 0) return parse_msg(buf, n, msg);
    int e = nn_errno();
    if (e != EAGAIN) return nn_fail("events recv", NULL);
    if (timeout_ms == 0)
      return set_error(FL_AGAIN, "events recv: no message queued");
    int wait = -1;
    if (timeout_ms > 0) {
      uint64_t now = fl_mono_ns();
      if (now >= deadline)
        return set_error(FL_ETIMEDOUT, "events recv: timed out after %d ms",
                         timeout_ms);
      /* Round up so that we never spin on a sub-millisecond remainder. */
      wait = (int)((deadline - now + 999999u) / 1000000u);
    }
    struct nn_pollfd pfd = {.fd = sub->s, .events = NN_POLLIN};
    int r = nn_poll(&pfd, 1, wait);
    if (r < 0) {
      fl_status_t rc = nn_fail("events recv: nn_poll", NULL);
      return rc;  /* EINTR -> FL_AGAIN: the caller decides to retry */
    }
    /* r == 0: time ran out (re-checked at the top after a last try);
     * r > 0: a message is queued, unless another thread takes it first. */
  }
}

void fl_events_msg_free(fl_events_msg_t *msg) {
  if (msg == NULL) return;
  if (msg->raw != NULL) nn_freemsg(msg->raw);
  *msg = (fl_events_msg_t){0};
}

fl_status_t fl_events_sub_fd(fl_events_sub_t *sub, int *fd) {
  if (fd != NULL) *fd = -1;
  if (sub == NULL || fd == NULL)
    return set_error(FL_EINVAL, "events fd: NULL argument");
  int v = -1;
  size_t sz = sizeof v;
  if (nn_getsockopt(sub->s, NN_SOL_SOCKET, NN_RCVFD, &v, &sz) != 0)
    return nn_fail("events fd: NN_RCVFD", NULL);
  *fd = v;
  return FL_OK;
}

void fl_events_sub_free(fl_events_sub_t *sub) {
  if (sub == NULL) return;
  close_socket(sub->s);
  fl_free(sub);
}
