/* SPDX-License-Identifier: Apache-2.0
 *
 * metrics.c: the orderer's operations endpoint (common/ops): its metrics
 * registry, the values the node feeds it, and the health checks.
 *
 * Everything runs on the loop thread. Gauges are refreshed after every call
 * into the PBFT machine (fl__node_after_pbft) and on its timer, which fires
 * at least every pbft.resend; the machine's own counters (fl_pbft_stats)
 * are mirrored into Prometheus counters by adding the difference since the
 * last refresh, so a scrape sees values at most one resend interval old.
 *
 * Health checks (docs/operations-endpoint.md):
 *   store  the replica log accepts writes (no write has failed), data_dir
 *          is writable and its file system has at least 64 MiB free;
 *   pbft   this replica has a live link to at least 2f other replicas
 *          (with itself a quorum), and no view change has lasted longer
 *          than operations.stuck_view_change.
 */
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "orderer/node/node_int.h"

#define LOG FL__ORD_LOG

#ifndef FL_ORDERER_VERSION
#define FL_ORDERER_VERSION "0.0.0"
#endif
#ifndef FL_ORDERER_COMMIT
#define FL_ORDERER_COMMIT ""
#endif

#define STORE_MIN_FREE ((uint64_t)64 << 20)

static const char *const bc_results[FL__BC_N] = {
    "accepted",      "malformed",  "wrong_type", "wrong_channel", "bad_signature",
    "not_member",    "duplicate",  "busy",       "unavailable",   "refused"};

static const char *const rpc_methods[FL__M_N] = {"Orderer/Broadcast", "Orderer/Deliver",
                                                 "Pbft/Consensus"};

/* Order of the `reason` label of fedledger_orderer_pbft_messages_dropped_total. */
static const char *const drop_reasons[] = {"bad_signature", "non_member",  "stale",
                                           "malformed",     "out_of_window", "duplicate",
                                           "conflicting",   "rejected",      "redundant"};
#define N_DROP (sizeof(drop_reasons) / sizeof(drop_reasons[0]))

/* Order of the `queue` label of fedledger_orderer_queue_depth. */
enum { Q_PENDING, Q_QUEUED, Q_INFLIGHT_REQ, Q_INFLIGHT_SEQ, Q_BROADCAST, Q_CONSENSUS,
       Q_LINK_OUT, Q_WRITE, Q_N };
static const char *const queues[Q_N] = {"pending_requests", "queued_requests",
                                        "inflight_requests", "inflight_seqs",
                                        "broadcast_verify", "consensus_verify",
                                        "replica_send", "store_write"};

/* Block latency buckets: the PBFT pipeline runs in milliseconds. */
static const double cut_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,     10};
static const double write_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                       0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};

static void must(fl_status_t rc, const char *name) {
  /* Registration fails only for a programming error (bad or duplicate
   * name): say so loudly, the node works without that metric. */
  if (rc < 0) FL_ERROR(LOG, "metric not registered name=%s rc=%s", name, fl_status_name(rc));
}

#define COUNTER(field, nm, hlp, lbl, nl)                                                    \
  must(fl_metrics_counter(m->reg,                                                           \
                          &(fl_metric_desc_t){.name = nm, .help = hlp, .labels = lbl,       \
                                              .n_labels = nl},                              \
                          &m->field),                                                       \
       nm)
#define GAUGE(field, nm, hlp, lbl, nl)                                                      \
  must(fl_metrics_gauge(m->reg,                                                             \
                        &(fl_metric_desc_t){.name = nm, .help = hlp, .labels = lbl,         \
                                            .n_labels = nl},                                \
                        &m->field),                                                         \
       nm)

void fl__metrics_setup(fl__node_t *n) {
  fl__node_metrics_t *m = &n->mx;
  m->reg = fl_metrics_new();
  fl_metric_label_t result = {.name = "result", .values = bc_results, .n_values = FL__BC_N};
  fl_metric_label_t method = {.name = "method", .values = rpc_methods, .n_values = FL__M_N};
  fl_metric_label_t reason = {.name = "reason", .values = drop_reasons, .n_values = N_DROP};
  fl_metric_label_t queue = {.name = "queue", .values = queues, .n_values = Q_N};
  GAUGE(height, "fedledger_orderer_ledger_height",
        "Blocks in this orderer's block store (the genesis block included).", NULL, 0);
  GAUGE(view, "fedledger_orderer_pbft_view", "Current PBFT view (or the view being changed to).",
        NULL, 0);
  GAUGE(view_change, "fedledger_orderer_pbft_view_change_in_progress",
        "1 while a view change is in progress, else 0.", NULL, 0);
  COUNTER(view_changes, "fedledger_orderer_pbft_view_changes_total",
          "View changes this replica started or joined.", NULL, 0);
  COUNTER(new_views, "fedledger_orderer_pbft_views_installed_total",
          "Views installed (NEW-VIEW accepted or sent).", NULL, 0);
  GAUGE(checkpoint, "fedledger_orderer_pbft_checkpoint_sequence",
        "Sequence number of the last stable checkpoint (low watermark).", NULL, 0);
  GAUGE(last_exec, "fedledger_orderer_pbft_executed_sequence",
        "Highest sequence number executed.", NULL, 0);
  COUNTER(state_transfers, "fedledger_orderer_pbft_state_transfers_total",
          "State transfers completed.", NULL, 0);
  COUNTER(relayed, "fedledger_orderer_pbft_requests_relayed_total",
          "Held requests no pre-prepare carried for half of pbft.censor_timeout, multicast "
          "to every replica.",
          NULL, 0);
  COUNTER(censor_timeouts, "fedledger_orderer_pbft_censor_timeouts_total",
          "View changes this backup voted because a request it held went unordered for "
          "pbft.censor_timeout while the primary executed others.",
          NULL, 0);
  COUNTER(snapshots, "fedledger_orderer_pbft_snapshots_total",
          "State transfers that started past the others' pruned log (installed by record).",
          NULL, 0);
  COUNTER(requests, "fedledger_orderer_pbft_requests_executed_total",
          "Client envelopes put in blocks by this replica.", NULL, 0);
  COUNTER(blocks, "fedledger_orderer_blocks_stored_total",
          "Blocks written to the block store since start.", NULL, 0);
  COUNTER(dropped, "fedledger_orderer_pbft_messages_dropped_total",
          "Consensus messages dropped, by reason (bad signature, non-member sender, stale "
          "view, ...).",
          &reason, 1);
  COUNTER(broadcast, "fedledger_orderer_broadcast_total",
          "Broadcast envelopes answered, by result (accepted or the reason for refusal).",
          &result, 1);
  COUNTER(rpc_errors, "fedledger_orderer_rpc_errors_total",
          "RPC calls ended with an error, by method (Pbft/Consensus also counts dropped "
          "replica links).",
          &method, 1);
  GAUGE(queue, "fedledger_orderer_queue_depth", "Items waiting, by queue.", &queue, 1);
  GAUGE(parked, "fedledger_orderer_broadcast_parked_calls",
        "Broadcast calls waiting for room in this replica (flow control: broadcast.max_parked).",
        NULL, 0);
  COUNTER(read_pauses, "fedledger_orderer_broadcast_read_pauses_total",
          "Times a parked Broadcast call stopped reading from its client connection "
          "(backpressure on the client).",
          NULL, 0);
  GAUGE(links_up, "fedledger_orderer_replica_links_up",
        "Other replicas this orderer currently receives consensus messages from.", NULL, 0);
  must(fl_metrics_histogram(
           m->reg,
           &(fl_metric_desc_t){.name = "fedledger_orderer_blockcutter_cut_duration_seconds",
                               .help = "Block latency: from the primary cutting the batch to "
                                       "the block being durable in this orderer's store "
                                       "(wall clock).",
                               .buckets = cut_buckets,
                               .n_buckets = sizeof(cut_buckets) / sizeof(cut_buckets[0])},
           &m->cut),
       "fedledger_orderer_blockcutter_cut_duration_seconds");
  must(fl_metrics_histogram(
           m->reg,
           &(fl_metric_desc_t){.name = "fedledger_orderer_store_write_duration_seconds",
                               .help = "Time of one replica log write batch (group commit).",
                               .buckets = write_buckets,
                               .n_buckets = sizeof(write_buckets) / sizeof(write_buckets[0])},
           &m->write),
       "fedledger_orderer_store_write_duration_seconds");
}

static void add_delta(fl_counter_t *c, size_t series, uint64_t now, uint64_t before) {
  if (now > before) fl_counter_add(c, series, now - before);
}

void fl__metrics_update(fl__node_t *n, const fl_pbft_info_t *in, const fl_pbft_stats_t *st) {
  fl__node_metrics_t *m = &n->mx;
  if (m->reg == NULL) return;
  fl_gauge_set(m->height, 0, (double)(n->height + 1));
  fl_gauge_set(m->view, 0, (double)in->view);
  fl_gauge_set(m->view_change, 0, in->view_change ? 1.0 : 0.0);
  fl_gauge_set(m->checkpoint, 0, (double)in->low_watermark);
  fl_gauge_set(m->last_exec, 0, (double)in->last_executed);
  if (in->view_change && m->vc_since == 0) m->vc_since = fl__node_now();
  if (!in->view_change) m->vc_since = 0;
  const fl_pbft_stats_t *o = &m->last;
  add_delta(m->view_changes, 0, st->view_changes, o->view_changes);
  add_delta(m->new_views, 0, st->new_views, o->new_views);
  add_delta(m->state_transfers, 0, st->state_transfers, o->state_transfers);
  add_delta(m->requests, 0, st->requests_executed, o->requests_executed);
  add_delta(m->relayed, 0, st->requests_relayed, o->requests_relayed);
  add_delta(m->snapshots, 0, st->snapshots, o->snapshots);
  add_delta(m->censor_timeouts, 0, st->censor_timeouts, o->censor_timeouts);
  const uint64_t now_d[N_DROP] = {st->rx_bad_signature, st->rx_non_member, st->rx_stale,
                                  st->rx_malformed,     st->rx_out_of_window, st->rx_duplicate,
                                  st->rx_conflicting,   st->rx_rejected,      st->rx_redundant};
  const uint64_t old_d[N_DROP] = {o->rx_bad_signature, o->rx_non_member, o->rx_stale,
                                  o->rx_malformed,     o->rx_out_of_window, o->rx_duplicate,
                                  o->rx_conflicting,   o->rx_rejected,      o->rx_redundant};
  for (size_t i = 0; i < N_DROP; i++) add_delta(m->dropped, i, now_d[i], old_d[i]);
  m->last = *st;
  size_t oq = 0;
  uint32_t up = 0;
  for (uint32_t j = 0; j < n->nrep; j++) {
    if (j == n->self || n->links == NULL) continue;
    oq += n->links[j].oq_len - n->links[j].oq_head;
    if (n->links[j].connected) up++;
  }
  double q[Q_N] = {(double)in->pending_requests, (double)in->queued_requests,
                   (double)in->inflight_requests, (double)in->inflight_seqs,
                   (double)n->bc_n, (double)(n->cs_n + n->cs_nb), (double)oq,
                   (double)(n->qlen - n->qhead)};
  for (size_t i = 0; i < Q_N; i++) fl_gauge_set(m->queue, i, q[i]);
  fl_gauge_set(m->links_up, 0, (double)up);
  fl_gauge_set(m->parked, 0, (double)n->park_n);
}

void fl__metrics_parked(fl__node_t *n) {
  if (n->mx.reg) fl_gauge_set(n->mx.parked, 0, (double)n->park_n);
}

void fl__metrics_read_pause(fl__node_t *n) {
  if (n->mx.reg) fl_counter_add(n->mx.read_pauses, 0, 1);
}

void fl__metrics_block(fl__node_t *n, uint64_t number, uint64_t ts) {
  (void)number;
  fl__node_metrics_t *m = &n->mx;
  if (m->reg == NULL) return;
  fl_counter_add(m->blocks, 0, 1);
  uint64_t wall = fl_wall_ms();
  fl_histogram_observe(m->cut, 0, wall > ts ? (double)(wall - ts) / 1000.0 : 0.0);
}

void fl__metrics_broadcast(fl__node_t *n, fl__bc_result_t r) {
  if (n->mx.reg) fl_counter_add(n->mx.broadcast, (size_t)r, 1);
  if (r != FL__BC_ACCEPTED) fl__metrics_rpc_error(n, FL__M_BROADCAST);
}

void fl__metrics_rpc_error(fl__node_t *n, fl__rpc_method_t m) {
  if (n->mx.reg) fl_counter_add(n->mx.rpc_errors, (size_t)m, 1);
}

/* ---------------------------------------------------------- health checks */

static fl_status_t check_store(void *arg, fl_sbuf_t *reason) {
  fl__node_t *n = arg;
  if (n->store_failed) {
    fl_sbuf_append_str(reason, "a replica log write failed");
    return FL_ESTORE;
  }
  /* Two system calls on metadata the kernel holds: no disk I/O. */
  if (access(n->data_dir, W_OK) != 0) {
    fl_sbuf_printf(reason, "data_dir %s is not writable", n->data_dir);
    return FL_ESTORE;
  }
  struct statvfs sv;
  if (statvfs(n->data_dir, &sv) == 0) {
    uint64_t avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    if (avail < STORE_MIN_FREE) {
      fl_sbuf_printf(reason, "data_dir file system almost full (%llu bytes free)",
                     (unsigned long long)avail);
      return FL_ESTORE;
    }
  }
  return FL_OK;
}

static fl_status_t check_pbft(void *arg, fl_sbuf_t *reason) {
  fl__node_t *n = arg;
  uint32_t up = 1; /* ourselves */
  for (uint32_t j = 0; j < n->nrep; j++)
    if (j != n->self && n->links[j].connected) up++;
  uint32_t q = 2 * n->f + 1;
  if (up < q) {
    fl_sbuf_printf(reason, "no quorum contact: links to %u of %u replicas (itself included), "
                   "quorum %u", up, n->nrep, q);
    return FL_EUNAVAIL;
  }
  uint64_t since = n->mx.vc_since;
  if (since != 0 && fl__node_now() - since > n->stuck_vc_ms) {
    fl_sbuf_printf(reason, "view change to view %llu stuck for %llu ms",
                   (unsigned long long)n->info.view,
                   (unsigned long long)(fl__node_now() - since));
    return FL_EUNAVAIL;
  }
  return FL_OK;
}

fl_status_t fl__metrics_start_ops(fl__node_t *n) {
  if (n->ops_port == 0) return FL_OK;
  fl_ops_config_t oc = {.host = n->ops_host, .port = n->ops_port,
                        .version = FL_ORDERER_VERSION, .commit = FL_ORDERER_COMMIT};
  fl_status_t rc = fl_ops_server_start(&n->loop, &oc, n->mx.reg, &n->ops);
  if (rc < 0) {
    FL_ERROR(LOG, "operations endpoint failed host=%s port=%u rc=%s", n->ops_host,
             (unsigned)n->ops_port, fl_status_name(rc));
    return rc;
  }
  fl_ops_register_check(n->ops, "store", check_store, n);
  fl_ops_register_check(n->ops, "pbft", check_pbft, n);
  FL_INFO(LOG, "operations endpoint replica=%u host=%s port=%d", n->self, n->ops_host,
          fl_ops_server_port(n->ops));
  return FL_OK;
}

static void ops_closed(void *arg) {
  fl__node_t *n = arg;
  n->open_handles--;
}

void fl__metrics_close_ops(fl__node_t *n) {
  if (n->ops == NULL) return;
  n->open_handles++;
  fl_ops_server_close(n->ops, ops_closed, n);
  n->ops = NULL;
}

void fl__metrics_free(fl__node_t *n) {
  fl_metrics_free(n->mx.reg);
  n->mx.reg = NULL;
}
