/* SPDX-License-Identifier: Apache-2.0
 *
 * endorser.c: proposal checks, simulation on a ledger snapshot and the
 * signed ProposalResponse (endorser.h); also the chaincode runtime's state
 * adapter over the ledger with namespaced keys.
 */
#include "peer/node/endorser.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/crypto/x509.h"
#include "common/net/lat.h"
#include "common/protoutil/proposal.h"
#include "peer/node/wire.h"

#define LOG "endorser"

struct fl_endorser_s {
  char *channel;
  fl_msp_t *msp;
  fl_sigcache_t *sigcache;
  fl_ledger_t *ledger;
  fl_ccrt_t *ccrt;
  const fl_signer_t *signer;
  fl_sbuf_t identity;
  fl_msp_info_t self;
  uint64_t ts_window_ms;      /* UINT64_MAX = no check */
  uint64_t (*now_ms)(void);
};

/* ------------------------------------------------------- state adapter */

typedef struct range_it_s {
  fl_ledger_range_t *it;
  size_t strip; /* bytes of ns || 0x00 */
} range_it_t;

static fl_status_t st_get(void *ctx, fl_buf_t key, fl_sbuf_t *val, fl_ccrt_version_t *ver) {
  fl_endorser_state_t *s = ctx;
  fl_sbuf_t k = {0};
  fl__pw_ns_key(s->ns, key, &k);
  fl_ledger_version_t v = {0};
  fl_status_t rc = fl_ledger_state_get(s->ledger, s->snap, fl_sbuf_view(&k), val, &v);
  fl_sbuf_free(&k);
  *ver = (fl_ccrt_version_t){v.block, v.tx};
  return rc;
}

static fl_status_t st_range_new(void *ctx, fl_buf_t start, fl_buf_t end, void **out) {
  fl_endorser_state_t *s = ctx;
  fl_sbuf_t a = {0}, b = {0};
  fl__pw_ns_key(s->ns, start, &a);
  if (end.len == 0) fl__pw_ns_end(s->ns, &b);
  else fl__pw_ns_key(s->ns, end, &b);
  range_it_t *r = fl_calloc(1, sizeof(*r));
  r->strip = strlen(s->ns) + 1;
  fl_status_t rc = fl_ledger_range_new(s->ledger, s->snap, fl_sbuf_view(&a), fl_sbuf_view(&b),
                                       &r->it);
  fl_sbuf_free(&a);
  fl_sbuf_free(&b);
  if (rc < 0) {
    fl_free(r);
    r = NULL;
  }
  *out = r;
  return rc;
}

static fl_status_t st_range_next(void *it, fl_buf_t *key, fl_buf_t *val, fl_ccrt_version_t *ver) {
  range_it_t *r = it;
  fl_ledger_version_t v = {0};
  fl_buf_t k;
  fl_status_t rc = fl_ledger_range_next(r->it, &k, val, &v);
  if (rc != FL_OK) return rc;
  if (k.len < r->strip) return FL_ECORRUPT; /* cannot happen inside the ns range */
  *key = FL_BUF(k.data + r->strip, k.len - r->strip);
  *ver = (fl_ccrt_version_t){v.block, v.tx};
  return FL_OK;
}

static void st_range_free(void *it) {
  range_it_t *r = it;
  if (r == NULL) return;
  fl_ledger_range_free(r->it);
  fl_free(r);
}

static fl_status_t st_hist_new(void *ctx, fl_buf_t key, void **it) {
  fl_endorser_state_t *s = ctx;
  fl_sbuf_t k = {0};
  fl__pw_ns_key(s->ns, key, &k);
  fl_ledger_hist_t *h = NULL;
  fl_status_t rc = fl_ledger_hist_new(s->ledger, s->snap, fl_sbuf_view(&k), true, &h);
  fl_sbuf_free(&k);
  *it = h;
  return rc;
}

static fl_status_t st_hist_next(void *it, fl_ccrt_mod_t *m) {
  fl_ledger_mod_t x;
  fl_status_t rc = fl_ledger_hist_next(it, &x);
  if (rc == FL_OK)
    *m = (fl_ccrt_mod_t){.tx_id = x.tx_id, .block = x.block, .tx = x.tx,
                         .is_delete = x.is_delete, .value = x.value};
  return rc;
}

static void st_hist_free(void *it) { fl_ledger_hist_free(it); }

/* The blob store is channel-wide, not per namespace: content-addressed
 * bytes, the same whichever chaincode's transaction stored them. */
static fl_status_t st_blob_get(void *ctx, const uint8_t hash[FL_CCRT_HASH_LEN], fl_sbuf_t *out) {
  fl_endorser_state_t *s = ctx;
  return fl_ledger_blob_get(s->ledger, s->snap, hash, out);
}

static const fl_ccrt_state_ops_t state_ops = {
    .get = st_get, .range_new = st_range_new, .range_next = st_range_next,
    .range_free = st_range_free, .hist_new = st_hist_new, .hist_next = st_hist_next,
    .hist_free = st_hist_free, .blob_get = st_blob_get};

const fl_ccrt_state_ops_t *fl_endorser_state_ops(void) { return &state_ops; }

/* ------------------------------------------------------------ lifecycle */

fl_status_t fl_endorser_new(const fl_endorser_opts_t *o, fl_endorser_t **out) {
  *out = NULL;
  if (o == NULL || o->channel == NULL || o->msp == NULL || o->ledger == NULL ||
      o->ccrt == NULL || o->signer == NULL || o->identity.len == 0)
    return FL_EINVAL;
  char mspid[FL_MSPID_MAX + 1];
  fl_sbuf_t pem = {0}, sig = {0};
  fl_cert_t *cert = NULL;
  fl_endorser_t *e = fl_calloc(1, sizeof(*e));
  fl_status_t rc = fl__pw_identity_decode(o->identity, mspid, &pem);
  if (rc < 0) goto fail;
  rc = fl_msp_validate(o->msp, mspid, pem.data, pem.len, FL_ROLE_PEER, &e->self);
  if (rc < 0) {
    FL_ERROR(LOG, "own identity refused mspid=%s rc=%s reason=%s", mspid, fl_status_name(rc),
             e->self.reason);
    goto fail;
  }
  if ((rc = fl_cert_from_pem(pem.data, pem.len, &cert)) < 0) goto fail;
  static const char probe[] = "fedledger endorser key check";
  if (fl_signer_sign(o->signer, probe, sizeof(probe), &sig) != FL_OK ||
      fl_verify(fl_cert_pubkey(cert), probe, sizeof(probe), sig.data, sig.len) != FL_OK) {
    FL_ERROR(LOG, "signing key does not match the identity certificate");
    rc = FL_EPERM;
    goto fail;
  }
  e->channel = fl_strdup(o->channel);
  e->msp = o->msp;
  e->sigcache = o->sigcache;
  e->ledger = o->ledger;
  e->ccrt = o->ccrt;
  e->signer = o->signer;
  e->ts_window_ms = o->timestamp_window_ms ? o->timestamp_window_ms
                                           : FL_ENDORSER_TS_WINDOW_DEFAULT_MS;
  e->now_ms = o->now_ms ? o->now_ms : fl_wall_ms;
  fl_sbuf_append(&e->identity, o->identity.data, o->identity.len);
  *out = e;
  e = NULL;
  rc = FL_OK;
fail:
  fl_endorser_free(e);
  fl_cert_free(cert);
  fl_sbuf_free(&pem);
  fl_sbuf_free(&sig);
  return rc;
}

void fl_endorser_free(fl_endorser_t *e) {
  if (e == NULL) return;
  fl_free(e->channel);
  fl_sbuf_free(&e->identity);
  fl_free(e);
}

/* ---------------------------------------------------------------- process */

static void refuse(fl_endorse_result_t *res, int32_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(fl_endorse_result_t *res, int32_t status, const char *fmt, ...) {
  res->status = status;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
  va_end(ap);
}

static fl_status_t verify_creator(fl_endorser_t *e, const fl_proposal_t *p,
                                  fl_msp_info_t *info, fl_endorse_result_t *res) {
  fl_buf_t part = p->proposal_bytes;
  fl_status_t rc;
  if (e->sigcache)
    rc = fl_sigcache_verify(e->sigcache, p->header.creator, &part, 1, p->signature,
                            FL_ROLE_NONE, info);
  else
    rc = fl_proposal_verify_creator(p, e->msp, FL_ROLE_NONE, info);
  if (rc == FL_EBADSIG) {
    refuse(res, 403, "creator signature does not verify");
  } else if (rc == FL_EREVOKED) {
    refuse(res, 403, "creator is revoked");
  } else if (rc < 0) {
    refuse(res, 403, "creator refused: %s", info->reason);
  } else if (info->role != FL_ROLE_CLIENT && info->role != FL_ROLE_ADMIN) {
    refuse(res, 403, "creator role '%s' may not send proposals (client or admin)",
           fl_role_name(info->role));
    rc = FL_EPERM;
  }
  return rc;
}

/* Refuses (400) a proposal whose timestamp is outside the window around
 * this peer's clock; checked before the signature, which costs more. */
static bool timestamp_ok(const fl_endorser_t *e, const fl_proposal_t *p,
                         fl_endorse_result_t *res) {
  if (e->ts_window_ms == UINT64_MAX) return true;
  uint64_t now = e->now_ms(), ts = p->header.timestamp_ms;
  uint64_t skew = ts > now ? ts - now : now - ts;
  if (skew <= e->ts_window_ms) return true;
  refuse(res, 400,
         "proposal timestamp %llu ms is %llu.%03llu s %s this peer's clock (%llu ms); "
         "the window is %llu s (endorser.timestamp_window): check the client's clock",
         (unsigned long long)ts, (unsigned long long)(skew / 1000),
         (unsigned long long)(skew % 1000), ts > now ? "ahead of" : "behind",
         (unsigned long long)now, (unsigned long long)(e->ts_window_ms / 1000));
  return false;
}

/* Copies a view into a NUL-terminated string owned by the caller. */
static char *cstr(fl_buf_t b) { return fl_strndup((const char *)b.data, b.len); }

fl_status_t fl_endorser_process(fl_endorser_t *e, fl_buf_t sp, bool endorse, fl_sbuf_t *out,
                                fl_endorse_result_t *res) {
  if (e == NULL || out == NULL || res == NULL) return FL_EINVAL;
  memset(res, 0, sizeof(*res));
  fl_proposal_t *p = NULL;
  fl_ledger_snap_t *snap = NULL;
  fl_ccrt_result_t *r = NULL;
  char *err = NULL, *msg = NULL, *ev_name = NULL;
  fl_sbuf_t pem = {0}, payload = {0}, sig = {0};
  fl_proposal_response_t pr = {.response = {.status = 500, .message = ""}};
  const char *why = "?";
  fl_status_t rc = fl_signed_proposal_decode(sp.data, sp.len, &p, &why);
  if (rc < 0) {
    refuse(res, 400, "bad proposal: %s", why);
    goto answer;
  }
  memcpy(res->tx_id, p->header.tx_id, sizeof(res->tx_id));
  if (strcmp(p->header.channel, e->channel) != 0) {
    refuse(res, 400, "proposal for channel '%s', this peer serves another", p->header.channel);
    goto answer;
  }
  if (!timestamp_ok(e, p, res)) goto answer;
  fl_msp_info_t info;
  if (verify_creator(e, p, &info, res) < 0) goto answer;
  bool used = false;
  rc = fl_ledger_tx_exists(e->ledger, FL_BUF(p->header.tx_id, FL_TXID_HEX_LEN), &used);
  if (rc < 0) {
    refuse(res, 500, "ledger read failed: %s", fl_status_str(rc));
    goto answer;
  }
  if (used) {
    refuse(res, 409, "tx id %s is already in the ledger", p->header.tx_id);
    goto answer;
  }
  fl_ccrt_cc_t *cc = fl_ccrt_find(e->ccrt, p->chaincode);
  if (cc == NULL) {
    refuse(res, 404, "chaincode '%s' is not installed on this peer", p->chaincode);
    goto answer;
  }
  char mspid[FL_MSPID_MAX + 1];
  if (fl__pw_identity_decode(p->header.creator, mspid, &pem) < 0) {
    refuse(res, 400, "creator identity does not decode");
    goto answer;
  }
  if ((rc = fl_ledger_snap_new(e->ledger, &snap)) < 0) {
    refuse(res, 500, "ledger snapshot failed: %s", fl_status_str(rc));
    goto answer;
  }
  fl_endorser_state_t st = {.ledger = e->ledger, .snap = snap, .ns = p->chaincode};
  const char *role = fl_role_name(info.role);
  fl_ccrt_invocation_t inv = {
      .tx_id = FL_BUF(p->header.tx_id, FL_TXID_HEX_LEN), .timestamp_ms = p->header.timestamp_ms,
      .args = p->args, .nargs = p->n_args, .blobs = p->blobs, .nblobs = p->n_blobs,
      .transient = p->transient,
      .creator = {.mspid = FL_BUF_STR(info.mspid), .cert_pem = fl_sbuf_view(&pem),
                  .role = FL_BUF_STR(role)}};
  memcpy(inv.creator.cert_sha256, info.cert_sha256, FL_SHA256_LEN);
  rc = fl_ccrt_simulate(cc, &state_ops, &st, &inv, &r, &err);
  if (rc < 0) {
    refuse(res, 500, "chaincode failed: %s", err ? err : fl_status_str(rc));
    goto answer;
  }
  res->sim_ns = r->elapsed_ns;
  FL_LAT("peer endorse_sim tx=%.16s sim_us=%llu", p->header.tx_id,
         (unsigned long long)(r->elapsed_ns / 1000));
  msg = cstr(r->message);
  pr.response = (fl_response_t){.status = r->status, .message = msg, .payload = r->payload};
  res->status = r->status;
  if (r->status >= 400) {
    snprintf(res->reason, sizeof(res->reason), "chaincode answered %d: %s", r->status, msg);
    goto encode;
  }
  if (!endorse) goto encode;
  fl_resp_payload_t rp = {.results = r->rwset_bytes, .has_event = r->has_event,
                          .response = pr.response,
                          .chaincode_version = fl_ccrt_cc_version(cc)};
  memcpy(rp.proposal_hash, p->proposal_hash, FL_SHA256_LEN);
  if (r->has_event) {
    ev_name = cstr(r->event_name);
    rp.event = (fl_cc_event_t){.chaincode = p->chaincode, .tx_id = p->header.tx_id,
                               .name = ev_name, .payload = r->event_payload};
  }
  if ((rc = fl_resp_payload_encode(&rp, &payload)) < 0) {
    refuse(res, 500, "response payload does not encode: %s", fl_status_str(rc));
    pr.response = (fl_response_t){.status = 500, .message = res->reason};
    goto encode;
  }
  if ((rc = fl_endorsement_sign(fl_sbuf_view(&payload), fl_sbuf_view(&e->identity), e->signer,
                                &sig)) < 0) {
    refuse(res, 500, "signing failed: %s", fl_status_str(rc));
    pr.response = (fl_response_t){.status = 500, .message = res->reason};
    goto encode;
  }
  fl_buf_t parts[2] = {fl_sbuf_view(&payload), fl_sbuf_view(&e->identity)};
  if (e->sigcache)
    fl_sigcache_add(e->sigcache, fl_sbuf_view(&e->identity), parts, 2, fl_sbuf_view(&sig),
                    &e->self);
  pr.payload = fl_sbuf_view(&payload);
  pr.has_endorsement = true;
  pr.endorsement = (fl_endorsement_t){.endorser = fl_sbuf_view(&e->identity),
                                      .signature = fl_sbuf_view(&sig)};
  res->endorsed = true;
  goto encode;
answer:
  pr.response = (fl_response_t){.status = res->status, .message = res->reason};
encode:
  rc = fl_proposal_response_encode(&pr, out);
  if (res->status >= 400)
    FL_DEBUG(LOG, "proposal refused txid=%s status=%d reason=%s", res->tx_id, res->status,
             res->reason);
  fl_ccrt_result_free(r);
  fl_ledger_snap_free(snap);
  fl_proposal_free(p);
  fl_free(err);
  fl_free(msg);
  fl_free(ev_name);
  fl_sbuf_free(&pem);
  fl_sbuf_free(&payload);
  fl_sbuf_free(&sig);
  return rc;
}
