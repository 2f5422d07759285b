/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_tx.c: fuzz target of the transaction decoder fl_tx_decode
 * (common/protoutil/proposal.h), which the orderer's and the committer's
 * validation run on the data of every ENDORSER_TRANSACTION envelope.
 *
 * The input is the fl.peer.Transaction bytes themselves (the envelope
 * around them is fuzzed by fuzz_envelope). The harness wraps them in an
 * already decoded envelope whose header is the header of the proposal
 * inside when that proposal decodes (so mutations reach the checks past the
 * header comparison), and a fixed unrelated header otherwise (then decoding
 * must fail). A decoded transaction must be consistent: same header as the
 * envelope, the payload's proposal hash is SHA-256 of the proposal bytes,
 * the response payload bytes decode to the same payload, 1..256
 * endorsements each with endorser and signature. The read-write set in the
 * results is decoded and round-tripped as the committer would.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/buf.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/proposal.h"
#include "common/protoutil/rwset.h"
#include "fl/peer/proposal.pb-c.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_check.h"

static void rwset(fl_buf_t b) {
  fl_rwset_t *rw = NULL;
  const char *reason = NULL;
  if (fl_rwset_decode(b.data, b.len, &rw, &reason) != FL_OK) {
    check(rw == NULL && reason != NULL);
    return;
  }
  fl_sbuf_t enc = {0};
  check(fl_rwset_encode(rw, &enc) == FL_OK);
  fl_rwset_t *rw2 = NULL;
  check(fl_rwset_decode(enc.data, enc.len, &rw2, NULL) == FL_OK);
  check(strcmp(rw->ns, rw2->ns) == 0 && rw->n_reads == rw2->n_reads &&
        rw->n_writes == rw2->n_writes && rw->n_range_reads == rw2->n_range_reads &&
        rw->n_blobs == rw2->n_blobs);
  fl_rwset_free(rw2);
  fl_sbuf_free(&enc);
  fl_rwset_free(rw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t nonce[FL_NONCE_LEN] = {1, 2, 3};
  static const char creator[] = "fuzz-creator";
  fl_envelope_t env = {0};
  env.header.type = FL_HDR_ENDORSER_TX;
  env.header.channel = "fuzzchannel";
  env.header.timestamp_ms = 1;
  env.header.creator = FL_BUF(creator, sizeof(creator) - 1);
  env.header.nonce = FL_BUF(nonce, sizeof(nonce));
  fl_tx_id_compute(env.header.nonce, env.header.creator, env.header.tx_id);
  env.data = FL_BUF(data, size);
  env.payload = FL_BUF("p", 1);
  env.signature = FL_BUF("s", 1);

  /* Borrow the inner proposal's header when there is one. */
  bool own_header = false;
  fl_proposal_t *inner = NULL;
  Fl__Peer__Transaction *pb = fl__peer__transaction__unpack(NULL, size, data);
  if (pb != NULL) {
    if (fl_proposal_decode(pb->proposal.data, pb->proposal.len, FL_BUF(NULL, 0), &inner, NULL) ==
        FL_OK) {
      env.header = inner->header;
      own_header = true;
    }
    fl__peer__transaction__free_unpacked(pb, NULL);
  }

  static fl_tx_t sentinel;
  fl_tx_t *tx = &sentinel;
  const char *reason = NULL;
  fl_status_t rc = fl_tx_decode(&env, &tx, &reason);
  if (rc != FL_OK) {
    check(tx == NULL && reason != NULL);
  } else {
    check(own_header);
    const fl_header_t *h = &tx->proposal->header;
    check(strcmp(h->tx_id, env.header.tx_id) == 0 && strcmp(h->channel, env.header.channel) == 0);
    check(fl_buf_eq(h->creator, env.header.creator) && fl_buf_eq(h->nonce, env.header.nonce));
    check(tx->proposal->signature.len > 0);
    check(memcmp(tx->payload->proposal_hash, tx->proposal->proposal_hash, FL_SHA256_LEN) == 0);
    check(tx->n_endorsements >= 1 && tx->n_endorsements <= FL_TX_MAX_ENDORSEMENTS);
    for (size_t i = 0; i < tx->n_endorsements; i++)
      check(tx->endorsements[i].endorser.len > 0 && tx->endorsements[i].signature.len > 0);
    fl_resp_payload_t *rp = NULL;
    check(fl_resp_payload_decode(tx->response_payload.data, tx->response_payload.len, &rp,
                                 NULL) == FL_OK);
    check(fl_buf_eq(rp->results, tx->payload->results));
    check(rp->response.status == tx->payload->response.status);
    fl_resp_payload_free(rp);
    rwset(tx->payload->results);
    fl_tx_free(tx);
  }
  /* Not an endorser transaction: refused before anything is read. */
  env.header.type = FL_HDR_CONFIG;
  tx = &sentinel;
  check(fl_tx_decode(&env, &tx, NULL) == FL_EINVAL && tx == NULL);
  fl_proposal_free(inner);
  return 0;
}
