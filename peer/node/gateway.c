/* SPDX-License-Identifier: Apache-2.0
 *
 * gateway.c: the Gateway service (Fabric Gateway's Endorse / Submit /
 * CommitStatus / Evaluate), so that a client needs to know one peer.
 *
 * Gateway/Endorse: the request's SignedProposal is decoded on a worker;
 * fl_policy_plan picks the fewest peers, by organisation, that satisfy the
 * chaincode's policy (this peer's organisation first, the genesis peer list
 * as the candidates, optionally restricted to endorsing_orgs). Each needed
 * endorsement is asked from a candidate: this peer itself through the
 * endorser on a worker, other peers with Peer/Endorse over mutual TLS. An
 * endorser that fails for a reason another peer may not have (transport
 * error, status 500/503) is replaced by the next candidate of the same
 * organisation; any other refusal (bad signature 403, malformed 400,
 * unknown chaincode 404, used tx id 409, the chaincode's own error) ends
 * the request with EndorseResponse{result} and no `prepared`. When all
 * are in, a worker checks that every endorser returned the same
 * ProposalResponsePayload bytes (else FL_ECONFLICT) and builds `prepared`:
 * an Envelope whose payload is Payload{the proposal's header, Transaction}
 * and whose signature is empty; the client signs payload and submits.
 *
 * Gateway/Submit: the client-signed envelope is decoded and its creator's
 * signature verified on a worker (through the signature cache: the
 * committer will not verify it again), then Orderer/Broadcast goes to the
 * orderers round robin; an orderer that is unreachable or busy is skipped
 * (each at most twice), a refusal (duplicate, bad signature) is returned.
 * Under light load (fewer than LEAD_MAX_INFLIGHT Broadcasts of this
 * gateway unanswered) the first attempt goes to the primary of the view of
 * the newest block this peer checked instead: an envelope a backup
 * receives takes one more hop, the backup's forward to the primary. Under
 * load, round robin spreads the orderers' envelope signature checks. The
 * view is block metadata, which the orderers' signatures do not cover, so
 * it is a hint: a hinted attempt waits at most LEAD_TIMEOUT_MS, and when it
 * fails (unreachable, timed out, busy) or an envelope has to be
 * re-broadcast, hints stay off for LEAD_OFF_MS. An EEXIST answer after an
 * attempt that failed in transport means that attempt got through.
 *
 * Gateway/CommitStatus: the signed request is checked on a worker (the
 * signer must be a valid, unrevoked member of an organisation of the
 * channel, any role: the status of every transaction is published on the
 * events socket anyway), and the same job looks the tx id up in the
 * ledger. Found: answered. Not found: the call waits, registered under its
 * tx id; if a commit finished on the loop while the job ran, the ledger is
 * consulted again AFTER the registration, so a commit cannot slip between
 * lookup and registration; commits wake waiters directly (no polling);
 * gateway.commit_timeout ends the wait with FL_ETIMEDOUT.
 *
 * Gateway/Evaluate: the local endorser's query path.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/net/lat.h"
#include "common/net/loop.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/proposal.h"
#include "fl/common/common.pb-c.h"
#include "fl/peer/gateway.pb-c.h"
#include "fl/peer/proposal.pb-c.h"
#include "peer/node/node_int.h"
#include "peer/node/wire.h"
#include "peer/policy/policy.h"

#define LOG "gateway"
#define MAX_SLOTS 64

static void pack(const ProtobufCMessage *m, fl_sbuf_t *out) {
  out->len = 0;
  size_t n = protobuf_c_message_get_packed_size(m);
  fl_sbuf_reserve(out, n + 1);
  out->len = protobuf_c_message_pack(m, out->data);
}

static void fail_call(fl__peer_t *p, fl_rpc_call_t *call, fl_status_t st, const char *msg) {
  fl__peer_rpc_error(p, fl_rpc_call_method(call));
  fl_rpc_call_end(call, st, msg);
}

static fl_status_t submit(fl__peer_t *p, fl_work_fn w, fl_work_done_fn d, void *arg) {
  p->jobs++;
  fl_status_t rc = fl__job_submit(p, w, d, arg);
  if (rc != FL_OK) p->jobs--;
  return rc;
}

/* ================================================================ Endorse */

typedef struct gend_s gend_t;

typedef struct slot_s {
  gend_t *g;
  size_t group;          /* index into g->groups */
  size_t peer;           /* index into p->peers of the current candidate */
  bool done;
  fl_sbuf_t resp;        /* ProposalResponse bytes */
  fl_endorse_result_t local;
} slot_t;

typedef struct group_s {
  size_t cand[64];       /* peer indexes, in the order to try */
  size_t ncand, next;
} group_t;

struct gend_s {
  fl__peer_t *p;
  fl_rpc_call_t *call;   /* NULL once answered */
  fl_sbuf_t sp;          /* SignedProposal bytes */
  fl_proposal_t *prop;
  char **orgs;           /* endorsing_orgs */
  size_t norgs;
  const char *chaincode; /* view into prop */
  fl_status_t rc;
  const char *why;
  group_t groups[32];     /* one per organisation offered to the planner */
  size_t ngroups;
  slot_t slots[MAX_SLOTS];
  size_t nslots, ndone;
  unsigned outstanding;  /* RPCs and jobs in flight */
  fl_sbuf_t out;         /* EndorseResponse bytes */
  char err[256];
};

static void g_free_maybe(gend_t *g) {
  if (g->call != NULL || g->outstanding > 0) return;
  for (size_t i = 0; i < g->nslots; i++) fl_sbuf_free(&g->slots[i].resp);
  for (size_t i = 0; i < g->norgs; i++) fl_free(g->orgs[i]);
  fl_free(g->orgs);
  fl_proposal_free(g->prop);
  fl_sbuf_free(&g->sp);
  fl_sbuf_free(&g->out);
  fl_free(g);
}

static void g_answer(gend_t *g, fl_status_t st, const char *msg) {
  if (g->call == NULL) return;
  fl_rpc_call_t *call = g->call;
  g->call = NULL;
  if (st < 0) {
    FL_DEBUG(LOG, "endorse failed rc=%s err=%s", fl_status_name(st), msg ? msg : "");
    fail_call(g->p, call, st, msg);
  } else {
    FL_LAT("peer gw_endorse_answered p=%s", g->p->name);
    fl_rpc_call_reply(call, FL_OK, fl_sbuf_view(&g->out));
  }
}

/* Answers with EndorseResponse{result = response} and no prepared. */
static void g_answer_result(gend_t *g, const fl_response_t *r) {
  Fl__Peer__Response res;
  fl__peer__response__init(&res);
  res.status = r->status;
  res.message = (char *)(uintptr_t)r->message;
  res.payload.data = (uint8_t *)(uintptr_t)r->payload.data;
  res.payload.len = r->payload.len;
  Fl__Peer__EndorseResponse er;
  fl__peer__endorse_response__init(&er);
  er.result = &res;
  pack(&er.base, &g->out);
  g_answer(g, FL_OK, NULL);
}

static void slot_start(slot_t *s);

/* A retryable failure of slot s: the next candidate of its group, or the
 * end of the request. */
static void slot_retry(slot_t *s, const char *why) {
  gend_t *g = s->g;
  group_t *gr = &g->groups[s->group];
  FL_DEBUG(LOG, "endorser failed, trying another peer=%s reason=%s", g->p->peers[s->peer].name,
           why);
  if (g->call == NULL) return;
  if (gr->next >= gr->ncand) {
    snprintf(g->err, sizeof(g->err), "not enough endorsers of %s: last failure at %s: %s",
             g->p->peers[s->peer].mspid, g->p->peers[s->peer].name, why);
    g_answer(g, FL_EUNAVAIL, g->err);
    return;
  }
  s->peer = gr->cand[gr->next++];
  slot_start(s);
}

static void assemble_start(gend_t *g);

/* A ProposalResponse arrived for slot s. */
static void slot_result(slot_t *s, fl_buf_t bytes) {
  gend_t *g = s->g;
  if (g->call == NULL) return;
  fl_proposal_response_t *pr = NULL;
  const char *why = NULL;
  if (fl_proposal_response_decode(bytes.data, bytes.len, &pr, &why) != FL_OK) {
    slot_retry(s, why ? why : "malformed ProposalResponse");
    return;
  }
  int32_t st = pr->response.status;
  if (st == 500 || st == 503) {
    snprintf(g->err, sizeof(g->err), "status %d: %s", (int)st, pr->response.message);
    fl_proposal_response_free(pr);
    slot_retry(s, g->err);
    return;
  }
  if (st >= 400 || !pr->has_endorsement || pr->payload.len == 0) {
    fl_response_t r = pr->response;
    if (r.status < 400) {
      r.status = 500;
      r.message = "endorser returned no endorsement";
    }
    g_answer_result(g, &r);
    fl_proposal_response_free(pr);
    return;
  }
  fl_proposal_response_free(pr);
  s->resp.len = 0;
  fl_sbuf_append(&s->resp, bytes.data, bytes.len);
  s->done = true;
  if (++g->ndone == g->nslots) assemble_start(g);
}

static void slot_rpc_cb(void *arg, fl_status_t st, const char *errmsg, fl_buf_t reply) {
  slot_t *s = arg;
  gend_t *g = s->g;
  g->outstanding--;
  if (st < 0) {
    fl__peer_rpc_error(g->p, "Peer/Endorse");
    if (st == FL_ECONNREFUSED || st == FL_ECLOSED || st == FL_ETIMEDOUT)
      fl__remote_fail(&g->p->peers[s->peer]);
    char why[200];
    snprintf(why, sizeof(why), "%s %s", fl_status_name(st), errmsg ? errmsg : "");
    if (g->p->stopping) g_answer(g, FL_EUNAVAIL, "gateway shutting down");
    else slot_retry(s, why); /* also FL_ECANCELED: the connection was dropped */
  } else {
    slot_result(s, reply);
  }
  g_free_maybe(g);
}

typedef struct ljob_s {
  slot_t *s;
  fl_sbuf_t out;
  fl_status_t rc;
} ljob_t;

static void local_work(void *arg) {
  ljob_t *j = arg;
  gend_t *g = j->s->g;
  j->rc = fl_endorser_process(g->p->endorser, fl_sbuf_view(&g->sp), true, &j->out,
                              &j->s->local);
}

static void local_done(void *arg, fl_status_t st) {
  ljob_t *j = arg;
  slot_t *s = j->s;
  gend_t *g = s->g;
  g->p->jobs--;
  g->outstanding--;
  if (st < 0 || j->rc < 0) {
    slot_retry(s, "local endorser failed");
  } else {
    slot_result(s, fl_sbuf_view(&j->out));
  }
  fl_sbuf_free(&j->out);
  fl_free(j);
  g_free_maybe(g);
}

static void slot_start(slot_t *s) {
  gend_t *g = s->g;
  fl__peer_t *p = g->p;
  fl__remote_t *r = &p->peers[s->peer];
  if (r->self) {
    ljob_t *j = fl_calloc(1, sizeof(*j));
    j->s = s;
    g->outstanding++;
    if (submit(p, local_work, local_done, j) != FL_OK) {
      g->outstanding--;
      fl_free(j);
      slot_retry(s, "no worker");
    }
    return;
  }
  fl_rpc_client_t *c = fl__remote_client(r);
  if (c == NULL) {
    slot_retry(s, "peer unreachable (backing off)");
    return;
  }
  /* Peer/EndorseAt: the remote peer first reaches this peer's height, so
   * both endorsements read the same state (service.c, h_endorse_at). */
  fl_sbuf_t req = {0};
  fl_sbuf_append_be64(&req, p->height);
  fl_sbuf_append(&req, g->sp.data, g->sp.len);
  g->outstanding++;
  fl_status_t rc = fl_rpc_client_unary(c, "Peer/EndorseAt", fl_sbuf_view(&req),
                                       (uint32_t)p->endorse_timeout_ms, slot_rpc_cb, s, NULL);
  fl_sbuf_free(&req);
  if (rc < 0) {
    g->outstanding--;
    fl__remote_fail(r);
    slot_retry(s, fl_status_str(rc));
  }
}

static bool org_allowed(const gend_t *g, const char *mspid) {
  if (g->norgs == 0) return true;
  for (size_t i = 0; i < g->norgs; i++)
    if (strcmp(g->orgs[i], mspid) == 0) return true;
  return false;
}

/* Plans the endorsers and starts every slot (loop thread). */
static void plan_and_start(gend_t *g) {
  fl__peer_t *p = g->p;
  const fl_policy_t *pol = fl_validator_policy(p->validator, g->chaincode);
  if (pol == NULL) {
    fl_response_t r = {.status = 404, .message = "chaincode not defined in the network"};
    g_answer_result(g, &r);
    return;
  }
  /* Organisations: this peer's first, then the others in genesis order. */
  const char *order[32];
  size_t norder = 0;
  if (org_allowed(g, p->mspid)) order[norder++] = p->mspid;
  for (size_t i = 0; i < p->net->n_orgs && norder < 32; i++) {
    const fl_net_org_t *o = &p->net->orgs[i];
    if (o->is_orderer_org || strcmp(o->mspid, p->mspid) == 0 || !org_allowed(g, o->mspid))
      continue;
    order[norder++] = o->mspid;
  }
  fl_policy_org_t porgs[32];
  size_t np = 0;
  uint32_t rr = p->rr++;
  for (size_t k = 0; k < norder; k++) {
    group_t *gr = &g->groups[np];
    memset(gr, 0, sizeof(*gr));
    /* Other peers of the organisation, round robin; those whose last
     * connection failed go last (each still gets a reconnect attempt here,
     * once its backoff is over, so it comes back when it is up again). */
    size_t idx[64], n = 0, down[64], nd = 0;
    for (size_t i = 0; i < p->npeers; i++) {
      fl__remote_t *r = &p->peers[i];
      if (strcmp(r->mspid, order[k]) != 0 || r->self) continue;
      if (r->down) {
        if (r->client == NULL) (void)fl__remote_client(r);
        if (nd < 64) down[nd++] = i;
      } else if (n < 64) {
        idx[n++] = i;
      }
    }
    for (size_t i = 0; i < p->npeers; i++)
      if (p->peers[i].self && strcmp(order[k], p->mspid) == 0) gr->cand[gr->ncand++] = i;
    for (size_t i = 0; i < n && gr->ncand < 64; i++) gr->cand[gr->ncand++] = idx[(i + rr) % n];
    for (size_t i = 0; i < nd && gr->ncand < 64; i++) gr->cand[gr->ncand++] = down[(i + rr) % nd];
    if (gr->ncand == 0) continue;
    porgs[np] = (fl_policy_org_t){.mspid = order[k], .peers = (uint32_t)gr->ncand};
    np++;
  }
  g->ngroups = np;
  fl_policy_need_t *needs = NULL;
  size_t nneeds = 0;
  fl_status_t rc = fl_policy_plan(pol, porgs, np, &needs, &nneeds);
  if (rc < 0) {
    snprintf(g->err, sizeof(g->err), "the peers known to this gateway cannot satisfy the "
             "endorsement policy of %s (%s)", g->chaincode, fl_status_name(rc));
    g_answer(g, FL_EUNAVAIL, g->err);
    return;
  }
  g->nslots = 0;
  for (size_t i = 0; i < nneeds; i++)
    for (uint32_t k = 0; k < needs[i].peers && g->nslots < MAX_SLOTS; k++) {
      group_t *gr = &g->groups[needs[i].org];
      slot_t *s = &g->slots[g->nslots++];
      s->g = g;
      s->group = needs[i].org;
      s->peer = gr->cand[gr->next++];
    }
  fl_free(needs);
  size_t n = g->nslots;
  g->outstanding++; /* hold g while starting */
  for (size_t i = 0; i < n && g->call != NULL; i++) slot_start(&g->slots[i]);
  g->outstanding--;
  g_free_maybe(g);
}

/* Builds the prepared envelope from the endorsements (worker). */
static void assemble_work(void *arg) {
  gend_t *g = arg;
  fl_proposal_response_t *prs[MAX_SLOTS] = {0};
  Fl__Peer__Endorsement ends[MAX_SLOTS];
  Fl__Peer__Endorsement *endp[MAX_SLOTS];
  fl_resp_payload_t *rp = NULL;
  fl_sbuf_t txb = {0}, payb = {0};
  const char *why = NULL;
  g->rc = FL_OK;
  for (size_t i = 0; i < g->nslots; i++) {
    if (fl_proposal_response_decode(g->slots[i].resp.data, g->slots[i].resp.len, &prs[i], &why) !=
        FL_OK) {
      g->rc = FL_EPROTO;
      g->why = "an endorser's response does not decode";
      goto out;
    }
    if (i > 0 && !fl_buf_eq(prs[i]->payload, prs[0]->payload)) {
      g->rc = FL_ECONFLICT;
      g->why = "endorsers disagree: their response payloads differ (non-deterministic "
               "chaincode or diverged state)";
      goto out;
    }
    fl__peer__endorsement__init(&ends[i]);
    ends[i].endorser.data = (uint8_t *)(uintptr_t)prs[i]->endorsement.endorser.data;
    ends[i].endorser.len = prs[i]->endorsement.endorser.len;
    ends[i].signature.data = (uint8_t *)(uintptr_t)prs[i]->endorsement.signature.data;
    ends[i].signature.len = prs[i]->endorsement.signature.len;
    endp[i] = &ends[i];
  }
  if (fl_resp_payload_decode(prs[0]->payload.data, prs[0]->payload.len, &rp, &why) != FL_OK ||
      memcmp(rp->proposal_hash, g->prop->proposal_hash, 32) != 0) {
    g->rc = FL_EPROTO;
    g->why = "the endorsed payload is not for this proposal";
    goto out;
  }
  Fl__Peer__Transaction tx;
  fl__peer__transaction__init(&tx);
  tx.proposal.data = (uint8_t *)(uintptr_t)g->prop->proposal_bytes.data;
  tx.proposal.len = g->prop->proposal_bytes.len;
  tx.proposal_signature.data = (uint8_t *)(uintptr_t)g->prop->signature.data;
  tx.proposal_signature.len = g->prop->signature.len;
  tx.response_payload.data = (uint8_t *)(uintptr_t)prs[0]->payload.data;
  tx.response_payload.len = prs[0]->payload.len;
  tx.n_endorsements = g->nslots;
  tx.endorsements = endp;
  pack(&tx.base, &txb);
  const fl_header_t *h = &g->prop->header;
  Fl__Common__Header hd;
  fl__common__header__init(&hd);
  hd.type = FL__COMMON__HEADER_TYPE__ENDORSER_TRANSACTION;
  hd.channel = (char *)(uintptr_t)h->channel;
  hd.tx_id = (char *)(uintptr_t)h->tx_id;
  hd.timestamp_ms = h->timestamp_ms;
  hd.creator.data = (uint8_t *)(uintptr_t)h->creator.data;
  hd.creator.len = h->creator.len;
  hd.nonce.data = (uint8_t *)(uintptr_t)h->nonce.data;
  hd.nonce.len = h->nonce.len;
  Fl__Common__Payload pl;
  fl__common__payload__init(&pl);
  pl.header = &hd;
  pl.data.data = txb.data;
  pl.data.len = txb.len;
  pack(&pl.base, &payb);
  Fl__Common__Envelope env;
  fl__common__envelope__init(&env);
  env.payload.data = payb.data;
  env.payload.len = payb.len;
  Fl__Peer__Response res;
  fl__peer__response__init(&res);
  res.status = rp->response.status;
  res.message = (char *)(uintptr_t)rp->response.message;
  res.payload.data = (uint8_t *)(uintptr_t)rp->response.payload.data;
  res.payload.len = rp->response.payload.len;
  Fl__Peer__EndorseResponse er;
  fl__peer__endorse_response__init(&er);
  er.prepared = &env;
  er.result = &res;
  pack(&er.base, &g->out);
  if (g->out.len + 1024 > g->p->max_msg) {
    g->rc = FL_ETOOBIG;
    g->why = "the prepared transaction exceeds the message limit";
  }
out:
  for (size_t i = 0; i < g->nslots; i++) fl_proposal_response_free(prs[i]);
  fl_resp_payload_free(rp);
  fl_sbuf_free(&txb);
  fl_sbuf_free(&payb);
}

static void assemble_done(void *arg, fl_status_t st) {
  gend_t *g = arg;
  g->p->jobs--;
  g->outstanding--;
  if (st < 0) g_answer(g, FL_EUNAVAIL, "gateway shutting down");
  else if (g->rc < 0) g_answer(g, g->rc, g->why);
  else g_answer(g, FL_OK, NULL);
  g_free_maybe(g);
}

static void assemble_start(gend_t *g) {
  g->outstanding++;
  if (submit(g->p, assemble_work, assemble_done, g) != FL_OK) {
    g->outstanding--;
    g_answer(g, FL_EUNAVAIL, "no worker");
  }
}

/* Decodes the EndorseRequest and its proposal (worker). */
static void parse_work(void *arg) {
  gend_t *g = arg;
  fl_buf_t req = fl_rpc_call_request(g->call);
  Fl__Peer__EndorseRequest *r = fl__peer__endorse_request__unpack(NULL, req.len, req.data);
  g->rc = FL_EMALFORMED;
  if (r == NULL || r->proposed == NULL) {
    g->why = "Endorse: request does not decode or has no proposal";
    goto out;
  }
  pack(&r->proposed->base, &g->sp);
  if (fl_signed_proposal_decode(g->sp.data, g->sp.len, &g->prop, &g->why) != FL_OK) goto out;
  if (r->tx_id && r->tx_id[0] && strcmp(r->tx_id, g->prop->header.tx_id) != 0) {
    g->why = "Endorse: tx_id does not match the proposal";
    goto out;
  }
  if (r->n_endorsing_orgs > 32) {
    g->why = "Endorse: too many endorsing_orgs";
    goto out;
  }
  g->orgs = fl_calloc(r->n_endorsing_orgs + 1, sizeof(*g->orgs));
  for (size_t i = 0; i < r->n_endorsing_orgs; i++) g->orgs[g->norgs++] = fl_strdup(r->endorsing_orgs[i]);
  g->chaincode = g->prop->chaincode;
  g->rc = FL_OK;
out:
  if (r) fl__peer__endorse_request__free_unpacked(r, NULL);
}

static void parse_done(void *arg, fl_status_t st) {
  gend_t *g = arg;
  g->p->jobs--;
  g->outstanding--;
  if (st < 0 || g->p->stopping) g_answer(g, FL_EUNAVAIL, "gateway shutting down");
  else if (g->rc < 0) g_answer(g, g->rc, g->why);
  else plan_and_start(g);
  g_free_maybe(g);
}

static void h_gw_endorse(fl_rpc_call_t *call, void *arg) {
  fl__peer_t *p = arg;
  FL_LAT("peer gw_endorse_recv p=%s", p->name);
  gend_t *g = fl_calloc(1, sizeof(*g));
  g->p = p;
  g->call = call;
  g->outstanding = 1;
  if (submit(p, parse_work, parse_done, g) != FL_OK) {
    g->outstanding = 0;
    g_answer(g, FL_EUNAVAIL, "no worker");
    g_free_maybe(g);
  }
}

/* ================================================================= Submit */

typedef struct gsub_s {
  fl__peer_t *p;
  fl_rpc_call_t *call;
  fl_sbuf_t env;
  fl_status_t rc;
  const char *why;
  char txid[FL_TXID_HEX_LEN + 1];
  unsigned attempts;
  size_t ord; /* the orderer of the last attempt (index into p->ords) */
  bool hinted;  /* the last attempt went to the hinted primary */
  bool unknown; /* an earlier attempt failed in transport: that orderer may have it */
  char err[256];
} gsub_t;

/* ---- re-broadcast: an orderer that acknowledges and drops ------------------
 *
 * A Byzantine orderer can acknowledge a Broadcast and never pass the
 * envelope on (docs/ordering.md, known limits): no orderer-side rule sees
 * that. So the gateway keeps every envelope it submitted until a block
 * carries its tx id; one not committed REBROADCAST_MS after the last
 * acknowledgement goes to the next orderer, until every orderer has
 * acknowledged it or answered that it has it (EEXIST). f + 1 would reach a
 * correct one, but a correct backup that alone holds a request the primary
 * drops can only vote for a view change alone, which changes nothing. The
 * orderers' at-most-once window (and the peers' duplicate tx id check) keeps a re-broadcast
 * transaction from being committed twice. The watch list is bounded
 * (WATCH_MAX_BYTES of envelopes); beyond it new envelopes are not watched. */
#define REBROADCAST_MS 3000u
#define WATCH_MAX_BYTES ((size_t)256 << 20)
/* Leader hint for Gateway/Submit (top of file). */
#define LEAD_MAX_INFLIGHT 4u
#define LEAD_OFF_MS 60000u
#define LEAD_TIMEOUT_MS 1000u /* a hinted attempt's Broadcast timeout */

/* Stops sending to the hinted primary for LEAD_OFF_MS. */
static void lead_off(fl__peer_t *p, const char *why) {
  uint64_t now = fl__peer_now_ms();
  if (p->ords_by_id && now >= p->lead_off_until_ms)
    FL_INFO(LOG, "broadcast leader hint off for %u ms: %s", LEAD_OFF_MS, why);
  p->lead_off_until_ms = now + LEAD_OFF_MS;
}

typedef struct fl__gwatch_s {
  struct fl__gwatch_s *next;
  fl__peer_t *p;
  char txid[FL_TXID_HEX_LEN + 1];
  fl_sbuf_t env;
  uint64_t due_ms;
  uint64_t acked;  /* bit i: orderer i acknowledged it */
  size_t next_ord; /* where the next attempt starts */
  bool inflight;   /* a Broadcast is out */
  bool orphan;     /* unlinked while in flight: the callback frees it */
} gwatch_t;

static size_t bucket_of(const char *txid);

static void watch_unlink(fl__peer_t *p, gwatch_t *w) {
  for (gwatch_t **pp = &p->gwatch[bucket_of(w->txid)]; *pp != NULL; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      p->gwatch_n--;
      p->gwatch_bytes -= w->env.len;
      return;
    }
}

static void watch_free(gwatch_t *w) {
  fl_sbuf_free(&w->env);
  fl_free(w);
}

/* Drops w (committed, given up, shutting down). */
static void watch_drop(fl__peer_t *p, gwatch_t *w) {
  watch_unlink(p, w);
  if (w->inflight) w->orphan = true;
  else watch_free(w);
}

/* Starts watching s's envelope, which orderer s->ord acknowledged; takes
 * s->env. */
static void watch_add(gsub_t *s) {
  fl__peer_t *p = s->p;
  if (p->gwatch_bytes + s->env.len > WATCH_MAX_BYTES) {
    FL_WARN(LOG, "re-broadcast watch list full (%zu envelopes, %zu bytes): txid=%s not watched",
            p->gwatch_n, p->gwatch_bytes, s->txid);
    return;
  }
  gwatch_t *w = fl_calloc(1, sizeof(*w));
  w->p = p;
  memcpy(w->txid, s->txid, sizeof(w->txid));
  w->env = s->env;
  s->env = (fl_sbuf_t){0};
  w->due_ms = fl__peer_now_ms() + REBROADCAST_MS;
  w->acked = 1ull << (s->ord % 64);
  w->next_ord = s->ord + 1;
  size_t b = bucket_of(w->txid);
  w->next = p->gwatch[b];
  p->gwatch[b] = w;
  p->gwatch_n++;
  p->gwatch_bytes += w->env.len;
}

static void watch_bc_cb(void *arg, fl_status_t st, const char *errmsg, fl_buf_t reply) {
  gwatch_t *w = arg;
  (void)errmsg;
  w->inflight = false;
  if (w->orphan) {
    watch_free(w);
    return;
  }
  fl__peer_t *p = w->p;
  fl_status_t bst = st;
  char *info = NULL;
  if (st == FL_OK && fl__pw_broadcast_decode(reply, &bst, &info) != FL_OK) bst = FL_EMALFORMED;
  fl_free(info);
  size_t ord = (w->next_ord - 1) % p->nord;
  /* EEXIST: this orderer has it pending or ordered. Pending is no promise
   * (a request held in a view that cannot finish), so the watch goes on
   * until a block carries it or every orderer has it. */
  bool has = bst == FL_OK || bst == FL_EEXIST;
  if (bst == FL_EEXIST)
    FL_DEBUG(LOG, "re-broadcast: orderer%zu already has txid=%s", ord, w->txid);
  if (has) w->acked |= 1ull << (ord % 64);
  w->due_ms = fl__peer_now_ms() + (has ? REBROADCAST_MS : 200u);
}

/* Sends w to the next orderer that does not have it yet, or stops watching
 * once every orderer has it (a PBFT client's rule: requests that all
 * replicas hold start every correct backup's timer, so a primary that sits
 * on them is replaced even when one backup alone cannot force a view
 * change). */
static void watch_retry(fl__peer_t *p, gwatch_t *w) {
  if ((size_t)__builtin_popcountll(w->acked) >= (p->nord < 64 ? p->nord : 64) || p->nord == 0) {
    FL_WARN(LOG, "re-broadcast: txid=%s acknowledged by %d orderers and still not committed",
            w->txid, __builtin_popcountll(w->acked));
    watch_drop(p, w);
    return;
  }
  for (size_t k = 0; k < p->nord; k++) {
    size_t i = (w->next_ord + k) % p->nord;
    if ((w->acked >> (i % 64)) & 1u) continue;
    fl_rpc_client_t *c = fl__remote_client(&p->ords[i]);
    if (c == NULL) continue;
    w->next_ord = i + 1;
    if (fl_rpc_client_unary(c, "Orderer/Broadcast", fl_sbuf_view(&w->env),
                            (uint32_t)p->broadcast_timeout_ms, watch_bc_cb, w, NULL) != FL_OK) {
      fl__remote_fail(&p->ords[i]);
      continue;
    }
    w->inflight = true;
    p->rebroadcasts++;
    lead_off(p, "an envelope had to be re-broadcast");
    FL_INFO(LOG, "re-broadcast: txid=%s not committed %u ms after its acknowledgement, sent to %s",
            w->txid, REBROADCAST_MS, p->ords[i].name);
    return;
  }
  w->due_ms = fl__peer_now_ms() + 200u; /* no orderer reachable now */
}

static void sub_free(gsub_t *s) {
  fl_sbuf_free(&s->env);
  fl_free(s);
}

static void sub_answer(gsub_t *s, fl_status_t st, const char *msg) {
  if (st < 0) {
    FL_DEBUG(LOG, "submit failed txid=%s rc=%s err=%s", s->txid, fl_status_name(st),
             msg ? msg : "");
    fail_call(s->p, s->call, st, msg);
  } else {
    fl_rpc_call_reply(s->call, FL_OK, (fl_buf_t){0});
  }
  sub_free(s);
}

static void sub_try(gsub_t *s);

static void bc_cb(void *arg, fl_status_t st, const char *errmsg, fl_buf_t reply) {
  gsub_t *s = arg;
  fl__peer_t *p = s->p;
  p->bc_inflight--;
  if (p->stopping) {
    sub_answer(s, FL_EUNAVAIL, "gateway shutting down");
    return;
  }
  if (st < 0) {
    fl__peer_rpc_error(p, "Orderer/Broadcast");
    snprintf(s->err, sizeof(s->err), "broadcast: %s %s", fl_status_name(st), errmsg ? errmsg : "");
    s->unknown = true;
    sub_try(s);
    return;
  }
  fl_status_t bst = FL_OK;
  char *info = NULL;
  if (fl__pw_broadcast_decode(reply, &bst, &info) != FL_OK) {
    snprintf(s->err, sizeof(s->err), "broadcast: malformed BroadcastResponse");
    sub_try(s);
    return;
  }
  if (bst == FL_EEXIST && s->unknown) {
    /* An earlier attempt timed out or broke after sending: the orderers
     * having it means that attempt got through. */
    FL_DEBUG(LOG, "broadcast: txid=%s already with the orderers after a failed attempt",
             s->txid);
    bst = FL_OK;
  }
  if (bst == FL_OK) {
    FL_LAT("peer bc_acked p=%s tx=%.16s", p->name, s->txid);
    fl_free(info);
    watch_add(s);
    sub_answer(s, FL_OK, NULL);
    return;
  }
  snprintf(s->err, sizeof(s->err), "orderer refused: %s", info ? info : fl_status_str(bst));
  fl_free(info);
  if (bst == FL_EUNAVAIL || bst == FL_AGAIN) {
    sub_try(s);
    return;
  }
  sub_answer(s, bst, s->err);
}

/* Where attempt s->attempts (1-based) goes: the hinted primary first
 * under light load, else round robin. */
static size_t sub_pick(fl__peer_t *p, gsub_t *s) {
  s->hinted = s->attempts == 1 && p->ords_by_id && p->lead_known &&
              p->bc_inflight < LEAD_MAX_INFLIGHT && fl__peer_now_ms() >= p->lead_off_until_ms;
  if (s->hinted) return (size_t)(p->lead_view % p->nord);
  return p->bc_next++ % p->nord;
}

static void sub_try(gsub_t *s) {
  fl__peer_t *p = s->p;
  if (s->hinted) lead_off(p, s->err); /* the hinted attempt failed: retrying */
  while (s->attempts < 2 * p->nord) {
    s->attempts++;
    s->ord = sub_pick(p, s);
    fl__remote_t *r = &p->ords[s->ord];
    fl_rpc_client_t *c = fl__remote_client(r);
    if (c == NULL) continue;
    uint32_t tmo = (uint32_t)p->broadcast_timeout_ms;
    if (s->hinted && tmo > LEAD_TIMEOUT_MS) tmo = LEAD_TIMEOUT_MS;
    if (fl_rpc_client_unary(c, "Orderer/Broadcast", fl_sbuf_view(&s->env), tmo, bc_cb, s,
                            NULL) == FL_OK) {
      p->bc_inflight++;
      p->bc_sent++;
      if (s->hinted) p->bc_hinted++;
      FL_LAT("peer bc_sent p=%s tx=%.16s ord=%u", p->name, s->txid, (unsigned)s->ord);
      return;
    }
    fl__remote_fail(r);
  }
  sub_answer(s, FL_EUNAVAIL, s->err[0] ? s->err : "no orderer reachable");
}

static void sub_work(void *arg) {
  gsub_t *s = arg;
  fl_buf_t req = fl_rpc_call_request(s->call);
  Fl__Peer__SubmitRequest *r = fl__peer__submit_request__unpack(NULL, req.len, req.data);
  fl_envelope_t *e = NULL;
  s->rc = FL_EMALFORMED;
  if (r == NULL || r->prepared == NULL) {
    s->why = "Submit: request does not decode or has no envelope";
    goto out;
  }
  pack(&r->prepared->base, &s->env);
  if (fl_envelope_decode(s->env.data, s->env.len, &e, &s->why) != FL_OK) goto out;
  memcpy(s->txid, e->header.tx_id, sizeof(s->txid));
  if (e->header.type != FL_HDR_ENDORSER_TX || strcmp(e->header.channel, s->p->net->channel) != 0) {
    s->why = "Submit: not an endorser transaction of this channel";
    goto out;
  }
  if (r->tx_id && r->tx_id[0] && strcmp(r->tx_id, e->header.tx_id) != 0) {
    s->why = "Submit: tx_id does not match the envelope";
    goto out;
  }
  fl_msp_info_t info;
  fl_buf_t part = e->payload;
  s->rc = fl_sigcache_verify(s->p->sigcache, e->header.creator, &part, 1, e->signature,
                             FL_ROLE_NONE, &info);
  if (s->rc < 0) {
    s->why = s->rc == FL_EBADSIG ? "Submit: the envelope signature does not verify" : info.reason;
    goto out;
  }
  if (info.role != FL_ROLE_CLIENT && info.role != FL_ROLE_ADMIN) {
    s->rc = FL_EPERM;
    s->why = "Submit: the creator is not a client or admin";
    goto out;
  }
  /* The data must be an endorsed Transaction answering this header: a
   * SignedProposal sent as an Envelope (same wire layout), or a transaction
   * without endorsements, would only be ordered to be marked invalid,
   * spending its tx id. */
  fl_tx_t *tx = NULL;
  s->rc = fl_tx_decode(e, &tx, &s->why);
  fl_tx_free(tx);
out:
  fl_envelope_free(e);
  if (r) fl__peer__submit_request__free_unpacked(r, NULL);
}

static void sub_done(void *arg, fl_status_t st) {
  gsub_t *s = arg;
  s->p->jobs--;
  if (st < 0 || s->p->stopping) sub_answer(s, FL_EUNAVAIL, "gateway shutting down");
  else if (s->rc < 0) sub_answer(s, s->rc, s->why);
  else sub_try(s);
}

static void h_gw_submit(fl_rpc_call_t *call, void *arg) {
  fl__peer_t *p = arg;
  FL_LAT("peer gw_submit_recv p=%s", p->name);
  gsub_t *s = fl_calloc(1, sizeof(*s));
  s->p = p;
  s->call = call;
  if (submit(p, sub_work, sub_done, s) != FL_OK) sub_answer(s, FL_EUNAVAIL, "no worker");
}

/* =========================================================== CommitStatus */

static size_t bucket_of(const char *txid) {
  uint64_t h = 1469598103934665603ull;
  for (const char *c = txid; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
  return (size_t)(h % FL__WAIT_BUCKETS);
}

static void w_unlink(fl__peer_t *p, fl__waiter_t *w) {
  if (w->prev) w->prev->next = w->next;
  else if (p->wait[bucket_of(w->tx_id)] == w) p->wait[bucket_of(w->tx_id)] = w->next;
  if (w->next) w->next->prev = w->prev;
  w->next = w->prev = NULL;
}

static void reply_status(fl_rpc_call_t *call, int code, uint64_t block) {
  Fl__Peer__CommitStatusResponse r;
  fl__peer__commit_status_response__init(&r);
  r.result = (Fl__Common__TxValidationCode)code;
  r.block_number = block;
  fl_sbuf_t out = {0};
  pack(&r.base, &out);
  fl_rpc_call_reply(call, FL_OK, fl_sbuf_view(&out));
  fl_sbuf_free(&out);
}

/* Answers w once; frees it when no job holds it. */
static void w_answer(fl__waiter_t *w, fl_status_t st, const char *msg, int code, uint64_t block) {
  fl__peer_t *p = w->p;
  if (w->answered) return;
  w->answered = true;
  w_unlink(p, w);
  if (st < 0) fail_call(p, w->call, st, msg);
  else reply_status(w->call, code, block);
  w->call = NULL;
  if (!w->checking) fl_free(w);
}

static void w_cancel(fl_rpc_call_t *call, void *arg) {
  (void)call;
  fl__waiter_t *w = arg;
  w_answer(w, FL_ECANCELED, NULL, 0, 0);
}

typedef struct cjob_s {
  fl__peer_t *p;
  fl_rpc_call_t *call;
  fl__waiter_t *w;
  char txid[FL_TXID_HEX_LEN + 1];
  fl_status_t rc;
  const char *why;
  fl_ledger_txloc_t loc;
  fl_status_t lrc;       /* the first ledger lookup (in the verify job) */
  uint64_t height_sub;   /* p->height when the verify job was submitted */
} cjob_t;

static void cs_verify_work(void *arg) {
  cjob_t *j = arg;
  fl_buf_t req = fl_rpc_call_request(j->call);
  Fl__Peer__SignedCommitStatusRequest *sr =
      fl__peer__signed_commit_status_request__unpack(NULL, req.len, req.data);
  Fl__Peer__CommitStatusRequest *r = NULL;
  j->rc = FL_EMALFORMED;
  j->why = "CommitStatus: request does not decode";
  if (sr == NULL) goto out;
  r = fl__peer__commit_status_request__unpack(NULL, sr->request.len, sr->request.data);
  if (r == NULL || r->tx_id == NULL || strlen(r->tx_id) != FL_TXID_HEX_LEN) {
    j->why = "CommitStatus: no valid tx id";
    goto out;
  }
  memcpy(j->txid, r->tx_id, sizeof(j->txid));
  fl_msp_info_t info;
  fl_buf_t part = FL_BUF(sr->request.data, sr->request.len);
  j->rc = fl_sigcache_verify(j->p->sigcache, FL_BUF(r->identity.data, r->identity.len), &part, 1,
                             FL_BUF(sr->signature.data, sr->signature.len), FL_ROLE_NONE, &info);
  if (j->rc < 0) {
    j->why = j->rc == FL_EBADSIG ? "CommitStatus: the request signature does not verify"
                                 : info.reason;
    goto out;
  }
  /* Most requests come after the commit or long before it: one lookup
   * here saves a second job; cs_verify_done decides whether it can be
   * trusted (no commit finished on the loop in between). */
  j->lrc = fl_ledger_tx_get(j->p->ledger, NULL, FL_BUF(j->txid, FL_TXID_HEX_LEN), &j->loc);
out:
  if (r) fl__peer__commit_status_request__free_unpacked(r, NULL);
  if (sr) fl__peer__signed_commit_status_request__free_unpacked(sr, NULL);
}

static void cs_lookup_work(void *arg) {
  cjob_t *j = arg;
  j->rc = fl_ledger_tx_get(j->p->ledger, NULL, FL_BUF(j->txid, FL_TXID_HEX_LEN), &j->loc);
}

static void cs_lookup_done(void *arg, fl_status_t st) {
  cjob_t *j = arg;
  fl__waiter_t *w = j->w;
  j->p->jobs--;
  w->checking = false;
  if (w->answered) {
    fl_free(w);
  } else if (st < 0) {
    w_answer(w, FL_EUNAVAIL, "gateway shutting down", 0, 0);
  } else if (j->rc == FL_OK) {
    w_answer(w, FL_OK, NULL, j->loc.code, j->loc.block);
  } else if (j->rc != FL_NOTFOUND) {
    w_answer(w, j->rc, "CommitStatus: ledger read failed", 0, 0);
  }
  fl_free(j);
}

static void cs_verify_done(void *arg, fl_status_t st) {
  cjob_t *j = arg;
  fl__peer_t *p = j->p;
  p->jobs--;
  if (st < 0 || p->stopping) {
    fail_call(p, j->call, FL_EUNAVAIL, "gateway shutting down");
    fl_free(j);
    return;
  }
  if (j->rc < 0) {
    fail_call(p, j->call, j->rc, j->why);
    fl_free(j);
    return;
  }
  if (j->lrc == FL_OK) { /* already committed */
    reply_status(j->call, j->loc.code, j->loc.block);
    fl_free(j);
    return;
  }
  if (j->lrc != FL_NOTFOUND) {
    fail_call(p, j->call, j->lrc, "CommitStatus: ledger read failed");
    fl_free(j);
    return;
  }
  FL_LAT("peer cs_waiting p=%s tx=%.16s", p->name, j->txid);
  fl__waiter_t *w = fl_calloc(1, sizeof(*w));
  w->p = p;
  w->call = j->call;
  memcpy(w->tx_id, j->txid, sizeof(w->tx_id));
  w->deadline_ms = fl__peer_now_ms() + p->commit_timeout_ms;
  size_t b = bucket_of(w->tx_id);
  w->next = p->wait[b];
  if (w->next) w->next->prev = w;
  p->wait[b] = w;
  fl_rpc_call_on_cancel(w->call, w_cancel, w);
  /* Not found by the verify job, and no commit finished on the loop since
   * it was submitted: any block that commits the tx wakes w from now on
   * (the loop hears of every commit after the ledger has it). */
  if (p->height == j->height_sub) {
    fl_free(j);
    return;
  }
  /* A commit finished in between: registered first, then the ledger
   * again; a commit after this point wakes w. */
  j->w = w;
  w->checking = true;
  if (submit(p, cs_lookup_work, cs_lookup_done, j) != FL_OK) {
    w->checking = false;
    fl_free(j);
  }
}

static void h_gw_commit_status(fl_rpc_call_t *call, void *arg) {
  fl__peer_t *p = arg;
  FL_LAT("peer cs_recv p=%s", p->name);
  cjob_t *j = fl_calloc(1, sizeof(*j));
  j->p = p;
  j->call = call;
  j->height_sub = p->height;
  if (submit(p, cs_verify_work, cs_verify_done, j) != FL_OK) {
    fail_call(p, call, FL_EUNAVAIL, "no worker");
    fl_free(j);
  }
}

void fl__gateway_committed(fl__peer_t *p, const fl_vblock_t *vb) {
  const fl_block_t *b = fl_vblock_block(vb);
  size_t n = fl_vblock_ntx(vb);
  for (size_t i = 0; i < n; i++) {
    fl_vtx_info_t t;
    fl_vblock_tx(vb, i, &t);
    if (t.tx_id[0] == '\0') continue;
    if (p->gwatch_n > 0) { /* ordered: whatever its code, nobody censored it */
      gwatch_t *g = p->gwatch[bucket_of(t.tx_id)];
      while (g) {
        gwatch_t *nx = g->next;
        if (strcmp(g->txid, t.tx_id) == 0) watch_drop(p, g);
        g = nx;
      }
    }
    fl__waiter_t *w = p->wait[bucket_of(t.tx_id)];
    while (w) {
      fl__waiter_t *nx = w->next;
      if (strcmp(w->tx_id, t.tx_id) == 0) {
        FL_LAT("peer cs_answered p=%s tx=%.16s block=%llu", p->name, t.tx_id,
               (unsigned long long)b->number);
        w_answer(w, FL_OK, NULL, t.code, b->number);
      }
      w = nx;
    }
  }
}

void fl__gateway_tick(fl__peer_t *p) {
  uint64_t now = fl__peer_now_ms();
  for (size_t b = 0; b < FL__WAIT_BUCKETS && p->gwatch_n > 0; b++) {
    gwatch_t *g = p->gwatch[b];
    while (g) {
      gwatch_t *nx = g->next;
      if (!g->inflight && now >= g->due_ms) watch_retry(p, g);
      g = nx;
    }
  }
  for (size_t b = 0; b < FL__WAIT_BUCKETS; b++) {
    fl__waiter_t *w = p->wait[b];
    while (w) {
      fl__waiter_t *nx = w->next;
      if (now >= w->deadline_ms)
        w_answer(w, FL_ETIMEDOUT, "CommitStatus: the transaction was not committed in time", 0, 0);
      w = nx;
    }
  }
}

/* =============================================================== Evaluate */

typedef struct gev_s {
  fl__peer_t *p;
  fl_rpc_call_t *call;
  fl_sbuf_t out;
  fl_status_t rc;
  const char *why;
} gev_t;

static void ev_work(void *arg) {
  gev_t *e = arg;
  fl_buf_t req = fl_rpc_call_request(e->call);
  Fl__Peer__EvaluateRequest *r = fl__peer__evaluate_request__unpack(NULL, req.len, req.data);
  fl_sbuf_t sp = {0}, prb = {0};
  fl_proposal_response_t *pr = NULL;
  fl_endorse_result_t res;
  e->rc = FL_EMALFORMED;
  e->why = "Evaluate: request does not decode or has no proposal";
  if (r == NULL || r->proposed == NULL) goto out;
  pack(&r->proposed->base, &sp);
  e->rc = fl_endorser_process(e->p->endorser, fl_sbuf_view(&sp), false, &prb, &res);
  if (e->rc < 0) {
    e->why = "Evaluate: the endorser failed";
    goto out;
  }
  if (r->tx_id && r->tx_id[0] && res.tx_id[0] && strcmp(r->tx_id, res.tx_id) != 0) {
    e->rc = FL_EMALFORMED;
    e->why = "Evaluate: tx_id does not match the proposal";
    goto out;
  }
  e->rc = fl_proposal_response_decode(prb.data, prb.len, &pr, &e->why);
  if (e->rc < 0) goto out;
  Fl__Peer__Response rs;
  fl__peer__response__init(&rs);
  rs.status = pr->response.status;
  rs.message = (char *)(uintptr_t)pr->response.message;
  rs.payload.data = (uint8_t *)(uintptr_t)pr->response.payload.data;
  rs.payload.len = pr->response.payload.len;
  Fl__Peer__EvaluateResponse er;
  fl__peer__evaluate_response__init(&er);
  er.result = &rs;
  pack(&er.base, &e->out);
out:
  fl_proposal_response_free(pr);
  fl_sbuf_free(&sp);
  fl_sbuf_free(&prb);
  if (r) fl__peer__evaluate_request__free_unpacked(r, NULL);
}

static void ev_done(void *arg, fl_status_t st) {
  gev_t *e = arg;
  e->p->jobs--;
  if (st < 0) e->rc = FL_EUNAVAIL;
  if (e->rc < 0) fail_call(e->p, e->call, e->rc, e->why ? e->why : fl_status_str(e->rc));
  else fl_rpc_call_reply(e->call, FL_OK, fl_sbuf_view(&e->out));
  fl_sbuf_free(&e->out);
  fl_free(e);
}

static void h_gw_evaluate(fl_rpc_call_t *call, void *arg) {
  fl__peer_t *p = arg;
  gev_t *e = fl_calloc(1, sizeof(*e));
  e->p = p;
  e->call = call;
  if (submit(p, ev_work, ev_done, e) != FL_OK) {
    fail_call(p, call, FL_EUNAVAIL, "no worker");
    fl_free(e);
  }
}

/* ============================================================== lifecycle */

void fl__gateway_register(fl__peer_t *p) {
  fl_rpc_server_handle(p->srv, "Gateway/Endorse", FL_RPC_UNARY, h_gw_endorse, p);
  fl_rpc_server_handle(p->srv, "Gateway/Submit", FL_RPC_UNARY, h_gw_submit, p);
  fl_rpc_server_handle(p->srv, "Gateway/CommitStatus", FL_RPC_UNARY, h_gw_commit_status, p);
  fl_rpc_server_handle(p->srv, "Gateway/Evaluate", FL_RPC_UNARY, h_gw_evaluate, p);
}

void fl__gateway_close(fl__peer_t *p) {
  for (size_t b = 0; b < FL__WAIT_BUCKETS; b++)
    while (p->gwatch[b] != NULL) watch_drop(p, p->gwatch[b]);
  for (size_t b = 0; b < FL__WAIT_BUCKETS; b++) {
    fl__waiter_t *w = p->wait[b];
    while (w) {
      fl__waiter_t *nx = w->next;
      w_answer(w, FL_EUNAVAIL, "gateway shutting down", 0, 0);
      w = nx;
    }
  }
}
