/* SPDX-License-Identifier: Apache-2.0
 *
 * ledger.h: the peer's ledger: blocks, tx id index, world state, key history,
 * blob store and savepoint, in one RocksDB database.
 *
 * The ledger takes already-validated, already-parsed input: the committer
 * hands it the exact block bytes, the block header's SHA-256, and for every
 * transaction its tx id, its validation code and (for VALID ones) the write
 * set and blobs. It never decodes a block itself. fl_ledger_commit writes all
 * of a block (block bytes, tx index, state with versions, history, blobs and
 * the new savepoint) as ONE synced RocksDB write batch, so after a crash at
 * any moment the ledger holds the whole block or nothing of it.
 *
 * Keys are opaque bytes (non-empty). The ledger has no notion of chaincode
 * namespaces: the committer prefixes keys with the namespace if it wants one.
 * Key order is bytewise (memcmp, shorter first on a tie).
 *
 * The MVCC helper (fl_ledger_mvcc_check) decides, for the transactions of the
 * next block in order, whether their read sets and range reads still hold
 * against the committed state plus the writes of earlier valid transactions
 * of the same block.
 *
 * Threads. One thread (the committer) calls fl_ledger_commit and
 * fl_ledger_mvcc_check. Every read function (height, last hash, block, tx,
 * state, range, history, blob) and snapshots may be used from any thread at
 * the same time, also while a commit runs; a reader sees either the state
 * before a block or after it, never a part (reads without a snapshot look at
 * one key at a time; use a snapshot for several consistent reads).
 * fl_ledger_open and fl_ledger_close must not overlap any other call.
 * An iterator belongs to one thread at a time.
 *
 * On-disk layout: docs/peer.md, "Ledger", and ledger_int.h.
 */
#ifndef FL_PEER_LEDGER_LEDGER_H
#define FL_PEER_LEDGER_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/kv/kv.h"

#define FL_LEDGER_HASH_LEN 32

/* Transaction validation codes: the values of fl.common.TxValidationCode
 * (proto/fl/common/common.proto); ledger.c checks they agree. Any other byte
 * value is accepted as "some invalid code" and stored as given. */
#define FL_LEDGER_TX_VALID 0
#define FL_LEDGER_TX_DUPLICATE_TXID 6
#define FL_LEDGER_TX_MVCC_READ_CONFLICT 9
#define FL_LEDGER_TX_PHANTOM_READ_CONFLICT 10

/* Upper bounds on input (bad input gets FL_ETOOBIG, never an allocation of
 * that size). */
#define FL_LEDGER_MAX_TXID_LEN 1024u
#define FL_LEDGER_MAX_KEY_LEN (64u * 1024u)

typedef struct fl_ledger_s fl_ledger_t;
typedef struct fl_ledger_snap_s fl_ledger_snap_t;
typedef struct fl_ledger_range_s fl_ledger_range_t;
typedef struct fl_ledger_hist_s fl_ledger_hist_t;

/** A state version: the block and the transaction (index in that block) that
 *  last wrote the key. */
typedef struct fl_ledger_version_s {
  uint64_t block;
  uint64_t tx;
} fl_ledger_version_t;

/** One write of a write set. value is ignored when is_delete. */
typedef struct fl_ledger_write_s {
  fl_buf_t key;
  fl_buf_t value;
  bool is_delete;
} fl_ledger_write_t;

/** A blob a transaction stores. hash, when not NULL, is the SHA-256 the
 *  transaction declared for it; commit refuses the block (FL_EMALFORMED) if
 *  it does not match the bytes. The blob is stored under SHA-256(data). */
typedef struct fl_ledger_blob_s {
  const uint8_t *hash; /* optional, FL_LEDGER_HASH_LEN bytes */
  fl_buf_t data;
} fl_ledger_blob_t;

/** One transaction of a block to commit, in block order. */
typedef struct fl_ledger_tx_s {
  fl_buf_t tx_id;   /* may be empty only for an invalid tx (not indexed) */
  uint8_t code;     /* FL_LEDGER_TX_VALID or an invalid code */
  const fl_ledger_write_t *writes;  /* applied only when code is VALID */
  size_t nwrites;
  const fl_ledger_blob_t *blobs;    /* stored only when code is VALID */
  size_t nblobs;
} fl_ledger_tx_t;

/** Where a transaction is and how it was judged. */
typedef struct fl_ledger_txloc_s {
  uint64_t block;
  uint64_t tx;
  uint8_t code;
} fl_ledger_txloc_t;

/** Options for fl_ledger_open. Zero-initialise. */
typedef struct fl_ledger_opts_s {
  bool create_if_missing;     /* create an empty ledger if dir has none */
  size_t block_cache_bytes;   /* 0 = fl_kv's default */
  size_t write_buffer_bytes;  /* memtable per column family; 0 = fl_kv's default */
  size_t memtable_budget_bytes; /* all memtables together; 0 = none (fl_kv_opts_t) */
  /* Tests: fault injection, armed after recovery, so nth counts commits
   * (each fl_ledger_commit is exactly one fl_kv write). Borrowed. */
  const fl_kv_fault_t *fault;
} fl_ledger_opts_t;

/* ---- open / close ---------------------------------------------------- */

/** Opens the ledger in directory dir (opts may be NULL: open an existing
 *  ledger only). Recovery: checks the schema version, that the savepoint's
 *  block exists and its stored header hash equals the savepoint's, and that
 *  no block beyond the savepoint exists (one that does is deleted, synced,
 *  with a WARN line).
 *  Returns FL_OK and an owned handle in *out (free with fl_ledger_close);
 *  FL_EINVAL for bad arguments; FL_NOTFOUND when there is no ledger and
 *  create_if_missing is false; FL_ECORRUPT (with an ERROR log line saying
 *  what) when the savepoint, schema or savepoint block is inconsistent;
 *  FL_EUNAVAIL when another process has it open; other fl_kv errors.
 *  On failure *out is NULL. */
fl_status_t fl_ledger_open(const char *dir, const fl_ledger_opts_t *opts,
                           fl_ledger_t **out /* out */);

/** Closes the ledger. Every snapshot and iterator must have been freed.
 *  NULL-safe. */
void fl_ledger_close(fl_ledger_t *l);

/** The underlying database, borrowed (valid until close). For tests (fault
 *  injection) and tools; writing through it breaks the ledger's invariants. */
fl_kv_t *fl_ledger_kv(fl_ledger_t *l);

/* ---- commit (committer thread only) ---------------------------------- */

/** Commits block `number` (which must equal fl_ledger_height) with header
 *  hash `hash` and exact bytes `block` (borrowed, copied into the batch).
 *  txs[0..ntx) are the block's transactions in order; tx i gets versions
 *  {number, i}. For every VALID tx: each write goes to state (put with the
 *  version, or delete) and to the key's history; each blob is stored once
 *  under its SHA-256. Every tx with a non-empty tx id is indexed
 *  (tx id -> block, tx, code) unless that id is already indexed (an invalid
 *  replay never hides the original). Everything, with the new savepoint, is
 *  one synced write batch.
 *  Returns FL_OK; FL_ESTATE when number != height; FL_ECONFLICT when a VALID
 *  tx's id is already indexed or appears twice among the block's valid txs
 *  (the validator should have marked it DUPLICATE_TXID); FL_EINVAL for NULL
 *  arguments, empty block bytes, an empty key or a valid tx without tx id;
 *  FL_ETOOBIG for an over-long tx id or key; FL_EMALFORMED for a blob whose
 *  declared hash does not match; a storage error from fl_kv. On any error
 *  nothing is written and height, state and savepoint are unchanged. */
fl_status_t fl_ledger_commit(fl_ledger_t *l, uint64_t number,
                             const uint8_t hash[FL_LEDGER_HASH_LEN],
                             fl_buf_t block, const fl_ledger_tx_t *txs,
                             size_t ntx);

/* ---- height and blocks (any thread) ----------------------------------- */

/** Number of committed blocks (= last block number + 1; 0 when empty). */
uint64_t fl_ledger_height(fl_ledger_t *l);

/** Copies the last committed block's header hash into out. Returns FL_OK, or
 *  FL_NOTFOUND when the ledger is empty. */
fl_status_t fl_ledger_last_hash(fl_ledger_t *l,
                                uint8_t out[FL_LEDGER_HASH_LEN] /* out */);

/** Reads block `number` as of snap (NULL = latest): its exact bytes into
 *  *out (replaced; caller owns, fl_sbuf_free) and, if hash is not NULL, its
 *  header hash. Returns FL_OK, FL_NOTFOUND (number >= height), FL_ECORRUPT
 *  for a damaged record, FL_EINVAL, or a storage error. Use a snapshot to
 *  serve a Deliver stream that must not see blocks appear mid-way. */
fl_status_t fl_ledger_block_get(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                                uint64_t number,
                                fl_sbuf_t *out /* out */,
                                uint8_t hash[FL_LEDGER_HASH_LEN] /* out */);

/* ---- transactions ----------------------------------------------------- */

/** Looks up a tx id as of snap (NULL = latest). Returns FL_OK and *loc,
 *  FL_NOTFOUND, FL_EINVAL (empty id), FL_ECORRUPT or a storage error. */
fl_status_t fl_ledger_tx_get(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                             fl_buf_t tx_id,
                             fl_ledger_txloc_t *loc /* out */);

/** Sets *found to whether tx_id is indexed. Returns FL_OK or an error. */
fl_status_t fl_ledger_tx_exists(fl_ledger_t *l, fl_buf_t tx_id,
                                bool *found /* out */);

/* ---- snapshots --------------------------------------------------------- */

/** Takes a consistent read view of the whole ledger (state, history, blocks,
 *  blobs, tx index, height) as of the last completed batch write. Returns
 *  FL_OK and an owned snapshot in *out (free with fl_ledger_snap_free before
 *  close), FL_EINVAL, or a storage error reading the savepoint through it
 *  (*out NULL). Any thread. */
fl_status_t fl_ledger_snap_new(fl_ledger_t *l,
                               fl_ledger_snap_t **out /* out */);
/** Frees a snapshot. NULL-safe. */
void fl_ledger_snap_free(fl_ledger_snap_t *s);
/** The height the snapshot sees. */
uint64_t fl_ledger_snap_height(const fl_ledger_snap_t *s);

/* ---- world state (snap NULL = latest) --------------------------------- */

/** Reads key's value into *val (replaced; caller owns, fl_sbuf_free) and its
 *  version into *ver (may be NULL). Returns FL_OK, FL_NOTFOUND (val emptied),
 *  FL_EINVAL, FL_ECORRUPT or a storage error. */
fl_status_t fl_ledger_state_get(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                                fl_buf_t key, fl_sbuf_t *val /* out */,
                                fl_ledger_version_t *ver /* out */);

/** Starts a scan of the keys in [start, end) in key order; empty start means
 *  from the first key, empty end means to the last. Bounds are copied. The
 *  iterator sees one consistent state (snap, or the latest at creation).
 *  Returns FL_OK and an owned iterator (fl_ledger_range_free), or FL_EINVAL.
 */
fl_status_t fl_ledger_range_new(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                                fl_buf_t start, fl_buf_t end,
                                fl_ledger_range_t **out /* out */);

/** Next key of the scan: views valid until the next call or free. Returns
 *  FL_OK, FL_NOTFOUND at the end, FL_ECORRUPT or a storage error. */
fl_status_t fl_ledger_range_next(fl_ledger_range_t *it, fl_buf_t *key /* out */,
                                 fl_buf_t *val /* out */,
                                 fl_ledger_version_t *ver /* out */);

/** Frees a range iterator. NULL-safe. */
void fl_ledger_range_free(fl_ledger_range_t *it);

/* ---- key history (provenance) ----------------------------------------- */

/** One modification of a key by a valid transaction. */
typedef struct fl_ledger_mod_s {
  uint64_t block;
  uint64_t tx;
  fl_buf_t tx_id;  /* view */
  bool is_delete;
  fl_buf_t value;  /* view; empty for a delete */
} fl_ledger_mod_t;

/** Starts a walk over every modification of key, newest first when
 *  newest_first, else oldest first. Returns FL_OK and an owned iterator
 *  (fl_ledger_hist_free), FL_EINVAL or FL_ETOOBIG. */
fl_status_t fl_ledger_hist_new(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                               fl_buf_t key, bool newest_first,
                               fl_ledger_hist_t **out /* out */);

/** Next modification; the views in *mod stay valid until the next call or
 *  free. Returns FL_OK, FL_NOTFOUND at the end, FL_ECORRUPT or a storage
 *  error. */
fl_status_t fl_ledger_hist_next(fl_ledger_hist_t *it,
                                fl_ledger_mod_t *mod /* out */);

/** Frees a history iterator. NULL-safe. */
void fl_ledger_hist_free(fl_ledger_hist_t *it);

/* ---- blobs ------------------------------------------------------------ */

/** Reads the blob with this SHA-256 into *out (replaced; caller owns) and
 *  re-checks its hash. Returns FL_OK, FL_NOTFOUND, FL_ECORRUPT (stored bytes
 *  do not hash to the key) or a storage error. */
fl_status_t fl_ledger_blob_get(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                               const uint8_t hash[FL_LEDGER_HASH_LEN],
                               fl_sbuf_t *out /* out */);

/* ---- MVCC (committer thread only) ------------------------------------- */

/** A point read recorded at simulation: the key and the version seen, or
 *  exists == false when the key was absent. */
typedef struct fl_ledger_read_s {
  fl_buf_t key;
  bool exists;
  fl_ledger_version_t version;
} fl_ledger_read_t;

/** A range read [start, end) (empty end = to the last key) and the keys, in
 *  order, with the versions it saw. exhausted == false means the scan was cut
 *  by a limit after the last read key: only [start, last key] is checked. */
typedef struct fl_ledger_range_read_s {
  fl_buf_t start;
  fl_buf_t end;
  const fl_ledger_read_t *reads;
  size_t nreads;
  bool exhausted;
} fl_ledger_range_read_t;

/** One transaction for MVCC, in block order. code is its validation code so
 *  far: only VALID txs are checked and only their writes count. */
typedef struct fl_ledger_mvcc_tx_s {
  uint8_t code;
  const fl_ledger_read_t *reads;
  size_t nreads;
  const fl_ledger_range_read_t *ranges;
  size_t nranges;
  const fl_ledger_write_t *writes;
  size_t nwrites;
} fl_ledger_mvcc_tx_t;

/** Decides the MVCC outcome of the next block's transactions. For each tx i:
 *  codes[i] = txs[i].code if that is not VALID; otherwise VALID, or
 *  MVCC_READ_CONFLICT when a point read's version differs from the committed
 *  one (or the key's existence changed) or an earlier valid tx of this block
 *  wrote the key, or PHANTOM_READ_CONFLICT when a range read would now see a
 *  different list of keys and versions (committed changes, or any write of an
 *  earlier valid tx inside the range). Writes alone never conflict. Each key
 *  is read from disk at most once per call; range scans read one consistent
 *  snapshot. `number` is the block being validated (must equal the height).
 *  codes (caller memory, ntx bytes) is written only on FL_OK.
 *  Returns FL_OK, FL_ESTATE (number != height), FL_EINVAL, FL_ECORRUPT or a
 *  storage error. */
fl_status_t fl_ledger_mvcc_check(fl_ledger_t *l, uint64_t number,
                                 const fl_ledger_mvcc_tx_t *txs, size_t ntx,
                                 uint8_t *codes /* out */);

#endif /* FL_PEER_LEDGER_LEDGER_H */
