/* SPDX-License-Identifier: Apache-2.0
 *
 * test_ccrt.h: helpers shared by the chaincode runtime tests (test_ccrt.c,
 * the in-memory state fake; test_ccrt_ledger.c, the real ledger).
 */
#ifndef FL_TESTS_CCRT_TEST_CCRT_H
#define FL_TESTS_CCRT_TEST_CCRT_H

#include <stddef.h>
#include <stdint.h>

#include "peer/ccrt/ccrt.h"

/** Creates a temp dir holding copies of the test chaincode objects
 *  (kvstore.so, script.so, bad_*.so); returns it (owned, fl_free). */
char *tc_make_cc_dir(void);
/** Removes the dir made by tc_make_cc_dir and frees the string. */
void tc_remove_cc_dir(char *dir);
/** SHA-256 of dir/file, computed by the test itself. */
void tc_file_hash(const char *dir, const char *file, uint8_t out[32]);
/** A runtime over dir in mode with one chaincode loaded (fails the test on
 *  error). */
fl_ccrt_t *tc_runtime(const char *dir, fl_ccrt_mode_t mode, uint32_t timeout_ms,
                      const char *name, const char *file, fl_ccrt_cc_t **cc);
/** Simulates args (NULL-terminated C strings) with the default creator;
 *  returns the status, *out the result. */
fl_status_t tc_sim(fl_ccrt_cc_t *cc, const fl_ccrt_state_ops_t *ops, void *ctx,
                   fl_ccrt_result_t **out, ...);
/** True when r's payload equals s. */
int tc_payload_is(const fl_ccrt_result_t *r, const char *s);

/** Runs the real-ledger group; 0 when all passed. Defined only when the
 *  ledger is built (FL_CCRT_HAVE_LEDGER). */
int tc_run_ledger_tests(void);

#endif /* FL_TESTS_CCRT_TEST_CCRT_H */
