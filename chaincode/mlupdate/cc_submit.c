/* SPDX-License-Identifier: Apache-2.0
 *
 * cc_submit.c: SubmitUpdate, the edge client's transaction.
 *
 *   SubmitUpdate <task> <round> <hash hex> <signature hex> <samples>
 *                <data-batch hash hex>, blob 0 = the update tensors
 *
 * Malformed arguments, an unknown task, a round that does not exist yet and
 * a certificate unusable as a client id get an error response (400/403/404)
 * and no transaction. Everything else is RECORDED: the checks run in the
 * order of fl_mlu_reason_t and the first failure makes the record REJECTED
 * with its reason; rejection is provenance too. The record goes to
 * update/<task>/<r>/<client>, or, when that key exists already (a second
 * attempt in the round), to update/<task>/<r>/<client>/<tx id>, so that a
 * later attempt never overwrites the first.
 *
 * Reads: task/<t>, round/<t>/<r>, the update key, client/<id> (once the
 * signature and role passed), and from the blob store (for the cosine; not
 * state reads) the round's start model and the model before it, whose
 * difference is the previous global step. Writes: the update key only. The update's
 * tensors travel once, as the proposal's blob 0, which the committing peer
 * stores in its blob store with the transaction; CloseRound reads them from
 * there by the hash in the record (fl_cc_get_stored_blob). Updates of
 * different clients therefore never conflict with each other.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/cc_int.h"
#include "chaincode/mlupdate/score.h"
#include "common/base/alloc.h"
#include "common/crypto/hash.h"

#define USAGE                                                                         \
  "mlupdate: SubmitUpdate <task> <round> <hash hex> <signature hex> <samples> "      \
  "<data hash hex> + blob"

/* The scoring step: decode, shape, outlier scores. Sets u->reason/detail. */
static int score(fl_cc_stub_t *s, const mlu_task_t *t, const mlu_round_t *r,
                 fl_cc_bytes_t blob, mlu_update_t *u, char *detail, size_t dcap) {
  fl_ml_tensors_t upd = {0}, step = {0}, from = {0};
  int rc = FL_CC_OK;
  if (fl_ml_blob_decode(FL_BUF(blob.data, blob.len), &upd) != FL_OK) {
    u->reason = FL_MLU_BAD_BLOB;
    snprintf(detail, dcap, "the blob is not a valid tensor blob (ml/tensor.h)");
    goto done;
  }
  if (!fl_ml_tensors_same_layout(&upd, &t->layout)) {
    u->reason = FL_MLU_SHAPE_MISMATCH;
    snprintf(detail, dcap, "tensors differ from the task's model (%zu values, want %zu)",
             upd.n_values, t->layout.n_values);
    goto done;
  }
  u->has_scores = true;
  if (r->has_step) {
    /* The previous global step: the round's start model minus the model
     * before it changed, in float, as the plain-FL runner computes it. */
    rc = mlu_load_blob(s, r->start_model, &step);
    if (rc == FL_OK) rc = mlu_load_blob(s, r->step_from, &from);
    if (rc == FL_OK && (!fl_ml_tensors_same_layout(&step, &t->layout) ||
                        !fl_ml_tensors_same_layout(&from, &t->layout)))
      rc = FL_ECORRUPT;
    if (rc != FL_OK) goto done; /* both are stored with the rounds: corrupt */
    for (size_t j = 0; j < step.n_values; j++) step.values[j] -= from.values[j];
  }
  /* The decision itself is fl_mlu_score_update (score.h), which the
   * plain-FL runner calls too, so the two cannot drift apart. */
  fl_mlu_filter_t flt = {.max_norm = t->max_norm, .max_norm_z = t->max_norm_z,
                         .min_cosine = t->min_cosine};
  fl_mlu_scores_t sc;
  const float *stepv = r->has_step ? step.values : NULL;
  u->reason = fl_mlu_score_update(upd.values, upd.n_values, r->ref_norms, r->n_ref, stepv, &flt,
                                  &sc);
  u->norm = sc.norm;
  u->norm_z = sc.norm_z;
  u->cosine = sc.cosine;
  if (u->reason == FL_MLU_OUTLIER_MAX_NORM) {
    snprintf(detail, dcap, "L2 norm %.6g exceeds max_norm %.6g", u->norm, t->max_norm);
  } else if (u->reason == FL_MLU_OUTLIER_NORM_Z) {
    snprintf(detail, dcap, "norm z-score %.6g exceeds max_norm_z %.6g (%zu reference norms)",
             u->norm_z, t->max_norm_z, r->n_ref);
  } else if (u->reason == FL_MLU_OUTLIER_COSINE) {
    snprintf(detail, dcap, "cosine %.6g to the previous global step is below min_cosine %.6g",
             u->cosine, t->min_cosine);
  }
done:
  fl_ml_tensors_free(&upd);
  fl_ml_tensors_free(&step);
  fl_ml_tensors_free(&from);
  return rc;
}

fl_cc_response_t mlu_submit_update(fl_cc_stub_t *s, size_t argc, const fl_cc_bytes_t *argv) {
  if (argc != 7) return mlu_err(s, 400, USAGE);
  mlu_update_t u = {0};
  char task[FL_MLU_TASK_MAX + 1];
  uint8_t sig[128];
  long siglen = -1;
  if (fl_mlu_task_id_ok((const char *)argv[1].data, argv[1].len)) {
    memcpy(task, argv[1].data, argv[1].len);
    task[argv[1].len] = '\0';
  } else {
    return mlu_err(s, 400, "mlupdate: bad task id");
  }
  if (argv[4].len > 0 && argv[4].len <= 2 * sizeof sig)
    siglen = fl_hex_decode((const char *)argv[4].data, argv[4].len, sig, sizeof sig);
  if (!mlu_arg_u64(argv[2], &u.round) || !mlu_arg_hash(argv[3], u.hash) || siglen <= 0 ||
      !mlu_arg_u64(argv[5], &u.samples) || u.samples == 0 ||
      u.samples > ((uint64_t)1 << 53) || !mlu_arg_hash(argv[6], u.data_hash))
    return mlu_err(s, 400, "%s (round and samples decimal, samples >= 1, hashes 64 hex "
                           "digits, signature DER in hex)", USAGE);
  fl_cc_bytes_t blob;
  if (fl_cc_get_blob(s, 0, &blob) != FL_CC_OK) return mlu_err(s, 400, USAGE);
  u.signature = FL_BUF(sig, (size_t)siglen);

  fl_cc_response_t resp;
  mlu_task_t t = {0};
  mlu_round_t r = {0};
  mlu_client_t cl = {0};
  char *id = NULL, *key = NULL, *ckey = NULL, *txid_s = NULL, *mspid = NULL;
  fl_sbuf_t msg = {0}, rec = {0}, ev = {0};
  char detail[512] = "";
  bool ok;
  int rc;

  const char *why = mlu_creator_id(s, &id);
  if (why) {
    resp = mlu_err(s, 403, "mlupdate: %s", why);
    goto done;
  }
  resp = mlu_load_task(s, task, &t, &ok);
  if (!ok) goto done;
  char *rkey = fl_mlu_key_round(task, u.round);
  fl_cc_bytes_t v;
  rc = mlu_get(s, rkey, &v);
  fl_free(rkey);
  if (rc == FL_CC_NOTFOUND) {
    resp = mlu_err(s, 404, "mlupdate: round %llu of task %s is not open yet",
                   (unsigned long long)u.round, task);
    goto done;
  }
  if (rc != FL_CC_OK) {
    resp = mlu_stub_fail(s, "reading the round", rc);
    goto done;
  }
  if (mlu_round_decode(FL_BUF(v.data, v.len), &r) != FL_OK) {
    resp = mlu_err(s, 500, "mlupdate: the round record is corrupt");
    goto done;
  }

  /* Where the record goes: the client's key, or an attempt key. */
  fl_cc_bytes_t txid = fl_cc_get_tx_id(s);
  txid_s = fl_strndup((const char *)txid.data, txid.len);
  key = fl_mlu_key_update(task, u.round, id);
  rc = mlu_get(s, key, &v);
  bool dup = rc == FL_CC_OK;
  if (rc != FL_CC_OK && rc != FL_CC_NOTFOUND) {
    resp = mlu_stub_fail(s, "reading the update key", rc);
    goto done;
  }
  if (dup) {
    char *k2 = fl_sprintf("%s/%s", key, txid_s);
    fl_free(key);
    key = k2;
  }

  fl_cc_creator_t cr;
  fl_cc_get_creator(s, &cr);
  mspid = fl_strndup((const char *)cr.mspid.data, cr.mspid.len);
  u.task = task;
  u.client = id;
  u.mspid = mspid;
  u.tx_id = txid_s;
  u.ts = fl_cc_get_timestamp(s);
  /* The SHA-256 of the certificate's DER, as the peer's MSP computed it. */
  if (cr.cert_sha256.len != MLU_HASH_LEN) {
    resp = mlu_err(s, 500, "mlupdate: the runtime gave no certificate hash");
    goto done;
  }
  memcpy(u.cert_sha256, cr.cert_sha256.data, MLU_HASH_LEN);
  fl_sha256(blob.data, blob.len, u.blob_sha256);

  char hx[2][65];
  if (memcmp(u.blob_sha256, u.hash, MLU_HASH_LEN) != 0) {
    u.reason = FL_MLU_BAD_HASH;
    fl_hex_encode(u.blob_sha256, MLU_HASH_LEN, hx[0]);
    fl_hex_encode(u.hash, MLU_HASH_LEN, hx[1]);
    snprintf(detail, sizeof detail, "SHA-256 of the blob is %s, the declared hash is %s", hx[0],
             hx[1]);
    goto record;
  }
  if (fl_mlu_signed_msg(task, strlen(task), u.round, u.hash, &msg) != FL_OK ||
      fl_cc_verify_creator(s, fl_cc_bytes(msg.data, msg.len), fl_cc_bytes(sig, (size_t)siglen)) !=
          FL_CC_OK) {
    u.reason = FL_MLU_BAD_SIGNATURE;
    snprintf(detail, sizeof detail,
             "the signature does not verify with the creator's certificate over "
             "(task, round, hash)");
    goto record;
  }
  if (!fl_cc_eq(cr.role, "client")) {
    u.reason = FL_MLU_WRONG_ROLE;
    snprintf(detail, sizeof detail, "the creator's role is \"%.*s\"; updates need \"client\"",
             (int)(cr.role.len > 16 ? 16 : cr.role.len), (const char *)cr.role.data);
    goto record;
  }
  ckey = fl_mlu_key_client(id);
  rc = mlu_get(s, ckey, &v);
  if (rc == FL_CC_OK) {
    if (mlu_client_decode(FL_BUF(v.data, v.len), &cl) != FL_OK) {
      resp = mlu_err(s, 500, "mlupdate: %s is corrupt", ckey);
      goto done;
    }
  } else if (rc != FL_CC_NOTFOUND) {
    resp = mlu_stub_fail(s, "reading the client", rc);
    goto done;
  }
  if (cl.revoked) {
    u.reason = FL_MLU_REVOKED;
    snprintf(detail, sizeof detail, "the client is revoked: %s", cl.reason);
    goto record;
  }
  if (!r.open) {
    u.reason = FL_MLU_ROUND_CLOSED;
    snprintf(detail, sizeof detail, "round %llu is closed", (unsigned long long)u.round);
    goto record;
  }
  if (dup) {
    u.reason = FL_MLU_DUPLICATE;
    snprintf(detail, sizeof detail, "this client already submitted in round %llu",
             (unsigned long long)u.round);
    goto record;
  }
  /* From here on the blob is kept in the blob store, accepted or not: it is
   * the evidence for a shape or outlier rejection. It is the proposal's blob
   * 0, which the committing peer stores with every valid transaction
   * (docs/peer.md, validator stage B: "the proposal's blobs and the
   * read-write set's"), so no fl_cc_put_blob: that would put a second copy
   * of the same bytes into the read-write set of every submission. */
  u.blob_stored = true;
  rc = score(s, &t, &r, blob, &u, detail, sizeof detail);
  if (rc != FL_OK) {
    resp = rc == FL_ECORRUPT
               ? mlu_err(s, 500, "mlupdate: the round's start model or step_from blob is corrupt")
               : mlu_stub_fail(s, "reading the step's model blobs", rc);
    goto done;
  }

record:
  u.detail = u.reason == FL_MLU_OK ? NULL : detail;
  mlu_update_encode(&u, &rec);
  if ((rc = mlu_put(s, key, fl_sbuf_view(&rec))) != FL_CC_OK) {
    resp = mlu_stub_fail(s, "writing the update", rc);
    goto done;
  }
  fl_sbuf_append_str(&ev, "{\"task\":");
  fl_mlu_jw_str(&ev, task);
  fl_sbuf_append_str(&ev, ",\"round\":");
  fl_mlu_jw_u64(&ev, u.round);
  fl_sbuf_append_str(&ev, ",\"client\":");
  fl_mlu_jw_str(&ev, id);
  fl_sbuf_append_str(&ev, ",\"status\":");
  fl_mlu_jw_str(&ev, u.reason == FL_MLU_OK ? "ACCEPTED" : "REJECTED");
  fl_sbuf_append_str(&ev, ",\"reason\":");
  fl_mlu_jw_str(&ev, u.reason == FL_MLU_OK ? NULL : fl_mlu_reason_name(u.reason));
  fl_sbuf_append_str(&ev, ",\"hash\":");
  fl_mlu_jw_hex(&ev, u.hash, MLU_HASH_LEN);
  fl_sbuf_append_str(&ev, "}");
  if ((rc = fl_cc_set_event(s, fl_cc_str("UpdateSubmitted"), fl_cc_bytes(ev.data, ev.len))) !=
      FL_CC_OK) {
    resp = mlu_stub_fail(s, "setting the event", rc);
    goto done;
  }
  resp = mlu_ok(s, &rec);
done:
  fl_sbuf_free(&msg);
  fl_sbuf_free(&rec);
  fl_sbuf_free(&ev);
  mlu_client_free(&cl);
  mlu_round_free(&r);
  mlu_task_free(&t);
  fl_free(id);
  fl_free(key);
  fl_free(ckey);
  fl_free(txid_s);
  fl_free(mspid);
  return resp;
}
