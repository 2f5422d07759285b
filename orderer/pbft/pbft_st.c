/* SPDX-License-Identifier: Apache-2.0
 *
 * pbft_st.c: state transfer, and restore from persisted records.
 *
 * State transfer. A replica whose stable checkpoint (low) is above what it
 * executed cannot get the missing batches from the log any more (every
 * correct replica truncated it), so it asks one replica that signed the
 * checkpoint proof for the committed batches (last_exec, target] with a
 * StateRequest, rotating to the next signer every 2 * resend_ms without
 * progress. The responder reads COMMITTED records through ops->load and
 * answers with a consecutive run of them that ends either at the requested
 * target (whose digest the requester already knows from 2f+1 signatures) or
 * at an earlier checkpoint for which it includes the 2f+1-signature proof.
 * The requester recomputes the state digest chain
 *     state(s) = SHA-256(state(s-1) || be64(s) || SHA-256(batch bytes of s))
 * over the run from its own state and compares it with the proven digest
 * BEFORE applying anything; only then it executes the batches (same code
 * path as normal execution, so the at-most-once window and the block chain
 * are rebuilt exactly) and takes the block signatures shipped with them,
 * each verified against the header it computed itself.
 *
 * Restore. The host hands back the records it persisted (see pbft.h);
 * restore_finish rebuilds view, stable checkpoint, log entries with their
 * prepared certificates, the execution state and the at-most-once window,
 * and re-creates (without sending yet) this replica's own PREPARE/COMMIT
 * for entries it had voted on, which the status tick then retransmits.
 */
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "orderer/pbft/pbft_int.h"

static void st_request(fl_pbft_t *p, bool rotate) {
  uint64_t mask = p->st.peers;
  if (rotate || !((mask >> p->st.peer) & 1u)) {
    for (uint32_t k = 1; k <= p->n; k++) {
      uint32_t c = (p->st.peer + k) % p->n;
      if ((mask >> c) & 1u) {
        p->st.peer = c;
        break;
      }
    }
  }
  fl_sbuf_t msg = {0}, sgn = {0};
  fl__pbft_enc_sreq(p->last_exec + 1, p->st.target, &msg);
  if (fl__pbft_sign_wrap(&p->ops, p->self, fl_sbuf_view(&msg), &sgn) == FL_OK)
    fl__pbft_send_raw(p, p->st.peer, fl_sbuf_view(&sgn));
  fl_sbuf_free(&msg);
  fl_sbuf_free(&sgn);
  p->st.deadline = p->now + 2 * p->cfg.resend_ms;
}

void fl__pbft_st_begin(fl_pbft_t *p, uint64_t target, const uint8_t d[DLEN],
                       fl__pbft_smsg_t *const *proof, uint32_t nproof) {
  if (p->st.active && p->st.target >= target) return;
  bool was = p->st.active;
  p->st.active = true;
  p->st.target = target;
  memcpy(p->st.d, d, DLEN);
  uint64_t mask = 0;
  for (uint32_t i = 0; i < nproof; i++)
    if (proof[i]->replica != p->self) mask |= 1ull << proof[i]->replica;
  if (mask == 0)
    for (uint32_t i = 0; i < p->n; i++)
      if (i != p->self) mask |= 1ull << i;
  p->st.peers = mask;
  if (!was)
    FL_INFO(FL__PBFT_LOG,
            "state transfer start replica=%u from=%llu target=%llu", p->self,
            (unsigned long long)p->last_exec + 1, (unsigned long long)target);
  if (p->started) st_request(p, !was);
  else p->st.deadline = 0; /* first tick sends it */
}

static void st_progress(fl_pbft_t *p) {
  if (!p->st.active) return;
  if (p->last_exec >= p->st.target) {
    p->st.active = false;
    p->stats.state_transfers++;
    FL_INFO(FL__PBFT_LOG, "state transfer done replica=%u seq=%llu block=%llu",
            p->self, (unsigned long long)p->last_exec,
            (unsigned long long)p->last_block);
    fl__pbft_try_execute(p);
    fl__pbft_propose(p);
  } else {
    st_request(p, false);
  }
}

void fl__pbft_st_tick(fl_pbft_t *p) {
  if (!p->st.active || p->st.deadline > p->now) return;
  if (p->last_exec >= p->st.target) {
    st_progress(p);
    return;
  }
  st_request(p, true);
}

/* Appends to body the COMMITTED records from `from` on, as one consecutive
 * run that ends at `to` or at a checkpoint seq whose stable proof we hold
 * (appended to proof); stops at max_entries records and, past a proven end,
 * at state_chunk_bytes. Returns the length of body up to the last usable
 * end (0: none). */
static size_t collect(fl_pbft_t *p, uint64_t from, uint64_t to, bool proof_at_to,
                      fl_sbuf_t *body, fl_sbuf_t *proof) {
  fl_sbuf_t rec = {0};
  uint64_t good = 0;
  size_t good_len = 0;
  uint32_t count = 0;
  for (uint64_t s = from; s <= to && count < p->codec.max_entries; s++) {
    rec.len = 0;
    if (p->ops.load(p->ops.ctx, FL_PBFT_REC_COMMITTED, s, &rec) != FL_OK) break;
    fl__pbft_put_field(body, 1, fl_sbuf_view(&rec));
    count++;
    if (s == to && !proof_at_to) {
      good = s;
      good_len = body->len;
      proof->len = 0;
      break;
    }
    if (s % p->K != 0) continue;
    rec.len = 0;
    if (p->ops.load(p->ops.ctx, FL_PBFT_REC_CHECKPOINT, s, &rec) != FL_OK)
      continue;
    uint64_t cs = 0;
    uint8_t cd[DLEN];
    fl__pbft_smsg_t **pr = NULL;
    uint32_t npr = 0;
    if (fl__pbft_dec_stable(&p->own_codec, fl_sbuf_view(&rec), &cs, cd, &pr,
                            &npr) == FL_OK &&
        cs == s) {
      good = s;
      good_len = body->len;
      proof->len = 0;
      for (uint32_t i = 0; i < npr; i++) {
        fl_sbuf_t one = {0};
        fl__pbft_smsg_pack(pr[i], &one);
        fl__pbft_put_field(proof, 2, fl_sbuf_view(&one));
        fl_sbuf_free(&one);
      }
    }
    for (uint32_t i = 0; i < npr; i++) fl__pbft_smsg_unref(pr[i]);
    fl_free(pr);
    if (s == to || (good == s && body->len >= p->cfg.state_chunk_bytes)) break;
  }
  fl_sbuf_free(&rec);
  return good != 0 ? good_len : 0;
}

/* Serves a StateRequest. From our COMMITTED records when we still hold
 * `from`; otherwise (our log below it is pruned) a snapshot: the D records
 * that end at our stable checkpoint, with its proof, to be installed by
 * record, and the full record before them as their base (docs/ordering.md
 * section 8). The requester's `to` does not matter then: whatever it
 * targets, the snapshot moves it past the gap. */
void fl__pbft_on_sreq(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  if (p->ops.load == NULL) return;
  uint64_t from = m->u.sreq.from, to = m->u.sreq.to;
  fl_sbuf_t body = {0}, proof = {0}, base = {0};
  size_t len = collect(p, from, to, false, &body, &proof);
  uint64_t c = p->low;
  if (len == 0 && body.len == 0 && c > p->D && c - p->D + 1 > from &&
      p->ops.load(p->ops.ctx, FL_PBFT_REC_COMMITTED, c - p->D, &base) == FL_OK) {
    len = collect(p, c - p->D + 1, c, true, &body, &proof);
    if (len > 0) p->stats.snapshots_served++;
  }
  if (len > 0) {
    body.len = len;
    fl_sbuf_append(&body, proof.data, proof.len);
    if (base.len > 0) fl__pbft_put_field(&body, 3, fl_sbuf_view(&base));
    fl_sbuf_t msg = {0}, sgn = {0};
    fl__pbft_put_field(&msg, FL_PBFT_MSG_STATE_RESPONSE, fl_sbuf_view(&body));
    if (fl__pbft_sign_wrap(&p->ops, p->self, fl_sbuf_view(&msg), &sgn) == FL_OK)
      fl__pbft_send_raw(p, m->replica, fl_sbuf_view(&sgn));
    fl_sbuf_free(&msg);
    fl_sbuf_free(&sgn);
  }
  fl_sbuf_free(&body);
  fl_sbuf_free(&proof);
  fl_sbuf_free(&base);
}

/* ------------------------------------------------- install by record */

/* The entries must be seqs first, first + 1, ...; returns the index of the
 * last one whose digest we can check (the state transfer's target, or ps,
 * the seq of the response's checkpoint proof), or -1 (counted: malformed,
 * or rejected when nothing in it is proven, e.g. an answer to an older
 * request). */
static int64_t proven_end(fl_pbft_t *p, const fl__pbft_xentry_t *ents, uint32_t ne,
                          uint64_t first, uint64_t ps) {
  int64_t vp = -1;
  for (uint32_t i = 0; i < ne; i++) {
    if (ents[i].seq != first + i) {
      p->stats.rx_malformed++;
      return -1;
    }
    if (ents[i].seq == p->st.target || (ps != 0 && ents[i].seq == ps)) vp = (int64_t)i;
  }
  if (vp < 0) p->stats.rx_rejected++;
  return vp;
}

/* Which of b's requests a seq kept: all but the dropped ones (*nkept of
 * them). strict: NULL when a dropped index is out of range or repeated;
 * otherwise such indexes are ignored. Free with fl_free. */
static uint8_t *keep_mask(const fl__pbft_batch_t *b, const uint32_t *dropped, uint32_t ndropped,
                          bool strict, uint32_t *nkept) {
  uint8_t *keep = fl_calloc(b->nreq ? b->nreq : 1, 1);
  memset(keep, 1, b->nreq);
  *nkept = b->nreq;
  for (uint32_t i = 0; i < ndropped; i++) {
    if (dropped[i] < b->nreq && keep[dropped[i]]) {
      keep[dropped[i]] = 0;
      (*nkept)--;
    } else if (strict) {
      fl_free(keep);
      return NULL;
    }
  }
  return keep;
}

/* Adds the tx ids that seq kept (all of b's but the dropped ones) to the
 * at-most-once window, in seq's slot (which must be free). */
static void dd_fill(fl_pbft_t *p, uint64_t seq, const fl__pbft_batch_t *b,
                    const uint32_t *dropped, uint32_t ndropped) {
  uint32_t nk = 0;
  uint8_t *keep = keep_mask(b, dropped, ndropped, false, &nk);
  size_t bytes = 0;
  for (uint32_t i = 0; i < b->nreq; i++)
    if (keep[i]) bytes += b->reqs[i].tx_id.len;
  fl__pbft_dd_store(p, seq, b, keep, nk, bytes);
  fl_free(keep);
}

/* Checks what record e says about blocks against the chain so far (head,
 * num: the last block before e; advanced past e's block): a seq made a
 * block exactly when it kept a request; that block's header is the one this
 * replica would build (number num + 1, previous hash head, data hash over
 * the envelopes e kept) and hashes to e's head; without a block, e's block
 * number and head are the previous ones. */
static bool rec_block_ok(fl_pbft_t *p, const fl__pbft_xentry_t *e, uint8_t head[DLEN],
                         uint64_t *num) {
  const fl__pbft_batch_t *b = e->batch;
  uint32_t nkept = 0;
  uint8_t *keep = keep_mask(b, e->dropped, e->ndropped, true, &nkept);
  bool ok = e->full && keep != NULL;
  if (ok && e->header == NULL) {
    ok = nkept == 0 && e->block_number == *num && memcmp(e->head, head, DLEN) == 0;
  } else if (ok) {
    uint8_t dh[DLEN], hh[DLEN];
    fl_sbuf_t hdr = {0};
    fl__pbft_block_data_hash(&p->ops, b, keep, dh);
    fl__pbft_enc_block_header(*num + 1, head, dh, &hdr);
    p->ops.sha256(p->ops.ctx, fl_sbuf_view(&hdr), hh);
    ok = nkept > 0 && e->block_number == *num + 1 && hdr.len == e->header_len &&
         memcmp(hdr.data, e->header, hdr.len) == 0 && memcmp(hh, e->head, DLEN) == 0;
    fl_sbuf_free(&hdr);
    if (ok) {
      *num += 1;
      memcpy(head, hh, DLEN);
    }
  }
  fl_free(keep);
  return ok;
}

/* Distinct replicas whose signature of the header hash `hash` verifies. */
static uint32_t valid_sigs(fl_pbft_t *p, const uint8_t hash[DLEN], const fl__pbft_sig_t *sigs,
                           uint32_t nsig) {
  uint64_t seen = 0;
  uint32_t k = 0;
  for (uint32_t i = 0; i < nsig; i++) {
    uint32_t r = sigs[i].replica;
    if (r >= p->n || ((seen >> r) & 1u)) continue;
    if (!p->ops.verify_digest(p->ops.ctx, r, hash, sigs[i].sig)) continue;
    seen |= 1ull << r;
    k++;
  }
  return k;
}

/* Takes record e as executed: window, state, blocks (delivered: the host
 * fetches their bytes from the other orderers, docs/ordering.md section 8),
 * the COMMITTED record persisted as it came. */
static void install_one(fl_pbft_t *p, const fl__pbft_xentry_t *e) {
  fl__pbft_dd_t *dd = &p->dd[e->seq % p->D];
  if (dd->seq != 0) fl__pbft_dd_evict(p, dd);
  dd_fill(p, e->seq, e->batch, e->dropped, e->ndropped);
  fl__pbft_forget_batch(p, e->batch, e->seq);
  memcpy(p->state, e->state, DLEN);
  p->last_exec = e->seq;
  bool block = e->header != NULL;
  if (block) {
    p->last_block = p->delivered = e->block_number;
    memcpy(p->head, e->head, DLEN);
  }
  if (e->ts > p->last_ts) p->last_ts = e->ts;
  fl__pbft_committed_t ce = {
      .seq = e->seq, .view = e->view, .block_number = e->block_number, .timestamp_ms = e->ts,
      .batch = FL_BUF(e->batch->bytes, e->batch->len),
      .header = FL_BUF(e->header, e->header_len), .sigs = e->sigs, .nsig = e->nsig,
      .dropped = e->dropped, .ndropped = e->ndropped};
  memcpy(ce.state, e->state, DLEN);
  memcpy(ce.head, e->head, DLEN);
  fl_sbuf_t rec = {0};
  fl__pbft_enc_committed(&ce, &rec);
  fl__pbft_persist(p, FL_PBFT_REC_COMMITTED, e->seq, &rec);
  fl__pbft_emit_execute(p, e->seq, e->view, e->batch->digest, block ? e->block_number : 0,
                        e->batch->nreq - e->ndropped, e->ndropped);
  p->exec_at = p->now;
  p->blk_wait_since = p->now;
  p->stats.records_installed++;
}

/* A StateResponse installed by record instead of re-executed: a snapshot
 * (base: the record before the entries, when our log is behind the others'
 * pruned logs) or its continuation (seqs up to st.rec_until, whose
 * at-most-once window starts in the snapshot). Nothing is applied unless
 * the whole run up to a proven digest checks out: the state digest chain
 * (from the base's or our own state), every record's block against the
 * chain of headers (rec_block_ok), and 2f+1 orderer signatures on the last
 * header, which by the previous-hash links vouches for every header before
 * it and so for each record's dropped requests. */
static void st_install(fl_pbft_t *p, fl__pbft_smsg_t *m, const fl__pbft_xentry_t *base,
                       uint64_t ps, const uint8_t pd[DLEN]) {
  uint32_t ne = m->u.sresp.nent;
  const fl__pbft_xentry_t *ents = m->u.sresp.ents;
  uint64_t first = base ? base->seq + 1 : p->last_exec + 1;
  int64_t vp = proven_end(p, ents, ne, first, ps);
  if (vp < 0) return;
  bool ok = base == NULL || base->full;
  uint8_t st[DLEN], head[DLEN];
  uint64_t num = base ? base->block_number : p->last_block;
  memcpy(st, base ? base->state : p->state, DLEN);
  memcpy(head, base ? base->head : p->head, DLEN);
  int64_t last_hdr = -1;
  for (int64_t i = 0; ok && i <= vp; i++) {
    fl__pbft_chain(p, st, ents[i].seq, ents[i].batch->digest);
    ok = memcmp(st, ents[i].state, DLEN) == 0 && rec_block_ok(p, &ents[i], head, &num);
    if (ok && ents[i].header != NULL) last_hdr = i;
  }
  if (ok) ok = memcmp(st, ents[vp].seq == p->st.target ? p->st.d : pd, DLEN) == 0;
  if (ok && last_hdr >= 0)
    ok = valid_sigs(p, ents[last_hdr].head, ents[last_hdr].sigs, ents[last_hdr].nsig) >= p->q;
  else if (ok) /* no block in the run: the base's block claims bind nothing */
    ok = num == p->last_block && memcmp(head, p->head, DLEN) == 0;
  if (!ok) {
    p->stats.rx_rejected++;
    FL_WARN(FL__PBFT_LOG,
            "state transfer by record refused replica=%u from=%u first=%llu entries=%u", p->self,
            m->replica, (unsigned long long)first, ne);
    st_request(p, true);
    return;
  }
  if (base) {
    fl__pbft_exec_reset(p);
    p->st.rec_until = base->seq + p->D - 1;
    p->stats.snapshots++;
    FL_INFO(FL__PBFT_LOG,
            "state transfer by snapshot replica=%u from=%u base=%llu last_exec=%llu "
            "block=%llu target=%llu",
            p->self, m->replica, (unsigned long long)base->seq,
            (unsigned long long)p->last_exec, (unsigned long long)base->block_number,
            (unsigned long long)p->st.target);
    /* Start from the base (verified through the run that follows it); the
     * D records that follow it make up the whole window at the target. */
    p->last_exec = base->seq;
    memcpy(p->state, base->state, DLEN);
    p->last_block = p->delivered = base->block_number;
    memcpy(p->head, base->head, DLEN);
  }
  for (int64_t i = 0; i <= vp; i++) install_one(p, &ents[i]);
  fl__pbft_blk_forget_upto(p, p->delivered);
  st_progress(p);
}

void fl__pbft_on_sresp(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  uint64_t ps = 0;
  uint8_t pd[DLEN];
  if (m->u.sresp.nproof > 0) {
    if (!fl__pbft_check_proof(p, m->u.sresp.proof, m->u.sresp.nproof, &ps, pd)) {
      p->stats.rx_rejected++;
      return;
    }
    if (ps > p->low)
      fl__pbft_adopt_stable(p, ps, pd, m->u.sresp.proof, m->u.sresp.nproof);
  }
  uint32_t ne = m->u.sresp.nent;
  const fl__pbft_xentry_t *ents = m->u.sresp.ents;
  if (m->u.sresp.has_base) {
    if (p->st.active && ne > 0 && m->u.sresp.base.seq > p->last_exec)
      st_install(p, m, &m->u.sresp.base, ps, pd);
    else
      p->stats.rx_stale++;
    return;
  }
  if (p->st.active && ne > 0 && ents[0].seq == p->last_exec + 1 &&
      ents[0].seq <= p->st.rec_until) {
    st_install(p, m, NULL, ps, pd);
    return;
  }
  /* Entries we executed already: we only want their block signatures
   * (each is checked against the header we computed). */
  uint32_t skip = 0;
  while (skip < ne && ents[skip].seq <= p->last_exec) {
    if (ents[skip].nsig) fl__pbft_attach_sigs(p, ents[skip].seq, ents[skip].sigs, ents[skip].nsig);
    skip++;
  }
  ents += skip;
  ne -= skip;
  if (!p->st.active || ne == 0) return;
  if (ents[0].seq != p->last_exec + 1) {
    p->stats.rx_stale++;
    return;
  }
  int64_t vp = proven_end(p, ents, ne, ents[0].seq, ps);
  if (vp < 0) return;
  uint8_t st[DLEN];
  memcpy(st, p->state, DLEN);
  for (int64_t i = 0; i <= vp; i++)
    fl__pbft_chain(p, st, ents[i].seq, ents[i].batch->digest);
  const uint8_t *want = ents[vp].seq == p->st.target ? p->st.d : pd;
  if (memcmp(st, want, DLEN) != 0) {
    p->stats.rx_rejected++;
    FL_WARN(FL__PBFT_LOG,
            "state transfer response does not match checkpoint replica=%u from=%u",
            p->self, m->replica);
    st_request(p, true);
    return;
  }
  for (int64_t i = 0; i <= vp; i++)
    if (!fl__pbft_execute(p, ents[i].seq, ents[i].view, ents[i].batch,
                          ents[i].sigs, ents[i].nsig))
      break;
  st_progress(p);
}

/* -------------------------------------------------------------- restore */

void fl__pbft_restore_free(fl__pbft_restore_t *r) {
  if (r == NULL) return;
  for (uint32_t i = 0; i < r->nck_proof; i++) fl__pbft_smsg_unref(r->ck_proof[i]);
  fl_free(r->ck_proof);
  for (size_t i = 0; i < r->nents; i++) {
    fl__pbft_smsg_unref(r->ents[i].pp);
    fl__pbft_cert_clear(&r->ents[i].cert);
  }
  fl_free(r->ents);
  for (size_t i = 0; i < r->npreps; i++) {
    for (uint32_t k = 0; k < r->preps[i].nprep; k++) fl__pbft_smsg_unref(r->preps[i].prep[k]);
    fl_free(r->preps[i].prep);
  }
  fl_free(r->preps);
  for (size_t i = 0; i < r->nrecs; i++) fl_free(r->recs[i].store);
  fl_free(r->recs);
  fl_free(r);
}

fl_status_t fl_pbft_restore(fl_pbft_t *p, fl_pbft_record_t kind, uint64_t seq,
                            fl_buf_t bytes) {
  if (p->started) return FL_ESTATE;
  if (bytes.len > 0 && bytes.data == NULL) return FL_EINVAL;
  if (p->rst == NULL) p->rst = fl_calloc(1, sizeof(*p->rst));
  fl__pbft_restore_t *r = p->rst;
  fl_status_t rc = FL_OK;
  switch (kind) {
  case FL_PBFT_REC_VIEW: {
    uint64_t v = 0;
    bool vc = false;
    rc = fl__pbft_dec_viewstate(bytes, &v, &vc);
    if (rc < 0) return rc;
    if (!r->have_view || v > r->view || (v == r->view && !vc)) {
      r->view = v;
      r->vc = vc;
      r->have_view = true;
    }
    break;
  }
  case FL_PBFT_REC_CHECKPOINT: {
    uint64_t s = 0;
    uint8_t d[DLEN];
    fl__pbft_smsg_t **pr = NULL;
    uint32_t npr = 0;
    rc = fl__pbft_dec_stable(&p->codec, bytes, &s, d, &pr, &npr);
    if (rc < 0) return rc;
    uint64_t ps = 0;
    uint8_t pd[DLEN];
    bool ok = s == seq && fl__pbft_check_proof(p, pr, npr, &ps, pd) &&
              ps == s && memcmp(pd, d, DLEN) == 0;
    if (ok && s > r->ck_seq) {
      for (uint32_t i = 0; i < r->nck_proof; i++) fl__pbft_smsg_unref(r->ck_proof[i]);
      fl_free(r->ck_proof);
      r->ck_seq = s;
      memcpy(r->ck_d, d, DLEN);
      r->ck_proof = pr;
      r->nck_proof = npr;
    } else {
      for (uint32_t i = 0; i < npr; i++) fl__pbft_smsg_unref(pr[i]);
      fl_free(pr);
      if (!ok) return FL_EMALFORMED;
    }
    break;
  }
  case FL_PBFT_REC_ENTRY: {
    uint64_t s = 0;
    fl__pbft_smsg_t *pp = NULL;
    fl__pbft_cert_t cert;
    rc = fl__pbft_dec_logentry(&p->codec, bytes, &s, &pp, &cert);
    if (rc < 0) return rc;
    if (s != seq || (pp && pp->u.pp.seq != s) ||
        (cert.pp && cert.pp->u.pp.seq != s)) {
      fl__pbft_smsg_unref(pp);
      fl__pbft_cert_clear(&cert);
      return FL_EMALFORMED;
    }
    if (r->nents == r->capents) {
      r->capents = r->capents ? r->capents * 2 : 64;
      r->ents = fl_reallocarray(r->ents, r->capents, sizeof(*r->ents));
    }
    r->ents[r->nents].seq = s;
    r->ents[r->nents].pp = pp;
    r->ents[r->nents].cert = cert;
    r->nents++;
    break;
  }
  case FL_PBFT_REC_PREPARED: {
    uint64_t s = 0, v = 0;
    uint8_t d[DLEN];
    fl__pbft_smsg_t **prep = NULL;
    uint32_t nprep = 0;
    rc = fl__pbft_dec_prepared(&p->codec, bytes, &s, &v, d, &prep, &nprep);
    if (rc < 0) return rc;
    if (s != seq) {
      for (uint32_t k = 0; k < nprep; k++) fl__pbft_smsg_unref(prep[k]);
      fl_free(prep);
      return FL_EMALFORMED;
    }
    if (r->npreps == r->cappreps) {
      r->cappreps = r->cappreps ? r->cappreps * 2 : 64;
      r->preps = fl_reallocarray(r->preps, r->cappreps, sizeof(*r->preps));
    }
    r->preps[r->npreps].seq = s;
    r->preps[r->npreps].view = v;
    memcpy(r->preps[r->npreps].d, d, DLEN);
    r->preps[r->npreps].prep = prep;
    r->preps[r->npreps].nprep = nprep;
    r->npreps++;
    break;
  }
  case FL_PBFT_REC_COMMITTED: {
    fl__pbft_committed_t ce;
    uint8_t *store = NULL;
    rc = fl__pbft_dec_committed(bytes, &ce, &store, p->n);
    if (rc < 0) return rc;
    if (ce.seq != seq) {
      fl_free(store);
      return FL_EMALFORMED;
    }
    if (r->nrecs == r->caprecs) {
      r->caprecs = r->caprecs ? r->caprecs * 2 : 64;
      r->recs = fl_reallocarray(r->recs, r->caprecs, sizeof(*r->recs));
    }
    r->recs[r->nrecs].ce = ce;
    r->recs[r->nrecs].store = store;
    r->nrecs++;
    break;
  }
  default:
    return FL_EINVAL;
  }
  r->any = true;
  return FL_OK;
}

static int rec_cmp(const void *a, const void *b) {
  uint64_t x = ((const fl__pbft_committed_t *)a)->seq;
  uint64_t y = ((const fl__pbft_committed_t *)b)->seq;
  return x < y ? -1 : x > y;
}

/* Rebuilds the at-most-once window from one executed record. */
static fl_status_t restore_dd(fl_pbft_t *p, const fl__pbft_committed_t *ce) {
  fl__pbft_batch_t *b = NULL;
  fl_status_t rc = fl__pbft_batch_decode(&p->own_codec, ce->batch, &b);
  if (rc < 0) return FL_EMALFORMED;
  dd_fill(p, ce->seq, b, ce->dropped, ce->ndropped);
  fl__pbft_batch_unref(b);
  return FL_OK;
}

static fl__pbft_smsg_t *sign_vote(fl_pbft_t *p, fl_pbft_msg_type_t t,
                                  uint64_t view, uint64_t seq,
                                  const uint8_t d[DLEN]) {
  fl_sbuf_t msg = {0}, sgn = {0};
  fl__pbft_enc_vote(t, view, seq, d, &msg);
  fl__pbft_smsg_t *m = NULL;
  if (fl__pbft_sign_wrap(&p->ops, p->self, fl_sbuf_view(&msg), &sgn) == FL_OK)
    (void)fl__pbft_decode(&p->own_codec, fl_sbuf_view(&sgn), &m);
  fl_sbuf_free(&msg);
  fl_sbuf_free(&sgn);
  return m;
}

fl_status_t fl__pbft_restore_finish(fl_pbft_t *p) {
  fl__pbft_restore_t *r = p->rst;
  fl_status_t rc = FL_OK;
  p->view = r->view;
  p->in_vc = r->vc;
  if (r->ck_seq > 0) {
    p->low = r->ck_seq;
    memcpy(p->low_d, r->ck_d, DLEN);
    p->low_proof = r->ck_proof;
    p->nlow_proof = r->nck_proof;
    r->ck_proof = NULL;
    r->nck_proof = 0;
  }
  /* Execution state and the at-most-once window. */
  if (r->nrecs > 0) {
    /* recs[i].ce is the first member: sort the pairs by it. */
    qsort(r->recs, r->nrecs, sizeof(*r->recs), rec_cmp);
    /* The consecutive run that ends at the last record. Records below a
     * gap are what the host kept from before a state transfer by snapshot
     * (section 8): they are not ours to use. */
    size_t lo = r->nrecs - 1;
    while (lo > 0 && r->recs[lo - 1].ce.seq + 1 == r->recs[lo].ce.seq) lo--;
    for (size_t i = 0; i < lo; i++)
      if (r->recs[i].ce.seq == r->recs[i + 1].ce.seq) {
        rc = FL_EMALFORMED; /* the same seq twice */
        goto done;
      }
    const fl__pbft_committed_t *last = &r->recs[r->nrecs - 1].ce;
    if (r->recs[lo].ce.seq != 1 && r->nrecs - lo < p->D) {
      if (lo == 0) {
        rc = FL_EMALFORMED; /* the window would be incomplete */
        goto done;
      }
      /* A snapshot was being installed when we stopped: the window is not
       * complete yet. Start from nothing; state transfer fetches it again. */
      FL_WARN(FL__PBFT_LOG,
              "restore: the last %zu records (from seq %llu) do not cover the at-most-once "
              "window and follow a gap: execution state not restored replica=%u",
              r->nrecs - lo, (unsigned long long)r->recs[lo].ce.seq, p->self);
      goto window_done;
    }
    for (size_t i = lo; i < r->nrecs; i++) {
      const fl__pbft_committed_t *ce = &r->recs[i].ce;
      if (ce->seq + p->D <= last->seq) continue;
      rc = restore_dd(p, ce);
      if (rc < 0) goto done;
    }
    p->last_exec = last->seq;
    memcpy(p->state, last->state, DLEN);
    memcpy(p->head, last->head, DLEN);
    p->last_block = p->delivered = last->block_number;
  }
window_done:
  /* Log entries in the window. */
  for (size_t i = 0; i < r->nents; i++) {
    fl__pbft_entry_t *e = fl__pbft_entry(p, r->ents[i].seq);
    if (e == NULL) continue;
    fl__pbft_cert_clear(&e->cert);
    e->cert = r->ents[i].cert;
    memset(&r->ents[i].cert, 0, sizeof(r->ents[i].cert));
    fl__pbft_smsg_t *pp = r->ents[i].pp;
    /* A PREPARED record for this pre-prepare completes a certificate of
     * its view, which beats an older one carried by the ENTRY. */
    for (size_t k = 0; pp && k < r->npreps; k++) {
      if (r->preps[k].seq != e->seq || r->preps[k].view != pp->u.pp.view ||
          memcmp(r->preps[k].d, pp->u.pp.d, DLEN) != 0 ||
          r->preps[k].nprep < 2 * p->f)
        continue;
      if (e->cert.pp && e->cert.pp->u.pp.view >= pp->u.pp.view) break;
      fl__pbft_cert_clear(&e->cert);
      e->cert.pp = fl__pbft_smsg_ref(pp);
      e->cert.prep = r->preps[k].prep;
      e->cert.nprep = r->preps[k].nprep;
      r->preps[k].prep = NULL;
      r->preps[k].nprep = 0;
      break;
    }
    if (pp == NULL || pp->u.pp.view != p->view || p->in_vc) continue;
    if (pp->replica != fl__pbft_primary(p, p->view)) continue;
    e->pp = fl__pbft_smsg_ref(pp);
    fl__pbft_attach_batch(p, pp); /* e.g. from the certificate; else fetched */
    if (e->seq > p->last_exec && pp->u.pp.batch) {
      for (uint32_t k = 0; k < pp->u.pp.batch->nreq; k++) {
        fl_buf_t tx = pp->u.pp.batch->reqs[k].tx_id;
        bool existed = false;
        fl__pbft_slot_t *sl = fl__pbft_map_put(&p->inflight, tx.data, tx.len, &existed);
        if (!existed) sl->val = e->seq;
      }
    }
    uint32_t prim = fl__pbft_primary(p, p->view);
    if (prim == p->self) {
      if (e->seq >= p->next_seq) p->next_seq = e->seq + 1;
    } else {
      e->prep[p->self] = sign_vote(p, FL_PBFT_MSG_PREPARE, p->view, e->seq, pp->u.pp.d);
    }
    if (e->cert.pp && e->cert.pp->u.pp.view == p->view &&
        memcmp(e->cert.pp->u.pp.d, pp->u.pp.d, DLEN) == 0) {
      for (uint32_t k = 0; k < e->cert.nprep; k++) {
        uint32_t rep = e->cert.prep[k]->replica;
        if (e->prep[rep] == NULL) e->prep[rep] = fl__pbft_smsg_ref(e->cert.prep[k]);
      }
      e->prepared = true;
      e->com[p->self] = sign_vote(p, FL_PBFT_MSG_COMMIT, p->view, e->seq, pp->u.pp.d);
    }
    /* counts */
    e->nprep = e->ncom = 0;
    for (uint32_t k = 0; k < p->n; k++) {
      if (k != prim && e->prep[k] && memcmp(e->prep[k]->u.vote.d, pp->u.pp.d, DLEN) == 0)
        e->nprep++;
      if (e->com[k] && memcmp(e->com[k]->u.vote.d, pp->u.pp.d, DLEN) == 0) e->ncom++;
    }
    e->sent_at = 0;
  }
  if (p->next_seq <= p->low) p->next_seq = p->low + 1;
  if (p->last_exec < p->low)
    fl__pbft_st_begin(p, p->low, p->low_d, p->low_proof, p->nlow_proof);
done:
  fl__pbft_restore_free(r);
  p->rst = NULL;
  return rc;
}
