/* SPDX-License-Identifier: Apache-2.0
 *
 * rwset.h: read-write sets (fl.ledger.TxRwSet) as plain C structs.
 *
 * A chaincode simulation records, for its namespace (the chaincode name):
 * the keys it read with the version it saw (no version: the key was absent),
 * the keys it wrote or deleted, the range scans it made with what they saw
 * (for phantom detection), and the blobs it stores. Endorsers put the
 * encoded set into ProposalResponsePayload.results; the committer decodes it
 * to check read versions and apply writes.
 */
#ifndef FL_PROTOUTIL_RWSET_H
#define FL_PROTOUTIL_RWSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

#define FL_RWSET_MAX_ITEMS (1u << 20) /* reads + writes + range reads + blobs */

/** A world-state version: the block and the transaction in it that wrote a
 *  value. */
typedef struct fl_version_s {
  uint64_t block_num;
  uint64_t tx_num;
} fl_version_t;

typedef struct fl_kv_read_s {
  const char *key;       /* non-empty */
  bool has_version;      /* false: the key did not exist when read */
  fl_version_t version;
} fl_kv_read_t;

typedef struct fl_kv_write_s {
  const char *key;       /* non-empty */
  bool is_delete;
  fl_buf_t value;        /* empty for a delete */
} fl_kv_write_t;

typedef struct fl_range_read_s {
  const char *start_key, *end_key; /* [start_key, end_key) */
  const fl_kv_read_t *reads;       /* what the scan saw, in order */
  size_t n_reads;
  bool exhausted;                  /* the scan reached end_key */
} fl_range_read_t;

/** A read-write set. As encoder input everything is borrowed; a decoded one
 *  owns its memory (all pointers are into it). */
typedef struct fl_rwset_s {
  const char *ns;                  /* namespace = chaincode name, non-empty */
  const fl_kv_read_t *reads;
  size_t n_reads;
  const fl_kv_write_t *writes;
  size_t n_writes;
  const fl_range_read_t *range_reads;
  size_t n_range_reads;
  const fl_buf_t *blobs;           /* blobs the transaction stores */
  size_t n_blobs;
  void *mem_;                      /* private; NULL for encoder input */
} fl_rwset_t;

/** Encodes rw into out (contents replaced). Borrows rw. Returns FL_OK;
 *  FL_EINVAL (empty namespace or key, NULL arrays with a count, more than
 *  FL_RWSET_MAX_ITEMS items); FL_ETOOBIG (over FL_PU_MAX_MESSAGE). */
fl_status_t fl_rwset_encode(const fl_rwset_t *rw, fl_sbuf_t *out /* out */);

/** Decodes and validates TxRwSet bytes (namespace and every key non-empty,
 *  item count bounded). Borrows data. Returns FL_OK with *out owned
 *  (fl_rwset_free); FL_ETOOBIG; FL_EMALFORMED with *reason (optional). */
fl_status_t fl_rwset_decode(const uint8_t *data, size_t len, fl_rwset_t **out /* out */,
                            const char **reason /* out, optional */);

/** Frees a decoded set. NULL is fine. Never call it on encoder input. */
void fl_rwset_free(fl_rwset_t *rw);

#endif /* FL_PROTOUTIL_RWSET_H */
