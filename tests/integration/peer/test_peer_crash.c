/* SPDX-License-Identifier: Apache-2.0
 *
 * test_peer_crash.c: kill -9 a peer at random moments while blocks commit.
 *
 * A load thread keeps submitting kvstore transactions through the gateway
 * of peer0.org1. The victim is peer1.org2 (an endorser candidate of Org2
 * and a committer). FL_PEER_CRASH_KILLS times (default 10; the issue asks
 * for 50) the test waits a random time, SIGKILLs the victim, waits a
 * random time, restarts it; then, with the load paused, it checks that the
 * victim caught up: same height as every peer, the same blocks
 * (header hash and validation codes) as peer0.org2, which never crashed,
 * and the same world state (a full kvstore range query on both). At the
 * end every transaction must have committed VALID, and after a clean stop
 * the two ledgers, opened offline, hold identical state with identical
 * versions. FL_PEER_CRASH_SEED fixes the random moments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base/alloc.h"
#include "common/protoutil/block.h"
#include "peer/ledger/ledger.h"
#include "tests/integration/peer/harness.h"

#define VICTIM 3
#define WITNESS 2

static pn_net_t *g_net;
static atomic_bool g_pause, g_stop, g_paused;
static atomic_uint g_valid, g_failed, g_batches;

static const char *envs(const char *n) {
  const char *v = getenv(n);
  return v ? v : "";
}

static void *load_main(void *arg) {
  (void)arg;
  int gws[1] = {0};
  char prefix[32];
  unsigned b = 0;
  while (!atomic_load(&g_stop)) {
    if (atomic_load(&g_pause)) {
      atomic_store(&g_paused, true);
      pn_sleep_ms(20);
      continue;
    }
    atomic_store(&g_paused, false);
    snprintf(prefix, sizeof(prefix), "crash/%u/", b++);
    uint32_t v = 0, f = 0;
    pn_load(g_net, gws, 1, prefix, 24, 12, &v, &f);
    atomic_fetch_add(&g_valid, v);
    atomic_fetch_add(&g_failed, f);
    atomic_fetch_add(&g_batches, 1);
  }
  atomic_store(&g_paused, true);
  return NULL;
}

static void pause_load(void) {
  atomic_store(&g_paused, false);
  atomic_store(&g_pause, true);
  while (!atomic_load(&g_paused)) pn_sleep_ms(10);
}

static uint64_t height_of(int i) {
  fl_rpc_sync_t *s = NULL;
  uint64_t h = 0;
  if (pn_connect_peer(g_net, i, g_net->porg[i], &s) == FL_OK) pn_chain_info(s, &h, NULL);
  fl_rpc_sync_close(s);
  return h;
}

/* All peers at one height that stays; returns it. */
static uint64_t settle(void) {
  uint64_t end = pn_now_ms() + 30000, h[PN_NPEER] = {0};
  while (pn_now_ms() < end) {
    bool same = true;
    for (int i = 0; i < PN_NPEER; i++) {
      h[i] = height_of(i);
      if (h[i] != h[0]) same = false;
    }
    if (same) {
      pn_sleep_ms(300);
      if (height_of(0) == h[0]) return h[0];
    }
    pn_sleep_ms(100);
  }
  fail_msg("heights differ: %llu %llu %llu %llu", (unsigned long long)h[0],
           (unsigned long long)h[1], (unsigned long long)h[2], (unsigned long long)h[3]);
  return 0;
}

/* The parts of a block every peer must agree on: the header (its hash
 * covers the envelopes through data_hash) and the validation codes. The
 * 2f+1 orderer signatures may legitimately be a different set on each peer
 * (each got the block from the orderer it streamed from), so whole block
 * bytes are not compared. */
static void same_block(const fl_sbuf_t *x, const fl_sbuf_t *y, uint64_t n) {
  fl_block_t *a = NULL, *b = NULL;
  assert_int_equal(fl_block_decode(x->data, x->len, &a, NULL), FL_OK);
  assert_int_equal(fl_block_decode(y->data, y->len, &b, NULL), FL_OK);
  if (memcmp(a->header_hash, b->header_hash, FL_SHA256_LEN) != 0)
    fail_msg("block %llu: header hashes differ", (unsigned long long)n);
  assert_int_equal(a->n_validation_codes, b->n_validation_codes);
  assert_memory_equal(a->validation_codes, b->validation_codes, a->n_validation_codes);
  if (n > 0) assert_true(a->n_sigs >= 3 && b->n_sigs >= 3); /* 2f+1 (f = 1); genesis has none */
  fl_block_free(a);
  fl_block_free(b);
}

/* Victim and witness: same blocks [from, h) (same_block), same kvstore state. */
static void same_as_witness(uint64_t from, uint64_t h) {
  fl_rpc_sync_t *a = NULL, *b = NULL;
  assert_int_equal(pn_connect_peer(g_net, VICTIM, 1, &a), FL_OK);
  assert_int_equal(pn_connect_peer(g_net, WITNESS, 1, &b), FL_OK);
  fl_sbuf_t x = {0}, y = {0};
  for (uint64_t n = from; n < h; n++) {
    assert_int_equal(pn_get_block(a, n, &x), FL_OK);
    assert_int_equal(pn_get_block(b, n, &y), FL_OK);
    same_block(&x, &y, n);
  }
  const char *args[] = {"range", "", "", NULL};
  int sa = 0, sb = 0;
  assert_int_equal(pn_gw_evaluate(g_net, a, 1, "kvstore", args, &sa, &x), FL_OK);
  assert_int_equal(pn_gw_evaluate(g_net, b, 1, "kvstore", args, &sb, &y), FL_OK);
  assert_int_equal(sa, 200);
  assert_int_equal(sb, 200);
  assert_int_equal(x.len, y.len);
  assert_memory_equal(x.data, y.data, x.len);
  fl_sbuf_free(&x);
  fl_sbuf_free(&y);
  fl_rpc_sync_close(a);
  fl_rpc_sync_close(b);
}

static void test_kill_restart_catch_up(void **state) {
  (void)state;
  int kills = atoi(envs("FL_PEER_CRASH_KILLS"));
  if (kills <= 0) kills = 10;
  unsigned seed = (unsigned)atoi(envs("FL_PEER_CRASH_SEED"));
  if (seed == 0) seed = (unsigned)time(NULL);
  srand(seed);
  printf("# crash test: %d kills of %s, seed %u\n", kills, g_net->pname[VICTIM], seed);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, load_main, NULL), 0);
  uint64_t checked = 0;
  uint64_t t0 = pn_now_ms();
  for (int k = 0; k < kills; k++) {
    pn_sleep_ms(150 + (uint32_t)(rand() % 900));
    uint64_t before = height_of(WITNESS);
    assert_int_equal(pn_signal_peer(g_net, VICTIM, SIGKILL), FL_OK);
    pn_sleep_ms(20 + (uint32_t)(rand() % 400));
    assert_int_equal(pn_start_peer(g_net, VICTIM), FL_OK);
    assert_int_equal(pn_wait_peer(g_net, VICTIM, 20000), FL_OK);
    pause_load();
    uint64_t h = settle();
    assert_true(h >= before);
    same_as_witness(checked, h);
    checked = h;
    atomic_store(&g_pause, false);
    printf("# kill %d/%d: killed near height %llu, caught up to %llu, state equal\n", k + 1,
           kills, (unsigned long long)before, (unsigned long long)h);
  }
  atomic_store(&g_stop, true);
  pthread_join(th, NULL);
  uint64_t h = settle();
  same_as_witness(checked, h);
  printf("# %d kills in %llu ms; %u transactions valid, %u failed, height %llu\n", kills,
         (unsigned long long)(pn_now_ms() - t0), atomic_load(&g_valid), atomic_load(&g_failed),
         (unsigned long long)h);
  if (atomic_load(&g_failed) != 0) pn_diagnose(g_net);
  assert_int_equal(atomic_load(&g_failed), 0);
  assert_true(atomic_load(&g_valid) > 0);
  /* Offline: victim and witness ledgers identical, versions included. */
  assert_int_equal(pn_signal_peer(g_net, VICTIM, SIGTERM), FL_OK);
  assert_int_equal(pn_signal_peer(g_net, WITNESS, SIGTERM), FL_OK);
  fl_ledger_t *l[2] = {0};
  fl_ledger_range_t *it[2] = {0};
  int who[2] = {VICTIM, WITNESS};
  for (int i = 0; i < 2; i++) {
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/pdata%d/ledger", g_net->dir, who[i]);
    assert_int_equal(fl_ledger_open(dir, NULL, &l[i]), FL_OK);
    assert_int_equal(fl_ledger_height(l[i]), h);
    assert_int_equal(fl_ledger_range_new(l[i], NULL, (fl_buf_t){0}, (fl_buf_t){0}, &it[i]), FL_OK);
  }
  size_t n = 0;
  for (;;) {
    fl_buf_t k0, v0, k1, v1;
    fl_ledger_version_t w0, w1;
    fl_status_t r0 = fl_ledger_range_next(it[0], &k0, &v0, &w0);
    fl_status_t r1 = fl_ledger_range_next(it[1], &k1, &v1, &w1);
    assert_int_equal(r0, r1);
    if (r0 != FL_OK) break;
    assert_true(fl_buf_eq(k0, k1));
    assert_true(fl_buf_eq(v0, v1));
    assert_int_equal(w0.block, w1.block);
    assert_int_equal(w0.tx, w1.tx);
    n++;
  }
  printf("# offline: %zu state entries identical\n", n);
  for (int i = 0; i < 2; i++) {
    fl_ledger_range_free(it[i]);
    fl_ledger_close(l[i]);
  }
}

static int setup(void **state) {
  (void)state;
  pn_opts_t o = {.log = "info"};
  if (pn_net_new(&o, envs("FL_PEER_BIN_DIR"), envs("FL_KVSTORE_SO"), envs("FL_COUNTER_SO"),
                 &g_net) != FL_OK)
    return -1;
  if (pn_start_all(g_net) == FL_OK && pn_smoke(g_net, 15000) == FL_OK) return 0;
  pn_net_free(g_net); /* cmocka skips the group teardown after a failed setup */
  g_net = NULL;
  return -1;
}

static int teardown(void **state) {
  (void)state;
  pn_net_free(g_net);
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines as they happen */
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill_restart_catch_up)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
