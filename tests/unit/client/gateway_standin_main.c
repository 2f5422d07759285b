/* SPDX-License-Identifier: Apache-2.0
 *
 * gateway_standin_main.c: the gateway stand-in as a process, for the e2e
 * benchmark's smoke test (e2e_smoke.sh): `gateway_standin PKI_DIR` prints
 * its port on stdout and serves until its stdin reaches end of file.
 */
#include <stdio.h>
#include <unistd.h>

#include "tests/unit/client/gateway_standin.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gateway_standin PKI_DIR\n");
    return 2;
  }
  gw_t *gw = gw_start(argv[1]);
  printf("%u\n", (unsigned)gw_port(gw));
  fflush(stdout);
  char buf[256];
  while (read(0, buf, sizeof buf) > 0) {
  }
  gw_stats_t *st = gw_stats(gw);
  fprintf(stderr, "gateway_standin: submits=%llu refused=%llu\n",
          (unsigned long long)atomic_load(&st->submits),
          (unsigned long long)atomic_load(&st->refused));
  gw_stop(gw);
  return 0;
}
