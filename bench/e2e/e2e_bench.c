/* SPDX-License-Identifier: Apache-2.0
 *
 * e2e_bench.c: `bench/run e2e`: end-to-end transactions through gateway
 * peers, measured from the client: each transaction is a kvstore put
 * (unique key, so nothing conflicts) submitted with fl_client_submit and
 * waited for with Gateway/CommitStatus; its latency is from the submit call
 * to the commit status. C connections spread round-robin over the given
 * gateways (one per organisation in the standard setup) keep N transactions
 * in flight each, all on one libuv loop, for S seconds; then the program
 * stops submitting, lets what is in flight finish, and prints a summary.
 *
 * In-flight depth: 4 x 16 by default saturates the 2-core test network;
 * beyond saturation more in flight only adds queueing (Little's law: the
 * p50 of a closed loop at saturation is about inflight / throughput), so
 * the default is the smallest depth that reaches full throughput. With
 * --rate R the load is open instead: R tx/s are offered whatever the
 * latency, which measures latency at a given load.
 *
 * With --start the summary also splits the CPU time of the network's
 * processes per committed transaction (peers, their chaincode workers,
 * orderers, this client; from /proc/<pid>/stat over the measured window)
 * and says how busy the whole machine was: other programs sharing the
 * cores change tx/s, the CPU cost per transaction much less.
 *
 * Output: one JSON line per second ({"bench":"e2e","t":..,"tx_per_s":..})
 * on stdout, a human summary on stderr, and, last, the JSON summary with
 * tx_per_s (valid commits per second of the measured window), p50_ms,
 * p99_ms, max_ms (submit to commit status of valid commits), invalid
 * (committed with a code other than VALID), errors, and first_error.
 *
 * The network is given by flags (see usage()), or, with --start, launched
 * here with the peer's integration harness (tests/integration/peer/harness.h:
 * 4 fedledger-orderer + peer0 of Org1 and Org2, kvstore, policy
 * AND('Org1MSP.peer','Org2MSP.peer')) and killed, by PID, at the end.
 */
#include <ctype.h>
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <uv.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/client/client.h"
#include "common/client/identity.h"
#ifdef FL_E2E_HARNESS
#include "tests/integration/peer/harness.h"
#endif

#define MAX_GATEWAYS 16
#define VALUE_LEN 32

typedef struct gateway_s {
  char *host;
  uint16_t port;
  char *mspid;
  char *dir;                       /* cryptogen user folder: msp/ and tls/ */
  fl_client_identity_t *id;
  fl_client_tls_t *tls;
} gateway_t;

typedef struct conn_s conn_t;

/* CPU accounting (--start only): the processes of each role. */
enum { R_PEERS, R_CHAINCODE, R_ORDERERS, R_CLIENT, R_COUNT };
static const char *const role_names[R_COUNT] = {"peers", "chaincode", "orderers", "client"};

typedef struct cpu_snap_s {
  uint64_t role_ticks[R_COUNT]; /* utime + stime, clock ticks */
  uint64_t busy, total;         /* /proc/stat, all CPUs, ticks */
  bool ok;
} cpu_snap_t;

typedef struct bench_s {
  uv_loop_t loop;
  uv_timer_t tick;
  gateway_t gws[MAX_GATEWAYS];
  int n_gws;
  conn_t *conns;
  int n_conns;
  const char *channel, *chaincode;
  int seconds, inflight;
  bool plaintext;
  uint32_t commit_timeout_ms;
  uint64_t t0, t_end;               /* mono ns */
  double rate;                      /* --rate: tx/s offered in total; 0 = closed loop */
  uv_timer_t pace;
  int rr;                           /* next connection (rate mode) */
  pid_t ord_pids[8], peer_pids[8];  /* --start: what to account CPU to */
  int n_ord_pids, n_peer_pids;
  cpu_snap_t cpu0, cpu1;
  bool stopping;
  int elapsed_s;
  /* counters */
  uint64_t submitted, valid, valid_in_window, invalid, errors, last_valid;
  uint32_t *lat_us;                 /* latencies of valid commits */
  size_t n_lat, cap_lat;
  char first_error[256];
  int closed;
} bench_t;

typedef struct txctx_s {
  conn_t *conn;
  uint64_t t_submit;
} txctx_t;

struct conn_s {
  bench_t *b;
  int index;
  fl_client_t *c;
  bool ready, failed;
  uint64_t seq;
  int inflight;
};

static void usage(void) {
  fprintf(stderr,
          "usage: e2e_bench [--seconds S] [--clients C] [--inflight N]\n"
          "                 (--gateway HOST:PORT=MSPID:IDENTITY_DIR ... |\n"
          "                  --network PKI_DIR --peers HOST:PORT[,HOST:PORT...])\n"
          "                 [--channel NAME] [--chaincode NAME] [--commit-timeout MS]\n"
          "                 [--rate TX_PER_S] [--plaintext] [--start [--batch-timeout D]]\n"
          "\n"
          "  --gateway   one gateway peer and the client identity to use with it;\n"
          "              IDENTITY_DIR is a cryptogen user folder holding msp/ and tls/.\n"
          "              Repeat it for each organisation (e.g. peer0 of Org1 and Org2).\n"
          "  --network   a cryptogen output folder (peerOrganizations/...); with\n"
          "              --peers, peer i uses client1 of org<i+1>.example.com,\n"
          "              MSP id Org<i+1>MSP.\n"
          "  --start     launch 4 orderers + peer0 of Org1 and Org2 (integration\n"
          "              harness, temp dir) and stop them at the end; the summary\n"
          "              then also gives the CPU time of each role per committed tx;\n"
          "              --batch-timeout sets its genesis pbft.batch_timeout (10ms).\n"
          "  --rate      open loop: offer this many tx/s in total (each connection\n"
          "              still holds at most --inflight); latency is then measured\n"
          "              at that load instead of at saturation.\n"
          "  defaults: --seconds 10 --clients 4 --inflight 16 --channel fedchannel\n"
          "            --chaincode kvstore --commit-timeout 30000\n");
  exit(2);
}

static void note_error(bench_t *b, const char *msg) {
  b->errors++;
  if (b->first_error[0] == '\0') snprintf(b->first_error, sizeof b->first_error, "%s", msg);
}

static void submit_one(conn_t *cn);

static void on_result(void *arg, const fl_client_result_t *r) {
  txctx_t *tx = arg;
  conn_t *cn = tx->conn;
  bench_t *b = cn->b;
  uint64_t now = fl_mono_ns();
  cn->inflight--;
  if (r->status == FL_OK && r->committed && r->code == FL_CLIENT_CODE_VALID) {
    b->valid++;
    if (now <= b->t_end) b->valid_in_window++;
    if (b->n_lat == b->cap_lat) {
      b->cap_lat = b->cap_lat ? b->cap_lat * 2 : 1 << 16;
      b->lat_us = fl_reallocarray(b->lat_us, b->cap_lat, sizeof *b->lat_us);
    }
    uint64_t us = (now - tx->t_submit) / 1000;
    b->lat_us[b->n_lat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
  } else if (r->committed) {
    b->invalid++;
  } else if (r->status != FL_ECANCELED || !b->stopping) {
    note_error(b, r->error);
  }
  fl_free(tx);
  if (!b->stopping && b->rate <= 0) submit_one(cn);
}

static void submit_one(conn_t *cn) {
  bench_t *b = cn->b;
  char key[64], value[VALUE_LEN + 1];
  snprintf(key, sizeof key, "e2e-%d-%llu", cn->index, (unsigned long long)cn->seq++);
  memset(value, 'v', VALUE_LEN);
  value[VALUE_LEN] = '\0';
  fl_buf_t args[3] = {FL_BUF_STR("put"), FL_BUF_STR(key), FL_BUF(value, VALUE_LEN)};
  fl_client_proposal_t p = {.chaincode = b->chaincode, .args = args, .n_args = 3};
  txctx_t *tx = fl_malloc(sizeof *tx);
  tx->conn = cn;
  tx->t_submit = fl_mono_ns();
  fl_status_t rc = fl_client_submit(cn->c, &p, true, on_result, tx, NULL);
  if (rc != FL_OK) {
    fl_free(tx);
    char msg[128];
    snprintf(msg, sizeof msg, "submit refused: %s", fl_status_str(rc));
    note_error(b, msg);
    cn->failed = true;
    return;
  }
  b->submitted++;
  cn->inflight++;
}

static void on_connect(fl_client_t *c, fl_status_t st, void *arg) {
  (void)c;
  conn_t *cn = arg;
  if (st != FL_OK) {
    char msg[160];
    snprintf(msg, sizeof msg, "connection %d: %s", cn->index, fl_status_str(st));
    note_error(cn->b, msg);
    cn->failed = true;
    return;
  }
  cn->ready = true;
}

static void on_closed(fl_client_t *c, void *arg) {
  (void)c;
  ((bench_t *)arg)->closed++;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_ms(const uint32_t *sorted, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return sorted[i] / 1000.0;
}

static size_t total_inflight(const bench_t *b) {
  size_t n = 0;
  for (int i = 0; i < b->n_conns; i++) n += (size_t)b->conns[i].inflight;
  return n;
}

/* ------------------------------------------------------------ CPU usage */

/* utime + stime (ticks) and the parent of process pid from
 * /proc/<pid>/stat; false when it is gone. */
static bool proc_stat(pid_t pid, uint64_t *ticks, pid_t *ppid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return false;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* comm may hold spaces and parens */
  if (p == NULL) return false;
  /* after ") ": field 3 state, 4 ppid, ..., 14 utime, 15 stime */
  unsigned long long v[16] = {0};
  char state;
  int got = sscanf(p + 2, "%c %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &state,
                   &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13],
                   &v[14], &v[15]);
  if (got != 13) return false;
  if (ticks) *ticks = v[14] + v[15];
  if (ppid) *ppid = (pid_t)v[4];
  return true;
}

static void cpu_snapshot(const bench_t *b, cpu_snap_t *s) {
  memset(s, 0, sizeof *s);
  uint64_t t = 0;
  for (int i = 0; i < b->n_ord_pids; i++)
    if (proc_stat(b->ord_pids[i], &t, NULL)) s->role_ticks[R_ORDERERS] += t;
  for (int i = 0; i < b->n_peer_pids; i++)
    if (proc_stat(b->peer_pids[i], &t, NULL)) s->role_ticks[R_PEERS] += t;
  if (proc_stat(getpid(), &t, NULL)) s->role_ticks[R_CLIENT] = t;
  /* chaincode workers: children of the peers */
  DIR *d = opendir("/proc");
  struct dirent *de;
  while (d != NULL && (de = readdir(d)) != NULL) {
    if (!isdigit((unsigned char)de->d_name[0])) continue;
    pid_t pid = (pid_t)atoi(de->d_name), pp = 0;
    if (!proc_stat(pid, &t, &pp)) continue;
    for (int i = 0; i < b->n_peer_pids; i++)
      if (pp == b->peer_pids[i]) s->role_ticks[R_CHAINCODE] += t;
  }
  if (d) closedir(d);
  FILE *f = fopen("/proc/stat", "r");
  unsigned long long v[8] = {0};
  if (f != NULL && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                          &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
    for (int i = 0; i < 8; i++) s->total += v[i];
    s->busy = s->total - v[3] - v[4]; /* minus idle and iowait */
    s->ok = true;
  }
  if (f) fclose(f);
}

/* ---------------------------------------------------------- open loop */

/* --rate: every millisecond, submit what the schedule says is due, round
 * robin over the connections, none above --inflight. */
static void on_pace(uv_timer_t *t) {
  bench_t *b = t->data;
  if (b->stopping) {
    uv_timer_stop(t);
    return;
  }
  double due = b->rate * (double)(fl_mono_ns() - b->t0) / 1e9;
  while ((double)b->submitted < due) {
    conn_t *cn = NULL;
    for (int k = 0; k < b->n_conns && cn == NULL; k++) {
      conn_t *c = &b->conns[(b->rr + k) % b->n_conns];
      if (c->ready && !c->failed && c->inflight < b->inflight) cn = c;
    }
    if (cn == NULL) break; /* every connection at its cap: the offered load is too high */
    b->rr = (cn->index + 1) % b->n_conns;
    uint64_t before = b->submitted;
    submit_one(cn);
    if (b->submitted == before) break;
  }
}

static void on_tick(uv_timer_t *t) {
  bench_t *b = t->data;
  b->elapsed_s++;
  if (!b->stopping) {
    uint64_t d = b->valid - b->last_valid;
    b->last_valid = b->valid;
    printf("{\"bench\":\"e2e\",\"t\":%d,\"tx_per_s\":%llu,\"committed\":%llu,\"invalid\":%llu,"
           "\"errors\":%llu,\"inflight\":%zu}\n",
           b->elapsed_s, (unsigned long long)d, (unsigned long long)b->valid,
           (unsigned long long)b->invalid, (unsigned long long)b->errors, total_inflight(b));
    fflush(stdout);
  }
  bool all_failed = true;
  for (int i = 0; i < b->n_conns; i++) all_failed = all_failed && b->conns[i].failed;
  if (!b->stopping && (b->elapsed_s >= b->seconds || all_failed)) {
    b->stopping = true;
    b->t_end = fl_mono_ns();
    cpu_snapshot(b, &b->cpu1);
  }
  /* drain: wait for what is in flight, at most the commit timeout */
  if (b->stopping &&
      (total_inflight(b) == 0 ||
       fl_mono_ns() - b->t_end > (uint64_t)b->commit_timeout_ms * 1000000ull + 1000000000ull)) {
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    uv_timer_stop(&b->pace);
    uv_close((uv_handle_t *)&b->pace, NULL);
    for (int i = 0; i < b->n_conns; i++) fl_client_close(b->conns[i].c, on_closed, b);
  }
}

/* The first tick starts submitting once connections are ready. */
static void on_start(uv_timer_t *t) {
  bench_t *b = t->data;
  bool pending = false;
  for (int i = 0; i < b->n_conns; i++)
    pending = pending || (!b->conns[i].ready && !b->conns[i].failed);
  if (pending) return; /* try again at the next 10 ms */
  uv_timer_stop(t);
  cpu_snapshot(b, &b->cpu0);
  b->t0 = fl_mono_ns();
  b->t_end = b->t0 + (uint64_t)b->seconds * 1000000000ull;
  if (b->rate > 0) {
    uv_timer_start(&b->pace, on_pace, 0, 1);
  } else {
    for (int i = 0; i < b->n_conns; i++)
      for (int k = 0; k < b->inflight && b->conns[i].ready && !b->conns[i].failed; k++)
        submit_one(&b->conns[i]);
  }
  uv_timer_start(t, on_tick, 1000, 1000);
}

static int parse_hostport(const char *s, char **host, uint16_t *port) {
  const char *colon = strrchr(s, ':');
  if (colon == NULL || colon == s) return -1;
  long p = strtol(colon + 1, NULL, 10);
  if (p <= 0 || p > 65535) return -1;
  *host = fl_strndup(s, (size_t)(colon - s));
  *port = (uint16_t)p;
  return 0;
}

/* HOST:PORT=MSPID:DIR */
static int parse_gateway(const char *spec, gateway_t *g) {
  const char *eq = strchr(spec, '=');
  if (eq == NULL) return -1;
  char *hp = fl_strndup(spec, (size_t)(eq - spec));
  int rc = parse_hostport(hp, &g->host, &g->port);
  fl_free(hp);
  const char *colon = strchr(eq + 1, ':');
  if (rc != 0 || colon == NULL || colon == eq + 1 || colon[1] == '\0') return -1;
  g->mspid = fl_strndup(eq + 1, (size_t)(colon - eq - 1));
  g->dir = fl_strdup(colon + 1);
  return 0;
}

static int load_gateway(gateway_t *g, bool plaintext) {
  char *err = NULL;
  char *msp = fl_sprintf("%s/msp", g->dir), *tls = fl_sprintf("%s/tls", g->dir);
  fl_status_t rc = fl_client_identity_load_msp(g->mspid, msp, &g->id, &err);
  if (rc == FL_OK && !plaintext) rc = fl_client_tls_load_dir(tls, g->host, &g->tls, &err);
  if (rc != FL_OK) fprintf(stderr, "e2e: %s: %s\n", g->dir, err ? err : fl_status_str(rc));
  fl_free(err);
  fl_free(msp);
  fl_free(tls);
  return rc == FL_OK ? 0 : -1;
}

int main(int argc, char **argv) {
  (void)fl_log_configure("warn");
  (void)fl_log_configure_from_env();
  bench_t b = {.channel = "fedchannel", .chaincode = "kvstore", .seconds = 10, .inflight = 16,
               .commit_timeout_ms = 30000};
  int clients = 4;
  const char *network = NULL, *peers = NULL;
  bool start = false;
  const char *batch_timeout = NULL; /* --start: genesis pbft.batch_timeout */
  enum { O_GATEWAY = 1000, O_NETWORK, O_PEERS, O_CHANNEL, O_CHAINCODE, O_CTO, O_PLAIN, O_START,
         O_RATE, O_BATCH_TIMEOUT };
  static const struct option longopts[] = {
      {"seconds", required_argument, NULL, 's'},
      {"clients", required_argument, NULL, 'c'},
      {"inflight", required_argument, NULL, 'n'},
      {"gateway", required_argument, NULL, O_GATEWAY},
      {"network", required_argument, NULL, O_NETWORK},
      {"peers", required_argument, NULL, O_PEERS},
      {"channel", required_argument, NULL, O_CHANNEL},
      {"chaincode", required_argument, NULL, O_CHAINCODE},
      {"commit-timeout", required_argument, NULL, O_CTO},
      {"plaintext", no_argument, NULL, O_PLAIN},
      {"start", no_argument, NULL, O_START},
      {"rate", required_argument, NULL, O_RATE},
      {"batch-timeout", required_argument, NULL, O_BATCH_TIMEOUT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int ch;
  while ((ch = getopt_long(argc, argv, "s:c:n:h", longopts, NULL)) != -1) {
    switch (ch) {
    case 's': b.seconds = atoi(optarg); break;
    case 'c': clients = atoi(optarg); break;
    case 'n': b.inflight = atoi(optarg); break;
    case O_GATEWAY:
      if (b.n_gws == MAX_GATEWAYS || parse_gateway(optarg, &b.gws[b.n_gws]) != 0) {
        fprintf(stderr, "e2e: bad --gateway %s\n", optarg);
        return 2;
      }
      b.n_gws++;
      break;
    case O_NETWORK: network = optarg; break;
    case O_PEERS: peers = optarg; break;
    case O_CHANNEL: b.channel = optarg; break;
    case O_CHAINCODE: b.chaincode = optarg; break;
    case O_CTO: b.commit_timeout_ms = (uint32_t)atoi(optarg); break;
    case O_PLAIN: b.plaintext = true; break;
    case O_START: start = true; break;
    case O_RATE: b.rate = atof(optarg); break;
    case O_BATCH_TIMEOUT: batch_timeout = optarg; break;
    default: usage();
    }
  }
  if (b.seconds <= 0 || clients <= 0 || b.inflight <= 0 || b.rate < 0) usage();
  if (network != NULL && peers != NULL) {
    char *list = fl_strdup(peers), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok && b.n_gws < MAX_GATEWAYS;
         tok = strtok_r(NULL, ",", &save)) {
      gateway_t *g = &b.gws[b.n_gws];
      int org = b.n_gws + 1;
      if (parse_hostport(tok, &g->host, &g->port) != 0) {
        fprintf(stderr, "e2e: bad peer %s\n", tok);
        return 2;
      }
      g->mspid = fl_sprintf("Org%dMSP", org);
      g->dir = fl_sprintf("%s/peerOrganizations/org%d.example.com/users/client1@org%d.example.com",
                          network, org, org);
      b.n_gws++;
    }
    fl_free(list);
  }
#ifdef FL_E2E_HARNESS
  pn_net_t *net = NULL;
  if (start && b.n_gws == 0) {
    if (getenv("FL_SOURCE_DIR") == NULL) setenv("FL_SOURCE_DIR", FL_E2E_SOURCE_DIR, 1);
    const char *bin = getenv("FL_PEER_BIN_DIR") ? getenv("FL_PEER_BIN_DIR") : FL_E2E_BIN_DIR;
    pn_opts_t po = {.log = "warn", .batch_timeout = batch_timeout};
    if (pn_net_new(&po, bin, FL_E2E_KVSTORE_SO, FL_E2E_COUNTER_SO, &net) != FL_OK) return 1;
    fl_status_t rc = FL_OK;
    for (int i = 0; i < PN_NORD && rc == FL_OK; i++) rc = pn_start_orderer(net, i);
    /* peer0 of each organisation: the first peer of each org */
    int chosen[2] = {-1, -1};
    for (int i = 0; i < PN_NPEER; i++)
      if (chosen[net->porg[i]] < 0) chosen[net->porg[i]] = i;
    for (int k = 0; k < 2 && rc == FL_OK; k++) rc = pn_start_peer(net, chosen[k]);
    for (int i = 0; i < PN_NORD && rc == FL_OK; i++) rc = pn_wait_orderer(net, i, 30000);
    for (int k = 0; k < 2 && rc == FL_OK; k++) rc = pn_wait_peer(net, chosen[k], 30000);
    if (rc != FL_OK) {
      fprintf(stderr, "e2e: the network did not start: %s (files in %s)\n", fl_status_str(rc),
                      net->dir);
      pn_net_free(net);
      return 1;
    }
    b.channel = PN_CHANNEL;
    for (int i = 0; i < PN_NORD; i++) b.ord_pids[b.n_ord_pids++] = net->opid[i];
    for (int k = 0; k < 2; k++) b.peer_pids[b.n_peer_pids++] = net->ppid[chosen[k]];
    for (int k = 0; k < 2; k++) {
      gateway_t *g = &b.gws[b.n_gws++];
      g->host = fl_strdup("127.0.0.1");
      g->port = net->pport[chosen[k]];
      g->mspid = fl_sprintf("Org%dMSP", k + 1);
      g->dir = fl_sprintf("%s/pki/peerOrganizations/org%d.example.com/users/client1@org%d.example.com",
                          net->dir, k + 1, k + 1);
    }
    fprintf(stderr, "e2e: network up in %s (peers on %u and %u)\n", net->dir, b.gws[0].port,
            b.gws[1].port);
  }
#else
  (void)batch_timeout;
  if (start) {
    fprintf(stderr, "e2e: --start needs the integration harness (configure with BUILD_TESTS=ON)\n");
    return 2;
  }
#endif
  if (b.n_gws == 0) {
    fprintf(stderr, "e2e: no gateway given (--gateway, --network with --peers, or --start)\n");
    usage();
  }
  for (int i = 0; i < b.n_gws; i++)
    if (load_gateway(&b.gws[i], b.plaintext) != 0) return 1;

  if (uv_loop_init(&b.loop) != 0) return 1;
  b.n_conns = clients;
  b.conns = fl_calloc((size_t)clients, sizeof *b.conns);
  for (int i = 0; i < clients; i++) {
    gateway_t *g = &b.gws[i % b.n_gws];
    conn_t *cn = &b.conns[i];
    cn->b = &b;
    cn->index = i;
    fl_client_opts_t o = {.host = g->host, .port = g->port,
                          .tls = b.plaintext ? NULL : fl_client_tls_config(g->tls),
                          .channel = b.channel, .commit_timeout_ms = b.commit_timeout_ms,
                          .on_connect = on_connect, .arg = cn};
    char *err = NULL;
    if (fl_client_new(&b.loop, &o, g->id, &cn->c, &err) != FL_OK) {
      fprintf(stderr, "e2e: connection %d: %s\n", i, err ? err : "?");
      return 1;
    }
  }
  uv_timer_init(&b.loop, &b.tick);
  b.tick.data = &b;
  uv_timer_init(&b.loop, &b.pace);
  b.pace.data = &b;
  uv_timer_start(&b.tick, on_start, 10, 10);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  (void)uv_loop_close(&b.loop);

  double window = b.t_end > b.t0 ? (double)(b.t_end - b.t0) / 1e9 : 0;
  qsort(b.lat_us, b.n_lat, sizeof *b.lat_us, cmp_u32);
  double tps = window > 0 ? (double)b.valid_in_window / window : 0;
  double p50 = pct_ms(b.lat_us, b.n_lat, 0.50), p99 = pct_ms(b.lat_us, b.n_lat, 0.99);
  double mx = b.n_lat ? b.lat_us[b.n_lat - 1] / 1000.0 : 0;
  fprintf(stderr,
          "e2e: %d gateway(s), %d connection(s) x %d in flight, %.1f s\n"
          "     submitted %llu, valid %llu, invalid %llu, errors %llu\n"
          "     %.0f tx/s committed valid; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
          b.n_gws, clients, b.inflight, window, (unsigned long long)b.submitted,
          (unsigned long long)b.valid, (unsigned long long)b.invalid,
          (unsigned long long)b.errors, tps, p50, p99, mx);
  if (b.first_error[0]) fprintf(stderr, "     first error: %s\n", b.first_error);
  /* CPU per committed tx, by role (--start), and how busy the machine was. */
  char cpu_json[512] = "";
  if (b.cpu0.ok && b.cpu1.ok && b.valid_in_window > 0) {
    double tick_ms = 1000.0 / (double)sysconf(_SC_CLK_TCK);
    double per[R_COUNT], total = 0;
    int off = snprintf(cpu_json, sizeof cpu_json, ",\"cpu_ms_per_tx\":{");
    fprintf(stderr, "     CPU per committed tx:");
    for (int r = 0; r < R_COUNT; r++) {
      per[r] = (double)(b.cpu1.role_ticks[r] - b.cpu0.role_ticks[r]) * tick_ms /
               (double)b.valid_in_window;
      total += per[r];
      off += snprintf(cpu_json + off, sizeof cpu_json - (size_t)off, "\"%s\":%.3f,",
                      role_names[r], per[r]);
      fprintf(stderr, " %s %.3f ms", role_names[r], per[r]);
    }
    double ours = 0, busy = (double)(b.cpu1.busy - b.cpu0.busy) * tick_ms / 1000.0;
    for (int r = 0; r < R_COUNT; r++)
      ours += (double)(b.cpu1.role_ticks[r] - b.cpu0.role_ticks[r]) * tick_ms / 1000.0;
    snprintf(cpu_json + off, sizeof cpu_json - (size_t)off,
             "\"total\":%.3f},\"cores_used\":%.2f,\"machine_busy_cores\":%.2f,\"cores\":%ld",
             total, window > 0 ? ours / window : 0, window > 0 ? busy / window : 0,
             sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(stderr, ", total %.3f ms\n     cores used by the network %.2f, machine busy %.2f of %ld\n",
            total, window > 0 ? ours / window : 0, window > 0 ? busy / window : 0,
            sysconf(_SC_NPROCESSORS_ONLN));
  }
  printf("{\"bench\":\"e2e\",\"seconds\":%.3f,\"gateways\":%d,\"clients\":%d,\"inflight\":%d,"
         "\"rate\":%.0f,\"submitted\":%llu,\"committed\":%llu,\"invalid\":%llu,\"errors\":%llu,"
         "\"tx_per_s\":%.1f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f%s,\"first_error\":\"",
         window, b.n_gws, clients, b.inflight, b.rate, (unsigned long long)b.submitted,
         (unsigned long long)b.valid, (unsigned long long)b.invalid,
         (unsigned long long)b.errors, tps, p50, p99, mx, cpu_json);
  for (const char *p = b.first_error; *p; p++) {
    if (*p == '"' || *p == '\\') putchar('\\');
    putchar((unsigned char)*p < 0x20 ? ' ' : *p);
  }
  printf("\"}\n");

  int status = b.valid > 0 ? 0 : 1;
#ifdef FL_E2E_HARNESS
  pn_net_free(net); /* kills what --start started, by PID */
#endif
  for (int i = 0; i < b.n_gws; i++) {
    fl_client_identity_free(b.gws[i].id);
    fl_client_tls_free(b.gws[i].tls);
    fl_free(b.gws[i].host);
    fl_free(b.gws[i].mspid);
    fl_free(b.gws[i].dir);
  }
  fl_free(b.conns);
  fl_free(b.lat_us);
  return status;
}
