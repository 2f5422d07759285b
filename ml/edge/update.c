/* SPDX-License-Identifier: Apache-2.0
 *
 * update.c: the per-round computation of an edge client (update.h): model
 * blob check, update, DP, attacks, data-batch hash, signed submission,
 * chunked local training.
 */
#include "ml/edge/update.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/mlupdate.h"
#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/crypto/hash.h"
#include "ml/agg.h"

fl_status_t fl_edge_model_check(fl_buf_t blob, const uint8_t expected[32],
                                const fl_ml_tensors_t *layout, fl_ml_tensors_t *out) {
  memset(out, 0, sizeof *out);
  uint8_t h[32];
  fl_sha256(blob.data, blob.len, h);
  if (memcmp(h, expected, 32) != 0) return FL_ECORRUPT;
  fl_ml_tensors_t t = {0};
  if (fl_ml_blob_decode(blob, &t) != FL_OK) return FL_EMALFORMED;
  if (layout != NULL && !fl_ml_tensors_same_layout(&t, layout)) {
    fl_ml_tensors_free(&t);
    return FL_EINVAL;
  }
  *out = t;
  return FL_OK;
}

fl_status_t fl_edge_update_delta(const fl_ml_tensors_t *global, const fl_ml_tensors_t *local,
                                 fl_ml_tensors_t *out) {
  memset(out, 0, sizeof *out);
  if (global == NULL || local == NULL || !fl_ml_tensors_same_layout(global, local) ||
      global->n_values != local->n_values)
    return FL_EINVAL;
  fl_ml_tensors_copy(out, local);
  for (size_t i = 0; i < out->n_values; i++) out->values[i] = local->values[i] - global->values[i];
  return FL_OK;
}

fl_status_t fl_edge_dp_apply(float *u, size_t dim, double clip, double sigma, fl_rng_t *rng,
                             fl_edge_dp_stats_t *st) {
  if (!(clip >= 0) || !isfinite(clip) || !(sigma >= 0) || !isfinite(sigma) ||
      (sigma > 0 && rng == NULL) || (u == NULL && dim > 0))
    return FL_EINVAL;
  fl_edge_dp_stats_t s = {0};
  s.norm_before = fl_ml_norm(u, dim);
  s.norm_clipped = s.norm_before;
  if (clip > 0 && s.norm_before > clip) {
    double k = clip / s.norm_before;
    for (size_t i = 0; i < dim; i++) u[i] = (float)((double)u[i] * k);
    s.clipped = true;
    s.norm_clipped = fl_ml_norm(u, dim);
  }
  s.noise_sd = sigma > 0 ? (clip > 0 ? sigma * clip : sigma) : 0;
  if (s.noise_sd > 0)
    for (size_t i = 0; i < dim; i++) u[i] = (float)((double)u[i] + s.noise_sd * fl_rng_normal(rng));
  if (st != NULL) *st = s;
  return FL_OK;
}

fl_status_t fl_edge_attack_update(const fl_edge_attack_t *a, float *u, size_t dim,
                                  const float *benign, size_t n_benign, fl_rng_t *rng) {
  if (a == NULL) return FL_EINVAL;
  if (!fl_ml_attack_is_update(a->kind)) return FL_OK;
  return fl_ml_attack_update(a->kind, u, dim, benign, n_benign, &a->o, rng);
}

size_t fl_edge_attack_data(const fl_edge_attack_t *a, fl_ml_dataset_t *ds) {
  if (a == NULL || ds == NULL || a->kind != FL_ML_ATTACK_LABELFLIP) return 0;
  return fl_ml_attack_flip_labels(ds->y, ds->n, &a->o);
}

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

void fl_edge_rows_hash(const fl_ml_dataset_t *ds, const uint32_t *idx, size_t n, uint8_t out[32]) {
  fl_sha256_ctx_t c;
  FL_ASSERT(fl_sha256_init(&c) == FL_OK); /* only fails when OpenSSL is broken */
  size_t rowlen = (size_t)ds->d * 4 + 4;
  uint8_t *row = fl_malloc(rowlen);
  size_t rows = idx != NULL ? n : ds->n;
  for (size_t r = 0; r < rows; r++) {
    size_t i = idx != NULL ? idx[r] : r;
    const float *x = ds->x + i * ds->d;
    for (uint32_t j = 0; j < ds->d; j++) {
      uint32_t bits;
      memcpy(&bits, &x[j], 4);
      put_le32(row + 4 * (size_t)j, bits);
    }
    put_le32(row + 4 * (size_t)ds->d, (uint32_t)ds->y[i]);
    fl_sha256_update(&c, row, rowlen);
  }
  fl_free(row);
  fl_sha256_final(&c, out);
}

void fl_edge_data_hash(const uint8_t rows_hash[32], uint64_t ts_ms, const char *edge_id,
                       uint8_t out[32]) {
  fl_sbuf_t b = {0};
  fl_sbuf_append(&b, FL_EDGE_DATA_DOMAIN, sizeof FL_EDGE_DATA_DOMAIN); /* with its NUL */
  fl_sbuf_append(&b, rows_hash, 32);
  fl_sbuf_append_be64(&b, ts_ms);
  fl_sbuf_append_str(&b, edge_id);
  fl_sha256(b.data, b.len, out);
  fl_sbuf_free(&b);
}

fl_status_t fl_edge_submission_build(const fl_signer_t *signer, const char *task, uint64_t round,
                                     const fl_ml_tensors_t *update, uint64_t samples,
                                     const uint8_t data_hash[32], fl_edge_submission_t *out) {
  memset(out, 0, sizeof *out);
  fl_status_t rc = FL_EINVAL;
  if (signer == NULL || task == NULL || update == NULL || data_hash == NULL ||
      !fl_mlu_task_id_ok(task, strlen(task)))
    goto fail;
  if ((rc = fl_ml_blob_encode(update, &out->blob)) != FL_OK) goto fail;
  fl_sha256(out->blob.data, out->blob.len, out->hash);
  fl_hex_encode(out->hash, 32, out->hash_hex);
  if ((rc = fl_mlu_signed_msg(task, strlen(task), round, out->hash, &out->msg)) != FL_OK) goto fail;
  if ((rc = fl_signer_sign(signer, out->msg.data, out->msg.len, &out->sig)) != FL_OK) goto fail;
  out->sig_hex = fl_hex_dup(fl_sbuf_view(&out->sig));
  out->round = round;
  out->samples = samples;
  memcpy(out->data_hash, data_hash, 32);
  fl_hex_encode(data_hash, 32, out->data_hash_hex);
  snprintf(out->round_s, sizeof out->round_s, "%llu", (unsigned long long)round);
  snprintf(out->samples_s, sizeof out->samples_s, "%llu", (unsigned long long)samples);
  out->norm = fl_ml_norm(update->values, update->n_values);
  return FL_OK;
fail:
  fl_edge_submission_clear(out);
  return rc;
}

void fl_edge_submission_args(const fl_edge_submission_t *sub, const char *task, fl_buf_t args[7]) {
  args[0] = FL_BUF_STR("SubmitUpdate");
  args[1] = FL_BUF_STR(task);
  args[2] = FL_BUF_STR(sub->round_s);
  args[3] = FL_BUF(sub->hash_hex, 64);
  args[4] = FL_BUF_STR(sub->sig_hex);
  args[5] = FL_BUF_STR(sub->samples_s);
  args[6] = FL_BUF(sub->data_hash_hex, 64);
}

void fl_edge_submission_clear(fl_edge_submission_t *sub) {
  if (sub == NULL) return;
  fl_sbuf_free(&sub->blob);
  fl_sbuf_free(&sub->msg);
  fl_sbuf_free(&sub->sig);
  fl_free(sub->sig_hex);
  memset(sub, 0, sizeof *sub);
}

/* ---- training ------------------------------------------------------------------ */

fl_status_t fl_edge_train(fl_ml_model_t *m, const fl_ml_dataset_t *ds, const uint32_t *idx,
                          size_t n, const fl_ml_train_opts_t *opts, uint32_t chunks,
                          fl_edge_progress_fn progress, void *arg, double *loss) {
  if (loss) *loss = NAN;
  if (m == NULL || ds == NULL || idx == NULL || opts == NULL || n == 0 || opts->epochs == 0)
    return FL_EINVAL;
  if (chunks == 0) chunks = 1;
  if (chunks > n) chunks = (uint32_t)n;
  uint32_t *perm = fl_memdup(idx, n * sizeof(uint32_t));
  fl_status_t rc = FL_OK;
  double last = NAN;
  for (uint32_t e = 0; e < opts->epochs && rc == FL_OK; e++) {
    fl_rng_t r;
    fl_rng_seed(&r, opts->seed + 0x51ed270b27ULL * (e + 1));
    if (chunks > 1) fl_rng_shuffle_u32(&r, perm, n);
    double sum = 0;
    size_t cnt = 0;
    for (uint32_t c = 0; c < chunks; c++) {
      size_t a = n * c / chunks, b = n * (c + 1) / chunks;
      if (b == a) continue;
      fl_ml_train_opts_t o = *opts;
      o.epochs = 1;
      o.seed = opts->seed + 1000003ULL * e + c;
      double l = NAN;
      if ((rc = fl_ml_train(m, ds, perm + a, b - a, &o, &l)) != FL_OK) break;
      if (isfinite(l)) {
        sum += l * (double)(b - a);
        cnt += b - a;
      }
      if (progress) progress(arg, e + 1, opts->epochs, b, n, cnt ? sum / (double)cnt : NAN);
    }
    last = cnt ? sum / (double)cnt : NAN;
  }
  fl_free(perm);
  if (loss && rc == FL_OK) *loss = last;
  return rc;
}

fl_status_t fl_edge_train_estimates(const fl_ml_model_spec_t *spec, const fl_ml_tensors_t *global,
                                    const fl_ml_dataset_t *ds, const fl_ml_train_opts_t *opts,
                                    uint32_t k, float **out) {
  *out = NULL;
  if (spec == NULL || global == NULL || ds == NULL || opts == NULL || k < 1 || ds->n < k)
    return FL_EINVAL;
  size_t P = global->n_values;
  uint32_t *perm = fl_malloc(ds->n * sizeof(uint32_t));
  for (size_t i = 0; i < ds->n; i++) perm[i] = (uint32_t)i;
  fl_rng_t r;
  fl_rng_seed(&r, opts->seed ^ 0xa1e5a1e5ULL);
  fl_rng_shuffle_u32(&r, perm, ds->n);
  float *est = fl_malloc((size_t)k * P * sizeof(float));
  fl_ml_model_t *m = NULL;
  fl_status_t rc = FL_OK;
  for (uint32_t s = 0; s < k && rc == FL_OK; s++) {
    size_t a = ds->n * s / k, b = ds->n * (s + 1) / k;
    if ((rc = fl_ml_model_new(spec, opts->seed, &m)) != FL_OK) break;
    if ((rc = fl_ml_model_set_params(m, global)) == FL_OK &&
        (rc = fl_ml_train(m, ds, perm + a, b - a, opts, NULL)) == FL_OK) {
      const fl_ml_tensors_t *p = fl_ml_model_cparams(m);
      for (size_t j = 0; j < P; j++) est[(size_t)s * P + j] = p->values[j] - global->values[j];
    }
    fl_ml_model_free(m);
    m = NULL;
  }
  fl_free(perm);
  if (rc != FL_OK) {
    fl_free(est);
    return rc;
  }
  *out = est;
  return FL_OK;
}

/* ---- model spec from the task's layout ---------------------------------------- */

fl_status_t fl_edge_spec_from_layout(const fl_ml_tensors_t *layout, uint32_t data_classes,
                                     fl_ml_model_spec_t *spec, char *err, size_t errlen) {
  memset(spec, 0, sizeof *spec);
  if (err && errlen) err[0] = '\0';
  if (layout == NULL || layout->n_tensors == 0) {
    if (err) snprintf(err, errlen, "the task has no tensors");
    return FL_EINVAL;
  }
  const fl_ml_tensor_desc_t *d = layout->desc;
  if (layout->n_tensors == 1 && strcmp(d[0].name, "protos") == 0 && d[0].ndim == 2) {
    if (data_classes < 2 || d[0].dims[0] % data_classes != 0) {
      if (err)
        snprintf(err, errlen, "prototype model with %u prototypes does not fit %u classes",
                 d[0].dims[0], data_classes);
      return FL_EINVAL;
    }
    spec->kind = FL_ML_PROTO;
    spec->n_in = d[0].dims[1];
    spec->n_classes = data_classes;
    spec->protos_per_class = d[0].dims[0] / data_classes;
  } else {
    if (layout->n_tensors % 2 != 0) goto unknown;
    uint32_t L = layout->n_tensors / 2;
    if (L > FL_ML_MAX_HIDDEN + 1) goto unknown;
    for (uint32_t l = 0; l < L; l++) {
      char w[16], b[16];
      snprintf(w, sizeof w, "l%u.w", l);
      snprintf(b, sizeof b, "l%u.b", l);
      const fl_ml_tensor_desc_t *tw = &d[2 * l], *tb = &d[2 * l + 1];
      if (strcmp(tw->name, w) != 0 || strcmp(tb->name, b) != 0 || tw->ndim != 2 || tb->ndim != 1)
        goto unknown;
      if (l > 0 && tw->dims[0] != d[2 * (l - 1)].dims[1]) goto unknown;
      if (l + 1 < L) spec->hidden[l] = tw->dims[1];
    }
    uint32_t out_dim = d[2 * (L - 1)].dims[1];
    spec->n_in = d[0].dims[0];
    if (L == 1) {
      spec->kind = FL_ML_LOGREG;
      spec->n_classes = out_dim == 1 ? 2 : out_dim;
    } else {
      spec->kind = FL_ML_MLP;
      spec->n_hidden = L - 1;
      spec->n_classes = out_dim;
    }
  }
  fl_ml_model_t *m = NULL;
  if (fl_ml_model_new(spec, 1, &m) != FL_OK ||
      !fl_ml_tensors_same_layout(fl_ml_model_cparams(m), layout)) {
    fl_ml_model_free(m);
    goto unknown;
  }
  fl_ml_model_free(m);
  return FL_OK;
unknown:
  if (err) snprintf(err, errlen, "the task's tensor layout (first tensor %s) is not a model ml/ "
                                 "knows (logreg l0.*, mlp l0..lN, protos)",
                    d[0].name);
  memset(spec, 0, sizeof *spec);
  return FL_EINVAL;
}
