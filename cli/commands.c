/* SPDX-License-Identifier: Apache-2.0
 *
 * commands.c: the top-level command table of `fedledger`. One line per
 * command group; each group lives in its own cli/cmd_<name>.c.
 */
#include <stddef.h>

#include "cli/cli.h"

extern const fl_cli_cmd_t fl_cli_cmd_cryptogen;
extern const fl_cli_cmd_t fl_cli_cmd_genesis;

const fl_cli_cmd_t *const fl_cli_commands[] = {
    &fl_cli_cmd_cryptogen,
    &fl_cli_cmd_genesis,
    NULL,
};
