/* SPDX-License-Identifier: Apache-2.0
 *
 * gateway_standin.h: a small but real gateway peer for the client tests.
 *
 * It is a real fl_rpc server (mutual TLS with the cryptogen fixture's
 * peer0.org1 TLS identity) on its own thread and loop, serving the Gateway
 * and Peer methods the client calls, honestly:
 *   - Endorse / Evaluate: decode the SignedProposal, verify the creator's
 *     signature and membership with fl_msp, check the request's tx id, run a
 *     tiny kvstore (put / get / fail) to a real read-write set, have
 *     peer0.org1 and peer0.org2 sign real endorsements, and assemble the
 *     transaction with fl_tx_assemble; the prepared envelope handed back is
 *     its payload WITHOUT a signature (the client signs it);
 *   - Submit: verify the client's envelope signature, the proposal
 *     signature and every endorsement (role peer) with fl_msp; refuse
 *     duplicates; "commit" the transaction (apply its writes, 100 per block);
 *   - CommitStatus: verify the signed request with fl_msp and that the asker
 *     created the transaction;
 *   - GetBlob, GetBlock, GetTransaction, ChainInfo, Deliver (signed seek,
 *     verified) over a chain of real blocks signed by 3 of the 4 orderers.
 * fl_tx_assemble wants the client's key to sign the envelope (protoutil has
 * no unsigned variant); the stand-in knows the test clients' keys only for
 * that and throws that signature away.
 *
 * `mode` makes it misbehave in one chosen way at a time (see gw_mode_t).
 */
#ifndef FL_TEST_GATEWAY_STANDIN_H
#define FL_TEST_GATEWAY_STANDIN_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"
#include "common/protoutil/block.h"

typedef enum gw_mode_e {
  GW_OK = 0,
  GW_WRONG_TXID,       /* prepared tx is another proposal (another tx id) */
  GW_OTHER_PROPOSAL,   /* prepared tx: our header, another proposal */
  GW_SILENT,           /* never answers Endorse */
  GW_ENDORSED_500,     /* prepared tx whose endorsed response is a 500 */
  GW_BAD_ENDORSEMENT,  /* org2's endorsement signed with org1's key */
  GW_INVALID_COMMIT,   /* CommitStatus says MVCC_READ_CONFLICT */
  GW_BAD_BLOB,         /* GetBlob returns other bytes */
  GW_DELIVER_BADSIG,   /* block 2 carries only 2 valid orderer signatures */
  GW_DELIVER_BADLINK,  /* block 2 does not link to block 1 */
} gw_mode_t;

/** An identity of the fixture. */
typedef struct gw_ident_s {
  const char *mspid;
  fl_sbuf_t pem;       /* signing certificate */
  fl_sbuf_t sid;       /* serialized identity */
  fl_signer_t *key;
} gw_ident_t;

typedef struct gw_s gw_t;

/** Shared with the tests: read after calls completed. */
typedef struct gw_stats_s {
  atomic_uint_fast64_t proposals_verified;
  atomic_uint_fast64_t envelopes_verified;
  atomic_uint_fast64_t status_requests_verified;
  atomic_uint_fast64_t submits;
  atomic_uint_fast64_t refused;
} gw_stats_t;

/** Starts the stand-in on 127.0.0.1 (ephemeral port). pki = the fixture
 *  directory. Aborts the test on failure. */
gw_t *gw_start(const char *pki);
/** Stops the server thread and frees everything. */
void gw_stop(gw_t *gw);
uint16_t gw_port(const gw_t *gw);
void gw_set_mode(gw_t *gw, gw_mode_t mode);
gw_stats_t *gw_stats(gw_t *gw);
/** The encoded genesis block (view valid while gw lives). */
fl_buf_t gw_genesis(const gw_t *gw);
/** The stored blob and its SHA-256. */
fl_buf_t gw_blob(const gw_t *gw, uint8_t hash[32] /* out */);
/** The MSP of the network (borrowed). */
fl_msp_t *gw_msp(gw_t *gw);
/** Number of good blocks in the chain (genesis included). */
uint64_t gw_height(const gw_t *gw);

/** Loads an identity of the fixture: rel = path under pki to the node's or
 *  user's folder ("peerOrganizations/org1.example.com/users/client1@...").
 *  Aborts on failure. */
void gw_ident_load(gw_ident_t *id, const char *pki, const char *rel, const char *mspid);
void gw_ident_free(gw_ident_t *id);

#endif /* FL_TEST_GATEWAY_STANDIN_H */
