/* SPDX-License-Identifier: Apache-2.0
 *
 * test_orderer_censor.c: a censoring primary among four real orderers.
 *
 * Orderer 0 runs the test build fedledger-orderer-byz with
 * FL_ORDERER_FAULT=censor: it drops every Forward the other replicas send
 * it, so as primary (view 0) it orders only what clients broadcast to it
 * directly. A client keeps it busy with a steady stream of direct
 * broadcasts (DIRECT_PER_TICK every TICK_MS), and every RARE_EVERY ticks
 * broadcasts one envelope to orderer 1 ONLY, once (no re-broadcast, no
 * multicast: the client that trusts one orderer). pbft.censor_timeout is
 * 3 s, pbft.request_timeout 1 s.
 *
 * Before the censor timeout existed, the steady executions restarted the
 * backups' request timer and orderer 1 was the only replica holding the
 * rare envelopes: they were never ordered. Now:
 *   - orderer 1 relays them to every replica at 1.5 s, the backups vote the
 *     censor out ("request starved" in their logs) and every envelope, the
 *     rare ones included, is delivered exactly once, in the same order, by
 *     orderers 1-3 (blocks checked as a peer checks them);
 *   - blocks of view 0 were delivered meanwhile (the censor was busy
 *     ordering the direct stream: the ordinary request timer never fired);
 *   - the time from each rare envelope's broadcast to its delivery is
 *     printed (max and mean) and bounded by RARE_LIMIT_MS.
 * Every process is stopped by PID at the end, also on failure.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "orderer/harness/harness.h"
#include "orderer/node/ab.h"
#include "tests/integration/check.h"

#define N 4
#define TICK_MS 50u
#define TICKS 160u            /* 8 s of traffic */
#define DIRECT_PER_TICK 3u
#define RARE_EVERY 8u         /* one rare envelope every 400 ms */
#define TOTAL (TICKS * DIRECT_PER_TICK + TICKS / RARE_EVERY)
#define MAXBLOCKS 20000u
/* censor timeout 3 s + view change + the backlog; generous for sanitizer
 * builds, where every replica runs 2-3x slower. */
#define RARE_LIMIT_MS 12000u

/* What a reader saw besides the chain (fl_oh_reader_t keeps that). */
typedef struct seen_s {
  uint64_t *order;
  size_t norder;
  uint64_t view0_blocks;      /* blocks ordered in view 0 */
  uint64_t max_view;
} seen_t;

static fl_oh_net_t *g_net;
static uv_loop_t g_loop;
static fl_oh_reader_t g_rd[N];
static seen_t g_seen[N];
static fl_sbuf_t *g_env;
static bool *g_rare;
static uint64_t *g_sent_ms, *g_got_ms;
static fl_rpc_client_t *g_bc[N];
static uint32_t g_next, g_ticks, g_acked, g_refused;

static void fail_exit(void) {
  if (g_net) {
    g_net->keep = getenv("FL_KEEP") != NULL;
    if (g_net->keep) fprintf(stderr, "# logs kept in %s\n", g_net->dir);
    fl_oh_net_free(g_net);
  }
  exit(1);
}

/* ------------------------------------------------------------- readers */

static void on_block(void *arg, fl_oh_reader_t *r, const fl_oh_block_t *bi, const uint64_t *idx) {
  seen_t *v = arg;
  if (bi->view == 0) v->view0_blocks++;
  if (bi->view > v->max_view) v->max_view = bi->view;
  uint64_t now = fl_oh_now_ms();
  for (size_t i = 0; i < bi->nidx; i++) {
    CHECK(idx[i] < TOTAL, "reader %u: unknown index %llu", r->id, (unsigned long long)idx[i]);
    CHECK(v->norder < TOTAL, "reader %u: more than %u envelopes", r->id, TOTAL);
    v->order[v->norder++] = idx[i];
    if (g_got_ms[idx[i]] == 0) g_got_ms[idx[i]] = now;
  }
}

/* ----------------------------------------------------------- broadcast */

static void bc_cb(void *arg, fl_status_t st, const char *err, fl_buf_t reply) {
  uint32_t k = (uint32_t)(uintptr_t)arg;
  fl_status_t bs = st;
  char *info = NULL;
  if (st == FL_OK)
    CHECK(fl_ab_broadcast_response_decode(reply, &bs, &info) == FL_OK, "bad BroadcastResponse");
  /* Every orderer here is up and the load is light: an envelope that is
   * not accepted is a failure of the test's premise, not a retry case. */
  if (bs != FL_OK) {
    g_refused++;
    fprintf(stderr, "# envelope %u refused: %s %s %s\n", k, fl_status_name(bs),
            info ? info : "", err ? err : "");
  } else {
    g_acked++;
  }
  fl_free(info);
}

static void bc_send(uint32_t to) {
  uint32_t k = g_next++;
  g_rare[k] = to != 0;
  g_sent_ms[k] = fl_oh_now_ms();
  CHECK(fl_rpc_client_unary(g_bc[to], "Orderer/Broadcast", fl_sbuf_view(&g_env[k]), 10000, bc_cb,
                            (void *)(uintptr_t)k, NULL) == FL_OK,
        "broadcast %u to %u", k, to);
}

/* Keeps running after the last broadcast: the wait loop below needs a
 * wake-up even when nothing more is delivered. */
static void on_tick(uv_timer_t *t) {
  (void)t;
  if (g_ticks >= TICKS) return;
  for (uint32_t i = 0; i < DIRECT_PER_TICK; i++) bc_send(0);
  if (g_ticks % RARE_EVERY == RARE_EVERY / 2) bc_send(1);
  g_ticks++;
}

static bool all_delivered(void) {
  for (uint32_t i = 1; i < N; i++)
    if (g_seen[i].norder < TOTAL) return false;
  return g_ticks >= TICKS;
}

int main(void) {
  fl_log_configure("warn");
  const char *byz = getenv("FL_ORDERER_BYZ_BIN");
  CHECK(byz != NULL, "FL_ORDERER_BYZ_BIN is not set (run through ctest)");
  uint64_t t0 = fl_oh_now_ms();
  fl_oh_opts_t o = {.n = N, .verify = true, .batch_max_count = 100,
                    .view_change_timeout_ms = 1000, .request_timeout = "1s",
                    .extra_yaml = "  censor_timeout: 3s\n", .log = getenv("FL_ORDERER_LOG"),
                    .nosync = true};
  CHECK(fl_oh_net_new(&o, &g_net) == FL_OK, "network setup");
  snprintf(g_net->bin_orderer, sizeof(g_net->bin_orderer), "%s", byz);
  /* The fault for orderer 0 only: the environment is read at start. */
  CHECK(setenv("FL_ORDERER_FAULT", "censor", 1) == 0, "setenv");
  CHECK(fl_oh_start(g_net, 0) == FL_OK, "start 0");
  CHECK(unsetenv("FL_ORDERER_FAULT") == 0, "unsetenv");
  for (uint32_t i = 1; i < N; i++) CHECK(fl_oh_start(g_net, i) == FL_OK, "start %u", i);
  for (uint32_t i = 0; i < N; i++)
    CHECK(fl_oh_wait_ready(g_net, i, 20000) == FL_OK, "orderer %u not ready (logs in %s)", i,
          g_net->dir);
  CHECK(fl_oh_log_has(g_net, 0, "censor=1"), "orderer 0 does not run the censor fault");

  g_env = fl_calloc(TOTAL, sizeof(*g_env));
  g_rare = fl_calloc(TOTAL, sizeof(*g_rare));
  g_sent_ms = fl_calloc(TOTAL, sizeof(*g_sent_ms));
  g_got_ms = fl_calloc(TOTAL, sizeof(*g_got_ms));
  for (uint32_t k = 0; k < TOTAL; k++)
    CHECK(fl_oh_envelope(g_net, k, 64, &g_env[k]) == FL_OK, "envelope %u", k);

  uv_loop_init(&g_loop);
  for (uint32_t i = 1; i < N; i++) {
    fl_oh_reader_init(&g_rd[i], g_net, i, MAXBLOCKS);
    g_seen[i].order = fl_calloc(TOTAL, sizeof(uint64_t));
    g_rd[i].on_block = on_block;
    g_rd[i].arg = &g_seen[i];
    CHECK(fl_oh_reader_open(&g_rd[i], &g_loop) == FL_OK, "deliver stream on %u", i);
  }
  for (uint32_t i = 0; i < 2; i++) {
    fl_rpc_client_opts_t co = fl_oh_client_opts(g_net, i);
    char *err = NULL;
    CHECK(fl_rpc_client_new(&g_loop, &co, &g_bc[i], &err) == FL_OK, "client: %s",
          err ? err : "");
  }

  uint64_t t1 = fl_oh_now_ms();
  uv_timer_t tick;
  uv_timer_init(&g_loop, &tick);
  uv_timer_start(&tick, on_tick, TICK_MS, TICK_MS);
  uint64_t end = t1 + TICKS * TICK_MS + 30000;
  while (!all_delivered() && fl_oh_now_ms() < end) uv_run(&g_loop, UV_RUN_ONCE);
  uv_timer_stop(&tick);
  uv_close((uv_handle_t *)&tick, NULL);

  uint32_t nrare = 0, rare_got = 0;
  uint64_t rare_max = 0, rare_sum = 0;
  for (uint32_t k = 0; k < g_next; k++) {
    if (!g_rare[k]) continue;
    nrare++;
    if (g_got_ms[k] == 0) continue;
    rare_got++;
    uint64_t d = g_got_ms[k] - g_sent_ms[k];
    rare_sum += d;
    if (d > rare_max) rare_max = d;
  }
  fprintf(stderr,
          "# %u envelopes (%u to orderer 1 only) in %llu ms: delivered %zu/%zu/%zu by "
          "orderers 1-3; %llu blocks of view 0 before the censor was replaced, last view %llu; "
          "rare envelope broadcast -> delivered: max %llu ms, mean %llu ms\n",
          g_next, nrare, (unsigned long long)(fl_oh_now_ms() - t1), g_seen[1].norder,
          g_seen[2].norder, g_seen[3].norder, (unsigned long long)g_seen[1].view0_blocks,
          (unsigned long long)g_seen[1].max_view, (unsigned long long)rare_max,
          (unsigned long long)(rare_got ? rare_sum / rare_got : 0));
  printf("{\"test\":\"orderer_censor\",\"envelopes\":%u,\"rare\":%u,\"rare_delivered\":%u,"
         "\"rare_max_ms\":%llu,\"view0_blocks\":%llu,\"last_view\":%llu}\n",
         g_next, nrare, rare_got, (unsigned long long)rare_max,
         (unsigned long long)g_seen[1].view0_blocks, (unsigned long long)g_seen[1].max_view);
  CHECK(g_refused == 0, "%u envelopes refused", g_refused);
  CHECK(rare_got == nrare, "only %u of the %u envelopes sent to orderer 1 alone were delivered "
        "(logs: FL_KEEP=1)", rare_got, nrare);
  CHECK(all_delivered(), "delivered %zu/%zu/%zu of %u", g_seen[1].norder, g_seen[2].norder,
        g_seen[3].norder, TOTAL);
  CHECK(g_seen[1].view0_blocks > 0, "the censor ordered nothing in view 0");
  CHECK(g_seen[1].max_view > 0, "no view change");
  CHECK(rare_max < RARE_LIMIT_MS, "a rare envelope took %llu ms (limit %u)",
        (unsigned long long)rare_max, RARE_LIMIT_MS);
  uint32_t starved = 0;
  for (uint32_t i = 1; i < N; i++) starved += fl_oh_log_has(g_net, i, "request starved") ? 1 : 0;
  CHECK(starved >= 2, "only %u backups logged a starved request", starved);
  /* Same blocks, same order, each envelope exactly once. */
  for (uint32_t i = 2; i < N; i++) {
    uint64_t b = fl_oh_reader_diverge(&g_rd[1], &g_rd[i]);
    CHECK(b == 0, "block %llu differs on 1 and %u", (unsigned long long)b, i);
    for (size_t k = 0; k < TOTAL; k++)
      CHECK(g_seen[1].order[k] == g_seen[i].order[k], "order differs at %zu on 1 and %u", k, i);
  }
  uint8_t *seen = fl_calloc(TOTAL, 1);
  for (size_t k = 0; k < TOTAL; k++) {
    CHECK(!seen[g_seen[1].order[k]], "envelope %llu delivered twice",
          (unsigned long long)g_seen[1].order[k]);
    seen[g_seen[1].order[k]] = 1;
  }
  fl_free(seen);
  fprintf(stderr, "# %u of 3 backups logged 'request starved'; orderers 1-3 agree on %llu blocks\n",
          starved, (unsigned long long)g_rd[1].height);

  uint32_t unclean = fl_oh_shutdown(g_net, &g_loop, g_rd, g_bc, N);
  CHECK(unclean == 0, "orderers without a clean exit on SIGTERM: mask 0x%x", unclean);
  for (uint32_t k = 0; k < TOTAL; k++) fl_sbuf_free(&g_env[k]);
  fl_free(g_env);
  fl_free(g_rare);
  fl_free(g_sent_ms);
  fl_free(g_got_ms);
  for (uint32_t i = 1; i < N; i++) {
    fl_oh_reader_free(&g_rd[i]);
    fl_free(g_seen[i].order);
  }
  g_net->keep = getenv("FL_KEEP") != NULL;
  fl_oh_net_free(g_net);
  fprintf(stderr, "# total %llu ms\n", (unsigned long long)(fl_oh_now_ms() - t0));
  return 0;
}
