/* SPDX-License-Identifier: Apache-2.0
 *
 * ccrt.h: the chaincode runtime inside the peer. It loads chaincode shared
 * objects (chaincode/shim.h) named by the chaincode definitions of the
 * network configuration, refusing any whose SHA-256 differs from the
 * definition, and simulates proposals: it runs a chaincode's invoke against
 * a read-only view of the world state and records what the transaction read
 * (keys with versions, range scans) and would write, as a C struct and as
 * the serialized fl.ledger.TxRwSet the endorsers sign.
 *
 * The runtime does not know the ledger: it reads state through an ops table
 * (fl_ccrt_state_ops_t) that the endorser implements over a ledger snapshot.
 *
 * Isolation (docs/chaincode.md, "Isolation"). In FL_CCRT_FORK mode (the
 * default) each loaded chaincode has a pool of pre-forked worker processes;
 * an invocation runs in a worker, which calls back into the peer over a
 * socketpair for every state access. A chaincode that crashes, aborts or
 * runs past the timeout fails that proposal (its worker is killed and
 * replaced); the peer lives on. FL_CCRT_IN_PROCESS runs the chaincode on the
 * calling thread: faster, but a crash kills the peer and the timeout is
 * only checked when the chaincode calls the stub (or returns).
 *
 * Deterministic encoding of the read-write set (every endorser must produce
 * identical bytes for the same proposal and state):
 *   1. reads: one per key, the version seen on the FIRST read, sorted by
 *      key (bytewise, a prefix sorts first); a key the tx wrote before
 *      reading it is not read;
 *   2. writes: one per key, the LAST write or delete, sorted by key;
 *   3. range_reads: in the order the chaincode opened them; each lists the
 *      keys it handed to the chaincode, in scan order, with their versions;
 *      exhausted is set when the chaincode saw the end of the scan;
 *   4. blobs: distinct blobs sorted by their SHA-256;
 *   5. the message is packed by protobuf-c (fields in number order, no
 *      unknown fields, no maps), which is deterministic for a given struct.
 *
 * Threads: fl_ccrt_new/free and fl_ccrt_load must not run concurrently with
 * anything else on the runtime. fl_ccrt_simulate may run from many threads
 * at once, also on the same chaincode (each call borrows one worker).
 */
#ifndef FL_PEER_CCRT_CCRT_H
#define FL_PEER_CCRT_CCRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

#define FL_CCRT_HASH_LEN 32

typedef struct fl_ccrt_s fl_ccrt_t;
typedef struct fl_ccrt_cc_s fl_ccrt_cc_t;

/* ---- the state the chaincode reads ------------------------------------ */

/** A state version: block number and tx index of the last writer. */
typedef struct fl_ccrt_version_s {
  uint64_t block;
  uint64_t tx;
} fl_ccrt_version_t;

/** One committed modification of a key. Views. */
typedef struct fl_ccrt_mod_s {
  fl_buf_t tx_id;
  uint64_t block;
  uint64_t tx;
  bool is_delete;
  fl_buf_t value;
} fl_ccrt_mod_t;

/** Read access to the committed world state of the chaincode's namespace,
 *  implemented by the caller (over a ledger snapshot, or a fake). Every
 *  function returns FL_OK, FL_NOTFOUND where stated, or any other negative
 *  fl_status_t for a failure (which fails the simulation). The runtime calls
 *  them only from the thread that called fl_ccrt_simulate. */
typedef struct fl_ccrt_state_ops_s {
  /** Reads key: value into *val (replaced; the runtime frees it) and its
   *  version into *ver. FL_NOTFOUND when absent. */
  fl_status_t (*get)(void *ctx, fl_buf_t key, fl_sbuf_t *val /* out */,
                     fl_ccrt_version_t *ver /* out */);
  /** Starts a scan of [start, end) in ascending bytewise key order; empty
   *  end = to the last key. Bounds are borrowed for the call only. */
  fl_status_t (*range_new)(void *ctx, fl_buf_t start, fl_buf_t end,
                           void **it /* out */);
  /** Next entry; views valid until the next call or range_free.
   *  FL_NOTFOUND at the end. */
  fl_status_t (*range_next)(void *it, fl_buf_t *key /* out */,
                            fl_buf_t *val /* out */,
                            fl_ccrt_version_t *ver /* out */);
  /** Frees a scan. NULL-safe. */
  void (*range_free)(void *it);
  /** Starts a walk over key's modifications, NEWEST FIRST. */
  fl_status_t (*hist_new)(void *ctx, fl_buf_t key, void **it /* out */);
  /** Next modification; views valid until the next call or hist_free.
   *  FL_NOTFOUND at the end. */
  fl_status_t (*hist_next)(void *it, fl_ccrt_mod_t *mod /* out */);
  /** Frees a walk. NULL-safe. */
  void (*hist_free)(void *it);
  /** Reads the committed blob whose SHA-256 is hash into *out (replaced; the
   *  runtime frees it). FL_NOTFOUND when the blob store has none. Must hand
   *  out only bytes whose SHA-256 is hash (fl_ledger_blob_get checks it and
   *  fails with FL_ECORRUPT): fl_cc_get_stored_blob promises that to the
   *  chaincode, which therefore need not hash them again. */
  fl_status_t (*blob_get)(void *ctx, const uint8_t hash[FL_CCRT_HASH_LEN],
                          fl_sbuf_t *out /* out */);
} fl_ccrt_state_ops_t;

/* ---- runtime ------------------------------------------------------------ */

typedef enum fl_ccrt_mode_e {
  FL_CCRT_FORK = 0,       /* pre-forked worker processes (isolated) */
  FL_CCRT_IN_PROCESS = 1, /* on the caller's thread (not isolated) */
} fl_ccrt_mode_t;

/** Options for fl_ccrt_new. Zero-initialise; zero fields take defaults. */
typedef struct fl_ccrt_opts_s {
  const char *cc_dir;     /* required: where the .so files are */
  fl_ccrt_mode_t mode;    /* FL_CCRT_FORK by default */
  unsigned workers;       /* worker processes per chaincode; 0 = 2 */
  uint32_t timeout_ms;    /* per invocation; 0 = 30000 */
  size_t max_so_bytes;    /* largest .so accepted; 0 = 256 MiB */
} fl_ccrt_opts_t;

/** Creates a runtime. Borrows opts (cc_dir is copied). Returns FL_OK and an
 *  owned runtime in *out (fl_ccrt_free), or FL_EINVAL (no cc_dir, bad mode,
 *  more than 64 workers). */
fl_status_t fl_ccrt_new(const fl_ccrt_opts_t *opts, fl_ccrt_t **out /* out */);

/** Unloads every chaincode (kills and reaps their workers, dlcloses) and
 *  frees the runtime. No simulation may be running. NULL-safe. */
void fl_ccrt_free(fl_ccrt_t *rt);

/** A chaincode definition from the network configuration. Borrowed. */
typedef struct fl_ccrt_def_s {
  const char *name;     /* required, as the .so's descriptor says */
  const char *version;  /* required, reported in ProposalResponsePayload */
  const uint8_t *sha256; /* required, FL_CCRT_HASH_LEN bytes */
  const char *library;  /* required: file name inside cc_dir, no '/' */
} fl_ccrt_def_t;

/** Loads a chaincode: reads cc_dir/library into memory, hashes those
 *  bytes, and REFUSES them unless the SHA-256 equals def->sha256; then
 *  loads exactly those bytes (through a sealed memfd, so the file cannot
 *  change between the check and the load) with RTLD_NOW | RTLD_LOCAL,
 *  resolves fl_chaincode_entry, and checks the descriptor's ABI version,
 *  name and invoke. In FL_CCRT_FORK mode it then forks the worker pool.
 *  The .so's constructors run inside the peer: loading is not isolated.
 *  Returns FL_OK and a handle in *out (borrowed: owned by rt, valid until
 *  fl_ccrt_free); on failure *out is NULL, *err (if err is not NULL)
 *  receives an owned message (fl_free) and, when a file was refused, an
 *  ERROR line is logged:
 *    FL_EINVAL     bad definition (missing field, '/' in library);
 *    FL_EEXIST     a chaincode with this name is loaded already;
 *    FL_NOTFOUND   no such file;
 *    FL_ETOOBIG    file larger than max_so_bytes;
 *    FL_EIO        read error;
 *    FL_EPERM      SHA-256 mismatch (the message names both hashes);
 *    FL_ECONFIG    not a loadable object, missing symbol, wrong ABI
 *                  version, wrong name, no invoke;
 *    FL_EINTERNAL  memfd, socketpair or fork failed. */
fl_status_t fl_ccrt_load(fl_ccrt_t *rt, const fl_ccrt_def_t *def,
                         fl_ccrt_cc_t **out /* out */, char **err /* out */);

/** The loaded chaincode called name, or NULL. Borrowed. */
fl_ccrt_cc_t *fl_ccrt_find(fl_ccrt_t *rt, const char *name);
/** The chaincode's name and version (valid while rt lives). */
const char *fl_ccrt_cc_name(const fl_ccrt_cc_t *cc);
const char *fl_ccrt_cc_version(const fl_ccrt_cc_t *cc);
/** Number of worker processes currently alive (0 in-process). For tests and
 *  the operations endpoint. */
unsigned fl_ccrt_cc_live_workers(fl_ccrt_cc_t *cc);

/* ---- simulation --------------------------------------------------------- */

/** The signer of the proposal, as the endorser's MSP check found it.
 *  Borrowed views. */
typedef struct fl_ccrt_creator_s {
  fl_buf_t mspid;
  fl_buf_t cert_pem;
  fl_buf_t role;    /* NodeOU: "client", "admin", "peer", ... */
  uint8_t cert_sha256[FL_CCRT_HASH_LEN];
} fl_ccrt_creator_t;

/** One proposal to simulate. Borrowed views, valid for the call. */
typedef struct fl_ccrt_invocation_s {
  bool init;               /* call the chaincode's init instead of invoke */
  fl_buf_t tx_id;
  uint64_t timestamp_ms;   /* the proposal header's */
  const fl_buf_t *args;    /* args[0] = function; nargs >= 1 */
  size_t nargs;
  const fl_buf_t *blobs;
  size_t nblobs;
  fl_buf_t transient;
  fl_ccrt_creator_t creator;
} fl_ccrt_invocation_t;

/** A point read. exists == false: the key was absent (no version). */
typedef struct fl_ccrt_read_s {
  fl_buf_t key;
  bool exists;
  fl_ccrt_version_t version;
} fl_ccrt_read_t;

typedef struct fl_ccrt_write_s {
  fl_buf_t key;
  bool is_delete;
  fl_buf_t value; /* empty for a delete */
} fl_ccrt_write_t;

typedef struct fl_ccrt_range_read_s {
  fl_buf_t start;
  fl_buf_t end;
  const fl_ccrt_read_t *reads;
  size_t nreads;
  bool exhausted;
} fl_ccrt_range_read_t;

typedef struct fl_ccrt_blob_s {
  uint8_t hash[FL_CCRT_HASH_LEN];
  fl_buf_t data;
} fl_ccrt_blob_t;

/** The read-write set in the deterministic order described above. */
typedef struct fl_ccrt_rwset_s {
  const fl_ccrt_read_t *reads;
  size_t nreads;
  const fl_ccrt_write_t *writes;
  size_t nwrites;
  const fl_ccrt_range_read_t *ranges;
  size_t nranges;
  const fl_ccrt_blob_t *blobs;
  size_t nblobs;
} fl_ccrt_rwset_t;

/** What a simulation produced. All views point into memory the result
 *  owns (free with fl_ccrt_result_free). */
typedef struct fl_ccrt_result_s {
  int32_t status;       /* the chaincode's response */
  fl_buf_t message;
  fl_buf_t payload;
  bool has_event;
  fl_buf_t event_name;
  fl_buf_t event_payload;
  fl_ccrt_rwset_t rwset;
  fl_buf_t rwset_bytes; /* serialized fl.ledger.TxRwSet, namespace = cc name */
  uint64_t elapsed_ns;  /* wall time of the invocation */
  void *mem_;           /* private */
} fl_ccrt_result_t;

/** Runs one invocation of cc against the state behind ops/ctx (borrowed).
 *  Returns FL_OK when the chaincode returned a response, whatever its
 *  status (the endorser must not endorse status >= 400), with an owned
 *  result in *out. Otherwise *out is NULL, *err (if not NULL) gets an owned
 *  message (fl_free) and one of:
 *    FL_EINVAL     bad invocation (no args, NULL pointers);
 *    FL_ETIMEDOUT  the chaincode ran longer than timeout_ms (in fork mode
 *                  its worker was killed and replaced);
 *    FL_EINTERNAL  the chaincode crashed or aborted (fork mode; the message
 *                  names the signal), or broke the worker protocol;
 *    FL_EUNAVAIL   no worker could be started;
 *    FL_ETOOBIG    the invocation (arguments + blobs) exceeds 1 GiB;
 *    any error a state op returned (the read failed, so the read set would
 *                  be wrong: the proposal fails whatever the chaincode said);
 *    FL_EMALFORMED the response or rw-set could not be encoded.
 *  Thread-safe (see the header comment). */
fl_status_t fl_ccrt_simulate(fl_ccrt_cc_t *cc, const fl_ccrt_state_ops_t *ops,
                             void *ctx, const fl_ccrt_invocation_t *inv,
                             fl_ccrt_result_t **out /* out */,
                             char **err /* out */);

/** Frees a result. NULL-safe. */
void fl_ccrt_result_free(fl_ccrt_result_t *r);

/** Computes the SHA-256 of a file (the same hash fl_ccrt_load checks), for
 *  tools that write chaincode definitions. Returns FL_OK, FL_NOTFOUND,
 *  FL_ETOOBIG (over max_bytes; 0 = 256 MiB) or FL_EIO. */
fl_status_t fl_ccrt_file_sha256(const char *path, size_t max_bytes,
                                uint8_t out[FL_CCRT_HASH_LEN] /* out */);

#endif /* FL_PEER_CCRT_CCRT_H */
