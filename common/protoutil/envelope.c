/* SPDX-License-Identifier: Apache-2.0
 *
 * envelope.c: building, decoding and verifying fl.common.Envelope.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/pb.h"
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

/* Reads msg as fields 1..max, each at most once and of the wire type
 * types[num - 1] (0 varint, 2 length-delimited), into fields[] (.field 0
 * when absent); false on anything else. */
static bool wscan(fl_buf_t msg, uint32_t max, const uint8_t *types,
                  fl__pb_field_t *fields /* [max] */) {
  memset(fields, 0, max * sizeof *fields);
  fl__pb_reader_t r;
  fl__pb_reader_init(&r, msg);
  fl__pb_field_t f;
  while (fl__pb_next(&r, &f)) {
    if (f.field > max || f.wire != types[f.field - 1] || fields[f.field - 1].field != 0)
      return false;
    fields[f.field - 1] = f;
  }
  return !r.bad;
}

bool fl_envelope_peek_tx_id(const uint8_t *data, size_t len, char tx_id[FL_TXID_HEX_LEN + 1]) {
  static const uint8_t env_t[] = {2, 2}, pay_t[] = {2, 2}, hdr_t[] = {0, 2, 2, 0, 2, 2};
  fl__pb_field_t env[2], pay[2], hdr[6];
  if (data == NULL || tx_id == NULL || len > FL_PU_MAX_MESSAGE) return false;
  /* Envelope { payload = 1, signature = 2 }, both present. */
  if (!wscan(FL_BUF(data, len), 2, env_t, env) || env[0].bytes.len == 0 ||
      env[1].bytes.len == 0)
    return false;
  /* Payload { header = 1 (present), data = 2 }. */
  if (!wscan(env[0].bytes, 2, pay_t, pay) || pay[0].field == 0) return false;
  /* Header { type, channel, tx_id, timestamp_ms, creator, nonce }: the rules
   * of fl__pu_header_from_pb. The varints are compared whole: a type of
   * exactly 1 or 2 has those low 32 bits, which is all protobuf-c keeps of
   * an enum, and a timestamp is read the same way by both. */
  if (!wscan(pay[0].bytes, 6, hdr_t, hdr)) return false;
  const fl__pb_field_t *type = &hdr[0], *ch = &hdr[1], *id = &hdr[2], *ts = &hdr[3],
                       *cr = &hdr[4], *nonce = &hdr[5];
  if (type->field == 0 || (type->v != FL_HDR_CONFIG && type->v != FL_HDR_ENDORSER_TX))
    return false;
  if (ch->field == 0 || ch->bytes.len == 0 || ch->bytes.len > FL_CHANNEL_MAX) return false;
  for (size_t i = 0; i < ch->bytes.len; i++)
    if (ch->bytes.data[i] < 0x20 || ch->bytes.data[i] > 0x7e) return false;
  if (ts->field == 0 || ts->v == 0) return false;
  if (cr->field == 0 || cr->bytes.len == 0 || cr->bytes.len > FL_MSP_IDENTITY_MAX) return false;
  if (nonce->field == 0 || nonce->bytes.len != FL_NONCE_LEN) return false;
  if (id->field == 0 || id->bytes.len != FL_TXID_HEX_LEN) return false;
  char expect[FL_TXID_HEX_LEN + 1];
  fl_tx_id_compute(nonce->bytes, cr->bytes, expect);
  if (memcmp(id->bytes.data, expect, FL_TXID_HEX_LEN) != 0) return false;
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
