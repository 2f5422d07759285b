/* SPDX-License-Identifier: Apache-2.0
 *
 * harness.c: the peer integration tests' network (harness.h). mkdtemp,
 * kill and waitpid are POSIX; nothing here needs _GNU_SOURCE.
 */
#include "tests/integration/peer/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/base/file.h"
#include "common/base/clock.h"
#include "common/crypto/x509.h"
#include "common/net/loop.h"
#include "common/protoutil/block.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/genesis.h"
#include "orderer/harness/harness.h"
#include "fl/common/common.pb-c.h"
#include "fl/orderer/ab.pb-c.h"
#include "fl/peer/gateway.pb-c.h"
#include "fl/peer/proposal.pb-c.h"

#define UNCONST(T, p) ((T)(uintptr_t)(p))

static pn_net_t *g_nets[4];
static bool g_hooked;

static void kill_pid(pid_t *pid) {
  if (*pid <= 0) return;
  kill(*pid, SIGCONT);
  kill(*pid, SIGKILL);
  waitpid(*pid, NULL, 0);
  *pid = 0;
}

static void kill_all(void) {
  for (int k = 0; k < 4; k++) {
    pn_net_t *n = g_nets[k];
    if (n == NULL) continue;
    for (int i = 0; i < PN_NPEER; i++) kill_pid(&n->ppid[i]);
    for (int i = 0; i < PN_NORD; i++) kill_pid(&n->opid[i]);
  }
}

/* A fatal signal in the test process (an abort, a crash, ctest's SIGTERM
 * on timeout) skips atexit: kill every child by PID here (kill(2) is
 * async-signal-safe), then die of the signal. The children also carry
 * PR_SET_PDEATHSIG, so even a SIGKILL of the test leaves none behind. */
static void on_fatal(int sig) {
  for (int k = 0; k < 4; k++) {
    pn_net_t *n = g_nets[k];
    if (n == NULL) continue;
    for (int i = 0; i < PN_NPEER; i++)
      if (n->ppid[i] > 0) kill(n->ppid[i], SIGKILL);
    for (int i = 0; i < PN_NORD; i++)
      if (n->opid[i] > 0) kill(n->opid[i], SIGKILL);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

static void hook(void) {
  if (g_hooked) return;
  g_hooked = true;
  atexit(kill_all);
  static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fatal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(sigs[i], &sa, NULL);
  }
}

uint64_t pn_now_ms(void) { return fl_mono_ns() / 1000000u; }

void pn_sleep_ms(uint32_t ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Files the harness reads whole (PEM, genesis, chaincode .so). */
#define FILE_MAX ((size_t)256 << 20)

static uint16_t free_port(void) { return fl_oh_free_port(); }

static int run_wait(char *const argv[], const char *logpath) {
  pid_t p = fork();
  if (p < 0) return -1;
  if (p == 0) {
    int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  if (waitpid(p, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static fl_status_t copy_file(const char *from, const char *to) {
  fl_sbuf_t b = {0};
  if (fl_file_read(from, FILE_MAX, &b) < 0) return FL_NOTFOUND;
  FILE *fp = fopen(to, "wb");
  fl_status_t rc = FL_EIO;
  if (fp && fwrite(b.data, 1, b.len, fp) == b.len) rc = FL_OK;
  if (fp) fclose(fp);
  fl_sbuf_free(&b);
  return rc;
}

static const char *org_dom[2] = {"org1.example.com", "org2.example.com"};
static const char *org_msp[2] = {"Org1MSP", "Org2MSP"};

static fl_status_t load_ident(pn_ident_t *id, const char *mspid, const char *dir,
                              const char *cn) {
  fl_sbuf_t pem = {0};
  char *p = fl_sprintf("%s/msp/signcerts/%s-cert.pem", dir, cn);
  fl_status_t rc = fl_file_read(p, FILE_MAX, &pem);
  fl_free(p);
  if (rc < 0) return rc;
  p = fl_sprintf("%s/msp/keystore/priv_sk", dir);
  rc = fl_signer_load_file(p, &id->key);
  fl_free(p);
  if (rc == FL_OK) rc = fl_msp_serialize_identity(mspid, pem.data, pem.len, &id->id);
  snprintf(id->mspid, sizeof(id->mspid), "%s", mspid);
  fl_sbuf_free(&pem);
  return rc;
}

fl_status_t pn_net_new(const pn_opts_t *o, const char *bin_dir, const char *kvstore_so,
                       const char *counter_so, pn_net_t **out) {
  *out = NULL;
  pn_net_t *net = fl_calloc(1, sizeof(*net));
  fl_status_t rc = FL_EIO;
  char *p = NULL;
  FILE *fp = NULL;
  const char *keep = getenv("FL_TEST_KEEP");
  net->keep = o->keep || (keep && keep[0] == '1');
  const char *tmp = getenv("TMPDIR");
  snprintf(net->dir, sizeof(net->dir), "%s/fl-peers-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(net->dir) == NULL) {
    perror("harness: mkdtemp");
    goto fail;
  }
  hook();
  for (int k = 0; k < 4; k++)
    if (g_nets[k] == NULL) {
      g_nets[k] = net;
      break;
    }
  snprintf(net->bin, sizeof(net->bin), "%s", bin_dir);
  static const char *pn[PN_NPEER] = {"peer0.org1.example.com", "peer1.org1.example.com",
                                     "peer0.org2.example.com", "peer1.org2.example.com"};
  for (int i = 0; i < PN_NPEER; i++) {
    net->pname[i] = pn[i];
    net->porg[i] = i / 2;
  }
  /* Chaincodes: kvstore and the test counter, in one dir. */
  p = fl_sprintf("%s/cc", net->dir);
  mkdir(p, 0700);
  fl_free(p);
  p = NULL;
  {
    char b[768];
    snprintf(b, sizeof(b), "%s/cc/kvstore.so", net->dir);
    if (copy_file(kvstore_so, b) < 0) {
      fprintf(stderr, "harness: missing %s\n", kvstore_so);
      goto fail;
    }
    snprintf(b, sizeof(b), "%s/cc/counter.so", net->dir);
    if (copy_file(counter_so, b) < 0) {
      fprintf(stderr, "harness: missing %s\n", counter_so);
      goto fail;
    }
  }
  /* Crypto material. */
  {
    char cli[600], cfg[600], outd[300], logp[300];
    snprintf(cli, sizeof(cli), "%s/fedledger", bin_dir);
    const char *src = getenv("FL_SOURCE_DIR");
    snprintf(cfg, sizeof(cfg), "%s/crypto-config/crypto-config.yaml", src ? src : ".");
    snprintf(outd, sizeof(outd), "%s/pki", net->dir);
    snprintf(logp, sizeof(logp), "%s/cryptogen.log", net->dir);
    char *argv[] = {cli, "cryptogen", "generate", "--config", cfg, "--output", outd, NULL};
    if (run_wait(argv, logp) != 0) {
      fprintf(stderr, "harness: cryptogen failed (see %s)\n", logp);
      goto fail;
    }
  }
  for (int i = 0; i < PN_NORD; i++) net->oport[i] = free_port();
  for (int i = 0; i < PN_NPEER; i++) {
    net->pport[i] = free_port();
    net->eport[i] = free_port();
    net->opsport[i] = free_port();
  }
  /* network.yaml */
  p = fl_sprintf("%s/network.yaml", net->dir);
  fp = fopen(p, "w");
  if (fp == NULL) goto fail;
  fprintf(fp,
          "channel: " PN_CHANNEL "\ncrypto_dir: pki\nchaincode_dir: cc\n"
          "organizations:\n"
          "  - {mspid: OrdererMSP, name: example.com, orderer_org: true, "
          "msp_dir: ordererOrganizations/example.com/msp}\n"
          "  - {mspid: Org1MSP, name: org1.example.com, msp_dir: "
          "peerOrganizations/org1.example.com/msp}\n"
          "  - {mspid: Org2MSP, name: org2.example.com, msp_dir: "
          "peerOrganizations/org2.example.com/msp}\n"
          "orderers:\n");
  for (int i = 0; i < PN_NORD; i++)
    fprintf(fp,
            "  - {id: %d, mspid: OrdererMSP, host: 127.0.0.1, port: %u, msp_dir: "
            "ordererOrganizations/example.com/orderers/orderer%d.example.com/msp}\n",
            i, net->oport[i], i);
  fprintf(fp, "peers:\n");
  for (int i = 0; i < PN_NPEER; i++)
    fprintf(fp, "  - {mspid: %s, name: %s, host: 127.0.0.1, port: %u, events_port: %u}\n",
            org_msp[net->porg[i]], net->pname[i], net->pport[i], net->eport[i]);
  fprintf(fp,
          "pbft:\n  f: 1\n  batch_max_count: 200\n  batch_max_bytes: 4194304\n"
          "  batch_timeout: %s\n  checkpoint_interval: 16\n  watermark_window: 64\n"
          "  view_change_timeout: 2s\n"
          "endorsement_policy: MAJORITY\n"
          "chaincodes:\n"
          "  - {name: kvstore, version: \"1.0\", library: kvstore.so, "
          "policy: \"AND('Org1MSP.peer', 'Org2MSP.peer')\"}\n"
          "  - {name: counter, version: \"1.0\", library: counter.so}\n"
          "revoked: []\nmax_message_bytes: 16777216\n"
          "admin:\n  mspid: OrdererMSP\n  msp_dir: "
          "ordererOrganizations/example.com/users/Admin@example.com/msp\n",
          o->batch_timeout ? o->batch_timeout : "10ms");
  fclose(fp);
  fp = NULL;
  {
    char cli[600], logp[300], gout[300];
    snprintf(cli, sizeof(cli), "%s/fedledger", bin_dir);
    snprintf(logp, sizeof(logp), "%s/genesis.log", net->dir);
    snprintf(gout, sizeof(gout), "%s/genesis.block", net->dir);
    char *argv[] = {cli, "genesis", "-c", p, "-o", gout, NULL};
    if (run_wait(argv, logp) != 0) {
      fprintf(stderr, "harness: genesis failed (see %s)\n", logp);
      goto fail;
    }
  }
  fl_free(p);
  p = NULL;
  const char *log = o->log ? o->log : "info";
  /* orderer.yaml */
  for (int i = 0; i < PN_NORD; i++) {
    p = fl_sprintf("%s/orderer%d.yaml", net->dir, i);
    fp = fopen(p, "w");
    if (fp == NULL) goto fail;
#define OD "%s/pki/ordererOrganizations/example.com/orderers/orderer%d.example.com"
    fprintf(fp,
            "general:\n  id: %d\n  data_dir: %s/odata%d\n  genesis: %s/genesis.block\n"
            "  log: %s\nmsp:\n  dir: " OD "/msp\ntls:\n  enabled: true\n  cert: " OD
            "/tls/server.crt\n  key: " OD "/tls/server.key\n",
            i, net->dir, i, net->dir, log, net->dir, i, net->dir, i, net->dir, i);
#undef OD
    if (o->dedup_window > 0) fprintf(fp, "pbft:\n  dedup_window: %u\n", o->dedup_window);
    fclose(fp);
    fp = NULL;
    fl_free(p);
    p = NULL;
  }
  /* core.yaml per peer */
  for (int i = 0; i < PN_NPEER; i++) {
    p = fl_sprintf("%s/peer%d.yaml", net->dir, i);
    fp = fopen(p, "w");
    if (fp == NULL) goto fail;
    char pd[512];
    snprintf(pd, sizeof(pd), "%s/pki/peerOrganizations/%s/peers/%s", net->dir,
             org_dom[net->porg[i]], net->pname[i]);
    fprintf(fp,
            "peer:\n  name: %s\n  msp_dir: %s/msp\n  data_dir: %s/pdata%d\n"
            "  genesis: %s/genesis.block\n  chaincode_dir: %s/cc\n  log: %s\n"
            "tls:\n  cert: %s/tls/server.crt\n  key: %s/tls/server.key\n"
            "operations:\n  port: %u\n"
            "deliver:\n  stall_timeout: %s\n  orderers: []\n"
            "chaincode:\n  mode: fork\n  workers: 2\n"
            "gateway:\n  commit_timeout: 30s\n",
            net->pname[i], pd, net->dir, i, net->dir, net->dir, log, pd, pd, net->opsport[i],
            o->stall_timeout ? o->stall_timeout : "2s");
    fclose(fp);
    fp = NULL;
    fl_free(p);
    p = NULL;
  }
  /* Client identities, TLS, the MSP and orderer verifiers for checks. */
  for (int k = 0; k < 2; k++) {
    char d[512], cn[64];
    snprintf(cn, sizeof(cn), "client1@%s", org_dom[k]);
    snprintf(d, sizeof(d), "%s/pki/peerOrganizations/%s/users/%s", net->dir, org_dom[k], cn);
    if ((rc = load_ident(&net->client[k], org_msp[k], d, cn)) < 0) {
      fprintf(stderr, "harness: client identity %s: %s\n", cn, fl_status_str(rc));
      goto fail;
    }
    snprintf(net->client[k].tls_cert, sizeof(net->client[k].tls_cert), "%s/tls/client.crt", d);
    snprintf(net->client[k].tls_key, sizeof(net->client[k].tls_key), "%s/tls/client.key", d);
  }
  for (int i = 0; i < PN_NPEER; i++) {
    char d[512];
    snprintf(d, sizeof(d), "%s/pki/peerOrganizations/%s/peers/%s", net->dir,
             org_dom[net->porg[i]], net->pname[i]);
    if ((rc = load_ident(&net->peerid[i], org_msp[net->porg[i]], d, net->pname[i])) < 0) {
      fprintf(stderr, "harness: peer identity %s: %s\n", net->pname[i], fl_status_str(rc));
      goto fail;
    }
  }
  {
    fl_sbuf_t roots = {0}, one = {0};
    const char *doms[3] = {"ordererOrganizations/example.com", "peerOrganizations/org1.example.com",
                           "peerOrganizations/org2.example.com"};
    const char *cas[3] = {"tlsca.example.com", "tlsca.org1.example.com", "tlsca.org2.example.com"};
    for (int k = 0; k < 3; k++) {
      char f[600];
      snprintf(f, sizeof(f), "%s/pki/%s/tlsca/%s-cert.pem", net->dir, doms[k], cas[k]);
      if (fl_file_read(f, FILE_MAX, &one) < 0) {
        fprintf(stderr, "harness: missing %s\n", f);
        fl_sbuf_free(&roots);
        fl_sbuf_free(&one);
        goto fail;
      }
      fl_sbuf_append(&roots, one.data, one.len);
    }
    snprintf(net->tls_roots, sizeof(net->tls_roots), "%s/tls-roots.pem", net->dir);
    fp = fopen(net->tls_roots, "wb");
    if (fp) {
      fwrite(roots.data, 1, roots.len, fp);
      fclose(fp);
      fp = NULL;
    }
    fl_sbuf_free(&roots);
    fl_sbuf_free(&one);
  }
  net->ca_files[0] = net->tls_roots;
  for (int k = 0; k < 2; k++)
    net->tls[k] = (fl_tls_config_t){.cert_file = net->client[k].tls_cert,
                                    .key_file = net->client[k].tls_key,
                                    .ca_files = net->ca_files, .n_ca_files = 1,
                                    .server_name = "127.0.0.1"};
  {
    fl_sbuf_t gb = {0};
    fl_block_t *g = NULL;
    fl_netconfig_t *nc = NULL;
    p = fl_sprintf("%s/genesis.block", net->dir);
    rc = fl_file_read(p, FILE_MAX, &gb);
    if (rc == FL_OK) rc = fl_block_decode(gb.data, gb.len, &g, NULL);
    if (rc == FL_OK) rc = fl_genesis_decode(g, &nc, NULL);
    if (rc == FL_OK) rc = fl_netconfig_msp_new(nc, &net->msp, NULL);
    for (int i = 0; rc == FL_OK && i < PN_NORD; i++) {
      const fl_net_orderer_t *od = fl_netconfig_orderer(nc, (uint32_t)i);
      fl_cert_t *c = NULL;
      if (fl_cert_from_pem(od->identity_cert.data, od->identity_cert.len, &c) == FL_OK) {
        fl_sbuf_t kp = {0};
        fl_verifier_to_pem(fl_cert_pubkey(c), &kp);
        fl_verifier_from_pem(kp.data, kp.len, &net->overif[i]);
        fl_sbuf_free(&kp);
      }
      fl_cert_free(c);
    }
    fl_netconfig_free(nc);
    fl_block_free(g);
    fl_sbuf_free(&gb);
    fl_free(p);
    p = NULL;
    if (rc < 0) {
      fprintf(stderr, "harness: genesis block unreadable: %s\n", fl_status_str(rc));
      goto fail;
    }
  }
  *out = net;
  return FL_OK;
fail:
  if (fp) fclose(fp);
  fl_free(p);
  pn_net_free(net);
  return rc < 0 ? rc : FL_EIO;
}

static void rm_rf(const char *dir) {
  char *argv[] = {"/bin/rm", "-rf", UNCONST(char *, dir), NULL};
  run_wait(argv, "/dev/null");
}

void pn_net_free(pn_net_t *net) {
  if (net == NULL) return;
  for (int i = 0; i < PN_NPEER; i++) kill_pid(&net->ppid[i]);
  for (int i = 0; i < PN_NORD; i++) kill_pid(&net->opid[i]);
  for (int k = 0; k < 4; k++)
    if (g_nets[k] == net) g_nets[k] = NULL;
  if (!net->keep && net->dir[0]) rm_rf(net->dir);
  else if (net->dir[0]) fprintf(stderr, "harness: kept %s\n", net->dir);
  for (int k = 0; k < 2; k++) {
    fl_signer_free(net->client[k].key);
    fl_sbuf_free(&net->client[k].id);
  }
  for (int i = 0; i < PN_NPEER; i++) {
    fl_signer_free(net->peerid[i].key);
    fl_sbuf_free(&net->peerid[i].id);
  }
  for (int i = 0; i < PN_NORD; i++) fl_verifier_free(net->overif[i]);
  fl_msp_free(net->msp);
  fl_free(net);
}

static pid_t spawn(const char *bin, const char *cfg, const char *logp) {
  pid_t parent = getpid();
  pid_t p = fork();
  if (p < 0) return -1;
  if (p == 0) {
    /* Die with the test process, whatever kills it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(126);
    int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    char *argv[] = {UNCONST(char *, bin), "--config", UNCONST(char *, cfg), NULL};
    execv(argv[0], argv);
    _exit(127);
  }
  return p;
}

fl_status_t pn_start_orderer(pn_net_t *net, int i) {
  char bin[600], cfg[300], logp[300];
  const char *ob = getenv("FL_ORDERER_BIN"); /* test another orderer build */
  if (ob && ob[0]) snprintf(bin, sizeof(bin), "%s", ob);
  else snprintf(bin, sizeof(bin), "%s/fedledger-orderer", net->bin);
  snprintf(cfg, sizeof(cfg), "%s/orderer%d.yaml", net->dir, i);
  snprintf(logp, sizeof(logp), "%s/orderer%d.log", net->dir, i);
  net->opid[i] = spawn(bin, cfg, logp);
  return net->opid[i] > 0 ? FL_OK : FL_EIO;
}

fl_status_t pn_start_peer(pn_net_t *net, int i) { return pn_start_peer_cfg(net, i, NULL); }

fl_status_t pn_start_peer_cfg(pn_net_t *net, int i, const char *config) {
  char bin[600], cfg[300], logp[300];
  snprintf(bin, sizeof(bin), "%s/fedledger-peer", net->bin);
  if (config) snprintf(cfg, sizeof(cfg), "%s", config);
  else snprintf(cfg, sizeof(cfg), "%s/peer%d.yaml", net->dir, i);
  snprintf(logp, sizeof(logp), "%s/peer%d.log", net->dir, i);
  net->ppid[i] = spawn(bin, cfg, logp);
  return net->ppid[i] > 0 ? FL_OK : FL_EIO;
}

fl_status_t pn_signal_peer(pn_net_t *net, int i, int sig) {
  if (net->ppid[i] <= 0) return FL_ESTATE;
  if (kill(net->ppid[i], sig) != 0) return FL_EIO;
  if (sig == SIGKILL) {
    waitpid(net->ppid[i], NULL, 0);
    net->ppid[i] = 0;
  } else if (sig == SIGTERM) {
    uint64_t end = pn_now_ms() + 15000;
    int st = 0;
    while (pn_now_ms() < end) {
      if (waitpid(net->ppid[i], &st, WNOHANG) == net->ppid[i]) {
        net->ppid[i] = 0;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? FL_OK : FL_EINTERNAL;
      }
      pn_sleep_ms(20);
    }
    kill_pid(&net->ppid[i]);
    return FL_ETIMEDOUT;
  }
  return FL_OK;
}

static fl_rpc_client_opts_t copts(pn_net_t *net, uint16_t port, int org) {
  return (fl_rpc_client_opts_t){.host = "127.0.0.1", .port = port, .tls = &net->tls[org],
                                .max_frame = 64u << 20, .connect_timeout_ms = 2000};
}

fl_status_t pn_connect_peer(pn_net_t *net, int i, int org, fl_rpc_sync_t **out) {
  fl_rpc_client_opts_t o = copts(net, net->pport[i], org);
  return fl_rpc_sync_connect(&o, 3000, out, NULL);
}

fl_status_t pn_connect_orderer(pn_net_t *net, int i, fl_rpc_sync_t **out) {
  fl_rpc_client_opts_t o = copts(net, net->oport[i], 0);
  return fl_rpc_sync_connect(&o, 3000, out, NULL);
}

static void pack(const ProtobufCMessage *m, fl_sbuf_t *out) {
  out->len = 0;
  size_t n = protobuf_c_message_get_packed_size(m);
  fl_sbuf_reserve(out, n + 1);
  out->len = protobuf_c_message_pack(m, out->data);
}

fl_status_t pn_chain_info(fl_rpc_sync_t *s, uint64_t *height, uint8_t hash[32]) {
  fl_sbuf_t r = {0};
  fl_status_t rc = fl_rpc_sync_unary(s, "Peer/ChainInfo", (fl_buf_t){0}, 3000, &r, NULL);
  if (rc == FL_OK) {
    Fl__Peer__ChainInfo *ci = fl__peer__chain_info__unpack(NULL, r.len, r.data);
    if (ci == NULL) {
      rc = FL_EMALFORMED;
    } else {
      *height = ci->height;
      if (hash) {
        memset(hash, 0, 32);
        if (ci->current_block_hash.len == 32) memcpy(hash, ci->current_block_hash.data, 32);
      }
      fl__peer__chain_info__free_unpacked(ci, NULL);
    }
  }
  fl_sbuf_free(&r);
  return rc;
}

fl_status_t pn_wait_peer(pn_net_t *net, int i, uint32_t timeout_ms) {
  uint64_t end = pn_now_ms() + timeout_ms;
  while (pn_now_ms() < end) {
    int st = 0;
    if (net->ppid[i] > 0 && waitpid(net->ppid[i], &st, WNOHANG) == net->ppid[i]) {
      fprintf(stderr, "harness: peer %d exited early (status %d)\n", i, st);
      net->ppid[i] = 0;
      return FL_ECLOSED;
    }
    fl_rpc_sync_t *s = NULL;
    if (pn_connect_peer(net, i, 0, &s) == FL_OK) {
      uint64_t h = 0;
      fl_status_t rc = pn_chain_info(s, &h, NULL);
      fl_rpc_sync_close(s);
      if (rc == FL_OK) return FL_OK;
    }
    pn_sleep_ms(50);
  }
  return FL_ETIMEDOUT;
}

static int first_msg(void *arg, fl_buf_t msg) {
  (void)msg;
  *(bool *)arg = true;
  return 0;
}

/* A SignedSeekInfo by client 0 for [start, stop] (stop UINT64_MAX: follow). */
static void seek_request(pn_net_t *net, bool oldest, uint64_t start, uint64_t stop, bool fail,
                         fl_sbuf_t *req) {
  Fl__Orderer__SeekPosition sp, ep;
  fl__orderer__seek_position__init(&sp);
  fl__orderer__seek_position__init(&ep);
  sp.kind = oldest ? FL__ORDERER__SEEK_POSITION__KIND__OLDEST
                   : FL__ORDERER__SEEK_POSITION__KIND__SPECIFIED;
  sp.number = start;
  ep.kind = FL__ORDERER__SEEK_POSITION__KIND__SPECIFIED;
  ep.number = stop;
  Fl__Orderer__SeekInfo si;
  fl__orderer__seek_info__init(&si);
  si.start = &sp;
  si.stop = stop == UINT64_MAX ? NULL : &ep;
  si.behavior = fail ? FL__ORDERER__SEEK_INFO__BEHAVIOR__FAIL_IF_NOT_READY
                     : FL__ORDERER__SEEK_INFO__BEHAVIOR__BLOCK_UNTIL_READY;
  fl_sbuf_t sib = {0}, sig = {0};
  pack(&si.base, &sib);
  fl_signer_sign(net->client[0].key, sib.data, sib.len, &sig);
  Fl__Orderer__SignedSeekInfo ss;
  fl__orderer__signed_seek_info__init(&ss);
  ss.seek_info.data = sib.data;
  ss.seek_info.len = sib.len;
  ss.identity.data = net->client[0].id.data;
  ss.identity.len = net->client[0].id.len;
  ss.signature.data = sig.data;
  ss.signature.len = sig.len;
  pack(&ss.base, req);
  fl_sbuf_free(&sib);
  fl_sbuf_free(&sig);
}

fl_status_t pn_wait_orderer(pn_net_t *net, int i, uint32_t timeout_ms) {
  uint64_t end = pn_now_ms() + timeout_ms;
  fl_sbuf_t req = {0};
  seek_request(net, true, 0, 0, true, &req);
  fl_status_t rc = FL_ETIMEDOUT;
  while (pn_now_ms() < end) {
    fl_rpc_sync_t *s = NULL;
    if (pn_connect_orderer(net, i, &s) == FL_OK) {
      bool got = false;
      fl_status_t r = fl_rpc_sync_stream(s, "Orderer/Deliver", fl_sbuf_view(&req), 2000,
                                         first_msg, &got, NULL);
      fl_rpc_sync_close(s);
      if (r == FL_OK && got) {
        rc = FL_OK;
        break;
      }
    }
    pn_sleep_ms(50);
  }
  fl_sbuf_free(&req);
  return rc;
}

typedef struct dl_s {
  int (*cb)(void *arg, fl_buf_t block);
  void *arg;
} dl_t;

static int dl_msg(void *arg, fl_buf_t msg) {
  dl_t *d = arg;
  Fl__Orderer__DeliverResponse *r = fl__orderer__deliver_response__unpack(NULL, msg.len, msg.data);
  if (r == NULL) return 1;
  int rc = 0;
  if (r->type_case == FL__ORDERER__DELIVER_RESPONSE__TYPE_BLOCK) {
    fl_sbuf_t b = {0};
    pack(&r->block->base, &b);
    rc = d->cb(d->arg, fl_sbuf_view(&b));
    fl_sbuf_free(&b);
  } else if (r->status != 0) {
    rc = 1;
  }
  fl__orderer__deliver_response__free_unpacked(r, NULL);
  return rc;
}

fl_status_t pn_deliver(pn_net_t *net, fl_rpc_sync_t *s, uint64_t start, uint64_t stop,
                       int (*cb)(void *arg, fl_buf_t block), void *arg) {
  fl_sbuf_t req = {0};
  seek_request(net, false, start, stop, false, &req);
  dl_t d = {cb, arg};
  fl_status_t rc = fl_rpc_sync_stream(s, "Peer/Deliver", fl_sbuf_view(&req), 20000, dl_msg, &d,
                                      NULL);
  fl_sbuf_free(&req);
  return rc;
}

fl_status_t pn_start_all(pn_net_t *net) {
  for (int i = 0; i < PN_NORD; i++)
    if (pn_start_orderer(net, i) < 0) return FL_EIO;
  for (int i = 0; i < PN_NORD; i++)
    if (pn_wait_orderer(net, i, 20000) < 0) {
      fprintf(stderr, "harness: orderer %d not ready\n", i);
      return FL_ETIMEDOUT;
    }
  for (int i = 0; i < PN_NPEER; i++)
    if (pn_start_peer(net, i) < 0) return FL_EIO;
  for (int i = 0; i < PN_NPEER; i++)
    if (pn_wait_peer(net, i, 20000) < 0) {
      fprintf(stderr, "harness: peer %d not ready\n", i);
      return FL_ETIMEDOUT;
    }
  return FL_OK;
}

/* ------------------------------------------------------------- clients */

fl_status_t pn_proposal(pn_net_t *net, int org, const char *cc, const char *const *args,
                        fl_sbuf_t *sp, char txid[FL_TXID_HEX_LEN + 1]) {
  fl_buf_t a[16];
  size_t n = 0;
  while (args[n] && n < 16) {
    a[n] = FL_BUF_STR(args[n]);
    n++;
  }
  fl_proposal_spec_t spec = {.channel = PN_CHANNEL, .creator = fl_sbuf_view(&net->client[org].id),
                             .chaincode = cc, .args = a, .n_args = n};
  return fl_proposal_build(&spec, net->client[org].key, sp, txid);
}

fl_status_t pn_gw_endorse(fl_rpc_sync_t *s, fl_buf_t sp, const char *txid, fl_sbuf_t *payload,
                          int *cc_status, fl_sbuf_t *cc_payload, char **err) {
  Fl__Peer__SignedProposal *p = fl__peer__signed_proposal__unpack(NULL, sp.len, sp.data);
  if (p == NULL) return FL_EMALFORMED;
  Fl__Peer__EndorseRequest er;
  fl__peer__endorse_request__init(&er);
  er.tx_id = UNCONST(char *, txid);
  er.proposed = p;
  fl_sbuf_t req = {0}, rep = {0};
  pack(&er.base, &req);
  fl__peer__signed_proposal__free_unpacked(p, NULL);
  char *e = NULL;
  fl_status_t rc = fl_rpc_sync_unary(s, "Gateway/Endorse", fl_sbuf_view(&req), 20000, &rep, &e);
  payload->len = 0;
  *cc_status = 0;
  if (rc == FL_OK) {
    Fl__Peer__EndorseResponse *r = fl__peer__endorse_response__unpack(NULL, rep.len, rep.data);
    if (r == NULL) {
      rc = FL_EMALFORMED;
    } else {
      if (r->result) {
        *cc_status = r->result->status;
        if (cc_payload) {
          cc_payload->len = 0;
          fl_sbuf_append(cc_payload, r->result->payload.data, r->result->payload.len);
        }
        if (r->result->status >= 400 && err && e == NULL) e = fl_strdup(r->result->message);
      }
      if (r->prepared) fl_sbuf_append(payload, r->prepared->payload.data, r->prepared->payload.len);
      fl__peer__endorse_response__free_unpacked(r, NULL);
    }
  }
  if (err) *err = e;
  else fl_free(e);
  fl_sbuf_free(&req);
  fl_sbuf_free(&rep);
  return rc;
}

fl_status_t pn_sign_envelope(pn_net_t *net, int org, fl_buf_t payload, fl_sbuf_t *env) {
  fl_sbuf_t sig = {0};
  fl_status_t rc = fl_signer_sign(net->client[org].key, payload.data, payload.len, &sig);
  if (rc == FL_OK) {
    Fl__Common__Envelope e;
    fl__common__envelope__init(&e);
    e.payload.data = UNCONST(uint8_t *, payload.data);
    e.payload.len = payload.len;
    e.signature.data = sig.data;
    e.signature.len = sig.len;
    pack(&e.base, env);
  }
  fl_sbuf_free(&sig);
  return rc;
}

fl_status_t pn_gw_submit(fl_rpc_sync_t *s, fl_buf_t env, const char *txid, char **err) {
  Fl__Common__Envelope *e = fl__common__envelope__unpack(NULL, env.len, env.data);
  if (e == NULL) return FL_EMALFORMED;
  Fl__Peer__SubmitRequest sr;
  fl__peer__submit_request__init(&sr);
  sr.tx_id = UNCONST(char *, txid);
  sr.prepared = e;
  fl_sbuf_t req = {0}, rep = {0};
  pack(&sr.base, &req);
  fl__common__envelope__free_unpacked(e, NULL);
  fl_status_t rc = fl_rpc_sync_unary(s, "Gateway/Submit", fl_sbuf_view(&req), 20000, &rep, err);
  fl_sbuf_free(&req);
  fl_sbuf_free(&rep);
  return rc;
}

/* A SignedCommitStatusRequest for txid naming `identity`, signed by key
 * (NULL: no signature); corrupt flips a bit of the signature. */
static void status_request_as(fl_buf_t identity, const fl_signer_t *key, bool corrupt,
                              const char *txid, fl_sbuf_t *out) {
  Fl__Peer__CommitStatusRequest r;
  fl__peer__commit_status_request__init(&r);
  r.tx_id = UNCONST(char *, txid);
  r.identity.data = UNCONST(uint8_t *, identity.data);
  r.identity.len = identity.len;
  fl_sbuf_t rb = {0}, sig = {0};
  pack(&r.base, &rb);
  if (key != NULL) fl_signer_sign(key, rb.data, rb.len, &sig);
  if (corrupt && sig.len > 8) sig.data[sig.len - 4] ^= 0x10;
  Fl__Peer__SignedCommitStatusRequest sr;
  fl__peer__signed_commit_status_request__init(&sr);
  sr.request.data = rb.data;
  sr.request.len = rb.len;
  sr.signature.data = sig.data;
  sr.signature.len = sig.len;
  pack(&sr.base, out);
  fl_sbuf_free(&rb);
  fl_sbuf_free(&sig);
}

static void status_request(pn_net_t *net, int org, const char *txid, fl_sbuf_t *out) {
  status_request_as(fl_sbuf_view(&net->client[org].id), net->client[org].key, false, txid, out);
}

static fl_status_t parse_status(fl_buf_t rep, int *code, uint64_t *block) {
  Fl__Peer__CommitStatusResponse *r =
      fl__peer__commit_status_response__unpack(NULL, rep.len, rep.data);
  if (r == NULL) return FL_EMALFORMED;
  *code = (int)r->result;
  *block = r->block_number;
  fl__peer__commit_status_response__free_unpacked(r, NULL);
  return FL_OK;
}

fl_status_t pn_gw_status(pn_net_t *net, fl_rpc_sync_t *s, int org, const char *txid,
                         uint32_t timeout_ms, int *code, uint64_t *block, char **err) {
  fl_sbuf_t req = {0}, rep = {0};
  status_request(net, org, txid, &req);
  fl_status_t rc =
      fl_rpc_sync_unary(s, "Gateway/CommitStatus", fl_sbuf_view(&req), timeout_ms, &rep, err);
  if (rc == FL_OK) rc = parse_status(fl_sbuf_view(&rep), code, block);
  fl_sbuf_free(&req);
  fl_sbuf_free(&rep);
  return rc;
}

fl_status_t pn_gw_status_as(fl_rpc_sync_t *s, fl_buf_t identity, const fl_signer_t *key,
                            bool corrupt, const char *txid, uint32_t timeout_ms, int *code,
                            uint64_t *block, char **err) {
  fl_sbuf_t req = {0}, rep = {0};
  status_request_as(identity, key, corrupt, txid, &req);
  fl_status_t rc =
      fl_rpc_sync_unary(s, "Gateway/CommitStatus", fl_sbuf_view(&req), timeout_ms, &rep, err);
  if (rc == FL_OK) rc = parse_status(fl_sbuf_view(&rep), code, block);
  fl_sbuf_free(&req);
  fl_sbuf_free(&rep);
  return rc;
}

fl_status_t pn_invoke_sp(pn_net_t *net, fl_rpc_sync_t *s, int org, fl_buf_t sp, const char *txid,
                         int *code) {
  fl_sbuf_t pl = {0}, env = {0};
  char *err = NULL;
  int cs = 0;
  uint64_t blk = 0;
  fl_status_t rc = pn_gw_endorse(s, sp, txid, &pl, &cs, NULL, &err);
  if (rc == FL_OK && (cs >= 400 || pl.len == 0)) rc = FL_EPERM;
  if (rc == FL_OK) rc = pn_sign_envelope(net, org, fl_sbuf_view(&pl), &env);
  if (rc == FL_OK) rc = pn_gw_submit(s, fl_sbuf_view(&env), txid, &err);
  if (rc == FL_OK) rc = pn_gw_status(net, s, org, txid, 30000, code, &blk, &err);
  if (rc != FL_OK) fprintf(stderr, "harness: invoke: %s: %s\n", fl_status_name(rc), err ? err : "");
  fl_free(err);
  fl_sbuf_free(&pl);
  fl_sbuf_free(&env);
  return rc;
}

fl_status_t pn_invoke(pn_net_t *net, fl_rpc_sync_t *s, int org, const char *cc,
                      const char *const *args, int *code, char txid[FL_TXID_HEX_LEN + 1]) {
  fl_sbuf_t sp = {0};
  fl_status_t rc = pn_proposal(net, org, cc, args, &sp, txid);
  if (rc == FL_OK) rc = pn_invoke_sp(net, s, org, fl_sbuf_view(&sp), txid, code);
  fl_sbuf_free(&sp);
  return rc;
}

fl_status_t pn_get_blob(fl_rpc_sync_t *s, const uint8_t hash[32], fl_sbuf_t *out) {
  Fl__Peer__GetBlobRequest r;
  fl__peer__get_blob_request__init(&r);
  r.hash.data = UNCONST(uint8_t *, hash);
  r.hash.len = 32;
  fl_sbuf_t req = {0}, rep = {0};
  pack(&r.base, &req);
  fl_status_t rc = fl_rpc_sync_unary(s, "Peer/GetBlob", fl_sbuf_view(&req), 5000, &rep, NULL);
  if (rc == FL_OK) {
    Fl__Peer__GetBlobResponse *g = fl__peer__get_blob_response__unpack(NULL, rep.len, rep.data);
    if (g == NULL) {
      rc = FL_EMALFORMED;
    } else {
      out->len = 0;
      fl_sbuf_append(out, g->data.data, g->data.len);
      fl__peer__get_blob_response__free_unpacked(g, NULL);
    }
  }
  fl_sbuf_free(&req);
  fl_sbuf_free(&rep);
  return rc;
}

fl_status_t pn_gw_evaluate(pn_net_t *net, fl_rpc_sync_t *s, int org, const char *cc,
                           const char *const *args, int *cc_status, fl_sbuf_t *payload) {
  fl_sbuf_t sp = {0}, req = {0}, rep = {0};
  char txid[FL_TXID_HEX_LEN + 1];
  fl_status_t rc = pn_proposal(net, org, cc, args, &sp, txid);
  Fl__Peer__SignedProposal *p =
      rc == FL_OK ? fl__peer__signed_proposal__unpack(NULL, sp.len, sp.data) : NULL;
  if (p == NULL) rc = FL_EMALFORMED;
  if (rc == FL_OK) {
    Fl__Peer__EvaluateRequest er;
    fl__peer__evaluate_request__init(&er);
    er.tx_id = txid;
    er.proposed = p;
    pack(&er.base, &req);
    rc = fl_rpc_sync_unary(s, "Gateway/Evaluate", fl_sbuf_view(&req), 20000, &rep, NULL);
  }
  if (p) fl__peer__signed_proposal__free_unpacked(p, NULL);
  if (rc == FL_OK) {
    Fl__Peer__EvaluateResponse *r = fl__peer__evaluate_response__unpack(NULL, rep.len, rep.data);
    if (r == NULL || r->result == NULL) {
      rc = FL_EMALFORMED;
    } else {
      *cc_status = r->result->status;
      payload->len = 0;
      fl_sbuf_append(payload, r->result->payload.data, r->result->payload.len);
    }
    if (r) fl__peer__evaluate_response__free_unpacked(r, NULL);
  }
  fl_sbuf_free(&sp);
  fl_sbuf_free(&req);
  fl_sbuf_free(&rep);
  return rc;
}

fl_status_t pn_peer_endorse(fl_rpc_sync_t *s, fl_buf_t sp, fl_sbuf_t *resp) {
  resp->len = 0;
  return fl_rpc_sync_unary(s, "Peer/Endorse", sp, 20000, resp, NULL);
}

fl_status_t pn_broadcast(fl_rpc_sync_t *s, fl_buf_t env, fl_status_t *st, char **info) {
  fl_sbuf_t rep = {0};
  fl_status_t rc = fl_rpc_sync_unary(s, "Orderer/Broadcast", env, 10000, &rep, NULL);
  if (info) *info = NULL;
  if (rc == FL_OK) {
    Fl__Orderer__BroadcastResponse *r =
        fl__orderer__broadcast_response__unpack(NULL, rep.len, rep.data);
    if (r == NULL) {
      rc = FL_EMALFORMED;
    } else {
      *st = (fl_status_t)r->status;
      if (info && r->info) *info = fl_strdup(r->info);
      fl__orderer__broadcast_response__free_unpacked(r, NULL);
    }
  }
  fl_sbuf_free(&rep);
  return rc;
}

fl_status_t pn_get_block(fl_rpc_sync_t *s, uint64_t number, fl_sbuf_t *out) {
  Fl__Peer__GetBlockRequest r;
  fl__peer__get_block_request__init(&r);
  r.number = number;
  fl_sbuf_t req = {0};
  pack(&r.base, &req);
  out->len = 0;
  fl_status_t rc = fl_rpc_sync_unary(s, "Peer/GetBlock", fl_sbuf_view(&req), 5000, out, NULL);
  fl_sbuf_free(&req);
  return rc;
}

fl_status_t pn_get_tx(fl_rpc_sync_t *s, const char *txid, int *code, uint64_t *block) {
  Fl__Peer__GetTransactionRequest r;
  fl__peer__get_transaction_request__init(&r);
  r.tx_id = UNCONST(char *, txid);
  fl_sbuf_t req = {0}, rep = {0};
  pack(&r.base, &req);
  fl_status_t rc = fl_rpc_sync_unary(s, "Peer/GetTransaction", fl_sbuf_view(&req), 5000, &rep,
                                     NULL);
  if (rc == FL_OK) {
    Fl__Peer__ProcessedTransaction *pt =
        fl__peer__processed_transaction__unpack(NULL, rep.len, rep.data);
    if (pt == NULL) {
      rc = FL_EMALFORMED;
    } else {
      *code = (int)pt->validation_code;
      *block = pt->block_num;
      fl__peer__processed_transaction__free_unpacked(pt, NULL);
    }
  }
  fl_sbuf_free(&req);
  fl_sbuf_free(&rep);
  return rc;
}

fl_status_t pn_wait_height(pn_net_t *net, int i, uint64_t h, uint32_t timeout_ms) {
  uint64_t end = pn_now_ms() + timeout_ms;
  fl_rpc_sync_t *s = NULL;
  fl_status_t rc = FL_ETIMEDOUT;
  while (pn_now_ms() < end) {
    if (s == NULL && pn_connect_peer(net, i, 0, &s) != FL_OK) s = NULL;
    uint64_t cur = 0;
    if (s && pn_chain_info(s, &cur, NULL) == FL_OK) {
      if (cur >= h) {
        rc = FL_OK;
        break;
      }
    } else if (s) {
      fl_rpc_sync_close(s);
      s = NULL;
    }
    pn_sleep_ms(50);
  }
  fl_rpc_sync_close(s);
  return rc;
}

/* ------------------------------------------------------------ load driver */

typedef struct ld_s ld_t;

typedef struct ltx_s {
  ld_t *ld;
  int gw;      /* index into ld->cl */
  int org;
  char txid[FL_TXID_HEX_LEN + 1];
  fl_sbuf_t sp, env;
} ltx_t;

struct ld_s {
  pn_net_t *net;
  uv_loop_t loop;
  fl_rpc_client_t *cl[PN_NPEER];
  int gws[PN_NPEER], ngw;
  const char *prefix;
  uint32_t n, started, finished, inflight, maxin;
  uint32_t valid, failed;
  fl_status_t conn_rc;
};

static void ld_next(ld_t *ld);

static void ltx_done(ltx_t *t, bool ok, const char *what, fl_status_t st, const char *err) {
  ld_t *ld = t->ld;
  if (ok) {
    ld->valid++;
  } else {
    if (ld->failed < 5)
      fprintf(stderr, "harness: load tx %s failed at %s: %s %s\n", t->txid, what,
              fl_status_name(st), err ? err : "");
    ld->failed++;
  }
  ld->finished++;
  ld->inflight--;
  fl_sbuf_free(&t->sp);
  fl_sbuf_free(&t->env);
  fl_free(t);
  ld_next(ld);
}

static void on_status(void *arg, fl_status_t st, const char *err, fl_buf_t rep) {
  ltx_t *t = arg;
  int code = -1;
  uint64_t blk = 0;
  if (st == FL_OK && parse_status(rep, &code, &blk) != FL_OK) st = FL_EMALFORMED;
  if (st == FL_OK && code != 0) {
    char m[64];
    snprintf(m, sizeof(m), "code %d", code);
    ltx_done(t, false, "commit", FL_ECONFLICT, m);
    return;
  }
  ltx_done(t, st == FL_OK, "commit status", st, err);
}

static void on_submit(void *arg, fl_status_t st, const char *err, fl_buf_t rep) {
  ltx_t *t = arg;
  (void)rep;
  if (st != FL_OK) {
    ltx_done(t, false, "submit", st, err);
    return;
  }
  fl_sbuf_t req = {0};
  status_request(t->ld->net, t->org, t->txid, &req);
  fl_status_t rc = fl_rpc_client_unary(t->ld->cl[t->gw], "Gateway/CommitStatus",
                                       fl_sbuf_view(&req), 40000, on_status, t, NULL);
  fl_sbuf_free(&req);
  if (rc != FL_OK) ltx_done(t, false, "commit status call", rc, NULL);
}

static void on_endorse(void *arg, fl_status_t st, const char *err, fl_buf_t rep) {
  ltx_t *t = arg;
  if (st != FL_OK) {
    ltx_done(t, false, "endorse", st, err);
    return;
  }
  Fl__Peer__EndorseResponse *r = fl__peer__endorse_response__unpack(NULL, rep.len, rep.data);
  if (r == NULL || r->prepared == NULL) {
    ltx_done(t, false, "endorse", FL_EPERM,
             r && r->result ? r->result->message : "no prepared transaction");
    if (r) fl__peer__endorse_response__free_unpacked(r, NULL);
    return;
  }
  fl_status_t rc = pn_sign_envelope(t->ld->net, t->org,
                                    FL_BUF(r->prepared->payload.data, r->prepared->payload.len),
                                    &t->env);
  fl__peer__endorse_response__free_unpacked(r, NULL);
  if (rc != FL_OK) {
    ltx_done(t, false, "sign", rc, NULL);
    return;
  }
  Fl__Common__Envelope *e = fl__common__envelope__unpack(NULL, t->env.len, t->env.data);
  Fl__Peer__SubmitRequest sr;
  fl__peer__submit_request__init(&sr);
  sr.tx_id = t->txid;
  sr.prepared = e;
  fl_sbuf_t req = {0};
  pack(&sr.base, &req);
  fl__common__envelope__free_unpacked(e, NULL);
  rc = fl_rpc_client_unary(t->ld->cl[t->gw], "Gateway/Submit", fl_sbuf_view(&req), 20000,
                           on_submit, t, NULL);
  fl_sbuf_free(&req);
  if (rc != FL_OK) ltx_done(t, false, "submit call", rc, NULL);
}

static void ld_next(ld_t *ld) {
  while (ld->started < ld->n && ld->inflight < ld->maxin) {
    uint32_t k = ld->started++;
    ltx_t *t = fl_calloc(1, sizeof(*t));
    t->ld = ld;
    t->gw = (int)(k % (uint32_t)ld->ngw);
    t->org = ld->net->porg[ld->gws[t->gw]];
    ld->inflight++;
    char key[96], val[64];
    snprintf(key, sizeof(key), "%s%u", ld->prefix, k);
    snprintf(val, sizeof(val), "v%u", k);
    const char *args[] = {"put", key, val, NULL};
    fl_status_t rc = pn_proposal(ld->net, t->org, "kvstore", args, &t->sp, t->txid);
    Fl__Peer__SignedProposal *p =
        rc == FL_OK ? fl__peer__signed_proposal__unpack(NULL, t->sp.len, t->sp.data) : NULL;
    if (p == NULL) {
      ltx_done(t, false, "proposal", rc, NULL);
      continue;
    }
    Fl__Peer__EndorseRequest er;
    fl__peer__endorse_request__init(&er);
    er.tx_id = t->txid;
    er.proposed = p;
    fl_sbuf_t req = {0};
    pack(&er.base, &req);
    fl__peer__signed_proposal__free_unpacked(p, NULL);
    rc = fl_rpc_client_unary(ld->cl[t->gw], "Gateway/Endorse", fl_sbuf_view(&req), 20000,
                             on_endorse, t, NULL);
    fl_sbuf_free(&req);
    if (rc != FL_OK) ltx_done(t, false, "endorse call", rc, NULL);
  }
  if (ld->finished == ld->n) {
    for (int i = 0; i < ld->ngw; i++)
      if (ld->cl[i]) {
        fl_rpc_client_close(ld->cl[i], NULL, NULL);
        ld->cl[i] = NULL;
      }
  }
}

fl_status_t pn_load(pn_net_t *net, const int *gws, int ngw, const char *prefix, uint32_t n,
                    uint32_t inflight, uint32_t *valid, uint32_t *failed) {
  ld_t *ld = fl_calloc(1, sizeof(*ld));
  ld->net = net;
  ld->ngw = ngw;
  ld->prefix = prefix;
  ld->n = n;
  ld->maxin = inflight;
  uv_loop_init(&ld->loop);
  fl_status_t rc = FL_OK;
  for (int i = 0; i < ngw; i++) {
    ld->gws[i] = gws[i];
    fl_rpc_client_opts_t o = copts(net, net->pport[gws[i]], net->porg[gws[i]]);
    if ((rc = fl_rpc_client_new(&ld->loop, &o, &ld->cl[i], NULL)) < 0) break;
  }
  if (rc == FL_OK) {
    if (n == 0) ld->finished = 0;
    ld_next(ld);
  }
  for (int i = 0; i < ngw; i++)
    if (ld->cl[i] && (rc < 0 || n == 0)) {
      fl_rpc_client_close(ld->cl[i], NULL, NULL);
      ld->cl[i] = NULL;
    }
  uv_run(&ld->loop, UV_RUN_DEFAULT);
  uv_loop_close(&ld->loop);
  *valid = ld->valid;
  *failed = ld->failed + (ld->n - ld->finished);
  fl_free(ld);
  return rc;
}

int pn_log_count(pn_net_t *net, int i, const char *needle) {
  char path[300];
  snprintf(path, sizeof(path), "%s/peer%d.log", net->dir, i);
  FILE *fp = fopen(path, "r");
  if (fp == NULL) return -1;
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof(line), fp)) n += strstr(line, needle) != NULL;
  fclose(fp);
  return n;
}

void pn_diagnose(pn_net_t *net) {
  for (int i = 0; i < PN_NPEER; i++) {
    int n = pn_log_count(net, i, "data hash does not match");
    if (n > 0)
      fprintf(stderr,
              "harness: peer %d refused %d orderer blocks whose data_hash is not the one of "
              "docs/protocol.md section 4 (SHA-256 over u32be(len) || envelope...): the orderer "
              "build is out of date or wrong; set FL_ORDERER_BIN to test another build\n",
              i, n);
    n = pn_log_count(net, i, "orderer served a bad block");
    if (n > 0) fprintf(stderr, "harness: peer %d logged %d bad blocks (see %s/peer%d.log)\n", i, n,
                       net->dir, i);
  }
}

fl_status_t pn_smoke(pn_net_t *net, uint32_t timeout_ms) {
  fl_rpc_sync_t *s = NULL;
  fl_status_t rc = pn_connect_peer(net, 0, 0, &s);
  fl_sbuf_t sp = {0}, pl = {0}, env = {0};
  char txid[FL_TXID_HEX_LEN + 1], *err = NULL;
  int cs = 0, code = -1;
  uint64_t blk = 0;
  const char *args[] = {"put", "smoke", "1", NULL};
  if (rc == FL_OK) rc = pn_proposal(net, 0, "kvstore", args, &sp, txid);
  if (rc == FL_OK) rc = pn_gw_endorse(s, fl_sbuf_view(&sp), txid, &pl, &cs, NULL, &err);
  if (rc == FL_OK && (cs >= 400 || pl.len == 0)) rc = FL_EPERM;
  if (rc == FL_OK) rc = pn_sign_envelope(net, 0, fl_sbuf_view(&pl), &env);
  if (rc == FL_OK) rc = pn_gw_submit(s, fl_sbuf_view(&env), txid, &err);
  if (rc == FL_OK) rc = pn_gw_status(net, s, 0, txid, timeout_ms, &code, &blk, &err);
  if (rc == FL_OK && code != 0) rc = FL_ECONFLICT;
  if (rc != FL_OK) {
    fprintf(stderr, "harness: the network does not commit a transaction: %s %s (code %d)\n",
            fl_status_name(rc), err ? err : "", code);
    pn_diagnose(net);
  }
  fl_free(err);
  fl_sbuf_free(&sp);
  fl_sbuf_free(&pl);
  fl_sbuf_free(&env);
  fl_rpc_sync_close(s);
  return rc;
}
