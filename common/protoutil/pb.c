/* SPDX-License-Identifier: Apache-2.0
 *
 * pb.c: the protobuf wire writer and reader of pb.h.
 */
#include <string.h>

#include "common/protoutil/pb.h"

static void put_raw_varint(fl_sbuf_t *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    uint8_t byte = (uint8_t)(v & 0x7f);
    v >>= 7;
    tmp[n++] = (uint8_t)(byte | (v ? 0x80 : 0));
  } while (v);
  fl_sbuf_append(b, tmp, n);
}

void fl__pb_put_varint(fl_sbuf_t *b, uint32_t field, uint64_t v) {
  put_raw_varint(b, ((uint64_t)field << 3) | 0);
  put_raw_varint(b, v);
}

void fl__pb_put_len(fl_sbuf_t *b, uint32_t field, size_t n) {
  put_raw_varint(b, ((uint64_t)field << 3) | 2);
  put_raw_varint(b, n);
}

void fl__pb_put_bytes(fl_sbuf_t *b, uint32_t field, const void *p, size_t n) {
  fl__pb_put_len(b, field, n);
  if (n) fl_sbuf_append(b, p, n);
}

void fl__pb_reader_init(fl__pb_reader_t *r, fl_buf_t msg) {
  r->p = msg.data;
  r->end = msg.data ? msg.data + msg.len : msg.data;
  r->bad = false;
}

static bool get_varint(fl__pb_reader_t *r, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) return false;
    uint8_t byte = *r->p++;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

bool fl__pb_next(fl__pb_reader_t *r, fl__pb_field_t *f) {
  memset(f, 0, sizeof *f);
  if (r->bad || r->p == NULL || r->p >= r->end) return false;
  uint64_t key;
  if (!get_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX) goto bad;
  f->field = (uint32_t)(key >> 3);
  f->wire = (uint32_t)(key & 7);
  switch (f->wire) {
  case 0:
    if (!get_varint(r, &f->v)) goto bad;
    return true;
  case 1:
  case 5: {
    size_t n = f->wire == 1 ? 8 : 4;
    if ((size_t)(r->end - r->p) < n) goto bad;
    f->bytes = FL_BUF(r->p, n);
    r->p += n;
    return true;
  }
  case 2: {
    uint64_t n;
    if (!get_varint(r, &n) || n > (uint64_t)(r->end - r->p)) goto bad;
    f->bytes = FL_BUF(r->p, (size_t)n);
    r->p += n;
    return true;
  }
  default:
    goto bad;
  }
bad:
  r->bad = true;
  return false;
}
