/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_frame.c: fuzz target of the RPC frame decoder (common/net/frame.h).
 *
 * The input is a byte stream as a peer would send it. It is decoded twice:
 * with the one-shot decoder, and with the incremental decoder fed in chunks
 * whose sizes come from the input itself; both must agree frame by frame.
 * Every decoded frame is re-encoded and decoded again, and the round trip
 * must give the same fields (the bytes may differ: protobuf allows several
 * encodings of one message).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/net/frame.h"
#include "tests/fuzz/fuzz.h"

#define MAX_FRAME (1u << 20)

static void check(int cond) {
  if (!cond) abort();
}

static int same_str(const char *a, const char *b) {
  if (a == NULL || b == NULL) return a == b;
  return strcmp(a, b) == 0;
}

static void same_frame(const fl_frame_t *a, const fl_frame_t *b) {
  check(a->call_id == b->call_id);
  check(a->flags == b->flags);
  check(a->status == b->status);
  check(same_str(a->method, b->method));
  check(same_str(a->error, b->error));
  check(fl_buf_eq(a->payload, b->payload));
}

static void roundtrip(const fl_frame_t *f) {
  check(fl_frame_validate(f, NULL) == FL_OK);
  fl_sbuf_t out = {0};
  check(fl_frame_encode(&out, f, MAX_FRAME) == FL_OK);
  check(out.len == fl_frame_encoded_size(f));
  fl_frame_t *g = NULL;
  size_t used = 0;
  check(fl_frame_decode(out.data, out.len, MAX_FRAME, &g, &used, NULL) == FL_OK);
  check(used == out.len);
  same_frame(f, g);
  fl_frame_free(g);
  fl_sbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* One-shot decoding, frame after frame. */
  enum { MAX_FRAMES = 64 };
  fl_frame_t *oneshot[MAX_FRAMES];
  size_t n1 = 0, off = 0;
  fl_status_t end1 = FL_AGAIN;
  while (n1 < MAX_FRAMES) {
    fl_frame_t *f = NULL;
    size_t used = 0;
    char *msg = NULL;
    fl_status_t rc = fl_frame_decode(data + off, size - off, MAX_FRAME, &f, &used, &msg);
    if (rc != FL_OK) {
      check(f == NULL);
      check((rc == FL_AGAIN) == (msg == NULL));
      fl_free(msg);
      end1 = rc;
      break;
    }
    check(used >= FL_FRAME_HEADER && used <= size - off);
    roundtrip(f);
    oneshot[n1++] = f;
    off += used;
  }

  /* Incremental decoding with input-driven chunk sizes. */
  fl_frame_decoder_t *d = fl_frame_decoder_new(MAX_FRAME);
  size_t n2 = 0, pos = 0;
  fl_status_t end2 = FL_AGAIN;
  bool capped = n1 == MAX_FRAMES;
  unsigned step = size ? (unsigned)data[0] % 37u + 1u : 1u;
  for (;;) {
    fl_frame_t *f = NULL;
    fl_status_t rc = fl_frame_decoder_next(d, &f);
    if (rc == FL_OK) {
      if (n2 < n1) same_frame(f, oneshot[n2]);
      fl_frame_free(f);
      if (++n2 >= MAX_FRAMES) break;
      continue;
    }
    if (rc != FL_AGAIN) {
      end2 = rc;
      check(fl_frame_decoder_error(d) != NULL);
      check(fl_frame_decoder_next(d, &f) == rc); /* sticky */
      break;
    }
    if (pos >= size) break;
    size_t chunk = size - pos < step ? size - pos : step;
    if (pos % 2) {
      fl_frame_decoder_feed(d, data + pos, chunk);
    } else {
      size_t avail = 0;
      uint8_t *p = fl_frame_decoder_space(d, chunk, &avail);
      check(avail >= chunk);
      memcpy(p, data + pos, chunk);
      fl_frame_decoder_commit(d, chunk);
    }
    pos += chunk;
    step = step * 7u % 61u + 1u;
  }
  if (!capped) {
    check(n2 == n1);
    check(end2 == end1);
  }
  fl_frame_decoder_free(d);
  for (size_t i = 0; i < n1; i++) fl_frame_free(oneshot[i]);
  return 0;
}
