/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for common/base: status strings, buffers, hex, logging spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/log.h"
#include "common/base/status.h"

static void test_status_names(void **state) {
  (void)state;
  assert_string_equal(fl_status_str(FL_OK), "ok");
  assert_string_equal(fl_status_str(FL_EBADSIG), "bad signature");
  assert_string_equal(fl_status_name(FL_EMALFORMED), "EMALFORMED");
  assert_int_equal(fl_status_from_name("EMALFORMED"), FL_EMALFORMED);
  assert_int_equal(fl_status_from_name("nonsense"), FL_EINTERNAL);
  assert_string_equal(fl_status_str(-12345), "unknown status");
}

static void test_sbuf_grow_consume(void **state) {
  (void)state;
  fl_sbuf_t b = {0};
  for (int i = 0; i < 1000; i++) fl_sbuf_append_be32(&b, (uint32_t)i);
  assert_int_equal(b.len, 4000);
  assert_true(b.cap >= b.len);
  assert_int_equal(fl_get_be32(b.data + 4 * 999), 999);
  fl_sbuf_consume(&b, 4);
  assert_int_equal(b.len, 3996);
  assert_int_equal(fl_get_be32(b.data), 1);
  fl_sbuf_printf(&b, "x=%d", 42);
  assert_memory_equal(b.data + 3996, "x=42", 4);
  assert_int_equal(b.len, 4000);
  size_t n = 0;
  uint8_t *d = fl_sbuf_detach(&b, &n);
  assert_int_equal(n, 4000);
  assert_null(b.data);
  fl_free(d);
  fl_sbuf_free(&b);
  fl_sbuf_free(NULL);
}

static void test_be64(void **state) {
  (void)state;
  uint8_t p[8];
  fl_put_be64(p, 0x0102030405060708ull);
  assert_int_equal(p[0], 1);
  assert_int_equal(p[7], 8);
  assert_true(fl_get_be64(p) == 0x0102030405060708ull);
}

static void test_hex(void **state) {
  (void)state;
  const uint8_t in[] = {0x00, 0xab, 0xff, 0x10};
  char out[9];
  fl_hex_encode(in, 4, out);
  assert_string_equal(out, "00abff10");
  uint8_t back[4];
  assert_int_equal(fl_hex_decode("00ABff10", 8, back, 4), 4);
  assert_memory_equal(back, in, 4);
  assert_int_equal(fl_hex_decode("0g", 2, back, 4), -1);
  assert_int_equal(fl_hex_decode("abc", 3, back, 4), -1);
  assert_int_equal(fl_hex_decode("0011223344", 10, back, 4), -1);
}

static void test_log_spec(void **state) {
  (void)state;
  assert_int_equal(fl_log_configure("warn,rpc=debug"), 0);
  assert_false(fl_log_enabled(FL_LOG_INFO, "pbft"));
  assert_true(fl_log_enabled(FL_LOG_WARN, "pbft"));
  assert_true(fl_log_enabled(FL_LOG_DEBUG, "rpc"));
  assert_false(fl_log_enabled(FL_LOG_TRACE, "rpc"));
  /* a bad spec changes nothing */
  assert_int_equal(fl_log_configure("loud"), -1);
  assert_int_equal(fl_log_configure("info,rpc=shout"), -1);
  assert_true(fl_log_enabled(FL_LOG_DEBUG, "rpc"));
  assert_int_equal(fl_log_configure("info"), 0);
  assert_false(fl_log_enabled(FL_LOG_DEBUG, "rpc"));
}

static void test_strings(void **state) {
  (void)state;
  char *s = fl_sprintf("%s-%d", "a", 7);
  assert_string_equal(s, "a-7");
  fl_free(s);
  s = fl_strndup("abcdef", 3);
  assert_string_equal(s, "abc");
  fl_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_names), cmocka_unit_test(test_sbuf_grow_consume),
      cmocka_unit_test(test_be64),         cmocka_unit_test(test_hex),
      cmocka_unit_test(test_log_spec),     cmocka_unit_test(test_strings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
