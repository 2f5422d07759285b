/* SPDX-License-Identifier: Apache-2.0
 *
 * msp.c: organisations, trust stores, the verified-certificate cache and
 * the revocation list (see msp.h for the validation steps).
 *
 * Invariants:
 *   1. orgs[] never changes once validation calls may run (msp.h, Threads).
 *   2. A cache entry holds a certificate that passed steps 1-2 for its key;
 *      [nb, na] is the intersection of the validity periods of its chain.
 *   3. An entry is freed when its refcount drops to 0; the table holds one
 *      reference while the entry is linked, each caller one while using it.
 *   4. mu guards buckets, n_entries, revoked[], now, hits and misses.
 *   5. Chain checks never depend on time (X509_V_FLAG_NO_CHECK_TIME): time is
 *      checked against [nb, na] on every call, so cached results stay right
 *      when the clock (or fl_msp_set_time) moves.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/crypto/crypto_int.h"
#include "common/crypto/msp.h"
#include "fl/msp/identity.pb-c.h"

#define CACHE_BUCKETS 1024

typedef struct org_s {
  char *mspid;
  X509_STORE *store[2]; /* [FL_MSP_SIGNING], [FL_MSP_TLS]; TLS may be NULL */
} org_t;

typedef struct centry_s {
  struct centry_s *next;
  uint8_t key[FL_SHA256_LEN];
  unsigned refs;
  fl_cert_t *cert;
  size_t org;
  int64_t nb, na;
} centry_t;

struct fl_msp_s {
  org_t *orgs;
  size_t n_orgs;
  pthread_mutex_t mu;
  centry_t *buckets[CACHE_BUCKETS];
  size_t n_entries;
  uint8_t (*revoked)[FL_SHA256_LEN]; /* sorted */
  size_t n_revoked;
  int64_t now; /* 0 = wall clock */
  uint64_t hits, misses;
};

fl_msp_t *fl_msp_new(void) {
  fl_msp_t *m = fl_calloc(1, sizeof *m);
  FL_ASSERT(pthread_mutex_init(&m->mu, NULL) == 0);
  return m;
}

static void centry_free(centry_t *e) {
  fl_cert_free(e->cert);
  fl_free(e);
}

/* Drops the table's references to every entry. Caller holds mu. */
static void cache_clear_locked(fl_msp_t *m) {
  for (size_t b = 0; b < CACHE_BUCKETS; b++) {
    centry_t *e = m->buckets[b];
    while (e != NULL) {
      centry_t *next = e->next;
      if (--e->refs == 0) centry_free(e);
      e = next;
    }
    m->buckets[b] = NULL;
  }
  m->n_entries = 0;
}

void fl_msp_free(fl_msp_t *m) {
  if (m == NULL) return;
  cache_clear_locked(m);
  for (size_t i = 0; i < m->n_orgs; i++) {
    fl_free(m->orgs[i].mspid);
    X509_STORE_free(m->orgs[i].store[0]);
    X509_STORE_free(m->orgs[i].store[1]);
  }
  fl_free(m->orgs);
  fl_free(m->revoked);
  pthread_mutex_destroy(&m->mu);
  fl_free(m);
}

static bool mspid_ok(const char *id) {
  size_t n = id != NULL ? strlen(id) : 0;
  if (n == 0 || n > FL_MSPID_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return false;
  }
  return true;
}

static long org_find(const fl_msp_t *m, const char *mspid) {
  for (size_t i = 0; i < m->n_orgs; i++)
    if (strcmp(m->orgs[i].mspid, mspid) == 0) return (long)i;
  return -1;
}

/* Builds a trust store from a PEM bundle of CA certificates. */
static fl_status_t make_store(const void *pem, size_t len, X509_STORE **out) {
  *out = NULL;
  fl_cert_t **certs = NULL;
  size_t n = 0;
  FL_FORWARD(fl_cert_list_from_pem(pem, len, &certs, &n));
  fl_status_t rc = FL_OK;
  X509_STORE *st = X509_STORE_new();
  if (st == NULL) {
    rc = FL_ECRYPTO;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    if (!fl_cert_is_ca(certs[i])) {
      rc = FL_EINVAL;
      goto done;
    }
    if (X509_STORE_add_cert(st, fl__cert_x509(certs[i])) != 1) {
      fl__crypto_drain_errors("X509_STORE_add_cert");
      rc = FL_ECRYPTO;
      goto done;
    }
  }
done:
  fl_cert_list_free(certs, n);
  if (rc != FL_OK) {
    X509_STORE_free(st);
    return rc;
  }
  *out = st;
  return FL_OK;
}

fl_status_t fl_msp_add_org(fl_msp_t *m, const char *mspid, const void *root_pem,
                           size_t root_len, const void *tls_root_pem, size_t tls_len) {
  if (!mspid_ok(mspid)) return FL_EINVAL;
  if (org_find(m, mspid) >= 0) return FL_EEXIST;
  X509_STORE *sign = NULL, *tls = NULL;
  FL_FORWARD(make_store(root_pem, root_len, &sign));
  if (tls_root_pem != NULL && tls_len > 0) {
    fl_status_t rc = make_store(tls_root_pem, tls_len, &tls);
    if (rc != FL_OK) {
      X509_STORE_free(sign);
      return rc;
    }
  }
  m->orgs = fl_reallocarray(m->orgs, m->n_orgs + 1, sizeof *m->orgs);
  m->orgs[m->n_orgs++] = (org_t){.mspid = fl_strdup(mspid), .store = {sign, tls}};
  return FL_OK;
}

/* Concatenates every regular, non-hidden file of dir into out. */
static fl_status_t read_dir_pems(const char *dir, fl_sbuf_t *out) {
  DIR *d = opendir(dir);
  if (d == NULL) return FL_NOTFOUND;
  fl_status_t rc = FL_OK;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    char *path = fl_sprintf("%s/%s", dir, de->d_name);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      fl_sbuf_t one = {0};
      rc = fl__read_file(path, FL__CRYPTO_MAX_FILE, &one);
      if (rc == FL_OK) {
        fl_sbuf_append(out, one.data, one.len);
        fl_sbuf_append(out, "\n", 1);
      }
      fl_sbuf_free(&one);
    }
    fl_free(path);
    if (rc != FL_OK) break;
  }
  closedir(d);
  return rc;
}

fl_status_t fl_msp_add_org_dir(fl_msp_t *m, const char *mspid, const char *dir) {
  fl_sbuf_t roots = {0}, tls = {0};
  char *p1 = fl_sprintf("%s/cacerts", dir), *p2 = fl_sprintf("%s/tlscacerts", dir);
  fl_status_t rc = read_dir_pems(p1, &roots);
  if (rc == FL_OK && roots.len == 0) rc = FL_NOTFOUND;
  if (rc == FL_OK) {
    fl_status_t trc = read_dir_pems(p2, &tls);
    if (trc != FL_OK && trc != FL_NOTFOUND) rc = trc;
  }
  if (rc == FL_OK) rc = fl_msp_add_org(m, mspid, roots.data, roots.len, tls.data, tls.len);
  fl_free(p1);
  fl_free(p2);
  fl_sbuf_free(&roots);
  fl_sbuf_free(&tls);
  return rc;
}

size_t fl_msp_org_count(const fl_msp_t *m) { return m->n_orgs; }
const char *fl_msp_org_id(const fl_msp_t *m, size_t i) {
  return i < m->n_orgs ? m->orgs[i].mspid : NULL;
}

/* ---- revocation and time ---------------------------------------------- */

/* Index of the first entry >= sha. Caller holds mu. */
static size_t revoked_lower_bound(const fl_msp_t *m, const uint8_t *sha) {
  size_t lo = 0, hi = m->n_revoked;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (memcmp(m->revoked[mid], sha, FL_SHA256_LEN) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static bool revoked_locked(const fl_msp_t *m, const uint8_t *sha) {
  size_t i = revoked_lower_bound(m, sha);
  return i < m->n_revoked && memcmp(m->revoked[i], sha, FL_SHA256_LEN) == 0;
}

void fl_msp_revoke(fl_msp_t *m, const uint8_t sha[FL_SHA256_LEN]) {
  pthread_mutex_lock(&m->mu);
  if (!revoked_locked(m, sha)) {
    size_t i = revoked_lower_bound(m, sha);
    m->revoked = fl_reallocarray(m->revoked, m->n_revoked + 1, sizeof *m->revoked);
    memmove(m->revoked[i + 1], m->revoked[i], (m->n_revoked - i) * sizeof *m->revoked);
    memcpy(m->revoked[i], sha, FL_SHA256_LEN);
    m->n_revoked++;
  }
  pthread_mutex_unlock(&m->mu);
}

bool fl_msp_is_revoked(fl_msp_t *m, const uint8_t sha[FL_SHA256_LEN]) {
  pthread_mutex_lock(&m->mu);
  bool r = revoked_locked(m, sha);
  pthread_mutex_unlock(&m->mu);
  return r;
}

void fl_msp_set_time(fl_msp_t *m, int64_t unix_secs) {
  pthread_mutex_lock(&m->mu);
  m->now = unix_secs;
  pthread_mutex_unlock(&m->mu);
}

void fl_msp_cache_stats(fl_msp_t *m, uint64_t *hits, uint64_t *misses, size_t *entries) {
  pthread_mutex_lock(&m->mu);
  *hits = m->hits;
  *misses = m->misses;
  *entries = m->n_entries;
  pthread_mutex_unlock(&m->mu);
}

/* ---- chain checks and the cache ----------------------------------------- */

/* Step 2 against one store; on success sets the chain's validity window. */
static fl_status_t chain_check(X509_STORE *store, const fl_cert_t *cert, int64_t *nb,
                               int64_t *na, const char **reason) {
  if (store == NULL) {
    *reason = "organisation has no CA of this kind";
    return FL_EUNTRUSTED;
  }
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  if (ctx == NULL || X509_STORE_CTX_init(ctx, store, fl__cert_x509(cert), NULL) != 1) {
    fl__crypto_drain_errors("X509_STORE_CTX_init");
    X509_STORE_CTX_free(ctx);
    *reason = "openssl error";
    return FL_ECRYPTO;
  }
  X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_NO_CHECK_TIME);
  fl_status_t rc = FL_OK;
  if (X509_verify_cert(ctx) != 1) {
    *reason = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    rc = FL_EUNTRUSTED;
  } else {
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    *nb = INT64_MIN;
    *na = INT64_MAX;
    for (int i = 0; i < sk_X509_num(chain); i++) {
      X509 *x = sk_X509_value(chain, i);
      int64_t b, a;
      if (fl__asn1_time_to_unix(X509_get0_notBefore(x), &b) != 0 ||
          fl__asn1_time_to_unix(X509_get0_notAfter(x), &a) != 0) {
        *reason = "unreadable validity period in chain";
        rc = FL_EUNTRUSTED;
        break;
      }
      if (b > *nb) *nb = b;
      if (a < *na) *na = a;
    }
  }
  ERR_clear_error();
  X509_STORE_CTX_free(ctx);
  return rc;
}

static void centry_release(fl_msp_t *m, centry_t *e) {
  pthread_mutex_lock(&m->mu);
  bool last = --e->refs == 0;
  pthread_mutex_unlock(&m->mu);
  if (last) centry_free(e);
}

static void cache_key(fl_msp_kind_t kind, const char *mspid, bool pem, fl_buf_t bytes,
                      uint8_t key[FL_SHA256_LEN]) {
  fl_sha256_ctx_t h;
  if (fl_sha256_init(&h) != FL_OK) {
    /* No incremental context: fall back to one allocation and a one-shot. */
    fl_sbuf_t b = {0};
    uint8_t hdr[2] = {(uint8_t)kind, (uint8_t)pem};
    fl_sbuf_append(&b, hdr, 2);
    fl_sbuf_append(&b, mspid ? mspid : "", (mspid ? strlen(mspid) : 0) + 1);
    fl_sbuf_append(&b, bytes.data, bytes.len);
    fl_sha256(b.data, b.len, key);
    fl_sbuf_free(&b);
    return;
  }
  uint8_t hdr[2] = {(uint8_t)kind, (uint8_t)pem};
  fl_sha256_update(&h, hdr, 2);
  fl_sha256_update(&h, mspid ? mspid : "", (mspid ? strlen(mspid) : 0) + 1);
  fl_sha256_update(&h, bytes.data, bytes.len);
  fl_sha256_final(&h, key);
}

/* Steps 1-2, cached. Exactly one of pem / parsed is set. On FL_OK *out is a
 * referenced entry: release with centry_release. */
static fl_status_t lookup(fl_msp_t *m, fl_msp_kind_t kind, const char *mspid,
                          fl_buf_t pem, const fl_cert_t *parsed, centry_t **out,
                          const char **reason) {
  *out = NULL;
  if ((unsigned)kind > FL_MSP_TLS) {
    *reason = "bad trust store kind";
    return FL_EINVAL;
  }
  uint8_t key[FL_SHA256_LEN];
  cache_key(kind, mspid, parsed == NULL, parsed ? fl_cert_der(parsed) : pem, key);
  size_t b = ((size_t)key[0] << 8 | key[1]) % CACHE_BUCKETS;

  pthread_mutex_lock(&m->mu);
  for (centry_t *e = m->buckets[b]; e != NULL; e = e->next) {
    if (memcmp(e->key, key, FL_SHA256_LEN) == 0) {
      e->refs++;
      m->hits++;
      pthread_mutex_unlock(&m->mu);
      *out = e;
      return FL_OK;
    }
  }
  m->misses++;
  pthread_mutex_unlock(&m->mu);

  fl_cert_t *cert = NULL;
  if (parsed != NULL) {
    cert = fl_cert_dup(parsed);
  } else if (fl_cert_from_pem(pem.data, pem.len, &cert) != FL_OK) {
    *reason = "not a PEM certificate";
    return FL_EMALFORMED;
  }
  fl_status_t rc = FL_EUNTRUSTED;
  size_t org = 0;
  int64_t nb = 0, na = 0;
  if (fl_cert_is_ca(cert)) {
    *reason = "a CA certificate is not an identity";
    goto fail;
  }
  if (fl_cert_pubkey(cert) == NULL) {
    *reason = "public key is not EC P-256";
    goto fail;
  }
  if (mspid != NULL) {
    long i = org_find(m, mspid);
    if (i < 0) {
      *reason = "unknown MSP ID";
      goto fail;
    }
    org = (size_t)i;
    rc = chain_check(m->orgs[org].store[kind], cert, &nb, &na, reason);
  } else {
    *reason = "no organisation's CA issued it";
    for (org = 0; org < m->n_orgs; org++) {
      rc = chain_check(m->orgs[org].store[kind], cert, &nb, &na, reason);
      if (rc != FL_EUNTRUSTED) break;
    }
    if (m->n_orgs == 0) rc = FL_EUNTRUSTED;
  }
  if (rc != FL_OK) goto fail;

  centry_t *e = fl_calloc(1, sizeof *e);
  memcpy(e->key, key, FL_SHA256_LEN);
  e->cert = cert;
  e->org = org;
  e->nb = nb;
  e->na = na;
  e->refs = 2; /* the table and the caller */
  pthread_mutex_lock(&m->mu);
  for (centry_t *o = m->buckets[b]; o != NULL; o = o->next) {
    if (memcmp(o->key, key, FL_SHA256_LEN) == 0) { /* another thread won */
      o->refs++;
      pthread_mutex_unlock(&m->mu);
      centry_free(e);
      *out = o;
      return FL_OK;
    }
  }
  if (m->n_entries >= FL_MSP_CACHE_MAX) cache_clear_locked(m);
  e->next = m->buckets[b];
  m->buckets[b] = e;
  m->n_entries++;
  pthread_mutex_unlock(&m->mu);
  *out = e;
  return FL_OK;
fail:
  fl_cert_free(cert);
  return rc;
}

/* Steps 3-5 on a cached entry. */
static fl_status_t check_entry(fl_msp_t *m, const centry_t *e, fl_role_t required,
                               const char **reason) {
  const uint8_t *sha = fl_cert_sha256(e->cert);
  pthread_mutex_lock(&m->mu);
  int64_t now = m->now;
  bool revoked = revoked_locked(m, sha);
  pthread_mutex_unlock(&m->mu);
  if (now == 0) now = (int64_t)time(NULL);
  if (now < e->nb) {
    *reason = "certificate (or its CA) is not yet valid";
    return FL_EUNTRUSTED;
  }
  if (now > e->na) {
    *reason = "certificate (or its CA) has expired";
    return FL_EUNTRUSTED;
  }
  if (revoked) {
    *reason = "certificate is revoked";
    return FL_EREVOKED;
  }
  if (required != FL_ROLE_NONE && fl_cert_role(e->cert) != required) {
    *reason = "certificate does not have the required role";
    return FL_EPERM;
  }
  *reason = "ok";
  return FL_OK;
}

static void fill_info(const fl_msp_t *m, const centry_t *e, fl_msp_info_t *info) {
  snprintf(info->mspid, sizeof info->mspid, "%s", m->orgs[e->org].mspid);
  info->role = fl_cert_role(e->cert);
  memcpy(info->cert_sha256, fl_cert_sha256(e->cert), FL_SHA256_LEN);
  snprintf(info->cn, sizeof info->cn, "%s", fl_cert_subject_cn(e->cert));
  info->not_after = fl_cert_not_after(e->cert);
}

static void info_reset(fl_msp_info_t *info) {
  if (info == NULL) return;
  memset(info, 0, sizeof *info);
  info->reason = "ok";
}

static fl_status_t validate(fl_msp_t *m, fl_msp_kind_t kind, const char *mspid, fl_buf_t pem,
                            const fl_cert_t *parsed, fl_role_t required,
                            fl_msp_info_t *info, centry_t **keep) {
  info_reset(info);
  const char *reason = "ok";
  centry_t *e = NULL;
  fl_status_t rc = lookup(m, kind, mspid, pem, parsed, &e, &reason);
  if (rc == FL_OK) rc = check_entry(m, e, required, &reason);
  if (info != NULL) {
    if (e != NULL) fill_info(m, e, info);
    info->reason = reason;
  }
  if (rc != FL_OK || keep == NULL) {
    if (e != NULL) centry_release(m, e);
  } else {
    *keep = e;
  }
  return rc;
}

fl_status_t fl_msp_validate(fl_msp_t *m, const char *mspid, const void *cert_pem,
                            size_t len, fl_role_t required, fl_msp_info_t *info) {
  if (mspid == NULL) {
    info_reset(info);
    if (info != NULL) info->reason = "no MSP ID";
    return FL_EUNTRUSTED;
  }
  return validate(m, FL_MSP_SIGNING, mspid, FL_BUF(cert_pem, len), NULL, required, info,
                  NULL);
}

fl_status_t fl_msp_validate_cert(fl_msp_t *m, fl_msp_kind_t kind, const char *mspid,
                                 const fl_cert_t *cert, fl_role_t required,
                                 fl_msp_info_t *info) {
  return validate(m, kind, mspid, (fl_buf_t){0}, cert, required, info, NULL);
}

fl_status_t fl_msp_verify_signature(fl_msp_t *m, const uint8_t *sid, size_t sid_len,
                                    const void *msg, size_t msg_len, const uint8_t *sig,
                                    size_t sig_len, fl_role_t required,
                                    fl_msp_info_t *info) {
  info_reset(info);
  if (sid == NULL || sid_len == 0 || sid_len > FL_MSP_IDENTITY_MAX) {
    if (info != NULL) info->reason = "serialized identity empty or too large";
    return FL_EMALFORMED;
  }
  Fl__Msp__SerializedIdentity *id = fl__msp__serialized_identity__unpack(NULL, sid_len, sid);
  if (id == NULL || id->mspid == NULL || id->mspid[0] == '\0' || id->id_bytes.len == 0) {
    if (id != NULL) fl__msp__serialized_identity__free_unpacked(id, NULL);
    if (info != NULL) info->reason = "serialized identity does not decode";
    return FL_EMALFORMED;
  }
  centry_t *e = NULL;
  fl_status_t rc = validate(m, FL_MSP_SIGNING, id->mspid,
                            FL_BUF(id->id_bytes.data, id->id_bytes.len), NULL, required,
                            info, &e);
  fl__msp__serialized_identity__free_unpacked(id, NULL);
  if (rc != FL_OK) return rc;
  rc = fl_verify(fl_cert_pubkey(e->cert), msg, msg_len, sig, sig_len);
  if (rc != FL_OK && info != NULL) info->reason = "signature does not verify";
  centry_release(m, e);
  return rc;
}

fl_status_t fl_msp_serialize_identity(const char *mspid, const void *cert_pem, size_t len,
                                      fl_sbuf_t *out) {
  out->len = 0;
  if (mspid == NULL || *mspid == '\0') return FL_EINVAL;
  /* The _INIT macro casts away const (-Wcast-qual); the init function
   * does the same job. */
  Fl__Msp__SerializedIdentity id;
  fl__msp__serialized_identity__init(&id);
  id.mspid = fl_strdup(mspid);
  id.id_bytes.data = fl_memdup(cert_pem, len);
  id.id_bytes.len = len;
  size_t n = fl__msp__serialized_identity__get_packed_size(&id);
  fl_sbuf_reserve(out, n);
  out->len = fl__msp__serialized_identity__pack(&id, out->data);
  fl_free(id.mspid);
  fl_free(id.id_bytes.data);
  return FL_OK;
}
