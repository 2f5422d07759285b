/* SPDX-License-Identifier: Apache-2.0
 *
 * policy_eval.c: deciding whether verified signers satisfy a policy, and
 * planning the fewest endorsers that would.
 *
 * Both questions are "choose, in every OutOf/AND/OR node, enough satisfied
 * children, so that the leaves chosen in the whole tree can be given
 * distinct identities". Identities matter only through counts: a leaf
 * 'A.peer' needs one peer of A, 'A.member' one identity of A of any role. So
 * a partial answer is a *demand vector* (how many leaves of each kind were
 * chosen), and a demand is feasible when, for each organisation A, every
 * specific-role demand fits the number of A's signers with that role and the
 * total fits the number of A's signers (Hall's condition for this bipartite
 * graph: member leaves take whatever is left).
 *
 * The engine is a dynamic program over the tree. Each node yields the set of
 * feasible demands that satisfy it, kept Pareto-minimal (a demand that needs
 * at least as much of everything as another is dropped). An OutOf(n) node
 * combines its children like a 0/1 knapsack: layer m holds the demands of
 * choosing m of the children seen so far.
 *
 * What keeps the sets small: once every leaf of organisation A lies inside a
 * node's subtree, nothing outside can compete for A's identities, so the
 * node's output stops comparing the demand on A (invariant 4 of
 * policy_int.h, the `closed` bitmap). MAJORITY over fifty organisations thus
 * costs fifty tiny steps, not C(50, 26) subsets. Pathological policies (the
 * general problem contains 3-dimensional matching) still exist; a fixed work
 * budget turns them into FL_ETOOBIG, identical on every peer.
 *
 * The planner uses the same engine with one dimension per organisation (a
 * peer can stand for '.peer' and '.member' principals of its organisation),
 * supply = available peers, and a key (number of peers, then lexicographic
 * preference) that is invariant under adding the same demand to two
 * candidates, so the Pareto pruning stays exact for the optimum.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "peer/policy/policy_int.h"

#define WORK_BUDGET 50000000ull  /* vector-component steps per call */
#define MAX_SET 65536u           /* demands kept by one node */

typedef struct vset {
  uint16_t *v;   /* n vectors of K components */
  size_t n, cap;
} vset;

typedef struct eng {
  uint32_t K;                         /* dimensions */
  uint32_t G;                         /* organisations (groups) */
  const uint32_t *dim_group;          /* K */
  bool plan;
  /* evaluation: per dim the principal's role; per group the supply */
  const fl_policy_role_t *dim_role;   /* K */
  uint32_t *cnt;                      /* G x FL_POLICY_ROLE_COUNT */
  uint32_t *tot;                      /* G */
  uint32_t *gsum;                     /* G, scratch, kept all zero */
  /* plan */
  const uint32_t *supply;             /* K (= G) */
  const uint32_t *order;              /* K dims in preference order */
  uint32_t gwords;
  uint16_t *tmp;                      /* K scratch */
  uint64_t work;
  fl_status_t rc;
} eng;

static void vset_push(const eng *e, vset *s, const uint16_t *x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 4;
    s->v = fl_reallocarray(s->v, s->cap, (size_t)e->K * sizeof(uint16_t));
  }
  memcpy(s->v + s->n * e->K, x, (size_t)e->K * sizeof(uint16_t));
  s->n++;
}

static void vset_free(vset *s) {
  if (s == NULL) return;
  fl_free(s->v);
  *s = (vset){0};
}

static bool feasible(const eng *e, const uint16_t *v) {
  if (e->plan) {
    for (uint32_t d = 0; d < e->K; d++)
      if (v[d] > e->supply[d]) return false;
    return true;
  }
  bool ok = true;
  for (uint32_t d = 0; d < e->K; d++) {
    if (v[d] == 0) continue;
    uint32_t g = e->dim_group[d];
    fl_policy_role_t r = e->dim_role[d];
    if (r != FL_POLICY_ROLE_MEMBER && v[d] > e->cnt[g * FL_POLICY_ROLE_COUNT + r])
      ok = false;
    e->gsum[g] += v[d];
  }
  for (uint32_t d = 0; d < e->K; d++) {
    uint32_t g = e->dim_group[d];
    if (e->gsum[g] > e->tot[g]) ok = false;
    e->gsum[g] = 0;
  }
  return ok;
}

/* Plan key: fewer peers first, then more peers of earlier organisations.
 * Both parts are invariant under adding the same vector to a and b. */
static int keycmp(const eng *e, const uint16_t *a, const uint16_t *b) {
  uint32_t ta = 0, tb = 0;
  for (uint32_t d = 0; d < e->K; d++) {
    ta += a[d];
    tb += b[d];
  }
  if (ta != tb) return ta < tb ? -1 : 1;
  for (uint32_t i = 0; i < e->K; i++) {
    uint32_t d = e->order[i];
    if (a[d] != b[d]) return a[d] > b[d] ? -1 : 1;
  }
  return 0;
}

/* True when a is at least as good as b for every completion: a needs no
 * more on any dimension still contended outside (group not in `closed`). */
static bool dominates(eng *e, const uint16_t *a, const uint16_t *b,
                      const uint64_t *closed) {
  e->work += e->K;
  for (uint32_t d = 0; d < e->K; d++)
    if (a[d] > b[d] && !fl__bit(closed, e->dim_group[d])) return false;
  return !e->plan || keycmp(e, a, b) <= 0;
}

static void insert(eng *e, vset *s, const uint16_t *x, const uint64_t *closed) {
  if (e->rc != FL_OK) return;
  for (size_t i = 0; i < s->n; i++)
    if (dominates(e, s->v + i * e->K, x, closed)) return;
  size_t j = 0;
  for (size_t i = 0; i < s->n; i++) {
    uint16_t *y = s->v + i * e->K;
    if (dominates(e, x, y, closed)) continue;
    if (j != i) memcpy(s->v + j * e->K, y, (size_t)e->K * sizeof(uint16_t));
    j++;
  }
  s->n = j;
  if (s->n >= MAX_SET || e->work > WORK_BUDGET) {
    e->rc = FL_ETOOBIG;
    return;
  }
  vset_push(e, s, x);
}

static int leaf_dim(const eng *e, const fl__pnode_t *leaf) {
  if (!e->plan) return (int)leaf->prin;
  if (leaf->role != FL_POLICY_ROLE_PEER && leaf->role != FL_POLICY_ROLE_MEMBER)
    return -1;
  return e->supply[leaf->group] > 0 ? (int)leaf->group : -1;
}

/* Computes into *out (empty on entry) the Pareto-minimal feasible demands
 * that satisfy nd. Sets e->rc on budget exhaustion. Recursion depth is
 * bounded by invariant 1. */
static void dp(eng *e, const fl__pnode_t *nd, vset *out) {
  if (nd->kind == FL__P_PRINCIPAL) {
    int d = leaf_dim(e, nd);
    if (d < 0) return;
    memset(e->tmp, 0, (size_t)e->K * sizeof(uint16_t));
    e->tmp[d] = 1;
    if (feasible(e, e->tmp)) vset_push(e, out, e->tmp);
    return;
  }
  uint32_t t = nd->n, nc = nd->nchild;
  FL_ASSERT(t >= 1 && t <= nc);
  /* While combining children, a group is settled once it is closed inside
   * one child; groups closed at nd itself still span several children. */
  uint64_t *mid = fl_calloc(e->gwords, sizeof(uint64_t));
  for (uint32_t i = 0; i < nc; i++)
    for (uint32_t w = 0; w < e->gwords; w++) mid[w] |= nd->child[i]->closed[w];
  vset *layer = fl_calloc((size_t)t + 1, sizeof(vset));
  uint16_t *sum = fl_calloc(e->K, sizeof(uint16_t));
  memset(sum, 0, (size_t)e->K * sizeof(uint16_t));
  vset_push(e, &layer[0], sum);
  for (uint32_t i = 0; i < nc && e->rc == FL_OK; i++) {
    vset c = {0};
    dp(e, nd->child[i], &c);
    uint32_t remaining = nc - i - 1;
    uint32_t hi = i + 1 < t ? i + 1 : t;
    for (uint32_t m = hi; m >= 1 && e->rc == FL_OK; m--) {
      if (t - m > remaining) continue;  /* too few children left */
      for (size_t a = 0; a < layer[m - 1].n && e->rc == FL_OK; a++) {
        const uint16_t *va = layer[m - 1].v + a * e->K;
        for (size_t b = 0; b < c.n && e->rc == FL_OK; b++) {
          const uint16_t *vb = c.v + b * e->K;
          for (uint32_t d = 0; d < e->K; d++)
            sum[d] = (uint16_t)(va[d] + vb[d]);
          if (feasible(e, sum)) insert(e, &layer[m], sum, mid);
        }
      }
    }
    vset_free(&c);
  }
  for (size_t i = 0; i < layer[t].n && e->rc == FL_OK; i++)
    insert(e, out, layer[t].v + i * e->K, nd->closed);
  for (uint32_t m = 0; m <= t; m++) vset_free(&layer[m]);
  fl_free(layer);
  fl_free(sum);
  fl_free(mid);
}

static uint32_t find_group(const fl_policy_t *p, const char *mspid) {
  for (uint32_t g = 0; g < p->ngroups; g++)
    if (strcmp(p->groups[g], mspid) == 0) return g;
  return UINT32_MAX;
}

fl_status_t fl_policy_evaluate(const fl_policy_t *p,
                               const fl_policy_signer_t *signers, size_t n,
                               bool *satisfied /* out */) {
  if (satisfied == NULL) return FL_EINVAL;
  *satisfied = false;
  if (p == NULL || (n > 0 && signers == NULL)) return FL_EINVAL;
  if (p->symbolic) return FL_ESTATE;
  if (n > FL_POLICY_MAX_SIGNERS) return FL_ETOOBIG;
  for (size_t i = 0; i < n; i++) {
    const fl_policy_signer_t *s = &signers[i];
    if (s->mspid == NULL || s->id.len == 0 || s->id.data == NULL ||
        (unsigned)s->role >= FL_POLICY_ROLE_COUNT)
      return FL_EINVAL;
  }
  eng e = {
      .K = p->nprins, .G = p->ngroups, .dim_group = p->prin_group,
      .dim_role = p->prin_role, .gwords = p->gwords, .rc = FL_OK,
  };
  e.cnt = fl_calloc((size_t)e.G * FL_POLICY_ROLE_COUNT, sizeof(uint32_t));
  e.tot = fl_calloc(e.G, sizeof(uint32_t));
  e.gsum = fl_calloc(e.G, sizeof(uint32_t));
  e.tmp = fl_calloc(e.K, sizeof(uint16_t));
  vset root = {0};
  fl_status_t rc = FL_OK;
  for (size_t i = 0; i < n; i++) {
    const fl_policy_signer_t *s = &signers[i];
    bool dup = false;
    for (size_t j = 0; j < i && !dup; j++) {
      const fl_policy_signer_t *o = &signers[j];
      if (!fl_buf_eq(s->id, o->id)) continue;
      if (o->role != s->role || strcmp(o->mspid, s->mspid) != 0) {
        rc = FL_EINVAL;  /* one identity, two descriptions */
        goto fail;
      }
      dup = true;
    }
    if (dup) continue;
    uint32_t g = find_group(p, s->mspid);
    if (g == UINT32_MAX) continue;
    e.cnt[g * FL_POLICY_ROLE_COUNT + s->role]++;
    e.tot[g]++;
  }
  dp(&e, p->root, &root);
  rc = e.rc;
  if (rc == FL_OK) *satisfied = root.n > 0;
fail:
  vset_free(&root);
  fl_free(e.cnt);
  fl_free(e.tot);
  fl_free(e.gsum);
  fl_free(e.tmp);
  return rc;
}

fl_status_t fl_policy_plan(const fl_policy_t *p, const fl_policy_org_t *orgs,
                           size_t norgs, fl_policy_need_t **needs /* out */,
                           size_t *nneeds /* out */) {
  if (needs == NULL || nneeds == NULL) return FL_EINVAL;
  *needs = NULL;
  *nneeds = 0;
  if (p == NULL || (norgs > 0 && orgs == NULL)) return FL_EINVAL;
  if (p->symbolic) return FL_ESTATE;
  if (norgs > FL_POLICY_MAX_ORGS) return FL_EINVAL;
  for (size_t i = 0; i < norgs; i++) {
    if (orgs[i].mspid == NULL) return FL_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(orgs[i].mspid, orgs[j].mspid) == 0) return FL_EINVAL;
  }
  uint32_t G = p->ngroups;
  uint32_t *supply = fl_calloc(G, sizeof(uint32_t));
  size_t *org_of = fl_calloc(G, sizeof(size_t));    /* group -> org index */
  uint32_t *order = fl_calloc(G, sizeof(uint32_t));
  uint32_t *ident = fl_calloc(G, sizeof(uint32_t));
  uint32_t no = 0;
  for (uint32_t g = 0; g < G; g++) {
    ident[g] = g;
    org_of[g] = SIZE_MAX;
  }
  for (size_t i = 0; i < norgs; i++) {
    uint32_t g = find_group(p, orgs[i].mspid);
    if (g == UINT32_MAX) continue;
    org_of[g] = i;
    supply[g] = orgs[i].peers;
    order[no++] = g;
  }
  for (uint32_t g = 0; g < G; g++)
    if (org_of[g] == SIZE_MAX) order[no++] = g;
  eng e = {
      .K = G, .G = G, .dim_group = ident, .plan = true, .supply = supply,
      .order = order, .gwords = p->gwords, .rc = FL_OK,
  };
  e.tmp = fl_calloc(G, sizeof(uint16_t));
  vset root = {0};
  dp(&e, p->root, &root);
  fl_status_t rc = e.rc;
  if (rc == FL_OK && root.n == 0) rc = FL_NOTFOUND;
  if (rc == FL_OK) {
    const uint16_t *best = root.v;
    for (size_t i = 1; i < root.n; i++)
      if (keycmp(&e, root.v + i * G, best) < 0) best = root.v + i * G;
    fl_policy_need_t *out = fl_calloc(G, sizeof(*out));
    size_t k = 0;
    for (uint32_t i = 0; i < G; i++) {
      uint32_t g = order[i];
      if (best[g] == 0) continue;
      FL_ASSERT(org_of[g] != SIZE_MAX);
      out[k++] = (fl_policy_need_t){.org = org_of[g], .peers = best[g]};
    }
    *needs = out;
    *nneeds = k;
  }
  vset_free(&root);
  fl_free(e.tmp);
  fl_free(ident);
  fl_free(order);
  fl_free(org_of);
  fl_free(supply);
  return rc;
}
