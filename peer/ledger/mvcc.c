/* SPDX-License-Identifier: Apache-2.0
 *
 * mvcc.c: multi-version concurrency control for the validator.
 *
 * For the transactions of the next block, in block order, decide whether
 * what each one read at simulation time still holds. The state a
 * transaction is judged against is the committed state (one RocksDB
 * snapshot taken at the start, so the whole block is judged against one
 * state) plus the writes of the earlier transactions of the same block that
 * were found VALID. The rules follow Fabric's validator:
 *
 *   1. a point read conflicts (MVCC_READ_CONFLICT) when an earlier valid tx
 *      of this block wrote the key (the read necessarily saw the older
 *      version), or when the committed key's existence or version differs
 *      from what was read;
 *   2. a range read conflicts (PHANTOM_READ_CONFLICT) when an earlier valid
 *      tx of this block wrote or deleted any key inside the range, or when a
 *      fresh scan of the committed state over the range yields a different
 *      list of (key, version) than recorded; a scan cut by a limit
 *      (exhausted == false) is checked only up to its last key;
 *   3. writes never conflict: a blind write is always valid;
 *   4. only VALID transactions' writes enter the in-block view.
 *
 * Cost: committed point reads go through a per-call cache (fl__lmap), so a
 * key is read from the database at most once per block however many
 * transactions read it; keys seen by range scans are added to that cache
 * too. A range check walks the pending writes (O(writes so far)) and does
 * one bounded scan of the snapshot.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "peer/ledger/ledger_int.h"

typedef struct mvcc_s {
  fl_ledger_t *l;
  fl_kv_snapshot_t *ks;
  fl__lmap_t cache;    /* committed: flag = exists, ver */
  fl__lmap_t pending;  /* in-block writes of valid txs: flag = delete */
  fl_sbuf_t hi;        /* scratch for an exclusive upper bound */
} mvcc_t;

static bool view_ok(fl_buf_t b) { return b.len == 0 || b.data != NULL; }

static bool ver_eq(fl_ledger_version_t a, fl_ledger_version_t b) {
  return a.block == b.block && a.tx == b.tx;
}

/* The committed existence and version of key, from the cache or (once) from
 * the snapshot. */
static fl_status_t committed(mvcc_t *m, fl_buf_t key, bool *exists,
                             fl_ledger_version_t *ver) {
  fl__lmap_ent_t *e = fl__lmap_find(&m->cache, key);
  if (e == NULL) {
    fl_kv_pinned_t *pin = NULL;
    fl_buf_t raw;
    fl_ledger_version_t v = {0};
    fl_status_t rc =
        fl_kv_get_pinned(m->l->kv, m->l->state, m->ks, key, &pin, &raw);
    if (rc == FL_OK) rc = fl__state_decode(raw, &v, NULL);
    fl_kv_pinned_free(pin);
    if (rc < 0 && rc != FL_NOTFOUND) return rc;
    bool created;
    e = fl__lmap_upsert(&m->cache, key, &created);
    e->flag = rc == FL_OK;
    e->ver = v;
  }
  *exists = e->flag;
  *ver = e->ver;
  return FL_OK;
}

static fl_status_t check_read(mvcc_t *m, const fl_ledger_read_t *r, bool *ok) {
  *ok = false;
  if (fl__lmap_find(&m->pending, r->key) != NULL) return FL_OK;  /* rule 1 */
  bool exists;
  fl_ledger_version_t v;
  FL_FORWARD(committed(m, r->key, &exists, &v));
  *ok = exists == r->exists && (!exists || ver_eq(v, r->version));
  return FL_OK;
}

/* In [start, hi), where hi.len == 0 means unbounded. */
static bool in_range(fl_buf_t k, fl_buf_t start, fl_buf_t hi) {
  if (fl__bytes_cmp(k, start) < 0) return false;
  return hi.len == 0 || fl__bytes_cmp(k, hi) < 0;
}

static fl_status_t check_range(mvcc_t *m, const fl_ledger_range_read_t *rr,
                               bool *ok) {
  *ok = false;
  fl_buf_t hi = rr->end;
  if (!rr->exhausted) {
    if (rr->nreads == 0) {
      /* Cut by a limit before it read anything: it saw nothing to change. */
      *ok = true;
      return FL_OK;
    }
    /* Checked up to and including the last key read: the smallest key
     * after it is last || 0x00. */
    fl_buf_t last = rr->reads[rr->nreads - 1].key;
    m->hi.len = 0;
    fl_sbuf_append(&m->hi, last.data, last.len);
    uint8_t z = 0;
    fl_sbuf_append(&m->hi, &z, 1);
    if (rr->end.len == 0 || fl__bytes_cmp(fl_sbuf_view(&m->hi), rr->end) < 0)
      hi = fl_sbuf_view(&m->hi);
  }

  /* Rule 2, first half: any write of an earlier valid tx inside the range. */
  for (size_t i = 0; i < m->pending.cap; i++) {
    const fl__lmap_ent_t *e = &m->pending.slots[i];
    if (e->key != NULL && in_range(FL_BUF(e->key, e->klen), rr->start, hi))
      return FL_OK;
  }

  /* Second half: the committed keys in the range, in order, must be exactly
   * the recorded ones with the recorded versions. */
  fl_kv_iter_opts_t io = {.start = rr->start, .end = hi, .snap = m->ks};
  fl_kv_iter_t *it = NULL;
  FL_FORWARD(fl_kv_iter_new(m->l->kv, m->l->state, &io, &it));
  size_t j = 0;
  bool match = true;
  fl_buf_t k, raw;
  fl_status_t rc;
  while ((rc = fl_kv_iter_next(it, &k, &raw)) == FL_OK) {
    fl_ledger_version_t v;
    if ((rc = fl__state_decode(raw, &v, NULL)) < 0) break;
    bool created;
    fl__lmap_ent_t *e = fl__lmap_upsert(&m->cache, k, &created);
    if (created) {
      e->flag = true;
      e->ver = v;
    }
    if (j >= rr->nreads) {
      match = false;  /* a phantom: a key the scan did not see */
      break;
    }
    const fl_ledger_read_t *r = &rr->reads[j++];
    if (!r->exists || fl__bytes_cmp(k, r->key) != 0 || !ver_eq(v, r->version)) {
      match = false;
      break;
    }
  }
  fl_kv_iter_free(it);
  if (rc < 0 && rc != FL_NOTFOUND) return rc;
  *ok = match && j == rr->nreads;
  return FL_OK;
}

static bool tx_shape_ok(const fl_ledger_mvcc_tx_t *t) {
  if ((t->reads == NULL && t->nreads > 0) ||
      (t->ranges == NULL && t->nranges > 0) ||
      (t->writes == NULL && t->nwrites > 0))
    return false;
  for (size_t i = 0; i < t->nreads; i++)
    if (!view_ok(t->reads[i].key)) return false;
  for (size_t i = 0; i < t->nwrites; i++)
    if (!view_ok(t->writes[i].key)) return false;
  for (size_t i = 0; i < t->nranges; i++) {
    const fl_ledger_range_read_t *r = &t->ranges[i];
    if (!view_ok(r->start) || !view_ok(r->end) ||
        (r->reads == NULL && r->nreads > 0))
      return false;
    for (size_t j = 0; j < r->nreads; j++)
      if (!view_ok(r->reads[j].key)) return false;
  }
  return true;
}

fl_status_t fl_ledger_mvcc_check(fl_ledger_t *l, uint64_t number,
                                 const fl_ledger_mvcc_tx_t *txs, size_t ntx,
                                 uint8_t *codes) {
  FL_RETURN_IF(l == NULL || (ntx > 0 && (txs == NULL || codes == NULL)),
               FL_EINVAL);
  uint64_t height = fl_ledger_height(l);
  if (number != height) {
    FL_WARN(FL__LEDGER_MOD, "mvcc refused: wrong block number block=%llu "
            "height=%llu", (unsigned long long)number,
            (unsigned long long)height);
    return FL_ESTATE;
  }
  for (size_t i = 0; i < ntx; i++)
    FL_RETURN_IF(txs[i].code == FL_LEDGER_TX_VALID && !tx_shape_ok(&txs[i]),
                 FL_EINVAL);

  mvcc_t m = {.l = l};
  m.ks = fl_kv_snapshot_new(l->kv);
  fl__lmap_init(&m.cache);
  fl__lmap_init(&m.pending);
  uint8_t *tmp = fl_malloc(ntx);
  fl_status_t rc = FL_OK;
  size_t nvalid = 0;

  for (size_t i = 0; i < ntx; i++) {
    const fl_ledger_mvcc_tx_t *t = &txs[i];
    if (t->code != FL_LEDGER_TX_VALID) {
      tmp[i] = t->code;
      continue;
    }
    uint8_t c = FL_LEDGER_TX_VALID;
    bool ok = true;
    for (size_t r = 0; r < t->nreads && ok; r++)
      if ((rc = check_read(&m, &t->reads[r], &ok)) < 0) goto done;
    if (!ok) c = FL_LEDGER_TX_MVCC_READ_CONFLICT;
    for (size_t r = 0; r < t->nranges && ok; r++)
      if ((rc = check_range(&m, &t->ranges[r], &ok)) < 0) goto done;
    if (!ok && c == FL_LEDGER_TX_VALID) c = FL_LEDGER_TX_PHANTOM_READ_CONFLICT;
    tmp[i] = c;
    if (c != FL_LEDGER_TX_VALID) continue;
    nvalid++;
    for (size_t w = 0; w < t->nwrites; w++) {  /* rule 4 */
      bool created;
      fl__lmap_ent_t *e =
          fl__lmap_upsert(&m.pending, t->writes[w].key, &created);
      e->flag = t->writes[w].is_delete;
      e->ver = (fl_ledger_version_t){.block = number, .tx = i};
    }
  }
  if (ntx > 0) memcpy(codes, tmp, ntx);
  FL_DEBUG(FL__LEDGER_MOD, "mvcc block=%llu txs=%zu valid=%zu",
           (unsigned long long)number, ntx, nvalid);
done:
  fl_free(tmp);
  fl_sbuf_free(&m.hi);
  fl__lmap_free(&m.pending);
  fl__lmap_free(&m.cache);
  fl_kv_snapshot_free(l->kv, m.ks);
  return rc;
}
