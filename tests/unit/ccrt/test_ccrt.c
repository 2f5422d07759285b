/* SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests for peer/ccrt, the chaincode runtime, over an in-memory fake of
 * fl_ccrt_state_ops_t (and, in test_ccrt_ledger.c, over the real ledger).
 * Loading: kvstore loads; a tampered copy, a wrong definition hash, a
 * missing file, a non-ELF file, a missing entry symbol, a wrong ABI, a wrong
 * name and a missing invoke are refused with clear messages. Simulation,
 * in both modes: the exact read-write set (first-read versions,
 * read-your-writes, last write wins, deletes, sorted), range reads trimmed to
 * what the chaincode consumed (also across batches), identical TxRwSet bytes
 * for repeated runs and across modes, blobs, events, creator and tx data,
 * kvstore's functions, a 500 response, state errors that fail the proposal.
 * Isolation (fork mode): abort(), SIGSEGV and exit() fail the proposal and
 * the peer invokes again; a worker writing junk on its channel is replaced; a looping chaincode times out and is replaced; the
 * in-process deadline; concurrent invocations. It prints the cost per
 * invocation in both modes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/crypto/hash.h"
#include "common/crypto/sign.h"
#include "common/crypto/x509.h"
#include "fl/ledger/rwset.pb-c.h"
#include "peer/ccrt/ccrt_int.h"
#include "tests/unit/ccrt/test_ccrt.h"

/* ---- files ----------------------------------------------------------------- */

static const struct {
  const char *src, *dst;
} fixtures[] = {
    {CCRT_KVSTORE_SO, "kvstore.so"},   {CCRT_SCRIPT_SO, "script.so"},
    {CCRT_NOSYM_SO, "bad_nosym.so"},   {CCRT_ABI_SO, "bad_abi.so"},
    {CCRT_NAME_SO, "bad_name.so"},     {CCRT_NOINVOKE_SO, "bad_noinvoke.so"},
    {CCRT_ABI1_SO, "abi1.so"},         {CCRT_ABI2_SO, "abi2.so"},
};

static void read_all(const char *path, fl_sbuf_t *out) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  for (;;) {
    fl_sbuf_reserve(out, 65536);
    ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
    assert_true(n >= 0);
    if (n == 0) break;
    out->len += (size_t)n;
  }
  close(fd);
}

static void write_all(const char *path, const void *p, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, p, n), (ssize_t)n);
  close(fd);
}

char *tc_make_cc_dir(void) {
  char tmpl[] = "/tmp/fl-ccrt-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
    fl_sbuf_t b = {0};
    read_all(fixtures[i].src, &b);
    char *p = fl_sprintf("%s/%s", tmpl, fixtures[i].dst);
    write_all(p, b.data, b.len);
    fl_free(p);
    fl_sbuf_free(&b);
  }
  return fl_strdup(tmpl);
}

void tc_remove_cc_dir(char *dir) {
  static const char *extra[] = {"tampered.so", "notelf.so"};
  for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0] + 2; i++) {
    const char *f = i < sizeof fixtures / sizeof fixtures[0]
                        ? fixtures[i].dst
                        : extra[i - sizeof fixtures / sizeof fixtures[0]];
    char *p = fl_sprintf("%s/%s", dir, f);
    unlink(p);
    fl_free(p);
  }
  rmdir(dir);
  fl_free(dir);
}

void tc_file_hash(const char *dir, const char *file, uint8_t out[32]) {
  char *p = fl_sprintf("%s/%s", dir, file);
  fl_sbuf_t b = {0};
  read_all(p, &b);
  fl_sha256(b.data, b.len, out);
  fl_sbuf_free(&b);
  fl_free(p);
}

/* tc_runtime with `workers` worker processes (0 = the default). */
static fl_ccrt_t *runtime_n(const char *dir, fl_ccrt_mode_t mode, uint32_t timeout_ms,
                            unsigned workers, const char *name, const char *file,
                            fl_ccrt_cc_t **cc) {
  fl_ccrt_t *rt = NULL;
  fl_ccrt_opts_t o = {.cc_dir = dir, .mode = mode, .timeout_ms = timeout_ms,
                      .workers = workers};
  assert_int_equal(fl_ccrt_new(&o, &rt), FL_OK);
  uint8_t h[32];
  tc_file_hash(dir, file, h);
  fl_ccrt_def_t def = {.name = name, .version = "1.0", .sha256 = h, .library = file};
  char *err = NULL;
  fl_status_t rc = fl_ccrt_load(rt, &def, cc, &err);
  if (rc != FL_OK) fprintf(stderr, "load: %s\n", err ? err : "?");
  assert_int_equal(rc, FL_OK);
  assert_null(err);
  return rt;
}

fl_ccrt_t *tc_runtime(const char *dir, fl_ccrt_mode_t mode, uint32_t timeout_ms,
                      const char *name, const char *file, fl_ccrt_cc_t **cc) {
  return runtime_n(dir, mode, timeout_ms, 0, name, file, cc);
}

static const uint8_t creator_hash[32] = {0xaa, 0xbb, 0xcc};

static fl_status_t sim_v(fl_ccrt_cc_t *cc, const fl_ccrt_state_ops_t *ops, void *ctx,
                         bool init, const fl_buf_t *blobs, size_t nblobs,
                         fl_ccrt_result_t **out, char **err, va_list ap) {
  fl_buf_t args[64];
  size_t n = 0;
  const char *s;
  while ((s = va_arg(ap, const char *)) != NULL) {
    assert_true(n < 64);
    args[n++] = FL_BUF_STR(s);
  }
  fl_ccrt_invocation_t inv = {
      .init = init,
      .tx_id = FL_BUF_STR("tx0001"),
      .timestamp_ms = 1700000000123ull,
      .args = args,
      .nargs = n,
      .blobs = blobs,
      .nblobs = nblobs,
      .transient = FL_BUF_STR("secret"),
      .creator = {.mspid = FL_BUF_STR("Org1MSP"), .cert_pem = FL_BUF_STR("-----PEM-----"),
                  .role = FL_BUF_STR("client")},
  };
  memcpy(inv.creator.cert_sha256, creator_hash, 32);
  return fl_ccrt_simulate(cc, ops, ctx, &inv, out, err);
}

fl_status_t tc_sim(fl_ccrt_cc_t *cc, const fl_ccrt_state_ops_t *ops, void *ctx,
                   fl_ccrt_result_t **out, ...) {
  va_list ap;
  va_start(ap, out);
  char *err = NULL;
  fl_status_t rc = sim_v(cc, ops, ctx, false, NULL, 0, out, &err, ap);
  va_end(ap);
  fl_free(err);
  return rc;
}

/* Like tc_sim, with blobs, init flag and the error message. */
static fl_status_t sim_full(fl_ccrt_cc_t *cc, const fl_ccrt_state_ops_t *ops, void *ctx,
                            bool init, const fl_buf_t *blobs, size_t nblobs,
                            fl_ccrt_result_t **out, char **err, ...) {
  va_list ap;
  va_start(ap, err);
  fl_status_t rc = sim_v(cc, ops, ctx, init, blobs, nblobs, out, err, ap);
  va_end(ap);
  return rc;
}

int tc_payload_is(const fl_ccrt_result_t *r, const char *s) {
  size_t n = strlen(s);
  if (r->payload.len != n || (n && memcmp(r->payload.data, s, n) != 0)) {
    fprintf(stderr, "payload \"%.*s\" != \"%s\"\n", (int)r->payload.len,
            (const char *)r->payload.data, s);
    return 0;
  }
  return 1;
}

static int buf_is(fl_buf_t b, const char *s) {
  return b.len == strlen(s) && (b.len == 0 || memcmp(b.data, s, b.len) == 0);
}

/* ---- the in-memory state fake ------------------------------------------------ */

typedef struct fent_s {
  char key[32];
  char val[32];
  fl_ccrt_version_t ver;
} fent_t;

typedef struct fmod_s {
  const char *key, *tx_id, *val; /* val NULL: delete */
  uint64_t block, tx;
} fmod_t;

typedef struct fake_s {
  fent_t *e;
  size_t n;
  const fmod_t *mods; /* newest first per key */
  size_t nmods;
  const char *fail_key; /* get of this key fails with FL_ESTORE */
  const char *blob;     /* the blob store's blobs, or NULL */
  const char *blob2;
  unsigned blob_gets;   /* blob_get calls */
} fake_t;

static int fent_cmp(const void *a, const void *b) {
  return strcmp(((const fent_t *)a)->key, ((const fent_t *)b)->key);
}

static void fake_add(fake_t *f, const char *k, const char *v, uint64_t blk, uint64_t tx) {
  f->e = fl_reallocarray(f->e, f->n + 1, sizeof *f->e);
  fent_t *e = &f->e[f->n++];
  memset(e, 0, sizeof *e);
  snprintf(e->key, sizeof e->key, "%s", k);
  snprintf(e->val, sizeof e->val, "%s", v);
  e->ver = (fl_ccrt_version_t){blk, tx};
  qsort(f->e, f->n, sizeof *f->e, fent_cmp);
}

static int bufcmp_str(fl_buf_t b, const char *s) {
  size_t n = strlen(s), m = b.len < n ? b.len : n;
  int c = m ? memcmp(b.data, s, m) : 0;
  if (c) return c;
  return b.len < n ? -1 : b.len > n;
}

static fl_status_t f_get(void *ctx, fl_buf_t key, fl_sbuf_t *val, fl_ccrt_version_t *ver) {
  fake_t *f = ctx;
  if (f->fail_key && buf_is(key, f->fail_key)) return FL_ESTORE;
  for (size_t i = 0; i < f->n; i++)
    if (bufcmp_str(key, f->e[i].key) == 0) {
      val->len = 0;
      fl_sbuf_append_str(val, f->e[i].val);
      *ver = f->e[i].ver;
      return FL_OK;
    }
  return FL_NOTFOUND;
}

typedef struct frange_s {
  fake_t *f;
  size_t pos;
  char end[64];
  size_t elen;
} frange_t;

static fl_status_t f_range_new(void *ctx, fl_buf_t start, fl_buf_t end, void **it) {
  fake_t *f = ctx;
  frange_t *r = fl_calloc(1, sizeof *r);
  r->f = f;
  assert_true(end.len < sizeof r->end);
  if (end.len) memcpy(r->end, end.data, end.len);
  r->elen = end.len;
  while (r->pos < f->n && bufcmp_str(start, f->e[r->pos].key) > 0) r->pos++;
  *it = r;
  return FL_OK;
}

static fl_status_t f_range_next(void *it, fl_buf_t *key, fl_buf_t *val,
                                fl_ccrt_version_t *ver) {
  frange_t *r = it;
  if (r->pos >= r->f->n) return FL_NOTFOUND;
  fent_t *e = &r->f->e[r->pos];
  if (r->elen && bufcmp_str(FL_BUF(r->end, r->elen), e->key) <= 0) return FL_NOTFOUND;
  r->pos++;
  *key = FL_BUF_STR(e->key);
  *val = FL_BUF_STR(e->val);
  *ver = e->ver;
  return FL_OK;
}

static void f_range_free(void *it) { fl_free(it); }

typedef struct fhist_s {
  fake_t *f;
  char key[64];
  size_t pos;
} fhist_t;

static fl_status_t f_hist_new(void *ctx, fl_buf_t key, void **it) {
  fhist_t *h = fl_calloc(1, sizeof *h);
  h->f = ctx;
  assert_true(key.len < sizeof h->key);
  memcpy(h->key, key.data, key.len);
  *it = h;
  return FL_OK;
}

static fl_status_t f_hist_next(void *it, fl_ccrt_mod_t *m) {
  fhist_t *h = it;
  for (; h->pos < h->f->nmods; h->pos++) {
    const fmod_t *x = &h->f->mods[h->pos];
    if (strcmp(x->key, h->key) != 0) continue;
    h->pos++;
    *m = (fl_ccrt_mod_t){.tx_id = FL_BUF_STR(x->tx_id), .block = x->block, .tx = x->tx,
                         .is_delete = x->val == NULL,
                         .value = x->val ? FL_BUF_STR(x->val) : FL_BUF(NULL, 0)};
    return FL_OK;
  }
  return FL_NOTFOUND;
}

static void f_hist_free(void *it) { fl_free(it); }

static fl_status_t f_blob_get(void *ctx, const uint8_t hash[FL_CCRT_HASH_LEN], fl_sbuf_t *out) {
  fake_t *f = ctx;
  f->blob_gets++;
  const char *have[] = {f->blob, f->blob2};
  for (size_t i = 0; i < 2; i++) {
    uint8_t h[32];
    if (have[i] == NULL) continue;
    fl_sha256(have[i], strlen(have[i]), h);
    if (memcmp(h, hash, 32) != 0) continue;
    out->len = 0;
    fl_sbuf_append_str(out, have[i]);
    return FL_OK;
  }
  return FL_NOTFOUND;
}

static const fl_ccrt_state_ops_t fake_ops = {
    .get = f_get, .range_new = f_range_new, .range_next = f_range_next,
    .range_free = f_range_free, .hist_new = f_hist_new, .hist_next = f_hist_next,
    .hist_free = f_hist_free, .blob_get = f_blob_get};

static const fmod_t std_mods[] = {
    {"a", "txC", "A", 1, 0},
    {"a", "txB", NULL, 0, 5},
    {"a", "txA", "old", 0, 1},
};

static fake_t std_fake(void) {
  fake_t f = {.mods = std_mods, .nmods = 3};
  fake_add(&f, "a", "A", 1, 0);
  fake_add(&f, "b", "B", 2, 3);
  fake_add(&f, "c", "C", 3, 1);
  return f;
}

/* ---- per-test state --------------------------------------------------------------- */

typedef struct ctx_s {
  char *dir;
} ctx_t;

static int setup(void **state) {
  ctx_t *c = fl_calloc(1, sizeof *c);
  c->dir = tc_make_cc_dir();
  *state = c;
  return 0;
}

static int teardown(void **state) {
  ctx_t *c = *state;
  tc_remove_cc_dir(c->dir);
  fl_free(c);
  return 0;
}

/* ---- loading ------------------------------------------------------------------------ */

static void test_load_kvstore(void **state) {
  ctx_t *c = *state;
  fl_ccrt_cc_t *cc = NULL;
  fl_ccrt_t *rt = tc_runtime(c->dir, FL_CCRT_FORK, 0, "kvstore", "kvstore.so", &cc);
  assert_ptr_equal(fl_ccrt_find(rt, "kvstore"), cc);
  assert_null(fl_ccrt_find(rt, "other"));
  assert_string_equal(fl_ccrt_cc_name(cc), "kvstore");
  assert_string_equal(fl_ccrt_cc_version(cc), "1.0");
  assert_int_equal(fl_ccrt_cc_live_workers(cc), 2);
  /* The runtime's file hash agrees with the test's own computation. */
  uint8_t mine[32], theirs[32];
  tc_file_hash(c->dir, "kvstore.so", mine);
  char *p = fl_sprintf("%s/kvstore.so", c->dir);
  assert_int_equal(fl_ccrt_file_sha256(p, 0, theirs), FL_OK);
  assert_memory_equal(mine, theirs, 32);
  fl_free(p);
  /* Loading the same name twice is refused. */
  fl_ccrt_def_t def = {.name = "kvstore", .version = "2", .sha256 = mine,
                       .library = "kvstore.so"};
  fl_ccrt_cc_t *cc2 = NULL;
  char *err = NULL;
  assert_int_equal(fl_ccrt_load(rt, &def, &cc2, &err), FL_EEXIST);
  assert_null(cc2);
  assert_non_null(err);
  fl_free(err);
  fl_ccrt_free(rt);
}

static void test_refuse_tampered(void **state) {
  ctx_t *c = *state;
  uint8_t good[32], bad[32];
  tc_file_hash(c->dir, "kvstore.so", good);
  /* The tampered copy: the same bytes plus one. */
  char *src = fl_sprintf("%s/kvstore.so", c->dir);
  char *dst = fl_sprintf("%s/tampered.so", c->dir);
  fl_sbuf_t b = {0};
  read_all(src, &b);
  fl_sbuf_append(&b, "\0", 1);
  write_all(dst, b.data, b.len);
  fl_sbuf_free(&b);
  tc_file_hash(c->dir, "tampered.so", bad);

  fl_ccrt_t *rt = NULL;
  fl_ccrt_opts_t o = {.cc_dir = c->dir};
  assert_int_equal(fl_ccrt_new(&o, &rt), FL_OK);
  fl_ccrt_def_t def = {.name = "kvstore", .version = "1", .sha256 = good,
                       .library = "tampered.so"};
  fl_ccrt_cc_t *cc = (fl_ccrt_cc_t *)1;
  char *err = NULL;
  assert_int_equal(fl_ccrt_load(rt, &def, &cc, &err), FL_EPERM);
  assert_null(cc);
  assert_non_null(err);
  char hg[65], hb[65];
  fl_hex_encode(good, 32, hg);
  fl_hex_encode(bad, 32, hb);
  assert_non_null(strstr(err, hg)); /* the hash the definition requires */
  assert_non_null(strstr(err, hb)); /* the hash of the file */
  assert_non_null(strstr(err, "refusing"));
  fl_free(err);
  err = NULL;
  assert_null(fl_ccrt_find(rt, "kvstore"));

  /* The genuine file against a definition with another hash. */
  uint8_t other[32] = {1};
  def.library = "kvstore.so";
  def.sha256 = other;
  assert_int_equal(fl_ccrt_load(rt, &def, &cc, &err), FL_EPERM);
  assert_non_null(strstr(err, hg));
  fl_free(err);
  err = NULL;
  /* And with the right hash it loads. */
  def.sha256 = good;
  assert_int_equal(fl_ccrt_load(rt, &def, &cc, &err), FL_OK);
  assert_non_null(cc);
  fl_ccrt_free(rt);
  fl_free(src);
  fl_free(dst);
}

static void expect_refused(fl_ccrt_t *rt, const char *dir, const char *name,
                           const char *file, fl_status_t want, const char *needle) {
  uint8_t h[32] = {0};
  char *p = fl_sprintf("%s/%s", dir, file);
  if (access(p, F_OK) == 0) tc_file_hash(dir, file, h);
  fl_free(p);
  fl_ccrt_def_t def = {.name = name, .version = "1", .sha256 = h, .library = file};
  fl_ccrt_cc_t *cc = NULL;
  char *err = NULL;
  fl_status_t rc = fl_ccrt_load(rt, &def, &cc, &err);
  if (rc != want || !err || !strstr(err, needle))
    fprintf(stderr, "%s: rc=%s err=%s\n", file, fl_status_name(rc), err ? err : "(none)");
  assert_int_equal(rc, want);
  assert_null(cc);
  assert_non_null(err);
  assert_non_null(strstr(err, needle));
  fl_free(err);
}

static void test_refuse_bad_objects(void **state) {
  ctx_t *c = *state;
  fl_ccrt_t *rt = NULL;
  fl_ccrt_opts_t o = {.cc_dir = c->dir};
  assert_int_equal(fl_ccrt_new(&o, &rt), FL_OK);
  expect_refused(rt, c->dir, "bad", "missing.so", FL_NOTFOUND, "cannot read");
  expect_refused(rt, c->dir, "bad", "bad_nosym.so", FL_ECONFIG, "does not export");
  expect_refused(rt, c->dir, "bad", "bad_abi.so", FL_ECONFIG, "ABI version 99");
  expect_refused(rt, c->dir, "bad", "abi1.so", FL_ECONFIG, "ABI version 1,");
  expect_refused(rt, c->dir, "bad", "bad_name.so", FL_ECONFIG, "impostor");
  expect_refused(rt, c->dir, "bad", "bad_noinvoke.so", FL_ECONFIG, "no invoke");
  char *p = fl_sprintf("%s/notelf.so", c->dir);
  write_all(p, "not an ELF object", 17);
  fl_free(p);
  expect_refused(rt, c->dir, "bad", "notelf.so", FL_ECONFIG, "not a loadable");
  expect_refused(rt, c->dir, "bad", "../kvstore.so", FL_EINVAL, "definition");
  assert_null(fl_ccrt_find(rt, "bad"));
  fl_ccrt_free(rt);

  /* ABI 3 only appended to the stub's table: an ABI 2 object still loads
   * and runs, in both modes. */
  for (int m = 0; m < 2; m++) {
    fl_ccrt_cc_t *cc;
    fl_ccrt_t *r = tc_runtime(c->dir, m ? FL_CCRT_IN_PROCESS : FL_CCRT_FORK, 0, "bad", "abi2.so",
                              &cc);
    fl_ccrt_result_t *res = NULL;
    assert_int_equal(tc_sim(cc, &fake_ops, &(fake_t){0}, &res, "x", NULL), FL_OK);
    assert_true(tc_payload_is(res, "should never run"));
    fl_ccrt_result_free(res);
    fl_ccrt_free(r);
  }

  /* Bad options. */
  fl_ccrt_t *r2 = (fl_ccrt_t *)1;
  assert_int_equal(fl_ccrt_new(&(fl_ccrt_opts_t){0}, &r2), FL_EINVAL);
  assert_null(r2);
  assert_int_equal(fl_ccrt_new(&(fl_ccrt_opts_t){.cc_dir = "/x", .mode = 7}, &r2), FL_EINVAL);
}

/* ---- simulation, both modes ---------------------------------------------------- */

typedef struct want_read_s {
  const char *key;
  bool exists;
  uint64_t block, tx;
} want_read_t;

static void check_read(const fl_ccrt_read_t *r, const Fl__Ledger__KVRead *p,
                       const want_read_t *w) {
  assert_true(buf_is(r->key, w->key));
  assert_string_equal(p->key, w->key);
  assert_int_equal(r->exists, w->exists);
  if (w->exists) {
    assert_int_equal(r->version.block, w->block);
    assert_int_equal(r->version.tx, w->tx);
    assert_non_null(p->version);
    assert_int_equal(p->version->block_num, w->block);
    assert_int_equal(p->version->tx_num, w->tx);
  } else {
    assert_null(p->version);
  }
}

static void rwset_exact(const char *dir, fl_ccrt_mode_t mode) {
  fl_ccrt_cc_t *cc;
  fl_ccrt_t *rt = tc_runtime(dir, mode, 0, "script", "script.so", &cc);
  fake_t f = std_fake();
  fl_ccrt_result_t *r = NULL, *r2 = NULL;
#define SCRIPT "run", "get", "a", "get", "a", "put", "b", "X", "get", "b", "del", "c", \
               "get", "c", "get", "zz", "put", "a", "Y", "get", "a", "put", "b", "X2",   \
               "get", "b", "put", "c", "back", "del", "c", NULL
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, SCRIPT), FL_OK);
  assert_int_equal(r->status, 200);
  assert_true(tc_payload_is(r, "a=A;a=A;b=X;c=!;zz=!;a=Y;b=X2;"));
  /* Reads: the first read of a and of zz (absent); b and c were written
   * before being read, so they are not reads. Sorted by key. */
  const fl_ccrt_rwset_t *s = &r->rwset;
  Fl__Ledger__TxRwSet *pb =
      fl__ledger__tx_rw_set__unpack(NULL, r->rwset_bytes.len, r->rwset_bytes.data);
  assert_non_null(pb);
  assert_string_equal(pb->namespace_, "script");
  assert_int_equal(s->nreads, 2);
  assert_int_equal(pb->n_reads, 2);
  check_read(&s->reads[0], pb->reads[0], &(want_read_t){"a", true, 1, 0});
  check_read(&s->reads[1], pb->reads[1], &(want_read_t){"zz", false, 0, 0});
  /* Writes: last write wins, sorted: a=Y, b=X2, c deleted. */
  assert_int_equal(s->nwrites, 3);
  assert_int_equal(pb->n_writes, 3);
  assert_true(buf_is(s->writes[0].key, "a") && buf_is(s->writes[0].value, "Y"));
  assert_true(buf_is(s->writes[1].key, "b") && buf_is(s->writes[1].value, "X2"));
  assert_true(buf_is(s->writes[2].key, "c") && s->writes[2].is_delete);
  assert_string_equal(pb->writes[0]->key, "a");
  assert_string_equal(pb->writes[1]->key, "b");
  assert_int_equal(pb->writes[1]->value.len, 2);
  assert_memory_equal(pb->writes[1]->value.data, "X2", 2);
  assert_string_equal(pb->writes[2]->key, "c");
  assert_true(pb->writes[2]->is_delete);
  assert_int_equal(pb->writes[2]->value.len, 0);
  assert_int_equal(pb->n_range_reads, 0);
  assert_int_equal(pb->n_blobs, 0);
  assert_false(r->has_event);
  fl__ledger__tx_rw_set__free_unpacked(pb, NULL);

  /* The same proposal again: identical bytes. */
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r2, SCRIPT), FL_OK);
  assert_int_equal(r->rwset_bytes.len, r2->rwset_bytes.len);
  assert_memory_equal(r->rwset_bytes.data, r2->rwset_bytes.data, r->rwset_bytes.len);
  fl_ccrt_result_free(r2);
  fl_ccrt_result_free(r);

  /* Another order of the same accesses gives the same bytes (sorted). */
  fl_ccrt_result_t *r3 = NULL, *r4 = NULL;
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r3, "run", "get", "zz", "put", "b", "1",
                          "get", "a", "put", "a", "2", NULL), FL_OK);
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r4, "run", "put", "a", "2", "get", "zz",
                          "put", "b", "1", NULL), FL_OK);
  /* r4 never read a (it wrote it first): r3 has one more read. */
  assert_int_equal(r3->rwset.nreads, 2);
  assert_int_equal(r4->rwset.nreads, 1);
  fl_ccrt_result_free(r3);
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r3, "run", "put", "b", "1", "get", "zz",
                          "put", "a", "2", NULL), FL_OK);
  assert_int_equal(r3->rwset_bytes.len, r4->rwset_bytes.len);
  assert_memory_equal(r3->rwset_bytes.data, r4->rwset_bytes.data, r3->rwset_bytes.len);
  fl_ccrt_result_free(r3);
  fl_ccrt_result_free(r4);
#undef SCRIPT
  fl_free(f.e);
  fl_ccrt_free(rt);
}

static void test_rwset_fork(void **state) { rwset_exact(((ctx_t *)*state)->dir, FL_CCRT_FORK); }
static void test_rwset_inproc(void **state) {
  rwset_exact(((ctx_t *)*state)->dir, FL_CCRT_IN_PROCESS);
}

static fake_t many_fake(void) {
  fake_t f = {0};
  for (int i = 0; i < 100; i++) {
    char k[8];
    snprintf(k, sizeof k, "k%02d", i);
    fake_add(&f, k, "v", 7, (uint64_t)i);
  }
  return f;
}

static void ranges(const char *dir, fl_ccrt_mode_t mode) {
  fl_ccrt_cc_t *cc;
  fl_ccrt_t *rt = tc_runtime(dir, mode, 0, "script", "script.so", &cc);
  fake_t f = many_fake();
  fl_ccrt_result_t *r = NULL;
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "run", "range", "k00", "k03", "0",
                          "range", "k", "", "3", "rangeopen", "k10", "k20", "2", "put",
                          "k00", "Z", "range", "k00", "k02", "0", NULL),
                   FL_OK);
  assert_true(tc_payload_is(r, "[k00,k01,k02$][k00,k01,k02][k10,k11][k00,k01$]"));
  const fl_ccrt_rwset_t *s = &r->rwset;
  assert_int_equal(s->nreads, 0);
  assert_int_equal(s->nranges, 4);
  /* 1: the whole range, seen to its end. */
  assert_true(buf_is(s->ranges[0].start, "k00") && buf_is(s->ranges[0].end, "k03"));
  assert_int_equal(s->ranges[0].nreads, 3);
  assert_true(s->ranges[0].exhausted);
  assert_true(buf_is(s->ranges[0].reads[2].key, "k02"));
  assert_int_equal(s->ranges[0].reads[2].version.block, 7);
  assert_int_equal(s->ranges[0].reads[2].version.tx, 2);
  /* 2: stopped after 3 of 100 (fork mode fetched a batch of 64: trimmed). */
  assert_int_equal(s->ranges[1].nreads, 3);
  assert_false(s->ranges[1].exhausted);
  /* 3: left open by the chaincode, closed by the runtime after 2. */
  assert_int_equal(s->ranges[2].nreads, 2);
  assert_false(s->ranges[2].exhausted);
  /* 4: committed state only, the tx's own write to k00 is not merged. */
  assert_int_equal(s->ranges[3].nreads, 2);
  assert_true(s->ranges[3].exhausted);
  assert_int_equal(s->nwrites, 1);
  Fl__Ledger__TxRwSet *pb =
      fl__ledger__tx_rw_set__unpack(NULL, r->rwset_bytes.len, r->rwset_bytes.data);
  assert_non_null(pb);
  assert_int_equal(pb->n_range_reads, 4);
  assert_string_equal(pb->range_reads[1]->start_key, "k");
  assert_string_equal(pb->range_reads[1]->end_key, "");
  assert_int_equal(pb->range_reads[1]->n_reads, 3);
  assert_false(pb->range_reads[1]->exhausted);
  assert_true(pb->range_reads[0]->exhausted);
  assert_int_equal(pb->range_reads[0]->reads[1]->version->tx_num, 1);
  fl__ledger__tx_rw_set__free_unpacked(pb, NULL);
  fl_ccrt_result_free(r);

  /* A full scan of 100 keys crosses batch boundaries in fork mode. */
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "run", "range", "", "", "0", NULL), FL_OK);
  assert_int_equal(r->rwset.nranges, 1);
  assert_int_equal(r->rwset.ranges[0].nreads, 100);
  assert_true(r->rwset.ranges[0].exhausted);
  assert_true(buf_is(r->rwset.ranges[0].reads[99].key, "k99"));
  assert_int_equal(r->rwset.ranges[0].reads[99].version.tx, 99);
  fl_ccrt_result_free(r);
  /* 64 exactly (one full batch, the end not yet seen). */
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "run", "range", "", "", "64", NULL), FL_OK);
  assert_int_equal(r->rwset.ranges[0].nreads, 64);
  assert_false(r->rwset.ranges[0].exhausted);
  fl_ccrt_result_free(r);
  fl_free(f.e);
  fl_ccrt_free(rt);
}

static void test_ranges_fork(void **state) { ranges(((ctx_t *)*state)->dir, FL_CCRT_FORK); }

/* fl_cc_get_stored_blob: the committed blob by hash, absent -> NOTFOUND;
 * nothing lands in the read set or the transaction's blobs. */
static void stored_blob(const char *dir, fl_ccrt_mode_t mode) {
  fl_ccrt_cc_t *cc;
  fl_ccrt_t *rt = tc_runtime(dir, mode, 0, "script", "script.so", &cc);
  fake_t f = std_fake();
  f.blob = "tensor bytes \x01\x02";
  uint8_t h[32];
  char hex[65], other[65];
  fl_sha256(f.blob, strlen(f.blob), h);
  fl_hex_encode(h, 32, hex);
  h[31] ^= 1;
  fl_hex_encode(h, 32, other);
  fl_ccrt_result_t *r = NULL;
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "run", "storedblob", hex, "storedblob", other,
                          NULL),
                   FL_OK);
  assert_int_equal(r->status, 200);
  assert_true(tc_payload_is(r, "Stensor bytes \x01\x02;S!;"));
  assert_int_equal(r->rwset.nreads + r->rwset.nranges + r->rwset.nwrites + r->rwset.nblobs, 0);
  fl_ccrt_result_free(r);
  fl_free(f.e);
  fl_ccrt_free(rt);
}

/* In fork mode the worker keeps the stored blobs it read twice (blobcache.c):
 * after that the same hash costs the peer nothing, while a miss is never
 * kept (the blob may be stored later). In-process there is no cache: every call
 * reads the store. */
static void stored_blob_cache(const char *dir, fl_ccrt_mode_t mode) {
  fl_ccrt_cc_t *cc;
  fl_ccrt_t *rt = runtime_n(dir, mode, 0, 1, "script", "script.so", &cc);
  fake_t f = std_fake();
  f.blob = "global model";
  uint8_t h[32];
  char a[65], none[65];
  fl_sha256(f.blob, strlen(f.blob), h);
  fl_hex_encode(h, 32, a);
  h[0] ^= 0x80;
  fl_hex_encode(h, 32, none);
  for (int pass = 0; pass < 2; pass++) {
    fl_ccrt_result_t *r = NULL;
    f.blob_gets = 0;
    assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "run", "storedblob", a, "storedblob", none,
                            "storedblob", a, NULL),
                     FL_OK);
    assert_int_equal(r->status, 200);
    assert_true(tc_payload_is(r, "Sglobal model;S!;Sglobal model;"));
    assert_int_equal(r->rwset.nreads + r->rwset.nranges + r->rwset.nwrites + r->rwset.nblobs, 0);
    fl_ccrt_result_free(r);
    if (mode == FL_CCRT_IN_PROCESS)
      assert_int_equal(f.blob_gets, 3);
    else /* first pass: a twice (kept on its second read); the absent one every time */
      assert_int_equal(f.blob_gets, pass == 0 ? 3 : 1);
  }
  /* A blob absent at first and stored later is found then (the miss was
   * not kept). */
  const char *later_bytes = "stored later";
  fl_sha256(later_bytes, strlen(later_bytes), h);
  char later[65];
  fl_hex_encode(h, 32, later);
  fl_ccrt_result_t *r = NULL;
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "run", "storedblob", later, NULL), FL_OK);
  assert_true(tc_payload_is(r, "S!;"));
  fl_ccrt_result_free(r);
  f.blob2 = later_bytes;
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "run", "storedblob", later, NULL), FL_OK);
  assert_true(tc_payload_is(r, "Sstored later;"));
  fl_ccrt_result_free(r);
  fl_free(f.e);
  fl_ccrt_free(rt);
}

static void test_stored_blob_cache_fork(void **state) {
  stored_blob_cache(((ctx_t *)*state)->dir, FL_CCRT_FORK);
}
static void test_stored_blob_cache_inproc(void **state) {
  stored_blob_cache(((ctx_t *)*state)->dir, FL_CCRT_IN_PROCESS);
}

/* Puts a blob twice: the second read admits it (blobcache.c). */
static void put2(fl__blobs_t *c, const uint8_t h[32], fl_buf_t v) {
  fl__blobs_put(c, h, v);
  fl__blobs_put(c, h, v);
}

/* The worker's blob cache on its own: admission on the second read, LRU
 * within both bounds, oversized blobs not kept. */
static void test_blob_cache(void **state) {
  (void)state;
  fl__blobs_t *c = fl__blobs_new(3, 400);
  uint8_t h[4][32] = {{1}, {2}, {3}, {4}};
  uint8_t data[200];
  memset(data, 7, sizeof data);
  fl_buf_t v;
  fl__blobs_stats_t st;
  /* Admission: one read only remembers the hash, the second keeps the
   * bytes; a hash read once and then pushed out of the ring of 64
   * remembered ones starts over. */
  fl__blobs_put(c, h[0], FL_BUF(data, 90));
  assert_false(fl__blobs_get(c, h[0], &v));
  fl__blobs_put(c, h[0], FL_BUF(data, 90));
  assert_true(fl__blobs_get(c, h[0], &v));
  assert_int_equal(v.len, 90);
  assert_memory_equal(v.data, data, 90);
  fl__blobs_put(c, h[1], FL_BUF(data, 90));
  for (int i = 0; i < 64; i++) {
    uint8_t o[32] = {0x80, (uint8_t)i};
    fl__blobs_put(c, o, FL_BUF(data, 10));
  }
  fl__blobs_put(c, h[1], FL_BUF(data, 90)); /* forgotten: a first read again */
  assert_false(fl__blobs_get(c, h[1], &v));
  fl__blobs_free(c);

  c = fl__blobs_new(3, 400);
  put2(c, h[0], FL_BUF(data, 90));
  put2(c, h[1], FL_BUF(data, 90));
  put2(c, h[2], FL_BUF(data, 90));
  assert_true(fl__blobs_get(c, h[0], &v)); /* h[1] is now the oldest */
  put2(c, h[3], FL_BUF(data, 90)); /* 4 > cap 3: h[1] goes */
  assert_false(fl__blobs_get(c, h[1], &v));
  assert_true(fl__blobs_get(c, h[2], &v));
  assert_true(fl__blobs_get(c, h[3], &v));
  fl__blobs_stats(c, &st);
  assert_int_equal(st.entries, 3);
  assert_int_equal(st.bytes, 270);
  put2(c, h[1], FL_BUF(data, 101)); /* over 400 / 4: not kept */
  assert_false(fl__blobs_get(c, h[1], &v));
  put2(c, h[1], FL_BUF(data, 100)); /* full again: h[0], the oldest, goes */
  assert_true(fl__blobs_get(c, h[1], &v));
  assert_false(fl__blobs_get(c, h[0], &v));
  fl__blobs_stats(c, &st);
  assert_int_equal(st.entries, 3);
  assert_int_equal(st.bytes, 280);
  assert_int_equal(st.hits, 4);
  assert_int_equal(st.misses, 3);
  fl__blobs_free(c);
  /* The byte bound: 4 x 100 fill 400; a fifth evicts the oldest. */
  c = fl__blobs_new(10, 400);
  for (int i = 0; i < 4; i++) put2(c, h[i], FL_BUF(data, 100));
  uint8_t h5[32] = {5};
  put2(c, h5, FL_BUF(data, 100));
  fl__blobs_stats(c, &st);
  assert_int_equal(st.entries, 4);
  assert_int_equal(st.bytes, 400);
  assert_false(fl__blobs_get(c, h[0], &v));
  assert_true(fl__blobs_get(c, h5, &v));
  fl__blobs_free(c);
}

static void test_stored_blob_fork(void **state) {
  stored_blob(((ctx_t *)*state)->dir, FL_CCRT_FORK);
}
static void test_stored_blob_inproc(void **state) {
  stored_blob(((ctx_t *)*state)->dir, FL_CCRT_IN_PROCESS);
}
static void test_ranges_inproc(void **state) {
  ranges(((ctx_t *)*state)->dir, FL_CCRT_IN_PROCESS);
}

static void kvstore_funcs(const char *dir, fl_ccrt_mode_t mode) {
  fl_ccrt_cc_t *cc;
  fl_ccrt_t *rt = tc_runtime(dir, mode, 0, "kvstore", "kvstore.so", &cc);
  fake_t f = std_fake();
  fl_ccrt_result_t *r = NULL;
  char *err = NULL;

  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "put", "k1", "v1", NULL), FL_OK);
  assert_int_equal(r->status, 200);
  assert_int_equal(r->rwset.nwrites, 1);
  assert_int_equal(r->rwset.nreads, 0);
  assert_true(buf_is(r->rwset.writes[0].key, "k1") && buf_is(r->rwset.writes[0].value, "v1"));
  fl_ccrt_result_free(r);

  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "get", "b", NULL), FL_OK);
  assert_int_equal(r->status, 200);
  assert_true(tc_payload_is(r, "B"));
  assert_int_equal(r->rwset.nreads, 1);
  assert_int_equal(r->rwset.reads[0].version.block, 2);
  assert_int_equal(r->rwset.reads[0].version.tx, 3);
  fl_ccrt_result_free(r);

  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "get", "nope", NULL), FL_OK);
  assert_int_equal(r->status, 404);
  assert_true(buf_is(r->message, "kvstore: key not found"));
  assert_int_equal(r->rwset.nreads, 1);
  assert_false(r->rwset.reads[0].exists);
  fl_ccrt_result_free(r);

  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "del", "a", NULL), FL_OK);
  assert_true(r->rwset.writes[0].is_delete);
  fl_ccrt_result_free(r);

  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "range", "a", "c", NULL), FL_OK);
  assert_true(tc_payload_is(r, "a=A\nb=B\n"));
  assert_int_equal(r->rwset.nranges, 1);
  assert_true(r->rwset.ranges[0].exhausted);
  fl_ccrt_result_free(r);

  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "history", "a", NULL), FL_OK);
  assert_true(tc_payload_is(r, "1.0 txC A\n0.5 txB (deleted)\n0.1 txA old\n"));
  assert_int_equal(r->rwset.nreads + r->rwset.nranges + r->rwset.nwrites, 0);
  fl_ccrt_result_free(r);

  /* fail: a 500 response is a response, not a runtime error. */
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "fail", NULL), FL_OK);
  assert_int_equal(r->status, 500);
  assert_true(buf_is(r->message, "kvstore: failure requested"));
  fl_ccrt_result_free(r);
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "nosuch", NULL), FL_OK);
  assert_int_equal(r->status, 404);
  fl_ccrt_result_free(r);
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "put", "onlykey", NULL), FL_OK);
  assert_int_equal(r->status, 400);
  fl_ccrt_result_free(r);

  /* blob: stored by SHA-256, key = hex hash; event. */
  fl_buf_t blob = FL_BUF_STR("model weights");
  uint8_t h[32];
  char hex[65];
  fl_sha256(blob.data, blob.len, h);
  fl_hex_encode(h, 32, hex);
  assert_int_equal(sim_full(cc, &fake_ops, &f, false, &blob, 1, &r, &err, "blob", "m", NULL),
                   FL_OK);
  assert_int_equal(r->status, 200);
  assert_true(tc_payload_is(r, hex));
  assert_int_equal(r->rwset.nblobs, 1);
  assert_memory_equal(r->rwset.blobs[0].hash, h, 32);
  assert_true(buf_is(r->rwset.blobs[0].data, "model weights"));
  assert_true(buf_is(r->rwset.writes[0].value, hex));
  Fl__Ledger__TxRwSet *pb =
      fl__ledger__tx_rw_set__unpack(NULL, r->rwset_bytes.len, r->rwset_bytes.data);
  assert_int_equal(pb->n_blobs, 1);
  assert_int_equal(pb->blobs[0].len, blob.len);
  fl__ledger__tx_rw_set__free_unpacked(pb, NULL);
  fl_ccrt_result_free(r);
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "blob", "m", NULL), FL_OK);
  assert_int_equal(r->status, 400); /* no blob in the proposal */
  fl_ccrt_result_free(r);

  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "event", "stored", "p1", NULL), FL_OK);
  assert_true(r->has_event);
  assert_true(buf_is(r->event_name, "stored") && buf_is(r->event_payload, "p1"));
  fl_ccrt_result_free(r);

  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "info", NULL), FL_OK);
  assert_true(tc_payload_is(r, "tx0001|1700000000123|Org1MSP|client|secret"));
  fl_ccrt_result_free(r);

  /* init runs the chaincode's init. */
  assert_int_equal(sim_full(cc, &fake_ops, &f, true, NULL, 0, &r, &err, "init", "yes", NULL),
                   FL_OK);
  assert_int_equal(r->status, 200);
  assert_true(buf_is(r->rwset.writes[0].key, "kvstore/init"));
  assert_true(buf_is(r->rwset.writes[0].value, "yes"));
  fl_ccrt_result_free(r);

  /* A state read that fails fails the proposal, whatever the chaincode says. */
  f.fail_key = "b";
  assert_int_equal(sim_full(cc, &fake_ops, &f, false, NULL, 0, &r, &err, "get", "b", NULL),
                   FL_ESTORE);
  assert_null(r);
  assert_non_null(strstr(err, "reading the world state failed"));
  fl_free(err);
  err = NULL;

  /* Bad invocations. */
  fl_ccrt_invocation_t inv = {0};
  assert_int_equal(fl_ccrt_simulate(cc, &fake_ops, &f, &inv, &r, NULL), FL_EINVAL);
  assert_int_equal(fl_ccrt_simulate(cc, NULL, &f, &inv, &r, NULL), FL_EINVAL);
  fl_free(f.e);
  fl_ccrt_free(rt);
}

static void test_kvstore_fork(void **state) {
  kvstore_funcs(((ctx_t *)*state)->dir, FL_CCRT_FORK);
}
static void test_kvstore_inproc(void **state) {
  kvstore_funcs(((ctx_t *)*state)->dir, FL_CCRT_IN_PROCESS);
}

/* Bad keys are refused by the stub in both modes, identically. */
static void test_bad_keys_both_modes(void **state) {
  ctx_t *c = *state;
  fl_ccrt_cc_t *cf, *ci;
  fl_ccrt_t *rf = tc_runtime(c->dir, FL_CCRT_FORK, 0, "script", "script.so", &cf);
  fl_ccrt_t *ri = tc_runtime(c->dir, FL_CCRT_IN_PROCESS, 0, "script", "script.so", &ci);
  fake_t f = std_fake();
  fl_ccrt_result_t *a = NULL, *b = NULL;
  /* "" is an empty key: EINVAL (-3) for get, put and del. */
  assert_int_equal(tc_sim(cf, &fake_ops, &f, &a, "run", "get", "", "put", "", "v", "del", "",
                          "event", "", "x", NULL), FL_OK);
  assert_int_equal(tc_sim(ci, &fake_ops, &f, &b, "run", "get", "", "put", "", "v", "del", "",
                          "event", "", "x", NULL), FL_OK);
  assert_true(tc_payload_is(a, "=E-3;;E-3;E-3;E-3;"));
  assert_true(tc_payload_is(b, "=E-3;;E-3;E-3;E-3;"));
  fl_ccrt_result_free(a);
  fl_ccrt_result_free(b);
  fl_free(f.e);
  fl_ccrt_free(rf);
  fl_ccrt_free(ri);
}

/* Both modes produce byte-identical results for the same proposal. */
static void test_modes_agree(void **state) {
  ctx_t *c = *state;
  fl_ccrt_cc_t *cf, *ci;
  fl_ccrt_t *rf = tc_runtime(c->dir, FL_CCRT_FORK, 0, "script", "script.so", &cf);
  fl_ccrt_t *ri = tc_runtime(c->dir, FL_CCRT_IN_PROCESS, 0, "script", "script.so", &ci);
  fake_t f = many_fake();
  fl_buf_t blobs[2] = {FL_BUF_STR("w1"), FL_BUF_STR("w0")};
  fl_ccrt_result_t *a = NULL, *b = NULL;
  char *err = NULL;
#define PROG "run", "get", "k05", "put", "x", "1", "range", "k1", "k2", "4", "get", "k50", \
             "hist", "k05", "del", "k07", "putblob", "0", "putblob", "1", "putblob", "0",  \
             "event", "e", "p", "range", "", "", "70", "get", "x", "status", "201", NULL
  assert_int_equal(sim_full(cf, &fake_ops, &f, false, blobs, 2, &a, &err, PROG), FL_OK);
  assert_int_equal(sim_full(ci, &fake_ops, &f, false, blobs, 2, &b, &err, PROG), FL_OK);
#undef PROG
  assert_int_equal(a->status, 201);
  assert_int_equal(b->status, 201);
  assert_int_equal(a->payload.len, b->payload.len);
  assert_memory_equal(a->payload.data, b->payload.data, a->payload.len);
  assert_int_equal(a->rwset_bytes.len, b->rwset_bytes.len);
  assert_memory_equal(a->rwset_bytes.data, b->rwset_bytes.data, a->rwset_bytes.len);
  /* Two distinct blobs (one stored twice), sorted by hash. */
  assert_int_equal(a->rwset.nblobs, 2);
  assert_true(memcmp(a->rwset.blobs[0].hash, a->rwset.blobs[1].hash, 32) < 0);
  assert_int_equal(a->rwset.nranges, 2);
  assert_int_equal(a->rwset.ranges[1].nreads, 70);
  assert_true(buf_is(a->event_name, "e"));
  fl_ccrt_result_free(a);
  fl_ccrt_result_free(b);
  fl_free(f.e);
  fl_ccrt_free(rf);
  fl_ccrt_free(ri);
}

/* ---- the creator's certificate (ABI 3) ---------------------------------------------- */

typedef struct cid_s {
  fl_signer_t *key;
  fl_sbuf_t pem;
} cid_t;

static void cid_make(cid_t *id, const char *cn) {
  assert_int_equal(fl_signer_generate(&id->key), FL_OK);
  fl_cert_template_t t = {.org = "Org1", .cn = cn, .not_before = 1700000000,
                          .not_after = 1900000000};
  fl_cert_t *c = NULL;
  assert_int_equal(fl_cert_issue(&t, id->key, NULL, id->key, &c), FL_OK);
  id->pem = (fl_sbuf_t){0};
  fl_cert_to_pem(c, &id->pem);
  fl_cert_free(c);
}

static void cid_free(cid_t *id) {
  fl_signer_free(id->key);
  fl_sbuf_free(&id->pem);
}

/* Hex of signer's signature over msg (owned). */
static char *cid_sig(const cid_t *id, const char *msg) {
  fl_sbuf_t sig = {0};
  assert_int_equal(fl_signer_sign(id->key, msg, strlen(msg), &sig), FL_OK);
  char *hex = fl_malloc(2 * sig.len + 1);
  for (size_t i = 0; i < sig.len; i++) snprintf(hex + 2 * i, 3, "%02x", sig.data[i]);
  fl_sbuf_free(&sig);
  return hex;
}

/* Runs the script args (NULL-terminated) with pem as the creator's
 * certificate; expects 200 and the payload want. */
static void run_as(fl_ccrt_cc_t *cc, fl_buf_t pem, const char *want, ...) {
  fl_buf_t args[16];
  size_t n = 0;
  va_list ap;
  va_start(ap, want);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL) {
    assert_true(n < 16);
    args[n++] = FL_BUF_STR(a);
  }
  va_end(ap);
  fl_ccrt_invocation_t inv = {
      .tx_id = FL_BUF_STR("tx0002"), .timestamp_ms = 1700000000123ull, .args = args,
      .nargs = n, .creator = {.mspid = FL_BUF_STR("Org1MSP"), .cert_pem = pem,
                              .role = FL_BUF_STR("client")}};
  fake_t f = {0};
  fl_ccrt_result_t *r = NULL;
  char *err = NULL;
  assert_int_equal(fl_ccrt_simulate(cc, &fake_ops, &f, &inv, &r, &err), FL_OK);
  assert_null(err);
  assert_int_equal(r->status, 200);
  if (!tc_payload_is(r, want))
    fprintf(stderr, "payload %.*s, want %s\n", (int)r->payload.len,
            (const char *)r->payload.data, want);
  assert_true(tc_payload_is(r, want));
  fl_ccrt_result_free(r);
  fl_free(f.e);
}

/* fl_cc_get_creator_cn and fl_cc_verify_creator in both modes: the CN and
 * the verdict belong to the certificate of THIS invocation, also when the
 * worker's cache holds others (calls in sequence all go to the first idle
 * worker, so each meets the cache the ones before left), after more
 * distinct certificates than the cache holds, and for PEM that does not
 * parse. */
static void creator_cert(const char *dir, fl_ccrt_mode_t mode) {
  fl_ccrt_cc_t *cc;
  fl_ccrt_t *rt = tc_runtime(dir, mode, 0, "script", "script.so", &cc);
  cid_t alice, bob;
  cid_make(&alice, "alice@org1");
  cid_make(&bob, "bob@org1");
  char *sa = cid_sig(&alice, "hello"), *sb = cid_sig(&bob, "hello");
  fl_buf_t pa = fl_sbuf_view(&alice.pem), pb = fl_sbuf_view(&bob.pem);
  for (int round = 0; round < 2; round++) { /* the second round hits the cache */
    run_as(cc, pa, "Calice@org1;V;", "run", "cn", "verify", "hello", sa, NULL);
    run_as(cc, pb, "Cbob@org1;V;", "run", "cn", "verify", "hello", sb, NULL);
    /* Wrong key, wrong message, garbage: EBADSIG. */
    run_as(cc, pa, "E-9;E-9;E-9;", "run", "verify", "hello", sb, "verify", "hellO", sa,
           "verify", "hello", "3006020101020101", NULL);
    run_as(cc, pb, "E-9;", "run", "verify", "hello", sa, NULL);
  }
  /* Not a certificate: EMALFORMED for both, and the next good one is fine. */
  run_as(cc, FL_BUF_STR("-----PEM-----"), "E-6;E-6;", "run", "cn", "verify", "hello", sa, NULL);
  run_as(cc, FL_BUF((const uint8_t *)"", 0), "E-6;", "run", "cn", NULL);
  fl_buf_t cut = FL_BUF(alice.pem.data, alice.pem.len - 40); /* a truncated copy */
  run_as(cc, cut, "E-6;", "run", "cn", NULL);
  run_as(cc, pa, "Calice@org1;", "run", "cn", NULL);
  /* More distinct certificates than a worker keeps (64): each still gets
   * its own CN, and alice's is parsed again after she was replaced. */
  for (int i = 0; i < 70; i++) {
    cid_t x;
    char cn[32], want[40];
    snprintf(cn, sizeof cn, "user%02d", i);
    snprintf(want, sizeof want, "C%s;V;", cn);
    cid_make(&x, cn);
    char *sx = cid_sig(&x, "m");
    run_as(cc, fl_sbuf_view(&x.pem), want, "run", "cn", "verify", "m", sx, NULL);
    fl_free(sx);
    cid_free(&x);
  }
  run_as(cc, pa, "Calice@org1;V;", "run", "cn", "verify", "hello", sa, NULL);
  run_as(cc, pb, "Cbob@org1;E-9;", "run", "cn", "verify", "hello", sa, NULL);
  fl_free(sa);
  fl_free(sb);
  cid_free(&alice);
  cid_free(&bob);
  fl_ccrt_free(rt);
}

static void test_creator_cert_fork(void **state) {
  creator_cert(((ctx_t *)*state)->dir, FL_CCRT_FORK);
}
static void test_creator_cert_inproc(void **state) {
  creator_cert(((ctx_t *)*state)->dir, FL_CCRT_IN_PROCESS);
}

/* ---- isolation ------------------------------------------------------------------ */

static void test_crash_isolated(void **state) {
  ctx_t *c = *state;
  fl_ccrt_cc_t *cc;
  fl_ccrt_t *rt = tc_runtime(c->dir, FL_CCRT_FORK, 0, "kvstore", "kvstore.so", &cc);
  fake_t f = std_fake();
  fl_ccrt_result_t *r = (fl_ccrt_result_t *)1;
  char *err = NULL;
  assert_int_equal(sim_full(cc, &fake_ops, &f, false, NULL, 0, &r, &err, "crash", NULL),
                   FL_EINTERNAL);
  assert_null(r);
  assert_non_null(err);
  assert_non_null(strstr(err, "crashed"));
  assert_non_null(strstr(err, "signal 6"));
  fl_free(err);
  err = NULL;
  /* The peer (this process) lives on, and the chaincode works again. */
  assert_int_equal(fl_ccrt_cc_live_workers(cc), 2);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "get", "a", NULL), FL_OK);
    assert_true(tc_payload_is(r, "A"));
    fl_ccrt_result_free(r);
  }
  /* A segfault too (under ASan the worker reports and exits instead). */
  assert_int_equal(sim_full(cc, &fake_ops, &f, false, NULL, 0, &r, &err, "crash", "segv",
                            NULL), FL_EINTERNAL);
  assert_non_null(strstr(err, "crashed"));
  fl_free(err);
  err = NULL;
  /* exit() in the chaincode: the worker leaves before the peer's atexit
   * handlers could run in it (this test binary's output is not repeated). */
  assert_int_equal(sim_full(cc, &fake_ops, &f, false, NULL, 0, &r, &err, "crash", "exit",
                            NULL), FL_EINTERNAL);
  assert_non_null(strstr(err, "exited with status 99"));
  fl_free(err);
  err = NULL;
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "put", "z", "1", NULL), FL_OK);
  assert_int_equal(r->status, 200);
  fl_ccrt_result_free(r);
  assert_int_equal(fl_ccrt_cc_live_workers(cc), 2);
  fl_free(f.e);
  fl_ccrt_free(rt);
}

/* A worker that writes junk on its channel is killed and replaced. */
static void test_protocol_violation(void **state) {
  ctx_t *c = *state;
  fl_ccrt_cc_t *cc;
  fl_ccrt_t *rt = tc_runtime(c->dir, FL_CCRT_FORK, 0, "script", "script.so", &cc);
  fake_t f = std_fake();
  fl_ccrt_result_t *r = NULL;
  char *err = NULL;
  assert_int_equal(sim_full(cc, &fake_ops, &f, false, NULL, 0, &r, &err, "run", "garbage",
                            NULL), FL_EINTERNAL);
  assert_null(r);
  assert_non_null(strstr(err, "broke the worker protocol"));
  fl_free(err);
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "run", "get", "a", NULL), FL_OK);
  assert_true(tc_payload_is(r, "a=A;"));
  fl_ccrt_result_free(r);
  assert_int_equal(fl_ccrt_cc_live_workers(cc), 2);
  fl_free(f.e);
  fl_ccrt_free(rt);
}

static void test_timeout_fork(void **state) {
  ctx_t *c = *state;
  fl_ccrt_cc_t *cc;
  fl_ccrt_t *rt = tc_runtime(c->dir, FL_CCRT_FORK, 300, "kvstore", "kvstore.so", &cc);
  fake_t f = std_fake();
  fl_ccrt_result_t *r = NULL;
  char *err = NULL;
  uint64_t t0 = fl_mono_ns();
  assert_int_equal(sim_full(cc, &fake_ops, &f, false, NULL, 0, &r, &err, "spin", NULL),
                   FL_ETIMEDOUT);
  uint64_t ms = (fl_mono_ns() - t0) / 1000000u;
  assert_true(ms >= 290 && ms < 5000);
  assert_non_null(strstr(err, "timed out after 300 ms"));
  fl_free(err);
  assert_int_equal(fl_ccrt_cc_live_workers(cc), 2);
  assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "get", "c", NULL), FL_OK);
  assert_true(tc_payload_is(r, "C"));
  fl_ccrt_result_free(r);
  fl_free(f.e);
  fl_ccrt_free(rt);
}

static void test_timeout_inproc(void **state) {
  ctx_t *c = *state;
  fl_ccrt_cc_t *cc;
  fl_ccrt_t *rt = tc_runtime(c->dir, FL_CCRT_IN_PROCESS, 200, "script", "script.so", &cc);
  fake_t f = std_fake();
  fl_ccrt_result_t *r = NULL;
  char *err = NULL;
  assert_int_equal(sim_full(cc, &fake_ops, &f, false, NULL, 0, &r, &err, "run", "loopget",
                            "a", NULL), FL_ETIMEDOUT);
  assert_null(r);
  assert_non_null(strstr(err, "timed out"));
  fl_free(err);
  fl_free(f.e);
  fl_ccrt_free(rt);
}

typedef struct thr_s {
  fl_ccrt_cc_t *cc;
  fake_t *f;
  int ok;
} thr_t;

static void *thr_main(void *arg) {
  thr_t *t = arg;
  for (int i = 0; i < 100; i++) {
    fl_ccrt_result_t *r = NULL;
    if (tc_sim(t->cc, &fake_ops, t->f, &r, "get", "a", NULL) == FL_OK && r->status == 200 &&
        r->payload.len == 1 && r->payload.data[0] == 'A')
      t->ok++;
    fl_ccrt_result_free(r);
  }
  return NULL;
}

static void test_concurrent_fork(void **state) {
  ctx_t *c = *state;
  fl_ccrt_cc_t *cc;
  fl_ccrt_t *rt = tc_runtime(c->dir, FL_CCRT_FORK, 0, "kvstore", "kvstore.so", &cc);
  fake_t f = std_fake();
  thr_t t[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    t[i] = (thr_t){.cc = cc, .f = &f};
    assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(t[i].ok, 100);
  }
  fl_free(f.e);
  fl_ccrt_free(rt);
}

/* ---- cost per invocation ----------------------------------------------------------- */

static void test_cost(void **state) {
  ctx_t *c = *state;
  fake_t f = std_fake();
  double us[2] = {0};
  for (int m = 0; m < 2; m++) {
    fl_ccrt_cc_t *cc;
    uint64_t t0 = fl_mono_ns();
    fl_ccrt_t *rt = tc_runtime(c->dir, m ? FL_CCRT_IN_PROCESS : FL_CCRT_FORK, 0, "kvstore",
                               "kvstore.so", &cc);
    double load_ms = (double)(fl_mono_ns() - t0) / 1e6;
    const int n = 2000;
    t0 = fl_mono_ns();
    for (int i = 0; i < n; i++) {
      fl_ccrt_result_t *r = NULL;
      assert_int_equal(tc_sim(cc, &fake_ops, &f, &r, "get", "a", NULL), FL_OK);
      fl_ccrt_result_free(r);
    }
    us[m] = (double)(fl_mono_ns() - t0) / 1e3 / n;
    printf("ccrt cost mode=%s load_ms=%.2f per_invocation_us=%.2f (get: 1 state read)\n",
           m ? "in-process" : "fork", load_ms, us[m]);
    if (m == 0) { /* the price of a crash: kill, reap, fork a new worker */
      char *err = NULL;
      fl_ccrt_result_t *r = NULL;
      t0 = fl_mono_ns();
      assert_int_equal(sim_full(cc, &fake_ops, &f, false, NULL, 0, &r, &err, "crash", NULL),
                       FL_EINTERNAL);
      printf("ccrt cost crash_and_respawn_ms=%.2f\n", (double)(fl_mono_ns() - t0) / 1e6);
      fl_free(err);
    }
    fl_ccrt_free(rt);
  }
  assert_true(us[0] > 0 && us[1] > 0);
  fl_free(f.e);
}

int main(void) {
  fl_log_configure_from_env();
  if (!getenv("FEDLEDGER_LOG")) fl_log_configure("error");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_load_kvstore, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refuse_tampered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refuse_bad_objects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rwset_fork, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rwset_inproc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ranges_fork, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ranges_inproc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stored_blob_fork, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stored_blob_inproc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stored_blob_cache_fork, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stored_blob_cache_inproc, setup, teardown),
      cmocka_unit_test(test_blob_cache),
      cmocka_unit_test_setup_teardown(test_kvstore_fork, setup, teardown),
      cmocka_unit_test_setup_teardown(test_kvstore_inproc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_keys_both_modes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_modes_agree, setup, teardown),
      cmocka_unit_test_setup_teardown(test_creator_cert_fork, setup, teardown),
      cmocka_unit_test_setup_teardown(test_creator_cert_inproc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_isolated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_violation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_fork, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_inproc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_fork, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cost, setup, teardown),
  };
  int failed = cmocka_run_group_tests_name("ccrt", tests, NULL, NULL);
#ifdef FL_CCRT_HAVE_LEDGER
  failed += tc_run_ledger_tests();
#endif
  return failed ? 1 : 0;
}
