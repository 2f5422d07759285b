/* SPDX-License-Identifier: Apache-2.0
 *
 * proxy.h: a lying orderer for the peer's failover test. It listens with
 * an orderer's TLS identity, forwards Orderer/Deliver and Orderer/Broadcast
 * to a real orderer, and tampers the Deliver stream from block number
 * `from` on: PX_BAD_SIG flips a bit in every orderer signature of those
 * blocks (too few valid signatures), PX_SKIP drops the first such block so
 * the next one does not link. PX_EAT_BROADCAST instead censors: every
 * Broadcast is acknowledged (status OK) and dropped, Deliver passes. It
 * runs its own libuv loop on its own thread.
 */
#ifndef FL_TESTS_INTEGRATION_PEER_PROXY_H
#define FL_TESTS_INTEGRATION_PEER_PROXY_H

#include <stdint.h>

#include "common/base/status.h"
#include "tests/integration/peer/harness.h"

typedef enum px_mode_e {
  PX_PASS = 0,
  PX_BAD_SIG = 1,
  PX_SKIP = 2,
  PX_EAT_BROADCAST = 3
} px_mode_t;

typedef struct px_s px_t;

/** Starts a proxy in front of orderer `up` of net. Returns FL_OK with *out
 *  (px_stop) listening on px_port(*out). */
fl_status_t px_start(pn_net_t *net, int up, px_mode_t mode, uint64_t from, px_t **out);
uint16_t px_port(const px_t *px);
/** Blocks tampered (or dropped), or Broadcasts eaten, so far. Any thread. */
uint32_t px_tampered(px_t *px);
/** Stops the proxy, joins its thread, frees it. NULL-safe. */
void px_stop(px_t *px);

#endif /* FL_TESTS_INTEGRATION_PEER_PROXY_H */
