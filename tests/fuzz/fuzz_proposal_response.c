/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_proposal_response.c: fuzz target of the endorsement answers
 * (common/protoutil/proposal.h): fl_proposal_response_decode, which a
 * client (the gateway, the SDK) runs on what a peer returns from
 * Peer/Endorse, and fl_resp_payload_decode, run on the
 * ProposalResponsePayload inside it and inside every transaction.
 *
 * The input is read both ways. Whatever decodes must satisfy the decoder's
 * rules (response present; an endorsement has endorser and signature; a
 * proposal hash of 32 bytes; strings never NULL), and encode -> decode must
 * give the same fields. The payload of a decoded ProposalResponse is fed to
 * the payload decoder as well, as a client does.
 */
#include <stdlib.h>
#include <string.h>

#include "common/base/buf.h"
#include "common/protoutil/proposal.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_check.h"

static void same_response(const fl_response_t *a, const fl_response_t *b) {
  check(a->status == b->status);
  check(a->message != NULL && b->message != NULL && strcmp(a->message, b->message) == 0);
  check(fl_buf_eq(a->payload, b->payload));
}

static void payload(const uint8_t *data, size_t size) {
  static fl_resp_payload_t sentinel;
  fl_resp_payload_t *p = &sentinel;
  const char *reason = NULL;
  if (fl_resp_payload_decode(data, size, &p, &reason) != FL_OK) {
    check(p == NULL && reason != NULL);
    return;
  }
  check(p->chaincode_version != NULL && p->response.message != NULL);
  if (p->has_event)
    check(p->event.chaincode != NULL && p->event.tx_id != NULL && p->event.name != NULL);
  fl_sbuf_t enc = {0};
  check(fl_resp_payload_encode(p, &enc) == FL_OK);
  fl_resp_payload_t *q = NULL;
  check(fl_resp_payload_decode(enc.data, enc.len, &q, NULL) == FL_OK);
  check(memcmp(p->proposal_hash, q->proposal_hash, sizeof(p->proposal_hash)) == 0);
  check(fl_buf_eq(p->results, q->results));
  check(p->has_event == q->has_event);
  if (p->has_event) {
    check(strcmp(p->event.chaincode, q->event.chaincode) == 0);
    check(strcmp(p->event.tx_id, q->event.tx_id) == 0);
    check(strcmp(p->event.name, q->event.name) == 0);
    check(fl_buf_eq(p->event.payload, q->event.payload));
  }
  same_response(&p->response, &q->response);
  check(strcmp(p->chaincode_version, q->chaincode_version) == 0);
  /* Encoding is deterministic: the same struct gives the same bytes. */
  fl_sbuf_t enc2 = {0};
  check(fl_resp_payload_encode(q, &enc2) == FL_OK);
  check(fl_buf_eq(fl_sbuf_view(&enc), fl_sbuf_view(&enc2)));
  fl_sbuf_free(&enc2);
  fl_resp_payload_free(q);
  fl_sbuf_free(&enc);
  fl_resp_payload_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fl_proposal_response_t sentinel;
  fl_proposal_response_t *r = &sentinel;
  const char *reason = NULL;
  if (fl_proposal_response_decode(data, size, &r, &reason) == FL_OK) {
    check(r->response.message != NULL);
    if (r->has_endorsement)
      check(r->endorsement.endorser.len > 0 && r->endorsement.signature.len > 0);
    fl_sbuf_t enc = {0};
    check(fl_proposal_response_encode(r, &enc) == FL_OK);
    fl_proposal_response_t *s = NULL;
    check(fl_proposal_response_decode(enc.data, enc.len, &s, NULL) == FL_OK);
    same_response(&r->response, &s->response);
    check(fl_buf_eq(r->payload, s->payload));
    check(r->has_endorsement == s->has_endorsement);
    if (r->has_endorsement) {
      check(fl_buf_eq(r->endorsement.endorser, s->endorsement.endorser));
      check(fl_buf_eq(r->endorsement.signature, s->endorsement.signature));
    }
    payload(r->payload.data, r->payload.len);
    fl_proposal_response_free(s);
    fl_sbuf_free(&enc);
    fl_proposal_response_free(r);
  } else {
    check(r == NULL && reason != NULL);
  }
  payload(data, size);
  return 0;
}
