/* SPDX-License-Identifier: Apache-2.0
 *
 * chain.h: trusting blocks served by any single peer or orderer.
 *
 * A client is given the genesis block out of band (as every Fabric node
 * is); it names the orderers, their signing certificates and f. A block
 * n > 0 is accepted when
 *   1. it decodes and its data hash matches its envelopes (fl_block_decode);
 *   2. at least 2f+1 distinct orderers of the genesis configuration signed
 *      SHA-256 of its header (fl_block_verify_signatures);
 *   3. when the previous block (n-1) was the last one accepted, its
 *      previous_hash is that block's header hash (fl_block_check_link).
 * Block 0 is accepted only when its header hash is the genesis block's.
 * A chain starting anywhere but at 0 is anchored by signatures alone for its
 * first block (2f+1 orderers cannot sign two different blocks n in PBFT),
 * and hash-linked from then on.
 *
 * Validation codes (peer-written metadata) are not covered by any hash or
 * signature: they are what the serving peer says.
 *
 * Threads: one thread at a time per fl_client_chain_t.
 */
#ifndef FL_CLIENT_CHAIN_H
#define FL_CLIENT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/protoutil/block.h"
#include "common/protoutil/genesis.h"

typedef struct fl_client_chain_s fl_client_chain_t;

/** Builds a verifier from an encoded genesis block (fl_genesis_decode
 *  checks it). Borrows the bytes. Returns FL_OK with *out owned
 *  (fl_client_chain_free), or the decode failure (FL_EMALFORMED,
 *  FL_ECONFIG, FL_EBADSIG, ...) with *errmsg (optional, owned). */
fl_status_t fl_client_chain_new(const uint8_t *genesis, size_t len,
                                fl_client_chain_t **out /* out */,
                                char **errmsg /* out, optional */);

/** Like fl_client_chain_new, reading the genesis block from a file.
 *  Adds FL_NOTFOUND / FL_EIO. */
fl_status_t fl_client_chain_load_file(const char *path, fl_client_chain_t **out /* out */,
                                      char **errmsg /* out, optional */);

/** Frees ch. NULL-safe. */
void fl_client_chain_free(fl_client_chain_t *ch);

/** Checks b against rules 2-3 (1 is the decoder's job) and, on success,
 *  makes it the last accepted block. Returns FL_OK; FL_EBADSIG (fewer than
 *  2f+1 valid orderer signatures, or block 0 that is not the genesis);
 *  FL_ECORRUPT (broken hash link); with *reason (optional, static). */
fl_status_t fl_client_chain_verify(fl_client_chain_t *ch, const fl_block_t *b,
                                   const char **reason /* out, optional */);

/** Decodes bytes as a block (rule 1) and verifies it. On FL_OK *out is the
 *  owned block (fl_block_free). Returns what fl_block_decode or
 *  fl_client_chain_verify returns. */
fl_status_t fl_client_chain_verify_bytes(fl_client_chain_t *ch, fl_buf_t bytes,
                                         fl_block_t **out /* out */,
                                         const char **reason /* out, optional */);

/** Forgets the last accepted block (the genesis is the anchor again). */
void fl_client_chain_reset(fl_client_chain_t *ch);

/** The number of the last accepted block (0 at first: the genesis). */
uint64_t fl_client_chain_last(const fl_client_chain_t *ch);

/** The genesis configuration; valid while ch lives. */
const fl_netconfig_t *fl_client_chain_config(const fl_client_chain_t *ch);

#endif /* FL_CLIENT_CHAIN_H */
