/* SPDX-License-Identifier: Apache-2.0
 *
 * cc_close.c: CloseRound, the round keeper's transaction.
 *
 *   CloseRound <task> <round>      (creator role admin or peer)
 *
 * If the round is CLOSED already: 200, the round record as payload, no
 * write (duplicate round keepers are harmless). If it is OPEN it closes
 * when at least min_updates updates were ACCEPTED or the proposal's
 * timestamp has reached the round's deadline_ts; otherwise 400 and no
 * transaction. Closing:
 *   1. scans update/<t>/<r>/ (key order = client id order) and takes the
 *      ACCEPTED first submissions; beyond max_updates it keeps the earliest
 *      by (ts, client id) and lists the rest as not aggregated;
 *   2. loads the start model and every aggregated update from the blob
 *      store (fl_cc_get_stored_blob; blob/<hash> state as a fallback),
 *      runs fl_ml_aggregate with the task's rule in client id order (f is
 *      lowered to what the count allows, as the plain-FL runner does);
 *   3. new global model = start model + aggregate, value by value in float;
 *      the "global step", the cosine reference of the next round, is new
 *      model - start model in float (SubmitUpdate computes it from the two
 *      stored models, so no step blob is written); no accepted update: the
 *      model is unchanged and the previous step carries over (step_from);
 *   4. puts the new model in the blob store (fl_cc_put_blob: once, in the
 *      transaction's blobs), writes model/<t>/<r>, round/<t>/<r> CLOSED with
 *      its counts and accepted norms, round/<t>/<r+1> OPEN with the new
 *      model, step_from (this round's start model, or the carried-over one),
 *      the reference norms (accepted norms of the last norm_window rounds)
 *      and its deadline (this proposal's timestamp + round_ms);
 *   5. adds every record of the round to its client's counts and revokes a
 *      client whose rejected/submitted exceeds reject_limit once it has at
 *      least reject_min submissions.
 * Every step is a pure function of the committed state and the proposal, so
 * every endorser writes the same bytes.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaincode/mlupdate/cc_int.h"
#include "common/base/alloc.h"

typedef struct rec_s {
  mlu_upd_view_t v;
  bool attempt; /* an update/<t>/<r>/<client>/<tx> key */
  size_t idx;   /* scan position, for stable sorts */
} rec_t;

static int cmp_ts(const void *a, const void *b) {
  const rec_t *x = *(rec_t *const *)a, *y = *(rec_t *const *)b;
  if (x->v.ts != y->v.ts) return x->v.ts < y->v.ts ? -1 : 1;
  int c = strcmp(x->v.client, y->v.client);
  return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

static int cmp_client(const void *a, const void *b) {
  const rec_t *x = *(rec_t *const *)a, *y = *(rec_t *const *)b;
  int c = strcmp(x->v.client, y->v.client);
  return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

/* Reads every record of the round, in key order. */
static int scan_round(fl_cc_stub_t *s, const char *task, uint64_t round, rec_t **out,
                      size_t *n) {
  char *start = fl_sprintf("update/%s/%" PRIu64 "/", task, round);
  size_t plen = strlen(start);
  char *end = fl_strdup(start);
  end[plen - 1] = '0'; /* '/' + 1 */
  fl_cc_range_iter_t *it = NULL;
  int rc = fl_cc_get_state_range(s, fl_cc_str(start), fl_cc_str(end), &it);
  fl_free(end);
  *out = NULL;
  *n = 0;
  size_t cap = 0;
  if (rc != FL_CC_OK) goto done;
  fl_cc_kv_t kv;
  while ((rc = fl_cc_range_next(it, &kv)) == FL_CC_OK) {
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      *out = fl_realloc(*out, cap * sizeof **out);
    }
    rec_t *r = &(*out)[*n];
    memset(r, 0, sizeof *r);
    if (mlu_update_view(FL_BUF(kv.value.data, kv.value.len), &r->v) != FL_OK) {
      rc = FL_ECORRUPT;
      break;
    }
    r->idx = (*n)++;
    r->attempt = memchr(kv.key.data + plen, '/', kv.key.len - plen) != NULL;
  }
  fl_cc_range_close(it);
  if (rc == FL_CC_NOTFOUND) rc = FL_CC_OK;
done:
  fl_free(start);
  return rc;
}

static void weights_for(fl_ml_rule_t rule, const uint64_t *samples, const uint8_t *sel,
                        size_t n, double *w) {
  double sum = 0;
  size_t nsel = 0;
  for (size_t i = 0; i < n; i++)
    if (sel[i]) {
      sum += (double)samples[i];
      nsel++;
    }
  for (size_t i = 0; i < n; i++) {
    if (!sel[i] || nsel == 0) {
      w[i] = 0;
    } else if (rule == FL_ML_RULE_FEDAVG || rule == FL_ML_RULE_MULTIKRUM) {
      w[i] = (double)samples[i] / sum;
    } else {
      w[i] = 1.0 / (double)nsel; /* Krum: 1; median, trimmed, Bulyan: equal share */
    }
  }
}

/* Updates the client records of the round; appends revoked ids to revoked
 * (a JSON array body). */
static int update_clients(fl_cc_stub_t *s, const mlu_task_t *t, uint64_t round, rec_t **all,
                          size_t n, fl_sbuf_t *revoked, fl_cc_response_t *err) {
  qsort(all, n, sizeof *all, cmp_client);
  fl_cc_bytes_t txid = fl_cc_get_tx_id(s);
  uint64_t ts = fl_cc_get_timestamp(s);
  int rc = FL_CC_OK;
  for (size_t i = 0; i < n && rc == FL_CC_OK;) {
    size_t j = i;
    uint64_t acc = 0, rej = 0;
    while (j < n && strcmp(all[j]->v.client, all[i]->v.client) == 0) {
      if (all[j]->v.accepted)
        acc++;
      else
        rej++;
      j++;
    }
    const char *id = all[i]->v.client;
    char *key = fl_mlu_key_client(id);
    mlu_client_t c = {0};
    fl_sbuf_t rec = {0};
    fl_cc_bytes_t v;
    rc = mlu_get(s, key, &v);
    if (rc == FL_CC_OK) {
      if (mlu_client_decode(FL_BUF(v.data, v.len), &c) != FL_OK) {
        *err = mlu_err(s, 500, "mlupdate: %s is corrupt", key);
        rc = FL_ECORRUPT;
      }
    } else if (rc == FL_CC_NOTFOUND) {
      rc = FL_CC_OK;
    } else {
      *err = mlu_stub_fail(s, "reading a client", rc);
    }
    if (rc == FL_CC_OK) {
      c.accepted += acc;
      c.rejected += rej;
      uint64_t total = c.accepted + c.rejected;
      if (!c.revoked && total >= t->reject_min &&
          (double)c.rejected / (double)total > t->reject_limit) {
        c.revoked = true;
        c.reason = fl_sprintf("automatic: %" PRIu64 " of %" PRIu64
                              " updates rejected, above the limit %.6g of task %s (round %" PRIu64
                              ")",
                              c.rejected, total, t->reject_limit, t->id, round);
        c.revoked_by = fl_strdup(FL_MLU_NAME);
        c.revoked_tx = fl_strndup((const char *)txid.data, txid.len);
        c.revoked_ts = ts;
        if (revoked->len) fl_sbuf_append_str(revoked, ",");
        fl_mlu_jw_str(revoked, id);
      }
      mlu_client_encode(id, &c, &rec);
      rc = mlu_put(s, key, fl_sbuf_view(&rec));
      if (rc != FL_CC_OK) *err = mlu_stub_fail(s, "writing a client", rc);
    }
    fl_sbuf_free(&rec);
    mlu_client_free(&c);
    fl_free(key);
    i = j;
  }
  return rc;
}

fl_cc_response_t mlu_close_round(fl_cc_stub_t *s, size_t argc, const fl_cc_bytes_t *argv) {
  char task[FL_MLU_TASK_MAX + 1];
  uint64_t round;
  if (argc != 3 || !fl_mlu_task_id_ok((const char *)argv[1].data, argv[1].len) ||
      !mlu_arg_u64(argv[2], &round))
    return mlu_err(s, 400, "mlupdate: CloseRound <task> <round>");
  memcpy(task, argv[1].data, argv[1].len);
  task[argv[1].len] = '\0';
  fl_cc_creator_t cr;
  fl_cc_get_creator(s, &cr);
  if (!fl_cc_eq(cr.role, "admin") && !fl_cc_eq(cr.role, "peer"))
    return mlu_err(s, 403, "mlupdate: CloseRound needs the admin or peer role");

  fl_cc_response_t resp;
  mlu_task_t t = {0};
  mlu_round_t r = {0}, next = {0};
  rec_t *recs = NULL, **acc = NULL, **all = NULL;
  size_t nrec = 0, nacc = 0, nagg = 0;
  fl_ml_tensors_t model = {0}, upd = {0}, step = {0};
  float *rows = NULL;
  double *w = NULL, *wout = NULL;
  uint64_t *samples = NULL;
  uint8_t *sel = NULL;
  char *rkey = NULL, *txid_s = NULL;
  fl_sbuf_t mrec = {0}, rrec = {0}, nrrec = {0}, blob = {0}, ev = {0}, revoked = {0};
  bool ok;
  int rc;

  resp = mlu_load_task(s, task, &t, &ok);
  if (!ok) goto done;
  rkey = fl_mlu_key_round(task, round);
  fl_cc_bytes_t v;
  rc = mlu_get(s, rkey, &v);
  if (rc == FL_CC_NOTFOUND) {
    resp = mlu_err(s, 404, "mlupdate: round %" PRIu64 " of task %s does not exist", round, task);
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
  if (!r.open) {
    resp = fl_cc_success(v); /* idempotent: already closed, no write */
    goto done;
  }

  rc = scan_round(s, task, round, &recs, &nrec);
  if (rc != FL_CC_OK) {
    resp = rc == FL_ECORRUPT ? mlu_err(s, 500, "mlupdate: an update record is corrupt")
                             : mlu_stub_fail(s, "scanning updates", rc);
    goto done;
  }
  acc = fl_calloc(nrec + 1, sizeof *acc);
  all = fl_calloc(nrec + 1, sizeof *all);
  for (size_t i = 0; i < nrec; i++) {
    all[i] = &recs[i];
    if (recs[i].v.accepted && !recs[i].attempt) acc[nacc++] = &recs[i];
  }
  uint64_t now = fl_cc_get_timestamp(s);
  if (nacc < t.min_updates && now < r.deadline_ts) {
    resp = mlu_err(s, 400,
                   "mlupdate: round %" PRIu64 " not ready: %zu accepted of min_updates %" PRIu64
                   ", deadline in %" PRIu64 " ms",
                   round, nacc, t.min_updates, r.deadline_ts - now);
    goto done;
  }
  /* Cap: the earliest max_updates by (ts, client), then back to client order. */
  nagg = nacc;
  if (t.max_updates && nacc > t.max_updates) {
    qsort(acc, nacc, sizeof *acc, cmp_ts);
    nagg = (size_t)t.max_updates;
    qsort(acc, nagg, sizeof *acc, cmp_client);
    qsort(acc + nagg, nacc - nagg, sizeof *acc, cmp_client);
  }

  rc = mlu_load_blob(s, r.start_model, &model);
  if (rc != FL_OK || !fl_ml_tensors_same_layout(&model, &t.layout)) {
    resp = mlu_err(s, 500, "mlupdate: the round's start model blob is missing or corrupt (%d)", rc);
    goto done;
  }
  size_t P = model.n_values;
  uint8_t new_hash[MLU_HASH_LEN], step_from[MLU_HASH_LEN];
  bool has_step = r.has_step;
  memcpy(new_hash, r.start_model, MLU_HASH_LEN);
  if (has_step) memcpy(step_from, r.step_from, MLU_HASH_LEN);
  fl_ml_agg_opts_t ag = {.rule = t.rule, .f = t.f, .m = t.m, .clip_norm = t.clip_norm,
                         .collusion = t.collusion, .dir_filter = t.median_cosine > -1,
                         .dir_min_cos = t.median_cosine > -1 ? t.median_cosine : 0};
  sel = fl_calloc(nagg + 1, 1);
  wout = fl_calloc(nagg + 1, sizeof *wout);
  samples = fl_calloc(nagg + 1, sizeof *samples);
  if (nagg > 0) {
    rows = fl_malloc(nagg * P * sizeof(float));
    w = fl_malloc(nagg * sizeof(double));
    for (size_t i = 0; i < nagg; i++) {
      rc = mlu_load_blob(s, acc[i]->v.hash, &upd);
      if (rc != FL_OK || !fl_ml_tensors_same_layout(&upd, &t.layout)) {
        resp = mlu_err(s, 500, "mlupdate: the blob of %s's update is missing or corrupt (%d)",
                       acc[i]->v.client, rc);
        goto done;
      }
      memcpy(rows + i * P, upd.values, P * sizeof(float));
      fl_ml_tensors_free(&upd);
      w[i] = (double)acc[i]->v.samples;
      samples[i] = acc[i]->v.samples;
    }
    size_t n = nagg;
    uint32_t f = ag.f;
    while (f > 0 && ((t.rule == FL_ML_RULE_BULYAN && n < 4 * (size_t)f + 3) ||
                     ((t.rule == FL_ML_RULE_KRUM || t.rule == FL_ML_RULE_MULTIKRUM) &&
                      n < 2 * (size_t)f + 3) ||
                     (t.rule == FL_ML_RULE_TRIMMED && n <= 2 * (size_t)f)))
      f--;
    ag.f = f;
    if (ag.m > n) ag.m = (uint32_t)n;
    fl_ml_tensors_copy(&step, &model);
    if (fl_ml_aggregate(rows, w, n, P, &ag, step.values, sel) != FL_OK) {
      resp = mlu_err(s, 500, "mlupdate: aggregation failed (%s, %zu updates)",
                     fl_ml_rule_name(t.rule), n);
      goto done;
    }
    for (size_t j = 0; j < P; j++) model.values[j] += step.values[j];
    weights_for(t.rule, samples, sel, n, wout);
    if (fl_ml_blob_encode(&model, &blob) != FL_OK) {
      resp = mlu_err(s, 500, "mlupdate: the new global model is not finite");
      goto done;
    }
    if ((rc = fl_cc_put_blob(s, fl_cc_bytes(blob.data, blob.len), new_hash)) != FL_CC_OK) {
      resp = mlu_stub_fail(s, "storing the model", rc);
      goto done;
    }
    memcpy(step_from, r.start_model, MLU_HASH_LEN);
    has_step = true;
  }

  fl_cc_bytes_t txid = fl_cc_get_tx_id(s);
  txid_s = fl_strndup((const char *)txid.data, txid.len);

  /* model/<t>/<r> */
  fl_sbuf_append_str(&mrec, "{");
  fl_mlu_jw_key(&mrec, "task");
  fl_mlu_jw_str(&mrec, task);
  fl_mlu_jw_key(&mrec, "round");
  fl_mlu_jw_u64(&mrec, round);
  fl_mlu_jw_key(&mrec, "hash");
  fl_mlu_jw_hex(&mrec, new_hash, MLU_HASH_LEN);
  fl_mlu_jw_key(&mrec, "parent");
  fl_mlu_jw_hex(&mrec, r.start_model, MLU_HASH_LEN);
  fl_mlu_jw_key(&mrec, "rule");
  fl_mlu_jw_str(&mrec, fl_ml_rule_name(t.rule));
  fl_mlu_jw_key(&mrec, "f");
  fl_mlu_jw_u64(&mrec, ag.f);
  fl_mlu_jw_key(&mrec, "m");
  fl_mlu_jw_u64(&mrec, ag.m);
  fl_mlu_jw_key(&mrec, "clip_norm");
  fl_mlu_jw_num(&mrec, t.clip_norm);
  fl_mlu_jw_key(&mrec, "n_params");
  fl_mlu_jw_u64(&mrec, P);
  fl_mlu_jw_key(&mrec, "closed_ts");
  fl_mlu_jw_u64(&mrec, now);
  fl_mlu_jw_key(&mrec, "tx_id");
  fl_mlu_jw_str(&mrec, txid_s);
  fl_mlu_jw_key(&mrec, "updates");
  fl_sbuf_append_str(&mrec, "[");
  for (size_t i = 0; i < nagg; i++) {
    fl_sbuf_append_str(&mrec, i ? ",{" : "{");
    fl_mlu_jw_key(&mrec, "client");
    fl_mlu_jw_str(&mrec, acc[i]->v.client);
    fl_mlu_jw_key(&mrec, "hash");
    fl_mlu_jw_hex(&mrec, acc[i]->v.hash, MLU_HASH_LEN);
    fl_mlu_jw_key(&mrec, "samples");
    fl_mlu_jw_u64(&mrec, acc[i]->v.samples);
    fl_mlu_jw_key(&mrec, "norm");
    fl_mlu_jw_num(&mrec, acc[i]->v.norm);
    fl_mlu_jw_key(&mrec, "selected");
    fl_sbuf_append_str(&mrec, sel[i] ? "true" : "false");
    fl_mlu_jw_key(&mrec, "weight");
    fl_mlu_jw_num(&mrec, wout[i]);
    fl_sbuf_append_str(&mrec, "}");
  }
  fl_sbuf_append_str(&mrec, "]");
  fl_mlu_jw_key(&mrec, "not_aggregated");
  fl_sbuf_append_str(&mrec, "[");
  for (size_t i = nagg; i < nacc; i++) {
    fl_sbuf_append_str(&mrec, i > nagg ? ",{" : "{");
    fl_mlu_jw_key(&mrec, "client");
    fl_mlu_jw_str(&mrec, acc[i]->v.client);
    fl_mlu_jw_key(&mrec, "hash");
    fl_mlu_jw_hex(&mrec, acc[i]->v.hash, MLU_HASH_LEN);
    fl_sbuf_append_str(&mrec, "}");
  }
  fl_sbuf_append_str(&mrec, "]}");

  /* round/<t>/<r> CLOSED; accepted norms in client order. */
  r.open = false;
  r.closed_ts = now;
  r.closed_tx = fl_strdup(txid_s);
  memcpy(r.end_model, new_hash, MLU_HASH_LEN);
  r.submitted = nrec;
  r.accepted = nacc;
  r.rejected = nrec - nacc;
  r.aggregated = nagg;
  r.acc_norms = fl_calloc(nacc + 1, sizeof(double));
  r.n_acc = 0;
  for (size_t i = 0; i < nrec; i++)
    if (recs[i].v.accepted && !recs[i].attempt) r.acc_norms[r.n_acc++] = recs[i].v.norm;
  mlu_round_encode(task, &r, &rrec);

  /* round/<t>/<r+1> OPEN: reference norms of the last norm_window rounds,
   * oldest first. */
  next.round = round + 1;
  next.open = true;
  memcpy(next.start_model, new_hash, MLU_HASH_LEN);
  next.has_step = has_step;
  if (has_step) memcpy(next.step_from, step_from, MLU_HASH_LEN);
  next.opened_ts = now;
  next.deadline_ts = now + t.round_ms;
  next.opened_tx = fl_strdup(txid_s);
  uint64_t first = round + 1 >= t.norm_window ? round + 1 - t.norm_window : 0;
  fl_sbuf_t norms = {0};
  for (uint64_t k = first; k < round; k++) {
    char *key = fl_mlu_key_round(task, k);
    mlu_round_t old;
    rc = mlu_get(s, key, &v);
    fl_free(key);
    if (rc != FL_CC_OK || mlu_round_decode(FL_BUF(v.data, v.len), &old) != FL_OK) {
      fl_sbuf_free(&norms);
      resp = rc != FL_CC_OK ? mlu_stub_fail(s, "reading an old round", rc)
                            : mlu_err(s, 500, "mlupdate: round %" PRIu64 " is corrupt", k);
      goto done;
    }
    fl_sbuf_append(&norms, old.acc_norms, old.n_acc * sizeof(double));
    mlu_round_free(&old);
  }
  fl_sbuf_append(&norms, r.acc_norms, r.n_acc * sizeof(double));
  next.n_ref = norms.len / sizeof(double);
  next.ref_norms = (double *)(void *)fl_sbuf_detach(&norms, NULL);
  mlu_round_encode(task, &next, &nrrec);

  char *mkey = fl_mlu_key_model(task, round), *nkey = fl_mlu_key_round(task, round + 1);
  rc = mlu_put(s, mkey, fl_sbuf_view(&mrec));
  if (rc == FL_CC_OK) rc = mlu_put(s, rkey, fl_sbuf_view(&rrec));
  if (rc == FL_CC_OK) rc = mlu_put(s, nkey, fl_sbuf_view(&nrrec));
  fl_free(mkey);
  fl_free(nkey);
  if (rc != FL_CC_OK) {
    resp = mlu_stub_fail(s, "writing the round", rc);
    goto done;
  }
  if (update_clients(s, &t, round, all, nrec, &revoked, &resp) != FL_CC_OK) goto done;

  fl_sbuf_append_str(&ev, "{\"task\":");
  fl_mlu_jw_str(&ev, task);
  fl_sbuf_append_str(&ev, ",\"round\":");
  fl_mlu_jw_u64(&ev, round);
  fl_sbuf_append_str(&ev, ",\"model\":");
  fl_mlu_jw_hex(&ev, new_hash, MLU_HASH_LEN);
  fl_sbuf_append_str(&ev, ",\"accepted\":");
  fl_mlu_jw_u64(&ev, nacc);
  fl_sbuf_append_str(&ev, ",\"aggregated\":");
  fl_mlu_jw_u64(&ev, nagg);
  fl_sbuf_append_str(&ev, ",\"next_round\":");
  fl_mlu_jw_u64(&ev, round + 1);
  fl_sbuf_append_str(&ev, ",\"revoked\":[");
  fl_sbuf_append(&ev, revoked.data, revoked.len);
  fl_sbuf_append_str(&ev, "]}");
  if ((rc = fl_cc_set_event(s, fl_cc_str("RoundClosed"), fl_cc_bytes(ev.data, ev.len))) !=
      FL_CC_OK) {
    resp = mlu_stub_fail(s, "setting the event", rc);
    goto done;
  }
  resp = mlu_ok(s, &mrec);
done:
  for (size_t i = 0; i < nrec; i++) mlu_upd_view_free(&recs[i].v);
  fl_free(recs);
  fl_free(acc);
  fl_free(all);
  fl_ml_tensors_free(&model);
  fl_ml_tensors_free(&upd);
  fl_ml_tensors_free(&step);
  fl_free(rows);
  fl_free(w);
  fl_free(wout);
  fl_free(samples);
  fl_free(sel);
  fl_free(rkey);
  fl_free(txid_s);
  fl_sbuf_free(&mrec);
  fl_sbuf_free(&rrec);
  fl_sbuf_free(&nrrec);
  fl_sbuf_free(&blob);
  fl_sbuf_free(&ev);
  fl_sbuf_free(&revoked);
  mlu_round_free(&r);
  mlu_round_free(&next);
  mlu_task_free(&t);
  return resp;
}
