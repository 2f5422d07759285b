/* SPDX-License-Identifier: Apache-2.0
 *
 * validator.h: block validation and commit on the peer (Fabric's
 * validator + committer).
 *
 * A block goes through three steps:
 *
 *   1. fl_validator_check_block: at least 2f+1 distinct orderer signatures
 *      over SHA-256(header) by the orderers of the genesis configuration,
 *      and the hash link to the previous block. A block that fails is not
 *      validated further: the orderer that served it lied (the caller fails
 *      over to another).
 *   2. fl_vblock_check(vb, from, to), for disjoint ranges of transactions
 *      on any threads at once (signatures and policies are the CPU work):
 *      per transaction, in this order, the first failure decides its code
 *      (fl.common.TxValidationCode):
 *        empty envelope                               NIL_ENVELOPE
 *        envelope/payload/header does not decode,
 *          or another channel                         BAD_PAYLOAD
 *        not ENDORSER_TRANSACTION (CONFIG only in
 *          block 0)                                   UNKNOWN_TX_TYPE
 *        creator's envelope signature bad             BAD_CREATOR_SIGNATURE
 *        creator revoked                              CREATOR_REVOKED
 *        creator unknown, untrusted, expired, or
 *          not a client or admin                      CREATOR_NOT_AUTHORIZED
 *        Transaction does not decode or does not
 *          match its header                           BAD_PROPOSAL
 *        client's proposal signature bad              BAD_CREATOR_SIGNATURE
 *        chaincode (or its version) not defined       UNKNOWN_CHAINCODE
 *        chaincode response status >= 400 (no honest
 *          endorser signs one)                        ENDORSEMENT_POLICY_FAILURE
 *        an endorsement signature bad, or the
 *          endorser not a valid, unrevoked peer       BAD_ENDORSEMENT
 *        the chaincode's endorsement policy (its own
 *          or the network default, compiled against
 *          the application organisations) not met     ENDORSEMENT_POLICY_FAILURE
 *        read-write set does not decode or names
 *          another namespace                          BAD_RWSET
 *      Every signature goes through the signature cache.
 *   3. fl_vblock_commit (the committer thread, one block at a time, in
 *      order): a tx whose id is already in the ledger, or appeared earlier
 *      in this block in a transaction whose creator signature verified, is
 *      DUPLICATE_TXID; then MVCC in block order (fl_ledger_mvcc_check:
 *      MVCC_READ_CONFLICT, PHANTOM_READ_CONFLICT); then the block with its
 *      validation codes in the metadata is committed with fl_ledger_commit
 *      (writes of valid transactions under namespaced keys, the proposal's
 *      and the read-write set's blobs). Transactions whose creator
 *      signature did not verify are recorded without a tx id, so a forgery
 *      can never spend someone else's tx id.
 *
 * Block 0 is the genesis block: its one CONFIG transaction is recorded as
 * VALID without checks (the node checked the genesis file at start-up).
 *
 * Threads: a validator is immutable after creation and may be shared by
 * any number of threads. A vblock's check ranges may run concurrently on
 * disjoint ranges; fl_vblock_commit and the accessors run after every
 * check has finished (the caller orders them).
 */
#ifndef FL_PEER_NODE_VALIDATOR_H
#define FL_PEER_NODE_VALIDATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/msp.h"
#include "common/protoutil/block.h"
#include "common/protoutil/genesis.h"
#include "peer/ledger/ledger.h"
#include "peer/node/sigcache.h"

/* fl.common.TxValidationCode values. */
enum {
  FL_TX_VALID = 0,
  FL_TX_NIL_ENVELOPE = 1,
  FL_TX_BAD_PAYLOAD = 2,
  FL_TX_BAD_CREATOR_SIGNATURE = 3,
  FL_TX_BAD_PROPOSAL = 4,
  FL_TX_BAD_PROPOSAL_TXID = 5,
  FL_TX_DUPLICATE_TXID = 6,
  FL_TX_ENDORSEMENT_POLICY_FAILURE = 7,
  FL_TX_BAD_ENDORSEMENT = 8,
  FL_TX_MVCC_READ_CONFLICT = 9,
  FL_TX_PHANTOM_READ_CONFLICT = 10,
  FL_TX_BAD_RWSET = 11,
  FL_TX_UNKNOWN_TX_TYPE = 12,
  FL_TX_CREATOR_REVOKED = 13,
  FL_TX_UNKNOWN_CHAINCODE = 14,
  FL_TX_CREATOR_NOT_AUTHORIZED = 15,
  FL_TX_INVALID_OTHER_REASON = 255,
};

/** The name of a validation code ("VALID", "MVCC_READ_CONFLICT", ...);
 *  "UNKNOWN" for other values. Never NULL. */
const char *fl_tx_code_name(int code);

typedef struct fl_validator_s fl_validator_t;
typedef struct fl_vblock_s fl_vblock_t;

/** Borrowed inputs; all must outlive the validator. */
typedef struct fl_validator_opts_s {
  const fl_netconfig_t *net;  /* the genesis configuration */
  fl_msp_t *msp;              /* built from it (fl_netconfig_msp_new) */
  fl_sigcache_t *sigcache;    /* optional */
} fl_validator_opts_t;

/** Creates a validator: parses the orderers' certificates and compiles
 *  every chaincode's endorsement policy (its own, or the network default)
 *  against the application organisations. Returns FL_OK with *out owned
 *  (fl_validator_free); FL_EINVAL; FL_ECONFIG with *err (owned, fl_free)
 *  naming the chaincode whose policy does not compile or the orderer whose
 *  certificate does not parse. */
fl_status_t fl_validator_new(const fl_validator_opts_t *opts, fl_validator_t **out /* out */,
                             char **err /* out, optional */);

/** Frees v. No vblock of v may be alive. NULL is fine. */
void fl_validator_free(fl_validator_t *v);

/** The compiled endorsement policy of chaincode `name` (borrowed, valid
 *  while v lives), or NULL when the chaincode is not defined. */
const struct fl_policy_s *fl_validator_policy(const fl_validator_t *v, const char *name);

/** Step 1 (see top) for a decoded block b numbered prev_number + 1 that
 *  must follow a block with header hash prev_hash. Returns FL_OK;
 *  FL_EBADSIG (fewer than 2f+1 valid orderer signatures); FL_ECORRUPT
 *  (broken link or wrong number); FL_EINVAL (block 0 or NULL arguments);
 *  *why says what. Thread-safe. */
fl_status_t fl_validator_check_block(const fl_validator_t *v, const fl_block_t *b,
                                     uint64_t prev_number, const uint8_t prev_hash[FL_SHA256_LEN],
                                     const char **why /* out, optional */);

/** Wraps block b (taken: freed with the vblock) for steps 2 and 3.
 *  Returns an owned vblock (fl_vblock_free). Never NULL. */
fl_vblock_t *fl_vblock_new(fl_validator_t *v, fl_block_t *b);

/** Frees vb and its block. NULL is fine. */
void fl_vblock_free(fl_vblock_t *vb);

/** The block (borrowed, valid while vb lives). */
const fl_block_t *fl_vblock_block(const fl_vblock_t *vb);

/** Number of transactions (= envelopes). */
size_t fl_vblock_ntx(const fl_vblock_t *vb);

/** Step 2 for transactions [from, to) (to clamped to the count). Ranges
 *  must not overlap between concurrent calls. */
void fl_vblock_check(fl_vblock_t *vb, size_t from, size_t to);

/** Step 3: duplicate tx ids, MVCC and the commit of the block into l
 *  (whose height must be the block's number). Returns FL_OK; FL_ESTATE
 *  (wrong height); an error of fl_ledger_mvcc_check or fl_ledger_commit
 *  (nothing committed). Committer thread only. */
fl_status_t fl_vblock_commit(fl_vblock_t *vb, fl_ledger_t *l);

/** What was decided about transaction i (after step 3; after step 2 the
 *  code is provisional). Views valid while vb lives. */
typedef struct fl_vtx_info_s {
  uint8_t code;
  const char *tx_id;       /* "" when the envelope did not verify */
  const char *chaincode;   /* "" when unknown */
  const char *reason;      /* static text: why the code is not VALID */
  bool has_event;          /* the chaincode set an event (valid or not) */
  const char *event_name;
  fl_buf_t event_payload;
  fl_buf_t creator;        /* serialized identity, empty when undecoded */
} fl_vtx_info_t;

/** Fills *out for transaction i < fl_vblock_ntx. */
void fl_vblock_tx(const fl_vblock_t *vb, size_t i, fl_vtx_info_t *out /* out */);

/** The committed block bytes (with validation codes), valid while vb
 *  lives; empty before a successful fl_vblock_commit. */
fl_buf_t fl_vblock_bytes(const fl_vblock_t *vb);

#endif /* FL_PEER_NODE_VALIDATOR_H */
