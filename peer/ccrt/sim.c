/* SPDX-License-Identifier: Apache-2.0
 *
 * sim.c: the transaction simulator. Whatever runs the chaincode (the calling
 * thread, or a worker process through worker.c), every state access of the
 * chaincode ends up here, in the peer, where the read set (first read of a
 * key, with its version), the write set (last write wins), the range reads,
 * the blobs and the event are recorded (invariants in ccrt_int.h). At the
 * end fl__sim_finish sorts them into the deterministic order documented in
 * ccrt.h and packs the fl.ledger.TxRwSet.
 */
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/crypto/hash.h"
#include "fl/ledger/rwset.pb-c.h"
#include "peer/ccrt/ccrt_int.h"

/* ---- arena ---------------------------------------------------------------- */

void *fl__arena_alloc(fl__arena_t *a, size_t n) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 16;
    a->p = fl_reallocarray(a->p, a->cap, sizeof *a->p);
  }
  void *p = fl_malloc(n);
  a->p[a->n++] = p;
  return p;
}

void fl__arena_adopt(fl__arena_t *a, void *p) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 16;
    a->p = fl_reallocarray(a->p, a->cap, sizeof *a->p);
  }
  a->p[a->n++] = p;
}

uint8_t *fl__arena_dup(fl__arena_t *a, fl_buf_t b) {
  uint8_t *p = fl__arena_alloc(a, b.len + 1);
  if (b.len) memcpy(p, b.data, b.len);
  p[b.len] = 0;
  return p;
}

void fl__arena_free(fl__arena_t *a) {
  if (!a) return;
  for (size_t i = 0; i < a->n; i++) fl_free(a->p[i]);
  fl_free(a->p);
  *a = (fl__arena_t){0};
}

/* ---- checks ---------------------------------------------------------------- */

fl_status_t fl__bound_check(fl_buf_t b) {
  if (b.len > FL_CC_MAX_KEY) return FL_ETOOBIG;
  if (b.len && !b.data) return FL_EINVAL;
  if (b.len && memchr(b.data, 0, b.len)) return FL_EINVAL;
  return FL_OK;
}

fl_status_t fl__key_check(fl_buf_t key) {
  if (key.len == 0) return FL_EINVAL;
  return fl__bound_check(key);
}

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n ? memcmp(a, b, n) : 0;
  if (c) return c;
  return alen < blen ? -1 : alen > blen;
}

static uint8_t *dup0(fl_buf_t b) {
  uint8_t *p = fl_malloc(b.len + 1);
  if (b.len) memcpy(p, b.data, b.len);
  p[b.len] = 0;
  return p;
}

/* ---- key index: open addressing over an entries array ----------------------- */

uint64_t fl__ccrt_fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

/* The key of entry i of either array: both entry types start the same way. */
typedef const uint8_t *(*key_of_fn)(const void *arr, uint32_t i, size_t *len);

static const uint8_t *rd_key(const void *arr, uint32_t i, size_t *len) {
  const fl__rd_t *r = (const fl__rd_t *)arr + i;
  *len = r->klen;
  return r->key;
}
static const uint8_t *wr_key(const void *arr, uint32_t i, size_t *len) {
  const fl__wr_t *w = (const fl__wr_t *)arr + i;
  *len = w->klen;
  return w->key;
}

/* Returns the entry index of key, or -1 (and *slot = the empty slot). */
static long index_find(const fl__index_t *ix, const void *arr, key_of_fn kf,
                       fl_buf_t key, size_t *slot) {
  if (ix->cap == 0) return -1;
  size_t mask = ix->cap - 1, i = (size_t)fl__ccrt_fnv1a(key.data, key.len) & mask;
  for (;;) {
    uint32_t v = ix->slot[i];
    if (v == 0) {
      if (slot) *slot = i;
      return -1;
    }
    size_t klen;
    const uint8_t *k = kf(arr, v - 1, &klen);
    if (klen == key.len && memcmp(k, key.data, klen) == 0) return (long)(v - 1);
    i = (i + 1) & mask;
  }
}

/* Adds entry `idx` (already stored in arr) to the index, growing it first. */
static void index_add(fl__index_t *ix, const void *arr, key_of_fn kf, uint32_t idx) {
  if ((ix->used + 1) * 2 > ix->cap) {
    size_t ncap = ix->cap ? ix->cap * 2 : 64;
    uint32_t *old = ix->slot;
    size_t ocap = ix->cap;
    ix->slot = fl_calloc(ncap, sizeof *ix->slot);
    ix->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
      if (!old[i]) continue;
      size_t klen;
      const uint8_t *k = kf(arr, old[i] - 1, &klen);
      size_t j = (size_t)fl__ccrt_fnv1a(k, klen) & (ncap - 1);
      while (ix->slot[j]) j = (j + 1) & (ncap - 1);
      ix->slot[j] = old[i];
    }
    fl_free(old);
  }
  size_t klen;
  const uint8_t *k = kf(arr, idx, &klen);
  size_t j = (size_t)fl__ccrt_fnv1a(k, klen) & (ix->cap - 1);
  while (ix->slot[j]) j = (j + 1) & (ix->cap - 1);
  ix->slot[j] = idx + 1;
  ix->used++;
}

/* ---- simulator ---------------------------------------------------------------- */

void fl__sim_init(fl__sim_t *s, const fl_ccrt_state_ops_t *ops, void *ctx) {
  *s = (fl__sim_t){.ops = ops, .ctx = ctx, .failed = FL_OK};
}

void fl__sim_close(fl__sim_t *s) {
  if (!s) return;
  for (size_t i = 0; i < s->nreads; i++) fl_free(s->reads[i].key);
  fl_free(s->reads);
  fl_free(s->ridx.slot);
  for (size_t i = 0; i < s->nwrites; i++) {
    fl_free(s->writes[i].key);
    fl_free(s->writes[i].val);
  }
  fl_free(s->writes);
  fl_free(s->widx.slot);
  for (size_t i = 0; i < s->nranges; i++) {
    fl__rng_t *r = &s->ranges[i];
    if (r->open) s->ops->range_free(r->it);
    for (size_t j = 0; j < r->nreads; j++) fl_free(r->reads[j].key);
    fl_free(r->reads);
    fl_free(r->start);
    fl_free(r->end);
  }
  fl_free(s->ranges);
  for (size_t i = 0; i < s->nhists; i++)
    if (s->hists[i].open) s->ops->hist_free(s->hists[i].it);
  fl_free(s->hists);
  for (size_t i = 0; i < s->nblobs; i++) fl_free(s->blobs[i].data);
  fl_free(s->blobs);
  fl_sbuf_free(&s->ev_name);
  fl_sbuf_free(&s->ev_payload);
  *s = (fl__sim_t){0};
}

/* Records a state-op failure (invariant 4) and passes rc on. */
static fl_status_t sim_fail(fl__sim_t *s, fl_status_t rc, const char *what) {
  if (s->failed == FL_OK) {
    s->failed = rc;
    FL_WARN(FL__CCRT_LOG, "state access failed op=%s rc=%s", what, fl_status_name(rc));
  }
  return rc;
}

fl_status_t fl__sim_check_deadline(fl__sim_t *s) {
  if (s->failed == FL_ETIMEDOUT) return FL_ETIMEDOUT;
  if (s->deadline_ns && fl_mono_ns() > s->deadline_ns) {
    if (s->failed == FL_OK) s->failed = FL_ETIMEDOUT;
    return FL_ETIMEDOUT;
  }
  return FL_OK;
}

fl_status_t fl__sim_get(fl__sim_t *s, fl_buf_t key, fl_sbuf_t *out) {
  out->len = 0;
  FL_FORWARD(fl__key_check(key));
  FL_FORWARD(fl__sim_check_deadline(s));
  long w = index_find(&s->widx, s->writes, wr_key, key, NULL);
  if (w >= 0) { /* read-your-writes: no read recorded */
    const fl__wr_t *wr = &s->writes[w];
    if (wr->del) return FL_NOTFOUND;
    fl_sbuf_append(out, wr->val, wr->vlen);
    return FL_OK;
  }
  fl_ccrt_version_t ver = {0};
  fl_status_t rc = s->ops->get(s->ctx, key, out, &ver);
  if (rc != FL_OK && rc != FL_NOTFOUND) {
    out->len = 0;
    return sim_fail(s, rc, "get");
  }
  if (rc == FL_NOTFOUND) out->len = 0;
  if (index_find(&s->ridx, s->reads, rd_key, key, NULL) < 0) {
    if (s->nreads == s->rcap) {
      s->rcap = s->rcap ? s->rcap * 2 : 16;
      s->reads = fl_reallocarray(s->reads, s->rcap, sizeof *s->reads);
    }
    s->reads[s->nreads] = (fl__rd_t){.key = dup0(key), .klen = key.len,
                                     .exists = rc == FL_OK, .ver = rc == FL_OK ? ver
                                                            : (fl_ccrt_version_t){0}};
    index_add(&s->ridx, s->reads, rd_key, (uint32_t)s->nreads);
    s->nreads++;
  }
  return rc;
}

static fl_status_t sim_write(fl__sim_t *s, fl_buf_t key, fl_buf_t val, bool del) {
  FL_FORWARD(fl__key_check(key));
  if (!del && val.len > FL_CC_MAX_VALUE) return FL_ETOOBIG;
  if (!del && val.len && !val.data) return FL_EINVAL;
  FL_FORWARD(fl__sim_check_deadline(s));
  uint8_t *v = del ? NULL : fl_memdup(val.data, val.len);
  long w = index_find(&s->widx, s->writes, wr_key, key, NULL);
  if (w >= 0) {
    fl__wr_t *wr = &s->writes[w];
    fl_free(wr->val);
    wr->val = v;
    wr->vlen = del ? 0 : val.len;
    wr->del = del;
    return FL_OK;
  }
  if (s->nwrites == s->wcap) {
    s->wcap = s->wcap ? s->wcap * 2 : 16;
    s->writes = fl_reallocarray(s->writes, s->wcap, sizeof *s->writes);
  }
  s->writes[s->nwrites] = (fl__wr_t){.key = dup0(key), .klen = key.len, .del = del,
                                     .val = v, .vlen = del ? 0 : val.len};
  index_add(&s->widx, s->writes, wr_key, (uint32_t)s->nwrites);
  s->nwrites++;
  return FL_OK;
}

fl_status_t fl__sim_put(fl__sim_t *s, fl_buf_t key, fl_buf_t val) {
  return sim_write(s, key, val, false);
}

fl_status_t fl__sim_del(fl__sim_t *s, fl_buf_t key) {
  return sim_write(s, key, (fl_buf_t){0}, true);
}

fl_status_t fl__sim_range_open(fl__sim_t *s, fl_buf_t start, fl_buf_t end,
                               uint32_t *id) {
  FL_FORWARD(fl__bound_check(start));
  FL_FORWARD(fl__bound_check(end));
  FL_FORWARD(fl__sim_check_deadline(s));
  if (s->nranges >= UINT32_MAX / 2) return FL_ETOOBIG;
  void *it = NULL;
  fl_status_t rc = s->ops->range_new(s->ctx, start, end, &it);
  if (rc != FL_OK) return sim_fail(s, rc, "range");
  if (s->nranges == s->rgcap) {
    s->rgcap = s->rgcap ? s->rgcap * 2 : 4;
    s->ranges = fl_reallocarray(s->ranges, s->rgcap, sizeof *s->ranges);
  }
  s->ranges[s->nranges] = (fl__rng_t){.start = dup0(start), .slen = start.len,
                                      .end = dup0(end), .elen = end.len,
                                      .it = it, .open = true};
  *id = (uint32_t)s->nranges++;
  return FL_OK;
}

fl_status_t fl__sim_range_next(fl__sim_t *s, uint32_t id, fl_buf_t *key,
                               fl_buf_t *val) {
  if (id >= s->nranges || !s->ranges[id].open) return FL_EPROTO;
  FL_FORWARD(fl__sim_check_deadline(s));
  fl__rng_t *r = &s->ranges[id];
  if (r->src_end) return FL_NOTFOUND;
  fl_ccrt_version_t ver = {0};
  fl_status_t rc = s->ops->range_next(r->it, key, val, &ver);
  if (rc == FL_NOTFOUND) {
    r->src_end = true;
    return FL_NOTFOUND;
  }
  if (rc != FL_OK) return sim_fail(s, rc, "range_next");
  if (fl__key_check(*key) != FL_OK) /* a key the rw-set cannot carry */
    return sim_fail(s, FL_ECORRUPT, "range_next");
  if (r->nreads == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 16;
    r->reads = fl_reallocarray(r->reads, r->cap, sizeof *r->reads);
  }
  r->reads[r->nreads++] = (fl__rd_t){.key = dup0(*key), .klen = key->len,
                                     .exists = true, .ver = ver};
  return FL_OK;
}

fl_status_t fl__sim_range_close(fl__sim_t *s, uint32_t id, uint64_t consumed,
                                bool saw_end) {
  if (id >= s->nranges || !s->ranges[id].open) return FL_EPROTO;
  fl__rng_t *r = &s->ranges[id];
  if (consumed > r->nreads) return FL_EPROTO;
  for (size_t j = (size_t)consumed; j < r->nreads; j++) fl_free(r->reads[j].key);
  bool all = consumed == r->nreads;
  r->nreads = (size_t)consumed;
  r->exhausted = saw_end && all && r->src_end;
  s->ops->range_free(r->it);
  r->it = NULL;
  r->open = false;
  return FL_OK;
}

fl_status_t fl__sim_hist_open(fl__sim_t *s, fl_buf_t key, uint32_t *id) {
  FL_FORWARD(fl__key_check(key));
  FL_FORWARD(fl__sim_check_deadline(s));
  if (s->nhists >= UINT32_MAX / 2) return FL_ETOOBIG;
  void *it = NULL;
  fl_status_t rc = s->ops->hist_new(s->ctx, key, &it);
  if (rc != FL_OK) return sim_fail(s, rc, "history");
  if (s->nhists == s->hcap) {
    s->hcap = s->hcap ? s->hcap * 2 : 4;
    s->hists = fl_reallocarray(s->hists, s->hcap, sizeof *s->hists);
  }
  s->hists[s->nhists] = (fl__hist_t){.it = it, .open = true};
  *id = (uint32_t)s->nhists++;
  return FL_OK;
}

fl_status_t fl__sim_hist_next(fl__sim_t *s, uint32_t id, fl_ccrt_mod_t *mod) {
  if (id >= s->nhists || !s->hists[id].open) return FL_EPROTO;
  FL_FORWARD(fl__sim_check_deadline(s));
  fl_status_t rc = s->ops->hist_next(s->hists[id].it, mod);
  if (rc != FL_OK && rc != FL_NOTFOUND) return sim_fail(s, rc, "history_next");
  return rc;
}

fl_status_t fl__sim_hist_close(fl__sim_t *s, uint32_t id) {
  if (id >= s->nhists || !s->hists[id].open) return FL_EPROTO;
  s->ops->hist_free(s->hists[id].it);
  s->hists[id] = (fl__hist_t){0};
  return FL_OK;
}

fl_status_t fl__sim_blob_get(fl__sim_t *s, const uint8_t hash[FL_CCRT_HASH_LEN],
                             fl_sbuf_t *out) {
  out->len = 0;
  FL_FORWARD(fl__sim_check_deadline(s));
  fl_status_t rc = s->ops->blob_get(s->ctx, hash, out);
  if (rc == FL_NOTFOUND) {
    out->len = 0;
    return rc;
  }
  if (rc != FL_OK) {
    out->len = 0;
    return sim_fail(s, rc, "blob_get");
  }
  if (out->len > FL_CC_MAX_VALUE) { /* the stub could not hand it over */
    out->len = 0;
    return FL_ETOOBIG;
  }
  return FL_OK;
}

fl_status_t fl__sim_put_blob(fl__sim_t *s, fl_buf_t data,
                             uint8_t hash[FL_CCRT_HASH_LEN]) {
  if (data.len > FL_CC_MAX_VALUE) return FL_ETOOBIG;
  if (data.len && !data.data) return FL_EINVAL;
  FL_FORWARD(fl__sim_check_deadline(s));
  fl_sha256(data.data, data.len, hash);
  for (size_t i = 0; i < s->nblobs; i++)
    if (memcmp(s->blobs[i].hash, hash, FL_CCRT_HASH_LEN) == 0) return FL_OK;
  if (s->nblobs == s->bcap) {
    s->bcap = s->bcap ? s->bcap * 2 : 4;
    s->blobs = fl_reallocarray(s->blobs, s->bcap, sizeof *s->blobs);
  }
  fl__blob_t *b = &s->blobs[s->nblobs++];
  memcpy(b->hash, hash, FL_CCRT_HASH_LEN);
  b->data = fl_memdup(data.data, data.len);
  b->len = data.len;
  return FL_OK;
}

fl_status_t fl__sim_set_event(fl__sim_t *s, fl_buf_t name, fl_buf_t payload) {
  if (name.len == 0 || !name.data) return FL_EINVAL;
  if (name.len > FL_CC_MAX_KEY || payload.len > FL_CC_MAX_VALUE) return FL_ETOOBIG;
  if (memchr(name.data, 0, name.len)) return FL_EINVAL; /* a proto string */
  if (payload.len && !payload.data) return FL_EINVAL;
  FL_FORWARD(fl__sim_check_deadline(s));
  s->ev_name.len = s->ev_payload.len = 0;
  fl_sbuf_append(&s->ev_name, name.data, name.len);
  fl_sbuf_append(&s->ev_payload, payload.data, payload.len);
  s->has_event = true;
  return FL_OK;
}

/* ---- result ------------------------------------------------------------------ */

static int rd_cmp(const void *a, const void *b) {
  const fl__rd_t *x = a, *y = b;
  return key_cmp(x->key, x->klen, y->key, y->klen);
}
static int wr_cmp(const void *a, const void *b) {
  const fl__wr_t *x = a, *y = b;
  return key_cmp(x->key, x->klen, y->key, y->klen);
}
static int blob_cmp(const void *a, const void *b) {
  const fl__blob_t *x = a, *y = b;
  return memcmp(x->hash, y->hash, FL_CCRT_HASH_LEN);
}

static fl_buf_t arena_buf(fl__arena_t *a, const void *p, size_t n) {
  return (fl_buf_t){.data = fl__arena_dup(a, FL_BUF(p, n)), .len = n};
}

static void fill_read(fl__arena_t *a, fl_ccrt_read_t *dst, Fl__Ledger__KVRead *pr,
                      Fl__Ledger__Version *pv, const fl__rd_t *src) {
  *dst = (fl_ccrt_read_t){.key = arena_buf(a, src->key, src->klen),
                          .exists = src->exists, .version = src->ver};
  fl__ledger__kvread__init(pr);
  pr->key = (char *)(uintptr_t)dst->key.data; /* NUL-terminated, no NUL inside */
  if (src->exists) {
    fl__ledger__version__init(pv);
    pv->block_num = src->ver.block;
    pv->tx_num = src->ver.tx;
    pr->version = pv;
  }
}

fl_status_t fl__sim_finish(fl__sim_t *s, const char *ns, int32_t status,
                           fl_buf_t message, fl_buf_t payload,
                           fl_ccrt_result_t **out) {
  *out = NULL;
  if (message.len > FL_CC_MAX_VALUE || payload.len > FL_CC_MAX_VALUE) return FL_ETOOBIG;
  fl__arena_t *a = fl_calloc(1, sizeof *a);
  fl_ccrt_result_t *r = fl_calloc(1, sizeof *r);
  r->mem_ = a;
  r->status = status;
  r->message = arena_buf(a, message.data, message.len);
  r->payload = arena_buf(a, payload.data, payload.len);
  if (s->has_event) {
    r->has_event = true;
    r->event_name = arena_buf(a, s->ev_name.data, s->ev_name.len);
    r->event_payload = arena_buf(a, s->ev_payload.data, s->ev_payload.len);
  }

  /* Rules 1, 2 and 4 of ccrt.h: sort reads and writes by key, blobs by hash. */
  if (s->nreads) qsort(s->reads, s->nreads, sizeof *s->reads, rd_cmp);
  if (s->nwrites) qsort(s->writes, s->nwrites, sizeof *s->writes, wr_cmp);
  if (s->nblobs) qsort(s->blobs, s->nblobs, sizeof *s->blobs, blob_cmp);
  /* The indexes point at the old positions: drop them (no more lookups). */
  fl_free(s->ridx.slot);
  fl_free(s->widx.slot);
  s->ridx = s->widx = (fl__index_t){0};

  Fl__Ledger__TxRwSet pb;
  fl__ledger__tx_rw_set__init(&pb);
  pb.namespace_ = (char *)(uintptr_t)fl__arena_dup(a, FL_BUF(ns, strlen(ns)));

  fl_ccrt_read_t *reads = fl__arena_alloc(a, (s->nreads + 1) * sizeof *reads);
  Fl__Ledger__KVRead *pr = fl__arena_alloc(a, (s->nreads + 1) * sizeof *pr);
  Fl__Ledger__Version *pv = fl__arena_alloc(a, (s->nreads + 1) * sizeof *pv);
  Fl__Ledger__KVRead **prp = fl__arena_alloc(a, (s->nreads + 1) * sizeof *prp);
  for (size_t i = 0; i < s->nreads; i++) {
    fill_read(a, &reads[i], &pr[i], &pv[i], &s->reads[i]);
    prp[i] = &pr[i];
  }
  pb.n_reads = s->nreads;
  pb.reads = prp;

  fl_ccrt_write_t *writes = fl__arena_alloc(a, (s->nwrites + 1) * sizeof *writes);
  Fl__Ledger__KVWrite *pw = fl__arena_alloc(a, (s->nwrites + 1) * sizeof *pw);
  Fl__Ledger__KVWrite **pwp = fl__arena_alloc(a, (s->nwrites + 1) * sizeof *pwp);
  for (size_t i = 0; i < s->nwrites; i++) {
    const fl__wr_t *w = &s->writes[i];
    writes[i] = (fl_ccrt_write_t){.key = arena_buf(a, w->key, w->klen), .is_delete = w->del,
                                  .value = arena_buf(a, w->val, w->vlen)};
    fl__ledger__kvwrite__init(&pw[i]);
    pw[i].key = (char *)(uintptr_t)writes[i].key.data;
    pw[i].is_delete = w->del;
    pw[i].value.data = (uint8_t *)(uintptr_t)writes[i].value.data;
    pw[i].value.len = w->del ? 0 : w->vlen;
    pwp[i] = &pw[i];
  }
  pb.n_writes = s->nwrites;
  pb.writes = pwp;

  fl_ccrt_range_read_t *ranges = fl__arena_alloc(a, (s->nranges + 1) * sizeof *ranges);
  Fl__Ledger__RangeRead *pg = fl__arena_alloc(a, (s->nranges + 1) * sizeof *pg);
  Fl__Ledger__RangeRead **pgp = fl__arena_alloc(a, (s->nranges + 1) * sizeof *pgp);
  for (size_t i = 0; i < s->nranges; i++) {
    const fl__rng_t *g = &s->ranges[i];
    fl_ccrt_read_t *rr = fl__arena_alloc(a, (g->nreads + 1) * sizeof *rr);
    Fl__Ledger__KVRead *gr = fl__arena_alloc(a, (g->nreads + 1) * sizeof *gr);
    Fl__Ledger__Version *gv = fl__arena_alloc(a, (g->nreads + 1) * sizeof *gv);
    Fl__Ledger__KVRead **grp = fl__arena_alloc(a, (g->nreads + 1) * sizeof *grp);
    for (size_t j = 0; j < g->nreads; j++) {
      fill_read(a, &rr[j], &gr[j], &gv[j], &g->reads[j]);
      grp[j] = &gr[j];
    }
    /* A range still open here was never closed: only what was handed out
     * counts, and it is not exhausted. */
    ranges[i] = (fl_ccrt_range_read_t){.start = arena_buf(a, g->start, g->slen),
                                       .end = arena_buf(a, g->end, g->elen),
                                       .reads = rr, .nreads = g->nreads,
                                       .exhausted = !g->open && g->exhausted};
    fl__ledger__range_read__init(&pg[i]);
    pg[i].start_key = (char *)(uintptr_t)ranges[i].start.data;
    pg[i].end_key = (char *)(uintptr_t)ranges[i].end.data;
    pg[i].n_reads = g->nreads;
    pg[i].reads = grp;
    pg[i].exhausted = ranges[i].exhausted;
    pgp[i] = &pg[i];
  }
  pb.n_range_reads = s->nranges;
  pb.range_reads = pgp;

  fl_ccrt_blob_t *blobs = fl__arena_alloc(a, (s->nblobs + 1) * sizeof *blobs);
  ProtobufCBinaryData *pbb = fl__arena_alloc(a, (s->nblobs + 1) * sizeof *pbb);
  for (size_t i = 0; i < s->nblobs; i++) {
    memcpy(blobs[i].hash, s->blobs[i].hash, FL_CCRT_HASH_LEN);
    blobs[i].data = arena_buf(a, s->blobs[i].data, s->blobs[i].len);
    pbb[i].data = (uint8_t *)(uintptr_t)blobs[i].data.data;
    pbb[i].len = blobs[i].data.len;
  }
  pb.n_blobs = s->nblobs;
  pb.blobs = pbb;

  r->rwset = (fl_ccrt_rwset_t){.reads = reads, .nreads = s->nreads,
                               .writes = writes, .nwrites = s->nwrites,
                               .ranges = ranges, .nranges = s->nranges,
                               .blobs = blobs, .nblobs = s->nblobs};

  size_t n = fl__ledger__tx_rw_set__get_packed_size(&pb);
  uint8_t *bytes = fl__arena_alloc(a, n + 1);
  size_t packed = fl__ledger__tx_rw_set__pack(&pb, bytes);
  if (packed != n) {
    fl_ccrt_result_free(r);
    return FL_EMALFORMED;
  }
  r->rwset_bytes = (fl_buf_t){.data = bytes, .len = n};
  *out = r;
  return FL_OK;
}

void fl_ccrt_result_free(fl_ccrt_result_t *r) {
  if (!r) return;
  fl__arena_t *a = r->mem_;
  fl__arena_free(a);
  fl_free(a);
  fl_free(r);
}
