/* SPDX-License-Identifier: Apache-2.0
 *
 * cli_seed.c: drives one FL round of an mlupdate task on a live network for
 * the CLI integration test, through the client SDK (what edge clients and
 * the round keeper do):
 *
 *   cli_seed PKI_DIR ORG1_PEER ORG2_PEER TASK ROUND
 *
 * Each of client1@org1, client2@org1, client1@org2, client2@org2 submits an
 * honest update (small deterministic deltas with the start model's layout,
 * signed as docs/mlupdate.md says) to its own organisation's gateway;
 * client3@org1 submits a malicious one (L2 norm far above any sane
 * max_norm); then Admin@org1 closes the round. Prints one line per
 * transaction ("submit <client> <status> <reason>", "close <model hash>")
 * and exits 0 when every transaction committed VALID.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chaincode/mlupdate/json.h"
#include "chaincode/mlupdate/mlupdate.h"
#include "common/base/alloc.h"
#include "common/client/client.h"
#include "common/client/identity.h"
#include "common/crypto/hash.h"
#include "common/crypto/sign.h"
#include "ml/tensor.h"

typedef struct who_s {
  int org;          /* 1 or 2 */
  const char *user; /* "client1", "Admin" */
  float scale;
} who_t;

/* Submit with retries while the endorsers disagree before submission (one
 * peer has not committed the previous block yet), as a keeper would. */
static fl_status_t submit_retry(fl_client_sync_t *gw, const fl_client_proposal_t *p,
                                fl_client_result_t *r) {
  fl_status_t st = fl_client_sync_submit(gw, p, true, r);
  for (int i = 1; i <= 10 && st == FL_ECONFLICT && !r->committed; i++) {
    struct timespec ts = {0, 100000000L * i};
    nanosleep(&ts, NULL);
    fl_client_result_clear(r);
    st = fl_client_sync_submit(gw, p, true, r);
  }
  return st;
}

typedef struct conn_s {
  fl_client_identity_t *id;
  fl_client_tls_t *tls;
  fl_client_sync_t *gw;
} conn_t;

static void conn_close(conn_t *c) {
  fl_client_sync_close(c->gw);
  fl_client_tls_free(c->tls);
  fl_client_identity_free(c->id);
  memset(c, 0, sizeof *c);
}

static int conn_open(conn_t *c, const char *pki, int org, const char *user, const char *peer) {
  memset(c, 0, sizeof *c);
  char dir[1024], msp[1100], tls[1100], mspid[16];
  snprintf(dir, sizeof dir, "%s/peerOrganizations/org%d.example.com/users/%s@org%d.example.com",
           pki, org, user, org);
  snprintf(msp, sizeof msp, "%s/msp", dir);
  snprintf(tls, sizeof tls, "%s/tls", dir);
  snprintf(mspid, sizeof mspid, "Org%dMSP", org);
  const char *colon = strrchr(peer, ':');
  if (colon == NULL) return -1;
  char host[256];
  snprintf(host, sizeof host, "%.*s", (int)(colon - peer), peer);
  char *err = NULL;
  if (fl_client_identity_load_msp(mspid, msp, &c->id, &err) != FL_OK ||
      fl_client_tls_load_dir(tls, host, &c->tls, &err) != FL_OK) {
    fprintf(stderr, "cli_seed: %s: %s\n", dir, err ? err : "?");
    fl_free(err);
    return -1;
  }
  fl_client_opts_t o = {.host = host,
                        .port = (uint16_t)atoi(colon + 1),
                        .tls = fl_client_tls_config(c->tls),
                        .channel = "fedledger",
                        .call_timeout_ms = 30000,
                        .commit_timeout_ms = 60000};
  if (fl_client_sync_connect(&o, c->id, &c->gw, &err) != FL_OK) {
    fprintf(stderr, "cli_seed: connect %s: %s\n", peer, err ? err : "?");
    fl_free(err);
    return -1;
  }
  return 0;
}

static fl_mlu_json_t *evaluate(conn_t *c, const char *fn, const char *a1, const char *a2) {
  fl_buf_t args[3] = {FL_BUF_STR(fn), FL_BUF_STR(a1), FL_BUF_STR(a2)};
  fl_client_proposal_t p = {.chaincode = FL_MLU_NAME, .args = args, .n_args = a2 ? 3 : 2};
  fl_client_result_t r = {0};
  fl_mlu_json_t *j = NULL;
  if (fl_client_sync_evaluate(c->gw, &p, &r) != FL_OK ||
      fl_mlu_json_parse(r.payload, &j) != FL_OK) {
    fprintf(stderr, "cli_seed: %s: %s %s\n", fn, r.error ? r.error : "", r.cc_message);
    j = NULL;
  }
  fl_client_result_clear(&r);
  return j;
}

/* Builds and submits client w's update for the round; prints the outcome. */
static int submit(const char *pki, const char *peer, const who_t *w, const char *task,
                  uint64_t round, const fl_ml_tensors_t *layout, int idx) {
  conn_t c;
  if (conn_open(&c, pki, w->org, w->user, peer) != 0) return -1;
  int rc = -1;
  fl_ml_tensors_t d = {0};
  fl_sbuf_t blob = {0}, msg = {0}, sig = {0};
  char *sighex = NULL;
  fl_ml_tensors_copy(&d, layout);
  uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(idx + 1) + round * 7919u;
  for (size_t i = 0; i < d.n_values; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    d.values[i] = w->scale * ((float)(x % 2001) / 1000.0f - 1.0f);
  }
  if (fl_ml_blob_encode(&d, &blob) != FL_OK) goto done;
  uint8_t h[32], data_hash[32];
  char hhex[65], dhex[65], samples[16], rs[24];
  fl_sha256(blob.data, blob.len, h);
  fl_hex_encode(h, 32, hhex);
  snprintf(rs, sizeof rs, "%llu", (unsigned long long)round);
  char seed[64];
  snprintf(seed, sizeof seed, "batch %s %d %llu", w->user, w->org, (unsigned long long)round);
  fl_sha256(seed, strlen(seed), data_hash);
  fl_hex_encode(data_hash, 32, dhex);
  snprintf(samples, sizeof samples, "%d", 100 + 10 * idx);
  if (fl_mlu_signed_msg(task, strlen(task), round, h, &msg) != FL_OK ||
      fl_signer_sign(fl_client_identity_signer(c.id), msg.data, msg.len, &sig) != FL_OK)
    goto done;
  sighex = fl_hex_dup(fl_sbuf_view(&sig));
  fl_buf_t args[7] = {FL_BUF_STR("SubmitUpdate"), FL_BUF_STR(task), FL_BUF_STR(rs),
                      FL_BUF_STR(hhex),           FL_BUF_STR(sighex), FL_BUF_STR(samples),
                      FL_BUF_STR(dhex)};
  fl_buf_t b0 = fl_sbuf_view(&blob);
  fl_client_proposal_t p = {.chaincode = FL_MLU_NAME, .args = args, .n_args = 7, .blobs = &b0,
                            .n_blobs = 1};
  fl_client_result_t r = {0};
  fl_status_t st = submit_retry(c.gw, &p, &r);
  fl_mlu_json_t *rec = NULL;
  if (st == FL_OK && fl_mlu_json_parse(r.payload, &rec) == FL_OK) {
    const char *reason = fl_mlu_json_str(fl_mlu_json_get(rec, "reason"));
    printf("submit Org%dMSP:%s@org%d.example.com %s %s block %llu\n", w->org, w->user, w->org,
           fl_mlu_json_str(fl_mlu_json_get(rec, "status")), reason ? reason : "-",
           (unsigned long long)r.block_number);
    rc = 0;
  } else {
    fprintf(stderr, "cli_seed: submit %s@org%d: %s (%s) %s\n", w->user, w->org,
            fl_status_name(st), r.error ? r.error : "", r.cc_message ? r.cc_message : "");
  }
  fl_mlu_json_free(rec);
  fl_client_result_clear(&r);
done:
  fl_free(sighex);
  fl_sbuf_free(&sig);
  fl_sbuf_free(&msg);
  fl_sbuf_free(&blob);
  fl_ml_tensors_free(&d);
  conn_close(&c);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: cli_seed PKI_DIR ORG1_PEER ORG2_PEER TASK ROUND\n");
    return 2;
  }
  const char *pki = argv[1], *peers[3] = {NULL, argv[2], argv[3]}, *task = argv[4];
  uint64_t round = strtoull(argv[5], NULL, 10);
  conn_t admin;
  if (conn_open(&admin, pki, 1, "Admin", peers[1]) != 0) return 1;
  int rc = 1;
  fl_mlu_json_t *rj = evaluate(&admin, "GetRound", task, argv[5]);
  fl_ml_tensors_t layout = {0};
  fl_sbuf_t start = {0};
  uint8_t sh[32];
  const char *smh = rj ? fl_mlu_json_str(fl_mlu_json_get(rj, "start_model")) : NULL;
  char *err = NULL;
  if (smh == NULL || fl_hex_decode(smh, 64, sh, 32) != 32 ||
      fl_client_sync_get_blob(admin.gw, sh, &start, &err) != FL_OK ||
      fl_ml_blob_decode(fl_sbuf_view(&start), &layout) != FL_OK) {
    fprintf(stderr, "cli_seed: cannot read the start model of round %s: %s\n", argv[5],
            err ? err : "?");
    goto done;
  }
  static const who_t who[] = {{1, "client1", 0.01f}, {1, "client2", 0.01f},
                              {2, "client1", 0.01f}, {2, "client2", 0.01f},
                              {1, "client3", 50.0f}};
  for (int i = 0; i < 5; i++)
    if (submit(pki, peers[who[i].org], &who[i], task, round, &layout, i) != 0) goto done;
  fl_buf_t args[3] = {FL_BUF_STR("CloseRound"), FL_BUF_STR(task), FL_BUF_STR(argv[5])};
  fl_client_proposal_t p = {.chaincode = FL_MLU_NAME, .args = args, .n_args = 3};
  fl_client_result_t r = {0};
  fl_status_t st = submit_retry(admin.gw, &p, &r);
  fl_mlu_json_t *m = NULL;
  if (st == FL_OK && fl_mlu_json_parse(r.payload, &m) == FL_OK) {
    printf("close %s round %s model %s block %llu\n", task, argv[5],
           fl_mlu_json_str(fl_mlu_json_get(m, "hash")), (unsigned long long)r.block_number);
    rc = 0;
  } else {
    fprintf(stderr, "cli_seed: CloseRound: %s %s %s\n", fl_status_name(st),
            r.error ? r.error : "", r.cc_message ? r.cc_message : "");
  }
  fl_mlu_json_free(m);
  fl_client_result_clear(&r);
done:
  fl_free(err);
  fl_sbuf_free(&start);
  fl_ml_tensors_free(&layout);
  fl_mlu_json_free(rj);
  conn_close(&admin);
  return rc;
}
