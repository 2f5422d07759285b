/* SPDX-License-Identifier: Apache-2.0
 *
 * inspect.h: what the CLI reads out of blocks and transactions, and the
 * offline checks it makes on them: the genesis block and its orderer keys,
 * orderer signature verification (2f+1 distinct replicas, protoutil's
 * fl_block_verify_signatures), and a flat description of one transaction
 * (creator, chaincode, function, endorsers, event, write set).
 *
 * Everything is decoded with common/protoutil (which validates structure and
 * the tx id rule) and copied into owned C structs; nothing here talks to
 * the network.
 */
#ifndef FL_CLI_INSPECT_H
#define FL_CLI_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/x509.h"
#include "common/protoutil/block.h"
#include "common/protoutil/genesis.h"
#include "common/protoutil/rwset.h"

/** The genesis block and what verification needs from it. */
typedef struct fl_cli_genesis_s {
  fl_block_t *block;          /* owned */
  fl_netconfig_t *cfg;        /* owned */
  fl_cert_t **certs;          /* owned; indexed by replica id */
  const fl_verifier_t **verifiers; /* views into certs; n entries */
  size_t n;
  uint32_t f;
} fl_cli_genesis_t;

/** Reads and checks a genesis block file (fl_block_decode +
 *  fl_genesis_decode) and makes one verifier per orderer. Returns FL_OK
 *  with *g filled (fl_cli_genesis_clear); FL_NOTFOUND / FL_EIO (file),
 *  FL_EMALFORMED / FL_ECONFIG / FL_EBADSIG ... (not a valid genesis) with
 *  *err owned (fl_free). */
fl_status_t fl_cli_genesis_load(const char *path, fl_cli_genesis_t *g /* out */,
                                char **err /* out */);

/** Frees what g owns and zeroes it. NULL-safe. */
void fl_cli_genesis_clear(fl_cli_genesis_t *g);

/** Result of checking a block's orderer signatures. */
typedef struct fl_cli_sigcheck_s {
  fl_status_t status;     /* FL_OK: at least `required` distinct valid */
  size_t valid;           /* distinct replicas with a valid signature */
  size_t required;        /* 2f+1 */
  fl_status_t *per_sig;   /* owned; one per block signature */
  size_t n;
  const char *reason;     /* static; NULL when ok */
} fl_cli_sigcheck_t;

/** Verifies b's orderer signatures against g. Block 0 is checked instead
 *  by comparing its header hash with the genesis block's (per_sig empty).
 *  Fills *out (fl_cli_sigcheck_clear). */
void fl_cli_sigcheck(const fl_cli_genesis_t *g, const fl_block_t *b,
                     fl_cli_sigcheck_t *out /* out */);

/** Frees what c owns. NULL-safe. */
void fl_cli_sigcheck_clear(fl_cli_sigcheck_t *c);

/** The name of a per-signature status: "valid", "bad_signature",
 *  "unknown_replica", "duplicate", or fl_status_name. Static. */
const char *fl_cli_sig_status_name(fl_status_t st);

/** One transaction, flattened. Strings are owned and never NULL ("" when
 *  unknown). */
typedef struct fl_cli_txinfo_s {
  char tx_id[65];
  const char *type;          /* static: "CONFIG", "ENDORSER_TRANSACTION", ... */
  uint64_t timestamp_ms;
  char *channel;
  char *creator_mspid, *creator_cn, *creator_role;
  char *chaincode, *function;
  size_t n_args, n_blobs;
  char **args;               /* args[1..n_args) as printable text (owned) */
  char **endorsers;          /* "<mspid>:<CN>" each (owned) */
  size_t n_endorsers;
  int32_t response_status;
  char *response_message;
  char *event_name;          /* "" when none */
  fl_rwset_t *rwset;         /* owned (fl_rwset_free) or NULL */
  const char *error;         /* static; NULL when the tx decoded fully */
} fl_cli_txinfo_t;

/** Decodes envelope bytes into *out. Always fills what it can: a part that
 *  does not decode sets out->error and returns FL_EMALFORMED (the caller
 *  still clears out). Returns FL_OK when everything decoded. */
fl_status_t fl_cli_txinfo_decode(fl_buf_t envelope, fl_cli_txinfo_t *out /* out */);

/** Frees what t owns and zeroes it. NULL-safe. */
void fl_cli_txinfo_clear(fl_cli_txinfo_t *t);

/** Appends t's fields as JSON members (no braces): tx_id, type, channel,
 *  timestamp_ms, creator {mspid, cn, role}, chaincode, function, args,
 *  n_blobs, endorsers, response_status, response_message, event, writes
 *  [keys] (docs/cli-json.md, tx-get). */
void fl_cli_jw_txinfo(fl_sbuf_t *b, const fl_cli_txinfo_t *t);

#endif /* FL_CLI_INSPECT_H */
