/* SPDX-License-Identifier: Apache-2.0
 *
 * soak_net.c: the network of the soak run (tests/soak/run-soak.sh; not a
 * ctest test). Starts the peer integration harness's network (4
 * fedledger-orderer, 2x2 fedledger-peer on 127.0.0.1, kvstore chaincode)
 * with real TLS and storage, checks that one transaction commits, writes
 * a shell-readable description of it to the file given as argv[1]:
 *
 *   SOAK_DIR=<network folder>  SOAK_PKI=<cryptogen output>
 *   SOAK_GW1=127.0.0.1:<peer0.org1>  SOAK_GW2=127.0.0.1:<peer0.org2>
 *   SOAK_PIDS="orderer0:<pid> ... peer3:<pid>"
 *   SOAK_OPS="peer0:<operations port> ... peer3:<port>"
 *
 * and then waits until SIGTERM/SIGINT or argv[2] seconds (a bound, so that
 * nothing outlives a forgotten run), kills every process by PID and
 * removes the folder (FL_TEST_KEEP=1 keeps it). Its children also die with
 * it (PR_SET_PDEATHSIG in the harness).
 *
 * Environment: FL_PEER_BIN_DIR, FL_KVSTORE_SO, FL_COUNTER_SO,
 * FL_SOURCE_DIR (as for the peer's integration tests).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/peer/harness.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static const char *envs(const char *n) {
  const char *v = getenv(n);
  return v ? v : "";
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: soak_net OUT_ENV_FILE MAX_SECONDS\n");
    return 2;
  }
  long max_s = atol(argv[2]);
  if (max_s <= 0) max_s = 3600;
  /* Before the harness installs its own handlers for SIGTERM and SIGINT
   * (which kill and re-raise): ours only ask the main loop to stop. */
  pn_net_t *net = NULL;
  pn_opts_t o = {.log = "info"};
  if (pn_net_new(&o, envs("FL_PEER_BIN_DIR"), envs("FL_KVSTORE_SO"), envs("FL_COUNTER_SO"),
                 &net) != FL_OK)
    return 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int rc = 1;
  if (pn_start_all(net) != FL_OK || pn_smoke(net, 30000) != FL_OK) goto done;
  char tmp[600];
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
  FILE *f = fopen(tmp, "w");
  if (f == NULL) goto done;
  fprintf(f, "SOAK_DIR=%s\nSOAK_PKI=%s/pki\nSOAK_GW1=127.0.0.1:%u\nSOAK_GW2=127.0.0.1:%u\n",
          net->dir, net->dir, net->pport[0], net->pport[2]);
  fprintf(f, "SOAK_PIDS=\"");
  for (int i = 0; i < PN_NORD; i++) fprintf(f, "orderer%d:%d ", i, (int)net->opid[i]);
  for (int i = 0; i < PN_NPEER; i++) fprintf(f, "peer%d:%d%s", i, (int)net->ppid[i],
                                             i + 1 < PN_NPEER ? " " : "");
  fprintf(f, "\"\nSOAK_OPS=\"");
  for (int i = 0; i < PN_NPEER; i++) fprintf(f, "peer%d:%u%s", i, (unsigned)net->opsport[i],
                                             i + 1 < PN_NPEER ? " " : "");
  fprintf(f, "\"\n");
  fclose(f);
  if (rename(tmp, argv[1]) != 0) goto done;
  printf("soak_net: network up in %s (for at most %ld s)\n", net->dir, max_s);
  fflush(stdout);
  uint64_t end = pn_now_ms() + (uint64_t)max_s * 1000u;
  while (!g_stop && pn_now_ms() < end) {
    pn_sleep_ms(200);
    for (int i = 0; i < PN_NPEER; i++)
      if (net->ppid[i] <= 0) g_stop = 1;
  }
  rc = 0;
done:
  pn_net_free(net);
  return rc;
}
