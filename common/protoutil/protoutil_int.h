/* SPDX-License-Identifier: Apache-2.0
 *
 * protoutil_int.h: helpers shared by the files of the protoutil module.
 * Not API.
 *
 * Owned memory of decoded structs: every decoded struct has a `mem_` field,
 * the head of a singly linked list of allocations made with fl__pu_alloc and
 * friends; fl__pu_mem_free releases them all at once. Each allocation starts
 * with a header aligned for any type, so arrays of structs can live there.
 */
#ifndef FL_PROTOUTIL_PROTOUTIL_INT_H
#define FL_PROTOUTIL_PROTOUTIL_INT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/protoutil/protoutil.h"
#include "fl/common/common.pb-c.h"

/* protobuf-c's structs have non-const pointers even when we only pack from
 * them; this drops const without a cast-qual warning. The packer never
 * writes through these pointers. */
#define FL__UNCONST(T, p) ((T)(uintptr_t)(p))

/* Sets *reason (when reason is not NULL) and evaluates to rc. */
#define FL__PU_FAIL(reason, rc, text) (fl__pu_reason((reason), (text)), (rc))

static inline void fl__pu_reason(const char **reason, const char *text) {
  if (reason != NULL) *reason = text;
}

/** Allocates n zeroed bytes owned by *mem. Never NULL. */
void *fl__pu_alloc(void **mem, size_t n);
/** Allocates an array of n elements of size sz (zeroed) owned by *mem;
 *  aborts on overflow. */
void *fl__pu_array(void **mem, size_t n, size_t sz);
/** Copies n bytes into *mem and returns a view of the copy (data non-NULL
 *  even for n == 0). */
fl_buf_t fl__pu_dup(void **mem, const void *p, size_t n);
/** Copies a protobuf-c binary field. */
fl_buf_t fl__pu_dup_bin(void **mem, ProtobufCBinaryData b);
/** Copies a NUL-terminated string (NULL becomes ""). */
const char *fl__pu_strdup(void **mem, const char *s);
/** Frees every allocation of *mem and sets it to NULL. NULL-safe. */
void fl__pu_mem_free(void **mem);

/** Packs m into out (contents replaced). */
void fl__pu_pack(const ProtobufCMessage *m, fl_sbuf_t *out);

/** A ProtobufCBinaryData viewing b (no copy). */
static inline ProtobufCBinaryData fl__pu_bin(fl_buf_t b) {
  ProtobufCBinaryData r = {.len = b.len, .data = FL__UNCONST(uint8_t *, b.data)};
  return r;
}

/** The string as protobuf-c wants it (NULL becomes ""). */
static inline char *fl__pu_str(const char *s) {
  return FL__UNCONST(char *, s != NULL ? s : "");
}

/** Fills pb (caller memory, already initialised) from h; pb borrows h's
 *  memory. */
void fl__pu_header_to_pb(const fl_header_t *h, Fl__Common__Header *pb);

/** Validates an unpacked header and copies it into *out, its memory owned by
 *  *mem: type known, channel 1..FL_CHANNEL_MAX bytes, creator present and at
 *  most FL_MSP_IDENTITY_MAX bytes, nonce FL_NONCE_LEN bytes, tx id equal to
 *  hex SHA-256(nonce || creator), timestamp present. `what` prefixes the
 *  static reason texts ("envelope", "proposal"). Returns FL_OK or
 *  FL_EMALFORMED. */
fl_status_t fl__pu_header_from_pb(const Fl__Common__Header *pb, void **mem,
                                  fl_header_t *out, int what, const char **reason);

/* Values of `what` for fl__pu_header_from_pb. */
enum { FL__PU_IN_ENVELOPE = 0, FL__PU_IN_PROPOSAL = 1 };

/** Checks h as a builder input (same rules as decoding). */
fl_status_t fl__pu_header_check(const fl_header_t *h);

#endif /* FL_PROTOUTIL_PROTOUTIL_INT_H */
