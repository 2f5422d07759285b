/* SPDX-License-Identifier: Apache-2.0
 *
 * cc_bad.c: chaincode objects the runtime must refuse, one per define:
 * CC_BAD_NOSYM exports no fl_chaincode_entry, CC_BAD_ABI reports ABI 99,
 * CC_BAD_NAME calls itself "impostor", CC_BAD_NOINVOKE has no invoke.
 * CC_ABI=<n> reports ABI n: 1 is older than FL_CC_ABI_MIN_VERSION (refused),
 * 2 is an older version the runtime still loads and runs.
 */
#include "chaincode/shim.h"

static fl_cc_response_t bad_invoke(fl_cc_stub_t *stub) {
  (void)stub;
  return fl_cc_success(fl_cc_str("should never run"));
}

#if defined(CC_BAD_NOSYM)
__attribute__((visibility("default"))) const fl_chaincode_t *fl_chaincode_entry_v0(void);
__attribute__((visibility("default"))) const fl_chaincode_t *fl_chaincode_entry_v0(void) {
  static const fl_chaincode_t d = {FL_CC_ABI_VERSION, "bad", NULL, bad_invoke};
  return &d;
}
#else
#if defined(CC_BAD_ABI)
#define ABI 99u
#elif defined(CC_ABI)
#define ABI CC_ABI
#else
#define ABI FL_CC_ABI_VERSION
#endif
#if defined(CC_BAD_NAME)
#define NAME "impostor"
#else
#define NAME "bad"
#endif
#if defined(CC_BAD_NOINVOKE)
#define INVOKE NULL
#else
#define INVOKE bad_invoke
#endif
static const fl_chaincode_t desc = {
    .abi_version = ABI, .name = NAME, .init = NULL, .invoke = INVOKE};
__attribute__((visibility("default"))) const fl_chaincode_t *fl_chaincode_entry(void) {
  (void)bad_invoke;
  return &desc;
}
#endif
