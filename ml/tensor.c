/* SPDX-License-Identifier: Apache-2.0
 *
 * tensor.c: named tensor lists, the strict blob codec (layout in tensor.h)
 * and SHA-256 through OpenSSL's one-shot EVP_Digest.
 */
#include "ml/tensor.h"

#include <math.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/base/alloc.h"

#define MAGIC "FLTN"
#define HEADER_LEN 12

static int name_ok(const char *name, size_t len) {
  if (len == 0 || len > FL_ML_TENSOR_NAME_MAX) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
             c == '/' || c == '-';
    if (!ok) return 0;
  }
  return 1;
}

fl_status_t fl_ml_tensors_add(fl_ml_tensors_t *t, const char *name,
                              uint32_t ndim, const uint32_t *dims) {
  if (t == NULL || name == NULL || dims == NULL) return FL_EINVAL;
  size_t len = strlen(name);
  if (!name_ok(name, len) || ndim == 0 || ndim > FL_ML_TENSOR_MAX_DIMS)
    return FL_EINVAL;
  size_t count = 1;
  for (uint32_t i = 0; i < ndim; i++) {
    if (dims[i] == 0) return FL_EINVAL;
    if (dims[i] > FL_ML_BLOB_MAX_VALUES || count > FL_ML_BLOB_MAX_VALUES / dims[i])
      return FL_ETOOBIG;
    count *= dims[i];
  }
  if (t->n_tensors >= FL_ML_BLOB_MAX_TENSORS ||
      count > FL_ML_BLOB_MAX_VALUES - t->n_values)
    return FL_ETOOBIG;
  t->desc = fl_reallocarray(t->desc, t->n_tensors + 1, sizeof *t->desc);
  fl_ml_tensor_desc_t *d = &t->desc[t->n_tensors];
  memset(d, 0, sizeof *d);
  memcpy(d->name, name, len + 1);
  d->ndim = ndim;
  memcpy(d->dims, dims, ndim * sizeof dims[0]);
  d->offset = t->n_values;
  d->count = count;
  t->values = fl_reallocarray(t->values, t->n_values + count, sizeof(float));
  memset(t->values + t->n_values, 0, count * sizeof(float));
  t->n_values += count;
  t->n_tensors++;
  return FL_OK;
}

void fl_ml_tensors_copy(fl_ml_tensors_t *dst, const fl_ml_tensors_t *src) {
  dst->n_tensors = src->n_tensors;
  dst->n_values = src->n_values;
  dst->desc = fl_memdup(src->desc, src->n_tensors * sizeof *src->desc);
  dst->values = fl_memdup(src->values, src->n_values * sizeof(float));
}

int fl_ml_tensors_same_layout(const fl_ml_tensors_t *a, const fl_ml_tensors_t *b) {
  if (a->n_tensors != b->n_tensors || a->n_values != b->n_values) return 0;
  for (uint32_t i = 0; i < a->n_tensors; i++) {
    const fl_ml_tensor_desc_t *x = &a->desc[i], *y = &b->desc[i];
    if (strcmp(x->name, y->name) != 0 || x->ndim != y->ndim ||
        memcmp(x->dims, y->dims, x->ndim * sizeof x->dims[0]) != 0)
      return 0;
  }
  return 1;
}

void fl_ml_tensors_free(fl_ml_tensors_t *t) {
  if (t == NULL) return;
  fl_free(t->desc);
  fl_free(t->values);
  memset(t, 0, sizeof *t);
}

static void put_le16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
static uint16_t get_le16(const uint8_t *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}

size_t fl_ml_blob_size(const fl_ml_tensors_t *t) {
  size_t n = HEADER_LEN;
  for (uint32_t i = 0; i < t->n_tensors; i++)
    n += 1 + strlen(t->desc[i].name) + 1 + 4 * (size_t)t->desc[i].ndim;
  return n + 4 * t->n_values;
}

fl_status_t fl_ml_blob_encode(const fl_ml_tensors_t *t, fl_sbuf_t *out) {
  if (t == NULL || out == NULL || t->n_tensors == 0) return FL_EINVAL;
  for (size_t i = 0; i < t->n_values; i++)
    if (!isfinite(t->values[i])) return FL_EINVAL;
  size_t total = fl_ml_blob_size(t);
  fl_sbuf_reserve(out, total);
  uint8_t *p = out->data + out->len;
  memcpy(p, MAGIC, 4);
  put_le16(p + 4, FL_ML_BLOB_VERSION);
  put_le16(p + 6, 0);
  put_le32(p + 8, t->n_tensors);
  p += HEADER_LEN;
  for (uint32_t i = 0; i < t->n_tensors; i++) {
    const fl_ml_tensor_desc_t *d = &t->desc[i];
    size_t len = strlen(d->name);
    *p++ = (uint8_t)len;
    memcpy(p, d->name, len);
    p += len;
    *p++ = (uint8_t)d->ndim;
    for (uint32_t k = 0; k < d->ndim; k++, p += 4) put_le32(p, d->dims[k]);
  }
  for (size_t i = 0; i < t->n_values; i++, p += 4) {
    uint32_t bits;
    memcpy(&bits, &t->values[i], 4);
    put_le32(p, bits);
  }
  out->len += total;
  return FL_OK;
}

fl_status_t fl_ml_blob_decode(fl_buf_t blob, fl_ml_tensors_t *out) {
  memset(out, 0, sizeof *out);
  fl_ml_tensors_t t = {0};
  const uint8_t *p = blob.data, *end = blob.data + blob.len;
  if (blob.data == NULL || blob.len < HEADER_LEN) goto malformed;
  if (memcmp(p, MAGIC, 4) != 0 || get_le16(p + 4) != FL_ML_BLOB_VERSION ||
      get_le16(p + 6) != 0)
    goto malformed;
  uint32_t n = get_le32(p + 8);
  if (n == 0 || n > FL_ML_BLOB_MAX_TENSORS) goto malformed;
  p += HEADER_LEN;
  /* Descriptors first: bounded by n and by the bytes present. */
  t.desc = fl_calloc(n, sizeof *t.desc);
  for (uint32_t i = 0; i < n; i++) {
    fl_ml_tensor_desc_t *d = &t.desc[i];
    if (end - p < 1) goto malformed;
    size_t len = *p++;
    if ((size_t)(end - p) < len + 1 || !name_ok((const char *)p, len)) goto malformed;
    memcpy(d->name, p, len);
    d->name[len] = '\0';
    p += len;
    d->ndim = *p++;
    if (d->ndim == 0 || d->ndim > FL_ML_TENSOR_MAX_DIMS) goto malformed;
    if ((size_t)(end - p) < 4 * (size_t)d->ndim) goto malformed;
    size_t count = 1;
    for (uint32_t k = 0; k < d->ndim; k++, p += 4) {
      d->dims[k] = get_le32(p);
      if (d->dims[k] == 0 || d->dims[k] > FL_ML_BLOB_MAX_VALUES ||
          count > FL_ML_BLOB_MAX_VALUES / d->dims[k])
        goto malformed;
      count *= d->dims[k];
    }
    if (count > FL_ML_BLOB_MAX_VALUES - t.n_values) goto malformed;
    d->offset = t.n_values;
    d->count = count;
    t.n_values += count;
  }
  t.n_tensors = n;
  /* Exactly the values must remain: no truncation, no trailing bytes. */
  if ((size_t)(end - p) != 4 * t.n_values) goto malformed;
  t.values = fl_malloc(t.n_values * sizeof(float));
  for (size_t i = 0; i < t.n_values; i++, p += 4) {
    uint32_t bits = get_le32(p);
    float v;
    memcpy(&v, &bits, 4);
    if (!isfinite(v)) goto malformed;
    t.values[i] = v;
  }
  *out = t;
  return FL_OK;
malformed:
  fl_ml_tensors_free(&t);
  return FL_EMALFORMED;
}

fl_status_t fl_ml_sha256(fl_buf_t data, uint8_t out[FL_ML_SHA256_LEN]) {
  unsigned int len = 0;
  static const uint8_t empty[1] = {0};
  const void *p = data.data ? (const void *)data.data : (const void *)empty;
  if (EVP_Digest(p, data.len, out, &len, EVP_sha256(), NULL) != 1 ||
      len != FL_ML_SHA256_LEN)
    return FL_ECRYPTO;
  return FL_OK;
}
