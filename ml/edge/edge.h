/* SPDX-License-Identifier: Apache-2.0
 *
 * edge.h: fedledger-edge, the federated-learning client of an IoT gateway
 * (docs/edge.md). Its settings (edge.yaml + FEDLEDGER_* + flags, opts.h)
 * and its main loop:
 *
 *   startup  load identity and TLS (a bad one exits 2), GetTask (waiting
 *            while the task does not exist yet), derive the model from the
 *            task's tensor layout, load the local shard (data.h), apply a
 *            data attack if asked;
 *   round r  find the newest round (GetRound, galloping); skip it when this
 *            client already has a record in it (a restart); fetch the start
 *            model by hash and check SHA-256 against the ledger's; train;
 *            update = local - global; attack; DP; data-batch hash; sign;
 *            SubmitUpdate with the blob; read the record back and log
 *            ACCEPTED or REJECTED with the reason; then wait for RoundClosed
 *            (events, or GetRound polling as a fallback) and go on;
 *   end      after `rounds` recorded submissions: exit 0.
 * A lost peer is retried with backoff; the state to resume from is always
 * read back from the ledger, never kept locally.
 */
#ifndef FL_ML_EDGE_EDGE_H
#define FL_ML_EDGE_EDGE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/base/status.h"
#include "ml/attack.h"
#include "ml/edge/opts.h"
#include "ml/model.h"

/** Settings of fedledger-edge. Strings owned (fl_edge_cfg_free). */
typedef struct fl_edge_cfg_s {
  /* identity and network (shared with the keeper's settings) */
  char *mspid, *msp_dir, *tls_dir, *tls_ca;
  char *gateway, *server_name, *channel, *events;
  uint64_t call_timeout_ms, commit_timeout_ms, backoff_min_ms, backoff_max_ms, poll_ms;
  char *task;
  /* data */
  char *dataset, *data_dir, *data_file, *label, *categorical, *partition;
  uint64_t classes, data_seed, max_rows, gen_rows;
  double alpha, test_frac;
  /* training */
  char *optimizer;
  uint64_t epochs, batch, chunks, train_seed;
  double lr, momentum, l2;
  char *progress;             /* auto | on | off */
  uint64_t rounds;            /* 0 = until stopped */
  /* privacy and attacks */
  double dp_clip, dp_sigma;
  uint64_t dp_seed;           /* 0 = from the OS's random generator */
  char *attack;
  double attack_scale, attack_sigma, attack_z, attack_eps, flip_src, flip_dst;
  uint64_t attack_total, attack_malicious, attack_shards;
  char *provenance;           /* JSON-lines file of data hashes, or NULL */
  char *log;                  /* log spec */
  /* derived by fl_edge_cfg_load */
  uint32_t part, parts;
  fl_ml_attack_t attack_kind;
  fl_ml_opt_t opt;
} fl_edge_cfg_t;

/** The settings table (flags, keys, defaults) of fedledger-edge. */
const fl_edge_opt_t *fl_edge_cfg_table(void);

/** Loads settings from argv (and --config FILE, the environment) and
 *  checks them. *help is set when --help was given (nothing else is then
 *  required). Returns FL_OK, or FL_ECONFIG (and file errors) with *err
 *  owned naming the source (file:line, env var or flag). */
fl_status_t fl_edge_cfg_load(int argc, char *const *argv, fl_edge_cfg_t *out /* out */,
                             bool *help /* out */, char **err /* out */);

/** Frees the strings of c. NULL-safe. */
void fl_edge_cfg_free(fl_edge_cfg_t *c);

/** Runs the loop described at the top until `rounds` submissions are
 *  recorded or *stop is set. Returns FL_OK; FL_ECONFIG (identity, TLS,
 *  settings: exit 2), or another failure (the task's model cannot be built
 *  from the local data, a malformed record; exit 1). Messages are logged. */
fl_status_t fl_edge_run(const fl_edge_cfg_t *cfg, volatile sig_atomic_t *stop);

/** main() of fedledger-edge: parses, runs, maps the result to an exit code
 *  (0 done, 1 failure, 2 configuration or identity error). */
int fl_edge_main(int argc, char **argv);

#endif /* FL_ML_EDGE_EDGE_H */
