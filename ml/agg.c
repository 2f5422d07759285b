/* SPDX-License-Identifier: Apache-2.0
 *
 * agg.c: FedAvg, Krum, Multi-Krum, coordinate median, trimmed mean and
 * Bulyan (El Mhamdi et al. 2018), with optional norm clipping, and the
 * per-update outlier scores. Determinism rules are in agg.h.
 */
#include "ml/agg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"

static const char *const rule_names[] = {"fedavg", "krum", "multikrum",
                                         "median", "trimmed", "bulyan"};

int fl_ml_rule_parse(const char *s) {
  for (int i = 0; i < 6; i++)
    if (strcmp(s, rule_names[i]) == 0) return i;
  if (strcmp(s, "multi-krum") == 0) return FL_ML_RULE_MULTIKRUM;
  if (strcmp(s, "trimmed-mean") == 0 || strcmp(s, "trimmed_mean") == 0)
    return FL_ML_RULE_TRIMMED;
  return -1;
}

const char *fl_ml_rule_name(fl_ml_rule_t r) {
  return (unsigned)r < 6 ? rule_names[r] : "unknown";
}

double fl_ml_norm(const float *v, size_t dim) {
  double s = 0;
  for (size_t i = 0; i < dim; i++) s += (double)v[i] * v[i];
  return sqrt(s);
}

double fl_ml_cosine(const float *u, const float *ref, size_t dim) {
  double uu = 0, rr = 0, ur = 0;
  for (size_t i = 0; i < dim; i++) {
    uu += (double)u[i] * u[i];
    rr += (double)ref[i] * ref[i];
    ur += (double)u[i] * ref[i];
  }
  if (uu <= 0 || rr <= 0) return 0;
  return ur / (sqrt(uu) * sqrt(rr));
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Ascending sort of a column; insertion sort for the small n of a round
 * (no qsort call overhead per coordinate). Equal values are equal, so the
 * order among ties cannot change any result. */
static void sort_col(double *v, size_t n) {
  if (n > 48) {
    qsort(v, n, sizeof *v, cmp_double);
    return;
  }
  for (size_t i = 1; i < n; i++) {
    double x = v[i];
    size_t j = i;
    for (; j > 0 && v[j - 1] > x; j--) v[j] = v[j - 1];
    v[j] = x;
  }
}

static double median_sorted(const double *v, size_t n) {
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double fl_ml_score_norm_z(const float *u, size_t dim, const double *ref_norms,
                          size_t n_ref) {
  if (n_ref == 0) return 0;
  double *v = fl_memdup(ref_norms, n_ref * sizeof(double));
  qsort(v, n_ref, sizeof *v, cmp_double);
  double med = median_sorted(v, n_ref);
  for (size_t i = 0; i < n_ref; i++) v[i] = fabs(v[i] - med);
  qsort(v, n_ref, sizeof *v, cmp_double);
  double mad = 1.4826 * median_sorted(v, n_ref);
  double floor_ = 1e-9 * (med > 1 ? med : 1);
  if (mad < floor_) mad = floor_;
  fl_free(v);
  return (fl_ml_norm(u, dim) - med) / mad;
}

static double sqdist(const float *a, const float *b, size_t dim) {
  double s = 0;
  for (size_t i = 0; i < dim; i++) {
    double t = (double)a[i] - b[i];
    s += t * t;
  }
  return s;
}

double fl_ml_score_krum(const float *u, const float *others, size_t n,
                        size_t dim, uint32_t f) {
  if (n == 0) return 0;
  double *d = fl_malloc(n * sizeof(double));
  for (size_t j = 0; j < n; j++) d[j] = sqdist(u, others + j * dim, dim);
  qsort(d, n, sizeof *d, cmp_double);
  size_t k = n > (size_t)f + 2 ? n - f - 2 : 1;
  if (k > n) k = n;
  double s = 0;
  for (size_t j = 0; j < k; j++) s += d[j];
  fl_free(d);
  return s;
}

/* Krum scores of the rows listed in set[0..m) against each other. dist is
 * the full n x n squared-distance matrix. */
static void krum_scores(const double *dist, size_t n, const size_t *set,
                        size_t m, uint32_t f, double *score, double *tmp) {
  size_t k = m > (size_t)f + 2 ? m - f - 2 : 1;
  for (size_t a = 0; a < m; a++) {
    size_t t = 0;
    for (size_t b = 0; b < m; b++)
      if (b != a) tmp[t++] = dist[set[a] * n + set[b]];
    qsort(tmp, t, sizeof *tmp, cmp_double);
    double s = 0;
    for (size_t j = 0; j < k && j < t; j++) s += tmp[j];
    score[a] = s;
  }
}

/* Weighted mean of the rows in set[0..m) into out. */
static void weighted_mean(const float *u, const double *w, size_t dim,
                          const size_t *set, size_t m, float *out) {
  double *acc = fl_calloc(dim, sizeof(double));
  double wsum = 0;
  for (size_t a = 0; a < m; a++) {
    double wi = w ? w[set[a]] : 1.0;
    const float *r = u + set[a] * dim;
    wsum += wi;
    for (size_t j = 0; j < dim; j++) acc[j] += wi * (double)r[j];
  }
  for (size_t j = 0; j < dim; j++) out[j] = (float)(acc[j] / wsum);
  fl_free(acc);
}

typedef struct scored_s {
  double s;
  size_t i;
} scored_t;

static int cmp_scored(const void *a, const void *b) {
  const scored_t *x = a, *y = b;
  if (x->s != y->s) return x->s < y->s ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* Union-find root with path halving; roots are the smallest index of
 * their component (unions attach the larger root under the smaller). */
static size_t uf_root(size_t *parent, size_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

size_t fl_ml_filter_collusion(const float *u, size_t n, size_t dim, double rho,
                              uint8_t *reject) {
  memset(reject, 0, n);
  if (u == NULL || n < 3 || dim == 0 || !(rho > 0)) return 0;
  double *nrm = fl_malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) nrm[i] = fl_ml_norm(u + i * dim, dim);
  size_t np = n * (n - 1) / 2, k = 0;
  double *d = fl_malloc(np * sizeof(double));
  for (size_t a = 0; a < n; a++)
    for (size_t b = a + 1; b < n; b++) {
      const float *x = u + a * dim, *y = u + b * dim;
      double dot = 0;
      for (size_t j = 0; j < dim; j++) dot += (double)x[j] * y[j];
      double c = nrm[a] > 0 && nrm[b] > 0 ? dot / (nrm[a] * nrm[b]) : 0;
      d[k++] = 1.0 - c;
    }
  double *sorted = fl_memdup(d, np * sizeof(double));
  qsort(sorted, np, sizeof *sorted, cmp_double);
  double thr = rho * median_sorted(sorted, np);
  fl_free(sorted);
  size_t *parent = fl_malloc(n * sizeof(size_t)), *size = fl_calloc(n, sizeof(size_t));
  for (size_t i = 0; i < n; i++) parent[i] = i;
  k = 0;
  for (size_t a = 0; a < n; a++)
    for (size_t b = a + 1; b < n; b++, k++) {
      if (!(d[k] <= thr)) continue;
      size_t ra = uf_root(parent, a), rb = uf_root(parent, b);
      if (ra < rb) parent[rb] = ra;
      else if (rb < ra) parent[ra] = rb;
    }
  for (size_t i = 0; i < n; i++) size[uf_root(parent, i)]++;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    size_t g = size[uf_root(parent, i)];
    if (g >= 2 && 2 * g < n) {
      reject[i] = 1;
      total++;
    }
  }
  if (2 * total >= n) {
    memset(reject, 0, n);
    total = 0;
  }
  fl_free(size);
  fl_free(parent);
  fl_free(d);
  fl_free(nrm);
  return total;
}

size_t fl_ml_filter_direction(const float *u, size_t n, size_t dim, double min_cos,
                              const uint8_t *skip, uint8_t *reject) {
  if (u == NULL || n == 0 || dim == 0) return 0;
  size_t nj = 0;
  for (size_t i = 0; i < n; i++) nj += !(skip && skip[i]);
  if (nj == 0) return 0;
  float *med = fl_malloc(dim * sizeof(float));
  double *col = fl_malloc(nj * sizeof(double));
  for (size_t j = 0; j < dim; j++) {
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
      if (!(skip && skip[i])) col[t++] = u[i * dim + j];
    sort_col(col, nj);
    med[j] = (float)median_sorted(col, nj);
  }
  fl_free(col);
  size_t count = 0;
  uint8_t *bad = fl_calloc(n, 1);
  if (fl_ml_norm(med, dim) > 0) {
    for (size_t i = 0; i < n; i++) {
      if (skip && skip[i]) continue;
      if (fl_ml_cosine(u + i * dim, med, dim) < min_cos) {
        bad[i] = 1;
        count++;
      }
    }
  }
  if (2 * count >= nj) count = 0;
  if (count)
    for (size_t i = 0; i < n; i++)
      if (bad[i]) reject[i] = 1;
  fl_free(bad);
  fl_free(med);
  return count;
}

/* The rule itself on n (already clipped, already filtered) rows u, with
 * f already valid for n. */
static void aggregate_core(const float *u, const double *weights, size_t n,
                           size_t dim, const fl_ml_agg_opts_t *o, size_t f,
                           float *out, uint8_t *selected) {
  size_t *set = fl_malloc(n * sizeof(size_t));
  for (size_t i = 0; i < n; i++) set[i] = i;
  if (selected) memset(selected, 0, n);
  double *dist = NULL, *score = NULL, *tmp = NULL, *col = NULL;
  scored_t *sc = NULL;

  if (o->rule == FL_ML_RULE_FEDAVG) {
    weighted_mean(u, weights, dim, set, n, out);
    if (selected) memset(selected, 1, n);
  } else if (o->rule == FL_ML_RULE_MEDIAN || o->rule == FL_ML_RULE_TRIMMED) {
    col = fl_malloc(n * sizeof(double));
    size_t trim = o->rule == FL_ML_RULE_TRIMMED ? f : 0;
    for (size_t j = 0; j < dim; j++) {
      for (size_t i = 0; i < n; i++) col[i] = u[i * dim + j];
      qsort(col, n, sizeof *col, cmp_double);
      if (o->rule == FL_ML_RULE_MEDIAN) {
        out[j] = (float)median_sorted(col, n);
      } else {
        double s = 0;
        for (size_t i = trim; i < n - trim; i++) s += col[i];
        out[j] = (float)(s / (double)(n - 2 * trim));
      }
    }
    if (selected) memset(selected, 1, n);
  } else {
    /* Krum family: pairwise squared distances once. */
    dist = fl_malloc(n * n * sizeof(double));
    for (size_t a = 0; a < n; a++) {
      dist[a * n + a] = 0;
      for (size_t b = a + 1; b < n; b++)
        dist[a * n + b] = dist[b * n + a] = sqdist(u + a * dim, u + b * dim, dim);
    }
    score = fl_malloc(n * sizeof(double));
    tmp = fl_malloc(n * sizeof(double));
    sc = fl_malloc(n * sizeof(scored_t));
    if (o->rule == FL_ML_RULE_KRUM || o->rule == FL_ML_RULE_MULTIKRUM) {
      krum_scores(dist, n, set, n, (uint32_t)f, score, tmp);
      for (size_t i = 0; i < n; i++) sc[i] = (scored_t){score[i], i};
      qsort(sc, n, sizeof *sc, cmp_scored);
      size_t m = o->rule == FL_ML_RULE_KRUM ? 1 : (o->m ? o->m : n - f);
      /* The chosen ones are summed in index order, not score order. */
      uint8_t *pick = fl_calloc(n, 1);
      for (size_t a = 0; a < m; a++) pick[sc[a].i] = 1;
      size_t k = 0;
      for (size_t i = 0; i < n; i++)
        if (pick[i]) set[k++] = i;
      weighted_mean(u, o->rule == FL_ML_RULE_KRUM ? NULL : weights, dim, set, k, out);
      if (selected) memcpy(selected, pick, n);
      fl_free(pick);
    } else {
      /* Bulyan: theta = n - 2f rounds of Krum over the remaining set. */
      size_t theta = n - 2 * f, beta = theta - 2 * f;
      size_t remaining = n;
      uint8_t *pick = fl_calloc(n, 1);
      for (size_t round = 0; round < theta; round++) {
        krum_scores(dist, n, set, remaining, (uint32_t)f, score, tmp);
        size_t best = 0;
        for (size_t a = 1; a < remaining; a++)
          if (score[a] < score[best] || (score[a] == score[best] && set[a] < set[best]))
            best = a;
        pick[set[best]] = 1;
        memmove(set + best, set + best + 1, (remaining - best - 1) * sizeof(size_t));
        remaining--;
      }
      size_t k = 0;
      for (size_t i = 0; i < n; i++)
        if (pick[i]) set[k++] = i;
      col = fl_malloc(theta * sizeof(double));
      for (size_t j = 0; j < dim; j++) {
        for (size_t a = 0; a < theta; a++) col[a] = u[set[a] * dim + j];
        qsort(col, theta, sizeof *col, cmp_double);
        double med = median_sorted(col, theta);
        /* The beta values nearest the median form a window of the sorted
         * column; slide it, ties to the lower window. */
        size_t lo = 0;
        for (size_t s = 1; s + beta <= theta; s++) {
          double cur = fmax(med - col[lo], col[lo + beta - 1] - med);
          double nxt = fmax(med - col[s], col[s + beta - 1] - med);
          if (nxt < cur) lo = s;
        }
        double s = 0;
        for (size_t a = lo; a < lo + beta; a++) s += col[a];
        out[j] = (float)(s / (double)beta);
      }
      if (selected) memcpy(selected, pick, n);
      fl_free(pick);
    }
  }
  fl_free(sc);
  fl_free(tmp);
  fl_free(score);
  fl_free(dist);
  fl_free(col);
  fl_free(set);
}

/* Lowers f until the rule can run on n updates (f = 0 always can). */
static size_t fit_f(fl_ml_rule_t rule, size_t n, size_t f) {
  while (f > 0 && ((rule == FL_ML_RULE_BULYAN && n < 4 * f + 3) ||
                   ((rule == FL_ML_RULE_KRUM || rule == FL_ML_RULE_MULTIKRUM) && n < 2 * f + 3) ||
                   (rule == FL_ML_RULE_TRIMMED && n <= 2 * f)))
    f--;
  return f;
}

fl_status_t fl_ml_aggregate(const float *updates, const double *weights,
                            size_t n, size_t dim, const fl_ml_agg_opts_t *o,
                            float *out, uint8_t *selected) {
  if (updates == NULL || o == NULL || out == NULL || n == 0 || dim == 0)
    return FL_EINVAL;
  if (weights)
    for (size_t i = 0; i < n; i++)
      if (!(weights[i] > 0) || !isfinite(weights[i])) return FL_EINVAL;
  if (o->collusion < 0 || !isfinite(o->collusion) ||
      (o->dir_filter && !isfinite(o->dir_min_cos)))
    return FL_EINVAL;
  size_t f = o->f;
  switch (o->rule) {
  case FL_ML_RULE_FEDAVG:
  case FL_ML_RULE_MEDIAN:
    break;
  case FL_ML_RULE_KRUM:
  case FL_ML_RULE_MULTIKRUM:
    if (n < 2 * f + 3) return FL_EINVAL;
    if (o->m > n) return FL_EINVAL;
    break;
  case FL_ML_RULE_TRIMMED:
    if (n <= 2 * f) return FL_EINVAL;
    break;
  case FL_ML_RULE_BULYAN:
    if (n < 4 * f + 3) return FL_EINVAL;
    break;
  default:
    return FL_EINVAL;
  }
  /* Clipping works on a copy; the caller's updates are never changed. */
  const float *u = updates;
  float *clipped = NULL;
  if (o->clip_norm > 0) {
    clipped = fl_memdup(updates, n * dim * sizeof(float));
    for (size_t i = 0; i < n; i++) {
      float *r = clipped + i * dim;
      double nr = fl_ml_norm(r, dim);
      if (nr > o->clip_norm) {
        double s = o->clip_norm / nr;
        for (size_t j = 0; j < dim; j++) r[j] = (float)((double)r[j] * s);
      }
    }
    u = clipped;
  }
  /* Pre-filters. */
  size_t nrej = 0;
  uint8_t *rej = NULL;
  if (o->collusion > 0 || o->dir_filter) {
    rej = fl_calloc(n, 1);
    if (o->collusion > 0) nrej += fl_ml_filter_collusion(u, n, dim, o->collusion, rej);
    if (o->dir_filter) {
      uint8_t *skip = fl_memdup(rej, n);
      nrej += fl_ml_filter_direction(u, n, dim, o->dir_min_cos, skip, rej);
      fl_free(skip);
    }
  }
  if (nrej == 0) {
    aggregate_core(u, weights, n, dim, o, f, out, selected);
  } else {
    /* The survivors, in index order, then the rule on them. */
    size_t n2 = 0;
    float *u2 = fl_malloc((n - nrej) * dim * sizeof(float));
    double *w2 = weights ? fl_malloc((n - nrej) * sizeof(double)) : NULL;
    size_t *map = fl_malloc((n - nrej) * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
      if (rej[i]) continue;
      memcpy(u2 + n2 * dim, u + i * dim, dim * sizeof(float));
      if (w2) w2[n2] = weights[i];
      map[n2++] = i;
    }
    fl_ml_agg_opts_t o2 = *o;
    if (o2.m > n2) o2.m = (uint32_t)n2;
    uint8_t *sel2 = fl_calloc(n2, 1);
    aggregate_core(u2, w2, n2, dim, &o2, fit_f(o->rule, n2, f), out, sel2);
    if (selected) {
      memset(selected, 0, n);
      for (size_t a = 0; a < n2; a++) selected[map[a]] = sel2[a];
    }
    fl_free(sel2);
    fl_free(map);
    fl_free(w2);
    fl_free(u2);
  }
  fl_free(rej);
  fl_free(clipped);
  return FL_OK;
}
