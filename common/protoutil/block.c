/* SPDX-License-Identifier: Apache-2.0
 *
 * block.c: fl.common.Block <-> fl_block_t, the data hash rule, orderer
 * signatures and the hash chain. See block.h for the byte layout and the
 * invariants of fl_block_t.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/protoutil/block.h"
#include "common/protoutil/protoutil_int.h"

fl_status_t fl_block_data_hash(const fl_buf_t *envs, size_t n,
                               uint8_t out[FL_SHA256_LEN]) {
  fl_sha256_ctx_t ctx = {0};
  if (fl_sha256_init(&ctx) != FL_OK) return FL_ECRYPTO;
  for (size_t i = 0; i < n; i++) {
    if (envs[i].len > UINT32_MAX) {
      fl_sha256_abort(&ctx);
      return FL_ETOOBIG;
    }
    uint8_t be[4];
    fl_put_be32(be, (uint32_t)envs[i].len);
    fl_sha256_update(&ctx, be, sizeof be);
    fl_sha256_update(&ctx, envs[i].data, envs[i].len);
  }
  fl_sha256_final(&ctx, out);
  return FL_OK;
}

/* Makes a block owning copies of header bytes and envelopes; fills the
 * header-derived fields from the already validated pb header. */
static fl_block_t *block_new(fl_buf_t header, const Fl__Common__BlockHeader *h,
                             const ProtobufCBinaryData *envs, const fl_buf_t *envs2,
                             size_t n) {
  fl_block_t *b = fl_calloc(1, sizeof *b);
  b->number = h->number;
  b->previous_hash_len = h->previous_hash.len;
  if (h->previous_hash.len > 0) memcpy(b->previous_hash, h->previous_hash.data, FL_SHA256_LEN);
  memcpy(b->data_hash, h->data_hash.data, FL_SHA256_LEN);
  b->header = fl__pu_dup(&b->mem_, header.data, header.len);
  fl_sha256(header.data, header.len, b->header_hash);
  b->envelopes = fl__pu_array(&b->mem_, n, sizeof(fl_buf_t));
  b->n_envelopes = n;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += envs != NULL ? envs[i].len : envs2[i].len;
  uint8_t *store = fl__pu_alloc(&b->mem_, total);
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = envs != NULL ? envs[i].data : envs2[i].data;
    size_t len = envs != NULL ? envs[i].len : envs2[i].len;
    if (len > 0) memcpy(store + off, p, len);
    b->envelopes[i] = FL_BUF(store + off, len);
    off += len;
  }
  return b;
}

fl_status_t fl_block_build(uint64_t number, const uint8_t *prev_hash,
                           const fl_buf_t *envs, size_t n, fl_block_t **out) {
  if (out == NULL) return FL_EINVAL;
  *out = NULL;
  if ((number == 0) != (prev_hash == NULL)) return FL_EINVAL;
  if (n > FL_BLOCK_MAX_ENVELOPES || (n > 0 && envs == NULL)) return FL_EINVAL;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (envs[i].len > FL_PU_MAX_MESSAGE || (envs[i].len > 0 && envs[i].data == NULL))
      return envs[i].len > FL_PU_MAX_MESSAGE ? FL_ETOOBIG : FL_EINVAL;
    total += envs[i].len + 8;
    if (total > FL_PU_MAX_MESSAGE) return FL_ETOOBIG;
  }
  uint8_t dh[FL_SHA256_LEN];
  FL_FORWARD(fl_block_data_hash(envs, n, dh));

  Fl__Common__BlockHeader h;
  fl__common__block_header__init(&h);
  h.number = number;
  h.previous_hash = fl__pu_bin(FL_BUF(prev_hash, prev_hash != NULL ? FL_SHA256_LEN : 0));
  h.data_hash = fl__pu_bin(FL_BUF(dh, sizeof dh));
  fl_sbuf_t hb = {0};
  fl__pu_pack(&h.base, &hb);
  *out = block_new(fl_sbuf_view(&hb), &h, NULL, envs, n);
  fl_sbuf_free(&hb);
  return FL_OK;
}

void fl_block_free(fl_block_t *b) {
  if (b == NULL) return;
  fl__pu_mem_free(&b->mem_);
  fl_free(b->sigs);
  fl_free(b->validation_codes);
  fl_free(b);
}

fl_status_t fl_block_encode(const fl_block_t *b, fl_sbuf_t *out) {
  if (b == NULL || out == NULL) return FL_EINVAL;
  out->len = 0;
  ProtobufCBinaryData *envs = fl_calloc(b->n_envelopes + 1, sizeof *envs);
  Fl__Common__OrdererSignature *sigs = fl_calloc(b->n_sigs + 1, sizeof *sigs);
  Fl__Common__OrdererSignature **psigs = fl_calloc(b->n_sigs + 1, sizeof *psigs);
  for (size_t i = 0; i < b->n_envelopes; i++) envs[i] = fl__pu_bin(b->envelopes[i]);
  for (size_t i = 0; i < b->n_sigs; i++) {
    fl__common__orderer_signature__init(&sigs[i]);
    sigs[i].replica = b->sigs[i].replica;
    sigs[i].signature = fl__pu_bin(FL_BUF(b->sigs[i].sig, b->sigs[i].len));
    psigs[i] = &sigs[i];
  }
  Fl__Common__BlockData data;
  fl__common__block_data__init(&data);
  data.n_envelopes = b->n_envelopes;
  data.envelopes = envs;
  Fl__Common__BlockMetadata md;
  fl__common__block_metadata__init(&md);
  md.n_signatures = b->n_sigs;
  md.signatures = psigs;
  md.view = b->view;
  md.seq = b->seq;
  md.timestamp_ms = b->timestamp_ms;
  md.validation_codes = fl__pu_bin(FL_BUF(b->validation_codes, b->n_validation_codes));
  Fl__Common__Block blk;
  fl__common__block__init(&blk);
  blk.header = fl__pu_bin(b->header);
  blk.data = &data;
  blk.metadata = &md;
  fl_status_t rc = FL_OK;
  if (protobuf_c_message_get_packed_size(&blk.base) > FL_PU_MAX_MESSAGE)
    rc = FL_ETOOBIG;
  else
    fl__pu_pack(&blk.base, out);
  fl_free(psigs);
  fl_free(sigs);
  fl_free(envs);
  return rc;
}

fl_status_t fl_block_decode(const uint8_t *data, size_t len, fl_block_t **out,
                            const char **reason) {
  Fl__Common__Block *pb = NULL;
  Fl__Common__BlockHeader *h = NULL;
  fl_block_t *b = NULL;
  fl_status_t rc;
  if (out == NULL || (data == NULL && len > 0))
    return FL__PU_FAIL(reason, FL_EINVAL, "block: no output or no input");
  *out = NULL;
  if (len > FL_PU_MAX_MESSAGE)
    return FL__PU_FAIL(reason, FL_ETOOBIG, "block: larger than the message limit");
  pb = fl__common__block__unpack(NULL, len, data);
  if (pb == NULL) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "block: bytes do not decode as a Block");
    goto fail;
  }
  if (pb->header.len == 0) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "block: header missing");
    goto fail;
  }
  h = fl__common__block_header__unpack(NULL, pb->header.len, pb->header.data);
  if (h == NULL) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "block: header bytes do not decode");
    goto fail;
  }
  if (h->number == 0 && h->previous_hash.len != 0) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "block: block 0 has a previous hash");
    goto fail;
  }
  if (h->number != 0 && h->previous_hash.len != FL_SHA256_LEN) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "block: previous hash is not 32 bytes");
    goto fail;
  }
  if (h->data_hash.len != FL_SHA256_LEN) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "block: data hash is not 32 bytes");
    goto fail;
  }
  size_t n = pb->data != NULL ? pb->data->n_envelopes : 0;
  const ProtobufCBinaryData *envs = pb->data != NULL ? pb->data->envelopes : NULL;
  if (n > FL_BLOCK_MAX_ENVELOPES) {
    rc = FL__PU_FAIL(reason, FL_ETOOBIG, "block: too many envelopes");
    goto fail;
  }
  uint8_t dh[FL_SHA256_LEN];
  fl_sha256_ctx_t ctx = {0};
  if (fl_sha256_init(&ctx) != FL_OK) {
    rc = FL__PU_FAIL(reason, FL_ECRYPTO, "block: cannot hash");
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    uint8_t be[4];
    fl_put_be32(be, (uint32_t)envs[i].len); /* len <= FL_PU_MAX_MESSAGE */
    fl_sha256_update(&ctx, be, sizeof be);
    fl_sha256_update(&ctx, envs[i].data, envs[i].len);
  }
  fl_sha256_final(&ctx, dh);
  if (memcmp(dh, h->data_hash.data, FL_SHA256_LEN) != 0) {
    rc = FL__PU_FAIL(reason, FL_ECORRUPT, "block: data hash does not match the envelopes");
    goto fail;
  }
  const Fl__Common__BlockMetadata *md = pb->metadata;
  size_t nsig = md != NULL ? md->n_signatures : 0;
  if (nsig > FL_BLOCK_MAX_SIGS) {
    rc = FL__PU_FAIL(reason, FL_ETOOBIG, "block: too many orderer signatures");
    goto fail;
  }
  for (size_t i = 0; i < nsig; i++) {
    const Fl__Common__OrdererSignature *s = md->signatures[i];
    if (s == NULL || s->signature.len == 0 || s->signature.len > FL_SIG_MAX_LEN) {
      rc = FL__PU_FAIL(reason, FL_EMALFORMED,
                       "block: orderer signature empty or longer than 72 bytes");
      goto fail;
    }
  }
  size_t ncodes = md != NULL ? md->validation_codes.len : 0;
  if (ncodes != 0 && ncodes != n) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED,
                     "block: validation codes do not match the envelope count");
    goto fail;
  }

  b = block_new(FL_BUF(pb->header.data, pb->header.len), h, envs, NULL, n);
  if (nsig > 0) {
    b->sigs = fl_calloc(nsig, sizeof *b->sigs);
    for (size_t i = 0; i < nsig; i++) {
      b->sigs[i].replica = md->signatures[i]->replica;
      b->sigs[i].len = md->signatures[i]->signature.len;
      memcpy(b->sigs[i].sig, md->signatures[i]->signature.data, b->sigs[i].len);
    }
    b->n_sigs = nsig;
  }
  if (md != NULL) {
    b->view = md->view;
    b->seq = md->seq;
    b->timestamp_ms = md->timestamp_ms;
    if (ncodes > 0) {
      b->validation_codes = fl_memdup(md->validation_codes.data, ncodes);
      b->n_validation_codes = ncodes;
    }
  }
  fl__common__block_header__free_unpacked(h, NULL);
  fl__common__block__free_unpacked(pb, NULL);
  *out = b;
  return FL_OK;

fail:
  if (h != NULL) fl__common__block_header__free_unpacked(h, NULL);
  if (pb != NULL) fl__common__block__free_unpacked(pb, NULL);
  return rc;
}

fl_status_t fl_block_add_signature(fl_block_t *b, uint32_t replica,
                                   const uint8_t *sig, size_t len) {
  if (b == NULL || sig == NULL || len == 0 || len > FL_SIG_MAX_LEN) return FL_EINVAL;
  if (b->n_sigs >= FL_BLOCK_MAX_SIGS) return FL_EINVAL;
  b->sigs = fl_reallocarray(b->sigs, b->n_sigs + 1, sizeof *b->sigs);
  fl_block_sig_t *s = &b->sigs[b->n_sigs++];
  memset(s, 0, sizeof *s);
  s->replica = replica;
  s->len = len;
  memcpy(s->sig, sig, len);
  return FL_OK;
}

fl_status_t fl_block_sign(fl_block_t *b, uint32_t replica, const fl_signer_t *s) {
  if (b == NULL || s == NULL) return FL_EINVAL;
  fl_sbuf_t sig = {0};
  fl_status_t rc = fl_signer_sign_digest(s, b->header_hash, &sig);
  if (rc == FL_OK) rc = fl_block_add_signature(b, replica, sig.data, sig.len);
  fl_sbuf_free(&sig);
  return rc;
}

void fl_block_set_metadata(fl_block_t *b, uint64_t view, uint64_t seq,
                           uint64_t timestamp_ms) {
  if (b == NULL) return;
  b->view = view;
  b->seq = seq;
  b->timestamp_ms = timestamp_ms;
}

fl_status_t fl_block_set_validation_codes(fl_block_t *b, const uint8_t *codes, size_t n) {
  if (b == NULL || (n != 0 && n != b->n_envelopes) || (n > 0 && codes == NULL))
    return FL_EINVAL;
  fl_free(b->validation_codes);
  b->validation_codes = n > 0 ? fl_memdup(codes, n) : NULL;
  b->n_validation_codes = n;
  return FL_OK;
}

fl_status_t fl_block_verify_signatures(const fl_block_t *b,
                                       const fl_verifier_t *const *verifiers,
                                       size_t n_verifiers, uint32_t f,
                                       fl_status_t *sig_status, size_t *n_valid,
                                       const char **reason) {
  if (n_valid != NULL) *n_valid = 0;
  if (b == NULL || verifiers == NULL)
    return FL__PU_FAIL(reason, FL_EINVAL, "block: no block or no verifiers");
  uint64_t quorum = 2 * (uint64_t)f + 1;
  if (n_verifiers < quorum)
    return FL__PU_FAIL(reason, FL_EINVAL, "block: fewer orderers than 2f+1");
  /* counted[r]: replica r already has a valid signature. */
  bool *counted = fl_calloc(n_verifiers, sizeof *counted);
  size_t valid = 0;
  for (size_t i = 0; i < b->n_sigs; i++) {
    const fl_block_sig_t *s = &b->sigs[i];
    fl_status_t st;
    if (s->replica >= n_verifiers || verifiers[s->replica] == NULL)
      st = FL_EUNTRUSTED;
    else if (counted[s->replica])
      st = FL_EEXIST;
    else if (fl_verify_digest(verifiers[s->replica], b->header_hash, s->sig, s->len) != FL_OK)
      st = FL_EBADSIG;
    else {
      st = FL_OK;
      counted[s->replica] = true;
      valid++;
    }
    if (sig_status != NULL) sig_status[i] = st;
    else if (valid >= quorum) break;
  }
  fl_free(counted);
  if (n_valid != NULL) *n_valid = valid;
  if (valid < quorum)
    return FL__PU_FAIL(reason, FL_EBADSIG,
                       "block: fewer than 2f+1 distinct valid orderer signatures");
  return FL_OK;
}

fl_status_t fl_block_check_link(uint64_t prev_number,
                                const uint8_t prev_header_hash[FL_SHA256_LEN],
                                const fl_block_t *next, const char **reason) {
  if (next == NULL || prev_header_hash == NULL)
    return FL__PU_FAIL(reason, FL_EINVAL, "block: missing block");
  if (prev_number == UINT64_MAX || next->number != prev_number + 1)
    return FL__PU_FAIL(reason, FL_ECORRUPT, "block: number is not previous + 1");
  if (next->previous_hash_len != FL_SHA256_LEN ||
      memcmp(next->previous_hash, prev_header_hash, FL_SHA256_LEN) != 0)
    return FL__PU_FAIL(reason, FL_ECORRUPT,
                       "block: previous hash does not match the previous header");
  return FL_OK;
}

fl_status_t fl_block_check_chain(const fl_block_t *prev, const fl_block_t *next,
                                 const char **reason) {
  if (prev == NULL) return FL__PU_FAIL(reason, FL_EINVAL, "block: missing block");
  return fl_block_check_link(prev->number, prev->header_hash, next, reason);
}
