/* SPDX-License-Identifier: Apache-2.0
 *
 * cmd_client.c: edge client records of mlupdate:
 *   client show --client C               client/<C> (counts, revocation)
 *   client revoke --client C --reason T  RevokeClient (an admin of C's org)
 *   client list [--revoked]              every client record, found by
 *                                        walking the peer's blocks for
 *                                        writes of client/ keys (there is
 *                                        no index of clients to query)
 */
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/json.h"
#include "chaincode/mlupdate/mlupdate.h"
#include "cli/cli.h"
#include "cli/inspect.h"
#include "cli/net.h"
#include "cli/out.h"
#include "common/base/alloc.h"

static int run_show(const char *path, int argc, char **argv);
static int run_revoke(const char *path, int argc, char **argv);
static int run_list(const char *path, int argc, char **argv);

static const fl_cli_cmd_t show_cmd = {
    .name = "show",
    .summary = "A client's record: accepted/rejected counts and revocation",
    .run = run_show,
};
static const fl_cli_cmd_t revoke_cmd = {
    .name = "revoke",
    .summary = "Revoke a client (admin of the client's organisation)",
    .help = "Submits mlupdate RevokeClient and waits for the commit. Only an admin of\n"
            "the client's own organisation may do this (otherwise exit 4). Revoking an\n"
            "already revoked client changes nothing. There is no un-revoke.",
    .run = run_revoke,
};
static const fl_cli_cmd_t list_cmd = {
    .name = "list",
    .summary = "Every client with a record (walks the chain); --revoked for revoked ones",
    .run = run_list,
};

static const fl_cli_cmd_t *const client_subs[] = {&show_cmd, &revoke_cmd, &list_cmd, NULL};

const fl_cli_cmd_t fl_cli_cmd_client = {
    .name = "client",
    .summary = "Inspect and revoke edge clients",
    .subs = client_subs,
};

static const char *const client_keys[] = {"client",      "accepted",   "rejected",
                                          "revoked",     "revoked_reason", "revoked_by",
                                          "revoked_tx",  "revoked_ts"};
#define N_CLIENT_KEYS (sizeof client_keys / sizeof client_keys[0])

static int check_client(const char *path, int nargs, char **argv, const char *client) {
  if (nargs > 0) {
    fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", path, argv[1]);
    return FL_CLI_USAGE;
  }
  if (!fl_mlu_client_id_ok(client, strlen(client))) {
    fprintf(stderr, "%s: invalid client id '%s' (<mspid>:<CN>)\n", path, client);
    return FL_CLI_USAGE;
  }
  return FL_CLI_OK;
}

static void jw_client(fl_sbuf_t *b, const fl_mlu_json_t *c) {
  for (size_t k = 0; k < N_CLIENT_KEYS; k++) fl_cli_jw_copy(b, client_keys[k], c, client_keys[k]);
}

static void print_client(const fl_mlu_json_t *c) {
  for (size_t k = 0; k < N_CLIENT_KEYS; k++) {
    if (strcmp(client_keys[k], "revoked_ts") == 0) {
      const fl_mlu_json_t *v = fl_mlu_json_get(c, "revoked_ts");
      char tb[32];
      fl_cli_kv(stdout, "revoked at", "%s",
                v && v->kind == FL_MLU_JNUM ? fl_cli_time(fl_cli_ju64(c, "revoked_ts"), tb) : "-");
      continue;
    }
    fl_cli_kv(stdout, client_keys[k], "%s", fl_cli_jtext(c, client_keys[k]));
  }
}

static int run_show(const char *path, int argc, char **argv) {
  const char *client = NULL;
  const fl_cli_flag_t own[] = {
      {"client", 'c', FL_CLI_FLAG_STRING, "C", "client id (<mspid>:<CN>)", &client, true}};
  fl_cli_net_t n = {0};
  fl_mlu_json_t *c = NULL;
  fl_sbuf_t b = {0};
  int nargs = 0;
  int rc = fl_cli_net_parse(&n, &show_cmd, path, own, 1, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK || (rc = check_client(path, nargs, argv, client)) != FL_CLI_OK ||
      (rc = fl_cli_net_connect(&n)) != FL_CLI_OK)
    goto done;
  char nf[300];
  snprintf(nf, sizeof nf, "unknown client '%s' (no round it took part in has closed)", client);
  const char *a[] = {"GetClient", client};
  if ((rc = fl_cli_query(&n, a, 2, nf, &c)) != FL_CLI_OK) goto done;
  if (n.json) {
    fl_sbuf_append_str(&b, "{");
    jw_client(&b, c);
    fl_sbuf_append_str(&b, "}");
    fl_cli_json_print(stdout, &b);
  } else {
    print_client(c);
  }
done:
  fl_sbuf_free(&b);
  fl_mlu_json_free(c);
  fl_cli_net_close(&n);
  return rc;
}

static int run_revoke(const char *path, int argc, char **argv) {
  const char *client = NULL, *reason = NULL;
  const fl_cli_flag_t own[] = {
      {"client", 'c', FL_CLI_FLAG_STRING, "C", "client id (<mspid>:<CN>)", &client, true},
      {"reason", 0, FL_CLI_FLAG_STRING, "TEXT", "why (1..256 printable ASCII characters)",
       &reason, true},
  };
  fl_cli_net_t n = {0};
  fl_mlu_json_t *c = NULL;
  fl_sbuf_t b = {0};
  int nargs = 0;
  int rc = fl_cli_net_parse(&n, &revoke_cmd, path, own, 2, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK || (rc = check_client(path, nargs, argv, client)) != FL_CLI_OK) goto done;
  size_t rl = strlen(reason);
  bool printable = rl >= 1 && rl <= 256;
  for (size_t i = 0; i < rl; i++) printable &= reason[i] >= 0x20 && reason[i] < 0x7f;
  if (!printable) {
    fprintf(stderr, "%s: --reason must be 1..256 printable ASCII characters\n", path);
    rc = FL_CLI_USAGE;
    goto done;
  }
  if ((rc = fl_cli_net_connect(&n)) != FL_CLI_OK) goto done;
  fl_buf_t args[3] = {FL_BUF_STR("RevokeClient"), FL_BUF_STR(client), FL_BUF_STR(reason)};
  char txid[FL_TXID_HEX_LEN + 1];
  uint64_t block = 0;
  if ((rc = fl_cli_submit(&n, args, 3, NULL, 0, txid, &block, &c)) != FL_CLI_OK) goto done;
  const char *rtx = fl_mlu_json_str(fl_mlu_json_get(c, "revoked_tx"));
  bool already = rtx != NULL && strcmp(rtx, txid) != 0;
  if (n.json) {
    fl_sbuf_append_str(&b, "{");
    jw_client(&b, c);
    fl_cli_jw_bool(&b, "already_revoked", already);
    fl_mlu_jw_key(&b, "tx_id");
    fl_mlu_jw_str(&b, txid);
    fl_mlu_jw_key(&b, "block");
    fl_mlu_jw_u64(&b, block);
    fl_sbuf_append_str(&b, "}");
    fl_cli_json_print(stdout, &b);
  } else if (already) {
    printf("client %s was already revoked (tx %s): nothing changed\n", client, rtx);
  } else {
    printf("revoked client %s: tx %s in block %llu\n", client, txid, (unsigned long long)block);
  }
done:
  fl_sbuf_free(&b);
  fl_mlu_json_free(c);
  fl_cli_net_close(&n);
  return rc;
}

/* ---- list --------------------------------------------------------------------------- */

typedef struct seen_s {
  char *client;
  fl_mlu_json_t *rec;
  uint64_t block;
  char tx_id[65];
} seen_t;

static int run_list(const char *path, int argc, char **argv) {
  bool revoked_only = false;
  const fl_cli_flag_t own[] = {
      {"revoked", 0, FL_CLI_FLAG_BOOL, NULL, "only revoked clients", &revoked_only, false}};
  fl_cli_net_t n = {0};
  seen_t *seen = NULL;
  size_t nseen = 0;
  fl_cli_table_t *tab = NULL;
  fl_sbuf_t b = {0};
  char *err = NULL;
  int nargs = 0;
  int rc = fl_cli_net_parse(&n, &list_cmd, path, own, 1, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK) goto done;
  if (nargs > 0) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", path, argv[1]);
    rc = FL_CLI_USAGE;
    goto done;
  }
  if ((rc = fl_cli_net_connect(&n)) != FL_CLI_OK) goto done;
  fl_client_chain_info_t info;
  fl_status_t st = fl_client_sync_chain_info(n.gw, &info, &err);
  if (st != FL_OK) {
    rc = fl_cli_fail(&n, st, "ChainInfo", err);
    goto done;
  }
  for (uint64_t h = 1; h < info.height; h++) {
    fl_block_t *blk = NULL;
    fl_free(err);
    err = NULL;
    st = fl_client_sync_get_block(n.gw, h, &blk, &err);
    if (st != FL_OK) {
      char what[64];
      snprintf(what, sizeof what, "block %llu", (unsigned long long)h);
      rc = fl_cli_fail(&n, st, what, err);
      goto done;
    }
    for (size_t i = 0; i < blk->n_envelopes; i++) {
      if (i < blk->n_validation_codes && blk->validation_codes[i] != FL_CLIENT_CODE_VALID)
        continue;
      fl_cli_txinfo_t t;
      fl_cli_txinfo_decode(blk->envelopes[i], &t);
      for (size_t w = 0; t.rwset && strcmp(t.rwset->ns, FL_MLU_NAME) == 0 &&
                         w < t.rwset->n_writes;
           w++) {
        const fl_kv_write_t *kw = &t.rwset->writes[w];
        if (kw->is_delete || strncmp(kw->key, "client/", 7) != 0) continue;
        fl_mlu_json_t *rec = NULL;
        if (fl_mlu_json_parse(kw->value, &rec) != FL_OK) continue;
        const char *id = kw->key + 7;
        size_t k = 0;
        while (k < nseen && strcmp(seen[k].client, id) != 0) k++;
        if (k == nseen) {
          seen = fl_reallocarray(seen, nseen + 1, sizeof *seen);
          seen[nseen++] = (seen_t){.client = fl_strdup(id)};
        }
        fl_mlu_json_free(seen[k].rec);
        seen[k].rec = rec;
        seen[k].block = h;
        memcpy(seen[k].tx_id, t.tx_id, sizeof seen[k].tx_id);
      }
      fl_cli_txinfo_clear(&t);
    }
    fl_block_free(blk);
  }
  static const char *const hdr[] = {"CLIENT", "ACCEPTED", "REJECTED", "REVOKED",
                                    "REASON", "BY",       "WHEN",     "BLOCK"};
  tab = fl_cli_table_new(8, hdr);
  fl_sbuf_append_str(&b, "{\"clients\":[");
  size_t shown = 0;
  for (size_t k = 0; k < nseen; k++) {
    const fl_mlu_json_t *rv = fl_mlu_json_get(seen[k].rec, "revoked");
    bool revoked = rv && rv->kind == FL_MLU_JBOOL && rv->b;
    if (revoked_only && !revoked) continue;
    if (shown++) fl_sbuf_append_str(&b, ",");
    fl_sbuf_append_str(&b, "{");
    jw_client(&b, seen[k].rec);
    fl_mlu_jw_key(&b, "block");
    fl_mlu_jw_u64(&b, seen[k].block);
    fl_mlu_jw_key(&b, "last_tx");
    fl_mlu_jw_str(&b, seen[k].tx_id);
    fl_sbuf_append_str(&b, "}");
    char tb[32];
    fl_cli_table_row(tab);
    fl_cli_table_cell(tab, "%s", seen[k].client);
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(seen[k].rec, "accepted"));
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(seen[k].rec, "rejected"));
    fl_cli_table_cell(tab, "%s", revoked ? "yes" : "no");
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(seen[k].rec, "revoked_reason"));
    fl_cli_table_cell(tab, "%s", fl_cli_jtext(seen[k].rec, "revoked_by"));
    fl_cli_table_cell(tab, "%s",
                      revoked ? fl_cli_time(fl_cli_ju64(seen[k].rec, "revoked_ts"), tb) : "-");
    fl_cli_table_cell(tab, "%llu", (unsigned long long)seen[k].block);
  }
  fl_sbuf_append_str(&b, "]}");
  if (n.json)
    fl_cli_json_print(stdout, &b);
  else if (shown == 0)
    printf(revoked_only ? "no revoked clients\n" : "no client records\n");
  else
    fl_cli_table_print(tab, stdout);
done:
  for (size_t k = 0; k < nseen; k++) {
    fl_free(seen[k].client);
    fl_mlu_json_free(seen[k].rec);
  }
  fl_free(seen);
  fl_free(err);
  fl_sbuf_free(&b);
  fl_cli_table_free(tab);
  fl_cli_net_close(&n);
  return rc;
}
