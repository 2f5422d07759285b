/* SPDX-License-Identifier: Apache-2.0
 *
 * ab.h: the atomic-broadcast messages of the orderer (fl.orderer.*) as small
 * C helpers, so that the orderer, its clients, tests and benchmarks never
 * touch protobuf-c structs (STYLE.md 5).
 *
 * DeliverResponse layout: a block response is the single field 2
 * (length-delimited) holding the stored Block bytes verbatim, so a block is
 * never re-encoded between the store and the client; a status response is
 * field 1 (sint32).
 *
 * Thread-safety: no state; any thread.
 */
#ifndef FL_ORDERER_NODE_AB_H
#define FL_ORDERER_NODE_AB_H

#include <stdbool.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/sign.h"

/** Where a Deliver stream starts or stops. */
typedef enum fl_ab_pos_kind_e {
  FL_AB_NEWEST = 0,
  FL_AB_OLDEST = 1,
  FL_AB_SPECIFIED = 2,
} fl_ab_pos_kind_t;

/** A decoded SeekInfo. */
typedef struct fl_ab_seek_s {
  fl_ab_pos_kind_t start_kind;
  uint64_t start;            /* SPECIFIED start number */
  bool has_stop;             /* false: follow forever */
  fl_ab_pos_kind_t stop_kind;
  uint64_t stop;             /* SPECIFIED stop number (inclusive) */
  bool fail_if_not_ready;
} fl_ab_seek_t;

/** Encodes seek as a SignedSeekInfo signed by signer for the serialized
 *  identity `identity` (borrowed). out's contents are replaced. Returns
 *  FL_OK or FL_ECRYPTO. */
fl_status_t fl_ab_seek_encode(const fl_ab_seek_t *seek, fl_buf_t identity,
                              const fl_signer_t *signer, fl_sbuf_t *out /* out */);

/** Decodes a SignedSeekInfo (borrowed). On FL_OK *seek is filled and
 *  *seek_bytes, *identity, *signature are views into msg. Returns FL_OK or
 *  FL_EMALFORMED with *reason. */
fl_status_t fl_ab_seek_decode(fl_buf_t msg, fl_ab_seek_t *seek /* out */,
                              fl_buf_t *seek_bytes /* out */, fl_buf_t *identity /* out */,
                              fl_buf_t *signature /* out */, const char **reason /* out */);

/** Appends a DeliverResponse carrying block bytes (borrowed) to *out. */
void fl_ab_deliver_block_encode(fl_buf_t block, fl_sbuf_t *out);

/** Appends a DeliverResponse carrying a final status to *out. */
void fl_ab_deliver_status_encode(fl_status_t status, fl_sbuf_t *out);

/** Decodes a DeliverResponse (borrowed): FL_OK with *is_block and either
 *  *block (a view into msg) or *status; FL_EMALFORMED otherwise. */
fl_status_t fl_ab_deliver_decode(fl_buf_t msg, bool *is_block /* out */,
                                 fl_buf_t *block /* out */, fl_status_t *status /* out */);

/** Encodes a BroadcastResponse {status, info (NULL = "")} into out
 *  (contents replaced). */
void fl_ab_broadcast_response_encode(fl_status_t status, const char *info,
                                     fl_sbuf_t *out /* out */);

/** Decodes a BroadcastResponse; *info (optional) gets an owned copy of the
 *  reason (fl_free). FL_OK or FL_EMALFORMED. */
fl_status_t fl_ab_broadcast_response_decode(fl_buf_t msg, fl_status_t *status /* out */,
                                            char **info /* out, optional */);

/** What fl_ab_block_parse reports about a Block. */
typedef struct fl_ab_block_s {
  uint64_t number;
  uint8_t prev_hash[32];     /* zero for block 0 */
  uint8_t header_hash[32];   /* SHA-256 of the exact header bytes */
  size_t n_envelopes;
} fl_ab_block_t;

/** Parses Block bytes (borrowed) as the PBFT core builds them and, when
 *  each_env is not NULL, calls it with every envelope (view valid during
 *  the call). Checks nothing beyond structure: verify with
 *  common/protoutil (fl_block_decode, fl_block_verify_signatures). FL_OK or
 *  FL_EMALFORMED. */
fl_status_t fl_ab_block_parse(fl_buf_t block, fl_ab_block_t *out /* out */,
                              void (*each_env)(void *arg, fl_buf_t env), void *arg);

#endif /* FL_ORDERER_NODE_AB_H */
