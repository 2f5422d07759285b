/* SPDX-License-Identifier: Apache-2.0
 *
 * test_crypto.c: unit tests of common/crypto: SHA-256 known answers, random
 * bytes, ECDSA sign/verify (every single-byte change rejected, malformed and
 * malleated signatures rejected), PEM round trips, certificate parsing and
 * roles, and MSP validation (trust, revocation, expiry, roles, cache,
 * serialized identities, concurrent use). Material comes from fl_cryptogen
 * in a temporary directory.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/crypto/hash.h"
#include "common/crypto/msp.h"
#include "common/crypto/rand.h"
#include "common/crypto/sign.h"
#include "common/crypto/x509.h"
#include "crypto-config/cryptogen.h"

static char tmpdir[] = "/tmp/fl-test-crypto-XXXXXX";
static char *out_dir;

static void remove_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      char *c = fl_sprintf("%s/%s", path, de->d_name);
      remove_tree(c);
      fl_free(c);
    }
    if (d != NULL) closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

static const char test_yaml[] =
    "orderer_orgs:\n"
    "  - name: Orderer\n    domain: example.com\n    mspid: OrdererMSP\n"
    "    template: {count: 1}\n    admins: {count: 0}\n"
    "peer_orgs:\n"
    "  - name: Org1\n    domain: org1.example.com\n    template: {count: 1}\n"
    "    users: {count: 1}\n"
    "  - name: Org2\n    domain: org2.example.com\n    template: {count: 1}\n"
    "    users: {count: 1}\n";

static int group_setup(void **state) {
  (void)state;
  if (mkdtemp(tmpdir) == NULL) return -1;
  char *cfg = fl_sprintf("%s/crypto-config.yaml", tmpdir);
  FILE *f = fopen(cfg, "w");
  if (f == NULL) return -1;
  fputs(test_yaml, f);
  fclose(f);
  out_dir = fl_sprintf("%s/org", tmpdir);
  fl_cryptogen_opts_t o = {.config_path = cfg, .output_dir = out_dir};
  char *err = NULL;
  fl_cryptogen_result_t r;
  fl_status_t rc = fl_cryptogen_generate(&o, &r, &err);
  if (rc != FL_OK) fprintf(stderr, "cryptogen: %s\n", err);
  fl_free(err);
  fl_free(cfg);
  if (rc == FL_OK && r.identities == 7) return 0;
  remove_tree(tmpdir); /* cmocka skips the teardown when setup fails */
  return -1;
}

static int group_teardown(void **state) {
  (void)state;
  remove_tree(tmpdir);
  fl_free(out_dir);
  return 0;
}

/* Path of a file of an identity: who = "peers/peer0.org1.example.com". */
static char *ipath(const char *org, const char *who, const char *file) {
  bool ord = strcmp(org, "example.com") == 0;
  return fl_sprintf("%s/%s/%s/%s/%s", out_dir, ord ? "ordererOrganizations" : "peerOrganizations",
                    org, who, file);
}

static fl_sbuf_t slurp(const char *path) {
  fl_sbuf_t b = {0};
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) fl_sbuf_append(&b, chunk, n);
  fclose(f);
  return b;
}

static fl_cert_t *load_cert(const char *org, const char *who, const char *file) {
  char *p = ipath(org, who, file);
  fl_cert_t *c = NULL;
  assert_int_equal(fl_cert_load_file(p, &c), FL_OK);
  fl_free(p);
  return c;
}

static fl_signer_t *load_key(const char *org, const char *who, const char *file) {
  char *p = ipath(org, who, file);
  fl_signer_t *s = NULL;
  assert_int_equal(fl_signer_load_file(p, &s), FL_OK);
  fl_free(p);
  return s;
}

/* ---- hashing and randomness ---------------------------------------------- */

static void expect_hex(const uint8_t *d, const char *hex) {
  char got[2 * FL_SHA256_LEN + 1];
  fl_hex_encode(d, FL_SHA256_LEN, got);
  assert_string_equal(got, hex);
}

static void test_sha256_vectors(void **state) {
  (void)state;
  uint8_t d[FL_SHA256_LEN];
  fl_sha256(NULL, 0, d);
  expect_hex(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  fl_sha256("abc", 3, d);
  expect_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  fl_sha256(m448, strlen(m448), d);
  expect_hex(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

  /* One million 'a', fed incrementally in uneven chunks. */
  char a[1000];
  memset(a, 'a', sizeof a);
  fl_sha256_ctx_t ctx;
  assert_int_equal(fl_sha256_init(&ctx), FL_OK);
  size_t left = 1000000, step = 1;
  while (left > 0) {
    size_t n = step < left ? step : left;
    fl_sha256_update(&ctx, a, n);
    left -= n;
    step = step % 900 + 7; /* stays below sizeof a */
  }
  fl_sha256_final(&ctx, d);
  expect_hex(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

  /* incremental == one-shot; abort is safe after final. */
  uint8_t d2[FL_SHA256_LEN];
  assert_int_equal(fl_sha256_init(&ctx), FL_OK);
  fl_sha256_update(&ctx, "a", 1);
  fl_sha256_update(&ctx, "bc", 2);
  fl_sha256_final(&ctx, d2);
  fl_sha256("abc", 3, d);
  assert_memory_equal(d, d2, FL_SHA256_LEN);
  fl_sha256_abort(&ctx);
  assert_int_equal(fl_sha256_init(&ctx), FL_OK);
  fl_sha256_abort(&ctx);
}

static void test_random(void **state) {
  (void)state;
  uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
  assert_int_equal(fl_random_bytes(a, sizeof a), FL_OK);
  assert_int_equal(fl_random_bytes(b, sizeof b), FL_OK);
  assert_memory_not_equal(a, b, sizeof a);
  assert_memory_not_equal(a, zero, sizeof a);
  assert_int_equal(fl_random_bytes(NULL, 0), FL_OK);
}

/* ---- signatures ------------------------------------------------------------ */

static void test_sign_verify_roundtrip(void **state) {
  (void)state;
  fl_signer_t *s = NULL;
  assert_int_equal(fl_signer_generate(&s), FL_OK);
  fl_verifier_t *v = fl_signer_verifier(s);
  const char *msg = "model update round 7, client3@org1";
  fl_sbuf_t sig = {0};
  assert_int_equal(fl_signer_sign(s, msg, strlen(msg), &sig), FL_OK);
  assert_true(sig.len >= 8 && sig.len <= FL_SIG_MAX_LEN);
  assert_int_equal(fl_verify(v, msg, strlen(msg), sig.data, sig.len), FL_OK);

  /* digest variants agree with the message variants both ways */
  uint8_t d[FL_SHA256_LEN];
  fl_sha256(msg, strlen(msg), d);
  assert_int_equal(fl_verify_digest(v, d, sig.data, sig.len), FL_OK);
  fl_sbuf_t sig2 = {0};
  assert_int_equal(fl_signer_sign_digest(s, d, &sig2), FL_OK);
  assert_int_equal(fl_verify(v, msg, strlen(msg), sig2.data, sig2.len), FL_OK);
  /* ECDSA is randomised: two signatures differ but both verify */
  assert_false(sig.len == sig2.len && memcmp(sig.data, sig2.data, sig.len) == 0);

  /* empty message */
  assert_int_equal(fl_signer_sign(s, NULL, 0, &sig), FL_OK);
  assert_int_equal(fl_verify(v, "", 0, sig.data, sig.len), FL_OK);
  assert_int_equal(fl_verify(NULL, "", 0, sig.data, sig.len), FL_EINVAL);

  fl_sbuf_free(&sig);
  fl_sbuf_free(&sig2);
  fl_verifier_free(v);
  fl_signer_free(s);
}

static void test_every_byte_flip_fails(void **state) {
  (void)state;
  fl_signer_t *s = NULL;
  assert_int_equal(fl_signer_generate(&s), FL_OK);
  fl_verifier_t *v = fl_signer_verifier(s);
  uint8_t msg[100];
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 7 + 3);
  fl_sbuf_t sig = {0};
  assert_int_equal(fl_signer_sign(s, msg, sizeof msg, &sig), FL_OK);
  assert_int_equal(fl_verify(v, msg, sizeof msg, sig.data, sig.len), FL_OK);

  static const uint8_t masks[] = {0x01, 0x80, 0xff};
  for (size_t m = 0; m < sizeof masks; m++) {
    for (size_t i = 0; i < sizeof msg; i++) {
      msg[i] ^= masks[m];
      assert_int_equal(fl_verify(v, msg, sizeof msg, sig.data, sig.len), FL_EBADSIG);
      msg[i] ^= masks[m];
    }
    for (size_t i = 0; i < sig.len; i++) {
      sig.data[i] ^= masks[m];
      assert_int_equal(fl_verify(v, msg, sizeof msg, sig.data, sig.len), FL_EBADSIG);
      sig.data[i] ^= masks[m];
    }
  }
  /* unchanged again: still valid (the loop restored every byte) */
  assert_int_equal(fl_verify(v, msg, sizeof msg, sig.data, sig.len), FL_OK);
  /* truncated at every length, and one trailing byte */
  for (size_t n = 0; n < sig.len; n++)
    assert_int_equal(fl_verify(v, msg, sizeof msg, sig.data, n), FL_EBADSIG);
  fl_sbuf_append(&sig, "\0", 1);
  assert_int_equal(fl_verify(v, msg, sizeof msg, sig.data, sig.len), FL_EBADSIG);

  fl_sbuf_free(&sig);
  fl_verifier_free(v);
  fl_signer_free(s);
}

static void test_wrong_key_and_garbage(void **state) {
  (void)state;
  fl_signer_t *a = NULL, *b = NULL;
  assert_int_equal(fl_signer_generate(&a), FL_OK);
  assert_int_equal(fl_signer_generate(&b), FL_OK);
  fl_verifier_t *vb = fl_signer_verifier(b);
  fl_sbuf_t sig = {0};
  assert_int_equal(fl_signer_sign(a, "m", 1, &sig), FL_OK);
  assert_int_equal(fl_verify(vb, "m", 1, sig.data, sig.len), FL_EBADSIG);

  uint8_t junk[1000];
  assert_int_equal(fl_random_bytes(junk, sizeof junk), FL_OK);
  assert_int_equal(fl_verify(vb, "m", 1, junk, 64), FL_EBADSIG);
  assert_int_equal(fl_verify(vb, "m", 1, junk, sizeof junk), FL_EBADSIG);
  assert_int_equal(fl_verify(vb, "m", 1, NULL, 0), FL_EBADSIG);
  assert_int_equal(fl_verify(vb, "m", 1, junk, 0), FL_EBADSIG);
  /* A well-formed DER SEQUENCE of two INTEGERs that is not a signature. */
  static const uint8_t fake[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
  assert_int_equal(fl_verify(vb, "m", 1, fake, sizeof fake), FL_EBADSIG);
  /* r = 0, s = 0 */
  static const uint8_t zeros[] = {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00};
  assert_int_equal(fl_verify(vb, "m", 1, zeros, sizeof zeros), FL_EBADSIG);
  /* Random DER-looking prefixes of every length. */
  for (size_t n = 1; n <= FL_SIG_MAX_LEN; n++) {
    junk[0] = 0x30;
    junk[1] = (uint8_t)(n - 2);
    assert_int_equal(fl_verify(vb, "m", 1, junk, n), FL_EBADSIG);
  }
  fl_sbuf_free(&sig);
  fl_verifier_free(vb);
  fl_signer_free(a);
  fl_signer_free(b);
}

/* s -> n - s gives a second valid ECDSA signature; fl_verify must refuse it. */
static void test_high_s_rejected(void **state) {
  (void)state;
  fl_signer_t *s = NULL;
  assert_int_equal(fl_signer_generate(&s), FL_OK);
  fl_verifier_t *v = fl_signer_verifier(s);
  fl_sbuf_t sig = {0};
  assert_int_equal(fl_signer_sign(s, "x", 1, &sig), FL_OK);

  const unsigned char *p = sig.data;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig.len);
  assert_non_null(es);
  const BIGNUM *r = NULL, *sv = NULL;
  ECDSA_SIG_get0(es, &r, &sv);
  BIGNUM *n = NULL, *half = BN_new(), *hs = BN_new();
  assert_true(BN_hex2bn(&n, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"));
  assert_true(BN_rshift1(half, n));
  assert_true(BN_cmp(sv, half) <= 0); /* our signer emits low-S */
  assert_true(BN_sub(hs, n, sv));
  assert_true(ECDSA_SIG_set0(es, BN_dup(r), hs));
  unsigned char *der = NULL;
  int dlen = i2d_ECDSA_SIG(es, &der);
  assert_true(dlen > 0);
  assert_int_equal(fl_verify(v, "x", 1, der, (size_t)dlen), FL_EBADSIG);

  OPENSSL_free(der);
  ECDSA_SIG_free(es);
  BN_free(n);
  BN_free(half);
  fl_sbuf_free(&sig);
  fl_verifier_free(v);
  fl_signer_free(s);
}

static void test_pem_roundtrip(void **state) {
  (void)state;
  fl_signer_t *s = NULL, *s2 = NULL;
  assert_int_equal(fl_signer_generate(&s), FL_OK);
  fl_sbuf_t pem = {0}, sig = {0}, pub = {0};
  assert_int_equal(fl_signer_to_pem(s, &pem), FL_OK);
  assert_true(pem.len > 30 && memcmp(pem.data, "-----BEGIN PRIVATE KEY-----", 27) == 0);
  assert_int_equal(fl_signer_from_pem(pem.data, pem.len, &s2), FL_OK);
  fl_verifier_t *v = fl_signer_verifier(s), *v2 = NULL;
  assert_int_equal(fl_signer_sign(s2, "hello", 5, &sig), FL_OK);
  assert_int_equal(fl_verify(v, "hello", 5, sig.data, sig.len), FL_OK);

  assert_int_equal(fl_verifier_to_pem(v, &pub), FL_OK);
  assert_int_equal(fl_verifier_from_pem(pub.data, pub.len, &v2), FL_OK);
  assert_int_equal(fl_verify(v2, "hello", 5, sig.data, sig.len), FL_OK);

  fl_signer_t *bad = NULL;
  assert_int_equal(fl_signer_from_pem("not a key", 9, &bad), FL_EMALFORMED);
  assert_null(bad);
  assert_int_equal(fl_signer_from_pem(pub.data, pub.len, &bad), FL_EMALFORMED);
  assert_int_equal(fl_signer_from_pem(NULL, 0, &bad), FL_EMALFORMED);
  assert_int_equal(fl_signer_load_file("/nonexistent/key.pem", &bad), FL_NOTFOUND);

  /* A P-384 key is refused: fedledger speaks P-256 only. */
  EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
  assert_non_null(p384);
  BIO *bio = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PrivateKey(bio, p384, NULL, NULL, 0, NULL, NULL), 1);
  char *data = NULL;
  long dl = BIO_get_mem_data(bio, &data);
  assert_int_equal(fl_signer_from_pem(data, (size_t)dl, &bad), FL_EINVAL);
  assert_null(bad);
  BIO_free(bio);
  EVP_PKEY_free(p384);

  fl_sbuf_free(&pem);
  fl_sbuf_free(&sig);
  fl_sbuf_free(&pub);
  fl_verifier_free(v);
  fl_verifier_free(v2);
  fl_signer_free(s);
  fl_signer_free(s2);
}

/* ---- certificates ------------------------------------------------------------ */

static void test_cert_parsing(void **state) {
  (void)state;
  fl_cert_t *peer = load_cert("org1.example.com", "peers/peer0.org1.example.com",
                              "msp/signcerts/peer0.org1.example.com-cert.pem");
  assert_string_equal(fl_cert_subject_cn(peer), "peer0.org1.example.com");
  assert_string_equal(fl_cert_subject_org(peer), "org1.example.com");
  assert_int_equal(fl_cert_ou_count(peer), 1);
  assert_string_equal(fl_cert_ou(peer, 0), "peer");
  assert_null(fl_cert_ou(peer, 1));
  assert_int_equal(fl_cert_role(peer), FL_ROLE_PEER);
  assert_false(fl_cert_is_ca(peer));
  int64_t nb = fl_cert_not_before(peer), na = fl_cert_not_after(peer);
  int64_t now = (int64_t)time(NULL);
  assert_true(nb <= now && nb > now - 3600);
  assert_true(na - nb >= (int64_t)3650 * 86400); /* default 10 years */
  assert_non_null(fl_cert_pubkey(peer));

  /* DER view, fingerprint, and the DER/PEM round trips keep the identity. */
  fl_buf_t der = fl_cert_der(peer);
  uint8_t h[FL_SHA256_LEN];
  fl_sha256(der.data, der.len, h);
  assert_memory_equal(h, fl_cert_sha256(peer), FL_SHA256_LEN);
  fl_cert_t *c2 = NULL, *c3 = NULL;
  assert_int_equal(fl_cert_from_der(der.data, der.len, &c2), FL_OK);
  assert_memory_equal(fl_cert_sha256(c2), fl_cert_sha256(peer), FL_SHA256_LEN);
  fl_sbuf_t pem = {0};
  fl_cert_to_pem(peer, &pem);
  assert_int_equal(fl_cert_from_pem(pem.data, pem.len, &c3), FL_OK);
  assert_memory_equal(fl_cert_sha256(c3), fl_cert_sha256(peer), FL_SHA256_LEN);
  /* our PEM is byte-identical to the file's (OpenSSL-written) PEM */
  char *p = ipath("org1.example.com", "peers/peer0.org1.example.com",
                  "msp/signcerts/peer0.org1.example.com-cert.pem");
  fl_sbuf_t file = slurp(p);
  fl_free(p);
  assert_int_equal(file.len, pem.len);
  assert_memory_equal(file.data, pem.data, pem.len);

  /* malformed inputs */
  fl_cert_t *bad = NULL;
  uint8_t *der2 = fl_calloc(1, der.len + 1); /* DER plus one trailing zero byte */
  memcpy(der2, der.data, der.len);
  assert_int_equal(fl_cert_from_der(der2, der.len + 1, &bad), FL_EMALFORMED); /* trailing */
  assert_int_equal(fl_cert_from_der(der2, der.len / 2, &bad), FL_EMALFORMED); /* truncated */
  assert_int_equal(fl_cert_from_pem("garbage", 7, &bad), FL_EMALFORMED);
  assert_null(bad);
  fl_free(der2);

  /* the key in the keystore matches the certificate */
  fl_signer_t *key = load_key("org1.example.com", "peers/peer0.org1.example.com",
                              "msp/keystore/priv_sk");
  fl_sbuf_t sig = {0};
  assert_int_equal(fl_signer_sign(key, "blk", 3, &sig), FL_OK);
  assert_int_equal(fl_verify(fl_cert_pubkey(peer), "blk", 3, sig.data, sig.len), FL_OK);

  /* roles of the other kinds; CA flags */
  fl_cert_t *adm = load_cert("org1.example.com", "users/Admin@org1.example.com",
                             "msp/signcerts/Admin@org1.example.com-cert.pem");
  fl_cert_t *cli = load_cert("org1.example.com", "users/client1@org1.example.com",
                             "tls/client.crt");
  fl_cert_t *ord = load_cert("example.com", "orderers/orderer0.example.com", "tls/server.crt");
  fl_cert_t *ca = load_cert("org1.example.com", "msp", "cacerts/ca.org1.example.com-cert.pem");
  assert_int_equal(fl_cert_role(adm), FL_ROLE_ADMIN);
  assert_string_equal(fl_cert_subject_cn(adm), "Admin@org1.example.com");
  assert_int_equal(fl_cert_role(cli), FL_ROLE_CLIENT);
  assert_int_equal(fl_cert_role(ord), FL_ROLE_ORDERER);
  assert_int_equal(fl_cert_role(ca), FL_ROLE_NONE);
  assert_true(fl_cert_is_ca(ca));
  assert_string_equal(fl_role_name(FL_ROLE_CLIENT), "client");
  assert_int_equal(fl_role_parse("orderer"), FL_ROLE_ORDERER);
  assert_int_equal(fl_role_parse("Orderer"), FL_ROLE_NONE);

  fl_sbuf_free(&sig);
  fl_sbuf_free(&pem);
  fl_sbuf_free(&file);
  fl_signer_free(key);
  fl_cert_free(peer);
  fl_cert_free(c2);
  fl_cert_free(c3);
  fl_cert_free(adm);
  fl_cert_free(cli);
  fl_cert_free(ord);
  fl_cert_free(ca);
}

static void test_cert_issue_checks(void **state) {
  (void)state;
  fl_signer_t *k = NULL, *k2 = NULL;
  assert_int_equal(fl_signer_generate(&k), FL_OK);
  assert_int_equal(fl_signer_generate(&k2), FL_OK);
  fl_cert_t *c = NULL;
  const char *bad_ip[] = {"300.1.1.1"};
  const char *bad_dns[] = {"a,DNS:evil.com"};
  fl_cert_template_t t = {.cn = "x", .not_before = 0, .not_after = 100};
  t.ips = bad_ip;
  t.n_ips = 1;
  assert_int_equal(fl_cert_issue(&t, k, NULL, k, &c), FL_EINVAL);
  t.n_ips = 0;
  t.dns_names = bad_dns;
  t.n_dns = 1;
  assert_int_equal(fl_cert_issue(&t, k, NULL, k, &c), FL_EINVAL);
  t.n_dns = 0;
  t.cn = NULL;
  assert_int_equal(fl_cert_issue(&t, k, NULL, k, &c), FL_EINVAL);
  t.cn = "x";
  t.country = "USA"; /* C must be two letters */
  assert_int_equal(fl_cert_issue(&t, k, NULL, k, &c), FL_EINVAL);
  t.country = NULL;
  assert_int_equal(fl_cert_issue(&t, k, NULL, k2, &c), FL_EINVAL); /* self-signed, other key */
  assert_null(c);
  t.is_ca = true;
  t.key_usage = FL_KU_KEY_CERT_SIGN;
  assert_int_equal(fl_cert_issue(&t, k, NULL, k, &c), FL_OK);
  fl_cert_t *leaf = NULL;
  fl_cert_template_t lt = {.cn = "leaf", .not_before = 0, .not_after = 50};
  /* issuer key does not match the issuer certificate */
  assert_int_equal(fl_cert_issue(&lt, k2, c, k2, &leaf), FL_EINVAL);
  assert_int_equal(fl_cert_issue(&lt, k2, c, k, &leaf), FL_OK);
  assert_int_equal(fl_cert_not_before(leaf), 0);
  assert_int_equal(fl_cert_not_after(leaf), 50);
  fl_cert_free(leaf);
  fl_cert_free(c);
  fl_signer_free(k);
  fl_signer_free(k2);
}

/* ---- MSP ---------------------------------------------------------------------- */

static fl_msp_t *make_msp(void) {
  fl_msp_t *m = fl_msp_new();
  static const char *const orgs[][2] = {{"OrdererMSP", "ordererOrganizations/example.com"},
                                        {"Org1MSP", "peerOrganizations/org1.example.com"},
                                        {"Org2MSP", "peerOrganizations/org2.example.com"}};
  for (size_t i = 0; i < 3; i++) {
    char *d = fl_sprintf("%s/%s/msp", out_dir, orgs[i][1]);
    assert_int_equal(fl_msp_add_org_dir(m, orgs[i][0], d), FL_OK);
    fl_free(d);
  }
  assert_int_equal(fl_msp_org_count(m), 3);
  return m;
}

static fl_sbuf_t cert_pem(const char *org, const char *who, const char *file) {
  char *p = ipath(org, who, file);
  fl_sbuf_t b = slurp(p);
  fl_free(p);
  return b;
}

static void test_msp_add_org_errors(void **state) {
  (void)state;
  fl_msp_t *m = make_msp();
  fl_sbuf_t ca = cert_pem("org1.example.com", "msp", "cacerts/ca.org1.example.com-cert.pem");
  fl_sbuf_t leaf = cert_pem("org1.example.com", "peers/peer0.org1.example.com",
                            "msp/signcerts/peer0.org1.example.com-cert.pem");
  assert_int_equal(fl_msp_add_org(m, "Org1MSP", ca.data, ca.len, NULL, 0), FL_EEXIST);
  assert_int_equal(fl_msp_add_org(m, "", ca.data, ca.len, NULL, 0), FL_EINVAL);
  assert_int_equal(fl_msp_add_org(m, "bad id", ca.data, ca.len, NULL, 0), FL_EINVAL);
  assert_int_equal(fl_msp_add_org(m, "X", leaf.data, leaf.len, NULL, 0), FL_EINVAL); /* not CA */
  assert_int_equal(fl_msp_add_org(m, "Y", "junk", 4, NULL, 0), FL_EMALFORMED);
  assert_int_equal(fl_msp_add_org_dir(m, "Z", "/nonexistent"), FL_NOTFOUND);
  assert_int_equal(fl_msp_org_count(m), 3);
  fl_sbuf_free(&ca);
  fl_sbuf_free(&leaf);
  fl_msp_free(m);
}

static void test_msp_validate(void **state) {
  (void)state;
  fl_msp_t *m = make_msp();
  fl_msp_info_t info;
  fl_sbuf_t peer = cert_pem("org1.example.com", "peers/peer0.org1.example.com",
                            "msp/signcerts/peer0.org1.example.com-cert.pem");
  fl_sbuf_t peer2 = cert_pem("org2.example.com", "peers/peer0.org2.example.com",
                             "msp/signcerts/peer0.org2.example.com-cert.pem");
  fl_sbuf_t admin = cert_pem("org1.example.com", "users/Admin@org1.example.com",
                             "msp/signcerts/Admin@org1.example.com-cert.pem");
  fl_sbuf_t ca = cert_pem("org1.example.com", "msp", "cacerts/ca.org1.example.com-cert.pem");
  fl_sbuf_t tls = cert_pem("org1.example.com", "peers/peer0.org1.example.com", "tls/server.crt");

  /* good */
  assert_int_equal(fl_msp_validate(m, "Org1MSP", peer.data, peer.len, FL_ROLE_NONE, &info), FL_OK);
  assert_string_equal(info.mspid, "Org1MSP");
  assert_int_equal(info.role, FL_ROLE_PEER);
  assert_string_equal(info.cn, "peer0.org1.example.com");
  assert_string_equal(info.reason, "ok");
  assert_int_equal(fl_msp_validate(m, "Org1MSP", peer.data, peer.len, FL_ROLE_PEER, NULL), FL_OK);
  assert_int_equal(fl_msp_validate(m, "Org1MSP", admin.data, admin.len, FL_ROLE_ADMIN, &info),
                   FL_OK);

  /* other org's CA, unknown org, a CA as identity, a TLS cert as signing id */
  assert_int_equal(fl_msp_validate(m, "Org2MSP", peer.data, peer.len, FL_ROLE_NONE, &info),
                   FL_EUNTRUSTED);
  assert_int_equal(fl_msp_validate(m, "Org1MSP", peer2.data, peer2.len, FL_ROLE_NONE, &info),
                   FL_EUNTRUSTED);
  assert_int_equal(fl_msp_validate(m, "Org9MSP", peer.data, peer.len, FL_ROLE_NONE, &info),
                   FL_EUNTRUSTED);
  assert_string_equal(info.reason, "unknown MSP ID");
  assert_int_equal(fl_msp_validate(m, "Org1MSP", ca.data, ca.len, FL_ROLE_NONE, &info),
                   FL_EUNTRUSTED);
  assert_int_equal(fl_msp_validate(m, "Org1MSP", tls.data, tls.len, FL_ROLE_NONE, &info),
                   FL_EUNTRUSTED);
  assert_int_equal(fl_msp_validate(m, "Org1MSP", "junk", 4, FL_ROLE_NONE, &info), FL_EMALFORMED);
  assert_int_equal(fl_msp_validate(m, NULL, peer.data, peer.len, FL_ROLE_NONE, &info),
                   FL_EUNTRUSTED);

  /* wrong role */
  assert_int_equal(fl_msp_validate(m, "Org1MSP", peer.data, peer.len, FL_ROLE_CLIENT, &info),
                   FL_EPERM);
  assert_int_equal(fl_msp_validate(m, "Org1MSP", admin.data, admin.len, FL_ROLE_PEER, &info),
                   FL_EPERM);

  /* expired / not yet valid, via the injected clock; then back to now */
  fl_cert_t *pc = NULL;
  assert_int_equal(fl_cert_from_pem(peer.data, peer.len, &pc), FL_OK);
  fl_msp_set_time(m, fl_cert_not_after(pc) + 1);
  assert_int_equal(fl_msp_validate(m, "Org1MSP", peer.data, peer.len, FL_ROLE_NONE, &info),
                   FL_EUNTRUSTED);
  assert_non_null(strstr(info.reason, "expired"));
  fl_msp_set_time(m, fl_cert_not_after(pc));
  assert_int_equal(fl_msp_validate(m, "Org1MSP", peer.data, peer.len, FL_ROLE_NONE, &info), FL_OK);
  fl_msp_set_time(m, fl_cert_not_before(pc) - 1);
  assert_int_equal(fl_msp_validate(m, "Org1MSP", peer.data, peer.len, FL_ROLE_NONE, &info),
                   FL_EUNTRUSTED);
  assert_non_null(strstr(info.reason, "not yet valid"));
  fl_msp_set_time(m, 0);
  assert_int_equal(fl_msp_validate(m, "Org1MSP", peer.data, peer.len, FL_ROLE_NONE, &info), FL_OK);

  /* revoked, checked even though the cert is cached */
  assert_false(fl_msp_is_revoked(m, fl_cert_sha256(pc)));
  fl_msp_revoke(m, fl_cert_sha256(pc));
  fl_msp_revoke(m, fl_cert_sha256(pc)); /* idempotent */
  assert_true(fl_msp_is_revoked(m, fl_cert_sha256(pc)));
  assert_int_equal(fl_msp_validate(m, "Org1MSP", peer.data, peer.len, FL_ROLE_NONE, &info),
                   FL_EREVOKED);
  assert_memory_equal(info.cert_sha256, fl_cert_sha256(pc), FL_SHA256_LEN);
  /* others of the same org are unaffected */
  assert_int_equal(fl_msp_validate(m, "Org1MSP", admin.data, admin.len, FL_ROLE_NONE, &info),
                   FL_OK);

  /* the cache: one parse per (cert, org), hits afterwards */
  uint64_t hits, misses;
  size_t entries;
  fl_msp_cache_stats(m, &hits, &misses, &entries);
  assert_int_equal(entries, 2); /* peer0 and Admin under Org1MSP (failures are not cached) */
  uint64_t h0 = hits;
  for (int i = 0; i < 10; i++)
    assert_int_equal(fl_msp_validate(m, "Org1MSP", admin.data, admin.len, FL_ROLE_ADMIN, NULL),
                     FL_OK);
  fl_msp_cache_stats(m, &hits, &misses, &entries);
  assert_int_equal(hits, h0 + 10);
  assert_int_equal(entries, 2);

  fl_cert_free(pc);
  fl_sbuf_free(&peer);
  fl_sbuf_free(&peer2);
  fl_sbuf_free(&admin);
  fl_sbuf_free(&ca);
  fl_sbuf_free(&tls);
  fl_msp_free(m);
}

/* A CA with exactly the same names as Org1's but another key must not be
 * trusted for Org1 (the check is cryptographic, not by name). */
static void test_msp_impostor_ca(void **state) {
  (void)state;
  fl_msp_t *m = make_msp();
  fl_signer_t *cak = NULL, *lk = NULL;
  assert_int_equal(fl_signer_generate(&cak), FL_OK);
  assert_int_equal(fl_signer_generate(&lk), FL_OK);
  int64_t now = (int64_t)time(NULL);
  fl_cert_template_t ct = {.country = "US", .province = "California",
                           .locality = "San Francisco", .org = "org1.example.com",
                           .cn = "ca.org1.example.com", .is_ca = true,
                           .key_usage = FL_KU_KEY_CERT_SIGN | FL_KU_DIGITAL_SIGNATURE,
                           .not_before = now - 60, .not_after = now + 3600};
  fl_cert_t *ca = NULL, *leaf = NULL;
  assert_int_equal(fl_cert_issue(&ct, cak, NULL, cak, &ca), FL_OK);
  const char *ou = "peer";
  fl_cert_template_t lt = {.country = "US", .province = "California",
                           .locality = "San Francisco", .org = "org1.example.com",
                           .ous = &ou, .n_ous = 1, .cn = "peer0.org1.example.com",
                           .key_usage = FL_KU_DIGITAL_SIGNATURE,
                           .not_before = now - 60, .not_after = now + 3600};
  assert_int_equal(fl_cert_issue(&lt, lk, ca, cak, &leaf), FL_OK);
  fl_sbuf_t pem = {0};
  fl_cert_to_pem(leaf, &pem);
  fl_msp_info_t info;
  assert_int_equal(fl_msp_validate(m, "Org1MSP", pem.data, pem.len, FL_ROLE_PEER, &info),
                   FL_EUNTRUSTED);
  assert_int_equal(fl_msp_validate_cert(m, FL_MSP_SIGNING, NULL, leaf, FL_ROLE_NONE, &info),
                   FL_EUNTRUSTED);
  fl_sbuf_free(&pem);
  fl_cert_free(ca);
  fl_cert_free(leaf);
  fl_signer_free(cak);
  fl_signer_free(lk);
  fl_msp_free(m);
}

static void test_msp_tls_from_der(void **state) {
  (void)state;
  fl_msp_t *m = make_msp();
  fl_cert_t *tls = load_cert("org2.example.com", "peers/peer0.org2.example.com",
                             "tls/server.crt");
  fl_cert_t *sign = load_cert("org2.example.com", "peers/peer0.org2.example.com",
                              "msp/signcerts/peer0.org2.example.com-cert.pem");
  /* What the RPC layer does with a peer's DER certificate. */
  fl_buf_t der = fl_cert_der(tls);
  fl_cert_t *fromder = NULL;
  assert_int_equal(fl_cert_from_der(der.data, der.len, &fromder), FL_OK);
  fl_msp_info_t info;
  assert_int_equal(fl_msp_validate_cert(m, FL_MSP_TLS, NULL, fromder, FL_ROLE_PEER, &info), FL_OK);
  assert_string_equal(info.mspid, "Org2MSP");
  assert_int_equal(info.role, FL_ROLE_PEER);
  assert_int_equal(fl_msp_validate_cert(m, FL_MSP_TLS, "Org2MSP", fromder, FL_ROLE_NONE, NULL),
                   FL_OK);
  assert_int_equal(fl_msp_validate_cert(m, FL_MSP_TLS, "Org1MSP", fromder, FL_ROLE_NONE, NULL),
                   FL_EUNTRUSTED);
  assert_int_equal(fl_msp_validate_cert(m, FL_MSP_TLS, NULL, fromder, FL_ROLE_ORDERER, NULL),
                   FL_EPERM);
  /* TLS and signing CAs are distinct */
  assert_int_equal(fl_msp_validate_cert(m, FL_MSP_SIGNING, NULL, fromder, FL_ROLE_NONE, NULL),
                   FL_EUNTRUSTED);
  assert_int_equal(fl_msp_validate_cert(m, FL_MSP_TLS, NULL, sign, FL_ROLE_NONE, NULL),
                   FL_EUNTRUSTED);
  assert_int_equal(fl_msp_validate_cert(m, FL_MSP_SIGNING, NULL, sign, FL_ROLE_NONE, &info),
                   FL_OK);
  assert_string_equal(info.mspid, "Org2MSP");
  fl_cert_free(fromder);
  fl_cert_free(tls);
  fl_cert_free(sign);
  fl_msp_free(m);
}

typedef struct sid_fixture_s {
  fl_msp_t *msp;
  fl_sbuf_t sid, sig;
  const char *msg;
} sid_fixture_t;

static void sid_fixture(sid_fixture_t *f) {
  f->msp = make_msp();
  fl_sbuf_t pem = cert_pem("org1.example.com", "users/client1@org1.example.com",
                           "msp/signcerts/client1@org1.example.com-cert.pem");
  f->sid = (fl_sbuf_t){0};
  f->sig = (fl_sbuf_t){0};
  assert_int_equal(fl_msp_serialize_identity("Org1MSP", pem.data, pem.len, &f->sid), FL_OK);
  fl_signer_t *k = load_key("org1.example.com", "users/client1@org1.example.com",
                            "msp/keystore/priv_sk");
  f->msg = "SubmitUpdate task=ids round=3 hash=ab12";
  assert_int_equal(fl_signer_sign(k, f->msg, strlen(f->msg), &f->sig), FL_OK);
  fl_signer_free(k);
  fl_sbuf_free(&pem);
}

static void sid_fixture_free(sid_fixture_t *f) {
  fl_sbuf_free(&f->sid);
  fl_sbuf_free(&f->sig);
  fl_msp_free(f->msp);
}

static void test_msp_verify_signature(void **state) {
  (void)state;
  sid_fixture_t f;
  sid_fixture(&f);
  size_t ml = strlen(f.msg);
  fl_msp_info_t info;
  assert_int_equal(fl_msp_verify_signature(f.msp, f.sid.data, f.sid.len, f.msg, ml, f.sig.data,
                                           f.sig.len, FL_ROLE_CLIENT, &info), FL_OK);
  assert_string_equal(info.cn, "client1@org1.example.com");
  assert_int_equal(info.role, FL_ROLE_CLIENT);
  assert_int_equal(fl_msp_verify_signature(f.msp, f.sid.data, f.sid.len, f.msg, ml, f.sig.data,
                                           f.sig.len, FL_ROLE_ADMIN, &info), FL_EPERM);
  assert_int_equal(fl_msp_verify_signature(f.msp, f.sid.data, f.sid.len, "other", 5, f.sig.data,
                                           f.sig.len, FL_ROLE_NONE, &info), FL_EBADSIG);
  f.sig.data[f.sig.len / 2] ^= 1;
  assert_int_equal(fl_msp_verify_signature(f.msp, f.sid.data, f.sid.len, f.msg, ml, f.sig.data,
                                           f.sig.len, FL_ROLE_NONE, &info), FL_EBADSIG);
  f.sig.data[f.sig.len / 2] ^= 1;
  /* garbage, empty and oversized identities */
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x0f, 0x12};
  assert_int_equal(fl_msp_verify_signature(f.msp, junk, sizeof junk, f.msg, ml, f.sig.data,
                                           f.sig.len, FL_ROLE_NONE, &info), FL_EMALFORMED);
  assert_int_equal(fl_msp_verify_signature(f.msp, NULL, 0, f.msg, ml, f.sig.data, f.sig.len,
                                           FL_ROLE_NONE, &info), FL_EMALFORMED);
  /* same certificate claimed by the other organisation */
  fl_sbuf_t pem = cert_pem("org1.example.com", "users/client1@org1.example.com",
                           "msp/signcerts/client1@org1.example.com-cert.pem");
  fl_sbuf_t sid2 = {0};
  assert_int_equal(fl_msp_serialize_identity("Org2MSP", pem.data, pem.len, &sid2), FL_OK);
  assert_int_equal(fl_msp_verify_signature(f.msp, sid2.data, sid2.len, f.msg, ml, f.sig.data,
                                           f.sig.len, FL_ROLE_NONE, &info), FL_EUNTRUSTED);
  assert_int_equal(fl_msp_serialize_identity("", pem.data, pem.len, &sid2), FL_EINVAL);
  /* every truncation of the identity is rejected cleanly */
  for (size_t n = 0; n < f.sid.len; n++) {
    fl_status_t rc = fl_msp_verify_signature(f.msp, f.sid.data, n, f.msg, ml, f.sig.data,
                                             f.sig.len, FL_ROLE_NONE, NULL);
    assert_true(rc == FL_EMALFORMED || rc == FL_EUNTRUSTED);
  }
  /* revocation applies to signatures too */
  fl_cert_t *c = NULL;
  assert_int_equal(fl_cert_from_pem(pem.data, pem.len, &c), FL_OK);
  fl_msp_revoke(f.msp, fl_cert_sha256(c));
  assert_int_equal(fl_msp_verify_signature(f.msp, f.sid.data, f.sid.len, f.msg, ml, f.sig.data,
                                           f.sig.len, FL_ROLE_NONE, &info), FL_EREVOKED);
  fl_cert_free(c);
  fl_sbuf_free(&pem);
  fl_sbuf_free(&sid2);
  sid_fixture_free(&f);
}

#define THREADS 4
#define ROUNDS 150

static void *verify_worker(void *arg) {
  sid_fixture_t *f = arg;
  size_t ml = strlen(f->msg);
  intptr_t failures = 0;
  for (int i = 0; i < ROUNDS; i++) {
    if (fl_msp_verify_signature(f->msp, f->sid.data, f->sid.len, f->msg, ml, f->sig.data,
                                f->sig.len, FL_ROLE_CLIENT, NULL) != FL_OK)
      failures++;
    if (fl_msp_verify_signature(f->msp, f->sid.data, f->sid.len, "x", 1, f->sig.data,
                                f->sig.len, FL_ROLE_CLIENT, NULL) != FL_EBADSIG)
      failures++;
  }
  return (void *)failures;
}

static void test_msp_concurrent(void **state) {
  (void)state;
  sid_fixture_t f;
  sid_fixture(&f);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, verify_worker, &f), 0);
  for (int i = 0; i < THREADS; i++) {
    void *r = NULL;
    assert_int_equal(pthread_join(t[i], &r), 0);
    assert_int_equal((intptr_t)r, 0);
  }
  uint64_t hits, misses;
  size_t entries;
  fl_msp_cache_stats(f.msp, &hits, &misses, &entries);
  assert_int_equal(entries, 1);
  assert_int_equal(hits + misses, (uint64_t)THREADS * ROUNDS * 2);
  assert_true(misses <= THREADS); /* at most one racing parse per thread */
  sid_fixture_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sha256_vectors),
      cmocka_unit_test(test_random),
      cmocka_unit_test(test_sign_verify_roundtrip),
      cmocka_unit_test(test_every_byte_flip_fails),
      cmocka_unit_test(test_wrong_key_and_garbage),
      cmocka_unit_test(test_high_s_rejected),
      cmocka_unit_test(test_pem_roundtrip),
      cmocka_unit_test(test_cert_parsing),
      cmocka_unit_test(test_cert_issue_checks),
      cmocka_unit_test(test_msp_add_org_errors),
      cmocka_unit_test(test_msp_validate),
      cmocka_unit_test(test_msp_impostor_ca),
      cmocka_unit_test(test_msp_tls_from_der),
      cmocka_unit_test(test_msp_verify_signature),
      cmocka_unit_test(test_msp_concurrent),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
