/* SPDX-License-Identifier: Apache-2.0
 *
 * kv.h: the RocksDB wrapper behind the peer's ledger and the orderer's
 * replica log.
 *
 * One fl_kv_t is one open RocksDB database with a set of named column
 * families (CFs). Every write goes through the write-ahead log (the WAL is
 * never disabled); a write with sync=true returns only after the WAL has been
 * fsync'd, so an acknowledged synced write survives a process or machine
 * crash. A write batch is atomic across column families: after any crash the
 * database holds all of a batch or none of it. The peer commits a block (block,
 * tx index, state, history, blobs, savepoint) as one synced batch.
 *
 * Errors. Every fallible call returns fl_status_t. RocksDB's error strings are
 * translated at this layer (and freed): "No space left on device" -> FL_ENOSPC,
 * "Corruption" -> FL_ECORRUPT, a DB locked by another handle or process ->
 * FL_EUNAVAIL, anything else from RocksDB -> FL_ESTORE. Misuse (NULL
 * arguments, an unknown CF name, a path that is not a directory) -> FL_EINVAL.
 * The text of the last failure is kept per thread (like errno) and read with
 * fl_kv_last_error().
 *
 * Threads. RocksDB handles are thread-safe and so is this wrapper's fl_kv_t:
 * fl_kv_get*, fl_kv_put, fl_kv_delete, fl_kv_write, fl_kv_iter_new,
 * fl_kv_snapshot_new/free, fl_kv_cf, fl_kv_fault_set and fl_kv_write_count may
 * be called from any number of threads at once on one handle. fl_kv_open and
 * fl_kv_close must not overlap any other call on the same handle. A batch, an
 * iterator and a pinned value belong to one thread at a time (no internal
 * locking). Column family handles and snapshots may be shared between threads.
 *
 * Lifetimes. Every iterator, pinned value and snapshot must be freed before
 * fl_kv_close; closing with live ones is a programming error and aborts
 * (FL_ASSERT), since RocksDB would otherwise free memory they still use.
 *
 * Keys and values are fl_buf_t views (bytes, not strings); an empty key is
 * allowed. A view with len > 0 and data == NULL is FL_EINVAL, and so is a CF
 * handle or snapshot that belongs to another fl_kv_t.
 *
 * Fault injection (tests only; STYLE.md 8, "fakes fail the Nth write"): with
 * fl_kv_fault_set the Nth write call from now (put, delete or batch write)
 * fails with a chosen status before RocksDB sees it, or the process _exit()s
 * just before or just after that write reached RocksDB, which is how crash
 * tests cut a process at a precise point. The real RocksDB stays underneath.
 */
#ifndef FL_COMMON_KV_KV_H
#define FL_COMMON_KV_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

typedef struct fl_kv_s fl_kv_t;
typedef struct fl_kv_cf_s fl_kv_cf_t;
typedef struct fl_kv_batch_s fl_kv_batch_t;
typedef struct fl_kv_iter_s fl_kv_iter_t;
typedef struct fl_kv_snapshot_s fl_kv_snapshot_t;
typedef struct fl_kv_pinned_s fl_kv_pinned_t;

/** The column family every RocksDB database has; always opened. */
#define FL_KV_DEFAULT_CF "default"

/** One column family to open (created if missing). */
typedef struct fl_kv_cf_spec_s {
  const char *name;   /* NUL-terminated, non-empty */
  /* Adds a 10 bits/key bloom filter: worth it for point-lookup-heavy CFs
   * (world state, tx id index), wasted on CFs only scanned in order. */
  bool bloom;
  /* Values are large (KiBs and up) and written once: blocks, weight blobs.
   * Values of 4 KiB and more go to RocksDB's blob files (integrated BlobDB,
   * uncompressed, no blob garbage collection), so memtable flushes and
   * compactions move only the keys and blob references. Inline in the SSTs,
   * every flush of such a CF was followed by a rewrite of the new file to
   * recompress it for the bottom level: 5 MB of blocks cost a peer 57 ms of
   * CPU (docs/peer.md, "Ledger"). Switching it on for an existing CF is
   * fine: older values stay readable where they are. */
  bool large_values;
  /* Records live briefly: most are deleted within minutes of being written
   * (a replica log pruned at each checkpoint). No compression at any level:
   * LZ4 at every flush and ZSTD at the bottom would spend CPU on bytes that
   * are about to be dropped (docs/ordering.md section 15). */
  bool transient;
} fl_kv_cf_spec_t;

/** Fault-injection modes (tests only). */
typedef enum fl_kv_fault_mode_e {
  FL_KV_FAULT_NONE = 0,     /* off */
  FL_KV_FAULT_FAIL,         /* the Nth write returns `rc`, nothing written */
  FL_KV_FAULT_EXIT_BEFORE,  /* _exit(exit_code) just before the Nth write */
  FL_KV_FAULT_EXIT_AFTER,   /* _exit(exit_code) just after the Nth write
                               returned from RocksDB (so it is durable if it
                               was synced) */
} fl_kv_fault_mode_t;

typedef struct fl_kv_fault_s {
  fl_kv_fault_mode_t mode;
  uint64_t nth;       /* 1 = the next write call; 0 with a mode is FL_EINVAL */
  int rc;             /* FAIL: status returned; 0 means FL_EIO */
  bool sticky;        /* FAIL: every write from the Nth on fails (dead disk) */
  int exit_code;      /* EXIT_*: process exit status; 0 means 86 */
} fl_kv_fault_t;

/** Options for fl_kv_open. Zero-initialise, then set what you need. */
typedef struct fl_kv_opts_s {
  /* Column families to open besides "default" (listing "default" is
   * allowed). Missing ones are created. CFs that exist on disk but are not
   * listed are opened too, with default tuning, so an older binary can open
   * a newer database; fl_kv_cf finds them by name. */
  const fl_kv_cf_spec_t *cfs;
  size_t ncfs;
  bool create_if_missing;     /* create the database directory */
  size_t block_cache_bytes;   /* shared LRU block cache; 0 = 64 MiB */
  size_t write_buffer_bytes;  /* memtable size per CF; 0 = 32 MiB */
  /* All CFs' memtables together (RocksDB's db_write_buffer_size): past it
   * the oldest memtable is flushed, so memtables of rarely filled CFs do not
   * grow with the data up to write_buffer_bytes each. 0 = no budget. */
  size_t memtable_budget_bytes;
  const fl_kv_fault_t *fault; /* optional: fault injection armed at open */
} fl_kv_opts_t;

/** Opens (or creates) the database at path.
 *  Tuning: level compaction with dynamic level sizes, LZ4 on upper levels and
 *  ZSTD on the bottom level (large_values CFs: their big values in blob
 *  files, uncompressed), 16 KiB blocks, index and filter blocks in the
 *  shared block cache (L0 pinned), point-in-time WAL recovery, paranoid
 *  checks, 4 background jobs (flushes and compactions).
 *  Returns FL_OK and an owned handle in *out (free with fl_kv_close);
 *  FL_EINVAL for a NULL/empty argument, an empty or duplicate CF name, or a
 *  path that exists and is not a directory; FL_NOTFOUND when the database
 *  does not exist and create_if_missing is false; FL_EUNAVAIL when another
 *  handle or process holds the database's lock; FL_ECORRUPT, FL_ENOSPC or
 *  FL_ESTORE from RocksDB. On failure *out is NULL. */
fl_status_t fl_kv_open(const char *path, const fl_kv_opts_t *opts,
                       fl_kv_t **out /* out */);

/** Closes the database and frees the handle and its CF handles. Synced
 *  writes are already durable; unsynced ones are flushed to the OS by
 *  RocksDB's close. NULL-safe. Aborts if iterators, pinned values or
 *  snapshots are still live. */
void fl_kv_close(fl_kv_t *kv);

/** Returns the handle of the column family `name`, or NULL if it is not
 *  open. Borrowed: valid until fl_kv_close. NULL name means "default". */
fl_kv_cf_t *fl_kv_cf(fl_kv_t *kv, const char *name);

/** Returns the CF's name (borrowed, valid until fl_kv_close). */
const char *fl_kv_cf_name(const fl_kv_cf_t *cf);

/** Number of open column families (including "default") and the i-th name
 *  (borrowed; NULL when i is out of range). For tools and tests. */
size_t fl_kv_cf_count(const fl_kv_t *kv);
const char *fl_kv_cf_name_at(const fl_kv_t *kv, size_t i);

/** Text of the last failure of an fl_kv call on the calling thread
 *  ("" if none). Borrowed: valid until the next fl_kv call on this thread. */
const char *fl_kv_last_error(void);

/* ---- reads ----------------------------------------------------------- */

/** Reads key from cf (NULL = default) as of snap (NULL = latest); keys are
 *  ordered bytewise (memcmp, then shorter first) everywhere in this API.
 *  On FL_OK, *val holds exactly the value (its previous contents are
 *  replaced; the caller owns val and frees it with fl_sbuf_free, and may
 *  reuse it across calls to avoid allocations). Returns FL_NOTFOUND (val
 *  emptied) when the key is absent, FL_EINVAL on bad arguments, or a storage
 *  error. Thread-safe. */
fl_status_t fl_kv_get(fl_kv_t *kv, fl_kv_cf_t *cf, const fl_kv_snapshot_t *snap,
                      fl_buf_t key, fl_sbuf_t *val /* out */);

/** Looks key up like fl_kv_get but without filling the block cache: for
 *  lookups that miss or are made once (a new tx id, a random tx id's
 *  status). A bloom filter's false positive (about 1 % per table file), or
 *  the one read of a random key, brings in a 16 KiB data block that no later
 *  read needs; kept out of the cache, it neither pushes useful blocks out nor
 *  makes the cache grow with the data. val (optional) is replaced with the
 *  value. Returns FL_OK, FL_NOTFOUND, or as fl_kv_get. */
fl_status_t fl_kv_probe(fl_kv_t *kv, fl_kv_cf_t *cf, const fl_kv_snapshot_t *snap,
                        fl_buf_t key, fl_sbuf_t *val /* out, optional */);

/** Zero-copy read through a RocksDB pinnable slice: on FL_OK, *pin is an
 *  owned handle (free with fl_kv_pinned_free) and *val a view of the value
 *  that stays valid until fl_kv_pinned_free. Returns FL_NOTFOUND (*pin NULL,
 *  *val empty) when absent. Thread-safe; the pin belongs to the caller. */
fl_status_t fl_kv_get_pinned(fl_kv_t *kv, fl_kv_cf_t *cf,
                             const fl_kv_snapshot_t *snap, fl_buf_t key,
                             fl_kv_pinned_t **pin /* out */,
                             fl_buf_t *val /* out */);

/** Releases a pinned value. NULL-safe. */
void fl_kv_pinned_free(fl_kv_pinned_t *pin);

/* ---- single writes --------------------------------------------------- */

/** Writes key=val into cf (NULL = default). sync=true fsyncs the WAL before
 *  returning. Counts as one write for fault injection. Returns FL_OK,
 *  FL_EINVAL, or a storage (or injected) error. Thread-safe. */
fl_status_t fl_kv_put(fl_kv_t *kv, fl_kv_cf_t *cf, fl_buf_t key, fl_buf_t val,
                      bool sync);

/** Deletes key from cf (absent keys are fine). Same rules as fl_kv_put. */
fl_status_t fl_kv_delete(fl_kv_t *kv, fl_kv_cf_t *cf, fl_buf_t key, bool sync);

/* ---- write batches --------------------------------------------------- */

/** Returns a new, empty batch (owned; free with fl_kv_batch_free). */
fl_kv_batch_t *fl_kv_batch_new(void);
/** Frees the batch. NULL-safe. */
void fl_kv_batch_free(fl_kv_batch_t *b);
/** Adds a put to the batch; bytes are copied. cf must come from the handle
 *  the batch will be written to (NULL = default). Returns FL_EINVAL for a
 *  NULL batch, a bad view, or a cf of another handle than earlier ones. */
fl_status_t fl_kv_batch_put(fl_kv_batch_t *b, fl_kv_cf_t *cf, fl_buf_t key,
                            fl_buf_t val);
/** Adds a delete to the batch. Same rules as fl_kv_batch_put. */
fl_status_t fl_kv_batch_delete(fl_kv_batch_t *b, fl_kv_cf_t *cf, fl_buf_t key);
/** Number of operations in the batch. */
size_t fl_kv_batch_count(const fl_kv_batch_t *b);
/** Approximate encoded size of the batch in bytes. */
size_t fl_kv_batch_bytes(const fl_kv_batch_t *b);
/** Empties the batch for reuse. */
void fl_kv_batch_clear(fl_kv_batch_t *b);

/** Applies the batch atomically across its column families; sync=true
 *  fsyncs the WAL first. The batch is only read (it may be written again or
 *  reused after fl_kv_batch_clear). Counts as one write for fault injection.
 *  Returns FL_OK, FL_EINVAL (also when the batch holds CFs of another
 *  handle), or a storage (or injected) error; on error none of the batch is
 *  visible. Thread-safe on kv. */
fl_status_t fl_kv_write(fl_kv_t *kv, fl_kv_batch_t *b, bool sync);

/* ---- snapshots ------------------------------------------------------- */

/** Takes a snapshot: reads through it see the database as of now. Owned;
 *  release with fl_kv_snapshot_free after the last iterator that uses it is
 *  freed and before fl_kv_close. Thread-safe. */
fl_kv_snapshot_t *fl_kv_snapshot_new(fl_kv_t *kv);
/** Releases a snapshot. NULL-safe. Thread-safe. */
void fl_kv_snapshot_free(fl_kv_t *kv, fl_kv_snapshot_t *snap);

/* ---- iterators ------------------------------------------------------- */

/** What an iterator walks. Zero-initialised = the whole CF, forward, latest. */
typedef struct fl_kv_iter_opts_s {
  fl_buf_t start;   /* inclusive lower bound; len 0 = from the first key */
  fl_buf_t end;     /* exclusive upper bound; len 0 = to the last key */
  fl_buf_t prefix;  /* len > 0: only keys starting with prefix (replaces
                       start and end) */
  bool reverse;     /* walk from the high end down */
  const fl_kv_snapshot_t *snap;  /* NULL = the latest state at creation */
} fl_kv_iter_opts_t;

/** Creates an iterator over cf (NULL = default); the bounds are copied.
 *  Without snap, it sees an implicit snapshot taken now. Returns FL_OK and
 *  an owned iterator in *out (free with fl_kv_iter_free), or FL_EINVAL.
 *  The iterator belongs to one thread at a time. */
fl_status_t fl_kv_iter_new(fl_kv_t *kv, fl_kv_cf_t *cf,
                           const fl_kv_iter_opts_t *opts,
                           fl_kv_iter_t **out /* out */);

/** Steps to the next entry in the iterator's direction (the first call
 *  yields the first entry) and sets *key and *val (either may be NULL) to
 *  views that stay valid until the next fl_kv_iter_next or fl_kv_iter_free.
 *  Returns FL_OK, FL_NOTFOUND at the end (and again on every later call), or
 *  a storage error. */
fl_status_t fl_kv_iter_next(fl_kv_iter_t *it, fl_buf_t *key /* out */,
                            fl_buf_t *val /* out */);

/** Frees the iterator. NULL-safe. */
void fl_kv_iter_free(fl_kv_iter_t *it);

/* ---- maintenance ----------------------------------------------------- */

/** Flushes all memtables to SST files and waits. Not needed for
 *  durability (the WAL gives that); for tools and tests. */
fl_status_t fl_kv_flush(fl_kv_t *kv);

/** RocksDB's own memory of one handle, in bytes (what an operator needs to
 *  tell RocksDB's share of a process's RSS from the rest). */
typedef struct fl_kv_mem_s {
  uint64_t memtables;          /* rocksdb.size-all-mem-tables, all CFs:
                                  active, immutable and pinned memtables */
  uint64_t table_readers;      /* rocksdb.estimate-table-readers-mem, all
                                  CFs: table readers outside the block
                                  cache (index/filter blocks not cached) */
  uint64_t block_cache;        /* the shared block cache's usage */
  uint64_t block_cache_pinned; /* of which pinned (in use, or L0
                                  index/filter blocks) */
  uint64_t block_cache_capacity;
} fl_kv_mem_t;

/** Fills *out with RocksDB's memory figures. FL_EINVAL for NULL, FL_ESTORE
 *  when RocksDB does not know a property. Thread-safe; cheap (no I/O), fit
 *  for a metrics tick. */
fl_status_t fl_kv_mem(fl_kv_t *kv, fl_kv_mem_t *out /* out */);

/** Appends the text of RocksDB property `name` of cf (NULL = default) to
 *  *out, e.g. "rocksdb.stats" or "rocksdb.block-cache-entry-stats" (what
 *  the block cache holds, by block kind). For tools and logs. FL_NOTFOUND
 *  when RocksDB does not know the property, FL_EINVAL for NULLs. */
fl_status_t fl_kv_property(fl_kv_t *kv, fl_kv_cf_t *cf, const char *name, fl_sbuf_t *out);

/** The memtable bytes (rocksdb.size-all-mem-tables) of one CF (NULL =
 *  default) in *bytes. Returns as fl_kv_mem. */
fl_status_t fl_kv_cf_memtables(fl_kv_t *kv, fl_kv_cf_t *cf, uint64_t *bytes /* out */);

/* ---- fault injection (tests) ----------------------------------------- */

/** Arms (or, with NULL or mode NONE, disarms) fault injection; the write
 *  counter restarts so f->nth counts from the next write. Returns FL_EINVAL
 *  for nth == 0 with a mode set. Thread-safe. */
fl_status_t fl_kv_fault_set(fl_kv_t *kv, const fl_kv_fault_t *f);

/** Parses a fault spec "fail:N[:sticky]", "fail-nospc:N[:sticky]",
 *  "exit-before:N" or "exit-after:N" (for binaries that take it from a
 *  test-only flag or environment variable). Returns FL_OK or FL_EINVAL. */
fl_status_t fl_kv_fault_parse(const char *spec, fl_kv_fault_t *f /* out */);

/** Number of write calls (put, delete, batch write) that passed argument
 *  checks since open or the last fl_kv_fault_set, including those that then
 *  failed (injected or from RocksDB). Thread-safe. */
uint64_t fl_kv_write_count(const fl_kv_t *kv);

#endif /* FL_COMMON_KV_KV_H */
