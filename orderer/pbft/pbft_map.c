/* SPDX-License-Identifier: Apache-2.0
 *
 * pbft_map.c: a small open-addressing hash map keyed by byte strings, used
 * for the tx-id sets of the PBFT core (pending requests, in-flight requests,
 * the at-most-once window). Linear probing with backward-shift deletion, so
 * lookups never walk tombstones and every operation is O(1) expected. Keys
 * are borrowed: the owner of the value keeps the key bytes alive while the
 * entry is present. The hash is seeded (a word-at-a-time multiply-xorshift
 * mix, then a 64-bit finaliser) so colliding tx ids cannot be precomputed
 * without the seed.
 *
 * Invariants: cap is 0 or a power of two; count <= cap * 3 / 4; an entry at
 * index i is reachable by probing from its home index without crossing an
 * empty slot.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "orderer/pbft/pbft_int.h"

static uint32_t map_hash(uint64_t seed, const uint8_t *k, size_t n) {
  /* Eight bytes at a time, multiply-xorshift mixing, seeded. */
  uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, k + i, 8);
    h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  uint64_t t = 0;
  if (i < n) memcpy(&t, k + i, n - i);
  h = (h ^ t ^ 0x27d4eb2f165667c5ull) * 0x94d049bb133111ebull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return (uint32_t)h;
}

void fl__pbft_map_init(fl__pbft_map_t *m, uint64_t seed) {
  memset(m, 0, sizeof(*m));
  m->seed = seed;
}

void fl__pbft_map_free(fl__pbft_map_t *m) {
  if (m == NULL) return;
  fl_free(m->slots);
  m->slots = NULL;
  m->cap = m->count = 0;
}

void fl__pbft_map_clear(fl__pbft_map_t *m) {
  if (m->cap) memset(m->slots, 0, m->cap * sizeof(*m->slots));
  m->count = 0;
}

static bool slot_is(const fl__pbft_slot_t *s, uint32_t h, const uint8_t *k,
                    size_t n) {
  return s->key != NULL && s->hash == h && s->len == n &&
         memcmp(s->key, k, n) == 0;
}

fl__pbft_slot_t *fl__pbft_map_get(const fl__pbft_map_t *m, const uint8_t *key,
                                  size_t len) {
  if (m->cap == 0) return NULL;
  uint32_t h = map_hash(m->seed, key, len);
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    fl__pbft_slot_t *s = &m->slots[i];
    if (s->key == NULL) return NULL;
    if (slot_is(s, h, key, len)) return s;
  }
}

static void map_grow(fl__pbft_map_t *m) {
  size_t ncap = m->cap ? m->cap * 2 : 64;
  fl__pbft_slot_t *old = m->slots;
  size_t ocap = m->cap;
  m->slots = fl_calloc(ncap, sizeof(*m->slots));
  m->cap = ncap;
  size_t mask = ncap - 1;
  for (size_t j = 0; j < ocap; j++) {
    if (old[j].key == NULL) continue;
    size_t i = old[j].hash & mask;
    while (m->slots[i].key != NULL) i = (i + 1) & mask;
    m->slots[i] = old[j];
  }
  fl_free(old);
}

fl__pbft_slot_t *fl__pbft_map_put(fl__pbft_map_t *m, const uint8_t *key,
                                  size_t len, bool *existed) {
  if ((m->count + 1) * 4 > m->cap * 3) map_grow(m);
  uint32_t h = map_hash(m->seed, key, len);
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    fl__pbft_slot_t *s = &m->slots[i];
    if (s->key == NULL) {
      s->key = key;
      s->len = (uint32_t)len;
      s->hash = h;
      s->val = 0;
      s->ptr = NULL;
      m->count++;
      if (existed) *existed = false;
      return s;
    }
    if (slot_is(s, h, key, len)) {
      if (existed) *existed = true;
      return s;
    }
  }
}

bool fl__pbft_map_del(fl__pbft_map_t *m, const uint8_t *key, size_t len) {
  fl__pbft_slot_t *s = fl__pbft_map_get(m, key, len);
  if (s == NULL) return false;
  size_t mask = m->cap - 1;
  size_t i = (size_t)(s - m->slots);
  /* Backward-shift: pull later members of the probe run into the hole when
   * their home index does not lie cyclically in (hole, j]. */
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    fl__pbft_slot_t *t = &m->slots[j];
    if (t->key == NULL) break;
    size_t home = t->hash & mask;
    bool in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
    if (in_range) continue;
    m->slots[i] = *t;
    i = j;
  }
  memset(&m->slots[i], 0, sizeof(m->slots[i]));
  m->count--;
  return true;
}
