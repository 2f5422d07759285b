/* SPDX-License-Identifier: Apache-2.0
 *
 * fxnet.c: the fault tests' helpers (fxnet.h).
 */
#include "tests/faults/fxnet.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/base/alloc.h"
#include "common/protoutil/block.h"
#include "fl/orderer/ab.pb-c.h"

uint64_t fx_peer_height(pn_net_t *net, int i) {
  fl_rpc_sync_t *s = NULL;
  uint64_t h = 0;
  if (pn_connect_peer(net, i, net->porg[i], &s) == FL_OK && pn_chain_info(s, &h, NULL) != FL_OK)
    h = 0;
  fl_rpc_sync_close(s);
  return h;
}

/* ------------------------------------------------------ orderer chains */

static void pack_msg(const ProtobufCMessage *m, fl_sbuf_t *out) {
  out->len = 0;
  size_t n = protobuf_c_message_get_packed_size(m);
  fl_sbuf_reserve(out, n + 1);
  out->len = protobuf_c_message_pack(m, out->data);
}

/* SignedSeekInfo by client 0: OLDEST .. NEWEST, fail if not ready. */
static void seek_all(pn_net_t *net, fl_sbuf_t *req) {
  Fl__Orderer__SeekPosition sp, ep;
  fl__orderer__seek_position__init(&sp);
  fl__orderer__seek_position__init(&ep);
  sp.kind = FL__ORDERER__SEEK_POSITION__KIND__OLDEST;
  ep.kind = FL__ORDERER__SEEK_POSITION__KIND__NEWEST;
  Fl__Orderer__SeekInfo si;
  fl__orderer__seek_info__init(&si);
  si.start = &sp;
  si.stop = &ep;
  si.behavior = FL__ORDERER__SEEK_INFO__BEHAVIOR__FAIL_IF_NOT_READY;
  fl_sbuf_t sib = {0}, sig = {0};
  pack_msg(&si.base, &sib);
  fl_signer_sign(net->client[0].key, sib.data, sib.len, &sig);
  Fl__Orderer__SignedSeekInfo ss;
  fl__orderer__signed_seek_info__init(&ss);
  ss.seek_info.data = sib.data;
  ss.seek_info.len = sib.len;
  ss.identity.data = net->client[0].id.data;
  ss.identity.len = net->client[0].id.len;
  ss.signature.data = sig.data;
  ss.signature.len = sig.len;
  pack_msg(&ss.base, req);
  fl_sbuf_free(&sib);
  fl_sbuf_free(&sig);
}

typedef struct chain_s {
  fl_sbuf_t *hashes;
  uint64_t n;
  bool bad;
} chain_t;

static int chain_msg(void *arg, fl_buf_t msg) {
  chain_t *c = arg;
  Fl__Orderer__DeliverResponse *r = fl__orderer__deliver_response__unpack(NULL, msg.len, msg.data);
  if (r == NULL) {
    c->bad = true;
    return 1;
  }
  int rc = 0;
  if (r->type_case == FL__ORDERER__DELIVER_RESPONSE__TYPE_BLOCK) {
    fl_sbuf_t b = {0};
    pack_msg(&r->block->base, &b);
    fl_block_t *blk = NULL;
    if (fl_block_decode(b.data, b.len, &blk, NULL) != FL_OK || blk->number != c->n) {
      c->bad = true;
      rc = 1;
    } else {
      if (c->hashes) fl_sbuf_append(c->hashes, blk->header_hash, 32);
      c->n++;
    }
    fl_block_free(blk);
    fl_sbuf_free(&b);
  }
  fl__orderer__deliver_response__free_unpacked(r, NULL);
  return rc;
}

fl_status_t fx_orderer_chain(pn_net_t *net, int i, fl_sbuf_t *hashes, uint64_t *height) {
  *height = 0;
  fl_rpc_sync_t *s = NULL;
  fl_status_t rc = pn_connect_orderer(net, i, &s);
  if (rc != FL_OK) return rc;
  fl_sbuf_t req = {0};
  seek_all(net, &req);
  chain_t c = {.hashes = hashes};
  rc = fl_rpc_sync_stream(s, "Orderer/Deliver", fl_sbuf_view(&req), 30000, chain_msg, &c, NULL);
  fl_rpc_sync_close(s);
  fl_sbuf_free(&req);
  if (c.bad) return FL_EMALFORMED;
  *height = c.n;
  return rc == FL_OK || c.n > 0 ? FL_OK : rc;
}

/* --------------------------------------------------------------- probes */

fl_status_t fx_probe(pn_net_t *net, int peer, uint32_t timeout_ms, uint64_t *ms) {
  static atomic_uint seq;
  uint64_t t0 = pn_now_ms(), end = t0 + timeout_ms;
  int org = net->porg[peer];
  fl_status_t rc = FL_ETIMEDOUT;
  while (pn_now_ms() < end) {
    fl_rpc_sync_t *s = NULL;
    fl_sbuf_t sp = {0}, pl = {0}, env = {0};
    char txid[FL_TXID_HEX_LEN + 1], key[48], *err = NULL;
    int cs = 0, code = -1;
    uint64_t blk = 0;
    snprintf(key, sizeof(key), "probe/%u", atomic_fetch_add(&seq, 1));
    const char *args[] = {"put", key, "1", NULL};
    rc = pn_connect_peer(net, peer, org, &s);
    if (rc == FL_OK) rc = pn_proposal(net, org, "kvstore", args, &sp, txid);
    if (rc == FL_OK) rc = pn_gw_endorse(s, fl_sbuf_view(&sp), txid, &pl, &cs, NULL, &err);
    if (rc == FL_OK && (cs >= 400 || pl.len == 0)) rc = FL_EPERM;
    if (rc == FL_OK) rc = pn_sign_envelope(net, org, fl_sbuf_view(&pl), &env);
    if (rc == FL_OK) rc = pn_gw_submit(s, fl_sbuf_view(&env), txid, &err);
    uint64_t now = pn_now_ms();
    uint32_t left = now < end ? (uint32_t)(end - now) : 1;
    if (rc == FL_OK) rc = pn_gw_status(net, s, org, txid, left, &code, &blk, &err);
    if (rc == FL_OK && code != 0) rc = FL_ECONFLICT;
    fl_free(err);
    fl_sbuf_free(&sp);
    fl_sbuf_free(&pl);
    fl_sbuf_free(&env);
    fl_rpc_sync_close(s);
    if (rc == FL_OK) break;
    pn_sleep_ms(200);
  }
  *ms = pn_now_ms() - t0;
  return rc;
}

uint64_t fx_settle(pn_net_t *net, unsigned mask, uint32_t timeout_ms) {
  uint64_t end = pn_now_ms() + timeout_ms;
  while (pn_now_ms() < end) {
    uint64_t h0 = 0;
    bool same = true, first = true;
    for (int i = 0; i < PN_NPEER; i++) {
      if (!(mask & (1u << i))) continue;
      uint64_t h = fx_peer_height(net, i);
      if (first) h0 = h;
      first = false;
      if (h == 0 || h != h0) same = false;
    }
    if (same && h0 > 0) {
      pn_sleep_ms(300);
      bool still = true;
      for (int i = 0; i < PN_NPEER && still; i++)
        if ((mask & (1u << i)) && fx_peer_height(net, i) != h0) still = false;
      if (still) return h0;
    }
    pn_sleep_ms(100);
  }
  fprintf(stderr, "fx: peers did not settle on one height:");
  for (int i = 0; i < PN_NPEER; i++)
    if (mask & (1u << i)) fprintf(stderr, " %llu", (unsigned long long)fx_peer_height(net, i));
  fprintf(stderr, "\n");
  return 0;
}

fl_status_t fx_check_agree(pn_net_t *net, unsigned mask, unsigned omask, uint64_t h) {
  fl_status_t rc = FL_OK;
  fl_rpc_sync_t *s[PN_NPEER] = {0};
  fl_sbuf_t ref = {0}, x = {0}, hashes = {0}, oh = {0};
  int first = -1;
  for (int i = 0; i < PN_NPEER; i++) {
    if (!(mask & (1u << i))) continue;
    if (pn_connect_peer(net, i, net->porg[i], &s[i]) != FL_OK) {
      fprintf(stderr, "fx: peer %d does not answer\n", i);
      rc = FL_ECONFLICT;
      goto done;
    }
    if (first < 0) first = i;
  }
  /* Peers: the same header (hence data hash and link) and the same
   * validation codes at every height. The orderer signatures may differ:
   * each peer keeps the 2f+1 (or more) its orderer delivered. */
  for (uint64_t n = 0; n < h && rc == FL_OK; n++) {
    fl_block_t *rb = NULL;
    for (int i = 0; i < PN_NPEER; i++) {
      if (!(mask & (1u << i))) continue;
      fl_sbuf_t *dst = i == first ? &ref : &x;
      fl_block_t *b = NULL;
      if (pn_get_block(s[i], n, dst) != FL_OK || fl_block_decode(dst->data, dst->len, &b, NULL) != FL_OK) {
        fprintf(stderr, "fx: peer %d has no readable block %llu\n", i, (unsigned long long)n);
        rc = FL_ECONFLICT;
        break;
      }
      if (i == first) {
        fl_sbuf_append(&hashes, b->header_hash, 32);
        rb = b;
        continue;
      }
      const char *what = NULL;
      if (memcmp(b->header_hash, rb->header_hash, 32) != 0) what = "header hash";
      else if (b->n_validation_codes != rb->n_validation_codes ||
               (b->n_validation_codes &&
                memcmp(b->validation_codes, rb->validation_codes, b->n_validation_codes) != 0))
        what = "validation codes";
      fl_block_free(b);
      if (what) {
        fprintf(stderr, "fx: FORK: block %llu: %s differ between peer %d and peer %d\n",
                (unsigned long long)n, what, first, i);
        rc = FL_ECONFLICT;
        break;
      }
    }
    fl_block_free(rb);
  }
  /* Orderers: the same header hashes as the peers, and as each other. */
  for (int i = 0; i < PN_NORD && rc == FL_OK; i++) {
    if (!(omask & (1u << i)) || net->opid[i] <= 0) continue;
    uint64_t oht = 0;
    oh.len = 0;
    fl_status_t r = fx_orderer_chain(net, i, &oh, &oht);
    if (r != FL_OK || oht < h) {
      fprintf(stderr, "fx: orderer %d: %s, %llu blocks (peers have %llu)\n", i,
              fl_status_name(r), (unsigned long long)oht, (unsigned long long)h);
      rc = FL_ECONFLICT;
      break;
    }
    if (memcmp(oh.data, hashes.data, (size_t)h * 32) != 0) {
      for (uint64_t n = 0; n < h; n++)
        if (memcmp(oh.data + n * 32, hashes.data + n * 32, 32) != 0) {
          fprintf(stderr, "fx: FORK: orderer %d block %llu header hash differs from the peers'\n",
                  i, (unsigned long long)n);
          break;
        }
      rc = FL_ECONFLICT;
    }
  }
done:
  for (int i = 0; i < PN_NPEER; i++) fl_rpc_sync_close(s[i]);
  fl_sbuf_free(&ref);
  fl_sbuf_free(&x);
  fl_sbuf_free(&hashes);
  fl_sbuf_free(&oh);
  return rc;
}

fl_status_t fx_same_state(pn_net_t *net, int a, int b, size_t *n) {
  fl_rpc_sync_t *sa = NULL, *sb = NULL;
  fl_sbuf_t x = {0}, y = {0};
  int ca = 0, cb = 0;
  const char *args[] = {"range", "", "", NULL};
  fl_status_t rc = pn_connect_peer(net, a, net->porg[a], &sa);
  if (rc == FL_OK) rc = pn_connect_peer(net, b, net->porg[b], &sb);
  if (rc == FL_OK) rc = pn_gw_evaluate(net, sa, net->porg[a], "kvstore", args, &ca, &x);
  if (rc == FL_OK) rc = pn_gw_evaluate(net, sb, net->porg[b], "kvstore", args, &cb, &y);
  if (rc == FL_OK && (ca != 200 || cb != 200)) rc = FL_EIO;
  if (rc == FL_OK && (x.len != y.len || memcmp(x.data, y.data, x.len) != 0)) {
    fprintf(stderr, "fx: kvstore state of peer %d (%zu bytes) differs from peer %d (%zu bytes)\n",
            a, x.len, b, y.len);
    rc = FL_ECONFLICT;
  }
  if (n) *n = x.len;
  fl_sbuf_free(&x);
  fl_sbuf_free(&y);
  fl_rpc_sync_close(sa);
  fl_rpc_sync_close(sb);
  return rc;
}

void fx_kill_orderer(pn_net_t *net, int i) {
  if (net->opid[i] <= 0) return;
  kill(net->opid[i], SIGKILL);
  waitpid(net->opid[i], NULL, 0);
  net->opid[i] = 0;
}

/* ----------------------------------------------------------------- load */

struct fx_load_s {
  pn_net_t *net;
  char tag[32];
  uint32_t batch, inflight;
  pthread_t th;
  atomic_bool stop, pause, paused;
  atomic_uint valid, failed;
};

static void *load_main(void *arg) {
  fx_load_t *l = arg;
  unsigned b = 0;
  char prefix[64];
  while (!atomic_load(&l->stop)) {
    if (atomic_load(&l->pause)) {
      atomic_store(&l->paused, true);
      pn_sleep_ms(20);
      continue;
    }
    atomic_store(&l->paused, false);
    int gw[1] = {(b & 1) ? 2 : 0};
    snprintf(prefix, sizeof(prefix), "%s/%u/", l->tag, b++);
    uint32_t v = 0, f = 0;
    pn_load(l->net, gw, 1, prefix, l->batch, l->inflight, &v, &f);
    atomic_fetch_add(&l->valid, v);
    atomic_fetch_add(&l->failed, f);
  }
  atomic_store(&l->paused, true);
  return NULL;
}

fx_load_t *fx_load_start(pn_net_t *net, const char *tag, uint32_t batch, uint32_t inflight) {
  fx_load_t *l = fl_calloc(1, sizeof(*l));
  l->net = net;
  snprintf(l->tag, sizeof(l->tag), "%s", tag);
  l->batch = batch;
  l->inflight = inflight;
  if (pthread_create(&l->th, NULL, load_main, l) != 0) {
    fl_free(l);
    return NULL;
  }
  return l;
}

void fx_load_pause(fx_load_t *l) {
  atomic_store(&l->paused, false);
  atomic_store(&l->pause, true);
  while (!atomic_load(&l->paused)) pn_sleep_ms(10);
}

void fx_load_resume(fx_load_t *l) { atomic_store(&l->pause, false); }

void fx_load_stop(fx_load_t *l, uint32_t *valid, uint32_t *failed) {
  if (l == NULL) return;
  atomic_store(&l->stop, true);
  pthread_join(l->th, NULL);
  if (valid) *valid = atomic_load(&l->valid);
  if (failed) *failed = atomic_load(&l->failed);
  fl_free(l);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

uint64_t fx_pct(uint64_t *v, size_t k, double p) {
  if (k == 0) return 0;
  qsort(v, k, sizeof(*v), cmp_u64);
  size_t i = (size_t)(p / 100.0 * (double)(k - 1) + 0.5);
  return v[i < k ? i : k - 1];
}
