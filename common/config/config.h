/* SPDX-License-Identifier: Apache-2.0
 *
 * config.h: YAML configuration with typed getters and env overrides.
 *
 * A file is loaded once into an immutable tree of maps, sequences and
 * scalars; each node remembers the file and the line it came from, and its
 * dotted path from the root ("general.listen.port", with sequence elements
 * as numbers: "peer_orgs.0.name"). Getters take a base node (NULL = root)
 * and a dotted path relative to it, check the type and range, and fall back
 * to a default when the key is absent and a default is given (a NULL
 * default pointer means the key is required).
 *
 * Environment overrides: for the full path of a scalar, the variable
 * <PREFIX>_<PART>_<PART>... with each part upper-cased and every character
 * outside [A-Za-z0-9] turned into '_' (general.listen_port ->
 * FEDLEDGER_GENERAL_LISTEN_PORT) wins over the file and is type-checked the
 * same way. The prefix is chosen at load time (NULL = "FEDLEDGER", "" = no
 * overrides).
 *
 * Errors: every function returns FL_OK or FL_ECONFIG (FL_EIO / FL_NOTFOUND
 * for an unreadable file), and, when err is not NULL, sets *err to an owned
 * message (free with fl_free) such as
 *   cfg.yaml:12: general.listen.port: expected an integer between 1 and 65535, got 'abc'
 *   env FEDLEDGER_GENERAL_LISTEN_PORT: expected an integer between 1 and 65535, got 'x'
 *   cfg.yaml: missing required key general.listen.port
 *   cfg.yaml:3:7: did not find expected key (while parsing a block mapping)
 * On success *err is set to NULL. Out-params are untouched on failure.
 *
 * Threads: a loaded fl_config_t is read-only; getters may run concurrently
 * (they read the environment with getenv, so do not call setenv meanwhile).
 */
#ifndef FL_CONFIG_CONFIG_H
#define FL_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/status.h"

#define FL_CONFIG_MAX_FILE (16u * 1024 * 1024) /* largest config file */
#define FL_CONFIG_MAX_DEPTH 64                 /* deepest nesting */
#define FL_CONFIG_MAX_NODES 1000000            /* nodes after alias expansion */

typedef struct fl_config_s fl_config_t;
typedef struct fl_config_node_s fl_config_node_t;

typedef enum fl_config_kind_e {
  FL_CONFIG_SCALAR = 0,
  FL_CONFIG_MAP = 1,
  FL_CONFIG_SEQ = 2,
} fl_config_kind_t;

/** Loads the YAML file at path (only its first document; an empty file is an
 *  empty map; the root must be a map). env_prefix as above (borrowed,
 *  copied). On FL_OK *out is owned (fl_config_free). Syntax errors, duplicate
 *  keys and too deep or too large documents give FL_ECONFIG with
 *  "FILE:LINE:COL: problem". */
fl_status_t fl_config_load(const char *path, const char *env_prefix,
                           fl_config_t **out /* out */, char **err /* out */);

/** Like fl_config_load, parsing len bytes of text; name stands for the
 *  file name in messages. */
fl_status_t fl_config_parse(const char *name, const char *text, size_t len,
                            const char *env_prefix, fl_config_t **out /* out */,
                            char **err /* out */);

/** Frees cfg; every node and string it handed out becomes invalid. NULL ok. */
void fl_config_free(fl_config_t *cfg);

/** The file name given at load (valid while cfg lives). */
const char *fl_config_file(const fl_config_t *cfg);
/** The root node (a map). */
const fl_config_node_t *fl_config_root(const fl_config_t *cfg);

/** The node at path below base (NULL base = root; "" path = base itself), or
 *  NULL when absent. Does not consult the environment. */
const fl_config_node_t *fl_config_find(const fl_config_t *cfg,
                                       const fl_config_node_t *base, const char *path);

/** Node accessors; all strings valid while cfg lives. */
fl_config_kind_t fl_config_node_kind(const fl_config_node_t *n);
/** 1-based line in the file. */
int fl_config_node_line(const fl_config_node_t *n);
/** Full dotted path from the root ("" for the root). */
const char *fl_config_node_path(const fl_config_node_t *n);
/** A scalar's text; NULL for maps and sequences. */
const char *fl_config_node_scalar(const fl_config_node_t *n);
/** Number of children of a map or sequence (0 for scalars). */
size_t fl_config_node_count(const fl_config_node_t *n);
/** The i-th child (map value or sequence element) in file order; NULL when
 *  i is out of range. */
const fl_config_node_t *fl_config_node_child(const fl_config_node_t *n, size_t i);
/** The i-th key of a map; NULL for other kinds or out of range. */
const char *fl_config_node_key(const fl_config_node_t *n, size_t i);

/** Returns the sequence at path below base. Absent: FL_OK with *seq NULL
 *  and *count 0 (an empty list); present but not a sequence: FL_ECONFIG. */
fl_status_t fl_config_get_seq(const fl_config_t *cfg, const fl_config_node_t *base,
                              const char *path, const fl_config_node_t **seq /* out */,
                              size_t *count /* out */, char **err /* out */);
/** Same for a map. */
fl_status_t fl_config_get_map(const fl_config_t *cfg, const fl_config_node_t *base,
                              const char *path, const fl_config_node_t **map /* out */,
                              size_t *count /* out */, char **err /* out */);

/** A string scalar; def NULL = required. *out is valid while cfg lives. */
fl_status_t fl_config_get_string(const fl_config_t *cfg, const fl_config_node_t *base,
                                 const char *path, const char *def,
                                 const char **out /* out */, char **err /* out */);
/** A decimal integer (optional sign; "0x" hex allowed) within [min, max]. */
fl_status_t fl_config_get_int64(const fl_config_t *cfg, const fl_config_node_t *base,
                                const char *path, int64_t min, int64_t max,
                                const int64_t *def, int64_t *out /* out */,
                                char **err /* out */);
/** An unsigned integer within [min, max] (a '-' sign is an error). */
fl_status_t fl_config_get_uint64(const fl_config_t *cfg, const fl_config_node_t *base,
                                 const char *path, uint64_t min, uint64_t max,
                                 const uint64_t *def, uint64_t *out /* out */,
                                 char **err /* out */);
/** true/false/yes/no/on/off (any case). */
fl_status_t fl_config_get_bool(const fl_config_t *cfg, const fl_config_node_t *base,
                               const char *path, const bool *def, bool *out /* out */,
                               char **err /* out */);
/** A finite floating-point number. */
fl_status_t fl_config_get_double(const fl_config_t *cfg, const fl_config_node_t *base,
                                 const char *path, const double *def,
                                 double *out /* out */, char **err /* out */);
/** A duration: one or more <number><unit> with unit ms, s, m or h
 *  ("500ms", "2s", "1m30s", "1.5h"); the result in milliseconds, rounded
 *  down. A bare number without a unit is an error (is 5 seconds or ms?). */
fl_status_t fl_config_get_duration_ms(const fl_config_t *cfg,
                                      const fl_config_node_t *base, const char *path,
                                      const uint64_t *def_ms, uint64_t *out_ms /* out */,
                                      char **err /* out */);

/** Parses a duration string as fl_config_get_duration_ms does. Returns 0, or
 *  -1 when s is not a duration or overflows. */
int fl_config_parse_duration_ms(const char *s, uint64_t *out_ms /* out */);

/** Refuses keys the program does not know, so that a misspelt setting
 *  ("pbft.bach_timeout") is an error instead of a silently ignored line.
 *  known is a NULL-terminated list of patterns over full dotted paths:
 *    "a.b"    the key a.b (a scalar, or a map or list whose whole content
 *             the program reads itself);
 *    "a.*"    a.b for any b, and everything below it;
 *    "a.#.b"  the key b in any element of the list a.
 *  Every key of the file must be matched by a pattern or be a map on the
 *  way to one (keys are checked, list elements are not: "a" also accepts
 *  every element of a list a). Returns FL_OK, or FL_ECONFIG with *err =
 *  "FILE:LINE: unknown key 'PATH'" for the first key no pattern matches. */
fl_status_t fl_config_check_keys(const fl_config_t *cfg, const char *const *known,
                                 char **err /* out */);

/** The environment variable name for a full dotted path (owned, fl_free);
 *  NULL when overrides are disabled. */
char *fl_config_env_name(const fl_config_t *cfg, const char *full_path);

#endif /* FL_CONFIG_CONFIG_H */
