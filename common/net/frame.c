/* SPDX-License-Identifier: Apache-2.0
 *
 * frame.c: encoder and incremental decoder of the RPC wire frame.
 *
 * The decoder runs protobuf-c's unpack with a custom allocator backed by a
 * per-decoder scratch arena (a bump allocator with a malloc fallback for
 * large blocks). The arena is reset after every frame, so the only
 * allocation that survives a decode is the single block holding the
 * fl_frame_t and its bytes. The arena also enforces a budget of
 * 2 * L + 4 KiB bytes per unpack: protobuf-c copies unknown fields into an
 * array of 24-byte records, so a frame full of tiny unknown fields could
 * otherwise make a 16 MiB frame cost ~200 MiB of temporary memory.
 *
 * Decoder buffer invariants:
 *   1. 0 <= start <= end <= cap; bytes [start, end) are undecoded input;
 *   2. when err != FL_OK it never changes again (sticky);
 *   3. an empty buffer larger than SHRINK_ABOVE is released, so one large
 *      frame does not pin memory for the life of a connection.
 */
#include "common/net/frame.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/base/alloc.h"
#include "fl/rpc/frame.pb-c.h"

#define SCRATCH_CHUNK (16u * 1024u)
#define SHRINK_ABOVE ((size_t)1 << 20)

/* ---- scratch arena for protobuf-c ---------------------------------------- */

typedef union big_u {
  union big_u *next;
  max_align_t align;
} big_t;

typedef struct scratch_s {
  uint8_t *chunk;      /* SCRATCH_CHUNK bytes, allocated on first use */
  size_t used;
  size_t budget;       /* bytes still allowed in this unpack */
  big_t *big;          /* blocks that did not fit in chunk */
} scratch_t;

static void *scratch_alloc(void *ad, size_t n) {
  scratch_t *s = ad;
  size_t need = (n + 15u) & ~(size_t)15u;
  if (need < n || need > s->budget) return NULL; /* protobuf-c fails cleanly */
  s->budget -= need;
  if (need <= SCRATCH_CHUNK - s->used) {
    if (s->chunk == NULL) s->chunk = fl_malloc(SCRATCH_CHUNK);
    void *p = s->chunk + s->used;
    s->used += need;
    return p;
  }
  big_t *b = fl_malloc(sizeof(big_t) + need);
  b->next = s->big;
  s->big = b;
  return b + 1;
}

static void scratch_free(void *ad, void *p) {
  /* Everything is released at once by scratch_reset. */
  (void)ad;
  (void)p;
}

static void scratch_reset(scratch_t *s) {
  while (s->big) {
    big_t *n = s->big->next;
    fl_free(s->big);
    s->big = n;
  }
  s->used = 0;
}

static void scratch_destroy(scratch_t *s) {
  scratch_reset(s);
  fl_free(s->chunk);
  s->chunk = NULL;
}

/* ---- validation ----------------------------------------------------------- */

static bool method_ok(const char *m) {
  size_t n = 0;
  for (; m[n]; n++) {
    unsigned char c = (unsigned char)m[n];
    if (c <= 0x20 || c >= 0x7f) return false;
    if (n >= FL_FRAME_METHOD_MAX) return false;
  }
  return n > 0;
}

static bool nonempty(const char *s) { return s != NULL && s[0] != '\0'; }

fl_status_t fl_frame_validate(const fl_frame_t *f, const char **why) {
  const char *w = NULL;
  uint32_t fl = f->flags;
  if (fl & ~FL_FRAME_ALL_FLAGS) {
    w = "unknown flag bits";
  } else if (fl & (FL_FRAME_PING | FL_FRAME_PONG)) {
    if (fl != FL_FRAME_PING && fl != FL_FRAME_PONG) w = "PING/PONG combined with other flags";
    else if (f->call_id != 0) w = "PING/PONG with a call id";
    else if (nonempty(f->method) || nonempty(f->error) || f->status != 0)
      w = "PING/PONG with method, error or status";
  } else if (fl & FL_FRAME_REQUEST) {
    if (fl & ~(FL_FRAME_REQUEST | FL_FRAME_END_STREAM)) w = "REQUEST combined with ERROR/CANCEL";
    else if (f->call_id == 0) w = "REQUEST without a call id";
    else if (f->method == NULL || !method_ok(f->method)) w = "REQUEST without a valid method";
    else if (f->status != 0 || nonempty(f->error)) w = "REQUEST with status or error";
  } else if (nonempty(f->method)) {
    w = "method on a frame that is not a REQUEST";
  } else if (fl & FL_FRAME_CANCEL) {
    if (fl != FL_FRAME_CANCEL) w = "CANCEL combined with other flags";
    else if (f->call_id == 0) w = "CANCEL without a call id";
    else if (f->payload.len != 0 || f->status != 0 || nonempty(f->error))
      w = "CANCEL with payload, status or error";
  } else if (fl & FL_FRAME_ERROR) {
    if (f->status >= 0) w = "ERROR without a negative status";
  } else {
    if (f->call_id == 0) w = "data frame without a call id";
    else if (f->status != 0 || nonempty(f->error)) w = "status or error without the ERROR flag";
  }
  if (why) *why = w;
  return w ? FL_EMALFORMED : FL_OK;
}

/* ---- encoder -------------------------------------------------------------- */

/* protobuf-c's struct has non-const pointers; going through uintptr_t keeps
 * -Wcast-qual quiet. pack() only reads them. */
static void to_pb(const fl_frame_t *f, Fl__Rpc__Frame *pf) {
  fl__rpc__frame__init(pf);
  pf->call_id = f->call_id;
  pf->flags = f->flags;
  pf->status = f->status;
  pf->method = (char *)(uintptr_t)f->method;
  pf->error = (char *)(uintptr_t)f->error;
  pf->payload.len = f->payload.len;
  pf->payload.data = (uint8_t *)(uintptr_t)f->payload.data;
}

size_t fl_frame_encoded_size(const fl_frame_t *f) {
  Fl__Rpc__Frame pf;
  to_pb(f, &pf);
  return FL_FRAME_HEADER + fl__rpc__frame__get_packed_size(&pf);
}

fl_status_t fl_frame_encode(fl_sbuf_t *out, const fl_frame_t *f, size_t max) {
  if (max == 0 || max > FL_FRAME_LIMIT) max = max ? FL_FRAME_LIMIT : FL_FRAME_DEFAULT_MAX;
  if (fl_frame_validate(f, NULL) != FL_OK) return FL_EINVAL;
  Fl__Rpc__Frame pf;
  to_pb(f, &pf);
  size_t n = fl__rpc__frame__get_packed_size(&pf);
  if (n > max) return FL_ETOOBIG;
  fl_sbuf_reserve(out, FL_FRAME_HEADER + n);
  uint8_t *p = out->data + out->len;
  fl_put_be32(p, (uint32_t)n);
  size_t w = fl__rpc__frame__pack(&pf, p + FL_FRAME_HEADER);
  if (w != n) return FL_EINTERNAL; /* cannot happen: sizes come from one struct */
  out->len += FL_FRAME_HEADER + n;
  return FL_OK;
}

void fl_frame_free(fl_frame_t *f) { fl_free(f); }

/* ---- decoder core --------------------------------------------------------- */

/* Unpacks body[0..n) with the scratch arena, validates, and copies into one
 * owned block. */
static fl_status_t decode_body(scratch_t *s, const uint8_t *body, size_t n,
                               fl_frame_t **out, char **errmsg) {
  *out = NULL;
  ProtobufCAllocator a = {.alloc = scratch_alloc, .free = scratch_free, .allocator_data = s};
  s->budget = 2 * n + 4096;
  Fl__Rpc__Frame *pf = fl__rpc__frame__unpack(&a, n, body);
  if (pf == NULL) {
    scratch_reset(s);
    if (errmsg) *errmsg = fl_sprintf("frame of %zu bytes is not a valid fl.rpc.Frame", n);
    return FL_EMALFORMED;
  }
  fl_frame_t view = {
      .call_id = pf->call_id,
      .flags = pf->flags,
      .status = pf->status,
      .method = nonempty(pf->method) ? pf->method : NULL,
      .error = nonempty(pf->error) ? pf->error : NULL,
      .payload = {.data = pf->payload.data, .len = pf->payload.len},
  };
  const char *why = NULL;
  if (fl_frame_validate(&view, &why) != FL_OK) {
    scratch_reset(s);
    if (errmsg) *errmsg = fl_sprintf("invalid frame: %s", why);
    return FL_EMALFORMED;
  }
  size_t mlen = view.method ? strlen(view.method) + 1 : 0;
  size_t elen = view.error ? strlen(view.error) + 1 : 0;
  size_t plen = view.payload.len;
  fl_frame_t *f = fl_malloc(sizeof(*f) + plen + mlen + elen);
  uint8_t *p = (uint8_t *)(f + 1);
  *f = view;
  if (plen) memcpy(p, view.payload.data, plen);
  f->payload.data = p;
  p += plen;
  if (mlen) {
    memcpy(p, view.method, mlen);
    f->method = (const char *)p;
    p += mlen;
  }
  if (elen) {
    memcpy(p, view.error, elen);
    f->error = (const char *)p;
  }
  /* The protobuf-c struct lives in the arena; resetting it frees everything. */
  scratch_reset(s);
  *out = f;
  return FL_OK;
}

static size_t clamp_max(size_t max) {
  if (max == 0) return FL_FRAME_DEFAULT_MAX;
  return max > FL_FRAME_LIMIT ? FL_FRAME_LIMIT : max;
}

fl_status_t fl_frame_decode(const uint8_t *data, size_t len, size_t max,
                            fl_frame_t **out, size_t *consumed, char **errmsg) {
  *out = NULL;
  if (consumed) *consumed = 0;
  if (errmsg) *errmsg = NULL;
  max = clamp_max(max);
  if (len < FL_FRAME_HEADER) return FL_AGAIN;
  uint32_t l = fl_get_be32(data);
  if (l > max) {
    if (errmsg) *errmsg = fl_sprintf("frame length %u exceeds maximum %zu", l, max);
    return FL_ETOOBIG;
  }
  if (len - FL_FRAME_HEADER < l) return FL_AGAIN;
  scratch_t s = {0};
  fl_status_t rc = decode_body(&s, data + FL_FRAME_HEADER, l, out, errmsg);
  scratch_destroy(&s);
  if (rc == FL_OK && consumed) *consumed = FL_FRAME_HEADER + l;
  return rc;
}

/* ---- incremental decoder -------------------------------------------------- */

struct fl_frame_decoder_s {
  uint8_t *buf;
  size_t start, end, cap;
  size_t max;
  fl_status_t err;
  char *errmsg;
  scratch_t scratch;
};

fl_frame_decoder_t *fl_frame_decoder_new(size_t max) {
  fl_frame_decoder_t *d = fl_calloc(1, sizeof(*d));
  d->max = clamp_max(max);
  return d;
}

void fl_frame_decoder_free(fl_frame_decoder_t *d) {
  if (d == NULL) return;
  fl_free(d->buf);
  fl_free(d->errmsg);
  scratch_destroy(&d->scratch);
  fl_free(d);
}

uint8_t *fl_frame_decoder_space(fl_frame_decoder_t *d, size_t want, size_t *avail) {
  size_t have = d->end - d->start;
  size_t need = want;
  if (d->err == FL_OK && have >= FL_FRAME_HEADER) {
    /* A frame in progress with an acceptable length: make room for all of
     * it at once instead of growing in read-sized steps. */
    size_t l = fl_get_be32(d->buf + d->start);
    if (l <= d->max && FL_FRAME_HEADER + l > have && FL_FRAME_HEADER + l - have > need)
      need = FL_FRAME_HEADER + l - have;
  }
  if (d->cap - d->end < need && d->start > 0) {
    memmove(d->buf, d->buf + d->start, have);
    d->start = 0;
    d->end = have;
  }
  if (d->cap - d->end < need) {
    size_t ncap = d->cap ? d->cap * 2 : 16384;
    if (ncap < d->end + need) ncap = d->end + need;
    d->buf = fl_realloc(d->buf, ncap);
    d->cap = ncap;
  }
  *avail = d->cap - d->end;
  return d->buf + d->end;
}

void fl_frame_decoder_commit(fl_frame_decoder_t *d, size_t n) {
  if (n > d->cap - d->end) n = d->cap - d->end; /* misuse: clamp, never overflow */
  d->end += n;
}

void fl_frame_decoder_feed(fl_frame_decoder_t *d, const uint8_t *data, size_t len) {
  if (len == 0) return;
  size_t avail = 0;
  uint8_t *p = fl_frame_decoder_space(d, len, &avail);
  memcpy(p, data, len);
  fl_frame_decoder_commit(d, len);
}

static fl_status_t set_err(fl_frame_decoder_t *d, fl_status_t rc, char *msg) {
  d->err = rc;
  fl_free(d->errmsg);
  d->errmsg = msg;
  return rc;
}

fl_status_t fl_frame_decoder_next(fl_frame_decoder_t *d, fl_frame_t **out) {
  *out = NULL;
  if (d->err != FL_OK) return d->err;
  size_t have = d->end - d->start;
  if (have < FL_FRAME_HEADER) return FL_AGAIN;
  uint32_t l = fl_get_be32(d->buf + d->start);
  if (l > d->max)
    return set_err(d, FL_ETOOBIG, fl_sprintf("frame length %u exceeds maximum %zu", l, d->max));
  if (have - FL_FRAME_HEADER < l) return FL_AGAIN;
  char *msg = NULL;
  fl_status_t rc = decode_body(&d->scratch, d->buf + d->start + FL_FRAME_HEADER, l, out, &msg);
  if (rc != FL_OK) return set_err(d, rc, msg);
  d->start += FL_FRAME_HEADER + l;
  if (d->start == d->end) {
    d->start = d->end = 0;
    if (d->cap > SHRINK_ABOVE) {
      fl_free(d->buf);
      d->buf = NULL;
      d->cap = 0;
    }
  }
  return FL_OK;
}

const char *fl_frame_decoder_error(const fl_frame_decoder_t *d) { return d->errmsg; }

size_t fl_frame_decoder_buffered(const fl_frame_decoder_t *d) { return d->end - d->start; }
