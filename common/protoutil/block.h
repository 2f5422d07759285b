/* SPDX-License-Identifier: Apache-2.0
 *
 * block.h: blocks: building, encoding, decoding, orderer signatures and the
 * hash chain (docs/protocol.md section 4).
 *
 * Byte layout of what is hashed:
 *   header      = serialized fl.common.BlockHeader {number, previous_hash,
 *                 data_hash}, kept as the exact bytes that were signed;
 *   header hash = SHA-256(header bytes); the next block's previous_hash and
 *                 every orderer signature cover it;
 *   data_hash   = SHA-256(u32be(len0) || env0 || u32be(len1) || env1 ...),
 *                 so the split between envelopes is committed too.
 * Block 0 (genesis) has an empty previous_hash; every other block has 32
 * bytes. The metadata (orderer signatures, PBFT view and sequence number,
 * validation codes, timestamp) is not covered by any hash: signatures cannot
 * sign themselves, and validation codes are written by each peer at commit.
 *
 * Invariants of an fl_block_t (from fl_block_build or fl_block_decode):
 *   1. header holds the exact header bytes; number, previous_hash and
 *      data_hash are what they decode to; header_hash = SHA-256(header);
 *   2. data_hash equals the data hash of envelopes[0..n_envelopes);
 *   3. n_validation_codes is 0 or n_envelopes;
 *   4. every sigs[i].len is in 1..FL_SIG_MAX_LEN and n_sigs <= FL_BLOCK_MAX_SIGS.
 * Fields are read-only for users; change metadata through the functions
 * below so the invariants hold.
 */
#ifndef FL_PROTOUTIL_BLOCK_H
#define FL_PROTOUTIL_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/hash.h"
#include "common/crypto/sign.h"
#include "common/protoutil/protoutil.h"

#define FL_BLOCK_MAX_SIGS 1024           /* orderer signatures per block */
#define FL_BLOCK_MAX_ENVELOPES (1u << 20) /* envelopes per block */

/** One orderer's signature over SHA-256(header bytes). */
typedef struct fl_block_sig_s {
  uint32_t replica;                 /* PBFT replica id */
  size_t len;                       /* 1..FL_SIG_MAX_LEN */
  uint8_t sig[FL_SIG_MAX_LEN];      /* DER ECDSA signature */
} fl_block_sig_t;

typedef struct fl_block_s {
  uint64_t number;
  uint8_t previous_hash[FL_SHA256_LEN]; /* zero for block 0 */
  size_t previous_hash_len;             /* 0 for block 0, else 32 */
  uint8_t data_hash[FL_SHA256_LEN];
  uint8_t header_hash[FL_SHA256_LEN];   /* SHA-256(header) */
  fl_buf_t header;                      /* exact header bytes (block-owned) */
  fl_buf_t *envelopes;                  /* views into block-owned memory */
  size_t n_envelopes;
  /* metadata, not hashed */
  fl_block_sig_t *sigs;                 /* block-owned array */
  size_t n_sigs;
  uint64_t view, seq, timestamp_ms;
  uint8_t *validation_codes;            /* block-owned, n_validation_codes */
  size_t n_validation_codes;            /* 0 or n_envelopes */
  void *mem_;                           /* private */
} fl_block_t;

/** Computes the data hash of n envelopes (rule above) into out. Borrows
 *  envs. Returns FL_OK, or FL_ETOOBIG when an envelope is longer than
 *  UINT32_MAX bytes (out is then unspecified). */
fl_status_t fl_block_data_hash(const fl_buf_t *envs, size_t n,
                               uint8_t out[FL_SHA256_LEN] /* out */);

/** Builds block `number` over copies of envs[0..n): makes the exact header
 *  bytes, the data hash and the header hash; no signatures, zero metadata.
 *  prev_hash is NULL for block 0 and required (32 bytes) for every other
 *  number. Borrows inputs. Returns FL_OK with *out owned (fl_block_free);
 *  FL_EINVAL (prev_hash NULL for number > 0, non-NULL for 0, or more than
 *  FL_BLOCK_MAX_ENVELOPES); FL_ETOOBIG (an envelope over FL_PU_MAX_MESSAGE). */
fl_status_t fl_block_build(uint64_t number, const uint8_t *prev_hash,
                           const fl_buf_t *envs, size_t n,
                           fl_block_t **out /* out */);

/** Frees b and everything it owns. NULL is fine. */
void fl_block_free(fl_block_t *b);

/** Serializes b as fl.common.Block into out (contents replaced). The header
 *  is written as the stored bytes, never re-encoded. Returns FL_OK or
 *  FL_ETOOBIG (encoding over FL_PU_MAX_MESSAGE; out then empty). */
fl_status_t fl_block_encode(const fl_block_t *b, fl_sbuf_t *out /* out */);

/** Decodes and validates an fl.common.Block: at most FL_PU_MAX_MESSAGE
 *  bytes; it unpacks; the header is present and decodes; previous_hash is
 *  empty exactly for block 0 and 32 bytes otherwise; data_hash is 32 bytes
 *  and matches the envelopes; counts and signature sizes within the limits
 *  above; validation codes 0 or one per envelope. Signatures are NOT
 *  verified here (fl_block_verify_signatures). Borrows data. Returns FL_OK
 *  with *out owned (fl_block_free); FL_ETOOBIG; FL_EMALFORMED; FL_ECORRUPT
 *  (data hash mismatch). *reason (optional) says what is wrong. */
fl_status_t fl_block_decode(const uint8_t *data, size_t len, fl_block_t **out /* out */,
                            const char **reason /* out, optional */);

/** Appends a signature. Borrows sig. Returns FL_OK; FL_EINVAL when len is 0
 *  or over FL_SIG_MAX_LEN, or the block already has FL_BLOCK_MAX_SIGS. The
 *  signature is not checked. */
fl_status_t fl_block_add_signature(fl_block_t *b, uint32_t replica,
                                   const uint8_t *sig, size_t len);

/** Signs SHA-256(header) with s as `replica` and appends the signature.
 *  Returns FL_OK, FL_ECRYPTO, or what fl_block_add_signature returns. */
fl_status_t fl_block_sign(fl_block_t *b, uint32_t replica, const fl_signer_t *s);

/** Sets the PBFT view, sequence number and cut timestamp (not hashed). */
void fl_block_set_metadata(fl_block_t *b, uint64_t view, uint64_t seq,
                           uint64_t timestamp_ms);

/** Replaces the validation codes with a copy of codes[0..n). n must be 0 or
 *  b->n_envelopes (FL_EINVAL otherwise). */
fl_status_t fl_block_set_validation_codes(fl_block_t *b, const uint8_t *codes, size_t n);

/** Verifies the orderer signatures: the block is accepted when at least
 *  2f+1 DISTINCT replica ids have a signature over SHA-256(header) that
 *  verifies with verifiers[replica]. verifiers is indexed by replica id
 *  (n_verifiers entries; a NULL entry is an unknown replica); borrowed.
 *  sig_status, when not NULL, receives one code per b->sigs entry:
 *    FL_OK valid; FL_EBADSIG does not verify; FL_EUNTRUSTED replica id out
 *    of range or without a key; FL_EEXIST a replica already counted (a
 *    duplicate is counted once and not re-verified).
 *  n_valid (optional) receives the number of distinct valid replicas.
 *  Without sig_status the check stops at the 2f+1-th valid signature (a
 *  peer needs no more; each further one costs an ECDSA verify), so n_valid
 *  is then at most 2f+1; with sig_status every signature is checked.
 *  Returns FL_OK; FL_EBADSIG (fewer than 2f+1); FL_EINVAL when verifiers is
 *  NULL or n_verifiers < 2f+1. Block 0 carries no signatures (see
 *  genesis.h): do not call this on it. Thread-safe on a shared block. */
fl_status_t fl_block_verify_signatures(const fl_block_t *b,
                                       const fl_verifier_t *const *verifiers,
                                       size_t n_verifiers, uint32_t f,
                                       fl_status_t *sig_status /* out, optional */,
                                       size_t *n_valid /* out, optional */,
                                       const char **reason /* out, optional */);

/** Checks that next follows a block numbered prev_number whose header hash
 *  is prev_header_hash: next->number == prev_number + 1 and
 *  next->previous_hash == prev_header_hash. Returns FL_OK or FL_ECORRUPT. */
fl_status_t fl_block_check_link(uint64_t prev_number,
                                const uint8_t prev_header_hash[FL_SHA256_LEN],
                                const fl_block_t *next,
                                const char **reason /* out, optional */);

/** fl_block_check_link(prev->number, prev->header_hash, next). */
fl_status_t fl_block_check_chain(const fl_block_t *prev, const fl_block_t *next,
                                 const char **reason /* out, optional */);

#endif /* FL_PROTOUTIL_BLOCK_H */
