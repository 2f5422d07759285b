/* SPDX-License-Identifier: Apache-2.0
 *
 * server_plain.c: the in-process FL server of fl_bench (server.h) and the
 * dispatch of the fl_bsrv_* interface.
 *
 * A round: every update is encoded as a tensor blob, decoded and checked as
 * a server would (its size is the upload part of "bytes per round"); the
 * outlier filter decides which are accepted; the rule aggregates the
 * accepted ones in client order (f lowered to what their count allows, as
 * mlupdate's CloseRound does) and the global model moves by the result,
 * which becomes the "previous global step" of the cosine filter.
 *
 * Filter rules:
 *   round  - the runner's original: norm z-score against all norms of THIS
 *            round, cosine against the previous step (NAN thresholds = off);
 *   ledger - mlupdate's, by calling the chaincode's fl_mlu_score_update with
 *            the accepted norms of the previous norm_window rounds (oldest
 *            first, client order inside a round) as references, as
 *            CloseRound stores them in the next round's record.
 */
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/fl/server.h"
#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/clock.h"

static volatile int g_dying; /* no summary line after a failure */

void fl_bsrv_die(const char *fmt, ...) {
  g_dying = 1;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fl_bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

/* ---- dispatch ----------------------------------------------------------- */

void fl_bsrv_begin(fl_bsrv_t *s, const fl_bsrv_task_t *t) { s->ops->begin(s, t); }
void fl_bsrv_submit_early(fl_bsrv_t *s, uint32_t round, uint32_t k, const float *update) {
  if (s->ops->submit_early) s->ops->submit_early(s, round, k, update);
}
void fl_bsrv_round(fl_bsrv_t *s, fl_bsrv_round_t *r) {
  s->ops->round(s, r);
  s->rounds++;
}
void fl_bsrv_note_solo(fl_bsrv_t *s, double ms) {
  s->solo_ms += ms;
  s->solo_rounds++;
}
void fl_bsrv_end(fl_bsrv_t *s) { s->ops->end(s); }
void fl_bsrv_free(fl_bsrv_t *s) {
  if (s) s->ops->free(s);
}
uint64_t fl_bsrv_mismatches(const fl_bsrv_t *s) { return s->mismatches; }
uint64_t fl_bsrv_hash_failures(const fl_bsrv_t *s) { return s->hash_failures; }
uint64_t fl_bsrv_rounds(const fl_bsrv_t *s) { return s->rounds; }

/* ---- one plain run ------------------------------------------------------ */

struct fl_bsrv_plain_run_s {
  fl_bsrv_task_t t;
  double *samples;           /* owned copy */
  fl_ml_tensors_t layout;    /* for blob encode/decode */
  size_t P;
  uint32_t N;
  float *prev_step;          /* what the last aggregation moved the model (new - old) */
  int has_step;
  double *norms;             /* N: this round's norms */
  float *rows, *agg;         /* accepted rows; aggregate */
  double *w;
  uint8_t *sel;
  uint32_t *ids;
  /* accepted norms of the last norm_window rounds, a ring of rounds */
  double **hist;
  size_t *hist_n;
  uint32_t hist_len, hist_head;
  double *ref;               /* scratch: the references of a round */
};

fl_bsrv_plain_run_t *fl_bsrv_plain_run_new(const fl_bsrv_task_t *t) {
  fl_bsrv_plain_run_t *p = fl_calloc(1, sizeof *p);
  p->t = *t;
  p->N = t->n_clients;
  p->samples = fl_memdup(t->samples, p->N * sizeof(double));
  p->t.samples = p->samples;
  fl_ml_tensors_copy(&p->layout, t->model);
  p->t.model = NULL; /* not kept */
  p->P = p->layout.n_values;
  p->prev_step = fl_calloc(p->P, sizeof(float));
  p->norms = fl_malloc(p->N * sizeof(double));
  p->rows = fl_malloc((size_t)p->N * p->P * sizeof(float));
  p->agg = fl_malloc(p->P * sizeof(float));
  p->w = fl_malloc(p->N * sizeof(double));
  p->sel = fl_malloc(p->N);
  p->ids = fl_malloc(p->N * sizeof(uint32_t));
  uint32_t W = t->norm_window ? t->norm_window : 1;
  p->t.norm_window = W;
  p->hist = fl_calloc(W, sizeof *p->hist);
  p->hist_n = fl_calloc(W, sizeof *p->hist_n);
  p->ref = fl_malloc(((size_t)W * p->N + 1) * sizeof(double));
  return p;
}

void fl_bsrv_plain_run_free(fl_bsrv_plain_run_t *p) {
  if (p == NULL) return;
  for (uint32_t i = 0; i < p->t.norm_window; i++) fl_free(p->hist[i]);
  fl_free(p->hist);
  fl_free(p->hist_n);
  fl_free(p->ref);
  fl_free(p->ids);
  fl_free(p->sel);
  fl_free(p->w);
  fl_free(p->agg);
  fl_free(p->rows);
  fl_free(p->norms);
  fl_free(p->prev_step);
  fl_ml_tensors_free(&p->layout);
  fl_free(p->samples);
  fl_free(p);
}

/* The references of this round: the rounds in the ring, oldest first. */
static size_t refs(fl_bsrv_plain_run_t *p) {
  size_t n = 0;
  for (uint32_t i = 0; i < p->hist_len; i++) {
    uint32_t k = (p->hist_head + p->t.norm_window - p->hist_len + i) % p->t.norm_window;
    memcpy(p->ref + n, p->hist[k], p->hist_n[k] * sizeof(double));
    n += p->hist_n[k];
  }
  return n;
}

static void push_round(fl_bsrv_plain_run_t *p, const double *norms, size_t n) {
  uint32_t k = p->hist_head;
  fl_free(p->hist[k]);
  p->hist[k] = fl_malloc((n + 1) * sizeof(double));
  memcpy(p->hist[k], norms, n * sizeof(double));
  p->hist_n[k] = n;
  p->hist_head = (k + 1) % p->t.norm_window;
  if (p->hist_len < p->t.norm_window) p->hist_len++;
}

void fl_bsrv_plain_run_round(fl_bsrv_plain_run_t *p, fl_bsrv_round_t *r) {
  uint32_t N = p->N;
  size_t P = p->P;
  double t0 = (double)fl_mono_ns() / 1e6;
  r->bytes = 0;
  /* 3. upload as blobs; the server decodes and checks each one. */
  for (uint32_t k = 0; k < N; k++) {
    memcpy(p->layout.values, r->updates + (size_t)k * P, P * sizeof(float));
    fl_sbuf_t b = {0};
    r->accepted[k] = fl_ml_blob_encode(&p->layout, &b) == FL_OK;
    if (r->accepted[k]) {
      fl_ml_tensors_t back;
      r->accepted[k] = fl_ml_blob_decode(fl_sbuf_view(&b), &back) == FL_OK &&
                       fl_ml_tensors_same_layout(&back, &p->layout);
      fl_ml_tensors_free(&back);
    }
    r->bytes += (double)b.len;
    fl_sbuf_free(&b);
  }
  /* 4. outlier filter. */
  if (p->t.filter_rule == FL_BSRV_FILTER_ROUND) {
    for (uint32_t k = 0; k < N; k++) p->norms[k] = fl_ml_norm(r->updates + (size_t)k * P, P);
    int have_prev = r->round > 0 && fl_ml_norm(p->prev_step, P) > 0;
    for (uint32_t k = 0; k < N; k++) {
      if (!r->accepted[k]) continue;
      const float *u = r->updates + (size_t)k * P;
      if (!isnan(p->t.round_z) && fl_ml_score_norm_z(u, P, p->norms, N) > p->t.round_z)
        r->accepted[k] = 0;
      if (!isnan(p->t.round_cos) && have_prev && fl_ml_cosine(u, p->prev_step, P) < p->t.round_cos)
        r->accepted[k] = 0;
    }
  } else {
    size_t nref = refs(p);
    for (uint32_t k = 0; k < N; k++) {
      if (!r->accepted[k]) continue;
      fl_mlu_scores_t sc;
      fl_mlu_reason_t why =
          fl_mlu_score_update(r->updates + (size_t)k * P, P, p->ref, nref,
                              p->has_step ? p->prev_step : NULL, &p->t.filter, &sc);
      r->accepted[k] = why == FL_MLU_OK;
      p->norms[k] = sc.norm;
    }
  }
  /* 5. aggregate the accepted updates in client order. */
  uint32_t na = 0;
  double *acc_norms = fl_malloc((N + 1) * sizeof(double));
  for (uint32_t k = 0; k < N; k++)
    if (r->accepted[k]) {
      memcpy(p->rows + (size_t)na * P, r->updates + (size_t)k * P, P * sizeof(float));
      p->w[na] = p->samples[k];
      acc_norms[na] = p->norms[k];
      p->ids[na++] = k;
    }
  if (p->t.filter_rule == FL_BSRV_FILTER_LEDGER) push_round(p, acc_norms, na);
  fl_free(acc_norms);
  r->n_accepted = na;
  fl_ml_agg_opts_t ag = *r->ag;
  fl_ml_rule_t rule = ag.rule;
  uint32_t f = ag.f;
  /* Shrink f to what the accepted count allows (Bulyan needs n >= 4f+3). */
  while (f > 0 && ((rule == FL_ML_RULE_BULYAN && na < 4 * f + 3) ||
                   ((rule == FL_ML_RULE_KRUM || rule == FL_ML_RULE_MULTIKRUM) && na < 2 * f + 3) ||
                   (rule == FL_ML_RULE_TRIMMED && na <= 2 * f)))
    f--;
  ag.f = f;
  if (ag.m > na) ag.m = na;
  memset(p->sel, 0, N);
  memset(r->selected, 0, N);
  double ta = (double)fl_mono_ns() / 1e6;
  int agg_ok = na > 0 && fl_ml_aggregate(p->rows, p->w, na, P, &ag, p->agg, p->sel) == FL_OK;
  r->agg_ms = (double)fl_mono_ns() / 1e6 - ta;
  if (agg_ok) {
    /* The step is what the model moved, new - old in float, as mlupdate's
     * SubmitUpdate computes it from the two stored models (not the
     * aggregate itself, which can differ from it in the last bit). */
    for (size_t j = 0; j < P; j++) {
      float old = r->global[j];
      r->global[j] += p->agg[j];
      p->prev_step[j] = r->global[j] - old;
    }
    p->has_step = 1;
    for (uint32_t a = 0; a < na; a++) r->selected[p->ids[a]] = p->sel[a];
  }
  r->server_ms = (double)fl_mono_ns() / 1e6 - t0;
  r->plain_ms = r->server_ms;
  r->plain_bytes = r->bytes;
}

/* ---- the plain server ---------------------------------------------------- */

typedef struct plain_s {
  fl_bsrv_t base;
  fl_bsrv_plain_run_t *run;
} plain_t;

static void plain_begin(fl_bsrv_t *s, const fl_bsrv_task_t *t) {
  plain_t *p = (plain_t *)s;
  fl_bsrv_plain_run_free(p->run);
  p->run = fl_bsrv_plain_run_new(t);
}
static void plain_round(fl_bsrv_t *s, fl_bsrv_round_t *r) {
  fl_bsrv_plain_run_round(((plain_t *)s)->run, r);
}
static void plain_end(fl_bsrv_t *s) {
  plain_t *p = (plain_t *)s;
  fl_bsrv_plain_run_free(p->run);
  p->run = NULL;
}
static void plain_free(fl_bsrv_t *s) {
  plain_end(s);
  fl_free(s);
}

static const fl_bsrv_ops_t plain_ops = {plain_begin, plain_round, plain_end, plain_free};

fl_bsrv_t *fl_bsrv_plain_new(void) {
  plain_t *p = fl_calloc(1, sizeof *p);
  p->base.ops = &plain_ops;
  return &p->base;
}

/* ---- process-wide server and the summary line ------------------------------ */

static fl_bsrv_t *g_srv;
static int g_srv_ledger;
static fl_bsrv_run_note_t *g_notes;
static size_t g_n_notes;
static char g_kind[16], g_dataset[64];
static uint32_t g_clients, g_rounds;

static void json_num(double v) {
  if (isfinite(v)) printf("%.17g", v);
  else printf("null");
}

static void at_exit(void) {
  if (g_kind[0] && g_n_notes > 0 && !g_dying) {
    double tr = 0, sv = 0, pl = 0, bp = 0, bl = 0;
    for (size_t i = 0; i < g_n_notes; i++) {
      tr += g_notes[i].train_ms;
      sv += g_notes[i].server_ms;
      pl += g_notes[i].plain_ms;
      bp += g_notes[i].bytes_plain;
      bl += g_notes[i].bytes;
    }
    double n = (double)g_n_notes;
    fflush(stdout);
    if (strcmp(g_kind, "fl-round") == 0) {
      /* Plain FL's shared part: the training pass timed alone when the
       * runner made one (ledger: the ledger pass overlaps its training with
       * the early submissions, and on a shared machine the network's work
       * slows it), else the shared part of this run. */
      double tp = g_srv && g_srv->solo_rounds ? g_srv->solo_ms / (double)g_srv->solo_rounds
                                              : tr / n;
      printf("{\"bench\":\"fl-round\",\"dataset\":\"%s\",\"clients\":%u,\"rounds\":%u,"
             "\"runs\":%zu,\"round_ms_plain\":%.3f,\"round_ms_ledger\":%.3f,"
             "\"overhead_ms\":%.3f,\"train_ms_plain\":%.3f,\"train_ms\":%.3f,"
             "\"server_ms_plain\":%.3f,"
             "\"server_ms_ledger\":%.3f,\"bytes_plain\":%.0f,\"bytes_ledger\":%.0f,"
             "\"mismatches\":%llu,\"hash_failures\":%llu}\n",
             g_dataset, g_clients, g_rounds, g_n_notes, tp + pl / n, (tr + sv) / n,
             (tr + sv) / n - (tp + pl / n), tp, tr / n, pl / n, sv / n, bp / n, bl / n,
             (unsigned long long)(g_srv ? g_srv->mismatches : 0),
             (unsigned long long)(g_srv ? g_srv->hash_failures : 0));
    } else {
      printf("{\"bench\":\"fl\",\"mode\":\"%s\",\"dataset\":\"%s\",\"clients\":%u,"
             "\"rounds\":%u,\"ledger_rounds\":%llu,\"mismatches\":%llu,"
             "\"hash_failures\":%llu,\"plain_equal\":%s,\"round_ms_plain\":%.3f,"
             "\"round_ms_ledger\":%.3f,\"runs\":[",
             g_srv_ledger ? "ledger" : "plain", g_dataset, g_clients, g_rounds,
             (unsigned long long)(g_srv ? g_srv->rounds : 0),
             (unsigned long long)(g_srv ? g_srv->mismatches : 0),
             (unsigned long long)(g_srv ? g_srv->hash_failures : 0),
             g_srv && g_srv->mismatches == 0 && g_srv->hash_failures == 0 ? "true" : "false",
             (tr + pl) / n, (tr + sv) / n);
      for (size_t i = 0; i < g_n_notes; i++) {
        const fl_bsrv_run_note_t *r = &g_notes[i];
        printf("%s{\"rule\":\"%s\",\"attack\":\"%s\",\"seed\":%llu,\"accuracy\":", i ? "," : "",
               r->rule, r->attack, (unsigned long long)r->seed);
        json_num(r->accuracy);
        printf(",\"f1\":");
        json_num(r->f1);
        printf(",\"malicious_accepted\":%llu,\"malicious_sent\":%llu}",
               (unsigned long long)r->mal_accepted, (unsigned long long)r->mal_sent);
      }
      printf("]}\n");
    }
    fflush(stdout);
  }
  for (size_t i = 0; i < g_n_notes; i++) {
    fl_free((void *)(uintptr_t)g_notes[i].rule);
    fl_free((void *)(uintptr_t)g_notes[i].attack);
  }
  fl_free(g_notes);
  g_notes = NULL;
  g_n_notes = 0;
  fl_bsrv_free(g_srv);
  g_srv = NULL;
}

static void register_exit(void) {
  static int done;
  if (!done) atexit(at_exit);
  done = 1;
}

fl_bsrv_t *fl_bsrv_get(const char *net_file, uint32_t n_clients) {
  if (g_srv == NULL) {
    g_srv_ledger = net_file != NULL;
    g_srv = net_file ? fl_bsrv_ledger_new(net_file, n_clients) : fl_bsrv_plain_new();
    register_exit();
  }
  return g_srv;
}

void fl_bsrv_note_run(const fl_bsrv_run_note_t *n) {
  g_notes = fl_realloc(g_notes, (g_n_notes + 1) * sizeof *g_notes);
  g_notes[g_n_notes] = *n;
  g_notes[g_n_notes].rule = fl_strdup(n->rule);
  g_notes[g_n_notes].attack = fl_strdup(n->attack);
  g_n_notes++;
}

void fl_bsrv_summary_at_exit(const char *kind, const char *dataset, uint32_t clients,
                             uint32_t rounds) {
  snprintf(g_kind, sizeof g_kind, "%s", kind);
  snprintf(g_dataset, sizeof g_dataset, "%s", dataset);
  g_clients = clients;
  g_rounds = rounds;
  register_exit();
}
