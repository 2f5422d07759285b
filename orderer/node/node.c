/* SPDX-License-Identifier: Apache-2.0
 *
 * node.c: the orderer process around the PBFT state machine: configuration,
 * genesis and identity, the RocksDB replica log and block store, restore
 * after a restart, the action pipeline (persist before send, group commit),
 * the PBFT timer, and signal-driven shutdown. The RPC side is in rpc.c.
 *
 * Records in CF "pbft": key = kind (1 byte) || be64(seq), value = the bytes
 * the machine gave. Blocks in CF "blocks": key = be64(number), value = the
 * Block bytes (block 0 = the genesis file's bytes).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/base/alloc.h"
#include "common/base/file.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/crypto/hash.h"
#include "common/net/loop.h"
#include "common/protoutil/envelope.h"
#include "orderer/node/ab.h"
#include "common/net/lat.h"
#include "orderer/node/node_int.h"
#include "orderer/node/orderer.h"

/* Largest file a node reads whole (genesis block, PEM files). */
#define NODE_MAX_FILE (512u << 20)
#define LOG FL__ORD_LOG

uint64_t fl__node_now(void) { return fl_mono_ns() / 1000000u; }

/* ------------------------------------------------------------ utilities */

static void rec_key(uint8_t key[9], fl_pbft_record_t kind, uint64_t seq) {
  key[0] = (uint8_t)kind;
  fl_put_be64(key + 1, seq);
}

fl_status_t fl__node_read_block(fl__node_t *n, uint64_t number, fl_sbuf_t *out) {
  uint8_t key[8];
  fl_put_be64(key, number);
  return fl_kv_get(n->kv, n->cf_blocks, NULL, FL_BUF(key, 8), out);
}

/* --------------------------------------------------------- PBFT host ops */

/* Consensus messages: ECDSA P-256 over SHA-256(message bytes). */
static fl_status_t op_sign(void *ctx, fl_buf_t msg, fl_sbuf_t *sig) {
  fl__node_t *n = ctx;
  fl_sbuf_t tmp = {0};
  fl_status_t rc = fl_signer_sign(n->signer, msg.data, msg.len, &tmp);
  if (rc == FL_OK) fl_sbuf_append(sig, tmp.data, tmp.len);
  fl_sbuf_free(&tmp);
  return rc;
}

/* Signatures of consensus messages already verified: the same PREPARE or
 * CHECKPOINT comes back inside certificates, VIEW-CHANGEs (retransmitted
 * while a view change lasts) and NEW-VIEWs, and an ECDSA verify costs ~45-90
 * us here against ~1 us for the SHA-256 key. Direct-mapped, keyed by
 * SHA-256(replica || sig || SHA-256(message)); only successes are
 * remembered. The message digest is the one the ECDSA check verifies, so a
 * message is hashed once however large it is (a FORWARD carries whole
 * envelopes). */
static void vcache_key(uint32_t replica, const uint8_t digest[FL_SHA256_LEN], fl_buf_t sig,
                       uint8_t key[32]) {
  uint8_t r[4];
  fl_put_be32(r, replica);
  fl_sha256_ctx_t c;
  if (fl_sha256_init(&c) != FL_OK) {
    memset(key, 0, 32); /* no key: a zero slot never matches (see op_verify) */
    return;
  }
  fl_sha256_update(&c, r, 4);
  fl_sha256_update(&c, sig.data, sig.len);
  fl_sha256_update(&c, digest, FL_SHA256_LEN);
  fl_sha256_final(&c, key);
}

/* Thread-safe (fl_pbft_msg_decode runs it on workers): verifiers are
 * immutable once loaded, the cache has its own lock. */
static bool op_verify(void *ctx, uint32_t replica, fl_buf_t msg, fl_buf_t sig) {
  fl__node_t *n = ctx;
  static const uint8_t zero[32];
  if (replica >= n->nrep || n->verifiers[replica] == NULL) return false;
  uint8_t d[FL_SHA256_LEN], key[32];
  fl_sha256(msg.data, msg.len, d);
  vcache_key(replica, d, sig, key);
  bool keyed = memcmp(key, zero, 32) != 0;
  size_t slot = fl_get_be32(key) % FL__VCACHE_SLOTS;
  if (keyed) {
    pthread_mutex_lock(&n->vc_mu);
    bool hit = memcmp(n->vcache[slot], key, 32) == 0;
    pthread_mutex_unlock(&n->vc_mu);
    if (hit) return true;
  }
  if (fl_verify_digest(n->verifiers[replica], d, sig.data, sig.len) != FL_OK) return false;
  if (keyed) {
    pthread_mutex_lock(&n->vc_mu);
    memcpy(n->vcache[slot], key, 32);
    pthread_mutex_unlock(&n->vc_mu);
  }
  return true;
}

/* Block signatures: ECDSA of the digest SHA-256(header bytes) itself
 * (docs/protocol.md section 4; protoutil's fl_block_verify_signatures). */
static fl_status_t op_sign_digest(void *ctx, const uint8_t digest[FL_PBFT_DIGEST_LEN],
                                  fl_sbuf_t *sig) {
  fl__node_t *n = ctx;
  fl_sbuf_t tmp = {0};
  fl_status_t rc = fl_signer_sign_digest(n->signer, digest, &tmp);
  if (rc == FL_OK) fl_sbuf_append(sig, tmp.data, tmp.len);
  fl_sbuf_free(&tmp);
  return rc;
}

static bool op_verify_digest(void *ctx, uint32_t replica,
                             const uint8_t digest[FL_PBFT_DIGEST_LEN], fl_buf_t sig) {
  const fl__node_t *n = ctx;
  if (replica >= n->nrep || n->verifiers[replica] == NULL) return false;
  return fl_verify_digest(n->verifiers[replica], digest, sig.data, sig.len) == FL_OK;
}

static void op_sha256(void *ctx, fl_buf_t data, uint8_t out[FL_PBFT_DIGEST_LEN]) {
  (void)ctx;
  fl_sha256(data.data, data.len, out);
}

/* A request in a pre-prepare, forward or state transfer must carry the tx
 * id of its envelope (the id the at-most-once rule is keyed on). The
 * signature was checked by the replica that accepted it from the client.
 * Runs on the loop for every request other replicas hand this one: the
 * strict wire scan (fl_envelope_peek_tx_id) answers for every envelope a
 * client library builds; anything else is decoded in full. */
static bool op_check_request(void *ctx, fl_buf_t envelope, fl_buf_t tx_id) {
  (void)ctx;
  char id[FL_TXID_HEX_LEN + 1];
  if (fl_envelope_peek_tx_id(envelope.data, envelope.len, id))
    return tx_id.len == FL_TXID_HEX_LEN && memcmp(id, tx_id.data, tx_id.len) == 0;
  fl_envelope_t *e = NULL;
  if (fl_envelope_decode(envelope.data, envelope.len, &e, NULL) != FL_OK) return false;
  bool ok = tx_id.len == FL_TXID_HEX_LEN && memcmp(e->header.tx_id, tx_id.data, tx_id.len) == 0;
  fl_envelope_free(e);
  return ok;
}

/* Block timestamps are wall-clock time (docs/ordering.md section 4);
 * every timer uses the monotonic clock (fl__node_now). */
static uint64_t op_wall_ms(void *ctx) {
  (void)ctx;
  return fl_wall_ms();
}

static fl_status_t op_load(void *ctx, fl_pbft_record_t kind, uint64_t seq, fl_sbuf_t *out) {
  fl__node_t *n = ctx;
  uint8_t key[9];
  rec_key(key, kind, seq);
  fl_sbuf_t v = {0};
  fl_status_t rc = fl_kv_get(n->kv, n->cf_pbft, NULL, FL_BUF(key, 9), &v);
  if (rc == FL_OK) fl_sbuf_append(out, v.data, v.len);
  fl_sbuf_free(&v);
  return rc == FL_OK ? FL_OK : FL_NOTFOUND;
}

/* ------------------------------------------------------ action pipeline */

typedef struct wjob_s {
  fl__node_t *n;
  fl_kv_batch_t *b;
  fl_status_t rc;
  uint64_t t0, t0_ns;
} wjob_t;

static void pump(fl__node_t *n);

/* Queues action a; own (may be NULL) is the memory behind a->bytes, taken
 * from the machine (fl_pbft_action_take): then nothing is copied. */
static void q_push(fl__node_t *n, const fl_pbft_action_t *a, void *own) {
  if (n->qlen == n->qcap) {
    n->qcap = n->qcap ? n->qcap * 2 : 256;
    n->q = fl_reallocarray(n->q, n->qcap, sizeof(*n->q));
  }
  fl__qact_t *x = &n->q[n->qlen++];
  memset(x, 0, sizeof(*x));
  x->type = a->type;
  x->to = a->to;
  x->kind = a->kind;
  x->seq = a->seq;
  x->view = a->view;
  x->block_number = a->block_number;
  x->nreq = a->nrequests;
  x->ts = a->timestamp_ms;
  if (own != NULL) {
    x->own = own;
    x->bytes = a->bytes.data;
    x->len = a->bytes.len;
  } else if (a->bytes.len) {
    x->own = fl_memdup(a->bytes.data, a->bytes.len);
    x->bytes = x->own;
    x->len = a->bytes.len;
  }
}

void fl__node_queue_block(fl__node_t *n, uint64_t number, const uint8_t hash[32],
                          fl_buf_t bytes) {
  fl_pbft_action_t a = {.type = FL_PBFT_ACT_DELIVER, .block_number = number, .bytes = bytes};
  q_push(n, &a, NULL);
  n->qheight = number;
  memcpy(n->qhash, hash, 32);
  pump(n);
}

static bool is_write(const fl__qact_t *a) {
  return a->type == FL_PBFT_ACT_PERSIST || a->type == FL_PBFT_ACT_TRUNCATE ||
         a->type == FL_PBFT_ACT_DELIVER;
}

/* Carries out a non-write action (or the post-durability part of a DELIVER). */
static void run_action(fl__node_t *n, fl__qact_t *a) {
  switch (a->type) {
  case FL_PBFT_ACT_SEND:
    FL_LAT("ord send r=%u to=%u bytes=%zu", n->self, a->to, a->len);
    if (!n->stopping) fl__rpc_send(n, a->to, FL_BUF(a->bytes, a->len));
    break;
  case FL_PBFT_ACT_DELIVER:
    FL_LAT("ord block_durable r=%u block=%llu", n->self, (unsigned long long)a->block_number);
    if (a->block_number > n->height) n->height = a->block_number;
    if (a->ts != 0) fl__metrics_block(n, a->block_number, a->ts);
    break;
  case FL_PBFT_ACT_EXECUTE:
    FL_DEBUG(LOG, "batch executed seq=%llu view=%llu block=%llu requests=%u",
             (unsigned long long)a->seq, (unsigned long long)a->view,
             (unsigned long long)a->block_number, a->nreq);
    break;
  default:
    break;
  }
}

static void q_compact(fl__node_t *n) {
  if (n->qhead == 0) return;
  for (size_t i = 0; i < n->qhead; i++) fl_free(n->q[i].own);
  memmove(n->q, n->q + n->qhead, (n->qlen - n->qhead) * sizeof(*n->q));
  n->qlen -= n->qhead;
  n->qbarrier -= n->qhead;
  n->qhead = 0;
}

static void write_work(void *arg) {
  wjob_t *j = arg;
  j->rc = fl_kv_write(j->n->kv, j->b, j->n->sync);
}

static void write_done(void *arg, fl_status_t st);

static void write_done_post(void *arg) { write_done(arg, FL_OK); }

static void *writer_main(void *arg) {
  fl__node_t *n = arg;
  pthread_mutex_lock(&n->wmu);
  for (;;) {
    while (n->wjob == NULL && !n->wquit) pthread_cond_wait(&n->wcv, &n->wmu);
    if (n->wjob == NULL) break;
    wjob_t *j = n->wjob;
    n->wjob = NULL;
    pthread_mutex_unlock(&n->wmu);
    write_work(j);
    if (fl_loop_post(n->wposter, write_done_post, j) != FL_OK) {
      /* Only at close, when no write is in flight (see writer_close). */
      fl_kv_batch_free(j->b);
      fl_free(j);
    }
    pthread_mutex_lock(&n->wmu);
  }
  pthread_mutex_unlock(&n->wmu);
  return NULL;
}

static fl_status_t writer_start(fl__node_t *n) {
  if (fl_loop_poster_new(&n->loop, &n->wposter) != FL_OK) return FL_EIO;
  pthread_mutex_init(&n->wmu, NULL);
  pthread_cond_init(&n->wcv, NULL);
  if (pthread_create(&n->wthread, NULL, writer_main, n) != 0) {
    fl_loop_poster_close(n->wposter);
    n->wposter = NULL;
    return FL_EIO;
  }
  n->wstarted = true;
  uv_idle_init(&n->loop, &n->wclose);
  n->wclose.data = n;
  return FL_OK;
}

/* At shutdown, once nothing is being written. */
static void writer_close(fl__node_t *n) {
  if (!n->wstarted || n->writing) return;
  pthread_mutex_lock(&n->wmu);
  n->wquit = true;
  pthread_cond_signal(&n->wcv);
  pthread_mutex_unlock(&n->wmu);
  pthread_join(n->wthread, NULL);
  pthread_mutex_destroy(&n->wmu);
  pthread_cond_destroy(&n->wcv);
  fl_loop_poster_close(n->wposter);
  n->wposter = NULL;
  n->wstarted = false;
}

static void wclose_closed(uv_handle_t *h) { (void)h; }

static void wclose_cb(uv_idle_t *h) {
  fl__node_t *n = h->data;
  uv_idle_stop(h);
  if (n->writing) return; /* write_done will ask again */
  uv_close((uv_handle_t *)h, wclose_closed);
  writer_close(n);
}

/* Closes the writer from a fresh loop iteration (not from inside one of
 * the poster's own callbacks). */
static void writer_close_later(fl__node_t *n) {
  if (!n->wstarted || uv_is_closing((uv_handle_t *)&n->wclose)) return;
  uv_idle_start(&n->wclose, wclose_cb);
}

static void write_done(void *arg, fl_status_t st) {
  wjob_t *j = arg;
  fl__node_t *n = j->n;
  fl_status_t rc = st < 0 ? st : j->rc;
  fl_kv_batch_free(j->b);
  uint64_t dt = fl__node_now() - j->t0;
  if (n->mx.reg) fl_histogram_observe_since(n->mx.write, 0, j->t0_ns);
  fl_free(j);
  n->writing = false;
  if (rc < 0) {
    FL_ERROR(LOG, "replica log write failed replica=%u rc=%s err=%s", n->self,
             fl_status_name(rc), fl_kv_last_error());
    n->store_failed = true;
    for (size_t i = n->qhead; i < n->qlen; i++) fl_free(n->q[i].own);
    n->qhead = n->qlen = n->qbarrier = 0;
    fl__node_stop(n, 2);
    writer_close_later(n);
    return;
  }
  if (dt > 500) FL_WARN(LOG, "slow replica log write ms=%llu", (unsigned long long)dt);
  FL_LAT("ord write_done r=%u", n->self);
  n->m_writes++;
  n->m_write_ms += dt;
  if (dt > n->m_write_max) n->m_write_max = dt;
  uint64_t h0 = n->height;
  for (size_t i = n->qhead; i < n->qbarrier; i++) run_action(n, &n->q[i]);
  n->qhead = n->qbarrier;
  if (n->height != h0) fl__rpc_blocks_durable(n);
  pump(n);
}

static void add_write(fl__node_t *n, fl_kv_batch_t *b, const fl__qact_t *a) {
  uint8_t key[9];
  switch (a->type) {
  case FL_PBFT_ACT_PERSIST:
    rec_key(key, a->kind, a->seq);
    fl_kv_batch_put(b, n->cf_pbft, FL_BUF(key, 9), FL_BUF(a->bytes, a->len));
    if ((a->kind == FL_PBFT_REC_ENTRY || a->kind == FL_PBFT_REC_PREPARED) &&
        a->seq < n->entry_lo)
      n->entry_lo = a->seq;
    if (a->kind == FL_PBFT_REC_COMMITTED) {
      if (a->seq > n->committed_hi) n->committed_hi = a->seq;
      if (a->seq < n->committed_lo) n->committed_lo = a->seq;
    }
    break;
  case FL_PBFT_ACT_TRUNCATE: {
    for (uint64_t s = n->entry_lo; s <= a->seq; s++) {
      rec_key(key, FL_PBFT_REC_ENTRY, s);
      fl_kv_batch_delete(b, n->cf_pbft, FL_BUF(key, 9));
      rec_key(key, FL_PBFT_REC_PREPARED, s);
      fl_kv_batch_delete(b, n->cf_pbft, FL_BUF(key, 9));
    }
    if (a->seq + 1 > n->entry_lo) n->entry_lo = a->seq + 1;
    /* COMMITTED records serve restarts (the last dedup_window) and state
     * transfer to lagging replicas: keep `retention` seqs below both the
     * stable checkpoint and our own last record, drop the rest. */
    uint64_t top = a->seq < n->committed_hi ? a->seq : n->committed_hi;
    if (top > n->retention) {
      uint64_t below = top - n->retention; /* delete seqs < below */
      for (uint64_t s = n->committed_lo; s < below; s++) {
        rec_key(key, FL_PBFT_REC_COMMITTED, s);
        fl_kv_batch_delete(b, n->cf_pbft, FL_BUF(key, 9));
      }
      if (below > n->committed_lo) n->committed_lo = below;
    }
    break;
  }
  case FL_PBFT_ACT_DELIVER:
    fl_put_be64(key, a->block_number);
    fl_kv_batch_put(b, n->cf_blocks, FL_BUF(key, 8), FL_BUF(a->bytes, a->len));
    break;
  default:
    break;
  }
}

/* Runs what can run now: actions before the first write go at once; all
 * writes queued so far go into one synced batch, and the actions among and
 * after them wait for it (invariant 2). */
static void pump(fl__node_t *n) {
  if (n->writing) return;
  while (n->qhead < n->qlen && !is_write(&n->q[n->qhead])) {
    run_action(n, &n->q[n->qhead]);
    n->qhead++;
  }
  if (n->qhead == n->qlen) {
    q_compact(n);
    if (n->stopping) writer_close_later(n);
    return;
  }
  q_compact(n);
  fl_kv_batch_t *b = fl_kv_batch_new();
  for (size_t i = n->qhead; i < n->qlen; i++)
    if (is_write(&n->q[i])) add_write(n, b, &n->q[i]);
  n->qbarrier = n->qlen;
  n->m_write_bytes += fl_kv_batch_bytes(b);
  wjob_t *j = fl_calloc(1, sizeof(*j));
  j->n = n;
  j->b = b;
  j->t0 = fl__node_now();
  j->t0_ns = fl_mono_ns();
  n->writing = true;
  FL_LAT("ord write_start r=%u actions=%zu", n->self, n->qbarrier - n->qhead);
  if (!n->sync) {
    /* Unsynced, a write only copies into RocksDB's memtable and the WAL's
     * page cache (microseconds for votes, about a millisecond for a full
     * batch): done here, it saves a thread hop and a queue wait on every
     * consensus stage. Synced writes (an fsync each) go to the writer
     * thread so that the loop never waits for the disk. */
    write_work(j);
    write_done(j, FL_OK);
    return;
  }
  pthread_mutex_lock(&n->wmu);
  n->wjob = j;
  pthread_cond_signal(&n->wcv);
  pthread_mutex_unlock(&n->wmu);
}

static void on_timer(uv_timer_t *t);

void fl__node_rearm(fl__node_t *n) {
  if (n->stopping) return;
  uint64_t d = fl_pbft_next_deadline(n->pbft);
  if (d == UINT64_MAX) {
    uv_timer_stop(&n->timer);
    return;
  }
  uint64_t now = fl__node_now();
  uv_timer_start(&n->timer, on_timer, d > now ? d - now : 0, 0);
}

static void log_progress(fl__node_t *n) {
  fl_pbft_info_t in;
  fl_pbft_stats_t st;
  fl_pbft_info(n->pbft, &in);
  fl_pbft_stats(n->pbft, &st);
  if (in.view != n->info.view || in.view_change != n->info.view_change) {
    if (in.view_change)
      FL_INFO(LOG, "view change started replica=%u to_view=%llu from_view=%llu", n->self,
              (unsigned long long)in.view, (unsigned long long)n->info.view);
    else
      FL_INFO(LOG, "view installed replica=%u view=%llu primary=%u last_exec=%llu", n->self,
              (unsigned long long)in.view, in.primary, (unsigned long long)in.last_executed);
  }
  if (st.checkpoints_stable != n->stats.checkpoints_stable)
    FL_INFO(LOG, "checkpoint stable replica=%u seq=%llu block=%llu", n->self,
            (unsigned long long)in.low_watermark, (unsigned long long)in.last_block);
  if (in.state_transfer != n->info.state_transfer)
    FL_INFO(LOG, "state transfer %s replica=%u last_exec=%llu", in.state_transfer ? "started" : "done",
            n->self, (unsigned long long)in.last_executed);
  n->info = in;
  n->stats = st;
  fl__metrics_update(n, &in, &st);
}

void fl__node_after_pbft(fl__node_t *n) {
  const fl_pbft_action_t *acts = NULL;
  size_t k = fl_pbft_actions(n->pbft, &acts);
  for (size_t i = 0; i < k; i++) {
    const fl_pbft_action_t *a = &acts[i];
    if (a->type == FL_PBFT_ACT_DELIVER) {
      if (a->block_number <= n->qheight) continue; /* sync got it first */
      if (a->block_number != n->qheight + 1) {
        fl__rpc_sync_want(n, a->block_number);
        continue;
      }
      memcpy(n->qhash, a->digest, 32);
      q_push(n, a, fl_pbft_action_take(n->pbft, i));
      n->qheight = a->block_number;
      continue;
    }
    q_push(n, a, fl_pbft_action_take(n->pbft, i));
  }
  fl_pbft_actions_clear(n->pbft);
  pump(n);
  log_progress(n);
  if (n->info.delivered_block > n->qheight) fl__rpc_sync_want(n, n->info.delivered_block);
  fl__node_rearm(n);
}

/* Every 10 s: what the node did, at INFO (operators and the benchmark
 * read it; nothing is logged when idle). */
static void log_metrics(fl__node_t *n, uint64_t now) {
  if (now < n->m_at + 10000) return;
  fl_pbft_stats_t st;
  fl_pbft_stats(n->pbft, &st);
  uint64_t exec = st.requests_executed - n->m_exec;
  if (exec > 0 || n->m_writes > 0)
    FL_INFO(LOG, "metrics replica=%u s=%.1f requests_executed=%llu blocks=%llu writes=%llu "
            "write_ms_avg=%.1f write_ms_max=%llu write_mb=%.1f pending=%llu cs_queue=%zu "
            "bc_queue=%zu parked=%zu view=%llu rx_total=%llu redundant_total=%llu",
            n->self, (double)(now - n->m_at) / 1000.0, (unsigned long long)exec,
            (unsigned long long)(st.blocks_delivered - n->m_blocks),
            (unsigned long long)n->m_writes,
            n->m_writes ? (double)n->m_write_ms / (double)n->m_writes : 0.0,
            (unsigned long long)n->m_write_max, (double)n->m_write_bytes / 1e6,
            (unsigned long long)n->info.pending_requests, n->cs_n + n->cs_nb, n->bc_n, n->park_n,
            (unsigned long long)n->info.view, (unsigned long long)st.rx_messages,
            (unsigned long long)st.rx_redundant);
  n->m_at = now;
  n->m_exec = st.requests_executed;
  n->m_blocks = st.blocks_delivered;
  n->m_writes = n->m_write_ms = n->m_write_max = n->m_write_bytes = 0;
}

static void on_timer(uv_timer_t *t) {
  fl__node_t *n = t->data;
  uint64_t now = fl__node_now();
  fl_pbft_tick(n->pbft, now);
  fl__node_after_pbft(n);
  log_metrics(n, now);
}

/* ------------------------------------------------------------- shutdown */

static void handle_closed(uv_handle_t *h) {
  fl__node_t *n = h->data;
  n->open_handles--;
}

static void close_handle(fl__node_t *n, uv_handle_t *h) {
  if (uv_is_closing(h)) return;
  h->data = n;
  uv_close(h, handle_closed);
}

void fl__node_stop(fl__node_t *n, int code) {
  if (code > n->exit_code) n->exit_code = code;
  if (n->stopping) return;
  n->stopping = true;
  FL_INFO(LOG, "shutting down replica=%u height=%llu", n->self, (unsigned long long)n->height);
  uv_timer_stop(&n->timer);
  close_handle(n, (uv_handle_t *)&n->timer);
  close_handle(n, (uv_handle_t *)&n->sigterm);
  close_handle(n, (uv_handle_t *)&n->sigint);
  fl__rpc_close(n);
  fl__metrics_close_ops(n);
  pump(n); /* flushes what is queued, then closes the writer */
}

static void on_signal(uv_signal_t *s, int signum) {
  fl__node_t *n = s->data;
  FL_INFO(LOG, "signal received signum=%d", signum);
  fl__node_stop(n, 0);
}

/* ---------------------------------------------------------------- setup */

/* Every key orderer.yaml may hold (orderer.h); any other is refused, so a
 * misspelt setting does not silently take its default. */
static const char *const known_keys[] = {
    "general.id", "general.data_dir", "general.genesis", "general.listen_host",
    "general.listen_port", "general.log", "msp.dir", "tls.enabled", "tls.cert", "tls.key",
    "storage.sync", "storage.committed_retention", "broadcast.verify", "broadcast.batch",
    "broadcast.workers", "broadcast.max_pending", "broadcast.max_parked",
    "broadcast.park_timeout", "broadcast.check_transaction", "pbft.request_timeout",
    "pbft.unreachable_timeout", "pbft.resend", "pbft.max_inflight", "pbft.dedup_window",
    "pbft.busy_inflight", "pbft.busy_batch_timeout", "pbft.cut_when_idle", "pbft.censor_timeout",
    "pbft.forward_interval",
    "operations.host",
    "operations.port", "operations.stuck_view_change", "rpc.max_message_bytes", NULL};


/* "KEY (V ms) must be RULE pbft.request_timeout (T ms)": a timing setting
 * out of its bound relative to the request timeout. */
static char *timeout_bound_err(const char *key, uint64_t v_ms, const char *rule,
                               uint64_t request_timeout_ms) {
  return fl_sprintf("%s (%llu ms) must be %s pbft.request_timeout (%llu ms)", key,
                    (unsigned long long)v_ms, rule, (unsigned long long)request_timeout_ms);
}
static fl_status_t load_config(fl__node_t *n, const char *path) {
  char *err = NULL;
  fl_status_t rc = fl_config_load(path, NULL, &n->cfg, &err);
  if (rc < 0) goto fail;
  const char *logspec = NULL;
  int64_t id = 0;
  uint64_t u = 0, port = 0, dflt;
  bool b, dtrue = true;
  if ((rc = fl_config_get_string(n->cfg, NULL, "general.log", "info", &logspec, &err)) < 0) goto fail;
  if (fl_log_configure(logspec) != 0) {
    err = fl_sprintf("general.log: bad log spec '%s'", logspec);
    rc = FL_ECONFIG;
    goto fail;
  }
  fl_log_configure_from_env();
  if ((rc = fl_config_get_int64(n->cfg, NULL, "general.id", 0, FL_PBFT_MAX_REPLICAS - 1, NULL,
                                &id, &err)) < 0) goto fail;
  n->self = (uint32_t)id;
  if ((rc = fl_config_get_string(n->cfg, NULL, "general.data_dir", NULL, &n->data_dir, &err)) < 0) goto fail;
  if ((rc = fl_config_get_string(n->cfg, NULL, "general.genesis", NULL, &n->genesis_path, &err)) < 0) goto fail;
  if ((rc = fl_config_get_string(n->cfg, NULL, "general.listen_host", "", &n->listen_host, &err)) < 0) goto fail;
  dflt = 0;
  if ((rc = fl_config_get_uint64(n->cfg, NULL, "general.listen_port", 0, 65535, &dflt, &port, &err)) < 0) goto fail;
  n->listen_port = (uint16_t)port;
  if ((rc = fl_config_get_string(n->cfg, NULL, "msp.dir", NULL, &n->msp_dir, &err)) < 0) goto fail;
  if ((rc = fl_config_get_bool(n->cfg, NULL, "tls.enabled", &dtrue, &b, &err)) < 0) goto fail;
  n->tls_on = b;
  if (n->tls_on) {
    if ((rc = fl_config_get_string(n->cfg, NULL, "tls.cert", NULL, &n->tls_cert, &err)) < 0) goto fail;
    if ((rc = fl_config_get_string(n->cfg, NULL, "tls.key", NULL, &n->tls_key, &err)) < 0) goto fail;
  }
  if ((rc = fl_config_get_bool(n->cfg, NULL, "broadcast.verify", &dtrue, &b, &err)) < 0) goto fail;
  n->verify = b;
  if ((rc = fl_config_get_bool(n->cfg, NULL, "broadcast.check_transaction", &dtrue, &b, &err)) < 0)
    goto fail;
  n->check_tx = b;
  if ((rc = fl_config_get_bool(n->cfg, NULL, "storage.sync", &dtrue, &b, &err)) < 0) goto fail;
  n->sync = b;
  dflt = 256;
  if ((rc = fl_config_get_uint64(n->cfg, NULL, "broadcast.batch", 1, 65536, &dflt, &u, &err)) < 0) goto fail;
  n->bc_batch = (uint32_t)u;
  dflt = 2;
  if ((rc = fl_config_get_uint64(n->cfg, NULL, "broadcast.workers", 1, 64, &dflt, &u, &err)) < 0) goto fail;
  n->bc_workers = (uint32_t)u;
  dflt = 1000;
  if ((rc = fl_config_get_duration_ms(n->cfg, NULL, "pbft.request_timeout", &dflt,
                                      &n->request_timeout_ms, &err)) < 0) goto fail;
  dflt = 10 * n->request_timeout_ms;
  if ((rc = fl_config_get_duration_ms(n->cfg, NULL, "pbft.censor_timeout", &dflt,
                                      &n->censor_timeout_ms, &err)) < 0) goto fail;
  if (n->censor_timeout_ms != 0 && n->censor_timeout_ms < n->request_timeout_ms) {
    err = timeout_bound_err("pbft.censor_timeout", n->censor_timeout_ms, "0 (off) or at least",
                            n->request_timeout_ms);
    rc = FL_ECONFIG;
    goto fail;
  }
  dflt = 200;
  if ((rc = fl_config_get_duration_ms(n->cfg, NULL, "pbft.unreachable_timeout", &dflt,
                                      &n->unreachable_timeout_ms, &err)) < 0) goto fail;
  dflt = 250;
  if ((rc = fl_config_get_duration_ms(n->cfg, NULL, "pbft.resend", &dflt, &n->resend_ms, &err)) < 0) goto fail;
  dflt = 2;
  if ((rc = fl_config_get_uint64(n->cfg, NULL, "pbft.busy_inflight", 0, 100000, &dflt, &u,
                                 &err)) < 0) goto fail;
  n->busy_inflight = (uint32_t)u;
  dflt = 20;
  if ((rc = fl_config_get_duration_ms(n->cfg, NULL, "pbft.busy_batch_timeout", &dflt,
                                      &n->busy_timeout_ms, &err)) < 0) goto fail;
  if ((rc = fl_config_get_bool(n->cfg, NULL, "pbft.cut_when_idle", &dtrue, &n->cut_when_idle,
                                &err)) < 0) goto fail;
  dflt = 5;
  if ((rc = fl_config_get_duration_ms(n->cfg, NULL, "pbft.forward_interval", &dflt,
                                      &n->forward_interval_ms, &err)) < 0) goto fail;
  if (n->forward_interval_ms > n->request_timeout_ms / 4) {
    err = timeout_bound_err("pbft.forward_interval", n->forward_interval_ms,
                            "at most a quarter of", n->request_timeout_ms);
    rc = FL_ECONFIG;
    goto fail;
  }
  dflt = 16;
  if ((rc = fl_config_get_uint64(n->cfg, NULL, "pbft.max_inflight", 1, 100000, &dflt, &u, &err)) < 0) goto fail;
  n->max_inflight = (uint32_t)u;
  dflt = 1024;
  if ((rc = fl_config_get_uint64(n->cfg, NULL, "pbft.dedup_window", 1, 1u << 24, &dflt, &u,
                                 &err)) < 0) goto fail;
  n->dedup_window = (uint32_t)u;
  dflt = 8000;
  if ((rc = fl_config_get_uint64(n->cfg, NULL, "broadcast.max_pending", 1, 10000000, &dflt,
                                 &u, &err)) < 0) goto fail;
  n->max_pending = (uint32_t)u;
  dflt = 16384;
  if ((rc = fl_config_get_uint64(n->cfg, NULL, "broadcast.max_parked", 0, 10000000, &dflt,
                                 &u, &err)) < 0) goto fail;
  n->max_parked = (uint32_t)u;
  dflt = 5000;
  if ((rc = fl_config_get_duration_ms(n->cfg, NULL, "broadcast.park_timeout", &dflt,
                                      &n->park_timeout_ms, &err)) < 0) goto fail;
  dflt = 8192;
  if ((rc = fl_config_get_uint64(n->cfg, NULL, "storage.committed_retention", 1, UINT32_MAX,
                                 &dflt, &u, &err)) < 0) goto fail;
  n->retention = u;
  if ((rc = fl_config_get_string(n->cfg, NULL, "operations.host", "127.0.0.1", &n->ops_host,
                                  &err)) < 0) goto fail;
  dflt = 0;
  if ((rc = fl_config_get_uint64(n->cfg, NULL, "operations.port", 0, 65535, &dflt, &u, &err)) < 0)
    goto fail;
  n->ops_port = (uint16_t)u;
  dflt = 30000;
  if ((rc = fl_config_get_duration_ms(n->cfg, NULL, "operations.stuck_view_change", &dflt,
                                      &n->stuck_vc_ms, &err)) < 0) goto fail;
  dflt = 0;
  if ((rc = fl_config_get_uint64(n->cfg, NULL, "rpc.max_message_bytes", 0, 1u << 30, &dflt, &u, &err)) < 0) goto fail;
  n->max_msg = (size_t)u;
  if ((rc = fl_config_check_keys(n->cfg, known_keys, &err)) < 0) goto fail;
  return FL_OK;
fail:
  FL_ERROR(LOG, "bad configuration file=%s rc=%s err=%s", path, fl_status_name(rc),
           err ? err : "?");
  fl_free(err);
  return rc;
}

static fl_status_t load_genesis(fl__node_t *n) {
  fl_sbuf_t gb = {0};
  const char *why = "?";
  fl_status_t rc = fl_file_read(n->genesis_path, NODE_MAX_FILE, &gb);
  if (rc < 0) {
    why = "cannot read the file";
    goto fail;
  }
  if ((rc = fl_block_decode(gb.data, gb.len, &n->genesis, &why)) < 0) goto fail;
  if ((rc = fl_genesis_decode(n->genesis, &n->net, &why)) < 0) goto fail;
  if ((rc = fl_netconfig_msp_new(n->net, &n->msp, &why)) < 0) goto fail;
  n->nrep = (uint32_t)n->net->n_orderers;
  n->f = n->net->pbft.f;
  if (n->self >= n->nrep) {
    rc = FL_ECONFIG;
    why = "general.id is not an orderer of the genesis configuration";
    goto fail;
  }
  n->ocerts = fl_calloc(n->nrep, sizeof(*n->ocerts));
  n->verifiers = fl_calloc(n->nrep, sizeof(*n->verifiers));
  for (uint32_t i = 0; i < n->nrep; i++) {
    const fl_net_orderer_t *o = fl_netconfig_orderer(n->net, i);
    if ((rc = fl_cert_from_pem(o->identity_cert.data, o->identity_cert.len, &n->ocerts[i])) < 0) {
      why = "an orderer certificate does not parse";
      goto fail;
    }
    n->verifiers[i] = fl_cert_pubkey(n->ocerts[i]);
  }
  if (n->max_msg == 0) n->max_msg = n->net->max_message_bytes;
  /* The TLS roots of every organisation, for mutual TLS both ways. */
  n->tls_roots = fl_sprintf("%s/tls-roots.pem", n->data_dir);
  FILE *fp = fopen(n->tls_roots, "wb");
  if (fp == NULL) {
    rc = FL_EIO;
    why = "cannot write data_dir/tls-roots.pem";
    goto fail;
  }
  for (size_t i = 0; i < n->net->n_orgs; i++)
    for (size_t k = 0; k < n->net->orgs[i].n_tls_root_certs; k++) {
      fl_buf_t c = n->net->orgs[i].tls_root_certs[k];
      fwrite(c.data, 1, c.len, fp);
      if (c.len && c.data[c.len - 1] != '\n') fputc('\n', fp);
    }
  if (fclose(fp) != 0) {
    rc = FL_EIO;
    why = "cannot write data_dir/tls-roots.pem";
    goto fail;
  }
  fl_sbuf_free(&gb);
  return FL_OK;
fail:
  FL_ERROR(LOG, "bad genesis block file=%s rc=%s reason=%s", n->genesis_path,
           fl_status_name(rc), why);
  fl_sbuf_free(&gb);
  return rc;
}

static fl_status_t load_identity(fl__node_t *n) {
  char *sdir = fl_sprintf("%s/signcerts", n->msp_dir);
  char *kdir = fl_sprintf("%s/keystore", n->msp_dir);
  char *cpath = fl_dir_first_file(sdir), *kpath = fl_dir_first_file(kdir);
  fl_sbuf_t pem = {0}, sig = {0};
  fl_cert_t *cert = NULL;
  const char *why = "?";
  fl_status_t rc = FL_ECONFIG;
  if (cpath == NULL || kpath == NULL) {
    why = "msp.dir needs signcerts/ and keystore/ with one file each";
    goto fail;
  }
  if ((rc = fl_file_read(cpath, NODE_MAX_FILE, &pem)) < 0 || (rc = fl_cert_from_pem(pem.data, pem.len, &cert)) < 0) {
    why = "signing certificate unreadable";
    goto fail;
  }
  if ((rc = fl_signer_load_file(kpath, &n->signer)) < 0) {
    why = "signing key unreadable";
    goto fail;
  }
  if (memcmp(fl_cert_sha256(cert), fl_cert_sha256(n->ocerts[n->self]), FL_SHA256_LEN) != 0) {
    rc = FL_EUNTRUSTED;
    why = "own certificate differs from the genesis orderer entry for this id";
    goto fail;
  }
  static const char probe[] = "fedledger orderer key check";
  if ((rc = fl_signer_sign(n->signer, probe, sizeof(probe), &sig)) < 0 ||
      (rc = fl_verify(fl_cert_pubkey(cert), probe, sizeof(probe), sig.data, sig.len)) < 0) {
    why = "signing key does not match the certificate";
    goto fail;
  }
  const fl_net_orderer_t *o = fl_netconfig_orderer(n->net, n->self);
  if ((rc = fl_msp_serialize_identity(o->mspid, pem.data, pem.len, &n->identity)) < 0) {
    why = "cannot serialize identity";
    goto fail;
  }
  if (n->listen_host[0] == '\0') n->listen_host = o->host;
  if (n->listen_port == 0) n->listen_port = (uint16_t)o->port;
  rc = FL_OK;
fail:
  if (rc < 0)
    FL_ERROR(LOG, "bad identity msp_dir=%s rc=%s reason=%s", n->msp_dir, fl_status_name(rc), why);
  fl_cert_free(cert);
  fl_sbuf_free(&pem);
  fl_sbuf_free(&sig);
  fl_free(cpath);
  fl_free(kpath);
  fl_free(sdir);
  fl_free(kdir);
  return rc;
}

static fl_status_t open_store(fl__node_t *n) {
  /* Blocks are large and written once (fl_kv_cf_spec_t.large_values); the
   * pbft CF's records are deleted at each stable checkpoint or once past
   * storage.committed_retention: they stay inline and uncompressed
   * (transient). */
  static const fl_kv_cf_spec_t cfs[] = {{.name = "blocks", .large_values = true},
                                        {.name = "pbft", .transient = true}};
  char *path = fl_sprintf("%s/ledger", n->data_dir);
  fl_kv_opts_t o = {.cfs = cfs, .ncfs = 2, .create_if_missing = true,
                    .block_cache_bytes = 16u << 20, .write_buffer_bytes = 64u << 20};
  fl_status_t rc = fl_kv_open(path, &o, &n->kv);
  fl_free(path);
  fl_sbuf_t v = {0};
  fl_block_t *b = NULL;
  if (rc < 0) {
    FL_ERROR(LOG, "cannot open store dir=%s rc=%s err=%s", n->data_dir, fl_status_name(rc),
             fl_kv_last_error());
    return rc;
  }
  n->cf_blocks = fl_kv_cf(n->kv, "blocks");
  n->cf_pbft = fl_kv_cf(n->kv, "pbft");
  /* Block 0 is the genesis block; the last key is the height. */
  rc = fl__node_read_block(n, 0, &v);
  if (rc == FL_NOTFOUND) {
    fl_sbuf_t gb = {0};
    fl_block_encode(n->genesis, &gb);
    uint8_t key[8];
    fl_put_be64(key, 0);
    rc = fl_kv_put(n->kv, n->cf_blocks, FL_BUF(key, 8), fl_sbuf_view(&gb), true);
    fl_sbuf_free(&gb);
    if (rc < 0) goto fail;
    n->height = 0;
    memcpy(n->qhash, n->genesis->header_hash, 32);
  } else if (rc == FL_OK) {
    if (fl_block_decode(v.data, v.len, &b, NULL) != FL_OK ||
        memcmp(b->header_hash, n->genesis->header_hash, 32) != 0) {
      FL_ERROR(LOG, "store belongs to another network dir=%s", n->data_dir);
      rc = FL_ECONFIG;
      goto fail;
    }
    fl_block_free(b);
    b = NULL;
    fl_kv_iter_t *it = NULL;
    fl_kv_iter_opts_t io = {.reverse = true};
    if ((rc = fl_kv_iter_new(n->kv, n->cf_blocks, &io, &it)) < 0) goto fail;
    fl_buf_t k, val;
    rc = fl_kv_iter_next(it, &k, &val);
    if (rc == FL_OK && k.len == 8) {
      n->height = fl_get_be64(k.data);
      fl_ab_block_t info;
      rc = fl_ab_block_parse(val, &info, NULL, NULL);
      if (rc == FL_OK) memcpy(n->qhash, info.header_hash, 32);
    } else {
      rc = FL_ECORRUPT;
    }
    fl_kv_iter_free(it);
    if (rc < 0) goto fail;
    /* The store must be contiguous: every number below height present. */
    if (n->height > 0 && fl__node_read_block(n, n->height - 1, &v) != FL_OK) {
      rc = FL_ECORRUPT;
      goto fail;
    }
  } else {
    goto fail;
  }
  n->qheight = n->height;
  fl_block_free(b);
  fl_sbuf_free(&v);
  return FL_OK;
fail:
  FL_ERROR(LOG, "block store unusable dir=%s rc=%s", n->data_dir, fl_status_name(rc));
  fl_block_free(b);
  fl_sbuf_free(&v);
  return rc;
}

/* Feeds every record of `kind` (newest first when reverse, at most max)
 * back into the machine. */
static fl_status_t restore_kind(fl__node_t *n, fl_pbft_record_t kind, bool reverse, size_t max,
                                size_t *count) {
  uint8_t pfx = (uint8_t)kind;
  fl_kv_iter_opts_t io = {.prefix = FL_BUF(&pfx, 1), .reverse = reverse};
  fl_kv_iter_t *it = NULL;
  fl_status_t rc = fl_kv_iter_new(n->kv, n->cf_pbft, &io, &it);
  if (rc < 0) return rc;
  fl_buf_t k, v;
  size_t c = 0;
  while (c < max && (rc = fl_kv_iter_next(it, &k, &v)) == FL_OK) {
    if (k.len != 9) continue;
    uint64_t seq = fl_get_be64(k.data + 1);
    rc = fl_pbft_restore(n->pbft, kind, seq, v);
    if (rc < 0) {
      FL_ERROR(LOG, "replica log record refused kind=%d seq=%llu rc=%s", (int)kind,
               (unsigned long long)seq, fl_status_name(rc));
      break;
    }
    if ((kind == FL_PBFT_REC_ENTRY || kind == FL_PBFT_REC_PREPARED) && seq < n->entry_lo)
      n->entry_lo = seq;
    if (kind == FL_PBFT_REC_COMMITTED) {
      if (seq > n->committed_hi) n->committed_hi = seq;
      if (seq < n->committed_lo) n->committed_lo = seq;
    }
    c++;
  }
  fl_kv_iter_free(it);
  *count = c;
  return rc == FL_NOTFOUND || rc == FL_OK ? FL_OK : rc;
}

/* The lowest COMMITTED record still stored (for retention deletes). */
static fl_status_t first_committed(fl__node_t *n, size_t *count) {
  uint8_t pfx = (uint8_t)FL_PBFT_REC_COMMITTED;
  fl_kv_iter_opts_t io = {.prefix = FL_BUF(&pfx, 1)};
  fl_kv_iter_t *it = NULL;
  fl_status_t rc = fl_kv_iter_new(n->kv, n->cf_pbft, &io, &it);
  if (rc < 0) return rc;
  fl_buf_t k, v;
  rc = fl_kv_iter_next(it, &k, &v);
  if (rc == FL_OK && k.len == 9) {
    uint64_t seq = fl_get_be64(k.data + 1);
    if (seq < n->committed_lo) n->committed_lo = seq;
    *count = 1;
  }
  fl_kv_iter_free(it);
  return rc == FL_OK || rc == FL_NOTFOUND ? FL_OK : rc;
}

fl_pbft_ops_t fl__node_ops(fl__node_t *n) {
  return (fl_pbft_ops_t){.ctx = n, .sign = op_sign, .verify = op_verify,
                         .sign_digest = op_sign_digest, .verify_digest = op_verify_digest,
                         .sha256 = op_sha256, .check_request = op_check_request,
                         .load = op_load, .wall_ms = op_wall_ms};
}

static fl_status_t start_pbft(fl__node_t *n) {
  fl_pbft_config_t c = fl_pbft_config_default();
  const fl_pbft_params_t *pp = &n->net->pbft;
  c.n = n->nrep;
  c.self = n->self;
  c.checkpoint_interval = pp->checkpoint_interval;
  uint32_t w = pp->watermark_window / pp->checkpoint_interval * pp->checkpoint_interval;
  if (w < 2 * pp->checkpoint_interval) w = 2 * pp->checkpoint_interval;
  c.log_window = w;
  c.batch_max_count = pp->batch_max_count;
  c.batch_max_bytes = pp->batch_max_bytes;
  c.batch_timeout_ms = pp->batch_timeout_ms;
  c.view_change_timeout_ms = pp->view_change_timeout_ms;
  c.request_timeout_ms = n->request_timeout_ms;
  c.censor_timeout_ms = n->censor_timeout_ms;
  c.unreachable_timeout_ms = n->unreachable_timeout_ms ? n->unreachable_timeout_ms : 1;
  c.max_pending = n->max_pending;
  c.resend_ms = n->resend_ms;
  c.max_inflight = n->max_inflight < w ? n->max_inflight : w;
  c.busy_inflight = n->busy_inflight;
  c.busy_timeout_ms = n->busy_timeout_ms;
  c.forward_interval_ms = n->forward_interval_ms;
  c.cut_when_idle = n->cut_when_idle;
  c.dedup_window = n->dedup_window;
  c.base_block_number = 0;
  memcpy(c.base_header_hash, n->genesis->header_hash, 32);
  fl_pbft_ops_t ops = fl__node_ops(n);
  fl_status_t rc = fl_pbft_new(&c, &ops, &n->pbft);
  if (rc < 0) {
    FL_ERROR(LOG, "pbft configuration refused rc=%s", fl_status_name(rc));
    return rc;
  }
  n->entry_lo = UINT64_MAX;
  n->committed_lo = UINT64_MAX;
  n->committed_hi = 0;
  /* Never delete COMMITTED records a restart needs (the last dedup_window)
   * nor the log window above the stable checkpoint. */
  if (n->retention < (uint64_t)c.dedup_window + c.log_window)
    n->retention = (uint64_t)c.dedup_window + c.log_window;
  size_t nv = 0, nc = 0, ne = 0, np = 0, nd = 0, nfirst = 0;
  if ((rc = restore_kind(n, FL_PBFT_REC_VIEW, false, SIZE_MAX, &nv)) < 0 ||
      (rc = restore_kind(n, FL_PBFT_REC_CHECKPOINT, true, 1, &nc)) < 0 ||
      (rc = restore_kind(n, FL_PBFT_REC_ENTRY, false, SIZE_MAX, &ne)) < 0 ||
      (rc = restore_kind(n, FL_PBFT_REC_PREPARED, false, SIZE_MAX, &np)) < 0 ||
      (rc = restore_kind(n, FL_PBFT_REC_COMMITTED, true, c.dedup_window, &nd)) < 0)
    return rc;
  if (nd > 0 && (rc = first_committed(n, &nfirst)) < 0) return rc;
  if (n->entry_lo == UINT64_MAX) n->entry_lo = 1;
  if (n->committed_lo == UINT64_MAX) n->committed_lo = 1;
  if ((rc = fl_pbft_start(n->pbft, fl__node_now())) < 0) {
    FL_ERROR(LOG, "replica log does not restore rc=%s", fl_status_name(rc));
    return rc;
  }
  fl_pbft_info(n->pbft, &n->info);
  fl_pbft_stats(n->pbft, &n->stats);
  FL_INFO(LOG, "replica restored replica=%u view=%llu last_exec=%llu delivered=%llu "
          "stored_height=%llu records_view=%zu checkpoints=%zu entries=%zu prepared=%zu "
          "committed=%zu committed_lo=%llu",
          n->self, (unsigned long long)n->info.view, (unsigned long long)n->info.last_executed,
          (unsigned long long)n->info.delivered_block, (unsigned long long)n->height, nv, nc, ne,
          np, nd, (unsigned long long)n->committed_lo);
  return FL_OK;
}

static void node_free(fl__node_t *n) {
  for (size_t i = n->qhead; i < n->qlen; i++) fl_free(n->q[i].own);
  fl_free(n->q);
  fl_pbft_free(n->pbft);
  fl_kv_close(n->kv);
  if (n->ocerts)
    for (uint32_t i = 0; i < n->nrep; i++) fl_cert_free(n->ocerts[i]);
  fl_free(n->ocerts);
  fl_free(n->verifiers);
  fl_signer_free(n->signer);
  fl_sbuf_free(&n->identity);
  fl_msp_free(n->msp);
  fl_netconfig_free(n->net);
  fl_block_free(n->genesis);
  fl_free(n->tls_roots);
  fl_free(n->bc_pend);
  fl_free(n->cs_pend);
  fl_free(n->cs_bulk);
  if (n->links)
    for (uint32_t j = 0; j < n->nrep; j++) {
      for (size_t i = n->links[j].oq_head; i < n->links[j].oq_len; i++)
        fl_sbuf_free(&n->links[j].oq[i]);
      fl_free(n->links[j].oq);
    }
  fl_free(n->links);
  fl__metrics_free(n);
  fl_config_free(n->cfg);
  if (n->vc_mu_ok) pthread_mutex_destroy(&n->vc_mu);
}

int fl_orderer_main(const char *config_path) {
  fl__node_t *n = fl_calloc(1, sizeof(*n));
  int code = 1;
  bool loop_ok = false;
  if (uv_loop_init(&n->loop) != 0) goto done;
  loop_ok = true;
  if (load_config(n, config_path) < 0) goto done;
  if (mkdir(n->data_dir, 0700) != 0 && errno != EEXIST) {
    FL_ERROR(LOG, "cannot create data_dir=%s errno=%d", n->data_dir, errno);
    goto done;
  }
  pthread_mutex_init(&n->vc_mu, NULL);
  n->vc_mu_ok = true;
  if (load_genesis(n) < 0 || load_identity(n) < 0 || open_store(n) < 0 || start_pbft(n) < 0)
    goto done;
#ifdef FL_ORDERER_FAULTS
  fl__faults_init(n);
#endif
  if (writer_start(n) < 0) {
    FL_ERROR(LOG, "cannot start the writer thread");
    goto done;
  }
  uv_timer_init(&n->loop, &n->timer);
  n->timer.data = n;
  uv_signal_init(&n->loop, &n->sigterm);
  uv_signal_init(&n->loop, &n->sigint);
  n->sigterm.data = n->sigint.data = n;
  n->open_handles = 3;
  uv_signal_start(&n->sigterm, on_signal, SIGTERM);
  uv_signal_start(&n->sigint, on_signal, SIGINT);
  fl__metrics_setup(n);
  if (fl__rpc_start(n) < 0 || fl__metrics_start_ops(n) < 0) {
    fl__node_stop(n, 1);
  } else {
    FL_INFO(LOG, "orderer ready replica=%u n=%u f=%u listen=%s:%u height=%llu verify=%d",
            n->self, n->nrep, n->f, n->listen_host, (unsigned)n->listen_port,
            (unsigned long long)n->height, (int)n->verify);
    fl__node_after_pbft(n); /* actions from start (status, resumed view change) */
  }
  uv_run(&n->loop, UV_RUN_DEFAULT);
  code = n->exit_code;
  FL_INFO(LOG, "orderer stopped replica=%u height=%llu exit=%d", n->self,
          (unsigned long long)n->height, code);
done:
  if (loop_ok) {
    uv_run(&n->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&n->loop) != 0) FL_WARN(LOG, "loop still has handles at exit");
  }
  node_free(n);
  fl_free(n);
  return code;
}
