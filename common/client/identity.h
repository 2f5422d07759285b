/* SPDX-License-Identifier: Apache-2.0
 *
 * identity.h: who a client is (an MSP id, a signing certificate and its
 * private key) and how it authenticates its TLS connections (a TLS
 * certificate, its key and the CAs it trusts), both loaded from the
 * Fabric-style directories `fedledger cryptogen` writes:
 *
 *   <identity>/msp/signcerts/<name>-cert.pem    signing certificate (PEM)
 *   <identity>/msp/keystore/priv_sk             its private key (PEM)
 *   <identity>/tls/client.crt, client.key       TLS identity of a user
 *                 (server.crt, server.key       ... or of a node)
 *   <identity>/tls/ca.crt                       TLS CA of its organisation
 *
 * An identity is immutable once loaded; any number of threads may sign with
 * it at once (fl_signer_t is thread-safe). A TLS bundle only holds paths:
 * the files are read when a connection is created.
 */
#ifndef FL_CLIENT_IDENTITY_H
#define FL_CLIENT_IDENTITY_H

#include <stddef.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/sign.h"
#include "common/net/tls.h"

typedef struct fl_client_identity_s fl_client_identity_t;
typedef struct fl_client_tls_s fl_client_tls_t;

/** Loads an identity from an MSP directory: the first regular file (by
 *  name) in DIR/signcerts is the certificate, the first in DIR/keystore the
 *  private key; the key must belong to the certificate. mspid is the
 *  organisation's MSP id ("Org1MSP"; the directory does not say it).
 *  Borrows inputs. Returns FL_OK with *out owned (fl_client_identity_free);
 *  FL_EINVAL (empty mspid or dir); FL_NOTFOUND (a folder or file missing);
 *  FL_EMALFORMED (not a certificate / key); FL_EPERM (key does not match the
 *  certificate); FL_EIO. *errmsg (optional) gets an owned message (fl_free)
 *  on failure. */
fl_status_t fl_client_identity_load_msp(const char *mspid, const char *msp_dir,
                                        fl_client_identity_t **out /* out */,
                                        char **errmsg /* out, optional */);

/** Builds an identity from PEM bytes (certificate and key). Borrows inputs.
 *  Returns like fl_client_identity_load_msp. */
fl_status_t fl_client_identity_from_pem(const char *mspid, fl_buf_t cert_pem, fl_buf_t key_pem,
                                        fl_client_identity_t **out /* out */,
                                        char **errmsg /* out, optional */);

/** Frees id (and wipes the key). NULL-safe. */
void fl_client_identity_free(fl_client_identity_t *id);

/** The MSP id; valid while id lives. */
const char *fl_client_identity_mspid(const fl_client_identity_t *id);
/** The certificate PEM; view valid while id lives. */
fl_buf_t fl_client_identity_cert_pem(const fl_client_identity_t *id);
/** The serialized fl.msp.SerializedIdentity (the `creator` of everything
 *  this identity signs); view valid while id lives. */
fl_buf_t fl_client_identity_creator(const fl_client_identity_t *id);
/** The signer (borrowed; valid while id lives; thread-safe). */
const fl_signer_t *fl_client_identity_signer(const fl_client_identity_t *id);
/** The subject CN of the certificate; valid while id lives. */
const char *fl_client_identity_cn(const fl_client_identity_t *id);

/** Makes a TLS bundle from a cryptogen tls directory: DIR/client.crt and
 *  DIR/client.key (or DIR/server.crt and server.key when there is no client
 *  pair), trusting DIR/ca.crt. server_name (may be NULL: no host check) is
 *  the host name or IP the server's certificate must name. Borrows inputs.
 *  Returns FL_OK with *out owned (fl_client_tls_free); FL_NOTFOUND when a
 *  file is missing (*errmsg names it); FL_EINVAL. */
fl_status_t fl_client_tls_load_dir(const char *tls_dir, const char *server_name,
                                   fl_client_tls_t **out /* out */,
                                   char **errmsg /* out, optional */);

/** Adds a trusted CA file (for example another organisation's TLS CA, to
 *  talk to its peers). Borrows path (copied). FL_OK or FL_NOTFOUND. */
fl_status_t fl_client_tls_add_ca(fl_client_tls_t *t, const char *ca_file);

/** The configuration to hand to fl_client_new / fl_rpc_client_new; view
 *  valid while t lives and until the next fl_client_tls_add_ca. */
const fl_tls_config_t *fl_client_tls_config(const fl_client_tls_t *t);

/** Frees t. NULL-safe. */
void fl_client_tls_free(fl_client_tls_t *t);

#endif /* FL_CLIENT_IDENTITY_H */
