/* SPDX-License-Identifier: Apache-2.0
 *
 * task_def.c: YAML task definition -> CreateTask arguments (task_def.h).
 */
#include "cli/task_def.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/json.h"
#include "chaincode/mlupdate/mlupdate.h"
#include "common/base/alloc.h"
#include "common/config/config.h"
#include "common/crypto/hash.h"
#include "ml/model.h"
#include "ml/tensor.h"

#define MAX_MODEL_FILE ((size_t)256 << 20)

typedef enum { K_U64, K_NUM } kind_t;

/* The definition's keys, in the chaincode's order (init_hash is added). */
static const struct {
  const char *key;
  kind_t kind;
} def_keys[] = {
    {"f", K_U64},         {"m", K_U64},           {"clip_norm", K_NUM},
    {"max_norm_z", K_NUM}, {"min_cosine", K_NUM}, {"max_norm", K_NUM},
    {"norm_window", K_U64}, {"min_updates", K_U64}, {"max_updates", K_U64},
    {"round_ms", K_U64},   {"reject_limit", K_NUM}, {"reject_min", K_U64},
    {"collusion", K_NUM},  {"median_cosine", K_NUM},
};
#define N_DEF_KEYS (sizeof def_keys / sizeof def_keys[0])

static const char *const other_keys[] = {"task", "arch", "model", "rule", "round"};
static const char *const rules[] = {"fedavg", "krum", "multikrum", "median", "trimmed",
                                    "bulyan"};

static fl_status_t fail(char **err, fl_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static fl_status_t fail(char **err, fl_status_t st, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  fl_free(*err);
  *err = fl_strdup(tmp);
  return st;
}

static fl_status_t read_file(const char *path, fl_sbuf_t *out, char **err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return fail(err, FL_NOTFOUND, "cannot read %s", path);
  uint8_t chunk[65536];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (out->len + k > MAX_MODEL_FILE) {
      fclose(f);
      return fail(err, FL_ETOOBIG, "%s is larger than 256 MiB", path);
    }
    fl_sbuf_append(out, chunk, k);
  }
  bool bad = ferror(f) != 0;
  fclose(f);
  return bad ? fail(err, FL_EIO, "error reading %s", path) : FL_OK;
}

/* Generates the initial model from the `model:` map. */
static fl_status_t gen_model(fl_config_t *cfg, bool seed_set, uint64_t seed,
                             fl_cli_task_def_t *d, char **arch, char **err) {
  const fl_config_node_t *m = fl_config_find(cfg, NULL, "model");
  if (m == NULL)
    return fail(err, FL_EINVAL, "%s: no `model:` section and no --model FILE",
                fl_config_file(cfg));
  if (fl_config_node_kind(m) != FL_CONFIG_MAP)
    return fail(err, FL_EINVAL, "%s:%d: model must be a map", fl_config_file(cfg),
                fl_config_node_line(m));
  static const char *const mkeys[] = {"kind", "inputs", "classes", "hidden",
                                      "protos_per_class", "seed"};
  for (size_t i = 0; i < fl_config_node_count(m); i++) {
    const char *k = fl_config_node_key(m, i);
    bool ok = false;
    for (size_t j = 0; j < sizeof mkeys / sizeof mkeys[0]; j++) ok |= strcmp(k, mkeys[j]) == 0;
    if (!ok)
      return fail(err, FL_EINVAL, "%s:%d: unknown key model.%s", fl_config_file(cfg),
                  fl_config_node_line(fl_config_node_child(m, i)), k);
  }
  const char *kind = NULL;
  uint64_t in = 0, classes = 0, ppc = 1, s = 0;
  const uint64_t one = 1, zero = 0;
  if (fl_config_get_string(cfg, m, "kind", NULL, &kind, err) != FL_OK ||
      fl_config_get_uint64(cfg, m, "inputs", 1, 1u << 20, NULL, &in, err) != FL_OK ||
      fl_config_get_uint64(cfg, m, "classes", 2, 1u << 16, NULL, &classes, err) != FL_OK ||
      fl_config_get_uint64(cfg, m, "protos_per_class", 1, 1024, &one, &ppc, err) != FL_OK ||
      fl_config_get_uint64(cfg, m, "seed", 0, UINT64_MAX, &zero, &s, err) != FL_OK)
    return FL_EINVAL;
  fl_ml_model_spec_t spec = {.n_in = (uint32_t)in, .n_classes = (uint32_t)classes,
                             .protos_per_class = (uint32_t)ppc};
  fl_sbuf_t a = {0};
  if (strcmp(kind, "logreg") == 0) {
    spec.kind = FL_ML_LOGREG;
    fl_sbuf_printf(&a, "logreg %llu-%llu", (unsigned long long)in, (unsigned long long)classes);
  } else if (strcmp(kind, "mlp") == 0) {
    spec.kind = FL_ML_MLP;
    const fl_config_node_t *h = NULL;
    size_t nh = 0;
    if (fl_config_get_seq(cfg, m, "hidden", &h, &nh, err) != FL_OK) return FL_EINVAL;
    if (nh < 1 || nh > FL_ML_MAX_HIDDEN)
      return fail(err, FL_EINVAL, "%s: model.hidden must list 1..%d layer widths",
                  fl_config_file(cfg), FL_ML_MAX_HIDDEN);
    spec.n_hidden = (uint32_t)nh;
    fl_sbuf_printf(&a, "mlp %llu", (unsigned long long)in);
    for (size_t i = 0; i < nh; i++) {
      uint64_t w = 0;
      char p[24];
      snprintf(p, sizeof p, "%zu", i);
      if (fl_config_get_uint64(cfg, h, p, 1, 1u << 16, NULL, &w, err) != FL_OK) {
        fl_sbuf_free(&a);
        return FL_EINVAL;
      }
      spec.hidden[i] = (uint32_t)w;
      fl_sbuf_printf(&a, "-%llu", (unsigned long long)w);
    }
    fl_sbuf_printf(&a, "-%llu", (unsigned long long)classes);
  } else if (strcmp(kind, "proto") == 0) {
    spec.kind = FL_ML_PROTO;
    fl_sbuf_printf(&a, "proto %llu-%llux%llu", (unsigned long long)in,
                   (unsigned long long)classes, (unsigned long long)ppc);
  } else {
    return fail(err, FL_EINVAL, "%s: model.kind must be logreg, mlp or proto, got '%s'",
                fl_config_file(cfg), kind);
  }
  if (seed_set) s = seed;
  fl_ml_model_t *model = NULL;
  fl_status_t st = fl_ml_model_new(&spec, s, &model);
  if (st != FL_OK) {
    fl_sbuf_free(&a);
    return fail(err, FL_EINVAL, "%s: cannot make that model: %s", fl_config_file(cfg),
                fl_status_str(st));
  }
  st = fl_ml_blob_encode(fl_ml_model_cparams(model), &d->blob);
  fl_ml_model_free(model);
  if (st != FL_OK) {
    fl_sbuf_free(&a);
    return fail(err, FL_EINVAL, "cannot encode the model: %s", fl_status_str(st));
  }
  fl_sbuf_printf(&a, " seed %llu", (unsigned long long)s);
  *arch = fl_strndup((const char *)a.data, a.len);
  fl_sbuf_free(&a);
  return FL_OK;
}

fl_status_t fl_cli_task_def_load(const char *path, const char *model_file, bool seed_set,
                                 uint64_t seed, fl_cli_task_def_t *out, char **err) {
  memset(out, 0, sizeof *out);
  *err = NULL;
  fl_config_t *cfg = NULL;
  char *arch = NULL;
  fl_status_t st = fl_config_load(path, "", &cfg, err);
  if (st != FL_OK) goto fail;
  const fl_config_node_t *root = fl_config_root(cfg);
  for (size_t i = 0; i < fl_config_node_count(root); i++) {
    const char *k = fl_config_node_key(root, i);
    bool ok = false;
    for (size_t j = 0; j < N_DEF_KEYS; j++) ok |= strcmp(k, def_keys[j].key) == 0;
    for (size_t j = 0; j < sizeof other_keys / sizeof other_keys[0]; j++)
      ok |= strcmp(k, other_keys[j]) == 0;
    if (!ok) {
      st = fail(err, FL_EINVAL, "%s:%d: unknown key '%s' in the task definition", path,
                fl_config_node_line(fl_config_node_child(root, i)), k);
      goto fail;
    }
  }
  const char *task = NULL, *rule = NULL, *arch_given = NULL;
  if ((st = fl_config_get_string(cfg, NULL, "task", NULL, &task, err)) != FL_OK ||
      (st = fl_config_get_string(cfg, NULL, "rule", NULL, &rule, err)) != FL_OK ||
      (st = fl_config_get_string(cfg, NULL, "arch", "", &arch_given, err)) != FL_OK)
    goto fail;
  if (!fl_mlu_task_id_ok(task, strlen(task))) {
    st = fail(err, FL_EINVAL, "%s: task id '%s' must be 1..64 bytes of [A-Za-z0-9._-]", path,
              task);
    goto fail;
  }
  bool rule_ok = false;
  for (size_t j = 0; j < sizeof rules / sizeof rules[0]; j++)
    rule_ok |= strcmp(rule, rules[j]) == 0;
  if (!rule_ok) {
    st = fail(err, FL_EINVAL,
              "%s: rule must be one of fedavg, krum, multikrum, median, trimmed, bulyan; got '%s'",
              path, rule);
    goto fail;
  }
  bool has_round = fl_config_find(cfg, NULL, "round") != NULL;
  bool has_round_ms = fl_config_find(cfg, NULL, "round_ms") != NULL;
  if (has_round == has_round_ms) {
    st = fail(err, FL_EINVAL, "%s: give exactly one of round (a duration) and round_ms", path);
    goto fail;
  }
  if (fl_config_find(cfg, NULL, "min_updates") == NULL) {
    st = fail(err, FL_EINVAL, "%s: missing required key min_updates", path);
    goto fail;
  }

  /* The initial model. */
  if (model_file != NULL) {
    if ((st = read_file(model_file, &out->blob, err)) != FL_OK) goto fail;
    fl_ml_tensors_t t = {0};
    if (fl_ml_blob_decode(fl_sbuf_view(&out->blob), &t) != FL_OK) {
      st = fail(err, FL_EMALFORMED, "%s is not a tensor blob (ml/tensor.h)", model_file);
      goto fail;
    }
    fl_ml_tensors_free(&t);
    arch = fl_sprintf("model file %s", strrchr(model_file, '/') ? strrchr(model_file, '/') + 1
                                                                   : model_file);
  } else if ((st = gen_model(cfg, seed_set, seed, out, &arch, err)) != FL_OK) {
    goto fail;
  }
  {
    fl_ml_tensors_t t = {0};
    if (fl_ml_blob_decode(fl_sbuf_view(&out->blob), &t) != FL_OK) {
      st = fail(err, FL_EMALFORMED, "the initial model does not decode");
      goto fail;
    }
    out->n_params = t.n_values;
    fl_ml_tensors_free(&t);
  }
  uint8_t h[FL_SHA256_LEN];
  fl_sha256(out->blob.data, out->blob.len, h);
  fl_hex_encode(h, FL_SHA256_LEN, out->init_hash);

  /* The definition JSON. */
  fl_sbuf_t *b = &out->definition;
  fl_sbuf_append_str(b, "{");
  fl_mlu_jw_key(b, "arch");
  const char *a = arch_given[0] ? arch_given : arch;
  fl_mlu_jw_strn(b, a, strlen(a) > 256 ? 256 : strlen(a));
  fl_mlu_jw_key(b, "rule");
  fl_mlu_jw_str(b, rule);
  for (size_t j = 0; j < N_DEF_KEYS; j++) {
    const char *k = def_keys[j].key;
    if (strcmp(k, "round_ms") == 0 && has_round) {
      uint64_t ms = 0;
      if ((st = fl_config_get_duration_ms(cfg, NULL, "round", NULL, &ms, err)) != FL_OK)
        goto fail;
      fl_mlu_jw_key(b, k);
      fl_mlu_jw_u64(b, ms);
      continue;
    }
    if (fl_config_find(cfg, NULL, k) == NULL) continue;
    fl_mlu_jw_key(b, k);
    if (def_keys[j].kind == K_U64) {
      uint64_t v = 0;
      if ((st = fl_config_get_uint64(cfg, NULL, k, 0, UINT64_MAX, NULL, &v, err)) != FL_OK)
        goto fail;
      fl_mlu_jw_u64(b, v);
    } else {
      double v = 0;
      if ((st = fl_config_get_double(cfg, NULL, k, NULL, &v, err)) != FL_OK) goto fail;
      fl_mlu_jw_num(b, v);
    }
  }
  fl_mlu_jw_key(b, "init_hash");
  fl_mlu_jw_str(b, out->init_hash);
  fl_sbuf_append_str(b, "}");
  out->task = fl_strdup(task);
  fl_free(arch);
  fl_config_free(cfg);
  return FL_OK;
fail:
  if (*err == NULL) *err = fl_strdup(fl_status_str(st));
  fl_free(arch);
  fl_config_free(cfg);
  fl_cli_task_def_free(out);
  return st == FL_OK ? FL_EINVAL : st;
}

void fl_cli_task_def_free(fl_cli_task_def_t *def) {
  if (def == NULL) return;
  fl_free(def->task);
  fl_sbuf_free(&def->definition);
  fl_sbuf_free(&def->blob);
  memset(def, 0, sizeof *def);
}
