/* SPDX-License-Identifier: Apache-2.0
 *
 * ledger.c: open/recovery, block commit, and the read side of the peer's
 * ledger (blocks, tx index, state, history, blobs, snapshots).
 *
 * Why blocks live in a RocksDB column family and not in append-only block
 * files: the one hard requirement is that a block and everything derived
 * from it (tx index, state, history, blobs, savepoint) become durable
 * together or not at all. With a CF this is one synced write batch and
 * RocksDB's WAL gives atomicity for free; recovery is a consistency check.
 * Block files would need a two-phase protocol (append + fsync the file,
 * then the index batch) and a reconcile on open that truncates a torn tail
 * or re-derives the index, i.e. a second source of truth to keep in step.
 * The cost of the CF was write amplification for large values: each flush
 * was followed by a rewrite of the new file to recompress it with ZSTD (57
 * ms of CPU for 5 MB). The blocks and blobs CFs therefore keep their values
 * in RocksDB's blob files (fl_kv_cf_spec_t.large_values), which the LSM's
 * flushes and compactions do not rewrite; blocks are keyed by big-endian
 * number so their keys are appended in order, and the block CF has no bloom
 * filter since it is only read by exact number or in order. docs/peer.md, "Ledger", says the same.
 *
 * Layout and invariants: ledger_int.h.
 */
#include "peer/ledger/ledger.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/crypto/hash.h"
#include "fl/common/common.pb-c.h"
#include "peer/ledger/ledger_int.h"

#define MOD FL__LEDGER_MOD

static_assert(FL_LEDGER_HASH_LEN == FL_SHA256_LEN, "hash length");
static_assert(FL_LEDGER_TX_VALID == FL__COMMON__TX_VALIDATION_CODE__VALID,
              "validation codes must match common.proto");
static_assert(FL_LEDGER_TX_DUPLICATE_TXID ==
                  FL__COMMON__TX_VALIDATION_CODE__DUPLICATE_TXID,
              "validation codes must match common.proto");
static_assert(FL_LEDGER_TX_MVCC_READ_CONFLICT ==
                  FL__COMMON__TX_VALIDATION_CODE__MVCC_READ_CONFLICT,
              "validation codes must match common.proto");
static_assert(FL_LEDGER_TX_PHANTOM_READ_CONFLICT ==
                  FL__COMMON__TX_VALIDATION_CODE__PHANTOM_READ_CONFLICT,
              "validation codes must match common.proto");

static const char KEY_SCHEMA[] = "schema";
static const char KEY_SAVEPOINT[] = "savepoint";
#define META_KEY(s) FL_BUF((s), sizeof(s) - 1)

/* Bloom filters where lookups are by exact key and often miss (a new tx id,
 * a new blob, a key not yet written); none where reads go in order. Blocks
 * and blobs are large and written once: their values live in blob files. */
static const fl_kv_cf_spec_t CFS[] = {
    {.name = "blocks", .bloom = false, .large_values = true},
    {.name = "txids", .bloom = true},
    {.name = "state", .bloom = true},
    {.name = "history", .bloom = false},
    {.name = "blobs", .bloom = true, .large_values = true},
    {.name = "meta", .bloom = false},
};
#define NCFS (sizeof CFS / sizeof CFS[0])

struct fl_ledger_range_s {
  fl_kv_iter_t *it;
};

struct fl_ledger_hist_s {
  fl_kv_iter_t *it;
  size_t klen;  /* length of the key whose history this is */
};

static bool view_ok(fl_buf_t b) { return b.len == 0 || b.data != NULL; }

fl_status_t fl__state_decode(fl_buf_t raw, fl_ledger_version_t *ver,
                             fl_buf_t *value) {
  if (raw.len < FL__VERSION_LEN) return FL_ECORRUPT;
  if (ver != NULL) *ver = fl__ver_get(raw.data);
  if (value != NULL)
    *value = FL_BUF(raw.data + FL__VERSION_LEN, raw.len - FL__VERSION_LEN);
  return FL_OK;
}

/* The kv snapshot to read through, after checking snap belongs to l. */
static fl_status_t snap_of(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                           const fl_kv_snapshot_t **ks) {
  *ks = NULL;
  if (snap == NULL) return FL_OK;
  if (snap->l != l) return FL_EINVAL;
  *ks = snap->ks;
  return FL_OK;
}

/* ---- open and recovery ------------------------------------------------- */

static fl_status_t cf_has_any(fl_ledger_t *l, fl_kv_cf_t *cf, bool *any) {
  fl_kv_iter_t *it = NULL;
  fl_status_t rc = fl_kv_iter_new(l->kv, cf, NULL, &it);
  if (rc < 0) return rc;
  rc = fl_kv_iter_next(it, NULL, NULL);
  fl_kv_iter_free(it);
  if (rc < 0 && rc != FL_NOTFOUND) return rc;
  *any = rc == FL_OK;
  return FL_OK;
}

/* A savepoint value -> number and hash. */
static fl_status_t savepoint_decode(fl_buf_t v, uint64_t *number,
                                    uint8_t hash[FL_LEDGER_HASH_LEN]) {
  if (v.len != FL__SAVEPOINT_LEN) return FL_ECORRUPT;
  *number = fl_get_be64(v.data);
  if (*number == UINT64_MAX) return FL_ECORRUPT;
  if (hash != NULL) memcpy(hash, v.data + 8, FL_LEDGER_HASH_LEN);
  return FL_OK;
}

/* Deletes every block numbered >= l->height. With blocks in a CF written in
 * the same batch as the savepoint there can be none; the check stays so that
 * a damaged or hand-edited database (or a future block-file design) never
 * serves a block that the savepoint does not cover. */
static fl_status_t trim_beyond_savepoint(fl_ledger_t *l, const char *dir) {
  uint8_t from[8];
  fl_put_be64(from, l->height);
  fl_kv_iter_opts_t io = {.start = FL_BUF(from, sizeof from)};
  fl_kv_iter_t *it = NULL;
  fl_status_t rc = fl_kv_iter_new(l->kv, l->blocks, &io, &it);
  if (rc < 0) return rc;
  fl_kv_batch_t *b = fl_kv_batch_new();
  uint64_t first = 0, last = 0, n = 0;
  fl_buf_t k;
  while ((rc = fl_kv_iter_next(it, &k, NULL)) == FL_OK) {
    uint64_t num = k.len == 8 ? fl_get_be64(k.data) : UINT64_MAX;
    if (n == 0) first = num;
    last = num;
    n++;
    rc = fl_kv_batch_delete(b, l->blocks, k);
    if (rc < 0) break;
  }
  fl_kv_iter_free(it);
  if (rc == FL_NOTFOUND) rc = FL_OK;
  if (rc == FL_OK && n > 0) {
    rc = fl_kv_write(l->kv, b, true);
    FL_WARN(MOD,
            "deleted blocks beyond the savepoint dir=%s height=%" PRIu64
            " count=%" PRIu64 " first=%" PRIu64 " last=%" PRIu64 " rc=%s",
            dir, l->height, n, first, last, fl_status_name(rc));
  }
  fl_kv_batch_free(b);
  return rc;
}

static fl_status_t recover(fl_ledger_t *l, bool create, const char *dir) {
  fl_sbuf_t v = {0};
  fl_kv_pinned_t *pin = NULL;
  fl_status_t rc = fl_kv_get(l->kv, l->meta, NULL, META_KEY(KEY_SCHEMA), &v);
  if (rc == FL_NOTFOUND) {
    bool any_blocks = false, any_state = false, any_sp = false;
    if ((rc = cf_has_any(l, l->blocks, &any_blocks)) < 0) goto done;
    if ((rc = cf_has_any(l, l->state, &any_state)) < 0) goto done;
    if ((rc = cf_has_any(l, l->meta, &any_sp)) < 0) goto done;
    if (any_blocks || any_state || any_sp) {
      FL_ERROR(MOD, "ledger holds data but no schema record dir=%s", dir);
      rc = FL_ECORRUPT;
      goto done;
    }
    if (!create) {
      rc = FL_NOTFOUND;
      goto done;
    }
    uint8_t sv[4];
    fl_put_be32(sv, FL__LEDGER_SCHEMA);
    rc = fl_kv_put(l->kv, l->meta, META_KEY(KEY_SCHEMA), FL_BUF(sv, 4), true);
    if (rc < 0) goto done;
    FL_INFO(MOD, "created ledger dir=%s schema=%u", dir, FL__LEDGER_SCHEMA);
  } else if (rc < 0) {
    goto done;
  } else if (v.len != 4 || fl_get_be32(v.data) != FL__LEDGER_SCHEMA) {
    FL_ERROR(MOD, "unsupported or damaged schema record dir=%s len=%zu", dir,
             v.len);
    rc = FL_ECORRUPT;
    goto done;
  }

  rc = fl_kv_get(l->kv, l->meta, NULL, META_KEY(KEY_SAVEPOINT), &v);
  if (rc == FL_NOTFOUND) {
    l->height = 0;
    memset(l->last_hash, 0, sizeof l->last_hash);
  } else if (rc < 0) {
    goto done;
  } else {
    uint64_t num;
    if (savepoint_decode(fl_sbuf_view(&v), &num, l->last_hash) < 0) {
      FL_ERROR(MOD, "damaged savepoint record dir=%s len=%zu", dir, v.len);
      rc = FL_ECORRUPT;
      goto done;
    }
    uint8_t key[8];
    fl_put_be64(key, num);
    fl_buf_t bv;
    rc = fl_kv_get_pinned(l->kv, l->blocks, NULL, FL_BUF(key, 8), &pin, &bv);
    if (rc == FL_NOTFOUND) {
      FL_ERROR(MOD, "savepoint block is missing dir=%s block=%" PRIu64, dir,
               num);
      rc = FL_ECORRUPT;
      goto done;
    }
    if (rc < 0) goto done;
    if (bv.len < FL_LEDGER_HASH_LEN ||
        memcmp(bv.data, l->last_hash, FL_LEDGER_HASH_LEN) != 0) {
      FL_ERROR(MOD,
               "savepoint hash does not match its block dir=%s block=%" PRIu64,
               dir, num);
      rc = FL_ECORRUPT;
      goto done;
    }
    l->height = num + 1;
  }
  rc = trim_beyond_savepoint(l, dir);
  if (rc < 0) goto done;
  FL_INFO(MOD, "opened ledger dir=%s height=%" PRIu64, dir, l->height);
done:
  fl_kv_pinned_free(pin);
  fl_sbuf_free(&v);
  return rc;
}

fl_status_t fl_ledger_open(const char *dir, const fl_ledger_opts_t *opts,
                           fl_ledger_t **out) {
  if (out != NULL) *out = NULL;
  if (dir == NULL || dir[0] == '\0' || out == NULL) return FL_EINVAL;
  fl_ledger_opts_t o = opts != NULL ? *opts : (fl_ledger_opts_t){0};
  fl_kv_opts_t ko = {.cfs = CFS,
                     .ncfs = NCFS,
                     .create_if_missing = o.create_if_missing,
                     .block_cache_bytes = o.block_cache_bytes,
                     .write_buffer_bytes = o.write_buffer_bytes,
                     .memtable_budget_bytes = o.memtable_budget_bytes};
  fl_ledger_t *l = fl_calloc(1, sizeof *l);
  pthread_mutex_init(&l->mu, NULL);
  fl_status_t rc = fl_kv_open(dir, &ko, &l->kv);
  if (rc < 0) {
    if (rc != FL_NOTFOUND)
      FL_ERROR(MOD, "cannot open ledger database dir=%s rc=%s err=\"%s\"", dir,
               fl_status_name(rc), fl_kv_last_error());
    goto fail;
  }
  l->blocks = fl_kv_cf(l->kv, "blocks");
  l->txids = fl_kv_cf(l->kv, "txids");
  l->state = fl_kv_cf(l->kv, "state");
  l->history = fl_kv_cf(l->kv, "history");
  l->blobs = fl_kv_cf(l->kv, "blobs");
  l->meta = fl_kv_cf(l->kv, "meta");
  FL_ASSERT(l->blocks && l->txids && l->state && l->history && l->blobs &&
            l->meta);
  rc = recover(l, o.create_if_missing, dir);
  if (rc < 0) goto fail;
  /* Armed after recovery, so that nth counts the ledger's own writes from
   * here on: each fl_ledger_commit is exactly one write. */
  if (o.fault != NULL && (rc = fl_kv_fault_set(l->kv, o.fault)) < 0) goto fail;
  l->batch = fl_kv_batch_new();
  *out = l;
  return FL_OK;
fail:
  fl_ledger_close(l);
  return rc;
}

void fl_ledger_close(fl_ledger_t *l) {
  if (l == NULL) return;
  fl_kv_batch_free(l->batch);
  fl_kv_close(l->kv);
  pthread_mutex_destroy(&l->mu);
  fl_free(l);
}

fl_kv_t *fl_ledger_kv(fl_ledger_t *l) { return l != NULL ? l->kv : NULL; }

/* ---- commit ------------------------------------------------------------ */

static fl_status_t check_tx(const fl_ledger_tx_t *t, size_t i) {
  if (!view_ok(t->tx_id)) return FL_EINVAL;
  if (t->tx_id.len > FL_LEDGER_MAX_TXID_LEN) return FL_ETOOBIG;
  if (t->code != FL_LEDGER_TX_VALID) return FL_OK;
  if (t->tx_id.len == 0) {
    FL_WARN(MOD, "commit refused: valid tx without tx id tx=%zu", i);
    return FL_EINVAL;
  }
  if ((t->writes == NULL && t->nwrites > 0) ||
      (t->blobs == NULL && t->nblobs > 0))
    return FL_EINVAL;
  for (size_t w = 0; w < t->nwrites; w++) {
    const fl_ledger_write_t *wr = &t->writes[w];
    if (wr->key.len == 0 || !view_ok(wr->key)) return FL_EINVAL;
    if (wr->key.len > FL_LEDGER_MAX_KEY_LEN) return FL_ETOOBIG;
    if (!wr->is_delete && !view_ok(wr->value)) return FL_EINVAL;
  }
  for (size_t k = 0; k < t->nblobs; k++)
    if (!view_ok(t->blobs[k].data)) return FL_EINVAL;
  return FL_OK;
}

/* Adds tx i's state, history and blob records to the batch. */
static fl_status_t add_valid_tx(fl_ledger_t *l, fl_kv_batch_t *b,
                                uint64_t number, size_t i,
                                const fl_ledger_tx_t *t, fl__lmap_t *blobs,
                                fl_sbuf_t *rec, fl_sbuf_t *key) {
  fl_status_t rc = FL_OK;
  for (size_t w = 0; w < t->nwrites; w++) {
    const fl_ledger_write_t *wr = &t->writes[w];
    if (wr->is_delete) {
      rc = fl_kv_batch_delete(b, l->state, wr->key);
    } else {
      rec->len = 0;
      fl_sbuf_reserve(rec, FL__VERSION_LEN + wr->value.len);
      fl__ver_put(rec->data, number, i);
      rec->len = FL__VERSION_LEN;
      fl_sbuf_append(rec, wr->value.data, wr->value.len);
      rc = fl_kv_batch_put(b, l->state, wr->key, fl_sbuf_view(rec));
    }
    if (rc < 0) return rc;

    key->len = 0;
    fl_sbuf_append(key, wr->key.data, wr->key.len);
    uint8_t sep = 0;
    fl_sbuf_append(key, &sep, 1);
    fl_sbuf_append_be64(key, number);
    fl_sbuf_append_be64(key, (uint64_t)i);
    rec->len = 0;
    uint8_t flags = wr->is_delete ? 1 : 0;
    fl_sbuf_append(rec, &flags, 1);
    uint8_t tl[2] = {(uint8_t)(t->tx_id.len >> 8), (uint8_t)t->tx_id.len};
    fl_sbuf_append(rec, tl, 2);
    fl_sbuf_append(rec, t->tx_id.data, t->tx_id.len);
    if (!wr->is_delete) fl_sbuf_append(rec, wr->value.data, wr->value.len);
    rc = fl_kv_batch_put(b, l->history, fl_sbuf_view(key), fl_sbuf_view(rec));
    if (rc < 0) return rc;
  }
  for (size_t k = 0; k < t->nblobs; k++) {
    const fl_ledger_blob_t *bl = &t->blobs[k];
    uint8_t d[FL_SHA256_LEN];
    fl_sha256(bl->data.data, bl->data.len, d);
    if (bl->hash != NULL && memcmp(bl->hash, d, sizeof d) != 0) {
      FL_WARN(MOD,
              "commit refused: blob does not match its declared hash "
              "block=%" PRIu64 " tx=%zu blob=%zu",
              number, i, k);
      return FL_EMALFORMED;
    }
    bool created;
    (void)fl__lmap_upsert(blobs, FL_BUF(d, sizeof d), &created);
    if (!created) continue;  /* already in this batch */
    fl_kv_pinned_t *pin = NULL;
    fl_buf_t old;
    rc = fl_kv_get_pinned(l->kv, l->blobs, NULL, FL_BUF(d, sizeof d), &pin,
                          &old);
    fl_kv_pinned_free(pin);
    if (rc == FL_OK) continue;  /* stored once, by an earlier block */
    if (rc != FL_NOTFOUND) return rc;
    rc = fl_kv_batch_put(b, l->blobs, FL_BUF(d, sizeof d), bl->data);
    if (rc < 0) return rc;
  }
  return FL_OK;
}

fl_status_t fl_ledger_commit(fl_ledger_t *l, uint64_t number,
                             const uint8_t hash[FL_LEDGER_HASH_LEN],
                             fl_buf_t block, const fl_ledger_tx_t *txs,
                             size_t ntx) {
  FL_RETURN_IF(l == NULL || hash == NULL || block.len == 0 ||
                   block.data == NULL || (txs == NULL && ntx > 0),
               FL_EINVAL);
  FL_RETURN_IF(ntx > UINT32_MAX, FL_ETOOBIG);
  uint64_t height = fl_ledger_height(l);
  if (number != height) {
    FL_WARN(MOD, "commit refused: wrong block number block=%" PRIu64
                 " height=%" PRIu64, number, height);
    return FL_ESTATE;
  }

  fl__lmap_t ids, blobs;
  fl__lmap_init(&ids);
  fl__lmap_init(&blobs);
  fl_sbuf_t rec = {0}, key = {0};
  fl_kv_batch_t *b = l->batch;
  fl_kv_batch_clear(b);
  fl_status_t rc;

  uint8_t bkey[8];
  fl_put_be64(bkey, number);
  fl_sbuf_reserve(&rec, FL_LEDGER_HASH_LEN + block.len);
  fl_sbuf_append(&rec, hash, FL_LEDGER_HASH_LEN);
  fl_sbuf_append(&rec, block.data, block.len);
  rc = fl_kv_batch_put(b, l->blocks, FL_BUF(bkey, 8), fl_sbuf_view(&rec));
  if (rc < 0) goto done;

  for (size_t i = 0; i < ntx; i++) {
    const fl_ledger_tx_t *t = &txs[i];
    bool valid = t->code == FL_LEDGER_TX_VALID;
    if ((rc = check_tx(t, i)) < 0) goto done;
    if (t->tx_id.len > 0) {
      bool created, dup = false;
      (void)fl__lmap_upsert(&ids, t->tx_id, &created);
      if (!created) {
        dup = true;
      } else {
        /* A new tx id: a probe that leaves the block cache alone. */
        rc = fl_kv_probe(l->kv, l->txids, NULL, t->tx_id, NULL);
        if (rc == FL_OK) dup = true;
        else if (rc != FL_NOTFOUND) goto done;
      }
      if (dup && valid) {
        FL_WARN(MOD,
                "commit refused: valid tx reuses a tx id block=%" PRIu64
                " tx=%zu",
                number, i);
        rc = FL_ECONFLICT;
        goto done;
      }
      if (!dup) {
        uint8_t loc[FL__TXLOC_LEN];
        fl__ver_put(loc, number, i);
        loc[12] = t->code;
        rc = fl_kv_batch_put(b, l->txids, t->tx_id, FL_BUF(loc, sizeof loc));
        if (rc < 0) goto done;
      }
    }
    if (!valid) continue;
    rc = add_valid_tx(l, b, number, i, t, &blobs, &rec, &key);
    if (rc < 0) goto done;
  }

  uint8_t sp[FL__SAVEPOINT_LEN];
  fl_put_be64(sp, number);
  memcpy(sp + 8, hash, FL_LEDGER_HASH_LEN);
  rc = fl_kv_batch_put(b, l->meta, META_KEY(KEY_SAVEPOINT),
                       FL_BUF(sp, sizeof sp));
  if (rc < 0) goto done;

  rc = fl_kv_write(l->kv, b, true);
  if (rc < 0) {
    FL_ERROR(MOD, "block write failed block=%" PRIu64 " rc=%s err=\"%s\"",
             number, fl_status_name(rc), fl_kv_last_error());
    goto done;
  }
  pthread_mutex_lock(&l->mu);
  l->height = number + 1;
  memcpy(l->last_hash, hash, FL_LEDGER_HASH_LEN);
  pthread_mutex_unlock(&l->mu);
  FL_DEBUG(MOD, "committed block=%" PRIu64 " txs=%zu bytes=%zu", number, ntx,
           fl_kv_batch_bytes(b));
done:
  fl_kv_batch_clear(b);
  fl_sbuf_free(&rec);
  fl_sbuf_free(&key);
  fl__lmap_free(&ids);
  fl__lmap_free(&blobs);
  return rc;
}

/* ---- height, blocks, transactions -------------------------------------- */

uint64_t fl_ledger_height(fl_ledger_t *l) {
  if (l == NULL) return 0;
  pthread_mutex_lock(&l->mu);
  uint64_t h = l->height;
  pthread_mutex_unlock(&l->mu);
  return h;
}

fl_status_t fl_ledger_last_hash(fl_ledger_t *l,
                                uint8_t out[FL_LEDGER_HASH_LEN]) {
  if (l == NULL || out == NULL) return FL_EINVAL;
  pthread_mutex_lock(&l->mu);
  fl_status_t rc = l->height == 0 ? FL_NOTFOUND : FL_OK;
  if (rc == FL_OK) memcpy(out, l->last_hash, FL_LEDGER_HASH_LEN);
  pthread_mutex_unlock(&l->mu);
  return rc;
}

fl_status_t fl_ledger_block_get(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                                uint64_t number, fl_sbuf_t *out,
                                uint8_t hash[FL_LEDGER_HASH_LEN]) {
  if (l == NULL || out == NULL) return FL_EINVAL;
  out->len = 0;
  const fl_kv_snapshot_t *ks;
  FL_FORWARD(snap_of(l, snap, &ks));
  uint8_t key[8];
  fl_put_be64(key, number);
  fl_kv_pinned_t *pin = NULL;
  fl_buf_t v;
  fl_status_t rc =
      fl_kv_get_pinned(l->kv, l->blocks, ks, FL_BUF(key, 8), &pin, &v);
  if (rc < 0) return rc;
  if (v.len <= FL_LEDGER_HASH_LEN) {
    FL_ERROR(MOD, "damaged block record block=%" PRIu64 " len=%zu", number,
             v.len);
    rc = FL_ECORRUPT;
  } else {
    if (hash != NULL) memcpy(hash, v.data, FL_LEDGER_HASH_LEN);
    fl_sbuf_append(out, v.data + FL_LEDGER_HASH_LEN,
                   v.len - FL_LEDGER_HASH_LEN);
  }
  fl_kv_pinned_free(pin);
  return rc;
}

fl_status_t fl_ledger_tx_get(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                             fl_buf_t tx_id, fl_ledger_txloc_t *loc) {
  if (l == NULL || loc == NULL || tx_id.len == 0 || !view_ok(tx_id))
    return FL_EINVAL;
  const fl_kv_snapshot_t *ks;
  FL_FORWARD(snap_of(l, snap, &ks));
  /* Tx ids are random keys, each looked up about once (a new one at
   * endorsement and validation, a committed one for its status): no read
   * goes through the block cache, which would otherwise fill with a 16 KiB
   * block per lookup that missed the memtable, at the rate of the load. */
  fl_sbuf_t v = {0};
  fl_status_t rc = fl_kv_probe(l->kv, l->txids, ks, tx_id, &v);
  if (rc < 0) goto done;
  if (v.len != FL__TXLOC_LEN) {
    rc = FL_ECORRUPT;
  } else {
    fl_ledger_version_t p = fl__ver_get(v.data);
    *loc = (fl_ledger_txloc_t){
        .block = p.block, .tx = p.tx, .code = v.data[12]};
  }
done:
  fl_sbuf_free(&v);
  return rc;
}

fl_status_t fl_ledger_tx_exists(fl_ledger_t *l, fl_buf_t tx_id, bool *found) {
  if (found == NULL) return FL_EINVAL;
  *found = false;
  if (l == NULL || tx_id.len == 0 || !view_ok(tx_id)) return FL_EINVAL;
  fl_ledger_txloc_t loc;
  fl_status_t rc = fl_ledger_tx_get(l, NULL, tx_id, &loc);
  if (rc == FL_NOTFOUND) return FL_OK;
  if (rc < 0) return rc;
  *found = true;
  return FL_OK;
}

/* ---- snapshots --------------------------------------------------------- */

fl_status_t fl_ledger_snap_new(fl_ledger_t *l, fl_ledger_snap_t **out) {
  if (out != NULL) *out = NULL;
  if (l == NULL || out == NULL) return FL_EINVAL;
  fl_ledger_snap_t *s = fl_calloc(1, sizeof *s);
  s->l = l;
  s->ks = fl_kv_snapshot_new(l->kv);
  /* The height comes from the savepoint as the snapshot sees it: it was
   * written in the same batch as the block, so height and data agree even
   * when a commit finishes while this runs. */
  fl_sbuf_t v = {0};
  fl_status_t rc =
      fl_kv_get(l->kv, l->meta, s->ks, META_KEY(KEY_SAVEPOINT), &v);
  if (rc == FL_NOTFOUND) {
    s->height = 0;
    rc = FL_OK;
  } else if (rc == FL_OK) {
    uint64_t num;
    rc = savepoint_decode(fl_sbuf_view(&v), &num, NULL);
    if (rc == FL_OK) s->height = num + 1;
  }
  fl_sbuf_free(&v);
  if (rc < 0) {
    fl_ledger_snap_free(s);
    return rc;
  }
  *out = s;
  return FL_OK;
}

void fl_ledger_snap_free(fl_ledger_snap_t *s) {
  if (s == NULL) return;
  fl_kv_snapshot_free(s->l->kv, s->ks);
  fl_free(s);
}

uint64_t fl_ledger_snap_height(const fl_ledger_snap_t *s) {
  return s != NULL ? s->height : 0;
}

/* ---- state ------------------------------------------------------------- */

fl_status_t fl_ledger_state_get(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                                fl_buf_t key, fl_sbuf_t *val,
                                fl_ledger_version_t *ver) {
  if (l == NULL || val == NULL || !view_ok(key)) return FL_EINVAL;
  val->len = 0;
  const fl_kv_snapshot_t *ks;
  FL_FORWARD(snap_of(l, snap, &ks));
  fl_kv_pinned_t *pin = NULL;
  fl_buf_t raw, v;
  fl_status_t rc = fl_kv_get_pinned(l->kv, l->state, ks, key, &pin, &raw);
  if (rc < 0) return rc;
  rc = fl__state_decode(raw, ver, &v);
  if (rc == FL_OK) fl_sbuf_append(val, v.data, v.len);
  fl_kv_pinned_free(pin);
  return rc;
}

fl_status_t fl_ledger_range_new(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                                fl_buf_t start, fl_buf_t end,
                                fl_ledger_range_t **out) {
  if (out != NULL) *out = NULL;
  if (l == NULL || out == NULL || !view_ok(start) || !view_ok(end))
    return FL_EINVAL;
  const fl_kv_snapshot_t *ks;
  FL_FORWARD(snap_of(l, snap, &ks));
  fl_kv_iter_opts_t io = {.start = start, .end = end, .snap = ks};
  fl_kv_iter_t *it = NULL;
  FL_FORWARD(fl_kv_iter_new(l->kv, l->state, &io, &it));
  fl_ledger_range_t *r = fl_malloc(sizeof *r);
  r->it = it;
  *out = r;
  return FL_OK;
}

fl_status_t fl_ledger_range_next(fl_ledger_range_t *it, fl_buf_t *key,
                                 fl_buf_t *val, fl_ledger_version_t *ver) {
  if (key != NULL) *key = (fl_buf_t){0};
  if (val != NULL) *val = (fl_buf_t){0};
  if (it == NULL) return FL_EINVAL;
  fl_buf_t k, raw;
  fl_status_t rc = fl_kv_iter_next(it->it, &k, &raw);
  if (rc < 0) return rc;
  FL_FORWARD(fl__state_decode(raw, ver, val));
  if (key != NULL) *key = k;
  return FL_OK;
}

void fl_ledger_range_free(fl_ledger_range_t *it) {
  if (it == NULL) return;
  fl_kv_iter_free(it->it);
  fl_free(it);
}

/* ---- history ----------------------------------------------------------- */

fl_status_t fl_ledger_hist_new(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                               fl_buf_t key, bool newest_first,
                               fl_ledger_hist_t **out) {
  if (out != NULL) *out = NULL;
  if (l == NULL || out == NULL || key.len == 0 || !view_ok(key))
    return FL_EINVAL;
  if (key.len > FL_LEDGER_MAX_KEY_LEN) return FL_ETOOBIG;
  const fl_kv_snapshot_t *ks;
  FL_FORWARD(snap_of(l, snap, &ks));
  uint8_t *prefix = fl_malloc(key.len + 1);
  memcpy(prefix, key.data, key.len);
  prefix[key.len] = 0;
  fl_kv_iter_opts_t io = {.prefix = FL_BUF(prefix, key.len + 1),
                          .reverse = newest_first,
                          .snap = ks};
  fl_kv_iter_t *it = NULL;
  fl_status_t rc = fl_kv_iter_new(l->kv, l->history, &io, &it);
  fl_free(prefix);  /* the iterator copied it */
  if (rc < 0) return rc;
  fl_ledger_hist_t *h = fl_malloc(sizeof *h);
  h->it = it;
  h->klen = key.len;
  *out = h;
  return FL_OK;
}

fl_status_t fl_ledger_hist_next(fl_ledger_hist_t *it, fl_ledger_mod_t *mod) {
  if (it == NULL || mod == NULL) return FL_EINVAL;
  *mod = (fl_ledger_mod_t){0};
  fl_buf_t k, v;
  fl_status_t rc;
  while ((rc = fl_kv_iter_next(it->it, &k, &v)) == FL_OK) {
    /* A longer key that merely starts with key || 0x00 belongs to another
     * state key (ledger_int.h, "History"). */
    if (k.len == it->klen + FL__HIST_SUFFIX) break;
  }
  if (rc < 0) return rc;
  if (v.len < 3) return FL_ECORRUPT;
  size_t tl = ((size_t)v.data[1] << 8) | v.data[2];
  if (v.len < 3 + tl || (v.data[0] & ~1u) != 0) return FL_ECORRUPT;
  mod->block = fl_get_be64(k.data + it->klen + 1);
  mod->tx = fl_get_be64(k.data + it->klen + 9);
  mod->tx_id = FL_BUF(v.data + 3, tl);
  mod->is_delete = (v.data[0] & 1u) != 0;
  mod->value = FL_BUF(v.data + 3 + tl, v.len - 3 - tl);
  return FL_OK;
}

void fl_ledger_hist_free(fl_ledger_hist_t *it) {
  if (it == NULL) return;
  fl_kv_iter_free(it->it);
  fl_free(it);
}

/* ---- blobs ------------------------------------------------------------- */

fl_status_t fl_ledger_blob_get(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                               const uint8_t hash[FL_LEDGER_HASH_LEN],
                               fl_sbuf_t *out) {
  if (l == NULL || hash == NULL || out == NULL) return FL_EINVAL;
  out->len = 0;
  const fl_kv_snapshot_t *ks;
  FL_FORWARD(snap_of(l, snap, &ks));
  fl_kv_pinned_t *pin = NULL;
  fl_buf_t v;
  fl_status_t rc = fl_kv_get_pinned(l->kv, l->blobs, ks,
                                    FL_BUF(hash, FL_LEDGER_HASH_LEN), &pin, &v);
  if (rc < 0) return rc;
  uint8_t d[FL_SHA256_LEN];
  fl_sha256(v.data, v.len, d);
  if (memcmp(d, hash, sizeof d) != 0) {
    FL_ERROR(MOD, "stored blob does not hash to its key len=%zu", v.len);
    rc = FL_ECORRUPT;
  } else {
    fl_sbuf_append(out, v.data, v.len);
  }
  fl_kv_pinned_free(pin);
  return rc;
}
