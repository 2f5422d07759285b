/* SPDX-License-Identifier: Apache-2.0
 *
 * util.c: what the protoutil files share: the owned-memory list of decoded
 * structs, packing, and the transaction header (tx id rule, building and
 * validating fl.common.Header).
 */
#include <stdalign.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/crypto/msp.h"
#include "common/crypto/rand.h"
#include "common/protoutil/protoutil_int.h"

/* Each allocation is prefixed by this header; the union keeps the payload
 * aligned for any type. */
typedef union mem_hdr_u {
  void *next;
  max_align_t align;
} mem_hdr_t;

void *fl__pu_alloc(void **mem, size_t n) {
  FL_ASSERT(n <= SIZE_MAX - sizeof(mem_hdr_t));
  mem_hdr_t *h = fl_calloc(1, sizeof(mem_hdr_t) + n);
  h->next = *mem;
  *mem = h;
  return h + 1;
}

void *fl__pu_array(void **mem, size_t n, size_t sz) {
  FL_ASSERT(sz == 0 || n <= (SIZE_MAX - sizeof(mem_hdr_t)) / sz);
  return fl__pu_alloc(mem, n * sz);
}

fl_buf_t fl__pu_dup(void **mem, const void *p, size_t n) {
  uint8_t *d = fl__pu_alloc(mem, n);
  if (n > 0) memcpy(d, p, n);
  return (fl_buf_t){.data = d, .len = n};
}

fl_buf_t fl__pu_dup_bin(void **mem, ProtobufCBinaryData b) {
  return fl__pu_dup(mem, b.data, b.len);
}

const char *fl__pu_strdup(void **mem, const char *s) {
  if (s == NULL) s = "";
  size_t n = strlen(s);
  char *d = fl__pu_alloc(mem, n + 1);
  memcpy(d, s, n);
  return d;
}

void fl__pu_mem_free(void **mem) {
  if (mem == NULL) return;
  mem_hdr_t *h = *mem;
  while (h != NULL) {
    mem_hdr_t *next = h->next;
    fl_free(h);
    h = next;
  }
  *mem = NULL;
}

void fl__pu_pack(const ProtobufCMessage *m, fl_sbuf_t *out) {
  size_t n = protobuf_c_message_get_packed_size(m);
  out->len = 0;
  fl_sbuf_reserve(out, n + 1); /* +1: data is non-NULL even for n == 0 */
  size_t w = protobuf_c_message_pack(m, out->data);
  FL_ASSERT(w == n);
  out->len = n;
}

const char *fl_header_type_name(fl_header_type_t t) {
  switch (t) {
  case FL_HDR_CONFIG: return "CONFIG";
  case FL_HDR_ENDORSER_TX: return "ENDORSER_TRANSACTION";
  default: return "UNKNOWN";
  }
}

void fl_tx_id_compute(fl_buf_t nonce, fl_buf_t creator,
                      char out[FL_TXID_HEX_LEN + 1]) {
  fl_sha256_ctx_t ctx = {0};
  uint8_t d[FL_SHA256_LEN];
  /* fl_sha256_init only fails on a broken OpenSSL; the one-shot fallback
   * keeps the result right even then. */
  if (fl_sha256_init(&ctx) == FL_OK) {
    fl_sha256_update(&ctx, nonce.data, nonce.len);
    fl_sha256_update(&ctx, creator.data, creator.len);
    fl_sha256_final(&ctx, d);
  } else {
    fl_sbuf_t tmp = {0};
    fl_sbuf_append(&tmp, nonce.data, nonce.len);
    fl_sbuf_append(&tmp, creator.data, creator.len);
    fl_sha256(tmp.data, tmp.len, d);
    fl_sbuf_free(&tmp);
  }
  fl_hex_encode(d, sizeof d, out);
}

static bool type_known(int t) {
  return t == FL_HDR_CONFIG || t == FL_HDR_ENDORSER_TX;
}

fl_status_t fl__pu_header_check(const fl_header_t *h) {
  if (h == NULL || !type_known(h->type)) return FL_EINVAL;
  if (h->channel == NULL || h->channel[0] == '\0' ||
      strlen(h->channel) > FL_CHANNEL_MAX)
    return FL_EINVAL;
  if (h->creator.len == 0 || h->creator.len > FL_MSP_IDENTITY_MAX) return FL_EINVAL;
  if (h->nonce.len != FL_NONCE_LEN || h->timestamp_ms == 0) return FL_EINVAL;
  char expect[FL_TXID_HEX_LEN + 1];
  fl_tx_id_compute(h->nonce, h->creator, expect);
  if (memcmp(expect, h->tx_id, sizeof expect) != 0) return FL_EINVAL;
  return FL_OK;
}

fl_status_t fl_header_make(fl_header_type_t type, const char *channel,
                           fl_buf_t creator, uint8_t nonce_storage[FL_NONCE_LEN],
                           fl_header_t *out) {
  if (out == NULL || nonce_storage == NULL) return FL_EINVAL;
  memset(out, 0, sizeof *out);
  if (!type_known(type)) return FL_EINVAL;
  if (channel == NULL || channel[0] == '\0' || strlen(channel) > FL_CHANNEL_MAX)
    return FL_EINVAL;
  if (creator.len == 0 || creator.len > FL_MSP_IDENTITY_MAX) return FL_EINVAL;
  if (fl_random_bytes(nonce_storage, FL_NONCE_LEN) != FL_OK) return FL_ECRYPTO;
  out->type = type;
  out->channel = channel;
  out->creator = creator;
  out->nonce = FL_BUF(nonce_storage, FL_NONCE_LEN);
  out->timestamp_ms = fl_wall_ms();
  if (out->timestamp_ms == 0) out->timestamp_ms = 1; /* 0 means "absent" */
  fl_tx_id_compute(out->nonce, creator, out->tx_id);
  return FL_OK;
}

void fl__pu_header_to_pb(const fl_header_t *h, Fl__Common__Header *pb) {
  pb->type = (Fl__Common__HeaderType)h->type;
  pb->channel = fl__pu_str(h->channel);
  pb->tx_id = FL__UNCONST(char *, h->tx_id);
  pb->timestamp_ms = h->timestamp_ms;
  pb->creator = fl__pu_bin(h->creator);
  pb->nonce = fl__pu_bin(h->nonce);
}

/* Reason texts, one row per `what`. */
enum { R_MISSING, R_TYPE, R_CHANNEL, R_CREATOR, R_NONCE, R_TXID, R_TIME, R_COUNT };
static const char *const reasons[2][R_COUNT] = {
    {"envelope: payload has no header", "envelope: unknown header type",
     "envelope: channel empty or too long",
     "envelope: creator missing or too large",
     "envelope: nonce is not 24 bytes",
     "envelope: tx id does not match nonce and creator",
     "envelope: timestamp missing"},
    {"proposal: no header", "proposal: unknown header type",
     "proposal: channel empty or too long",
     "proposal: creator missing or too large",
     "proposal: nonce is not 24 bytes",
     "proposal: tx id does not match nonce and creator",
     "proposal: timestamp missing"},
};

fl_status_t fl__pu_header_from_pb(const Fl__Common__Header *pb, void **mem,
                                  fl_header_t *out, int what, const char **reason) {
  const char *const *r = reasons[what == FL__PU_IN_PROPOSAL ? 1 : 0];
  memset(out, 0, sizeof *out);
  if (pb == NULL) return FL__PU_FAIL(reason, FL_EMALFORMED, r[R_MISSING]);
  if (!type_known((int)pb->type)) return FL__PU_FAIL(reason, FL_EMALFORMED, r[R_TYPE]);
  const char *ch = pb->channel != NULL ? pb->channel : "";
  if (ch[0] == '\0' || strlen(ch) > FL_CHANNEL_MAX)
    return FL__PU_FAIL(reason, FL_EMALFORMED, r[R_CHANNEL]);
  if (pb->creator.len == 0 || pb->creator.len > FL_MSP_IDENTITY_MAX)
    return FL__PU_FAIL(reason, FL_EMALFORMED, r[R_CREATOR]);
  if (pb->nonce.len != FL_NONCE_LEN) return FL__PU_FAIL(reason, FL_EMALFORMED, r[R_NONCE]);
  char expect[FL_TXID_HEX_LEN + 1];
  fl_tx_id_compute(FL_BUF(pb->nonce.data, pb->nonce.len),
                   FL_BUF(pb->creator.data, pb->creator.len), expect);
  if (pb->tx_id == NULL || strcmp(pb->tx_id, expect) != 0)
    return FL__PU_FAIL(reason, FL_EMALFORMED, r[R_TXID]);
  if (pb->timestamp_ms == 0) return FL__PU_FAIL(reason, FL_EMALFORMED, r[R_TIME]);
  out->type = (fl_header_type_t)pb->type;
  out->channel = fl__pu_strdup(mem, ch);
  memcpy(out->tx_id, expect, sizeof expect);
  out->timestamp_ms = pb->timestamp_ms;
  out->creator = fl__pu_dup_bin(mem, pb->creator);
  out->nonce = fl__pu_dup_bin(mem, pb->nonce);
  return FL_OK;
}
