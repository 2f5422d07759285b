/* SPDX-License-Identifier: Apache-2.0
 *
 * jobs.c: short worker jobs of the RPC handlers (endorsements, envelope and
 * status-request signature checks, endorsement assembly), batched per loop
 * iteration.
 *
 * Every fl_worker_submit is a queue operation, a pool thread woken and a
 * completion posted back to the loop: up to two context switches per job,
 * and the peer's profile under e2e load spends about a quarter of its time
 * in the kernel, mostly switching. The handlers of one loop iteration
 * (a client's frames of one TLS write arrive together) therefore append
 * their jobs to p->jq, and a uv_check handle (after the poll phase, so in
 * the same iteration: no added latency) hands them to the pool in chunks of
 * at most JOBS_PER_CHUNK, at least two chunks when there are two jobs or
 * more (both cores keep working). A chunk runs its jobs' work in order on
 * one pool thread, then their completions in order on the loop; each
 * completion gets the chunk's status, as with fl_worker_submit. A job
 * queued outside the poll phase (from a timer: an RPC timeout that retries
 * an endorsement elsewhere) must not wait for the next I/O event: while the
 * queue is not empty a uv_idle handle is active, which makes libuv poll
 * without blocking, so the check phase of the same iteration flushes it.
 *
 * After fl__jobs_close (shutdown), fl__job_submit is fl_worker_submit.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/net/loop.h"
#include "peer/node/node_int.h"

#define JOBS_PER_CHUNK 8

typedef struct chunk_s {
  size_t n;
  fl__job_t jobs[]; /* n */
} chunk_t;

static void chunk_run(void *arg) {
  chunk_t *c = arg;
  for (size_t i = 0; i < c->n; i++) c->jobs[i].work(c->jobs[i].arg);
}

static void chunk_done(void *arg, fl_status_t st) {
  chunk_t *c = arg;
  for (size_t i = 0; i < c->n; i++) c->jobs[i].done(c->jobs[i].arg, st);
  fl_free(c);
}

/* Submits the queued jobs (loop thread). */
static void flush(fl__peer_t *p) {
  size_t n = p->jq_len;
  if (n == 0) return;
  p->jq_len = 0;
  uv_idle_stop(&p->jidle_h);
  size_t k = (n + JOBS_PER_CHUNK - 1) / JOBS_PER_CHUNK;
  if (k < 2) k = n < 2 ? n : 2;
  /* Every chunk is copied out before any is submitted: a completion run
   * here (no worker) may queue new jobs into p->jq. */
  chunk_t *chunks[JOBS_PER_CHUNK * 8];
  chunk_t **cs = k <= sizeof(chunks) / sizeof(chunks[0]) ? chunks : fl_calloc(k, sizeof(*cs));
  size_t at = 0;
  for (size_t c = 0; c < k; c++) {
    size_t m = (n - at) / (k - c); /* spread evenly */
    chunk_t *ch = fl_malloc(sizeof(*ch) + m * sizeof(fl__job_t));
    ch->n = m;
    memcpy(ch->jobs, p->jq + at, m * sizeof(fl__job_t));
    at += m;
    cs[c] = ch;
  }
  for (size_t c = 0; c < k; c++)
    if (fl_worker_submit(&p->loop, chunk_run, chunk_done, cs[c]) != FL_OK)
      chunk_done(cs[c], FL_ECANCELED); /* the completions see "no worker" */
  if (cs != chunks) fl_free(cs);
}

static void on_check(uv_check_t *h) { flush(h->data); }

static void on_idle(uv_idle_t *h) { (void)h; /* only keeps the poll from blocking */ }

void fl__jobs_init(fl__peer_t *p) {
  uv_idle_init(&p->loop, &p->jidle_h);
  p->jidle_h.data = p;
  uv_check_init(&p->loop, &p->jcheck_h);
  p->jcheck_h.data = p;
  uv_check_start(&p->jcheck_h, on_check);
  uv_unref((uv_handle_t *)&p->jcheck_h); /* never keeps the loop alive */
  p->jq_open = true;
}

fl_status_t fl__job_submit(fl__peer_t *p, fl_work_fn work, fl_work_done_fn done, void *arg) {
  if (!p->jq_open) return fl_worker_submit(&p->loop, work, done, arg);
  if (p->jq_len == p->jq_cap) {
    p->jq_cap = p->jq_cap ? p->jq_cap * 2 : 64;
    p->jq = fl_reallocarray(p->jq, p->jq_cap, sizeof(*p->jq));
  }
  p->jq[p->jq_len++] = (fl__job_t){.work = work, .done = done, .arg = arg};
  if (p->jq_len == 1) uv_idle_start(&p->jidle_h, on_idle);
  return FL_OK;
}

void fl__jobs_close(fl__peer_t *p) {
  if (!p->jq_open) return;
  p->jq_open = false;
  flush(p);
  uv_check_stop(&p->jcheck_h);
  uv_close((uv_handle_t *)&p->jcheck_h, NULL);
  uv_close((uv_handle_t *)&p->jidle_h, NULL);
}

void fl__jobs_free(fl__peer_t *p) {
  fl_free(p->jq);
  p->jq = NULL;
  p->jq_len = p->jq_cap = 0;
}
