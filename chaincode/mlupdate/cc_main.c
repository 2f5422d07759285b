/* SPDX-License-Identifier: Apache-2.0
 *
 * cc_main.c: the mlupdate chaincode's entry point and dispatcher, the
 * administrative functions (CreateTask, RevokeClient), the queries, and the
 * stub helpers the other files share. SubmitUpdate is in cc_submit.c,
 * CloseRound in cc_close.c. Contract: docs/mlupdate.md.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/cc_int.h"
#include "common/base/alloc.h"
#include "common/crypto/hash.h"

/* ---- stub helpers ------------------------------------------------------------- */

fl_cc_response_t mlu_err(fl_cc_stub_t *s, int32_t status, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof tmp) n = (int)sizeof tmp - 1;
  char *m = fl_cc_alloc(s, (size_t)n + 1);
  memcpy(m, tmp, (size_t)n + 1);
  return fl_cc_error(status, fl_cc_bytes(m, (size_t)n));
}

fl_cc_response_t mlu_ok(fl_cc_stub_t *s, fl_sbuf_t *b) {
  uint8_t *p = fl_cc_alloc(s, b->len ? b->len : 1);
  if (b->len) memcpy(p, b->data, b->len);
  fl_cc_response_t r = fl_cc_success(fl_cc_bytes(p, b->len));
  fl_sbuf_free(b);
  return r;
}

fl_cc_response_t mlu_stub_fail(fl_cc_stub_t *s, const char *what, int rc) {
  return mlu_err(s, FL_CC_STATUS_ERROR, "mlupdate: %s failed (rc=%d)", what, rc);
}

int mlu_get(fl_cc_stub_t *s, const char *key, fl_cc_bytes_t *v) {
  return fl_cc_get_state(s, fl_cc_str(key), v);
}

int mlu_put(fl_cc_stub_t *s, const char *key, fl_buf_t v) {
  return fl_cc_put_state(s, fl_cc_str(key), fl_cc_bytes(v.data, v.len));
}

bool mlu_arg_u64(fl_cc_bytes_t a, uint64_t *v) {
  if (a.len == 0 || a.len > 19 || (a.len > 1 && a.data[0] == '0')) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < a.len; i++) {
    if (a.data[i] < '0' || a.data[i] > '9') return false;
    x = x * 10 + (uint64_t)(a.data[i] - '0');
  }
  *v = x;
  return true;
}

bool mlu_arg_hash(fl_cc_bytes_t a, uint8_t out[MLU_HASH_LEN]) {
  return a.len == 2 * MLU_HASH_LEN &&
         fl_hex_decode((const char *)a.data, a.len, out, MLU_HASH_LEN) == MLU_HASH_LEN;
}

char *mlu_arg_str(fl_cc_bytes_t a) {
  if (a.len && memchr(a.data, 0, a.len)) return NULL;
  return fl_strndup((const char *)a.data, a.len);
}

const char *mlu_creator_id(fl_cc_stub_t *s, char **id) {
  *id = NULL;
  fl_cc_creator_t c;
  fl_cc_get_creator(s, &c);
  /* The runtime parses the certificate (and keeps it parsed between
   * invocations, which a chaincode may not): shim.h, ABI 3. */
  fl_cc_bytes_t cn;
  if (c.cert_pem.len == 0 || fl_cc_get_creator_cn(s, &cn) != FL_CC_OK)
    return "the creator's certificate does not parse";
  char *cns = mlu_arg_str(cn); /* NULL if the CN holds a NUL byte */
  fl_status_t rc = cns ? fl_mlu_client_id((const char *)c.mspid.data, c.mspid.len, cns, id)
                       : FL_EINVAL;
  fl_free(cns);
  if (rc != FL_OK) {
    *id = NULL;
    return "the creator's MSP id or CN is not usable as a client id ([A-Za-z0-9._@-], 1..96)";
  }
  return NULL;
}

fl_cc_response_t mlu_load_task(fl_cc_stub_t *s, const char *id, mlu_task_t *t, bool *ok) {
  *ok = false;
  char *key = fl_mlu_key_task(id);
  fl_cc_bytes_t v;
  int rc = mlu_get(s, key, &v);
  fl_free(key);
  if (rc == FL_CC_NOTFOUND)
    return mlu_err(s, FL_CC_STATUS_NOT_FOUND, "mlupdate: unknown task %s", id);
  if (rc != FL_CC_OK) return mlu_stub_fail(s, "reading the task", rc);
  if (mlu_task_decode(FL_BUF(v.data, v.len), t) != FL_OK)
    return mlu_err(s, FL_CC_STATUS_ERROR, "mlupdate: task/%s is corrupt", id);
  *ok = true;
  return fl_cc_success(fl_cc_bytes(NULL, 0));
}

int mlu_load_blob(fl_cc_stub_t *s, const uint8_t hash[MLU_HASH_LEN], fl_ml_tensors_t *t) {
  memset(t, 0, sizeof *t);
  /* The blob store first: every hash asked for here comes from a committed
   * record (task, round or update) whose transaction stored the blob, and
   * that read is what the read set needs. blob/<hash> state is the fallback
   * for blobs written there by earlier versions of this chaincode. */
  fl_cc_bytes_t v;
  int rc = fl_cc_get_stored_blob(s, hash, &v);
  bool checked = rc == FL_CC_OK; /* the store hands out only bytes whose SHA-256 is hash */
  if (rc == FL_CC_NOTFOUND) {
    char *key = fl_mlu_key_blob(hash);
    rc = mlu_get(s, key, &v);
    fl_free(key);
  }
  if (rc != FL_CC_OK) return rc;
  if (!checked) { /* a blob/<hash> state value: nothing vouches for it */
    uint8_t h[MLU_HASH_LEN];
    fl_sha256(v.data, v.len, h);
    if (memcmp(h, hash, MLU_HASH_LEN) != 0) return FL_ECORRUPT;
  }
  if (fl_ml_blob_decode(FL_BUF(v.data, v.len), t) != FL_OK) return FL_ECORRUPT;
  return FL_OK;
}

/* ---- CreateTask ----------------------------------------------------------------- */

/* CreateTask <task> <definition JSON>, blob 0 = initial model. */
static fl_cc_response_t create_task(fl_cc_stub_t *s, size_t argc, const fl_cc_bytes_t *argv) {
  if (argc != 3) return mlu_err(s, 400, "mlupdate: CreateTask <task> <definition JSON> + blob");
  fl_cc_bytes_t id = argv[1];
  if (!fl_mlu_task_id_ok((const char *)id.data, id.len))
    return mlu_err(s, 400, "mlupdate: bad task id (1..64 bytes of [A-Za-z0-9._-])");
  fl_cc_creator_t cr;
  fl_cc_get_creator(s, &cr);
  if (!fl_cc_eq(cr.role, "admin"))
    return mlu_err(s, 403, "mlupdate: CreateTask needs the admin role");
  fl_cc_bytes_t blob;
  if (fl_cc_get_blob(s, 0, &blob) != FL_CC_OK)
    return mlu_err(s, 400, "mlupdate: CreateTask needs the initial model as blob 0");

  fl_cc_response_t resp;
  mlu_task_t t = {0};
  fl_mlu_json_t *def = NULL;
  char *err = NULL, *who = NULL, *tkey = NULL, *rkey = NULL;
  fl_sbuf_t rec = {0}, rrec = {0}, ev = {0};
  memcpy(t.id, id.data, id.len);
  t.id[id.len] = '\0';

  tkey = fl_mlu_key_task(t.id);
  fl_cc_bytes_t old;
  int rc = mlu_get(s, tkey, &old);
  if (rc == FL_CC_OK) {
    resp = mlu_err(s, 400, "mlupdate: task %s exists already", t.id);
    goto done;
  }
  if (rc != FL_CC_NOTFOUND) {
    resp = mlu_stub_fail(s, "reading the task", rc);
    goto done;
  }
  if (fl_mlu_json_parse(FL_BUF(argv[2].data, argv[2].len), &def) != FL_OK) {
    resp = mlu_err(s, 400, "mlupdate: the task definition is not valid JSON");
    goto done;
  }
  if ((err = mlu_task_def_parse(def, &t)) != NULL) {
    resp = mlu_err(s, 400, "mlupdate: %s", err);
    goto done;
  }
  uint8_t h[MLU_HASH_LEN];
  fl_sha256(blob.data, blob.len, h);
  if (memcmp(h, t.init_hash, MLU_HASH_LEN) != 0) {
    resp = mlu_err(s, 400, "mlupdate: SHA-256 of the initial model blob differs from init_hash");
    goto done;
  }
  if (fl_ml_blob_decode(FL_BUF(blob.data, blob.len), &t.layout) != FL_OK) {
    resp = mlu_err(s, 400, "mlupdate: the initial model is not a valid tensor blob");
    goto done;
  }
  /* Only the layout is kept: zero the values so the record never depends
   * on them (they are not encoded anyway). */
  memset(t.layout.values, 0, t.layout.n_values * sizeof(float));
  const char *why = mlu_creator_id(s, &who);
  if (why) {
    resp = mlu_err(s, 403, "mlupdate: %s", why);
    goto done;
  }
  fl_cc_bytes_t txid = fl_cc_get_tx_id(s);
  uint64_t ts = fl_cc_get_timestamp(s);
  t.created_ts = ts;
  t.created_by = who;
  who = NULL;
  t.created_tx = fl_strndup((const char *)txid.data, txid.len);

  /* The initial model is the proposal's blob 0, which the committing peer
   * stores in its blob store with the transaction: no put_blob, no state. */
  mlu_task_encode(&t, &rec);
  mlu_round_t r0 = {.round = 0, .open = true, .opened_ts = ts,
                    .deadline_ts = ts + t.round_ms, .opened_tx = t.created_tx};
  memcpy(r0.start_model, h, MLU_HASH_LEN);
  mlu_round_encode(t.id, &r0, &rrec);
  rkey = fl_mlu_key_round(t.id, 0);
  if ((rc = mlu_put(s, tkey, fl_sbuf_view(&rec))) != FL_CC_OK ||
      (rc = mlu_put(s, rkey, fl_sbuf_view(&rrec))) != FL_CC_OK) {
    resp = mlu_stub_fail(s, "writing the task", rc);
    goto done;
  }
  fl_sbuf_append_str(&ev, "{\"task\":");
  fl_mlu_jw_str(&ev, t.id);
  fl_sbuf_append_str(&ev, ",\"round\":0,\"model\":");
  fl_mlu_jw_hex(&ev, h, MLU_HASH_LEN);
  fl_sbuf_append_str(&ev, "}");
  if ((rc = fl_cc_set_event(s, fl_cc_str("TaskCreated"), fl_cc_bytes(ev.data, ev.len))) !=
      FL_CC_OK) {
    resp = mlu_stub_fail(s, "setting the event", rc);
    goto done;
  }
  resp = mlu_ok(s, &rec);
done:
  fl_sbuf_free(&rec);
  fl_sbuf_free(&rrec);
  fl_sbuf_free(&ev);
  fl_free(err);
  fl_free(who);
  fl_free(tkey);
  fl_free(rkey);
  fl_mlu_json_free(def);
  mlu_task_free(&t);
  return resp;
}

/* ---- RevokeClient ------------------------------------------------------------------ */

/* RevokeClient <client id> <reason>: an admin revokes a client of its own
 * organisation (the MSP id before the ':' must be the admin's). Idempotent:
 * an already revoked client gets 200 and no write. */
static fl_cc_response_t revoke_client(fl_cc_stub_t *s, size_t argc, const fl_cc_bytes_t *argv) {
  if (argc != 3) return mlu_err(s, 400, "mlupdate: RevokeClient <client id> <reason>");
  if (!fl_mlu_client_id_ok((const char *)argv[1].data, argv[1].len))
    return mlu_err(s, 400, "mlupdate: bad client id (<mspid>:<CN>)");
  if (argv[2].len == 0 || argv[2].len > 256)
    return mlu_err(s, 400, "mlupdate: the reason must be 1..256 bytes");
  for (size_t i = 0; i < argv[2].len; i++)
    if (argv[2].data[i] < 0x20 || argv[2].data[i] > 0x7e)
      return mlu_err(s, 400, "mlupdate: the reason must be printable ASCII");
  fl_cc_creator_t cr;
  fl_cc_get_creator(s, &cr);
  if (!fl_cc_eq(cr.role, "admin"))
    return mlu_err(s, 403, "mlupdate: RevokeClient needs the admin role");
  const uint8_t *colon = memchr(argv[1].data, ':', argv[1].len);
  if ((size_t)(colon - argv[1].data) != cr.mspid.len ||
      memcmp(argv[1].data, cr.mspid.data, cr.mspid.len) != 0)
    return mlu_err(s, 403, "mlupdate: an admin may revoke only clients of its own organisation");

  fl_cc_response_t resp;
  char *id = mlu_arg_str(argv[1]);
  char *key = fl_mlu_key_client(id);
  char *who = NULL;
  mlu_client_t c = {0};
  fl_sbuf_t rec = {0}, ev = {0};
  fl_cc_bytes_t v;
  int rc = mlu_get(s, key, &v);
  if (rc == FL_CC_OK) {
    if (mlu_client_decode(FL_BUF(v.data, v.len), &c) != FL_OK) {
      resp = mlu_err(s, 500, "mlupdate: %s is corrupt", key);
      goto done;
    }
    if (c.revoked) {
      resp = fl_cc_success(v); /* idempotent: no write */
      goto done;
    }
  } else if (rc != FL_CC_NOTFOUND) {
    resp = mlu_stub_fail(s, "reading the client", rc);
    goto done;
  }
  const char *why = mlu_creator_id(s, &who);
  if (why) {
    resp = mlu_err(s, 403, "mlupdate: %s", why);
    goto done;
  }
  fl_cc_bytes_t txid = fl_cc_get_tx_id(s);
  c.revoked = true;
  c.reason = mlu_arg_str(argv[2]);
  c.revoked_by = who;
  who = NULL;
  c.revoked_tx = fl_strndup((const char *)txid.data, txid.len);
  c.revoked_ts = fl_cc_get_timestamp(s);
  mlu_client_encode(id, &c, &rec);
  if ((rc = mlu_put(s, key, fl_sbuf_view(&rec))) != FL_CC_OK) {
    resp = mlu_stub_fail(s, "writing the client", rc);
    goto done;
  }
  fl_sbuf_append_str(&ev, "{\"client\":");
  fl_mlu_jw_str(&ev, id);
  fl_sbuf_append_str(&ev, ",\"reason\":");
  fl_mlu_jw_str(&ev, c.reason);
  fl_sbuf_append_str(&ev, "}");
  if ((rc = fl_cc_set_event(s, fl_cc_str("ClientRevoked"), fl_cc_bytes(ev.data, ev.len))) !=
      FL_CC_OK) {
    resp = mlu_stub_fail(s, "setting the event", rc);
    goto done;
  }
  resp = mlu_ok(s, &rec);
done:
  fl_sbuf_free(&rec);
  fl_sbuf_free(&ev);
  mlu_client_free(&c);
  fl_free(who);
  fl_free(key);
  fl_free(id);
  return resp;
}

/* ---- queries ------------------------------------------------------------------------- */

static fl_cc_response_t get_key(fl_cc_stub_t *s, char *key) {
  fl_cc_bytes_t v;
  int rc = mlu_get(s, key, &v);
  fl_cc_response_t r = rc == FL_CC_OK         ? fl_cc_success(v)
                       : rc == FL_CC_NOTFOUND ? mlu_err(s, 404, "mlupdate: no %s", key)
                                              : mlu_stub_fail(s, "reading", rc);
  fl_free(key);
  return r;
}

static bool task_arg(fl_cc_bytes_t a, char *out) {
  if (!fl_mlu_task_id_ok((const char *)a.data, a.len)) return false;
  memcpy(out, a.data, a.len);
  out[a.len] = '\0';
  return true;
}

/* ListUpdates <task> <round>: a JSON array of every update record of the
 * round (first submissions and later attempts), in key order. */
static fl_cc_response_t list_updates(fl_cc_stub_t *s, const char *task, uint64_t round) {
  char *start = fl_sprintf("update/%s/%" PRIu64 "/", task, round);
  char *end = fl_strdup(start);
  end[strlen(end) - 1] = '0'; /* '/' + 1: just past every key with the prefix */
  fl_cc_range_iter_t *it = NULL;
  int rc = fl_cc_get_state_range(s, fl_cc_str(start), fl_cc_str(end), &it);
  fl_free(start);
  fl_free(end);
  if (rc != FL_CC_OK) return mlu_stub_fail(s, "scanning updates", rc);
  fl_sbuf_t b = {0};
  fl_sbuf_append_str(&b, "[");
  fl_cc_kv_t kv;
  size_t n = 0;
  while ((rc = fl_cc_range_next(it, &kv)) == FL_CC_OK) {
    if (n++) fl_sbuf_append_str(&b, ",");
    fl_sbuf_append(&b, kv.value.data, kv.value.len);
  }
  fl_cc_range_close(it);
  if (rc != FL_CC_NOTFOUND) {
    fl_sbuf_free(&b);
    return mlu_stub_fail(s, "scanning updates", rc);
  }
  fl_sbuf_append_str(&b, "]");
  return mlu_ok(s, &b);
}

/* GetModelHistory <task>: {"task":..,"init_hash":..,"models":[model/<t>/0,
 * model/<t>/1, ...]} up to the first round without a model. */
static fl_cc_response_t model_history(fl_cc_stub_t *s, const char *task) {
  mlu_task_t t;
  bool ok;
  fl_cc_response_t r = mlu_load_task(s, task, &t, &ok);
  if (!ok) return r;
  fl_sbuf_t b = {0};
  fl_sbuf_append_str(&b, "{\"task\":");
  fl_mlu_jw_str(&b, task);
  fl_sbuf_append_str(&b, ",\"init_hash\":");
  fl_mlu_jw_hex(&b, t.init_hash, MLU_HASH_LEN);
  fl_sbuf_append_str(&b, ",\"models\":[");
  mlu_task_free(&t);
  for (uint64_t k = 0;; k++) {
    char *key = fl_mlu_key_model(task, k);
    fl_cc_bytes_t v;
    int rc = mlu_get(s, key, &v);
    fl_free(key);
    if (rc == FL_CC_NOTFOUND) break;
    if (rc != FL_CC_OK) {
      fl_sbuf_free(&b);
      return mlu_stub_fail(s, "reading a model", rc);
    }
    if (k) fl_sbuf_append_str(&b, ",");
    fl_sbuf_append(&b, v.data, v.len);
  }
  fl_sbuf_append_str(&b, "]}");
  return mlu_ok(s, &b);
}

/* GetHistory <key>: [{"tx_id","block","tx","deleted","value"}...], newest
 * first. JSON values are embedded as they are; blob/ values (tensor bytes)
 * are shown as {"sha256":..,"len":..}. */
static fl_cc_response_t key_history(fl_cc_stub_t *s, fl_cc_bytes_t key) {
  fl_cc_hist_iter_t *it = NULL;
  int rc = fl_cc_get_history_for_key(s, key, &it);
  if (rc != FL_CC_OK) return mlu_stub_fail(s, "reading history", rc);
  bool is_blob = key.len >= 5 && memcmp(key.data, "blob/", 5) == 0;
  fl_sbuf_t b = {0};
  fl_sbuf_append_str(&b, "[");
  fl_cc_mod_t m;
  size_t n = 0;
  while ((rc = fl_cc_hist_next(it, &m)) == FL_CC_OK) {
    fl_sbuf_append_str(&b, n++ ? ",{" : "{");
    fl_mlu_jw_key(&b, "tx_id");
    fl_mlu_jw_strn(&b, (const char *)m.tx_id.data, m.tx_id.len);
    fl_mlu_jw_key(&b, "block");
    fl_mlu_jw_u64(&b, m.block_num);
    fl_mlu_jw_key(&b, "tx");
    fl_mlu_jw_u64(&b, m.tx_num);
    fl_mlu_jw_key(&b, "deleted");
    fl_sbuf_append_str(&b, m.is_delete ? "true" : "false");
    fl_mlu_jw_key(&b, "value");
    if (m.is_delete) {
      fl_sbuf_append_str(&b, "null");
    } else if (is_blob) {
      uint8_t h[MLU_HASH_LEN];
      fl_sha256(m.value.data, m.value.len, h);
      fl_sbuf_append_str(&b, "{\"sha256\":");
      fl_mlu_jw_hex(&b, h, MLU_HASH_LEN);
      fl_sbuf_append_str(&b, ",\"len\":");
      fl_mlu_jw_u64(&b, m.value.len);
      fl_sbuf_append_str(&b, "}");
    } else {
      fl_sbuf_append(&b, m.value.data, m.value.len);
    }
    fl_sbuf_append_str(&b, "}");
  }
  fl_cc_hist_close(it);
  if (rc != FL_CC_NOTFOUND) {
    fl_sbuf_free(&b);
    return mlu_stub_fail(s, "reading history", rc);
  }
  fl_sbuf_append_str(&b, "]");
  return mlu_ok(s, &b);
}

static fl_cc_response_t query(fl_cc_stub_t *s, size_t argc, const fl_cc_bytes_t *argv,
                              bool *handled) {
  *handled = true;
  fl_cc_bytes_t fn = argv[0];
  char task[FL_MLU_TASK_MAX + 1];
  uint64_t round;
  if (fl_cc_eq(fn, "GetTask")) {
    if (argc != 2 || !task_arg(argv[1], task)) return mlu_err(s, 400, "mlupdate: GetTask <task>");
    return get_key(s, fl_mlu_key_task(task));
  }
  if (fl_cc_eq(fn, "GetRound") || fl_cc_eq(fn, "GetModel") || fl_cc_eq(fn, "ListUpdates")) {
    if (argc != 3 || !task_arg(argv[1], task) || !mlu_arg_u64(argv[2], &round))
      return mlu_err(s, 400, "mlupdate: %.*s <task> <round>", (int)fn.len, (const char *)fn.data);
    if (fl_cc_eq(fn, "GetRound")) return get_key(s, fl_mlu_key_round(task, round));
    if (fl_cc_eq(fn, "GetModel")) return get_key(s, fl_mlu_key_model(task, round));
    return list_updates(s, task, round);
  }
  if (fl_cc_eq(fn, "GetUpdate")) {
    if (argc != 4 || !task_arg(argv[1], task) || !mlu_arg_u64(argv[2], &round) ||
        !fl_mlu_client_id_ok((const char *)argv[3].data, argv[3].len))
      return mlu_err(s, 400, "mlupdate: GetUpdate <task> <round> <client id>");
    char *id = mlu_arg_str(argv[3]);
    fl_cc_response_t r = get_key(s, fl_mlu_key_update(task, round, id));
    fl_free(id);
    return r;
  }
  if (fl_cc_eq(fn, "GetModelHistory")) {
    if (argc != 2 || !task_arg(argv[1], task))
      return mlu_err(s, 400, "mlupdate: GetModelHistory <task>");
    return model_history(s, task);
  }
  if (fl_cc_eq(fn, "GetClient")) {
    if (argc != 2 || !fl_mlu_client_id_ok((const char *)argv[1].data, argv[1].len))
      return mlu_err(s, 400, "mlupdate: GetClient <client id>");
    char *id = mlu_arg_str(argv[1]);
    fl_cc_response_t r = get_key(s, fl_mlu_key_client(id));
    fl_free(id);
    return r;
  }
  if (fl_cc_eq(fn, "GetBlob")) {
    uint8_t h[MLU_HASH_LEN];
    if (argc != 2 || !mlu_arg_hash(argv[1], h))
      return mlu_err(s, 400, "mlupdate: GetBlob <sha256 hex>");
    fl_cc_bytes_t b;
    int rc = fl_cc_get_stored_blob(s, h, &b); /* updates are only there */
    if (rc == FL_CC_OK) return fl_cc_success(b);
    if (rc != FL_CC_NOTFOUND) return mlu_stub_fail(s, "reading the blob store", rc);
    return get_key(s, fl_mlu_key_blob(h));
  }
  if (fl_cc_eq(fn, "GetHistory")) {
    if (argc != 2 || argv[1].len == 0) return mlu_err(s, 400, "mlupdate: GetHistory <key>");
    return key_history(s, argv[1]);
  }
  *handled = false;
  return fl_cc_success(fl_cc_bytes(NULL, 0));
}

/* ---- entry ------------------------------------------------------------------------- */

static fl_cc_response_t mlu_invoke(fl_cc_stub_t *s) {
  size_t argc = 0;
  const fl_cc_bytes_t *argv = NULL;
  fl_cc_get_args(s, &argc, &argv);
  if (argc < 1) return mlu_err(s, 400, "mlupdate: no function");
  fl_cc_bytes_t fn = argv[0];
  if (fl_cc_eq(fn, "SubmitUpdate")) return mlu_submit_update(s, argc, argv);
  if (fl_cc_eq(fn, "CloseRound")) return mlu_close_round(s, argc, argv);
  if (fl_cc_eq(fn, "CreateTask")) return create_task(s, argc, argv);
  if (fl_cc_eq(fn, "RevokeClient")) return revoke_client(s, argc, argv);
  bool handled;
  fl_cc_response_t r = query(s, argc, argv, &handled);
  if (handled) return r;
  return mlu_err(s, 404, "mlupdate: unknown function %.*s", (int)(fn.len > 64 ? 64 : fn.len),
                 (const char *)fn.data);
}

static const fl_chaincode_t mlupdate = {
    .abi_version = FL_CC_ABI_VERSION,
    .name = FL_MLU_NAME,
    .init = NULL,
    .invoke = mlu_invoke,
};

__attribute__((visibility("default"))) const fl_chaincode_t *fl_chaincode_entry(void) {
  return &mlupdate;
}
