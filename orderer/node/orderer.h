/* SPDX-License-Identifier: Apache-2.0
 *
 * orderer.h: the fedledger-orderer process (a PBFT replica as a service).
 *
 * fl_orderer_main loads orderer.yaml (with FEDLEDGER_* environment
 * overrides) and the genesis block, opens the replica's RocksDB (CF "blocks":
 * be64(number) -> Block bytes; CF "pbft": kind byte || be64(seq) -> record),
 * restores the PBFT state machine from it, and runs one libuv loop serving
 *   Orderer/Broadcast  envelopes: decoded and their creator's signature,
 *                      membership and revocation checked on worker threads
 *                      in batches, then handed to PBFT;
 *   Orderer/Deliver    signed seek requests: a stream of stored blocks from
 *                      a position, live tail, optional stop;
 *   Pbft/Consensus     replica-to-replica: replica i opens one stream to
 *                      every replica j and j sends all its consensus
 *                      messages to i on it (one SignedMessage per frame);
 *                      received messages are decoded and every signature
 *                      in them checked on worker threads, in batches.
 * until SIGTERM or SIGINT, on which it closes every connection, waits for
 * outstanding disk writes and exits 0.
 *
 * orderer.yaml keys (dotted path; FEDLEDGER_<PATH> overrides each one;
 * docs/ordering.md section 14 has the full table):
 *   general.id                 replica id (required)
 *   general.data_dir           database directory (required)
 *   general.genesis            genesis block file (required)
 *   general.listen_host        default: the genesis entry's host
 *   general.listen_port        default: the genesis entry's port
 *   general.log                log spec, default "info"
 *   msp.dir                    signcerts/ and keystore/ (required)
 *   tls.enabled                default true
 *   tls.cert, tls.key          TLS certificate and key (required if enabled)
 *   storage.sync               fsync every group commit on a writer thread,
 *                              default true; false writes on the loop
 *                              (page cache: survives kill -9, not a power loss)
 *   storage.committed_retention  COMMITTED records kept below the stable
 *                              checkpoint, default 8192 seqs
 *   broadcast.verify           check envelope signatures, default true
 *   broadcast.batch            envelopes per verification job, default 256
 *   broadcast.workers          verification jobs in flight, default 2
 *   broadcast.max_pending      requests held (PBFT + verification) before
 *                              new Broadcasts park, default 8000
 *   broadcast.max_parked       Broadcasts that may wait (their connections'
 *                              reading paused); beyond, AGAIN; 0 = refuse at
 *                              once, default 16384
 *   broadcast.park_timeout     longest wait of a parked Broadcast, default 5s
 *   pbft.request_timeout       backups' request timer, default 1s
 *   pbft.censor_timeout        a held request no pre-prepare carried: relayed
 *                              to every replica at half of it, view change
 *                              voted at it, default 10 x request_timeout;
 *                              0ms = off
 *   pbft.unreachable_timeout   the same while the primary's link is down,
 *                              default 200ms
 *   pbft.resend                retransmission interval, default 250ms
 *   pbft.max_inflight          primary pipeline depth, default 16
 *   rpc.max_message_bytes      default: the genesis value
 *
 * Persistence rule: every record the state machine asks to persist, and
 * every block, is written in one RocksDB batch before any message the
 * machine produced after it is sent (group commit: all records queued while
 * a write is in flight go into the next batch).
 */
#ifndef FL_ORDERER_NODE_ORDERER_H
#define FL_ORDERER_NODE_ORDERER_H

/** Runs the orderer with the configuration file at config_path (borrowed)
 *  until SIGTERM/SIGINT. Returns the process exit status: 0 after a clean
 *  shutdown, 1 when the configuration, the genesis block, the identity or
 *  the database is unusable (the reason is logged), 2 on a runtime failure
 *  such as a failed disk write. Call once per process, from main. */
int fl_orderer_main(const char *config_path);

#endif /* FL_ORDERER_NODE_ORDERER_H */
