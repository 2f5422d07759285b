/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_block.c: fuzz target of the block decoder (common/protoutil/block.h).
 *
 * The input is an encoded fl.common.Block as a peer receives it from an
 * orderer. When it decodes, the invariants of fl_block_t must hold (header
 * hash and data hash recomputed from the stored bytes, counts within their
 * limits), and encode -> decode must give the same block: same header bytes,
 * envelopes, signatures and metadata. Signature verification against a set
 * of unknown replicas must refuse the block without crashing, and a block
 * numbered 0 is also read as a genesis block.
 */
#include <stdlib.h>
#include <string.h>

#include "common/base/buf.h"
#include "common/crypto/hash.h"
#include "common/protoutil/block.h"
#include "common/protoutil/genesis.h"
#include "tests/fuzz/fuzz.h"

static void check(int cond) {
  if (!cond) abort();
}

static void same_block(const fl_block_t *a, const fl_block_t *b) {
  check(a->number == b->number);
  check(a->previous_hash_len == b->previous_hash_len);
  check(memcmp(a->previous_hash, b->previous_hash, FL_SHA256_LEN) == 0);
  check(memcmp(a->data_hash, b->data_hash, FL_SHA256_LEN) == 0);
  check(memcmp(a->header_hash, b->header_hash, FL_SHA256_LEN) == 0);
  check(fl_buf_eq(a->header, b->header));
  check(a->n_envelopes == b->n_envelopes);
  for (size_t i = 0; i < a->n_envelopes; i++) check(fl_buf_eq(a->envelopes[i], b->envelopes[i]));
  check(a->n_sigs == b->n_sigs);
  for (size_t i = 0; i < a->n_sigs; i++) {
    check(a->sigs[i].replica == b->sigs[i].replica);
    check(a->sigs[i].len == b->sigs[i].len);
    check(memcmp(a->sigs[i].sig, b->sigs[i].sig, a->sigs[i].len) == 0);
  }
  check(a->view == b->view && a->seq == b->seq && a->timestamp_ms == b->timestamp_ms);
  check(fl_buf_eq(FL_BUF(a->validation_codes, a->n_validation_codes),
                  FL_BUF(b->validation_codes, b->n_validation_codes)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fl_block_t *b = NULL;
  const char *reason = NULL;
  fl_status_t rc = fl_block_decode(data, size, &b, &reason);
  if (rc != FL_OK) {
    check(b == NULL && reason != NULL);
    return 0;
  }
  /* Invariants 1-4 of block.h. */
  uint8_t h[FL_SHA256_LEN];
  fl_sha256(b->header.data, b->header.len, h);
  check(memcmp(h, b->header_hash, FL_SHA256_LEN) == 0);
  check(fl_block_data_hash(b->envelopes, b->n_envelopes, h) == FL_OK);
  check(memcmp(h, b->data_hash, FL_SHA256_LEN) == 0);
  check(b->previous_hash_len == (b->number == 0 ? 0u : (size_t)FL_SHA256_LEN));
  check(b->n_validation_codes == 0 || b->n_validation_codes == b->n_envelopes);
  check(b->n_sigs <= FL_BLOCK_MAX_SIGS);
  for (size_t i = 0; i < b->n_sigs; i++) check(b->sigs[i].len >= 1 && b->sigs[i].len <= FL_SIG_MAX_LEN);

  /* Round trip. */
  fl_sbuf_t enc = {0};
  check(fl_block_encode(b, &enc) == FL_OK);
  fl_block_t *c = NULL;
  check(fl_block_decode(enc.data, enc.len, &c, NULL) == FL_OK);
  same_block(b, c);

  /* No known replica: every signature is untrusted, the quorum fails. */
  const fl_verifier_t *none[4] = {NULL, NULL, NULL, NULL};
  fl_status_t st[FL_BLOCK_MAX_SIGS];
  size_t nv = 1;
  check(fl_block_verify_signatures(b, none, 4, 1, st, &nv, NULL) == FL_EBADSIG);
  check(nv == 0);
  for (size_t i = 0; i < b->n_sigs; i++) check(st[i] == FL_EUNTRUSTED);
  /* A block never follows itself. */
  check(fl_block_check_chain(b, c, NULL) == FL_ECORRUPT);

  if (b->number == 0) {
    fl_netconfig_t *cfg = NULL;
    reason = NULL;
    if (fl_genesis_decode(b, &cfg, &reason) == FL_OK)
      fl_netconfig_free(cfg);
    else
      check(cfg == NULL && reason != NULL);
  }
  fl_block_free(c);
  fl_sbuf_free(&enc);
  fl_block_free(b);
  return 0;
}
