/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_pbft.c: fuzz target of the PBFT replica state machine
 * (orderer/pbft/pbft.h) as it receives messages from the other replicas:
 * fl_pbft_step on a fresh 4-replica machine, driven also by ticks, client
 * submits and restarts (input format and crypto ops: pbft_fuzz.h).
 *
 * Every received message also goes through fl_pbft_msg_peek; one that peeks
 * is re-signed (fl_pbft_resign) and must peek the same. The machine's
 * output is checked after every event:
 *   - every SEND is a SignedMessage that peeks, addressed to another member
 *     or to all, and signed by this replica (re-signing gives the same
 *     bytes) or, when it relays another member's message, by that member
 *     (or with the wildcard the fuzzer may have used);
 *   - EXECUTEs come in increasing seq order;
 *   - every DELIVERed block verifies (fl_pbft_block_verify: 2f+1 distinct
 *     signatures over its header hash) with the announced number and hash;
 *     blocks come in number order, and a block number delivered again
 *     (allowed after a restart) has the same header hash: a replica never
 *     forks itself;
 *   - fl_pbft_info stays coherent (primary = view mod n, watermark at most
 *     the last executed seq, delivered at most built), and rx_messages
 *     counts the steps.
 * PERSIST and TRUNCATE actions maintain an in-memory store that serves
 * state transfer (ops.load) and from which a restart restores the machine:
 * the machine's own records must always restore and start.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/log.h"
#include "orderer/pbft/pbft.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/pbft_fuzz.h"

#define MAX_RECORDS 512
#define MAX_BLOCKS 1024

typedef struct harness_s {
  uint32_t self; /* first member: pf_sign reads it through ctx */
  pf_store_t store;
  fl_pbft_t *p;
  fl_pbft_ops_t ops;
  uint64_t now;
  uint64_t steps;          /* fl_pbft_step calls on the current machine */
  uint64_t last_exec;      /* highest EXECUTE seq of the current machine */
  uint64_t last_delivered; /* highest block number delivered, any machine */
  uint8_t hashes[MAX_BLOCKS][FL_PBFT_DIGEST_LEN];
} harness_t;

static fl_status_t load(void *ctx, fl_pbft_record_t kind, uint64_t seq, fl_sbuf_t *out) {
  return pf_store_load(&((harness_t *)ctx)->store, kind, seq, out);
}

static void check_info(harness_t *h) {
  fl_pbft_info_t in;
  fl_pbft_info(h->p, &in);
  check(in.primary == in.view % PF_N);
  /* A replica that learnt of a later stable checkpoint fetches up to it. */
  check(in.low_watermark <= in.last_executed || in.state_transfer);
  check(in.delivered_block <= in.last_block);
  fl_pbft_stats_t st;
  fl_pbft_stats(h->p, &st);
  check(st.rx_messages == h->steps);
}

static void check_send(harness_t *h, const fl_pbft_action_t *a) {
  check(a->to == FL_PBFT_TO_ALL || (a->to < PF_N && a->to != h->self));
  fl_pbft_msg_info_t info;
  check(fl_pbft_msg_peek(a->bytes, &info) == FL_OK);
  check(info.type >= FL_PBFT_MSG_PRE_PREPARE);
  /* Its own message, or one it relays (a pre-prepare for a lagging
   * replica, a view change...): then signed by a member, as it was
   * received, with that member's key or the wildcard. */
  check(info.replica < PF_N);
  uint32_t who = info.replica;
  fl_pbft_ops_t ops = h->ops;
  ops.ctx = &who;
  fl_sbuf_t again = {0};
  check(fl_pbft_resign(&ops, who, a->bytes, &again) == FL_OK);
  bool ok = fl_buf_eq(fl_sbuf_view(&again), a->bytes);
  if (!ok && who != h->self) {
    ops.sign = pf_star_sign;
    again.len = 0;
    check(fl_pbft_resign(&ops, who, a->bytes, &again) == FL_OK);
    ok = fl_buf_eq(fl_sbuf_view(&again), a->bytes);
  }
  check(ok);
  fl_sbuf_free(&again);
}

static void check_deliver(harness_t *h, const fl_pbft_action_t *a) {
  uint64_t num = 0;
  uint8_t hh[FL_PBFT_DIGEST_LEN];
  check(fl_pbft_block_verify(&h->ops, PF_N, a->bytes, &num, hh) == FL_OK);
  check(num == a->block_number && num >= 1);
  check(a->digest != NULL && memcmp(hh, a->digest, FL_PBFT_DIGEST_LEN) == 0);
  if (num <= h->last_delivered) {
    if (num < MAX_BLOCKS) check(memcmp(h->hashes[num], hh, FL_PBFT_DIGEST_LEN) == 0);
    return;
  }
  check(num == h->last_delivered + 1);
  h->last_delivered = num;
  if (num < MAX_BLOCKS) memcpy(h->hashes[num], hh, FL_PBFT_DIGEST_LEN);
}

static void drain(harness_t *h) {
  const fl_pbft_action_t *acts = NULL;
  size_t n = fl_pbft_actions(h->p, &acts);
  for (size_t i = 0; i < n; i++) {
    const fl_pbft_action_t *a = &acts[i];
    switch (a->type) {
      case FL_PBFT_ACT_SEND: check_send(h, a); break;
      case FL_PBFT_ACT_PERSIST:
        check(a->kind >= FL_PBFT_REC_VIEW);
        pf_store_put(&h->store, a->kind, a->seq, a->bytes);
        break;
      case FL_PBFT_ACT_TRUNCATE: pf_store_truncate(&h->store, a->seq); break;
      case FL_PBFT_ACT_EXECUTE:
        check(a->seq > h->last_exec);
        h->last_exec = a->seq;
        break;
      case FL_PBFT_ACT_DELIVER: check_deliver(h, a); break;
      default: break; /* action kinds added later are not checked here */
    }
  }
  fl_pbft_actions_clear(h->p);
  check_info(h);
}

/* Creates the machine, restoring what the store holds (none at first). */
static void boot(harness_t *h) {
  fl_pbft_config_t cfg = pf_config(h->self);
  check(fl_pbft_new(&cfg, &h->ops, &h->p) == FL_OK);
  check(pf_store_restore(&h->store, h->p, cfg.dedup_window) == FL_OK);
  check(fl_pbft_start(h->p, h->now) == FL_OK);
  h->steps = 0;
  fl_pbft_info_t in;
  fl_pbft_info(h->p, &in);
  h->last_exec = in.last_executed;
  drain(h);
}

static void peek(const harness_t *h, fl_buf_t msg) {
  fl_pbft_msg_info_t info;
  if (fl_pbft_msg_peek(msg, &info) != FL_OK) return;
  check(info.type >= FL_PBFT_MSG_PRE_PREPARE);
  fl_sbuf_t out = {0};
  check(fl_pbft_resign(&h->ops, info.replica, msg, &out) == FL_OK);
  fl_pbft_msg_info_t again;
  check(fl_pbft_msg_peek(fl_sbuf_view(&out), &again) == FL_OK);
  check(again.type == info.type && again.replica == info.replica && again.view == info.view &&
        again.seq == info.seq);
  fl_sbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool quiet;
  if (!quiet) { /* the replica logs every start and view change at INFO */
    if (getenv("FEDLEDGER_LOG") == NULL) fl_log_configure("error");
    quiet = true;
  }
  if (size < 1) return 0;
  harness_t *h = fl_calloc(1, sizeof(*h));
  h->self = data[0] % PF_N;
  h->ops = (fl_pbft_ops_t){.ctx = h,
                           .sign = pf_sign,
                           .verify = pf_verify,
                           .sign_digest = pf_sign_digest,
                           .verify_digest = pf_verify_digest,
                           .sha256 = pf_sha256,
                           .check_request = pf_check_request,
                           .load = load};
  h->now = PF_T0;
  boot(h);
  size_t off = 1;
  for (int k = 0; k < MAX_RECORDS && off < size; k++) {
    uint8_t op = data[off++];
    size_t len = 0;
    if (off < size) len = data[off++];
    if (off < size) len |= (size_t)data[off++] << 8;
    if (len > size - off) len = size - off;
    fl_buf_t b = FL_BUF(data + off, len);
    off += len;
    switch (op % PF_OPS) {
      case PF_OP_TICK: {
        uint64_t units = len >= 2 ? (uint64_t)b.data[0] | (uint64_t)b.data[1] << 8
                                  : len == 1 ? b.data[0] : 0;
        h->now += PF_TICK_MS * units;
        check(fl_pbft_tick(h->p, h->now) == FL_OK);
        break;
      }
      case PF_OP_SUBMIT: {
        fl_status_t rc = fl_pbft_submit(h->p, b, pf_submit_tx_id(b), h->now);
        check(rc == FL_OK || rc == FL_EEXIST || rc == FL_AGAIN || rc == FL_EINVAL);
        break;
      }
      case PF_OP_RESTART:
        fl_pbft_free(h->p);
        h->p = NULL;
        boot(h);
        break;
      default:
        peek(h, b);
        check(fl_pbft_step(h->p, b, h->now) == FL_OK);
        h->steps++;
        break;
    }
    drain(h);
  }
  fl_pbft_free(h->p);
  pf_store_free(&h->store);
  fl_free(h);
  return 0;
}
