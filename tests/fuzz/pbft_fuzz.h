/* SPDX-License-Identifier: Apache-2.0
 *
 * pbft_fuzz.h: what fuzz_pbft.c and its seed generator (gen_corpus.c)
 * share, so that a trace recorded by the generator replays identically in
 * the target: the replica configuration (small windows so that checkpoints,
 * watermarks and view changes come within a few messages), the
 * deterministic crypto ops, and the input format.
 *
 * Input format of fuzz_pbft:
 *   byte 0            replica id of the machine under test (mod 4)
 *   then records      op (1 byte), len (2 bytes, little-endian), len bytes
 *                     (a record cut short by the end of input is cut)
 *   op mod 5:  0, 1   fl_pbft_step(bytes)        a SignedMessage
 *              2      time += 10 ms * (u16 LE of bytes, or u8, or 0), then
 *                     fl_pbft_tick
 *              3      fl_pbft_submit(bytes)     tx id: between "env:" and
 *                     the next ':' when bytes look like that, else the
 *                     first (up to) 16 bytes
 *              4      restart: a new machine restored from the records the
 *                     old one persisted
 *
 * Signatures (of messages and of block digests) are an 8-byte keyed hash
 * per replica (cheap, deterministic),
 * and the one-byte signature "*" is accepted from anyone: a wildcard that
 * lets the fuzzer forge messages of the other replicas and so reach the
 * protocol logic behind signature checks, while wrong signatures of any
 * other form still exercise the rejection paths.
 *
 * Header-only: static functions, one copy per program.
 */
#ifndef FL_TESTS_FUZZ_PBFT_FUZZ_H
#define FL_TESTS_FUZZ_PBFT_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/crypto/hash.h"
#include "orderer/pbft/pbft.h"

#define PF_N 4u
#define PF_T0 1000u     /* start time, ms */
#define PF_TICK_MS 10u  /* time unit of a tick record */
#define PF_OP_STEP 0u
#define PF_OP_TICK 2u
#define PF_OP_SUBMIT 3u
#define PF_OP_RESTART 4u
#define PF_OPS 5u

static inline fl_pbft_config_t pf_config(uint32_t self) {
  fl_pbft_config_t c = fl_pbft_config_default();
  c.n = PF_N;
  c.self = self;
  c.checkpoint_interval = 4;
  c.log_window = 8;
  c.max_inflight = 8;
  c.batch_max_count = 4;
  c.batch_max_bytes = 4096;
  c.batch_timeout_ms = 20;
  c.request_timeout_ms = 300;
  c.view_change_timeout_ms = 300;
  c.view_change_max_backoff = 3;
  c.resend_ms = 100;
  c.dedup_window = 64;
  c.max_pending = 64;
  c.state_chunk_bytes = 4096;
  return c;
}

/* FNV-1a 64 of the replica id then the message, then a final mix. */
static inline uint64_t pf_khash(uint32_t replica, fl_buf_t msg) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 4; i++) {
    h ^= (uint8_t)(replica >> (8 * i));
    h *= 0x100000001b3ull;
  }
  for (size_t i = 0; i < msg.len; i++) {
    h ^= msg.data[i];
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

/* ctx points at the signing replica's id. */
static inline fl_status_t pf_sign(void *ctx, fl_buf_t msg, fl_sbuf_t *sig) {
  uint8_t b[8];
  fl_put_be64(b, pf_khash(*(const uint32_t *)ctx, msg));
  fl_sbuf_append(sig, b, sizeof(b));
  return FL_OK;
}

static inline bool pf_verify(void *ctx, uint32_t replica, fl_buf_t msg, fl_buf_t sig) {
  (void)ctx;
  if (sig.len == 1 && sig.data[0] == '*') return true;
  return sig.len == 8 && fl_get_be64(sig.data) == pf_khash(replica, msg);
}

/* Signs with the wildcard "*" (forged messages in seeds and checks). */
static inline fl_status_t pf_star_sign(void *ctx, fl_buf_t msg, fl_sbuf_t *sig) {
  (void)ctx;
  (void)msg;
  fl_sbuf_append(sig, "*", 1);
  return FL_OK;
}

/* Digest signatures (block signatures) use a separate key per replica. */
static inline fl_status_t pf_sign_digest(void *ctx, const uint8_t digest[FL_PBFT_DIGEST_LEN],
                                         fl_sbuf_t *sig) {
  uint8_t b[8];
  fl_put_be64(b, pf_khash(*(const uint32_t *)ctx | 0x80000000u,
                          FL_BUF(digest, FL_PBFT_DIGEST_LEN)));
  fl_sbuf_append(sig, b, sizeof(b));
  return FL_OK;
}

static inline bool pf_verify_digest(void *ctx, uint32_t replica,
                                    const uint8_t digest[FL_PBFT_DIGEST_LEN], fl_buf_t sig) {
  (void)ctx;
  if (sig.len == 1 && sig.data[0] == '*') return true;
  return sig.len == 8 &&
         fl_get_be64(sig.data) == pf_khash(replica | 0x80000000u, FL_BUF(digest, FL_PBFT_DIGEST_LEN));
}

static inline void pf_sha256(void *ctx, fl_buf_t data, uint8_t out[FL_PBFT_DIGEST_LEN]) {
  (void)ctx;
  fl_sha256(data.data, data.len, out);
}

/* Requests look like "env:<tx id>:<anything>"; the tx id must match. */
static inline bool pf_check_request(void *ctx, fl_buf_t env, fl_buf_t tx) {
  (void)ctx;
  return env.len >= 5 + tx.len && memcmp(env.data, "env:", 4) == 0 &&
         memcmp(env.data + 4, tx.data, tx.len) == 0 && env.data[4 + tx.len] == ':';
}

/* The tx id a submit record stands for (see the input format). */
static inline fl_buf_t pf_submit_tx_id(fl_buf_t env) {
  if (env.len > 5 && memcmp(env.data, "env:", 4) == 0) {
    const uint8_t *colon = memchr(env.data + 4, ':', env.len - 4);
    if (colon != NULL && colon > env.data + 4)
      return FL_BUF(env.data + 4, (size_t)(colon - env.data - 4));
  }
  return FL_BUF(env.data, env.len < 16 ? env.len : 16);
}

/* Appends one record to a trace. */
static inline void pf_record(fl_sbuf_t *out, uint8_t op, const void *p, size_t n) {
  uint8_t h[3] = {op, (uint8_t)(n & 0xff), (uint8_t)(n >> 8)};
  fl_sbuf_append(out, h, sizeof(h));
  if (n) fl_sbuf_append(out, p, n);
}

/* ---- an in-memory record store (PERSIST / TRUNCATE / ops.load) ---------- */

typedef struct pf_rec_s {
  fl_pbft_record_t kind;
  uint64_t seq;
  fl_sbuf_t bytes;
} pf_rec_t;

typedef struct pf_store_s {
  pf_rec_t *recs;
  size_t n, cap;
} pf_store_t;

static inline pf_rec_t *pf_store_find(pf_store_t *s, fl_pbft_record_t kind, uint64_t seq) {
  for (size_t i = 0; i < s->n; i++)
    if (s->recs[i].kind == kind && s->recs[i].seq == seq) return &s->recs[i];
  return NULL;
}

static inline void pf_store_put(pf_store_t *s, fl_pbft_record_t kind, uint64_t seq, fl_buf_t b) {
  pf_rec_t *r = pf_store_find(s, kind, seq);
  if (r == NULL) {
    if (s->n == s->cap) {
      s->cap = s->cap ? 2 * s->cap : 64;
      s->recs = fl_reallocarray(s->recs, s->cap, sizeof(pf_rec_t));
    }
    r = &s->recs[s->n++];
    *r = (pf_rec_t){.kind = kind, .seq = seq};
  }
  r->bytes.len = 0;
  fl_sbuf_append(&r->bytes, b.data, b.len);
}

/* Deletes the per-seq log records (every kind but VIEW, CHECKPOINT and
 * COMMITTED: ENTRY, PREPARED) with seq <= seq (a TRUNCATE action). */
static inline void pf_store_truncate(pf_store_t *s, uint64_t seq) {
  size_t j = 0;
  for (size_t i = 0; i < s->n; i++) {
    fl_pbft_record_t k = s->recs[i].kind;
    if (k != FL_PBFT_REC_VIEW && k != FL_PBFT_REC_CHECKPOINT && k != FL_PBFT_REC_COMMITTED &&
        s->recs[i].seq <= seq) {
      fl_sbuf_free(&s->recs[i].bytes);
      continue;
    }
    s->recs[j++] = s->recs[i];
  }
  s->n = j;
}

static inline fl_status_t pf_store_load(pf_store_t *s, fl_pbft_record_t kind, uint64_t seq,
                                        fl_sbuf_t *out) {
  pf_rec_t *r = pf_store_find(s, kind, seq);
  if (r == NULL) return FL_NOTFOUND;
  fl_sbuf_append(out, r->bytes.data, r->bytes.len);
  return FL_OK;
}

/* Feeds what a restarted replica needs (pbft.h, fl_pbft_restore): the VIEW
 * record, the latest CHECKPOINT, every ENTRY and PREPARED record, and the
 * COMMITTED records of the last dedup_window seqs. Returns the first
 * failure, or FL_OK. */
static inline fl_status_t pf_store_restore(pf_store_t *s, fl_pbft_t *p, uint32_t dedup_window) {
  uint64_t ck = 0, top = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (s->recs[i].kind == FL_PBFT_REC_CHECKPOINT && s->recs[i].seq > ck) ck = s->recs[i].seq;
    if (s->recs[i].kind == FL_PBFT_REC_COMMITTED && s->recs[i].seq > top) top = s->recs[i].seq;
  }
  for (size_t i = 0; i < s->n; i++) {
    const pf_rec_t *r = &s->recs[i];
    if (r->kind == FL_PBFT_REC_CHECKPOINT && r->seq != ck) continue;
    if (r->kind == FL_PBFT_REC_COMMITTED && r->seq + dedup_window <= top) continue;
    fl_status_t rc = fl_pbft_restore(p, r->kind, r->seq, fl_sbuf_view(&r->bytes));
    if (rc != FL_OK) return rc;
  }
  return FL_OK;
}

static inline void pf_store_free(pf_store_t *s) {
  for (size_t i = 0; i < s->n; i++) fl_sbuf_free(&s->recs[i].bytes);
  fl_free(s->recs);
  *s = (pf_store_t){0};
}

#endif /* FL_TESTS_FUZZ_PBFT_FUZZ_H */
