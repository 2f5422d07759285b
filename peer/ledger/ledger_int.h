/* SPDX-License-Identifier: Apache-2.0
 *
 * ledger_int.h: the ledger's handle, its on-disk record layouts and the small
 * byte-keyed hash map shared by ledger.c (open, commit, reads) and mvcc.c.
 *
 * Column families and record layouts (all integers big-endian, so numeric
 * order is byte order):
 *
 *   blocks   key  be64 number                              (8 bytes)
 *            val  header_hash[32] || exact block bytes
 *   txids    key  tx id bytes
 *            val  be64 block || be32 tx || u8 code         (13 bytes)
 *   state    key  state key bytes
 *            val  be64 block || be32 tx || value           (12 + n bytes)
 *   history  key  state key || 0x00 || be64 block || be64 tx
 *            val  u8 flags (bit 0 = delete) || be16 txid_len || tx id ||
 *                 value (the value written, inline; empty for a delete)
 *   blobs    key  SHA-256(bytes)                           (32 bytes)
 *            val  bytes
 *   meta     "schema"    -> be32 FL__LEDGER_SCHEMA
 *            "savepoint" -> be64 last block number || header_hash[32]
 *
 * History: the 0x00 separator alone is ambiguous for keys that contain 0x00
 * (a key K and a key K || 0x00 || ... share a prefix), so a history entry
 * belongs to key K only when it starts with K || 0x00 AND is exactly
 * len(K) + 17 bytes long; any other key with that prefix is longer. The
 * value is stored inline because provenance queries want every value a key
 * ever had, and the ledger cannot re-read it from a block it does not parse;
 * large payloads belong in blobs, whose hash is what state keys hold.
 *
 * Invariants of an open ledger:
 *   1. height == savepoint number + 1 (0 without savepoint), and last_hash is
 *      the savepoint's hash; both change only after the block's batch write
 *      returned FL_OK, under mu.
 *   2. blocks holds exactly the numbers 0 .. height-1 (open deletes any
 *      beyond); each block's batch also held its txids, state, history,
 *      blobs and the savepoint, so they are all present or all absent.
 *   3. every state value and history entry comes from a VALID tx; its
 *      version {block, tx} is that tx's position.
 *   4. a blob is stored under the SHA-256 of its bytes, computed at commit.
 */
#ifndef FL_PEER_LEDGER_LEDGER_INT_H
#define FL_PEER_LEDGER_LEDGER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/kv/kv.h"
#include "peer/ledger/ledger.h"

#define FL__LEDGER_MOD "ledger"
#define FL__LEDGER_SCHEMA 1u

#define FL__TXLOC_LEN 13u
#define FL__VERSION_LEN 12u
#define FL__HIST_SUFFIX 17u
#define FL__SAVEPOINT_LEN (8u + FL_LEDGER_HASH_LEN)

struct fl_ledger_s {
  fl_kv_t *kv;
  fl_kv_cf_t *blocks;
  fl_kv_cf_t *txids;
  fl_kv_cf_t *state;
  fl_kv_cf_t *history;
  fl_kv_cf_t *blobs;
  fl_kv_cf_t *meta;
  pthread_mutex_t mu;                   /* guards height and last_hash */
  uint64_t height;                      /* invariant 1 */
  uint8_t last_hash[FL_LEDGER_HASH_LEN];
  fl_kv_batch_t *batch;                 /* commit's batch, reused */
};

struct fl_ledger_snap_s {
  fl_ledger_t *l;
  fl_kv_snapshot_t *ks;
  uint64_t height;
};

/* ---- record codecs ----------------------------------------------------- */

static inline void fl__ver_put(uint8_t *p, uint64_t block, uint64_t tx) {
  fl_put_be64(p, block);
  fl_put_be32(p + 8, (uint32_t)tx);
}

static inline fl_ledger_version_t fl__ver_get(const uint8_t *p) {
  return (fl_ledger_version_t){.block = fl_get_be64(p),
                               .tx = fl_get_be32(p + 8)};
}

/** Decodes a state value into its version and a view of the user value.
 *  Returns FL_OK or FL_ECORRUPT (too short). */
fl_status_t fl__state_decode(fl_buf_t raw, fl_ledger_version_t *ver,
                             fl_buf_t *value);

/* ---- byte-keyed hash map ------------------------------------------------
 * Open addressing with linear probing; keys are copied in. Sized for one
 * block's keys; the hash is seeded per map so crafted keys cannot be aimed
 * at a known probe sequence. */
typedef struct fl__lmap_ent_s {
  uint8_t *key;     /* owned; NULL = empty slot */
  size_t klen;
  uint64_t h;
  /* payload, meaning chosen by the user of the map */
  bool flag;
  fl_ledger_version_t ver;
} fl__lmap_ent_t;

typedef struct fl__lmap_s {
  fl__lmap_ent_t *slots;
  size_t cap;   /* power of two */
  size_t n;
  uint64_t seed;
} fl__lmap_t;

/** Initialises an empty map. */
void fl__lmap_init(fl__lmap_t *m);
/** Frees keys and slots; the map may be initialised again. NULL-safe. */
void fl__lmap_free(fl__lmap_t *m);
/** Returns the entry for key, or NULL. Borrowed until the next insert. */
fl__lmap_ent_t *fl__lmap_find(const fl__lmap_t *m, fl_buf_t key);
/** Returns the entry for key, inserting a zeroed one (key copied) if absent;
 *  *created says which. Borrowed until the next insert. */
fl__lmap_ent_t *fl__lmap_upsert(fl__lmap_t *m, fl_buf_t key,
                                bool *created /* out */);

/** memcmp order, a proper prefix sorts first. */
int fl__bytes_cmp(fl_buf_t a, fl_buf_t b);

#endif /* FL_PEER_LEDGER_LEDGER_INT_H */
