/* SPDX-License-Identifier: Apache-2.0
 *
 * test_byzantine.c: one Byzantine orderer among four, with peers.
 *
 * The network of tests/integration/peer (harness.c, linked, not changed):
 * 4 orderers (f = 1) and 2 organisations x 2 peers on 127.0.0.1. Every
 * orderer runs the test build fedledger-orderer-byz (FL_ORDERER_BIN); only
 * orderer 0 gets faults (FL_ORDERER_FAULT, orderer/node/faults.c). Every
 * peer starts its Deliver stream on orderer 0, so every peer meets it.
 *
 *  1. orderer 0 = "equivocate,deliver-lie": as the primary of view 0 it
 *     sends a different (validly signed) pre-prepare for the same seq to
 *     two of the three others, and its Deliver streams serve tampered
 *     blocks (another block at the same height on one stream, corrupted
 *     orderer signatures on the next). 200 transactions through the four
 *     gateways must all commit VALID: the correct orderers change view and
 *     keep ordering; every peer refuses orderer 0's blocks and fails over.
 *  2. orderer 0 restarted as "bad-sig,withhold": every consensus message it
 *     sends carries a corrupted signature, and its Deliver streams go
 *     silent above its start height. Peers 0 and 1 are restarted (so they
 *     connect to orderer 0 first again) and must fail over when their
 *     stream stalls; 100 more transactions commit VALID.
 *  3. At the end every peer has the same height, and at every height the
 *     same header hash, a block with 2f+1 valid orderer signatures (the
 *     genesis keys) and the hash link: no peer accepted a bad block.
 * Bounded: every wait is a poll with a deadline; about 30-60 s in all.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/base/alloc.h"
#include "common/protoutil/block.h"
#include "tests/integration/peer/harness.h"
#include "tests/integration/check.h"

static pn_net_t *g_net;
static fl_rpc_sync_t *g_s[PN_NPEER];

static void fail_exit(void) {
  if (g_net) {
    pn_diagnose(g_net);
    if (getenv("FL_KEEP")) g_net->keep = true;
  }
  for (int i = 0; i < PN_NPEER; i++) fl_rpc_sync_close(g_s[i]);
  pn_net_free(g_net);
  exit(1);
}

static const char *envs(const char *n) {
  const char *v = getenv(n);
  return v ? v : "";
}

/* Lines of orderer i's log containing needle. */
static int orderer_log_count(int i, const char *needle) {
  char p[400];
  snprintf(p, sizeof(p), "%s/orderer%d.log", g_net->dir, i);
  FILE *fp = fopen(p, "r");
  if (fp == NULL) return 0;
  char line[4096];
  int k = 0;
  while (fgets(line, sizeof(line), fp))
    if (strstr(line, needle)) k++;
  fclose(fp);
  return k;
}

static void start_orderer(int i, const char *faults) {
  if (faults) setenv("FL_ORDERER_FAULT", faults, 1);
  else unsetenv("FL_ORDERER_FAULT");
  CHECK(pn_start_orderer(g_net, i) == FL_OK, "start orderer %d", i);
  unsetenv("FL_ORDERER_FAULT");
}

static void reconnect(int i) {
  fl_rpc_sync_close(g_s[i]);
  g_s[i] = NULL;
  CHECK(pn_connect_peer(g_net, i, g_net->porg[i], &g_s[i]) == FL_OK, "connect peer %d", i);
}

/* Waits until every peer reports the same height, at least `min`. */
static uint64_t same_height(uint64_t min, uint32_t timeout_ms) {
  uint64_t end = pn_now_ms() + timeout_ms;
  uint64_t h[PN_NPEER] = {0};
  for (;;) {
    bool same = true;
    for (int i = 0; i < PN_NPEER; i++) {
      h[i] = 0;
      if (pn_chain_info(g_s[i], &h[i], NULL) != FL_OK) reconnect(i);
      if (h[i] != h[0] || h[i] < min) same = false;
    }
    if (same) return h[0];
    CHECK(pn_now_ms() < end, "peers' heights differ: %llu %llu %llu %llu (want >= %llu)",
          (unsigned long long)h[0], (unsigned long long)h[1], (unsigned long long)h[2],
          (unsigned long long)h[3], (unsigned long long)min);
    pn_sleep_ms(100);
  }
}

static void load(const char *prefix, uint32_t n) {
  const int gws[PN_NPEER] = {0, 1, 2, 3};
  uint32_t valid = 0, failed = 0;
  uint64_t t0 = pn_now_ms();
  CHECK(pn_load(g_net, gws, PN_NPEER, prefix, n, 16, &valid, &failed) == FL_OK, "load %s", prefix);
  printf("# load %s: %u valid, %u failed in %llu ms\n", prefix, valid, failed,
         (unsigned long long)(pn_now_ms() - t0));
  CHECK(valid == n && failed == 0, "load %s: %u of %u valid, %u failed", prefix, valid, n, failed);
}

/* Failovers away from orderer 0 in peer i's log whose reason starts with
 * `why` ("" for any). */
static int failovers(int i, const char *why) {
  char p[400], reason[200];
  snprintf(p, sizeof(p), "%s/peer%d.log", g_net->dir, i);
  snprintf(reason, sizeof(reason), "reason=%s", why);
  FILE *fp = fopen(p, "r");
  if (fp == NULL) return 0;
  char line[4096];
  int k = 0;
  while (fgets(line, sizeof(line), fp))
    if (strstr(line, "deliver failover from=orderer0 ") && strstr(line, reason)) k++;
  fclose(fp);
  return k;
}

/* Waits until peer i's log shows more than `before` failovers from
 * orderer 0 for `why`. */
static void wait_failover(int i, const char *why, int before, uint32_t timeout_ms) {
  uint64_t end = pn_now_ms() + timeout_ms;
  for (;;) {
    if (failovers(i, why) > before) return;
    CHECK(pn_now_ms() < end, "peer %d did not fail over from orderer0 (%s)", i,
          why[0] ? why : "any reason");
    pn_sleep_ms(100);
  }
}

static void restart_peer(int i) {
  fl_rpc_sync_close(g_s[i]);
  g_s[i] = NULL;
  /* SIGKILL: what is tested here is where the restarted peer goes, not its
   * shutdown (test_peer_network covers a clean SIGTERM). */
  CHECK(pn_signal_peer(g_net, i, SIGKILL) == FL_OK, "stop peer %d", i);
  CHECK(pn_start_peer(g_net, i) == FL_OK, "restart peer %d", i);
  CHECK(pn_wait_peer(g_net, i, 20000) == FL_OK, "peer %d not ready", i);
  reconnect(i);
}

/* Every block on every peer: same header hash, 2f+1 valid orderer
 * signatures with the genesis keys, hash link. */
static void check_chains(uint64_t height) {
  fl_sbuf_t raw = {0};
  uint8_t prev[32] = {0};
  for (uint64_t n = 0; n < height; n++) {
    uint8_t h0[32] = {0};
    for (int i = 0; i < PN_NPEER; i++) {
      CHECK(pn_get_block(g_s[i], n, &raw) == FL_OK, "peer %d block %llu", i,
            (unsigned long long)n);
      fl_block_t *b = NULL;
      const char *why = "?";
      CHECK(fl_block_decode(raw.data, raw.len, &b, &why) == FL_OK, "peer %d block %llu: %s", i,
            (unsigned long long)n, why);
      CHECK(b->number == n, "peer %d: block %llu at %llu", i, (unsigned long long)b->number,
            (unsigned long long)n);
      if (n > 0) {
        fl_status_t rc = fl_block_verify_signatures(
            b, (const fl_verifier_t *const *)g_net->overif, PN_NORD, 1, NULL, NULL, &why);
        CHECK(rc == FL_OK, "peer %d block %llu: signatures: %s", i, (unsigned long long)n, why);
        rc = fl_block_check_link(n - 1, prev, b, &why);
        CHECK(rc == FL_OK, "peer %d block %llu: link: %s", i, (unsigned long long)n, why);
      }
      if (i == 0) memcpy(h0, b->header_hash, 32);
      else CHECK(memcmp(h0, b->header_hash, 32) == 0, "peer %d block %llu: another header", i,
                 (unsigned long long)n);
      fl_block_free(b);
    }
    memcpy(prev, h0, 32);
  }
  fl_sbuf_free(&raw);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  uint64_t t_start = pn_now_ms();
  const char *byz = getenv("FL_ORDERER_BYZ_BIN");
  CHECK(byz && *byz, "FL_ORDERER_BYZ_BIN not set");
  setenv("FL_ORDERER_BIN", byz, 1); /* harness: every orderer runs this build */
  pn_opts_t o = {.log = "info", .stall_timeout = "2s"};
  CHECK(pn_net_new(&o, envs("FL_PEER_BIN_DIR"), envs("FL_KVSTORE_SO"), envs("FL_COUNTER_SO"),
                   &g_net) == FL_OK, "network setup");

  /* 1. Equivocating primary, lying Deliver. */
  start_orderer(0, "equivocate,deliver-lie");
  for (int i = 1; i < PN_NORD; i++) start_orderer(i, NULL);
  for (int i = 0; i < PN_NORD; i++)
    CHECK(pn_wait_orderer(g_net, i, 20000) == FL_OK, "orderer %d not ready", i);
  CHECK(orderer_log_count(0, "BYZANTINE TEST BUILD") == 1, "orderer 0 runs without faults");
  for (int i = 0; i < PN_NPEER; i++) CHECK(pn_start_peer(g_net, i) == FL_OK, "start peer %d", i);
  for (int i = 0; i < PN_NPEER; i++) {
    CHECK(pn_wait_peer(g_net, i, 20000) == FL_OK, "peer %d not ready", i);
    CHECK(pn_connect_peer(g_net, i, g_net->porg[i], &g_s[i]) == FL_OK, "connect peer %d", i);
  }
  load("a", 200);
  same_height(2, 20000);
  /* Every peer left orderer 0: it lagged behind the others after its
   * equivocation (stalled) or served a lie (bad block). */
  for (int i = 0; i < PN_NPEER; i++) wait_failover(i, "", 0, 20000);
  /* Peers 2 and 3 back on orderer 0 (a restarted peer starts there), now
   * that it has caught up: the next blocks it serves them are lies. */
  int bad2 = failovers(2, "bad block"), bad3 = failovers(3, "bad block");
  restart_peer(2);
  restart_peer(3);
  load("a2", 40);
  wait_failover(2, "bad block", bad2, 20000);
  wait_failover(3, "bad block", bad3, 20000);
  uint64_t h1 = same_height(2, 20000);
  int refused = 0;
  for (int i = 0; i < PN_NPEER; i++)
    refused += pn_log_count(g_net, i, "orderer served a bad block orderer=orderer0");
  /* The correct orderers left view 0 (its primary equivocated). */
  int installed = 0;
  for (int i = 1; i < PN_NORD; i++) installed += orderer_log_count(i, "view installed");
  printf("# phase 1: height %llu, bad blocks refused by the peers: %d, views installed by "
         "orderers 1-3: %d\n", (unsigned long long)h1, refused, installed);
  CHECK(refused >= 2, "peers 2 and 3 must have refused orderer 0's blocks");
  CHECK(installed >= 3, "orderers 1-3 did not change view");

  /* 2. Bad consensus signatures, withheld blocks. */
  CHECK(g_net->opid[0] > 0 && kill(g_net->opid[0], SIGKILL) == 0, "kill orderer 0");
  waitpid(g_net->opid[0], NULL, 0);
  g_net->opid[0] = 0;
  start_orderer(0, "bad-sig,withhold");
  CHECK(pn_wait_orderer(g_net, 0, 20000) == FL_OK, "orderer 0 not ready again");
  int st0 = failovers(0, "stalled"), st1 = failovers(1, "stalled");
  restart_peer(0);
  restart_peer(1);
  load("b", 100);
  wait_failover(0, "stalled", st0, 20000);
  wait_failover(1, "stalled", st1, 20000);
  uint64_t h2 = same_height(h1 + 1, 30000);
  printf("# phase 2: height %llu; peers 0 and 1 failed over from the silent orderer 0\n",
         (unsigned long long)h2);

  /* 3. No peer accepted a bad block. */
  check_chains(h2);
  printf("# %llu blocks identical and verified on all %d peers; %llu ms in all\n",
         (unsigned long long)h2, PN_NPEER, (unsigned long long)(pn_now_ms() - t_start));
  for (int i = 0; i < PN_NPEER; i++) fl_rpc_sync_close(g_s[i]);
  pn_net_free(g_net);
  printf("# ok\n");
  return 0;
}
