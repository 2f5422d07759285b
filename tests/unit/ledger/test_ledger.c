/* SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests for peer/ledger against a real RocksDB in mkdtemp directories:
 * commit and read back (blocks, tx index, state versions, history in both
 * orders, blobs, range scans), reopen, refusal of wrong block numbers and of
 * reused tx ids, corruption found on open, snapshots read while another
 * thread commits, MVCC (stale reads, absent keys that appeared, in-block
 * dependencies, blind writes, range phantoms), fault injection through
 * fl_kv (a failed commit changes nothing and the next one succeeds), and
 * crashes: the binary re-executes itself as a child ("--crash-child") that
 * commits deterministic blocks in a loop and is SIGKILLed at random moments
 * (seeded), or _exit()s at a chosen write; after each death the parent
 * reopens the ledger and checks it against a replay of the committed blocks.
 * It prints a throughput figure for synced 100-tx blocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/crypto/hash.h"
#include "common/kv/kv.h"
#include "peer/ledger/ledger.h"

#define S(str) FL_BUF_STR(str)
#define VALID FL_LEDGER_TX_VALID
#define MVCC FL_LEDGER_TX_MVCC_READ_CONFLICT
#define PHANTOM FL_LEDGER_TX_PHANTOM_READ_CONFLICT

static const char *const self_exe = "/proc/self/exe";

/* ---- helpers ------------------------------------------------------------ */

static void rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (d != NULL) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
          continue;
        char *child = fl_sprintf("%s/%s", path, e->d_name);
        rm_rf(child);
        fl_free(child);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

typedef struct {
  char *dir;  /* mkdtemp directory, removed at teardown */
  char *db;   /* dir/ledger */
} fixture_t;

static int setup(void **state) {
  const char *tmp = getenv("TMPDIR");
  char *tmpl = fl_sprintf("%s/fl_ledger_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(tmpl) == NULL) {
    fl_free(tmpl);
    return -1;
  }
  fixture_t *f = fl_calloc(1, sizeof *f);
  f->dir = tmpl;
  f->db = fl_sprintf("%s/ledger", tmpl);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  rm_rf(f->dir);
  fl_free(f->dir);
  fl_free(f->db);
  fl_free(f);
  return 0;
}

static fl_ledger_t *open_ledger(const char *path) {
  fl_ledger_opts_t o = {.create_if_missing = true,
                        .block_cache_bytes = 8u << 20};
  fl_ledger_t *l = NULL;
  assert_int_equal(fl_ledger_open(path, &o, &l), FL_OK);
  assert_non_null(l);
  return l;
}

static void block_hash(fl_buf_t block, uint8_t out[FL_LEDGER_HASH_LEN]) {
  fl_sha256(block.data, block.len, out);
}

/* Commits `block` as the next block; returns the status. */
static fl_status_t commit(fl_ledger_t *l, uint64_t n, const char *block,
                          const fl_ledger_tx_t *txs, size_t ntx) {
  uint8_t h[FL_LEDGER_HASH_LEN];
  block_hash(S(block), h);
  return fl_ledger_commit(l, n, h, S(block), txs, ntx);
}

static void assert_state(fl_ledger_t *l, const fl_ledger_snap_t *snap,
                         const char *key, const char *want, uint64_t blk,
                         uint64_t tx) {
  fl_sbuf_t v = {0};
  fl_ledger_version_t ver = {99, 99};
  fl_status_t rc = fl_ledger_state_get(l, snap, S(key), &v, &ver);
  if (want == NULL) {
    assert_int_equal(rc, FL_NOTFOUND);
    assert_int_equal(v.len, 0);
  } else {
    assert_int_equal(rc, FL_OK);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.data, want, v.len);
    assert_int_equal(ver.block, blk);
    assert_int_equal(ver.tx, tx);
  }
  fl_sbuf_free(&v);
}

static void assert_txloc(fl_ledger_t *l, const char *id, uint64_t blk,
                         uint64_t tx, uint8_t code) {
  fl_ledger_txloc_t loc;
  assert_int_equal(fl_ledger_tx_get(l, NULL, S(id), &loc), FL_OK);
  assert_int_equal(loc.block, blk);
  assert_int_equal(loc.tx, tx);
  assert_int_equal(loc.code, code);
}

#define W(k, v) {.key = S(k), .value = S(v), .is_delete = false}
#define DEL(k) {.key = S(k), .is_delete = true}
#define TX(id, c, w) \
  {.tx_id = S(id), .code = (c), .writes = (w),    \
   .nwrites = sizeof(w) / sizeof((w)[0])}

/* ---- commit and read back ----------------------------------------------- */

static const char BLOB_A[] = "model weights, round 1";
static const char BLOB_B[] = "update weights from client 7";

/* Blocks 0 and 1 of the read-back tests. */
static void commit_two_blocks(fl_ledger_t *l) {
  fl_ledger_write_t w0[] = {W("a", "a0"), W("b", "b0"), W("c", "c0")};
  fl_ledger_tx_t b0[] = {TX("tx-genesis", VALID, w0)};
  assert_int_equal(commit(l, 0, "block zero", b0, 1), FL_OK);

  fl_ledger_write_t w10[] = {W("a", "a1"), W("d", "d1")};
  fl_ledger_write_t w11[] = {W("a", "never"), DEL("b")};
  fl_ledger_write_t w12[] = {DEL("c"), W("a", "a2")};
  fl_ledger_blob_t blobs[] = {{.data = S(BLOB_A)}, {.data = S(BLOB_A)}};
  uint8_t hb[32];
  fl_sha256(BLOB_B, strlen(BLOB_B), hb);
  fl_ledger_blob_t blobs2[] = {{.hash = hb, .data = S(BLOB_B)}};
  fl_ledger_tx_t b1[] = {TX("tx-1-0", VALID, w10), TX("tx-1-1", MVCC, w11),
                         TX("tx-1-2", VALID, w12)};
  b1[0].blobs = blobs;
  b1[0].nblobs = 2;
  b1[1].blobs = blobs2; /* invalid: not stored */
  b1[1].nblobs = 1;
  assert_int_equal(commit(l, 1, "block one", b1, 3), FL_OK);
}

static void check_two_blocks(fl_ledger_t *l) {
  assert_int_equal(fl_ledger_height(l), 2);
  uint8_t h[32], want[32];
  block_hash(S("block one"), want);
  assert_int_equal(fl_ledger_last_hash(l, h), FL_OK);
  assert_memory_equal(h, want, 32);

  /* blocks: exact bytes and hash */
  fl_sbuf_t b = {0};
  assert_int_equal(fl_ledger_block_get(l, NULL, 0, &b, h), FL_OK);
  assert_int_equal(b.len, strlen("block zero"));
  assert_memory_equal(b.data, "block zero", b.len);
  block_hash(S("block zero"), want);
  assert_memory_equal(h, want, 32);
  assert_int_equal(fl_ledger_block_get(l, NULL, 1, &b, NULL), FL_OK);
  assert_memory_equal(b.data, "block one", b.len);
  assert_int_equal(fl_ledger_block_get(l, NULL, 2, &b, NULL), FL_NOTFOUND);
  assert_int_equal(b.len, 0);
  fl_sbuf_free(&b);

  /* tx index, invalid txs included */
  assert_txloc(l, "tx-genesis", 0, 0, VALID);
  assert_txloc(l, "tx-1-0", 1, 0, VALID);
  assert_txloc(l, "tx-1-1", 1, 1, MVCC);
  assert_txloc(l, "tx-1-2", 1, 2, VALID);
  fl_ledger_txloc_t loc;
  assert_int_equal(fl_ledger_tx_get(l, NULL, S("nope"), &loc), FL_NOTFOUND);
  bool found = false;
  assert_int_equal(fl_ledger_tx_exists(l, S("tx-1-1"), &found), FL_OK);
  assert_true(found);
  assert_int_equal(fl_ledger_tx_exists(l, S("nope"), &found), FL_OK);
  assert_false(found);

  /* state: last valid writer wins, invalid tx ignored, deletes applied */
  assert_state(l, NULL, "a", "a2", 1, 2);
  assert_state(l, NULL, "b", "b0", 0, 0);
  assert_state(l, NULL, "c", NULL, 0, 0);
  assert_state(l, NULL, "d", "d1", 1, 0);

  /* range scan in key order with versions */
  fl_ledger_range_t *it = NULL;
  assert_int_equal(fl_ledger_range_new(l, NULL, S("b"), S("e"), &it), FL_OK);
  fl_buf_t k, v;
  fl_ledger_version_t ver;
  assert_int_equal(fl_ledger_range_next(it, &k, &v, &ver), FL_OK);
  assert_true(fl_buf_eq(k, S("b")) && fl_buf_eq(v, S("b0")));
  assert_true(ver.block == 0 && ver.tx == 0);
  assert_int_equal(fl_ledger_range_next(it, &k, &v, &ver), FL_OK);
  assert_true(fl_buf_eq(k, S("d")) && fl_buf_eq(v, S("d1")));
  assert_true(ver.block == 1 && ver.tx == 0);
  assert_int_equal(fl_ledger_range_next(it, &k, &v, &ver), FL_NOTFOUND);
  fl_ledger_range_free(it);
  assert_int_equal(fl_ledger_range_new(l, NULL, FL_BUF(NULL, 0),
                                       FL_BUF(NULL, 0), &it),
                   FL_OK);
  int n = 0;
  while (fl_ledger_range_next(it, &k, NULL, NULL) == FL_OK) n++;
  assert_int_equal(n, 3);
  fl_ledger_range_free(it);

  /* history of "a", oldest first: genesis, tx-1-0, tx-1-2 (not tx-1-1) */
  static const struct {
    uint64_t b, t;
    const char *id, *val;
  } ha[] = {{0, 0, "tx-genesis", "a0"}, {1, 0, "tx-1-0", "a1"},
            {1, 2, "tx-1-2", "a2"}};
  for (int dir = 0; dir < 2; dir++) {
    fl_ledger_hist_t *hi = NULL;
    assert_int_equal(fl_ledger_hist_new(l, NULL, S("a"), dir == 1, &hi), FL_OK);
    for (int i = 0; i < 3; i++) {
      int j = dir == 1 ? 2 - i : i;
      fl_ledger_mod_t m;
      assert_int_equal(fl_ledger_hist_next(hi, &m), FL_OK);
      assert_int_equal(m.block, ha[j].b);
      assert_int_equal(m.tx, ha[j].t);
      assert_true(fl_buf_eq(m.tx_id, S(ha[j].id)));
      assert_true(fl_buf_eq(m.value, S(ha[j].val)));
      assert_false(m.is_delete);
    }
    fl_ledger_mod_t m;
    assert_int_equal(fl_ledger_hist_next(hi, &m), FL_NOTFOUND);
    fl_ledger_hist_free(hi);
  }
  /* history of "c": written then deleted, newest first */
  fl_ledger_hist_t *hi = NULL;
  fl_ledger_mod_t m;
  assert_int_equal(fl_ledger_hist_new(l, NULL, S("c"), true, &hi), FL_OK);
  assert_int_equal(fl_ledger_hist_next(hi, &m), FL_OK);
  assert_true(m.is_delete && m.block == 1 && m.tx == 2 && m.value.len == 0);
  assert_true(fl_buf_eq(m.tx_id, S("tx-1-2")));
  assert_int_equal(fl_ledger_hist_next(hi, &m), FL_OK);
  assert_true(!m.is_delete && m.block == 0 && fl_buf_eq(m.value, S("c0")));
  assert_int_equal(fl_ledger_hist_next(hi, &m), FL_NOTFOUND);
  fl_ledger_hist_free(hi);
  /* "b" was deleted only by the invalid tx: one entry */
  assert_int_equal(fl_ledger_hist_new(l, NULL, S("b"), false, &hi), FL_OK);
  assert_int_equal(fl_ledger_hist_next(hi, &m), FL_OK);
  assert_int_equal(fl_ledger_hist_next(hi, &m), FL_NOTFOUND);
  fl_ledger_hist_free(hi);

  /* blobs: valid tx's blob stored (once), invalid tx's not */
  uint8_t ha_[32], hb_[32];
  fl_sha256(BLOB_A, strlen(BLOB_A), ha_);
  fl_sha256(BLOB_B, strlen(BLOB_B), hb_);
  fl_sbuf_t bl = {0};
  assert_int_equal(fl_ledger_blob_get(l, NULL, ha_, &bl), FL_OK);
  assert_int_equal(bl.len, strlen(BLOB_A));
  assert_memory_equal(bl.data, BLOB_A, bl.len);
  assert_int_equal(fl_ledger_blob_get(l, NULL, hb_, &bl), FL_NOTFOUND);
  fl_sbuf_free(&bl);
}

static void test_commit_and_read_back(void **state) {
  fixture_t *f = *state;
  fl_ledger_t *l = open_ledger(f->db);
  assert_int_equal(fl_ledger_height(l), 0);
  uint8_t h[32];
  assert_int_equal(fl_ledger_last_hash(l, h), FL_NOTFOUND);
  commit_two_blocks(l);
  check_two_blocks(l);
  fl_ledger_close(l);
}

static void test_reopen(void **state) {
  fixture_t *f = *state;
  fl_ledger_t *l = NULL;
  /* no ledger yet and no create flag */
  assert_int_equal(fl_ledger_open(f->db, NULL, &l), FL_NOTFOUND);
  assert_null(l);
  l = open_ledger(f->db);
  commit_two_blocks(l);
  fl_ledger_close(l);
  assert_int_equal(fl_ledger_open(f->db, NULL, &l), FL_OK);
  check_two_blocks(l);
  /* it goes on from the savepoint */
  fl_ledger_write_t w[] = {W("e", "e2")};
  fl_ledger_tx_t t[] = {TX("tx-2-0", VALID, w)};
  assert_int_equal(commit(l, 2, "block two", t, 1), FL_OK);
  fl_ledger_close(l);
  l = open_ledger(f->db);
  assert_int_equal(fl_ledger_height(l), 3);
  assert_state(l, NULL, "e", "e2", 2, 0);
  fl_ledger_close(l);
}

static void test_refusals(void **state) {
  fixture_t *f = *state;
  fl_ledger_t *l = open_ledger(f->db);
  fl_ledger_write_t w[] = {W("k", "v")};
  fl_ledger_tx_t t[] = {TX("tx-a", VALID, w)};
  /* wrong block numbers */
  assert_int_equal(commit(l, 1, "b1", t, 1), FL_ESTATE);
  assert_int_equal(commit(l, 0, "b0", t, 1), FL_OK);
  assert_int_equal(commit(l, 0, "b0", t, 1), FL_ESTATE);
  assert_int_equal(commit(l, 5, "b5", t, 1), FL_ESTATE);
  assert_int_equal(fl_ledger_height(l), 1);

  /* a valid tx reusing an indexed tx id */
  fl_ledger_write_t w2[] = {W("k", "stolen")};
  fl_ledger_tx_t dup[] = {TX("tx-a", VALID, w2)};
  assert_int_equal(commit(l, 1, "b1", dup, 1), FL_ECONFLICT);
  /* the same id twice among one block's valid txs */
  fl_ledger_tx_t dup2[] = {TX("tx-b", VALID, w2), TX("tx-b", VALID, w2)};
  assert_int_equal(commit(l, 1, "b1", dup2, 2), FL_ECONFLICT);
  assert_int_equal(fl_ledger_height(l), 1);
  assert_state(l, NULL, "k", "v", 0, 0);
  bool found = true;
  assert_int_equal(fl_ledger_tx_exists(l, S("tx-b"), &found), FL_OK);
  assert_false(found);

  /* marked invalid by the validator: commits, the original stays indexed */
  fl_ledger_tx_t replay[] = {TX("tx-a", FL_LEDGER_TX_DUPLICATE_TXID, w2),
                             TX("tx-c", VALID, w2)};
  assert_int_equal(commit(l, 1, "b1", replay, 2), FL_OK);
  assert_txloc(l, "tx-a", 0, 0, VALID);
  assert_txloc(l, "tx-c", 1, 1, VALID);
  assert_state(l, NULL, "k", "stolen", 1, 1);

  /* bad input */
  fl_ledger_tx_t noid[] = {{.code = VALID, .writes = w, .nwrites = 1}};
  assert_int_equal(commit(l, 2, "b2", noid, 1), FL_EINVAL);
  fl_ledger_write_t empty_key[] = {{.key = FL_BUF(NULL, 0), .value = S("x")}};
  fl_ledger_tx_t ek[] = {TX("tx-d", VALID, empty_key)};
  assert_int_equal(commit(l, 2, "b2", ek, 1), FL_EINVAL);
  uint8_t h[32] = {0};
  assert_int_equal(fl_ledger_commit(l, 2, h, FL_BUF(NULL, 0), NULL, 0),
                   FL_EINVAL);
  uint8_t *big = fl_calloc(1, FL_LEDGER_MAX_TXID_LEN + 1);
  fl_ledger_tx_t longid[] = {{.tx_id = FL_BUF(big, FL_LEDGER_MAX_TXID_LEN + 1),
                              .code = MVCC}};
  assert_int_equal(commit(l, 2, "b2", longid, 1), FL_ETOOBIG);
  fl_free(big);
  /* a blob whose declared hash is wrong */
  uint8_t wrong[32];
  fl_sha256("something else", 14, wrong);
  fl_ledger_blob_t bb[] = {{.hash = wrong, .data = S(BLOB_A)}};
  fl_ledger_tx_t bt[] = {TX("tx-e", VALID, w)};
  bt[0].blobs = bb;
  bt[0].nblobs = 1;
  assert_int_equal(commit(l, 2, "b2", bt, 1), FL_EMALFORMED);
  assert_int_equal(fl_ledger_height(l), 2);
  assert_int_equal(fl_ledger_tx_exists(l, S("tx-e"), &found), FL_OK);
  assert_false(found);
  /* an empty block with no txs is fine (and an invalid tx without id) */
  fl_ledger_tx_t anon[] = {{.code = 1}};
  assert_int_equal(commit(l, 2, "b2", anon, 1), FL_OK);
  assert_int_equal(commit(l, 3, "b3", NULL, 0), FL_OK);
  assert_int_equal(fl_ledger_height(l), 4);
  fl_ledger_close(l);
}

/* Keys with 0x00 inside: "k" and "k\0..." must keep separate histories. */
static void test_history_nul_keys(void **state) {
  fixture_t *f = *state;
  fl_ledger_t *l = open_ledger(f->db);
  /* k2 = "k" 0x00 + 16 bytes: its history key starts with k's prefix. */
  uint8_t k2[18] = {'k', 0};
  memset(k2 + 2, 0x00, 16);
  uint8_t k3[2] = {'k', 0};
  fl_ledger_write_t w[] = {{.key = S("k"), .value = S("v1")},
                           {.key = FL_BUF(k2, sizeof k2), .value = S("v2")},
                           {.key = FL_BUF(k3, sizeof k3), .value = S("v3")}};
  fl_ledger_tx_t t[] = {TX("tx-0", VALID, w)};
  assert_int_equal(commit(l, 0, "b0", t, 1), FL_OK);
  fl_ledger_write_t w1[] = {{.key = FL_BUF(k2, sizeof k2), .value = S("v4")}};
  fl_ledger_tx_t t1[] = {TX("tx-1", VALID, w1)};
  assert_int_equal(commit(l, 1, "b1", t1, 1), FL_OK);
  const fl_buf_t keys[] = {S("k"), FL_BUF(k2, sizeof k2), FL_BUF(k3, 2)};
  const int want[] = {1, 2, 1};
  for (int i = 0; i < 3; i++) {
    for (int dir = 0; dir < 2; dir++) {
      fl_ledger_hist_t *h = NULL;
      assert_int_equal(fl_ledger_hist_new(l, NULL, keys[i], dir, &h), FL_OK);
      fl_ledger_mod_t m;
      int n = 0;
      while (fl_ledger_hist_next(h, &m) == FL_OK) n++;
      assert_int_equal(n, want[i]);
      fl_ledger_hist_free(h);
    }
  }
  fl_ledger_close(l);
}

/* ---- corruption found on open ------------------------------------------- */

static fl_kv_t *open_raw(const char *path) {
  fl_kv_opts_t o = {0};
  fl_kv_t *kv = NULL;
  assert_int_equal(fl_kv_open(path, &o, &kv), FL_OK);
  return kv;
}

static void test_corruption_on_open(void **state) {
  fixture_t *f = *state;
  fl_ledger_t *l = open_ledger(f->db);
  commit_two_blocks(l);
  fl_ledger_close(l);

  /* a block beyond the savepoint is deleted on open */
  fl_kv_t *kv = open_raw(f->db);
  uint8_t key[8], rec[40] = {0};
  fl_put_be64(key, 2);
  memcpy(rec + 32, "junkjunk", 8);
  assert_int_equal(fl_kv_put(kv, fl_kv_cf(kv, "blocks"), FL_BUF(key, 8),
                             FL_BUF(rec, sizeof rec), true),
                   FL_OK);
  fl_kv_close(kv);
  assert_int_equal(fl_ledger_open(f->db, NULL, &l), FL_OK);
  assert_int_equal(fl_ledger_height(l), 2);
  fl_sbuf_t b = {0};
  assert_int_equal(fl_ledger_block_get(l, NULL, 2, &b, NULL), FL_NOTFOUND);
  fl_ledger_close(l);

  /* a blob whose bytes do not hash to its key is reported, not served */
  kv = open_raw(f->db);
  uint8_t ha[32];
  fl_sha256(BLOB_A, strlen(BLOB_A), ha);
  assert_int_equal(fl_kv_put(kv, fl_kv_cf(kv, "blobs"), FL_BUF(ha, 32),
                             S("tampered"), true),
                   FL_OK);
  fl_kv_close(kv);
  assert_int_equal(fl_ledger_open(f->db, NULL, &l), FL_OK);
  assert_int_equal(fl_ledger_blob_get(l, NULL, ha, &b), FL_ECORRUPT);
  fl_ledger_close(l);

  /* savepoint hash does not match its block */
  kv = open_raw(f->db);
  fl_kv_cf_t *meta = fl_kv_cf(kv, "meta");
  fl_sbuf_t sp = {0};
  assert_int_equal(fl_kv_get(kv, meta, NULL, S("savepoint"), &sp), FL_OK);
  assert_int_equal(sp.len, 40);
  uint8_t saved[40];
  memcpy(saved, sp.data, 40);
  sp.data[20] ^= 0x01;
  assert_int_equal(fl_kv_put(kv, meta, S("savepoint"), fl_sbuf_view(&sp), true),
                   FL_OK);
  fl_kv_close(kv);
  l = NULL;
  assert_int_equal(fl_ledger_open(f->db, NULL, &l), FL_ECORRUPT);
  assert_null(l);

  /* savepoint pointing at a missing block */
  kv = open_raw(f->db);
  meta = fl_kv_cf(kv, "meta");
  memcpy(sp.data, saved, 40);
  fl_put_be64(sp.data, 7);
  assert_int_equal(fl_kv_put(kv, meta, S("savepoint"), fl_sbuf_view(&sp), true),
                   FL_OK);
  fl_kv_close(kv);
  assert_int_equal(fl_ledger_open(f->db, NULL, &l), FL_ECORRUPT);

  /* a truncated savepoint record */
  kv = open_raw(f->db);
  meta = fl_kv_cf(kv, "meta");
  assert_int_equal(fl_kv_put(kv, meta, S("savepoint"), FL_BUF(saved, 39), true),
                   FL_OK);
  fl_kv_close(kv);
  assert_int_equal(fl_ledger_open(f->db, NULL, &l), FL_ECORRUPT);

  /* restoring the savepoint makes it whole again */
  kv = open_raw(f->db);
  meta = fl_kv_cf(kv, "meta");
  assert_int_equal(fl_kv_put(kv, meta, S("savepoint"), FL_BUF(saved, 40), true),
                   FL_OK);
  fl_kv_close(kv);
  assert_int_equal(fl_ledger_open(f->db, NULL, &l), FL_OK);
  assert_int_equal(fl_ledger_height(l), 2);
  fl_ledger_close(l);

  /* an unknown schema version */
  kv = open_raw(f->db);
  uint8_t sv[4];
  fl_put_be32(sv, 99);
  assert_int_equal(fl_kv_put(kv, fl_kv_cf(kv, "meta"), S("schema"),
                             FL_BUF(sv, 4), true),
                   FL_OK);
  fl_kv_close(kv);
  assert_int_equal(fl_ledger_open(f->db, NULL, &l), FL_ECORRUPT);
  fl_sbuf_free(&sp);
  fl_sbuf_free(&b);
}

/* ---- snapshots ----------------------------------------------------------- */

typedef struct {
  fl_ledger_t *l;
  atomic_int stop;
  int checks;
  int failures;
} reader_t;

/* Each block n writes "ctr" = n in tx 0: whatever the snapshot's height h,
 * it must see ctr written by block h-1. */
static void *reader_main(void *arg) {
  reader_t *r = arg;
  fl_sbuf_t v = {0};
  while (!atomic_load(&r->stop)) {
    fl_ledger_snap_t *s = NULL;
    if (fl_ledger_snap_new(r->l, &s) != FL_OK) {
      r->failures++;
      continue;
    }
    uint64_t h = fl_ledger_snap_height(s);
    fl_ledger_version_t ver;
    fl_status_t rc = fl_ledger_state_get(r->l, s, S("ctr"), &v, &ver);
    if (h == 0) {
      if (rc != FL_NOTFOUND) r->failures++;
    } else {
      char want[32];
      snprintf(want, sizeof want, "%" PRIu64, h - 1);
      if (rc != FL_OK || ver.block != h - 1 ||
          !fl_buf_eq(fl_sbuf_view(&v), S(want)))
        r->failures++;
      fl_sbuf_t blk = {0};
      if (fl_ledger_block_get(r->l, s, h - 1, &blk, NULL) != FL_OK ||
          fl_ledger_block_get(r->l, s, h, &blk, NULL) != FL_NOTFOUND)
        r->failures++;
      fl_sbuf_free(&blk);
    }
    r->checks++;
    fl_ledger_snap_free(s);
  }
  fl_sbuf_free(&v);
  return NULL;
}

static void test_snapshots(void **state) {
  fixture_t *f = *state;
  fl_ledger_t *l = open_ledger(f->db);
  fl_ledger_write_t w0[] = {W("x", "old"), W("ctr", "0")};
  fl_ledger_tx_t t0[] = {TX("tx-0", VALID, w0)};
  assert_int_equal(commit(l, 0, "b0", t0, 1), FL_OK);

  fl_ledger_snap_t *s = NULL;
  assert_int_equal(fl_ledger_snap_new(l, &s), FL_OK);
  assert_int_equal(fl_ledger_snap_height(s), 1);
  fl_ledger_write_t w1[] = {W("x", "new"), W("y", "y1"), W("ctr", "1")};
  fl_ledger_tx_t t1[] = {TX("tx-1", VALID, w1)};
  assert_int_equal(commit(l, 1, "b1", t1, 1), FL_OK);
  /* the snapshot still sees block 0's world */
  assert_state(l, s, "x", "old", 0, 0);
  assert_state(l, s, "y", NULL, 0, 0);
  assert_state(l, NULL, "x", "new", 1, 0);
  fl_ledger_txloc_t loc;
  assert_int_equal(fl_ledger_tx_get(l, s, S("tx-1"), &loc), FL_NOTFOUND);
  fl_ledger_hist_t *h = NULL;
  assert_int_equal(fl_ledger_hist_new(l, s, S("x"), true, &h), FL_OK);
  fl_ledger_mod_t m;
  assert_int_equal(fl_ledger_hist_next(h, &m), FL_OK);
  assert_true(fl_buf_eq(m.value, S("old")));
  assert_int_equal(fl_ledger_hist_next(h, &m), FL_NOTFOUND);
  fl_ledger_hist_free(h);
  fl_ledger_range_t *it = NULL;
  assert_int_equal(fl_ledger_range_new(l, s, S("x"), S("z"), &it), FL_OK);
  int n = 0;
  fl_buf_t k;
  while (fl_ledger_range_next(it, &k, NULL, NULL) == FL_OK) n++;
  assert_int_equal(n, 1);
  fl_ledger_range_free(it);
  fl_ledger_snap_free(s);

  /* readers on another thread while blocks commit */
  reader_t r = {.l = l};
  atomic_init(&r.stop, 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
  for (uint64_t b = 2; b < 80; b++) {
    char val[32], id[32], blk[32];
    snprintf(val, sizeof val, "%" PRIu64, b);
    snprintf(id, sizeof id, "tx-%" PRIu64, b);
    snprintf(blk, sizeof blk, "block %" PRIu64, b);
    fl_ledger_write_t w[] = {{.key = S("ctr"), .value = S(val)},
                             {.key = S(id), .value = S(val)}};
    fl_ledger_tx_t t[] = {{.tx_id = S(id), .code = VALID, .writes = w,
                           .nwrites = 2}};
    assert_int_equal(commit(l, b, blk, t, 1), FL_OK);
  }
  atomic_store(&r.stop, 1);
  pthread_join(th, NULL);
  assert_int_equal(r.failures, 0);
  assert_true(r.checks > 0);
  fl_ledger_close(l);
}

/* ---- MVCC ---------------------------------------------------------------- */

#define RD(k, b, t) {.key = S(k), .exists = true, .version = {(b), (t)}}
#define ABSENT(k) {.key = S(k), .exists = false}

static void mvcc(fl_ledger_t *l, const fl_ledger_mvcc_tx_t *txs, size_t n,
                 const uint8_t *want) {
  uint8_t codes[16];
  memset(codes, 0xee, sizeof codes);
  assert_int_equal(fl_ledger_mvcc_check(l, fl_ledger_height(l), txs, n, codes),
                   FL_OK);
  for (size_t i = 0; i < n; i++) {
    if (codes[i] != want[i])
      fail_msg("tx %zu: code %d, want %d", i, codes[i], want[i]);
  }
}

static void test_mvcc_point_reads(void **state) {
  fixture_t *f = *state;
  fl_ledger_t *l = open_ledger(f->db);
  fl_ledger_write_t w0[] = {W("a", "1"), W("b", "1")};
  fl_ledger_tx_t t0[] = {TX("tx-0", VALID, w0)};
  assert_int_equal(commit(l, 0, "b0", t0, 1), FL_OK);
  fl_ledger_write_t w1[] = {W("a", "2")};
  fl_ledger_tx_t t1[] = {TX("tx-1", VALID, w1)};
  assert_int_equal(commit(l, 1, "b1", t1, 1), FL_OK);

  /* current, stale, absent-but-exists, absent-and-absent */
  fl_ledger_read_t ok[] = {RD("a", 1, 0), RD("b", 0, 0), ABSENT("zz")};
  fl_ledger_read_t stale[] = {RD("a", 0, 0)};
  fl_ledger_read_t appeared[] = {ABSENT("b")};
  fl_ledger_read_t vanished[] = {RD("gone", 0, 0)};
  fl_ledger_mvcc_tx_t txs[] = {
      {.code = VALID, .reads = ok, .nreads = 3},
      {.code = VALID, .reads = stale, .nreads = 1},
      {.code = VALID, .reads = appeared, .nreads = 1},
      {.code = VALID, .reads = vanished, .nreads = 1},
  };
  mvcc(l, txs, 4, (const uint8_t[]){VALID, MVCC, MVCC, MVCC});

  /* in-block: tx0 writes a; tx1 read a at its committed version -> conflict;
   * tx2 read a too but tx0 was already invalid -> no dependency */
  fl_ledger_write_t wa[] = {W("a", "3")};
  fl_ledger_read_t ra[] = {RD("a", 1, 0)};
  fl_ledger_mvcc_tx_t dep[] = {
      {.code = VALID, .writes = wa, .nwrites = 1},
      {.code = VALID, .reads = ra, .nreads = 1},
  };
  mvcc(l, dep, 2, (const uint8_t[]){VALID, MVCC});
  fl_ledger_mvcc_tx_t nodep[] = {
      {.code = FL_LEDGER_TX_DUPLICATE_TXID, .writes = wa, .nwrites = 1},
      {.code = VALID, .reads = ra, .nreads = 1},
  };
  mvcc(l, nodep, 2, (const uint8_t[]){FL_LEDGER_TX_DUPLICATE_TXID, VALID});
  /* a tx that lost MVCC does not count either */
  fl_ledger_mvcc_tx_t lost[] = {
      {.code = VALID, .reads = stale, .nreads = 1, .writes = wa, .nwrites = 1},
      {.code = VALID, .reads = ra, .nreads = 1, .writes = wa, .nwrites = 1},
      {.code = VALID, .reads = ra, .nreads = 1},
  };
  mvcc(l, lost, 3, (const uint8_t[]){MVCC, VALID, MVCC});
  /* in-block delete then read-absent: still a conflict */
  fl_ledger_write_t db[] = {DEL("b")};
  fl_ledger_read_t rb[] = {ABSENT("b")};
  fl_ledger_mvcc_tx_t del[] = {
      {.code = VALID, .writes = db, .nwrites = 1},
      {.code = VALID, .reads = rb, .nreads = 1},
  };
  mvcc(l, del, 2, (const uint8_t[]){VALID, MVCC});

  /* blind writes never conflict, also on the same key */
  fl_ledger_mvcc_tx_t blind[] = {
      {.code = VALID, .writes = wa, .nwrites = 1},
      {.code = VALID, .writes = wa, .nwrites = 1},
      {.code = VALID, .writes = db, .nwrites = 1},
  };
  mvcc(l, blind, 3, (const uint8_t[]){VALID, VALID, VALID});

  /* the same key read by many txs: answers stay right (served from cache) */
  fl_ledger_mvcc_tx_t many[8];
  for (int i = 0; i < 8; i++)
    many[i] = (fl_ledger_mvcc_tx_t){.code = VALID,
                                    .reads = i % 2 ? stale : ra, .nreads = 1};
  mvcc(l, many, 8, (const uint8_t[]){VALID, MVCC, VALID, MVCC, VALID, MVCC,
                                      VALID, MVCC});

  /* wrong block number, bad arguments */
  uint8_t c[1];
  assert_int_equal(fl_ledger_mvcc_check(l, 5, txs, 1, c), FL_ESTATE);
  assert_int_equal(fl_ledger_mvcc_check(l, 2, NULL, 1, c), FL_EINVAL);
  fl_ledger_mvcc_tx_t bad[] = {{.code = VALID, .reads = NULL, .nreads = 2}};
  assert_int_equal(fl_ledger_mvcc_check(l, 2, bad, 1, c), FL_EINVAL);
  assert_int_equal(fl_ledger_mvcc_check(l, 2, NULL, 0, NULL), FL_OK);
  fl_ledger_close(l);
}

static void test_mvcc_phantoms(void **state) {
  fixture_t *f = *state;
  fl_ledger_t *l = open_ledger(f->db);
  fl_ledger_write_t w0[] = {W("r1", "x"), W("r3", "x"), W("r7", "x"),
                            W("s1", "x")};
  fl_ledger_tx_t t0[] = {TX("tx-0", VALID, w0)};
  assert_int_equal(commit(l, 0, "b0", t0, 1), FL_OK);

  fl_ledger_read_t seen[] = {RD("r1", 0, 0), RD("r3", 0, 0), RD("r7", 0, 0)};
  fl_ledger_range_read_t full = {.start = S("r"), .end = S("s"),
                                 .reads = seen, .nreads = 3, .exhausted = true};
  fl_ledger_range_read_t open_end = {.start = S("r"), .reads = seen,
                                     .nreads = 3, .exhausted = true};
  /* limited scan: saw r1 only, then stopped */
  fl_ledger_range_read_t limited = {.start = S("r"), .end = S("s"),
                                    .reads = seen, .nreads = 1,
                                    .exhausted = false};
  fl_ledger_range_read_t wrong_ver = full;
  fl_ledger_read_t seen_bad[] = {RD("r1", 0, 0), RD("r3", 0, 1),
                                 RD("r7", 0, 0)};
  wrong_ver.reads = seen_bad;
  fl_ledger_mvcc_tx_t now[] = {
      {.code = VALID, .ranges = &full, .nranges = 1},
      {.code = VALID, .ranges = &open_end, .nranges = 1},
      {.code = VALID, .ranges = &limited, .nranges = 1},
      {.code = VALID, .ranges = &wrong_ver, .nranges = 1},
  };
  /* open_end also sees s1: phantom */
  mvcc(l, now, 4, (const uint8_t[]){VALID, PHANTOM, VALID, PHANTOM});

  /* in-block: an earlier valid tx inserts r5 (inside), or s5 (outside) */
  fl_ledger_write_t ins[] = {W("r5", "y")};
  fl_ledger_write_t out[] = {W("s5", "y")};
  fl_ledger_write_t after_limit[] = {W("r4", "y")};
  fl_ledger_mvcc_tx_t inblock[] = {
      {.code = VALID, .writes = out, .nwrites = 1},
      {.code = VALID, .ranges = &full, .nranges = 1},
      {.code = VALID, .writes = after_limit, .nwrites = 1},
      {.code = VALID, .ranges = &limited, .nranges = 1},  /* r4 > r1: fine */
      {.code = VALID, .writes = ins, .nwrites = 1},
      {.code = VALID, .ranges = &full, .nranges = 1},
  };
  mvcc(l, inblock, 6, (const uint8_t[]){VALID, VALID, VALID, VALID, VALID,
                                         PHANTOM});

  /* committed insert r5 -> phantom for the full scan, not the limited one */
  fl_ledger_tx_t t1[] = {TX("tx-1", VALID, ins)};
  assert_int_equal(commit(l, 1, "b1", t1, 1), FL_OK);
  fl_ledger_mvcc_tx_t after_ins[] = {
      {.code = VALID, .ranges = &full, .nranges = 1},
      {.code = VALID, .ranges = &limited, .nranges = 1},
  };
  mvcc(l, after_ins, 2, (const uint8_t[]){PHANTOM, VALID});

  /* committed delete of r3 -> phantom for a scan that saw it */
  fl_ledger_read_t seen2[] = {RD("r1", 0, 0), RD("r3", 0, 0), RD("r5", 1, 0),
                              RD("r7", 0, 0)};
  fl_ledger_range_read_t full2 = {.start = S("r"), .end = S("s"),
                                  .reads = seen2, .nreads = 4,
                                  .exhausted = true};
  mvcc(l, &(fl_ledger_mvcc_tx_t){.code = VALID, .ranges = &full2, .nranges = 1},
       1, (const uint8_t[]){VALID});
  fl_ledger_write_t d3[] = {DEL("r3")};
  fl_ledger_tx_t t2[] = {TX("tx-2", VALID, d3)};
  assert_int_equal(commit(l, 2, "b2", t2, 1), FL_OK);
  mvcc(l, &(fl_ledger_mvcc_tx_t){.code = VALID, .ranges = &full2, .nranges = 1},
       1, (const uint8_t[]){PHANTOM});
  /* in-block delete inside the range -> phantom */
  fl_ledger_read_t seen3[] = {RD("r1", 0, 0), RD("r5", 1, 0), RD("r7", 0, 0)};
  fl_ledger_range_read_t full3 = {.start = S("r"), .end = S("s"),
                                  .reads = seen3, .nreads = 3,
                                  .exhausted = true};
  fl_ledger_write_t d7[] = {DEL("r7")};
  fl_ledger_mvcc_tx_t indel[] = {
      {.code = VALID, .ranges = &full3, .nranges = 1},
      {.code = VALID, .writes = d7, .nwrites = 1},
      {.code = VALID, .ranges = &full3, .nranges = 1},
  };
  mvcc(l, indel, 3, (const uint8_t[]){VALID, VALID, PHANTOM});
  /* a point-read conflict is reported as MVCC even with a bad range too */
  fl_ledger_read_t st[] = {RD("r1", 9, 9)};
  mvcc(l, &(fl_ledger_mvcc_tx_t){.code = VALID, .reads = st, .nreads = 1,
                                 .ranges = &full, .nranges = 1},
       1, (const uint8_t[]){MVCC});
  fl_ledger_close(l);
}

/* ---- fault injection --------------------------------------------------- */

static void test_fault_injection(void **state) {
  fixture_t *f = *state;
  fl_ledger_t *l = open_ledger(f->db);
  fl_ledger_write_t w0[] = {W("a", "0")};
  fl_ledger_tx_t t0[] = {TX("tx-0", VALID, w0)};
  assert_int_equal(commit(l, 0, "b0", t0, 1), FL_OK);

  fl_ledger_write_t w1[] = {W("a", "1"), W("n", "new")};
  fl_ledger_blob_t bl[] = {{.data = S(BLOB_B)}};
  fl_ledger_tx_t t1[] = {TX("tx-1", VALID, w1)};
  t1[0].blobs = bl;
  t1[0].nblobs = 1;
  for (int round = 0; round < 2; round++) {
    fl_kv_fault_t fault = {.mode = FL_KV_FAULT_FAIL, .nth = 1,
                           .rc = round == 0 ? FL_EIO : FL_ENOSPC};
    assert_int_equal(fl_kv_fault_set(fl_ledger_kv(l), &fault), FL_OK);
    assert_int_equal(commit(l, 1, "b1", t1, 1),
                     round == 0 ? FL_EIO : FL_ENOSPC);
    /* nothing of block 1 is visible */
    assert_int_equal(fl_ledger_height(l), 1);
    uint8_t h[32], want[32];
    block_hash(S("b0"), want);
    assert_int_equal(fl_ledger_last_hash(l, h), FL_OK);
    assert_memory_equal(h, want, 32);
    assert_state(l, NULL, "a", "0", 0, 0);
    assert_state(l, NULL, "n", NULL, 0, 0);
    fl_sbuf_t b = {0};
    assert_int_equal(fl_ledger_block_get(l, NULL, 1, &b, NULL), FL_NOTFOUND);
    uint8_t hb[32];
    fl_sha256(BLOB_B, strlen(BLOB_B), hb);
    assert_int_equal(fl_ledger_blob_get(l, NULL, hb, &b), FL_NOTFOUND);
    fl_sbuf_free(&b);
    bool found = true;
    assert_int_equal(fl_ledger_tx_exists(l, S("tx-1"), &found), FL_OK);
    assert_false(found);
  }
  /* the fault was for one write only: the retry commits */
  assert_int_equal(commit(l, 1, "b1", t1, 1), FL_OK);
  assert_int_equal(fl_ledger_height(l), 2);
  assert_state(l, NULL, "a", "1", 1, 0);
  fl_ledger_close(l);

  /* and the failed attempts left nothing behind on disk either */
  assert_int_equal(fl_ledger_open(f->db, NULL, &l), FL_OK);
  assert_int_equal(fl_ledger_height(l), 2);
  fl_ledger_hist_t *h = NULL;
  assert_int_equal(fl_ledger_hist_new(l, NULL, S("a"), false, &h), FL_OK);
  fl_ledger_mod_t m;
  int n = 0;
  while (fl_ledger_hist_next(h, &m) == FL_OK) n++;
  assert_int_equal(n, 2);
  fl_ledger_hist_free(h);
  fl_ledger_close(l);
}

/* ---- crash recovery ---------------------------------------------------------
 * Deterministic blocks: block n has 1 + n % 5 txs; tx t has 3 writes to keys
 * k00..k39 (some deletes) and is invalid when (7n + t) % 6 == 5; tx 0 of
 * every block stores one of 10 blobs. Child and parent both build them. */

#define NKEYS 40

typedef struct gen_block_s {
  char bytes[160];
  uint8_t hash[32];
  size_t ntx;
  char ids[5][32];
  char keys[5][3][8];
  char vals[5][3][40];
  char blob[32];
  fl_ledger_write_t w[5][3];
  fl_ledger_blob_t bl[1];
  fl_ledger_tx_t tx[5];
} gen_block_t;

static void gen_block(uint64_t n, gen_block_t *g) {
  memset(g, 0, sizeof *g);
  snprintf(g->bytes, sizeof g->bytes,
           "block %" PRIu64 " | some payload bytes that stand for envelopes",
           n);
  block_hash(S(g->bytes), g->hash);
  g->ntx = 1 + n % 5;
  snprintf(g->blob, sizeof g->blob, "blob-%" PRIu64, n % 10);
  g->bl[0].data = S(g->blob);
  for (size_t t = 0; t < g->ntx; t++) {
    snprintf(g->ids[t], sizeof g->ids[t], "tx-%" PRIu64 "-%zu", n, t);
    for (size_t w = 0; w < 3; w++) {
      unsigned k = (unsigned)((n * 13 + t * 5 + w * 3) % NKEYS);
      snprintf(g->keys[t][w], sizeof g->keys[t][w], "k%02u", k);
      snprintf(g->vals[t][w], sizeof g->vals[t][w],
               "v-%" PRIu64 "-%zu-%zu", n, t, w);
      g->w[t][w] = (fl_ledger_write_t){
          .key = S(g->keys[t][w]), .value = S(g->vals[t][w]),
          .is_delete = (n + t + w) % 7 == 0};
    }
    g->tx[t] = (fl_ledger_tx_t){
        .tx_id = S(g->ids[t]),
        .code = (7 * n + t) % 6 == 5 ? MVCC : VALID,
        .writes = g->w[t], .nwrites = 3,
        .blobs = t == 0 ? g->bl : NULL, .nblobs = t == 0 ? 1 : 0};
  }
}

/* Child: commit blocks forever, report each acknowledged number on fd. */
static int crash_child(const char *db, const char *fault_spec, int fd) {
  fl_log_configure("error");
  fl_kv_fault_t fault;
  fl_ledger_opts_t o = {.create_if_missing = true,
                        .block_cache_bytes = 8u << 20};
  if (strcmp(fault_spec, "none") != 0) {
    if (fl_kv_fault_parse(fault_spec, &fault) != FL_OK) return 2;
    o.fault = &fault;
  }
  fl_ledger_t *l = NULL;
  if (fl_ledger_open(db, &o, &l) != FL_OK) return 3;
  uint8_t ready[8];
  memset(ready, 0xff, sizeof ready);  /* "opened": not a block number */
  if (write(fd, ready, 8) != 8) return 5;
  gen_block_t *g = fl_malloc(sizeof *g);
  for (int i = 0; i < 100000; i++) {
    uint64_t n = fl_ledger_height(l);
    gen_block(n, g);
    if (fl_ledger_commit(l, n, g->hash, S(g->bytes), g->tx, g->ntx) != FL_OK)
      return 4;
    uint8_t ack[8];
    fl_put_be64(ack, n);
    if (write(fd, ack, 8) != 8) return 5;
  }
  fl_free(g);
  fl_ledger_close(l);
  return 0;
}

typedef struct expect_s {
  bool present[NKEYS];
  char val[NKEYS][40];
  fl_ledger_version_t ver[NKEYS];
  int nhist[NKEYS];
  bool blob[10];
} expect_t;

/* Opens the ledger after a crash and checks it against a replay. Returns
 * the height. */
static uint64_t verify_ledger(const char *db) {
  fl_ledger_t *l = NULL;
  fl_status_t rc = fl_ledger_open(db, NULL, &l);
  if (rc == FL_NOTFOUND) return 0;  /* killed before the ledger existed */
  assert_int_equal(rc, FL_OK);
  uint64_t height = fl_ledger_height(l);
  expect_t *e = fl_calloc(1, sizeof *e);
  gen_block_t *g = fl_malloc(sizeof *g);
  fl_sbuf_t b = {0};
  uint8_t h[32];
  for (uint64_t n = 0; n < height; n++) {
    gen_block(n, g);
    assert_int_equal(fl_ledger_block_get(l, NULL, n, &b, h), FL_OK);
    assert_int_equal(b.len, strlen(g->bytes));
    assert_memory_equal(b.data, g->bytes, b.len);
    assert_memory_equal(h, g->hash, 32);
    for (size_t t = 0; t < g->ntx; t++) {
      assert_txloc(l, g->ids[t], n, t, g->tx[t].code);
      if (g->tx[t].code != VALID) continue;
      if (t == 0) e->blob[n % 10] = true;
      for (size_t w = 0; w < 3; w++) {
        unsigned k = (unsigned)atoi(g->keys[t][w] + 1);
        e->present[k] = !g->w[t][w].is_delete;
        snprintf(e->val[k], sizeof e->val[k], "%s", g->vals[t][w]);
        e->ver[k] = (fl_ledger_version_t){n, t};
        e->nhist[k]++;
      }
    }
  }
  if (height > 0) {
    gen_block(height - 1, g);
    assert_int_equal(fl_ledger_last_hash(l, h), FL_OK);
    assert_memory_equal(h, g->hash, 32);
  }
  /* nothing of the next block: not its bytes, not its tx ids */
  assert_int_equal(fl_ledger_block_get(l, NULL, height, &b, NULL), FL_NOTFOUND);
  gen_block(height, g);
  for (size_t t = 0; t < g->ntx; t++) {
    bool found = true;
    assert_int_equal(fl_ledger_tx_exists(l, S(g->ids[t]), &found), FL_OK);
    assert_false(found);
  }
  /* state equals the replay, history counts too */
  size_t npresent = 0;
  for (unsigned k = 0; k < NKEYS; k++) {
    char key[8];
    snprintf(key, sizeof key, "k%02u", k);
    if (e->present[k]) {
      assert_state(l, NULL, key, e->val[k], e->ver[k].block, e->ver[k].tx);
      npresent++;
    } else {
      assert_state(l, NULL, key, NULL, 0, 0);
    }
    fl_ledger_hist_t *hi = NULL;
    assert_int_equal(fl_ledger_hist_new(l, NULL, S(key), true, &hi), FL_OK);
    fl_ledger_mod_t m;
    int cnt = 0;
    while (fl_ledger_hist_next(hi, &m) == FL_OK) cnt++;
    fl_ledger_hist_free(hi);
    assert_int_equal(cnt, e->nhist[k]);
  }
  fl_ledger_range_t *it = NULL;
  assert_int_equal(fl_ledger_range_new(l, NULL, FL_BUF(NULL, 0),
                                       FL_BUF(NULL, 0), &it),
                   FL_OK);
  size_t cnt = 0;
  fl_buf_t k;
  while (fl_ledger_range_next(it, &k, NULL, NULL) == FL_OK) cnt++;
  fl_ledger_range_free(it);
  assert_int_equal(cnt, npresent);
  /* blobs stored by valid txs are there and intact; the others are not */
  for (unsigned i = 0; i < 10; i++) {
    char blob[32];
    snprintf(blob, sizeof blob, "blob-%u", i);
    uint8_t bh[32];
    fl_sha256(blob, strlen(blob), bh);
    assert_int_equal(fl_ledger_blob_get(l, NULL, bh, &b),
                     e->blob[i] ? FL_OK : FL_NOTFOUND);
    if (e->blob[i]) assert_true(fl_buf_eq(fl_sbuf_view(&b), S(blob)));
  }
  fl_sbuf_free(&b);
  fl_free(g);
  fl_free(e);
  fl_ledger_close(l);
  return height;
}

/* Starts a crash child on db; returns its pid and the read end of its
 * acknowledgement pipe. */
static pid_t spawn_child(const char *db, const char *fault, int *rfd) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", p[1]);
    /* A fresh process image: RocksDB's thread pools do not survive fork. */
    execl(self_exe, self_exe, "--crash-child", db, fault, fdarg, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  *rfd = p[0];
  return pid;
}

/* Reads the child's acknowledgements until EOF; returns the last acked block
 * number + 1, or 0 when none. */
static uint64_t drain_acks(int fd) {
  uint64_t acked = 0;
  uint8_t buf[8 * 64];
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, sizeof buf - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    have += (size_t)r;
    size_t whole = have / 8 * 8;
    if (whole > 0 && fl_get_be64(buf + whole - 8) != UINT64_MAX) {
      acked = fl_get_be64(buf + whole - 8) + 1;
    }
    if (whole > 0) {
      memmove(buf, buf + whole, have - whole);
      have -= whole;
    }
  }
  close(fd);
  return acked;
}

static void test_crash_sigkill(void **state) {
  fixture_t *f = *state;
  const char *seed_env = getenv("FL_LEDGER_CRASH_SEED");
  unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : 20261121u;
  srand(seed);
  printf("crash test seed=%u (FL_LEDGER_CRASH_SEED)\n", seed);
  uint64_t prev = 0;
  int mid_commit_kills = 0;
  for (int round = 0; round < 50; round++) {
    int rfd;
    pid_t pid = spawn_child(f->db, "none", &rfd);
    /* One round in five is killed 0-30 ms after exec, which lands in
     * process start-up, RocksDB open or recovery; the others wait until the
     * ledger is open and kill 0-40 ms into the commit loop. */
    if (rand() % 5 != 0) {
      struct pollfd pfd = {.fd = rfd, .events = POLLIN};
      assert_int_equal(poll(&pfd, 1, 20000), 1);
      uint8_t ready[8];
      assert_int_equal(read(rfd, ready, 8), 8);
      assert_int_equal(fl_get_be64(ready), UINT64_MAX);
    }
    long delay_us = rand() % 40000;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = delay_us * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st))
      fail_msg("child exited with %d before the kill",
               WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    uint64_t acked = drain_acks(rfd);
    uint64_t h = verify_ledger(f->db);
    /* every acknowledged block survived; at most one more (written, not yet
     * acknowledged); and the ledger never goes backwards */
    assert_true(h >= prev);
    if (acked > 0) {
      assert_true(h >= acked);
      assert_true(h <= acked + 1);
    } else {
      assert_true(h <= prev + 1);
    }
    if (h > prev) mid_commit_kills++;
    prev = h;
  }
  printf("crash test: 50 SIGKILLs, final height=%" PRIu64
         ", rounds that made progress=%d\n",
         prev, mid_commit_kills);
  assert_true(prev > 0);
  /* typically 35-45 of 50; low only if the machine is badly overloaded */
  assert_true(mid_commit_kills >= 10);
}

/* Precise cuts via fl_kv's exit faults: just before or just after the 3rd
 * commit's batch write. */
static void test_crash_exit_at_write(void **state) {
  fixture_t *f = *state;
  int rfd;
  pid_t pid = spawn_child(f->db, "exit-after:3", &rfd);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 86);
  assert_int_equal(drain_acks(rfd), 2);  /* the 3rd returned no ack */
  assert_int_equal(verify_ledger(f->db), 3);  /* but it is durable */

  pid = spawn_child(f->db, "exit-before:2", &rfd);
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 86);
  assert_int_equal(drain_acks(rfd), 4);  /* block 3 acked, 4 never written */
  assert_int_equal(verify_ledger(f->db), 4);
}

/* ---- throughput -------------------------------------------------------- */

static void test_throughput(void **state) {
  fixture_t *f = *state;
  fl_ledger_t *l = open_ledger(f->db);
  enum { NTX = 100, NW = 3 };
  fl_ledger_tx_t *txs = fl_calloc(NTX, sizeof *txs);
  fl_ledger_write_t *ws = fl_calloc(NTX * NW, sizeof *ws);
  fl_ledger_mvcc_tx_t *mt = fl_calloc(NTX, sizeof *mt);
  fl_ledger_read_t *rs = fl_calloc(NTX, sizeof *rs);
  char (*ids)[40] = fl_calloc(NTX, sizeof *ids);
  char (*keys)[NW][40] = fl_calloc(NTX, sizeof *keys);
  char val[64];
  memset(val, 'v', sizeof val);
  uint8_t *codes = fl_malloc(NTX);
  char block[4096];
  memset(block, 'b', sizeof block);
  uint64_t t0 = fl_mono_ns(), mvcc_ns = 0;
  uint64_t nblocks = 0;
  while (nblocks < 400 && fl_mono_ns() - t0 < 2000000000ull) {
    uint64_t n = fl_ledger_height(l);
    for (int t = 0; t < NTX; t++) {
      snprintf(ids[t], sizeof ids[t], "bench-tx-%" PRIu64 "-%d", n, t);
      for (int w = 0; w < NW; w++) {
        snprintf(keys[t][w], sizeof keys[t][w],
                 "update/task1/%" PRIu64 "/%d/%d", n, t, w);
        ws[t * NW + w] = (fl_ledger_write_t){.key = S(keys[t][w]),
                                             .value = FL_BUF(val, sizeof val)};
      }
      txs[t] = (fl_ledger_tx_t){.tx_id = S(ids[t]), .code = VALID,
                                .writes = &ws[t * NW], .nwrites = NW};
      rs[t] = (fl_ledger_read_t){.key = S(keys[t][0]), .exists = false};
      mt[t] = (fl_ledger_mvcc_tx_t){.code = VALID, .reads = &rs[t], .nreads = 1,
                                    .writes = &ws[t * NW], .nwrites = NW};
    }
    uint64_t m0 = fl_mono_ns();
    assert_int_equal(fl_ledger_mvcc_check(l, n, mt, NTX, codes), FL_OK);
    mvcc_ns += fl_mono_ns() - m0;
    uint8_t h[32];
    fl_put_be64((uint8_t *)block, n);
    block_hash(FL_BUF(block, sizeof block), h);
    assert_int_equal(fl_ledger_commit(l, n, h, FL_BUF(block, sizeof block),
                                      txs, NTX),
                     FL_OK);
    nblocks++;
  }
  double secs = (double)(fl_mono_ns() - t0) / 1e9;
  printf("ledger throughput: %" PRIu64 " blocks of %d txs x %d writes, synced:"
         " %.1f blocks/s, %.0f tx/s (mvcc %.2f ms/block)\n",
         nblocks, NTX, NW, (double)nblocks / secs,
         (double)nblocks * NTX / secs, (double)mvcc_ns / 1e6 / (double)nblocks);
  assert_true(nblocks > 0);
  fl_free(codes);
  fl_free(keys);
  fl_free(ids);
  fl_free(rs);
  fl_free(mt);
  fl_free(ws);
  fl_free(txs);
  fl_ledger_close(l);
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--crash-child") == 0)
    return crash_child(argv[2], argv[3], atoi(argv[4]));
  fl_log_configure("error");
  (void)fl_log_configure_from_env();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_commit_and_read_back, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_history_nul_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corruption_on_open, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshots, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mvcc_point_reads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mvcc_phantoms, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fault_injection, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_sigkill, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_exit_at_write, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
  };
  return cmocka_run_group_tests_name("ledger", tests, NULL, NULL);
}
