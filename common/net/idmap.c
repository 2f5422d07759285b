/* SPDX-License-Identifier: Apache-2.0
 *
 * idmap.c: call id -> call hash map for the RPC layer. Open addressing with
 * linear probing and backward-shift deletion (no tombstones), load <= 1/2.
 * Key 0 marks an empty slot, which is why call id 0 is never a call.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/net/rpc_int.h"

static size_t home(uint64_t k, size_t cap) {
  uint64_t h = k * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  return (size_t)h & (cap - 1);
}

void *fl__idmap_get(const fl__idmap_t *m, uint64_t key) {
  if (m->cap == 0 || key == 0) return NULL;
  for (size_t i = home(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == key) return m->vals[i];
    if (m->keys[i] == 0) return NULL;
  }
}

static void insert(fl__idmap_t *m, uint64_t key, void *val) {
  size_t i = home(key, m->cap);
  while (m->keys[i] != 0) i = (i + 1) & (m->cap - 1);
  m->keys[i] = key;
  m->vals[i] = val;
  m->n++;
}

void fl__idmap_put(fl__idmap_t *m, uint64_t key, void *val) {
  if ((m->n + 1) * 2 > m->cap) {
    fl__idmap_t g = {.cap = m->cap ? m->cap * 2 : 16};
    g.keys = fl_calloc(g.cap, sizeof(uint64_t));
    g.vals = fl_calloc(g.cap, sizeof(void *));
    for (size_t i = 0; i < m->cap; i++)
      if (m->keys[i]) insert(&g, m->keys[i], m->vals[i]);
    fl_free(m->keys);
    fl_free(m->vals);
    *m = g;
  }
  insert(m, key, val);
}

void *fl__idmap_del(fl__idmap_t *m, uint64_t key) {
  if (m->cap == 0 || key == 0) return NULL;
  size_t mask = m->cap - 1, i = home(key, m->cap);
  while (m->keys[i] != key) {
    if (m->keys[i] == 0) return NULL;
    i = (i + 1) & mask;
  }
  void *val = m->vals[i];
  /* Backward shift: pull later entries of the probe run into the hole
   * unless their home lies cyclically in (hole, j]. */
  for (size_t j = (i + 1) & mask; m->keys[j] != 0; j = (j + 1) & mask) {
    size_t k = home(m->keys[j], m->cap);
    bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (!stays) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      i = j;
    }
  }
  m->keys[i] = 0;
  m->vals[i] = NULL;
  m->n--;
  return val;
}

void **fl__idmap_take_all(fl__idmap_t *m, size_t *n) {
  void **all = fl_malloc((m->n ? m->n : 1) * sizeof(void *));
  size_t k = 0;
  for (size_t i = 0; i < m->cap; i++) {
    if (m->keys[i]) all[k++] = m->vals[i];
    m->keys[i] = 0;
    m->vals[i] = NULL;
  }
  m->n = 0;
  *n = k;
  return all;
}

void fl__idmap_free(fl__idmap_t *m) {
  if (m == NULL) return;
  fl_free(m->keys);
  fl_free(m->vals);
  *m = (fl__idmap_t){0};
}
