/* SPDX-License-Identifier: Apache-2.0
 *
 * envelope.h: signed envelopes (fl.common.Envelope), the unit the orderers
 * order and a block carries.
 *
 *   Envelope { payload = bytes of Payload { header, data }, signature }
 *   signature = ECDSA-P256-SHA256 by header.creator over the payload bytes
 *   header.tx_id = hex SHA-256(header.nonce || header.creator)
 *
 * Decoding validates the structure (payload and header decode, the type is
 * known, the tx id matches nonce and creator, timestamp and creator present)
 * but not the signature: that needs the MSP (fl_envelope_verify_creator).
 */
#ifndef FL_PROTOUTIL_ENVELOPE_H
#define FL_PROTOUTIL_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"
#include "common/protoutil/protoutil.h"

/** A decoded envelope. All views point into memory the struct owns. */
typedef struct fl_envelope_s {
  fl_header_t header;
  fl_buf_t data;       /* Payload.data: what the type says it is */
  fl_buf_t payload;    /* the exact signed Payload bytes */
  fl_buf_t signature;  /* the creator's signature over payload */
  void *mem_;          /* private */
} fl_envelope_t;

/** Builds a signed Envelope with a fresh header (random 24-byte nonce, tx id
 *  = hex SHA-256(nonce || creator), wall-clock timestamp). creator is the
 *  serialized identity (fl_msp_serialize_identity) of signer's certificate;
 *  that they match is the caller's responsibility (a mismatch makes the
 *  signature fail verification). Borrows inputs; out's contents are
 *  replaced with the envelope bytes; tx_id (optional) receives the tx id.
 *  Returns FL_OK; FL_EINVAL (bad type, channel or creator, NULL signer);
 *  FL_ETOOBIG (over FL_PU_MAX_MESSAGE); FL_ECRYPTO. */
fl_status_t fl_envelope_build(fl_header_type_t type, const char *channel,
                              fl_buf_t creator, const fl_signer_t *signer,
                              fl_buf_t data, fl_sbuf_t *out /* out */,
                              char tx_id[FL_TXID_HEX_LEN + 1] /* out, optional */);

/** Like fl_envelope_build with a given header (for example the header of
 *  the proposal a transaction answers). The header must be valid (tx id
 *  matching nonce and creator, FL_EINVAL otherwise). Borrows inputs. */
fl_status_t fl_envelope_build_with_header(const fl_header_t *hdr,
                                          const fl_signer_t *signer, fl_buf_t data,
                                          fl_sbuf_t *out /* out */);

/** The tx id of envelope bytes without decoding them, for the common case.
 *  Returns true, with the tx id in tx_id, only when the bytes are a
 *  canonical encoding (each field of Envelope, Payload and Header at most
 *  once, no unknown field, the channel printable ASCII) that
 *  fl_envelope_decode would accept with that tx id: the same header rules
 *  hold (known type, channel, creator, 24-byte nonce, timestamp, tx id =
 *  hex SHA-256(nonce || creator)). false means "not decided here", not
 *  "invalid": decode to know. No allocation; borrows data. The orderer
 *  checks every request other replicas hand it this way (a full decode of
 *  each one cost ~8 % of its CPU). */
bool fl_envelope_peek_tx_id(const uint8_t *data, size_t len,
                            char tx_id[FL_TXID_HEX_LEN + 1] /* out */);

/** Decodes and validates envelope bytes (see top). Borrows data. Returns
 *  FL_OK with *out owned (fl_envelope_free); FL_ETOOBIG; FL_EMALFORMED with
 *  *reason (optional) saying what is wrong. */
fl_status_t fl_envelope_decode(const uint8_t *data, size_t len,
                               fl_envelope_t **out /* out */,
                               const char **reason /* out, optional */);

/** Frees e. NULL is fine. */
void fl_envelope_free(fl_envelope_t *e);

/** Verifies the creator's signature over the payload bytes through the MSP,
 *  and that the creator is a valid member with role `required`
 *  (FL_ROLE_NONE: any role). info (optional) receives what the MSP learnt.
 *  Returns what fl_msp_verify_signature returns: FL_OK, FL_EBADSIG,
 *  FL_EUNTRUSTED, FL_EREVOKED, FL_EPERM, FL_EMALFORMED. Thread-safe. */
fl_status_t fl_envelope_verify_creator(const fl_envelope_t *e, fl_msp_t *msp,
                                       fl_role_t required,
                                       fl_msp_info_t *info /* out, optional */);

#endif /* FL_PROTOUTIL_ENVELOPE_H */
