/* SPDX-License-Identifier: Apache-2.0
 *
 * identity.c: loading a client's signing identity from an MSP directory and
 * its TLS files from a tls directory (identity.h).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "common/base/alloc.h"
#include "common/base/file.h"
#include "common/client/identity.h"
#include "common/crypto/msp.h"
#include "common/crypto/x509.h"

#define MAX_PEM_FILE (1u << 20)

struct fl_client_identity_s {
  char *mspid;
  fl_sbuf_t cert_pem;
  fl_sbuf_t creator;
  fl_signer_t *signer;
  char *cn;
};

struct fl_client_tls_s {
  char *cert, *key, *server_name;
  char **cas;
  size_t n_cas;
  fl_tls_config_t cfg;
};

static void set_err(char **errmsg, char *msg) {
  if (errmsg) *errmsg = msg;
  else fl_free(msg);
}

static bool is_regular(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

fl_status_t fl_client_identity_from_pem(const char *mspid, fl_buf_t cert_pem, fl_buf_t key_pem,
                                        fl_client_identity_t **out, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (out == NULL) return FL_EINVAL;
  *out = NULL;
  if (mspid == NULL || mspid[0] == '\0' || cert_pem.len == 0 || key_pem.len == 0) {
    set_err(errmsg, fl_strdup("identity: mspid, certificate and key are required"));
    return FL_EINVAL;
  }
  fl_client_identity_t *id = fl_calloc(1, sizeof *id);
  fl_cert_t *cert = NULL;
  fl_verifier_t *mine = NULL;
  fl_sbuf_t a = {0}, b = {0};
  fl_status_t rc = fl_cert_from_pem(cert_pem.data, cert_pem.len, &cert);
  if (rc != FL_OK) {
    set_err(errmsg, fl_strdup("identity: the certificate does not parse"));
    goto fail;
  }
  rc = fl_signer_from_pem(key_pem.data, key_pem.len, &id->signer);
  if (rc != FL_OK) {
    set_err(errmsg, fl_sprintf("identity: the private key does not load (%s)",
                               fl_status_str(rc)));
    goto fail;
  }
  mine = fl_signer_verifier(id->signer);
  if (fl_cert_pubkey(cert) == NULL || fl_verifier_to_pem(mine, &a) != FL_OK ||
      fl_verifier_to_pem(fl_cert_pubkey(cert), &b) != FL_OK ||
      !fl_buf_eq(fl_sbuf_view(&a), fl_sbuf_view(&b))) {
    rc = FL_EPERM;
    set_err(errmsg, fl_strdup("identity: the private key does not belong to the certificate"));
    goto fail;
  }
  rc = fl_msp_serialize_identity(mspid, cert_pem.data, cert_pem.len, &id->creator);
  if (rc != FL_OK) {
    set_err(errmsg, fl_strdup("identity: cannot serialize the identity"));
    goto fail;
  }
  id->mspid = fl_strdup(mspid);
  id->cn = fl_strdup(fl_cert_subject_cn(cert));
  fl_sbuf_append(&id->cert_pem, cert_pem.data, cert_pem.len);
  fl_sbuf_free(&a);
  fl_sbuf_free(&b);
  fl_verifier_free(mine);
  fl_cert_free(cert);
  *out = id;
  return FL_OK;

fail:
  fl_sbuf_free(&a);
  fl_sbuf_free(&b);
  fl_verifier_free(mine);
  fl_cert_free(cert);
  fl_client_identity_free(id);
  return rc;
}

fl_status_t fl_client_identity_load_msp(const char *mspid, const char *msp_dir,
                                        fl_client_identity_t **out, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (out == NULL) return FL_EINVAL;
  *out = NULL;
  if (msp_dir == NULL || msp_dir[0] == '\0' || mspid == NULL || mspid[0] == '\0') {
    set_err(errmsg, fl_strdup("identity: mspid and msp directory are required"));
    return FL_EINVAL;
  }
  char *sdir = fl_sprintf("%s/signcerts", msp_dir);
  char *kdir = fl_sprintf("%s/keystore", msp_dir);
  char *cpath = fl_dir_first_file(sdir), *kpath = fl_dir_first_file(kdir);
  fl_sbuf_t cert = {0}, key = {0};
  fl_status_t rc = FL_OK;
  if (cpath == NULL || kpath == NULL) {
    rc = FL_NOTFOUND;
    set_err(errmsg, fl_sprintf("identity: no file in %s", cpath == NULL ? sdir : kdir));
    goto done;
  }
  rc = fl_file_read(cpath, MAX_PEM_FILE, &cert);
  if (rc == FL_OK) rc = fl_file_read(kpath, MAX_PEM_FILE, &key);
  if (rc != FL_OK) {
    set_err(errmsg, fl_sprintf("identity: cannot read %s: %s", cert.len ? kpath : cpath,
                               fl_status_str(rc)));
    goto done;
  }
  rc = fl_client_identity_from_pem(mspid, fl_sbuf_view(&cert), fl_sbuf_view(&key), out, errmsg);
done:
  if (key.data) OPENSSL_cleanse(key.data, key.cap);
  fl_sbuf_free(&key);
  fl_sbuf_free(&cert);
  fl_free(cpath);
  fl_free(kpath);
  fl_free(sdir);
  fl_free(kdir);
  return rc;
}

void fl_client_identity_free(fl_client_identity_t *id) {
  if (id == NULL) return;
  fl_signer_free(id->signer);
  fl_sbuf_free(&id->cert_pem);
  fl_sbuf_free(&id->creator);
  fl_free(id->mspid);
  fl_free(id->cn);
  fl_free(id);
}

const char *fl_client_identity_mspid(const fl_client_identity_t *id) { return id->mspid; }
fl_buf_t fl_client_identity_cert_pem(const fl_client_identity_t *id) {
  return fl_sbuf_view(&id->cert_pem);
}
fl_buf_t fl_client_identity_creator(const fl_client_identity_t *id) {
  return fl_sbuf_view(&id->creator);
}
const fl_signer_t *fl_client_identity_signer(const fl_client_identity_t *id) {
  return id->signer;
}
const char *fl_client_identity_cn(const fl_client_identity_t *id) { return id->cn; }

/* ---- TLS ---------------------------------------------------------------- */

static void tls_refresh(fl_client_tls_t *t) {
  t->cfg.cert_file = t->cert;
  t->cfg.key_file = t->key;
  t->cfg.ca_files = (const char *const *)t->cas;
  t->cfg.n_ca_files = t->n_cas;
  t->cfg.server_name = t->server_name;
}

fl_status_t fl_client_tls_load_dir(const char *tls_dir, const char *server_name,
                                   fl_client_tls_t **out, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (out == NULL) return FL_EINVAL;
  *out = NULL;
  if (tls_dir == NULL || tls_dir[0] == '\0') return FL_EINVAL;
  fl_client_tls_t *t = fl_calloc(1, sizeof *t);
  t->cert = fl_sprintf("%s/client.crt", tls_dir);
  t->key = fl_sprintf("%s/client.key", tls_dir);
  if (!is_regular(t->cert)) {
    fl_free(t->cert);
    fl_free(t->key);
    t->cert = fl_sprintf("%s/server.crt", tls_dir);
    t->key = fl_sprintf("%s/server.key", tls_dir);
  }
  char *ca = fl_sprintf("%s/ca.crt", tls_dir);
  const char *missing = !is_regular(t->cert) ? t->cert
                        : !is_regular(t->key) ? t->key
                        : !is_regular(ca)     ? ca
                                              : NULL;
  if (missing != NULL) {
    set_err(errmsg, fl_sprintf("tls: missing %s", missing));
    fl_free(ca);
    fl_client_tls_free(t);
    return FL_NOTFOUND;
  }
  t->cas = fl_calloc(1, sizeof *t->cas);
  t->cas[t->n_cas++] = ca;
  t->server_name = server_name ? fl_strdup(server_name) : NULL;
  tls_refresh(t);
  *out = t;
  return FL_OK;
}

fl_status_t fl_client_tls_add_ca(fl_client_tls_t *t, const char *ca_file) {
  if (t == NULL || ca_file == NULL) return FL_EINVAL;
  if (!is_regular(ca_file)) return FL_NOTFOUND;
  t->cas = fl_reallocarray(t->cas, t->n_cas + 1, sizeof *t->cas);
  t->cas[t->n_cas++] = fl_strdup(ca_file);
  tls_refresh(t);
  return FL_OK;
}

const fl_tls_config_t *fl_client_tls_config(const fl_client_tls_t *t) { return &t->cfg; }

void fl_client_tls_free(fl_client_tls_t *t) {
  if (t == NULL) return;
  for (size_t i = 0; i < t->n_cas; i++) fl_free(t->cas[i]);
  fl_free(t->cas);
  fl_free(t->cert);
  fl_free(t->key);
  fl_free(t->server_name);
  fl_free(t);
}
