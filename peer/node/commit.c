/* SPDX-License-Identifier: Apache-2.0
 *
 * commit.c: the peer's block pipeline (node_int.h, invariants 1-3).
 *
 *   Orderer/Deliver stream (one orderer at a time, from the next block
 *   this peer needs)
 *     -> raw queue (bounded: the stream is paused above RQ_HIGH blocks)
 *     -> stage A on workers: decode, 2f+1 orderer signatures and the hash
 *        link (a failure: log, count, fail over to the next orderer, and
 *        ask again from the last good block), then the per-transaction
 *        checks split into validator.parallel chunks that run at once
 *     -> stage B on a worker, one block at a time: duplicate tx ids, MVCC,
 *        the ledger commit; then the events are published
 *     -> on the loop: height, metrics, CommitStatus waiters, Deliver
 *        streams.
 *
 * Stalls: a periodic tick checks whether a block arrived in the last
 * deliver.stall_timeout; if not, it asks another orderer for its newest
 * block; when that one is ahead of this peer, the current orderer is
 * stalled (or withholding) and the peer fails over to the one that is
 * ahead. A stream that ends or a connection that drops fails over too.
 */
#include <string.h>
#include <sys/statvfs.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/net/lat.h"
#include "common/net/loop.h"
#include "fl/events/events.pb-c.h"
#include "peer/node/node_int.h"
#include "peer/node/wire.h"

#define LOG "committer"
#define RQ_HIGH 256
#define RQ_LOW 64
#define BQ_MAX 4
#define CHUNK_MIN 16

static void pump_a(fl__peer_t *p);
static void pump_b(fl__peer_t *p);
static void dl_connect(fl__peer_t *p);

/* ----------------------------------------------------------- raw queue */

static void rq_push(fl__peer_t *p, fl_buf_t b, uint32_t ord) {
  if (p->rq_head > 0 && p->rq_head == p->rq_len) p->rq_head = p->rq_len = 0;
  if (p->rq_len == p->rq_cap) {
    if (p->rq_head > 0) {
      memmove(p->rq, p->rq + p->rq_head, (p->rq_len - p->rq_head) * sizeof(*p->rq));
      p->rq_len -= p->rq_head;
      p->rq_head = 0;
    } else {
      p->rq_cap = p->rq_cap ? p->rq_cap * 2 : 64;
      p->rq = fl_reallocarray(p->rq, p->rq_cap, sizeof(*p->rq));
    }
  }
  p->rq[p->rq_len++] = (fl__rawblk_t){.data = fl_memdup(b.data, b.len), .len = b.len, .ord = ord};
}

static size_t rq_count(const fl__peer_t *p) { return p->rq_len - p->rq_head; }

static void rq_clear(fl__peer_t *p) {
  for (size_t i = p->rq_head; i < p->rq_len; i++) fl_free(p->rq[i].data);
  p->rq_head = p->rq_len = 0;
}

/* -------------------------------------------------------- deliver client */

static void dl_closed(fl_rpc_client_t *c, void *arg) {
  (void)c;
  fl_free(arg);
}

static void dl_drop(fl__peer_t *p) {
  fl__dlconn_t *d = p->dl;
  if (d == NULL) return;
  p->dl = NULL;
  p->connected_ms = 0;
  p->dl_paused = false;
  fl_rpc_client_close(d->client, dl_closed, d);
}

static void dl_timer_cb(uv_timer_t *t) { dl_connect(t->data); }

/* Moves to orderer `to` (or the next one when to >= nord) after why. */
static void failover(fl__peer_t *p, uint32_t to, const char *why) {
  if (p->stopping) return;
  uint32_t from = p->cur_ord;
  dl_drop(p);
  rq_clear(p);
  p->cur_ord = to < p->nord ? to : (p->cur_ord + 1) % (uint32_t)p->nord;
  p->fails_in_row++;
  fl_counter_inc(p->m.failovers);
  uint64_t delay = p->fails_in_row >= p->nord ? 1000 : p->retry_ms;
  FL_WARN(LOG, "deliver failover from=%s to=%s reason=%s retry_ms=%llu", p->ords[from].name,
          p->ords[p->cur_ord].name, why, (unsigned long long)delay);
  uv_timer_start(&p->dl_timer, dl_timer_cb, delay, 0);
}

/* The next block this peer needs from a new stream. */
static uint64_t next_wanted(const fl__peer_t *p) {
  return p->accept_number + 1 + (p->a_busy ? 1 : 0);
}

static void dl_msg(void *arg, fl_buf_t msg) {
  fl__dlconn_t *d = arg;
  fl__peer_t *p = d->p;
  if (d != p->dl || p->stopping) return;
  bool is_block = false;
  fl_buf_t blk;
  fl_status_t st;
  if (fl__pw_deliver_decode(msg, &is_block, &blk, &st) != FL_OK) {
    FL_WARN(LOG, "malformed DeliverResponse orderer=%s", p->ords[d->ord].name);
    failover(p, UINT32_MAX, "malformed DeliverResponse");
    return;
  }
  if (!is_block) return; /* the final status: the end callback follows */
  FL_LAT("peer blk_recv p=%s bytes=%zu", p->name, blk.len);
  p->last_block_ms = fl__peer_now_ms();
  rq_push(p, blk, d->ord);
  if (rq_count(p) >= RQ_HIGH && !p->dl_paused) {
    p->dl_paused = true;
    fl_rpc_client_pause(d->client, true);
  }
  pump_a(p);
}

static void dl_end(void *arg, fl_status_t st, const char *errmsg) {
  fl__dlconn_t *d = arg;
  fl__peer_t *p = d->p;
  if (d != p->dl || p->stopping) return;
  d->streaming = false;
  fl__peer_rpc_error(p, "Orderer/Deliver");
  char why[256];
  snprintf(why, sizeof(why), "stream ended: %s %s", fl_status_name(st), errmsg ? errmsg : "");
  failover(p, UINT32_MAX, why);
}

static void dl_on_connect(fl_rpc_client_t *c, fl_status_t st, void *arg) {
  fl__dlconn_t *d = arg;
  fl__peer_t *p = d->p;
  (void)c;
  if (d != p->dl || p->stopping) return;
  if (st < 0) {
    char why[128];
    snprintf(why, sizeof(why), "connect failed: %s", fl_status_name(st));
    failover(p, UINT32_MAX, why);
    return;
  }
  fl__pw_seek_t s = {.start_kind = FL__PW_SPECIFIED, .start = next_wanted(p)};
  fl_sbuf_t req = {0};
  fl_status_t rc = fl__pw_seek_encode(&s, fl_sbuf_view(&p->identity), p->signer, &req);
  if (rc == FL_OK)
    rc = fl_rpc_client_stream(d->client, "Orderer/Deliver", fl_sbuf_view(&req), 0, dl_msg,
                              dl_end, d, &d->call_id);
  fl_sbuf_free(&req);
  if (rc < 0) {
    failover(p, UINT32_MAX, "cannot open the Deliver stream");
    return;
  }
  d->streaming = true;
  p->connected_ms = fl__peer_now_ms();
  FL_INFO(LOG, "deliver stream open orderer=%s from=%llu", p->ords[d->ord].name,
          (unsigned long long)s.start);
}

static void dl_on_disconnect(fl_rpc_client_t *c, fl_status_t st, void *arg) {
  fl__dlconn_t *d = arg;
  fl__peer_t *p = d->p;
  (void)c;
  if (d != p->dl || p->stopping) return;
  char why[128];
  snprintf(why, sizeof(why), "connection lost: %s", fl_status_name(st));
  failover(p, UINT32_MAX, why);
}

static void dl_connect(fl__peer_t *p) {
  if (p->stopping || p->dl != NULL || p->nord == 0) return;
  fl__remote_t *o = &p->ords[p->cur_ord];
  fl__dlconn_t *d = fl_calloc(1, sizeof(*d));
  d->p = p;
  d->ord = p->cur_ord;
  fl_tls_config_t tls = p->tls_srv;
  tls.server_name = o->host;
  fl_rpc_client_opts_t opts = {.host = o->host, .port = o->port, .tls = p->tls_on ? &tls : NULL,
                               .max_frame = p->max_msg + 65536, .connect_timeout_ms = 2000,
                               .on_connect = dl_on_connect, .on_disconnect = dl_on_disconnect,
                               .arg = d};
  char *err = NULL;
  fl_status_t rc = fl_rpc_client_new(&p->loop, &opts, &d->client, &err);
  if (rc < 0) {
    FL_ERROR(LOG, "deliver client setup failed orderer=%s rc=%s err=%s", o->name,
             fl_status_name(rc), err ? err : "");
    fl_free(err);
    fl_free(d);
    p->cur_ord = (p->cur_ord + 1) % (uint32_t)p->nord;
    uv_timer_start(&p->dl_timer, dl_timer_cb, 1000, 0);
    return;
  }
  p->dl = d;
}

/* ------------------------------------------------------------ stall probe */

typedef struct probe_s {
  fl__peer_t *p;
  uint32_t ord;
  uint64_t newest;
  bool got;
} probe_t;

static void probe_msg(void *arg, fl_buf_t msg) {
  probe_t *pr = arg;
  bool is_block = false;
  fl_buf_t blk;
  fl_status_t st;
  fl_block_t *b = NULL;
  if (fl__pw_deliver_decode(msg, &is_block, &blk, &st) == FL_OK && is_block &&
      fl_block_decode(blk.data, blk.len, &b, NULL) == FL_OK) {
    pr->newest = b->number;
    pr->got = true;
  }
  fl_block_free(b);
}

static void probe_end(void *arg, fl_status_t st, const char *errmsg) {
  probe_t *pr = arg;
  fl__peer_t *p = pr->p;
  (void)st;
  (void)errmsg;
  p->probing = false;
  if (!p->stopping) {
    uint64_t have = p->accept_number + (p->a_busy ? 1 : 0) + rq_count(p);
    if (pr->got && pr->newest > have && p->dl != NULL && pr->ord != p->cur_ord) {
      char why[160];
      snprintf(why, sizeof(why), "stalled: %s has block %llu, this peer has %llu",
               p->ords[pr->ord].name, (unsigned long long)pr->newest, (unsigned long long)have);
      failover(p, pr->ord, why);
    } else {
      p->last_block_ms = fl__peer_now_ms(); /* not behind: restart the stall clock */
    }
  }
  fl_free(pr);
}

static void probe(fl__peer_t *p) {
  if (p->nord < 2) {
    if (p->dl) failover(p, p->cur_ord, "stalled");
    return;
  }
  uint32_t j = (p->cur_ord + 1) % (uint32_t)p->nord;
  fl_rpc_client_t *c = fl__remote_client(&p->ords[j]);
  if (c == NULL) return;
  fl__pw_seek_t s = {.start_kind = FL__PW_NEWEST, .has_stop = true, .stop_kind = FL__PW_NEWEST,
                     .fail_if_not_ready = true};
  fl_sbuf_t req = {0};
  if (fl__pw_seek_encode(&s, fl_sbuf_view(&p->identity), p->signer, &req) != FL_OK) {
    fl_sbuf_free(&req);
    return;
  }
  probe_t *pr = fl_calloc(1, sizeof(*pr));
  pr->p = p;
  pr->ord = j;
  p->probing = true;
  fl_status_t rc = fl_rpc_client_stream(c, "Orderer/Deliver", fl_sbuf_view(&req), 2000,
                                        probe_msg, probe_end, pr, NULL);
  fl_sbuf_free(&req);
  if (rc < 0) {
    p->probing = false;
    fl_free(pr);
    fl__remote_fail(&p->ords[j]);
  }
}

void fl__commit_tick(fl__peer_t *p) {
  if (p->disk_low && !p->stopping) { /* waiting for space, not stalled */
    pump_b(p);
    if (p->disk_low) return;
  }
  if (p->stopping || p->dl == NULL || p->connected_ms == 0 || p->probing) return;
  uint64_t now = fl__peer_now_ms();
  uint64_t last = p->last_block_ms > p->connected_ms ? p->last_block_ms : p->connected_ms;
  if (now - last > p->stall_ms) probe(p);
}

/* ----------------------------------------------------------------- stage A */

typedef struct ajob_s {
  fl__peer_t *p;
  fl__rawblk_t raw;
  uint64_t prev_number;
  uint8_t prev_hash[32];
  fl_block_t *b;
  fl_status_t rc;
  bool skip;
  const char *why;
} ajob_t;

typedef struct cjob_s {
  fl__peer_t *p;
  fl_vblock_t *vb;
  size_t from, to;
} cjob_t;

static void a0_work(void *arg) {
  ajob_t *j = arg;
  j->rc = fl_block_decode(j->raw.data, j->raw.len, &j->b, &j->why);
  if (j->rc < 0) return;
  if (j->b->number <= j->prev_number) {
    j->skip = true;
    return;
  }
  j->rc = fl_validator_check_block(j->p->validator, j->b, j->prev_number, j->prev_hash, &j->why);
}

static void chunk_work(void *arg) {
  cjob_t *j = arg;
  fl_vblock_check(j->vb, j->from, j->to);
}

static void chunk_done(void *arg, fl_status_t st) {
  cjob_t *j = arg;
  fl__peer_t *p = j->p;
  (void)st;
  fl_free(j);
  p->jobs--;
  if (--p->a_pending > 0) return;
  fl_vblock_t *vb = p->a_vb;
  p->a_vb = NULL;
  p->a_busy = false;
  if (p->stopping) {
    fl_vblock_free(vb);
    return;
  }
  fl_histogram_observe_since(p->m.validate_s, 0, p->a_t0);
  FL_LAT("peer validated p=%s block=%llu", p->name,
         (unsigned long long)fl_vblock_block(vb)->number);
  if (p->bq_len == p->bq_cap) {
    if (p->bq_head > 0) {
      memmove(p->bq, p->bq + p->bq_head, (p->bq_len - p->bq_head) * sizeof(*p->bq));
      p->bq_len -= p->bq_head;
      p->bq_head = 0;
    } else {
      p->bq_cap = p->bq_cap ? p->bq_cap * 2 : 8;
      p->bq = fl_reallocarray(p->bq, p->bq_cap, sizeof(*p->bq));
    }
  }
  p->bq[p->bq_len++] = vb;
  pump_b(p);
  pump_a(p);
}

static void a0_done(void *arg, fl_status_t st) {
  ajob_t *j = arg;
  fl__peer_t *p = j->p;
  p->jobs--;
  if (st < 0 || p->stopping) goto drop;
  if (j->skip) goto drop;
  if (j->rc < 0) {
    fl_counter_inc(p->m.blocks_refused);
    FL_ERROR(LOG, "orderer served a bad block orderer=%s number=%llu rc=%s reason=%s",
             p->ords[j->raw.ord].name, j->b ? (unsigned long long)j->b->number : 0ULL,
             fl_status_name(j->rc), j->why ? j->why : "?");
    if (p->dl != NULL && p->dl->ord == j->raw.ord) {
      char why[200];
      snprintf(why, sizeof(why), "bad block: %s", j->why ? j->why : fl_status_name(j->rc));
      p->a_busy = false;
      failover(p, UINT32_MAX, why);
    } else {
      rq_clear(p); /* everything queued after a lie is suspect */
    }
    goto drop;
  }
  p->fails_in_row = 0;
  /* The view that committed it (metadata, not covered by the orderers'
   * signatures): only the gateway's hint of where the primary is. */
  p->lead_view = j->b->view;
  p->lead_known = true;
  FL_LAT("peer blk_checked p=%s block=%llu", p->name, (unsigned long long)j->b->number);
  fl_block_t *b = j->b;
  j->b = NULL;
  p->accept_number = b->number;
  memcpy(p->accept_hash, b->header_hash, 32);
  fl_vblock_t *vb = fl_vblock_new(p->validator, b);
  size_t n = fl_vblock_ntx(vb);
  size_t k = (n + CHUNK_MIN - 1) / CHUNK_MIN;
  if (k > p->vparallel) k = p->vparallel;
  if (k == 0) k = 1;
  p->a_vb = vb;
  p->a_pending = k;
  size_t per = (n + k - 1) / k;
  for (size_t c = 0; c < k; c++) {
    cjob_t *cj = fl_calloc(1, sizeof(*cj));
    *cj = (cjob_t){.p = p, .vb = vb, .from = c * per, .to = (c + 1) * per};
    p->jobs++;
    if (fl_worker_submit(&p->loop, chunk_work, chunk_done, cj) != FL_OK) {
      chunk_work(cj);
      chunk_done(cj, FL_OK);
    }
  }
  fl_free(j->raw.data);
  fl_free(j);
  return;
drop:
  p->a_busy = false;
  fl_block_free(j->b);
  fl_free(j->raw.data);
  fl_free(j);
  if (!p->stopping) pump_a(p);
}

static void pump_a(fl__peer_t *p) {
  if (p->a_busy || p->stopping || p->fatal) return;
  if (p->bq_len - p->bq_head >= BQ_MAX || rq_count(p) == 0) return;
  ajob_t *j = fl_calloc(1, sizeof(*j));
  j->p = p;
  j->raw = p->rq[p->rq_head++];
  j->prev_number = p->accept_number;
  memcpy(j->prev_hash, p->accept_hash, 32);
  p->a_busy = true;
  p->a_t0 = fl_mono_ns();
  if (p->dl_paused && rq_count(p) <= RQ_LOW && p->dl != NULL) {
    p->dl_paused = false;
    fl_rpc_client_pause(p->dl->client, false);
  }
  p->jobs++;
  if (fl_worker_submit(&p->loop, a0_work, a0_done, j) != FL_OK) {
    a0_work(j);
    a0_done(j, FL_OK);
  }
}

/* ----------------------------------------------------------------- stage B */

typedef struct bjob_s {
  fl__peer_t *p;
  fl_vblock_t *vb;
  fl_status_t rc;
  uint64_t t0;
} bjob_t;

static void publish(fl__peer_t *p, const fl_vblock_t *vb) {
  const fl_block_t *b = fl_vblock_block(vb);
  size_t n = fl_vblock_ntx(vb);
  Fl__Events__TxStatus *ts = fl_calloc(n + 1, sizeof(*ts));
  Fl__Events__TxStatus **tsp = fl_calloc(n + 1, sizeof(*tsp));
  Fl__Events__BlockEvent be;
  fl__events__block_event__init(&be);
  be.number = b->number;
  be.header_hash.data = (uint8_t *)(uintptr_t)b->header_hash;
  be.header_hash.len = 32;
  for (size_t i = 0; i < n; i++) {
    fl_vtx_info_t t;
    fl_vblock_tx(vb, i, &t);
    fl__events__tx_status__init(&ts[i]);
    ts[i].tx_id = (char *)(uintptr_t)t.tx_id;
    ts[i].code = t.code;
    ts[i].chaincode = (char *)(uintptr_t)t.chaincode;
    tsp[i] = &ts[i];
  }
  be.n_txs = n;
  be.txs = tsp;
  Fl__Events__Event ev;
  fl__events__event__init(&ev);
  ev.peer = (char *)(uintptr_t)p->name;
  ev.type_case = FL__EVENTS__EVENT__TYPE_BLOCK;
  ev.block = &be;
  fl_sbuf_t out = {0};
  size_t sz = fl__events__event__get_packed_size(&ev);
  fl_sbuf_reserve(&out, sz + 1);
  out.len = fl__events__event__pack(&ev, out.data);
  fl_events_publish(p->pub, FL_EVENTS_TOPIC_BLOCK, out.data, out.len);
  for (size_t i = 0; i < n; i++) {
    fl_vtx_info_t t;
    fl_vblock_tx(vb, i, &t);
    if (t.code != FL_TX_VALID || !t.has_event) continue;
    Fl__Events__ChaincodeEvent ce;
    fl__events__chaincode_event__init(&ce);
    ce.block_number = b->number;
    ce.tx_id = (char *)(uintptr_t)t.tx_id;
    ce.chaincode = (char *)(uintptr_t)t.chaincode;
    ce.name = (char *)(uintptr_t)t.event_name;
    ce.payload.data = (uint8_t *)(uintptr_t)t.event_payload.data;
    ce.payload.len = t.event_payload.len;
    fl__events__event__init(&ev);
    ev.peer = (char *)(uintptr_t)p->name;
    ev.type_case = FL__EVENTS__EVENT__TYPE_CHAINCODE;
    ev.chaincode = &ce;
    sz = fl__events__event__get_packed_size(&ev);
    out.len = 0;
    fl_sbuf_reserve(&out, sz + 1);
    out.len = fl__events__event__pack(&ev, out.data);
    char topic[FL_EVENTS_TOPIC_MAX + 1];
    snprintf(topic, sizeof(topic), "%s%s", FL_EVENTS_TOPIC_CC_PREFIX, t.chaincode);
    fl_events_publish(p->pub, topic, out.data, out.len);
  }
  fl_sbuf_free(&out);
  fl_free(ts);
  fl_free(tsp);
}

static void b_work(void *arg) {
  bjob_t *j = arg;
  j->rc = fl_vblock_commit(j->vb, j->p->ledger);
  if (j->rc == FL_OK && j->p->pub != NULL) publish(j->p, j->vb);
}

static void b_done(void *arg, fl_status_t st) {
  bjob_t *j = arg;
  fl__peer_t *p = j->p;
  fl_vblock_t *vb = j->vb;
  fl_status_t rc = st < 0 ? st : j->rc;
  uint64_t t0 = j->t0;
  p->jobs--;
  p->b_busy = false;
  fl_free(j);
  if (rc < 0) {
    const fl_block_t *b = fl_vblock_block(vb);
    FL_ERROR(LOG, "block commit failed number=%llu rc=%s: stopping",
             (unsigned long long)b->number, fl_status_name(rc));
    fl_vblock_free(vb);
    if (!p->stopping) {
      p->fatal = true;
      fl__peer_stop(p, 2);
    }
    return;
  }
  const fl_block_t *b = fl_vblock_block(vb);
  FL_LAT("peer committed p=%s block=%llu", p->name, (unsigned long long)b->number);
  p->height = b->number + 1;
  fl_gauge_set(p->m.height, 0, (double)p->height);
  fl_histogram_observe_since(p->m.commit_s, 0, t0);
  size_t n = fl_vblock_ntx(vb), valid = 0;
  for (size_t i = 0; i < n; i++) {
    fl_vtx_info_t t;
    fl_vblock_tx(vb, i, &t);
    if (t.code == FL_TX_VALID) valid++;
    else
      FL_DEBUG(LOG, "tx invalid block=%llu tx=%zu txid=%s code=%s reason=%s",
               (unsigned long long)b->number, i, t.tx_id, fl_tx_code_name(t.code), t.reason);
    const char *name = fl_tx_code_name(t.code);
    long s = fl_counter_series(p->m.tx_validated, &name);
    fl_counter_add(p->m.tx_validated, s < 0 ? fl_counter_nseries(p->m.tx_validated) - 1 : (size_t)s,
                   1);
  }
  FL_DEBUG(LOG, "block committed number=%llu txs=%zu valid=%zu", (unsigned long long)b->number,
           n, valid);
  if (!p->stopping) {
    fl__gateway_committed(p, vb);
    fl__service_block_committed(p);
  }
  fl_vblock_free(vb);
  if (!p->stopping) {
    pump_b(p);
    pump_a(p);
  }
}

/* A commit that finds the disk full fails inside RocksDB, which then
 * refuses every write (and debug builds of it abort): keep min_free bytes
 * free instead, wait while there are fewer, and say so. */
static bool disk_ok(fl__peer_t *p) {
  struct statvfs v;
  if (p->min_free == 0 || statvfs(p->data_dir, &v) != 0) return true;
  uint64_t avail = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
  if (avail < p->min_free) {
    if (!p->disk_low)
      FL_ERROR(LOG, "disk full: not committing until space returns data_dir=%s free=%llu "
               "min_free=%llu next_block=%llu", p->data_dir, (unsigned long long)avail,
               (unsigned long long)p->min_free, (unsigned long long)p->height);
    p->disk_low = true;
    return false;
  }
  if (p->disk_low)
    FL_INFO(LOG, "disk space back: committing again data_dir=%s free=%llu", p->data_dir,
            (unsigned long long)avail);
  p->disk_low = false;
  return true;
}

static void pump_b(fl__peer_t *p) {
  if (p->b_busy || p->stopping || p->fatal || p->bq_head == p->bq_len) return;
  if (!disk_ok(p)) return;
  bjob_t *j = fl_calloc(1, sizeof(*j));
  j->p = p;
  j->vb = p->bq[p->bq_head++];
  j->t0 = fl_mono_ns();
  FL_LAT("peer commit_start p=%s block=%llu", p->name,
         (unsigned long long)fl_vblock_block(j->vb)->number);
  p->b_busy = true;
  p->jobs++;
  if (fl_worker_submit(&p->loop, b_work, b_done, j) != FL_OK) {
    b_work(j);
    b_done(j, FL_OK);
  }
}

/* ------------------------------------------------------------- lifecycle */

fl_status_t fl__commit_init(fl__peer_t *p) {
  uv_timer_init(&p->loop, &p->dl_timer);
  p->dl_timer.data = p;
  p->last_block_ms = fl__peer_now_ms();
  return FL_OK;
}

void fl__commit_start(fl__peer_t *p) { dl_connect(p); }

void fl__commit_close(fl__peer_t *p) {
  uv_timer_stop(&p->dl_timer);
  if (!uv_is_closing((uv_handle_t *)&p->dl_timer)) uv_close((uv_handle_t *)&p->dl_timer, NULL);
  dl_drop(p);
  rq_clear(p);
  fl_free(p->rq);
  p->rq = NULL;
  p->rq_cap = 0;
  for (size_t i = p->bq_head; i < p->bq_len; i++) fl_vblock_free(p->bq[i]);
  fl_free(p->bq);
  p->bq = NULL;
  p->bq_head = p->bq_len = p->bq_cap = 0;
}
