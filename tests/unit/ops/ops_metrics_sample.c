/* SPDX-License-Identifier: Apache-2.0
 *
 * ops_metrics_sample: renders a registry holding every metric kind, with and
 * without labels, awkward label values and help text, to stdout. The
 * promtool ctest pipes it into `promtool check metrics` so that the real
 * Prometheus parser and linter judge our exposition text. The metric set
 * follows the names in docs/operations-endpoint.md.
 */
#include <stdio.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/ops/metrics.h"

#define CHECK(expr)                                                    \
  do {                                                                 \
    if ((expr) != FL_OK) {                                             \
      fprintf(stderr, "ops_metrics_sample: %s failed\n", #expr);       \
      return 1;                                                        \
    }                                                                  \
  } while (0)

int main(void) {
  fl_metrics_t *m = fl_metrics_new();
  fl_counter_t *tx = NULL, *rpc = NULL, *vc = NULL;
  fl_gauge_t *height = NULL, *view = NULL, *queue = NULL, *ckpt = NULL;
  fl_histogram_t *endorse = NULL, *cut = NULL;

  static const char *const codes[] = {"VALID", "MVCC_READ_CONFLICT", "ENDORSEMENT_POLICY_FAILURE",
                                      "BAD_SIGNATURE"};
  fl_metric_label_t code = {.name = "code", .values = codes, .n_values = 4};
  CHECK(fl_metrics_counter(m, &(fl_metric_desc_t){
      .name = "fedledger_peer_validator_tx_validated_total",
      .help = "Transactions validated, by validation code.", .labels = &code, .n_labels = 1},
      &tx));
  static const char *const methods[] = {"Endorse", "Submit", "Deliver"};
  static const char *const errs[] = {"EPERM", "EMALFORMED", "odd \"value\" with \\ and\nnewline"};
  fl_metric_label_t rl[2] = {{.name = "method", .values = methods, .n_values = 3},
                             {.name = "code", .values = errs, .n_values = 3}};
  CHECK(fl_metrics_counter(m, &(fl_metric_desc_t){
      .name = "fedledger_peer_rpc_errors_total",
      .help = "RPC calls that failed, by method and status.\nA second line with a \\.",
      .labels = rl, .n_labels = 2}, &rpc));
  CHECK(fl_metrics_counter(m, &(fl_metric_desc_t){
      .name = "fedledger_orderer_pbft_view_changes_total", .help = "View changes started."},
      &vc));
  CHECK(fl_metrics_gauge(m, &(fl_metric_desc_t){
      .name = "fedledger_peer_ledger_height", .help = "Blocks in the ledger."}, &height));
  CHECK(fl_metrics_gauge(m, &(fl_metric_desc_t){
      .name = "fedledger_orderer_pbft_view", .help = "Current PBFT view."}, &view));
  CHECK(fl_metrics_gauge(m, &(fl_metric_desc_t){
      .name = "fedledger_orderer_pbft_checkpoint_sequence",
      .help = "Sequence number of the last stable checkpoint."}, &ckpt));
  static const char *const queues[] = {"broadcast", "commit"};
  fl_metric_label_t ql = {.name = "queue", .values = queues, .n_values = 2};
  CHECK(fl_metrics_gauge(m, &(fl_metric_desc_t){
      .name = "fedledger_orderer_queue_depth", .help = "Items waiting in a queue.",
      .labels = &ql, .n_labels = 1}, &queue));
  static const char *const ep[] = {"Endorse"};
  fl_metric_label_t el = {.name = "method", .values = ep, .n_values = 1};
  CHECK(fl_metrics_histogram(m, &(fl_metric_desc_t){
      .name = "fedledger_peer_endorser_duration_seconds", .help = "Endorsement latency.",
      .labels = &el, .n_labels = 1, .buckets = fl_metrics_latency_buckets,
      .n_buckets = FL_METRICS_LATENCY_BUCKETS_N}, &endorse));
  static const double cb[] = {0.001, 0.01, 0.1, 1};
  CHECK(fl_metrics_histogram(m, &(fl_metric_desc_t){
      .name = "fedledger_orderer_blockcutter_cut_duration_seconds",
      .help = "Time from the first envelope of a batch to the cut.", .buckets = cb,
      .n_buckets = 4}, &cut));

  fl_counter_add(tx, 0, 120);
  fl_counter_add(tx, 1, 3);
  fl_counter_add(rpc, 2, 1);
  fl_counter_add(rpc, 8, 1);
  fl_counter_inc(vc);
  fl_gauge_set(height, 0, 125);
  fl_gauge_set(view, 0, 1);
  fl_gauge_set(ckpt, 0, 100);
  fl_gauge_set(queue, 1, 7);
  for (int i = 0; i < 50; i++) fl_histogram_observe(endorse, 0, 0.002 * i);
  fl_histogram_observe(cut, 0, 0.5);
  fl_histogram_observe(cut, 0, 3);

  fl_sbuf_t out = {0};
  fl_metrics_render(m, &out);
  int ok = fwrite(out.data, 1, out.len, stdout) == out.len && fflush(stdout) == 0;
  fl_sbuf_free(&out);
  fl_metrics_free(m);
  return ok ? 0 : 1;
}
