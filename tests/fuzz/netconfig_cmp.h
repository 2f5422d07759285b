/* SPDX-License-Identifier: Apache-2.0
 *
 * netconfig_cmp.h: field-by-field comparison of two decoded network
 * configurations (common/protoutil/genesis.h) for the round-trip checks of
 * fuzz_netconfig and fuzz_genesis. Header-only: static functions, one copy
 * per target. Aborts on the first difference.
 */
#ifndef FL_TESTS_FUZZ_NETCONFIG_CMP_H
#define FL_TESTS_FUZZ_NETCONFIG_CMP_H

#include <stdlib.h>
#include <string.h>

#include "common/base/buf.h"
#include "common/protoutil/genesis.h"
#include "tests/fuzz/fuzz_check.h"

#define nc_check(cond) check(cond)

static void nc_same_str(const char *a, const char *b) {
  nc_check(a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void nc_same_bufs(const fl_buf_t *a, size_t na, const fl_buf_t *b, size_t nb) {
  nc_check(na == nb);
  for (size_t i = 0; i < na; i++) nc_check(fl_buf_eq(a[i], b[i]));
}

/* Aborts unless a and b (both decoded, so every string is non-NULL) hold
 * the same configuration. */
static void nc_same_netconfig(const fl_netconfig_t *a, const fl_netconfig_t *b) {
  nc_same_str(a->channel, b->channel);
  nc_same_str(a->endorsement_policy, b->endorsement_policy);
  nc_check(a->max_message_bytes == b->max_message_bytes && a->created_ms == b->created_ms);
  nc_check(memcmp(&a->pbft, &b->pbft, sizeof(a->pbft)) == 0);
  nc_check(a->n_orgs == b->n_orgs);
  for (size_t i = 0; i < a->n_orgs; i++) {
    const fl_net_org_t *x = &a->orgs[i], *y = &b->orgs[i];
    nc_same_str(x->mspid, y->mspid);
    nc_same_str(x->name, y->name);
    nc_same_bufs(x->root_certs, x->n_root_certs, y->root_certs, y->n_root_certs);
    nc_same_bufs(x->tls_root_certs, x->n_tls_root_certs, y->tls_root_certs,
                 y->n_tls_root_certs);
    nc_check(x->is_orderer_org == y->is_orderer_org);
  }
  nc_check(a->n_orderers == b->n_orderers);
  for (size_t i = 0; i < a->n_orderers; i++) {
    const fl_net_orderer_t *x = &a->orderers[i], *y = &b->orderers[i];
    nc_check(x->id == y->id && x->port == y->port);
    nc_same_str(x->mspid, y->mspid);
    nc_same_str(x->host, y->host);
    nc_check(fl_buf_eq(x->identity_cert, y->identity_cert));
  }
  nc_check(a->n_peers == b->n_peers);
  for (size_t i = 0; i < a->n_peers; i++) {
    const fl_net_peer_t *x = &a->peers[i], *y = &b->peers[i];
    nc_same_str(x->mspid, y->mspid);
    nc_same_str(x->name, y->name);
    nc_same_str(x->host, y->host);
    nc_check(x->port == y->port && x->events_port == y->events_port);
  }
  nc_check(a->n_chaincodes == b->n_chaincodes);
  for (size_t i = 0; i < a->n_chaincodes; i++) {
    const fl_net_chaincode_t *x = &a->chaincodes[i], *y = &b->chaincodes[i];
    nc_same_str(x->name, y->name);
    nc_same_str(x->version, y->version);
    nc_same_str(x->policy, y->policy);
    nc_same_str(x->library, y->library);
    nc_check(memcmp(x->sha256, y->sha256, FL_SHA256_LEN) == 0);
  }
  nc_check(a->n_revoked == b->n_revoked);
  for (size_t i = 0; i < a->n_revoked; i++) {
    const fl_net_revoked_t *x = &a->revoked[i], *y = &b->revoked[i];
    nc_same_str(x->mspid, y->mspid);
    nc_same_str(x->reason, y->reason);
    nc_check(x->revoked_at_ms == y->revoked_at_ms);
    nc_check(memcmp(x->cert_sha256, y->cert_sha256, FL_SHA256_LEN) == 0);
  }
}

/* Aborts unless cfg passes validation, re-encodes, and decodes back to the
 * same configuration, and unless every orderer id 0..n-1 is found. */
static void nc_roundtrip(const fl_netconfig_t *cfg) {
  nc_check(fl_netconfig_validate(cfg, NULL) == FL_OK);
  fl_sbuf_t enc = {0};
  nc_check(fl_netconfig_encode(cfg, &enc, NULL) == FL_OK);
  fl_netconfig_t *back = NULL;
  nc_check(fl_netconfig_decode(enc.data, enc.len, &back, NULL) == FL_OK);
  nc_same_netconfig(cfg, back);
  fl_sbuf_t enc2 = {0};
  nc_check(fl_netconfig_encode(back, &enc2, NULL) == FL_OK);
  nc_check(fl_buf_eq(fl_sbuf_view(&enc), fl_sbuf_view(&enc2)));
  for (uint32_t id = 0; id < cfg->n_orderers; id++) {
    const fl_net_orderer_t *o = fl_netconfig_orderer(cfg, id);
    nc_check(o != NULL && o->id == id);
  }
  nc_check(fl_netconfig_orderer(cfg, (uint32_t)cfg->n_orderers) == NULL);
  fl_sbuf_free(&enc2);
  fl_netconfig_free(back);
  fl_sbuf_free(&enc);
}

#endif /* FL_TESTS_FUZZ_NETCONFIG_CMP_H */
