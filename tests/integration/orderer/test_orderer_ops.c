/* SPDX-License-Identifier: Apache-2.0
 *
 * test_orderer_ops.c: the orderer's operations endpoint and its block
 * timestamps, on four real fedledger-orderer processes on 127.0.0.1.
 *
 *  1. /version answers 200 with the version; /healthz turns 200 once the
 *     replica links are up;
 *  2. 300 envelopes broadcast to orderer 1, one of them twice (refused as
 *     a duplicate) and one with a corrupted signature (refused: bad
 *     signature); Deliver from all four orderers: every block's metadata
 *     timestamp is wall-clock time (within 10 minutes of this machine's
 *     clock, not the monotonic clock's seconds since boot), never
 *     decreasing, and the same for a block on all four orderers;
 *  3. /metrics: Prometheus text with the ledger height, view, checkpoint,
 *     broadcast results by reason (accepted 300, duplicate 1,
 *     bad_signature 1), block latency histogram, queue depths, and it
 *     passes `promtool check metrics` (skipped, loudly, without promtool);
 *  4. two replicas killed (SIGKILL): the survivors' /healthz answers 503
 *     with the failing component "pbft" (no quorum contact); restarted,
 *     200 again.
 * Every wait is a poll on a condition with a generous deadline.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/protoutil/envelope.h"
#include "orderer/harness/harness.h"
#include "orderer/node/ab.h"
#include "tests/integration/check.h"

#define N 4
#define NENV 300u

static fl_oh_net_t *g_net;

static void fail_exit(void) {
  if (g_net) {
    g_net->keep = getenv("FL_KEEP") != NULL;
    fl_oh_net_free(g_net);
  }
  exit(1);
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int http_get(uint32_t i, const char *path, fl_sbuf_t *out) {
  return fl_oh_http_get(g_net, i, path, out);
}

static const char *http_body(fl_sbuf_t *resp) {
  const char *t = fl_sbuf_cstr(resp);
  const char *b = strstr(t, "\r\n\r\n");
  return b ? b + 4 : t;
}

/* Waits until replica i's /healthz answers `want` (and contains `needle`). */
static void wait_health(uint32_t i, int want, const char *needle, uint32_t timeout_ms) {
  fl_sbuf_t r = {0};
  uint64_t end = fl_oh_now_ms() + timeout_ms;
  int code = 0;
  for (;;) {
    code = http_get(i, "/healthz", &r);
    if (code == want && (needle == NULL || strstr(fl_sbuf_cstr(&r), needle))) break;
    CHECK(fl_oh_now_ms() < end, "replica %u /healthz: want %d (%s), last %d: %s", i, want,
          needle ? needle : "", code, fl_sbuf_cstr(&r));
    sleep_ms(100);
  }
  printf("# replica %u /healthz %d: %s\n", i, code, http_body(&r));
  fl_sbuf_free(&r);
}

/* The value of the series `series` (full name with labels, then a space)
 * in a /metrics body; -1 when absent. */
static double metric(const char *body, const char *series) {
  size_t n = strlen(series);
  for (const char *p = body; (p = strstr(p, series)) != NULL; p += n) {
    if ((p == body || p[-1] == '\n') && p[n] == ' ') return strtod(p + n + 1, NULL);
  }
  return -1;
}

typedef struct dl_s {
  uint64_t next;               /* next block number expected */
  uint64_t envs;               /* envelopes seen */
  uint64_t want;
  uint64_t *ts;                /* timestamp by block number */
  size_t cap;
  uint8_t prev[32];
} dl_t;

static int on_deliver(void *arg, fl_buf_t msg) {
  dl_t *d = arg;
  bool isb = false;
  fl_buf_t blk;
  fl_status_t st;
  CHECK(fl_ab_deliver_decode(msg, &isb, &blk, &st) == FL_OK, "bad DeliverResponse");
  if (!isb) return 1;
  fl_oh_block_t bi;
  const char *why = "?";
  static uint64_t idx[4096];
  fl_status_t rc = fl_oh_block_check(g_net, blk, d->next > 1 ? d->prev : NULL, &bi, idx, 4096,
                                     &why);
  CHECK(rc == FL_OK, "block %llu does not verify: %s", (unsigned long long)d->next, why);
  CHECK(bi.number == d->next, "block %llu, want %llu", (unsigned long long)bi.number,
        (unsigned long long)d->next);
  CHECK(bi.number < d->cap, "too many blocks");
  d->ts[bi.number] = bi.timestamp_ms;
  memcpy(d->prev, bi.hash, 32);
  d->envs += bi.nidx;
  d->next++;
  return d->envs >= d->want ? 1 : 0;
}

static void deliver_all(uint32_t i, uint64_t want, dl_t *d) {
  fl_rpc_client_opts_t o = fl_oh_client_opts(g_net, i);
  fl_rpc_sync_t *s = NULL;
  char *err = NULL;
  CHECK(fl_rpc_sync_connect(&o, 10000, &s, &err) == FL_OK, "connect %u: %s", i, err ? err : "");
  fl_ab_seek_t sk = {.start_kind = FL_AB_SPECIFIED, .start = 1};
  fl_sbuf_t req = {0};
  fl_ab_seek_encode(&sk, fl_sbuf_view(&g_net->client_id), g_net->client_key, &req);
  d->next = 1;
  d->envs = 0;
  d->want = want;
  fl_status_t rc = fl_rpc_sync_stream(s, "Orderer/Deliver", fl_sbuf_view(&req), 60000,
                                      on_deliver, d, &err);
  CHECK(d->envs >= want, "replica %u delivered %llu of %llu envelopes (rc=%s %s)", i,
        (unsigned long long)d->envs, (unsigned long long)want, fl_status_name(rc),
        err ? err : "");
  fl_free(err);
  fl_sbuf_free(&req);
  fl_rpc_sync_close(s);
}

static fl_status_t broadcast(fl_rpc_sync_t *s, fl_buf_t env) {
  fl_sbuf_t reply = {0};
  char *err = NULL;
  fl_status_t rc = fl_rpc_sync_unary(s, "Orderer/Broadcast", env, 10000, &reply, &err);
  fl_status_t bs = rc;
  if (rc == FL_OK) CHECK(fl_ab_broadcast_response_decode(fl_sbuf_view(&reply), &bs, NULL) == FL_OK,
                         "bad BroadcastResponse");
  fl_free(err);
  fl_sbuf_free(&reply);
  return bs;
}

static bool have_promtool(void) {
  return system("command -v promtool >/dev/null 2>&1") == 0;
}

static void check_promtool(const char *body) {
  if (!have_promtool()) {
    printf("# SKIP promtool check: promtool not installed (Debian package prometheus)\n");
    return;
  }
  char path[300];
  snprintf(path, sizeof(path), "%s/metrics.txt", g_net->dir);
  FILE *fp = fopen(path, "w");
  CHECK(fp != NULL, "cannot write %s", path);
  fputs(body, fp);
  fclose(fp);
  char cmd[700];
  snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' > '%s.out' 2>&1", path, path);
  int st = system(cmd);
  if (st != 0) {
    snprintf(cmd, sizeof(cmd), "cat '%s.out' >&2", path);
    CHECK(system(cmd) >= 0, "cat");
  }
  CHECK(st == 0, "promtool check metrics failed (status %d)", st);
  printf("# promtool check metrics: ok\n");
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  fl_oh_opts_t o = {.n = N, .verify = true, .nosync = true, .ops = true,
                    .batch_max_count = 50};
  CHECK(fl_oh_net_new(&o, &g_net) == FL_OK, "network setup");
  for (uint32_t i = 0; i < N; i++) CHECK(fl_oh_start(g_net, i) == FL_OK, "start %u", i);
  for (uint32_t i = 0; i < N; i++)
    CHECK(fl_oh_wait_ready(g_net, i, 30000) == FL_OK, "replica %u not ready", i);

  /* 1. /version, /healthz. */
  fl_sbuf_t r = {0};
  CHECK(http_get(0, "/version", &r) == 200, "/version: %s", fl_sbuf_cstr(&r));
  CHECK(strstr(http_body(&r), "\"version\":\"0.1.0\"") != NULL, "/version body: %s",
        http_body(&r));
  printf("# /version: %s\n", http_body(&r));
  for (uint32_t i = 0; i < N; i++) wait_health(i, 200, "\"status\":\"OK\"", 30000);
  CHECK(http_get(0, "/nothing", &r) == 404, "404 expected");

  /* 2. Broadcast, with a duplicate and a bad signature. */
  fl_rpc_client_opts_t co = fl_oh_client_opts(g_net, 1);
  fl_rpc_sync_t *s = NULL;
  char *err = NULL;
  CHECK(fl_rpc_sync_connect(&co, 10000, &s, &err) == FL_OK, "connect: %s", err ? err : "");
  uint64_t wall0 = fl_wall_ms();
  fl_sbuf_t env = {0};
  for (uint32_t k = 0; k < NENV; k++) {
    env.len = 0;
    CHECK(fl_oh_envelope(g_net, k, 256, &env) == FL_OK, "envelope");
    fl_status_t bs = broadcast(s, fl_sbuf_view(&env));
    CHECK(bs == FL_OK, "broadcast %u: %s", k, fl_status_name(bs));
    if (k == 0) {
      bs = broadcast(s, fl_sbuf_view(&env));
      CHECK(bs == FL_EEXIST, "duplicate broadcast: %s", fl_status_name(bs));
    }
  }
  /* The envelope's data (256 bytes, the signed payload's last field) ends
   * just before the signature (~72 bytes + tags): flip a byte inside it. */
  env.len = 0;
  CHECK(fl_oh_envelope(g_net, NENV, 256, &env) == FL_OK, "envelope");
  env.data[env.len - 150] ^= 0x01;
  fl_status_t bs = broadcast(s, fl_sbuf_view(&env));
  CHECK(bs == FL_EBADSIG, "tampered envelope: %s", fl_status_name(bs));
  fl_sbuf_free(&env);
  fl_rpc_sync_close(s);

  /* Timestamps: wall clock, non-decreasing, identical on every orderer. */
  dl_t d[N];
  uint64_t nblocks = 0;
  for (uint32_t i = 0; i < N; i++) {
    d[i] = (dl_t){.cap = 4096};
    d[i].ts = fl_calloc(d[i].cap, sizeof(uint64_t));
    deliver_all(i, NENV, &d[i]);
    if (i == 0) nblocks = d[i].next - 1;
    CHECK(d[i].next - 1 == nblocks, "replica %u: %llu blocks, replica 0 %llu", i,
          (unsigned long long)(d[i].next - 1), (unsigned long long)nblocks);
  }
  uint64_t wall1 = fl_wall_ms();
  for (uint64_t b = 1; b <= nblocks; b++) {
    uint64_t t = d[0].ts[b];
    CHECK(t + 600000 >= wall0 && t <= wall1 + 600000,
          "block %llu timestamp %llu ms is not wall-clock time (now %llu)",
          (unsigned long long)b, (unsigned long long)t, (unsigned long long)wall1);
    if (b > 1)
      CHECK(t >= d[0].ts[b - 1], "block %llu timestamp goes back", (unsigned long long)b);
    for (uint32_t i = 1; i < N; i++)
      CHECK(d[i].ts[b] == t, "block %llu: timestamp %llu on replica %u, %llu on replica 0",
            (unsigned long long)b, (unsigned long long)d[i].ts[b], i, (unsigned long long)t);
  }
  printf("# %llu blocks, timestamps %llu..%llu (wall clock %llu..%llu), same on all %u\n",
         (unsigned long long)nblocks, (unsigned long long)d[0].ts[1],
         (unsigned long long)d[0].ts[nblocks], (unsigned long long)wall0,
         (unsigned long long)wall1, N);
  for (uint32_t i = 0; i < N; i++) fl_free(d[i].ts);

  /* 3. /metrics on orderer 1 (it took the broadcasts). Its gauges are
   * refreshed on its PBFT timer: poll until the height shows every block. */
  uint64_t end = fl_oh_now_ms() + 20000;
  const char *body = NULL;
  for (;;) {
    CHECK(http_get(1, "/metrics", &r) == 200, "/metrics: %s", fl_sbuf_cstr(&r));
    body = http_body(&r);
    if (metric(body, "fedledger_orderer_ledger_height") >= (double)(nblocks + 1)) break;
    CHECK(fl_oh_now_ms() < end, "ledger height %g, want %llu",
          metric(body, "fedledger_orderer_ledger_height"), (unsigned long long)(nblocks + 1));
    sleep_ms(100);
  }
  CHECK(strstr(fl_sbuf_cstr(&r), "Content-Type: text/plain; version=0.0.4") != NULL,
        "content type");
  CHECK(metric(body, "fedledger_orderer_broadcast_total{result=\"accepted\"}") == NENV,
        "accepted %g", metric(body, "fedledger_orderer_broadcast_total{result=\"accepted\"}"));
  CHECK(metric(body, "fedledger_orderer_broadcast_total{result=\"duplicate\"}") == 1,
        "duplicate");
  CHECK(metric(body, "fedledger_orderer_broadcast_total{result=\"bad_signature\"}") == 1,
        "bad_signature");
  CHECK(metric(body, "fedledger_orderer_rpc_errors_total{method=\"Orderer/Broadcast\"}") == 2,
        "rpc errors");
  CHECK(metric(body, "fedledger_orderer_pbft_view") >= 0, "view");
  CHECK(metric(body, "fedledger_orderer_pbft_view_changes_total") >= 0, "view changes");
  CHECK(metric(body, "fedledger_orderer_pbft_checkpoint_sequence") >= 0, "checkpoint");
  CHECK(metric(body, "fedledger_orderer_pbft_requests_executed_total") >= NENV, "executed");
  CHECK(metric(body, "fedledger_orderer_blockcutter_cut_duration_seconds_count") >=
            (double)nblocks, "block latency count");
  CHECK(metric(body, "fedledger_orderer_pbft_messages_dropped_total{reason=\"bad_signature\"}") >= 0,
        "dropped by reason");
  CHECK(metric(body, "fedledger_orderer_queue_depth{queue=\"pending_requests\"}") >= 0,
        "queue depth");
  CHECK(metric(body, "fedledger_orderer_queue_depth{queue=\"inflight_seqs\"}") >= 0,
        "inflight");
  CHECK(metric(body, "fedledger_orderer_replica_links_up") == N - 1, "links up");
  check_promtool(body);

  /* 4. Two replicas down: no quorum contact. */
  CHECK(fl_oh_signal(g_net, 2, SIGKILL) == FL_OK, "kill 2");
  CHECK(fl_oh_signal(g_net, 3, SIGKILL) == FL_OK, "kill 3");
  wait_health(0, 503, "\"component\":\"pbft\"", 20000);
  CHECK(http_get(0, "/healthz", &r) == 503 && strstr(fl_sbuf_cstr(&r), "no quorum contact"),
        "503 reason: %s", fl_sbuf_cstr(&r));
  CHECK(http_get(0, "/metrics", &r) == 200, "/metrics while unhealthy");
  CHECK(fl_oh_start(g_net, 2) == FL_OK && fl_oh_start(g_net, 3) == FL_OK, "restart");
  for (uint32_t i = 0; i < N; i++) wait_health(i, 200, "\"status\":\"OK\"", 30000);
  fl_sbuf_free(&r);

  for (uint32_t i = 0; i < N; i++)
    CHECK(fl_oh_signal(g_net, i, SIGTERM) == FL_OK, "replica %u did not exit cleanly", i);
  fl_oh_net_free(g_net);
  printf("# ok\n");
  return 0;
}
