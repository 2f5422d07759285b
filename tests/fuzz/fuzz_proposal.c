/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_proposal.c: fuzz target of the proposal decoders
 * (common/protoutil/proposal.h): fl_signed_proposal_decode, which the
 * endorser runs on the SignedProposal of Peer/Endorse and the gateway's
 * Endorse and Evaluate, and fl_proposal_decode, which the committer runs on
 * the proposal inside a transaction.
 *
 * The input is read both ways. When it decodes as a SignedProposal, the
 * header must be a valid ENDORSER_TRANSACTION header (tx id recomputed from
 * nonce and creator), the proposal hash must be SHA-256 of the exact
 * proposal bytes, counts within their limits, and decoding those proposal
 * bytes again with fl_proposal_decode must give the same proposal. When the
 * input decodes as a bare Proposal, its hash is SHA-256 of the input. Every
 * failure must come with a reason and leave *out NULL.
 */
#include <stdlib.h>
#include <string.h>

#include "common/base/buf.h"
#include "common/crypto/hash.h"
#include "common/protoutil/proposal.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_check.h"

static void check_header(const fl_header_t *h) {
  check(h->type == FL_HDR_ENDORSER_TX);
  check(h->channel != NULL && h->channel[0] != '\0' && strlen(h->channel) <= FL_CHANNEL_MAX);
  check(h->creator.len > 0 && h->nonce.len == FL_NONCE_LEN && h->timestamp_ms != 0);
  char expect[FL_TXID_HEX_LEN + 1];
  fl_tx_id_compute(h->nonce, h->creator, expect);
  check(strcmp(expect, h->tx_id) == 0);
}

static void check_proposal(const fl_proposal_t *p) {
  check_header(&p->header);
  check(p->chaincode != NULL && p->chaincode[0] != '\0');
  check(p->n_args >= 1 && p->n_args <= FL_PROPOSAL_MAX_ARGS);
  check(p->n_blobs <= FL_PROPOSAL_MAX_BLOBS);
  uint8_t h[FL_SHA256_LEN];
  fl_sha256(p->proposal_bytes.data, p->proposal_bytes.len, h);
  check(memcmp(h, p->proposal_hash, FL_SHA256_LEN) == 0);
}

static void same_proposal(const fl_proposal_t *a, const fl_proposal_t *b) {
  check(a->header.type == b->header.type && strcmp(a->header.channel, b->header.channel) == 0);
  check(strcmp(a->header.tx_id, b->header.tx_id) == 0);
  check(a->header.timestamp_ms == b->header.timestamp_ms);
  check(fl_buf_eq(a->header.creator, b->header.creator));
  check(fl_buf_eq(a->header.nonce, b->header.nonce));
  check(strcmp(a->chaincode, b->chaincode) == 0);
  check(a->n_args == b->n_args && a->n_blobs == b->n_blobs);
  for (size_t i = 0; i < a->n_args; i++) check(fl_buf_eq(a->args[i], b->args[i]));
  for (size_t i = 0; i < a->n_blobs; i++) check(fl_buf_eq(a->blobs[i], b->blobs[i]));
  check(fl_buf_eq(a->transient, b->transient));
  check(fl_buf_eq(a->proposal_bytes, b->proposal_bytes));
  check(fl_buf_eq(a->signature, b->signature));
  check(memcmp(a->proposal_hash, b->proposal_hash, FL_SHA256_LEN) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fl_proposal_t sentinel;
  fl_proposal_t *p = &sentinel;
  const char *reason = NULL;
  if (fl_signed_proposal_decode(data, size, &p, &reason) == FL_OK) {
    check_proposal(p);
    check(p->signature.len > 0);
    fl_proposal_t *q = NULL;
    check(fl_proposal_decode(p->proposal_bytes.data, p->proposal_bytes.len, p->signature, &q,
                             NULL) == FL_OK);
    same_proposal(p, q);
    fl_proposal_free(q);
    fl_proposal_free(p);
  } else {
    check(p == NULL && reason != NULL);
  }

  p = &sentinel;
  reason = NULL;
  if (fl_proposal_decode(data, size, FL_BUF(NULL, 0), &p, &reason) == FL_OK) {
    check_proposal(p);
    check(p->signature.len == 0);
    check(p->proposal_bytes.len == size && memcmp(p->proposal_bytes.data, data, size) == 0);
    fl_proposal_free(p);
  } else {
    check(p == NULL && reason != NULL);
  }
  return 0;
}
