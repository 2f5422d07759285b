/* SPDX-License-Identifier: Apache-2.0
 *
 * events.c (fl_client): an events subscriber and the fl.events.Event
 * decoder (common/client/events.h). The protobuf-c struct stays private:
 * the event's views point into it, and it is freed with the event.
 */
#include <stdio.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/client/events.h"
#include "common/events/events.h"
#include "fl/events/events.pb-c.h"

struct fl_client_events_s {
  fl_events_sub_t *sub;
  uint64_t skipped;
};

typedef struct ev_mem_s {
  Fl__Events__Event *pb;
  fl_client_tx_status_t *txs;
} ev_mem_t;

static const char *nn(const char *s) { return s ? s : ""; }

void fl_client_event_clear(fl_client_event_t *e) {
  if (e == NULL) return;
  ev_mem_t *m = e->mem_;
  if (m) {
    if (m->pb) fl__events__event__free_unpacked(m->pb, NULL);
    fl_free(m->txs);
    fl_free(m);
  }
  memset(e, 0, sizeof *e);
}

fl_status_t fl_client_event_decode(fl_buf_t bytes, fl_client_event_t *out) {
  if (out == NULL) return FL_EINVAL;
  memset(out, 0, sizeof *out);
  Fl__Events__Event *pb = fl__events__event__unpack(NULL, bytes.len, bytes.data);
  if (pb == NULL) return FL_EMALFORMED;
  ev_mem_t *m = fl_calloc(1, sizeof *m);
  m->pb = pb;
  out->mem_ = m;
  out->peer = nn(pb->peer);
  out->tx_id = out->chaincode = out->name = "";
  if (pb->type_case == FL__EVENTS__EVENT__TYPE_BLOCK && pb->block != NULL) {
    const Fl__Events__BlockEvent *b = pb->block;
    out->kind = FL_CLIENT_EVENT_BLOCK;
    out->number = b->number;
    out->header_hash = FL_BUF(b->header_hash.data, b->header_hash.len);
    if (b->n_txs > 0) {
      m->txs = fl_calloc(b->n_txs, sizeof *m->txs);
      for (size_t i = 0; i < b->n_txs; i++) {
        if (b->txs[i] == NULL) goto bad;
        m->txs[i] = (fl_client_tx_status_t){.tx_id = nn(b->txs[i]->tx_id),
                                            .code = b->txs[i]->code,
                                            .chaincode = nn(b->txs[i]->chaincode)};
      }
    }
    out->txs = m->txs;
    out->n_txs = b->n_txs;
    return FL_OK;
  }
  if (pb->type_case == FL__EVENTS__EVENT__TYPE_CHAINCODE && pb->chaincode != NULL) {
    const Fl__Events__ChaincodeEvent *c = pb->chaincode;
    out->kind = FL_CLIENT_EVENT_CHAINCODE;
    out->block_number = c->block_number;
    out->tx_id = nn(c->tx_id);
    out->chaincode = nn(c->chaincode);
    out->name = nn(c->name);
    out->payload = FL_BUF(c->payload.data, c->payload.len);
    return FL_OK;
  }
bad:
  fl_client_event_clear(out);
  return FL_EMALFORMED;
}

fl_status_t fl_client_events_open(const char *url, fl_client_events_t **out) {
  if (out == NULL) return FL_EINVAL;
  *out = NULL;
  if (url == NULL) return FL_EINVAL;
  fl_client_events_t *ev = fl_calloc(1, sizeof *ev);
  fl_status_t rc = fl_events_sub_new(0, &ev->sub);
  if (rc == FL_OK) rc = fl_events_sub_connect(ev->sub, url);
  if (rc != FL_OK) {
    fl_client_events_close(ev);
    return rc;
  }
  *out = ev;
  return FL_OK;
}

fl_status_t fl_client_events_subscribe_blocks(fl_client_events_t *ev) {
  if (ev == NULL) return FL_EINVAL;
  return fl_events_sub_subscribe_topic(ev->sub, FL_EVENTS_TOPIC_BLOCK);
}

fl_status_t fl_client_events_subscribe_chaincode(fl_client_events_t *ev, const char *chaincode) {
  if (ev == NULL) return FL_EINVAL;
  if (chaincode == NULL) return fl_events_sub_subscribe(ev->sub, FL_EVENTS_TOPIC_CC_PREFIX);
  if (chaincode[0] == '\0' || strlen(chaincode) > FL_EVENTS_TOPIC_MAX - 3) return FL_EINVAL;
  char topic[FL_EVENTS_TOPIC_MAX + 1];
  snprintf(topic, sizeof topic, "%s%s", FL_EVENTS_TOPIC_CC_PREFIX, chaincode);
  return fl_events_sub_subscribe_topic(ev->sub, topic);
}

fl_status_t fl_client_events_next(fl_client_events_t *ev, int timeout_ms,
                                  fl_client_event_t *out) {
  if (ev == NULL || out == NULL) return FL_EINVAL;
  memset(out, 0, sizeof *out);
  for (;;) {
    fl_events_msg_t msg;
    fl_status_t rc = fl_events_recv(ev->sub, timeout_ms, &msg);
    if (rc == FL_EMALFORMED) {
      ev->skipped++;
      continue;
    }
    if (rc != FL_OK) return rc;
    rc = fl_client_event_decode(msg.payload, out);
    bool topic_ok =
        rc == FL_OK &&
        (out->kind == FL_CLIENT_EVENT_BLOCK
             ? strcmp(msg.topic, FL_EVENTS_TOPIC_BLOCK) == 0
             : strncmp(msg.topic, FL_EVENTS_TOPIC_CC_PREFIX, 3) == 0 &&
                   strcmp(msg.topic + 3, out->chaincode) == 0);
    fl_events_msg_free(&msg);
    if (topic_ok) return FL_OK;
    fl_client_event_clear(out);
    ev->skipped++;
  }
}

uint64_t fl_client_events_skipped(const fl_client_events_t *ev) { return ev->skipped; }

fl_status_t fl_client_events_fd(fl_client_events_t *ev, int *fd) {
  if (ev == NULL || fd == NULL) return FL_EINVAL;
  return fl_events_sub_fd(ev->sub, fd);
}

void fl_client_events_close(fl_client_events_t *ev) {
  if (ev == NULL) return;
  fl_events_sub_free(ev->sub);
  fl_free(ev);
}
