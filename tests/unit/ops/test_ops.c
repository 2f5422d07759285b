/* SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests for common/ops: the metrics registry (exact Prometheus text,
 * escaping, histogram buckets and sums, registration checks, concurrent
 * updates from 4 threads), the HTTP request-head parser on its own, and the
 * operations server over real sockets on 127.0.0.1 (port 0). The server
 * runs on its own loop in a thread; the test talks to it with plain
 * blocking sockets, as curl or Prometheus would.
 */
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <uv.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/ops/metrics.h"
#include "common/ops/ops.h"
#include "common/ops/ops_int.h"

static void sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* ======================================================================
 * Registry
 * ====================================================================== */

static char *render(fl_metrics_t *m) {
  fl_sbuf_t b = {0};
  fl_metrics_render(m, &b);
  fl_sbuf_append(&b, "", 1);
  return (char *)fl_sbuf_detach(&b, NULL);
}

static void test_render_exact(void **state) {
  (void)state;
  fl_metrics_t *m = fl_metrics_new();
  fl_counter_t *blocks = NULL, *tx = NULL;
  fl_gauge_t *height = NULL;
  fl_histogram_t *lat = NULL, *cut = NULL;

  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){
      .name = "fedledger_peer_ledger_blocks_committed_total", .help = "Blocks committed."},
      &blocks), FL_OK);
  static const char *const codes[] = {"VALID", "MVCC_READ_CONFLICT"};
  fl_metric_label_t code = {.name = "code", .values = codes, .n_values = 2};
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){
      .name = "fedledger_peer_validator_tx_validated_total",
      .help = "Transactions validated, by code.", .labels = &code, .n_labels = 1}, &tx), FL_OK);
  assert_int_equal(fl_metrics_gauge(m, &(fl_metric_desc_t){
      .name = "fedledger_peer_ledger_height", .help = "Blocks in the ledger."}, &height), FL_OK);
  static const char *const methods[] = {"Endorse"};
  fl_metric_label_t method = {.name = "method", .values = methods, .n_values = 1};
  static const double b3[] = {0.1, 0.5, 1};
  assert_int_equal(fl_metrics_histogram(m, &(fl_metric_desc_t){
      .name = "fedledger_peer_endorser_duration_seconds", .help = "Endorsement latency.",
      .labels = &method, .n_labels = 1, .buckets = b3, .n_buckets = 3}, &lat), FL_OK);
  static const double b2[] = {0.25, 2};
  assert_int_equal(fl_metrics_histogram(m, &(fl_metric_desc_t){
      .name = "fedledger_orderer_blockcutter_cut_duration_seconds", .help = "Block cut latency.",
      .buckets = b2, .n_buckets = 2}, &cut), FL_OK);

  fl_counter_add(blocks, 0, 2);
  fl_counter_inc(blocks);
  fl_counter_add(tx, 0, 5);
  fl_counter_add(tx, 1, 2);
  fl_gauge_set(height, 0, 40);
  fl_gauge_add(height, 0, 2);
  fl_histogram_observe(lat, 0, 0.0625);
  fl_histogram_observe(lat, 0, 0.5);   /* equal to a bound: that bucket */
  fl_histogram_observe(lat, 0, 0.75);
  fl_histogram_observe(lat, 0, 3.0);   /* above all: +Inf only */

  const char *want =
      "# HELP fedledger_peer_ledger_blocks_committed_total Blocks committed.\n"
      "# TYPE fedledger_peer_ledger_blocks_committed_total counter\n"
      "fedledger_peer_ledger_blocks_committed_total 3\n"
      "# HELP fedledger_peer_validator_tx_validated_total Transactions validated, by code.\n"
      "# TYPE fedledger_peer_validator_tx_validated_total counter\n"
      "fedledger_peer_validator_tx_validated_total{code=\"VALID\"} 5\n"
      "fedledger_peer_validator_tx_validated_total{code=\"MVCC_READ_CONFLICT\"} 2\n"
      "# HELP fedledger_peer_ledger_height Blocks in the ledger.\n"
      "# TYPE fedledger_peer_ledger_height gauge\n"
      "fedledger_peer_ledger_height 42\n"
      "# HELP fedledger_peer_endorser_duration_seconds Endorsement latency.\n"
      "# TYPE fedledger_peer_endorser_duration_seconds histogram\n"
      "fedledger_peer_endorser_duration_seconds_bucket{method=\"Endorse\",le=\"0.1\"} 1\n"
      "fedledger_peer_endorser_duration_seconds_bucket{method=\"Endorse\",le=\"0.5\"} 2\n"
      "fedledger_peer_endorser_duration_seconds_bucket{method=\"Endorse\",le=\"1\"} 3\n"
      "fedledger_peer_endorser_duration_seconds_bucket{method=\"Endorse\",le=\"+Inf\"} 4\n"
      "fedledger_peer_endorser_duration_seconds_sum{method=\"Endorse\"} 4.3125\n"
      "fedledger_peer_endorser_duration_seconds_count{method=\"Endorse\"} 4\n"
      "# HELP fedledger_orderer_blockcutter_cut_duration_seconds Block cut latency.\n"
      "# TYPE fedledger_orderer_blockcutter_cut_duration_seconds histogram\n"
      "fedledger_orderer_blockcutter_cut_duration_seconds_bucket{le=\"0.25\"} 0\n"
      "fedledger_orderer_blockcutter_cut_duration_seconds_bucket{le=\"2\"} 0\n"
      "fedledger_orderer_blockcutter_cut_duration_seconds_bucket{le=\"+Inf\"} 0\n"
      "fedledger_orderer_blockcutter_cut_duration_seconds_sum 0\n"
      "fedledger_orderer_blockcutter_cut_duration_seconds_count 0\n";
  char *got = render(m);
  assert_string_equal(got, want);
  fl_free(got);
  fl_metrics_free(m);
}

static void test_label_escaping(void **state) {
  (void)state;
  fl_metrics_t *m = fl_metrics_new();
  static const char *const vals[] = {"a\"b\\c\nd", "plain", "\xC3\xA9t\xC3\xA9"};
  fl_metric_label_t l = {.name = "reason", .values = vals, .n_values = 3};
  fl_counter_t *c = NULL;
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){
      .name = "x_total", .help = "back\\slash and\nnewline \"quoted\"", .labels = &l,
      .n_labels = 1}, &c), FL_OK);
  const char *v[] = {"a\"b\\c\nd"};
  assert_int_equal(fl_counter_series(c, v), 0);
  fl_counter_inc(c);
  const char *want =
      "# HELP x_total back\\\\slash and\\nnewline \"quoted\"\n"
      "# TYPE x_total counter\n"
      "x_total{reason=\"a\\\"b\\\\c\\nd\"} 1\n"
      "x_total{reason=\"plain\"} 0\n"
      "x_total{reason=\"\xC3\xA9t\xC3\xA9\"} 0\n";
  char *got = render(m);
  assert_string_equal(got, want);
  fl_free(got);
  fl_metrics_free(m);
}

static void test_histogram_buckets_sums(void **state) {
  (void)state;
  fl_metrics_t *m = fl_metrics_new();
  fl_histogram_t *h = NULL;
  assert_int_equal(fl_metrics_histogram(m, &(fl_metric_desc_t){
      .name = "lat_seconds", .help = "h", .buckets = fl_metrics_latency_buckets,
      .n_buckets = FL_METRICS_LATENCY_BUCKETS_N}, &h), FL_OK);
  /* One observation per bucket bound, exactly on it, plus two beyond. */
  double sum = 0;
  for (size_t i = 0; i < FL_METRICS_LATENCY_BUCKETS_N; i++) {
    fl_histogram_observe(h, 0, fl_metrics_latency_buckets[i]);
    sum += fl_metrics_latency_buckets[i];
  }
  fl_histogram_observe(h, 0, 11);
  fl_histogram_observe(h, 0, 1e6);
  fl_histogram_observe(h, 0, NAN);       /* ignored */
  fl_histogram_observe(h, 7, 1);         /* no such series: ignored */
  sum += 11 + 1e6;
  double got_sum = 0;
  assert_int_equal(fl_histogram_count(h, 0, &got_sum), 13);
  assert_true(got_sum == sum);
  char *txt = render(m);
  static const char *const les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                    "0.5",   "1",    "2.5",   "5",    "10"};
  for (size_t i = 0; i < 11; i++) {
    char line[128];
    snprintf(line, sizeof line, "lat_seconds_bucket{le=\"%s\"} %zu\n", les[i], i + 1);
    assert_non_null(strstr(txt, line));
  }
  assert_non_null(strstr(txt, "lat_seconds_bucket{le=\"+Inf\"} 13\n"));
  assert_non_null(strstr(txt, "lat_seconds_count 13\n"));
  char num[32], line[96];
  snprintf(line, sizeof line, "lat_seconds_sum %s\n", fl_metrics_format_double(sum, num));
  assert_non_null(strstr(txt, line));
  fl_free(txt);

  /* observe_since: a sleep of ~20 ms lands in (0.01, 0.025] or later. */
  fl_histogram_t *h2 = NULL;
  static const double b[] = {0.01, 10};
  assert_int_equal(fl_metrics_histogram(m, &(fl_metric_desc_t){
      .name = "since_seconds", .help = "h", .buckets = b, .n_buckets = 2}, &h2), FL_OK);
  uint64_t t0 = fl_mono_ns();
  sleep_ms(20);
  fl_histogram_observe_since(h2, 0, t0);
  double s2 = 0;
  assert_int_equal(fl_histogram_count(h2, 0, &s2), 1);
  assert_true(s2 >= 0.02 && s2 < 5);
  txt = render(m);
  assert_non_null(strstr(txt, "since_seconds_bucket{le=\"0.01\"} 0\n"));
  assert_non_null(strstr(txt, "since_seconds_bucket{le=\"10\"} 1\n"));
  fl_free(txt);
  fl_metrics_free(m);
}

static void test_format_double(void **state) {
  (void)state;
  char b[32];
  assert_string_equal(fl_metrics_format_double(0.1, b), "0.1");
  assert_string_equal(fl_metrics_format_double(1, b), "1");
  assert_string_equal(fl_metrics_format_double(0, b), "0");
  assert_string_equal(fl_metrics_format_double(2.5, b), "2.5");
  assert_string_equal(fl_metrics_format_double(-3.25, b), "-3.25");
  assert_string_equal(fl_metrics_format_double(1234567, b), "1234567");
  assert_string_equal(fl_metrics_format_double(1e21, b), "1e+21");
  assert_string_equal(fl_metrics_format_double(NAN, b), "NaN");
  assert_string_equal(fl_metrics_format_double(INFINITY, b), "+Inf");
  assert_string_equal(fl_metrics_format_double(-INFINITY, b), "-Inf");
  double third = 1.0 / 3.0;
  assert_true(strtod(fl_metrics_format_double(third, b), NULL) == third);
}

static void test_registration_checks(void **state) {
  (void)state;
  fl_metrics_t *m = fl_metrics_new();
  fl_counter_t *c = (fl_counter_t *)(uintptr_t)1;
  fl_gauge_t *g = NULL;
  fl_histogram_t *h = NULL;
  static const double b[] = {1, 2};

  /* names */
  static const char *const bad_names[] = {"", "1abc", "a-b", "a b", "é", "a.b", NULL};
  for (size_t i = 0; bad_names[i]; i++) {
    assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = bad_names[i],
                                                                .help = "h"}, &c), FL_EINVAL);
    assert_null(c);
  }
  assert_true(fl_metrics_valid_name("a:b_c9"));
  assert_true(fl_metrics_valid_name(":x"));
  assert_true(fl_metrics_valid_name("_x"));
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = NULL, .help = "h"}, &c),
                   FL_EINVAL);
  assert_int_equal(fl_metrics_counter(m, NULL, &c), FL_EINVAL);
  char longname[FL_METRICS_MAX_NAME + 2];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = longname, .help = "h"}, &c),
                   FL_EINVAL);
  /* help */
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "a", .help = ""}, &c),
                   FL_EINVAL);
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "a", .help = NULL}, &c),
                   FL_EINVAL);
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "a", .help = "\xff"}, &c),
                   FL_EINVAL);

  /* label names and values */
  static const char *const v1[] = {"x"};
  static const char *const vdup[] = {"x", "x"};
  static const char *const vbad[] = {"ok", "\xC0\xAF"}; /* overlong '/' */
  static const char *const bad_lnames[] = {"__reserved", "1a", "a-b", "", "a:b", NULL};
  for (size_t i = 0; bad_lnames[i]; i++) {
    fl_metric_label_t l = {.name = bad_lnames[i], .values = v1, .n_values = 1};
    assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "a", .help = "h",
                                        .labels = &l, .n_labels = 1}, &c), FL_EINVAL);
  }
  fl_metric_label_t ldup[2] = {{.name = "k", .values = v1, .n_values = 1},
                               {.name = "k", .values = v1, .n_values = 1}};
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "a", .help = "h",
                                      .labels = ldup, .n_labels = 2}, &c), FL_EINVAL);
  fl_metric_label_t lvdup = {.name = "k", .values = vdup, .n_values = 2};
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "a", .help = "h",
                                      .labels = &lvdup, .n_labels = 1}, &c), FL_EINVAL);
  fl_metric_label_t lvbad = {.name = "k", .values = vbad, .n_values = 2};
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "a", .help = "h",
                                      .labels = &lvbad, .n_labels = 1}, &c), FL_EINVAL);
  fl_metric_label_t lempty = {.name = "k", .values = v1, .n_values = 0};
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "a", .help = "h",
                                      .labels = &lempty, .n_labels = 1}, &c), FL_EINVAL);
  fl_metric_label_t lle = {.name = "le", .values = v1, .n_values = 1};
  assert_int_equal(fl_metrics_histogram(m, &(fl_metric_desc_t){.name = "a", .help = "h",
                   .labels = &lle, .n_labels = 1, .buckets = b, .n_buckets = 2}, &h), FL_EINVAL);
  assert_null(h);
  /* le is fine on a counter */
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "le_ok", .help = "h",
                                      .labels = &lle, .n_labels = 1}, &c), FL_OK);
  /* too many labels, too many series */
  fl_metric_label_t five[5];
  static const char *const n5[] = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 5; i++) five[i] = (fl_metric_label_t){.name = n5[i], .values = v1, .n_values = 1};
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "a", .help = "h",
                                      .labels = five, .n_labels = 5}, &c), FL_EINVAL);
  static const char *v100[100];
  char v100s[100][8];
  for (int i = 0; i < 100; i++) {
    snprintf(v100s[i], sizeof v100s[i], "v%d", i);
    v100[i] = v100s[i];
  }
  fl_metric_label_t big[2] = {{.name = "p", .values = v100, .n_values = 100},
                              {.name = "q", .values = v100, .n_values = 100}};
  assert_int_equal(fl_metrics_gauge(m, &(fl_metric_desc_t){.name = "a", .help = "h",
                                    .labels = big, .n_labels = 2}, &g), FL_EINVAL);
  assert_null(g);

  /* buckets */
  static const double unsorted[] = {1, 0.5};
  static const double same[] = {1, 1};
  static const double nan_b[] = {NAN};
  static const double inf_b[] = {1, INFINITY};
  const double *bad_b[] = {unsorted, same, nan_b, inf_b};
  size_t bad_n[] = {2, 2, 1, 2};
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(fl_metrics_histogram(m, &(fl_metric_desc_t){.name = "a", .help = "h",
                     .buckets = bad_b[i], .n_buckets = bad_n[i]}, &h), FL_EINVAL);
  assert_int_equal(fl_metrics_histogram(m, &(fl_metric_desc_t){.name = "a", .help = "h"}, &h),
                   FL_EINVAL);
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "a", .help = "h",
                                      .buckets = b, .n_buckets = 2}, &c), FL_EINVAL);

  /* duplicates, including a histogram's derived names */
  char *before = render(m);
  assert_int_equal(fl_metrics_gauge(m, &(fl_metric_desc_t){.name = "le_ok", .help = "h"}, &g),
                   FL_EEXIST);
  assert_null(g);
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "rpc_count", .help = "h"},
                                      &c), FL_OK);
  assert_int_equal(fl_metrics_histogram(m, &(fl_metric_desc_t){.name = "rpc", .help = "h",
                   .buckets = b, .n_buckets = 2}, &h), FL_EEXIST);
  assert_int_equal(fl_metrics_histogram(m, &(fl_metric_desc_t){.name = "q", .help = "h",
                   .buckets = b, .n_buckets = 2}, &h), FL_OK);
  assert_int_equal(fl_metrics_gauge(m, &(fl_metric_desc_t){.name = "q_bucket", .help = "h"}, &g),
                   FL_EEXIST);
  char *after = render(m);
  /* The failures left nothing behind: only rpc_count and q were added. */
  assert_non_null(strstr(after, before));
  assert_null(strstr(after, "q_bucket counter"));
  assert_null(strstr(after, "TYPE rpc histogram"));
  fl_free(before);
  fl_free(after);
  fl_metrics_free(m);
  fl_metrics_free(NULL);
}

static void test_series_index(void **state) {
  (void)state;
  fl_metrics_t *m = fl_metrics_new();
  static const char *const meth[] = {"Endorse", "Submit", "Deliver"};
  static const char *const code[] = {"OK", "EPERM"};
  fl_metric_label_t l[2] = {{.name = "method", .values = meth, .n_values = 3},
                            {.name = "code", .values = code, .n_values = 2}};
  fl_counter_t *c = NULL;
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "rpc_errors_total",
                   .help = "h", .labels = l, .n_labels = 2}, &c), FL_OK);
  assert_int_equal(fl_counter_nseries(c), 6);
  const char *a[] = {"Submit", "EPERM"};
  const char *bad1[] = {"Submit", "NOPE"};
  const char *bad2[] = {"Submit", NULL};
  assert_int_equal(fl_counter_series(c, a), 1 * 2 + 1);
  assert_int_equal(fl_counter_series(c, bad1), -1);
  assert_int_equal(fl_counter_series(c, bad2), -1);
  assert_int_equal(fl_counter_series(c, NULL), -1);
  fl_counter_add(c, 3, 7);
  fl_counter_add(c, 6, 1);          /* out of range: dropped */
  fl_counter_add(c, (size_t)-1, 1); /* out of range: dropped */
  assert_int_equal(fl_counter_value(c, 3), 7);
  assert_int_equal(fl_counter_value(c, 6), 0);
  char *txt = render(m);
  assert_non_null(strstr(txt, "rpc_errors_total{method=\"Submit\",code=\"EPERM\"} 7\n"));
  assert_non_null(strstr(txt, "rpc_errors_total{method=\"Deliver\",code=\"OK\"} 0\n"));
  fl_free(txt);
  /* Unlabelled metrics have series 0 whatever values say. */
  fl_gauge_t *g = NULL;
  assert_int_equal(fl_metrics_gauge(m, &(fl_metric_desc_t){.name = "g", .help = "h"}, &g), FL_OK);
  assert_int_equal(fl_gauge_series(g, NULL), 0);
  assert_int_equal(fl_gauge_nseries(g), 1);
  fl_gauge_set(g, 1, 5); /* dropped */
  assert_true(fl_gauge_value(g, 0) == 0);
  fl_gauge_add(g, 0, -2.5);
  assert_true(fl_gauge_value(g, 0) == -2.5);
  /* NULL handles are ignored, never a crash. */
  fl_counter_inc(NULL);
  fl_gauge_set(NULL, 0, 1);
  fl_histogram_observe(NULL, 0, 1);
  assert_int_equal(fl_histogram_series(NULL, NULL), -1);
  fl_metrics_free(m);
}

/* ---- concurrency ---- */

#define THREADS 4
#define PER_THREAD 200000

typedef struct conc_s {
  fl_counter_t *c;
  fl_gauge_t *g;
  fl_histogram_t *h;
  int id;
} conc_t;

static void *conc_worker(void *arg) {
  conc_t *w = arg;
  for (int i = 0; i < PER_THREAD; i++) {
    fl_counter_add(w->c, (size_t)(i & 1), 1);
    fl_gauge_add(w->g, 0, 1.0);
    fl_histogram_observe(w->h, (size_t)w->id % 2, (i % 4) * 0.5); /* 0, .5, 1, 1.5 */
  }
  return NULL;
}

static void test_concurrent_updates(void **state) {
  (void)state;
  fl_metrics_t *m = fl_metrics_new();
  static const char *const par[] = {"even", "odd"};
  fl_metric_label_t l = {.name = "parity", .values = par, .n_values = 2};
  static const double b[] = {0.5, 1};
  conc_t w[THREADS];
  fl_counter_t *c = NULL;
  fl_gauge_t *g = NULL;
  fl_histogram_t *h = NULL;
  assert_int_equal(fl_metrics_counter(m, &(fl_metric_desc_t){.name = "c_total", .help = "h",
                   .labels = &l, .n_labels = 1}, &c), FL_OK);
  assert_int_equal(fl_metrics_gauge(m, &(fl_metric_desc_t){.name = "g", .help = "h"}, &g), FL_OK);
  assert_int_equal(fl_metrics_histogram(m, &(fl_metric_desc_t){.name = "h_seconds", .help = "h",
                   .labels = &l, .n_labels = 1, .buckets = b, .n_buckets = 2}, &h), FL_OK);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (conc_t){.c = c, .g = g, .h = h, .id = i};
    assert_int_equal(pthread_create(&t[i], NULL, conc_worker, &w[i]), 0);
  }
  /* Scrape while they run: every rendering must be self-consistent. */
  for (int k = 0; k < 20; k++) {
    char *txt = render(m);
    assert_non_null(strstr(txt, "# TYPE h_seconds histogram\n"));
    fl_free(txt);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  const uint64_t total = (uint64_t)THREADS * PER_THREAD;
  assert_int_equal(fl_counter_value(c, 0) + fl_counter_value(c, 1), total);
  assert_int_equal(fl_counter_value(c, 0), total / 2);
  assert_true(fl_gauge_value(g, 0) == (double)total);
  double s0 = 0, s1 = 0;
  assert_int_equal(fl_histogram_count(h, 0, &s0), total / 2);
  assert_int_equal(fl_histogram_count(h, 1, &s1), total / 2);
  /* Each thread: PER_THREAD/4 of each of 0, .5, 1, 1.5 -> sum 0.75 * PER_THREAD. */
  assert_true(s0 == 2 * 0.75 * PER_THREAD);
  assert_true(s1 == 2 * 0.75 * PER_THREAD);
  char *txt = render(m);
  char line[128];
  snprintf(line, sizeof line, "h_seconds_bucket{parity=\"even\",le=\"0.5\"} %llu\n",
           (unsigned long long)(total / 2 / 2));
  assert_non_null(strstr(txt, line));
  snprintf(line, sizeof line, "h_seconds_bucket{parity=\"odd\",le=\"1\"} %llu\n",
           (unsigned long long)(total / 2 * 3 / 4));
  assert_non_null(strstr(txt, line));
  snprintf(line, sizeof line, "h_seconds_count{parity=\"odd\"} %llu\n",
           (unsigned long long)(total / 2));
  assert_non_null(strstr(txt, line));
  fl_free(txt);
  fl_metrics_free(m);
}

/* ======================================================================
 * HTTP parser
 * ====================================================================== */

static const fl__http_limits_t plim = {.max_request_line = 64, .max_head = 256, .max_headers = 4};

static int parse(const char *s, fl__http_req_t *r) {
  return fl__http_parse(s, strlen(s), &plim, r);
}

static void test_http_parser(void **state) {
  (void)state;
  fl__http_req_t r;
  const char *ok = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept:  */* \r\n\r\nBODY";
  assert_int_equal(parse(ok, &r), 1);
  assert_int_equal(r.method_len, 3);
  assert_memory_equal(r.method, "GET", 3);
  assert_int_equal(r.path_len, 8);
  assert_memory_equal(r.path, "/metrics", 8);
  assert_int_equal(r.version_minor, 1);
  assert_int_equal(r.head_len, strlen(ok) - 4);
  /* bare LF line endings, HTTP/1.0 without Host, absolute-form */
  assert_int_equal(parse("GET /healthz HTTP/1.0\n\n", &r), 1);
  assert_int_equal(parse("GET http://h:9443/version?q HTTP/1.1\r\nHost: h\r\n\r\n", &r), 1);
  assert_int_equal(r.path_len, 8);
  assert_memory_equal(r.path, "/version", 8);
  assert_int_equal(parse("GET http://h:9443 HTTP/1.1\r\nHost: h\r\n\r\n", &r), 1);
  assert_int_equal(r.path_len, 1);
  /* incomplete, nothing wrong yet */
  assert_int_equal(parse("", &r), 0);
  assert_int_equal(parse("GET /hea", &r), 0);
  assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n", &r), 0);
  /* errors and their status */
  struct { const char *in; int status; } bad[] = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
      {"GET / HTTX/1.1\r\n", 400},
      {"GET foo HTTP/1.1\r\n", 400},
      {"GET /a\x01 HTTP/1.1\r\n", 400},
      {"G\x00T / HTTP/1.1", 400},
      {"GET / HTTP/1.1\rX\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET / HTTP/1.1\r\n\r\n", 400},                              /* no Host */
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t n = strlen(bad[i].in);
    if (i == 7) n = 14; /* the one with a NUL inside */
    int rc = fl__http_parse(bad[i].in, n, &plim, &r);
    if (rc != -1 || r.status != bad[i].status)
      fail_msg("case %zu: rc=%d status=%d want %d", i, rc, r.status, bad[i].status);
    assert_non_null(r.error);
  }
  /* limits: request line (414), even before its end; head (431) */
  char line[200];
  snprintf(line, sizeof line, "GET /%0100d HTTP/1.1\r\n", 0);
  assert_int_equal(parse(line, &r), -1);
  assert_int_equal(r.status, 414);
  line[70] = '\0';
  assert_int_equal(parse(line, &r), -1);
  assert_int_equal(r.status, 414);
  char head[400];
  snprintf(head, sizeof head, "GET / HTTP/1.1\r\nHost: a\r\nX: %0250d", 0);
  assert_int_equal(parse(head, &r), -1);
  assert_int_equal(r.status, 431);
  snprintf(head, sizeof head, "GET / HTTP/1.1\r\nHost: a\r\nX: %0250d\r\n\r\n", 0);
  assert_int_equal(parse(head, &r), -1);
  assert_int_equal(r.status, 431);
}

static void test_json_text(void **state) {
  (void)state;
  fl_sbuf_t b = {0};
  const char in[] = "a\"b\\c\n\x01\xff\xC3\xA9";
  fl__json_str(&b, in, sizeof in - 1);
  fl_sbuf_append(&b, "", 1);
  assert_string_equal((char *)b.data, "\"a\\\"b\\\\c\\n\\u0001\xEF\xBF\xBD\xC3\xA9\"");
  fl_sbuf_free(&b);
  assert_true(fl__utf8_valid("\xF0\x9F\x98\x80", 4));
  assert_false(fl__utf8_valid("\xED\xA0\x80", 3)); /* surrogate */
  assert_false(fl__utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
  assert_false(fl__utf8_valid("\xE2\x82", 2));     /* truncated */
  assert_false(fl__utf8_valid("a\0b", 3));
}

/* ======================================================================
 * Server over real sockets
 * ====================================================================== */

#define IDLE_MS 300

typedef struct fx_s {
  uv_loop_t loop;
  uv_async_t stop;
  pthread_t thread;
  fl_metrics_t *metrics;
  fl_counter_t *requests;
  fl_ops_server_t *srv;
  int port;
  atomic_int pbft_broken;
  atomic_int closed;
} fx_t;

static fl_status_t check_ledger(void *arg, fl_sbuf_t *reason) {
  (void)arg;
  (void)reason;
  return FL_OK;
}

static fl_status_t check_pbft(void *arg, fl_sbuf_t *reason) {
  fx_t *fx = arg;
  if (!atomic_load(&fx->pbft_broken)) return FL_OK;
  fl_sbuf_append_str(reason, "no quorum: 1 of 4 \"replicas\" reachable");
  return FL_EUNAVAIL;
}

static fl_status_t check_silent(void *arg, fl_sbuf_t *reason) {
  fx_t *fx = arg;
  (void)reason;
  return atomic_load(&fx->pbft_broken) ? FL_ENOSPC : FL_OK;
}

static void on_server_closed(void *arg) {
  fx_t *fx = arg;
  atomic_store(&fx->closed, 1);
}

static void on_stop(uv_async_t *a) {
  fx_t *fx = a->data;
  fl_ops_server_close(fx->srv, on_server_closed, fx);
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_thread(void *arg) {
  fx_t *fx = arg;
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  return NULL;
}

static fx_t *fx_start(const fl_ops_config_t *cfg) {
  fx_t *fx = fl_calloc(1, sizeof *fx);
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  fx->metrics = fl_metrics_new();
  assert_int_equal(fl_metrics_counter(fx->metrics, &(fl_metric_desc_t){
      .name = "fedledger_test_requests_total", .help = "Test counter."}, &fx->requests), FL_OK);
  fl_counter_add(fx->requests, 0, 41);
  assert_int_equal(fl_ops_server_start(&fx->loop, cfg, fx->metrics, &fx->srv), FL_OK);
  fx->port = fl_ops_server_port(fx->srv);
  assert_true(fx->port > 0);
  assert_int_equal(fl_ops_register_check(fx->srv, "ledger", check_ledger, fx), FL_OK);
  assert_int_equal(fl_ops_register_check(fx->srv, "pbft", check_pbft, fx), FL_OK);
  assert_int_equal(fl_ops_register_check(fx->srv, "pbft", check_pbft, fx), FL_EEXIST);
  assert_int_equal(fl_ops_register_check(fx->srv, "", check_pbft, fx), FL_EINVAL);
  assert_int_equal(fl_ops_register_check(fx->srv, "x", NULL, fx), FL_EINVAL);
  assert_int_equal(uv_async_init(&fx->loop, &fx->stop, on_stop), 0);
  fx->stop.data = fx;
  assert_int_equal(pthread_create(&fx->thread, NULL, loop_thread, fx), 0);
  return fx;
}

static void fx_stop(fx_t *fx) {
  uv_async_send(&fx->stop);
  pthread_join(fx->thread, NULL);
  assert_int_equal(atomic_load(&fx->closed), 1);
  assert_int_equal(uv_loop_close(&fx->loop), 0); /* every handle was closed */
  fl_metrics_free(fx->metrics);
  fl_free(fx);
}

static const fl_ops_config_t default_cfg = {
    .version = "1.2.3",
    .commit = "abc\"def",
    .idle_timeout_ms = IDLE_MS,
    .max_header_bytes = 1024,
    .max_request_line = 256,
};

static int setup_server(void **state) {
  *state = fx_start(&default_cfg);
  return 0;
}

static int teardown_server(void **state) {
  fx_stop(*state);
  return 0;
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    assert_true(k > 0);
    p += k;
    n -= (size_t)k;
  }
}

/* Reads until EOF (or error/timeout); returns bytes read, -1 on error. */
static long read_all(int fd, fl_sbuf_t *out) {
  char b[4096];
  for (;;) {
    ssize_t k = recv(fd, b, sizeof b, 0);
    if (k == 0) return (long)out->len;
    if (k < 0) return -1;
    fl_sbuf_append(out, b, (size_t)k);
  }
}

typedef struct resp_s {
  int status;
  char *raw;      /* NUL-terminated copy of everything received */
  const char *body;
  size_t body_len;
} resp_t;

static resp_t exchange(int port, const char *req, size_t n) {
  int fd = dial(port);
  send_all(fd, req, n);
  fl_sbuf_t in = {0};
  long got = read_all(fd, &in);
  close(fd);
  assert_true(got > 0);
  fl_sbuf_append(&in, "", 1);
  resp_t r = {0};
  r.raw = (char *)fl_sbuf_detach(&in, NULL);
  assert_int_equal(strncmp(r.raw, "HTTP/1.1 ", 9), 0);
  r.status = atoi(r.raw + 9);
  char *end = strstr(r.raw, "\r\n\r\n");
  assert_non_null(end);
  r.body = end + 4;
  r.body_len = strlen(r.body);
  return r;
}

static resp_t get(int port, const char *method, const char *path) {
  char req[512];
  snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n",
           method, path);
  return exchange(port, req, strlen(req));
}

/* Value of header name in r (a static copy), or NULL. */
static const char *header(const resp_t *r, const char *name) {
  static char val[256];
  size_t nl = strlen(name);
  const char *p = strstr(r->raw, "\r\n");
  while (p && p + 2 < r->body) {
    p += 2;
    if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (*v == ' ') v++;
      const char *e = strstr(v, "\r\n");
      snprintf(val, sizeof val, "%.*s", (int)(e - v), v);
      return val;
    }
    p = strstr(p, "\r\n");
  }
  return NULL;
}

static void resp_free(resp_t *r) { fl_free(r->raw); }

static void test_http_healthz(void **state) {
  fx_t *fx = *state;
  resp_t r = get(fx->port, "GET", "/healthz");
  assert_int_equal(r.status, 200);
  assert_string_equal(header(&r, "Content-Type"), "application/json");
  assert_string_equal(header(&r, "Connection"), "close");
  assert_string_equal(r.body, "{\"status\":\"OK\"}");
  assert_int_equal(atoi(header(&r, "Content-Length")), (int)r.body_len);
  resp_free(&r);

  atomic_store(&fx->pbft_broken, 1);
  r = get(fx->port, "GET", "/healthz");
  assert_int_equal(r.status, 503);
  assert_non_null(strstr(r.raw, "HTTP/1.1 503 Service Unavailable\r\n"));
  assert_string_equal(r.body,
                      "{\"status\":\"Service Unavailable\",\"failed_checks\":[{\"component\":"
                      "\"pbft\",\"reason\":\"no quorum: 1 of 4 \\\"replicas\\\" reachable\"}]}");
  resp_free(&r);

  atomic_store(&fx->pbft_broken, 0);
  r = get(fx->port, "GET", "/healthz");
  assert_int_equal(r.status, 200);
  resp_free(&r);
}

/* Health checks run directly (no loop running, no client). */
static void test_health_direct(void **state) {
  (void)state;
  /* fl_ops_health and check registration without a running loop. */
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  fl_ops_server_t *s = NULL;
  assert_int_equal(fl_ops_server_start(&loop, &default_cfg, NULL, &s), FL_OK);
  fx_t fx = {0};
  assert_int_equal(fl_ops_register_check(s, "disk", check_silent, &fx), FL_OK);
  assert_int_equal(fl_ops_register_check(s, "pbft", check_pbft, &fx), FL_OK);
  atomic_store(&fx.pbft_broken, 1);
  fl_sbuf_t b = {0};
  assert_int_equal(fl_ops_health(s, &b), 503);
  fl_sbuf_append(&b, "", 1);
  assert_string_equal((char *)b.data,
                      "{\"status\":\"Service Unavailable\",\"failed_checks\":["
                      "{\"component\":\"disk\",\"reason\":\"no space left\"},"
                      "{\"component\":\"pbft\",\"reason\":\"no quorum: 1 of 4 \\\"replicas\\\" "
                      "reachable\"}]}");
  fl_sbuf_free(&b);
  assert_int_equal(fl_ops_unregister_check(s, "disk"), FL_OK);
  assert_int_equal(fl_ops_unregister_check(s, "disk"), FL_NOTFOUND);
  assert_int_equal(fl_ops_unregister_check(s, "pbft"), FL_OK);
  assert_int_equal(fl_ops_health(s, &b), 200);
  fl_sbuf_free(&b);
  fl_ops_server_close(s, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_http_metrics(void **state) {
  fx_t *fx = *state;
  resp_t r = get(fx->port, "GET", "/metrics");
  assert_int_equal(r.status, 200);
  assert_string_equal(header(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  assert_string_equal(r.body,
                      "# HELP fedledger_test_requests_total Test counter.\n"
                      "# TYPE fedledger_test_requests_total counter\n"
                      "fedledger_test_requests_total 41\n");
  resp_free(&r);
  fl_counter_inc(fx->requests); /* from this thread, while the loop runs */
  r = get(fx->port, "GET", "/metrics?format=text");
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "fedledger_test_requests_total 42\n"));
  resp_free(&r);
}

static void test_http_version_and_errors(void **state) {
  fx_t *fx = *state;
  resp_t r = get(fx->port, "GET", "/version");
  assert_int_equal(r.status, 200);
  assert_string_equal(header(&r, "Content-Type"), "application/json");
  assert_string_equal(r.body, "{\"version\":\"1.2.3\",\"commit\":\"abc\\\"def\"}");
  resp_free(&r);

  r = get(fx->port, "HEAD", "/version");
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 0);
  assert_int_equal(atoi(header(&r, "Content-Length")), 39);
  resp_free(&r);

  r = get(fx->port, "GET", "/nope");
  assert_int_equal(r.status, 404);
  resp_free(&r);
  r = get(fx->port, "GET", "/healthz/");
  assert_int_equal(r.status, 404);
  resp_free(&r);

  static const char *const methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "get"};
  for (size_t i = 0; i < 5; i++) {
    r = get(fx->port, methods[i], "/metrics");
    assert_int_equal(r.status, 405);
    assert_string_equal(header(&r, "Allow"), "GET, HEAD");
    resp_free(&r);
  }
  /* A POST with a body: answered 405, the body drained, no reset. */
  const char post[] = "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  r = exchange(fx->port, post, sizeof post - 1);
  assert_int_equal(r.status, 405);
  resp_free(&r);
}

static void test_http_malformed(void **state) {
  fx_t *fx = *state;
  static const char *const bad[] = {
      "GARBAGE\r\n\r\n",
      "GET /healthz HTTP/1.1\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
      "GET /healthz\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    resp_t r = exchange(fx->port, bad[i], strlen(bad[i]));
    if (r.status != 400) fail_msg("case %zu: status %d", i, r.status);
    assert_string_equal(header(&r, "Connection"), "close");
    resp_free(&r);
  }
  /* the start of a TLS ClientHello (NUL bytes, no newline): 400 at once */
  resp_t h = exchange(fx->port, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11);
  assert_int_equal(h.status, 400);
  resp_free(&h);
  /* garbage line answered at once, without the blank line */
  resp_t r = exchange(fx->port, "BLAH BLAH\n", 10);
  assert_int_equal(r.status, 400);
  resp_free(&r);
  r = exchange(fx->port, "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 27);
  assert_int_equal(r.status, 505);
  resp_free(&r);
  /* The server still serves afterwards. */
  r = get(fx->port, "GET", "/healthz");
  assert_int_equal(r.status, 200);
  resp_free(&r);
}

static void test_http_oversize(void **state) {
  fx_t *fx = *state;
  /* headers over max_header_bytes (1024) */
  fl_sbuf_t req = {0};
  fl_sbuf_append_str(&req, "GET /metrics HTTP/1.1\r\nHost: a\r\n");
  for (int i = 0; i < 40; i++) fl_sbuf_printf(&req, "X-Filler-%02d: %040d\r\n", i, i);
  fl_sbuf_append_str(&req, "\r\n");
  assert_true(req.len > 2000);
  resp_t r = exchange(fx->port, (const char *)req.data, req.len);
  assert_int_equal(r.status, 431);
  resp_free(&r);
  fl_sbuf_free(&req);
  /* a request line over max_request_line (256): 414 */
  char line[600];
  snprintf(line, sizeof line, "GET /%0400d HTTP/1.1\r\nHost: a\r\n\r\n", 7);
  r = exchange(fx->port, line, strlen(line));
  assert_int_equal(r.status, 414);
  resp_free(&r);
  /* an endless header with no newline at all: 431, not a hang */
  fl_sbuf_t big = {0};
  fl_sbuf_append_str(&big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
  for (int i = 0; i < 3000; i++) fl_sbuf_append(&big, "y", 1);
  r = exchange(fx->port, (const char *)big.data, big.len);
  assert_int_equal(r.status, 431);
  resp_free(&r);
  fl_sbuf_free(&big);
}

static void test_http_idle_timeout(void **state) {
  fx_t *fx = *state;
  /* Connects and sends nothing: closed after the idle timeout, no answer. */
  int fd = dial(fx->port);
  uint64_t t0 = fl_mono_ns();
  char b[64];
  ssize_t k = recv(fd, b, sizeof b, 0);
  uint64_t ms = (fl_mono_ns() - t0) / 1000000;
  close(fd);
  assert_int_equal(k, 0);
  assert_true(ms >= IDLE_MS - 50);
  assert_true(ms < 4000);
  /* Sends half a request: 408 after the timeout. */
  fd = dial(fx->port);
  send_all(fd, "GET /heal", 9);
  t0 = fl_mono_ns();
  fl_sbuf_t in = {0};
  assert_true(read_all(fd, &in) > 0);
  ms = (fl_mono_ns() - t0) / 1000000;
  close(fd);
  fl_sbuf_append(&in, "", 1);
  assert_int_equal(strncmp((char *)in.data, "HTTP/1.1 408 ", 13), 0);
  assert_true(ms >= IDLE_MS - 50);
  fl_sbuf_free(&in);
  /* A slow client dribbling bytes does not reset the deadline: it gets its
   * 408 about IDLE_MS after connecting although it never paused long. */
  fd = dial(fx->port);
  t0 = fl_mono_ns();
  in = (fl_sbuf_t){0};
  for (int i = 0; i < 60 && in.len == 0; i++) {
    if (send(fd, "X", 1, MSG_NOSIGNAL) != 1) break;
    sleep_ms(25);
    char b2[512];
    ssize_t got = recv(fd, b2, sizeof b2, MSG_DONTWAIT);
    if (got > 0) fl_sbuf_append(&in, b2, (size_t)got);
  }
  ms = (fl_mono_ns() - t0) / 1000000;
  close(fd);
  fl_sbuf_append(&in, "", 1);
  assert_int_equal(strncmp((char *)in.data, "HTTP/1.1 408 ", 13), 0);
  assert_true(ms >= IDLE_MS - 50);
  assert_true(ms < IDLE_MS + 1000);
  fl_sbuf_free(&in);
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static void test_http_many_requests_no_leak(void **state) {
  fx_t *fx = *state;
  int before = count_fds();
  for (int i = 0; i < 300; i++) {
    resp_t r = get(fx->port, "GET", i % 3 == 0 ? "/healthz" : i % 3 == 1 ? "/metrics" : "/nope");
    assert_int_equal(r.status, i % 3 == 2 ? 404 : 200);
    resp_free(&r);
  }
  /* The server closes its side when it sees our FIN; allow it a moment. */
  int after = count_fds();
  for (int i = 0; i < 200 && after != before; i++) {
    sleep_ms(10);
    after = count_fds();
  }
  assert_int_equal(after, before);
}

static void test_http_max_connections(void **state) {
  (void)state;
  fl_ops_config_t cfg = default_cfg;
  cfg.idle_timeout_ms = 5000;
  cfg.max_connections = 3;
  fx_t *fx = fx_start(&cfg);
  int fds[3];
  for (int i = 0; i < 3; i++) fds[i] = dial(fx->port);
  sleep_ms(50);
  int extra = dial(fx->port);
  uint64_t t0 = fl_mono_ns();
  char b[8];
  ssize_t k = recv(extra, b, sizeof b, 0);
  assert_true(k <= 0);
  assert_true((fl_mono_ns() - t0) / 1000000 < 3000);
  close(extra);
  /* After one of the three goes away, a new client is served. */
  close(fds[0]);
  resp_t r = {0};
  for (int tries = 0; tries < 50; tries++) {
    sleep_ms(20);
    int fd = dial(fx->port);
    const char *q = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    send(fd, q, strlen(q), MSG_NOSIGNAL);
    fl_sbuf_t in = {0};
    long got = read_all(fd, &in);
    close(fd);
    if (got > 0) {
      fl_sbuf_append(&in, "", 1);
      r.raw = (char *)fl_sbuf_detach(&in, NULL);
      break;
    }
    fl_sbuf_free(&in);
  }
  assert_non_null(r.raw);
  assert_int_equal(strncmp(r.raw, "HTTP/1.1 200 ", 13), 0);
  fl_free(r.raw);
  close(fds[1]);
  close(fds[2]);
  /* Closing the server with connections open cuts them and frees all. */
  fx_stop(fx);
}

static void test_server_start_errors(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  fl_ops_server_t *a = NULL, *b = (fl_ops_server_t *)(uintptr_t)1;
  fl_ops_config_t cfg = default_cfg;
  assert_int_equal(fl_ops_server_start(&loop, &cfg, NULL, &a), FL_OK);
  cfg.port = fl_ops_server_port(a);
  assert_int_equal(fl_ops_server_start(&loop, &cfg, NULL, &b), FL_EIO); /* port in use */
  assert_null(b);
  cfg.port = 0;
  cfg.host = "not-an-address";
  assert_int_equal(fl_ops_server_start(&loop, &cfg, NULL, &b), FL_EINVAL);
  cfg.host = "127.0.0.1";
  cfg.port = 70000;
  assert_int_equal(fl_ops_server_start(&loop, &cfg, NULL, &b), FL_EINVAL);
  assert_int_equal(fl_ops_server_start(NULL, &cfg, NULL, &b), FL_EINVAL);
  assert_int_equal(fl_ops_server_start(&loop, NULL, NULL, &b), FL_EINVAL);
  cfg.host = "::1";
  cfg.port = 0;
  fl_ops_server_t *v6 = NULL;
  fl_status_t rc6 = fl_ops_server_start(&loop, &cfg, NULL, &v6); /* no IPv6: FL_EIO */
  assert_true(rc6 == FL_OK || rc6 == FL_EIO);
  fl_ops_server_close(v6, NULL, NULL);
  fl_ops_server_close(a, NULL, NULL);
  fl_ops_server_close(NULL, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_render_exact),
      cmocka_unit_test(test_label_escaping),
      cmocka_unit_test(test_histogram_buckets_sums),
      cmocka_unit_test(test_format_double),
      cmocka_unit_test(test_registration_checks),
      cmocka_unit_test(test_series_index),
      cmocka_unit_test(test_concurrent_updates),
      cmocka_unit_test(test_http_parser),
      cmocka_unit_test(test_json_text),
      cmocka_unit_test(test_health_direct),
      cmocka_unit_test_setup_teardown(test_http_healthz, setup_server, teardown_server),
      cmocka_unit_test_setup_teardown(test_http_metrics, setup_server, teardown_server),
      cmocka_unit_test_setup_teardown(test_http_version_and_errors, setup_server,
                                      teardown_server),
      cmocka_unit_test_setup_teardown(test_http_malformed, setup_server, teardown_server),
      cmocka_unit_test_setup_teardown(test_http_oversize, setup_server, teardown_server),
      cmocka_unit_test_setup_teardown(test_http_idle_timeout, setup_server, teardown_server),
      cmocka_unit_test_setup_teardown(test_http_many_requests_no_leak, setup_server,
                                      teardown_server),
      cmocka_unit_test(test_http_max_connections),
      cmocka_unit_test(test_server_start_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
