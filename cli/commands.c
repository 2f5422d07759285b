/* SPDX-License-Identifier: Apache-2.0
 *
 * commands.c: the top-level command table of `fedledger`. One line per
 * command group; each group lives in its own cli/cmd_<name>.c.
 */
#include <stddef.h>

#include "cli/cli.h"

extern const fl_cli_cmd_t fl_cli_cmd_cryptogen;
extern const fl_cli_cmd_t fl_cli_cmd_genesis;
extern const fl_cli_cmd_t fl_cli_cmd_task;
extern const fl_cli_cmd_t fl_cli_cmd_model;
extern const fl_cli_cmd_t fl_cli_cmd_update;
extern const fl_cli_cmd_t fl_cli_cmd_client;
extern const fl_cli_cmd_t fl_cli_cmd_block;
extern const fl_cli_cmd_t fl_cli_cmd_tx;
extern const fl_cli_cmd_t fl_cli_cmd_key;
extern const fl_cli_cmd_t fl_cli_cmd_events;
extern const fl_cli_cmd_t fl_cli_cmd_ledger;

const fl_cli_cmd_t *const fl_cli_commands[] = {
    &fl_cli_cmd_cryptogen,
    &fl_cli_cmd_genesis,
    &fl_cli_cmd_task,
    &fl_cli_cmd_model,
    &fl_cli_cmd_update,
    &fl_cli_cmd_client,
    &fl_cli_cmd_block,
    &fl_cli_cmd_tx,
    &fl_cli_cmd_key,
    &fl_cli_cmd_events,
    &fl_cli_cmd_ledger,
    NULL,
};
