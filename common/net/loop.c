/* SPDX-License-Identifier: Apache-2.0
 *
 * loop.c: the post-to-loop queue and the worker-pool submit helper.
 *
 * Poster invariants:
 *   1. items[0..n) are the queued posts, guarded by mu;
 *   2. closed is set under mu before uv_close, and uv_async_send is only
 *      called under mu with closed false, so no send follows the close;
 *   3. the loop swaps items with spare under mu and runs the swapped array
 *      outside the lock, so a posted function may post again.
 */
#include "common/net/loop.h"

#include <pthread.h>
#include <stdbool.h>

#include "common/base/alloc.h"

typedef struct item_s {
  fl_loop_fn fn;
  void *arg;
} item_t;

struct fl_loop_poster_s {
  uv_async_t async;
  pthread_mutex_t mu;
  item_t *items, *spare;
  size_t n, cap, spare_cap;
  bool closed;
};

static void run_queued(fl_loop_poster_t *p) {
  for (;;) {
    pthread_mutex_lock(&p->mu);
    item_t *batch = p->items;
    size_t n = p->n, cap = p->cap;
    p->items = p->spare;
    p->cap = p->spare_cap;
    p->n = 0;
    p->spare = NULL;
    p->spare_cap = 0;
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++) batch[i].fn(batch[i].arg);
    pthread_mutex_lock(&p->mu);
    if (p->spare == NULL) { /* keep the array for the next swap */
      p->spare = batch;
      p->spare_cap = cap;
      batch = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    fl_free(batch);
    if (n == 0) return;
  }
}

static void on_async(uv_async_t *a) { run_queued(a->data); }

fl_status_t fl_loop_poster_new(uv_loop_t *loop, fl_loop_poster_t **out) {
  fl_loop_poster_t *p = fl_calloc(1, sizeof(*p));
  *out = NULL;
  if (uv_async_init(loop, &p->async, on_async) != 0) {
    fl_free(p);
    return FL_EIO;
  }
  p->async.data = p;
  pthread_mutex_init(&p->mu, NULL);
  *out = p;
  return FL_OK;
}

fl_status_t fl_loop_post(fl_loop_poster_t *p, fl_loop_fn fn, void *arg) {
  pthread_mutex_lock(&p->mu);
  if (p->closed) {
    pthread_mutex_unlock(&p->mu);
    return FL_ECLOSED;
  }
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 64;
    p->items = fl_reallocarray(p->items, p->cap, sizeof(item_t));
  }
  p->items[p->n++] = (item_t){fn, arg};
  /* uv_async_send coalesces; one wake-up runs every queued item. */
  uv_async_send(&p->async);
  pthread_mutex_unlock(&p->mu);
  return FL_OK;
}

static void on_poster_closed(uv_handle_t *h) {
  fl_loop_poster_t *p = h->data;
  pthread_mutex_destroy(&p->mu);
  fl_free(p->items);
  fl_free(p->spare);
  fl_free(p);
}

void fl_loop_poster_close(fl_loop_poster_t *p) {
  if (p == NULL) return;
  pthread_mutex_lock(&p->mu);
  p->closed = true;
  pthread_mutex_unlock(&p->mu);
  run_queued(p);
  uv_close((uv_handle_t *)&p->async, on_poster_closed);
}

typedef struct work_s {
  uv_work_t req;
  fl_work_fn work;
  fl_work_done_fn done;
  void *arg;
} work_t;

static void work_run(uv_work_t *req) {
  work_t *w = req->data;
  w->work(w->arg);
}

static void work_after(uv_work_t *req, int status) {
  work_t *w = req->data;
  fl_work_done_fn done = w->done;
  void *arg = w->arg;
  fl_free(w);
  done(arg, status == UV_ECANCELED ? FL_ECANCELED : FL_OK);
}

fl_status_t fl_worker_submit(uv_loop_t *loop, fl_work_fn work, fl_work_done_fn done,
                             void *arg) {
  work_t *w = fl_malloc(sizeof(*w));
  *w = (work_t){.work = work, .done = done, .arg = arg};
  w->req.data = w;
  if (uv_queue_work(loop, &w->req, work_run, work_after) != 0) {
    fl_free(w);
    return FL_EIO;
  }
  return FL_OK;
}
