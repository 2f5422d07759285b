/* SPDX-License-Identifier: Apache-2.0
 *
 * test_edge_network.c (label integration): federated learning through a
 * live loopback network: 4 fedledger-orderer + 2x2 fedledger-peer (the
 * peer's integration harness, tests/integration/peer/harness.h, with the
 * mlupdate chaincode added to its genesis), 5 fedledger-edge processes on
 * disjoint shards (one sign-flipping with a large norm) and a
 * fedledger-keeper, for 3 rounds. Checks: every honest update ACCEPTED; the
 * attacker's REJECTED with OUTLIER_MAX_NORM and the attacker revoked
 * automatically (revoked_by mlupdate); the global model's held-out accuracy
 * rises; every peer holds the same model history, and every model hash in
 * it matches the blob each peer serves. Every process is killed by PID at
 * the end (the harness's atexit hook too).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "chaincode/mlupdate/json.h"
#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/crypto/hash.h"
#include "ml/agg.h"
#include "ml/edge/data.h"
#include "ml/edge/ledger.h"
#include "ml/edge/update.h"
#include "ml/metrics.h"
#include "tests/integration/peer/harness.h"

#define NEDGE 5
#define ROUNDS 3
#define ATTACKER 4 /* client2@org2 */
#define TASK "ids-1"

static pn_net_t *net;
static pid_t kids[NEDGE + 1];

static void kill_kids(void) {
  for (int i = 0; i <= NEDGE; i++)
    if (kids[i] > 0) {
      kill(kids[i], SIGKILL);
      waitpid(kids[i], NULL, 0);
      kids[i] = 0;
    }
}

static pid_t spawn(const char *log, char **argv) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE *f = freopen(log, "w", stderr);
    if (f == NULL || freopen("/dev/null", "w", stdout) == NULL) _exit(99);
    execv(argv[0], argv);
    _exit(98);
  }
  return pid;
}

static const char *dom(int org) { return org == 0 ? "org1.example.com" : "org2.example.com"; }

/* A session to peer i as user `user` of org. */
static fl_edge_session_t *session(int peer, const char *user) {
  int org = net->porg[peer];
  char msp[600], tls[600], ep[64];
  snprintf(msp, sizeof msp, "%s/pki/peerOrganizations/%s/users/%s@%s/msp", net->dir, dom(org), user,
           dom(org));
  snprintf(tls, sizeof tls, "%s/pki/peerOrganizations/%s/users/%s@%s/tls", net->dir, dom(org), user,
           dom(org));
  snprintf(ep, sizeof ep, "127.0.0.1:%u", net->pport[peer]);
  fl_edge_conn_t c = {.mspid = org == 0 ? "Org1MSP" : "Org2MSP", .msp_dir = msp, .tls_dir = tls,
                      .gateway = ep, .channel = PN_CHANNEL, .call_timeout_ms = 20000,
                      .commit_timeout_ms = 30000, .backoff_min_ms = 100, .backoff_max_ms = 1000};
  fl_edge_session_t *s = NULL;
  char *err = NULL;
  if (fl_edge_session_open(&c, &s, &err) != FL_OK) fprintf(stderr, "session: %s\n", err);
  assert_non_null(s);
  return s;
}

static fl_status_t query(fl_edge_session_t *s, const char *const *a, size_t n, fl_sbuf_t *out) {
  fl_buf_t args[8];
  for (size_t i = 0; i < n; i++) args[i] = FL_BUF_STR(a[i]);
  fl_client_result_t r;
  fl_status_t st = fl_edge_session_evaluate(s, args, n, &r);
  out->len = 0;
  if (st == FL_OK) fl_sbuf_append(out, r.payload.data, r.payload.len);
  fl_client_result_clear(&r);
  return st;
}

static double accuracy(const fl_ml_model_spec_t *spec, const fl_ml_tensors_t *p,
                       const fl_ml_dataset_t *ds) {
  fl_ml_model_t *m = NULL;
  assert_int_equal(fl_ml_model_new(spec, 1, &m), FL_OK);
  assert_int_equal(fl_ml_model_set_params(m, p), FL_OK);
  int32_t *pred = fl_malloc(ds->n * sizeof(int32_t));
  fl_ml_model_predict(m, ds->x, ds->n, pred);
  fl_ml_metrics_t mt;
  fl_ml_metrics(ds->y, pred, ds->n, spec->n_classes, &mt);
  fl_free(pred);
  fl_ml_model_free(m);
  return mt.accuracy;
}

static void test_fl_rounds_through_the_ledger(void **state) {
  (void)state;
  const char *bin = getenv("FL_PEER_BIN_DIR");
  assert_non_null(bin);
  pn_opts_t o = {.log = "info"};
  assert_int_equal(pn_net_new(&o, bin, getenv("FL_KVSTORE_SO"), getenv("FL_COUNTER_SO"), &net),
                   FL_OK);
  /* Add mlupdate to the network's chaincodes and regenerate genesis. */
  char p[700];
  snprintf(p, sizeof p, "%s/cc/mlupdate.so", net->dir);
  {
    char *cmd = fl_sprintf("cp '%s' '%s'", MLUPDATE_SO, p);
    assert_int_equal(system(cmd), 0);
    fl_free(cmd);
    snprintf(p, sizeof p, "%s/network.yaml", net->dir);
    cmd = fl_sprintf(
             "sed -i 's|^  - {name: counter, version: \"1.0\", library: counter.so}|&\\n"
             "  - {name: mlupdate, version: \"1.0\", library: mlupdate.so}|' '%s' && "
             "grep -q mlupdate.so '%s' && '%s/fedledger' genesis -c '%s' -o '%s/genesis.block' "
             "--force > '%s/genesis2.log' 2>&1",
             p, p, bin, p, net->dir, net->dir);
    assert_int_equal(system(cmd), 0);
    fl_free(cmd);
  }
  assert_int_equal(pn_start_all(net), FL_OK);

  /* Data: every edge's view is computed the same way; the test uses it
   * for the held-out evaluation and for the model's input size. */
  const char *sh = getenv("FL_SHARED_DIR");
  char dsdir[512], dsfile[600];
  snprintf(dsdir, sizeof dsdir, "%s/datasets", sh ? sh : "../shared");
  snprintf(dsfile, sizeof dsfile, "%s/nsl-kdd/KDDTrain+_20Percent.txt.gz", dsdir);
  struct stat st;
  bool have = stat(dsfile, &st) == 0;
  const char *dataset = have ? "nsl-kdd" : "generated";
  fl_edge_data_opts_t dopt = {.dataset = dataset, .dir = dsdir, .classes = 2, .part = 0,
                              .parts = NEDGE, .test_frac = 0.2, .seed = 5, .max_rows = 4000,
                              .gen_features = 20, .gen_classes = 2, .gen_rows = 4000};
  fl_edge_data_t data;
  char err[256];
  assert_int_equal(fl_edge_data_load(&dopt, &data, err, sizeof err), FL_OK);
  fl_ml_model_spec_t spec = {.kind = FL_ML_LOGREG, .n_in = data.train.d, .n_classes = 2};
  fl_ml_model_t *m0 = NULL;
  assert_int_equal(fl_ml_model_new(&spec, 77, &m0), FL_OK);
  /* An honest update's norm sets the task's max_norm (x4): the attacker's
   * sign flip x50 is far above it. */
  fl_ml_model_t *mt = NULL;
  assert_int_equal(fl_ml_model_new(&spec, 77, &mt), FL_OK);
  uint32_t *idx = fl_malloc(data.train.n * sizeof(uint32_t));
  for (size_t i = 0; i < data.train.n; i++) idx[i] = (uint32_t)i;
  fl_ml_train_opts_t to = {.opt = FL_ML_OPT_ADAM, .lr = 0.01f, .batch = 32, .epochs = 1, .seed = 1};
  assert_int_equal(fl_edge_train(mt, &data.train, idx, data.train.n, &to, 10, NULL, NULL, NULL),
                   FL_OK);
  fl_ml_tensors_t delta;
  assert_int_equal(fl_edge_update_delta(fl_ml_model_cparams(m0), fl_ml_model_cparams(mt), &delta),
                   FL_OK);
  double honest = fl_ml_norm(delta.values, delta.n_values);
  fl_ml_tensors_free(&delta);
  fl_ml_model_free(mt);
  fl_free(idx);
  fl_sbuf_t blob = {0};
  assert_int_equal(fl_ml_blob_encode(fl_ml_model_cparams(m0), &blob), FL_OK);
  uint8_t h0[32];
  fl_sha256(blob.data, blob.len, h0);
  char h0x[65];
  fl_hex_encode(h0, 32, h0x);
  char *def = fl_sprintf("{\"arch\":\"logreg %ux1\",\"rule\":\"fedavg\",\"max_norm\":%.6g,"
                         "\"min_updates\":4,\"round_ms\":120000,\"reject_limit\":0.5,"
                         "\"reject_min\":2,\"init_hash\":\"%s\"}",
                         spec.n_in, 4 * honest + 0.5, h0x);
  fl_edge_session_t *admin = session(0, "Admin");
  fl_buf_t ca[] = {FL_BUF_STR("CreateTask"), FL_BUF_STR(TASK), FL_BUF_STR(def)};
  fl_buf_t cb = fl_sbuf_view(&blob);
  fl_client_result_t r;
  fl_status_t rc = FL_EIO;
  for (int tries = 0; tries < 20; tries++) { /* the peers may still be catching up */
    rc = fl_edge_session_submit(admin, ca, 3, &cb, 1, &r);
    if (rc != FL_OK) fprintf(stderr, "CreateTask: %s %s\n", fl_status_name(rc), r.error);
    fl_client_result_clear(&r);
    if (rc == FL_OK) break;
    pn_sleep_ms(500);
  }
  assert_int_equal(rc, FL_OK);
  fl_free(def);

  /* Edge 1's gateway (peer1.org1) is down when the edges start and comes
   * back 1.5 s later: edge 1 must reconnect and catch up, and no round can
   * close without it (min_updates = the 4 honest edges). */
  assert_int_equal(pn_signal_peer(net, 1, SIGKILL), FL_OK);
  /* 5 edges (3 of Org1, 2 of Org2) and one keeper (Admin of Org2). */
  static const int eorg[NEDGE] = {0, 0, 0, 1, 1};
  static const int epeer[NEDGE] = {0, 1, 0, 2, 3};
  static const int euser[NEDGE] = {1, 2, 3, 1, 2};
  uint64_t t0 = pn_now_ms();
  for (int i = 0; i <= NEDGE; i++) {
    bool keeper = i == NEDGE;
    int org = keeper ? 1 : eorg[i], peer = keeper ? 2 : epeer[i];
    char user[64], msp[600], tls[600], gw[32], ev[64], part[16], logp[600], exe[600];
    if (keeper) snprintf(user, sizeof user, "Admin@%s", dom(org));
    else snprintf(user, sizeof user, "client%d@%s", euser[i], dom(org));
    snprintf(msp, sizeof msp, "%s/pki/peerOrganizations/%s/users/%s/msp", net->dir, dom(org), user);
    snprintf(tls, sizeof tls, "%s/pki/peerOrganizations/%s/users/%s/tls", net->dir, dom(org), user);
    snprintf(gw, sizeof gw, "127.0.0.1:%u", net->pport[peer]);
    snprintf(ev, sizeof ev, "tcp://127.0.0.1:%u", net->eport[peer]);
    snprintf(part, sizeof part, "%d/%d", i, NEDGE);
    snprintf(logp, sizeof logp, "%s/%s%d.log", net->dir, keeper ? "keeper" : "edge", i);
    snprintf(exe, sizeof exe, "%s", keeper ? KEEPER_BIN : EDGE_BIN);
    char *argv[64];
    int n = 0;
#define A(s) argv[n++] = fl_strdup(s)
    A(exe);
    A("--mspid"), A(org == 0 ? "Org1MSP" : "Org2MSP"), A("--msp-dir"), A(msp);
    A("--tls-dir"), A(tls), A("--gateway"), A(gw), A("--events"), A(ev), A("--task"), A(TASK);
    A("--rounds"), A("3"), A("--poll"), A("500ms"), A("--backoff-max"), A("1s");
    if (!keeper) {
      char seed[16];
      snprintf(seed, sizeof seed, "%d", 100 + i);
      A("--dataset"), A(dataset), A("--data-dir"), A(dsdir), A("--partition"), A(part);
      A("--seed"), A("5"), A("--max-rows"), A("4000"), A("--lr"), A("0.01"), A("--batch"), A("32");
      A("--train-seed"), A(seed), A("--progress"), A("off");
      if (i == ATTACKER) A("--attack"), A("signflip"), A("--attack-scale"), A("50");
    }
#undef A
    argv[n] = NULL;
    kids[i] = spawn(logp, argv);
    for (int k = 0; k < n; k++) fl_free(argv[k]);
    assert_true(kids[i] > 0);
  }
  pn_sleep_ms(1500);
  assert_int_equal(pn_start_peer(net, 1), FL_OK);
  /* Wait for all of them (< 150 s). */
  int alive = NEDGE + 1;
  while (alive > 0 && pn_now_ms() - t0 < 150000) {
    alive = 0;
    for (int i = 0; i <= NEDGE; i++) {
      if (kids[i] <= 0) continue;
      int ws = 0;
      pid_t w = waitpid(kids[i], &ws, WNOHANG);
      if (w == kids[i]) {
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
          fprintf(stderr, "%s %d exited with %d (log %s/%s%d.log)\n",
                  i == NEDGE ? "keeper" : "edge", i, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1,
                  net->dir, i == NEDGE ? "keeper" : "edge", i);
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
        kids[i] = 0;
      } else {
        alive++;
      }
    }
    if (alive) pn_sleep_ms(200);
  }
  if (alive) pn_diagnose(net);
  assert_int_equal(alive, 0);
  fprintf(stderr, "3 rounds with 5 edges and a keeper: %.1f s\n", (double)(pn_now_ms() - t0) / 1e3);
  {
    char lp[600];
    snprintf(lp, sizeof lp, "%s/edge1.log", net->dir);
    FILE *f = fopen(lp, "r");
    assert_non_null(f);
    char line[2048];
    int lost = 0, back = 0;
    while (fgets(line, sizeof line, f)) {
      lost += strstr(line, "gateway unreachable") != NULL;
      back += strstr(line, "gateway reconnected") != NULL;
    }
    fclose(f);
    assert_true(lost >= 1 && back >= 1); /* edge 1 waited for its peer and resumed */
  }

  /* The attacker: rejected with reasons, revoked automatically. */
  fl_edge_session_t *q0 = session(0, "client1");
  fl_sbuf_t out = {0};
  const char *att = "Org2MSP:client2@org2.example.com";
  int rejected_norm = 0;
  for (int rr = 0; rr < ROUNDS; rr++) {
    char rs[8];
    snprintf(rs, sizeof rs, "%d", rr);
    const char *ga[] = {"GetUpdate", TASK, rs, att};
    if (query(q0, ga, 4, &out) != FL_OK) continue; /* it may have raced a close */
    fl_edge_update_rec_t u;
    assert_int_equal(fl_edge_update_rec_parse(fl_sbuf_view(&out), &u, err, sizeof err), FL_OK);
    assert_false(u.accepted);
    assert_true(u.reason[0] != '\0');
    rejected_norm += strcmp(u.reason, "OUTLIER_MAX_NORM") == 0;
    fprintf(stderr, "attacker round %d: REJECTED %s (%s)\n", rr, u.reason, u.detail);
  }
  assert_true(rejected_norm >= 2);
  const char *gc[] = {"GetClient", att};
  assert_int_equal(query(q0, gc, 2, &out), FL_OK);
  assert_non_null(strstr(fl_sbuf_cstr(&out), "\"revoked\":true"));
  assert_non_null(strstr(fl_sbuf_cstr(&out), "\"revoked_by\":\"mlupdate\""));
  /* The honest edges: accepted every round. */
  for (int i = 0; i < NEDGE; i++) {
    if (i == ATTACKER) continue;
    char id[96];
    snprintf(id, sizeof id, "%s:client%d@%s", eorg[i] == 0 ? "Org1MSP" : "Org2MSP", euser[i],
             dom(eorg[i]));
    for (int rr = 0; rr < ROUNDS; rr++) {
      char rs[8];
      snprintf(rs, sizeof rs, "%d", rr);
      const char *ga[] = {"GetUpdate", TASK, rs, id};
      assert_int_equal(query(q0, ga, 4, &out), FL_OK);
      fl_edge_update_rec_t u;
      assert_int_equal(fl_edge_update_rec_parse(fl_sbuf_view(&out), &u, err, sizeof err), FL_OK);
      assert_true(u.accepted);
    }
  }

  /* Every peer: the same model history; every hash matches its blob. */
  uint64_t height = 0;
  uint8_t hh[32];
  fl_rpc_sync_t *rs0 = NULL;
  assert_int_equal(pn_connect_peer(net, 0, 0, &rs0), FL_OK);
  assert_int_equal(pn_chain_info(rs0, &height, hh), FL_OK);
  fl_rpc_sync_close(rs0);
  fl_sbuf_t hist0 = {0};
  fl_ml_tensors_t last = {0};
  for (int i = 0; i < PN_NPEER; i++) {
    assert_int_equal(pn_wait_height(net, i, height, 20000), FL_OK);
    fl_edge_session_t *s = session(i, "client1");
    const char *gh[] = {"GetModelHistory", TASK};
    assert_int_equal(query(s, gh, 2, &out), FL_OK);
    if (i == 0) fl_sbuf_append(&hist0, out.data, out.len);
    assert_int_equal(out.len, hist0.len);
    assert_memory_equal(out.data, hist0.data, out.len);
    fl_mlu_json_t *j = NULL;
    assert_int_equal(fl_mlu_json_parse(fl_sbuf_view(&out), &j), FL_OK);
    const fl_mlu_json_t *models = fl_mlu_json_get(j, "models");
    assert_non_null(models);
    assert_true(models->n >= ROUNDS);
    for (size_t k = 0; k < models->n; k++) {
      const char *hx = fl_mlu_json_str(fl_mlu_json_get(&models->items[k], "hash"));
      uint8_t h[32];
      assert_int_equal(fl_hex_decode(hx, 64, h, 32), 32);
      fl_ml_tensors_t t;
      assert_int_equal(fl_edge_fetch_model(s, h, NULL, &t), FL_OK); /* SHA-256 checked */
      if (i == 0 && k == ROUNDS - 1) fl_ml_tensors_copy(&last, &t);
      fl_ml_tensors_free(&t);
    }
    fl_mlu_json_free(j);
    fl_edge_session_close(s);
  }
  /* The global model improved on the held-out rows. */
  double a0 = accuracy(&spec, fl_ml_model_cparams(m0), &data.test);
  double a3 = accuracy(&spec, &last, &data.test);
  fprintf(stderr, "held-out accuracy: initial %.4f, after %d rounds %.4f\n", a0, ROUNDS, a3);
  assert_true(a3 > a0 + 0.05);
  assert_true(a3 > 0.7);

  fl_ml_tensors_free(&last);
  fl_sbuf_free(&hist0);
  fl_sbuf_free(&out);
  fl_sbuf_free(&blob);
  fl_edge_session_close(q0);
  fl_edge_session_close(admin);
  fl_ml_model_free(m0);
  fl_edge_data_free(&data);
  kill_kids();
  pn_net_free(net);
  net = NULL;
}

static int teardown(void **state) {
  (void)state;
  kill_kids();
  pn_net_free(net);
  net = NULL;
  return 0;
}

int main(void) {
  fl_log_configure("warn");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_fl_rounds_through_the_ledger, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
