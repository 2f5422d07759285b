/* SPDX-License-Identifier: Apache-2.0
 *
 * buf.h: byte views and growable byte buffers.
 *
 * fl_buf_t is a transparent value type {data, len}: a view, never
 * NUL-terminated, whose owner is stated by whoever hands it out (the LMDB
 * MDB_val convention). fl_sbuf_t is an owned, growable buffer.
 *
 * Invariants of fl_sbuf_t:
 *   1. len <= cap;
 *   2. data == NULL iff cap == 0;
 *   3. after fl_sbuf_free the struct is all zero and may be reused.
 */
#ifndef FL_BASE_BUF_H
#define FL_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl_buf_s {
  const uint8_t *data;
  size_t len;
} fl_buf_t;

typedef struct fl_sbuf_s {
  uint8_t *data;
  size_t len;
  size_t cap;
} fl_sbuf_t;

#define FL_BUF(p, n) ((fl_buf_t){.data = (const uint8_t *)(p), .len = (n)})
#define FL_BUF_STR(s) FL_BUF((s), strlen(s))

/** True when a and b hold the same bytes. */
bool fl_buf_eq(fl_buf_t a, fl_buf_t b);

/** Makes room for at least `extra` more bytes. Aborts on OOM. */
void fl_sbuf_reserve(fl_sbuf_t *b, size_t extra);
/** Appends n bytes. */
void fl_sbuf_append(fl_sbuf_t *b, const void *p, size_t n);
/** Appends a C string without its NUL. */
void fl_sbuf_append_str(fl_sbuf_t *b, const char *s);
/** Appends printf-formatted text (no NUL is kept in len). */
void fl_sbuf_printf(fl_sbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Appends a 32-bit big-endian integer. */
void fl_sbuf_append_be32(fl_sbuf_t *b, uint32_t v);
/** Appends a 64-bit big-endian integer. */
void fl_sbuf_append_be64(fl_sbuf_t *b, uint64_t v);
/** Drops the first n bytes (n <= len), moving the rest down. */
void fl_sbuf_consume(fl_sbuf_t *b, size_t n);
/** Returns a NUL-terminated view of the contents (keeps len unchanged). */
const char *fl_sbuf_cstr(fl_sbuf_t *b);
/** Takes the bytes out: returns data (owned, fl_free) and zeroes b. */
uint8_t *fl_sbuf_detach(fl_sbuf_t *b, size_t *len /* out */);
/** Frees the bytes; b may be reused. NULL-safe. */
void fl_sbuf_free(fl_sbuf_t *b);
/** A view of the contents, valid until the next mutation of b. */
static inline fl_buf_t fl_sbuf_view(const fl_sbuf_t *b) {
  return (fl_buf_t){.data = b->data, .len = b->len};
}

static inline void fl_put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}
static inline uint32_t fl_get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline void fl_put_be64(uint8_t *p, uint64_t v) {
  fl_put_be32(p, (uint32_t)(v >> 32));
  fl_put_be32(p + 4, (uint32_t)v);
}
static inline uint64_t fl_get_be64(const uint8_t *p) {
  return ((uint64_t)fl_get_be32(p) << 32) | fl_get_be32(p + 4);
}

/** Writes 2*n lowercase hex digits and a NUL into out (size >= 2n+1). */
void fl_hex_encode(const uint8_t *p, size_t n, char *out);
/** Returns an owned lowercase hex string of b (fl_free). */
char *fl_hex_dup(fl_buf_t b);
/** Decodes hex (either case) into out (capacity cap). Returns the number of
 *  bytes written, or -1 on odd length, a non-hex digit or overflow of cap. */
long fl_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t cap);

#endif /* FL_BASE_BUF_H */
