/* SPDX-License-Identifier: Apache-2.0
 *
 * text.c: UTF-8 checking and JSON string output for the operations
 * service. Metric help and label values must be UTF-8 (the exposition
 * format says so); health-check reasons come from anywhere in the node and
 * are made safe for JSON here rather than trusted.
 */
#include "common/ops/ops_int.h"

#include <stdint.h>
#include <stdio.h>

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0 when
 * the bytes there are not one (RFC 3629 table 3-7). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c == 0xE0) { len = 3; lo = 0xA0; }
  else if (c >= 0xE1 && c <= 0xEC) len = 3;
  else if (c == 0xED) { len = 3; hi = 0x9F; }  /* no surrogates */
  else if (c >= 0xEE && c <= 0xEF) len = 3;
  else if (c == 0xF0) { len = 4; lo = 0x90; }
  else if (c >= 0xF1 && c <= 0xF3) len = 4;
  else if (c == 0xF4) { len = 4; hi = 0x8F; }  /* <= U+10FFFF */
  else return 0;
  if (n < len) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return len;
}

bool fl__utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    if (p[i] == 0) return false;
    size_t k = utf8_seq(p + i, n - i);
    if (k == 0) return false;
    i += k;
  }
  return true;
}

void fl__json_str(fl_sbuf_t *out, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  fl_sbuf_append(out, "\"", 1);
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      fl_sbuf_append(out, e, 2);
      i++;
    } else if (c == '\n') {
      fl_sbuf_append(out, "\\n", 2);
      i++;
    } else if (c == '\r') {
      fl_sbuf_append(out, "\\r", 2);
      i++;
    } else if (c == '\t') {
      fl_sbuf_append(out, "\\t", 2);
      i++;
    } else if (c < 0x20 || c == 0x7F) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", c);
      fl_sbuf_append(out, e, 6);
      i++;
    } else {
      size_t k = utf8_seq(p + i, n - i);
      if (k == 0) {
        fl_sbuf_append(out, "\xEF\xBF\xBD", 3); /* U+FFFD for one bad byte */
        i++;
      } else {
        fl_sbuf_append(out, p + i, k);
        i += k;
      }
    }
  }
  fl_sbuf_append(out, "\"", 1);
}
