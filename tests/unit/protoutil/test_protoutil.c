/* SPDX-License-Identifier: Apache-2.0
 *
 * test_protoutil.c: unit tests of common/protoutil: round trips of every
 * builder/decoder, tampering (header, envelope, payload, tx id), orderer
 * signature quorums, endorsement assembly, truncated and garbage input for
 * every decoder, and the genesis block.
 *
 * Identities are generated at start-up: three organisations (an orderer org
 * with 4 orderers and an admin, Org1 with two peers, a client and an admin,
 * Org2 with one peer), each with a self-signed CA, plus a rogue CA that no
 * MSP trusts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/crypto/hash.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"
#include "common/crypto/x509.h"
#include "common/protoutil/block.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/genesis.h"
#include "common/protoutil/proposal.h"
#include "common/protoutil/protoutil.h"
#include "common/protoutil/rwset.h"

/* ------------------------------------------------------------ identities */

typedef struct ident_s {
  fl_signer_t *key;
  fl_cert_t *cert;
  fl_sbuf_t pem; /* certificate PEM */
  fl_sbuf_t sid; /* serialized identity */
} ident_t;

enum { N_ORDERERS = 4, F = 1 };

static struct {
  ident_t ord_ca, org1_ca, org2_ca, rogue_ca;
  ident_t orderer[N_ORDERERS], ord_admin;
  ident_t peer0, peer1, client, org1_admin, org2_peer;
  ident_t rogue; /* an "orderer" issued by the rogue CA */
  fl_msp_t *msp;
  const fl_verifier_t *verifiers[N_ORDERERS];
} W;

static void make_ca(ident_t *ca, const char *cn) {
  int64_t now = (int64_t)time(NULL);
  assert_int_equal(fl_signer_generate(&ca->key), FL_OK);
  fl_cert_template_t t = {.org = cn, .cn = cn, .is_ca = true,
                          .key_usage = FL_KU_KEY_CERT_SIGN | FL_KU_CRL_SIGN |
                                       FL_KU_DIGITAL_SIGNATURE,
                          .not_before = now - 3600, .not_after = now + 86400 * 365};
  assert_int_equal(fl_cert_issue(&t, ca->key, NULL, ca->key, &ca->cert), FL_OK);
  fl_cert_to_pem(ca->cert, &ca->pem);
}

static void make_ident(ident_t *id, const ident_t *ca, const char *mspid,
                       const char *role, const char *cn) {
  int64_t now = (int64_t)time(NULL);
  assert_int_equal(fl_signer_generate(&id->key), FL_OK);
  const char *ous[] = {role};
  fl_cert_template_t t = {.org = mspid, .ous = ous, .n_ous = 1, .cn = cn,
                          .key_usage = FL_KU_DIGITAL_SIGNATURE,
                          .not_before = now - 3600, .not_after = now + 86400 * 365};
  assert_int_equal(fl_cert_issue(&t, id->key, ca->cert, ca->key, &id->cert), FL_OK);
  fl_cert_to_pem(id->cert, &id->pem);
  assert_int_equal(fl_msp_serialize_identity(mspid, id->pem.data, id->pem.len, &id->sid),
                   FL_OK);
}

static void free_ident(ident_t *id) {
  fl_signer_free(id->key);
  fl_cert_free(id->cert);
  fl_sbuf_free(&id->pem);
  fl_sbuf_free(&id->sid);
}

static int setup(void **state) {
  (void)state;
  make_ca(&W.ord_ca, "ca.orderer.example.com");
  make_ca(&W.org1_ca, "ca.org1.example.com");
  make_ca(&W.org2_ca, "ca.org2.example.com");
  make_ca(&W.rogue_ca, "ca.rogue.example.com");
  for (int i = 0; i < N_ORDERERS; i++) {
    char cn[64];
    snprintf(cn, sizeof cn, "orderer%d.example.com", i);
    make_ident(&W.orderer[i], &W.ord_ca, "OrdererMSP", "orderer", cn);
    W.verifiers[i] = fl_cert_pubkey(W.orderer[i].cert);
  }
  make_ident(&W.ord_admin, &W.ord_ca, "OrdererMSP", "admin", "Admin@example.com");
  make_ident(&W.peer0, &W.org1_ca, "Org1MSP", "peer", "peer0.org1.example.com");
  make_ident(&W.peer1, &W.org1_ca, "Org1MSP", "peer", "peer1.org1.example.com");
  make_ident(&W.client, &W.org1_ca, "Org1MSP", "client", "User1@org1.example.com");
  make_ident(&W.org1_admin, &W.org1_ca, "Org1MSP", "admin", "Admin@org1.example.com");
  make_ident(&W.org2_peer, &W.org2_ca, "Org2MSP", "peer", "peer0.org2.example.com");
  make_ident(&W.rogue, &W.rogue_ca, "OrdererMSP", "orderer", "orderer3.example.com");
  W.msp = fl_msp_new();
  assert_int_equal(fl_msp_add_org(W.msp, "OrdererMSP", W.ord_ca.pem.data, W.ord_ca.pem.len,
                                  NULL, 0), FL_OK);
  assert_int_equal(fl_msp_add_org(W.msp, "Org1MSP", W.org1_ca.pem.data, W.org1_ca.pem.len,
                                  NULL, 0), FL_OK);
  assert_int_equal(fl_msp_add_org(W.msp, "Org2MSP", W.org2_ca.pem.data, W.org2_ca.pem.len,
                                  NULL, 0), FL_OK);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fl_msp_free(W.msp);
  ident_t *all[] = {&W.ord_ca, &W.org1_ca, &W.org2_ca, &W.rogue_ca, &W.ord_admin,
                    &W.peer0, &W.peer1, &W.client, &W.org1_admin, &W.org2_peer, &W.rogue};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free_ident(all[i]);
  for (int i = 0; i < N_ORDERERS; i++) free_ident(&W.orderer[i]);
  return 0;
}

/* --------------------------------------------------------------- helpers */

/* Finds needle in hay; returns its offset or -1. */
static long find(fl_buf_t hay, const void *needle, size_t n) {
  if (n == 0 || n > hay.len) return -1;
  for (size_t i = 0; i + n <= hay.len; i++)
    if (memcmp(hay.data + i, needle, n) == 0) return (long)i;
  return -1;
}

/* Deterministic PRNG for garbage input. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint8_t rnd8(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint8_t)rng_state;
}

typedef fl_status_t (*decode_fn)(const uint8_t *data, size_t len, const char **reason);

/* Every proper prefix of a valid encoding and a set of garbage inputs: no
 * crash, every failure comes with a reason. Returns how many prefixes
 * decoded successfully. */
static size_t hammer(decode_fn fn, fl_buf_t valid) {
  size_t ok = 0;
  for (size_t len = 0; len < valid.len; len++) {
    uint8_t *copy = fl_memdup(valid.data, len); /* exact-size heap copy for ASan */
    const char *reason = NULL;
    fl_status_t rc = fn(copy, len, &reason);
    if (rc == FL_OK)
      ok++;
    else
      assert_non_null(reason);
    fl_free(copy);
  }
  for (int round = 0; round < 300; round++) {
    size_t len = (size_t)(rnd8() % 200) + 1;
    uint8_t *g = fl_malloc(len);
    for (size_t i = 0; i < len; i++) g[i] = rnd8();
    if (round % 3 == 0 && valid.len > 0) { /* mutate a valid encoding */
      fl_free(g);
      len = valid.len;
      g = fl_memdup(valid.data, len);
      for (int k = 0; k < 4; k++) g[rnd8() % len] ^= (uint8_t)(1u << (rnd8() % 8));
    }
    const char *reason = NULL;
    fl_status_t rc = fn(g, len, &reason);
    if (rc != FL_OK) assert_non_null(reason);
    fl_free(g);
  }
  return ok;
}

static fl_status_t dec_block(const uint8_t *d, size_t n, const char **r) {
  fl_block_t *b = NULL;
  fl_status_t rc = fl_block_decode(d, n, &b, r);
  assert_true((rc == FL_OK) == (b != NULL));
  fl_block_free(b);
  return rc;
}
static fl_status_t dec_env(const uint8_t *d, size_t n, const char **r) {
  fl_envelope_t *e = NULL;
  fl_status_t rc = fl_envelope_decode(d, n, &e, r);
  assert_true((rc == FL_OK) == (e != NULL));
  fl_envelope_free(e);
  return rc;
}
static fl_status_t dec_sprop(const uint8_t *d, size_t n, const char **r) {
  fl_proposal_t *p = NULL;
  fl_status_t rc = fl_signed_proposal_decode(d, n, &p, r);
  assert_true((rc == FL_OK) == (p != NULL));
  fl_proposal_free(p);
  return rc;
}
static fl_status_t dec_rp(const uint8_t *d, size_t n, const char **r) {
  fl_resp_payload_t *p = NULL;
  fl_status_t rc = fl_resp_payload_decode(d, n, &p, r);
  assert_true((rc == FL_OK) == (p != NULL));
  fl_resp_payload_free(p);
  return rc;
}
static fl_status_t dec_presp(const uint8_t *d, size_t n, const char **r) {
  fl_proposal_response_t *p = NULL;
  fl_status_t rc = fl_proposal_response_decode(d, n, &p, r);
  assert_true((rc == FL_OK) == (p != NULL));
  fl_proposal_response_free(p);
  return rc;
}
static fl_status_t dec_rwset(const uint8_t *d, size_t n, const char **r) {
  fl_rwset_t *p = NULL;
  fl_status_t rc = fl_rwset_decode(d, n, &p, r);
  assert_true((rc == FL_OK) == (p != NULL));
  fl_rwset_free(p);
  return rc;
}
static fl_status_t dec_netconfig(const uint8_t *d, size_t n, const char **r) {
  fl_netconfig_t *p = NULL;
  fl_status_t rc = fl_netconfig_decode(d, n, &p, r);
  assert_true((rc == FL_OK) == (p != NULL));
  fl_netconfig_free(p);
  return rc;
}
/* A Transaction prefix wrapped into a valid envelope, then fl_tx_decode. */
static fl_status_t dec_tx(const uint8_t *d, size_t n, const char **r) {
  fl_sbuf_t env = {0};
  assert_int_equal(fl_envelope_build(FL_HDR_ENDORSER_TX, "ch", fl_sbuf_view(&W.client.sid),
                                     W.client.key, FL_BUF(d, n), &env, NULL), FL_OK);
  fl_envelope_t *e = NULL;
  assert_int_equal(fl_envelope_decode(env.data, env.len, &e, NULL), FL_OK);
  fl_tx_t *tx = NULL;
  fl_status_t rc = fl_tx_decode(e, &tx, r);
  assert_true((rc == FL_OK) == (tx != NULL));
  fl_tx_free(tx);
  fl_envelope_free(e);
  fl_sbuf_free(&env);
  return rc;
}

static void build_env(const ident_t *id, const char *data, fl_sbuf_t *out, char *txid) {
  assert_int_equal(fl_envelope_build(FL_HDR_ENDORSER_TX, "fedchannel", fl_sbuf_view(&id->sid),
                                     id->key, FL_BUF_STR(data), out, txid), FL_OK);
}

/* ---------------------------------------------------------- header, tx id */

static void test_tx_id(void **state) {
  (void)state;
  uint8_t nonce[FL_NONCE_LEN];
  fl_header_t h;
  fl_buf_t creator = fl_sbuf_view(&W.client.sid);
  assert_int_equal(fl_header_make(FL_HDR_ENDORSER_TX, "fedchannel", creator, nonce, &h), FL_OK);
  /* tx id = hex SHA-256(nonce || creator), computed independently here */
  fl_sbuf_t cat = {0};
  fl_sbuf_append(&cat, nonce, sizeof nonce);
  fl_sbuf_append(&cat, creator.data, creator.len);
  uint8_t d[FL_SHA256_LEN];
  fl_sha256(cat.data, cat.len, d);
  char hex[65];
  fl_hex_encode(d, sizeof d, hex);
  assert_string_equal(h.tx_id, hex);
  assert_int_equal(strlen(h.tx_id), FL_TXID_HEX_LEN);
  assert_true(h.timestamp_ms > 0);
  fl_sbuf_free(&cat);
  /* Two headers never share a nonce or a tx id. */
  uint8_t nonce2[FL_NONCE_LEN];
  fl_header_t h2;
  assert_int_equal(fl_header_make(FL_HDR_ENDORSER_TX, "fedchannel", creator, nonce2, &h2), FL_OK);
  assert_string_not_equal(h.tx_id, h2.tx_id);
  /* Bad inputs. */
  assert_int_equal(fl_header_make(FL_HDR_UNSPECIFIED, "c", creator, nonce, &h), FL_EINVAL);
  assert_int_equal(fl_header_make(FL_HDR_CONFIG, "", creator, nonce, &h), FL_EINVAL);
  assert_int_equal(fl_header_make(FL_HDR_CONFIG, "c", FL_BUF(NULL, 0), nonce, &h), FL_EINVAL);
  assert_string_equal(fl_header_type_name(FL_HDR_CONFIG), "CONFIG");
  assert_string_equal(fl_header_type_name((fl_header_type_t)99), "UNKNOWN");
}

/* --------------------------------------------------------------- envelopes */

static void test_envelope_roundtrip(void **state) {
  (void)state;
  fl_sbuf_t env = {0};
  char txid[65];
  build_env(&W.client, "model-update-payload", &env, txid);
  fl_envelope_t *e = NULL;
  const char *why = NULL;
  assert_int_equal(fl_envelope_decode(env.data, env.len, &e, &why), FL_OK);
  assert_int_equal(e->header.type, FL_HDR_ENDORSER_TX);
  assert_string_equal(e->header.channel, "fedchannel");
  assert_string_equal(e->header.tx_id, txid);
  assert_int_equal(e->header.nonce.len, FL_NONCE_LEN);
  assert_true(fl_buf_eq(e->header.creator, fl_sbuf_view(&W.client.sid)));
  assert_true(fl_buf_eq(e->data, FL_BUF_STR("model-update-payload")));
  fl_msp_info_t info;
  assert_int_equal(fl_envelope_verify_creator(e, W.msp, FL_ROLE_CLIENT, &info), FL_OK);
  assert_string_equal(info.mspid, "Org1MSP");
  assert_int_equal(fl_envelope_verify_creator(e, W.msp, FL_ROLE_NONE, NULL), FL_OK);
  assert_int_equal(fl_envelope_verify_creator(e, W.msp, FL_ROLE_PEER, NULL), FL_EPERM);
  fl_envelope_free(e);

  /* Signed by someone other than the creator: the signature fails. */
  fl_sbuf_t forged = {0};
  assert_int_equal(fl_envelope_build(FL_HDR_CONFIG, "fedchannel", fl_sbuf_view(&W.client.sid),
                                     W.peer0.key, FL_BUF_STR("x"), &forged, NULL), FL_OK);
  assert_int_equal(fl_envelope_decode(forged.data, forged.len, &e, NULL), FL_OK);
  assert_int_equal(e->header.type, FL_HDR_CONFIG);
  assert_int_equal(fl_envelope_verify_creator(e, W.msp, FL_ROLE_NONE, NULL), FL_EBADSIG);
  fl_envelope_free(e);

  /* A creator from an untrusted CA. */
  fl_sbuf_t rogue = {0};
  build_env(&W.rogue, "x", &rogue, NULL);
  assert_int_equal(fl_envelope_decode(rogue.data, rogue.len, &e, NULL), FL_OK);
  assert_int_equal(fl_envelope_verify_creator(e, W.msp, FL_ROLE_NONE, NULL), FL_EUNTRUSTED);
  fl_envelope_free(e);

  /* Builder input errors. */
  fl_sbuf_t out = {0};
  assert_int_equal(fl_envelope_build(FL_HDR_CONFIG, "c", fl_sbuf_view(&W.client.sid), NULL,
                                     FL_BUF_STR("x"), &out, NULL), FL_EINVAL);
  assert_int_equal(fl_envelope_build((fl_header_type_t)7, "c", fl_sbuf_view(&W.client.sid),
                                     W.client.key, FL_BUF_STR("x"), &out, NULL), FL_EINVAL);
  fl_sbuf_free(&out);
  fl_sbuf_free(&rogue);
  fl_sbuf_free(&forged);
  fl_sbuf_free(&env);
}

static void test_envelope_tamper(void **state) {
  (void)state;
  fl_sbuf_t env = {0};
  char txid[65];
  build_env(&W.client, "payload-to-tamper-with", &env, txid);
  fl_envelope_t *e = NULL;
  const char *why = NULL;

  /* A byte of the payload data: still decodes, creator signature fails. */
  long off = find(fl_sbuf_view(&env), "tamper", 6);
  assert_true(off > 0);
  env.data[off] ^= 0x01;
  assert_int_equal(fl_envelope_decode(env.data, env.len, &e, &why), FL_OK);
  assert_int_equal(fl_envelope_verify_creator(e, W.msp, FL_ROLE_NONE, NULL), FL_EBADSIG);
  fl_envelope_free(e);
  env.data[off] ^= 0x01;

  /* A tx id that does not match nonce || creator. */
  off = find(fl_sbuf_view(&env), txid, FL_TXID_HEX_LEN);
  assert_true(off > 0);
  env.data[off] = env.data[off] == '0' ? '1' : '0';
  why = NULL;
  assert_int_equal(fl_envelope_decode(env.data, env.len, &e, &why), FL_EMALFORMED);
  assert_null(e);
  assert_string_equal(why, "envelope: tx id does not match nonce and creator");

  /* A header with a tx id for another creator cannot be built either. */
  uint8_t nonce[FL_NONCE_LEN];
  fl_header_t h;
  assert_int_equal(fl_header_make(FL_HDR_ENDORSER_TX, "c", fl_sbuf_view(&W.client.sid), nonce,
                                  &h), FL_OK);
  h.creator = fl_sbuf_view(&W.peer0.sid);
  fl_sbuf_t out = {0};
  assert_int_equal(fl_envelope_build_with_header(&h, W.peer0.key, FL_BUF_STR("d"), &out),
                   FL_EINVAL);
  fl_sbuf_free(&out);
  fl_sbuf_free(&env);
}

static void test_envelope_truncation(void **state) {
  (void)state;
  fl_sbuf_t env = {0};
  build_env(&W.client, "truncate me", &env, NULL);
  /* Envelope = {payload, signature}: every proper prefix must fail. */
  assert_int_equal(hammer(dec_env, fl_sbuf_view(&env)), 0);
  const char *why = NULL;
  fl_envelope_t *e = NULL;
  assert_int_equal(fl_envelope_decode(NULL, 0, &e, &why), FL_EMALFORMED);
  assert_string_equal(why, "envelope: payload missing");
  fl_sbuf_free(&env);
}

/* fl_envelope_peek_tx_id must never say yes where fl_envelope_decode says
 * no, or give another tx id. *n_yes counts its yes answers. */
static void peek_agrees(const uint8_t *d, size_t n, int *n_yes) {
  char a[FL_TXID_HEX_LEN + 1];
  if (!fl_envelope_peek_tx_id(d, n, a)) return;
  (*n_yes)++;
  fl_envelope_t *e = NULL;
  assert_int_equal(fl_envelope_decode(d, n, &e, NULL), FL_OK);
  assert_string_equal(a, e->header.tx_id);
  fl_envelope_free(e);
}

static void test_envelope_peek_tx_id(void **state) {
  (void)state;
  fl_sbuf_t env = {0}, cfg = {0};
  char txid[65], a[65];
  build_env(&W.client, "peek at me", &env, txid);
  /* What the client library builds: answered, with the envelope's tx id. */
  assert_true(fl_envelope_peek_tx_id(env.data, env.len, a));
  assert_string_equal(a, txid);
  assert_int_equal(fl_envelope_build(FL_HDR_CONFIG, "fedchannel", fl_sbuf_view(&W.client.sid),
                                     W.client.key, FL_BUF_STR("cfg"), &cfg, txid), FL_OK);
  assert_true(fl_envelope_peek_tx_id(cfg.data, cfg.len, a));
  assert_string_equal(a, txid);
  assert_false(fl_envelope_peek_tx_id(NULL, 0, a));
  assert_false(fl_envelope_peek_tx_id(env.data, env.len, NULL));

  /* Every prefix, and every single-bit flip of every byte: never a yes that
   * the decoder refuses or answers differently. A flip in the tx id, nonce or
   * creator must never be answered. */
  int yes = 0;
  for (size_t k = 0; k < env.len; k++) peek_agrees(env.data, k, &yes);
  assert_int_equal(yes, 0);
  int flipped_yes = 0;
  for (size_t k = 0; k < env.len; k++)
    for (int bit = 0; bit < 8; bit++) {
      env.data[k] ^= (uint8_t)(1u << bit);
      peek_agrees(env.data, env.len, &flipped_yes);
      env.data[k] ^= (uint8_t)(1u << bit);
    }
  /* Flips in the signature and payload data leave a decodable envelope with
   * the same tx id (the signature is not the decoder's business): those are
   * answered; the others are not. */
  assert_true(flipped_yes > 0 && (size_t)flipped_yes < env.len * 8);
  char own_id[65];
  build_env(&W.client, "peek at me", &env, own_id);
  long off = find(fl_sbuf_view(&env), own_id, FL_TXID_HEX_LEN);
  assert_true(off > 0);
  uint8_t was = env.data[off];
  env.data[off] = was == '0' ? '1' : '0';
  assert_false(fl_envelope_peek_tx_id(env.data, env.len, a));
  env.data[off] = was;
  assert_true(fl_envelope_peek_tx_id(env.data, env.len, a));

  /* Not canonical, still valid: an unknown field (17, a varint) or a second
   * signature field after the envelope. The decoder takes both (protobuf
   * keeps unknown fields; the last value of a field wins); the scan leaves
   * them to it. */
  fl_sbuf_t odd = {0};
  fl_sbuf_append(&odd, env.data, env.len);
  const uint8_t unknown[] = {0x88, 0x01, 0x05};
  fl_sbuf_append(&odd, unknown, sizeof unknown);
  assert_false(fl_envelope_peek_tx_id(odd.data, odd.len, a));
  fl_envelope_t *e = NULL;
  assert_int_equal(fl_envelope_decode(odd.data, odd.len, &e, NULL), FL_OK);
  assert_string_equal(e->header.tx_id, own_id);
  fl_envelope_free(e);
  odd.len = env.len;
  const uint8_t sig2[] = {0x12, 0x02, 0x30, 0x00};
  fl_sbuf_append(&odd, sig2, sizeof sig2);
  assert_false(fl_envelope_peek_tx_id(odd.data, odd.len, a));
  assert_int_equal(fl_envelope_decode(odd.data, odd.len, &e, NULL), FL_OK);
  fl_envelope_free(e);

  /* Random bytes: never a yes (a random string is no envelope). */
  uint64_t x = 0x9e3779b97f4a7c15u;
  uint8_t rnd[512];
  int ryes = 0;
  for (int i = 0; i < 2000; i++) {
    for (size_t k = 0; k < sizeof rnd; k++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      rnd[k] = (uint8_t)x;
    }
    peek_agrees(rnd, (size_t)(x % sizeof rnd), &ryes);
  }
  assert_int_equal(ryes, 0);
  fl_sbuf_free(&odd);
  fl_sbuf_free(&cfg);
  fl_sbuf_free(&env);
}

/* ------------------------------------------------------------------ blocks */

static fl_block_t *make_block(uint64_t num, const uint8_t *prev, size_t nenv,
                              fl_sbuf_t *envs) {
  fl_buf_t views[8];
  assert_true(nenv <= 8);
  for (size_t i = 0; i < nenv; i++) {
    char data[64];
    snprintf(data, sizeof data, "block %llu envelope %zu", (unsigned long long)num, i);
    build_env(&W.client, data, &envs[i], NULL);
    views[i] = fl_sbuf_view(&envs[i]);
  }
  fl_block_t *b = NULL;
  assert_int_equal(fl_block_build(num, prev, views, nenv, &b), FL_OK);
  return b;
}

static void free_envs(fl_sbuf_t *envs, size_t n) {
  for (size_t i = 0; i < n; i++) fl_sbuf_free(&envs[i]);
}

static void test_block_roundtrip(void **state) {
  (void)state;
  uint8_t prev[FL_SHA256_LEN];
  memset(prev, 0xab, sizeof prev);
  fl_sbuf_t envs[3] = {{0}};
  fl_block_t *b = make_block(7, prev, 3, envs);
  assert_int_equal(b->number, 7);
  assert_int_equal(b->n_envelopes, 3);
  assert_int_equal(b->previous_hash_len, 32);
  assert_memory_equal(b->previous_hash, prev, 32);

  /* Data hash rule, computed independently. */
  fl_sbuf_t cat = {0};
  for (int i = 0; i < 3; i++) {
    fl_sbuf_append_be32(&cat, (uint32_t)envs[i].len);
    fl_sbuf_append(&cat, envs[i].data, envs[i].len);
  }
  uint8_t dh[FL_SHA256_LEN];
  fl_sha256(cat.data, cat.len, dh);
  assert_memory_equal(b->data_hash, dh, 32);
  fl_sbuf_free(&cat);
  /* Header hash = SHA-256(header bytes). */
  uint8_t hh[FL_SHA256_LEN];
  fl_sha256(b->header.data, b->header.len, hh);
  assert_memory_equal(b->header_hash, hh, 32);

  for (int i = 0; i < 3; i++) assert_int_equal(fl_block_sign(b, (uint32_t)i, W.orderer[i].key), FL_OK);
  fl_block_set_metadata(b, 2, 41, 1700000000123ull);
  uint8_t codes[3] = {0, 9, 3};
  assert_int_equal(fl_block_set_validation_codes(b, codes, 3), FL_OK);
  assert_int_equal(fl_block_set_validation_codes(b, codes, 2), FL_EINVAL);

  fl_sbuf_t enc = {0};
  assert_int_equal(fl_block_encode(b, &enc), FL_OK);
  fl_block_t *d = NULL;
  const char *why = NULL;
  assert_int_equal(fl_block_decode(enc.data, enc.len, &d, &why), FL_OK);
  assert_int_equal(d->number, 7);
  assert_true(fl_buf_eq(d->header, b->header));
  assert_memory_equal(d->header_hash, b->header_hash, 32);
  assert_memory_equal(d->data_hash, b->data_hash, 32);
  assert_memory_equal(d->previous_hash, prev, 32);
  assert_int_equal(d->n_envelopes, 3);
  for (int i = 0; i < 3; i++) assert_true(fl_buf_eq(d->envelopes[i], fl_sbuf_view(&envs[i])));
  assert_int_equal(d->n_sigs, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(d->sigs[i].replica, (uint32_t)i);
    assert_memory_equal(d->sigs[i].sig, b->sigs[i].sig, b->sigs[i].len);
  }
  assert_int_equal(d->view, 2);
  assert_int_equal(d->seq, 41);
  assert_int_equal(d->timestamp_ms, 1700000000123ull);
  assert_int_equal(d->n_validation_codes, 3);
  assert_memory_equal(d->validation_codes, codes, 3);
  assert_int_equal(fl_block_verify_signatures(d, W.verifiers, N_ORDERERS, F, NULL, NULL, &why),
                   FL_OK);

  /* Re-encoding the decoded block gives the same bytes. */
  fl_sbuf_t enc2 = {0};
  assert_int_equal(fl_block_encode(d, &enc2), FL_OK);
  assert_true(fl_buf_eq(fl_sbuf_view(&enc), fl_sbuf_view(&enc2)));

  /* Validation codes are metadata: changing them keeps signatures valid. */
  uint8_t codes2[3] = {255, 0, 0};
  assert_int_equal(fl_block_set_validation_codes(d, codes2, 3), FL_OK);
  assert_int_equal(fl_block_encode(d, &enc2), FL_OK);
  fl_block_t *d2 = NULL;
  assert_int_equal(fl_block_decode(enc2.data, enc2.len, &d2, NULL), FL_OK);
  assert_int_equal(d2->validation_codes[0], 255);
  assert_int_equal(fl_block_verify_signatures(d2, W.verifiers, N_ORDERERS, F, NULL, NULL, NULL),
                   FL_OK);
  fl_block_free(d2);

  /* Empty block and block 0 rules. */
  fl_block_t *e0 = NULL;
  assert_int_equal(fl_block_build(5, prev, NULL, 0, &e0), FL_OK);
  assert_int_equal(e0->n_envelopes, 0);
  assert_int_equal(fl_block_encode(e0, &enc2), FL_OK);
  fl_block_free(e0);
  assert_int_equal(fl_block_decode(enc2.data, enc2.len, &e0, NULL), FL_OK);
  assert_int_equal(e0->n_envelopes, 0);
  fl_block_free(e0);
  assert_int_equal(fl_block_build(0, prev, NULL, 0, &e0), FL_EINVAL);
  assert_int_equal(fl_block_build(3, NULL, NULL, 0, &e0), FL_EINVAL);
  assert_null(e0);

  fl_sbuf_free(&enc2);
  fl_sbuf_free(&enc);
  fl_block_free(d);
  fl_block_free(b);
  free_envs(envs, 3);
}

static void test_block_signatures(void **state) {
  (void)state;
  uint8_t prev[FL_SHA256_LEN] = {1};
  fl_sbuf_t envs[2] = {{0}};
  fl_block_t *b = make_block(3, prev, 2, envs);
  fl_status_t st[16];
  size_t nv = 99;
  const char *why = NULL;

  /* No signatures at all. */
  assert_int_equal(fl_block_verify_signatures(b, W.verifiers, N_ORDERERS, F, st, &nv, &why),
                   FL_EBADSIG);
  assert_int_equal(nv, 0);
  assert_non_null(why);

  /* Two valid (< 2f+1 = 3). */
  assert_int_equal(fl_block_sign(b, 0, W.orderer[0].key), FL_OK);
  assert_int_equal(fl_block_sign(b, 1, W.orderer[1].key), FL_OK);
  assert_int_equal(fl_block_verify_signatures(b, W.verifiers, N_ORDERERS, F, st, &nv, NULL),
                   FL_EBADSIG);
  assert_int_equal(nv, 2);

  /* A duplicate of replica 1 counts once. */
  assert_int_equal(fl_block_sign(b, 1, W.orderer[1].key), FL_OK);
  assert_int_equal(fl_block_verify_signatures(b, W.verifiers, N_ORDERERS, F, st, &nv, NULL),
                   FL_EBADSIG);
  assert_int_equal(nv, 2);
  assert_int_equal(st[2], FL_EEXIST);

  /* Replica 3's slot signed by a key that is not orderer 3's. */
  assert_int_equal(fl_block_sign(b, 3, W.rogue.key), FL_OK);
  /* Replica 2's slot signed by a peer key. */
  assert_int_equal(fl_block_sign(b, 2, W.peer0.key), FL_OK);
  /* A replica id beyond the configured orderers. */
  assert_int_equal(fl_block_sign(b, 9, W.orderer[2].key), FL_OK);
  assert_int_equal(fl_block_verify_signatures(b, W.verifiers, N_ORDERERS, F, st, &nv, NULL),
                   FL_EBADSIG);
  assert_int_equal(nv, 2);
  assert_int_equal(st[0], FL_OK);
  assert_int_equal(st[1], FL_OK);
  assert_int_equal(st[3], FL_EBADSIG);
  assert_int_equal(st[4], FL_EBADSIG);
  assert_int_equal(st[5], FL_EUNTRUSTED);

  /* Orderer 3's real signature completes the quorum. */
  assert_int_equal(fl_block_sign(b, 3, W.orderer[3].key), FL_OK);
  assert_int_equal(fl_block_verify_signatures(b, W.verifiers, N_ORDERERS, F, st, &nv, NULL),
                   FL_OK);
  assert_int_equal(nv, 3);
  assert_int_equal(st[6], FL_OK);

  /* A NULL verifier is an unknown replica. */
  const fl_verifier_t *partial[N_ORDERERS] = {W.verifiers[0], W.verifiers[1], NULL,
                                              W.verifiers[3]};
  assert_int_equal(fl_block_verify_signatures(b, partial, N_ORDERERS, F, st, &nv, NULL), FL_OK);
  assert_int_equal(st[4], FL_EUNTRUSTED);
  /* Too few orderers for f. */
  assert_int_equal(fl_block_verify_signatures(b, W.verifiers, 2, F, NULL, NULL, NULL), FL_EINVAL);

  /* Four valid signatures: without sig_status the check stops at the
   * 2f+1-th (what a peer needs); with it every one is checked. */
  fl_sbuf_t envs4[1] = {{0}};
  fl_block_t *b4 = make_block(4, prev, 1, envs4);
  for (uint32_t r = 0; r < N_ORDERERS; r++)
    assert_int_equal(fl_block_sign(b4, r, W.orderer[r].key), FL_OK);
  assert_int_equal(fl_block_verify_signatures(b4, W.verifiers, N_ORDERERS, F, NULL, &nv, NULL),
                   FL_OK);
  assert_int_equal(nv, 2 * F + 1);
  assert_int_equal(fl_block_verify_signatures(b4, W.verifiers, N_ORDERERS, F, st, &nv, NULL),
                   FL_OK);
  assert_int_equal(nv, N_ORDERERS);
  fl_block_free(b4);
  free_envs(envs4, 1);

  /* Flip a byte of the header bytes (inside previous_hash): the block still
   * decodes (data hash intact) but every signature fails. */
  fl_sbuf_t enc = {0};
  assert_int_equal(fl_block_encode(b, &enc), FL_OK);
  long off = find(fl_sbuf_view(&enc), b->previous_hash, FL_SHA256_LEN);
  assert_true(off > 0);
  enc.data[off + 5] ^= 0x40;
  fl_block_t *d = NULL;
  assert_int_equal(fl_block_decode(enc.data, enc.len, &d, NULL), FL_OK);
  assert_int_equal(fl_block_verify_signatures(d, W.verifiers, N_ORDERERS, F, st, &nv, NULL),
                   FL_EBADSIG);
  assert_int_equal(nv, 0);
  fl_block_free(d);
  enc.data[off + 5] ^= 0x40;

  /* Flip a byte of an envelope: data hash mismatch. */
  off = find(fl_sbuf_view(&enc), envs[1].data, envs[1].len);
  assert_true(off > 0);
  enc.data[off + envs[1].len / 2] ^= 0x01;
  why = NULL;
  assert_int_equal(fl_block_decode(enc.data, enc.len, &d, &why), FL_ECORRUPT);
  assert_null(d);
  assert_string_equal(why, "block: data hash does not match the envelopes");

  /* Bad signature sizes are refused when adding. */
  uint8_t big[FL_SIG_MAX_LEN + 1] = {0};
  assert_int_equal(fl_block_add_signature(b, 0, big, sizeof big), FL_EINVAL);
  assert_int_equal(fl_block_add_signature(b, 0, big, 0), FL_EINVAL);

  fl_sbuf_free(&enc);
  fl_block_free(b);
  free_envs(envs, 2);
}

static void test_block_chain(void **state) {
  (void)state;
  fl_sbuf_t e0[1] = {{0}}, e1[2] = {{0}}, e2[1] = {{0}};
  fl_block_t *b0 = make_block(0, NULL, 1, e0);
  assert_int_equal(b0->previous_hash_len, 0);
  fl_block_t *b1 = make_block(1, b0->header_hash, 2, e1);
  fl_block_t *b2 = make_block(2, b1->header_hash, 1, e2);
  const char *why = NULL;
  assert_int_equal(fl_block_check_chain(b0, b1, &why), FL_OK);
  assert_int_equal(fl_block_check_chain(b1, b2, &why), FL_OK);
  assert_int_equal(fl_block_check_link(1, b1->header_hash, b2, NULL), FL_OK);
  assert_int_equal(fl_block_check_chain(b0, b2, &why), FL_ECORRUPT);
  assert_string_equal(why, "block: number is not previous + 1");
  /* Right number, wrong hash: b2 built on a different block 1. */
  uint8_t other[FL_SHA256_LEN] = {7};
  fl_sbuf_t e3[1] = {{0}};
  fl_block_t *b2x = make_block(2, other, 1, e3);
  assert_int_equal(fl_block_check_chain(b1, b2x, &why), FL_ECORRUPT);
  assert_string_equal(why, "block: previous hash does not match the previous header");
  /* A block survives encode/decode with its link intact. */
  fl_sbuf_t enc = {0};
  assert_int_equal(fl_block_encode(b1, &enc), FL_OK);
  fl_block_t *d1 = NULL;
  assert_int_equal(fl_block_decode(enc.data, enc.len, &d1, NULL), FL_OK);
  assert_int_equal(fl_block_check_chain(d1, b2, NULL), FL_OK);
  assert_int_equal(fl_block_check_chain(b0, d1, NULL), FL_OK);
  fl_block_free(d1);
  fl_sbuf_free(&enc);
  fl_block_free(b2x);
  fl_block_free(b2);
  fl_block_free(b1);
  fl_block_free(b0);
  free_envs(e0, 1);
  free_envs(e1, 2);
  free_envs(e2, 1);
  free_envs(e3, 1);
}

static void test_block_truncation(void **state) {
  (void)state;
  uint8_t prev[FL_SHA256_LEN] = {9};
  fl_sbuf_t envs[2] = {{0}};
  fl_block_t *b = make_block(4, prev, 2, envs);
  for (int i = 0; i < 3; i++) assert_int_equal(fl_block_sign(b, (uint32_t)i, W.orderer[i].key), FL_OK);
  uint8_t codes[2] = {0, 0};
  assert_int_equal(fl_block_set_validation_codes(b, codes, 2), FL_OK);
  fl_sbuf_t enc = {0};
  assert_int_equal(fl_block_encode(b, &enc), FL_OK);
  /* Block = {header, data, metadata}: only the prefix that ends exactly
   * before the metadata field decodes (as an unsigned block). */
  assert_true(hammer(dec_block, fl_sbuf_view(&enc)) <= 1);
  /* Hand-made oddities. */
  const char *why = NULL;
  fl_block_t *d = NULL;
  assert_int_equal(fl_block_decode(NULL, 0, &d, &why), FL_EMALFORMED);
  assert_string_equal(why, "block: header missing");
  const uint8_t hdr_garbage[] = {0x0a, 0x02, 0xff, 0xff}; /* header = 2 bad bytes */
  assert_int_equal(fl_block_decode(hdr_garbage, sizeof hdr_garbage, &d, &why), FL_EMALFORMED);
  assert_string_equal(why, "block: header bytes do not decode");
  fl_sbuf_free(&enc);
  fl_block_free(b);
  free_envs(envs, 2);
}

/* --------------------------------------------------------------- proposals */

static const char *const ARGS[] = {"SubmitUpdate", "task-1", "round-3"};

static void build_proposal(fl_sbuf_t *out, char *txid) {
  fl_buf_t args[3];
  for (int i = 0; i < 3; i++) args[i] = FL_BUF_STR(ARGS[i]);
  fl_buf_t blobs[1] = {FL_BUF_STR("WEIGHTS-BLOB-0123456789")};
  fl_proposal_spec_t spec = {.channel = "fedchannel",
                             .creator = fl_sbuf_view(&W.client.sid),
                             .chaincode = "mlupdate",
                             .args = args, .n_args = 3,
                             .blobs = blobs, .n_blobs = 1,
                             .transient = FL_BUF_STR("secret")};
  assert_int_equal(fl_proposal_build(&spec, W.client.key, out, txid), FL_OK);
}

static void test_proposal_roundtrip(void **state) {
  (void)state;
  fl_sbuf_t sp = {0};
  char txid[65];
  build_proposal(&sp, txid);
  fl_proposal_t *p = NULL;
  const char *why = NULL;
  assert_int_equal(fl_signed_proposal_decode(sp.data, sp.len, &p, &why), FL_OK);
  assert_string_equal(p->header.tx_id, txid);
  assert_int_equal(p->header.type, FL_HDR_ENDORSER_TX);
  assert_string_equal(p->header.channel, "fedchannel");
  assert_string_equal(p->chaincode, "mlupdate");
  assert_int_equal(p->n_args, 3);
  for (int i = 0; i < 3; i++) assert_true(fl_buf_eq(p->args[i], FL_BUF_STR(ARGS[i])));
  assert_int_equal(p->n_blobs, 1);
  assert_true(fl_buf_eq(p->blobs[0], FL_BUF_STR("WEIGHTS-BLOB-0123456789")));
  assert_true(fl_buf_eq(p->transient, FL_BUF_STR("secret")));
  uint8_t h[FL_SHA256_LEN];
  fl_sha256(p->proposal_bytes.data, p->proposal_bytes.len, h);
  assert_memory_equal(p->proposal_hash, h, 32);
  assert_int_equal(fl_proposal_verify_creator(p, W.msp, FL_ROLE_CLIENT, NULL), FL_OK);
  assert_int_equal(fl_proposal_verify_creator(p, W.msp, FL_ROLE_ADMIN, NULL), FL_EPERM);
  fl_proposal_free(p);

  /* Tamper with an argument: signature fails. */
  long off = find(fl_sbuf_view(&sp), "WEIGHTS", 7);
  assert_true(off > 0);
  sp.data[off] ^= 0x20;
  assert_int_equal(fl_signed_proposal_decode(sp.data, sp.len, &p, NULL), FL_OK);
  assert_int_equal(fl_proposal_verify_creator(p, W.msp, FL_ROLE_NONE, NULL), FL_EBADSIG);
  fl_proposal_free(p);
  sp.data[off] ^= 0x20;

  /* Tamper with the tx id. */
  off = find(fl_sbuf_view(&sp), txid, 64);
  assert_true(off > 0);
  sp.data[off + 10] = sp.data[off + 10] == 'a' ? 'b' : 'a';
  assert_int_equal(fl_signed_proposal_decode(sp.data, sp.len, &p, &why), FL_EMALFORMED);
  assert_string_equal(why, "proposal: tx id does not match nonce and creator");

  /* Spec errors. */
  fl_sbuf_t out = {0};
  fl_proposal_spec_t bad = {.channel = "c", .creator = fl_sbuf_view(&W.client.sid),
                            .chaincode = "mlupdate"};
  assert_int_equal(fl_proposal_build(&bad, W.client.key, &out, NULL), FL_EINVAL); /* no args */
  fl_buf_t a = FL_BUF_STR("f");
  bad.args = &a;
  bad.n_args = 1;
  bad.chaincode = "";
  assert_int_equal(fl_proposal_build(&bad, W.client.key, &out, NULL), FL_EINVAL);
  fl_sbuf_free(&out);
  fl_sbuf_free(&sp);
}

static void test_proposal_truncation(void **state) {
  (void)state;
  fl_sbuf_t sp = {0};
  build_proposal(&sp, NULL);
  assert_int_equal(hammer(dec_sprop, fl_sbuf_view(&sp)), 0);
  fl_sbuf_free(&sp);
}

/* ----------------------------------------------------- rwsets and payloads */

static void encode_rwset(fl_sbuf_t *out, const char *value) {
  fl_kv_read_t reads[2] = {{.key = "task/t1", .has_version = true, .version = {5, 2}},
                           {.key = "update/t1/3/client1"}};
  fl_kv_write_t writes[2] = {{.key = "update/t1/3/client1", .value = FL_BUF_STR(value)},
                             {.key = "tmp/x", .is_delete = true}};
  fl_kv_read_t rr_reads[1] = {{.key = "update/t1/3/a", .has_version = true,
                               .version = {9, 0}}};
  fl_range_read_t rr[1] = {{.start_key = "update/t1/3/", .end_key = "update/t1/3/~",
                            .reads = rr_reads, .n_reads = 1, .exhausted = true}};
  fl_buf_t blobs[1] = {FL_BUF_STR("0123456789abcdef0123456789abcdef")};
  fl_rwset_t rw = {.ns = "mlupdate", .reads = reads, .n_reads = 2, .writes = writes,
                   .n_writes = 2, .range_reads = rr, .n_range_reads = 1, .blobs = blobs,
                   .n_blobs = 1};
  assert_int_equal(fl_rwset_encode(&rw, out), FL_OK);
}

static void test_rwset(void **state) {
  (void)state;
  fl_sbuf_t enc = {0};
  encode_rwset(&enc, "ACCEPTED");
  fl_rwset_t *rw = NULL;
  const char *why = NULL;
  assert_int_equal(fl_rwset_decode(enc.data, enc.len, &rw, &why), FL_OK);
  assert_string_equal(rw->ns, "mlupdate");
  assert_int_equal(rw->n_reads, 2);
  assert_string_equal(rw->reads[0].key, "task/t1");
  assert_true(rw->reads[0].has_version);
  assert_int_equal(rw->reads[0].version.block_num, 5);
  assert_int_equal(rw->reads[0].version.tx_num, 2);
  assert_false(rw->reads[1].has_version);
  assert_int_equal(rw->n_writes, 2);
  assert_true(fl_buf_eq(rw->writes[0].value, FL_BUF_STR("ACCEPTED")));
  assert_false(rw->writes[0].is_delete);
  assert_true(rw->writes[1].is_delete);
  assert_int_equal(rw->n_range_reads, 1);
  assert_string_equal(rw->range_reads[0].start_key, "update/t1/3/");
  assert_string_equal(rw->range_reads[0].end_key, "update/t1/3/~");
  assert_true(rw->range_reads[0].exhausted);
  assert_int_equal(rw->range_reads[0].n_reads, 1);
  assert_int_equal(rw->range_reads[0].reads[0].version.block_num, 9);
  assert_int_equal(rw->n_blobs, 1);
  assert_int_equal(rw->blobs[0].len, 32);
  /* Re-encode a decoded set: identical bytes. */
  fl_sbuf_t enc2 = {0};
  assert_int_equal(fl_rwset_encode(rw, &enc2), FL_OK);
  assert_true(fl_buf_eq(fl_sbuf_view(&enc), fl_sbuf_view(&enc2)));
  fl_rwset_free(rw);

  /* Encoder refuses empty keys and namespaces; decoder refuses them too. */
  fl_kv_read_t r0 = {.key = ""};
  fl_rwset_t bad = {.ns = "cc", .reads = &r0, .n_reads = 1};
  assert_int_equal(fl_rwset_encode(&bad, &enc2), FL_EINVAL);
  bad.ns = "";
  bad.n_reads = 0;
  assert_int_equal(fl_rwset_encode(&bad, &enc2), FL_EINVAL);
  assert_int_equal(fl_rwset_decode(NULL, 0, &rw, &why), FL_EMALFORMED);
  assert_string_equal(why, "rwset: namespace missing");

  hammer(dec_rwset, fl_sbuf_view(&enc));
  fl_sbuf_free(&enc2);
  fl_sbuf_free(&enc);
}

static void make_payload(const fl_proposal_t *p, const char *value, fl_sbuf_t *out) {
  fl_sbuf_t rw = {0};
  encode_rwset(&rw, value);
  fl_resp_payload_t rp = {.results = fl_sbuf_view(&rw), .has_event = true,
                          .event = {.chaincode = "mlupdate", .tx_id = p->header.tx_id,
                                    .name = "UpdateSubmitted", .payload = FL_BUF_STR("ev")},
                          .response = {.status = 200, .message = "ok",
                                       .payload = FL_BUF_STR("resp")},
                          .chaincode_version = "1.0"};
  memcpy(rp.proposal_hash, p->proposal_hash, FL_SHA256_LEN);
  assert_int_equal(fl_resp_payload_encode(&rp, out), FL_OK);
  fl_sbuf_free(&rw);
}

static void test_resp_payload(void **state) {
  (void)state;
  fl_sbuf_t sp = {0}, pl = {0};
  build_proposal(&sp, NULL);
  fl_proposal_t *p = NULL;
  assert_int_equal(fl_signed_proposal_decode(sp.data, sp.len, &p, NULL), FL_OK);
  make_payload(p, "ACCEPTED", &pl);
  fl_resp_payload_t *d = NULL;
  assert_int_equal(fl_resp_payload_decode(pl.data, pl.len, &d, NULL), FL_OK);
  assert_memory_equal(d->proposal_hash, p->proposal_hash, 32);
  assert_true(d->has_event);
  assert_string_equal(d->event.name, "UpdateSubmitted");
  assert_string_equal(d->event.tx_id, p->header.tx_id);
  assert_true(fl_buf_eq(d->event.payload, FL_BUF_STR("ev")));
  assert_int_equal(d->response.status, 200);
  assert_string_equal(d->response.message, "ok");
  assert_true(fl_buf_eq(d->response.payload, FL_BUF_STR("resp")));
  assert_string_equal(d->chaincode_version, "1.0");
  fl_rwset_t *rw = NULL;
  assert_int_equal(fl_rwset_decode(d->results.data, d->results.len, &rw, NULL), FL_OK);
  assert_string_equal(rw->ns, "mlupdate");
  fl_rwset_free(rw);
  fl_resp_payload_free(d);

  /* Without an event; a missing response is refused on decode. */
  fl_resp_payload_t rp2 = {.response = {.status = 500, .message = "boom"}};
  assert_int_equal(fl_resp_payload_encode(&rp2, &pl), FL_OK);
  assert_int_equal(fl_resp_payload_decode(pl.data, pl.len, &d, NULL), FL_OK);
  assert_false(d->has_event);
  assert_int_equal(d->response.status, 500);
  assert_string_equal(d->chaincode_version, "");
  fl_resp_payload_free(d);
  make_payload(p, "x", &pl);
  assert_int_equal(hammer(dec_rp, fl_sbuf_view(&pl)) < pl.len, true);

  /* ProposalResponse round trip. */
  fl_sbuf_t sig = {0}, pr = {0};
  assert_int_equal(fl_endorsement_sign(fl_sbuf_view(&pl), fl_sbuf_view(&W.peer0.sid),
                                       W.peer0.key, &sig), FL_OK);
  fl_proposal_response_t r = {.response = {.status = 200, .message = "endorsed"},
                              .payload = fl_sbuf_view(&pl), .has_endorsement = true,
                              .endorsement = {.endorser = fl_sbuf_view(&W.peer0.sid),
                                              .signature = fl_sbuf_view(&sig)}};
  assert_int_equal(fl_proposal_response_encode(&r, &pr), FL_OK);
  fl_proposal_response_t *dr = NULL;
  assert_int_equal(fl_proposal_response_decode(pr.data, pr.len, &dr, NULL), FL_OK);
  assert_int_equal(dr->response.status, 200);
  assert_string_equal(dr->response.message, "endorsed");
  assert_true(fl_buf_eq(dr->payload, fl_sbuf_view(&pl)));
  assert_true(dr->has_endorsement);
  assert_int_equal(fl_endorsement_verify(dr->payload, &dr->endorsement, W.msp, FL_ROLE_PEER,
                                         NULL), FL_OK);
  fl_proposal_response_free(dr);
  hammer(dec_presp, fl_sbuf_view(&pr));
  /* A refusal without an endorsement. */
  fl_proposal_response_t refused = {.response = {.status = 403, .message = "denied"}};
  assert_int_equal(fl_proposal_response_encode(&refused, &pr), FL_OK);
  assert_int_equal(fl_proposal_response_decode(pr.data, pr.len, &dr, NULL), FL_OK);
  assert_false(dr->has_endorsement);
  assert_int_equal(dr->response.status, 403);
  fl_proposal_response_free(dr);

  fl_sbuf_free(&pr);
  fl_sbuf_free(&sig);
  fl_proposal_free(p);
  fl_sbuf_free(&pl);
  fl_sbuf_free(&sp);
}

/* ------------------------------------------------ endorsements, transactions */

static void endorse(const ident_t *peer, fl_buf_t payload, fl_sbuf_t *sig) {
  assert_int_equal(fl_endorsement_sign(payload, fl_sbuf_view(&peer->sid), peer->key, sig), FL_OK);
}

static void test_endorsement(void **state) {
  (void)state;
  fl_buf_t payload = FL_BUF_STR("some response payload bytes");
  fl_sbuf_t sig = {0};
  endorse(&W.peer0, payload, &sig);
  fl_endorsement_t e = {.endorser = fl_sbuf_view(&W.peer0.sid), .signature = fl_sbuf_view(&sig)};
  fl_msp_info_t info;
  assert_int_equal(fl_endorsement_verify(payload, &e, W.msp, FL_ROLE_PEER, &info), FL_OK);
  assert_string_equal(info.mspid, "Org1MSP");
  /* Other payload bytes. */
  assert_int_equal(fl_endorsement_verify(FL_BUF_STR("other"), &e, W.msp, FL_ROLE_PEER, NULL),
                   FL_EBADSIG);
  /* The signature binds the endorser: claim it came from peer1. */
  fl_endorsement_t moved = {.endorser = fl_sbuf_view(&W.peer1.sid), .signature = e.signature};
  assert_int_equal(fl_endorsement_verify(payload, &moved, W.msp, FL_ROLE_PEER, NULL), FL_EBADSIG);
  /* A client cannot endorse where a peer is required. */
  fl_sbuf_t csig = {0};
  endorse(&W.client, payload, &csig);
  fl_endorsement_t ce = {.endorser = fl_sbuf_view(&W.client.sid), .signature = fl_sbuf_view(&csig)};
  assert_int_equal(fl_endorsement_verify(payload, &ce, W.msp, FL_ROLE_PEER, NULL), FL_EPERM);
  fl_endorsement_t nosig = {.endorser = fl_sbuf_view(&W.peer0.sid)};
  assert_int_equal(fl_endorsement_verify(payload, &nosig, W.msp, FL_ROLE_PEER, NULL), FL_EBADSIG);
  fl_sbuf_free(&csig);
  fl_sbuf_free(&sig);
}

static void test_tx_assemble(void **state) {
  (void)state;
  fl_sbuf_t sp = {0}, pl = {0}, pl_other = {0}, s0 = {0}, s1 = {0}, s2 = {0}, env = {0};
  build_proposal(&sp, NULL);
  fl_proposal_t *p = NULL;
  assert_int_equal(fl_signed_proposal_decode(sp.data, sp.len, &p, NULL), FL_OK);
  make_payload(p, "ACCEPTED", &pl);
  make_payload(p, "REJECTED", &pl_other);
  endorse(&W.peer0, fl_sbuf_view(&pl), &s0);
  endorse(&W.org2_peer, fl_sbuf_view(&pl), &s1);
  endorse(&W.peer1, fl_sbuf_view(&pl_other), &s2);
  fl_endorsed_t ends[3] = {
      {.payload = fl_sbuf_view(&pl),
       .endorsement = {.endorser = fl_sbuf_view(&W.peer0.sid), .signature = fl_sbuf_view(&s0)}},
      {.payload = fl_sbuf_view(&pl),
       .endorsement = {.endorser = fl_sbuf_view(&W.org2_peer.sid),
                       .signature = fl_sbuf_view(&s1)}},
      {.payload = fl_sbuf_view(&pl_other),
       .endorsement = {.endorser = fl_sbuf_view(&W.peer1.sid), .signature = fl_sbuf_view(&s2)}},
  };
  const char *why = NULL;
  /* Endorsers disagree: refused. */
  assert_int_equal(fl_tx_assemble(p, ends, 3, W.client.key, &env, &why), FL_ECONFLICT);
  assert_string_equal(why, "transaction: endorsers signed different response payloads");
  assert_int_equal(env.len, 0);
  assert_int_equal(fl_tx_assemble(p, ends, 0, W.client.key, &env, &why), FL_EINVAL);
  /* Only the proposal's creator may wrap it into a transaction. */
  assert_int_equal(fl_tx_assemble(p, ends, 2, W.peer0.key, &env, &why), FL_EPERM);
  assert_string_equal(why, "transaction: signer is not the proposal's creator");

  assert_int_equal(fl_tx_assemble(p, ends, 2, W.client.key, &env, &why), FL_OK);
  fl_envelope_t *e = NULL;
  assert_int_equal(fl_envelope_decode(env.data, env.len, &e, &why), FL_OK);
  assert_int_equal(e->header.type, FL_HDR_ENDORSER_TX);
  assert_string_equal(e->header.tx_id, p->header.tx_id); /* same tx id as the proposal */
  assert_int_equal(fl_envelope_verify_creator(e, W.msp, FL_ROLE_CLIENT, NULL), FL_OK);
  fl_tx_t *tx = NULL;
  assert_int_equal(fl_tx_decode(e, &tx, &why), FL_OK);
  assert_true(fl_buf_eq(tx->proposal->proposal_bytes, p->proposal_bytes));
  assert_true(fl_buf_eq(tx->proposal->signature, p->signature));
  assert_string_equal(tx->proposal->chaincode, "mlupdate");
  assert_true(fl_buf_eq(tx->response_payload, fl_sbuf_view(&pl)));
  assert_memory_equal(tx->payload->proposal_hash, p->proposal_hash, 32);
  assert_int_equal(tx->n_endorsements, 2);
  assert_int_equal(fl_proposal_verify_creator(tx->proposal, W.msp, FL_ROLE_CLIENT, NULL), FL_OK);
  for (size_t i = 0; i < 2; i++)
    assert_int_equal(fl_endorsement_verify(tx->response_payload, &tx->endorsements[i], W.msp,
                                           FL_ROLE_PEER, NULL), FL_OK);
  /* The tx outlives its envelope. */
  fl_envelope_free(e);
  assert_true(fl_buf_eq(tx->endorsements[1].endorser, fl_sbuf_view(&W.org2_peer.sid)));

  /* Every prefix of the Transaction bytes fails cleanly. */
  fl_envelope_t *e2 = NULL;
  assert_int_equal(fl_envelope_decode(env.data, env.len, &e2, NULL), FL_OK);
  assert_int_equal(hammer(dec_tx, e2->data), 0);
  fl_envelope_free(e2);
  fl_tx_free(tx);

  /* A payload for another proposal is refused. */
  fl_sbuf_t sp2 = {0}, pl2 = {0}, s3 = {0};
  build_proposal(&sp2, NULL);
  fl_proposal_t *p2 = NULL;
  assert_int_equal(fl_signed_proposal_decode(sp2.data, sp2.len, &p2, NULL), FL_OK);
  make_payload(p2, "ACCEPTED", &pl2);
  endorse(&W.peer0, fl_sbuf_view(&pl2), &s3);
  fl_endorsed_t wrong = {.payload = fl_sbuf_view(&pl2),
                         .endorsement = {.endorser = fl_sbuf_view(&W.peer0.sid),
                                         .signature = fl_sbuf_view(&s3)}};
  assert_int_equal(fl_tx_assemble(p, &wrong, 1, W.client.key, &env, &why), FL_EMALFORMED);
  assert_string_equal(why, "transaction: response payload is for a different proposal");

  /* A config envelope is not a transaction. */
  fl_sbuf_t cfgenv = {0};
  assert_int_equal(fl_envelope_build(FL_HDR_CONFIG, "c", fl_sbuf_view(&W.client.sid),
                                     W.client.key, FL_BUF_STR("x"), &cfgenv, NULL), FL_OK);
  assert_int_equal(fl_envelope_decode(cfgenv.data, cfgenv.len, &e, NULL), FL_OK);
  assert_int_equal(fl_tx_decode(e, &tx, &why), FL_EINVAL);
  fl_envelope_free(e);

  /* A transaction whose proposal header differs from its envelope header:
   * wrap p's Transaction bytes in a fresh envelope (new nonce/tx id). */
  assert_int_equal(fl_tx_assemble(p, ends, 1, W.client.key, &env, NULL), FL_OK);
  assert_int_equal(fl_envelope_decode(env.data, env.len, &e, NULL), FL_OK);
  fl_sbuf_t rewrapped = {0};
  assert_int_equal(fl_envelope_build(FL_HDR_ENDORSER_TX, "fedchannel",
                                     fl_sbuf_view(&W.client.sid), W.client.key, e->data,
                                     &rewrapped, NULL), FL_OK);
  fl_envelope_free(e);
  assert_int_equal(fl_envelope_decode(rewrapped.data, rewrapped.len, &e, NULL), FL_OK);
  assert_int_equal(fl_tx_decode(e, &tx, &why), FL_EMALFORMED);
  assert_string_equal(why, "transaction: proposal header differs from the envelope header");
  assert_null(tx);
  fl_envelope_free(e);

  fl_sbuf_free(&rewrapped);
  fl_sbuf_free(&cfgenv);
  fl_proposal_free(p2);
  fl_sbuf_free(&s3);
  fl_sbuf_free(&pl2);
  fl_sbuf_free(&sp2);
  fl_proposal_free(p);
  fl_sbuf_t *bufs[] = {&sp, &pl, &pl_other, &s0, &s1, &s2, &env};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) fl_sbuf_free(bufs[i]);
}

/* ----------------------------------------------------------------- genesis */

typedef struct netfix_s {
  fl_buf_t ord_roots[1], org1_roots[1], org2_roots[1], tls[1];
  fl_net_org_t orgs[3];
  fl_net_orderer_t orderers[N_ORDERERS];
  fl_net_peer_t peers[2];
  fl_net_chaincode_t ccs[1];
  fl_net_revoked_t revoked[1];
  char hosts[N_ORDERERS][32];
  fl_netconfig_t cfg;
} netfix_t;

static void make_netconfig(netfix_t *n) {
  memset(n, 0, sizeof *n);
  n->ord_roots[0] = fl_sbuf_view(&W.ord_ca.pem);
  n->org1_roots[0] = fl_sbuf_view(&W.org1_ca.pem);
  n->org2_roots[0] = fl_sbuf_view(&W.org2_ca.pem);
  n->tls[0] = fl_sbuf_view(&W.rogue_ca.pem); /* any CA will do as a TLS root here */
  n->orgs[0] = (fl_net_org_t){.mspid = "OrdererMSP", .name = "example.com",
                              .root_certs = n->ord_roots, .n_root_certs = 1,
                              .tls_root_certs = n->tls, .n_tls_root_certs = 1,
                              .is_orderer_org = true};
  n->orgs[1] = (fl_net_org_t){.mspid = "Org1MSP", .name = "org1.example.com",
                              .root_certs = n->org1_roots, .n_root_certs = 1};
  n->orgs[2] = (fl_net_org_t){.mspid = "Org2MSP", .name = "org2.example.com",
                              .root_certs = n->org2_roots, .n_root_certs = 1};
  for (int i = 0; i < N_ORDERERS; i++) {
    snprintf(n->hosts[i], sizeof n->hosts[i], "orderer%d.example.com", i);
    /* listed in reverse order: ids, not positions, are replica ids */
    n->orderers[N_ORDERERS - 1 - i] =
        (fl_net_orderer_t){.id = (uint32_t)i, .mspid = "OrdererMSP", .host = n->hosts[i],
                           .port = (uint32_t)(7050 + i),
                           .identity_cert = fl_sbuf_view(&W.orderer[i].pem)};
  }
  n->peers[0] = (fl_net_peer_t){.mspid = "Org1MSP", .name = "peer0.org1.example.com",
                                .host = "127.0.0.1", .port = 7051, .events_port = 7053};
  n->peers[1] = (fl_net_peer_t){.mspid = "Org2MSP", .name = "peer0.org2.example.com",
                                .host = "127.0.0.1", .port = 8051};
  n->ccs[0] = (fl_net_chaincode_t){.name = "mlupdate", .version = "1.0",
                                   .policy = "AND('Org1MSP.peer','Org2MSP.peer')",
                                   .library = "libmlupdate.so"};
  memset(n->ccs[0].sha256, 0x5a, FL_SHA256_LEN);
  n->revoked[0] = (fl_net_revoked_t){.mspid = "Org1MSP", .reason = "key compromise",
                                     .revoked_at_ms = 1700000000000ull};
  memcpy(n->revoked[0].cert_sha256, fl_cert_sha256(W.peer1.cert), FL_SHA256_LEN);
  n->cfg = (fl_netconfig_t){
      .channel = "fedchannel", .orgs = n->orgs, .n_orgs = 3, .orderers = n->orderers,
      .n_orderers = N_ORDERERS, .peers = n->peers, .n_peers = 2,
      .pbft = {.n = N_ORDERERS, .f = F, .batch_max_count = 100, .batch_max_bytes = 1 << 20,
               .batch_timeout_ms = 200, .checkpoint_interval = 10, .watermark_window = 40,
               .view_change_timeout_ms = 2000},
      .endorsement_policy = "MAJORITY", .chaincodes = n->ccs, .n_chaincodes = 1,
      .revoked = n->revoked, .n_revoked = 1,
      .max_message_bytes = FL_NETCONFIG_DEFAULT_MESSAGE_BYTES,
      .created_ms = (uint64_t)time(NULL) * 1000};
}

static void test_genesis_roundtrip(void **state) {
  (void)state;
  netfix_t n;
  make_netconfig(&n);
  fl_block_t *g = NULL;
  const char *why = NULL;
  assert_int_equal(fl_genesis_build(&n.cfg, fl_sbuf_view(&W.ord_admin.sid), W.ord_admin.key,
                                     &g, &why), FL_OK);
  assert_int_equal(g->number, 0);
  assert_int_equal(g->previous_hash_len, 0);
  assert_int_equal(g->n_envelopes, 1);
  assert_int_equal(g->n_sigs, 0);
  fl_sbuf_t enc = {0};
  assert_int_equal(fl_block_encode(g, &enc), FL_OK);
  fl_block_t *d = NULL;
  assert_int_equal(fl_block_decode(enc.data, enc.len, &d, &why), FL_OK);
  fl_netconfig_t *c = NULL;
  assert_int_equal(fl_genesis_decode(d, &c, &why), FL_OK);
  assert_string_equal(c->channel, "fedchannel");
  assert_int_equal(c->n_orgs, 3);
  assert_string_equal(c->orgs[0].mspid, "OrdererMSP");
  assert_string_equal(c->orgs[0].name, "example.com");
  assert_true(c->orgs[0].is_orderer_org);
  assert_false(c->orgs[1].is_orderer_org);
  assert_int_equal(c->orgs[0].n_root_certs, 1);
  assert_true(fl_buf_eq(c->orgs[0].root_certs[0], fl_sbuf_view(&W.ord_ca.pem)));
  assert_int_equal(c->orgs[0].n_tls_root_certs, 1);
  assert_int_equal(c->orgs[1].n_tls_root_certs, 0);
  assert_int_equal(c->n_orderers, N_ORDERERS);
  for (uint32_t i = 0; i < N_ORDERERS; i++) {
    const fl_net_orderer_t *o = fl_netconfig_orderer(c, i);
    assert_non_null(o);
    assert_int_equal(o->port, 7050 + i);
    assert_string_equal(o->host, n.hosts[i]);
    assert_true(fl_buf_eq(o->identity_cert, fl_sbuf_view(&W.orderer[i].pem)));
  }
  assert_null(fl_netconfig_orderer(c, N_ORDERERS));
  assert_int_equal(c->n_peers, 2);
  assert_string_equal(c->peers[0].name, "peer0.org1.example.com");
  assert_int_equal(c->peers[0].events_port, 7053);
  assert_int_equal(c->pbft.n, N_ORDERERS);
  assert_int_equal(c->pbft.f, F);
  assert_int_equal(c->pbft.batch_max_count, 100);
  assert_int_equal(c->pbft.batch_max_bytes, 1 << 20);
  assert_int_equal(c->pbft.batch_timeout_ms, 200);
  assert_int_equal(c->pbft.checkpoint_interval, 10);
  assert_int_equal(c->pbft.watermark_window, 40);
  assert_int_equal(c->pbft.view_change_timeout_ms, 2000);
  assert_string_equal(c->endorsement_policy, "MAJORITY");
  assert_int_equal(c->n_chaincodes, 1);
  assert_string_equal(c->chaincodes[0].name, "mlupdate");
  assert_string_equal(c->chaincodes[0].version, "1.0");
  assert_string_equal(c->chaincodes[0].policy, "AND('Org1MSP.peer','Org2MSP.peer')");
  assert_string_equal(c->chaincodes[0].library, "libmlupdate.so");
  assert_memory_equal(c->chaincodes[0].sha256, n.ccs[0].sha256, 32);
  assert_int_equal(c->n_revoked, 1);
  assert_string_equal(c->revoked[0].reason, "key compromise");
  assert_int_equal(c->revoked[0].revoked_at_ms, 1700000000000ull);
  assert_memory_equal(c->revoked[0].cert_sha256, fl_cert_sha256(W.peer1.cert), 32);
  assert_int_equal(c->max_message_bytes, FL_NETCONFIG_DEFAULT_MESSAGE_BYTES);
  assert_int_equal(c->created_ms, n.cfg.created_ms);

  /* The MSP the configuration describes: members valid, revoked refused. */
  fl_msp_t *msp = NULL;
  assert_int_equal(fl_netconfig_msp_new(c, &msp, &why), FL_OK);
  assert_int_equal(fl_msp_validate(msp, "OrdererMSP", W.orderer[2].pem.data,
                                   W.orderer[2].pem.len, FL_ROLE_ORDERER, NULL), FL_OK);
  assert_int_equal(fl_msp_validate(msp, "Org1MSP", W.peer0.pem.data, W.peer0.pem.len,
                                   FL_ROLE_PEER, NULL), FL_OK);
  assert_int_equal(fl_msp_validate(msp, "Org1MSP", W.peer1.pem.data, W.peer1.pem.len,
                                   FL_ROLE_PEER, NULL), FL_EREVOKED);
  fl_msp_free(msp);

  /* Re-encoding the decoded configuration gives a config that decodes equal. */
  fl_sbuf_t cb = {0};
  assert_int_equal(fl_netconfig_encode(c, &cb, &why), FL_OK);
  hammer(dec_netconfig, fl_sbuf_view(&cb));
  fl_sbuf_free(&cb);
  fl_netconfig_free(c);

  /* Genesis carries no orderer signatures: quorum verification fails. */
  assert_int_equal(fl_block_verify_signatures(d, W.verifiers, N_ORDERERS, F, NULL, NULL, NULL),
                   FL_EBADSIG);
  fl_block_free(d);
  fl_block_free(g);
  fl_sbuf_free(&enc);
}

static void test_genesis_refusals(void **state) {
  (void)state;
  netfix_t n;
  make_netconfig(&n);
  fl_block_t *g = NULL;
  const char *why = NULL;
  /* An orderer (not an admin) cannot create the genesis block. */
  assert_int_equal(fl_genesis_build(&n.cfg, fl_sbuf_view(&W.orderer[0].sid), W.orderer[0].key,
                                    &g, &why), FL_EPERM);
  assert_string_equal(why, "genesis: creator is not an admin");
  /* An admin of a peer organisation cannot either. */
  assert_int_equal(fl_genesis_build(&n.cfg, fl_sbuf_view(&W.org1_admin.sid), W.org1_admin.key,
                                    &g, &why), FL_EPERM);
  assert_string_equal(why, "genesis: creator is not in an orderer organization");
  /* Creator claims the orderer admin, signed by another key. */
  assert_int_equal(fl_genesis_build(&n.cfg, fl_sbuf_view(&W.ord_admin.sid), W.orderer[1].key,
                                    &g, &why), FL_EBADSIG);
  assert_null(g);

  /* Configuration rules. */
  netfix_t m;
  make_netconfig(&m);
  m.cfg.pbft.n = 3;
  assert_int_equal(fl_netconfig_validate(&m.cfg, &why), FL_ECONFIG);
  assert_string_equal(why, "config: pbft.n differs from the number of orderers");
  make_netconfig(&m);
  m.cfg.pbft.f = 2;
  assert_int_equal(fl_netconfig_validate(&m.cfg, &why), FL_ECONFIG);
  assert_string_equal(why, "config: pbft needs n >= 3f+1");
  make_netconfig(&m);
  m.orderers[1].id = m.orderers[0].id;
  assert_int_equal(fl_netconfig_validate(&m.cfg, &why), FL_ECONFIG);
  assert_string_equal(why, "config: duplicate orderer id");
  make_netconfig(&m);
  m.orderers[2].mspid = "Org1MSP";
  assert_int_equal(fl_netconfig_validate(&m.cfg, &why), FL_ECONFIG);
  assert_string_equal(why, "config: an orderer belongs to a non-orderer organization");
  make_netconfig(&m);
  m.orgs[2].mspid = "Org1MSP";
  assert_int_equal(fl_netconfig_validate(&m.cfg, &why), FL_ECONFIG);
  assert_string_equal(why, "config: duplicate organization mspid");
  make_netconfig(&m);
  m.cfg.max_message_bytes = 0;
  assert_int_equal(fl_netconfig_validate(&m.cfg, &why), FL_ECONFIG);
  make_netconfig(&m);
  m.peers[0].mspid = "NoSuchMSP";
  assert_int_equal(fl_netconfig_validate(&m.cfg, &why), FL_ECONFIG);
  make_netconfig(&m);
  m.org2_roots[0] = FL_BUF_STR("not a certificate");
  assert_int_equal(fl_netconfig_validate(&m.cfg, &why), FL_OK); /* PEM not parsed here */
  assert_int_not_equal(fl_genesis_build(&m.cfg, fl_sbuf_view(&W.ord_admin.sid),
                                        W.ord_admin.key, &g, &why), FL_OK);
  assert_null(g);

  /* A block that is not a genesis block. */
  assert_int_equal(fl_genesis_build(&n.cfg, fl_sbuf_view(&W.ord_admin.sid), W.ord_admin.key,
                                    &g, &why), FL_OK);
  fl_block_t *b1 = NULL;
  assert_int_equal(fl_block_build(1, g->header_hash, g->envelopes, 1, &b1), FL_OK);
  fl_netconfig_t *c = NULL;
  assert_int_equal(fl_genesis_decode(b1, &c, &why), FL_EMALFORMED);
  assert_string_equal(why, "genesis: not block 0");
  fl_block_free(b1);
  /* Block 0 with an ordinary transaction envelope. */
  fl_sbuf_t env = {0};
  build_env(&W.ord_admin, "x", &env, NULL);
  fl_buf_t v = fl_sbuf_view(&env);
  assert_int_equal(fl_block_build(0, NULL, &v, 1, &b1), FL_OK);
  assert_int_equal(fl_genesis_decode(b1, &c, &why), FL_EMALFORMED);
  assert_string_equal(why, "genesis: envelope is not a CONFIG envelope");
  assert_null(c);
  fl_block_free(b1);
  fl_sbuf_free(&env);
  fl_block_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tx_id),
      cmocka_unit_test(test_envelope_roundtrip),
      cmocka_unit_test(test_envelope_tamper),
      cmocka_unit_test(test_envelope_truncation),
      cmocka_unit_test(test_envelope_peek_tx_id),
      cmocka_unit_test(test_block_roundtrip),
      cmocka_unit_test(test_block_signatures),
      cmocka_unit_test(test_block_chain),
      cmocka_unit_test(test_block_truncation),
      cmocka_unit_test(test_proposal_roundtrip),
      cmocka_unit_test(test_proposal_truncation),
      cmocka_unit_test(test_rwset),
      cmocka_unit_test(test_resp_payload),
      cmocka_unit_test(test_endorsement),
      cmocka_unit_test(test_tx_assemble),
      cmocka_unit_test(test_genesis_roundtrip),
      cmocka_unit_test(test_genesis_refusals),
  };
  return cmocka_run_group_tests_name("protoutil", tests, setup, teardown);
}
