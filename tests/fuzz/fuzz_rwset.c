/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_rwset.c: fuzz target of the read-write set decoder
 * (common/protoutil/rwset.h). The committer decodes the TxRwSet that
 * endorsers put in a ProposalResponsePayload's results to check read
 * versions and apply writes, so the bytes come from any endorser.
 *
 * When the input decodes, every rule of the decoder must hold (namespace
 * and keys non-empty, item count bounded), and
 * encode -> decode must give an identical set, field by field, and the same
 * bytes when encoded again.
 */
#include <stdlib.h>
#include <string.h>

#include "common/base/buf.h"
#include "common/protoutil/rwset.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_check.h"

static void same_reads(const fl_kv_read_t *a, const fl_kv_read_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    check(a[i].key != NULL && a[i].key[0] != '\0' && strcmp(a[i].key, b[i].key) == 0);
    check(a[i].has_version == b[i].has_version);
    if (a[i].has_version)
      check(a[i].version.block_num == b[i].version.block_num &&
            a[i].version.tx_num == b[i].version.tx_num);
  }
}

static void same_set(const fl_rwset_t *a, const fl_rwset_t *b) {
  check(strcmp(a->ns, b->ns) == 0);
  check(a->n_reads == b->n_reads && a->n_writes == b->n_writes &&
        a->n_range_reads == b->n_range_reads && a->n_blobs == b->n_blobs);
  same_reads(a->reads, b->reads, a->n_reads);
  for (size_t i = 0; i < a->n_writes; i++) {
    const fl_kv_write_t *x = &a->writes[i], *y = &b->writes[i];
    check(x->key != NULL && x->key[0] != '\0' && strcmp(x->key, y->key) == 0);
    check(x->is_delete == y->is_delete && fl_buf_eq(x->value, y->value));
  }
  for (size_t i = 0; i < a->n_range_reads; i++) {
    const fl_range_read_t *x = &a->range_reads[i], *y = &b->range_reads[i];
    check(strcmp(x->start_key, y->start_key) == 0 && strcmp(x->end_key, y->end_key) == 0);
    check(x->exhausted == y->exhausted && x->n_reads == y->n_reads);
    same_reads(x->reads, y->reads, x->n_reads);
  }
  for (size_t i = 0; i < a->n_blobs; i++) check(fl_buf_eq(a->blobs[i], b->blobs[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fl_rwset_t sentinel;
  fl_rwset_t *rw = &sentinel;
  const char *reason = NULL;
  if (fl_rwset_decode(data, size, &rw, &reason) != FL_OK) {
    check(rw == NULL && reason != NULL);
    return 0;
  }
  check(rw->ns != NULL && rw->ns[0] != '\0');
  size_t items = rw->n_reads + rw->n_writes + rw->n_range_reads + rw->n_blobs;
  check(items <= FL_RWSET_MAX_ITEMS);
  fl_sbuf_t enc = {0};
  check(fl_rwset_encode(rw, &enc) == FL_OK);
  fl_rwset_t *rw2 = NULL;
  check(fl_rwset_decode(enc.data, enc.len, &rw2, NULL) == FL_OK);
  same_set(rw, rw2);
  fl_sbuf_t enc2 = {0};
  check(fl_rwset_encode(rw2, &enc2) == FL_OK);
  check(fl_buf_eq(fl_sbuf_view(&enc), fl_sbuf_view(&enc2)));
  fl_sbuf_free(&enc2);
  fl_rwset_free(rw2);
  fl_sbuf_free(&enc);
  fl_rwset_free(rw);
  return 0;
}
