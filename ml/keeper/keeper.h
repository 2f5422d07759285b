/* SPDX-License-Identifier: Apache-2.0
 *
 * keeper.h: fedledger-keeper, the round keeper of one FL task
 * (docs/edge.md, "Round keeper").
 *
 * The keeper follows the task's open round (UpdateSubmitted / RoundClosed
 * events, with GetRound and ListUpdates as the truth and as the fallback
 * when events are lost) and submits CloseRound once the round has enough
 * accepted updates (the task's min_updates, at least 1) or its deadline
 * (deadline_ts + grace) has passed. It runs with an admin or peer identity
 * of any organisation (the chaincode allows nothing else to close).
 *
 * Duplicates are harmless by construction: CloseRound of a CLOSED round
 * writes nothing, and of two CloseRounds of one OPEN round in one block the
 * second is invalidated by MVCC; the keeper logs both at INFO ("closed by
 * another keeper") and moves on.
 *
 * It lives in ml/keeper (not in peer/): it is an FL-aware client of the
 * Gateway SDK, needs nothing of the peer's internals, and must be runnable
 * by any organisation next to or away from its peers; it shares the edge's
 * settings machinery and ledger session (ml/edge/opts.h, ledger.h).
 */
#ifndef FL_ML_KEEPER_KEEPER_H
#define FL_ML_KEEPER_KEEPER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/base/status.h"
#include "ml/edge/opts.h"

typedef enum fl_keeper_action_e {
  FL_KEEPER_WAIT = 0,           /* not yet: wait (at most *wait_ms) */
  FL_KEEPER_CLOSE_ENOUGH = 1,   /* accepted >= max(min_updates, 1) */
  FL_KEEPER_CLOSE_DEADLINE = 2, /* now >= deadline_ts + grace */
  FL_KEEPER_CLOSED = 3,         /* the round is already CLOSED: nothing to do */
} fl_keeper_action_t;

/** What the keeper knows about a round. */
typedef struct fl_keeper_view_s {
  bool open;
  uint64_t accepted;            /* ACCEPTED updates recorded in the round */
  uint64_t min_updates;         /* the task's */
  uint64_t deadline_ts;         /* ms since the epoch */
} fl_keeper_view_t;

/** The decision function: pure. now_ms is the keeper's wall clock,
 *  grace_ms the margin added to the deadline (the chaincode compares the
 *  deadline with the proposal's timestamp, which is this clock). wait_ms
 *  (optional) gets, for WAIT, the time until the deadline passes. */
fl_keeper_action_t fl_keeper_decide(const fl_keeper_view_t *v, uint64_t now_ms, uint64_t grace_ms,
                                    uint64_t *wait_ms /* out, optional */);

/** "wait", "close-enough", "close-deadline", "closed". */
const char *fl_keeper_action_name(fl_keeper_action_t a);

/** Settings of fedledger-keeper. Strings owned (fl_keeper_cfg_free). */
typedef struct fl_keeper_cfg_s {
  char *mspid, *msp_dir, *tls_dir, *tls_ca;
  char *gateway, *server_name, *channel, *events;
  uint64_t call_timeout_ms, commit_timeout_ms, backoff_min_ms, backoff_max_ms, poll_ms;
  char *task;
  uint64_t grace_ms;
  uint64_t rounds;              /* stop after this many rounds closed (by anyone); 0 = never */
  char *log;
} fl_keeper_cfg_t;

/** The settings table of fedledger-keeper. */
const fl_edge_opt_t *fl_keeper_cfg_table(void);

/** Loads and checks settings (see fl_edge_cfg_load). */
fl_status_t fl_keeper_cfg_load(int argc, char *const *argv, fl_keeper_cfg_t *out /* out */,
                               bool *help /* out */, char **err /* out */);
/** Frees the strings of c. NULL-safe. */
void fl_keeper_cfg_free(fl_keeper_cfg_t *c);

/** Runs the keeper until `rounds` rounds are closed or *stop is set.
 *  Returns FL_OK, FL_ECONFIG (identity, settings, or an identity the
 *  chaincode does not let close rounds), or another failure. */
fl_status_t fl_keeper_run(const fl_keeper_cfg_t *cfg, volatile sig_atomic_t *stop);

/** main() of fedledger-keeper (0 done, 1 failure, 2 configuration). */
int fl_keeper_main(int argc, char **argv);

#endif /* FL_ML_KEEPER_KEEPER_H */
