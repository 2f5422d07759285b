/* SPDX-License-Identifier: Apache-2.0
 *
 * model.c: dense networks (logistic regression = no hidden layer), the GLVQ
 * prototype model, and mini-batch training with SGD+momentum or Adam.
 *
 * Layout of a dense net with L = n_hidden + 1 layers: sizes[0] = n_in,
 * sizes[1..L-1] = hidden, sizes[L] = outputs (1 for binary logistic
 * regression, else n_classes). Layer l has W_l [sizes[l], sizes[l+1]]
 * (row-major, the inner loop runs over outputs so it vectorises) and b_l.
 * Zero inputs are skipped in the matrix loops: one-hot features and ReLU
 * make most inputs zero, and adding 0 * w changes no value, so the result
 * is the same as the dense product.
 */
#include "ml/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "ml/rng.h"

#define MAX_LAYERS (FL_ML_MAX_HIDDEN + 1)
#define PRED_CHUNK 512

struct fl_ml_model_s {
  fl_ml_model_spec_t spec;
  fl_ml_tensors_t p;
  uint32_t n_layers;                /* dense kinds */
  uint32_t sizes[MAX_LAYERS + 1];
  size_t ws_rows;                   /* rows the workspace holds */
  float *act[MAX_LAYERS + 1];       /* act[l], l >= 1: ws_rows * sizes[l] */
  float *delta[MAX_LAYERS + 1];
  float *mask[MAX_LAYERS + 1];      /* dropout scale per hidden unit */
  float *dist;                      /* PROTO: distances, ws_rows * P */
};

static int is_dense(const fl_ml_model_t *m) { return m->spec.kind != FL_ML_PROTO; }

static void ws_free(fl_ml_model_t *m) {
  for (uint32_t l = 0; l <= MAX_LAYERS; l++) {
    fl_free(m->act[l]);
    fl_free(m->delta[l]);
    fl_free(m->mask[l]);
    m->act[l] = m->delta[l] = m->mask[l] = NULL;
  }
  fl_free(m->dist);
  m->dist = NULL;
  m->ws_rows = 0;
}

static void ws_reserve(fl_ml_model_t *m, size_t rows) {
  if (rows <= m->ws_rows) return;
  ws_free(m);
  if (is_dense(m)) {
    for (uint32_t l = 1; l <= m->n_layers; l++) {
      m->act[l] = fl_malloc(rows * m->sizes[l] * sizeof(float));
      m->delta[l] = fl_malloc(rows * m->sizes[l] * sizeof(float));
      m->mask[l] = fl_malloc(rows * m->sizes[l] * sizeof(float));
    }
  } else {
    size_t P = (size_t)m->spec.n_classes * m->spec.protos_per_class;
    m->dist = fl_malloc(rows * P * sizeof(float));
  }
  m->ws_rows = rows;
}

fl_status_t fl_ml_model_new(const fl_ml_model_spec_t *spec, uint64_t seed,
                            fl_ml_model_t **out) {
  *out = NULL;
  if (spec == NULL || spec->n_in == 0 || spec->n_classes < 2 ||
      spec->n_classes > 4096)
    return FL_EINVAL;
  fl_ml_model_t *m = fl_calloc(1, sizeof *m);
  m->spec = *spec;
  fl_rng_t rng;
  fl_rng_seed(&rng, seed);
  fl_status_t rc = FL_OK;
  if (spec->kind == FL_ML_LOGREG || spec->kind == FL_ML_MLP || spec->kind == FL_ML_AE) {
    uint32_t nh = spec->kind == FL_ML_LOGREG ? 0 : spec->n_hidden;
    if (spec->kind != FL_ML_LOGREG && (nh == 0 || nh > FL_ML_MAX_HIDDEN)) {
      rc = FL_EINVAL;
      goto fail;
    }
    m->spec.n_hidden = nh;
    m->n_layers = nh + 1;
    m->sizes[0] = spec->n_in;
    for (uint32_t l = 0; l < nh; l++) {
      if (spec->hidden[l] == 0 || spec->hidden[l] > (1u << 16)) {
        rc = FL_EINVAL;
        goto fail;
      }
      m->sizes[l + 1] = spec->hidden[l];
    }
    m->sizes[m->n_layers] = spec->kind == FL_ML_AE ? spec->n_in
                            : (spec->kind == FL_ML_LOGREG && spec->n_classes == 2)
                                ? 1
                                : spec->n_classes;
    for (uint32_t l = 0; l < m->n_layers; l++) {
      char name[32];
      uint32_t dw[2] = {m->sizes[l], m->sizes[l + 1]};
      snprintf(name, sizeof name, "l%u.w", l);
      if ((rc = fl_ml_tensors_add(&m->p, name, 2, dw)) < 0) goto fail;
      snprintf(name, sizeof name, "l%u.b", l);
      if ((rc = fl_ml_tensors_add(&m->p, name, 1, &dw[1])) < 0) goto fail;
      const fl_ml_tensor_desc_t *d = &m->p.desc[2 * l];
      int last = l + 1 == m->n_layers;
      double lim = last ? sqrt(6.0 / (double)(dw[0] + dw[1])) : sqrt(6.0 / (double)dw[0]);
      for (size_t i = 0; i < d->count; i++)
        m->p.values[d->offset + i] = (float)((2.0 * fl_rng_uniform(&rng) - 1.0) * lim);
    }
  } else if (spec->kind == FL_ML_PROTO) {
    if (spec->protos_per_class == 0 || spec->protos_per_class > 1024) {
      rc = FL_EINVAL;
      goto fail;
    }
    uint32_t dims[2] = {spec->n_classes * spec->protos_per_class, spec->n_in};
    if ((rc = fl_ml_tensors_add(&m->p, "protos", 2, dims)) < 0) goto fail;
    for (size_t i = 0; i < m->p.n_values; i++)
      m->p.values[i] = (float)(0.25 + 0.5 * fl_rng_uniform(&rng));
  } else {
    rc = FL_EINVAL;
    goto fail;
  }
  *out = m;
  return FL_OK;
fail:
  fl_ml_model_free(m);
  return rc;
}

void fl_ml_model_free(fl_ml_model_t *m) {
  if (m == NULL) return;
  ws_free(m);
  fl_ml_tensors_free(&m->p);
  fl_free(m);
}

const fl_ml_model_spec_t *fl_ml_model_spec(const fl_ml_model_t *m) { return &m->spec; }
fl_ml_tensors_t *fl_ml_model_params(fl_ml_model_t *m) { return &m->p; }
const fl_ml_tensors_t *fl_ml_model_cparams(const fl_ml_model_t *m) { return &m->p; }

fl_status_t fl_ml_model_set_params(fl_ml_model_t *m, const fl_ml_tensors_t *p) {
  if (!fl_ml_tensors_same_layout(&m->p, p)) return FL_EINVAL;
  memcpy(m->p.values, p->values, p->n_values * sizeof(float));
  return FL_OK;
}

/* ---- dense nets ---------------------------------------------------------- */

/* Forward pass of n rows; act[L] holds the logits. With rng, hidden units
 * are dropped with probability dropout (inverted dropout). */
static void dense_forward(fl_ml_model_t *m, const float *x, size_t n,
                          fl_rng_t *rng, float dropout) {
  const float *in = x;
  uint32_t L = m->n_layers;
  for (uint32_t l = 0; l < L; l++) {
    const float *W = m->p.values + m->p.desc[2 * l].offset;
    const float *b = m->p.values + m->p.desc[2 * l + 1].offset;
    uint32_t nin = m->sizes[l], nout = m->sizes[l + 1];
    float *outp = m->act[l + 1];
    float *mask = m->mask[l + 1];
    for (size_t r = 0; r < n; r++) {
      float *o = outp + r * nout;
      const float *xi = in + r * nin;
      memcpy(o, b, nout * sizeof(float));
      for (uint32_t i = 0; i < nin; i++) {
        float v = xi[i];
        if (v == 0.0f) continue;
        const float *w = W + (size_t)i * nout;
        for (uint32_t j = 0; j < nout; j++) o[j] += v * w[j];
      }
      if (l + 1 < L) {
        float *mk = mask + r * nout;
        for (uint32_t j = 0; j < nout; j++) {
          float s = 1.0f;
          if (rng && dropout > 0)
            s = fl_rng_uniform(rng) < dropout ? 0.0f : 1.0f / (1.0f - dropout);
          mk[j] = s;
          o[j] = o[j] > 0 ? o[j] * s : 0.0f;
        }
      }
    }
    in = outp;
  }
}

static double dense_loss_grad(fl_ml_model_t *m, const float *x, const int32_t *y,
                              size_t n, const float *cw, float *grad,
                              fl_rng_t *rng, float dropout) {
  ws_reserve(m, n);
  dense_forward(m, x, n, rng, dropout);
  uint32_t L = m->n_layers, K = m->sizes[L];
  double wsum = 0;
  for (size_t r = 0; r < n; r++) wsum += cw ? cw[y[r]] : 1.0;
  if (!(wsum > 0)) return NAN;
  double loss = 0;
  float *dl = m->delta[L];
  for (size_t r = 0; r < n; r++) {
    const float *z = m->act[L] + r * K;
    float *d = dl + r * K;
    double wr = (cw ? cw[y[r]] : 1.0) / wsum;
    if (m->spec.kind == FL_ML_AE) {
      /* Reconstruction: (1/2K) sum_j (z_j - x_j)^2, K = n_in. */
      const float *xr = x + r * K;
      double se = 0;
      for (uint32_t j = 0; j < K; j++) {
        double e = (double)z[j] - xr[j];
        se += e * e;
        d[j] = (float)(wr * e / K);
      }
      loss += wr * se / (2.0 * K);
    } else if (K == 1) {
      double zz = z[0], t = y[r] == 1 ? 1.0 : 0.0;
      loss += wr * ((zz > 0 ? zz : 0) - t * zz + log1p(exp(-fabs(zz))));
      double p = 1.0 / (1.0 + exp(-zz));
      d[0] = (float)(wr * (p - t));
    } else {
      double mx = z[0];
      for (uint32_t j = 1; j < K; j++)
        if (z[j] > mx) mx = z[j];
      double s = 0;
      for (uint32_t j = 0; j < K; j++) s += exp(z[j] - mx);
      double ls = log(s);
      loss += wr * -(z[y[r]] - mx - ls);
      for (uint32_t j = 0; j < K; j++) {
        double p = exp(z[j] - mx - ls);
        d[j] = (float)(wr * (p - (j == (uint32_t)y[r] ? 1.0 : 0.0)));
      }
    }
  }
  if (grad == NULL) return loss;
  memset(grad, 0, m->p.n_values * sizeof(float));
  for (uint32_t l = L; l-- > 0;) {
    const float *in = l == 0 ? x : m->act[l];
    uint32_t nin = m->sizes[l], nout = m->sizes[l + 1];
    const float *W = m->p.values + m->p.desc[2 * l].offset;
    float *gW = grad + m->p.desc[2 * l].offset;
    float *gb = grad + m->p.desc[2 * l + 1].offset;
    const float *dn = m->delta[l + 1];
    for (size_t r = 0; r < n; r++) {
      const float *d = dn + r * nout;
      const float *a = in + r * nin;
      for (uint32_t j = 0; j < nout; j++) gb[j] += d[j];
      for (uint32_t i = 0; i < nin; i++) {
        float v = a[i];
        if (v == 0.0f) continue;
        float *g = gW + (size_t)i * nout;
        for (uint32_t j = 0; j < nout; j++) g[j] += v * d[j];
      }
    }
    if (l == 0) break;
    float *dp = m->delta[l];
    const float *mk = m->mask[l];
    for (size_t r = 0; r < n; r++) {
      const float *d = dn + r * nout;
      const float *a = in + r * nin;
      for (uint32_t i = 0; i < nin; i++) {
        float v = 0.0f;
        if (a[i] > 0) {
          const float *w = W + (size_t)i * nout;
          for (uint32_t j = 0; j < nout; j++) v += w[j] * d[j];
          v *= mk[r * nin + i];
        }
        dp[r * nin + i] = v;
      }
    }
  }
  return loss;
}

fl_status_t fl_ml_model_anomaly(fl_ml_model_t *m, const float *x, size_t n,
                                float *score) {
  if (m->spec.kind != FL_ML_AE) return FL_EINVAL;
  uint32_t d = m->spec.n_in;
  for (size_t s = 0; s < n; s += PRED_CHUNK) {
    size_t bs = n - s < PRED_CHUNK ? n - s : PRED_CHUNK;
    const float *xb = x + s * d;
    ws_reserve(m, bs);
    dense_forward(m, xb, bs, NULL, 0);
    for (size_t r = 0; r < bs; r++) {
      const float *z = m->act[m->n_layers] + r * d, *xr = xb + r * d;
      double se = 0;
      for (uint32_t j = 0; j < d; j++) {
        double e = (double)z[j] - xr[j];
        se += e * e;
      }
      score[s + r] = (float)(se / d);
    }
  }
  return FL_OK;
}

/* ---- prototypes (GLVQ) --------------------------------------------------- */

static void proto_dists(fl_ml_model_t *m, const float *x, size_t n) {
  uint32_t d = m->spec.n_in;
  size_t P = (size_t)m->spec.n_classes * m->spec.protos_per_class;
  for (size_t r = 0; r < n; r++) {
    const float *xr = x + r * d;
    for (size_t p = 0; p < P; p++) {
      const float *w = m->p.values + p * d;
      double s = 0;
      for (uint32_t k = 0; k < d; k++) {
        double t = (double)xr[k] - w[k];
        s += t * t;
      }
      m->dist[r * P + p] = (float)s;
    }
  }
}

static double proto_loss_grad(fl_ml_model_t *m, const float *x, const int32_t *y,
                              size_t n, const float *cw, float *grad) {
  ws_reserve(m, n);
  proto_dists(m, x, n);
  uint32_t d = m->spec.n_in, ppc = m->spec.protos_per_class;
  size_t P = (size_t)m->spec.n_classes * ppc;
  double wsum = 0;
  for (size_t r = 0; r < n; r++) wsum += cw ? cw[y[r]] : 1.0;
  if (!(wsum > 0)) return NAN;
  if (grad) memset(grad, 0, m->p.n_values * sizeof(float));
  double loss = 0;
  for (size_t r = 0; r < n; r++) {
    const float *dr = m->dist + r * P;
    size_t jp = SIZE_MAX, jm = SIZE_MAX;
    for (size_t p = 0; p < P; p++) {
      int same = (p / ppc) == (size_t)y[r];
      if (same && (jp == SIZE_MAX || dr[p] < dr[jp])) jp = p;
      if (!same && (jm == SIZE_MAX || dr[p] < dr[jm])) jm = p;
    }
    double dp = dr[jp], dm = dr[jm], s = dp + dm;
    double wr = (cw ? cw[y[r]] : 1.0) / wsum;
    if (!(s > 0)) continue;
    loss += wr * (dp - dm) / s;
    if (grad == NULL) continue;
    double gp = wr * 2.0 * dm / (s * s), gm = wr * -2.0 * dp / (s * s);
    const float *xr = x + r * d;
    float *g1 = grad + jp * d, *g2 = grad + jm * d;
    const float *w1 = m->p.values + jp * d, *w2 = m->p.values + jm * d;
    /* d(dist)/dw = -2 (x - w). */
    for (uint32_t k = 0; k < d; k++) {
      g1[k] += (float)(gp * -2.0 * ((double)xr[k] - w1[k]));
      g2[k] += (float)(gm * -2.0 * ((double)xr[k] - w2[k]));
    }
  }
  return loss;
}

fl_status_t fl_ml_model_proto_init(fl_ml_model_t *m, const fl_ml_dataset_t *ds,
                                   const uint32_t *idx, size_t n, uint64_t seed) {
  if (m->spec.kind != FL_ML_PROTO || ds->d != m->spec.n_in) return FL_EINVAL;
  fl_rng_t rng;
  fl_rng_seed(&rng, seed);
  uint32_t K = m->spec.n_classes, ppc = m->spec.protos_per_class, d = ds->d;
  uint32_t *rows = fl_malloc((n + 1) * sizeof(uint32_t));
  for (uint32_t c = 0; c < K; c++) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (ds->y[idx[i]] == (int32_t)c) rows[k++] = idx[i];
    if (k == 0) continue;
    for (uint32_t j = 0; j < ppc; j++) {
      uint32_t r = rows[fl_rng_below(&rng, k)];
      memcpy(m->p.values + ((size_t)c * ppc + j) * d, ds->x + (size_t)r * d,
             d * sizeof(float));
    }
  }
  fl_free(rows);
  return FL_OK;
}

/* ---- public entry points ------------------------------------------------- */

static double loss_grad_int(fl_ml_model_t *m, const float *x, const int32_t *y,
                            size_t n, const float *cw, float *grad, fl_rng_t *rng,
                            float dropout) {
  if (n == 0) return NAN;
  if (is_dense(m)) return dense_loss_grad(m, x, y, n, cw, grad, rng, dropout);
  return proto_loss_grad(m, x, y, n, cw, grad);
}

double fl_ml_model_loss_grad(fl_ml_model_t *m, const float *x, const int32_t *y,
                             size_t n, const float *class_weight, float *grad) {
  return loss_grad_int(m, x, y, n, class_weight, grad, NULL, 0);
}

void fl_ml_model_predict(fl_ml_model_t *m, const float *x, size_t n, int32_t *pred) {
  FL_ASSERT(m->spec.kind != FL_ML_AE); /* a programming error, not input */
  size_t P = (size_t)m->spec.n_classes * m->spec.protos_per_class;
  for (size_t s = 0; s < n; s += PRED_CHUNK) {
    size_t bs = n - s < PRED_CHUNK ? n - s : PRED_CHUNK;
    const float *xb = x + s * m->spec.n_in;
    ws_reserve(m, bs);
    if (is_dense(m)) {
      dense_forward(m, xb, bs, NULL, 0);
      uint32_t K = m->sizes[m->n_layers];
      for (size_t r = 0; r < bs; r++) {
        const float *z = m->act[m->n_layers] + r * K;
        if (K == 1) {
          pred[s + r] = z[0] > 0 ? 1 : 0;
          continue;
        }
        uint32_t best = 0;
        for (uint32_t j = 1; j < K; j++)
          if (z[j] > z[best]) best = j;
        pred[s + r] = (int32_t)best;
      }
    } else {
      proto_dists(m, xb, bs);
      for (size_t r = 0; r < bs; r++) {
        const float *dr = m->dist + r * P;
        size_t best = 0;
        for (size_t p = 1; p < P; p++)
          if (dr[p] < dr[best]) best = p;
        pred[s + r] = (int32_t)(best / m->spec.protos_per_class);
      }
    }
  }
}

void fl_ml_model_predict_proba(fl_ml_model_t *m, const float *x, size_t n,
                               float *proba) {
  FL_ASSERT(m->spec.kind != FL_ML_AE);
  uint32_t K = m->spec.n_classes, ppc = m->spec.protos_per_class;
  for (size_t s = 0; s < n; s += PRED_CHUNK) {
    size_t bs = n - s < PRED_CHUNK ? n - s : PRED_CHUNK;
    const float *xb = x + s * m->spec.n_in;
    ws_reserve(m, bs);
    if (is_dense(m)) dense_forward(m, xb, bs, NULL, 0);
    else proto_dists(m, xb, bs);
    for (size_t r = 0; r < bs; r++) {
      float *pr = proba + (s + r) * K;
      if (is_dense(m) && m->sizes[m->n_layers] == 1) {
        double z = m->act[m->n_layers][r];
        double p1 = 1.0 / (1.0 + exp(-z));
        pr[0] = (float)(1.0 - p1);
        pr[1] = (float)p1;
        continue;
      }
      /* Logits (or minus distances) into pr, then a softmax in place. */
      double mx = -INFINITY, sum = 0;
      for (uint32_t j = 0; j < K; j++) {
        if (is_dense(m)) {
          pr[j] = m->act[m->n_layers][r * K + j];
        } else {
          const float *dr = m->dist + r * (size_t)K * ppc + (size_t)j * ppc;
          float best = dr[0];
          for (uint32_t p = 1; p < ppc; p++)
            if (dr[p] < best) best = dr[p];
          pr[j] = -best;
        }
        if (pr[j] > mx) mx = pr[j];
      }
      for (uint32_t j = 0; j < K; j++) sum += exp((double)pr[j] - mx);
      for (uint32_t j = 0; j < K; j++) pr[j] = (float)(exp((double)pr[j] - mx) / sum);
    }
  }
}

static int is_bias(const fl_ml_tensor_desc_t *d) {
  size_t len = strlen(d->name);
  return len >= 2 && strcmp(d->name + len - 2, ".b") == 0;
}

fl_status_t fl_ml_train(fl_ml_model_t *m, const fl_ml_dataset_t *ds,
                        const uint32_t *idx, size_t n,
                        const fl_ml_train_opts_t *o, double *mean_loss) {
  if (mean_loss) *mean_loss = NAN;
  if (m == NULL || ds == NULL || o == NULL || n == 0 || ds->d != m->spec.n_in ||
      o->batch == 0 || o->epochs == 0 || !(o->lr > 0) || o->dropout < 0 ||
      o->dropout >= 1 || (o->opt != FL_ML_OPT_SGD && o->opt != FL_ML_OPT_ADAM))
    return FL_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (idx[i] >= ds->n || ds->y[idx[i]] < 0 || (uint32_t)ds->y[idx[i]] >= m->spec.n_classes)
      return FL_EINVAL;
  size_t P = m->p.n_values, d = ds->d;
  size_t B = o->batch < n ? o->batch : n;
  uint32_t *perm = fl_memdup(idx, n * sizeof(uint32_t));
  float *xb = fl_malloc(B * d * sizeof(float));
  int32_t *yb = fl_malloc(B * sizeof(int32_t));
  float *g = fl_malloc(P * sizeof(float));
  float *s1 = fl_calloc(P, sizeof(float)); /* momentum or Adam m */
  float *s2 = o->opt == FL_ML_OPT_ADAM ? fl_calloc(P, sizeof(float)) : NULL;
  float *w0 = o->prox_mu > 0 ? fl_memdup(m->p.values, P * sizeof(float)) : NULL;
  uint8_t *decay = fl_calloc(P, 1);
  for (uint32_t t = 0; t < m->p.n_tensors; t++)
    if (!is_bias(&m->p.desc[t]))
      memset(decay + m->p.desc[t].offset, 1, m->p.desc[t].count);
  fl_rng_t rng;
  fl_rng_seed(&rng, o->seed);
  float *w = m->p.values;
  uint64_t step = 0;
  double last = NAN;
  for (uint32_t e = 0; e < o->epochs; e++) {
    fl_rng_shuffle_u32(&rng, perm, n);
    double sum = 0;
    size_t nb = 0;
    for (size_t s = 0; s < n; s += B) {
      size_t bs = n - s < B ? n - s : B;
      for (size_t r = 0; r < bs; r++) {
        memcpy(xb + r * d, ds->x + (size_t)perm[s + r] * d, d * sizeof(float));
        yb[r] = ds->y[perm[s + r]];
      }
      double l = loss_grad_int(m, xb, yb, bs, o->class_weight, g, &rng, o->dropout);
      if (isfinite(l)) {
        sum += l;
        nb++;
      }
      if (o->l2 > 0)
        for (size_t i = 0; i < P; i++)
          if (decay[i]) g[i] += o->l2 * w[i];
      if (w0)
        for (size_t i = 0; i < P; i++) g[i] += o->prox_mu * (w[i] - w0[i]);
      step++;
      if (o->opt == FL_ML_OPT_SGD) {
        for (size_t i = 0; i < P; i++) {
          s1[i] = o->momentum * s1[i] + g[i];
          w[i] -= o->lr * s1[i];
        }
      } else {
        const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
        float c1 = (float)(1.0 / (1.0 - pow(b1, (double)step)));
        float c2 = (float)(1.0 / (1.0 - pow(b2, (double)step)));
        for (size_t i = 0; i < P; i++) {
          s1[i] = b1 * s1[i] + (1 - b1) * g[i];
          s2[i] = b2 * s2[i] + (1 - b2) * g[i] * g[i];
          w[i] -= o->lr * (s1[i] * c1) / (sqrtf(s2[i] * c2) + eps);
        }
      }
    }
    last = nb ? sum / (double)nb : NAN;
  }
  if (mean_loss) *mean_loss = last;
  fl_free(decay);
  fl_free(w0);
  fl_free(s2);
  fl_free(s1);
  fl_free(g);
  fl_free(yb);
  fl_free(xb);
  fl_free(perm);
  return FL_OK;
}
