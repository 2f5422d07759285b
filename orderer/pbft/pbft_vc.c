/* SPDX-License-Identifier: Apache-2.0
 *
 * pbft_vc.c: view change (Castro & Liskov, OSDI'99 section 4.4).
 *
 * A replica moves to view v+1 when a request it holds is not executed in
 * time (request_timeout_ms, restarted by every execution), when it has
 * waited too long for a NEW-VIEW, or when f+1 other replicas ask for a
 * higher view (it then joins the smallest). It persists the view, then
 * sends VIEW-CHANGE(v+1) carrying its stable checkpoint proof and every
 * prepared certificate above it. The NEW-VIEW timer starts only once 2f+1
 * VIEW-CHANGEs for the view are in (so a replica that is alone in wanting
 * a change does not race ahead through views), and doubles on every
 * consecutive failed view change up to view_change_max_backoff.
 *
 * The primary of v+1, with 2f+1 valid VIEW-CHANGEs, computes
 *   min_s = the highest stable checkpoint among them,
 *   max_s = the highest prepared seq among them,
 * and for each seq in (min_s, max_s] re-proposes the batch of the highest-
 * view prepared certificate, or a null request when none. Backups check the
 * NEW-VIEW by recomputing exactly that from the VIEW-CHANGEs it carries.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "orderer/pbft/pbft_int.h"

#define NEVER UINT64_MAX

/* Checks a VIEW-CHANGE's content; its signatures were checked by the codec. */
static bool vc_valid(fl_pbft_t *p, const fl__pbft_smsg_t *m) {
  uint64_t stable = m->u.vc.stable_seq, nv = m->u.vc.new_view;
  if (stable % p->K != 0) return false;
  if (stable == 0) {
    if (m->u.vc.nproof != 0) return false;
  } else {
    uint64_t s = 0;
    uint8_t d[DLEN];
    if (!fl__pbft_check_proof(p, m->u.vc.proof, m->u.vc.nproof, &s, d) ||
        s != stable)
      return false;
  }
  uint64_t prev = stable;
  for (uint32_t i = 0; i < m->u.vc.ncert; i++) {
    const fl__pbft_cert_t *c = &m->u.vc.certs[i];
    const fl__pbft_smsg_t *pp = c->pp;
    uint64_t s = pp->u.pp.seq, v = pp->u.pp.view;
    if (s <= prev || s > stable + p->L || v >= nv ||
        pp->replica != fl__pbft_primary(p, v))
      return false;
    prev = s;
    uint64_t seen = 0;
    uint32_t good = 0;
    for (uint32_t j = 0; j < c->nprep; j++) {
      const fl__pbft_smsg_t *pr = c->prep[j];
      if (pr->replica == pp->replica || pr->u.vote.view != v ||
          pr->u.vote.seq != s || memcmp(pr->u.vote.d, pp->u.pp.d, DLEN) != 0)
        return false;
      if ((seen >> pr->replica) & 1u) continue;
      seen |= 1ull << pr->replica;
      good++;
    }
    if (good < 2 * p->f) return false;
  }
  return true;
}

typedef struct nvplan_s {
  uint64_t min_s, max_s;
  uint8_t min_d[DLEN];
  const fl__pbft_smsg_t *proof_vc; /* the VIEW-CHANGE proving min_s */
  const fl__pbft_smsg_t **best;    /* [max_s - min_s]: pre-prepare or NULL */
} nvplan_t;

static void nv_plan(fl_pbft_t *p, fl__pbft_smsg_t *const *vcs, uint32_t nvc,
                    nvplan_t *pl) {
  memset(pl, 0, sizeof(*pl));
  memcpy(pl->min_d, p->genesis, DLEN);
  for (uint32_t i = 0; i < nvc; i++) {
    const fl__pbft_smsg_t *m = vcs[i];
    if (pl->proof_vc == NULL || m->u.vc.stable_seq > pl->min_s) {
      pl->min_s = m->u.vc.stable_seq;
      pl->proof_vc = m;
    }
  }
  if (pl->min_s > 0) memcpy(pl->min_d, pl->proof_vc->u.vc.proof[0]->u.ck.d, DLEN);
  pl->max_s = pl->min_s;
  for (uint32_t i = 0; i < nvc; i++)
    for (uint32_t j = 0; j < vcs[i]->u.vc.ncert; j++) {
      uint64_t s = vcs[i]->u.vc.certs[j].pp->u.pp.seq;
      if (s > pl->max_s) pl->max_s = s;
    }
  /* Each certificate lies within its own VIEW-CHANGE's window, and every
   * stable seq is <= min_s, so max_s - min_s <= L. */
  FL_ASSERT(pl->max_s - pl->min_s <= p->L);
  size_t span = (size_t)(pl->max_s - pl->min_s);
  pl->best = fl_calloc(span ? span : 1, sizeof(*pl->best));
  for (uint32_t i = 0; i < nvc; i++)
    for (uint32_t j = 0; j < vcs[i]->u.vc.ncert; j++) {
      const fl__pbft_smsg_t *pp = vcs[i]->u.vc.certs[j].pp;
      uint64_t s = pp->u.pp.seq;
      if (s <= pl->min_s) continue;
      const fl__pbft_smsg_t **b = &pl->best[s - pl->min_s - 1];
      if (*b == NULL || pp->u.pp.view > (*b)->u.pp.view) *b = pp;
    }
}

static uint32_t vc_count(const fl_pbft_t *p, uint64_t view) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < p->n; i++)
    if (p->vc_from[i] && p->vc_from[i]->u.vc.new_view == view) k++;
  return k;
}

/* The NEW-VIEW timer runs once 2f+1 replicas (us included) are changing
 * to our view or beyond: a replica that already gave up on our view and
 * asks for a later one counts, or the rest would wait for ever. */
static void vc_quorum_check(fl_pbft_t *p) {
  if (!p->in_vc || p->vc_deadline != NEVER) return;
  uint32_t k = 0;
  for (uint32_t i = 0; i < p->n; i++)
    if (p->vc_from[i] && p->vc_from[i]->u.vc.new_view >= p->view) k++;
  if (k < p->q) return;
  uint64_t t = p->cfg.view_change_timeout_ms << p->backoff;
  p->vc_deadline = p->now + t;
}

static void install(fl_pbft_t *p, fl__pbft_smsg_t *nv, const nvplan_t *pl);

static void try_new_view(fl_pbft_t *p) {
  if (!p->in_vc || fl__pbft_primary(p, p->view) != p->self) return;
  if (vc_count(p, p->view) < p->q || p->vc_from[p->self] == NULL ||
      p->vc_from[p->self]->u.vc.new_view != p->view)
    return;
  fl__pbft_smsg_t **vcs = fl_calloc(p->q, sizeof(*vcs));
  uint32_t nvc = 0;
  /* Our own first, then the others by id. */
  vcs[nvc++] = p->vc_from[p->self];
  for (uint32_t i = 0; i < p->n && nvc < p->q; i++)
    if (i != p->self && p->vc_from[i] &&
        p->vc_from[i]->u.vc.new_view == p->view)
      vcs[nvc++] = p->vc_from[i];
  FL_ASSERT(vcs[0] && vcs[0]->u.vc.new_view == p->view && nvc == p->q);
  nvplan_t pl;
  nv_plan(p, vcs, nvc, &pl);
  uint32_t npp = (uint32_t)(pl.max_s - pl.min_s);
  fl__pbft_smsg_t **pps = fl_calloc(npp ? npp : 1, sizeof(*pps));
  uint32_t made = 0;
  for (; made < npp; made++) {
    uint64_t s = pl.min_s + 1 + made;
    const fl__pbft_smsg_t *b = pl.best[made];
    /* Digest only: the NEW-VIEW stays small whatever the batch size;
     * replicas take the batch from their own log or fetch it. */
    fl_sbuf_t msg = {0}, sgn = {0};
    fl__pbft_enc_pp(p->view, s, b ? b->u.pp.d : p->null_digest, &msg);
    fl_status_t rc = fl__pbft_sign_wrap(&p->ops, p->self, fl_sbuf_view(&msg), &sgn);
    fl_sbuf_free(&msg);
    if (rc == FL_OK) rc = fl__pbft_decode(&p->own_codec, fl_sbuf_view(&sgn), &pps[made]);
    fl_sbuf_free(&sgn);
    if (rc < 0) break;
    if (b && b->u.pp.batch && pps[made]->u.pp.batch == NULL)
      pps[made]->u.pp.batch = fl__pbft_batch_ref(b->u.pp.batch);
  }
  if (made == npp) {
    fl_sbuf_t msg = {0};
    fl__pbft_enc_nv(p->view, vcs, nvc, pps, npp, &msg);
    fl__pbft_smsg_t *nv = fl__pbft_send_own(p, FL_PBFT_TO_ALL, &msg);
    if (nv) {
      install(p, nv, &pl);
      fl__pbft_smsg_unref(nv);
    }
  } else {
    FL_ERROR(FL__PBFT_LOG, "new-view signing failed replica=%u view=%llu",
             p->self, (unsigned long long)p->view);
  }
  for (uint32_t i = 0; i < made; i++) fl__pbft_smsg_unref(pps[i]);
  fl_free(pps);
  fl_free(pl.best);
  fl_free(vcs);
}

void fl__pbft_start_vc(fl_pbft_t *p, uint64_t v) {
  if (v <= p->view) return;
  bool was = p->in_vc;
  p->view = v;
  p->in_vc = true;
  p->stats.view_changes++;
  if (was && p->backoff < p->cfg.view_change_max_backoff) p->backoff++;
  if (p->vc_streak < 30) p->vc_streak++;
  p->vc_deadline = NEVER;
  fl_sbuf_t b = {0};
  fl__pbft_enc_viewstate(v, true, &b);
  fl__pbft_persist(p, FL_PBFT_REC_VIEW, 0, &b);
  /* Prepared certificates above the stable checkpoint, by seq. */
  fl__pbft_cert_t *certs = fl_calloc(p->L, sizeof(*certs));
  uint32_t nc = 0;
  for (uint64_t s = p->low + 1; s <= p->low + p->L; s++) {
    fl__pbft_entry_t *e = &p->log[s % p->L];
    if (e->seq == s && e->cert.pp) certs[nc++] = e->cert;
  }
  fl_sbuf_t msg = {0};
  fl__pbft_enc_vc(v, p->low, p->low_proof, p->nlow_proof, certs, nc, &msg);
  fl_free(certs);
  fl__pbft_smsg_t *m = fl__pbft_send_own(p, FL_PBFT_TO_ALL, &msg);
  fl__pbft_smsg_unref(p->own_vc);
  p->own_vc = m;
  if (m) {
    fl__pbft_smsg_unref(p->vc_from[p->self]);
    p->vc_from[p->self] = fl__pbft_smsg_ref(m);
  }
  FL_INFO(FL__PBFT_LOG,
          "view change replica=%u to_view=%llu low=%llu prepared=%u backoff=%u",
          p->self, (unsigned long long)v, (unsigned long long)p->low, nc,
          p->backoff);
  vc_quorum_check(p);
  try_new_view(p);
}

void fl__pbft_on_vc(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  uint64_t v = m->u.vc.new_view;
  uint32_t j = m->replica;
  if (v < p->view || (v == p->view && !p->in_vc)) {
    p->stats.rx_stale++;
    if (!p->in_vc && p->last_nv && v <= p->view)
      fl__pbft_send_smsg(p, j, p->last_nv);
    return;
  }
  if (!vc_valid(p, m)) {
    p->stats.rx_rejected++;
    return;
  }
  if (p->vc_from[j] && p->vc_from[j]->u.vc.new_view >= v) {
    p->stats.rx_duplicate++;
    return;
  }
  fl__pbft_smsg_unref(p->vc_from[j]);
  p->vc_from[j] = fl__pbft_smsg_ref(m);
  /* Join: f+1 replicas want a view above ours; go to the smallest. */
  uint32_t k = 0;
  uint64_t minv = UINT64_MAX;
  for (uint32_t i = 0; i < p->n; i++) {
    if (i == p->self || p->vc_from[i] == NULL) continue;
    uint64_t w = p->vc_from[i]->u.vc.new_view;
    if (w > p->view) {
      k++;
      if (w < minv) minv = w;
    }
  }
  if (k >= p->f + 1) fl__pbft_start_vc(p, minv);
  vc_quorum_check(p);
  try_new_view(p);
}

static bool nv_valid(fl_pbft_t *p, const fl__pbft_smsg_t *m, nvplan_t *pl) {
  uint64_t v = m->u.nv.view;
  memset(pl, 0, sizeof(*pl));
  if (m->replica != fl__pbft_primary(p, v) || m->u.nv.nvc < p->q) return false;
  uint64_t seen = 0;
  for (uint32_t i = 0; i < m->u.nv.nvc; i++) {
    const fl__pbft_smsg_t *x = m->u.nv.vcs[i];
    if (x->u.vc.new_view != v || ((seen >> x->replica) & 1u) || !vc_valid(p, x))
      return false;
    seen |= 1ull << x->replica;
  }
  nv_plan(p, m->u.nv.vcs, m->u.nv.nvc, pl);
  bool ok = m->u.nv.npp == pl->max_s - pl->min_s;
  for (uint32_t k = 0; ok && k < m->u.nv.npp; k++) {
    const fl__pbft_smsg_t *pp = m->u.nv.pps[k];
    const uint8_t *want = pl->best[k] ? pl->best[k]->u.pp.d : p->null_digest;
    ok = pp->replica == m->replica && pp->u.pp.view == v &&
         pp->u.pp.seq == pl->min_s + 1 + k &&
         memcmp(pp->u.pp.d, want, DLEN) == 0;
  }
  if (!ok) {
    fl_free(pl->best);
    pl->best = NULL;
  }
  return ok;
}

void fl__pbft_on_nv(fl_pbft_t *p, fl__pbft_smsg_t *m) {
  uint64_t v = m->u.nv.view;
  if (v < p->view || (v == p->view && !p->in_vc)) {
    p->stats.rx_stale++;
    return;
  }
  nvplan_t pl;
  if (!nv_valid(p, m, &pl)) {
    p->stats.rx_rejected++;
    FL_WARN(FL__PBFT_LOG, "invalid new-view replica=%u from=%u view=%llu",
            p->self, m->replica, (unsigned long long)v);
    return;
  }
  install(p, m, &pl);
  fl_free(pl.best);
}

static void install(fl_pbft_t *p, fl__pbft_smsg_t *nv, const nvplan_t *pl) {
  uint64_t v = nv->u.nv.view;
  p->view = v;
  p->in_vc = false;
  p->vc_deadline = NEVER;
  p->stats.new_views++;
  fl_sbuf_t b = {0};
  fl__pbft_enc_viewstate(v, false, &b);
  fl__pbft_persist(p, FL_PBFT_REC_VIEW, 0, &b);
  if (pl->min_s > p->low)
    fl__pbft_adopt_stable(p, pl->min_s, pl->min_d, pl->proof_vc->u.vc.proof,
                          pl->proof_vc->u.vc.nproof);
  /* Re-proposals come without batches: take ours (from the earlier
   * pre-prepare or certificate of the seq) before the old view's
   * pre-prepares are dropped; missing ones are fetched from the others. */
  for (uint32_t k = 0; k < nv->u.nv.npp; k++) fl__pbft_attach_batch(p, nv->u.nv.pps[k]);
  for (uint32_t i = 0; i < p->L; i++) {
    fl__pbft_entry_t *e = &p->log[i];
    if (e->seq != 0 && e->view != v) fl__pbft_entry_reset_view(p, e);
  }
  fl__pbft_requeue_inflight(p);
  p->blk_wait_since = p->now; /* the new view gets a full timeout */
  fl__pbft_restart_timers(p);
  for (uint32_t k = 0; k < nv->u.nv.npp; k++) {
    fl__pbft_smsg_t *pp = nv->u.nv.pps[k];
    uint64_t s = pp->u.pp.seq;
    fl__pbft_entry_t *e = fl__pbft_entry(p, s);
    if (e == NULL || e->pp) continue;
    if (s > p->last_exec && pp->u.pp.batch) {
      /* Not checked against the window: the view change decided it. */
      for (uint32_t i = 0; i < pp->u.pp.batch->nreq; i++) {
        fl_buf_t tx = pp->u.pp.batch->reqs[i].tx_id;
        bool existed = false;
        fl__pbft_slot_t *sl = fl__pbft_map_put(&p->inflight, tx.data, tx.len, &existed);
        if (!existed) sl->val = s;
      }
    }
    fl__pbft_accept_pp(p, e, pp);
  }
  uint64_t top = pl->max_s > p->low ? pl->max_s : p->low;
  p->next_seq = top + 1;
  fl__pbft_smsg_unref(p->last_nv);
  p->last_nv = fl__pbft_smsg_ref(nv);
  for (uint32_t i = 0; i < p->n; i++)
    if (p->vc_from[i] && p->vc_from[i]->u.vc.new_view <= v) {
      fl__pbft_smsg_unref(p->vc_from[i]);
      p->vc_from[i] = NULL;
    }
  fl__pbft_smsg_unref(p->own_vc);
  p->own_vc = NULL;
  FL_INFO(FL__PBFT_LOG,
          "new view installed replica=%u view=%llu primary=%u min_s=%llu max_s=%llu",
          p->self, (unsigned long long)v, fl__pbft_primary(p, v),
          (unsigned long long)pl->min_s, (unsigned long long)pl->max_s);
  fl__pbft_forward_queued(p, true);
  fl__pbft_propose(p);
}

void fl__pbft_vc_tick(fl_pbft_t *p) {
  if (p->in_vc && p->own_vc) fl__pbft_send_smsg(p, FL_PBFT_TO_ALL, p->own_vc);
}
