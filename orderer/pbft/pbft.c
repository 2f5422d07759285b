/* SPDX-License-Identifier: Apache-2.0
 *
 * pbft.c: the PBFT state machine's lifecycle, action queue and normal case:
 * client requests and forwarding, batching at the primary, pre-prepare /
 * prepare / commit, in-order execution with the at-most-once tx-id filter,
 * block building and block-signature collection, checkpoints and log
 * truncation, and the periodic status / retransmission that lets replicas
 * that lost messages catch up without a view change. View change lives in
 * pbft_vc.c, state transfer and restore in pbft_st.c.
 *
 * Every operation on a request is O(1) expected (hash maps keyed by tx id,
 * intrusive lists); per-seq work is O(n) in the number of replicas; the only
 * scans over the log window (L slots) happen once per checkpoint, per status
 * interval and per view change.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/net/lat.h"
#include "orderer/pbft/pbft_int.h"

#define NEVER UINT64_MAX

fl_pbft_config_t fl_pbft_config_default(void) {
  return (fl_pbft_config_t){
      .n = 4,
      .self = 0,
      .checkpoint_interval = 32,
      .log_window = 128,
      .max_inflight = 128,
      .batch_max_count = 500,
      .batch_max_bytes = 1u << 20,
      .batch_timeout_ms = 5,
      .request_timeout_ms = 2000,
      .unreachable_timeout_ms = 200,
      .view_change_timeout_ms = 2000,
      .view_change_max_backoff = 6,
      .resend_ms = 500,
      .dedup_window = 1024,
      .max_pending = 100000,
      .state_chunk_bytes = 4u << 20,
      .censor_timeout_ms = 20000,
  };
}

uint32_t fl__pbft_primary(const fl_pbft_t *p, uint64_t view) {
  return (uint32_t)(view % p->n);
}

static bool is_primary(const fl_pbft_t *p) {
  return fl__pbft_primary(p, p->view) == p->self;
}

/* -------------------------------------------------------------- actions */

static fl_pbft_action_t *act_push(fl_pbft_t *p, fl_pbft_action_type_t t,
                                  void *own) {
  if (p->nacts == p->capacts) {
    p->capacts = p->capacts ? p->capacts * 2 : 64;
    p->acts = fl_reallocarray(p->acts, p->capacts, sizeof(*p->acts));
    p->act_own = fl_reallocarray(p->act_own, p->capacts, sizeof(*p->act_own));
  }
  fl_pbft_action_t *a = &p->acts[p->nacts];
  memset(a, 0, sizeof(*a));
  a->type = t;
  p->act_own[p->nacts] = own;
  p->nacts++;
  return a;
}

void fl__pbft_persist(fl_pbft_t *p, fl_pbft_record_t kind, uint64_t seq,
                      fl_sbuf_t *bytes) {
  size_t len = 0;
  uint8_t *d = fl_sbuf_detach(bytes, &len);
  fl_pbft_action_t *a = act_push(p, FL_PBFT_ACT_PERSIST, d);
  a->kind = kind;
  a->seq = seq;
  a->bytes = FL_BUF(d, len);
}

void fl__pbft_send_raw(fl_pbft_t *p, uint32_t to, fl_buf_t signed_bytes) {
  if (to == p->self) return;
  uint8_t *d = fl_memdup(signed_bytes.data, signed_bytes.len);
  fl_pbft_action_t *a = act_push(p, FL_PBFT_ACT_SEND, d);
  a->to = to;
  a->bytes = FL_BUF(d, signed_bytes.len);
}

static void emit_send(fl_pbft_t *p, uint32_t to, fl_sbuf_t *signed_bytes) {
  if (to == p->self) {
    fl_sbuf_free(signed_bytes);
    return;
  }
  size_t len = 0;
  uint8_t *d = fl_sbuf_detach(signed_bytes, &len);
  fl_pbft_action_t *a = act_push(p, FL_PBFT_ACT_SEND, d);
  a->to = to;
  a->bytes = FL_BUF(d, len);
}

void fl__pbft_send_smsg(fl_pbft_t *p, uint32_t to, const fl__pbft_smsg_t *m) {
  fl_sbuf_t b = {0};
  fl__pbft_smsg_pack(m, &b);
  emit_send(p, to, &b);
}

/* Signs msg (consumed; with payload, a pre-prepare's batch) and decodes the
 * result into our own smsg. */
static fl__pbft_smsg_t *sign_own(fl_pbft_t *p, fl_sbuf_t *msg, fl_buf_t payload,
                                 fl_sbuf_t *signed_out) {
  fl_status_t rc = fl__pbft_sign_wrap_payload(&p->ops, p->self, fl_sbuf_view(msg),
                                              payload, signed_out);
  fl_sbuf_free(msg);
  if (rc < 0) {
    FL_ERROR(FL__PBFT_LOG, "sign failed replica=%u rc=%s", p->self,
             fl_status_name(rc));
    return NULL;
  }
  fl__pbft_smsg_t *m = NULL;
  rc = fl__pbft_decode(&p->own_codec, fl_sbuf_view(signed_out), &m);
  FL_ASSERT(rc == FL_OK);
  return m;
}

fl__pbft_smsg_t *fl__pbft_send_own(fl_pbft_t *p, uint32_t to, fl_sbuf_t *msg) {
  fl_sbuf_t s = {0};
  fl__pbft_smsg_t *m = sign_own(p, msg, FL_BUF(NULL, 0), &s);
  if (m) emit_send(p, to, &s);
  fl_sbuf_free(&s);
  return m;
}

static void send_unkept(fl_pbft_t *p, uint32_t to, fl_sbuf_t *msg) {
  fl_sbuf_t s = {0};
  fl_status_t rc = fl__pbft_sign_wrap(&p->ops, p->self, fl_sbuf_view(msg), &s);
  fl_sbuf_free(msg);
  if (rc < 0) {
    FL_ERROR(FL__PBFT_LOG, "sign failed replica=%u rc=%s", p->self,
             fl_status_name(rc));
    fl_sbuf_free(&s);
    return;
  }
  emit_send(p, to, &s);
}

size_t fl_pbft_actions(const fl_pbft_t *p, const fl_pbft_action_t **acts) {
  *acts = p->acts;
  return p->nacts;
}

void *fl_pbft_action_take(fl_pbft_t *p, size_t i) {
  if (p == NULL || i >= p->nacts) return NULL;
  void *own = p->act_own[i];
  p->act_own[i] = NULL;
  return own;
}

void fl_pbft_actions_clear(fl_pbft_t *p) {
  if (p == NULL) return;
  for (size_t i = 0; i < p->nacts; i++) fl_free(p->act_own[i]);
  p->nacts = 0;
}

/* ------------------------------------------------------------- requests */

void fl__pbft_plist_remove(fl__pbft_plist_t *l, fl__pbft_preq_t *r) {
  if (r->prev) r->prev->next = r->next; else l->head = r->next;
  if (r->next) r->next->prev = r->prev; else l->tail = r->prev;
  r->prev = r->next = NULL;
  l->count--;
  l->bytes -= r->envlen;
}

void fl__pbft_plist_push(fl__pbft_plist_t *l, fl__pbft_preq_t *r,
                         bool front) {
  if (front) {
    r->prev = NULL;
    r->next = l->head;
    if (l->head) l->head->prev = r; else l->tail = r;
    l->head = r;
  } else {
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail) l->tail->next = r; else l->head = r;
    l->tail = r;
  }
  l->count++;
  l->bytes += r->envlen;
}

static fl_buf_t preq_tx(const fl__pbft_preq_t *r) {
  return FL_BUF(r->data, r->txlen);
}

static fl_buf_t preq_env(const fl__pbft_preq_t *r) {
  return FL_BUF(r->data + r->txlen, r->envlen);
}

static void preq_drop(fl_pbft_t *p, fl__pbft_preq_t *r) {
  fl__pbft_map_del(&p->pending, r->data, r->txlen);
  fl__pbft_plist_remove(r->inflight_seq ? &p->infl : &p->queued, r);
  fl_free(r);
}

static fl__pbft_preq_t *preq_add(fl_pbft_t *p, fl_buf_t env, fl_buf_t tx) {
  fl__pbft_preq_t *r = fl_malloc(sizeof(*r) + tx.len + env.len);
  memset(r, 0, sizeof(*r));
  r->txlen = (uint32_t)tx.len;
  r->envlen = (uint32_t)env.len;
  memcpy(r->data, tx.data, tx.len);
  memcpy(r->data + tx.len, env.data, env.len);
  r->arrival = p->now;
  r->starve_at = p->cfg.censor_timeout_ms ? p->now + p->cfg.censor_timeout_ms : NEVER;
  if (r->starve_at < p->starve_min) p->starve_min = r->starve_at;
  bool existed = false;
  fl__pbft_slot_t *s = fl__pbft_map_put(&p->pending, r->data, r->txlen, &existed);
  FL_ASSERT(!existed);
  s->ptr = r;
  fl__pbft_plist_push(&p->queued, r, false);
  return r;
}

static void flush_forwards(fl_pbft_t *p, bool force);

/* Appends r to a Forward body being built (buf, *n requests in it); sends
 * what is pending once it holds a batch's worth. */
static void fwd_append(fl_pbft_t *p, fl_sbuf_t *buf, uint32_t *n, fl__pbft_preq_t *r) {
  fl_sbuf_t one = {0};
  fl__pbft_put_field(&one, 1, preq_env(r));
  fl__pbft_put_field(&one, 2, preq_tx(r));
  fl__pbft_put_field(buf, 1, fl_sbuf_view(&one));
  fl_sbuf_free(&one);
  if (++*n >= p->cfg.batch_max_count || buf->len >= p->cfg.batch_max_bytes)
    flush_forwards(p, true);
}

static void forward_add(fl_pbft_t *p, fl__pbft_preq_t *r) {
  r->fwd_at = p->now;
  /* During a view change nobody knows who will order: the request waits
   * here and install() forwards every queued one to the new primary. */
  if (!p->in_vc) fwd_append(p, &p->fwdbuf, &p->nfwd, r);
}

/* Queues r for a multicast to every replica (the primary included). */
static void relay_add(fl_pbft_t *p, fl__pbft_preq_t *r) {
  r->relayed = true;
  p->stats.requests_relayed++;
  fwd_append(p, &p->relaybuf, &p->nrelay, r);
}

/* When the Forward being built may leave (forward_interval_ms after the
 * last one; at once with pacing off or during a view change). */
static uint64_t forward_due(const fl_pbft_t *p) {
  if (p->cfg.forward_interval_ms == 0 || p->in_vc) return 0;
  return p->fwd_sent_at + p->cfg.forward_interval_ms;
}

/* Sends the relays, and the Forward being built if it is due (or full:
 * force). */
static void flush_forwards(fl_pbft_t *p, bool force) {
  if (p->relaybuf.len > 0) {
    fl_sbuf_t msg = {0};
    fl__pbft_put_field(&msg, FL_PBFT_MSG_FORWARD, fl_sbuf_view(&p->relaybuf));
    send_unkept(p, FL_PBFT_TO_ALL, &msg);
    p->relaybuf.len = 0;
    p->nrelay = 0;
  }
  if (p->fwdbuf.len == 0 || (!force && forward_due(p) > p->now)) return;
  /* Forwards queued before a view change began go to everyone: nobody
   * knows who will order them, and every replica's timer then watches. */
  uint32_t to = p->in_vc ? FL_PBFT_TO_ALL : fl__pbft_primary(p, p->view);
  if (to != p->self) {
    fl_sbuf_t msg = {0};
    fl__pbft_put_field(&msg, FL_PBFT_MSG_FORWARD, fl_sbuf_view(&p->fwdbuf));
    send_unkept(p, to, &msg);
    p->fwd_sent_at = p->now;
  }
  p->fwdbuf.len = 0;
  p->nfwd = 0;
}

void fl__pbft_flush_forwards(fl_pbft_t *p) { flush_forwards(p, false); }

/* Hands queued requests to the primary again: all of them (after a new
 * view is installed), or those whose last forward is older than
 * refwd_interval (a lost forward). Never during a view change (the new
 * view forwards everything once it is installed), and at most
 * max(4 * batch_max_count, 1024) per call, so that a large backlog is not
 * resent wholesale while the primary is merely slow. */
void fl__pbft_forward_queued(fl_pbft_t *p, bool all) {
  if (p->in_vc || is_primary(p)) return;
  uint64_t iv = p->cfg.request_timeout_ms / 2 > p->cfg.resend_ms
                    ? p->cfg.request_timeout_ms / 2 : p->cfg.resend_ms;
  size_t cap = 4 * (size_t)p->cfg.batch_max_count;
  if (cap < 1024) cap = 1024;
  size_t k = 0;
  for (fl__pbft_preq_t *r = p->queued.head; r && (all || k < cap); r = r->next)
    if (all || r->fwd_at + iv <= p->now) {
      forward_add(p, r);
      k++;
    }
}

/* Censorship (censor_timeout_ms, backups only): one
 * pass over the queued requests (those no pre-prepare carried yet). A
 * request held for half the censor timeout is multicast to every replica,
 * once per view: the others then hold it too, hand it to the primary and
 * time it themselves (from half the timeout, so that they vote when this
 * replica does). Recomputes starve_min, the earliest censor deadline, which
 * request_deadline() honours whatever else executes meanwhile. The pass is
 * O(queued) and runs once per status interval and before a censor deadline
 * is acted on (the minimum may be stale: a request may have left the queue). */
void fl__pbft_starve_scan(fl_pbft_t *p) {
  p->starve_min = NEVER;
  uint64_t c = p->cfg.censor_timeout_ms;
  /* During a view change too: a backup that voted alone (its ordinary
   * timer fired in a lull of the censor's traffic) still hands what it
   * holds to the others, whose own timers then bring them along. The
   * deadline is not acted on meanwhile (request_deadline). In a view
   * change p->view is the view asked for, whose primary we may be. */
  if (c == 0 || (!p->in_vc && is_primary(p))) return;
  for (fl__pbft_preq_t *r = p->queued.head; r; r = r->next) {
    if (!r->relayed && r->starve_at - c / 2 <= p->now) relay_add(p, r);
    if (r->starve_at < p->starve_min) p->starve_min = r->starve_at;
  }
}

/* A new view: every held request's timers start again (request timer,
 * forward, a full censor timeout) and it may be relayed again: by the old
 * view's rules it could not be ordered. */
void fl__pbft_restart_timers(fl_pbft_t *p) {
  uint64_t c = p->cfg.censor_timeout_ms;
  uint64_t at = c ? p->now + c : NEVER;
  for (fl__pbft_preq_t *r = p->queued.head; r; r = r->next) {
    r->arrival = p->now;
    r->fwd_at = 0;
    r->starve_at = at;
    r->relayed = false;
  }
  p->starve_min = p->queued.head ? at : NEVER;
}

/* Marks the pending requests of batch b as in flight at seq. */
void fl__pbft_mark_inflight(fl_pbft_t *p, fl__pbft_batch_t *b, uint64_t seq) {
  for (uint32_t i = 0; i < b->nreq; i++) {
    fl__pbft_slot_t *s =
        fl__pbft_map_get(&p->pending, b->reqs[i].tx_id.data, b->reqs[i].tx_id.len);
    if (s == NULL) continue;
    fl__pbft_preq_t *r = s->ptr;
    if (r->inflight_seq) continue;
    fl__pbft_plist_remove(&p->queued, r);
    r->inflight_seq = seq;
    fl__pbft_plist_push(&p->infl, r, false);
  }
}

static void inflight_remove(fl_pbft_t *p, const fl__pbft_batch_t *b,
                            uint64_t seq) {
  for (uint32_t i = 0; i < b->nreq; i++) {
    fl__pbft_slot_t *s = fl__pbft_map_get(&p->inflight, b->reqs[i].tx_id.data,
                                          b->reqs[i].tx_id.len);
    if (s && s->val == seq)
      fl__pbft_map_del(&p->inflight, b->reqs[i].tx_id.data,
                       b->reqs[i].tx_id.len);
  }
}

/* Adds b's tx ids to the in-flight map under seq. With check, refuses (and
 * undoes its insertions) when a request fails check_request, is in flight
 * at another seq, was executed within the window, or repeats within b. */
static bool inflight_add(fl_pbft_t *p, fl__pbft_batch_t *b, uint64_t seq,
                         bool check) {
  uint32_t i = 0;
  for (; i < b->nreq; i++) {
    const fl_pbft_request_t *rq = &b->reqs[i];
    if (check) {
      if (p->ops.check_request &&
          !p->ops.check_request(p->ops.ctx, rq->envelope, rq->tx_id))
        break;
      if (fl__pbft_map_get(&p->ddmap, rq->tx_id.data, rq->tx_id.len)) break;
    }
    bool existed = false;
    fl__pbft_slot_t *s =
        fl__pbft_map_put(&p->inflight, rq->tx_id.data, rq->tx_id.len, &existed);
    if (!existed) {
      s->val = seq;
    } else if (check) {
      break;
    }
  }
  if (i == b->nreq) return true;
  /* Undo: everything before i was inserted fresh by us. */
  for (uint32_t j = 0; j < i; j++)
    fl__pbft_map_del(&p->inflight, b->reqs[j].tx_id.data, b->reqs[j].tx_id.len);
  return false;
}

/* ------------------------------------------------------------------ log */

static void entry_votes_clear(fl_pbft_t *p, fl__pbft_entry_t *e) {
  if (e->pp) {
    if (e->pp->u.pp.batch) inflight_remove(p, e->pp->u.pp.batch, e->seq);
    fl__pbft_smsg_unref(e->pp);
    e->pp = NULL;
  }
  for (uint32_t i = 0; i < p->n; i++) {
    fl__pbft_smsg_unref(e->prep[i]);
    fl__pbft_smsg_unref(e->com[i]);
    e->prep[i] = e->com[i] = NULL;
  }
  e->nprep = e->ncom = 0;
  e->prepared = e->committed = false;
  e->sent_at = 0;
  e->ntx = 0;
}

void fl__pbft_entry_reset_view(fl_pbft_t *p, fl__pbft_entry_t *e) {
  entry_votes_clear(p, e);
  e->view = p->view;
}

static void entry_clear(fl_pbft_t *p, fl__pbft_entry_t *e) {
  entry_votes_clear(p, e);
  fl__pbft_cert_clear(&e->cert);
  e->seq = 0;
  e->view = 0;
}

fl__pbft_entry_t *fl__pbft_entry(fl_pbft_t *p, uint64_t seq) {
  if (seq <= p->low || seq > p->low + p->L) return NULL;
  fl__pbft_entry_t *e = &p->log[seq % p->L];
  if (e->seq != seq) {
    entry_clear(p, e);
    e->seq = seq;
    e->view = p->view;
  } else if (e->view != p->view) {
    fl__pbft_entry_reset_view(p, e);
  }
  return e;
}

static bool same_d(const fl__pbft_smsg_t *vote, const uint8_t d[DLEN]) {
  return memcmp(vote->u.vote.d, d, DLEN) == 0;
}

static void entry_recount(fl_pbft_t *p, fl__pbft_entry_t *e) {
  e->nprep = e->ncom = 0;
  if (e->pp == NULL) return;
  uint32_t prim = fl__pbft_primary(p, e->view);
  for (uint32_t i = 0; i < p->n; i++) {
    if (i != prim && e->prep[i] && same_d(e->prep[i], e->pp->u.pp.d)) e->nprep++;
    if (e->com[i] && same_d(e->com[i], e->pp->u.pp.d)) e->ncom++;
  }
}

void fl__pbft_persist_entry(fl_pbft_t *p, fl__pbft_entry_t *e) {
  fl_sbuf_t b = {0};
  fl__pbft_enc_logentry(e->seq, e->view == p->view ? e->pp : NULL, &e->cert,
                        &b);
  fl__pbft_persist(p, FL_PBFT_REC_ENTRY, e->seq, &b);
}

static void check_committed(fl_pbft_t *p, fl__pbft_entry_t *e) {
  /* A pre-prepare and 2f+1 matching commits prove the batch committed (at
   * least f+1 correct replicas prepared it), with or without our prepare. */
  if (!e->committed && e->pp && e->ncom >= p->q) {
    e->committed = true;
    FL_LAT("pbft committed r=%u seq=%llu", p->self, (unsigned long long)e->seq);
  }
}

static void check_prepared(fl_pbft_t *p, fl__pbft_entry_t *e) {
  if (e->prepared || e->pp == NULL || e->nprep < 2 * p->f) return;
  e->prepared = true;
  FL_LAT("pbft prepared r=%u seq=%llu", p->self, (unsigned long long)e->seq);
  fl__pbft_cert_clear(&e->cert);
  e->cert.pp = fl__pbft_smsg_ref(e->pp);
  e->cert.prep = fl_calloc(p->f > 0 ? 2 * p->f : 1, sizeof(*e->cert.prep));
  uint32_t prim = fl__pbft_primary(p, e->view);
  for (uint32_t i = 0; i < p->n && e->cert.nprep < 2 * p->f; i++)
    if (i != prim && e->prep[i] && same_d(e->prep[i], e->pp->u.pp.d))
      e->cert.prep[e->cert.nprep++] = fl__pbft_smsg_ref(e->prep[i]);
  /* The certificate, before our COMMIT: only the prepares, the batch is in
   * the ENTRY record already. */
  fl_sbuf_t rec = {0};
  fl__pbft_enc_prepared(e->seq, e->view, e->pp->u.pp.d, e->cert.prep,
                        e->cert.nprep, &rec);
  fl__pbft_persist(p, FL_PBFT_REC_PREPARED, e->seq, &rec);
  if (e->com[p->self] == NULL) {
    fl_sbuf_t msg = {0};
    fl__pbft_enc_vote(FL_PBFT_MSG_COMMIT, e->view, e->seq, e->pp->u.pp.d, &msg);
    e->com[p->self] = fl__pbft_send_own(p, FL_PBFT_TO_ALL, &msg);
    if (e->com[p->self]) e->ncom++;
  }
  e->sent_at = p->now;
  check_committed(p, e);
}

void fl__pbft_accept_pp(fl_pbft_t *p, fl__pbft_entry_t *e,
                        fl__pbft_smsg_t *pp) {
  FL_ASSERT(e->pp == NULL && e->view == p->view);
  e->pp = fl__pbft_smsg_ref(pp);
  entry_recount(p, e);
  if (e->seq > p->last_exec && pp->u.pp.batch)
    fl__pbft_mark_inflight(p, pp->u.pp.batch, e->seq);
  fl__pbft_persist_entry(p, e); /* before our PREPARE (or the PRE-PREPARE) */
  FL_LAT("pbft pp_accepted r=%u seq=%llu", p->self, (unsigned long long)e->seq);
  if (!is_primary(p) && e->prep[p->self] == NULL) {
    fl_sbuf_t msg = {0};
    fl__pbft_enc_vote(FL_PBFT_MSG_PREPARE, e->view, e->seq, pp->u.pp.d, &msg);
    e->prep[p->self] = fl__pbft_send_own(p, FL_PBFT_TO_ALL, &msg);
    if (e->prep[p->self]) e->nprep++;
  }
  e->sent_at = p->now;
  check_prepared(p, e);
  check_committed(p, e);
}

/* ------------------------------------------------------ batch lookup */

static bool has_batch(const fl__pbft_smsg_t *pp, uint64_t seq, const uint8_t d[DLEN]) {
  return pp && pp->u.pp.batch && pp->u.pp.seq == seq &&
         memcmp(pp->u.pp.d, d, DLEN) == 0;
}

/* A batch with digest d that this replica holds for seq (any view), or
 * NULL. Borrowed. */
static fl__pbft_batch_t *find_batch(fl_pbft_t *p, uint64_t seq, const uint8_t d[DLEN]) {
  if (p->L == 0 || seq == 0) return NULL;
  const fl__pbft_entry_t *e = &p->log[seq % p->L];
  if (e->seq == seq) {
    if (has_batch(e->pp, seq, d)) return e->pp->u.pp.batch;
    if (has_batch(e->cert.pp, seq, d)) return e->cert.pp->u.pp.batch;
  }
  const fl__pbft_cc_t *c = &p->cc[seq % p->L];
  if (c->seq == seq && has_batch(c->pp, seq, d)) return c->pp->u.pp.batch;
  return NULL;
}

bool fl__pbft_attach_batch(fl_pbft_t *p, fl__pbft_smsg_t *pp) {
  if (pp->u.pp.batch) return true;
  fl__pbft_batch_t *b = find_batch(p, pp->u.pp.seq, pp->u.pp.d);
  if (b == NULL) return false;
  pp->u.pp.batch = fl__pbft_batch_ref(b);
  return true;
}

/* Asks another replica (a different one each time) for every batch we
 * lack for an accepted pre-prepare above the last executed seq; at most
 * once per resend_ms/2. */
static void fetch_missing(fl_pbft_t *p) {
  if (p->now < p->fetch_at) return;
  bool any = false;
  uint64_t from = p->last_exec > p->low ? p->last_exec : p->low;
  for (uint64_t s = from + 1; s <= p->low + p->L; s++) {
    fl__pbft_entry_t *e = &p->log[s % p->L];
    fl__pbft_smsg_t *pp = e->seq == s ? e->pp : NULL;
    if (pp == NULL || fl__pbft_attach_batch(p, pp)) continue;
    if (!any) {
      p->fetch_peer = (p->fetch_peer + 1) % p->n;
      if (p->fetch_peer == p->self) p->fetch_peer = (p->fetch_peer + 1) % p->n;
      any = true;
    }
    fl_sbuf_t msg = {0};
    fl__pbft_enc_bfetch(s, pp->u.pp.d, &msg);
    send_unkept(p, p->fetch_peer, &msg);
  }
  if (any) p->fetch_at = p->now + (p->cfg.resend_ms / 2 ? p->cfg.resend_ms / 2 : 1);
}

static void on_batch_fetch(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  fl__pbft_batch_t *b = find_batch(p, m->u.bf.seq, m->u.bf.d);
  if (b == NULL || b->len == 0) return;
  fl_sbuf_t msg = {0};
  fl__pbft_enc_bdata(m->u.bf.seq, FL_BUF(b->bytes, b->len), &msg);
  send_unkept(p, m->replica, &msg);
}

static void on_batch_data(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  uint64_t s = m->u.bd.seq;
  fl__pbft_batch_t *b = m->u.bd.batch;
  if (s <= p->low || s > p->low + p->L) {
    p->stats.rx_stale++;
    return;
  }
  bool used = false;
  fl__pbft_entry_t *e = &p->log[s % p->L];
  if (e->seq == s && e->cert.pp && e->cert.pp->u.pp.batch == NULL &&
      memcmp(e->cert.pp->u.pp.d, b->digest, DLEN) == 0) {
    e->cert.pp->u.pp.batch = fl__pbft_batch_ref(b);
    used = true;
  }
  if (e->seq == s && e->pp && e->pp->u.pp.batch == NULL &&
      memcmp(e->pp->u.pp.d, b->digest, DLEN) == 0) {
    e->pp->u.pp.batch = fl__pbft_batch_ref(b);
    if (s > p->last_exec) {
      /* The view change decided this batch: track its tx ids, no checks. */
      for (uint32_t i = 0; i < b->nreq; i++) {
        bool existed = false;
        fl__pbft_slot_t *sl = fl__pbft_map_put(&p->inflight, b->reqs[i].tx_id.data,
                                               b->reqs[i].tx_id.len, &existed);
        if (!existed) sl->val = s;
      }
      fl__pbft_mark_inflight(p, b, s);
    }
    if (e->view == p->view) fl__pbft_persist_entry(p, e); /* now with the batch */
    used = true;
  }
  fl__pbft_cc_t *c = &p->cc[s % p->L];
  if (c->seq == s && c->pp && c->pp->u.pp.batch == NULL &&
      memcmp(c->pp->u.pp.d, b->digest, DLEN) == 0) {
    c->pp->u.pp.batch = fl__pbft_batch_ref(b);
    used = true;
  }
  if (used) p->stats.batches_fetched++;
  else p->stats.rx_stale++;
}

/* ------------------------------------------------------------- proposing */

/* How long the oldest queued request may wait for a partial batch: the
 * batch timeout, or busy_timeout_ms while the pipeline is busy. */
static uint64_t batch_wait(const fl_pbft_t *p) {
  uint64_t w = p->cfg.batch_timeout_ms;
  if (p->cfg.busy_inflight > 0 && p->cfg.busy_timeout_ms > w &&
      p->next_seq > p->last_exec + p->cfg.busy_inflight)
    w = p->cfg.busy_timeout_ms;
  return w;
}

/* When the queue's partial batch may be cut (queue not empty): once its
 * oldest request waited batch_wait(), or, with cut_when_idle, as soon as
 * no seq is proposed and not executed (nothing else could be ordered
 * meanwhile, so waiting only adds latency) -- at most once per
 * batch_timeout_ms, so that a steady load still fills batches as it did
 * (blocks per second never exceed what the batch timeout allows). */
static uint64_t cut_due(const fl_pbft_t *p) {
  uint64_t due = p->queued.head->arrival + batch_wait(p);
  if (p->cfg.cut_when_idle && p->next_seq <= p->last_exec + 1) {
    uint64_t idle = p->has_cut ? p->last_cut + p->cfg.batch_timeout_ms : 0;
    if (idle < due) due = idle;
  }
  return due;
}

void fl__pbft_propose(fl_pbft_t *p) {
  if (!p->started || p->in_vc || !is_primary(p) || p->st.active ||
      p->last_exec < p->low)
    return;
  if (p->next_seq <= p->low) p->next_seq = p->low + 1;
  fl_pbft_request_t *reqs = NULL;
  while (p->queued.count > 0) {
    uint64_t s = p->next_seq;
    if (s > p->low + p->L || s > p->last_exec + p->cfg.max_inflight) break;
    bool full = p->queued.count >= p->cfg.batch_max_count ||
                p->queued.bytes >= p->cfg.batch_max_bytes;
    if (!full && p->now < cut_due(p))
      break;
    uint64_t arrival = p->queued.head->arrival; /* for the lat line */
    if (reqs == NULL)
      reqs = fl_calloc(p->cfg.batch_max_count, sizeof(*reqs));
    size_t nr = 0, bytes = 0;
    fl__pbft_preq_t *r = p->queued.head;
    while (r && nr < p->cfg.batch_max_count) {
      fl__pbft_preq_t *next = r->next;
      fl_buf_t tx = preq_tx(r);
      if (fl__pbft_map_get(&p->ddmap, tx.data, tx.len)) {
        preq_drop(p, r); /* ordered already */
      } else if (fl__pbft_map_get(&p->inflight, tx.data, tx.len)) {
        fl__pbft_slot_t *sl = fl__pbft_map_get(&p->inflight, tx.data, tx.len);
        fl__pbft_plist_remove(&p->queued, r);
        r->inflight_seq = sl->val;
        fl__pbft_plist_push(&p->infl, r, false);
      } else {
        if (nr > 0 && bytes + r->envlen > p->cfg.batch_max_bytes) break;
        reqs[nr].tx_id = tx;
        reqs[nr].envelope = preq_env(r);
        bytes += r->envlen;
        nr++;
      }
      r = next;
    }
    if (nr == 0) continue;
    fl__pbft_entry_t *e = fl__pbft_entry(p, s);
    if (e == NULL || e->pp != NULL) {
      /* Seq s already holds a pre-prepare of this view: one of ours that
       * came back relayed (or replayed) after we lost track of it. Proposing
       * another batch there would make us equivocate; move past it. */
      p->stats.rx_conflicting++;
      FL_WARN(FL__PBFT_LOG, "propose skips used seq replica=%u view=%llu seq=%llu",
              p->self, (unsigned long long)p->view, (unsigned long long)s);
      p->next_seq = s + 1;
      continue;
    }
    fl_sbuf_t batch = {0}, msg = {0}, sgn = {0};
    /* The block timestamp: wall clock when the host gives one, never
     * below this replica's previous proposal (a clock stepped back does not
     * make its blocks' timestamps go backwards). Other primaries' values
     * are not adopted: a Byzantine one could pin them in the future. */
    uint64_t ts = p->ops.wall_ms ? p->ops.wall_ms(p->ops.ctx) : p->now;
    if (ts < p->last_ts) ts = p->last_ts;
    p->last_ts = ts;
    fl__pbft_batch_encode(reqs, nr, ts, &batch);
    uint8_t d[DLEN];
    p->ops.sha256(p->ops.ctx, fl_sbuf_view(&batch), d);
    fl__pbft_enc_pp(p->view, s, d, &msg);
    fl__pbft_smsg_t *pp = sign_own(p, &msg, fl_sbuf_view(&batch), &sgn);
    fl_sbuf_free(&batch);
    if (pp == NULL) {
      fl_sbuf_free(&sgn);
      break;
    }
    inflight_add(p, pp->u.pp.batch, s, false);
    fl__pbft_accept_pp(p, e, pp); /* persists the entry */
    emit_send(p, FL_PBFT_TO_ALL, &sgn);
    fl_sbuf_free(&sgn);
    fl__pbft_smsg_unref(pp);
    FL_LAT("pbft cut r=%u seq=%llu reqs=%zu waited_ms=%llu", p->self, (unsigned long long)s, nr,
           (unsigned long long)(p->now - arrival));
    FL_TRACE(FL__PBFT_LOG, "pre-prepare replica=%u view=%llu seq=%llu reqs=%zu",
             p->self, (unsigned long long)p->view, (unsigned long long)s, nr);
    p->next_seq = s + 1;
    p->last_cut = p->now;
    p->has_cut = true;
  }
  fl_free(reqs);
}

/* --------------------------------------------------------- normal case */

static bool window_check(fl_pbft_t *p, uint64_t seq) {
  if (seq <= p->low) {
    p->stats.rx_stale++;
    return false;
  }
  if (seq > p->low + p->L) {
    p->stats.rx_out_of_window++;
    return false;
  }
  return true;
}

static fl__pbft_cc_t *cc_at(fl_pbft_t *p, uint64_t seq, uint64_t view) {
  /* Only the seqs we could execute next are worth keeping. */
  if (seq <= p->last_exec || seq <= p->low || seq > p->last_exec + p->L)
    return NULL;
  fl__pbft_cc_t *c = &p->cc[seq % p->L];
  if (c->seq != seq || c->view < view) {
    fl__pbft_smsg_unref(c->pp);
    c->pp = NULL;
    for (uint32_t i = 0; i < p->n; i++) {
      fl__pbft_smsg_unref(c->com[i]);
      c->com[i] = NULL;
    }
    c->seq = seq;
    c->view = view;
  }
  return c->view == view ? c : NULL;
}

static uint32_t cc_count(const fl_pbft_t *p, const fl__pbft_cc_t *c,
                         const uint8_t d[DLEN]) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < p->n; i++)
    if (c->com[i] && same_d(c->com[i], d)) k++;
  return k;
}

/* A pre-prepare or commit of an older view: kept for catch-up only. */
static void on_old_view(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  uint64_t view = m->type == FL_PBFT_MSG_PRE_PREPARE ? m->u.pp.view
                                                     : m->u.vote.view;
  uint64_t seq = m->type == FL_PBFT_MSG_PRE_PREPARE ? m->u.pp.seq
                                                    : m->u.vote.seq;
  fl__pbft_cc_t *c = cc_at(p, seq, view);
  if (c == NULL) {
    p->stats.rx_stale++;
    return;
  }
  if (m->type == FL_PBFT_MSG_PRE_PREPARE) {
    if (m->replica != fl__pbft_primary(p, view)) {
      p->stats.rx_rejected++;
      return;
    }
    if (!fl__pbft_attach_batch(p, m)) { /* useless for catch-up without it */
      p->stats.rx_stale++;
      return;
    }
    /* Keep the pre-prepare that more commits agree with (an equivocating
     * primary cannot make both reach 2f+1). */
    if (c->pp == NULL ||
        cc_count(p, c, m->u.pp.d) > cc_count(p, c, c->pp->u.pp.d)) {
      fl__pbft_smsg_unref(c->pp);
      c->pp = fl__pbft_smsg_ref(m);
    }
  } else if (m->type == FL_PBFT_MSG_COMMIT) {
    if (c->com[m->replica] == NULL) c->com[m->replica] = fl__pbft_smsg_ref(m);
  }
  p->stats.rx_stale++;
}

static void on_pp(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  uint64_t v = m->u.pp.view, s = m->u.pp.seq;
  if (v < p->view) {
    on_old_view(p, m);
    return;
  }
  if (v > p->view) {
    p->stats.rx_out_of_window++;
    return;
  }
  if (p->in_vc) {
    p->stats.rx_stale++;
    return;
  }
  if (m->replica != fl__pbft_primary(p, v)) {
    p->stats.rx_rejected++;
    return;
  }
  if (!window_check(p, s)) return;
  fl__pbft_entry_t *e = fl__pbft_entry(p, s);
  if (e->pp) {
    if (memcmp(e->pp->u.pp.d, m->u.pp.d, DLEN) == 0)
      p->stats.rx_duplicate++;
    else
      p->stats.rx_conflicting++;
    return;
  }
  /* In the normal case a pre-prepare brings its batch (a backup must check
   * the requests before it votes); one without is only usable if we hold
   * that batch already. */
  if (!fl__pbft_attach_batch(p, m)) {
    p->stats.rx_rejected++;
    return;
  }
  if (s > p->last_exec && !inflight_add(p, m->u.pp.batch, s, true)) {
    FL_DEBUG(FL__PBFT_LOG,
             "pre-prepare refused replica=%u view=%llu seq=%llu reason=dup-or-bad-request",
             p->self, (unsigned long long)v, (unsigned long long)s);
    p->stats.rx_rejected++;
    return;
  }
  fl__pbft_accept_pp(p, e, m);
  /* Our own pre-prepare relayed back to us (we lost it in a restart): never
   * propose anything else at that seq in this view. */
  if (m->replica == p->self && p->next_seq <= s) p->next_seq = s + 1;
}

static void on_vote(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  uint64_t v = m->u.vote.view, s = m->u.vote.seq;
  if (v < p->view) {
    on_old_view(p, m);
    return;
  }
  if (v > p->view) {
    p->stats.rx_out_of_window++;
    return;
  }
  if (m->type == FL_PBFT_MSG_PREPARE && m->replica == fl__pbft_primary(p, v)) {
    p->stats.rx_rejected++;
    return;
  }
  if (!window_check(p, s)) return;
  fl__pbft_entry_t *e = fl__pbft_entry(p, s);
  fl__pbft_smsg_t **slot =
      m->type == FL_PBFT_MSG_PREPARE ? &e->prep[m->replica] : &e->com[m->replica];
  if (*slot) {
    if (same_d(*slot, m->u.vote.d))
      p->stats.rx_duplicate++;
    else
      p->stats.rx_conflicting++;
    return;
  }
  *slot = fl__pbft_smsg_ref(m);
  if (e->pp == NULL || !same_d(m, e->pp->u.pp.d)) return;
  if (m->type == FL_PBFT_MSG_PREPARE) {
    e->nprep++;
    check_prepared(p, e);
  } else {
    e->ncom++;
  }
  check_committed(p, e);
}

/* A vote that arrives after its quorum changes nothing: the entry keeps the
 * 2f prepares of its certificate and the 2f+1 commits it executed on. */
bool fl_pbft_redundant(fl_pbft_t *p, const fl_pbft_msg_info_t *mi) {
  bool r = false;
  if (mi->replica >= p->n || mi->replica == p->self) return false;
  if (mi->type == FL_PBFT_MSG_PREPARE || mi->type == FL_PBFT_MSG_COMMIT) {
    /* Not "seq already executed": a NEW-VIEW re-proposes executed seqs, and
     * a replica that executed one must still prepare and commit it in the
     * new view for the others to reach their quorums. */
    if (mi->view != p->view || p->in_vc) return false;
    if (mi->seq <= p->low) {
      r = true; /* below the watermark: dropped as stale anyway */
    } else if (mi->seq <= p->low + p->L) {
      const fl__pbft_entry_t *e = &p->log[mi->seq % p->L];
      r = e->seq == mi->seq && e->view == p->view && e->pp != NULL &&
          (mi->type == FL_PBFT_MSG_PREPARE ? e->prepared : e->committed);
    }
  } else if (mi->type == FL_PBFT_MSG_BLOCK_SIGN) {
    if (mi->number == 0) return false;
    if (mi->number <= p->delivered) {
      r = true;
    } else if (mi->number <= p->delivered + p->nblk) {
      const fl__pbft_blk_t *k = &p->blk[mi->number % p->nblk];
      r = k->number == mi->number && k->built && k->nvalid >= p->q;
    }
  }
  if (r) p->stats.rx_redundant++;
  return r;
}

/* ---------------------------------------------------------- checkpoints */

static fl__pbft_ck_t *ck_at(fl_pbft_t *p, uint64_t seq) {
  if (seq <= p->low || seq > p->low + p->L || seq % p->K != 0) return NULL;
  fl__pbft_ck_t *c = &p->ck[(seq / p->K) % p->nck];
  if (c->seq != seq) {
    for (uint32_t i = 0; i < p->n; i++) {
      fl__pbft_smsg_unref(c->from[i]);
      c->from[i] = NULL;
    }
    c->have_own = false;
    c->seq = seq;
  }
  return c;
}

bool fl__pbft_check_proof(fl_pbft_t *p, fl__pbft_smsg_t *const *proof,
                          uint32_t nproof, uint64_t *seq, uint8_t d[DLEN]) {
  if (nproof < p->q || proof[0]->type != FL_PBFT_MSG_CHECKPOINT) return false;
  uint64_t s = proof[0]->u.ck.seq;
  if (s == 0 || s % p->K != 0) return false;
  uint64_t seen = 0;
  uint32_t good = 0;
  for (uint32_t i = 0; i < nproof; i++) {
    const fl__pbft_smsg_t *m = proof[i];
    if (m->type != FL_PBFT_MSG_CHECKPOINT || m->u.ck.seq != s ||
        memcmp(m->u.ck.d, proof[0]->u.ck.d, DLEN) != 0)
      return false;
    if ((seen >> m->replica) & 1u) continue;
    seen |= 1ull << m->replica;
    good++;
  }
  if (good < p->q) return false;
  *seq = s;
  memcpy(d, proof[0]->u.ck.d, DLEN);
  return true;
}

static void check_stable(fl_pbft_t *p, fl__pbft_ck_t *c) {
  for (uint32_t i = 0; i < p->n; i++) {
    if (c->from[i] == NULL) continue;
    uint32_t k = 0;
    for (uint32_t j = 0; j < p->n; j++)
      if (c->from[j] && memcmp(c->from[j]->u.ck.d, c->from[i]->u.ck.d, DLEN) == 0)
        k++;
    if (k < p->q) continue;
    fl__pbft_smsg_t **proof = fl_calloc(k, sizeof(*proof));
    uint32_t np = 0;
    for (uint32_t j = 0; j < p->n; j++)
      if (c->from[j] && memcmp(c->from[j]->u.ck.d, c->from[i]->u.ck.d, DLEN) == 0)
        proof[np++] = fl__pbft_smsg_ref(c->from[j]);
    uint8_t d[DLEN];
    memcpy(d, c->from[i]->u.ck.d, DLEN);
    fl__pbft_adopt_stable(p, c->seq, d, proof, np);
    for (uint32_t j = 0; j < np; j++) fl__pbft_smsg_unref(proof[j]);
    fl_free(proof);
    return;
  }
}

static void on_checkpoint(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  uint64_t s = m->u.ck.seq;
  if (s % p->K != 0) {
    p->stats.rx_malformed++;
    return;
  }
  if (!window_check(p, s)) return;
  fl__pbft_ck_t *c = ck_at(p, s);
  if (c->from[m->replica]) {
    if (memcmp(c->from[m->replica]->u.ck.d, m->u.ck.d, DLEN) == 0)
      p->stats.rx_duplicate++;
    else
      p->stats.rx_conflicting++;
    return;
  }
  c->from[m->replica] = fl__pbft_smsg_ref(m);
  check_stable(p, c);
}

void fl__pbft_adopt_stable(fl_pbft_t *p, uint64_t seq, const uint8_t d[DLEN],
                           fl__pbft_smsg_t *const *proof, uint32_t nproof) {
  if (seq <= p->low) return;
  fl__pbft_ck_t *own = &p->ck[(seq / p->K) % p->nck];
  if (p->last_exec >= seq && own->seq == seq && own->have_own &&
      memcmp(own->own, d, DLEN) != 0)
    FL_ERROR(FL__PBFT_LOG,
             "state diverged from stable checkpoint replica=%u seq=%llu",
             p->self, (unsigned long long)seq);
  p->low = seq;
  memcpy(p->low_d, d, DLEN);
  for (uint32_t i = 0; i < p->nlow_proof; i++)
    fl__pbft_smsg_unref(p->low_proof[i]);
  fl_free(p->low_proof);
  p->low_proof = fl_calloc(nproof ? nproof : 1, sizeof(*p->low_proof));
  for (uint32_t i = 0; i < nproof; i++)
    p->low_proof[i] = fl__pbft_smsg_ref(proof[i]);
  p->nlow_proof = nproof;
  fl_sbuf_t b = {0};
  fl__pbft_enc_stable(seq, d, proof, nproof, &b);
  fl__pbft_persist(p, FL_PBFT_REC_CHECKPOINT, seq, &b);
  fl_pbft_action_t *a = act_push(p, FL_PBFT_ACT_TRUNCATE, NULL);
  a->seq = seq;
  /* Truncate the log and the checkpoint slots below the new low mark. */
  for (uint32_t i = 0; i < p->L; i++)
    if (p->log[i].seq != 0 && p->log[i].seq <= seq) entry_clear(p, &p->log[i]);
  for (uint32_t i = 0; i < p->nck; i++) {
    fl__pbft_ck_t *c = &p->ck[i];
    if (c->seq != 0 && c->seq <= seq) {
      for (uint32_t j = 0; j < p->n; j++) {
        fl__pbft_smsg_unref(c->from[j]);
        c->from[j] = NULL;
      }
      c->seq = 0;
      c->have_own = false;
    }
  }
  p->stats.checkpoints_stable++;
  FL_DEBUG(FL__PBFT_LOG, "checkpoint stable replica=%u seq=%llu", p->self,
           (unsigned long long)seq);
  if (p->next_seq <= seq) p->next_seq = seq + 1;
  if (p->last_exec < seq) fl__pbft_st_begin(p, seq, d, proof, nproof);
}

/* ------------------------------------------------- execution and blocks */

void fl__pbft_chain(fl_pbft_t *p, uint8_t state[DLEN], uint64_t seq,
                    const uint8_t digest[DLEN]) {
  uint8_t buf[DLEN + 8 + DLEN];
  memcpy(buf, state, DLEN);
  fl_put_be64(buf + DLEN, seq);
  memcpy(buf + DLEN + 8, digest, DLEN);
  p->ops.sha256(p->ops.ctx, FL_BUF(buf, sizeof(buf)), state);
}

static void blk_clear(fl_pbft_t *p, fl__pbft_blk_t *k) {
  fl__pbft_batch_unref(k->batch);
  k->batch = NULL;
  fl_free(k->keep);
  k->keep = NULL;
  fl_sbuf_free(&k->header);
  for (uint32_t i = 0; i < p->n; i++) fl_sbuf_free(&k->sig[i]);
  k->number = 0;
  k->built = k->delivered = false;
  k->valid = k->early = 0;
  k->nvalid = 0;
  k->nkept = 0;
}

/* Adds replica r's signature `sig` of `hash` to block k. `verified`: the
 * codec already checked sig against hash (a BlockSign message); a signature
 * that arrives otherwise (state transfer) is checked here. Either way it only
 * counts when hash is the header hash this replica computed itself. */
static void blk_add_sig(fl_pbft_t *p, fl__pbft_blk_t *k, uint32_t r,
                        const uint8_t hash[DLEN], fl_buf_t sig, bool verified) {
  uint64_t bit = 1ull << r;
  if (k->valid & bit) return;
  if (!k->built) {
    if (k->early & bit) return;
    k->early |= bit;
    memcpy(k->early_hash[r], hash, DLEN);
    k->sig[r].len = 0;
    fl_sbuf_append(&k->sig[r], sig.data, sig.len);
    return;
  }
  if (memcmp(hash, k->hash, DLEN) != 0) {
    FL_DEBUG(FL__PBFT_LOG, "block signature for another header replica=%u from=%u block=%llu",
             p->self, r, (unsigned long long)k->number);
    p->stats.rx_conflicting++;
    return;
  }
  if (!verified && !p->ops.verify_digest(p->ops.ctx, r, k->hash, sig)) {
    p->stats.rx_bad_signature++;
    return;
  }
  k->sig[r].len = 0;
  fl_sbuf_append(&k->sig[r], sig.data, sig.len);
  k->valid |= bit;
  k->nvalid++;
}

static fl__pbft_sig_t *blk_sigs(fl_pbft_t *p, const fl__pbft_blk_t *k,
                                uint32_t *n) {
  fl__pbft_sig_t *s = fl_calloc(p->n, sizeof(*s));
  uint32_t m = 0;
  for (uint32_t i = 0; i < p->n; i++)
    if (k->valid & (1ull << i)) {
      s[m].replica = i;
      s[m].sig = fl_sbuf_view(&k->sig[i]);
      m++;
    }
  *n = m;
  return s;
}

static void checkpoint_own(fl_pbft_t *p, uint64_t seq, const uint8_t state[DLEN]);

static void exq_flush(fl_pbft_t *p) {
  while (p->exq_count > 0) {
    fl__pbft_exrec_t *x = &p->exq[p->exq_head];
    if (x->number != 0 && x->number > p->delivered) break;
    fl__pbft_committed_t ce = {
        .seq = x->seq, .view = x->view, .block_number = x->block_after,
        .timestamp_ms = x->ts,
        .batch = FL_BUF(x->batch->bytes, x->batch->len),
        .dropped = x->dropped, .ndropped = x->ndropped};
    memcpy(ce.state, x->state, DLEN);
    memcpy(ce.head, x->head, DLEN);
    fl__pbft_sig_t *sigs = NULL;
    if (x->number != 0) {
      fl__pbft_blk_t *k = &p->blk[x->number % p->nblk];
      FL_ASSERT(k->number == x->number && k->delivered);
      ce.header = fl_sbuf_view(&k->header);
      sigs = blk_sigs(p, k, &ce.nsig);
      ce.sigs = sigs;
    }
    fl_sbuf_t b = {0};
    fl__pbft_enc_committed(&ce, &b);
    fl_free(sigs);
    fl__pbft_persist(p, FL_PBFT_REC_COMMITTED, x->seq, &b);
    uint64_t seq = x->seq;
    uint8_t st[DLEN];
    memcpy(st, x->state, DLEN);
    fl__pbft_batch_unref(x->batch);
    fl_free(x->dropped);
    p->exq_head = (p->exq_head + 1) % p->exq_cap;
    p->exq_count--;
    if (seq % p->K == 0) checkpoint_own(p, seq, st);
  }
}

static void try_deliver(fl_pbft_t *p) {
  for (;;) {
    uint64_t num = p->delivered + 1;
    fl__pbft_blk_t *k = &p->blk[num % p->nblk];
    if (k->number != num || !k->built || k->nvalid < p->q) break;
    uint32_t ns = 0;
    fl__pbft_sig_t *sigs = blk_sigs(p, k, &ns);
    fl_sbuf_t b = {0};
    fl_sbuf_append(&b, k->hash, DLEN);
    fl__pbft_enc_block(fl_sbuf_view(&k->header), k->batch, k->keep, sigs, ns,
                       k->view, k->seq, k->ts, &b);
    fl_free(sigs);
    size_t len = 0;
    uint8_t *d = fl_sbuf_detach(&b, &len);
    fl_pbft_action_t *a = act_push(p, FL_PBFT_ACT_DELIVER, d);
    a->seq = k->seq;
    a->view = k->view;
    a->block_number = num;
    a->nrequests = k->nkept;
    a->digest = d;
    a->bytes = FL_BUF(d + DLEN, len - DLEN);
    a->timestamp_ms = k->ts;
    k->delivered = true;
    FL_LAT("pbft block_signed r=%u block=%llu seq=%llu", p->self, (unsigned long long)num,
           (unsigned long long)k->seq);
    p->delivered = num;
    p->blk_wait_since = p->now;
    p->stats.blocks_delivered++;
  }
  /* Execution that waited for a free block slot resumes in the caller's
   * fl__pbft_try_execute (every event ends with one): no recursion here. */
  exq_flush(p);
}

/* Forgets the executed records still waiting for their blocks. */
static void exq_drop(fl_pbft_t *p) {
  while (p->exq_count > 0) {
    fl__pbft_exrec_t *x = &p->exq[p->exq_head];
    fl__pbft_batch_unref(x->batch);
    fl_free(x->dropped);
    p->exq_head = (p->exq_head + 1) % p->exq_cap;
    p->exq_count--;
  }
}

/* Requests in flight go back to the queue (front, in order). */
void fl__pbft_requeue_inflight(fl_pbft_t *p) {
  fl__pbft_map_clear(&p->inflight);
  while (p->infl.tail) {
    fl__pbft_preq_t *r = p->infl.tail;
    fl__pbft_plist_remove(&p->infl, r);
    r->inflight_seq = 0;
    fl__pbft_plist_push(&p->queued, r, true);
  }
}

static void exq_push(fl_pbft_t *p, const fl__pbft_exrec_t *x) {
  if (p->exq_count == p->exq_cap) {
    size_t ncap = p->exq_cap ? p->exq_cap * 2 : 64;
    fl__pbft_exrec_t *n = fl_calloc(ncap, sizeof(*n));
    for (size_t i = 0; i < p->exq_count; i++)
      n[i] = p->exq[(p->exq_head + i) % p->exq_cap];
    fl_free(p->exq);
    p->exq = n;
    p->exq_cap = ncap;
    p->exq_head = 0;
  }
  p->exq[(p->exq_head + p->exq_count) % p->exq_cap] = *x;
  p->exq_count++;
}

void fl__pbft_dd_evict(fl_pbft_t *p, fl__pbft_dd_t *s) {
  size_t off = 0;
  for (uint32_t i = 0; i < s->n; i++) {
    fl__pbft_slot_t *sl = fl__pbft_map_get(&p->ddmap, s->ids + off, s->lens[i]);
    if (sl && sl->val == s->seq) fl__pbft_map_del(&p->ddmap, s->ids + off, s->lens[i]);
    off += s->lens[i];
  }
  fl_free(s->ids);
  fl_free(s->lens);
  memset(s, 0, sizeof(*s));
}

/* Our CHECKPOINT for seq, sent once the COMMITTED record of seq (and so of
 * every seq before it, with the blocks they made) has been persisted: a
 * stable checkpoint then means 2f+1 replicas can serve state transfer up to
 * it, at least f+1 of them correct. */
static void checkpoint_own(fl_pbft_t *p, uint64_t seq, const uint8_t state[DLEN]) {
  if (seq <= p->low) return;
  fl__pbft_ck_t *c = ck_at(p, seq);
  if (c) {
    c->have_own = true;
    memcpy(c->own, state, DLEN);
  }
  fl_sbuf_t msg = {0};
  fl__pbft_enc_ckpt(seq, state, &msg);
  fl__pbft_smsg_t *m = fl__pbft_send_own(p, FL_PBFT_TO_ALL, &msg);
  if (m == NULL) return;
  fl__pbft_smsg_unref(p->own_ck);
  p->own_ck = fl__pbft_smsg_ref(m);
  if (c && c->from[p->self] == NULL) {
    c->from[p->self] = m;
    check_stable(p, c);
  } else {
    fl__pbft_smsg_unref(m);
  }
}

/* The requests of b, executed at seq: forget them everywhere. */
void fl__pbft_forget_batch(fl_pbft_t *p, const fl__pbft_batch_t *b, uint64_t seq) {
  for (uint32_t i = 0; i < b->nreq; i++) {
    fl_buf_t tx = b->reqs[i].tx_id;
    fl__pbft_slot_t *sl = fl__pbft_map_get(&p->pending, tx.data, tx.len);
    if (sl) preq_drop(p, sl->ptr);
  }
  inflight_remove(p, b, seq);
}

/* The EXECUTE action for seq, with the state digest after it (p->state). */
void fl__pbft_emit_execute(fl_pbft_t *p, uint64_t seq, uint64_t view,
                           const uint8_t batch_digest[DLEN], uint64_t block, uint32_t nkept,
                           uint32_t ndrop) {
  uint8_t *dig = fl_malloc(2 * DLEN);
  memcpy(dig, batch_digest, DLEN);
  memcpy(dig + DLEN, p->state, DLEN);
  fl_pbft_action_t *a = act_push(p, FL_PBFT_ACT_EXECUTE, dig);
  a->seq = seq;
  a->view = view;
  a->block_number = block;
  a->nrequests = nkept;
  a->nfiltered = ndrop;
  a->digest = dig;
  a->state = dig + DLEN;
}

/* Before a state transfer installs records past a gap (pbft_st.c): the
 * at-most-once window, the COMMITTED records waiting for their blocks and
 * the blocks waiting for signatures all belong to the state left behind. */
void fl__pbft_exec_reset(fl_pbft_t *p) {
  for (uint32_t i = 0; i < p->D; i++)
    if (p->dd[i].seq != 0) fl__pbft_dd_evict(p, &p->dd[i]);
  exq_drop(p);
  for (uint32_t i = 0; i < p->nblk; i++) blk_clear(p, &p->blk[i]);
  /* Requests we saw in pre-prepares of the old state are just held again. */
  fl__pbft_requeue_inflight(p);
}

/* Blocks up to num were taken by record (pbft_st.c): slots that still
 * wait for them (early signatures) are free again. */
void fl__pbft_blk_forget_upto(fl_pbft_t *p, uint64_t num) {
  for (uint32_t i = 0; i < p->nblk; i++) {
    fl__pbft_blk_t *k = &p->blk[i];
    if (k->number != 0 && k->number <= num && !k->delivered) blk_clear(p, k);
  }
}

void fl__pbft_dd_store(fl_pbft_t *p, uint64_t seq, const fl__pbft_batch_t *b,
                       const uint8_t *keep, uint32_t nkept, size_t idbytes) {
  if (nkept == 0) return;
  fl__pbft_dd_t *dd = &p->dd[seq % p->D];
  dd->seq = seq;
  dd->ids = fl_malloc(idbytes);
  dd->lens = fl_calloc(nkept, sizeof(*dd->lens));
  size_t off = 0;
  for (uint32_t i = 0; i < b->nreq; i++) {
    if (!keep[i]) continue;
    fl_buf_t tx = b->reqs[i].tx_id;
    memcpy(dd->ids + off, tx.data, tx.len);
    bool existed = false;
    fl__pbft_slot_t *sl = fl__pbft_map_put(&p->ddmap, dd->ids + off, tx.len, &existed);
    sl->val = seq;
    sl->key = dd->ids + off;
    dd->lens[dd->n++] = (uint32_t)tx.len;
    off += tx.len;
  }
}

bool fl__pbft_execute(fl_pbft_t *p, uint64_t seq, uint64_t view,
                      fl__pbft_batch_t *b, const fl__pbft_sig_t *sigs,
                      uint32_t nsig) {
  FL_ASSERT(seq == p->last_exec + 1);
  uint64_t num = p->last_block + 1;
  fl__pbft_blk_t *k = &p->blk[num % p->nblk];
  if (b->nreq > 0 && k->number != 0 && k->number != num && !k->delivered)
    return false; /* too many blocks still waiting for signatures */

  /* At-most-once: drop tx ids executed within the last D seqs or repeated. */
  fl__pbft_dd_t *dd = &p->dd[seq % p->D];
  if (dd->seq != 0) fl__pbft_dd_evict(p, dd);
  uint8_t *keep = fl_calloc(b->nreq ? b->nreq : 1, 1);
  uint32_t nkept = 0, ndrop = 0;
  uint32_t *dropped = NULL;
  size_t idbytes = 0;
  for (uint32_t i = 0; i < b->nreq; i++) {
    fl_buf_t tx = b->reqs[i].tx_id;
    bool existed = false;
    fl__pbft_slot_t *sl = fl__pbft_map_put(&p->ddmap, tx.data, tx.len, &existed);
    if (existed) {
      if (dropped == NULL) dropped = fl_calloc(b->nreq, sizeof(*dropped));
      dropped[ndrop++] = i;
      continue;
    }
    sl->val = seq;
    keep[i] = 1;
    nkept++;
    idbytes += tx.len;
  }
  /* Re-point the map's keys at the window's own copies. */
  fl__pbft_dd_store(p, seq, b, keep, nkept, idbytes);

  fl__pbft_chain(p, p->state, seq, b->digest);

  fl__pbft_exrec_t x = {.seq = seq, .view = view, .ts = b->timestamp_ms,
                        .batch = fl__pbft_batch_ref(b), .dropped = dropped,
                        .ndropped = ndrop};
  if (nkept > 0) {
    if (k->number != num) {
      blk_clear(p, k);
      k->number = num;
    }
    k->built = true;
    k->seq = seq;
    k->view = view;
    k->ts = b->timestamp_ms;
    k->batch = fl__pbft_batch_ref(b);
    k->keep = keep;
    keep = NULL;
    k->nkept = nkept;
    uint8_t dh[DLEN];
    fl__pbft_block_data_hash(&p->ops, b, k->keep, dh);
    fl__pbft_enc_block_header(num, p->head, dh, &k->header);
    p->ops.sha256(p->ops.ctx, fl_sbuf_view(&k->header), k->hash);
    memcpy(p->head, k->hash, DLEN);
    FL_DEBUG(FL__PBFT_LOG, "block built replica=%u block=%llu seq=%llu view=%llu reqs=%u hash=%02x%02x%02x%02x",
             p->self, (unsigned long long)num, (unsigned long long)seq,
             (unsigned long long)view, nkept, k->hash[0], k->hash[1], k->hash[2], k->hash[3]);
    FL_LAT("pbft block_built r=%u block=%llu seq=%llu", p->self, (unsigned long long)num,
           (unsigned long long)seq);
    if (p->delivered + 1 == num) p->blk_wait_since = p->now;
    p->last_block = num;
    x.number = num;
    /* Signatures that arrived before we built the block. */
    uint64_t early = k->early;
    k->early = 0;
    for (uint32_t r = 0; r < p->n; r++) {
      if (!((early >> r) & 1u)) continue;
      fl_sbuf_t tmp = k->sig[r];
      memset(&k->sig[r], 0, sizeof(k->sig[r]));
      uint8_t h[DLEN];
      memcpy(h, k->early_hash[r], DLEN);
      blk_add_sig(p, k, r, h, fl_sbuf_view(&tmp), true);
      fl_sbuf_free(&tmp);
    }
    for (uint32_t i = 0; i < nsig; i++)
      if (sigs[i].replica < p->n && sigs[i].replica != p->self)
        blk_add_sig(p, k, sigs[i].replica, k->hash, sigs[i].sig, false);
    /* Our own signature of the header hash (a digest: docs/protocol.md
     * section 4), shared with everyone. */
    fl_sbuf_t own = {0};
    if (p->ops.sign_digest(p->ops.ctx, k->hash, &own) == FL_OK &&
        own.len > 0 && own.len <= FL_PBFT_MAX_SIG) {
      fl_sbuf_free(&k->sig[p->self]);
      k->sig[p->self] = own;
      if (!(k->valid & (1ull << p->self))) {
        k->valid |= 1ull << p->self;
        k->nvalid++;
      }
      fl__pbft_sig_t s = {.replica = p->self, .sig = fl_sbuf_view(&own)};
      fl_sbuf_t msg = {0};
      fl__pbft_enc_bsign(seq, num, k->hash, &s, 1, &msg);
      send_unkept(p, FL_PBFT_TO_ALL, &msg);
    } else {
      fl_sbuf_free(&own);
      FL_ERROR(FL__PBFT_LOG, "block sign failed replica=%u block=%llu",
               p->self, (unsigned long long)num);
    }
  }
  fl_free(keep);
  x.block_after = p->last_block;
  memcpy(x.state, p->state, DLEN);
  memcpy(x.head, p->head, DLEN);
  exq_push(p, &x);

  fl__pbft_forget_batch(p, b, seq);
  fl__pbft_emit_execute(p, seq, view, b->digest, nkept ? num : 0, nkept, ndrop);

  /* Pace of execution while requests wait (EWMA of the gaps, 1/8): the
   * request timer allows a slow but progressing primary 4x its pace. */
  if (p->queued.count + p->infl.count > 0 && p->now > p->exec_at &&
      view == p->exec_view && !p->in_vc)
    p->exec_gap = (7 * p->exec_gap + (p->now - p->exec_at)) / 8;
  p->exec_view = view;
  p->last_exec = seq;
  p->exec_at = p->now;
  p->stats.batches_executed++;
  p->stats.requests_executed += nkept;
  p->stats.requests_filtered += ndrop;
  if (!p->in_vc && view == p->view) p->backoff = p->vc_streak = 0;
  try_deliver(p); /* also flushes COMMITTED records and checkpoints */
  return true;
}

void fl__pbft_try_execute(fl_pbft_t *p) {
  for (;;) {
    uint64_t s = p->last_exec + 1;
    if (s <= p->low) return; /* state transfer first */
    fl__pbft_entry_t *e = &p->log[s % p->L];
    fl__pbft_smsg_t *pp = NULL;
    if (e->seq == s && e->view == p->view && e->committed) {
      pp = e->pp;
    } else {
      fl__pbft_cc_t *c = &p->cc[s % p->L];
      if (c->seq == s && c->pp && cc_count(p, c, c->pp->u.pp.d) >= p->q)
        pp = c->pp;
    }
    if (pp == NULL) return;
    if (!fl__pbft_attach_batch(p, pp)) {
      fetch_missing(p);
      return;
    }
    if (!fl__pbft_execute(p, s, pp->u.pp.view, pp->u.pp.batch, NULL, 0))
      return;
  }
}

void fl__pbft_attach_sigs(fl_pbft_t *p, uint64_t seq, const fl__pbft_sig_t *sigs,
                          uint32_t nsig) {
  for (uint64_t b = p->delivered + 1; b <= p->last_block; b++) {
    fl__pbft_blk_t *k = &p->blk[b % p->nblk];
    if (k->number != b || !k->built || k->seq != seq) continue;
    for (uint32_t i = 0; i < nsig; i++)
      if (sigs[i].replica < p->n)
        blk_add_sig(p, k, sigs[i].replica, k->hash, sigs[i].sig, false);
    try_deliver(p);
    return;
  }
}

/* Blocks we built long ago still lack 2f+1 signatures (the BlockSigns were
 * lost and the others' memory of them is gone): fetch the COMMITTED records
 * of their seqs, which carry the signatures, from one replica at a time. */
static void fetch_block_sigs(fl_pbft_t *p) {
  if (p->delivered >= p->last_block ||
      p->now < p->blk_wait_since + p->cfg.resend_ms)
    return;
  uint64_t b = p->delivered + 1;
  fl__pbft_blk_t *k = &p->blk[b % p->nblk];
  if (k->number != b || !k->built) return;
  p->sig_peer = (p->sig_peer + 1) % p->n;
  if (p->sig_peer == p->self) p->sig_peer = (p->sig_peer + 1) % p->n;
  fl_sbuf_t msg = {0};
  fl__pbft_enc_sreq(k->seq, p->last_exec, &msg);
  send_unkept(p, p->sig_peer, &msg);
}

static void on_block_sign(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  uint64_t num = m->u.bs.number;
  if (num <= p->delivered) {
    p->stats.rx_stale++;
    return;
  }
  if (num > p->delivered + p->nblk) {
    p->stats.rx_out_of_window++;
    return;
  }
  fl__pbft_blk_t *k = &p->blk[num % p->nblk];
  if (k->number != num) {
    if (k->number != 0 && !k->delivered) {
      p->stats.rx_out_of_window++;
      return;
    }
    blk_clear(p, k);
    k->number = num;
  }
  for (uint32_t i = 0; i < m->u.bs.nsig; i++)
    blk_add_sig(p, k, m->u.bs.sigs[i].replica, m->u.bs.hash,
                m->u.bs.sigs[i].sig, true);
  try_deliver(p);
}

/* -------------------------------------------------- status and helping */

static void send_bsigs(fl_pbft_t *p, uint32_t to, uint64_t num) {
  fl__pbft_blk_t *k = &p->blk[num % p->nblk];
  if (k->number != num || !k->built || k->nvalid == 0) return;
  uint32_t ns = 0;
  fl__pbft_sig_t *sigs = blk_sigs(p, k, &ns);
  fl_sbuf_t msg = {0};
  fl__pbft_enc_bsign(k->seq, num, k->hash, sigs, ns, &msg);
  fl_free(sigs);
  send_unkept(p, to, &msg);
}

static void status_tick(fl_pbft_t *p) {
  fl_sbuf_t msg = {0};
  fl__pbft_enc_status(p->view, p->in_vc, p->last_exec, p->low, p->delivered,
                      &msg);
  send_unkept(p, FL_PBFT_TO_ALL, &msg);
  if (!p->in_vc) {
    for (uint64_t s = p->low + 1; s <= p->low + p->L; s++) {
      fl__pbft_entry_t *e = &p->log[s % p->L];
      if (e->seq != s || e->view != p->view || e->pp == NULL) continue;
      /* An executed seq is done here unless a NEW-VIEW re-proposed it and
       * it is not committed in this view yet: replicas that did not execute
       * it can only finish it in this view, with our votes (a replica that
       * executes and then stops resending can leave a lagging one short of
       * its quorum for good). */
      if (s <= p->last_exec && e->committed) continue;
      /* Back off (resend, 2x, 4x, 8x): a slow replica must not be buried
       * under copies of what it has not processed yet. */
      uint32_t sh = e->ntx < 3 ? e->ntx : 3;
      if (e->sent_at + (p->cfg.resend_ms << sh) > p->now) continue;
      /* The batch goes again only while 2f backups have not prepared it
       * (the primary has not seen their prepares): a backup that missed it
       * later catches up from a helper's Status answer. */
      if (is_primary(p) && !e->prepared) fl__pbft_send_smsg(p, FL_PBFT_TO_ALL, e->pp);
      if (e->prep[p->self]) fl__pbft_send_smsg(p, FL_PBFT_TO_ALL, e->prep[p->self]);
      if (e->com[p->self]) fl__pbft_send_smsg(p, FL_PBFT_TO_ALL, e->com[p->self]);
      e->sent_at = p->now;
      e->ntx++;
    }
  }
  if (p->own_ck && p->own_ck->u.ck.seq > p->low)
    fl__pbft_send_smsg(p, FL_PBFT_TO_ALL, p->own_ck);
  for (uint64_t b = p->delivered + 1; b <= p->last_block; b++)
    send_bsigs(p, FL_PBFT_TO_ALL, b);
  fetch_block_sigs(p);
  fetch_missing(p);
  fl__pbft_vc_tick(p);
  fl__pbft_forward_queued(p, false);
  fl__pbft_starve_scan(p);
}

static void send_proof(fl_pbft_t *p, uint32_t to) {
  if (p->nlow_proof == 0) return;
  fl_sbuf_t body = {0}, msg = {0};
  for (uint32_t i = 0; i < p->nlow_proof; i++) {
    fl_sbuf_t one = {0};
    fl__pbft_smsg_pack(p->low_proof[i], &one);
    fl__pbft_put_field(&body, 2, fl_sbuf_view(&one));
    fl_sbuf_free(&one);
  }
  fl__pbft_put_field(&msg, FL_PBFT_MSG_STATE_RESPONSE, fl_sbuf_view(&body));
  fl_sbuf_free(&body);
  send_unkept(p, to, &msg);
}

static void on_status(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  uint32_t j = m->replica;
  if (p->help_at[j] != 0 && p->help_at[j] + p->cfg.resend_ms / 2 > p->now)
    return;
  p->help_at[j] = p->now;
  const uint64_t jv = m->u.st.view, jexec = m->u.st.last_exec;
  /* Behind in view: the NEW-VIEW (or our VIEW-CHANGE) brings it along. */
  if (jv < p->view || (jv == p->view && m->u.st.vc && !p->in_vc)) {
    if (!p->in_vc && p->last_nv) fl__pbft_send_smsg(p, j, p->last_nv);
    if (p->in_vc && p->own_vc) fl__pbft_send_smsg(p, j, p->own_vc);
  }
  if (m->u.st.stable < p->low) send_proof(p, j);
  /* Behind in execution: the pre-prepares and every vote we hold, for at
   * most 2K seqs per status (the next status asks for more). */
  if (jexec < p->last_exec) {
    uint64_t from = jexec > p->low ? jexec : p->low;
    uint64_t to = from + 2 * (uint64_t)p->K;
    if (to > p->last_exec) to = p->last_exec;
    for (uint64_t s = from + 1; s <= to && s <= p->low + p->L; s++) {
      fl__pbft_entry_t *e = &p->log[s % p->L];
      if (e->seq != s || e->pp == NULL || e->view != p->view) continue;
      fl__pbft_send_smsg(p, j, e->pp);
      for (uint32_t i = 0; i < p->n; i++) {
        if (e->prep[i] && same_d(e->prep[i], e->pp->u.pp.d))
          fl__pbft_send_smsg(p, j, e->prep[i]);
        if (e->com[i] && same_d(e->com[i], e->pp->u.pp.d))
          fl__pbft_send_smsg(p, j, e->com[i]);
      }
    }
  }
  if (p->own_ck && p->own_ck->u.ck.seq > m->u.st.stable)
    fl__pbft_send_smsg(p, j, p->own_ck);
  uint64_t b0 = m->u.st.delivered;
  if (b0 < p->delivered) {
    if (b0 + p->nblk < p->delivered) b0 = p->delivered - p->nblk;
    for (uint64_t b = b0 + 1; b <= p->delivered; b++) send_bsigs(p, j, b);
  }
}

/* -------------------------------------------------------------- forwards */

static void on_forward(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  fl__pbft_batch_t *b = m->u.fwd.reqs;
  for (uint32_t i = 0; i < b->nreq; i++) {
    fl_buf_t tx = b->reqs[i].tx_id, env = b->reqs[i].envelope;
    /* Cheap checks first: a re-forward of what we hold costs a lookup. */
    if (fl__pbft_map_get(&p->ddmap, tx.data, tx.len) ||
        fl__pbft_map_get(&p->pending, tx.data, tx.len) ||
        p->pending.count >= p->cfg.max_pending)
      continue;
    if (env.len > p->cfg.batch_max_bytes ||
        (p->ops.check_request &&
         !p->ops.check_request(p->ops.ctx, env, tx))) {
      p->stats.requests_refused++;
      continue;
    }
    fl__pbft_preq_t *r = preq_add(p, env, tx);
    /* A replica that is not the primary passes it on once (the sender may
     * be in another view than us). A backup receives forwards as a relay
     * (or the broadcast of a view change): the sender held the request for
     * half the censor timeout already, so it is timed from the other half
     * and not relayed again. */
    if (!is_primary(p) && !p->in_vc) forward_add(p, r);
    else r->fwd_at = p->now;
    if (!is_primary(p)) {
      r->relayed = true;
      if (r->starve_at != NEVER) {
        r->starve_at = p->now + p->cfg.censor_timeout_ms / 2;
        if (r->starve_at < p->starve_min) p->starve_min = r->starve_at;
      }
    }
  }
  fl__pbft_propose(p);
}

/* ------------------------------------------------------------ lifecycle */

static fl_status_t config_check(const fl_pbft_config_t *c,
                                const fl_pbft_ops_t *ops) {
  if (ops == NULL || ops->sign == NULL || ops->verify == NULL ||
      ops->sign_digest == NULL || ops->verify_digest == NULL ||
      ops->sha256 == NULL)
    return FL_ECONFIG;
  if (c->n == 0 || c->n > FL_PBFT_MAX_REPLICAS || (c->n - 1) % 3 != 0 ||
      c->self >= c->n)
    return FL_ECONFIG;
  if (c->checkpoint_interval == 0 || c->log_window < 2 * c->checkpoint_interval ||
      c->log_window % c->checkpoint_interval != 0 || c->log_window > (1u << 16))
    return FL_ECONFIG;
  if (c->max_inflight == 0 || c->batch_max_count == 0 ||
      c->batch_max_bytes == 0 || c->resend_ms == 0 ||
      c->request_timeout_ms == 0 || c->unreachable_timeout_ms == 0 ||
      c->view_change_timeout_ms == 0 ||
      c->view_change_max_backoff > 30 || c->dedup_window == 0 ||
      c->dedup_window > (1u << 24) || c->max_pending == 0 ||
      c->state_chunk_bytes == 0 ||
      (c->censor_timeout_ms != 0 && c->censor_timeout_ms < c->request_timeout_ms))
    return FL_ECONFIG;
  return FL_OK;
}

fl_status_t fl_pbft_new(const fl_pbft_config_t *cfg, const fl_pbft_ops_t *ops,
                        fl_pbft_t **out) {
  *out = NULL;
  if (cfg == NULL) return FL_ECONFIG;
  fl_status_t rc = config_check(cfg, ops);
  if (rc < 0) return rc;
  fl_pbft_t *p = fl_calloc(1, sizeof(*p));
  p->cfg = *cfg;
  p->ops = *ops;
  p->starve_min = NEVER;
  p->n = cfg->n;
  p->f = (cfg->n - 1) / 3;
  p->q = 2 * p->f + 1;
  p->self = cfg->self;
  p->K = cfg->checkpoint_interval;
  p->L = cfg->log_window;
  p->D = cfg->dedup_window;
  p->nblk = p->L;
  p->nck = p->L / p->K;
  if (p->cfg.max_inflight > p->L) p->cfg.max_inflight = p->L;
  uint32_t max_entries = p->L > 1024 ? p->L : 1024;
  p->codec = (fl__pbft_codec_t){.ops = &p->ops, .n = p->n,
                                .max_batch = cfg->batch_max_count,
                                .max_entries = max_entries, .verify = true};
  p->ops.sha256(p->ops.ctx, FL_BUF(NULL, 0), p->codec.null_digest);
  p->own_codec = p->codec;
  p->own_codec.verify = false;
  memcpy(p->genesis, cfg->base_header_hash, DLEN);
  memcpy(p->state, p->genesis, DLEN);
  memcpy(p->head, cfg->base_header_hash, DLEN);
  memcpy(p->low_d, p->genesis, DLEN);
  p->last_block = p->delivered = cfg->base_block_number;
  p->ops.sha256(p->ops.ctx, FL_BUF(NULL, 0), p->null_digest);
  p->vc_from = fl_calloc(p->n, sizeof(*p->vc_from));
  p->help_at = fl_calloc(p->n, sizeof(*p->help_at));
  p->log = fl_calloc(p->L, sizeof(*p->log));
  p->cc = fl_calloc(p->L, sizeof(*p->cc));
  for (uint32_t i = 0; i < p->L; i++) {
    p->log[i].prep = fl_calloc(p->n, sizeof(fl__pbft_smsg_t *));
    p->log[i].com = fl_calloc(p->n, sizeof(fl__pbft_smsg_t *));
    p->cc[i].com = fl_calloc(p->n, sizeof(fl__pbft_smsg_t *));
  }
  p->ck = fl_calloc(p->nck, sizeof(*p->ck));
  for (uint32_t i = 0; i < p->nck; i++)
    p->ck[i].from = fl_calloc(p->n, sizeof(fl__pbft_smsg_t *));
  p->blk = fl_calloc(p->nblk, sizeof(*p->blk));
  for (uint32_t i = 0; i < p->nblk; i++) {
    p->blk[i].sig = fl_calloc(p->n, sizeof(fl_sbuf_t));
    p->blk[i].early_hash = fl_calloc(p->n, DLEN);
  }
  p->dd = fl_calloc(p->D, sizeof(*p->dd));
  /* The map seed only has to differ between deployments, not be secret
   * from replicas: derive it from the configuration's base hash. */
  uint64_t seed = fl_get_be64(cfg->base_header_hash) ^ 0x9e3779b97f4a7c15ull;
  fl__pbft_map_init(&p->ddmap, seed);
  fl__pbft_map_init(&p->pending, seed + 1);
  fl__pbft_map_init(&p->inflight, seed + 2);
  p->next_seq = 1;
  *out = p;
  return FL_OK;
}

void fl_pbft_free(fl_pbft_t *p) {
  if (p == NULL) return;
  fl_pbft_actions_clear(p);
  fl_free(p->acts);
  fl_free(p->act_own);
  for (uint32_t i = 0; i < p->L; i++) {
    entry_clear(p, &p->log[i]);
    fl_free(p->log[i].prep);
    fl_free(p->log[i].com);
    fl__pbft_smsg_unref(p->cc[i].pp);
    for (uint32_t j = 0; j < p->n; j++) fl__pbft_smsg_unref(p->cc[i].com[j]);
    fl_free(p->cc[i].com);
  }
  fl_free(p->log);
  fl_free(p->cc);
  for (uint32_t i = 0; i < p->nck; i++) {
    for (uint32_t j = 0; j < p->n; j++) fl__pbft_smsg_unref(p->ck[i].from[j]);
    fl_free(p->ck[i].from);
  }
  fl_free(p->ck);
  for (uint32_t i = 0; i < p->nblk; i++) {
    blk_clear(p, &p->blk[i]);
    fl_free(p->blk[i].sig);
    fl_free(p->blk[i].early_hash);
  }
  fl_free(p->blk);
  for (uint32_t i = 0; i < p->D; i++) {
    fl_free(p->dd[i].ids);
    fl_free(p->dd[i].lens);
  }
  fl_free(p->dd);
  exq_drop(p);
  fl_free(p->exq);
  while (p->queued.head) preq_drop(p, p->queued.head);
  while (p->infl.head) preq_drop(p, p->infl.head);
  fl__pbft_map_free(&p->pending);
  fl__pbft_map_free(&p->inflight);
  fl__pbft_map_free(&p->ddmap);
  fl_sbuf_free(&p->fwdbuf);
  fl_sbuf_free(&p->relaybuf);
  for (uint32_t i = 0; i < p->n; i++) fl__pbft_smsg_unref(p->vc_from[i]);
  fl_free(p->vc_from);
  fl_free(p->help_at);
  fl__pbft_smsg_unref(p->own_vc);
  fl__pbft_smsg_unref(p->last_nv);
  fl__pbft_smsg_unref(p->own_ck);
  for (uint32_t i = 0; i < p->nlow_proof; i++) fl__pbft_smsg_unref(p->low_proof[i]);
  fl_free(p->low_proof);
  fl__pbft_restore_free(p->rst);
  fl_free(p);
}

fl_status_t fl_pbft_start(fl_pbft_t *p, uint64_t now_ms) {
  if (p->started) return FL_ESTATE;
  p->now = now_ms;
  p->exec_at = now_ms;
  p->blk_wait_since = now_ms;
  if (p->rst) {
    fl_status_t rc = fl__pbft_restore_finish(p);
    if (rc < 0) return rc;
  }
  p->started = true;
  p->status_at = now_ms; /* announce ourselves at the first tick */
  if (p->in_vc) {
    /* Resume the view change we were in (same view, fresh message). */
    uint64_t v = p->view;
    p->view = v - 1;
    p->in_vc = false;
    fl__pbft_start_vc(p, v);
  }
  fl__pbft_try_execute(p);
  FL_INFO(FL__PBFT_LOG,
          "replica started replica=%u n=%u view=%llu low=%llu last_exec=%llu",
          p->self, p->n, (unsigned long long)p->view,
          (unsigned long long)p->low, (unsigned long long)p->last_exec);
  return FL_OK;
}

static void set_now(fl_pbft_t *p, uint64_t now) {
  if (now > p->now) p->now = now;
}

/* Processes one decoded message (consumed) or counts a decode failure. */
static void step_decoded(fl_pbft_t *p, fl__pbft_smsg_t *m, fl_status_t rc) {
  p->stats.rx_messages++;
  if (rc < 0 || m == NULL) {
    if (rc == FL_EBADSIG) p->stats.rx_bad_signature++;
    else if (rc == FL_EPERM) p->stats.rx_non_member++;
    else p->stats.rx_malformed++;
    FL_TRACE(FL__PBFT_LOG, "message dropped replica=%u reason=%s", p->self,
             fl_status_name(rc));
    fl__pbft_smsg_unref(m);
    return;
  }
  /* Our own messages may come back relayed by a replica helping us catch
   * up (our commit is part of a commit certificate); they go through the
   * same checks as anyone's. */
  switch (m->type) {
  case FL_PBFT_MSG_PRE_PREPARE: on_pp(p, m); break;
  case FL_PBFT_MSG_PREPARE:
  case FL_PBFT_MSG_COMMIT: on_vote(p, m); break;
  case FL_PBFT_MSG_CHECKPOINT: on_checkpoint(p, m); break;
  case FL_PBFT_MSG_VIEW_CHANGE: fl__pbft_on_vc(p, m); break;
  case FL_PBFT_MSG_NEW_VIEW: fl__pbft_on_nv(p, m); break;
  case FL_PBFT_MSG_STATE_REQUEST: fl__pbft_on_sreq(p, m); break;
  case FL_PBFT_MSG_STATE_RESPONSE: fl__pbft_on_sresp(p, m); break;
  case FL_PBFT_MSG_FORWARD: on_forward(p, m); break;
  case FL_PBFT_MSG_BLOCK_SIGN: on_block_sign(p, m); break;
  case FL_PBFT_MSG_STATUS: on_status(p, m); break;
  case FL_PBFT_MSG_BATCH_FETCH: on_batch_fetch(p, m); break;
  case FL_PBFT_MSG_BATCH_DATA: on_batch_data(p, m); break;
  }
  fl__pbft_smsg_unref(m);
  fl__pbft_try_execute(p);
  /* An execution may have emptied the pipeline: what waited behind it is
   * cut now rather than at the next tick. */
  if (p->cfg.cut_when_idle && p->queued.count > 0) fl__pbft_propose(p);
  fl__pbft_flush_forwards(p);
}

fl_status_t fl_pbft_step(fl_pbft_t *p, fl_buf_t msg, uint64_t now_ms) {
  if (!p->started) return FL_ESTATE;
  set_now(p, now_ms);
  fl__pbft_smsg_t *m = NULL;
  fl_status_t rc = fl__pbft_decode(&p->codec, msg, &m);
  step_decoded(p, m, rc);
  return FL_OK;
}

fl_status_t fl_pbft_msg_decode(const fl_pbft_t *p, fl_buf_t bytes,
                               fl_pbft_msg_t **out) {
  *out = NULL;
  fl__pbft_smsg_t *m = NULL;
  fl_status_t rc = fl__pbft_decode(&p->codec, bytes, &m);
  if (rc < 0) return rc;
  fl_pbft_msg_t *w = fl_malloc(sizeof(*w));
  w->m = m;
  *out = w;
  return FL_OK;
}

void fl_pbft_msg_free(fl_pbft_msg_t *w) {
  if (w == NULL) return;
  fl__pbft_smsg_unref(w->m);
  fl_free(w);
}

fl_status_t fl_pbft_step_msg(fl_pbft_t *p, fl_pbft_msg_t *w, fl_status_t decode_rc,
                             uint64_t now_ms) {
  fl__pbft_smsg_t *m = NULL;
  if (w) {
    m = w->m;
    fl_free(w);
  }
  if (!p->started) {
    fl__pbft_smsg_unref(m);
    return FL_ESTATE;
  }
  set_now(p, now_ms);
  if (m == NULL && decode_rc >= 0) decode_rc = FL_EMALFORMED;
  step_decoded(p, m, decode_rc);
  return FL_OK;
}

fl_status_t fl_pbft_submit(fl_pbft_t *p, fl_buf_t envelope, fl_buf_t tx_id,
                           uint64_t now_ms) {
  if (!p->started) return FL_ESTATE;
  set_now(p, now_ms);
  if (envelope.len == 0 || envelope.data == NULL || tx_id.len == 0 ||
      tx_id.data == NULL || tx_id.len > FL_PBFT_MAX_TXID ||
      envelope.len > p->cfg.batch_max_bytes)
    return FL_EINVAL;
  if (fl__pbft_map_get(&p->ddmap, tx_id.data, tx_id.len) ||
      fl__pbft_map_get(&p->pending, tx_id.data, tx_id.len)) {
    p->stats.requests_refused++;
    return FL_EEXIST;
  }
  if (p->pending.count >= p->cfg.max_pending) {
    p->stats.requests_refused++;
    return FL_AGAIN;
  }
  fl__pbft_preq_t *r = preq_add(p, envelope, tx_id);
  if (!is_primary(p) || p->in_vc) forward_add(p, r);
  else fl__pbft_propose(p);
  fl__pbft_try_execute(p);
  return FL_OK;
}

static uint64_t oldest_pending(const fl_pbft_t *p) {
  uint64_t t = NEVER;
  if (p->queued.head) t = p->queued.head->arrival;
  if (p->infl.head && p->infl.head->arrival < t) t = p->infl.head->arrival;
  return t;
}

static uint64_t request_deadline(const fl_pbft_t *p) {
  /* As in PBFT, backups time the primary: a primary voting itself out
   * because the whole group is slow would only add view changes. */
  if (p->in_vc || is_primary(p)) return NEVER;
  uint64_t t = oldest_pending(p);
  /* A batch executed but whose block cannot gather 2f+1 signatures is not
   * done either: some replica could not execute it in this view. */
  if (p->delivered < p->last_block && p->blk_wait_since < t)
    t = p->blk_wait_since;
  if (t == NEVER) return p->starve_min;
  /* PBFT restarts the timer whenever a request executes (and install()
   * restarts every held request's timer). A view installed after view
   * changes that ordered nothing gets 2x, 4x, 8x the timeout until it
   * executes a batch: its primary inherits the whole backlog. */
  if (p->exec_at > t) t = p->exec_at;
  uint32_t sh = p->vc_streak < 3 ? p->vc_streak : 3;
  uint64_t to = p->cfg.request_timeout_ms << sh;
  /* Overloaded but progressing (batches execute, slowly): wait 4x the
   * recent gap between executions, at most 8x the configured timeout. */
  uint64_t pace = 4 * p->exec_gap, cap = 8 * p->cfg.request_timeout_ms;
  if (pace > cap) pace = cap;
  if (pace > to) to = pace;
  /* The host saw the primary's connections drop: a crash, most likely. */
  if ((p->unreachable >> fl__pbft_primary(p, p->view)) & 1u &&
      p->cfg.unreachable_timeout_ms < to)
    to = p->cfg.unreachable_timeout_ms;
  /* ... but not past a queued request's censor deadline: executions of
   * other requests restart the timer above, and a primary that orders
   * everything but what the backups hand it would never be replaced. */
  return t + to < p->starve_min ? t + to : p->starve_min;
}

void fl_pbft_peer_reachable(fl_pbft_t *p, uint32_t replica, bool reachable) {
  if (replica >= p->n || replica == p->self) return;
  if (reachable) p->unreachable &= ~(1ull << replica);
  else p->unreachable |= 1ull << replica;
}

fl_status_t fl_pbft_tick(fl_pbft_t *p, uint64_t now_ms) {
  if (!p->started) return FL_ESTATE;
  set_now(p, now_ms);
  if (p->starve_min <= p->now) fl__pbft_starve_scan(p); /* still starved? */
  if (request_deadline(p) <= p->now) {
    bool starved = p->starve_min <= p->now;
    if (starved) {
      p->stats.censor_timeouts++;
      FL_WARN(FL__PBFT_LOG,
              "request starved: held %llu ms by this backup while the primary executed others, "
              "voting view change replica=%u view=%llu primary=%u queued=%zu",
              (unsigned long long)p->cfg.censor_timeout_ms, p->self,
              (unsigned long long)p->view, fl__pbft_primary(p, p->view), p->queued.count);
    }
    /* What timed out: the oldest request, the last execution, the block
     * waiting for signatures (ms ago each; -1 = none). */
    uint64_t old = oldest_pending(p);
    long long req_ms = old == NEVER ? -1 : (long long)(p->now - old);
    long long blk_ms = p->delivered < p->last_block ? (long long)(p->now - p->blk_wait_since) : -1;
    FL_INFO(FL__PBFT_LOG,
            "request timeout, voting view change replica=%u view=%llu pending=%zu "
            "oldest_request_ms=%lld last_exec=%llu exec_ms=%lld delivered=%llu last_block=%llu "
            "block_wait_ms=%lld",
            p->self, (unsigned long long)p->view, p->queued.count + p->infl.count, req_ms,
            (unsigned long long)p->last_exec, (long long)(p->now - p->exec_at),
            (unsigned long long)p->delivered, (unsigned long long)p->last_block, blk_ms);
    fl__pbft_start_vc(p, p->view + 1);
  }
  if (p->in_vc && p->vc_deadline <= p->now) fl__pbft_start_vc(p, p->view + 1);
  fl__pbft_st_tick(p);
  fl__pbft_propose(p);
  if (p->status_at <= p->now) {
    status_tick(p);
    p->status_at = p->now + p->cfg.resend_ms;
  }
  fl__pbft_try_execute(p);
  fl__pbft_flush_forwards(p);
  return FL_OK;
}

uint64_t fl_pbft_next_deadline(const fl_pbft_t *p) {
  if (!p->started) return NEVER;
  uint64_t t = p->status_at;
  if (p->relaybuf.len) t = p->now;
  if (p->fwdbuf.len) {
    uint64_t due = forward_due(p);
    if (due < p->now) due = p->now;
    if (due < t) t = due;
  }
  uint64_t r = request_deadline(p);
  if (r < t) t = r;
  if (p->in_vc && p->vc_deadline < t) t = p->vc_deadline;
  if (p->st.active && p->st.deadline < t) t = p->st.deadline;
  bool room = p->next_seq <= p->low + p->L &&
              p->next_seq <= p->last_exec + p->cfg.max_inflight;
  if (!p->in_vc && is_primary(p) && room && !p->st.active && p->queued.head &&
      cut_due(p) < t)
    t = cut_due(p);
  return t;
}

void fl_pbft_stats(const fl_pbft_t *p, fl_pbft_stats_t *out) {
  *out = p->stats;
}

void fl_pbft_info(const fl_pbft_t *p, fl_pbft_info_t *out) {
  memset(out, 0, sizeof(*out));
  out->view = p->view;
  out->view_change = p->in_vc;
  out->primary = fl__pbft_primary(p, p->view);
  out->low_watermark = p->low;
  out->last_executed = p->last_exec;
  out->last_block = p->last_block;
  out->delivered_block = p->delivered;
  out->pending_requests = p->queued.count + p->infl.count;
  out->state_transfer = p->st.active;
  out->queued_requests = p->queued.count;
  out->inflight_requests = p->infl.count;
  if (out->primary == p->self && !p->in_vc && p->next_seq > p->last_exec + 1)
    out->inflight_seqs = p->next_seq - 1 - p->last_exec;
}
