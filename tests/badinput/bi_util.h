/* SPDX-License-Identifier: Apache-2.0
 *
 * bi_util.h: helpers of the bad-input catalogue tests (tests/badinput).
 *
 *  - a raw, blocking TLS 1.3 client (OpenSSL) that writes arbitrary bytes
 *    to a node and reads fl.rpc frames back, so that malformed, truncated
 *    and oversize frames can be sent, which the project's RPC client
 *    refuses to encode;
 *  - identities made at run time with the project's crypto code
 *    (fl_cert_issue): a CA nobody trusts, certificates of a real CA that
 *    have expired, signing and TLS variants;
 *  - small process helpers (is a PID alive).
 *
 * Threads: one thread.
 */
#ifndef FL_TESTS_BADINPUT_BI_UTIL_H
#define FL_TESTS_BADINPUT_BI_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/crypto/sign.h"
#include "common/crypto/x509.h"
#include "common/net/frame.h"
#include "tests/integration/peer/harness.h"

typedef struct bi_raw_s bi_raw_t;

/** Opens a TLS 1.3 connection to 127.0.0.1:port with the client
 *  certificate and key files (cert/key NULL: no client certificate),
 *  trusting ca_file. Returns FL_OK with *out (bi_raw_close), or an error
 *  with the OpenSSL reason in err. A refusal of the client certificate by
 *  the server usually shows only on the first read (TLS 1.3). */
fl_status_t bi_raw_open(uint16_t port, const char *cert, const char *key, const char *ca_file,
                        bi_raw_t **out, char *err, size_t errlen);
/** Writes all bytes. */
fl_status_t bi_raw_write(bi_raw_t *r, const void *data, size_t len);
/** Sends close_notify (no more data from this side). */
void bi_raw_shutdown(bi_raw_t *r);
/** Reads one frame within timeout_ms. Returns FL_OK with *out (fl_frame_free),
 *  FL_ECLOSED when the server closed the connection (err: how), FL_ETIMEDOUT,
 *  FL_EUNTRUSTED for a TLS alert (err: its text), or the frame decoder's
 *  status. */
fl_status_t bi_raw_read_frame(bi_raw_t *r, uint32_t timeout_ms, fl_frame_t **out, char *err,
                              size_t errlen);
/** Closes and frees. NULL-safe. */
void bi_raw_close(bi_raw_t *r);

/** Encodes one frame (any size up to FL_FRAME_LIMIT) and appends it to out. */
void bi_frame(fl_sbuf_t *out, uint64_t call_id, uint32_t flags, const char *method,
              fl_buf_t payload);

/** A generated identity: pn_ident_t (signer, serialized identity, TLS file
 *  paths) plus its certificate. */
typedef struct bi_ident_s {
  pn_ident_t id;
  fl_cert_t *cert;
} bi_ident_t;

/** Makes a CA (self-signed, P-256) named cn: *cert and *key owned. */
fl_status_t bi_make_ca(const char *cn, fl_cert_t **cert, fl_signer_t **key);
/** Issues a leaf for a fresh key, signed by ca/ca_key, with OU = ou, valid
 *  from not_before to not_after (Unix seconds), claimed as mspid. With
 *  tls_dir, the certificate (with SAN 127.0.0.1, client+server auth) and
 *  key are written as tls_dir/<cn>.crt and .key and their paths put in
 *  id.tls_cert / id.tls_key. */
fl_status_t bi_make_ident(const char *mspid, const char *cn, const char *ou, const fl_cert_t *ca,
                          const fl_signer_t *ca_key, int64_t not_before, int64_t not_after,
                          const char *tls_dir, bi_ident_t *out);
/** Loads a cryptogen user folder (msp/signcerts, msp/keystore/priv_sk,
 *  tls/client.*). */
fl_status_t bi_load_ident(const char *mspid, const char *dir, bi_ident_t *out);
void bi_ident_clear(bi_ident_t *id);

/** True while pid is a live, un-reaped child. */
bool bi_alive(pid_t pid);

/** Reads a whole file (out replaced). */
fl_status_t bi_slurp(const char *path, fl_sbuf_t *out);
/** Writes a whole file. */
fl_status_t bi_write_file(const char *path, const void *data, size_t len);

#endif /* FL_TESTS_BADINPUT_BI_UTIL_H */
