/* SPDX-License-Identifier: Apache-2.0
 *
 * ab.c: fl.orderer.* message helpers (see ab.h). SeekInfo and
 * BroadcastResponse go through protobuf-c and are copied out at once;
 * DeliverResponse is written and read by hand because its block field must
 * carry the stored block bytes verbatim.
 */
#include "orderer/node/ab.h"

#include <string.h>

#include "common/base/alloc.h"
#include "common/crypto/hash.h"
#include "fl/common/common.pb-c.h"
#include "fl/orderer/ab.pb-c.h"

#define AB_MAX_SEEK (64u * 1024 * 1024)

static void seek_pos_set(Fl__Orderer__SeekPosition *p, fl_ab_pos_kind_t k, uint64_t n) {
  switch (k) {
  case FL_AB_OLDEST: p->kind = FL__ORDERER__SEEK_POSITION__KIND__OLDEST; break;
  case FL_AB_SPECIFIED: p->kind = FL__ORDERER__SEEK_POSITION__KIND__SPECIFIED; break;
  default: p->kind = FL__ORDERER__SEEK_POSITION__KIND__NEWEST; break;
  }
  p->number = n;
}

fl_status_t fl_ab_seek_encode(const fl_ab_seek_t *seek, fl_buf_t identity,
                              const fl_signer_t *signer, fl_sbuf_t *out) {
  Fl__Orderer__SeekInfo si = FL__ORDERER__SEEK_INFO__INIT;
  Fl__Orderer__SeekPosition start = FL__ORDERER__SEEK_POSITION__INIT;
  Fl__Orderer__SeekPosition stop = FL__ORDERER__SEEK_POSITION__INIT;
  seek_pos_set(&start, seek->start_kind, seek->start);
  si.start = &start;
  if (seek->has_stop) {
    seek_pos_set(&stop, seek->stop_kind, seek->stop);
    si.stop = &stop;
  }
  si.behavior = seek->fail_if_not_ready
                    ? FL__ORDERER__SEEK_INFO__BEHAVIOR__FAIL_IF_NOT_READY
                    : FL__ORDERER__SEEK_INFO__BEHAVIOR__BLOCK_UNTIL_READY;
  size_t n = fl__orderer__seek_info__get_packed_size(&si);
  uint8_t *sib = fl_malloc(n ? n : 1);
  fl__orderer__seek_info__pack(&si, sib);
  fl_sbuf_t sig = {0};
  fl_status_t rc = fl_signer_sign(signer, sib, n, &sig);
  if (rc < 0) {
    fl_free(sib);
    fl_sbuf_free(&sig);
    return FL_ECRYPTO;
  }
  Fl__Orderer__SignedSeekInfo ss = FL__ORDERER__SIGNED_SEEK_INFO__INIT;
  ss.seek_info.data = sib;
  ss.seek_info.len = n;
  ss.identity.data = (uint8_t *)(uintptr_t)identity.data;
  ss.identity.len = identity.len;
  ss.signature.data = sig.data;
  ss.signature.len = sig.len;
  size_t m = fl__orderer__signed_seek_info__get_packed_size(&ss);
  out->len = 0;
  fl_sbuf_reserve(out, m + 1);
  fl__orderer__signed_seek_info__pack(&ss, out->data);
  out->len = m;
  fl_free(sib);
  fl_sbuf_free(&sig);
  return FL_OK;
}

static bool pos_get(const Fl__Orderer__SeekPosition *p, fl_ab_pos_kind_t *k, uint64_t *n) {
  switch (p->kind) {
  case FL__ORDERER__SEEK_POSITION__KIND__NEWEST: *k = FL_AB_NEWEST; break;
  case FL__ORDERER__SEEK_POSITION__KIND__OLDEST: *k = FL_AB_OLDEST; break;
  case FL__ORDERER__SEEK_POSITION__KIND__SPECIFIED: *k = FL_AB_SPECIFIED; break;
  default: return false;
  }
  *n = p->number;
  return true;
}

fl_status_t fl_ab_seek_decode(fl_buf_t msg, fl_ab_seek_t *seek, fl_buf_t *seek_bytes,
                              fl_buf_t *identity, fl_buf_t *signature, const char **reason) {
  const char *why = "ok";
  fl_status_t rc = FL_EMALFORMED;
  Fl__Orderer__SignedSeekInfo *ss = NULL;
  Fl__Orderer__SeekInfo *si = NULL;
  if (msg.len > AB_MAX_SEEK) {
    why = "seek: too large";
    goto done;
  }
  ss = fl__orderer__signed_seek_info__unpack(NULL, msg.len, msg.data);
  if (ss == NULL) {
    why = "seek: SignedSeekInfo does not decode";
    goto done;
  }
  if (ss->identity.len == 0 || ss->signature.len == 0) {
    why = "seek: identity or signature missing";
    goto done;
  }
  si = fl__orderer__seek_info__unpack(NULL, ss->seek_info.len, ss->seek_info.data);
  if (si == NULL) {
    why = "seek: SeekInfo does not decode";
    goto done;
  }
  memset(seek, 0, sizeof(*seek));
  if (si->start == NULL) {
    seek->start_kind = FL_AB_NEWEST;
  } else if (!pos_get(si->start, &seek->start_kind, &seek->start)) {
    why = "seek: bad start position";
    goto done;
  }
  if (si->stop != NULL) {
    seek->has_stop = true;
    if (!pos_get(si->stop, &seek->stop_kind, &seek->stop)) {
      why = "seek: bad stop position";
      goto done;
    }
  }
  if (si->behavior == FL__ORDERER__SEEK_INFO__BEHAVIOR__FAIL_IF_NOT_READY)
    seek->fail_if_not_ready = true;
  else if (si->behavior != FL__ORDERER__SEEK_INFO__BEHAVIOR__BLOCK_UNTIL_READY) {
    why = "seek: bad behavior";
    goto done;
  }
  /* Views into msg. The signature is checked over the view and the seek
   * acted on is the decoded message, so the two must be the same bytes: the
   * scan below accepts only fields 1..3, each at most once, as
   * length-delimited fields covering the whole input, and each view must
   * equal what protobuf-c decoded (protobuf-c keeps the LAST occurrence of a
   * repeated field; a first-occurrence view could otherwise carry a
   * different SeekInfo than the one executed — found by fuzz_ab). */
  {
    const uint8_t *base = msg.data;
    size_t off = 0;
    fl_buf_t f[4] = {{0}};
    bool seen[4] = {false};
    bool ok = true;
    while (ok && off < msg.len) {
      uint64_t tag = 0, len = 0;
      unsigned sh = 0;
      bool more = true;
      while (off < msg.len && sh < 64 && more) {
        uint8_t b = base[off++];
        tag |= (uint64_t)(b & 0x7f) << sh;
        sh += 7;
        more = (b & 0x80) != 0;
      }
      uint64_t field = tag >> 3;
      if (more || (tag & 7) != 2 || field < 1 || field > 3 || seen[field]) {
        ok = false;
        break;
      }
      sh = 0;
      more = true;
      while (off < msg.len && sh < 64 && more) {
        uint8_t b = base[off++];
        len |= (uint64_t)(b & 0x7f) << sh;
        sh += 7;
        more = (b & 0x80) != 0;
      }
      if (more || len > msg.len - off) {
        ok = false;
        break;
      }
      seen[field] = true;
      f[field] = FL_BUF(base + off, (size_t)len);
      off += (size_t)len;
    }
    if (!ok || off != msg.len ||
        !fl_buf_eq(f[1], FL_BUF(ss->seek_info.data, ss->seek_info.len)) ||
        !fl_buf_eq(f[2], FL_BUF(ss->identity.data, ss->identity.len)) ||
        !fl_buf_eq(f[3], FL_BUF(ss->signature.data, ss->signature.len))) {
      why = "seek: unexpected encoding (each field exactly once, nothing else)";
      goto done;
    }
    *seek_bytes = f[1];
    *identity = f[2];
    *signature = f[3];
  }
  rc = FL_OK;
done:
  if (si) fl__orderer__seek_info__free_unpacked(si, NULL);
  if (ss) fl__orderer__signed_seek_info__free_unpacked(ss, NULL);
  if (reason) *reason = why;
  return rc;
}

static void put_varint(fl_sbuf_t *out, uint64_t v) {
  uint8_t b[10];
  size_t n = 0;
  do {
    b[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) b[n] |= 0x80;
    n++;
  } while (v);
  fl_sbuf_append(out, b, n);
}

void fl_ab_deliver_block_encode(fl_buf_t block, fl_sbuf_t *out) {
  uint8_t tag = 0x12; /* field 2, length-delimited */
  fl_sbuf_reserve(out, block.len + 11);
  fl_sbuf_append(out, &tag, 1);
  put_varint(out, block.len);
  if (block.len) fl_sbuf_append(out, block.data, block.len);
}

void fl_ab_deliver_status_encode(fl_status_t status, fl_sbuf_t *out) {
  uint8_t tag = 0x08; /* field 1, varint (sint32: zigzag) */
  int32_t s = (int32_t)status;
  uint32_t zz = ((uint32_t)s << 1) ^ (uint32_t)(s >> 31);
  fl_sbuf_append(out, &tag, 1);
  put_varint(out, zz);
}

static bool get_varint(fl_buf_t m, size_t *off, uint64_t *v) {
  uint64_t r = 0;
  for (unsigned sh = 0; sh < 64; sh += 7) {
    if (*off >= m.len) return false;
    uint8_t b = m.data[(*off)++];
    r |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

fl_status_t fl_ab_deliver_decode(fl_buf_t msg, bool *is_block, fl_buf_t *block,
                                 fl_status_t *status) {
  size_t off = 0;
  uint64_t tag = 0, v = 0;
  if (!get_varint(msg, &off, &tag)) return FL_EMALFORMED;
  if (tag == 0x12) {
    if (!get_varint(msg, &off, &v) || v != msg.len - off) return FL_EMALFORMED;
    *is_block = true;
    *block = FL_BUF(msg.data + off, (size_t)v);
    return FL_OK;
  }
  if (tag == 0x08) {
    if (!get_varint(msg, &off, &v) || off != msg.len || v > UINT32_MAX) return FL_EMALFORMED;
    uint32_t zz = (uint32_t)v;
    int32_t s = (int32_t)((zz >> 1) ^ (~(zz & 1) + 1));
    *is_block = false;
    *status = (fl_status_t)s;
    return FL_OK;
  }
  return FL_EMALFORMED;
}

void fl_ab_broadcast_response_encode(fl_status_t status, const char *info, fl_sbuf_t *out) {
  Fl__Orderer__BroadcastResponse r;
  fl__orderer__broadcast_response__init(&r); /* the INIT macro trips -Wcast-qual under clang */
  r.status = (int32_t)status;
  r.info = (char *)(uintptr_t)(info ? info : "");
  size_t n = fl__orderer__broadcast_response__get_packed_size(&r);
  out->len = 0;
  fl_sbuf_reserve(out, n + 1);
  fl__orderer__broadcast_response__pack(&r, out->data);
  out->len = n;
}

fl_status_t fl_ab_broadcast_response_decode(fl_buf_t msg, fl_status_t *status, char **info) {
  Fl__Orderer__BroadcastResponse *r =
      fl__orderer__broadcast_response__unpack(NULL, msg.len, msg.data);
  if (r == NULL) return FL_EMALFORMED;
  *status = (fl_status_t)r->status;
  if (info) *info = fl_strdup(r->info ? r->info : "");
  fl__orderer__broadcast_response__free_unpacked(r, NULL);
  return FL_OK;
}

fl_status_t fl_ab_block_parse(fl_buf_t block, fl_ab_block_t *out,
                              void (*each_env)(void *arg, fl_buf_t env), void *arg) {
  Fl__Common__Block *b = fl__common__block__unpack(NULL, block.len, block.data);
  if (b == NULL) return FL_EMALFORMED;
  Fl__Common__BlockHeader *h = NULL;
  fl_status_t rc = FL_EMALFORMED;
  if (b->header.len == 0) goto done;
  h = fl__common__block_header__unpack(NULL, b->header.len, b->header.data);
  if (h == NULL || (h->previous_hash.len != 0 && h->previous_hash.len != 32)) goto done;
  memset(out, 0, sizeof(*out));
  out->number = h->number;
  if (h->previous_hash.len == 32) memcpy(out->prev_hash, h->previous_hash.data, 32);
  fl_sha256(b->header.data, b->header.len, out->header_hash);
  out->n_envelopes = b->data ? b->data->n_envelopes : 0;
  if (each_env)
    for (size_t i = 0; i < out->n_envelopes; i++)
      each_env(arg, FL_BUF(b->data->envelopes[i].data, b->data->envelopes[i].len));
  rc = FL_OK;
done:
  if (h) fl__common__block_header__free_unpacked(h, NULL);
  fl__common__block__free_unpacked(b, NULL);
  return rc;
}
