/* SPDX-License-Identifier: Apache-2.0
 *
 * inproc.c: FL_CCRT_IN_PROCESS. The chaincode's invoke runs on the calling
 * thread and its stub calls the simulator directly. Nothing is isolated: a
 * crash or abort in the chaincode takes the peer down, and the timeout is
 * only noticed when the chaincode calls the stub or returns (a loop that
 * never calls the stub hangs this thread). Used where speed matters more
 * than isolation (benchmarks, trusted chaincode) and as the reference the
 * fork mode must agree with byte for byte.
 */
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/crypto/x509.h"
#include "peer/ccrt/ccrt_int.h"

typedef struct ip_stub_s ip_stub_t;

typedef struct ip_range_s {
  fl_cc_range_iter_t base; /* first: the shim casts through it */
  ip_stub_t *st;
  uint32_t id;
  uint64_t consumed;
  bool saw_end;
  bool closed;
} ip_range_t;

typedef struct ip_hist_s {
  fl_cc_hist_iter_t base;
  ip_stub_t *st;
  uint32_t id;
  bool closed;
} ip_hist_t;

struct ip_stub_s {
  fl_cc_stub_t base; /* first */
  fl__sim_t *sim;
  const fl_ccrt_invocation_t *inv;
  fl_cc_bytes_t *argv;
  fl__arena_t arena;
  ip_range_t **ranges;
  size_t nranges, rcap;
  ip_hist_t **hists;
  size_t nhists, hcap;
  fl_cert_t *cert; /* the creator's, parsed on first use; owned */
  bool cert_parsed;
};

static fl_buf_t B(fl_cc_bytes_t b) { return (fl_buf_t){.data = b.data, .len = b.len}; }
static fl_cc_bytes_t CB(fl_buf_t b) { return (fl_cc_bytes_t){.data = b.data, .len = b.len}; }

static void ip_get_args(fl_cc_stub_t *s, size_t *argc, const fl_cc_bytes_t **argv) {
  ip_stub_t *st = (ip_stub_t *)s;
  *argc = st->inv->nargs;
  *argv = st->argv;
}

/* Hands the bytes a read put in v (FL_OK) to the chaincode, owned by the
 * invocation's arena; frees v. */
static int ip_hand_over(ip_stub_t *st, fl_status_t rc, fl_sbuf_t *v, fl_cc_bytes_t *out) {
  if (rc == FL_OK) {
    size_t n;
    fl_sbuf_reserve(v, 1); /* a non-NULL pointer also for empty bytes */
    uint8_t *p = fl_sbuf_detach(v, &n);
    fl__arena_adopt(&st->arena, p);
    *out = (fl_cc_bytes_t){.data = p, .len = n};
  }
  fl_sbuf_free(v);
  return fl__cc_rc(rc);
}

static int ip_get_state(fl_cc_stub_t *s, fl_cc_bytes_t key, fl_cc_bytes_t *value) {
  ip_stub_t *st = (ip_stub_t *)s;
  *value = (fl_cc_bytes_t){0};
  fl_sbuf_t v = {0};
  return ip_hand_over(st, fl__sim_get(st->sim, B(key), &v), &v, value);
}

static int ip_get_stored_blob(fl_cc_stub_t *s, const uint8_t hash[FL_CC_HASH_LEN],
                              fl_cc_bytes_t *blob) {
  ip_stub_t *st = (ip_stub_t *)s;
  *blob = (fl_cc_bytes_t){0};
  fl_sbuf_t v = {0};
  return ip_hand_over(st, fl__sim_blob_get(st->sim, hash, &v), &v, blob);
}

static int ip_put_state(fl_cc_stub_t *s, fl_cc_bytes_t key, fl_cc_bytes_t value) {
  return fl__cc_rc(fl__sim_put(((ip_stub_t *)s)->sim, B(key), B(value)));
}

static int ip_del_state(fl_cc_stub_t *s, fl_cc_bytes_t key) {
  return fl__cc_rc(fl__sim_del(((ip_stub_t *)s)->sim, B(key)));
}

static const fl_cc_stub_ops_t ip_ops;

static int ip_get_state_range(fl_cc_stub_t *s, fl_cc_bytes_t start, fl_cc_bytes_t end,
                              fl_cc_range_iter_t **it) {
  ip_stub_t *st = (ip_stub_t *)s;
  *it = NULL;
  uint32_t id;
  fl_status_t rc = fl__sim_range_open(st->sim, B(start), B(end), &id);
  if (rc != FL_OK) return fl__cc_rc(rc);
  ip_range_t *r = fl__arena_alloc(&st->arena, sizeof *r);
  *r = (ip_range_t){.base.ops = &ip_ops, .st = st, .id = id};
  if (st->nranges == st->rcap) {
    st->rcap = st->rcap ? st->rcap * 2 : 4;
    st->ranges = fl_reallocarray(st->ranges, st->rcap, sizeof *st->ranges);
  }
  st->ranges[st->nranges++] = r;
  *it = &r->base;
  return FL_CC_OK;
}

static int ip_range_next(fl_cc_range_iter_t *it, fl_cc_kv_t *kv) {
  ip_range_t *r = (ip_range_t *)it;
  *kv = (fl_cc_kv_t){0};
  if (r->closed) return FL_CC_EINVAL;
  if (r->saw_end) return FL_CC_NOTFOUND;
  fl_buf_t k, v;
  fl_status_t rc = fl__sim_range_next(r->st->sim, r->id, &k, &v);
  if (rc == FL_NOTFOUND) r->saw_end = true;
  if (rc != FL_OK) return fl__cc_rc(rc);
  r->consumed++;
  kv->key = CB(k);
  kv->value = CB(v);
  return FL_CC_OK;
}

static void ip_range_close(fl_cc_range_iter_t *it) {
  ip_range_t *r = (ip_range_t *)it;
  if (r->closed) return;
  r->closed = true;
  fl__sim_range_close(r->st->sim, r->id, r->consumed, r->saw_end);
}

static int ip_get_history(fl_cc_stub_t *s, fl_cc_bytes_t key, fl_cc_hist_iter_t **it) {
  ip_stub_t *st = (ip_stub_t *)s;
  *it = NULL;
  uint32_t id;
  fl_status_t rc = fl__sim_hist_open(st->sim, B(key), &id);
  if (rc != FL_OK) return fl__cc_rc(rc);
  ip_hist_t *h = fl__arena_alloc(&st->arena, sizeof *h);
  *h = (ip_hist_t){.base.ops = &ip_ops, .st = st, .id = id};
  if (st->nhists == st->hcap) {
    st->hcap = st->hcap ? st->hcap * 2 : 4;
    st->hists = fl_reallocarray(st->hists, st->hcap, sizeof *st->hists);
  }
  st->hists[st->nhists++] = h;
  *it = &h->base;
  return FL_CC_OK;
}

static int ip_hist_next(fl_cc_hist_iter_t *it, fl_cc_mod_t *mod) {
  ip_hist_t *h = (ip_hist_t *)it;
  *mod = (fl_cc_mod_t){0};
  if (h->closed) return FL_CC_EINVAL;
  fl_ccrt_mod_t m;
  fl_status_t rc = fl__sim_hist_next(h->st->sim, h->id, &m);
  if (rc != FL_OK) return fl__cc_rc(rc);
  *mod = (fl_cc_mod_t){.tx_id = CB(m.tx_id), .block_num = m.block, .tx_num = m.tx,
                       .is_delete = m.is_delete, .value = CB(m.value)};
  return FL_CC_OK;
}

static void ip_hist_close(fl_cc_hist_iter_t *it) {
  ip_hist_t *h = (ip_hist_t *)it;
  if (h->closed) return;
  h->closed = true;
  fl__sim_hist_close(h->st->sim, h->id);
}

static size_t ip_get_blob_count(fl_cc_stub_t *s) { return ((ip_stub_t *)s)->inv->nblobs; }

static int ip_get_blob(fl_cc_stub_t *s, size_t i, fl_cc_bytes_t *blob) {
  const fl_ccrt_invocation_t *inv = ((ip_stub_t *)s)->inv;
  *blob = (fl_cc_bytes_t){0};
  if (i >= inv->nblobs) return FL_CC_NOTFOUND;
  *blob = CB(inv->blobs[i]);
  return FL_CC_OK;
}

static int ip_put_blob(fl_cc_stub_t *s, fl_cc_bytes_t data, uint8_t hash[FL_CC_HASH_LEN]) {
  return fl__cc_rc(fl__sim_put_blob(((ip_stub_t *)s)->sim, B(data), hash));
}

static fl_cc_bytes_t ip_get_transient(fl_cc_stub_t *s) {
  return CB(((ip_stub_t *)s)->inv->transient);
}
static fl_cc_bytes_t ip_get_tx_id(fl_cc_stub_t *s) { return CB(((ip_stub_t *)s)->inv->tx_id); }
static uint64_t ip_get_timestamp(fl_cc_stub_t *s) {
  return ((ip_stub_t *)s)->inv->timestamp_ms;
}

static void ip_get_creator(fl_cc_stub_t *s, fl_cc_creator_t *c) {
  const fl_ccrt_creator_t *cr = &((ip_stub_t *)s)->inv->creator;
  *c = (fl_cc_creator_t){.mspid = CB(cr->mspid), .cert_pem = CB(cr->cert_pem),
                         .role = CB(cr->role),
                         .cert_sha256 = {.data = cr->cert_sha256, .len = FL_CCRT_HASH_LEN}};
}

/* The creator's certificate, parsed once per invocation (NULL when it does
 * not parse). In-process mode keeps no cache: invocations run on many
 * threads at once, and the parse is what the chaincode paid before ABI 3. */
static const fl_cert_t *ip_cert(ip_stub_t *st) {
  if (!st->cert_parsed) {
    fl_buf_t pem = st->inv->creator.cert_pem;
    if (pem.len && fl_cert_from_pem(pem.data, pem.len, &st->cert) != FL_OK) st->cert = NULL;
    st->cert_parsed = true;
  }
  return st->cert;
}

static int ip_get_creator_cn(fl_cc_stub_t *s, fl_cc_bytes_t *cn) {
  return fl__cert_cn(ip_cert((ip_stub_t *)s), cn); /* valid until the cert is freed */
}

static int ip_verify_creator(fl_cc_stub_t *s, fl_cc_bytes_t msg, fl_cc_bytes_t sig) {
  return fl__cert_verify(ip_cert((ip_stub_t *)s), msg, sig);
}

static int ip_set_event(fl_cc_stub_t *s, fl_cc_bytes_t name, fl_cc_bytes_t payload) {
  return fl__cc_rc(fl__sim_set_event(((ip_stub_t *)s)->sim, B(name), B(payload)));
}

static void *ip_alloc(fl_cc_stub_t *s, size_t n) {
  if (n > FL_CC_MAX_VALUE) return NULL;
  return fl__arena_alloc(&((ip_stub_t *)s)->arena, n);
}

static const fl_cc_stub_ops_t ip_ops = {
    .abi_version = FL_CC_ABI_VERSION,
    .get_args = ip_get_args,
    .get_state = ip_get_state,
    .put_state = ip_put_state,
    .del_state = ip_del_state,
    .get_state_range = ip_get_state_range,
    .range_next = ip_range_next,
    .range_close = ip_range_close,
    .get_history_for_key = ip_get_history,
    .hist_next = ip_hist_next,
    .hist_close = ip_hist_close,
    .get_blob_count = ip_get_blob_count,
    .get_blob = ip_get_blob,
    .put_blob = ip_put_blob,
    .get_stored_blob = ip_get_stored_blob,
    .get_transient = ip_get_transient,
    .get_tx_id = ip_get_tx_id,
    .get_timestamp = ip_get_timestamp,
    .get_creator = ip_get_creator,
    .set_event = ip_set_event,
    .alloc = ip_alloc,
    .get_creator_cn = ip_get_creator_cn,
    .verify_creator = ip_verify_creator,
};

fl_status_t fl__inproc_simulate(fl_ccrt_cc_t *cc, fl__sim_t *sim,
                                const fl_ccrt_invocation_t *inv, int32_t *status,
                                fl_sbuf_t *msg, fl_sbuf_t *payload, char **err) {
  ip_stub_t st = {.base.ops = &ip_ops, .sim = sim, .inv = inv};
  st.argv = fl__arena_alloc(&st.arena, inv->nargs * sizeof *st.argv);
  for (size_t i = 0; i < inv->nargs; i++) st.argv[i] = CB(inv->args[i]);
  sim->deadline_ns = fl_mono_ns() + (uint64_t)cc->rt->timeout_ms * 1000000u;

  fl_cc_response_t resp;
  if (inv->init && !cc->desc->init)
    resp = fl_cc_error(FL_CC_STATUS_NOT_FOUND, fl_cc_str("chaincode has no init function"));
  else
    resp = inv->init ? cc->desc->init(&st.base) : cc->desc->invoke(&st.base);

  for (size_t i = 0; i < st.nranges; i++) ip_range_close(&st.ranges[i]->base);
  for (size_t i = 0; i < st.nhists; i++) ip_hist_close(&st.hists[i]->base);
  fl__sim_check_deadline(sim); /* sets sim->failed if the deadline passed */

  fl_status_t rc = FL_OK;
  if (resp.message.len > FL_CC_MAX_VALUE || resp.payload.len > FL_CC_MAX_VALUE ||
      (resp.message.len && !resp.message.data) || (resp.payload.len && !resp.payload.data)) {
    fl__ccrt_err(err, "chaincode %s returned a malformed response", cc->name);
    rc = FL_EINTERNAL;
  } else {
    *status = resp.status;
    fl_sbuf_append(msg, resp.message.data, resp.message.len);
    fl_sbuf_append(payload, resp.payload.data, resp.payload.len);
  }
  fl_free(st.ranges);
  fl_free(st.hists);
  fl__arena_free(&st.arena);
  fl_cert_free(st.cert);
  return rc;
}
