/* SPDX-License-Identifier: Apache-2.0
 *
 * proxy.c: the lying orderer (proxy.h). Everything but px_start/px_stop
 * and px_tampered runs on the proxy's loop thread.
 */
#include "tests/integration/peer/proxy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/net/rpc.h"
#include "fl/common/common.pb-c.h"
#include "fl/orderer/ab.pb-c.h"

struct px_s {
  pn_net_t *net;
  px_mode_t mode;
  uint64_t from;
  uv_loop_t loop;
  uv_async_t stop;
  pthread_t th;
  fl_rpc_server_t *srv;
  uint16_t port;
  char cert[600], key[600];
  const char *cas[1];
  fl_tls_config_t tls_srv, tls_cli;
  uint16_t up_port;
  atomic_uint tampered;
  fl_status_t start_rc;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool ready;
};

typedef struct pcall_s {
  px_t *px;
  fl_rpc_call_t *call;
  fl_rpc_client_t *up;
  bool skipped;
  bool ended;
} pcall_t;

static void up_closed(fl_rpc_client_t *c, void *arg) {
  (void)c;
  fl_free(arg);
}

static fl_rpc_client_t *upstream(px_t *px) {
  fl_rpc_client_opts_t o = {.host = "127.0.0.1", .port = px->up_port, .tls = &px->tls_cli,
                            .max_frame = 64u << 20, .connect_timeout_ms = 2000};
  fl_rpc_client_t *c = NULL;
  if (fl_rpc_client_new(&px->loop, &o, &c, NULL) != FL_OK) return NULL;
  return c;
}

/* Returns the block bytes to forward (maybe rewritten into tmp), or an
 * empty view to drop the message. */
static fl_buf_t tamper(pcall_t *pc, fl_buf_t msg, fl_sbuf_t *tmp) {
  px_t *px = pc->px;
  Fl__Orderer__DeliverResponse *r = fl__orderer__deliver_response__unpack(NULL, msg.len, msg.data);
  fl_buf_t out = msg;
  if (r == NULL || r->type_case != FL__ORDERER__DELIVER_RESPONSE__TYPE_BLOCK) goto done;
  Fl__Common__Block *b = r->block;
  Fl__Common__BlockHeader *h = fl__common__block_header__unpack(NULL, b->header.len, b->header.data);
  if (h == NULL) goto done;
  uint64_t num = h->number;
  fl__common__block_header__free_unpacked(h, NULL);
  if (num < px->from) goto done;
  if (px->mode == PX_BAD_SIG && b->metadata) {
    for (size_t i = 0; i < b->metadata->n_signatures; i++) {
      ProtobufCBinaryData *s = &b->metadata->signatures[i]->signature;
      if (s->len > 8) s->data[s->len - 3] ^= 0x01;
    }
    tmp->len = 0;
    fl_sbuf_reserve(tmp, fl__orderer__deliver_response__get_packed_size(r) + 1);
    tmp->len = fl__orderer__deliver_response__pack(r, tmp->data);
    out = fl_sbuf_view(tmp);
    atomic_fetch_add(&px->tampered, 1);
    fprintf(stderr, "# proxy: block %llu served with broken signatures\n", (unsigned long long)num);
  } else if (px->mode == PX_SKIP && !pc->skipped) {
    pc->skipped = true;
    out = (fl_buf_t){0};
    atomic_fetch_add(&px->tampered, 1);
    fprintf(stderr, "# proxy: block %llu withheld, the next one will not link\n",
            (unsigned long long)num);
  }
done:
  if (r) fl__orderer__deliver_response__free_unpacked(r, NULL);
  return out;
}

static void d_msg(void *arg, fl_buf_t msg) {
  pcall_t *pc = arg;
  if (pc->ended) return;
  fl_sbuf_t tmp = {0};
  fl_buf_t out = tamper(pc, msg, &tmp);
  if (out.len) fl_rpc_call_send(pc->call, out);
  fl_sbuf_free(&tmp);
}

static void d_end(void *arg, fl_status_t st, const char *err) {
  pcall_t *pc = arg;
  if (!pc->ended) {
    pc->ended = true;
    fl_rpc_call_end(pc->call, st, err);
  }
  fl_rpc_client_t *up = pc->up; /* NULL: a close is under way, up_closed frees */
  pc->up = NULL;
  if (up) fl_rpc_client_close(up, up_closed, pc);
}

static void d_cancel(fl_rpc_call_t *call, void *arg) {
  pcall_t *pc = arg;
  (void)call;
  if (pc->ended) return;
  pc->ended = true;
  fl_rpc_call_end(pc->call, FL_ECANCELED, NULL);
  fl_rpc_client_t *up = pc->up;
  pc->up = NULL;
  if (up) fl_rpc_client_close(up, up_closed, pc); /* d_end runs first, up_closed frees */
}

static void h_deliver(fl_rpc_call_t *call, void *arg) {
  px_t *px = arg;
  pcall_t *pc = fl_calloc(1, sizeof(*pc));
  pc->px = px;
  pc->call = call;
  pc->up = upstream(px);
  if (pc->up == NULL ||
      fl_rpc_client_stream(pc->up, "Orderer/Deliver", fl_rpc_call_request(call), 0, d_msg, d_end,
                           pc, NULL) != FL_OK) {
    fl_rpc_call_end(call, FL_EUNAVAIL, "proxy: no upstream");
    if (pc->up) fl_rpc_client_close(pc->up, NULL, NULL);
    fl_free(pc);
    return;
  }
  fl_rpc_call_on_cancel(call, d_cancel, pc);
}

typedef struct bcall_s {
  fl_rpc_call_t *call;
  fl_rpc_client_t *up;
} bcall_t;

static void b_done(void *arg, fl_status_t st, const char *err, fl_buf_t reply) {
  bcall_t *bc = arg;
  if (st == FL_OK) fl_rpc_call_reply(bc->call, FL_OK, reply);
  else fl_rpc_call_end(bc->call, st, err);
  fl_rpc_client_close(bc->up, NULL, NULL);
  fl_free(bc);
}

static void h_broadcast(fl_rpc_call_t *call, void *arg) {
  px_t *px = arg;
  if (px->mode == PX_EAT_BROADCAST) { /* "accepted", and never passed on */
    Fl__Orderer__BroadcastResponse r = FL__ORDERER__BROADCAST_RESPONSE__INIT;
    uint8_t buf[64];
    size_t n = fl__orderer__broadcast_response__pack(&r, buf);
    atomic_fetch_add(&px->tampered, 1);
    fl_rpc_call_reply(call, FL_OK, FL_BUF(buf, n));
    return;
  }
  bcall_t *bc = fl_calloc(1, sizeof(*bc));
  bc->call = call;
  bc->up = upstream(px);
  if (bc->up == NULL || fl_rpc_client_unary(bc->up, "Orderer/Broadcast", fl_rpc_call_request(call),
                                            10000, b_done, bc, NULL) != FL_OK) {
    fl_rpc_call_end(call, FL_EUNAVAIL, "proxy: no upstream");
    if (bc->up) fl_rpc_client_close(bc->up, NULL, NULL);
    fl_free(bc);
  }
}

static void on_stop(uv_async_t *a) {
  px_t *px = a->data;
  if (px->srv) fl_rpc_server_close(px->srv, NULL, NULL);
  px->srv = NULL;
  uv_close((uv_handle_t *)&px->stop, NULL);
}

static void *run(void *arg) {
  px_t *px = arg;
  uv_loop_init(&px->loop);
  uv_async_init(&px->loop, &px->stop, on_stop);
  px->stop.data = px;
  fl_rpc_server_opts_t so = {.host = "127.0.0.1", .port = 0, .tls = &px->tls_srv,
                             .max_frame = 64u << 20};
  fl_status_t rc = fl_rpc_server_new(&px->loop, &so, &px->srv, NULL);
  if (rc == FL_OK) {
    fl_rpc_server_handle(px->srv, "Orderer/Deliver", FL_RPC_SERVER_STREAM, h_deliver, px);
    fl_rpc_server_handle(px->srv, "Orderer/Broadcast", FL_RPC_UNARY, h_broadcast, px);
    rc = fl_rpc_server_start(px->srv);
  }
  pthread_mutex_lock(&px->mu);
  px->start_rc = rc;
  px->port = rc == FL_OK ? fl_rpc_server_port(px->srv) : 0;
  px->ready = true;
  pthread_cond_signal(&px->cv);
  pthread_mutex_unlock(&px->mu);
  uv_run(&px->loop, UV_RUN_DEFAULT);
  uv_loop_close(&px->loop);
  return NULL;
}

fl_status_t px_start(pn_net_t *net, int up, px_mode_t mode, uint64_t from, px_t **out) {
  px_t *px = fl_calloc(1, sizeof(*px));
  px->net = net;
  px->mode = mode;
  px->from = from;
  px->up_port = net->oport[up];
  snprintf(px->cert, sizeof(px->cert),
           "%s/pki/ordererOrganizations/example.com/orderers/orderer%d.example.com/tls/server.crt",
           net->dir, up);
  snprintf(px->key, sizeof(px->key),
           "%s/pki/ordererOrganizations/example.com/orderers/orderer%d.example.com/tls/server.key",
           net->dir, up);
  px->cas[0] = net->tls_roots;
  px->tls_srv = (fl_tls_config_t){.cert_file = px->cert, .key_file = px->key, .ca_files = px->cas,
                                  .n_ca_files = 1};
  px->tls_cli = px->tls_srv;
  px->tls_cli.server_name = "127.0.0.1";
  atomic_init(&px->tampered, 0);
  pthread_mutex_init(&px->mu, NULL);
  pthread_cond_init(&px->cv, NULL);
  if (pthread_create(&px->th, NULL, run, px) != 0) {
    fl_free(px);
    return FL_EIO;
  }
  pthread_mutex_lock(&px->mu);
  while (!px->ready) pthread_cond_wait(&px->cv, &px->mu);
  pthread_mutex_unlock(&px->mu);
  if (px->start_rc != FL_OK) {
    fl_status_t rc = px->start_rc;
    px_stop(px);
    return rc;
  }
  *out = px;
  return FL_OK;
}

uint16_t px_port(const px_t *px) { return px->port; }

uint32_t px_tampered(px_t *px) { return atomic_load(&px->tampered); }

void px_stop(px_t *px) {
  if (px == NULL) return;
  uv_async_send(&px->stop);
  pthread_join(px->th, NULL);
  pthread_mutex_destroy(&px->mu);
  pthread_cond_destroy(&px->cv);
  fl_free(px);
}
