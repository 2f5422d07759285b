/* SPDX-License-Identifier: Apache-2.0
 *
 * rpc.c: the orderer's RPC side.
 *
 *  - Orderer/Broadcast: calls are collected per loop iteration (uv_check)
 *    into jobs of up to broadcast.batch envelopes; a worker decodes each
 *    envelope and verifies its creator (signature, membership, revocation)
 *    through the MSP; back on the loop the good ones go to fl_pbft_submit
 *    and every call is answered with a BroadcastResponse.
 *    Flow control: a call that finds the replica full (pending_requests +
 *    calls queued or in verification >= broadcast.max_pending) is parked,
 *    oldest first, and holds its connection's reading paused, so a client
 *    that keeps sending is held back by TCP instead of being refused (a
 *    refused closed-loop client would send again at once and the loop
 *    would do nothing but refuse). Parked calls move on to verification as
 *    room appears (after blocks execute); a verified call that the machine
 *    still finds full (on the primary, other replicas' forwards take room
 *    too) waits again, ahead of the rest, without a second verification.
 *    AGAIN is answered only when the wait queue holds broadcast.max_parked
 *    calls or a call waited broadcast.park_timeout (docs/ordering.md, section 17).
 *  - Orderer/Deliver: the SignedSeekInfo is verified on a worker, then
 *    stored blocks stream from the start position; the stream waits for new
 *    blocks (live tail) and pauses on backpressure (on_drain).
 *  - Pbft/Consensus: replica i opens, to every other replica j, one stream
 *    whose request is be32(i); j keeps it and sends all its consensus
 *    messages for i on it, one SignedMessage per frame, with no replies (a
 *    message that meets backpressure is dropped: PBFT retransmits). Links
 *    reconnect with exponential backoff (100 ms .. 2 s) when a replica is
 *    down. With TLS, the opener's client certificate must chain to the TLS
 *    CA of an orderer organisation.
 *  - Block sync: when PBFT reports a block above the store's next number
 *    (a restart lost the tail of the store), blocks are fetched with
 *    Orderer/Deliver from the other replicas, each checked (2f+1 orderer
 *    signatures and the hash link) before it is stored.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/net/lat.h"
#include "common/net/loop.h"
#include "common/protoutil/block.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/proposal.h"
#include "orderer/node/ab.h"
#include "orderer/node/node_int.h"

#define LOG FL__ORD_LOG

/* -------------------------------------------------------------- Broadcast */

typedef struct bcjob_s {
  fl__node_t *n;
  size_t cnt;
  fl_rpc_call_t **calls;
  fl_status_t *st;
  const char **why;
  uint8_t *res;                 /* fl__bc_result_t of each refusal */
  char (*txid)[FL_TXID_HEX_LEN + 1];
} bcjob_t;

static void bc_work(void *arg) {
  bcjob_t *j = arg;
  fl__node_t *n = j->n;
  for (size_t i = 0; i < j->cnt; i++) {
    fl_buf_t req = fl_rpc_call_request(j->calls[i]);
    fl_envelope_t *e = NULL;
    const char *why = "ok";
    fl__bc_result_t res = FL__BC_ACCEPTED;
    fl_status_t rc = FL_OK;
    if (req.len > n->net->pbft.batch_max_bytes) {
      /* No batch could carry it (fl_pbft_submit would refuse it too, with
       * a reason that helps nobody). */
      rc = FL_ETOOBIG;
      res = FL__BC_MALFORMED;
      why = "broadcast: envelope exceeds the batch size limit (pbft.batch_max_bytes)";
    }
    if (rc == FL_OK) {
      rc = fl_envelope_decode(req.data, req.len, &e, &why);
      if (rc < 0) res = FL__BC_MALFORMED;
    }
    if (rc == FL_OK && e->header.type != FL_HDR_ENDORSER_TX) {
      rc = FL_EPERM;
      res = FL__BC_WRONG_TYPE;
      why = "broadcast: only ENDORSER_TRANSACTION envelopes are ordered";
    }
    if (rc == FL_OK && strcmp(e->header.channel, n->net->channel) != 0) {
      rc = FL_EINVAL;
      res = FL__BC_WRONG_CHANNEL;
      why = "broadcast: wrong channel";
    }
    if (rc == FL_OK && n->verify) {
      fl_msp_info_t info;
      rc = fl_envelope_verify_creator(e, n->msp, FL_ROLE_NONE, &info);
      if (rc < 0) {
        why = rc == FL_EBADSIG ? "broadcast: bad creator signature" : info.reason;
        res = rc == FL_EBADSIG ? FL__BC_BAD_SIGNATURE : FL__BC_NOT_MEMBER;
      } else if (info.role != FL_ROLE_CLIENT && info.role != FL_ROLE_ADMIN) {
        /* Transactions come from clients (or admins), as at the gateway:
         * a peer's or an orderer's identity does not submit. */
        rc = FL_EPERM;
        why = "broadcast: the creator's role may not submit transactions (client or admin only)";
        res = FL__BC_NOT_MEMBER;
      }
    }
    if (rc == FL_OK && n->check_tx) {
      /* After the creator, whose refusal says more. Structure only (no
       * signature is checked here): an envelope whose data is not an
       * endorsed Transaction could never be valid at a peer, so it does
       * not take block space. */
      fl_tx_t *tx = NULL;
      rc = fl_tx_decode(e, &tx, &why);
      fl_tx_free(tx);
      if (rc < 0) res = FL__BC_MALFORMED;
    }
    j->res[i] = (uint8_t)res;
    if (rc == FL_OK) memcpy(j->txid[i], e->header.tx_id, sizeof(j->txid[i]));
    j->st[i] = rc;
    j->why[i] = why;
    fl_envelope_free(e);
  }
}

static void bc_reply(fl_rpc_call_t *call, fl_status_t st, const char *why) {
  fl_sbuf_t out = {0};
  fl_ab_broadcast_response_encode(st, st == FL_OK ? "" : why, &out);
  fl_rpc_call_reply(call, FL_OK, fl_sbuf_view(&out));
  fl_sbuf_free(&out);
}

static void bc_flush(fl__node_t *n);
static void bc_unpark(fl__node_t *n);
static void bc_park(fl__node_t *n, fl__bcq_t *q, fl_rpc_call_t *call, const char *txid);

/* Answers a call whose envelope went to the machine with status st. */
static void bc_answer_submit(fl__node_t *n, fl_rpc_call_t *call, fl_status_t st) {
  const char *why = "ok";
  fl__bc_result_t res = FL__BC_ACCEPTED;
  if (st == FL_EEXIST) why = "broadcast: duplicate tx id", res = FL__BC_DUPLICATE;
  else if (st == FL_AGAIN) why = "broadcast: orderer busy, retry", res = FL__BC_BUSY;
  else if (st < 0) why = "broadcast: refused by consensus", res = FL__BC_REFUSED;
  fl__metrics_broadcast(n, res);
  bc_reply(call, st, why);
}

static fl_status_t bc_submit(fl__node_t *n, fl_rpc_call_t *call, const char *txid,
                             uint64_t now) {
  return fl_pbft_submit(n->pbft, fl_rpc_call_request(call), FL_BUF(txid, FL_TXID_HEX_LEN), now);
}

static void bc_done(void *arg, fl_status_t status) {
  bcjob_t *j = arg;
  fl__node_t *n = j->n;
  n->bc_jobs--;
  n->bc_injob -= j->cnt;
  uint64_t now = fl__node_now();
  for (size_t i = 0; i < j->cnt; i++) {
    fl_status_t st = status < 0 ? FL_EUNAVAIL : j->st[i];
    const char *why = status < 0 ? "orderer: shutting down" : j->why[i];
    fl__bc_result_t res = status < 0 ? FL__BC_UNAVAILABLE : (fl__bc_result_t)j->res[i];
    if (st == FL_OK && n->stopping) {
      st = FL_EUNAVAIL;
      why = "orderer: shutting down";
      res = FL__BC_UNAVAILABLE;
    }
    if (st == FL_OK) {
      st = bc_submit(n, j->calls[i], j->txid[i], now);
      FL_LAT("ord bc_submitted r=%u tx=%.16s rc=%d", n->self, j->txid[i], (int)st);
      /* The machine filled up while the envelope was verified (on the
       * primary, other replicas' forwards take room without asking): the
       * verified call waits for room, ahead of the calls not verified. */
      if (st == FL_AGAIN && n->max_parked > 0) {
        FL_DEBUG(LOG, "verified broadcast waits for room parked=%zu", n->park_n);
        bc_park(n, &n->ready, j->calls[i], j->txid[i]);
      } else {
        bc_answer_submit(n, j->calls[i], st);
      }
      continue;
    }
    fl__metrics_broadcast(n, res);
    bc_reply(j->calls[i], st, why);
  }
  fl_free(j->calls);
  fl_free(j->st);
  fl_free(j->why);
  fl_free(j->res);
  fl_free(j->txid);
  fl_free(j);
  if (!n->stopping) {
    fl__node_after_pbft(n);
    bc_unpark(n);
    bc_flush(n);
  }
}

static void bc_flush(fl__node_t *n) {
  while (n->bc_n > 0 && n->bc_jobs < n->bc_workers) {
    size_t k = n->bc_n < n->bc_batch ? n->bc_n : n->bc_batch;
    bcjob_t *j = fl_calloc(1, sizeof(*j));
    j->n = n;
    j->cnt = k;
    j->calls = fl_memdup(n->bc_pend, k * sizeof(*j->calls));
    j->st = fl_calloc(k, sizeof(*j->st));
    j->why = fl_calloc(k, sizeof(*j->why));
    j->res = fl_calloc(k, sizeof(*j->res));
    j->txid = fl_calloc(k, sizeof(*j->txid));
    memmove(n->bc_pend, n->bc_pend + k, (n->bc_n - k) * sizeof(*n->bc_pend));
    n->bc_n -= k;
    n->bc_jobs++;
    n->bc_injob += k;
    if (fl_worker_submit(&n->loop, bc_work, bc_done, j) != FL_OK) {
      bc_work(j);
      bc_done(j, FL_OK);
    }
  }
}

/* Requests the replica holds or is about to submit: what max_pending
 * bounds. n->info is refreshed after every call into the machine. */
static bool bc_room(const fl__node_t *n) {
  return n->info.pending_requests + n->bc_n + n->bc_injob < n->max_pending;
}

static void bc_enqueue(fl__node_t *n, fl_rpc_call_t *call) {
  if (n->bc_n == n->bc_cap) {
    n->bc_cap = n->bc_cap ? n->bc_cap * 2 : 1024;
    n->bc_pend = fl_reallocarray(n->bc_pend, n->bc_cap, sizeof(*n->bc_pend));
  }
  n->bc_pend[n->bc_n++] = call;
}

static void park_unlink(fl__node_t *n, fl__bcpark_t *p) {
  fl__bcq_t *q = p->q;
  if (p->prev) p->prev->nxt = p->nxt;
  else q->head = p->nxt;
  if (p->nxt) p->nxt->prev = p->prev;
  else q->tail = p->prev;
  n->park_n--;
  fl_free(p);
}

/* Takes the oldest call out of q: no cancel callback points to freed
 * memory afterwards. The call keeps its read hold (the caller releases it
 * by answering or explicitly). */
static fl_rpc_call_t *park_pop(fl__node_t *n, fl__bcq_t *q) {
  fl__bcpark_t *p = q->head;
  fl_rpc_call_t *call = p->call;
  fl_rpc_call_on_cancel(call, NULL, NULL);
  park_unlink(n, p);
  return call;
}

/* The client went away (or the server is closing) while the call waited. */
static void park_cancel(fl_rpc_call_t *call, void *arg) {
  fl__bcpark_t *p = arg;
  fl__node_t *n = p->n;
  FL_DEBUG(LOG, "parked broadcast cancelled waited_ms=%llu parked=%zu",
           (unsigned long long)(fl__node_now() - p->since), n->park_n - 1);
  park_unlink(n, p);
  fl_rpc_call_end(call, FL_ECANCELED, NULL);
  fl__metrics_parked(n);
}

/* Appends call to q (n->park, or n->ready with the tx id of a verified
 * call). */
static void bc_park(fl__node_t *n, fl__bcq_t *q, fl_rpc_call_t *call, const char *txid) {
  fl__bcpark_t *p = fl_calloc(1, sizeof(*p));
  p->n = n;
  p->q = q;
  p->call = call;
  p->since = fl__node_now();
  if (txid) memcpy(p->txid, txid, FL_TXID_HEX_LEN);
  p->prev = q->tail;
  if (q->tail) q->tail->nxt = p;
  else q->head = p;
  q->tail = p;
  n->park_n++;
  fl_rpc_call_on_cancel(call, park_cancel, p);
  /* Frames this connection already delivered still arrive (and park);
   * nothing more is read from it until its parked calls are gone. */
  if (fl_rpc_call_pause_reading(call, true)) fl__metrics_read_pause(n);
  fl__metrics_parked(n);
}

/* Verified calls first, as long as the machine takes them; then parked
 * calls, oldest first, to verification while there is room. A connection
 * whose last parked call leaves resumes reading. */
static void bc_unpark(fl__node_t *n) {
  if (n->park_n == 0) return;
  bool submitted = false;
  uint64_t now = fl__node_now();
  while (n->ready.head) {
    fl__bcpark_t *p = n->ready.head;
    fl_status_t st = bc_submit(n, p->call, p->txid, now);
    if (st == FL_AGAIN) break;
    bc_answer_submit(n, park_pop(n, &n->ready), st);
    submitted = true;
  }
  while (n->ready.head == NULL && n->park.head && bc_room(n)) {
    fl_rpc_call_t *call = park_pop(n, &n->park);
    (void)fl_rpc_call_pause_reading(call, false);
    bc_enqueue(n, call);
  }
  fl__metrics_parked(n);
  if (submitted) fl__node_after_pbft(n);
}

/* Refuses the calls of q that waited park_timeout_ms (oldest first, so
 * only the head needs looking at). */
static bool bc_expire_q(fl__node_t *n, fl__bcq_t *q, uint64_t now) {
  bool any = false;
  while (q->head && now - q->head->since >= n->park_timeout_ms) {
    fl_rpc_call_t *call = park_pop(n, q);
    fl__metrics_broadcast(n, FL__BC_BUSY);
    bc_reply(call, FL_AGAIN, "broadcast: orderer busy (waited broadcast.park_timeout), retry");
    any = true;
  }
  return any;
}

/* Runs on every loop iteration; the PBFT timer wakes the loop at least
 * every pbft.resend. */
static void bc_expire(fl__node_t *n) {
  if (n->park_n == 0) return;
  uint64_t now = fl__node_now();
  bool a = bc_expire_q(n, &n->ready, now);
  bool b = bc_expire_q(n, &n->park, now);
  if (a || b) fl__metrics_parked(n);
}

static void cs_flush(fl__node_t *n);

static void on_check(uv_check_t *h) {
  fl__node_t *n = h->data;
  bc_unpark(n); /* room first: a call that can go now is not refused */
  bc_expire(n);
  bc_flush(n);
  cs_flush(n);
}

static void h_broadcast(fl_rpc_call_t *call, void *arg) {
  fl__node_t *n = arg;
  FL_LAT("ord bc_recv r=%u", n->self);
  if (n->stopping) {
    fl__metrics_broadcast(n, FL__BC_UNAVAILABLE);
    bc_reply(call, FL_EUNAVAIL, "orderer: shutting down");
    return;
  }
  /* Admission control before any work: a full replica parks the call (no
   * signature check is spent on what may wait a while) behind those
   * already waiting, and says AGAIN at once only when the wait queue is
   * full too. */
  if (n->park_n > 0 || !bc_room(n)) {
    if (n->park_n < n->max_parked) {
      bc_park(n, &n->park, call, NULL);
      return;
    }
    fl__metrics_broadcast(n, FL__BC_BUSY);
    bc_reply(call, FL_AGAIN, "broadcast: orderer busy, retry");
    return;
  }
  bc_enqueue(n, call);
  if (n->bc_n >= n->bc_batch) bc_flush(n);
}

/* ---------------------------------------------------------------- Deliver */

typedef struct dljob_s {
  fl__node_t *n;
  fl_rpc_call_t *call;
  fl_ab_seek_t seek;
  fl_status_t rc;
  const char *why;
} dljob_t;

static void dl_pump(fl__node_t *n, fl__dstream_t *d);

static void dl_remove(fl__node_t *n, fl__dstream_t *d) {
  if (d->prev) d->prev->nxt = d->nxt;
  else n->streams = d->nxt;
  if (d->nxt) d->nxt->prev = d->prev;
  fl_free(d);
}

static void dl_cancel(fl_rpc_call_t *call, void *arg) {
  fl__dstream_t *d = arg;
  fl__node_t *n = d->n;
  fl_rpc_call_end(call, FL_ECANCELED, NULL);
  dl_remove(n, d);
}

static void dl_drain(fl_rpc_call_t *call, void *arg) {
  (void)call;
  fl__dstream_t *d = arg;
  dl_pump(d->n, d);
}

static void dl_pump(fl__node_t *n, fl__dstream_t *d) {
  fl_sbuf_t blk = {0}, msg = {0};
  while (d->next <= n->height && d->next <= d->stop) {
    if (!fl_rpc_call_writable(d->call)) {
      fl_rpc_call_on_drain(d->call, dl_drain, d);
      goto out;
    }
    if (fl__node_read_block(n, d->next, &blk) != FL_OK) {
      FL_ERROR(LOG, "block missing from store number=%llu", (unsigned long long)d->next);
      fl__metrics_rpc_error(n, FL__M_DELIVER);
      fl_rpc_call_end(d->call, FL_EINTERNAL, "block missing from store");
      dl_remove(n, d);
      goto out;
    }
#ifdef FL_ORDERER_FAULTS
    if (fl__faults_withhold(n, d->next)) goto out; /* silent, stream kept */
    fl_sbuf_t lie = {0};
    if (fl__faults_deliver(n, d->next, d->fault_id, fl_sbuf_view(&blk), &lie)) {
      fl_sbuf_free(&blk);
      blk = lie;
    }
#endif
    msg.len = 0;
    fl_ab_deliver_block_encode(fl_sbuf_view(&blk), &msg);
    fl_status_t rc = fl_rpc_call_send(d->call, fl_sbuf_view(&msg));
    FL_LAT("ord deliver_sent r=%u block=%llu rc=%d", n->self, (unsigned long long)d->next,
           (int)rc);
    if (rc == FL_AGAIN) {
      fl_rpc_call_on_drain(d->call, dl_drain, d);
      goto out;
    }
    if (rc < 0) { /* cancelled: the cancel callback removes it */
      goto out;
    }
    d->next++;
  }
  if (d->next > d->stop) {
    msg.len = 0;
    fl_ab_deliver_status_encode(FL_OK, &msg);
    fl_rpc_call_send(d->call, fl_sbuf_view(&msg));
    fl_rpc_call_end(d->call, FL_OK, NULL);
    dl_remove(n, d);
  }
out:
  fl_sbuf_free(&blk);
  fl_sbuf_free(&msg);
}

void fl__rpc_blocks_durable(fl__node_t *n) {
  fl__dstream_t *d = n->streams;
  while (d) {
    fl__dstream_t *nx = d->nxt;
    dl_pump(n, d);
    d = nx;
  }
}

static void dl_work(void *arg) {
  dljob_t *j = arg;
  fl_buf_t sb, id, sig;
  j->rc = fl_ab_seek_decode(fl_rpc_call_request(j->call), &j->seek, &sb, &id, &sig, &j->why);
  if (j->rc < 0) return;
  fl_msp_info_t info;
  j->rc = fl_msp_verify_signature(j->n->msp, id.data, id.len, sb.data, sb.len, sig.data,
                                  sig.len, FL_ROLE_NONE, &info);
  if (j->rc < 0) j->why = j->rc == FL_EBADSIG ? "deliver: bad signature on seek info" : info.reason;
}

static uint64_t pos_num(fl__node_t *n, fl_ab_pos_kind_t k, uint64_t num) {
  switch (k) {
  case FL_AB_OLDEST: return 0;
  case FL_AB_SPECIFIED: return num;
  default: return n->height;
  }
}

static void dl_done(void *arg, fl_status_t status) {
  dljob_t *j = arg;
  fl__node_t *n = j->n;
  fl_rpc_call_t *call = j->call;
  if (status < 0 || n->stopping) {
    fl_rpc_call_end(call, FL_EUNAVAIL, "orderer: shutting down");
  } else if (j->rc < 0) {
    fl__metrics_rpc_error(n, FL__M_DELIVER);
    fl_rpc_call_end(call, j->rc, j->why);
  } else {
    uint64_t start = pos_num(n, j->seek.start_kind, j->seek.start);
    uint64_t stop = j->seek.has_stop ? pos_num(n, j->seek.stop_kind, j->seek.stop) : UINT64_MAX;
    if (stop < start) {
      fl__metrics_rpc_error(n, FL__M_DELIVER);
      fl_rpc_call_end(call, FL_EINVAL, "deliver: stop before start");
    } else if (j->seek.fail_if_not_ready && start > n->height) {
      fl__metrics_rpc_error(n, FL__M_DELIVER);
      char *m = fl_sprintf("deliver: block %llu not available (height %llu)",
                           (unsigned long long)start, (unsigned long long)n->height);
      fl_rpc_call_end(call, FL_NOTFOUND, m);
      fl_free(m);
    } else {
      fl__dstream_t *d = fl_calloc(1, sizeof(*d));
      d->n = n;
      d->call = call;
      d->next = start;
      d->stop = stop;
#ifdef FL_ORDERER_FAULTS
      d->fault_id = n->fault_streams++;
#endif
      d->nxt = n->streams;
      if (n->streams) n->streams->prev = d;
      n->streams = d;
      fl_rpc_call_on_cancel(call, dl_cancel, d);
      dl_pump(n, d);
    }
  }
  fl_free(j);
}

static void h_deliver(fl_rpc_call_t *call, void *arg) {
  fl__node_t *n = arg;
  dljob_t *j = fl_calloc(1, sizeof(*j));
  j->n = n;
  j->call = call;
  if (fl_worker_submit(&n->loop, dl_work, dl_done, j) != FL_OK) {
    dl_work(j);
    dl_done(j, FL_OK);
  }
}

/* -------------------------------------------------------------- Consensus */

static void oq_clear(fl__link_t *l) {
  for (size_t i = l->oq_head; i < l->oq_len; i++) fl_sbuf_free(&l->oq[i]);
  l->oq_head = l->oq_len = l->oq_bytes = 0;
}

static void cs_cancel(fl_rpc_call_t *call, void *arg) {
  fl__link_t *l = arg;
  if (l->out == call) {
    l->out = NULL;
    oq_clear(l);
  }
  fl_rpc_call_end(call, FL_ECANCELED, NULL);
}

/* Sends what waits in l's queue until it is empty or backpressure again. */
static void oq_drain(fl_rpc_call_t *call, void *arg) {
  fl__link_t *l = arg;
  if (call != l->out) return;
  while (l->oq_head < l->oq_len) {
    fl_sbuf_t *b = &l->oq[l->oq_head];
    fl_status_t rc = fl_rpc_call_send(l->out, fl_sbuf_view(b));
    if (rc == FL_AGAIN) {
      fl_rpc_call_on_drain(l->out, oq_drain, l);
      return;
    }
    if (rc == FL_OK) l->sent++;
    else l->dropped++;
    l->oq_bytes -= b->len;
    fl_sbuf_free(b);
    l->oq_head++;
  }
  l->oq_head = l->oq_len = 0;
}

static void oq_push(fl__link_t *l, fl_buf_t msg) {
  if (l->oq_head > 0 && l->oq_head == l->oq_len) l->oq_head = l->oq_len = 0;
  if (l->oq_len == l->oq_cap) {
    if (l->oq_head > 0) { /* compact */
      memmove(l->oq, l->oq + l->oq_head, (l->oq_len - l->oq_head) * sizeof(*l->oq));
      l->oq_len -= l->oq_head;
      l->oq_head = 0;
    }
    if (l->oq_len == l->oq_cap) {
      l->oq_cap = l->oq_cap ? l->oq_cap * 2 : 64;
      l->oq = fl_reallocarray(l->oq, l->oq_cap, sizeof(*l->oq));
    }
  }
  fl_sbuf_t *b = &l->oq[l->oq_len++];
  memset(b, 0, sizeof(*b));
  fl_sbuf_append(b, msg.data, msg.len);
  l->oq_bytes += msg.len;
}

static bool orderer_org(fl__node_t *n, const char *mspid) {
  for (size_t i = 0; i < n->net->n_orgs; i++)
    if (n->net->orgs[i].is_orderer_org && strcmp(n->net->orgs[i].mspid, mspid) == 0) return true;
  return false;
}

static void h_consensus(fl_rpc_call_t *call, void *arg) {
  fl__node_t *n = arg;
  fl_buf_t req = fl_rpc_call_request(call);
  if (req.len != 4) {
    fl__metrics_rpc_error(n, FL__M_CONSENSUS);
    fl_rpc_call_end(call, FL_EMALFORMED, "consensus: request is be32(replica id)");
    return;
  }
  uint32_t id = fl_get_be32(req.data);
  if (id >= n->nrep || id == n->self) {
    fl__metrics_rpc_error(n, FL__M_CONSENSUS);
    fl_rpc_call_end(call, FL_EPERM, "consensus: not a replica");
    return;
  }
  if (n->tls_on) {
    fl_buf_t der = fl_rpc_call_peer_cert(call);
    fl_cert_t *c = NULL;
    fl_msp_info_t info;
    fl_status_t rc = fl_cert_from_der(der.data, der.len, &c);
    if (rc == FL_OK) rc = fl_msp_validate_cert(n->msp, FL_MSP_TLS, NULL, c, FL_ROLE_NONE, &info);
    bool orderer = rc == FL_OK && orderer_org(n, info.mspid);
    /* The stream carries replica id's messages: its TLS identity must be
     * that replica's node (the same CN as the signing certificate the
     * genesis block names for id), not just any orderer. */
    const char *cn = c ? fl_cert_subject_cn(c) : NULL;
    const char *want = n->ocerts[id] ? fl_cert_subject_cn(n->ocerts[id]) : NULL;
    bool same = orderer && cn && want && strcmp(cn, want) == 0;
    fl_cert_free(c);
    if (!same) {
      FL_WARN(LOG, "consensus stream refused claimed=%u cn=%s", id, fl_rpc_call_peer_cn(call));
      fl__metrics_rpc_error(n, FL__M_CONSENSUS);
      fl_rpc_call_end(call, FL_EPERM, orderer ? "consensus: client is not replica of the claimed id"
                                              : "consensus: client is not an orderer");
      return;
    }
  }
  fl__link_t *l = &n->links[id];
  if (l->out != NULL) {
    fl_rpc_call_t *old = l->out;
    l->out = NULL;
    oq_clear(l);
    fl_rpc_call_end(old, FL_ECANCELED, "replaced");
  }
  l->out = call;
  fl_rpc_call_on_cancel(call, cs_cancel, l);
  FL_INFO(LOG, "consensus stream from replica=%u", id);
}

void fl__rpc_send(fl__node_t *n, uint32_t to, fl_buf_t msg) {
#ifdef FL_ORDERER_FAULTS
  fl_sbuf_t bad = {0}, alt = {0};
  fl_buf_t orig = msg;
  if (fl__faults_corrupt_sig(n, msg, &bad)) msg = orig = fl_sbuf_view(&bad);
  bool equiv = to == FL_PBFT_TO_ALL && fl__faults_equivocate(n, orig, &alt);
  uint32_t nth = 0;
#endif
  for (uint32_t j = 0; j < n->nrep; j++) {
    if (j == n->self || (to != FL_PBFT_TO_ALL && to != j)) continue;
#ifdef FL_ORDERER_FAULTS
    /* The first other replica gets the real pre-prepare, the rest the
     * other one. */
    if (equiv) msg = nth++ == 0 ? orig : fl_sbuf_view(&alt);
#endif
    fl__link_t *l = &n->links[j];
    fl_status_t rc = FL_ECLOSED;
    if (l->out && l->oq_head < l->oq_len) {
      /* Keep the order: behind what already waits. */
      rc = l->oq_bytes + msg.len <= FL__LINK_QMAX ? FL_OK : FL_AGAIN;
      if (rc == FL_OK) oq_push(l, msg);
    } else if (l->out) {
      rc = fl_rpc_call_send(l->out, msg);
      if (rc == FL_AGAIN && msg.len <= FL__LINK_QMAX) {
        oq_push(l, msg);
        fl_rpc_call_on_drain(l->out, oq_drain, l);
        rc = FL_OK;
      }
    }
    if (rc != FL_OK) {
      /* PBFT retransmits what matters; a message over the frame limit
       * never gets through, which an operator must hear about. */
      if (rc == FL_ETOOBIG)
        FL_WARN(LOG, "consensus message over the frame limit dropped to=%u bytes=%zu max=%zu",
                j, msg.len, n->max_msg);
      else
        FL_DEBUG(LOG, "consensus message dropped to=%u bytes=%zu rc=%s", j, msg.len,
                 fl_status_name(rc));
      l->dropped++;
      continue;
    }
    l->sent++;
  }
#ifdef FL_ORDERER_FAULTS
  fl_sbuf_free(&bad);
  fl_sbuf_free(&alt);
#endif
}

/* ---------------------------------------------------------- replica links */

static void link_connect(fl__link_t *l);

static void retry_cb(uv_timer_t *t) { link_connect(t->data); }

static void link_drop(fl__link_t *l, fl_status_t why) {
  fl__node_t *n = l->n;
  fl_rpc_client_t *c = l->client;
  if (c == NULL) return;
  bool was = l->connected;
  l->client = NULL;
  l->stream_open = false;
  l->connected = false;
  if (n->syncing && n->sync_peer == l->id) n->syncing = false;
  fl_rpc_client_close(c, NULL, NULL);
  if (was) {
    FL_INFO(LOG, "replica link down replica=%u rc=%s", l->id, fl_status_name(why));
    fl__metrics_rpc_error(n, FL__M_CONSENSUS);
  }
  if (n->stopping) return;
  /* We receive l->id's messages on this link only: without it we cannot
   * follow that replica (if it is the primary, PBFT votes sooner). */
  fl_pbft_peer_reachable(n->pbft, l->id, false);
  fl__node_rearm(n);
  uv_timer_start(&l->retry, retry_cb, l->backoff_ms, 0);
  l->backoff_ms = l->backoff_ms * 2 > 2000 ? 2000 : l->backoff_ms * 2;
}

/* Consensus messages are decoded and their signatures (every one they
 * carry) checked on worker threads, CS_BATCH messages per job and at most
 * CS_JOBS jobs at once; results are stepped into the machine on the loop
 * in arrival order, so a job that finishes early waits for its
 * predecessors. */
#define CS_BATCH 64
#define CS_JOBS 2

typedef struct fl__csjob_s {
  fl__node_t *n;
  size_t cnt;
  fl_sbuf_t *msgs;
  fl_pbft_msg_t **out;
  fl_status_t *rc;
  bool done;
  struct fl__csjob_s *next;
} csjob_t;

static void cs_work(void *arg) {
  csjob_t *j = arg;
  for (size_t i = 0; i < j->cnt; i++)
    j->rc[i] = fl_pbft_msg_decode(j->n->pbft, fl_sbuf_view(&j->msgs[i]), &j->out[i]);
}

static void cs_job_free(csjob_t *j) {
  for (size_t i = 0; i < j->cnt; i++) {
    fl_sbuf_free(&j->msgs[i]);
    fl_pbft_msg_free(j->out[i]);
  }
  fl_free(j->msgs);
  fl_free(j->out);
  fl_free(j->rc);
  fl_free(j);
}

static void cs_done(void *arg, fl_status_t status) {
  csjob_t *j = arg;
  fl__node_t *n = j->n;
  j->done = true;
  if (status < 0)
    for (size_t i = 0; i < j->cnt; i++) j->rc[i] = FL_ECANCELED;
  n->cs_jobs--;
  bool stepped = false;
  while (n->cs_head && n->cs_head->done) {
    csjob_t *h = n->cs_head;
    n->cs_head = h->next;
    if (n->cs_head == NULL) n->cs_tail = NULL;
    if (!n->stopping) {
      uint64_t now = fl__node_now();
      for (size_t i = 0; i < h->cnt; i++) {
        if (h->rc[i] == FL_ECANCELED) continue;
        fl_pbft_step_msg(n->pbft, h->out[i], h->rc[i], now);
        h->out[i] = NULL;
      }
      stepped = true;
    }
    cs_job_free(h);
  }
  if (stepped) {
    FL_LAT("ord cs_stepped r=%u", n->self);
    fl__node_after_pbft(n);
  }
  if (!n->stopping) cs_flush(n);
}

/* Moves up to k messages from the front of queue q (count *nq) to dst. */
static size_t cs_take(fl_sbuf_t *q, size_t *nq, fl_sbuf_t *dst, size_t k) {
  if (k > *nq) k = *nq;
  if (k == 0) return 0;
  memcpy(dst, q, k * sizeof(*q));
  memmove(q, q + k, (*nq - k) * sizeof(*q));
  *nq -= k;
  return k;
}

/* The first byte of a SignedMessage's inner Message (its oneof tag), from
 * the first bytes only: field 1 (message, tag 0x0A), its length, then the
 * tag. -1 when the bytes do not start that way; the decoder judges those. */
static int inner_tag(fl_buf_t m) {
  size_t off = 1;
  if (m.len < 3 || m.data[0] != 0x0A) return -1;
  for (int i = 0; i < 10 && off < m.len; i++)
    if (!(m.data[off++] & 0x80)) return off < m.len ? m.data[off] : -1;
  return -1;
}

/* A Forward: Message field 9, length-delimited (0x4A). Anything else counts
 * as consensus proper. */
static bool is_forward(fl_buf_t m) { return inner_tag(m) == 0x4A; }

/* Possibly a PREPARE (field 2, 0x12), COMMIT (3, 0x1A) or BLOCK-SIGN (10,
 * 0x52): the only messages fl_pbft_redundant can call redundant. */
static bool maybe_vote(fl_buf_t m) {
  int t = inner_tag(m);
  return t == 0x12 || t == 0x1A || t == 0x52;
}

/* Whether queued message b would change nothing (fl_pbft_redundant: a
 * PREPARE, COMMIT or BLOCK-SIGN whose quorum this replica already has), so
 * it can be dropped before its signature is checked. Asked as late as
 * possible, as the message is put in a job, so that the votes stepped
 * meanwhile count. Only small messages are peeked (a vote is a few hundred
 * bytes). */
#define CS_PEEK_MAX 4096u

static bool cs_redundant(fl__node_t *n, const fl_sbuf_t *b) {
  fl_pbft_msg_info_t mi;
  return b->len <= CS_PEEK_MAX && maybe_vote(fl_sbuf_view(b)) &&
         fl_pbft_msg_peek(fl_sbuf_view(b), &mi) == FL_OK && fl_pbft_redundant(n->pbft, &mi);
}

/* cs_take for the consensus queue: up to k messages that are not
 * redundant; the redundant ones met on the way are freed. */
static size_t cs_take_needed(fl__node_t *n, fl_sbuf_t *dst, size_t k) {
  if (n->cs_n == 0) return 0; /* cs_pend may still be NULL */
  size_t i = 0, got = 0;
  for (; i < n->cs_n && got < k; i++) {
    if (cs_redundant(n, &n->cs_pend[i])) {
      fl_sbuf_free(&n->cs_pend[i]);
      continue;
    }
    dst[got++] = n->cs_pend[i];
  }
  if (i < n->cs_n) memmove(n->cs_pend, n->cs_pend + i, (n->cs_n - i) * sizeof(*n->cs_pend));
  n->cs_n -= i;
  return got;
}

/* Consensus messages proper go before forwarded client requests: under
 * load a NEW-VIEW or a COMMIT must not wait behind megabytes of requests. */
static void cs_flush(fl__node_t *n) {
  while (n->cs_n + n->cs_nb > 0 && n->cs_jobs < CS_JOBS && !n->stopping) {
    csjob_t *j = fl_calloc(1, sizeof(*j));
    j->n = n;
    j->msgs = fl_calloc(CS_BATCH, sizeof(*j->msgs));
    size_t k = cs_take_needed(n, j->msgs, CS_BATCH);
    k += cs_take(n->cs_bulk, &n->cs_nb, j->msgs + k, CS_BATCH - k);
    if (k == 0) { /* all redundant */
      fl_free(j->msgs);
      fl_free(j);
      continue;
    }
    j->cnt = k;
    j->out = fl_calloc(k, sizeof(*j->out));
    j->rc = fl_calloc(k, sizeof(*j->rc));
    if (n->cs_tail) n->cs_tail->next = j;
    else n->cs_head = j;
    n->cs_tail = j;
    n->cs_jobs++;
    if (fl_worker_submit(&n->loop, cs_work, cs_done, j) != FL_OK) {
      cs_work(j);
      cs_done(j, FL_OK);
    }
  }
}

static void link_msg(void *arg, fl_buf_t msg) {
  fl__link_t *l = arg;
  fl__node_t *n = l->n;
  if (n->stopping || msg.len == 0) return;
  fl_sbuf_t *b;
#ifdef FL_ORDERER_FAULTS
  if (n->fault_censor && is_forward(msg)) return; /* what others hand it is never ordered */
#endif
  if (is_forward(msg)) {
    if (n->cs_nb == n->cs_capb) {
      n->cs_capb = n->cs_capb ? n->cs_capb * 2 : 256;
      n->cs_bulk = fl_reallocarray(n->cs_bulk, n->cs_capb, sizeof(*n->cs_bulk));
    }
    b = &n->cs_bulk[n->cs_nb++];
  } else {
    if (n->cs_n == n->cs_cap) {
      n->cs_cap = n->cs_cap ? n->cs_cap * 2 : 256;
      n->cs_pend = fl_reallocarray(n->cs_pend, n->cs_cap, sizeof(*n->cs_pend));
    }
    b = &n->cs_pend[n->cs_n++];
  }
  memset(b, 0, sizeof(*b));
  fl_sbuf_append(b, msg.data, msg.len);
  FL_LAT("ord cs_recv r=%u from=%u bytes=%zu", n->self, l->id, msg.len);
  if (n->cs_n + n->cs_nb >= CS_BATCH) cs_flush(n);
}

static void link_end(void *arg, fl_status_t st, const char *errmsg) {
  fl__link_t *l = arg;
  if (!l->stream_open) return;
  l->stream_open = false;
  FL_DEBUG(LOG, "consensus stream ended replica=%u rc=%s err=%s", l->id, fl_status_name(st),
           errmsg ? errmsg : "");
  link_drop(l, st);
}

static void link_on_connect(fl_rpc_client_t *c, fl_status_t st, void *arg) {
  fl__link_t *l = arg;
  if (c != l->client) return;
  if (st < 0) {
    link_drop(l, st);
    return;
  }
  uint8_t id[4];
  fl_put_be32(id, l->n->self);
  l->connected = true;
  l->backoff_ms = 100;
  l->stream_open = true;
  fl_status_t rc = fl_rpc_client_stream(c, "Pbft/Consensus", FL_BUF(id, 4), 0, link_msg,
                                        link_end, l, NULL);
  if (rc < 0) {
    l->stream_open = false;
    link_drop(l, rc);
    return;
  }
  FL_INFO(LOG, "replica link up replica=%u", l->id);
  fl_pbft_peer_reachable(l->n->pbft, l->id, true);
  fl__node_rearm(l->n);
}

static void link_on_disconnect(fl_rpc_client_t *c, fl_status_t st, void *arg) {
  fl__link_t *l = arg;
  if (c != l->client) return;
  link_drop(l, st);
}

static void link_connect(fl__link_t *l) {
  fl__node_t *n = l->n;
  if (n->stopping || l->client != NULL) return;
  fl_tls_config_t tls = n->tls_srv;
  tls.server_name = l->host;
  fl_rpc_client_opts_t o = {.host = l->host, .port = l->port, .tls = n->tls_on ? &tls : NULL,
                            .max_frame = n->max_msg + 4096, .connect_timeout_ms = 2000,
                            .on_connect = link_on_connect, .on_disconnect = link_on_disconnect,
                            .arg = l};
  char *err = NULL;
  fl_status_t rc = fl_rpc_client_new(&n->loop, &o, &l->client, &err);
  if (rc < 0) {
    FL_ERROR(LOG, "replica link setup failed replica=%u rc=%s err=%s", l->id, fl_status_name(rc),
             err ? err : "");
    fl_free(err);
    l->client = NULL;
    uv_timer_start(&l->retry, retry_cb, 2000, 0);
  }
}

/* ------------------------------------------------------------- block sync */

static void sync_start(fl__node_t *n);

static void sync_msg(void *arg, fl_buf_t msg) {
  fl__node_t *n = arg;
  bool isb = false;
  fl_buf_t bb;
  fl_status_t st;
  if (!n->syncing || n->stopping) return;
  if (fl_ab_deliver_decode(msg, &isb, &bb, &st) != FL_OK || !isb) return;
  fl_ab_block_t b;
  const char *why = "malformed";
  fl_status_t rc = fl_ab_block_parse(bb, &b, NULL, NULL);
  if (rc == FL_OK && b.number <= n->qheight) return;
  if (rc == FL_OK && (b.number != n->qheight + 1 || memcmp(b.prev_hash, n->qhash, 32) != 0)) {
    rc = FL_ECORRUPT;
    why = "does not link to the stored chain";
  }
  if (rc == FL_OK) {
    /* Exactly what a peer checks (common/protoutil): data hash, header
     * hash, 2f+1 orderer signatures with the genesis keys. */
    fl_block_t *blk = NULL;
    rc = fl_block_decode(bb.data, bb.len, &blk, &why);
    if (rc == FL_OK)
      rc = fl_block_verify_signatures(blk, n->verifiers, n->nrep, n->f, NULL, NULL, &why);
    fl_block_free(blk);
  }
  if (rc < 0) {
    FL_WARN(LOG, "block sync refused a block peer=%u rc=%s reason=%s", n->sync_peer,
            fl_status_name(rc), why);
    if (n->syncing) fl_rpc_client_cancel(n->links[n->sync_peer].client, n->sync_call);
    return;
  }
  fl__node_queue_block(n, b.number, b.header_hash, bb);
  FL_DEBUG(LOG, "block synced number=%llu peer=%u", (unsigned long long)b.number, n->sync_peer);
  if (n->qheight >= n->sync_target) {
    FL_INFO(LOG, "block sync done height=%llu peer=%u", (unsigned long long)n->qheight,
            n->sync_peer);
    fl_rpc_client_cancel(n->links[n->sync_peer].client, n->sync_call);
  }
}

static void sync_end(void *arg, fl_status_t st, const char *errmsg) {
  fl__node_t *n = arg;
  (void)errmsg;
  if (!n->syncing) return;
  n->syncing = false;
  if (st < 0 && st != FL_ECANCELED)
    FL_DEBUG(LOG, "block sync stream ended peer=%u rc=%s", n->sync_peer, fl_status_name(st));
  n->sync_peer = (n->sync_peer + 1) % n->nrep;
  if (!n->stopping && n->qheight < n->sync_target) sync_start(n);
}

static void sync_start(fl__node_t *n) {
  if (n->syncing || n->stopping) return;
  for (uint32_t k = 0; k < n->nrep; k++) {
    uint32_t j = (n->sync_peer + k) % n->nrep;
    fl__link_t *l = &n->links[j];
    if (j == n->self || l->client == NULL || !l->connected) continue;
    fl_ab_seek_t s = {.start_kind = FL_AB_SPECIFIED, .start = n->qheight + 1};
    fl_sbuf_t req = {0};
    if (fl_ab_seek_encode(&s, fl_sbuf_view(&n->identity), n->signer, &req) != FL_OK) {
      fl_sbuf_free(&req);
      return;
    }
    n->sync_peer = j;
    n->syncing = true;
    fl_status_t rc = fl_rpc_client_stream(l->client, "Orderer/Deliver", fl_sbuf_view(&req), 0,
                                          sync_msg, sync_end, n, &n->sync_call);
    fl_sbuf_free(&req);
    if (rc == FL_OK) {
      FL_INFO(LOG, "block sync started from=%llu target=%llu peer=%u",
              (unsigned long long)(n->qheight + 1), (unsigned long long)n->sync_target, j);
      return;
    }
    n->syncing = false;
  }
}

void fl__rpc_sync_want(fl__node_t *n, uint64_t target) {
  if (target > n->sync_target) n->sync_target = target;
  if (n->qheight < n->sync_target) sync_start(n);
}

/* --------------------------------------------------------------- lifecycle */

static void srv_closed(fl_rpc_server_t *srv, void *arg) {
  (void)srv;
  fl__node_t *n = arg;
  n->srv = NULL;
}

fl_status_t fl__rpc_start(fl__node_t *n) {
  n->ca_files[0] = n->tls_roots;
  n->tls_srv = (fl_tls_config_t){.cert_file = n->tls_cert, .key_file = n->tls_key,
                                 .ca_files = n->ca_files, .n_ca_files = 1};
  fl_rpc_server_opts_t so = {.host = n->listen_host, .port = n->listen_port,
                             .tls = n->tls_on ? &n->tls_srv : NULL,
                             .max_frame = n->max_msg + 4096, .max_calls = 65536,
                             .write_hwm = 16u << 20};
  char *err = NULL;
  fl_status_t rc = fl_rpc_server_new(&n->loop, &so, &n->srv, &err);
  if (rc == FL_OK) {
    fl_rpc_server_handle(n->srv, "Orderer/Broadcast", FL_RPC_UNARY, h_broadcast, n);
    fl_rpc_server_handle(n->srv, "Orderer/Deliver", FL_RPC_SERVER_STREAM, h_deliver, n);
    fl_rpc_server_handle(n->srv, "Pbft/Consensus", FL_RPC_SERVER_STREAM, h_consensus, n);
    rc = fl_rpc_server_start(n->srv);
    if (rc < 0) err = fl_sprintf("cannot listen on %s:%u", n->listen_host, n->listen_port);
  }
  if (rc < 0) {
    FL_ERROR(LOG, "rpc server failed rc=%s err=%s", fl_status_name(rc), err ? err : "");
    fl_free(err);
    return rc;
  }
  uv_check_init(&n->loop, &n->check);
  n->check.data = n;
  uv_check_start(&n->check, on_check);
  n->links = fl_calloc(n->nrep, sizeof(*n->links));
  for (uint32_t j = 0; j < n->nrep; j++) {
    fl__link_t *l = &n->links[j];
    const fl_net_orderer_t *o = fl_netconfig_orderer(n->net, j);
    l->n = n;
    l->id = j;
    l->host = (char *)(uintptr_t)o->host;
    l->port = (uint16_t)o->port;
    l->backoff_ms = 100;
    uv_timer_init(&n->loop, &l->retry);
    l->retry.data = l;
    if (j != n->self) link_connect(l);
  }
  return FL_OK;
}

void fl__rpc_close(fl__node_t *n) {
  while (n->ready.head) bc_reply(park_pop(n, &n->ready), FL_EUNAVAIL, "orderer: shutting down");
  while (n->park.head) bc_reply(park_pop(n, &n->park), FL_EUNAVAIL, "orderer: shutting down");
  fl__metrics_parked(n);
  for (size_t i = 0; i < n->bc_n; i++) bc_reply(n->bc_pend[i], FL_EUNAVAIL, "orderer: shutting down");
  n->bc_n = 0;
  for (size_t i = 0; i < n->cs_n; i++) fl_sbuf_free(&n->cs_pend[i]);
  for (size_t i = 0; i < n->cs_nb; i++) fl_sbuf_free(&n->cs_bulk[i]);
  n->cs_n = n->cs_nb = 0; /* jobs in flight free themselves in cs_done */
  if (n->links) {
    for (uint32_t j = 0; j < n->nrep; j++) {
      fl__link_t *l = &n->links[j];
      uv_timer_stop(&l->retry);
      uv_close((uv_handle_t *)&l->retry, NULL);
      link_drop(l, FL_ECANCELED);
      oq_clear(l);
    }
  }
  if (n->check.loop != NULL && !uv_is_closing((uv_handle_t *)&n->check))
    uv_close((uv_handle_t *)&n->check, NULL);
  if (n->srv) fl_rpc_server_close(n->srv, srv_closed, n);
}
