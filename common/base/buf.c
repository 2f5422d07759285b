/* SPDX-License-Identifier: Apache-2.0
 * buf.c: growable byte buffers and hex coding. */
#include "common/base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/base/alloc.h"

bool fl_buf_eq(fl_buf_t a, fl_buf_t b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

void fl_sbuf_reserve(fl_sbuf_t *b, size_t extra) {
  size_t need = b->len + extra;
  if (need <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap < ((size_t)1 << 62) ? cap * 2 : need;
  b->data = fl_realloc(b->data, cap);
  b->cap = cap;
}

void fl_sbuf_append(fl_sbuf_t *b, const void *p, size_t n) {
  if (n == 0) return;
  fl_sbuf_reserve(b, n);
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

void fl_sbuf_append_str(fl_sbuf_t *b, const char *s) {
  fl_sbuf_append(b, s, strlen(s));
}

void fl_sbuf_printf(fl_sbuf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  fl_sbuf_reserve(b, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void fl_sbuf_append_be32(fl_sbuf_t *b, uint32_t v) {
  uint8_t t[4];
  fl_put_be32(t, v);
  fl_sbuf_append(b, t, 4);
}

void fl_sbuf_append_be64(fl_sbuf_t *b, uint64_t v) {
  uint8_t t[8];
  fl_put_be64(t, v);
  fl_sbuf_append(b, t, 8);
}

void fl_sbuf_consume(fl_sbuf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

const char *fl_sbuf_cstr(fl_sbuf_t *b) {
  fl_sbuf_reserve(b, 1);
  b->data[b->len] = '\0';
  return (const char *)b->data;
}

uint8_t *fl_sbuf_detach(fl_sbuf_t *b, size_t *len) {
  uint8_t *d = b->data;
  if (len) *len = b->len;
  if (d == NULL) d = fl_malloc(0);
  *b = (fl_sbuf_t){0};
  return d;
}

void fl_sbuf_free(fl_sbuf_t *b) {
  if (b == NULL) return;
  fl_free(b->data);
  *b = (fl_sbuf_t){0};
}

void fl_hex_encode(const uint8_t *p, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

char *fl_hex_dup(fl_buf_t b) {
  char *s = fl_malloc(2 * b.len + 1);
  fl_hex_encode(b.data, b.len, s);
  return s;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

long fl_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t cap) {
  if (hexlen % 2 != 0 || hexlen / 2 > cap) return -1;
  for (size_t i = 0; i < hexlen / 2; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return (long)(hexlen / 2);
}
