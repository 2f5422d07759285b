/* SPDX-License-Identifier: Apache-2.0
 *
 * lat.h: stage timestamps of a transaction's way through the network, for
 * latency analysis (docs/ordering.md, "Latency of a quiet transaction").
 *
 * FL_LAT(fmt, ...) writes a DEBUG line of module "lat" that starts with
 * `us=<CLOCK_REALTIME microseconds>`, so the lines of the orderers, peers
 * and clients running on one machine merge into one timeline (sort by us).
 * Enable with the log spec "<level>,lat=debug" (or FEDLEDGER_LOG); when it
 * is off a line costs one branch (FL_LOG tests the level before the
 * arguments, the clock read included, are evaluated). The clock read is for
 * the log line only and never influences what a component does, so it may
 * sit in the PBFT core too.
 *
 * Threads: any.
 */
#ifndef FL_NET_LAT_H
#define FL_NET_LAT_H

#include <time.h>

#include "common/base/log.h"

/** Wall clock in microseconds since the Unix epoch. */
static inline unsigned long long fl_lat_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
}

#define FL_LAT(fmt, ...) FL_DEBUG("lat", "us=%llu " fmt, fl_lat_us(), __VA_ARGS__)

#endif /* FL_NET_LAT_H */
