/* SPDX-License-Identifier: Apache-2.0
 *
 * faults.c: Byzantine behaviour for tests. Compiled ONLY into the test
 * build fedledger-orderer-byz (FL_ORDERER_FAULTS defined; never installed,
 * never part of fedledger-orderer): a correct orderer's code with hooks
 * that make it lie, so that the integration tests can show that the other
 * orderers and the peers are not fooled (tests/integration/byzantine).
 *
 * The hooks are chosen at start-up by the environment variable
 * FL_ORDERER_FAULT, a comma-separated list of:
 *   equivocate    as primary, send a different (validly signed) pre-prepare
 *                 to some replicas: same requests, another batch timestamp,
 *                 hence another digest for the same (view, seq);
 *   bad-sig       corrupt the signature of every consensus message it sends
 *                 except Forward (the client requests it passes on to the
 *                 primary: with those dropped too it would censor the
 *                 transactions submitted to it, which no orderer-side rule
 *                 can prevent: a client must re-broadcast elsewhere);
 *   deliver-lie   Deliver streams get tampered blocks: on every other
 *                 stream the block's envelope order or content is changed
 *                 (a different block at the same height, its signatures
 *                 kept), on the others the orderer signatures are corrupted;
 *   withhold      Deliver streams never get blocks above the height this
 *                 orderer had when it started (the stream stays open,
 *                 silent);
 *   censor        drop every Forward received from the other replicas: as
 *                 primary it orders only what clients broadcast to it
 *                 directly (the backups' relay and censor timeout replace
 *                 it, docs/ordering.md section 7).
 * Without the variable the byz build behaves exactly like the real one.
 */
#ifdef FL_ORDERER_FAULTS

#include <stdlib.h>
#include <string.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/crypto/hash.h"
#include "orderer/node/node_int.h"
#include "fl/common/common.pb-c.h"
#include "fl/pbft/pbft.pb-c.h"

#define LOG FL__ORD_LOG

static bool has_word(const char *list, const char *w) {
  size_t n = strlen(w);
  for (const char *p = list; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && memcmp(p, w, n) == 0) return true;
    p = e ? e + 1 : NULL;
  }
  return false;
}

void fl__faults_init(fl__node_t *n) {
  const char *s = getenv("FL_ORDERER_FAULT");
  if (s == NULL || *s == '\0') return;
  n->fault_equivocate = has_word(s, "equivocate");
  n->fault_bad_sig = has_word(s, "bad-sig");
  n->fault_deliver_lie = has_word(s, "deliver-lie");
  n->fault_withhold = has_word(s, "withhold");
  n->fault_censor = has_word(s, "censor");
  n->fault_withhold_at = n->height;
  FL_WARN(LOG, "BYZANTINE TEST BUILD: faults=%s replica=%u equivocate=%d bad_sig=%d "
          "deliver_lie=%d withhold=%d withhold_above=%llu censor=%d",
          s, n->self, (int)n->fault_equivocate, (int)n->fault_bad_sig,
          (int)n->fault_deliver_lie, (int)n->fault_withhold,
          (unsigned long long)n->fault_withhold_at, (int)n->fault_censor);
}

static void pack_smsg(const Fl__Pbft__SignedMessage *sm, fl_sbuf_t *out) {
  out->len = 0;
  size_t k = fl__pbft__signed_message__get_packed_size(sm);
  fl_sbuf_reserve(out, k);
  out->len = fl__pbft__signed_message__pack(sm, out->data);
}

bool fl__faults_corrupt_sig(fl__node_t *n, fl_buf_t msg, fl_sbuf_t *out) {
  if (!n->fault_bad_sig) return false;
  Fl__Pbft__SignedMessage *sm = fl__pbft__signed_message__unpack(NULL, msg.len, msg.data);
  if (sm == NULL) return false;
  Fl__Pbft__Message *m = fl__pbft__message__unpack(NULL, sm->message.len, sm->message.data);
  bool ok = sm->signature.len > 0 && m != NULL &&
            m->type_case != FL__PBFT__MESSAGE__TYPE_FORWARD;
  if (m) fl__pbft__message__free_unpacked(m, NULL);
  if (ok) {
    sm->signature.data[sm->signature.len / 2] ^= 0x5a;
    pack_smsg(sm, out);
  }
  fl__pbft__signed_message__free_unpacked(sm, NULL);
  return ok;
}

bool fl__faults_equivocate(fl__node_t *n, fl_buf_t msg, fl_sbuf_t *out) {
  if (!n->fault_equivocate) return false;
  Fl__Pbft__SignedMessage *sm = fl__pbft__signed_message__unpack(NULL, msg.len, msg.data);
  if (sm == NULL) return false;
  Fl__Pbft__Message *m = NULL;
  Fl__Pbft__Batch *b = NULL;
  bool ok = false;
  if (sm->payload.len == 0) goto done;
  m = fl__pbft__message__unpack(NULL, sm->message.len, sm->message.data);
  if (m == NULL || m->type_case != FL__PBFT__MESSAGE__TYPE_PRE_PREPARE) goto done;
  b = fl__pbft__batch__unpack(NULL, sm->payload.len, sm->payload.data);
  if (b == NULL) goto done;
  /* Another batch with the same requests: a different timestamp, hence a
   * different digest for the same (view, seq). */
  b->timestamp_ms += 1;
  fl_sbuf_t batch = {0}, inner = {0}, sig = {0};
  fl_sbuf_reserve(&batch, fl__pbft__batch__get_packed_size(b));
  batch.len = fl__pbft__batch__pack(b, batch.data);
  uint8_t d[32];
  fl_sha256(batch.data, batch.len, d);
  m->pre_prepare->digest.data = d;
  m->pre_prepare->digest.len = 32;
  fl_sbuf_reserve(&inner, fl__pbft__message__get_packed_size(m));
  inner.len = fl__pbft__message__pack(m, inner.data);
  m->pre_prepare->digest.data = NULL; /* not ours to free */
  m->pre_prepare->digest.len = 0;
  if (fl_signer_sign(n->signer, inner.data, inner.len, &sig) == FL_OK) {
    Fl__Pbft__SignedMessage alt;
    fl__pbft__signed_message__init(&alt);
    alt.message.data = inner.data;
    alt.message.len = inner.len;
    alt.replica = sm->replica;
    alt.signature.data = sig.data;
    alt.signature.len = sig.len;
    alt.payload.data = batch.data;
    alt.payload.len = batch.len;
    pack_smsg(&alt, out);
    ok = true;
  }
  fl_sbuf_free(&batch);
  fl_sbuf_free(&inner);
  fl_sbuf_free(&sig);
done:
  if (b) fl__pbft__batch__free_unpacked(b, NULL);
  if (m) fl__pbft__message__free_unpacked(m, NULL);
  fl__pbft__signed_message__free_unpacked(sm, NULL);
  return ok;
}

bool fl__faults_deliver(fl__node_t *n, uint64_t number, uint64_t stream, fl_buf_t blk,
                        fl_sbuf_t *out) {
  if (!n->fault_deliver_lie || number == 0) return false;
  Fl__Common__Block *b = fl__common__block__unpack(NULL, blk.len, blk.data);
  if (b == NULL) return false;
  bool ok = false;
  if (stream % 2 == 0) {
    /* Equivocation towards this client: another block at this height. */
    if (b->data && b->data->n_envelopes >= 2) {
      ProtobufCBinaryData t = b->data->envelopes[0];
      b->data->envelopes[0] = b->data->envelopes[1];
      b->data->envelopes[1] = t;
      ok = true;
    } else if (b->data && b->data->n_envelopes == 1 && b->data->envelopes[0].len > 0) {
      ProtobufCBinaryData *e = &b->data->envelopes[0];
      e->data[e->len - 1] ^= 0x01;
      ok = true;
    }
  } else if (b->metadata) {
    for (size_t i = 0; i < b->metadata->n_signatures; i++) {
      ProtobufCBinaryData *s = &b->metadata->signatures[i]->signature;
      if (s->len > 0) {
        s->data[s->len / 2] ^= 0x5a;
        ok = true;
      }
    }
  }
  if (ok) {
    out->len = 0;
    fl_sbuf_reserve(out, fl__common__block__get_packed_size(b));
    out->len = fl__common__block__pack(b, out->data);
    FL_DEBUG(LOG, "BYZANTINE deliver block=%llu stream=%llu tampered=%s",
             (unsigned long long)number, (unsigned long long)stream,
             stream % 2 == 0 ? "content" : "signatures");
  }
  fl__common__block__free_unpacked(b, NULL);
  return ok;
}

bool fl__faults_withhold(const fl__node_t *n, uint64_t number) {
  return n->fault_withhold && number > n->fault_withhold_at;
}

#endif /* FL_ORDERER_FAULTS */
