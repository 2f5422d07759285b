/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_blob.c: fuzz target of the tensor blob decoder (ml/tensor.h).
 *
 * The input is a model-update blob as a client submits it to the mlupdate
 * chaincode and as the ledger stores it. When it decodes, the tensors must
 * satisfy the format's rules (names from the allowed alphabet, 1..4 dims
 * each >= 1, offsets back to back, every value finite), fl_ml_blob_size must
 * give the input's length, and re-encoding must give back exactly the input
 * bytes: the format admits one byte string per content, so equal tensors
 * have equal hashes. A failed decode leaves the output zeroed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/buf.h"
#include "ml/tensor.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_check.h"

static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > FL_ML_TENSOR_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/-", s[i]) ==
        NULL)
      return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fl_ml_tensors_t t;
  memset(&t, 0xa5, sizeof(t));
  if (fl_ml_blob_decode(FL_BUF(data, size), &t) != FL_OK) {
    check(t.n_tensors == 0 && t.desc == NULL && t.n_values == 0 && t.values == NULL);
    return 0;
  }
  check(t.n_tensors >= 1 && t.n_tensors <= FL_ML_BLOB_MAX_TENSORS);
  check(t.n_values <= FL_ML_BLOB_MAX_VALUES);
  size_t off = 0;
  for (uint32_t i = 0; i < t.n_tensors; i++) {
    const fl_ml_tensor_desc_t *d = &t.desc[i];
    check(name_ok(d->name));
    check(d->ndim >= 1 && d->ndim <= FL_ML_TENSOR_MAX_DIMS);
    size_t count = 1;
    for (uint32_t k = 0; k < d->ndim; k++) {
      check(d->dims[k] >= 1);
      count *= d->dims[k];
    }
    check(d->count == count && d->offset == off);
    off += count;
  }
  check(off == t.n_values);
  for (size_t i = 0; i < t.n_values; i++) check(isfinite(t.values[i]));

  /* Canonical: the one encoding of this content is the input itself. */
  check(fl_ml_blob_size(&t) == size);
  fl_sbuf_t enc = {0};
  check(fl_ml_blob_encode(&t, &enc) == FL_OK);
  check(enc.len == size && memcmp(enc.data, data, size) == 0);

  /* A deep copy has the same layout and the same encoding. */
  fl_ml_tensors_t c;
  fl_ml_tensors_copy(&c, &t);
  check(fl_ml_tensors_same_layout(&t, &c));
  fl_sbuf_t enc2 = {0};
  check(fl_ml_blob_encode(&c, &enc2) == FL_OK);
  check(fl_buf_eq(fl_sbuf_view(&enc), fl_sbuf_view(&enc2)));
  uint8_t h1[FL_ML_SHA256_LEN], h2[FL_ML_SHA256_LEN];
  check(fl_ml_sha256(FL_BUF(data, size), h1) == FL_OK);
  check(fl_ml_sha256(fl_sbuf_view(&enc2), h2) == FL_OK);
  check(memcmp(h1, h2, sizeof(h1)) == 0);
  fl_sbuf_free(&enc2);
  fl_ml_tensors_free(&c);
  fl_sbuf_free(&enc);
  fl_ml_tensors_free(&t);
  return 0;
}
