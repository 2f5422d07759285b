/* SPDX-License-Identifier: Apache-2.0
 *
 * cmd_task.c: `fedledger task create` and `fedledger task show`.
 *
 * `task create` reads a YAML task definition, makes the initial model (from
 * the declared architecture and a seed with ml/model.h, or from --model
 * FILE, a tensor blob), and submits mlupdate CreateTask <task> <definition
 * JSON> with the model as blob 0 (docs/mlupdate.md, section 3). The YAML
 * keys are the definition's keys (unknown keys are refused so that typos do
 * not silently take defaults) plus `task`, `model` and `round` (a duration,
 * instead of round_ms). --dry-run prints what would be submitted and needs
 * no network.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/json.h"
#include "chaincode/mlupdate/mlupdate.h"
#include "cli/cli.h"
#include "cli/net.h"
#include "cli/out.h"
#include "cli/task_def.h"
#include "common/base/alloc.h"

static int run_create(const char *path, int argc, char **argv);
static int run_show(const char *path, int argc, char **argv);

static const fl_cli_cmd_t create_cmd = {
    .name = "create",
    .summary = "Create an FL task from a YAML definition (mlupdate CreateTask)",
    .help = "Reads a task definition (see docs/provenance.md for the format), makes the\n"
            "initial model from `model:` (kind logreg|mlp|proto, inputs, classes, hidden,\n"
            "protos_per_class, seed) or takes it from --model FILE (a tensor blob), and\n"
            "submits CreateTask with an admin identity. --dry-run only prints the\n"
            "definition and the initial model's hash.",
    .run = run_create,
};

static const fl_cli_cmd_t show_cmd = {
    .name = "show",
    .summary = "Show a task's definition and its current round",
    .run = run_show,
};

static const fl_cli_cmd_t *const task_subs[] = {&create_cmd, &show_cmd, NULL};

const fl_cli_cmd_t fl_cli_cmd_task = {
    .name = "task",
    .summary = "Create and inspect federated-learning tasks",
    .subs = task_subs,
};

static int extra_args(const char *path, int nargs, char **argv) {
  if (nargs > 0) {
    fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", path, argv[1]);
    return FL_CLI_USAGE;
  }
  return FL_CLI_OK;
}

static int run_create(const char *path, int argc, char **argv) {
  const char *file = NULL, *model = NULL;
  uint64_t seed = UINT64_MAX; /* UINT64_MAX: not given */
  bool dry = false;
  const fl_cli_flag_t own[] = {
      {"file", 'f', FL_CLI_FLAG_STRING, "FILE", "task definition (YAML)", &file, true},
      {"model", 0, FL_CLI_FLAG_STRING, "FILE", "initial model blob instead of generating one",
       &model, false},
      {"seed", 0, FL_CLI_FLAG_UINT, "N", "seed for the generated model (overrides model.seed)",
       &seed, false},
      {"dry-run", 0, FL_CLI_FLAG_BOOL, NULL, "print what would be submitted; no network", &dry,
       false},
  };
  fl_cli_net_t n = {0};
  int nargs = 0;
  int rc = fl_cli_net_parse(&n, &create_cmd, path, own, 4, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK || (rc = extra_args(path, nargs, argv)) != FL_CLI_OK) goto done;
  fl_cli_task_def_t def = {0};
  char *err = NULL;
  fl_status_t st =
      fl_cli_task_def_load(file, model, seed != UINT64_MAX, seed, &def, &err);
  if (st != FL_OK) {
    fprintf(stderr, "%s: %s\n", path, err ? err : fl_status_str(st));
    fl_free(err);
    rc = st == FL_EINVAL || st == FL_ECONFIG || st == FL_EMALFORMED ? FL_CLI_USAGE : FL_CLI_FAIL;
    if (st == FL_NOTFOUND || st == FL_EIO) rc = FL_CLI_FAIL;
    goto done;
  }
  char txid[FL_TXID_HEX_LEN + 1] = "";
  uint64_t block = 0;
  if (!dry) {
    if ((rc = fl_cli_net_connect(&n)) != FL_CLI_OK) goto done_def;
    fl_buf_t args[3] = {FL_BUF_STR("CreateTask"), FL_BUF_STR(def.task),
                        fl_sbuf_view(&def.definition)};
    fl_buf_t blob = fl_sbuf_view(&def.blob);
    rc = fl_cli_submit(&n, args, 3, &blob, 1, txid, &block, NULL);
    if (rc != FL_CLI_OK) goto done_def;
  }
  if (n.json) {
    fl_sbuf_t b = {0};
    fl_sbuf_append_str(&b, "{");
    fl_mlu_jw_key(&b, "task");
    fl_mlu_jw_str(&b, def.task);
    fl_mlu_jw_key(&b, "init_hash");
    fl_mlu_jw_str(&b, def.init_hash);
    fl_mlu_jw_key(&b, "n_params");
    fl_mlu_jw_u64(&b, def.n_params);
    fl_mlu_jw_key(&b, "blob_bytes");
    fl_mlu_jw_u64(&b, def.blob.len);
    fl_mlu_jw_key(&b, "definition");
    fl_sbuf_append(&b, def.definition.data, def.definition.len);
    fl_mlu_jw_key(&b, "tx_id");
    fl_mlu_jw_str(&b, dry ? NULL : txid);
    fl_mlu_jw_key(&b, "block");
    if (dry)
      fl_sbuf_append_str(&b, "null");
    else
      fl_mlu_jw_u64(&b, block);
    fl_sbuf_append_str(&b, "}");
    fl_cli_json_print(stdout, &b);
    fl_sbuf_free(&b);
  } else {
    printf("%s %s\n", dry ? "would create task" : "created task", def.task);
    fl_cli_kv(stdout, "initial model", "%s", def.init_hash);
    fl_cli_kv(stdout, "parameters", "%zu (%zu bytes)", def.n_params, def.blob.len);
    fl_cli_kv(stdout, "definition", "%.*s", (int)def.definition.len,
              (const char *)def.definition.data);
    if (!dry) {
      fl_cli_kv(stdout, "tx", "%s", txid);
      fl_cli_kv(stdout, "block", "%llu", (unsigned long long)block);
    }
  }
done_def:
  fl_cli_task_def_free(&def);
done:
  fl_cli_net_close(&n);
  return rc;
}

/* Prints the human form of a task record and its current round. */
static void print_task(const fl_mlu_json_t *t, uint64_t closed, const fl_mlu_json_t *cur) {
  static const char *const keys[] = {
      "task",     "arch",        "n_params",    "rule",         "f",          "m",
      "clip_norm", "max_norm_z", "min_cosine",  "max_norm",     "norm_window", "min_updates",
      "max_updates", "round_ms", "reject_limit", "reject_min", "collusion", "median_cosine",
      "init_hash",  "created_by", "created_tx"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    fl_cli_kv(stdout, keys[i], "%s", fl_cli_jtext(t, keys[i]));
  char tb[32];
  fl_cli_kv(stdout, "created", "%s", fl_cli_time(fl_cli_ju64(t, "created_ts"), tb));
  const fl_mlu_json_t *ts = fl_mlu_json_get(t, "tensors");
  for (size_t i = 0; ts && ts->kind == FL_MLU_JARR && i < ts->n; i++) {
    char shape[128] = "";
    const fl_mlu_json_t *sh = fl_mlu_json_get(&ts->items[i], "shape");
    for (size_t k = 0; sh && sh->kind == FL_MLU_JARR && k < sh->n; k++) {
      size_t l = strlen(shape);
      snprintf(shape + l, sizeof shape - l, "%s%s", k ? "x" : "",
               sh->items[k].str ? sh->items[k].str : "?");
    }
    fl_cli_kv(stdout, i == 0 ? "tensors" : "", "%s [%s]",
              fl_cli_jtext(&ts->items[i], "name"), shape);
  }
  fl_cli_kv(stdout, "rounds closed", "%llu", (unsigned long long)closed);
  if (cur != NULL) {
    fl_cli_kv(stdout, "current round", "%s (%s), start model %s", fl_cli_jtext(cur, "round"),
              fl_cli_jtext(cur, "status"), fl_cli_jtext(cur, "start_model"));
    fl_cli_kv(stdout, "deadline", "%s", fl_cli_time(fl_cli_ju64(cur, "deadline_ts"), tb));
  }
}

static int run_show(const char *path, int argc, char **argv) {
  const char *task = NULL;
  const fl_cli_flag_t own[] = {
      {"task", 't', FL_CLI_FLAG_STRING, "T", "task id", &task, true},
  };
  fl_cli_net_t n = {0};
  fl_mlu_json_t *rec = NULL, *hist = NULL, *cur = NULL;
  int nargs = 0;
  int rc = fl_cli_net_parse(&n, &show_cmd, path, own, 1, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK || (rc = extra_args(path, nargs, argv)) != FL_CLI_OK) goto done;
  if ((rc = fl_cli_net_connect(&n)) != FL_CLI_OK) goto done;
  char nf[128];
  snprintf(nf, sizeof nf, "unknown task '%s'", task);
  const char *a1[] = {"GetTask", task};
  if ((rc = fl_cli_query(&n, a1, 2, nf, &rec)) != FL_CLI_OK) goto done;
  const char *a2[] = {"GetModelHistory", task};
  if ((rc = fl_cli_query(&n, a2, 2, nf, &hist)) != FL_CLI_OK) goto done;
  const fl_mlu_json_t *models = fl_mlu_json_get(hist, "models");
  uint64_t closed = models && models->kind == FL_MLU_JARR ? models->n : 0;
  char rs[24];
  snprintf(rs, sizeof rs, "%llu", (unsigned long long)closed);
  const char *a3[] = {"GetRound", task, rs};
  rc = fl_cli_query_opt(&n, a3, 3, &cur);
  if (rc != FL_CLI_OK && rc != FL_CLI_NOTFOUND) goto done;
  rc = FL_CLI_OK;
  if (n.json) {
    fl_sbuf_t b = {0};
    fl_sbuf_append_str(&b, "{");
    fl_mlu_jw_key(&b, "task");
    fl_cli_jw_value(&b, rec);
    fl_mlu_jw_key(&b, "rounds_closed");
    fl_mlu_jw_u64(&b, closed);
    fl_mlu_jw_key(&b, "current_round");
    fl_cli_jw_value(&b, cur);
    fl_sbuf_append_str(&b, "}");
    fl_cli_json_print(stdout, &b);
    fl_sbuf_free(&b);
  } else {
    print_task(rec, closed, cur);
  }
done:
  fl_mlu_json_free(rec);
  fl_mlu_json_free(hist);
  fl_mlu_json_free(cur);
  fl_cli_net_close(&n);
  return rc;
}
