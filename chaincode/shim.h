/* SPDX-License-Identifier: Apache-2.0
 *
 * shim.h: the chaincode API of fedledger, a stable C ABI between a chaincode
 * shared object and the peer's chaincode runtime (peer/ccrt).
 *
 * A chaincode is a shared object (.so) that exports exactly one symbol,
 *
 *     const fl_chaincode_t *fl_chaincode_entry(void);
 *
 * returning a static descriptor {abi version, name, init, invoke}. The peer
 * refuses the object unless its SHA-256 equals the chaincode definition in the
 * network configuration, its ABI version is one the peer speaks
 * (FL_CC_ABI_MIN_VERSION .. FL_CC_ABI_VERSION) and the name equals the
 * definition's name. For every proposal the runtime calls invoke
 * (or init) with a stub: an opaque handle whose first member is a table of
 * function pointers. The inline wrappers below (fl_cc_get_state, ...) call
 * through that table, so a chaincode links against nothing of the peer: the
 * .so has no undefined symbols except libc's, and this header is all it needs
 * (it depends on no other fedledger header and may be copied out of the tree).
 *
 * Memory rules (the LMDB MDB_val convention):
 *   1. Every byte string is an fl_cc_bytes_t {data, len}: never
 *      NUL-terminated, may contain any byte. Only fl_chaincode_t.name is a C
 *      string.
 *   2. Everything the stub hands out (arguments, blobs, stored blobs,
 *      transient data, tx id, creator, values from fl_cc_get_state, memory
 *      from fl_cc_alloc)
 *      is owned by the runtime and stays valid until the runtime has copied
 *      the response of this invocation, i.e. until after invoke returns.
 *      A chaincode that wants anything longer must copy it; it must never
 *      free it.
 *   3. Entries returned by an iterator's next stay valid only until the next
 *      call of next or close on that same iterator.
 *   4. Everything the chaincode passes in (keys, values, blob bytes, event)
 *      is copied by the runtime before the call returns; the chaincode keeps
 *      ownership of its own memory.
 *   5. The response's message and payload must still be valid when invoke
 *      has returned: point them at static data, at memory from fl_cc_alloc,
 *      or at bytes the stub handed out in this invocation (rule 2).
 *
 * Keys: 1 to FL_CC_MAX_KEY bytes, no NUL byte (the read-write set carries
 * keys as protobuf strings). A bad key gets FL_CC_EINVAL.
 *
 * Determinism: every endorser runs the same invocation against the same
 * state and must produce byte-identical results. A chaincode must not read
 * clocks (use fl_cc_get_timestamp: the proposal's time), draw random
 * numbers, start threads, do I/O, keep state in globals between
 * invocations, or depend on addresses or iteration order of its own hash
 * tables. Range iterators return keys in ascending bytewise order.
 *
 * Read-your-writes: fl_cc_get_state of a key this transaction already wrote
 * returns the written value (FL_CC_NOTFOUND after fl_cc_del_state). Range
 * scans and history show the committed state only (as in Fabric): they do
 * not see this transaction's own writes.
 *
 * Threads: the stub belongs to the thread that called invoke; a chaincode
 * must not use it (or start threads) from anywhere else.
 */
#ifndef FL_CHAINCODE_SHIM_H
#define FL_CHAINCODE_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes. Bumped on any change to
 *  fl_chaincode_t, fl_cc_stub_ops_t or the structs below. A change that only
 *  appends functions to fl_cc_stub_ops_t keeps FL_CC_ABI_MIN_VERSION, so the
 *  peer still runs chaincode built against the older header (which never
 *  calls what it does not know); an incompatible change raises both.
 *    2: fl_cc_get_stored_blob.
 *    3: fl_cc_get_creator_cn, fl_cc_verify_creator (compatible with 2). */
#define FL_CC_ABI_VERSION 3u
/** The oldest ABI version the peer's runtime still loads. */
#define FL_CC_ABI_MIN_VERSION 2u

/** The name of the one symbol a chaincode exports. */
#define FL_CC_ENTRY_SYMBOL "fl_chaincode_entry"

/** Largest key, in bytes. */
#define FL_CC_MAX_KEY (64u * 1024u)
/** Largest value, blob, event payload or response field, in bytes. */
#define FL_CC_MAX_VALUE (128u * 1024u * 1024u)
/** Length of a SHA-256 digest. */
#define FL_CC_HASH_LEN 32u

/* Return codes of the stub functions. The values equal fedledger's
 * fl_status_t codes of the same name (common/base/status.h). */
#define FL_CC_OK 0
#define FL_CC_NOTFOUND (-1)    /* key absent, or an iterator's end */
#define FL_CC_EINVAL (-3)      /* bad argument: empty key, NUL in key, ... */
#define FL_CC_EIO (-5)         /* the peer could not read its state */
#define FL_CC_EMALFORMED (-6)  /* the creator's certificate does not parse */
#define FL_CC_ETOOBIG (-7)     /* key or value over the limits above */
#define FL_CC_EBADSIG (-9)     /* a signature does not verify */
#define FL_CC_ETIMEDOUT (-13)  /* the invocation ran out of time */

/* Response status codes, as in Fabric's shim. 200..399 is success; an
 * endorser never endorses a response with status >= 400. */
#define FL_CC_STATUS_OK 200
#define FL_CC_STATUS_BAD_REQUEST 400
#define FL_CC_STATUS_FORBIDDEN 403
#define FL_CC_STATUS_NOT_FOUND 404
#define FL_CC_STATUS_ERROR 500

/** A byte string view: never NUL-terminated; owner stated by the API. */
typedef struct fl_cc_bytes_s {
  const uint8_t *data;
  size_t len;
} fl_cc_bytes_t;

/** The chaincode's answer. message and payload follow memory rule 5. */
typedef struct fl_cc_response_s {
  int32_t status;
  fl_cc_bytes_t message;
  fl_cc_bytes_t payload;
} fl_cc_response_t;

/** One entry of a range scan (views, memory rule 3). */
typedef struct fl_cc_kv_s {
  fl_cc_bytes_t key;
  fl_cc_bytes_t value;
} fl_cc_kv_t;

/** One modification of a key by a committed, valid transaction (views,
 *  memory rule 3). value is empty for a delete. */
typedef struct fl_cc_mod_s {
  fl_cc_bytes_t tx_id;
  uint64_t block_num;
  uint64_t tx_num;
  int is_delete;
  fl_cc_bytes_t value;
} fl_cc_mod_t;

/** Who signed the proposal, as the peer's MSP verified it (views, memory
 *  rule 2). role is the certificate's NodeOU ("client", "admin", "peer",
 *  "orderer"; empty if none); cert_sha256 is the SHA-256 of the
 *  certificate's DER bytes (FL_CC_HASH_LEN bytes), the identity's
 *  fingerprint as used by revocation lists. */
typedef struct fl_cc_creator_s {
  fl_cc_bytes_t mspid;
  fl_cc_bytes_t cert_pem;
  fl_cc_bytes_t role;
  fl_cc_bytes_t cert_sha256;
} fl_cc_creator_t;

typedef struct fl_cc_stub_s fl_cc_stub_t;
typedef struct fl_cc_range_iter_s fl_cc_range_iter_t;
typedef struct fl_cc_hist_iter_s fl_cc_hist_iter_t;

/** The runtime's function table. A chaincode calls it through the inline
 *  wrappers below, never directly. */
typedef struct fl_cc_stub_ops_s {
  uint32_t abi_version;
  void (*get_args)(fl_cc_stub_t *s, size_t *argc, const fl_cc_bytes_t **argv);
  int (*get_state)(fl_cc_stub_t *s, fl_cc_bytes_t key, fl_cc_bytes_t *value);
  int (*put_state)(fl_cc_stub_t *s, fl_cc_bytes_t key, fl_cc_bytes_t value);
  int (*del_state)(fl_cc_stub_t *s, fl_cc_bytes_t key);
  int (*get_state_range)(fl_cc_stub_t *s, fl_cc_bytes_t start, fl_cc_bytes_t end,
                         fl_cc_range_iter_t **it);
  int (*range_next)(fl_cc_range_iter_t *it, fl_cc_kv_t *kv);
  void (*range_close)(fl_cc_range_iter_t *it);
  int (*get_history_for_key)(fl_cc_stub_t *s, fl_cc_bytes_t key,
                             fl_cc_hist_iter_t **it);
  int (*hist_next)(fl_cc_hist_iter_t *it, fl_cc_mod_t *mod);
  void (*hist_close)(fl_cc_hist_iter_t *it);
  size_t (*get_blob_count)(fl_cc_stub_t *s);
  int (*get_blob)(fl_cc_stub_t *s, size_t i, fl_cc_bytes_t *blob);
  int (*put_blob)(fl_cc_stub_t *s, fl_cc_bytes_t data, uint8_t hash[FL_CC_HASH_LEN]);
  fl_cc_bytes_t (*get_transient)(fl_cc_stub_t *s);
  fl_cc_bytes_t (*get_tx_id)(fl_cc_stub_t *s);
  uint64_t (*get_timestamp)(fl_cc_stub_t *s);
  void (*get_creator)(fl_cc_stub_t *s, fl_cc_creator_t *creator);
  int (*set_event)(fl_cc_stub_t *s, fl_cc_bytes_t name, fl_cc_bytes_t payload);
  void *(*alloc)(fl_cc_stub_t *s, size_t n);
  /* ABI 2 */
  int (*get_stored_blob)(fl_cc_stub_t *s, const uint8_t hash[FL_CC_HASH_LEN],
                         fl_cc_bytes_t *blob);
  /* ABI 3 */
  int (*get_creator_cn)(fl_cc_stub_t *s, fl_cc_bytes_t *cn);
  int (*verify_creator)(fl_cc_stub_t *s, fl_cc_bytes_t msg, fl_cc_bytes_t sig);
} fl_cc_stub_ops_t;

/** The stub. Opaque apart from its first member; the runtime owns it and it
 *  is valid only during the invoke/init call it is passed to. */
struct fl_cc_stub_s {
  const fl_cc_stub_ops_t *ops;
};

/* The iterators are opaque to the chaincode; their first member is the
 * table, which the wrappers below use. */
struct fl_cc_range_iter_s {
  const fl_cc_stub_ops_t *ops;
};
struct fl_cc_hist_iter_s {
  const fl_cc_stub_ops_t *ops;
};

/** What fl_chaincode_entry returns: static data of the .so. */
typedef struct fl_chaincode_s {
  uint32_t abi_version;  /* FL_CC_ABI_VERSION */
  const char *name;      /* NUL-terminated; must equal the definition's name */
  /** Called for an init proposal; may be NULL (the runtime then answers
   *  404 "no init"). */
  fl_cc_response_t (*init)(fl_cc_stub_t *stub);
  /** Called for every other proposal; required. */
  fl_cc_response_t (*invoke)(fl_cc_stub_t *stub);
} fl_chaincode_t;

/** The one exported symbol of a chaincode .so (define it in the chaincode). */
const fl_chaincode_t *fl_chaincode_entry(void);

/* ---- wrappers ---------------------------------------------------------- */

/** A view of a C string literal or NUL-terminated string (without the NUL). */
static inline fl_cc_bytes_t fl_cc_str(const char *s) {
  return (fl_cc_bytes_t){.data = (const uint8_t *)s, .len = strlen(s)};
}
/** A view of n bytes at p. */
static inline fl_cc_bytes_t fl_cc_bytes(const void *p, size_t n) {
  return (fl_cc_bytes_t){.data = (const uint8_t *)p, .len = n};
}
/** True when b holds exactly the bytes of the C string s. */
static inline int fl_cc_eq(fl_cc_bytes_t b, const char *s) {
  size_t n = strlen(s);
  return b.len == n && (n == 0 || memcmp(b.data, s, n) == 0);
}

/** A 200 response with payload (memory rule 5) and no message. */
static inline fl_cc_response_t fl_cc_success(fl_cc_bytes_t payload) {
  return (fl_cc_response_t){.status = FL_CC_STATUS_OK, .payload = payload};
}
/** An error response with status (400..599) and a message (rule 5). */
static inline fl_cc_response_t fl_cc_error(int32_t status, fl_cc_bytes_t message) {
  return (fl_cc_response_t){.status = status, .message = message};
}

/** The arguments: *argc of them in *argv (rule 2); argv[0] is the function
 *  name. argc is at least 1 for a proposal the peer accepted. */
static inline void fl_cc_get_args(fl_cc_stub_t *s, size_t *argc,
                                  const fl_cc_bytes_t **argv) {
  s->ops->get_args(s, argc, argv);
}
/** Reads key. Returns FL_CC_OK and *value (rule 2), FL_CC_NOTFOUND (key
 *  absent or deleted by this tx; *value empty), FL_CC_EINVAL / FL_CC_ETOOBIG
 *  for a bad key, FL_CC_EIO or FL_CC_ETIMEDOUT (the proposal fails whatever
 *  the chaincode answers). The first read of a key records its version in
 *  the read set. */
static inline int fl_cc_get_state(fl_cc_stub_t *s, fl_cc_bytes_t key,
                                  fl_cc_bytes_t *value) {
  return s->ops->get_state(s, key, value);
}
/** Writes key = value (both copied; the last write of a key wins). Returns
 *  FL_CC_OK, FL_CC_EINVAL, FL_CC_ETOOBIG, FL_CC_EIO, FL_CC_ETIMEDOUT. */
static inline int fl_cc_put_state(fl_cc_stub_t *s, fl_cc_bytes_t key,
                                  fl_cc_bytes_t value) {
  return s->ops->put_state(s, key, value);
}
/** Deletes key (a delete of an absent key is recorded too). Returns as
 *  fl_cc_put_state. */
static inline int fl_cc_del_state(fl_cc_stub_t *s, fl_cc_bytes_t key) {
  return s->ops->del_state(s, key);
}
/** Starts a scan of the committed keys in [start, end), ascending; an empty
 *  start means from the first key, an empty end means to the last. Returns
 *  FL_CC_OK and *it (close it with fl_cc_range_close; the runtime closes
 *  what is left open when invoke returns), FL_CC_EINVAL, FL_CC_ETOOBIG,
 *  FL_CC_EIO, FL_CC_ETIMEDOUT. The keys and versions the chaincode consumes
 *  are recorded for phantom detection. */
static inline int fl_cc_get_state_range(fl_cc_stub_t *s, fl_cc_bytes_t start,
                                        fl_cc_bytes_t end,
                                        fl_cc_range_iter_t **it) {
  return s->ops->get_state_range(s, start, end, it);
}
/** Next entry of a scan (rule 3). Returns FL_CC_OK, FL_CC_NOTFOUND at the
 *  end, FL_CC_EIO or FL_CC_ETIMEDOUT. */
static inline int fl_cc_range_next(fl_cc_range_iter_t *it, fl_cc_kv_t *kv) {
  return it->ops->range_next(it, kv);
}
/** Closes a scan. NULL-safe. */
static inline void fl_cc_range_close(fl_cc_range_iter_t *it) {
  if (it) it->ops->range_close(it);
}
/** Starts a walk over key's committed modifications, newest first. Returns
 *  as fl_cc_get_state_range; close with fl_cc_hist_close. History reads are
 *  not part of the read set. */
static inline int fl_cc_get_history_for_key(fl_cc_stub_t *s, fl_cc_bytes_t key,
                                            fl_cc_hist_iter_t **it) {
  return s->ops->get_history_for_key(s, key, it);
}
/** Next modification (rule 3). Returns FL_CC_OK, FL_CC_NOTFOUND at the end,
 *  FL_CC_EIO or FL_CC_ETIMEDOUT. */
static inline int fl_cc_hist_next(fl_cc_hist_iter_t *it, fl_cc_mod_t *mod) {
  return it->ops->hist_next(it, mod);
}
/** Closes a history walk. NULL-safe. */
static inline void fl_cc_hist_close(fl_cc_hist_iter_t *it) {
  if (it) it->ops->hist_close(it);
}
/** Number of blobs (large arguments) the proposal carries. */
static inline size_t fl_cc_get_blob_count(fl_cc_stub_t *s) {
  return s->ops->get_blob_count(s);
}
/** The proposal's blob i (rule 2). Returns FL_CC_OK or FL_CC_NOTFOUND
 *  (i out of range). */
static inline int fl_cc_get_blob(fl_cc_stub_t *s, size_t i, fl_cc_bytes_t *blob) {
  return s->ops->get_blob(s, i, blob);
}
/** Asks the transaction to store data (copied) in the blob store under its
 *  SHA-256, written to hash. Returns FL_CC_OK, FL_CC_ETOOBIG, FL_CC_EIO,
 *  FL_CC_ETIMEDOUT. Storing the same bytes twice stores them once. */
static inline int fl_cc_put_blob(fl_cc_stub_t *s, fl_cc_bytes_t data,
                                 uint8_t hash[FL_CC_HASH_LEN]) {
  return s->ops->put_blob(s, data, hash);
}
/** A blob of the peer's blob store: the bytes whose SHA-256 is hash, stored
 *  by an earlier, committed transaction (a proposal's blob or fl_cc_put_blob;
 *  rule 2). Returns FL_CC_OK, FL_CC_NOTFOUND, FL_CC_EIO, FL_CC_ETIMEDOUT.
 *
 *  The read is not recorded in the read set: a blob is content-addressed
 *  and never changes or goes away, so there is no version to check. What
 *  can differ between endorsers is only whether a blob is there yet, so a
 *  chaincode should ask only for hashes it read from committed state (a
 *  record written by the transaction that stored the blob): the read set
 *  then holds that record's version, and any endorser that saw the record
 *  has the blob. This lets a transaction carry a large payload once, as a
 *  proposal blob, instead of a second time as a state value. */
static inline int fl_cc_get_stored_blob(fl_cc_stub_t *s, const uint8_t hash[FL_CC_HASH_LEN],
                                        fl_cc_bytes_t *blob) {
  return s->ops->get_stored_blob(s, hash, blob);
}
/** The proposal's transient data (rule 2; never recorded in the ledger). */
static inline fl_cc_bytes_t fl_cc_get_transient(fl_cc_stub_t *s) {
  return s->ops->get_transient(s);
}
/** The transaction id (hex, rule 2). */
static inline fl_cc_bytes_t fl_cc_get_tx_id(fl_cc_stub_t *s) {
  return s->ops->get_tx_id(s);
}
/** The proposal's timestamp (ms since the epoch, chosen by the client): the
 *  only clock a chaincode may use. */
static inline uint64_t fl_cc_get_timestamp(fl_cc_stub_t *s) {
  return s->ops->get_timestamp(s);
}
/** Fills *creator with the proposal's signer (rule 2). */
static inline void fl_cc_get_creator(fl_cc_stub_t *s, fl_cc_creator_t *creator) {
  s->ops->get_creator(s, creator);
}
/** (ABI 3) The subject CN of the creator's certificate (cert_pem of
 *  fl_cc_get_creator), as the runtime parsed it: *cn is a view (rule 2),
 *  empty when the subject has no CN. Returns FL_CC_OK, or FL_CC_EMALFORMED
 *  (*cn empty) when cert_pem does not parse as a certificate. The runtime
 *  keeps parsed certificates between invocations (a chaincode may not), so
 *  this is much cheaper than parsing cert_pem in the chaincode. */
static inline int fl_cc_get_creator_cn(fl_cc_stub_t *s, fl_cc_bytes_t *cn) {
  return s->ops->get_creator_cn(s, cn);
}
/** (ABI 3) Verifies sig, an ECDSA P-256 signature in DER (low S), over the
 *  SHA-256 of msg with the public key of the creator's certificate. Returns
 *  FL_CC_OK when it is valid; FL_CC_EBADSIG for any other signature (wrong
 *  key or message, malformed, high S) and when the key is not P-256;
 *  FL_CC_EMALFORMED when cert_pem does not parse. Deterministic: the same
 *  bytes give the same answer on every peer. Like fl_cc_get_creator_cn it
 *  uses the runtime's parsed certificate and verifier. */
static inline int fl_cc_verify_creator(fl_cc_stub_t *s, fl_cc_bytes_t msg, fl_cc_bytes_t sig) {
  return s->ops->verify_creator(s, msg, sig);
}
/** Sets the transaction's chaincode event (copied; a later call replaces
 *  it). name must be non-empty. Returns FL_CC_OK, FL_CC_EINVAL,
 *  FL_CC_ETOOBIG, FL_CC_EIO, FL_CC_ETIMEDOUT. */
static inline int fl_cc_set_event(fl_cc_stub_t *s, fl_cc_bytes_t name,
                                  fl_cc_bytes_t payload) {
  return s->ops->set_event(s, name, payload);
}
/** n bytes of scratch memory (uninitialised, aligned for any type) owned by
 *  the runtime and valid until the response is copied (rule 2): the place
 *  for a response message or payload built at run time. Never NULL (the
 *  peer aborts on OOM); n larger than FL_CC_MAX_VALUE returns NULL. */
static inline void *fl_cc_alloc(fl_cc_stub_t *s, size_t n) {
  return s->ops->alloc(s, n);
}

#ifdef __cplusplus
}
#endif

#endif /* FL_CHAINCODE_SHIM_H */
