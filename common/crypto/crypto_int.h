/* SPDX-License-Identifier: Apache-2.0
 *
 * crypto_int.h: internals shared by the files of fl_crypto (not API).
 */
#ifndef FL_CRYPTO_CRYPTO_INT_H
#define FL_CRYPTO_CRYPTO_INT_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/sign.h"

/* Largest PEM/DER file fl_crypto reads (certificates and keys are a few KiB). */
#define FL__CRYPTO_MAX_FILE (1u << 20)

/** Reads a whole regular file of at most max bytes into out (owned). Returns
 *  FL_OK, FL_NOTFOUND, FL_ETOOBIG or FL_EIO. */
fl_status_t fl__read_file(const char *path, size_t max, fl_sbuf_t *out);

/** Clears OpenSSL's thread-local error queue, logging its entries at DEBUG
 *  under module "crypto" with the given context phrase. */
void fl__crypto_drain_errors(const char *what);

/** Borrowed EVP_PKEY of a signer / verifier. */
EVP_PKEY *fl__signer_pkey(const fl_signer_t *s);
EVP_PKEY *fl__verifier_pkey(const fl_verifier_t *v);

/** Wraps pkey (takes a reference: EVP_PKEY_up_ref) as a verifier. Returns
 *  NULL when the key is not EC P-256. */
fl_verifier_t *fl__verifier_wrap(EVP_PKEY *pkey);

/** True when pkey is an EC key on P-256. */
int fl__pkey_is_p256(const EVP_PKEY *pkey);

/** Converts an ASN1_TIME to Unix seconds; returns 0 on success, -1 if the
 *  time cannot be represented. */
int fl__asn1_time_to_unix(const ASN1_TIME *t, int64_t *out);

struct fl_cert_s;
/** Borrowed X509 of a parsed certificate. */
X509 *fl__cert_x509(const struct fl_cert_s *c);

#endif /* FL_CRYPTO_CRYPTO_INT_H */
