/* SPDX-License-Identifier: Apache-2.0
 *
 * hash.h: SHA-256, one-shot and incremental.
 *
 * Every hash in fedledger (block headers, transaction ids, blob keys, model
 * hashes, certificate fingerprints) is SHA-256 through these functions. They
 * use OpenSSL 3's EVP interface with the digest fetched once per process, so
 * hashing is safe from any thread.
 */
#ifndef FL_CRYPTO_HASH_H
#define FL_CRYPTO_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "common/base/status.h"

#define FL_SHA256_LEN 32

/** Incremental SHA-256 state. Caller memory; the fields are private. Use
 *  init, any number of updates, then final (which releases the state) or
 *  fl_sha256_abort to drop it without a result. */
typedef struct fl_sha256_ctx_s {
  struct evp_md_ctx_st *md; /* private */
} fl_sha256_ctx_t;

/** Hashes len bytes at data (data may be NULL when len is 0) into out.
 *  Never fails: an OpenSSL failure here means a broken library and aborts. */
void fl_sha256(const void *data, size_t len, uint8_t out[FL_SHA256_LEN]);

/** Starts an incremental hash in caller memory. Returns FL_OK; on success the
 *  caller must end with fl_sha256_final or fl_sha256_abort. */
fl_status_t fl_sha256_init(fl_sha256_ctx_t *ctx);
/** Adds len bytes (data may be NULL when len is 0). */
void fl_sha256_update(fl_sha256_ctx_t *ctx, const void *data, size_t len);
/** Writes the digest into out and releases ctx (it may be init'ed again). */
void fl_sha256_final(fl_sha256_ctx_t *ctx, uint8_t out[FL_SHA256_LEN]);
/** Releases ctx without producing a digest. Safe on a zeroed or finalised
 *  ctx. */
void fl_sha256_abort(fl_sha256_ctx_t *ctx);

#endif /* FL_CRYPTO_HASH_H */
