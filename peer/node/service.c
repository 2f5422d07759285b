/* SPDX-License-Identifier: Apache-2.0
 *
 * service.c: the peer's own RPC services.
 *
 *   Peer/Endorse, Peer/Evaluate   SignedProposal -> ProposalResponse, run by
 *                                 the endorser on a worker thread;
 *   Peer/Deliver                  SignedSeekInfo (signature checked on a
 *                                 worker) -> stream of DeliverResponse with
 *                                 the committed block bytes (validation
 *                                 codes included), read in batches on
 *                                 workers, paced by the connection's
 *                                 backpressure, then a live tail;
 *   Peer/GetBlock                 GetBlockRequest -> Block bytes;
 *   Peer/GetTransaction           GetTransactionRequest -> ProcessedTransaction;
 *   Peer/GetBlob                  GetBlobRequest -> GetBlobResponse;
 *   Peer/ChainInfo                (empty) -> ChainInfo.
 * Every caller has passed mutual TLS with a certificate of an
 * organisation of the network; the queries disclose what every member's
 * ledger holds anyway.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/net/loop.h"
#include "common/protoutil/block.h"
#include "fl/peer/proposal.pb-c.h"
#include "peer/node/node_int.h"
#include "peer/node/wire.h"

#define LOG "peer"
#define DELIVER_BATCH 16

static void pack(const ProtobufCMessage *m, fl_sbuf_t *out) {
  out->len = 0;
  size_t n = protobuf_c_message_get_packed_size(m);
  fl_sbuf_reserve(out, n + 1);
  out->len = protobuf_c_message_pack(m, out->data);
}

static void reply(fl__peer_t *p, fl_rpc_call_t *call, fl_status_t st, const char *err,
                  fl_buf_t payload) {
  if (st < 0) {
    fl__peer_rpc_error(p, fl_rpc_call_method(call));
    fl_rpc_call_end(call, st, err);
  } else {
    fl_rpc_call_reply(call, FL_OK, payload);
  }
}

/* -------------------------------------------------------- Endorse, Evaluate */

typedef struct ejob_s {
  fl__peer_t *p;
  fl_rpc_call_t *call;
  size_t skip; /* bytes before the SignedProposal (Peer/EndorseAt: 8) */
  bool endorse;
  fl_sbuf_t out;
  fl_status_t rc;
  fl_endorse_result_t res;
  uint64_t t0;
} ejob_t;

static void e_work(void *arg) {
  ejob_t *j = arg;
  fl_buf_t req = fl_rpc_call_request(j->call);
  j->rc = fl_endorser_process(j->p->endorser, FL_BUF(req.data + j->skip, req.len - j->skip),
                              j->endorse, &j->out, &j->res);
}

static void e_done(void *arg, fl_status_t st) {
  ejob_t *j = arg;
  fl__peer_t *p = j->p;
  p->jobs--;
  if (st < 0) j->rc = FL_EUNAVAIL;
  if (j->endorse && j->res.endorsed) fl_histogram_observe_since(p->m.endorse_s, 0, j->t0);
  reply(p, j->call, j->rc, "endorser failed", fl_sbuf_view(&j->out));
  fl_sbuf_free(&j->out);
  fl_free(j);
}

static void e_start(fl__peer_t *p, fl_rpc_call_t *call, size_t skip, bool endorse,
                    uint64_t t0) {
  ejob_t *j = fl_calloc(1, sizeof(*j));
  j->p = p;
  j->call = call;
  j->skip = skip;
  j->endorse = endorse;
  j->t0 = t0;
  p->jobs++;
  if (fl__job_submit(p, e_work, e_done, j) != FL_OK) {
    p->jobs--;
    fl_free(j);
    reply(p, call, FL_EUNAVAIL, "no worker", (fl_buf_t){0});
  }
}

static void h_endorse(fl_rpc_call_t *call, void *arg) {
  e_start(arg, call, 0, strcmp(fl_rpc_call_method(call), "Peer/Endorse") == 0, fl_mono_ns());
}

/* Peer/EndorseAt: be64(height) || SignedProposal, sent by a gateway that
 * has committed `height` blocks. A proposal simulated here below that
 * height would read older state than the gateway's own endorsement (a
 * round that does not exist yet, fewer updates to close): the two
 * endorsements would disagree and the client would have to try again. So
 * the request waits, on the loop, until this peer has committed that
 * height, for at most FL__ENDORSE_WAIT_MS (then it runs at whatever height
 * this peer has, as Peer/Endorse does). */
#define FL__ENDORSE_WAIT_MS 2000

typedef struct fl__eparked_s {
  struct fl__eparked_s *next;
  fl__peer_t *p;
  fl_rpc_call_t *call;
  uint64_t min_height, t0;
  uv_timer_t timer;
} eparked_t;

static void ep_closed(uv_handle_t *h) { fl_free(h->data); }

/* Unlinks e and frees it once its timer handle is closed. */
static void ep_drop(eparked_t *e) {
  for (eparked_t **pp = &e->p->eparked; *pp != NULL; pp = &(*pp)->next)
    if (*pp == e) {
      *pp = e->next;
      break;
    }
  uv_timer_stop(&e->timer);
  uv_close((uv_handle_t *)&e->timer, ep_closed);
}

/* Runs the parked request now (height reached or waited long enough). */
static void ep_run(eparked_t *e) {
  fl_rpc_call_on_cancel(e->call, NULL, NULL);
  e_start(e->p, e->call, 8, true, e->t0);
  ep_drop(e);
}

static void ep_timeout(uv_timer_t *t) {
  eparked_t *e = t->data;
  FL_DEBUG(LOG, "endorse-at: height %llu not reached in %u ms (at %llu): endorsing anyway",
           (unsigned long long)e->min_height, (unsigned)FL__ENDORSE_WAIT_MS,
           (unsigned long long)e->p->height);
  ep_run(e);
}

static void ep_cancel(fl_rpc_call_t *call, void *arg) {
  eparked_t *e = arg;
  reply(e->p, call, FL_ECANCELED, "cancelled", (fl_buf_t){0});
  ep_drop(e);
}

static void h_endorse_at(fl_rpc_call_t *call, void *arg) {
  fl__peer_t *p = arg;
  fl_buf_t req = fl_rpc_call_request(call);
  if (req.len < 8) {
    reply(p, call, FL_EMALFORMED, "EndorseAt: request shorter than its height", (fl_buf_t){0});
    return;
  }
  uint64_t h = 0;
  for (int i = 0; i < 8; i++) h = h << 8 | req.data[i];
  if (p->height >= h || p->stopping) {
    e_start(p, call, 8, true, fl_mono_ns());
    return;
  }
  eparked_t *e = fl_calloc(1, sizeof(*e));
  e->p = p;
  e->call = call;
  e->min_height = h;
  e->t0 = fl_mono_ns();
  uv_timer_init(&p->loop, &e->timer);
  e->timer.data = e;
  uv_timer_start(&e->timer, ep_timeout, FL__ENDORSE_WAIT_MS, 0);
  fl_rpc_call_on_cancel(call, ep_cancel, e);
  e->next = p->eparked;
  p->eparked = e;
}

/* A block was committed: run the parked requests whose height is reached. */
static void ep_committed(fl__peer_t *p) {
  eparked_t *e = p->eparked;
  while (e != NULL) {
    eparked_t *nx = e->next;
    if (p->height >= e->min_height) ep_run(e);
    e = nx;
  }
}

/* ------------------------------------------------------------ unary queries */

typedef enum qkind_e { Q_BLOCK, Q_TX, Q_BLOB, Q_INFO } qkind_t;

typedef struct qjob_s {
  fl__peer_t *p;
  fl_rpc_call_t *call;
  qkind_t kind;
  fl_sbuf_t out;
  fl_status_t rc;
  const char *err;
} qjob_t;

static void q_block(qjob_t *j) {
  fl_buf_t req = fl_rpc_call_request(j->call);
  Fl__Peer__GetBlockRequest *r = fl__peer__get_block_request__unpack(NULL, req.len, req.data);
  if (r == NULL) {
    j->rc = FL_EMALFORMED;
    j->err = "GetBlock: request does not decode";
    return;
  }
  j->rc = fl_ledger_block_get(j->p->ledger, NULL, r->number, &j->out, NULL);
  if (j->rc == FL_NOTFOUND) j->err = "GetBlock: no such block";
  fl__peer__get_block_request__free_unpacked(r, NULL);
}

static void q_tx(qjob_t *j) {
  fl_buf_t req = fl_rpc_call_request(j->call);
  Fl__Peer__GetTransactionRequest *r =
      fl__peer__get_transaction_request__unpack(NULL, req.len, req.data);
  fl_block_t *b = NULL;
  fl_sbuf_t raw = {0};
  if (r == NULL || r->tx_id == NULL || r->tx_id[0] == '\0') {
    j->rc = FL_EMALFORMED;
    j->err = "GetTransaction: request does not decode or has no tx id";
    goto out;
  }
  fl_ledger_txloc_t loc;
  j->rc = fl_ledger_tx_get(j->p->ledger, NULL, FL_BUF_STR(r->tx_id), &loc);
  if (j->rc == FL_NOTFOUND) j->err = "GetTransaction: no such transaction";
  if (j->rc < 0) goto out;
  if ((j->rc = fl_ledger_block_get(j->p->ledger, NULL, loc.block, &raw, NULL)) < 0 ||
      (j->rc = fl_block_decode(raw.data, raw.len, &b, &j->err)) < 0)
    goto out;
  if (loc.tx >= b->n_envelopes) {
    j->rc = FL_ECORRUPT;
    j->err = "GetTransaction: index points past the block";
    goto out;
  }
  Fl__Peer__ProcessedTransaction pt;
  fl__peer__processed_transaction__init(&pt);
  pt.envelope.data = (uint8_t *)(uintptr_t)b->envelopes[loc.tx].data;
  pt.envelope.len = b->envelopes[loc.tx].len;
  pt.validation_code = (Fl__Common__TxValidationCode)loc.code;
  pt.block_num = loc.block;
  pt.tx_num = loc.tx;
  pack(&pt.base, &j->out);
out:
  if (r) fl__peer__get_transaction_request__free_unpacked(r, NULL);
  fl_block_free(b);
  fl_sbuf_free(&raw);
}

static void q_blob(qjob_t *j) {
  fl_buf_t req = fl_rpc_call_request(j->call);
  Fl__Peer__GetBlobRequest *r = fl__peer__get_blob_request__unpack(NULL, req.len, req.data);
  fl_sbuf_t data = {0};
  if (r == NULL || r->hash.len != 32) {
    j->rc = FL_EMALFORMED;
    j->err = "GetBlob: the hash must be 32 bytes";
    goto out;
  }
  j->rc = fl_ledger_blob_get(j->p->ledger, NULL, r->hash.data, &data);
  if (j->rc == FL_NOTFOUND) j->err = "GetBlob: no such blob";
  if (j->rc < 0) goto out;
  if (data.len + 64 > j->p->max_msg) {
    j->rc = FL_ETOOBIG;
    j->err = "GetBlob: blob larger than the message limit";
    goto out;
  }
  Fl__Peer__GetBlobResponse gr;
  fl__peer__get_blob_response__init(&gr);
  gr.data.data = data.data;
  gr.data.len = data.len;
  pack(&gr.base, &j->out);
out:
  if (r) fl__peer__get_blob_request__free_unpacked(r, NULL);
  fl_sbuf_free(&data);
}

static void q_info(qjob_t *j) {
  fl_ledger_snap_t *s = NULL;
  fl_sbuf_t raw = {0};
  fl_block_t *b = NULL;
  if ((j->rc = fl_ledger_snap_new(j->p->ledger, &s)) < 0) return;
  uint64_t h = fl_ledger_snap_height(s);
  uint8_t cur[32];
  Fl__Peer__ChainInfo ci;
  fl__peer__chain_info__init(&ci);
  ci.height = h;
  if (h > 0 && (j->rc = fl_ledger_block_get(j->p->ledger, s, h - 1, &raw, cur)) == FL_OK &&
      (j->rc = fl_block_decode(raw.data, raw.len, &b, &j->err)) == FL_OK) {
    ci.current_block_hash.data = cur;
    ci.current_block_hash.len = 32;
    ci.previous_block_hash.data = b->previous_hash;
    ci.previous_block_hash.len = b->previous_hash_len;
    pack(&ci.base, &j->out);
  }
  fl_block_free(b);
  fl_sbuf_free(&raw);
  fl_ledger_snap_free(s);
}

static void q_work(void *arg) {
  qjob_t *j = arg;
  switch (j->kind) {
  case Q_BLOCK: q_block(j); break;
  case Q_TX: q_tx(j); break;
  case Q_BLOB: q_blob(j); break;
  case Q_INFO: q_info(j); break;
  }
}

static void q_done(void *arg, fl_status_t st) {
  qjob_t *j = arg;
  j->p->jobs--;
  if (st < 0) j->rc = FL_EUNAVAIL;
  reply(j->p, j->call, j->rc, j->err ? j->err : fl_status_str(j->rc), fl_sbuf_view(&j->out));
  fl_sbuf_free(&j->out);
  fl_free(j);
}

static void h_query(fl_rpc_call_t *call, void *arg) {
  fl__peer_t *p = arg;
  const char *m = fl_rpc_call_method(call);
  qjob_t *j = fl_calloc(1, sizeof(*j));
  j->p = p;
  j->call = call;
  j->kind = strcmp(m, "Peer/GetBlock") == 0         ? Q_BLOCK
            : strcmp(m, "Peer/GetTransaction") == 0 ? Q_TX
            : strcmp(m, "Peer/GetBlob") == 0        ? Q_BLOB
                                                    : Q_INFO;
  p->jobs++;
  if (fl_worker_submit(&p->loop, q_work, q_done, j) != FL_OK) {
    p->jobs--;
    fl_free(j);
    reply(p, call, FL_EUNAVAIL, "no worker", (fl_buf_t){0});
  }
}

/* ----------------------------------------------------------------- Deliver */

typedef struct djob_s {
  fl__dstream_t *d;
  uint64_t from, to; /* [from, to) to read */
  fl_sbuf_t *msgs;
  size_t n;
  fl_status_t rc;
} djob_t;

static void d_pump(fl__dstream_t *d);

static void d_free(fl__dstream_t *d) {
  fl__peer_t *p = d->p;
  if (d->prev) d->prev->next = d->next;
  else if (p->streams == d) p->streams = d->next;
  if (d->next) d->next->prev = d->prev;
  for (size_t i = 0; i < d->npend; i++) fl_sbuf_free(&d->pend[i]);
  fl_free(d->pend);
  fl_free(d);
}

static void d_cancel(fl_rpc_call_t *call, void *arg) {
  fl__dstream_t *d = arg;
  if (d->cancelled) return;
  d->cancelled = true;
  fl_rpc_call_end(call, FL_ECANCELED, NULL);
  if (!d->busy) d_free(d);
}

static void d_finish(fl__dstream_t *d, fl_status_t st, const char *err) {
  if (d->cancelled) return;
  d->cancelled = true;
  if (st == FL_OK) {
    fl_sbuf_t m = {0};
    fl__pw_deliver_status(FL_OK, &m);
    fl_rpc_call_send(d->call, fl_sbuf_view(&m));
    fl_sbuf_free(&m);
  } else {
    fl__peer_rpc_error(d->p, "Peer/Deliver");
  }
  fl_rpc_call_end(d->call, st, err);
  if (!d->busy) d_free(d);
}

static void d_drain(fl_rpc_call_t *call, void *arg) {
  (void)call;
  d_pump(arg);
}

static void d_read_work(void *arg) {
  djob_t *j = arg;
  fl__peer_t *p = j->d->p;
  j->msgs = fl_calloc((size_t)(j->to - j->from) + 1, sizeof(*j->msgs));
  fl_sbuf_t raw = {0};
  for (uint64_t k = j->from; k < j->to; k++) {
    j->rc = fl_ledger_block_get(p->ledger, NULL, k, &raw, NULL);
    if (j->rc < 0) break;
    fl__pw_deliver_block(fl_sbuf_view(&raw), &j->msgs[j->n++]);
  }
  fl_sbuf_free(&raw);
}

static void d_read_done(void *arg, fl_status_t st) {
  djob_t *j = arg;
  fl__dstream_t *d = j->d;
  d->p->jobs--;
  d->busy = false;
  fl_status_t rc = st < 0 ? FL_EUNAVAIL : j->rc;
  if (d->cancelled) {
    for (size_t i = 0; i < j->n; i++) fl_sbuf_free(&j->msgs[i]);
    fl_free(j->msgs);
    fl_free(j);
    d_free(d);
    return;
  }
  d->pend = j->msgs;
  d->npend = j->n;
  d->pend_at = 0;
  d->next_num += j->n;
  fl_free(j);
  if (rc < 0 && d->npend == 0) {
    d_finish(d, rc, "Deliver: ledger read failed");
    return;
  }
  d_pump(d);
}

static void d_pump(fl__dstream_t *d) {
  fl__peer_t *p = d->p;
  if (d->busy || d->cancelled) return;
  while (d->pend_at < d->npend) {
    fl_status_t rc = fl_rpc_call_send(d->call, fl_sbuf_view(&d->pend[d->pend_at]));
    if (rc == FL_AGAIN) {
      fl_rpc_call_on_drain(d->call, d_drain, d);
      return;
    }
    if (rc < 0) return; /* cancelled: the cancel callback frees it */
    fl_sbuf_free(&d->pend[d->pend_at++]);
  }
  fl_free(d->pend);
  d->pend = NULL;
  d->npend = d->pend_at = 0;
  if (d->next_num > d->stop) {
    d_finish(d, FL_OK, NULL);
    return;
  }
  if (p->stopping) {
    d_finish(d, FL_EUNAVAIL, "peer shutting down");
    return;
  }
  if (d->next_num >= p->height) return; /* live tail: woken on commit */
  uint64_t to = p->height;
  if (to > d->stop + 1) to = d->stop + 1;
  if (to - d->next_num > DELIVER_BATCH) to = d->next_num + DELIVER_BATCH;
  djob_t *j = fl_calloc(1, sizeof(*j));
  j->d = d;
  j->from = d->next_num;
  j->to = to;
  d->busy = true;
  p->jobs++;
  if (fl_worker_submit(&p->loop, d_read_work, d_read_done, j) != FL_OK) {
    d_read_work(j);
    d_read_done(j, FL_OK);
  }
}

void fl__service_block_committed(fl__peer_t *p) {
  ep_committed(p);
  fl__dstream_t *d = p->streams;
  while (d) {
    fl__dstream_t *nx = d->next;
    d_pump(d);
    d = nx;
  }
}

typedef struct dopen_s {
  fl__peer_t *p;
  fl_rpc_call_t *call;
  fl__pw_seek_t seek;
  fl_status_t rc;
  const char *why;
} dopen_t;

static void d_open_work(void *arg) {
  dopen_t *j = arg;
  fl_sbuf_t sb = {0}, id = {0}, sig = {0};
  j->rc = fl__pw_seek_decode(fl_rpc_call_request(j->call), &j->seek, &sb, &id, &sig, &j->why);
  if (j->rc == FL_OK) {
    fl_msp_info_t info;
    fl_buf_t part = fl_sbuf_view(&sb);
    j->rc = fl_sigcache_verify(j->p->sigcache, fl_sbuf_view(&id), &part, 1, fl_sbuf_view(&sig),
                               FL_ROLE_NONE, &info);
    if (j->rc < 0) j->why = j->rc == FL_EBADSIG ? "Deliver: bad signature on seek info" : info.reason;
  }
  fl_sbuf_free(&sb);
  fl_sbuf_free(&id);
  fl_sbuf_free(&sig);
}

static uint64_t pos_num(const fl__peer_t *p, fl__pw_pos_t k, uint64_t num) {
  switch (k) {
  case FL__PW_OLDEST: return 0;
  case FL__PW_SPECIFIED: return num;
  default: return p->height - 1;
  }
}

static void d_open_done(void *arg, fl_status_t st) {
  dopen_t *j = arg;
  fl__peer_t *p = j->p;
  fl_rpc_call_t *call = j->call;
  p->jobs--;
  if (st < 0 || p->stopping) {
    reply(p, call, FL_EUNAVAIL, "peer shutting down", (fl_buf_t){0});
  } else if (j->rc < 0) {
    reply(p, call, j->rc, j->why, (fl_buf_t){0});
  } else {
    uint64_t start = pos_num(p, j->seek.start_kind, j->seek.start);
    uint64_t stop = j->seek.has_stop ? pos_num(p, j->seek.stop_kind, j->seek.stop) : UINT64_MAX;
    if (stop < start) {
      reply(p, call, FL_EINVAL, "Deliver: stop before start", (fl_buf_t){0});
    } else if (j->seek.fail_if_not_ready && start >= p->height) {
      reply(p, call, FL_NOTFOUND, "Deliver: block not available yet", (fl_buf_t){0});
    } else {
      fl__dstream_t *d = fl_calloc(1, sizeof(*d));
      d->p = p;
      d->call = call;
      d->next_num = start;
      d->stop = stop;
      d->next = p->streams;
      if (p->streams) p->streams->prev = d;
      p->streams = d;
      fl_rpc_call_on_cancel(call, d_cancel, d);
      d_pump(d);
    }
  }
  fl_free(j);
}

static void h_deliver(fl_rpc_call_t *call, void *arg) {
  fl__peer_t *p = arg;
  dopen_t *j = fl_calloc(1, sizeof(*j));
  j->p = p;
  j->call = call;
  p->jobs++;
  if (fl_worker_submit(&p->loop, d_open_work, d_open_done, j) != FL_OK) {
    p->jobs--;
    fl_free(j);
    reply(p, call, FL_EUNAVAIL, "no worker", (fl_buf_t){0});
  }
}

/* --------------------------------------------------------------- lifecycle */

void fl__service_register(fl__peer_t *p) {
  fl_rpc_server_handle(p->srv, "Peer/Endorse", FL_RPC_UNARY, h_endorse, p);
  fl_rpc_server_handle(p->srv, "Peer/EndorseAt", FL_RPC_UNARY, h_endorse_at, p);
  fl_rpc_server_handle(p->srv, "Peer/Evaluate", FL_RPC_UNARY, h_endorse, p);
  fl_rpc_server_handle(p->srv, "Peer/Deliver", FL_RPC_SERVER_STREAM, h_deliver, p);
  fl_rpc_server_handle(p->srv, "Peer/GetBlock", FL_RPC_UNARY, h_query, p);
  fl_rpc_server_handle(p->srv, "Peer/GetTransaction", FL_RPC_UNARY, h_query, p);
  fl_rpc_server_handle(p->srv, "Peer/GetBlob", FL_RPC_UNARY, h_query, p);
  fl_rpc_server_handle(p->srv, "Peer/ChainInfo", FL_RPC_UNARY, h_query, p);
}

void fl__service_close(fl__peer_t *p) {
  while (p->eparked != NULL) { /* shutting down: nobody will endorse it */
    eparked_t *e = p->eparked;
    fl_rpc_call_on_cancel(e->call, NULL, NULL);
    reply(p, e->call, FL_EUNAVAIL, "peer shutting down", (fl_buf_t){0});
    ep_drop(e);
  }
  fl__dstream_t *d = p->streams;
  while (d) {
    fl__dstream_t *nx = d->next;
    d_finish(d, FL_EUNAVAIL, "peer shutting down");
    d = nx;
  }
}
