/* SPDX-License-Identifier: Apache-2.0
 *
 * cmd_model.c: the model provenance commands:
 *   model history --task T          every global model of a task
 *   model show --task T --round R   every update of a round and its part in
 *                                   the aggregate
 *   model lineage --task T HASH     a model back to the initial model
 *   model get --task T --round R -o FILE
 *                                   downloads a global model and checks it
 *                                   against the ledger's hash
 * All read mlupdate's records (docs/mlupdate.md, section 2) through
 * Gateway/Evaluate; blocks come from Peer/GetTransaction, weights from
 * Peer/GetBlob.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chaincode/mlupdate/json.h"
#include "chaincode/mlupdate/mlupdate.h"
#include "cli/cli.h"
#include "cli/net.h"
#include "cli/out.h"
#include "common/base/alloc.h"
#include "common/crypto/hash.h"

static int run_history(const char *path, int argc, char **argv);
static int run_show(const char *path, int argc, char **argv);
static int run_lineage(const char *path, int argc, char **argv);
static int run_get(const char *path, int argc, char **argv);

static const fl_cli_cmd_t history_cmd = {
    .name = "history",
    .summary = "Global model history of a task: one line per closed round",
    .help = "Per round: the global model hash, its parent, accepted/rejected update\n"
            "counts, the aggregation rule, the block and tx that closed the round, time.",
    .run = run_history,
};
static const fl_cli_cmd_t show_cmd = {
    .name = "show",
    .summary = "Every update of one round: status, reason, scores, weight in the aggregate",
    .run = run_show,
};
static const fl_cli_cmd_t lineage_cmd = {
    .name = "lineage",
    .summary = "A global model's lineage back to the initial model",
    .help = "HASH is a global model hash (or a unique prefix of at least 8 hex digits,\n"
            "as tables show them). Each step's parent is checked against the round before.",
    .run = run_lineage,
};
static const fl_cli_cmd_t get_cmd = {
    .name = "get",
    .summary = "Download a round's global model and check it against the ledger",
    .help = "Writes the tensor blob of the global model after round R to FILE, after\n"
            "checking that its SHA-256 is the hash recorded in model/<task>/<R>. A\n"
            "mismatch is refused (exit 6) and nothing is written.",
    .run = run_get,
};

static const fl_cli_cmd_t *const model_subs[] = {&history_cmd, &show_cmd, &lineage_cmd,
                                                 &get_cmd, NULL};

const fl_cli_cmd_t fl_cli_cmd_model = {
    .name = "model",
    .summary = "Global model provenance: history, rounds, lineage, download",
    .subs = model_subs,
};

/* ---- shared ---------------------------------------------------------------------- */

static int check_task(const char *path, const char *task) {
  if (!fl_mlu_task_id_ok(task, strlen(task))) {
    fprintf(stderr, "%s: invalid task id '%s' (1..64 bytes of [A-Za-z0-9._-])\n", path, task);
    return FL_CLI_USAGE;
  }
  return FL_CLI_OK;
}

static int no_args(const char *path, int nargs, char **argv) {
  if (nargs > 0) {
    fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", path, argv[1]);
    return FL_CLI_USAGE;
  }
  return FL_CLI_OK;
}

/* Block number of a committed tx, or -1 when unknown. */
static int64_t tx_block(fl_cli_net_t *n, const char *tx_id) {
  if (tx_id == NULL || strlen(tx_id) != FL_TXID_HEX_LEN) return -1;
  fl_client_tx_info_t *info = NULL;
  if (fl_client_sync_get_tx(n->gw, tx_id, &info, NULL) != FL_OK) return -1;
  int64_t b = (int64_t)info->block_num;
  fl_client_tx_info_free(info);
  return b;
}

static void jw_block(fl_sbuf_t *b, int64_t blk) {
  fl_mlu_jw_key(b, "block");
  if (blk < 0)
    fl_sbuf_append_str(b, "null");
  else
    fl_mlu_jw_u64(b, (uint64_t)blk);
}

/* Fetches the task's model history (404 -> "unknown task"). */
static int get_history(fl_cli_net_t *n, const char *task, fl_mlu_json_t **hist) {
  char nf[128];
  snprintf(nf, sizeof nf, "unknown task '%s'", task);
  const char *a[] = {"GetModelHistory", task};
  int rc = fl_cli_query(n, a, 2, nf, hist);
  if (rc != FL_CLI_OK) return rc;
  const fl_mlu_json_t *m = fl_mlu_json_get(*hist, "models");
  if (m == NULL || m->kind != FL_MLU_JARR) {
    fprintf(stderr, "%s: GetModelHistory: unexpected answer\n", n->path);
    return FL_CLI_FAIL;
  }
  return FL_CLI_OK;
}

/* ---- history ------------------------------------------------------------------------ */

static int run_history(const char *path, int argc, char **argv) {
  const char *task = NULL;
  const fl_cli_flag_t own[] = {{"task", 't', FL_CLI_FLAG_STRING, "T", "task id", &task, true}};
  fl_cli_net_t n = {0};
  fl_mlu_json_t *hist = NULL;
  fl_cli_table_t *tab = NULL;
  fl_sbuf_t b = {0};
  int nargs = 0;
  int rc = fl_cli_net_parse(&n, &history_cmd, path, own, 1, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK || (rc = no_args(path, nargs, argv)) != FL_CLI_OK ||
      (rc = check_task(path, task)) != FL_CLI_OK || (rc = fl_cli_net_connect(&n)) != FL_CLI_OK ||
      (rc = get_history(&n, task, &hist)) != FL_CLI_OK)
    goto done;
  const fl_mlu_json_t *models = fl_mlu_json_get(hist, "models");
  static const char *const hdr[] = {"ROUND",    "MODEL", "PARENT", "ACCEPTED", "REJECTED",
                                    "AGGREGATED", "RULE", "BLOCK", "TX",      "CLOSED"};
  tab = fl_cli_table_new(10, hdr);
  fl_sbuf_append_str(&b, "{");
  fl_mlu_jw_key(&b, "task");
  fl_mlu_jw_str(&b, task);
  fl_cli_jw_copy(&b, "init_hash", hist, "init_hash");
  fl_mlu_jw_key(&b, "rounds");
  fl_sbuf_append_str(&b, "[");
  for (size_t i = 0; i < models->n; i++) {
    const fl_mlu_json_t *m = &models->items[i];
    char rs[24];
    snprintf(rs, sizeof rs, "%s", fl_cli_jtext(m, "round"));
    const char *a[] = {"GetRound", task, rs};
    fl_mlu_json_t *round = NULL;
    int q = fl_cli_query_opt(&n, a, 3, &round);
    if (q != FL_CLI_OK && q != FL_CLI_NOTFOUND) {
      rc = q;
      goto done;
    }
    const char *txid = fl_mlu_json_str(fl_mlu_json_get(m, "tx_id"));
    int64_t blk = tx_block(&n, txid);
    if (i) fl_sbuf_append_str(&b, ",");
    fl_sbuf_append_str(&b, "{");
    fl_cli_jw_copy(&b, "round", m, "round");
    fl_cli_jw_copy(&b, "hash", m, "hash");
    fl_cli_jw_copy(&b, "parent", m, "parent");
    fl_cli_jw_copy(&b, "accepted", round, "accepted");
    fl_cli_jw_copy(&b, "rejected", round, "rejected");
    fl_cli_jw_copy(&b, "aggregated", round, "aggregated");
    fl_cli_jw_copy(&b, "rule", m, "rule");
    fl_cli_jw_copy(&b, "f", m, "f");
    jw_block(&b, blk);
    fl_cli_jw_copy(&b, "tx_id", m, "tx_id");
    fl_cli_jw_copy(&b, "closed_ts", m, "closed_ts");
    fl_sbuf_append_str(&b, "}");
    char h1[17], h2[17], h3[17], tb[32];
    fl_cli_table_row(tab);
    fl_cli_table_cell(tab, "%s", rs);
    fl_cli_table_cell(tab, "%s", fl_cli_short_hash(fl_cli_jtext(m, "hash"), h1));
    fl_cli_table_cell(tab, "%s", fl_cli_short_hash(fl_cli_jtext(m, "parent"), h2));
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(round, "accepted"));
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(round, "rejected"));
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(round, "aggregated"));
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(m, "rule"));
    if (blk < 0)
      fl_cli_table_cell(tab, "-");
    else
      fl_cli_table_cell(tab, "%lld", (long long)blk);
    fl_cli_table_cell(tab, "%s", fl_cli_short_hash(txid, h3));
    fl_cli_table_cell(tab, "%s", fl_cli_time(fl_cli_ju64(m, "closed_ts"), tb));
    fl_mlu_json_free(round);
  }
  fl_sbuf_append_str(&b, "]}");
  if (n.json) {
    fl_cli_json_print(stdout, &b);
  } else {
    char h[17];
    printf("task %s, initial model %s, %zu closed rounds\n", task,
           fl_cli_short_hash(fl_cli_jtext(hist, "init_hash"), h), models->n);
    if (models->n > 0) fl_cli_table_print(tab, stdout);
  }
done:
  fl_sbuf_free(&b);
  fl_cli_table_free(tab);
  fl_mlu_json_free(hist);
  fl_cli_net_close(&n);
  return rc;
}

/* ---- show --------------------------------------------------------------------------- */

/* The entry of model->updates for (client, hash), or NULL. */
static const fl_mlu_json_t *agg_entry(const fl_mlu_json_t *model, const char *client,
                                      const char *hash) {
  const fl_mlu_json_t *u = fl_mlu_json_get(model, "updates");
  for (size_t i = 0; u && u->kind == FL_MLU_JARR && i < u->n; i++) {
    const char *c = fl_mlu_json_str(fl_mlu_json_get(&u->items[i], "client"));
    const char *h = fl_mlu_json_str(fl_mlu_json_get(&u->items[i], "hash"));
    if (c && h && client && hash && strcmp(c, client) == 0 && strcmp(h, hash) == 0)
      return &u->items[i];
  }
  return NULL;
}

/* 404 on a round: tells an unknown task from an unknown round. */
static int round_not_found(fl_cli_net_t *n, const char *task, uint64_t r) {
  const char *a[] = {"GetTask", task};
  fl_mlu_json_t *t = NULL;
  char nf[128];
  snprintf(nf, sizeof nf, "unknown task '%s'", task);
  int rc = fl_cli_query(n, a, 2, nf, &t);
  fl_mlu_json_free(t);
  if (rc != FL_CLI_OK) return rc;
  fprintf(stderr, "%s: unknown round %llu of task '%s'\n", n->path, (unsigned long long)r, task);
  return FL_CLI_NOTFOUND;
}

static int run_show(const char *path, int argc, char **argv) {
  const char *task = NULL, *round_s = NULL;
  const fl_cli_flag_t own[] = {
      {"task", 't', FL_CLI_FLAG_STRING, "T", "task id", &task, true},
      {"round", 'r', FL_CLI_FLAG_STRING, "R", "round number", &round_s, true},
  };
  fl_cli_net_t n = {0};
  fl_mlu_json_t *round = NULL, *model = NULL, *ups = NULL;
  fl_cli_table_t *tab = NULL;
  fl_sbuf_t b = {0};
  int nargs = 0;
  uint64_t r = 0;
  int rc = fl_cli_net_parse(&n, &show_cmd, path, own, 2, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK || (rc = no_args(path, nargs, argv)) != FL_CLI_OK ||
      (rc = check_task(path, task)) != FL_CLI_OK)
    goto done;
  if (fl_cli_parse_u64(round_s, &r) != 0) {
    fprintf(stderr, "%s: --round must be a round number, got '%s'\n", path, round_s);
    rc = FL_CLI_USAGE;
    goto done;
  }
  if ((rc = fl_cli_net_connect(&n)) != FL_CLI_OK) goto done;
  char rs[24];
  snprintf(rs, sizeof rs, "%llu", (unsigned long long)r);
  const char *a1[] = {"GetRound", task, rs};
  rc = fl_cli_query_opt(&n, a1, 3, &round);
  if (rc == FL_CLI_NOTFOUND) rc = round_not_found(&n, task, r);
  if (rc != FL_CLI_OK) goto done;
  const char *a2[] = {"GetModel", task, rs};
  rc = fl_cli_query_opt(&n, a2, 3, &model);
  if (rc != FL_CLI_OK && rc != FL_CLI_NOTFOUND) goto done;
  const char *a3[] = {"ListUpdates", task, rs};
  if ((rc = fl_cli_query(&n, a3, 3, NULL, &ups)) != FL_CLI_OK) goto done;
  if (ups->kind != FL_MLU_JARR) {
    fprintf(stderr, "%s: ListUpdates: unexpected answer\n", path);
    rc = FL_CLI_FAIL;
    goto done;
  }
  static const char *const hdr[] = {"CLIENT", "STATUS", "REASON", "HASH",     "SAMPLES",
                                    "DATA",   "NORM",   "NORM_Z", "COSINE",   "SELECTED",
                                    "WEIGHT", "DETAIL"};
  tab = fl_cli_table_new(12, hdr);
  fl_sbuf_append_str(&b, "{");
  fl_mlu_jw_key(&b, "task");
  fl_mlu_jw_str(&b, task);
  fl_mlu_jw_key(&b, "round");
  fl_mlu_jw_u64(&b, r);
  fl_cli_jw_copy(&b, "status", round, "status");
  fl_cli_jw_copy(&b, "start_model", round, "start_model");
  fl_cli_jw_copy(&b, "model", model, "hash");
  fl_cli_jw_copy(&b, "rule", model, "rule");
  fl_cli_jw_copy(&b, "f", model, "f");
  fl_cli_jw_copy(&b, "tx_id", model, "tx_id");
  fl_cli_jw_copy(&b, "submitted", round, "submitted");
  fl_cli_jw_copy(&b, "accepted", round, "accepted");
  fl_cli_jw_copy(&b, "rejected", round, "rejected");
  fl_cli_jw_copy(&b, "aggregated", round, "aggregated");
  fl_mlu_jw_key(&b, "updates");
  fl_sbuf_append_str(&b, "[");
  for (size_t i = 0; i < ups->n; i++) {
    const fl_mlu_json_t *u = &ups->items[i];
    const char *client = fl_mlu_json_str(fl_mlu_json_get(u, "client"));
    const char *hash = fl_mlu_json_str(fl_mlu_json_get(u, "hash"));
    const char *status = fl_mlu_json_str(fl_mlu_json_get(u, "status"));
    const fl_mlu_json_t *ag =
        model && status && strcmp(status, "ACCEPTED") == 0 ? agg_entry(model, client, hash)
                                                           : NULL;
    if (i) fl_sbuf_append_str(&b, ",");
    fl_sbuf_append_str(&b, "{");
    static const char *const keys[] = {"client", "tx_id",  "hash",   "samples",
                                       "data_hash", "norm", "norm_z", "cosine",
                                       "status", "reason", "reason_code", "detail"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
      fl_cli_jw_copy(&b, keys[k], u, keys[k]);
    fl_cli_jw_bool(&b, "in_aggregate", ag != NULL);
    fl_cli_jw_copy(&b, "selected", ag, "selected");
    fl_cli_jw_copy(&b, "weight", ag, "weight");
    fl_sbuf_append_str(&b, "}");
    char h1[17], h2[17];
    fl_cli_table_row(tab);
    fl_cli_table_cell(tab, "%s", client ? client : "?");
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(u, "status"));
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(u, "reason"));
    fl_cli_table_cell(tab, "%s", fl_cli_short_hash(hash, h1));
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(u, "samples"));
    fl_cli_table_cell(tab, "%s", fl_cli_short_hash(fl_cli_jtext(u, "data_hash"), h2));
    double v;
    if (fl_mlu_json_num(fl_mlu_json_get(u, "norm"), &v))
      fl_cli_table_cell(tab, "%.4g", v);
    else
      fl_cli_table_cell(tab, "-");
    if (fl_mlu_json_num(fl_mlu_json_get(u, "norm_z"), &v))
      fl_cli_table_cell(tab, "%.3g", v);
    else
      fl_cli_table_cell(tab, "-");
    if (fl_mlu_json_num(fl_mlu_json_get(u, "cosine"), &v))
      fl_cli_table_cell(tab, "%.3f", v);
    else
      fl_cli_table_cell(tab, "-");
    fl_cli_table_cell(tab, "%s", ag ? fl_cli_jtext(ag, "selected") : "-");
    if (ag && fl_mlu_json_num(fl_mlu_json_get(ag, "weight"), &v))
      fl_cli_table_cell(tab, "%.4f", v);
    else
      fl_cli_table_cell(tab, "-");
    const char *d = fl_cli_jtext(u, "detail");
    fl_cli_table_cell(tab, "%.60s", d);
  }
  fl_sbuf_append_str(&b, "]}");
  if (n.json) {
    fl_cli_json_print(stdout, &b);
  } else {
    fl_cli_kv(stdout, "task", "%s", task);
    fl_cli_kv(stdout, "round", "%llu (%s)", (unsigned long long)r, fl_cli_jtext(round, "status"));
    fl_cli_kv(stdout, "start model", "%s", fl_cli_jtext(round, "start_model"));
    fl_cli_kv(stdout, "global model", "%s", model ? fl_cli_jtext(model, "hash") : "- (open)");
    if (model) {
      fl_cli_kv(stdout, "rule", "%s (f=%s)", fl_cli_jtext(model, "rule"),
                fl_cli_jtext(model, "f"));
      fl_cli_kv(stdout, "closed by tx", "%s", fl_cli_jtext(model, "tx_id"));
      fl_cli_kv(stdout, "counts", "submitted %s, accepted %s, rejected %s, aggregated %s",
                fl_cli_jtext(round, "submitted"), fl_cli_jtext(round, "accepted"),
                fl_cli_jtext(round, "rejected"), fl_cli_jtext(round, "aggregated"));
    }
    printf("\n");
    if (ups->n == 0)
      printf("no updates\n");
    else
      fl_cli_table_print(tab, stdout);
  }
done:
  fl_sbuf_free(&b);
  fl_cli_table_free(tab);
  fl_mlu_json_free(round);
  fl_mlu_json_free(model);
  fl_mlu_json_free(ups);
  fl_cli_net_close(&n);
  return rc;
}

/* ---- lineage ------------------------------------------------------------------------ */

static bool is_hex(const char *s) {
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
      return false;
  return true;
}

static bool prefix_eq(const char *full, const char *prefix) {
  if (full == NULL) return false;
  size_t n = strlen(prefix);
  if (strlen(full) < n) return false;
  for (size_t i = 0; i < n; i++) {
    char a = full[i], c = prefix[i];
    if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
    if (a != c) return false;
  }
  return true;
}

static int run_lineage(const char *path, int argc, char **argv) {
  const char *task = NULL;
  const fl_cli_flag_t own[] = {{"task", 't', FL_CLI_FLAG_STRING, "T", "task id", &task, true}};
  fl_cli_net_t n = {0};
  fl_mlu_json_t *hist = NULL;
  fl_cli_table_t *tab = NULL;
  fl_sbuf_t b = {0};
  int nargs = 0;
  int rc = fl_cli_net_parse(&n, &lineage_cmd, path, own, 1, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK || (rc = check_task(path, task)) != FL_CLI_OK) goto done;
  if (nargs != 1) {
    fprintf(stderr, "%s: expected one argument: the model hash (see --help)\n", path);
    rc = FL_CLI_USAGE;
    goto done;
  }
  const char *want = argv[1];
  if (strlen(want) < 8 || strlen(want) > 64 || !is_hex(want)) {
    fprintf(stderr, "%s: '%s' is not a model hash (8..64 hex digits)\n", path, want);
    rc = FL_CLI_USAGE;
    goto done;
  }
  if ((rc = fl_cli_net_connect(&n)) != FL_CLI_OK ||
      (rc = get_history(&n, task, &hist)) != FL_CLI_OK)
    goto done;
  const fl_mlu_json_t *models = fl_mlu_json_get(hist, "models");
  const char *init = fl_mlu_json_str(fl_mlu_json_get(hist, "init_hash"));
  /* Which model: the earliest round that produced it (a round with nothing
   * aggregated keeps its parent's hash). */
  const char *full = NULL;
  bool ambiguous = false;
  size_t start = models->n; /* models->n: the initial model itself */
  if (prefix_eq(init, want)) full = init;
  for (size_t i = 0; i < models->n; i++) {
    const char *h = fl_mlu_json_str(fl_mlu_json_get(&models->items[i], "hash"));
    if (!prefix_eq(h, want)) continue;
    if (full != NULL && strcmp(full, h) != 0) ambiguous = true;
    if (full == NULL) {
      full = h;
      start = i;
    }
  }
  if (ambiguous) {
    fprintf(stderr, "%s: prefix '%s' matches several models of task '%s': give more digits\n",
            path, want, task);
    rc = FL_CLI_USAGE;
    goto done;
  }
  if (full == NULL) {
    fprintf(stderr, "%s: unknown model %s in task '%s'\n", path, want, task);
    rc = FL_CLI_NOTFOUND;
    goto done;
  }
  if (init != NULL && strcmp(full, init) == 0) start = models->n;
  static const char *const hdr[] = {"ROUND", "MODEL", "PARENT", "AGGREGATED", "TX",
                                    "CLOSED", "CONTRIBUTORS"};
  tab = fl_cli_table_new(7, hdr);
  bool ok = true;
  fl_sbuf_append_str(&b, "{");
  fl_mlu_jw_key(&b, "task");
  fl_mlu_jw_str(&b, task);
  fl_mlu_jw_key(&b, "hash");
  fl_mlu_jw_str(&b, full);
  fl_mlu_jw_key(&b, "init_hash");
  fl_mlu_jw_str(&b, init);
  fl_mlu_jw_key(&b, "lineage");
  fl_sbuf_append_str(&b, "[");
  for (size_t k = start + 1; start < models->n && k-- > 0;) {
    const fl_mlu_json_t *m = &models->items[k];
    const char *parent = fl_mlu_json_str(fl_mlu_json_get(m, "parent"));
    const char *expect =
        k == 0 ? init : fl_mlu_json_str(fl_mlu_json_get(&models->items[k - 1], "hash"));
    bool link = parent && expect && strcmp(parent, expect) == 0;
    ok &= link;
    if (k != start) fl_sbuf_append_str(&b, ",");
    fl_sbuf_append_str(&b, "{");
    fl_cli_jw_copy(&b, "round", m, "round");
    fl_cli_jw_copy(&b, "hash", m, "hash");
    fl_cli_jw_copy(&b, "parent", m, "parent");
    fl_cli_jw_copy(&b, "tx_id", m, "tx_id");
    fl_cli_jw_copy(&b, "closed_ts", m, "closed_ts");
    fl_cli_jw_bool(&b, "parent_ok", link);
    fl_mlu_jw_key(&b, "contributors");
    fl_sbuf_append_str(&b, "[");
    fl_sbuf_t who = {0};
    size_t nsel = 0;
    const fl_mlu_json_t *u = fl_mlu_json_get(m, "updates");
    for (size_t i = 0; u && u->kind == FL_MLU_JARR && i < u->n; i++) {
      const fl_mlu_json_t *e = fl_mlu_json_get(&u->items[i], "selected");
      if (e == NULL || e->kind != FL_MLU_JBOOL || !e->b) continue;
      const char *c = fl_mlu_json_str(fl_mlu_json_get(&u->items[i], "client"));
      if (nsel++) {
        fl_sbuf_append_str(&b, ",");
        fl_sbuf_append_str(&who, ",");
      }
      fl_sbuf_append_str(&b, "{");
      fl_cli_jw_copy(&b, "client", &u->items[i], "client");
      fl_cli_jw_copy(&b, "hash", &u->items[i], "hash");
      fl_cli_jw_copy(&b, "weight", &u->items[i], "weight");
      fl_sbuf_append_str(&b, "}");
      fl_sbuf_append_str(&who, c ? c : "?");
    }
    fl_sbuf_append_str(&b, "]}");
    char h1[17], h2[17], h3[17], tb[32];
    fl_cli_table_row(tab);
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(m, "round"));
    fl_cli_table_cell(tab, "%s", fl_cli_short_hash(fl_cli_jtext(m, "hash"), h1));
    fl_cli_table_cell(tab, "%s%s", fl_cli_short_hash(parent, h2), link ? "" : " (BROKEN)");
    fl_cli_table_cell(tab, "%zu", nsel);
    fl_cli_table_cell(tab, "%s", fl_cli_short_hash(fl_cli_jtext(m, "tx_id"), h3));
    fl_cli_table_cell(tab, "%s", fl_cli_time(fl_cli_ju64(m, "closed_ts"), tb));
    fl_cli_table_cell(tab, "%.*s", (int)(who.len > 200 ? 200 : who.len),
                      who.data ? (const char *)who.data : "");
    fl_sbuf_free(&who);
  }
  fl_sbuf_append_str(&b, "]");
  fl_cli_jw_bool(&b, "verified", ok);
  fl_sbuf_append_str(&b, "}");
  if (n.json) {
    fl_cli_json_print(stdout, &b);
  } else {
    char h[17];
    printf("model %s of task %s\n", full, task);
    if (fl_cli_table_rows(tab) > 0) fl_cli_table_print(tab, stdout);
    printf("initial model %s (%s)\n", fl_cli_short_hash(init, h),
           ok ? "every parent matches the round before" : "LINEAGE BROKEN");
  }
  if (!ok) {
    fprintf(stderr, "%s: a parent hash does not match the model of the round before\n", path);
    rc = FL_CLI_VERIFY;
  }
done:
  fl_sbuf_free(&b);
  fl_cli_table_free(tab);
  fl_mlu_json_free(hist);
  fl_cli_net_close(&n);
  return rc;
}

/* ---- get ------------------------------------------------------------------------------ */

/* Writes data to path atomically (temporary file + rename). */
static int write_file(const char *path, fl_buf_t data) {
  char *tmp = fl_sprintf("%s.tmp%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  int rc = -1;
  if (f != NULL) {
    bool ok = fwrite(data.data, 1, data.len, f) == data.len;
    ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (ok && rename(tmp, path) == 0) rc = 0;
    if (rc != 0) unlink(tmp);
  }
  fl_free(tmp);
  return rc;
}

static int run_get(const char *path, int argc, char **argv) {
  const char *task = NULL, *round_s = NULL, *out = NULL;
  const fl_cli_flag_t own[] = {
      {"task", 't', FL_CLI_FLAG_STRING, "T", "task id", &task, true},
      {"round", 'r', FL_CLI_FLAG_STRING, "R", "round whose resulting global model to get",
       &round_s, true},
      {"output", 'o', FL_CLI_FLAG_STRING, "FILE", "where to write the weights (tensor blob)",
       &out, true},
  };
  fl_cli_net_t n = {0};
  fl_mlu_json_t *model = NULL;
  fl_sbuf_t blob = {0}, b = {0};
  char *err = NULL;
  int nargs = 0;
  uint64_t r = 0;
  int rc = fl_cli_net_parse(&n, &get_cmd, path, own, 3, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK || (rc = no_args(path, nargs, argv)) != FL_CLI_OK ||
      (rc = check_task(path, task)) != FL_CLI_OK)
    goto done;
  if (fl_cli_parse_u64(round_s, &r) != 0) {
    fprintf(stderr, "%s: --round must be a round number, got '%s'\n", path, round_s);
    rc = FL_CLI_USAGE;
    goto done;
  }
  if ((rc = fl_cli_net_connect(&n)) != FL_CLI_OK) goto done;
  char rs[24];
  snprintf(rs, sizeof rs, "%llu", (unsigned long long)r);
  const char *a[] = {"GetModel", task, rs};
  rc = fl_cli_query_opt(&n, a, 3, &model);
  if (rc == FL_CLI_NOTFOUND) {
    rc = round_not_found(&n, task, r);
    if (rc == FL_CLI_NOTFOUND)
      fprintf(stderr, "%s: (round %llu has no global model until it is closed)\n", path,
              (unsigned long long)r);
  }
  if (rc != FL_CLI_OK) goto done;
  const char *hex = fl_mlu_json_str(fl_mlu_json_get(model, "hash"));
  uint8_t want[FL_SHA256_LEN], got[FL_SHA256_LEN];
  if (hex == NULL || strlen(hex) != 64 || fl_hex_decode(hex, 64, want, sizeof want) != 32) {
    fprintf(stderr, "%s: model/%s/%s has no valid hash\n", path, task, rs);
    rc = FL_CLI_FAIL;
    goto done;
  }
  fl_status_t st = fl_client_sync_get_blob(n.gw, want, &blob, &err);
  if (st == FL_ECORRUPT) {
    fprintf(stderr,
            "%s: refusing the model: the peer's bytes do not hash to %s recorded on the "
            "ledger; nothing written\n",
            path, hex);
    rc = FL_CLI_VERIFY;
    goto done;
  }
  if (st == FL_NOTFOUND) {
    fprintf(stderr, "%s: the peer has no blob %s\n", path, hex);
    rc = FL_CLI_NOTFOUND;
    goto done;
  }
  if (st != FL_OK) {
    rc = fl_cli_fail(&n, st, "GetBlob", err);
    goto done;
  }
  /* The SDK checked the hash already; check again here, where the decision
   * to write is made. */
  fl_sha256(blob.data, blob.len, got);
  if (memcmp(got, want, sizeof got) != 0) {
    fprintf(stderr, "%s: refusing the model: SHA-256 mismatch with the ledger; nothing written\n",
            path);
    rc = FL_CLI_VERIFY;
    goto done;
  }
  if (write_file(out, fl_sbuf_view(&blob)) != 0) {
    fprintf(stderr, "%s: cannot write %s: %s\n", path, out, strerror(errno));
    rc = FL_CLI_FAIL;
    goto done;
  }
  if (n.json) {
    fl_sbuf_append_str(&b, "{");
    fl_mlu_jw_key(&b, "task");
    fl_mlu_jw_str(&b, task);
    fl_mlu_jw_key(&b, "round");
    fl_mlu_jw_u64(&b, r);
    fl_mlu_jw_key(&b, "hash");
    fl_mlu_jw_str(&b, hex);
    fl_mlu_jw_key(&b, "bytes");
    fl_mlu_jw_u64(&b, blob.len);
    fl_mlu_jw_key(&b, "file");
    fl_mlu_jw_str(&b, out);
    fl_cli_jw_bool(&b, "verified", true);
    fl_sbuf_append_str(&b, "}");
    fl_cli_json_print(stdout, &b);
  } else {
    printf("wrote %s: global model of task %s after round %llu, %zu bytes, SHA-256 %s "
           "(matches the ledger)\n",
           out, task, (unsigned long long)r, blob.len, hex);
  }
done:
  fl_free(err);
  fl_sbuf_free(&blob);
  fl_sbuf_free(&b);
  fl_mlu_json_free(model);
  fl_cli_net_close(&n);
  return rc;
}
