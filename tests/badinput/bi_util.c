/* SPDX-License-Identifier: Apache-2.0
 *
 * bi_util.c: raw TLS client, run-time identities and small helpers of the
 * bad-input catalogue tests (bi_util.h).
 */
#include "tests/badinput/bi_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/base/alloc.h"
#include "common/crypto/msp.h"
#include "fl/rpc/frame.pb-c.h"

struct bi_raw_s {
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;
};

static void ssl_err(char *err, size_t errlen, const char *what) {
  unsigned long e = ERR_get_error();
  char b[256] = "";
  if (e) ERR_error_string_n(e, b, sizeof(b));
  ERR_clear_error();
  if (err) snprintf(err, errlen, "%s: %s", what, b[0] ? b : "no OpenSSL reason");
}

fl_status_t bi_raw_open(uint16_t port, const char *cert, const char *key, const char *ca_file,
                        bi_raw_t **out, char *err, size_t errlen) {
  *out = NULL;
  ERR_clear_error();
  bi_raw_t *r = fl_calloc(1, sizeof(*r));
  r->fd = -1;
  r->ctx = SSL_CTX_new(TLS_client_method());
  if (r->ctx == NULL) goto fail_ssl;
  SSL_CTX_set_min_proto_version(r->ctx, TLS1_3_VERSION);
  if (cert && SSL_CTX_use_certificate_chain_file(r->ctx, cert) != 1) goto fail_ssl;
  if (key && SSL_CTX_use_PrivateKey_file(r->ctx, key, SSL_FILETYPE_PEM) != 1) goto fail_ssl;
  if (SSL_CTX_load_verify_locations(r->ctx, ca_file, NULL) != 1) goto fail_ssl;
  SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
  r->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (r->fd < 0) goto fail_sys;
  struct timeval tv = {5, 0};
  setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(r->fd, (struct sockaddr *)&a, sizeof(a)) != 0) goto fail_sys;
  tv.tv_sec = 10;
  setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  r->ssl = SSL_new(r->ctx);
  if (r->ssl == NULL) goto fail_ssl;
  SSL_set_fd(r->ssl, r->fd);
  if (SSL_connect(r->ssl) != 1) {
    ssl_err(err, errlen, "TLS handshake");
    bi_raw_close(r);
    return FL_EUNTRUSTED;
  }
  *out = r;
  return FL_OK;
fail_sys:
  if (err) snprintf(err, errlen, "socket: %s", strerror(errno));
  bi_raw_close(r);
  return FL_ECONNREFUSED;
fail_ssl:
  ssl_err(err, errlen, "TLS setup");
  bi_raw_close(r);
  return FL_ECRYPTO;
}

fl_status_t bi_raw_write(bi_raw_t *r, const void *data, size_t len) {
  const uint8_t *p = data;
  while (len > 0) {
    int chunk = len > (1u << 20) ? (1 << 20) : (int)len;
    int n = SSL_write(r->ssl, p, chunk);
    if (n <= 0) {
      ERR_clear_error();
      return FL_ECLOSED;
    }
    p += n;
    len -= (size_t)n;
  }
  return FL_OK;
}

void bi_raw_shutdown(bi_raw_t *r) {
  if (r && r->ssl) (void)SSL_shutdown(r->ssl);
}

/* Reads exactly n bytes. */
static fl_status_t read_n(bi_raw_t *r, uint8_t *p, size_t n, uint64_t end_ms, char *err,
                          size_t errlen) {
  while (n > 0) {
    if (pn_now_ms() > end_ms) return FL_ETIMEDOUT;
    int k = SSL_read(r->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    if (k > 0) {
      p += k;
      n -= (size_t)k;
      continue;
    }
    int e = SSL_get_error(r->ssl, k);
    if (e == SSL_ERROR_ZERO_RETURN) {
      if (err) snprintf(err, errlen, "server sent close_notify");
      return FL_ECLOSED;
    }
    if (e == SSL_ERROR_SSL) {
      ssl_err(err, errlen, "TLS");
      return FL_EUNTRUSTED;
    }
    if (e == SSL_ERROR_SYSCALL) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return FL_ETIMEDOUT;
      if (err) snprintf(err, errlen, "connection closed (%s)", errno ? strerror(errno) : "EOF");
      ERR_clear_error();
      return FL_ECLOSED;
    }
    if (e == SSL_ERROR_WANT_READ) continue; /* post-handshake messages */
    ssl_err(err, errlen, "TLS read");
    return FL_EIO;
  }
  return FL_OK;
}

fl_status_t bi_raw_read_frame(bi_raw_t *r, uint32_t timeout_ms, fl_frame_t **out, char *err,
                              size_t errlen) {
  *out = NULL;
  if (err && errlen) err[0] = '\0';
  uint64_t end = pn_now_ms() + timeout_ms;
  uint8_t h[4];
  fl_status_t rc = read_n(r, h, 4, end, err, errlen);
  if (rc != FL_OK) return rc;
  uint32_t l = ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
  if (l > (64u << 20)) return FL_ETOOBIG;
  uint8_t *b = fl_malloc(4 + (size_t)l);
  memcpy(b, h, 4);
  rc = read_n(r, b + 4, l, end, err, errlen);
  if (rc == FL_OK) {
    char *m = NULL;
    size_t used = 0;
    rc = fl_frame_decode(b, 4 + (size_t)l, 64u << 20, out, &used, &m);
    if (rc != FL_OK && err) snprintf(err, errlen, "reply frame: %s", m ? m : "");
    fl_free(m);
  }
  fl_free(b);
  return rc;
}

void bi_raw_close(bi_raw_t *r) {
  if (r == NULL) return;
  if (r->ssl) SSL_free(r->ssl);
  if (r->fd >= 0) close(r->fd);
  if (r->ctx) SSL_CTX_free(r->ctx);
  ERR_clear_error();
  fl_free(r);
}

void bi_frame(fl_sbuf_t *out, uint64_t call_id, uint32_t flags, const char *method,
              fl_buf_t payload) {
  Fl__Rpc__Frame f;
  fl__rpc__frame__init(&f);
  f.call_id = call_id;
  f.flags = flags;
  f.method = (char *)(uintptr_t)(method ? method : "");
  f.payload.data = (uint8_t *)(uintptr_t)payload.data;
  f.payload.len = payload.len;
  size_t n = fl__rpc__frame__get_packed_size(&f);
  fl_sbuf_reserve(out, out->len + 4 + n);
  uint8_t *p = out->data + out->len;
  p[0] = (uint8_t)(n >> 24);
  p[1] = (uint8_t)(n >> 16);
  p[2] = (uint8_t)(n >> 8);
  p[3] = (uint8_t)n;
  fl__rpc__frame__pack(&f, p + 4);
  out->len += 4 + n;
}

/* ------------------------------------------------------------ identities */

fl_status_t bi_make_ca(const char *cn, fl_cert_t **cert, fl_signer_t **key) {
  *cert = NULL;
  fl_status_t rc = fl_signer_generate(key);
  if (rc != FL_OK) return rc;
  int64_t now = (int64_t)time(NULL);
  fl_cert_template_t t = {.org = "evil.example.com", .cn = cn, .is_ca = true,
                          .key_usage = FL_KU_KEY_CERT_SIGN | FL_KU_CRL_SIGN |
                                       FL_KU_DIGITAL_SIGNATURE,
                          .not_before = now - 3600, .not_after = now + 86400 * 365};
  rc = fl_cert_issue(&t, *key, NULL, *key, cert);
  if (rc != FL_OK) {
    fl_signer_free(*key);
    *key = NULL;
  }
  return rc;
}

fl_status_t bi_make_ident(const char *mspid, const char *cn, const char *ou, const fl_cert_t *ca,
                          const fl_signer_t *ca_key, int64_t not_before, int64_t not_after,
                          const char *tls_dir, bi_ident_t *out) {
  memset(out, 0, sizeof(*out));
  snprintf(out->id.mspid, sizeof(out->id.mspid), "%s", mspid);
  fl_status_t rc = fl_signer_generate(&out->id.key);
  if (rc != FL_OK) return rc;
  const char *ous[1] = {ou};
  const char *ips[1] = {"127.0.0.1"};
  const char *dns[1] = {"localhost"};
  fl_cert_template_t t = {.org = fl_cert_subject_org(ca), .ous = ous, .n_ous = ou ? 1 : 0,
                          .cn = cn, .key_usage = FL_KU_DIGITAL_SIGNATURE,
                          .not_before = not_before, .not_after = not_after};
  if (tls_dir) {
    t.ext_key_usage = FL_EKU_CLIENT_AUTH | FL_EKU_SERVER_AUTH;
    t.key_usage |= FL_KU_KEY_ENCIPHERMENT;
    t.ips = ips;
    t.n_ips = 1;
    t.dns_names = dns;
    t.n_dns = 1;
  }
  rc = fl_cert_issue(&t, out->id.key, ca, ca_key, &out->cert);
  if (rc != FL_OK) return rc;
  fl_sbuf_t pem = {0};
  fl_cert_to_pem(out->cert, &pem);
  rc = fl_msp_serialize_identity(mspid, pem.data, pem.len, &out->id.id);
  if (rc == FL_OK && tls_dir) {
    snprintf(out->id.tls_cert, sizeof(out->id.tls_cert), "%s/%s.crt", tls_dir, cn);
    snprintf(out->id.tls_key, sizeof(out->id.tls_key), "%s/%s.key", tls_dir, cn);
    fl_sbuf_t kp = {0};
    rc = bi_write_file(out->id.tls_cert, pem.data, pem.len);
    if (rc == FL_OK) rc = fl_signer_to_pem(out->id.key, &kp);
    if (rc == FL_OK) rc = bi_write_file(out->id.tls_key, kp.data, kp.len);
    if (kp.data) memset(kp.data, 0, kp.len);
    fl_sbuf_free(&kp);
  }
  fl_sbuf_free(&pem);
  return rc;
}

fl_status_t bi_load_ident(const char *mspid, const char *dir, bi_ident_t *out) {
  memset(out, 0, sizeof(*out));
  snprintf(out->id.mspid, sizeof(out->id.mspid), "%s", mspid);
  const char *cn = strrchr(dir, '/');
  cn = cn ? cn + 1 : dir;
  char p[700];
  snprintf(p, sizeof(p), "%s/msp/signcerts/%s-cert.pem", dir, cn);
  fl_sbuf_t pem = {0};
  fl_status_t rc = bi_slurp(p, &pem);
  if (rc == FL_OK) rc = fl_cert_from_pem(pem.data, pem.len, &out->cert);
  if (rc == FL_OK) rc = fl_msp_serialize_identity(mspid, pem.data, pem.len, &out->id.id);
  snprintf(p, sizeof(p), "%s/msp/keystore/priv_sk", dir);
  if (rc == FL_OK) rc = fl_signer_load_file(p, &out->id.key);
  snprintf(out->id.tls_cert, sizeof(out->id.tls_cert), "%s/tls/client.crt", dir);
  snprintf(out->id.tls_key, sizeof(out->id.tls_key), "%s/tls/client.key", dir);
  fl_sbuf_free(&pem);
  return rc;
}

void bi_ident_clear(bi_ident_t *id) {
  fl_signer_free(id->id.key);
  fl_sbuf_free(&id->id.id);
  fl_cert_free(id->cert);
  memset(id, 0, sizeof(*id));
}

/* --------------------------------------------------------------- helpers */

bool bi_alive(pid_t pid) {
  if (pid <= 0) return false;
  int st = 0;
  pid_t w = waitpid(pid, &st, WNOHANG);
  if (w == pid) {
    fprintf(stderr, "badinput: process %d ended (status 0x%x)\n", (int)pid, st);
    return false;
  }
  return kill(pid, 0) == 0;
}

fl_status_t bi_slurp(const char *path, fl_sbuf_t *out) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) return FL_NOTFOUND;
  uint8_t b[8192];
  size_t k;
  out->len = 0;
  while ((k = fread(b, 1, sizeof(b), fp)) > 0) fl_sbuf_append(out, b, k);
  fclose(fp);
  return FL_OK;
}

fl_status_t bi_write_file(const char *path, const void *data, size_t len) {
  FILE *fp = fopen(path, "wb");
  if (fp == NULL) return FL_EIO;
  fl_status_t rc = fwrite(data, 1, len, fp) == len ? FL_OK : FL_EIO;
  if (fclose(fp) != 0) rc = FL_EIO;
  return rc;
}
