/* SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests for common/net: frame codec, loop helpers, the TLS engine in
 * memory, and the RPC layer over real sockets on 127.0.0.1 (port 0) with
 * mutual TLS. The RPC server runs on its own thread and loop; clients run on
 * the test thread (async client on a test loop, the blocking client, or a
 * raw blocking OpenSSL client for hostile input). The PKI comes from
 * `fedledger cryptogen` through the cryptogen_pki ctest fixture;
 * FL_NET_PKI_DIR points at it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/net/frame.h"
#include "common/net/loop.h"
#include "common/net/rpc.h"
#include "common/net/tls.h"
#include "fl/rpc/frame.pb-c.h"

/* ---- PKI paths: the one place that knows the fixture layout ---- */

#define PKI_ORG1 "peerOrganizations/org1.example.com/"
#define PKI_ORG2 "peerOrganizations/org2.example.com/"
#define PKI_ORG1_CA PKI_ORG1 "tlsca/tlsca.org1.example.com-cert.pem"
#define PKI_ORG2_CA PKI_ORG2 "tlsca/tlsca.org2.example.com-cert.pem"
#define PKI_SERVER_CRT PKI_ORG1 "peers/peer0.org1.example.com/tls/server.crt"
#define PKI_SERVER_KEY PKI_ORG1 "peers/peer0.org1.example.com/tls/server.key"
#define PKI_CLIENT1_CRT PKI_ORG1 "users/client1@org1.example.com/tls/client.crt"
#define PKI_CLIENT1_KEY PKI_ORG1 "users/client1@org1.example.com/tls/client.key"
#define PKI_CLIENT2_CRT PKI_ORG2 "users/client1@org2.example.com/tls/client.crt"
#define PKI_CLIENT2_KEY PKI_ORG2 "users/client1@org2.example.com/tls/client.key"
#define PKI_SERVER_CN "peer0.org1.example.com"
#define PKI_CLIENT1_CN "client1@org1.example.com"

static char g_pki[512];
static char g_paths[8][640];
enum { P_ORG1_CA, P_ORG2_CA, P_SRV_CRT, P_SRV_KEY, P_C1_CRT, P_C1_KEY, P_C2_CRT, P_C2_KEY };

static void pki_init(void) {
  const char *d = getenv("FL_NET_PKI_DIR");
  snprintf(g_pki, sizeof(g_pki), "%s", d ? d : "pki");
  const char *rel[8] = {PKI_ORG1_CA,  PKI_ORG2_CA,     PKI_SERVER_CRT,  PKI_SERVER_KEY,
                        PKI_CLIENT1_CRT, PKI_CLIENT1_KEY, PKI_CLIENT2_CRT, PKI_CLIENT2_KEY};
  for (int i = 0; i < 8; i++) snprintf(g_paths[i], sizeof(g_paths[i]), "%s/%s", g_pki, rel[i]);
}

static const char *g_org1_cas[1];

static fl_tls_config_t server_tls(void) {
  g_org1_cas[0] = g_paths[P_ORG1_CA];
  return (fl_tls_config_t){.cert_file = g_paths[P_SRV_CRT], .key_file = g_paths[P_SRV_KEY],
                           .ca_files = g_org1_cas, .n_ca_files = 1};
}

static fl_tls_config_t client_tls(int org) {
  g_org1_cas[0] = g_paths[P_ORG1_CA];
  return (fl_tls_config_t){.cert_file = g_paths[org == 1 ? P_C1_CRT : P_C2_CRT],
                           .key_file = g_paths[org == 1 ? P_C1_KEY : P_C2_KEY],
                           .ca_files = g_org1_cas, .n_ca_files = 1,
                           .server_name = "localhost"};
}

/* ---- helpers ---- */

static void fill(uint8_t *p, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = (uint8_t)x;
  }
}

static void sleep_us(long us) {
  struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

static void run_until(uv_loop_t *loop, const bool *flag) {
  while (!*flag) uv_run(loop, UV_RUN_ONCE);
}

/* ======================================================================== */
/* frame codec                                                               */
/* ======================================================================== */

static void test_frame_roundtrip_incremental(void **state) {
  (void)state;
  uint8_t big[70000];
  fill(big, sizeof(big), 7);
  fl_frame_t in[] = {
      {.call_id = 1, .flags = FL_FRAME_REQUEST | FL_FRAME_END_STREAM, .method = "Svc/Do",
       .payload = FL_BUF("abc", 3)},
      {.call_id = 1, .flags = 0, .payload = FL_BUF(big, sizeof(big))},
      {.call_id = 1, .flags = FL_FRAME_END_STREAM},
      {.call_id = 9, .flags = FL_FRAME_ERROR | FL_FRAME_END_STREAM, .status = FL_ENOMETHOD,
       .error = "nope"},
      {.call_id = 0, .flags = FL_FRAME_PING, .payload = FL_BUF("p", 1)},
      {.call_id = 5, .flags = FL_FRAME_CANCEL},
      {.call_id = UINT64_MAX, .flags = 0},
  };
  size_t nin = sizeof(in) / sizeof(in[0]);
  fl_sbuf_t wire = {0};
  for (size_t i = 0; i < nin; i++) {
    size_t before = wire.len;
    assert_int_equal(fl_frame_encode(&wire, &in[i], 0), FL_OK);
    assert_int_equal(wire.len - before, fl_frame_encoded_size(&in[i]));
  }
  /* Feed one byte at a time: frames appear exactly when complete. */
  fl_frame_decoder_t *d = fl_frame_decoder_new(0);
  size_t got = 0;
  for (size_t i = 0; i < wire.len; i++) {
    fl_frame_decoder_feed(d, wire.data + i, 1);
    fl_frame_t *f = NULL;
    fl_status_t rc;
    while ((rc = fl_frame_decoder_next(d, &f)) == FL_OK) {
      assert_true(got < nin);
      assert_int_equal(f->call_id, in[got].call_id);
      assert_int_equal(f->flags, in[got].flags);
      assert_int_equal(f->status, in[got].status);
      if (in[got].method) assert_string_equal(f->method, in[got].method);
      else assert_null(f->method);
      if (in[got].error) assert_string_equal(f->error, in[got].error);
      else assert_null(f->error);
      assert_non_null(f->payload.data);
      assert_true(fl_buf_eq(f->payload, in[got].payload));
      fl_frame_free(f);
      got++;
    }
    assert_int_equal(rc, FL_AGAIN);
  }
  assert_int_equal(got, nin);
  assert_int_equal(fl_frame_decoder_buffered(d), 0);
  fl_frame_decoder_free(d);

  /* The one-shot decoder agrees on the first frame. */
  fl_frame_t *f = NULL;
  size_t used = 0;
  assert_int_equal(fl_frame_decode(wire.data, wire.len, 0, &f, &used, NULL), FL_OK);
  assert_int_equal(used, fl_frame_encoded_size(&in[0]));
  fl_frame_free(f);
  assert_int_equal(fl_frame_decode(wire.data, 3, 0, &f, &used, NULL), FL_AGAIN);
  assert_null(f);
  fl_sbuf_free(&wire);
}

/* Packs a protobuf Frame directly, bypassing our encoder's validation. */
static void pack_raw(fl_sbuf_t *out, uint64_t id, uint32_t flags, int32_t status,
                     const char *method, const char *error) {
  Fl__Rpc__Frame pf;
  fl__rpc__frame__init(&pf);
  char m[300] = "", e[300] = "";
  if (method) snprintf(m, sizeof(m), "%s", method);
  if (error) snprintf(e, sizeof(e), "%s", error);
  pf.call_id = id;
  pf.flags = flags;
  pf.status = status;
  pf.method = m;
  pf.error = e;
  size_t n = fl__rpc__frame__get_packed_size(&pf);
  fl_sbuf_append_be32(out, (uint32_t)n);
  fl_sbuf_reserve(out, n);
  fl__rpc__frame__pack(&pf, out->data + out->len);
  out->len += n;
}

static void test_frame_invalid_flags(void **state) {
  (void)state;
  struct {
    uint64_t id;
    uint32_t flags;
    int32_t status;
    const char *method, *error;
  } bad[] = {
      {1, FL_FRAME_REQUEST, 0, NULL, NULL},                 /* REQUEST without method */
      {0, FL_FRAME_REQUEST, 0, "A/B", NULL},                /* REQUEST without call id */
      {1, FL_FRAME_REQUEST | FL_FRAME_CANCEL, 0, "A/B", NULL},
      {1, FL_FRAME_REQUEST, 0, "has space", NULL},
      {1, 64, 0, NULL, NULL},                               /* unknown bit */
      {1, 0, 0, "A/B", NULL},                               /* method on data frame */
      {1, FL_FRAME_ERROR, 0, NULL, "x"},                    /* ERROR without status */
      {1, 0, -3, NULL, NULL},                               /* status without ERROR */
      {3, FL_FRAME_PING, 0, NULL, NULL},                    /* PING with call id */
      {0, FL_FRAME_PING | FL_FRAME_PONG, 0, NULL, NULL},
      {0, FL_FRAME_CANCEL, 0, NULL, NULL},                  /* CANCEL without call id */
      {0, 0, 0, NULL, NULL},                                /* data frame, call id 0 */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    fl_frame_t f = {.call_id = bad[i].id, .flags = bad[i].flags, .status = bad[i].status,
                    .method = bad[i].method, .error = bad[i].error};
    const char *why = NULL;
    assert_int_equal(fl_frame_validate(&f, &why), FL_EMALFORMED);
    assert_non_null(why);
    fl_sbuf_t out = {0};
    assert_int_equal(fl_frame_encode(&out, &f, 0), FL_EINVAL);
    assert_int_equal(out.len, 0);
    pack_raw(&out, bad[i].id, bad[i].flags, bad[i].status, bad[i].method, bad[i].error);
    fl_frame_t *df = NULL;
    char *msg = NULL;
    size_t used = 0;
    assert_int_equal(fl_frame_decode(out.data, out.len, 0, &df, &used, &msg), FL_EMALFORMED);
    assert_null(df);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "invalid frame"));
    fl_free(msg);
    fl_sbuf_free(&out);
  }
}

static void test_frame_oversize_and_garbage(void **state) {
  (void)state;
  /* Oversize: decided from the 4 prefix bytes, nothing else buffered. */
  fl_frame_decoder_t *d = fl_frame_decoder_new(1024);
  uint8_t hdr[4];
  fl_put_be32(hdr, 1025);
  fl_frame_decoder_feed(d, hdr, 4);
  fl_frame_t *f = NULL;
  assert_int_equal(fl_frame_decoder_next(d, &f), FL_ETOOBIG);
  assert_null(f);
  assert_non_null(strstr(fl_frame_decoder_error(d), "exceeds maximum"));
  fl_frame_decoder_feed(d, (const uint8_t *)"more", 4);
  assert_int_equal(fl_frame_decoder_next(d, &f), FL_ETOOBIG); /* sticky */
  fl_frame_decoder_free(d);

  fl_put_be32(hdr, 0x7fffffffu);
  size_t used = 0;
  char *msg = NULL;
  assert_int_equal(fl_frame_decode(hdr, 4, 0, &f, &used, &msg), FL_ETOOBIG);
  fl_free(msg);

  /* Garbage after a valid length. */
  uint8_t g[14] = {0, 0, 0, 10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  d = fl_frame_decoder_new(0);
  fl_frame_decoder_feed(d, g, sizeof(g));
  assert_int_equal(fl_frame_decoder_next(d, &f), FL_EMALFORMED);
  assert_non_null(strstr(fl_frame_decoder_error(d), "not a valid"));
  fl_frame_decoder_free(d);

  /* Encoder refuses a frame over the limit. */
  uint8_t p[200] = {0};
  fl_frame_t big = {.call_id = 1, .payload = FL_BUF(p, sizeof(p))};
  fl_sbuf_t out = {0};
  assert_int_equal(fl_frame_encode(&out, &big, 100), FL_ETOOBIG);
  assert_int_equal(out.len, 0);
  /* An empty frame (L = 0) is a valid protobuf but call id 0 data: malformed. */
  uint8_t z[4] = {0};
  assert_int_equal(fl_frame_decode(z, 4, 0, &f, &used, NULL), FL_EMALFORMED);
  fl_sbuf_free(&out);
}

/* ======================================================================== */
/* loop helpers                                                              */
/* ======================================================================== */

typedef struct post_ctx_s {
  fl_loop_poster_t *p;
  pthread_t loop_thread;
  int count;
  bool wrong_thread;
  bool done;
} post_ctx_t;

static void post_fn(void *arg) {
  post_ctx_t *c = arg;
  if (!pthread_equal(pthread_self(), c->loop_thread)) c->wrong_thread = true;
  c->count++;
  if (c->count == 4 * 5000) c->done = true;
}

static void *poster_thread(void *arg) {
  post_ctx_t *c = arg;
  for (int i = 0; i < 5000; i++) assert_int_equal(fl_loop_post(c->p, post_fn, c), FL_OK);
  return NULL;
}

static void test_loop_post_from_threads(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  post_ctx_t c = {.loop_thread = pthread_self()};
  assert_int_equal(fl_loop_poster_new(&loop, &c.p), FL_OK);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, poster_thread, &c);
  run_until(&loop, &c.done);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  assert_int_equal(c.count, 20000);
  assert_false(c.wrong_thread);
  fl_loop_poster_close(c.p);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

typedef struct work_ctx_s {
  pthread_t loop_thread;
  int done;
  int on_loop_work;
  int off_loop_done;
  uint64_t sums[32];
} work_ctx_t;

typedef struct work_item_s {
  work_ctx_t *c;
  int i;
  pthread_t ran_on;
} work_item_t;

static void work_fn(void *arg) {
  work_item_t *w = arg;
  w->ran_on = pthread_self();
  uint64_t s = 0;
  for (int k = 0; k < 100000; k++) s += (uint64_t)k * (uint64_t)(w->i + 1);
  w->c->sums[w->i] = s;
}

static void work_done(void *arg, fl_status_t st) {
  work_item_t *w = arg;
  assert_int_equal(st, FL_OK);
  if (pthread_equal(w->ran_on, w->c->loop_thread)) w->c->on_loop_work++;
  if (!pthread_equal(pthread_self(), w->c->loop_thread)) w->c->off_loop_done++;
  w->c->done++;
  fl_free(w);
}

static void test_worker_submit(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  work_ctx_t c = {.loop_thread = pthread_self()};
  for (int i = 0; i < 32; i++) {
    work_item_t *w = fl_malloc(sizeof(*w));
    *w = (work_item_t){.c = &c, .i = i};
    assert_int_equal(fl_worker_submit(&loop, work_fn, work_done, w), FL_OK);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(c.done, 32);
  assert_int_equal(c.on_loop_work, 0);
  assert_int_equal(c.off_loop_done, 0);
  for (int i = 0; i < 32; i++) assert_int_equal(c.sums[i], 4999950000ull * (uint64_t)(i + 1));
  uv_loop_close(&loop);
}

/* ======================================================================== */
/* TLS engine in memory                                                      */
/* ======================================================================== */

static void pump(fl_tls_t *a, fl_tls_t *b) {
  uint8_t buf[65536];
  size_t n;
  while ((n = fl_tls_drain(a, buf, sizeof(buf))) > 0) fl_tls_feed(b, buf, n);
}

/* Runs both handshakes to completion or failure; returns the two statuses. */
static void handshake_pair(fl_tls_t *cl, fl_tls_t *sv, fl_status_t *crc, fl_status_t *src) {
  *crc = *src = FL_AGAIN;
  for (int round = 0; round < 10; round++) {
    if (*crc == FL_AGAIN) *crc = fl_tls_handshake(cl);
    pump(cl, sv);
    if (*src == FL_AGAIN) *src = fl_tls_handshake(sv);
    pump(sv, cl);
    if (*crc != FL_AGAIN && *src != FL_AGAIN) break;
  }
}

static void test_tls_engine(void **state) {
  (void)state;
  fl_tls_config_t scfg = server_tls(), ccfg = client_tls(1);
  fl_tls_ctx_t *sctx = NULL, *cctx = NULL;
  char *err = NULL;
  assert_int_equal(fl_tls_ctx_new(&scfg, true, &sctx, &err), FL_OK);
  assert_int_equal(fl_tls_ctx_new(&ccfg, false, &cctx, &err), FL_OK);

  /* Success: both see each other's certificate. */
  fl_tls_t *cl = fl_tls_new(cctx), *sv = fl_tls_new(sctx);
  fl_status_t crc, src;
  handshake_pair(cl, sv, &crc, &src);
  assert_int_equal(crc, FL_OK);
  assert_int_equal(src, FL_OK);
  assert_string_equal(fl_tls_peer_cn(sv), PKI_CLIENT1_CN);
  assert_string_equal(fl_tls_peer_cn(cl), PKI_SERVER_CN);
  fl_buf_t der = fl_tls_peer_der(sv);
  const unsigned char *p = der.data;
  X509 *x = d2i_X509(NULL, &p, (long)der.len);
  assert_non_null(x);
  X509_free(x);
  assert_int_equal(fl_tls_write(cl, (const uint8_t *)"hello", 5), FL_OK);
  pump(cl, sv);
  uint8_t buf[64];
  size_t n = 0;
  assert_int_equal(fl_tls_read(sv, buf, sizeof(buf), &n), FL_OK);
  assert_int_equal(n, 5);
  assert_memory_equal(buf, "hello", 5);
  assert_int_equal(fl_tls_read(sv, buf, sizeof(buf), &n), FL_AGAIN);
  fl_tls_free(cl);
  fl_tls_free(sv);

  /* A client certificate from org2 (unknown CA): the server refuses it. */
  fl_tls_config_t c2 = client_tls(2);
  fl_tls_ctx_t *c2ctx = NULL;
  assert_int_equal(fl_tls_ctx_new(&c2, false, &c2ctx, NULL), FL_OK);
  cl = fl_tls_new(c2ctx);
  sv = fl_tls_new(sctx);
  handshake_pair(cl, sv, &crc, &src);
  assert_int_equal(src, FL_EUNTRUSTED);
  /* TLS 1.3: the client learns it from the alert on its next read. */
  if (crc == FL_OK) {
    assert_int_equal(fl_tls_read(cl, buf, sizeof(buf), &n), FL_EUNTRUSTED);
  } else {
    assert_int_equal(crc, FL_EUNTRUSTED);
  }
  fl_tls_free(cl);
  fl_tls_free(sv);
  fl_tls_ctx_free(c2ctx);

  /* Host name mismatch: the client refuses the server. */
  fl_tls_config_t cw = client_tls(1);
  cw.server_name = "wrong.example";
  fl_tls_ctx_t *cwctx = NULL;
  assert_int_equal(fl_tls_ctx_new(&cw, false, &cwctx, NULL), FL_OK);
  cl = fl_tls_new(cwctx);
  sv = fl_tls_new(sctx);
  handshake_pair(cl, sv, &crc, &src);
  assert_int_equal(crc, FL_EUNTRUSTED);
  assert_non_null(strstr(fl_tls_error(cl), "verif"));
  fl_tls_free(cl);
  fl_tls_free(sv);
  fl_tls_ctx_free(cwctx);

  /* Bad configuration is reported, not crashed on. */
  fl_tls_config_t bad = client_tls(1);
  bad.key_file = g_paths[P_C2_KEY]; /* does not match the certificate */
  fl_tls_ctx_t *bctx = NULL;
  assert_int_equal(fl_tls_ctx_new(&bad, false, &bctx, &err), FL_ECONFIG);
  assert_null(bctx);
  assert_non_null(err);
  fl_free(err);
  bad.key_file = "/nonexistent.pem";
  assert_int_equal(fl_tls_ctx_new(&bad, false, &bctx, &err), FL_ECONFIG);
  fl_free(err);

  fl_tls_ctx_free(sctx);
  fl_tls_ctx_free(cctx);
}

/* ======================================================================== */
/* RPC: server harness on its own thread                                     */
/* ======================================================================== */

#define MAX_HELD 256

typedef struct server_h_s {
  pthread_t th;
  uv_loop_t loop;
  fl_rpc_server_t *srv;
  fl_loop_poster_t *poster;
  bool plaintext;
  size_t hwm, max_frame;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool ready;
  uint16_t port;
  fl_rpc_stats_t final;
  /* loop-thread only (read after join or via run_on_server) */
  fl_rpc_call_t *held[MAX_HELD];
  int nheld;
  int cancel_cbs;
  int eclosed_after_cancel;
  int stream_cancels;
  char last_cn[128];
  size_t last_der_len;
  fl_rpc_call_t *paused;  /* Test/Hold: the call holding its reading paused */
  int hold_first;         /* what fl_rpc_call_pause_reading answered */
  int echoes;             /* Test/Echo calls served */
} server_h;

/* -- handlers -- */

static void h_echo(fl_rpc_call_t *call, void *arg) {
  server_h *h = arg;
  h->echoes++;
  assert_int_equal(fl_rpc_call_reply(call, FL_OK, fl_rpc_call_request(call)), FL_OK);
}

/* Holds the call unanswered with its connection's reading paused (the
 * orderer's Broadcast flow control); released by hold_release. */
static void h_hold(fl_rpc_call_t *call, void *arg) {
  server_h *h = arg;
  assert_null(h->paused);
  h->paused = call;
  h->hold_first = fl_rpc_call_pause_reading(call, true);
  assert_false(fl_rpc_call_pause_reading(call, true)); /* a second hold is a no-op */
}

typedef struct rev_work_s {
  fl_rpc_call_t *call;
  fl_buf_t in;
  uint8_t *out;
} rev_work_t;

static void rev_run(void *arg) {
  rev_work_t *w = arg;
  for (size_t i = 0; i < w->in.len; i++) w->out[i] = w->in.data[w->in.len - 1 - i];
}

static void rev_done(void *arg, fl_status_t st) {
  rev_work_t *w = arg;
  assert_int_equal(st, FL_OK);
  fl_status_t rc = fl_rpc_call_reply(w->call, FL_OK, FL_BUF(w->out, w->in.len));
  assert_true(rc == FL_OK || rc == FL_ECLOSED);
  fl_free(w->out);
  fl_free(w);
}

/* Reverses the payload on a worker thread, answers from the loop. */
static void h_work_reverse(fl_rpc_call_t *call, void *arg) {
  server_h *h = arg;
  rev_work_t *w = fl_malloc(sizeof(*w));
  w->call = call;
  w->in = fl_rpc_call_request(call);
  w->out = fl_malloc(w->in.len);
  assert_int_equal(fl_worker_submit(&h->loop, rev_run, rev_done, w), FL_OK);
}

static void slow_cancelled(fl_rpc_call_t *call, void *arg) {
  server_h *h = arg;
  h->cancel_cbs++;
  for (int i = 0; i < h->nheld; i++) {
    if (h->held[i] == call) {
      h->held[i] = h->held[--h->nheld];
      break;
    }
  }
  assert_true(fl_rpc_call_cancelled(call));
  if (fl_rpc_call_end(call, FL_OK, NULL) == FL_ECLOSED) h->eclosed_after_cancel++;
}

/* Never answers on its own: completes only when cancelled. */
static void h_slow(fl_rpc_call_t *call, void *arg) {
  server_h *h = arg;
  assert_true(h->nheld < MAX_HELD);
  h->held[h->nheld++] = call;
  fl_rpc_call_on_cancel(call, slow_cancelled, h);
}

static void h_peer(fl_rpc_call_t *call, void *arg) {
  server_h *h = arg;
  snprintf(h->last_cn, sizeof(h->last_cn), "%s", fl_rpc_call_peer_cn(call));
  h->last_der_len = fl_rpc_call_peer_cert(call).len;
  const char *cn = fl_rpc_call_peer_cn(call);
  fl_rpc_call_reply(call, FL_OK, FL_BUF(cn, strlen(cn)));
}

static void h_fail(fl_rpc_call_t *call, void *arg) {
  (void)arg;
  fl_rpc_call_end(call, FL_EPERM, "not allowed here");
}

/* Stream: request = n (be32), size (be32; 0 = varied). Message i is
 * be32(i) followed by bytes (i + k). */
typedef struct pump_s {
  server_h *h;
  uint32_t i, n, size;
  uint8_t *buf;
} pump_t;

static size_t msg_size(uint32_t size, uint32_t i) { return size ? size : 4 + (i * 37u) % 700u; }

static void make_msg(uint8_t *b, size_t len, uint32_t i) {
  fl_put_be32(b, i);
  for (size_t k = 4; k < len; k++) b[k] = (uint8_t)(i + k);
}

static void pump_free(pump_t *p) {
  fl_free(p->buf);
  fl_free(p);
}

static void pump_run(fl_rpc_call_t *call, void *arg) {
  pump_t *p = arg;
  while (p->i < p->n) {
    size_t len = msg_size(p->size, p->i);
    make_msg(p->buf, len, p->i);
    fl_status_t rc = fl_rpc_call_send(call, FL_BUF(p->buf, len));
    if (rc == FL_AGAIN) {
      assert_false(fl_rpc_call_writable(call));
      fl_rpc_call_on_drain(call, pump_run, p);
      return;
    }
    if (rc != FL_OK) {
      fl_rpc_call_end(call, rc, NULL);
      pump_free(p);
      return;
    }
    p->i++;
  }
  assert_int_equal(fl_rpc_call_end(call, FL_OK, NULL), FL_OK);
  pump_free(p);
}

static void pump_cancelled(fl_rpc_call_t *call, void *arg) {
  pump_t *p = arg;
  p->h->stream_cancels++;
  /* The pump only waits for a drain between runs; the drain will not come. */
  assert_int_equal(fl_rpc_call_send(call, FL_BUF("x", 1)), FL_ECLOSED);
  assert_int_equal(fl_rpc_call_end(call, FL_OK, NULL), FL_ECLOSED);
  pump_free(p);
}

static void h_stream(fl_rpc_call_t *call, void *arg) {
  fl_buf_t req = fl_rpc_call_request(call);
  if (req.len != 8) {
    fl_rpc_call_end(call, FL_EINVAL, "want 8 bytes");
    return;
  }
  pump_t *p = fl_calloc(1, sizeof(*p));
  p->h = arg;
  p->n = fl_get_be32(req.data);
  p->size = fl_get_be32(req.data + 4);
  p->buf = fl_malloc(p->size ? p->size : 704);
  fl_rpc_call_on_cancel(call, pump_cancelled, p);
  pump_run(call, p);
}

static void *server_main(void *arg) {
  server_h *h = arg;
  uv_loop_init(&h->loop);
  assert_int_equal(fl_loop_poster_new(&h->loop, &h->poster), FL_OK);
  fl_tls_config_t tls = server_tls();
  fl_rpc_server_opts_t o = {.host = "127.0.0.1", .port = 0, .tls = h->plaintext ? NULL : &tls,
                            .max_frame = h->max_frame, .write_hwm = h->hwm};
  char *err = NULL;
  fl_status_t rc = fl_rpc_server_new(&h->loop, &o, &h->srv, &err);
  if (rc != FL_OK) fprintf(stderr, "server_new: %s\n", err ? err : "");
  assert_int_equal(rc, FL_OK);
  assert_int_equal(fl_rpc_server_handle(h->srv, "Test/Echo", FL_RPC_UNARY, h_echo, h), FL_OK);
  assert_int_equal(fl_rpc_server_handle(h->srv, "Test/Echo", FL_RPC_UNARY, h_echo, h), FL_EEXIST);
  assert_int_equal(fl_rpc_server_handle(h->srv, "bad name", FL_RPC_UNARY, h_echo, h), FL_EINVAL);
  fl_rpc_server_handle(h->srv, "Test/Reverse", FL_RPC_UNARY, h_work_reverse, h);
  fl_rpc_server_handle(h->srv, "Test/Slow", FL_RPC_UNARY, h_slow, h);
  fl_rpc_server_handle(h->srv, "Test/Peer", FL_RPC_UNARY, h_peer, h);
  fl_rpc_server_handle(h->srv, "Test/Fail", FL_RPC_UNARY, h_fail, h);
  fl_rpc_server_handle(h->srv, "Test/Stream", FL_RPC_SERVER_STREAM, h_stream, h);
  fl_rpc_server_handle(h->srv, "Test/Hold", FL_RPC_UNARY, h_hold, h);
  assert_int_equal(fl_rpc_server_start(h->srv), FL_OK);
  pthread_mutex_lock(&h->mu);
  h->port = fl_rpc_server_port(h->srv);
  h->ready = true;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&h->loop), 0);
  return NULL;
}

static server_h *server_start(bool plaintext, size_t hwm, size_t max_frame) {
  server_h *h = fl_calloc(1, sizeof(*h));
  h->plaintext = plaintext;
  h->hwm = hwm;
  h->max_frame = max_frame;
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  pthread_create(&h->th, NULL, server_main, h);
  pthread_mutex_lock(&h->mu);
  while (!h->ready) pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  assert_true(h->port != 0);
  return h;
}

typedef struct on_srv_s {
  server_h *h;
  void (*fn)(server_h *h, void *arg);
  void *arg;
  bool done;
} on_srv_t;

static void on_srv_fn(void *arg) {
  on_srv_t *o = arg;
  o->fn(o->h, o->arg);
  pthread_mutex_lock(&o->h->mu);
  o->done = true;
  pthread_cond_broadcast(&o->h->cv);
  pthread_mutex_unlock(&o->h->mu);
}

/* Runs fn on the server's loop thread and waits for it. */
static void run_on_server(server_h *h, void (*fn)(server_h *, void *), void *arg) {
  on_srv_t o = {.h = h, .fn = fn, .arg = arg};
  assert_int_equal(fl_loop_post(h->poster, on_srv_fn, &o), FL_OK);
  pthread_mutex_lock(&h->mu);
  while (!o.done) pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
}

static void get_stats(server_h *h, void *arg) { fl_rpc_server_stats(h->srv, arg); }
static void get_nheld(server_h *h, void *arg) { *(int *)arg = h->nheld; }

static void srv_closed(fl_rpc_server_t *srv, void *arg) {
  server_h *h = arg;
  fl_rpc_server_stats(srv, &h->final);
  h->srv = NULL;
}

static void stop_fn(server_h *h, void *arg) {
  (void)arg;
  fl_rpc_server_close(h->srv, srv_closed, h);
  fl_loop_poster_close(h->poster);
}

/* Closes the server from its own thread and joins it: the join only returns
 * once the loop ran out of handles, i.e. every handle was closed. */
static void server_stop(server_h *h) {
  run_on_server(h, stop_fn, NULL);
  pthread_join(h->th, NULL);
  assert_null(h->srv);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
}

/* ---- async client on the test loop ---- */

typedef struct conn_wait_s {
  bool done;
  fl_status_t st;
} conn_wait_t;

static void on_conn(fl_rpc_client_t *c, fl_status_t st, void *arg) {
  (void)c;
  conn_wait_t *w = arg;
  w->done = true;
  w->st = st;
}

static fl_rpc_client_t *client_new(uv_loop_t *loop, uint16_t port, int org, bool plaintext,
                                   conn_wait_t *w) {
  fl_tls_config_t tls = client_tls(org);
  fl_rpc_client_opts_t o = {.host = "127.0.0.1", .port = port, .tls = plaintext ? NULL : &tls,
                            .on_connect = on_conn, .arg = w};
  fl_rpc_client_t *c = NULL;
  assert_int_equal(fl_rpc_client_new(loop, &o, &c, NULL), FL_OK);
  return c;
}

static void client_closed(fl_rpc_client_t *c, void *arg) {
  (void)c;
  *(bool *)arg = true;
}

/* client_new, then runs the loop until it is connected (asserted). */
static fl_rpc_client_t *client_connected(uv_loop_t *loop, uint16_t port, bool plaintext) {
  conn_wait_t w = {0};
  fl_rpc_client_t *c = client_new(loop, port, 1, plaintext, &w);
  run_until(loop, &w.done);
  assert_int_equal(w.st, FL_OK);
  return c;
}

static void client_close_wait(uv_loop_t *loop, fl_rpc_client_t *c) {
  bool closed = false;
  fl_rpc_client_close(c, client_closed, &closed);
  run_until(loop, &closed);
}

/* ---- many unary calls with a window of in-flight calls ---- */

typedef struct many_s {
  fl_rpc_client_t *cl;
  int total, next, done, inflight, window, errors;
  bool fixed100, all_done;
  const char *method_even, *method_odd;
} many_t;

typedef struct one_s {
  many_t *m;
  int i;
  bool reverse;
  uint8_t *data;
  size_t len;
} one_t;

static size_t many_size(int i) {
  static const size_t special[] = {0, 1, 65536, 1u << 20, 4u << 20};
  if (i % 1000 == 500) return special[(i / 1000) % 5];
  return (size_t)((i * 131) % 3000);
}

static void many_issue(many_t *m);

static void many_cb(void *arg, fl_status_t st, const char *err, fl_buf_t reply) {
  one_t *o = arg;
  many_t *m = o->m;
  if (st != FL_OK) {
    fprintf(stderr, "call %d failed: %s %s\n", o->i, fl_status_name(st), err ? err : "");
    m->errors++;
  } else if (reply.len != o->len) {
    m->errors++;
  } else if (o->reverse) {
    for (size_t k = 0; k < o->len; k++)
      if (reply.data[k] != o->data[o->len - 1 - k]) {
        m->errors++;
        break;
      }
  } else if (o->len && memcmp(reply.data, o->data, o->len) != 0) {
    m->errors++;
  }
  fl_free(o->data);
  fl_free(o);
  m->inflight--;
  m->done++;
  if (m->done == m->total) m->all_done = true;
  many_issue(m);
}

static void many_issue(many_t *m) {
  while (m->inflight < m->window && m->next < m->total) {
    one_t *o = fl_malloc(sizeof(*o));
    o->m = m;
    o->i = m->next++;
    o->reverse = (o->i % 2) == 1 && strcmp(m->method_odd, "Test/Reverse") == 0;
    o->len = m->fixed100 ? 100 : many_size(o->i);
    o->data = fl_malloc(o->len);
    fill(o->data, o->len, (uint64_t)o->i);
    fl_status_t rc = fl_rpc_client_unary(m->cl, o->reverse ? m->method_odd : m->method_even,
                                         FL_BUF(o->data, o->len), 30000, many_cb, o, NULL);
    assert_int_equal(rc, FL_OK);
    m->inflight++;
  }
}

static double run_many(uv_loop_t *loop, fl_rpc_client_t *cl, int total, bool fixed100,
                       const char *even, const char *odd) {
  many_t m = {.cl = cl, .total = total, .window = 64, .fixed100 = fixed100,
              .method_even = even, .method_odd = odd};
  uint64_t t0 = fl_mono_ns();
  many_issue(&m);
  run_until(loop, &m.all_done);
  double secs = (double)(fl_mono_ns() - t0) / 1e9;
  assert_int_equal(m.errors, 0);
  assert_int_equal(m.done, total);
  return (double)total / secs;
}

static void test_rpc_unary_10k(void **state) {
  (void)state;
  server_h *h = server_start(false, 0, 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  fl_rpc_client_t *cl = client_connected(&loop, h->port, false);
  assert_string_equal(fl_rpc_client_peer_cn(cl), PKI_SERVER_CN);
  assert_true(fl_rpc_client_peer_cert(cl).len > 100);
  /* 10,000 calls, 64 in flight, sizes 0 B .. 4 MiB, sync and worker handlers. */
  run_many(&loop, cl, 10000, false, "Test/Echo", "Test/Reverse");
  fl_rpc_stats_t cs;
  fl_rpc_client_stats(cl, &cs);
  assert_int_equal(cs.calls_completed, 10000);
  /* Pipelining: far fewer writes than frames. */
  assert_true(cs.writes < cs.frames_out);
  client_close_wait(&loop, cl);
  fl_rpc_stats_t ss;
  run_on_server(h, get_stats, &ss);
  assert_int_equal(ss.calls_completed, 10000);
  assert_true(ss.writes < ss.frames_out);
  server_stop(h);
  assert_int_equal(h->final.conns_open, 0);
  fl_free(h);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  uv_loop_close(&loop);
}

static void throughput(bool plaintext) {
  server_h *h = server_start(plaintext, 0, 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  fl_rpc_client_t *cl = client_connected(&loop, h->port, plaintext);
  run_many(&loop, cl, 2000, true, "Test/Echo", "Test/Echo"); /* warm-up */
  double rate = run_many(&loop, cl, 40000, true, "Test/Echo", "Test/Echo");
  fl_rpc_stats_t cs;
  fl_rpc_client_stats(cl, &cs);
  printf("# throughput %s: %.0f unary calls/s (100-byte payload, 64 in flight, "
         "%.1f frames per write)\n",
         plaintext ? "plaintext" : "mutual TLS", rate,
         (double)cs.frames_out / (double)(cs.writes ? cs.writes : 1));
  assert_true(rate > 1000.0);
  client_close_wait(&loop, cl);
  server_stop(h);
  fl_free(h);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

static void test_rpc_throughput(void **state) {
  (void)state;
  throughput(false);
  throughput(true);
}

/* ---- streams ---- */

typedef struct stream_s {
  uint32_t next, size, cancel_at;
  int bad;
  bool ended;
  fl_status_t st;
  fl_rpc_client_t *cl;
  uint64_t id;
} stream_t;

static void st_msg(void *arg, fl_buf_t msg) {
  stream_t *s = arg;
  size_t want = msg_size(s->size, s->next);
  if (msg.len != want || fl_get_be32(msg.data) != s->next) {
    s->bad++;
  } else {
    for (size_t k = 4; k < msg.len; k++)
      if (msg.data[k] != (uint8_t)(s->next + k)) {
        s->bad++;
        break;
      }
  }
  s->next++;
  if (s->cancel_at && s->next == s->cancel_at)
    assert_int_equal(fl_rpc_client_cancel(s->cl, s->id), FL_OK);
}

static void st_end(void *arg, fl_status_t st, const char *err) {
  (void)err;
  stream_t *s = arg;
  assert_false(s->ended); /* exactly once */
  s->ended = true;
  s->st = st;
}

static void stream_req(uint8_t req[8], uint32_t n, uint32_t size) {
  fl_put_be32(req, n);
  fl_put_be32(req + 4, size);
}

typedef struct unary_wait_s {
  int calls;
  fl_status_t st;
  char err[128];
  fl_sbuf_t reply;
} unary_wait_t;

static void uw_cb(void *arg, fl_status_t st, const char *err, fl_buf_t reply) {
  unary_wait_t *u = arg;
  u->calls++;
  u->st = st;
  snprintf(u->err, sizeof(u->err), "%s", err ? err : "");
  fl_sbuf_append(&u->reply, reply.data, reply.len);
}

static void test_rpc_stream_and_cancel(void **state) {
  (void)state;
  server_h *h = server_start(false, 256 * 1024, 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  fl_rpc_client_t *cl = client_connected(&loop, h->port, false);

  /* Two concurrent streams on one connection, each in order. */
  uint8_t r1[8], r2[8];
  stream_req(r1, 20000, 0);
  stream_req(r2, 300, 20000);
  stream_t s1 = {.cl = cl}, s2 = {.size = 20000, .cl = cl};
  assert_int_equal(fl_rpc_client_stream(cl, "Test/Stream", FL_BUF(r1, 8), 30000, st_msg, st_end,
                                        &s1, &s1.id), FL_OK);
  assert_int_equal(fl_rpc_client_stream(cl, "Test/Stream", FL_BUF(r2, 8), 30000, st_msg, st_end,
                                        &s2, &s2.id), FL_OK);
  /* Plus unary calls interleaved on the same connection. */
  unary_wait_t u = {0};
  assert_int_equal(fl_rpc_client_unary(cl, "Test/Echo", FL_BUF("ping", 4), 5000, uw_cb, &u, NULL),
                   FL_OK);
  while (!(s1.ended && s2.ended && u.calls == 1)) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(s1.st, FL_OK);
  assert_int_equal(s1.next, 20000);
  assert_int_equal(s1.bad, 0);
  assert_int_equal(s2.st, FL_OK);
  assert_int_equal(s2.next, 300);
  assert_int_equal(s2.bad, 0);
  assert_int_equal(u.st, FL_OK);
  assert_int_equal(u.reply.len, 4);
  fl_sbuf_free(&u.reply);

  /* The client cancels a long stream after 50 messages. */
  uint8_t r3[8];
  stream_req(r3, 1000000, 1000);
  stream_t s3 = {.size = 1000, .cancel_at = 50, .cl = cl};
  assert_int_equal(fl_rpc_client_stream(cl, "Test/Stream", FL_BUF(r3, 8), 30000, st_msg, st_end,
                                        &s3, &s3.id), FL_OK);
  run_until(&loop, &s3.ended);
  assert_int_equal(s3.st, FL_ECANCELED);
  assert_int_equal(s3.next, 50);
  assert_int_equal(fl_rpc_client_cancel(cl, s3.id), FL_NOTFOUND);
  /* The server saw the cancellation (its pump stopped with FL_ECLOSED). */
  for (int i = 0; i < 200; i++) {
    fl_rpc_stats_t ss;
    run_on_server(h, get_stats, &ss);
    if (h->stream_cancels == 1) break;
    uv_run(&loop, UV_RUN_NOWAIT);
    sleep_us(10000);
  }
  assert_int_equal(h->stream_cancels, 1);

  /* A handler error reaches the client with its status and message. */
  u = (unary_wait_t){0};
  fl_rpc_client_unary(cl, "Test/Fail", FL_BUF("", 0), 5000, uw_cb, &u, NULL);
  while (u.calls == 0) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(u.st, FL_EPERM);
  assert_string_equal(u.err, "not allowed here");
  fl_sbuf_free(&u.reply);

  client_close_wait(&loop, cl);
  server_stop(h);
  fl_free(h);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

/* ---- blocking client, identity, refusal ---- */

static int count_msgs(void *arg, fl_buf_t msg) {
  (void)msg;
  int *n = arg;
  return ++*n == 10 ? 1 : 0; /* stop after 10 */
}

static fl_rpc_client_opts_t sync_opts(uint16_t port, fl_tls_config_t *tls) {
  return (fl_rpc_client_opts_t){.host = "127.0.0.1", .port = port, .tls = tls};
}

static void test_rpc_sync_identity_refusal(void **state) {
  (void)state;
  server_h *h = server_start(false, 0, 0);
  fl_tls_config_t t1 = client_tls(1);
  fl_rpc_client_opts_t o = sync_opts(h->port, &t1);
  fl_rpc_sync_t *s = NULL;
  char *err = NULL;
  assert_int_equal(fl_rpc_sync_connect(&o, 5000, &s, &err), FL_OK);
  fl_sbuf_t reply = {0};
  assert_int_equal(fl_rpc_sync_unary(s, "Test/Peer", FL_BUF("", 0), 5000, &reply, &err), FL_OK);
  assert_int_equal(reply.len, strlen(PKI_CLIENT1_CN));
  assert_memory_equal(reply.data, PKI_CLIENT1_CN, reply.len);
  reply.len = 0;
  /* Unknown method: an error answer, and the connection stays usable. */
  assert_int_equal(fl_rpc_sync_unary(s, "Test/Nope", FL_BUF("", 0), 5000, &reply, &err),
                   FL_ENOMETHOD);
  assert_non_null(err);
  assert_non_null(strstr(err, "Test/Nope"));
  fl_free(err);
  assert_int_equal(fl_rpc_sync_unary(s, "Test/Echo", FL_BUF("ok", 2), 5000, &reply, NULL), FL_OK);
  assert_int_equal(reply.len, 2);
  /* A stream stopped by the callback. */
  uint8_t req[8];
  stream_req(req, 1000, 100);
  int n = 0;
  assert_int_equal(fl_rpc_sync_stream(s, "Test/Stream", FL_BUF(req, 8), 5000, count_msgs, &n,
                                      NULL), FL_ECANCELED);
  assert_int_equal(n, 10);
  stream_req(req, 77, 10);
  n = -1000;
  assert_int_equal(fl_rpc_sync_stream(s, "Test/Stream", FL_BUF(req, 8), 5000, count_msgs, &n,
                                      NULL), FL_OK);
  assert_int_equal(n, -1000 + 77);
  /* Timeout: the slow handler never answers; the call fails exactly once. */
  uint64_t t0 = fl_mono_ns();
  assert_int_equal(fl_rpc_sync_unary(s, "Test/Slow", FL_BUF("", 0), 200, &reply, NULL),
                   FL_ETIMEDOUT);
  uint64_t ms = (fl_mono_ns() - t0) / 1000000;
  assert_true(ms >= 190 && ms < 3000);
  /* ...and the server got the CANCEL and released the handler's call. */
  assert_int_equal(fl_rpc_sync_unary(s, "Test/Echo", FL_BUF("x", 1), 5000, &reply, NULL), FL_OK);
  run_on_server(h, get_stats, &(fl_rpc_stats_t){0});
  assert_int_equal(h->nheld, 0);
  assert_int_equal(h->cancel_cbs, 1);
  assert_int_equal(h->eclosed_after_cancel, 1);
  /* After an idle spell longer than the timeout, the next call still gets
   * its whole timeout (the sync loop's clock is refreshed per call). */
  sleep_us(400000);
  t0 = fl_mono_ns();
  assert_int_equal(fl_rpc_sync_unary(s, "Test/Slow", FL_BUF("", 0), 300, &reply, NULL),
                   FL_ETIMEDOUT);
  ms = (fl_mono_ns() - t0) / 1000000;
  assert_true(ms >= 290 && ms < 3000);
  fl_sbuf_free(&reply);
  fl_rpc_sync_close(s);
  assert_string_equal(h->last_cn, PKI_CLIENT1_CN);
  assert_true(h->last_der_len > 100);

  /* A client whose certificate comes from org2 (not trusted): refused. */
  fl_rpc_stats_t before, after;
  run_on_server(h, get_stats, &before);
  fl_tls_config_t t2 = client_tls(2);
  o = sync_opts(h->port, &t2);
  fl_status_t rc = fl_rpc_sync_connect(&o, 5000, &s, &err);
  if (rc == FL_OK) {
    /* TLS 1.3: the refusal arrives right after the client's Finished. */
    rc = fl_rpc_sync_unary(s, "Test/Echo", FL_BUF("x", 1), 5000, &reply, NULL);
    fl_rpc_sync_close(s);
  } else {
    fl_free(err);
  }
  assert_int_equal(rc, FL_EUNTRUSTED);
  run_on_server(h, get_stats, &after);
  assert_int_equal(after.handshake_failures, before.handshake_failures + 1);
  assert_int_equal(after.calls_started, before.calls_started);

  /* Client side check of the server name. */
  fl_tls_config_t tw = client_tls(1);
  tw.server_name = "not-the-server.example";
  o = sync_opts(h->port, &tw);
  assert_int_equal(fl_rpc_sync_connect(&o, 5000, &s, &err), FL_EUNTRUSTED);
  assert_null(s);
  fl_free(err);
  fl_sbuf_free(&reply);
  server_stop(h);
  fl_free(h);

  /* Nothing listens on the port any more. */
  o = sync_opts(1, &t1);
  assert_int_equal(fl_rpc_sync_connect(&o, 5000, &s, &err), FL_ECONNREFUSED);
  fl_free(err);
}

/* ---- raw blocking TLS client for hostile input ---- */

typedef struct raw_s {
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;
} raw_t;

static int raw_connect(raw_t *r, uint16_t port, bool with_cert) {
  memset(r, 0, sizeof(*r));
  r->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(r->fd, (struct sockaddr *)&a, sizeof(a)) != 0) return -1;
  struct timeval tv = {.tv_sec = 10};
  setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  r->ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(r->ctx, TLS1_3_VERSION);
  SSL_CTX_load_verify_locations(r->ctx, g_paths[P_ORG1_CA], NULL);
  SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
  if (with_cert) {
    SSL_CTX_use_certificate_chain_file(r->ctx, g_paths[P_C1_CRT]);
    SSL_CTX_use_PrivateKey_file(r->ctx, g_paths[P_C1_KEY], SSL_FILETYPE_PEM);
  }
  r->ssl = SSL_new(r->ctx);
  SSL_set_fd(r->ssl, r->fd);
  return SSL_connect(r->ssl) == 1 ? 0 : -1;
}

static void raw_close(raw_t *r) {
  if (r->ssl) SSL_free(r->ssl);
  if (r->ctx) SSL_CTX_free(r->ctx);
  if (r->fd > 0) close(r->fd);
}

static bool raw_write(raw_t *r, const void *p, size_t n) {
  size_t w = 0;
  return SSL_write_ex(r->ssl, p, n, &w) == 1 && w == n;
}

static bool raw_read_n(raw_t *r, uint8_t *p, size_t n) {
  while (n > 0) {
    size_t got = 0;
    if (SSL_read_ex(r->ssl, p, n, &got) != 1) return false;
    p += got;
    n -= got;
  }
  return true;
}

/* Reads one frame; FL_ECLOSED on EOF or error. */
static fl_status_t raw_read_frame(raw_t *r, fl_frame_t **out) {
  uint8_t hdr[4];
  *out = NULL;
  if (!raw_read_n(r, hdr, 4)) return FL_ECLOSED;
  uint32_t l = fl_get_be32(hdr);
  if (l > (64u << 20)) return FL_ETOOBIG;
  uint8_t *buf = fl_malloc(4 + l);
  memcpy(buf, hdr, 4);
  if (!raw_read_n(r, buf + 4, l)) {
    fl_free(buf);
    return FL_ECLOSED;
  }
  size_t used = 0;
  fl_status_t rc = fl_frame_decode(buf, 4 + l, 64u << 20, out, &used, NULL);
  fl_free(buf);
  return rc;
}

static void raw_send_frame(raw_t *r, const fl_frame_t *f) {
  fl_sbuf_t b = {0};
  assert_int_equal(fl_frame_encode(&b, f, 0), FL_OK);
  assert_true(raw_write(r, b.data, b.len));
  fl_sbuf_free(&b);
}

static void good_client_works(fl_rpc_sync_t *s, int i) {
  uint8_t p[300];
  fill(p, sizeof(p), (uint64_t)i);
  fl_sbuf_t reply = {0};
  assert_int_equal(fl_rpc_sync_unary(s, "Test/Echo", FL_BUF(p, sizeof(p)), 5000, &reply, NULL),
                   FL_OK);
  assert_int_equal(reply.len, sizeof(p));
  assert_memory_equal(reply.data, p, sizeof(p));
  fl_sbuf_free(&reply);
}

static void test_rpc_hostile_clients(void **state) {
  (void)state;
  server_h *h = server_start(false, 0, 1 << 20);
  /* A well-behaved client stays connected through all of it. */
  fl_tls_config_t t1 = client_tls(1);
  fl_rpc_client_opts_t o = sync_opts(h->port, &t1);
  fl_rpc_sync_t *good = NULL;
  assert_int_equal(fl_rpc_sync_connect(&o, 5000, &good, NULL), FL_OK);
  good_client_works(good, 1);

  /* 1. Garbage after a valid length: error frame, then close. */
  raw_t r;
  assert_int_equal(raw_connect(&r, h->port, true), 0);
  uint8_t garbage[4 + 12] = {0, 0, 0, 12};
  memset(garbage + 4, 0xff, 12);
  assert_true(raw_write(&r, garbage, sizeof(garbage)));
  fl_frame_t *f = NULL;
  assert_int_equal(raw_read_frame(&r, &f), FL_OK);
  assert_int_equal(f->flags & FL_FRAME_ERROR, FL_FRAME_ERROR);
  assert_int_equal(f->status, FL_EMALFORMED);
  assert_int_equal(f->call_id, 0);
  fl_frame_free(f);
  assert_int_equal(raw_read_frame(&r, &f), FL_ECLOSED);
  raw_close(&r);
  good_client_works(good, 2);

  /* 2. A length over the server's 1 MiB limit. */
  assert_int_equal(raw_connect(&r, h->port, true), 0);
  uint8_t hdr[4];
  fl_put_be32(hdr, (1u << 20) + 1);
  assert_true(raw_write(&r, hdr, 4));
  assert_int_equal(raw_read_frame(&r, &f), FL_OK);
  assert_int_equal(f->status, FL_ETOOBIG);
  assert_non_null(strstr(f->error, "exceeds maximum"));
  fl_frame_free(f);
  assert_int_equal(raw_read_frame(&r, &f), FL_ECLOSED);
  raw_close(&r);
  good_client_works(good, 3);

  /* 3. Unknown method and duplicate-free pipelining on a raw connection:
   *    the error is per call and the connection keeps serving. */
  assert_int_equal(raw_connect(&r, h->port, true), 0);
  raw_send_frame(&r, &(fl_frame_t){.call_id = 7, .flags = FL_FRAME_REQUEST, .method = "No/Such"});
  raw_send_frame(&r, &(fl_frame_t){.call_id = 8, .flags = FL_FRAME_REQUEST, .method = "Test/Echo",
                                   .payload = FL_BUF("hi", 2)});
  raw_send_frame(&r, &(fl_frame_t){.flags = FL_FRAME_PING, .payload = FL_BUF("pp", 2)});
  assert_int_equal(raw_read_frame(&r, &f), FL_OK);
  assert_int_equal(f->call_id, 7);
  assert_int_equal(f->status, FL_ENOMETHOD);
  fl_frame_free(f);
  assert_int_equal(raw_read_frame(&r, &f), FL_OK);
  assert_int_equal(f->call_id, 8);
  assert_int_equal(f->flags, FL_FRAME_END_STREAM);
  assert_true(fl_buf_eq(f->payload, FL_BUF("hi", 2)));
  fl_frame_free(f);
  assert_int_equal(raw_read_frame(&r, &f), FL_OK);
  assert_int_equal(f->flags, FL_FRAME_PONG);
  assert_true(fl_buf_eq(f->payload, FL_BUF("pp", 2)));
  fl_frame_free(f);
  /* A frame with invalid flags (REQUEST without method) closes it. */
  uint8_t bad[] = {0, 0, 0, 4, 0x08, 0x05, 0x18, 0x01}; /* call_id 5, flags REQUEST */
  assert_true(raw_write(&r, bad, sizeof(bad)));
  assert_int_equal(raw_read_frame(&r, &f), FL_OK);
  assert_int_equal(f->status, FL_EMALFORMED);
  fl_frame_free(f);
  assert_int_equal(raw_read_frame(&r, &f), FL_ECLOSED);
  raw_close(&r);
  good_client_works(good, 4);

  /* 4. No client certificate: refused at the handshake. */
  fl_rpc_stats_t before, after;
  run_on_server(h, get_stats, &before);
  int hs = raw_connect(&r, h->port, false);
  if (hs == 0) {
    /* TLS 1.3 client finished first; the refusal shows on the next read. */
    raw_send_frame(&r, &(fl_frame_t){.call_id = 1, .flags = FL_FRAME_REQUEST,
                                     .method = "Test/Echo"});
    assert_int_equal(raw_read_frame(&r, &f), FL_ECLOSED);
  }
  raw_close(&r);
  good_client_works(good, 5);
  run_on_server(h, get_stats, &after);
  assert_int_equal(after.handshake_failures, before.handshake_failures + 1);
  assert_int_equal(after.calls_started, before.calls_started + 1); /* only the good client's */
  assert_int_equal(after.protocol_errors, 3);

  fl_rpc_sync_close(good);
  server_stop(h);
  fl_free(h);
}

/* ---- backpressure: a client that does not read ---- */

static void test_rpc_backpressure(void **state) {
  (void)state;
  const size_t hwm = 256 * 1024, msg = 64 * 1024;
  const uint32_t count = 1024; /* 64 MiB in total, far beyond socket buffers */
  server_h *h = server_start(false, hwm, 0);
  raw_t r;
  assert_int_equal(raw_connect(&r, h->port, true), 0);
  uint8_t req[8];
  stream_req(req, count, (uint32_t)msg);
  raw_send_frame(&r, &(fl_frame_t){.call_id = 1, .flags = FL_FRAME_REQUEST | FL_FRAME_END_STREAM,
                                   .method = "Test/Stream", .payload = FL_BUF(req, 8)});
  sleep_us(500 * 1000); /* do not read: the server must stop, not buffer */
  fl_rpc_stats_t mid;
  run_on_server(h, get_stats, &mid);
  assert_true(mid.write_stalls > 0);
  assert_true(mid.read_pauses > 0);
  assert_true(mid.queued_bytes_max <= hwm + msg + FL_FRAME_HEADER + FL_FRAME_OVERHEAD);
  /* Now read everything, in order. */
  uint8_t *expect = fl_malloc(msg);
  for (uint32_t i = 0; i < count; i++) {
    fl_frame_t *f = NULL;
    assert_int_equal(raw_read_frame(&r, &f), FL_OK);
    assert_int_equal(f->flags, 0);
    assert_int_equal(f->payload.len, msg);
    make_msg(expect, msg, i);
    assert_memory_equal(f->payload.data, expect, msg);
    fl_frame_free(f);
  }
  fl_frame_t *f = NULL;
  assert_int_equal(raw_read_frame(&r, &f), FL_OK);
  assert_int_equal(f->flags, FL_FRAME_END_STREAM);
  fl_frame_free(f);
  fl_free(expect);
  raw_close(&r);
  fl_rpc_stats_t end;
  run_on_server(h, get_stats, &end);
  printf("# backpressure: hwm=%zu queued_max=%llu stalls=%llu pauses=%llu\n", hwm,
         (unsigned long long)end.queued_bytes_max, (unsigned long long)end.write_stalls,
         (unsigned long long)end.read_pauses);
  assert_true(end.queued_bytes_max <= hwm + msg + FL_FRAME_HEADER + FL_FRAME_OVERHEAD);
  server_stop(h);
  fl_free(h);
}

/* ---- server close with calls in flight ---- */

typedef struct close_s {
  int unary_done, unary_bad;
  int stream_ended;
} close_t;

static void close_unary_cb(void *arg, fl_status_t st, const char *err, fl_buf_t reply) {
  (void)err;
  (void)reply;
  close_t *c = arg;
  c->unary_done++;
  if (st != FL_ECANCELED && st != FL_ECLOSED) c->unary_bad++;
}

static void close_msg(void *arg, fl_buf_t m) {
  (void)arg;
  (void)m;
}

static void close_end(void *arg, fl_status_t st, const char *err) {
  (void)err;
  close_t *c = arg;
  c->stream_ended++;
  if (st != FL_ECANCELED && st != FL_ECLOSED) c->unary_bad++;
}

/* ---- fl_rpc_call_pause_reading: a held call stops its connection ---- */

static void get_hold(server_h *h, void *arg) {
  int *v = arg;
  v[0] = h->paused != NULL;
  v[1] = h->hold_first;
  v[2] = h->echoes;
}

static void hold_release(server_h *h, void *arg) {
  (void)arg;
  fl_rpc_call_t *call = h->paused;
  h->paused = NULL;
  assert_true(fl_rpc_call_pause_reading(call, false)); /* the last hold: reading resumes */
  assert_int_equal(fl_rpc_call_reply(call, FL_OK, FL_BUF("held", 4)), FL_OK);
}

typedef struct pr_s {
  int done;
  fl_status_t st[2];
} pr_t;

static void pr_cb0(void *arg, fl_status_t st, const char *errmsg, fl_buf_t reply) {
  (void)errmsg;
  (void)reply;
  pr_t *p = arg;
  p->st[0] = st;
  p->done |= 1;
}
static void pr_cb1(void *arg, fl_status_t st, const char *errmsg, fl_buf_t reply) {
  (void)errmsg;
  (void)reply;
  pr_t *p = arg;
  p->st[1] = st;
  p->done |= 2;
}

static void test_rpc_pause_reading(void **state) {
  (void)state;
  server_h *h = server_start(false, 64 * 1024, 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  fl_rpc_client_t *cl = client_connected(&loop, h->port, false);
  pr_t p = {0};
  int v[3] = {0};
  /* 1. A is held and pauses the connection's reading. */
  assert_int_equal(fl_rpc_client_unary(cl, "Test/Hold", FL_BUF("a", 1), 0, pr_cb0, &p, NULL),
                   FL_OK);
  for (int i = 0; i < 500 && !v[0]; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    run_on_server(h, get_hold, v);
    sleep_us(2000);
  }
  assert_int_equal(v[0], 1);
  assert_int_equal(v[1], 1); /* the first hold stopped reading */
  /* 2. B, sent after A was read, is not read while A holds: 300 ms. */
  assert_int_equal(fl_rpc_client_unary(cl, "Test/Echo", FL_BUF("b", 1), 0, pr_cb1, &p, NULL),
                   FL_OK);
  for (int i = 0; i < 150; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    sleep_us(2000);
  }
  run_on_server(h, get_hold, v);
  assert_int_equal(v[2], 0);
  assert_int_equal(p.done, 0);
  /* 3. A released and answered: reading resumes, B is served. */
  run_on_server(h, hold_release, NULL);
  while (p.done != 3) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(p.st[0], FL_OK);
  assert_int_equal(p.st[1], FL_OK);
  run_on_server(h, get_hold, v);
  assert_int_equal(v[2], 1);
  client_close_wait(&loop, cl);
  server_stop(h);
  fl_free(h);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  uv_loop_close(&loop);
}

static void test_rpc_server_close_inflight(void **state) {
  (void)state;
  server_h *h = server_start(false, 64 * 1024, 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  conn_wait_t w = {0};
  fl_tls_config_t tls = client_tls(1);
  fl_rpc_client_opts_t o = {.host = "localhost", .port = h->port, .tls = &tls,
                            .on_connect = on_conn, .arg = &w};
  fl_rpc_client_t *cl = NULL;
  assert_int_equal(fl_rpc_client_new(&loop, &o, &cl, NULL), FL_OK); /* resolves "localhost" */
  close_t c = {0};
  for (int i = 0; i < 20; i++)
    assert_int_equal(fl_rpc_client_unary(cl, "Test/Slow", FL_BUF("", 0), 0, close_unary_cb, &c,
                                         NULL), FL_OK);
  /* A stream the client is slow to read: the server is mid-stream. */
  uint8_t req[8];
  stream_req(req, 1000000, 4096);
  assert_int_equal(fl_rpc_client_stream(cl, "Test/Stream", FL_BUF(req, 8), 0, close_msg, close_end,
                                        &c, NULL), FL_OK);
  run_until(&loop, &w.done);
  assert_int_equal(w.st, FL_OK);
  /* Wait until all 20 slow calls are held by the server. */
  int held = 0;
  for (int i = 0; i < 500 && held < 20; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    run_on_server(h, get_nheld, &held);
    sleep_us(2000);
  }
  assert_int_equal(held, 20);
  /* Close the server while all of that is in flight. */
  run_on_server(h, stop_fn, NULL);
  while (c.unary_done < 20 || c.stream_ended < 1) uv_run(&loop, UV_RUN_ONCE);
  pthread_join(h->th, NULL); /* returns only when every server handle closed */
  assert_int_equal(c.unary_done, 20);
  assert_int_equal(c.stream_ended, 1);
  assert_int_equal(c.unary_bad, 0);
  assert_int_equal(h->cancel_cbs, 20);
  assert_int_equal(h->eclosed_after_cancel, 20);
  assert_int_equal(h->stream_cancels, 1);
  assert_int_equal(h->final.conns_open, 0);
  /* The client saw the connection go; new calls fail at once, no callback. */
  assert_true(fl_rpc_client_state(cl) < 0);
  assert_int_equal(fl_rpc_client_inflight(cl), 0);
  assert_true(fl_rpc_client_unary(cl, "Test/Echo", FL_BUF("", 0), 0, close_unary_cb, &c, NULL) < 0);
  client_close_wait(&loop, cl);
  assert_int_equal(c.unary_done, 20);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
  fl_free(h);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  uv_loop_close(&loop);
}

/* ---- client-side failures ---- */

static void test_rpc_client_failures(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  /* Find a port nobody listens on: bind, read it, close. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  bind(fd, (struct sockaddr *)&a, sizeof(a));
  socklen_t alen = sizeof(a);
  getsockname(fd, (struct sockaddr *)&a, &alen);
  uint16_t port = ntohs(a.sin_port);
  close(fd);

  conn_wait_t w = {0};
  fl_rpc_client_t *cl = client_new(&loop, port, 1, false, &w);
  unary_wait_t u = {0};
  /* Queued before the connection fails: completed with the failure. */
  assert_int_equal(fl_rpc_client_unary(cl, "Test/Echo", FL_BUF("x", 1), 0, uw_cb, &u, NULL), FL_OK);
  run_until(&loop, &w.done);
  assert_int_equal(w.st, FL_ECONNREFUSED);
  assert_int_equal(u.calls, 1);
  assert_int_equal(u.st, FL_ECONNREFUSED);
  assert_int_equal(fl_rpc_client_unary(cl, "Test/Echo", FL_BUF("x", 1), 0, uw_cb, &u, NULL),
                   FL_ECONNREFUSED);
  assert_int_equal(u.calls, 1);
  client_close_wait(&loop, cl);

  /* Calls still pending at client close complete with FL_ECANCELED. */
  server_h *h = server_start(true, 0, 0);
  w = (conn_wait_t){0};
  cl = client_new(&loop, h->port, 1, true, &w);
  run_until(&loop, &w.done);
  assert_int_equal(w.st, FL_OK);
  u = (unary_wait_t){0};
  fl_rpc_client_unary(cl, "Test/Slow", FL_BUF("", 0), 0, uw_cb, &u, NULL);
  for (int i = 0; i < 5; i++) uv_run(&loop, UV_RUN_NOWAIT);
  client_close_wait(&loop, cl);
  assert_int_equal(u.calls, 1);
  assert_int_equal(u.st, FL_ECANCELED);
  fl_sbuf_free(&u.reply);
  server_stop(h);
  fl_free(h);

  /* Bad options are reported, no callback. */
  fl_rpc_client_opts_t bad = {.host = NULL, .port = 1};
  char *err = NULL;
  assert_int_equal(fl_rpc_client_new(&loop, &bad, &cl, &err), FL_EINVAL);
  assert_null(cl);
  fl_free(err);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  uv_loop_close(&loop);
}

int main(void) {
  pki_init();
  /* Progress lines only; tests assert, they do not log. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frame_roundtrip_incremental),
      cmocka_unit_test(test_frame_invalid_flags),
      cmocka_unit_test(test_frame_oversize_and_garbage),
      cmocka_unit_test(test_loop_post_from_threads),
      cmocka_unit_test(test_worker_submit),
      cmocka_unit_test(test_tls_engine),
      cmocka_unit_test(test_rpc_unary_10k),
      cmocka_unit_test(test_rpc_stream_and_cancel),
      cmocka_unit_test(test_rpc_sync_identity_refusal),
      cmocka_unit_test(test_rpc_hostile_clients),
      cmocka_unit_test(test_rpc_backpressure),
      cmocka_unit_test(test_rpc_server_close_inflight),
      cmocka_unit_test(test_rpc_pause_reading),
      cmocka_unit_test(test_rpc_client_failures),
      cmocka_unit_test(test_rpc_throughput),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
