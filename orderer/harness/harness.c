/* SPDX-License-Identifier: Apache-2.0
 *
 * harness.c: a loopback network of fedledger-orderer processes (harness.h).
 * _GNU_SOURCE is not needed; mkdtemp, kill and waitpid are POSIX.
 */
#include "orderer/harness/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/base/file.h"
#include "common/base/clock.h"
#include "common/crypto/msp.h"
#include "common/protoutil/block.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/genesis.h"
#include "common/crypto/hash.h"
#include "orderer/node/ab.h"

/* The processes of every live network, for the atexit hook. */
static fl_oh_net_t *g_nets[8];
static bool g_hooked;

static void kill_all(void) {
  for (size_t k = 0; k < 8; k++) {
    fl_oh_net_t *net = g_nets[k];
    if (net == NULL) continue;
    for (uint32_t i = 0; i < net->n; i++)
      if (net->pid[i] > 0) {
        kill(net->pid[i], SIGCONT);
        kill(net->pid[i], SIGKILL);
        waitpid(net->pid[i], NULL, 0);
        net->pid[i] = 0;
      }
  }
}

uint64_t fl_oh_now_ms(void) { return fl_mono_ns() / 1000000u; }

int fl_oh_http_get(fl_oh_net_t *net, uint32_t i, const char *path, fl_sbuf_t *out) {
  out->len = 0;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return 0;
  struct timeval tv = {.tv_sec = 10};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(net->ops_port[i]),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(s);
    return 0;
  }
  char req[256];
  int k = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  if (write(s, req, (size_t)k) != k) {
    close(s);
    return 0;
  }
  char buf[8192];
  ssize_t r;
  while ((r = read(s, buf, sizeof(buf))) > 0) fl_sbuf_append(out, buf, (size_t)r);
  close(s);
  int code = 0;
  if (sscanf(fl_sbuf_cstr(out), "HTTP/1.1 %d", &code) != 1) return 0;
  return code;
}

/* Files the harness reads whole (PEM, genesis, chaincode .so). */
#define FILE_MAX ((size_t)256 << 20)

/* A port nobody uses now, for a node to bind a moment later.
 *
 * Ports come from below the kernel's ephemeral range, so no outgoing
 * connection (ours or another test's) takes one between this pick and the
 * node's bind; a port from bind(0) is in that range and did get taken.
 * The range 10000..(ephemeral low) is cut into blocks of FL_PORT_SPAN ports
 * (default 200). A process owns block k while it holds flock() on
 * $TMPDIR/fedledger-ports/k.lock, so tests that ctest runs side by side, and
 * the demo or a benchmark beside them, never pick the same port; the kernel
 * drops the lock when the process ends, however it ends. scripts/demo/lib.sh
 * takes blocks the same way. FL_PORT_BASE names a block start outright.
 * Inside its block a process hands ports out in order and wraps around
 * (earlier cases' networks have been stopped by then). */
static bool port_bindable(uint16_t p) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return false;
  int one = 1;
  (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p),
                          .sin_addr.s_addr = htonl(INADDR_ANY)};
  bool ok = bind(s, (struct sockaddr *)&a, sizeof(a)) == 0;
  close(s);
  return ok;
}

/* The first block in [0, nblocks) whose lock file this process can hold;
 * the descriptor stays open (close-on-exec) for the process's lifetime. */
static int claim_port_block(unsigned nblocks) {
  const char *tmp = getenv("TMPDIR");
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/fedledger-ports", tmp != NULL && *tmp ? tmp : "/tmp");
  (void)mkdir(dir, 01777);
  for (unsigned k = 0; k < nblocks; k++) {
    snprintf(path, sizeof path, "%s/%u.lock", dir, k);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return (int)k;
    close(fd);
  }
  return -1;
}

uint16_t fl_oh_free_port(void) {
  static unsigned base, span, next;
  if (span == 0) {
    unsigned lo = 32768, hi;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
      if (fscanf(f, "%u %u", &lo, &hi) != 2) lo = 32768;
      fclose(f);
    }
    const char *sp = getenv("FL_PORT_SPAN"), *bs = getenv("FL_PORT_BASE");
    span = sp != NULL && atoi(sp) >= 16 ? (unsigned)atoi(sp) : 200;
    if (lo < 10000 + 2 * span) lo = 10000 + 2 * span;
    int k;
    if (bs != NULL && atoi(bs) > 1024 && atoi(bs) + span <= 65536)
      base = (unsigned)atoi(bs);
    else if ((k = claim_port_block((lo - 10000) / span)) >= 0)
      base = 10000 + (unsigned)k * span;
    else
      base = 10000 + (unsigned)(fl_mono_ns() ^ (uint64_t)getpid() * 2654435761u) %
                         (lo - 10000 - span);
  }
  for (unsigned tries = 0; tries < span; tries++) {
    uint16_t p = (uint16_t)(base + next);
    next = (next + 1) % span;
    if (port_bindable(p)) return p;
  }
  return 0;
}

static uint16_t free_port(void) { return fl_oh_free_port(); }

static int run_wait(char *const argv[], const char *logpath) {
  pid_t p = fork();
  if (p < 0) return -1;
  if (p == 0) {
    int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  if (waitpid(p, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Fills net->verifiers[i] with orderer i's public key from the genesis
 * block bytes (decoded and checked with common/protoutil). */
static fl_status_t genesis_verifiers(fl_oh_net_t *net, fl_buf_t gb) {
  fl_block_t *g = NULL;
  fl_netconfig_t *cfg = NULL;
  const char *why = "?";
  fl_status_t rc = fl_block_decode(gb.data, gb.len, &g, &why);
  if (rc == FL_OK) memcpy(net->genesis_hash, g->header_hash, 32);
  if (rc == FL_OK) rc = fl_genesis_decode(g, &cfg, &why);
  for (uint32_t i = 0; rc == FL_OK && i < net->n; i++) {
    const fl_net_orderer_t *o = fl_netconfig_orderer(cfg, i);
    fl_cert_t *c = NULL;
    fl_sbuf_t kp = {0};
    why = "orderer certificate";
    if (o == NULL) rc = FL_EMALFORMED;
    if (rc == FL_OK) rc = fl_cert_from_pem(o->identity_cert.data, o->identity_cert.len, &c);
    /* A verifier of our own: copy the public key through PEM. */
    if (rc == FL_OK) rc = fl_verifier_to_pem(fl_cert_pubkey(c), &kp);
    if (rc == FL_OK) rc = fl_verifier_from_pem(kp.data, kp.len, &net->verifiers[i]);
    fl_sbuf_free(&kp);
    fl_cert_free(c);
  }
  if (rc < 0) fprintf(stderr, "harness: genesis keys: %s (%s)\n", fl_status_name(rc), why);
  fl_netconfig_free(cfg);
  fl_block_free(g);
  return rc;
}

#define ORGDIR "%s/pki/ordererOrganizations/example.com"
#define ORDDIR ORGDIR "/orderers/orderer%u.example.com"

fl_status_t fl_oh_net_new(const fl_oh_opts_t *o, fl_oh_net_t **out) {
  *out = NULL;
  if (o->n < 4 || o->n > 4) {
    fprintf(stderr, "harness: the sample crypto-config has 4 orderers (n=%u)\n", o->n);
    return FL_EINVAL;
  }
  fl_oh_net_t *net = fl_calloc(1, sizeof(*net));
  fl_status_t rc = FL_EIO;
  fl_sbuf_t pem[8] = {{0}};
  fl_sbuf_t admin_pem = {0}, admin_id = {0}, cpem = {0}, gb = {0};
  fl_signer_t *admin = NULL;
  fl_block_t *g = NULL;
  char *p = NULL;
  net->n = o->n;
  net->f = (o->n - 1) / 3;
  net->keep = o->keep;
  const char *tmp = getenv("TMPDIR");
  snprintf(net->dir, sizeof(net->dir), "%s/fl-orderers-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(net->dir) == NULL) {
    perror("harness: mkdtemp");
    goto fail;
  }
  if (!g_hooked) {
    atexit(kill_all);
    g_hooked = true;
  }
  for (size_t k = 0; k < 8; k++)
    if (g_nets[k] == NULL) {
      g_nets[k] = net;
      break;
    }
  char bin_dir[400]; /* leaves room for the program names below */
  if (o->bin_dir) {
    snprintf(bin_dir, sizeof(bin_dir), "%s", o->bin_dir);
  } else {
    const char *b = getenv("FL_BINARY_DIR");
    snprintf(bin_dir, sizeof(bin_dir), "%s/bin", b ? b : "build");
  }
  snprintf(net->bin_orderer, sizeof(net->bin_orderer), "%s/fedledger-orderer", bin_dir);
  /* Crypto material. */
  {
    char cli[512], cfg[512], outd[512], logp[512];
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
  /* Organisations: orderer org + 2 peer orgs, PEM roots. */
  static const char *mspids[3] = {"OrdererMSP", "Org1MSP", "Org2MSP"};
  static const char *doms[3] = {"example.com", "org1.example.com", "org2.example.com"};
  fl_buf_t roots[3], tlsroots[3];
  fl_net_org_t orgs[3];
  for (int k = 0; k < 3; k++) {
    const char *kind = k == 0 ? "ordererOrganizations" : "peerOrganizations";
    p = fl_sprintf("%s/pki/%s/%s/ca/ca.%s-cert.pem", net->dir, kind, doms[k], doms[k]);
    if (fl_file_read(p, FILE_MAX, &pem[2 * k]) < 0) {
      fl_free(p);
      p = fl_sprintf("%s/pki/%s/%s/msp/cacerts/ca.%s-cert.pem", net->dir, kind, doms[k], doms[k]);
      if (fl_file_read(p, FILE_MAX, &pem[2 * k]) < 0) goto nofile;
    }
    fl_free(p);
    p = fl_sprintf("%s/pki/%s/%s/tlsca/tlsca.%s-cert.pem", net->dir, kind, doms[k], doms[k]);
    if (fl_file_read(p, FILE_MAX, &pem[2 * k + 1]) < 0) goto nofile;
    fl_free(p);
    p = NULL;
    roots[k] = fl_sbuf_view(&pem[2 * k]);
    tlsroots[k] = fl_sbuf_view(&pem[2 * k + 1]);
    orgs[k] = (fl_net_org_t){.mspid = mspids[k], .name = doms[k], .root_certs = &roots[k],
                             .n_root_certs = 1, .tls_root_certs = &tlsroots[k],
                             .n_tls_root_certs = 1, .is_orderer_org = k == 0};
  }
  /* Orderers. */
  fl_sbuf_t opem[FL_OH_MAXN] = {{0}};
  fl_net_orderer_t ords[FL_OH_MAXN];
  for (uint32_t i = 0; i < net->n; i++) {
    p = fl_sprintf(ORDDIR "/msp/signcerts/orderer%u.example.com-cert.pem", net->dir, i, i);
    if (fl_file_read(p, FILE_MAX, &opem[i]) < 0) goto nofile;
    fl_free(p);
    p = NULL;
    net->port[i] = free_port();
    ords[i] = (fl_net_orderer_t){.id = i, .mspid = "OrdererMSP", .host = "127.0.0.1",
                                 .port = net->port[i], .identity_cert = fl_sbuf_view(&opem[i])};
  }
  fl_netconfig_t cfg = {
      .channel = "flchannel", .orgs = orgs, .n_orgs = 3, .orderers = ords, .n_orderers = net->n,
      .pbft = {.n = net->n, .f = net->f,
               .batch_max_count = o->batch_max_count ? o->batch_max_count : 500,
               .batch_max_bytes = 4u << 20,
               .batch_timeout_ms = o->batch_timeout_ms ? o->batch_timeout_ms : 5,
               .checkpoint_interval = o->checkpoint_interval ? o->checkpoint_interval : 32,
               .watermark_window = 4 * (o->checkpoint_interval ? o->checkpoint_interval : 32),
               .view_change_timeout_ms = o->view_change_timeout_ms ? o->view_change_timeout_ms : 1000},
      .endorsement_policy = "MAJORITY",
      .max_message_bytes = FL_NETCONFIG_DEFAULT_MESSAGE_BYTES,
      .created_ms = (uint64_t)time(NULL) * 1000};
  /* The admin signs the genesis block. */
  p = fl_sprintf(ORGDIR "/users/Admin@example.com/msp/signcerts/Admin@example.com-cert.pem", net->dir);
  if (fl_file_read(p, FILE_MAX, &admin_pem) < 0) goto nofile;
  fl_free(p);
  p = fl_sprintf(ORGDIR "/users/Admin@example.com/msp/keystore/priv_sk", net->dir);
  if (fl_signer_load_file(p, &admin) < 0) goto nofile;
  fl_free(p);
  p = NULL;
  fl_msp_serialize_identity("OrdererMSP", admin_pem.data, admin_pem.len, &admin_id);
  const char *why = "?";
  rc = fl_genesis_build(&cfg, fl_sbuf_view(&admin_id), admin, &g, &why);
  for (uint32_t i = 0; i < net->n; i++) fl_sbuf_free(&opem[i]);
  if (rc < 0) {
    fprintf(stderr, "harness: genesis: %s (%s)\n", fl_status_name(rc), why);
    goto fail;
  }
  fl_block_encode(g, &gb);
  p = fl_sprintf("%s/genesis.block", net->dir);
  FILE *fp = fopen(p, "wb");
  if (fp == NULL || fwrite(gb.data, 1, gb.len, fp) != gb.len) {
    if (fp) fclose(fp);
    rc = FL_EIO;
    goto fail;
  }
  fclose(fp);
  fl_free(p);
  p = NULL;
  /* The orderers' block-signing keys, as any peer gets them: from the
   * genesis block's configuration. */
  if ((rc = genesis_verifiers(net, fl_sbuf_view(&gb))) < 0) goto fail;
  /* orderer.yaml per replica. */
  for (uint32_t i = 0; i < net->n; i++) {
    p = fl_sprintf("%s/orderer%u.yaml", net->dir, i);
    fp = fopen(p, "w");
    if (fp == NULL) {
      rc = FL_EIO;
      goto fail;
    }
    fprintf(fp,
            "general:\n  id: %u\n  data_dir: %s/data%u\n  genesis: %s/genesis.block\n"
            "  log: %s\nmsp:\n  dir: " ORDDIR "/msp\n"
            "tls:\n  enabled: true\n  cert: " ORDDIR "/tls/server.crt\n  key: " ORDDIR
            /* check_transaction off: the harness's envelopes carry be64(index)
             * padding, not endorsed Transactions (ordering is tested alone). */
            "/tls/server.key\nbroadcast:\n  verify: %s\n  check_transaction: false\n"
            "storage:\n  sync: %s\n",
            i, net->dir, i, net->dir, o->log ? o->log : "info", net->dir, i, net->dir, i,
            net->dir, i, o->verify ? "true" : "false", o->nosync ? "false" : "true");
    if (o->ops) {
      net->ops_port[i] = free_port();
      fprintf(fp, "operations:\n  host: 127.0.0.1\n  port: %u\n", (unsigned)net->ops_port[i]);
    }
    fputs("pbft:\n", fp);
    /* Unset: the orderer's defaults. */
    if (o->request_timeout) fprintf(fp, "  request_timeout: %s\n", o->request_timeout);
    if (o->max_inflight) fprintf(fp, "  max_inflight: %u\n", o->max_inflight);
    if (o->extra_yaml) fputs(o->extra_yaml, fp);
    fclose(fp);
    fl_free(p);
    p = NULL;
  }
  /* The client identity. */
#define CLI "%s/pki/peerOrganizations/org1.example.com/users/client1@org1.example.com"
  p = fl_sprintf(CLI "/msp/signcerts/client1@org1.example.com-cert.pem", net->dir);
  if (fl_file_read(p, FILE_MAX, &cpem) < 0) goto nofile;
  fl_free(p);
  p = fl_sprintf(CLI "/msp/keystore/priv_sk", net->dir);
  if (fl_signer_load_file(p, &net->client_key) < 0) goto nofile;
  fl_free(p);
  p = NULL;
  fl_msp_serialize_identity("Org1MSP", cpem.data, cpem.len, &net->client_id);
  snprintf(net->tls_cert, sizeof(net->tls_cert), CLI "/tls/client.crt", net->dir);
  snprintf(net->tls_key, sizeof(net->tls_key), CLI "/tls/client.key", net->dir);
  snprintf(net->tls_ca, sizeof(net->tls_ca), ORGDIR "/tlsca/tlsca.example.com-cert.pem", net->dir);
  net->ca_files[0] = net->tls_ca;
  net->tls = (fl_tls_config_t){.cert_file = net->tls_cert, .key_file = net->tls_key,
                               .ca_files = net->ca_files, .n_ca_files = 1,
                               .server_name = "127.0.0.1"};
  rc = FL_OK;
  goto done;
nofile:
  fprintf(stderr, "harness: missing file %s\n", p ? p : "?");
  rc = FL_NOTFOUND;
fail:
  if (rc == FL_OK) rc = FL_EIO;
done:
  fl_free(p);
  for (int k = 0; k < 8; k++) fl_sbuf_free(&pem[k]);
  fl_sbuf_free(&admin_pem);
  fl_sbuf_free(&admin_id);
  fl_sbuf_free(&cpem);
  fl_sbuf_free(&gb);
  fl_signer_free(admin);
  fl_block_free(g);
  if (rc < 0) fl_oh_net_free(net);
  else *out = net;
  return rc;
}

fl_status_t fl_oh_start(fl_oh_net_t *net, uint32_t i) {
  char cfg[512], logp[512];
  snprintf(cfg, sizeof(cfg), "%s/orderer%u.yaml", net->dir, i);
  snprintf(logp, sizeof(logp), "%s/orderer%u.log", net->dir, i);
  pid_t p = fork();
  if (p < 0) return FL_EIO;
  if (p == 0) {
    int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    char *argv[] = {net->bin_orderer, "--config", cfg, NULL};
    execv(argv[0], argv);
    _exit(127);
  }
  net->pid[i] = p;
  net->stopped[i] = false;
  return FL_OK;
}

static int ready_msg(void *arg, fl_buf_t msg) {
  (void)msg;
  *(bool *)arg = true;
  return 0;
}

fl_status_t fl_oh_wait_ready(fl_oh_net_t *net, uint32_t i, uint32_t timeout_ms) {
  uint64_t end = fl_oh_now_ms() + timeout_ms;
  fl_ab_seek_t s = {.start_kind = FL_AB_OLDEST, .has_stop = true, .stop_kind = FL_AB_SPECIFIED,
                    .stop = 0, .fail_if_not_ready = true};
  fl_sbuf_t req = {0};
  fl_ab_seek_encode(&s, fl_sbuf_view(&net->client_id), net->client_key, &req);
  fl_status_t rc = FL_ETIMEDOUT;
  while (fl_oh_now_ms() < end) {
    int st = 0;
    if (net->pid[i] > 0 && waitpid(net->pid[i], &st, WNOHANG) == net->pid[i]) {
      fprintf(stderr, "harness: orderer %u exited early (status %d)\n", i, st);
      net->pid[i] = 0;
      rc = FL_ECLOSED;
      break;
    }
    fl_rpc_client_opts_t o = fl_oh_client_opts(net, i);
    fl_rpc_sync_t *c = NULL;
    if (fl_rpc_sync_connect(&o, 1000, &c, NULL) == FL_OK) {
      bool got = false;
      fl_status_t r = fl_rpc_sync_stream(c, "Orderer/Deliver", fl_sbuf_view(&req), 2000,
                                         ready_msg, &got, NULL);
      fl_rpc_sync_close(c);
      if (r == FL_OK && got) {
        rc = FL_OK;
        break;
      }
    }
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
  fl_sbuf_free(&req);
  return rc;
}

fl_status_t fl_oh_signal(fl_oh_net_t *net, uint32_t i, int sig) {
  if (net->pid[i] <= 0) return FL_ESTATE;
  if (kill(net->pid[i], sig) != 0) return FL_EIO;
  if (sig == SIGSTOP) net->stopped[i] = true;
  if (sig == SIGCONT) net->stopped[i] = false;
  if (sig == SIGKILL) {
    waitpid(net->pid[i], NULL, 0);
    net->pid[i] = 0;
    return FL_OK;
  }
  if (sig == SIGTERM) {
    uint64_t end = fl_oh_now_ms() + 10000;
    while (fl_oh_now_ms() < end) {
      int st = 0;
      if (waitpid(net->pid[i], &st, WNOHANG) == net->pid[i]) {
        net->pid[i] = 0;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? FL_OK : FL_EINTERNAL;
      }
      struct timespec ts = {0, 20 * 1000000L};
      nanosleep(&ts, NULL);
    }
    kill(net->pid[i], SIGKILL);
    waitpid(net->pid[i], NULL, 0);
    net->pid[i] = 0;
    return FL_ETIMEDOUT;
  }
  return FL_OK;
}

static void rm_rf(const char *dir) {
  char *argv[] = {"/bin/rm", "-rf", (char *)(uintptr_t)dir, NULL};
  char logp[] = "/dev/null";
  run_wait(argv, logp);
}

void fl_oh_net_free(fl_oh_net_t *net) {
  if (net == NULL) return;
  for (uint32_t i = 0; i < net->n; i++)
    if (net->pid[i] > 0) {
      kill(net->pid[i], SIGCONT);
      kill(net->pid[i], SIGKILL);
      waitpid(net->pid[i], NULL, 0);
      net->pid[i] = 0;
    }
  for (size_t k = 0; k < 8; k++)
    if (g_nets[k] == net) g_nets[k] = NULL;
  if (!net->keep && net->dir[0]) rm_rf(net->dir);
  else if (net->dir[0]) fprintf(stderr, "harness: kept %s\n", net->dir);
  fl_signer_free(net->client_key);
  fl_sbuf_free(&net->client_id);
  for (uint32_t i = 0; i < FL_OH_MAXN; i++) fl_verifier_free(net->verifiers[i]);
  fl_free(net);
}

fl_rpc_client_opts_t fl_oh_client_opts(fl_oh_net_t *net, uint32_t i) {
  return (fl_rpc_client_opts_t){.host = "127.0.0.1", .port = net->port[i], .tls = &net->tls,
                                .max_frame = 64u << 20, .connect_timeout_ms = 2000};
}

fl_status_t fl_oh_envelope(fl_oh_net_t *net, uint64_t index, size_t size, fl_sbuf_t *out) {
  uint8_t buf[65536];
  if (size < 8) size = 8;
  if (size > sizeof(buf)) return FL_EINVAL;
  memset(buf, 0, size);
  fl_put_be64(buf, index);
  return fl_envelope_build(FL_HDR_ENDORSER_TX, "flchannel", fl_sbuf_view(&net->client_id),
                           net->client_key, FL_BUF(buf, size), out, NULL);
}

typedef struct envctx_s {
  uint64_t *idx;
  size_t cap, n;
  fl_status_t rc;
  const char *why;
} envctx_t;

static void each_env(void *arg, fl_buf_t env) {
  envctx_t *c = arg;
  fl_envelope_t *e = NULL;
  const char *why = "?";
  fl_status_t rc = fl_envelope_decode(env.data, env.len, &e, &why);
  if (rc < 0 && c->rc == FL_OK) {
    c->rc = rc;
    c->why = why;
  }
  if (rc == FL_OK && e->data.len >= 8 && c->n < c->cap) c->idx[c->n++] = fl_get_be64(e->data.data);
  fl_envelope_free(e);
}

fl_status_t fl_oh_deliver(fl_oh_net_t *net, fl_rpc_client_t *c, uint64_t start,
                          fl_rpc_msg_cb on_msg, fl_rpc_end_cb on_end, void *arg) {
  fl_ab_seek_t s = {.start_kind = FL_AB_SPECIFIED, .start = start};
  fl_sbuf_t req = {0};
  fl_ab_seek_encode(&s, fl_sbuf_view(&net->client_id), net->client_key, &req);
  fl_status_t rc = fl_rpc_client_stream(c, "Orderer/Deliver", fl_sbuf_view(&req), 0, on_msg,
                                        on_end, arg, NULL);
  fl_sbuf_free(&req);
  return rc;
}

/* ------------------------------------------------------------- reader */

#define READER_IDX 100000

static void reader_msg(void *arg, fl_buf_t msg) {
  fl_oh_reader_t *r = arg;
  bool isb = false;
  fl_buf_t blk;
  fl_status_t st;
  if (fl_ab_deliver_decode(msg, &isb, &blk, &st) != FL_OK) {
    fprintf(stderr, "FAIL reader %u: a DeliverResponse does not decode\n", r->id);
    exit(1);
  }
  if (!isb) return;
  static uint64_t idx[READER_IDX];
  fl_oh_block_t bi;
  const char *why = "?";
  fl_status_t rc = fl_oh_block_check(r->net, blk, r->hash[r->height], &bi, idx, READER_IDX, &why);
  if (rc != FL_OK || bi.number != r->height + 1 || bi.number >= r->cap) {
    fprintf(stderr, "FAIL reader %u: block %llu after %llu: %s (%s)\n", r->id,
            (unsigned long long)bi.number, (unsigned long long)r->height, fl_status_name(rc),
            rc == FL_OK ? "out of order or beyond the reader's capacity" : why);
    exit(1);
  }
  memcpy(r->hash[bi.number], bi.hash, 32);
  r->height = bi.number;
  r->envelopes += bi.nidx;
  if (r->on_block) r->on_block(r->arg, r, &bi, idx);
}

static void reader_end(void *arg, fl_status_t st, const char *err) {
  (void)arg;
  (void)st;
  (void)err;
}

void fl_oh_reader_init(fl_oh_reader_t *r, fl_oh_net_t *net, uint32_t id, uint64_t cap) {
  memset(r, 0, sizeof(*r));
  r->net = net;
  r->id = id;
  r->cap = cap;
  r->hash = fl_calloc(cap, 32);
  memcpy(r->hash[0], net->genesis_hash, 32);
}

fl_status_t fl_oh_reader_open(fl_oh_reader_t *r, uv_loop_t *loop) {
  fl_rpc_client_opts_t o = fl_oh_client_opts(r->net, r->id);
  char *err = NULL;
  fl_status_t rc = fl_rpc_client_new(loop, &o, &r->c, &err);
  fl_free(err);
  if (rc < 0) return rc;
  rc = fl_oh_deliver(r->net, r->c, r->height + 1, reader_msg, reader_end, r);
  if (rc < 0) fl_oh_reader_close(r);
  return rc;
}

void fl_oh_reader_close(fl_oh_reader_t *r) {
  if (r->c) fl_rpc_client_close(r->c, NULL, NULL);
  r->c = NULL;
}

void fl_oh_reader_free(fl_oh_reader_t *r) {
  fl_oh_reader_close(r);
  fl_free(r->hash);
  r->hash = NULL;
}

uint32_t fl_oh_shutdown(fl_oh_net_t *net, uv_loop_t *loop, fl_oh_reader_t *rd,
                        fl_rpc_client_t **bc, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    if (rd) fl_oh_reader_close(&rd[i]);
    if (bc && bc[i]) fl_rpc_client_close(bc[i], NULL, NULL);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uint32_t unclean = 0;
  for (uint32_t i = 0; i < net->n; i++)
    if (fl_oh_signal(net, i, SIGTERM) != FL_OK) unclean |= 1u << i;
  uv_loop_close(loop);
  return unclean;
}

uint64_t fl_oh_reader_diverge(const fl_oh_reader_t *a, const fl_oh_reader_t *b) {
  uint64_t h = a->height < b->height ? a->height : b->height;
  for (uint64_t k = 1; k <= h; k++)
    if (memcmp(a->hash[k], b->hash[k], 32) != 0) return k;
  return 0;
}

static void run_tick(uv_timer_t *t) { (void)t; }

bool fl_oh_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, uint32_t timeout_ms) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, run_tick, 20, 20);
  uint64_t end = fl_oh_now_ms() + timeout_ms;
  bool ok = false;
  while (!(ok = pred(arg)) && fl_oh_now_ms() < end) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

bool fl_oh_log_has(fl_oh_net_t *net, uint32_t i, const char *s) {
  char *p = fl_sprintf("%s/orderer%u.log", net->dir, i);
  FILE *fp = fopen(p, "r");
  fl_free(p);
  if (fp == NULL) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof(line), fp)) found = strstr(line, s) != NULL;
  fclose(fp);
  return found;
}

fl_status_t fl_oh_block_check(fl_oh_net_t *net, fl_buf_t block, const uint8_t *prev_hash,
                              fl_oh_block_t *out, uint64_t *idx, size_t cap, const char **why) {
  /* Exactly what a peer does (common/protoutil): decode (data hash over
   * u32be(len) || envelope, exact header bytes), 2f+1 orderer signatures
   * of SHA-256(header) with the genesis keys, the hash link. */
  fl_block_t *b = NULL;
  *why = "block does not decode";
  fl_status_t rc = fl_block_decode(block.data, block.len, &b, why);
  if (rc < 0) return rc;
  if (b->number > 0) {
    rc = fl_block_verify_signatures(b, (const fl_verifier_t *const *)net->verifiers, net->n,
                                    net->f, NULL, NULL, why);
    if (rc == FL_OK && prev_hash) rc = fl_block_check_link(b->number - 1, prev_hash, b, why);
  }
  envctx_t c = {.idx = idx, .cap = cap, .rc = FL_OK};
  for (size_t i = 0; rc == FL_OK && idx && i < b->n_envelopes; i++) each_env(&c, b->envelopes[i]);
  if (rc == FL_OK && c.rc < 0) {
    rc = c.rc;
    *why = c.why;
  }
  if (rc == FL_OK) {
    out->number = b->number;
    out->view = b->view;
    out->seq = b->seq;
    out->timestamp_ms = b->timestamp_ms;
    memcpy(out->hash, b->header_hash, 32);
    out->nidx = c.n;
  }
  fl_block_free(b);
  return rc;
}
