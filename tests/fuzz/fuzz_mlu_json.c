/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_mlu_json.c: fuzz target of the mlupdate chaincode's JSON reader
 * (chaincode/mlupdate/json.h), which reads the task definition an admin
 * sends to CreateTask and every record the chaincode stores.
 *
 * When the input parses, the tree must be well formed (strings
 * NUL-terminated at their length with no inner NUL, object keys unique,
 * depth within the bound), and writing it back with the chaincode's own
 * writer (numbers by their raw text) and parsing that must give the same
 * tree; writing the second tree must give the same bytes again (the writer
 * is deterministic). The typed accessors are called on every node and must
 * agree with the node's kind. A failed parse leaves *out NULL.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chaincode/mlupdate/json.h"
#include "common/base/buf.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_check.h"

static void write_json(fl_sbuf_t *b, const fl_mlu_json_t *j) {
  switch (j->kind) {
    case FL_MLU_JNULL: fl_sbuf_append_str(b, "null"); break;
    case FL_MLU_JBOOL: fl_sbuf_append_str(b, j->b ? "true" : "false"); break;
    case FL_MLU_JNUM: fl_sbuf_append(b, j->str, j->len); break;
    case FL_MLU_JSTR: fl_mlu_jw_strn(b, j->str, j->len); break;
    case FL_MLU_JARR:
      fl_sbuf_append_str(b, "[");
      for (size_t i = 0; i < j->n; i++) {
        if (i) fl_sbuf_append_str(b, ",");
        write_json(b, &j->items[i]);
      }
      fl_sbuf_append_str(b, "]");
      break;
    case FL_MLU_JOBJ:
      fl_sbuf_append_str(b, "{");
      for (size_t i = 0; i < j->n; i++) {
        fl_mlu_jw_key(b, j->keys[i]);
        write_json(b, &j->items[i]);
      }
      fl_sbuf_append_str(b, "}");
      break;
  }
}

static void same(const fl_mlu_json_t *a, const fl_mlu_json_t *b) {
  check(a->kind == b->kind);
  switch (a->kind) {
    case FL_MLU_JNULL: break;
    case FL_MLU_JBOOL: check(a->b == b->b); break;
    case FL_MLU_JNUM:
      check(a->len == b->len && strcmp(a->str, b->str) == 0);
      check((isnan(a->num) && isnan(b->num)) || a->num == b->num);
      break;
    case FL_MLU_JSTR: check(a->len == b->len && memcmp(a->str, b->str, a->len) == 0); break;
    case FL_MLU_JARR:
    case FL_MLU_JOBJ:
      check(a->n == b->n);
      for (size_t i = 0; i < a->n; i++) {
        if (a->kind == FL_MLU_JOBJ) check(strcmp(a->keys[i], b->keys[i]) == 0);
        same(&a->items[i], &b->items[i]);
      }
      break;
  }
}

static void walk(const fl_mlu_json_t *j, int depth) {
  check(depth <= 33);
  uint64_t u;
  double d;
  const char *s = fl_mlu_json_str(j);
  check((s != NULL) == (j->kind == FL_MLU_JSTR));
  if (fl_mlu_json_u64(j, &u)) check(j->kind == FL_MLU_JNUM);
  if (fl_mlu_json_num(j, &d)) check(j->kind == FL_MLU_JNUM && isfinite(d) && d == j->num);
  if (j->kind == FL_MLU_JSTR || j->kind == FL_MLU_JNUM) {
    check(j->str != NULL && j->str[j->len] == '\0' && strlen(j->str) == j->len);
  }
  if (j->kind == FL_MLU_JOBJ) {
    for (size_t i = 0; i < j->n; i++) {
      check(j->keys[i] != NULL);
      /* Keys are unique, so lookup by key finds this very member. */
      check(fl_mlu_json_get(j, j->keys[i]) == &j->items[i]);
    }
  } else {
    check(fl_mlu_json_get(j, "task") == NULL);
  }
  if (j->kind == FL_MLU_JARR || j->kind == FL_MLU_JOBJ)
    for (size_t i = 0; i < j->n; i++) walk(&j->items[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fl_mlu_json_t sentinel;
  fl_mlu_json_t *j = &sentinel; /* must be overwritten */
  if (fl_mlu_json_parse(FL_BUF(data, size), &j) != FL_OK) {
    check(j == NULL);
    return 0;
  }
  check(j != NULL);
  walk(j, 0);
  fl_sbuf_t w1 = {0}, w2 = {0};
  write_json(&w1, j);
  fl_mlu_json_t *k = NULL;
  check(fl_mlu_json_parse(fl_sbuf_view(&w1), &k) == FL_OK);
  same(j, k);
  write_json(&w2, k);
  check(fl_buf_eq(fl_sbuf_view(&w1), fl_sbuf_view(&w2)));
  fl_sbuf_free(&w1);
  fl_sbuf_free(&w2);
  fl_mlu_json_free(k);
  fl_mlu_json_free(j);
  return 0;
}
