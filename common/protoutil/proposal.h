/* SPDX-License-Identifier: Apache-2.0
 *
 * proposal.h: the endorsement flow's messages (fl.peer): signed proposals,
 * proposal response payloads, endorsements, proposal responses, and the
 * Transaction a client assembles from them and wraps in an Envelope.
 *
 *   SignedProposal { proposal_bytes, signature }   creator signs proposal_bytes
 *   ProposalResponsePayload { proposal_hash = SHA-256(proposal_bytes),
 *                             results (TxRwSet bytes), event, response,
 *                             chaincode_version }
 *   Endorsement { endorser, signature }   endorser signs payload || endorser
 *   Transaction { proposal, proposal_signature, response_payload,
 *                 endorsements[] }        every endorser signed the SAME
 *                                         response_payload bytes
 *   Envelope(ENDORSER_TRANSACTION, header = the proposal's header, data =
 *            Transaction bytes), signed by the proposal's creator.
 *
 * The transaction envelope reuses the proposal header unchanged, so the tx
 * id the client saw at proposal time is the one committed.
 */
#ifndef FL_PROTOUTIL_PROPOSAL_H
#define FL_PROTOUTIL_PROPOSAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/protoutil.h"

#define FL_PROPOSAL_MAX_ARGS 1024   /* args per proposal */
#define FL_PROPOSAL_MAX_BLOBS 256   /* blobs per proposal */
#define FL_TX_MAX_ENDORSEMENTS 256  /* endorsements per transaction */

/* ---------------------------------------------------------------- proposals */

/** What a proposal says, as a builder input. Everything borrowed. */
typedef struct fl_proposal_spec_s {
  const char *channel;    /* required */
  fl_buf_t creator;       /* serialized identity of the signer, required */
  const char *chaincode;  /* chaincode name, required */
  const fl_buf_t *args;   /* args[0] is the function name; n_args >= 1 */
  size_t n_args;
  const fl_buf_t *blobs;  /* large arguments, may be none */
  size_t n_blobs;
  fl_buf_t transient;     /* never recorded; may be empty */
} fl_proposal_spec_t;

/** A decoded proposal. All views point into memory the struct owns. */
typedef struct fl_proposal_s {
  fl_header_t header;                  /* type ENDORSER_TRANSACTION */
  const char *chaincode;
  fl_buf_t *args;
  size_t n_args;                       /* >= 1 */
  fl_buf_t *blobs;
  size_t n_blobs;
  fl_buf_t transient;
  fl_buf_t proposal_bytes;             /* exact signed Proposal bytes */
  fl_buf_t signature;                  /* creator's signature (may be empty
                                          when decoded without one) */
  uint8_t proposal_hash[FL_SHA256_LEN]; /* SHA-256(proposal_bytes) */
  void *mem_;                          /* private */
} fl_proposal_t;

/** Builds a SignedProposal with a fresh ENDORSER_TRANSACTION header (nonce,
 *  tx id, timestamp, as fl_envelope_build) signed by signer. Borrows
 *  inputs; out's contents are replaced; tx_id (optional) receives the tx
 *  id. Returns FL_OK; FL_EINVAL (missing channel, creator, chaincode, no
 *  args, too many args or blobs, NULL signer); FL_ETOOBIG; FL_ECRYPTO. */
fl_status_t fl_proposal_build(const fl_proposal_spec_t *spec, const fl_signer_t *signer,
                              fl_sbuf_t *out /* out */,
                              char tx_id[FL_TXID_HEX_LEN + 1] /* out, optional */);

/** Decodes and validates SignedProposal bytes: the proposal decodes, its
 *  header is a valid ENDORSER_TRANSACTION header (tx id recomputed),
 *  chaincode named, at least one arg, signature present, counts bounded.
 *  The signature is not verified (fl_proposal_verify_creator). Borrows
 *  data. Returns FL_OK with *out owned (fl_proposal_free); FL_ETOOBIG;
 *  FL_EMALFORMED with *reason (optional). */
fl_status_t fl_signed_proposal_decode(const uint8_t *data, size_t len,
                                      fl_proposal_t **out /* out */,
                                      const char **reason /* out, optional */);

/** Like fl_signed_proposal_decode for bare Proposal bytes with a separate
 *  signature (as a Transaction carries them); signature may be empty. */
fl_status_t fl_proposal_decode(const uint8_t *proposal_bytes, size_t len,
                               fl_buf_t signature, fl_proposal_t **out /* out */,
                               const char **reason /* out, optional */);

/** Frees p. NULL is fine. */
void fl_proposal_free(fl_proposal_t *p);

/** Verifies the creator's signature over proposal_bytes and the creator's
 *  membership with role `required` (FL_ROLE_NONE: any). Returns what
 *  fl_msp_verify_signature returns (FL_EBADSIG for an empty signature). */
fl_status_t fl_proposal_verify_creator(const fl_proposal_t *p, fl_msp_t *msp,
                                       fl_role_t required,
                                       fl_msp_info_t *info /* out, optional */);

/* ------------------------------------------------- proposal response payload */

/** fl.peer.Response: a chaincode's or an endorser's verdict. */
typedef struct fl_response_s {
  int32_t status;        /* 200 OK, 400, 403, 404, 500 as Fabric's shim */
  const char *message;   /* never NULL ("" when empty) */
  fl_buf_t payload;
} fl_response_t;

/** fl.peer.ChaincodeEvent. */
typedef struct fl_cc_event_s {
  const char *chaincode, *tx_id, *name; /* never NULL */
  fl_buf_t payload;
} fl_cc_event_t;

/** fl.peer.ProposalResponsePayload: what endorsers agree on. As encoder
 *  input everything is borrowed; a decoded one owns its memory. */
typedef struct fl_resp_payload_s {
  uint8_t proposal_hash[FL_SHA256_LEN];
  fl_buf_t results;                 /* serialized TxRwSet (rwset.h) */
  bool has_event;
  fl_cc_event_t event;              /* meaningful when has_event */
  fl_response_t response;
  const char *chaincode_version;    /* never NULL when decoded */
  void *mem_;                       /* private; NULL for encoder input */
} fl_resp_payload_t;

/** Encodes p into out (contents replaced). Borrows p. Returns FL_OK,
 *  FL_EINVAL, FL_ETOOBIG. */
fl_status_t fl_resp_payload_encode(const fl_resp_payload_t *p, fl_sbuf_t *out /* out */);

/** Decodes and validates (proposal hash 32 bytes, response present).
 *  Borrows data; *out owned (fl_resp_payload_free). FL_ETOOBIG,
 *  FL_EMALFORMED with *reason. */
fl_status_t fl_resp_payload_decode(const uint8_t *data, size_t len,
                                   fl_resp_payload_t **out /* out */,
                                   const char **reason /* out, optional */);

/** Frees a decoded payload. NULL is fine. */
void fl_resp_payload_free(fl_resp_payload_t *p);

/* ------------------------------------------------------------- endorsements */

/** fl.peer.Endorsement; views (borrowed or owned as the holder says). */
typedef struct fl_endorsement_s {
  fl_buf_t endorser;   /* serialized identity of the endorsing peer */
  fl_buf_t signature;  /* over payload bytes || endorser bytes */
} fl_endorsement_t;

/** Signs payload || endorser with signer into sig_out (replaced). Borrows
 *  inputs. Returns FL_OK, FL_EINVAL (empty payload or endorser), FL_ECRYPTO. */
fl_status_t fl_endorsement_sign(fl_buf_t payload, fl_buf_t endorser,
                                const fl_signer_t *signer, fl_sbuf_t *sig_out /* out */);

/** Verifies an endorsement over payload bytes through the MSP, requiring the
 *  endorser's role `required` (usually FL_ROLE_PEER). Returns what
 *  fl_msp_verify_signature returns; FL_EBADSIG for an empty signature. */
fl_status_t fl_endorsement_verify(fl_buf_t payload, const fl_endorsement_t *e,
                                  fl_msp_t *msp, fl_role_t required,
                                  fl_msp_info_t *info /* out, optional */);

/* ------------------------------------------------------- proposal responses */

/** fl.peer.ProposalResponse: an endorser's answer to Peer/Endorse. */
typedef struct fl_proposal_response_s {
  fl_response_t response;      /* the endorser's own verdict */
  fl_buf_t payload;            /* ProposalResponsePayload bytes (may be empty
                                  when the endorser refused) */
  bool has_endorsement;
  fl_endorsement_t endorsement;
  void *mem_;                  /* private; NULL for encoder input */
} fl_proposal_response_t;

/** Encodes r into out (replaced). Borrows r. FL_OK, FL_EINVAL, FL_ETOOBIG. */
fl_status_t fl_proposal_response_encode(const fl_proposal_response_t *r,
                                        fl_sbuf_t *out /* out */);

/** Decodes (response present; an endorsement, when present, has endorser and
 *  signature). *out owned (fl_proposal_response_free). */
fl_status_t fl_proposal_response_decode(const uint8_t *data, size_t len,
                                        fl_proposal_response_t **out /* out */,
                                        const char **reason /* out, optional */);

/** Frees a decoded response. NULL is fine. */
void fl_proposal_response_free(fl_proposal_response_t *r);

/* ------------------------------------------------------------- transactions */

/** One endorser's contribution to a transaction: the payload bytes it
 *  signed and its endorsement. Borrowed. */
typedef struct fl_endorsed_s {
  fl_buf_t payload;
  fl_endorsement_t endorsement;
} fl_endorsed_t;

/** Assembles a Transaction from a decoded signed proposal (its bytes and
 *  the client's signature) and n >= 1 endorsements, and wraps it into an
 *  ENDORSER_TRANSACTION Envelope with the proposal's header, signed by
 *  client (who must be the proposal's creator). Refuses (FL_ECONFLICT) when
 *  the endorsers' payload bytes differ; FL_EMALFORMED when the payload does
 *  not decode or its proposal hash is not SHA-256 of the proposal, or an
 *  endorsement lacks endorser or signature; FL_EPERM when client's key is
 *  not the key in the proposal creator's certificate; FL_EINVAL for missing
 *  inputs or n over FL_TX_MAX_ENDORSEMENTS. Endorsement signatures are not
 *  verified here (fl_endorsement_verify). Borrows
 *  inputs; out (replaced) receives the envelope bytes. */
fl_status_t fl_tx_assemble(const fl_proposal_t *prop, const fl_endorsed_t *ends, size_t n,
                           const fl_signer_t *client, fl_sbuf_t *out /* out */,
                           const char **reason /* out, optional */);

/** A decoded transaction: every part as views into memory it owns. */
typedef struct fl_tx_s {
  fl_proposal_t *proposal;          /* owned; signature = client's */
  fl_buf_t response_payload;        /* exact bytes the endorsers signed */
  fl_resp_payload_t *payload;       /* owned; response_payload decoded */
  fl_endorsement_t *endorsements;
  size_t n_endorsements;            /* >= 1 */
  void *mem_;                       /* private */
} fl_tx_t;

/** Decodes the Transaction in a decoded ENDORSER_TRANSACTION envelope and
 *  validates it: the proposal decodes and its header equals the envelope's
 *  (type, channel, tx id, creator, nonce); the client signature is present;
 *  the response payload decodes and its proposal hash is SHA-256 of the
 *  proposal; 1..FL_TX_MAX_ENDORSEMENTS endorsements with endorser and
 *  signature. Borrows env (the result does not reference it). Signatures
 *  are not verified (fl_proposal_verify_creator, fl_endorsement_verify).
 *  Returns FL_OK with *out owned (fl_tx_free); FL_EINVAL (env NULL or not
 *  an ENDORSER_TRANSACTION); FL_EMALFORMED with *reason. */
fl_status_t fl_tx_decode(const fl_envelope_t *env, fl_tx_t **out /* out */,
                         const char **reason /* out, optional */);

/** Frees tx. NULL is fine. */
void fl_tx_free(fl_tx_t *tx);

#endif /* FL_PROTOUTIL_PROPOSAL_H */
