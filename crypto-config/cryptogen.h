/* SPDX-License-Identifier: Apache-2.0
 *
 * cryptogen.h: generates the crypto material of a consortium from a
 * crypto-config.yaml (schema: see crypto-config/crypto-config.yaml), the way
 * Fabric's `cryptogen generate` does.
 *
 * For every organisation it writes a signing CA and a TLS CA (ECDSA P-256,
 * self-signed, CA:TRUE, keyCertSign), and for every orderer, peer, admin and
 * client a signing key + certificate (role in the OU, as Fabric NodeOUs) and
 * a TLS key + certificate (serverAuth + clientAuth; SAN DNS = node name,
 * short host name and "localhost", SAN IP 127.0.0.1), in Fabric's tree:
 *
 *   OUT/{ordererOrganizations,peerOrganizations}/DOMAIN/
 *     ca/ca.DOMAIN-cert.pem, ca/priv_sk
 *     tlsca/tlsca.DOMAIN-cert.pem, tlsca/priv_sk
 *     msp/cacerts/ca.DOMAIN-cert.pem, msp/tlscacerts/tlsca.DOMAIN-cert.pem
 *     {orderers,peers}/NAME/msp/{signcerts/NAME-cert.pem, keystore/priv_sk,
 *                                cacerts/ca.DOMAIN-cert.pem,
 *                                tlscacerts/tlsca.DOMAIN-cert.pem}
 *     {orderers,peers}/NAME/tls/{ca.crt, server.crt, server.key}
 *     users/USER@DOMAIN/msp/...   (same as above)
 *     users/USER@DOMAIN/tls/{ca.crt, client.crt, client.key}
 *
 * Private keys are unencrypted PKCS#8 PEM, created with mode 0600 (never
 * chmod'ed afterwards). Everything is first written into a temporary
 * directory inside OUT and moved into place only when all of it succeeded,
 * so a failure leaves no half-written organisation behind.
 */
#ifndef FL_CRYPTO_CONFIG_CRYPTOGEN_H
#define FL_CRYPTO_CONFIG_CRYPTOGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/status.h"

#define FL_CRYPTOGEN_DEFAULT_DAYS 3650 /* 10 years */
#define FL_CRYPTOGEN_MAX_COUNT 10000   /* per template / users / admins */

typedef struct fl_cryptogen_opts_s {
  const char *config_path; /* crypto-config.yaml, required */
  const char *output_dir;  /* created if missing, required */
  bool force;              /* replace organisations that already exist */
  uint32_t validity_days;  /* 0 = FL_CRYPTOGEN_DEFAULT_DAYS */
  int64_t not_before;      /* Unix seconds; 0 = now minus 5 minutes */
} fl_cryptogen_opts_t;

/** What was generated. */
typedef struct fl_cryptogen_result_s {
  size_t orgs;       /* organisations */
  size_t identities; /* orderers + peers + admins + clients */
} fl_cryptogen_result_t;

/** Reads the configuration and writes the tree described above. Borrows
 *  opts. result may be NULL. Returns FL_OK; FL_ECONFIG for a bad
 *  configuration (message "FILE:LINE: path: problem"); FL_EEXIST when an
 *  organisation's directory exists and force is false; FL_EIO for file
 *  system errors (the message names the file); FL_ECRYPTO. On failure *err
 *  (if err is not NULL) is an owned message (fl_free); on success NULL. */
fl_status_t fl_cryptogen_generate(const fl_cryptogen_opts_t *opts,
                                  fl_cryptogen_result_t *result /* out */,
                                  char **err /* out */);

#endif /* FL_CRYPTO_CONFIG_CRYPTOGEN_H */
