/* SPDX-License-Identifier: Apache-2.0
 *
 * cc_script.c: a test chaincode ("script") that runs a little program given
 * in its arguments, so one transaction can mix reads, writes, deletes and
 * scans in any order. args = ["run", op, operands..., op, ...]:
 *   get k             appends "k=v;", "k=!;" (absent) or "k=E<rc>;"
 *   put k v / del k   appends "E<rc>;" on error only
 *   range s e n       consumes up to n entries (0 = all), appends "[k1,k2]",
 *                     plus "$" when it saw the end; closes the iterator
 *   rangeopen s e n   the same, but leaves the iterator open
 *   hist k            appends "{txid@b.t=v,txid@b.t=-}" (newest first)
 *   putblob i         stores proposal blob i; appends "B<hex of hash[0]>;"
 *   storedblob h      reads the committed blob whose SHA-256 is the 64 hex
 *                     digits h; appends "S<bytes>;", "S!;" (absent) or
 *                     "E<rc>;"
 *   event n p         sets the event
 *   cn                appends "C<creator's subject CN>;" or "E<rc>;"
 *   verify m sig      verifies the hex DER signature sig over m with the
 *                     creator's key; appends "V;" or "E<rc>;"
 *   loopget k         calls get_state until it fails; appends "T;" when the
 *                     failure is FL_CC_ETIMEDOUT (in-process timeout test)
 *   status code       the final response status (default 200)
 *   garbage           writes a frame of an unknown type on the worker's
 *                     channel (fd 3 in fork mode): a protocol violation
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chaincode/shim.h"

typedef struct out_s {
  fl_cc_stub_t *stub;
  char *p;
  size_t len, cap;
} out_t;

static void put(out_t *o, const void *d, size_t n) {
  if (o->len + n + 1 > o->cap) {
    size_t cap = (o->cap + n + 1) * 2;
    char *p = fl_cc_alloc(o->stub, cap);
    if (o->len) memcpy(p, o->p, o->len);
    o->p = p;
    o->cap = cap;
  }
  if (n) memcpy(o->p + o->len, d, n);
  o->len += n;
}
static void puts_(out_t *o, const char *s) { put(o, s, strlen(s)); }
static void putb(out_t *o, fl_cc_bytes_t b) { put(o, b.data, b.len); }
static void putrc(out_t *o, int rc) {
  char t[24];
  snprintf(t, sizeof t, "E%d;", rc);
  puts_(o, t);
}
static unsigned long num(fl_cc_bytes_t b) {
  char t[32] = {0};
  memcpy(t, b.data, b.len < 31 ? b.len : 31);
  return strtoul(t, NULL, 10);
}

static void do_range(out_t *o, fl_cc_stub_t *s, const fl_cc_bytes_t *a, int close) {
  fl_cc_range_iter_t *it;
  int rc = fl_cc_get_state_range(s, a[0], a[1], &it);
  if (rc) {
    putrc(o, rc);
    return;
  }
  unsigned long lim = num(a[2]), n = 0;
  fl_cc_kv_t kv;
  puts_(o, "[");
  while (lim == 0 || n < lim) {
    rc = fl_cc_range_next(it, &kv);
    if (rc == FL_CC_NOTFOUND) {
      puts_(o, "$");
      break;
    }
    if (rc) {
      putrc(o, rc);
      break;
    }
    if (n++) puts_(o, ",");
    putb(o, kv.key);
  }
  puts_(o, "]");
  if (close) fl_cc_range_close(it);
}

static fl_cc_response_t run(fl_cc_stub_t *s) {
  size_t argc;
  const fl_cc_bytes_t *a;
  fl_cc_get_args(s, &argc, &a);
  out_t o = {.stub = s};
  int32_t status = FL_CC_STATUS_OK;
  size_t i = 1;
#define NEED(n) if (i + (n) > argc) return fl_cc_error(400, fl_cc_str("script: missing operand"))
  while (i < argc) {
    fl_cc_bytes_t op = a[i++];
    int rc;
    if (fl_cc_eq(op, "get")) {
      NEED(1);
      fl_cc_bytes_t v;
      rc = fl_cc_get_state(s, a[i], &v);
      putb(&o, a[i]);
      puts_(&o, "=");
      if (rc == FL_CC_OK) putb(&o, v);
      else if (rc == FL_CC_NOTFOUND) puts_(&o, "!");
      else putrc(&o, rc);
      puts_(&o, ";");
      i += 1;
    } else if (fl_cc_eq(op, "put")) {
      NEED(2);
      if ((rc = fl_cc_put_state(s, a[i], a[i + 1]))) putrc(&o, rc);
      i += 2;
    } else if (fl_cc_eq(op, "del")) {
      NEED(1);
      if ((rc = fl_cc_del_state(s, a[i]))) putrc(&o, rc);
      i += 1;
    } else if (fl_cc_eq(op, "range") || fl_cc_eq(op, "rangeopen")) {
      NEED(3);
      do_range(&o, s, &a[i], fl_cc_eq(op, "range"));
      i += 3;
    } else if (fl_cc_eq(op, "hist")) {
      NEED(1);
      fl_cc_hist_iter_t *it;
      if ((rc = fl_cc_get_history_for_key(s, a[i], &it))) {
        putrc(&o, rc);
      } else {
        fl_cc_mod_t m;
        int n = 0;
        puts_(&o, "{");
        while ((rc = fl_cc_hist_next(it, &m)) == FL_CC_OK) {
          char t[64];
          if (n++) puts_(&o, ",");
          putb(&o, m.tx_id);
          snprintf(t, sizeof t, "@%llu.%llu=", (unsigned long long)m.block_num,
                   (unsigned long long)m.tx_num);
          puts_(&o, t);
          if (m.is_delete) puts_(&o, "-");
          else putb(&o, m.value);
        }
        puts_(&o, "}");
        fl_cc_hist_close(it);
      }
      i += 1;
    } else if (fl_cc_eq(op, "putblob")) {
      NEED(1);
      fl_cc_bytes_t b;
      uint8_t h[FL_CC_HASH_LEN];
      if ((rc = fl_cc_get_blob(s, num(a[i]), &b)) || (rc = fl_cc_put_blob(s, b, h))) {
        putrc(&o, rc);
      } else {
        char t[8];
        snprintf(t, sizeof t, "B%02x;", h[0]);
        puts_(&o, t);
      }
      i += 1;
    } else if (fl_cc_eq(op, "storedblob")) {
      NEED(1);
      uint8_t h[FL_CC_HASH_LEN] = {0};
      for (size_t k = 0; k < FL_CC_HASH_LEN && 2 * k + 1 < a[i].len; k++) {
        char t[3] = {(char)a[i].data[2 * k], (char)a[i].data[2 * k + 1], 0};
        h[k] = (uint8_t)strtoul(t, NULL, 16);
      }
      fl_cc_bytes_t b;
      rc = fl_cc_get_stored_blob(s, h, &b);
      if (rc == FL_CC_NOTFOUND) {
        puts_(&o, "S!;");
      } else if (rc) {
        putrc(&o, rc);
      } else {
        puts_(&o, "S");
        putb(&o, b);
        puts_(&o, ";");
      }
      i += 1;
    } else if (fl_cc_eq(op, "cn")) {
      fl_cc_bytes_t cn;
      if ((rc = fl_cc_get_creator_cn(s, &cn))) {
        putrc(&o, rc);
      } else {
        puts_(&o, "C");
        putb(&o, cn);
        puts_(&o, ";");
      }
    } else if (fl_cc_eq(op, "verify")) {
      NEED(2);
      uint8_t sig[160];
      size_t n = 0;
      for (; n < sizeof sig && 2 * n + 1 < a[i + 1].len; n++) {
        char t[3] = {(char)a[i + 1].data[2 * n], (char)a[i + 1].data[2 * n + 1], 0};
        sig[n] = (uint8_t)strtoul(t, NULL, 16);
      }
      rc = fl_cc_verify_creator(s, a[i], fl_cc_bytes(sig, n));
      if (rc) putrc(&o, rc);
      else puts_(&o, "V;");
      i += 2;
    } else if (fl_cc_eq(op, "event")) {
      NEED(2);
      if ((rc = fl_cc_set_event(s, a[i], a[i + 1]))) putrc(&o, rc);
      i += 2;
    } else if (fl_cc_eq(op, "loopget")) {
      NEED(1);
      fl_cc_bytes_t v;
      for (long n = 0; n < 100000000L; n++) {
        rc = fl_cc_get_state(s, a[i], &v);
        if (rc != FL_CC_OK && rc != FL_CC_NOTFOUND) break;
      }
      if (rc == FL_CC_ETIMEDOUT) puts_(&o, "T;");
      i += 1;
    } else if (fl_cc_eq(op, "garbage")) {
      static const unsigned char junk[8] = {0, 0, 0, 77, 0, 0, 0, 0};
      if (write(3, junk, sizeof junk) != (ssize_t)sizeof junk) puts_(&o, "W;");
      fl_cc_bytes_t v;
      (void)fl_cc_get_state(s, fl_cc_str("a"), &v); /* waits for a reply */
    } else if (fl_cc_eq(op, "status")) {
      NEED(1);
      status = (int32_t)num(a[i]);
      i += 1;
    } else {
      return fl_cc_error(400, fl_cc_str("script: unknown op"));
    }
  }
  fl_cc_response_t r = {.status = status, .payload = fl_cc_bytes(o.p, o.len)};
  if (status >= 400) r.message = fl_cc_str("script: status requested");
  return r;
}

static const fl_chaincode_t desc = {
    .abi_version = FL_CC_ABI_VERSION, .name = "script", .init = NULL, .invoke = run};

__attribute__((visibility("default"))) const fl_chaincode_t *fl_chaincode_entry(void) {
  return &desc;
}
