/* SPDX-License-Identifier: Apache-2.0
 *
 * genesis.h: the network configuration (fl.config.NetworkConfig) as a C
 * struct, and the genesis block (block 0) that carries it.
 *
 * Block 0 holds exactly one CONFIG envelope whose payload data is the
 * encoded NetworkConfig, signed by an admin of an orderer organisation
 * (role "admin", mspid of an organisation with is_orderer_org). It has an
 * empty previous hash and carries NO orderer signatures: the orderers do not
 * exist as a quorum before the configuration that names them. Every node
 * instead trusts the genesis file its operator gave it (as every Fabric node
 * trusts its genesis block); fl_genesis_decode checks that the block is
 * well formed and self-consistent (the creator is an admin of an orderer
 * organisation according to the CAs in the configuration itself, at the
 * configuration's creation time), which catches corruption and mix-ups but
 * is no substitute for distributing the right file.
 *
 * Validation rules of a configuration (fl_netconfig_validate):
 *   1. channel 1..FL_CHANNEL_MAX bytes; endorsement_policy non-empty;
 *   2. at least one organisation, mspids non-empty and unique, each with at
 *      least one signing root certificate; at least one orderer org;
 *   3. at least one orderer; ids are exactly 0..n-1 (each once); each
 *      orderer's mspid names an orderer organisation; host non-empty, port
 *      1..65535, identity certificate present;
 *   4. pbft.n equals the number of orderers and n >= 3f+1; batch_max_count,
 *      batch_max_bytes, batch_timeout_ms, checkpoint_interval and
 *      view_change_timeout_ms > 0; watermark_window >= checkpoint_interval;
 *   5. peers name a known mspid, have a name, host and port 1..65535;
 *   6. chaincode names non-empty and unique, version non-empty;
 *   7. revoked entries have a non-empty mspid;
 *   8. max_message_bytes >= FL_NETCONFIG_MIN_MESSAGE_BYTES.
 */
#ifndef FL_PROTOUTIL_GENESIS_H
#define FL_PROTOUTIL_GENESIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/hash.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"
#include "common/protoutil/block.h"

#define FL_NETCONFIG_DEFAULT_MESSAGE_BYTES (16u * 1024 * 1024)
#define FL_NETCONFIG_MIN_MESSAGE_BYTES 4096u
#define FL_NETCONFIG_MAX_ITEMS 4096 /* orgs, orderers, peers, ... each */

typedef struct fl_net_org_s {
  const char *mspid;               /* "Org1MSP" */
  const char *name;                /* "org1.example.com" (may be empty) */
  const fl_buf_t *root_certs;      /* signing CA certificates, PEM, >= 1 */
  size_t n_root_certs;
  const fl_buf_t *tls_root_certs;  /* TLS CA certificates, PEM */
  size_t n_tls_root_certs;
  bool is_orderer_org;
} fl_net_org_t;

typedef struct fl_net_orderer_s {
  uint32_t id;                     /* PBFT replica id, 0..N-1 */
  const char *mspid;
  const char *host;
  uint32_t port;
  fl_buf_t identity_cert;          /* signing certificate, PEM */
} fl_net_orderer_t;

typedef struct fl_net_peer_s {
  const char *mspid;
  const char *name;                /* "peer0.org1.example.com" */
  const char *host;
  uint32_t port;
  uint32_t events_port;            /* 0: no events socket */
} fl_net_peer_t;

typedef struct fl_pbft_params_s {
  uint32_t n, f;
  uint32_t batch_max_count, batch_max_bytes, batch_timeout_ms;
  uint32_t checkpoint_interval, watermark_window, view_change_timeout_ms;
} fl_pbft_params_t;

typedef struct fl_net_chaincode_s {
  const char *name, *version;
  uint8_t sha256[FL_SHA256_LEN];   /* SHA-256 of the .so */
  const char *policy;              /* "" = the network default */
  const char *library;             /* .so file name ("" = not given) */
} fl_net_chaincode_t;

typedef struct fl_net_revoked_s {
  const char *mspid;
  uint8_t cert_sha256[FL_SHA256_LEN]; /* SHA-256 of the certificate's DER */
  const char *reason;
  uint64_t revoked_at_ms;
} fl_net_revoked_t;

/** The network configuration. As encoder input everything is borrowed (NULL
 *  strings count as ""); a decoded one owns its memory and every string is
 *  non-NULL. */
typedef struct fl_netconfig_s {
  const char *channel;
  const fl_net_org_t *orgs;
  size_t n_orgs;
  const fl_net_orderer_t *orderers;
  size_t n_orderers;
  const fl_net_peer_t *peers;
  size_t n_peers;
  fl_pbft_params_t pbft;
  const char *endorsement_policy;  /* default, e.g. "MAJORITY" */
  const fl_net_chaincode_t *chaincodes;
  size_t n_chaincodes;
  const fl_net_revoked_t *revoked;
  size_t n_revoked;
  uint32_t max_message_bytes;
  uint64_t created_ms;             /* 0: not recorded */
  void *mem_;                      /* private; NULL for encoder input */
} fl_netconfig_t;

/** Checks cfg against the rules at the top. Borrows cfg. Returns FL_OK or
 *  FL_ECONFIG with *reason (optional) naming the broken rule. PEM contents
 *  are not parsed here (fl_netconfig_msp_new does). */
fl_status_t fl_netconfig_validate(const fl_netconfig_t *cfg,
                                  const char **reason /* out, optional */);

/** Validates and encodes cfg as fl.config.NetworkConfig into out (contents
 *  replaced). Returns FL_OK, FL_ECONFIG, FL_EINVAL, FL_ETOOBIG. */
fl_status_t fl_netconfig_encode(const fl_netconfig_t *cfg, fl_sbuf_t *out /* out */,
                                const char **reason /* out, optional */);

/** Decodes NetworkConfig bytes and validates the result. Borrows data.
 *  Returns FL_OK with *out owned (fl_netconfig_free); FL_ETOOBIG;
 *  FL_EMALFORMED (does not decode, wrong hash length); FL_ECONFIG. */
fl_status_t fl_netconfig_decode(const uint8_t *data, size_t len,
                                fl_netconfig_t **out /* out */,
                                const char **reason /* out, optional */);

/** Frees a decoded configuration. NULL is fine. */
void fl_netconfig_free(fl_netconfig_t *cfg);

/** Builds an MSP from cfg: every organisation with its signing and TLS
 *  roots (concatenated PEM), and every revoked fingerprint. Returns FL_OK
 *  with *out owned (fl_msp_free), or what fl_msp_add_org returns (bad PEM,
 *  not a CA, bad mspid) with *reason. */
fl_status_t fl_netconfig_msp_new(const fl_netconfig_t *cfg, fl_msp_t **out /* out */,
                                 const char **reason /* out, optional */);

/** Returns the orderer with replica id `id`, or NULL. */
const fl_net_orderer_t *fl_netconfig_orderer(const fl_netconfig_t *cfg, uint32_t id);

/** Builds the genesis block: validates cfg, checks that every CA parses
 *  (fl_netconfig_msp_new), encodes it, wraps it in a CONFIG envelope on
 *  cfg->channel created by `creator` (serialized identity of an orderer-org
 *  admin) and signed by signer, and makes block 0 of that one envelope (no
 *  orderer signatures). That the creator is such an admin is checked the
 *  way fl_genesis_decode checks it. Borrows inputs. Returns FL_OK with *out
 *  owned (fl_block_free); FL_ECONFIG; FL_EPERM/FL_EUNTRUSTED/FL_EBADSIG
 *  when the creator does not qualify; FL_ECRYPTO; with *reason. */
fl_status_t fl_genesis_build(const fl_netconfig_t *cfg, fl_buf_t creator,
                             const fl_signer_t *signer, fl_block_t **out /* out */,
                             const char **reason /* out, optional */);

/** Reads the configuration back from a genesis block: number 0, empty
 *  previous hash, exactly one envelope, which decodes as a CONFIG envelope
 *  on the configuration's channel; the configuration decodes and validates;
 *  the envelope's creator is an admin of an orderer organisation of this
 *  configuration and its signature verifies (at created_ms when recorded).
 *  Borrows b. Returns FL_OK with *out owned (fl_netconfig_free);
 *  FL_EMALFORMED, FL_ECONFIG, FL_EPERM, FL_EUNTRUSTED, FL_EREVOKED,
 *  FL_EBADSIG with *reason. */
fl_status_t fl_genesis_decode(const fl_block_t *b, fl_netconfig_t **out /* out */,
                              const char **reason /* out, optional */);

#endif /* FL_PROTOUTIL_GENESIS_H */
