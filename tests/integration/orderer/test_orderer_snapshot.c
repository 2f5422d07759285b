/* SPDX-License-Identifier: Apache-2.0
 *
 * test_orderer_snapshot.c: an orderer that comes back after the others
 * pruned the log it would need catches up by snapshot (docs/ordering.md
 * section 8), four real fedledger-orderer processes on 127.0.0.1.
 *
 * The network keeps the smallest log the orderer allows: pbft.dedup_window
 * 32, a watermark window of 32 (checkpoint every 8), so COMMITTED records
 * are kept for 64 seqs below the stable checkpoint
 * (FEDLEDGER_STORAGE_COMMITTED_RETENTION=1 is raised to that minimum).
 *  1. Orderer 3 is down from the start. 3,000 envelopes (batches of at
 *     most 10) are ordered by orderers 0-2, far more than 64 seqs.
 *  2. Orderer 3 starts with an empty store. It must reach orderer 0's
 *     height by snapshot (its log says "state transfer by snapshot") and
 *     fetch the blocks below with its block sync; every block it serves
 *     verifies as a peer checks it and equals orderer 0's at that height.
 *  3. 300 more envelopes, broadcast to all four, are delivered by orderer 3.
 *  4. Orderer 3 is killed (-9) and restarted: it restores from the records
 *     it took by snapshot (a gap below them) and delivers 300 more.
 * Then SIGTERM everywhere must give exit status 0.
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
#define PHASE1 3000u
#define PHASE2 300u
#define PHASE3 300u
#define TOTAL (PHASE1 + PHASE2 + PHASE3)
#define WINDOW 300u
#define MAXBLOCKS 20000u

static fl_oh_net_t *g_net;
static uv_loop_t g_loop;
static fl_oh_reader_t g_rd[N];
static fl_sbuf_t *g_env;
static fl_rpc_client_t *g_bc[N];
static bool g_live[N];
static uint32_t g_next, g_end, g_inflight, g_acked, g_rr;

static void fail_exit(void) {
  if (g_net) {
    g_net->keep = getenv("FL_KEEP") != NULL;
    if (g_net->keep) fprintf(stderr, "# logs kept in %s\n", g_net->dir);
    fl_oh_net_free(g_net);
  }
  exit(1);
}

static void bc_pump(void);

static void bc_cb(void *arg, fl_status_t st, const char *err, fl_buf_t reply) {
  uint32_t k = (uint32_t)(uintptr_t)arg;
  g_inflight--;
  fl_status_t bs = st;
  char *info = NULL;
  if (st == FL_OK)
    CHECK(fl_ab_broadcast_response_decode(reply, &bs, &info) == FL_OK, "bad BroadcastResponse");
  CHECK(bs == FL_OK || bs == FL_EEXIST, "envelope %u refused: %s %s %s", k, fl_status_name(bs),
        info ? info : "", err ? err : "");
  g_acked++;
  fl_free(info);
  bc_pump();
}

static void bc_pump(void) {
  while (g_next < g_end && g_inflight < WINDOW) {
    uint32_t j = g_rr++ % N;
    if (!g_live[j]) continue;
    CHECK(fl_rpc_client_unary(g_bc[j], "Orderer/Broadcast", fl_sbuf_view(&g_env[g_next]), 10000,
                              bc_cb, (void *)(uintptr_t)g_next, NULL) == FL_OK,
          "broadcast %u", g_next);
    g_next++;
    g_inflight++;
  }
}

static uint32_t g_want;
static bool p_all_in_0(void *arg) {
  (void)arg;
  return g_acked >= g_end && g_rd[0].envelopes >= g_want;
}
static bool p_3_caught_up(void *arg) {
  (void)arg;
  return g_rd[3].height >= g_rd[0].height;
}
static bool p_all_in_3(void *arg) { return p_all_in_0(arg) && p_3_caught_up(arg); }

static void check_same(void) {
  uint64_t k = fl_oh_reader_diverge(&g_rd[0], &g_rd[3]);
  CHECK(k == 0, "block %llu differs on orderers 0 and 3", (unsigned long long)k);
}

static void start3(void) {
  CHECK(fl_oh_start(g_net, 3) == FL_OK, "start 3");
  CHECK(fl_oh_wait_ready(g_net, 3, 20000) == FL_OK, "orderer 3 not ready");
  fl_rpc_client_opts_t co = fl_oh_client_opts(g_net, 3);
  char *err = NULL;
  CHECK(fl_rpc_client_new(&g_loop, &co, &g_bc[3], &err) == FL_OK, "client: %s", err ? err : "");
  fl_oh_reader_free(&g_rd[3]);
  fl_oh_reader_init(&g_rd[3], g_net, 3, MAXBLOCKS);
  CHECK(fl_oh_reader_open(&g_rd[3], &g_loop) == FL_OK, "deliver stream on 3");
  g_live[3] = true;
}

int main(void) {
  fl_log_configure("warn");
  uint64_t t0 = fl_oh_now_ms();
  fl_oh_opts_t o = {.n = N, .verify = false, .batch_max_count = 10,
                    .checkpoint_interval = 8, .view_change_timeout_ms = 1000,
                    .extra_yaml = "  dedup_window: 32\n", .log = getenv("FL_ORDERER_LOG"),
                    .nosync = true};
  CHECK(fl_oh_net_new(&o, &g_net) == FL_OK, "network setup");
  /* The orderers raise it to dedup_window + watermark window (64). */
  CHECK(setenv("FEDLEDGER_STORAGE_COMMITTED_RETENTION", "1", 1) == 0, "setenv");
  for (uint32_t i = 0; i < 3; i++) CHECK(fl_oh_start(g_net, i) == FL_OK, "start %u", i);
  for (uint32_t i = 0; i < 3; i++)
    CHECK(fl_oh_wait_ready(g_net, i, 20000) == FL_OK, "orderer %u not ready (logs in %s)", i,
          g_net->dir);
  g_env = fl_calloc(TOTAL, sizeof(*g_env));
  for (uint32_t k = 0; k < TOTAL; k++)
    CHECK(fl_oh_envelope(g_net, k, 64, &g_env[k]) == FL_OK, "envelope %u", k);
  uv_loop_init(&g_loop);
  for (uint32_t i = 0; i < N; i++) fl_oh_reader_init(&g_rd[i], g_net, i, MAXBLOCKS);
  for (uint32_t i = 0; i < 3; i++) {
    fl_rpc_client_opts_t co = fl_oh_client_opts(g_net, i);
    char *err = NULL;
    CHECK(fl_rpc_client_new(&g_loop, &co, &g_bc[i], &err) == FL_OK, "client: %s",
          err ? err : "");
    g_live[i] = true;
  }
  CHECK(fl_oh_reader_open(&g_rd[0], &g_loop) == FL_OK, "deliver stream on 0");

  /* 1. Orderers 0-2 alone. */
  uint64_t t1 = fl_oh_now_ms();
  g_end = g_want = PHASE1;
  bc_pump();
  CHECK(fl_oh_run_until(&g_loop, p_all_in_0, NULL, 60000), "phase 1: orderer 0 delivered %llu of %u",
        (unsigned long long)g_rd[0].envelopes, PHASE1);
  fprintf(stderr, "# phase 1: %u envelopes in %llu blocks by orderers 0-2 in %llu ms\n", PHASE1,
          (unsigned long long)g_rd[0].height, (unsigned long long)(fl_oh_now_ms() - t1));

  /* 2. Orderer 3 joins with an empty store. */
  uint64_t t2 = fl_oh_now_ms();
  start3();
  CHECK(fl_oh_run_until(&g_loop, p_3_caught_up, NULL, 60000), "phase 2: orderer 3 at block %llu of %llu (logs: FL_KEEP=1)",
        (unsigned long long)g_rd[3].height, (unsigned long long)g_rd[0].height);
  check_same();
  CHECK(fl_oh_log_has(g_net, 3, "state transfer by snapshot"),
        "orderer 3 did not catch up by snapshot");
  CHECK(fl_oh_log_has(g_net, 3, "block sync done"), "orderer 3 did not sync its blocks");
  fprintf(stderr, "# phase 2: orderer 3 caught up by snapshot to block %llu in %llu ms\n",
          (unsigned long long)g_rd[3].height, (unsigned long long)(fl_oh_now_ms() - t2));

  /* 3. It takes part again. */
  g_end = g_want = PHASE1 + PHASE2;
  bc_pump();
  CHECK(fl_oh_run_until(&g_loop, p_all_in_3, NULL, 60000), "phase 3: orderer 3 at block %llu of %llu",
        (unsigned long long)g_rd[3].height, (unsigned long long)g_rd[0].height);
  check_same();

  /* 4. kill -9 and restart: restore from the records taken by snapshot. */
  g_live[3] = false;
  fl_oh_reader_close(&g_rd[3]);
  fl_rpc_client_close(g_bc[3], NULL, NULL);
  g_bc[3] = NULL;
  CHECK(fl_oh_signal(g_net, 3, SIGKILL) == FL_OK, "kill -9 orderer 3");
  start3();
  g_end = g_want = TOTAL;
  bc_pump();
  CHECK(fl_oh_run_until(&g_loop, p_all_in_3, NULL, 60000), "phase 4: orderer 3 at block %llu of %llu after its restart",
        (unsigned long long)g_rd[3].height, (unsigned long long)g_rd[0].height);
  check_same();
  CHECK(g_rd[0].envelopes == TOTAL, "orderer 0 delivered %llu envelopes, want %u",
        (unsigned long long)g_rd[0].envelopes, TOTAL);
  fprintf(stderr, "# phases 3-4: orderer 3 at block %llu with the others, also after kill -9\n",
          (unsigned long long)g_rd[3].height);

  uint32_t unclean = fl_oh_shutdown(g_net, &g_loop, g_rd, g_bc, N);
  CHECK(unclean == 0, "orderers without a clean exit on SIGTERM: mask 0x%x", unclean);
  for (uint32_t k = 0; k < TOTAL; k++) fl_sbuf_free(&g_env[k]);
  fl_free(g_env);
  for (uint32_t i = 0; i < N; i++) fl_oh_reader_free(&g_rd[i]);
  g_net->keep = getenv("FL_KEEP") != NULL;
  fl_oh_net_free(g_net);
  fprintf(stderr, "# total %llu ms\n", (unsigned long long)(fl_oh_now_ms() - t0));
  return 0;
}
