/* SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests for common/events with real nanomsg sockets on 127.0.0.1 (and
 * ipc:// in a mkdtemp directory): round trips with topic filtering, several
 * subscribers and publishers, timeouts, a publisher that never blocks, port
 * conflicts, the pollable descriptor, malformed input, message limits and
 * concurrent publishers.
 *
 * nanomsg connects asynchronously, so a subscriber misses what is published
 * before its connection is up. settle() publishes probe messages until the
 * subscriber sees one (bounded at 5 s), then drains the extra probes; tests
 * never rely on a fixed sleep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/events/events.h"

#define PROBE "\x01probe"

/* A TCP port that was free a moment ago (bound to port 0, then closed). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* A publisher bound to a fresh loopback port; the URL is written to url. */
static fl_events_pub_t *bound_pub(char *url, size_t cap) {
  fl_events_pub_t *pub = NULL;
  assert_int_equal(fl_events_pub_new(0, &pub), FL_OK);
  for (int tries = 0; tries < 20; tries++) {
    snprintf(url, cap, "tcp://127.0.0.1:%d", free_port());
    fl_status_t rc = fl_events_pub_bind(pub, url);
    if (rc == FL_OK) return pub;
    assert_int_equal(rc, FL_EUNAVAIL);  /* lost a race for the port */
  }
  fail_msg("no free port");
  return NULL;
}

static bool is_probe(const fl_events_msg_t *m) {
  return m->payload.len == strlen(PROBE) &&
         memcmp(m->payload.data, PROBE, m->payload.len) == 0;
}

/* Waits until sub receives what pub publishes on topic, then drains. */
static void settle(fl_events_pub_t *pub, fl_events_sub_t *sub,
                   const char *topic) {
  uint64_t t0 = fl_mono_ns();
  bool got = false;
  while (!got && fl_mono_ns() - t0 < 5000000000ull) {
    assert_int_equal(fl_events_publish(pub, topic, PROBE, strlen(PROBE)),
                     FL_OK);
    fl_events_msg_t m;
    fl_status_t rc = fl_events_recv(sub, 20, &m);
    if (rc == FL_OK) {
      got = is_probe(&m);
      fl_events_msg_free(&m);
    } else {
      assert_int_equal(rc, FL_ETIMEDOUT);
    }
  }
  assert_true(got);
  /* Drain probes still in flight: the pipe is in order, so one more probe
   * round trip pushes them all through. */
  fl_events_msg_t m;
  while (fl_events_recv(sub, 30, &m) == FL_OK) fl_events_msg_free(&m);
}

/* Receives the next non-probe message and checks topic and payload. */
static void expect_msg(fl_events_sub_t *sub, const char *topic,
                       const void *payload, size_t len) {
  fl_events_msg_t m;
  for (;;) {
    fl_status_t rc = fl_events_recv(sub, 2000, &m);
    if (rc != FL_OK) fail_msg("recv %s: %s", topic, fl_events_last_error());
    if (!is_probe(&m)) break;
    fl_events_msg_free(&m);
  }
  assert_string_equal(m.topic, topic);
  assert_int_equal(m.topic_len, strlen(topic));
  assert_int_equal(m.payload.len, len);
  if (len) assert_memory_equal(m.payload.data, payload, len);
  fl_events_msg_free(&m);
  assert_null(m.raw);
  fl_events_msg_free(&m);  /* idempotent */
}

/* Asserts that nothing but probes arrives within ms. */
static void expect_nothing(fl_events_sub_t *sub, int ms) {
  fl_events_msg_t m;
  fl_status_t rc;
  while ((rc = fl_events_recv(sub, ms, &m)) == FL_OK) {
    bool probe = is_probe(&m);
    if (!probe) fail_msg("unexpected message topic=%s", m.topic);
    fl_events_msg_free(&m);
  }
  assert_int_equal(rc, FL_ETIMEDOUT);
}

static void test_roundtrip_filtering(void **state) {
  (void)state;
  char url[64];
  fl_events_pub_t *pub = bound_pub(url, sizeof url);
  fl_events_sub_t *sb = NULL, *scc = NULL, *sall = NULL;
  assert_int_equal(fl_events_sub_new(0, &sb), FL_OK);
  assert_int_equal(fl_events_sub_new(0, &scc), FL_OK);
  assert_int_equal(fl_events_sub_new(0, &sall), FL_OK);
  assert_int_equal(fl_events_sub_subscribe_topic(sb, FL_EVENTS_TOPIC_BLOCK),
                   FL_OK);
  assert_int_equal(fl_events_sub_subscribe(scc, FL_EVENTS_TOPIC_CC_PREFIX),
                   FL_OK);
  assert_int_equal(fl_events_sub_subscribe(sall, ""), FL_OK);
  assert_int_equal(fl_events_sub_connect(sb, url), FL_OK);
  assert_int_equal(fl_events_sub_connect(scc, url), FL_OK);
  assert_int_equal(fl_events_sub_connect(sall, url), FL_OK);
  settle(pub, sb, "block");
  settle(pub, scc, "cc/probe");
  settle(pub, sall, "any");
  expect_nothing(sall, 50);  /* drain probes the other settles sent */

  const uint8_t bin[] = {0x00, 0xff, 0x00, 0x10, 'x'};  /* NULs inside */
  assert_int_equal(fl_events_publish(pub, "block", bin, sizeof bin), FL_OK);
  assert_int_equal(fl_events_publish(pub, "cc/mlupdate", "e1", 2), FL_OK);
  assert_int_equal(fl_events_publish(pub, "blocks", "no", 2), FL_OK);
  assert_int_equal(fl_events_publish(pub, "cc/other", NULL, 0), FL_OK);

  expect_msg(sb, "block", bin, sizeof bin);
  expect_msg(scc, "cc/mlupdate", "e1", 2);
  expect_msg(scc, "cc/other", NULL, 0);
  expect_msg(sall, "block", bin, sizeof bin);
  expect_msg(sall, "cc/mlupdate", "e1", 2);
  expect_msg(sall, "blocks", "no", 2);
  expect_msg(sall, "cc/other", NULL, 0);
  /* The "block" subscriber got no "cc/..." and no "blocks". */
  expect_nothing(sb, 100);
  expect_nothing(scc, 20);

  /* Unsubscribing stops delivery. */
  assert_int_equal(fl_events_sub_unsubscribe(scc, "cc/", 0), FL_OK);
  assert_int_equal(fl_events_sub_subscribe(scc, "zz"), FL_OK);
  settle(pub, scc, "zz");
  assert_int_equal(fl_events_publish(pub, "cc/mlupdate", "e2", 2), FL_OK);
  expect_nothing(scc, 100);

  fl_events_pub_stats_t st;
  fl_events_pub_stats(pub, &st);
  assert_true(st.published >= 5);
  assert_int_equal(st.dropped, 0);

  fl_events_sub_free(sb);
  fl_events_sub_free(scc);
  fl_events_sub_free(sall);
  fl_events_pub_free(pub);
}

static void test_two_publishers_ipc(void **state) {
  (void)state;
  char tmpl[] = "/tmp/fl_events_XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  char *ipc = fl_sprintf("ipc://%s/peer.events", tmpl);
  char url[64];
  fl_events_pub_t *p1 = bound_pub(url, sizeof url);
  fl_events_pub_t *p2 = NULL;
  assert_int_equal(fl_events_pub_new(1 << 20, &p2), FL_OK);
  assert_int_equal(fl_events_pub_bind(p2, ipc), FL_OK);

  fl_events_sub_t *sub = NULL;
  assert_int_equal(fl_events_sub_new(0, &sub), FL_OK);
  assert_int_equal(fl_events_sub_subscribe_topic(sub, "block"), FL_OK);
  assert_int_equal(fl_events_sub_connect(sub, url), FL_OK);
  assert_int_equal(fl_events_sub_connect(sub, ipc), FL_OK);
  settle(p1, sub, "block");
  settle(p2, sub, "block");
  assert_int_equal(fl_events_publish(p1, "block", "from-tcp", 8), FL_OK);
  expect_msg(sub, "block", "from-tcp", 8);
  assert_int_equal(fl_events_publish(p2, "block", "from-ipc", 8), FL_OK);
  expect_msg(sub, "block", "from-ipc", 8);

  fl_events_sub_free(sub);
  fl_events_pub_free(p1);
  fl_events_pub_free(p2);
  char *sock = fl_sprintf("%s/peer.events", tmpl);
  unlink(sock);
  rmdir(tmpl);
  fl_free(sock);
  fl_free(ipc);
}

static void test_recv_timeout(void **state) {
  (void)state;
  char url[64];
  fl_events_pub_t *pub = bound_pub(url, sizeof url);
  fl_events_sub_t *sub = NULL;
  assert_int_equal(fl_events_sub_new(0, &sub), FL_OK);
  assert_int_equal(fl_events_sub_subscribe(sub, ""), FL_OK);
  assert_int_equal(fl_events_sub_connect(sub, url), FL_OK);
  fl_events_msg_t m = {.raw = (void *)&m};  /* must be zeroed on error */
  assert_int_equal(fl_events_recv(sub, 0, &m), FL_AGAIN);
  assert_null(m.raw);
  uint64_t t0 = fl_mono_ns();
  assert_int_equal(fl_events_recv(sub, 80, &m), FL_ETIMEDOUT);
  uint64_t ms = (fl_mono_ns() - t0) / 1000000u;
  assert_true(ms >= 75);
  assert_true(ms < 1500);
  assert_non_null(strstr(fl_events_last_error(), "timed out"));
  /* A wait that a message ends early. */
  settle(pub, sub, "x");
  assert_int_equal(fl_events_publish(pub, "x", "now", 3), FL_OK);
  t0 = fl_mono_ns();
  assert_int_equal(fl_events_recv(sub, 5000, &m), FL_OK);
  assert_true(fl_mono_ns() - t0 < 2000000000ull);
  fl_events_msg_free(&m);
  fl_events_sub_free(sub);
  fl_events_pub_free(pub);
}

static void test_publish_never_blocks(void **state) {
  (void)state;
  char url[64];
  fl_events_pub_t *pub = bound_pub(url, sizeof url);
  static uint8_t payload[1024];
  memset(payload, 0xab, sizeof payload);

  /* Nobody listening. */
  uint64_t t0 = fl_mono_ns();
  for (int i = 0; i < 20000; i++)
    assert_int_equal(fl_events_publish(pub, "block", payload, sizeof payload),
                     FL_OK);
  double none_s = (double)(fl_mono_ns() - t0) / 1e9;

  /* A subscriber that is connected but never reads: its buffers fill and
   * nanomsg drops for it; the publisher goes on at full speed. */
  fl_events_sub_t *slow = NULL;
  assert_int_equal(fl_events_sub_new(0, &slow), FL_OK);
  assert_int_equal(fl_events_sub_subscribe(slow, ""), FL_OK);
  assert_int_equal(fl_events_sub_connect(slow, url), FL_OK);
  settle(pub, slow, "block");
  t0 = fl_mono_ns();
  for (int i = 0; i < 20000; i++)
    assert_int_equal(fl_events_publish(pub, "block", payload, sizeof payload),
                     FL_OK);
  double slow_s = (double)(fl_mono_ns() - t0) / 1e9;
  /* 20 MB into a reader that does not read: if publish blocked, this would
   * hang (the test timeout) rather than finish in seconds. */
  assert_true(none_s < 10.0);
  assert_true(slow_s < 10.0);
  printf("events perf: publish_1k_no_sub_per_s=%.0f "
         "publish_1k_stalled_sub_per_s=%.0f\n",
         20000 / none_s, 20000 / slow_s);
  /* The slow subscriber still gets messages (the oldest buffered ones). */
  fl_events_msg_t m;
  assert_int_equal(fl_events_recv(slow, 1000, &m), FL_OK);
  fl_events_msg_free(&m);
  fl_events_pub_stats_t st;
  fl_events_pub_stats(pub, &st);
  assert_true(st.published >= 40000);
  fl_events_sub_free(slow);
  fl_events_pub_free(pub);
}

static void test_bind_errors(void **state) {
  (void)state;
  char url[64];
  fl_events_pub_t *a = bound_pub(url, sizeof url);
  fl_events_pub_t *b = NULL;
  assert_int_equal(fl_events_pub_new(0, &b), FL_OK);
  assert_int_equal(fl_events_pub_bind(b, url), FL_EUNAVAIL);
  assert_non_null(strstr(fl_events_last_error(), "Address already in use"));
  assert_non_null(strstr(fl_events_last_error(), url));
  assert_int_equal(fl_events_pub_bind(b, "tcp://127.0.0.1:0"), FL_EINVAL);
  assert_int_equal(fl_events_pub_bind(b, "tcp://127.0.0.1"), FL_EINVAL);
  assert_int_equal(fl_events_pub_bind(b, "tcp://127.0.0.1:99999"), FL_EINVAL);
  assert_int_equal(fl_events_pub_bind(b, "nope://x"), FL_EINVAL);
  assert_int_equal(fl_events_pub_bind(b, ""), FL_EINVAL);
  assert_int_equal(fl_events_pub_bind(b, NULL), FL_EINVAL);
  assert_int_equal(fl_events_pub_bind(NULL, url), FL_EINVAL);
  /* After the holder closes, the port can be bound again. */
  fl_events_pub_free(a);
  fl_status_t rc = FL_EUNAVAIL;
  for (int i = 0; i < 50 && rc == FL_EUNAVAIL; i++) {
    rc = fl_events_pub_bind(b, url);
    if (rc == FL_EUNAVAIL) {  /* nanomsg closes asynchronously */
      struct timespec ts = {.tv_nsec = 10000000};
      nanosleep(&ts, NULL);
    }
  }
  assert_int_equal(rc, FL_OK);
  fl_events_pub_free(b);

  fl_events_sub_t *s = NULL;
  assert_int_equal(fl_events_sub_new(0, &s), FL_OK);
  assert_int_equal(fl_events_sub_connect(s, "nope://x"), FL_EINVAL);
  assert_int_equal(fl_events_sub_connect(s, "tcp://127.0.0.1"), FL_EINVAL);
  /* Nobody listening is fine: nanomsg keeps reconnecting. */
  assert_int_equal(fl_events_sub_connect(s, url), FL_OK);
  fl_events_sub_free(s);
}

static void test_bad_arguments(void **state) {
  (void)state;
  char url[64];
  fl_events_pub_t *pub = bound_pub(url, sizeof url);
  char longt[FL_EVENTS_TOPIC_MAX + 2];
  memset(longt, 't', sizeof longt - 1);
  longt[sizeof longt - 1] = 0;
  assert_int_equal(fl_events_publish(pub, "", "x", 1), FL_EINVAL);
  assert_int_equal(fl_events_publish(pub, longt, "x", 1), FL_EINVAL);
  longt[FL_EVENTS_TOPIC_MAX] = 0;  /* exactly the maximum is fine */
  assert_int_equal(fl_events_publish(pub, longt, "x", 1), FL_OK);
  assert_int_equal(fl_events_publish(pub, NULL, "x", 1), FL_EINVAL);
  assert_int_equal(fl_events_publish(pub, "t", NULL, 1), FL_EINVAL);
  assert_int_equal(fl_events_publish(NULL, "t", "x", 1), FL_EINVAL);
  assert_int_equal(fl_events_publish(pub, "t", "x", (size_t)-1), FL_EINVAL);

  fl_events_sub_t *sub = NULL;
  assert_int_equal(fl_events_sub_new(0, &sub), FL_OK);
  longt[FL_EVENTS_TOPIC_MAX] = 't';
  assert_int_equal(fl_events_sub_subscribe(sub, longt), FL_EINVAL);
  assert_int_equal(fl_events_sub_subscribe(sub, NULL), FL_EINVAL);
  assert_int_equal(fl_events_sub_subscribe_topic(sub, ""), FL_EINVAL);
  assert_int_equal(fl_events_recv(sub, 0, NULL), FL_EINVAL);
  fl_events_msg_t m;
  assert_int_equal(fl_events_recv(NULL, 0, &m), FL_EINVAL);
  int fd = 0;
  assert_int_equal(fl_events_sub_fd(NULL, &fd), FL_EINVAL);
  assert_int_equal(fd, -1);
  fl_events_sub_t *s2 = (fl_events_sub_t *)&m;
  assert_int_equal(fl_events_sub_new((size_t)1 << 40, &s2), FL_EINVAL);
  assert_null(s2);
  fl_events_pub_t *p2 = (fl_events_pub_t *)&m;
  assert_int_equal(fl_events_pub_new((size_t)1 << 40, &p2), FL_EINVAL);
  assert_null(p2);
  fl_events_msg_free(NULL);
  fl_events_sub_free(NULL);
  fl_events_pub_free(NULL);
  fl_events_pub_stats(NULL, NULL);
  fl_events_sub_free(sub);
  fl_events_pub_free(pub);
}

static void test_pollable_fd(void **state) {
  (void)state;
  char url[64];
  fl_events_pub_t *pub = bound_pub(url, sizeof url);
  fl_events_sub_t *sub = NULL;
  assert_int_equal(fl_events_sub_new(0, &sub), FL_OK);
  assert_int_equal(fl_events_sub_subscribe(sub, "block"), FL_OK);
  assert_int_equal(fl_events_sub_connect(sub, url), FL_OK);
  settle(pub, sub, "block");
  int fd = -1;
  assert_int_equal(fl_events_sub_fd(sub, &fd), FL_OK);
  assert_true(fd >= 0);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 0), 0);  /* nothing queued */
  for (int i = 0; i < 3; i++)
    assert_int_equal(fl_events_publish(pub, "block", "b", 1), FL_OK);
  assert_int_equal(poll(&p, 1, 2000), 1);  /* what a uv_poll_t would see */
  assert_true(p.revents & POLLIN);
  int n = 0;
  fl_events_msg_t m;
  uint64_t t0 = fl_mono_ns();
  while (n < 3 && fl_mono_ns() - t0 < 2000000000ull) {
    fl_status_t rc = fl_events_recv(sub, 0, &m);
    if (rc == FL_OK) {
      n++;
      fl_events_msg_free(&m);
    } else {
      assert_int_equal(rc, FL_AGAIN);
      assert_true(poll(&p, 1, 500) >= 0);
    }
  }
  assert_int_equal(n, 3);
  assert_int_equal(fl_events_recv(sub, 0, &m), FL_AGAIN);
  p.revents = 0;
  assert_int_equal(poll(&p, 1, 0), 0);  /* drained: not readable again */
  fl_events_sub_free(sub);
  fl_events_pub_free(pub);
}

static void test_malformed_and_limits(void **state) {
  (void)state;
  /* A foreign publisher (raw nanomsg) sending bytes without our layout. */
  char url[64];
  snprintf(url, sizeof url, "tcp://127.0.0.1:%d", free_port());
  int raw = nn_socket(AF_SP, NN_PUB);
  assert_true(raw >= 0);
  assert_true(nn_bind(raw, url) >= 0);
  fl_events_sub_t *sub = NULL;
  assert_int_equal(fl_events_sub_new(1024, &sub), FL_OK);
  assert_int_equal(fl_events_sub_subscribe(sub, ""), FL_OK);
  assert_int_equal(fl_events_sub_connect(sub, url), FL_OK);
  fl_events_msg_t m;
  bool up = false;
  uint64_t t0 = fl_mono_ns();
  while (!up && fl_mono_ns() - t0 < 5000000000ull) {
    assert_true(nn_send(raw, "sync\0", 5, 0) == 5);
    if (fl_events_recv(sub, 20, &m) == FL_OK) {
      up = true;
      fl_events_msg_free(&m);
    }
  }
  assert_true(up);
  while (fl_events_recv(sub, 30, &m) == FL_OK) fl_events_msg_free(&m);

  assert_true(nn_send(raw, "no-nul", 6, 0) == 6);
  assert_int_equal(fl_events_recv(sub, 2000, &m), FL_EMALFORMED);
  assert_null(m.raw);
  assert_true(nn_send(raw, "\0payload", 8, 0) == 8);  /* empty topic */
  assert_int_equal(fl_events_recv(sub, 2000, &m), FL_EMALFORMED);
  assert_true(nn_send(raw, "t\0", 2, 0) == 2);  /* empty payload is fine */
  assert_int_equal(fl_events_recv(sub, 2000, &m), FL_OK);
  assert_string_equal(m.topic, "t");
  assert_int_equal(m.payload.len, 0);
  fl_events_msg_free(&m);

  /* Over the subscriber's 1 KiB limit: never delivered (nanomsg drops the
   * connection and reconnects). */
  static uint8_t big[4096];
  assert_true(nn_send(raw, big, sizeof big, 0) == (int)sizeof big);
  assert_int_equal(fl_events_recv(sub, 300, &m), FL_ETIMEDOUT);
  nn_close(raw);
  fl_events_sub_free(sub);
}

typedef struct {
  fl_events_pub_t *pub;
  int id;
  int n;
} pub_arg_t;

static void *pub_thread(void *p) {
  pub_arg_t *a = p;
  char topic[16];
  snprintf(topic, sizeof topic, "cc/t%d", a->id);
  for (int i = 0; i < a->n; i++) {
    uint32_t v = (uint32_t)i;
    if (fl_events_publish(a->pub, topic, &v, sizeof v) != FL_OK)
      return (void *)1;
  }
  return NULL;
}

static void test_concurrent_publishers(void **state) {
  (void)state;
  char url[64];
  fl_events_pub_t *pub = bound_pub(url, sizeof url);
  fl_events_sub_t *sub = NULL;
  assert_int_equal(fl_events_sub_new(0, &sub), FL_OK);
  assert_int_equal(fl_events_sub_subscribe(sub, "cc/"), FL_OK);
  assert_int_equal(fl_events_sub_connect(sub, url), FL_OK);
  settle(pub, sub, "cc/probe");
  pthread_t t[2];
  pub_arg_t a[2];
  for (int i = 0; i < 2; i++) {
    a[i] = (pub_arg_t){.pub = pub, .id = i, .n = 500};
    assert_int_equal(pthread_create(&t[i], NULL, pub_thread, &a[i]), 0);
  }
  for (int i = 0; i < 2; i++) {
    void *r = NULL;
    pthread_join(t[i], &r);
    assert_null(r);
  }
  /* Per publisher thread, messages arrive complete and in order. */
  uint32_t next[2] = {0, 0};
  fl_events_msg_t m;
  int got = 0;
  while (got < 1000 && fl_events_recv(sub, 2000, &m) == FL_OK) {
    if (!is_probe(&m)) {
      assert_int_equal(m.payload.len, 4);
      int id = m.topic[4] - '0';
      assert_true(id == 0 || id == 1);
      uint32_t v;
      memcpy(&v, m.payload.data, 4);
      assert_int_equal(v, next[id]);
      next[id]++;
      got++;
    }
    fl_events_msg_free(&m);
  }
  assert_int_equal(got, 1000);
  fl_events_sub_free(sub);
  fl_events_pub_free(pub);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_filtering),
      cmocka_unit_test(test_two_publishers_ipc),
      cmocka_unit_test(test_recv_timeout),
      cmocka_unit_test(test_publish_never_blocks),
      cmocka_unit_test(test_bind_errors),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_pollable_fd),
      cmocka_unit_test(test_malformed_and_limits),
      cmocka_unit_test(test_concurrent_publishers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
