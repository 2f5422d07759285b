/* SPDX-License-Identifier: Apache-2.0
 *
 * wire.h: small encoders and decoders of the messages the peer exchanges
 * with orderers and clients that protoutil does not cover (fl.orderer
 * SeekInfo, DeliverResponse, BroadcastResponse; fl.msp.SerializedIdentity
 * decoding; ledger key namespacing). Not API: peer/node internals.
 *
 * DeliverResponse layout: a block response is the single field 2
 * (length-delimited) holding the stored Block bytes verbatim (the same
 * layout the orderer uses), so a block is never re-encoded between a store
 * and a client; a status response is field 1 (sint32, zig-zag).
 *
 * Ledger keys: the ledger has no namespaces, so the peer stores chaincode
 * `ns`'s key K as ns || 0x00 || K. Chaincode keys never contain a NUL byte
 * (shim.h), so the mapping is unambiguous, and the keys of one namespace
 * are exactly the range [ns || 0x00, ns || 0x01).
 *
 * Threads: no state; any thread.
 */
#ifndef FL_PEER_NODE_WIRE_H
#define FL_PEER_NODE_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"

typedef enum fl__pw_pos_e {
  FL__PW_NEWEST = 0,
  FL__PW_OLDEST = 1,
  FL__PW_SPECIFIED = 2,
} fl__pw_pos_t;

/** A decoded SeekInfo. */
typedef struct fl__pw_seek_s {
  fl__pw_pos_t start_kind;
  uint64_t start;
  bool has_stop;
  fl__pw_pos_t stop_kind;
  uint64_t stop;
  bool fail_if_not_ready;
} fl__pw_seek_t;

/** Encodes a SignedSeekInfo for seek, signed by signer as `identity`.
 *  out replaced. FL_OK or FL_ECRYPTO. */
fl_status_t fl__pw_seek_encode(const fl__pw_seek_t *seek, fl_buf_t identity,
                               const fl_signer_t *signer, fl_sbuf_t *out /* out */);

/** Decodes a SignedSeekInfo; seek_bytes, identity and signature are owned
 *  copies (replaced). FL_OK or FL_EMALFORMED with *why. */
fl_status_t fl__pw_seek_decode(fl_buf_t msg, fl__pw_seek_t *seek /* out */,
                               fl_sbuf_t *seek_bytes /* out */, fl_sbuf_t *identity /* out */,
                               fl_sbuf_t *signature /* out */, const char **why /* out */);

/** Appends a DeliverResponse carrying block bytes. */
void fl__pw_deliver_block(fl_buf_t block, fl_sbuf_t *out);
/** Appends a DeliverResponse carrying a final status. */
void fl__pw_deliver_status(fl_status_t st, fl_sbuf_t *out);
/** Decodes a DeliverResponse: *is_block with *block (view into msg), or
 *  *status. FL_OK or FL_EMALFORMED. */
fl_status_t fl__pw_deliver_decode(fl_buf_t msg, bool *is_block /* out */,
                                  fl_buf_t *block /* out */, fl_status_t *status /* out */);

/** Decodes a BroadcastResponse; *info gets an owned copy (fl_free) or NULL. */
fl_status_t fl__pw_broadcast_decode(fl_buf_t msg, fl_status_t *status /* out */,
                                    char **info /* out */);

/** Decodes a serialized identity: the MSP id into mspid and the PEM
 *  certificate into *pem (replaced). FL_OK or FL_EMALFORMED. */
fl_status_t fl__pw_identity_decode(fl_buf_t sid, char mspid[FL_MSPID_MAX + 1] /* out */,
                                   fl_sbuf_t *pem /* out */);

/** Writes ns || 0x00 || key into out (replaced). */
void fl__pw_ns_key(const char *ns, fl_buf_t key, fl_sbuf_t *out /* out */);

/** Writes ns || 0x01 (the end of ns's key range) into out (replaced). */
void fl__pw_ns_end(const char *ns, fl_sbuf_t *out /* out */);

#endif /* FL_PEER_NODE_WIRE_H */
