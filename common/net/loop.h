/* SPDX-License-Identifier: Apache-2.0
 *
 * loop.h: handing work between a libuv event loop and other threads.
 *
 * Two helpers, because work must never run on the loop:
 *
 *  - fl_worker_submit runs a function on libuv's shared thread pool
 *    (uv_queue_work; its size is UV_THREADPOOL_SIZE, default 4, shared by
 *    every loop of the process) and then a completion on the loop thread.
 *    Use it for signature checks, hashing, RocksDB writes.
 *  - fl_loop_poster_t is a thread-safe "post to loop" queue (uv_async_t +
 *    a mutex-protected array) for threads that are not libuv's, e.g. a
 *    dedicated ledger thread handing results back. Posting never allocates in
 *    the steady state: the loop swaps the filled array with an empty one.
 */
#ifndef FL_NET_LOOP_H
#define FL_NET_LOOP_H

#include <uv.h>

#include "common/base/status.h"

/** A function posted to the loop; runs on the loop thread. */
typedef void (*fl_loop_fn)(void *arg);

typedef struct fl_loop_poster_s fl_loop_poster_t;

/** Creates a poster on loop. Call on the loop thread. Returns FL_OK and
 *  *out (owned: release with fl_loop_poster_close), or FL_EIO when libuv
 *  refuses the async handle (*out NULL). The poster keeps the loop alive
 *  until it is closed. */
fl_status_t fl_loop_poster_new(uv_loop_t *loop, fl_loop_poster_t **out /* out */);

/** Queues fn(arg) to run on the loop thread, in posting order. Callable from
 *  any thread. Returns FL_OK, or FL_ECLOSED once close has begun (fn will
 *  not run; arg stays the caller's). The caller must make sure no thread
 *  posts after the poster's memory is gone (join posting threads before the
 *  loop finishes closing). */
fl_status_t fl_loop_post(fl_loop_poster_t *p, fl_loop_fn fn, void *arg);

/** Closes the poster on the loop thread: functions already queued still run
 *  (now, before this returns), later posts get FL_ECLOSED, and the memory is
 *  freed once libuv has closed the handle. NULL-safe. */
void fl_loop_poster_close(fl_loop_poster_t *p);

/** Work run on a pool thread. */
typedef void (*fl_work_fn)(void *arg);
/** Completion run on the loop thread: status FL_OK after work ran, or
 *  FL_ECANCELED when the work was cancelled before it started. */
typedef void (*fl_work_done_fn)(void *arg, fl_status_t status);

/** Runs work(arg) on libuv's thread pool, then done(arg, status) on loop's
 *  thread. Call on the loop thread. Returns FL_OK (done will be called
 *  exactly once) or FL_EIO (neither is called). arg is borrowed for the
 *  duration; the loop stays alive until done has run. */
fl_status_t fl_worker_submit(uv_loop_t *loop, fl_work_fn work, fl_work_done_fn done,
                             void *arg);

#endif /* FL_NET_LOOP_H */
