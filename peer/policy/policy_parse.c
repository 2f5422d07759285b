/* SPDX-License-Identifier: Apache-2.0
 *
 * policy_parse.c: text -> policy tree, MAJORITY/ANY compilation, canonical
 * printing and the "finalize" tables the evaluator needs.
 *
 * The parser is a hand-written recursive descent over the bytes of the text
 * (no tokenizer pass, no copies): each parse_expr() call consumes one
 * sub-policy. Recursion depth is capped at FL_POLICY_MAX_DEPTH and the node
 * count at FL_POLICY_MAX_NODES before anything is allocated for the next
 * node, so no input can exhaust the stack or memory. Every error names the
 * 1-based byte column where it was found and what was expected there; the
 * first error wins and parsing stops.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/log.h"
#include "peer/policy/policy_int.h"

static const char *const role_names[FL_POLICY_ROLE_COUNT] = {
    [FL_POLICY_ROLE_MEMBER] = "member", [FL_POLICY_ROLE_PEER] = "peer",
    [FL_POLICY_ROLE_ADMIN] = "admin",   [FL_POLICY_ROLE_CLIENT] = "client",
    [FL_POLICY_ROLE_ORDERER] = "orderer",
};

const char *fl_policy_role_name(fl_policy_role_t role) {
  if ((unsigned)role >= FL_POLICY_ROLE_COUNT) return "?";
  return role_names[role];
}

/* ---- nodes ------------------------------------------------------------ */

static void node_free(fl__pnode_t *nd) {
  if (nd == NULL) return;
  for (uint32_t i = 0; i < nd->nchild; i++) node_free(nd->child[i]);
  fl_free(nd->child);
  fl_free(nd->mspid);
  fl_free(nd->closed);
  fl_free(nd);
}

void fl_policy_free(fl_policy_t *p) {
  if (p == NULL) return;
  node_free(p->root);
  fl_free(p->groups);
  fl_free(p->prin_group);
  fl_free(p->prin_role);
  fl_free(p);
}

static fl__pnode_t *node_new(fl__pkind_t kind, uint32_t col) {
  fl__pnode_t *nd = fl_calloc(1, sizeof(*nd));
  nd->kind = kind;
  nd->col = col;
  return nd;
}

static void node_add_child(fl__pnode_t *nd, fl__pnode_t *c) {
  nd->child = fl_reallocarray(nd->child, nd->nchild + 1, sizeof(*nd->child));
  nd->child[nd->nchild++] = c;
}

bool fl_policy_is_symbolic(const fl_policy_t *p) {
  return p != NULL && p->symbolic;
}

/* ---- characters ------------------------------------------------------- */

static bool is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
static bool is_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_word(unsigned char c) {
  return is_alpha(c) || is_digit(c) || c == '_';
}
/* Characters allowed in a principal: MSP id, '.', role (Fabric allows
 * [[:alnum:].-] in MSP ids; we also take '_'). */
static bool is_prin_char(unsigned char c) {
  return is_word(c) || c == '.' || c == '-';
}
static bool valid_mspid(const char *s) {
  if (s == NULL || *s == '\0') return false;
  size_t n = strlen(s);
  if (n > FL_POLICY_MAX_PRINCIPAL) return false;
  for (size_t i = 0; i < n; i++)
    if (!is_prin_char((unsigned char)s[i])) return false;
  return true;
}

static bool ieq(const char *a, size_t alen, const char *kw) {
  size_t n = strlen(kw);
  if (alen != n) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)a[i];
    if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
    if (c != (unsigned char)kw[i]) return false;
  }
  return true;
}

/* ---- parser ----------------------------------------------------------- */

typedef struct parser {
  const char *s;
  size_t len;
  size_t pos;
  uint32_t nnodes;
  bool symbolic;
  fl_status_t rc;
  char *err;      /* owned; first error only */
} parser;

static void set_err(char **err, size_t col, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void set_err(char **err, size_t col, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  if (col > 0)
    *err = fl_sprintf("policy: column %zu: %s", col, msg);
  else
    *err = fl_sprintf("policy: %s", msg);
}

static void perr(parser *ps, fl_status_t rc, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void perr(parser *ps, fl_status_t rc, size_t at, const char *fmt,
                 ...) {
  if (ps->rc != FL_OK) return;
  ps->rc = rc;
  va_list ap;
  va_start(ap, fmt);
  set_err(&ps->err, at + 1, fmt, ap);
  va_end(ap);
}

/* Describes what is at byte `at` for "got ..." in messages: a word, one
 * printable character, a raw byte, or the end of input. */
static void describe(const parser *ps, size_t at, char out[48]) {
  if (at >= ps->len) {
    snprintf(out, 48, "end of input");
    return;
  }
  unsigned char c = (unsigned char)ps->s[at];
  if (is_word(c)) {
    size_t n = 0;
    while (at + n < ps->len && is_word((unsigned char)ps->s[at + n])) n++;
    if (n > 24)
      snprintf(out, 48, "'%.24s...'", ps->s + at);
    else
      snprintf(out, 48, "'%.*s'", (int)n, ps->s + at);
  } else if (c == '\'') {
    snprintf(out, 48, "\"'\"");
  } else if (c >= 0x20 && c <= 0x7e) {
    snprintf(out, 48, "'%c'", c);
  } else {
    snprintf(out, 48, "byte 0x%02x", c);
  }
}

static void skip_ws(parser *ps) {
  while (ps->pos < ps->len && is_space((unsigned char)ps->s[ps->pos]))
    ps->pos++;
}

static fl__pnode_t *parse_expr(parser *ps, uint32_t depth);

/* At an opening quote. Reads 'MSPID.role' or "MSPID.role". */
static fl__pnode_t *parse_principal(parser *ps) {
  size_t qpos = ps->pos;
  char q = ps->s[qpos];
  size_t start = qpos + 1, end = start;
  while (end < ps->len && is_prin_char((unsigned char)ps->s[end])) end++;
  char got[48];
  if (end >= ps->len) {
    perr(ps, FL_EMALFORMED, qpos, "unterminated principal: missing closing %c",
         q);
    return NULL;
  }
  if (ps->s[end] != q) {
    describe(ps, end, got);
    perr(ps, FL_EMALFORMED, end,
         "expected closing %c of principal or a letter, digit, '.', '-' or "
         "'_', got %s",
         q, got);
    return NULL;
  }
  size_t n = end - start;
  const char *body = ps->s + start;
  if (n == 0) {
    perr(ps, FL_EMALFORMED, qpos, "empty principal; expected 'MSPID.role'");
    return NULL;
  }
  if (n > FL_POLICY_MAX_PRINCIPAL) {
    perr(ps, FL_ETOOBIG, qpos, "principal is %zu bytes, limit is %d", n,
         FL_POLICY_MAX_PRINCIPAL);
    return NULL;
  }
  size_t dot = n;
  for (size_t i = n; i-- > 0;)
    if (body[i] == '.') {
      dot = i;
      break;
    }
  if (dot == n) {
    perr(ps, FL_EMALFORMED, qpos,
         "principal '%.*s' has no role; expected 'MSPID.role'", (int)n, body);
    return NULL;
  }
  if (dot == 0) {
    perr(ps, FL_EMALFORMED, qpos,
         "principal '%.*s' has an empty organisation id", (int)n, body);
    return NULL;
  }
  const char *rs = body + dot + 1;
  size_t rlen = n - dot - 1;
  int role = -1;
  for (int r = 0; r < FL_POLICY_ROLE_COUNT; r++)
    if (ieq(rs, rlen, role_names[r])) role = r;
  if (role < 0) {
    perr(ps, FL_EMALFORMED, qpos,
         "unknown role '%.*s' in principal '%.*s'; expected peer, admin, "
         "member, client or orderer",
         (int)rlen, rs, (int)n, body);
    return NULL;
  }
  fl__pnode_t *nd = node_new(FL__P_PRINCIPAL, (uint32_t)(qpos + 1));
  nd->mspid = fl_strndup(body, dot);
  nd->role = (fl_policy_role_t)role;
  ps->pos = end + 1;
  return nd;
}

/* After "AND", "OR" or "OutOf": "(" [n ","] expr {"," expr} ")". */
static fl__pnode_t *parse_call(parser *ps, fl__pkind_t kind, size_t kwpos,
                               const char *kwname, uint32_t depth) {
  char got[48];
  skip_ws(ps);
  if (ps->pos >= ps->len || ps->s[ps->pos] != '(') {
    describe(ps, ps->pos, got);
    perr(ps, FL_EMALFORMED, ps->pos, "expected '(' after %s, got %s", kwname,
         got);
    return NULL;
  }
  ps->pos++;
  fl__pnode_t *nd = node_new(kind, (uint32_t)(kwpos + 1));
  char ntext[24] = "";
  uint64_t n = 0;
  if (kind == FL__P_OUTOF) {
    skip_ws(ps);
    if (ps->pos >= ps->len || !is_digit((unsigned char)ps->s[ps->pos])) {
      describe(ps, ps->pos, got);
      perr(ps, FL_EMALFORMED, ps->pos,
           "expected the count n after 'OutOf(', got %s", got);
      goto fail;
    }
    size_t d0 = ps->pos;
    while (ps->pos < ps->len && is_digit((unsigned char)ps->s[ps->pos])) {
      if (n <= UINT32_MAX) n = n * 10 + (uint64_t)(ps->s[ps->pos] - '0');
      ps->pos++;
    }
    size_t dn = ps->pos - d0;
    if (dn > 20)
      snprintf(ntext, sizeof(ntext), "%.16s...", ps->s + d0);
    else
      snprintf(ntext, sizeof(ntext), "%.*s", (int)dn, ps->s + d0);
    skip_ws(ps);
    if (ps->pos >= ps->len || ps->s[ps->pos] != ',') {
      describe(ps, ps->pos, got);
      perr(ps, FL_EMALFORMED, ps->pos,
           "expected ',' after the count of OutOf, got %s", got);
      goto fail;
    }
    ps->pos++;
  }
  for (;;) {
    fl__pnode_t *c = parse_expr(ps, depth + 1);
    if (c == NULL) goto fail;
    node_add_child(nd, c);
    skip_ws(ps);
    if (ps->pos < ps->len && ps->s[ps->pos] == ',') {
      ps->pos++;
      continue;
    }
    if (ps->pos < ps->len && ps->s[ps->pos] == ')') {
      ps->pos++;
      break;
    }
    describe(ps, ps->pos, got);
    perr(ps, FL_EMALFORMED, ps->pos, "expected ',' or ')' after %s, got %s",
         c->kind == FL__P_PRINCIPAL ? "principal" : "sub-policy", got);
    goto fail;
  }
  switch (kind) {
  case FL__P_AND: nd->n = nd->nchild; break;
  case FL__P_OR: nd->n = 1; break;
  default:
    if (n == 0) {
      perr(ps, FL_EMALFORMED, kwpos, "OutOf: n must be at least 1");
      goto fail;
    }
    if (n > nd->nchild) {
      perr(ps, FL_EMALFORMED, kwpos, "OutOf: n=%s but only %u sub-polic%s",
           ntext, nd->nchild, nd->nchild == 1 ? "y" : "ies");
      goto fail;
    }
    nd->n = (uint32_t)n;
    break;
  }
  return nd;
fail:
  node_free(nd);
  return NULL;
}

static fl__pnode_t *parse_expr(parser *ps, uint32_t depth) {
  char got[48];
  skip_ws(ps);
  if (depth > FL_POLICY_MAX_DEPTH) {
    perr(ps, FL_ETOOBIG, ps->pos, "nesting deeper than %d levels",
         FL_POLICY_MAX_DEPTH);
    return NULL;
  }
  if (++ps->nnodes > FL_POLICY_MAX_NODES) {
    perr(ps, FL_ETOOBIG, ps->pos, "more than %d elements",
         FL_POLICY_MAX_NODES);
    return NULL;
  }
  if (ps->pos < ps->len) {
    unsigned char c = (unsigned char)ps->s[ps->pos];
    if (c == '\'' || c == '"') return parse_principal(ps);
    if (is_alpha(c)) {
      size_t kw = ps->pos, n = 0;
      while (kw + n < ps->len && is_word((unsigned char)ps->s[kw + n])) n++;
      const char *w = ps->s + kw;
      if (ieq(w, n, "and") || ieq(w, n, "or") || ieq(w, n, "outof")) {
        ps->pos += n;
        fl__pkind_t k = ieq(w, n, "and")  ? FL__P_AND
                        : ieq(w, n, "or") ? FL__P_OR
                                          : FL__P_OUTOF;
        const char *name = k == FL__P_AND ? "AND" : k == FL__P_OR ? "OR"
                                                                  : "OutOf";
        return parse_call(ps, k, kw, name, depth);
      }
      if (ieq(w, n, "majority") || ieq(w, n, "any")) {
        ps->pos += n;
        ps->symbolic = true;
        return node_new(ieq(w, n, "any") ? FL__P_ANY : FL__P_MAJORITY,
                        (uint32_t)(kw + 1));
      }
    }
  }
  describe(ps, ps->pos, got);
  perr(ps, FL_EMALFORMED, ps->pos,
       "expected a policy (AND, OR, OutOf, MAJORITY, ANY or a quoted "
       "principal), got %s",
       got);
  return NULL;
}

/* ---- finalize --------------------------------------------------------- */

typedef struct walk {
  fl__pnode_t **nodes;  /* pre-order */
  uint32_t n;
} walk;

static void collect(fl__pnode_t *nd, fl__pnode_t *parent, uint32_t depth,
                    walk *w) {
  nd->parent = parent;
  nd->depth = depth;
  w->nodes[w->n++] = nd;
  for (uint32_t i = 0; i < nd->nchild; i++)
    collect(nd->child[i], nd, depth + 1, w);
}

static fl__pnode_t *lca(fl__pnode_t *a, fl__pnode_t *b) {
  while (a->depth > b->depth) a = a->parent;
  while (b->depth > a->depth) b = b->parent;
  while (a != b) {
    a = a->parent;
    b = b->parent;
  }
  return a;
}

static uint32_t count_nodes(const fl__pnode_t *nd) {
  uint32_t n = 1;
  for (uint32_t i = 0; i < nd->nchild; i++) n += count_nodes(nd->child[i]);
  return n;
}

/* Fills the tables of invariant 4 (p must not be symbolic). */
static void finalize(fl_policy_t *p) {
  p->nnodes = count_nodes(p->root);
  walk w = {.nodes = fl_calloc(p->nnodes, sizeof(*w.nodes))};
  collect(p->root, NULL, 0, &w);

  p->groups = fl_calloc(p->nnodes, sizeof(*p->groups));
  p->prin_group = fl_calloc(p->nnodes, sizeof(*p->prin_group));
  p->prin_role = fl_calloc(p->nnodes, sizeof(*p->prin_role));
  fl__pnode_t **top = fl_calloc(p->nnodes, sizeof(*top));      /* LCA */
  for (uint32_t i = 0; i < w.n; i++) {
    fl__pnode_t *nd = w.nodes[i];
    if (nd->kind != FL__P_PRINCIPAL) continue;
    uint32_t g = 0;
    while (g < p->ngroups && strcmp(p->groups[g], nd->mspid) != 0) g++;
    if (g == p->ngroups) {
      p->groups[p->ngroups++] = nd->mspid;
      top[g] = nd;
    } else {
      top[g] = lca(top[g], nd);
    }
    nd->group = g;
    uint32_t k = 0;
    while (k < p->nprins &&
           !(p->prin_group[k] == g && p->prin_role[k] == nd->role))
      k++;
    if (k == p->nprins) {
      p->prin_group[k] = g;
      p->prin_role[k] = nd->role;
      p->nprins++;
    }
    nd->prin = k;
  }
  p->gwords = (p->ngroups + 63) / 64;
  if (p->gwords == 0) p->gwords = 1;
  for (uint32_t i = 0; i < w.n; i++)
    w.nodes[i]->closed = fl_calloc(p->gwords, sizeof(uint64_t));
  for (uint32_t g = 0; g < p->ngroups; g++)
    top[g]->closed[g / 64] |= (uint64_t)1 << (g % 64);
  /* Reverse pre-order visits children before parents. */
  for (uint32_t i = w.n; i-- > 1;) {
    fl__pnode_t *nd = w.nodes[i];
    for (uint32_t k = 0; k < p->gwords; k++)
      nd->parent->closed[k] |= nd->closed[k];
  }
  fl_free(top);
  fl_free(w.nodes);
}

/* ---- public: parse ---------------------------------------------------- */

fl_status_t fl_policy_parse(const char *text, size_t len,
                            fl_policy_t **out /* out */,
                            char **err /* out, optional */) {
  if (err != NULL) *err = NULL;
  if (out == NULL) return FL_EINVAL;
  *out = NULL;
  if (text == NULL) {
    if (err != NULL) *err = fl_strdup("policy: no text");
    return FL_EINVAL;
  }
  if (len > FL_POLICY_MAX_TEXT) {
    if (err != NULL)
      *err = fl_sprintf("policy: policy is %zu bytes, limit is %d", len,
                        FL_POLICY_MAX_TEXT);
    return FL_ETOOBIG;
  }
  parser ps = {.s = text, .len = len, .rc = FL_OK};
  skip_ws(&ps);
  if (ps.pos == ps.len) {
    if (err != NULL) *err = fl_strdup("policy: empty policy");
    return FL_EMALFORMED;
  }
  fl__pnode_t *root = parse_expr(&ps, 1);
  if (root != NULL) {
    skip_ws(&ps);
    if (ps.pos < ps.len) {
      char got[48];
      describe(&ps, ps.pos, got);
      perr(&ps, FL_EMALFORMED, ps.pos, "unexpected %s after the end of the policy",
           got);
      node_free(root);
      root = NULL;
    }
  }
  if (root == NULL) {
    FL_ASSERT(ps.rc != FL_OK);
    if (err != NULL)
      *err = ps.err;
    else
      fl_free(ps.err);
    return ps.rc;
  }
  fl_policy_t *p = fl_calloc(1, sizeof(*p));
  p->root = root;
  p->symbolic = ps.symbolic;
  if (!p->symbolic)
    finalize(p);
  else
    p->nnodes = ps.nnodes;
  *out = p;
  return FL_OK;
}

/* ---- public: compile -------------------------------------------------- */

typedef struct compiler {
  const char *const *orgs;
  size_t norgs;
  uint32_t nnodes;
  fl_status_t rc;
  char *err;
} compiler;

static void cerr(compiler *c, fl_status_t rc, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void cerr(compiler *c, fl_status_t rc, size_t col, const char *fmt,
                 ...) {
  if (c->rc != FL_OK) return;
  c->rc = rc;
  va_list ap;
  va_start(ap, fmt);
  set_err(&c->err, col, fmt, ap);
  va_end(ap);
}

static bool count_node(compiler *c, uint32_t col) {
  if (++c->nnodes <= FL_POLICY_MAX_NODES) return true;
  cerr(c, FL_ETOOBIG, col,
       "more than %d elements after expanding MAJORITY/ANY",
       FL_POLICY_MAX_NODES);
  return false;
}

static fl__pnode_t *copy_expand(compiler *c, const fl__pnode_t *src) {
  if (!count_node(c, src->col)) return NULL;
  if (src->kind == FL__P_MAJORITY || src->kind == FL__P_ANY) {
    const char *kw = src->kind == FL__P_ANY ? "ANY" : "MAJORITY";
    if (c->norgs == 0) {
      cerr(c, FL_ECONFIG, src->col, "%s needs the list of organisations", kw);
      return NULL;
    }
    fl__pnode_t *nd = node_new(src->kind == FL__P_ANY ? FL__P_OR : FL__P_OUTOF,
                               src->col);
    nd->n = src->kind == FL__P_ANY ? 1 : (uint32_t)(c->norgs / 2 + 1);
    for (size_t i = 0; i < c->norgs; i++) {
      if (!count_node(c, src->col)) {
        node_free(nd);
        return NULL;
      }
      fl__pnode_t *leaf = node_new(FL__P_PRINCIPAL, src->col);
      leaf->mspid = fl_strdup(c->orgs[i]);
      leaf->role = FL_POLICY_ROLE_PEER;
      node_add_child(nd, leaf);
    }
    return nd;
  }
  fl__pnode_t *nd = node_new(src->kind, src->col);
  nd->n = src->n;
  nd->role = src->role;
  if (src->kind == FL__P_PRINCIPAL) {
    if (c->norgs > 0) {
      size_t i = 0;
      while (i < c->norgs && strcmp(c->orgs[i], src->mspid) != 0) i++;
      if (i == c->norgs) {
        cerr(c, FL_ECONFIG, src->col, "unknown organisation '%s'",
             src->mspid);
        node_free(nd);
        return NULL;
      }
    }
    nd->mspid = fl_strdup(src->mspid);
  }
  for (uint32_t i = 0; i < src->nchild; i++) {
    fl__pnode_t *ch = copy_expand(c, src->child[i]);
    if (ch == NULL) {
      node_free(nd);
      return NULL;
    }
    node_add_child(nd, ch);
  }
  return nd;
}

fl_status_t fl_policy_compile(const fl_policy_t *p, const char *const *orgs,
                              size_t norgs, fl_policy_t **out /* out */,
                              char **err /* out, optional */) {
  if (err != NULL) *err = NULL;
  if (out == NULL) return FL_EINVAL;
  *out = NULL;
  compiler c = {.orgs = orgs, .norgs = norgs, .rc = FL_OK};
  if (p == NULL || (norgs > 0 && orgs == NULL)) {
    cerr(&c, FL_EINVAL, 0, "no policy or no organisation list");
  } else if (norgs > FL_POLICY_MAX_ORGS) {
    cerr(&c, FL_EINVAL, 0, "%zu organisations, limit is %d", norgs,
         FL_POLICY_MAX_ORGS);
  } else {
    for (size_t i = 0; i < norgs && c.rc == FL_OK; i++) {
      if (!valid_mspid(orgs[i])) {
        cerr(&c, FL_EINVAL, 0, "organisation %zu has an invalid MSP id", i);
        break;
      }
      for (size_t j = 0; j < i; j++)
        if (strcmp(orgs[i], orgs[j]) == 0) {
          cerr(&c, FL_EINVAL, 0, "organisation '%s' is listed twice",
               orgs[i]);
          break;
        }
    }
  }
  fl__pnode_t *root = c.rc == FL_OK ? copy_expand(&c, p->root) : NULL;
  if (root == NULL) {
    if (err != NULL)
      *err = c.err;
    else
      fl_free(c.err);
    return c.rc;
  }
  fl_policy_t *q = fl_calloc(1, sizeof(*q));
  q->root = root;
  finalize(q);
  *out = q;
  return FL_OK;
}

fl_status_t fl_policy_new(const char *text, size_t len,
                          const char *const *orgs, size_t norgs,
                          fl_policy_t **out /* out */,
                          char **err /* out, optional */) {
  if (out != NULL) *out = NULL;
  fl_policy_t *p = NULL;
  fl_status_t rc = fl_policy_parse(text, len, &p, err);
  if (rc != FL_OK) return rc;
  rc = fl_policy_compile(p, orgs, norgs, out, err);
  fl_policy_free(p);
  return rc;
}

/* ---- public: canonical text ------------------------------------------- */

static void print_node(const fl__pnode_t *nd, fl_sbuf_t *b) {
  switch (nd->kind) {
  case FL__P_PRINCIPAL:
    fl_sbuf_printf(b, "'%s.%s'", nd->mspid, role_names[nd->role]);
    return;
  case FL__P_MAJORITY: fl_sbuf_append_str(b, "MAJORITY"); return;
  case FL__P_ANY: fl_sbuf_append_str(b, "ANY"); return;
  case FL__P_AND: fl_sbuf_append_str(b, "AND("); break;
  case FL__P_OR: fl_sbuf_append_str(b, "OR("); break;
  case FL__P_OUTOF: fl_sbuf_printf(b, "OutOf(%u, ", nd->n); break;
  }
  for (uint32_t i = 0; i < nd->nchild; i++) {
    if (i > 0) fl_sbuf_append_str(b, ", ");
    print_node(nd->child[i], b);
  }
  fl_sbuf_append_str(b, ")");
}

char *fl_policy_to_string(const fl_policy_t *p) {
  if (p == NULL) return fl_strdup("");
  fl_sbuf_t b = {0};
  print_node(p->root, &b);
  fl_sbuf_append(&b, "", 1);
  size_t n = 0;
  return (char *)fl_sbuf_detach(&b, &n);
}
