/* SPDX-License-Identifier: Apache-2.0
 *
 * msp.h: the membership service provider: which organisations exist, which
 * CAs they trust, which identities are revoked, and whether a certificate
 * or a signature belongs to a valid member with a given role.
 *
 * An fl_msp_t holds, per organisation (mspid), two trust stores: the
 * signing root CAs (identities that sign proposals, endorsements, blocks)
 * and the TLS root CAs (certificates presented in mutual TLS). Validation of
 * a certificate means, in this order:
 *   1. it parses, is not a CA certificate, and has an EC P-256 key;
 *   2. it chains to one of the organisation's root CAs (X509_verify_cert
 *      against that organisation's X509_STORE; roots only, no intermediates);
 *   3. the validation time lies within the validity of the certificate and
 *      of every certificate in its chain;
 *   4. its SHA-256 (over DER) is not on the revocation list;
 *   5. when a role is required, its NodeOU role equals it.
 *
 * Results of step 1-2 are cached by SHA-256 of (kind, mspid, certificate
 * bytes), so a certificate is parsed and chain-checked once; steps 3-5 run
 * on every call because time and the revocation list change.
 *
 * Threads: organisations are added before the MSP is shared (adding is not
 * synchronised). After that, every validate/verify call, fl_msp_revoke and
 * fl_msp_set_time may run from any number of threads at once (one mutex
 * guards the cache, the revocation list and the time; chain checks and
 * signature checks run outside it).
 */
#ifndef FL_CRYPTO_MSP_H
#define FL_CRYPTO_MSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/hash.h"
#include "common/crypto/x509.h"

#define FL_MSPID_MAX 64     /* longest mspid, bytes */
#define FL_MSP_CN_MAX 128   /* CN bytes kept in fl_msp_info_t (truncated) */
#define FL_MSP_CACHE_MAX 4096 /* cached certificates before the cache is reset */
#define FL_MSP_IDENTITY_MAX (64u * 1024) /* largest serialized identity */

typedef struct fl_msp_s fl_msp_t;

/** Which trust store of an organisation a certificate is checked against. */
typedef enum fl_msp_kind_e {
  FL_MSP_SIGNING = 0, /* signing identities (msp/cacerts) */
  FL_MSP_TLS = 1,     /* TLS certificates (msp/tlscacerts) */
} fl_msp_kind_t;

/** What a successful validation learnt. On failure only `reason` is
 *  meaningful. */
typedef struct fl_msp_info_s {
  char mspid[FL_MSPID_MAX + 1]; /* the organisation the cert chains to */
  fl_role_t role;               /* NodeOU role, FL_ROLE_NONE if none */
  uint8_t cert_sha256[FL_SHA256_LEN]; /* SHA-256 of the cert's DER */
  char cn[FL_MSP_CN_MAX + 1];   /* subject CN, truncated */
  int64_t not_after;            /* the leaf's notAfter, Unix seconds */
  const char *reason; /* static text: "ok" or why validation failed */
} fl_msp_info_t;

/** Returns a new, empty MSP (owned, fl_msp_free). Never NULL. */
fl_msp_t *fl_msp_new(void);
/** Frees msp and its cache. No call may be running on it. NULL is fine. */
void fl_msp_free(fl_msp_t *msp);

/** Adds an organisation. root_pem holds one or more PEM CA certificates
 *  (signing roots, required); tls_root_pem likewise for TLS (may be NULL
 *  with tls_len 0: the organisation then has no TLS identities). Borrows
 *  all inputs. Returns FL_OK; FL_EINVAL for an mspid that is empty, longer
 *  than FL_MSPID_MAX or has characters outside [A-Za-z0-9._-], or when a
 *  certificate is not a CA; FL_EEXIST when mspid is already present;
 *  FL_EMALFORMED when the PEM does not parse. Not thread-safe (see top). */
fl_status_t fl_msp_add_org(fl_msp_t *msp, const char *mspid, const void *root_pem,
                           size_t root_len, const void *tls_root_pem, size_t tls_len);

/** Adds an organisation from a Fabric-style MSP directory: every regular
 *  file in DIR/cacerts is a signing root, every one in DIR/tlscacerts a TLS
 *  root. Returns what fl_msp_add_org returns, FL_NOTFOUND when DIR/cacerts
 *  is missing or empty, FL_EIO on read errors. */
fl_status_t fl_msp_add_org_dir(fl_msp_t *msp, const char *mspid, const char *dir);

/** Number of organisations. */
size_t fl_msp_org_count(const fl_msp_t *msp);
/** The i-th mspid (i < count), valid while msp lives. */
const char *fl_msp_org_id(const fl_msp_t *msp, size_t i);

/** Puts the certificate with this DER SHA-256 on the revocation list.
 *  Idempotent. Thread-safe. */
void fl_msp_revoke(fl_msp_t *msp, const uint8_t cert_sha256[FL_SHA256_LEN]);
/** True when the fingerprint is revoked. Thread-safe. */
bool fl_msp_is_revoked(fl_msp_t *msp, const uint8_t cert_sha256[FL_SHA256_LEN]);

/** Sets the validation time (Unix seconds); 0 (the default) means the wall
 *  clock at each call. For tests and for validating historical blocks.
 *  Thread-safe. */
void fl_msp_set_time(fl_msp_t *msp, int64_t unix_secs);

/** Validates a signing certificate given as PEM bytes for organisation
 *  mspid (steps 1-5 above); required FL_ROLE_NONE accepts any role.
 *  Borrows inputs; info may be NULL. Returns:
 *    FL_OK          valid; info filled;
 *    FL_EMALFORMED  the bytes are not a certificate;
 *    FL_EUNTRUSTED  unknown mspid, does not chain to that organisation's
 *                   CAs, expired or not yet valid, a CA cert, or not P-256
 *                   (info->reason says which);
 *    FL_EREVOKED    on the revocation list;
 *    FL_EPERM       valid, but its role is not `required`. */
fl_status_t fl_msp_validate(fl_msp_t *msp, const char *mspid, const void *cert_pem,
                            size_t len, fl_role_t required,
                            fl_msp_info_t *info /* out, optional */);

/** Like fl_msp_validate for an already parsed certificate (for example the
 *  peer certificate of a TLS connection: fl_cert_from_der on it first),
 *  against the trust store `kind`. mspid NULL means: any organisation whose
 *  CAs it chains to (the first in the order they were added);
 *  info->mspid says which. Same return codes. */
fl_status_t fl_msp_validate_cert(fl_msp_t *msp, fl_msp_kind_t kind, const char *mspid,
                                 const fl_cert_t *cert, fl_role_t required,
                                 fl_msp_info_t *info /* out, optional */);

/** Verifies that sig is a valid ECDSA signature over msg by the identity in
 *  sid (a serialized fl.msp.SerializedIdentity: mspid + PEM certificate),
 *  and that this identity is valid with the required role. Borrows inputs;
 *  info may be NULL. Returns FL_OK, FL_EMALFORMED (sid does not decode, is
 *  larger than FL_MSP_IDENTITY_MAX, or has an empty mspid), any code of
 *  fl_msp_validate, or FL_EBADSIG when the identity is valid but the
 *  signature is not. */
fl_status_t fl_msp_verify_signature(fl_msp_t *msp, const uint8_t *sid, size_t sid_len,
                                    const void *msg, size_t msg_len, const uint8_t *sig,
                                    size_t sig_len, fl_role_t required,
                                    fl_msp_info_t *info /* out, optional */);

/** Encodes an fl.msp.SerializedIdentity {mspid, cert_pem} into out
 *  (contents replaced). Returns FL_OK or FL_EINVAL (empty mspid). */
fl_status_t fl_msp_serialize_identity(const char *mspid, const void *cert_pem,
                                      size_t len, fl_sbuf_t *out /* out */);

/** Cache counters since creation (for tests and metrics). Thread-safe. */
void fl_msp_cache_stats(fl_msp_t *msp, uint64_t *hits /* out */,
                        uint64_t *misses /* out */, size_t *entries /* out */);

#endif /* FL_CRYPTO_MSP_H */
