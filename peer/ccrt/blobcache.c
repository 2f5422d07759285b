/* SPDX-License-Identifier: Apache-2.0
 *
 * blobcache.c: the stored blobs a worker process keeps between invocations
 * (fl_cc_get_stored_blob; shim.h).
 *
 * Why a cache: a stored blob is content-addressed and never changes or goes
 * away, and the blob store hands out only bytes whose SHA-256 is the hash
 * asked for (fl_ledger_blob_get checks it). So bytes once read for a hash
 * are the answer for that hash for good, and a worker can keep them. In an
 * FL round every SubmitUpdate reads the same two global models (40 KB each
 * for the NSL-KDD MLP); without the cache each read is a round trip to the
 * peer, a RocksDB read and a SHA-256 of the bytes.
 *
 * Admission on the second read. Most stored blobs a chaincode reads are
 * read once per worker (CloseRound's update blobs); keeping them would only
 * copy them and fill the worker's memory with bytes nobody asks for again.
 * So the first fl__blobs_put of a hash only remembers the hash (a ring of
 * SEEN hashes); the bytes are kept when the same hash is put again, i.e.
 * on its second read. The global models every SubmitUpdate reads are then
 * read from the peer twice per worker and hit after that.
 *
 * Invariants of fl__blobs_t:
 *   1. An entry holds the bytes the peer returned for its hash with FL_OK.
 *      A miss (FL_NOTFOUND) is never cached: a blob that is not there yet
 *      may be stored by a later block.
 *   2. At most cap entries and max_bytes bytes together; a blob larger than
 *      max_bytes / 4 is not cached. Inserting evicts least recently used
 *      entries until both bounds hold.
 *   3. A hash is inserted only if it is among the last SEEN hashes put and
 *      not inserted (then it leaves that ring).
 *   4. Not thread-safe: one owner (a worker process is one thread).
 */
#include <string.h>

#include "common/base/alloc.h"
#include "peer/ccrt/ccrt_int.h"

#define SEEN 64 /* hashes read once, remembered for admission */

typedef struct blob_ent_s {
  uint8_t hash[FL_CCRT_HASH_LEN];
  uint8_t *data;
  size_t len;
  uint64_t used; /* tick of the last hit or insert */
} blob_ent_t;

struct fl__blobs_s {
  blob_ent_t *e;
  size_t n, cap;
  size_t bytes, max_bytes;
  uint64_t tick;
  uint64_t hits, misses;
  uint8_t seen[SEEN][FL_CCRT_HASH_LEN]; /* ring; all-zero = empty */
  size_t seen_next;
};

fl__blobs_t *fl__blobs_new(size_t cap, size_t max_bytes) {
  fl__blobs_t *c = fl_calloc(1, sizeof *c);
  c->cap = cap ? cap : 1;
  c->max_bytes = max_bytes;
  c->e = fl_calloc(c->cap, sizeof *c->e);
  return c;
}

void fl__blobs_free(fl__blobs_t *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) fl_free(c->e[i].data);
  fl_free(c->e);
  fl_free(c);
}

/* The entry for hash, marked as just used, or NULL. */
static blob_ent_t *find(fl__blobs_t *c, const uint8_t hash[FL_CCRT_HASH_LEN]) {
  c->tick++;
  for (size_t i = 0; i < c->n; i++)
    if (memcmp(c->e[i].hash, hash, FL_CCRT_HASH_LEN) == 0) {
      c->e[i].used = c->tick;
      return &c->e[i];
    }
  return NULL;
}

/* Whether hash is in the ring of hashes read once; forgets it if so. */
static bool seen_take(fl__blobs_t *c, const uint8_t hash[FL_CCRT_HASH_LEN]) {
  for (size_t k = 0; k < SEEN; k++)
    if (memcmp(c->seen[k], hash, FL_CCRT_HASH_LEN) == 0) {
      memset(c->seen[k], 0, FL_CCRT_HASH_LEN);
      return true;
    }
  return false;
}

bool fl__blobs_get(fl__blobs_t *c, const uint8_t hash[FL_CCRT_HASH_LEN], fl_buf_t *out) {
  blob_ent_t *e = find(c, hash);
  if (e == NULL) {
    c->misses++;
    return false;
  }
  c->hits++;
  *out = FL_BUF(e->data, e->len);
  return true;
}

static void evict_one(fl__blobs_t *c) {
  size_t v = 0;
  for (size_t i = 1; i < c->n; i++)
    if (c->e[i].used < c->e[v].used) v = i;
  c->bytes -= c->e[v].len;
  fl_free(c->e[v].data);
  c->e[v] = c->e[--c->n];
}

void fl__blobs_put(fl__blobs_t *c, const uint8_t hash[FL_CCRT_HASH_LEN], fl_buf_t data) {
  if (data.len > c->max_bytes / 4 || find(c, hash) != NULL) return; /* invariant 2 */
  if (!seen_take(c, hash)) { /* first read: remember the hash only (invariant 3) */
    memcpy(c->seen[c->seen_next], hash, FL_CCRT_HASH_LEN);
    c->seen_next = (c->seen_next + 1) % SEEN;
    return;
  }
  while (c->n > 0 && (c->n == c->cap || c->bytes + data.len > c->max_bytes)) evict_one(c);
  blob_ent_t *e = &c->e[c->n++];
  memcpy(e->hash, hash, FL_CCRT_HASH_LEN);
  e->data = data.len ? fl_memdup(data.data, data.len) : NULL;
  e->len = data.len;
  e->used = ++c->tick;
  c->bytes += data.len;
}

void fl__blobs_stats(const fl__blobs_t *c, fl__blobs_stats_t *st) {
  *st = (fl__blobs_stats_t){.entries = c->n, .bytes = c->bytes, .hits = c->hits,
                            .misses = c->misses};
}
