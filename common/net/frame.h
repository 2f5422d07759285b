/* SPDX-License-Identifier: Apache-2.0
 *
 * frame.h: the RPC wire frame, its encoder and an incremental decoder.
 *
 * Byte layout of one frame on the wire (docs/protocol.md):
 *
 *   +--------+--------+--------+--------+---------------------------+
 *   |   L (uint32, big-endian)          |  L bytes: fl.rpc.Frame     |
 *   +--------+--------+--------+--------+---------------------------+
 *
 * The decoder is pure (no I/O): bytes go in, complete frames come out. It
 * checks L against the configured maximum *before* allocating anything, then
 * unpacks the protobuf, validates it (flag combinations, method syntax), and
 * copies the fields into one owned fl_frame_t allocation; the protobuf-c
 * struct never leaves this module. protobuf-c's own allocations go to a small
 * per-decoder scratch arena, so a small frame costs exactly one malloc.
 *
 * Validity rules (both the encoder and the decoder enforce them):
 *   1. only the six FL_FRAME_* bits may be set;
 *   2. PING and PONG stand alone: call_id 0, no other flag, no method, status
 *      0, no error text (a payload is allowed and echoed);
 *   3. every other frame except a connection-level ERROR has call_id != 0;
 *   4. REQUEST carries a method ("Service/Method": 1..255 printable ASCII
 *      bytes without spaces), may carry END_STREAM, and nothing else;
 *      a method is present on REQUEST frames only;
 *   5. ERROR has status < 0 and implies END_STREAM; any other frame has
 *      status 0 and no error text;
 *   6. CANCEL stands alone with no payload.
 */
#ifndef FL_NET_FRAME_H
#define FL_NET_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

/* Flag bits, identical to fl.rpc.FrameFlag. */
#define FL_FRAME_REQUEST    1u
#define FL_FRAME_END_STREAM 2u
#define FL_FRAME_ERROR      4u
#define FL_FRAME_CANCEL     8u
#define FL_FRAME_PING       16u
#define FL_FRAME_PONG       32u
#define FL_FRAME_ALL_FLAGS  63u

/** Bytes of the length prefix. */
#define FL_FRAME_HEADER 4u
/** Default maximum of L (the serialized Frame, prefix excluded). */
#define FL_FRAME_DEFAULT_MAX ((size_t)16 << 20)
/** Hard upper bound of any configured maximum (1 GiB). */
#define FL_FRAME_LIMIT ((size_t)1 << 30)
/** Upper bound of the protobuf overhead of a frame around its payload when
 *  method and error are absent (tags, call_id, flags, status, length). */
#define FL_FRAME_OVERHEAD 40u
/** Longest method name accepted. */
#define FL_FRAME_METHOD_MAX 255u

/** A frame. As an encoder input every pointer is borrowed. As a decoder
 *  output the struct and everything it points to are one allocation owned by
 *  the caller (free with fl_frame_free); method and error are NUL-terminated
 *  (NULL when absent) and payload.data is never NULL. */
typedef struct fl_frame_s {
  uint64_t call_id;
  uint32_t flags;
  int32_t status;       /* fl_status_t, 0 unless FL_FRAME_ERROR */
  const char *method;   /* "Service/Method" or NULL */
  const char *error;    /* error text or NULL */
  fl_buf_t payload;
} fl_frame_t;

/** Checks the validity rules above. Returns FL_OK or FL_EMALFORMED; when
 *  why is not NULL it receives a static reason string. */
fl_status_t fl_frame_validate(const fl_frame_t *f, const char **why /* out */);

/** Returns the exact number of bytes fl_frame_encode appends for f
 *  (length prefix included). f need not be valid. */
size_t fl_frame_encoded_size(const fl_frame_t *f);

/** Appends the length prefix and the serialized frame to out. max bounds L
 *  (0 means FL_FRAME_DEFAULT_MAX). Returns FL_OK; FL_EINVAL when f breaks a
 *  validity rule; FL_ETOOBIG when L would exceed max. On error nothing is
 *  appended. Borrows f. */
fl_status_t fl_frame_encode(fl_sbuf_t *out, const fl_frame_t *f, size_t max);

/** Frees a frame returned by the decoder. NULL-safe. */
void fl_frame_free(fl_frame_t *f);

/** Decodes the first frame of data[0..len). Returns FL_OK with *out (owned)
 *  and *consumed (bytes used, prefix included); FL_AGAIN when data holds no
 *  complete frame yet; FL_ETOOBIG when the prefix exceeds max (decided from
 *  the 4 prefix bytes alone); FL_EMALFORMED when the bytes are not a valid
 *  frame. On every non-OK return *out is NULL. When errmsg is not NULL it
 *  receives an owned message on FL_ETOOBIG / FL_EMALFORMED (fl_free).
 *  max 0 means FL_FRAME_DEFAULT_MAX. Thread-safe (no shared state). */
fl_status_t fl_frame_decode(const uint8_t *data, size_t len, size_t max,
                            fl_frame_t **out /* out */,
                            size_t *consumed /* out */,
                            char **errmsg /* out */);

/** Incremental decoder: an input buffer plus a protobuf scratch arena. One
 *  per connection; not thread-safe. */
typedef struct fl_frame_decoder_s fl_frame_decoder_t;

/** Returns a new decoder (owned, fl_frame_decoder_free) with maximum L
 *  max (0 means FL_FRAME_DEFAULT_MAX; values above FL_FRAME_LIMIT are
 *  clamped). */
fl_frame_decoder_t *fl_frame_decoder_new(size_t max);

/** Frees the decoder and any buffered bytes. NULL-safe. */
void fl_frame_decoder_free(fl_frame_decoder_t *d);

/** Zero-copy input: returns a pointer where at least `want` bytes may be
 *  written (more when a frame in progress needs more; *avail gets the real
 *  room). Follow with fl_frame_decoder_commit. The pointer is valid until the
 *  next call on d. */
uint8_t *fl_frame_decoder_space(fl_frame_decoder_t *d, size_t want,
                                size_t *avail /* out */);

/** Declares that n bytes were written at the pointer returned by
 *  fl_frame_decoder_space (n <= *avail). */
void fl_frame_decoder_commit(fl_frame_decoder_t *d, size_t n);

/** Copies len bytes of input into the decoder (convenience over
 *  space/commit). Borrows data. */
void fl_frame_decoder_feed(fl_frame_decoder_t *d, const uint8_t *data,
                           size_t len);

/** Takes the next complete frame out. Returns FL_OK with *out (owned,
 *  fl_frame_free); FL_AGAIN when more bytes are needed; FL_ETOOBIG or
 *  FL_EMALFORMED when the stream is broken. An error is sticky: every later
 *  call returns it again (the connection must be closed). */
fl_status_t fl_frame_decoder_next(fl_frame_decoder_t *d,
                                  fl_frame_t **out /* out */);

/** The message of the sticky error, or NULL. Valid until d is freed. */
const char *fl_frame_decoder_error(const fl_frame_decoder_t *d);

/** Bytes buffered but not yet returned as frames. */
size_t fl_frame_decoder_buffered(const fl_frame_decoder_t *d);

#endif /* FL_NET_FRAME_H */
