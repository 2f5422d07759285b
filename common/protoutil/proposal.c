/* SPDX-License-Identifier: Apache-2.0
 *
 * proposal.c: signed proposals, proposal response payloads, endorsements,
 * proposal responses and transactions (see proposal.h for the layout of
 * what is signed).
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/protoutil/proposal.h"
#include "common/protoutil/protoutil_int.h"
#include "common/crypto/x509.h"
#include "fl/msp/identity.pb-c.h"
#include "fl/peer/proposal.pb-c.h"

/* ---------------------------------------------------------------- proposals */

static bool bufs_ok(const fl_buf_t *b, size_t n) {
  if (n > 0 && b == NULL) return false;
  for (size_t i = 0; i < n; i++)
    if (b[i].len > 0 && b[i].data == NULL) return false;
  return true;
}

fl_status_t fl_proposal_build(const fl_proposal_spec_t *spec, const fl_signer_t *signer,
                              fl_sbuf_t *out, char tx_id[FL_TXID_HEX_LEN + 1]) {
  if (out == NULL) return FL_EINVAL;
  out->len = 0;
  if (spec == NULL || signer == NULL || spec->chaincode == NULL ||
      spec->chaincode[0] == '\0' || spec->n_args == 0 ||
      spec->n_args > FL_PROPOSAL_MAX_ARGS || spec->n_blobs > FL_PROPOSAL_MAX_BLOBS ||
      !bufs_ok(spec->args, spec->n_args) || !bufs_ok(spec->blobs, spec->n_blobs) ||
      !bufs_ok(&spec->transient, 1))
    return FL_EINVAL;
  uint8_t nonce[FL_NONCE_LEN];
  fl_header_t hdr;
  FL_FORWARD(fl_header_make(FL_HDR_ENDORSER_TX, spec->channel, spec->creator, nonce, &hdr));

  ProtobufCBinaryData *args = fl_calloc(spec->n_args, sizeof *args);
  ProtobufCBinaryData *blobs = fl_calloc(spec->n_blobs + 1, sizeof *blobs);
  for (size_t i = 0; i < spec->n_args; i++) args[i] = fl__pu_bin(spec->args[i]);
  for (size_t i = 0; i < spec->n_blobs; i++) blobs[i] = fl__pu_bin(spec->blobs[i]);
  Fl__Common__Header h;
  fl__common__header__init(&h);
  fl__pu_header_to_pb(&hdr, &h);
  Fl__Peer__Proposal p;
  fl__peer__proposal__init(&p);
  p.header = &h;
  p.chaincode = fl__pu_str(spec->chaincode);
  p.n_args = spec->n_args;
  p.args = args;
  p.n_blobs = spec->n_blobs;
  p.blobs = blobs;
  p.transient = fl__pu_bin(spec->transient);

  fl_sbuf_t pbytes = {0}, sig = {0};
  fl_status_t rc = FL_OK;
  if (protobuf_c_message_get_packed_size(&p.base) > FL_PU_MAX_MESSAGE - 128) {
    rc = FL_ETOOBIG;
    goto done;
  }
  fl__pu_pack(&p.base, &pbytes);
  rc = fl_signer_sign(signer, pbytes.data, pbytes.len, &sig);
  if (rc != FL_OK) goto done;
  Fl__Peer__SignedProposal sp;
  fl__peer__signed_proposal__init(&sp);
  sp.proposal_bytes = fl__pu_bin(fl_sbuf_view(&pbytes));
  sp.signature = fl__pu_bin(fl_sbuf_view(&sig));
  fl__pu_pack(&sp.base, out);
  if (tx_id != NULL) memcpy(tx_id, hdr.tx_id, sizeof hdr.tx_id);
done:
  fl_sbuf_free(&sig);
  fl_sbuf_free(&pbytes);
  fl_free(blobs);
  fl_free(args);
  return rc;
}

fl_status_t fl_proposal_decode(const uint8_t *proposal_bytes, size_t len,
                               fl_buf_t signature, fl_proposal_t **out,
                               const char **reason) {
  Fl__Peer__Proposal *pb = NULL;
  fl_proposal_t *p = NULL;
  fl_status_t rc;
  if (out == NULL || (proposal_bytes == NULL && len > 0) ||
      (signature.data == NULL && signature.len > 0))
    return FL__PU_FAIL(reason, FL_EINVAL, "proposal: no output or no input");
  *out = NULL;
  if (len > FL_PU_MAX_MESSAGE)
    return FL__PU_FAIL(reason, FL_ETOOBIG, "proposal: larger than the message limit");
  if (len == 0) return FL__PU_FAIL(reason, FL_EMALFORMED, "proposal: empty");
  pb = fl__peer__proposal__unpack(NULL, len, proposal_bytes);
  if (pb == NULL) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "proposal: bytes do not decode as a Proposal");
    goto fail;
  }
  if (pb->chaincode == NULL || pb->chaincode[0] == '\0') {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "proposal: chaincode name missing");
    goto fail;
  }
  if (pb->n_args == 0) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "proposal: no arguments (args[0] is the function)");
    goto fail;
  }
  if (pb->n_args > FL_PROPOSAL_MAX_ARGS || pb->n_blobs > FL_PROPOSAL_MAX_BLOBS) {
    rc = FL__PU_FAIL(reason, FL_ETOOBIG, "proposal: too many arguments or blobs");
    goto fail;
  }
  p = fl_calloc(1, sizeof *p);
  rc = fl__pu_header_from_pb(pb->header, &p->mem_, &p->header, FL__PU_IN_PROPOSAL, reason);
  if (rc != FL_OK) goto fail;
  if (p->header.type != FL_HDR_ENDORSER_TX) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "proposal: header type is not ENDORSER_TRANSACTION");
    goto fail;
  }
  p->chaincode = fl__pu_strdup(&p->mem_, pb->chaincode);
  p->n_args = pb->n_args;
  p->args = fl__pu_array(&p->mem_, pb->n_args, sizeof(fl_buf_t));
  for (size_t i = 0; i < pb->n_args; i++) p->args[i] = fl__pu_dup_bin(&p->mem_, pb->args[i]);
  p->n_blobs = pb->n_blobs;
  p->blobs = fl__pu_array(&p->mem_, pb->n_blobs, sizeof(fl_buf_t));
  for (size_t i = 0; i < pb->n_blobs; i++)
    p->blobs[i] = fl__pu_dup_bin(&p->mem_, pb->blobs[i]);
  p->transient = fl__pu_dup_bin(&p->mem_, pb->transient);
  p->proposal_bytes = fl__pu_dup(&p->mem_, proposal_bytes, len);
  p->signature = fl__pu_dup(&p->mem_, signature.data, signature.len);
  fl_sha256(proposal_bytes, len, p->proposal_hash);
  fl__peer__proposal__free_unpacked(pb, NULL);
  *out = p;
  return FL_OK;

fail:
  fl_proposal_free(p);
  if (pb != NULL) fl__peer__proposal__free_unpacked(pb, NULL);
  return rc;
}

fl_status_t fl_signed_proposal_decode(const uint8_t *data, size_t len,
                                      fl_proposal_t **out, const char **reason) {
  if (out == NULL || (data == NULL && len > 0))
    return FL__PU_FAIL(reason, FL_EINVAL, "signed proposal: no output or no input");
  *out = NULL;
  if (len > FL_PU_MAX_MESSAGE)
    return FL__PU_FAIL(reason, FL_ETOOBIG, "signed proposal: larger than the message limit");
  Fl__Peer__SignedProposal *sp = fl__peer__signed_proposal__unpack(NULL, len, data);
  if (sp == NULL)
    return FL__PU_FAIL(reason, FL_EMALFORMED,
                       "signed proposal: bytes do not decode as a SignedProposal");
  fl_status_t rc;
  if (sp->proposal_bytes.len == 0)
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "signed proposal: proposal bytes missing");
  else if (sp->signature.len == 0)
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "signed proposal: signature missing");
  else
    rc = fl_proposal_decode(sp->proposal_bytes.data, sp->proposal_bytes.len,
                            FL_BUF(sp->signature.data, sp->signature.len), out, reason);
  fl__peer__signed_proposal__free_unpacked(sp, NULL);
  return rc;
}

void fl_proposal_free(fl_proposal_t *p) {
  if (p == NULL) return;
  fl__pu_mem_free(&p->mem_);
  fl_free(p);
}

fl_status_t fl_proposal_verify_creator(const fl_proposal_t *p, fl_msp_t *msp,
                                       fl_role_t required, fl_msp_info_t *info) {
  if (p == NULL || msp == NULL) return FL_EINVAL;
  if (p->signature.len == 0) return FL_EBADSIG;
  return fl_msp_verify_signature(msp, p->header.creator.data, p->header.creator.len,
                                 p->proposal_bytes.data, p->proposal_bytes.len,
                                 p->signature.data, p->signature.len, required, info);
}

/* ------------------------------------------------- proposal response payload */

static void response_to_pb(const fl_response_t *r, Fl__Peer__Response *pb) {
  pb->status = r->status;
  pb->message = fl__pu_str(r->message);
  pb->payload = fl__pu_bin(r->payload);
}

static void response_from_pb(const Fl__Peer__Response *pb, void **mem, fl_response_t *r) {
  r->status = pb->status;
  r->message = fl__pu_strdup(mem, pb->message);
  r->payload = fl__pu_dup_bin(mem, pb->payload);
}

fl_status_t fl_resp_payload_encode(const fl_resp_payload_t *p, fl_sbuf_t *out) {
  if (out == NULL) return FL_EINVAL;
  out->len = 0;
  if (p == NULL || !bufs_ok(&p->results, 1) || !bufs_ok(&p->response.payload, 1) ||
      (p->has_event && !bufs_ok(&p->event.payload, 1)))
    return FL_EINVAL;
  Fl__Peer__Response resp;
  fl__peer__response__init(&resp);
  response_to_pb(&p->response, &resp);
  Fl__Peer__ChaincodeEvent ev;
  fl__peer__chaincode_event__init(&ev);
  if (p->has_event) {
    ev.chaincode = fl__pu_str(p->event.chaincode);
    ev.tx_id = fl__pu_str(p->event.tx_id);
    ev.name = fl__pu_str(p->event.name);
    ev.payload = fl__pu_bin(p->event.payload);
  }
  Fl__Peer__ProposalResponsePayload pb;
  fl__peer__proposal_response_payload__init(&pb);
  pb.proposal_hash = fl__pu_bin(FL_BUF(p->proposal_hash, FL_SHA256_LEN));
  pb.results = fl__pu_bin(p->results);
  pb.event = p->has_event ? &ev : NULL;
  pb.response = &resp;
  pb.chaincode_version = fl__pu_str(p->chaincode_version);
  if (protobuf_c_message_get_packed_size(&pb.base) > FL_PU_MAX_MESSAGE) return FL_ETOOBIG;
  fl__pu_pack(&pb.base, out);
  return FL_OK;
}

fl_status_t fl_resp_payload_decode(const uint8_t *data, size_t len,
                                   fl_resp_payload_t **out, const char **reason) {
  if (out == NULL || (data == NULL && len > 0))
    return FL__PU_FAIL(reason, FL_EINVAL, "response payload: no output or no input");
  *out = NULL;
  if (len > FL_PU_MAX_MESSAGE)
    return FL__PU_FAIL(reason, FL_ETOOBIG, "response payload: larger than the message limit");
  Fl__Peer__ProposalResponsePayload *pb =
      fl__peer__proposal_response_payload__unpack(NULL, len, data);
  if (pb == NULL)
    return FL__PU_FAIL(reason, FL_EMALFORMED,
                       "response payload: bytes do not decode as a ProposalResponsePayload");
  fl_status_t rc = FL_OK;
  if (pb->proposal_hash.len != FL_SHA256_LEN) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "response payload: proposal hash is not 32 bytes");
  } else if (pb->response == NULL) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "response payload: response missing");
  } else {
    fl_resp_payload_t *p = fl_calloc(1, sizeof *p);
    memcpy(p->proposal_hash, pb->proposal_hash.data, FL_SHA256_LEN);
    p->results = fl__pu_dup_bin(&p->mem_, pb->results);
    if (pb->event != NULL) {
      p->has_event = true;
      p->event.chaincode = fl__pu_strdup(&p->mem_, pb->event->chaincode);
      p->event.tx_id = fl__pu_strdup(&p->mem_, pb->event->tx_id);
      p->event.name = fl__pu_strdup(&p->mem_, pb->event->name);
      p->event.payload = fl__pu_dup_bin(&p->mem_, pb->event->payload);
    }
    response_from_pb(pb->response, &p->mem_, &p->response);
    p->chaincode_version = fl__pu_strdup(&p->mem_, pb->chaincode_version);
    *out = p;
  }
  fl__peer__proposal_response_payload__free_unpacked(pb, NULL);
  return rc;
}

void fl_resp_payload_free(fl_resp_payload_t *p) {
  if (p == NULL) return;
  fl__pu_mem_free(&p->mem_);
  fl_free(p);
}

/* ------------------------------------------------------------- endorsements */

fl_status_t fl_endorsement_sign(fl_buf_t payload, fl_buf_t endorser,
                                const fl_signer_t *signer, fl_sbuf_t *sig_out) {
  if (sig_out == NULL) return FL_EINVAL;
  sig_out->len = 0;
  if (signer == NULL || payload.len == 0 || endorser.len == 0 || payload.data == NULL ||
      endorser.data == NULL)
    return FL_EINVAL;
  fl_sbuf_t msg = {0};
  fl_sbuf_append(&msg, payload.data, payload.len);
  fl_sbuf_append(&msg, endorser.data, endorser.len);
  fl_status_t rc = fl_signer_sign(signer, msg.data, msg.len, sig_out);
  fl_sbuf_free(&msg);
  return rc;
}

fl_status_t fl_endorsement_verify(fl_buf_t payload, const fl_endorsement_t *e,
                                  fl_msp_t *msp, fl_role_t required, fl_msp_info_t *info) {
  if (e == NULL || msp == NULL || (payload.data == NULL && payload.len > 0)) return FL_EINVAL;
  if (e->signature.len == 0) return FL_EBADSIG;
  if (e->endorser.len == 0) return FL_EMALFORMED;
  fl_sbuf_t msg = {0};
  fl_sbuf_append(&msg, payload.data, payload.len);
  fl_sbuf_append(&msg, e->endorser.data, e->endorser.len);
  fl_status_t rc = fl_msp_verify_signature(msp, e->endorser.data, e->endorser.len, msg.data,
                                           msg.len, e->signature.data, e->signature.len,
                                           required, info);
  fl_sbuf_free(&msg);
  return rc;
}

/* ------------------------------------------------------- proposal responses */

fl_status_t fl_proposal_response_encode(const fl_proposal_response_t *r, fl_sbuf_t *out) {
  if (out == NULL) return FL_EINVAL;
  out->len = 0;
  if (r == NULL || !bufs_ok(&r->payload, 1) || !bufs_ok(&r->response.payload, 1) ||
      (r->has_endorsement &&
       (!bufs_ok(&r->endorsement.endorser, 1) || !bufs_ok(&r->endorsement.signature, 1))))
    return FL_EINVAL;
  Fl__Peer__Response resp;
  fl__peer__response__init(&resp);
  response_to_pb(&r->response, &resp);
  Fl__Peer__Endorsement en;
  fl__peer__endorsement__init(&en);
  en.endorser = fl__pu_bin(r->endorsement.endorser);
  en.signature = fl__pu_bin(r->endorsement.signature);
  Fl__Peer__ProposalResponse pb;
  fl__peer__proposal_response__init(&pb);
  pb.response = &resp;
  pb.payload = fl__pu_bin(r->payload);
  pb.endorsement = r->has_endorsement ? &en : NULL;
  if (protobuf_c_message_get_packed_size(&pb.base) > FL_PU_MAX_MESSAGE) return FL_ETOOBIG;
  fl__pu_pack(&pb.base, out);
  return FL_OK;
}

fl_status_t fl_proposal_response_decode(const uint8_t *data, size_t len,
                                        fl_proposal_response_t **out, const char **reason) {
  if (out == NULL || (data == NULL && len > 0))
    return FL__PU_FAIL(reason, FL_EINVAL, "proposal response: no output or no input");
  *out = NULL;
  if (len > FL_PU_MAX_MESSAGE)
    return FL__PU_FAIL(reason, FL_ETOOBIG, "proposal response: larger than the message limit");
  Fl__Peer__ProposalResponse *pb = fl__peer__proposal_response__unpack(NULL, len, data);
  if (pb == NULL)
    return FL__PU_FAIL(reason, FL_EMALFORMED,
                       "proposal response: bytes do not decode as a ProposalResponse");
  fl_status_t rc = FL_OK;
  if (pb->response == NULL) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "proposal response: response missing");
  } else if (pb->endorsement != NULL &&
             (pb->endorsement->endorser.len == 0 || pb->endorsement->signature.len == 0)) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED,
                     "proposal response: endorsement without endorser or signature");
  } else {
    fl_proposal_response_t *r = fl_calloc(1, sizeof *r);
    response_from_pb(pb->response, &r->mem_, &r->response);
    r->payload = fl__pu_dup_bin(&r->mem_, pb->payload);
    if (pb->endorsement != NULL) {
      r->has_endorsement = true;
      r->endorsement.endorser = fl__pu_dup_bin(&r->mem_, pb->endorsement->endorser);
      r->endorsement.signature = fl__pu_dup_bin(&r->mem_, pb->endorsement->signature);
    }
    *out = r;
  }
  fl__peer__proposal_response__free_unpacked(pb, NULL);
  return rc;
}

void fl_proposal_response_free(fl_proposal_response_t *r) {
  if (r == NULL) return;
  fl__pu_mem_free(&r->mem_);
  fl_free(r);
}

/* ------------------------------------------------------------- transactions */

/* True when signer's public key is the one in the certificate of the
 * serialized identity `creator`. */
static bool signer_is_creator(fl_buf_t creator, const fl_signer_t *signer) {
  Fl__Msp__SerializedIdentity *sid =
      fl__msp__serialized_identity__unpack(NULL, creator.len, creator.data);
  if (sid == NULL) return false;
  fl_cert_t *cert = NULL;
  bool same = false;
  if (fl_cert_from_pem(sid->id_bytes.data, sid->id_bytes.len, &cert) == FL_OK &&
      fl_cert_pubkey(cert) != NULL) {
    fl_verifier_t *mine = fl_signer_verifier(signer);
    fl_sbuf_t a = {0}, b = {0};
    same = fl_verifier_to_pem(mine, &a) == FL_OK &&
           fl_verifier_to_pem(fl_cert_pubkey(cert), &b) == FL_OK &&
           fl_buf_eq(fl_sbuf_view(&a), fl_sbuf_view(&b));
    fl_sbuf_free(&a);
    fl_sbuf_free(&b);
    fl_verifier_free(mine);
  }
  fl_cert_free(cert);
  fl__msp__serialized_identity__free_unpacked(sid, NULL);
  return same;
}

fl_status_t fl_tx_assemble(const fl_proposal_t *prop, const fl_endorsed_t *ends, size_t n,
                           const fl_signer_t *client, fl_sbuf_t *out, const char **reason) {
  if (out == NULL) return FL__PU_FAIL(reason, FL_EINVAL, "transaction: no output");
  out->len = 0;
  if (prop == NULL || client == NULL || ends == NULL || n == 0)
    return FL__PU_FAIL(reason, FL_EINVAL, "transaction: missing proposal, signer or endorsements");
  if (n > FL_TX_MAX_ENDORSEMENTS)
    return FL__PU_FAIL(reason, FL_EINVAL, "transaction: too many endorsements");
  if (prop->signature.len == 0)
    return FL__PU_FAIL(reason, FL_EINVAL, "transaction: proposal has no client signature");
  if (!signer_is_creator(prop->header.creator, client))
    return FL__PU_FAIL(reason, FL_EPERM, "transaction: signer is not the proposal's creator");
  for (size_t i = 0; i < n; i++) {
    if (ends[i].payload.len == 0 || ends[i].payload.data == NULL)
      return FL__PU_FAIL(reason, FL_EMALFORMED, "transaction: an endorser's payload is empty");
    if (!fl_buf_eq(ends[i].payload, ends[0].payload))
      return FL__PU_FAIL(reason, FL_ECONFLICT,
                         "transaction: endorsers signed different response payloads");
    if (ends[i].endorsement.endorser.len == 0 || ends[i].endorsement.signature.len == 0 ||
        ends[i].endorsement.endorser.data == NULL || ends[i].endorsement.signature.data == NULL)
      return FL__PU_FAIL(reason, FL_EMALFORMED,
                         "transaction: an endorsement lacks endorser or signature");
  }
  fl_resp_payload_t *rp = NULL;
  fl_status_t rc = fl_resp_payload_decode(ends[0].payload.data, ends[0].payload.len, &rp, reason);
  if (rc != FL_OK) return rc;
  bool same = memcmp(rp->proposal_hash, prop->proposal_hash, FL_SHA256_LEN) == 0;
  fl_resp_payload_free(rp);
  if (!same)
    return FL__PU_FAIL(reason, FL_EMALFORMED,
                       "transaction: response payload is for a different proposal");

  Fl__Peer__Endorsement *es = fl_calloc(n, sizeof *es);
  Fl__Peer__Endorsement **pes = fl_calloc(n, sizeof *pes);
  for (size_t i = 0; i < n; i++) {
    fl__peer__endorsement__init(&es[i]);
    es[i].endorser = fl__pu_bin(ends[i].endorsement.endorser);
    es[i].signature = fl__pu_bin(ends[i].endorsement.signature);
    pes[i] = &es[i];
  }
  Fl__Peer__Transaction tx;
  fl__peer__transaction__init(&tx);
  tx.proposal = fl__pu_bin(prop->proposal_bytes);
  tx.proposal_signature = fl__pu_bin(prop->signature);
  tx.response_payload = fl__pu_bin(ends[0].payload);
  tx.n_endorsements = n;
  tx.endorsements = pes;
  fl_sbuf_t txb = {0};
  if (protobuf_c_message_get_packed_size(&tx.base) > FL_PU_MAX_MESSAGE - 4096) {
    rc = FL__PU_FAIL(reason, FL_ETOOBIG, "transaction: larger than the message limit");
  } else {
    fl__pu_pack(&tx.base, &txb);
    rc = fl_envelope_build_with_header(&prop->header, client, fl_sbuf_view(&txb), out);
    if (rc != FL_OK) fl__pu_reason(reason, "transaction: cannot build the envelope");
  }
  fl_sbuf_free(&txb);
  fl_free(pes);
  fl_free(es);
  return rc;
}

fl_status_t fl_tx_decode(const fl_envelope_t *env, fl_tx_t **out, const char **reason) {
  Fl__Peer__Transaction *pb = NULL;
  fl_tx_t *tx = NULL;
  fl_status_t rc;
  if (out == NULL || env == NULL)
    return FL__PU_FAIL(reason, FL_EINVAL, "transaction: no output or no envelope");
  *out = NULL;
  if (env->header.type != FL_HDR_ENDORSER_TX)
    return FL__PU_FAIL(reason, FL_EINVAL, "transaction: envelope is not an ENDORSER_TRANSACTION");
  pb = fl__peer__transaction__unpack(NULL, env->data.len, env->data.data);
  if (pb == NULL) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED,
                     "transaction: envelope data does not decode as a Transaction");
    goto fail;
  }
  if (pb->proposal_signature.len == 0) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "transaction: client signature missing");
    goto fail;
  }
  if (pb->n_endorsements == 0) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "transaction: no endorsements");
    goto fail;
  }
  if (pb->n_endorsements > FL_TX_MAX_ENDORSEMENTS) {
    rc = FL__PU_FAIL(reason, FL_ETOOBIG, "transaction: too many endorsements");
    goto fail;
  }
  for (size_t i = 0; i < pb->n_endorsements; i++) {
    const Fl__Peer__Endorsement *e = pb->endorsements[i];
    if (e == NULL || e->endorser.len == 0 || e->signature.len == 0) {
      rc = FL__PU_FAIL(reason, FL_EMALFORMED,
                       "transaction: an endorsement lacks endorser or signature");
      goto fail;
    }
  }
  tx = fl_calloc(1, sizeof *tx);
  rc = fl_proposal_decode(pb->proposal.data, pb->proposal.len,
                          FL_BUF(pb->proposal_signature.data, pb->proposal_signature.len),
                          &tx->proposal, reason);
  if (rc != FL_OK) goto fail;
  const fl_header_t *ph = &tx->proposal->header, *eh = &env->header;
  if (ph->type != eh->type || strcmp(ph->channel, eh->channel) != 0 ||
      strcmp(ph->tx_id, eh->tx_id) != 0 || !fl_buf_eq(ph->creator, eh->creator) ||
      !fl_buf_eq(ph->nonce, eh->nonce)) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED,
                     "transaction: proposal header differs from the envelope header");
    goto fail;
  }
  rc = fl_resp_payload_decode(pb->response_payload.data, pb->response_payload.len,
                              &tx->payload, reason);
  if (rc != FL_OK) goto fail;
  if (memcmp(tx->payload->proposal_hash, tx->proposal->proposal_hash, FL_SHA256_LEN) != 0) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED,
                     "transaction: response payload is for a different proposal");
    goto fail;
  }
  tx->response_payload = fl__pu_dup_bin(&tx->mem_, pb->response_payload);
  tx->n_endorsements = pb->n_endorsements;
  tx->endorsements = fl__pu_array(&tx->mem_, pb->n_endorsements, sizeof(fl_endorsement_t));
  for (size_t i = 0; i < pb->n_endorsements; i++) {
    tx->endorsements[i].endorser = fl__pu_dup_bin(&tx->mem_, pb->endorsements[i]->endorser);
    tx->endorsements[i].signature = fl__pu_dup_bin(&tx->mem_, pb->endorsements[i]->signature);
  }
  fl__peer__transaction__free_unpacked(pb, NULL);
  *out = tx;
  return FL_OK;

fail:
  fl_tx_free(tx);
  if (pb != NULL) fl__peer__transaction__free_unpacked(pb, NULL);
  return rc;
}

void fl_tx_free(fl_tx_t *tx) {
  if (tx == NULL) return;
  fl_proposal_free(tx->proposal);
  fl_resp_payload_free(tx->payload);
  fl__pu_mem_free(&tx->mem_);
  fl_free(tx);
}
