/* SPDX-License-Identifier: Apache-2.0
 *
 * test_faults_kill.c (label integration): kill -9 of every process type at
 * random moments while blocks commit and federated-learning rounds run.
 *
 * The peer harness's network (4 fedledger-orderer, 2x2 fedledger-peer on
 * 127.0.0.1) with the mlupdate chaincode added to its genesis; an FL task
 * (logistic regression on the generated dataset, min_updates 4); four
 * honest fedledger-edge processes (one per peer) and a fedledger-keeper
 * running rounds until stopped; a load thread submitting kvstore
 * transactions through peer0.org1 and peer0.org2.
 *
 * FL_FAULTS_KILLS times (default 20; FL_FAULTS_SEED fixes the moments) the
 * test waits 0.6-2.4 s, picks the next type of a shuffled cycle (orderer,
 * peer, edge, keeper) and one process of it at random, SIGKILLs it, waits
 * 0.05-0.8 s and starts it again with the same files. One process is down
 * at a time, and a restarted orderer catches up before the next kill (the
 * f = 1 fault model of PBFT with 4 replicas). Checks:
 *   - nothing committed is lost: a restarted orderer's store and a
 *     restarted peer's ledger hold at least the height they had just
 *     before the kill (first answer after the restart);
 *   - afterwards (edges and keeper stopped with SIGTERM: exit 0, load
 *     stopped): every peer at one height, the same header hashes and
 *     validation codes on the 4 peers and 4 orderers (no fork), kvstore
 *     state identical on every peer, the model history byte-identical on
 *     every peer, at least 2 rounds closed and every closed round holding
 *     the 4 edges' ACCEPTED updates (a killed edge resumed its round).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chaincode/mlupdate/json.h"
#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/crypto/hash.h"
#include "ml/edge/ledger.h"
#include "ml/model.h"
#include "ml/tensor.h"
#include "tests/faults/fxnet.h"
#include "tests/integration/peer/harness.h"

#define NEDGE 4
#define KEEPER NEDGE
#define TASK "kill-1"

static pn_net_t *g_net;
static fx_load_t *g_load;
static pid_t g_kid[NEDGE + 1];
static char *g_argv[NEDGE + 1][48];

static const char *envs(const char *n) {
  const char *v = getenv(n);
  return v ? v : "";
}

static const char *dom(int org) { return org == 0 ? "org1.example.com" : "org2.example.com"; }

static void kill_kid(int i) {
  if (g_kid[i] <= 0) return;
  kill(g_kid[i], SIGKILL);
  waitpid(g_kid[i], NULL, 0);
  g_kid[i] = 0;
}

static void on_exit_kill(void) {
  for (int i = 0; i <= NEDGE; i++) kill_kid(i);
}

static pid_t spawn_kid(int i) {
  char logp[600];
  snprintf(logp, sizeof logp, "%s/%s%d.log", g_net->dir, i == KEEPER ? "keeper" : "edge", i);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    /* Die with the test process, whatever kills it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(126);
    FILE *f = freopen(logp, "a", stderr);
    if (f == NULL || freopen("/dev/null", "w", stdout) == NULL) _exit(99);
    execv(g_argv[i][0], g_argv[i]);
    _exit(98);
  }
  g_kid[i] = pid;
  return pid;
}

/* Edge i: clientN of an org through peer i; the keeper: Admin of Org2
 * through peer 2. Runs until SIGTERM (--rounds 0). */
static void build_argv(int i) {
  bool keeper = i == KEEPER;
  int peer = keeper ? 2 : i, org = g_net->porg[peer];
  char user[64], msp[600], tls[600], gw[32], ev[64], part[16], seed[16];
  if (keeper) snprintf(user, sizeof user, "Admin@%s", dom(org));
  else snprintf(user, sizeof user, "client%d@%s", 1 + (i & 1), dom(org));
  snprintf(msp, sizeof msp, "%s/pki/peerOrganizations/%s/users/%s/msp", g_net->dir, dom(org), user);
  snprintf(tls, sizeof tls, "%s/pki/peerOrganizations/%s/users/%s/tls", g_net->dir, dom(org), user);
  snprintf(gw, sizeof gw, "127.0.0.1:%u", g_net->pport[peer]);
  snprintf(ev, sizeof ev, "tcp://127.0.0.1:%u", g_net->eport[peer]);
  snprintf(part, sizeof part, "%d/%d", i, NEDGE);
  snprintf(seed, sizeof seed, "%d", 100 + i);
  char **a = g_argv[i];
  int n = 0;
#define A(s) a[n++] = fl_strdup(s)
  A(keeper ? KEEPER_BIN : EDGE_BIN);
  A("--mspid"), A(org == 0 ? "Org1MSP" : "Org2MSP"), A("--msp-dir"), A(msp);
  A("--tls-dir"), A(tls), A("--gateway"), A(gw), A("--events"), A(ev), A("--task"), A(TASK);
  A("--rounds"), A("0"), A("--poll"), A("300ms"), A("--backoff-max"), A("1s");
  if (!keeper) {
    A("--dataset"), A("generated"), A("--data-dir"), A(g_net->dir), A("--partition"), A(part);
    A("--seed"), A("5"), A("--max-rows"), A("2000"), A("--lr"), A("0.01"), A("--batch"), A("32");
    A("--train-seed"), A(seed), A("--progress"), A("off");
  }
#undef A
  a[n] = NULL;
}

static fl_edge_session_t *session(int peer, const char *user) {
  int org = g_net->porg[peer];
  char msp[600], tls[600], ep[64];
  snprintf(msp, sizeof msp, "%s/pki/peerOrganizations/%s/users/%s@%s/msp", g_net->dir, dom(org),
           user, dom(org));
  snprintf(tls, sizeof tls, "%s/pki/peerOrganizations/%s/users/%s@%s/tls", g_net->dir, dom(org),
           user, dom(org));
  snprintf(ep, sizeof ep, "127.0.0.1:%u", g_net->pport[peer]);
  fl_edge_conn_t c = {.mspid = org == 0 ? "Org1MSP" : "Org2MSP", .msp_dir = msp, .tls_dir = tls,
                      .gateway = ep, .channel = PN_CHANNEL, .call_timeout_ms = 20000,
                      .commit_timeout_ms = 30000, .backoff_min_ms = 100, .backoff_max_ms = 1000};
  fl_edge_session_t *s = NULL;
  char *err = NULL;
  if (fl_edge_session_open(&c, &s, &err) != FL_OK) fprintf(stderr, "session: %s\n", err);
  fl_free(err);
  assert_non_null(s);
  return s;
}

/* An evaluation; a transport error (the session's peer was restarted
 * since its last use) is retried: the session reconnects. */
static fl_status_t query(fl_edge_session_t *s, const char *const *a, size_t n, fl_sbuf_t *out) {
  fl_buf_t args[8];
  for (size_t i = 0; i < n; i++) args[i] = FL_BUF_STR(a[i]);
  fl_status_t st = FL_EIO;
  for (int tries = 0; tries < 10; tries++) {
    fl_client_result_t r;
    st = fl_edge_session_evaluate(s, args, n, &r);
    out->len = 0;
    if (st == FL_OK) fl_sbuf_append(out, r.payload.data, r.payload.len);
    else fprintf(stderr, "query %s: %s %s\n", a[0], fl_status_name(st), r.error ? r.error : "");
    fl_client_result_clear(&r);
    if (st == FL_OK || st == FL_NOTFOUND) break;
    pn_sleep_ms(300);
  }
  return st;
}

static void create_task(void) {
  fl_ml_model_spec_t spec = {.kind = FL_ML_LOGREG, .n_in = 20, .n_classes = 2};
  fl_ml_model_t *m0 = NULL;
  assert_int_equal(fl_ml_model_new(&spec, 77, &m0), FL_OK);
  fl_sbuf_t blob = {0};
  assert_int_equal(fl_ml_blob_encode(fl_ml_model_cparams(m0), &blob), FL_OK);
  uint8_t h0[32];
  fl_sha256(blob.data, blob.len, h0);
  char h0x[65];
  fl_hex_encode(h0, 32, h0x);
  char *def = fl_sprintf("{\"arch\":\"logreg 20x1\",\"rule\":\"fedavg\",\"max_norm\":1000,"
                         "\"min_updates\":%d,\"round_ms\":300000,\"reject_limit\":0.5,"
                         "\"reject_min\":2,\"init_hash\":\"%s\"}",
                         NEDGE, h0x);
  fl_edge_session_t *admin = session(0, "Admin");
  fl_buf_t ca[] = {FL_BUF_STR("CreateTask"), FL_BUF_STR(TASK), FL_BUF_STR(def)};
  fl_buf_t cb = fl_sbuf_view(&blob);
  fl_status_t rc = FL_EIO;
  for (int tries = 0; tries < 20 && rc != FL_OK; tries++) {
    fl_client_result_t r;
    rc = fl_edge_session_submit(admin, ca, 3, &cb, 1, &r);
    if (rc != FL_OK) fprintf(stderr, "CreateTask: %s %s\n", fl_status_name(rc), r.error);
    fl_client_result_clear(&r);
    if (rc != FL_OK) pn_sleep_ms(500);
  }
  assert_int_equal(rc, FL_OK);
  fl_edge_session_close(admin);
  fl_free(def);
  fl_sbuf_free(&blob);
  fl_ml_model_free(m0);
}

static uint64_t orderer_height(int i) {
  uint64_t h = 0;
  if (fx_orderer_chain(g_net, i, NULL, &h) != FL_OK) return 0;
  return h;
}

static const char *kind_name[4] = {"orderer", "peer", "edge", "keeper"};

/* Kills one process of kind k, restarts it, checks it lost nothing. */
static void kill_one(int k, int idx, uint32_t down_ms, uint64_t *lost_check, uint64_t *after_out) {
  *after_out = 0;
  if (k == 0) {
    uint64_t before = orderer_height(idx);
    fx_kill_orderer(g_net, idx);
    pn_sleep_ms(down_ms);
    assert_int_equal(pn_start_orderer(g_net, idx), FL_OK);
    assert_int_equal(pn_wait_orderer(g_net, idx, 30000), FL_OK);
    uint64_t after = orderer_height(idx);
    if (after < before)
      fail_msg("orderer%d had %llu blocks before kill -9 and %llu after the restart", idx,
               (unsigned long long)before, (unsigned long long)after);
    *lost_check = before;
    *after_out = after;
    /* One fault at a time (f = 1): the next kill waits until this orderer
     * has caught up with the others. */
    uint64_t top = 0;
    for (int i = 0; i < PN_NORD; i++)
      if (i != idx) {
        uint64_t h = orderer_height(i);
        if (h > top) top = h;
      }
    uint64_t end = pn_now_ms() + 90000;
    while (orderer_height(idx) < top && pn_now_ms() < end) pn_sleep_ms(200);
    if (orderer_height(idx) < top)
      fail_msg("orderer%d did not catch up to %llu blocks within 90 s of its restart", idx,
               (unsigned long long)top);
  } else if (k == 1) {
    uint64_t before = fx_peer_height(g_net, idx);
    assert_int_equal(pn_signal_peer(g_net, idx, SIGKILL), FL_OK);
    pn_sleep_ms(down_ms);
    assert_int_equal(pn_start_peer(g_net, idx), FL_OK);
    assert_int_equal(pn_wait_peer(g_net, idx, 30000), FL_OK);
    uint64_t after = fx_peer_height(g_net, idx);
    if (after < before)
      fail_msg("peer%d had height %llu before kill -9 and %llu after the restart", idx,
               (unsigned long long)before, (unsigned long long)after);
    *lost_check = before;
    *after_out = after;
  } else {
    int i = k == 3 ? KEEPER : idx;
    int ws = 0;
    /* It must still be running: an edge or keeper that exited by itself
     * failed. */
    assert_int_equal(waitpid(g_kid[i], &ws, WNOHANG), 0);
    kill_kid(i);
    pn_sleep_ms(down_ms);
    assert_true(spawn_kid(i) > 0);
    *lost_check = 0;
  }
}

static void test_kill_every_process_type(void **state) {
  (void)state;
  int kills = atoi(envs("FL_FAULTS_KILLS"));
  if (kills <= 0) kills = 20;
  unsigned seed = (unsigned)atoi(envs("FL_FAULTS_SEED"));
  if (seed == 0) seed = (unsigned)time(NULL);
  srand(seed);
  printf("# kill: %d kills, seed %u (FL_FAULTS_SEED)\n", kills, seed);
  create_task();
  for (int i = 0; i <= NEDGE; i++) {
    build_argv(i);
    assert_true(spawn_kid(i) > 0);
  }
  g_load = fx_load_start(g_net, "kill", 20, 10);
  assert_non_null(g_load);
  int count[4] = {0}, cycle[4] = {0, 1, 2, 3};
  uint64_t t0 = pn_now_ms();
  for (int n = 0; n < kills; n++) {
    if (n % 4 == 0)
      for (int j = 3; j > 0; j--) {
        int r = rand() % (j + 1), t = cycle[j];
        cycle[j] = cycle[r];
        cycle[r] = t;
      }
    int k = cycle[n % 4];
    int idx = k == 0 ? rand() % PN_NORD : k == 1 ? rand() % PN_NPEER : rand() % NEDGE;
    pn_sleep_ms(600 + (uint32_t)(rand() % 1800));
    uint32_t down = 50 + (uint32_t)(rand() % 750);
    uint64_t kept = 0, kept_after = 0;
    kill_one(k, idx, down, &kept, &kept_after);
    count[k]++;
    char who[32], held[64] = "";
    if (k == 3) snprintf(who, sizeof who, "keeper");
    else snprintf(who, sizeof who, "%s%d", kind_name[k], idx);
    if (k < 2) snprintf(held, sizeof held, ", restarted holding %llu >= %llu blocks",
                        (unsigned long long)kept_after, (unsigned long long)kept);
    printf("# kill %d/%d: %s down %u ms%s\n", n + 1, kills, who, down, held);
  }
  uint64_t t_kills = pn_now_ms() - t0;
  /* FL must still progress: one more round closes after the last kill. */
  fl_edge_session_t *q = session(0, "client1");
  fl_sbuf_t out = {0};
  const char *gh[] = {"GetModelHistory", TASK};
  size_t closed0 = 0, closed = 0;
  if (query(q, gh, 2, &out) == FL_OK) {
    fl_mlu_json_t *j = NULL;
    if (fl_mlu_json_parse(fl_sbuf_view(&out), &j) == FL_OK) {
      const fl_mlu_json_t *m = fl_mlu_json_get(j, "models");
      closed0 = m ? m->n : 0;
    }
    fl_mlu_json_free(j);
  }
  uint64_t end = pn_now_ms() + 90000;
  while (pn_now_ms() < end) {
    closed = 0;
    if (query(q, gh, 2, &out) == FL_OK) {
      fl_mlu_json_t *j = NULL;
      if (fl_mlu_json_parse(fl_sbuf_view(&out), &j) == FL_OK) {
        const fl_mlu_json_t *m = fl_mlu_json_get(j, "models");
        closed = m ? m->n : 0;
      }
      fl_mlu_json_free(j);
    }
    if (closed > closed0 && closed >= 2) break;
    pn_sleep_ms(300);
  }
  if (!(closed > closed0 && closed >= 2)) pn_diagnose(g_net);
  assert_true(closed > closed0 && closed >= 2);
  /* Stop the FL clients (SIGTERM: clean exit 0) and the load. */
  for (int i = 0; i <= NEDGE; i++) {
    kill(g_kid[i], SIGTERM);
    int ws = 0;
    uint64_t e2 = pn_now_ms() + 60000;
    pid_t w = 0;
    while ((w = waitpid(g_kid[i], &ws, WNOHANG)) == 0 && pn_now_ms() < e2) pn_sleep_ms(20);
    if (w != g_kid[i]) {
      char *cmd = fl_sprintf("tail -5 '%s/%s%d.log' | cut -c1-200 | sed 's/^/#   /'", g_net->dir,
                             i == KEEPER ? "keeper" : "edge", i);
      int rc = system(cmd);
      (void)rc;
      fl_free(cmd);
      kill_kid(i);
      fail_msg("%s %d did not stop on SIGTERM", i == KEEPER ? "keeper" : "edge", i);
    }
    g_kid[i] = 0;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
      fail_msg("%s %d exited with status %d on SIGTERM (log %s/%s%d.log)",
               i == KEEPER ? "keeper" : "edge", i, ws, g_net->dir, i == KEEPER ? "keeper" : "edge",
               i);
  }
  uint32_t valid = 0, failed = 0;
  fx_load_stop(g_load, &valid, &failed);
  g_load = NULL;
  /* Everyone agrees. */
  uint64_t h = fx_settle(g_net, 0xF, 60000);
  assert_true(h > 0);
  assert_int_equal(fx_check_agree(g_net, 0xF, 0xF, h), FL_OK);
  size_t sn = 0;
  for (int i = 1; i < PN_NPEER; i++) assert_int_equal(fx_same_state(g_net, 0, i, &sn), FL_OK);
  fl_sbuf_t hist0 = {0};
  for (int i = 0; i < PN_NPEER; i++) {
    fl_edge_session_t *s = session(i, "client1");
    assert_int_equal(query(s, gh, 2, &out), FL_OK);
    if (i == 0) fl_sbuf_append(&hist0, out.data, out.len);
    assert_int_equal(out.len, hist0.len);
    assert_memory_equal(out.data, hist0.data, out.len);
    fl_edge_session_close(s);
  }
  fl_mlu_json_t *j = NULL;
  assert_int_equal(fl_mlu_json_parse(fl_sbuf_view(&hist0), &j), FL_OK);
  const fl_mlu_json_t *models = fl_mlu_json_get(j, "models");
  assert_non_null(models);
  closed = models->n;
  fl_mlu_json_free(j);
  for (size_t r = 0; r < closed; r++) {
    char rs[24];
    snprintf(rs, sizeof rs, "%zu", r);
    const char *lu[] = {"ListUpdates", TASK, rs};
    assert_int_equal(query(q, lu, 3, &out), FL_OK);
    uint64_t acc = 0, recs = 0;
    assert_int_equal(fl_edge_count_updates(fl_sbuf_view(&out), &acc, &recs), FL_OK);
    if (acc < NEDGE) fail_msg("round %zu closed with %llu accepted updates", r, (unsigned long long)acc);
  }
  printf("# kill: %d kills in %llu ms (orderer %d, peer %d, edge %d, keeper %d); %zu FL rounds "
         "closed, each with %d accepted updates; %u kvstore transactions VALID, %u failed; %llu "
         "blocks agree on 4 peers and 4 orderers (no fork), state %zu bytes equal\n",
         kills, (unsigned long long)t_kills, count[0], count[1], count[2], count[3], closed, NEDGE,
         valid, failed, (unsigned long long)h, sn);
  assert_true(valid > 0);
  fl_sbuf_free(&hist0);
  fl_sbuf_free(&out);
  fl_edge_session_close(q);
}

/* The network, with mlupdate added to its genesis. */
static int setup(void **state) {
  (void)state;
  atexit(on_exit_kill);
  pn_opts_t o = {.log = "info"};
  if (pn_net_new(&o, envs("FL_PEER_BIN_DIR"), envs("FL_KVSTORE_SO"), envs("FL_COUNTER_SO"),
                 &g_net) != FL_OK)
    return -1;
  char *cmd = fl_sprintf(
      "cp '%s' '%s/cc/mlupdate.so' && sed -i 's|^  - {name: counter, version: \"1.0\", library: "
      "counter.so}|&\\n  - {name: mlupdate, version: \"1.0\", library: mlupdate.so}|' "
      "'%s/network.yaml' && grep -q mlupdate.so '%s/network.yaml' && '%s/fedledger' genesis -c "
      "'%s/network.yaml' -o '%s/genesis.block' --force > '%s/genesis2.log' 2>&1",
      MLUPDATE_SO, g_net->dir, g_net->dir, g_net->dir, g_net->bin, g_net->dir, g_net->dir,
      g_net->dir);
  int st = system(cmd);
  fl_free(cmd);
  if (st == 0 && pn_start_all(g_net) == FL_OK && pn_smoke(g_net, 30000) == FL_OK) return 0;
  pn_net_free(g_net);
  g_net = NULL;
  return -1;
}

static int teardown(void **state) {
  (void)state;
  fx_load_stop(g_load, NULL, NULL); /* before the network it uses goes */
  g_load = NULL;
  on_exit_kill();
  for (int i = 0; i <= NEDGE; i++)
    for (int k = 0; g_argv[i][k]; k++) fl_free(g_argv[i][k]);
  pn_net_free(g_net);
  g_net = NULL;
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  fl_log_configure("warn");
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill_every_process_type)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
