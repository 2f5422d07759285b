/* SPDX-License-Identifier: Apache-2.0
 *
 * events.h: block and chaincode events over nanomsg PUB/SUB.
 *
 * A peer publishes on a PUB socket bound to one or more URLs
 * ("tcp://127.0.0.1:7053", "ipc:///run/fl/peer0.events"); clients, tools and
 * the edge runner subscribe with SUB sockets connected to one or more peers.
 * Events carry only what the ledger already shows (docs/protocol.md, 6).
 *
 * Message layout on the wire (one nanomsg message):
 *
 *   +---------------------+------+---------------------------------------+
 *   | topic (1..255 bytes,| 0x00 | payload (any bytes; for fedledger a   |
 *   | no NUL)             |      | serialized fl.events.Event)           |
 *   +---------------------+------+---------------------------------------+
 *
 * Topics are "block" and "cc/<chaincode>". nanomsg filters by byte prefix of
 * the whole message, so a subscription to "cc/" gets every chaincode's events
 * and fl_events_sub_subscribe_topic("block") (which includes the NUL in the
 * filter) gets "block" but not "blocks".
 *
 * Delivery is best effort, by design of PUB/SUB: publishing never blocks
 * (nanomsg's PUB never waits for a subscriber), a subscriber whose receive
 * buffer is full loses messages inside nanomsg (invisible to the publisher,
 * which only counts what nanomsg refused), messages published before a
 * subscriber's connection is established (connects are asynchronous) are
 * not seen, and a message larger than the subscriber's limit makes nanomsg
 * drop that connection (it reconnects). A subscriber that needs every block
 * uses Deliver over RPC; events are for low-latency notification.
 *
 * Errors: nn_errno() is mapped to fl_status_t (EADDRINUSE -> FL_EUNAVAIL with
 * "Address already in use" in the text, ETIMEDOUT -> FL_ETIMEDOUT, EAGAIN
 * and EINTR -> FL_AGAIN, a bad URL -> FL_EINVAL, a closed socket ->
 * FL_ECLOSED, others -> FL_EIO). The text of the last failure (with
 * nn_strerror's words and the URL) is kept per thread: fl_events_last_error.
 *
 * Threads: nanomsg sockets are thread-safe, and so are fl_events_publish
 * (any number of threads on one publisher) and fl_events_recv (several
 * threads may receive on one subscriber; each message goes to one of
 * them). Bind, connect and subscribe may run concurrently with them. *_free
 * must not overlap any other call on the same handle.
 */
#ifndef FL_COMMON_EVENTS_EVENTS_H
#define FL_COMMON_EVENTS_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

typedef struct fl_events_pub_s fl_events_pub_t;
typedef struct fl_events_sub_s fl_events_sub_t;

/** Longest topic accepted, in bytes (without the NUL). */
#define FL_EVENTS_TOPIC_MAX 255
/** Default largest message a subscriber accepts (topic + NUL + payload). */
#define FL_EVENTS_DEFAULT_MAX_MSG ((size_t)1 << 20)

/** Topics fedledger publishes. */
#define FL_EVENTS_TOPIC_BLOCK "block"
#define FL_EVENTS_TOPIC_CC_PREFIX "cc/"

/** Text of the last failure of an fl_events call on the calling thread
 *  ("" if none). Borrowed: valid until the next fl_events call on this
 *  thread. */
const char *fl_events_last_error(void);

/* ---- publisher ------------------------------------------------------- */

/** Creates a PUB socket. sndbuf_bytes is the per-subscriber send buffer
 *  (how far a subscriber may fall behind before it loses messages); 0 keeps
 *  nanomsg's default (128 KiB). Returns FL_OK and an owned publisher in *out
 *  (free with fl_events_pub_free), or an error with *out NULL. */
fl_status_t fl_events_pub_new(size_t sndbuf_bytes,
                              fl_events_pub_t **out /* out */);

/** Binds to url (tcp://host:port with a non-zero port, or ipc://path); may be
 *  called several times for several URLs. Returns FL_OK; FL_EUNAVAIL when
 *  the address is in use ("Address already in use" in the text); FL_EINVAL
 *  for a malformed or unsupported URL (port 0 included: nanomsg cannot
 *  report the chosen port); FL_EIO otherwise. */
fl_status_t fl_events_pub_bind(fl_events_pub_t *pub, const char *url);

/** Publishes one message: topic (1..FL_EVENTS_TOPIC_MAX bytes, NUL-terminated
 *  C string), a NUL, then len bytes of payload (borrowed; payload may be NULL
 *  when len is 0). Never blocks. Returns FL_OK when nanomsg took the message
 *  (subscribers that are behind may still miss it); FL_AGAIN when nanomsg
 *  refused it without waiting (counted as a drop); FL_EINVAL for a bad
 *  topic or size; FL_ECLOSED or FL_EIO otherwise. Thread-safe. */
fl_status_t fl_events_publish(fl_events_pub_t *pub, const char *topic,
                              const void *payload, size_t len);

/** Counters since fl_events_pub_new. Thread-safe. */
typedef struct fl_events_pub_stats_s {
  uint64_t published;  /* messages nanomsg took */
  uint64_t dropped;    /* messages nanomsg refused (FL_AGAIN) */
} fl_events_pub_stats_t;
void fl_events_pub_stats(const fl_events_pub_t *pub,
                         fl_events_pub_stats_t *out /* out */);

/** Closes the socket and frees the publisher. NULL-safe. */
void fl_events_pub_free(fl_events_pub_t *pub);

/* ---- subscriber ------------------------------------------------------ */

/** Creates a SUB socket that accepts messages up to max_msg_bytes (0 =
 *  FL_EVENTS_DEFAULT_MAX_MSG, at most INT_MAX). It receives nothing until
 *  subscribed. Returns FL_OK and an owned subscriber in *out (free with
 *  fl_events_sub_free), or an error with *out NULL. */
fl_status_t fl_events_sub_new(size_t max_msg_bytes,
                              fl_events_sub_t **out /* out */);

/** Connects to a publisher's url; may be called for several publishers.
 *  Asynchronous: returns FL_OK for a well-formed URL even if nobody listens
 *  yet (nanomsg reconnects in the background). FL_EINVAL for a bad URL. */
fl_status_t fl_events_sub_connect(fl_events_sub_t *sub, const char *url);

/** Subscribes to every topic that starts with prefix ("" = everything).
 *  Returns FL_OK, FL_EINVAL for NULL or a prefix longer than
 *  FL_EVENTS_TOPIC_MAX, or a nanomsg error. */
fl_status_t fl_events_sub_subscribe(fl_events_sub_t *sub, const char *prefix);

/** Subscribes to exactly this topic (the filter includes the NUL). */
fl_status_t fl_events_sub_subscribe_topic(fl_events_sub_t *sub,
                                          const char *topic);

/** Removes a subscription made with fl_events_sub_subscribe (exact=0) or
 *  fl_events_sub_subscribe_topic (exact=1). */
fl_status_t fl_events_sub_unsubscribe(fl_events_sub_t *sub, const char *prefix,
                                      int exact);

/** One received message. topic and payload point into a buffer owned by the
 *  message; they stay valid until fl_events_msg_free. */
typedef struct fl_events_msg_s {
  const char *topic;   /* NUL-terminated */
  size_t topic_len;
  fl_buf_t payload;
  void *raw;           /* nanomsg's buffer; freed by fl_events_msg_free */
} fl_events_msg_t;

/** Receives the next message. timeout_ms: 0 = do not wait, < 0 = wait
 *  forever, > 0 = wait at most that long. On FL_OK, *msg owns a message
 *  (free with fl_events_msg_free). Returns FL_AGAIN when timeout_ms is 0 and
 *  nothing is queued (or a signal interrupted the wait), FL_ETIMEDOUT when
 *  the wait ran out, FL_EMALFORMED for a message without a NUL-terminated
 *  non-empty topic (it is discarded), FL_ECLOSED or FL_EIO otherwise. On any
 *  error *msg is zeroed. Thread-safe. */
fl_status_t fl_events_recv(fl_events_sub_t *sub, int timeout_ms,
                           fl_events_msg_t *msg /* out */);

/** Frees a received message and zeroes *msg. NULL-safe, idempotent. */
void fl_events_msg_free(fl_events_msg_t *msg);

/** Sets *fd to a file descriptor that polls readable while a message is
 *  queued (nanomsg's NN_RCVFD), for uv_poll_t with UV_READABLE: on a readable
 *  event call fl_events_recv(sub, 0, ...) until FL_AGAIN. The descriptor
 *  belongs to the socket: never read, write or close it. Valid until
 *  fl_events_sub_free. */
fl_status_t fl_events_sub_fd(fl_events_sub_t *sub, int *fd /* out */);

/** Closes the socket and frees the subscriber. NULL-safe. */
void fl_events_sub_free(fl_events_sub_t *sub);

#endif /* FL_COMMON_EVENTS_EVENTS_H */
