/* SPDX-License-Identifier: Apache-2.0
 *
 * inspect.c: genesis keys, orderer signature checks and transaction
 * flattening for the CLI (inspect.h).
 */
#include "cli/inspect.h"

#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/json.h"
#include "common/base/alloc.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/proposal.h"
#include "fl/msp/identity.pb-c.h"

#define MAX_GENESIS_FILE (64u << 20)

fl_status_t fl_cli_genesis_load(const char *path, fl_cli_genesis_t *g, char **err) {
  memset(g, 0, sizeof *g);
  *err = NULL;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    *err = fl_sprintf("cannot read %s", path);
    return FL_NOTFOUND;
  }
  fl_sbuf_t raw = {0};
  uint8_t chunk[65536];
  size_t k;
  fl_status_t st = FL_OK;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (raw.len + k > MAX_GENESIS_FILE) {
      st = FL_ETOOBIG;
      break;
    }
    fl_sbuf_append(&raw, chunk, k);
  }
  fclose(f);
  const char *why = NULL;
  if (st == FL_OK) st = fl_block_decode(raw.data, raw.len, &g->block, &why);
  fl_sbuf_free(&raw);
  if (st == FL_OK) st = fl_genesis_decode(g->block, &g->cfg, &why);
  if (st != FL_OK) {
    *err = fl_sprintf("%s is not a valid genesis block: %s", path, why ? why : fl_status_str(st));
    fl_cli_genesis_clear(g);
    return st;
  }
  g->n = g->cfg->n_orderers;
  g->f = g->cfg->pbft.f;
  g->certs = fl_calloc(g->n ? g->n : 1, sizeof *g->certs);
  g->verifiers = fl_calloc(g->n ? g->n : 1, sizeof *g->verifiers);
  for (size_t i = 0; i < g->cfg->n_orderers; i++) {
    const fl_net_orderer_t *o = &g->cfg->orderers[i];
    if (o->id >= g->n) continue;
    if (fl_cert_from_pem(o->identity_cert.data, o->identity_cert.len, &g->certs[o->id]) ==
        FL_OK)
      g->verifiers[o->id] = fl_cert_pubkey(g->certs[o->id]);
  }
  return FL_OK;
}

void fl_cli_genesis_clear(fl_cli_genesis_t *g) {
  if (g == NULL) return;
  for (size_t i = 0; g->certs && i < g->n; i++) fl_cert_free(g->certs[i]);
  fl_free(g->certs);
  fl_free(g->verifiers);
  fl_netconfig_free(g->cfg);
  fl_block_free(g->block);
  memset(g, 0, sizeof *g);
}

void fl_cli_sigcheck(const fl_cli_genesis_t *g, const fl_block_t *b, fl_cli_sigcheck_t *out) {
  memset(out, 0, sizeof *out);
  out->required = 2u * g->f + 1;
  if (b->number == 0) {
    bool same = memcmp(b->header_hash, g->block->header_hash, FL_SHA256_LEN) == 0;
    out->status = same ? FL_OK : FL_EBADSIG;
    out->reason = same ? NULL : "block 0 is not the genesis block given with --genesis";
    out->valid = 0;
    out->required = 0;
    return;
  }
  out->n = b->n_sigs;
  out->per_sig = fl_calloc(b->n_sigs ? b->n_sigs : 1, sizeof *out->per_sig);
  out->status = fl_block_verify_signatures(b, g->verifiers, g->n, g->f, out->per_sig,
                                           &out->valid, &out->reason);
  if (out->status != FL_OK && out->reason == NULL)
    out->reason = "fewer than 2f+1 valid orderer signatures";
}

void fl_cli_sigcheck_clear(fl_cli_sigcheck_t *c) {
  if (c == NULL) return;
  fl_free(c->per_sig);
  memset(c, 0, sizeof *c);
}

const char *fl_cli_sig_status_name(fl_status_t st) {
  switch (st) {
  case FL_OK: return "valid";
  case FL_EBADSIG: return "bad_signature";
  case FL_EUNTRUSTED: return "unknown_replica";
  case FL_EEXIST: return "duplicate";
  default: return fl_status_name(st);
  }
}

/* ---- transactions ------------------------------------------------------------------- */

static char *printable(fl_buf_t b, size_t max) {
  size_t n = b.len < max ? b.len : max;
  char *s = fl_malloc(n + 4);
  for (size_t i = 0; i < n; i++) {
    uint8_t c = b.data[i];
    s[i] = c >= 0x20 && c < 0x7f ? (char)c : '.';
  }
  if (b.len > max) {
    memcpy(s + n, "...", 3);
    n += 3;
  }
  s[n] = '\0';
  return s;
}

/* Splits a serialized identity into MSP id, CN and role. */
static void creator_info(fl_buf_t sid, char **mspid, char **cn, char **role) {
  Fl__Msp__SerializedIdentity *id = fl__msp__serialized_identity__unpack(NULL, sid.len, sid.data);
  if (id == NULL) {
    *mspid = fl_strdup("");
    *cn = fl_strdup("");
    *role = fl_strdup("");
    return;
  }
  *mspid = fl_strdup(id->mspid ? id->mspid : "");
  fl_cert_t *c = NULL;
  if (fl_cert_from_pem(id->id_bytes.data, id->id_bytes.len, &c) == FL_OK) {
    *cn = fl_strdup(fl_cert_subject_cn(c));
    *role = fl_strdup(fl_role_name(fl_cert_role(c)));
    fl_cert_free(c);
  } else {
    *cn = fl_strdup("");
    *role = fl_strdup("");
  }
  fl__msp__serialized_identity__free_unpacked(id, NULL);
}

fl_status_t fl_cli_txinfo_decode(fl_buf_t envelope, fl_cli_txinfo_t *t) {
  memset(t, 0, sizeof *t);
  t->type = "UNKNOWN";
  fl_envelope_t *env = NULL;
  fl_tx_t *tx = NULL;
  const char *why = NULL;
  fl_status_t st = fl_envelope_decode(envelope.data, envelope.len, &env, &why);
  if (st != FL_OK) {
    t->error = why ? why : "envelope does not decode";
    goto done;
  }
  memcpy(t->tx_id, env->header.tx_id, sizeof t->tx_id);
  t->type = fl_header_type_name(env->header.type);
  t->timestamp_ms = env->header.timestamp_ms;
  t->channel = fl_strdup(env->header.channel);
  creator_info(env->header.creator, &t->creator_mspid, &t->creator_cn, &t->creator_role);
  if (env->header.type != FL_HDR_ENDORSER_TX) goto done;
  st = fl_tx_decode(env, &tx, &why);
  if (st != FL_OK) {
    t->error = why ? why : "transaction does not decode";
    goto done;
  }
  const fl_proposal_t *p = tx->proposal;
  t->chaincode = fl_strdup(p->chaincode);
  t->function = printable(p->args[0], 128);
  t->n_args = p->n_args;
  t->args = fl_calloc(p->n_args, sizeof *t->args);
  for (size_t i = 1; i < p->n_args; i++) t->args[i] = printable(p->args[i], 200);
  t->n_blobs = p->n_blobs;
  t->n_endorsers = tx->n_endorsements;
  t->endorsers = fl_calloc(tx->n_endorsements ? tx->n_endorsements : 1, sizeof *t->endorsers);
  for (size_t i = 0; i < tx->n_endorsements; i++) {
    char *m = NULL, *cn = NULL, *role = NULL;
    creator_info(tx->endorsements[i].endorser, &m, &cn, &role);
    t->endorsers[i] = fl_sprintf("%s:%s", m, cn);
    fl_free(m);
    fl_free(cn);
    fl_free(role);
  }
  const fl_resp_payload_t *rp = tx->payload;
  t->response_status = rp->response.status;
  t->response_message = fl_strdup(rp->response.message);
  if (rp->has_event) t->event_name = fl_strdup(rp->event.name);
  if (rp->results.len > 0 &&
      fl_rwset_decode(rp->results.data, rp->results.len, &t->rwset, &why) != FL_OK) {
    t->rwset = NULL;
    t->error = why ? why : "read-write set does not decode";
    st = FL_EMALFORMED;
  }
done:;
  char **strs[] = {&t->channel,  &t->creator_mspid,     &t->creator_cn, &t->creator_role,
                   &t->chaincode, &t->function,          &t->event_name,
                   &t->response_message};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
    if (*strs[i] == NULL) *strs[i] = fl_strdup("");
  fl_tx_free(tx);
  fl_envelope_free(env);
  return t->error ? FL_EMALFORMED : FL_OK;
}

void fl_cli_txinfo_clear(fl_cli_txinfo_t *t) {
  if (t == NULL) return;
  fl_free(t->channel);
  fl_free(t->creator_mspid);
  fl_free(t->creator_cn);
  fl_free(t->creator_role);
  fl_free(t->chaincode);
  fl_free(t->function);
  for (size_t i = 0; t->args && i < t->n_args; i++) fl_free(t->args[i]);
  fl_free(t->args);
  for (size_t i = 0; i < t->n_endorsers; i++) fl_free(t->endorsers[i]);
  fl_free(t->endorsers);
  fl_free(t->response_message);
  fl_free(t->event_name);
  fl_rwset_free(t->rwset);
  memset(t, 0, sizeof *t);
}

void fl_cli_jw_txinfo(fl_sbuf_t *b, const fl_cli_txinfo_t *t) {
  fl_mlu_jw_key(b, "tx_id");
  fl_mlu_jw_str(b, t->tx_id);
  fl_mlu_jw_key(b, "type");
  fl_mlu_jw_str(b, t->type);
  fl_mlu_jw_key(b, "channel");
  fl_mlu_jw_str(b, t->channel);
  fl_mlu_jw_key(b, "timestamp_ms");
  fl_mlu_jw_u64(b, t->timestamp_ms);
  fl_mlu_jw_key(b, "creator");
  fl_sbuf_append_str(b, "{");
  fl_mlu_jw_key(b, "mspid");
  fl_mlu_jw_str(b, t->creator_mspid);
  fl_mlu_jw_key(b, "cn");
  fl_mlu_jw_str(b, t->creator_cn);
  fl_mlu_jw_key(b, "role");
  fl_mlu_jw_str(b, t->creator_role);
  fl_sbuf_append_str(b, "}");
  fl_mlu_jw_key(b, "chaincode");
  fl_mlu_jw_str(b, t->chaincode[0] ? t->chaincode : NULL);
  fl_mlu_jw_key(b, "function");
  fl_mlu_jw_str(b, t->function[0] ? t->function : NULL);
  fl_mlu_jw_key(b, "args");
  fl_sbuf_append_str(b, "[");
  for (size_t i = 1; t->args && i < t->n_args; i++) {
    if (i > 1) fl_sbuf_append_str(b, ",");
    fl_mlu_jw_str(b, t->args[i]);
  }
  fl_sbuf_append_str(b, "]");
  fl_mlu_jw_key(b, "n_blobs");
  fl_mlu_jw_u64(b, t->n_blobs);
  fl_mlu_jw_key(b, "endorsers");
  fl_sbuf_append_str(b, "[");
  for (size_t i = 0; i < t->n_endorsers; i++) {
    if (i) fl_sbuf_append_str(b, ",");
    fl_mlu_jw_str(b, t->endorsers[i]);
  }
  fl_sbuf_append_str(b, "]");
  fl_mlu_jw_key(b, "response_status");
  if (t->chaincode[0])
    fl_sbuf_printf(b, "%d", (int)t->response_status);
  else
    fl_sbuf_append_str(b, "null");
  fl_mlu_jw_key(b, "response_message");
  fl_mlu_jw_str(b, t->chaincode[0] ? t->response_message : NULL);
  fl_mlu_jw_key(b, "event");
  fl_mlu_jw_str(b, t->event_name[0] ? t->event_name : NULL);
  fl_mlu_jw_key(b, "writes");
  fl_sbuf_append_str(b, "[");
  for (size_t i = 0; t->rwset && i < t->rwset->n_writes; i++) {
    if (i) fl_sbuf_append_str(b, ",");
    fl_mlu_jw_str(b, t->rwset->writes[i].key);
  }
  fl_sbuf_append_str(b, "]");
}
