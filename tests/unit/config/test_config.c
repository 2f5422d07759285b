/* SPDX-License-Identifier: Apache-2.0
 *
 * test_config.c: unit tests of common/config: file:line in errors, env
 * overrides, defaults, required keys, YAML syntax errors, durations, bools,
 * integer ranges, sequences and maps, and hostile documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/base/alloc.h"
#include "common/config/config.h"

static char tmpdir[] = "/tmp/fl-test-config-XXXXXX";

static int setup(void **state) {
  (void)state;
  return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char *cmd = fl_sprintf("rm -rf '%s'", tmpdir);
  int rc = system(cmd);
  fl_free(cmd);
  return rc == 0 ? 0 : -1;
}

/* Writes text to TMP/name and returns the owned path. */
static char *write_file(const char *name, const char *text) {
  char *p = fl_sprintf("%s/%s", tmpdir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return p;
}

static fl_config_t *load(const char *path, const char *prefix) {
  fl_config_t *cfg = NULL;
  char *err = NULL;
  fl_status_t rc = fl_config_load(path, prefix, &cfg, &err);
  if (rc != FL_OK) fail_msg("load failed: %s", err);
  assert_null(err);
  return cfg;
}

static const char sample[] =
    "# line 1\n"
    "general:\n"                   /* 2 */
    "  listen:\n"                  /* 3 */
    "    host: 127.0.0.1\n"        /* 4 */
    "    port: abc\n"              /* 5 */
    "  listen_port: 7051\n"        /* 6 */
    "  tls: yes\n"                 /* 7 */
    "  timeout: 1m30s\n"           /* 8 */
    "  ratio: 0.25\n"              /* 9 */
    "  empty:\n"                   /* 10 */
    "orgs:\n"                      /* 11 */
    "  - name: Org1\n"             /* 12 */
    "    peers: [peer0, peer1]\n"  /* 13 */
    "  - name: Org2\n"             /* 14 */
    "    peers: []\n"              /* 15 */
    "labels:\n"                    /* 16 */
    "  zone: eu\n"                 /* 17 */
    "  rack: '7'\n";               /* 18 */

static void test_bad_value_file_and_line(void **state) {
  (void)state;
  char *path = write_file("bad.yaml", sample);
  fl_config_t *cfg = load(path, "FLTEST");
  int64_t port = 0;
  char *err = NULL;
  assert_int_equal(fl_config_get_int64(cfg, NULL, "general.listen.port", 1, 65535, NULL, &port,
                                       &err), FL_ECONFIG);
  char *want = fl_sprintf("%s:5: general.listen.port: expected an integer between 1 and 65535, "
                          "got 'abc'", path);
  assert_string_equal(err, want);
  assert_int_equal(port, 0); /* untouched on failure */
  fl_free(want);
  fl_free(err);

  /* a value out of range reports its own line */
  assert_int_equal(fl_config_get_int64(cfg, NULL, "general.listen_port", 1, 1024, NULL, &port,
                                       &err), FL_ECONFIG);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, ":6: general.listen_port: expected an integer between 1 and 1024"));
  fl_free(err);

  /* a map where a value is expected */
  const char *s;
  assert_int_equal(fl_config_get_string(cfg, NULL, "general.listen", NULL, &s, &err), FL_ECONFIG);
  assert_non_null(strstr(err, ":3: general.listen: expected a single value, got a map"));
  fl_free(err);
  /* a scalar where a list is expected */
  const fl_config_node_t *seq;
  size_t n;
  assert_int_equal(fl_config_get_seq(cfg, NULL, "labels.zone", &seq, &n, &err), FL_ECONFIG);
  assert_non_null(strstr(err, ":17: labels.zone: expected a list"));
  fl_free(err);
  fl_config_free(cfg);
  fl_free(path);
}

static void test_env_override(void **state) {
  (void)state;
  char *path = write_file("env.yaml", sample);
  fl_config_t *cfg = load(path, "FLTEST");
  char *name = fl_config_env_name(cfg, "general.listen_port");
  assert_string_equal(name, "FLTEST_GENERAL_LISTEN_PORT");
  fl_free(name);
  int64_t port = 0;
  char *err = NULL;
  assert_int_equal(fl_config_get_int64(cfg, NULL, "general.listen_port", 1, 65535, NULL, &port,
                                       &err), FL_OK);
  assert_int_equal(port, 7051);

  setenv("FLTEST_GENERAL_LISTEN_PORT", "9999", 1);
  assert_int_equal(fl_config_get_int64(cfg, NULL, "general.listen_port", 1, 65535, NULL, &port,
                                       &err), FL_OK);
  assert_int_equal(port, 9999);
  /* type-checked like the file, and the error names the variable */
  setenv("FLTEST_GENERAL_LISTEN_PORT", "70000", 1);
  assert_int_equal(fl_config_get_int64(cfg, NULL, "general.listen_port", 1, 65535, NULL, &port,
                                       &err), FL_ECONFIG);
  assert_string_equal(err, "env FLTEST_GENERAL_LISTEN_PORT: expected an integer between 1 and "
                           "65535, got '70000'");
  fl_free(err);
  unsetenv("FLTEST_GENERAL_LISTEN_PORT");

  /* env replaces a bad file value and fills an absent key */
  setenv("FLTEST_GENERAL_LISTEN_PORT_X", "1", 1); /* a longer name does not match */
  setenv("FLTEST_GENERAL_LISTEN_PORT", "", 1);
  unsetenv("FLTEST_GENERAL_LISTEN_PORT");
  setenv("FLTEST_GENERAL_LISTEN_PORT", "8080", 1);
  unsetenv("FLTEST_GENERAL_LISTEN_PORT");
  setenv("FLTEST_GENERAL_LISTEN_PORT_X", "1", 1);
  assert_int_equal(fl_config_get_int64(cfg, NULL, "general.listen_port", 1, 65535, NULL, &port,
                                       &err), FL_OK);
  assert_int_equal(port, 7051);
  unsetenv("FLTEST_GENERAL_LISTEN_PORT_X");
  setenv("FLTEST_GENERAL_LISTEN_PORT", "8080", 1);
  setenv("FLTEST_GENERAL_LISTEN_HOST", "0.0.0.0", 1);
  setenv("FLTEST_GENERAL_NEW_KEY", "on", 1);
  const char *host = NULL;
  assert_int_equal(fl_config_get_string(cfg, NULL, "general.listen.host", NULL, &host, &err),
                   FL_OK);
  assert_string_equal(host, "0.0.0.0");
  unsetenv("FLTEST_GENERAL_LISTEN_HOST");
  assert_string_equal(host, "0.0.0.0"); /* the copy outlives the variable */
  bool b = false;
  assert_int_equal(fl_config_get_bool(cfg, NULL, "general.new_key", NULL, &b, &err), FL_OK);
  assert_true(b);
  unsetenv("FLTEST_GENERAL_NEW_KEY");
  unsetenv("FLTEST_GENERAL_LISTEN_PORT");

  /* paths relative to a node map to the full path; list indexes too */
  const fl_config_node_t *orgs;
  size_t n;
  assert_int_equal(fl_config_get_seq(cfg, NULL, "orgs", &orgs, &n, &err), FL_OK);
  setenv("FLTEST_ORGS_1_NAME", "OrgTwo", 1);
  const char *oname = NULL;
  assert_int_equal(fl_config_get_string(cfg, fl_config_node_child(orgs, 1), "name", NULL, &oname,
                                        &err), FL_OK);
  assert_string_equal(oname, "OrgTwo");
  unsetenv("FLTEST_ORGS_1_NAME");
  fl_config_free(cfg);

  /* default prefix is FEDLEDGER; "" disables overrides */
  cfg = load(path, NULL);
  name = fl_config_env_name(cfg, "general.listen_port");
  assert_string_equal(name, "FEDLEDGER_GENERAL_LISTEN_PORT");
  fl_free(name);
  fl_config_free(cfg);
  cfg = load(path, "");
  assert_null(fl_config_env_name(cfg, "general.listen_port"));
  setenv("FEDLEDGER_GENERAL_LISTEN_PORT", "1", 1);
  assert_int_equal(fl_config_get_int64(cfg, NULL, "general.listen_port", 1, 65535, NULL, &port,
                                       &err), FL_OK);
  assert_int_equal(port, 7051);
  unsetenv("FEDLEDGER_GENERAL_LISTEN_PORT");
  fl_config_free(cfg);
  fl_free(path);
}

static void test_defaults_and_required(void **state) {
  (void)state;
  char *path = write_file("defaults.yaml", sample);
  fl_config_t *cfg = load(path, "FLTEST");
  char *err = NULL;
  int64_t i = 0;
  assert_int_equal(fl_config_get_int64(cfg, NULL, "general.missing", 0, 10, &(int64_t){7}, &i,
                                       &err), FL_OK);
  assert_int_equal(i, 7);
  assert_null(err);
  /* `empty:` is a YAML null: absent, so the default applies */
  assert_int_equal(fl_config_get_int64(cfg, NULL, "general.empty", 0, 10, &(int64_t){3}, &i,
                                       &err), FL_OK);
  assert_int_equal(i, 3);
  const char *s = NULL;
  assert_int_equal(fl_config_get_string(cfg, NULL, "nope.deeper", "dflt", &s, &err), FL_OK);
  assert_string_equal(s, "dflt");

  /* required and missing */
  assert_int_equal(fl_config_get_int64(cfg, NULL, "general.listen.backlog", 1, 100, NULL, &i,
                                       &err), FL_ECONFIG);
  char *want = fl_sprintf("%s: missing required key general.listen.backlog", path);
  assert_string_equal(err, want);
  fl_free(want);
  fl_free(err);
  assert_int_equal(fl_config_get_string(cfg, NULL, "general.empty", NULL, &s, &err), FL_ECONFIG);
  assert_non_null(strstr(err, "missing required key general.empty"));
  fl_free(err);
  /* the relative form reports the full path */
  const fl_config_node_t *gen = fl_config_find(cfg, NULL, "general");
  assert_non_null(gen);
  assert_int_equal(fl_config_get_string(cfg, gen, "absent", NULL, &s, &err), FL_ECONFIG);
  assert_non_null(strstr(err, "missing required key general.absent"));
  fl_free(err);

  /* other types */
  double d = 0;
  assert_int_equal(fl_config_get_double(cfg, NULL, "general.ratio", NULL, &d, &err), FL_OK);
  assert_true(d == 0.25);
  assert_int_equal(fl_config_get_double(cfg, NULL, "labels.zone", NULL, &d, &err), FL_ECONFIG);
  assert_non_null(strstr(err, "expected a number, got 'eu'"));
  fl_free(err);
  assert_int_equal(fl_config_get_string(cfg, NULL, "labels.rack", NULL, &s, &err), FL_OK);
  assert_string_equal(s, "7");
  uint64_t u = 0;
  assert_int_equal(fl_config_get_uint64(cfg, NULL, "labels.rack", 0, UINT64_MAX, NULL, &u, &err),
                   FL_OK);
  assert_int_equal(u, 7);
  fl_config_free(cfg);
  fl_free(path);
}

static void test_syntax_error_line(void **state) {
  (void)state;
  char *path = write_file("syntax.yaml",
                          "a: 1\n"
                          "b:\n"
                          "  c: [1, 2\n"
                          "  d: 3\n"
                          "e: 4\n");
  fl_config_t *cfg = NULL;
  char *err = NULL;
  assert_int_equal(fl_config_load(path, NULL, &cfg, &err), FL_ECONFIG);
  assert_null(cfg);
  char *prefix = fl_sprintf("%s:4:", path);
  if (strncmp(err, prefix, strlen(prefix)) != 0) fail_msg("unexpected message: %s", err);
  fl_free(prefix);
  fl_free(err);
  fl_free(path);

  /* tab indentation, line 3 */
  path = write_file("tab.yaml", "a: 1\nb:\n\tc: 2\n");
  assert_int_equal(fl_config_load(path, NULL, &cfg, &err), FL_ECONFIG);
  prefix = fl_sprintf("%s:3:", path);
  if (strncmp(err, prefix, strlen(prefix)) != 0) fail_msg("unexpected message: %s", err);
  fl_free(prefix);
  fl_free(err);
  fl_free(path);

  /* duplicate key, line 3 */
  path = write_file("dup.yaml", "a: 1\nb: 2\na: 3\n");
  assert_int_equal(fl_config_load(path, NULL, &cfg, &err), FL_ECONFIG);
  assert_non_null(strstr(err, ":3: (top level): duplicate key 'a'"));
  fl_free(err);
  fl_free(path);

  /* top level must be a map */
  path = write_file("list.yaml", "- 1\n- 2\n");
  assert_int_equal(fl_config_load(path, NULL, &cfg, &err), FL_ECONFIG);
  assert_non_null(strstr(err, "top level must be a map"));
  fl_free(err);
  fl_free(path);

  /* missing file */
  assert_int_equal(fl_config_load("/nonexistent/x.yaml", NULL, &cfg, &err), FL_NOTFOUND);
  assert_non_null(strstr(err, "/nonexistent/x.yaml: cannot open"));
  fl_free(err);

  /* empty file: an empty map */
  path = write_file("empty.yaml", "");
  cfg = load(path, NULL);
  assert_int_equal(fl_config_node_count(fl_config_root(cfg)), 0);
  fl_config_free(cfg);
  fl_free(path);
}

static void test_hostile_documents(void **state) {
  (void)state;
  fl_config_t *cfg = NULL;
  char *err = NULL;
  /* a self-referencing alias must not recurse forever */
  const char *cyc = "a: &x [1, *x]\n";
  fl_status_t rc = fl_config_parse("cyc.yaml", cyc, strlen(cyc), NULL, &cfg, &err);
  assert_int_equal(rc, FL_ECONFIG);
  assert_non_null(strstr(err, "cyc.yaml:1: nested deeper than"));
  fl_free(err);
  /* billion laughs: bounded by FL_CONFIG_MAX_NODES */
  const char *lol =
      "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
      "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
      "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
      "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
      "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
  assert_int_equal(fl_config_parse("lol.yaml", lol, strlen(lol), NULL, &cfg, &err), FL_ECONFIG);
  assert_non_null(strstr(err, "lol.yaml:"));
  assert_non_null(strstr(err, "document too large"));
  fl_free(err);
  /* deep nesting */
  char deep[600];
  size_t k = 0;
  k += (size_t)snprintf(deep, sizeof deep, "a: ");
  for (int i = 0; i < 100; i++) deep[k++] = '[';
  for (int i = 0; i < 100; i++) deep[k++] = ']';
  deep[k] = '\0';
  assert_int_equal(fl_config_parse("deep.yaml", deep, k, NULL, &cfg, &err), FL_ECONFIG);
  fl_free(err);
  /* invalid UTF-8 */
  const char bad[] = "a: \xff\xfe\n";
  assert_int_equal(fl_config_parse("bin.yaml", bad, sizeof bad - 1, NULL, &cfg, &err),
                   FL_ECONFIG);
  assert_non_null(strstr(err, "bin.yaml"));
  fl_free(err);
}

static void test_durations(void **state) {
  (void)state;
  static const struct {
    const char *s;
    uint64_t ms;
  } ok[] = {{"500ms", 500}, {"2s", 2000}, {"1m", 60000}, {"1h", 3600000}, {"1m30s", 90000},
            {"1.5s", 1500}, {"0.5h", 1800000}, {"0s", 0}, {"1h2m3s4ms", 3723004},
            {"2.0005s", 2000}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    uint64_t v = 1;
    if (fl_config_parse_duration_ms(ok[i].s, &v) != 0) fail_msg("rejected %s", ok[i].s);
    assert_int_equal(v, ok[i].ms);
  }
  static const char *const bad[] = {"", "5", "s", "1x", "-1s", "1.s", ".5s", "1 s", "1s ",
                                     "99999999999999999999h", "6000000000000h", "1sm"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t v = 77;
    if (fl_config_parse_duration_ms(bad[i], &v) == 0) fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(v, 77);
  }
  const char *y = "t1: 250ms\nt2: 1m30s\nt3: 10\n";
  fl_config_t *cfg = NULL;
  char *err = NULL;
  assert_int_equal(fl_config_parse("d.yaml", y, strlen(y), "FLTEST", &cfg, &err), FL_OK);
  uint64_t v = 0;
  assert_int_equal(fl_config_get_duration_ms(cfg, NULL, "t1", NULL, &v, &err), FL_OK);
  assert_int_equal(v, 250);
  assert_int_equal(fl_config_get_duration_ms(cfg, NULL, "t2", NULL, &v, &err), FL_OK);
  assert_int_equal(v, 90000);
  assert_int_equal(fl_config_get_duration_ms(cfg, NULL, "t3", NULL, &v, &err), FL_ECONFIG);
  assert_string_equal(err, "d.yaml:3: t3: expected a duration such as 500ms, 2s, 1m30s or 1h, "
                           "got '10'");
  fl_free(err);
  assert_int_equal(fl_config_get_duration_ms(cfg, NULL, "t4", &(uint64_t){5000}, &v, &err), FL_OK);
  assert_int_equal(v, 5000);
  setenv("FLTEST_T1", "2s", 1);
  assert_int_equal(fl_config_get_duration_ms(cfg, NULL, "t1", NULL, &v, &err), FL_OK);
  assert_int_equal(v, 2000);
  unsetenv("FLTEST_T1");
  fl_config_free(cfg);
}

static void test_bools_and_ints(void **state) {
  (void)state;
  const char *y =
      "b1: true\nb2: False\nb3: yes\nb4: NO\nb5: on\nb6: off\nb7: maybe\nb8: 1\n"
      "i1: -42\ni2: 0x1F\ni3: 9223372036854775807\ni4: 9223372036854775808\ni5: ' 5'\n"
      "i6: 12abc\nu1: -1\nu2: 18446744073709551615\n";
  fl_config_t *cfg = NULL;
  char *err = NULL;
  assert_int_equal(fl_config_parse("b.yaml", y, strlen(y), "FLTEST", &cfg, &err), FL_OK);
  static const struct {
    const char *k;
    bool v;
  } bools[] = {{"b1", true}, {"b2", false}, {"b3", true}, {"b4", false}, {"b5", true},
               {"b6", false}};
  for (size_t i = 0; i < 6; i++) {
    bool b = !bools[i].v;
    assert_int_equal(fl_config_get_bool(cfg, NULL, bools[i].k, NULL, &b, &err), FL_OK);
    assert_int_equal(b, bools[i].v);
  }
  bool b;
  assert_int_equal(fl_config_get_bool(cfg, NULL, "b7", NULL, &b, &err), FL_ECONFIG);
  assert_non_null(strstr(err, "b.yaml:7: b7: expected a boolean"));
  assert_non_null(strstr(err, "got 'maybe'"));
  fl_free(err);
  assert_int_equal(fl_config_get_bool(cfg, NULL, "b8", NULL, &b, &err), FL_ECONFIG);
  fl_free(err);
  assert_int_equal(fl_config_get_bool(cfg, NULL, "b9", &(bool){true}, &b, &err), FL_OK);
  assert_true(b);

  int64_t i = 0;
  assert_int_equal(fl_config_get_int64(cfg, NULL, "i1", INT64_MIN, INT64_MAX, NULL, &i, &err),
                   FL_OK);
  assert_int_equal(i, -42);
  assert_int_equal(fl_config_get_int64(cfg, NULL, "i2", INT64_MIN, INT64_MAX, NULL, &i, &err),
                   FL_OK);
  assert_int_equal(i, 31);
  assert_int_equal(fl_config_get_int64(cfg, NULL, "i3", INT64_MIN, INT64_MAX, NULL, &i, &err),
                   FL_OK);
  assert_true(i == INT64_MAX);
  static const char *const badi[] = {"i4", "i5", "i6"};
  for (size_t k = 0; k < 3; k++) {
    assert_int_equal(fl_config_get_int64(cfg, NULL, badi[k], INT64_MIN, INT64_MAX, NULL, &i, &err),
                     FL_ECONFIG);
    assert_non_null(strstr(err, "expected an integer, got"));
    fl_free(err);
  }
  uint64_t u = 0;
  assert_int_equal(fl_config_get_uint64(cfg, NULL, "u1", 0, UINT64_MAX, NULL, &u, &err),
                   FL_ECONFIG);
  assert_non_null(strstr(err, "expected a non-negative integer, got '-1'"));
  fl_free(err);
  assert_int_equal(fl_config_get_uint64(cfg, NULL, "u2", 0, UINT64_MAX, NULL, &u, &err), FL_OK);
  assert_true(u == UINT64_MAX);
  assert_int_equal(fl_config_get_uint64(cfg, NULL, "u2", 1, 65535, NULL, &u, &err), FL_ECONFIG);
  assert_non_null(strstr(err, "expected an integer between 1 and 65535"));
  fl_free(err);
  fl_config_free(cfg);
}

static void test_iteration(void **state) {
  (void)state;
  char *path = write_file("iter.yaml", sample);
  fl_config_t *cfg = load(path, "FLTEST");
  char *err = NULL;
  const fl_config_node_t *orgs = NULL;
  size_t n = 0;
  assert_int_equal(fl_config_get_seq(cfg, NULL, "orgs", &orgs, &n, &err), FL_OK);
  assert_int_equal(n, 2);
  assert_int_equal(fl_config_node_kind(orgs), FL_CONFIG_SEQ);
  assert_int_equal(fl_config_node_line(orgs), 11); /* the key's line */
  static const char *const names[] = {"Org1", "Org2"};
  static const size_t npeers[] = {2, 0};
  for (size_t i = 0; i < n; i++) {
    const fl_config_node_t *o = fl_config_node_child(orgs, i);
    const char *name = NULL;
    assert_int_equal(fl_config_get_string(cfg, o, "name", NULL, &name, &err), FL_OK);
    assert_string_equal(name, names[i]);
    const fl_config_node_t *peers;
    size_t np;
    assert_int_equal(fl_config_get_seq(cfg, o, "peers", &peers, &np, &err), FL_OK);
    assert_int_equal(np, npeers[i]);
    for (size_t j = 0; j < np; j++) {
      char want[32];
      snprintf(want, sizeof want, "peer%zu", j);
      assert_string_equal(fl_config_node_scalar(fl_config_node_child(peers, j)), want);
    }
  }
  assert_null(fl_config_node_child(orgs, 2));
  assert_string_equal(fl_config_node_path(fl_config_node_child(orgs, 1)), "orgs.1");
  assert_non_null(fl_config_find(cfg, NULL, "orgs.0.peers.1"));
  assert_null(fl_config_find(cfg, NULL, "orgs.5"));
  assert_null(fl_config_find(cfg, NULL, "orgs.x"));

  const fl_config_node_t *labels;
  assert_int_equal(fl_config_get_map(cfg, NULL, "labels", &labels, &n, &err), FL_OK);
  assert_int_equal(n, 2);
  assert_string_equal(fl_config_node_key(labels, 0), "zone");
  assert_string_equal(fl_config_node_key(labels, 1), "rack");
  assert_string_equal(fl_config_node_scalar(fl_config_node_child(labels, 0)), "eu");
  assert_null(fl_config_node_key(labels, 2));
  assert_int_equal(fl_config_node_line(fl_config_node_child(labels, 1)), 18);

  /* absent lists are empty */
  assert_int_equal(fl_config_get_seq(cfg, NULL, "nothing", &orgs, &n, &err), FL_OK);
  assert_null(orgs);
  assert_int_equal(n, 0);
  fl_config_free(cfg);
  fl_free(path);
}

/* fl_config_check_keys: a misspelt key is refused with file, line and path;
 * patterns ".*" and "#" and whole-content keys accept what they should. */
static void test_unknown_keys(void **state) {
  (void)state;
  static const char *const known[] = {"general.id", "general.listen_port", "pbft.*",
                                      "orgs.#.name", "orgs.#.peers", "labels", NULL};
  const char *good =
      "general:\n  id: 1\n  listen_port: 7050\n"
      "pbft:\n  batch_timeout: 2ms\n  nested:\n    deep: 1\n"
      "orgs:\n  - name: a\n    peers: [p0, p1]\n  - name: b\n"
      "labels: [x, y]\n";
  fl_config_t *cfg = NULL;
  char *err = NULL;
  assert_int_equal(fl_config_parse("k.yaml", good, strlen(good), NULL, &cfg, &err), FL_OK);
  assert_int_equal(fl_config_check_keys(cfg, known, &err), FL_OK);
  assert_null(err);
  fl_config_free(cfg);

  struct {
    const char *yaml, *want;
  } bad[] = {
      {"general:\n  id: 1\n  listen_prot: 7050\n", "k.yaml:3: unknown key 'general.listen_prot'"},
      {"general:\n  id: 1\ngenral:\n  id: 2\n", "k.yaml:3: unknown key 'genral'"},
      {"orgs:\n  - name: a\n  - nme: b\n", "k.yaml:3: unknown key 'orgs.1.nme'"},
      {"pbftx: 1\n", "k.yaml:1: unknown key 'pbftx'"},
      {"general:\n  id:\n    sub: 1\n", NULL}, /* a map where a scalar is known: the reader says so */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(fl_config_parse("k.yaml", bad[i].yaml, strlen(bad[i].yaml), NULL, &cfg, &err),
                     FL_OK);
    fl_status_t rc = fl_config_check_keys(cfg, known, &err);
    if (bad[i].want == NULL) {
      assert_int_equal(rc, FL_OK);
    } else {
      assert_int_equal(rc, FL_ECONFIG);
      assert_non_null(err);
      if (strstr(err, bad[i].want) == NULL) fail_msg("case %zu: got '%s'", i, err);
      fl_free(err);
      err = NULL;
    }
    fl_config_free(cfg);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unknown_keys),
      cmocka_unit_test(test_bad_value_file_and_line),
      cmocka_unit_test(test_env_override),
      cmocka_unit_test(test_defaults_and_required),
      cmocka_unit_test(test_syntax_error_line),
      cmocka_unit_test(test_hostile_documents),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_bools_and_ints),
      cmocka_unit_test(test_iteration),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
