/* SPDX-License-Identifier: Apache-2.0
 *
 * sign.c: ECDSA P-256 keys, signing and verification over OpenSSL 3 EVP.
 *
 * Signing always goes through the digest: sign(m) = sign_digest(SHA-256(m)),
 * so the two entry points cannot disagree. The DER signature is normalised
 * to low-S after OpenSSL produces it; verification insists on canonical DER
 * and low-S before it asks OpenSSL (see sign.h).
 */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/crypto/crypto_int.h"
#include "common/crypto/sign.h"

struct fl_signer_s {
  EVP_PKEY *pkey;
};

/* Verification contexts ready for EVP_PKEY_verify (initialised for
 * ECDSA with SHA-256 on the verifier's key), reused: creating and
 * initialising one per call (a provider fetch, parameter setup) was a
 * visible share of each verify in the orderer's profile. At most VPOOL
 * are kept; a thread takes one under the lock and gives it back after. */
#define VPOOL 8
typedef struct vpool_s {
  pthread_mutex_t mu;
  EVP_PKEY_CTX *ctx[VPOOL];
  unsigned n;
} vpool_t;

struct fl_verifier_s {
  EVP_PKEY *pkey;
  vpool_t *pool; /* owned; its contents change under pool->mu */
};

/* The order n of the P-256 group and n/2, built once. */
static pthread_once_t order_once = PTHREAD_ONCE_INIT;
static BIGNUM *p256_n, *p256_half_n;

static void order_init(void) {
  BIGNUM *n = NULL;
  if (!BN_hex2bn(&n, "FFFFFFFF00000000FFFFFFFFFFFFFFFF"
                     "BCE6FAADA7179E84F3B9CAC2FC632551"))
    return;
  BIGNUM *half = BN_dup(n);
  if (half == NULL || !BN_rshift1(half, n)) {
    BN_free(n);
    BN_free(half);
    return;
  }
  p256_n = n;
  p256_half_n = half;
}

static void order_get(const BIGNUM **n, const BIGNUM **half) {
  pthread_once(&order_once, order_init);
  FL_ASSERT(p256_n != NULL && p256_half_n != NULL);
  *n = p256_n;
  *half = p256_half_n;
}

int fl__pkey_is_p256(const EVP_PKEY *pkey) {
  if (pkey == NULL || !EVP_PKEY_is_a(pkey, "EC")) return 0;
  char name[64];
  size_t nlen = 0;
  if (!EVP_PKEY_get_group_name(pkey, name, sizeof name, &nlen)) {
    ERR_clear_error();
    return 0;
  }
  return strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0 ||
         strcmp(name, "secp256r1") == 0;
}

EVP_PKEY *fl__signer_pkey(const fl_signer_t *s) { return s->pkey; }
EVP_PKEY *fl__verifier_pkey(const fl_verifier_t *v) { return v->pkey; }

fl_verifier_t *fl__verifier_wrap(EVP_PKEY *pkey) {
  if (!fl__pkey_is_p256(pkey)) return NULL;
  FL_ASSERT(EVP_PKEY_up_ref(pkey) == 1);
  fl_verifier_t *v = fl_calloc(1, sizeof *v);
  v->pkey = pkey;
  v->pool = fl_calloc(1, sizeof *v->pool);
  pthread_mutex_init(&v->pool->mu, NULL);
  return v;
}

fl_status_t fl_signer_generate(fl_signer_t **out) {
  *out = NULL;
  EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if (pkey == NULL) {
    fl__crypto_drain_errors("generate P-256 key");
    return FL_ECRYPTO;
  }
  fl_signer_t *s = fl_calloc(1, sizeof *s);
  s->pkey = pkey;
  *out = s;
  return FL_OK;
}

/* Password callback that refuses: an encrypted key is an error, never a
 * prompt on the terminal. */
static int no_password(char *buf, int size, int rwflag, void *u) {
  (void)buf, (void)size, (void)rwflag, (void)u;
  return -1;
}

fl_status_t fl_signer_from_pem(const void *pem, size_t len, fl_signer_t **out) {
  *out = NULL;
  if (pem == NULL || len == 0 || len > INT_MAX) return FL_EMALFORMED;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if (bio == NULL) return FL_ECRYPTO;
  EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
  BIO_free(bio);
  if (pkey == NULL) {
    fl__crypto_drain_errors("read private key PEM");
    return FL_EMALFORMED;
  }
  if (!fl__pkey_is_p256(pkey)) {
    EVP_PKEY_free(pkey);
    return FL_EINVAL;
  }
  fl_signer_t *s = fl_calloc(1, sizeof *s);
  s->pkey = pkey;
  *out = s;
  return FL_OK;
}

fl_status_t fl_signer_load_file(const char *path, fl_signer_t **out) {
  *out = NULL;
  fl_sbuf_t b = {0};
  FL_FORWARD(fl__read_file(path, FL__CRYPTO_MAX_FILE, &b));
  fl_status_t rc = fl_signer_from_pem(b.data, b.len, out);
  OPENSSL_cleanse(b.data, b.cap);
  fl_sbuf_free(&b);
  return rc;
}

void fl_signer_free(fl_signer_t *s) {
  if (s == NULL) return;
  EVP_PKEY_free(s->pkey); /* EC private scalars are cleared by OpenSSL */
  fl_free(s);
}

/* Rewrites a DER signature in place as low-S when s > n/2. Returns 0 on
 * success. */
static int normalise_low_s(fl_sbuf_t *sig) {
  const unsigned char *p = sig->data;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig->len);
  if (es == NULL) return -1;
  const BIGNUM *r = NULL, *s = NULL, *n = NULL, *half = NULL;
  ECDSA_SIG_get0(es, &r, &s);
  order_get(&n, &half);
  int rc = 0;
  if (BN_cmp(s, half) > 0) {
    BIGNUM *r2 = BN_dup(r), *s2 = BN_new();
    if (r2 == NULL || s2 == NULL || !BN_sub(s2, n, s) ||
        !ECDSA_SIG_set0(es, r2, s2)) {
      BN_free(r2);
      BN_free(s2);
      rc = -1;
    } else {
      unsigned char *q = sig->data;
      int dlen = i2d_ECDSA_SIG(es, NULL);
      if (dlen <= 0 || (size_t)dlen > sig->cap) {
        rc = -1;
      } else {
        sig->len = (size_t)i2d_ECDSA_SIG(es, &q);
      }
    }
  }
  ECDSA_SIG_free(es);
  return rc;
}

fl_status_t fl_signer_sign_digest(const fl_signer_t *signer,
                                  const uint8_t digest[FL_SHA256_LEN],
                                  fl_sbuf_t *sig_out) {
  sig_out->len = 0;
  fl_status_t rc = FL_ECRYPTO;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, signer->pkey, NULL);
  size_t siglen = 0;
  if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
      EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1 ||
      EVP_PKEY_sign(ctx, NULL, &siglen, digest, FL_SHA256_LEN) != 1)
    goto fail;
  fl_sbuf_reserve(sig_out, siglen);
  if (EVP_PKEY_sign(ctx, sig_out->data, &siglen, digest, FL_SHA256_LEN) != 1)
    goto fail;
  sig_out->len = siglen;
  if (normalise_low_s(sig_out) != 0) goto fail;
  EVP_PKEY_CTX_free(ctx);
  return FL_OK;
fail:
  fl__crypto_drain_errors("ecdsa sign");
  sig_out->len = 0;
  EVP_PKEY_CTX_free(ctx);
  return rc;
}

fl_status_t fl_signer_sign(const fl_signer_t *s, const void *msg, size_t len,
                           fl_sbuf_t *sig_out) {
  uint8_t d[FL_SHA256_LEN];
  fl_sha256(msg, len, d);
  return fl_signer_sign_digest(s, d, sig_out);
}

/* Copies a memory BIO's contents into out (replacing them). */
static void bio_to_sbuf(BIO *bio, fl_sbuf_t *out) {
  char *p = NULL;
  long n = BIO_get_mem_data(bio, &p);
  out->len = 0;
  if (n > 0) fl_sbuf_append(out, p, (size_t)n);
}

fl_status_t fl_signer_to_pem(const fl_signer_t *s, fl_sbuf_t *out) {
  out->len = 0;
  /* A secure-heap BIO is wiped when freed, so no copy of the key lingers. */
  BIO *bio = BIO_new(BIO_s_secmem());
  if (bio == NULL ||
      PEM_write_bio_PKCS8PrivateKey(bio, s->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
    fl__crypto_drain_errors("write PKCS#8");
    BIO_free(bio);
    return FL_ECRYPTO;
  }
  bio_to_sbuf(bio, out);
  BIO_free(bio);
  return FL_OK;
}

fl_verifier_t *fl_signer_verifier(const fl_signer_t *s) {
  fl_verifier_t *v = fl__verifier_wrap(s->pkey);
  FL_ASSERT(v != NULL); /* signers are always P-256 */
  return v;
}

fl_status_t fl_verifier_from_pem(const void *pem, size_t len,
                                 fl_verifier_t **out) {
  *out = NULL;
  if (pem == NULL || len == 0 || len > INT_MAX) return FL_EMALFORMED;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if (bio == NULL) return FL_ECRYPTO;
  EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, no_password, NULL);
  BIO_free(bio);
  if (pkey == NULL) {
    fl__crypto_drain_errors("read public key PEM");
    return FL_EMALFORMED;
  }
  *out = fl__verifier_wrap(pkey);
  EVP_PKEY_free(pkey);
  return *out != NULL ? FL_OK : FL_EINVAL;
}

fl_status_t fl_verifier_to_pem(const fl_verifier_t *v, fl_sbuf_t *out) {
  out->len = 0;
  BIO *bio = BIO_new(BIO_s_mem());
  if (bio == NULL || PEM_write_bio_PUBKEY(bio, v->pkey) != 1) {
    fl__crypto_drain_errors("write public key PEM");
    BIO_free(bio);
    return FL_ECRYPTO;
  }
  bio_to_sbuf(bio, out);
  BIO_free(bio);
  return FL_OK;
}

void fl_verifier_free(fl_verifier_t *v) {
  if (v == NULL) return;
  for (unsigned i = 0; i < v->pool->n; i++) EVP_PKEY_CTX_free(v->pool->ctx[i]);
  pthread_mutex_destroy(&v->pool->mu);
  fl_free(v->pool);
  EVP_PKEY_free(v->pkey);
  fl_free(v);
}

/* Accepts only canonical DER (re-encoding gives the same bytes, nothing
 * trailing) with 0 < s <= n/2. */
static int sig_is_canonical_low_s(const uint8_t *sig, size_t siglen) {
  const unsigned char *p = sig;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
  if (es == NULL) return 0;
  int ok = 0;
  unsigned char *der = NULL;
  if (p != sig + siglen) goto done;
  int dlen = i2d_ECDSA_SIG(es, &der);
  if (dlen <= 0 || (size_t)dlen != siglen || memcmp(der, sig, siglen) != 0)
    goto done;
  const BIGNUM *r = NULL, *s = NULL, *n = NULL, *half = NULL;
  ECDSA_SIG_get0(es, &r, &s);
  order_get(&n, &half);
  ok = !BN_is_zero(s) && !BN_is_negative(s) && BN_cmp(s, half) <= 0;
done:
  OPENSSL_free(der);
  ECDSA_SIG_free(es);
  return ok;
}

fl_status_t fl_verify_digest(const fl_verifier_t *v,
                             const uint8_t digest[FL_SHA256_LEN],
                             const uint8_t *sig, size_t siglen) {
  if (v == NULL) return FL_EINVAL;
  if (sig == NULL || siglen == 0 || siglen > FL_SIG_MAX_LEN) return FL_EBADSIG;
  if (!sig_is_canonical_low_s(sig, siglen)) {
    ERR_clear_error();
    return FL_EBADSIG;
  }
  vpool_t *pool = v->pool;
  EVP_PKEY_CTX *ctx = NULL;
  pthread_mutex_lock(&pool->mu);
  if (pool->n > 0) ctx = pool->ctx[--pool->n];
  pthread_mutex_unlock(&pool->mu);
  if (ctx == NULL) {
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, v->pkey, NULL);
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1) {
      fl__crypto_drain_errors("ecdsa verify init");
      EVP_PKEY_CTX_free(ctx);
      return FL_ECRYPTO;
    }
  }
  /* An initialised context verifies any number of signatures, one at a
   * time (it holds the key and the digest choice, no per-call state). */
  fl_status_t rc = EVP_PKEY_verify(ctx, sig, siglen, digest, FL_SHA256_LEN) == 1 ? FL_OK
                                                                                  : FL_EBADSIG;
  ERR_clear_error();
  pthread_mutex_lock(&pool->mu);
  if (pool->n < VPOOL) {
    pool->ctx[pool->n++] = ctx;
    ctx = NULL;
  }
  pthread_mutex_unlock(&pool->mu);
  EVP_PKEY_CTX_free(ctx);
  return rc;
}

fl_status_t fl_verify(const fl_verifier_t *v, const void *msg, size_t len,
                      const uint8_t *sig, size_t siglen) {
  if (v == NULL) return FL_EINVAL;
  uint8_t d[FL_SHA256_LEN];
  fl_sha256(msg, len, d);
  return fl_verify_digest(v, d, sig, siglen);
}
