/* SPDX-License-Identifier: Apache-2.0
 *
 * metrics.h: the metrics registry of a node (Fabric's metrics provider) and
 * its rendering in the Prometheus text exposition format 0.0.4.
 *
 * A registry holds counters, gauges and histograms, each registered once by
 * name and help text, optionally with labels. Labels are a small, fixed set
 * declared at registration: every label has a list of allowed values, and
 * the metric owns one series per combination of values (the cartesian
 * product, at most FL_METRICS_MAX_SERIES). A series is addressed by its
 * index, computed once by the caller (fl_counter_series and friends, or by
 * the rule below), so that an update is one atomic instruction with no
 * lookup and no lock.
 *
 * Series index: for labels L0..Lk-1 with value indices i0..ik-1 and value
 * counts n0..nk-1, index = ((i0 * n1 + i1) * n2 + i2) ... (row-major, the
 * last label varies fastest). A metric without labels has one series, 0.
 *
 * Threads: registration and rendering take the registry's mutex and may run
 * on any thread. Updates (add, set, observe) are lock-free C11 atomics,
 * callable from any thread, including while the registry renders. Handles
 * are owned by the registry and stay valid until fl_metrics_free; no update
 * may run during or after fl_metrics_free.
 *
 * Invariants:
 *   1. names are unique in a registry, including the _bucket/_sum/_count
 *      names a histogram renders;
 *   2. after registration nothing in a metric changes but its atomic values;
 *   3. a histogram's rendered _count equals its +Inf bucket (both are read
 *      from the same bucket counters).
 */
#ifndef FL_OPS_METRICS_H
#define FL_OPS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

/** Limits checked at registration. */
#define FL_METRICS_MAX_LABELS 4
#define FL_METRICS_MAX_SERIES 4096
#define FL_METRICS_MAX_BUCKETS 64
#define FL_METRICS_MAX_NAME 200

typedef struct fl_metrics_s fl_metrics_t;
typedef struct fl_counter_s fl_counter_t;
typedef struct fl_gauge_s fl_gauge_t;
typedef struct fl_histogram_s fl_histogram_t;

/** One label dimension: its name and the complete list of its values. */
typedef struct fl_metric_label_s {
  const char *name;           /* [a-zA-Z_][a-zA-Z0-9_]*, not "__..." */
  const char *const *values;  /* n_values UTF-8 strings, distinct */
  size_t n_values;            /* >= 1 */
} fl_metric_label_t;

/** What a metric is. Everything is copied at registration; the caller's
 *  strings and arrays may go away afterwards. */
typedef struct fl_metric_desc_s {
  const char *name;                 /* [a-zA-Z_:][a-zA-Z0-9_:]* */
  const char *help;                 /* non-empty UTF-8; escaped on output */
  const fl_metric_label_t *labels;  /* n_labels entries, or NULL */
  size_t n_labels;                  /* 0..FL_METRICS_MAX_LABELS */
  const double *buckets;            /* histograms only: upper bounds, finite,
                                       strictly increasing; +Inf is implied */
  size_t n_buckets;                 /* histograms only: 1..FL_METRICS_MAX_BUCKETS */
} fl_metric_desc_t;

/** Prometheus' default latency buckets in seconds, 5 ms .. 10 s. */
extern const double fl_metrics_latency_buckets[11];
#define FL_METRICS_LATENCY_BUCKETS_N 11

/** Returns a new, empty registry (owned: fl_metrics_free). Never NULL. */
fl_metrics_t *fl_metrics_new(void);

/** Frees the registry and every metric handle it gave out. NULL-safe. No
 *  thread may update a metric of this registry during or after the call. */
void fl_metrics_free(fl_metrics_t *m);

/** Registers a counter (monotonic, unsigned 64-bit per series).
 *  Returns FL_OK and *out (owned by m), FL_EINVAL when the description is
 *  invalid (bad name, bad label name or value, empty help, too many labels
 *  or series, duplicate label names or values, buckets given), or
 *  FL_EEXIST when the name (or a histogram's derived name) is taken. On
 *  failure *out is NULL and the registry is unchanged. */
fl_status_t fl_metrics_counter(fl_metrics_t *m, const fl_metric_desc_t *d,
                               fl_counter_t **out /* out */);

/** Registers a gauge (a double per series, set or added to). Returns as
 *  fl_metrics_counter. */
fl_status_t fl_metrics_gauge(fl_metrics_t *m, const fl_metric_desc_t *d,
                             fl_gauge_t **out /* out */);

/** Registers a histogram with d->buckets (required, see fl_metric_desc_t);
 *  a label named "le" is refused. Returns as fl_metrics_counter. */
fl_status_t fl_metrics_histogram(fl_metrics_t *m, const fl_metric_desc_t *d,
                                 fl_histogram_t **out /* out */);

/** Returns the series index for the label values (one per label, in the
 *  order of registration; NULL when the metric has no labels), or -1 when a
 *  value is not one of the declared ones. Lock-free; cache the result. */
long fl_counter_series(const fl_counter_t *c, const char *const *values);
/** As fl_counter_series, for a gauge. */
long fl_gauge_series(const fl_gauge_t *g, const char *const *values);
/** As fl_counter_series, for a histogram. */
long fl_histogram_series(const fl_histogram_t *h, const char *const *values);

/** Returns how many series the metric has (the product of its label value
 *  counts; 1 without labels). */
size_t fl_counter_nseries(const fl_counter_t *c);
/** As fl_counter_nseries, for a gauge. */
size_t fl_gauge_nseries(const fl_gauge_t *g);
/** As fl_counter_nseries, for a histogram. */
size_t fl_histogram_nseries(const fl_histogram_t *h);

/* Updates. Any thread; lock-free; relaxed atomics (a scrape sees each value
 * at some recent point, not a snapshot across metrics). A series index out
 * of range is ignored (the update is dropped), never a crash: the caller's
 * bug must not take a node down through its metrics. */

/** Adds n to series `series` of c. */
void fl_counter_add(fl_counter_t *c, size_t series, uint64_t n);
/** Adds 1 to series 0 (a counter without labels). */
void fl_counter_inc(fl_counter_t *c);
/** Sets series `series` of g to v. */
void fl_gauge_set(fl_gauge_t *g, size_t series, double v);
/** Adds v (may be negative) to series `series` of g. */
void fl_gauge_add(fl_gauge_t *g, size_t series, double v);
/** Records one observation v in series `series` of h: the first bucket
 *  whose bound is >= v (or +Inf), the sum and the count. NaN is ignored. */
void fl_histogram_observe(fl_histogram_t *h, size_t series, double v);
/** Observes the seconds elapsed since start_ns (a fl_mono_ns() value). */
void fl_histogram_observe_since(fl_histogram_t *h, size_t series, uint64_t start_ns);

/** Reads a counter series (0 when out of range); for tests and internal use. */
uint64_t fl_counter_value(const fl_counter_t *c, size_t series);
/** Reads a gauge series (0 when out of range). */
double fl_gauge_value(const fl_gauge_t *g, size_t series);
/** Reads a histogram series' count and sum (0 when out of range). */
uint64_t fl_histogram_count(const fl_histogram_t *h, size_t series,
                            double *sum /* out, may be NULL */);

/** Appends the whole registry to out in the Prometheus text format 0.0.4,
 *  metrics in registration order, series in index order, every series of
 *  every metric (zero or not). Any thread. Never fails. */
void fl_metrics_render(fl_metrics_t *m, fl_sbuf_t *out);

/** Writes v as Prometheus does: "NaN", "+Inf", "-Inf", or the shortest
 *  decimal that reads back as v ("0.005", "1", "1e+21"). buf needs 32
 *  bytes. Returns buf. */
char *fl_metrics_format_double(double v, char buf[32]);

/** True when s is a valid metric name, [a-zA-Z_:][a-zA-Z0-9_:]*, at most
 *  FL_METRICS_MAX_NAME bytes. */
bool fl_metrics_valid_name(const char *s);
/** True when s is a valid label name, [a-zA-Z_][a-zA-Z0-9_]*, not starting
 *  with "__" (reserved by Prometheus), at most FL_METRICS_MAX_NAME bytes. */
bool fl_metrics_valid_label_name(const char *s);

#endif /* FL_OPS_METRICS_H */
