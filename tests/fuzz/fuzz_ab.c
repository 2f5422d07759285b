/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_ab.c: fuzz target of the orderer's atomic-broadcast message helpers
 * (orderer/node/ab.h): fl_ab_seek_decode, which the orderer's Deliver
 * service runs on every client's SignedSeekInfo; fl_ab_deliver_decode and
 * fl_ab_broadcast_response_decode, which clients and peers run on what an
 * orderer answers; and fl_ab_block_parse, the orderer's light block reader.
 *
 * The input goes to all four. A decoded SignedSeekInfo must hand out views
 * that lie inside the input and hold exactly the bytes protobuf-c decoded
 * (the signature is checked over the seek_bytes view while the decoded
 * fields are acted on, so the two must be the same SeekInfo), and
 * re-encoding the seek must decode to the same positions. Deliver and
 * Broadcast responses must round-trip. A block that the strict block
 * decoder (common/protoutil/block.h) accepts must also parse here, with the
 * same number, header hash and envelopes.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/crypto/sign.h"
#include "common/protoutil/block.h"
#include "fl/orderer/ab.pb-c.h"
#include "orderer/node/ab.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_check.h"

static bool inside(fl_buf_t v, fl_buf_t msg) {
  return v.len == 0 || (v.data >= msg.data && v.data + v.len <= msg.data + msg.len);
}

static bool same_bytes(fl_buf_t v, ProtobufCBinaryData b) {
  return v.len == b.len && (v.len == 0 || memcmp(v.data, b.data, v.len) == 0);
}

static const fl_signer_t *signer(void) {
  static fl_signer_t *s;
  if (s == NULL) check(fl_signer_generate(&s) == FL_OK);
  return s;
}

static void seek(fl_buf_t msg) {
  fl_ab_seek_t sk;
  fl_buf_t sb = {0}, id = {0}, sig = {0};
  const char *reason = NULL;
  if (fl_ab_seek_decode(msg, &sk, &sb, &id, &sig, &reason) != FL_OK) {
    check(reason != NULL);
    return;
  }
  check(inside(sb, msg) && inside(id, msg) && inside(sig, msg));
  check(id.len > 0 && sig.len > 0);
  Fl__Orderer__SignedSeekInfo *ss = fl__orderer__signed_seek_info__unpack(NULL, msg.len, msg.data);
  check(ss != NULL);
  check(same_bytes(sb, ss->seek_info) && same_bytes(id, ss->identity) &&
        same_bytes(sig, ss->signature));
  fl__orderer__signed_seek_info__free_unpacked(ss, NULL);
  check(sk.start_kind <= FL_AB_SPECIFIED && (!sk.has_stop || sk.stop_kind <= FL_AB_SPECIFIED));

  /* Re-encode under a key of our own: same positions and identity. */
  fl_sbuf_t enc = {0};
  check(fl_ab_seek_encode(&sk, id, signer(), &enc) == FL_OK);
  fl_ab_seek_t back;
  fl_buf_t sb2, id2, sig2;
  check(fl_ab_seek_decode(fl_sbuf_view(&enc), &back, &sb2, &id2, &sig2, NULL) == FL_OK);
  check(back.start_kind == sk.start_kind && back.has_stop == sk.has_stop &&
        back.fail_if_not_ready == sk.fail_if_not_ready);
  if (sk.start_kind == FL_AB_SPECIFIED) check(back.start == sk.start);
  if (sk.has_stop) {
    check(back.stop_kind == sk.stop_kind);
    if (sk.stop_kind == FL_AB_SPECIFIED) check(back.stop == sk.stop);
  }
  check(fl_buf_eq(id, id2));
  fl_sbuf_free(&enc);
}

static void deliver(fl_buf_t msg) {
  bool is_block = false;
  fl_buf_t block = {0};
  fl_status_t st = FL_OK;
  if (fl_ab_deliver_decode(msg, &is_block, &block, &st) != FL_OK) return;
  fl_sbuf_t enc = {0};
  if (is_block) {
    check(inside(block, msg));
    fl_ab_deliver_block_encode(block, &enc);
  } else {
    fl_ab_deliver_status_encode(st, &enc);
  }
  check(enc.len <= msg.len);
  bool is_block2 = !is_block;
  fl_buf_t block2 = {0};
  fl_status_t st2 = FL_OK;
  check(fl_ab_deliver_decode(fl_sbuf_view(&enc), &is_block2, &block2, &st2) == FL_OK);
  check(is_block2 == is_block);
  if (is_block)
    check(fl_buf_eq(block, block2));
  else
    check(st == st2);
  fl_sbuf_free(&enc);
}

static void broadcast_response(fl_buf_t msg) {
  fl_status_t st;
  char *info = NULL;
  if (fl_ab_broadcast_response_decode(msg, &st, &info) != FL_OK) {
    check(info == NULL);
    return;
  }
  check(info != NULL);
  fl_sbuf_t enc = {0};
  fl_ab_broadcast_response_encode(st, info, &enc);
  fl_status_t st2;
  char *info2 = NULL;
  check(fl_ab_broadcast_response_decode(fl_sbuf_view(&enc), &st2, &info2) == FL_OK);
  check(st == st2 && strcmp(info, info2) == 0);
  fl_free(info2);
  fl_free(info);
  fl_sbuf_free(&enc);
}

typedef struct envs_s {
  const fl_block_t *strict; /* NULL: only count */
  size_t n;
} envs_t;

static void each_env(void *arg, fl_buf_t env) {
  envs_t *e = arg;
  if (e->strict != NULL) {
    check(e->n < e->strict->n_envelopes);
    check(fl_buf_eq(env, e->strict->envelopes[e->n]));
  }
  e->n++;
}

static void block(fl_buf_t msg) {
  fl_block_t *b = NULL;
  if (fl_block_decode(msg.data, msg.len, &b, NULL) != FL_OK) b = NULL;
  fl_ab_block_t info;
  envs_t e = {.strict = b, .n = 0};
  fl_status_t rc = fl_ab_block_parse(msg, &info, each_env, &e);
  if (b != NULL) {
    check(rc == FL_OK);
    check(info.number == b->number && info.n_envelopes == b->n_envelopes);
    check(memcmp(info.header_hash, b->header_hash, sizeof(info.header_hash)) == 0);
    if (b->previous_hash_len == sizeof(info.prev_hash))
      check(memcmp(info.prev_hash, b->previous_hash, sizeof(info.prev_hash)) == 0);
  }
  if (rc == FL_OK) check(e.n == info.n_envelopes);
  fl_block_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fl_buf_t msg = FL_BUF(data, size);
  seek(msg);
  deliver(msg);
  broadcast_response(msg);
  block(msg);
  return 0;
}
