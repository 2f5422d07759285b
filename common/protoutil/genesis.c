/* SPDX-License-Identifier: Apache-2.0
 *
 * genesis.c: fl_netconfig_t <-> fl.config.NetworkConfig, its validation,
 * the MSP it describes, and the genesis block (block 0) that carries it.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/genesis.h"
#include "common/protoutil/protoutil_int.h"
#include "fl/config/config.pb-c.h"
#include "fl/msp/identity.pb-c.h"

static bool empty(const char *s) { return s == NULL || s[0] == '\0'; }
static const char *nz(const char *s) { return s != NULL ? s : ""; }

#define BAD(text) FL__PU_FAIL(reason, FL_ECONFIG, "config: " text)

static const fl_net_org_t *find_org(const fl_netconfig_t *cfg, const char *mspid) {
  for (size_t i = 0; i < cfg->n_orgs; i++)
    if (strcmp(nz(cfg->orgs[i].mspid), nz(mspid)) == 0) return &cfg->orgs[i];
  return NULL;
}

fl_status_t fl_netconfig_validate(const fl_netconfig_t *cfg, const char **reason) {
  if (cfg == NULL) return FL__PU_FAIL(reason, FL_EINVAL, "config: missing");
  if (empty(cfg->channel) || strlen(cfg->channel) > FL_CHANNEL_MAX)
    return BAD("channel empty or too long");
  if (empty(cfg->endorsement_policy)) return BAD("default endorsement policy missing");
  if (cfg->n_orgs > FL_NETCONFIG_MAX_ITEMS || cfg->n_orderers > FL_NETCONFIG_MAX_ITEMS ||
      cfg->n_peers > FL_NETCONFIG_MAX_ITEMS || cfg->n_chaincodes > FL_NETCONFIG_MAX_ITEMS ||
      cfg->n_revoked > FL_NETCONFIG_MAX_ITEMS)
    return BAD("too many entries in a list");
  if ((cfg->n_orgs > 0 && cfg->orgs == NULL) ||
      (cfg->n_orderers > 0 && cfg->orderers == NULL) ||
      (cfg->n_peers > 0 && cfg->peers == NULL) ||
      (cfg->n_chaincodes > 0 && cfg->chaincodes == NULL) ||
      (cfg->n_revoked > 0 && cfg->revoked == NULL))
    return FL__PU_FAIL(reason, FL_EINVAL, "config: a list has a count but no entries");

  if (cfg->n_orgs == 0) return BAD("no organizations");
  bool any_orderer_org = false;
  for (size_t i = 0; i < cfg->n_orgs; i++) {
    const fl_net_org_t *o = &cfg->orgs[i];
    if (empty(o->mspid)) return BAD("an organization has no mspid");
    for (size_t j = 0; j < i; j++)
      if (strcmp(o->mspid, cfg->orgs[j].mspid) == 0) return BAD("duplicate organization mspid");
    if (o->n_root_certs == 0 || o->root_certs == NULL)
      return BAD("an organization has no root certificate");
    for (size_t j = 0; j < o->n_root_certs; j++)
      if (o->root_certs[j].len == 0 || o->root_certs[j].data == NULL)
        return BAD("an organization has an empty root certificate");
    if (o->n_tls_root_certs > 0 && o->tls_root_certs == NULL)
      return FL__PU_FAIL(reason, FL_EINVAL, "config: TLS roots have a count but no entries");
    for (size_t j = 0; j < o->n_tls_root_certs; j++)
      if (o->tls_root_certs[j].len == 0 || o->tls_root_certs[j].data == NULL)
        return BAD("an organization has an empty TLS root certificate");
    any_orderer_org |= o->is_orderer_org;
  }
  if (!any_orderer_org) return BAD("no orderer organization");

  if (cfg->n_orderers == 0) return BAD("no orderers");
  for (size_t i = 0; i < cfg->n_orderers; i++) {
    const fl_net_orderer_t *o = &cfg->orderers[i];
    if (o->id >= cfg->n_orderers) return BAD("orderer ids must be 0..n-1");
    for (size_t j = 0; j < i; j++)
      if (cfg->orderers[j].id == o->id) return BAD("duplicate orderer id");
    const fl_net_org_t *org = find_org(cfg, o->mspid);
    if (org == NULL) return BAD("an orderer names an unknown mspid");
    if (!org->is_orderer_org) return BAD("an orderer belongs to a non-orderer organization");
    if (empty(o->host) || o->port == 0 || o->port > 65535)
      return BAD("an orderer has no host or a bad port");
    if (o->identity_cert.len == 0 || o->identity_cert.data == NULL)
      return BAD("an orderer has no identity certificate");
  }

  const fl_pbft_params_t *p = &cfg->pbft;
  if (p->n != cfg->n_orderers) return BAD("pbft.n differs from the number of orderers");
  if ((uint64_t)p->n < 3 * (uint64_t)p->f + 1) return BAD("pbft needs n >= 3f+1");
  if (p->batch_max_count == 0 || p->batch_max_bytes == 0 || p->batch_timeout_ms == 0 ||
      p->checkpoint_interval == 0 || p->view_change_timeout_ms == 0)
    return BAD("a pbft parameter is zero");
  if (p->watermark_window < p->checkpoint_interval)
    return BAD("pbft watermark window smaller than the checkpoint interval");

  for (size_t i = 0; i < cfg->n_peers; i++) {
    const fl_net_peer_t *pe = &cfg->peers[i];
    if (find_org(cfg, pe->mspid) == NULL) return BAD("a peer names an unknown mspid");
    if (empty(pe->name) || empty(pe->host) || pe->port == 0 || pe->port > 65535 ||
        pe->events_port > 65535)
      return BAD("a peer has no name, no host or a bad port");
  }
  for (size_t i = 0; i < cfg->n_chaincodes; i++) {
    const fl_net_chaincode_t *c = &cfg->chaincodes[i];
    if (empty(c->name) || empty(c->version)) return BAD("a chaincode has no name or version");
    for (size_t j = 0; j < i; j++)
      if (strcmp(c->name, cfg->chaincodes[j].name) == 0) return BAD("duplicate chaincode name");
  }
  for (size_t i = 0; i < cfg->n_revoked; i++)
    if (empty(cfg->revoked[i].mspid)) return BAD("a revoked identity has no mspid");
  if (cfg->max_message_bytes < FL_NETCONFIG_MIN_MESSAGE_BYTES)
    return BAD("max_message_bytes below the minimum");
  return FL_OK;
}

static ProtobufCBinaryData *bins(void **tmp, const fl_buf_t *b, size_t n) {
  ProtobufCBinaryData *r = fl__pu_array(tmp, n, sizeof *r);
  for (size_t i = 0; i < n; i++) r[i] = fl__pu_bin(b[i]);
  return r;
}

fl_status_t fl_netconfig_encode(const fl_netconfig_t *cfg, fl_sbuf_t *out,
                                const char **reason) {
  if (out == NULL) return FL__PU_FAIL(reason, FL_EINVAL, "config: no output");
  out->len = 0;
  FL_FORWARD(fl_netconfig_validate(cfg, reason));
  void *tmp = NULL;
  Fl__Config__NetworkConfig pb;
  fl__config__network_config__init(&pb);
  pb.channel = fl__pu_str(cfg->channel);
  pb.n_organizations = cfg->n_orgs;
  pb.organizations = fl__pu_array(&tmp, cfg->n_orgs, sizeof *pb.organizations);
  for (size_t i = 0; i < cfg->n_orgs; i++) {
    const fl_net_org_t *o = &cfg->orgs[i];
    Fl__Config__Organization *m = fl__pu_alloc(&tmp, sizeof *m);
    fl__config__organization__init(m);
    m->mspid = fl__pu_str(o->mspid);
    m->name = fl__pu_str(o->name);
    m->n_root_certs = o->n_root_certs;
    m->root_certs = bins(&tmp, o->root_certs, o->n_root_certs);
    m->n_tls_root_certs = o->n_tls_root_certs;
    m->tls_root_certs = bins(&tmp, o->tls_root_certs, o->n_tls_root_certs);
    m->is_orderer_org = o->is_orderer_org;
    pb.organizations[i] = m;
  }
  pb.n_orderers = cfg->n_orderers;
  pb.orderers = fl__pu_array(&tmp, cfg->n_orderers, sizeof *pb.orderers);
  for (size_t i = 0; i < cfg->n_orderers; i++) {
    const fl_net_orderer_t *o = &cfg->orderers[i];
    Fl__Config__OrdererNode *m = fl__pu_alloc(&tmp, sizeof *m);
    fl__config__orderer_node__init(m);
    m->id = o->id;
    m->mspid = fl__pu_str(o->mspid);
    m->host = fl__pu_str(o->host);
    m->port = o->port;
    m->identity_cert = fl__pu_bin(o->identity_cert);
    pb.orderers[i] = m;
  }
  pb.n_peers = cfg->n_peers;
  pb.peers = fl__pu_array(&tmp, cfg->n_peers, sizeof *pb.peers);
  for (size_t i = 0; i < cfg->n_peers; i++) {
    const fl_net_peer_t *p = &cfg->peers[i];
    Fl__Config__PeerNode *m = fl__pu_alloc(&tmp, sizeof *m);
    fl__config__peer_node__init(m);
    m->mspid = fl__pu_str(p->mspid);
    m->name = fl__pu_str(p->name);
    m->host = fl__pu_str(p->host);
    m->port = p->port;
    m->events_port = p->events_port;
    pb.peers[i] = m;
  }
  Fl__Config__PbftParams pp;
  fl__config__pbft_params__init(&pp);
  pp.n = cfg->pbft.n;
  pp.f = cfg->pbft.f;
  pp.batch_max_count = cfg->pbft.batch_max_count;
  pp.batch_max_bytes = cfg->pbft.batch_max_bytes;
  pp.batch_timeout_ms = cfg->pbft.batch_timeout_ms;
  pp.checkpoint_interval = cfg->pbft.checkpoint_interval;
  pp.watermark_window = cfg->pbft.watermark_window;
  pp.view_change_timeout_ms = cfg->pbft.view_change_timeout_ms;
  pb.pbft = &pp;
  pb.endorsement_policy = fl__pu_str(cfg->endorsement_policy);
  pb.n_chaincodes = cfg->n_chaincodes;
  pb.chaincodes = fl__pu_array(&tmp, cfg->n_chaincodes, sizeof *pb.chaincodes);
  for (size_t i = 0; i < cfg->n_chaincodes; i++) {
    const fl_net_chaincode_t *c = &cfg->chaincodes[i];
    Fl__Config__ChaincodeDefinition *m = fl__pu_alloc(&tmp, sizeof *m);
    fl__config__chaincode_definition__init(m);
    m->name = fl__pu_str(c->name);
    m->version = fl__pu_str(c->version);
    m->sha256 = fl__pu_bin(FL_BUF(c->sha256, FL_SHA256_LEN));
    m->endorsement_policy = fl__pu_str(c->policy);
    m->library = fl__pu_str(c->library);
    pb.chaincodes[i] = m;
  }
  pb.n_revoked = cfg->n_revoked;
  pb.revoked = fl__pu_array(&tmp, cfg->n_revoked, sizeof *pb.revoked);
  for (size_t i = 0; i < cfg->n_revoked; i++) {
    const fl_net_revoked_t *r = &cfg->revoked[i];
    Fl__Msp__RevokedIdentity *m = fl__pu_alloc(&tmp, sizeof *m);
    fl__msp__revoked_identity__init(m);
    m->mspid = fl__pu_str(r->mspid);
    m->cert_sha256 = fl__pu_bin(FL_BUF(r->cert_sha256, FL_SHA256_LEN));
    m->reason = fl__pu_str(r->reason);
    m->revoked_at_ms = r->revoked_at_ms;
    pb.revoked[i] = m;
  }
  pb.max_message_bytes = cfg->max_message_bytes;
  pb.created_ms = cfg->created_ms;
  fl_status_t rc = FL_OK;
  if (protobuf_c_message_get_packed_size(&pb.base) > FL_PU_MAX_MESSAGE / 2)
    rc = FL__PU_FAIL(reason, FL_ETOOBIG, "config: larger than the message limit");
  else
    fl__pu_pack(&pb.base, out);
  fl__pu_mem_free(&tmp);
  return rc;
}

static const fl_buf_t *bins_copy(void **mem, const ProtobufCBinaryData *b, size_t n) {
  fl_buf_t *r = fl__pu_array(mem, n, sizeof *r);
  for (size_t i = 0; i < n; i++) r[i] = fl__pu_dup_bin(mem, b[i]);
  return r;
}

fl_status_t fl_netconfig_decode(const uint8_t *data, size_t len, fl_netconfig_t **out,
                                const char **reason) {
  if (out == NULL || (data == NULL && len > 0))
    return FL__PU_FAIL(reason, FL_EINVAL, "config: no output or no input");
  *out = NULL;
  if (len > FL_PU_MAX_MESSAGE)
    return FL__PU_FAIL(reason, FL_ETOOBIG, "config: larger than the message limit");
  Fl__Config__NetworkConfig *pb = fl__config__network_config__unpack(NULL, len, data);
  if (pb == NULL)
    return FL__PU_FAIL(reason, FL_EMALFORMED, "config: bytes do not decode as a NetworkConfig");
  fl_netconfig_t *cfg = NULL;
  fl_status_t rc = FL_EMALFORMED;
  if (pb->pbft == NULL) {
    rc = BAD("pbft parameters missing");
    goto done;
  }
  if (pb->n_organizations > FL_NETCONFIG_MAX_ITEMS || pb->n_orderers > FL_NETCONFIG_MAX_ITEMS ||
      pb->n_peers > FL_NETCONFIG_MAX_ITEMS || pb->n_chaincodes > FL_NETCONFIG_MAX_ITEMS ||
      pb->n_revoked > FL_NETCONFIG_MAX_ITEMS) {
    rc = BAD("too many entries in a list");
    goto done;
  }
  for (size_t i = 0; i < pb->n_chaincodes; i++)
    if (pb->chaincodes[i]->sha256.len != FL_SHA256_LEN) {
      fl__pu_reason(reason, "config: a chaincode hash is not 32 bytes");
      goto done;
    }
  for (size_t i = 0; i < pb->n_revoked; i++)
    if (pb->revoked[i]->cert_sha256.len != FL_SHA256_LEN) {
      fl__pu_reason(reason, "config: a revoked certificate hash is not 32 bytes");
      goto done;
    }
  cfg = fl_calloc(1, sizeof *cfg);
  void **mem = &cfg->mem_;
  cfg->channel = fl__pu_strdup(mem, pb->channel);
  fl_net_org_t *orgs = fl__pu_array(mem, pb->n_organizations, sizeof *orgs);
  for (size_t i = 0; i < pb->n_organizations; i++) {
    const Fl__Config__Organization *m = pb->organizations[i];
    orgs[i].mspid = fl__pu_strdup(mem, m->mspid);
    orgs[i].name = fl__pu_strdup(mem, m->name);
    orgs[i].root_certs = bins_copy(mem, m->root_certs, m->n_root_certs);
    orgs[i].n_root_certs = m->n_root_certs;
    orgs[i].tls_root_certs = bins_copy(mem, m->tls_root_certs, m->n_tls_root_certs);
    orgs[i].n_tls_root_certs = m->n_tls_root_certs;
    orgs[i].is_orderer_org = m->is_orderer_org;
  }
  cfg->orgs = orgs;
  cfg->n_orgs = pb->n_organizations;
  fl_net_orderer_t *ords = fl__pu_array(mem, pb->n_orderers, sizeof *ords);
  for (size_t i = 0; i < pb->n_orderers; i++) {
    const Fl__Config__OrdererNode *m = pb->orderers[i];
    ords[i].id = m->id;
    ords[i].mspid = fl__pu_strdup(mem, m->mspid);
    ords[i].host = fl__pu_strdup(mem, m->host);
    ords[i].port = m->port;
    ords[i].identity_cert = fl__pu_dup_bin(mem, m->identity_cert);
  }
  cfg->orderers = ords;
  cfg->n_orderers = pb->n_orderers;
  fl_net_peer_t *peers = fl__pu_array(mem, pb->n_peers, sizeof *peers);
  for (size_t i = 0; i < pb->n_peers; i++) {
    const Fl__Config__PeerNode *m = pb->peers[i];
    peers[i].mspid = fl__pu_strdup(mem, m->mspid);
    peers[i].name = fl__pu_strdup(mem, m->name);
    peers[i].host = fl__pu_strdup(mem, m->host);
    peers[i].port = m->port;
    peers[i].events_port = m->events_port;
  }
  cfg->peers = peers;
  cfg->n_peers = pb->n_peers;
  cfg->pbft = (fl_pbft_params_t){
      .n = pb->pbft->n,
      .f = pb->pbft->f,
      .batch_max_count = pb->pbft->batch_max_count,
      .batch_max_bytes = pb->pbft->batch_max_bytes,
      .batch_timeout_ms = pb->pbft->batch_timeout_ms,
      .checkpoint_interval = pb->pbft->checkpoint_interval,
      .watermark_window = pb->pbft->watermark_window,
      .view_change_timeout_ms = pb->pbft->view_change_timeout_ms,
  };
  cfg->endorsement_policy = fl__pu_strdup(mem, pb->endorsement_policy);
  fl_net_chaincode_t *ccs = fl__pu_array(mem, pb->n_chaincodes, sizeof *ccs);
  for (size_t i = 0; i < pb->n_chaincodes; i++) {
    const Fl__Config__ChaincodeDefinition *m = pb->chaincodes[i];
    ccs[i].name = fl__pu_strdup(mem, m->name);
    ccs[i].version = fl__pu_strdup(mem, m->version);
    memcpy(ccs[i].sha256, m->sha256.data, FL_SHA256_LEN);
    ccs[i].policy = fl__pu_strdup(mem, m->endorsement_policy);
    ccs[i].library = fl__pu_strdup(mem, m->library);
  }
  cfg->chaincodes = ccs;
  cfg->n_chaincodes = pb->n_chaincodes;
  fl_net_revoked_t *rev = fl__pu_array(mem, pb->n_revoked, sizeof *rev);
  for (size_t i = 0; i < pb->n_revoked; i++) {
    const Fl__Msp__RevokedIdentity *m = pb->revoked[i];
    rev[i].mspid = fl__pu_strdup(mem, m->mspid);
    memcpy(rev[i].cert_sha256, m->cert_sha256.data, FL_SHA256_LEN);
    rev[i].reason = fl__pu_strdup(mem, m->reason);
    rev[i].revoked_at_ms = m->revoked_at_ms;
  }
  cfg->revoked = rev;
  cfg->n_revoked = pb->n_revoked;
  cfg->max_message_bytes = pb->max_message_bytes;
  cfg->created_ms = pb->created_ms;
  rc = fl_netconfig_validate(cfg, reason);
  if (rc == FL_OK) {
    *out = cfg;
    cfg = NULL;
  }
done:
  fl_netconfig_free(cfg);
  fl__config__network_config__free_unpacked(pb, NULL);
  return rc;
}

void fl_netconfig_free(fl_netconfig_t *cfg) {
  if (cfg == NULL) return;
  fl__pu_mem_free(&cfg->mem_);
  fl_free(cfg);
}

const fl_net_orderer_t *fl_netconfig_orderer(const fl_netconfig_t *cfg, uint32_t id) {
  if (cfg == NULL) return NULL;
  for (size_t i = 0; i < cfg->n_orderers; i++)
    if (cfg->orderers[i].id == id) return &cfg->orderers[i];
  return NULL;
}

static void cat_pems(fl_sbuf_t *out, const fl_buf_t *b, size_t n) {
  out->len = 0;
  for (size_t i = 0; i < n; i++) {
    fl_sbuf_append(out, b[i].data, b[i].len);
    fl_sbuf_append(out, "\n", 1);
  }
}

fl_status_t fl_netconfig_msp_new(const fl_netconfig_t *cfg, fl_msp_t **out,
                                 const char **reason) {
  if (out == NULL || cfg == NULL) return FL__PU_FAIL(reason, FL_EINVAL, "config: missing");
  *out = NULL;
  fl_msp_t *msp = fl_msp_new();
  fl_sbuf_t roots = {0}, tls = {0};
  fl_status_t rc = FL_OK;
  for (size_t i = 0; i < cfg->n_orgs && rc == FL_OK; i++) {
    const fl_net_org_t *o = &cfg->orgs[i];
    cat_pems(&roots, o->root_certs, o->n_root_certs);
    cat_pems(&tls, o->tls_root_certs, o->n_tls_root_certs);
    rc = fl_msp_add_org(msp, nz(o->mspid), roots.data, roots.len, tls.data, tls.len);
    if (rc != FL_OK)
      fl__pu_reason(reason, "config: an organization's CA certificates are not usable "
                            "(not PEM, not a CA, or a bad mspid)");
  }
  fl_sbuf_free(&roots);
  fl_sbuf_free(&tls);
  if (rc != FL_OK) {
    fl_msp_free(msp);
    return rc;
  }
  for (size_t i = 0; i < cfg->n_revoked; i++) fl_msp_revoke(msp, cfg->revoked[i].cert_sha256);
  *out = msp;
  return FL_OK;
}

/* Checks that env's creator is an admin of an orderer organisation of cfg
 * whose signature verifies (at cfg->created_ms when recorded). */
static fl_status_t check_config_creator(const fl_netconfig_t *cfg, const fl_envelope_t *env,
                                        const char **reason) {
  fl_msp_t *msp = NULL;
  FL_FORWARD(fl_netconfig_msp_new(cfg, &msp, reason));
  if (cfg->created_ms != 0) fl_msp_set_time(msp, (int64_t)(cfg->created_ms / 1000));
  fl_msp_info_t info;
  fl_status_t rc = fl_envelope_verify_creator(env, msp, FL_ROLE_ADMIN, &info);
  fl_msp_free(msp);
  if (rc != FL_OK) {
    switch (rc) {
    case FL_EBADSIG: return FL__PU_FAIL(reason, rc, "genesis: creator signature does not verify");
    case FL_EPERM: return FL__PU_FAIL(reason, rc, "genesis: creator is not an admin");
    case FL_EREVOKED: return FL__PU_FAIL(reason, rc, "genesis: creator is revoked");
    default:
      return FL__PU_FAIL(reason, rc, "genesis: creator is not a member of the configuration");
    }
  }
  const fl_net_org_t *org = find_org(cfg, info.mspid);
  if (org == NULL || !org->is_orderer_org)
    return FL__PU_FAIL(reason, FL_EPERM, "genesis: creator is not in an orderer organization");
  return FL_OK;
}

fl_status_t fl_genesis_build(const fl_netconfig_t *cfg, fl_buf_t creator,
                             const fl_signer_t *signer, fl_block_t **out,
                             const char **reason) {
  if (out == NULL || signer == NULL || creator.len == 0)
    return FL__PU_FAIL(reason, FL_EINVAL, "genesis: missing output, creator or signer");
  *out = NULL;
  fl_sbuf_t cfgb = {0}, envb = {0};
  fl_envelope_t *env = NULL;
  fl_status_t rc = fl_netconfig_encode(cfg, &cfgb, reason);
  if (rc != FL_OK) goto done;
  rc = fl_envelope_build(FL_HDR_CONFIG, cfg->channel, creator, signer, fl_sbuf_view(&cfgb),
                         &envb, NULL);
  if (rc != FL_OK) {
    fl__pu_reason(reason, "genesis: cannot build the config envelope");
    goto done;
  }
  rc = fl_envelope_decode(envb.data, envb.len, &env, reason);
  if (rc != FL_OK) goto done;
  rc = check_config_creator(cfg, env, reason);
  if (rc != FL_OK) goto done;
  fl_buf_t one = fl_sbuf_view(&envb);
  rc = fl_block_build(0, NULL, &one, 1, out);
  if (rc != FL_OK) fl__pu_reason(reason, "genesis: cannot build block 0");
done:
  fl_envelope_free(env);
  fl_sbuf_free(&envb);
  fl_sbuf_free(&cfgb);
  return rc;
}

fl_status_t fl_genesis_decode(const fl_block_t *b, fl_netconfig_t **out, const char **reason) {
  if (out == NULL || b == NULL) return FL__PU_FAIL(reason, FL_EINVAL, "genesis: missing block");
  *out = NULL;
  if (b->number != 0 || b->previous_hash_len != 0)
    return FL__PU_FAIL(reason, FL_EMALFORMED, "genesis: not block 0");
  if (b->n_envelopes != 1)
    return FL__PU_FAIL(reason, FL_EMALFORMED, "genesis: block 0 must hold exactly one envelope");
  fl_envelope_t *env = NULL;
  fl_netconfig_t *cfg = NULL;
  fl_status_t rc = fl_envelope_decode(b->envelopes[0].data, b->envelopes[0].len, &env, reason);
  if (rc != FL_OK) goto done;
  if (env->header.type != FL_HDR_CONFIG) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED, "genesis: envelope is not a CONFIG envelope");
    goto done;
  }
  rc = fl_netconfig_decode(env->data.data, env->data.len, &cfg, reason);
  if (rc != FL_OK) goto done;
  if (strcmp(cfg->channel, env->header.channel) != 0) {
    rc = FL__PU_FAIL(reason, FL_EMALFORMED,
                     "genesis: envelope channel differs from the configuration's");
    goto done;
  }
  rc = check_config_creator(cfg, env, reason);
  if (rc != FL_OK) goto done;
  *out = cfg;
  cfg = NULL;
done:
  fl_netconfig_free(cfg);
  fl_envelope_free(env);
  return rc;
}
