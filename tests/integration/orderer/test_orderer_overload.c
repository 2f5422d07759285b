/* SPDX-License-Identifier: Apache-2.0
 *
 * test_orderer_overload.c: Broadcast flow control under a closed-loop
 * flood, on four real fedledger-orderer processes on 127.0.0.1 (every
 * replica runs with broadcast.max_pending 300, set through the
 * FEDLEDGER_BROADCAST_MAX_PENDING environment override).
 *
 *  1. 4,000 signed envelopes are broadcast all at once over three
 *     connections, two to orderer 1 and one to orderer 0 (the primary,
 *     whose room other replicas' forwards also take): more than 4x
 *     max_pending in flight to each. The orderers must park what they have
 *     no room for and hold the clients back instead of refusing. Every
 *     envelope is accepted, refusals (AGAIN, resent after 50 ms) stay
 *     under 1%, no call fails; orderer 1's /metrics shows
 *     fedledger_orderer_broadcast_parked_calls above 0 during the flood
 *     and back to 0 after it (orderer 0's too), and read pauses counted;
 *  2. 3,000 more to orderer 2 on one connection, which the client closes
 *     while orderer 2 holds some of them parked: the parked gauge goes
 *     back to 0 (the parked calls of the closed connection are cleaned
 *     up, admitted or cancelled), and orderer 2 still takes a new
 *     envelope, which is delivered;
 *  3. step 2's envelopes once more, to orderer 3, which gets SIGTERM while
 *     it holds some of them parked: it answers them and exits 0;
 *  4. replica 0's Deliver stream (every block checked as a peer checks it:
 *     signatures, hash link) all along: every envelope of step 1 exactly
 *     once, those of step 2 (sent twice) at most once; SIGTERM gives exit
 *     status 0 everywhere (an ASan build of the orderer exits non-zero on
 *     a use-after-free or a leak).
 * Every process is killed by PID at the end, also on failure (harness).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/base/alloc.h"
#include "orderer/harness/harness.h"
#include "orderer/node/ab.h"
#include "tests/integration/check.h"

#define N 4
#define MAX_PENDING 300u
#define NENV 4000u        /* step 1 */
#define NCLOSE 3000u      /* step 2 */
#define MARK (NENV + NCLOSE) /* the envelope sent after step 2 */
#define TOTAL (MARK + 1)
#define NCONN 3            /* step 1: connections 0, 1 to orderer 1, 2 to orderer 0 */
#define RETRY_MS 50
#define CALL_TIMEOUT_MS 60000

static fl_oh_net_t *g_net;
static uv_loop_t g_loop;
static fl_sbuf_t g_env[TOTAL];
static uint8_t g_seen[TOTAL];     /* times delivered */
static uint32_t g_acked, g_refused, g_failed, g_inflight;
static fl_rpc_client_t *g_cli[NCONN];
static fl_rpc_client_t *g_dl;
static uint64_t g_height;         /* last verified block */
static uint8_t g_prev[32];
static double g_parked_max[N];    /* highest parked gauge seen, by replica */
static uint32_t g_poll[2];        /* the replicas polled */

static void fail_exit(void) {
  if (g_net) {
    g_net->keep = getenv("FL_KEEP") != NULL;
    fl_oh_net_free(g_net);
  }
  exit(1);
}

/* ------------------------------------------------------------ /metrics */

static int http_get(uint32_t i, const char *path, fl_sbuf_t *out) {
  return fl_oh_http_get(g_net, i, path, out);
}

/* The value of the series `series` (full name with labels) in replica i's
 * /metrics; fails the test when the endpoint or the series is missing. */
static double metric(uint32_t i, const char *series) {
  fl_sbuf_t r = {0};
  CHECK(http_get(i, "/metrics", &r) == 200, "replica %u /metrics: %s", i, fl_sbuf_cstr(&r));
  const char *body = fl_sbuf_cstr(&r);
  size_t n = strlen(series);
  double v = -1;
  for (const char *p = body; (p = strstr(p, series)) != NULL; p += n) {
    if (p[-1] == '\n' && p[n] == ' ') {
      v = strtod(p + n + 1, NULL);
      break;
    }
  }
  fl_sbuf_free(&r);
  CHECK(v >= 0, "replica %u /metrics has no %s", i, series);
  return v;
}

#define PARKED "fedledger_orderer_broadcast_parked_calls"
#define PAUSES "fedledger_orderer_broadcast_read_pauses_total"

static void on_poll(uv_timer_t *t) {
  (void)t;
  for (uint32_t k = 0; k < 2; k++) {
    double v = metric(g_poll[k], PARKED);
    if (v > g_parked_max[g_poll[k]]) g_parked_max[g_poll[k]] = v;
  }
}

/* ------------------------------------------------------------ deliver */

static void dl_msg(void *arg, fl_buf_t msg) {
  (void)arg;
  bool isb = false;
  fl_buf_t blk;
  fl_status_t st;
  CHECK(fl_ab_deliver_decode(msg, &isb, &blk, &st) == FL_OK, "bad DeliverResponse");
  CHECK(isb, "deliver ended: %s", fl_status_name(st));
  static uint64_t idx[4096];
  fl_oh_block_t bi;
  const char *why = "?";
  fl_status_t rc = fl_oh_block_check(g_net, blk, g_height > 0 ? g_prev : NULL, &bi, idx, 4096,
                                     &why);
  CHECK(rc == FL_OK, "block %llu does not verify: %s", (unsigned long long)g_height + 1, why);
  CHECK(bi.number == g_height + 1, "block %llu, want %llu", (unsigned long long)bi.number,
        (unsigned long long)g_height + 1);
  for (size_t k = 0; k < bi.nidx; k++) {
    CHECK(idx[k] < TOTAL, "block %llu carries unknown index %llu", (unsigned long long)bi.number,
          (unsigned long long)idx[k]);
    CHECK(g_seen[idx[k]] == 0, "envelope %llu delivered twice (block %llu)",
          (unsigned long long)idx[k], (unsigned long long)bi.number);
    g_seen[idx[k]] = 1;
  }
  memcpy(g_prev, bi.hash, 32);
  g_height = bi.number;
}

static bool g_stop;

static void dl_end(void *arg, fl_status_t st, const char *err) {
  (void)arg;
  CHECK(g_stop, "deliver stream ended: %s %s", fl_status_name(st), err ? err : "");
}

/* ---------------------------------------------------------- broadcast */

typedef struct call_s {
  fl_rpc_client_t *c;
  uint32_t idx;
  bool counted;                 /* step 1: counts in acked/refused/failed */
} call_t;

static void send_env(fl_rpc_client_t *c, uint32_t idx, bool counted, bool retry);

typedef struct retry_s {
  uv_timer_t t;
  fl_rpc_client_t *c;
  uint32_t idx;
} retry_t;

static void retry_closed(uv_handle_t *h) { fl_free(h->data); }

static void on_retry(uv_timer_t *t) {
  retry_t *r = t->data;
  send_env(r->c, r->idx, true, true);
  uv_close((uv_handle_t *)&r->t, retry_closed);
}

static void bc_cb(void *arg, fl_status_t st, const char *err, fl_buf_t reply) {
  call_t *c = arg;
  (void)err;
  fl_status_t bs = st;
  if (st == FL_OK && fl_ab_broadcast_response_decode(reply, &bs, NULL) != FL_OK)
    bs = FL_EMALFORMED;
  if (c->counted && bs == FL_AGAIN) {
    /* A client's retry, as the gateway does it (here after 50 ms); the
     * envelope stays in flight. */
    g_refused++;
    retry_t *r = fl_calloc(1, sizeof(*r));
    r->c = c->c;
    r->idx = c->idx;
    uv_timer_init(&g_loop, &r->t);
    r->t.data = r;
    uv_timer_start(&r->t, on_retry, RETRY_MS, 0);
  } else if (c->counted) {
    g_inflight--;
    if (bs == FL_OK) {
      g_acked++;
    } else {
      g_failed++;
      fprintf(stderr, "# envelope %u: %s %s\n", c->idx, fl_status_name(bs), err ? err : "");
    }
  }
  fl_free(c);
}

static void send_env(fl_rpc_client_t *c, uint32_t idx, bool counted, bool retry) {
  call_t *k = fl_calloc(1, sizeof(*k));
  k->c = c;
  k->idx = idx;
  k->counted = counted;
  fl_status_t rc = fl_rpc_client_unary(c, "Orderer/Broadcast", fl_sbuf_view(&g_env[idx]),
                                       CALL_TIMEOUT_MS, bc_cb, k, NULL);
  CHECK(rc == FL_OK, "broadcast %u: %s", idx, fl_status_name(rc));
  if (counted && !retry) g_inflight++;
}

static fl_rpc_client_t *client(uint32_t replica) {
  fl_rpc_client_opts_t o = fl_oh_client_opts(g_net, replica);
  fl_rpc_client_t *c = NULL;
  char *err = NULL;
  CHECK(fl_rpc_client_new(&g_loop, &o, &c, &err) == FL_OK, "client: %s", err ? err : "");
  return c;
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until pred() or timeout_ms; returns pred(). */
static bool run_until(bool (*pred)(void), uint64_t timeout_ms) {
  uint64_t end = fl_oh_now_ms() + timeout_ms;
  uv_timer_t tick; /* wakes the loop to look at the clock */
  uv_timer_init(&g_loop, &tick);
  uv_timer_start(&tick, on_tick, 20, 20);
  bool ok;
  while (!(ok = pred()) && fl_oh_now_ms() < end) uv_run(&g_loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&g_loop, UV_RUN_NOWAIT);
  return ok;
}

static bool step1_done(void) { return g_inflight == 0; }

static bool step1_delivered(void) {
  for (uint32_t k = 0; k < NENV; k++)
    if (!g_seen[k]) return false;
  return true;
}

static bool mark_delivered(void) { return g_seen[MARK] != 0; }

static uint32_t g_watch;          /* parked_seen's replica */

static bool parked_seen(void) { return g_parked_max[g_watch] > 0; }

/* A new client of replica i sends NCLOSE envelopes; runs (polling i's
 * gauges with poll) until i reports parked calls. Returns the client. */
static fl_rpc_client_t *park_on(uint32_t i, uv_timer_t *poll) {
  fl_rpc_client_t *c = client(i);
  for (uint32_t k = NENV; k < NENV + NCLOSE; k++) send_env(c, k, false, false);
  g_poll[0] = g_poll[1] = g_watch = i;
  uv_timer_start(poll, on_poll, 1, 5);
  CHECK(run_until(parked_seen, 20000), "orderer %u never parked a call", i);
  uv_timer_stop(poll);
  return c;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Polls replica i's parked gauge until it reads 0. */
static void wait_parked_zero(uint32_t i, uint32_t timeout_ms) {
  uint64_t end = fl_oh_now_ms() + timeout_ms;
  double v;
  while ((v = metric(i, PARKED)) != 0) {
    CHECK(fl_oh_now_ms() < end, "replica %u still has %g parked calls", i, v);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    sleep_ms(20);
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  /* Inherited by the orderers (orderer.yaml overrides, docs/ordering.md):
   * a small replica, and a park timeout no client here should meet. */
  setenv("FEDLEDGER_BROADCAST_MAX_PENDING", "300", 1);
  setenv("FEDLEDGER_BROADCAST_MAX_PARKED", "20000", 1);
  setenv("FEDLEDGER_BROADCAST_PARK_TIMEOUT", "30s", 1);
  fl_oh_opts_t o = {.n = N, .verify = true, .nosync = true, .ops = true,
                    .batch_max_count = 100};
  CHECK(fl_oh_net_new(&o, &g_net) == FL_OK, "network setup");
  for (uint32_t k = 0; k < TOTAL; k++)
    CHECK(fl_oh_envelope(g_net, k, 64, &g_env[k]) == FL_OK, "envelope %u", k);
  for (uint32_t i = 0; i < N; i++) CHECK(fl_oh_start(g_net, i) == FL_OK, "start %u", i);
  for (uint32_t i = 0; i < N; i++)
    CHECK(fl_oh_wait_ready(g_net, i, 30000) == FL_OK, "replica %u not ready", i);
  CHECK(metric(1, PARKED) == 0, "parked before any broadcast");

  uv_loop_init(&g_loop);
  g_dl = client(0);
  CHECK(fl_oh_deliver(g_net, g_dl, 1, dl_msg, dl_end, NULL) == FL_OK, "deliver stream");
  uv_timer_t poll;
  uv_timer_init(&g_loop, &poll);

  /* 1. The flood: everything in flight at once. */
  uint64_t t0 = fl_oh_now_ms();
  for (uint32_t c = 0; c < NCONN; c++) g_cli[c] = client(c < 2 ? 1 : 0);
  for (uint32_t k = 0; k < NENV; k++) send_env(g_cli[k % NCONN], k, true, false);
  g_poll[0] = 1;
  g_poll[1] = 0;
  uv_timer_start(&poll, on_poll, 1, 25);
  CHECK(run_until(step1_done, 90000), "step 1: %u in flight after 90 s (acked %u)", g_inflight,
        g_acked);
  uv_timer_stop(&poll);
  uint64_t t1 = fl_oh_now_ms();
  printf("# step 1: %u envelopes acked in %llu ms, %u refused (AGAIN), %u failed, parked "
         "gauge max %g on orderer 1, %g on orderer 0\n", g_acked, (unsigned long long)(t1 - t0),
         g_refused, g_failed, g_parked_max[1], g_parked_max[0]);
  CHECK(g_failed == 0, "%u broadcasts failed", g_failed);
  CHECK(g_acked == NENV, "acked %u of %u", g_acked, NENV);
  CHECK(g_refused <= NENV / 100, "%u refusals: flow control should park, not refuse",
        g_refused);
  CHECK(g_parked_max[1] > 0, "orderer 1 never parked a call (max_pending %u, %u in flight)",
        MAX_PENDING, NENV);
  double pauses = metric(1, PAUSES);
  printf("# read pauses: %g on orderer 1, %g on orderer 0\n", pauses, metric(0, PAUSES));
  CHECK(pauses >= 1, "no read pause counted");
  CHECK(metric(1, "fedledger_orderer_broadcast_total{result=\"busy\"}") +
            metric(0, "fedledger_orderer_broadcast_total{result=\"busy\"}") == g_refused,
        "busy counters disagree with the refusals seen");
  wait_parked_zero(1, 10000);
  wait_parked_zero(0, 10000);
  CHECK(run_until(step1_delivered, 60000), "step 1: not every envelope delivered");
  printf("# step 1: all %u delivered exactly once by block %llu, %llu ms after the first send\n",
         NENV, (unsigned long long)g_height, (unsigned long long)(fl_oh_now_ms() - t0));

  /* 2. A connection that goes away while its calls are parked. */
  fl_rpc_client_t *gone = park_on(2, &poll);
  printf("# step 2: orderer 2 parked %g calls; closing the client\n", g_parked_max[2]);
  fl_rpc_client_close(gone, NULL, NULL); /* its calls complete with ECANCELED here */
  uv_run(&g_loop, UV_RUN_NOWAIT);
  wait_parked_zero(2, 30000);
  printf("# step 2: orderer 2 parked gauge back to 0\n");
  fl_rpc_client_t *after = client(2);
  g_acked = 0;
  send_env(after, MARK, true, false);
  CHECK(run_until(step1_done, 30000) && g_acked == 1, "orderer 2 did not accept an envelope "
        "after the closed connection (refused %u failed %u)", g_refused, g_failed);
  CHECK(run_until(mark_delivered, 30000), "envelope sent after step 2 not delivered");
  uint32_t got = 0;
  for (uint32_t k = NENV; k < NENV + NCLOSE; k++) got += g_seen[k];
  printf("# step 2: %u of the closed connection's %u envelopes were ordered (at most once), "
         "the rest cancelled or never read\n", got, NCLOSE);

  /* 3. Shutdown of an orderer holding parked calls. */
  fl_rpc_client_t *stopped = park_on(3, &poll);
  printf("# step 3: orderer 3 parked %g calls; SIGTERM\n", g_parked_max[3]);
  CHECK(fl_oh_signal(g_net, 3, SIGTERM) == FL_OK,
        "orderer 3 did not exit cleanly with parked calls");
  fl_rpc_client_close(stopped, NULL, NULL);
  uv_run(&g_loop, UV_RUN_NOWAIT);

  /* 4. Clean shutdown (no leak, no use-after-free in an ASan build). */
  g_stop = true;
  for (uint32_t c = 0; c < NCONN; c++) fl_rpc_client_close(g_cli[c], NULL, NULL);
  fl_rpc_client_close(after, NULL, NULL);
  fl_rpc_client_close(g_dl, NULL, NULL);
  uv_close((uv_handle_t *)&poll, NULL);
  uv_run(&g_loop, UV_RUN_DEFAULT);
  uv_loop_close(&g_loop);
  for (uint32_t i = 0; i < N - 1; i++)
    CHECK(fl_oh_signal(g_net, i, SIGTERM) == FL_OK, "replica %u did not exit cleanly", i);
  g_net->keep = getenv("FL_KEEP") != NULL; /* the orderers' logs */
  fl_oh_net_free(g_net);
  for (uint32_t k = 0; k < TOTAL; k++) fl_sbuf_free(&g_env[k]);
  printf("# ok\n");
  return 0;
}
