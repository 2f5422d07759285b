/* SPDX-License-Identifier: Apache-2.0
 *
 * rwset.c: fl_rwset_t <-> fl.ledger.TxRwSet.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/protoutil/protoutil_int.h"
#include "common/protoutil/rwset.h"
#include "fl/ledger/rwset.pb-c.h"

static bool key_ok(const char *k) { return k != NULL && k[0] != '\0'; }

static bool reads_ok(const fl_kv_read_t *r, size_t n) {
  if (n > 0 && r == NULL) return false;
  for (size_t i = 0; i < n; i++)
    if (!key_ok(r[i].key)) return false;
  return true;
}

/* Builds n KVRead messages in *tmp; returns the pointer array. */
static Fl__Ledger__KVRead **reads_to_pb(void **tmp, const fl_kv_read_t *r, size_t n) {
  Fl__Ledger__KVRead **pr = fl__pu_array(tmp, n, sizeof *pr);
  for (size_t i = 0; i < n; i++) {
    Fl__Ledger__KVRead *m = fl__pu_alloc(tmp, sizeof *m);
    fl__ledger__kvread__init(m);
    m->key = fl__pu_str(r[i].key);
    if (r[i].has_version) {
      Fl__Ledger__Version *v = fl__pu_alloc(tmp, sizeof *v);
      fl__ledger__version__init(v);
      v->block_num = r[i].version.block_num;
      v->tx_num = r[i].version.tx_num;
      m->version = v;
    }
    pr[i] = m;
  }
  return pr;
}

fl_status_t fl_rwset_encode(const fl_rwset_t *rw, fl_sbuf_t *out) {
  if (out == NULL) return FL_EINVAL;
  out->len = 0;
  if (rw == NULL || !key_ok(rw->ns) || !reads_ok(rw->reads, rw->n_reads) ||
      (rw->n_writes > 0 && rw->writes == NULL) ||
      (rw->n_range_reads > 0 && rw->range_reads == NULL) ||
      (rw->n_blobs > 0 && rw->blobs == NULL))
    return FL_EINVAL;
  size_t items = rw->n_reads + rw->n_writes + rw->n_range_reads + rw->n_blobs;
  for (size_t i = 0; i < rw->n_writes; i++) {
    if (!key_ok(rw->writes[i].key) ||
        (rw->writes[i].value.len > 0 && rw->writes[i].value.data == NULL))
      return FL_EINVAL;
  }
  for (size_t i = 0; i < rw->n_range_reads; i++) {
    if (!reads_ok(rw->range_reads[i].reads, rw->range_reads[i].n_reads)) return FL_EINVAL;
    items += rw->range_reads[i].n_reads;
  }
  for (size_t i = 0; i < rw->n_blobs; i++)
    if (rw->blobs[i].len > 0 && rw->blobs[i].data == NULL) return FL_EINVAL;
  if (items > FL_RWSET_MAX_ITEMS) return FL_EINVAL;

  void *tmp = NULL;
  Fl__Ledger__TxRwSet pb;
  fl__ledger__tx_rw_set__init(&pb);
  pb.namespace_ = fl__pu_str(rw->ns);
  pb.n_reads = rw->n_reads;
  pb.reads = reads_to_pb(&tmp, rw->reads, rw->n_reads);
  pb.n_writes = rw->n_writes;
  pb.writes = fl__pu_array(&tmp, rw->n_writes, sizeof *pb.writes);
  for (size_t i = 0; i < rw->n_writes; i++) {
    Fl__Ledger__KVWrite *w = fl__pu_alloc(&tmp, sizeof *w);
    fl__ledger__kvwrite__init(w);
    w->key = fl__pu_str(rw->writes[i].key);
    w->is_delete = rw->writes[i].is_delete;
    w->value = fl__pu_bin(rw->writes[i].value);
    pb.writes[i] = w;
  }
  pb.n_range_reads = rw->n_range_reads;
  pb.range_reads = fl__pu_array(&tmp, rw->n_range_reads, sizeof *pb.range_reads);
  for (size_t i = 0; i < rw->n_range_reads; i++) {
    const fl_range_read_t *r = &rw->range_reads[i];
    Fl__Ledger__RangeRead *m = fl__pu_alloc(&tmp, sizeof *m);
    fl__ledger__range_read__init(m);
    m->start_key = fl__pu_str(r->start_key);
    m->end_key = fl__pu_str(r->end_key);
    m->n_reads = r->n_reads;
    m->reads = reads_to_pb(&tmp, r->reads, r->n_reads);
    m->exhausted = r->exhausted;
    pb.range_reads[i] = m;
  }
  pb.n_blobs = rw->n_blobs;
  pb.blobs = fl__pu_array(&tmp, rw->n_blobs, sizeof *pb.blobs);
  for (size_t i = 0; i < rw->n_blobs; i++) pb.blobs[i] = fl__pu_bin(rw->blobs[i]);
  fl_status_t rc = FL_OK;
  if (protobuf_c_message_get_packed_size(&pb.base) > FL_PU_MAX_MESSAGE)
    rc = FL_ETOOBIG;
  else
    fl__pu_pack(&pb.base, out);
  fl__pu_mem_free(&tmp);
  return rc;
}

/* Copies n reads; returns false (and sets reason) on an empty key. */
static bool reads_from_pb(void **mem, Fl__Ledger__KVRead *const *pr, size_t n,
                          const fl_kv_read_t **out, const char **reason) {
  fl_kv_read_t *r = fl__pu_array(mem, n, sizeof *r);
  for (size_t i = 0; i < n; i++) {
    if (pr[i] == NULL || !key_ok(pr[i]->key)) {
      fl__pu_reason(reason, "rwset: a read has an empty key");
      return false;
    }
    r[i].key = fl__pu_strdup(mem, pr[i]->key);
    if (pr[i]->version != NULL) {
      r[i].has_version = true;
      r[i].version.block_num = pr[i]->version->block_num;
      r[i].version.tx_num = pr[i]->version->tx_num;
    }
  }
  *out = r;
  return true;
}

fl_status_t fl_rwset_decode(const uint8_t *data, size_t len, fl_rwset_t **out,
                            const char **reason) {
  if (out == NULL || (data == NULL && len > 0))
    return FL__PU_FAIL(reason, FL_EINVAL, "rwset: no output or no input");
  *out = NULL;
  if (len > FL_PU_MAX_MESSAGE)
    return FL__PU_FAIL(reason, FL_ETOOBIG, "rwset: larger than the message limit");
  Fl__Ledger__TxRwSet *pb = fl__ledger__tx_rw_set__unpack(NULL, len, data);
  if (pb == NULL)
    return FL__PU_FAIL(reason, FL_EMALFORMED, "rwset: bytes do not decode as a TxRwSet");
  fl_rwset_t *rw = NULL;
  fl_status_t rc = FL_EMALFORMED;
  size_t items = pb->n_reads + pb->n_writes + pb->n_range_reads + pb->n_blobs;
  for (size_t i = 0; i < pb->n_range_reads; i++)
    items += pb->range_reads[i] != NULL ? pb->range_reads[i]->n_reads : 0;
  if (items > FL_RWSET_MAX_ITEMS) {
    rc = FL__PU_FAIL(reason, FL_ETOOBIG, "rwset: too many items");
    goto done;
  }
  if (!key_ok(pb->namespace_)) {
    fl__pu_reason(reason, "rwset: namespace missing");
    goto done;
  }
  rw = fl_calloc(1, sizeof *rw);
  rw->ns = fl__pu_strdup(&rw->mem_, pb->namespace_);
  if (!reads_from_pb(&rw->mem_, pb->reads, pb->n_reads, &rw->reads, reason)) goto done;
  rw->n_reads = pb->n_reads;
  fl_kv_write_t *w = fl__pu_array(&rw->mem_, pb->n_writes, sizeof *w);
  for (size_t i = 0; i < pb->n_writes; i++) {
    if (pb->writes[i] == NULL || !key_ok(pb->writes[i]->key)) {
      fl__pu_reason(reason, "rwset: a write has an empty key");
      goto done;
    }
    w[i].key = fl__pu_strdup(&rw->mem_, pb->writes[i]->key);
    w[i].is_delete = pb->writes[i]->is_delete;
    w[i].value = fl__pu_dup_bin(&rw->mem_, pb->writes[i]->value);
  }
  rw->writes = w;
  rw->n_writes = pb->n_writes;
  fl_range_read_t *rr = fl__pu_array(&rw->mem_, pb->n_range_reads, sizeof *rr);
  for (size_t i = 0; i < pb->n_range_reads; i++) {
    const Fl__Ledger__RangeRead *m = pb->range_reads[i];
    if (m == NULL) {
      fl__pu_reason(reason, "rwset: empty range read");
      goto done;
    }
    rr[i].start_key = fl__pu_strdup(&rw->mem_, m->start_key);
    rr[i].end_key = fl__pu_strdup(&rw->mem_, m->end_key);
    rr[i].exhausted = m->exhausted;
    if (!reads_from_pb(&rw->mem_, m->reads, m->n_reads, &rr[i].reads, reason)) goto done;
    rr[i].n_reads = m->n_reads;
  }
  rw->range_reads = rr;
  rw->n_range_reads = pb->n_range_reads;
  fl_buf_t *blobs = fl__pu_array(&rw->mem_, pb->n_blobs, sizeof *blobs);
  for (size_t i = 0; i < pb->n_blobs; i++) blobs[i] = fl__pu_dup_bin(&rw->mem_, pb->blobs[i]);
  rw->blobs = blobs;
  rw->n_blobs = pb->n_blobs;
  *out = rw;
  rw = NULL;
  rc = FL_OK;
done:
  fl_rwset_free(rw);
  fl__ledger__tx_rw_set__free_unpacked(pb, NULL);
  return rc;
}

void fl_rwset_free(fl_rwset_t *rw) {
  if (rw == NULL) return;
  fl__pu_mem_free(&rw->mem_);
  fl_free(rw);
}
