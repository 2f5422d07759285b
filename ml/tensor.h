/* SPDX-License-Identifier: Apache-2.0
 *
 * tensor.h: named float32 tensors in one flat vector, their blob encoding and
 * its SHA-256.
 *
 * A model's parameters are an fl_ml_tensors_t: a list of named, shaped
 * tensors whose values lie back to back in one float array (so aggregation
 * works on a flat vector and the blob is one memcpy-shaped walk). Weights
 * travel and are stored (ledger blobs) in the blob format below; its SHA-256
 * is what the ledger records.
 *
 * Blob byte layout (all integers little-endian):
 *
 *   offset  size  field
 *   0       4     magic "FLTN" (0x46 0x4c 0x54 0x4e)
 *   4       2     version, u16 = 1
 *   6       2     flags, u16 = 0 (any other value is rejected)
 *   8       4     n_tensors, u32, 1..FL_ML_BLOB_MAX_TENSORS
 *   12      ...   n_tensors descriptors, each:
 *                   1      name_len, 1..FL_ML_TENSOR_NAME_MAX
 *                   name_len  name, bytes from [A-Za-z0-9_.:/-]
 *                   1      ndim, 1..FL_ML_TENSOR_MAX_DIMS
 *                   4*ndim dims, u32 each, >= 1
 *   ...     4*N   the values of every tensor in descriptor order, row-major,
 *                 IEEE-754 binary32 little-endian; N = sum of the products
 *                 of the dims, N <= FL_ML_BLOB_MAX_VALUES. Every value is
 *                 finite (NaN and infinities are rejected).
 *
 * Nothing may follow the values. A decoder that accepts a blob accepts
 * exactly one byte string for that content, so equal tensors have equal
 * hashes.
 */
#ifndef FL_ML_TENSOR_H
#define FL_ML_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

#define FL_ML_BLOB_VERSION 1
#define FL_ML_BLOB_MAX_TENSORS 256
#define FL_ML_TENSOR_NAME_MAX 63
#define FL_ML_TENSOR_MAX_DIMS 4
/* 2^24 values = 64 MiB of float32: far above any model here, far below
 * what would let a hostile blob exhaust memory. */
#define FL_ML_BLOB_MAX_VALUES ((size_t)1 << 24)
#define FL_ML_SHA256_LEN 32

typedef struct fl_ml_tensor_desc_s {
  char name[FL_ML_TENSOR_NAME_MAX + 1]; /* NUL-terminated */
  uint32_t ndim;
  uint32_t dims[FL_ML_TENSOR_MAX_DIMS];
  size_t offset; /* first value in fl_ml_tensors_t.values */
  size_t count;  /* product of dims */
} fl_ml_tensor_desc_t;

/* Transparent owned value: desc[n_tensors] and values[n_values], both owned
 * (fl_ml_tensors_free). A zeroed struct is a valid empty value. */
typedef struct fl_ml_tensors_s {
  uint32_t n_tensors;
  fl_ml_tensor_desc_t *desc;
  size_t n_values;
  float *values;
} fl_ml_tensors_t;

/** Appends a tensor named name (copied) with the given dims to t, its values
 *  zero. Returns FL_EINVAL for a bad name, ndim or dim, and FL_ETOOBIG when
 *  the blob limits would be exceeded; t is unchanged then. */
fl_status_t fl_ml_tensors_add(fl_ml_tensors_t *t, const char *name,
                              uint32_t ndim, const uint32_t *dims);
/** Makes dst an owned deep copy of src (dst's old content is not freed). */
void fl_ml_tensors_copy(fl_ml_tensors_t *dst /* out */, const fl_ml_tensors_t *src);
/** True when a and b have the same names and shapes in the same order. */
int fl_ml_tensors_same_layout(const fl_ml_tensors_t *a, const fl_ml_tensors_t *b);
/** Frees everything t owns and zeroes it. NULL-safe. */
void fl_ml_tensors_free(fl_ml_tensors_t *t);

/** Appends the blob encoding of t to out. Returns FL_EINVAL when t is empty
 *  or holds a non-finite value (nothing is appended then). */
fl_status_t fl_ml_blob_encode(const fl_ml_tensors_t *t, fl_sbuf_t *out);
/** Decodes an untrusted blob into out (owned, fl_ml_tensors_free). Every
 *  length is bounded before anything is allocated. Returns FL_EMALFORMED for
 *  a truncated, oversized, trailing-garbage or otherwise invalid blob, with
 *  out zeroed; never reads outside blob. */
fl_status_t fl_ml_blob_decode(fl_buf_t blob, fl_ml_tensors_t *out);
/** Size in bytes of the blob fl_ml_blob_encode would write for t. */
size_t fl_ml_blob_size(const fl_ml_tensors_t *t);

/** SHA-256 of data into out (OpenSSL EVP). Returns FL_ECRYPTO if OpenSSL
 *  fails. */
fl_status_t fl_ml_sha256(fl_buf_t data, uint8_t out[FL_ML_SHA256_LEN]);

#endif /* FL_ML_TENSOR_H */
