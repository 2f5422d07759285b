/* SPDX-License-Identifier: Apache-2.0
 *
 * net.h: what every fedledger network command shares: the global flags
 * (--peer, --mspid, --msp-dir, --tls-dir, --genesis, --channel, --events,
 * --timeout, --json, --config), the CLI configuration file with
 * FEDLEDGER_* environment overrides, the connection to a gateway peer
 * through the client SDK (common/client), the genesis-based block verifier,
 * mlupdate queries, and the mapping of failures to exit codes.
 *
 * Precedence of a setting: flag > environment (FEDLEDGER_PEER, ...) >
 * configuration file > default. The configuration file is --config FILE,
 * else $FEDLEDGER_CLI_CONFIG, else ~/.fedledger/cli.yaml when it exists.
 * Its keys: peer, mspid, msp_dir, tls_dir, genesis, channel, events,
 * timeout (a duration such as "30s"); relative paths are relative to the
 * file's folder.
 *
 * Exit codes (docs/cli-json.md): 0 ok, 1 failure, 2 usage, 3 not found,
 * 4 access denied, 5 peer unreachable, 6 verification failed.
 *
 * Logging: unless FEDLEDGER_LOG is set, network commands lower the log
 * level to "error": every failure is reported once, by the command.
 *
 * Threads: one thread; a fl_cli_net_t is used by one command.
 */
#ifndef FL_CLI_NET_H
#define FL_CLI_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chaincode/mlupdate/json.h"
#include "cli/cli.h"
#include "cli/inspect.h"
#include "common/base/buf.h"
#include "common/base/status.h"
#include "common/client/client.h"
#include "common/client/identity.h"
#include "common/config/config.h"

enum {
  FL_CLI_NOTFOUND = 3,    /* unknown task, round, client, block, tx, key */
  FL_CLI_DENIED = 4,      /* access denied by the peer or the chaincode */
  FL_CLI_UNREACHABLE = 5, /* the peer cannot be reached (or dropped us) */
  FL_CLI_VERIFY = 6,      /* a hash, link or signature check failed */
};

/** Maximum number of flags a network command may add of its own. */
#define FL_CLI_MAX_OWN_FLAGS 16

typedef struct fl_cli_net_s {
  /* Flag values (views into argv) before resolution. */
  const char *f_peer, *f_mspid, *f_msp_dir, *f_tls_dir, *f_genesis, *f_channel, *f_events,
      *f_timeout, *f_config;
  bool json;
  /* Resolved settings (owned). */
  char *peer, *host, *mspid, *msp_dir, *tls_dir, *genesis, *channel, *events;
  uint16_t port;
  uint32_t timeout_ms;
  /* Connection state (owned). */
  fl_config_t *cfg;
  fl_client_identity_t *id;
  fl_client_tls_t *tls;
  fl_client_sync_t *gw;
  fl_cli_genesis_t genesis_info; /* loaded when genesis_loaded */
  bool genesis_loaded;
  const char *path; /* command path for messages (borrowed) */
} fl_cli_net_t;

/** Parses argv with the command's own flags (own[0..n_own), at most
 *  FL_CLI_MAX_OWN_FLAGS) followed by the global flags, then resolves the
 *  settings (configuration file, environment, defaults). Non-flag arguments
 *  end up in argv[1..*nargs]. Returns -1 after --help (caller exits 0),
 *  FL_CLI_USAGE (message printed), FL_CLI_FAIL (bad configuration file,
 *  message printed) or FL_CLI_OK. n must be zeroed by the caller and closed
 *  with fl_cli_net_close in every case. */
int fl_cli_net_parse(fl_cli_net_t *n, const fl_cli_cmd_t *cmd, const char *path,
                     const fl_cli_flag_t *own, size_t n_own, int argc, char **argv,
                     int *nargs /* out */);

/** Loads the identity and TLS files and connects to the peer. Returns
 *  FL_CLI_OK, or prints why and returns FL_CLI_USAGE (no identity given),
 *  FL_CLI_FAIL (unreadable identity / TLS files) or FL_CLI_UNREACHABLE. */
int fl_cli_net_connect(fl_cli_net_t *n);

/** Loads the genesis block given by --genesis into n->genesis_info.
 *  Returns FL_CLI_OK; FL_CLI_USAGE when no genesis is configured and
 *  `required`; FL_CLI_OK with n->genesis_loaded false when none is
 *  configured and not required;
 *  FL_CLI_FAIL when it cannot be read or is not a valid genesis block. */
int fl_cli_net_load_genesis(fl_cli_net_t *n, bool required);

/** The peer's events URL: --events / config, else tcp://HOST:EVENTS_PORT
 *  of the genesis peer whose host and port are --peer's. Returns a view
 *  valid while n lives, or NULL after printing why (no genesis, no such
 *  peer). */
const char *fl_cli_net_events_url(fl_cli_net_t *n);

/** Closes the connection and frees everything n owns. NULL-safe;
 *  idempotent. */
void fl_cli_net_close(fl_cli_net_t *n);

/** The exit code for a failure status (FL_OK -> 0). */
int fl_cli_exit_code(fl_status_t st);

/** Prints "PATH: <what>: <msg or status text>" (or the unreachable / access
 *  denied forms) to stderr and returns fl_cli_exit_code(st). what may be
 *  NULL. */
int fl_cli_fail(const fl_cli_net_t *n, fl_status_t st, const char *what, const char *msg);

/** Evaluates mlupdate function args[0] with args[1..nargs) on the gateway
 *  and parses the JSON payload into *out (owned, fl_mlu_json_free). When
 *  the chaincode answers 404, prints "PATH: <notfound>" (when notfound is
 *  not NULL) and returns FL_CLI_NOTFOUND. Other failures are printed and
 *  mapped with fl_cli_exit_code. Returns FL_CLI_OK on success. */
int fl_cli_query(fl_cli_net_t *n, const char *const *args, size_t nargs, const char *notfound,
                 fl_mlu_json_t **out /* out */);

/** Like fl_cli_query without printing a 404: returns FL_CLI_NOTFOUND
 *  silently (*out NULL) so the caller can decide. */
int fl_cli_query_opt(fl_cli_net_t *n, const char *const *args, size_t nargs,
                     fl_mlu_json_t **out /* out */);

/** Submits mlupdate args[0..nargs) (args[0] = function) with blobs and
 *  waits for the commit. On success fills tx_id and *block and, when
 *  payload is not NULL, parses the chaincode's JSON answer into *payload
 *  (owned; NULL when it is not JSON). When the endorsers disagree before
 *  anything is submitted (FL_ECONFLICT, typically a peer one block behind),
 *  it tries again up to 5 times. Failures are printed and mapped
 *  (chaincode 404 -> FL_CLI_NOTFOUND, 403 -> FL_CLI_DENIED, committed
 *  invalid -> FL_CLI_FAIL naming the validation code). */
int fl_cli_submit(fl_cli_net_t *n, const fl_buf_t *args, size_t nargs, const fl_buf_t *blobs,
                  size_t nblobs, char tx_id[FL_TXID_HEX_LEN + 1] /* out */,
                  uint64_t *block /* out */, fl_mlu_json_t **payload /* out, optional */);

/** Parses "HOST:PORT" (port 1..65535). Returns 0 with *host owned
 *  (fl_free), -1 when malformed. */
int fl_cli_parse_hostport(const char *s, char **host /* out */, uint16_t *port /* out */);

/** Parses a decimal round/block number. Returns 0 or -1. */
int fl_cli_parse_u64(const char *s, uint64_t *v /* out */);

#endif /* FL_CLI_NET_H */
