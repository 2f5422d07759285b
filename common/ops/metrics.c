/* SPDX-License-Identifier: Apache-2.0
 *
 * metrics.c: the metrics registry and its Prometheus text rendering.
 *
 * Every metric is a `struct metric` (name, help, labels, kind) followed by
 * its values: one atomic slot per series for counters (uint64) and gauges
 * (a double's bits), and for histograms per series (n_buckets + 1) atomic
 * bucket counters (the last one is +Inf; counts are per bucket, made
 * cumulative when rendering) plus an atomic sum (a double's bits). Doubles
 * are added with a compare-and-swap loop on their bit pattern: lock-free,
 * and contention on one series is what a CAS handles well.
 *
 * The public handle types (fl_counter_t ...) are `struct metric` under
 * another tag, so that the compiler keeps a gauge from being passed where a
 * counter is wanted; the casts between them live only in this file.
 */
#include "common/ops/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/ops/ops_int.h"

const double fl_metrics_latency_buckets[11] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                               0.5,   1,    2.5,   5,    10};

typedef enum kind_e { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

typedef struct label_s {
  char *name;
  char **values;
  size_t n_values;
} label_t;

struct metric {
  struct metric *next;      /* registration order */
  kind_t kind;
  char *name;
  char *help;
  label_t labels[FL_METRICS_MAX_LABELS];
  size_t n_labels;
  size_t n_series;
  double *bounds;           /* histograms: n_buckets finite upper bounds */
  size_t n_buckets;
  /* counters: n_series slots; gauges: n_series double bit patterns;
   * histograms: n_series * (n_buckets + 1) bucket counters */
  _Atomic uint64_t *slots;
  _Atomic uint64_t *sums;   /* histograms: n_series double bit patterns */
  void *slots_mem, *sums_mem; /* the same memory, unqualified, for fl_free */
};

struct fl_counter_s { struct metric m; };
struct fl_gauge_s { struct metric m; };
struct fl_histogram_s { struct metric m; };

struct fl_metrics_s {
  pthread_mutex_t mu;       /* guards the list; never taken by updates */
  struct metric *head, *tail;
};

/* ---- names and text ---------------------------------------------------- */

static bool is_alpha_(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

bool fl_metrics_valid_name(const char *s) {
  if (s == NULL || s[0] == '\0') return false;
  size_t n = strlen(s);
  if (n > FL_METRICS_MAX_NAME) return false;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    bool ok = is_alpha_(c) || c == ':' || (i > 0 && is_digit(c));
    if (!ok) return false;
  }
  return true;
}

bool fl_metrics_valid_label_name(const char *s) {
  if (s == NULL || s[0] == '\0') return false;
  size_t n = strlen(s);
  if (n > FL_METRICS_MAX_NAME) return false;
  if (n >= 2 && s[0] == '_' && s[1] == '_') return false;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (!(is_alpha_(c) || (i > 0 && is_digit(c)))) return false;
  }
  return true;
}

char *fl_metrics_format_double(double v, char buf[32]) {
  if (isnan(v)) {
    strcpy(buf, "NaN");
  } else if (isinf(v)) {
    strcpy(buf, v > 0 ? "+Inf" : "-Inf");
  } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
    /* Integral and exact in a double (< 2^53): plain digits, "10" rather
     * than %g's "1e+01". */
    snprintf(buf, 32, "%.0f", v);
  } else {
    /* The shortest %g that reads back as the same double (Go's
     * strconv.FormatFloat(v, 'g', -1, 64) does the same for Prometheus). */
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(buf, 32, "%.*g", prec, v);
      if (strtod(buf, NULL) == v) break;
    }
  }
  return buf;
}

/* Help text: backslash and newline escaped (format 0.0.4). */
static void append_help(fl_sbuf_t *out, const char *s) {
  for (; *s; s++) {
    if (*s == '\\') fl_sbuf_append(out, "\\\\", 2);
    else if (*s == '\n') fl_sbuf_append(out, "\\n", 2);
    else fl_sbuf_append(out, s, 1);
  }
}

/* Label values: backslash, double quote and newline escaped. */
static void append_label_value(fl_sbuf_t *out, const char *s) {
  for (; *s; s++) {
    if (*s == '\\') fl_sbuf_append(out, "\\\\", 2);
    else if (*s == '"') fl_sbuf_append(out, "\\\"", 2);
    else if (*s == '\n') fl_sbuf_append(out, "\\n", 2);
    else fl_sbuf_append(out, s, 1);
  }
}

/* ---- registration ------------------------------------------------------ */

fl_metrics_t *fl_metrics_new(void) {
  fl_metrics_t *m = fl_calloc(1, sizeof *m);
  pthread_mutex_init(&m->mu, NULL);
  return m;
}

static void metric_free(struct metric *x) {
  if (x == NULL) return;
  for (size_t i = 0; i < x->n_labels; i++) {
    for (size_t j = 0; j < x->labels[i].n_values; j++) fl_free(x->labels[i].values[j]);
    fl_free(x->labels[i].values);
    fl_free(x->labels[i].name);
  }
  fl_free(x->name);
  fl_free(x->help);
  fl_free(x->bounds);
  fl_free(x->slots_mem);
  fl_free(x->sums_mem);
  fl_free(x);
}

void fl_metrics_free(fl_metrics_t *m) {
  if (m == NULL) return;
  struct metric *x = m->head;
  while (x) {
    struct metric *next = x->next;
    metric_free(x);
    x = next;
  }
  pthread_mutex_destroy(&m->mu);
  fl_free(m);
}

/* Checks everything in d that does not depend on the registry. */
static fl_status_t desc_check(const fl_metric_desc_t *d, kind_t kind, size_t *nseries) {
  if (d == NULL || !fl_metrics_valid_name(d->name)) return FL_EINVAL;
  if (d->help == NULL || d->help[0] == '\0' || !fl__utf8_valid(d->help, strlen(d->help)))
    return FL_EINVAL;
  if (d->n_labels > FL_METRICS_MAX_LABELS) return FL_EINVAL;
  if (d->n_labels > 0 && d->labels == NULL) return FL_EINVAL;
  size_t n = 1;
  for (size_t i = 0; i < d->n_labels; i++) {
    const fl_metric_label_t *l = &d->labels[i];
    if (!fl_metrics_valid_label_name(l->name)) return FL_EINVAL;
    if (kind == KIND_HISTOGRAM && strcmp(l->name, "le") == 0) return FL_EINVAL;
    for (size_t k = 0; k < i; k++)
      if (strcmp(d->labels[k].name, l->name) == 0) return FL_EINVAL;
    if (l->n_values == 0 || l->values == NULL) return FL_EINVAL;
    if (l->n_values > FL_METRICS_MAX_SERIES / n) return FL_EINVAL;
    n *= l->n_values;
    for (size_t j = 0; j < l->n_values; j++) {
      const char *v = l->values[j];
      if (v == NULL || !fl__utf8_valid(v, strlen(v))) return FL_EINVAL;
      for (size_t k = 0; k < j; k++)
        if (strcmp(l->values[k], v) == 0) return FL_EINVAL;
    }
  }
  if (kind == KIND_HISTOGRAM) {
    if (d->buckets == NULL || d->n_buckets == 0 || d->n_buckets > FL_METRICS_MAX_BUCKETS)
      return FL_EINVAL;
    for (size_t i = 0; i < d->n_buckets; i++) {
      if (!isfinite(d->buckets[i])) return FL_EINVAL;
      if (i > 0 && !(d->buckets[i] > d->buckets[i - 1])) return FL_EINVAL;
    }
  } else if (d->buckets != NULL || d->n_buckets != 0) {
    return FL_EINVAL;
  }
  *nseries = n;
  return FL_OK;
}

/* The names a metric puts on the wire: its own, and for a histogram the
 * three derived ones. Writes up to 4 names into out (each of size
 * FL_METRICS_MAX_NAME + 8) and returns how many. */
static size_t wire_names(const char *name, kind_t kind, char out[4][FL_METRICS_MAX_NAME + 8]) {
  snprintf(out[0], sizeof out[0], "%s", name);
  if (kind != KIND_HISTOGRAM) return 1;
  snprintf(out[1], sizeof out[1], "%s_bucket", name);
  snprintf(out[2], sizeof out[2], "%s_sum", name);
  snprintf(out[3], sizeof out[3], "%s_count", name);
  return 4;
}

static bool names_clash(const struct metric *x, const char *name, kind_t kind) {
  char a[4][FL_METRICS_MAX_NAME + 8], b[4][FL_METRICS_MAX_NAME + 8];
  size_t na = wire_names(x->name, x->kind, a);
  size_t nb = wire_names(name, kind, b);
  for (size_t i = 0; i < na; i++)
    for (size_t j = 0; j < nb; j++)
      if (strcmp(a[i], b[j]) == 0) return true;
  return false;
}

static fl_status_t do_register(fl_metrics_t *m, const fl_metric_desc_t *d, kind_t kind,
                               struct metric **out) {
  *out = NULL;
  if (m == NULL) return FL_EINVAL;
  size_t nseries = 0;
  fl_status_t rc = desc_check(d, kind, &nseries);
  if (rc != FL_OK) return rc;

  struct metric *x = fl_calloc(1, sizeof *x);
  x->kind = kind;
  x->name = fl_strdup(d->name);
  x->help = fl_strdup(d->help);
  x->n_labels = d->n_labels;
  x->n_series = nseries;
  for (size_t i = 0; i < d->n_labels; i++) {
    const fl_metric_label_t *l = &d->labels[i];
    x->labels[i].name = fl_strdup(l->name);
    x->labels[i].n_values = l->n_values;
    x->labels[i].values = fl_calloc(l->n_values, sizeof(char *));
    for (size_t j = 0; j < l->n_values; j++) x->labels[i].values[j] = fl_strdup(l->values[j]);
  }
  size_t nslots = nseries;
  if (kind == KIND_HISTOGRAM) {
    x->n_buckets = d->n_buckets;
    x->bounds = fl_memdup(d->buckets, d->n_buckets * sizeof(double));
    nslots = nseries * (d->n_buckets + 1);
    x->sums_mem = fl_calloc(nseries, sizeof *x->sums);
    x->sums = x->sums_mem;
    for (size_t i = 0; i < nseries; i++) atomic_init(&x->sums[i], 0);
  }
  x->slots_mem = fl_calloc(nslots, sizeof *x->slots);
  x->slots = x->slots_mem;
  for (size_t i = 0; i < nslots; i++) atomic_init(&x->slots[i], 0);
  /* A gauge starts at 0.0, whose bit pattern is 0 too (IEEE 754). */

  pthread_mutex_lock(&m->mu);
  for (struct metric *y = m->head; y; y = y->next) {
    if (names_clash(y, x->name, kind)) {
      pthread_mutex_unlock(&m->mu);
      metric_free(x);
      return FL_EEXIST;
    }
  }
  if (m->tail) m->tail->next = x;
  else m->head = x;
  m->tail = x;
  pthread_mutex_unlock(&m->mu);
  *out = x;
  return FL_OK;
}

fl_status_t fl_metrics_counter(fl_metrics_t *m, const fl_metric_desc_t *d, fl_counter_t **out) {
  struct metric *x = NULL;
  fl_status_t rc = do_register(m, d, KIND_COUNTER, &x);
  *out = (fl_counter_t *)x;
  return rc;
}

fl_status_t fl_metrics_gauge(fl_metrics_t *m, const fl_metric_desc_t *d, fl_gauge_t **out) {
  struct metric *x = NULL;
  fl_status_t rc = do_register(m, d, KIND_GAUGE, &x);
  *out = (fl_gauge_t *)x;
  return rc;
}

fl_status_t fl_metrics_histogram(fl_metrics_t *m, const fl_metric_desc_t *d,
                                 fl_histogram_t **out) {
  struct metric *x = NULL;
  fl_status_t rc = do_register(m, d, KIND_HISTOGRAM, &x);
  *out = (fl_histogram_t *)x;
  return rc;
}

/* ---- series ------------------------------------------------------------ */

static long series_of(const struct metric *x, const char *const *values) {
  if (x == NULL) return -1;
  if (x->n_labels == 0) return 0;
  if (values == NULL) return -1;
  size_t idx = 0;
  for (size_t i = 0; i < x->n_labels; i++) {
    const label_t *l = &x->labels[i];
    if (values[i] == NULL) return -1;
    size_t j = 0;
    while (j < l->n_values && strcmp(l->values[j], values[i]) != 0) j++;
    if (j == l->n_values) return -1;
    idx = idx * l->n_values + j;
  }
  return (long)idx;
}

long fl_counter_series(const fl_counter_t *c, const char *const *values) {
  return series_of(c ? &c->m : NULL, values);
}
long fl_gauge_series(const fl_gauge_t *g, const char *const *values) {
  return series_of(g ? &g->m : NULL, values);
}
long fl_histogram_series(const fl_histogram_t *h, const char *const *values) {
  return series_of(h ? &h->m : NULL, values);
}

size_t fl_counter_nseries(const fl_counter_t *c) { return c ? c->m.n_series : 0; }
size_t fl_gauge_nseries(const fl_gauge_t *g) { return g ? g->m.n_series : 0; }
size_t fl_histogram_nseries(const fl_histogram_t *h) { return h ? h->m.n_series : 0; }

/* ---- updates ----------------------------------------------------------- */

static uint64_t dbits(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}
static double bitsd(uint64_t u) {
  double v;
  memcpy(&v, &u, sizeof v);
  return v;
}

static void atomic_add_double(_Atomic uint64_t *p, double v) {
  uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(p, &old, dbits(bitsd(old) + v),
                                                memory_order_relaxed, memory_order_relaxed)) {
  }
}

void fl_counter_add(fl_counter_t *c, size_t series, uint64_t n) {
  if (c == NULL || series >= c->m.n_series) return;
  atomic_fetch_add_explicit(&c->m.slots[series], n, memory_order_relaxed);
}

void fl_counter_inc(fl_counter_t *c) { fl_counter_add(c, 0, 1); }

void fl_gauge_set(fl_gauge_t *g, size_t series, double v) {
  if (g == NULL || series >= g->m.n_series) return;
  atomic_store_explicit(&g->m.slots[series], dbits(v), memory_order_relaxed);
}

void fl_gauge_add(fl_gauge_t *g, size_t series, double v) {
  if (g == NULL || series >= g->m.n_series) return;
  atomic_add_double(&g->m.slots[series], v);
}

void fl_histogram_observe(fl_histogram_t *h, size_t series, double v) {
  if (h == NULL || series >= h->m.n_series || isnan(v)) return;
  const struct metric *x = &h->m;
  /* Binary search for the first bound >= v; n_buckets means +Inf. */
  size_t lo = 0, hi = x->n_buckets;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (x->bounds[mid] >= v) hi = mid;
    else lo = mid + 1;
  }
  atomic_fetch_add_explicit(&h->m.slots[series * (x->n_buckets + 1) + lo], 1,
                            memory_order_relaxed);
  atomic_add_double(&h->m.sums[series], v);
}

void fl_histogram_observe_since(fl_histogram_t *h, size_t series, uint64_t start_ns) {
  uint64_t now = fl_mono_ns();
  uint64_t d = now > start_ns ? now - start_ns : 0;
  fl_histogram_observe(h, series, (double)d / 1e9);
}

uint64_t fl_counter_value(const fl_counter_t *c, size_t series) {
  if (c == NULL || series >= c->m.n_series) return 0;
  return atomic_load_explicit(&c->m.slots[series], memory_order_relaxed);
}

double fl_gauge_value(const fl_gauge_t *g, size_t series) {
  if (g == NULL || series >= g->m.n_series) return 0;
  return bitsd(atomic_load_explicit(&g->m.slots[series], memory_order_relaxed));
}

uint64_t fl_histogram_count(const fl_histogram_t *h, size_t series, double *sum) {
  if (sum) *sum = 0;
  if (h == NULL || series >= h->m.n_series) return 0;
  const struct metric *x = &h->m;
  uint64_t n = 0;
  for (size_t b = 0; b <= x->n_buckets; b++)
    n += atomic_load_explicit(&h->m.slots[series * (x->n_buckets + 1) + b],
                              memory_order_relaxed);
  if (sum) *sum = bitsd(atomic_load_explicit(&h->m.sums[series], memory_order_relaxed));
  return n;
}

/* ---- rendering --------------------------------------------------------- */

/* Appends {l1="v1",...[,le="x"]} for series idx; nothing when there are no
 * labels and no le. */
static void append_labels(fl_sbuf_t *out, const struct metric *x, size_t idx, const char *le) {
  if (x->n_labels == 0 && le == NULL) return;
  size_t pick[FL_METRICS_MAX_LABELS] = {0};
  for (size_t i = x->n_labels; i-- > 0;) {
    pick[i] = idx % x->labels[i].n_values;
    idx /= x->labels[i].n_values;
  }
  fl_sbuf_append(out, "{", 1);
  for (size_t i = 0; i < x->n_labels; i++) {
    if (i) fl_sbuf_append(out, ",", 1);
    fl_sbuf_append_str(out, x->labels[i].name);
    fl_sbuf_append(out, "=\"", 2);
    append_label_value(out, x->labels[i].values[pick[i]]);
    fl_sbuf_append(out, "\"", 1);
  }
  if (le) {
    if (x->n_labels) fl_sbuf_append(out, ",", 1);
    fl_sbuf_append(out, "le=\"", 4);
    fl_sbuf_append_str(out, le);
    fl_sbuf_append(out, "\"", 1);
  }
  fl_sbuf_append(out, "}", 1);
}

static void render_metric(fl_sbuf_t *out, const struct metric *x) {
  static const char *const type[] = {"counter", "gauge", "histogram"};
  char num[32];
  fl_sbuf_printf(out, "# HELP %s ", x->name);
  append_help(out, x->help);
  fl_sbuf_printf(out, "\n# TYPE %s %s\n", x->name, type[x->kind]);
  for (size_t s = 0; s < x->n_series; s++) {
    if (x->kind == KIND_COUNTER) {
      fl_sbuf_append_str(out, x->name);
      append_labels(out, x, s, NULL);
      fl_sbuf_printf(out, " %llu\n",
                     (unsigned long long)atomic_load_explicit(&x->slots[s], memory_order_relaxed));
    } else if (x->kind == KIND_GAUGE) {
      fl_sbuf_append_str(out, x->name);
      append_labels(out, x, s, NULL);
      double v = bitsd(atomic_load_explicit(&x->slots[s], memory_order_relaxed));
      fl_sbuf_printf(out, " %s\n", fl_metrics_format_double(v, num));
    } else {
      uint64_t cum = 0;
      for (size_t b = 0; b <= x->n_buckets; b++) {
        cum += atomic_load_explicit(&x->slots[s * (x->n_buckets + 1) + b], memory_order_relaxed);
        fl_sbuf_printf(out, "%s_bucket", x->name);
        append_labels(out, x, s,
                      b < x->n_buckets ? fl_metrics_format_double(x->bounds[b], num) : "+Inf");
        fl_sbuf_printf(out, " %llu\n", (unsigned long long)cum);
      }
      double sum = bitsd(atomic_load_explicit(&x->sums[s], memory_order_relaxed));
      fl_sbuf_printf(out, "%s_sum", x->name);
      append_labels(out, x, s, NULL);
      fl_sbuf_printf(out, " %s\n", fl_metrics_format_double(sum, num));
      fl_sbuf_printf(out, "%s_count", x->name);
      append_labels(out, x, s, NULL);
      /* The +Inf bucket's cumulative count, so _count == +Inf bucket even
       * while observations race with this scrape (invariant 3). */
      fl_sbuf_printf(out, " %llu\n", (unsigned long long)cum);
    }
  }
}

void fl_metrics_render(fl_metrics_t *m, fl_sbuf_t *out) {
  if (m == NULL || out == NULL) return;
  pthread_mutex_lock(&m->mu);
  for (const struct metric *x = m->head; x; x = x->next) render_metric(out, x);
  pthread_mutex_unlock(&m->mu);
}
