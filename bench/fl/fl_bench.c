/* SPDX-License-Identifier: Apache-2.0
 *
 * fl_bench.c: the plain (no ledger) federated learning experiment runner
 * behind `bench/run fl`.
 *
 * One invocation loads a dataset, fits the encoder on the training side,
 * partitions the training rows over N clients (IID or Dirichlet alpha) and,
 * for every aggregation rule x attack x seed asked for, runs R rounds of
 * FedAvg-style training in this process:
 *
 *   1. every client starts from the global model, trains E local epochs on
 *      its own rows (label-flipping clients on flipped labels) and forms its
 *      update = local - global;
 *   2. malicious clients rewrite their update (sign flip, noise, scaling,
 *      ALIE, IPM; the last two see the round's benign updates);
 *   3. each update travels as a tensor blob (encoded, then decoded and
 *      checked as the server would): its size is the "bytes per round";
 *   4. the optional outlier filter rejects updates whose norm robust
 *      z-score or cosine to the previous global step is out of bounds;
 *   5. the rule aggregates the accepted updates, sorted by client id, and
 *      the global model moves by the result.
 *
 * The clean run (attack none) of the same rule and seed is always made too:
 * it is the reference for "within 2 points" and for the attack success rate
 * (attack rows the clean model detects but the attacked model calls normal).
 * Output: a table on stdout, per-round and summary CSV files, a gnuplot PNG
 * of accuracy per round, and as the LAST line a JSON summary. Everything is
 * single-threaded and seeded: the same command gives the same numbers.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/clock.h"
#include "bench/fl/novelty.h"
#include "bench/fl/server.h"
#include "ml/agg.h"
#include "ml/attack.h"
#include "ml/edge/update.h"
#include "ml/dataset.h"
#include "ml/metrics.h"
#include "ml/model.h"
#include "ml/rng.h"
#include "ml/tensor.h"

#define MAX_LIST 8

typedef struct cfg_s {
  const char *dataset, *data_dir, *out_dir, *name, *csv_path, *columns;
  const char *split;
  int classes;
  uint32_t clients, rounds, seeds, local_epochs, batch;
  double malicious, alpha, lr, l2, dropout, prox, clip;
  double filter_z, filter_cos; /* NAN = off */
  int f;                       /* -1 = derived */
  const char *model;
  uint32_t hidden[FL_ML_MAX_HIDDEN], n_hidden;
  fl_ml_opt_t opt;
  int class_weight; /* 0 none, 1 balanced, 2 sqrt-balanced */
  fl_ml_scale_t scale_kind;
  double log_threshold, feat_clip;
  double scale, sigma, z, eps;
  int n_rules, n_attacks;
  fl_ml_rule_t rules[MAX_LIST];
  fl_ml_attack_t attacks[MAX_LIST];
  uint64_t seed0;
  double operating_fpr;  /* NAN = argmax; else the false-alarm budget */
  double novelty_fpr;    /* NAN = off; else the autoencoder's false-alarm budget */
  fl_nov_opts_t nov;     /* the autoencoder (bench/fl/novelty.h) */
  double collusion;      /* fl_ml_agg_opts_t.collusion (0 = off) */
  double dir_cos;        /* direction filter bound, NAN = off */
  int quiet;
  /* server (bench/fl/server.h): --ledger-net runs steps 3-5 through a live
   * network; --filter-rule ledger applies mlupdate's rule in-process. */
  const char *ledger_net; /* NULL = plain */
  int filter_rule;        /* FL_BSRV_FILTER_ROUND (default) or _LEDGER */
  double filter_max_norm; /* 0 = off */
  uint32_t norm_window;   /* 0 = 3 */
  int fl_round;           /* print the fl-round summary line */
} cfg_t;

typedef struct data_s {
  fl_ml_dataset_t train, test, test2;
  const char *test_name, *test2_name; /* test2_name NULL when absent */
  uint32_t n_classes;
} data_t;

typedef struct run_s {
  /* final metrics on test (and test2) */
  fl_ml_metrics_t m, m2;
  int32_t *pred; /* final predictions on test, owned */
  double asr;
  uint64_t mal_sent, mal_accepted, benign_sent, benign_accepted;
  double round_ms, train_ms, agg_ms;
  double bytes_per_round;
  double *acc_curve; /* rounds */
} run_t;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fl_bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static double now_ms(void) { return (double)fl_mono_ns() / 1e6; }

/* ---- data ----------------------------------------------------------------- */

static char *data_path(const cfg_t *c, const char *rel) {
  return fl_sprintf("%s/%s", c->data_dir, rel);
}

static void encode_pair(const fl_ml_raw_t *rtr, const fl_ml_raw_t *rte,
                        const fl_ml_raw_t *rte2, const fl_ml_encoder_opts_t *eo,
                        data_t *d) {
  char err[512];
  fl_ml_encoder_t *enc = NULL;
  if (fl_ml_encoder_fit(rtr, eo, &enc, err, sizeof err) < 0) die("%s", err);
  if (fl_ml_encoder_apply(enc, rtr, &d->train, err, sizeof err) < 0) die("%s", err);
  if (fl_ml_encoder_apply(enc, rte, &d->test, err, sizeof err) < 0) die("%s", err);
  if (rte2 && fl_ml_encoder_apply(enc, rte2, &d->test2, err, sizeof err) < 0) die("%s", err);
  d->n_classes = fl_ml_encoder_n_classes(enc);
  fl_ml_encoder_free(enc);
}

/* Encodes rows tr[0..ntr) of raw as the training side (the encoder is
 * fitted on them) and te[0..nte) as the test side. */
static void encode_rows(const fl_ml_raw_t *raw, const uint32_t *tr, size_t ntr,
                        const uint32_t *te, size_t nte, const fl_ml_encoder_opts_t *eo,
                        data_t *d) {
  fl_ml_raw_t rtr, rte;
  fl_ml_raw_subset(raw, tr, ntr, &rtr);
  fl_ml_raw_subset(raw, te, nte, &rte);
  encode_pair(&rtr, &rte, NULL, eo, d);
  fl_ml_raw_free(&rtr);
  fl_ml_raw_free(&rte);
}

/* Stratified 80/20 split of raw, then encode (encoder fitted on the 80). */
static void split_encode(const fl_ml_raw_t *raw, const fl_ml_encoder_opts_t *eo,
                         uint64_t seed, data_t *d) {
  uint32_t *tr = NULL, *te = NULL;
  size_t ntr = 0, nte = 0;
  if (fl_ml_split_stratified(raw->label, raw->n, 0.2, seed, &tr, &ntr, &te, &nte) < 0)
    die("split failed");
  encode_rows(raw, tr, ntr, te, nte, eo, d);
  fl_free(tr);
  fl_free(te);
}

/* --split novel (NSL-KDD): a validation split of KDDTrain+ that imitates
 * what KDDTest+ does to a detector (attack kinds never seen in training)
 * with training data only, so that detector settings can be chosen without
 * looking at KDDTest+. Within each category (DoS, Probe, R2L, U2R) the attack
 * names are ranked by training row count (ties by name) and every second one
 * (ranks 2, 4, ...) is held out whole: its rows all go to the test side and
 * never to training. The other rows are split 80/20, stratified by label. */
static int ranks_before(const size_t *cnt, uint32_t x, uint32_t y) {
  return cnt[x] != cnt[y] ? cnt[x] > cnt[y] : x < y;
}

static void novel_split_encode(const fl_ml_raw_t *raw, const fl_ml_encoder_opts_t *eo,
                               uint64_t seed, data_t *d) {
  uint32_t V = raw->label_vocab.n;
  size_t *cnt = fl_calloc(V + 1, sizeof(size_t));
  for (size_t i = 0; i < raw->n; i++) cnt[raw->label[i]]++;
  uint8_t *held = fl_calloc(V + 1, 1);
  uint32_t *names = fl_malloc((V + 1) * sizeof(uint32_t));
  for (int32_t cat = 1; cat <= 4; cat++) {
    uint32_t k = 0;
    for (uint32_t v = 0; v < V; v++)
      if (fl_ml_nsl_kdd_category(raw->label_vocab.s[v]) == cat) names[k++] = v;
    /* Insertion sort (a category has at most a dozen names). */
    for (uint32_t i = 1; i < k; i++)
      for (uint32_t j = i; j > 0 && ranks_before(cnt, names[j], names[j - 1]); j--) {
        uint32_t t = names[j];
        names[j] = names[j - 1];
        names[j - 1] = t;
      }
    for (uint32_t i = 1; i < k; i += 2) held[names[i]] = 1;
  }
  fprintf(stderr, "fl_bench: split novel: held-out attack kinds:");
  for (uint32_t v = 0; v < V; v++)
    if (held[v]) fprintf(stderr, " %s(%zu)", raw->label_vocab.s[v], cnt[v]);
  fprintf(stderr, "\n");
  uint32_t *keep = fl_malloc((raw->n + 1) * sizeof(uint32_t)),
           *klab = fl_malloc((raw->n + 1) * sizeof(uint32_t)),
           *te = fl_malloc((raw->n + 1) * sizeof(uint32_t));
  size_t nk = 0, nte = 0;
  for (size_t i = 0; i < raw->n; i++) {
    if (held[raw->label[i]]) {
      te[nte++] = (uint32_t)i;
    } else {
      keep[nk] = (uint32_t)i;
      klab[nk++] = raw->label[i];
    }
  }
  uint32_t *a = NULL, *b = NULL;
  size_t na = 0, nb = 0;
  if (fl_ml_split_stratified(klab, nk, 0.2, seed, &a, &na, &b, &nb) < 0) die("split failed");
  uint32_t *tr = fl_malloc((na + 1) * sizeof(uint32_t));
  for (size_t i = 0; i < na; i++) tr[i] = keep[a[i]];
  for (size_t i = 0; i < nb; i++) te[nte++] = keep[b[i]];
  encode_rows(raw, tr, na, te, nte, eo, d);
  fl_free(tr);
  fl_free(a);
  fl_free(b);
  fl_free(te);
  fl_free(klab);
  fl_free(keep);
  fl_free(names);
  fl_free(held);
  fl_free(cnt);
}

static void load_data(const cfg_t *c, data_t *d) {
  char err[512];
  memset(d, 0, sizeof *d);
  fl_ml_encoder_opts_t eo = {.scale = c->scale_kind, .log_threshold = c->log_threshold,
                             .clip = c->feat_clip};
  fl_ml_raw_t raw = {0}, raw2 = {0}, raw3 = {0};
  char *p = NULL;
  d->test_name = "test";
  if (strcmp(c->dataset, "nsl-kdd") == 0) {
    static int classes;
    classes = c->classes;
    eo.label_map = fl_ml_nsl_kdd_label_map;
    eo.label_ctx = &classes;
    eo.class_names = classes == 5 ? fl_ml_nsl_kdd_classes5 : fl_ml_binary_classes;
    eo.n_classes = (uint32_t)classes;
    p = data_path(c, "nsl-kdd/KDDTrain+.txt.gz");
    if (fl_ml_load_nsl_kdd(p, &raw, err, sizeof err) < 0) die("%s", err);
    fl_free(p);
    p = NULL;
    if (strcmp(c->split, "official") == 0) {
      p = data_path(c, "nsl-kdd/KDDTest+.txt.gz");
      if (fl_ml_load_nsl_kdd(p, &raw2, err, sizeof err) < 0) die("%s", err);
      fl_free(p);
      p = data_path(c, "nsl-kdd/KDDTest-21.txt.gz");
      if (fl_ml_load_nsl_kdd(p, &raw3, err, sizeof err) < 0) die("%s", err);
      fl_free(p);
      p = NULL;
      encode_pair(&raw, &raw2, &raw3, &eo, d);
      d->test_name = "KDDTest+";
      d->test2_name = "KDDTest-21";
    } else if (strcmp(c->split, "novel") == 0) {
      novel_split_encode(&raw, &eo, c->seed0, d);
      d->test_name = "KDDTrain+ leave-attack-kinds-out";
    } else {
      split_encode(&raw, &eo, c->seed0, d);
      d->test_name = "KDDTrain+ 20% held out";
    }
  } else if (strcmp(c->dataset, "unsw-nb15") == 0) {
    p = data_path(c, "unsw-nb15/UNSW_NB15_testing-set.csv.gz");
    if (fl_ml_load_unsw_nb15(p, c->classes > 2, &raw, err, sizeof err) < 0) die("%s", err);
    if (c->classes > 2) {
      /* Generic classes sort "Normal" among the attack names; fine for
       * accuracy and macro metrics, but detection metrics want normal = 0. */
      die("unsw-nb15: only --classes 2 is supported by the runner");
    }
    split_encode(&raw, &eo, c->seed0, d);
    d->test_name = "UNSW-NB15 20% held out";
  } else if (strcmp(c->dataset, "iris") == 0) {
    p = data_path(c, "iris/iris.csv.gz");
    if (fl_ml_load_iris(p, &raw, err, sizeof err) < 0) die("%s", err);
    split_encode(&raw, &eo, c->seed0, d);
  } else if (strcmp(c->dataset, "segment") == 0 || strcmp(c->dataset, "phishing") == 0) {
    int seg = strcmp(c->dataset, "segment") == 0;
    p = data_path(c, seg ? "river/segment.csv.gz" : "river/phishing.csv.gz");
    fl_ml_csv_spec_t spec = {.header = true, .label = seg ? "category" : "is_phishing"};
    if (fl_ml_raw_load_csv(p, &spec, &raw, err, sizeof err) < 0) die("%s", err);
    split_encode(&raw, &eo, c->seed0, d);
  } else if (strcmp(c->dataset, "banana") == 0) {
    p = data_path(c, "river/banana.all.txt.gz");
    if (fl_ml_raw_load_libsvm(p, 16, &raw, err, sizeof err) < 0) die("%s", err);
    split_encode(&raw, &eo, c->seed0, d);
  } else if (strcmp(c->dataset, "csv") == 0 || strcmp(c->dataset, "botiot") == 0) {
    if (c->csv_path == NULL) die("--dataset %s needs --csv PATH", c->dataset);
    if (strcmp(c->dataset, "botiot") == 0) {
      if (fl_ml_load_botiot(c->csv_path, c->classes > 2, &raw, err, sizeof err) < 0)
        die("%s", err);
    } else {
      /* --columns "label=NAME;cat=A,B;ignore=C,D;noheader" */
      char *spec_s = fl_strdup(c->columns ? c->columns : "label=label");
      fl_ml_csv_spec_t spec = {.header = true};
      char *save = NULL;
      for (char *t = strtok_r(spec_s, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
        if (strncmp(t, "label=", 6) == 0) spec.label = t + 6;
        else if (strncmp(t, "cat=", 4) == 0) spec.categorical = t + 4;
        else if (strncmp(t, "ignore=", 7) == 0) spec.ignore = t + 7;
        else if (strcmp(t, "noheader") == 0) spec.header = false;
        else die("bad --columns item '%s'", t);
      }
      if (fl_ml_raw_load_csv(c->csv_path, &spec, &raw, err, sizeof err) < 0) die("%s", err);
      fl_free(spec_s);
    }
    split_encode(&raw, &eo, c->seed0, d);
  } else {
    die("unknown dataset '%s'", c->dataset);
  }
  fl_free(p);
  fl_ml_raw_free(&raw);
  fl_ml_raw_free(&raw2);
  fl_ml_raw_free(&raw3);
}

/* ---- one run --------------------------------------------------------------- */

typedef struct client_s {
  fl_ml_dataset_t ds; /* own rows (labels flipped for label-flip attackers) */
  uint32_t *idx;      /* 0..n-1 */
  int malicious;
  float cw[64];
} client_t;

static void class_weights(const cfg_t *c, const fl_ml_dataset_t *ds, float *cw) {
  uint32_t K = ds->n_classes;
  size_t cnt[64] = {0};
  for (size_t i = 0; i < ds->n; i++) cnt[ds->y[i]]++;
  for (uint32_t k = 0; k < K; k++) {
    double w = cnt[k] ? (double)ds->n / ((double)K * (double)cnt[k]) : 1.0;
    if (c->class_weight == 2) w = sqrt(w);
    if (w > 50) w = 50;
    cw[k] = c->class_weight ? (float)w : 1.0f;
  }
}

/* The operating point (--operating-fpr): the false-alarm budget and the
 * labelled rows it is calibrated on, i.e. the TRAINING rows (the union of
 * the clients' rows; a federated histogram of the clients' normal-row
 * scores gives the same quantile). Set once in main before any run. */
static struct {
  double fpr; /* NAN: decide at argmax */
  const fl_ml_dataset_t *calib;
  double nov_fpr; /* NAN: no novelty override */
} op = {NAN, NULL, NAN};

/* nov: the run's autoencoder (NULL unless --novelty-fpr); t_nov its
 * threshold, computed once per round by the caller. */
static void evaluate(fl_ml_model_t *m, const fl_ml_dataset_t *ds, uint32_t K,
                     fl_nov_t *nov, double t_nov, fl_ml_metrics_t *out, int32_t *pred_keep) {
  int32_t *pred = pred_keep ? pred_keep : fl_malloc(ds->n * sizeof(int32_t));
  float *pr = NULL;
  if (isnan(op.fpr) || op.calib == NULL) {
    fl_ml_model_predict(m, ds->x, ds->n, pred);
  } else {
    size_t nc = op.calib->n > ds->n ? op.calib->n : ds->n;
    pr = fl_malloc(nc * K * sizeof(float));
    fl_ml_model_predict_proba(m, op.calib->x, op.calib->n, pr);
    double t = fl_ml_fpr_threshold(pr, op.calib->y, op.calib->n, K, op.fpr);
    fl_ml_model_predict_proba(m, ds->x, ds->n, pr);
    fl_ml_decide(pr, ds->n, K, t, pred);
  }
  if (nov) {
    if (pr == NULL) {
      pr = fl_malloc((ds->n + 1) * K * sizeof(float));
      fl_ml_model_predict_proba(m, ds->x, ds->n, pr);
    }
    float *sc = fl_malloc((ds->n + 1) * sizeof(float));
    fl_nov_score(nov, ds, sc);
    fl_ml_novelty_override(pr, sc, ds->n, K, t_nov, pred);
    fl_free(sc);
  }
  fl_free(pr);
  fl_ml_metrics(ds->y, pred, ds->n, K, out);
  if (!pred_keep) fl_free(pred);
}

/* The global model's download: its blob size (dies if not finite). */
static size_t download(fl_ml_tensors_t *gl_t, const float *global) {
  memcpy(gl_t->values, global, gl_t->n_values * sizeof(float));
  fl_sbuf_t blob = {0};
  if (fl_ml_blob_encode(gl_t, &blob) < 0) die("global model not finite (diverged)");
  size_t len = blob.len;
  fl_sbuf_free(&blob);
  return len;
}

/* Client k's local training in round r from the global model (P values);
 * its update (trained - global) into u. */
static void train_client(fl_ml_model_t *m, const float *global, size_t P,
                         fl_ml_train_opts_t *to, uint64_t seed, uint32_t r, uint32_t k,
                         const client_t *ck, float *u) {
  float *w = fl_ml_model_params(m)->values;
  memcpy(w, global, P * sizeof(float));
  to->seed = seed * 1000003ull + (uint64_t)r * 7919ull + k;
  to->class_weight = ck->cw;
  if (fl_ml_train(m, &ck->ds, ck->idx, ck->ds.n, to, NULL) < 0) die("training failed");
  for (size_t j = 0; j < P; j++) u[j] = w[j] - global[j];
}

/* fl-round's solo pass: the round's download and every client's training
 * from global, nothing else; returns its wall time in ms. */
static double solo_pass(fl_ml_model_t *m, const float *global, fl_ml_tensors_t *gl_t, size_t P,
                        fl_ml_train_opts_t *to, uint64_t seed, uint32_t r, uint32_t N,
                        const client_t *cl, float *out) {
  double ts = now_ms();
  (void)download(gl_t, global);
  for (uint32_t k = 0; k < N; k++)
    train_client(m, global, P, to, seed, r, k, &cl[k], out + (size_t)k * P);
  return now_ms() - ts;
}

static void run_one(const cfg_t *c, const data_t *d, fl_ml_rule_t rule,
                    fl_ml_attack_t attack, uint64_t seed, const int32_t *clean_pred,
                    FILE *rounds_csv, run_t *res) {
  memset(res, 0, sizeof *res);
  uint32_t N = c->clients, K = d->n_classes;
  fl_ml_partition_t part;
  fl_status_t rc = c->alpha > 0
                       ? fl_ml_partition_dirichlet(d->train.y, d->train.n, K, N, c->alpha,
                                                   (size_t)c->batch, seed, &part)
                       : fl_ml_partition_iid(d->train.n, N, seed, &part);
  if (rc < 0) die("partition failed: %s", fl_status_str(rc));
  /* Malicious clients: a seeded choice of round(malicious * N). */
  uint32_t n_mal = attack == FL_ML_ATTACK_NONE ? 0 : (uint32_t)floor(c->malicious * N + 0.5);
  uint32_t *order = fl_malloc(N * sizeof(uint32_t));
  for (uint32_t k = 0; k < N; k++) order[k] = k;
  fl_rng_t rng;
  fl_rng_seed(&rng, seed ^ 0x6d616c6963696f75ull);
  fl_rng_shuffle_u32(&rng, order, N);
  client_t *cl = fl_calloc(N, sizeof *cl);
  for (uint32_t k = 0; k < n_mal; k++) cl[order[k]].malicious = 1;
  fl_ml_attack_opts_t ao = {.scale = c->scale, .sigma = c->sigma, .z = c->z, .eps = c->eps,
                            .n_total = N, .n_malicious = n_mal, .flip_src = -1, .flip_dst = 0};
  for (uint32_t k = 0; k < N; k++) {
    size_t a = part.start[k], n = part.start[k + 1] - a;
    fl_ml_dataset_subset(&d->train, part.idx + a, n, &cl[k].ds);
    cl[k].idx = fl_malloc((n + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) cl[k].idx[i] = (uint32_t)i;
    if (cl[k].malicious && attack == FL_ML_ATTACK_LABELFLIP)
      fl_ml_attack_flip_labels(cl[k].ds.y, n, &ao);
    class_weights(c, &cl[k].ds, cl[k].cw);
  }
  /* The hybrid detector's autoencoder (--novelty-fpr), over the clients'
   * own rows. */
  fl_nov_t *nov = NULL;
  if (!isnan(op.nov_fpr)) {
    const fl_ml_dataset_t **cds = fl_malloc(N * sizeof *cds);
    for (uint32_t k = 0; k < N; k++) cds[k] = &cl[k].ds;
    nov = fl_nov_new(cds, N, &c->nov, seed);
    fl_free(cds); /* fl_nov_new keeps its own copy of the pointers */
  }
  /* Model. */
  fl_ml_model_spec_t spec = {.n_in = d->train.d, .n_classes = K, .protos_per_class = 4};
  if (strcmp(c->model, "mlp") == 0) {
    spec.kind = FL_ML_MLP;
    spec.n_hidden = c->n_hidden;
    memcpy(spec.hidden, c->hidden, sizeof spec.hidden);
  } else if (strcmp(c->model, "logreg") == 0) {
    spec.kind = FL_ML_LOGREG;
  } else if (strcmp(c->model, "proto") == 0) {
    spec.kind = FL_ML_PROTO;
  } else {
    die("unknown model '%s'", c->model);
  }
  fl_ml_model_t *m = NULL;
  if (fl_ml_model_new(&spec, seed, &m) < 0) die("bad model spec");
  if (spec.kind == FL_ML_PROTO) {
    /* Prototype seeding from a seeded sample of training rows, standing in
     * for a small public seed set the task creator would publish. */
    uint32_t *all = fl_malloc(d->train.n * sizeof(uint32_t));
    for (size_t i = 0; i < d->train.n; i++) all[i] = (uint32_t)i;
    fl_ml_model_proto_init(m, &d->train, all, d->train.n, seed);
    fl_free(all);
  }
  fl_ml_tensors_t *params = fl_ml_model_params(m);
  size_t P = params->n_values;
  float *global = fl_memdup(params->values, P * sizeof(float));
  float *upd = fl_malloc((size_t)N * P * sizeof(float));
  float *benign = fl_malloc((size_t)N * P * sizeof(float));
  double *w = fl_malloc(N * sizeof(double));
  uint8_t *accepted = fl_malloc(N), *sel = fl_malloc(N);
  res->acc_curve = fl_calloc(c->rounds, sizeof(double));
  fl_ml_train_opts_t to = {.opt = c->opt, .lr = (float)c->lr, .momentum = 0.9f,
                           .l2 = (float)c->l2, .prox_mu = (float)c->prox,
                           .dropout = (float)c->dropout, .batch = c->batch,
                           .epochs = c->local_epochs};
  fl_ml_tensors_t gl_t;
  fl_ml_tensors_copy(&gl_t, params);
  double bytes_total = 0, bytes_plain = 0, plain_ms = 0, server_ms = 0;
  /* Steps 3-5 run in a server (bench/fl/server.h): in-process, or through
   * the ledger with each client's own identity. */
  fl_bsrv_t *srv = fl_bsrv_get(c->ledger_net, N);
  if (c->ledger_net || c->fl_round)
    fl_bsrv_summary_at_exit(c->fl_round ? "fl-round" : "fl", c->dataset, N, c->rounds);
  uint8_t *rows_hash = fl_calloc(N, 32);
  for (uint32_t k = 0; k < N; k++) fl_edge_rows_hash(&cl[k].ds, NULL, 0, rows_hash + 32 * k);
  uint32_t f0 = c->f >= 0 ? (uint32_t)c->f : (uint32_t)floor(c->malicious * N + 0.5);
  if (f0 == 0 && rule != FL_ML_RULE_FEDAVG) f0 = 1;
  fl_bsrv_task_t st = {.label = c->dataset, .model = &gl_t, .n_clients = N, .samples = w,
                       .rows_hash = rows_hash, .rule = rule, .f = f0, .clip_norm = c->clip,
                       .filter_rule = c->ledger_net ? FL_BSRV_FILTER_LEDGER : c->filter_rule,
                       .round_z = c->filter_z, .round_cos = c->filter_cos,
                       .filter = {.max_norm = c->filter_max_norm,
                                  .max_norm_z = isnan(c->filter_z) ? 0 : c->filter_z,
                                  .min_cosine = isnan(c->filter_cos) ? -1 : c->filter_cos},
                       .norm_window = c->norm_window ? c->norm_window : 3,
                       .collusion = c->collusion,
                       .median_cosine = isnan(c->dir_cos) ? -1 : c->dir_cos};
  for (uint32_t k = 0; k < N; k++) w[k] = (double)cl[k].ds.n;
  memcpy(gl_t.values, global, P * sizeof(float));
  fl_bsrv_begin(srv, &st);
  for (uint32_t r = 0; r < c->rounds; r++) {
    /* fl-round through the ledger: the round's download and training also
     * run alone (timed: plain FL's shared part, nothing of the ledger in
     * flight), besides the ledger round's, which overlaps them with the
     * early submissions. Same seeds: the same updates (checked). The solo
     * pass runs before the ledger round in even rounds and after it in odd
     * ones, so that whatever the order does (caches the first pass warms,
     * the previous round's leftover work) falls on both passes alike. */
    const int solo_on = c->fl_round && c->ledger_net;
    const int solo_after = solo_on && (r & 1u);
    float *ref = NULL, *g0 = NULL; /* the other pass's updates; the round's start model */
    if (solo_on) {
      ref = fl_malloc(((size_t)N * P + 1) * sizeof(float));
      g0 = fl_malloc((P + 1) * sizeof(float));
      memcpy(g0, global, P * sizeof(float));
      if (!solo_after)
        fl_bsrv_note_solo(srv, solo_pass(m, g0, &gl_t, P, &to, seed, r, N, cl, ref));
    }
    double t0 = now_ms();
    /* Global model download, as a blob. */
    double glen = (double)download(&gl_t, global);
    bytes_total += glen * N;
    bytes_plain += glen * N;
    /* 1. local training. */
    uint32_t nb = 0;
    for (uint32_t k = 0; k < N; k++) {
      float *u = upd + (size_t)k * P;
      train_client(m, global, P, &to, seed, r, k, &cl[k], u);
      w[k] = (double)cl[k].ds.n;
      if (!cl[k].malicious || attack == FL_ML_ATTACK_LABELFLIP)
        memcpy(benign + (size_t)nb++ * P, u, P * sizeof(float));
      /* Pipelining: an update nothing changes any more (every client but
       * those of update attacks, which need the benign updates) goes to the
       * server now, as an edge client submits when its own training ends;
       * the ledger server sends it while the next clients train. */
      if (!(cl[k].malicious && fl_ml_attack_is_update(attack)))
        fl_bsrv_submit_early(srv, r, k, u);
    }
    double t1 = now_ms();
    if (solo_after) memcpy(ref, upd, (size_t)N * P * sizeof(float)); /* before attacks */
    else if (ref && memcmp(ref, upd, (size_t)N * P * sizeof(float)) != 0)
      die("round %u: training twice on the same seeds gave different updates", r);
    /* 2. update attacks. */
    if (fl_ml_attack_is_update(attack)) {
      fl_rng_t arng;
      fl_rng_seed(&arng, seed ^ ((uint64_t)r << 32) ^ 0xa77ac4ull);
      for (uint32_t k = 0; k < N; k++)
        if (cl[k].malicious &&
            fl_ml_attack_update(attack, upd + (size_t)k * P, P, benign, nb, &ao, &arng) < 0)
          die("attack failed");
    }
    /* 3-5. upload, outlier filter, aggregation: the server's part. */
    fl_ml_agg_opts_t ag = {.rule = rule, .clip_norm = c->clip, .collusion = c->collusion, .dir_filter = !isnan(c->dir_cos), .dir_min_cos = isnan(c->dir_cos) ? 0 : c->dir_cos};
    ag.f = f0; /* the server lowers f to what the accepted count allows */
    fl_bsrv_round_t sr = {.round = r, .updates = upd, .ag = &ag, .global = global,
                          .accepted = accepted, .selected = sel};
    fl_bsrv_round(srv, &sr);
    uint32_t na = sr.n_accepted;
    bytes_total += sr.bytes;
    bytes_plain += sr.plain_bytes;
    plain_ms += sr.plain_ms;
    double t3 = now_ms(), t2 = t3 - sr.agg_ms;
    if (solo_after) {
      /* The ledger round is over (its model read back, t3 taken): nothing
       * in flight. */
      float *again = fl_malloc(((size_t)N * P + 1) * sizeof(float));
      fl_bsrv_note_solo(srv, solo_pass(m, g0, &gl_t, P, &to, seed, r, N, cl, again));
      if (memcmp(ref, again, (size_t)N * P * sizeof(float)) != 0)
        die("round %u: training twice on the same seeds gave different updates", r);
      fl_free(again);
    }
    fl_free(ref);
    fl_free(g0);
    uint32_t mal_acc = 0;
    for (uint32_t k = 0; k < N; k++) {
      if (!sel[k]) continue;
      if (cl[k].malicious) {
        res->mal_accepted++;
        mal_acc++;
      } else {
        res->benign_accepted++;
      }
    }
    res->mal_sent += n_mal;
    res->benign_sent += N - n_mal;
    res->train_ms += t1 - t0;
    res->agg_ms += t3 - t2; /* plain: the aggregation; ledger: the whole server part */
    server_ms += sr.server_ms;
    res->round_ms += t3 - t0;
    /* Evaluation (not timed). */
    memcpy(params->values, global, P * sizeof(float));
    fl_ml_metrics_t mt;
    double t_nov = NAN;
    if (nov) {
      double nms = fl_nov_round(nov, r);
      t_nov = fl_nov_threshold(nov, op.nov_fpr);
      if (!c->quiet)
        fprintf(stderr, "  novelty round=%u train_ms=%.0f threshold=%.6g\n", r + 1, nms, t_nov);
    }
    evaluate(m, &d->test, K, nov, t_nov, &mt, NULL);
    res->acc_curve[r] = mt.accuracy;
    if (rounds_csv)
      fprintf(rounds_csv, "%s,%s,%s,%llu,%u,%.6f,%.6f,%u,%u,%.3f\n", c->dataset,
              fl_ml_rule_name(rule), fl_ml_attack_name(attack), (unsigned long long)seed,
              r + 1, mt.accuracy, mt.f1, mal_acc, na, t3 - t0);
    if (!c->quiet)
      fprintf(stderr, "  seed=%llu rule=%s attack=%s round=%u acc=%.4f f1=%.4f accepted=%u/%u mal_accepted=%u round_ms=%.0f\n",
              (unsigned long long)seed, fl_ml_rule_name(rule), fl_ml_attack_name(attack),
              r + 1, mt.accuracy, mt.f1, na, N, mal_acc, t3 - t0);
  }
  memcpy(params->values, global, P * sizeof(float));
  res->pred = fl_malloc((d->test.n + 1) * sizeof(int32_t));
  double t_fin = nov ? fl_nov_threshold(nov, op.nov_fpr) : NAN;
  evaluate(m, &d->test, K, nov, t_fin, &res->m, res->pred);
  if (d->test2_name) evaluate(m, &d->test2, K, nov, t_fin, &res->m2, NULL);
  fl_nov_free(nov);
  res->asr = clean_pred ? fl_ml_asr(d->test.y, res->pred, clean_pred, d->test.n, -1, 0) : 0;
  res->round_ms /= c->rounds;
  res->train_ms /= c->rounds;
  res->agg_ms /= c->rounds;
  res->bytes_per_round = bytes_total / c->rounds;
  fl_bsrv_end(srv);
  fl_bsrv_run_note_t note = {.rule = fl_ml_rule_name(rule), .attack = fl_ml_attack_name(attack),
                             .seed = seed, .accuracy = res->m.accuracy, .f1 = res->m.f1,
                             .train_ms = res->round_ms - server_ms / c->rounds,
                             .server_ms = server_ms / c->rounds, .plain_ms = plain_ms / c->rounds,
                             .bytes_plain = bytes_plain / c->rounds,
                             .bytes = res->bytes_per_round, .mal_sent = res->mal_sent,
                             .mal_accepted = res->mal_accepted};
  fl_bsrv_note_run(&note);
  fl_free(rows_hash);
  fl_ml_tensors_free(&gl_t);
  fl_free(sel);
  fl_free(accepted);
  fl_free(w);
  fl_free(benign);
  fl_free(upd);
  fl_free(global);
  fl_ml_model_free(m);
  for (uint32_t k = 0; k < N; k++) {
    fl_ml_dataset_free(&cl[k].ds);
    fl_free(cl[k].idx);
  }
  fl_free(cl);
  fl_free(order);
  fl_ml_partition_free(&part);
}

/* ---- aggregation over seeds ----------------------------------------------- */

typedef struct stat_s {
  double sum, sum2;
  int n;
} stat_t;
static void st_add(stat_t *s, double v) {
  s->sum += v;
  s->sum2 += v * v;
  s->n++;
}
static double st_mean(const stat_t *s) { return s->n ? s->sum / s->n : NAN; }
static double st_sd(const stat_t *s) {
  if (s->n < 2) return 0;
  double m = st_mean(s), v = (s->sum2 - s->n * m * m) / (s->n - 1);
  return v > 0 ? sqrt(v) : 0;
}

typedef struct row_s {
  fl_ml_rule_t rule;
  fl_ml_attack_t attack;
  stat_t acc, prec, rec, f1, fpr, macro_f1, acc2, f1_2, asr, round_ms, train_ms, agg_ms, bytes;
  uint64_t mal_sent, mal_acc, ben_sent, ben_acc;
  double *curve; /* mean accuracy per round */
  double clean_acc;
} row_t;

static void row_add(row_t *row, const run_t *r, uint32_t rounds, int has2) {
  st_add(&row->acc, r->m.accuracy);
  st_add(&row->prec, r->m.precision);
  st_add(&row->rec, r->m.recall);
  st_add(&row->f1, r->m.f1);
  st_add(&row->fpr, r->m.fpr);
  st_add(&row->macro_f1, r->m.macro_f1);
  if (has2) {
    st_add(&row->acc2, r->m2.accuracy);
    st_add(&row->f1_2, r->m2.f1);
  }
  st_add(&row->asr, r->asr);
  st_add(&row->round_ms, r->round_ms);
  st_add(&row->train_ms, r->train_ms);
  st_add(&row->agg_ms, r->agg_ms);
  st_add(&row->bytes, r->bytes_per_round);
  row->mal_sent += r->mal_sent;
  row->mal_acc += r->mal_accepted;
  row->ben_sent += r->benign_sent;
  row->ben_acc += r->benign_accepted;
  for (uint32_t i = 0; i < rounds; i++) row->curve[i] += r->acc_curve[i];
}

static double frac(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0.0; }

/* ---- options --------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: bench/run fl [options]\n"
          "  --dataset NAME     nsl-kdd (default), unsw-nb15, iris, segment, phishing,\n"
          "                     banana, botiot (--csv), csv (--csv, --columns)\n"
          "  --split S          official (KDDTest+/KDDTest-21), random (80/20) or novel\n"
          "                     (80/20 of KDDTrain+ with every second attack kind of\n"
          "                     each category held out whole: a training-only stand-in\n"
          "                     for KDDTest+'s unseen attacks); nsl-kdd\n"
          "  --classes 2|5      binary or 5-class labels (nsl-kdd)\n"
          "  --clients N        clients (10)        --rounds R   rounds (10)\n"
          "  --local-epochs E   (1)                 --batch B    (64)\n"
          "  --model M          mlp (default), logreg, proto\n"
          "  --hidden L         hidden layer sizes, e.g. 64,32 (default 64,32)\n"
          "  --opt O            adam (default) or sgd (momentum 0.9)\n"
          "  --lr X  --l2 X  --dropout X  --prox MU\n"
          "  --class-weight W   none (default), balanced, sqrt\n"
          "  --alpha A          Dirichlet non-IID alpha; 0 = IID (default)\n"
          "  --rule R[,R...]    fedavg, krum, multikrum, median, trimmed, bulyan\n"
          "  --attack A[,A...]  none, signflip, gaussian, scaling, labelflip, alie, ipm\n"
          "  --malicious F      fraction of malicious clients (0.3 when an attack is set)\n"
          "  --f F              Byzantine count the rule assumes (default round(F*N))\n"
          "  --clip C           norm clipping of updates (0 = off)\n"
          "  --filter-z Z       reject updates whose norm robust z-score > Z\n"
          "  --filter-cos C     reject updates whose cosine to the last global step < C\n"
          "  --scale K --sigma S --alie-z Z --ipm-eps E   attack strengths\n"
          "  --seeds K          seeds (3)           --seed S     first seed (1)\n"
          "  --data-dir DIR     datasets folder (default $FL_SHARED_DIR/datasets)\n"
          "  --out DIR          output folder (default /tmp/fedledger-bench)\n"
          "  --name NAME        output file prefix (default fl-<dataset>)\n"
          "  --csv PATH --columns 'label=X;cat=A,B;ignore=C;noheader'\n"
          "  --scaler S         minmax (default) or zscore, fitted on the training side\n"
          "  --log-threshold T  log1p numeric columns >= 0 whose train max > T (100; 0 off)\n"
          "  --feature-clip X   clamp scaled test features to [-X, 1+X] (1; 0 off)\n"
          "  --operating-fpr Q  decide 'attack' when 1 - P(normal) exceeds the score\n"
          "                     that a fraction Q of the TRAINING normal rows exceed\n"
          "                     (a false-alarm budget); default: argmax\n"
          "  --novelty-fpr Q    hybrid detector: also flag rows whose reconstruction\n"
          "                     error under a federated autoencoder of NORMAL rows\n"
          "                     exceeds the score a fraction Q of the training normal\n"
          "                     rows exceed (bench/fl/novelty.h); default off\n"
          "  --novelty-hidden L autoencoder layers (32,8,32)\n"
          "  --novelty-epochs E autoencoder local epochs per round (1)\n"
          "  --filter-collusion RHO  reject groups of near-identical updates (pairwise\n"
          "                     1 - cos <= RHO x the round's median; 0.1); in fl_ml_aggregate\n"
          "  --filter-dir C     reject updates whose cosine to the coordinate median < C\n"
          "  --quiet            no per-round log lines on stderr\n"
          "  --filter-rule R    round (default: z-score against this round's norms) or\n"
          "                     ledger (mlupdate's rule: previous rounds' accepted norms)\n"
          "  --filter-max-norm X  reject updates whose L2 norm > X (0 = off)\n"
          "  --norm-window W    rounds of accepted norms in the ledger rule's reference (3)\n"
          "  --ledger-net FILE  run steps 3-5 through a live network (bench/run fl --ledger\n"
          "                     starts one and passes this); implies --filter-rule ledger\n"
          "  --fl-round         last line: the fl-round summary (bench/run fl-round)\n");
  exit(2);
}

static double num_arg(const char *s, const char *what) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno || !isfinite(v)) die("bad number '%s' for %s", s, what);
  return v;
}

static void parse_list(const char *s, int is_rule, cfg_t *c) {
  char *t = fl_strdup(s), *save = NULL;
  int n = 0;
  for (char *tok = strtok_r(t, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (n == MAX_LIST) die("too many items in '%s'", s);
    int v = is_rule ? fl_ml_rule_parse(tok) : fl_ml_attack_parse(tok);
    if (v < 0) die("unknown %s '%s'", is_rule ? "rule" : "attack", tok);
    if (is_rule) c->rules[n++] = (fl_ml_rule_t)v;
    else c->attacks[n++] = (fl_ml_attack_t)v;
  }
  if (is_rule) c->n_rules = n;
  else c->n_attacks = n;
  fl_free(t);
}

static void parse_hidden(const char *s, const char *what, uint32_t *hidden, uint32_t *n) {
  char *t = fl_strdup(s), *save = NULL;
  *n = 0;
  for (char *tok = strtok_r(t, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (*n == FL_ML_MAX_HIDDEN) die("too many hidden layers in %s", what);
    double v = num_arg(tok, what);
    if (v < 1 || v > 65536 || v != floor(v)) die("bad layer size '%s' in %s", tok, what);
    hidden[(*n)++] = (uint32_t)v;
  }
  fl_free(t);
  if (*n == 0) die("%s needs at least one layer size", what);
}

static void parse_args(int argc, char **argv, cfg_t *c) {
  static const struct option opts[] = {
      {"dataset", 1, 0, 'd'}, {"split", 1, 0, 'S'}, {"classes", 1, 0, 'k'},
      {"clients", 1, 0, 'n'}, {"rounds", 1, 0, 'r'}, {"local-epochs", 1, 0, 'e'},
      {"batch", 1, 0, 'b'}, {"model", 1, 0, 'M'}, {"hidden", 1, 0, 'H'},
      {"opt", 1, 0, 'O'}, {"lr", 1, 0, 'l'}, {"l2", 1, 0, '2'}, {"dropout", 1, 0, 'D'},
      {"prox", 1, 0, 'P'}, {"class-weight", 1, 0, 'W'}, {"alpha", 1, 0, 'a'},
      {"rule", 1, 0, 'R'}, {"attack", 1, 0, 'A'}, {"malicious", 1, 0, 'm'},
      {"f", 1, 0, 'f'}, {"clip", 1, 0, 'c'}, {"filter-z", 1, 0, 'z'},
      {"filter-cos", 1, 0, 'C'}, {"scale", 1, 0, 1}, {"sigma", 1, 0, 2},
      {"alie-z", 1, 0, 3}, {"ipm-eps", 1, 0, 4}, {"seeds", 1, 0, 's'},
      {"seed", 1, 0, 5}, {"data-dir", 1, 0, 6}, {"out", 1, 0, 'o'},
      {"name", 1, 0, 7}, {"csv", 1, 0, 8}, {"columns", 1, 0, 9}, {"quiet", 0, 0, 'q'},
      {"scaler", 1, 0, 10}, {"log-threshold", 1, 0, 11}, {"feature-clip", 1, 0, 12},
      {"operating-fpr", 1, 0, 30}, {"filter-collusion", 1, 0, 31}, {"filter-dir", 1, 0, 32},
      {"filter-rule", 1, 0, 13}, {"filter-max-norm", 1, 0, 14}, {"norm-window", 1, 0, 15},
      {"ledger-net", 1, 0, 16}, {"fl-round", 0, 0, 17},
      {"novelty-hidden", 1, 0, 33}, {"novelty-fpr", 1, 0, 34}, {"novelty-epochs", 1, 0, 35},
      {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
  int ch, mal_set = 0;
  while ((ch = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
    switch (ch) {
    case 'd': c->dataset = optarg; break;
    case 'S':
      if (strcmp(optarg, "official") && strcmp(optarg, "random") && strcmp(optarg, "novel"))
        die("--split official|random|novel");
      c->split = optarg;
      break;
    case 'k':
      c->classes = (int)num_arg(optarg, "--classes");
      if (c->classes != 2 && c->classes != 5) die("--classes 2|5");
      break;
    case 'n': c->clients = (uint32_t)num_arg(optarg, "--clients"); break;
    case 'r': c->rounds = (uint32_t)num_arg(optarg, "--rounds"); break;
    case 'e': c->local_epochs = (uint32_t)num_arg(optarg, "--local-epochs"); break;
    case 'b': c->batch = (uint32_t)num_arg(optarg, "--batch"); break;
    case 'M': c->model = optarg; break;
    case 'H': parse_hidden(optarg, "--hidden", c->hidden, &c->n_hidden); break;
    case 33: parse_hidden(optarg, "--novelty-hidden", c->nov.hidden, &c->nov.n_hidden); break;
    case 35:
      c->nov.epochs = (uint32_t)num_arg(optarg, "--novelty-epochs");
      if (c->nov.epochs < 1 || c->nov.epochs > 100) die("--novelty-epochs 1..100");
      break;
    case 34:
      c->novelty_fpr = num_arg(optarg, "--novelty-fpr");
      if (c->novelty_fpr < 0 || c->novelty_fpr >= 1) die("--novelty-fpr must be in [0, 1)");
      break;
    case 'O':
      if (strcmp(optarg, "adam") == 0) c->opt = FL_ML_OPT_ADAM;
      else if (strcmp(optarg, "sgd") == 0) c->opt = FL_ML_OPT_SGD;
      else die("--opt adam|sgd");
      break;
    case 'l': c->lr = num_arg(optarg, "--lr"); break;
    case '2': c->l2 = num_arg(optarg, "--l2"); break;
    case 'D': c->dropout = num_arg(optarg, "--dropout"); break;
    case 'P': c->prox = num_arg(optarg, "--prox"); break;
    case 'W':
      if (strcmp(optarg, "none") == 0) c->class_weight = 0;
      else if (strcmp(optarg, "balanced") == 0) c->class_weight = 1;
      else if (strcmp(optarg, "sqrt") == 0) c->class_weight = 2;
      else die("--class-weight none|balanced|sqrt");
      break;
    case 'a': c->alpha = num_arg(optarg, "--alpha"); break;
    case 'R': parse_list(optarg, 1, c); break;
    case 'A': parse_list(optarg, 0, c); break;
    case 'm': c->malicious = num_arg(optarg, "--malicious"); mal_set = 1; break;
    case 'f': c->f = (int)num_arg(optarg, "--f"); break;
    case 'c': c->clip = num_arg(optarg, "--clip"); break;
    case 'z': c->filter_z = num_arg(optarg, "--filter-z"); break;
    case 'C': c->filter_cos = num_arg(optarg, "--filter-cos"); break;
    case 1: c->scale = num_arg(optarg, "--scale"); break;
    case 2: c->sigma = num_arg(optarg, "--sigma"); break;
    case 3: c->z = num_arg(optarg, "--alie-z"); break;
    case 4: c->eps = num_arg(optarg, "--ipm-eps"); break;
    case 's': c->seeds = (uint32_t)num_arg(optarg, "--seeds"); break;
    case 5: c->seed0 = (uint64_t)num_arg(optarg, "--seed"); break;
    case 6: c->data_dir = optarg; break;
    case 'o': c->out_dir = optarg; break;
    case 7: c->name = optarg; break;
    case 8: c->csv_path = optarg; break;
    case 9: c->columns = optarg; break;
    case 'q': c->quiet = 1; break;
    case 10:
      if (strcmp(optarg, "minmax") == 0) c->scale_kind = FL_ML_SCALE_MINMAX;
      else if (strcmp(optarg, "zscore") == 0) c->scale_kind = FL_ML_SCALE_ZSCORE;
      else die("--scaler minmax|zscore");
      break;
    case 11: c->log_threshold = num_arg(optarg, "--log-threshold"); break;
    case 12: c->feat_clip = num_arg(optarg, "--feature-clip"); break;
    case 30:
      c->operating_fpr = num_arg(optarg, "--operating-fpr");
      if (c->operating_fpr < 0 || c->operating_fpr >= 1) die("--operating-fpr must be in [0, 1)");
      break;
    case 31:
      c->collusion = num_arg(optarg, "--filter-collusion");
      if (c->collusion < 0 || c->collusion >= 1) die("--filter-collusion must be in [0, 1)");
      break;
    case 32: c->dir_cos = num_arg(optarg, "--filter-dir"); break;
    case 13:
      if (strcmp(optarg, "round") == 0) c->filter_rule = FL_BSRV_FILTER_ROUND;
      else if (strcmp(optarg, "ledger") == 0) c->filter_rule = FL_BSRV_FILTER_LEDGER;
      else die("--filter-rule round|ledger");
      break;
    case 14: c->filter_max_norm = num_arg(optarg, "--filter-max-norm"); break;
    case 15:
      c->norm_window = (uint32_t)num_arg(optarg, "--norm-window");
      if (c->norm_window < 1 || c->norm_window > 64) die("--norm-window 1..64");
      break;
    case 16: c->ledger_net = optarg; break;
    case 17: c->fl_round = 1; break;
    default: usage();
    }
  }
  if (optind < argc) die("unexpected argument '%s'", argv[optind]);
  int any_attack = 0;
  for (int i = 0; i < c->n_attacks; i++) any_attack |= c->attacks[i] != FL_ML_ATTACK_NONE;
  if (!mal_set) c->malicious = any_attack ? 0.3 : 0.0;
  if (c->clients < 1 || c->clients > 1000) die("--clients 1..1000");
  if (c->rounds < 1 || c->seeds < 1 || c->batch < 1 || c->local_epochs < 1)
    die("--rounds, --seeds, --batch, --local-epochs must be >= 1");
  if (c->malicious < 0 || c->malicious >= 1) die("--malicious must be in [0, 1)");
  if (c->n_hidden == 0) die("--hidden needs at least one size");
  if (c->ledger_net) c->filter_rule = FL_BSRV_FILTER_LEDGER;
  if (c->filter_max_norm < 0) die("--filter-max-norm must be >= 0");
  if (c->filter_max_norm > 0 && c->filter_rule != FL_BSRV_FILTER_LEDGER)
    die("--filter-max-norm is part of the ledger rule: add --filter-rule ledger");
}

/* ---- output ---------------------------------------------------------------- */

static void mkdirs(const char *path) {
  char *p = fl_strdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    mkdir(p, 0755);
    *s = '/';
  }
  if (mkdir(p, 0755) < 0 && errno != EEXIST) die("cannot create %s: %s", p, strerror(errno));
  fl_free(p);
}

static void json_str(fl_sbuf_t *b, const char *s) {
  fl_sbuf_append_str(b, "\"");
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fl_sbuf_printf(b, "\\%c", *s);
    else if ((unsigned char)*s < 0x20) fl_sbuf_printf(b, "\\u%04x", *s);
    else fl_sbuf_append(b, s, 1);
  }
  fl_sbuf_append_str(b, "\"");
}

static void json_num(fl_sbuf_t *b, double v) {
  if (isfinite(v)) fl_sbuf_printf(b, "%.6g", v);
  else fl_sbuf_append_str(b, "null");
}

static void json_row(fl_sbuf_t *b, const row_t *r, int has2) {
  fl_sbuf_append_str(b, "{\"rule\":");
  json_str(b, fl_ml_rule_name(r->rule));
  fl_sbuf_append_str(b, ",\"attack\":");
  json_str(b, fl_ml_attack_name(r->attack));
#define JF(key, val)                        \
  do {                                      \
    fl_sbuf_append_str(b, ",\"" key "\":"); \
    json_num(b, (val));                     \
  } while (0)
  JF("accuracy", st_mean(&r->acc));
  JF("accuracy_sd", st_sd(&r->acc));
  JF("precision", st_mean(&r->prec));
  JF("recall", st_mean(&r->rec));
  JF("f1", st_mean(&r->f1));
  JF("f1_sd", st_sd(&r->f1));
  JF("fpr", st_mean(&r->fpr));
  JF("macro_f1", st_mean(&r->macro_f1));
  if (has2) {
    JF("accuracy_test2", st_mean(&r->acc2));
    JF("f1_test2", st_mean(&r->f1_2));
  }
  JF("clean_accuracy", r->clean_acc);
  JF("malicious_accepted", frac(r->mal_acc, r->mal_sent));
  JF("benign_accepted", frac(r->ben_acc, r->ben_sent));
  JF("asr", st_mean(&r->asr));
  JF("round_ms", st_mean(&r->round_ms));
  JF("train_ms", st_mean(&r->train_ms));
  JF("agg_ms", st_mean(&r->agg_ms));
  JF("bytes_per_round", st_mean(&r->bytes));
#undef JF
  fl_sbuf_append_str(b, "}");
}

int main(int argc, char **argv) {
  cfg_t c = {.dataset = "nsl-kdd", .split = "official", .classes = 2, .clients = 10,
             .rounds = 10, .seeds = 3, .local_epochs = 1, .batch = 64, .lr = 1e-3,
             .alpha = 0, .filter_z = NAN, .filter_cos = NAN, .f = -1, .model = "mlp",
             .hidden = {64, 32}, .n_hidden = 2, .opt = FL_ML_OPT_ADAM, .seed0 = 1,
             .n_rules = 1, .rules = {FL_ML_RULE_FEDAVG}, .n_attacks = 1,
             .scale_kind = FL_ML_SCALE_MINMAX, .log_threshold = 100, .feat_clip = 1,
             .operating_fpr = NAN, .dir_cos = NAN, .novelty_fpr = NAN,
             .nov = {.n_hidden = 3, .hidden = {32, 8, 32}, .lr = 1e-3f, .batch = 64,
                     .epochs = 1},
             .attacks = {FL_ML_ATTACK_NONE}};
  parse_args(argc, argv, &c);
  char *dd = NULL;
  if (c.data_dir == NULL) {
    const char *sh = getenv("FL_SHARED_DIR");
    dd = fl_sprintf("%s/datasets", sh && *sh ? sh : "../shared");
    c.data_dir = dd;
  }
  if (c.out_dir == NULL) c.out_dir = "/tmp/fedledger-bench";
  mkdirs(c.out_dir);
  char *name = c.name ? fl_strdup(c.name) : fl_sprintf("fl-%s", c.dataset);

  double tl = now_ms();
  data_t d;
  load_data(&c, &d);
  fprintf(stderr, "fl_bench: dataset=%s train=%zu test=%zu%s features=%u classes=%u load_ms=%.0f\n",
          c.dataset, d.train.n, d.test.n, d.test2_name ? " (+test2)" : "", d.train.d,
          d.n_classes, now_ms() - tl);
  int has2 = d.test2_name != NULL;
  op.fpr = c.operating_fpr;
  op.nov_fpr = c.novelty_fpr;
  if (c.ledger_net && !isnan(c.novelty_fpr))
    die("--novelty-fpr is a plain-FL detector; the ledger runs do not carry its autoencoder");
  op.calib = &d.train;

  char *rounds_path = fl_sprintf("%s/%s-rounds.csv", c.out_dir, name);
  FILE *rcsv = fopen(rounds_path, "w");
  if (rcsv == NULL) die("cannot write %s: %s", rounds_path, strerror(errno));
  fprintf(rcsv, "dataset,rule,attack,seed,round,accuracy,f1,malicious_accepted,accepted,round_ms\n");

  /* Rows: for each rule, the clean row then each attack asked for. */
  int n_att = 0;
  fl_ml_attack_t atts[MAX_LIST + 1];
  atts[n_att++] = FL_ML_ATTACK_NONE;
  for (int i = 0; i < c.n_attacks; i++)
    if (c.attacks[i] != FL_ML_ATTACK_NONE) atts[n_att++] = c.attacks[i];
  int n_rows = c.n_rules * n_att;
  row_t *rows = fl_calloc((size_t)n_rows, sizeof *rows);
  for (int ri = 0; ri < c.n_rules; ri++)
    for (int ai = 0; ai < n_att; ai++) {
      row_t *row = &rows[ri * n_att + ai];
      row->rule = c.rules[ri];
      row->attack = atts[ai];
      row->curve = fl_calloc(c.rounds, sizeof(double));
    }
  for (int ri = 0; ri < c.n_rules; ri++) {
    for (uint32_t s = 0; s < c.seeds; s++) {
      uint64_t seed = c.seed0 + s;
      run_t clean;
      run_one(&c, &d, c.rules[ri], FL_ML_ATTACK_NONE, seed, NULL, rcsv, &clean);
      row_add(&rows[ri * n_att], &clean, c.rounds, has2);
      for (int ai = 1; ai < n_att; ai++) {
        run_t r;
        run_one(&c, &d, c.rules[ri], atts[ai], seed, clean.pred, rcsv, &r);
        row_add(&rows[ri * n_att + ai], &r, c.rounds, has2);
        fl_free(r.pred);
        fl_free(r.acc_curve);
      }
      fl_free(clean.pred);
      fl_free(clean.acc_curve);
    }
    for (int ai = 0; ai < n_att; ai++) rows[ri * n_att + ai].clean_acc = st_mean(&rows[ri * n_att].acc);
  }
  fclose(rcsv);

  /* Summary CSV, curves and the plot. */
  char *sum_path = fl_sprintf("%s/%s-summary.csv", c.out_dir, name);
  FILE *sc = fopen(sum_path, "w");
  if (sc == NULL) die("cannot write %s", sum_path);
  fprintf(sc, "dataset,clients,rounds,seeds,alpha,malicious,rule,attack,accuracy,accuracy_sd,"
              "precision,recall,f1,f1_sd,fpr,macro_f1,accuracy_test2,f1_test2,clean_accuracy,"
              "malicious_accepted,benign_accepted,asr,round_ms,train_ms,agg_ms,bytes_per_round\n");
  for (int i = 0; i < n_rows; i++) {
    const row_t *r = &rows[i];
    fprintf(sc, "%s,%u,%u,%u,%g,%g,%s,%s,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,"
                "%.6f,%.6f,%.6f,%.6f,%.3f,%.3f,%.3f,%.0f\n",
            c.dataset, c.clients, c.rounds, c.seeds, c.alpha,
            r->attack == FL_ML_ATTACK_NONE ? 0.0 : c.malicious, fl_ml_rule_name(r->rule),
            fl_ml_attack_name(r->attack), st_mean(&r->acc), st_sd(&r->acc), st_mean(&r->prec),
            st_mean(&r->rec), st_mean(&r->f1), st_sd(&r->f1), st_mean(&r->fpr),
            st_mean(&r->macro_f1), has2 ? st_mean(&r->acc2) : NAN, has2 ? st_mean(&r->f1_2) : NAN,
            r->clean_acc, frac(r->mal_acc, r->mal_sent), frac(r->ben_acc, r->ben_sent),
            st_mean(&r->asr), st_mean(&r->round_ms), st_mean(&r->train_ms),
            st_mean(&r->agg_ms), st_mean(&r->bytes));
  }
  fclose(sc);
  char *curve_path = fl_sprintf("%s/%s-curves.csv", c.out_dir, name);
  FILE *cf = fopen(curve_path, "w");
  if (cf == NULL) die("cannot write %s", curve_path);
  fprintf(cf, "round");
  for (int i = 0; i < n_rows; i++)
    fprintf(cf, ",%s/%s", fl_ml_rule_name(rows[i].rule), fl_ml_attack_name(rows[i].attack));
  fprintf(cf, "\n");
  for (uint32_t r = 0; r < c.rounds; r++) {
    fprintf(cf, "%u", r + 1);
    for (int i = 0; i < n_rows; i++) fprintf(cf, ",%.6f", rows[i].curve[r] / c.seeds);
    fprintf(cf, "\n");
  }
  fclose(cf);
  char *png_path = fl_sprintf("%s/%s-accuracy.png", c.out_dir, name);
  char *gp_path = fl_sprintf("%s/%s-accuracy.gp", c.out_dir, name);
  FILE *gp = fopen(gp_path, "w");
  int have_png = 0;
  if (gp) {
    fprintf(gp,
            "set terminal pngcairo size 900,560 noenhanced\n"
            "set output '%s'\n"
            "set datafile separator ','\n"
            "set key outside right\n"
            "set grid\n"
            "set xlabel 'round'\nset ylabel 'accuracy (%s)'\n"
            "set title '%s, %u clients, %s, mean of %u seeds'\n"
            "plot for [i=2:%d] '%s' using 1:i with linespoints title columnheader(i)\n",
            png_path, d.test_name, c.dataset, c.clients,
            c.alpha > 0 ? "non-IID" : "IID", c.seeds, n_rows + 1, curve_path);
    fclose(gp);
    char *cmd = fl_sprintf("gnuplot '%s' 2>/dev/null", gp_path);
    int st = system(cmd);
    if (st != 0) {
      /* Older gnuplot builds lack pngcairo; try the gd png terminal. */
      char *sed = fl_sprintf("sed -i 's/^set terminal pngcairo/set terminal png/' '%s' && "
                             "gnuplot '%s' 2>/dev/null", gp_path, gp_path);
      st = system(sed);
      fl_free(sed);
    }
    have_png = st == 0 && access(png_path, R_OK) == 0;
    if (!have_png) fprintf(stderr, "fl_bench: gnuplot failed; no PNG written\n");
    fl_free(cmd);
  }

  /* The table. */
  printf("\nFL (%s): dataset=%s test=%s clients=%u rounds=%u local_epochs=%u "
         "model=%s opt=%s alpha=%g malicious=%g seeds=%u operating_fpr=%g collusion=%g "
         "dir_cos=%g novelty_fpr=%g\n",
         c.ledger_net ? "through the ledger" : "plain, in-process", c.dataset, d.test_name, c.clients, c.rounds, c.local_epochs, c.model,
         c.opt == FL_ML_OPT_ADAM ? "adam" : "sgd", c.alpha, c.malicious, c.seeds,
         c.operating_fpr, c.collusion, c.dir_cos, c.novelty_fpr);
  printf("%-10s %-10s %-17s %-7s %-7s %-17s %-7s %-8s %-8s %-7s %-9s %-9s\n", "rule", "attack",
         "accuracy", "prec", "recall", "F1", "FPR", has2 ? "acc(t2)" : "-", "mal_acc",
         "ASR", "round_ms", "KB/round");
  for (int i = 0; i < n_rows; i++) {
    const row_t *r = &rows[i];
    char a[32], f[32];
    snprintf(a, sizeof a, "%.4f±%.4f", st_mean(&r->acc), st_sd(&r->acc));
    snprintf(f, sizeof f, "%.4f±%.4f", st_mean(&r->f1), st_sd(&r->f1));
    printf("%-10s %-10s %-17s %-7.4f %-7.4f %-17s %-7.4f %-8.4f %-8.3f %-7.4f %-9.1f %-9.1f\n",
           fl_ml_rule_name(r->rule), fl_ml_attack_name(r->attack), a, st_mean(&r->prec),
           st_mean(&r->rec), f, st_mean(&r->fpr), has2 ? st_mean(&r->acc2) : 0.0,
           frac(r->mal_acc, r->mal_sent), st_mean(&r->asr), st_mean(&r->round_ms),
           st_mean(&r->bytes) / 1024.0);
  }
  printf("csv: %s\nrounds: %s\n%s%s\n", sum_path, rounds_path, have_png ? "png: " : "",
         have_png ? png_path : "");

  /* JSON summary, the last line. Top level = the first rule with the first
   * attack asked for (the clean row when none). */
  int head = n_att > 1 ? 1 : 0;
  fl_sbuf_t j = {0};
  fl_sbuf_printf(&j, "{\"bench\":\"fl\",\"mode\":\"%s\",\"dataset\":",
                 c.ledger_net ? "ledger" : "plain");
  json_str(&j, c.dataset);
  fl_sbuf_append_str(&j, ",\"test\":");
  json_str(&j, d.test_name);
  fl_sbuf_printf(&j, ",\"clients\":%u,\"rounds\":%u,\"seeds\":%u,\"classes\":%u,\"alpha\":",
                 c.clients, c.rounds, c.seeds, d.n_classes);
  json_num(&j, c.alpha);
  fl_sbuf_append_str(&j, ",\"malicious\":");
  json_num(&j, c.malicious);
  const row_t *h = &rows[head];
  fl_sbuf_append_str(&j, ",\"rule\":");
  json_str(&j, fl_ml_rule_name(h->rule));
  fl_sbuf_append_str(&j, ",\"attack\":");
  json_str(&j, fl_ml_attack_name(h->attack));
  fl_sbuf_append_str(&j, ",\"accuracy\":");
  json_num(&j, st_mean(&h->acc));
  fl_sbuf_append_str(&j, ",\"f1\":");
  json_num(&j, st_mean(&h->f1));
  fl_sbuf_append_str(&j, ",\"malicious_accepted\":");
  json_num(&j, frac(h->mal_acc, h->mal_sent));
  fl_sbuf_append_str(&j, ",\"asr\":");
  json_num(&j, st_mean(&h->asr));
  fl_sbuf_append_str(&j, ",\"clean_accuracy\":");
  json_num(&j, h->clean_acc);
  fl_sbuf_append_str(&j, ",\"round_ms\":");
  json_num(&j, st_mean(&h->round_ms));
  fl_sbuf_append_str(&j, ",\"bytes_per_round\":");
  json_num(&j, st_mean(&h->bytes));
  fl_sbuf_append_str(&j, ",\"csv\":");
  json_str(&j, sum_path);
  fl_sbuf_append_str(&j, ",\"rounds_csv\":");
  json_str(&j, rounds_path);
  fl_sbuf_append_str(&j, ",\"png\":");
  if (have_png) json_str(&j, png_path);
  else fl_sbuf_append_str(&j, "null");
  fl_sbuf_append_str(&j, ",\"rows\":[");
  for (int i = 0; i < n_rows; i++) {
    if (i) fl_sbuf_append_str(&j, ",");
    json_row(&j, &rows[i], has2);
  }
  fl_sbuf_append_str(&j, "]}");
  fflush(stdout);
  printf("%s\n", fl_sbuf_cstr(&j));
  fl_sbuf_free(&j);

  for (int i = 0; i < n_rows; i++) fl_free(rows[i].curve);
  fl_free(rows);
  fl_free(png_path);
  fl_free(gp_path);
  fl_free(curve_path);
  fl_free(sum_path);
  fl_free(rounds_path);
  fl_free(name);
  fl_free(dd);
  fl_ml_dataset_free(&d.train);
  fl_ml_dataset_free(&d.test);
  fl_ml_dataset_free(&d.test2);
  return 0;
}
