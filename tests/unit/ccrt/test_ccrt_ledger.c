/* SPDX-License-Identifier: Apache-2.0
 *
 * test_ccrt_ledger.c: the chaincode runtime over the real ledger
 * (peer/ledger, RocksDB in a mkdtemp directory). It carries the state ops
 * adapter the endorser needs (fl_ccrt_state_ops_t over a ledger snapshot),
 * simulates kvstore and script proposals against committed blocks, checks the
 * recorded versions and history against what the ledger committed, and
 * closes the loop: the simulated write set commits, and the ledger's MVCC
 * check accepts a fresh read set and rejects stale reads and phantoms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/crypto/hash.h"
#include "peer/ledger/ledger.h"
#include "tests/unit/ccrt/test_ccrt.h"

/* ---- the adapter: state ops over a ledger snapshot -------------------------- */

typedef struct lstate_s {
  fl_ledger_t *l;
  fl_ledger_snap_t *snap;
} lstate_t;

static fl_status_t l_get(void *ctx, fl_buf_t key, fl_sbuf_t *val, fl_ccrt_version_t *ver) {
  lstate_t *s = ctx;
  fl_ledger_version_t v = {0};
  fl_status_t rc = fl_ledger_state_get(s->l, s->snap, key, val, &v);
  *ver = (fl_ccrt_version_t){v.block, v.tx};
  return rc;
}

static fl_status_t l_range_new(void *ctx, fl_buf_t start, fl_buf_t end, void **it) {
  lstate_t *s = ctx;
  fl_ledger_range_t *r = NULL;
  fl_status_t rc = fl_ledger_range_new(s->l, s->snap, start, end, &r);
  *it = r;
  return rc;
}

static fl_status_t l_range_next(void *it, fl_buf_t *key, fl_buf_t *val,
                                fl_ccrt_version_t *ver) {
  fl_ledger_version_t v = {0};
  fl_status_t rc = fl_ledger_range_next(it, key, val, &v);
  *ver = (fl_ccrt_version_t){v.block, v.tx};
  return rc;
}

static void l_range_free(void *it) { fl_ledger_range_free(it); }

static fl_status_t l_hist_new(void *ctx, fl_buf_t key, void **it) {
  lstate_t *s = ctx;
  fl_ledger_hist_t *h = NULL;
  fl_status_t rc = fl_ledger_hist_new(s->l, s->snap, key, true, &h);
  *it = h;
  return rc;
}

static fl_status_t l_hist_next(void *it, fl_ccrt_mod_t *m) {
  fl_ledger_mod_t x;
  fl_status_t rc = fl_ledger_hist_next(it, &x);
  if (rc == FL_OK)
    *m = (fl_ccrt_mod_t){.tx_id = x.tx_id, .block = x.block, .tx = x.tx,
                         .is_delete = x.is_delete, .value = x.value};
  return rc;
}

static void l_hist_free(void *it) { fl_ledger_hist_free(it); }
static fl_status_t l_blob_get(void *ctx, const uint8_t hash[FL_CCRT_HASH_LEN], fl_sbuf_t *out) {
  lstate_t *s = ctx;
  return fl_ledger_blob_get(s->l, s->snap, hash, out);
}

static const fl_ccrt_state_ops_t ledger_ops = {
    .get = l_get, .range_new = l_range_new, .range_next = l_range_next,
    .range_free = l_range_free, .hist_new = l_hist_new, .hist_next = l_hist_next,
    .hist_free = l_hist_free, .blob_get = l_blob_get};

/* ---- helpers ------------------------------------------------------------------ */

static void rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char *p = fl_sprintf("%s/%s", path, e->d_name);
      rm_rf(p);
      fl_free(p);
    }
    if (d) closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

static void commit(fl_ledger_t *l, uint64_t n, const fl_ledger_tx_t *txs, size_t ntx) {
  char blk[32];
  snprintf(blk, sizeof blk, "block %llu", (unsigned long long)n);
  uint8_t h[32];
  fl_sha256(blk, strlen(blk), h);
  assert_int_equal(fl_ledger_commit(l, n, h, FL_BUF_STR(blk), txs, ntx), FL_OK);
}

/* Converts a simulation's rw-set into the ledger's MVCC input (views into
 * r; arrays owned by the caller via the out pointers). */
static fl_ledger_mvcc_tx_t to_mvcc(const fl_ccrt_result_t *r, fl_ledger_read_t **reads,
                                   fl_ledger_range_read_t **ranges, fl_ledger_read_t **rr,
                                   fl_ledger_write_t **writes) {
  const fl_ccrt_rwset_t *s = &r->rwset;
  *reads = fl_calloc(s->nreads + 1, sizeof **reads);
  for (size_t i = 0; i < s->nreads; i++)
    (*reads)[i] = (fl_ledger_read_t){.key = s->reads[i].key, .exists = s->reads[i].exists,
                                     .version = {s->reads[i].version.block,
                                                 s->reads[i].version.tx}};
  size_t total = 0;
  for (size_t i = 0; i < s->nranges; i++) total += s->ranges[i].nreads;
  *rr = fl_calloc(total + 1, sizeof **rr);
  *ranges = fl_calloc(s->nranges + 1, sizeof **ranges);
  size_t k = 0;
  for (size_t i = 0; i < s->nranges; i++) {
    const fl_ccrt_range_read_t *g = &s->ranges[i];
    (*ranges)[i] = (fl_ledger_range_read_t){.start = g->start, .end = g->end,
                                            .reads = *rr + k, .nreads = g->nreads,
                                            .exhausted = g->exhausted};
    for (size_t j = 0; j < g->nreads; j++, k++)
      (*rr)[k] = (fl_ledger_read_t){.key = g->reads[j].key, .exists = true,
                                    .version = {g->reads[j].version.block,
                                                g->reads[j].version.tx}};
  }
  *writes = fl_calloc(s->nwrites + 1, sizeof **writes);
  for (size_t i = 0; i < s->nwrites; i++)
    (*writes)[i] = (fl_ledger_write_t){.key = s->writes[i].key, .value = s->writes[i].value,
                                       .is_delete = s->writes[i].is_delete};
  return (fl_ledger_mvcc_tx_t){.code = FL_LEDGER_TX_VALID, .reads = *reads,
                               .nreads = s->nreads, .ranges = *ranges,
                               .nranges = s->nranges, .writes = *writes,
                               .nwrites = s->nwrites};
}

static uint8_t mvcc_code(fl_ledger_t *l, const fl_ccrt_result_t *r) {
  fl_ledger_read_t *reads, *rr;
  fl_ledger_range_read_t *ranges;
  fl_ledger_write_t *writes;
  fl_ledger_mvcc_tx_t tx = to_mvcc(r, &reads, &ranges, &rr, &writes);
  uint8_t code = 0xff;
  assert_int_equal(fl_ledger_mvcc_check(l, fl_ledger_height(l), &tx, 1, &code), FL_OK);
  fl_free(reads);
  fl_free(ranges);
  fl_free(rr);
  fl_free(writes);
  return code;
}

/* ---- the test ---------------------------------------------------------------------- */

static void test_over_ledger(void **state) {
  (void)state;
  char tmpl[] = "/tmp/fl-ccrt-ledger-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  char *ldir = fl_sprintf("%s/ledger", tmpl);
  char *ccdir = tc_make_cc_dir();
  fl_ledger_t *l = NULL;
  fl_ledger_opts_t lo = {.create_if_missing = true};
  assert_int_equal(fl_ledger_open(ldir, &lo, &l), FL_OK);

  /* Block 0: t0 writes a=1, b=2. Block 1: t1 (tx 1) writes a=3. */
  fl_ledger_write_t w0[] = {{FL_BUF_STR("a"), FL_BUF_STR("1"), false},
                            {FL_BUF_STR("b"), FL_BUF_STR("2"), false}};
  fl_ledger_tx_t b0[] = {{.tx_id = FL_BUF_STR("t0"), .code = FL_LEDGER_TX_VALID,
                          .writes = w0, .nwrites = 2}};
  commit(l, 0, b0, 1);
  fl_ledger_write_t w1[] = {{FL_BUF_STR("a"), FL_BUF_STR("3"), false}};
  fl_ledger_tx_t b1[] = {{.tx_id = FL_BUF_STR("tx"), .code = 9},
                         {.tx_id = FL_BUF_STR("t1"), .code = FL_LEDGER_TX_VALID,
                          .writes = w1, .nwrites = 1}};
  commit(l, 1, b1, 2);

  fl_ccrt_cc_t *kv, *sc;
  fl_ccrt_t *rt = tc_runtime(ccdir, FL_CCRT_FORK, 0, "kvstore", "kvstore.so", &kv);
  uint8_t h[32];
  tc_file_hash(ccdir, "script.so", h);
  fl_ccrt_def_t def = {.name = "script", .version = "1", .sha256 = h, .library = "script.so"};
  assert_int_equal(fl_ccrt_load(rt, &def, &sc, NULL), FL_OK);

  lstate_t st = {.l = l};
  assert_int_equal(fl_ledger_snap_new(l, &st.snap), FL_OK);

  fl_ccrt_result_t *r = NULL;
  assert_int_equal(tc_sim(kv, &ledger_ops, &st, &r, "get", "a", NULL), FL_OK);
  assert_true(tc_payload_is(r, "3"));
  assert_int_equal(r->rwset.nreads, 1);
  assert_int_equal(r->rwset.reads[0].version.block, 1);
  assert_int_equal(r->rwset.reads[0].version.tx, 1);
  fl_ccrt_result_free(r);

  assert_int_equal(tc_sim(kv, &ledger_ops, &st, &r, "history", "a", NULL), FL_OK);
  assert_true(tc_payload_is(r, "1.1 t1 3\n0.0 t0 1\n"));
  fl_ccrt_result_free(r);

  assert_int_equal(tc_sim(kv, &ledger_ops, &st, &r, "range", "a", "", NULL), FL_OK);
  assert_true(tc_payload_is(r, "a=3\nb=2\n"));
  assert_int_equal(r->rwset.ranges[0].reads[1].version.block, 0);
  assert_int_equal(r->rwset.ranges[0].reads[1].version.tx, 0);
  fl_ccrt_result_free(r);

  /* Two proposals simulated on the same snapshot: r1 reads and rewrites a;
   * r2 scans everything. Both are valid now. */
  fl_ccrt_result_t *r1 = NULL, *r2 = NULL;
  assert_int_equal(tc_sim(sc, &ledger_ops, &st, &r1, "run", "get", "a", "put", "a", "4",
                          "get", "a", "put", "c", "5", NULL), FL_OK);
  assert_true(tc_payload_is(r1, "a=3;a=4;"));
  assert_int_equal(tc_sim(sc, &ledger_ops, &st, &r2, "run", "range", "", "", "0", NULL), FL_OK);
  assert_int_equal(mvcc_code(l, r1), FL_LEDGER_TX_VALID);
  assert_int_equal(mvcc_code(l, r2), FL_LEDGER_TX_VALID);

  /* Commit r1's write set as block 2. */
  fl_ledger_write_t *ws = fl_calloc(r1->rwset.nwrites, sizeof *ws);
  for (size_t i = 0; i < r1->rwset.nwrites; i++)
    ws[i] = (fl_ledger_write_t){.key = r1->rwset.writes[i].key,
                                .value = r1->rwset.writes[i].value,
                                .is_delete = r1->rwset.writes[i].is_delete};
  fl_ledger_tx_t b2[] = {{.tx_id = FL_BUF_STR("t2"), .code = FL_LEDGER_TX_VALID,
                          .writes = ws, .nwrites = r1->rwset.nwrites}};
  commit(l, 2, b2, 1);
  fl_free(ws);

  /* Now r1's read of a is stale and r2's scan would see a new version and c. */
  assert_int_equal(mvcc_code(l, r1), FL_LEDGER_TX_MVCC_READ_CONFLICT);
  assert_int_equal(mvcc_code(l, r2), FL_LEDGER_TX_PHANTOM_READ_CONFLICT);
  fl_ccrt_result_free(r1);
  fl_ccrt_result_free(r2);

  /* A new snapshot sees block 2. */
  fl_ledger_snap_free(st.snap);
  assert_int_equal(fl_ledger_snap_new(l, &st.snap), FL_OK);
  assert_int_equal(tc_sim(kv, &ledger_ops, &st, &r, "get", "c", NULL), FL_OK);
  assert_true(tc_payload_is(r, "5"));
  assert_int_equal(r->rwset.reads[0].version.block, 2);
  assert_int_equal(mvcc_code(l, r), FL_LEDGER_TX_VALID);
  fl_ccrt_result_free(r);

  fl_ledger_snap_free(st.snap);
  fl_ccrt_free(rt);
  fl_ledger_close(l);
  rm_rf(tmpl);
  fl_free(ldir);
  tc_remove_cc_dir(ccdir);
}

int tc_run_ledger_tests(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_over_ledger),
  };
  return cmocka_run_group_tests_name("ccrt_ledger", tests, NULL, NULL);
}
