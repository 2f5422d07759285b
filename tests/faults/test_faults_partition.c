/* SPDX-License-Identifier: Apache-2.0
 *
 * test_faults_partition.c (label integration): network partitions of the
 * four orderers, and their healing.
 *
 * The peer harness's network (4 fedledger-orderer, 2x2 fedledger-peer on
 * 127.0.0.1) with the genesis block re-written so that every orderer
 * endpoint is a port of the fault proxy (fxproxy.h); each orderer listens
 * on its own port behind it (general.listen_port through
 * FEDLEDGER_GENERAL_LISTEN_PORT). The proxy knows which orderer opened
 * each connection, so it can cut (RST), stall (blackhole) or delay any
 * pair. A load thread keeps submitting kvstore transactions through the
 * gateways of peer0.org1 and peer0.org2 throughout. In order:
 *
 *   1. minority isolated: a backup is cut from every other process (RST);
 *      a transaction submitted during the cut must commit (3 of 4 is a
 *      quorum); after healing the backup catches up (its Deliver height
 *      reaches the peers').
 *   2. primary isolated: the primary is cut (RST); a view change must
 *      happen and a transaction commit while it lasts; after healing the
 *      old primary catches up.
 *   3. 2-2 split: the links between {0,1} and {2,3} stall (blackhole), the
 *      clients still reach everyone; no orderer may store a block for 5 s
 *      (no quorum: no progress); after healing a transaction commits.
 *   4. delay: 60 ms on every orderer-orderer link; a transaction commits.
 *
 * After each phase, with the load paused: every peer at one height with the
 * same header hashes and validation codes, and every orderer's header
 * hashes equal the peers' (no fork); the kvstore state of two peers equal. Recovery times are printed ("# partition: ...").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "tests/faults/fxnet.h"
#include "tests/faults/fxproxy.h"
#include "tests/integration/peer/harness.h"

#define ALL_PEERS 0xFu
#define ALL_ORD 0xFu

static pn_net_t *g_net;
static fx_proxy_t *g_px;
static fx_load_t *g_load;

static const char *envs(const char *n) {
  const char *v = getenv(n);
  return v ? v : "";
}

static fl_status_t start_orderer(int i) {
  char p[16];
  snprintf(p, sizeof(p), "%u", g_net->oport[i]);
  setenv("FEDLEDGER_GENERAL_LISTEN_PORT", p, 1);
  fl_status_t rc = pn_start_orderer(g_net, i);
  unsetenv("FEDLEDGER_GENERAL_LISTEN_PORT");
  fx_proxy_set_pid(g_px, i, g_net->opid[i]);
  return rc;
}

/* network.yaml: every orderer's endpoint becomes its proxy port; then a
 * new genesis block (same identities, so the harness's keys still hold). */
static fl_status_t route_through_proxy(void) {
  char path[400];
  snprintf(path, sizeof(path), "%s/network.yaml", g_net->dir);
  FILE *f = fopen(path, "rb");
  if (f == NULL) return FL_EIO;
  fl_sbuf_t y = {0};
  char b[4096];
  size_t k;
  while ((k = fread(b, 1, sizeof(b), f)) > 0) fl_sbuf_append(&y, b, k);
  fclose(f);
  fl_sbuf_append(&y, "", 1);
  char *text = fl_strdup((const char *)y.data);
  fl_sbuf_free(&y);
  for (int j = 0; j < PN_NORD; j++) {
    char from[160], to[160];
    snprintf(from, sizeof(from), "port: %u, msp_dir: ordererOrganizations/example.com/orderers/orderer%d.",
             g_net->oport[j], j);
    snprintf(to, sizeof(to), "port: %u, msp_dir: ordererOrganizations/example.com/orderers/orderer%d.",
             fx_proxy_port(g_px, j), j);
    char *at = strstr(text, from);
    if (at == NULL) {
      fprintf(stderr, "partition: orderer %d's entry not found in %s\n", j, path);
      fl_free(text);
      return FL_EIO;
    }
    *at = '\0';
    char *nt = fl_sprintf("%s%s%s", text, to, at + strlen(from));
    fl_free(text);
    text = nt;
  }
  f = fopen(path, "wb");
  if (f == NULL || fputs(text, f) < 0) {
    if (f) fclose(f);
    fl_free(text);
    return FL_EIO;
  }
  fclose(f);
  fl_free(text);
  char *cmd = fl_sprintf("'%s/fedledger' genesis -c '%s' -o '%s/genesis.block' --force > "
                         "'%s/genesis-proxy.log' 2>&1",
                         g_net->bin, path, g_net->dir, g_net->dir);
  int st = system(cmd);
  fl_free(cmd);
  return st == 0 ? FL_OK : FL_EIO;
}

/* The primary of the highest view any orderer installed (view 0: 0). */
static int current_primary(uint64_t *view) {
  uint64_t best = 0;
  int prim = 0;
  for (int i = 0; i < PN_NORD; i++) {
    char p[400], line[1024];
    snprintf(p, sizeof(p), "%s/orderer%d.log", g_net->dir, i);
    FILE *f = fopen(p, "r");
    if (f == NULL) continue;
    while (fgets(line, sizeof(line), f)) {
      const char *a = strstr(line, "view installed");
      if (a == NULL) continue;
      const char *v = strstr(a, " view="), *pr = strstr(a, " primary=");
      if (v == NULL || pr == NULL) continue;
      unsigned long long vv = strtoull(v + 6, NULL, 10);
      if (vv >= best) {
        best = vv;
        prim = atoi(pr + 9);
      }
    }
    fclose(f);
  }
  if (view) *view = best;
  return prim;
}

/* Cuts orderer v from every other orderer and from every client (RST). */
static void isolate(int v) {
  for (int k = 0; k < PN_NORD; k++)
    if (k != v) fx_proxy_set_link(g_px, v, k, FX_RESET, 0);
  fx_proxy_set_link(g_px, v, FX_CLIENTS, FX_RESET, 0);
}

static uint64_t orderer_height(int i) {
  uint64_t h = 0;
  if (fx_orderer_chain(g_net, i, NULL, &h) != FL_OK) return 0;
  return h;
}

static uint64_t max_orderer_height(void) {
  uint64_t m = 0;
  for (int i = 0; i < PN_NORD; i++) {
    uint64_t h = orderer_height(i);
    if (h > m) m = h;
  }
  return m;
}

/* Load paused: one height everywhere, no fork; returns the height. */
static uint64_t check_no_fork(const char *phase) {
  fx_load_pause(g_load);
  uint64_t h = fx_settle(g_net, ALL_PEERS, 60000);
  assert_true(h > 0);
  assert_int_equal(fx_check_agree(g_net, ALL_PEERS, ALL_ORD, h), FL_OK);
  size_t n = 0;
  assert_int_equal(fx_same_state(g_net, 0, 3, &n), FL_OK);
  printf("# partition: %s: no fork: 4 peers and 4 orderers agree on %llu blocks, state %zu bytes\n",
         phase, (unsigned long long)h, n);
  fx_load_resume(g_load);
  return h;
}

/* Waits until orderer i stores at least h blocks; the time it took. */
static uint64_t wait_orderer_height(int i, uint64_t h, uint32_t timeout_ms) {
  uint64_t t0 = pn_now_ms();
  while (pn_now_ms() - t0 < timeout_ms) {
    if (orderer_height(i) >= h) return pn_now_ms() - t0;
    pn_sleep_ms(200);
  }
  fail_msg("orderer %d did not catch up to %llu blocks within %u ms (has %llu)", i,
           (unsigned long long)h, timeout_ms, (unsigned long long)orderer_height(i));
  return 0;
}

static void test_minority_isolated(void **state) {
  (void)state;
  int p = current_primary(NULL);
  int v = (p + 3) % PN_NORD;
  printf("# partition: minority: isolating backup orderer%d (primary %d)\n", v, p);
  isolate(v);
  uint64_t h0 = fx_peer_height(g_net, 0), ms = 0;
  assert_int_equal(fx_probe(g_net, 0, 60000, &ms), FL_OK);
  printf("# partition: minority: a transaction committed during the cut in %llu ms\n",
         (unsigned long long)ms);
  assert_int_equal(fx_probe(g_net, 2, 60000, &ms), FL_OK);
  assert_true(fx_peer_height(g_net, 0) > h0);
  fx_proxy_heal(g_px);
  uint64_t target = max_orderer_height();
  uint64_t cu = wait_orderer_height(v, target, 60000);
  printf("# partition: minority: healed; orderer%d caught up to %llu blocks in %llu ms\n", v,
         (unsigned long long)target, (unsigned long long)cu);
  check_no_fork("minority");
}

static void test_primary_isolated(void **state) {
  (void)state;
  uint64_t view0 = 0;
  int p = current_primary(&view0);
  printf("# partition: primary: isolating the primary orderer%d (view %llu)\n", p,
         (unsigned long long)view0);
  isolate(p);
  uint64_t ms = 0;
  assert_int_equal(fx_probe(g_net, 0, 90000, &ms), FL_OK);
  uint64_t view1 = 0;
  int p1 = current_primary(&view1);
  printf("# partition: primary: view change to view %llu (primary %d); first transaction "
         "committed %llu ms after the cut\n",
         (unsigned long long)view1, p1, (unsigned long long)ms);
  assert_true(view1 > view0);
  assert_int_not_equal(p1, p);
  fx_proxy_heal(g_px);
  uint64_t target = max_orderer_height();
  uint64_t cu = wait_orderer_height(p, target, 60000);
  printf("# partition: primary: healed; old primary orderer%d caught up to %llu blocks in %llu "
         "ms\n",
         p, (unsigned long long)target, (unsigned long long)cu);
  assert_int_equal(fx_probe(g_net, 2, 60000, &ms), FL_OK);
  check_no_fork("primary");
}

static void test_split_2_2(void **state) {
  (void)state;
  printf("# partition: split: {0,1} | {2,3} (links stall; clients reach everyone)\n");
  for (int a = 0; a < 2; a++)
    for (int b = 2; b < 4; b++) fx_proxy_set_link(g_px, a, b, FX_BLACKHOLE, 0);
  uint64_t t_cut = pn_now_ms();
  /* What was in flight at the cut lands within moments; then nothing. */
  pn_sleep_ms(3000);
  uint64_t ha = max_orderer_height(), pa = fx_peer_height(g_net, 0);
  pn_sleep_ms(5000);
  uint64_t hb = max_orderer_height(), pb = fx_peer_height(g_net, 0);
  printf("# partition: split: orderer height %llu at +3 s, %llu at +8 s; peer0 %llu -> %llu\n",
         (unsigned long long)ha, (unsigned long long)hb, (unsigned long long)pa,
         (unsigned long long)pb);
  assert_int_equal(ha, hb);
  assert_true(pb <= hb);
  fx_proxy_heal(g_px);
  uint64_t t_heal = pn_now_ms(), ms = 0;
  assert_int_equal(fx_probe(g_net, 0, 120000, &ms), FL_OK);
  uint64_t view = 0;
  int p = current_primary(&view);
  printf("# partition: split: healed after %llu ms cut; a transaction committed %llu ms after "
         "healing (view %llu, primary %d)\n",
         (unsigned long long)(t_heal - t_cut), (unsigned long long)ms, (unsigned long long)view,
         p);
  assert_true(max_orderer_height() > hb);
  check_no_fork("split");
}

static void test_delay(void **state) {
  (void)state;
  for (int a = 0; a < PN_NORD; a++)
    for (int b = a + 1; b < PN_NORD; b++) fx_proxy_set_link(g_px, a, b, FX_PASS, 60);
  uint64_t ms[3] = {0};
  for (int k = 0; k < 3; k++) assert_int_equal(fx_probe(g_net, k & 1 ? 2 : 0, 60000, &ms[k]), FL_OK);
  printf("# partition: delay: 60 ms per orderer link: transactions committed in %llu, %llu, %llu "
         "ms\n",
         (unsigned long long)ms[0], (unsigned long long)ms[1], (unsigned long long)ms[2]);
  fx_proxy_heal(g_px);
  check_no_fork("delay");
  uint32_t valid = 0, failed = 0;
  fx_load_stop(g_load, &valid, &failed);
  g_load = NULL;
  fx_stats_t st;
  fx_proxy_stats(g_px, &st);
  printf("# partition: load: %u transactions VALID, %u failed or timed out during cuts; proxy: "
         "%llu orderer and %llu client connections, %llu reset, %llu MB\n",
         valid, failed, (unsigned long long)st.conns_node, (unsigned long long)st.conns_client,
         (unsigned long long)st.resets, (unsigned long long)(st.bytes >> 20));
  assert_true(valid > 0);
  assert_true(st.conns_node >= 12); /* every orderer-orderer link went through the proxy */
}

static int setup(void **state) {
  (void)state;
  pn_opts_t o = {.log = "info"};
  if (pn_net_new(&o, envs("FL_PEER_BIN_DIR"), envs("FL_KVSTORE_SO"), envs("FL_COUNTER_SO"),
                 &g_net) != FL_OK)
    return -1;
  if (fx_proxy_start(PN_NORD, g_net->oport, &g_px) != FL_OK || route_through_proxy() != FL_OK)
    goto fail;
  for (int i = 0; i < PN_NORD; i++)
    if (start_orderer(i) != FL_OK) goto fail;
  for (int i = 0; i < PN_NORD; i++)
    if (pn_wait_orderer(g_net, i, 30000) != FL_OK) goto fail;
  for (int i = 0; i < PN_NPEER; i++)
    if (pn_start_peer(g_net, i) != FL_OK) goto fail;
  for (int i = 0; i < PN_NPEER; i++)
    if (pn_wait_peer(g_net, i, 30000) != FL_OK) goto fail;
  if (pn_smoke(g_net, 30000) != FL_OK) goto fail;
  g_load = fx_load_start(g_net, "part", 20, 10);
  if (g_load == NULL) goto fail;
  return 0;
fail:
  fx_load_stop(g_load, NULL, NULL);
  g_load = NULL;
  pn_net_free(g_net); /* cmocka skips the group teardown after a failed setup */
  g_net = NULL;
  fx_proxy_stop(g_px);
  g_px = NULL;
  return -1;
}

static int teardown(void **state) {
  (void)state;
  if (g_px) fx_proxy_heal(g_px);
  fx_load_stop(g_load, NULL, NULL);
  g_load = NULL;
  pn_net_free(g_net);
  g_net = NULL;
  fx_proxy_stop(g_px);
  g_px = NULL;
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_minority_isolated),
      cmocka_unit_test(test_primary_isolated),
      cmocka_unit_test(test_split_2_2),
      cmocka_unit_test(test_delay),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
