/* SPDX-License-Identifier: Apache-2.0
 *
 * chain.c: verification of blocks against the orderers of the genesis
 * configuration (chain.h).
 *
 * Invariants:
 *   1. verifiers[i] is the public key of orderer replica i (borrowed from
 *      certs[i]), or NULL when the configuration has no such replica;
 *   2. (last_number, last_hash) is the last block accepted; initially the
 *      genesis block.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/client/chain.h"
#include "common/crypto/x509.h"

struct fl_client_chain_s {
  fl_netconfig_t *cfg;
  fl_cert_t **certs;
  const fl_verifier_t **verifiers;
  size_t n;
  uint32_t f;
  uint8_t genesis_hash[FL_SHA256_LEN];
  uint64_t last_number;
  uint8_t last_hash[FL_SHA256_LEN];
};

static void set_err(char **errmsg, char *msg) {
  if (errmsg) *errmsg = msg;
  else fl_free(msg);
}

void fl_client_chain_free(fl_client_chain_t *ch) {
  if (ch == NULL) return;
  for (size_t i = 0; i < ch->n; i++) fl_cert_free(ch->certs[i]);
  fl_free(ch->certs);
  fl_free(ch->verifiers);
  fl_netconfig_free(ch->cfg);
  fl_free(ch);
}

fl_status_t fl_client_chain_new(const uint8_t *genesis, size_t len, fl_client_chain_t **out,
                                char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (out == NULL) return FL_EINVAL;
  *out = NULL;
  const char *why = NULL;
  fl_block_t *b = NULL;
  fl_client_chain_t *ch = fl_calloc(1, sizeof *ch);
  fl_status_t rc = fl_block_decode(genesis, len, &b, &why);
  if (rc == FL_OK) rc = fl_genesis_decode(b, &ch->cfg, &why);
  if (rc != FL_OK) {
    set_err(errmsg, fl_sprintf("genesis: %s", why ? why : fl_status_str(rc)));
    goto fail;
  }
  ch->n = ch->cfg->n_orderers;
  ch->f = ch->cfg->pbft.f;
  ch->certs = fl_calloc(ch->n, sizeof *ch->certs);
  ch->verifiers = fl_calloc(ch->n, sizeof *ch->verifiers);
  for (size_t i = 0; i < ch->cfg->n_orderers; i++) {
    const fl_net_orderer_t *o = &ch->cfg->orderers[i];
    if (o->id >= ch->n || ch->certs[o->id] != NULL) continue; /* validated: cannot happen */
    rc = fl_cert_from_pem(o->identity_cert.data, o->identity_cert.len, &ch->certs[o->id]);
    if (rc != FL_OK) {
      set_err(errmsg, fl_sprintf("genesis: orderer %u certificate does not parse", o->id));
      goto fail;
    }
    ch->verifiers[o->id] = fl_cert_pubkey(ch->certs[o->id]);
  }
  memcpy(ch->genesis_hash, b->header_hash, FL_SHA256_LEN);
  fl_client_chain_reset(ch);
  fl_block_free(b);
  *out = ch;
  return FL_OK;

fail:
  fl_block_free(b);
  fl_client_chain_free(ch);
  return rc;
}

fl_status_t fl_client_chain_load_file(const char *path, fl_client_chain_t **out,
                                      char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (out == NULL || path == NULL) return FL_EINVAL;
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fl_status_t rc = errno == ENOENT ? FL_NOTFOUND : FL_EIO;
    set_err(errmsg, fl_sprintf("genesis: cannot open %s", path));
    return rc;
  }
  fl_sbuf_t buf = {0};
  uint8_t tmp[65536];
  size_t n;
  fl_status_t rc = FL_OK;
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
    if (buf.len + n > FL_PU_MAX_MESSAGE) {
      rc = FL_ETOOBIG;
      break;
    }
    fl_sbuf_append(&buf, tmp, n);
  }
  if (rc == FL_OK && ferror(f)) rc = FL_EIO;
  fclose(f);
  if (rc == FL_OK) rc = fl_client_chain_new(buf.data, buf.len, out, errmsg);
  else set_err(errmsg, fl_sprintf("genesis: cannot read %s", path));
  fl_sbuf_free(&buf);
  return rc;
}

void fl_client_chain_reset(fl_client_chain_t *ch) {
  ch->last_number = 0;
  memcpy(ch->last_hash, ch->genesis_hash, FL_SHA256_LEN);
}

uint64_t fl_client_chain_last(const fl_client_chain_t *ch) { return ch->last_number; }

const fl_netconfig_t *fl_client_chain_config(const fl_client_chain_t *ch) { return ch->cfg; }

fl_status_t fl_client_chain_verify(fl_client_chain_t *ch, const fl_block_t *b,
                                   const char **reason) {
  const char *why = NULL;
  if (reason) *reason = NULL;
  if (ch == NULL || b == NULL) return FL_EINVAL;
  if (b->number == 0) {
    if (memcmp(b->header_hash, ch->genesis_hash, FL_SHA256_LEN) != 0) {
      if (reason) *reason = "block 0 is not the genesis block";
      return FL_EBADSIG;
    }
    fl_client_chain_reset(ch);
    return FL_OK;
  }
  fl_status_t rc = fl_block_verify_signatures(b, ch->verifiers, ch->n, ch->f, NULL, NULL, &why);
  if (rc != FL_OK) {
    if (reason) *reason = why ? why : "fewer than 2f+1 valid orderer signatures";
    return rc == FL_EINVAL ? FL_EBADSIG : rc;
  }
  if (b->number == ch->last_number + 1) {
    rc = fl_block_check_link(ch->last_number, ch->last_hash, b, &why);
    if (rc != FL_OK) {
      if (reason) *reason = why ? why : "previous hash does not match";
      return FL_ECORRUPT;
    }
  }
  ch->last_number = b->number;
  memcpy(ch->last_hash, b->header_hash, FL_SHA256_LEN);
  return FL_OK;
}

fl_status_t fl_client_chain_verify_bytes(fl_client_chain_t *ch, fl_buf_t bytes,
                                         fl_block_t **out, const char **reason) {
  if (out == NULL) return FL_EINVAL;
  *out = NULL;
  fl_block_t *b = NULL;
  fl_status_t rc = fl_block_decode(bytes.data, bytes.len, &b, reason);
  if (rc == FL_OK) rc = fl_client_chain_verify(ch, b, reason);
  if (rc != FL_OK) {
    fl_block_free(b);
    return rc;
  }
  *out = b;
  return FL_OK;
}
