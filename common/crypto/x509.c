/* SPDX-License-Identifier: Apache-2.0
 *
 * x509.c: certificate parsing into an immutable, fully cached fl_cert_t,
 * and issuing (OpenSSL 3 X509 + X509V3 extension APIs).
 */
#include <limits.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/crypto/crypto_int.h"
#include "common/crypto/rand.h"
#include "common/crypto/x509.h"

struct fl_cert_s {
  X509 *x509;
  uint8_t *der;
  size_t der_len;
  uint8_t sha[FL_SHA256_LEN];
  char *cn, *org;
  char **ous;
  size_t n_ous;
  fl_role_t role;
  int64_t not_before, not_after;
  bool is_ca;
  fl_verifier_t *pub; /* NULL when the key is not P-256 */
};

static const char *const role_names[] = {
    [FL_ROLE_NONE] = "none",   [FL_ROLE_ORDERER] = "orderer",
    [FL_ROLE_PEER] = "peer",   [FL_ROLE_ADMIN] = "admin",
    [FL_ROLE_CLIENT] = "client",
};

const char *fl_role_name(fl_role_t role) {
  if ((unsigned)role >= sizeof role_names / sizeof role_names[0]) return "none";
  return role_names[role];
}

fl_role_t fl_role_parse(const char *s) {
  if (s == NULL) return FL_ROLE_NONE;
  for (unsigned i = FL_ROLE_ORDERER; i <= FL_ROLE_CLIENT; i++)
    if (strcmp(s, role_names[i]) == 0) return (fl_role_t)i;
  return FL_ROLE_NONE;
}

X509 *fl__cert_x509(const struct fl_cert_s *c) { return c->x509; }

/* Returns an owned UTF-8 copy of an entry's value, or NULL when it does not
 * convert or contains a NUL byte (a classic CN-spoofing trick). */
static char *entry_utf8(const X509_NAME_ENTRY *e) {
  unsigned char *u = NULL;
  int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
  if (n < 0) return NULL;
  char *s = NULL;
  if (memchr(u, '\0', (size_t)n) == NULL) s = fl_strndup((const char *)u, (size_t)n);
  OPENSSL_free(u);
  return s;
}

/* First entry of nid, "" when absent; NULL on a bad value. */
static char *name_first(const X509_NAME *nm, int nid) {
  int i = X509_NAME_get_index_by_NID(nm, nid, -1);
  if (i < 0) return fl_strdup("");
  return entry_utf8(X509_NAME_get_entry(nm, i));
}

void fl_cert_free(fl_cert_t *c) {
  if (c == NULL) return;
  X509_free(c->x509);
  fl_free(c->der);
  fl_free(c->cn);
  fl_free(c->org);
  for (size_t i = 0; i < c->n_ous; i++) fl_free(c->ous[i]);
  fl_free(c->ous);
  fl_verifier_free(c->pub);
  fl_free(c);
}

/* Takes x; builds the cache. Returns NULL (x freed) when it is unusable. */
static fl_cert_t *cert_wrap(X509 *x) {
  fl_cert_t *c = fl_calloc(1, sizeof *c);
  c->x509 = x;
  unsigned char *der = NULL;
  int dlen = i2d_X509(x, &der);
  if (dlen <= 0) goto fail;
  c->der = fl_memdup(der, (size_t)dlen);
  c->der_len = (size_t)dlen;
  OPENSSL_free(der);
  der = NULL; /* the fail path frees der: never twice (found by fuzz_block) */
  fl_sha256(c->der, c->der_len, c->sha);

  const X509_NAME *subj = X509_get_subject_name(x);
  if (subj == NULL) goto fail;
  c->cn = name_first(subj, NID_commonName);
  c->org = name_first(subj, NID_organizationName);
  if (c->cn == NULL || c->org == NULL) goto fail;
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subj, NID_organizationalUnitName, i)) >= 0;) {
    char *ou = entry_utf8(X509_NAME_get_entry(subj, i));
    if (ou == NULL) goto fail;
    c->ous = fl_reallocarray(c->ous, c->n_ous + 1, sizeof *c->ous);
    c->ous[c->n_ous++] = ou;
    if (c->role == FL_ROLE_NONE) c->role = fl_role_parse(ou);
  }
  if (fl__asn1_time_to_unix(X509_get0_notBefore(x), &c->not_before) != 0 ||
      fl__asn1_time_to_unix(X509_get0_notAfter(x), &c->not_after) != 0)
    goto fail;
  uint32_t flags = X509_get_extension_flags(x);
  if (flags & EXFLAG_INVALID) goto fail;
  c->is_ca = (flags & EXFLAG_CA) != 0;
  EVP_PKEY *pk = X509_get0_pubkey(x);
  if (pk == NULL) goto fail;
  c->pub = fl__verifier_wrap(pk);
  return c;
fail:
  fl__crypto_drain_errors("parse certificate");
  OPENSSL_free(der);
  fl_cert_free(c);
  return NULL;
}

fl_status_t fl_cert_from_der(const void *der, size_t len, fl_cert_t **out) {
  *out = NULL;
  if (der == NULL || len == 0 || len > INT_MAX) return FL_EMALFORMED;
  const unsigned char *p = der;
  X509 *x = d2i_X509(NULL, &p, (long)len);
  if (x == NULL || p != (const unsigned char *)der + len) {
    X509_free(x);
    fl__crypto_drain_errors("d2i_X509");
    return FL_EMALFORMED;
  }
  *out = cert_wrap(x);
  return *out != NULL ? FL_OK : FL_EMALFORMED;
}

fl_status_t fl_cert_from_pem(const void *pem, size_t len, fl_cert_t **out) {
  *out = NULL;
  if (pem == NULL || len == 0 || len > INT_MAX) return FL_EMALFORMED;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if (bio == NULL) return FL_ECRYPTO;
  X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (x == NULL) {
    fl__crypto_drain_errors("PEM_read_bio_X509");
    return FL_EMALFORMED;
  }
  *out = cert_wrap(x);
  return *out != NULL ? FL_OK : FL_EMALFORMED;
}

fl_status_t fl_cert_load_file(const char *path, fl_cert_t **out) {
  *out = NULL;
  fl_sbuf_t b = {0};
  FL_FORWARD(fl__read_file(path, FL__CRYPTO_MAX_FILE, &b));
  fl_status_t rc = fl_cert_from_pem(b.data, b.len, out);
  fl_sbuf_free(&b);
  return rc;
}

void fl_cert_list_free(fl_cert_t **certs, size_t n) {
  if (certs == NULL) return;
  for (size_t i = 0; i < n; i++) fl_cert_free(certs[i]);
  fl_free(certs);
}

fl_status_t fl_cert_list_from_pem(const void *pem, size_t len, fl_cert_t ***certs,
                                  size_t *n) {
  *certs = NULL;
  *n = 0;
  if (pem == NULL || len == 0 || len > INT_MAX) return FL_EMALFORMED;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if (bio == NULL) return FL_ECRYPTO;
  fl_cert_t **list = NULL;
  size_t count = 0;
  fl_status_t rc = FL_OK;
  for (;;) {
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (x == NULL) {
      unsigned long e = ERR_peek_last_error();
      /* Running out of PEM blocks is the normal end of the bundle. */
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;
      }
      fl__crypto_drain_errors("PEM bundle");
      rc = FL_EMALFORMED;
      break;
    }
    fl_cert_t *c = cert_wrap(x);
    if (c == NULL) {
      rc = FL_EMALFORMED;
      break;
    }
    list = fl_reallocarray(list, count + 1, sizeof *list);
    list[count++] = c;
  }
  BIO_free(bio);
  if (rc == FL_OK && count == 0) rc = FL_EMALFORMED;
  if (rc != FL_OK) {
    fl_cert_list_free(list, count);
    return rc;
  }
  *certs = list;
  *n = count;
  return FL_OK;
}

fl_cert_t *fl_cert_dup(const fl_cert_t *c) {
  FL_ASSERT(X509_up_ref(c->x509) == 1);
  fl_cert_t *d = cert_wrap(c->x509);
  FL_ASSERT(d != NULL); /* c parsed, so its copy parses too */
  return d;
}

fl_buf_t fl_cert_der(const fl_cert_t *c) { return FL_BUF(c->der, c->der_len); }
const uint8_t *fl_cert_sha256(const fl_cert_t *c) { return c->sha; }
const char *fl_cert_subject_cn(const fl_cert_t *c) { return c->cn; }
const char *fl_cert_subject_org(const fl_cert_t *c) { return c->org; }
size_t fl_cert_ou_count(const fl_cert_t *c) { return c->n_ous; }
const char *fl_cert_ou(const fl_cert_t *c, size_t i) {
  return i < c->n_ous ? c->ous[i] : NULL;
}
fl_role_t fl_cert_role(const fl_cert_t *c) { return c->role; }
int64_t fl_cert_not_before(const fl_cert_t *c) { return c->not_before; }
int64_t fl_cert_not_after(const fl_cert_t *c) { return c->not_after; }
bool fl_cert_is_ca(const fl_cert_t *c) { return c->is_ca; }
const fl_verifier_t *fl_cert_pubkey(const fl_cert_t *c) { return c->pub; }

void fl_cert_to_pem(const fl_cert_t *c, fl_sbuf_t *out) {
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out->len = 0;
  fl_sbuf_append_str(out, "-----BEGIN CERTIFICATE-----\n");
  size_t col = 0;
  for (size_t i = 0; i < c->der_len; i += 3) {
    uint32_t v = (uint32_t)c->der[i] << 16;
    size_t rem = c->der_len - i;
    if (rem > 1) v |= (uint32_t)c->der[i + 1] << 8;
    if (rem > 2) v |= c->der[i + 2];
    char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63],
                 rem > 1 ? b64[(v >> 6) & 63] : '=', rem > 2 ? b64[v & 63] : '='};
    fl_sbuf_append(out, q, 4);
    col += 4;
    if (col == 64) {
      fl_sbuf_append(out, "\n", 1);
      col = 0;
    }
  }
  if (col != 0) fl_sbuf_append(out, "\n", 1);
  fl_sbuf_append_str(out, "-----END CERTIFICATE-----\n");
}

/* ---- issuing ---------------------------------------------------------- */

/* DNS names go into an OpenSSL config-style string, so only the LDH
 * characters (plus '*' and '.') may appear: no ',' or ':' injection. */
static bool dns_name_ok(const char *s) {
  if (s == NULL || *s == '\0' || strlen(s) > 253) return false;
  for (const char *p = s; *p; p++) {
    char ch = *p;
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '*'))
      return false;
  }
  return true;
}

static bool ip_ok(const char *s) {
  ASN1_OCTET_STRING *o = a2i_IPADDRESS(s);
  if (o == NULL) {
    ERR_clear_error();
    return false;
  }
  ASN1_OCTET_STRING_free(o);
  return true;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
  /* X509V3_EXT_nconf_nid takes a non-const value it does not modify. */
  char *v = fl_strdup(value);
  X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, v);
  fl_free(v);
  if (ext == NULL) return -1;
  int ok = X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? 0 : -1;
}

static int add_name(X509_NAME *nm, const char *field, const char *value) {
  if (value == NULL) return 0;
  return X509_NAME_add_entry_by_txt(nm, field, MBSTRING_UTF8,
                                    (const unsigned char *)value, -1, -1, 0) == 1
             ? 0 : -1;
}

fl_status_t fl_cert_issue(const fl_cert_template_t *t, const fl_signer_t *subject_key,
                          const fl_cert_t *issuer, const fl_signer_t *issuer_key,
                          fl_cert_t **out) {
  *out = NULL;
  if (t->cn == NULL || *t->cn == '\0' || t->not_after < t->not_before ||
      (issuer == NULL && issuer_key != subject_key))
    return FL_EINVAL;
  for (size_t i = 0; i < t->n_dns; i++)
    if (!dns_name_ok(t->dns_names[i])) return FL_EINVAL;
  for (size_t i = 0; i < t->n_ips; i++)
    if (!ip_ok(t->ips[i])) return FL_EINVAL;
  if (issuer != NULL &&
      X509_check_private_key(issuer->x509, fl__signer_pkey(issuer_key)) != 1) {
    ERR_clear_error();
    return FL_EINVAL;
  }

  fl_status_t rc = FL_ECRYPTO;
  X509 *x = X509_new();
  X509_NAME *nm = X509_NAME_new();
  BIGNUM *serial = NULL;
  fl_sbuf_t s = {0};
  if (x == NULL || nm == NULL || X509_set_version(x, X509_VERSION_3) != 1) goto fail;

  uint8_t rnd[16];
  if (fl_random_bytes(rnd, sizeof rnd) != FL_OK) goto fail;
  rnd[0] &= 0x7f; /* positive and at most 16 DER content bytes */
  rnd[0] |= 0x40; /* and never shorter, so serials have a fixed size */
  serial = BN_bin2bn(rnd, sizeof rnd, NULL);
  if (serial == NULL || BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL)
    goto fail;

  rc = FL_EINVAL; /* name entries fail on bad input (e.g. C not 2 letters) */
  if (add_name(nm, "C", t->country) || add_name(nm, "ST", t->province) ||
      add_name(nm, "L", t->locality) || add_name(nm, "O", t->org))
    goto fail;
  for (size_t i = 0; i < t->n_ous; i++)
    if (add_name(nm, "OU", t->ous[i])) goto fail;
  if (add_name(nm, "CN", t->cn)) goto fail;
  rc = FL_ECRYPTO;
  if (X509_set_subject_name(x, nm) != 1 ||
      X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->x509) : nm) != 1)
    goto fail;
  if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)t->not_before) == NULL ||
      ASN1_TIME_set(X509_getm_notAfter(x), (time_t)t->not_after) == NULL)
    goto fail;
  if (X509_set_pubkey(x, fl__signer_pkey(subject_key)) != 1) goto fail;

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer->x509 : x, x, NULL, NULL, 0);
  if (add_ext(x, &ctx, NID_basic_constraints,
              t->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE"))
    goto fail;
  if (t->key_usage) {
    fl_sbuf_append_str(&s, "critical");
    if (t->key_usage & FL_KU_DIGITAL_SIGNATURE) fl_sbuf_append_str(&s, ",digitalSignature");
    if (t->key_usage & FL_KU_KEY_ENCIPHERMENT) fl_sbuf_append_str(&s, ",keyEncipherment");
    if (t->key_usage & FL_KU_KEY_AGREEMENT) fl_sbuf_append_str(&s, ",keyAgreement");
    if (t->key_usage & FL_KU_KEY_CERT_SIGN) fl_sbuf_append_str(&s, ",keyCertSign");
    if (t->key_usage & FL_KU_CRL_SIGN) fl_sbuf_append_str(&s, ",cRLSign");
    if (add_ext(x, &ctx, NID_key_usage, fl_sbuf_cstr(&s))) goto fail;
  }
  if (t->ext_key_usage) {
    s.len = 0;
    if (t->ext_key_usage & FL_EKU_SERVER_AUTH) fl_sbuf_append_str(&s, "serverAuth,");
    if (t->ext_key_usage & FL_EKU_CLIENT_AUTH) fl_sbuf_append_str(&s, "clientAuth,");
    s.len--; /* trailing comma */
    if (add_ext(x, &ctx, NID_ext_key_usage, fl_sbuf_cstr(&s))) goto fail;
  }
  if (t->n_dns + t->n_ips > 0) {
    s.len = 0;
    for (size_t i = 0; i < t->n_dns; i++) fl_sbuf_printf(&s, "DNS:%s,", t->dns_names[i]);
    for (size_t i = 0; i < t->n_ips; i++) fl_sbuf_printf(&s, "IP:%s,", t->ips[i]);
    s.len--;
    if (add_ext(x, &ctx, NID_subject_alt_name, fl_sbuf_cstr(&s))) goto fail;
  }
  if (add_ext(x, &ctx, NID_subject_key_identifier, "hash")) goto fail;
  /* RFC 5280 4.2.1.1: AKI may be left out of a self-signed CA. */
  if (issuer != NULL && add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
    goto fail;
  if (X509_sign(x, fl__signer_pkey(issuer_key), EVP_sha256()) <= 0) goto fail;

  X509_NAME_free(nm);
  BN_free(serial);
  fl_sbuf_free(&s);
  *out = cert_wrap(x);
  return *out != NULL ? FL_OK : FL_ECRYPTO;
fail:
  fl__crypto_drain_errors("issue certificate");
  X509_free(x);
  X509_NAME_free(nm);
  BN_free(serial);
  fl_sbuf_free(&s);
  return rc;
}
