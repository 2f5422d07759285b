/* SPDX-License-Identifier: Apache-2.0
 *
 * ledger.c: mlupdate records and events decoded for the edge and the keeper,
 * and the reconnecting Gateway SDK session (ledger.h).
 */
#include "ml/edge/ledger.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chaincode/mlupdate/json.h"
#include "chaincode/mlupdate/mlupdate.h"
#include "common/base/alloc.h"
#include "common/base/log.h"
#include "ml/edge/opts.h"
#include "ml/edge/update.h"

#define LOGM "edge"

/* ---- record parsing ------------------------------------------------------------- */

/* err = prefix + "\"" + what + "\"" (a record field name). */
static void seterr(char *err, size_t errlen, const char *prefix, const char *what) {
  if (err != NULL && errlen > 0) snprintf(err, errlen, "%s%s", prefix, what);
}

static bool get_u64(const fl_mlu_json_t *o, const char *k, uint64_t *v) {
  return fl_mlu_json_u64(fl_mlu_json_get(o, k), v);
}

static bool get_hash(const fl_mlu_json_t *o, const char *k, uint8_t out[32]) {
  const char *s = fl_mlu_json_str(fl_mlu_json_get(o, k));
  return s != NULL && strlen(s) == 64 && fl_hex_decode(s, 64, out, 32) == 32;
}

static bool copy_str(const fl_mlu_json_t *o, const char *k, char *dst, size_t cap) {
  const fl_mlu_json_t *j = fl_mlu_json_get(o, k);
  if (j == NULL || j->kind == FL_MLU_JNULL) {
    dst[0] = '\0';
    return true;
  }
  const char *s = fl_mlu_json_str(j);
  if (s == NULL) return false;
  snprintf(dst, cap, "%s", s);
  return true;
}

static fl_status_t parse_obj(fl_buf_t json, fl_mlu_json_t **j, char *err, size_t errlen) {
  if (fl_mlu_json_parse(json, j) != FL_OK || (*j)->kind != FL_MLU_JOBJ) {
    fl_mlu_json_free(*j);
    *j = NULL;
    seterr(err, errlen, "", "the record is not a JSON object");
    return FL_EMALFORMED;
  }
  return FL_OK;
}

fl_status_t fl_edge_task_parse(fl_buf_t json, fl_edge_task_t *t, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  fl_mlu_json_t *j = NULL;
  const char *bad = NULL;
  if (parse_obj(json, &j, err, errlen) != FL_OK) return FL_EMALFORMED;
  const char *id = fl_mlu_json_str(fl_mlu_json_get(j, "task"));
  if (id == NULL || !fl_mlu_task_id_ok(id, strlen(id))) {
    bad = "task";
    goto fail;
  }
  snprintf(t->task, sizeof t->task, "%s", id);
  const char *arch = fl_mlu_json_str(fl_mlu_json_get(j, "arch"));
  t->arch = fl_strdup(arch ? arch : "");
  const char *rule = fl_mlu_json_str(fl_mlu_json_get(j, "rule"));
  if (rule == NULL) {
    bad = "rule";
    goto fail;
  }
  snprintf(t->rule, sizeof t->rule, "%s", rule);
  if (!get_u64(j, "min_updates", &t->min_updates)) bad = "min_updates";
  else if (!get_u64(j, "max_updates", &t->max_updates)) bad = "max_updates";
  else if (!get_u64(j, "round_ms", &t->round_ms)) bad = "round_ms";
  else if (!get_u64(j, "n_params", &t->n_params)) bad = "n_params";
  else if (!get_hash(j, "init_hash", t->init_hash)) bad = "init_hash";
  if (bad) goto fail;
  const fl_mlu_json_t *ts = fl_mlu_json_get(j, "tensors");
  if (ts == NULL || ts->kind != FL_MLU_JARR || ts->n == 0) {
    bad = "tensors";
    goto fail;
  }
  for (size_t i = 0; i < ts->n; i++) {
    const fl_mlu_json_t *e = &ts->items[i];
    const char *name = fl_mlu_json_str(fl_mlu_json_get(e, "name"));
    const fl_mlu_json_t *sh = fl_mlu_json_get(e, "shape");
    uint32_t dims[FL_ML_TENSOR_MAX_DIMS];
    if (name == NULL || sh == NULL || sh->kind != FL_MLU_JARR || sh->n == 0 ||
        sh->n > FL_ML_TENSOR_MAX_DIMS) {
      bad = "tensors";
      goto fail;
    }
    for (size_t k = 0; k < sh->n; k++) {
      uint64_t v;
      if (!fl_mlu_json_u64(&sh->items[k], &v) || v == 0 || v > UINT32_MAX) {
        bad = "tensors";
        goto fail;
      }
      dims[k] = (uint32_t)v;
    }
    if (fl_ml_tensors_add(&t->layout, name, (uint32_t)sh->n, dims) != FL_OK) {
      bad = "tensors";
      goto fail;
    }
  }
  if (t->layout.n_values != t->n_params) {
    bad = "n_params";
    goto fail;
  }
  fl_mlu_json_free(j);
  return FL_OK;
fail:
  seterr(err, errlen, "task record: missing or bad field ", bad);
  fl_mlu_json_free(j);
  fl_edge_task_clear(t);
  return FL_EMALFORMED;
}

void fl_edge_task_clear(fl_edge_task_t *t) {
  if (t == NULL) return;
  fl_free(t->arch);
  fl_ml_tensors_free(&t->layout);
  memset(t, 0, sizeof *t);
}

fl_status_t fl_edge_round_parse(fl_buf_t json, fl_edge_round_t *r, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  fl_mlu_json_t *j = NULL;
  const char *bad = NULL;
  if (parse_obj(json, &j, err, errlen) != FL_OK) return FL_EMALFORMED;
  const char *st = fl_mlu_json_str(fl_mlu_json_get(j, "status"));
  if (!get_u64(j, "round", &r->round)) bad = "round";
  else if (st == NULL || (strcmp(st, "OPEN") != 0 && strcmp(st, "CLOSED") != 0)) bad = "status";
  else if (!get_hash(j, "start_model", r->start_model)) bad = "start_model";
  else if (!get_u64(j, "opened_ts", &r->opened_ts)) bad = "opened_ts";
  else if (!get_u64(j, "deadline_ts", &r->deadline_ts)) bad = "deadline_ts";
  if (bad == NULL) {
    r->open = strcmp(st, "OPEN") == 0;
    if (!r->open) {
      if (!get_hash(j, "end_model", r->end_model)) bad = "end_model";
      else if (!get_u64(j, "accepted", &r->accepted)) bad = "accepted";
      else if (!get_u64(j, "submitted", &r->submitted)) bad = "submitted";
      else r->has_end = true;
    }
  }
  fl_mlu_json_free(j);
  if (bad != NULL) {
    seterr(err, errlen, "round record: missing or bad field ", bad);
    memset(r, 0, sizeof *r);
    return FL_EMALFORMED;
  }
  return FL_OK;
}

static fl_status_t update_from(const fl_mlu_json_t *j, fl_edge_update_rec_t *u, const char **bad) {
  memset(u, 0, sizeof *u);
  const char *st = fl_mlu_json_str(fl_mlu_json_get(j, "status"));
  uint64_t code = 0;
  if (st == NULL || (strcmp(st, "ACCEPTED") != 0 && strcmp(st, "REJECTED") != 0)) *bad = "status";
  else if (!get_u64(j, "reason_code", &code) || code > 1000) *bad = "reason_code";
  else if (!copy_str(j, "reason", u->reason, sizeof u->reason)) *bad = "reason";
  else if (!copy_str(j, "detail", u->detail, sizeof u->detail)) *bad = "detail";
  else if (!copy_str(j, "hash", u->hash, sizeof u->hash)) *bad = "hash";
  if (*bad != NULL) return FL_EMALFORMED;
  u->accepted = strcmp(st, "ACCEPTED") == 0;
  u->reason_code = (int)code;
  if (!fl_mlu_json_num(fl_mlu_json_get(j, "norm"), &u->norm)) u->norm = NAN;
  return FL_OK;
}

fl_status_t fl_edge_update_rec_parse(fl_buf_t json, fl_edge_update_rec_t *u, char *err,
                                     size_t errlen) {
  memset(u, 0, sizeof *u);
  fl_mlu_json_t *j = NULL;
  const char *bad = NULL;
  if (parse_obj(json, &j, err, errlen) != FL_OK) return FL_EMALFORMED;
  fl_status_t rc = update_from(j, u, &bad);
  fl_mlu_json_free(j);
  if (rc != FL_OK) {
    seterr(err, errlen, "update record: missing or bad field ", bad);
    memset(u, 0, sizeof *u);
  }
  return rc;
}

fl_status_t fl_edge_count_updates(fl_buf_t json, uint64_t *accepted, uint64_t *records) {
  *accepted = *records = 0;
  fl_mlu_json_t *j = NULL;
  if (fl_mlu_json_parse(json, &j) != FL_OK || j->kind != FL_MLU_JARR) {
    fl_mlu_json_free(j);
    return FL_EMALFORMED;
  }
  uint64_t a = 0;
  for (size_t i = 0; i < j->n; i++) {
    fl_edge_update_rec_t u;
    const char *bad = NULL;
    if (j->items[i].kind != FL_MLU_JOBJ || update_from(&j->items[i], &u, &bad) != FL_OK) {
      fl_mlu_json_free(j);
      return FL_EMALFORMED;
    }
    a += u.accepted;
  }
  *accepted = a;
  *records = j->n;
  fl_mlu_json_free(j);
  return FL_OK;
}

fl_status_t fl_edge_event_parse(const char *name, fl_buf_t payload, fl_edge_event_t *e) {
  memset(e, 0, sizeof *e);
  if (name == NULL) return FL_EMALFORMED;
  if (strcmp(name, "RoundClosed") == 0) e->kind = FL_EDGE_EV_ROUND_CLOSED;
  else if (strcmp(name, "UpdateSubmitted") == 0) e->kind = FL_EDGE_EV_UPDATE;
  else if (strcmp(name, "TaskCreated") == 0) e->kind = FL_EDGE_EV_TASK_CREATED;
  else return FL_OK;
  fl_mlu_json_t *j = NULL;
  if (fl_mlu_json_parse(payload, &j) != FL_OK || j->kind != FL_MLU_JOBJ) goto bad;
  const char *task = fl_mlu_json_str(fl_mlu_json_get(j, "task"));
  if (task == NULL || !fl_mlu_task_id_ok(task, strlen(task)) || !get_u64(j, "round", &e->round))
    goto bad;
  snprintf(e->task, sizeof e->task, "%s", task);
  if (e->kind == FL_EDGE_EV_ROUND_CLOSED && !get_u64(j, "next_round", &e->next_round)) goto bad;
  if (e->kind == FL_EDGE_EV_UPDATE) {
    const char *st = fl_mlu_json_str(fl_mlu_json_get(j, "status"));
    if (st == NULL || !copy_str(j, "client", e->client, sizeof e->client)) goto bad;
    e->accepted = strcmp(st, "ACCEPTED") == 0;
  }
  fl_mlu_json_free(j);
  return FL_OK;
bad:
  fl_mlu_json_free(j);
  memset(e, 0, sizeof *e);
  return FL_EMALFORMED;
}

/* ---- session --------------------------------------------------------------------- */

struct fl_edge_session_s {
  fl_client_identity_t *id;
  fl_client_tls_t *tls;
  char host[256];
  uint16_t port;
  char endpoint[300];
  char *channel;
  char *events_url;
  char *client_id;
  fl_client_opts_t opts;
  fl_client_sync_t *gw;      /* NULL while disconnected */
  fl_client_events_t *ev;    /* NULL until first use / after a failure */
  uint64_t backoff_min, backoff_max, backoff;
  volatile sig_atomic_t *stop;
  bool was_down;             /* for the "reconnected" log line */
};

bool fl_edge_status_transport(fl_status_t st) {
  return st == FL_ECONNREFUSED || st == FL_ECLOSED || st == FL_ETIMEDOUT || st == FL_EUNTRUSTED ||
         st == FL_ECANCELED || st == FL_EIO || st == FL_EUNAVAIL || st == FL_AGAIN;
}

fl_status_t fl_edge_session_open(const fl_edge_conn_t *c, fl_edge_session_t **out, char **err) {
  *out = NULL;
  *err = NULL;
  fl_edge_session_t *s = fl_calloc(1, sizeof *s);
  fl_status_t rc = FL_ECONFIG;
  char *e = NULL;
  if (c->mspid == NULL || c->msp_dir == NULL || c->tls_dir == NULL || c->gateway == NULL ||
      c->channel == NULL) {
    *err = fl_strdup("identity.mspid, identity.msp_dir, identity.tls_dir, gateway.endpoint and "
                     "gateway.channel are required");
    goto fail;
  }
  if (fl_edge_parse_endpoint(c->gateway, s->host, sizeof s->host, &s->port) < 0) {
    *err = fl_sprintf("gateway endpoint '%s': expected HOST:PORT", c->gateway);
    goto fail;
  }
  if ((rc = fl_client_identity_load_msp(c->mspid, c->msp_dir, &s->id, &e)) != FL_OK) {
    *err = fl_sprintf("identity %s in %s: %s", c->mspid, c->msp_dir, e ? e : fl_status_str(rc));
    goto fail;
  }
  const char *cn = fl_client_identity_cn(s->id);
  if (fl_mlu_client_id(c->mspid, strlen(c->mspid), cn ? cn : "", &s->client_id) != FL_OK) {
    rc = FL_ECONFIG;
    *err = fl_sprintf("identity %s: MSP id '%s' and CN '%s' do not form a client id "
                      "([A-Za-z0-9._@-], 1..96 bytes each)",
                      c->msp_dir, c->mspid, cn ? cn : "");
    goto fail;
  }
  if ((rc = fl_client_tls_load_dir(c->tls_dir, c->server_name ? c->server_name : s->host, &s->tls,
                                   &e)) != FL_OK) {
    *err = fl_sprintf("TLS directory %s: %s", c->tls_dir, e ? e : fl_status_str(rc));
    goto fail;
  }
  if (c->tls_ca != NULL && (rc = fl_client_tls_add_ca(s->tls, c->tls_ca)) != FL_OK) {
    *err = fl_sprintf("identity.tls_ca %s: %s", c->tls_ca, fl_status_str(rc));
    goto fail;
  }
  snprintf(s->endpoint, sizeof s->endpoint, "%s", c->gateway);
  s->channel = fl_strdup(c->channel);
  s->events_url = c->events ? fl_strdup(c->events) : NULL;
  s->backoff_min = c->backoff_min_ms ? c->backoff_min_ms : 200;
  s->backoff_max = c->backoff_max_ms > s->backoff_min ? c->backoff_max_ms : s->backoff_min;
  s->backoff = s->backoff_min;
  s->stop = c->stop;
  s->opts = (fl_client_opts_t){.host = s->host,
                               .port = s->port,
                               .tls = fl_client_tls_config(s->tls),
                               .channel = s->channel,
                               .call_timeout_ms = (uint32_t)c->call_timeout_ms,
                               .commit_timeout_ms = (uint32_t)c->commit_timeout_ms};
  fl_free(e);
  *out = s;
  return FL_OK;
fail:
  fl_free(e);
  fl_edge_session_close(s);
  return rc == FL_OK ? FL_ECONFIG : rc;
}

void fl_edge_session_close(fl_edge_session_t *s) {
  if (s == NULL) return;
  fl_client_sync_close(s->gw);
  fl_client_events_close(s->ev);
  fl_client_tls_free(s->tls);
  fl_client_identity_free(s->id);
  fl_free(s->channel);
  fl_free(s->events_url);
  fl_free(s->client_id);
  fl_free(s);
}

const char *fl_edge_session_client_id(const fl_edge_session_t *s) { return s->client_id; }
const fl_signer_t *fl_edge_session_signer(const fl_edge_session_t *s) {
  return fl_client_identity_signer(s->id);
}
const char *fl_edge_session_endpoint(const fl_edge_session_t *s) { return s->endpoint; }
bool fl_edge_session_stopped(const fl_edge_session_t *s) { return s->stop != NULL && *s->stop; }

bool fl_edge_session_sleep(fl_edge_session_t *s, uint64_t ms) {
  while (ms > 0) {
    if (fl_edge_session_stopped(s)) return false;
    uint64_t step = ms < 100 ? ms : 100;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(step * 1000000)};
    nanosleep(&ts, NULL);
    ms -= step;
  }
  return !fl_edge_session_stopped(s);
}

bool fl_edge_session_backoff(fl_edge_session_t *s) {
  uint64_t ms = s->backoff;
  s->backoff = s->backoff * 2 > s->backoff_max ? s->backoff_max : s->backoff * 2;
  return fl_edge_session_sleep(s, ms);
}

static fl_status_t ensure(fl_edge_session_t *s, fl_client_result_t *res) {
  if (s->gw != NULL) return FL_OK;
  char *e = NULL;
  fl_status_t rc = fl_client_sync_connect(&s->opts, s->id, &s->gw, &e);
  if (rc != FL_OK) {
    if (!s->was_down)
      FL_WARN(LOGM, "gateway unreachable endpoint=%s status=%s err=\"%s\"", s->endpoint,
              fl_status_name(rc), e ? e : "");
    else
      FL_DEBUG(LOGM, "gateway still unreachable endpoint=%s status=%s", s->endpoint,
               fl_status_name(rc));
    s->was_down = true;
    s->gw = NULL;
    fl_free(e);
    res->status = rc;
    return rc;
  }
  fl_free(e);
  if (s->was_down) FL_INFO(LOGM, "gateway reconnected endpoint=%s", s->endpoint);
  s->was_down = false;
  return FL_OK;
}

static void after(fl_edge_session_t *s, fl_status_t st) {
  if (fl_edge_status_transport(st)) {
    if (!s->was_down)
      FL_WARN(LOGM, "gateway connection lost endpoint=%s status=%s", s->endpoint,
              fl_status_name(st));
    s->was_down = true;
    fl_client_sync_close(s->gw);
    s->gw = NULL;
  } else {
    s->backoff = s->backoff_min;
  }
}

fl_status_t fl_edge_session_evaluate(fl_edge_session_t *s, const fl_buf_t *args, size_t n,
                                     fl_client_result_t *res) {
  memset(res, 0, sizeof *res);
  res->error = "";
  res->cc_message = "";
  if (ensure(s, res) != FL_OK) return res->status;
  fl_client_proposal_t p = {.chaincode = FL_MLU_NAME, .args = args, .n_args = n};
  fl_status_t st = fl_client_sync_evaluate(s->gw, &p, res);
  after(s, st);
  return st;
}

fl_status_t fl_edge_session_submit(fl_edge_session_t *s, const fl_buf_t *args, size_t n,
                                   const fl_buf_t *blobs, size_t n_blobs, fl_client_result_t *res) {
  memset(res, 0, sizeof *res);
  res->error = "";
  res->cc_message = "";
  if (ensure(s, res) != FL_OK) return res->status;
  fl_client_proposal_t p = {
      .chaincode = FL_MLU_NAME, .args = args, .n_args = n, .blobs = blobs, .n_blobs = n_blobs};
  fl_status_t st = fl_client_sync_submit(s->gw, &p, true, res);
  after(s, st);
  return st;
}

fl_status_t fl_edge_get_task(fl_edge_session_t *s, const char *task, fl_edge_task_t *out,
                             char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  fl_buf_t a[] = {FL_BUF_STR("GetTask"), FL_BUF_STR(task)};
  fl_client_result_t r;
  fl_status_t st = fl_edge_session_evaluate(s, a, 2, &r);
  if (st == FL_OK) st = fl_edge_task_parse(r.payload, out, err, errlen);
  else if (err && errlen) snprintf(err, errlen, "%s", r.error ? r.error : fl_status_str(st));
  fl_client_result_clear(&r);
  return st;
}

fl_status_t fl_edge_get_round(fl_edge_session_t *s, const char *task, uint64_t round,
                              fl_edge_round_t *out) {
  memset(out, 0, sizeof *out);
  char rs[24];
  snprintf(rs, sizeof rs, "%llu", (unsigned long long)round);
  fl_buf_t a[] = {FL_BUF_STR("GetRound"), FL_BUF_STR(task), FL_BUF_STR(rs)};
  fl_client_result_t r;
  fl_status_t st = fl_edge_session_evaluate(s, a, 3, &r);
  if (st == FL_OK) {
    char err[128];
    st = fl_edge_round_parse(r.payload, out, err, sizeof err);
    if (st != FL_OK) FL_WARN(LOGM, "bad round record task=%s round=%s err=\"%s\"", task, rs, err);
  }
  fl_client_result_clear(&r);
  return st;
}

fl_status_t fl_edge_get_update(fl_edge_session_t *s, const char *task, uint64_t round,
                               fl_edge_update_rec_t *out) {
  memset(out, 0, sizeof *out);
  char rs[24];
  snprintf(rs, sizeof rs, "%llu", (unsigned long long)round);
  fl_buf_t a[] = {FL_BUF_STR("GetUpdate"), FL_BUF_STR(task), FL_BUF_STR(rs),
                  FL_BUF_STR(s->client_id)};
  fl_client_result_t r;
  fl_status_t st = fl_edge_session_evaluate(s, a, 4, &r);
  if (st == FL_OK) {
    char err[128];
    st = fl_edge_update_rec_parse(r.payload, out, err, sizeof err);
    if (st != FL_OK) FL_WARN(LOGM, "bad update record task=%s round=%s err=\"%s\"", task, rs, err);
  }
  fl_client_result_clear(&r);
  return st;
}

fl_status_t fl_edge_find_round(fl_edge_session_t *s, const char *task, uint64_t hint,
                               fl_edge_round_t *out) {
  fl_edge_round_t r;
  fl_status_t st = fl_edge_get_round(s, task, hint, &r);
  if (st == FL_NOTFOUND && hint > 0) return fl_edge_find_round(s, task, 0, out);
  if (st != FL_OK) return st;
  if (r.open) {
    *out = r;
    return FL_OK;
  }
  /* Rounds 0..k exist, k+1.. do not: gallop for a missing one, then bisect. */
  uint64_t lo = hint, step = 1, hi;
  fl_edge_round_t best = r;
  for (;;) {
    uint64_t probe = lo + step;
    fl_edge_round_t q;
    st = fl_edge_get_round(s, task, probe, &q);
    if (st == FL_NOTFOUND) {
      hi = probe;
      break;
    }
    if (st != FL_OK) return st;
    if (q.open) {
      *out = q;
      return FL_OK;
    }
    lo = probe;
    best = q;
    step = step < (UINT64_C(1) << 40) ? step * 2 : step;
  }
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    fl_edge_round_t q;
    st = fl_edge_get_round(s, task, mid, &q);
    if (st == FL_NOTFOUND) {
      hi = mid;
    } else if (st != FL_OK) {
      return st;
    } else {
      lo = mid;
      best = q;
      if (q.open) break;
    }
  }
  *out = best;
  return FL_OK;
}

fl_status_t fl_edge_fetch_model(fl_edge_session_t *s, const uint8_t hash[32],
                                const fl_ml_tensors_t *layout, fl_ml_tensors_t *out) {
  memset(out, 0, sizeof *out);
  char hex[65];
  fl_hex_encode(hash, 32, hex);
  fl_client_result_t r;
  memset(&r, 0, sizeof r);
  r.error = "";
  fl_status_t st = ensure(s, &r);
  if (st != FL_OK) return st;
  fl_sbuf_t blob = {0};
  char *e = NULL;
  st = fl_client_sync_get_blob(s->gw, hash, &blob, &e);
  after(s, st);
  if (st == FL_OK) {
    st = fl_edge_model_check(fl_sbuf_view(&blob), hash, layout, out);
  } else if (!fl_edge_status_transport(st)) {
    /* The peer's blob store does not have it (or GetBlob is not served):
     * the chaincode keeps every global model under blob/<hash> too. */
    FL_DEBUG(LOGM, "Peer/GetBlob failed, trying the GetBlob query hash=%s status=%s err=\"%s\"",
             hex, fl_status_name(st), e ? e : "");
    fl_buf_t a[] = {FL_BUF_STR("GetBlob"), FL_BUF(hex, 64)};
    st = fl_edge_session_evaluate(s, a, 2, &r);
    if (st == FL_OK) st = fl_edge_model_check(r.payload, hash, layout, out);
    fl_client_result_clear(&r);
  }
  if (st == FL_ECORRUPT)
    FL_ERROR(LOGM, "model blob does not match the ledger's hash, refusing it hash=%s peer=%s", hex,
             s->endpoint);
  fl_free(e);
  fl_sbuf_free(&blob);
  return st;
}

fl_status_t fl_edge_session_next_event(fl_edge_session_t *s, uint64_t timeout_ms,
                                       fl_edge_event_t *out) {
  memset(out, 0, sizeof *out);
  if (s->events_url == NULL) {
    return fl_edge_session_sleep(s, timeout_ms) ? FL_EUNAVAIL : FL_ECANCELED;
  }
  fl_status_t st;
  if (s->ev == NULL) {
    if ((st = fl_client_events_open(s->events_url, &s->ev)) != FL_OK ||
        (st = fl_client_events_subscribe_chaincode(s->ev, FL_MLU_NAME)) != FL_OK) {
      FL_WARN(LOGM, "events subscriber failed url=%s status=%s", s->events_url, fl_status_name(st));
      fl_client_events_close(s->ev);
      s->ev = NULL;
      return fl_edge_session_sleep(s, timeout_ms) ? st : FL_ECANCELED;
    }
  }
  uint64_t waited = 0;
  while (waited < timeout_ms) {
    if (fl_edge_session_stopped(s)) return FL_ECANCELED;
    int slice = (int)(timeout_ms - waited < 200 ? timeout_ms - waited : 200);
    fl_client_event_t e;
    st = fl_client_events_next(s->ev, slice, &e);
    if (st == FL_ETIMEDOUT || st == FL_AGAIN) {
      waited += (uint64_t)slice;
      continue;
    }
    if (st != FL_OK) {
      fl_client_events_close(s->ev);
      s->ev = NULL;
      return st;
    }
    fl_status_t pst = FL_EMALFORMED;
    if (e.kind == FL_CLIENT_EVENT_CHAINCODE && strcmp(e.chaincode, FL_MLU_NAME) == 0)
      pst = fl_edge_event_parse(e.name, e.payload, out);
    fl_client_event_clear(&e);
    if (pst == FL_OK && out->kind != FL_EDGE_EV_OTHER) return FL_OK;
  }
  return FL_ETIMEDOUT;
}
