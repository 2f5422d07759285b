/* SPDX-License-Identifier: Apache-2.0
 *
 * opts.h: table-driven settings for fedledger-edge and fedledger-keeper: one
 * table row per setting names its YAML path (edge.yaml / keeper.yaml), its
 * command-line flag, its type, range and default, and where in the caller's
 * settings struct the value goes.
 *
 * Precedence, highest first: the flag, the environment variable
 * FEDLEDGER_<PATH> (common/config's override rule: "data.partition" ->
 * FEDLEDGER_DATA_PARTITION), the file, the default. A setting without a
 * default is required. Every error names where the bad value came from:
 *   edge.yaml:7: train.epochs: expected an integer between 1 and 10000, got '0'
 *   env FEDLEDGER_TRAIN_LR: expected a number, got 'fast'
 *   --partition: expected I/N with I < N, got '3/3'
 *   missing setting identity.mspid (key identity.mspid in the config file,
 *     flag --mspid or env FEDLEDGER_IDENTITY_MSPID)
 *
 * String values are copied into the struct (owned; fl_edge_opts_free frees
 * them), so the config tree does not have to outlive the settings.
 */
#ifndef FL_ML_EDGE_OPTS_H
#define FL_ML_EDGE_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/status.h"

typedef enum fl_edge_opt_kind_e {
  FL_EDGE_OPT_STR = 0,  /* char * (owned copy; NULL when absent and no default) */
  FL_EDGE_OPT_U64 = 1,  /* uint64_t within [min, max] */
  FL_EDGE_OPT_DBL = 2,  /* double, finite, within [dmin, dmax] */
  FL_EDGE_OPT_MS = 3,   /* uint64_t milliseconds from "500ms", "2s", "1m" */
  FL_EDGE_OPT_BOOL = 4, /* bool: true/false/yes/no/on/off */
} fl_edge_opt_kind_t;

/** One setting. Tables end with a row whose path is NULL. */
typedef struct fl_edge_opt_s {
  const char *path;       /* dotted YAML path, e.g. "train.epochs" */
  const char *flag;       /* long flag without "--", or NULL (file/env only) */
  fl_edge_opt_kind_t kind;
  size_t offset;          /* offsetof the field in the settings struct */
  const char *def;        /* default as text (parsed like a flag); NULL = required,
                             "" for a STR = optional with value NULL */
  uint64_t min, max;      /* U64 and MS range */
  double dmin, dmax;      /* DBL range */
  const char *help;       /* one line for --help */
} fl_edge_opt_t;

/** Where each setting's value came from (for messages of later checks). */
typedef struct fl_edge_opts_src_s {
  size_t n;
  char **where;           /* n owned strings: "edge.yaml:7: data.partition",
                             "env FEDLEDGER_DATA_PARTITION", "--partition",
                             "default" */
} fl_edge_opts_src_t;

/** Fills the struct at `out` from the table: flags (argv, getopt_long style
 *  "--flag VALUE" or "--flag=VALUE"; a BOOL flag without "=" means true),
 *  the environment (prefix FEDLEDGER) and the YAML file `config_path` (NULL:
 *  no file; a file that does not exist is an error). `--config FILE`,
 *  `--help` and `-h` are skipped here (the caller handles them, see
 *  fl_edge_opts_config_arg); any other argument not in the table is an
 *  error ("unknown flag --x"), as is a positional argument. On success
 *  src (optional) gets where each value came from. Returns FL_OK, or
 *  FL_ECONFIG / FL_EIO / FL_NOTFOUND with *err an owned message (fl_free).
 *  On failure the strings already stored are freed (fl_edge_opts_free). */
fl_status_t fl_edge_opts_load(const fl_edge_opt_t *table, const char *config_path, int argc,
                              char *const *argv, void *out, fl_edge_opts_src_t *src /* out */,
                              char **err /* out */);

/** The value of --config (or --config=...) in argv, or NULL. Sets *help
 *  when --help or -h is present. Borrowed from argv. */
const char *fl_edge_opts_config_arg(int argc, char *const *argv, bool *help /* out */);

/** Frees the strings the table's STR rows hold in `settings` and sets them
 *  to NULL. NULL-safe for settings. */
void fl_edge_opts_free(const fl_edge_opt_t *table, void *settings);

/** Where the row with this path got its value ("default" when unknown). */
const char *fl_edge_opts_where(const fl_edge_opt_t *table, const fl_edge_opts_src_t *src,
                               const char *path);

/** Frees src's strings and zeroes it. NULL-safe. */
void fl_edge_opts_src_free(fl_edge_opts_src_t *src);

/** Writes a --help listing of the table (flag, YAML key, default, help)
 *  to the stream f (a FILE *; void * keeps stdio out of this header). */
void fl_edge_opts_usage(const fl_edge_opt_t *table, void *f);

/** Parses "I/N" (0 <= I < N, N >= 1, decimal). Returns 0 or -1. */
int fl_edge_parse_partition(const char *s, uint32_t *i /* out */, uint32_t *n /* out */);

/** Parses "HOST:PORT" (port 1..65535; host 1..253 bytes, no ':' unless in
 *  [brackets]). Writes the host into host (cap bytes, NUL-terminated).
 *  Returns 0 or -1. */
int fl_edge_parse_endpoint(const char *s, char *host /* out */, size_t cap, uint16_t *port /* out */);

#endif /* FL_ML_EDGE_OPTS_H */
