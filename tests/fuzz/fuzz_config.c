/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_config.c: fuzz target of the YAML configuration reader
 * (common/config/config.h) that every node and the CLI run on their
 * configuration files.
 *
 * The input is the file's text. When it parses, the tree is walked (up to
 * a node budget): every node has a line, every child's path is its
 * parent's path plus its key or index, a key without dots is found again
 * by fl_config_find, and every typed getter is called on every node (with
 * the node itself as base and "" as path): the string getter must return
 * the scalar's text and refuse maps and sequences, and every getter must
 * either succeed or fail with an error message. A duration the getter
 * accepts must parse the same with fl_config_parse_duration_ms. Then the
 * getters run on the paths the peer and orderer read, with defaults. The
 * environment prefix is one no variable uses, so results do not depend on
 * the environment; the names it forms must be [A-Z0-9_] only. Last,
 * fl_config_check_keys against a fixed list of patterns must either pass
 * or name the file in its error.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/config/config.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_check.h"

#define PREFIX "FLFUZZCFG"
#define NODE_BUDGET 4096

/* rc must be FL_OK with *errp NULL, or FL_ECONFIG with a message (freed,
 * *errp reset). errp, not the message, is the argument: the getter's call
 * and this function's arguments are evaluated in no fixed order. */
static bool result(fl_status_t rc, char **errp) {
  char *err = *errp;
  *errp = NULL;
  if (rc == FL_OK) {
    check(err == NULL);
    return true;
  }
  check(rc == FL_ECONFIG && err != NULL && err[0] != '\0');
  fl_free(err);
  return false;
}

static void getters(const fl_config_t *cfg, const fl_config_node_t *n) {
  char *err = NULL;
  const char *s = NULL;
  bool ok = result(fl_config_get_string(cfg, n, "", NULL, &s, &err), &err);
  bool null_scalar = false;
  if (fl_config_node_kind(n) == FL_CONFIG_SCALAR) {
    /* A plain null (~, null, empty) counts as absent: required, so refused. */
    const char *t = fl_config_node_scalar(n);
    null_scalar = !ok;
    if (ok)
      check(s != NULL && strcmp(s, t) == 0);
    else
      check(t[0] == '\0' || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 ||
            strcmp(t, "Null") == 0 || strcmp(t, "NULL") == 0);
  } else {
    check(!ok && fl_config_node_scalar(n) == NULL);
  }
  int64_t i64;
  err = NULL;
  result(fl_config_get_int64(cfg, n, "", INT64_MIN, INT64_MAX, NULL, &i64, &err), &err);
  uint64_t u64;
  err = NULL;
  result(fl_config_get_uint64(cfg, n, "", 0, UINT64_MAX, NULL, &u64, &err), &err);
  bool b;
  err = NULL;
  result(fl_config_get_bool(cfg, n, "", NULL, &b, &err), &err);
  double d;
  err = NULL;
  result(fl_config_get_double(cfg, n, "", NULL, &d, &err), &err);
  uint64_t ms;
  err = NULL;
  if (result(fl_config_get_duration_ms(cfg, n, "", NULL, &ms, &err), &err)) {
    uint64_t ms2;
    check(fl_config_parse_duration_ms(s, &ms2) == 0 && ms2 == ms);
  }
  const fl_config_node_t *seq = NULL, *map = NULL;
  size_t count = 0;
  err = NULL;
  if (result(fl_config_get_seq(cfg, n, "", &seq, &count, &err), &err))
    check((seq == NULL && count == 0 && null_scalar) ||
          (fl_config_node_kind(n) == FL_CONFIG_SEQ && seq == n &&
           count == fl_config_node_count(n)));
  err = NULL;
  if (result(fl_config_get_map(cfg, n, "", &map, &count, &err), &err))
    check((map == NULL && count == 0 && null_scalar) ||
          (fl_config_node_kind(n) == FL_CONFIG_MAP && map == n &&
           count == fl_config_node_count(n)));
  char *env = fl_config_env_name(cfg, fl_config_node_path(n));
  check(env != NULL && strncmp(env, PREFIX "_", strlen(PREFIX) + 1) == 0);
  for (const char *c = env; *c; c++)
    check((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_');
  fl_free(env);
}

static void walk(const fl_config_t *cfg, const fl_config_node_t *n, size_t *budget) {
  if (*budget == 0) return;
  (*budget)--;
  check(fl_config_node_line(n) >= 1);
  getters(cfg, n);
  fl_config_kind_t kind = fl_config_node_kind(n);
  if (kind == FL_CONFIG_SCALAR) {
    check(fl_config_node_count(n) == 0);
    return;
  }
  const char *path = fl_config_node_path(n);
  size_t count = fl_config_node_count(n);
  check(fl_config_node_child(n, count) == NULL && fl_config_node_key(n, count) == NULL);
  for (size_t i = 0; i < count; i++) {
    const fl_config_node_t *c = fl_config_node_child(n, i);
    check(c != NULL);
    const char *key = fl_config_node_key(n, i);
    char idx[32];
    if (kind == FL_CONFIG_SEQ) {
      check(key == NULL);
      snprintf(idx, sizeof(idx), "%zu", i);
      key = idx;
    }
    check(key != NULL);
    char *expect = path[0] ? fl_sprintf("%s.%s", path, key) : fl_strdup(key);
    check(strcmp(expect, fl_config_node_path(c)) == 0);
    fl_free(expect);
    if (key[0] != '\0' && strchr(key, '.') == NULL) check(fl_config_find(cfg, n, key) == c);
    walk(cfg, c, budget);
  }
}

/* What the nodes read, with defaults (absent keys must give the default). */
static void node_paths(const fl_config_t *cfg) {
  static const char *const strings[] = {"general.id", "general.data_dir", "general.genesis",
                                        "general.listen_host", "msp.dir", "channel"};
  static const char *const ports[] = {"general.listen_port", "operations.port",
                                      "peer.events_port"};
  static const char *const durations[] = {"pbft.batch_timeout", "pbft.view_change_timeout",
                                          "gateway.commit_timeout", "deliver.retry"};
  for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
    const char *s = NULL;
    char *err = NULL;
    if (result(fl_config_get_string(cfg, NULL, strings[i], "dflt", &s, &err), &err))
      check(s != NULL && (strcmp(s, "dflt") == 0 || fl_config_find(cfg, NULL, strings[i])));
  }
  for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
    const uint64_t def = 7050;
    uint64_t v = 0;
    char *err = NULL;
    if (result(fl_config_get_uint64(cfg, NULL, ports[i], 1, 65535, &def, &v, &err), &err))
      check(v >= 1 && v <= 65535);
  }
  for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
    const uint64_t def = 2000;
    uint64_t v = 0;
    char *err = NULL;
    result(fl_config_get_duration_ms(cfg, NULL, durations[i], &def, &v, &err), &err);
  }
  const bool defb = true;
  bool b;
  char *err = NULL;
  result(fl_config_get_bool(cfg, NULL, "broadcast.verify", &defb, &b, &err), &err);
  const int64_t defi = -1;
  int64_t i64;
  err = NULL;
  if (result(fl_config_get_int64(cfg, NULL, "pbft.f", 0, 21, &defi, &i64, &err), &err))
    check(i64 == -1 || (i64 >= 0 && i64 <= 21));
  const fl_config_node_t *seq = NULL;
  size_t n = 0;
  err = NULL;
  if (result(fl_config_get_seq(cfg, NULL, "orderers", &seq, &n, &err), &err)) {
    for (size_t i = 0; i < n && i < 16; i++) {
      const fl_config_node_t *o = fl_config_node_child(seq, i);
      const char *host = NULL;
      err = NULL;
      result(fl_config_get_string(cfg, o, "host", NULL, &host, &err), &err);
      uint64_t port;
      err = NULL;
      result(fl_config_get_uint64(cfg, o, "port", 1, 65535, NULL, &port, &err), &err);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  fl_config_t *cfg = NULL;
  char *err = NULL;
  fl_status_t rc = fl_config_parse("fuzz.yaml", (const char *)data, size, PREFIX, &cfg, &err);
  if (rc != FL_OK) {
    check(rc == FL_ECONFIG && cfg == NULL && err != NULL);
    fl_free(err);
    return 0;
  }
  check(cfg != NULL && err == NULL);
  check(strcmp(fl_config_file(cfg), "fuzz.yaml") == 0);
  const fl_config_node_t *root = fl_config_root(cfg);
  check(root != NULL && fl_config_node_kind(root) == FL_CONFIG_MAP);
  check(strcmp(fl_config_node_path(root), "") == 0 && fl_config_find(cfg, NULL, "") == root);
  size_t budget = NODE_BUDGET;
  walk(cfg, root, &budget);
  node_paths(cfg);
  /* The unknown-key check: FL_OK, or FL_ECONFIG naming the file. */
  static const char *const known[] = {"general.id", "pbft.*",     "orgs.#.name",
                                      "orgs.#.peers.#.host",      "labels", "a.#", NULL};
  err = NULL;
  rc = fl_config_check_keys(cfg, known, &err);
  check(rc == FL_OK ? err == NULL : rc == FL_ECONFIG && err != NULL && strncmp(err, "fuzz.yaml:", 10) == 0);
  fl_free(err);
  fl_config_free(cfg);
  return 0;
}
