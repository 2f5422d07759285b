/* SPDX-License-Identifier: Apache-2.0
 *
 * cc_records.c: the world-state records of the mlupdate chaincode and their
 * JSON form (docs/mlupdate.md, "Keys and values"). Every encoder writes its
 * keys in one fixed order with the json.h writer, so equal records are equal
 * bytes on every endorser; every decoder reads only what the chaincode
 * itself wrote and calls anything else corrupt.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/cc_int.h"
#include "common/base/alloc.h"

bool mlu_json_hash(const fl_mlu_json_t *j, uint8_t out[MLU_HASH_LEN]) {
  const char *s = fl_mlu_json_str(j);
  return s && j->len == 2 * MLU_HASH_LEN &&
         fl_hex_decode(s, j->len, out, MLU_HASH_LEN) == MLU_HASH_LEN;
}

static void jw_hash_or_null(fl_sbuf_t *b, bool has, const uint8_t *h) {
  if (has)
    fl_mlu_jw_hex(b, h, MLU_HASH_LEN);
  else
    fl_sbuf_append_str(b, "null");
}

static void jw_norms(fl_sbuf_t *b, const double *v, size_t n) {
  fl_sbuf_append_str(b, "[");
  for (size_t i = 0; i < n; i++) {
    if (i) fl_sbuf_append_str(b, ",");
    fl_mlu_jw_num(b, v[i]);
  }
  fl_sbuf_append_str(b, "]");
}

static bool read_norms(const fl_mlu_json_t *a, double **v, size_t *n) {
  *v = NULL;
  *n = 0;
  if (a == NULL || a->kind != FL_MLU_JARR) return false;
  *v = fl_calloc(a->n + 1, sizeof **v);
  for (size_t i = 0; i < a->n; i++)
    if (!fl_mlu_json_num(&a->items[i], &(*v)[i])) return false;
  *n = a->n;
  return true;
}

static char *dup_str(const fl_mlu_json_t *j) {
  const char *s = fl_mlu_json_str(j);
  return s ? fl_strdup(s) : NULL;
}

/* ---- task ------------------------------------------------------------------ */

static const char *const def_keys[] = {
    "arch",        "rule",        "f",           "m",           "clip_norm",
    "max_norm_z",  "min_cosine",  "max_norm",    "norm_window", "min_updates",
    "max_updates", "round_ms",    "reject_limit", "reject_min", "init_hash",
    "collusion",   "median_cosine"};

static bool get_u64(const fl_mlu_json_t *o, const char *k, uint64_t dflt, bool required,
                    uint64_t *v) {
  const fl_mlu_json_t *j = fl_mlu_json_get(o, k);
  if (j == NULL) {
    *v = dflt;
    return !required;
  }
  return fl_mlu_json_u64(j, v);
}

static bool get_num(const fl_mlu_json_t *o, const char *k, double dflt, double *v) {
  const fl_mlu_json_t *j = fl_mlu_json_get(o, k);
  if (j == NULL) {
    *v = dflt;
    return true;
  }
  return fl_mlu_json_num(j, v);
}

/* Reads and checks the parameters shared by the definition and the record. */
static char *read_params(const fl_mlu_json_t *o, mlu_task_t *t) {
  const char *arch = fl_mlu_json_str(fl_mlu_json_get(o, "arch"));
  if (fl_mlu_json_get(o, "arch") && arch == NULL) return fl_strdup("arch must be a string");
  arch = arch ? arch : "";
  if (strlen(arch) > 256) return fl_strdup("arch longer than 256 bytes");
  for (const char *p = arch; *p; p++)
    if (*p < 0x20 || *p > 0x7e) return fl_strdup("arch must be printable ASCII");
  t->arch = fl_strdup(arch);

  const char *rule = fl_mlu_json_str(fl_mlu_json_get(o, "rule"));
  int r = rule ? fl_ml_rule_parse(rule) : -1;
  if (r < 0) return fl_strdup("rule must be one of fedavg, krum, multikrum, median, trimmed, bulyan");
  t->rule = (fl_ml_rule_t)r;

  uint64_t f, m, win, minu, maxu, rms, rmin;
  if (!get_u64(o, "f", 0, false, &f) || f > 1000) return fl_strdup("f must be an integer 0..1000");
  if (!get_u64(o, "m", 0, false, &m) || m > 1000000)
    return fl_strdup("m must be an integer 0..1000000");
  if (!get_u64(o, "norm_window", 3, false, &win) || win < 1 || win > 64)
    return fl_strdup("norm_window must be an integer 1..64");
  if (!get_u64(o, "min_updates", 0, true, &minu) || minu < 1 || minu > 1000000)
    return fl_strdup("min_updates (required) must be an integer 1..1000000");
  if (!get_u64(o, "max_updates", 0, false, &maxu) || (maxu != 0 && maxu < minu))
    return fl_strdup("max_updates must be 0 (unlimited) or >= min_updates");
  if (!get_u64(o, "round_ms", 0, true, &rms) || rms < 1 || rms > ((uint64_t)1 << 40))
    return fl_strdup("round_ms (required) must be an integer 1..2^40");
  if (!get_u64(o, "reject_min", 3, false, &rmin) || rmin < 1 || rmin > 1000000)
    return fl_strdup("reject_min must be an integer 1..1000000");
  t->f = (uint32_t)f;
  t->m = (uint32_t)m;
  t->norm_window = (uint32_t)win;
  t->min_updates = minu;
  t->max_updates = maxu;
  t->round_ms = rms;
  t->reject_min = rmin;

  if (!get_num(o, "clip_norm", 0, &t->clip_norm) || t->clip_norm < 0)
    return fl_strdup("clip_norm must be a number >= 0");
  if (!get_num(o, "max_norm_z", 0, &t->max_norm_z) || t->max_norm_z < 0)
    return fl_strdup("max_norm_z must be a number >= 0 (0 = off)");
  if (!get_num(o, "min_cosine", -1, &t->min_cosine) || t->min_cosine < -1 || t->min_cosine > 1)
    return fl_strdup("min_cosine must be a number in [-1, 1] (-1 = off)");
  if (!get_num(o, "max_norm", 0, &t->max_norm) || t->max_norm < 0)
    return fl_strdup("max_norm must be a number >= 0 (0 = off)");
  if (!get_num(o, "collusion", 0, &t->collusion) || t->collusion < 0 || t->collusion >= 1)
    return fl_strdup("collusion must be a number in [0, 1) (0 = off)");
  if (!get_num(o, "median_cosine", -1, &t->median_cosine) || t->median_cosine < -1 ||
      t->median_cosine > 1)
    return fl_strdup("median_cosine must be a number in [-1, 1] (-1 = off)");
  if (!get_num(o, "reject_limit", 1, &t->reject_limit) || t->reject_limit < 0 ||
      t->reject_limit > 1)
    return fl_strdup("reject_limit must be a number in [0, 1] (1 = never revoke)");
  if (!mlu_json_hash(fl_mlu_json_get(o, "init_hash"), t->init_hash))
    return fl_strdup("init_hash (required) must be 64 hex digits");
  return NULL;
}

char *mlu_task_def_parse(const fl_mlu_json_t *def, mlu_task_t *t) {
  if (def->kind != FL_MLU_JOBJ) return fl_strdup("the task definition must be a JSON object");
  for (size_t i = 0; i < def->n; i++) {
    bool known = false;
    for (size_t k = 0; k < sizeof def_keys / sizeof def_keys[0]; k++)
      known |= strcmp(def->keys[i], def_keys[k]) == 0;
    if (!known) return fl_sprintf("unknown key \"%s\" in the task definition", def->keys[i]);
  }
  return read_params(def, t);
}

void mlu_task_encode(const mlu_task_t *t, fl_sbuf_t *b) {
  fl_sbuf_append_str(b, "{");
  fl_mlu_jw_key(b, "task");
  fl_mlu_jw_str(b, t->id);
  fl_mlu_jw_key(b, "arch");
  fl_mlu_jw_str(b, t->arch);
  fl_mlu_jw_key(b, "tensors");
  fl_sbuf_append_str(b, "[");
  for (uint32_t i = 0; i < t->layout.n_tensors; i++) {
    const fl_ml_tensor_desc_t *d = &t->layout.desc[i];
    fl_sbuf_append_str(b, i ? ",{" : "{");
    fl_mlu_jw_key(b, "name");
    fl_mlu_jw_str(b, d->name);
    fl_mlu_jw_key(b, "shape");
    fl_sbuf_append_str(b, "[");
    for (uint32_t k = 0; k < d->ndim; k++) {
      if (k) fl_sbuf_append_str(b, ",");
      fl_mlu_jw_u64(b, d->dims[k]);
    }
    fl_sbuf_append_str(b, "]}");
  }
  fl_sbuf_append_str(b, "]");
  fl_mlu_jw_key(b, "n_params");
  fl_mlu_jw_u64(b, t->layout.n_values);
  fl_mlu_jw_key(b, "rule");
  fl_mlu_jw_str(b, fl_ml_rule_name(t->rule));
  fl_mlu_jw_key(b, "f");
  fl_mlu_jw_u64(b, t->f);
  fl_mlu_jw_key(b, "m");
  fl_mlu_jw_u64(b, t->m);
  fl_mlu_jw_key(b, "clip_norm");
  fl_mlu_jw_num(b, t->clip_norm);
  fl_mlu_jw_key(b, "max_norm_z");
  fl_mlu_jw_num(b, t->max_norm_z);
  fl_mlu_jw_key(b, "min_cosine");
  fl_mlu_jw_num(b, t->min_cosine);
  fl_mlu_jw_key(b, "max_norm");
  fl_mlu_jw_num(b, t->max_norm);
  fl_mlu_jw_key(b, "collusion");
  fl_mlu_jw_num(b, t->collusion);
  fl_mlu_jw_key(b, "median_cosine");
  fl_mlu_jw_num(b, t->median_cosine);
  fl_mlu_jw_key(b, "norm_window");
  fl_mlu_jw_u64(b, t->norm_window);
  fl_mlu_jw_key(b, "min_updates");
  fl_mlu_jw_u64(b, t->min_updates);
  fl_mlu_jw_key(b, "max_updates");
  fl_mlu_jw_u64(b, t->max_updates);
  fl_mlu_jw_key(b, "round_ms");
  fl_mlu_jw_u64(b, t->round_ms);
  fl_mlu_jw_key(b, "reject_limit");
  fl_mlu_jw_num(b, t->reject_limit);
  fl_mlu_jw_key(b, "reject_min");
  fl_mlu_jw_u64(b, t->reject_min);
  fl_mlu_jw_key(b, "init_hash");
  fl_mlu_jw_hex(b, t->init_hash, MLU_HASH_LEN);
  fl_mlu_jw_key(b, "created_ts");
  fl_mlu_jw_u64(b, t->created_ts);
  fl_mlu_jw_key(b, "created_by");
  fl_mlu_jw_str(b, t->created_by);
  fl_mlu_jw_key(b, "created_tx");
  fl_mlu_jw_str(b, t->created_tx);
  fl_sbuf_append_str(b, "}");
}

fl_status_t mlu_task_decode(fl_buf_t v, mlu_task_t *t) {
  memset(t, 0, sizeof *t);
  fl_mlu_json_t *j = NULL;
  if (fl_mlu_json_parse(v, &j) != FL_OK) return FL_ECORRUPT;
  fl_status_t rc = FL_ECORRUPT;
  const char *id = fl_mlu_json_str(fl_mlu_json_get(j, "task"));
  if (id == NULL || !fl_mlu_task_id_ok(id, strlen(id))) goto done;
  memcpy(t->id, id, strlen(id) + 1);
  char *err = read_params(j, t);
  if (err) {
    fl_free(err);
    goto done;
  }
  const fl_mlu_json_t *ts = fl_mlu_json_get(j, "tensors");
  if (ts == NULL || ts->kind != FL_MLU_JARR || ts->n == 0) goto done;
  for (size_t i = 0; i < ts->n; i++) {
    const char *name = fl_mlu_json_str(fl_mlu_json_get(&ts->items[i], "name"));
    const fl_mlu_json_t *sh = fl_mlu_json_get(&ts->items[i], "shape");
    if (name == NULL || sh == NULL || sh->kind != FL_MLU_JARR || sh->n == 0 ||
        sh->n > FL_ML_TENSOR_MAX_DIMS)
      goto done;
    uint32_t dims[FL_ML_TENSOR_MAX_DIMS];
    for (size_t k = 0; k < sh->n; k++) {
      uint64_t d;
      if (!fl_mlu_json_u64(&sh->items[k], &d) || d == 0 || d > UINT32_MAX) goto done;
      dims[k] = (uint32_t)d;
    }
    if (fl_ml_tensors_add(&t->layout, name, (uint32_t)sh->n, dims) != FL_OK) goto done;
  }
  if (!fl_mlu_json_u64(fl_mlu_json_get(j, "created_ts"), &t->created_ts)) goto done;
  t->created_by = dup_str(fl_mlu_json_get(j, "created_by"));
  t->created_tx = dup_str(fl_mlu_json_get(j, "created_tx"));
  if (t->created_by == NULL || t->created_tx == NULL) goto done;
  rc = FL_OK;
done:
  fl_mlu_json_free(j);
  if (rc != FL_OK) mlu_task_free(t);
  return rc;
}

void mlu_task_free(mlu_task_t *t) {
  if (t == NULL) return;
  fl_free(t->arch);
  fl_free(t->created_by);
  fl_free(t->created_tx);
  fl_ml_tensors_free(&t->layout);
  memset(t, 0, sizeof *t);
}

/* ---- round ------------------------------------------------------------------- */

void mlu_round_encode(const char *task, const mlu_round_t *r, fl_sbuf_t *b) {
  fl_sbuf_append_str(b, "{");
  fl_mlu_jw_key(b, "task");
  fl_mlu_jw_str(b, task);
  fl_mlu_jw_key(b, "round");
  fl_mlu_jw_u64(b, r->round);
  fl_mlu_jw_key(b, "status");
  fl_mlu_jw_str(b, r->open ? "OPEN" : "CLOSED");
  fl_mlu_jw_key(b, "start_model");
  fl_mlu_jw_hex(b, r->start_model, MLU_HASH_LEN);
  fl_mlu_jw_key(b, "step_from");
  jw_hash_or_null(b, r->has_step, r->step_from);
  fl_mlu_jw_key(b, "ref_norms");
  jw_norms(b, r->ref_norms, r->n_ref);
  fl_mlu_jw_key(b, "opened_ts");
  fl_mlu_jw_u64(b, r->opened_ts);
  fl_mlu_jw_key(b, "deadline_ts");
  fl_mlu_jw_u64(b, r->deadline_ts);
  fl_mlu_jw_key(b, "opened_tx");
  fl_mlu_jw_str(b, r->opened_tx);
  if (r->open) {
    fl_sbuf_append_str(b, ",\"closed_ts\":null,\"closed_tx\":null,\"end_model\":null,"
                          "\"submitted\":null,\"accepted\":null,\"rejected\":null,"
                          "\"aggregated\":null,\"accepted_norms\":null}");
    return;
  }
  fl_mlu_jw_key(b, "closed_ts");
  fl_mlu_jw_u64(b, r->closed_ts);
  fl_mlu_jw_key(b, "closed_tx");
  fl_mlu_jw_str(b, r->closed_tx);
  fl_mlu_jw_key(b, "end_model");
  fl_mlu_jw_hex(b, r->end_model, MLU_HASH_LEN);
  fl_mlu_jw_key(b, "submitted");
  fl_mlu_jw_u64(b, r->submitted);
  fl_mlu_jw_key(b, "accepted");
  fl_mlu_jw_u64(b, r->accepted);
  fl_mlu_jw_key(b, "rejected");
  fl_mlu_jw_u64(b, r->rejected);
  fl_mlu_jw_key(b, "aggregated");
  fl_mlu_jw_u64(b, r->aggregated);
  fl_mlu_jw_key(b, "accepted_norms");
  jw_norms(b, r->acc_norms, r->n_acc);
  fl_sbuf_append_str(b, "}");
}

fl_status_t mlu_round_decode(fl_buf_t v, mlu_round_t *r) {
  memset(r, 0, sizeof *r);
  fl_mlu_json_t *j = NULL;
  if (fl_mlu_json_parse(v, &j) != FL_OK) return FL_ECORRUPT;
  fl_status_t rc = FL_ECORRUPT;
  const char *st = fl_mlu_json_str(fl_mlu_json_get(j, "status"));
  if (st == NULL || (strcmp(st, "OPEN") != 0 && strcmp(st, "CLOSED") != 0)) goto done;
  r->open = strcmp(st, "OPEN") == 0;
  if (!fl_mlu_json_u64(fl_mlu_json_get(j, "round"), &r->round) ||
      !mlu_json_hash(fl_mlu_json_get(j, "start_model"), r->start_model) ||
      !fl_mlu_json_u64(fl_mlu_json_get(j, "opened_ts"), &r->opened_ts) ||
      !fl_mlu_json_u64(fl_mlu_json_get(j, "deadline_ts"), &r->deadline_ts) ||
      !read_norms(fl_mlu_json_get(j, "ref_norms"), &r->ref_norms, &r->n_ref))
    goto done;
  const fl_mlu_json_t *from = fl_mlu_json_get(j, "step_from");
  if (from == NULL) goto done;
  if (from->kind != FL_MLU_JNULL) {
    if (!mlu_json_hash(from, r->step_from)) goto done;
    r->has_step = true;
  }
  r->opened_tx = dup_str(fl_mlu_json_get(j, "opened_tx"));
  if (r->opened_tx == NULL) goto done;
  if (!r->open) {
    r->closed_tx = dup_str(fl_mlu_json_get(j, "closed_tx"));
    if (r->closed_tx == NULL ||
        !fl_mlu_json_u64(fl_mlu_json_get(j, "closed_ts"), &r->closed_ts) ||
        !mlu_json_hash(fl_mlu_json_get(j, "end_model"), r->end_model) ||
        !fl_mlu_json_u64(fl_mlu_json_get(j, "submitted"), &r->submitted) ||
        !fl_mlu_json_u64(fl_mlu_json_get(j, "accepted"), &r->accepted) ||
        !fl_mlu_json_u64(fl_mlu_json_get(j, "rejected"), &r->rejected) ||
        !fl_mlu_json_u64(fl_mlu_json_get(j, "aggregated"), &r->aggregated) ||
        !read_norms(fl_mlu_json_get(j, "accepted_norms"), &r->acc_norms, &r->n_acc))
      goto done;
  }
  rc = FL_OK;
done:
  fl_mlu_json_free(j);
  if (rc != FL_OK) mlu_round_free(r);
  return rc;
}

void mlu_round_free(mlu_round_t *r) {
  if (r == NULL) return;
  fl_free(r->ref_norms);
  fl_free(r->acc_norms);
  fl_free(r->opened_tx);
  fl_free(r->closed_tx);
  memset(r, 0, sizeof *r);
}

/* ---- update ------------------------------------------------------------------- */

void mlu_update_encode(const mlu_update_t *u, fl_sbuf_t *b) {
  fl_sbuf_append_str(b, "{");
  fl_mlu_jw_key(b, "task");
  fl_mlu_jw_str(b, u->task);
  fl_mlu_jw_key(b, "round");
  fl_mlu_jw_u64(b, u->round);
  fl_mlu_jw_key(b, "client");
  fl_mlu_jw_str(b, u->client);
  fl_mlu_jw_key(b, "mspid");
  fl_mlu_jw_str(b, u->mspid);
  fl_mlu_jw_key(b, "cert_sha256");
  fl_mlu_jw_hex(b, u->cert_sha256, MLU_HASH_LEN);
  fl_mlu_jw_key(b, "tx_id");
  fl_mlu_jw_str(b, u->tx_id);
  fl_mlu_jw_key(b, "ts");
  fl_mlu_jw_u64(b, u->ts);
  fl_mlu_jw_key(b, "hash");
  fl_mlu_jw_hex(b, u->hash, MLU_HASH_LEN);
  fl_mlu_jw_key(b, "blob_sha256");
  fl_mlu_jw_hex(b, u->blob_sha256, MLU_HASH_LEN);
  fl_mlu_jw_key(b, "signature");
  fl_mlu_jw_hex(b, u->signature.data, u->signature.len);
  fl_mlu_jw_key(b, "samples");
  fl_mlu_jw_u64(b, u->samples);
  fl_mlu_jw_key(b, "data_hash");
  fl_mlu_jw_hex(b, u->data_hash, MLU_HASH_LEN);
  fl_mlu_jw_key(b, "norm");
  if (u->has_scores) fl_mlu_jw_num(b, u->norm); else fl_sbuf_append_str(b, "null");
  fl_mlu_jw_key(b, "norm_z");
  if (u->has_scores) fl_mlu_jw_num(b, u->norm_z); else fl_sbuf_append_str(b, "null");
  fl_mlu_jw_key(b, "cosine");
  if (u->has_scores) fl_mlu_jw_num(b, u->cosine); else fl_sbuf_append_str(b, "null");
  fl_mlu_jw_key(b, "blob_stored");
  fl_sbuf_append_str(b, u->blob_stored ? "true" : "false");
  fl_mlu_jw_key(b, "status");
  fl_mlu_jw_str(b, u->reason == FL_MLU_OK ? "ACCEPTED" : "REJECTED");
  fl_mlu_jw_key(b, "reason");
  fl_mlu_jw_str(b, u->reason == FL_MLU_OK ? NULL : fl_mlu_reason_name(u->reason));
  fl_mlu_jw_key(b, "reason_code");
  fl_mlu_jw_u64(b, (uint64_t)u->reason);
  fl_mlu_jw_key(b, "detail");
  fl_mlu_jw_str(b, u->detail);
  fl_sbuf_append_str(b, "}");
}

fl_status_t mlu_update_view(fl_buf_t v, mlu_upd_view_t *u) {
  memset(u, 0, sizeof *u);
  fl_mlu_json_t *j = NULL;
  if (fl_mlu_json_parse(v, &j) != FL_OK) return FL_ECORRUPT;
  fl_status_t rc = FL_ECORRUPT;
  const char *client = fl_mlu_json_str(fl_mlu_json_get(j, "client"));
  const char *st = fl_mlu_json_str(fl_mlu_json_get(j, "status"));
  if (client == NULL || st == NULL || !mlu_json_hash(fl_mlu_json_get(j, "hash"), u->hash) ||
      !fl_mlu_json_u64(fl_mlu_json_get(j, "samples"), &u->samples) ||
      !fl_mlu_json_u64(fl_mlu_json_get(j, "ts"), &u->ts))
    goto done;
  u->accepted = strcmp(st, "ACCEPTED") == 0;
  if (!u->accepted && strcmp(st, "REJECTED") != 0) goto done;
  if (u->accepted && !fl_mlu_json_num(fl_mlu_json_get(j, "norm"), &u->norm)) goto done;
  u->client = fl_strdup(client);
  rc = FL_OK;
done:
  fl_mlu_json_free(j);
  return rc;
}

void mlu_upd_view_free(mlu_upd_view_t *u) {
  if (u == NULL) return;
  fl_free(u->client);
  memset(u, 0, sizeof *u);
}

/* ---- client ------------------------------------------------------------------- */

void mlu_client_encode(const char *id, const mlu_client_t *c, fl_sbuf_t *b) {
  fl_sbuf_append_str(b, "{");
  fl_mlu_jw_key(b, "client");
  fl_mlu_jw_str(b, id);
  fl_mlu_jw_key(b, "accepted");
  fl_mlu_jw_u64(b, c->accepted);
  fl_mlu_jw_key(b, "rejected");
  fl_mlu_jw_u64(b, c->rejected);
  fl_mlu_jw_key(b, "revoked");
  fl_sbuf_append_str(b, c->revoked ? "true" : "false");
  fl_mlu_jw_key(b, "revoked_reason");
  fl_mlu_jw_str(b, c->revoked ? c->reason : NULL);
  fl_mlu_jw_key(b, "revoked_by");
  fl_mlu_jw_str(b, c->revoked ? c->revoked_by : NULL);
  fl_mlu_jw_key(b, "revoked_tx");
  fl_mlu_jw_str(b, c->revoked ? c->revoked_tx : NULL);
  fl_mlu_jw_key(b, "revoked_ts");
  if (c->revoked)
    fl_mlu_jw_u64(b, c->revoked_ts);
  else
    fl_sbuf_append_str(b, "null");
  fl_sbuf_append_str(b, "}");
}

fl_status_t mlu_client_decode(fl_buf_t v, mlu_client_t *c) {
  memset(c, 0, sizeof *c);
  fl_mlu_json_t *j = NULL;
  if (fl_mlu_json_parse(v, &j) != FL_OK) return FL_ECORRUPT;
  fl_status_t rc = FL_ECORRUPT;
  const fl_mlu_json_t *rv = fl_mlu_json_get(j, "revoked");
  if (!fl_mlu_json_u64(fl_mlu_json_get(j, "accepted"), &c->accepted) ||
      !fl_mlu_json_u64(fl_mlu_json_get(j, "rejected"), &c->rejected) || rv == NULL ||
      rv->kind != FL_MLU_JBOOL)
    goto done;
  c->revoked = rv->b;
  if (c->revoked) {
    c->reason = dup_str(fl_mlu_json_get(j, "revoked_reason"));
    c->revoked_by = dup_str(fl_mlu_json_get(j, "revoked_by"));
    c->revoked_tx = dup_str(fl_mlu_json_get(j, "revoked_tx"));
    if (c->reason == NULL || c->revoked_by == NULL || c->revoked_tx == NULL ||
        !fl_mlu_json_u64(fl_mlu_json_get(j, "revoked_ts"), &c->revoked_ts))
      goto done;
  }
  rc = FL_OK;
done:
  fl_mlu_json_free(j);
  if (rc != FL_OK) mlu_client_free(c);
  return rc;
}

void mlu_client_free(mlu_client_t *c) {
  if (c == NULL) return;
  fl_free(c->reason);
  fl_free(c->revoked_by);
  fl_free(c->revoked_tx);
  memset(c, 0, sizeof *c);
}
