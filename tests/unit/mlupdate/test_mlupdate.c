/* SPDX-License-Identifier: Apache-2.0
 *
 * test_mlupdate.c: the FL chaincode (chaincode/mlupdate) through the real
 * chaincode runtime (peer/ccrt) over the real RocksDB ledger (peer/ledger) in
 * a mkdtemp directory. Proposals are simulated on a ledger snapshot, their
 * read-write sets go through the ledger's MVCC check and are committed block
 * by block, as a peer would. Identities are the shared cryptogen fixture
 * (FL_TEST_PKI_DIR): client1..5 of org1 and org2, Admin@org1/org2, peer0.
 *
 * The binary re-executes itself (env FL_MLU_CHILD) to simulate a CloseRound
 * in a second process on the same ledger: the two processes must produce
 * the same read-write set bytes, i.e. the same aggregated model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chaincode/mlupdate/json.h"
#include "chaincode/mlupdate/mlupdate.h"
#include "chaincode/mlupdate/score.h"
#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/crypto/hash.h"
#include "common/crypto/sign.h"
#include "common/crypto/x509.h"
#include "ml/agg.h"
#include "ml/tensor.h"
#include "peer/ccrt/ccrt.h"
#include "peer/ledger/ledger.h"

extern char **environ;

#define P 15 /* parameters of the test model: w [4,3] + b [3] */

/* ---- state ops over a ledger snapshot (as the endorser does) --------------- */

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
static fl_status_t l_range_next(void *it, fl_buf_t *key, fl_buf_t *val, fl_ccrt_version_t *ver) {
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

/* ---- identities from the cryptogen fixture ------------------------------------ */

typedef struct ident_s {
  fl_sbuf_t pem;
  fl_signer_t *key;
  char mspid[16];
  char role[16];
  uint8_t cert_sha[32];
  char *id; /* client id as the chaincode derives it */
} ident_t;

static void read_file(const char *path, fl_sbuf_t *out) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) fprintf(stderr, "cannot open %s\n", path);
  assert_non_null(f);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) fl_sbuf_append(out, buf, n);
  fclose(f);
}

/* org: 1 or 2; kind "users" or "peers"; name e.g. "client1" or "peer0". */
static void ident_load(ident_t *id, int org, const char *kind, const char *name) {
  const char *pki = getenv("FL_TEST_PKI_DIR");
  assert_non_null(pki);
  memset(id, 0, sizeof *id);
  char *dir = fl_sprintf("%s/peerOrganizations/org%d.example.com/%s/%s%sorg%d.example.com/msp",
                         pki, org, kind, name, strcmp(kind, "peers") == 0 ? "." : "@", org);
  char *full = fl_sprintf("%s%sorg%d.example.com", name, strcmp(kind, "peers") == 0 ? "." : "@",
                          org);
  char *cert = fl_sprintf("%s/signcerts/%s-cert.pem", dir, full);
  char *key = fl_sprintf("%s/keystore/priv_sk", dir);
  read_file(cert, &id->pem);
  assert_int_equal(fl_signer_load_file(key, &id->key), FL_OK);
  fl_cert_t *c = NULL;
  assert_int_equal(fl_cert_from_pem(id->pem.data, id->pem.len, &c), FL_OK);
  snprintf(id->mspid, sizeof id->mspid, "Org%dMSP", org);
  snprintf(id->role, sizeof id->role, "%s", fl_role_name(fl_cert_role(c)));
  memcpy(id->cert_sha, fl_cert_sha256(c), 32);
  assert_int_equal(fl_mlu_client_id(id->mspid, strlen(id->mspid), fl_cert_subject_cn(c), &id->id),
                   FL_OK);
  fl_cert_free(c);
  fl_free(dir);
  fl_free(full);
  fl_free(cert);
  fl_free(key);
}

static void ident_free(ident_t *id) {
  fl_sbuf_free(&id->pem);
  fl_signer_free(id->key);
  fl_free(id->id);
}

/* ---- harness: runtime + ledger + blocks ------------------------------------------ */

typedef struct h_s {
  char dir[64];
  char *ldir;
  fl_ledger_t *l;
  lstate_t st;
  fl_ccrt_t *rt;
  fl_ccrt_cc_t *cc;
  uint64_t ts;
  unsigned txn;
  fl_ccrt_result_t *pending[32];
  size_t npending;
  /* The proposal blob of each simulated result that had one: a committing
   * peer stores a valid transaction's proposal blobs (docs/peer.md), so
   * commit_block does too. */
  struct {
    const fl_ccrt_result_t *r;
    fl_sbuf_t blob;
  } pblob[64];
  size_t npblob;
} h_t;

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

static fl_ccrt_t *load_runtime(fl_ccrt_mode_t mode, fl_ccrt_cc_t **cc) {
  char *so = fl_strdup(MLUPDATE_SO);
  char *slash = strrchr(so, '/');
  assert_non_null(slash);
  *slash = '\0';
  fl_ccrt_t *rt = NULL;
  fl_ccrt_opts_t o = {.cc_dir = so, .mode = mode, .workers = 1};
  assert_int_equal(fl_ccrt_new(&o, &rt), FL_OK);
  uint8_t h[32];
  assert_int_equal(fl_ccrt_file_sha256(MLUPDATE_SO, 0, h), FL_OK);
  fl_ccrt_def_t def = {.name = "mlupdate", .version = "1", .sha256 = h, .library = slash + 1};
  char *err = NULL;
  fl_status_t rc = fl_ccrt_load(rt, &def, cc, &err);
  if (rc != FL_OK) fprintf(stderr, "load: %s\n", err ? err : "?");
  assert_int_equal(rc, FL_OK);
  fl_free(so);
  return rt;
}

static void h_open_ledger(h_t *h, const char *dir) {
  fl_ledger_opts_t lo = {.create_if_missing = true};
  assert_int_equal(fl_ledger_open(dir, &lo, &h->l), FL_OK);
  h->st.l = h->l;
  assert_int_equal(fl_ledger_snap_new(h->l, &h->st.snap), FL_OK);
}

static void h_init(h_t *h, fl_ccrt_mode_t mode) {
  memset(h, 0, sizeof *h);
  snprintf(h->dir, sizeof h->dir, "/tmp/fl-mlupdate-XXXXXX");
  assert_non_null(mkdtemp(h->dir));
  h->ldir = fl_sprintf("%s/ledger", h->dir);
  h_open_ledger(h, h->ldir);
  h->rt = load_runtime(mode, &h->cc);
  h->ts = 1700000000000ull;
}

static void h_close_ledger(h_t *h) {
  fl_ledger_snap_free(h->st.snap);
  h->st.snap = NULL;
  fl_ledger_close(h->l);
  h->l = NULL;
}

static void h_free(h_t *h) {
  for (size_t i = 0; i < h->npending; i++) fl_ccrt_result_free(h->pending[i]);
  for (size_t i = 0; i < h->npblob; i++) fl_sbuf_free(&h->pblob[i].blob);
  if (h->l) h_close_ledger(h);
  fl_ccrt_free(h->rt);
  rm_rf(h->dir);
  fl_free(h->ldir);
}

/* Drops the recorded proposal blob of result r. */
static void pblob_forget(h_t *h, const fl_ccrt_result_t *r) {
  for (size_t b = 0; b < h->npblob;) {
    if (h->pblob[b].r != r) {
      b++;
      continue;
    }
    fl_sbuf_free(&h->pblob[b].blob);
    memmove(&h->pblob[b], &h->pblob[b + 1], (h->npblob - b - 1) * sizeof h->pblob[0]);
    h->npblob--;
  }
}

static fl_status_t sim_raw(fl_ccrt_cc_t *cc, lstate_t *st, const ident_t *id, const char *txid,
                           uint64_t ts, const fl_buf_t *blob, const fl_buf_t *args, size_t nargs,
                           fl_ccrt_result_t **out) {
  fl_ccrt_invocation_t inv = {
      .tx_id = FL_BUF_STR(txid),
      .timestamp_ms = ts,
      .args = args,
      .nargs = nargs,
      .blobs = blob,
      .nblobs = blob ? 1 : 0,
      .creator = {.mspid = FL_BUF_STR(id->mspid),
                  .cert_pem = fl_sbuf_view(&id->pem),
                  .role = FL_BUF_STR(id->role)},
  };
  memcpy(inv.creator.cert_sha256, id->cert_sha, 32);
  char *err = NULL;
  fl_status_t rc = fl_ccrt_simulate(cc, &ledger_ops, st, &inv, out, &err);
  if (rc != FL_OK) fprintf(stderr, "simulate: %s\n", err ? err : "?");
  fl_free(err);
  return rc;
}

/* Simulates args as id with an optional blob, a new tx id and a timestamp
 * 1 s later than the previous proposal; remembers the blob for commit. */
static fl_ccrt_result_t *sim_args(h_t *h, const ident_t *id, const fl_buf_t *blob,
                                  const fl_buf_t *args, size_t n) {
  char txid[32];
  snprintf(txid, sizeof txid, "tx%05u", ++h->txn);
  h->ts += 1000;
  fl_ccrt_result_t *r = NULL;
  assert_int_equal(sim_raw(h->cc, &h->st, id, txid, h->ts, blob, args, n, &r), FL_OK);
  pblob_forget(h, r); /* r's address was freed and reused */
  if (blob != NULL) {
    if (h->npblob == 64) { /* forget the oldest */
      fl_sbuf_free(&h->pblob[0].blob);
      memmove(&h->pblob[0], &h->pblob[1], 63 * sizeof h->pblob[0]);
      h->npblob--;
    }
    h->pblob[h->npblob].r = r;
    h->pblob[h->npblob].blob = (fl_sbuf_t){0};
    fl_sbuf_append(&h->pblob[h->npblob].blob, blob->data, blob->len);
    h->npblob++;
  }
  return r;
}

/* The NULL-terminated string arguments of ap into args (at most 16). */
static size_t collect_args(va_list ap, fl_buf_t args[16]) {
  size_t n = 0;
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL) {
    assert_true(n < 16);
    args[n++] = FL_BUF_STR(a);
  }
  return n;
}

/* Simulates fn(args...) (NULL-terminated) as id with an optional blob. */
static fl_ccrt_result_t *sim(h_t *h, const ident_t *id, const fl_buf_t *blob, ...) {
  fl_buf_t args[16];
  va_list ap;
  va_start(ap, blob);
  size_t n = collect_args(ap, args);
  va_end(ap);
  return sim_args(h, id, blob, args, n);
}

static fl_ledger_mvcc_tx_t to_mvcc(const fl_ccrt_result_t *r, void **mem) {
  const fl_ccrt_rwset_t *s = &r->rwset;
  size_t total = 0;
  for (size_t i = 0; i < s->nranges; i++) total += s->ranges[i].nreads;
  fl_ledger_read_t *reads = fl_calloc(s->nreads + total + 1, sizeof *reads);
  fl_ledger_range_read_t *ranges = fl_calloc(s->nranges + 1, sizeof *ranges);
  fl_ledger_write_t *writes = fl_calloc(s->nwrites + 1, sizeof *writes);
  for (size_t i = 0; i < s->nreads; i++)
    reads[i] = (fl_ledger_read_t){.key = s->reads[i].key, .exists = s->reads[i].exists,
                                  .version = {s->reads[i].version.block, s->reads[i].version.tx}};
  size_t k = s->nreads;
  for (size_t i = 0; i < s->nranges; i++) {
    const fl_ccrt_range_read_t *g = &s->ranges[i];
    ranges[i] = (fl_ledger_range_read_t){.start = g->start, .end = g->end, .reads = reads + k,
                                         .nreads = g->nreads, .exhausted = g->exhausted};
    for (size_t j = 0; j < g->nreads; j++, k++)
      reads[k] = (fl_ledger_read_t){.key = g->reads[j].key, .exists = true,
                                    .version = {g->reads[j].version.block,
                                                g->reads[j].version.tx}};
  }
  for (size_t i = 0; i < s->nwrites; i++)
    writes[i] = (fl_ledger_write_t){.key = s->writes[i].key, .value = s->writes[i].value,
                                    .is_delete = s->writes[i].is_delete};
  mem[0] = reads;
  mem[1] = ranges;
  mem[2] = writes;
  return (fl_ledger_mvcc_tx_t){.code = FL_LEDGER_TX_VALID, .reads = reads, .nreads = s->nreads,
                               .ranges = ranges, .nranges = s->nranges, .writes = writes,
                               .nwrites = s->nwrites};
}

static void queue(h_t *h, fl_ccrt_result_t *r) {
  assert_true(h->npending < 32);
  h->pending[h->npending++] = r;
}

/* MVCC-checks and commits the queued results as the next block; codes (if
 * not NULL) gets each tx's validation code. Frees the results. */
static void commit_block(h_t *h, uint8_t *codes_out) {
  size_t n = h->npending;
  fl_ledger_mvcc_tx_t mt[32];
  void *mem[32][3];
  for (size_t i = 0; i < n; i++) mt[i] = to_mvcc(h->pending[i], mem[i]);
  uint8_t codes[32];
  uint64_t num = fl_ledger_height(h->l);
  assert_int_equal(fl_ledger_mvcc_check(h->l, num, mt, n, codes), FL_OK);
  fl_ledger_tx_t txs[32];
  fl_ledger_blob_t *blobs[32];
  char txids[32][32];
  for (size_t i = 0; i < n; i++) {
    const fl_ccrt_result_t *r = h->pending[i];
    blobs[i] = fl_calloc(r->rwset.nblobs + h->npblob + 1, sizeof **blobs);
    size_t nb = 0;
    for (size_t b = 0; b < r->rwset.nblobs; b++)
      blobs[i][nb++] = (fl_ledger_blob_t){.hash = r->rwset.blobs[b].hash,
                                          .data = r->rwset.blobs[b].data};
    for (size_t b = 0; b < h->npblob; b++)
      if (h->pblob[b].r == r) blobs[i][nb++] = (fl_ledger_blob_t){
                                  .data = fl_sbuf_view(&h->pblob[b].blob)};
    snprintf(txids[i], sizeof txids[i], "b%llu-t%zu", (unsigned long long)num, i);
    txs[i] = (fl_ledger_tx_t){.tx_id = FL_BUF_STR(txids[i]), .code = codes[i],
                              .writes = mt[i].writes, .nwrites = mt[i].nwrites,
                              .blobs = blobs[i], .nblobs = nb};
  }
  char blk[32];
  snprintf(blk, sizeof blk, "block %llu", (unsigned long long)num);
  uint8_t bh[32];
  fl_sha256(blk, strlen(blk), bh);
  assert_int_equal(fl_ledger_commit(h->l, num, bh, FL_BUF_STR(blk), txs, n), FL_OK);
  for (size_t i = 0; i < n; i++) {
    for (int k = 0; k < 3; k++) fl_free(mem[i][k]);
    fl_free(blobs[i]);
    pblob_forget(h, h->pending[i]);
    fl_ccrt_result_free(h->pending[i]);
  }
  if (codes_out) memcpy(codes_out, codes, n);
  h->npending = 0;
  fl_ledger_snap_free(h->st.snap);
  assert_int_equal(fl_ledger_snap_new(h->l, &h->st.snap), FL_OK);
}

static void expect_status(const fl_ccrt_result_t *r, int want) {
  if (r->status != want)
    fprintf(stderr, "status %d (want %d): %.*s\n", r->status, want, (int)r->message.len,
            (const char *)r->message.data);
  assert_int_equal(r->status, want);
}

/* Simulates, expects 200, commits it alone in a block (must be VALID);
 * returns the payload parsed as JSON (owned). */
static fl_mlu_json_t *run(h_t *h, const ident_t *id, const fl_buf_t *blob, ...) {
  fl_buf_t args[16];
  va_list ap;
  va_start(ap, blob);
  size_t n = collect_args(ap, args);
  va_end(ap);
  fl_ccrt_result_t *r = sim_args(h, id, blob, args, n);
  expect_status(r, 200);
  fl_mlu_json_t *j = NULL;
  assert_int_equal(fl_mlu_json_parse(r->payload, &j), FL_OK);
  queue(h, r);
  uint8_t code;
  commit_block(h, &code);
  assert_int_equal(code, FL_LEDGER_TX_VALID);
  return j;
}

/* A query: simulates and returns the result (caller frees); nothing commits. */
#define QUERY(h, id, ...) sim((h), (id), NULL, __VA_ARGS__, NULL)

static const char *jstr(const fl_mlu_json_t *j, const char *k) {
  const char *s = fl_mlu_json_str(fl_mlu_json_get(j, k));
  return s ? s : "(null)";
}

static bool jnull(const fl_mlu_json_t *j, const char *k) {
  const fl_mlu_json_t *v = fl_mlu_json_get(j, k);
  return v && v->kind == FL_MLU_JNULL;
}

static uint64_t ju64(const fl_mlu_json_t *j, const char *k) {
  uint64_t v = 0;
  assert_true(fl_mlu_json_u64(fl_mlu_json_get(j, k), &v));
  return v;
}

static double jnum(const fl_mlu_json_t *j, const char *k) {
  double v = 0;
  assert_true(fl_mlu_json_num(fl_mlu_json_get(j, k), &v));
  return v;
}

/* ---- models, updates and signatures -------------------------------------------------- */

static void model_blob(const float *v, fl_sbuf_t *out) {
  fl_ml_tensors_t t = {0};
  uint32_t dw[2] = {4, 3}, db[1] = {3};
  assert_int_equal(fl_ml_tensors_add(&t, "w", 2, dw), FL_OK);
  assert_int_equal(fl_ml_tensors_add(&t, "b", 1, db), FL_OK);
  memcpy(t.values, v, P * sizeof(float));
  assert_int_equal(fl_ml_blob_encode(&t, out), FL_OK);
  fl_ml_tensors_free(&t);
}

static void hexof(const uint8_t *p, size_t n, char *out) { fl_hex_encode(p, n, out); }

typedef struct sub_s {
  fl_sbuf_t blob;
  char hash[65], sig[2 * FL_SIG_MAX_LEN + 1], samples[24], data[65], round[24];
} sub_t;

/* Prepares a SubmitUpdate: blob of delta, its hash (or the hash of other
 * bytes when bad_hash), the signature by signer over (task, round, hash). */
static void sub_make(sub_t *s, const char *task, uint64_t round, const float *delta,
                     uint64_t samples, const ident_t *signer, bool bad_hash) {
  memset(s, 0, sizeof *s);
  model_blob(delta, &s->blob);
  uint8_t h[32];
  if (bad_hash)
    fl_sha256("something else", 14, h);
  else
    fl_sha256(s->blob.data, s->blob.len, h);
  hexof(h, 32, s->hash);
  fl_sbuf_t msg = {0}, sig = {0};
  assert_int_equal(fl_mlu_signed_msg(task, strlen(task), round, h, &msg), FL_OK);
  assert_int_equal(fl_signer_sign(signer->key, msg.data, msg.len, &sig), FL_OK);
  hexof(sig.data, sig.len, s->sig);
  fl_sbuf_free(&msg);
  fl_sbuf_free(&sig);
  snprintf(s->samples, sizeof s->samples, "%llu", (unsigned long long)samples);
  snprintf(s->round, sizeof s->round, "%llu", (unsigned long long)round);
  char batch[64];
  snprintf(batch, sizeof batch, "batch-%s-%llu", signer->id, (unsigned long long)round);
  fl_sha256(batch, strlen(batch), h);
  hexof(h, 32, s->data);
}

static fl_ccrt_result_t *sub_sim(h_t *h, const ident_t *who, const char *task, sub_t *s) {
  fl_buf_t b = fl_sbuf_view(&s->blob);
  fl_ccrt_result_t *r = sim(h, who, &b, "SubmitUpdate", task, s->round, s->hash, s->sig,
                            s->samples, s->data, NULL);
  fl_sbuf_free(&s->blob);
  return r;
}

static fl_mlu_json_t *payload_json(const fl_ccrt_result_t *r) {
  fl_mlu_json_t *j = NULL;
  assert_int_equal(fl_mlu_json_parse(r->payload, &j), FL_OK);
  return j;
}

/* Submits and commits alone; returns the update record. */
static fl_mlu_json_t *submit1(h_t *h, const ident_t *who, const char *task, uint64_t round,
                              const float *delta, uint64_t samples, const ident_t *signer,
                              bool bad_hash) {
  sub_t s;
  sub_make(&s, task, round, delta, samples, signer ? signer : who, bad_hash);
  fl_ccrt_result_t *r = sub_sim(h, who, task, &s);
  expect_status(r, 200);
  /* The update record is the one write: the tensors travel once, as the
   * proposal's blob, and CloseRound reads them from the blob store. */
  assert_int_equal(r->rwset.nwrites, 1);
  assert_int_equal(r->rwset.nblobs, 0);
  assert_true(r->rwset.writes[0].key.len > 7 &&
              memcmp(r->rwset.writes[0].key.data, "update/", 7) == 0);
  fl_mlu_json_t *j = payload_json(r);
  /* The record names the submitter: client id and certificate fingerprint. */
  char ch[65];
  hexof(who->cert_sha, 32, ch);
  assert_string_equal(jstr(j, "cert_sha256"), ch);
  assert_string_equal(jstr(j, "client"), who->id);
  queue(h, r);
  uint8_t code;
  commit_block(h, &code);
  assert_int_equal(code, FL_LEDGER_TX_VALID);
  return j;
}

static const char task_def[] =
    "{\"arch\":\"linear 4x3\",\"rule\":\"trimmed\",\"f\":1,\"max_norm\":5,"
    "\"max_norm_z\":3.5,\"min_cosine\":0,\"norm_window\":3,\"min_updates\":3,"
    "\"round_ms\":60000,\"reject_limit\":0.5,\"reject_min\":2,\"init_hash\":\"%s\"}";

/* The task definition template with "%s" replaced by hash (owned). */
static char *def_with(const char *tmpl, const char *hash) {
  const char *at = strstr(tmpl, "%s");
  assert_non_null(at);
  return fl_sprintf("%.*s%s%s", (int)(at - tmpl), tmpl, hash, at + 2);
}

/* Creates task `task` with a fixed initial model; returns its hash (hex). */
static void create_task(h_t *h, const ident_t *admin, const char *task, const char *def_fmt,
                        float *init, char hash_hex[65]) {
  for (int i = 0; i < P; i++) init[i] = 0.1f * (float)(i % 5) - 0.2f;
  fl_sbuf_t blob = {0};
  model_blob(init, &blob);
  uint8_t hh[32];
  fl_sha256(blob.data, blob.len, hh);
  hexof(hh, 32, hash_hex);
  char *def = def_with(def_fmt, hash_hex);
  fl_buf_t b = fl_sbuf_view(&blob);
  fl_mlu_json_t *j = run(h, admin, &b, "CreateTask", task, def, NULL);
  assert_string_equal(jstr(j, "task"), task);
  assert_string_equal(jstr(j, "init_hash"), hash_hex);
  assert_int_equal(ju64(j, "n_params"), P);
  fl_mlu_json_free(j);
  fl_free(def);
  fl_sbuf_free(&blob);
}

/* Reads the global model blob/<hash> through the chaincode (GetBlob) and
 * checks that it hashes to hash_hex, as an edge client does. */
static void fetch_model(h_t *h, const ident_t *who, const char *hash_hex, float *out) {
  fl_ccrt_result_t *r = QUERY(h, who, "GetBlob", hash_hex);
  expect_status(r, 200);
  uint8_t hh[32];
  char hx[65];
  fl_sha256(r->payload.data, r->payload.len, hh);
  hexof(hh, 32, hx);
  assert_string_equal(hx, hash_hex);
  fl_ml_tensors_t t = {0};
  assert_int_equal(fl_ml_blob_decode(r->payload, &t), FL_OK);
  assert_int_equal(t.n_values, P);
  memcpy(out, t.values, P * sizeof(float));
  fl_ml_tensors_free(&t);
  fl_ccrt_result_free(r);
}

/* ---- identities shared by the tests ------------------------------------------------------ */

typedef struct ids_s {
  ident_t c1[5], c2[5], admin1, admin2, peer0;
} ids_t;

static int ids_setup(void **state) {
  ids_t *ids = fl_calloc(1, sizeof *ids);
  for (int i = 0; i < 5; i++) {
    char n[16];
    snprintf(n, sizeof n, "client%d", i + 1);
    ident_load(&ids->c1[i], 1, "users", n);
    ident_load(&ids->c2[i], 2, "users", n);
  }
  ident_load(&ids->admin1, 1, "users", "Admin");
  ident_load(&ids->admin2, 2, "users", "Admin");
  ident_load(&ids->peer0, 1, "peers", "peer0");
  *state = ids;
  return 0;
}

static int ids_teardown(void **state) {
  ids_t *ids = *state;
  for (int i = 0; i < 5; i++) {
    ident_free(&ids->c1[i]);
    ident_free(&ids->c2[i]);
  }
  ident_free(&ids->admin1);
  ident_free(&ids->admin2);
  ident_free(&ids->peer0);
  fl_free(ids);
  return 0;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_json_and_msg(void **state) {
  (void)state;
  fl_mlu_json_t *j = NULL;
  const char *txt = " {\"a\":[1,2.5,-3e2,true,false,null],\"b\":\"x\\u00e9\\n\\\"\",\"c\":{}} ";
  assert_int_equal(fl_mlu_json_parse(FL_BUF_STR(txt), &j), FL_OK);
  const fl_mlu_json_t *a = fl_mlu_json_get(j, "a");
  assert_int_equal(a->n, 6);
  uint64_t u;
  assert_true(fl_mlu_json_u64(&a->items[0], &u) && u == 1);
  assert_false(fl_mlu_json_u64(&a->items[1], &u));
  assert_true(a->items[2].num == -300);
  assert_string_equal(jstr(j, "b"), "x\xc3\xa9\n\"");
  fl_mlu_json_free(j);
  static const char *bad[] = {"", "{", "{\"a\":1,\"a\":2}", "[1,]", "01", "\"\\u0000\"",
                              "{\"a\" 1}", "[1] x", "\"\x01\"", "1.", "tru", "\"\\ud800\""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(fl_mlu_json_parse(FL_BUF_STR(bad[i]), &j), FL_EMALFORMED);
    assert_null(j);
  }
  char deep[80];
  memset(deep, '[', sizeof deep);
  assert_int_equal(fl_mlu_json_parse(FL_BUF(deep, sizeof deep), &j), FL_EMALFORMED);
  /* Writer: escapes and numbers. */
  fl_sbuf_t b = {0};
  fl_mlu_jw_strn(&b, "a\"b\\c\x01", 6);
  fl_sbuf_append_str(&b, " ");
  fl_mlu_jw_num(&b, 0.1);
  fl_sbuf_append_str(&b, " ");
  fl_mlu_jw_num(&b, NAN);
  assert_string_equal(fl_sbuf_cstr(&b), "\"a\\\"b\\\\c\\u0001\" 0.10000000000000001 null");
  fl_sbuf_free(&b);
  /* The signed message layout. */
  uint8_t h[32];
  memset(h, 0xab, 32);
  assert_int_equal(fl_mlu_signed_msg("t1", 2, 258, h, &b), FL_OK);
  assert_int_equal(b.len, 12 + 2 + 1 + 8 + 32);
  assert_memory_equal(b.data, "mlupdate/v1\0t1\0\0\0\0\0\0\0\x01\x02", 23);
  assert_memory_equal(b.data + 23, h, 32);
  fl_sbuf_free(&b);
  assert_int_equal(fl_mlu_signed_msg("bad/task", 8, 0, h, &b), FL_EINVAL);
  assert_int_equal(b.len, 0);
  char *id = NULL;
  assert_int_equal(fl_mlu_client_id("Org1MSP", 7, "client1@org1.example.com", &id), FL_OK);
  assert_string_equal(id, "Org1MSP:client1@org1.example.com");
  assert_true(fl_mlu_client_id_ok(id, strlen(id)));
  fl_free(id);
  assert_int_equal(fl_mlu_client_id("Org1MSP", 7, "bad/cn", &id), FL_EINVAL);
  assert_null(id);
  assert_string_equal(fl_mlu_reason_name(FL_MLU_OUTLIER_COSINE), "OUTLIER_COSINE");
}

/* The benign update of client k towards target t from global g. */
static void benign(const float *g, const float *t, int k, float *d) {
  for (int i = 0; i < P; i++)
    d[i] = 0.5f * (t[i] - g[i]) + 0.01f * (float)(((i + 3 * k) % 7) - 3);
}

static double dist(const float *a, const float *b) {
  double s = 0;
  for (int i = 0; i < P; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return sqrt(s);
}

/* Three rounds, five clients of org1; client5 sends sign-flipped updates
 * with a large norm: rejected every time, revoked automatically after
 * round 1, refused as REVOKED in round 2. The others' model approaches the
 * target; every update of a round goes into one block and all are VALID. */
static void test_three_rounds(void **state) {
  ids_t *ids = *state;
  h_t h;
  h_init(&h, FL_CCRT_IN_PROCESS);
  float init[P], target[P], g[P], d[P];
  char ghash[65], init_hash[65];
  create_task(&h, &ids->admin1, "ids", task_def, init, init_hash);
  for (int i = 0; i < P; i++) target[i] = 1.0f - 0.1f * (float)i;
  memcpy(ghash, init_hash, 65);
  double prev_dist = dist(init, target);

  for (uint64_t round = 0; round < 3; round++) {
    fetch_model(&h, &ids->c1[0], ghash, g);
    /* All five updates simulated on the same snapshot, one block. */
    for (int k = 0; k < 5; k++) {
      if (k < 4) {
        benign(g, target, k, d);
      } else {
        for (int i = 0; i < P; i++) d[i] = -20.0f * (target[i] - g[i]) - 1.0f;
      }
      sub_t s;
      sub_make(&s, "ids", round, d, 100 + (uint64_t)k, &ids->c1[k], false);
      fl_ccrt_result_t *r = sub_sim(&h, &ids->c1[k], "ids", &s);
      expect_status(r, 200);
      assert_true(r->has_event);
      assert_true(r->event_name.len == 15 && memcmp(r->event_name.data, "UpdateSubmitted", 15) == 0);
      fl_mlu_json_t *j = payload_json(r);
      if (k < 4) {
        assert_string_equal(jstr(j, "status"), "ACCEPTED");
        assert_true(jnull(j, "reason"));
      } else {
        assert_string_equal(jstr(j, "status"), "REJECTED");
        assert_string_equal(jstr(j, "reason"), round < 2 ? "OUTLIER_MAX_NORM" : "REVOKED");
      }
      fl_mlu_json_free(j);
      /* A submission writes its own update key only (no blob/ state). */
      assert_int_equal(r->rwset.nwrites, 1);
      assert_true(r->rwset.writes[0].key.len > 7 &&
                  memcmp(r->rwset.writes[0].key.data, "update/", 7) == 0);
      queue(&h, r);
    }
    uint8_t codes[5];
    commit_block(&h, codes);
    for (int k = 0; k < 5; k++) assert_int_equal(codes[k], FL_LEDGER_TX_VALID);

    /* The round keeper (a peer identity) closes the round. */
    fl_ccrt_result_t *c = sim(&h, &ids->peer0, NULL, "CloseRound", "ids",
                              round == 0 ? "0" : round == 1 ? "1" : "2", NULL);
    expect_status(c, 200);
    fl_mlu_json_t *m = payload_json(c);
    assert_string_equal(jstr(m, "parent"), ghash);
    assert_string_equal(jstr(m, "rule"), "trimmed");
    const fl_mlu_json_t *ups = fl_mlu_json_get(m, "updates");
    assert_int_equal(ups->n, 4);
    for (int k = 0; k < 4; k++)
      assert_string_equal(jstr(&ups->items[k], "client"), ids->c1[k].id);
    assert_true(fabs(jnum(&ups->items[0], "weight") - 0.25) < 1e-12);
    memcpy(ghash, jstr(m, "hash"), 65);
    fl_mlu_json_free(m);
    /* RoundClosed event; in round 1 it names the revoked client. */
    assert_true(c->has_event);
    fl_mlu_json_t *ev = NULL;
    assert_int_equal(fl_mlu_json_parse(c->event_payload, &ev), FL_OK);
    assert_string_equal(jstr(ev, "model"), ghash);
    assert_int_equal(ju64(ev, "next_round"), round + 1);
    const fl_mlu_json_t *rv = fl_mlu_json_get(ev, "revoked");
    assert_int_equal(rv->n, round == 1 ? 1 : 0);
    if (round == 1) assert_string_equal(fl_mlu_json_str(&rv->items[0]), ids->c1[4].id);
    fl_mlu_json_free(ev);
    queue(&h, c);
    commit_block(&h, codes);
    assert_int_equal(codes[0], FL_LEDGER_TX_VALID);

    fetch_model(&h, &ids->c1[0], ghash, g);
    double dd = dist(g, target);
    assert_true(dd < prev_dist * 0.8); /* the benign clients' model improves */
    prev_dist = dd;
    /* The new global model is also in the ledger's blob store. */
    uint8_t hh[32];
    assert_int_equal(fl_hex_decode(ghash, 64, hh, 32), 32);
    fl_sbuf_t blob = {0};
    assert_int_equal(fl_ledger_blob_get(h.l, h.st.snap, hh, &blob), FL_OK);
    fl_sbuf_free(&blob);
  }

  /* client5 is revoked, with the automatic reason; counts add up. */
  fl_ccrt_result_t *r = QUERY(&h, &ids->admin1, "GetClient", ids->c1[4].id);
  expect_status(r, 200);
  fl_mlu_json_t *j = payload_json(r);
  assert_true(fl_mlu_json_get(j, "revoked")->b);
  assert_int_equal(ju64(j, "rejected"), 3);
  assert_int_equal(ju64(j, "accepted"), 0);
  assert_non_null(strstr(jstr(j, "revoked_reason"), "automatic"));
  assert_string_equal(jstr(j, "revoked_by"), "mlupdate");
  fl_mlu_json_free(j);
  fl_ccrt_result_free(r);
  r = QUERY(&h, &ids->admin1, "GetClient", ids->c1[0].id);
  j = payload_json(r);
  assert_false(fl_mlu_json_get(j, "revoked")->b);
  assert_int_equal(ju64(j, "accepted"), 3);
  fl_mlu_json_free(j);
  fl_ccrt_result_free(r);

  /* Model history: a chain from the initial model; each hash has its blob. */
  r = QUERY(&h, &ids->admin1, "GetModelHistory", "ids");
  expect_status(r, 200);
  j = payload_json(r);
  const fl_mlu_json_t *ms = fl_mlu_json_get(j, "models");
  assert_int_equal(ms->n, 3);
  const char *parent = init_hash;
  char before_last[2 * FL_SHA256_LEN + 1] = ""; /* round 2's start model */
  for (size_t i = 0; i < 3; i++) {
    assert_string_equal(jstr(&ms->items[i], "parent"), parent);
    snprintf(before_last, sizeof before_last, "%s", parent);
    assert_int_equal(ju64(&ms->items[i], "round"), i);
    parent = jstr(&ms->items[i], "hash");
    float tmp[P];
    fetch_model(&h, &ids->admin1, parent, tmp);
  }
  assert_string_equal(parent, ghash);
  fl_mlu_json_free(j);
  fl_ccrt_result_free(r);

  /* Round 3 is open from the last model, with reference norms of rounds
   * 0..2 (4 accepted each, norm_window 3) and the last step: the last
   * model minus round 2's start model (step_from). */
  r = QUERY(&h, &ids->admin1, "GetRound", "ids", "3");
  expect_status(r, 200);
  j = payload_json(r);
  assert_string_equal(jstr(j, "status"), "OPEN");
  assert_string_equal(jstr(j, "start_model"), ghash);
  assert_int_equal(fl_mlu_json_get(j, "ref_norms")->n, 12);
  assert_string_equal(jstr(j, "step_from"), before_last);
  assert_null(fl_mlu_json_get(j, "step"));
  fl_mlu_json_free(j);
  fl_ccrt_result_free(r);
  r = QUERY(&h, &ids->admin1, "GetRound", "ids", "1");
  j = payload_json(r);
  assert_string_equal(jstr(j, "status"), "CLOSED");
  assert_int_equal(ju64(j, "submitted"), 5);
  assert_int_equal(ju64(j, "accepted"), 4);
  assert_int_equal(ju64(j, "rejected"), 1);
  fl_mlu_json_free(j);
  fl_ccrt_result_free(r);

  /* ListUpdates and the history of a key. */
  r = QUERY(&h, &ids->admin1, "ListUpdates", "ids", "2");
  expect_status(r, 200);
  j = payload_json(r);
  assert_int_equal(j->n, 5);
  fl_mlu_json_free(j);
  fl_ccrt_result_free(r);
  r = QUERY(&h, &ids->admin1, "GetHistory", "round/ids/1");
  expect_status(r, 200);
  j = payload_json(r);
  assert_int_equal(j->n, 2); /* opened, then closed */
  assert_string_equal(jstr(fl_mlu_json_get(&j->items[0], "value"), "status"), "CLOSED");
  assert_string_equal(jstr(fl_mlu_json_get(&j->items[1], "value"), "status"), "OPEN");
  fl_mlu_json_free(j);
  fl_ccrt_result_free(r);
  h_free(&h);
}

static fl_mlu_json_t *get_update(h_t *h, const ident_t *q, const char *task, const char *round,
                                 const char *client) {
  fl_ccrt_result_t *r = QUERY(h, q, "GetUpdate", task, round, client);
  expect_status(r, 200);
  fl_mlu_json_t *j = payload_json(r);
  fl_ccrt_result_free(r);
  return j;
}

static void expect_rejected(fl_mlu_json_t *j, const char *reason) {
  assert_string_equal(jstr(j, "status"), "REJECTED");
  assert_string_equal(jstr(j, "reason"), reason);
  assert_false(jnull(j, "detail"));
  fl_mlu_json_free(j);
}

static const char small_def[] =
    "{\"rule\":\"fedavg\",\"max_norm\":5,\"max_norm_z\":3.5,\"min_cosine\":0,"
    "\"min_updates\":3,\"round_ms\":60000,\"reject_limit\":0.9,\"reject_min\":50,"
    "\"init_hash\":\"%s\"}";

/* Every rejection path, each recorded with its reason; and the error
 * responses where nothing can be recorded. Run in both modes: in fork mode
 * the creator's certificate comes from the worker's cache (peer/ccrt/certs.c),
 * where one identity's parsed certificate must never answer for another's. */
static void rejections(ids_t *ids, fl_ccrt_mode_t mode) {
  h_t h;
  h_init(&h, mode);
  float init[P], d[P];
  char ih[65];
  create_task(&h, &ids->admin1, "rj", small_def, init, ih);
  for (int i = 0; i < P; i++) d[i] = 0.2f;

  /* Bad hash. */
  fl_mlu_json_t *j = submit1(&h, &ids->c1[0], "rj", 0, d, 10, NULL, true);
  assert_false(fl_mlu_json_get(j, "blob_stored")->b);
  assert_true(jnull(j, "norm"));
  expect_rejected(j, "BAD_HASH");
  /* Bad signature: client2 sends an update signed by client3's key. */
  expect_rejected(submit1(&h, &ids->c1[1], "rj", 0, d, 10, &ids->c1[2], false), "BAD_SIGNATURE");
  /* Wrong role: an admin submits. */
  expect_rejected(submit1(&h, &ids->admin1, "rj", 0, d, 10, NULL, false), "WRONG_ROLE");
  /* Revoked: Admin@org1 revokes client3, then client3 submits. */
  fl_mlu_json_t *c = run(&h, &ids->admin1, NULL, "RevokeClient", ids->c1[2].id, "stolen key", NULL);
  assert_true(fl_mlu_json_get(c, "revoked")->b);
  fl_mlu_json_free(c);
  expect_rejected(submit1(&h, &ids->c1[2], "rj", 0, d, 10, NULL, false), "REVOKED");
  /* Outlier by absolute norm. */
  float big[P];
  for (int i = 0; i < P; i++) big[i] = 3.0f;
  j = submit1(&h, &ids->c1[4], "rj", 0, big, 10, NULL, false);
  assert_true(fl_mlu_json_get(j, "blob_stored")->b);
  assert_true(jnum(j, "norm") > 5);
  expect_rejected(j, "OUTLIER_MAX_NORM");
  /* Second update in a round: the first stays ACCEPTED, the second is
   * recorded under update/<t>/<r>/<client>/<tx id>. */
  j = submit1(&h, &ids->c1[3], "rj", 0, d, 10, NULL, false);
  assert_string_equal(jstr(j, "status"), "ACCEPTED");
  fl_mlu_json_free(j);
  j = submit1(&h, &ids->c1[3], "rj", 0, d, 10, NULL, false);
  char *dup_tx = fl_strdup(jstr(j, "tx_id"));
  expect_rejected(j, "DUPLICATE");
  j = get_update(&h, &ids->admin1, "rj", "0", ids->c1[3].id);
  assert_string_equal(jstr(j, "status"), "ACCEPTED");
  fl_mlu_json_free(j);
  char *dkey = fl_sprintf("update/rj/0/%s/%s", ids->c1[3].id, dup_tx);
  fl_ccrt_result_t *r = QUERY(&h, &ids->admin1, "GetHistory", dkey);
  j = payload_json(r);
  assert_int_equal(j->n, 1);
  assert_string_equal(jstr(fl_mlu_json_get(&j->items[0], "value"), "reason"), "DUPLICATE");
  fl_mlu_json_free(j);
  fl_ccrt_result_free(r);
  fl_free(dkey);
  fl_free(dup_tx);
  /* Two submissions by one client simulated for the same block: the
   * second is invalidated by MVCC (it read the key the first wrote). */
  sub_t s1, s2;
  sub_make(&s1, "rj", 0, d, 10, &ids->c2[0], false);
  sub_make(&s2, "rj", 0, d, 11, &ids->c2[0], false);
  queue(&h, sub_sim(&h, &ids->c2[0], "rj", &s1));
  queue(&h, sub_sim(&h, &ids->c2[0], "rj", &s2));
  uint8_t codes[2];
  commit_block(&h, codes);
  assert_int_equal(codes[0], FL_LEDGER_TX_VALID);
  assert_int_equal(codes[1], FL_LEDGER_TX_MVCC_READ_CONFLICT);
  /* Nothing is recorded for these: unknown task, a future round, bad args. */
  sub_t s;
  sub_make(&s, "rj", 7, d, 10, &ids->c2[1], false);
  r = sub_sim(&h, &ids->c2[1], "rj", &s);
  expect_status(r, 404);
  assert_int_equal(r->rwset.nwrites, 0);
  fl_ccrt_result_free(r);
  sub_make(&s, "nosuchtask", 0, d, 10, &ids->c2[1], false);
  r = sub_sim(&h, &ids->c2[1], "nosuchtask", &s);
  expect_status(r, 404);
  fl_ccrt_result_free(r);
  sub_make(&s, "rj", 0, d, 0, &ids->c2[1], false); /* zero samples */
  r = sub_sim(&h, &ids->c2[1], "rj", &s);
  expect_status(r, 400);
  fl_ccrt_result_free(r);
  r = sim(&h, &ids->c2[1], NULL, "SubmitUpdate", "rj", "0", NULL);
  expect_status(r, 400);
  fl_ccrt_result_free(r);
  /* Not a tensor blob / wrong shape, recorded. */
  sub_make(&s, "rj", 0, d, 10, &ids->c2[1], false);
  fl_sbuf_free(&s.blob);
  fl_sbuf_append_str(&s.blob, "not a tensor blob");
  uint8_t hh[32];
  fl_sha256(s.blob.data, s.blob.len, hh);
  hexof(hh, 32, s.hash);
  fl_sbuf_t msg = {0}, sig = {0};
  fl_mlu_signed_msg("rj", 2, 0, hh, &msg);
  fl_signer_sign(ids->c2[1].key, msg.data, msg.len, &sig);
  hexof(sig.data, sig.len, s.sig);
  fl_sbuf_free(&msg);
  fl_sbuf_free(&sig);
  r = sub_sim(&h, &ids->c2[1], "rj", &s);
  expect_status(r, 200);
  expect_rejected(payload_json(r), "BAD_BLOB");
  fl_ccrt_result_free(r);

  /* Close round 0: CloseRound needs admin or peer; not ready with 2
   * accepted (min 3) before the deadline; then two org2 clients make it. */
  r = sim(&h, &ids->c1[0], NULL, "CloseRound", "rj", "0", NULL);
  expect_status(r, 403);
  fl_ccrt_result_free(r);
  r = sim(&h, &ids->admin1, NULL, "CloseRound", "rj", "0", NULL);
  expect_status(r, 400);
  fl_ccrt_result_free(r);
  float d2[P], d3[P];
  for (int i = 0; i < P; i++) {
    d2[i] = 0.22f;
    d3[i] = 0.24f;
  }
  fl_mlu_json_free(submit1(&h, &ids->c2[2], "rj", 0, d2, 10, NULL, false));
  fl_mlu_json_free(submit1(&h, &ids->c2[3], "rj", 0, d3, 10, NULL, false));
  /* Two round keepers close at once: one wins, the other is invalidated. */
  fl_ccrt_result_t *k1 = sim(&h, &ids->admin1, NULL, "CloseRound", "rj", "0", NULL);
  fl_ccrt_result_t *k2 = sim(&h, &ids->peer0, NULL, "CloseRound", "rj", "0", NULL);
  expect_status(k1, 200);
  expect_status(k2, 200);
  j = payload_json(k1);
  assert_int_equal(fl_mlu_json_get(j, "updates")->n, 4); /* c1[3], c2[0], c2[2], c2[3] */
  fl_mlu_json_free(j);
  queue(&h, k1);
  queue(&h, k2);
  commit_block(&h, codes);
  assert_int_equal(codes[0], FL_LEDGER_TX_VALID);
  assert_int_equal(codes[1], FL_LEDGER_TX_MVCC_READ_CONFLICT);
  /* Idempotent: closing a closed round is 200 with no writes. */
  r = sim(&h, &ids->admin2, NULL, "CloseRound", "rj", "0", NULL);
  expect_status(r, 200);
  assert_int_equal(r->rwset.nwrites, 0);
  assert_int_equal(r->rwset.nblobs, 0);
  assert_false(r->has_event);
  j = payload_json(r);
  assert_string_equal(jstr(j, "status"), "CLOSED");
  fl_mlu_json_free(j);
  fl_ccrt_result_free(r);

  /* Closed round. */
  expect_rejected(submit1(&h, &ids->c2[4], "rj", 0, d, 10, NULL, false), "ROUND_CLOSED");
  /* Round 1: reference norms of round 0 (about 0.77..0.93) and its step. */
  float far[P], flip[P];
  for (int i = 0; i < P; i++) {
    far[i] = 0.9f; /* norm 3.5 < max_norm 5, far above the references */
    flip[i] = -0.2f;
  }
  j = submit1(&h, &ids->c1[0], "rj", 1, far, 10, NULL, false);
  assert_true(jnum(j, "norm_z") > 3.5);
  expect_rejected(j, "OUTLIER_NORM_Z");
  j = submit1(&h, &ids->c1[1], "rj", 1, flip, 10, NULL, false);
  assert_true(jnum(j, "cosine") < -0.99);
  expect_rejected(j, "OUTLIER_COSINE");
  j = submit1(&h, &ids->c1[3], "rj", 1, d, 10, NULL, false);
  assert_string_equal(jstr(j, "status"), "ACCEPTED");
  assert_true(jnum(j, "cosine") > 0.99);
  fl_mlu_json_free(j);

  /* Admin rules: creation and revocation. */
  fl_sbuf_t blob = {0};
  model_blob(init, &blob);
  fl_buf_t bv = fl_sbuf_view(&blob);
  char *def = def_with(small_def, ih);
  r = sim(&h, &ids->c1[0], &bv, "CreateTask", "t2", def, NULL);
  expect_status(r, 403);
  fl_ccrt_result_free(r);
  r = sim(&h, &ids->admin1, &bv, "CreateTask", "rj", def, NULL);
  expect_status(r, 400); /* exists */
  fl_ccrt_result_free(r);
  r = sim(&h, &ids->admin1, &bv, "CreateTask", "t2", "{\"rule\":\"fedavg\",\"typo\":1}", NULL);
  expect_status(r, 400);
  fl_ccrt_result_free(r);
  char *def2 = def_with(small_def, "00000000000000000000000000000000000000000000000000000000000000ff");
  r = sim(&h, &ids->admin1, &bv, "CreateTask", "t2", def2, NULL);
  expect_status(r, 400); /* hash mismatch */
  fl_ccrt_result_free(r);
  fl_free(def2);
  fl_free(def);
  fl_sbuf_free(&blob);
  r = sim(&h, &ids->admin2, NULL, "RevokeClient", ids->c1[0].id, "x", NULL);
  expect_status(r, 403); /* another organisation's client */
  fl_ccrt_result_free(r);
  r = sim(&h, &ids->c1[1], NULL, "RevokeClient", ids->c1[0].id, "x", NULL);
  expect_status(r, 403);
  fl_ccrt_result_free(r);
  r = sim(&h, &ids->admin1, NULL, "RevokeClient", ids->c1[2].id, "again", NULL);
  expect_status(r, 200); /* already revoked: no write */
  assert_int_equal(r->rwset.nwrites, 0);
  fl_ccrt_result_free(r);
  r = sim(&h, &ids->admin1, NULL, "NoSuchFunction", NULL);
  expect_status(r, 404);
  fl_ccrt_result_free(r);
  h_free(&h);
}

static void test_rejections(void **state) { rejections(*state, FL_CCRT_IN_PROCESS); }
static void test_rejections_fork(void **state) { rejections(*state, FL_CCRT_FORK); }

/* ---- determinism: same proposal twice, two modes, two processes --------------------------- */

static const char krum_def[] =
    "{\"rule\":\"multikrum\",\"f\":1,\"clip_norm\":2,\"min_updates\":5,\"round_ms\":60000,"
    "\"init_hash\":\"%s\"}";

#define CLOSE_TXID "tx-close-det"
#define CLOSE_TS 1700000999000ull

/* Ten clients (org1 and org2) submit in one block; the round is ready to
 * close. */
static void build_round(h_t *h, ids_t *ids) {
  float init[P], d[P];
  char ih[65];
  create_task(h, &ids->admin1, "det", krum_def, init, ih);
  for (int k = 0; k < 10; k++) {
    for (int i = 0; i < P; i++)
      d[i] = 0.1f * sinf((float)(i + 1) * 0.7f + (float)k * 0.3f) + 0.05f;
    if (k == 6)
      for (int i = 0; i < P; i++) d[i] = -4.0f * d[i];
    const ident_t *who = k < 5 ? &ids->c1[k] : &ids->c2[k - 5];
    sub_t s;
    sub_make(&s, "det", 0, d, 50 + (uint64_t)k * 7, who, false);
    queue(h, sub_sim(h, who, "det", &s));
  }
  uint8_t codes[10];
  commit_block(h, codes);
  for (int k = 0; k < 10; k++) assert_int_equal(codes[k], FL_LEDGER_TX_VALID);
}

static fl_ccrt_result_t *close_det(fl_ccrt_cc_t *cc, lstate_t *st, const ident_t *peer) {
  fl_buf_t args[3] = {FL_BUF_STR("CloseRound"), FL_BUF_STR("det"), FL_BUF_STR("0")};
  fl_ccrt_result_t *r = NULL;
  assert_int_equal(sim_raw(cc, st, peer, CLOSE_TXID, CLOSE_TS, NULL, args, 3, &r), FL_OK);
  expect_status(r, 200);
  return r;
}

static int run_child(const char *ldir, const char *out) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char *envv = fl_sprintf("%s|%s", ldir, out);
    setenv("FL_MLU_CHILD", envv, 1);
    char *argv[] = {(char *)"test_mlupdate", NULL};
    execve("/proc/self/exe", argv, environ);
    _exit(127);
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_determinism(void **state) {
  ids_t *ids = *state;
  h_t h;
  h_init(&h, FL_CCRT_FORK);
  build_round(&h, ids);

  /* Twice in the same runtime (worker process), and once in-process. */
  fl_ccrt_result_t *a = close_det(h.cc, &h.st, &ids->peer0);
  fl_ccrt_result_t *b = close_det(h.cc, &h.st, &ids->peer0);
  assert_int_equal(a->rwset_bytes.len, b->rwset_bytes.len);
  assert_memory_equal(a->rwset_bytes.data, b->rwset_bytes.data, a->rwset_bytes.len);
  fl_ccrt_cc_t *cc2 = NULL;
  fl_ccrt_t *rt2 = load_runtime(FL_CCRT_IN_PROCESS, &cc2);
  fl_ccrt_result_t *c = close_det(cc2, &h.st, &ids->peer0);
  assert_true(fl_buf_eq(a->rwset_bytes, c->rwset_bytes));
  assert_true(fl_buf_eq(a->payload, c->payload));
  fl_ccrt_result_free(b);
  fl_ccrt_result_free(c);
  fl_ccrt_free(rt2);
  /* Multi-Krum with f = 1 leaves out the flipped update (client2 of org2). */
  fl_mlu_json_t *m = payload_json(a);
  const fl_mlu_json_t *ups = fl_mlu_json_get(m, "updates");
  assert_int_equal(ups->n, 10);
  for (size_t i = 0; i < ups->n; i++) {
    bool flipped = strcmp(jstr(&ups->items[i], "client"), ids->c2[1].id) == 0;
    assert_int_equal(fl_mlu_json_get(&ups->items[i], "selected")->b, !flipped);
  }
  /* The stored blob of the new model hashes to the recorded hash. */
  bool found = false;
  for (size_t i = 0; i < a->rwset.nblobs; i++) {
    char hx[65];
    hexof(a->rwset.blobs[i].hash, 32, hx);
    found |= strcmp(hx, jstr(m, "hash")) == 0;
  }
  assert_true(found);
  fl_mlu_json_free(m);

  /* A second process opens the same ledger and simulates the same proposal. */
  h_close_ledger(&h);
  char *out = fl_sprintf("%s/child.out", h.dir);
  assert_int_equal(run_child(h.ldir, out), 0);
  fl_sbuf_t got = {0};
  read_file(out, &got);
  assert_true(fl_buf_eq(fl_sbuf_view(&got), a->rwset_bytes));
  fl_sbuf_free(&got);
  fl_free(out);
  fl_ccrt_result_free(a);
  h_free(&h);
}

/* The child side of test_determinism. */
static int child_main(const char *spec) {
  char *s = fl_strdup(spec);
  char *bar = strchr(s, '|');
  if (bar == NULL) return 2;
  *bar = '\0';
  ident_t peer;
  ident_load(&peer, 1, "peers", "peer0");
  lstate_t st = {0};
  fl_ledger_opts_t lo = {0};
  if (fl_ledger_open(s, &lo, &st.l) != FL_OK) return 3;
  if (fl_ledger_snap_new(st.l, &st.snap) != FL_OK) return 4;
  fl_ccrt_cc_t *cc = NULL;
  fl_ccrt_t *rt = load_runtime(FL_CCRT_IN_PROCESS, &cc);
  fl_ccrt_result_t *r = close_det(cc, &st, &peer);
  FILE *f = fopen(bar + 1, "wb");
  if (f == NULL || fwrite(r->rwset_bytes.data, 1, r->rwset_bytes.len, f) != r->rwset_bytes.len)
    return 5;
  fclose(f);
  fl_ccrt_result_free(r);
  fl_ccrt_free(rt);
  fl_ledger_snap_free(st.snap);
  fl_ledger_close(st.l);
  ident_free(&peer);
  fl_free(s);
  return 0;
}

/* fl_mlu_score_update: the acceptance rule the chaincode and the plain-FL
 * runner share (score.h): each reason, their order, and the cases where a
 * score is not computed (no references: z = 0; no step or a zero step: no
 * cosine). */
static void test_score_rule(void **state) {
  (void)state;
  float u[4] = {3, 4, 0, 0};    /* norm 5 */
  float big[4] = {30, 40, 0, 0}; /* norm 50 */
  float step[4] = {1, 0, 0, 0}, neg[4] = {-1, 0, 0, 0}, zero[4] = {0};
  double ref[5] = {4.9, 5.0, 5.1, 5.0, 4.95};
  fl_mlu_filter_t off = {.max_norm = 0, .max_norm_z = 0, .min_cosine = -1};
  fl_mlu_scores_t sc;
  assert_int_equal(fl_mlu_score_update(big, 4, ref, 5, neg, &off, &sc), FL_MLU_OK);
  assert_true(fabs(sc.norm - 50) < 1e-9);
  assert_true(sc.norm_z > 100);
  assert_true(fabs(sc.cosine + 0.6) < 1e-9);
  /* max_norm first, then the z-score, then the cosine. */
  fl_mlu_filter_t all = {.max_norm = 20, .max_norm_z = 3, .min_cosine = 0};
  assert_int_equal(fl_mlu_score_update(big, 4, ref, 5, neg, &all, &sc), FL_MLU_OUTLIER_MAX_NORM);
  all.max_norm = 0;
  assert_int_equal(fl_mlu_score_update(big, 4, ref, 5, neg, &all, &sc), FL_MLU_OUTLIER_NORM_Z);
  assert_int_equal(fl_mlu_score_update(u, 4, ref, 5, neg, &all, &sc), FL_MLU_OUTLIER_COSINE);
  assert_int_equal(fl_mlu_score_update(u, 4, ref, 5, step, &all, &sc), FL_MLU_OK);
  assert_true(fabs(sc.cosine - 0.6) < 1e-9);
  /* No references (round 0): z is 0, nothing is an outlier by z. */
  assert_int_equal(fl_mlu_score_update(big, 4, NULL, 0, step, &all, &sc), FL_MLU_OK);
  assert_true(sc.norm_z == 0);
  /* No step, or a zero step: no cosine (NAN), no cosine rejection. */
  assert_int_equal(fl_mlu_score_update(u, 4, ref, 5, NULL, &all, &sc), FL_MLU_OK);
  assert_true(isnan(sc.cosine));
  assert_int_equal(fl_mlu_score_update(u, 4, ref, 5, zero, &all, &sc), FL_MLU_OK);
  assert_true(isnan(sc.cosine));
  /* The boundaries are inclusive for acceptance. */
  fl_mlu_filter_t edge = {.max_norm = 5, .max_norm_z = 0, .min_cosine = 0.6};
  assert_int_equal(fl_mlu_score_update(u, 4, NULL, 0, step, &edge, &sc), FL_MLU_OK);
}

int main(void) {
  const char *child = getenv("FL_MLU_CHILD");
  if (child) return child_main(child);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_and_msg),
      cmocka_unit_test(test_score_rule),
      cmocka_unit_test(test_three_rounds),
      cmocka_unit_test(test_rejections),
      cmocka_unit_test(test_rejections_fork),
      cmocka_unit_test(test_determinism),
  };
  return cmocka_run_group_tests_name("mlupdate", tests, ids_setup, ids_teardown);
}
