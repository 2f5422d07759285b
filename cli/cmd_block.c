/* SPDX-License-Identifier: Apache-2.0
 *
 * cmd_block.c: `fedledger block get N`: a block's header (number, header
 * hash, previous hash, data hash), its metadata (time, PBFT view and
 * sequence), the orderer signatures verified against the genesis block's
 * orderer certificates (2f+1 distinct replicas needed), the link to block
 * N-1, and every transaction with its validation code.
 *
 * The data hash is checked when the block is decoded (a mismatch is exit
 * 6). Signatures are checked when a genesis block is configured; without
 * one they are listed as not verified. Validation codes are the serving
 * peer's word (they are not covered by any hash or signature).
 */
#include <stdint.h>
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
    .summary = "A block: header, orderer signatures (verified), transactions",
    .help = "N is the block number. With --genesis (or genesis: in the config) the\n"
            "orderer signatures are verified against the genesis' orderers; exit 6 when\n"
            "they, the data hash or the link to block N-1 do not check out.",
    .run = run_get,
};

static const fl_cli_cmd_t *const block_subs[] = {&get_cmd, NULL};

const fl_cli_cmd_t fl_cli_cmd_block = {
    .name = "block",
    .summary = "Inspect and verify blocks",
    .subs = block_subs,
};

static void hex32(const uint8_t *h, char out[65]) { fl_hex_encode(h, 32, out); }

static int run_get(const char *path, int argc, char **argv) {
  fl_cli_net_t n = {0};
  fl_block_t *blk = NULL, *prev = NULL;
  fl_cli_sigcheck_t sc = {0};
  fl_cli_table_t *tab = NULL;
  fl_sbuf_t b = {0};
  char *err = NULL;
  int nargs = 0;
  uint64_t num = 0;
  int rc = fl_cli_net_parse(&n, &get_cmd, path, NULL, 0, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK) goto done;
  if (nargs != 1) {
    fprintf(stderr, "%s: expected one argument: the block number (see --help)\n", path);
    rc = FL_CLI_USAGE;
    goto done;
  }
  if (fl_cli_parse_u64(argv[1], &num) != 0) {
    fprintf(stderr, "%s: '%.80s%s' is not a block number (a decimal integer 0..%llu)\n", path,
            argv[1], strlen(argv[1]) > 80 ? "..." : "", (unsigned long long)UINT64_MAX);
    rc = FL_CLI_USAGE;
    goto done;
  }
  if ((rc = fl_cli_net_load_genesis(&n, false)) != FL_CLI_OK ||
      (rc = fl_cli_net_connect(&n)) != FL_CLI_OK)
    goto done;
  fl_status_t st = fl_client_sync_get_block(n.gw, num, &blk, &err);
  if (st == FL_NOTFOUND) {
    fl_client_chain_info_t info = {0};
    fl_client_sync_chain_info(n.gw, &info, NULL);
    fprintf(stderr, "%s: unknown block %llu (the peer's chain has %llu blocks)\n", path,
            (unsigned long long)num, (unsigned long long)info.height);
    rc = FL_CLI_NOTFOUND;
    goto done;
  }
  if (st == FL_ECORRUPT || st == FL_EMALFORMED) {
    fprintf(stderr, "%s: block %llu fails verification: %s\n", path, (unsigned long long)num,
            err ? err : fl_status_str(st));
    rc = FL_CLI_VERIFY;
    goto done;
  }
  if (st != FL_OK) {
    rc = fl_cli_fail(&n, st, "GetBlock", err);
    goto done;
  }
  bool verified = n.genesis_loaded;
  if (verified) fl_cli_sigcheck(&n.genesis_info, blk, &sc);
  int link = -1; /* -1 unchecked, 0 broken, 1 ok */
  if (num > 0 && fl_client_sync_get_block(n.gw, num - 1, &prev, NULL) == FL_OK)
    link = fl_block_check_chain(prev, blk, NULL) == FL_OK;
  char hh[65], ph[65] = "", dh[65], tb[32];
  hex32(blk->header_hash, hh);
  if (blk->previous_hash_len) hex32(blk->previous_hash, ph);
  hex32(blk->data_hash, dh);

  static const char *const hdr[] = {"#", "TX_ID", "TYPE", "CHAINCODE", "FUNCTION", "CODE"};
  tab = fl_cli_table_new(6, hdr);
  fl_sbuf_append_str(&b, "{");
  fl_mlu_jw_key(&b, "number");
  fl_mlu_jw_u64(&b, blk->number);
  fl_mlu_jw_key(&b, "header_hash");
  fl_mlu_jw_str(&b, hh);
  fl_mlu_jw_key(&b, "previous_hash");
  fl_mlu_jw_str(&b, blk->previous_hash_len ? ph : NULL);
  fl_mlu_jw_key(&b, "data_hash");
  fl_mlu_jw_str(&b, dh);
  fl_mlu_jw_key(&b, "tx_count");
  fl_mlu_jw_u64(&b, blk->n_envelopes);
  fl_mlu_jw_key(&b, "timestamp_ms");
  fl_mlu_jw_u64(&b, blk->timestamp_ms);
  fl_mlu_jw_key(&b, "view");
  fl_mlu_jw_u64(&b, blk->view);
  fl_mlu_jw_key(&b, "seq");
  fl_mlu_jw_u64(&b, blk->seq);
  fl_mlu_jw_key(&b, "previous_link_ok");
  fl_sbuf_append_str(&b, link < 0 ? "null" : link ? "true" : "false");
  fl_mlu_jw_key(&b, "signatures");
  fl_sbuf_append_str(&b, "{");
  fl_mlu_jw_key(&b, "verified");
  fl_sbuf_append_str(&b, !verified ? "null" : sc.status == FL_OK ? "true" : "false");
  fl_mlu_jw_key(&b, "valid");
  if (verified)
    fl_mlu_jw_u64(&b, sc.valid);
  else
    fl_sbuf_append_str(&b, "null");
  fl_mlu_jw_key(&b, "required");
  if (verified)
    fl_mlu_jw_u64(&b, sc.required);
  else
    fl_sbuf_append_str(&b, "null");
  fl_mlu_jw_key(&b, "entries");
  fl_sbuf_append_str(&b, "[");
  for (size_t i = 0; i < blk->n_sigs; i++) {
    if (i) fl_sbuf_append_str(&b, ",");
    fl_sbuf_append_str(&b, "{");
    fl_mlu_jw_key(&b, "replica");
    fl_mlu_jw_u64(&b, blk->sigs[i].replica);
    fl_mlu_jw_key(&b, "status");
    fl_mlu_jw_str(&b, verified && i < sc.n ? fl_cli_sig_status_name(sc.per_sig[i])
                                           : "not_verified");
    fl_sbuf_append_str(&b, "}");
  }
  fl_sbuf_append_str(&b, "]}");
  fl_mlu_jw_key(&b, "txs");
  fl_sbuf_append_str(&b, "[");
  for (size_t i = 0; i < blk->n_envelopes; i++) {
    fl_cli_txinfo_t t;
    fl_cli_txinfo_decode(blk->envelopes[i], &t);
    bool has_code = i < blk->n_validation_codes;
    int32_t code = has_code ? blk->validation_codes[i] : -1;
    if (i) fl_sbuf_append_str(&b, ",");
    fl_sbuf_append_str(&b, "{");
    fl_mlu_jw_key(&b, "index");
    fl_mlu_jw_u64(&b, i);
    fl_mlu_jw_key(&b, "tx_id");
    fl_mlu_jw_str(&b, t.tx_id[0] ? t.tx_id : NULL);
    fl_mlu_jw_key(&b, "type");
    fl_mlu_jw_str(&b, t.type);
    fl_mlu_jw_key(&b, "chaincode");
    fl_mlu_jw_str(&b, t.chaincode[0] ? t.chaincode : NULL);
    fl_mlu_jw_key(&b, "function");
    fl_mlu_jw_str(&b, t.function[0] ? t.function : NULL);
    fl_mlu_jw_key(&b, "code");
    if (has_code)
      fl_sbuf_printf(&b, "%d", (int)code);
    else
      fl_sbuf_append_str(&b, "null");
    fl_mlu_jw_key(&b, "code_name");
    fl_mlu_jw_str(&b, has_code ? fl_client_code_name(code) : NULL);
    fl_sbuf_append_str(&b, "}");
    fl_cli_table_row(tab);
    fl_cli_table_cell(tab, "%zu", i);
    fl_cli_table_cell(tab, "%s", t.tx_id[0] ? t.tx_id : "?");
    fl_cli_table_cell(tab, "%s", t.type);
    fl_cli_table_cell(tab, "%s", t.chaincode[0] ? t.chaincode : "-");
    fl_cli_table_cell(tab, "%s", t.function[0] ? t.function : "-");
    fl_cli_table_cell(tab, "%s", has_code ? fl_client_code_name(code) : "-");
    fl_cli_txinfo_clear(&t);
  }
  fl_sbuf_append_str(&b, "]}");
  if (n.json) {
    fl_cli_json_print(stdout, &b);
  } else {
    printf("block %llu\n", (unsigned long long)blk->number);
    fl_cli_kv(stdout, "header hash", "%s", hh);
    fl_cli_kv(stdout, "previous hash", "%s%s", blk->previous_hash_len ? ph : "- (genesis)",
              link < 0 ? "" : link ? "  (links to block before)" : "  (BROKEN LINK)");
    fl_cli_kv(stdout, "data hash", "%s  (matches %zu transactions)", dh, blk->n_envelopes);
    fl_cli_kv(stdout, "time", "%s", blk->timestamp_ms ? fl_cli_time(blk->timestamp_ms, tb) : "-");
    fl_cli_kv(stdout, "pbft", "view %llu, seq %llu", (unsigned long long)blk->view,
              (unsigned long long)blk->seq);
    if (!verified)
      fl_cli_kv(stdout, "signatures", "%zu, not verified (no --genesis)", blk->n_sigs);
    else if (num == 0)
      fl_cli_kv(stdout, "genesis", "%s", sc.status == FL_OK ? "matches --genesis" : sc.reason);
    else
      fl_cli_kv(stdout, "signatures", "%zu valid of %zu, %zu required: %s", sc.valid,
                blk->n_sigs, sc.required, sc.status == FL_OK ? "OK" : "FAILED");
    for (size_t i = 0; verified && i < sc.n; i++)
      fl_cli_kv(stdout, "", "replica %u: %s", (unsigned)blk->sigs[i].replica,
                fl_cli_sig_status_name(sc.per_sig[i]));
    printf("\n");
    fl_cli_table_print(tab, stdout);
  }
  if ((verified && sc.status != FL_OK) || link == 0) {
    fprintf(stderr, "%s: block %llu fails verification: %s\n", path, (unsigned long long)num,
            link == 0 ? "previous hash does not match block N-1" : sc.reason);
    rc = FL_CLI_VERIFY;
  }
done:
  fl_free(err);
  fl_sbuf_free(&b);
  fl_cli_table_free(tab);
  fl_cli_sigcheck_clear(&sc);
  fl_block_free(blk);
  fl_block_free(prev);
  fl_cli_net_close(&n);
  return rc;
}
