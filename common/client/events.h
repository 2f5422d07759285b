/* SPDX-License-Identifier: Apache-2.0
 *
 * events.h (fl_client): following a peer's events: a nanomsg SUB socket on
 * the peer's events URL (common/events) plus decoding of fl.events.Event
 * into plain C structs.
 *
 * Events are notifications, not proof (docs/protocol.md, 6): delivery is
 * best effort and nothing is signed. A client that must not miss a block,
 * or must trust it, uses fl_client_deliver with a chain verifier.
 *
 * Threads: fl_client_events_next may be called from one thread at a time;
 * fl_client_events_close must not overlap any other call.
 */
#ifndef FL_CLIENT_EVENTS_H
#define FL_CLIENT_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

typedef struct fl_client_events_s fl_client_events_t;

typedef enum fl_client_event_kind_e {
  FL_CLIENT_EVENT_BLOCK = 1,      /* topic "block" */
  FL_CLIENT_EVENT_CHAINCODE = 2,  /* topic "cc/<chaincode>" */
} fl_client_event_kind_t;

/** One transaction of a block event. */
typedef struct fl_client_tx_status_s {
  const char *tx_id;
  int32_t code;                   /* TxValidationCode */
  const char *chaincode;
} fl_client_tx_status_t;

/** A decoded event. Strings are never NULL. All views are owned by the
 *  event until fl_client_event_clear. */
typedef struct fl_client_event_s {
  fl_client_event_kind_t kind;
  const char *peer;               /* publishing peer's name */
  /* FL_CLIENT_EVENT_BLOCK */
  uint64_t number;
  fl_buf_t header_hash;
  const fl_client_tx_status_t *txs;
  size_t n_txs;
  /* FL_CLIENT_EVENT_CHAINCODE */
  uint64_t block_number;
  const char *tx_id, *chaincode, *name;
  fl_buf_t payload;
  void *mem_;                     /* private */
} fl_client_event_t;

/** Decodes a serialized fl.events.Event (the part after the topic's NUL).
 *  Borrows bytes. Returns FL_OK with *out owning its memory
 *  (fl_client_event_clear); FL_EMALFORMED when it does not decode or is
 *  neither a block nor a chaincode event. */
fl_status_t fl_client_event_decode(fl_buf_t bytes, fl_client_event_t *out /* out */);

/** Frees what an event owns and zeroes it. NULL-safe, idempotent. */
void fl_client_event_clear(fl_client_event_t *e);

/** Opens a subscriber connected to url ("tcp://127.0.0.1:7053",
 *  "ipc:///path"), subscribed to nothing yet. Connecting is asynchronous:
 *  events published before the connection is up are not seen. Returns FL_OK
 *  with *out owned (fl_client_events_close), FL_EINVAL for a bad URL, or a
 *  nanomsg failure. */
fl_status_t fl_client_events_open(const char *url, fl_client_events_t **out /* out */);

/** Subscribes to block events. */
fl_status_t fl_client_events_subscribe_blocks(fl_client_events_t *ev);

/** Subscribes to one chaincode's events (NULL: every chaincode's). */
fl_status_t fl_client_events_subscribe_chaincode(fl_client_events_t *ev, const char *chaincode);

/** Waits for the next event (timeout_ms: 0 = do not wait, < 0 = forever).
 *  Messages that do not decode, or whose topic does not match their kind,
 *  are skipped (counted in fl_client_events_skipped). Returns FL_OK with
 *  *out owning an event; FL_AGAIN (nothing queued with timeout 0 or
 *  interrupted), FL_ETIMEDOUT, FL_ECLOSED, FL_EIO. */
fl_status_t fl_client_events_next(fl_client_events_t *ev, int timeout_ms,
                                  fl_client_event_t *out /* out */);

/** Number of messages skipped as malformed. */
uint64_t fl_client_events_skipped(const fl_client_events_t *ev);

/** A descriptor that polls readable while a message is queued (for a
 *  uv_poll_t; then call fl_client_events_next(ev, 0, ...) until FL_AGAIN).
 *  Owned by the socket. */
fl_status_t fl_client_events_fd(fl_client_events_t *ev, int *fd /* out */);

/** Closes and frees. NULL-safe. */
void fl_client_events_close(fl_client_events_t *ev);

#endif /* FL_CLIENT_EVENTS_H */
