/* SPDX-License-Identifier: Apache-2.0
 *
 * check.h: CHECK(cond, fmt, ...) for the integration tests that run a
 * network of real processes from main() (no cmocka): on failure it prints
 * "FAIL file:line: message" and calls the test's own
 *     static void fail_exit(void);
 * which stops what the test started (and keeps its folder with FL_KEEP)
 * and exits 1. The including file defines fail_exit before the first use.
 */
#ifndef FL_TESTS_INTEGRATION_CHECK_H
#define FL_TESTS_INTEGRATION_CHECK_H

#include <stdio.h>

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
      fail_exit();                                         \
    }                                                      \
  } while (0)

#endif /* FL_TESTS_INTEGRATION_CHECK_H */
