/* SPDX-License-Identifier: Apache-2.0
 *
 * pb.h (internal to fedledger's libraries): a minimal protobuf wire writer
 * and a zero-copy reader, for the few small messages fl_client exchanges and
 * for fl_envelope_peek_tx_id (envelope.h), which reads an envelope's header
 * without unpacking it.
 *
 * Why not protobuf-c here: requests embed exact bytes that were signed (a
 * SignedProposal inside an EndorseRequest, an Envelope's payload inside a
 * SubmitRequest) and replies carry large ones (prepared transactions,
 * blocks); writing and reading those as length-delimited fields moves them
 * once instead of unpacking and repacking them. Wire format: each field is
 * a varint key (field << 3 | wire type) followed by a varint (type 0), 8
 * bytes (1), a varint length and that many bytes (2), or 4 bytes (5).
 */
#ifndef FL_PROTOUTIL_PB_H
#define FL_PROTOUTIL_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"

/** Appends a varint field (wire type 0). */
void fl__pb_put_varint(fl_sbuf_t *b, uint32_t field, uint64_t v);
/** Appends a length-delimited field (wire type 2): bytes, string, message. */
void fl__pb_put_bytes(fl_sbuf_t *b, uint32_t field, const void *p, size_t n);
/** Appends the key and length of a length-delimited field whose n bytes the
 *  caller appends next. */
void fl__pb_put_len(fl_sbuf_t *b, uint32_t field, size_t n);

/** One field as read. For wire type 0 `v` holds the varint, for type 2
 *  `bytes` is a view into the input. */
typedef struct fl__pb_field_s {
  uint32_t field;
  uint32_t wire;
  uint64_t v;
  fl_buf_t bytes;
} fl__pb_field_t;

/** A reader over borrowed bytes. */
typedef struct fl__pb_reader_s {
  const uint8_t *p, *end;
  bool bad;
} fl__pb_reader_t;

/** Starts reading msg (borrowed). */
void fl__pb_reader_init(fl__pb_reader_t *r, fl_buf_t msg);
/** Reads the next field into *f: returns true, or false at the end or on
 *  malformed input (then r->bad is set). */
bool fl__pb_next(fl__pb_reader_t *r, fl__pb_field_t *f /* out */);
/** Decodes a zigzag sint32/sint64 varint. */
static inline int64_t fl__pb_zigzag(uint64_t v) {
  return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

#endif /* FL_PROTOUTIL_PB_H */
