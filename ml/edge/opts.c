/* SPDX-License-Identifier: Apache-2.0
 *
 * opts.c: the settings tables of fedledger-edge and fedledger-keeper (opts.h):
 * flags over environment over YAML file over defaults, every error naming
 * its source. The file and environment go through common/config's typed
 * getters (which know file:line and the FEDLEDGER_* names); flags and
 * defaults go through the same-typed text parsers here.
 */
#include "ml/edge/opts.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base/alloc.h"
#include "common/config/config.h"

static size_t table_len(const fl_edge_opt_t *t) {
  size_t n = 0;
  while (t[n].path != NULL) n++;
  return n;
}

static void *field(void *out, const fl_edge_opt_t *o) { return (char *)out + o->offset; }

/* ---- text parsers (flags and defaults) -------------------------------------- */

static char *parse_text(const fl_edge_opt_t *o, const char *where, const char *v, void *out) {
  switch (o->kind) {
  case FL_EDGE_OPT_STR:
    *(char **)field(out, o) = v[0] != '\0' ? fl_strdup(v) : NULL;
    return NULL;
  case FL_EDGE_OPT_U64: {
    char *end = NULL;
    errno = 0;
    unsigned long long x = v[0] >= '0' && v[0] <= '9' ? strtoull(v, &end, 10) : 0;
    if (end == NULL || end == v || *end != '\0' || errno != 0 || x < o->min || x > o->max)
      return fl_sprintf("%s: expected an integer between %" PRIu64 " and %" PRIu64 ", got '%s'",
                        where, o->min, o->max, v);
    *(uint64_t *)field(out, o) = (uint64_t)x;
    return NULL;
  }
  case FL_EDGE_OPT_DBL: {
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || errno != 0 || !isfinite(x) || x < o->dmin || x > o->dmax)
      return fl_sprintf("%s: expected a number between %g and %g, got '%s'", where, o->dmin,
                        o->dmax, v);
    *(double *)field(out, o) = x;
    return NULL;
  }
  case FL_EDGE_OPT_MS: {
    uint64_t ms = 0;
    if (fl_config_parse_duration_ms(v, &ms) < 0 || ms < o->min || ms > o->max)
      return fl_sprintf("%s: expected a duration such as 500ms, 2s or 1m (%" PRIu64
                        "ms..%" PRIu64 "ms), got '%s'",
                        where, o->min, o->max, v);
    *(uint64_t *)field(out, o) = ms;
    return NULL;
  }
  case FL_EDGE_OPT_BOOL: {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
      if (strcasecmp(v, yes[i]) == 0) return *(bool *)field(out, o) = true, NULL;
      if (strcasecmp(v, no[i]) == 0) return *(bool *)field(out, o) = false, NULL;
    }
    return fl_sprintf("%s: expected true or false, got '%s'", where, v);
  }
  }
  return fl_sprintf("%s: bad setting kind", where);
}

/* ---- file and environment ------------------------------------------------------ */

/* True when the file or the environment has a (non-null) value for o. */
static bool cfg_has(const fl_config_t *cfg, const fl_edge_opt_t *o, char **where) {
  char *env = fl_config_env_name(cfg, o->path);
  if (env != NULL && getenv(env) != NULL) {
    *where = fl_sprintf("env %s", env);
    fl_free(env);
    return true;
  }
  fl_free(env);
  const fl_config_node_t *n = fl_config_find(cfg, NULL, o->path);
  if (n == NULL) return false;
  if (fl_config_node_kind(n) == FL_CONFIG_SCALAR) {
    const char *s = fl_config_node_scalar(n);
    if (s == NULL || s[0] == '\0' || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0)
      return false;
  }
  *where = fl_sprintf("%s:%d: %s", fl_config_file(cfg), fl_config_node_line(n), o->path);
  return true;
}

static fl_status_t cfg_get(const fl_config_t *cfg, const fl_edge_opt_t *o, void *out, char **err) {
  switch (o->kind) {
  case FL_EDGE_OPT_STR: {
    const char *s = NULL;
    fl_status_t rc = fl_config_get_string(cfg, NULL, o->path, NULL, &s, err);
    if (rc == FL_OK) *(char **)field(out, o) = fl_strdup(s);
    return rc;
  }
  case FL_EDGE_OPT_U64:
    return fl_config_get_uint64(cfg, NULL, o->path, o->min, o->max, NULL,
                                (uint64_t *)field(out, o), err);
  case FL_EDGE_OPT_DBL: {
    double x = 0;
    fl_status_t rc = fl_config_get_double(cfg, NULL, o->path, NULL, &x, err);
    if (rc != FL_OK) return rc;
    if (x < o->dmin || x > o->dmax) {
      char *w = NULL;
      (void)cfg_has(cfg, o, &w);
      *err = fl_sprintf("%s: expected a number between %g and %g, got %g", w ? w : o->path,
                        o->dmin, o->dmax, x);
      fl_free(w);
      return FL_ECONFIG;
    }
    *(double *)field(out, o) = x;
    return FL_OK;
  }
  case FL_EDGE_OPT_MS: {
    uint64_t ms = 0;
    fl_status_t rc = fl_config_get_duration_ms(cfg, NULL, o->path, NULL, &ms, err);
    if (rc != FL_OK) return rc;
    if (ms < o->min || ms > o->max) {
      char *w = NULL;
      (void)cfg_has(cfg, o, &w);
      *err = fl_sprintf("%s: expected a duration between %" PRIu64 "ms and %" PRIu64
                        "ms, got %" PRIu64 "ms",
                        w ? w : o->path, o->min, o->max, ms);
      fl_free(w);
      return FL_ECONFIG;
    }
    *(uint64_t *)field(out, o) = ms;
    return FL_OK;
  }
  case FL_EDGE_OPT_BOOL:
    return fl_config_get_bool(cfg, NULL, o->path, NULL, (bool *)field(out, o), err);
  }
  *err = fl_strdup("bad setting kind");
  return FL_ECONFIG;
}

/* ---- flags ---------------------------------------------------------------------- */

const char *fl_edge_opts_config_arg(int argc, char *const *argv, bool *help) {
  const char *path = NULL;
  if (help) *help = false;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      if (help) *help = true;
    } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      path = argv[++i];
    } else if (strncmp(argv[i], "--config=", 9) == 0) {
      path = argv[i] + 9;
    }
  }
  return path;
}

/* Finds the flag for table row k in argv: *val gets its text (last one
 * wins). Returns -1 with *err for a malformed command line. */
static int scan_flags(const fl_edge_opt_t *t, size_t n, int argc, char *const *argv,
                      const char **vals, char **err) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) continue;
    if (strcmp(a, "--config") == 0) {
      if (i + 1 >= argc) return *err = fl_strdup("--config: needs a file name"), -1;
      i++;
      continue;
    }
    if (strncmp(a, "--config=", 9) == 0) continue;
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
      *err = fl_sprintf("unexpected argument '%s' (settings are --flag VALUE; see --help)", a);
      return -1;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    size_t k = 0;
    for (; k < n; k++)
      if (t[k].flag != NULL && strlen(t[k].flag) == len && strncmp(t[k].flag, name, len) == 0)
        break;
    if (k == n) {
      *err = fl_sprintf("unknown flag --%.*s (see --help)", (int)len, name);
      return -1;
    }
    if (eq != NULL) {
      vals[k] = eq + 1;
    } else if (t[k].kind == FL_EDGE_OPT_BOOL) {
      vals[k] = "true";
    } else {
      if (i + 1 >= argc) {
        *err = fl_sprintf("--%s: needs a value", t[k].flag);
        return -1;
      }
      vals[k] = argv[++i];
    }
  }
  return 0;
}

fl_status_t fl_edge_opts_load(const fl_edge_opt_t *t, const char *config_path, int argc,
                              char *const *argv, void *out, fl_edge_opts_src_t *src,
                              char **err) {
  *err = NULL;
  if (src) memset(src, 0, sizeof *src);
  size_t n = table_len(t);
  const char **vals = fl_calloc(n + 1, sizeof *vals);
  char **where = fl_calloc(n + 1, sizeof *where);
  fl_config_t *cfg = NULL;
  fl_status_t rc = FL_OK;
  /* String fields start NULL so that a failure can free what was set. */
  for (size_t k = 0; k < n; k++)
    if (t[k].kind == FL_EDGE_OPT_STR) *(char **)field(out, &t[k]) = NULL;
  if (scan_flags(t, n, argc, argv, vals, err) < 0) {
    rc = FL_ECONFIG;
    goto fail;
  }
  rc = config_path != NULL ? fl_config_load(config_path, "FEDLEDGER", &cfg, err)
                           : fl_config_parse("(no config file)", "", 0, "FEDLEDGER", &cfg, err);
  if (rc != FL_OK) {
    if (config_path != NULL && (rc == FL_NOTFOUND || rc == FL_EIO) && *err == NULL)
      *err = fl_sprintf("%s: cannot read the config file", config_path);
    goto fail;
  }
  for (size_t k = 0; k < n; k++) {
    const fl_edge_opt_t *o = &t[k];
    char *e = NULL;
    if (vals[k] != NULL) {
      where[k] = fl_sprintf("--%s", o->flag);
      e = parse_text(o, where[k], vals[k], out);
    } else if (cfg_has(cfg, o, &where[k])) {
      if (cfg_get(cfg, o, out, &e) != FL_OK && e == NULL) e = fl_sprintf("%s: bad value", where[k]);
    } else if (o->def != NULL) {
      where[k] = fl_strdup("default");
      e = parse_text(o, "default", o->def, out);
    } else {
      char *env = fl_config_env_name(cfg, o->path);
      e = o->flag ? fl_sprintf("missing setting %s (key %s in the config file, flag --%s or "
                               "env %s)",
                               o->path, o->path, o->flag, env)
                  : fl_sprintf("missing setting %s (key %s in the config file or env %s)",
                               o->path, o->path, env);
      fl_free(env);
    }
    if (e != NULL) {
      *err = e;
      rc = FL_ECONFIG;
      goto fail;
    }
  }
  /* Keys in the file that no row knows are typos: refuse them. */
  for (size_t i = 0, m = fl_config_node_count(fl_config_root(cfg)); i < m; i++) {
    const fl_config_node_t *top = fl_config_node_child(fl_config_root(cfg), i);
    const fl_config_node_t *stack[64];
    size_t sp = 0;
    stack[sp++] = top;
    while (sp > 0) {
      const fl_config_node_t *nd = stack[--sp];
      const char *p = fl_config_node_path(nd);
      bool known = false, prefix = false;
      for (size_t k = 0; k < n && !known; k++) {
        size_t pl = strlen(p);
        known = strcmp(t[k].path, p) == 0;
        prefix |= strncmp(t[k].path, p, pl) == 0 && t[k].path[pl] == '.';
      }
      if (known) continue;
      if (prefix && fl_config_node_kind(nd) == FL_CONFIG_MAP) {
        for (size_t c = 0; c < fl_config_node_count(nd) && sp < 64; c++)
          stack[sp++] = fl_config_node_child(nd, c);
        continue;
      }
      *err = fl_sprintf("%s:%d: unknown key %s", fl_config_file(cfg), fl_config_node_line(nd), p);
      rc = FL_ECONFIG;
      goto fail;
    }
  }
  fl_config_free(cfg);
  fl_free(vals);
  if (src) {
    src->n = n;
    src->where = where;
  } else {
    for (size_t k = 0; k < n; k++) fl_free(where[k]);
    fl_free(where);
  }
  return FL_OK;
fail:
  fl_config_free(cfg);
  fl_free(vals);
  for (size_t k = 0; k < n; k++) fl_free(where[k]);
  fl_free(where);
  fl_edge_opts_free(t, out);
  return rc;
}

void fl_edge_opts_free(const fl_edge_opt_t *t, void *settings) {
  if (settings == NULL) return;
  for (size_t k = 0; t[k].path != NULL; k++)
    if (t[k].kind == FL_EDGE_OPT_STR) {
      char **p = (char **)field(settings, &t[k]);
      fl_free(*p);
      *p = NULL;
    }
}

const char *fl_edge_opts_where(const fl_edge_opt_t *t, const fl_edge_opts_src_t *src,
                               const char *path) {
  for (size_t k = 0; src != NULL && k < src->n && t[k].path != NULL; k++)
    if (strcmp(t[k].path, path) == 0 && src->where[k] != NULL) return src->where[k];
  return "default";
}

void fl_edge_opts_src_free(fl_edge_opts_src_t *src) {
  if (src == NULL) return;
  for (size_t k = 0; k < src->n; k++) fl_free(src->where[k]);
  fl_free(src->where);
  memset(src, 0, sizeof *src);
}

void fl_edge_opts_usage(const fl_edge_opt_t *t, void *fp) {
  FILE *f = fp;
  for (size_t k = 0; t[k].path != NULL; k++) {
    char flag[64];
    snprintf(flag, sizeof flag, "%s%s", t[k].flag ? "--" : "", t[k].flag ? t[k].flag : "");
    fprintf(f, "  %-20s %-24s %s", flag, t[k].path, t[k].help ? t[k].help : "");
    if (t[k].def == NULL) fprintf(f, " (required)");
    else if (t[k].def[0] != '\0') fprintf(f, " (default %s)", t[k].def);
    fputc('\n', f);
  }
}

/* ---- small value parsers --------------------------------------------------------- */

static int parse_u32(const char *s, size_t n, uint32_t *out) {
  if (n == 0 || n > 9) return -1;
  uint32_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (uint32_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

int fl_edge_parse_partition(const char *s, uint32_t *i, uint32_t *n) {
  if (s == NULL) return -1;
  const char *slash = strchr(s, '/');
  uint32_t a, b;
  if (slash == NULL || parse_u32(s, (size_t)(slash - s), &a) < 0 ||
      parse_u32(slash + 1, strlen(slash + 1), &b) < 0 || b == 0 || a >= b)
    return -1;
  *i = a;
  *n = b;
  return 0;
}

int fl_edge_parse_endpoint(const char *s, char *host, size_t cap, uint16_t *port) {
  if (s == NULL || cap == 0) return -1;
  const char *colon = strrchr(s, ':');
  if (colon == NULL) return -1;
  const char *h = s;
  size_t hl = (size_t)(colon - s);
  if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  } else if (memchr(h, ':', hl) != NULL) {
    return -1; /* a bare IPv6 address needs brackets */
  }
  uint32_t p;
  if (hl == 0 || hl > 253 || hl + 1 > cap || parse_u32(colon + 1, strlen(colon + 1), &p) < 0 ||
      p == 0 || p > 65535)
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (uint16_t)p;
  return 0;
}
