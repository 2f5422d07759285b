/* SPDX-License-Identifier: Apache-2.0
 *
 * sim.h: deterministic simulation of N PBFT replicas in one process.
 *
 * A seeded xoshiro256** PRNG drives everything: when clients submit, which
 * messages the network drops, delays (and so reorders) or duplicates, which
 * partitions form and when they heal, when replicas crash. Time is virtual
 * (milliseconds). Signatures are a keyed 64-bit hash per replica (cheap,
 * but a message altered or signed with another replica's key fails), digests
 * are real SHA-256. The harness checks, as it runs:
 *   safety   - every correct replica delivers the same header hash at every
 *              block height and the same state digest at every seq; every
 *              delivered block verifies with >= 2f+1 orderer signatures;
 *              no replica delivers a tx id twice within dedup_window
 *              blocks (further apart it is ordered again, as
 *              docs/ordering.md section 10 says);
 *   liveness - once the network has healed, every submitted request is
 *              delivered exactly once by every correct replica before t_max.
 */
#ifndef FL_TESTS_PBFT_SIM_H
#define FL_TESTS_PBFT_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "orderer/pbft/pbft.h"

#define SIM_MAXN 16

typedef enum sim_byz_e {
  SIM_HONEST = 0,
  SIM_SILENT,     /* sends nothing at all                                 */
  SIM_EQUIVOCATE, /* as primary, sends conflicting pre-prepares           */
  SIM_BADSIG,     /* corrupts every signature, sends garbage and forgeries */
  SIM_REPLAY,     /* honest, but also replays its old messages             */
  SIM_CENSOR,     /* honest, but drops every FORWARD it receives: as primary
                   * it orders only what clients submit to it directly     */
} sim_byz_t;

typedef struct sim_crash_s {
  uint32_t replica;
  uint64_t at;          /* crash time (ms)                      */
  uint64_t restart_at;  /* 0 = stays down                       */
} sim_crash_t;

typedef struct sim_opts_s {
  uint32_t n;
  uint64_t seed;
  uint32_t nreq;         /* client requests                         */
  double drop, dup;      /* per-message probabilities before heal   */
  uint32_t dmin, dmax;   /* delay range (ms), always                */
  uint32_t npart;        /* random partitions before heal           */
  uint64_t heal_at;      /* network reliable from here on           */
  uint64_t t_max;        /* liveness deadline                       */
  uint64_t isolate_until;  /* replica `isolate` cut off until then (0: none) */
  uint32_t isolate;
  sim_byz_t byz[SIM_MAXN];
  sim_crash_t crash[4];
  uint32_t ncrash;
  bool partial_crash;    /* a crash applies only a prefix of the last actions */
  bool skip_redundant;   /* drop what fl_pbft_redundant calls redundant, as the orderer does */
  /* Routing (route_every > 0): request q goes once to route_rare if
   * q % route_every == 0, else to route_main, Byzantine or not; no random
   * replica and no second copy. */
  uint32_t route_every, route_main, route_rare;
  bool no_retry;         /* clients never resubmit what nobody delivered */
  bool single_submit;    /* no request is submitted a second time elsewhere
                          * (with a small dedup_window, a late second copy
                          * is ordered again, as docs/ordering.md section 10
                          * says) */
  /* Host pruning (0: keep everything): on TRUNCATE n, COMMITTED records
   * below min(n, last record) - retention are deleted, as the orderer does
   * with storage.committed_retention. A replica that then receives a block
   * above its next height takes the blocks in between from what correct
   * replicas delivered (the orderer's block sync). */
  uint64_t retention;
  fl_pbft_config_t cfg;  /* n and self are filled in per replica */
} sim_opts_t;

typedef struct sim_result_s {
  bool ok;
  char why[512];
  uint64_t end_ms;
  uint64_t blocks;       /* highest block height delivered */
  uint64_t messages;     /* network sends                  */
  fl_pbft_stats_t stats[SIM_MAXN];
  fl_pbft_info_t info[SIM_MAXN];
} sim_result_t;

/** Random network faults for `seed` (N replicas, all honest). */
void sim_opts_random(uint32_t n, uint64_t seed, sim_opts_t *o);

/** Runs one simulation; fills *res. */
void sim_run(const sim_opts_t *o, sim_result_t *res);

/** The ops a simulated replica `id` uses (for tests that call the codec). */
fl_pbft_ops_t sim_ops(uint32_t id);

#endif /* FL_TESTS_PBFT_SIM_H */
