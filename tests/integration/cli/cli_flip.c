/* SPDX-License-Identifier: Apache-2.0
 *
 * cli_flip.c: damages one stored block of a (stopped) peer's ledger for the
 * `ledger verify` test: opens the ledger's RocksDB directly with fl_kv,
 * reads blocks/<be64 N> (header_hash[32] || exact block bytes, see
 * peer/ledger/ledger_int.h), flips one byte in the middle of the block's
 * first transaction envelope, and writes the value back (synced).
 *
 *   cli_flip LEDGER_DIR BLOCK
 *   cli_flip LEDGER_DIR blob SHA256_HEX
 *
 * Flipping a byte inside an envelope leaves the header (and so the orderer
 * signatures and the hash links) intact but breaks the data hash: the
 * damage only verification of the data can find. The second form flips the
 * middle byte of a stored blob (blobs/<sha256>), which only a check of the
 * blob against its hash finds. Exit 0 on success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/kv/kv.h"
#include "common/protoutil/block.h"

static long find(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m) {
  if (m == 0 || m > n) return -1;
  for (size_t i = 0; i + m <= n; i++)
    if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0) return (long)i;
  return -1;
}

static int flip_blob(fl_kv_t *kv, const char *hex) {
  uint8_t key[32];
  if (strlen(hex) != 64 || fl_hex_decode(hex, 64, key, sizeof key) != 32) {
    fprintf(stderr, "cli_flip: bad hash %s\n", hex);
    return 1;
  }
  fl_kv_cf_t *cf = fl_kv_cf(kv, "blobs");
  fl_sbuf_t v = {0};
  int rc = 1;
  if (cf == NULL || fl_kv_get(kv, cf, NULL, FL_BUF(key, 32), &v) != FL_OK || v.len == 0) {
    fprintf(stderr, "cli_flip: no blob %s\n", hex);
  } else {
    v.data[v.len / 2] ^= 0x01;
    if (fl_kv_put(kv, cf, FL_BUF(key, 32), fl_sbuf_view(&v), true) == FL_OK) {
      printf("flipped byte %zu of blob %s (%zu bytes)\n", v.len / 2, hex, v.len);
      rc = 0;
    }
  }
  fl_sbuf_free(&v);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 3 && !(argc == 4 && strcmp(argv[2], "blob") == 0)) {
    fprintf(stderr, "usage: cli_flip LEDGER_DIR BLOCK | cli_flip LEDGER_DIR blob SHA256_HEX\n");
    return 2;
  }
  uint64_t num = strtoull(argv[2], NULL, 10);
  fl_kv_cf_spec_t cfs[] = {{.name = "blocks"}, {.name = "blobs"}};
  fl_kv_opts_t o = {.cfs = cfs, .ncfs = 2, .create_if_missing = false};
  fl_kv_t *kv = NULL;
  fl_status_t st = fl_kv_open(argv[1], &o, &kv);
  if (st != FL_OK) {
    fprintf(stderr, "cli_flip: open %s: %s %s\n", argv[1], fl_status_str(st), fl_kv_last_error());
    return 1;
  }
  if (argc == 4) {
    int brc = flip_blob(kv, argv[3]);
    fl_kv_close(kv);
    return brc;
  }
  int rc = 1;
  uint8_t key[8];
  fl_put_be64(key, num);
  fl_sbuf_t v = {0};
  fl_block_t *b = NULL;
  fl_kv_cf_t *cf = fl_kv_cf(kv, "blocks");
  if (cf == NULL || fl_kv_get(kv, cf, NULL, FL_BUF(key, 8), &v) != FL_OK || v.len <= 32) {
    fprintf(stderr, "cli_flip: no block %llu\n", (unsigned long long)num);
    goto done;
  }
  if (fl_block_decode(v.data + 32, v.len - 32, &b, NULL) != FL_OK || b->n_envelopes == 0) {
    fprintf(stderr, "cli_flip: block %llu does not decode or is empty\n", (unsigned long long)num);
    goto done;
  }
  long at = find(v.data + 32, v.len - 32, b->envelopes[0].data, b->envelopes[0].len);
  if (at < 0) {
    fprintf(stderr, "cli_flip: envelope not found in the stored bytes\n");
    goto done;
  }
  size_t off = 32 + (size_t)at + b->envelopes[0].len / 2;
  v.data[off] ^= 0x01;
  if (fl_kv_put(kv, cf, FL_BUF(key, 8), fl_sbuf_view(&v), true) != FL_OK) {
    fprintf(stderr, "cli_flip: write failed: %s\n", fl_kv_last_error());
    goto done;
  }
  printf("flipped byte %zu of block %llu (%zu bytes)\n", off - 32, (unsigned long long)num,
         v.len - 32);
  rc = 0;
done:
  fl_block_free(b);
  fl_sbuf_free(&v);
  fl_kv_close(kv);
  return rc;
}
