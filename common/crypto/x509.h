/* SPDX-License-Identifier: Apache-2.0
 *
 * x509.h: X.509 certificates: parsing, the accessors fedledger needs
 * (fingerprint, subject CN, OUs, role, validity, public key) and issuing
 * (for cryptogen and tests).
 *
 * Roles follow Fabric's NodeOUs: a certificate's role is the first subject
 * OU whose value is exactly "orderer", "peer", "admin" or "client"; other
 * OUs are ignored. A certificate is parsed once into an immutable fl_cert_t
 * that caches its DER bytes, SHA-256 fingerprint, CN, OUs and role, so all
 * accessors are cheap and any number of threads may read a cert at once.
 */
#ifndef FL_CRYPTO_X509_H
#define FL_CRYPTO_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/hash.h"
#include "common/crypto/sign.h"

typedef enum fl_role_e {
  FL_ROLE_NONE = 0, /* no role OU; as a requirement: any role accepted */
  FL_ROLE_ORDERER = 1,
  FL_ROLE_PEER = 2,
  FL_ROLE_ADMIN = 3,
  FL_ROLE_CLIENT = 4,
} fl_role_t;

/** Returns the OU value of role ("orderer", "peer", "admin", "client") or
 *  "none". Never NULL. */
const char *fl_role_name(fl_role_t role);
/** Parses an OU value as written by fl_role_name; FL_ROLE_NONE if it is
 *  not one of the four roles. */
fl_role_t fl_role_parse(const char *s);

typedef struct fl_cert_s fl_cert_t;

/** Parses the first certificate in PEM bytes. Borrows pem. Returns FL_OK
 *  with *out owned (fl_cert_free), or FL_EMALFORMED. */
fl_status_t fl_cert_from_pem(const void *pem, size_t len, fl_cert_t **out /* out */);
/** Parses exactly one DER certificate (no trailing bytes). Borrows der.
 *  Returns FL_OK with *out owned, or FL_EMALFORMED. */
fl_status_t fl_cert_from_der(const void *der, size_t len, fl_cert_t **out /* out */);
/** Reads a PEM certificate file (at most 1 MiB). FL_NOTFOUND, FL_EIO,
 *  FL_ETOOBIG, FL_EMALFORMED on failure. */
fl_status_t fl_cert_load_file(const char *path, fl_cert_t **out /* out */);
/** Parses every certificate in a PEM bundle (one or more concatenated
 *  "CERTIFICATE" blocks). On success *certs is an owned array of *n owned
 *  certs: free with fl_cert_list_free(*certs, *n). Returns FL_EMALFORMED
 *  when a block does not parse or there is no certificate at all. */
fl_status_t fl_cert_list_from_pem(const void *pem, size_t len,
                                  fl_cert_t ***certs /* out */, size_t *n /* out */);
/** Frees n certs and the array. NULL-safe. */
void fl_cert_list_free(fl_cert_t **certs, size_t n);
/** Frees c. NULL is fine. */
void fl_cert_free(fl_cert_t *c);
/** Returns an independent copy of c (owned, fl_cert_free). Never NULL. */
fl_cert_t *fl_cert_dup(const fl_cert_t *c);

/** The DER bytes; view valid while c lives. */
fl_buf_t fl_cert_der(const fl_cert_t *c);
/** SHA-256 of the DER bytes (the identity's fingerprint, used by the
 *  revocation list); 32 bytes valid while c lives. */
const uint8_t *fl_cert_sha256(const fl_cert_t *c);
/** Subject CN ("" when absent); valid while c lives. */
const char *fl_cert_subject_cn(const fl_cert_t *c);
/** Subject O ("" when absent); valid while c lives. */
const char *fl_cert_subject_org(const fl_cert_t *c);
/** Number of subject OUs, and the i-th (i < count; valid while c lives). */
size_t fl_cert_ou_count(const fl_cert_t *c);
const char *fl_cert_ou(const fl_cert_t *c, size_t i);
/** The NodeOU role, FL_ROLE_NONE if none. */
fl_role_t fl_cert_role(const fl_cert_t *c);
/** Validity bounds in Unix seconds. */
int64_t fl_cert_not_before(const fl_cert_t *c);
int64_t fl_cert_not_after(const fl_cert_t *c);
/** True when basicConstraints says CA:TRUE. */
bool fl_cert_is_ca(const fl_cert_t *c);
/** The public key, borrowed (valid while c lives), or NULL when it is not
 *  an EC P-256 key (such a certificate can verify nothing in fedledger). */
const fl_verifier_t *fl_cert_pubkey(const fl_cert_t *c);
/** Writes c as PEM, replacing out's contents. */
void fl_cert_to_pem(const fl_cert_t *c, fl_sbuf_t *out /* out */);

/* Key usage and extended key usage bits for fl_cert_issue. */
enum {
  FL_KU_DIGITAL_SIGNATURE = 1u << 0,
  FL_KU_KEY_ENCIPHERMENT = 1u << 1,
  FL_KU_KEY_AGREEMENT = 1u << 2,
  FL_KU_KEY_CERT_SIGN = 1u << 3,
  FL_KU_CRL_SIGN = 1u << 4,
};
enum {
  FL_EKU_SERVER_AUTH = 1u << 0,
  FL_EKU_CLIENT_AUTH = 1u << 1,
};

/** What a certificate to issue says. All strings borrowed; NULL or 0-count
 *  fields are left out. */
typedef struct fl_cert_template_s {
  const char *country, *province, *locality; /* C, ST, L */
  const char *org;                            /* O */
  const char *const *ous;                     /* OU values, in order */
  size_t n_ous;
  const char *cn; /* CN, required */
  bool is_ca;     /* basicConstraints critical CA:TRUE / CA:FALSE */
  unsigned key_usage;     /* FL_KU_* bits (critical), 0 = none */
  unsigned ext_key_usage; /* FL_EKU_* bits, 0 = none */
  const char *const *dns_names; /* subjectAltName DNS entries */
  size_t n_dns;
  const char *const *ips; /* subjectAltName IP entries (v4 or v6 text) */
  size_t n_ips;
  int64_t not_before, not_after; /* Unix seconds */
} fl_cert_template_t;

/** Issues a certificate for subject_key's public key, signed (ECDSA
 *  SHA-256) by issuer_key. issuer NULL makes it self-signed (then
 *  issuer_key must be subject_key). Serial numbers are 128 random bits.
 *  SubjectKeyIdentifier and AuthorityKeyIdentifier are added. Borrows all
 *  inputs. Returns FL_OK with *out owned, FL_EINVAL (missing CN, bad IP
 *  text, not_after < not_before, issuer key does not match issuer), or
 *  FL_ECRYPTO. */
fl_status_t fl_cert_issue(const fl_cert_template_t *t,
                          const fl_signer_t *subject_key,
                          const fl_cert_t *issuer, const fl_signer_t *issuer_key,
                          fl_cert_t **out /* out */);

#endif /* FL_CRYPTO_X509_H */
