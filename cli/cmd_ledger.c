/* SPDX-License-Identifier: Apache-2.0
 *
 * cmd_ledger.c: `fedledger ledger verify`: walks a peer's chain from block
 * 0 and checks, block by block, in this order:
 *   fetch       the peer serves the block (Peer/GetBlock)
 *   decode      it decodes as a block (protoutil fl_block_decode)
 *   data_hash   its data hash matches its transactions (checked in decode)
 *   number      it is the block number asked for
 *   genesis     block 0 is the genesis block given with --genesis
 *   hash_link   its previous_hash is the header hash of the block before
 *   signatures  at least 2f+1 distinct orderers of the genesis signed its
 *               header hash
 *   model_blob  every global model record it writes (model/<task>/<r>)
 *               names a blob the peer serves whose SHA-256 is that hash and
 *               that decodes as a tensor blob of the recorded size
 * and finally that the peer's ChainInfo names the last block's hash
 * (chain_info). The first failure stops the walk; the command names that
 * block and the check, and exits 6.
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
#include "common/crypto/hash.h"
#include "ml/tensor.h"

static int run_verify(const char *path, int argc, char **argv);

static const fl_cli_cmd_t verify_cmd = {
    .name = "verify",
    .summary = "Verify a peer's whole chain and every global model blob",
    .help = "Walks the chain from block 0: data hashes, hash links, 2f+1 orderer\n"
            "signatures (keys from --genesis, required), and that every global model\n"
            "hash (model/<task>/<r>) matches the blob the peer serves. Names the first\n"
            "block that fails and exits 6.",
    .run = run_verify,
};

static const fl_cli_cmd_t *const ledger_subs[] = {&verify_cmd, NULL};

const fl_cli_cmd_t fl_cli_cmd_ledger = {
    .name = "ledger",
    .summary = "Verify a peer's ledger",
    .subs = ledger_subs,
};

typedef struct failure_s {
  bool failed;
  uint64_t block;
  const char *check;
  char reason[512];
} failure_t;

static void set_fail(failure_t *f, uint64_t block, const char *check, const char *reason) {
  if (f->failed) return;
  f->failed = true;
  f->block = block;
  f->check = check;
  snprintf(f->reason, sizeof f->reason, "%s", reason ? reason : "");
}

typedef struct walk_s {
  fl_cli_net_t *n;
  fl_sbuf_t models; /* JSON array members */
  size_t n_models, n_txs;
  failure_t fail;
} walk_t;

/* Checks the global models a valid transaction of block h wrote. Returns
 * FL_CLI_OK, or an exit code for a transport failure. */
static int check_models(walk_t *w, uint64_t h, const fl_cli_txinfo_t *t) {
  for (size_t i = 0; t->rwset && strcmp(t->rwset->ns, FL_MLU_NAME) == 0 &&
                     i < t->rwset->n_writes && !w->fail.failed;
       i++) {
    const fl_kv_write_t *kw = &t->rwset->writes[i];
    if (kw->is_delete || strncmp(kw->key, "model/", 6) != 0) continue;
    fl_mlu_json_t *rec = NULL;
    char why[256];
    if (fl_mlu_json_parse(kw->value, &rec) != FL_OK) {
      snprintf(why, sizeof why, "%s: the record is not JSON", kw->key);
      set_fail(&w->fail, h, "model_blob", why);
      return FL_CLI_OK;
    }
    const char *hex = fl_mlu_json_str(fl_mlu_json_get(rec, "hash"));
    uint64_t n_params = fl_cli_ju64(rec, "n_params");
    uint8_t want[FL_SHA256_LEN], got[FL_SHA256_LEN];
    bool ok = false;
    int rc = FL_CLI_OK;
    fl_sbuf_t blob = {0};
    char *err = NULL;
    if (hex == NULL || strlen(hex) != 64 || fl_hex_decode(hex, 64, want, sizeof want) != 32) {
      snprintf(why, sizeof why, "%s: no valid model hash", kw->key);
    } else {
      fl_status_t st = fl_client_sync_get_blob(w->n->gw, want, &blob, &err);
      if (st == FL_OK) {
        fl_sha256(blob.data, blob.len, got);
        fl_ml_tensors_t tens = {0};
        if (memcmp(got, want, sizeof got) != 0) {
          snprintf(why, sizeof why, "%s: blob does not hash to %s", kw->key, hex);
        } else if (fl_ml_blob_decode(fl_sbuf_view(&blob), &tens) != FL_OK) {
          snprintf(why, sizeof why, "%s: blob %s is not a tensor blob", kw->key, hex);
        } else if (n_params != 0 && tens.n_values != n_params) {
          snprintf(why, sizeof why, "%s: blob has %zu values, the record says %llu", kw->key,
                   tens.n_values, (unsigned long long)n_params);
        } else {
          ok = true;
        }
        fl_ml_tensors_free(&tens);
      } else if (st == FL_ECORRUPT) {
        snprintf(why, sizeof why, "%s: the peer's blob does not hash to %s", kw->key, hex);
      } else if (st == FL_NOTFOUND) {
        snprintf(why, sizeof why, "%s: the peer has no blob %s", kw->key, hex);
      } else {
        rc = fl_cli_fail(w->n, st, "GetBlob", err);
      }
    }
    if (rc == FL_CLI_OK) {
      if (w->n_models++) fl_sbuf_append_str(&w->models, ",");
      fl_sbuf_append_str(&w->models, "{");
      fl_cli_jw_copy(&w->models, "task", rec, "task");
      fl_cli_jw_copy(&w->models, "round", rec, "round");
      fl_mlu_jw_key(&w->models, "hash");
      fl_mlu_jw_str(&w->models, hex);
      fl_mlu_jw_key(&w->models, "block");
      fl_mlu_jw_u64(&w->models, h);
      fl_cli_jw_bool(&w->models, "ok", ok);
      fl_sbuf_append_str(&w->models, "}");
      if (!ok) set_fail(&w->fail, h, "model_blob", why);
    }
    fl_free(err);
    fl_sbuf_free(&blob);
    fl_mlu_json_free(rec);
    if (rc != FL_CLI_OK) return rc;
  }
  return FL_CLI_OK;
}

static int run_verify(const char *path, int argc, char **argv) {
  fl_cli_net_t n = {0};
  walk_t w = {.n = &n};
  fl_block_t *prev = NULL;
  fl_sbuf_t b = {0};
  char *err = NULL;
  int nargs = 0;
  uint64_t verified = 0;
  int rc = fl_cli_net_parse(&n, &verify_cmd, path, NULL, 0, argc, argv, &nargs);
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
  if ((rc = fl_cli_net_load_genesis(&n, true)) != FL_CLI_OK ||
      (rc = fl_cli_net_connect(&n)) != FL_CLI_OK)
    goto done;
  fl_client_chain_info_t info;
  fl_status_t st = fl_client_sync_chain_info(n.gw, &info, &err);
  if (st != FL_OK) {
    rc = fl_cli_fail(&n, st, "ChainInfo", err);
    goto done;
  }
  const fl_cli_genesis_t *g = &n.genesis_info;
  if (!n.json)
    printf("verifying %llu blocks of peer %s against %s (%zu orderers, f=%u)\n",
           (unsigned long long)info.height, n.peer, n.genesis, g->n, (unsigned)g->f);
  for (uint64_t h = 0; h < info.height && !w.fail.failed; h++) {
    fl_block_t *blk = NULL;
    fl_free(err);
    err = NULL;
    st = fl_client_sync_get_block(n.gw, h, &blk, &err);
    if (st == FL_ECORRUPT) {
      set_fail(&w.fail, h, "data_hash", err ? err : "data hash mismatch");
      break;
    }
    if (st == FL_EMALFORMED || st == FL_ETOOBIG) {
      set_fail(&w.fail, h, "decode", err ? err : "the block does not decode");
      break;
    }
    if (st == FL_NOTFOUND) {
      set_fail(&w.fail, h, "fetch", "the peer has no such block below its height");
      break;
    }
    if (st != FL_OK) {
      /* The peer answered with an error for this block (it may have
       * detected the damage itself) or the connection failed. */
      int code = fl_cli_exit_code(st);
      if (code == FL_CLI_UNREACHABLE) {
        rc = fl_cli_fail(&n, st, "GetBlock", err);
        goto done;
      }
      char why[512];
      snprintf(why, sizeof why, "the peer cannot serve it: %s", err ? err : fl_status_str(st));
      set_fail(&w.fail, h, "fetch", why);
      break;
    }
    const char *reason = NULL;
    if (blk->number != h) {
      set_fail(&w.fail, h, "number", "the peer served a block with another number");
    } else if (h == 0) {
      fl_cli_sigcheck_t sc;
      fl_cli_sigcheck(g, blk, &sc);
      if (sc.status != FL_OK) set_fail(&w.fail, h, "genesis", sc.reason);
      fl_cli_sigcheck_clear(&sc);
    } else if (fl_block_check_chain(prev, blk, &reason) != FL_OK) {
      set_fail(&w.fail, h, "hash_link", reason ? reason : "previous hash mismatch");
    } else {
      fl_cli_sigcheck_t sc;
      fl_cli_sigcheck(g, blk, &sc);
      if (sc.status != FL_OK) {
        char why[256];
        snprintf(why, sizeof why, "%zu valid orderer signatures, %zu required (%s)", sc.valid,
                 sc.required, sc.reason ? sc.reason : "");
        set_fail(&w.fail, h, "signatures", why);
      }
      fl_cli_sigcheck_clear(&sc);
    }
    for (size_t i = 0; !w.fail.failed && i < blk->n_envelopes; i++) {
      w.n_txs++;
      if (i < blk->n_validation_codes && blk->validation_codes[i] != FL_CLIENT_CODE_VALID)
        continue;
      fl_cli_txinfo_t t;
      fl_cli_txinfo_decode(blk->envelopes[i], &t);
      rc = check_models(&w, h, &t);
      fl_cli_txinfo_clear(&t);
      if (rc != FL_CLI_OK) {
        fl_block_free(blk);
        goto done;
      }
    }
    if (!w.fail.failed) verified++;
    fl_block_free(prev);
    prev = blk;
  }
  if (!w.fail.failed && prev != NULL &&
      memcmp(prev->header_hash, info.current_hash, FL_SHA256_LEN) != 0)
    set_fail(&w.fail, prev->number, "chain_info",
             "the peer's ChainInfo names another hash for its last block");
  if (n.json) {
    fl_sbuf_append_str(&b, "{");
    fl_cli_jw_bool(&b, "ok", !w.fail.failed);
    fl_mlu_jw_key(&b, "height");
    fl_mlu_jw_u64(&b, info.height);
    fl_mlu_jw_key(&b, "blocks_verified");
    fl_mlu_jw_u64(&b, verified);
    fl_mlu_jw_key(&b, "transactions");
    fl_mlu_jw_u64(&b, w.n_txs);
    fl_mlu_jw_key(&b, "models_verified");
    size_t mok = w.n_models - (w.fail.failed && strcmp(w.fail.check, "model_blob") == 0);
    fl_mlu_jw_u64(&b, mok);
    fl_mlu_jw_key(&b, "first_failure");
    if (w.fail.failed) {
      fl_sbuf_append_str(&b, "{");
      fl_mlu_jw_key(&b, "block");
      fl_mlu_jw_u64(&b, w.fail.block);
      fl_mlu_jw_key(&b, "check");
      fl_mlu_jw_str(&b, w.fail.check);
      fl_mlu_jw_key(&b, "reason");
      fl_mlu_jw_str(&b, w.fail.reason);
      fl_sbuf_append_str(&b, "}");
    } else {
      fl_sbuf_append_str(&b, "null");
    }
    fl_mlu_jw_key(&b, "models");
    fl_sbuf_append_str(&b, "[");
    fl_sbuf_append(&b, w.models.data, w.models.len);
    fl_sbuf_append_str(&b, "]}");
    fl_cli_json_print(stdout, &b);
  } else if (!w.fail.failed) {
    printf("OK: %llu blocks (%zu transactions): data hashes, hash links and %zu-of-%zu orderer "
           "signatures verified; %zu global models match their blobs\n",
           (unsigned long long)verified, w.n_txs, (size_t)(2 * g->f + 1), g->n, w.n_models);
  } else {
    printf("FAILED at block %llu (%s): %s\n", (unsigned long long)w.fail.block, w.fail.check,
           w.fail.reason);
  }
  if (w.fail.failed) {
    fprintf(stderr, "%s: ledger verification failed at block %llu: %s: %s\n", path,
            (unsigned long long)w.fail.block, w.fail.check, w.fail.reason);
    rc = FL_CLI_VERIFY;
  }
done:
  fl_free(err);
  fl_sbuf_free(&b);
  fl_sbuf_free(&w.models);
  fl_block_free(prev);
  fl_cli_net_close(&n);
  return rc;
}
