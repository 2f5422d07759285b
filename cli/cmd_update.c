/* SPDX-License-Identifier: Apache-2.0
 *
 * cmd_update.c: `fedledger update show --task T --round R --client C`: one
 * client's update record of a round (mlupdate GetUpdate) with its part in
 * the round's aggregate (GetModel), answering "why was client X rejected?".
 */
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/json.h"
#include "chaincode/mlupdate/mlupdate.h"
#include "cli/cli.h"
#include "cli/net.h"
#include "cli/out.h"
#include "common/base/alloc.h"

static int run_show(const char *path, int argc, char **argv);

static const fl_cli_cmd_t show_cmd = {
    .name = "show",
    .summary = "One client's update in a round: hashes, scores, status and reason",
    .help = "C is a client id: <mspid>:<CN>, e.g. Org1MSP:client1@org1.example.com.",
    .run = run_show,
};

static const fl_cli_cmd_t *const update_subs[] = {&show_cmd, NULL};

const fl_cli_cmd_t fl_cli_cmd_update = {
    .name = "update",
    .summary = "Inspect model updates submitted by edge clients",
    .subs = update_subs,
};

/* The record's members, in the chaincode's order (docs/mlupdate.md). */
static const char *const update_keys[] = {
    "task",   "round",      "client",    "mspid", "cert_sha256", "tx_id",  "ts",
    "hash",   "blob_sha256", "signature", "samples", "data_hash", "norm",   "norm_z",
    "cosine", "blob_stored", "status",   "reason", "reason_code", "detail"};

static int run_show(const char *path, int argc, char **argv) {
  const char *task = NULL, *round_s = NULL, *client = NULL;
  const fl_cli_flag_t own[] = {
      {"task", 't', FL_CLI_FLAG_STRING, "T", "task id", &task, true},
      {"round", 'r', FL_CLI_FLAG_STRING, "R", "round number", &round_s, true},
      {"client", 'c', FL_CLI_FLAG_STRING, "C", "client id (<mspid>:<CN>)", &client, true},
  };
  fl_cli_net_t n = {0};
  fl_mlu_json_t *u = NULL, *model = NULL;
  fl_sbuf_t b = {0};
  int nargs = 0;
  uint64_t r = 0;
  int rc = fl_cli_net_parse(&n, &show_cmd, path, own, 3, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK) goto done;
  if (nargs > 0) {
    fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", path, argv[1]);
    rc = FL_CLI_USAGE;
    goto done;
  }
  if (!fl_mlu_task_id_ok(task, strlen(task)) || fl_cli_parse_u64(round_s, &r) != 0 ||
      !fl_mlu_client_id_ok(client, strlen(client))) {
    fprintf(stderr, "%s: need a valid --task id, --round number and --client <mspid>:<CN>\n",
            path);
    rc = FL_CLI_USAGE;
    goto done;
  }
  if ((rc = fl_cli_net_connect(&n)) != FL_CLI_OK) goto done;
  char rs[24], nf[512];
  snprintf(rs, sizeof rs, "%llu", (unsigned long long)r);
  snprintf(nf, sizeof nf, "no update by client '%s' in round %s of task '%s'", client, rs, task);
  const char *a1[] = {"GetUpdate", task, rs, client};
  if ((rc = fl_cli_query(&n, a1, 4, nf, &u)) != FL_CLI_OK) goto done;
  const char *a2[] = {"GetModel", task, rs};
  rc = fl_cli_query_opt(&n, a2, 3, &model);
  if (rc != FL_CLI_OK && rc != FL_CLI_NOTFOUND) goto done;
  rc = FL_CLI_OK;
  /* Its entry in the aggregate, when the round is closed and it was taken. */
  const fl_mlu_json_t *ag = NULL, *ups = fl_mlu_json_get(model, "updates");
  const char *hash = fl_mlu_json_str(fl_mlu_json_get(u, "hash"));
  for (size_t i = 0; ups && ups->kind == FL_MLU_JARR && i < ups->n; i++) {
    const char *c = fl_mlu_json_str(fl_mlu_json_get(&ups->items[i], "client"));
    const char *h = fl_mlu_json_str(fl_mlu_json_get(&ups->items[i], "hash"));
    if (c && h && hash && strcmp(c, client) == 0 && strcmp(h, hash) == 0) ag = &ups->items[i];
  }
  if (n.json) {
    fl_sbuf_append_str(&b, "{");
    for (size_t k = 0; k < sizeof update_keys / sizeof update_keys[0]; k++)
      fl_cli_jw_copy(&b, update_keys[k], u, update_keys[k]);
    fl_cli_jw_bool(&b, "round_closed", model != NULL);
    fl_cli_jw_bool(&b, "in_aggregate", ag != NULL);
    fl_cli_jw_copy(&b, "selected", ag, "selected");
    fl_cli_jw_copy(&b, "weight", ag, "weight");
    fl_sbuf_append_str(&b, "}");
    fl_cli_json_print(stdout, &b);
  } else {
    for (size_t k = 0; k < sizeof update_keys / sizeof update_keys[0]; k++) {
      if (strcmp(update_keys[k], "ts") == 0) {
        char tb[32];
        fl_cli_kv(stdout, "time", "%s", fl_cli_time(fl_cli_ju64(u, "ts"), tb));
        continue;
      }
      fl_cli_kv(stdout, update_keys[k], "%s", fl_cli_jtext(u, update_keys[k]));
    }
    if (model == NULL)
      fl_cli_kv(stdout, "aggregate", "round not closed yet");
    else if (ag == NULL)
      fl_cli_kv(stdout, "aggregate", "not part of the aggregate");
    else
      fl_cli_kv(stdout, "aggregate", "selected %s, weight %s", fl_cli_jtext(ag, "selected"),
                fl_cli_jtext(ag, "weight"));
  }
done:
  fl_sbuf_free(&b);
  fl_mlu_json_free(u);
  fl_mlu_json_free(model);
  fl_cli_net_close(&n);
  return rc;
}
