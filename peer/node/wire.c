/* SPDX-License-Identifier: Apache-2.0
 *
 * wire.c: the peer's small message helpers (wire.h). protobuf-c structs are
 * unpacked, copied out and freed here; nothing else sees them.
 */
#include "peer/node/wire.h"

#include <string.h>

#include "common/base/alloc.h"
#include "fl/msp/identity.pb-c.h"
#include "fl/orderer/ab.pb-c.h"

#define UNCONST(T, p) ((T)(uintptr_t)(p))

static ProtobufCBinaryData bin(fl_buf_t b) {
  ProtobufCBinaryData r = {.len = b.len, .data = UNCONST(uint8_t *, b.data)};
  return r;
}

static void pack(const ProtobufCMessage *m, fl_sbuf_t *out) {
  out->len = 0;
  size_t n = protobuf_c_message_get_packed_size(m);
  fl_sbuf_reserve(out, n + 1);
  out->len = protobuf_c_message_pack(m, out->data);
}

static void set_pos(Fl__Orderer__SeekPosition *p, fl__pw_pos_t k, uint64_t num) {
  fl__orderer__seek_position__init(p);
  p->kind = k == FL__PW_OLDEST      ? FL__ORDERER__SEEK_POSITION__KIND__OLDEST
            : k == FL__PW_SPECIFIED ? FL__ORDERER__SEEK_POSITION__KIND__SPECIFIED
                                    : FL__ORDERER__SEEK_POSITION__KIND__NEWEST;
  p->number = num;
}

fl_status_t fl__pw_seek_encode(const fl__pw_seek_t *seek, fl_buf_t identity,
                               const fl_signer_t *signer, fl_sbuf_t *out) {
  Fl__Orderer__SeekPosition start, stop;
  Fl__Orderer__SeekInfo si;
  fl__orderer__seek_info__init(&si);
  set_pos(&start, seek->start_kind, seek->start);
  si.start = &start;
  if (seek->has_stop) {
    set_pos(&stop, seek->stop_kind, seek->stop);
    si.stop = &stop;
  }
  si.behavior = seek->fail_if_not_ready ? FL__ORDERER__SEEK_INFO__BEHAVIOR__FAIL_IF_NOT_READY
                                        : FL__ORDERER__SEEK_INFO__BEHAVIOR__BLOCK_UNTIL_READY;
  fl_sbuf_t sb = {0}, sig = {0};
  pack(&si.base, &sb);
  fl_status_t rc = fl_signer_sign(signer, sb.data, sb.len, &sig);
  if (rc == FL_OK) {
    Fl__Orderer__SignedSeekInfo ss;
    fl__orderer__signed_seek_info__init(&ss);
    ss.seek_info = bin(fl_sbuf_view(&sb));
    ss.identity = bin(identity);
    ss.signature = bin(fl_sbuf_view(&sig));
    pack(&ss.base, out);
  }
  fl_sbuf_free(&sb);
  fl_sbuf_free(&sig);
  return rc == FL_OK ? FL_OK : FL_ECRYPTO;
}

static fl_status_t get_pos(const Fl__Orderer__SeekPosition *p, fl__pw_pos_t *k, uint64_t *num) {
  switch (p->kind) {
  case FL__ORDERER__SEEK_POSITION__KIND__NEWEST: *k = FL__PW_NEWEST; break;
  case FL__ORDERER__SEEK_POSITION__KIND__OLDEST: *k = FL__PW_OLDEST; break;
  case FL__ORDERER__SEEK_POSITION__KIND__SPECIFIED: *k = FL__PW_SPECIFIED; break;
  default: return FL_EMALFORMED;
  }
  *num = p->number;
  return FL_OK;
}

static void set_sbuf(fl_sbuf_t *out, ProtobufCBinaryData b) {
  out->len = 0;
  fl_sbuf_append(out, b.data, b.len);
}

fl_status_t fl__pw_seek_decode(fl_buf_t msg, fl__pw_seek_t *seek, fl_sbuf_t *seek_bytes,
                               fl_sbuf_t *identity, fl_sbuf_t *signature, const char **why) {
  Fl__Orderer__SignedSeekInfo *ss = fl__orderer__signed_seek_info__unpack(NULL, msg.len, msg.data);
  Fl__Orderer__SeekInfo *si = NULL;
  fl_status_t rc = FL_EMALFORMED;
  *why = "deliver: request is not a SignedSeekInfo";
  if (ss == NULL) goto done;
  si = fl__orderer__seek_info__unpack(NULL, ss->seek_info.len, ss->seek_info.data);
  *why = "deliver: seek_info does not decode";
  if (si == NULL) goto done;
  *why = "deliver: seek_info has no start";
  if (si->start == NULL) goto done;
  memset(seek, 0, sizeof(*seek));
  *why = "deliver: bad seek position";
  if (get_pos(si->start, &seek->start_kind, &seek->start) < 0) goto done;
  if (si->stop != NULL) {
    seek->has_stop = true;
    if (get_pos(si->stop, &seek->stop_kind, &seek->stop) < 0) goto done;
  }
  seek->fail_if_not_ready = si->behavior == FL__ORDERER__SEEK_INFO__BEHAVIOR__FAIL_IF_NOT_READY;
  set_sbuf(seek_bytes, ss->seek_info);
  set_sbuf(identity, ss->identity);
  set_sbuf(signature, ss->signature);
  *why = "ok";
  rc = FL_OK;
done:
  if (si) fl__orderer__seek_info__free_unpacked(si, NULL);
  if (ss) fl__orderer__signed_seek_info__free_unpacked(ss, NULL);
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

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t c = *(*p)++;
    r |= (uint64_t)(c & 0x7f) << shift;
    if ((c & 0x80) == 0) {
      *v = r;
      return true;
    }
  }
  return false;
}

void fl__pw_deliver_block(fl_buf_t block, fl_sbuf_t *out) {
  uint8_t tag = (2 << 3) | 2;
  fl_sbuf_append(out, &tag, 1);
  put_varint(out, block.len);
  fl_sbuf_append(out, block.data, block.len);
}

void fl__pw_deliver_status(fl_status_t st, fl_sbuf_t *out) {
  uint8_t tag = (1 << 3) | 0;
  fl_sbuf_append(out, &tag, 1);
  int32_t s = (int32_t)st;
  put_varint(out, ((uint32_t)s << 1) ^ (s < 0 ? 0xffffffffu : 0u));
}

fl_status_t fl__pw_deliver_decode(fl_buf_t msg, bool *is_block, fl_buf_t *block,
                                  fl_status_t *status) {
  const uint8_t *p = msg.data, *end = msg.data + msg.len;
  uint64_t tag, v;
  if (msg.len == 0 || !get_varint(&p, end, &tag)) return FL_EMALFORMED;
  if (tag == ((2 << 3) | 2)) {
    if (!get_varint(&p, end, &v) || v != (uint64_t)(end - p)) return FL_EMALFORMED;
    *is_block = true;
    *block = FL_BUF(p, (size_t)v);
    return FL_OK;
  }
  if (tag == ((1 << 3) | 0)) {
    if (!get_varint(&p, end, &v) || p != end || v > UINT32_MAX) return FL_EMALFORMED;
    uint32_t z = (uint32_t)v;
    *is_block = false;
    *status = (fl_status_t)(int32_t)((z >> 1) ^ (~(z & 1) + 1));
    return FL_OK;
  }
  return FL_EMALFORMED;
}

fl_status_t fl__pw_broadcast_decode(fl_buf_t msg, fl_status_t *status, char **info) {
  *info = NULL;
  Fl__Orderer__BroadcastResponse *r = fl__orderer__broadcast_response__unpack(NULL, msg.len, msg.data);
  if (r == NULL) return FL_EMALFORMED;
  *status = (fl_status_t)r->status;
  if (r->info && r->info[0]) *info = fl_strdup(r->info);
  fl__orderer__broadcast_response__free_unpacked(r, NULL);
  return FL_OK;
}

fl_status_t fl__pw_identity_decode(fl_buf_t sid, char mspid[FL_MSPID_MAX + 1], fl_sbuf_t *pem) {
  if (sid.len == 0 || sid.len > FL_MSP_IDENTITY_MAX) return FL_EMALFORMED;
  Fl__Msp__SerializedIdentity *id = fl__msp__serialized_identity__unpack(NULL, sid.len, sid.data);
  if (id == NULL) return FL_EMALFORMED;
  fl_status_t rc = FL_EMALFORMED;
  size_t n = id->mspid ? strlen(id->mspid) : 0;
  if (n > 0 && n <= FL_MSPID_MAX) {
    memcpy(mspid, id->mspid, n + 1);
    set_sbuf(pem, id->id_bytes);
    rc = FL_OK;
  }
  fl__msp__serialized_identity__free_unpacked(id, NULL);
  return rc;
}

void fl__pw_ns_key(const char *ns, fl_buf_t key, fl_sbuf_t *out) {
  out->len = 0;
  fl_sbuf_append(out, ns, strlen(ns) + 1); /* with the NUL separator */
  fl_sbuf_append(out, key.data, key.len);
}

void fl__pw_ns_end(const char *ns, fl_sbuf_t *out) {
  out->len = 0;
  fl_sbuf_append(out, ns, strlen(ns));
  uint8_t one = 1;
  fl_sbuf_append(out, &one, 1);
}
