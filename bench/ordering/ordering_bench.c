/* SPDX-License-Identifier: Apache-2.0
 *
 * ordering_bench.c: throughput and broadcast-to-delivery latency of the
 * PBFT ordering service (`bench/run ordering`).
 *
 * Starts 4 fedledger-orderer processes on 127.0.0.1 with the orderer
 * harness (orderer/harness: crypto material, genesis, one orderer.yaml
 * each), pre-builds signed ENDORSER_TRANSACTION envelopes whose data is
 * be64(index) padded to --tx-size bytes (on two threads, before the clock
 * starts), then drives the orderers from C client connections (one libuv
 * loop, --clients connections spread over the four orderers, each with
 * --window Broadcast calls in flight, or paced at --rate envelopes/s) and
 * follows one Deliver stream (from replica 0) to time every envelope from
 * its Broadcast to the block that carries it. Blocks are scanned by hand
 * (protobuf field walk, no allocation) so that the client stays cheap.
 *
 * Output: JSON lines, one per second of the run ({"t":...,"tx_per_s":...})
 * and, last, the summary ({"bench":"ordering", ... "tx_per_s", "blocks_per_s",
 * "p50_ms", "p99_ms", ...}; bench/README.md lists every field). Everything
 * it started is killed by PID when it ends (harness), also on failure.
 *
 * Threads: the main loop; two envelope-building threads before the run.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "orderer/harness/harness.h"
#include "orderer/node/ab.h"

#define NREP 4
#define MAXCLI 64

typedef struct opts_s {
  double seconds, warmup;
  uint32_t tx_size, clients, batch, window;
  double rate; /* 0: closed loop */
  bool verify, sync, keep;
  const char *bin_dir;
  /* orderer.yaml broadcast.* overrides (NULL: the orderer's default), passed
   * to the orderers as FEDLEDGER_BROADCAST_* environment variables */
  const char *max_pending, *max_parked, *park_timeout;
  uint32_t call_timeout_ms;     /* per Broadcast call */
} opts_t;

typedef struct cli_s {
  fl_rpc_client_t *c;
  uint32_t replica, inflight;
} cli_t;

static opts_t g_o;
static fl_oh_net_t *g_net;
static uv_loop_t g_loop;
static cli_t g_cli[MAXCLI];
static fl_sbuf_t *g_env;
static uint64_t g_nenv, g_next;
static uint64_t *g_sent_us;     /* when broadcast, by index (0 = not sent) */
static float *g_lat_ms;         /* latency of envelopes sent in the window */
static uint64_t g_nlat, g_cap_lat;
static uint64_t g_t0_us, g_tw_us, g_tend_us; /* start, measured window start, end */
static uint64_t g_acked, g_refused, g_errors, g_delivered, g_blocks, g_blocks_w, g_del_w;
static uint64_t g_sec_tx, g_sec_blocks, g_sec_mark_us;
static float *g_sec_lat;
static uint64_t g_nsec_lat, g_cap_sec_lat;
static bool g_stop;
static fl_rpc_client_t *g_dl;
static uint64_t g_height;
static uint64_t g_env_bytes;
static double g_credit;         /* paced mode: envelopes we may send */
static uint64_t g_last_pace_us;
/* Envelopes refused with "busy, retry" (FL_AGAIN): sent again, first, once
 * RETRY_US has passed (the orderers' admission control). */
#define RETRY_US 100000
static uint64_t *g_retry, *g_retry_at;
static uint64_t g_rhead, g_rtail, g_rcap;

static uint64_t now_us(void) { return uv_hrtime() / 1000u; }

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "ordering_bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  if (g_net) {
    g_net->keep = g_o.keep;
    fl_oh_net_free(g_net);
  }
  exit(1);
}

/* ------------------------------------------------------ envelope pool */

typedef struct gen_s {
  uint64_t from, to;
  fl_status_t rc;
} gen_t;

static void *gen_main(void *arg) {
  gen_t *g = arg;
  for (uint64_t k = g->from; k < g->to && g->rc == FL_OK; k++)
    g->rc = fl_oh_envelope(g_net, k, g_o.tx_size, &g_env[k]);
  return NULL;
}

static void build_pool(void) {
  g_env = fl_calloc(g_nenv, sizeof(*g_env));
  g_sent_us = fl_calloc(g_nenv, sizeof(*g_sent_us));
  pthread_t th[2];
  gen_t g[2] = {{0, g_nenv / 2, FL_OK}, {g_nenv / 2, g_nenv, FL_OK}};
  for (int i = 0; i < 2; i++)
    if (pthread_create(&th[i], NULL, gen_main, &g[i]) != 0) die("pthread_create");
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 2; i++)
    if (g[i].rc != FL_OK) die("envelope build: %s", fl_status_name(g[i].rc));
  g_env_bytes = g_env[0].len;
}

/* -------------------------------------------------- block scanning */

static bool varint(const uint8_t *p, size_t n, size_t *off, uint64_t *v) {
  uint64_t r = 0;
  for (unsigned sh = 0; sh < 64 && *off < n; sh += 7) {
    uint8_t b = p[(*off)++];
    r |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

/* Finds length-delimited field `want` in a message; returns its bytes. */
static bool field(fl_buf_t m, uint32_t want, fl_buf_t *out) {
  size_t off = 0;
  while (off < m.len) {
    uint64_t tag, v;
    if (!varint(m.data, m.len, &off, &tag)) return false;
    switch (tag & 7) {
    case 0:
      if (!varint(m.data, m.len, &off, &v)) return false;
      break;
    case 1: off += 8; break;
    case 5: off += 4; break;
    case 2:
      if (!varint(m.data, m.len, &off, &v) || v > m.len - off) return false;
      if ((tag >> 3) == want) {
        *out = FL_BUF(m.data + off, (size_t)v);
        return true;
      }
      off += (size_t)v;
      break;
    default: return false;
    }
  }
  return false;
}

/* Calls fn(index) for every envelope of a Block. */
static bool scan_block(fl_buf_t blk, void (*fn)(uint64_t idx, uint64_t t), uint64_t t) {
  fl_buf_t data;
  if (!field(blk, 2, &data)) return true; /* no data: genesis or empty */
  size_t off = 0;
  while (off < data.len) {
    uint64_t tag, v;
    if (!varint(data.data, data.len, &off, &tag) || (tag & 7) != 2 ||
        !varint(data.data, data.len, &off, &v) || v > data.len - off)
      return false;
    fl_buf_t env = FL_BUF(data.data + off, (size_t)v), payload, d;
    off += (size_t)v;
    if ((tag >> 3) != 1) continue;
    if (!field(env, 1, &payload) || !field(payload, 2, &d) || d.len < 8) return false;
    fn(fl_get_be64(d.data), t);
  }
  return true;
}

/* ------------------------------------------------------------ stats */

static void lat_push(float **a, uint64_t *n, uint64_t *cap, float v) {
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 65536;
    *a = fl_reallocarray(*a, *cap, sizeof(**a));
  }
  (*a)[(*n)++] = v;
}

static int fcmp(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

static double pct(float *a, uint64_t n, double q) {
  if (n == 0) return 0;
  uint64_t k = (uint64_t)(q * (double)(n - 1) + 0.5);
  return a[k];
}

static void on_delivered(uint64_t idx, uint64_t t) {
  if (idx >= g_nenv || g_sent_us[idx] == 0) return;
  uint64_t s = g_sent_us[idx];
  g_sent_us[idx] = 0; /* once */
  g_delivered++;
  g_sec_tx++;
  float ms = (float)(t - s) / 1000.0f;
  lat_push(&g_sec_lat, &g_nsec_lat, &g_cap_sec_lat, ms);
  if (s >= g_tw_us && s < g_tend_us) {
    lat_push(&g_lat_ms, &g_nlat, &g_cap_lat, ms);
    g_del_w++;
  }
}

/* ---------------------------------------------------------- deliver */

static void dl_msg(void *arg, fl_buf_t msg) {
  (void)arg;
  bool isb = false;
  fl_buf_t blk;
  fl_status_t st;
  if (fl_ab_deliver_decode(msg, &isb, &blk, &st) != FL_OK) die("bad DeliverResponse");
  if (!isb) return;
  uint64_t t = now_us();
  if (!scan_block(blk, on_delivered, t)) die("block %llu does not scan",
                                             (unsigned long long)g_height + 1);
  g_height++;
  g_blocks++;
  g_sec_blocks++;
  if (t >= g_tw_us && t < g_tend_us) g_blocks_w++;
}

static void dl_end(void *arg, fl_status_t st, const char *err) {
  (void)arg;
  if (!g_stop) die("deliver stream ended: %s %s", fl_status_name(st), err ? err : "");
}

/* -------------------------------------------------------- broadcast */

static void pump(void);

typedef struct call_s {
  uint32_t cli;
  uint64_t idx;
} call_t;

static void retry_push(uint64_t idx) {
  if (g_rtail - g_rhead == g_rcap) {
    uint64_t ncap = g_rcap ? g_rcap * 2 : 4096;
    uint64_t *a = fl_calloc(ncap, sizeof(*a)), *b = fl_calloc(ncap, sizeof(*b));
    for (uint64_t k = g_rhead; k < g_rtail; k++) {
      a[k - g_rhead] = g_retry[k % g_rcap];
      b[k - g_rhead] = g_retry_at[k % g_rcap];
    }
    fl_free(g_retry);
    fl_free(g_retry_at);
    g_retry = a;
    g_retry_at = b;
    g_rtail -= g_rhead;
    g_rhead = 0;
    g_rcap = ncap;
  }
  g_retry[g_rtail % g_rcap] = idx;
  g_retry_at[g_rtail % g_rcap] = now_us() + RETRY_US;
  g_rtail++;
}

static void bc_cb(void *arg, fl_status_t st, const char *err, fl_buf_t reply) {
  call_t *c = arg;
  (void)err;
  g_cli[c->cli].inflight--;
  fl_status_t bs = st;
  if (st == FL_OK && fl_ab_broadcast_response_decode(reply, &bs, NULL) != FL_OK) bs = FL_EMALFORMED;
  if (bs == FL_OK || bs == FL_EEXIST) {
    g_acked++;
  } else if (bs == FL_AGAIN) {
    g_refused++;
    retry_push(c->idx);
  } else {
    g_errors++;
  }
  fl_free(c);
  pump();
}

/* Sends the next envelope (a due retry first) on client ci. */
static bool send_one(uint32_t ci) {
  uint64_t t = now_us(), k;
  bool retry = g_rhead < g_rtail && g_retry_at[g_rhead % g_rcap] <= t;
  if (retry) {
    k = g_retry[g_rhead % g_rcap];
  } else {
    if (g_next >= g_nenv) return false;
    k = g_next;
    g_sent_us[k] = t; /* latency counts from the first broadcast */
  }
  call_t *c = fl_malloc(sizeof(*c));
  c->cli = ci;
  c->idx = k;
  if (fl_rpc_client_unary(g_cli[ci].c, "Orderer/Broadcast", fl_sbuf_view(&g_env[k]),
                          g_o.call_timeout_ms, bc_cb,
                          c, NULL) != FL_OK) {
    if (!retry) g_sent_us[k] = 0;
    fl_free(c);
    return false;
  }
  if (retry) g_rhead++;
  else g_next++;
  g_cli[ci].inflight++;
  return true;
}

static void pump(void) {
  if (g_stop) return;
  uint64_t t = now_us();
  if (t >= g_tend_us) return;
  if (g_o.rate > 0) {
    g_credit += (double)(t - g_last_pace_us) * g_o.rate / 1e6;
    g_last_pace_us = t;
    if (g_credit > g_o.rate / 100 + 1) g_credit = g_o.rate / 100 + 1; /* 10 ms burst max */
  }
  for (bool any = true; any;) {
    any = false;
    for (uint32_t i = 0; i < g_o.clients; i++) {
      if (g_cli[i].inflight >= g_o.window) continue;
      if (g_o.rate > 0 && g_credit < 1) return;
      if (!send_one(i)) return;
      if (g_o.rate > 0) g_credit -= 1;
      any = true;
    }
  }
}

/* CPU time (user + system, seconds) of process pid (0: this one), from
 * /proc/<pid>/stat: a measure of the work per transaction that does not
 * depend on how much of the machine other processes take. -1 if unknown. */
static double proc_cpu_s(pid_t pid) {
  char path[64], buf[1024];
  if (pid == 0) snprintf(path, sizeof(path), "/proc/self/stat");
  else snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *fp = fopen(path, "r");
  if (fp == NULL) return -1;
  size_t k = fread(buf, 1, sizeof(buf) - 1, fp);
  fclose(fp);
  buf[k] = '\0';
  const char *p = strrchr(buf, ')'); /* after the command name */
  unsigned long long ut = 0, st = 0;
  if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                          &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of the orderers and of this client in the measured window. */
static double g_cpu_ord0, g_cpu_ord, g_cpu_cli0, g_cpu_cli;
static int g_cpu_state; /* 0 before the window, 1 in it, 2 after */

static double orderers_cpu_s(void) {
  double sum = 0;
  for (uint32_t i = 0; i < NREP; i++) {
    double c = proc_cpu_s(g_net->pid[i]);
    if (c < 0) return -1;
    sum += c;
  }
  return sum;
}

static void on_tick(uv_timer_t *tm) {
  (void)tm;
  pump();
  uint64_t t = now_us();
  if (g_cpu_state == 0 && t >= g_tw_us) {
    g_cpu_ord0 = orderers_cpu_s();
    g_cpu_cli0 = proc_cpu_s(0);
    g_cpu_state = 1;
  } else if (g_cpu_state == 1 && t >= g_tend_us) {
    double o = orderers_cpu_s(), c = proc_cpu_s(0);
    g_cpu_ord = o >= 0 && g_cpu_ord0 >= 0 ? o - g_cpu_ord0 : -1;
    g_cpu_cli = c >= 0 && g_cpu_cli0 >= 0 ? c - g_cpu_cli0 : -1;
    g_cpu_state = 2;
  }
  if (t >= g_sec_mark_us + 1000000) {
    double dt = (double)(t - g_sec_mark_us) / 1e6;
    if (g_nsec_lat) qsort(g_sec_lat, g_nsec_lat, sizeof(float), fcmp);
    printf("{\"t\":%.1f,\"tx_per_s\":%.0f,\"blocks_per_s\":%.1f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"sent\":%llu,\"acked\":%llu,\"refused\":%llu,\"errors\":%llu}\n",
           (double)(t - g_t0_us) / 1e6, (double)g_sec_tx / dt, (double)g_sec_blocks / dt,
           pct(g_sec_lat, g_nsec_lat, 0.5), pct(g_sec_lat, g_nsec_lat, 0.99),
           (unsigned long long)g_next, (unsigned long long)g_acked,
           (unsigned long long)g_refused, (unsigned long long)g_errors);
    fflush(stdout);
    g_sec_tx = g_sec_blocks = g_nsec_lat = 0;
    g_sec_mark_us = t;
  }
  /* Done: the window is over and what was sent in it is delivered (or 5 s
   * passed since the end). */
  bool drained = true;
  for (uint32_t i = 0; i < g_o.clients; i++)
    if (g_cli[i].inflight) drained = false;
  if (t >= g_tend_us && ((drained && g_delivered + g_errors >= g_next) ||
                         t >= g_tend_us + 5000000))
    uv_stop(&g_loop);
}

/* ---------------------------------------------------------------- main */

static void usage(void) {
  fprintf(stderr,
          "usage: ordering_bench [--seconds S] [--warmup S] [--tx-size B] [--clients C]\n"
          "                      [--batch N] [--window W] [--rate TX_PER_S] [--no-verify]\n"
          "                      [--sync] [--keep] [--bin-dir DIR] [--max-pending N]\n"
          "                      [--max-parked N] [--park-timeout DUR] [--call-timeout S]\n");
  exit(2);
}

static double num(const char *s, double lo, double hi, const char *what) {
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "ordering_bench: bad %s '%s'\n", what, s);
    usage();
  }
  return v;
}

int main(int argc, char **argv) {
  g_o = (opts_t){.seconds = 10, .warmup = 2, .tx_size = 256, .clients = 8, .batch = 500,
                 .window = 512, .verify = true, .call_timeout_ms = 10000};
  static const struct option lo[] = {
      {"seconds", 1, 0, 's'}, {"warmup", 1, 0, 'w'},  {"tx-size", 1, 0, 'b'},
      {"clients", 1, 0, 'c'}, {"batch", 1, 0, 'n'},   {"window", 1, 0, 'W'},
      {"rate", 1, 0, 'r'},    {"no-verify", 0, 0, 'V'}, {"sync", 0, 0, 'S'},
      {"keep", 0, 0, 'k'},    {"bin-dir", 1, 0, 'd'}, {"help", 0, 0, 'h'},
      {"max-pending", 1, 0, 'P'}, {"max-parked", 1, 0, 'Q'}, {"park-timeout", 1, 0, 'T'},
      {"call-timeout", 1, 0, 't'}, {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (ch) {
    case 's': g_o.seconds = num(optarg, 1, 3600, "--seconds"); break;
    case 'w': g_o.warmup = num(optarg, 0, 600, "--warmup"); break;
    case 'b': g_o.tx_size = (uint32_t)num(optarg, 8, 65536, "--tx-size"); break;
    case 'c': g_o.clients = (uint32_t)num(optarg, 1, MAXCLI, "--clients"); break;
    case 'n': g_o.batch = (uint32_t)num(optarg, 1, 100000, "--batch"); break;
    case 'W': g_o.window = (uint32_t)num(optarg, 1, 1 << 20, "--window"); break;
    case 'r': g_o.rate = num(optarg, 0, 1e7, "--rate"); break;
    case 'V': g_o.verify = false; break;
    case 'S': g_o.sync = true; break;
    case 'k': g_o.keep = true; break;
    case 'd': g_o.bin_dir = optarg; break;
    case 'P': g_o.max_pending = optarg; break;
    case 'Q': g_o.max_parked = optarg; break;
    case 'T': g_o.park_timeout = optarg; break;
    case 't': g_o.call_timeout_ms = (uint32_t)(num(optarg, 0.001, 3600, "--call-timeout") * 1000); break;
    default: usage();
    }
  }
  if (optind != argc) usage();
  /* The orderers inherit the environment (orderer.yaml overrides). */
  if (g_o.max_pending) setenv("FEDLEDGER_BROADCAST_MAX_PENDING", g_o.max_pending, 1);
  if (g_o.max_parked) setenv("FEDLEDGER_BROADCAST_MAX_PARKED", g_o.max_parked, 1);
  if (g_o.park_timeout) setenv("FEDLEDGER_BROADCAST_PARK_TIMEOUT", g_o.park_timeout, 1);
  fl_log_configure("warn");
  signal(SIGPIPE, SIG_IGN);
  /* g_o.bin_dir NULL: the harness's default, $FL_BINARY_DIR/bin or build/bin. */
  /* The pool: enough for the offered load (or an upper bound of what this
   * machine can take) over warmup + seconds; a closed-loop run that drains
   * it ends early and says so. */
  double cap = g_o.rate > 0 ? g_o.rate : (g_o.verify ? 30000 : 90000);
  g_nenv = (uint64_t)(cap * (g_o.seconds + g_o.warmup) * 1.05) + 1000;

  fl_oh_opts_t ho = {.bin_dir = g_o.bin_dir, .n = NREP, .verify = g_o.verify,
                     .batch_max_count = g_o.batch, .checkpoint_interval = 32,
                     .log = getenv("FL_ORDERER_LOG"), .keep = g_o.keep, .nosync = !g_o.sync};
  if (fl_oh_net_new(&ho, &g_net) != FL_OK) die("network setup failed");
  uint64_t tb = now_us();
  build_pool();
  fprintf(stderr, "# %llu envelopes of %llu bytes (data %u) built in %.1f s\n",
          (unsigned long long)g_nenv, (unsigned long long)g_env_bytes, g_o.tx_size,
          (double)(now_us() - tb) / 1e6);
  for (uint32_t i = 0; i < NREP; i++)
    if (fl_oh_start(g_net, i) != FL_OK) die("start orderer %u", i);
  for (uint32_t i = 0; i < NREP; i++)
    if (fl_oh_wait_ready(g_net, i, 30000) != FL_OK) die("orderer %u not ready (%s)", i, g_net->dir);

  uv_loop_init(&g_loop);
  for (uint32_t i = 0; i < g_o.clients; i++) {
    fl_rpc_client_opts_t co = fl_oh_client_opts(g_net, i % NREP);
    char *err = NULL;
    g_cli[i].replica = i % NREP;
    if (fl_rpc_client_new(&g_loop, &co, &g_cli[i].c, &err) != FL_OK) die("client: %s", err);
  }
  {
    fl_rpc_client_opts_t co = fl_oh_client_opts(g_net, 0);
    char *err = NULL;
    if (fl_rpc_client_new(&g_loop, &co, &g_dl, &err) != FL_OK) die("client: %s", err);
    if (fl_oh_deliver(g_net, g_dl, 1, dl_msg, dl_end, NULL) != FL_OK) die("deliver stream");
  }
  g_t0_us = g_sec_mark_us = g_last_pace_us = now_us();
  g_tw_us = g_t0_us + (uint64_t)(g_o.warmup * 1e6);
  g_tend_us = g_tw_us + (uint64_t)(g_o.seconds * 1e6);
  uv_timer_t tm;
  uv_timer_init(&g_loop, &tm);
  uv_timer_start(&tm, on_tick, 1, 1);
  pump();
  uv_run(&g_loop, UV_RUN_DEFAULT);
  g_stop = true;
  uint64_t t_end = now_us();
  uint64_t sent_w = 0;
  /* Envelopes sent in the measured window: count from the latency array
   * (delivered) plus those still undelivered. */
  if (g_nlat) qsort(g_lat_ms, g_nlat, sizeof(float), fcmp);
  double win = (double)(g_tend_us - g_tw_us) / 1e6;
  bool pool_short = g_next >= g_nenv;
  for (uint64_t k = 0; k < g_next; k++)
    if (g_sent_us[k] >= g_tw_us && g_sent_us[k] < g_tend_us) sent_w++;
  sent_w += g_del_w;
  printf("{\"bench\":\"ordering\",\"orderers\":%d,\"verify\":%s,\"sync\":%s,\"tx_size\":%u,"
         "\"env_bytes\":%llu,\"clients\":%u,\"window\":%u,\"batch\":%u,\"rate\":%.0f,"
         "\"seconds\":%.1f,\"tx\":%llu,\"tx_per_s\":%.0f,\"blocks\":%llu,\"blocks_per_s\":%.1f,"
         "\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,"
         "\"undelivered\":%llu,\"refused\":%llu,\"errors\":%llu,\"pool_exhausted\":%s,"
         "\"run_s\":%.1f,\"orderer_cpu_s\":%.2f,\"client_cpu_s\":%.2f,"
         "\"orderer_cpu_us_per_tx\":%.1f}\n",
         NREP, g_o.verify ? "true" : "false", g_o.sync ? "true" : "false", g_o.tx_size,
         (unsigned long long)g_env_bytes, g_o.clients, g_o.window, g_o.batch, g_o.rate, win,
         (unsigned long long)g_del_w, (double)g_del_w / win, (unsigned long long)g_blocks_w,
         (double)g_blocks_w / win, pct(g_lat_ms, g_nlat, 0.5), pct(g_lat_ms, g_nlat, 0.9),
         pct(g_lat_ms, g_nlat, 0.99), g_nlat ? (double)g_lat_ms[g_nlat - 1] : 0.0,
         (unsigned long long)(sent_w - g_del_w), (unsigned long long)g_refused,
         (unsigned long long)g_errors, pool_short ? "true" : "false",
         (double)(t_end - g_t0_us) / 1e6, g_cpu_state == 2 ? g_cpu_ord : -1.0,
         g_cpu_state == 2 ? g_cpu_cli : -1.0,
         g_cpu_state == 2 && g_del_w > 0 && g_cpu_ord >= 0 ? g_cpu_ord * 1e6 / (double)g_del_w
                                                           : -1.0);
  fflush(stdout);
  for (uint32_t i = 0; i < g_o.clients; i++) fl_rpc_client_close(g_cli[i].c, NULL, NULL);
  fl_rpc_client_close(g_dl, NULL, NULL);
  uv_close((uv_handle_t *)&tm, NULL);
  uv_run(&g_loop, UV_RUN_DEFAULT);
  uv_loop_close(&g_loop);
  g_net->keep = g_o.keep;
  for (uint32_t i = 0; i < NREP; i++) fl_oh_signal(g_net, i, SIGTERM);
  fl_oh_net_free(g_net);
  for (uint64_t k = 0; k < g_nenv; k++) fl_sbuf_free(&g_env[k]);
  fl_free(g_env);
  fl_free(g_sent_us);
  fl_free(g_lat_ms);
  fl_free(g_sec_lat);
  fl_free(g_retry);
  fl_free(g_retry_at);
  return 0;
}
