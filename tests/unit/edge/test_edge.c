/* SPDX-License-Identifier: Apache-2.0
 *
 * test_edge.c: the parts of fedledger-edge and fedledger-keeper that need no
 * network: settings (file:line errors, precedence), local data (partitions,
 * generated fallback, NSL-KDD when ../shared is there), the update and its
 * signature (verified with fl_crypto against client1's certificate from the
 * shared cryptogen fixture FL_TEST_PKI_DIR), the data-batch hash, DP noise,
 * attacks, the model-hash check, record and event decoding, the keeper's
 * decision function, the session's identity and reconnect behaviour against
 * a closed port, and the executables' exit codes.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "chaincode/mlupdate/mlupdate.h"
#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/crypto/hash.h"
#include "common/crypto/sign.h"
#include "common/crypto/x509.h"
#include "ml/agg.h"
#include "ml/edge/data.h"
#include "ml/edge/edge.h"
#include "ml/edge/ledger.h"
#include "ml/edge/opts.h"
#include "ml/edge/update.h"
#include "ml/keeper/keeper.h"

#define CLIENT1 "peerOrganizations/org1.example.com/users/client1@org1.example.com"

static char tmpdir[256];

static char *tpath(const char *name) { return fl_sprintf("%s/%s", tmpdir, name); }

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static const char *pki(void) {
  const char *p = getenv("FL_TEST_PKI_DIR");
  if (p == NULL || *p == '\0') {
    fprintf(stderr, "FL_TEST_PKI_DIR is not set\n");
    fail();
  }
  return p;
}

/* argv helper: copies the NULL-terminated list into writable storage
 * (argv is char *const *, and the tests pass literals). */
static char argstore[16][512];

static int argv_of(char **out, const char *first, ...) {
  int n = 0;
  snprintf(argstore[n], sizeof argstore[n], "fedledger-edge");
  out[n] = argstore[n];
  n++;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a != NULL && n < 15; a = va_arg(ap, const char *)) {
    snprintf(argstore[n], sizeof argstore[n], "%s", a);
    out[n] = argstore[n];
    n++;
  }
  va_end(ap);
  out[n] = NULL;
  return n;
}

/* ---- settings ------------------------------------------------------------------ */

static const char *good_yaml =
    "identity:\n"
    "  mspid: Org1MSP\n"
    "  msp_dir: /nonexistent/msp\n"
    "  tls_dir: /nonexistent/tls\n"
    "gateway:\n"
    "  endpoint: 127.0.0.1:7051\n"
    "task: t1\n"
    "train:\n"
    "  epochs: 2\n"
    "  lr: 0.01\n"
    "data:\n"
    "  partition: 2/5\n";

static void test_cfg_precedence(void **state) {
  (void)state;
  char *p = tpath("edge.yaml");
  write_file(p, good_yaml);
  char *argv[16];
  int argc = argv_of(argv, "--config", p, "--epochs", "5", "--attack=signflip", NULL);
  setenv("FEDLEDGER_TRAIN_LR", "0.5", 1);
  fl_edge_cfg_t c;
  bool help = true;
  char *err = NULL;
  fl_status_t rc = fl_edge_cfg_load(argc, argv, &c, &help, &err);
  unsetenv("FEDLEDGER_TRAIN_LR");
  if (rc != FL_OK) fprintf(stderr, "err: %s\n", err);
  assert_int_equal(rc, FL_OK);
  assert_false(help);
  assert_int_equal(c.epochs, 5);           /* flag over file */
  assert_true(c.lr == 0.5);                /* env over file */
  assert_int_equal(c.part, 2);             /* file */
  assert_int_equal(c.parts, 5);
  assert_int_equal(c.batch, 64);           /* default */
  assert_string_equal(c.mspid, "Org1MSP");
  assert_string_equal(c.channel, "fedledger");
  assert_int_equal(c.attack_kind, FL_ML_ATTACK_SIGNFLIP);
  assert_null(c.events);                   /* "" default = absent */
  assert_int_equal(c.poll_ms, 2000);
  fl_edge_cfg_free(&c);
  assert_null(c.mspid);
  fl_edge_cfg_free(&c); /* idempotent */
  fl_free(p);
}

/* Loads argv and expects FL_ECONFIG with an error containing `want`. */
static void expect_cfg_error(char **argv, int argc, const char *want) {
  fl_edge_cfg_t c;
  bool help = false;
  char *err = NULL;
  fl_status_t rc = fl_edge_cfg_load(argc, argv, &c, &help, &err);
  if (rc == FL_OK) fl_edge_cfg_free(&c);
  assert_int_not_equal(rc, FL_OK);
  assert_non_null(err);
  if (strstr(err, want) == NULL) fprintf(stderr, "error '%s' lacks '%s'\n", err, want);
  assert_non_null(strstr(err, want));
  fl_free(err);
}

static void test_cfg_errors_name_source(void **state) {
  (void)state;
  char *p = tpath("bad.yaml");
  char *argv[16];
  int argc = argv_of(argv, "--config", p, NULL);
  char *yaml;
  /* a range error on line 9 */
  yaml = fl_sprintf("%s", good_yaml);
  yaml[strstr(yaml, "epochs: 2") - yaml + 8] = '0';
  write_file(p, yaml);
  fl_free(yaml);
  expect_cfg_error(argv, argc, "bad.yaml:9: train.epochs");
  /* a later check (partition) on line 12 */
  yaml = fl_sprintf("%.*s  partition: 5/5\n", (int)(strstr(good_yaml, "  partition") - good_yaml),
                    good_yaml);
  write_file(p, yaml);
  fl_free(yaml);
  expect_cfg_error(argv, argc, "bad.yaml:12: data.partition: expected I/N");
  /* an unknown key (a typo) on line 13 */
  yaml = fl_sprintf("%s  alhpa: 0.5\n", good_yaml);
  write_file(p, yaml);
  fl_free(yaml);
  expect_cfg_error(argv, argc, "bad.yaml:13: unknown key data.alhpa");
  /* YAML syntax */
  write_file(p, "task: [\n");
  expect_cfg_error(argv, argc, "bad.yaml:");
  /* a missing required key names its flag and env variable */
  write_file(p, "task: t1\n");
  expect_cfg_error(argv, argc, "--mspid");
  expect_cfg_error(argv, argc, "FEDLEDGER_IDENTITY_MSPID");
  /* flags */
  write_file(p, good_yaml);
  argc = argv_of(argv, "--config", p, "--partition", "x", NULL);
  expect_cfg_error(argv, argc, "--partition (data.partition): expected I/N");
  argc = argv_of(argv, "--config", p, "--attack", "teleport", NULL);
  expect_cfg_error(argv, argc, "--attack (attack.kind)");
  argc = argv_of(argv, "--config", p, "--nope", "1", NULL);
  expect_cfg_error(argv, argc, "unknown flag --nope");
  argc = argv_of(argv, "--config", p, "--epochs", NULL);
  expect_cfg_error(argv, argc, "--epochs: needs a value");
  argc = argv_of(argv, "--config", p, "--lr", "fast", NULL);
  expect_cfg_error(argv, argc, "--lr: expected a number");
  argc = argv_of(argv, "--config", p, "stray", NULL);
  expect_cfg_error(argv, argc, "unexpected argument 'stray'");
  /* env */
  setenv("FEDLEDGER_TRAIN_BATCH", "zero", 1);
  argc = argv_of(argv, "--config", p, NULL);
  expect_cfg_error(argv, argc, "FEDLEDGER_TRAIN_BATCH");
  unsetenv("FEDLEDGER_TRAIN_BATCH");
  /* a config file that is not there */
  argc = argv_of(argv, "--config", "/nonexistent/edge.yaml", NULL);
  expect_cfg_error(argv, argc, "/nonexistent/edge.yaml");
  /* --help needs nothing else */
  argc = argv_of(argv, "--help", NULL);
  fl_edge_cfg_t c;
  bool help = false;
  char *err = NULL;
  assert_int_equal(fl_edge_cfg_load(argc, argv, &c, &help, &err), FL_OK);
  assert_true(help);
  fl_edge_cfg_free(&c);
  unlink(p);
  fl_free(p);
}

static void test_keeper_cfg(void **state) {
  (void)state;
  char *p = tpath("keeper.yaml");
  write_file(p, "identity:\n  mspid: Org1MSP\n  msp_dir: m\n  tls_dir: t\n"
                "gateway:\n  endpoint: localhost:7051\ntask: t1\nkeeper:\n  grace: 2s\n");
  char *argv[8];
  int argc = argv_of(argv, "--config", p, "--rounds", "3", NULL);
  fl_keeper_cfg_t c;
  bool help = false;
  char *err = NULL;
  assert_int_equal(fl_keeper_cfg_load(argc, argv, &c, &help, &err), FL_OK);
  assert_int_equal(c.grace_ms, 2000);
  assert_int_equal(c.rounds, 3);
  assert_string_equal(c.gateway, "localhost:7051");
  fl_keeper_cfg_free(&c);
  write_file(p, "identity:\n  mspid: Org1MSP\n  msp_dir: m\n  tls_dir: t\n"
                "gateway:\n  endpoint: nocolon\ntask: t1\n");
  argc = argv_of(argv, "--config", p, NULL);
  assert_int_equal(fl_keeper_cfg_load(argc, argv, &c, &help, &err), FL_ECONFIG);
  assert_non_null(strstr(err, "keeper.yaml:6: gateway.endpoint: expected HOST:PORT"));
  fl_free(err);
  unlink(p);
  fl_free(p);
}

static void test_parsers(void **state) {
  (void)state;
  uint32_t i, n;
  assert_int_equal(fl_edge_parse_partition("0/1", &i, &n), 0);
  assert_int_equal(fl_edge_parse_partition("3/10", &i, &n), 0);
  assert_int_equal(i, 3);
  assert_int_equal(n, 10);
  const char *bad[] = {"1/1", "a/2", "1/", "/2", "1/0", "-1/2", "1/2x", "12", ""};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
    assert_int_equal(fl_edge_parse_partition(bad[k], &i, &n), -1);
  char host[64];
  uint16_t port;
  assert_int_equal(fl_edge_parse_endpoint("127.0.0.1:7051", host, sizeof host, &port), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 7051);
  assert_int_equal(fl_edge_parse_endpoint("[::1]:9", host, sizeof host, &port), 0);
  assert_string_equal(host, "::1");
  const char *badep[] = {"host", "host:0", "host:70000", ":80", "::1:80", "h:8a"};
  for (size_t k = 0; k < sizeof badep / sizeof badep[0]; k++)
    assert_int_equal(fl_edge_parse_endpoint(badep[k], host, sizeof host, &port), -1);
}

/* ---- data -------------------------------------------------------------------- */

static void test_data_generated_fallback(void **state) {
  (void)state;
  fl_edge_data_opts_t o = {.dataset = "nsl-kdd", .dir = "/nonexistent/datasets", .classes = 2,
                           .parts = 3, .test_frac = 0.25, .seed = 7, .gen_features = 6,
                           .gen_classes = 3, .gen_rows = 600};
  fl_edge_data_t d[3];
  size_t total = 0;
  char err[256];
  for (uint32_t p = 0; p < 3; p++) {
    o.part = p;
    assert_int_equal(fl_edge_data_load(&o, &d[p], err, sizeof err), FL_OK);
    assert_true(d[p].generated);
    assert_non_null(strstr(d[p].source, "not found"));
    assert_int_equal(d[p].train.d, 6);
    assert_int_equal(d[p].n_classes, 3);
    assert_int_equal(d[p].test.n, 150);
    total += d[p].train.n;
  }
  assert_int_equal(total, 450); /* the shards cover the train side exactly */
  /* every edge has the same held-out rows; shards differ */
  assert_memory_equal(d[0].test.x, d[2].test.x, d[0].test.n * 6 * sizeof(float));
  assert_true(d[0].train.n != d[1].train.n ||
              memcmp(d[0].train.x, d[1].train.x, d[0].train.n * 6 * sizeof(float)) != 0);
  /* the same options give the same shard */
  fl_edge_data_t again;
  o.part = 1;
  assert_int_equal(fl_edge_data_load(&o, &again, err, sizeof err), FL_OK);
  assert_int_equal(again.train.n, d[1].train.n);
  assert_memory_equal(again.train.x, d[1].train.x, again.train.n * 6 * sizeof(float));
  fl_edge_data_free(&again);
  /* non-IID: Dirichlet shards still cover everything */
  o.alpha = 0.3;
  total = 0;
  for (uint32_t p = 0; p < 3; p++) {
    o.part = p;
    assert_int_equal(fl_edge_data_load(&o, &again, err, sizeof err), FL_OK);
    total += again.train.n;
    fl_edge_data_free(&again);
  }
  assert_int_equal(total, 450);
  for (int p = 0; p < 3; p++) fl_edge_data_free(&d[p]);
  /* bad options */
  o.part = 3;
  assert_int_equal(fl_edge_data_load(&o, &again, err, sizeof err), FL_EINVAL);
  o.part = 0;
  o.dataset = "mnist";
  assert_int_equal(fl_edge_data_load(&o, &again, err, sizeof err), FL_EINVAL);
  assert_non_null(strstr(err, "unknown dataset 'mnist'"));
  o.dataset = "generated";
  o.gen_classes = 1;
  assert_int_equal(fl_edge_data_load(&o, &again, err, sizeof err), FL_EINVAL);
  fl_edge_data_free(NULL);
}

static void test_data_bad_file_is_an_error(void **state) {
  (void)state;
  char *p = tpath("bad.csv");
  write_file(p, "a,b,label\n1,2,x\n3,oops,y\n");
  fl_edge_data_opts_t o = {.dataset = "csv", .file = p, .label = "label", .parts = 1,
                           .test_frac = 0.5, .seed = 1, .gen_features = 2, .gen_classes = 2};
  fl_edge_data_t d;
  char err[256];
  assert_int_not_equal(fl_edge_data_load(&o, &d, err, sizeof err), FL_OK);
  assert_false(d.generated); /* a broken file is never replaced by generated data */
  assert_non_null(strstr(err, "bad.csv:3"));
  unlink(p);
  fl_free(p);
}

static void test_data_nsl_kdd(void **state) {
  (void)state;
  const char *sh = getenv("FL_SHARED_DIR");
  char *dir = fl_sprintf("%s/datasets", sh ? sh : "../shared");
  char *f = fl_sprintf("%s/nsl-kdd/KDDTrain+_20Percent.txt.gz", dir);
  struct stat st;
  if (stat(f, &st) != 0) {
    fprintf(stderr, "skipping: %s not present\n", f);
    fl_free(f);
    fl_free(dir);
    skip();
  }
  fl_edge_data_opts_t o = {.dataset = "nsl-kdd", .dir = dir, .classes = 2, .part = 1, .parts = 4,
                           .test_frac = 0.2, .seed = 3, .max_rows = 4000};
  fl_edge_data_t d;
  char err[256];
  assert_int_equal(fl_edge_data_load(&o, &d, err, sizeof err), FL_OK);
  assert_false(d.generated);
  assert_string_equal(d.source, f);
  assert_int_equal(d.total_rows, 4000);
  assert_int_equal(d.n_classes, 2);
  assert_true(d.train.d > 40); /* one-hot protocol/service/flag */
  assert_true(d.train.n > 600 && d.train.n < 1000);
  fl_edge_data_free(&d);
  fl_free(f);
  fl_free(dir);
}

/* ---- update, model check, DP, attacks -------------------------------------------- */

static void make_tensors(fl_ml_tensors_t *t, float base) {
  memset(t, 0, sizeof *t);
  uint32_t w[2] = {3, 2}, b[1] = {2};
  assert_int_equal(fl_ml_tensors_add(t, "l0.w", 2, w), FL_OK);
  assert_int_equal(fl_ml_tensors_add(t, "l0.b", 1, b), FL_OK);
  for (size_t i = 0; i < t->n_values; i++) t->values[i] = base + (float)i * 0.5f;
}

static void test_model_check(void **state) {
  (void)state;
  fl_ml_tensors_t g, out, other = {0};
  make_tensors(&g, 1);
  fl_sbuf_t blob = {0};
  assert_int_equal(fl_ml_blob_encode(&g, &blob), FL_OK);
  uint8_t h[32];
  fl_sha256(blob.data, blob.len, h);
  assert_int_equal(fl_edge_model_check(fl_sbuf_view(&blob), h, &g, &out), FL_OK);
  assert_int_equal(out.n_values, g.n_values);
  assert_memory_equal(out.values, g.values, g.n_values * sizeof(float));
  fl_ml_tensors_free(&out);
  /* a blob whose hash differs from the ledger's is refused, not decoded */
  uint8_t h2[32];
  memcpy(h2, h, 32);
  h2[31] ^= 1;
  assert_int_equal(fl_edge_model_check(fl_sbuf_view(&blob), h2, &g, &out), FL_ECORRUPT);
  assert_null(out.values);
  blob.data[blob.len - 1] ^= 0x40; /* tampered weights, old hash */
  assert_int_equal(fl_edge_model_check(fl_sbuf_view(&blob), h, &g, &out), FL_ECORRUPT);
  /* right hash of garbage: malformed */
  uint8_t junk[10] = {1, 2, 3};
  fl_sha256(junk, sizeof junk, h2);
  assert_int_equal(fl_edge_model_check(FL_BUF(junk, sizeof junk), h2, NULL, &out), FL_EMALFORMED);
  /* right hash, other layout */
  uint32_t dd[1] = {8};
  assert_int_equal(fl_ml_tensors_add(&other, "protos", 1, dd), FL_OK);
  blob.data[blob.len - 1] ^= 0x40;
  assert_int_equal(fl_edge_model_check(fl_sbuf_view(&blob), h, &other, &out), FL_EINVAL);
  fl_ml_tensors_free(&other);
  fl_sbuf_free(&blob);
  fl_ml_tensors_free(&g);
}

static void test_delta(void **state) {
  (void)state;
  fl_ml_tensors_t g, l, d, other = {0};
  make_tensors(&g, 1);
  make_tensors(&l, 1);
  for (size_t i = 0; i < l.n_values; i++) l.values[i] += (float)i - 2.0f;
  assert_int_equal(fl_edge_update_delta(&g, &l, &d), FL_OK);
  for (size_t i = 0; i < d.n_values; i++) assert_true(d.values[i] == l.values[i] - g.values[i]);
  assert_string_equal(d.desc[0].name, "l0.w");
  fl_ml_tensors_free(&d);
  uint32_t dd[1] = {8};
  assert_int_equal(fl_ml_tensors_add(&other, "l0.w", 1, dd), FL_OK);
  assert_int_equal(fl_edge_update_delta(&g, &other, &d), FL_EINVAL);
  assert_null(d.values);
  fl_ml_tensors_free(&other);
  fl_ml_tensors_free(&g);
  fl_ml_tensors_free(&l);
}

static void test_dp(void **state) {
  (void)state;
  size_t n = 200000;
  float *u = fl_malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) u[i] = (i % 2) ? 0.1f : -0.1f;
  double norm0 = fl_ml_norm(u, n);
  fl_edge_dp_stats_t st;
  /* clipping only */
  assert_int_equal(fl_edge_dp_apply(u, n, 2.0, 0, NULL, &st), FL_OK);
  assert_true(st.clipped);
  assert_true(fabs(st.norm_before - norm0) < 1e-6);
  assert_true(fabs(fl_ml_norm(u, n) - 2.0) < 1e-3);
  double sign_ok = 1;
  for (size_t i = 0; i < n; i++) sign_ok *= ((i % 2) ? u[i] > 0 : u[i] < 0);
  assert_true(sign_ok == 1); /* scaling keeps the direction */
  /* below the clip: unchanged */
  float v[3] = {0.1f, 0.2f, 0.2f};
  assert_int_equal(fl_edge_dp_apply(v, 3, 1.0, 0, NULL, &st), FL_OK);
  assert_false(st.clipped);
  assert_true(v[0] == 0.1f && v[1] == 0.2f && v[2] == 0.2f);
  /* noise: sd = sigma * clip, mean 0 */
  for (size_t i = 0; i < n; i++) u[i] = 0;
  fl_rng_t r;
  fl_rng_seed(&r, 11);
  assert_int_equal(fl_edge_dp_apply(u, n, 2.0, 0.25, &r, &st), FL_OK);
  assert_true(fabs(st.noise_sd - 0.5) < 1e-12);
  double s = 0, s2 = 0;
  for (size_t i = 0; i < n; i++) {
    s += u[i];
    s2 += (double)u[i] * u[i];
  }
  double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
  assert_true(fabs(mean) < 0.01);          /* 5 sd of the mean's error */
  assert_true(fabs(sd - 0.5) < 0.005);     /* 1 % */
  /* no clip: sigma is the sd itself */
  for (size_t i = 0; i < n; i++) u[i] = 0;
  assert_int_equal(fl_edge_dp_apply(u, n, 0, 0.1, &r, &st), FL_OK);
  s2 = 0;
  for (size_t i = 0; i < n; i++) s2 += (double)u[i] * u[i];
  assert_true(fabs(sqrt(s2 / (double)n) - 0.1) < 0.002);
  /* bad arguments */
  assert_int_equal(fl_edge_dp_apply(u, n, -1, 0, NULL, NULL), FL_EINVAL);
  assert_int_equal(fl_edge_dp_apply(u, n, 1, NAN, &r, NULL), FL_EINVAL);
  assert_int_equal(fl_edge_dp_apply(u, n, 1, 0.5, NULL, NULL), FL_EINVAL);
  fl_free(u);
}

static void test_attacks(void **state) {
  (void)state;
  float u[4] = {1, -2, 3, 0.5f};
  fl_edge_attack_t a = {.kind = FL_ML_ATTACK_SIGNFLIP, .o = {.scale = 5}};
  assert_int_equal(fl_edge_attack_update(&a, u, 4, NULL, 0, NULL), FL_OK);
  assert_true(u[0] == -5 && u[1] == 10 && u[2] == -15 && u[3] == -2.5f);
  a = (fl_edge_attack_t){.kind = FL_ML_ATTACK_SCALING, .o = {.scale = 2}};
  assert_int_equal(fl_edge_attack_update(&a, u, 4, NULL, 0, NULL), FL_OK);
  assert_true(u[0] == -10 && u[3] == -5);
  /* ALIE from the client's own estimates: mean - z * sd per coordinate */
  float est[3 * 2] = {1, 10, 2, 10, 3, 10};
  float w[2];
  a = (fl_edge_attack_t){.kind = FL_ML_ATTACK_ALIE, .o = {.z = 1.5}};
  assert_int_equal(fl_edge_attack_update(&a, w, 2, est, 3, NULL), FL_OK);
  double sd = sqrt(2.0 / 3.0);
  assert_true(fabs(w[0] - (2 - 1.5 * sd)) < 1e-5);
  assert_true(fabs(w[1] - 10) < 1e-4);
  assert_int_equal(fl_edge_attack_update(&a, w, 2, est, 1, NULL), FL_EINVAL);
  a = (fl_edge_attack_t){.kind = FL_ML_ATTACK_IPM, .o = {.eps = 2}};
  assert_int_equal(fl_edge_attack_update(&a, w, 2, est, 3, NULL), FL_OK);
  assert_true(fabs(w[0] + 4) < 1e-6 && fabs(w[1] + 20) < 1e-5);
  /* gaussian needs an rng and replaces the update */
  a = (fl_edge_attack_t){.kind = FL_ML_ATTACK_GAUSSIAN, .o = {.sigma = 3}};
  assert_int_equal(fl_edge_attack_update(&a, u, 4, NULL, 0, NULL), FL_EINVAL);
  fl_rng_t r;
  fl_rng_seed(&r, 5);
  assert_int_equal(fl_edge_attack_update(&a, u, 4, NULL, 0, &r), FL_OK);
  assert_true(u[0] != -10);
  /* label flip acts on data, not on the update */
  a = (fl_edge_attack_t){.kind = FL_ML_ATTACK_LABELFLIP, .o = {.flip_src = -1, .flip_dst = 0}};
  float keep[4];
  memcpy(keep, u, sizeof keep);
  assert_int_equal(fl_edge_attack_update(&a, u, 4, NULL, 0, NULL), FL_OK);
  assert_memory_equal(keep, u, sizeof keep);
  fl_ml_dataset_t ds;
  assert_int_equal(fl_edge_data_generate(2, 3, 30, 1, &ds), FL_OK);
  assert_int_equal(fl_edge_attack_data(&a, &ds), 20);
  for (size_t i = 0; i < ds.n; i++) assert_int_equal(ds.y[i], 0);
  a.kind = FL_ML_ATTACK_SIGNFLIP;
  assert_int_equal(fl_edge_attack_data(&a, &ds), 0);
  fl_ml_dataset_free(&ds);
}

static void test_training_and_estimates(void **state) {
  (void)state;
  fl_ml_dataset_t ds;
  assert_int_equal(fl_edge_data_generate(4, 2, 400, 3, &ds), FL_OK);
  fl_ml_model_spec_t spec = {.kind = FL_ML_LOGREG, .n_in = 4, .n_classes = 2};
  fl_ml_model_t *m = NULL;
  assert_int_equal(fl_ml_model_new(&spec, 1, &m), FL_OK);
  uint32_t *idx = fl_malloc(ds.n * sizeof(uint32_t));
  for (size_t i = 0; i < ds.n; i++) idx[i] = (uint32_t)i;
  fl_ml_train_opts_t o = {.opt = FL_ML_OPT_SGD, .lr = 0.1f, .batch = 16, .epochs = 3, .seed = 9};
  int32_t *pred = fl_malloc(ds.n * sizeof(int32_t));
  fl_ml_model_predict(m, ds.x, ds.n, pred);
  size_t ok0 = 0, ok1 = 0;
  for (size_t i = 0; i < ds.n; i++) ok0 += pred[i] == ds.y[i];
  double loss = NAN;
  assert_int_equal(fl_edge_train(m, &ds, idx, ds.n, &o, 5, NULL, NULL, &loss), FL_OK);
  assert_true(isfinite(loss));
  fl_ml_model_predict(m, ds.x, ds.n, pred);
  for (size_t i = 0; i < ds.n; i++) ok1 += pred[i] == ds.y[i];
  assert_true(ok1 > ok0 || ok1 > ds.n * 9 / 10); /* it learns the mixture */
  assert_true(ok1 > ds.n * 3 / 4);
  fl_ml_tensors_t global;
  fl_ml_tensors_copy(&global, fl_ml_model_cparams(m));
  float *est = NULL;
  assert_int_equal(fl_edge_train_estimates(&spec, &global, &ds, &o, 4, &est), FL_OK);
  double n0 = fl_ml_norm(est, global.n_values), n3 = fl_ml_norm(est + 3 * global.n_values,
                                                                 global.n_values);
  assert_true(n0 > 0 && n3 > 0);
  assert_true(memcmp(est, est + global.n_values, global.n_values * sizeof(float)) != 0);
  fl_free(est);
  assert_int_equal(fl_edge_train_estimates(&spec, &global, &ds, &o, 0, &est), FL_EINVAL);
  fl_ml_tensors_free(&global);
  fl_free(pred);
  fl_free(idx);
  fl_ml_model_free(m);
  fl_ml_dataset_free(&ds);
}

/* ---- data-batch hash --------------------------------------------------------------- */

static void test_data_hash_definition(void **state) {
  (void)state;
  fl_ml_dataset_t ds = {.n = 2, .d = 2, .n_classes = 2};
  float x[4] = {1.0f, -2.5f, 0.0f, 3.25f};
  int32_t y[2] = {1, 0};
  ds.x = x;
  ds.y = y;
  /* by hand: f32 LE features, then the i32 LE label, row after row */
  uint8_t bytes[24];
  size_t k = 0;
  for (size_t r = 0; r < 2; r++) {
    for (size_t j = 0; j < 2; j++) {
      uint32_t b;
      memcpy(&b, &x[r * 2 + j], 4);
      for (int s = 0; s < 32; s += 8) bytes[k++] = (uint8_t)(b >> s);
    }
    for (int s = 0; s < 32; s += 8) bytes[k++] = (uint8_t)((uint32_t)y[r] >> s);
  }
  uint8_t want_rows[32], rows[32];
  fl_sha256(bytes, sizeof bytes, want_rows);
  fl_edge_rows_hash(&ds, NULL, 0, rows);
  assert_memory_equal(rows, want_rows, 32);
  uint32_t order[2] = {1, 0};
  uint8_t swapped[32];
  fl_edge_rows_hash(&ds, order, 2, swapped);
  assert_memory_not_equal(rows, swapped, 32); /* order matters */
  /* data_hash = SHA-256("fedledger-data/v1\0" || rows || ts BE64 || edge id) */
  const char *id = "Org1MSP:client1@org1.example.com";
  uint8_t buf[18 + 32 + 8 + 64];
  memcpy(buf, "fedledger-data/v1", 18);
  memcpy(buf + 18, rows, 32);
  uint64_t ts = 1700000000123ULL;
  for (int i = 0; i < 8; i++) buf[50 + i] = (uint8_t)(ts >> (56 - 8 * i));
  memcpy(buf + 58, id, strlen(id));
  uint8_t want[32], got[32], other[32];
  fl_sha256(buf, 58 + strlen(id), want);
  fl_edge_data_hash(rows, ts, id, got);
  assert_memory_equal(got, want, 32);
  fl_edge_data_hash(rows, ts + 1, id, other);
  assert_memory_not_equal(got, other, 32);
  fl_edge_data_hash(rows, ts, "Org1MSP:client2@org1.example.com", other);
  assert_memory_not_equal(got, other, 32);
  y[0] = 0; /* a flipped label changes the rows hash */
  fl_edge_rows_hash(&ds, NULL, 0, other);
  assert_memory_not_equal(rows, other, 32);
}

/* ---- submission and signature ------------------------------------------------------ */

static void test_submission_signature(void **state) {
  (void)state;
  char *msp = fl_sprintf("%s/" CLIENT1 "/msp", pki());
  fl_client_identity_t *id = NULL;
  char *err = NULL;
  assert_int_equal(fl_client_identity_load_msp("Org1MSP", msp, &id, &err), FL_OK);
  fl_ml_tensors_t u;
  make_tensors(&u, -0.25f);
  uint8_t dh[32];
  memset(dh, 0xab, 32);
  fl_edge_submission_t sub;
  assert_int_equal(
      fl_edge_submission_build(fl_client_identity_signer(id), "nslkdd-1", 7, &u, 321, dh, &sub),
      FL_OK);
  /* hash of the blob */
  fl_sbuf_t blob = {0};
  assert_int_equal(fl_ml_blob_encode(&u, &blob), FL_OK);
  assert_int_equal(blob.len, sub.blob.len);
  assert_memory_equal(blob.data, sub.blob.data, blob.len);
  uint8_t h[32];
  fl_sha256(blob.data, blob.len, h);
  assert_memory_equal(h, sub.hash, 32);
  /* the signed message is mlupdate's, byte for byte */
  fl_sbuf_t msg = {0};
  assert_int_equal(fl_mlu_signed_msg("nslkdd-1", 8, 7, h, &msg), FL_OK);
  assert_int_equal(msg.len, sub.msg.len);
  assert_memory_equal(msg.data, sub.msg.data, msg.len);
  assert_int_equal(msg.len, 12 + 8 + 1 + 8 + 32);
  /* and verifies with the certificate's key, as the chaincode checks it */
  char *certp = fl_sprintf("%s/" CLIENT1 "/msp/signcerts/client1@org1.example.com-cert.pem", pki());
  fl_cert_t *cert = NULL;
  assert_int_equal(fl_cert_load_file(certp, &cert), FL_OK);
  uint8_t sig[FL_SIG_MAX_LEN];
  long sl = fl_hex_decode(sub.sig_hex, strlen(sub.sig_hex), sig, sizeof sig);
  assert_true(sl > 0);
  assert_int_equal((size_t)sl, sub.sig.len);
  assert_int_equal(fl_verify(fl_cert_pubkey(cert), msg.data, msg.len, sig, (size_t)sl), FL_OK);
  /* ... and binds task, round and hash */
  fl_sbuf_t m2 = {0};
  assert_int_equal(fl_mlu_signed_msg("nslkdd-1", 8, 8, h, &m2), FL_OK);
  assert_int_equal(fl_verify(fl_cert_pubkey(cert), m2.data, m2.len, sig, (size_t)sl), FL_EBADSIG);
  /* the SubmitUpdate arguments */
  fl_buf_t args[7];
  fl_edge_submission_args(&sub, "nslkdd-1", args);
  assert_true(fl_buf_eq(args[0], FL_BUF_STR("SubmitUpdate")));
  assert_true(fl_buf_eq(args[1], FL_BUF_STR("nslkdd-1")));
  assert_true(fl_buf_eq(args[2], FL_BUF_STR("7")));
  char hx[65];
  fl_hex_encode(h, 32, hx);
  assert_true(fl_buf_eq(args[3], FL_BUF(hx, 64)));
  assert_true(fl_buf_eq(args[5], FL_BUF_STR("321")));
  fl_hex_encode(dh, 32, hx);
  assert_true(fl_buf_eq(args[6], FL_BUF(hx, 64)));
  assert_true(fabs(sub.norm - fl_ml_norm(u.values, u.n_values)) < 1e-9);
  /* a bad task id or a non-finite update is refused */
  fl_edge_submission_t bad;
  assert_int_equal(
      fl_edge_submission_build(fl_client_identity_signer(id), "bad task", 7, &u, 1, dh, &bad),
      FL_EINVAL);
  u.values[0] = NAN;
  assert_int_equal(
      fl_edge_submission_build(fl_client_identity_signer(id), "t", 7, &u, 1, dh, &bad), FL_EINVAL);
  assert_null(bad.sig_hex);
  fl_sbuf_free(&m2);
  fl_sbuf_free(&msg);
  fl_sbuf_free(&blob);
  fl_cert_free(cert);
  fl_free(certp);
  fl_edge_submission_clear(&sub);
  fl_edge_submission_clear(NULL);
  fl_ml_tensors_free(&u);
  fl_client_identity_free(id);
  fl_free(msp);
}

/* ---- model spec from the task -------------------------------------------------------- */

static void layout_of(const fl_ml_model_spec_t *spec, fl_ml_tensors_t *out) {
  fl_ml_model_t *m = NULL;
  assert_int_equal(fl_ml_model_new(spec, 1, &m), FL_OK);
  fl_ml_tensors_copy(out, fl_ml_model_cparams(m));
  fl_ml_model_free(m);
}

static void test_spec_from_layout(void **state) {
  (void)state;
  fl_ml_model_spec_t specs[] = {
      {.kind = FL_ML_LOGREG, .n_in = 10, .n_classes = 2},
      {.kind = FL_ML_LOGREG, .n_in = 10, .n_classes = 5},
      {.kind = FL_ML_MLP, .n_in = 122, .n_classes = 2, .n_hidden = 2, .hidden = {64, 32}},
      {.kind = FL_ML_PROTO, .n_in = 7, .n_classes = 3, .protos_per_class = 2},
  };
  char err[256];
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    fl_ml_tensors_t L;
    layout_of(&specs[i], &L);
    fl_ml_model_spec_t got;
    assert_int_equal(fl_edge_spec_from_layout(&L, specs[i].n_classes, &got, err, sizeof err), FL_OK);
    assert_int_equal(got.kind, specs[i].kind);
    assert_int_equal(got.n_in, specs[i].n_in);
    assert_int_equal(got.n_classes, specs[i].n_classes);
    assert_int_equal(got.n_hidden, specs[i].n_hidden);
    assert_int_equal(got.hidden[0], specs[i].hidden[0]);
    assert_int_equal(got.protos_per_class, specs[i].protos_per_class);
    if (specs[i].kind == FL_ML_PROTO) /* 6 prototypes do not fit 4 classes */
      assert_int_equal(fl_edge_spec_from_layout(&L, 4, &got, err, sizeof err), FL_EINVAL);
    fl_ml_tensors_free(&L);
  }
  fl_ml_tensors_t bad = {0};
  uint32_t d[2] = {4, 4};
  assert_int_equal(fl_ml_tensors_add(&bad, "conv1", 2, d), FL_OK);
  fl_ml_model_spec_t got;
  assert_int_equal(fl_edge_spec_from_layout(&bad, 2, &got, err, sizeof err), FL_EINVAL);
  assert_non_null(strstr(err, "conv1"));
  fl_ml_tensors_free(&bad);
}

/* ---- records and events ------------------------------------------------------------ */

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_records(void **state) {
  (void)state;
  const char *task =
      "{\"task\":\"t1\",\"arch\":\"logreg 3x2\",\"tensors\":[{\"name\":\"l0.w\",\"shape\":[3,1]},"
      "{\"name\":\"l0.b\",\"shape\":[1]}],\"n_params\":4,\"rule\":\"fedavg\",\"f\":0,\"m\":0,"
      "\"clip_norm\":0,\"max_norm_z\":0,\"min_cosine\":-1,\"max_norm\":5,\"norm_window\":3,"
      "\"min_updates\":4,\"max_updates\":0,\"round_ms\":30000,\"reject_limit\":0.5,"
      "\"reject_min\":2,\"init_hash\":\"" H64 "\",\"created_ts\":1,\"created_by\":\"a:b\","
      "\"created_tx\":\"x\"}";
  fl_edge_task_t t;
  char err[128];
  assert_int_equal(fl_edge_task_parse(FL_BUF_STR(task), &t, err, sizeof err), FL_OK);
  assert_string_equal(t.task, "t1");
  assert_string_equal(t.arch, "logreg 3x2");
  assert_int_equal(t.min_updates, 4);
  assert_int_equal(t.round_ms, 30000);
  assert_int_equal(t.layout.n_tensors, 2);
  assert_int_equal(t.layout.n_values, 4);
  assert_int_equal(t.init_hash[0], 0x01);
  fl_edge_task_clear(&t);
  char *broken = fl_sprintf("%s", task);
  memcpy(strstr(broken, "\"n_params\":4"), "\"n_params\":5", 12);
  assert_int_equal(fl_edge_task_parse(FL_BUF_STR(broken), &t, err, sizeof err), FL_EMALFORMED);
  assert_non_null(strstr(err, "n_params"));
  fl_free(broken);
  assert_int_equal(fl_edge_task_parse(FL_BUF_STR("[1]"), &t, err, sizeof err), FL_EMALFORMED);

  const char *open =
      "{\"task\":\"t1\",\"round\":3,\"status\":\"OPEN\",\"start_model\":\"" H64 "\",\"step\":null,"
      "\"ref_norms\":[],\"opened_ts\":100,\"deadline_ts\":30100,\"opened_tx\":\"x\","
      "\"closed_ts\":null,\"closed_tx\":null,\"end_model\":null,\"submitted\":null,"
      "\"accepted\":null,\"rejected\":null,\"aggregated\":null,\"accepted_norms\":null}";
  fl_edge_round_t r;
  assert_int_equal(fl_edge_round_parse(FL_BUF_STR(open), &r, err, sizeof err), FL_OK);
  assert_true(r.open);
  assert_int_equal(r.round, 3);
  assert_int_equal(r.deadline_ts, 30100);
  assert_false(r.has_end);
  const char *closed =
      "{\"task\":\"t1\",\"round\":3,\"status\":\"CLOSED\",\"start_model\":\"" H64 "\","
      "\"opened_ts\":100,\"deadline_ts\":30100,\"end_model\":\"" H64 "\",\"submitted\":5,"
      "\"accepted\":4}";
  assert_int_equal(fl_edge_round_parse(FL_BUF_STR(closed), &r, err, sizeof err), FL_OK);
  assert_false(r.open);
  assert_true(r.has_end);
  assert_int_equal(r.accepted, 4);
  assert_int_equal(fl_edge_round_parse(FL_BUF_STR("{\"round\":1,\"status\":\"MAYBE\"}"), &r, err,
                                       sizeof err),
                   FL_EMALFORMED);

  const char *rej = "{\"task\":\"t1\",\"round\":3,\"client\":\"Org1MSP:c5\",\"hash\":\"" H64 "\","
                    "\"norm\":812.5,\"status\":\"REJECTED\",\"reason\":\"OUTLIER_MAX_NORM\","
                    "\"reason_code\":9,\"detail\":\"norm 812.5 > 5\"}";
  const char *acc = "{\"task\":\"t1\",\"round\":3,\"client\":\"Org1MSP:c1\",\"hash\":\"" H64 "\","
                    "\"norm\":null,\"status\":\"ACCEPTED\",\"reason\":null,\"reason_code\":0,"
                    "\"detail\":null}";
  fl_edge_update_rec_t u;
  assert_int_equal(fl_edge_update_rec_parse(FL_BUF_STR(rej), &u, err, sizeof err), FL_OK);
  assert_false(u.accepted);
  assert_string_equal(u.reason, "OUTLIER_MAX_NORM");
  assert_int_equal(u.reason_code, 9);
  assert_string_equal(u.detail, "norm 812.5 > 5");
  assert_true(u.norm == 812.5);
  assert_int_equal(fl_edge_update_rec_parse(FL_BUF_STR(acc), &u, err, sizeof err), FL_OK);
  assert_true(u.accepted);
  assert_string_equal(u.reason, "");
  assert_true(isnan(u.norm));
  char *list = fl_sprintf("[%s,%s,%s]", acc, rej, acc);
  uint64_t na, nr;
  assert_int_equal(fl_edge_count_updates(FL_BUF_STR(list), &na, &nr), FL_OK);
  assert_int_equal(na, 2);
  assert_int_equal(nr, 3);
  fl_free(list);
  assert_int_equal(fl_edge_count_updates(FL_BUF_STR("[]"), &na, &nr), FL_OK);
  assert_int_equal(nr, 0);
  assert_int_equal(fl_edge_count_updates(FL_BUF_STR("[1]"), &na, &nr), FL_EMALFORMED);
  assert_int_equal(fl_edge_count_updates(FL_BUF_STR("{}"), &na, &nr), FL_EMALFORMED);
}

static void test_events(void **state) {
  (void)state;
  fl_edge_event_t e;
  const char *rc = "{\"task\":\"t1\",\"round\":2,\"model\":\"" H64 "\",\"accepted\":4,"
                   "\"aggregated\":4,\"next_round\":3,\"revoked\":[\"Org1MSP:c5\"]}";
  assert_int_equal(fl_edge_event_parse("RoundClosed", FL_BUF_STR(rc), &e), FL_OK);
  assert_int_equal(e.kind, FL_EDGE_EV_ROUND_CLOSED);
  assert_string_equal(e.task, "t1");
  assert_int_equal(e.round, 2);
  assert_int_equal(e.next_round, 3);
  const char *us = "{\"task\":\"t1\",\"round\":2,\"client\":\"Org1MSP:c5\",\"status\":\"REJECTED\","
                   "\"reason\":\"OUTLIER_MAX_NORM\",\"hash\":\"" H64 "\"}";
  assert_int_equal(fl_edge_event_parse("UpdateSubmitted", FL_BUF_STR(us), &e), FL_OK);
  assert_int_equal(e.kind, FL_EDGE_EV_UPDATE);
  assert_false(e.accepted);
  assert_string_equal(e.client, "Org1MSP:c5");
  assert_int_equal(fl_edge_event_parse("ClientRevoked", FL_BUF_STR("{}"), &e), FL_OK);
  assert_int_equal(e.kind, FL_EDGE_EV_OTHER);
  assert_int_equal(fl_edge_event_parse("RoundClosed", FL_BUF_STR("{\"task\":\"t1\"}"), &e),
                   FL_EMALFORMED);
  assert_int_equal(fl_edge_event_parse("RoundClosed", FL_BUF_STR("nope"), &e), FL_EMALFORMED);
}

/* ---- keeper ------------------------------------------------------------------------ */

static void test_keeper_decide(void **state) {
  (void)state;
  fl_keeper_view_t v = {.open = true, .accepted = 3, .min_updates = 4, .deadline_ts = 10000};
  uint64_t wait = 0;
  assert_int_equal(fl_keeper_decide(&v, 5000, 500, &wait), FL_KEEPER_WAIT);
  assert_int_equal(wait, 5500);
  v.accepted = 4; /* enough */
  assert_int_equal(fl_keeper_decide(&v, 5000, 500, &wait), FL_KEEPER_CLOSE_ENOUGH);
  v.accepted = 0; /* deadline, with grace */
  assert_int_equal(fl_keeper_decide(&v, 10400, 500, &wait), FL_KEEPER_WAIT);
  assert_int_equal(wait, 100);
  assert_int_equal(fl_keeper_decide(&v, 10500, 500, &wait), FL_KEEPER_CLOSE_DEADLINE);
  assert_int_equal(fl_keeper_decide(&v, 10000, 0, NULL), FL_KEEPER_CLOSE_DEADLINE);
  v.open = false; /* already closed: never close again */
  v.accepted = 10;
  assert_int_equal(fl_keeper_decide(&v, 99999, 0, &wait), FL_KEEPER_CLOSED);
  /* min_updates 0 still needs one accepted update to close early */
  fl_keeper_view_t z = {.open = true, .accepted = 0, .min_updates = 0, .deadline_ts = 10000};
  assert_int_equal(fl_keeper_decide(&z, 1, 0, NULL), FL_KEEPER_WAIT);
  z.accepted = 1;
  assert_int_equal(fl_keeper_decide(&z, 1, 0, NULL), FL_KEEPER_CLOSE_ENOUGH);
  /* no overflow near the end of time */
  fl_keeper_view_t far = {.open = true, .min_updates = 5, .deadline_ts = UINT64_MAX - 1};
  assert_int_equal(fl_keeper_decide(&far, UINT64_MAX - 1, 1000, &wait), FL_KEEPER_WAIT);
  assert_string_equal(fl_keeper_action_name(FL_KEEPER_CLOSE_DEADLINE), "close-deadline");
}

/* ---- session: identity errors, transport errors, backoff ---------------------------- */

static uint16_t closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t l = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
  close(fd); /* nobody listens there now */
  return ntohs(a.sin_port);
}

static void test_session(void **state) {
  (void)state;
  char *msp = fl_sprintf("%s/" CLIENT1 "/msp", pki());
  char *tls = fl_sprintf("%s/" CLIENT1 "/tls", pki());
  char ep[64];
  snprintf(ep, sizeof ep, "127.0.0.1:%u", closed_port());
  fl_edge_conn_t c = {.mspid = "Org1MSP", .msp_dir = "/nonexistent/msp", .tls_dir = tls,
                      .gateway = ep, .channel = "fedledger", .call_timeout_ms = 2000,
                      .backoff_min_ms = 10, .backoff_max_ms = 40};
  fl_edge_session_t *s = NULL;
  char *err = NULL;
  assert_int_not_equal(fl_edge_session_open(&c, &s, &err), FL_OK);
  assert_null(s);
  assert_non_null(strstr(err, "/nonexistent/msp"));
  fl_free(err);
  c.msp_dir = msp;
  c.tls_dir = "/nonexistent/tls";
  assert_int_not_equal(fl_edge_session_open(&c, &s, &err), FL_OK);
  assert_non_null(strstr(err, "/nonexistent/tls"));
  fl_free(err);
  c.tls_dir = tls;
  c.gateway = "no-port";
  assert_int_equal(fl_edge_session_open(&c, &s, &err), FL_ECONFIG);
  fl_free(err);
  c.gateway = ep;
  volatile sig_atomic_t stop = 0;
  c.stop = &stop;
  assert_int_equal(fl_edge_session_open(&c, &s, &err), FL_OK);
  assert_string_equal(fl_edge_session_client_id(s), "Org1MSP:client1@org1.example.com");
  /* nothing listens: a transport error, retried by the callers */
  fl_edge_round_t r;
  fl_status_t st = fl_edge_get_round(s, "t1", 0, &r);
  assert_true(fl_edge_status_transport(st));
  fl_ml_tensors_t m;
  uint8_t h[32] = {0};
  assert_true(fl_edge_status_transport(fl_edge_fetch_model(s, h, NULL, &m)));
  /* backoff doubles up to the maximum, and a stop ends it at once */
  uint64_t t0 = fl_mono_ns();
  assert_true(fl_edge_session_backoff(s)); /* 10 */
  assert_true(fl_edge_session_backoff(s)); /* 20 */
  assert_true(fl_edge_session_backoff(s)); /* 40 */
  assert_true(fl_edge_session_backoff(s)); /* 40 */
  uint64_t ms = (fl_mono_ns() - t0) / 1000000;
  assert_true(ms >= 105 && ms < 2000);
  stop = 1;
  t0 = fl_mono_ns();
  assert_false(fl_edge_session_sleep(s, 5000));
  fl_edge_event_t ev;
  assert_int_equal(fl_edge_session_next_event(s, 5000, &ev), FL_ECANCELED);
  assert_true((fl_mono_ns() - t0) / 1000000 < 1000);
  assert_false(fl_edge_status_transport(FL_NOTFOUND));
  assert_false(fl_edge_status_transport(FL_ECONFLICT));
  fl_edge_session_close(s);
  fl_edge_session_close(NULL);
  fl_free(msp);
  fl_free(tls);
}

/* ---- the executables ------------------------------------------------------------------- */

/* Runs bin with args (NULL-terminated), stderr to a file; returns the exit
 * status and the stderr text (owned) in *out. */
static int run_bin(const char *bin, const char *const *args, char **out) {
  char *errf = tpath("stderr.txt");
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    FILE *f = freopen(errf, "w", stderr);
    if (f == NULL) _exit(99);
    if (freopen("/dev/null", "w", stdout) == NULL) _exit(99);
    char *argv[32];
    int n = 0;
    argv[n++] = fl_strdup(bin);
    for (; args[n - 1] != NULL && n < 31; n++) argv[n] = fl_strdup(args[n - 1]);
    argv[n] = NULL;
    execv(bin, argv);
    _exit(98);
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  FILE *f = fopen(errf, "r");
  assert_non_null(f);
  fl_sbuf_t b = {0};
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) fl_sbuf_append(&b, buf, n);
  fclose(f);
  *out = fl_strdup(fl_sbuf_cstr(&b));
  fl_sbuf_free(&b);
  unlink(errf);
  fl_free(errf);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_executables_exit_codes(void **state) {
  (void)state;
  char *out = NULL;
  const char *help[] = {"--help", NULL};
  assert_int_equal(run_bin(EDGE_BIN, help, &out), 0);
  fl_free(out);
  assert_int_equal(run_bin(KEEPER_BIN, help, &out), 0);
  fl_free(out);
  char *p = tpath("exe.yaml");
  write_file(p, "identity:\n  mspid: Org1MSP\n  msp_dir: /nonexistent/msp\n  tls_dir: /x\n"
                "gateway:\n  endpoint: 127.0.0.1:1\ntask: t1\ntrain:\n  batch: -3\n");
  const char *bad[] = {"--config", p, NULL};
  assert_int_equal(run_bin(EDGE_BIN, bad, &out), 2);
  assert_non_null(strstr(out, "exe.yaml:9: train.batch"));
  fl_free(out);
  /* good settings, unusable identity: exit 2 with the folder named */
  write_file(p, "identity:\n  mspid: Org1MSP\n  msp_dir: /nonexistent/msp\n  tls_dir: /x\n"
                "gateway:\n  endpoint: 127.0.0.1:1\ntask: t1\n");
  const char *ident[] = {"--config", p, NULL};
  assert_int_equal(run_bin(EDGE_BIN, ident, &out), 2);
  assert_non_null(strstr(out, "/nonexistent/msp"));
  fl_free(out);
  assert_int_equal(run_bin(KEEPER_BIN, ident, &out), 2);
  assert_non_null(strstr(out, "/nonexistent/msp"));
  fl_free(out);
  unlink(p);
  fl_free(p);
}

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/fl_edge_test.XXXXXX");
  if (mkdtemp(tmpdir) == NULL) return -1;
  fl_log_configure("error");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char *cmd = fl_sprintf("rm -rf '%s'", tmpdir);
  int rc = system(cmd);
  fl_free(cmd);
  return rc == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cfg_precedence),
      cmocka_unit_test(test_cfg_errors_name_source),
      cmocka_unit_test(test_keeper_cfg),
      cmocka_unit_test(test_parsers),
      cmocka_unit_test(test_data_generated_fallback),
      cmocka_unit_test(test_data_bad_file_is_an_error),
      cmocka_unit_test(test_data_nsl_kdd),
      cmocka_unit_test(test_model_check),
      cmocka_unit_test(test_delta),
      cmocka_unit_test(test_dp),
      cmocka_unit_test(test_attacks),
      cmocka_unit_test(test_training_and_estimates),
      cmocka_unit_test(test_data_hash_definition),
      cmocka_unit_test(test_submission_signature),
      cmocka_unit_test(test_spec_from_layout),
      cmocka_unit_test(test_records),
      cmocka_unit_test(test_events),
      cmocka_unit_test(test_keeper_decide),
      cmocka_unit_test(test_session),
      cmocka_unit_test(test_executables_exit_codes),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
