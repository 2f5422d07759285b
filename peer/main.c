/* SPDX-License-Identifier: Apache-2.0
 *
 * main.c: fedledger-peer's entry point: parses the command line and runs
 * the peer (peer/node/peer.h).
 */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "peer/node/peer.h"

static int usage(FILE *to) {
  fprintf(to, "usage: fedledger-peer --config core.yaml\n"
              "  settings may be overridden with FEDLEDGER_<KEY> variables,\n"
              "  e.g. FEDLEDGER_PEER_LISTEN_PORT=7051\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *config = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config = argv[++i];
    } else if (strncmp(argv[i], "--config=", 9) == 0) {
      config = argv[i] + 9;
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "fedledger-peer: unknown argument '%s'\n", argv[i]);
      return usage(stderr);
    }
  }
  if (config == NULL) return usage(stderr);
  int rc = fl_peer_main(config);
  /* Join libuv's worker pool now, while OpenSSL's thread-exit handlers are
   * still registered, so the workers' per-thread OpenSSL state is freed
   * (otherwise LeakSanitizer reports it after OpenSSL's atexit cleanup). */
  uv_library_shutdown();
  return rc;
}
