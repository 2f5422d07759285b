/* SPDX-License-Identifier: Apache-2.0
 *
 * out.c: tables, detail listings, times, short hashes and JSON helpers of
 * the fedledger CLI (out.h).
 */
#include "cli/out.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "common/base/alloc.h"

struct fl_cli_table_s {
  size_t ncols;
  char **cells; /* rows * ncols, row 0 = headers; NULL = empty cell */
  size_t rows;  /* including the header row */
  size_t cur;   /* next cell index in the current row */
};

fl_cli_table_t *fl_cli_table_new(size_t ncols, const char *const *headers) {
  fl_cli_table_t *t = fl_calloc(1, sizeof *t);
  t->ncols = ncols ? ncols : 1;
  t->cells = fl_calloc(t->ncols, sizeof(char *));
  for (size_t i = 0; i < ncols; i++) t->cells[i] = fl_strdup(headers[i]);
  t->rows = 1;
  t->cur = t->ncols;
  return t;
}

void fl_cli_table_row(fl_cli_table_t *t) {
  t->cells = fl_reallocarray(t->cells, (t->rows + 1) * t->ncols, sizeof(char *));
  memset(t->cells + t->rows * t->ncols, 0, t->ncols * sizeof(char *));
  t->rows++;
  t->cur = 0;
}

void fl_cli_table_cell(fl_cli_table_t *t, const char *fmt, ...) {
  if (t->rows < 2 || t->cur >= t->ncols) return;
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  for (char *p = tmp; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
  t->cells[(t->rows - 1) * t->ncols + t->cur++] = fl_strdup(tmp);
}

size_t fl_cli_table_rows(const fl_cli_table_t *t) { return t->rows - 1; }

void fl_cli_table_print(const fl_cli_table_t *t, FILE *f) {
  size_t *w = fl_calloc(t->ncols, sizeof *w);
  for (size_t r = 0; r < t->rows; r++)
    for (size_t c = 0; c < t->ncols; c++) {
      const char *s = t->cells[r * t->ncols + c];
      size_t l = s ? strlen(s) : 0;
      if (l > w[c]) w[c] = l;
    }
  fl_sbuf_t line = {0};
  for (size_t r = 0; r < t->rows; r++) {
    line.len = 0;
    for (size_t c = 0; c < t->ncols; c++) {
      const char *s = t->cells[r * t->ncols + c];
      if (s == NULL) s = "";
      fl_sbuf_append_str(&line, s);
      if (c + 1 < t->ncols)
        for (size_t k = strlen(s); k < w[c] + 2; k++) fl_sbuf_append(&line, " ", 1);
    }
    while (line.len > 0 && line.data[line.len - 1] == ' ') line.len--;
    fprintf(f, "%.*s\n", (int)line.len, (const char *)line.data);
  }
  fl_sbuf_free(&line);
  fl_free(w);
}

void fl_cli_table_free(fl_cli_table_t *t) {
  if (t == NULL) return;
  for (size_t i = 0; i < t->rows * t->ncols; i++) fl_free(t->cells[i]);
  fl_free(t->cells);
  fl_free(t);
}

void fl_cli_kv(FILE *f, const char *key, const char *fmt, ...) {
  char k[64];
  snprintf(k, sizeof k, "%s%s", key, key[0] ? ":" : ""); /* "" continues the key above */
  fprintf(f, "%-17s ", k);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fputc('\n', f);
}

char *fl_cli_time(uint64_t ms, char out[32]) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  if (gmtime_r(&secs, &tm) == NULL) {
    snprintf(out, 32, "%llu", (unsigned long long)ms);
    return out;
  }
  char d[24];
  strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 32, "%s.%03uZ", d, (unsigned)(ms % 1000));
  return out;
}

const char *fl_cli_short_hash(const char *s, char out[17]) {
  if (s == NULL) return "-";
  snprintf(out, 17, "%s", s);
  return out;
}

const char *fl_cli_jtext(const fl_mlu_json_t *rec, const char *key) {
  const fl_mlu_json_t *v = fl_mlu_json_get(rec, key);
  if (v == NULL) return "-";
  switch (v->kind) {
  case FL_MLU_JNULL: return "-";
  case FL_MLU_JBOOL: return v->b ? "true" : "false";
  case FL_MLU_JNUM:
  case FL_MLU_JSTR: return v->str;
  case FL_MLU_JARR: return "[...]";
  case FL_MLU_JOBJ: return "{...}";
  }
  return "-";
}

uint64_t fl_cli_ju64(const fl_mlu_json_t *rec, const char *key) {
  uint64_t v = 0;
  if (!fl_mlu_json_u64(fl_mlu_json_get(rec, key), &v)) return 0;
  return v;
}

void fl_cli_jw_value(fl_sbuf_t *b, const fl_mlu_json_t *v) {
  if (v == NULL) {
    fl_sbuf_append_str(b, "null");
    return;
  }
  switch (v->kind) {
  case FL_MLU_JNULL: fl_sbuf_append_str(b, "null"); break;
  case FL_MLU_JBOOL: fl_sbuf_append_str(b, v->b ? "true" : "false"); break;
  case FL_MLU_JNUM: fl_sbuf_append(b, v->str, v->len); break;
  case FL_MLU_JSTR: fl_mlu_jw_strn(b, v->str, v->len); break;
  case FL_MLU_JARR:
    fl_sbuf_append_str(b, "[");
    for (size_t i = 0; i < v->n; i++) {
      if (i) fl_sbuf_append_str(b, ",");
      fl_cli_jw_value(b, &v->items[i]);
    }
    fl_sbuf_append_str(b, "]");
    break;
  case FL_MLU_JOBJ:
    fl_sbuf_append_str(b, "{");
    for (size_t i = 0; i < v->n; i++) {
      if (i) fl_sbuf_append_str(b, ",");
      fl_mlu_jw_str(b, v->keys[i]);
      fl_sbuf_append_str(b, ":");
      fl_cli_jw_value(b, &v->items[i]);
    }
    fl_sbuf_append_str(b, "}");
    break;
  }
}

void fl_cli_jw_copy(fl_sbuf_t *b, const char *key, const fl_mlu_json_t *rec, const char *src) {
  fl_mlu_jw_key(b, key);
  fl_cli_jw_value(b, fl_mlu_json_get(rec, src));
}

void fl_cli_jw_bool(fl_sbuf_t *b, const char *key, bool v) {
  fl_mlu_jw_key(b, key);
  fl_sbuf_append_str(b, v ? "true" : "false");
}

void fl_cli_json_print(FILE *f, const fl_sbuf_t *b) {
  fwrite(b->data, 1, b->len, f);
  fputc('\n', f);
  fflush(f);
}
