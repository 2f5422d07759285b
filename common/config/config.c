/* SPDX-License-Identifier: Apache-2.0
 *
 * config.c: libyaml document -> immutable node tree, and the typed getters.
 *
 * The document API (yaml_parser_load) resolves aliases to shared node
 * indices, which can form cycles (&a [*a]) or explode (billion laughs); the
 * copy into our tree is bounded by FL_CONFIG_MAX_DEPTH and
 * FL_CONFIG_MAX_NODES, so either gives an error, not a hang.
 *
 * Plain scalars "", "~", "null", "Null" and "NULL" are YAML nulls and count
 * as absent for the getters, so `port:` with no value takes the default.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/config/config.h"

struct fl_config_node_s {
  fl_config_kind_t kind;
  int line;
  bool is_null;
  char *path;
  char *scalar;
  size_t n;
  char **keys;              /* maps only */
  fl_config_node_t **kids;  /* map values / sequence elements */
};

/* Values read from the environment, copied so that the pointers the string
 * getter hands out stay valid while cfg lives. */
typedef struct env_copy_s {
  struct env_copy_s *next;
  char *value;
} env_copy_t;

struct fl_config_s {
  char *file;
  char *prefix; /* NULL: overrides disabled */
  fl_config_node_t *root;
  pthread_mutex_t mu; /* guards env */
  env_copy_t *env;
};

static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char **err, const char *fmt, ...) {
  if (err == NULL) return;
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = fl_malloc((size_t)(n < 0 ? 0 : n) + 1);
  vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap2);
  va_end(ap2);
  *err = s;
}

static void node_free(fl_config_node_t *n) {
  if (n == NULL) return;
  for (size_t i = 0; i < n->n; i++) {
    if (n->keys != NULL) fl_free(n->keys[i]);
    node_free(n->kids[i]);
  }
  fl_free(n->keys);
  fl_free(n->kids);
  fl_free(n->path);
  fl_free(n->scalar);
  fl_free(n);
}

void fl_config_free(fl_config_t *cfg) {
  if (cfg == NULL) return;
  node_free(cfg->root);
  for (env_copy_t *e = cfg->env, *next; e != NULL; e = next) {
    next = e->next;
    fl_free(e->value);
    fl_free(e);
  }
  pthread_mutex_destroy(&cfg->mu);
  fl_free(cfg->file);
  fl_free(cfg->prefix);
  fl_free(cfg);
}

/* ---- building the tree --------------------------------------------------- */

typedef struct build_s {
  yaml_document_t *doc;
  const char *file;
  size_t nodes;
  char **err;
} build_t;

static char *child_path(const char *parent, const char *part) {
  return parent[0] == '\0' ? fl_strdup(part) : fl_sprintf("%s.%s", parent, part);
}

static bool is_null_scalar(const yaml_node_t *y) {
  if (y->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const char *v = (const char *)y->data.scalar.value;
  size_t n = y->data.scalar.length;
  return n == 0 || (n == 1 && v[0] == '~') ||
         (n == 4 && (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0 ||
                     memcmp(v, "NULL", 4) == 0));
}

static fl_config_node_t *build(build_t *b, int idx, char *path, int depth) {
  yaml_node_t *y = yaml_document_get_node(b->doc, idx);
  if (y == NULL) {
    set_err(b->err, "%s: %s: dangling YAML node", b->file, path);
    fl_free(path);
    return NULL;
  }
  int line = (int)y->start_mark.line + 1;
  if (depth > FL_CONFIG_MAX_DEPTH) {
    set_err(b->err, "%s:%d: nested deeper than %d levels (a recursive alias?)", b->file, line,
            FL_CONFIG_MAX_DEPTH);
    fl_free(path);
    return NULL;
  }
  if (++b->nodes > FL_CONFIG_MAX_NODES) {
    set_err(b->err, "%s:%d: document too large: more than %d values after expanding aliases",
            b->file, line, FL_CONFIG_MAX_NODES);
    fl_free(path);
    return NULL;
  }
  fl_config_node_t *n = fl_calloc(1, sizeof *n);
  n->line = line;
  n->path = path;
  switch (y->type) {
  case YAML_SCALAR_NODE:
    n->kind = FL_CONFIG_SCALAR;
    if (memchr(y->data.scalar.value, '\0', y->data.scalar.length) != NULL) {
      set_err(b->err, "%s:%d: %s: NUL byte in value", b->file, line, path);
      goto fail;
    }
    n->scalar = fl_strndup((const char *)y->data.scalar.value, y->data.scalar.length);
    n->is_null = is_null_scalar(y);
    return n;
  case YAML_SEQUENCE_NODE: {
    n->kind = FL_CONFIG_SEQ;
    size_t cnt = (size_t)(y->data.sequence.items.top - y->data.sequence.items.start);
    n->kids = fl_calloc(cnt ? cnt : 1, sizeof *n->kids);
    for (size_t i = 0; i < cnt; i++) {
      char num[32];
      snprintf(num, sizeof num, "%zu", i);
      /* Re-fetch: the document's arrays do not move, but y may be stale
       * only if libyaml reallocated, which it does not after loading. */
      n->kids[i] = build(b, y->data.sequence.items.start[i], child_path(path, num), depth + 1);
      if (n->kids[i] == NULL) goto fail;
      n->n = i + 1;
    }
    return n;
  }
  case YAML_MAPPING_NODE: {
    n->kind = FL_CONFIG_MAP;
    size_t cnt = (size_t)(y->data.mapping.pairs.top - y->data.mapping.pairs.start);
    n->kids = fl_calloc(cnt ? cnt : 1, sizeof *n->kids);
    n->keys = fl_calloc(cnt ? cnt : 1, sizeof *n->keys);
    for (size_t i = 0; i < cnt; i++) {
      yaml_node_pair_t *p = &y->data.mapping.pairs.start[i];
      yaml_node_t *k = yaml_document_get_node(b->doc, p->key);
      if (k == NULL || k->type != YAML_SCALAR_NODE ||
          memchr(k->data.scalar.value, '\0', k->data.scalar.length) != NULL) {
        set_err(b->err, "%s:%d: %s: map keys must be plain strings", b->file,
                k ? (int)k->start_mark.line + 1 : line, path);
        goto fail;
      }
      char *key = fl_strndup((const char *)k->data.scalar.value, k->data.scalar.length);
      for (size_t j = 0; j < n->n; j++) {
        if (strcmp(n->keys[j], key) == 0) {
          set_err(b->err, "%s:%d: %s: duplicate key '%s'", b->file,
                  (int)k->start_mark.line + 1, path[0] ? path : "(top level)", key);
          fl_free(key);
          goto fail;
        }
      }
      fl_config_node_t *v = build(b, p->value, child_path(path, key), depth + 1);
      if (v == NULL) {
        fl_free(key);
        goto fail;
      }
      /* A block map or list starts on the line after its key; messages
       * should point at the key the user wrote. */
      if (v->kind != FL_CONFIG_SCALAR) v->line = (int)k->start_mark.line + 1;
      n->keys[n->n] = key;
      n->kids[n->n] = v;
      n->n++;
    }
    return n;
  }
  default:
    set_err(b->err, "%s:%d: %s: empty YAML node", b->file, line, path);
    goto fail;
  }
fail:
  node_free(n);
  return NULL;
}

static const char *error_kind(yaml_error_type_t t) {
  switch (t) {
  case YAML_READER_ERROR: return "invalid input";
  case YAML_SCANNER_ERROR: return "syntax error";
  case YAML_PARSER_ERROR: return "syntax error";
  case YAML_COMPOSER_ERROR: return "structure error";
  default: return "error";
  }
}

static fl_status_t parse_text(const char *name, const char *text, size_t len,
                              const char *env_prefix, fl_config_t **out, char **err) {
  if (err != NULL) *err = NULL;
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    set_err(err, "%s: cannot initialise the YAML parser", name);
    return FL_ECONFIG;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    const char *problem = parser.problem ? parser.problem : "unknown problem";
    if (parser.error == YAML_READER_ERROR) {
      set_err(err, "%s: %s: %s at byte %zu", name, error_kind(parser.error), problem,
              parser.problem_offset);
    } else if (parser.context != NULL) {
      set_err(err, "%s:%zu:%zu: %s (%s at line %zu)", name, parser.problem_mark.line + 1,
              parser.problem_mark.column + 1, problem, parser.context,
              parser.context_mark.line + 1);
    } else {
      set_err(err, "%s:%zu:%zu: %s", name, parser.problem_mark.line + 1,
              parser.problem_mark.column + 1, problem);
    }
    yaml_parser_delete(&parser);
    return FL_ECONFIG;
  }
  yaml_parser_delete(&parser);

  fl_config_node_t *root = NULL;
  yaml_node_t *yroot = yaml_document_get_root_node(&doc);
  if (yroot == NULL) { /* empty document */
    root = fl_calloc(1, sizeof *root);
    root->kind = FL_CONFIG_MAP;
    root->line = 1;
    root->path = fl_strdup("");
  } else {
    build_t b = {.doc = &doc, .file = name, .err = err};
    root = build(&b, 1, fl_strdup(""), 0);
    if (root == NULL) {
      yaml_document_delete(&doc);
      return FL_ECONFIG;
    }
    if (root->kind != FL_CONFIG_MAP) {
      set_err(err, "%s:%d: the top level must be a map of keys", name, root->line);
      node_free(root);
      yaml_document_delete(&doc);
      return FL_ECONFIG;
    }
  }
  yaml_document_delete(&doc);

  fl_config_t *cfg = fl_calloc(1, sizeof *cfg);
  cfg->file = fl_strdup(name);
  const char *prefix = env_prefix != NULL ? env_prefix : "FEDLEDGER";
  cfg->prefix = prefix[0] != '\0' ? fl_strdup(prefix) : NULL;
  cfg->root = root;
  pthread_mutex_init(&cfg->mu, NULL);
  *out = cfg;
  return FL_OK;
}

fl_status_t fl_config_parse(const char *name, const char *text, size_t len,
                            const char *env_prefix, fl_config_t **out, char **err) {
  return parse_text(name, text, len, env_prefix, out, err);
}

fl_status_t fl_config_load(const char *path, const char *env_prefix, fl_config_t **out,
                           char **err) {
  if (err != NULL) *err = NULL;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    int e = errno;
    set_err(err, "%s: cannot open: %s", path, strerror(e));
    return e == ENOENT ? FL_NOTFOUND : FL_EIO;
  }
  fl_sbuf_t b = {0};
  char chunk[8192];
  size_t n;
  fl_status_t rc = FL_OK;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (b.len + n > FL_CONFIG_MAX_FILE) {
      set_err(err, "%s: larger than %u bytes", path, FL_CONFIG_MAX_FILE);
      rc = FL_ECONFIG;
      break;
    }
    fl_sbuf_append(&b, chunk, n);
  }
  if (rc == FL_OK && ferror(f)) {
    set_err(err, "%s: read error", path);
    rc = FL_EIO;
  }
  fclose(f);
  if (rc == FL_OK) rc = parse_text(path, b.len ? (const char *)b.data : "", b.len, env_prefix,
                                   out, err);
  fl_sbuf_free(&b);
  return rc;
}

/* ---- navigation ---------------------------------------------------------- */

const char *fl_config_file(const fl_config_t *cfg) { return cfg->file; }
const fl_config_node_t *fl_config_root(const fl_config_t *cfg) { return cfg->root; }
fl_config_kind_t fl_config_node_kind(const fl_config_node_t *n) { return n->kind; }
int fl_config_node_line(const fl_config_node_t *n) { return n->line; }
const char *fl_config_node_path(const fl_config_node_t *n) { return n->path; }
const char *fl_config_node_scalar(const fl_config_node_t *n) {
  return n->kind == FL_CONFIG_SCALAR ? n->scalar : NULL;
}
size_t fl_config_node_count(const fl_config_node_t *n) { return n->n; }
const fl_config_node_t *fl_config_node_child(const fl_config_node_t *n, size_t i) {
  return i < n->n ? n->kids[i] : NULL;
}
const char *fl_config_node_key(const fl_config_node_t *n, size_t i) {
  return n->kind == FL_CONFIG_MAP && i < n->n ? n->keys[i] : NULL;
}

const fl_config_node_t *fl_config_find(const fl_config_t *cfg, const fl_config_node_t *base,
                                       const char *path) {
  const fl_config_node_t *n = base != NULL ? base : cfg->root;
  const char *p = path;
  while (n != NULL && *p != '\0') {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    const fl_config_node_t *next = NULL;
    if (n->kind == FL_CONFIG_MAP) {
      for (size_t i = 0; i < n->n; i++)
        if (strlen(n->keys[i]) == len && memcmp(n->keys[i], p, len) == 0) {
          next = n->kids[i];
          break;
        }
    } else if (n->kind == FL_CONFIG_SEQ && len > 0 && len < 10) {
      size_t idx = 0;
      bool ok = true;
      for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)p[i])) ok = false;
        else idx = idx * 10 + (size_t)(p[i] - '0');
      }
      if (ok && idx < n->n) next = n->kids[idx];
    }
    n = next;
    p = dot ? dot + 1 : p + len;
  }
  return n;
}

/* Does pattern (see fl_config_check_keys) match path exactly ("a.#.b"
 * against "a.3.b"), or, with a trailing ".*", any path below its prefix? */
static bool key_matches(const char *pat, const char *path) {
  while (*pat != '\0' && *path != '\0') {
    if (pat[0] == '*' && pat[1] == '\0') return true; /* "a.*": anything below a */
    if (pat[0] == '#' && (pat[1] == '.' || pat[1] == '\0')) {
      if (!isdigit((unsigned char)*path)) return false;
      while (isdigit((unsigned char)*path)) path++;
      pat++;
      continue;
    }
    if (*pat != *path) return false;
    pat++;
    path++;
  }
  return *pat == '\0' && *path == '\0';
}

/* Is path a prefix (at a dot) of some pattern, i.e. a map on the way to a
 * known key? */
static bool key_on_the_way(const char *const *known, const char *path) {
  for (const char *const *k = known; *k != NULL; k++) {
    /* compare path with the pattern's first components, '#' matching digits */
    const char *pat = *k, *p = path;
    bool ok = true;
    while (*p != '\0' && *pat != '\0') {
      if (pat[0] == '#' && (pat[1] == '.' || pat[1] == '\0')) {
        if (!isdigit((unsigned char)*p)) { ok = false; break; }
        while (isdigit((unsigned char)*p)) p++;
        pat++;
        continue;
      }
      if (pat[0] == '*') break; /* matched by key_matches already */
      if (*pat != *p) { ok = false; break; }
      pat++;
      p++;
    }
    if (ok && *p == '\0' && *pat == '.') return true;
  }
  return false;
}

static fl_status_t check_node(const fl_config_t *cfg, const fl_config_node_t *n,
                              const char *const *known, char **err) {
  for (size_t i = 0; i < n->n; i++) {
    const fl_config_node_t *c = n->kids[i];
    bool matched = false;
    for (const char *const *k = known; *k != NULL && !matched; k++)
      matched = key_matches(*k, c->path);
    if (matched) continue; /* the program reads all of it */
    if (n->kind == FL_CONFIG_MAP && !key_on_the_way(known, c->path)) {
      set_err(err, "%s:%d: unknown key '%s' (no such setting; check its spelling)", cfg->file,
              c->line, c->path);
      return FL_ECONFIG;
    }
    if (c->kind != FL_CONFIG_SCALAR) {
      fl_status_t rc = check_node(cfg, c, known, err);
      if (rc != FL_OK) return rc;
    }
  }
  return FL_OK;
}

fl_status_t fl_config_check_keys(const fl_config_t *cfg, const char *const *known, char **err) {
  if (cfg == NULL || known == NULL) return FL_EINVAL;
  return check_node(cfg, cfg->root, known, err);
}

char *fl_config_env_name(const fl_config_t *cfg, const char *full_path) {
  if (cfg->prefix == NULL) return NULL;
  char *s = fl_sprintf("%s_%s", cfg->prefix, full_path);
  for (char *c = s + strlen(cfg->prefix) + 1; *c; c++)
    *c = isalnum((unsigned char)*c) ? (char)toupper((unsigned char)*c) : '_';
  return s;
}

static char *full_path_of(const fl_config_t *cfg, const fl_config_node_t *base,
                          const char *path) {
  const char *bp = base != NULL ? base->path : cfg->root->path;
  if (bp[0] == '\0') return fl_strdup(path);
  if (path[0] == '\0') return fl_strdup(bp);
  return fl_sprintf("%s.%s", bp, path);
}

/* Where a scalar came from, for messages. */
typedef struct lookup_s {
  const char *value; /* NULL: absent */
  char *where;       /* owned: "FILE:LINE: path" or "env NAME" */
  char *full;        /* owned full path */
} lookup_t;

static void lookup_done(lookup_t *l) {
  fl_free(l->where);
  fl_free(l->full);
}

static const char *env_keep(const fl_config_t *cfg_c, const char *v) {
  /* The copy list is the one mutable part of a loaded config (see header).*/
  fl_config_t *cfg = (fl_config_t *)(uintptr_t)cfg_c;
  pthread_mutex_lock(&cfg->mu);
  /* Reuse an equal copy, so repeated reads do not grow the list. */
  for (env_copy_t *e = cfg->env; e != NULL; e = e->next) {
    if (strcmp(e->value, v) == 0) {
      pthread_mutex_unlock(&cfg->mu);
      return e->value;
    }
  }
  env_copy_t *e = fl_calloc(1, sizeof *e);
  e->value = fl_strdup(v);
  e->next = cfg->env;
  cfg->env = e;
  pthread_mutex_unlock(&cfg->mu);
  return e->value;
}

static fl_status_t find_scalar(const fl_config_t *cfg, const fl_config_node_t *base,
                               const char *path, lookup_t *l, char **err) {
  *l = (lookup_t){.full = full_path_of(cfg, base, path)};
  char *env = fl_config_env_name(cfg, l->full);
  const char *ev = env != NULL ? getenv(env) : NULL;
  if (ev != NULL) {
    l->value = env_keep(cfg, ev);
    l->where = fl_sprintf("env %s", env);
    fl_free(env);
    return FL_OK;
  }
  fl_free(env);
  const fl_config_node_t *n = fl_config_find(cfg, base, path);
  if (n == NULL || (n->kind == FL_CONFIG_SCALAR && n->is_null)) return FL_OK;
  l->where = fl_sprintf("%s:%d: %s", cfg->file, n->line, l->full);
  if (n->kind != FL_CONFIG_SCALAR) {
    set_err(err, "%s: expected a single value, got a %s", l->where,
            n->kind == FL_CONFIG_MAP ? "map" : "list");
    lookup_done(l);
    return FL_ECONFIG;
  }
  l->value = n->scalar;
  return FL_OK;
}

/* Absent key: default or "missing required key". Returns 1 when handled. */
#define HANDLE_ABSENT(l, def, out, err)                                        \
  do {                                                                         \
    if ((l).value == NULL) {                                                   \
      fl_status_t rc_ = FL_OK;                                                 \
      if ((def) != NULL) {                                                     \
        *(out) = *(def);                                                       \
      } else {                                                                 \
        set_err((err), "%s: missing required key %s", cfg->file, (l).full);    \
        rc_ = FL_ECONFIG;                                                      \
      }                                                                        \
      lookup_done(&(l));                                                       \
      return rc_;                                                              \
    }                                                                          \
  } while (0)

fl_status_t fl_config_get_string(const fl_config_t *cfg, const fl_config_node_t *base,
                                 const char *path, const char *def, const char **out,
                                 char **err) {
  if (err != NULL) *err = NULL;
  lookup_t l;
  fl_status_t rc = find_scalar(cfg, base, path, &l, err);
  if (rc != FL_OK) return rc;
  if (l.value == NULL) {
    if (def == NULL) {
      set_err(err, "%s: missing required key %s", cfg->file, l.full);
      lookup_done(&l);
      return FL_ECONFIG;
    }
    *out = def;
  } else {
    *out = l.value;
  }
  lookup_done(&l);
  return FL_OK;
}

static bool has_space(const char *s) {
  return s[0] == '\0' || isspace((unsigned char)s[0]) ||
         isspace((unsigned char)s[strlen(s) - 1]);
}

/* Parses an integer magnitude: decimal or 0x-hex; sets *neg. */
static bool parse_u64(const char *s, uint64_t *v, bool *neg) {
  *neg = false;
  if (has_space(s)) return false;
  if (*s == '-' || *s == '+') {
    *neg = *s == '-';
    s++;
  }
  int base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  }
  if (!isxdigit((unsigned char)*s)) return false;
  errno = 0;
  char *end = NULL;
  unsigned long long x = strtoull(s, &end, base);
  if (errno != 0 || *end != '\0') return false;
  *v = (uint64_t)x;
  return true;
}

fl_status_t fl_config_get_int64(const fl_config_t *cfg, const fl_config_node_t *base,
                                const char *path, int64_t min, int64_t max,
                                const int64_t *def, int64_t *out, char **err) {
  if (err != NULL) *err = NULL;
  lookup_t l;
  fl_status_t rc = find_scalar(cfg, base, path, &l, err);
  if (rc != FL_OK) return rc;
  HANDLE_ABSENT(l, def, out, err);
  uint64_t mag;
  bool neg;
  bool ok = parse_u64(l.value, &mag, &neg);
  int64_t v = 0;
  if (ok) {
    if (neg && mag <= (uint64_t)INT64_MAX + 1) v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    else if (!neg && mag <= (uint64_t)INT64_MAX) v = (int64_t)mag;
    else ok = false;
  }
  if (!ok || v < min || v > max) {
    if (min == INT64_MIN && max == INT64_MAX)
      set_err(err, "%s: expected an integer, got '%s'", l.where, l.value);
    else
      set_err(err, "%s: expected an integer between %" PRId64 " and %" PRId64 ", got '%s'",
              l.where, min, max, l.value);
    lookup_done(&l);
    return FL_ECONFIG;
  }
  *out = v;
  lookup_done(&l);
  return FL_OK;
}

fl_status_t fl_config_get_uint64(const fl_config_t *cfg, const fl_config_node_t *base,
                                 const char *path, uint64_t min, uint64_t max,
                                 const uint64_t *def, uint64_t *out, char **err) {
  if (err != NULL) *err = NULL;
  lookup_t l;
  fl_status_t rc = find_scalar(cfg, base, path, &l, err);
  if (rc != FL_OK) return rc;
  HANDLE_ABSENT(l, def, out, err);
  uint64_t v;
  bool neg;
  bool ok = parse_u64(l.value, &v, &neg) && !neg;
  if (!ok || v < min || v > max) {
    if (min == 0 && max == UINT64_MAX)
      set_err(err, "%s: expected a non-negative integer, got '%s'", l.where, l.value);
    else
      set_err(err, "%s: expected an integer between %" PRIu64 " and %" PRIu64 ", got '%s'",
              l.where, min, max, l.value);
    lookup_done(&l);
    return FL_ECONFIG;
  }
  *out = v;
  lookup_done(&l);
  return FL_OK;
}

fl_status_t fl_config_get_bool(const fl_config_t *cfg, const fl_config_node_t *base,
                               const char *path, const bool *def, bool *out, char **err) {
  if (err != NULL) *err = NULL;
  lookup_t l;
  fl_status_t rc = find_scalar(cfg, base, path, &l, err);
  if (rc != FL_OK) return rc;
  HANDLE_ABSENT(l, def, out, err);
  static const char *const yes[] = {"true", "yes", "on"};
  static const char *const no[] = {"false", "no", "off"};
  for (size_t i = 0; i < 3; i++) {
    if (strcasecmp(l.value, yes[i]) == 0 || strcasecmp(l.value, no[i]) == 0) {
      *out = strcasecmp(l.value, yes[i]) == 0;
      lookup_done(&l);
      return FL_OK;
    }
  }
  set_err(err, "%s: expected a boolean (true/false, yes/no, on/off), got '%s'", l.where,
          l.value);
  lookup_done(&l);
  return FL_ECONFIG;
}

fl_status_t fl_config_get_double(const fl_config_t *cfg, const fl_config_node_t *base,
                                 const char *path, const double *def, double *out,
                                 char **err) {
  if (err != NULL) *err = NULL;
  lookup_t l;
  fl_status_t rc = find_scalar(cfg, base, path, &l, err);
  if (rc != FL_OK) return rc;
  HANDLE_ABSENT(l, def, out, err);
  errno = 0;
  char *end = NULL;
  double v = has_space(l.value) ? NAN : strtod(l.value, &end);
  if (end == NULL || *end != '\0' || errno != 0 || !isfinite(v)) {
    set_err(err, "%s: expected a number, got '%s'", l.where, l.value);
    lookup_done(&l);
    return FL_ECONFIG;
  }
  *out = v;
  lookup_done(&l);
  return FL_OK;
}

int fl_config_parse_duration_ms(const char *s, uint64_t *out_ms) {
  if (s == NULL || *s == '\0') return -1;
  uint64_t total = 0;
  while (*s != '\0') {
    if (!isdigit((unsigned char)*s)) return -1;
    uint64_t ip = 0;
    while (isdigit((unsigned char)*s)) {
      if (__builtin_mul_overflow(ip, 10, &ip) ||
          __builtin_add_overflow(ip, (uint64_t)(*s - '0'), &ip))
        return -1;
      s++;
    }
    uint64_t frac = 0, scale = 1;
    if (*s == '.') {
      s++;
      if (!isdigit((unsigned char)*s)) return -1;
      for (; isdigit((unsigned char)*s); s++) {
        if (scale < 1000000000ull) { /* keep 9 digits, ignore the rest */
          frac = frac * 10 + (uint64_t)(*s - '0');
          scale *= 10;
        }
      }
    }
    uint64_t unit;
    if (strncmp(s, "ms", 2) == 0) {
      unit = 1;
      s += 2;
    } else if (*s == 's') {
      unit = 1000;
      s++;
    } else if (*s == 'm') {
      unit = 60000;
      s++;
    } else if (*s == 'h') {
      unit = 3600000;
      s++;
    } else {
      return -1;
    }
    uint64_t part;
    if (__builtin_mul_overflow(ip, unit, &part) ||
        __builtin_add_overflow(part, frac * unit / scale, &part) ||
        __builtin_add_overflow(total, part, &total))
      return -1;
  }
  *out_ms = total;
  return 0;
}

fl_status_t fl_config_get_duration_ms(const fl_config_t *cfg, const fl_config_node_t *base,
                                      const char *path, const uint64_t *def_ms,
                                      uint64_t *out_ms, char **err) {
  if (err != NULL) *err = NULL;
  lookup_t l;
  fl_status_t rc = find_scalar(cfg, base, path, &l, err);
  if (rc != FL_OK) return rc;
  HANDLE_ABSENT(l, def_ms, out_ms, err);
  uint64_t v;
  if (fl_config_parse_duration_ms(l.value, &v) != 0) {
    set_err(err, "%s: expected a duration such as 500ms, 2s, 1m30s or 1h, got '%s'",
            l.where, l.value);
    lookup_done(&l);
    return FL_ECONFIG;
  }
  *out_ms = v;
  lookup_done(&l);
  return FL_OK;
}

static fl_status_t get_container(const fl_config_t *cfg, const fl_config_node_t *base,
                                 const char *path, fl_config_kind_t want,
                                 const fl_config_node_t **out, size_t *count, char **err) {
  if (err != NULL) *err = NULL;
  const fl_config_node_t *n = fl_config_find(cfg, base, path);
  if (n == NULL || (n->kind == FL_CONFIG_SCALAR && n->is_null)) {
    *out = NULL;
    *count = 0;
    return FL_OK;
  }
  if (n->kind != want) {
    set_err(err, "%s:%d: %s: expected a %s", cfg->file, n->line, n->path,
            want == FL_CONFIG_SEQ ? "list" : "map");
    return FL_ECONFIG;
  }
  *out = n;
  *count = n->n;
  return FL_OK;
}

fl_status_t fl_config_get_seq(const fl_config_t *cfg, const fl_config_node_t *base,
                              const char *path, const fl_config_node_t **seq, size_t *count,
                              char **err) {
  return get_container(cfg, base, path, FL_CONFIG_SEQ, seq, count, err);
}

fl_status_t fl_config_get_map(const fl_config_t *cfg, const fl_config_node_t *base,
                              const char *path, const fl_config_node_t **map, size_t *count,
                              char **err) {
  return get_container(cfg, base, path, FL_CONFIG_MAP, map, count, err);
}
