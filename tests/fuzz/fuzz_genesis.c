/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_genesis.c: fuzz target of the genesis block reader
 * (fl_block_decode + fl_genesis_decode, common/protoutil/genesis.h), as
 * every peer and orderer runs it on the genesis file its operator gives it
 * and the client SDK on the block it fetches.
 *
 * The input is the file's bytes. When it reads as a genesis block, the
 * configuration must be valid and round-trip (netconfig_cmp.h), its MSP
 * must build (the creator's admin certificate was just verified through
 * it), and reading the same block again must give the same configuration.
 * Every failure must come with a reason and leave the output NULL.
 */
#include <stdlib.h>

#include "common/crypto/msp.h"
#include "common/protoutil/block.h"
#include "common/protoutil/genesis.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/netconfig_cmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fl_block_t *b = NULL;
  const char *reason = NULL;
  if (fl_block_decode(data, size, &b, &reason) != FL_OK) {
    nc_check(b == NULL && reason != NULL);
    return 0;
  }
  static fl_netconfig_t sentinel;
  fl_netconfig_t *cfg = &sentinel;
  reason = NULL;
  if (fl_genesis_decode(b, &cfg, &reason) != FL_OK) {
    nc_check(cfg == NULL && reason != NULL);
    fl_block_free(b);
    return 0;
  }
  nc_check(b->number == 0 && b->n_envelopes == 1);
  nc_roundtrip(cfg);
  fl_msp_t *msp = NULL;
  nc_check(fl_netconfig_msp_new(cfg, &msp, NULL) == FL_OK && msp != NULL);
  fl_msp_free(msp);
  fl_netconfig_t *again = NULL;
  nc_check(fl_genesis_decode(b, &again, NULL) == FL_OK);
  nc_same_netconfig(cfg, again);
  fl_netconfig_free(again);
  fl_netconfig_free(cfg);
  fl_block_free(b);
  return 0;
}
