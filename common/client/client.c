/* SPDX-License-Identifier: Apache-2.0
 *
 * client.c: the async gateway client (client.h): transactions as small
 * state machines over pipelined RPC calls, queries, and Deliver streams.
 *
 * Invariants (loop thread only):
 *   1. every operation (op_t, qop_t, dop_t) counts once in c->inflight from
 *      the moment its first RPC call is accepted until its user callback has
 *      returned; an operation whose first call is refused is freed without
 *      a callback;
 *   2. an operation has at most one RPC call outstanding; each RPC
 *      completion either starts the next call of the operation or finishes
 *      it (user callback exactly once, then free);
 *   3. a transaction's proposal bytes (op->sp) do not change after step 1,
 *      so the views prop_bytes/prop_sig into them stay valid;
 *   4. nothing is submitted unless check_prepared accepted the envelope.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/client/client.h"
#include "common/protoutil/pb.h"
#include "common/crypto/hash.h"
#include "common/net/rpc.h"
#include "common/protoutil/proposal.h"
#include "fl/common/common.pb-c.h"

#define DEFAULT_CALL_TIMEOUT_MS 30000u
#define DEFAULT_COMMIT_TIMEOUT_MS 60000u

struct fl_client_s {
  uv_loop_t *loop;
  fl_rpc_client_t *rpc;
  const fl_client_identity_t *id;
  char *channel;
  uint32_t call_timeout_ms, commit_timeout_ms;
  fl_msp_t *msp;
  void (*on_connect)(fl_client_t *, fl_status_t, void *);
  void (*on_disconnect)(fl_client_t *, fl_status_t, void *);
  void *arg;
  void (*close_cb)(fl_client_t *, void *);
  void *close_arg;
  size_t inflight;
};

/* ---- results ------------------------------------------------------------ */

const char *fl_client_code_name(int32_t code) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&fl__common__tx_validation_code__descriptor, code);
  return v ? v->name : "UNKNOWN";
}

fl_status_t fl_client_code_status(int32_t code) {
  switch (code) {
  case FL__COMMON__TX_VALIDATION_CODE__VALID: return FL_OK;
  case FL__COMMON__TX_VALIDATION_CODE__MVCC_READ_CONFLICT:
  case FL__COMMON__TX_VALIDATION_CODE__PHANTOM_READ_CONFLICT:
  case FL__COMMON__TX_VALIDATION_CODE__DUPLICATE_TXID: return FL_ECONFLICT;
  case FL__COMMON__TX_VALIDATION_CODE__BAD_CREATOR_SIGNATURE:
  case FL__COMMON__TX_VALIDATION_CODE__BAD_ENDORSEMENT: return FL_EBADSIG;
  case FL__COMMON__TX_VALIDATION_CODE__ENDORSEMENT_POLICY_FAILURE:
  case FL__COMMON__TX_VALIDATION_CODE__CREATOR_NOT_AUTHORIZED: return FL_EPERM;
  case FL__COMMON__TX_VALIDATION_CODE__CREATOR_REVOKED: return FL_EREVOKED;
  default: return FL_EMALFORMED;
  }
}

static fl_status_t cc_error_status(int32_t s) {
  return s == 404 ? FL_NOTFOUND : s == 403 ? FL_EPERM : FL_EINVAL;
}

void fl_client_result_clear(fl_client_result_t *r) {
  if (r == NULL) return;
  fl_free(r->mem_);
  memset(r, 0, sizeof *r);
}

/* Deep copy for the blocking API: one allocation holds the strings and the
 * payload. */
static void result_copy(fl_client_result_t *dst, const fl_client_result_t *src) {
  size_t el = strlen(src->error), ml = strlen(src->cc_message);
  uint8_t *mem = fl_malloc(el + ml + 2 + src->payload.len);
  memcpy(mem, src->error, el + 1);
  memcpy(mem + el + 1, src->cc_message, ml + 1);
  if (src->payload.len) memcpy(mem + el + ml + 2, src->payload.data, src->payload.len);
  *dst = *src;
  dst->mem_ = mem;
  dst->error = (const char *)mem;
  dst->cc_message = (const char *)mem + el + 1;
  dst->payload = FL_BUF(mem + el + ml + 2, src->payload.len);
}

/* ---- response parsing ---------------------------------------------------- */

typedef struct resp_view_s {
  bool present;
  int32_t status;
  fl_buf_t message, payload;
} resp_view_t;

/* fl.peer.Response {1 sint32 status, 2 string message, 3 bytes payload}. */
static bool parse_response(fl_buf_t b, resp_view_t *out) {
  memset(out, 0, sizeof *out);
  out->present = true;
  fl__pb_reader_t r;
  fl__pb_field_t f;
  fl__pb_reader_init(&r, b);
  while (fl__pb_next(&r, &f)) {
    if (f.field == 1 && f.wire == 0) out->status = (int32_t)fl__pb_zigzag(f.v);
    else if (f.field == 2 && f.wire == 2) out->message = f.bytes;
    else if (f.field == 3 && f.wire == 2) out->payload = f.bytes;
  }
  return !r.bad;
}

/* ---- transactions ------------------------------------------------------- */

typedef enum op_kind_e { OP_SUBMIT, OP_EVALUATE, OP_STATUS } op_kind_t;

typedef struct op_s {
  fl_client_t *c;
  op_kind_t kind;
  bool wait_commit;
  fl_client_result_cb cb;
  void *arg;
  char tx_id[FL_TXID_HEX_LEN + 1];
  fl_sbuf_t sp;               /* our SignedProposal bytes (invariant 3) */
  fl_buf_t prop_bytes, prop_sig;
  fl_sbuf_t env;              /* the client-signed transaction envelope */
  int32_t cc_status;
  char *cc_message;
  fl_sbuf_t payload;
  bool committed;
  int32_t code;
  uint64_t block_number;
  char *error;
} op_t;

static void op_free(op_t *op) {
  fl_sbuf_free(&op->sp);
  fl_sbuf_free(&op->env);
  fl_sbuf_free(&op->payload);
  fl_free(op->cc_message);
  fl_free(op->error);
  fl_free(op);
}

/* Invariant 1-2: the user callback, then free. */
static void op_finish(op_t *op, fl_status_t st) {
  fl_client_result_t r = {
      .status = st,
      .error = op->error ? op->error : st == FL_OK ? "" : fl_status_str(st),
      .cc_status = op->cc_status,
      .cc_message = op->cc_message ? op->cc_message : "",
      .payload = fl_sbuf_view(&op->payload),
      .committed = op->committed,
      .code = op->code,
      .block_number = op->block_number,
  };
  memcpy(r.tx_id, op->tx_id, sizeof r.tx_id);
  op->c->inflight--;
  op->cb(op->arg, &r);
  op_free(op);
}

static void op_fail(op_t *op, fl_status_t st, char *error /* owned */) {
  fl_free(op->error);
  op->error = error;
  op_finish(op, st);
}

static void set_cc(op_t *op, const resp_view_t *rv) {
  op->cc_status = rv->status;
  fl_free(op->cc_message);
  op->cc_message = rv->message.len
                       ? fl_strndup((const char *)rv->message.data, rv->message.len)
                       : fl_strdup("");
  op->payload.len = 0;
  if (rv->payload.len) fl_sbuf_append(&op->payload, rv->payload.data, rv->payload.len);
}

static char *call_error(const char *what, fl_status_t st, const char *errmsg) {
  return fl_sprintf("%s: %s", what, errmsg && errmsg[0] ? errmsg : fl_status_str(st));
}

static void on_commit_status(void *arg, fl_status_t st, const char *errmsg, fl_buf_t reply);

static fl_status_t start_commit_status(op_t *op) {
  fl_client_t *c = op->c;
  fl_buf_t creator = fl_client_identity_creator(c->id);
  fl_sbuf_t req = {0}, sig = {0}, msg = {0};
  fl__pb_put_bytes(&req, 1, op->tx_id, strlen(op->tx_id));
  fl__pb_put_bytes(&req, 2, creator.data, creator.len);
  fl_status_t rc = fl_signer_sign(fl_client_identity_signer(c->id), req.data, req.len, &sig);
  if (rc == FL_OK) {
    fl__pb_put_bytes(&msg, 1, req.data, req.len);
    fl__pb_put_bytes(&msg, 2, sig.data, sig.len);
    rc = fl_rpc_client_unary(c->rpc, "Gateway/CommitStatus", fl_sbuf_view(&msg),
                             c->commit_timeout_ms, on_commit_status, op, NULL);
  }
  fl_sbuf_free(&req);
  fl_sbuf_free(&sig);
  fl_sbuf_free(&msg);
  return rc;
}

static void on_commit_status(void *arg, fl_status_t st, const char *errmsg, fl_buf_t reply) {
  op_t *op = arg;
  if (st != FL_OK) {
    op_fail(op, st, call_error("commit status", st, errmsg));
    return;
  }
  fl__pb_reader_t r;
  fl__pb_field_t f;
  fl__pb_reader_init(&r, reply);
  int64_t code = 0;
  uint64_t block = 0;
  while (fl__pb_next(&r, &f)) {
    if (f.field == 1 && f.wire == 0) code = (int64_t)f.v;
    else if (f.field == 2 && f.wire == 0) block = f.v;
  }
  if (r.bad || code < INT32_MIN || code > INT32_MAX) {
    op_fail(op, FL_EPROTO, fl_strdup("commit status: malformed response"));
    return;
  }
  op->committed = true;
  op->code = (int32_t)code;
  op->block_number = block;
  fl_status_t vst = fl_client_code_status(op->code);
  if (vst != FL_OK) {
    op_fail(op, vst,
            fl_sprintf("transaction %s invalid in block %llu: %s", op->tx_id,
                       (unsigned long long)block, fl_client_code_name(op->code)));
    return;
  }
  op_finish(op, FL_OK);
}

static void on_submit(void *arg, fl_status_t st, const char *errmsg, fl_buf_t reply) {
  (void)reply;
  op_t *op = arg;
  if (st != FL_OK) {
    op_fail(op, st, call_error("submit", st, errmsg));
    return;
  }
  if (!op->wait_commit) {
    op_finish(op, FL_OK);
    return;
  }
  fl_status_t rc = start_commit_status(op);
  if (rc != FL_OK) op_fail(op, rc, call_error("commit status", rc, NULL));
}

/* Step 3: sign the prepared payload, then check that what we signed is our
 * transaction (invariant 4). On failure op->error says why. */
static fl_status_t check_prepared(op_t *op, fl_buf_t prepared) {
  fl_client_t *c = op->c;
  fl_buf_t payload = {0};
  fl__pb_reader_t r;
  fl__pb_field_t f;
  fl__pb_reader_init(&r, prepared);
  while (fl__pb_next(&r, &f))
    if (f.field == 1 && f.wire == 2) payload = f.bytes;
  if (r.bad || payload.len == 0) {
    op->error = fl_strdup("endorse: the prepared envelope has no payload");
    return FL_EPROTO;
  }
  fl_sbuf_t sig = {0};
  fl_envelope_t *env = NULL;
  fl_tx_t *tx = NULL;
  const char *why = NULL;
  fl_status_t rc = fl_signer_sign(fl_client_identity_signer(c->id), payload.data, payload.len,
                                  &sig);
  if (rc != FL_OK) {
    op->error = fl_strdup("cannot sign the prepared transaction");
    goto done;
  }
  op->env.len = 0;
  fl__pb_put_bytes(&op->env, 1, payload.data, payload.len);
  fl__pb_put_bytes(&op->env, 2, sig.data, sig.len);
  rc = fl_envelope_decode(op->env.data, op->env.len, &env, &why);
  if (rc == FL_OK) rc = fl_tx_decode(env, &tx, &why);
  if (rc != FL_OK) {
    op->error = fl_sprintf("endorse: prepared transaction refused: %s",
                           why ? why : fl_status_str(rc));
    rc = FL_EPROTO;
    goto done;
  }
  if (strcmp(env->header.tx_id, op->tx_id) != 0) {
    op->error = fl_sprintf("endorse: prepared transaction has tx id %s, expected %s",
                           env->header.tx_id, op->tx_id);
    rc = FL_EPROTO;
    goto done;
  }
  if (!fl_buf_eq(tx->proposal->proposal_bytes, op->prop_bytes) ||
      !fl_buf_eq(tx->proposal->signature, op->prop_sig)) {
    op->error = fl_strdup("endorse: prepared transaction carries a different proposal");
    rc = FL_EPROTO;
    goto done;
  }
  /* The endorsed response is authoritative: it is what the endorsers signed. */
  const fl_response_t *resp = &tx->payload->response;
  resp_view_t rv = {.present = true,
                    .status = resp->status,
                    .message = FL_BUF(resp->message, strlen(resp->message)),
                    .payload = resp->payload};
  set_cc(op, &rv);
  if (resp->status >= 400) {
    op->error = fl_sprintf("chaincode %s: status %d: %s", tx->proposal->chaincode,
                           (int)resp->status, resp->message);
    rc = cc_error_status(resp->status);
    goto done;
  }
  if (c->msp != NULL) {
    for (size_t i = 0; i < tx->n_endorsements; i++) {
      fl_msp_info_t info;
      rc = fl_endorsement_verify(tx->response_payload, &tx->endorsements[i], c->msp,
                                 FL_ROLE_PEER, &info);
      if (rc != FL_OK) {
        op->error = fl_sprintf("endorse: endorsement %zu does not verify: %s (%s)", i,
                               fl_status_str(rc), info.reason ? info.reason : "");
        goto done;
      }
    }
  }
done:
  fl_tx_free(tx);
  fl_envelope_free(env);
  fl_sbuf_free(&sig);
  return rc;
}

static void on_endorse(void *arg, fl_status_t st, const char *errmsg, fl_buf_t reply) {
  op_t *op = arg;
  if (st != FL_OK) {
    op_fail(op, st, call_error("endorse", st, errmsg));
    return;
  }
  /* EndorseResponse {1 Envelope prepared, 2 Response result} */
  fl_buf_t prepared = {0};
  resp_view_t rv = {0};
  bool has_prepared = false;
  fl__pb_reader_t r;
  fl__pb_field_t f;
  fl__pb_reader_init(&r, reply);
  while (fl__pb_next(&r, &f)) {
    if (f.field == 1 && f.wire == 2) {
      prepared = f.bytes;
      has_prepared = true;
    } else if (f.field == 2 && f.wire == 2 && !parse_response(f.bytes, &rv)) {
      r.bad = true;
    }
  }
  if (r.bad) {
    op_fail(op, FL_EPROTO, fl_strdup("endorse: malformed response"));
    return;
  }
  if (rv.present) set_cc(op, &rv);
  if (rv.present && rv.status >= 400) {
    op_fail(op, cc_error_status(rv.status),
            fl_sprintf("chaincode: status %d: %.*s", (int)rv.status, (int)rv.message.len,
                       (const char *)rv.message.data));
    return;
  }
  if (!has_prepared) {
    op_fail(op, FL_EPROTO, fl_strdup("endorse: no prepared transaction in the response"));
    return;
  }
  fl_status_t rc = check_prepared(op, prepared);
  if (rc != FL_OK) {
    op_finish(op, rc);
    return;
  }
  fl_sbuf_t msg = {0};
  fl__pb_put_bytes(&msg, 1, op->tx_id, strlen(op->tx_id));
  fl__pb_put_bytes(&msg, 2, op->env.data, op->env.len);
  rc = fl_rpc_client_unary(op->c->rpc, "Gateway/Submit", fl_sbuf_view(&msg),
                           op->c->call_timeout_ms, on_submit, op, NULL);
  fl_sbuf_free(&msg);
  if (rc != FL_OK) op_fail(op, rc, call_error("submit", rc, NULL));
}

static void on_evaluate(void *arg, fl_status_t st, const char *errmsg, fl_buf_t reply) {
  op_t *op = arg;
  if (st != FL_OK) {
    op_fail(op, st, call_error("evaluate", st, errmsg));
    return;
  }
  resp_view_t rv = {0};
  fl__pb_reader_t r;
  fl__pb_field_t f;
  fl__pb_reader_init(&r, reply);
  while (fl__pb_next(&r, &f))
    if (f.field == 1 && f.wire == 2 && !parse_response(f.bytes, &rv)) r.bad = true;
  if (r.bad || !rv.present) {
    op_fail(op, FL_EPROTO, fl_strdup("evaluate: malformed response"));
    return;
  }
  set_cc(op, &rv);
  if (rv.status >= 400) {
    op_fail(op, cc_error_status(rv.status),
            fl_sprintf("chaincode: status %d: %.*s", (int)rv.status, (int)rv.message.len,
                       (const char *)rv.message.data));
    return;
  }
  op_finish(op, FL_OK);
}

/* Step 1, shared by submit and evaluate: builds and signs the proposal. */
static fl_status_t op_propose(fl_client_t *c, op_t *op, const fl_client_proposal_t *p) {
  if (p == NULL || p->chaincode == NULL || p->n_args == 0 || p->args == NULL ||
      (p->n_endorsing_orgs > 0 && p->endorsing_orgs == NULL))
    return FL_EINVAL;
  fl_proposal_spec_t spec = {
      .channel = c->channel,
      .creator = fl_client_identity_creator(c->id),
      .chaincode = p->chaincode,
      .args = p->args,
      .n_args = p->n_args,
      .blobs = p->blobs,
      .n_blobs = p->n_blobs,
      .transient = p->transient,
  };
  FL_FORWARD(fl_proposal_build(&spec, fl_client_identity_signer(c->id), &op->sp, op->tx_id));
  fl__pb_reader_t r;
  fl__pb_field_t f;
  fl__pb_reader_init(&r, fl_sbuf_view(&op->sp));
  while (fl__pb_next(&r, &f)) {
    if (f.field == 1 && f.wire == 2) op->prop_bytes = f.bytes;
    else if (f.field == 2 && f.wire == 2) op->prop_sig = f.bytes;
  }
  if (r.bad || op->prop_bytes.len == 0 || op->prop_sig.len == 0) return FL_EINTERNAL;
  return FL_OK;
}

static op_t *op_new(fl_client_t *c, op_kind_t kind, fl_client_result_cb cb, void *arg) {
  op_t *op = fl_calloc(1, sizeof *op);
  op->c = c;
  op->kind = kind;
  op->cb = cb;
  op->arg = arg;
  return op;
}

fl_status_t fl_client_submit(fl_client_t *c, const fl_client_proposal_t *p, bool wait_commit,
                             fl_client_result_cb cb, void *arg, char tx_id[FL_TXID_HEX_LEN + 1]) {
  if (c == NULL || cb == NULL) return FL_EINVAL;
  op_t *op = op_new(c, OP_SUBMIT, cb, arg);
  op->wait_commit = wait_commit;
  fl_status_t rc = op_propose(c, op, p);
  if (rc == FL_OK) {
    fl_sbuf_t msg = {0};
    fl__pb_put_bytes(&msg, 1, op->tx_id, strlen(op->tx_id));
    fl__pb_put_bytes(&msg, 2, op->sp.data, op->sp.len);
    for (size_t i = 0; i < p->n_endorsing_orgs; i++)
      fl__pb_put_bytes(&msg, 3, p->endorsing_orgs[i], strlen(p->endorsing_orgs[i]));
    rc = fl_rpc_client_unary(c->rpc, "Gateway/Endorse", fl_sbuf_view(&msg), c->call_timeout_ms,
                             on_endorse, op, NULL);
    fl_sbuf_free(&msg);
  }
  if (rc != FL_OK) {
    op_free(op);
    return rc;
  }
  if (tx_id) memcpy(tx_id, op->tx_id, sizeof op->tx_id);
  c->inflight++;
  return FL_OK;
}

fl_status_t fl_client_evaluate(fl_client_t *c, const fl_client_proposal_t *p,
                               fl_client_result_cb cb, void *arg) {
  if (c == NULL || cb == NULL) return FL_EINVAL;
  op_t *op = op_new(c, OP_EVALUATE, cb, arg);
  fl_status_t rc = op_propose(c, op, p);
  if (rc == FL_OK) {
    fl_sbuf_t msg = {0};
    fl__pb_put_bytes(&msg, 1, op->tx_id, strlen(op->tx_id));
    fl__pb_put_bytes(&msg, 2, op->sp.data, op->sp.len);
    rc = fl_rpc_client_unary(c->rpc, "Gateway/Evaluate", fl_sbuf_view(&msg),
                             c->call_timeout_ms, on_evaluate, op, NULL);
    fl_sbuf_free(&msg);
  }
  if (rc != FL_OK) {
    op_free(op);
    return rc;
  }
  c->inflight++;
  return FL_OK;
}

static bool valid_tx_id(const char *tx_id) {
  if (tx_id == NULL || strlen(tx_id) != FL_TXID_HEX_LEN) return false;
  for (const char *p = tx_id; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
  return true;
}

fl_status_t fl_client_commit_status(fl_client_t *c, const char *tx_id, fl_client_result_cb cb,
                                    void *arg) {
  if (c == NULL || cb == NULL || !valid_tx_id(tx_id)) return FL_EINVAL;
  op_t *op = op_new(c, OP_STATUS, cb, arg);
  memcpy(op->tx_id, tx_id, sizeof op->tx_id);
  fl_status_t rc = start_commit_status(op);
  if (rc != FL_OK) {
    op_free(op);
    return rc;
  }
  c->inflight++;
  return FL_OK;
}

/* ---- queries ------------------------------------------------------------ */

typedef enum q_kind_e { Q_BLOCK, Q_TX, Q_BLOB, Q_INFO } q_kind_t;

typedef struct qop_s {
  fl_client_t *c;
  q_kind_t kind;
  union {
    fl_client_block_cb block;
    fl_client_tx_cb tx;
    fl_client_blob_cb blob;
    fl_client_info_cb info;
  } cb;
  void *arg;
  uint64_t number;
  char tx_id[FL_TXID_HEX_LEN + 1];
  uint8_t hash[FL_SHA256_LEN];
} qop_t;

void fl_client_tx_info_free(fl_client_tx_info_t *info) {
  if (info == NULL) return;
  fl_envelope_free(info->envelope);
  fl_free(info->mem_);
  fl_free(info);
}

/* Delivers the outcome of a query; exactly one of the results is set. */
static void q_finish(qop_t *q, fl_status_t st, const char *err, fl_block_t *block,
                     fl_client_tx_info_t *tx, fl_buf_t blob, const fl_client_chain_info_t *info) {
  q->c->inflight--;
  switch (q->kind) {
  case Q_BLOCK: q->cb.block(q->arg, st, err, block); break;
  case Q_TX: q->cb.tx(q->arg, st, err, tx); break;
  case Q_BLOB: q->cb.blob(q->arg, st, err, blob); break;
  case Q_INFO: q->cb.info(q->arg, st, err, info); break;
  }
  fl_free(q);
}

static void on_query(void *arg, fl_status_t st, const char *errmsg, fl_buf_t reply) {
  qop_t *q = arg;
  const char *why = NULL;
  char *err = NULL;
  fl_block_t *block = NULL;
  fl_client_tx_info_t *tx = NULL;
  fl_buf_t blob = {0};
  fl_client_chain_info_t info = {0};
  if (st != FL_OK) {
    err = call_error("query", st, errmsg);
    goto out;
  }
  switch (q->kind) {
  case Q_BLOCK:
    st = fl_block_decode(reply.data, reply.len, &block, &why);
    if (st == FL_OK && block->number != q->number) {
      st = FL_EPROTO;
      why = "the peer returned another block than asked for";
    }
    break;
  case Q_TX: {
    /* ProcessedTransaction {1 envelope, 2 validation_code, 3 block_num, 4 tx_num} */
    tx = fl_calloc(1, sizeof *tx);
    fl__pb_reader_t r;
    fl__pb_field_t f;
    fl__pb_reader_init(&r, reply);
    fl_buf_t envb = {0};
    while (fl__pb_next(&r, &f)) {
      if (f.field == 1 && f.wire == 2) envb = f.bytes;
      else if (f.field == 2 && f.wire == 0) tx->code = (int32_t)f.v;
      else if (f.field == 3 && f.wire == 0) tx->block_num = f.v;
      else if (f.field == 4 && f.wire == 0) tx->tx_num = f.v;
    }
    if (r.bad || envb.len == 0) {
      st = FL_EPROTO;
      why = "malformed ProcessedTransaction";
      break;
    }
    tx->mem_ = fl_memdup(envb.data, envb.len);
    tx->envelope_bytes = FL_BUF(tx->mem_, envb.len);
    st = fl_envelope_decode(tx->envelope_bytes.data, envb.len, &tx->envelope, &why);
    if (st == FL_OK && strcmp(tx->envelope->header.tx_id, q->tx_id) != 0) {
      st = FL_EPROTO;
      why = "the peer returned another transaction than asked for";
    }
    break;
  }
  case Q_BLOB: {
    fl__pb_reader_t r;
    fl__pb_field_t f;
    fl__pb_reader_init(&r, reply);
    while (fl__pb_next(&r, &f))
      if (f.field == 1 && f.wire == 2) blob = f.bytes;
    uint8_t h[FL_SHA256_LEN];
    fl_sha256(blob.data, blob.len, h);
    if (r.bad) {
      st = FL_EPROTO;
      why = "malformed GetBlobResponse";
    } else if (memcmp(h, q->hash, FL_SHA256_LEN) != 0) {
      st = FL_ECORRUPT;
      why = "the blob's bytes do not match the requested SHA-256";
    }
    break;
  }
  case Q_INFO: {
    fl__pb_reader_t r;
    fl__pb_field_t f;
    fl__pb_reader_init(&r, reply);
    while (fl__pb_next(&r, &f)) {
      if (f.field == 1 && f.wire == 0) info.height = f.v;
      else if ((f.field == 2 || f.field == 3) && f.wire == 2) {
        if (f.bytes.len != 0 && f.bytes.len != FL_SHA256_LEN) r.bad = true;
        else if (f.bytes.len)
          memcpy(f.field == 2 ? info.current_hash : info.previous_hash, f.bytes.data,
                 FL_SHA256_LEN);
      }
    }
    if (r.bad) {
      st = FL_EPROTO;
      why = "malformed ChainInfo";
    }
    break;
  }
  }
  if (st != FL_OK) {
    err = fl_sprintf("query: %s", why ? why : fl_status_str(st));
    fl_block_free(block);
    block = NULL;
    fl_client_tx_info_free(tx);
    tx = NULL;
    blob = (fl_buf_t){0};
  }
out:
  q_finish(q, st, err, block, tx, blob, st == FL_OK ? &info : NULL);
  fl_free(err);
}

static fl_status_t q_start(fl_client_t *c, qop_t *q, const char *method, fl_buf_t req) {
  fl_status_t rc = fl_rpc_client_unary(c->rpc, method, req, c->call_timeout_ms, on_query, q, NULL);
  if (rc != FL_OK) {
    fl_free(q);
    return rc;
  }
  c->inflight++;
  return FL_OK;
}

static qop_t *q_new(fl_client_t *c, q_kind_t kind, void *arg) {
  qop_t *q = fl_calloc(1, sizeof *q);
  q->c = c;
  q->kind = kind;
  q->arg = arg;
  return q;
}

fl_status_t fl_client_get_block(fl_client_t *c, uint64_t number, fl_client_block_cb cb,
                                void *arg) {
  if (c == NULL || cb == NULL) return FL_EINVAL;
  qop_t *q = q_new(c, Q_BLOCK, arg);
  q->cb.block = cb;
  q->number = number;
  fl_sbuf_t req = {0};
  fl__pb_put_varint(&req, 1, number);
  fl_status_t rc = q_start(c, q, "Peer/GetBlock", fl_sbuf_view(&req));
  fl_sbuf_free(&req);
  return rc;
}

fl_status_t fl_client_get_tx(fl_client_t *c, const char *tx_id, fl_client_tx_cb cb, void *arg) {
  if (c == NULL || cb == NULL || !valid_tx_id(tx_id)) return FL_EINVAL;
  qop_t *q = q_new(c, Q_TX, arg);
  q->cb.tx = cb;
  memcpy(q->tx_id, tx_id, sizeof q->tx_id);
  fl_sbuf_t req = {0};
  fl__pb_put_bytes(&req, 1, tx_id, FL_TXID_HEX_LEN);
  fl_status_t rc = q_start(c, q, "Peer/GetTransaction", fl_sbuf_view(&req));
  fl_sbuf_free(&req);
  return rc;
}

fl_status_t fl_client_get_blob(fl_client_t *c, const uint8_t hash[FL_SHA256_LEN],
                               fl_client_blob_cb cb, void *arg) {
  if (c == NULL || cb == NULL || hash == NULL) return FL_EINVAL;
  qop_t *q = q_new(c, Q_BLOB, arg);
  q->cb.blob = cb;
  memcpy(q->hash, hash, FL_SHA256_LEN);
  fl_sbuf_t req = {0};
  fl__pb_put_bytes(&req, 1, hash, FL_SHA256_LEN);
  fl_status_t rc = q_start(c, q, "Peer/GetBlob", fl_sbuf_view(&req));
  fl_sbuf_free(&req);
  return rc;
}

fl_status_t fl_client_chain_info(fl_client_t *c, fl_client_info_cb cb, void *arg) {
  if (c == NULL || cb == NULL) return FL_EINVAL;
  qop_t *q = q_new(c, Q_INFO, arg);
  q->cb.info = cb;
  return q_start(c, q, "Peer/ChainInfo", (fl_buf_t){0});
}

/* ---- deliver ------------------------------------------------------------ */

typedef struct dop_s {
  fl_client_t *c;
  fl_client_chain_t *chain;
  uint64_t next, stop, call_id;
  fl_client_deliver_block_cb on_block;
  fl_client_deliver_end_cb on_end;
  void *arg;
  fl_status_t err;        /* a verification failure, reported at the end */
  char *errmsg;
  bool user_stop;
  bool have_final;
  int32_t final_status;   /* DeliverResponse.status */
} dop_t;

static void on_deliver_msg(void *arg, fl_buf_t msg) {
  dop_t *d = arg;
  if (d->err != FL_OK || d->user_stop) return;
  fl__pb_reader_t r;
  fl__pb_field_t f;
  fl_buf_t bytes = {0};
  bool has_block = false;
  fl__pb_reader_init(&r, msg);
  while (fl__pb_next(&r, &f)) {
    if (f.field == 1 && f.wire == 0) {
      d->have_final = true;
      d->final_status = (int32_t)fl__pb_zigzag(f.v);
    } else if (f.field == 2 && f.wire == 2) {
      bytes = f.bytes;
      has_block = true;
    }
  }
  const char *why = NULL;
  fl_block_t *b = NULL;
  fl_status_t rc = FL_OK;
  if (r.bad) {
    rc = FL_EPROTO;
    why = "malformed DeliverResponse";
  } else if (!has_block) {
    return;
  } else if (d->chain) {
    rc = fl_client_chain_verify_bytes(d->chain, bytes, &b, &why);
  } else {
    rc = fl_block_decode(bytes.data, bytes.len, &b, &why);
  }
  if (rc == FL_OK && b->number != d->next) {
    rc = FL_EPROTO;
    why = "block out of sequence";
  }
  if (rc != FL_OK) {
    d->err = rc;
    d->errmsg = fl_sprintf("deliver: block %llu refused: %s",
                           (unsigned long long)(b ? b->number : d->next),
                           why ? why : fl_status_str(rc));
    fl_block_free(b);
    (void)fl_rpc_client_cancel(d->c->rpc, d->call_id); /* d may be gone after this */
    return;
  }
  d->next++;
  if (d->on_block(d->arg, b) != 0 || (d->stop != UINT64_MAX && d->next > d->stop)) {
    d->user_stop = true;
    (void)fl_rpc_client_cancel(d->c->rpc, d->call_id); /* d may be gone after this */
  }
}

static void on_deliver_end(void *arg, fl_status_t st, const char *errmsg) {
  dop_t *d = arg;
  const char *msg = errmsg;
  char *own = NULL;
  if (d->err != FL_OK) {
    st = d->err;
    msg = d->errmsg;
  } else if (d->user_stop) {
    st = FL_OK;
    msg = NULL;
  } else if (st == FL_OK && d->have_final && d->final_status != 0) {
    st = d->final_status < 0 ? (fl_status_t)d->final_status : FL_EPROTO;
    msg = own = fl_sprintf("deliver: the peer ended the stream: %s", fl_status_str(st));
  } else if (st != FL_OK) {
    msg = own = call_error("deliver", st, errmsg);
  }
  d->c->inflight--;
  d->on_end(d->arg, st, msg);
  fl_free(own);
  fl_free(d->errmsg);
  fl_free(d);
}

fl_status_t fl_client_deliver(fl_client_t *c, fl_client_chain_t *chain, uint64_t start,
                              uint64_t stop, fl_client_deliver_block_cb on_block,
                              fl_client_deliver_end_cb on_end, void *arg, uint64_t *id) {
  if (c == NULL || on_block == NULL || on_end == NULL || stop < start) return FL_EINVAL;
  /* SeekInfo {1 start SeekPosition {1 kind = SPECIFIED(2), 2 number},
   *           2 stop (absent: follow), 3 behavior = BLOCK_UNTIL_READY(0)} */
  fl_sbuf_t pos = {0}, seek = {0}, sig = {0}, msg = {0};
  fl__pb_put_varint(&pos, 1, 2);
  fl__pb_put_varint(&pos, 2, start);
  fl__pb_put_bytes(&seek, 1, pos.data, pos.len);
  if (stop != UINT64_MAX) {
    pos.len = 0;
    fl__pb_put_varint(&pos, 1, 2);
    fl__pb_put_varint(&pos, 2, stop);
    fl__pb_put_bytes(&seek, 2, pos.data, pos.len);
  }
  fl_buf_t creator = fl_client_identity_creator(c->id);
  fl_status_t rc = fl_signer_sign(fl_client_identity_signer(c->id), seek.data, seek.len, &sig);
  dop_t *d = NULL;
  if (rc == FL_OK) {
    fl__pb_put_bytes(&msg, 1, seek.data, seek.len);
    fl__pb_put_bytes(&msg, 2, creator.data, creator.len);
    fl__pb_put_bytes(&msg, 3, sig.data, sig.len);
    d = fl_calloc(1, sizeof *d);
    *d = (dop_t){.c = c, .chain = chain, .next = start, .stop = stop, .on_block = on_block,
                 .on_end = on_end, .arg = arg};
    rc = fl_rpc_client_stream(c->rpc, "Peer/Deliver", fl_sbuf_view(&msg), 0, on_deliver_msg,
                              on_deliver_end, d, &d->call_id);
  }
  fl_sbuf_free(&pos);
  fl_sbuf_free(&seek);
  fl_sbuf_free(&sig);
  fl_sbuf_free(&msg);
  if (rc != FL_OK) {
    fl_free(d);
    return rc;
  }
  c->inflight++;
  if (id) *id = d->call_id;
  return FL_OK;
}

fl_status_t fl_client_deliver_cancel(fl_client_t *c, uint64_t id) {
  if (c == NULL) return FL_EINVAL;
  return fl_rpc_client_cancel(c->rpc, id);
}

/* ---- connection ---------------------------------------------------------- */

static void on_rpc_connect(fl_rpc_client_t *rpc, fl_status_t st, void *arg) {
  (void)rpc;
  fl_client_t *c = arg;
  if (st != FL_OK)
    FL_WARN("client", "cannot connect to gateway rc=%s", fl_status_name(st));
  if (c->on_connect) c->on_connect(c, st, c->arg);
}

static void on_rpc_disconnect(fl_rpc_client_t *rpc, fl_status_t st, void *arg) {
  (void)rpc;
  fl_client_t *c = arg;
  FL_WARN("client", "gateway connection lost rc=%s", fl_status_name(st));
  if (c->on_disconnect) c->on_disconnect(c, st, c->arg);
}

fl_status_t fl_client_new(uv_loop_t *loop, const fl_client_opts_t *opts,
                          const fl_client_identity_t *id, fl_client_t **out, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (out == NULL) return FL_EINVAL;
  *out = NULL;
  if (loop == NULL || opts == NULL || id == NULL || opts->host == NULL ||
      opts->channel == NULL || opts->channel[0] == '\0' ||
      strlen(opts->channel) > FL_CHANNEL_MAX) {
    if (errmsg) *errmsg = fl_strdup("client: loop, host, channel and identity are required");
    return FL_EINVAL;
  }
  fl_client_t *c = fl_calloc(1, sizeof *c);
  c->loop = loop;
  c->id = id;
  c->channel = fl_strdup(opts->channel);
  c->call_timeout_ms = opts->call_timeout_ms ? opts->call_timeout_ms : DEFAULT_CALL_TIMEOUT_MS;
  c->commit_timeout_ms =
      opts->commit_timeout_ms ? opts->commit_timeout_ms : DEFAULT_COMMIT_TIMEOUT_MS;
  c->msp = opts->endorsement_msp;
  c->on_connect = opts->on_connect;
  c->on_disconnect = opts->on_disconnect;
  c->arg = opts->arg;
  fl_rpc_client_opts_t ro = {
      .host = opts->host,
      .port = opts->port,
      .tls = opts->tls,
      .max_frame = opts->max_frame,
      .connect_timeout_ms = opts->connect_timeout_ms,
      .on_connect = on_rpc_connect,
      .on_disconnect = on_rpc_disconnect,
      .arg = c,
  };
  fl_status_t rc = fl_rpc_client_new(loop, &ro, &c->rpc, errmsg);
  if (rc != FL_OK) {
    fl_free(c->channel);
    fl_free(c);
    return rc;
  }
  *out = c;
  return FL_OK;
}

static void on_rpc_closed(fl_rpc_client_t *rpc, void *arg) {
  (void)rpc;
  fl_client_t *c = arg;
  if (c->close_cb) c->close_cb(c, c->close_arg);
  fl_free(c->channel);
  fl_free(c);
}

void fl_client_close(fl_client_t *c, void (*cb)(fl_client_t *, void *), void *arg) {
  if (c == NULL) return;
  c->close_cb = cb;
  c->close_arg = arg;
  fl_rpc_client_close(c->rpc, on_rpc_closed, c);
}

fl_status_t fl_client_state(const fl_client_t *c) { return fl_rpc_client_state(c->rpc); }

size_t fl_client_inflight(const fl_client_t *c) { return c->inflight; }

/* ---- blocking ------------------------------------------------------------ */

struct fl_client_sync_s {
  uv_loop_t loop;
  fl_client_t *c;
};

typedef struct swait_s {
  bool done;
  fl_status_t status;
  char *errmsg;
  fl_client_result_t *res;
  void *out;
  int (*on_block)(void *, const fl_block_t *);
  void *arg;
} swait_t;

static void run_until(uv_loop_t *loop, const bool *done) {
  while (!*done)
    if (uv_run(loop, UV_RUN_ONCE) == 0 && !*done) break;
}

static void s_on_connect(fl_client_t *c, fl_status_t st, void *arg) {
  (void)c;
  swait_t *w = arg;
  w->done = true;
  w->status = st;
}

static void s_on_closed(fl_client_t *c, void *arg) {
  (void)c;
  *(bool *)arg = true;
}

static void s_shutdown(fl_client_sync_t *s) {
  bool closed = false;
  if (s->c) fl_client_close(s->c, s_on_closed, &closed);
  run_until(&s->loop, &closed);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  (void)uv_loop_close(&s->loop);
}

fl_status_t fl_client_sync_connect(const fl_client_opts_t *opts, const fl_client_identity_t *id,
                                   fl_client_sync_t **out, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (out == NULL || opts == NULL) return FL_EINVAL;
  *out = NULL;
  fl_client_sync_t *s = fl_calloc(1, sizeof *s);
  if (uv_loop_init(&s->loop) != 0) {
    fl_free(s);
    return FL_EIO;
  }
  swait_t w = {.status = FL_AGAIN};
  fl_client_opts_t o = *opts;
  o.on_connect = s_on_connect;
  o.on_disconnect = NULL;
  o.arg = &w;
  fl_status_t rc = fl_client_new(&s->loop, &o, id, &s->c, errmsg);
  if (rc != FL_OK) {
    (void)uv_loop_close(&s->loop);
    fl_free(s);
    return rc;
  }
  run_until(&s->loop, &w.done);
  if (!w.done || w.status != FL_OK) {
    rc = w.done ? w.status : FL_EINTERNAL;
    if (errmsg)
      *errmsg = fl_sprintf("cannot connect to %s:%u: %s", opts->host, opts->port,
                           fl_status_str(rc));
    s_shutdown(s);
    fl_free(s);
    return rc;
  }
  *out = s;
  return FL_OK;
}

void fl_client_sync_close(fl_client_sync_t *s) {
  if (s == NULL) return;
  s_shutdown(s);
  fl_free(s);
}

static void s_on_result(void *arg, const fl_client_result_t *res) {
  swait_t *w = arg;
  result_copy(w->res, res);
  w->status = res->status;
  w->done = true;
}

static fl_status_t s_result_wait(fl_client_sync_t *s, swait_t *w, fl_status_t started) {
  if (started != FL_OK) {
    w->res->status = started;
    w->res->error = fl_status_str(started);
    w->res->cc_message = "";
    return started;
  }
  run_until(&s->loop, &w->done);
  if (!w->done) return FL_EINTERNAL; /* the loop ran dry: cannot happen */
  return w->status;
}

static void result_init(fl_client_result_t *res) {
  memset(res, 0, sizeof *res);
  res->error = "";
  res->cc_message = "";
}

fl_status_t fl_client_sync_submit(fl_client_sync_t *s, const fl_client_proposal_t *p,
                                  bool wait_commit, fl_client_result_t *res) {
  result_init(res);
  if (s == NULL) return res->status = FL_EINVAL;
  swait_t w = {.res = res};
  return s_result_wait(s, &w, fl_client_submit(s->c, p, wait_commit, s_on_result, &w, NULL));
}

fl_status_t fl_client_sync_evaluate(fl_client_sync_t *s, const fl_client_proposal_t *p,
                                    fl_client_result_t *res) {
  result_init(res);
  if (s == NULL) return res->status = FL_EINVAL;
  swait_t w = {.res = res};
  return s_result_wait(s, &w, fl_client_evaluate(s->c, p, s_on_result, &w));
}

fl_status_t fl_client_sync_commit_status(fl_client_sync_t *s, const char *tx_id,
                                         fl_client_result_t *res) {
  result_init(res);
  if (s == NULL) return res->status = FL_EINVAL;
  swait_t w = {.res = res};
  return s_result_wait(s, &w, fl_client_commit_status(s->c, tx_id, s_on_result, &w));
}

static fl_status_t s_finish(swait_t *w, fl_status_t started, char **errmsg) {
  if (started != FL_OK) {
    if (errmsg) *errmsg = fl_strdup(fl_status_str(started));
    return started;
  }
  if (!w->done) w->status = FL_EINTERNAL;
  if (errmsg) *errmsg = w->errmsg;
  else fl_free(w->errmsg);
  return w->status;
}

static void s_note(swait_t *w, fl_status_t st, const char *err) {
  w->done = true;
  w->status = st;
  if (st != FL_OK) w->errmsg = fl_strdup(err ? err : fl_status_str(st));
}

static void s_on_block(void *arg, fl_status_t st, const char *err, fl_block_t *block) {
  swait_t *w = arg;
  s_note(w, st, err);
  *(fl_block_t **)w->out = block;
}

fl_status_t fl_client_sync_get_block(fl_client_sync_t *s, uint64_t number, fl_block_t **out,
                                     char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (s == NULL) return FL_EINVAL;
  *out = NULL;
  swait_t w = {.out = out};
  fl_status_t rc = fl_client_get_block(s->c, number, s_on_block, &w);
  if (rc == FL_OK) run_until(&s->loop, &w.done);
  return s_finish(&w, rc, errmsg);
}

static void s_on_tx(void *arg, fl_status_t st, const char *err, fl_client_tx_info_t *tx) {
  swait_t *w = arg;
  s_note(w, st, err);
  *(fl_client_tx_info_t **)w->out = tx;
}

fl_status_t fl_client_sync_get_tx(fl_client_sync_t *s, const char *tx_id,
                                  fl_client_tx_info_t **out, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (s == NULL) return FL_EINVAL;
  *out = NULL;
  swait_t w = {.out = out};
  fl_status_t rc = fl_client_get_tx(s->c, tx_id, s_on_tx, &w);
  if (rc == FL_OK) run_until(&s->loop, &w.done);
  return s_finish(&w, rc, errmsg);
}

static void s_on_blob(void *arg, fl_status_t st, const char *err, fl_buf_t data) {
  swait_t *w = arg;
  s_note(w, st, err);
  if (st == FL_OK) fl_sbuf_append(w->out, data.data, data.len);
}

fl_status_t fl_client_sync_get_blob(fl_client_sync_t *s, const uint8_t hash[FL_SHA256_LEN],
                                    fl_sbuf_t *out, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (s == NULL) return FL_EINVAL;
  swait_t w = {.out = out};
  fl_status_t rc = fl_client_get_blob(s->c, hash, s_on_blob, &w);
  if (rc == FL_OK) run_until(&s->loop, &w.done);
  return s_finish(&w, rc, errmsg);
}

static void s_on_info(void *arg, fl_status_t st, const char *err,
                      const fl_client_chain_info_t *info) {
  swait_t *w = arg;
  s_note(w, st, err);
  if (st == FL_OK) *(fl_client_chain_info_t *)w->out = *info;
}

fl_status_t fl_client_sync_chain_info(fl_client_sync_t *s, fl_client_chain_info_t *out,
                                      char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (s == NULL) return FL_EINVAL;
  memset(out, 0, sizeof *out);
  swait_t w = {.out = out};
  fl_status_t rc = fl_client_chain_info(s->c, s_on_info, &w);
  if (rc == FL_OK) run_until(&s->loop, &w.done);
  return s_finish(&w, rc, errmsg);
}

static int s_deliver_block(void *arg, fl_block_t *block) {
  swait_t *w = arg;
  int stop = w->on_block(w->arg, block);
  fl_block_free(block);
  return stop;
}

static void s_deliver_end(void *arg, fl_status_t st, const char *err) {
  s_note(arg, st, err);
}

fl_status_t fl_client_sync_deliver(fl_client_sync_t *s, fl_client_chain_t *chain,
                                   uint64_t start, uint64_t stop,
                                   int (*on_block)(void *arg, const fl_block_t *block), void *arg,
                                   char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (s == NULL) return FL_EINVAL;
  if (on_block == NULL) return FL_EINVAL;
  swait_t w = {.on_block = on_block, .arg = arg};
  fl_status_t rc =
      fl_client_deliver(s->c, chain, start, stop, s_deliver_block, s_deliver_end, &w, NULL);
  if (rc == FL_OK) run_until(&s->loop, &w.done);
  return s_finish(&w, rc, errmsg);
}
