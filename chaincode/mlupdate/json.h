/* SPDX-License-Identifier: Apache-2.0
 *
 * json.h: the small JSON reader and writer of the mlupdate chaincode's
 * world-state values (docs/mlupdate.md, "Value format").
 *
 * Writer: the chaincode writes every value with fixed key order, no
 * whitespace, integers in decimal, doubles with "%.17g" (which round-trips
 * exactly through strtod and is byte-identical on every glibc machine in the
 * "C" locale), non-finite doubles as null, and strings escaped as RFC 8259
 * requires (", \ and bytes below 0x20; nothing else). The same record
 * therefore encodes to the same bytes on every endorser.
 *
 * Reader: a strict RFC 8259 parser into an owned tree, for the task
 * definition an admin sends and for the chaincode's own records. Bounds:
 * nesting depth 32, input at most FL_MLU_JSON_MAX bytes; strings may not
 * contain \u0000 (they are handed out NUL-terminated). Duplicate keys in an
 * object are rejected. It is used by the chaincode, its tests, and any tool
 * (CLI, edge client) that reads mlupdate records.
 */
#ifndef FL_CHAINCODE_MLUPDATE_JSON_H
#define FL_CHAINCODE_MLUPDATE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

/** Largest JSON text the reader accepts (16 MiB). */
#define FL_MLU_JSON_MAX ((size_t)16 << 20)

typedef enum fl_mlu_jkind_e {
  FL_MLU_JNULL = 0,
  FL_MLU_JBOOL,
  FL_MLU_JNUM,
  FL_MLU_JSTR,
  FL_MLU_JARR,
  FL_MLU_JOBJ,
} fl_mlu_jkind_t;

/** One JSON value. Transparent, owned by the tree's root. */
typedef struct fl_mlu_json_s {
  fl_mlu_jkind_t kind;
  bool b;                     /* JBOOL */
  double num;                 /* JNUM, as strtod reads it */
  char *str;                  /* JSTR: decoded, NUL-terminated; JNUM: raw text */
  size_t len;                 /* length of str without the NUL */
  size_t n;                   /* JARR, JOBJ: number of members */
  struct fl_mlu_json_s *items; /* JARR, JOBJ: n values */
  char **keys;                /* JOBJ: n NUL-terminated keys */
} fl_mlu_json_t;

/** Parses text into an owned tree (*out, free with fl_mlu_json_free).
 *  Returns FL_OK, or FL_EMALFORMED (not valid JSON, trailing bytes, depth
 *  over 32, \u0000, duplicate key) / FL_ETOOBIG (over FL_MLU_JSON_MAX),
 *  with *out NULL. Borrows text. */
fl_status_t fl_mlu_json_parse(fl_buf_t text, fl_mlu_json_t **out /* out */);
/** Frees a tree from fl_mlu_json_parse. NULL-safe. */
void fl_mlu_json_free(fl_mlu_json_t *j);

/** The member key of object o, or NULL (o not an object, or no such key).
 *  Borrowed view into o. */
const fl_mlu_json_t *fl_mlu_json_get(const fl_mlu_json_t *o, const char *key);
/** True when j is a number written as a non-negative decimal integer that
 *  fits in uint64 (no sign, fraction or exponent); its value in *v. */
bool fl_mlu_json_u64(const fl_mlu_json_t *j, uint64_t *v /* out */);
/** True when j is a finite number; its value in *v. */
bool fl_mlu_json_num(const fl_mlu_json_t *j, double *v /* out */);
/** j's string (borrowed, NUL-terminated) when j is a string, else NULL. */
const char *fl_mlu_json_str(const fl_mlu_json_t *j);

/* ---- writer: appends to an fl_sbuf_t ---------------------------------- */

/** Appends s (n bytes) as a JSON string literal with quotes. */
void fl_mlu_jw_strn(fl_sbuf_t *b, const char *s, size_t n);
/** Appends a NUL-terminated string as a JSON string, or null if s is NULL. */
void fl_mlu_jw_str(fl_sbuf_t *b, const char *s);
/** Appends n bytes as a lowercase hex JSON string. */
void fl_mlu_jw_hex(fl_sbuf_t *b, const uint8_t *p, size_t n);
/** Appends an unsigned decimal integer. */
void fl_mlu_jw_u64(fl_sbuf_t *b, uint64_t v);
/** Appends a double as "%.17g", or null when it is not finite. */
void fl_mlu_jw_num(fl_sbuf_t *b, double v);
/** Appends `"key":` (with a leading comma unless b ends with '{'). */
void fl_mlu_jw_key(fl_sbuf_t *b, const char *key);

#endif /* FL_CHAINCODE_MLUPDATE_JSON_H */
