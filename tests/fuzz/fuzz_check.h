/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_check.h: the assertion of the fuzz targets. check(cond) aborts
 * (which libFuzzer and the replay ctest both report as a crash) after
 * printing the file, line and condition that failed, so that a failing
 * replay names the broken invariant. It is on in every build type: fuzz
 * invariants are the test, never compiled out.
 */
#ifndef FL_TESTS_FUZZ_CHECK_H
#define FL_TESTS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static inline void fuzz_check_failed(const char *file, int line, const char *cond) {
  fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, cond);
  abort();
}

#define check(cond) ((cond) ? (void)0 : fuzz_check_failed(__FILE__, __LINE__, #cond))

#endif /* FL_TESTS_FUZZ_CHECK_H */
