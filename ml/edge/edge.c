/* SPDX-License-Identifier: Apache-2.0
 *
 * edge.c: fedledger-edge's settings and main loop (edge.h). Everything
 * computed is in update.c and data.c; everything sent or read is in
 * ledger.c; this file is the order of the steps and their logging.
 */
#include "ml/edge/edge.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chaincode/mlupdate/mlupdate.h"
#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/crypto/rand.h"
#include "ml/agg.h"
#include "ml/edge/data.h"
#include "ml/edge/ledger.h"
#include "ml/edge/update.h"
#include "ml/metrics.h"

#define LOGM "edge"
#define OFF(f) offsetof(fl_edge_cfg_t, f)

/* clang-format off */
static const fl_edge_opt_t edge_table[] = {
  {"identity.mspid", "mspid", FL_EDGE_OPT_STR, OFF(mspid), NULL, 0, 0, 0, 0, "MSP id of the edge's organisation"},
  {"identity.msp_dir", "msp-dir", FL_EDGE_OPT_STR, OFF(msp_dir), NULL, 0, 0, 0, 0, "MSP folder (signcerts/, keystore/)"},
  {"identity.tls_dir", "tls-dir", FL_EDGE_OPT_STR, OFF(tls_dir), NULL, 0, 0, 0, 0, "TLS folder (client.crt, client.key, ca.crt)"},
  {"identity.tls_ca", "tls-ca", FL_EDGE_OPT_STR, OFF(tls_ca), "", 0, 0, 0, 0, "extra trusted TLS CA file"},
  {"gateway.endpoint", "gateway", FL_EDGE_OPT_STR, OFF(gateway), NULL, 0, 0, 0, 0, "gateway peer HOST:PORT"},
  {"gateway.server_name", "server-name", FL_EDGE_OPT_STR, OFF(server_name), "", 0, 0, 0, 0, "name in the peer's TLS certificate (default: host)"},
  {"gateway.channel", "channel", FL_EDGE_OPT_STR, OFF(channel), "fedledger", 0, 0, 0, 0, "channel"},
  {"gateway.call_timeout", "call-timeout", FL_EDGE_OPT_MS, OFF(call_timeout_ms), "30s", 100, 3600000, 0, 0, "Endorse/Evaluate timeout"},
  {"gateway.commit_timeout", "commit-timeout", FL_EDGE_OPT_MS, OFF(commit_timeout_ms), "60s", 100, 3600000, 0, 0, "commit status wait"},
  {"gateway.backoff_min", "backoff-min", FL_EDGE_OPT_MS, OFF(backoff_min_ms), "200ms", 1, 600000, 0, 0, "first reconnect delay"},
  {"gateway.backoff_max", "backoff-max", FL_EDGE_OPT_MS, OFF(backoff_max_ms), "5s", 1, 3600000, 0, 0, "longest reconnect delay"},
  {"events.endpoint", "events", FL_EDGE_OPT_STR, OFF(events), "", 0, 0, 0, 0, "peer events URL (tcp://HOST:PORT); empty = poll only"},
  {"events.poll", "poll", FL_EDGE_OPT_MS, OFF(poll_ms), "2s", 50, 600000, 0, 0, "GetRound polling interval while waiting"},
  {"task", "task", FL_EDGE_OPT_STR, OFF(task), NULL, 0, 0, 0, 0, "FL task id"},
  {"data.dataset", "dataset", FL_EDGE_OPT_STR, OFF(dataset), "nsl-kdd", 0, 0, 0, 0, "nsl-kdd | iris | csv | generated"},
  {"data.dir", "data-dir", FL_EDGE_OPT_STR, OFF(data_dir), "../shared/datasets", 0, 0, 0, 0, "dataset folder"},
  {"data.file", "data-file", FL_EDGE_OPT_STR, OFF(data_file), "", 0, 0, 0, 0, "dataset file (default: the dataset's file under data.dir)"},
  {"data.label", "label", FL_EDGE_OPT_STR, OFF(label), "", 0, 0, 0, 0, "csv: label column"},
  {"data.categorical", "categorical", FL_EDGE_OPT_STR, OFF(categorical), "", 0, 0, 0, 0, "csv: categorical columns"},
  {"data.classes", "classes", FL_EDGE_OPT_U64, OFF(classes), "2", 2, 64, 0, 0, "nsl-kdd classes (2 or 5); generated data: from the task"},
  {"data.partition", "partition", FL_EDGE_OPT_STR, OFF(partition), "0/1", 0, 0, 0, 0, "this edge's shard I/N"},
  {"data.alpha", "alpha", FL_EDGE_OPT_DBL, OFF(alpha), "0", 0, 0, 0, 1e6, "Dirichlet alpha (0 = IID)"},
  {"data.seed", "seed", FL_EDGE_OPT_U64, OFF(data_seed), "1", 0, UINT64_MAX, 0, 0, "split and partition seed (same on every edge)"},
  {"data.test_frac", "test-frac", FL_EDGE_OPT_DBL, OFF(test_frac), "0.2", 0, 0, 1e-6, 0.999999, "held-out share"},
  {"data.max_rows", "max-rows", FL_EDGE_OPT_U64, OFF(max_rows), "0", 0, UINT64_MAX, 0, 0, "use the first N rows of the file (0 = all)"},
  {"data.gen_rows", "gen-rows", FL_EDGE_OPT_U64, OFF(gen_rows), "4000", 20, 1u << 24, 0, 0, "rows of a generated dataset"},
  {"train.optimizer", "optimizer", FL_EDGE_OPT_STR, OFF(optimizer), "adam", 0, 0, 0, 0, "adam | sgd"},
  {"train.epochs", "epochs", FL_EDGE_OPT_U64, OFF(epochs), "1", 1, 10000, 0, 0, "local epochs per round"},
  {"train.batch", "batch", FL_EDGE_OPT_U64, OFF(batch), "64", 1, 1u << 20, 0, 0, "minibatch size"},
  {"train.lr", "lr", FL_EDGE_OPT_DBL, OFF(lr), "0.001", 0, 0, 1e-9, 100, "learning rate"},
  {"train.momentum", "momentum", FL_EDGE_OPT_DBL, OFF(momentum), "0", 0, 0, 0, 0.999, "SGD momentum"},
  {"train.l2", "l2", FL_EDGE_OPT_DBL, OFF(l2), "0", 0, 0, 0, 10, "weight decay"},
  {"train.chunks", "chunks", FL_EDGE_OPT_U64, OFF(chunks), "10", 1, 1000, 0, 0, "progress steps per epoch"},
  {"train.seed", "train-seed", FL_EDGE_OPT_U64, OFF(train_seed), "1", 0, UINT64_MAX, 0, 0, "shuffling seed (plus the round)"},
  {"train.progress", "progress", FL_EDGE_OPT_STR, OFF(progress), "auto", 0, 0, 0, 0, "progress bar: auto (on a terminal) | on | off"},
  {"rounds", "rounds", FL_EDGE_OPT_U64, OFF(rounds), "1", 0, UINT64_MAX, 0, 0, "rounds to take part in (0 = until stopped)"},
  {"dp.clip", "dp-clip", FL_EDGE_OPT_DBL, OFF(dp_clip), "0", 0, 0, 0, 1e12, "clip the update to this L2 norm (0 = off)"},
  {"dp.sigma", "dp-sigma", FL_EDGE_OPT_DBL, OFF(dp_sigma), "0", 0, 0, 0, 1e6, "Gaussian noise multiplier (sd = sigma*clip)"},
  {"dp.seed", "dp-seed", FL_EDGE_OPT_U64, OFF(dp_seed), "0", 0, UINT64_MAX, 0, 0, "noise seed (0 = OS random)"},
  {"attack.kind", "attack", FL_EDGE_OPT_STR, OFF(attack), "none", 0, 0, 0, 0, "none | signflip | gaussian | scaling | labelflip | alie | ipm"},
  {"attack.scale", "attack-scale", FL_EDGE_OPT_DBL, OFF(attack_scale), "0", 0, 0, 0, 1e9, "sign flip / scaling factor (0 = 1 / 10)"},
  {"attack.sigma", "attack-sigma", FL_EDGE_OPT_DBL, OFF(attack_sigma), "0", 0, 0, 0, 1e9, "gaussian attack sd (0 = 1)"},
  {"attack.z", "attack-z", FL_EDGE_OPT_DBL, OFF(attack_z), "0", 0, 0, -100, 100, "ALIE z (0 = from total/malicious)"},
  {"attack.eps", "attack-eps", FL_EDGE_OPT_DBL, OFF(attack_eps), "0", 0, 0, 0, 1e6, "IPM epsilon (0 = 0.5)"},
  {"attack.total", "attack-total", FL_EDGE_OPT_U64, OFF(attack_total), "10", 1, 1u << 20, 0, 0, "ALIE: clients per round"},
  {"attack.malicious", "attack-malicious", FL_EDGE_OPT_U64, OFF(attack_malicious), "1", 0, 1u << 20, 0, 0, "ALIE: malicious clients"},
  {"attack.shards", "attack-shards", FL_EDGE_OPT_U64, OFF(attack_shards), "4", 2, 64, 0, 0, "ALIE/IPM: local estimates"},
  {"attack.flip_src", "flip-src", FL_EDGE_OPT_DBL, OFF(flip_src), "-1", 0, 0, -1, 63, "label flip: class to relabel (-1 = all but dst)"},
  {"attack.flip_dst", "flip-dst", FL_EDGE_OPT_DBL, OFF(flip_dst), "0", 0, 0, 0, 63, "label flip: the label they get"},
  {"provenance", "provenance", FL_EDGE_OPT_STR, OFF(provenance), "", 0, 0, 0, 0, "append data-hash records (JSON lines) to this file"},
  {"log", "log", FL_EDGE_OPT_STR, OFF(log), "info", 0, 0, 0, 0, "log spec (info, debug, warn,edge=debug)"},
  {NULL, NULL, 0, 0, NULL, 0, 0, 0, 0, NULL},
};
/* clang-format on */

const fl_edge_opt_t *fl_edge_cfg_table(void) { return edge_table; }

void fl_edge_cfg_free(fl_edge_cfg_t *c) { fl_edge_opts_free(edge_table, c); }

fl_status_t fl_edge_cfg_load(int argc, char *const *argv, fl_edge_cfg_t *c, bool *help,
                             char **err) {
  memset(c, 0, sizeof *c);
  *err = NULL;
  const char *path = fl_edge_opts_config_arg(argc, argv, help);
  if (*help) return FL_OK;
  fl_edge_opts_src_t src = {0};
  fl_status_t rc = fl_edge_opts_load(edge_table, path, argc, argv, c, &src, err);
  if (rc != FL_OK) return rc;
  const char *bad = NULL, *what = NULL;
  char host[256];
  uint16_t port;
  if (fl_edge_parse_partition(c->partition, &c->part, &c->parts) < 0) {
    bad = "data.partition";
    what = "expected I/N with 0 <= I < N";
  } else if (fl_edge_parse_endpoint(c->gateway, host, sizeof host, &port) < 0) {
    bad = "gateway.endpoint";
    what = "expected HOST:PORT";
  } else if (!fl_mlu_task_id_ok(c->task, strlen(c->task))) {
    bad = "task";
    what = "expected 1..64 bytes of [A-Za-z0-9._-]";
  } else if (fl_ml_attack_parse(c->attack) < 0) {
    bad = "attack.kind";
    what = "expected none, signflip, gaussian, scaling, labelflip, alie or ipm";
  } else if (strcmp(c->optimizer, "adam") != 0 && strcmp(c->optimizer, "sgd") != 0) {
    bad = "train.optimizer";
    what = "expected adam or sgd";
  } else if (strcmp(c->progress, "auto") != 0 && strcmp(c->progress, "on") != 0 &&
             strcmp(c->progress, "off") != 0) {
    bad = "train.progress";
    what = "expected auto, on or off";
  } else if (strcmp(c->dataset, "nsl-kdd") != 0 && strcmp(c->dataset, "iris") != 0 &&
             strcmp(c->dataset, "csv") != 0 && strcmp(c->dataset, "generated") != 0) {
    bad = "data.dataset";
    what = "expected nsl-kdd, iris, csv or generated";
  } else if (strcmp(c->dataset, "csv") == 0 && (c->data_file == NULL || c->label == NULL)) {
    bad = "data.dataset";
    what = "csv needs data.file and data.label";
  } else if (c->backoff_max_ms < c->backoff_min_ms) {
    bad = "gateway.backoff_max";
    what = "must not be below gateway.backoff_min";
  } else if (fl_log_configure(c->log) < 0) {
    bad = "log";
    what = "expected a log spec such as info or warn,edge=debug";
  }
  if (bad != NULL) {
    const char *w = fl_edge_opts_where(edge_table, &src, bad);
    const char *v = strcmp(bad, "data.partition") == 0   ? c->partition
                    : strcmp(bad, "gateway.endpoint") == 0 ? c->gateway
                    : strcmp(bad, "task") == 0             ? c->task
                    : strcmp(bad, "attack.kind") == 0      ? c->attack
                    : strcmp(bad, "train.optimizer") == 0  ? c->optimizer
                    : strcmp(bad, "train.progress") == 0   ? c->progress
                    : strcmp(bad, "data.dataset") == 0     ? c->dataset
                    : strcmp(bad, "log") == 0              ? c->log
                                                           : "";
    *err = strcmp(w, "default") == 0 || strncmp(w, "--", 2) == 0 || strncmp(w, "env ", 4) == 0
               ? fl_sprintf("%s (%s): %s, got '%s'", w, bad, what, v ? v : "")
               : fl_sprintf("%s: %s, got '%s'", w, what, v ? v : "");
    fl_edge_opts_src_free(&src);
    fl_edge_cfg_free(c);
    return FL_ECONFIG;
  }
  c->attack_kind = (fl_ml_attack_t)fl_ml_attack_parse(c->attack);
  c->opt = strcmp(c->optimizer, "sgd") == 0 ? FL_ML_OPT_SGD : FL_ML_OPT_ADAM;
  fl_edge_opts_src_free(&src);
  return FL_OK;
}

/* ---- the loop ------------------------------------------------------------------ */

typedef struct edge_s {
  const fl_edge_cfg_t *cfg;
  fl_edge_session_t *s;
  fl_edge_task_t task;
  fl_ml_model_spec_t spec;
  fl_ml_model_t *model;
  fl_edge_data_t data;
  fl_edge_attack_t attack;
  fl_rng_t dp_rng, atk_rng;
  bool bar;                 /* draw a progress bar */
  uint64_t round;           /* round being trained (for the bar) */
} edge_t;

/* STEP_MISSED: the round closed before our update could commit (it was
 * invalidated by the close in the same block); the round is over for us and
 * counts towards `rounds`, which is the number of rounds followed. */
typedef enum step_e { STEP_DONE, STEP_RETRY, STEP_NEXT, STEP_MISSED, STEP_FAIL } step_t;

static void progress(void *arg, uint32_t epoch, uint32_t epochs, size_t done, size_t total,
                     double loss) {
  edge_t *e = arg;
  if (e->bar) {
    char bar[31];
    size_t fill = total ? done * 30 / total : 30;
    for (size_t i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r  round %" PRIu64 " epoch %u/%u [%s] %3zu%% loss %.4f ", e->round, epoch,
            epochs, bar, total ? done * 100 / total : 100, loss);
    if (done == total && epoch == epochs) fputc('\n', stderr);
    fflush(stderr);
  } else if (done == total) {
    FL_INFO(LOGM, "trained epoch round=%" PRIu64 " epoch=%u/%u rows=%zu loss=%.4f", e->round,
            epoch, epochs, total, loss);
  }
}

static double accuracy(fl_ml_model_t *m, const fl_ml_dataset_t *ds, uint32_t k) {
  if (ds->n == 0) return NAN;
  int32_t *pred = fl_malloc(ds->n * sizeof(int32_t));
  fl_ml_model_predict(m, ds->x, ds->n, pred);
  fl_ml_metrics_t mt;
  fl_ml_metrics(ds->y, pred, ds->n, k, &mt);
  fl_free(pred);
  return mt.accuracy;
}

static void provenance(const edge_t *e, uint64_t round, uint64_t ts, const uint8_t rows[32],
                       const fl_edge_submission_t *sub, const char *tx_id) {
  if (e->cfg->provenance == NULL) return;
  FILE *f = fopen(e->cfg->provenance, "a");
  if (f == NULL) {
    FL_WARN(LOGM, "cannot append to the provenance file path=%s errno=%d", e->cfg->provenance,
            errno);
    return;
  }
  char rh[65];
  fl_hex_encode(rows, 32, rh);
  fprintf(f,
          "{\"task\":\"%s\",\"round\":%" PRIu64 ",\"client\":\"%s\",\"ts_ms\":%" PRIu64
          ",\"rows\":%zu,\"rows_hash\":\"%s\",\"data_hash\":\"%s\",\"update_hash\":\"%s\","
          "\"tx_id\":\"%s\"}\n",
          e->task.task, round, fl_edge_session_client_id(e->s), ts, e->data.train.n, rh,
          sub->data_hash_hex, sub->hash_hex, tx_id);
  fclose(f);
}

static void log_record(const edge_t *e, uint64_t round, const fl_edge_update_rec_t *u) {
  if (u->accepted)
    FL_INFO(LOGM, "update recorded status=ACCEPTED task=%s round=%" PRIu64 " norm=%.6g hash=%s",
            e->task.task, round, u->norm, u->hash);
  else
    FL_WARN(LOGM,
            "update recorded status=REJECTED task=%s round=%" PRIu64
            " reason=%s code=%d detail=\"%s\" hash=%s",
            e->task.task, round, u->reason, u->reason_code, u->detail, u->hash);
}

/* Builds this round's update from the global model `global`. */
static fl_status_t make_update(edge_t *e, const fl_edge_round_t *r, const fl_ml_tensors_t *global,
                               fl_edge_submission_t *sub, uint64_t *ts, uint8_t rows[32]) {
  const fl_edge_cfg_t *c = e->cfg;
  fl_ml_tensors_t delta = {0};
  float *est = NULL;
  fl_status_t rc = fl_ml_model_set_params(e->model, global);
  if (rc != FL_OK) return rc;
  double acc = accuracy(e->model, &e->data.test, e->spec.n_classes);
  FL_INFO(LOGM, "global model task=%s round=%" PRIu64 " held_out_accuracy=%.4f rows=%zu",
          e->task.task, r->round, acc, e->data.test.n);
  fl_ml_train_opts_t o = {.opt = c->opt,
                          .lr = (float)c->lr,
                          .momentum = (float)c->momentum,
                          .l2 = (float)c->l2,
                          .batch = (uint32_t)c->batch,
                          .epochs = (uint32_t)c->epochs,
                          .seed = c->train_seed + r->round};
  size_t n = e->data.train.n;
  uint32_t *idx = fl_malloc(n * sizeof(uint32_t));
  for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
  e->round = r->round;
  uint64_t t0 = fl_mono_ns();
  double loss = NAN;
  rc = fl_edge_train(e->model, &e->data.train, idx, n, &o, (uint32_t)c->chunks, progress, e, &loss);
  fl_free(idx);
  if (rc != FL_OK) {
    FL_ERROR(LOGM, "training failed status=%s", fl_status_name(rc));
    return rc;
  }
  double local_acc = accuracy(e->model, &e->data.test, e->spec.n_classes);
  FL_INFO(LOGM,
          "trained task=%s round=%" PRIu64 " rows=%zu loss=%.4f local_accuracy=%.4f ms=%.0f",
          e->task.task, r->round, n, loss, local_acc, (double)(fl_mono_ns() - t0) / 1e6);
  if ((rc = fl_edge_update_delta(global, fl_ml_model_cparams(e->model), &delta)) != FL_OK) goto out;
  if (fl_ml_attack_is_update(e->attack.kind)) {
    size_t nb = 0;
    if (e->attack.kind == FL_ML_ATTACK_ALIE || e->attack.kind == FL_ML_ATTACK_IPM) {
      nb = e->attack.shards;
      if ((rc = fl_edge_train_estimates(&e->spec, global, &e->data.train, &o, (uint32_t)nb,
                                        &est)) != FL_OK)
        goto out;
    }
    double before = fl_ml_norm(delta.values, delta.n_values);
    if ((rc = fl_edge_attack_update(&e->attack, delta.values, delta.n_values, est, nb,
                                    &e->atk_rng)) != FL_OK)
      goto out;
    FL_WARN(LOGM, "attack applied kind=%s norm_before=%.6g norm_after=%.6g",
            fl_ml_attack_name(e->attack.kind), before, fl_ml_norm(delta.values, delta.n_values));
  }
  if (c->dp_clip > 0 || c->dp_sigma > 0) {
    fl_edge_dp_stats_t st;
    if ((rc = fl_edge_dp_apply(delta.values, delta.n_values, c->dp_clip, c->dp_sigma, &e->dp_rng,
                               &st)) != FL_OK)
      goto out;
    FL_INFO(LOGM, "dp applied clip=%g sigma=%g norm=%.6g clipped=%d noise_sd=%.6g", c->dp_clip,
            c->dp_sigma, st.norm_before, st.clipped, st.noise_sd);
  }
  fl_edge_rows_hash(&e->data.train, NULL, 0, rows);
  *ts = fl_wall_ms();
  uint8_t dh[32];
  fl_edge_data_hash(rows, *ts, fl_edge_session_client_id(e->s), dh);
  rc = fl_edge_submission_build(fl_edge_session_signer(e->s), e->task.task, r->round, &delta,
                                (uint64_t)n, dh, sub);
  if (rc == FL_EINVAL)
    FL_ERROR(LOGM, "the update cannot be encoded (non-finite values?) task=%s round=%" PRIu64,
             e->task.task, r->round);
out:
  fl_free(est);
  fl_ml_tensors_free(&delta);
  return rc;
}

/* True when round `round` is recorded CLOSED on our peer. */
static bool round_closed(edge_t *e, uint64_t round) {
  fl_edge_round_t r;
  return fl_edge_get_round(e->s, e->task.task, round, &r) == FL_OK && !r.open;
}

/* One round: everything from the record check to the read-back. */
static step_t participate(edge_t *e, const fl_edge_round_t *r) {
  fl_edge_update_rec_t u;
  fl_status_t st = fl_edge_get_update(e->s, e->task.task, r->round, &u);
  if (st == FL_OK) {
    FL_INFO(LOGM, "already submitted in this round (restart?) task=%s round=%" PRIu64,
            e->task.task, r->round);
    log_record(e, r->round, &u);
    return STEP_DONE;
  }
  if (st != FL_NOTFOUND) return fl_edge_status_transport(st) ? STEP_RETRY : STEP_FAIL;
  fl_ml_tensors_t global = {0};
  st = fl_edge_fetch_model(e->s, r->start_model, &e->task.layout, &global);
  if (st != FL_OK) {
    if (st == FL_EINVAL)
      FL_ERROR(LOGM, "the global model's layout differs from the task's task=%s", e->task.task);
    else if (st != FL_ECORRUPT && !fl_edge_status_transport(st))
      FL_ERROR(LOGM, "cannot fetch the global model status=%s", fl_status_name(st));
    return st == FL_EINVAL || st == FL_EMALFORMED ? STEP_FAIL : STEP_RETRY;
  }
  fl_edge_submission_t sub;
  uint64_t ts = 0;
  uint8_t rows[32];
  st = make_update(e, r, &global, &sub, &ts, rows);
  fl_ml_tensors_free(&global);
  if (st != FL_OK) return STEP_FAIL;
  char rh[65];
  fl_hex_encode(rows, 32, rh);
  FL_INFO(LOGM,
          "submitting task=%s round=%" PRIu64 " hash=%s norm=%.6g bytes=%zu samples=%" PRIu64
          " data_hash=%s rows_hash=%s ts_ms=%" PRIu64,
          e->task.task, r->round, sub.hash_hex, sub.norm, sub.blob.len, sub.samples,
          sub.data_hash_hex, rh, ts);
  fl_buf_t args[7];
  fl_edge_submission_args(&sub, e->task.task, args);
  fl_buf_t blob = fl_sbuf_view(&sub.blob);
  fl_client_result_t res;
  st = fl_edge_session_submit(e->s, args, 7, &blob, 1, &res);
  step_t out;
  if (st == FL_OK) {
    FL_INFO(LOGM, "committed tx=%s block=%" PRIu64, res.tx_id, res.block_number);
    provenance(e, r->round, ts, rows, &sub, res.tx_id);
    fl_edge_update_rec_t back;
    fl_status_t g = fl_edge_get_update(e->s, e->task.task, r->round, &back);
    if (g == FL_OK) log_record(e, r->round, &back);
    else FL_WARN(LOGM, "cannot read the record back status=%s", fl_status_name(g));
    out = STEP_DONE;
  } else if (st == FL_ECONFLICT) {
    FL_INFO(LOGM,
            "submission invalidated (%s): the round changed in the same block task=%s "
            "round=%" PRIu64 " tx=%s",
            fl_client_code_name(res.code), e->task.task, r->round, res.tx_id);
    out = round_closed(e, r->round) ? STEP_MISSED : STEP_NEXT;
  } else if (fl_edge_status_transport(st)) {
    FL_WARN(LOGM, "submission not confirmed, will check the ledger status=%s err=\"%s\"",
            fl_status_name(st), res.error);
    out = STEP_RETRY;
  } else if (st == FL_NOTFOUND) {
    FL_WARN(LOGM, "chaincode refused: %s (cc status %d)", res.cc_message, res.cc_status);
    out = STEP_NEXT;
  } else {
    FL_ERROR(LOGM, "submission refused status=%s cc_status=%d msg=\"%s\" err=\"%s\"",
             fl_status_name(st), res.cc_status, res.cc_message, res.error);
    out = STEP_FAIL;
  }
  fl_client_result_clear(&res);
  fl_edge_submission_clear(&sub);
  return out;
}

/* Waits until round r is closed (RoundClosed event or GetRound). Returns
 * false when stopped. */
static bool wait_closed(edge_t *e, uint64_t round) {
  for (;;) {
    fl_edge_event_t ev;
    fl_status_t st = fl_edge_session_next_event(e->s, e->cfg->poll_ms, &ev);
    if (st == FL_ECANCELED || fl_edge_session_stopped(e->s)) return false;
    if (st == FL_OK && ev.kind == FL_EDGE_EV_ROUND_CLOSED && strcmp(ev.task, e->task.task) == 0 &&
        ev.round >= round) {
      FL_INFO(LOGM, "round closed (event) task=%s round=%" PRIu64, ev.task, ev.round);
      return true;
    }
    if (st == FL_OK) continue; /* another event: keep waiting for ours */
    fl_edge_round_t r;
    st = fl_edge_get_round(e->s, e->task.task, round, &r);
    if (st == FL_OK && !r.open) {
      FL_INFO(LOGM, "round closed (poll) task=%s round=%" PRIu64 " accepted=%" PRIu64, e->task.task,
              round, r.accepted);
      return true;
    }
    if (fl_edge_status_transport(st) && !fl_edge_session_backoff(e->s)) return false;
  }
}

static fl_status_t startup(edge_t *e) {
  const fl_edge_cfg_t *c = e->cfg;
  char err[256];
  unsigned tries = 0;
  for (;;) {
    fl_status_t st = fl_edge_get_task(e->s, c->task, &e->task, err, sizeof err);
    if (st == FL_OK) break;
    if (st == FL_NOTFOUND) {
      if (tries++ % 10 == 0) FL_INFO(LOGM, "waiting for the task to be created task=%s", c->task);
      if (!fl_edge_session_sleep(e->s, c->poll_ms)) return FL_ECANCELED;
      continue;
    }
    if (fl_edge_status_transport(st)) {
      if (!fl_edge_session_backoff(e->s)) return FL_ECANCELED;
      continue;
    }
    FL_ERROR(LOGM, "cannot read the task task=%s status=%s err=\"%s\"", c->task, fl_status_name(st),
             err);
    return st;
  }
  FL_INFO(LOGM, "task task=%s arch=\"%s\" rule=%s n_params=%" PRIu64 " min_updates=%" PRIu64
                " round_ms=%" PRIu64,
          e->task.task, e->task.arch, e->task.rule, e->task.n_params, e->task.min_updates,
          e->task.round_ms);
  /* The model comes from the task's layout; the data must fit it. */
  const fl_ml_tensors_t *L = &e->task.layout;
  uint32_t n_in = 0, classes = (uint32_t)c->classes;
  if (L->n_tensors >= 1 && L->desc[0].ndim == 2)
    n_in = strcmp(L->desc[0].name, "protos") == 0 ? L->desc[0].dims[1] : L->desc[0].dims[0];
  if (L->n_tensors >= 2 && strcmp(L->desc[0].name, "protos") != 0) {
    uint32_t o = L->desc[L->n_tensors - 2].dims[L->desc[L->n_tensors - 2].ndim - 1];
    classes = o == 1 ? 2 : o;
  }
  fl_edge_data_opts_t d = {.dataset = c->dataset,
                           .dir = c->data_dir,
                           .file = c->data_file,
                           .label = c->label,
                           .categorical = c->categorical,
                           .classes = (uint32_t)c->classes,
                           .part = c->part,
                           .parts = c->parts,
                           .alpha = c->alpha,
                           .test_frac = c->test_frac,
                           .seed = c->data_seed,
                           .max_rows = (size_t)c->max_rows,
                           .gen_features = n_in,
                           .gen_classes = classes,
                           .gen_rows = (size_t)c->gen_rows};
  fl_status_t st = fl_edge_data_load(&d, &e->data, err, sizeof err);
  if (st != FL_OK) {
    FL_ERROR(LOGM, "cannot load the local data source=\"%s\" err=\"%s\"", e->data.source, err);
    return st;
  }
  if (e->data.generated)
    FL_WARN(LOGM, "no dataset file, training on a generated dataset source=\"%s\"", e->data.source);
  FL_INFO(LOGM, "local data source=\"%s\" partition=%u/%u alpha=%g shard_rows=%zu held_out=%zu "
                "features=%u classes=%u",
          e->data.source, c->part, c->parts, c->alpha, e->data.train.n, e->data.test.n,
          e->data.train.d, e->data.n_classes);
  if ((st = fl_edge_spec_from_layout(L, e->data.n_classes, &e->spec, err, sizeof err)) != FL_OK) {
    FL_ERROR(LOGM, "the task's model cannot be built task=%s err=\"%s\"", e->task.task, err);
    return st;
  }
  if (e->spec.n_in != e->data.train.d || e->spec.n_classes != e->data.n_classes) {
    FL_ERROR(LOGM,
             "the local data does not fit the task's model: features %u vs %u, classes %u vs %u "
             "(check data.dataset / data.classes)",
             e->data.train.d, e->spec.n_in, e->data.n_classes, e->spec.n_classes);
    return FL_EINVAL;
  }
  if ((st = fl_ml_model_new(&e->spec, c->train_seed, &e->model)) != FL_OK) return st;
  if (e->spec.kind == FL_ML_PROTO)
    FL_INFO(LOGM, "prototype model: the global model provides the prototypes");
  size_t flipped = fl_edge_attack_data(&e->attack, &e->data.train);
  if (e->attack.kind == FL_ML_ATTACK_LABELFLIP)
    FL_WARN(LOGM, "attack applied kind=labelflip flipped=%zu of %zu labels", flipped,
            e->data.train.n);
  return FL_OK;
}

fl_status_t fl_edge_run(const fl_edge_cfg_t *c, volatile sig_atomic_t *stop) {
  edge_t e = {.cfg = c};
  char *err = NULL;
  fl_edge_conn_t conn = {.mspid = c->mspid,
                         .msp_dir = c->msp_dir,
                         .tls_dir = c->tls_dir,
                         .tls_ca = c->tls_ca,
                         .gateway = c->gateway,
                         .server_name = c->server_name,
                         .events = c->events,
                         .channel = c->channel,
                         .call_timeout_ms = c->call_timeout_ms,
                         .commit_timeout_ms = c->commit_timeout_ms,
                         .backoff_min_ms = c->backoff_min_ms,
                         .backoff_max_ms = c->backoff_max_ms,
                         .stop = stop};
  fl_status_t rc = fl_edge_session_open(&conn, &e.s, &err);
  if (rc != FL_OK) {
    FL_ERROR(LOGM, "identity or connection settings: %s", err ? err : fl_status_str(rc));
    fl_free(err);
    return FL_ECONFIG;
  }
  e.attack = (fl_edge_attack_t){.kind = c->attack_kind,
                                .o = {.scale = c->attack_scale,
                                      .sigma = c->attack_sigma,
                                      .z = c->attack_z,
                                      .eps = c->attack_eps,
                                      .n_total = (uint32_t)c->attack_total,
                                      .n_malicious = (uint32_t)c->attack_malicious,
                                      .flip_src = (int32_t)c->flip_src,
                                      .flip_dst = (int32_t)c->flip_dst},
                                .shards = (uint32_t)c->attack_shards};
  uint64_t seed = c->dp_seed;
  if (seed == 0 && fl_random_bytes((uint8_t *)&seed, sizeof seed) != FL_OK) {
    FL_ERROR(LOGM, "no random seed for the DP noise");
    rc = FL_ECRYPTO;
    goto done;
  }
  fl_rng_seed(&e.dp_rng, seed);
  fl_rng_seed(&e.atk_rng, c->train_seed ^ 0xa77acc);
  e.bar = strcmp(c->progress, "on") == 0 ||
          (strcmp(c->progress, "auto") == 0 && isatty(STDERR_FILENO));
  FL_INFO(LOGM, "edge starting client=%s gateway=%s task=%s rounds=%" PRIu64 " attack=%s dp=%s",
          fl_edge_session_client_id(e.s), c->gateway, c->task, c->rounds,
          fl_ml_attack_name(c->attack_kind), c->dp_sigma > 0 || c->dp_clip > 0 ? "on" : "off");
  if ((rc = startup(&e)) != FL_OK) goto done;

  uint64_t hint = 0, done = 0, last_done_round = UINT64_MAX;
  while ((c->rounds == 0 || done < c->rounds) && !fl_edge_session_stopped(e.s)) {
    fl_edge_round_t r;
    fl_status_t st = fl_edge_find_round(e.s, e.task.task, hint, &r);
    if (st != FL_OK) {
      if (!fl_edge_status_transport(st))
        FL_WARN(LOGM, "cannot find the open round status=%s", fl_status_name(st));
      if (!fl_edge_session_backoff(e.s)) break;
      continue;
    }
    hint = r.round;
    if (!r.open) {
      /* CloseRound writes round r CLOSED and r+1 OPEN in one transaction,
       * so this is a peer still catching up: look again shortly. */
      if (!fl_edge_session_sleep(e.s, c->poll_ms)) break;
      continue;
    }
    if (r.round == last_done_round) {
      /* Our update is in; the next round starts from its close. */
      if (!wait_closed(&e, r.round)) break;
      hint = r.round + 1;
      continue;
    }
    step_t s = participate(&e, &r);
    if (s == STEP_FAIL) {
      rc = FL_EINVAL;
      goto done;
    }
    if (s == STEP_RETRY) {
      if (!fl_edge_session_backoff(e.s)) break;
      continue;
    }
    if (s == STEP_NEXT) {
      if (!fl_edge_session_sleep(e.s, c->poll_ms)) break;
      continue;
    }
    done++;
    last_done_round = r.round;
    if (s == STEP_MISSED)
      FL_INFO(LOGM, "round missed (closed before our update committed) task=%s round=%" PRIu64
              " followed=%" PRIu64 "/%" PRIu64, e.task.task, r.round, done, c->rounds);
    else
      FL_INFO(LOGM, "round done task=%s round=%" PRIu64 " participated=%" PRIu64 "/%" PRIu64,
              e.task.task, r.round, done, c->rounds);
  }
  if (fl_edge_session_stopped(e.s) && (c->rounds == 0 || done < c->rounds))
    FL_INFO(LOGM, "stopped participated=%" PRIu64, done);
  else
    FL_INFO(LOGM, "edge finished participated=%" PRIu64, done);
  rc = FL_OK;
done:
  fl_ml_model_free(e.model);
  fl_edge_data_free(&e.data);
  fl_edge_task_clear(&e.task);
  fl_edge_session_close(e.s);
  return rc;
}

/* The one process-wide flag a signal handler may touch (sig_atomic_t). */
static volatile sig_atomic_t edge_stop;

static void on_signal(int sig) {
  (void)sig;
  edge_stop = 1;
}

int fl_edge_main(int argc, char **argv) {
  fl_log_configure_from_env();
  fl_edge_cfg_t c;
  bool help = false;
  char *err = NULL;
  if (fl_edge_cfg_load(argc, argv, &c, &help, &err) != FL_OK) {
    fprintf(stderr, "fedledger-edge: %s\n", err ? err : "bad settings");
    fl_free(err);
    return 2;
  }
  if (help) {
    printf("usage: fedledger-edge [--config edge.yaml] [--flag VALUE ...]\n"
           "Settings (flag, edge.yaml key; env FEDLEDGER_<KEY> with dots as _):\n");
    fl_edge_opts_usage(edge_table, stdout);
    return 0;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  fl_status_t rc = fl_edge_run(&c, &edge_stop);
  fl_edge_cfg_free(&c);
  if (rc == FL_ECONFIG) {
    fprintf(stderr, "fedledger-edge: configuration or identity error (see the log above)\n");
    return 2;
  }
  return rc == FL_OK ? 0 : 1;
}
