/* SPDX-License-Identifier: Apache-2.0
 *
 * test_peer_network.c: the peer's integration test on a real network of
 * 4 fedledger-orderer and 2 organisations x 2 fedledger-peer processes on
 * 127.0.0.1 (harness.h). In order:
 *
 *   1. 1,000 kvstore transactions through the gateways of both
 *      organisations (and all four peers) commit VALID; every peer ends with
 *      the same blocks (header hashes and validation codes) and the same
 *      state;
 *   2. each of a forged endorsement, endorsements of only one organisation
 *      under AND('Org1MSP.peer', 'Org2MSP.peer'), a tampered write set, a
 *      replayed envelope and a stale read is marked invalid with its code
 *      and changes no state; a replay inside the orderers' dedup window
 *      (pbft.dedup_window, DEDUP_WINDOW seqs here) may be refused by their
 *      duplicate filter, one sent after it is ordered again and every
 *      peer marks it DUPLICATE_TXID;
 *   3. events (block and chaincode) arrive on a peer's PUB socket;
 *      Peer/Deliver, Peer/GetTransaction, GetBlob-less queries and the
 *      operations endpoint answer;
 *   4. a lying orderer (an in-process proxy that tampers block signatures,
 *      then one that skips a block) is detected, logged and the peer fails
 *      over and catches up;
 *   5. after a clean stop, the four ledgers, opened offline, hold identical
 *      blocks and identical state with identical versions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/crypto/hash.h"
#include "common/events/events.h"
#include "common/protoutil/block.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/proposal.h"
#include "common/protoutil/rwset.h"
#include "fl/common/common.pb-c.h"
#include "fl/events/events.pb-c.h"
#include "fl/msp/identity.pb-c.h"
#include "fl/orderer/ab.pb-c.h"
#include "fl/peer/proposal.pb-c.h"
#include "peer/ledger/ledger.h"
#include "tests/integration/peer/harness.h"
#include "tests/integration/peer/proxy.h"

#define UNCONST(T, p) ((T)(uintptr_t)(p))

static pn_net_t *g_net;
static fl_rpc_sync_t *g_s[PN_NPEER]; /* one gateway connection per peer */

/* The orderers' pbft.dedup_window in this network: they remember tx ids
 * for this many seqs only, so a replay sent later gets past ordering. */
#define DEDUP_WINDOW 4

enum { VALID = 0, DUPLICATE_TXID = 6, POLICY_FAILURE = 7, BAD_ENDORSEMENT = 8, MVCC = 9 };

static const char *envs(const char *n) {
  const char *v = getenv(n);
  return v ? v : "";
}

static int teardown(void **state);

static int setup(void **state) {
  (void)state;
  pn_opts_t o = {.log = "info", .dedup_window = DEDUP_WINDOW};
  if (pn_net_new(&o, envs("FL_PEER_BIN_DIR"), envs("FL_KVSTORE_SO"), envs("FL_COUNTER_SO"),
                 &g_net) != FL_OK)
    return -1;
  bool ok = pn_start_all(g_net) == FL_OK && pn_smoke(g_net, 15000) == FL_OK;
  for (int i = 0; ok && i < PN_NPEER; i++)
    ok = pn_connect_peer(g_net, i, g_net->porg[i], &g_s[i]) == FL_OK;
  if (!ok) teardown(state); /* cmocka skips the group teardown after a failed setup */
  return ok ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < PN_NPEER; i++) {
    fl_rpc_sync_close(g_s[i]);
    g_s[i] = NULL;
  }
  pn_net_free(g_net);
  g_net = NULL;
  return 0;
}

static void reconnect(int i) {
  fl_rpc_sync_close(g_s[i]);
  g_s[i] = NULL;
  assert_int_equal(pn_connect_peer(g_net, i, g_net->porg[i], &g_s[i]), FL_OK);
}

/* Evaluates kvstore/counter `fn key` on peer i: status and value. */
static int eval(int i, const char *cc, const char *fn, const char *key, fl_sbuf_t *val) {
  const char *args[] = {fn, key, NULL};
  int st = 0;
  assert_int_equal(pn_gw_evaluate(g_net, g_s[i], g_net->porg[i], cc, args, &st, val), FL_OK);
  return st;
}

static bool val_is(const fl_sbuf_t *v, const char *s) {
  return v->len == strlen(s) && memcmp(v->data, s, v->len) == 0;
}

/* Waits until all peers have one height; returns it. */
static uint64_t same_height(uint32_t timeout_ms) {
  uint64_t end = pn_now_ms() + timeout_ms;
  uint64_t h[PN_NPEER];
  while (pn_now_ms() < end) {
    bool same = true;
    for (int i = 0; i < PN_NPEER; i++) {
      h[i] = 0;
      if (pn_chain_info(g_s[i], &h[i], NULL) != FL_OK) reconnect(i);
      if (h[i] != h[0]) same = false;
    }
    if (same) {
      pn_sleep_ms(300); /* and stays so: no block in flight */
      uint64_t again = 0;
      if (pn_chain_info(g_s[0], &again, NULL) == FL_OK && again == h[0]) return h[0];
    }
    pn_sleep_ms(100);
  }
  fail_msg("peers did not reach the same height: %llu %llu %llu %llu",
           (unsigned long long)h[0], (unsigned long long)h[1], (unsigned long long)h[2],
           (unsigned long long)h[3]);
  return 0;
}

/* Every block on every peer: same header hash, same validation codes. */
static void same_blocks(uint64_t height) {
  fl_sbuf_t raw = {0};
  for (uint64_t n = 0; n < height; n++) {
    uint8_t h0[32] = {0};
    fl_sbuf_t codes0 = {0};
    for (int i = 0; i < PN_NPEER; i++) {
      assert_int_equal(pn_get_block(g_s[i], n, &raw), FL_OK);
      fl_block_t *b = NULL;
      assert_int_equal(fl_block_decode(raw.data, raw.len, &b, NULL), FL_OK);
      assert_int_equal(b->number, n);
      assert_int_equal(b->n_validation_codes, b->n_envelopes);
      if (i == 0) {
        memcpy(h0, b->header_hash, 32);
        fl_sbuf_append(&codes0, b->validation_codes, b->n_validation_codes);
        if (n > 0)
          assert_int_equal(fl_block_verify_signatures(
                               b, (const fl_verifier_t *const *)g_net->overif, PN_NORD, 1, NULL,
                               NULL, NULL),
                           FL_OK);
      } else {
        assert_memory_equal(h0, b->header_hash, 32);
        assert_int_equal(codes0.len, b->n_validation_codes);
        if (codes0.len) assert_memory_equal(codes0.data, b->validation_codes, codes0.len);
      }
      fl_block_free(b);
    }
    fl_sbuf_free(&codes0);
  }
  fl_sbuf_free(&raw);
}

/* kvstore range over everything, compared across peers. */
static void same_kv_state(size_t *nkeys) {
  fl_sbuf_t v0 = {0}, v = {0};
  const char *args[] = {"range", "", "", NULL};
  int st = 0;
  assert_int_equal(pn_gw_evaluate(g_net, g_s[0], 0, "kvstore", args, &st, &v0), FL_OK);
  assert_int_equal(st, 200);
  for (int i = 1; i < PN_NPEER; i++) {
    assert_int_equal(pn_gw_evaluate(g_net, g_s[i], g_net->porg[i], "kvstore", args, &st, &v),
                     FL_OK);
    assert_int_equal(st, 200);
    assert_int_equal(v.len, v0.len);
    assert_memory_equal(v.data, v0.data, v.len);
  }
  size_t n = 0;
  for (size_t k = 0; k < v0.len; k++) n += v0.data[k] == '\n';
  if (nkeys) *nkeys = n;
  fl_sbuf_free(&v0);
  fl_sbuf_free(&v);
}

/* ------------------------------------------------------------------ 1 */

static void test_thousand_transactions(void **state) {
  (void)state;
  int gws[PN_NPEER] = {0, 2, 1, 3};
  uint32_t valid = 0, failed = 0;
  uint64_t t0 = pn_now_ms();
  assert_int_equal(pn_load(g_net, gws, PN_NPEER, "bulk/", 1000, 64, &valid, &failed), FL_OK);
  uint64_t dt = pn_now_ms() - t0;
  printf("# 1000 transactions through 4 gateways: valid=%u failed=%u in %llu ms (%.0f tx/s)\n",
         valid, failed, (unsigned long long)dt, 1000.0 * 1000.0 / (double)(dt ? dt : 1));
  if (valid != 1000) pn_diagnose(g_net);
  assert_int_equal(valid, 1000);
  assert_int_equal(failed, 0);
  uint64_t h = same_height(30000);
  same_blocks(h);
  size_t nkeys = 0;
  same_kv_state(&nkeys);
  assert_true(nkeys >= 1000);
  fl_sbuf_t v = {0};
  const char *args[] = {"range", "bulk/", "bulk0", NULL}; /* '0' follows '/' */
  int st = 0;
  assert_int_equal(pn_gw_evaluate(g_net, g_s[1], 0, "kvstore", args, &st, &v), FL_OK);
  assert_int_equal(st, 200);
  size_t lines = 0;
  for (size_t k = 0; k < v.len; k++) lines += v.data[k] == '\n';
  assert_int_equal(lines, 1000);
  assert_int_equal(eval(3, "kvstore", "get", "bulk/777", &v), 200);
  assert_true(val_is(&v, "v777"));
  fl_sbuf_free(&v);
}

/* ------------------------------------------------------------------ 2 */

/* Gateway/Endorse by org's client at peer gw: the unsigned payload. */
static void prepare(int gw, int org, const char *cc, const char *const *args,
                    char txid[FL_TXID_HEX_LEN + 1], fl_sbuf_t *payload) {
  fl_sbuf_t sp = {0};
  int cs = 0;
  char *err = NULL;
  assert_int_equal(pn_proposal(g_net, org, cc, args, &sp, txid), FL_OK);
  assert_int_equal(pn_gw_endorse(g_s[gw], fl_sbuf_view(&sp), txid, payload, &cs, NULL, &err),
                   FL_OK);
  if (cs != 200) fail_msg("endorse: %d %s", cs, err ? err : "");
  assert_true(payload->len > 0);
  fl_free(err);
  fl_sbuf_free(&sp);
}

/* Signs payload by org's client, submits through gw, waits: the code. */
static int submit_wait(int gw, int org, fl_buf_t payload, const char *txid) {
  fl_sbuf_t env = {0};
  char *err = NULL;
  int code = -1;
  uint64_t blk = 0;
  assert_int_equal(pn_sign_envelope(g_net, org, payload, &env), FL_OK);
  fl_status_t rc = pn_gw_submit(g_s[gw], fl_sbuf_view(&env), txid, &err);
  if (rc != FL_OK) fail_msg("submit: %s %s", fl_status_name(rc), err ? err : "");
  rc = pn_gw_status(g_net, g_s[gw], org, txid, 30000, &code, &blk, &err);
  if (rc != FL_OK) fail_msg("commit status: %s %s", fl_status_name(rc), err ? err : "");
  fl_free(err);
  fl_sbuf_free(&env);
  return code;
}

/* Unpacks a prepared payload's Transaction, lets fix() change it, repacks
 * the payload (header unchanged) into out. fix() points fields at memory of
 * its own; the original field (saved in g_saved by fix) is put back before
 * protobuf-c frees the struct. */
static ProtobufCBinaryData g_saved, *g_saved_at;

static void rewrite_tx(fl_buf_t payload, void (*fix)(Fl__Peer__Transaction *tx, void *arg),
                       void *arg, fl_sbuf_t *out) {
  Fl__Common__Payload *pl = fl__common__payload__unpack(NULL, payload.len, payload.data);
  assert_non_null(pl);
  Fl__Peer__Transaction *tx = fl__peer__transaction__unpack(NULL, pl->data.len, pl->data.data);
  assert_non_null(tx);
  fix(tx, arg);
  fl_sbuf_t txb = {0};
  fl_sbuf_reserve(&txb, fl__peer__transaction__get_packed_size(tx) + 1);
  txb.len = fl__peer__transaction__pack(tx, txb.data);
  ProtobufCBinaryData old = pl->data;
  pl->data.data = txb.data;
  pl->data.len = txb.len;
  out->len = 0;
  fl_sbuf_reserve(out, fl__common__payload__get_packed_size(pl) + 1);
  out->len = fl__common__payload__pack(pl, out->data);
  pl->data = old;
  if (g_saved_at) *g_saved_at = g_saved;
  g_saved_at = NULL;
  fl__peer__transaction__free_unpacked(tx, NULL);
  fl__common__payload__free_unpacked(pl, NULL);
  fl_sbuf_free(&txb);
}

static fl_sbuf_t g_forged_sig;

static void forge(Fl__Peer__Transaction *tx, void *arg) {
  (void)arg;
  assert_true(tx->n_endorsements >= 1);
  Fl__Peer__Endorsement *e = tx->endorsements[0];
  /* Claim to be the endorser, sign with the client's key. */
  assert_int_equal(fl_endorsement_sign(FL_BUF(tx->response_payload.data, tx->response_payload.len),
                                       FL_BUF(e->endorser.data, e->endorser.len),
                                       g_net->client[0].key, &g_forged_sig),
                   FL_OK);
  g_saved = e->signature;
  g_saved_at = &e->signature;
  e->signature.data = g_forged_sig.data;
  e->signature.len = g_forged_sig.len;
}

static void test_forged_endorsement(void **state) {
  (void)state;
  char txid[FL_TXID_HEX_LEN + 1];
  fl_sbuf_t pl = {0}, bad = {0}, v = {0};
  const char *args[] = {"put", "forged", "x", NULL};
  prepare(0, 0, "kvstore", args, txid, &pl);
  rewrite_tx(fl_sbuf_view(&pl), forge, NULL, &bad);
  assert_int_equal(submit_wait(0, 0, fl_sbuf_view(&bad), txid), BAD_ENDORSEMENT);
  /* Committed on gateway 0's peer; the others may still be a block behind. */
  same_height(20000);
  assert_int_equal(eval(2, "kvstore", "get", "forged", &v), 404);
  int code = -1;
  uint64_t blk = 0;
  assert_int_equal(pn_get_tx(g_s[3], txid, &code, &blk), FL_OK);
  assert_int_equal(code, BAD_ENDORSEMENT);
  fl_sbuf_free(&pl);
  fl_sbuf_free(&bad);
  fl_sbuf_free(&v);
  fl_sbuf_free(&g_forged_sig);
}

static void test_wrong_org_endorsements(void **state) {
  (void)state;
  fl_sbuf_t sp = {0}, r0 = {0}, r1 = {0}, env = {0}, v = {0};
  char txid[FL_TXID_HEX_LEN + 1];
  const char *args[] = {"put", "oneorg", "x", NULL};
  assert_int_equal(pn_proposal(g_net, 0, "kvstore", args, &sp, txid), FL_OK);
  /* Both endorsements from Org1's peers: AND(Org1, Org2) is not met. */
  assert_int_equal(pn_peer_endorse(g_s[0], fl_sbuf_view(&sp), &r0), FL_OK);
  assert_int_equal(pn_peer_endorse(g_s[1], fl_sbuf_view(&sp), &r1), FL_OK);
  fl_proposal_response_t *p0 = NULL, *p1 = NULL;
  assert_int_equal(fl_proposal_response_decode(r0.data, r0.len, &p0, NULL), FL_OK);
  assert_int_equal(fl_proposal_response_decode(r1.data, r1.len, &p1, NULL), FL_OK);
  assert_int_equal(p0->response.status, 200);
  assert_true(p0->has_endorsement && p1->has_endorsement);
  fl_proposal_t *prop = NULL;
  assert_int_equal(fl_signed_proposal_decode(sp.data, sp.len, &prop, NULL), FL_OK);
  fl_endorsed_t ends[2] = {{p0->payload, p0->endorsement}, {p1->payload, p1->endorsement}};
  assert_int_equal(fl_tx_assemble(prop, ends, 2, g_net->client[0].key, &env, NULL), FL_OK);
  char *err = NULL;
  int code = -1;
  uint64_t blk = 0;
  assert_int_equal(pn_gw_submit(g_s[1], fl_sbuf_view(&env), txid, &err), FL_OK);
  assert_int_equal(pn_gw_status(g_net, g_s[1], 0, txid, 30000, &code, &blk, &err), FL_OK);
  assert_int_equal(code, POLICY_FAILURE);
  assert_int_equal(eval(0, "kvstore", "get", "oneorg", &v), 404);
  fl_proposal_free(prop);
  fl_proposal_response_free(p0);
  fl_proposal_response_free(p1);
  fl_sbuf_free(&sp);
  fl_sbuf_free(&r0);
  fl_sbuf_free(&r1);
  fl_sbuf_free(&env);
  fl_sbuf_free(&v);
}

static fl_sbuf_t g_tampered;

static void tamper(Fl__Peer__Transaction *tx, void *arg) {
  (void)arg;
  fl_resp_payload_t *rp = NULL;
  fl_rwset_t *rw = NULL;
  assert_int_equal(fl_resp_payload_decode(tx->response_payload.data, tx->response_payload.len,
                                          &rp, NULL),
                   FL_OK);
  assert_int_equal(fl_rwset_decode(rp->results.data, rp->results.len, &rw, NULL), FL_OK);
  assert_int_equal(rw->n_writes, 1);
  fl_kv_write_t w = rw->writes[0];
  w.value = FL_BUF_STR("evil");
  fl_rwset_t rw2 = *rw;
  rw2.writes = &w;
  rw2.mem_ = NULL;
  fl_sbuf_t rwb = {0};
  assert_int_equal(fl_rwset_encode(&rw2, &rwb), FL_OK);
  fl_resp_payload_t rp2 = *rp;
  rp2.results = fl_sbuf_view(&rwb);
  rp2.mem_ = NULL;
  assert_int_equal(fl_resp_payload_encode(&rp2, &g_tampered), FL_OK);
  g_saved = tx->response_payload;
  g_saved_at = &tx->response_payload;
  tx->response_payload.data = g_tampered.data;
  tx->response_payload.len = g_tampered.len;
  fl_sbuf_free(&rwb);
  fl_rwset_free(rw);
  fl_resp_payload_free(rp);
}

static fl_sbuf_t g_orig_env; /* the envelope that wrote replay=orig */
static char g_orig_txid[FL_TXID_HEX_LEN + 1];

static void test_tampered_write_set(void **state) {
  (void)state;
  char txid[FL_TXID_HEX_LEN + 1];
  fl_sbuf_t pl = {0}, bad = {0}, v = {0};
  /* replay=orig, kept for the replay test. */
  const char *a0[] = {"put", "replay", "orig", NULL};
  prepare(2, 1, "kvstore", a0, g_orig_txid, &pl);
  assert_int_equal(pn_sign_envelope(g_net, 1, fl_sbuf_view(&pl), &g_orig_env), FL_OK);
  assert_int_equal(submit_wait(2, 1, fl_sbuf_view(&pl), g_orig_txid), VALID);
  /* A tx that writes replay=new, its write set changed to "evil". */
  const char *a1[] = {"put", "replay", "new", NULL};
  prepare(2, 1, "kvstore", a1, txid, &pl);
  rewrite_tx(fl_sbuf_view(&pl), tamper, NULL, &bad);
  assert_int_equal(submit_wait(2, 1, fl_sbuf_view(&bad), txid), BAD_ENDORSEMENT);
  for (int i = 0; i < PN_NPEER; i++) {
    assert_int_equal(eval(i, "kvstore", "get", "replay", &v), 200);
    assert_true(val_is(&v, "orig"));
  }
  fl_sbuf_free(&pl);
  fl_sbuf_free(&bad);
  fl_sbuf_free(&v);
  fl_sbuf_free(&g_tampered);
}

static void test_replayed_transaction(void **state) {
  (void)state;
  fl_sbuf_t v = {0};
  int code = -1;
  /* Move the key on, then replay the envelope that wrote "orig". */
  const char *a[] = {"put", "replay", "moved", NULL};
  char txid[FL_TXID_HEX_LEN + 1];
  assert_int_equal(pn_invoke(g_net, g_s[0], 0, "kvstore", a, &code, txid), FL_OK);
  assert_int_equal(code, VALID);
  uint64_t h_before = same_height(20000);
  fl_rpc_sync_t *o = NULL;
  assert_int_equal(pn_connect_orderer(g_net, 1, &o), FL_OK);
  fl_status_t st = FL_OK;
  char *info = NULL;
  assert_int_equal(pn_broadcast(o, fl_sbuf_view(&g_orig_env), &st, &info), FL_OK);
  printf("# replay broadcast directly to orderer1: status=%s info=%s\n", fl_status_name(st),
         info ? info : "");
  fl_free(info);
  fl_rpc_sync_close(o);
  /* Drive another block through, so a replay that was ordered is committed. */
  const char *b[] = {"put", "after-replay", "1", NULL};
  assert_int_equal(pn_invoke(g_net, g_s[0], 0, "kvstore", b, &code, txid), FL_OK);
  assert_int_equal(code, VALID);
  uint64_t h = same_height(20000);
  assert_true(h > h_before);
  /* Either the orderers refused it, or every peer marked it DUPLICATE_TXID. */
  if (st == FL_OK) {
    fl_sbuf_t raw = {0};
    bool seen = false;
    for (uint64_t n = h_before; n < h; n++) {
      assert_int_equal(pn_get_block(g_s[3], n, &raw), FL_OK);
      fl_block_t *blk = NULL;
      assert_int_equal(fl_block_decode(raw.data, raw.len, &blk, NULL), FL_OK);
      for (size_t i = 0; i < blk->n_envelopes; i++)
        if (fl_buf_eq(blk->envelopes[i], fl_sbuf_view(&g_orig_env))) {
          assert_int_equal(blk->validation_codes[i], DUPLICATE_TXID);
          seen = true;
        }
      fl_block_free(blk);
    }
    fl_sbuf_free(&raw);
    assert_true(seen);
  } else {
    assert_int_equal(st, FL_EEXIST);
  }
  uint64_t blk = 0;
  assert_int_equal(pn_get_tx(g_s[2], g_orig_txid, &code, &blk), FL_OK);
  assert_int_equal(code, VALID); /* the original keeps its place */
  for (int i = 0; i < PN_NPEER; i++) {
    assert_int_equal(eval(i, "kvstore", "get", "replay", &v), 200);
    assert_true(val_is(&v, "moved"));
  }
  fl_sbuf_free(&v);
}

/* Every peer's code for the envelope env in blocks [from, to): returns how
 * many times it was found (per peer) and asserts the code on each. */
static int code_everywhere(fl_buf_t env, uint64_t from, uint64_t to, int want) {
  int found[PN_NPEER] = {0};
  fl_sbuf_t raw = {0};
  for (int p = 0; p < PN_NPEER; p++)
    for (uint64_t n = from; n < to; n++) {
      assert_int_equal(pn_get_block(g_s[p], n, &raw), FL_OK);
      fl_block_t *blk = NULL;
      assert_int_equal(fl_block_decode(raw.data, raw.len, &blk, NULL), FL_OK);
      for (size_t i = 0; i < blk->n_envelopes; i++)
        if (fl_buf_eq(blk->envelopes[i], env)) {
          if (blk->validation_codes[i] != want)
            fail_msg("peer %d block %llu tx %zu: code %d, want %d", p, (unsigned long long)n, i,
                     (int)blk->validation_codes[i], want);
          found[p]++;
        }
      fl_block_free(blk);
    }
  fl_sbuf_free(&raw);
  for (int p = 1; p < PN_NPEER; p++) assert_int_equal(found[p], found[0]);
  return found[0];
}

/* The replay that gets past ordering: once more than DEDUP_WINDOW seqs
 * have passed, the orderers order the old envelope again; every peer must
 * mark it DUPLICATE_TXID (its tx id is in their ledgers) and leave the
 * state alone. Should an orderer ignore pbft.dedup_window, its default
 * window (1,024 seqs) is driven past the same way, only slower. */
static void test_replay_past_dedup_window(void **state) {
  (void)state;
  fl_rpc_sync_t *o = NULL;
  assert_int_equal(pn_connect_orderer(g_net, 2, &o), FL_OK);
  fl_status_t st = FL_EEXIST;
  uint64_t h_before = 0, extra = 0, t0 = pn_now_ms();
  char txid[FL_TXID_HEX_LEN + 1];
  while (st != FL_OK) {
    if (pn_now_ms() - t0 > 240000 || extra > 1100)
      fail_msg("the orderers still refuse the replay after %llu more blocks (last status %s)",
               (unsigned long long)extra, fl_status_name(st));
    /* One more block: a sequential put is one tx, one seq, one block. */
    char key[48];
    snprintf(key, sizeof key, "past-window-%llu", (unsigned long long)extra);
    const char *a[] = {"put", key, "1", NULL};
    int gw = (int)(extra % PN_NPEER), code = -1;
    assert_int_equal(pn_invoke(g_net, g_s[gw], g_net->porg[gw], "kvstore", a, &code, txid), FL_OK);
    assert_int_equal(code, VALID);
    extra++;
    if (extra < DEDUP_WINDOW) continue;
    /* Any peer's height now is at most the block the replay will be in. */
    assert_int_equal(pn_chain_info(g_s[gw], &h_before, NULL), FL_OK);
    char *info = NULL;
    assert_int_equal(pn_broadcast(o, fl_sbuf_view(&g_orig_env), &st, &info), FL_OK);
    if (st != FL_OK && st != FL_EEXIST && st != FL_AGAIN)
      fail_msg("replay broadcast: status %s info %s", fl_status_name(st), info ? info : "");
    fl_free(info);
  }
  fl_rpc_sync_close(o);
  printf("# replay ordered again after %llu more blocks (%llu ms)\n", (unsigned long long)extra,
         (unsigned long long)(pn_now_ms() - t0));
  /* One more tx, so the block with the replay is surely committed. */
  const char *b[] = {"put", "after-window-replay", "1", NULL};
  int code = -1;
  assert_int_equal(pn_invoke(g_net, g_s[1], g_net->porg[1], "kvstore", b, &code, txid), FL_OK);
  assert_int_equal(code, VALID);
  uint64_t h = same_height(20000);
  /* Ordered exactly once more, and every peer says DUPLICATE_TXID. */
  assert_int_equal(code_everywhere(fl_sbuf_view(&g_orig_env), h_before, h, DUPLICATE_TXID), 1);
  /* The original keeps its place and code on every peer; the state is the
   * value written after it, not the replay's. */
  fl_sbuf_t v = {0};
  for (int i = 0; i < PN_NPEER; i++) {
    uint64_t blk = 0;
    assert_int_equal(pn_get_tx(g_s[i], g_orig_txid, &code, &blk), FL_OK);
    assert_int_equal(code, VALID);
    assert_true(blk < h_before);
    assert_int_equal(eval(i, "kvstore", "get", "replay", &v), 200);
    assert_true(val_is(&v, "moved"));
  }
  fl_sbuf_free(&v);
}

/* Gateway/CommitStatus answers only requests signed by a member of the
 * channel: any organisation, any role; unsigned, badly signed, signed by
 * someone else than the identity named, or by an identity no organisation
 * issued, are refused and wait for nothing. */
static void test_commit_status_auth(void **state) {
  (void)state;
  int code = -1;
  uint64_t blk = 0;
  char *err = NULL;
  const pn_ident_t *c1 = &g_net->client[0], *c2 = &g_net->client[1];
  /* Org2's client asks Org1's gateway, a peer of Org2 asks too: answered. */
  assert_int_equal(pn_gw_status_as(g_s[0], fl_sbuf_view(&c2->id), c2->key, false, g_orig_txid,
                                    10000, &code, &blk, &err), FL_OK);
  assert_int_equal(code, VALID);
  code = -1;
  assert_int_equal(pn_gw_status_as(g_s[0], fl_sbuf_view(&g_net->peerid[2].id),
                                    g_net->peerid[2].key, false, g_orig_txid, 10000, &code, &blk,
                                    &err), FL_OK);
  assert_int_equal(code, VALID);
  /* No signature, a damaged one, or one by another key than the identity's. */
  assert_int_equal(pn_gw_status_as(g_s[0], fl_sbuf_view(&c1->id), NULL, false, g_orig_txid,
                                    10000, &code, &blk, &err), FL_EBADSIG);
  printf("# unsigned CommitStatus: %s\n", err ? err : "");
  fl_free(err);
  err = NULL;
  assert_int_equal(pn_gw_status_as(g_s[0], fl_sbuf_view(&c1->id), c1->key, true, g_orig_txid,
                                    10000, &code, &blk, &err), FL_EBADSIG);
  fl_free(err);
  err = NULL;
  assert_int_equal(pn_gw_status_as(g_s[0], fl_sbuf_view(&c2->id), c1->key, false, g_orig_txid,
                                    10000, &code, &blk, &err), FL_EBADSIG);
  fl_free(err);
  err = NULL;
  /* An organisation that is not in the channel. */
  Fl__Msp__SerializedIdentity *id =
      fl__msp__serialized_identity__unpack(NULL, c1->id.len, c1->id.data);
  assert_non_null(id);
  fl_sbuf_t alien = {0};
  assert_int_equal(fl_msp_serialize_identity("Org9MSP", id->id_bytes.data, id->id_bytes.len,
                                             &alien), FL_OK);
  fl__msp__serialized_identity__free_unpacked(id, NULL);
  fl_status_t rc = pn_gw_status_as(g_s[0], fl_sbuf_view(&alien), c1->key, false, g_orig_txid,
                                   10000, &code, &blk, &err);
  printf("# CommitStatus by Org9MSP: %s %s\n", fl_status_name(rc), err ? err : "");
  assert_int_equal(rc, FL_EUNTRUSTED);
  fl_free(err);
  fl_sbuf_free(&alien);
  /* The connection still serves members. */
  code = -1;
  assert_int_equal(pn_gw_status_as(g_s[0], fl_sbuf_view(&c1->id), c1->key, false, g_orig_txid,
                                    10000, &code, &blk, NULL), FL_OK);
  assert_int_equal(code, VALID);
}

static void test_stale_read(void **state) {
  (void)state;
  int code = -1;
  char txid[FL_TXID_HEX_LEN + 1], ta[FL_TXID_HEX_LEN + 1], tb[FL_TXID_HEX_LEN + 1];
  const char *a[] = {"incr", "ctr", NULL};
  assert_int_equal(pn_invoke(g_net, g_s[0], 0, "counter", a, &code, txid), FL_OK);
  assert_int_equal(code, VALID);
  same_height(20000);
  /* Two increments endorsed against the same version. */
  fl_sbuf_t pa = {0}, pb = {0}, v = {0};
  prepare(0, 0, "counter", a, ta, &pa);
  prepare(3, 1, "counter", a, tb, &pb);
  assert_int_equal(submit_wait(0, 0, fl_sbuf_view(&pa), ta), VALID);
  assert_int_equal(submit_wait(3, 1, fl_sbuf_view(&pb), tb), MVCC);
  same_height(20000);
  for (int i = 0; i < PN_NPEER; i++) {
    assert_int_equal(eval(i, "counter", "get", "ctr", &v), 200);
    assert_true(val_is(&v, "2"));
  }
  fl_sbuf_free(&pa);
  fl_sbuf_free(&pb);
  fl_sbuf_free(&v);
}

/* Peer/EndorseAt: a request naming a height the peer has not committed
 * waits for that commit (here: a transaction through another gateway), one
 * naming a height far ahead is endorsed after the bounded wait, and a
 * request too short to hold a height is refused. */
typedef struct ea_s {
  fl_rpc_sync_t *s;
  fl_buf_t req;
  fl_status_t rc;
  fl_sbuf_t rep;
  uint64_t done_ms;
} ea_t;

static void *ea_run(void *arg) {
  ea_t *a = arg;
  a->rc = fl_rpc_sync_unary(a->s, "Peer/EndorseAt", a->req, 20000, &a->rep, NULL);
  a->done_ms = pn_now_ms();
  return NULL;
}

static bool ea_endorsed(const fl_sbuf_t *rep) {
  fl_proposal_response_t *pr = NULL;
  if (fl_proposal_response_decode(rep->data, rep->len, &pr, NULL) != FL_OK) return false;
  bool ok = pr->response.status == 200 && pr->has_endorsement;
  fl_proposal_response_free(pr);
  return ok;
}

static void test_endorse_at(void **state) {
  (void)state;
  uint64_t h = same_height(20000);
  fl_rpc_sync_t *s3 = NULL;
  assert_int_equal(pn_connect_peer(g_net, 3, g_net->porg[3], &s3), FL_OK);
  const char *get[] = {"get", "ctr", NULL};
  char txid[FL_TXID_HEX_LEN + 1];
  fl_sbuf_t sp = {0}, req = {0};
  assert_int_equal(pn_proposal(g_net, 1, "counter", get, &sp, txid), FL_OK);

  /* 1. height h + 1: waits for the next block. */
  fl_sbuf_append_be64(&req, h + 1);
  fl_sbuf_append(&req, sp.data, sp.len);
  ea_t a = {.s = s3, .req = fl_sbuf_view(&req)};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, ea_run, &a), 0);
  pn_sleep_ms(500);
  assert_int_equal(a.done_ms, 0); /* still parked */
  const char *incr[] = {"incr", "ctr", NULL};
  int code = -1;
  char t2[FL_TXID_HEX_LEN + 1];
  assert_int_equal(pn_invoke(g_net, g_s[0], 0, "counter", incr, &code, t2), FL_OK);
  assert_int_equal(code, VALID);
  uint64_t committed_ms = pn_now_ms();
  assert_int_equal(pn_wait_height(g_net, 3, h + 1, 20000), FL_OK);
  pthread_join(th, NULL);
  assert_int_equal(a.rc, FL_OK);
  assert_true(ea_endorsed(&a.rep));
  assert_true(a.done_ms + 2000 > committed_ms); /* answered after the commit, not by the timeout */
  fprintf(stderr, "# endorse-at: parked request answered %lld ms after the commit at gateway 0\n",
          (long long)a.done_ms - (long long)committed_ms);

  /* 2. a height far ahead: endorsed at the current height after the wait. */
  fl_sbuf_free(&a.rep);
  req.len = 0;
  fl_sbuf_append_be64(&req, h + 1000000);
  fl_sbuf_append(&req, sp.data, sp.len);
  a = (ea_t){.s = s3, .req = fl_sbuf_view(&req)};
  uint64_t t0 = pn_now_ms();
  ea_run(&a);
  assert_int_equal(a.rc, FL_OK);
  assert_true(ea_endorsed(&a.rep));
  assert_true(a.done_ms - t0 >= 1900 && a.done_ms - t0 < 15000);

  /* 3. too short. */
  fl_sbuf_t rep = {0};
  assert_int_equal(fl_rpc_sync_unary(s3, "Peer/EndorseAt", FL_BUF("\x00\x01\x02", 3), 5000,
                                     &rep, NULL),
                   FL_EMALFORMED);
  fl_sbuf_free(&rep);
  fl_sbuf_free(&a.rep);
  fl_sbuf_free(&req);
  fl_sbuf_free(&sp);
  fl_rpc_sync_close(s3);
}

/* ------------------------------------------------------------------ 3 */

/* GET path from peer i's operations endpoint: the whole HTTP answer. */
static void ops_get(int i, const char *path, fl_sbuf_t *body) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(g_net->opsport[i]),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
  char req[128];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
  assert_int_equal(write(s, req, (size_t)n), (ssize_t)n);
  body->len = 0;
  char buf[4096];
  ssize_t k;
  while ((k = read(s, buf, sizeof(buf))) > 0) fl_sbuf_append(body, buf, (size_t)k);
  close(s);
}

/* The value of an unlabelled metric of peer i. */
static double ops_metric(int i, const char *name) {
  fl_sbuf_t body = {0};
  ops_get(i, "/metrics", &body);
  char pat[128];
  snprintf(pat, sizeof pat, "\n%s ", name);
  const char *at = strstr(fl_sbuf_cstr(&body), pat);
  assert_non_null(at);
  double v = strtod(at + strlen(pat), NULL);
  fl_sbuf_free(&body);
  return v;
}

static void test_events_and_queries(void **state) {
  (void)state;
  fl_events_sub_t *sub = NULL;
  assert_int_equal(fl_events_sub_new(0, &sub), FL_OK);
  char url[64];
  snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", g_net->eport[1]);
  assert_int_equal(fl_events_sub_connect(sub, url), FL_OK);
  assert_int_equal(fl_events_sub_subscribe_topic(sub, "block"), FL_OK);
  assert_int_equal(fl_events_sub_subscribe(sub, "cc/kvstore"), FL_OK);
  /* nanomsg subscriptions become live some time after connect (the "slow
   * joiner"): commit probe transactions until a block event arrives, so the
   * checked event below cannot be published before the subscription is. */
  int code = -1;
  bool live = false;
  for (int probe = 0; probe < 40 && !live; probe++) {
    char ptx[FL_TXID_HEX_LEN + 1];
    const char *pa[] = {"put", "events-probe", "x", NULL};
    assert_int_equal(pn_invoke(g_net, g_s[0], 0, "kvstore", pa, &code, ptx), FL_OK);
    fl_events_msg_t m;
    while (fl_events_recv(sub, 500, &m) == FL_OK) {
      live = live || strcmp(m.topic, "block") == 0;
      fl_events_msg_free(&m);
    }
  }
  assert_true(live);
  char txid[FL_TXID_HEX_LEN + 1];
  const char *a[] = {"event", "trained", "round-1", NULL};
  assert_int_equal(pn_invoke(g_net, g_s[0], 0, "kvstore", a, &code, txid), FL_OK);
  assert_int_equal(code, VALID);
  bool got_cc = false, got_block = false;
  uint64_t end = pn_now_ms() + 10000;
  while ((!got_cc || !got_block) && pn_now_ms() < end) {
    fl_events_msg_t m;
    if (fl_events_recv(sub, 500, &m) != FL_OK) continue;
    Fl__Events__Event *ev = fl__events__event__unpack(NULL, m.payload.len, m.payload.data);
    assert_non_null(ev);
    assert_string_equal(ev->peer, g_net->pname[1]);
    if (ev->type_case == FL__EVENTS__EVENT__TYPE_CHAINCODE && strcmp(ev->chaincode->tx_id, txid) == 0) {
      assert_string_equal(m.topic, "cc/kvstore");
      assert_string_equal(ev->chaincode->name, "trained");
      assert_int_equal(ev->chaincode->payload.len, 7);
      assert_memory_equal(ev->chaincode->payload.data, "round-1", 7);
      got_cc = true;
    }
    if (ev->type_case == FL__EVENTS__EVENT__TYPE_BLOCK)
      for (size_t i = 0; i < ev->block->n_txs; i++)
        if (strcmp(ev->block->txs[i]->tx_id, txid) == 0) {
          assert_int_equal(ev->block->txs[i]->code, VALID);
          assert_string_equal(ev->block->txs[i]->chaincode, "kvstore");
          got_block = true;
        }
    fl__events__event__free_unpacked(ev, NULL);
    fl_events_msg_free(&m);
  }
  fl_events_sub_free(sub);
  assert_true(got_cc);
  assert_true(got_block);
  /* GetTransaction of that tx on another peer. */
  uint64_t blk = 0;
  same_height(20000);
  assert_int_equal(pn_get_tx(g_s[2], txid, &code, &blk), FL_OK);
  assert_int_equal(code, VALID);
  assert_true(blk > 0);
  /* A blob stored by a transaction, read back from another peer. */
  {
    static const char blob[] = "model weights, little-endian float32 in real life";
    fl_buf_t args2[2] = {FL_BUF_STR("blob"), FL_BUF_STR("model/1")};
    fl_buf_t blobs[1] = {FL_BUF(blob, sizeof(blob))};
    fl_proposal_spec_t spec = {.channel = PN_CHANNEL, .creator = fl_sbuf_view(&g_net->client[1].id),
                               .chaincode = "kvstore", .args = args2, .n_args = 2,
                               .blobs = blobs, .n_blobs = 1};
    fl_sbuf_t sp = {0}, got = {0};
    char btx[FL_TXID_HEX_LEN + 1];
    assert_int_equal(fl_proposal_build(&spec, g_net->client[1].key, &sp, btx), FL_OK);
    assert_int_equal(pn_invoke_sp(g_net, g_s[2], 1, fl_sbuf_view(&sp), btx, &code), FL_OK);
    assert_int_equal(code, VALID);
    same_height(20000);
    uint8_t h[32];
    fl_sha256(blob, sizeof(blob), h);
    assert_int_equal(pn_get_blob(g_s[1], h, &got), FL_OK);
    assert_int_equal(got.len, sizeof(blob));
    assert_memory_equal(got.data, blob, sizeof(blob));
    h[0] ^= 1;
    assert_int_equal(pn_get_blob(g_s[1], h, &got), FL_NOTFOUND);
    fl_sbuf_free(&sp);
    fl_sbuf_free(&got);
  }
  /* Operations endpoint. */
  fl_sbuf_t body = {0};
  ops_get(0, "/metrics", &body);
  const char *t = fl_sbuf_cstr(&body);
  assert_non_null(strstr(t, "200 OK"));
  assert_non_null(strstr(t, "fl_peer_ledger_height "));
  assert_non_null(strstr(t, "fl_peer_tx_validated_total{code=\"BAD_ENDORSEMENT\"} "));
  assert_non_null(strstr(t, "fl_peer_endorsement_seconds_count"));
  assert_null(strstr(t, "fl_peer_tx_validated_total{code=\"BAD_ENDORSEMENT\"} 0\n"));
  ops_get(0, "/healthz", &body);
  assert_non_null(strstr(fl_sbuf_cstr(&body), "200 OK"));
  assert_non_null(strstr(fl_sbuf_cstr(&body), "\"status\":\"OK\""));
  fl_sbuf_free(&body);
}

/* Under light load a gateway sends each envelope to the primary of the
 * newest checked block's view, sparing a backup's forward hop. */
static void test_broadcast_to_primary(void **state) {
  (void)state;
  same_height(20000);
  double sent0 = ops_metric(0, "fl_peer_gateway_broadcasts");
  double prim0 = ops_metric(0, "fl_peer_gateway_broadcasts_to_primary");
  for (int k = 0; k < 5; k++) {
    char key[32], txid[FL_TXID_HEX_LEN + 1];
    snprintf(key, sizeof key, "primary/%d", k);
    const char *a[] = {"put", key, "v", NULL};
    int code = -1;
    assert_int_equal(pn_invoke(g_net, g_s[0], 0, "kvstore", a, &code, txid), FL_OK);
    assert_int_equal(code, VALID);
  }
  pn_sleep_ms(700); /* the gauges follow the peer's tick (<= 250 ms) */
  double sent = ops_metric(0, "fl_peer_gateway_broadcasts") - sent0;
  double prim = ops_metric(0, "fl_peer_gateway_broadcasts_to_primary") - prim0;
  printf("# 5 sequential submissions: %.0f broadcasts, %.0f to the primary\n", sent, prim);
  assert_true(sent == 5.0);
  assert_true(prim == 5.0);
}

typedef struct chain_s {
  uint64_t next;
  uint8_t prev[32];
  int bad;
} chain_t;

static int on_block(void *arg, fl_buf_t raw) {
  chain_t *c = arg;
  fl_block_t *b = NULL;
  const char *why = "wrong number";
  if (fl_block_decode(raw.data, raw.len, &b, &why) != FL_OK || b->number != c->next ||
      (b->number > 0 && fl_block_check_link(b->number - 1, c->prev, b, &why) != FL_OK)) {
    fprintf(stderr, "# deliver: block %llu refused: %s\n", (unsigned long long)c->next, why);
    c->bad++;
  }
  if (b) memcpy(c->prev, b->header_hash, 32);
  c->next++;
  fl_block_free(b);
  return 0;
}

static int on_block_stop(void *arg, fl_buf_t raw) {
  on_block(arg, raw);
  return 1; /* one block of the live tail, then cancel */
}

static int g_tail_code = -1;

static void *tail_writer(void *arg) {
  (void)arg;
  pn_sleep_ms(500);
  fl_rpc_sync_t *s = NULL;
  if (pn_connect_peer(g_net, 0, 0, &s) != FL_OK) return NULL;
  char txid[FL_TXID_HEX_LEN + 1];
  const char *a[] = {"put", "tail", "1", NULL};
  pn_invoke(g_net, s, 0, "kvstore", a, &g_tail_code, txid);
  fl_rpc_sync_close(s);
  return NULL;
}

static void test_peer_deliver(void **state) {
  (void)state;
  uint64_t h = same_height(20000);
  chain_t c = {0};
  assert_int_equal(pn_deliver(g_net, g_s[2], 0, h - 1, on_block, &c), FL_OK);
  assert_int_equal(c.next, h);
  assert_int_equal(c.bad, 0);
  /* Live tail: a stream from block h waits; a thread commits one. */
  pthread_t th;
  chain_t t = {.next = h};
  memcpy(t.prev, c.prev, 32);
  fl_rpc_sync_t *s = NULL;
  assert_int_equal(pn_connect_peer(g_net, 1, 0, &s), FL_OK);
  assert_int_equal(pthread_create(&th, NULL, tail_writer, NULL), 0);
  fl_status_t rc = pn_deliver(g_net, s, h, UINT64_MAX, on_block_stop, &t);
  pthread_join(th, NULL);
  assert_int_equal(rc, FL_ECANCELED);
  assert_int_equal(t.next, h + 1);
  assert_int_equal(t.bad, 0);
  assert_int_equal(g_tail_code, VALID);
  fl_rpc_sync_close(s);
}

/* ------------------------------------------------------------------ 4 */

/* Writes peer i's configuration with deliver.orderers = [proxy, the real
 * orderers 1..3] and returns its path (owned). */
static char *lie_config(int i, uint16_t proxy_port) {
  char src[300];
  snprintf(src, sizeof(src), "%s/peer%d.yaml", g_net->dir, i);
  char *dst = fl_sprintf("%s/peer%d-lie.yaml", g_net->dir, i);
  FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
  assert_non_null(in);
  assert_non_null(out);
  char line[1024];
  while (fgets(line, sizeof(line), in)) {
    if (strstr(line, "orderers: []")) {
      fprintf(out, "  orderers: [\"127.0.0.1:%u\", \"127.0.0.1:%u\", \"127.0.0.1:%u\", "
              "\"127.0.0.1:%u\"]\n", proxy_port, g_net->oport[1], g_net->oport[2],
              g_net->oport[3]);
      continue;
    }
    fputs(line, out);
  }
  fclose(in);
  fclose(out);
  return dst;
}

static void lie_round(px_mode_t mode, const char *prefix) {
  const int victim = 1;
  uint64_t h1 = 0;
  assert_int_equal(pn_chain_info(g_s[victim], &h1, NULL), FL_OK);
  fl_rpc_sync_close(g_s[victim]);
  g_s[victim] = NULL;
  assert_int_equal(pn_signal_peer(g_net, victim, SIGTERM), FL_OK);
  /* Blocks the stopped peer will have to fetch. */
  int gws[2] = {0, 2};
  uint32_t valid = 0, failed = 0;
  assert_int_equal(pn_load(g_net, gws, 2, prefix, 40, 8, &valid, &failed), FL_OK);
  assert_int_equal(valid, 40);
  px_t *px = NULL;
  assert_int_equal(px_start(g_net, 0, mode, h1 + 1, &px), FL_OK);
  char *cfg = lie_config(victim, px_port(px));
  int bad0 = pn_log_count(g_net, victim, "orderer served a bad block");
  int fo0 = pn_log_count(g_net, victim, "deliver failover");
  assert_int_equal(pn_start_peer_cfg(g_net, victim, cfg), FL_OK);
  assert_int_equal(pn_wait_peer(g_net, victim, 20000), FL_OK);
  assert_int_equal(pn_connect_peer(g_net, victim, 0, &g_s[victim]), FL_OK);
  uint64_t h = same_height(30000);
  assert_true(h > h1);
  assert_true(px_tampered(px) >= 1);
  int bad = pn_log_count(g_net, victim, "orderer served a bad block");
  int fo = pn_log_count(g_net, victim, "deliver failover");
  printf("# lying orderer (%s): tampered=%u, bad-block log lines %d -> %d, failovers %d -> %d\n",
         mode == PX_BAD_SIG ? "bad signatures" : "broken hash link", px_tampered(px), bad0, bad,
         fo0, fo);
  assert_true(bad > bad0);
  assert_true(fo > fo0);
  same_blocks(h);
  px_stop(px);
  fl_free(cfg);
}

static void test_lying_orderer(void **state) {
  (void)state;
  lie_round(PX_BAD_SIG, "lie1/");
  lie_round(PX_SKIP, "lie2/");
  same_kv_state(NULL);
}

/* An orderer that acknowledges every Broadcast and drops it (a proxy in
 * front of orderer 0, first in the victim's list): the victim's gateway
 * sends one submission in four there, and re-broadcasts each of those to
 * another orderer when it is not committed in time. Every transaction
 * commits, VALID, once. */
static void test_censoring_orderer(void **state) {
  (void)state;
  const int victim = 1, org = g_net->porg[victim];
  same_height(20000);
  fl_rpc_sync_close(g_s[victim]);
  g_s[victim] = NULL;
  assert_int_equal(pn_signal_peer(g_net, victim, SIGTERM), FL_OK);
  px_t *px = NULL;
  assert_int_equal(px_start(g_net, 0, PX_EAT_BROADCAST, 0, &px), FL_OK);
  char *cfg = lie_config(victim, px_port(px));
  int rb0 = pn_log_count(g_net, victim, "re-broadcast: txid=");
  assert_int_equal(pn_start_peer_cfg(g_net, victim, cfg), FL_OK);
  assert_int_equal(pn_wait_peer(g_net, victim, 20000), FL_OK);
  assert_int_equal(pn_connect_peer(g_net, victim, org, &g_s[victim]), FL_OK);
  uint64_t t0 = pn_now_ms();
  for (int k = 0; k < 8; k++) {
    char key[32], txid[FL_TXID_HEX_LEN + 1];
    snprintf(key, sizeof key, "censor/%d", k);
    const char *a[] = {"put", key, "v", NULL};
    int code = -1;
    assert_int_equal(pn_invoke(g_net, g_s[victim], org, "kvstore", a, &code, txid), FL_OK);
    assert_int_equal(code, VALID);
  }
  uint64_t took = pn_now_ms() - t0;
  int rb = pn_log_count(g_net, victim, "re-broadcast: txid=");
  printf("# censoring orderer: %u broadcasts eaten, %d re-broadcasts, 8 transactions committed "
         "in %llu ms\n",
         px_tampered(px), rb - rb0, (unsigned long long)took);
  assert_true(px_tampered(px) >= 1);
  assert_true(rb - rb0 >= (int)px_tampered(px));
  same_height(30000);
  px_stop(px);
  fl_free(cfg);
  /* back to the peer's own configuration */
  fl_rpc_sync_close(g_s[victim]);
  g_s[victim] = NULL;
  assert_int_equal(pn_signal_peer(g_net, victim, SIGTERM), FL_OK);
  assert_int_equal(pn_start_peer(g_net, victim), FL_OK);
  assert_int_equal(pn_wait_peer(g_net, victim, 20000), FL_OK);
  assert_int_equal(pn_connect_peer(g_net, victim, org, &g_s[victim]), FL_OK);
  same_kv_state(NULL);
}

/* ------------------------------------------------------------------ 5 */

typedef struct kvent_s {
  fl_sbuf_t k, v;
  uint64_t b, t;
} kvent_t;

static void test_offline_ledgers_identical(void **state) {
  (void)state;
  uint64_t h = same_height(30000);
  same_blocks(h);
  for (int i = 0; i < PN_NPEER; i++) {
    fl_rpc_sync_close(g_s[i]);
    g_s[i] = NULL;
    assert_int_equal(pn_signal_peer(g_net, i, SIGTERM), FL_OK); /* exit status 0 */
  }
  fl_ledger_t *l[PN_NPEER] = {0};
  fl_ledger_range_t *it[PN_NPEER] = {0};
  for (int i = 0; i < PN_NPEER; i++) {
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/pdata%d/ledger", g_net->dir, i);
    assert_int_equal(fl_ledger_open(dir, NULL, &l[i]), FL_OK);
    assert_int_equal(fl_ledger_height(l[i]), h);
    assert_int_equal(fl_ledger_range_new(l[i], NULL, (fl_buf_t){0}, (fl_buf_t){0}, &it[i]), FL_OK);
  }
  size_t n = 0;
  for (;;) {
    fl_buf_t k0, v0, k, v;
    fl_ledger_version_t ver0, ver;
    fl_status_t rc0 = fl_ledger_range_next(it[0], &k0, &v0, &ver0);
    for (int i = 1; i < PN_NPEER; i++) {
      fl_status_t rc = fl_ledger_range_next(it[i], &k, &v, &ver);
      assert_int_equal(rc, rc0);
      if (rc0 != FL_OK) continue;
      assert_true(fl_buf_eq(k, k0));
      assert_true(fl_buf_eq(v, v0));
      assert_int_equal(ver.block, ver0.block);
      assert_int_equal(ver.tx, ver0.tx);
    }
    if (rc0 != FL_OK) {
      assert_int_equal(rc0, FL_NOTFOUND);
      break;
    }
    n++;
  }
  printf("# offline: %d ledgers, height %llu, %zu state entries identical\n", PN_NPEER,
         (unsigned long long)h, n);
  assert_true(n > 1000);
  for (int i = 0; i < PN_NPEER; i++) {
    fl_ledger_range_free(it[i]);
    fl_ledger_close(l[i]);
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines as they happen */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_thousand_transactions),
      cmocka_unit_test(test_forged_endorsement),
      cmocka_unit_test(test_wrong_org_endorsements),
      cmocka_unit_test(test_tampered_write_set),
      cmocka_unit_test(test_replayed_transaction),
      cmocka_unit_test(test_replay_past_dedup_window),
      cmocka_unit_test(test_commit_status_auth),
      cmocka_unit_test(test_stale_read),
      cmocka_unit_test(test_endorse_at),
      cmocka_unit_test(test_events_and_queries),
      cmocka_unit_test(test_broadcast_to_primary),
      cmocka_unit_test(test_peer_deliver),
      cmocka_unit_test(test_lying_orderer),
      cmocka_unit_test(test_censoring_orderer),
      cmocka_unit_test(test_offline_ledgers_identical),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
