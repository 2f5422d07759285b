/* SPDX-License-Identifier: Apache-2.0
 *
 * ops_int.h: internals shared by the files of common/ops (not API): text
 * helpers (UTF-8, JSON strings) and the HTTP/1.1 request-head parser.
 */
#ifndef FL_OPS_OPS_INT_H
#define FL_OPS_OPS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/base/buf.h"

/** True when the n bytes at s are well-formed UTF-8 (no overlongs, no
 *  surrogates, nothing above U+10FFFF) with no NUL. */
bool fl__utf8_valid(const char *s, size_t n);

/** Appends s (n bytes) to out as a JSON string with its quotes: ", \ and
 *  control characters escaped; bytes that are not well-formed UTF-8 become
 *  U+FFFD, so the output is always valid JSON. */
void fl__json_str(fl_sbuf_t *out, const char *s, size_t n);

/* ---- HTTP request head parser -----------------------------------------
 *
 * Pure and incremental by rescanning: call it with the whole buffer each
 * time bytes arrive (a head is at most a few KiB). It never reads past len
 * and never writes to the buffer. Views in fl__http_req_t point into it.
 */

typedef struct fl__http_limits_s {
  size_t max_request_line;  /* bytes of the request line without CRLF */
  size_t max_head;          /* bytes of request line + headers + blank line */
  size_t max_headers;       /* number of header fields */
} fl__http_limits_t;

typedef struct fl__http_req_s {
  const char *method;
  size_t method_len;
  const char *path;        /* origin-form path, no query; "*" possible */
  size_t path_len;
  int version_minor;       /* HTTP/1.x */
  size_t head_len;         /* bytes of the head, blank line included */
  int status;              /* on error: the HTTP status to answer */
  const char *error;       /* on error: a short static reason */
} fl__http_req_t;

/** Parses a request head from buf[0..len).
 *  Returns 1 when the head is complete and valid (req filled, head_len set),
 *  0 when more bytes are needed (and none of what is there is wrong yet),
 *  -1 on a bad request: req->status is 400 (malformed), 414 (request line
 *  too long), 431 (head too big or too many fields), 505 (not HTTP/1.x)
 *  and req->error a static reason. */
int fl__http_parse(const char *buf, size_t len, const fl__http_limits_t *lim,
                   fl__http_req_t *req /* out */);

#endif /* FL_OPS_OPS_INT_H */
