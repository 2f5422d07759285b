/* SPDX-License-Identifier: Apache-2.0
 *
 * hash.c: SHA-256 over OpenSSL 3 EVP. The SHA-256 implementation is fetched
 * once (pthread_once) and shared read-only by all threads, which avoids the
 * per-call implicit fetch of EVP_sha256().
 */
#include <pthread.h>

#include <openssl/evp.h>

#include "common/base/log.h"
#include "common/crypto/crypto_int.h"
#include "common/crypto/hash.h"

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void sha256_fetch(void) {
  sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void) {
  pthread_once(&sha256_once, sha256_fetch);
  if (sha256_md == NULL) {
    fl__crypto_drain_errors("fetch sha256");
    FL_ERROR("crypto", "openssl has no SHA-256 implementation");
    FL_ASSERT(sha256_md != NULL);
  }
  return sha256_md;
}

void fl_sha256(const void *data, size_t len, uint8_t out[FL_SHA256_LEN]) {
  static const uint8_t empty[1];
  unsigned int n = 0;
  int ok = EVP_Digest(data != NULL ? data : empty, len, out, &n, sha256(), NULL);
  FL_ASSERT(ok == 1 && n == FL_SHA256_LEN);
}

fl_status_t fl_sha256_init(fl_sha256_ctx_t *ctx) {
  ctx->md = EVP_MD_CTX_new();
  if (ctx->md == NULL || EVP_DigestInit_ex2(ctx->md, sha256(), NULL) != 1) {
    fl__crypto_drain_errors("sha256 init");
    EVP_MD_CTX_free(ctx->md);
    ctx->md = NULL;
    return FL_ECRYPTO;
  }
  return FL_OK;
}

void fl_sha256_update(fl_sha256_ctx_t *ctx, const void *data, size_t len) {
  if (len == 0) return;
  FL_ASSERT(ctx->md != NULL);
  int ok = EVP_DigestUpdate(ctx->md, data, len);
  FL_ASSERT(ok == 1);
}

void fl_sha256_final(fl_sha256_ctx_t *ctx, uint8_t out[FL_SHA256_LEN]) {
  FL_ASSERT(ctx->md != NULL);
  unsigned int n = 0;
  int ok = EVP_DigestFinal_ex(ctx->md, out, &n);
  FL_ASSERT(ok == 1 && n == FL_SHA256_LEN);
  EVP_MD_CTX_free(ctx->md);
  ctx->md = NULL;
}

void fl_sha256_abort(fl_sha256_ctx_t *ctx) {
  if (ctx == NULL) return;
  EVP_MD_CTX_free(ctx->md);
  ctx->md = NULL;
}
