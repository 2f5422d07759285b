/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_http.c: fuzz target of the operations endpoint's HTTP/1.1 request
 * head parser (fl__http_parse, common/ops/ops_int.h) and of the text
 * helpers that echo client bytes back (fl__utf8_valid, fl__json_str).
 *
 * The input is what a client writes to the /healthz, /metrics, /version
 * listener. It is parsed under two sets of limits (tight and roomy) and:
 *   - an accepted head lies inside the input, its method is a token, its
 *     path starts with '/' or is "*", the minor version is a digit;
 *   - a refused head carries one of the documented statuses and a reason;
 *   - because the server rescans the whole buffer whenever bytes arrive,
 *     every proper prefix of an accepted head must read as "need more"
 *     (never as an error), and parsing the head alone gives the same
 *     result.
 * Finally the bytes are quoted as a JSON string: the output must be valid
 * UTF-8 without NUL whatever the input.
 */
#include <stdlib.h>
#include <string.h>

#include "common/base/buf.h"
#include "common/ops/ops_int.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_check.h"

static void same_req(const fl__http_req_t *a, const fl__http_req_t *b) {
  check(a->method == b->method && a->method_len == b->method_len);
  check(a->path == b->path && a->path_len == b->path_len);
  check(a->version_minor == b->version_minor && a->head_len == b->head_len);
}

static void parse(const char *buf, size_t len, const fl__http_limits_t *lim) {
  fl__http_req_t req;
  int rc = fl__http_parse(buf, len, lim, &req);
  check(rc >= -1 && rc <= 1);
  if (rc == -1) {
    check(req.error != NULL && req.error[0] != '\0');
    check(req.status == 400 || req.status == 414 || req.status == 431 || req.status == 505);
    return;
  }
  if (rc == 0) return;
  check(req.head_len >= 4 && req.head_len <= len && req.head_len <= lim->max_head);
  check(req.method == buf && req.method_len >= 1);
  check(req.path_len >= 1);
  /* The path is a view into the head, or the static "/" of absolute-form. */
  if (req.path >= buf && req.path < buf + len) {
    check(req.path + req.path_len <= buf + req.head_len);
  } else {
    check(req.path_len == 1 && req.path[0] == '/');
  }
  check(req.path[0] == '/' || (req.path_len == 1 && req.path[0] == '*'));
  check(req.version_minor >= 0 && req.version_minor <= 9);

  /* The head alone parses the same; every proper prefix needs more bytes. */
  fl__http_req_t again;
  check(fl__http_parse(buf, req.head_len, lim, &again) == 1);
  same_req(&req, &again);
  size_t step = req.head_len / 64 + 1;
  for (size_t p = 0; p < req.head_len; p += step) {
    fl__http_req_t part;
    check(fl__http_parse(buf, p, lim, &part) == 0);
  }
  fl__http_req_t part;
  check(fl__http_parse(buf, req.head_len - 1, lim, &part) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 16384) return 0; /* heads are a few KiB; bigger adds nothing */
  const char *buf = (const char *)data;
  const fl__http_limits_t tight = {.max_request_line = 64, .max_head = 256, .max_headers = 4};
  const fl__http_limits_t roomy = {.max_request_line = 8192, .max_head = 16384,
                                   .max_headers = 100};
  parse(buf, size, &tight);
  parse(buf, size, &roomy);

  fl_sbuf_t js = {0};
  fl__json_str(&js, buf, size);
  check(js.len >= 2 && js.data[0] == '"' && js.data[js.len - 1] == '"');
  check(fl__utf8_valid((const char *)js.data, js.len));
  if (fl__utf8_valid(buf, size)) {
    /* Valid text only gains escapes: never shorter than the input. */
    check(js.len >= size + 2);
  }
  fl_sbuf_free(&js);
  return 0;
}
