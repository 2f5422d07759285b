/* SPDX-License-Identifier: Apache-2.0
 *
 * server.h: the "server" side of one FL run in fl_bench (steps 3-5 of
 * run_one: the updates travel as blobs, the outlier filter decides, the rule
 * aggregates and the global model moves), behind one interface with two
 * implementations:
 *
 *   plain  (server_plain.c)   in this process, as the runner always did;
 *   ledger (server_ledger.c)  through a live fedledger network: every
 *          client's update is a SubmitUpdate signed with that client's own
 *          identity, the round is closed with CloseRound (as the round
 *          keeper does), and the new global model is read back from the
 *          ledger (GetModel + GetBlob) and its hash checked.
 *
 * Local training stays in run_one, identical for both, so the two give the
 * same models whenever their acceptance rule and aggregation agree: the
 * plain server with filter rule "ledger" calls the chaincode's own
 * fl_mlu_score_update (chaincode/mlupdate/score.h) with the same
 * references, and the ledger server also runs a plain server on the same
 * updates ("shadow") and counts every round where the two differ.
 *
 * Pipelining: run_one hands each update that is final when its client's
 * training ends to fl_bsrv_submit_early at once (as an edge client submits
 * when it is done); the ledger server sends it while later clients train,
 * and fl_bsrv_round submits the rest (update attackers') and closes.
 *
 * Ownership: a server is created once per process (fl_bsrv_*_new), starts
 * a task per run (fl_bsrv_begin) and is freed with fl_bsrv_free. Every
 * function dies (exit 2 with a message) on an error: a benchmark that
 * silently continues after a failed transaction would report nonsense.
 */
#ifndef FL_BENCH_FL_SERVER_H
#define FL_BENCH_FL_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "chaincode/mlupdate/score.h"
#include "ml/agg.h"
#include "ml/tensor.h"

/** Which reference the norm z-score filter uses in the plain server. */
typedef enum fl_bsrv_filter_rule_e {
  FL_BSRV_FILTER_ROUND = 0,  /* this round's norms (the runner's original rule) */
  FL_BSRV_FILTER_LEDGER = 1, /* mlupdate's: previous rounds' accepted norms */
} fl_bsrv_filter_rule_t;

/** What a run asks of the server. Borrowed by fl_bsrv_begin (copied). */
typedef struct fl_bsrv_task_s {
  const char *label;             /* for the task id and messages */
  const fl_ml_tensors_t *model;  /* initial global model (layout + values) */
  uint32_t n_clients;
  const double *samples;         /* n_clients: each client's row count */
  const uint8_t *rows_hash;      /* n_clients x 32: fl_edge_rows_hash of each
                                    client's rows (data-batch hash), or NULL */
  fl_ml_rule_t rule;
  uint32_t f;                    /* Byzantine count before lowering */
  double clip_norm;
  fl_bsrv_filter_rule_t filter_rule;
  /* FL_BSRV_FILTER_ROUND: NAN = off. */
  double round_z, round_cos;
  /* FL_BSRV_FILTER_LEDGER (and always on the ledger): the task's filter. */
  fl_mlu_filter_t filter;
  uint32_t norm_window;          /* 1..64 */
  /* CloseRound's pre-filters (task fields collusion, median_cosine); they
   * must equal the run's fl_ml_agg_opts_t for plain and ledger to agree. */
  double collusion;              /* 0 = off */
  double median_cosine;          /* -1 = off */
} fl_bsrv_task_t;

/** One round. */
typedef struct fl_bsrv_round_s {
  /* in */
  uint32_t round;
  const float *updates;          /* n_clients x n_params, client k = row k */
  const fl_ml_agg_opts_t *ag;    /* the run's aggregation options (f before
                                    lowering); plain passes it to
                                    fl_ml_aggregate whole */
  /* in/out */
  float *global;                 /* the round's start model in, the new one out */
  /* out (arrays of n_clients, allocated by the caller) */
  uint8_t *accepted;             /* passed every check of the server */
  uint8_t *selected;             /* entered the aggregate */
  uint32_t n_accepted;
  double bytes;                  /* bytes moved this round (see bench/README.md) */
  double server_ms;              /* wall time of the round's server part (ledger:
                                    fl_bsrv_round plus the caller's time inside
                                    this round's fl_bsrv_submit_early calls) */
  double agg_ms;                 /* plain: fl_ml_aggregate alone; ledger: = server_ms */
  double plain_ms;               /* ledger: the shadow plain server's time */
  double plain_bytes;            /* ledger: the shadow plain server's bytes */
} fl_bsrv_round_t;

typedef struct fl_bsrv_s fl_bsrv_t;

/** The in-process server. */
fl_bsrv_t *fl_bsrv_plain_new(void);
/** The ledger server: net_file is what bench/fl/ledger_net.sh wrote (peers,
 *  organisations, identities). Connects every client identity now. */
fl_bsrv_t *fl_bsrv_ledger_new(const char *net_file, uint32_t n_clients);

/** Starts a run (a new task on the ledger). */
void fl_bsrv_begin(fl_bsrv_t *s, const fl_bsrv_task_t *t);
/** Early submission (pipelining): client k's update for round `round` is
 *  final now, while later clients are still training; call it right after
 *  client k's local training when nothing will change the update any more
 *  (honest clients, label-flip clients: not the clients of update attacks).
 *  update: n_params floats, copied; the same values must be row k of
 *  fl_bsrv_round's updates (checked by the ledger server, which dies if
 *  not). The ledger server builds and signs the SubmitUpdate here and sends
 *  it from a background thread that runs its network loop until
 *  fl_bsrv_round, which submits the clients not sent early, waits for all
 *  and closes the round as before. The plain server ignores it (its
 *  in-process work stays in fl_bsrv_round). At most once per client and
 *  round; round must be the next fl_bsrv_round's. Call from the thread
 *  that calls fl_bsrv_round. */
void fl_bsrv_submit_early(fl_bsrv_t *s, uint32_t round, uint32_t k, const float *update);
/** Runs one round. */
void fl_bsrv_round(fl_bsrv_t *s, fl_bsrv_round_t *r);
/** fl-round: one round's download and training timed alone (nothing of the
 *  ledger in flight), the same work the ledger round overlaps with its early
 *  submissions; the summary's train_ms_plain is their mean. */
void fl_bsrv_note_solo(fl_bsrv_t *s, double ms);
/** Ends the run (frees its state; the server stays usable). */
void fl_bsrv_end(fl_bsrv_t *s);
/** Frees. NULL-safe. */
void fl_bsrv_free(fl_bsrv_t *s);

/** Ledger: rounds whose result differed from the shadow plain server
 *  (accepted set, selection or new model bytes); rounds whose model hash
 *  read back did not match the blob; 0 for plain. */
uint64_t fl_bsrv_mismatches(const fl_bsrv_t *s);
uint64_t fl_bsrv_hash_failures(const fl_bsrv_t *s);
/** Ledger: rounds run so far in this process. */
uint64_t fl_bsrv_rounds(const fl_bsrv_t *s);

/** The process-wide server of fl_bench: the ledger server when net_file is
 *  non-NULL, else the plain one. Made on the first call, freed at exit. */
fl_bsrv_t *fl_bsrv_get(const char *net_file, uint32_t n_clients);

/** One finished run, for the ledger / fl-round summary line. */
typedef struct fl_bsrv_run_note_s {
  const char *rule, *attack;
  uint64_t seed;
  double accuracy, f1;
  double train_ms;           /* mean per round: all but the server part (model
                                download encode, local training, attack) */
  double server_ms;          /* mean per round: this server's part */
  double plain_ms;           /* mean per round: the (shadow) plain server's part */
  double bytes_plain, bytes; /* mean per round */
  uint64_t mal_sent, mal_accepted;
} fl_bsrv_run_note_t;

/** Records a run. With summary set (fl_bsrv_summary_at_exit), a JSON line
 *  is printed at exit, after everything main prints: "fl" (mode ledger:
 *  every run's accuracy at full precision, mismatches, hash failures) or
 *  "fl-round" (round_ms_plain, round_ms_ledger, overhead_ms, bytes_plain,
 *  bytes_ledger, ...). */
void fl_bsrv_note_run(const fl_bsrv_run_note_t *n);
/** kind: "fl" or "fl-round"; dataset and clients/rounds for the line. */
void fl_bsrv_summary_at_exit(const char *kind, const char *dataset, uint32_t clients,
                             uint32_t rounds);

/* ---- internals shared by the two implementations ------------------------ */

/** The plain server's state for one run; the ledger server embeds one as
 *  its shadow. */
typedef struct fl_bsrv_plain_run_s fl_bsrv_plain_run_t;
fl_bsrv_plain_run_t *fl_bsrv_plain_run_new(const fl_bsrv_task_t *t);
void fl_bsrv_plain_run_round(fl_bsrv_plain_run_t *p, fl_bsrv_round_t *r);
void fl_bsrv_plain_run_free(fl_bsrv_plain_run_t *p);

/** Vtable behind fl_bsrv_t. */
typedef struct fl_bsrv_ops_s {
  void (*begin)(fl_bsrv_t *s, const fl_bsrv_task_t *t);
  void (*round)(fl_bsrv_t *s, fl_bsrv_round_t *r);
  void (*end)(fl_bsrv_t *s);
  void (*free)(fl_bsrv_t *s);
  /* NULL: fl_bsrv_submit_early does nothing */
  void (*submit_early)(fl_bsrv_t *s, uint32_t round, uint32_t k, const float *update);
} fl_bsrv_ops_t;

struct fl_bsrv_s {
  const fl_bsrv_ops_t *ops;
  uint64_t mismatches, hash_failures, rounds;
  double solo_ms;       /* sum of fl_bsrv_note_solo's */
  uint64_t solo_rounds; /* rounds that had one */
};

/** die() of the benchmark. */
void fl_bsrv_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* FL_BENCH_FL_SERVER_H */
