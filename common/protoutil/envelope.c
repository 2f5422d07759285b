/* SPDX-License-Identifier: Apache-2.0
 *
 * envelope.c: building, decoding and verifying fl.common.Envelope.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/protoutil_int.h"

fl_status_t fl_envelope_build_with_header(const fl_header_t *hdr,
                                          const fl_signer_t *signer, fl_buf_t data,
                                          fl_sbuf_t *out) {
  if (out == NULL) return FL_EINVAL;
  out->len = 0;
  if (signer == NULL || fl__pu_header_check(hdr) != FL_OK) return FL_EINVAL;
  if (data.len > FL_PU_MAX_MESSAGE || (data.len > 0 && data.data == NULL))
    return data.len > FL_PU_MAX_MESSAGE ? FL_ETOOBIG : FL_EINVAL;

  Fl__Common__Header h;
  fl__common__header__init(&h);
  fl__pu_header_to_pb(hdr, &h);
  Fl__Common__Payload p;
  fl__common__payload__init(&p);
  p.header = &h;
  p.data = fl__pu_bin(data);
  fl_sbuf_t payload = {0}, sig = {0};
  fl_status_t rc = FL_OK;
  if (protobuf_c_message_get_packed_size(&p.base) > FL_PU_MAX_MESSAGE - 128) {
    rc = FL_ETOOBIG;
    goto done;
  }
  fl__pu_pack(&p.base, &payload);
  rc = fl_signer_sign(signer, payload.data, payload.len, &sig);
  if (rc != FL_OK) goto done;
  Fl__Common__Envelope e;
  fl__common__envelope__init(&e);
  e.payload = fl__pu_bin(fl_sbuf_view(&payload));
  e.signature = fl__pu_bin(fl_sbuf_view(&sig));
  fl__pu_pack(&e.base, out);
done:
  fl_sbuf_free(&sig);
  fl_sbuf_free(&payload);
  return rc;
}

fl_status_t fl_envelope_build(fl_header_type_t type, const char *channel,
                              fl_buf_t creator, const fl_signer_t *signer,
                              fl_buf_t data, fl_sbuf_t *out,
                              char tx_id[FL_TXID_HEX_LEN + 1]) {
  if (out == NULL) return FL_EINVAL;
  out->len = 0;
  uint8_t nonce[FL_NONCE_LEN];
  fl_header_t h;
  FL_FORWARD(fl_header_make(type, channel, creator, nonce, &h));
  FL_FORWARD(fl_envelope_build_with_header(&h, signer, data, out));
  if (tx_id != NULL) memcpy(tx_id, h.tx_id, sizeof h.tx_id);
  return FL_OK;
}

/* ---- fl_envelope_peek_tx_id: a strict wire scan ----------------------- */

/* One field of a message: its number, wire type and value (a varint, or the
 * bytes of a length-delimited field). */
typedef struct wfield_s {
  uint32_t num, type;
  uint64_t v;    /* varint: the value; length-delimited: the length */
  int vlen;      /* varint: its encoded length in bytes */
  const uint8_t *p;
} wfield_t;

static bool wvarint(const uint8_t *p, size_t n, size_t *off, uint64_t *v, int *vlen) {
  uint64_t x = 0;
  for (int i = 0; i < 10 && *off < n; i++) {
    uint8_t b = p[(*off)++];
    x |= (uint64_t)(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      *v = x;
      if (vlen) *vlen = i + 1;
      return true;
    }
  }
  return false;
}

/* The next field of p[0..n) from *off; false at the end or on anything but a
 * varint or length-delimited field with a number in 1..15. */
static bool wnext(const uint8_t *p, size_t n, size_t *off, wfield_t *f) {
  uint64_t tag;
  if (*off >= n || !wvarint(p, n, off, &tag, NULL) || tag > 0xffffffffu) return false;
  f->num = (uint32_t)(tag >> 3);
  f->type = (uint32_t)(tag & 7);
  if (f->num == 0 || f->num > 15) return false;
  if (f->type == 0) return wvarint(p, n, off, &f->v, &f->vlen);
  if (f->type != 2 || !wvarint(p, n, off, &f->v, NULL) || f->v > n - *off) return false;
  f->p = p + *off;
  *off += (size_t)f->v;
  return true;
}

/* Scans p[0..n) as fields 1..max, each at most once, each of the wire type
 * types[num - 1] (0 varint, 2 length-delimited); false on anything else. */
static bool wscan(const uint8_t *p, size_t n, uint32_t max, const uint8_t *types,
                  wfield_t *fields /* [max], .p NULL and .num 0 when absent */) {
  memset(fields, 0, max * sizeof *fields);
  size_t off = 0;
  while (off < n) {
    wfield_t f = {0};
    if (!wnext(p, n, &off, &f) || f.num > max || f.type != types[f.num - 1] ||
        fields[f.num - 1].num != 0)
      return false;
    fields[f.num - 1] = f;
  }
  return true;
}

bool fl_envelope_peek_tx_id(const uint8_t *data, size_t len, char tx_id[FL_TXID_HEX_LEN + 1]) {
  static const uint8_t env_t[] = {2, 2}, pay_t[] = {2, 2}, hdr_t[] = {0, 2, 2, 0, 2, 2};
  wfield_t env[2], pay[2], hdr[6];
  if (data == NULL || tx_id == NULL || len > FL_PU_MAX_MESSAGE) return false;
  /* Envelope { payload = 1, signature = 2 }, both present. */
  if (!wscan(data, len, 2, env_t, env) || env[0].v == 0 || env[1].v == 0) return false;
  /* Payload { header = 1 (present), data = 2 }. */
  if (!wscan(env[0].p, (size_t)env[0].v, 2, pay_t, pay) || pay[0].num == 0) return false;
  /* Header { type, channel, tx_id, timestamp_ms, creator, nonce }: the rules
   * of fl__pu_header_from_pb, on values protobuf-c reads the same way (a
   * type of at most 5 bytes, a timestamp of at most 9). */
  if (!wscan(pay[0].p, (size_t)pay[0].v, 6, hdr_t, hdr)) return false;
  const wfield_t *type = &hdr[0], *ch = &hdr[1], *id = &hdr[2], *ts = &hdr[3], *cr = &hdr[4],
                 *nonce = &hdr[5];
  if (type->num == 0 || type->vlen > 5 ||
      (type->v != FL_HDR_CONFIG && type->v != FL_HDR_ENDORSER_TX))
    return false;
  if (ch->num == 0 || ch->v == 0 || ch->v > FL_CHANNEL_MAX) return false;
  for (uint64_t i = 0; i < ch->v; i++)
    if (ch->p[i] < 0x20 || ch->p[i] > 0x7e) return false;
  if (ts->num == 0 || ts->vlen > 9 || ts->v == 0) return false;
  if (cr->num == 0 || cr->v == 0 || cr->v > FL_MSP_IDENTITY_MAX) return false;
  if (nonce->num == 0 || nonce->v != FL_NONCE_LEN) return false;
  if (id->num == 0 || id->v != FL_TXID_HEX_LEN) return false;
  char expect[FL_TXID_HEX_LEN + 1];
  fl_tx_id_compute(FL_BUF(nonce->p, FL_NONCE_LEN), FL_BUF(cr->p, (size_t)cr->v), expect);
  if (memcmp(id->p, expect, FL_TXID_HEX_LEN) != 0) return false;
  memcpy(tx_id, expect, sizeof expect);
  return true;
}

fl_status_t fl_envelope_decode(const uint8_t *data, size_t len, fl_envelope_t **out,
                               const char **reason) {
  Fl__Common__Envelope *pe = NULL;
  Fl__Common__Payload *pp = NULL;
  fl_envelope_t *e = NULL;
  fl_status_t rc;
  if (out == NULL || (data == NULL && len > 0))
    return FL__PU_FAIL(reason, FL_EINVAL, "envelope: no output or no input");
  *out = NULL;
  if (len > FL_PU_MAX_MESSAGE)
    return FL__PU_FAIL(reason, FL_ETOOBIG, "envelope: larger than the message limit");
  pe = fl__common__envelope__unpack(NULL, len, data);
  if (pe == NULL) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "envelope: bytes do not decode as an Envelope");
    goto fail;
  }
  if (pe->payload.len == 0) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "envelope: payload missing");
    goto fail;
  }
  if (pe->signature.len == 0) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "envelope: signature missing");
    goto fail;
  }
  pp = fl__common__payload__unpack(NULL, pe->payload.len, pe->payload.data);
  if (pp == NULL) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "envelope: payload does not decode");
    goto fail;
  }
  e = fl_calloc(1, sizeof *e);
  rc = fl__pu_header_from_pb(pp->header, &e->mem_, &e->header, FL__PU_IN_ENVELOPE, reason);
  if (rc != FL_OK) goto fail;
  e->data = fl__pu_dup_bin(&e->mem_, pp->data);
  e->payload = fl__pu_dup_bin(&e->mem_, pe->payload);
  e->signature = fl__pu_dup_bin(&e->mem_, pe->signature);
  fl__common__payload__free_unpacked(pp, NULL);
  fl__common__envelope__free_unpacked(pe, NULL);
  *out = e;
  return FL_OK;

fail:
  fl_envelope_free(e);
  if (pp != NULL) fl__common__payload__free_unpacked(pp, NULL);
  if (pe != NULL) fl__common__envelope__free_unpacked(pe, NULL);
  return rc;
}

void fl_envelope_free(fl_envelope_t *e) {
  if (e == NULL) return;
  fl__pu_mem_free(&e->mem_);
  fl_free(e);
}

fl_status_t fl_envelope_verify_creator(const fl_envelope_t *e, fl_msp_t *msp,
                                       fl_role_t required, fl_msp_info_t *info) {
  if (e == NULL || msp == NULL) return FL_EINVAL;
  return fl_msp_verify_signature(msp, e->header.creator.data, e->header.creator.len,
                                 e->payload.data, e->payload.len, e->signature.data,
                                 e->signature.len, required, info);
}
