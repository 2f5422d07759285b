/* SPDX-License-Identifier: Apache-2.0
 *
 * certs.c: the creator's certificate for the stub's fl_cc_get_creator_cn and
 * fl_cc_verify_creator (shim.h, ABI 3), and the small cache of parsed
 * certificates a worker process keeps between invocations.
 *
 * Why a cache: with OpenSSL 3, fl_cert_from_pem of a P-256 certificate costs
 * ~200 µs (PEM base64, ASN.1, and the provider decoder lookup for the
 * public key), and the first verification with a fresh key builds its
 * EVP_PKEY_CTX. A chaincode must stay stateless, so it cannot keep them;
 * the runtime can. In an FL round the same few client certificates sign
 * every proposal, so nearly every lookup is a hit.
 *
 * Invariants of fl__certs_t:
 *   1. An entry is keyed by the EXACT PEM bytes it was parsed from (a copy
 *      is kept and compared in full; the 64-bit hash only skips mismatches),
 *      so a hit returns what fl_cert_from_pem of those bytes returns.
 *   2. PEM that does not parse is never cached (it is parsed again each
 *      time, and fails again: the answer is the same).
 *   3. At most cap entries; a miss on a full cache replaces the least
 *      recently used one.
 *   4. Not thread-safe: one owner (a worker process is one thread).
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/crypto/sign.h"
#include "common/crypto/x509.h"
#include "peer/ccrt/ccrt_int.h"

typedef struct cert_ent_s {
  uint64_t hash; /* FNV-1a of pem */
  uint8_t *pem;
  size_t len;
  fl_cert_t *cert;
  uint64_t used; /* tick of the last hit */
} cert_ent_t;

struct fl__certs_s {
  cert_ent_t *e;
  size_t n, cap;
  uint64_t tick;
};

fl__certs_t *fl__certs_new(size_t cap) {
  fl__certs_t *c = fl_calloc(1, sizeof *c);
  c->cap = cap ? cap : 1;
  c->e = fl_calloc(c->cap, sizeof *c->e);
  return c;
}

void fl__certs_free(fl__certs_t *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) {
    fl_free(c->e[i].pem);
    fl_cert_free(c->e[i].cert);
  }
  fl_free(c->e);
  fl_free(c);
}

const fl_cert_t *fl__certs_get(fl__certs_t *c, fl_buf_t pem) {
  if (pem.len == 0 || !pem.data) return NULL;
  uint64_t h = fl__ccrt_fnv1a(pem.data, pem.len);
  c->tick++;
  for (size_t i = 0; i < c->n; i++) {
    cert_ent_t *e = &c->e[i];
    if (e->hash == h && e->len == pem.len && memcmp(e->pem, pem.data, pem.len) == 0) {
      e->used = c->tick;
      return e->cert;
    }
  }
  fl_cert_t *cert = NULL;
  if (fl_cert_from_pem(pem.data, pem.len, &cert) != FL_OK) return NULL; /* invariant 2 */
  cert_ent_t *e;
  if (c->n < c->cap) {
    e = &c->e[c->n++];
  } else { /* invariant 3 */
    e = &c->e[0];
    for (size_t i = 1; i < c->n; i++)
      if (c->e[i].used < e->used) e = &c->e[i];
    fl_free(e->pem);
    fl_cert_free(e->cert);
  }
  *e = (cert_ent_t){.hash = h, .pem = fl_memdup(pem.data, pem.len), .len = pem.len,
                    .cert = cert, .used = c->tick};
  return cert;
}

int fl__cert_cn(const fl_cert_t *cert, fl_cc_bytes_t *cn) {
  *cn = (fl_cc_bytes_t){0};
  if (!cert) return FL_CC_EMALFORMED;
  const char *s = fl_cert_subject_cn(cert);
  *cn = (fl_cc_bytes_t){.data = (const uint8_t *)s, .len = s ? strlen(s) : 0};
  return FL_CC_OK;
}

int fl__cert_verify(const fl_cert_t *cert, fl_cc_bytes_t msg, fl_cc_bytes_t sig) {
  if (!cert) return FL_CC_EMALFORMED;
  if ((msg.len && !msg.data) || (sig.len && !sig.data)) return FL_CC_EBADSIG;
  /* fl_verify: FL_EINVAL when the key is not P-256 (no verifier), FL_EBADSIG
   * for any bad signature. Both are "does not verify" to the chaincode. */
  const fl_verifier_t *v = fl_cert_pubkey(cert);
  if (!v) return FL_CC_EBADSIG;
  return fl_verify(v, msg.data, msg.len, sig.data, sig.len) == FL_OK ? FL_CC_OK : FL_CC_EBADSIG;
}
