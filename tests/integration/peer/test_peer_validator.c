/* SPDX-License-Identifier: Apache-2.0
 *
 * test_peer_validator.c: the peer's endorser, validator and signature cache
 * in one process, without a network: a genesis configuration built from the
 * shared test PKI (FL_TEST_PKI_DIR) with the kvstore chaincode under
 * AND('Org1MSP.peer', 'Org2MSP.peer'), a real ledger in a temp dir, the
 * real chaincode runtime, and blocks built and signed with protoutil as
 * the orderers would. Checks every refusal of the endorser, every
 * validation code the validator assigns (including a duplicate tx id in
 * the block and against the ledger, a revoked creator and a stale read),
 * that invalid transactions change no state, the block checks (too few
 * orderer signatures, a broken link), and the signature cache (the
 * endorser's own endorsement and the client signature are not verified
 * again; a revoked identity is refused even on a cache hit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/crypto/x509.h"
#include "common/protoutil/block.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/genesis.h"
#include "common/protoutil/proposal.h"
#include "common/protoutil/rwset.h"
#include "peer/node/endorser.h"
#include "peer/node/sigcache.h"
#include "peer/node/validator.h"

typedef struct who_s {
  fl_signer_t *key;
  fl_sbuf_t id;
  uint8_t fp[32];
} who_t;

typedef struct world_s {
  char tmp[64];
  fl_netconfig_t *net;
  fl_block_t *genesis;
  fl_msp_t *msp;
  fl_sigcache_t *cache;
  fl_validator_t *v;
  fl_ledger_t *l;
  fl_ccrt_t *rt;
  fl_endorser_t *e[2]; /* peer0.org1, peer0.org2 */
  who_t peer[3];       /* peer0.org1, peer0.org2, peer1.org1 */
  who_t client, client2, admin;
  fl_signer_t *okey[4];
  fl_endorser_t *e1b;  /* peer1.org1 */
  uint64_t height;
  uint8_t last[32];
} world_t;

static world_t W;

static const char *pki(void) {
  const char *p = getenv("FL_TEST_PKI_DIR");
  return p ? p : "";
}

static void slurp(const char *path, fl_sbuf_t *out) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) fail_msg("missing %s", path);
  uint8_t b[8192];
  size_t k;
  out->len = 0;
  while ((k = fread(b, 1, sizeof(b), fp)) > 0) fl_sbuf_append(out, b, k);
  fclose(fp);
}

static void load_who(who_t *w, const char *mspid, const char *dir, const char *cn) {
  char p[600];
  fl_sbuf_t pem = {0};
  snprintf(p, sizeof(p), "%s/%s/msp/signcerts/%s-cert.pem", pki(), dir, cn);
  slurp(p, &pem);
  snprintf(p, sizeof(p), "%s/%s/msp/keystore/priv_sk", pki(), dir);
  assert_int_equal(fl_signer_load_file(p, &w->key), FL_OK);
  assert_int_equal(fl_msp_serialize_identity(mspid, pem.data, pem.len, &w->id), FL_OK);
  fl_cert_t *c = NULL;
  assert_int_equal(fl_cert_from_pem(pem.data, pem.len, &c), FL_OK);
  memcpy(w->fp, fl_cert_sha256(c), 32);
  fl_cert_free(c);
  fl_sbuf_free(&pem);
}

static void free_who(who_t *w) {
  fl_signer_free(w->key);
  fl_sbuf_free(&w->id);
}

#define ORGS "ordererOrganizations/example.com"
#define P1 "peerOrganizations/org1.example.com"
#define P2 "peerOrganizations/org2.example.com"

static int setup(void **state) {
  (void)state;
  snprintf(W.tmp, sizeof(W.tmp), "/tmp/fl-pv-XXXXXX");
  if (mkdtemp(W.tmp) == NULL) return -1;
  /* The chaincode, hashed. */
  char ccdir[128], so[200];
  snprintf(ccdir, sizeof(ccdir), "%s/cc", W.tmp);
  mkdir(ccdir, 0700);
  fl_sbuf_t bytes = {0};
  slurp(getenv("FL_KVSTORE_SO") ? getenv("FL_KVSTORE_SO") : "", &bytes);
  snprintf(so, sizeof(so), "%s/kvstore.so", ccdir);
  FILE *fp = fopen(so, "wb");
  fwrite(bytes.data, 1, bytes.len, fp);
  fclose(fp);
  fl_sbuf_free(&bytes);
  uint8_t cch[32];
  assert_int_equal(fl_ccrt_file_sha256(so, 0, cch), FL_OK);
  /* Organisations and orderers from the PKI. */
  const char *dirs[3] = {ORGS, P1, P2};
  const char *doms[3] = {"example.com", "org1.example.com", "org2.example.com"};
  const char *ids[3] = {"OrdererMSP", "Org1MSP", "Org2MSP"};
  fl_sbuf_t root[3] = {{0}}, tls[3] = {{0}}, opem[4] = {{0}};
  fl_buf_t rv[3], tv[3];
  fl_net_org_t orgs[3];
  char p[600];
  for (int k = 0; k < 3; k++) {
    snprintf(p, sizeof(p), "%s/%s/msp/cacerts/ca.%s-cert.pem", pki(), dirs[k], doms[k]);
    slurp(p, &root[k]);
    snprintf(p, sizeof(p), "%s/%s/msp/tlscacerts/tlsca.%s-cert.pem", pki(), dirs[k], doms[k]);
    slurp(p, &tls[k]);
    rv[k] = fl_sbuf_view(&root[k]);
    tv[k] = fl_sbuf_view(&tls[k]);
    orgs[k] = (fl_net_org_t){.mspid = ids[k], .name = doms[k], .root_certs = &rv[k],
                             .n_root_certs = 1, .tls_root_certs = &tv[k], .n_tls_root_certs = 1,
                             .is_orderer_org = k == 0};
  }
  fl_net_orderer_t ords[4];
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof(p), "%s/" ORGS "/orderers/orderer%d.example.com/msp/signcerts/"
             "orderer%d.example.com-cert.pem", pki(), i, i);
    slurp(p, &opem[i]);
    ords[i] = (fl_net_orderer_t){.id = (uint32_t)i, .mspid = "OrdererMSP", .host = "127.0.0.1",
                                 .port = 7050u + (uint32_t)i, .identity_cert = fl_sbuf_view(&opem[i])};
    snprintf(p, sizeof(p), "%s/" ORGS "/orderers/orderer%d.example.com/msp/keystore/priv_sk",
             pki(), i);
    assert_int_equal(fl_signer_load_file(p, &W.okey[i]), FL_OK);
  }
  fl_net_peer_t peers[2] = {
      {.mspid = "Org1MSP", .name = "peer0.org1.example.com", .host = "127.0.0.1", .port = 7051},
      {.mspid = "Org2MSP", .name = "peer0.org2.example.com", .host = "127.0.0.1", .port = 9051}};
  fl_net_chaincode_t ccs[1] = {{.name = "kvstore", .version = "1.0",
                                .policy = "AND('Org1MSP.peer', 'Org2MSP.peer')",
                                .library = "kvstore.so"}};
  memcpy(ccs[0].sha256, cch, 32);
  fl_netconfig_t cfg = {.channel = "fedledger", .orgs = orgs, .n_orgs = 3, .orderers = ords,
                        .n_orderers = 4, .peers = peers, .n_peers = 2,
                        .pbft = {.n = 4, .f = 1, .batch_max_count = 100, .batch_max_bytes = 1 << 20,
                                 .batch_timeout_ms = 10, .checkpoint_interval = 16,
                                 .watermark_window = 64, .view_change_timeout_ms = 1000},
                        .endorsement_policy = "MAJORITY", .chaincodes = ccs, .n_chaincodes = 1,
                        .max_message_bytes = FL_NETCONFIG_DEFAULT_MESSAGE_BYTES,
                        .created_ms = (uint64_t)time(NULL) * 1000};
  load_who(&W.admin, "OrdererMSP", ORGS "/users/Admin@example.com", "Admin@example.com");
  assert_int_equal(fl_genesis_build(&cfg, fl_sbuf_view(&W.admin.id), W.admin.key, &W.genesis, NULL),
                   FL_OK);
  for (int k = 0; k < 3; k++) {
    fl_sbuf_free(&root[k]);
    fl_sbuf_free(&tls[k]);
  }
  for (int i = 0; i < 4; i++) fl_sbuf_free(&opem[i]);
  assert_int_equal(fl_genesis_decode(W.genesis, &W.net, NULL), FL_OK);
  assert_int_equal(fl_netconfig_msp_new(W.net, &W.msp, NULL), FL_OK);
  W.cache = fl_sigcache_new(W.msp, 1024);
  fl_validator_opts_t vo = {.net = W.net, .msp = W.msp, .sigcache = W.cache};
  char *err = NULL;
  assert_int_equal(fl_validator_new(&vo, &W.v, &err), FL_OK);
  /* Ledger and the genesis commit. */
  snprintf(p, sizeof(p), "%s/ledger", W.tmp);
  fl_ledger_opts_t lo = {.create_if_missing = true};
  assert_int_equal(fl_ledger_open(p, &lo, &W.l), FL_OK);
  fl_sbuf_t gb = {0};
  fl_block_t *g2 = NULL;
  fl_block_encode(W.genesis, &gb);
  assert_int_equal(fl_block_decode(gb.data, gb.len, &g2, NULL), FL_OK);
  fl_sbuf_free(&gb);
  fl_vblock_t *vb = fl_vblock_new(W.v, g2);
  fl_vblock_check(vb, 0, fl_vblock_ntx(vb));
  assert_int_equal(fl_vblock_commit(vb, W.l), FL_OK);
  fl_vblock_free(vb);
  W.height = 1;
  memcpy(W.last, W.genesis->header_hash, 32);
  /* Runtime, identities, endorsers. */
  fl_ccrt_opts_t co = {.cc_dir = ccdir, .mode = FL_CCRT_IN_PROCESS};
  assert_int_equal(fl_ccrt_new(&co, &W.rt), FL_OK);
  fl_ccrt_def_t def = {.name = "kvstore", .version = "1.0", .sha256 = cch, .library = "kvstore.so"};
  fl_ccrt_cc_t *h = NULL;
  assert_int_equal(fl_ccrt_load(W.rt, &def, &h, NULL), FL_OK);
  load_who(&W.peer[0], "Org1MSP", P1 "/peers/peer0.org1.example.com", "peer0.org1.example.com");
  load_who(&W.peer[1], "Org2MSP", P2 "/peers/peer0.org2.example.com", "peer0.org2.example.com");
  load_who(&W.peer[2], "Org1MSP", P1 "/peers/peer1.org1.example.com", "peer1.org1.example.com");
  load_who(&W.client, "Org1MSP", P1 "/users/client1@org1.example.com", "client1@org1.example.com");
  load_who(&W.client2, "Org1MSP", P1 "/users/client2@org1.example.com", "client2@org1.example.com");
  for (int i = 0; i < 3; i++) {
    fl_endorser_opts_t eo = {.channel = "fedledger", .msp = W.msp, .sigcache = W.cache,
                             .ledger = W.l, .ccrt = W.rt, .signer = W.peer[i].key,
                             .identity = fl_sbuf_view(&W.peer[i].id)};
    assert_int_equal(fl_endorser_new(&eo, i < 2 ? &W.e[i] : &W.e1b), FL_OK);
  }
  /* A key that does not match the identity is refused. */
  fl_endorser_t *bad = NULL;
  fl_endorser_opts_t eo = {.channel = "fedledger", .msp = W.msp, .ledger = W.l, .ccrt = W.rt,
                           .signer = W.peer[1].key, .identity = fl_sbuf_view(&W.peer[0].id)};
  assert_int_equal(fl_endorser_new(&eo, &bad), FL_EPERM);
  /* A client identity cannot endorse. */
  eo.signer = W.client.key;
  eo.identity = fl_sbuf_view(&W.client.id);
  assert_int_equal(fl_endorser_new(&eo, &bad), FL_EPERM);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fl_endorser_free(W.e[0]);
  fl_endorser_free(W.e[1]);
  fl_endorser_free(W.e1b);
  fl_ccrt_free(W.rt);
  fl_ledger_close(W.l);
  fl_validator_free(W.v);
  fl_sigcache_free(W.cache);
  fl_msp_free(W.msp);
  fl_netconfig_free(W.net);
  fl_block_free(W.genesis);
  for (int i = 0; i < 3; i++) free_who(&W.peer[i]);
  free_who(&W.client);
  free_who(&W.client2);
  free_who(&W.admin);
  for (int i = 0; i < 4; i++) fl_signer_free(W.okey[i]);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", W.tmp);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", W.tmp);
  return 0;
}

/* ------------------------------------------------------------- helpers */

static void proposal(const who_t *c, const char *channel, const char *cc, const char *a0,
                     const char *a1, const char *a2, fl_sbuf_t *sp) {
  fl_buf_t args[3] = {FL_BUF_STR(a0), a1 ? FL_BUF_STR(a1) : (fl_buf_t){0},
                      a2 ? FL_BUF_STR(a2) : (fl_buf_t){0}};
  size_t n = a2 ? 3 : a1 ? 2 : 1;
  fl_proposal_spec_t spec = {.channel = channel, .creator = fl_sbuf_view(&c->id), .chaincode = cc,
                             .args = args, .n_args = n};
  assert_int_equal(fl_proposal_build(&spec, c->key, sp, NULL), FL_OK);
}

static fl_proposal_response_t *endorse(fl_endorser_t *e, fl_buf_t sp, bool real, int32_t want) {
  fl_sbuf_t out = {0};
  fl_endorse_result_t res;
  assert_int_equal(fl_endorser_process(e, sp, real, &out, &res), FL_OK);
  fl_proposal_response_t *pr = NULL;
  assert_int_equal(fl_proposal_response_decode(out.data, out.len, &pr, NULL), FL_OK);
  if (pr->response.status != want)
    fail_msg("endorser: want %d got %d (%s)", want, pr->response.status, res.reason);
  assert_int_equal(res.status, want);
  assert_int_equal(res.endorsed, pr->has_endorsement);
  fl_sbuf_free(&out);
  return pr;
}

/* A transaction endorsed by the given endorsers, signed by c. */
static void tx(const who_t *c, fl_endorser_t *const *es, size_t n, const char *a0, const char *a1,
               const char *a2, fl_sbuf_t *env) {
  fl_sbuf_t sp = {0};
  proposal(c, "fedledger", "kvstore", a0, a1, a2, &sp);
  fl_proposal_response_t *pr[4] = {0};
  fl_endorsed_t ends[4];
  for (size_t i = 0; i < n; i++) {
    pr[i] = endorse(es[i], fl_sbuf_view(&sp), true, 200);
    ends[i] = (fl_endorsed_t){pr[i]->payload, pr[i]->endorsement};
  }
  fl_proposal_t *p = NULL;
  assert_int_equal(fl_signed_proposal_decode(sp.data, sp.len, &p, NULL), FL_OK);
  assert_int_equal(fl_tx_assemble(p, ends, n, c->key, env, NULL), FL_OK);
  fl_proposal_free(p);
  for (size_t i = 0; i < n; i++) fl_proposal_response_free(pr[i]);
  fl_sbuf_free(&sp);
}

static void both_tx(const who_t *c, const char *a0, const char *a1, const char *a2, fl_sbuf_t *env) {
  fl_endorser_t *es[2] = {W.e[0], W.e[1]};
  tx(c, es, 2, a0, a1, a2, env);
}

/* Builds block W.height over envs, signed by nsig orderers. */
static fl_block_t *make_block(const fl_buf_t *envs, size_t n, int nsig) {
  fl_block_t *b = NULL;
  assert_int_equal(fl_block_build(W.height, W.last, envs, n, &b), FL_OK);
  for (int i = 0; i < nsig; i++) assert_int_equal(fl_block_sign(b, (uint32_t)i, W.okey[i]), FL_OK);
  return b;
}

/* Checks and commits b (taken), returns the codes (owned). */
static uint8_t *commit(fl_block_t *b) {
  const char *why = NULL;
  assert_int_equal(fl_validator_check_block(W.v, b, W.height - 1, W.last, &why), FL_OK);
  fl_vblock_t *vb = fl_vblock_new(W.v, b);
  size_t n = fl_vblock_ntx(vb);
  fl_vblock_check(vb, 0, n / 2);
  fl_vblock_check(vb, n / 2, n);
  assert_int_equal(fl_vblock_commit(vb, W.l), FL_OK);
  uint8_t *codes = fl_calloc(n + 1, 1);
  for (size_t i = 0; i < n; i++) {
    fl_vtx_info_t t;
    fl_vblock_tx(vb, i, &t);
    codes[i] = t.code;
  }
  memcpy(W.last, fl_vblock_block(vb)->header_hash, 32);
  W.height++;
  /* The stored bytes carry the codes. */
  fl_sbuf_t raw = {0};
  fl_block_t *back = NULL;
  assert_int_equal(fl_ledger_block_get(W.l, NULL, W.height - 1, &raw, NULL), FL_OK);
  assert_int_equal(fl_block_decode(raw.data, raw.len, &back, NULL), FL_OK);
  assert_int_equal(back->n_validation_codes, n);
  if (n) assert_memory_equal(back->validation_codes, codes, n);
  fl_block_free(back);
  fl_sbuf_free(&raw);
  fl_vblock_free(vb);
  return codes;
}

static bool state_is(const char *key, const char *val) {
  fl_sbuf_t k = {0}, v = {0};
  fl_sbuf_append(&k, "kvstore", 8); /* with the NUL */
  fl_sbuf_append_str(&k, key);
  fl_status_t rc = fl_ledger_state_get(W.l, NULL, fl_sbuf_view(&k), &v, NULL);
  bool ok = val == NULL ? rc == FL_NOTFOUND
                        : rc == FL_OK && v.len == strlen(val) && memcmp(v.data, val, v.len) == 0;
  fl_sbuf_free(&k);
  fl_sbuf_free(&v);
  return ok;
}

/* --------------------------------------------------------------- tests */

static void test_endorser_refusals(void **state) {
  (void)state;
  fl_sbuf_t sp = {0};
  fl_proposal_response_t *pr;
  pr = endorse(W.e[0], FL_BUF_STR("not a proposal"), true, 400);
  assert_false(pr->has_endorsement);
  assert_int_equal(pr->payload.len, 0);
  fl_proposal_response_free(pr);
  proposal(&W.client, "otherchannel", "kvstore", "put", "a", "1", &sp);
  fl_proposal_response_free(endorse(W.e[0], fl_sbuf_view(&sp), true, 400));
  proposal(&W.client, "fedledger", "kvstore", "put", "a", "1", &sp);
  sp.data[sp.len - 5] ^= 0x40; /* inside the signature */
  fl_proposal_response_free(endorse(W.e[0], fl_sbuf_view(&sp), true, 403));
  proposal(&W.peer[2], "fedledger", "kvstore", "put", "a", "1", &sp); /* a peer as creator */
  fl_proposal_response_free(endorse(W.e[0], fl_sbuf_view(&sp), true, 403));
  proposal(&W.client, "fedledger", "nosuchcc", "put", "a", "1", &sp);
  fl_proposal_response_free(endorse(W.e[0], fl_sbuf_view(&sp), true, 404));
  proposal(&W.client, "fedledger", "kvstore", "fail", NULL, NULL, &sp);
  pr = endorse(W.e[0], fl_sbuf_view(&sp), true, 500); /* the chaincode's own error */
  assert_false(pr->has_endorsement);
  fl_proposal_response_free(pr);
  proposal(&W.client, "fedledger", "kvstore", "get", "missing", NULL, &sp);
  fl_proposal_response_free(endorse(W.e[0], fl_sbuf_view(&sp), true, 404));
  /* Evaluate: the answer, no endorsement. */
  proposal(&W.client, "fedledger", "kvstore", "info", NULL, NULL, &sp);
  pr = endorse(W.e[1], fl_sbuf_view(&sp), false, 200);
  assert_false(pr->has_endorsement);
  assert_true(pr->response.payload.len > 0);
  fl_proposal_response_free(pr);
  fl_sbuf_free(&sp);
}

static fl_sbuf_t g_valid_env;

static void test_block_codes(void **state) {
  (void)state;
  fl_sbuf_t e[10] = {{0}};
  /* 0: valid put k1=v1 (kept for the replay test). */
  both_tx(&W.client, "put", "k1", "v1", &e[0]);
  fl_sbuf_append(&g_valid_env, e[0].data, e[0].len);
  /* 1: the same envelope again: DUPLICATE_TXID. */
  fl_sbuf_append(&e[1], e[0].data, e[0].len);
  /* 2: one org only: ENDORSEMENT_POLICY_FAILURE. */
  fl_endorser_t *org1[2] = {W.e[0], W.e1b};
  tx(&W.client, org1, 2, "put", "k2", "x", &e[2]);
  /* 3: a scan of [k1, k2) endorsed before tx 0 (which writes k1) commits,
   * placed after it in the block: a phantom. */
  both_tx(&W.client, "range", "k1", "k2", &e[3]);
  /* 4: the envelope signature broken: BAD_CREATOR_SIGNATURE. */
  both_tx(&W.client, "put", "k4", "x", &e[4]);
  e[4].data[e[4].len - 4] ^= 0x01;
  /* 5: an empty envelope, 6: garbage. */
  fl_sbuf_append_str(&e[6], "garbage");
  /* 7: a valid put k7 by client2 (revoked later) and 8: an event. */
  both_tx(&W.client2, "put", "k7", "v7", &e[7]);
  both_tx(&W.client, "event", "evname", "evpayload", &e[8]);
  fl_buf_t envs[9];
  for (int i = 0; i < 9; i++) envs[i] = fl_sbuf_view(&e[i]);
  uint64_t h0 = 0, m0 = 0;
  fl_sigcache_stats(W.cache, &h0, &m0, NULL);
  uint8_t *codes = commit(make_block(envs, 9, 3));
  uint64_t h1 = 0, m1 = 0;
  fl_sigcache_stats(W.cache, &h1, &m1, NULL);
  assert_int_equal(codes[0], FL_TX_VALID);
  assert_int_equal(codes[1], FL_TX_DUPLICATE_TXID);
  assert_int_equal(codes[2], FL_TX_ENDORSEMENT_POLICY_FAILURE);
  assert_int_equal(codes[3], FL_TX_PHANTOM_READ_CONFLICT);
  assert_int_equal(codes[4], FL_TX_BAD_CREATOR_SIGNATURE);
  assert_int_equal(codes[5], FL_TX_NIL_ENVELOPE);
  assert_int_equal(codes[6], FL_TX_BAD_PAYLOAD);
  assert_int_equal(codes[7], FL_TX_VALID);
  assert_int_equal(codes[8], FL_TX_VALID);
  assert_true(state_is("k1", "v1"));
  assert_true(state_is("k2", NULL));
  assert_true(state_is("k4", NULL));
  assert_true(state_is("k7", "v7"));
  /* Every endorsement was made by these endorsers and every proposal
   * signature checked by them: the validator verified only the envelope
   * signatures (tx 0, 2, 3, 7, 8; tx 1 repeats 0's and tx 4's is broken). */
  printf("# signature cache during validation: %llu hits, %llu verifications\n",
         (unsigned long long)(h1 - h0), (unsigned long long)(m1 - m0));
  assert_true(h1 - h0 >= 14);
  assert_true(m1 - m0 <= 7);
  /* The invalid duplicate does not hide the valid original. */
  fl_envelope_t *env = NULL;
  assert_int_equal(fl_envelope_decode(e[0].data, e[0].len, &env, NULL), FL_OK);
  fl_ledger_txloc_t loc;
  assert_int_equal(fl_ledger_tx_get(W.l, NULL, FL_BUF_STR(env->header.tx_id), &loc), FL_OK);
  assert_int_equal(loc.tx, 0);
  assert_int_equal(loc.code, FL_TX_VALID);
  fl_envelope_free(env);
  fl_free(codes);
  for (int i = 0; i < 10; i++) fl_sbuf_free(&e[i]);
}

static fl_sbuf_t g_forged;

static void test_forged_tampered_revoked_replayed(void **state) {
  (void)state;
  fl_sbuf_t e[6] = {{0}}, sp = {0};
  /* 0: forged endorsement: peer0.org2's endorsement signed by the client. */
  proposal(&W.client, "fedledger", "kvstore", "put", "f", "x", &sp);
  fl_proposal_response_t *a = endorse(W.e[0], fl_sbuf_view(&sp), true, 200);
  fl_proposal_response_t *b = endorse(W.e[1], fl_sbuf_view(&sp), true, 200);
  assert_int_equal(fl_endorsement_sign(b->payload, b->endorsement.endorser, W.client.key, &g_forged),
                   FL_OK);
  fl_endorsed_t ends[2] = {{a->payload, a->endorsement},
                           {b->payload, {b->endorsement.endorser, fl_sbuf_view(&g_forged)}}};
  fl_proposal_t *p = NULL;
  assert_int_equal(fl_signed_proposal_decode(sp.data, sp.len, &p, NULL), FL_OK);
  assert_int_equal(fl_tx_assemble(p, ends, 2, W.client.key, &e[0], NULL), FL_OK);
  /* 1: tampered write set: both endorsed "put t good", the payload says "evil". */
  fl_proposal_free(p);
  fl_proposal_response_free(a);
  fl_proposal_response_free(b);
  proposal(&W.client, "fedledger", "kvstore", "put", "t", "good", &sp);
  a = endorse(W.e[0], fl_sbuf_view(&sp), true, 200);
  b = endorse(W.e[1], fl_sbuf_view(&sp), true, 200);
  fl_resp_payload_t *rp = NULL;
  fl_rwset_t *rw = NULL;
  assert_int_equal(fl_resp_payload_decode(a->payload.data, a->payload.len, &rp, NULL), FL_OK);
  assert_int_equal(fl_rwset_decode(rp->results.data, rp->results.len, &rw, NULL), FL_OK);
  fl_kv_write_t w = rw->writes[0];
  w.value = FL_BUF_STR("evil");
  fl_rwset_t rw2 = *rw;
  rw2.writes = &w;
  rw2.mem_ = NULL;
  fl_sbuf_t rwb = {0}, plb = {0};
  assert_int_equal(fl_rwset_encode(&rw2, &rwb), FL_OK);
  fl_resp_payload_t rp2 = *rp;
  rp2.results = fl_sbuf_view(&rwb);
  rp2.mem_ = NULL;
  assert_int_equal(fl_resp_payload_encode(&rp2, &plb), FL_OK);
  fl_endorsed_t te[2] = {{fl_sbuf_view(&plb), a->endorsement}, {fl_sbuf_view(&plb), b->endorsement}};
  assert_int_equal(fl_signed_proposal_decode(sp.data, sp.len, &p, NULL), FL_OK);
  assert_int_equal(fl_tx_assemble(p, te, 2, W.client.key, &e[1], NULL), FL_OK);
  fl_proposal_free(p);
  fl_rwset_free(rw);
  fl_resp_payload_free(rp);
  fl_proposal_response_free(a);
  fl_proposal_response_free(b);
  /* 2: client2 revoked after its tx was endorsed and signed. */
  both_tx(&W.client2, "put", "r", "x", &e[2]);
  fl_msp_revoke(W.msp, W.client2.fp);
  /* 3: the replay of last block's valid transaction. */
  fl_sbuf_append(&e[3], g_valid_env.data, g_valid_env.len);
  /* 4: k1 := v2; 5: a read of k1 endorsed before that: stale. */
  both_tx(&W.client, "get", "k1", NULL, &e[5]);
  both_tx(&W.client, "put", "k1", "v2", &e[4]);
  fl_buf_t envs[6];
  for (int i = 0; i < 6; i++) envs[i] = fl_sbuf_view(&e[i]);
  uint8_t *codes = commit(make_block(envs, 6, 4));
  assert_int_equal(codes[0], FL_TX_BAD_ENDORSEMENT);
  assert_int_equal(codes[1], FL_TX_BAD_ENDORSEMENT);
  assert_int_equal(codes[2], FL_TX_CREATOR_REVOKED);
  assert_int_equal(codes[3], FL_TX_DUPLICATE_TXID);
  assert_int_equal(codes[4], FL_TX_VALID);
  assert_int_equal(codes[5], FL_TX_MVCC_READ_CONFLICT);
  assert_true(state_is("f", NULL));
  assert_true(state_is("t", NULL));
  assert_true(state_is("r", NULL));
  assert_true(state_is("k1", "v2"));
  /* The endorser refuses the revoked client now, cache or not. */
  proposal(&W.client2, "fedledger", "kvstore", "put", "r", "x", &sp);
  fl_proposal_response_free(endorse(W.e[0], fl_sbuf_view(&sp), true, 403));
  fl_free(codes);
  for (int i = 0; i < 6; i++) fl_sbuf_free(&e[i]);
  fl_sbuf_free(&sp);
  fl_sbuf_free(&rwb);
  fl_sbuf_free(&plb);
  fl_sbuf_free(&g_forged);
  fl_sbuf_free(&g_valid_env);
}

static void test_block_checks(void **state) {
  (void)state;
  fl_sbuf_t e = {0};
  both_tx(&W.client, "put", "z", "1", &e);
  fl_buf_t env = fl_sbuf_view(&e);
  const char *why = NULL;
  fl_block_t *b = make_block(&env, 1, 2); /* 2 < 2f+1 = 3 */
  assert_int_equal(fl_validator_check_block(W.v, b, W.height - 1, W.last, &why), FL_EBADSIG);
  fl_block_free(b);
  b = make_block(&env, 1, 3);
  uint8_t wrong[32];
  memcpy(wrong, W.last, 32);
  wrong[0] ^= 1;
  assert_int_equal(fl_validator_check_block(W.v, b, W.height - 1, wrong, &why), FL_ECORRUPT);
  assert_int_equal(fl_validator_check_block(W.v, b, W.height, W.last, &why), FL_ECORRUPT);
  /* Signatures by the same replica twice count once. */
  fl_block_t *d = NULL;
  assert_int_equal(fl_block_build(W.height, W.last, &env, 1, &d), FL_OK);
  for (int i = 0; i < 3; i++) assert_int_equal(fl_block_sign(d, 0, W.okey[0]), FL_OK);
  assert_int_equal(fl_validator_check_block(W.v, d, W.height - 1, W.last, &why), FL_EBADSIG);
  fl_block_free(d);
  uint8_t *codes = commit(b);
  assert_int_equal(codes[0], FL_TX_VALID);
  assert_true(state_is("z", "1"));
  fl_free(codes);
  fl_sbuf_free(&e);
}

static void test_sigcache(void **state) {
  (void)state;
  fl_sigcache_t *c = fl_sigcache_new(W.msp, 4);
  fl_buf_t msg = FL_BUF_STR("message");
  fl_sbuf_t sig = {0};
  assert_int_equal(fl_signer_sign(W.client.key, msg.data, msg.len, &sig), FL_OK);
  fl_msp_info_t info;
  assert_int_equal(fl_sigcache_verify(c, fl_sbuf_view(&W.client.id), &msg, 1, fl_sbuf_view(&sig),
                                      FL_ROLE_CLIENT, &info), FL_OK);
  assert_int_equal(fl_sigcache_verify(c, fl_sbuf_view(&W.client.id), &msg, 1, fl_sbuf_view(&sig),
                                      FL_ROLE_CLIENT, &info), FL_OK);
  assert_string_equal(info.mspid, "Org1MSP");
  /* Same signature, another message or another identity: never a hit. */
  fl_buf_t other = FL_BUF_STR("messagf");
  assert_int_equal(fl_sigcache_verify(c, fl_sbuf_view(&W.client.id), &other, 1,
                                      fl_sbuf_view(&sig), FL_ROLE_NONE, NULL), FL_EBADSIG);
  assert_int_equal(fl_sigcache_verify(c, fl_sbuf_view(&W.peer[0].id), &msg, 1, fl_sbuf_view(&sig),
                                      FL_ROLE_NONE, NULL), FL_EBADSIG);
  /* Split parts hash like the whole. */
  fl_buf_t parts[2] = {FL_BUF_STR("mess"), FL_BUF_STR("age")};
  assert_int_equal(fl_sigcache_verify(c, fl_sbuf_view(&W.client.id), parts, 2, fl_sbuf_view(&sig),
                                      FL_ROLE_NONE, NULL), FL_OK);
  /* Role re-checked on a hit. */
  assert_int_equal(fl_sigcache_verify(c, fl_sbuf_view(&W.client.id), &msg, 1, fl_sbuf_view(&sig),
                                      FL_ROLE_PEER, NULL), FL_EPERM);
  uint64_t hits = 0, misses = 0;
  fl_sigcache_stats(c, &hits, &misses, NULL);
  assert_int_equal(hits, 3);
  assert_int_equal(misses, 3);
  /* A revoked identity fails on a hit (client2 was revoked above). */
  fl_sbuf_t s2 = {0};
  assert_int_equal(fl_signer_sign(W.client2.key, msg.data, msg.len, &s2), FL_OK);
  fl_msp_info_t i2 = info;
  memcpy(i2.cert_sha256, W.client2.fp, 32);
  fl_sigcache_add(c, fl_sbuf_view(&W.client2.id), &msg, 1, fl_sbuf_view(&s2), &i2);
  assert_int_equal(fl_sigcache_verify(c, fl_sbuf_view(&W.client2.id), &msg, 1, fl_sbuf_view(&s2),
                                      FL_ROLE_NONE, NULL), FL_EREVOKED);
  assert_int_equal(fl_sigcache_verify(c, fl_sbuf_view(&W.client.id), &msg, 1, (fl_buf_t){0},
                                      FL_ROLE_NONE, NULL), FL_EBADSIG);
  assert_int_equal(fl_sigcache_verify(c, fl_sbuf_view(&W.client.id), &msg, 0, fl_sbuf_view(&sig),
                                      FL_ROLE_NONE, NULL), FL_EINVAL);
  fl_sbuf_free(&sig);
  fl_sbuf_free(&s2);
  fl_sigcache_free(c);
}

/* The endorser's clock is shifted by g_skew_ms against the proposals'. */
static int64_t g_skew_ms;
static uint64_t skewed_clock(void) { return (uint64_t)((int64_t)fl_wall_ms() + g_skew_ms); }

/* An endorser of peer0.org1 with the given window (0 = default) whose
 * clock is g_skew_ms away from the wall clock. */
static fl_endorser_t *skewed_endorser(uint64_t window_ms) {
  fl_endorser_opts_t eo = {.channel = "fedledger", .msp = W.msp, .sigcache = W.cache,
                           .ledger = W.l, .ccrt = W.rt, .signer = W.peer[0].key,
                           .identity = fl_sbuf_view(&W.peer[0].id),
                           .timestamp_window_ms = window_ms, .now_ms = skewed_clock};
  fl_endorser_t *e = NULL;
  assert_int_equal(fl_endorser_new(&eo, &e), FL_OK);
  return e;
}

/* Status of Endorse (or Evaluate) of a fresh "put" by the client; *reason
 * gets the endorser's reason. */
static int32_t skewed_status(fl_endorser_t *e, bool real, char *reason, size_t rlen) {
  fl_sbuf_t sp = {0}, out = {0};
  proposal(&W.client, "fedledger", "kvstore", "put", "ts-key", "1", &sp);
  fl_endorse_result_t res;
  assert_int_equal(fl_endorser_process(e, fl_sbuf_view(&sp), real, &out, &res), FL_OK);
  fl_proposal_response_t *pr = NULL;
  assert_int_equal(fl_proposal_response_decode(out.data, out.len, &pr, NULL), FL_OK);
  assert_int_equal(pr->response.status, res.status);
  if (res.status >= 400) assert_false(pr->has_endorsement);
  snprintf(reason, rlen, "%s", pr->response.message ? pr->response.message : "");
  fl_proposal_response_free(pr);
  fl_sbuf_free(&out);
  fl_sbuf_free(&sp);
  return res.status;
}

static void test_endorser_timestamp_window(void **state) {
  (void)state;
  char why[256];
  /* Default window (15 min): a proposal 20 min behind or ahead is refused
   * with a message naming the window, Endorse and Evaluate alike. */
  fl_endorser_t *e = skewed_endorser(0);
  g_skew_ms = 20 * 60 * 1000; /* the peer's clock is ahead: the proposal is old */
  assert_int_equal(skewed_status(e, true, why, sizeof why), 400);
  assert_non_null(strstr(why, "behind"));
  assert_non_null(strstr(why, "window is 900 s"));
  assert_int_equal(skewed_status(e, false, why, sizeof why), 400);
  g_skew_ms = -20 * 60 * 1000; /* the proposal comes from the future */
  assert_int_equal(skewed_status(e, true, why, sizeof why), 400);
  assert_non_null(strstr(why, "ahead of"));
  /* 14 minutes either way is inside the default window. */
  g_skew_ms = 14 * 60 * 1000;
  assert_int_equal(skewed_status(e, true, why, sizeof why), 200);
  g_skew_ms = -14 * 60 * 1000;
  assert_int_equal(skewed_status(e, true, why, sizeof why), 200);
  fl_endorser_free(e);
  /* A configured window of 2 s: 10 s is too far, 0 is fine. */
  e = skewed_endorser(2000);
  g_skew_ms = 10000;
  assert_int_equal(skewed_status(e, true, why, sizeof why), 400);
  assert_non_null(strstr(why, "window is 2 s"));
  g_skew_ms = 0;
  assert_int_equal(skewed_status(e, true, why, sizeof why), 200);
  fl_endorser_free(e);
  /* UINT64_MAX turns the check off. */
  e = skewed_endorser(UINT64_MAX);
  g_skew_ms = 48ll * 3600 * 1000;
  assert_int_equal(skewed_status(e, true, why, sizeof why), 200);
  fl_endorser_free(e);
  g_skew_ms = 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_endorser_refusals),
      cmocka_unit_test(test_block_codes),
      cmocka_unit_test(test_forged_tampered_revoked_replayed),
      cmocka_unit_test(test_block_checks),
      cmocka_unit_test(test_sigcache),
      cmocka_unit_test(test_endorser_timestamp_window),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
