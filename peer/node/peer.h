/* SPDX-License-Identifier: Apache-2.0
 *
 * peer.h: the fedledger-peer process.
 *
 * fl_peer_main loads core.yaml (FEDLEDGER_* environment variables override
 * any key: peer.listen_port -> FEDLEDGER_PEER_LISTEN_PORT), the genesis
 * block, the peer's signing identity and TLS files; opens the ledger
 * (committing the genesis block on first start); loads the chaincodes the
 * genesis defines from the chaincode directory (refused unless their
 * SHA-256 matches); and runs one libuv loop serving, over mutual TLS:
 *
 *   Peer/Endorse, Peer/Evaluate    the endorser (endorser.h)
 *   Peer/Deliver                   committed blocks from a height, live tail
 *   Peer/GetBlock, GetTransaction, GetBlob, ChainInfo   ledger queries
 *   Gateway/Endorse, Submit, CommitStatus, Evaluate     the gateway
 *
 * while it pulls blocks from the orderers with Orderer/Deliver (failing
 * over to the next orderer on a bad block, a stream error or a stall),
 * validates and commits them (validator.h), publishes block and chaincode
 * events on its nanomsg PUB socket, and serves /healthz, /metrics and
 * /version on the operations port. All signature checks, chaincode runs and
 * RocksDB work run on libuv's worker threads. SIGTERM or SIGINT stop it
 * cleanly. The keys of core.yaml are listed in docs/peer.md.
 */
#ifndef FL_PEER_NODE_PEER_H
#define FL_PEER_NODE_PEER_H

/** Runs the peer with the configuration file at config_path (borrowed)
 *  until SIGTERM/SIGINT. Returns the process exit status: 0 after a clean
 *  shutdown; 1 when the configuration, genesis block, identity, chaincode
 *  policies or ledger are unusable (the reason is logged); 2 on a runtime
 *  failure such as a failed ledger commit. Call once per process. */
int fl_peer_main(const char *config_path);

#endif /* FL_PEER_NODE_PEER_H */
