/* SPDX-License-Identifier: Apache-2.0
 *
 * ccrt_int.h: internals of the chaincode runtime shared by its files.
 *
 *   load.c    runtime, definitions, SHA-256 check, dlopen from a sealed memfd
 *   sim.c     the simulator: records reads/writes/ranges/blobs/event and
 *             builds the result and the TxRwSet bytes (the one place the
 *             rw-set rules live; both modes drive it)
 *   inproc.c  the stub for FL_CCRT_IN_PROCESS: calls the simulator directly
 *   worker.c  FL_CCRT_FORK: the worker pool, the channel protocol, the
 *             worker's stub (in the child) and the peer's serving loop
 *   certs.c   the creator's certificate for the stub (CN, signature check)
 *             and the worker's cache of parsed certificates
 *   blobcache.c  the worker's cache of stored blobs (content-addressed)
 *
 * Invariants of the simulator (fl__sim_t):
 *   1. reads[] holds at most one entry per key: the first committed read;
 *      a key enters reads[] only if it was not in writes[] at that moment;
 *   2. writes[] holds at most one entry per key: the last put or delete;
 *   3. ranges[i].reads are the entries handed out by range i, in scan
 *      order; on close they are cut to what the chaincode consumed;
 *   4. failed != FL_OK once any state op failed (or the in-process
 *      deadline passed); the simulation then fails whatever the chaincode
 *      returns.
 */
#ifndef FL_PEER_CCRT_CCRT_INT_H
#define FL_PEER_CCRT_CCRT_INT_H

#include <pthread.h>
#include <sys/types.h>

#include "chaincode/shim.h"
#include "peer/ccrt/ccrt.h"

#define FL__CCRT_LOG "ccrt"
/* Largest frame on a worker channel (the invocation carries its blobs). */
#define FL__CCRT_MAX_FRAME (1024u * 1024u * 1024u)
/* Range / history entries the peer sends a worker per round trip. */
#define FL__CCRT_BATCH 64u
#define FL__CCRT_BATCH_BYTES (1024u * 1024u)

/** Maps a status to the shim's return codes (shim.h: equal values). */
static inline int fl__cc_rc(int rc) {
  switch (rc) {
  case FL_OK: return FL_CC_OK;
  case FL_NOTFOUND: return FL_CC_NOTFOUND;
  case FL_EINVAL: return FL_CC_EINVAL;
  case FL_ETOOBIG: return FL_CC_ETOOBIG;
  case FL_ETIMEDOUT: return FL_CC_ETIMEDOUT;
  default: return FL_CC_EIO;
  }
}

/* ---- arena: allocations freed together ----------------------------------- */

typedef struct fl__arena_s {
  void **p;
  size_t n, cap;
} fl__arena_t;

/** n bytes (fl_malloc) owned by a; freed by fl__arena_free. */
void *fl__arena_alloc(fl__arena_t *a, size_t n);
/** Makes a own p (an fl_malloc'd block). */
void fl__arena_adopt(fl__arena_t *a, void *p);
/** An owned copy of b in a, with a NUL after the bytes. */
uint8_t *fl__arena_dup(fl__arena_t *a, fl_buf_t b);
/** Frees everything; a may be reused. */
void fl__arena_free(fl__arena_t *a);

/* ---- simulator ------------------------------------------------------------ */

typedef struct fl__index_s {
  uint32_t *slot; /* index + 1; 0 = empty */
  size_t cap;     /* power of two */
  size_t used;
} fl__index_t;

typedef struct fl__rd_s {
  uint8_t *key; /* NUL after len bytes */
  size_t klen;
  bool exists;
  fl_ccrt_version_t ver;
} fl__rd_t;

typedef struct fl__wr_s {
  uint8_t *key; /* NUL after len bytes */
  size_t klen;
  bool del;
  uint8_t *val;
  size_t vlen;
} fl__wr_t;

typedef struct fl__rng_s {
  uint8_t *start, *end; /* NUL-terminated copies */
  size_t slen, elen;
  fl__rd_t *reads;
  size_t nreads, cap;
  void *it;     /* ops iterator while open */
  bool open;
  bool src_end; /* the ops iterator reported the end */
  bool exhausted;
} fl__rng_t;

typedef struct fl__hist_s {
  void *it;
  bool open;
} fl__hist_t;

typedef struct fl__blob_s {
  uint8_t hash[FL_CCRT_HASH_LEN];
  uint8_t *data;
  size_t len;
} fl__blob_t;

typedef struct fl__sim_s {
  const fl_ccrt_state_ops_t *ops;
  void *ctx;
  fl_status_t failed;  /* invariant 4 */
  uint64_t deadline_ns; /* in-process mode: 0 = none */
  fl__rd_t *reads;
  size_t nreads, rcap;
  fl__index_t ridx;
  fl__wr_t *writes;
  size_t nwrites, wcap;
  fl__index_t widx;
  fl__rng_t *ranges;
  size_t nranges, rgcap;
  fl__hist_t *hists;
  size_t nhists, hcap;
  fl__blob_t *blobs;
  size_t nblobs, bcap;
  bool has_event;
  fl_sbuf_t ev_name, ev_payload;
} fl__sim_t;

void fl__sim_init(fl__sim_t *s, const fl_ccrt_state_ops_t *ops, void *ctx);
void fl__sim_close(fl__sim_t *s);

/** FL_OK, FL_EINVAL (empty, NUL byte) or FL_ETOOBIG. */
fl_status_t fl__key_check(fl_buf_t key);
/** Like fl__key_check, but empty is allowed (range bounds). */
fl_status_t fl__bound_check(fl_buf_t b);

/** Reads key into *out (replaced): own write first, else the state
 *  (recording the first read). FL_OK, FL_NOTFOUND, or an error. */
fl_status_t fl__sim_get(fl__sim_t *s, fl_buf_t key, fl_sbuf_t *out);
fl_status_t fl__sim_put(fl__sim_t *s, fl_buf_t key, fl_buf_t val);
fl_status_t fl__sim_del(fl__sim_t *s, fl_buf_t key);
fl_status_t fl__sim_range_open(fl__sim_t *s, fl_buf_t start, fl_buf_t end,
                               uint32_t *id);
/** Next entry of range id, recorded; views valid until the next call.
 *  FL_NOTFOUND at the end. */
fl_status_t fl__sim_range_next(fl__sim_t *s, uint32_t id, fl_buf_t *key,
                               fl_buf_t *val);
/** Closes range id; the chaincode consumed `consumed` entries and saw the
 *  end iff saw_end. FL_EPROTO for a bad id or a count over what was sent. */
fl_status_t fl__sim_range_close(fl__sim_t *s, uint32_t id, uint64_t consumed,
                                bool saw_end);
fl_status_t fl__sim_hist_open(fl__sim_t *s, fl_buf_t key, uint32_t *id);
fl_status_t fl__sim_hist_next(fl__sim_t *s, uint32_t id, fl_ccrt_mod_t *mod);
fl_status_t fl__sim_hist_close(fl__sim_t *s, uint32_t id);
fl_status_t fl__sim_put_blob(fl__sim_t *s, fl_buf_t data,
                             uint8_t hash[FL_CCRT_HASH_LEN]);
/** Reads a committed blob (fl_cc_get_stored_blob) into *out (replaced); not
 *  recorded. FL_OK, FL_NOTFOUND, FL_ETOOBIG (over FL_CC_MAX_VALUE) or the
 *  state's error (which fails the simulation). */
fl_status_t fl__sim_blob_get(fl__sim_t *s, const uint8_t hash[FL_CCRT_HASH_LEN],
                             fl_sbuf_t *out);
fl_status_t fl__sim_set_event(fl__sim_t *s, fl_buf_t name, fl_buf_t payload);
/** In-process mode: FL_ETIMEDOUT (and failed set) once the deadline passed. */
fl_status_t fl__sim_check_deadline(fl__sim_t *s);

/** Builds the result from the simulator and the chaincode's response
 *  (copied). Returns FL_OK and *out, or FL_EMALFORMED / FL_ETOOBIG. */
fl_status_t fl__sim_finish(fl__sim_t *s, const char *ns, int32_t status,
                           fl_buf_t message, fl_buf_t payload,
                           fl_ccrt_result_t **out);

/** FNV-1a, 64-bit (sim.c): the key index's hash, and the certificate
 *  cache's (which compares the full PEM bytes on a hash match). */
uint64_t fl__ccrt_fnv1a(const uint8_t *p, size_t n);

/* ---- stored blobs a worker keeps (blobcache.c) ----------------------------- */

/** A cache of stored blobs keyed by their SHA-256: at most cap entries and
 *  max_bytes bytes (least recently used evicted; a blob over max_bytes / 4
 *  is not kept). Only for bytes the blob store returned for that hash. Not
 *  thread-safe. Owned (fl__blobs_free). */
typedef struct fl__blobs_s fl__blobs_t;
typedef struct fl__blobs_stats_s {
  size_t entries, bytes;
  uint64_t hits, misses;
} fl__blobs_stats_t;
fl__blobs_t *fl__blobs_new(size_t cap, size_t max_bytes);
/** NULL-safe. */
void fl__blobs_free(fl__blobs_t *c);
/** true and a view of the cached bytes (valid until the next fl__blobs_put
 *  or fl__blobs_free), or false. */
bool fl__blobs_get(fl__blobs_t *c, const uint8_t hash[FL_CCRT_HASH_LEN], fl_buf_t *out);
/** Keeps a copy of data under hash (nothing if already there or too big). */
void fl__blobs_put(fl__blobs_t *c, const uint8_t hash[FL_CCRT_HASH_LEN], fl_buf_t data);
void fl__blobs_stats(const fl__blobs_t *c, fl__blobs_stats_t *st);

/* ---- creator certificates (certs.c) ---------------------------------------- */

typedef struct fl_cert_s fl_cert_t; /* common/crypto/x509.h */

/** A cache of parsed certificates keyed by their exact PEM bytes, at most
 *  cap entries (least recently used replaced). Not thread-safe. Owned
 *  (fl__certs_free). */
typedef struct fl__certs_s fl__certs_t;
fl__certs_t *fl__certs_new(size_t cap);
/** NULL-safe. */
void fl__certs_free(fl__certs_t *c);
/** The certificate parsed from pem (fl_cert_from_pem), cached; NULL when pem
 *  does not parse (not cached). Borrowed: valid until fl__certs_free or a
 *  later fl__certs_get of different PEM bytes (which may replace it). */
const fl_cert_t *fl__certs_get(fl__certs_t *c, fl_buf_t pem);
/** The stub's get_creator_cn on a parsed certificate (NULL: did not parse):
 *  FL_CC_OK and a view of the subject CN (valid while cert lives), or
 *  FL_CC_EMALFORMED. */
int fl__cert_cn(const fl_cert_t *cert, fl_cc_bytes_t *cn);
/** The stub's verify_creator: FL_CC_OK, FL_CC_EBADSIG or FL_CC_EMALFORMED
 *  (cert NULL). */
int fl__cert_verify(const fl_cert_t *cert, fl_cc_bytes_t msg, fl_cc_bytes_t sig);

/* ---- runtime objects ------------------------------------------------------ */

typedef struct fl__worker_s {
  pid_t pid; /* 0: no process */
  int fd;    /* peer end of the socketpair; -1 when none */
  bool busy;
} fl__worker_t;

struct fl_ccrt_cc_s {
  fl_ccrt_t *rt;
  char *name;
  char *version;
  void *dl;
  int memfd; /* the sealed copy dl was loaded from; -1 when none */
  const fl_chaincode_t *desc;
  struct fl_ccrt_cc_s *next;
  /* fork mode */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  fl__worker_t *workers;
  unsigned nworkers;
};

struct fl_ccrt_s {
  char *cc_dir;
  fl_ccrt_mode_t mode;
  unsigned workers;
  uint32_t timeout_ms;
  size_t max_so_bytes;
  fl_ccrt_cc_t *ccs;
};

/** Sets *err to an owned printf-formatted message (when err is not NULL). */
void fl__ccrt_err(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* in-process mode (inproc.c) */
fl_status_t fl__inproc_simulate(fl_ccrt_cc_t *cc, fl__sim_t *sim,
                                const fl_ccrt_invocation_t *inv,
                                int32_t *status, fl_sbuf_t *msg,
                                fl_sbuf_t *payload, char **err);

/* fork mode (worker.c) */
fl_status_t fl__pool_start(fl_ccrt_cc_t *cc, char **err);
void fl__pool_stop(fl_ccrt_cc_t *cc);
unsigned fl__pool_live(fl_ccrt_cc_t *cc);
fl_status_t fl__fork_simulate(fl_ccrt_cc_t *cc, fl__sim_t *sim,
                              const fl_ccrt_invocation_t *inv, int32_t *status,
                              fl_sbuf_t *msg, fl_sbuf_t *payload, char **err);

#endif /* FL_PEER_CCRT_CCRT_INT_H */
