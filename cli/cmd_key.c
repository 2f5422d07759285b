/* SPDX-License-Identifier: Apache-2.0
 *
 * cmd_key.c: `fedledger key history KEY`: every value an mlupdate
 * world-state key ever had, newest first (mlupdate GetHistory, read from
 * the peer's history index), with the block and transaction that wrote it.
 */
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/json.h"
#include "cli/cli.h"
#include "cli/net.h"
#include "cli/out.h"
#include "common/base/alloc.h"

static int run_history(const char *path, int argc, char **argv);

static const fl_cli_cmd_t history_cmd = {
    .name = "history",
    .summary = "Every value a world-state key had, newest first",
    .help = "KEY is an mlupdate key such as task/t1, round/t1/3, model/t1/3,\n"
            "update/t1/3/Org1MSP:client1@org1.example.com or client/<id>\n"
            "(docs/mlupdate.md). blob/ keys show each value's SHA-256 and length.",
    .run = run_history,
};

static const fl_cli_cmd_t *const key_subs[] = {&history_cmd, NULL};

const fl_cli_cmd_t fl_cli_cmd_key = {
    .name = "key",
    .summary = "World-state key provenance",
    .subs = key_subs,
};

static int run_history(const char *path, int argc, char **argv) {
  fl_cli_net_t n = {0};
  fl_mlu_json_t *h = NULL;
  fl_cli_table_t *tab = NULL;
  fl_sbuf_t b = {0}, v = {0};
  int nargs = 0;
  int rc = fl_cli_net_parse(&n, &history_cmd, path, NULL, 0, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK) goto done;
  if (nargs != 1 || argv[1][0] == '\0') {
    fprintf(stderr, "%s: expected one argument: the key (see --help)\n", path);
    rc = FL_CLI_USAGE;
    goto done;
  }
  const char *key = argv[1];
  if ((rc = fl_cli_net_connect(&n)) != FL_CLI_OK) goto done;
  const char *a[] = {"GetHistory", key};
  if ((rc = fl_cli_query(&n, a, 2, NULL, &h)) != FL_CLI_OK) goto done;
  if (h->kind != FL_MLU_JARR) {
    fprintf(stderr, "%s: GetHistory: unexpected answer\n", path);
    rc = FL_CLI_FAIL;
    goto done;
  }
  if (h->n == 0) {
    fprintf(stderr, "%s: key '%s' was never written\n", path, key);
    rc = FL_CLI_NOTFOUND;
    goto done;
  }
  if (n.json) {
    fl_sbuf_append_str(&b, "{");
    fl_mlu_jw_key(&b, "key");
    fl_mlu_jw_str(&b, key);
    fl_mlu_jw_key(&b, "history");
    fl_sbuf_append_str(&b, "[");
    for (size_t i = 0; i < h->n; i++) {
      if (i) fl_sbuf_append_str(&b, ",");
      fl_sbuf_append_str(&b, "{");
      static const char *const keys[] = {"block", "tx", "tx_id", "deleted", "value"};
      for (size_t k = 0; k < 5; k++) fl_cli_jw_copy(&b, keys[k], &h->items[i], keys[k]);
      fl_sbuf_append_str(&b, "}");
    }
    fl_sbuf_append_str(&b, "]}");
    fl_cli_json_print(stdout, &b);
    goto done;
  }
  static const char *const hdr[] = {"BLOCK", "TX", "TX_ID", "DELETED", "VALUE"};
  tab = fl_cli_table_new(5, hdr);
  for (size_t i = 0; i < h->n; i++) {
    const fl_mlu_json_t *e = &h->items[i];
    v.len = 0;
    fl_cli_jw_value(&v, fl_mlu_json_get(e, "value"));
    char h1[17];
    fl_cli_table_row(tab);
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(e, "block"));
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(e, "tx"));
    fl_cli_table_cell(tab, "%s", fl_cli_short_hash(fl_cli_jtext(e, "tx_id"), h1));
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(e, "deleted"));
    fl_cli_table_cell(tab, "%.*s%s", (int)(v.len > 100 ? 100 : v.len),
                      v.data ? (const char *)v.data : "", v.len > 100 ? "..." : "");
  }
  printf("key %s: %zu versions, newest first\n", key, h->n);
  fl_cli_table_print(tab, stdout);
done:
  fl_sbuf_free(&b);
  fl_sbuf_free(&v);
  fl_cli_table_free(tab);
  fl_mlu_json_free(h);
  fl_cli_net_close(&n);
  return rc;
}
