/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz.h: the libFuzzer entry point every tests/fuzz/fuzz_<decoder>.c
 * defines. The same source links either with -fsanitize=fuzzer (FUZZ=ON) or
 * with replay_main.c, which feeds the committed corpus to it in every build.
 */
#ifndef FL_TESTS_FUZZ_H
#define FL_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/** Runs one input. Must not crash, leak or hit UB for any bytes; returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* FL_TESTS_FUZZ_H */
