/* SPDX-License-Identifier: Apache-2.0
 *
 * cmd_tx.c: `fedledger tx get TXID`: a committed transaction (Peer/
 * GetTransaction): who created it, which chaincode function with which
 * arguments, who endorsed it, what it wrote, its validation code and the
 * block that holds it.
 */
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/json.h"
#include "cli/cli.h"
#include "cli/inspect.h"
#include "cli/net.h"
#include "cli/out.h"
#include "common/base/alloc.h"

static int run_get(const char *path, int argc, char **argv);

static const fl_cli_cmd_t get_cmd = {
    .name = "get",
    .summary = "A committed transaction: creator, chaincode, function, code, block",
    .help = "TXID is the 64 hex digit transaction id.",
    .run = run_get,
};

static const fl_cli_cmd_t *const tx_subs[] = {&get_cmd, NULL};

const fl_cli_cmd_t fl_cli_cmd_tx = {
    .name = "tx",
    .summary = "Inspect transactions",
    .subs = tx_subs,
};

static int run_get(const char *path, int argc, char **argv) {
  fl_cli_net_t n = {0};
  fl_client_tx_info_t *info = NULL;
  fl_cli_txinfo_t t = {0};
  fl_sbuf_t b = {0};
  char *err = NULL;
  int nargs = 0;
  int rc = fl_cli_net_parse(&n, &get_cmd, path, NULL, 0, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK) goto done;
  uint8_t raw[32];
  if (nargs != 1) {
    fprintf(stderr, "%s: expected one argument: a tx id (64 hex digits)\n", path);
    rc = FL_CLI_USAGE;
    goto done;
  }
  if (strlen(argv[1]) != FL_TXID_HEX_LEN ||
      fl_hex_decode(argv[1], FL_TXID_HEX_LEN, raw, sizeof raw) != 32) {
    fprintf(stderr, "%s: '%.80s%s' is not a tx id (64 hex digits)\n", path, argv[1],
            strlen(argv[1]) > 80 ? "..." : "");
    rc = FL_CLI_USAGE;
    goto done;
  }
  char txid[FL_TXID_HEX_LEN + 1];
  for (size_t i = 0; i <= FL_TXID_HEX_LEN; i++)
    txid[i] = argv[1][i] >= 'A' && argv[1][i] <= 'F' ? (char)(argv[1][i] - 'A' + 'a') : argv[1][i];
  if ((rc = fl_cli_net_connect(&n)) != FL_CLI_OK) goto done;
  fl_status_t st = fl_client_sync_get_tx(n.gw, txid, &info, &err);
  if (st == FL_NOTFOUND) {
    fprintf(stderr, "%s: unknown transaction '%s'\n", path, txid);
    rc = FL_CLI_NOTFOUND;
    goto done;
  }
  if (st != FL_OK) {
    rc = fl_cli_fail(&n, st, "GetTransaction", err);
    goto done;
  }
  fl_cli_txinfo_decode(info->envelope_bytes, &t);
  if (n.json) {
    fl_sbuf_append_str(&b, "{");
    fl_cli_jw_txinfo(&b, &t);
    fl_mlu_jw_key(&b, "block");
    fl_mlu_jw_u64(&b, info->block_num);
    fl_mlu_jw_key(&b, "tx_index");
    fl_mlu_jw_u64(&b, info->tx_num);
    fl_mlu_jw_key(&b, "code");
    fl_sbuf_printf(&b, "%d", (int)info->code);
    fl_mlu_jw_key(&b, "code_name");
    fl_mlu_jw_str(&b, fl_client_code_name(info->code));
    fl_sbuf_append_str(&b, "}");
    fl_cli_json_print(stdout, &b);
  } else {
    char tb[32];
    printf("transaction %s\n", t.tx_id);
    fl_cli_kv(stdout, "type", "%s", t.type);
    fl_cli_kv(stdout, "block", "%llu (tx %llu)", (unsigned long long)info->block_num,
              (unsigned long long)info->tx_num);
    fl_cli_kv(stdout, "validation", "%s", fl_client_code_name(info->code));
    fl_cli_kv(stdout, "time", "%s", fl_cli_time(t.timestamp_ms, tb));
    fl_cli_kv(stdout, "creator", "%s:%s (role %s)", t.creator_mspid, t.creator_cn,
              t.creator_role[0] ? t.creator_role : "-");
    if (t.chaincode[0]) {
      fl_cli_kv(stdout, "chaincode", "%s", t.chaincode);
      fl_cli_kv(stdout, "function", "%s", t.function);
      for (size_t i = 1; i < t.n_args; i++)
        fl_cli_kv(stdout, i == 1 ? "args" : "", "%s", t.args[i]);
      fl_cli_kv(stdout, "blobs", "%zu", t.n_blobs);
      fl_cli_kv(stdout, "response", "%d %s", (int)t.response_status, t.response_message);
      for (size_t i = 0; i < t.n_endorsers; i++)
        fl_cli_kv(stdout, i == 0 ? "endorsed by" : "", "%s", t.endorsers[i]);
      fl_cli_kv(stdout, "event", "%s", t.event_name[0] ? t.event_name : "-");
      for (size_t i = 0; t.rwset && i < t.rwset->n_writes; i++)
        fl_cli_kv(stdout, i == 0 ? "writes" : "", "%s", t.rwset->writes[i].key);
    }
    if (t.error) fl_cli_kv(stdout, "note", "%s", t.error);
  }
done:
  fl_free(err);
  fl_sbuf_free(&b);
  fl_cli_txinfo_clear(&t);
  fl_client_tx_info_free(info);
  fl_cli_net_close(&n);
  return rc;
}
