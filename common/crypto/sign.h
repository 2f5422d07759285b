/* SPDX-License-Identifier: Apache-2.0
 *
 * sign.h: ECDSA P-256 over SHA-256, the only signature scheme of fedledger.
 *
 * A signer holds a private key; a verifier holds a public key (usually taken
 * from a certificate, see x509.h). Signatures are DER-encoded ECDSA-Sig-Value
 * structures in canonical "low-S" form (s <= n/2), as Fabric's BCCSP makes
 * them: fl_signer_sign always produces low-S, and fl_verify rejects high-S
 * and any non-canonical DER with FL_EBADSIG, so a valid signature cannot be
 * re-encoded into a second valid one (no signature malleability).
 *
 * Thread-safety: both handles are immutable after creation; any number of
 * threads may sign or verify with the same handle at once.
 */
#ifndef FL_CRYPTO_SIGN_H
#define FL_CRYPTO_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/hash.h"

/* A DER ECDSA P-256 signature is at most 72 bytes. */
#define FL_SIG_MAX_LEN 72

typedef struct fl_signer_s fl_signer_t;
typedef struct fl_verifier_s fl_verifier_t;

/** Generates a fresh P-256 key pair. On success *out is owned (free with
 *  fl_signer_free). Returns FL_OK or FL_ECRYPTO (*out NULL). */
fl_status_t fl_signer_generate(fl_signer_t **out /* out */);

/** Loads a private key from PEM bytes (PKCS#8 "PRIVATE KEY" or SEC1 "EC
 *  PRIVATE KEY"; encrypted keys are refused, never prompted for). Borrows
 *  pem. Returns FL_OK with *out owned, FL_EMALFORMED when the bytes hold no
 *  private key, FL_EINVAL when the key is not EC P-256. */
fl_status_t fl_signer_from_pem(const void *pem, size_t len,
                               fl_signer_t **out /* out */);

/** Like fl_signer_from_pem, reading the file at path (at most 1 MiB).
 *  Adds FL_NOTFOUND / FL_EIO / FL_ETOOBIG for file problems. */
fl_status_t fl_signer_load_file(const char *path, fl_signer_t **out /* out */);

/** Frees s (and wipes the key). NULL is fine. */
void fl_signer_free(fl_signer_t *s);

/** Signs SHA-256(msg[0..len)). sig_out's previous contents are replaced by
 *  the DER signature (at most FL_SIG_MAX_LEN bytes); the caller owns
 *  sig_out's memory. Returns FL_OK or FL_ECRYPTO (sig_out then empty). */
fl_status_t fl_signer_sign(const fl_signer_t *s, const void *msg, size_t len,
                           fl_sbuf_t *sig_out /* out */);

/** Signs a precomputed SHA-256 digest; fl_signer_sign(m) equals
 *  fl_signer_sign_digest(SHA-256(m)) as far as any verifier can tell. */
fl_status_t fl_signer_sign_digest(const fl_signer_t *s,
                                  const uint8_t digest[FL_SHA256_LEN],
                                  fl_sbuf_t *sig_out /* out */);

/** Writes the private key as unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"),
 *  replacing out's contents. The caller owns out and should wipe it
 *  (OPENSSL_cleanse or memset) before freeing. Returns FL_OK or FL_ECRYPTO. */
fl_status_t fl_signer_to_pem(const fl_signer_t *s, fl_sbuf_t *out /* out */);

/** Returns the public half of s as a new verifier (owned, fl_verifier_free).
 *  Never NULL. */
fl_verifier_t *fl_signer_verifier(const fl_signer_t *s);

/** Loads a public key from SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY").
 *  Returns FL_OK (*out owned), FL_EMALFORMED, or FL_EINVAL (not P-256). */
fl_status_t fl_verifier_from_pem(const void *pem, size_t len,
                                 fl_verifier_t **out /* out */);

/** Writes the public key as SubjectPublicKeyInfo PEM, replacing out's
 *  contents. Returns FL_OK or FL_ECRYPTO. */
fl_status_t fl_verifier_to_pem(const fl_verifier_t *v, fl_sbuf_t *out /* out */);

/** Frees v. NULL is fine. */
void fl_verifier_free(fl_verifier_t *v);

/** Verifies sig over SHA-256(msg). Returns FL_OK when valid; FL_EBADSIG for
 *  anything else about the signature: wrong key, altered message, empty,
 *  oversized, malformed, non-canonical or high-S DER; FL_EINVAL when v is
 *  NULL. Never crashes on any sig bytes. */
fl_status_t fl_verify(const fl_verifier_t *v, const void *msg, size_t len,
                      const uint8_t *sig, size_t siglen);

/** fl_verify over a precomputed SHA-256 digest. */
fl_status_t fl_verify_digest(const fl_verifier_t *v,
                             const uint8_t digest[FL_SHA256_LEN],
                             const uint8_t *sig, size_t siglen);

#endif /* FL_CRYPTO_SIGN_H */
