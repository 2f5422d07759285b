/* SPDX-License-Identifier: Apache-2.0
 *
 * tls.h: TLS 1.3 with mutual authentication, as a pure byte engine.
 *
 * An fl_tls_t is one TLS session over two OpenSSL memory BIOs: ciphertext
 * read from the socket goes in with fl_tls_feed, ciphertext to send comes out
 * with fl_tls_drain, plaintext goes through fl_tls_read / fl_tls_write. No
 * I/O happens here, so the same code serves libuv connections (rpc.c) and
 * in-memory tests.
 *
 * Policy: TLS 1.3 only; both sides present a certificate. A server refuses,
 * during the handshake, a client without a certificate or with one that does
 * not chain to a configured CA. A client verifies the server's chain against
 * its CA list and, when server_name is set, the name (DNS SAN, or IP SAN when
 * server_name is an IP literal). Session tickets are off (no resumption).
 *
 * Threads: a context may be shared by sessions on any thread; a session is
 * used by one thread at a time.
 */
#ifndef FL_NET_TLS_H
#define FL_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

/** Paths of PEM files; all borrowed for the duration of fl_tls_ctx_new. */
typedef struct fl_tls_config_s {
  const char *cert_file;           /* own certificate (chain) */
  const char *key_file;            /* own private key, unencrypted */
  const char *const *ca_files;     /* trusted CA certificates */
  size_t n_ca_files;
  const char *server_name;         /* client only: expected host or IP; NULL = no check */
} fl_tls_config_t;

typedef struct fl_tls_ctx_s fl_tls_ctx_t;
typedef struct fl_tls_s fl_tls_t;

/** Builds a context for the server (is_server) or client side. Returns FL_OK
 *  and *out (owned, fl_tls_ctx_free); FL_EINVAL for a missing field;
 *  FL_ECONFIG when a file cannot be read or the key does not match the
 *  certificate. On error *out is NULL and, when errmsg is not NULL, *errmsg
 *  gets an owned message (fl_free). */
fl_status_t fl_tls_ctx_new(const fl_tls_config_t *cfg, bool is_server,
                           fl_tls_ctx_t **out /* out */, char **errmsg /* out */);

/** Frees a context. Sessions made from it keep their own reference. NULL-safe. */
void fl_tls_ctx_free(fl_tls_ctx_t *ctx);

/** Starts a session (no bytes move yet; call fl_tls_handshake). Returns an
 *  owned session (fl_tls_free). */
fl_tls_t *fl_tls_new(fl_tls_ctx_t *ctx);

/** Frees a session. NULL-safe. */
void fl_tls_free(fl_tls_t *t);

/** Hands n ciphertext bytes received from the peer to the session (copied). */
void fl_tls_feed(fl_tls_t *t, const uint8_t *data, size_t n);

/** Advances the handshake. Returns FL_OK once it is complete (also on later
 *  calls), FL_AGAIN when more input is needed (drain output first), or an
 *  error: FL_EUNTRUSTED when a certificate was refused (by us or, as an
 *  alert, by the peer), FL_ECRYPTO otherwise. */
fl_status_t fl_tls_handshake(fl_tls_t *t);

/** True once the handshake completed. */
bool fl_tls_ready(const fl_tls_t *t);

/** Decrypts into buf (capacity cap). Returns FL_OK with *n > 0, FL_AGAIN when
 *  no whole record is buffered, FL_ECLOSED when the peer sent close_notify,
 *  FL_EUNTRUSTED when the peer rejected our certificate (TLS 1.3 reports
 *  that after the client's handshake finished), FL_ECRYPTO on other
 *  errors. */
fl_status_t fl_tls_read(fl_tls_t *t, uint8_t *buf, size_t cap, size_t *n /* out */);

/** Encrypts n plaintext bytes; the records wait in the output BIO. Only after
 *  the handshake. Returns FL_OK, FL_ESTATE before the handshake, FL_ECRYPTO. */
fl_status_t fl_tls_write(fl_tls_t *t, const uint8_t *data, size_t n);

/** Queues a close_notify alert (best effort). */
void fl_tls_shutdown(fl_tls_t *t);

/** Ciphertext bytes waiting to be sent. */
size_t fl_tls_pending(const fl_tls_t *t);

/** Moves up to cap waiting ciphertext bytes into buf; returns how many. */
size_t fl_tls_drain(fl_tls_t *t, uint8_t *buf, size_t cap);

/** The peer's certificate in DER, after the handshake; {NULL, 0} before.
 *  View valid until the session is freed. */
fl_buf_t fl_tls_peer_der(const fl_tls_t *t);

/** The subject CN of the peer's certificate ("" when absent). Valid until
 *  the session is freed. */
const char *fl_tls_peer_cn(const fl_tls_t *t);

/** The last error message of the session ("" when none). */
const char *fl_tls_error(const fl_tls_t *t);

#endif /* FL_NET_TLS_H */
