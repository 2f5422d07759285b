/* SPDX-License-Identifier: Apache-2.0
 *
 * validator.c: block checks, per-transaction validation and the commit of
 * a block (validator.h).
 *
 * Memory of a vblock: decoded envelopes, transactions and read-write sets
 * per transaction (owned by the vtx entries), and one arena of chunks for
 * the namespaced keys and the arrays handed to the ledger (pointers into a
 * chunk stay valid until the vblock is freed).
 */
#include "peer/node/validator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/crypto/x509.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/proposal.h"
#include "common/protoutil/rwset.h"
#include "peer/node/wire.h"
#include "peer/policy/policy.h"

#define LOG "validator"

const char *fl_tx_code_name(int code) {
  switch (code) {
  case FL_TX_VALID: return "VALID";
  case FL_TX_NIL_ENVELOPE: return "NIL_ENVELOPE";
  case FL_TX_BAD_PAYLOAD: return "BAD_PAYLOAD";
  case FL_TX_BAD_CREATOR_SIGNATURE: return "BAD_CREATOR_SIGNATURE";
  case FL_TX_BAD_PROPOSAL: return "BAD_PROPOSAL";
  case FL_TX_BAD_PROPOSAL_TXID: return "BAD_PROPOSAL_TXID";
  case FL_TX_DUPLICATE_TXID: return "DUPLICATE_TXID";
  case FL_TX_ENDORSEMENT_POLICY_FAILURE: return "ENDORSEMENT_POLICY_FAILURE";
  case FL_TX_BAD_ENDORSEMENT: return "BAD_ENDORSEMENT";
  case FL_TX_MVCC_READ_CONFLICT: return "MVCC_READ_CONFLICT";
  case FL_TX_PHANTOM_READ_CONFLICT: return "PHANTOM_READ_CONFLICT";
  case FL_TX_BAD_RWSET: return "BAD_RWSET";
  case FL_TX_UNKNOWN_TX_TYPE: return "UNKNOWN_TX_TYPE";
  case FL_TX_CREATOR_REVOKED: return "CREATOR_REVOKED";
  case FL_TX_UNKNOWN_CHAINCODE: return "UNKNOWN_CHAINCODE";
  case FL_TX_CREATOR_NOT_AUTHORIZED: return "CREATOR_NOT_AUTHORIZED";
  case FL_TX_INVALID_OTHER_REASON: return "INVALID_OTHER_REASON";
  default: return "UNKNOWN";
  }
}

struct fl_validator_s {
  const fl_netconfig_t *net;
  fl_msp_t *msp;
  fl_sigcache_t *sigcache;
  fl_cert_t **ocerts;
  const fl_verifier_t **verifiers;
  size_t nord;
  fl_policy_t **policies; /* one per net->chaincodes entry */
};

typedef struct vtx_s {
  uint8_t code;
  bool signed_ok;           /* the creator's envelope signature verified */
  const char *why;
  fl_envelope_t *env;
  fl_tx_t *tx;
  fl_rwset_t *rw;
  const char *chaincode;    /* view into tx, or "" */
  fl_ledger_write_t *writes; /* namespaced write set (arena), after MVCC */
} vtx_t;

typedef struct chunk_s {
  struct chunk_s *next;
  size_t used, cap;
  _Alignas(max_align_t) uint8_t data[];
} chunk_t;

struct fl_vblock_s {
  fl_validator_t *v;
  fl_block_t *b;
  vtx_t *txs;
  size_t n;
  chunk_t *arena;
  fl_sbuf_t bytes;
};

/* ------------------------------------------------------------- validator */

fl_status_t fl_validator_new(const fl_validator_opts_t *o, fl_validator_t **out, char **err) {
  *out = NULL;
  if (err) *err = NULL;
  if (o == NULL || o->net == NULL || o->msp == NULL) return FL_EINVAL;
  const fl_netconfig_t *net = o->net;
  fl_validator_t *v = fl_calloc(1, sizeof(*v));
  fl_status_t rc = FL_OK;
  const char **orgs = fl_calloc(net->n_orgs + 1, sizeof(*orgs));
  size_t norgs = 0;
  v->net = net;
  v->msp = o->msp;
  v->sigcache = o->sigcache;
  v->nord = net->n_orderers;
  v->ocerts = fl_calloc(v->nord + 1, sizeof(*v->ocerts));
  v->verifiers = fl_calloc(v->nord + 1, sizeof(*v->verifiers));
  for (size_t i = 0; i < v->nord; i++) {
    const fl_net_orderer_t *od = fl_netconfig_orderer(net, (uint32_t)i);
    if (od == NULL || fl_cert_from_pem(od->identity_cert.data, od->identity_cert.len,
                                       &v->ocerts[i]) != FL_OK) {
      if (err) *err = fl_sprintf("orderer %zu: certificate does not parse", i);
      rc = FL_ECONFIG;
      goto fail;
    }
    v->verifiers[i] = fl_cert_pubkey(v->ocerts[i]);
  }
  for (size_t i = 0; i < net->n_orgs; i++)
    if (!net->orgs[i].is_orderer_org) orgs[norgs++] = net->orgs[i].mspid;
  v->policies = fl_calloc(net->n_chaincodes + 1, sizeof(*v->policies));
  for (size_t i = 0; i < net->n_chaincodes; i++) {
    const fl_net_chaincode_t *cc = &net->chaincodes[i];
    const char *text = cc->policy[0] ? cc->policy : net->endorsement_policy;
    char *perr = NULL;
    rc = fl_policy_new(text, strlen(text), orgs, norgs, &v->policies[i], &perr);
    if (rc < 0) {
      if (err) *err = fl_sprintf("chaincode %s: endorsement policy '%s': %s", cc->name, text,
                                 perr ? perr : fl_status_str(rc));
      fl_free(perr);
      rc = FL_ECONFIG;
      goto fail;
    }
  }
  fl_free(orgs);
  *out = v;
  return FL_OK;
fail:
  fl_free(orgs);
  fl_validator_free(v);
  return rc;
}

void fl_validator_free(fl_validator_t *v) {
  if (v == NULL) return;
  for (size_t i = 0; v->ocerts && i < v->nord; i++) fl_cert_free(v->ocerts[i]);
  fl_free(v->ocerts);
  fl_free(v->verifiers);
  for (size_t i = 0; v->policies && i < v->net->n_chaincodes; i++) fl_policy_free(v->policies[i]);
  fl_free(v->policies);
  fl_free(v);
}

const struct fl_policy_s *fl_validator_policy(const fl_validator_t *v, const char *name) {
  for (size_t i = 0; i < v->net->n_chaincodes; i++)
    if (strcmp(v->net->chaincodes[i].name, name) == 0) return v->policies[i];
  return NULL;
}

fl_status_t fl_validator_check_block(const fl_validator_t *v, const fl_block_t *b,
                                     uint64_t prev_number, const uint8_t prev_hash[FL_SHA256_LEN],
                                     const char **why) {
  const char *dummy;
  if (why == NULL) why = &dummy;
  *why = "bad arguments";
  if (v == NULL || b == NULL || prev_hash == NULL) return FL_EINVAL;
  if (b->number == 0) {
    *why = "block 0 is the genesis block";
    return FL_EINVAL;
  }
  fl_status_t rc = fl_block_check_link(prev_number, prev_hash, b, why);
  if (rc < 0) return FL_ECORRUPT;
  rc = fl_block_verify_signatures(b, v->verifiers, v->nord, v->net->pbft.f, NULL, NULL, why);
  if (rc < 0) return rc == FL_EINVAL ? FL_EINVAL : FL_EBADSIG;
  *why = "ok";
  return FL_OK;
}

/* ---------------------------------------------------------------- vblock */

static void *arena_alloc(fl_vblock_t *vb, size_t n) {
  n = (n + 15) & ~(size_t)15;
  chunk_t *c = vb->arena;
  if (c == NULL || c->cap - c->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    c = fl_malloc(sizeof(*c) + cap);
    c->next = vb->arena;
    c->used = 0;
    c->cap = cap;
    vb->arena = c;
  }
  void *p = c->data + c->used;
  c->used += n;
  memset(p, 0, n);
  return p;
}

/* ns || 0x00 || key in arena memory. */
static fl_buf_t ns_key(fl_vblock_t *vb, const char *ns, const char *key) {
  size_t a = strlen(ns) + 1, k = strlen(key);
  uint8_t *p = arena_alloc(vb, a + k);
  memcpy(p, ns, a);
  memcpy(p + a, key, k);
  return FL_BUF(p, a + k);
}

static fl_buf_t ns_end(fl_vblock_t *vb, const char *ns) {
  size_t a = strlen(ns);
  uint8_t *p = arena_alloc(vb, a + 1);
  memcpy(p, ns, a);
  p[a] = 1;
  return FL_BUF(p, a + 1);
}

fl_vblock_t *fl_vblock_new(fl_validator_t *v, fl_block_t *b) {
  fl_vblock_t *vb = fl_calloc(1, sizeof(*vb));
  vb->v = v;
  vb->b = b;
  vb->n = b->n_envelopes;
  vb->txs = fl_calloc(vb->n + 1, sizeof(*vb->txs));
  for (size_t i = 0; i < vb->n; i++) {
    vb->txs[i].code = FL_TX_INVALID_OTHER_REASON;
    vb->txs[i].why = "not validated";
    vb->txs[i].chaincode = "";
  }
  return vb;
}

void fl_vblock_free(fl_vblock_t *vb) {
  if (vb == NULL) return;
  for (size_t i = 0; i < vb->n; i++) {
    fl_rwset_free(vb->txs[i].rw);
    fl_tx_free(vb->txs[i].tx);
    fl_envelope_free(vb->txs[i].env);
  }
  fl_free(vb->txs);
  while (vb->arena) {
    chunk_t *c = vb->arena;
    vb->arena = c->next;
    fl_free(c);
  }
  fl_sbuf_free(&vb->bytes);
  fl_block_free(vb->b);
  fl_free(vb);
}

const fl_block_t *fl_vblock_block(const fl_vblock_t *vb) { return vb->b; }
size_t fl_vblock_ntx(const fl_vblock_t *vb) { return vb->n; }
fl_buf_t fl_vblock_bytes(const fl_vblock_t *vb) { return fl_sbuf_view(&vb->bytes); }

static const fl_net_chaincode_t *find_cc(const fl_validator_t *v, const char *name, size_t *idx) {
  for (size_t i = 0; i < v->net->n_chaincodes; i++)
    if (strcmp(v->net->chaincodes[i].name, name) == 0) {
      *idx = i;
      return &v->net->chaincodes[i];
    }
  return NULL;
}

static fl_status_t verify(const fl_validator_t *v, fl_buf_t sid, const fl_buf_t *parts,
                          size_t nparts, fl_buf_t sig, fl_role_t role, fl_msp_info_t *info) {
  if (v->sigcache) return fl_sigcache_verify(v->sigcache, sid, parts, nparts, sig, role, info);
  fl_sbuf_t m = {0};
  for (size_t i = 0; i < nparts; i++) fl_sbuf_append(&m, parts[i].data, parts[i].len);
  fl_status_t rc = fl_msp_verify_signature(v->msp, sid.data, sid.len, m.data, m.len, sig.data,
                                           sig.len, role, info);
  fl_sbuf_free(&m);
  return rc;
}

static uint8_t set(vtx_t *t, uint8_t code, const char *why) {
  t->code = code;
  t->why = why;
  return code;
}

static uint8_t check_tx(fl_vblock_t *vb, size_t i) {
  const fl_validator_t *v = vb->v;
  vtx_t *t = &vb->txs[i];
  fl_buf_t raw = vb->b->envelopes[i];
  const char *why = "?";
  if (raw.len == 0) return set(t, FL_TX_NIL_ENVELOPE, "empty envelope");
  if (fl_envelope_decode(raw.data, raw.len, &t->env, &why) != FL_OK)
    return set(t, FL_TX_BAD_PAYLOAD, why);
  const fl_header_t *h = &t->env->header;
  if (strcmp(h->channel, v->net->channel) != 0) return set(t, FL_TX_BAD_PAYLOAD, "wrong channel");
  if (h->type == FL_HDR_CONFIG && vb->b->number == 0) {
    t->signed_ok = true; /* the genesis file was checked at start-up */
    return set(t, FL_TX_VALID, "ok");
  }
  if (h->type != FL_HDR_ENDORSER_TX) return set(t, FL_TX_UNKNOWN_TX_TYPE, "not an endorser tx");
  fl_msp_info_t info;
  fl_buf_t part = t->env->payload;
  fl_status_t rc = verify(v, h->creator, &part, 1, t->env->signature, FL_ROLE_NONE, &info);
  switch (rc) {
  case FL_OK: break;
  case FL_EBADSIG: return set(t, FL_TX_BAD_CREATOR_SIGNATURE, "bad envelope signature");
  case FL_EREVOKED: return set(t, FL_TX_CREATOR_REVOKED, "creator revoked");
  case FL_EMALFORMED: return set(t, FL_TX_BAD_PAYLOAD, "creator identity does not decode");
  default: return set(t, FL_TX_CREATOR_NOT_AUTHORIZED, info.reason);
  }
  t->signed_ok = true;
  if (info.role != FL_ROLE_CLIENT && info.role != FL_ROLE_ADMIN)
    return set(t, FL_TX_CREATOR_NOT_AUTHORIZED, "creator is not a client or admin");
  if (fl_tx_decode(t->env, &t->tx, &why) != FL_OK) return set(t, FL_TX_BAD_PROPOSAL, why);
  const fl_proposal_t *p = t->tx->proposal;
  part = p->proposal_bytes;
  rc = verify(v, p->header.creator, &part, 1, p->signature, FL_ROLE_NONE, &info);
  if (rc != FL_OK) return set(t, FL_TX_BAD_CREATOR_SIGNATURE, "bad proposal signature");
  size_t ci = 0;
  const fl_net_chaincode_t *def = find_cc(v, p->chaincode, &ci);
  if (def == NULL) return set(t, FL_TX_UNKNOWN_CHAINCODE, "chaincode not defined");
  t->chaincode = def->name;
  const fl_resp_payload_t *rp = t->tx->payload;
  if (strcmp(rp->chaincode_version, def->version) != 0)
    return set(t, FL_TX_UNKNOWN_CHAINCODE, "chaincode version not defined");
  if (rp->response.status >= 400)
    return set(t, FL_TX_ENDORSEMENT_POLICY_FAILURE, "chaincode response is an error");
  size_t ne = t->tx->n_endorsements;
  fl_policy_signer_t *signers = fl_calloc(ne + 1, sizeof(*signers));
  fl_msp_info_t *infos = fl_calloc(ne + 1, sizeof(*infos));
  uint8_t code = FL_TX_VALID;
  for (size_t k = 0; k < ne; k++) {
    const fl_endorsement_t *e = &t->tx->endorsements[k];
    fl_buf_t parts[2] = {t->tx->response_payload, e->endorser};
    if (verify(v, e->endorser, parts, 2, e->signature, FL_ROLE_PEER, &infos[k]) != FL_OK) {
      code = set(t, FL_TX_BAD_ENDORSEMENT, "an endorsement does not verify");
      break;
    }
    signers[k] = (fl_policy_signer_t){.mspid = infos[k].mspid, .role = FL_POLICY_ROLE_PEER,
                                      .id = FL_BUF(infos[k].cert_sha256, FL_SHA256_LEN)};
  }
  if (code == FL_TX_VALID) {
    bool ok = false;
    if (fl_policy_evaluate(v->policies[ci], signers, ne, &ok) != FL_OK || !ok)
      code = set(t, FL_TX_ENDORSEMENT_POLICY_FAILURE, "endorsement policy not satisfied");
  }
  fl_free(signers);
  fl_free(infos);
  if (code != FL_TX_VALID) return code;
  if (fl_rwset_decode(rp->results.data, rp->results.len, &t->rw, &why) != FL_OK)
    return set(t, FL_TX_BAD_RWSET, why);
  if (strcmp(t->rw->ns, def->name) != 0)
    return set(t, FL_TX_BAD_RWSET, "read-write set of another namespace");
  return set(t, FL_TX_VALID, "ok");
}

void fl_vblock_check(fl_vblock_t *vb, size_t from, size_t to) {
  if (to > vb->n) to = vb->n;
  for (size_t i = from; i < to; i++) check_tx(vb, i);
}

/* --------------------------------------------------------------- commit */

typedef struct idref_s {
  const char *id;
  size_t idx;
} idref_t;

static int idref_cmp(const void *a, const void *b) {
  const idref_t *x = a, *y = b;
  int c = strcmp(x->id, y->id);
  if (c) return c;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static fl_status_t mark_duplicates(fl_vblock_t *vb, fl_ledger_t *l) {
  idref_t *ids = fl_calloc(vb->n + 1, sizeof(*ids));
  size_t k = 0;
  fl_status_t rc = FL_OK;
  for (size_t i = 0; i < vb->n; i++)
    if (vb->txs[i].signed_ok) ids[k++] = (idref_t){vb->txs[i].env->header.tx_id, i};
  qsort(ids, k, sizeof(*ids), idref_cmp);
  for (size_t j = 1; j < k; j++)
    if (strcmp(ids[j].id, ids[j - 1].id) == 0 && vb->txs[ids[j].idx].code == FL_TX_VALID)
      set(&vb->txs[ids[j].idx], FL_TX_DUPLICATE_TXID, "tx id repeated in the block");
  for (size_t i = 0; i < vb->n && rc == FL_OK; i++) {
    vtx_t *t = &vb->txs[i];
    if (t->code != FL_TX_VALID) continue;
    bool found = false;
    rc = fl_ledger_tx_exists(l, FL_BUF(t->env->header.tx_id, FL_TXID_HEX_LEN), &found);
    if (rc == FL_OK && found) set(t, FL_TX_DUPLICATE_TXID, "tx id already in the ledger");
  }
  fl_free(ids);
  return rc;
}

static fl_status_t run_mvcc(fl_vblock_t *vb, fl_ledger_t *l, uint8_t *codes) {
  fl_ledger_mvcc_tx_t *mt = arena_alloc(vb, (vb->n + 1) * sizeof(*mt));
  for (size_t i = 0; i < vb->n; i++) {
    vtx_t *t = &vb->txs[i];
    mt[i].code = t->code;
    if (t->code != FL_TX_VALID || t->rw == NULL) continue;
    const fl_rwset_t *rw = t->rw;
    const char *ns = rw->ns;
    fl_ledger_read_t *rd = arena_alloc(vb, (rw->n_reads + 1) * sizeof(*rd));
    for (size_t k = 0; k < rw->n_reads; k++)
      rd[k] = (fl_ledger_read_t){.key = ns_key(vb, ns, rw->reads[k].key),
                                 .exists = rw->reads[k].has_version,
                                 .version = {rw->reads[k].version.block_num,
                                             rw->reads[k].version.tx_num}};
    fl_ledger_range_read_t *rr = arena_alloc(vb, (rw->n_range_reads + 1) * sizeof(*rr));
    for (size_t k = 0; k < rw->n_range_reads; k++) {
      const fl_range_read_t *g = &rw->range_reads[k];
      fl_ledger_read_t *gr = arena_alloc(vb, (g->n_reads + 1) * sizeof(*gr));
      for (size_t j = 0; j < g->n_reads; j++)
        gr[j] = (fl_ledger_read_t){.key = ns_key(vb, ns, g->reads[j].key),
                                   .exists = g->reads[j].has_version,
                                   .version = {g->reads[j].version.block_num,
                                               g->reads[j].version.tx_num}};
      rr[k] = (fl_ledger_range_read_t){
          .start = ns_key(vb, ns, g->start_key),
          .end = g->end_key[0] ? ns_key(vb, ns, g->end_key) : ns_end(vb, ns),
          .reads = gr, .nreads = g->n_reads, .exhausted = g->exhausted};
    }
    fl_ledger_write_t *wr = arena_alloc(vb, (rw->n_writes + 1) * sizeof(*wr));
    for (size_t k = 0; k < rw->n_writes; k++)
      wr[k] = (fl_ledger_write_t){.key = ns_key(vb, ns, rw->writes[k].key),
                                  .value = rw->writes[k].value,
                                  .is_delete = rw->writes[k].is_delete};
    t->writes = wr;
    mt[i] = (fl_ledger_mvcc_tx_t){.code = FL_TX_VALID, .reads = rd, .nreads = rw->n_reads,
                                  .ranges = rr, .nranges = rw->n_range_reads, .writes = wr,
                                  .nwrites = rw->n_writes};
  }
  fl_status_t rc = fl_ledger_mvcc_check(l, vb->b->number, mt, vb->n, codes);
  if (rc < 0) return rc;
  for (size_t i = 0; i < vb->n; i++) {
    vtx_t *t = &vb->txs[i];
    if (t->code == FL_TX_VALID && codes[i] != FL_TX_VALID)
      set(t, codes[i], codes[i] == FL_TX_MVCC_READ_CONFLICT ? "stale read" : "phantom read");
  }
  return FL_OK;
}

fl_status_t fl_vblock_commit(fl_vblock_t *vb, fl_ledger_t *l) {
  if (fl_ledger_height(l) != vb->b->number) return FL_ESTATE;
  uint8_t *codes = arena_alloc(vb, vb->n + 1);
  fl_status_t rc;
  if (vb->b->number > 0) {
    if ((rc = mark_duplicates(vb, l)) < 0) return rc;
    if ((rc = run_mvcc(vb, l, codes)) < 0) return rc;
  }
  fl_ledger_tx_t *lt = arena_alloc(vb, (vb->n + 1) * sizeof(*lt));
  for (size_t i = 0; i < vb->n; i++) {
    vtx_t *t = &vb->txs[i];
    codes[i] = t->code;
    lt[i].code = t->code;
    if (t->signed_ok) lt[i].tx_id = FL_BUF(t->env->header.tx_id, FL_TXID_HEX_LEN);
    if (t->code != FL_TX_VALID || t->rw == NULL) continue;
    const fl_rwset_t *rw = t->rw;
    const fl_proposal_t *p = t->tx->proposal;
    size_t nb = p->n_blobs + rw->n_blobs;
    fl_ledger_blob_t *bl = arena_alloc(vb, (nb + 1) * sizeof(*bl));
    for (size_t k = 0; k < p->n_blobs; k++) bl[k].data = p->blobs[k];
    for (size_t k = 0; k < rw->n_blobs; k++) bl[p->n_blobs + k].data = rw->blobs[k];
    lt[i].writes = t->writes;
    lt[i].nwrites = rw->n_writes;
    lt[i].blobs = bl;
    lt[i].nblobs = nb;
  }
  if ((rc = fl_block_set_validation_codes(vb->b, codes, vb->n)) < 0) return rc;
  if ((rc = fl_block_encode(vb->b, &vb->bytes)) < 0) return rc;
  rc = fl_ledger_commit(l, vb->b->number, vb->b->header_hash, fl_sbuf_view(&vb->bytes), lt, vb->n);
  if (rc < 0) {
    vb->bytes.len = 0;
    FL_ERROR(LOG, "commit failed block=%llu rc=%s", (unsigned long long)vb->b->number,
             fl_status_name(rc));
  }
  return rc;
}

void fl_vblock_tx(const fl_vblock_t *vb, size_t i, fl_vtx_info_t *out) {
  const vtx_t *t = &vb->txs[i];
  memset(out, 0, sizeof(*out));
  out->code = t->code;
  out->reason = t->code == FL_TX_VALID ? "" : t->why;
  out->tx_id = t->signed_ok ? t->env->header.tx_id : "";
  out->chaincode = t->chaincode;
  out->event_name = "";
  if (t->env) out->creator = t->env->header.creator;
  if (t->tx && t->tx->payload->has_event) {
    out->has_event = true;
    out->event_name = t->tx->payload->event.name;
    out->event_payload = t->tx->payload->event.payload;
  }
}
