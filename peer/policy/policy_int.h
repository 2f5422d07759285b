/* SPDX-License-Identifier: Apache-2.0
 *
 * policy_int.h: the policy tree shared by the parser/compiler
 * (policy_parse.c) and the evaluator/planner (policy_eval.c).
 *
 * Invariants of a policy:
 *   1. the tree has at most FL_POLICY_MAX_NODES nodes and depth at most
 *      FL_POLICY_MAX_DEPTH + 1 (MAJORITY/ANY expansion adds one level), so
 *      every recursive walk is bounded;
 *   2. every OutOf node has 1 <= n <= nchild; AND has n == nchild >= 1;
 *      OR has n == 1 <= nchild;
 *   3. symbolic == the tree contains a MAJORITY or ANY node;
 *   4. when !symbolic, the "finalize" tables are filled: groups (distinct
 *      MSP ids in pre-order of first appearance), principals (distinct
 *      (group, role) pairs), and for each node `closed`, the bitmap of groups
 *      all of whose leaves lie inside that node's subtree.
 */
#ifndef FL_PEER_POLICY_POLICY_INT_H
#define FL_PEER_POLICY_POLICY_INT_H

#include <stdint.h>

#include "peer/policy/policy.h"

typedef enum fl__pkind_e {
  FL__P_AND,
  FL__P_OR,
  FL__P_OUTOF,
  FL__P_MAJORITY,
  FL__P_ANY,
  FL__P_PRINCIPAL,
} fl__pkind_t;

typedef struct fl__pnode_s {
  fl__pkind_t kind;
  uint32_t col;                  /* 1-based column in the source text */
  uint32_t n;                    /* threshold (AND: nchild, OR: 1) */
  uint32_t nchild;
  struct fl__pnode_s **child;    /* owned */
  /* principal */
  char *mspid;                   /* owned, NUL-terminated */
  fl_policy_role_t role;
  /* filled by finalize */
  struct fl__pnode_s *parent;
  uint32_t depth;                /* root = 0 */
  uint32_t group;                /* principal: index into groups */
  uint32_t prin;                 /* principal: index into principals */
  uint64_t *closed;              /* owned, gwords words */
} fl__pnode_t;

struct fl_policy_s {
  fl__pnode_t *root;
  uint32_t nnodes;
  bool symbolic;
  /* finalize tables (invariant 4) */
  uint32_t ngroups;
  const char **groups;           /* views into the leaves' mspid */
  uint32_t gwords;               /* 64-bit words per group bitmap */
  uint32_t nprins;
  uint32_t *prin_group;
  fl_policy_role_t *prin_role;
};

static inline bool fl__bit(const uint64_t *bm, uint32_t i) {
  return (bm[i / 64] >> (i % 64)) & 1u;
}

#endif /* FL_PEER_POLICY_POLICY_INT_H */
