/* SPDX-License-Identifier: Apache-2.0
 *
 * http.c: a strict, bounded parser for HTTP/1.1 request heads (RFC 9112),
 * just enough for the operations endpoint: GET/HEAD of a few paths, no
 * bodies. It is pure (no I/O, no allocation) so that it can be fuzzed and
 * tested on its own, and it rescans from the start on each call, which is
 * cheap at the sizes the limits allow.
 *
 * What it accepts:
 *   request-line = method SP request-target SP "HTTP/1." DIGIT CRLF
 *   header-field = token ":" OWS field-value OWS CRLF
 *   and an empty line; LF alone is accepted for CRLF (RFC 9112 2.2).
 * request-target is origin-form ("/path?query"), absolute-form
 * ("http://host/path") or "*". What it refuses, with the status to answer:
 * a request line longer than the limit (414), a head longer than the limit
 * or with too many fields (431), a version other than 1.x (505), and 400
 * for everything malformed: bad tokens, control bytes, a bare CR,
 * whitespace before the colon, obsolete line folding, an HTTP/1.1 request
 * without exactly one Host, Content-Length that is not a number or that
 * disagrees with another, Content-Length together with Transfer-Encoding.
 */
#include "common/ops/ops_int.h"

#include <string.h>

static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_vchar(unsigned char c) { return c >= 0x21 && c <= 0x7E; }

static int fail(fl__http_req_t *req, int status, const char *why) {
  req->status = status;
  req->error = why;
  return -1;
}

static int ieq(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  if (alen != blen) return 0;
  for (size_t i = 0; i < alen; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z') x = (unsigned char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = (unsigned char)(y - 'A' + 'a');
    if (x != y) return 0;
  }
  return 1;
}

/* Finds the next LF at or after from; returns its index or len. */
static size_t find_lf(const char *buf, size_t from, size_t len) {
  const char *p = from < len ? memchr(buf + from, '\n', len - from) : NULL;
  return p ? (size_t)(p - buf) : len;
}

/* Length of the line [start, lf) without a trailing CR; -1 when a CR is
 * anywhere else in it (a bare CR is not a line ending). */
static long line_len(const char *buf, size_t start, size_t lf) {
  size_t end = lf;
  if (end > start && buf[end - 1] == '\r') end--;
  if (memchr(buf + start, '\r', end - start) != NULL) return -1;
  return (long)(end - start);
}

static int parse_target(const char *t, size_t n, fl__http_req_t *req) {
  for (size_t i = 0; i < n; i++)
    if (!is_vchar((unsigned char)t[i])) return fail(req, 400, "bad byte in request target");
  if (n == 0) return fail(req, 400, "empty request target");
  if (n == 1 && t[0] == '*') {
    req->path = t;
    req->path_len = 1;
    return 0;
  }
  if (t[0] != '/') {
    /* absolute-form: scheme "://" authority [path] */
    size_t skip;
    if (n >= 7 && ieq(t, 7, "http://")) skip = 7;
    else if (n >= 8 && ieq(t, 8, "https://")) skip = 8;
    else return fail(req, 400, "request target is not origin-form or absolute-form");
    const char *slash = memchr(t + skip, '/', n - skip);
    const char *q = memchr(t + skip, '?', n - skip);
    if (slash == NULL || (q && q < slash)) {
      req->path = "/";
      req->path_len = 1;
      return 0;
    }
    n -= (size_t)(slash - t);
    t = slash;
  }
  const char *q = memchr(t, '?', n);
  req->path = t;
  req->path_len = q ? (size_t)(q - t) : n;
  return 0;
}

static int parse_request_line(const char *l, size_t n, fl__http_req_t *req) {
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)l[i])) i++;
  if (i == 0 || i >= n || l[i] != ' ') return fail(req, 400, "bad method");
  req->method = l;
  req->method_len = i;
  size_t t0 = ++i;
  while (i < n && l[i] != ' ') i++;
  if (i >= n) return fail(req, 400, "request line has no version");
  if (parse_target(l + t0, i - t0, req) < 0) return -1;
  const char *v = l + i + 1;
  size_t vn = n - i - 1;
  if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
      v[7] < '0' || v[7] > '9')
    return fail(req, 400, "bad HTTP version");
  if (v[5] != '1') return fail(req, 505, "HTTP version not supported");
  req->version_minor = v[7] - '0';
  return 0;
}

typedef struct hstate_s {
  size_t nfields;
  int hosts;
  int has_te;
  int has_cl;
  unsigned long long cl;
} hstate_t;

static int parse_cl(const char *v, size_t n, unsigned long long *out) {
  if (n == 0 || n > 18) return -1;
  unsigned long long x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    x = x * 10 + (unsigned long long)(v[i] - '0');
  }
  *out = x;
  return 0;
}

static int parse_field(const char *l, size_t n, const fl__http_limits_t *lim, hstate_t *st,
                       fl__http_req_t *req) {
  if (l[0] == ' ' || l[0] == '\t') return fail(req, 400, "obsolete line folding");
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)l[i])) i++;
  if (i == 0 || i >= n || l[i] != ':') return fail(req, 400, "bad header field name");
  const char *name = l;
  size_t name_len = i++;
  while (i < n && (l[i] == ' ' || l[i] == '\t')) i++;
  size_t end = n;
  while (end > i && (l[end - 1] == ' ' || l[end - 1] == '\t')) end--;
  for (size_t k = i; k < end; k++) {
    unsigned char c = (unsigned char)l[k];
    if (!(is_vchar(c) || c == ' ' || c == '\t' || c >= 0x80))
      return fail(req, 400, "bad byte in header field value");
  }
  if (++st->nfields > lim->max_headers) return fail(req, 431, "too many header fields");
  const char *val = l + i;
  size_t val_len = end - i;
  if (ieq(name, name_len, "host")) {
    st->hosts++;
  } else if (ieq(name, name_len, "transfer-encoding")) {
    st->has_te = 1;
  } else if (ieq(name, name_len, "content-length")) {
    unsigned long long cl;
    if (parse_cl(val, val_len, &cl) < 0) return fail(req, 400, "bad Content-Length");
    if (st->has_cl && cl != st->cl) return fail(req, 400, "conflicting Content-Length");
    st->has_cl = 1;
    st->cl = cl;
  }
  return 0;
}

int fl__http_parse(const char *buf, size_t len, const fl__http_limits_t *lim,
                   fl__http_req_t *req) {
  memset(req, 0, sizeof *req);
  /* 1. The request line, checked as soon as it is complete so that garbage
   *    is answered at once rather than at a limit or a timeout. */
  size_t lf = find_lf(buf, 0, len);
  if (lf == len) {
    if (len > lim->max_request_line + 1) return fail(req, 414, "request line too long");
    if (memchr(buf, '\0', len)) return fail(req, 400, "NUL in request line");
    return 0;
  }
  long n = line_len(buf, 0, lf);
  if (n < 0) return fail(req, 400, "bare CR in request line");
  if ((size_t)n > lim->max_request_line) return fail(req, 414, "request line too long");
  if (parse_request_line(buf, (size_t)n, req) < 0) return -1;

  /* 2. Header fields, each checked once complete, up to the empty line. */
  hstate_t st = {0};
  size_t pos = lf + 1;
  for (;;) {
    if (pos > lim->max_head) return fail(req, 431, "request head too large");
    lf = find_lf(buf, pos, len);
    if (lf == len) {
      if (len >= lim->max_head) return fail(req, 431, "request head too large");
      return 0;
    }
    n = line_len(buf, pos, lf);
    if (n < 0) return fail(req, 400, "bare CR in header");
    if (n == 0) break;
    if (parse_field(buf + pos, (size_t)n, lim, &st, req) < 0) return -1;
    pos = lf + 1;
  }
  req->head_len = lf + 1;
  if (req->head_len > lim->max_head) return fail(req, 431, "request head too large");

  /* 3. Whole-message rules. */
  if (req->version_minor >= 1 && st.hosts != 1)
    return fail(req, 400, "HTTP/1.1 request needs exactly one Host");
  if (st.hosts > 1) return fail(req, 400, "more than one Host");
  if (st.has_cl && st.has_te) return fail(req, 400, "Content-Length with Transfer-Encoding");
  return 1;
}
