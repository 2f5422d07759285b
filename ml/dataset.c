/* SPDX-License-Identifier: Apache-2.0
 *
 * dataset.c: CSV/LIBSVM loading through zlib (gzip or plain), the
 * train-fitted encoder, stratified splits and IID/Dirichlet partitions.
 *
 * Parsing keeps every length bounded: a line longer than MAX_LINE bytes or
 * with more than MAX_COLS fields is an error, not a reallocation loop.
 */
#include "ml/dataset.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common/base/alloc.h"
#include "ml/rng.h"

#define MAX_LINE (1u << 16)
#define MAX_COLS 4096u

enum { ROLE_NUM, ROLE_CAT, ROLE_LABEL, ROLE_IGNORE };

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* ---- vocabularies -------------------------------------------------------- */

static int32_t vocab_find(const fl_ml_vocab_t *v, const char *s) {
  for (uint32_t i = 0; i < v->n; i++)
    if (v->s[i][0] == s[0] && strcmp(v->s[i], s) == 0) return (int32_t)i;
  return -1;
}

static uint32_t vocab_intern(fl_ml_vocab_t *v, const char *s) {
  int32_t i = vocab_find(v, s);
  if (i >= 0) return (uint32_t)i;
  if (v->n == v->cap) {
    v->cap = v->cap ? 2 * v->cap : 16;
    v->s = fl_reallocarray(v->s, v->cap, sizeof *v->s);
  }
  v->s[v->n] = fl_strdup(s);
  return v->n++;
}

static void vocab_copy(fl_ml_vocab_t *dst, const fl_ml_vocab_t *src) {
  dst->n = dst->cap = src->n;
  dst->s = fl_calloc(src->n ? src->n : 1, sizeof *dst->s);
  for (uint32_t i = 0; i < src->n; i++) dst->s[i] = fl_strdup(src->s[i]);
}

static void vocab_free(fl_ml_vocab_t *v) {
  for (uint32_t i = 0; i < v->n; i++) fl_free(v->s[i]);
  fl_free(v->s);
  memset(v, 0, sizeof *v);
}

static void free_names(char **names, uint32_t n) {
  if (names == NULL) return;
  for (uint32_t i = 0; i < n; i++) fl_free(names[i]);
  fl_free(names);
}

static char **dup_names(char *const *names, uint32_t n) {
  char **out = fl_calloc(n ? n : 1, sizeof *out);
  for (uint32_t i = 0; i < n; i++) out[i] = fl_strdup(names[i]);
  return out;
}

void fl_ml_raw_free(fl_ml_raw_t *raw) {
  if (raw == NULL) return;
  free_names(raw->num_names, raw->n_num);
  free_names(raw->cat_names, raw->n_cat);
  fl_free(raw->num);
  fl_free(raw->cat);
  if (raw->cat_vocab)
    for (uint32_t j = 0; j < raw->n_cat; j++) vocab_free(&raw->cat_vocab[j]);
  fl_free(raw->cat_vocab);
  fl_free(raw->label);
  vocab_free(&raw->label_vocab);
  memset(raw, 0, sizeof *raw);
}

void fl_ml_raw_subset(const fl_ml_raw_t *raw, const uint32_t *idx, size_t n,
                      fl_ml_raw_t *out) {
  memset(out, 0, sizeof *out);
  out->n = n;
  out->n_num = raw->n_num;
  out->n_cat = raw->n_cat;
  out->num_names = dup_names(raw->num_names, raw->n_num);
  out->cat_names = dup_names(raw->cat_names, raw->n_cat);
  out->num = fl_calloc(n * raw->n_num + 1, sizeof(double));
  out->cat = fl_calloc(n * raw->n_cat + 1, sizeof(uint32_t));
  out->label = fl_calloc(n + 1, sizeof(uint32_t));
  out->cat_vocab = fl_calloc(raw->n_cat + 1, sizeof *out->cat_vocab);
  for (uint32_t j = 0; j < raw->n_cat; j++) vocab_copy(&out->cat_vocab[j], &raw->cat_vocab[j]);
  vocab_copy(&out->label_vocab, &raw->label_vocab);
  for (size_t i = 0; i < n; i++) {
    size_t r = idx[i];
    memcpy(out->num + i * raw->n_num, raw->num + r * raw->n_num, raw->n_num * sizeof(double));
    memcpy(out->cat + i * raw->n_cat, raw->cat + r * raw->n_cat, raw->n_cat * sizeof(uint32_t));
    out->label[i] = raw->label[r];
  }
}

/* ---- line reading -------------------------------------------------------- */

typedef struct reader_s {
  gzFile f;
  const char *path;
  size_t lineno;
  char *buf;
} reader_t;

/* Returns 1 with the line (no line end) in r->buf, 0 at EOF, -1 on error. */
static int read_line(reader_t *r, char *err, size_t errlen) {
  if (gzgets(r->f, r->buf, (int)MAX_LINE) == NULL) {
    int zerr = 0;
    const char *msg = gzerror(r->f, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END) {
      seterr(err, errlen, "%s:%zu: read error: %s", r->path, r->lineno + 1,
             zerr == Z_ERRNO ? strerror(errno) : msg);
      return -1;
    }
    return 0;
  }
  r->lineno++;
  size_t len = strlen(r->buf);
  if (len == 0 || r->buf[len - 1] != '\n') {
    /* A last line without '\n' may be the rest of a truncated stream. */
    int zerr = 0;
    const char *msg = gzerror(r->f, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END) {
      seterr(err, errlen, "%s:%zu: read error: %s", r->path, r->lineno,
             zerr == Z_ERRNO ? strerror(errno) : msg);
      return -1;
    }
  }
  if (len == MAX_LINE - 1 && r->buf[len - 1] != '\n' && !gzeof(r->f)) {
    seterr(err, errlen, "%s:%zu: line longer than %u bytes", r->path, r->lineno,
           MAX_LINE - 2);
    return -1;
  }
  if (r->lineno == 1 && len >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0) {
    memmove(r->buf, r->buf + 3, len - 2);
    len -= 3;
  }
  while (len > 0 && (r->buf[len - 1] == '\n' || r->buf[len - 1] == '\r'))
    r->buf[--len] = '\0';
  return 1;
}

static int is_blank(const char *s) {
  for (; *s; s++)
    if (*s != ' ' && *s != '\t') return 0;
  return 1;
}

static fl_status_t reader_open(reader_t *r, const char *path, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  r->path = path;
  r->f = gzopen(path, "rb");
  if (r->f == NULL) {
    seterr(err, errlen, "%s: cannot open: %s", path, errno ? strerror(errno) : "zlib error");
    return FL_EIO;
  }
  gzbuffer(r->f, 1u << 17);
  r->buf = fl_malloc(MAX_LINE);
  return FL_OK;
}

static void reader_close(reader_t *r) {
  if (r->f) gzclose(r->f);
  fl_free(r->buf);
  r->f = NULL;
  r->buf = NULL;
}

/* Splits line in place into fields. Returns the count, or -1 on a quoting
 * error or too many fields. */
static int split_fields(char *line, char sep, char **fields, unsigned max) {
  unsigned n = 0;
  char *p = line;
  for (;;) {
    if (n == max) return -1;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '"') {
      char *w = ++p, *start = p;
      for (;;) {
        if (*p == '\0') return -1;
        if (*p == '"') {
          if (p[1] == '"') {
            *w++ = '"';
            p += 2;
            continue;
          }
          p++;
          break;
        }
        *w++ = *p++;
      }
      *w = '\0';
      while (*p == ' ' || *p == '\t') p++;
      fields[n++] = start;
      if (*p == '\0') return (int)n;
      if (*p != sep) return -1;
      p++;
      continue;
    }
    char *start = p;
    while (*p && *p != sep) p++;
    char *e = p;
    while (e > start && (e[-1] == ' ' || e[-1] == '\t')) e--;
    int last = (*p == '\0');
    *e = '\0';
    fields[n++] = start;
    if (last) return (int)n;
    p++;
  }
}

static int parse_double(const char *s, double *out) {
  if (*s == '\0') return -1;
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

/* ---- column roles -------------------------------------------------------- */

/* Resolves "name" or "#N" to a column index; -1 when unknown. */
static long col_ref(const char *ref, char *const *names, unsigned ncol) {
  if (ref[0] == '#') {
    char *end = NULL;
    long v = strtol(ref + 1, &end, 10);
    if (end == ref + 1 || *end != '\0' || v < 0 || (unsigned long)v >= ncol) return -1;
    return v;
  }
  if (names == NULL) return -1;
  for (unsigned i = 0; i < ncol; i++)
    if (strcmp(names[i], ref) == 0) return (long)i;
  return -1;
}

/* Applies the roles in a comma list. Missing columns are an error unless
 * optional is set (the BoT-IoT schema has two column sets). */
static fl_status_t apply_list(const char *list, int role, uint8_t *roles,
                              char *const *names, unsigned ncol, int optional,
                              const char *path, char *err, size_t errlen) {
  if (list == NULL) return FL_OK;
  char *tmp = fl_strdup(list);
  fl_status_t rc = FL_OK;
  char *save = NULL;
  for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    long c = col_ref(tok, names, ncol);
    if (c < 0) {
      if (optional) continue;
      seterr(err, errlen, "%s: no column '%s'", path, tok);
      rc = FL_EINVAL;
      break;
    }
    roles[c] = (uint8_t)role;
  }
  fl_free(tmp);
  return rc;
}

typedef struct csv_ctx_s {
  int optional_lists; /* unknown categorical/ignore columns are skipped */
} csv_ctx_t;

static fl_status_t load_csv(const char *path, const fl_ml_csv_spec_t *spec,
                            const csv_ctx_t *cx, fl_ml_raw_t *out, char *err,
                            size_t errlen) {
  memset(out, 0, sizeof *out);
  if (path == NULL || spec == NULL || spec->label == NULL) {
    seterr(err, errlen, "%s: bad CSV spec", path ? path : "(null)");
    return FL_EINVAL;
  }
  reader_t r;
  fl_status_t rc = reader_open(&r, path, err, errlen);
  if (rc < 0) return rc;
  char sep = spec->sep ? spec->sep : ',';
  char **fields = fl_malloc(MAX_COLS * sizeof *fields);
  char **names = NULL;
  uint8_t *roles = NULL;
  unsigned ncol = 0;
  size_t cap = 0;
  int got;
  fl_ml_raw_t raw = {0};

  for (uint32_t i = 0; i < spec->skip_lines; i++) {
    got = read_line(&r, err, errlen);
    if (got < 0) { rc = FL_EIO; goto fail; }
    if (got == 0) break;
  }
  if (spec->header) {
    do got = read_line(&r, err, errlen);
    while (got == 1 && is_blank(r.buf));
    if (got < 0) { rc = FL_EIO; goto fail; }
    if (got == 0) {
      seterr(err, errlen, "%s:%zu: no header line", path, r.lineno);
      rc = FL_EMALFORMED;
      goto fail;
    }
    int nf = split_fields(r.buf, sep, fields, MAX_COLS);
    if (nf < 2) {
      seterr(err, errlen, "%s:%zu: bad header line", path, r.lineno);
      rc = FL_EMALFORMED;
      goto fail;
    }
    ncol = (unsigned)nf;
    names = fl_calloc(ncol, sizeof *names);
    for (unsigned i = 0; i < ncol; i++) names[i] = fl_strdup(fields[i]);
  } else if (spec->names != NULL) {
    ncol = spec->n_names;
    names = fl_calloc(ncol ? ncol : 1, sizeof *names);
    for (unsigned i = 0; i < ncol; i++) names[i] = fl_strdup(spec->names[i]);
  }

  for (;;) {
    got = read_line(&r, err, errlen);
    if (got < 0) { rc = FL_EIO; goto fail; }
    if (got == 0) break;
    if (is_blank(r.buf)) continue;
    int nf = split_fields(r.buf, sep, fields, MAX_COLS);
    if (nf < 0) {
      seterr(err, errlen, "%s:%zu: bad quoting or more than %u fields", path,
             r.lineno, MAX_COLS);
      rc = FL_EMALFORMED;
      goto fail;
    }
    if (roles == NULL) {
      /* First data row: fix the column count and the roles. */
      if (names == NULL) {
        ncol = (unsigned)nf;
        names = fl_calloc(ncol, sizeof *names);
        for (unsigned i = 0; i < ncol; i++) names[i] = fl_sprintf("col%u", i);
      }
      roles = fl_calloc(ncol ? ncol : 1, 1);
      long lc = col_ref(spec->label, names, ncol);
      if (lc < 0) {
        seterr(err, errlen, "%s: no label column '%s'", path, spec->label);
        rc = FL_EINVAL;
        goto fail;
      }
      int opt = cx ? cx->optional_lists : 0;
      if ((rc = apply_list(spec->categorical, ROLE_CAT, roles, names, ncol, opt,
                           path, err, errlen)) < 0 ||
          (rc = apply_list(spec->ignore, ROLE_IGNORE, roles, names, ncol, opt,
                           path, err, errlen)) < 0)
        goto fail;
      roles[lc] = ROLE_LABEL;
      for (unsigned i = 0; i < ncol; i++) {
        if (roles[i] == ROLE_NUM) raw.n_num++;
        if (roles[i] == ROLE_CAT) raw.n_cat++;
      }
      raw.num_names = fl_calloc(raw.n_num + 1, sizeof(char *));
      raw.cat_names = fl_calloc(raw.n_cat + 1, sizeof(char *));
      raw.cat_vocab = fl_calloc(raw.n_cat + 1, sizeof *raw.cat_vocab);
      uint32_t a = 0, b = 0;
      for (unsigned i = 0; i < ncol; i++) {
        if (roles[i] == ROLE_NUM) raw.num_names[a++] = fl_strdup(names[i]);
        if (roles[i] == ROLE_CAT) raw.cat_names[b++] = fl_strdup(names[i]);
      }
    }
    if ((unsigned)nf != ncol) {
      seterr(err, errlen, "%s:%zu: expected %u fields, got %d", path, r.lineno,
             ncol, nf);
      rc = FL_EMALFORMED;
      goto fail;
    }
    if (raw.n == cap) {
      cap = cap ? 2 * cap : 1024;
      raw.num = fl_reallocarray(raw.num, cap * (raw.n_num ? raw.n_num : 1), sizeof(double));
      raw.cat = fl_reallocarray(raw.cat, cap * (raw.n_cat ? raw.n_cat : 1), sizeof(uint32_t));
      raw.label = fl_reallocarray(raw.label, cap, sizeof(uint32_t));
    }
    double *num = raw.num + raw.n * raw.n_num;
    uint32_t *cat = raw.cat + raw.n * raw.n_cat;
    uint32_t a = 0, b = 0;
    for (unsigned i = 0; i < ncol; i++) {
      switch (roles[i]) {
      case ROLE_NUM:
        if (parse_double(fields[i], &num[a]) < 0) {
          seterr(err, errlen, "%s:%zu: column '%s' (%u): '%.40s' is not a finite number",
                 path, r.lineno, names[i], i + 1, fields[i]);
          rc = FL_EMALFORMED;
          goto fail;
        }
        a++;
        break;
      case ROLE_CAT:
        if (fields[i][0] == '\0') {
          seterr(err, errlen, "%s:%zu: column '%s' (%u) is empty", path, r.lineno,
                 names[i], i + 1);
          rc = FL_EMALFORMED;
          goto fail;
        }
        cat[b] = vocab_intern(&raw.cat_vocab[b], fields[i]);
        b++;
        break;
      case ROLE_LABEL:
        if (fields[i][0] == '\0') {
          seterr(err, errlen, "%s:%zu: empty label", path, r.lineno);
          rc = FL_EMALFORMED;
          goto fail;
        }
        raw.label[raw.n] = vocab_intern(&raw.label_vocab, fields[i]);
        break;
      default:
        break;
      }
    }
    raw.n++;
  }
  if (raw.n == 0) {
    seterr(err, errlen, "%s:%zu: no data rows", path, r.lineno);
    rc = FL_EMALFORMED;
    goto fail;
  }
  free_names(names, ncol);
  fl_free(roles);
  fl_free(fields);
  reader_close(&r);
  *out = raw;
  return FL_OK;
fail:
  free_names(names, ncol);
  fl_free(roles);
  fl_free(fields);
  reader_close(&r);
  fl_ml_raw_free(&raw);
  return rc;
}

fl_status_t fl_ml_raw_load_csv(const char *path, const fl_ml_csv_spec_t *spec,
                               fl_ml_raw_t *out, char *err, size_t errlen) {
  return load_csv(path, spec, NULL, out, err, errlen);
}

fl_status_t fl_ml_raw_load_libsvm(const char *path, uint32_t max_features,
                                  fl_ml_raw_t *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (max_features == 0 || max_features > MAX_COLS) {
    seterr(err, errlen, "%s: max_features must be 1..%u", path, MAX_COLS);
    return FL_EINVAL;
  }
  reader_t r;
  fl_status_t rc = reader_open(&r, path, err, errlen);
  if (rc < 0) return rc;
  fl_ml_raw_t raw = {0};
  size_t cap = 0;
  uint32_t used = 0;
  double *dense = NULL;
  int got;
  while ((got = read_line(&r, err, errlen)) == 1) {
    if (is_blank(r.buf)) continue;
    if (raw.n == cap) {
      cap = cap ? 2 * cap : 1024;
      dense = fl_reallocarray(dense, cap * max_features, sizeof(double));
      raw.label = fl_reallocarray(raw.label, cap, sizeof(uint32_t));
    }
    double *row = dense + raw.n * max_features;
    memset(row, 0, max_features * sizeof(double));
    char *save = NULL;
    char *tok = strtok_r(r.buf, " \t", &save);
    if (tok == NULL) continue;
    double lv;
    if (parse_double(tok, &lv) < 0) {
      seterr(err, errlen, "%s:%zu: label '%.40s' is not a number", path, r.lineno, tok);
      rc = FL_EMALFORMED;
      goto fail;
    }
    raw.label[raw.n] = vocab_intern(&raw.label_vocab, tok);
    long prev = 0;
    while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
      char *colon = strchr(tok, ':');
      char *end = NULL;
      long idx = colon ? strtol(tok, &end, 10) : -1;
      double v;
      if (colon == NULL || end != colon || idx <= prev || idx > (long)max_features ||
          parse_double(colon + 1, &v) < 0) {
        seterr(err, errlen, "%s:%zu: bad feature '%.40s' (want idx:value, idx "
               "increasing, 1..%u)", path, r.lineno, tok, max_features);
        rc = FL_EMALFORMED;
        goto fail;
      }
      row[idx - 1] = v;
      prev = idx;
      if ((uint32_t)idx > used) used = (uint32_t)idx;
    }
    raw.n++;
  }
  if (got < 0) { rc = FL_EIO; goto fail; }
  if (raw.n == 0 || used == 0) {
    seterr(err, errlen, "%s:%zu: no data rows", path, r.lineno);
    rc = FL_EMALFORMED;
    goto fail;
  }
  raw.n_num = used;
  raw.num = fl_malloc(raw.n * used * sizeof(double));
  for (size_t i = 0; i < raw.n; i++)
    memcpy(raw.num + i * used, dense + i * max_features, used * sizeof(double));
  raw.num_names = fl_calloc(used, sizeof(char *));
  for (uint32_t j = 0; j < used; j++) raw.num_names[j] = fl_sprintf("f%u", j + 1);
  raw.cat_names = fl_calloc(1, sizeof(char *));
  raw.cat_vocab = fl_calloc(1, sizeof *raw.cat_vocab);
  raw.cat = fl_calloc(1, sizeof(uint32_t));
  fl_free(dense);
  reader_close(&r);
  *out = raw;
  return FL_OK;
fail:
  fl_free(dense);
  reader_close(&r);
  fl_ml_raw_free(&raw);
  return rc;
}

/* ---- dataset-specific schemas ------------------------------------------- */

static const char *const nsl_names[43] = {
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes",
    "land", "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in",
    "num_compromised", "root_shell", "su_attempted", "num_root",
    "num_file_creations", "num_shells", "num_access_files", "num_outbound_cmds",
    "is_host_login", "is_guest_login", "count", "srv_count", "serror_rate",
    "srv_serror_rate", "rerror_rate", "srv_rerror_rate", "same_srv_rate",
    "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate",
    "dst_host_serror_rate", "dst_host_srv_serror_rate", "dst_host_rerror_rate",
    "dst_host_srv_rerror_rate", "attack", "difficulty"};

fl_status_t fl_ml_load_nsl_kdd(const char *path, fl_ml_raw_t *out, char *err,
                               size_t errlen) {
  fl_ml_csv_spec_t spec = {.names = nsl_names, .n_names = 43, .label = "attack",
                           .categorical = "protocol_type,service,flag",
                           .ignore = "difficulty"};
  return fl_ml_raw_load_csv(path, &spec, out, err, errlen);
}

const char *const fl_ml_nsl_kdd_classes5[5] = {"normal", "DoS", "Probe", "R2L", "U2R"};
const char *const fl_ml_binary_classes[2] = {"normal", "attack"};

static const struct {
  const char *name;
  int8_t cat;
} nsl_map[] = {
    {"normal", 0},
    /* The 23 training names (Attack_Types.csv). */
    {"back", 1}, {"land", 1}, {"neptune", 1}, {"pod", 1}, {"smurf", 1},
    {"teardrop", 1}, {"ipsweep", 2}, {"nmap", 2}, {"portsweep", 2},
    {"satan", 2}, {"ftp_write", 3}, {"guess_passwd", 3}, {"imap", 3},
    {"multihop", 3}, {"phf", 3}, {"spy", 3}, {"warezclient", 3},
    {"warezmaster", 3}, {"buffer_overflow", 4}, {"loadmodule", 4},
    {"perl", 4}, {"rootkit", 4},
    /* The 17 test-only names, mapped by hand (header comment). */
    {"apache2", 1}, {"mailbomb", 1}, {"processtable", 1}, {"udpstorm", 1},
    {"mscan", 2}, {"saint", 2}, {"httptunnel", 3}, {"named", 3},
    {"sendmail", 3}, {"snmpgetattack", 3}, {"snmpguess", 3}, {"worm", 3},
    {"xlock", 3}, {"xsnoop", 3}, {"ps", 4}, {"sqlattack", 4}, {"xterm", 4},
};

int32_t fl_ml_nsl_kdd_category(const char *attack) {
  for (size_t i = 0; i < sizeof nsl_map / sizeof nsl_map[0]; i++)
    if (strcmp(nsl_map[i].name, attack) == 0) return nsl_map[i].cat;
  return -1;
}

int32_t fl_ml_nsl_kdd_label_map(const char *label, const void *ctx) {
  int classes = ctx ? *(const int *)ctx : 2;
  int32_t c = fl_ml_nsl_kdd_category(label);
  if (c < 0) return -1;
  return classes == 5 ? c : (c == 0 ? 0 : 1);
}

fl_status_t fl_ml_load_unsw_nb15(const char *path, bool multiclass,
                                 fl_ml_raw_t *out, char *err, size_t errlen) {
  fl_ml_csv_spec_t spec = {.header = true,
                           .label = multiclass ? "attack_cat" : "label",
                           .categorical = "proto,service,state",
                           .ignore = multiclass ? "id,label" : "id,attack_cat"};
  return fl_ml_raw_load_csv(path, &spec, out, err, errlen);
}

fl_status_t fl_ml_load_botiot(const char *path, bool multiclass,
                              fl_ml_raw_t *out, char *err, size_t errlen) {
  fl_ml_csv_spec_t spec = {
      .header = true,
      .label = multiclass ? "category" : "attack",
      .categorical = "proto,flgs,state",
      .ignore = multiclass
                    ? "pkSeqID,saddr,daddr,sport,dport,stime,ltime,smac,dmac,"
                      "soui,doui,sco,dco,attack,subcategory"
                    : "pkSeqID,saddr,daddr,sport,dport,stime,ltime,smac,dmac,"
                      "soui,doui,sco,dco,category,subcategory"};
  csv_ctx_t cx = {.optional_lists = 1};
  fl_status_t rc = load_csv(path, &spec, &cx, out, err, errlen);
  return rc;
}

fl_status_t fl_ml_load_iris(const char *path, fl_ml_raw_t *out, char *err,
                            size_t errlen) {
  static const char *const names[5] = {"sepal_length", "sepal_width",
                                       "petal_length", "petal_width", "class"};
  fl_ml_csv_spec_t spec = {.skip_lines = 1, .names = names, .n_names = 5,
                           .label = "class"};
  return fl_ml_raw_load_csv(path, &spec, out, err, errlen);
}

/* ---- encoder ------------------------------------------------------------- */

struct fl_ml_encoder_s {
  uint32_t n_num, n_cat, dim;
  char **num_names, **cat_names;
  uint8_t *logcol;
  double *shift, *mul; /* x' = (f(x) - shift) * mul */
  fl_ml_vocab_t *vocab; /* train values of each categorical column */
  uint32_t *cat_off;    /* first one-hot feature of column j */
  uint32_t n_classes;
  char **class_names;
  fl_ml_label_map_fn map;
  const void *map_ctx;
  fl_ml_scale_t scale;
  double clip;
};

void fl_ml_encoder_free(fl_ml_encoder_t *e) {
  if (e == NULL) return;
  free_names(e->num_names, e->n_num);
  free_names(e->cat_names, e->n_cat);
  fl_free(e->logcol);
  fl_free(e->shift);
  fl_free(e->mul);
  if (e->vocab)
    for (uint32_t j = 0; j < e->n_cat; j++) vocab_free(&e->vocab[j]);
  fl_free(e->vocab);
  fl_free(e->cat_off);
  free_names(e->class_names, e->n_classes);
  fl_free(e);
}

uint32_t fl_ml_encoder_dim(const fl_ml_encoder_t *e) { return e->dim; }
uint32_t fl_ml_encoder_n_classes(const fl_ml_encoder_t *e) { return e->n_classes; }
const char *fl_ml_encoder_class_name(const fl_ml_encoder_t *e, uint32_t c) {
  return c < e->n_classes ? e->class_names[c] : "?";
}

static int cmp_label(const void *a, const void *b) {
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  double dx, dy;
  if (parse_double(x, &dx) == 0 && parse_double(y, &dy) == 0 && dx != dy)
    return dx < dy ? -1 : 1;
  return strcmp(x, y);
}

/* Class of raw label index li, or -1. */
static int32_t enc_class(const fl_ml_encoder_t *e, const char *label) {
  if (e->map) {
    int32_t c = e->map(label, e->map_ctx);
    return c >= 0 && (uint32_t)c < e->n_classes ? c : -1;
  }
  for (uint32_t c = 0; c < e->n_classes; c++)
    if (strcmp(e->class_names[c], label) == 0) return (int32_t)c;
  return -1;
}

static double feat_in(const fl_ml_encoder_t *e, uint32_t j, double v) {
  if (e->logcol[j]) v = log1p(v > 0 ? v : 0);
  return v;
}

fl_status_t fl_ml_encoder_fit(const fl_ml_raw_t *train,
                              const fl_ml_encoder_opts_t *opts,
                              fl_ml_encoder_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (train == NULL || opts == NULL || train->n == 0) {
    seterr(err, errlen, "encoder: no training rows");
    return FL_EINVAL;
  }
  if (opts->label_map && (opts->class_names == NULL || opts->n_classes < 2)) {
    seterr(err, errlen, "encoder: label_map needs class_names");
    return FL_EINVAL;
  }
  fl_ml_encoder_t *e = fl_calloc(1, sizeof *e);
  size_t n = train->n;
  e->n_num = train->n_num;
  e->n_cat = train->n_cat;
  e->scale = opts->scale;
  e->clip = opts->clip;
  e->num_names = dup_names(train->num_names, train->n_num);
  e->cat_names = dup_names(train->cat_names, train->n_cat);
  e->logcol = fl_calloc(e->n_num + 1, 1);
  e->shift = fl_calloc(e->n_num + 1, sizeof(double));
  e->mul = fl_calloc(e->n_num + 1, sizeof(double));
  for (uint32_t j = 0; j < e->n_num; j++) {
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
      double v = train->num[i * e->n_num + j];
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    if (opts->log_threshold > 0 && mn >= 0 && mx > opts->log_threshold) e->logcol[j] = 1;
    /* Fit the scaler on the (possibly logged) training values. */
    double s = 0, s2 = 0;
    mn = INFINITY;
    mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
      double v = feat_in(e, j, train->num[i * e->n_num + j]);
      s += v;
      s2 += v * v;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    if (opts->scale == FL_ML_SCALE_ZSCORE) {
      double mean = s / (double)n;
      double var = s2 / (double)n - mean * mean;
      double sd = var > 0 ? sqrt(var) : 0;
      e->shift[j] = mean;
      e->mul[j] = sd > 1e-12 ? 1.0 / sd : 0.0;
    } else {
      e->shift[j] = mn;
      e->mul[j] = mx - mn > 1e-12 ? 1.0 / (mx - mn) : 0.0;
    }
  }
  e->vocab = fl_calloc(e->n_cat + 1, sizeof *e->vocab);
  e->cat_off = fl_calloc(e->n_cat + 1, sizeof(uint32_t));
  e->dim = e->n_num;
  for (uint32_t j = 0; j < e->n_cat; j++) {
    const fl_ml_vocab_t *rv = &train->cat_vocab[j];
    uint8_t *seen = fl_calloc(rv->n + 1, 1);
    for (size_t i = 0; i < n; i++) seen[train->cat[i * e->n_cat + j]] = 1;
    for (uint32_t k = 0; k < rv->n; k++)
      if (seen[k]) vocab_intern(&e->vocab[j], rv->s[k]);
    fl_free(seen);
    e->cat_off[j] = e->dim;
    e->dim += e->vocab[j].n;
  }
  /* Classes. */
  if (opts->label_map) {
    e->map = opts->label_map;
    e->map_ctx = opts->label_ctx;
    e->n_classes = opts->n_classes;
    e->class_names = fl_calloc(e->n_classes, sizeof(char *));
    for (uint32_t c = 0; c < e->n_classes; c++) e->class_names[c] = fl_strdup(opts->class_names[c]);
  } else {
    const fl_ml_vocab_t *lv = &train->label_vocab;
    uint8_t *seen = fl_calloc(lv->n + 1, 1);
    for (size_t i = 0; i < n; i++) seen[train->label[i]] = 1;
    const char **list = fl_calloc(lv->n + 1, sizeof(char *));
    uint32_t k = 0;
    for (uint32_t i = 0; i < lv->n; i++)
      if (seen[i]) list[k++] = lv->s[i];
    qsort(list, k, sizeof list[0], cmp_label);
    e->n_classes = k;
    e->class_names = fl_calloc(k + 1, sizeof(char *));
    for (uint32_t c = 0; c < k; c++) e->class_names[c] = fl_strdup(list[c]);
    fl_free(list);
    fl_free(seen);
    if (k < 2) {
      seterr(err, errlen, "encoder: training data has %u class(es), need 2+", k);
      fl_ml_encoder_free(e);
      return FL_EINVAL;
    }
  }
  /* Every training label must map. */
  for (uint32_t i = 0; i < train->label_vocab.n; i++) {
    if (enc_class(e, train->label_vocab.s[i]) < 0) {
      int present = 0;
      for (size_t r = 0; r < n && !present; r++) present = train->label[r] == i;
      if (!present) continue;
      seterr(err, errlen, "encoder: label '%s' maps to no class", train->label_vocab.s[i]);
      fl_ml_encoder_free(e);
      return FL_EINVAL;
    }
  }
  *out = e;
  return FL_OK;
}

fl_status_t fl_ml_encoder_apply(const fl_ml_encoder_t *e, const fl_ml_raw_t *raw,
                                fl_ml_dataset_t *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (raw->n_num != e->n_num || raw->n_cat != e->n_cat) {
    seterr(err, errlen, "encoder: table has %u numeric/%u categorical columns, "
           "encoder %u/%u", raw->n_num, raw->n_cat, e->n_num, e->n_cat);
    return FL_EINVAL;
  }
  for (uint32_t j = 0; j < e->n_num; j++)
    if (strcmp(raw->num_names[j], e->num_names[j]) != 0) {
      seterr(err, errlen, "encoder: column %u is '%s', encoder expects '%s'", j,
             raw->num_names[j], e->num_names[j]);
      return FL_EINVAL;
    }
  /* Per-distinct-value maps, computed once. */
  int32_t *lmap = fl_malloc((raw->label_vocab.n + 1) * sizeof(int32_t));
  for (uint32_t i = 0; i < raw->label_vocab.n; i++) lmap[i] = enc_class(e, raw->label_vocab.s[i]);
  int32_t **cmap = fl_calloc(e->n_cat + 1, sizeof(int32_t *));
  for (uint32_t j = 0; j < e->n_cat; j++) {
    cmap[j] = fl_malloc((raw->cat_vocab[j].n + 1) * sizeof(int32_t));
    for (uint32_t k = 0; k < raw->cat_vocab[j].n; k++)
      cmap[j][k] = vocab_find(&e->vocab[j], raw->cat_vocab[j].s[k]);
  }
  fl_ml_dataset_t ds = {.n = raw->n, .d = e->dim, .n_classes = e->n_classes};
  ds.x = fl_calloc(raw->n * e->dim + 1, sizeof(float));
  ds.y = fl_malloc((raw->n + 1) * sizeof(int32_t));
  fl_status_t rc = FL_OK;
  double lo = e->scale == FL_ML_SCALE_MINMAX ? -e->clip : -e->clip;
  double hi = e->scale == FL_ML_SCALE_MINMAX ? 1.0 + e->clip : e->clip;
  for (size_t i = 0; i < raw->n; i++) {
    int32_t c = lmap[raw->label[i]];
    if (c < 0) {
      seterr(err, errlen, "encoder: row %zu: label '%s' is not a known class", i + 1,
             raw->label_vocab.s[raw->label[i]]);
      rc = FL_EINVAL;
      break;
    }
    ds.y[i] = c;
    float *x = ds.x + i * e->dim;
    const double *num = raw->num + i * e->n_num;
    for (uint32_t j = 0; j < e->n_num; j++) {
      double v = (feat_in(e, j, num[j]) - e->shift[j]) * e->mul[j];
      if (e->clip > 0) v = v < lo ? lo : (v > hi ? hi : v);
      x[j] = (float)v;
    }
    const uint32_t *cat = raw->cat + i * e->n_cat;
    for (uint32_t j = 0; j < e->n_cat; j++) {
      int32_t k = cmap[j][cat[j]];
      if (k >= 0) x[e->cat_off[j] + (uint32_t)k] = 1.0f;
    }
  }
  for (uint32_t j = 0; j < e->n_cat; j++) fl_free(cmap[j]);
  fl_free(cmap);
  fl_free(lmap);
  if (rc < 0) {
    fl_ml_dataset_free(&ds);
    return rc;
  }
  *out = ds;
  return FL_OK;
}

void fl_ml_dataset_subset(const fl_ml_dataset_t *ds, const uint32_t *idx,
                          size_t n, fl_ml_dataset_t *out) {
  out->n = n;
  out->d = ds->d;
  out->n_classes = ds->n_classes;
  out->x = fl_malloc((n * ds->d + 1) * sizeof(float));
  out->y = fl_malloc((n + 1) * sizeof(int32_t));
  for (size_t i = 0; i < n; i++) {
    memcpy(out->x + i * ds->d, ds->x + (size_t)idx[i] * ds->d, ds->d * sizeof(float));
    out->y[i] = ds->y[idx[i]];
  }
}

void fl_ml_dataset_free(fl_ml_dataset_t *ds) {
  if (ds == NULL) return;
  fl_free(ds->x);
  fl_free(ds->y);
  memset(ds, 0, sizeof *ds);
}

/* ---- splitting and partitioning ----------------------------------------- */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

fl_status_t fl_ml_split_stratified(const uint32_t *labels, size_t n,
                                   double test_frac, uint64_t seed,
                                   uint32_t **train_idx, size_t *n_train,
                                   uint32_t **test_idx, size_t *n_test) {
  *train_idx = *test_idx = NULL;
  *n_train = *n_test = 0;
  if (!(test_frac > 0 && test_frac < 1) || n == 0 || n > UINT32_MAX) return FL_EINVAL;
  uint32_t maxl = 0;
  for (size_t i = 0; i < n; i++)
    if (labels[i] > maxl) maxl = labels[i];
  size_t *cnt = fl_calloc((size_t)maxl + 2, sizeof(size_t));
  for (size_t i = 0; i < n; i++) cnt[labels[i] + 1]++;
  for (uint32_t c = 0; c <= maxl; c++) cnt[c + 1] += cnt[c];
  uint32_t *byc = fl_malloc(n * sizeof(uint32_t));
  size_t *pos = fl_memdup(cnt, ((size_t)maxl + 2) * sizeof(size_t));
  for (size_t i = 0; i < n; i++) byc[pos[labels[i]]++] = (uint32_t)i;
  fl_rng_t rng;
  fl_rng_seed(&rng, seed);
  uint32_t *tr = fl_malloc(n * sizeof(uint32_t)), *te = fl_malloc(n * sizeof(uint32_t));
  size_t ntr = 0, nte = 0;
  for (uint32_t c = 0; c <= maxl; c++) {
    size_t a = cnt[c], m = cnt[c + 1] - cnt[c];
    fl_rng_shuffle_u32(&rng, byc + a, m);
    size_t k = (size_t)floor(test_frac * (double)m + 0.5);
    if (k >= m && m > 1) k = m - 1;
    for (size_t i = 0; i < m; i++) {
      if (i < k) te[nte++] = byc[a + i];
      else tr[ntr++] = byc[a + i];
    }
  }
  qsort(tr, ntr, sizeof *tr, cmp_u32);
  qsort(te, nte, sizeof *te, cmp_u32);
  fl_free(cnt);
  fl_free(pos);
  fl_free(byc);
  *train_idx = tr;
  *test_idx = te;
  *n_train = ntr;
  *n_test = nte;
  return FL_OK;
}

fl_status_t fl_ml_partition_iid(size_t n, uint32_t parts, uint64_t seed,
                                fl_ml_partition_t *out) {
  memset(out, 0, sizeof *out);
  if (parts == 0 || parts > n || n > UINT32_MAX) return FL_EINVAL;
  fl_rng_t rng;
  fl_rng_seed(&rng, seed);
  out->n_parts = parts;
  out->idx = fl_malloc(n * sizeof(uint32_t));
  out->start = fl_malloc((parts + 1) * sizeof(size_t));
  for (size_t i = 0; i < n; i++) out->idx[i] = (uint32_t)i;
  fl_rng_shuffle_u32(&rng, out->idx, n);
  for (uint32_t k = 0; k <= parts; k++) out->start[k] = n * k / parts;
  for (uint32_t k = 0; k < parts; k++)
    qsort(out->idx + out->start[k], out->start[k + 1] - out->start[k], sizeof(uint32_t), cmp_u32);
  return FL_OK;
}

fl_status_t fl_ml_partition_dirichlet(const int32_t *y, size_t n,
                                      uint32_t n_classes, uint32_t parts,
                                      double alpha, size_t min_size,
                                      uint64_t seed, fl_ml_partition_t *out) {
  memset(out, 0, sizeof *out);
  if (parts == 0 || parts > n || !(alpha > 0) || n_classes == 0 || n > UINT32_MAX)
    return FL_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (y[i] < 0 || (uint32_t)y[i] >= n_classes) return FL_EINVAL;
  fl_rng_t rng;
  fl_rng_seed(&rng, seed);
  size_t *ccnt = fl_calloc(n_classes + 1, sizeof(size_t));
  for (size_t i = 0; i < n; i++) ccnt[y[i] + 1]++;
  for (uint32_t c = 0; c < n_classes; c++) ccnt[c + 1] += ccnt[c];
  uint32_t *byc = fl_malloc(n * sizeof(uint32_t));
  size_t *pos = fl_memdup(ccnt, (n_classes + 1) * sizeof(size_t));
  for (size_t i = 0; i < n; i++) byc[pos[y[i]]++] = (uint32_t)i;
  uint32_t *owner = fl_malloc(n * sizeof(uint32_t));
  size_t *sizes = fl_calloc(parts, sizeof(size_t));
  double *p = fl_malloc(parts * sizeof(double));
  for (int attempt = 0; attempt < 100; attempt++) {
    memset(sizes, 0, parts * sizeof(size_t));
    for (uint32_t c = 0; c < n_classes; c++) {
      size_t a = ccnt[c], m = ccnt[c + 1] - ccnt[c];
      if (m == 0) continue;
      fl_rng_shuffle_u32(&rng, byc + a, m);
      double s = 0;
      for (uint32_t k = 0; k < parts; k++) s += (p[k] = fl_rng_gamma(&rng, alpha));
      if (!(s > 0)) {
        for (uint32_t k = 0; k < parts; k++) p[k] = 1.0;
        s = parts;
      }
      double cum = 0;
      size_t prev = 0;
      for (uint32_t k = 0; k < parts; k++) {
        cum += p[k];
        size_t cut = k + 1 == parts ? m : (size_t)floor(cum / s * (double)m + 0.5);
        if (cut > m) cut = m;
        if (cut < prev) cut = prev;
        for (size_t i = prev; i < cut; i++) owner[byc[a + i]] = k;
        sizes[k] += cut - prev;
        prev = cut;
      }
    }
    size_t mn = SIZE_MAX;
    for (uint32_t k = 0; k < parts; k++)
      if (sizes[k] < mn) mn = sizes[k];
    if (mn >= min_size && mn > 0) break;
  }
  out->n_parts = parts;
  out->start = fl_calloc(parts + 1, sizeof(size_t));
  out->idx = fl_malloc(n * sizeof(uint32_t));
  for (size_t i = 0; i < n; i++) out->start[owner[i] + 1]++;
  for (uint32_t k = 0; k < parts; k++) out->start[k + 1] += out->start[k];
  size_t *fill = fl_memdup(out->start, (parts + 1) * sizeof(size_t));
  for (size_t i = 0; i < n; i++) out->idx[fill[owner[i]]++] = (uint32_t)i;
  fl_free(fill);
  fl_free(p);
  fl_free(sizes);
  fl_free(owner);
  fl_free(pos);
  fl_free(byc);
  fl_free(ccnt);
  return FL_OK;
}

void fl_ml_partition_free(fl_ml_partition_t *p) {
  if (p == NULL) return;
  fl_free(p->start);
  fl_free(p->idx);
  memset(p, 0, sizeof *p);
}
