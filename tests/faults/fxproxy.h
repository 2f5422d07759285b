/* SPDX-License-Identifier: Apache-2.0
 *
 * fxproxy.h: a loopback TCP proxy that cuts, stalls and delays the links
 * between the nodes of a test network, for the fault tests (tests/faults).
 *
 * The proxy listens on one port per node (the port the genesis block
 * advertises for it) and forwards every accepted connection, byte for
 * byte, to the node's real listening port (TLS passes through untouched).
 * When a connection is accepted, the proxy finds which process opened it:
 * the connecting socket's inode (from /proc/net/tcp, by its local port)
 * is looked up among the descriptors (/proc/<pid>/fd) of the node
 * processes registered with fx_proxy_set_pid. A connection from node i to
 * node j is link (i, j); a connection from any other process (a peer, a
 * test client) is link (FX_CLIENTS, j). Each link, in both directions, is
 *
 *   FX_PASS       forwarded, after delay_ms (0: at once);
 *   FX_BLACKHOLE  nothing forwarded and nothing read: bytes wait in the
 *                 kernel's buffers (as TCP does while packets are lost)
 *                 and flow again when the link passes; new connections are
 *                 accepted and stall;
 *   FX_RESET      open connections are closed and new ones are closed at
 *                 once (as a host that answers with RST).
 *
 * Links are symmetric: fx_proxy_set_link(a, b) sets (a, b) and (b, a).
 * Everything runs on the proxy's own thread (poll(2)); the fx_proxy_*
 * calls may come from any thread.
 *
 * Threads: a proxy thread; the API is thread-safe.
 */
#ifndef FL_TESTS_FAULTS_FXPROXY_H
#define FL_TESTS_FAULTS_FXPROXY_H

#include <stdint.h>
#include <sys/types.h>

#include "common/base/status.h"

#define FX_MAXN 8
#define FX_CLIENTS FX_MAXN /* the link index of unidentified processes */

typedef enum fx_mode_e { FX_PASS = 0, FX_BLACKHOLE = 1, FX_RESET = 2 } fx_mode_t;

typedef struct fx_proxy_s fx_proxy_t;

/** Starts a proxy for n nodes (n <= FX_MAXN) whose real listening ports
 *  are up_ports[0..n-1]; the proxy's ports are picked now (fx_proxy_port).
 *  Returns FL_OK with *out (fx_proxy_stop) or FL_EIO. */
fl_status_t fx_proxy_start(int n, const uint16_t *up_ports, fx_proxy_t **out /* out */);

/** The proxy's listening port for node j. */
uint16_t fx_proxy_port(const fx_proxy_t *px, int j);

/** Registers the PID of node i's process (0: none). */
void fx_proxy_set_pid(fx_proxy_t *px, int i, pid_t pid);

/** Sets link (a, b) and (b, a); a or b may be FX_CLIENTS. */
void fx_proxy_set_link(fx_proxy_t *px, int a, int b, fx_mode_t mode, uint32_t delay_ms);

/** Every link between nodes (and to clients) back to FX_PASS, no delay. */
void fx_proxy_heal(fx_proxy_t *px);

/** Counters: connections accepted from identified nodes, from other
 *  processes, and connections closed by FX_RESET. */
typedef struct fx_stats_s {
  uint64_t conns_node, conns_client, resets, bytes;
} fx_stats_t;
void fx_proxy_stats(fx_proxy_t *px, fx_stats_t *out /* out */);

/** Stops the thread, closes every socket, frees. NULL-safe. */
void fx_proxy_stop(fx_proxy_t *px);

#endif /* FL_TESTS_FAULTS_FXPROXY_H */
