/* SPDX-License-Identifier: Apache-2.0
 *
 * rand.c: random bytes from OpenSSL's public DRBG (RAND_bytes).
 */
#include <limits.h>

#include <openssl/rand.h>

#include "common/crypto/crypto_int.h"
#include "common/crypto/rand.h"

fl_status_t fl_random_bytes(uint8_t *out, size_t len) {
  while (len > 0) {
    int chunk = len > (size_t)INT_MAX ? INT_MAX : (int)len;
    if (RAND_bytes(out, chunk) != 1) {
      fl__crypto_drain_errors("RAND_bytes");
      return FL_ECRYPTO;
    }
    out += chunk;
    len -= (size_t)chunk;
  }
  return FL_OK;
}
