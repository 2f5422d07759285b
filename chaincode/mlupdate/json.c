/* SPDX-License-Identifier: Apache-2.0
 *
 * json.c: a strict, bounded recursive-descent JSON parser into an owned tree,
 * and the deterministic writer helpers of the mlupdate records (json.h).
 */
#include "chaincode/mlupdate/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"

#define MAX_DEPTH 32

typedef struct parser_s {
  const uint8_t *p, *end;
  int depth;
} parser_t;

static void node_clear(fl_mlu_json_t *j) {
  if (j->kind == FL_MLU_JARR || j->kind == FL_MLU_JOBJ) {
    for (size_t i = 0; i < j->n; i++) {
      node_clear(&j->items[i]);
      if (j->keys) fl_free(j->keys[i]);
    }
    fl_free(j->items);
    fl_free(j->keys);
  }
  fl_free(j->str);
  memset(j, 0, sizeof *j);
}

void fl_mlu_json_free(fl_mlu_json_t *j) {
  if (j == NULL) return;
  node_clear(j);
  fl_free(j);
}

static void skip_ws(parser_t *ps) {
  while (ps->p < ps->end &&
         (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_u4(parser_t *ps, uint32_t *v) {
  if (ps->end - ps->p < 4) return false;
  uint32_t x = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(ps->p[i]);
    if (h < 0) return false;
    x = x << 4 | (uint32_t)h;
  }
  ps->p += 4;
  *v = x;
  return true;
}

static void put_utf8(fl_sbuf_t *b, uint32_t cp) {
  uint8_t u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (uint8_t)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (uint8_t)(0xc0 | cp >> 6);
    u[1] = (uint8_t)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (uint8_t)(0xe0 | cp >> 12);
    u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    u[2] = (uint8_t)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    u[0] = (uint8_t)(0xf0 | cp >> 18);
    u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    u[3] = (uint8_t)(0x80 | (cp & 0x3f));
    n = 4;
  }
  fl_sbuf_append(b, u, n);
}

/* Parses a string literal (ps->p at the opening quote) into an owned
 * NUL-terminated string. */
static fl_status_t parse_string(parser_t *ps, char **out, size_t *len) {
  fl_sbuf_t b = {0};
  ps->p++; /* opening quote */
  for (;;) {
    if (ps->p >= ps->end) goto fail;
    uint8_t c = *ps->p++;
    if (c == '"') break;
    if (c < 0x20) goto fail;
    if (c != '\\') {
      fl_sbuf_append(&b, &c, 1);
      continue;
    }
    if (ps->p >= ps->end) goto fail;
    uint8_t e = *ps->p++;
    uint8_t lit;
    switch (e) {
    case '"': lit = '"'; break;
    case '\\': lit = '\\'; break;
    case '/': lit = '/'; break;
    case 'b': lit = '\b'; break;
    case 'f': lit = '\f'; break;
    case 'n': lit = '\n'; break;
    case 'r': lit = '\r'; break;
    case 't': lit = '\t'; break;
    case 'u': {
      uint32_t cp;
      if (!read_u4(ps, &cp)) goto fail;
      if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo;
        if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') goto fail;
        ps->p += 2;
        if (!read_u4(ps, &lo) || lo < 0xdc00 || lo > 0xdfff) goto fail;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        goto fail;
      }
      if (cp == 0) goto fail; /* strings are handed out NUL-terminated */
      put_utf8(&b, cp);
      continue;
    }
    default:
      goto fail;
    }
    fl_sbuf_append(&b, &lit, 1);
  }
  *len = b.len;
  fl_sbuf_append(&b, "", 1);
  *out = (char *)fl_sbuf_detach(&b, NULL);
  return FL_OK;
fail:
  fl_sbuf_free(&b);
  return FL_EMALFORMED;
}

static fl_status_t parse_number(parser_t *ps, fl_mlu_json_t *j) {
  const uint8_t *s = ps->p;
  if (ps->p < ps->end && *ps->p == '-') ps->p++;
  if (ps->p >= ps->end) return FL_EMALFORMED;
  if (*ps->p == '0') {
    ps->p++;
  } else if (*ps->p >= '1' && *ps->p <= '9') {
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  } else {
    return FL_EMALFORMED;
  }
  if (ps->p < ps->end && *ps->p == '.') {
    ps->p++;
    const uint8_t *d = ps->p;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    if (ps->p == d) return FL_EMALFORMED;
  }
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
    const uint8_t *d = ps->p;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    if (ps->p == d) return FL_EMALFORMED;
  }
  j->kind = FL_MLU_JNUM;
  j->len = (size_t)(ps->p - s);
  j->str = fl_strndup((const char *)s, j->len);
  j->num = strtod(j->str, NULL); /* the grammar above is a subset of strtod's */
  return FL_OK;
}

static bool literal(parser_t *ps, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0) return false;
  ps->p += n;
  return true;
}

static fl_status_t parse_value(parser_t *ps, fl_mlu_json_t *j);

static fl_status_t parse_container(parser_t *ps, fl_mlu_json_t *j, bool obj) {
  if (++ps->depth > MAX_DEPTH) return FL_EMALFORMED;
  j->kind = obj ? FL_MLU_JOBJ : FL_MLU_JARR;
  ps->p++; /* [ or { */
  size_t cap = 0;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
    ps->p++;
    ps->depth--;
    return FL_OK;
  }
  for (;;) {
    if (j->n == cap) {
      cap = cap ? cap * 2 : 4;
      j->items = fl_realloc(j->items, cap * sizeof *j->items);
      if (obj) j->keys = fl_realloc(j->keys, cap * sizeof *j->keys);
    }
    fl_mlu_json_t *it = &j->items[j->n];
    memset(it, 0, sizeof *it);
    if (obj) j->keys[j->n] = NULL;
    j->n++; /* counted now so that a failure below frees what is there */
    skip_ws(ps);
    if (obj) {
      size_t klen;
      if (ps->p >= ps->end || *ps->p != '"') return FL_EMALFORMED;
      if (parse_string(ps, &j->keys[j->n - 1], &klen) != FL_OK) return FL_EMALFORMED;
      for (size_t i = 0; i + 1 < j->n; i++)
        if (strcmp(j->keys[i], j->keys[j->n - 1]) == 0) return FL_EMALFORMED;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') return FL_EMALFORMED;
      ps->p++;
      skip_ws(ps);
    }
    fl_status_t rc = parse_value(ps, it);
    if (rc != FL_OK) return rc;
    skip_ws(ps);
    if (ps->p >= ps->end) return FL_EMALFORMED;
    if (*ps->p == ',') {
      ps->p++;
      continue;
    }
    if (*ps->p == (obj ? '}' : ']')) {
      ps->p++;
      ps->depth--;
      return FL_OK;
    }
    return FL_EMALFORMED;
  }
}

static fl_status_t parse_value(parser_t *ps, fl_mlu_json_t *j) {
  if (ps->p >= ps->end) return FL_EMALFORMED;
  switch (*ps->p) {
  case '{': return parse_container(ps, j, true);
  case '[': return parse_container(ps, j, false);
  case '"':
    j->kind = FL_MLU_JSTR;
    return parse_string(ps, &j->str, &j->len);
  case 't':
    if (!literal(ps, "true")) return FL_EMALFORMED;
    j->kind = FL_MLU_JBOOL;
    j->b = true;
    return FL_OK;
  case 'f':
    if (!literal(ps, "false")) return FL_EMALFORMED;
    j->kind = FL_MLU_JBOOL;
    return FL_OK;
  case 'n':
    if (!literal(ps, "null")) return FL_EMALFORMED;
    j->kind = FL_MLU_JNULL;
    return FL_OK;
  default:
    return parse_number(ps, j);
  }
}

fl_status_t fl_mlu_json_parse(fl_buf_t text, fl_mlu_json_t **out) {
  *out = NULL;
  if (text.len > FL_MLU_JSON_MAX) return FL_ETOOBIG;
  parser_t ps = {.p = text.data, .end = text.data + text.len};
  fl_mlu_json_t *j = fl_calloc(1, sizeof *j);
  skip_ws(&ps);
  fl_status_t rc = text.len ? parse_value(&ps, j) : FL_EMALFORMED;
  if (rc == FL_OK) {
    skip_ws(&ps);
    if (ps.p != ps.end) rc = FL_EMALFORMED;
  }
  if (rc != FL_OK) {
    fl_mlu_json_free(j);
    return rc;
  }
  *out = j;
  return FL_OK;
}

const fl_mlu_json_t *fl_mlu_json_get(const fl_mlu_json_t *o, const char *key) {
  if (o == NULL || o->kind != FL_MLU_JOBJ) return NULL;
  for (size_t i = 0; i < o->n; i++)
    if (strcmp(o->keys[i], key) == 0) return &o->items[i];
  return NULL;
}

bool fl_mlu_json_u64(const fl_mlu_json_t *j, uint64_t *v) {
  if (j == NULL || j->kind != FL_MLU_JNUM || j->len == 0 || j->len > 20) return false;
  for (size_t i = 0; i < j->len; i++)
    if (j->str[i] < '0' || j->str[i] > '9') return false;
  if (j->len > 1 && j->str[0] == '0') return false;
  errno = 0;
  unsigned long long x = strtoull(j->str, NULL, 10);
  if (errno == ERANGE) return false;
  *v = (uint64_t)x;
  return true;
}

bool fl_mlu_json_num(const fl_mlu_json_t *j, double *v) {
  if (j == NULL || j->kind != FL_MLU_JNUM || !isfinite(j->num)) return false;
  *v = j->num;
  return true;
}

const char *fl_mlu_json_str(const fl_mlu_json_t *j) {
  return j && j->kind == FL_MLU_JSTR ? j->str : NULL;
}

/* ---- writer ---------------------------------------------------------------- */

void fl_mlu_jw_strn(fl_sbuf_t *b, const char *s, size_t n) {
  fl_sbuf_append(b, "\"", 1);
  size_t run = 0; /* bytes copied in one append */
  for (size_t i = 0; i < n; i++) {
    uint8_t c = (uint8_t)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    fl_sbuf_append(b, s + run, i - run);
    run = i + 1;
    if (c == '"') {
      fl_sbuf_append(b, "\\\"", 2);
    } else if (c == '\\') {
      fl_sbuf_append(b, "\\\\", 2);
    } else {
      char u[8];
      snprintf(u, sizeof u, "\\u%04x", c);
      fl_sbuf_append(b, u, 6);
    }
  }
  fl_sbuf_append(b, s + run, n - run);
  fl_sbuf_append(b, "\"", 1);
}

void fl_mlu_jw_str(fl_sbuf_t *b, const char *s) {
  if (s == NULL)
    fl_sbuf_append(b, "null", 4);
  else
    fl_mlu_jw_strn(b, s, strlen(s));
}

void fl_mlu_jw_hex(fl_sbuf_t *b, const uint8_t *p, size_t n) {
  char *h = fl_malloc(2 * n + 1);
  fl_hex_encode(p, n, h);
  fl_sbuf_append(b, "\"", 1);
  fl_sbuf_append(b, h, 2 * n);
  fl_sbuf_append(b, "\"", 1);
  fl_free(h);
}

void fl_mlu_jw_u64(fl_sbuf_t *b, uint64_t v) {
  char t[24];
  int n = snprintf(t, sizeof t, "%" PRIu64, v);
  fl_sbuf_append(b, t, (size_t)n);
}

void fl_mlu_jw_num(fl_sbuf_t *b, double v) {
  if (!isfinite(v)) {
    fl_sbuf_append(b, "null", 4);
    return;
  }
  char t[40];
  int n = snprintf(t, sizeof t, "%.17g", v);
  /* A locale with a decimal comma would break the format: force '.'. */
  for (int i = 0; i < n; i++)
    if (t[i] == ',') t[i] = '.';
  fl_sbuf_append(b, t, (size_t)n);
}

void fl_mlu_jw_key(fl_sbuf_t *b, const char *key) {
  if (b->len > 0 && b->data[b->len - 1] != '{' && b->data[b->len - 1] != '[')
    fl_sbuf_append(b, ",", 1);
  fl_mlu_jw_str(b, key);
  fl_sbuf_append(b, ":", 1);
}
