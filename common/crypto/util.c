/* SPDX-License-Identifier: Apache-2.0
 *
 * util.c: small helpers shared by the fl_crypto files: bounded whole-file
 * reads, OpenSSL error-queue draining, ASN1_TIME conversion.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/err.h>

#include "common/base/log.h"
#include "common/crypto/crypto_int.h"

fl_status_t fl__read_file(const char *path, size_t max, fl_sbuf_t *out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? FL_NOTFOUND : FL_EIO;
  struct stat st;
  fl_status_t rc = FL_EIO;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) goto fail;
  if ((uint64_t)st.st_size > max) {
    rc = FL_ETOOBIG;
    goto fail;
  }
  fl_sbuf_reserve(out, (size_t)st.st_size + 1);
  for (;;) {
    if (out->len == out->cap) {
      if (out->len >= max) {
        rc = FL_ETOOBIG;
        goto fail;
      }
      fl_sbuf_reserve(out, 4096);
    }
    ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) goto fail;
    if (n == 0) break;
    out->len += (size_t)n;
  }
  close(fd);
  if (out->len > max) {
    fl_sbuf_free(out);
    return FL_ETOOBIG;
  }
  return FL_OK;
fail:
  close(fd);
  fl_sbuf_free(out);
  return rc;
}

void fl__crypto_drain_errors(const char *what) {
  unsigned long e;
  const char *file = NULL, *func = NULL;
  int line = 0;
  while ((e = ERR_get_error_all(&file, &line, &func, NULL, NULL)) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    FL_DEBUG("crypto", "openssl error during=\"%s\" err=\"%s\"", what, buf);
  }
}

int fl__asn1_time_to_unix(const ASN1_TIME *t, int64_t *out) {
  ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
  if (epoch == NULL) return -1;
  int days = 0, secs = 0;
  int ok = ASN1_TIME_diff(&days, &secs, epoch, t);
  ASN1_TIME_free(epoch);
  if (!ok) {
    ERR_clear_error();
    return -1;
  }
  *out = (int64_t)days * 86400 + secs;
  return 0;
}
