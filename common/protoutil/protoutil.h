/* SPDX-License-Identifier: Apache-2.0
 *
 * protoutil.h: the one place where fedledger's wire messages are built,
 * hashed, signed, unpacked and validated (Fabric's protoutil plus
 * msgvalidation). This header holds what every message kind shares: limits,
 * the transaction header and the tx id rule; the message kinds have their
 * own headers (block.h, envelope.h, proposal.h, rwset.h, genesis.h).
 *
 * Rules every function of the module follows:
 *   1. protobuf-c structs never leave it: a decoder unpacks, validates,
 *      copies into our own C structs and frees the protobuf-c struct.
 *   2. Decoded structs own their memory; the fl_buf_t and string fields in
 *      them are views into it, valid until the struct is freed. Input bytes
 *      are borrowed and never referenced after the call returns.
 *   3. Builders borrow everything they are given; their output is written
 *      into a caller-owned fl_sbuf_t (contents replaced).
 *   4. Untrusted bytes never crash a decoder: lengths are bounded before
 *      anything is allocated, and every failure returns an fl_status_t plus,
 *      when `reason` is not NULL, a static string saying what is wrong
 *      ("envelope: tx id does not match nonce and creator").
 *   5. Hashes and signatures always cover exact stored bytes, never
 *      re-encoded structs (docs/protocol.md section 2).
 *
 * Thread-safety: no function keeps state; any number of threads may use the
 * module at once as long as they do not share a mutable struct.
 */
#ifndef FL_PROTOUTIL_PROTOUTIL_H
#define FL_PROTOUTIL_PROTOUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/hash.h"

/* Largest encoded message any decoder accepts (a block of model updates is
 * the largest thing on the wire). Checked before anything is unpacked. */
#define FL_PU_MAX_MESSAGE (256u * 1024 * 1024)
/* A transaction nonce is 24 random bytes (docs/protocol.md section 3). */
#define FL_NONCE_LEN 24
/* A tx id is 64 lowercase hex digits (SHA-256), plus a NUL in C. */
#define FL_TXID_HEX_LEN 64
/* Longest channel name, as Fabric. */
#define FL_CHANNEL_MAX 249

/** The kinds of Envelope payloads (fl.common.HeaderType). */
typedef enum fl_header_type_e {
  FL_HDR_UNSPECIFIED = 0,
  FL_HDR_CONFIG = 1,       /* data = fl.config.NetworkConfig */
  FL_HDR_ENDORSER_TX = 2,  /* data = fl.peer.Transaction */
} fl_header_type_t;

/** A transaction header (fl.common.Header). In a decoded struct all views
 *  point into the owner's memory; when given to a builder they are borrowed.
 */
typedef struct fl_header_s {
  fl_header_type_t type;
  const char *channel;                /* NUL-terminated, 1..FL_CHANNEL_MAX */
  char tx_id[FL_TXID_HEX_LEN + 1];    /* hex SHA-256(nonce || creator) */
  uint64_t timestamp_ms;              /* creator's wall clock, never 0 */
  fl_buf_t creator;                   /* serialized fl.msp.SerializedIdentity */
  fl_buf_t nonce;                     /* FL_NONCE_LEN bytes */
} fl_header_t;

/** Returns "CONFIG", "ENDORSER_TRANSACTION" or "UNKNOWN". Never NULL. */
const char *fl_header_type_name(fl_header_type_t t);

/** Writes the tx id of (nonce, creator): lowercase hex of
 *  SHA-256(nonce || creator), NUL-terminated, into out. Borrows inputs. */
void fl_tx_id_compute(fl_buf_t nonce, fl_buf_t creator,
                      char out[FL_TXID_HEX_LEN + 1] /* out */);

/** Fills *out as a fresh header: type, channel and creator are borrowed
 *  (they must outlive *out), a random nonce is written into nonce_storage
 *  (which out->nonce then views), the tx id is computed and the timestamp
 *  is the wall clock. Returns FL_OK; FL_EINVAL for an unknown type, an
 *  empty or too long channel, or an empty or oversized creator; FL_ECRYPTO
 *  when no random bytes can be had. */
fl_status_t fl_header_make(fl_header_type_t type, const char *channel,
                           fl_buf_t creator, uint8_t nonce_storage[FL_NONCE_LEN],
                           fl_header_t *out /* out */);

#endif /* FL_PROTOUTIL_PROTOUTIL_H */
