/* SPDX-License-Identifier: Apache-2.0
 *
 * sigcache.c: the verified-signature cache (sigcache.h).
 *
 * Layout: a power-of-two number of sets of WAYS entries, the set chosen by
 * the low bits of the key (4-way set associative: a few unlucky keys do not
 * evict each other the way a direct-mapped table would); an entry holds
 * the full 32-byte key (so a hit is exact) and what the MSP learnt about
 * the signer. An empty slot has used == 0; a full set replaces its entries
 * in turn (per-set clock hand).
 */
#include "peer/node/sigcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/crypto/hash.h"

#define MAX_PARTS 4
#define WAYS 4

typedef struct entry_s {
  uint8_t used;
  uint8_t key[FL_SHA256_LEN];
  char mspid[FL_MSPID_MAX + 1];
  fl_role_t role;
  uint8_t cert_sha256[FL_SHA256_LEN];
  int64_t not_after;
} entry_t;

struct fl_sigcache_s {
  fl_msp_t *msp;
  pthread_mutex_t mu;
  entry_t *tab;     /* nsets * WAYS entries */
  uint8_t *hand;    /* per set: the next way to replace */
  size_t mask;      /* nsets - 1 */
  atomic_uint_fast64_t hits, misses, inserts;
};

fl_sigcache_t *fl_sigcache_new(fl_msp_t *msp, size_t capacity) {
  if (capacity == 0) capacity = 16384;
  size_t n = 1;
  while (n * WAYS < capacity && n < ((size_t)1 << 22)) n <<= 1;
  fl_sigcache_t *c = fl_calloc(1, sizeof(*c));
  c->msp = msp;
  pthread_mutex_init(&c->mu, NULL);
  c->tab = fl_calloc(n * WAYS, sizeof(*c->tab));
  c->hand = fl_calloc(n, 1);
  c->mask = n - 1;
  atomic_init(&c->hits, 0);
  atomic_init(&c->misses, 0);
  atomic_init(&c->inserts, 0);
  return c;
}

void fl_sigcache_free(fl_sigcache_t *c) {
  if (c == NULL) return;
  pthread_mutex_destroy(&c->mu);
  fl_free(c->tab);
  fl_free(c->hand);
  fl_free(c);
}

static void make_key(fl_buf_t sid, const fl_buf_t *parts, size_t nparts, fl_buf_t sig,
                     uint8_t key[FL_SHA256_LEN]) {
  uint8_t d[2 * FL_SHA256_LEN];
  fl_sha256_ctx_t h;
  if (fl_sha256_init(&h) != FL_OK) abort();
  for (size_t i = 0; i < nparts; i++) fl_sha256_update(&h, parts[i].data, parts[i].len);
  fl_sha256_final(&h, d);
  fl_sha256(sid.data, sid.len, d + FL_SHA256_LEN);
  if (fl_sha256_init(&h) != FL_OK) abort();
  fl_sha256_update(&h, d, sizeof(d));
  fl_sha256_update(&h, sig.data, sig.len);
  fl_sha256_final(&h, key);
}

static size_t set_of(const fl_sigcache_t *c, const uint8_t key[FL_SHA256_LEN]) {
  uint64_t v = 0;
  memcpy(&v, key, sizeof(v));
  return (size_t)(v & c->mask);
}

/* The entry holding key in its set, or NULL. Caller holds mu. */
static entry_t *find(fl_sigcache_t *c, size_t set, const uint8_t key[FL_SHA256_LEN]) {
  entry_t *e = &c->tab[set * WAYS];
  for (int w = 0; w < WAYS; w++)
    if (e[w].used && memcmp(e[w].key, key, FL_SHA256_LEN) == 0) return &e[w];
  return NULL;
}

static void put(fl_sigcache_t *c, const uint8_t key[FL_SHA256_LEN], const fl_msp_info_t *info) {
  entry_t e = {.used = 1, .role = info->role, .not_after = info->not_after};
  memcpy(e.key, key, FL_SHA256_LEN);
  memcpy(e.mspid, info->mspid, sizeof(e.mspid));
  e.mspid[FL_MSPID_MAX] = '\0';
  memcpy(e.cert_sha256, info->cert_sha256, FL_SHA256_LEN);
  size_t set = set_of(c, key);
  pthread_mutex_lock(&c->mu);
  entry_t *slot = find(c, set, key);
  if (slot == NULL) {
    entry_t *ways = &c->tab[set * WAYS];
    for (int w = 0; w < WAYS && slot == NULL; w++)
      if (!ways[w].used) slot = &ways[w];
    if (slot == NULL) {
      slot = &ways[c->hand[set]];
      c->hand[set] = (uint8_t)((c->hand[set] + 1) % WAYS);
    }
  }
  *slot = e;
  pthread_mutex_unlock(&c->mu);
  atomic_fetch_add(&c->inserts, 1);
}

fl_status_t fl_sigcache_verify(fl_sigcache_t *c, fl_buf_t sid, const fl_buf_t *parts,
                               size_t nparts, fl_buf_t sig, fl_role_t required,
                               fl_msp_info_t *info) {
  fl_msp_info_t local;
  if (info == NULL) info = &local;
  memset(info, 0, sizeof(*info));
  info->reason = "bad arguments";
  if (c == NULL || parts == NULL || nparts == 0 || nparts > MAX_PARTS) return FL_EINVAL;
  if (sig.len == 0) {
    info->reason = "empty signature";
    return FL_EBADSIG;
  }
  uint8_t key[FL_SHA256_LEN];
  make_key(sid, parts, nparts, sig, key);
  entry_t e = {0};
  pthread_mutex_lock(&c->mu);
  entry_t *hit = find(c, set_of(c, key), key);
  if (hit) e = *hit;
  pthread_mutex_unlock(&c->mu);
  if (e.used) {
    atomic_fetch_add(&c->hits, 1);
    memcpy(info->mspid, e.mspid, sizeof(info->mspid));
    info->role = e.role;
    memcpy(info->cert_sha256, e.cert_sha256, FL_SHA256_LEN);
    info->not_after = e.not_after;
    if (fl_msp_is_revoked(c->msp, e.cert_sha256)) {
      info->reason = "certificate revoked";
      return FL_EREVOKED;
    }
    if ((int64_t)(fl_wall_ms() / 1000) > e.not_after) {
      info->reason = "certificate expired";
      return FL_EUNTRUSTED;
    }
    if (required != FL_ROLE_NONE && e.role != required) {
      info->reason = "wrong role";
      return FL_EPERM;
    }
    info->reason = "ok";
    return FL_OK;
  }
  atomic_fetch_add(&c->misses, 1);
  fl_status_t rc;
  if (nparts == 1) {
    rc = fl_msp_verify_signature(c->msp, sid.data, sid.len, parts[0].data, parts[0].len,
                                 sig.data, sig.len, FL_ROLE_NONE, info);
  } else {
    fl_sbuf_t msg = {0};
    for (size_t i = 0; i < nparts; i++) fl_sbuf_append(&msg, parts[i].data, parts[i].len);
    rc = fl_msp_verify_signature(c->msp, sid.data, sid.len, msg.data, msg.len, sig.data,
                                 sig.len, FL_ROLE_NONE, info);
    fl_sbuf_free(&msg);
  }
  if (rc != FL_OK) return rc;
  /* Cached with any role; the role is checked per call. */
  put(c, key, info);
  if (required != FL_ROLE_NONE && info->role != required) {
    info->reason = "wrong role";
    return FL_EPERM;
  }
  return FL_OK;
}

void fl_sigcache_add(fl_sigcache_t *c, fl_buf_t sid, const fl_buf_t *parts, size_t nparts,
                     fl_buf_t sig, const fl_msp_info_t *info) {
  if (c == NULL || parts == NULL || nparts == 0 || nparts > MAX_PARTS || info == NULL) return;
  uint8_t key[FL_SHA256_LEN];
  make_key(sid, parts, nparts, sig, key);
  put(c, key, info);
}

void fl_sigcache_stats(fl_sigcache_t *c, uint64_t *hits, uint64_t *misses, uint64_t *inserts) {
  if (hits) *hits = atomic_load(&c->hits);
  if (misses) *misses = atomic_load(&c->misses);
  if (inserts) *inserts = atomic_load(&c->inserts);
}
