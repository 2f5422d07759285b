/* SPDX-License-Identifier: Apache-2.0
 *
 * fxnet.h: helpers shared by the fault tests (tests/faults) on top of the
 * peer integration harness (tests/integration/peer/harness.h): a load
 * thread, probes, heights, the orderers' chains and the "no fork, nothing
 * lost" checks.
 *
 * Threads: the load runs on its own thread; everything else on the
 * caller's.
 */
#ifndef FL_TESTS_FAULTS_FXNET_H
#define FL_TESTS_FAULTS_FXNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "tests/integration/peer/harness.h"

/** Peer i's ledger height (Peer/ChainInfo), 0 when it does not answer. */
uint64_t fx_peer_height(pn_net_t *net, int i);

/** Orderer i's chain, read with Orderer/Deliver OLDEST..NEWEST on its real
 *  port: *height blocks, their header hashes (32 bytes each) appended to
 *  hashes when not NULL. Each block is decoded with common/protoutil. */
fl_status_t fx_orderer_chain(pn_net_t *net, int i, fl_sbuf_t *hashes, uint64_t *height);

/** One kvstore put through peer `peer`'s gateway must commit VALID within
 *  timeout_ms (retried on refusals and unreachable orderers until then).
 *  *ms gets the time it took. FL_OK, or the last failure. */
fl_status_t fx_probe(pn_net_t *net, int peer, uint32_t timeout_ms, uint64_t *ms);

/** Waits until every peer in mask (bit i = peer i) answers the same height
 *  twice 300 ms apart; returns it, or 0 after timeout_ms. */
uint64_t fx_settle(pn_net_t *net, unsigned mask, uint32_t timeout_ms);

/** No fork: blocks [0, h) have the same header hash and the same
 *  validation codes on every peer of mask (their orderer signatures may
 *  differ: each peer keeps those its orderer delivered), and
 *  every running orderer of omask holds at least h blocks whose header
 *  hashes equal the peers' and each other's over their common length.
 *  FL_OK or FL_ECONFLICT with a reason printed. */
fl_status_t fx_check_agree(pn_net_t *net, unsigned mask, unsigned omask, uint64_t h);

/** The kvstore state of peers a and b (a full range query) is identical;
 *  *n gets the length of the answer. */
fl_status_t fx_same_state(pn_net_t *net, int a, int b, size_t *n);

/** SIGKILL orderer i and reap it (no-op when not running). */
void fx_kill_orderer(pn_net_t *net, int i);

/** A load thread: batches of `batch` kvstore puts (keys <tag>/<n>/<k>),
 *  `inflight` at once, through the gateways of peers 0 and 2 in turn
 *  (pn_load). */
typedef struct fx_load_s fx_load_t;
fx_load_t *fx_load_start(pn_net_t *net, const char *tag, uint32_t batch, uint32_t inflight);
/** Waits until the current batch is done and holds the next one. */
void fx_load_pause(fx_load_t *l);
void fx_load_resume(fx_load_t *l);
/** Stops and joins; the VALID and failed counts. NULL-safe. */
void fx_load_stop(fx_load_t *l, uint32_t *valid, uint32_t *failed);

/** The n-th percentile (0..100) of v[0..k) (sorted in place). */
uint64_t fx_pct(uint64_t *v, size_t k, double p);

#endif /* FL_TESTS_FAULTS_FXNET_H */
