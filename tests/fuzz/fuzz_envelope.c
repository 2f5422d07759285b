/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_envelope.c: fuzz target of the envelope decoder
 * (common/protoutil/envelope.h) and of the decoders behind it.
 *
 * The input is an encoded fl.common.Envelope as an orderer receives it in
 * Broadcast. When it decodes, the header must be consistent (tx id =
 * SHA-256(nonce || creator) in hex, nonce 24 bytes, creator present,
 * timestamp set, known type), and the payload data is then decoded by what
 * its type says: an ENDORSER_TRANSACTION as a Transaction (proposal,
 * response payload, endorsements; and the read-write set in the payload's
 * results), a CONFIG envelope as a NetworkConfig. The same input is also
 * fed to the SignedProposal decoder, which shares the header rules. Every
 * failure must come with a reason; nothing may crash or leak. The strict
 * scan fl_envelope_peek_tx_id may answer only where the decoder accepts,
 * with the same tx id.
 */
#include <stdlib.h>
#include <string.h>

#include "common/base/buf.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/genesis.h"
#include "common/protoutil/proposal.h"
#include "common/protoutil/rwset.h"
#include "tests/fuzz/fuzz.h"

static void check(int cond) {
  if (!cond) abort();
}

static void check_header(const fl_header_t *h) {
  check(h->type == FL_HDR_CONFIG || h->type == FL_HDR_ENDORSER_TX);
  check(h->channel != NULL && h->channel[0] != '\0');
  check(h->creator.len > 0 && h->nonce.len == FL_NONCE_LEN && h->timestamp_ms != 0);
  char expect[FL_TXID_HEX_LEN + 1];
  fl_tx_id_compute(h->nonce, h->creator, expect);
  check(strcmp(expect, h->tx_id) == 0);
}

static void transaction(const fl_envelope_t *e) {
  fl_tx_t *tx = NULL;
  const char *reason = NULL;
  if (fl_tx_decode(e, &tx, &reason) != FL_OK) {
    check(tx == NULL && reason != NULL);
    return;
  }
  check_header(&tx->proposal->header);
  check(strcmp(tx->proposal->header.tx_id, e->header.tx_id) == 0);
  check(memcmp(tx->payload->proposal_hash, tx->proposal->proposal_hash, FL_SHA256_LEN) == 0);
  check(tx->n_endorsements >= 1);
  fl_rwset_t *rw = NULL;
  reason = NULL;
  if (fl_rwset_decode(tx->payload->results.data, tx->payload->results.len, &rw, &reason) ==
      FL_OK) {
    /* Re-encoding a decoded set and decoding it again gives the same set. */
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
  } else {
    check(rw == NULL && reason != NULL);
  }
  fl_tx_free(tx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fl_envelope_t *e = NULL;
  const char *reason = NULL;
  /* The orderer's fast check: a yes only where the decoder says yes, with
   * the same tx id. */
  char peek[FL_TXID_HEX_LEN + 1];
  bool peeked = fl_envelope_peek_tx_id(data, size, peek);
  if (fl_envelope_decode(data, size, &e, &reason) == FL_OK) {
    check_header(&e->header);
    check(!peeked || strcmp(peek, e->header.tx_id) == 0);
    check(e->payload.len > 0 && e->signature.len > 0);
    if (e->header.type == FL_HDR_ENDORSER_TX) {
      transaction(e);
    } else {
      fl_netconfig_t *cfg = NULL;
      reason = NULL;
      if (fl_netconfig_decode(e->data.data, e->data.len, &cfg, &reason) == FL_OK) {
        fl_sbuf_t enc = {0};
        check(fl_netconfig_encode(cfg, &enc, NULL) == FL_OK);
        fl_netconfig_t *cfg2 = NULL;
        check(fl_netconfig_decode(enc.data, enc.len, &cfg2, NULL) == FL_OK);
        check(cfg2->n_orgs == cfg->n_orgs && cfg2->n_orderers == cfg->n_orderers &&
              strcmp(cfg2->channel, cfg->channel) == 0);
        fl_netconfig_free(cfg2);
        fl_sbuf_free(&enc);
        fl_netconfig_free(cfg);
      } else {
        check(cfg == NULL && reason != NULL);
      }
    }
    fl_envelope_free(e);
  } else {
    check(e == NULL && reason != NULL && !peeked);
  }

  fl_proposal_t *p = NULL;
  reason = NULL;
  if (fl_signed_proposal_decode(data, size, &p, &reason) == FL_OK) {
    check_header(&p->header);
    check(p->header.type == FL_HDR_ENDORSER_TX && p->n_args >= 1 && p->signature.len > 0);
    fl_proposal_free(p);
  } else {
    check(p == NULL && reason != NULL);
  }
  return 0;
}
