/* SPDX-License-Identifier: Apache-2.0
 *
 * test_cli.c: the fedledger CLI without a network, in-process (fl_cli):
 * --help of every command, usage errors and their exit codes, the config
 * file / environment / flag precedence, an unreachable peer (exit 5 and its
 * message), YAML task definitions, tables, times and JSON writing, the
 * exit-code mapping, genesis loading and orderer signature checks on blocks
 * built and signed here, transaction flattening, and the JSON of
 * `task create --dry-run` against its schema in docs/cli-json.md.
 *
 * stdout and stderr of in-process commands are captured by redirecting the
 * file descriptors to temp files (dup2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "chaincode/mlupdate/json.h"
#include "cli/cli.h"
#include "cli/inspect.h"
#include "cli/net.h"
#include "cli/out.h"
#include "cli/task_def.h"
#include "common/base/alloc.h"
#include "common/crypto/sign.h"
#include "common/protoutil/block.h"

static char g_dir[256];
static const char *g_pki;

static const fl_cli_cmd_t root = {.name = "fedledger", .summary = "test", .subs = fl_cli_commands};

/* ---- helpers ------------------------------------------------------------------------- */

typedef struct cap_s {
  int rc;
  char *out, *err;
} cap_t;

static char *slurp(const char *p) {
  FILE *f = fopen(p, "rb");
  if (f == NULL) return fl_strdup("");
  fl_sbuf_t b = {0};
  char chunk[4096];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) fl_sbuf_append(&b, chunk, k);
  fclose(f);
  fl_sbuf_append(&b, "", 1);
  return (char *)fl_sbuf_detach(&b, NULL);
}

static void cap_free(cap_t *c) {
  fl_free(c->out);
  fl_free(c->err);
}

/* Runs `fedledger <args...>` in-process (NULL-terminated). */
static cap_t run(const char *first, ...) {
  char *argv[32];
  int argc = 0;
  argv[argc++] = "fedledger";
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a != NULL && argc < 31; a = va_arg(ap, const char *))
    argv[argc++] = (char *)(uintptr_t)a;
  va_end(ap);
  argv[argc] = NULL;
  char po[300], pe[300];
  snprintf(po, sizeof po, "%s/stdout", g_dir);
  snprintf(pe, sizeof pe, "%s/stderr", g_dir);
  fflush(stdout);
  fflush(stderr);
  int so = dup(1), se = dup(2);
  FILE *fo = fopen(po, "w"), *fe = fopen(pe, "w");
  assert_non_null(fo);
  assert_non_null(fe);
  dup2(fileno(fo), 1);
  dup2(fileno(fe), 2);
  cap_t c = {0};
  c.rc = fl_cli_dispatch(&root, "fedledger", argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  fclose(fo);
  fclose(fe);
  c.out = slurp(po);
  c.err = slurp(pe);
  return c;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  const char *tmp = getenv("TMPDIR");
  snprintf(g_dir, sizeof g_dir, "%s/fl-cli-unit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(g_dir) == NULL) return -1;
  g_pki = getenv("FL_TEST_PKI_DIR");
  /* The CLI must not pick up the developer's own configuration. */
  setenv("HOME", g_dir, 1);
  unsetenv("FEDLEDGER_CLI_CONFIG");
  unsetenv("FEDLEDGER_PEER");
  unsetenv("FEDLEDGER_MSPID");
  unsetenv("FEDLEDGER_MSP_DIR");
  unsetenv("FEDLEDGER_TLS_DIR");
  unsetenv("FEDLEDGER_GENESIS");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char *cmd = fl_sprintf("rm -rf '%s'", g_dir);
  int rc = system(cmd);
  fl_free(cmd);
  return rc == 0 ? 0 : -1;
}

/* ---- commands ------------------------------------------------------------------------ */

static void walk_help(const fl_cli_cmd_t *cmd, const char **path, int depth, int *leaves) {
  if (cmd->run != NULL) {
    char *argv[8];
    for (int i = 0; i < depth; i++) argv[i] = (char *)(uintptr_t)path[i];
    cap_t c;
    switch (depth) {
    case 1: c = run(argv[0], "--help", NULL); break;
    case 2: c = run(argv[0], argv[1], "--help", NULL); break;
    default: fail_msg("unexpected depth %d", depth); return;
    }
    assert_int_equal(c.rc, 0);
    assert_non_null(strstr(c.out, "Usage: fedledger"));
    assert_non_null(strstr(c.out, "-h, --help"));
    cap_free(&c);
    (*leaves)++;
    return;
  }
  for (const fl_cli_cmd_t *const *s = cmd->subs; *s != NULL; s++) {
    path[depth] = (*s)->name;
    walk_help(*s, path, depth + 1, leaves);
  }
}

static void test_help_everywhere(void **state) {
  (void)state;
  const char *path[8];
  int leaves = 0;
  walk_help(&root, path, 0, &leaves);
  assert_true(leaves >= 17); /* cryptogen generate, genesis, and the 15 network commands */
  cap_t c = run("model", "--help", NULL);
  assert_int_equal(c.rc, 0);
  assert_non_null(strstr(c.out, "lineage"));
  cap_free(&c);
  /* the global flags are on every network command */
  c = run("ledger", "verify", "--help", NULL);
  const char *want[] = {"--peer", "--mspid", "--msp-dir", "--tls-dir", "--genesis",
                        "--timeout", "--json", "--config"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    assert_non_null(strstr(c.out, want[i]));
  cap_free(&c);
}

static void test_usage_errors(void **state) {
  (void)state;
  struct {
    const char *a[6];
    const char *msg;
  } cases[] = {
      {{"model", "show", "--task", "t1", NULL}, "missing required flag --round"},
      {{"model", "show", "--task", "t1", "--round", "x"}, "--round must be a round number"},
      {{"model", "history", "--task", "bad id!", NULL}, "invalid task id"},
      {{"block", "get", "notanumber", NULL}, "block number"},
      {{"tx", "get", "abc", NULL}, "64 hex digits"},
      {{"model", "lineage", "--task", "t1", "xyz", NULL}, "not a model hash"},
      {{"key", "history", NULL}, "the key"},
      {{"client", "show", "--client", "nocolon", NULL}, "invalid client id"},
      {{"model", "history", "--task", "t1", "--bogus"}, "unknown flag '--bogus'"},
      {{"model", "history", "--task", "t1", "--peer", "nocolon"}, "HOST:PORT"},
      {{"model", "history", "--task", "t1", "--timeout", "5"}, "--timeout must be a duration"},
      {{"frobnicate", NULL}, "unknown command 'frobnicate'"},
      {{"client", "revoke", "--client", "Org1MSP:c@x", "--reason", ""}, "--reason"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char **a = cases[i].a;
    cap_t c = run(a[0], a[1], a[2], a[3], a[4], a[5], NULL);
    if (c.rc != FL_CLI_USAGE || strstr(c.err, cases[i].msg) == NULL)
      fail_msg("case %zu (%s %s): rc %d, stderr: %s", i, a[0], a[1] ? a[1] : "", c.rc, c.err);
    cap_free(&c);
  }
  /* No identity anywhere: usage error that says how to give one. */
  cap_t c = run("task", "show", "--task", "t1", NULL);
  assert_int_equal(c.rc, FL_CLI_USAGE);
  assert_non_null(strstr(c.err, "no identity"));
  cap_free(&c);
  /* a missing identity folder is a plain failure naming it */
  c = run("task", "show", "--task", "t1", "--mspid", "Org1MSP", "--msp-dir", "/nonexistent/msp",
          NULL);
  assert_int_equal(c.rc, FL_CLI_FAIL);
  assert_non_null(strstr(c.err, "/nonexistent/msp"));
  cap_free(&c);
  /* ledger verify needs a genesis */
  c = run("ledger", "verify", NULL);
  assert_int_equal(c.rc, FL_CLI_USAGE);
  assert_non_null(strstr(c.err, "no genesis block"));
  cap_free(&c);
}

static char *admin_msp(void) {
  return fl_sprintf("%s/peerOrganizations/org1.example.com/users/Admin@org1.example.com/msp",
                    g_pki);
}

static void test_unreachable_and_config(void **state) {
  (void)state;
  if (g_pki == NULL) skip();
  char *msp = admin_msp();
  /* flags only: a closed port */
  cap_t c = run("task", "show", "--task", "t1", "--peer", "127.0.0.1:1", "--mspid", "Org1MSP",
                "--msp-dir", msp, NULL);
  assert_int_equal(c.rc, FL_CLI_UNREACHABLE);
  assert_non_null(strstr(c.err, "peer 127.0.0.1:1 unreachable: connection refused"));
  cap_free(&c);

  /* config file with a relative path, picked up from ~/.fedledger/cli.yaml */
  char d[300], cfg[400], link[400];
  snprintf(d, sizeof d, "%s/.fedledger", g_dir);
  mkdir(d, 0700);
  snprintf(link, sizeof link, "%s/admin", d);
  char *admin_dir = fl_sprintf("%s/..", msp);
  assert_int_equal(symlink(admin_dir, link), 0);
  fl_free(admin_dir);
  snprintf(cfg, sizeof cfg, "%s/cli.yaml", d);
  write_file(cfg, "peer: 127.0.0.1:2\nmspid: Org1MSP\nmsp_dir: admin/msp\ntimeout: 3s\n");
  c = run("model", "history", "--task", "t1", NULL);
  assert_int_equal(c.rc, FL_CLI_UNREACHABLE);
  assert_non_null(strstr(c.err, "peer 127.0.0.1:2 unreachable"));
  cap_free(&c);
  /* env beats the file, the flag beats env */
  setenv("FEDLEDGER_PEER", "127.0.0.1:3", 1);
  c = run("model", "history", "--task", "t1", NULL);
  assert_non_null(strstr(c.err, "peer 127.0.0.1:3 unreachable"));
  cap_free(&c);
  c = run("model", "history", "--task", "t1", "--peer", "127.0.0.1:4", NULL);
  assert_non_null(strstr(c.err, "peer 127.0.0.1:4 unreachable"));
  cap_free(&c);
  unsetenv("FEDLEDGER_PEER");
  /* --config names another file; a broken one is reported with its name */
  char bad[400];
  snprintf(bad, sizeof bad, "%s/bad.yaml", g_dir);
  write_file(bad, "peer: [unclosed\n");
  c = run("model", "history", "--task", "t1", "--config", bad, NULL);
  assert_int_equal(c.rc, FL_CLI_FAIL);
  assert_non_null(strstr(c.err, "bad.yaml"));
  cap_free(&c);
  unlink(cfg);
  unlink(link);
  rmdir(d);
  fl_free(msp);
}

/* ---- task definitions ------------------------------------------------------------------ */

static void test_task_def(void **state) {
  (void)state;
  char p[300], q[300];
  snprintf(p, sizeof p, "%s/task.yaml", g_dir);
  write_file(p, "task: t1\nmodel: {kind: mlp, inputs: 8, classes: 3, hidden: [4, 5], seed: 9}\n"
                "rule: krum\nf: 1\nmin_updates: 4\nround: 1m30s\nmax_norm: 2.5\n");
  fl_cli_task_def_t d = {0}, e = {0};
  char *err = NULL;
  assert_int_equal(fl_cli_task_def_load(p, NULL, false, 0, &d, &err), FL_OK);
  assert_string_equal(d.task, "t1");
  assert_int_equal(d.n_params, 8 * 4 + 4 + 4 * 5 + 5 + 5 * 3 + 3);
  fl_mlu_json_t *j = NULL;
  assert_int_equal(fl_mlu_json_parse(fl_sbuf_view(&d.definition), &j), FL_OK);
  assert_string_equal(fl_cli_jtext(j, "rule"), "krum");
  assert_string_equal(fl_cli_jtext(j, "round_ms"), "90000");
  assert_string_equal(fl_cli_jtext(j, "f"), "1");
  assert_string_equal(fl_cli_jtext(j, "max_norm"), "2.5");
  assert_string_equal(fl_cli_jtext(j, "arch"), "mlp 8-4-5-3 seed 9");
  assert_string_equal(fl_cli_jtext(j, "init_hash"), d.init_hash);
  assert_null(fl_mlu_json_get(j, "task"));
  fl_mlu_json_free(j);
  /* deterministic per seed; --seed overrides */
  assert_int_equal(fl_cli_task_def_load(p, NULL, false, 0, &e, &err), FL_OK);
  assert_string_equal(d.init_hash, e.init_hash);
  fl_cli_task_def_free(&e);
  assert_int_equal(fl_cli_task_def_load(p, NULL, true, 10, &e, &err), FL_OK);
  assert_string_not_equal(d.init_hash, e.init_hash);
  fl_cli_task_def_free(&e);
  /* --model FILE: the blob as given */
  snprintf(q, sizeof q, "%s/model.bin", g_dir);
  FILE *f = fopen(q, "wb");
  fwrite(d.blob.data, 1, d.blob.len, f);
  fclose(f);
  assert_int_equal(fl_cli_task_def_load(p, q, false, 0, &e, &err), FL_OK);
  assert_string_equal(d.init_hash, e.init_hash);
  fl_cli_task_def_free(&e);
  write_file(q, "not a tensor blob");
  assert_int_equal(fl_cli_task_def_load(p, q, false, 0, &e, &err), FL_EMALFORMED);
  assert_non_null(strstr(err, "not a tensor blob"));
  fl_free(err);
  err = NULL;
  fl_cli_task_def_free(&d);

  struct {
    const char *yaml, *msg;
  } bad[] = {
      {"task: t1\nmodel: {kind: logreg, inputs: 4, classes: 2}\nrule: fedavg\nmin_updates: 1\n"
       "round: 1s\nmax_nrom: 3\n", "unknown key 'max_nrom'"},
      {"task: t1\nmodel: {kind: logreg, inputs: 4, classes: 2}\nrule: avg\nmin_updates: 1\n"
       "round: 1s\n", "rule must be one of"},
      {"task: t1\nmodel: {kind: logreg, inputs: 4, classes: 2}\nrule: fedavg\nmin_updates: 1\n",
       "exactly one of round"},
      {"task: t1\nmodel: {kind: logreg, inputs: 4, classes: 2}\nrule: fedavg\nmin_updates: 1\n"
       "round: 1s\nround_ms: 5\n", "exactly one of round"},
      {"task: t1\nrule: fedavg\nmin_updates: 1\nround: 1s\n", "no `model:`"},
      {"task: 'a b'\nmodel: {kind: logreg, inputs: 4, classes: 2}\nrule: fedavg\n"
       "min_updates: 1\nround: 1s\n", "task id"},
      {"task: t1\nmodel: {kind: cnn, inputs: 4, classes: 2}\nrule: fedavg\nmin_updates: 1\n"
       "round: 1s\n", "model.kind"},
      {"task: t1\nmodel: {kind: mlp, inputs: 4, classes: 2}\nrule: fedavg\nmin_updates: 1\n"
       "round: 1s\n", "model.hidden"},
      {"task: t1\nmodel: {kind: logreg, inputs: 4, classes: 2}\nrule: fedavg\nround: 1s\n",
       "min_updates"},
      {"task: t1\nmodel: {kind: logreg, inputs: 4, classes: 2}\nrule: fedavg\nmin_updates: x\n"
       "round: 1s\n", "min_updates"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_file(p, bad[i].yaml);
    fl_status_t st = fl_cli_task_def_load(p, NULL, false, 0, &e, &err);
    if (st == FL_OK || err == NULL || strstr(err, bad[i].msg) == NULL)
      fail_msg("bad case %zu: st %d err %s", i, st, err ? err : "(null)");
    assert_null(e.task);
    fl_free(err);
    err = NULL;
  }
  write_file(p, "task: t9\nmodel: {kind: proto, inputs: 3, classes: 2, protos_per_class: 2}\n"
                "rule: median\nmin_updates: 2\nround_ms: 500\n");
  assert_int_equal(fl_cli_task_def_load(p, NULL, false, 0, &e, &err), FL_OK);
  assert_int_equal(e.n_params, 2 * 2 * 3);
  fl_cli_task_def_free(&e);
  fl_cli_task_def_free(NULL);
}

static void test_dry_run_schema(void **state) {
  (void)state;
  char p[300];
  snprintf(p, sizeof p, "%s/task.yaml", g_dir);
  write_file(p, "task: t1\nmodel: {kind: logreg, inputs: 4, classes: 2, seed: 1}\n"
                "rule: fedavg\nmin_updates: 1\nround: 2s\n");
  cap_t c = run("task", "create", "--file", p, "--dry-run", "--json", NULL);
  assert_int_equal(c.rc, 0);
  const char *src = getenv("FL_SOURCE_DIR");
  if (src == NULL) skip();
  char out[300];
  snprintf(out, sizeof out, "%s/dry.json", g_dir);
  write_file(out, c.out);
  char *cmd = fl_sprintf("python3 %s/tests/integration/cli/check_schema.py %s/docs/cli-json.md "
                         "task-create < %s",
                         src, src, out);
  assert_int_equal(system(cmd), 0);
  fl_free(cmd);
  /* the checker itself rejects a wrong document */
  write_file(out, "{\"task\":\"t1\"}");
  cmd = fl_sprintf("python3 %s/tests/integration/cli/check_schema.py %s/docs/cli-json.md "
                   "task-create < %s > /dev/null",
                   src, src, out);
  assert_int_not_equal(system(cmd), 0);
  fl_free(cmd);
  cap_free(&c);
  c = run("task", "create", "--file", p, "--dry-run", NULL);
  assert_int_equal(c.rc, 0);
  assert_non_null(strstr(c.out, "would create task t1"));
  cap_free(&c);
}

/* ---- formatting ------------------------------------------------------------------------ */

static void test_table_and_values(void **state) {
  (void)state;
  const char *hdr[] = {"A", "LONGER", "C"};
  fl_cli_table_t *t = fl_cli_table_new(3, hdr);
  fl_cli_table_row(t);
  fl_cli_table_cell(t, "%d", 12345);
  fl_cli_table_cell(t, "x");
  fl_cli_table_cell(t, "tab\there");
  fl_cli_table_cell(t, "dropped");
  fl_cli_table_row(t);
  fl_cli_table_cell(t, "1");
  assert_int_equal(fl_cli_table_rows(t), 2);
  char p[300];
  snprintf(p, sizeof p, "%s/table", g_dir);
  FILE *f = fopen(p, "w");
  fl_cli_table_print(t, f);
  fclose(f);
  fl_cli_table_free(t);
  fl_cli_table_free(NULL);
  char *s = slurp(p);
  assert_string_equal(s, "A      LONGER  C\n12345  x       tab?here\n1\n");
  fl_free(s);

  char tb[32];
  assert_string_equal(fl_cli_time(0, tb), "1970-01-01T00:00:00.000Z");
  assert_string_equal(fl_cli_time(1700000000123ull, tb), "2023-11-14T22:13:20.123Z");
  char h[17];
  assert_string_equal(fl_cli_short_hash("0123456789abcdef0123", h), "0123456789abcdef");
  assert_string_equal(fl_cli_short_hash(NULL, h), "-");

  const char *text = "{\"a\":1.5e-3,\"b\":[true,null,\"x\\\"y\"],\"c\":{\"d\":-2}}";
  fl_mlu_json_t *j = NULL;
  assert_int_equal(fl_mlu_json_parse(FL_BUF_STR(text), &j), FL_OK);
  fl_sbuf_t b = {0};
  fl_cli_jw_value(&b, j);
  assert_int_equal(b.len, strlen(text));
  assert_memory_equal(b.data, text, b.len);
  assert_string_equal(fl_cli_jtext(j, "a"), "1.5e-3");
  assert_string_equal(fl_cli_jtext(j, "b"), "[...]");
  assert_string_equal(fl_cli_jtext(j, "zz"), "-");
  assert_int_equal(fl_cli_ju64(j, "a"), 0);
  b.len = 0;
  fl_sbuf_append_str(&b, "{");
  fl_cli_jw_copy(&b, "x", j, "c");
  fl_cli_jw_copy(&b, "y", j, "missing");
  fl_cli_jw_bool(&b, "z", true);
  fl_sbuf_append_str(&b, "}");
  assert_int_equal(b.len, strlen("{\"x\":{\"d\":-2},\"y\":null,\"z\":true}"));
  assert_memory_equal(b.data, "{\"x\":{\"d\":-2},\"y\":null,\"z\":true}", b.len);
  fl_sbuf_free(&b);
  fl_mlu_json_free(j);
}

static void test_exit_codes(void **state) {
  (void)state;
  assert_int_equal(fl_cli_exit_code(FL_OK), 0);
  assert_int_equal(fl_cli_exit_code(FL_NOTFOUND), 3);
  assert_int_equal(fl_cli_exit_code(FL_EPERM), 4);
  assert_int_equal(fl_cli_exit_code(FL_EREVOKED), 4);
  assert_int_equal(fl_cli_exit_code(FL_ECONNREFUSED), 5);
  assert_int_equal(fl_cli_exit_code(FL_ETIMEDOUT), 5);
  assert_int_equal(fl_cli_exit_code(FL_ECLOSED), 5);
  assert_int_equal(fl_cli_exit_code(FL_ECORRUPT), 6);
  assert_int_equal(fl_cli_exit_code(FL_EBADSIG), 6);
  assert_int_equal(fl_cli_exit_code(FL_EINVAL), 1);
  char *host = NULL;
  uint16_t port = 0;
  assert_int_equal(fl_cli_parse_hostport("127.0.0.1:7051", &host, &port), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_int_equal(port, 7051);
  fl_free(host);
  assert_int_equal(fl_cli_parse_hostport("h:0", &host, &port), -1);
  assert_int_equal(fl_cli_parse_hostport("h:65536", &host, &port), -1);
  assert_int_equal(fl_cli_parse_hostport(":1", &host, &port), -1);
  assert_int_equal(fl_cli_parse_hostport("h", &host, &port), -1);
  assert_null(host);
}

/* ---- genesis, signatures, transactions ----------------------------------------------- */

static void test_genesis_and_signatures(void **state) {
  (void)state;
  if (g_pki == NULL) skip();
  const char *src = getenv("FL_SOURCE_DIR");
  if (src == NULL) skip();
  char net[400], gen[300];
  snprintf(net, sizeof net, "%s/crypto-config/network.yaml", src);
  snprintf(gen, sizeof gen, "%s/genesis.block", g_dir);
  cap_t c = run("genesis", "-c", net, "--crypto-dir", g_pki, "-o", gen, NULL);
  assert_int_equal(c.rc, 0);
  cap_free(&c);
  fl_cli_genesis_t g;
  char *err = NULL;
  assert_int_equal(fl_cli_genesis_load(gen, &g, &err), FL_OK);
  assert_int_equal(g.n, 4);
  assert_int_equal(g.f, 1);
  for (size_t i = 0; i < g.n; i++) assert_non_null(g.verifiers[i]);
  /* block 0 is the genesis itself */
  fl_cli_sigcheck_t sc;
  fl_cli_sigcheck(&g, g.block, &sc);
  assert_int_equal(sc.status, FL_OK);
  fl_cli_sigcheck_clear(&sc);
  /* a block 1 signed by 2, then 3 orderers */
  fl_buf_t env = FL_BUF_STR("not really an envelope");
  fl_block_t *b = NULL;
  assert_int_equal(fl_block_build(1, g.block->header_hash, &env, 1, &b), FL_OK);
  fl_signer_t *keys[4] = {0};
  for (int i = 0; i < 4; i++) {
    char *k = fl_sprintf("%s/ordererOrganizations/example.com/orderers/orderer%d.example.com/"
                         "msp/keystore/priv_sk",
                         g_pki, i);
    assert_int_equal(fl_signer_load_file(k, &keys[i]), FL_OK);
    fl_free(k);
  }
  assert_int_equal(fl_block_sign(b, 0, keys[0]), FL_OK);
  assert_int_equal(fl_block_sign(b, 1, keys[1]), FL_OK);
  assert_int_equal(fl_block_sign(b, 1, keys[1]), FL_OK); /* a duplicate counts once */
  fl_cli_sigcheck(&g, b, &sc);
  assert_int_equal(sc.status, FL_EBADSIG);
  assert_int_equal(sc.valid, 2);
  assert_int_equal(sc.required, 3);
  assert_string_equal(fl_cli_sig_status_name(sc.per_sig[2]), "duplicate");
  fl_cli_sigcheck_clear(&sc);
  assert_int_equal(fl_block_sign(b, 2, keys[3]), FL_OK); /* wrong key for replica 2 */
  fl_cli_sigcheck(&g, b, &sc);
  assert_int_equal(sc.status, FL_EBADSIG);
  assert_string_equal(fl_cli_sig_status_name(sc.per_sig[3]), "bad_signature");
  fl_cli_sigcheck_clear(&sc);
  assert_int_equal(fl_block_sign(b, 3, keys[3]), FL_OK);
  fl_cli_sigcheck(&g, b, &sc);
  assert_int_equal(sc.status, FL_OK);
  assert_int_equal(sc.valid, 3);
  fl_cli_sigcheck_clear(&sc);
  /* the genesis' own transaction: a CONFIG envelope by the orderer admin */
  fl_cli_txinfo_t t;
  assert_int_equal(fl_cli_txinfo_decode(g.block->envelopes[0], &t), FL_OK);
  assert_string_equal(t.type, "CONFIG");
  assert_string_equal(t.creator_mspid, "OrdererMSP");
  assert_string_equal(t.creator_cn, "Admin@example.com");
  assert_string_equal(t.creator_role, "admin");
  fl_sbuf_t j = {0};
  fl_sbuf_append_str(&j, "{");
  fl_cli_jw_txinfo(&j, &t);
  fl_sbuf_append_str(&j, "}");
  fl_mlu_json_t *pj = NULL;
  assert_int_equal(fl_mlu_json_parse(fl_sbuf_view(&j), &pj), FL_OK);
  assert_string_equal(fl_cli_jtext(pj, "chaincode"), "-");
  fl_mlu_json_free(pj);
  fl_sbuf_free(&j);
  fl_cli_txinfo_clear(&t);
  /* garbage is reported, not crashed on */
  assert_int_equal(fl_cli_txinfo_decode(env, &t), FL_EMALFORMED);
  assert_non_null(t.error);
  fl_cli_txinfo_clear(&t);
  for (int i = 0; i < 4; i++) fl_signer_free(keys[i]);
  fl_block_free(b);
  fl_cli_genesis_clear(&g);
  fl_cli_genesis_clear(NULL);
  /* not a genesis block */
  write_file(gen, "junk");
  assert_int_not_equal(fl_cli_genesis_load(gen, &g, &err), FL_OK);
  assert_non_null(strstr(err, "not a valid genesis block"));
  fl_free(err);
  c = run("block", "get", "1", "--genesis", gen, "--mspid", "Org1MSP", "--msp-dir", "/x", NULL);
  assert_int_equal(c.rc, FL_CLI_FAIL);
  assert_non_null(strstr(c.err, "genesis"));
  cap_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_everywhere),
      cmocka_unit_test(test_usage_errors),
      cmocka_unit_test(test_unreachable_and_config),
      cmocka_unit_test(test_task_def),
      cmocka_unit_test(test_dry_run_schema),
      cmocka_unit_test(test_table_and_values),
      cmocka_unit_test(test_exit_codes),
      cmocka_unit_test(test_genesis_and_signatures),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
