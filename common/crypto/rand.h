/* SPDX-License-Identifier: Apache-2.0
 *
 * rand.h: cryptographically secure random bytes (OpenSSL's DRBG, seeded by
 * the OS). Used for nonces, certificate serial numbers and key material.
 */
#ifndef FL_CRYPTO_RAND_H
#define FL_CRYPTO_RAND_H

#include <stddef.h>
#include <stdint.h>

#include "common/base/status.h"

/** Fills out[0..len) with random bytes. Returns FL_OK, or FL_ECRYPTO when the
 *  generator cannot produce output (out is then unspecified). Thread-safe. */
fl_status_t fl_random_bytes(uint8_t *out, size_t len);

#endif /* FL_CRYPTO_RAND_H */
