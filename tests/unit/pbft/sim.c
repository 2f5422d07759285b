/* SPDX-License-Identifier: Apache-2.0
 *
 * sim.c: the deterministic PBFT simulation harness (see sim.h).
 *
 * Event loop over virtual time: the next event is the earliest of the
 * network heap's head, the next tick (every TICK_MS every live replica gets
 * fl_pbft_tick), the next client submission and the next crash/restart.
 * Each replica's actions are applied in order: PERSIST/TRUNCATE go to its
 * in-memory store (which survives its crash), SEND goes through the
 * Byzantine filter of the sender and then the faulty network, EXECUTE and
 * DELIVER are checked against the global agreement tables.
 */
#include "tests/unit/pbft/sim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "common/base/alloc.h"
#include "fl/common/common.pb-c.h"

#define TICK_MS 5u
#define CHECK_MS 100u
#define RETRY_MS 1000u

/* ------------------------------------------------------------------ rng */

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

typedef struct rng_s {
  uint64_t s[4];
} rng_t;

static void rng_seed(rng_t *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng_t *r) { /* xoshiro256** */
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

static uint64_t rng_below(rng_t *r, uint64_t n) { return n ? rng_next(r) % n : 0; }

static double rng_unit(rng_t *r) {
  return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------- crypto */

static const uint32_t ids[64] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

static uint64_t key_of(uint32_t id) {
  uint64_t x = 0x5eed0000ull + id;
  return splitmix(&x);
}

/* A keyed 64-bit hash: good enough to catch any alteration or a signature
 * made with another replica's key in a simulation. */
static uint64_t khash(uint64_t key, const uint8_t *p, size_t n) {
  uint64_t h = key ^ (n * 0x9e3779b97f4a7c15ull);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    h ^= v;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  uint64_t v = 0;
  if (i < n) memcpy(&v, p + i, n - i);
  h ^= v + 0x27d4eb2f165667c5ull;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 32;
  return h;
}

static fl_status_t sim_sign(void *ctx, fl_buf_t msg, fl_sbuf_t *sig) {
  uint32_t id = *(const uint32_t *)ctx;
  uint8_t b[8];
  fl_put_be64(b, khash(key_of(id), msg.data, msg.len));
  fl_sbuf_append(sig, b, 8);
  return FL_OK;
}

static bool sim_verify(void *ctx, uint32_t replica, fl_buf_t msg, fl_buf_t sig) {
  (void)ctx;
  if (sig.len != 8) return false;
  return fl_get_be64(sig.data) == khash(key_of(replica), msg.data, msg.len);
}

/* Block signatures sign a digest: a different key domain, so that a
 * message signature can never pass as a block signature or back. */
static fl_status_t sim_sign_digest(void *ctx, const uint8_t d[32], fl_sbuf_t *sig) {
  uint32_t id = *(const uint32_t *)ctx;
  uint8_t b[8];
  fl_put_be64(b, khash(~key_of(id), d, 32));
  fl_sbuf_append(sig, b, 8);
  return FL_OK;
}

static bool sim_verify_digest(void *ctx, uint32_t replica, const uint8_t d[32], fl_buf_t sig) {
  (void)ctx;
  if (sig.len != 8) return false;
  return fl_get_be64(sig.data) == khash(~key_of(replica), d, 32);
}

static void sim_sha256(void *ctx, fl_buf_t data, uint8_t out[32]) {
  (void)ctx;
  static const uint8_t empty = 0;
  SHA256(data.len ? data.data : &empty, data.len, out);
}

/* Requests look like "env:<tx id>:<padding>"; the tx id must match. */
static bool sim_check_request(void *ctx, fl_buf_t env, fl_buf_t tx) {
  (void)ctx;
  return env.len >= 5 + tx.len && memcmp(env.data, "env:", 4) == 0 &&
         memcmp(env.data + 4, tx.data, tx.len) == 0 && env.data[4 + tx.len] == ':';
}

/* ----------------------------------------------------------------- store */

typedef struct blob_s {
  uint8_t *d;
  size_t n;
  bool set;
} blob_t;

typedef struct store_s {
  blob_t view;
  blob_t *entry, *prepared, *ckpt, *committed; /* by seq */
  size_t cap;
  uint64_t max_ckpt, max_committed;
} store_t;

static void blob_set(blob_t *b, fl_buf_t v) {
  fl_free(b->d);
  b->d = fl_memdup(v.data, v.len);
  b->n = v.len;
  b->set = true;
}

static void blob_clear(blob_t *b) {
  fl_free(b->d);
  memset(b, 0, sizeof(*b));
}

static void store_grow(store_t *s, uint64_t seq) {
  if (seq < s->cap) return;
  size_t nc = s->cap ? s->cap : 64;
  while (nc <= seq) nc *= 2;
  s->entry = fl_reallocarray(s->entry, nc, sizeof(blob_t));
  s->prepared = fl_reallocarray(s->prepared, nc, sizeof(blob_t));
  s->ckpt = fl_reallocarray(s->ckpt, nc, sizeof(blob_t));
  s->committed = fl_reallocarray(s->committed, nc, sizeof(blob_t));
  memset(s->entry + s->cap, 0, (nc - s->cap) * sizeof(blob_t));
  memset(s->prepared + s->cap, 0, (nc - s->cap) * sizeof(blob_t));
  memset(s->ckpt + s->cap, 0, (nc - s->cap) * sizeof(blob_t));
  memset(s->committed + s->cap, 0, (nc - s->cap) * sizeof(blob_t));
  s->cap = nc;
}

static void store_free(store_t *s) {
  blob_clear(&s->view);
  for (size_t i = 0; i < s->cap; i++) {
    blob_clear(&s->entry[i]);
    blob_clear(&s->prepared[i]);
    blob_clear(&s->ckpt[i]);
    blob_clear(&s->committed[i]);
  }
  fl_free(s->entry);
  fl_free(s->prepared);
  fl_free(s->ckpt);
  fl_free(s->committed);
  memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------- harness */

typedef struct msg_s {
  uint64_t at, order;
  uint32_t from, to;
  uint8_t *d;
  size_t n;
} msg_t;

typedef struct rep_s {
  uint32_t id;
  fl_pbft_t *p;
  bool up, crashed_for_good;
  sim_byz_t byz;
  store_t st;
  fl_pbft_ops_t ops;
  struct sim_s *sim;
  uint8_t (*hash)[32]; /* delivered header hash per height (index h-1) */
  size_t nblocks, capblocks;
  uint8_t *txcount;    /* per request */
  uint32_t ndelivered; /* requests with txcount == 1 */
  uint64_t synced;     /* blocks taken by backfill */
  uint64_t *txblock;   /* per request: the height that delivered it first */
  blob_t *sent;        /* replay buffer */
  size_t nsent, capsent;
} rep_t;

typedef struct cev_s {
  uint64_t at;
  uint32_t req, to;
} cev_t;

typedef struct part_s {
  uint64_t from, to;
  uint32_t mask;
} part_t;

typedef struct sim_s {
  const sim_opts_t *o;
  sim_result_t *res;
  uint32_t n, f;
  rng_t rng;
  uint64_t now, order;
  rep_t r[SIM_MAXN];
  msg_t *heap;
  size_t nheap, capheap;
  cev_t *cev;
  size_t ncev, icev;
  part_t part[8];
  uint32_t npart;
  uint8_t (*gblock)[32];
  bool *gblock_set;
  uint32_t **gtx;        /* request indexes of each delivered height */
  uint32_t *ngtx;
  size_t gbcap;
  uint8_t (*gstate)[32];
  bool *gstate_set;
  size_t gscap;
  bool failed;
} sim_t;

static void fail(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(sim_t *s, const char *fmt, ...) {
  if (s->failed) return;
  s->failed = true;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->res->why, sizeof(s->res->why), fmt, ap);
  va_end(ap);
}

fl_pbft_ops_t sim_ops(uint32_t id) {
  return (fl_pbft_ops_t){.ctx = (void *)(uintptr_t)&ids[id],
                         .sign = sim_sign,
                         .verify = sim_verify,
                         .sign_digest = sim_sign_digest,
                         .verify_digest = sim_verify_digest,
                         .sha256 = sim_sha256,
                         .check_request = sim_check_request,
                         .load = NULL};
}

/* Each replica's ops: ctx must lead to its id (sign) and its store (load),
 * so the replica struct starts with its id. */
static fl_status_t rep_sign(void *ctx, fl_buf_t msg, fl_sbuf_t *sig) {
  return sim_sign(&((rep_t *)ctx)->id, msg, sig);
}

static fl_status_t rep_sign_digest(void *ctx, const uint8_t d[32], fl_sbuf_t *sig) {
  return sim_sign_digest(&((rep_t *)ctx)->id, d, sig);
}

static fl_status_t rep_load(void *ctx, fl_pbft_record_t kind, uint64_t seq,
                            fl_sbuf_t *out) {
  rep_t *r = ctx;
  store_t *st = &r->st;
  if (seq >= st->cap) return FL_NOTFOUND;
  blob_t *b = kind == FL_PBFT_REC_COMMITTED    ? &st->committed[seq]
              : kind == FL_PBFT_REC_CHECKPOINT ? &st->ckpt[seq]
                                               : NULL;
  if (b == NULL || !b->set) return FL_NOTFOUND;
  fl_sbuf_append(out, b->d, b->n);
  return FL_OK;
}

static void heap_push(sim_t *s, msg_t m) {
  if (s->nheap == s->capheap) {
    s->capheap = s->capheap ? s->capheap * 2 : 1024;
    s->heap = fl_reallocarray(s->heap, s->capheap, sizeof(*s->heap));
  }
  size_t i = s->nheap++;
  while (i > 0) {
    size_t pa = (i - 1) / 2;
    msg_t *q = &s->heap[pa];
    if (q->at < m.at || (q->at == m.at && q->order < m.order)) break;
    s->heap[i] = *q;
    i = pa;
  }
  s->heap[i] = m;
}

static msg_t heap_pop(sim_t *s) {
  msg_t top = s->heap[0];
  msg_t last = s->heap[--s->nheap];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, rr = l + 1, m = i;
    const msg_t *best = &last;
    if (l < s->nheap && (s->heap[l].at < best->at ||
                         (s->heap[l].at == best->at && s->heap[l].order < best->order))) {
      m = l;
      best = &s->heap[l];
    }
    if (rr < s->nheap && (s->heap[rr].at < best->at ||
                          (s->heap[rr].at == best->at && s->heap[rr].order < best->order))) {
      m = rr;
      best = &s->heap[rr];
    }
    if (m == i) break;
    s->heap[i] = s->heap[m];
    i = m;
  }
  if (s->nheap > 0) s->heap[i] = last;
  return top;
}

static bool cut_off(const sim_t *s, uint32_t a, uint32_t b) {
  const sim_opts_t *o = s->o;
  if (o->isolate_until && s->now < o->isolate_until &&
      (a == o->isolate) != (b == o->isolate))
    return true;
  for (uint32_t i = 0; i < s->npart; i++) {
    const part_t *pt = &s->part[i];
    if (s->now >= pt->from && s->now < pt->to &&
        (((pt->mask >> a) & 1u) != ((pt->mask >> b) & 1u)))
      return true;
  }
  return false;
}

static void net_one(sim_t *s, uint32_t from, uint32_t to, const uint8_t *d,
                    size_t n) {
  const sim_opts_t *o = s->o;
  s->res->messages++;
  bool faulty = s->now < o->heal_at;
  if (cut_off(s, from, to)) return;
  if (faulty && rng_unit(&s->rng) < o->drop) return;
  int copies = 1 + (faulty && rng_unit(&s->rng) < o->dup);
  for (int c = 0; c < copies; c++) {
    msg_t m = {.at = s->now + o->dmin + rng_below(&s->rng, o->dmax - o->dmin + 1),
               .order = s->order++, .from = from, .to = to,
               .d = fl_memdup(d, n), .n = n};
    heap_push(s, m);
  }
}

static void replay_keep(rep_t *r, const uint8_t *d, size_t n) {
  if (r->nsent == r->capsent) {
    if (r->capsent >= 4096) { /* ring: overwrite a random old one */
      size_t i = rng_below(&r->sim->rng, r->nsent);
      blob_set(&r->sent[i], FL_BUF(d, n));
      return;
    }
    r->capsent = r->capsent ? r->capsent * 2 : 256;
    r->sent = fl_reallocarray(r->sent, r->capsent, sizeof(*r->sent));
  }
  memset(&r->sent[r->nsent], 0, sizeof(blob_t));
  blob_set(&r->sent[r->nsent++], FL_BUF(d, n));
}

/* The sender's Byzantine behaviour, then the network. */
static void out_one(sim_t *s, rep_t *r, uint32_t to, const uint8_t *d, size_t n) {
  switch (r->byz) {
  case SIM_SILENT:
    return;
  case SIM_BADSIG: {
    uint8_t *c = fl_memdup(d, n);
    c[n - 1] ^= 0x5a; /* the signature is the last field */
    net_one(s, r->id, to, c, n);
    fl_free(c);
    double u = rng_unit(&s->rng);
    if (u < 0.05) { /* garbage */
      uint8_t junk[64];
      size_t jn = 1 + rng_below(&s->rng, sizeof(junk));
      for (size_t i = 0; i < jn; i++) junk[i] = (uint8_t)rng_next(&s->rng);
      net_one(s, r->id, to, junk, jn);
    } else if (u < 0.10) { /* claims to be someone else, or a non-member */
      fl_sbuf_t f = {0};
      uint32_t who = rng_below(&s->rng, 3) == 0 ? s->n + 3 : (r->id + 1) % s->n;
      if (fl_pbft_resign(&r->ops, who, FL_BUF(d, n), &f) == FL_OK)
        net_one(s, r->id, to, f.data, f.len);
      fl_sbuf_free(&f);
    }
    return;
  }
  case SIM_EQUIVOCATE: {
    fl_pbft_msg_info_t mi;
    if (to % 2 == 1 && fl_pbft_msg_peek(FL_BUF(d, n), &mi) == FL_OK &&
        mi.type == FL_PBFT_MSG_PRE_PREPARE) {
      char tx[64], env[96];
      snprintf(tx, sizeof(tx), "fake-%llu-%llu", (unsigned long long)mi.view,
               (unsigned long long)mi.seq);
      snprintf(env, sizeof(env), "env:%s:equivocation", tx);
      fl_pbft_request_t rq = {.envelope = FL_BUF(env, strlen(env)),
                              .tx_id = FL_BUF(tx, strlen(tx))};
      fl_sbuf_t alt = {0};
      if (fl_pbft_encode_pre_prepare(&r->ops, r->id, mi.view, mi.seq, &rq, 1,
                                     s->now, &alt) == FL_OK)
        net_one(s, r->id, to, alt.data, alt.len);
      fl_sbuf_free(&alt);
      return;
    }
    net_one(s, r->id, to, d, n);
    return;
  }
  case SIM_REPLAY:
    replay_keep(r, d, n);
    net_one(s, r->id, to, d, n);
    return;
  default:
    net_one(s, r->id, to, d, n);
  }
}

/* The orderer's block sync: a replica whose machine delivered (or, after a
 * state transfer by record, counts as delivered) blocks above its store's
 * next height gets the blocks in between as correct replicas delivered them
 * (a real orderer fetches them with Deliver and checks each). */
static void backfill(sim_t *s, rep_t *r, uint64_t upto) {
  while (r->nblocks < upto && !s->failed) {
    uint64_t h = r->nblocks + 1;
    if (h >= s->gbcap || !s->gblock_set[h]) return; /* nobody has it yet */
    if (r->nblocks == r->capblocks) {
      r->capblocks = r->capblocks ? r->capblocks * 2 : 64;
      r->hash = fl_reallocarray(r->hash, r->capblocks, 32);
    }
    memcpy(r->hash[r->nblocks++], s->gblock[h], 32);
    for (uint32_t i = 0; i < s->ngtx[h]; i++) {
      uint32_t idx = s->gtx[h][i];
      if (r->txcount[idx] == 0) r->txblock[idx] = h;
      if (++r->txcount[idx] == 1) r->ndelivered++;
      else if (r->txcount[idx] == 2 && h - r->txblock[idx] <= s->o->cfg.dedup_window)
        fail(s, "replica %u synced tx-%06u twice", r->id, idx);
    }
    r->synced++;
  }
}

static void on_deliver(sim_t *s, rep_t *r, const fl_pbft_action_t *a) {
  bool correct = r->byz == SIM_HONEST;
  uint64_t h = a->block_number;
  uint64_t num = 0;
  uint8_t hh[32];
  fl_status_t rc = fl_pbft_block_verify(&r->ops, s->n, a->bytes, &num, hh);
  if (rc != FL_OK || num != h || memcmp(hh, a->digest, 32) != 0) {
    fail(s, "replica %u delivered block %llu that does not verify (%s)", r->id,
         (unsigned long long)h, fl_status_name(rc));
    return;
  }
  if (h <= r->nblocks) { /* re-delivery after a restart: must be the same */
    if (memcmp(r->hash[h - 1], hh, 32) != 0)
      fail(s, "replica %u re-delivered a different block %llu", r->id,
           (unsigned long long)h);
    return;
  }
  if (h > r->nblocks + 1 && s->o->retention) backfill(s, r, h - 1);
  if (h != r->nblocks + 1) {
    fail(s, "replica %u delivered block %llu after %zu", r->id,
         (unsigned long long)h, r->nblocks);
    return;
  }
  if (r->nblocks == r->capblocks) {
    r->capblocks = r->capblocks ? r->capblocks * 2 : 64;
    r->hash = fl_reallocarray(r->hash, r->capblocks, 32);
  }
  memcpy(r->hash[r->nblocks++], hh, 32);
  bool record = false; /* the first correct delivery of h records its tx ids */
  if (correct) {
    if (h >= s->gbcap) {
      size_t nc = s->gbcap ? s->gbcap : 64;
      while (nc <= h) nc *= 2;
      s->gblock = fl_reallocarray(s->gblock, nc, 32);
      s->gblock_set = fl_reallocarray(s->gblock_set, nc, sizeof(bool));
      memset(s->gblock_set + s->gbcap, 0, (nc - s->gbcap) * sizeof(bool));
      s->gtx = fl_reallocarray(s->gtx, nc, sizeof(*s->gtx));
      memset(s->gtx + s->gbcap, 0, (nc - s->gbcap) * sizeof(*s->gtx));
      s->ngtx = fl_reallocarray(s->ngtx, nc, sizeof(*s->ngtx));
      memset(s->ngtx + s->gbcap, 0, (nc - s->gbcap) * sizeof(*s->ngtx));
      s->gbcap = nc;
    }
    if (s->gblock_set[h] && memcmp(s->gblock[h], hh, 32) != 0) {
      fail(s, "SAFETY: replica %u delivered a different block at height %llu",
           r->id, (unsigned long long)h);
      return;
    }
    record = !s->gblock_set[h];
    memcpy(s->gblock[h], hh, 32);
    s->gblock_set[h] = true;
    if (h > s->res->blocks) s->res->blocks = h;
    if (record) s->gtx[h] = fl_calloc(s->o->nreq ? s->o->nreq : 1, sizeof(uint32_t));
  }
  Fl__Common__Block *b =
      fl__common__block__unpack(NULL, a->bytes.len, a->bytes.data);
  if (b == NULL || b->data == NULL) {
    fail(s, "replica %u: block %llu does not parse", r->id, (unsigned long long)h);
    if (b) fl__common__block__free_unpacked(b, NULL);
    return;
  }
  for (size_t i = 0; i < b->data->n_envelopes; i++) {
    const ProtobufCBinaryData *e = &b->data->envelopes[i];
    /* Envelope bytes are not NUL-terminated: parse the digits from a
     * bounded copy (sscanf on the raw bytes read past the buffer). */
    unsigned idx = 0;
    char digits[7] = {0};
    if (e->len > 7 && memcmp(e->data, "env:tx-", 7) == 0)
      memcpy(digits, e->data + 7, e->len - 7 < 6 ? e->len - 7 : 6);
    if (digits[0] != '\0' && sscanf(digits, "%6u", &idx) == 1 && idx < s->o->nreq) {
      if (++r->txcount[idx] == 1) {
        r->ndelivered++;
        r->txblock[idx] = h;
      } else if (r->txcount[idx] == 2 && correct &&
                 h - r->txblock[idx] <= s->o->cfg.dedup_window) {
        fail(s, "replica %u delivered tx-%06u twice (blocks %llu and %llu)", r->id, idx,
             (unsigned long long)r->txblock[idx], (unsigned long long)h);
      }
      if (record && s->ngtx[h] < s->o->nreq) s->gtx[h][s->ngtx[h]++] = idx;
    }
  }
  fl__common__block__free_unpacked(b, NULL);
}

static void on_execute(sim_t *s, rep_t *r, const fl_pbft_action_t *a) {
  if (r->byz != SIM_HONEST) return;
  uint64_t q = a->seq;
  if (q >= s->gscap) {
    size_t nc = s->gscap ? s->gscap : 64;
    while (nc <= q) nc *= 2;
    s->gstate = fl_reallocarray(s->gstate, nc, 32);
    s->gstate_set = fl_reallocarray(s->gstate_set, nc, sizeof(bool));
    memset(s->gstate_set + s->gscap, 0, (nc - s->gscap) * sizeof(bool));
    s->gscap = nc;
  }
  if (s->gstate_set[q] && memcmp(s->gstate[q], a->state, 32) != 0) {
    fail(s, "SAFETY: replica %u executed a different batch at seq %llu", r->id,
         (unsigned long long)q);
    return;
  }
  memcpy(s->gstate[q], a->state, 32);
  s->gstate_set[q] = true;
}

static void apply(sim_t *s, rep_t *r, size_t limit) {
  const fl_pbft_action_t *acts = NULL;
  size_t n = fl_pbft_actions(r->p, &acts);
  if (limit < n) n = limit;
  for (size_t i = 0; i < n && !s->failed; i++) {
    const fl_pbft_action_t *a = &acts[i];
    store_t *st = &r->st;
    switch (a->type) {
    case FL_PBFT_ACT_SEND:
      if (a->to == FL_PBFT_TO_ALL) {
        for (uint32_t j = 0; j < s->n; j++)
          if (j != r->id) out_one(s, r, j, a->bytes.data, a->bytes.len);
      } else if (a->to < s->n && a->to != r->id) {
        out_one(s, r, a->to, a->bytes.data, a->bytes.len);
      } else {
        fail(s, "replica %u sent to bad destination %u", r->id, a->to);
      }
      break;
    case FL_PBFT_ACT_PERSIST:
      store_grow(st, a->seq);
      switch (a->kind) {
      case FL_PBFT_REC_VIEW: blob_set(&st->view, a->bytes); break;
      case FL_PBFT_REC_ENTRY: blob_set(&st->entry[a->seq], a->bytes); break;
      case FL_PBFT_REC_PREPARED: blob_set(&st->prepared[a->seq], a->bytes); break;
      case FL_PBFT_REC_CHECKPOINT:
        blob_set(&st->ckpt[a->seq], a->bytes);
        if (a->seq > st->max_ckpt) st->max_ckpt = a->seq;
        break;
      case FL_PBFT_REC_COMMITTED:
        /* In seq order; past a pruned log, a snapshot starts further on. */
        if (a->seq != st->max_committed + 1 && a->seq > st->max_committed &&
            !s->o->retention)
          fail(s, "replica %u persisted COMMITTED %llu after %llu", r->id,
               (unsigned long long)a->seq, (unsigned long long)st->max_committed);
        blob_set(&st->committed[a->seq], a->bytes);
        if (a->seq > st->max_committed) st->max_committed = a->seq;
        break;
      }
      break;
    case FL_PBFT_ACT_TRUNCATE: {
      for (size_t q = 0; q <= a->seq && q < st->cap; q++) {
        blob_clear(&st->entry[q]);
        blob_clear(&st->prepared[q]);
      }
      uint64_t top = a->seq < st->max_committed ? a->seq : st->max_committed;
      if (s->o->retention && top > s->o->retention)
        for (uint64_t q = 0; q < top - s->o->retention && q < st->cap; q++)
          blob_clear(&st->committed[q]);
      break;
    }
    case FL_PBFT_ACT_EXECUTE:
      on_execute(s, r, a);
      break;
    case FL_PBFT_ACT_DELIVER:
      on_deliver(s, r, a);
      break;
    }
  }
  fl_pbft_actions_clear(r->p);
  if (s->o->retention && r->p && !s->failed) {
    fl_pbft_info_t in;
    fl_pbft_info(r->p, &in);
    backfill(s, r, in.delivered_block);
  }
}

static void rep_boot(sim_t *s, rep_t *r, bool restore) {
  fl_pbft_config_t cfg = s->o->cfg;
  cfg.n = s->n;
  cfg.self = r->id;
  fl_status_t rc = fl_pbft_new(&cfg, &r->ops, &r->p);
  if (rc != FL_OK) {
    fail(s, "fl_pbft_new: %s", fl_status_name(rc));
    return;
  }
  if (restore) {
    store_t *st = &r->st;
    if (st->view.set)
      rc = fl_pbft_restore(r->p, FL_PBFT_REC_VIEW, 0, FL_BUF(st->view.d, st->view.n));
    if (rc == FL_OK && st->max_ckpt)
      rc = fl_pbft_restore(r->p, FL_PBFT_REC_CHECKPOINT, st->max_ckpt,
                           FL_BUF(st->ckpt[st->max_ckpt].d, st->ckpt[st->max_ckpt].n));
    for (size_t q = 0; rc == FL_OK && q < st->cap; q++)
      if (st->entry[q].set)
        rc = fl_pbft_restore(r->p, FL_PBFT_REC_ENTRY, q,
                             FL_BUF(st->entry[q].d, st->entry[q].n));
    for (size_t q = 0; rc == FL_OK && q < st->cap; q++)
      if (st->prepared[q].set)
        rc = fl_pbft_restore(r->p, FL_PBFT_REC_PREPARED, q,
                             FL_BUF(st->prepared[q].d, st->prepared[q].n));
    uint64_t lo = st->max_committed > cfg.dedup_window
                      ? st->max_committed - cfg.dedup_window + 1 : 1;
    for (uint64_t q = lo; rc == FL_OK && q <= st->max_committed; q++)
      if (st->committed[q].set) /* a snapshot leaves a gap below it */
        rc = fl_pbft_restore(r->p, FL_PBFT_REC_COMMITTED, q,
                             FL_BUF(st->committed[q].d, st->committed[q].n));
    if (rc != FL_OK) {
      fail(s, "replica %u restore: %s", r->id, fl_status_name(rc));
      return;
    }
  }
  rc = fl_pbft_start(r->p, s->now);
  if (rc != FL_OK) {
    fail(s, "replica %u start: %s", r->id, fl_status_name(rc));
    return;
  }
  r->up = true;
  apply(s, r, SIZE_MAX);
}

static void rep_crash(rep_t *r) {
  if (!r->up) return;
  fl_pbft_free(r->p);
  r->p = NULL;
  r->up = false;
}

static bool is_correct(const sim_t *s, const rep_t *r) {
  (void)s;
  return r->byz == SIM_HONEST && !r->crashed_for_good;
}

static bool all_done(const sim_t *s) {
  for (uint32_t i = 0; i < s->n; i++) {
    const rep_t *r = &s->r[i];
    if (!is_correct(s, r)) continue;
    if (!r->up || r->ndelivered < s->o->nreq) return false;
  }
  return true;
}

static void submit(sim_t *s, uint32_t req, uint32_t to) {
  rep_t *r = &s->r[to];
  if (!r->up) return;
  char tx[32], env[128];
  snprintf(tx, sizeof(tx), "tx-%06u", req);
  int pad = (int)(req % 40);
  snprintf(env, sizeof(env), "env:%s:%.*s", tx, pad,
           "0123456789abcdefghijklmnopqrstuvwxyzABCD");
  fl_status_t rc = fl_pbft_submit(r->p, FL_BUF(env, strlen(env)),
                                  FL_BUF(tx, strlen(tx)), s->now);
  if (rc != FL_OK && rc != FL_EEXIST && rc != FL_AGAIN)
    fail(s, "submit to %u: %s", to, fl_status_name(rc));
  apply(s, r, SIZE_MAX);
}

static uint32_t random_correct(sim_t *s) {
  for (int tries = 0; tries < 64; tries++) {
    uint32_t i = (uint32_t)rng_below(&s->rng, s->n);
    if (s->r[i].up && s->r[i].byz == SIM_HONEST) return i;
  }
  for (uint32_t i = 0; i < s->n; i++)
    if (s->r[i].up && s->r[i].byz == SIM_HONEST) return i;
  return 0;
}

static int cev_cmp(const void *a, const void *b) {
  const cev_t *x = a, *y = b;
  if (x->at != y->at) return x->at < y->at ? -1 : 1;
  return x->req < y->req ? -1 : x->req > y->req;
}

void sim_opts_random(uint32_t n, uint64_t seed, sim_opts_t *o) {
  memset(o, 0, sizeof(*o));
  rng_t g;
  rng_seed(&g, seed ^ 0xabcdef12345ull);
  o->n = n;
  o->seed = seed;
  o->nreq = 20 + (uint32_t)rng_below(&g, 31);
  o->drop = rng_unit(&g) * 0.15;
  o->dup = rng_unit(&g) * 0.10;
  o->dmin = 1;
  o->dmax = 2 + (uint32_t)rng_below(&g, 40);
  o->npart = (uint32_t)rng_below(&g, 3);
  o->heal_at = 1000 + rng_below(&g, 2000);
  o->t_max = o->heal_at + 60000;
  fl_pbft_config_t c = fl_pbft_config_default();
  c.checkpoint_interval = 4;
  c.log_window = 16;
  c.max_inflight = 8;
  c.batch_max_count = 1 + (uint32_t)rng_below(&g, 6);
  c.batch_max_bytes = 4096;
  c.batch_timeout_ms = 2 + rng_below(&g, 10);
  c.request_timeout_ms = 400;
  c.censor_timeout_ms = 4000;
  c.view_change_timeout_ms = 300;
  c.view_change_max_backoff = 4;
  c.resend_ms = 150;
  c.dedup_window = 1024;
  c.max_pending = 10000;
  c.state_chunk_bytes = 2048;
  /* Odd seeds run with adaptive batching (as the orderer does); decided
   * from the seed, not the PRNG, so every seed keeps its scenario. */
  if (seed % 2 == 1) {
    c.busy_inflight = 2;
    c.busy_timeout_ms = 4 * c.batch_timeout_ms;
  }
  /* Seeds 2-3 mod 4 cut when idle (the orderer's default), the others wait
   * for the batch timeout: both cut policies meet every scenario. */
  c.cut_when_idle = (seed / 2) % 2 == 1;
  /* Seeds 4-7 mod 8 drop redundant votes unverified (the orderer host's
   * cs_take_needed): every other scenario meets both hosts. */
  o->skip_redundant = (seed / 4) % 2 == 1;
  /* Seeds 8-15 mod 16 pace forwards (the orderer does: 5 ms by default). */
  if ((seed / 8) % 2 == 1) c.forward_interval_ms = 5;
  o->cfg = c;
}

static void sim_free(sim_t *s) {
  for (uint32_t i = 0; i < s->n; i++) {
    rep_t *r = &s->r[i];
    fl_pbft_free(r->p);
    store_free(&r->st);
    fl_free(r->hash);
    fl_free(r->txcount);
    fl_free(r->txblock);
    for (size_t k = 0; k < r->nsent; k++) blob_clear(&r->sent[k]);
    fl_free(r->sent);
  }
  while (s->nheap > 0) fl_free(heap_pop(s).d);
  fl_free(s->heap);
  fl_free(s->cev);
  fl_free(s->gblock);
  fl_free(s->gblock_set);
  for (size_t h = 0; h < s->gbcap; h++) fl_free(s->gtx ? s->gtx[h] : NULL);
  fl_free(s->gtx);
  fl_free(s->ngtx);
  fl_free(s->gstate);
  fl_free(s->gstate_set);
}

void sim_run(const sim_opts_t *o, sim_result_t *res) {
  memset(res, 0, sizeof(*res));
  sim_t *s = fl_calloc(1, sizeof(*s));
  s->o = o;
  s->res = res;
  s->n = o->n;
  s->f = (o->n - 1) / 3;
  rng_seed(&s->rng, o->seed);
  /* partitions */
  s->npart = o->npart < 8 ? o->npart : 8;
  for (uint32_t i = 0; i < s->npart; i++) {
    part_t *pt = &s->part[i];
    pt->from = rng_below(&s->rng, o->heal_at);
    pt->to = pt->from + 100 + rng_below(&s->rng, 1500);
    if (pt->to > o->heal_at) pt->to = o->heal_at;
    pt->mask = (uint32_t)rng_next(&s->rng) & ((1u << s->n) - 1);
  }
  /* client schedule: each request once, 10% a second time elsewhere */
  s->cev = fl_calloc(2 * (size_t)o->nreq + 1, sizeof(*s->cev));
  uint64_t span = o->heal_at * 8 / 10 + 1;
  for (uint32_t i = 0; i < o->nreq; i++) {
    s->cev[s->ncev++] = (cev_t){.at = rng_below(&s->rng, span), .req = i,
                                .to = (uint32_t)rng_below(&s->rng, s->n)};
    if (o->route_every > 0) {
      s->cev[s->ncev - 1].to = i % o->route_every == 0 ? o->route_rare : o->route_main;
      continue;
    }
    if (rng_below(&s->rng, 10) == 0 && !o->single_submit)
      s->cev[s->ncev++] = (cev_t){.at = rng_below(&s->rng, span), .req = i,
                                  .to = (uint32_t)rng_below(&s->rng, s->n)};
  }
  qsort(s->cev, s->ncev, sizeof(*s->cev), cev_cmp);
  for (uint32_t i = 0; i < s->n; i++) {
    rep_t *r = &s->r[i];
    r->id = i;
    r->sim = s;
    r->byz = o->byz[i];
    r->txcount = fl_calloc(o->nreq ? o->nreq : 1, 1);
    r->txblock = fl_calloc(o->nreq ? o->nreq : 1, sizeof(*r->txblock));
    r->ops = sim_ops(i);
    r->ops.ctx = r;
    r->ops.sign = rep_sign;
    r->ops.sign_digest = rep_sign_digest;
    r->ops.load = rep_load;
  }
  for (uint32_t i = 0; i < s->n && !s->failed; i++) {
    bool down_from_start = false;
    for (uint32_t c = 0; c < o->ncrash; c++)
      if (o->crash[c].replica == i && o->crash[c].at == 0) down_from_start = true;
    if (!down_from_start) rep_boot(s, &s->r[i], false);
    for (uint32_t c = 0; c < o->ncrash; c++)
      if (o->crash[c].replica == i && o->crash[c].restart_at == 0)
        s->r[i].crashed_for_good = true;
  }
  uint64_t next_tick = TICK_MS, next_check = o->heal_at, next_retry = o->heal_at;
  bool crash_done[4] = {0}, restart_done[4] = {0};
  while (!s->failed) {
    uint64_t t = next_tick;
    if (s->nheap && s->heap[0].at < t) t = s->heap[0].at;
    if (s->icev < s->ncev && s->cev[s->icev].at < t) t = s->cev[s->icev].at;
    if (t > o->t_max) break;
    s->now = t;
    for (uint32_t c = 0; c < o->ncrash; c++) {
      const sim_crash_t *cr = &o->crash[c];
      if (!crash_done[c] && cr->at > 0 &&
          t >= cr->at + (o->partial_crash ? 50 : 0)) {
        crash_done[c] = true;
        rep_crash(&s->r[cr->replica]);
      }
      if (!restart_done[c] && cr->restart_at > 0 && t >= cr->restart_at) {
        restart_done[c] = true;
        rep_boot(s, &s->r[cr->replica], true);
      }
    }
    while (s->icev < s->ncev && s->cev[s->icev].at <= t) {
      cev_t *e = &s->cev[s->icev++];
      uint32_t to = e->to;
      if (!s->r[to].up || (s->r[to].byz != SIM_HONEST && o->route_every == 0))
        to = random_correct(s);
      submit(s, e->req, to);
    }
    while (s->nheap && s->heap[0].at <= t && !s->failed) {
      msg_t m = heap_pop(s);
      rep_t *r = &s->r[m.to];
      fl_pbft_msg_info_t mi;
      if (r->up && o->skip_redundant && fl_pbft_msg_peek(FL_BUF(m.d, m.n), &mi) == FL_OK &&
          fl_pbft_redundant(r->p, &mi)) {
        fl_free(m.d);
        continue;
      }
      if (r->up && r->byz == SIM_CENSOR && fl_pbft_msg_peek(FL_BUF(m.d, m.n), &mi) == FL_OK &&
          mi.type == FL_PBFT_MSG_FORWARD) {
        fl_free(m.d); /* what other replicas hand it never gets ordered */
        continue;
      }
      if (r->up) {
        fl_pbft_step(r->p, FL_BUF(m.d, m.n), t);
        /* A crash may cut the action list short (persist-before-send). */
        size_t limit = SIZE_MAX;
        for (uint32_t c = 0; c < o->ncrash; c++)
          if (o->partial_crash && !crash_done[c] && o->crash[c].replica == m.to &&
              o->crash[c].at > 0 && o->crash[c].at <= t + 1) {
            const fl_pbft_action_t *acts;
            size_t na = fl_pbft_actions(r->p, &acts);
            limit = na ? rng_below(&s->rng, na) : 0;
            crash_done[c] = true;
            apply(s, r, limit);
            rep_crash(r);
            break;
          }
        if (r->up) apply(s, r, SIZE_MAX);
      }
      fl_free(m.d);
    }
    if (t == next_tick) {
      for (uint32_t i = 0; i < s->n && !s->failed; i++) {
        rep_t *r = &s->r[i];
        if (!r->up) continue;
        fl_pbft_tick(r->p, t);
        apply(s, r, SIZE_MAX);
        if (r->byz == SIM_REPLAY && r->nsent > 0 && rng_below(&s->rng, 4) == 0) {
          blob_t *b = &r->sent[rng_below(&s->rng, r->nsent)];
          net_one(s, r->id, (uint32_t)rng_below(&s->rng, s->n), b->d, b->n);
        }
      }
      next_tick += TICK_MS;
    }
    if (t >= next_check) {
      next_check = t + CHECK_MS;
      bool restarts_pending = false;
      for (uint32_t c = 0; c < o->ncrash; c++)
        if (o->crash[c].restart_at > t) restarts_pending = true;
      if (!restarts_pending && all_done(s)) break;
    }
    if (t >= next_retry && !o->no_retry) { /* clients retry what nobody has delivered */
      next_retry = t + RETRY_MS;
      for (uint32_t q = 0; q < o->nreq && q < 1u << 20; q++) {
        bool any = false;
        for (uint32_t i = 0; i < s->n && !any; i++)
          if (is_correct(s, &s->r[i]) && s->r[i].txcount[q]) any = true;
        if (!any && s->icev >= s->ncev) submit(s, q, random_correct(s));
      }
    }
  }
  res->end_ms = s->now;
  if (!s->failed && !all_done(s)) {
    char *w = res->why;
    size_t left = sizeof(res->why);
    int k = snprintf(w, left, "LIVENESS: not all delivered by t=%llu:",
                     (unsigned long long)s->now);
    for (uint32_t i = 0; i < s->n && k > 0 && (size_t)k < left; i++) {
      const rep_t *r = &s->r[i];
      if (!is_correct(s, r)) continue;
      fl_pbft_info_t in = {0};
      if (r->p) fl_pbft_info(r->p, &in);
      int m = snprintf(w + k, left - (size_t)k,
                       " r%u(up=%d got=%u/%u view=%llu%s exec=%llu low=%llu blk=%llu/%llu st=%d pend=%llu)",
                       i, r->up, r->ndelivered, o->nreq,
                       (unsigned long long)in.view, in.view_change ? "vc" : "",
                       (unsigned long long)in.last_executed,
                       (unsigned long long)in.low_watermark,
                       (unsigned long long)in.delivered_block,
                       (unsigned long long)in.last_block, in.state_transfer,
                       (unsigned long long)in.pending_requests);
      if (m < 0) break;
      k += m;
    }
    s->failed = true;
  }
  for (uint32_t i = 0; i < s->n; i++)
    if (s->r[i].p) {
      fl_pbft_stats(s->r[i].p, &res->stats[i]);
      fl_pbft_info(s->r[i].p, &res->info[i]);
    }
  res->ok = !s->failed;
  sim_free(s);
  fl_free(s);
}
