/* SPDX-License-Identifier: Apache-2.0
 *
 * policy.h: the endorsement policy language of fedledger.
 *
 * A policy is text in Fabric's signature-policy syntax plus two shorthands:
 *
 *   AND('Org1MSP.peer', OR('Org2MSP.peer', 'Org3MSP.admin'))
 *   OutOf(2, 'Org1MSP.peer', 'Org2MSP.peer', 'Org3MSP.peer')
 *   MAJORITY            more than half of the network's organisations
 *   ANY                 at least one of the network's organisations
 *
 * (grammar, semantics and examples: docs/policy.md). The life of a policy:
 *
 *   1. fl_policy_parse() checks the syntax and builds an immutable tree. If
 *      the text uses MAJORITY or ANY, the tree is *symbolic*: it cannot be
 *      evaluated until it is compiled against a list of organisations.
 *   2. fl_policy_compile() expands MAJORITY/ANY into OutOf/OR over
 *      'OrgMSP.peer' principals, one per organisation, and checks that every
 *      principal names an organisation of the list.
 *   3. fl_policy_evaluate() decides whether a set of verified signers
 *      satisfies the policy (validation); fl_policy_plan() picks the fewest
 *      endorsing peers, by organisation, that would satisfy it (gateway).
 *   4. fl_policy_to_string() gives the canonical text (logs, config).
 *
 * Evaluation semantics: an identity is used at most once. Signers with the
 * same identity bytes are one signer, and one signer can stand for only one
 * principal in the whole satisfying selection, so AND('A.peer', 'A.peer')
 * needs two different peers of A. Unlike Fabric's greedy left-to-right
 * assignment, the evaluator finds an assignment whenever one exists, so the
 * answer does not depend on the order of principals or signers.
 *
 * Thread safety: a policy is immutable after parse/compile; any number of
 * threads may evaluate, plan and print the same policy at once. Each call
 * allocates its own scratch memory.
 */
#ifndef FL_PEER_POLICY_POLICY_H
#define FL_PEER_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

/* Limits that keep hostile text from exhausting stack, memory or time. */
#define FL_POLICY_MAX_TEXT 16384     /* bytes of policy text */
#define FL_POLICY_MAX_DEPTH 32       /* nesting levels, a leaf counts as one */
#define FL_POLICY_MAX_NODES 1024     /* elements, also after MAJORITY/ANY expansion */
#define FL_POLICY_MAX_PRINCIPAL 255  /* bytes between the quotes */
#define FL_POLICY_MAX_ORGS 256       /* organisations in a compile/plan list */
#define FL_POLICY_MAX_SIGNERS 1024   /* signers passed to one evaluation */

/** Roles, as carried in a certificate's OU (Fabric NodeOUs). As a principal,
 *  MEMBER matches a signer of any role of that organisation. As a signer
 *  role, MEMBER means "no specific role" and matches only MEMBER principals. */
typedef enum fl_policy_role_e {
  FL_POLICY_ROLE_MEMBER = 0,
  FL_POLICY_ROLE_PEER = 1,
  FL_POLICY_ROLE_ADMIN = 2,
  FL_POLICY_ROLE_CLIENT = 3,
  FL_POLICY_ROLE_ORDERER = 4,
} fl_policy_role_t;

#define FL_POLICY_ROLE_COUNT 5

/** Opaque, immutable policy. Free with fl_policy_free. */
typedef struct fl_policy_s fl_policy_t;

/** One verified signer. All fields are borrowed for the duration of the call.
 *  id: bytes that identify the identity (e.g. the certificate's SHA-256 or
 *  DER bytes); two signers with equal id are the same identity and count
 *  once. Must not be empty. */
typedef struct fl_policy_signer_s {
  const char *mspid;
  fl_policy_role_t role;
  fl_buf_t id;
} fl_policy_signer_t;

/** An organisation offered to fl_policy_plan: its MSP id (borrowed) and how
 *  many of its peers are available to endorse. */
typedef struct fl_policy_org_s {
  const char *mspid;
  uint32_t peers;
} fl_policy_org_t;

/** One line of a plan: ask `peers` distinct peers of orgs[org] to endorse. */
typedef struct fl_policy_need_s {
  size_t org;       /* index into the orgs array given to fl_policy_plan */
  uint32_t peers;
} fl_policy_need_t;

/** Returns the lowercase name of a role ("peer"), or "?" if out of range. */
const char *fl_policy_role_name(fl_policy_role_t role);

/** Parses policy text (len bytes, need not be NUL-terminated). Keywords and
 *  roles are case-insensitive; MSP ids are case-sensitive.
 *  On success returns FL_OK and *out (owned, fl_policy_free) and sets *err to
 *  NULL. On failure *out is NULL and, if err is not NULL, *err is an owned
 *  message (fl_free) of the form "policy: column 12: expected ...".
 *  Returns FL_EINVAL (NULL text/out), FL_EMALFORMED (syntax, bad OutOf
 *  count, bad principal), FL_ETOOBIG (a limit above exceeded). */
fl_status_t fl_policy_parse(const char *text, size_t len,
                            fl_policy_t **out /* out */,
                            char **err /* out, optional */);

/** Compiles p against the network's organisations (orgs: norgs borrowed MSP
 *  ids, in the network's order, no duplicates). MAJORITY becomes
 *  OutOf(norgs/2+1, 'O1.peer', ...) and ANY becomes OR('O1.peer', ...).
 *  When norgs > 0 every principal must name an organisation of the list.
 *  When norgs == 0, a policy without MAJORITY/ANY compiles to a copy and a
 *  policy with them fails. p is borrowed and unchanged.
 *  Returns FL_OK and *out (owned, fl_policy_free), or with *out NULL and *err
 *  as in fl_policy_parse: FL_EINVAL (NULL args, bad or duplicate org id,
 *  more than FL_POLICY_MAX_ORGS), FL_ECONFIG (unknown organisation,
 *  MAJORITY/ANY without a list), FL_ETOOBIG (too many elements after
 *  expansion). */
fl_status_t fl_policy_compile(const fl_policy_t *p, const char *const *orgs,
                              size_t norgs, fl_policy_t **out /* out */,
                              char **err /* out, optional */);

/** fl_policy_parse followed by fl_policy_compile (same codes and rules). */
fl_status_t fl_policy_new(const char *text, size_t len,
                          const char *const *orgs, size_t norgs,
                          fl_policy_t **out /* out */,
                          char **err /* out, optional */);

/** True when p still contains MAJORITY or ANY and so must be compiled
 *  before fl_policy_evaluate or fl_policy_plan. */
bool fl_policy_is_symbolic(const fl_policy_t *p);

/** Returns the canonical text of p (owned, fl_free): keywords AND, OR,
 *  OutOf, MAJORITY, ANY; principals in single quotes with lowercase roles;
 *  ", " between arguments. Parsing it gives back an equal policy. */
char *fl_policy_to_string(const fl_policy_t *p);

/** Decides whether the signers satisfy p. Signers are borrowed; their
 *  signatures must already have been verified. Duplicates (same id) count
 *  once; signers of organisations the policy does not name are ignored.
 *  Deterministic: the result depends only on p and the set of signers.
 *  Returns FL_OK with *satisfied set; FL_EINVAL (NULL args, a signer with
 *  NULL mspid, empty id or bad role, or one id given with two different
 *  mspid/role pairs); FL_ESTATE (p is symbolic); FL_ETOOBIG (more than
 *  FL_POLICY_MAX_SIGNERS signers, or a pathological policy whose search
 *  exceeds the fixed work budget; the same on every peer). On error
 *  *satisfied is false. */
fl_status_t fl_policy_evaluate(const fl_policy_t *p,
                               const fl_policy_signer_t *signers, size_t n,
                               bool *satisfied /* out */);

/** Chooses endorsers for p: the smallest number of distinct peers, taken
 *  from orgs (borrowed; in order of preference, e.g. the gateway's own
 *  organisation first), whose endorsements would satisfy p. A peer satisfies
 *  '<org>.peer' and '<org>.member' principals. Among plans with equally few
 *  peers the one that leans on earlier organisations wins (lexicographic on
 *  the per-organisation counts in preference order).
 *  Returns FL_OK with *needs (owned, fl_free; one entry per organisation
 *  used, in the order of orgs) and *nneeds; FL_NOTFOUND when the available
 *  peers cannot satisfy p; FL_EINVAL (NULL args, NULL/duplicate mspid, more
 *  than FL_POLICY_MAX_ORGS); FL_ESTATE (symbolic p); FL_ETOOBIG (work
 *  budget). On error *needs is NULL and *nneeds 0. */
fl_status_t fl_policy_plan(const fl_policy_t *p, const fl_policy_org_t *orgs,
                           size_t norgs, fl_policy_need_t **needs /* out */,
                           size_t *nneeds /* out */);

/** Frees p. NULL is fine. */
void fl_policy_free(fl_policy_t *p);

#endif /* FL_PEER_POLICY_POLICY_H */
