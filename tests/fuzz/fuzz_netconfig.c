/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_netconfig.c: fuzz target of the network configuration decoder
 * fl_netconfig_decode (common/protoutil/genesis.h): the fl.config
 * NetworkConfig every node reads from its genesis block, and the CLI from
 * files.
 *
 * When the input decodes, the configuration must pass fl_netconfig_validate
 * (the decoder validates), encode -> decode must give the same
 * configuration field by field and the same bytes when encoded again, and
 * every orderer id 0..n-1 must be found. The organisations' CA
 * certificates are then handed to the MSP (fl_netconfig_msp_new), which
 * parses the PEM: it must either build an MSP or fail with a reason.
 */
#include <stdlib.h>

#include "common/crypto/msp.h"
#include "common/protoutil/genesis.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/netconfig_cmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fl_netconfig_t sentinel;
  fl_netconfig_t *cfg = &sentinel;
  const char *reason = NULL;
  if (fl_netconfig_decode(data, size, &cfg, &reason) != FL_OK) {
    nc_check(cfg == NULL && reason != NULL);
    return 0;
  }
  nc_roundtrip(cfg);
  fl_msp_t *msp = NULL;
  reason = NULL;
  if (fl_netconfig_msp_new(cfg, &msp, &reason) == FL_OK) {
    nc_check(msp != NULL && fl_msp_org_count(msp) == cfg->n_orgs);
    fl_msp_free(msp);
  } else {
    nc_check(msp == NULL && reason != NULL);
  }
  fl_netconfig_free(cfg);
  return 0;
}
