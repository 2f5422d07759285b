/* SPDX-License-Identifier: Apache-2.0
 *
 * tls.c: the TLS 1.3 engine over OpenSSL memory BIOs.
 *
 * rbio holds ciphertext received but not yet consumed by OpenSSL; wbio holds
 * ciphertext produced but not yet sent. rbio's EOF return is set to -1 so an
 * empty BIO reads as "retry", not as end of stream. OpenSSL's error queue is
 * per thread: every entry point clears it first and empties it when it
 * reports an error, so one session's failure never leaks into another's.
 */
#include "common/net/tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/base/alloc.h"

struct fl_tls_ctx_s {
  SSL_CTX *ctx;
  bool is_server;
  char *server_name;
};

struct fl_tls_s {
  SSL *ssl;
  BIO *rbio, *wbio;
  bool ready;
  uint8_t *der;
  size_t der_len;
  char *cn;
  char err[256];
};

static char *ssl_errmsg(const char *what, const char *path) {
  unsigned long e = ERR_get_error();
  char buf[256] = "";
  if (e) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return fl_sprintf("%s%s%s: %s", what, path ? " " : "", path ? path : "",
                    buf[0] ? buf : "unknown error");
}

fl_status_t fl_tls_ctx_new(const fl_tls_config_t *cfg, bool is_server,
                           fl_tls_ctx_t **out, char **errmsg) {
  *out = NULL;
  if (errmsg) *errmsg = NULL;
  char *msg = NULL;
  fl_status_t rc = FL_ECONFIG;
  SSL_CTX *ctx = NULL;
  if (cfg == NULL || cfg->cert_file == NULL || cfg->key_file == NULL || cfg->n_ca_files == 0 ||
      cfg->ca_files == NULL) {
    msg = fl_strdup("tls config needs cert_file, key_file and at least one CA file");
    rc = FL_EINVAL;
    goto fail;
  }
  ERR_clear_error();
  ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
  if (ctx == NULL) {
    msg = ssl_errmsg("SSL_CTX_new", NULL);
    rc = FL_ECRYPTO;
    goto fail;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  /* AES-128-GCM first: the cheapest AEAD on hardware with AES-NI. */
  SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                "TLS_CHACHA20_POLY1305_SHA256");
  if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
    msg = ssl_errmsg("cannot load certificate", cfg->cert_file);
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
    msg = ssl_errmsg("cannot load private key", cfg->key_file);
    goto fail;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    msg = ssl_errmsg("private key does not match certificate", cfg->key_file);
    goto fail;
  }
  for (size_t i = 0; i < cfg->n_ca_files; i++) {
    if (cfg->ca_files[i] == NULL ||
        SSL_CTX_load_verify_locations(ctx, cfg->ca_files[i], NULL) != 1) {
      msg = ssl_errmsg("cannot load CA file", cfg->ca_files[i] ? cfg->ca_files[i] : "(null)");
      goto fail;
    }
  }
  if (is_server) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  }
  fl_tls_ctx_t *c = fl_calloc(1, sizeof(*c));
  c->ctx = ctx;
  c->is_server = is_server;
  c->server_name = (!is_server && cfg->server_name) ? fl_strdup(cfg->server_name) : NULL;
  *out = c;
  return FL_OK;
fail:
  SSL_CTX_free(ctx);
  ERR_clear_error();
  if (errmsg) *errmsg = msg;
  else fl_free(msg);
  return rc;
}

void fl_tls_ctx_free(fl_tls_ctx_t *c) {
  if (c == NULL) return;
  SSL_CTX_free(c->ctx);
  fl_free(c->server_name);
  fl_free(c);
}

fl_tls_t *fl_tls_new(fl_tls_ctx_t *c) {
  fl_tls_t *t = fl_calloc(1, sizeof(*t));
  ERR_clear_error();
  t->ssl = SSL_new(c->ctx);
  if (t->ssl == NULL) {
    fprintf(stderr, "fedledger: SSL_new failed (out of memory)\n");
    abort();
  }
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (t->rbio == NULL || t->wbio == NULL) {
    fprintf(stderr, "fedledger: BIO_new failed (out of memory)\n");
    abort();
  }
  BIO_set_mem_eof_return(t->rbio, -1);
  BIO_set_mem_eof_return(t->wbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL now owns both BIOs */
  if (c->is_server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (c->server_name) {
      struct in6_addr a6;
      struct in_addr a4;
      bool is_ip = inet_pton(AF_INET, c->server_name, &a4) == 1 ||
                   inet_pton(AF_INET6, c->server_name, &a6) == 1;
      if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), c->server_name);
      } else {
        SSL_set1_host(t->ssl, c->server_name);
        SSL_ctrl(t->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 c->server_name);
      }
    }
  }
  return t;
}

void fl_tls_free(fl_tls_t *t) {
  if (t == NULL) return;
  SSL_free(t->ssl);
  fl_free(t->der);
  fl_free(t->cn);
  fl_free(t);
}

void fl_tls_feed(fl_tls_t *t, const uint8_t *data, size_t n) {
  while (n > 0) {
    int chunk = n > INT_MAX ? INT_MAX : (int)n;
    int w = BIO_write(t->rbio, data, chunk);
    if (w <= 0) {
      fprintf(stderr, "fedledger: BIO_write to memory BIO failed (out of memory)\n");
      abort();
    }
    data += w;
    n -= (size_t)w;
  }
}

static bool cert_reason(int reason) {
  switch (reason) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return true;
    default:
      return false;
  }
}

/* Classifies the failure of an SSL_* call that returned r. */
static fl_status_t ssl_fail(fl_tls_t *t, int r) {
  int e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return FL_AGAIN;
  if (e == SSL_ERROR_ZERO_RETURN) {
    snprintf(t->err, sizeof(t->err), "peer closed the TLS session");
    ERR_clear_error();
    return FL_ECLOSED;
  }
  fl_status_t rc = FL_ECRYPTO;
  unsigned long code, first = 0;
  while ((code = ERR_get_error()) != 0) {
    if (first == 0) first = code;
    if (ERR_GET_LIB(code) == ERR_LIB_SSL && cert_reason(ERR_GET_REASON(code))) rc = FL_EUNTRUSTED;
  }
  long vr = SSL_get_verify_result(t->ssl);
  if (vr != X509_V_OK) {
    rc = FL_EUNTRUSTED;
    snprintf(t->err, sizeof(t->err), "certificate verification failed: %s",
             X509_verify_cert_error_string(vr));
  } else if (first) {
    ERR_error_string_n(first, t->err, sizeof(t->err));
  } else {
    snprintf(t->err, sizeof(t->err), "TLS failure (ssl error %d)", e);
  }
  ERR_clear_error();
  return rc;
}

static void capture_peer(fl_tls_t *t) {
  X509 *peer = SSL_get0_peer_certificate(t->ssl);
  if (peer == NULL) return;
  int n = i2d_X509(peer, NULL);
  if (n > 0) {
    t->der = fl_malloc((size_t)n);
    uint8_t *p = t->der;
    i2d_X509(peer, &p);
    t->der_len = (size_t)n;
  }
  X509_NAME *subj = X509_get_subject_name(peer);
  int idx = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
  if (idx >= 0) {
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, s);
    if (len >= 0) t->cn = fl_strndup((const char *)utf8, (size_t)len);
    OPENSSL_free(utf8);
  }
}

fl_status_t fl_tls_handshake(fl_tls_t *t) {
  if (t->ready) return FL_OK;
  ERR_clear_error();
  int r = SSL_do_handshake(t->ssl);
  if (r == 1) {
    t->ready = true;
    capture_peer(t);
    return FL_OK;
  }
  return ssl_fail(t, r);
}

bool fl_tls_ready(const fl_tls_t *t) { return t->ready; }

fl_status_t fl_tls_read(fl_tls_t *t, uint8_t *buf, size_t cap, size_t *n) {
  *n = 0;
  if (!t->ready) return FL_ESTATE;
  ERR_clear_error();
  size_t got = 0;
  int r = SSL_read_ex(t->ssl, buf, cap, &got);
  if (r == 1) {
    *n = got;
    return FL_OK;
  }
  return ssl_fail(t, r);
}

fl_status_t fl_tls_write(fl_tls_t *t, const uint8_t *data, size_t n) {
  if (!t->ready) return FL_ESTATE;
  ERR_clear_error();
  while (n > 0) {
    size_t w = 0;
    int r = SSL_write_ex(t->ssl, data, n, &w);
    if (r != 1) {
      fl_status_t rc = ssl_fail(t, r);
      return rc == FL_AGAIN ? FL_ECRYPTO : rc; /* memory BIOs never block */
    }
    data += w;
    n -= w;
  }
  return FL_OK;
}

void fl_tls_shutdown(fl_tls_t *t) {
  if (!t->ready) return;
  ERR_clear_error();
  (void)SSL_shutdown(t->ssl);
  ERR_clear_error();
}

size_t fl_tls_pending(const fl_tls_t *t) { return BIO_ctrl_pending(t->wbio); }

size_t fl_tls_drain(fl_tls_t *t, uint8_t *buf, size_t cap) {
  size_t got = 0;
  if (cap == 0 || BIO_read_ex(t->wbio, buf, cap, &got) != 1) return 0;
  return got;
}

fl_buf_t fl_tls_peer_der(const fl_tls_t *t) { return FL_BUF(t->der, t->der_len); }

const char *fl_tls_peer_cn(const fl_tls_t *t) { return t->cn ? t->cn : ""; }

const char *fl_tls_error(const fl_tls_t *t) { return t->err; }
