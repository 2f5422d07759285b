/* SPDX-License-Identifier: Apache-2.0
 *
 * main.c: entry point of the `fedledger` admin CLI. It only configures
 * logging and dispatches into the command table (cli/commands.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/base/log.h"

static const fl_cli_cmd_t root = {
    .name = "fedledger",
    .summary = "fedledger admin CLI",
    .help = "Administers a fedledger network: crypto material, genesis, tasks and\n"
            "provenance queries. Logging: FEDLEDGER_LOG=debug (see docs).",
    .subs = fl_cli_commands,
};

int main(int argc, char **argv) {
  if (fl_log_configure_from_env() != 0)
    fprintf(stderr, "fedledger: ignoring malformed FEDLEDGER_LOG\n");
  if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
    printf("fedledger 0.1.0\n");
    return FL_CLI_OK;
  }
  return fl_cli_dispatch(&root, "fedledger", argc, argv);
}
