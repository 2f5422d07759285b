/* SPDX-License-Identifier: Apache-2.0
 *
 * map.c: a small byte-keyed hash map for the ledger's per-block work (the
 * MVCC read cache and pending writes, tx id and blob de-duplication in a
 * commit). Open addressing with linear probing, load factor <= 1/2, keys
 * copied in and freed with the map. Entries are never removed: a map lives
 * for one block.
 *
 * The hash is FNV-1a over the key, started from a per-map seed and finished
 * with the splitmix64 mixer. The seed comes from the monotonic clock and the
 * map's address: not a cryptographic defence, but it keeps a crafted set of
 * keys from hitting one fixed probe sequence, and a map never holds more
 * than one block's keys, which bounds the worst case anyway.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "peer/ledger/ledger_int.h"

#define INITIAL_CAP 64u

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t hash_key(uint64_t seed, fl_buf_t k) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (size_t i = 0; i < k.len; i++) {
    h ^= k.data[i];
    h *= 0x100000001b3ULL;
  }
  return mix64(h ^ k.len);
}

int fl__bytes_cmp(fl_buf_t a, fl_buf_t b) {
  size_t n = a.len < b.len ? a.len : b.len;
  int c = n > 0 ? memcmp(a.data, b.data, n) : 0;
  if (c != 0) return c;
  return a.len < b.len ? -1 : (a.len > b.len ? 1 : 0);
}

void fl__lmap_init(fl__lmap_t *m) {
  m->cap = INITIAL_CAP;
  m->n = 0;
  m->slots = fl_calloc(m->cap, sizeof *m->slots);
  m->seed = mix64(fl_mono_ns() ^ (uint64_t)(uintptr_t)m);
}

void fl__lmap_free(fl__lmap_t *m) {
  if (m == NULL || m->slots == NULL) return;
  for (size_t i = 0; i < m->cap; i++) fl_free(m->slots[i].key);
  fl_free(m->slots);
  *m = (fl__lmap_t){0};
}

static bool ent_is(const fl__lmap_ent_t *e, uint64_t h, fl_buf_t k) {
  return e->h == h && e->klen == k.len &&
         (k.len == 0 || memcmp(e->key, k.data, k.len) == 0);
}

fl__lmap_ent_t *fl__lmap_find(const fl__lmap_t *m, fl_buf_t key) {
  uint64_t h = hash_key(m->seed, key);
  size_t mask = m->cap - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    fl__lmap_ent_t *e = &m->slots[i];
    if (e->key == NULL) return NULL;
    if (ent_is(e, h, key)) return e;
  }
}

static void grow(fl__lmap_t *m) {
  size_t ncap = m->cap * 2;
  fl__lmap_ent_t *ns = fl_calloc(ncap, sizeof *ns);
  for (size_t i = 0; i < m->cap; i++) {
    fl__lmap_ent_t *e = &m->slots[i];
    if (e->key == NULL) continue;
    size_t j = (size_t)e->h & (ncap - 1);
    while (ns[j].key != NULL) j = (j + 1) & (ncap - 1);
    ns[j] = *e;
  }
  fl_free(m->slots);
  m->slots = ns;
  m->cap = ncap;
}

fl__lmap_ent_t *fl__lmap_upsert(fl__lmap_t *m, fl_buf_t key, bool *created) {
  if ((m->n + 1) * 2 > m->cap) grow(m);
  uint64_t h = hash_key(m->seed, key);
  size_t mask = m->cap - 1;
  size_t i = (size_t)h & mask;
  for (;; i = (i + 1) & mask) {
    fl__lmap_ent_t *e = &m->slots[i];
    if (e->key == NULL) break;
    if (ent_is(e, h, key)) {
      *created = false;
      return e;
    }
  }
  fl__lmap_ent_t *e = &m->slots[i];
  /* fl_malloc(0) still returns a unique pointer, so an empty key's slot is
   * marked used too. */
  e->key = fl_memdup(key.data, key.len);
  e->klen = key.len;
  e->h = h;
  e->flag = false;
  e->ver = (fl_ledger_version_t){0};
  m->n++;
  *created = true;
  return e;
}
