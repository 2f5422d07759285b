/* SPDX-License-Identifier: Apache-2.0
 *
 * sigcache.h: a small cache of signatures this node has already verified,
 * so that no (message, identity, signature) triple is checked twice (the
 * signature budget of issue 4: the client signature a gateway verified, an
 * endorser's own endorsement, an envelope signature checked at Submit are
 * all seen again by the committer).
 *
 * Key = SHA-256(SHA-256(message) || SHA-256(serialized identity) ||
 * signature bytes): the exact digest, the exact identity (MSP id and
 * certificate) and the exact signature bytes, never a tx id. A hit means
 * this very signature over this very message by this very certificate was
 * verified before; what can change since then is re-checked on every hit:
 * the revocation list (fl_msp_is_revoked), the certificate's expiry and the
 * required role. A miss runs fl_msp_verify_signature and, on success,
 * remembers the result.
 *
 * The table is 4-way set associative with a fixed number of entries (a
 * full set replaces its entries in turn), so memory stays fixed and a
 * lookup is one hash and at most four compares.
 *
 * Threads: every function may be called from any number of threads at once
 * (one mutex guards the table; signature checks run outside it).
 */
#ifndef FL_PEER_NODE_SIGCACHE_H
#define FL_PEER_NODE_SIGCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/msp.h"

typedef struct fl_sigcache_s fl_sigcache_t;

/** Creates a cache of `capacity` entries (rounded up to a power of two, 4-way set associative;
 *  0 = 16384) in front of msp (borrowed; must outlive the cache). Returns an
 *  owned cache (fl_sigcache_free). Never NULL. */
fl_sigcache_t *fl_sigcache_new(fl_msp_t *msp, size_t capacity);

/** Frees c. NULL is fine. */
void fl_sigcache_free(fl_sigcache_t *c);

/** Verifies sig over the concatenation parts[0] || ... || parts[nparts-1]
 *  by the serialized identity sid, requiring role `required` (FL_ROLE_NONE:
 *  any), through the cache. Borrows everything. info (optional) receives
 *  what the MSP learnt (on a hit: mspid, role, cert_sha256, not_after;
 *  reason "ok"). Returns what fl_msp_verify_signature returns: FL_OK,
 *  FL_EBADSIG, FL_EUNTRUSTED (also: expired since it was cached),
 *  FL_EREVOKED, FL_EPERM (wrong role), FL_EMALFORMED, FL_EINVAL (nparts 0
 *  or more than 4). */
fl_status_t fl_sigcache_verify(fl_sigcache_t *c, fl_buf_t sid, const fl_buf_t *parts,
                               size_t nparts, fl_buf_t sig, fl_role_t required,
                               fl_msp_info_t *info /* out, optional */);

/** Records that sig over parts by sid is valid without checking it: for
 *  signatures this node made itself with its own key (its endorsements), so
 *  that the committer does not verify them again. info is what the MSP says
 *  about this node's own identity (from an earlier fl_msp_validate).
 *  Borrows everything. */
void fl_sigcache_add(fl_sigcache_t *c, fl_buf_t sid, const fl_buf_t *parts, size_t nparts,
                     fl_buf_t sig, const fl_msp_info_t *info);

/** Counters: hits (verifications saved), misses (verifications run),
 *  inserts. Any thread. */
void fl_sigcache_stats(fl_sigcache_t *c, uint64_t *hits /* out */, uint64_t *misses /* out */,
                       uint64_t *inserts /* out */);

#endif /* FL_PEER_NODE_SIGCACHE_H */
