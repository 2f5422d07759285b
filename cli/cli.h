/* SPDX-License-Identifier: Apache-2.0
 *
 * cli.h: the command tree and flag parser of the `fedledger` admin CLI.
 *
 * Commands form a tree, kubectl / Fabric peer-CLI style:
 *   fedledger <group> <command> [flags] [args]
 * A group (fl_cli_cmd_t with subs) only dispatches; a leaf (with run) does
 * the work. Every level answers -h/--help with its usage on stdout (exit 0);
 * a missing or unknown command prints usage on stderr and exits 2.
 *
 * Adding a command group: write cli/cmd_<name>.c defining
 *   const fl_cli_cmd_t fl_cli_cmd_<name> = {...};
 * declare it and list it in cli/commands.c, and add the file in
 * cli/CMakeLists.txt. main.c never changes.
 *
 * Exit codes: 0 success, 1 the command failed, 2 usage error.
 */
#ifndef FL_CLI_CLI_H
#define FL_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { FL_CLI_OK = 0, FL_CLI_FAIL = 1, FL_CLI_USAGE = 2 };

typedef struct fl_cli_cmd_s fl_cli_cmd_t;

/** A leaf command. path is the full command ("fedledger cryptogen
 *  generate"), argv[0] the command's own name, argv[1..argc) its flags and
 *  arguments. Returns an exit code (FL_CLI_*). */
typedef int (*fl_cli_run_fn)(const char *path, int argc, char **argv);

struct fl_cli_cmd_s {
  const char *name;    /* word on the command line */
  const char *summary; /* one line for the parent's command list */
  const char *help;    /* longer text for --help (optional) */
  fl_cli_run_fn run;   /* leaf: runs the command; NULL for a group */
  const fl_cli_cmd_t *const *subs; /* group: NULL-terminated children */
};

/** The top-level commands (cli/commands.c), NULL-terminated. */
extern const fl_cli_cmd_t *const fl_cli_commands[];

/** Runs cmd with argv[0] = its name. path is the command so far. */
int fl_cli_dispatch(const fl_cli_cmd_t *cmd, const char *path, int argc, char **argv);

typedef enum fl_cli_flag_kind_e {
  FL_CLI_FLAG_STRING, /* dest: const char ** (points into argv) */
  FL_CLI_FLAG_BOOL,   /* dest: bool *; takes no value */
  FL_CLI_FLAG_UINT,   /* dest: uint64_t *; decimal */
} fl_cli_flag_kind_t;

typedef struct fl_cli_flag_s {
  const char *name;  /* long name without "--" */
  char short_name;   /* single letter or 0 */
  fl_cli_flag_kind_t kind;
  const char *metavar; /* "FILE", "DIR", "N" for the usage line */
  const char *help;
  void *dest;
  bool required;
} fl_cli_flag_t;

/** Parses --name VALUE, --name=VALUE, -x VALUE, --bool-flag, -h/--help and
 *  "--" (end of flags). Non-flag arguments are moved, in order, to
 *  argv[1..*nargs]. Returns -1 after printing help to stdout (caller exits
 *  0), FL_CLI_USAGE after printing the problem and usage to stderr, or
 *  FL_CLI_OK. */
int fl_cli_parse_flags(const fl_cli_cmd_t *cmd, const char *path, const fl_cli_flag_t *flags,
                       size_t n_flags, int argc, char **argv, int *nargs /* out */);

/** Prints a leaf command's usage: "Usage: PATH [flags]", help, flags. */
void fl_cli_print_usage(FILE *f, const fl_cli_cmd_t *cmd, const char *path,
                        const fl_cli_flag_t *flags, size_t n_flags);

#endif /* FL_CLI_CLI_H */
