/* SPDX-License-Identifier: Apache-2.0
 *
 * net.c: global flags, configuration, connection and error mapping of the
 * fedledger network commands (net.h).
 */
#include "cli/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chaincode/mlupdate/mlupdate.h"
#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/protoutil/protoutil.h"

#define DEFAULT_PEER "127.0.0.1:7051"
#define DEFAULT_CHANNEL "fedledger"
#define DEFAULT_TIMEOUT_MS 30000u

int fl_cli_parse_hostport(const char *s, char **host, uint16_t *port) {
  *host = NULL;
  const char *c = s ? strrchr(s, ':') : NULL;
  if (c == NULL || c == s || c[1] == '\0') return -1;
  uint64_t p = 0;
  if (fl_cli_parse_u64(c + 1, &p) != 0 || p == 0 || p > 65535) return -1;
  *host = fl_strndup(s, (size_t)(c - s));
  *port = (uint16_t)p;
  return 0;
}

int fl_cli_parse_u64(const char *s, uint64_t *v) {
  if (s == NULL || s[0] < '0' || s[0] > '9') return -1;
  errno = 0;
  char *end = NULL;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0') return -1;
  *v = x;
  return 0;
}

int fl_cli_exit_code(fl_status_t st) {
  switch (st) {
  case FL_OK: return FL_CLI_OK;
  case FL_NOTFOUND: return FL_CLI_NOTFOUND;
  case FL_EPERM:
  case FL_EREVOKED: return FL_CLI_DENIED;
  case FL_ECONNREFUSED:
  case FL_ETIMEDOUT:
  case FL_ECLOSED:
  case FL_ECANCELED:
  case FL_EUNAVAIL: return FL_CLI_UNREACHABLE;
  case FL_EBADSIG:
  case FL_ECORRUPT: return FL_CLI_VERIFY;
  default: return FL_CLI_FAIL;
  }
}

int fl_cli_fail(const fl_cli_net_t *n, fl_status_t st, const char *what, const char *msg) {
  const char *path = n && n->path ? n->path : "fedledger";
  const char *text = msg && msg[0] ? msg : fl_status_str(st);
  int code = fl_cli_exit_code(st);
  if (code == FL_CLI_UNREACHABLE)
    fprintf(stderr, "%s: peer %s unreachable: %s\n", path, n && n->peer ? n->peer : "?",
            fl_status_str(st));
  else if (code == FL_CLI_DENIED)
    fprintf(stderr, "%s: access denied: %s\n", path, text);
  else if (what != NULL)
    fprintf(stderr, "%s: %s: %s\n", path, what, text);
  else
    fprintf(stderr, "%s: %s\n", path, text);
  return code;
}

/* ---- configuration --------------------------------------------------------------- */

static bool file_exists(const char *p) {
  struct stat st;
  return p != NULL && stat(p, &st) == 0;
}

/* A channel name as the wire carries it (Header.channel, 1..FL_CHANNEL_MAX
 * bytes); spaces and control bytes are refused here, before any network
 * call, so that a typo is a usage error and not an "unreachable" peer. */
static bool channel_ok(const char *c) {
  size_t n = strlen(c);
  if (n == 0 || n > FL_CHANNEL_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (c[i] <= 0x20 || c[i] >= 0x7f) return false;
  return true;
}

/* Picks the configuration file: --config, $FEDLEDGER_CLI_CONFIG, or
 * ~/.fedledger/cli.yaml when present. Owned or NULL. */
static char *config_path(const fl_cli_net_t *n, bool *explicit_) {
  *explicit_ = true;
  if (n->f_config != NULL) return fl_strdup(n->f_config);
  const char *e = getenv("FEDLEDGER_CLI_CONFIG");
  if (e != NULL && e[0] != '\0') return fl_strdup(e);
  *explicit_ = false;
  const char *home = getenv("HOME");
  if (home == NULL || home[0] == '\0') return NULL;
  char *p = fl_sprintf("%s/.fedledger/cli.yaml", home);
  if (file_exists(p)) return p;
  fl_free(p);
  return NULL;
}

/* The setting `key`: flag, else environment / file, else NULL. A relative
 * path that came from the file is made relative to the file's folder. */
static int setting(fl_cli_net_t *n, const char *flag, const char *key, bool is_path,
                   char **out) {
  *out = NULL;
  if (flag != NULL) {
    *out = fl_strdup(flag);
    return 0;
  }
  const char *v = NULL;
  char *err = NULL;
  if (fl_config_get_string(n->cfg, NULL, key, "", &v, &err) != FL_OK) {
    fprintf(stderr, "%s: %s\n", n->path, err ? err : "bad configuration");
    fl_free(err);
    return -1;
  }
  if (v == NULL || v[0] == '\0') return 0;
  char *env = fl_config_env_name(n->cfg, key);
  bool from_env = env != NULL && getenv(env) != NULL;
  fl_free(env);
  const char *file = fl_config_file(n->cfg);
  const char *slash = file ? strrchr(file, '/') : NULL;
  if (is_path && !from_env && v[0] != '/' && slash != NULL)
    *out = fl_sprintf("%.*s/%s", (int)(slash - file), file, v);
  else
    *out = fl_strdup(v);
  return 0;
}

static int resolve(fl_cli_net_t *n) {
  bool explicit_ = false;
  char *cp = config_path(n, &explicit_);
  char *err = NULL;
  fl_status_t st;
  if (cp != NULL)
    st = fl_config_load(cp, "FEDLEDGER", &n->cfg, &err);
  else
    st = fl_config_parse("(environment)", "", 0, "FEDLEDGER", &n->cfg, &err);
  if (st != FL_OK) {
    fprintf(stderr, "%s: configuration %s: %s\n", n->path, cp ? cp : "",
            err ? err : fl_status_str(st));
    fl_free(err);
    fl_free(cp);
    return FL_CLI_FAIL;
  }
  fl_free(cp);
  if (setting(n, n->f_peer, "peer", false, &n->peer) < 0 ||
      setting(n, n->f_mspid, "mspid", false, &n->mspid) < 0 ||
      setting(n, n->f_msp_dir, "msp_dir", true, &n->msp_dir) < 0 ||
      setting(n, n->f_tls_dir, "tls_dir", true, &n->tls_dir) < 0 ||
      setting(n, n->f_genesis, "genesis", true, &n->genesis) < 0 ||
      setting(n, n->f_channel, "channel", false, &n->channel) < 0 ||
      setting(n, n->f_events, "events", false, &n->events) < 0)
    return FL_CLI_FAIL;
  if (n->channel != NULL && !channel_ok(n->channel)) {
    fprintf(stderr, "%s: --channel must be 1..%d printable ASCII characters without spaces, "
            "got '%.80s'\n", n->path, FL_CHANNEL_MAX, n->channel);
    return FL_CLI_USAGE;
  }
  if (n->peer == NULL) n->peer = fl_strdup(DEFAULT_PEER);
  if (fl_cli_parse_hostport(n->peer, &n->host, &n->port) != 0) {
    fprintf(stderr, "%s: --peer must be HOST:PORT, got '%s'\n", n->path, n->peer);
    return FL_CLI_USAGE;
  }
  uint64_t ms = DEFAULT_TIMEOUT_MS;
  if (n->f_timeout != NULL) {
    if (fl_config_parse_duration_ms(n->f_timeout, &ms) != 0 || ms == 0) {
      fprintf(stderr, "%s: --timeout must be a duration such as 10s or 500ms, got '%s'\n",
              n->path, n->f_timeout);
      return FL_CLI_USAGE;
    }
  } else {
    uint64_t def = DEFAULT_TIMEOUT_MS;
    if (fl_config_get_duration_ms(n->cfg, NULL, "timeout", &def, &ms, &err) != FL_OK) {
      fprintf(stderr, "%s: %s\n", n->path, err ? err : "bad timeout");
      fl_free(err);
      return FL_CLI_FAIL;
    }
  }
  if (ms == 0 || ms > 24u * 3600 * 1000) ms = DEFAULT_TIMEOUT_MS;
  n->timeout_ms = (uint32_t)ms;
  if (n->tls_dir == NULL && n->msp_dir != NULL) {
    char *guess = fl_sprintf("%s/../tls", n->msp_dir);
    if (file_exists(guess))
      n->tls_dir = guess;
    else
      fl_free(guess);
  }
  return FL_CLI_OK;
}

int fl_cli_net_parse(fl_cli_net_t *n, const fl_cli_cmd_t *cmd, const char *path,
                     const fl_cli_flag_t *own, size_t n_own, int argc, char **argv,
                     int *nargs) {
  n->path = path;
  *nargs = 0;
  if (n_own > FL_CLI_MAX_OWN_FLAGS) return FL_CLI_FAIL;
  /* The command reports failures itself, in one line; the SDK's warnings
   * about the same failure would only repeat it. FEDLEDGER_LOG still wins. */
  const char *lg = getenv("FEDLEDGER_LOG");
  if (lg == NULL || lg[0] == '\0') fl_log_configure("error");
  const fl_cli_flag_t global[] = {
      {"peer", 0, FL_CLI_FLAG_STRING, "HOST:PORT", "gateway peer (default 127.0.0.1:7051)",
       &n->f_peer, false},
      {"mspid", 0, FL_CLI_FLAG_STRING, "ID", "MSP id of the identity (e.g. Org1MSP)", &n->f_mspid,
       false},
      {"msp-dir", 0, FL_CLI_FLAG_STRING, "DIR", "identity's MSP folder (signcerts, keystore)",
       &n->f_msp_dir, false},
      {"tls-dir", 0, FL_CLI_FLAG_STRING, "DIR",
       "TLS folder (client.crt, client.key, ca.crt; default MSP-DIR/../tls)", &n->f_tls_dir,
       false},
      {"genesis", 0, FL_CLI_FLAG_STRING, "FILE", "genesis block (orderer keys for verification)",
       &n->f_genesis, false},
      {"channel", 0, FL_CLI_FLAG_STRING, "NAME", "channel (default: the genesis', or fedledger)",
       &n->f_channel, false},
      {"events", 0, FL_CLI_FLAG_STRING, "URL",
       "peer events URL (default: from the genesis peer list)", &n->f_events, false},
      {"timeout", 0, FL_CLI_FLAG_STRING, "DURATION", "per-call timeout (default 30s)",
       &n->f_timeout, false},
      {"json", 0, FL_CLI_FLAG_BOOL, NULL, "JSON output (docs/cli-json.md)", &n->json, false},
      {"config", 0, FL_CLI_FLAG_STRING, "FILE", "CLI config (default ~/.fedledger/cli.yaml)",
       &n->f_config, false},
  };
  size_t ng = sizeof global / sizeof global[0];
  fl_cli_flag_t all[FL_CLI_MAX_OWN_FLAGS + sizeof global / sizeof global[0]];
  for (size_t i = 0; i < n_own; i++) all[i] = own[i];
  for (size_t i = 0; i < ng; i++) all[n_own + i] = global[i];
  int rc = fl_cli_parse_flags(cmd, path, all, n_own + ng, argc, argv, nargs);
  if (rc != FL_CLI_OK) return rc;
  return resolve(n);
}

int fl_cli_net_load_genesis(fl_cli_net_t *n, bool required) {
  if (n->genesis_loaded) return FL_CLI_OK;
  if (n->genesis == NULL) {
    if (!required) return FL_CLI_OK;
    fprintf(stderr,
            "%s: no genesis block: give --genesis FILE (or `genesis:` in the CLI config)\n",
            n->path);
    return FL_CLI_USAGE;
  }
  char *err = NULL;
  fl_status_t st = fl_cli_genesis_load(n->genesis, &n->genesis_info, &err);
  if (st != FL_OK) {
    fprintf(stderr, "%s: genesis: %s\n", n->path, err ? err : fl_status_str(st));
    fl_free(err);
    return FL_CLI_FAIL;
  }
  n->genesis_loaded = true;
  return FL_CLI_OK;
}

int fl_cli_net_connect(fl_cli_net_t *n) {
  if (n->mspid == NULL || n->msp_dir == NULL) {
    fprintf(stderr,
            "%s: no identity: give --mspid and --msp-dir (or mspid/msp_dir in "
            "~/.fedledger/cli.yaml, or FEDLEDGER_MSPID/FEDLEDGER_MSP_DIR)\n",
            n->path);
    return FL_CLI_USAGE;
  }
  char *err = NULL;
  fl_status_t st = fl_client_identity_load_msp(n->mspid, n->msp_dir, &n->id, &err);
  if (st != FL_OK) {
    fprintf(stderr, "%s: identity %s: %s\n", n->path, n->msp_dir, err ? err : fl_status_str(st));
    fl_free(err);
    return FL_CLI_FAIL;
  }
  if (n->tls_dir == NULL) {
    fprintf(stderr, "%s: no TLS folder: give --tls-dir (MSP-DIR/../tls does not exist)\n",
            n->path);
    return FL_CLI_USAGE;
  }
  st = fl_client_tls_load_dir(n->tls_dir, n->host, &n->tls, &err);
  if (st != FL_OK) {
    fprintf(stderr, "%s: TLS %s: %s\n", n->path, n->tls_dir, err ? err : fl_status_str(st));
    fl_free(err);
    return FL_CLI_FAIL;
  }
  if (n->channel == NULL && n->genesis != NULL) {
    int rc = fl_cli_net_load_genesis(n, false);
    if (rc != FL_CLI_OK) return rc;
    n->channel = fl_strdup(n->genesis_info.cfg->channel);
  }
  if (n->channel == NULL) n->channel = fl_strdup(DEFAULT_CHANNEL);
  fl_client_opts_t o = {.host = n->host,
                        .port = n->port,
                        .tls = fl_client_tls_config(n->tls),
                        .channel = n->channel,
                        .connect_timeout_ms = n->timeout_ms,
                        .call_timeout_ms = n->timeout_ms,
                        .commit_timeout_ms = n->timeout_ms * 2};
  st = fl_client_sync_connect(&o, n->id, &n->gw, &err);
  if (st != FL_OK) {
    const char *why = fl_status_str(st);
    if (st == FL_EUNTRUSTED) why = "TLS handshake failed (certificate not trusted)";
    fprintf(stderr, "%s: peer %s unreachable: %s\n", n->path, n->peer, why);
    FL_DEBUG("cli", "connect peer=%s err=%s", n->peer, err ? err : "");
    fl_free(err);
    return FL_CLI_UNREACHABLE;
  }
  return FL_CLI_OK;
}

void fl_cli_net_close(fl_cli_net_t *n) {
  if (n == NULL) return;
  fl_client_sync_close(n->gw);
  n->gw = NULL;
  fl_client_tls_free(n->tls);
  n->tls = NULL;
  fl_client_identity_free(n->id);
  n->id = NULL;
  fl_cli_genesis_clear(&n->genesis_info);
  n->genesis_loaded = false;
  fl_config_free(n->cfg);
  n->cfg = NULL;
  char **owned[] = {&n->peer, &n->host, &n->mspid, &n->msp_dir, &n->tls_dir,
                    &n->genesis, &n->channel, &n->events};
  for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
    fl_free(*owned[i]);
    *owned[i] = NULL;
  }
}

const char *fl_cli_net_events_url(fl_cli_net_t *n) {
  if (n->events != NULL) return n->events;
  if (n->genesis == NULL) {
    fprintf(stderr, "%s: no events URL: give --events tcp://HOST:PORT or --genesis FILE\n",
            n->path);
    return NULL;
  }
  if (fl_cli_net_load_genesis(n, true) != FL_CLI_OK) return NULL;
  const fl_netconfig_t *c = n->genesis_info.cfg;
  for (size_t i = 0; i < c->n_peers; i++) {
    const fl_net_peer_t *p = &c->peers[i];
    if (p->port == n->port && strcmp(p->host, n->host) == 0 && p->events_port != 0) {
      n->events = fl_sprintf("tcp://%s:%u", p->host, (unsigned)p->events_port);
      return n->events;
    }
  }
  fprintf(stderr, "%s: the genesis lists no events port for peer %s: give --events URL\n",
          n->path, n->peer);
  return NULL;
}

/* ---- queries ------------------------------------------------------------------------ */

static int query(fl_cli_net_t *n, const char *const *args, size_t nargs, const char *notfound,
                 bool quiet_404, fl_mlu_json_t **out) {
  *out = NULL;
  fl_buf_t a[8];
  if (nargs == 0 || nargs > 8) return FL_CLI_FAIL;
  for (size_t i = 0; i < nargs; i++) a[i] = FL_BUF_STR(args[i]);
  fl_client_proposal_t p = {.chaincode = FL_MLU_NAME, .args = a, .n_args = nargs};
  fl_client_result_t r = {0};
  fl_status_t st = fl_client_sync_evaluate(n->gw, &p, &r);
  int rc = FL_CLI_OK;
  if (st == FL_NOTFOUND && r.cc_status == 404) {
    if (!quiet_404) fprintf(stderr, "%s: %s\n", n->path, notfound ? notfound : r.cc_message);
    rc = FL_CLI_NOTFOUND;
  } else if (st != FL_OK) {
    char what[96];
    snprintf(what, sizeof what, "%s failed", args[0]);
    rc = fl_cli_fail(n, st, what, r.cc_status >= 400 ? r.cc_message : r.error);
  } else if (fl_mlu_json_parse(r.payload, out) != FL_OK) {
    fprintf(stderr, "%s: %s: the peer's answer is not valid JSON\n", n->path, args[0]);
    rc = FL_CLI_FAIL;
  }
  fl_client_result_clear(&r);
  return rc;
}

int fl_cli_query(fl_cli_net_t *n, const char *const *args, size_t nargs, const char *notfound,
                 fl_mlu_json_t **out) {
  return query(n, args, nargs, notfound, false, out);
}

int fl_cli_query_opt(fl_cli_net_t *n, const char *const *args, size_t nargs,
                     fl_mlu_json_t **out) {
  return query(n, args, nargs, NULL, true, out);
}

int fl_cli_submit(fl_cli_net_t *n, const fl_buf_t *args, size_t nargs, const fl_buf_t *blobs,
                  size_t nblobs, char tx_id[FL_TXID_HEX_LEN + 1], uint64_t *block,
                  fl_mlu_json_t **payload) {
  tx_id[0] = '\0';
  *block = 0;
  if (payload) *payload = NULL;
  fl_client_proposal_t p = {.chaincode = FL_MLU_NAME, .args = args, .n_args = nargs,
                            .blobs = blobs, .n_blobs = nblobs};
  fl_client_result_t r = {0};
  fl_status_t st = fl_client_sync_submit(n->gw, &p, true, &r);
  /* Endorsers that disagree before anything was submitted are usually one
   * peer lagging a block behind the other: try again a few times. */
  for (int attempt = 1; attempt <= 5 && st == FL_ECONFLICT && !r.committed; attempt++) {
    FL_DEBUG("cli", "endorsers disagree, retrying attempt=%d err=%s", attempt, r.error);
    struct timespec ts = {0, 200000000L * attempt};
    nanosleep(&ts, NULL);
    fl_client_result_clear(&r);
    st = fl_client_sync_submit(n->gw, &p, true, &r);
  }
  int rc = FL_CLI_OK;
  char fn[64];
  snprintf(fn, sizeof fn, "%.*s", (int)(args[0].len < 40 ? args[0].len : 40),
           (const char *)args[0].data);
  if (st != FL_OK) {
    char what[256];
    if (r.committed) {
      snprintf(what, sizeof what, "%s: transaction %s committed invalid (%s) in block %llu", fn,
               r.tx_id, fl_client_code_name(r.code), (unsigned long long)r.block_number);
      fprintf(stderr, "%s: %s\n", n->path, what);
      rc = FL_CLI_FAIL;
    } else {
      snprintf(what, sizeof what, "%s refused", fn);
      rc = fl_cli_fail(n, st, what, r.cc_status >= 400 ? r.cc_message : r.error);
    }
  } else {
    memcpy(tx_id, r.tx_id, sizeof r.tx_id);
    *block = r.block_number;
    if (payload && fl_mlu_json_parse(r.payload, payload) != FL_OK) *payload = NULL;
  }
  fl_client_result_clear(&r);
  return rc;
}
