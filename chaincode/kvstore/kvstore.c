/* SPDX-License-Identifier: Apache-2.0
 *
 * kvstore.c: the sample chaincode. A plain key-value store over the world
 * state, used by the runtime's tests, the integration tests and the e2e
 * benchmark, and the worked example of docs/chaincode.md.
 *
 * Functions (args[0]) and their arguments:
 *   put <key> <value>        write; payload empty
 *   get <key>                payload = value; 404 if absent
 *   del <key>                delete
 *   range <start> <end>      payload = one line "key=value\n" per key in
 *                            [start, end), ascending (empty end: to the last)
 *   history <key>            payload = one line per modification, newest
 *                            first: "<block>.<tx> <tx_id> <value>\n", or
 *                            "<block>.<tx> <tx_id> (deleted)\n"
 *   blob <key>               stores the proposal's blob 0 by SHA-256, writes
 *                            key = hex hash; payload = hex hash
 *   event <name> <payload>   sets the chaincode event
 *   info                     payload = "tx_id|timestamp|mspid|role|transient"
 *   fail                     500 "kvstore: failure requested"
 *   crash [segv|exit]        abort() (or SIGSEGV, or exit(0)): the isolation
 *                            test
 *   spin                     loops forever: the timeout test
 * init [value] writes "kvstore/init" = value (default "1").
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaincode/shim.h"

#define ARG_ERROR(msg) fl_cc_error(FL_CC_STATUS_BAD_REQUEST, fl_cc_str(msg))

/* A growing buffer in stub memory (fl_cc_alloc): the response payload. */
typedef struct out_s {
  fl_cc_stub_t *stub;
  uint8_t *data;
  size_t len, cap;
} out_t;

static void out_append(out_t *o, const void *p, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 256;
    while (cap < o->len + n) cap *= 2;
    uint8_t *d = fl_cc_alloc(o->stub, cap); /* old block is freed with the stub */
    if (o->len) memcpy(d, o->data, o->len);
    o->data = d;
    o->cap = cap;
  }
  if (n) memcpy(o->data + o->len, p, n);
  o->len += n;
}

static void out_str(out_t *o, const char *s) { out_append(o, s, strlen(s)); }

static fl_cc_response_t status_error(fl_cc_stub_t *stub, int rc) {
  char *msg = fl_cc_alloc(stub, 64);
  int n = snprintf(msg, 64, "kvstore: state access failed rc=%d", rc);
  return fl_cc_error(FL_CC_STATUS_ERROR, fl_cc_bytes(msg, (size_t)n));
}

static fl_cc_response_t do_range(fl_cc_stub_t *stub, fl_cc_bytes_t start,
                                 fl_cc_bytes_t end) {
  fl_cc_range_iter_t *it = NULL;
  int rc = fl_cc_get_state_range(stub, start, end, &it);
  if (rc != FL_CC_OK) return status_error(stub, rc);
  out_t o = {.stub = stub};
  fl_cc_kv_t kv;
  while ((rc = fl_cc_range_next(it, &kv)) == FL_CC_OK) {
    out_append(&o, kv.key.data, kv.key.len);
    out_str(&o, "=");
    out_append(&o, kv.value.data, kv.value.len);
    out_str(&o, "\n");
  }
  fl_cc_range_close(it);
  if (rc != FL_CC_NOTFOUND) return status_error(stub, rc);
  return fl_cc_success(fl_cc_bytes(o.data, o.len));
}

static fl_cc_response_t do_history(fl_cc_stub_t *stub, fl_cc_bytes_t key) {
  fl_cc_hist_iter_t *it = NULL;
  int rc = fl_cc_get_history_for_key(stub, key, &it);
  if (rc != FL_CC_OK) return status_error(stub, rc);
  out_t o = {.stub = stub};
  fl_cc_mod_t m;
  while ((rc = fl_cc_hist_next(it, &m)) == FL_CC_OK) {
    char pos[48];
    snprintf(pos, sizeof pos, "%llu.%llu ", (unsigned long long)m.block_num,
             (unsigned long long)m.tx_num);
    out_str(&o, pos);
    out_append(&o, m.tx_id.data, m.tx_id.len);
    out_str(&o, " ");
    if (m.is_delete)
      out_str(&o, "(deleted)");
    else
      out_append(&o, m.value.data, m.value.len);
    out_str(&o, "\n");
  }
  fl_cc_hist_close(it);
  if (rc != FL_CC_NOTFOUND) return status_error(stub, rc);
  return fl_cc_success(fl_cc_bytes(o.data, o.len));
}

static fl_cc_response_t do_blob(fl_cc_stub_t *stub, fl_cc_bytes_t key) {
  fl_cc_bytes_t blob;
  if (fl_cc_get_blob(stub, 0, &blob) != FL_CC_OK)
    return ARG_ERROR("kvstore: blob needs a proposal blob");
  uint8_t hash[FL_CC_HASH_LEN];
  int rc = fl_cc_put_blob(stub, blob, hash);
  if (rc != FL_CC_OK) return status_error(stub, rc);
  char *hex = fl_cc_alloc(stub, 2 * FL_CC_HASH_LEN + 1);
  for (size_t i = 0; i < FL_CC_HASH_LEN; i++)
    snprintf(hex + 2 * i, 3, "%02x", hash[i]);
  fl_cc_bytes_t h = fl_cc_bytes(hex, 2 * FL_CC_HASH_LEN);
  rc = fl_cc_put_state(stub, key, h);
  if (rc != FL_CC_OK) return status_error(stub, rc);
  return fl_cc_success(h);
}

static fl_cc_response_t do_info(fl_cc_stub_t *stub) {
  out_t o = {.stub = stub};
  fl_cc_bytes_t txid = fl_cc_get_tx_id(stub);
  out_append(&o, txid.data, txid.len);
  char ts[32];
  snprintf(ts, sizeof ts, "|%llu|", (unsigned long long)fl_cc_get_timestamp(stub));
  out_str(&o, ts);
  fl_cc_creator_t c;
  fl_cc_get_creator(stub, &c);
  out_append(&o, c.mspid.data, c.mspid.len);
  out_str(&o, "|");
  out_append(&o, c.role.data, c.role.len);
  out_str(&o, "|");
  fl_cc_bytes_t tr = fl_cc_get_transient(stub);
  out_append(&o, tr.data, tr.len);
  return fl_cc_success(fl_cc_bytes(o.data, o.len));
}

static fl_cc_response_t kv_invoke(fl_cc_stub_t *stub) {
  size_t argc = 0;
  const fl_cc_bytes_t *argv = NULL;
  fl_cc_get_args(stub, &argc, &argv);
  if (argc < 1) return ARG_ERROR("kvstore: no function");
  fl_cc_bytes_t fn = argv[0];
  int rc;

  if (fl_cc_eq(fn, "put")) {
    if (argc != 3) return ARG_ERROR("kvstore: put <key> <value>");
    rc = fl_cc_put_state(stub, argv[1], argv[2]);
    return rc == FL_CC_OK ? fl_cc_success(fl_cc_bytes(NULL, 0)) : status_error(stub, rc);
  }
  if (fl_cc_eq(fn, "get")) {
    if (argc != 2) return ARG_ERROR("kvstore: get <key>");
    fl_cc_bytes_t v;
    rc = fl_cc_get_state(stub, argv[1], &v);
    if (rc == FL_CC_NOTFOUND)
      return fl_cc_error(FL_CC_STATUS_NOT_FOUND, fl_cc_str("kvstore: key not found"));
    return rc == FL_CC_OK ? fl_cc_success(v) : status_error(stub, rc);
  }
  if (fl_cc_eq(fn, "del")) {
    if (argc != 2) return ARG_ERROR("kvstore: del <key>");
    rc = fl_cc_del_state(stub, argv[1]);
    return rc == FL_CC_OK ? fl_cc_success(fl_cc_bytes(NULL, 0)) : status_error(stub, rc);
  }
  if (fl_cc_eq(fn, "range")) {
    if (argc != 3) return ARG_ERROR("kvstore: range <start> <end>");
    return do_range(stub, argv[1], argv[2]);
  }
  if (fl_cc_eq(fn, "history")) {
    if (argc != 2) return ARG_ERROR("kvstore: history <key>");
    return do_history(stub, argv[1]);
  }
  if (fl_cc_eq(fn, "blob")) {
    if (argc != 2) return ARG_ERROR("kvstore: blob <key>");
    return do_blob(stub, argv[1]);
  }
  if (fl_cc_eq(fn, "event")) {
    if (argc != 3) return ARG_ERROR("kvstore: event <name> <payload>");
    rc = fl_cc_set_event(stub, argv[1], argv[2]);
    return rc == FL_CC_OK ? fl_cc_success(fl_cc_bytes(NULL, 0)) : status_error(stub, rc);
  }
  if (fl_cc_eq(fn, "info")) return do_info(stub);
  if (fl_cc_eq(fn, "fail"))
    return fl_cc_error(FL_CC_STATUS_ERROR, fl_cc_str("kvstore: failure requested"));
  if (fl_cc_eq(fn, "crash")) {
    if (argc > 1 && fl_cc_eq(argv[1], "segv")) raise(SIGSEGV);
    if (argc > 1 && fl_cc_eq(argv[1], "exit")) exit(0);
    abort();
  }
  if (fl_cc_eq(fn, "spin")) {
    volatile unsigned long n = 0;
    for (;;) n++;
  }
  return fl_cc_error(FL_CC_STATUS_NOT_FOUND, fl_cc_str("kvstore: unknown function"));
}

static fl_cc_response_t kv_init(fl_cc_stub_t *stub) {
  size_t argc = 0;
  const fl_cc_bytes_t *argv = NULL;
  fl_cc_get_args(stub, &argc, &argv);
  fl_cc_bytes_t v = argc > 1 ? argv[1] : fl_cc_str("1");
  int rc = fl_cc_put_state(stub, fl_cc_str("kvstore/init"), v);
  return rc == FL_CC_OK ? fl_cc_success(fl_cc_bytes(NULL, 0)) : status_error(stub, rc);
}

static const fl_chaincode_t kvstore = {
    .abi_version = FL_CC_ABI_VERSION,
    .name = "kvstore",
    .init = kv_init,
    .invoke = kv_invoke,
};

__attribute__((visibility("default"))) const fl_chaincode_t *fl_chaincode_entry(void) {
  return &kvstore;
}
