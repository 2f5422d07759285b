/* SPDX-License-Identifier: Apache-2.0
 *
 * cc_counter.c: a test chaincode for the peer's integration tests: a
 * read-modify-write counter, so that a transaction has both a read set and
 * a write set (stale reads must be caught by MVCC).
 *
 *   incr <key>   reads key (absent = 0), writes key = value + 1 (decimal);
 *                payload = the new value
 *   get <key>    payload = value; 404 if absent
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaincode/shim.h"

static fl_cc_response_t cnt_invoke(fl_cc_stub_t *stub) {
  size_t argc;
  const fl_cc_bytes_t *argv;
  fl_cc_get_args(stub, &argc, &argv);
  if (argc != 2) return fl_cc_error(FL_CC_STATUS_BAD_REQUEST, fl_cc_str("counter: <fn> <key>"));
  fl_cc_bytes_t v;
  int rc = fl_cc_get_state(stub, argv[1], &v);
  if (rc != FL_CC_OK && rc != FL_CC_NOTFOUND)
    return fl_cc_error(FL_CC_STATUS_ERROR, fl_cc_str("counter: read failed"));
  if (fl_cc_eq(argv[0], "get")) {
    if (rc == FL_CC_NOTFOUND) return fl_cc_error(FL_CC_STATUS_NOT_FOUND, fl_cc_str("no such key"));
    return fl_cc_success(v);
  }
  if (!fl_cc_eq(argv[0], "incr"))
    return fl_cc_error(FL_CC_STATUS_NOT_FOUND, fl_cc_str("counter: unknown function"));
  unsigned long long n = 0;
  if (rc == FL_CC_OK) {
    char tmp[32];
    size_t k = v.len < sizeof(tmp) - 1 ? v.len : sizeof(tmp) - 1;
    memcpy(tmp, v.data, k);
    tmp[k] = '\0';
    n = strtoull(tmp, NULL, 10);
  }
  char *out = fl_cc_alloc(stub, 32);
  int len = snprintf(out, 32, "%llu", n + 1);
  fl_cc_bytes_t nv = fl_cc_bytes(out, (size_t)len);
  if (fl_cc_put_state(stub, argv[1], nv) != FL_CC_OK)
    return fl_cc_error(FL_CC_STATUS_ERROR, fl_cc_str("counter: write failed"));
  return fl_cc_success(nv);
}

static const fl_chaincode_t counter = {
    .abi_version = FL_CC_ABI_VERSION, .name = "counter", .init = NULL, .invoke = cnt_invoke};

__attribute__((visibility("default"))) const fl_chaincode_t *fl_chaincode_entry(void) {
  return &counter;
}
