/* SPDX-License-Identifier: Apache-2.0
 *
 * out.h: output helpers shared by the fedledger network commands: aligned
 * text tables, "key: value" detail listings, UTC time stamps, short hashes
 * for tables, and JSON writing on top of the mlupdate JSON writer
 * (chaincode/mlupdate/json.h), including copying parsed record values.
 *
 * Human output goes to stdout; errors go to stderr. JSON output is one
 * document per command (one object per line for `events`), always ending in
 * a newline; its schemas are in docs/cli-json.md and must stay stable.
 *
 * Nothing here does I/O besides writing to the FILE it is given.
 */
#ifndef FL_CLI_OUT_H
#define FL_CLI_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "chaincode/mlupdate/json.h"
#include "common/base/buf.h"

/* ---- tables --------------------------------------------------------------- */

typedef struct fl_cli_table_s fl_cli_table_t;

/** Creates a table with ncols columns named headers[0..ncols) (borrowed,
 *  copied). Returns an owned table (fl_cli_table_free). */
fl_cli_table_t *fl_cli_table_new(size_t ncols, const char *const *headers);

/** Starts a new row; cells are then added left to right with
 *  fl_cli_table_cell. Missing cells print empty. */
void fl_cli_table_row(fl_cli_table_t *t);

/** Adds a printf-formatted cell to the current row (extra cells beyond
 *  ncols are dropped). Control characters are replaced by '?'. */
void fl_cli_table_cell(fl_cli_table_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Number of rows so far. */
size_t fl_cli_table_rows(const fl_cli_table_t *t);

/** Prints the header and every row, columns padded to their widest cell
 *  and separated by two spaces; trailing spaces trimmed. */
void fl_cli_table_print(const fl_cli_table_t *t, FILE *f);

/** Frees t. NULL-safe. */
void fl_cli_table_free(fl_cli_table_t *t);

/** Prints "  key:<pad> value" with keys aligned at width 16 (detail views). */
void fl_cli_kv(FILE *f, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- values ------------------------------------------------------------------ */

/** Formats ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into out.
 *  Returns out. */
char *fl_cli_time(uint64_t ms, char out[32] /* out */);

/** The first 16 characters of a hex hash (or "-" for NULL): how tables
 *  show hashes; `model lineage` accepts such prefixes. Returns a view into
 *  s or a static string. Writes into out. */
const char *fl_cli_short_hash(const char *s, char out[17] /* out */);

/** Text of a record member for human output: strings as they are, numbers
 *  as their JSON text, true/false, "-" for null or absent, "[...]" / "{...}"
 *  for containers. Borrowed view valid while rec lives (or static). */
const char *fl_cli_jtext(const fl_mlu_json_t *rec, const char *key);

/** The member as uint64 (0 when absent or not an integer). */
uint64_t fl_cli_ju64(const fl_mlu_json_t *rec, const char *key);

/* ---- JSON writing ------------------------------------------------------------ */

/** Appends the JSON encoding of a parsed value v (numbers keep their
 *  original text; NULL v writes null). */
void fl_cli_jw_value(fl_sbuf_t *b, const fl_mlu_json_t *v);

/** Appends `"key":` and then rec's member src (null when absent). */
void fl_cli_jw_copy(fl_sbuf_t *b, const char *key, const fl_mlu_json_t *rec, const char *src);

/** Appends `"key":` and a boolean. */
void fl_cli_jw_bool(fl_sbuf_t *b, const char *key, bool v);

/** Writes b's bytes and a newline to f. */
void fl_cli_json_print(FILE *f, const fl_sbuf_t *b);

#endif /* FL_CLI_OUT_H */
