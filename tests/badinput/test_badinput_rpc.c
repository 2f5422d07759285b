/* SPDX-License-Identifier: Apache-2.0
 *
 * test_badinput_rpc.c: the bad-input catalogue of the RPC services
 * (docs/security.md, "Catalogue"). One real network (4 fedledger-orderer,
 * 2 organisations x 2 fedledger-peer on 127.0.0.1, tests/integration/peer
 * harness) receives, for every method the peer and the orderer serve,
 * malformed, truncated, oversize and wrongly typed requests, requests by
 * wrong identities (a CA nobody trusts, a peer or orderer where a client is
 * required, a revoked and an expired certificate, made at run time with
 * fl_cert_issue; the revoked one is listed in the genesis block), replays
 * and out-of-order input, plus frame-level and TLS-level abuse of both
 * servers. Requests travel as raw frames over an OpenSSL TLS connection
 * (bi_util.h), so that frames the project's client would never encode can
 * be sent.
 *
 * Every case asserts three things:
 *   (a) the answer: status code and a reason substring (an RPC error frame,
 *       a BroadcastResponse, an endorser's Response, a DeliverResponse);
 *   (b) nothing stored changed: a sentinel kvstore transaction sent after
 *       the case lands alone in the block right after the height seen
 *       before the case, linked to the same previous header hash, and the
 *       key the cases target ("bi-evil") is still absent; cases whose
 *       transaction is ordered by design (then invalid) must get the
 *       validation code named in the table instead; at the end every
 *       transaction in the chain is a sentinel or such a case, and the four
 *       peers hold the same head;
 *   (c) the process goes on serving: it is alive, the sentinel commits,
 *       and a valid request to the same server succeeds.
 *
 * FL_BADINPUT_VERBOSE=1 prints every case's outcome. FL_TEST_KEEP=1 keeps
 * the network's folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/crypto/hash.h"
#include "common/protoutil/block.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/proposal.h"
#include "fl/common/common.pb-c.h"
#include "fl/orderer/ab.pb-c.h"
#include "fl/peer/gateway.pb-c.h"
#include "fl/peer/proposal.pb-c.h"
#include "tests/badinput/bi_util.h"
#include "tests/integration/peer/harness.h"

#define UNCONST(T, p) ((T)(uintptr_t)(p))
#define EVIL_KEY "bi-evil"
#define MAX_TXIDS 1024

/* ------------------------------------------------------------- context */

enum { S_PEER, S_ORD };                                    /* target: peer 0 / orderer 0 */
enum { I_OK, I_EVIL, I_EXPIRED, I_REVOKED, I_PEER, I_ORDERER, I_N }; /* signing identity */
enum { T_OK, T_EVIL, T_EXPIRED, T_NONE, T_PLAIN, T_ORD3, T_N };      /* TLS identity */

typedef struct cx_s {
  pn_net_t *net;
  fl_rpc_sync_t *gw; /* peer 0's gateway, client1@org1 */
  bi_ident_t ids[I_N];
  const char *tls_cert[T_N], *tls_key[T_N];
  bi_ident_t evil_tls, expired_tls;
  char ord3_cert[600], ord3_key[600];
  /* the last sentinel: its proposal, envelope, tx id and block */
  fl_sbuf_t last_sp, last_env;
  char last_txid[FL_TXID_HEX_LEN + 1];
  uint64_t last_block;
  int nsent;
  /* tx ids allowed in the chain (sentinels and ordered cases) and those of
   * refused cases, which must never appear */
  char (*allowed)[FL_TXID_HEX_LEN + 1];
  size_t n_allowed;
  char (*refused)[FL_TXID_HEX_LEN + 1];
  size_t n_refused;
} cx_t;

static cx_t g;

/* --------------------------------------------------------------- packing */

static void pack(const ProtobufCMessage *m, fl_sbuf_t *out) {
  out->len = 0;
  size_t n = protobuf_c_message_get_packed_size(m);
  fl_sbuf_reserve(out, n + 1);
  out->len = protobuf_c_message_pack(m, out->data);
}

static const pn_ident_t *ident(int i) {
  if (i == I_OK) return &g.net->client[0];
  return &g.ids[i].id;
}

/* A SignedProposal by identity i ("put <key> <value>" on kvstore). */
static void proposal(int i, const char *fn, const char *key, fl_sbuf_t *sp, char *txid) {
  const pn_ident_t *id = ident(i);
  fl_buf_t a[3] = {FL_BUF_STR(fn), FL_BUF_STR(key), FL_BUF_STR("v")};
  fl_proposal_spec_t spec = {.channel = PN_CHANNEL, .creator = fl_sbuf_view(&id->id),
                             .chaincode = "kvstore", .args = a, .n_args = strcmp(fn, "get") ? 3 : 2};
  char t[FL_TXID_HEX_LEN + 1];
  assert_int_equal(fl_proposal_build(&spec, id->key, sp, txid ? txid : t), FL_OK);
}

static void gw_endorse_req(fl_buf_t sp, const char *txid, fl_sbuf_t *out, bool evaluate) {
  Fl__Peer__SignedProposal *p = fl__peer__signed_proposal__unpack(NULL, sp.len, sp.data);
  assert_non_null(p);
  if (evaluate) {
    Fl__Peer__EvaluateRequest er;
    fl__peer__evaluate_request__init(&er);
    er.tx_id = UNCONST(char *, txid);
    er.proposed = p;
    pack(&er.base, out);
  } else {
    Fl__Peer__EndorseRequest er;
    fl__peer__endorse_request__init(&er);
    er.tx_id = UNCONST(char *, txid);
    er.proposed = p;
    pack(&er.base, out);
  }
  fl__peer__signed_proposal__free_unpacked(p, NULL);
}

static void submit_req(fl_buf_t env, const char *txid, fl_sbuf_t *out) {
  Fl__Common__Envelope *e = fl__common__envelope__unpack(NULL, env.len, env.data);
  assert_non_null(e);
  Fl__Peer__SubmitRequest sr;
  fl__peer__submit_request__init(&sr);
  sr.tx_id = UNCONST(char *, txid);
  sr.prepared = e;
  pack(&sr.base, out);
  fl__common__envelope__free_unpacked(e, NULL);
}

static void status_req(int i, const char *txid, fl_sbuf_t *out) {
  const pn_ident_t *id = ident(i);
  Fl__Peer__CommitStatusRequest r;
  fl__peer__commit_status_request__init(&r);
  r.tx_id = UNCONST(char *, txid);
  r.identity.data = id->id.data;
  r.identity.len = id->id.len;
  fl_sbuf_t rb = {0}, sig = {0};
  pack(&r.base, &rb);
  fl_signer_sign(id->key, rb.data, rb.len, &sig);
  Fl__Peer__SignedCommitStatusRequest sr;
  fl__peer__signed_commit_status_request__init(&sr);
  sr.request.data = rb.data;
  sr.request.len = rb.len;
  sr.signature.data = sig.data;
  sr.signature.len = sig.len;
  pack(&sr.base, out);
  fl_sbuf_free(&rb);
  fl_sbuf_free(&sig);
}

/* SignedSeekInfo by identity i for [start, stop], FAIL_IF_NOT_READY; with
 * wait, BLOCK_UNTIL_READY, and stop UINT64_MAX means no stop (a live
 * Deliver). */
static void seek_req_ex(int i, uint64_t start, uint64_t stop, bool wait, fl_sbuf_t *out) {
  const pn_ident_t *id = ident(i);
  Fl__Orderer__SeekPosition sp, ep;
  fl__orderer__seek_position__init(&sp);
  fl__orderer__seek_position__init(&ep);
  sp.kind = FL__ORDERER__SEEK_POSITION__KIND__SPECIFIED;
  sp.number = start;
  ep.kind = FL__ORDERER__SEEK_POSITION__KIND__SPECIFIED;
  ep.number = stop;
  Fl__Orderer__SeekInfo si;
  fl__orderer__seek_info__init(&si);
  si.start = &sp;
  si.stop = wait && stop == UINT64_MAX ? NULL : &ep;
  si.behavior = wait ? FL__ORDERER__SEEK_INFO__BEHAVIOR__BLOCK_UNTIL_READY
                    : FL__ORDERER__SEEK_INFO__BEHAVIOR__FAIL_IF_NOT_READY;
  fl_sbuf_t sib = {0}, sig = {0};
  pack(&si.base, &sib);
  fl_signer_sign(id->key, sib.data, sib.len, &sig);
  Fl__Orderer__SignedSeekInfo ss;
  fl__orderer__signed_seek_info__init(&ss);
  ss.seek_info.data = sib.data;
  ss.seek_info.len = sib.len;
  ss.identity.data = id->id.data;
  ss.identity.len = id->id.len;
  ss.signature.data = sig.data;
  ss.signature.len = sig.len;
  pack(&ss.base, out);
  fl_sbuf_free(&sib);
  fl_sbuf_free(&sig);
}

static void seek_req(int i, uint64_t start, uint64_t stop, fl_sbuf_t *out) {
  seek_req_ex(i, start, stop, false, out);
}

/* An ENDORSER_TRANSACTION envelope by identity i around `data`. */
static void envelope(int i, fl_buf_t data, fl_sbuf_t *out, char *txid) {
  const pn_ident_t *id = ident(i);
  assert_int_equal(fl_envelope_build(FL_HDR_ENDORSER_TX, PN_CHANNEL, fl_sbuf_view(&id->id),
                                     id->key, data, out, txid),
                   FL_OK);
}

/* An endorsed "put <key> v" by client1@org1, prepared by peer 0's gateway
 * and signed by client1: the envelope is not submitted. */
static void endorsed_envelope(const char *key, fl_sbuf_t *env, char *txid) {
  fl_sbuf_t sp = {0}, pl = {0};
  proposal(I_OK, "put", key, &sp, txid);
  int cs = 0;
  char *err = NULL;
  assert_int_equal(pn_gw_endorse(g.gw, fl_sbuf_view(&sp), txid, &pl, &cs, NULL, &err), FL_OK);
  assert_int_equal(cs, 200);
  assert_int_equal(pn_sign_envelope(g.net, 0, fl_sbuf_view(&pl), env), FL_OK);
  fl_free(err);
  fl_sbuf_free(&sp);
  fl_sbuf_free(&pl);
}

/* ------------------------------------------------------- case builders */

/* What a builder produces: the request payload (or raw bytes with
 * F_RAW), the tx id it carries (if any). */
typedef struct req_s {
  fl_sbuf_t b;
  char txid[FL_TXID_HEX_LEN + 1];
} req_t;

typedef void (*build_fn)(req_t *r, int ident);

static void garbage(fl_sbuf_t *b, size_t n) {
  b->len = 0;
  fl_sbuf_reserve(b, n);
  for (size_t k = 0; k < n; k++) b->data[k] = (uint8_t)(0xff - (k % 7));
  b->len = n;
}

static void b_garbage(req_t *r, int i) {
  (void)i;
  garbage(&r->b, 64);
}
static void b_proposal(req_t *r, int i) { proposal(i, "put", EVIL_KEY, &r->b, r->txid); }
static void b_gw_endorse(req_t *r, int i) {
  fl_sbuf_t sp = {0};
  proposal(i, "put", EVIL_KEY, &sp, r->txid);
  gw_endorse_req(fl_sbuf_view(&sp), r->txid, &r->b, false);
  fl_sbuf_free(&sp);
}
static void b_gw_evaluate(req_t *r, int i) {
  fl_sbuf_t sp = {0};
  proposal(i, "get", EVIL_KEY, &sp, r->txid);
  gw_endorse_req(fl_sbuf_view(&sp), r->txid, &r->b, true);
  fl_sbuf_free(&sp);
}
/* Submit of an envelope by identity i whose data is an endorsed
 * transaction of client1 (so only the creator differs). */
static void b_gw_submit(req_t *r, int i) {
  fl_sbuf_t env = {0};
  if (i == I_OK) {
    endorsed_envelope(EVIL_KEY, &env, r->txid);
  } else {
    uint8_t junk[16] = {0};
    envelope(i, FL_BUF(junk, sizeof(junk)), &env, r->txid);
  }
  submit_req(fl_sbuf_view(&env), r->txid, &r->b);
  fl_sbuf_free(&env);
}
static void b_status(req_t *r, int i) {
  status_req(i, g.last_txid, &r->b);
}
static void b_seek(req_t *r, int i) { seek_req(i, 0, 0, &r->b); }
static void b_get_block(req_t *r, int i) {
  (void)i;
  Fl__Peer__GetBlockRequest m;
  fl__peer__get_block_request__init(&m);
  m.number = 300;
  pack(&m.base, &r->b);
}
static void b_get_tx(req_t *r, int i) {
  (void)i;
  Fl__Peer__GetTransactionRequest m;
  fl__peer__get_transaction_request__init(&m);
  m.tx_id = g.last_txid;
  pack(&m.base, &r->b);
}
static void b_get_blob(req_t *r, int i) {
  (void)i;
  uint8_t h[32];
  fl_sha256("no such blob", 12, h);
  Fl__Peer__GetBlobRequest m;
  fl__peer__get_blob_request__init(&m);
  m.hash.data = h;
  m.hash.len = 32;
  pack(&m.base, &r->b);
}
/* Broadcast: an envelope by identity i; for I_OK a properly endorsed one. */
static void b_broadcast(req_t *r, int i) {
  if (i == I_OK) {
    endorsed_envelope(EVIL_KEY, &r->b, r->txid);
  } else {
    uint8_t junk[16] = {0};
    envelope(i, FL_BUF(junk, sizeof(junk)), &r->b, r->txid);
  }
}
static void b_consensus(req_t *r, int i) {
  (void)i;
  uint8_t id[4] = {0, 0, 0, 1};
  r->b.len = 0;
  fl_sbuf_append(&r->b, id, 4);
}

/* Truncation: the valid request cut in half. */
static void truncate_half(req_t *r) { r->b.len /= 2; }

/* -------- oversize: a field far beyond its bound, inside the frame limit */

/* A SignedProposal with FL_PROPOSAL_MAX_ARGS + 1 arguments, re-signed. */
static void many_args_sp(fl_sbuf_t *out, char *txid) {
  fl_sbuf_t sp = {0}, pb = {0}, sig = {0};
  proposal(I_OK, "put", EVIL_KEY, &sp, txid);
  Fl__Peer__SignedProposal *s = fl__peer__signed_proposal__unpack(NULL, sp.len, sp.data);
  Fl__Peer__Proposal *p = fl__peer__proposal__unpack(NULL, s->proposal_bytes.len,
                                                     s->proposal_bytes.data);
  assert_non_null(p);
  size_t n = FL_PROPOSAL_MAX_ARGS + 1;
  ProtobufCBinaryData *args = fl_calloc(n, sizeof(*args));
  for (size_t k = 0; k < n; k++) args[k] = k < p->n_args ? p->args[k]
                                                        : (ProtobufCBinaryData){1, (uint8_t *)"x"};
  ProtobufCBinaryData *old = p->args;
  size_t old_n = p->n_args;
  p->args = args;
  p->n_args = n;
  pack(&p->base, &pb);
  p->args = old;
  p->n_args = old_n;
  fl_signer_sign(g.net->client[0].key, pb.data, pb.len, &sig);
  Fl__Peer__SignedProposal ns;
  fl__peer__signed_proposal__init(&ns);
  ns.proposal_bytes.data = pb.data;
  ns.proposal_bytes.len = pb.len;
  ns.signature.data = sig.data;
  ns.signature.len = sig.len;
  pack(&ns.base, out);
  fl_free(args);
  fl__peer__proposal__free_unpacked(p, NULL);
  fl__peer__signed_proposal__free_unpacked(s, NULL);
  fl_sbuf_free(&sp);
  fl_sbuf_free(&pb);
  fl_sbuf_free(&sig);
}
static void o_proposal(req_t *r, int i) {
  (void)i;
  many_args_sp(&r->b, r->txid);
}
static void o_gw_endorse(req_t *r, int i) {
  (void)i;
  fl_sbuf_t sp = {0};
  many_args_sp(&sp, r->txid);
  gw_endorse_req(fl_sbuf_view(&sp), r->txid, &r->b, false);
  fl_sbuf_free(&sp);
}
static void o_gw_evaluate(req_t *r, int i) {
  (void)i;
  fl_sbuf_t sp = {0};
  many_args_sp(&sp, r->txid);
  gw_endorse_req(fl_sbuf_view(&sp), r->txid, &r->b, true);
  fl_sbuf_free(&sp);
}
/* An endorsed, client-signed "put bi-evil <2.5 MiB>": a well-formed
 * transaction of about 5 MiB (the value is in the proposal and again in
 * the write set), over the orderers' batch_max_bytes (4 MiB), which is also
 * the largest envelope a batch may carry. */
static void big_envelope(fl_sbuf_t *out, char *txid) {
  fl_sbuf_t val = {0}, sp = {0}, pl = {0};
  fl_sbuf_reserve(&val, 5u << 19);
  memset(val.data, 'v', 5u << 19);
  val.len = 5u << 19;
  fl_buf_t a[3] = {FL_BUF_STR("put"), FL_BUF_STR(EVIL_KEY), fl_sbuf_view(&val)};
  fl_proposal_spec_t spec = {.channel = PN_CHANNEL,
                             .creator = fl_sbuf_view(&g.net->client[0].id),
                             .chaincode = "kvstore", .args = a, .n_args = 3};
  assert_int_equal(fl_proposal_build(&spec, g.net->client[0].key, &sp, txid), FL_OK);
  int cs = 0;
  assert_int_equal(pn_gw_endorse(g.gw, fl_sbuf_view(&sp), txid, &pl, &cs, NULL, NULL), FL_OK);
  assert_int_equal(cs, 200);
  assert_int_equal(pn_sign_envelope(g.net, 0, fl_sbuf_view(&pl), out), FL_OK);
  assert_true(out->len > (4u << 20));
  fl_sbuf_free(&val);
  fl_sbuf_free(&sp);
  fl_sbuf_free(&pl);
}
static void o_broadcast(req_t *r, int i) {
  (void)i;
  big_envelope(&r->b, r->txid);
}
static void o_gw_submit(req_t *r, int i) {
  (void)i;
  fl_sbuf_t env = {0};
  big_envelope(&env, r->txid);
  submit_req(fl_sbuf_view(&env), r->txid, &r->b);
  fl_sbuf_free(&env);
}
static void o_seek(req_t *r, int i) {
  (void)i;
  /* a SignedSeekInfo whose identity is 1 MiB of junk */
  fl_sbuf_t junk = {0};
  garbage(&junk, 1u << 20);
  Fl__Orderer__SignedSeekInfo ss;
  fl__orderer__signed_seek_info__init(&ss);
  ss.seek_info.data = (uint8_t *)"\x0a\x00";
  ss.seek_info.len = 2;
  ss.identity.data = junk.data;
  ss.identity.len = junk.len;
  ss.signature.data = junk.data;
  ss.signature.len = 72;
  pack(&ss.base, &r->b);
  fl_sbuf_free(&junk);
}
static void o_get_block(req_t *r, int i) {
  (void)i;
  Fl__Peer__GetBlockRequest m;
  fl__peer__get_block_request__init(&m);
  m.number = UINT64_MAX;
  pack(&m.base, &r->b);
}
static char g_bigstr[1u << 20];
static void big_string(void) {
  memset(g_bigstr, 'a', sizeof(g_bigstr) - 1);
  g_bigstr[sizeof(g_bigstr) - 1] = '\0';
}
static void o_get_tx(req_t *r, int i) {
  (void)i;
  Fl__Peer__GetTransactionRequest m;
  fl__peer__get_transaction_request__init(&m);
  m.tx_id = g_bigstr;
  pack(&m.base, &r->b);
}
static void o_get_blob(req_t *r, int i) {
  (void)i;
  Fl__Peer__GetBlobRequest m;
  fl__peer__get_blob_request__init(&m);
  m.hash.data = (uint8_t *)g_bigstr;
  m.hash.len = sizeof(g_bigstr);
  pack(&m.base, &r->b);
}
static void o_status(req_t *r, int i) {
  (void)i;
  status_req(I_OK, g_bigstr, &r->b);
}
static void o_big(req_t *r, int i) {
  (void)i;
  garbage(&r->b, 1u << 20);
}

/* ------------- wrong type: the request message of another method */

static void w_envelope(req_t *r, int i) { /* an Envelope where a SignedProposal goes */
  (void)i;
  endorsed_envelope(EVIL_KEY, &r->b, r->txid);
}
static void w_seek(req_t *r, int i) { b_seek(r, i); }
static void w_status(req_t *r, int i) { b_status(r, i); }
static void w_get_block(req_t *r, int i) {
  (void)i;
  Fl__Peer__GetBlockRequest m;
  fl__peer__get_block_request__init(&m);
  m.number = 3;
  pack(&m.base, &r->b);
}
static void w_chain_info(req_t *r, int i) {
  (void)i;
  uint8_t h[32] = {1, 2, 3};
  Fl__Peer__ChainInfo m;
  fl__peer__chain_info__init(&m);
  m.height = 7;
  m.current_block_hash.data = h;
  m.current_block_hash.len = 32;
  pack(&m.base, &r->b);
}
/* A SignedProposal (fields 1, 2: bytes, bytes) sent as an Envelope: it is
 * wire-compatible, and the proposal's signature covers exactly the bytes
 * the Envelope's payload field then holds. */
static void w_sp_as_env(req_t *r, int i) {
  (void)i;
  proposal(I_OK, "put", EVIL_KEY, &r->b, r->txid);
}
static void w_sp_as_submit(req_t *r, int i) {
  (void)i;
  fl_sbuf_t sp = {0};
  proposal(I_OK, "put", EVIL_KEY, &sp, r->txid);
  /* SubmitRequest{tx_id, prepared = the SignedProposal's bytes} */
  Fl__Peer__SubmitRequest sr;
  fl__peer__submit_request__init(&sr);
  sr.tx_id = r->txid;
  Fl__Common__Envelope *e = fl__common__envelope__unpack(NULL, sp.len, sp.data);
  assert_non_null(e);
  sr.prepared = e;
  pack(&sr.base, &r->b);
  fl__common__envelope__free_unpacked(e, NULL);
  fl_sbuf_free(&sp);
}

/* ------------------------------------------- replay and out of order */

static void r_last_sp(req_t *r, int i) { /* the last sentinel's proposal, committed */
  (void)i;
  fl_sbuf_append(&r->b, g.last_sp.data, g.last_sp.len);
  memcpy(r->txid, g.last_txid, sizeof(r->txid));
}
static void r_last_sp_gw(req_t *r, int i) {
  (void)i;
  memcpy(r->txid, g.last_txid, sizeof(r->txid));
  gw_endorse_req(fl_sbuf_view(&g.last_sp), g.last_txid, &r->b, false);
}
static void r_last_env(req_t *r, int i) {
  (void)i;
  fl_sbuf_append(&r->b, g.last_env.data, g.last_env.len);
  memcpy(r->txid, g.last_txid, sizeof(r->txid));
}
static void r_last_env_submit(req_t *r, int i) {
  (void)i;
  memcpy(r->txid, g.last_txid, sizeof(r->txid));
  submit_req(fl_sbuf_view(&g.last_env), g.last_txid, &r->b);
}
/* Out of order: submitting before endorsement, i.e. a client-signed
 * envelope whose Transaction carries the proposal but no endorsement. */
static void x_unendorsed_submit(req_t *r, int i) {
  (void)i;
  fl_sbuf_t sp = {0}, tx = {0}, env = {0};
  proposal(I_OK, "put", EVIL_KEY, &sp, r->txid);
  Fl__Peer__SignedProposal *s = fl__peer__signed_proposal__unpack(NULL, sp.len, sp.data);
  Fl__Peer__Proposal *p = fl__peer__proposal__unpack(NULL, s->proposal_bytes.len,
                                                     s->proposal_bytes.data);
  Fl__Peer__Transaction t;
  fl__peer__transaction__init(&t);
  t.proposal = s->proposal_bytes;
  t.proposal_signature = s->signature;
  pack(&t.base, &tx);
  /* the envelope must carry the proposal's own header */
  fl_header_t h;
  memset(&h, 0, sizeof(h));
  h.type = FL_HDR_ENDORSER_TX;
  h.channel = p->header->channel;
  memcpy(h.tx_id, p->header->tx_id, FL_TXID_HEX_LEN);
  h.timestamp_ms = p->header->timestamp_ms;
  h.creator = FL_BUF(p->header->creator.data, p->header->creator.len);
  h.nonce = FL_BUF(p->header->nonce.data, p->header->nonce.len);
  assert_int_equal(fl_envelope_build_with_header(&h, g.net->client[0].key, fl_sbuf_view(&tx), &env),
                   FL_OK);
  submit_req(fl_sbuf_view(&env), r->txid, &r->b);
  fl__peer__proposal__free_unpacked(p, NULL);
  fl__peer__signed_proposal__free_unpacked(s, NULL);
  fl_sbuf_free(&sp);
  fl_sbuf_free(&tx);
  fl_sbuf_free(&env);
}
/* Out of order: the prepared envelope submitted unsigned (the client skips
 * its signing step). */
static void x_unsigned_submit(req_t *r, int i) {
  (void)i;
  fl_sbuf_t sp = {0}, pl = {0}, env = {0};
  proposal(I_OK, "put", EVIL_KEY, &sp, r->txid);
  int cs = 0;
  assert_int_equal(pn_gw_endorse(g.gw, fl_sbuf_view(&sp), r->txid, &pl, &cs, NULL, NULL), FL_OK);
  Fl__Common__Envelope e;
  fl__common__envelope__init(&e);
  e.payload.data = pl.data;
  e.payload.len = pl.len;
  pack(&e.base, &env);
  submit_req(fl_sbuf_view(&env), r->txid, &r->b);
  fl_sbuf_free(&sp);
  fl_sbuf_free(&pl);
  fl_sbuf_free(&env);
}
/* Out of order: a transaction endorsed against state that another
 * transaction changed before it was submitted. Both "incr bi-counter" are
 * endorsed first (same read version); the first is submitted and commits,
 * the second (the request) must be ordered and marked MVCC_READ_CONFLICT. */
static void add_allowed(const char *txid);
static void x_stale_submit(req_t *r, int i) {
  (void)i;
  static const char *const args[] = {"incr", "bi-counter", NULL};
  fl_sbuf_t sp1 = {0}, sp2 = {0}, pl1 = {0}, pl2 = {0}, env1 = {0}, env2 = {0};
  char t1[FL_TXID_HEX_LEN + 1];
  int cs = 0, code = -1;
  uint64_t blk = 0;
  assert_int_equal(pn_proposal(g.net, 0, "counter", args, &sp1, t1), FL_OK);
  assert_int_equal(pn_proposal(g.net, 0, "counter", args, &sp2, r->txid), FL_OK);
  assert_int_equal(pn_gw_endorse(g.gw, fl_sbuf_view(&sp1), t1, &pl1, &cs, NULL, NULL), FL_OK);
  assert_int_equal(pn_gw_endorse(g.gw, fl_sbuf_view(&sp2), r->txid, &pl2, &cs, NULL, NULL), FL_OK);
  assert_int_equal(pn_sign_envelope(g.net, 0, fl_sbuf_view(&pl1), &env1), FL_OK);
  assert_int_equal(pn_sign_envelope(g.net, 0, fl_sbuf_view(&pl2), &env2), FL_OK);
  assert_int_equal(pn_gw_submit(g.gw, fl_sbuf_view(&env1), t1, NULL), FL_OK);
  assert_int_equal(pn_gw_status(g.net, g.gw, 0, t1, 30000, &code, &blk, NULL), FL_OK);
  assert_int_equal(code, 0);
  add_allowed(t1);
  submit_req(fl_sbuf_view(&env2), r->txid, &r->b);
  fl_sbuf_free(&sp1);
  fl_sbuf_free(&sp2);
  fl_sbuf_free(&pl1);
  fl_sbuf_free(&pl2);
  fl_sbuf_free(&env1);
  fl_sbuf_free(&env2);
}

/* Out of order: Deliver whose stop is before its start. */
static void x_seek_backwards(req_t *r, int i) { seek_req(i, 2, 1, &r->b); }
/* Out of order: a block that does not exist yet. */
static void x_seek_future(req_t *r, int i) { seek_req(i, 1000000, 1000000, &r->b); }
static void x_get_future(req_t *r, int i) {
  (void)i;
  Fl__Peer__GetBlockRequest m;
  fl__peer__get_block_request__init(&m);
  m.number = 1000000;
  pack(&m.base, &r->b);
}
static void x_get_tx_unknown(req_t *r, int i) {
  (void)i;
  Fl__Peer__GetTransactionRequest m;
  fl__peer__get_transaction_request__init(&m);
  m.tx_id = "0000000000000000000000000000000000000000000000000000000000000000";
  pack(&m.base, &r->b);
}
/* Endorse whose tx_id field names another transaction. */
static void x_gw_txid_mismatch(req_t *r, int i) {
  (void)i;
  fl_sbuf_t sp = {0};
  proposal(I_OK, "put", EVIL_KEY, &sp, r->txid);
  gw_endorse_req(fl_sbuf_view(&sp), g.last_txid, &r->b, false);
  fl_sbuf_free(&sp);
}
static void x_consensus_self(req_t *r, int i) {
  (void)i;
  uint8_t id[4] = {0, 0, 0, 0};
  r->b.len = 0;
  fl_sbuf_append(&r->b, id, 4);
}
/* A proposal from a creator whose signature is over other bytes. */
static void x_bad_sig_sp(req_t *r, int i) {
  (void)i;
  proposal(I_OK, "put", EVIL_KEY, &r->b, r->txid);
  r->b.data[r->b.len - 5] ^= 0x01; /* inside the signature */
}

/* Peer/EndorseAt: be64(height 0, so nothing waits) || what b builds. */
static void at0(req_t *r, int i, build_fn b) {
  req_t t = {0};
  b(&t, i);
  r->b.len = 0;
  fl_sbuf_append_be64(&r->b, 0);
  fl_sbuf_append(&r->b, t.b.data, t.b.len);
  memcpy(r->txid, t.txid, sizeof r->txid);
  fl_sbuf_free(&t.b);
}
static void a_garbage(req_t *r, int i) { at0(r, i, b_garbage); }
static void a_proposal(req_t *r, int i) { at0(r, i, b_proposal); }
static void a_bad_sig(req_t *r, int i) { at0(r, i, x_bad_sig_sp); }
static void a_short(req_t *r, int i) { /* three bytes: not even a height */
  (void)i;
  r->b.len = 0;
  fl_sbuf_append(&r->b, "\x00\x00\x01", 3);
}

/* --------------------------------------------------------------- table */

enum {
  F_RAW = 1u << 0,     /* b holds raw bytes to write, not a payload */
  F_SHUT = 1u << 1,    /* send close_notify after writing */
  F_ORDERED = 1u << 2, /* the transaction is ordered by design, then invalid */
  F_SAMECONN = 1u << 3 /* after the answer, a valid ChainInfo on the same connection */
};

typedef struct bi_case_s {
  const char *name;   /* catalogue id (docs/security.md) */
  int srv;            /* S_PEER or S_ORD */
  const char *method; /* NULL for raw frames */
  build_fn build;
  int ident;          /* signing identity the builder uses */
  int tls;            /* TLS identity of the connection */
  int mut;            /* 0, 1 = cut in half */
  unsigned flags;
  int expect;         /* fl_status_t (RPC, Broadcast, Deliver) or endorser status */
  const char *text;   /* substring of the reason */
  int vcode;          /* F_ORDERED: the validation code */
} bi_case_t;

/* Raw frame builders (F_RAW). */
static void f_garbage(req_t *r, int i) {
  (void)i;
  uint8_t h[4] = {0, 0, 0, 32};
  r->b.len = 0;
  fl_sbuf_append(&r->b, h, 4);
  fl_sbuf_t j = {0};
  garbage(&j, 32);
  fl_sbuf_append(&r->b, j.data, j.len);
  fl_sbuf_free(&j);
}
static void f_truncated_body(req_t *r, int i) {
  (void)i;
  fl_sbuf_t f = {0};
  bi_frame(&f, 1, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Peer/ChainInfo", (fl_buf_t){0});
  size_t body = f.len - 4, cut = body / 2;
  f.data[0] = 0;
  f.data[1] = 0;
  f.data[2] = (uint8_t)(cut >> 8);
  f.data[3] = (uint8_t)cut;
  r->b.len = 0;
  fl_sbuf_append(&r->b, f.data, 4 + cut);
  fl_sbuf_free(&f);
}
static void f_truncated_eof(req_t *r, int i) {
  (void)i;
  fl_sbuf_t f = {0};
  bi_frame(&f, 1, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Peer/ChainInfo", FL_BUF("xxxxxxxx", 8));
  r->b.len = 0;
  fl_sbuf_append(&r->b, f.data, f.len - 6);
  fl_sbuf_free(&f);
}
static void f_oversize(req_t *r, int i) {
  (void)i;
  uint32_t l = 64u << 20; /* over max_message_bytes plus the nodes' frame overhead */
  uint8_t h[8] = {(uint8_t)(l >> 24), (uint8_t)(l >> 16), (uint8_t)(l >> 8), (uint8_t)l, 8, 1};
  r->b.len = 0;
  fl_sbuf_append(&r->b, h, 8);
}
static void f_flags(req_t *r, int i) {
  (void)i;
  r->b.len = 0;
  bi_frame(&r->b, 1, FL_FRAME_REQUEST | 64u, "Peer/ChainInfo", (fl_buf_t){0});
}
static void f_no_callid(req_t *r, int i) {
  (void)i;
  r->b.len = 0;
  bi_frame(&r->b, 0, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Peer/ChainInfo", (fl_buf_t){0});
}
static void f_bad_method(req_t *r, int i) {
  (void)i;
  r->b.len = 0;
  bi_frame(&r->b, 1, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Peer/Chain Info", (fl_buf_t){0});
}
static void f_unknown_method(req_t *r, int i) {
  (void)i;
  r->b.len = 0;
  bi_frame(&r->b, 1, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Peer/DropTables", (fl_buf_t){0});
}
/* Replay of a call id while the first call (a live Deliver) is open. */
static void f_dup_callid(req_t *r, int i) {
  (void)i;
  fl_sbuf_t req = {0};
  seek_req_ex(I_OK, 0, UINT64_MAX, true, &req);
  r->b.len = 0;
  bi_frame(&r->b, 5, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Peer/Deliver", fl_sbuf_view(&req));
  bi_frame(&r->b, 5, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Peer/ChainInfo", (fl_buf_t){0});
  fl_sbuf_free(&req);
}
/* The same on the orderer: a Deliver waiting for a block far ahead keeps
 * call 5 open. */
static void f_dup_callid_ord(req_t *r, int i) {
  (void)i;
  fl_sbuf_t w = {0};
  seek_req_ex(I_OK, 1000000, 1000000, true, &w);
  r->b.len = 0;
  bi_frame(&r->b, 5, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Orderer/Deliver", fl_sbuf_view(&w));
  bi_frame(&r->b, 5, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Orderer/Deliver", fl_sbuf_view(&w));
  fl_sbuf_free(&w);
}
/* Out of order: a data frame and a CANCEL for calls never opened, then a
 * valid request on the same connection. */
static void f_orphans(req_t *r, int i) {
  (void)i;
  r->b.len = 0;
  bi_frame(&r->b, 7, FL_FRAME_END_STREAM, NULL, FL_BUF("orphan", 6));
  bi_frame(&r->b, 9, FL_FRAME_CANCEL, NULL, (fl_buf_t){0});
  bi_frame(&r->b, 11, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Peer/ChainInfo", (fl_buf_t){0});
}
static void f_orphans_ord(req_t *r, int i) {
  fl_sbuf_t s = {0};
  seek_req(I_OK, 0, 0, &s);
  (void)i;
  r->b.len = 0;
  bi_frame(&r->b, 7, FL_FRAME_END_STREAM, NULL, FL_BUF("orphan", 6));
  bi_frame(&r->b, 9, FL_FRAME_CANCEL, NULL, (fl_buf_t){0});
  bi_frame(&r->b, 11, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Orderer/Deliver", fl_sbuf_view(&s));
  fl_sbuf_free(&s);
}
/* A valid request, for the TLS cases. */
static void f_valid_peer(req_t *r, int i) {
  (void)i;
  r->b.len = 0;
  bi_frame(&r->b, 1, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Peer/ChainInfo", (fl_buf_t){0});
}
static void f_valid_ord(req_t *r, int i) {
  fl_sbuf_t s = {0};
  seek_req(i, 0, 0, &s);
  r->b.len = 0;
  bi_frame(&r->b, 1, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Orderer/Deliver", fl_sbuf_view(&s));
  fl_sbuf_free(&s);
}

#define RAWC(n, s, b, tls, fl, e, t) {n, s, NULL, b, I_OK, tls, 0, F_RAW | (fl), e, t, 0}
#define C(n, s, m, b, id, mut, fl, e, t) {n, s, m, b, id, T_OK, mut, fl, e, t, 0}
#define ORD(n, s, m, b, id, e, t, vc) {n, s, m, b, id, T_OK, 0, F_ORDERED, e, t, vc}

/* One row per case, one line per row (long lines on purpose). */
/* clang-format off */
static const bi_case_t g_cases[] = {
    /* ---- frames and TLS, both servers ---- */
    RAWC("peer.frame.garbage", S_PEER, f_garbage, T_OK, 0, FL_EMALFORMED, "is not a valid fl.rpc.Frame"),
    RAWC("peer.frame.truncated", S_PEER, f_truncated_body, T_OK, 0, FL_EMALFORMED, "is not a valid fl.rpc.Frame"),
    RAWC("peer.frame.truncated-eof", S_PEER, f_truncated_eof, T_OK, F_SHUT, FL_ECLOSED, "close"),
    RAWC("peer.frame.oversize", S_PEER, f_oversize, T_OK, 0, FL_ETOOBIG, "exceeds maximum"),
    RAWC("peer.frame.unknown-flags", S_PEER, f_flags, T_OK, 0, FL_EMALFORMED, "unknown flag bits"),
    RAWC("peer.frame.no-call-id", S_PEER, f_no_callid, T_OK, 0, FL_EMALFORMED, "REQUEST without a call id"),
    RAWC("peer.frame.bad-method", S_PEER, f_bad_method, T_OK, 0, FL_EMALFORMED, "REQUEST without a valid method"),
    RAWC("peer.frame.unknown-method", S_PEER, f_unknown_method, T_OK, F_SAMECONN, FL_ENOMETHOD, "unknown method Peer/DropTables"),
    RAWC("peer.frame.replayed-call-id", S_PEER, f_dup_callid, T_OK, 0, FL_EPROTO, "duplicate call id"),
    RAWC("peer.frame.orphan-data-cancel", S_PEER, f_orphans, T_OK, 0, FL_OK, ""),
    RAWC("peer.tls.unknown-ca", S_PEER, f_valid_peer, T_EVIL, 0, FL_EUNTRUSTED, "unknown ca"),
    RAWC("peer.tls.expired", S_PEER, f_valid_peer, T_EXPIRED, 0, FL_EUNTRUSTED, "certificate expired"),
    RAWC("peer.tls.no-client-cert", S_PEER, f_valid_peer, T_NONE, 0, FL_EUNTRUSTED, "certificate required"),
    RAWC("peer.tls.plaintext", S_PEER, f_valid_peer, T_PLAIN, 0, FL_ECLOSED, "closed"),
    RAWC("ord.frame.garbage", S_ORD, f_garbage, T_OK, 0, FL_EMALFORMED, "is not a valid fl.rpc.Frame"),
    RAWC("ord.frame.truncated", S_ORD, f_truncated_body, T_OK, 0, FL_EMALFORMED, "is not a valid fl.rpc.Frame"),
    RAWC("ord.frame.truncated-eof", S_ORD, f_truncated_eof, T_OK, F_SHUT, FL_ECLOSED, "close"),
    RAWC("ord.frame.oversize", S_ORD, f_oversize, T_OK, 0, FL_ETOOBIG, "exceeds maximum"),
    RAWC("ord.frame.unknown-flags", S_ORD, f_flags, T_OK, 0, FL_EMALFORMED, "unknown flag bits"),
    RAWC("ord.frame.no-call-id", S_ORD, f_no_callid, T_OK, 0, FL_EMALFORMED, "REQUEST without a call id"),
    RAWC("ord.frame.bad-method", S_ORD, f_bad_method, T_OK, 0, FL_EMALFORMED, "REQUEST without a valid method"),
    RAWC("ord.frame.unknown-method", S_ORD, f_unknown_method, T_OK, 0, FL_ENOMETHOD, "unknown method Peer/DropTables"),
    RAWC("ord.frame.replayed-call-id", S_ORD, f_dup_callid_ord, T_OK, 0, FL_EPROTO, "duplicate call id"),
    RAWC("ord.frame.orphan-data-cancel", S_ORD, f_orphans_ord, T_OK, 0, FL_OK, ""),
    RAWC("ord.tls.unknown-ca", S_ORD, f_valid_ord, T_EVIL, 0, FL_EUNTRUSTED, "unknown ca"),
    RAWC("ord.tls.expired", S_ORD, f_valid_ord, T_EXPIRED, 0, FL_EUNTRUSTED, "certificate expired"),
    RAWC("ord.tls.no-client-cert", S_ORD, f_valid_ord, T_NONE, 0, FL_EUNTRUSTED, "certificate required"),
    RAWC("ord.tls.plaintext", S_ORD, f_valid_ord, T_PLAIN, 0, FL_ECLOSED, "closed"),

    /* ---- Peer/Endorse ---- */
    C("Peer/Endorse.malformed", S_PEER, "Peer/Endorse", b_garbage, I_OK, 0, 0, 400, "bad proposal"),
    C("Peer/Endorse.truncated", S_PEER, "Peer/Endorse", b_proposal, I_OK, 1, 0, 400, "bad proposal"),
    C("Peer/Endorse.oversize", S_PEER, "Peer/Endorse", o_proposal, I_OK, 0, 0, 400, "bad proposal"),
    C("Peer/Endorse.wrong-type", S_PEER, "Peer/Endorse", w_envelope, I_OK, 0, 0, 400, "bad proposal"),
    C("Peer/Endorse.unknown-ca", S_PEER, "Peer/Endorse", b_proposal, I_EVIL, 0, 0, 403, "creator refused"),
    C("Peer/Endorse.wrong-role", S_PEER, "Peer/Endorse", b_proposal, I_PEER, 0, 0, 403, "may not send proposals"),
    C("Peer/Endorse.revoked", S_PEER, "Peer/Endorse", b_proposal, I_REVOKED, 0, 0, 403, "revoked"),
    C("Peer/Endorse.expired", S_PEER, "Peer/Endorse", b_proposal, I_EXPIRED, 0, 0, 403, "expired"),
    C("Peer/Endorse.bad-signature", S_PEER, "Peer/Endorse", x_bad_sig_sp, I_OK, 0, 0, 403, "signature does not verify"),
    C("Peer/Endorse.replayed", S_PEER, "Peer/Endorse", r_last_sp, I_OK, 0, 0, 409, "already in the ledger"),
    /* ---- Peer/EndorseAt (Peer/Endorse behind a ledger height) ---- */
    C("Peer/EndorseAt.malformed", S_PEER, "Peer/EndorseAt", a_garbage, I_OK, 0, 0, 400, "bad proposal"),
    C("Peer/EndorseAt.truncated", S_PEER, "Peer/EndorseAt", a_proposal, I_OK, 1, 0, 400, "bad proposal"),
    C("Peer/EndorseAt.short", S_PEER, "Peer/EndorseAt", a_short, I_OK, 0, 0, FL_EMALFORMED, "shorter than its height"),
    C("Peer/EndorseAt.unknown-ca", S_PEER, "Peer/EndorseAt", a_proposal, I_EVIL, 0, 0, 403, "creator refused"),
    C("Peer/EndorseAt.revoked", S_PEER, "Peer/EndorseAt", a_proposal, I_REVOKED, 0, 0, 403, "revoked"),
    C("Peer/EndorseAt.bad-signature", S_PEER, "Peer/EndorseAt", a_bad_sig, I_OK, 0, 0, 403, "signature does not verify"),
    /* ---- Peer/Evaluate ---- */
    C("Peer/Evaluate.malformed", S_PEER, "Peer/Evaluate", b_garbage, I_OK, 0, 0, 400, "bad proposal"),
    C("Peer/Evaluate.truncated", S_PEER, "Peer/Evaluate", b_proposal, I_OK, 1, 0, 400, "bad proposal"),
    C("Peer/Evaluate.oversize", S_PEER, "Peer/Evaluate", o_proposal, I_OK, 0, 0, 400, "bad proposal"),
    C("Peer/Evaluate.wrong-type", S_PEER, "Peer/Evaluate", w_envelope, I_OK, 0, 0, 400, "bad proposal"),
    C("Peer/Evaluate.unknown-ca", S_PEER, "Peer/Evaluate", b_proposal, I_EVIL, 0, 0, 403, "creator refused"),
    C("Peer/Evaluate.wrong-role", S_PEER, "Peer/Evaluate", b_proposal, I_ORDERER, 0, 0, 403, "may not send proposals"),
    C("Peer/Evaluate.revoked", S_PEER, "Peer/Evaluate", b_proposal, I_REVOKED, 0, 0, 403, "revoked"),
    C("Peer/Evaluate.expired", S_PEER, "Peer/Evaluate", b_proposal, I_EXPIRED, 0, 0, 403, "expired"),
    C("Peer/Evaluate.replayed", S_PEER, "Peer/Evaluate", r_last_sp, I_OK, 0, 0, 409, "already in the ledger"),
    /* ---- Gateway/Endorse ---- */
    C("Gateway/Endorse.malformed", S_PEER, "Gateway/Endorse", b_garbage, I_OK, 0, 0, FL_EMALFORMED, "does not decode"),
    C("Gateway/Endorse.truncated", S_PEER, "Gateway/Endorse", b_gw_endorse, I_OK, 1, 0, FL_EMALFORMED, "does not decode"),
    C("Gateway/Endorse.oversize", S_PEER, "Gateway/Endorse", o_gw_endorse, I_OK, 0, 0, FL_EMALFORMED, "too many arguments"),
    C("Gateway/Endorse.wrong-type", S_PEER, "Gateway/Endorse", w_seek, I_OK, 0, 0, FL_EMALFORMED, "decode as a Proposal"),
    C("Gateway/Endorse.unknown-ca", S_PEER, "Gateway/Endorse", b_gw_endorse, I_EVIL, 0, 0, 403, "creator refused"),
    C("Gateway/Endorse.wrong-role", S_PEER, "Gateway/Endorse", b_gw_endorse, I_PEER, 0, 0, 403, "may not send proposals"),
    C("Gateway/Endorse.revoked", S_PEER, "Gateway/Endorse", b_gw_endorse, I_REVOKED, 0, 0, 403, "revoked"),
    C("Gateway/Endorse.expired", S_PEER, "Gateway/Endorse", b_gw_endorse, I_EXPIRED, 0, 0, 403, "expired"),
    C("Gateway/Endorse.replayed", S_PEER, "Gateway/Endorse", r_last_sp_gw, I_OK, 0, 0, 409, "already in the ledger"),
    C("Gateway/Endorse.txid-mismatch", S_PEER, "Gateway/Endorse", x_gw_txid_mismatch, I_OK, 0, 0, FL_EMALFORMED, "tx_id does not match"),
    /* ---- Gateway/Evaluate ---- */
    C("Gateway/Evaluate.malformed", S_PEER, "Gateway/Evaluate", b_garbage, I_OK, 0, 0, FL_EMALFORMED, "does not decode"),
    C("Gateway/Evaluate.truncated", S_PEER, "Gateway/Evaluate", b_gw_evaluate, I_OK, 1, 0, FL_EMALFORMED, "does not decode"),
    C("Gateway/Evaluate.oversize", S_PEER, "Gateway/Evaluate", o_gw_evaluate, I_OK, 0, 0, 400, "bad proposal"),
    C("Gateway/Evaluate.wrong-type", S_PEER, "Gateway/Evaluate", w_status, I_OK, 0, 0, FL_EMALFORMED, "does not decode"),
    C("Gateway/Evaluate.unknown-ca", S_PEER, "Gateway/Evaluate", b_gw_evaluate, I_EVIL, 0, 0, 403, "creator refused"),
    C("Gateway/Evaluate.wrong-role", S_PEER, "Gateway/Evaluate", b_gw_evaluate, I_PEER, 0, 0, 403, "may not send proposals"),
    C("Gateway/Evaluate.revoked", S_PEER, "Gateway/Evaluate", b_gw_evaluate, I_REVOKED, 0, 0, 403, "revoked"),
    C("Gateway/Evaluate.expired", S_PEER, "Gateway/Evaluate", b_gw_evaluate, I_EXPIRED, 0, 0, 403, "expired"),
    /* ---- Gateway/Submit ---- */
    C("Gateway/Submit.malformed", S_PEER, "Gateway/Submit", b_garbage, I_OK, 0, 0, FL_EMALFORMED, "does not decode"),
    C("Gateway/Submit.truncated", S_PEER, "Gateway/Submit", b_gw_submit, I_OK, 1, 0, FL_EMALFORMED, "does not decode"),
    C("Gateway/Submit.oversize", S_PEER, "Gateway/Submit", o_gw_submit, I_OK, 0, 0, FL_ETOOBIG, "exceeds"),
    C("Gateway/Submit.wrong-type", S_PEER, "Gateway/Submit", w_sp_as_submit, I_OK, 0, 0, FL_EMALFORMED, "Transaction"),
    C("Gateway/Submit.unknown-ca", S_PEER, "Gateway/Submit", b_gw_submit, I_EVIL, 0, 0, FL_EUNTRUSTED, ""),
    C("Gateway/Submit.wrong-role", S_PEER, "Gateway/Submit", b_gw_submit, I_PEER, 0, 0, FL_EPERM, "not a client or admin"),
    C("Gateway/Submit.revoked", S_PEER, "Gateway/Submit", b_gw_submit, I_REVOKED, 0, 0, FL_EREVOKED, "revoked"),
    C("Gateway/Submit.expired", S_PEER, "Gateway/Submit", b_gw_submit, I_EXPIRED, 0, 0, FL_EUNTRUSTED, "expired"),
    C("Gateway/Submit.replayed", S_PEER, "Gateway/Submit", r_last_env_submit, I_OK, 0, 0, FL_EEXIST, "duplicate tx id"),
    C("Gateway/Submit.unsigned", S_PEER, "Gateway/Submit", x_unsigned_submit, I_OK, 0, 0, FL_EMALFORMED, "signature missing"),
    C("Gateway/Submit.before-endorse", S_PEER, "Gateway/Submit", x_unendorsed_submit, I_OK, 0, 0, FL_EMALFORMED, "no endorsements"),
    ORD("Gateway/Submit.stale-read", S_PEER, "Gateway/Submit", x_stale_submit, I_OK, FL_OK, "", 9 /* MVCC_READ_CONFLICT */),
    /* ---- Gateway/CommitStatus ---- */
    C("Gateway/CommitStatus.malformed", S_PEER, "Gateway/CommitStatus", b_garbage, I_OK, 0, 0, FL_EMALFORMED, "does not decode"),
    C("Gateway/CommitStatus.truncated", S_PEER, "Gateway/CommitStatus", b_status, I_OK, 1, 0, FL_EMALFORMED, "does not decode"),
    C("Gateway/CommitStatus.oversize", S_PEER, "Gateway/CommitStatus", o_status, I_OK, 0, 0, FL_EMALFORMED, "no valid tx id"),
    C("Gateway/CommitStatus.wrong-type", S_PEER, "Gateway/CommitStatus", w_get_block, I_OK, 0, 0, FL_EMALFORMED, "does not decode"),
    C("Gateway/CommitStatus.unknown-ca", S_PEER, "Gateway/CommitStatus", b_status, I_EVIL, 0, 0, FL_EUNTRUSTED, ""),
    C("Gateway/CommitStatus.revoked", S_PEER, "Gateway/CommitStatus", b_status, I_REVOKED, 0, 0, FL_EREVOKED, "revoked"),
    C("Gateway/CommitStatus.expired", S_PEER, "Gateway/CommitStatus", b_status, I_EXPIRED, 0, 0, FL_EUNTRUSTED, "expired"),
    /* ---- Peer/Deliver ---- */
    C("Peer/Deliver.malformed", S_PEER, "Peer/Deliver", b_garbage, I_OK, 0, 0, FL_EMALFORMED, ""),
    C("Peer/Deliver.truncated", S_PEER, "Peer/Deliver", b_seek, I_OK, 1, 0, FL_EMALFORMED, ""),
    C("Peer/Deliver.oversize", S_PEER, "Peer/Deliver", o_seek, I_OK, 0, 0, FL_EMALFORMED, ""),
    C("Peer/Deliver.wrong-type", S_PEER, "Peer/Deliver", w_chain_info, I_OK, 0, 0, FL_EMALFORMED, ""),
    C("Peer/Deliver.unknown-ca", S_PEER, "Peer/Deliver", b_seek, I_EVIL, 0, 0, FL_EUNTRUSTED, ""),
    C("Peer/Deliver.revoked", S_PEER, "Peer/Deliver", b_seek, I_REVOKED, 0, 0, FL_EREVOKED, "revoked"),
    C("Peer/Deliver.expired", S_PEER, "Peer/Deliver", b_seek, I_EXPIRED, 0, 0, FL_EUNTRUSTED, "expired"),
    C("Peer/Deliver.stop-before-start", S_PEER, "Peer/Deliver", x_seek_backwards, I_OK, 0, 0, FL_EINVAL, "stop before start"),
    C("Peer/Deliver.future-block", S_PEER, "Peer/Deliver", x_seek_future, I_OK, 0, 0, FL_NOTFOUND, "not available"),
    /* ---- Peer/GetBlock, GetTransaction, GetBlob, ChainInfo ---- */
    C("Peer/GetBlock.malformed", S_PEER, "Peer/GetBlock", b_garbage, I_OK, 0, 0, FL_EMALFORMED, "does not decode"),
    C("Peer/GetBlock.truncated", S_PEER, "Peer/GetBlock", b_get_block, I_OK, 1, 0, FL_EMALFORMED, "does not decode"),
    C("Peer/GetBlock.oversize", S_PEER, "Peer/GetBlock", o_get_block, I_OK, 0, 0, FL_NOTFOUND, "no such block"),
    C("Peer/GetBlock.wrong-type", S_PEER, "Peer/GetBlock", w_envelope, I_OK, 0, 0, FL_EMALFORMED, "does not decode"),
    C("Peer/GetBlock.future-block", S_PEER, "Peer/GetBlock", x_get_future, I_OK, 0, 0, FL_NOTFOUND, "no such block"),
    C("Peer/GetTransaction.malformed", S_PEER, "Peer/GetTransaction", b_garbage, I_OK, 0, 0, FL_EMALFORMED, "does not decode"),
    C("Peer/GetTransaction.truncated", S_PEER, "Peer/GetTransaction", b_get_tx, I_OK, 1, 0, FL_EMALFORMED, "does not decode"),
    C("Peer/GetTransaction.oversize", S_PEER, "Peer/GetTransaction", o_get_tx, I_OK, 0, 0, FL_NOTFOUND, "no such transaction"),
    C("Peer/GetTransaction.wrong-type", S_PEER, "Peer/GetTransaction", w_get_block, I_OK, 0, 0, FL_EMALFORMED, "does not decode"),
    C("Peer/GetTransaction.unknown", S_PEER, "Peer/GetTransaction", x_get_tx_unknown, I_OK, 0, 0, FL_NOTFOUND, "no such transaction"),
    C("Peer/GetBlob.malformed", S_PEER, "Peer/GetBlob", b_garbage, I_OK, 0, 0, FL_EMALFORMED, "32 bytes"),
    C("Peer/GetBlob.truncated", S_PEER, "Peer/GetBlob", b_get_blob, I_OK, 1, 0, FL_EMALFORMED, "32 bytes"),
    C("Peer/GetBlob.oversize", S_PEER, "Peer/GetBlob", o_get_blob, I_OK, 0, 0, FL_EMALFORMED, "32 bytes"),
    C("Peer/GetBlob.wrong-type", S_PEER, "Peer/GetBlob", w_get_block, I_OK, 0, 0, FL_EMALFORMED, "32 bytes"),
    C("Peer/GetBlob.unknown", S_PEER, "Peer/GetBlob", b_get_blob, I_OK, 0, 0, FL_NOTFOUND, "no such blob"),
    C("Peer/ChainInfo.malformed", S_PEER, "Peer/ChainInfo", b_garbage, I_OK, 0, 0, FL_OK, ""),
    C("Peer/ChainInfo.oversize", S_PEER, "Peer/ChainInfo", o_big, I_OK, 0, 0, FL_OK, ""),
    C("Peer/ChainInfo.wrong-type", S_PEER, "Peer/ChainInfo", w_get_block, I_OK, 0, 0, FL_OK, ""),
    /* ---- Orderer/Broadcast ---- */
    C("Orderer/Broadcast.malformed", S_ORD, "Orderer/Broadcast", b_garbage, I_OK, 0, 0, FL_EMALFORMED, ""),
    C("Orderer/Broadcast.truncated", S_ORD, "Orderer/Broadcast", b_broadcast, I_OK, 1, 0, FL_EMALFORMED, ""),
    C("Orderer/Broadcast.oversize", S_ORD, "Orderer/Broadcast", o_broadcast, I_OK, 0, 0, FL_ETOOBIG, "exceeds"),
    C("Orderer/Broadcast.wrong-type", S_ORD, "Orderer/Broadcast", w_sp_as_env, I_OK, 0, 0, FL_EMALFORMED, "Transaction"),
    C("Orderer/Broadcast.unknown-ca", S_ORD, "Orderer/Broadcast", b_broadcast, I_EVIL, 0, 0, FL_EUNTRUSTED, ""),
    C("Orderer/Broadcast.wrong-role", S_ORD, "Orderer/Broadcast", b_broadcast, I_PEER, 0, 0, FL_EPERM, "role"),
    C("Orderer/Broadcast.revoked", S_ORD, "Orderer/Broadcast", b_broadcast, I_REVOKED, 0, 0, FL_EREVOKED, "revoked"),
    C("Orderer/Broadcast.expired", S_ORD, "Orderer/Broadcast", b_broadcast, I_EXPIRED, 0, 0, FL_EUNTRUSTED, "expired"),
    C("Orderer/Broadcast.replayed", S_ORD, "Orderer/Broadcast", r_last_env, I_OK, 0, 0, FL_EEXIST, "duplicate tx id"),
    /* ---- Orderer/Deliver ---- */
    C("Orderer/Deliver.malformed", S_ORD, "Orderer/Deliver", b_garbage, I_OK, 0, 0, FL_EMALFORMED, ""),
    C("Orderer/Deliver.truncated", S_ORD, "Orderer/Deliver", b_seek, I_OK, 1, 0, FL_EMALFORMED, ""),
    C("Orderer/Deliver.oversize", S_ORD, "Orderer/Deliver", o_seek, I_OK, 0, 0, FL_EMALFORMED, ""),
    C("Orderer/Deliver.wrong-type", S_ORD, "Orderer/Deliver", w_chain_info, I_OK, 0, 0, FL_EMALFORMED, ""),
    C("Orderer/Deliver.unknown-ca", S_ORD, "Orderer/Deliver", b_seek, I_EVIL, 0, 0, FL_EUNTRUSTED, ""),
    C("Orderer/Deliver.revoked", S_ORD, "Orderer/Deliver", b_seek, I_REVOKED, 0, 0, FL_EREVOKED, "revoked"),
    C("Orderer/Deliver.expired", S_ORD, "Orderer/Deliver", b_seek, I_EXPIRED, 0, 0, FL_EUNTRUSTED, "expired"),
    C("Orderer/Deliver.stop-before-start", S_ORD, "Orderer/Deliver", x_seek_backwards, I_OK, 0, 0, FL_EINVAL, "stop before start"),
    C("Orderer/Deliver.future-block", S_ORD, "Orderer/Deliver", x_seek_future, I_OK, 0, 0, FL_NOTFOUND, "not available"),
    /* ---- Pbft/Consensus ---- */
    C("Pbft/Consensus.malformed", S_ORD, "Pbft/Consensus", b_garbage, I_OK, 0, 0, FL_EMALFORMED, "be32(replica id)"),
    C("Pbft/Consensus.truncated", S_ORD, "Pbft/Consensus", b_consensus, I_OK, 1, 0, FL_EMALFORMED, "be32(replica id)"),
    C("Pbft/Consensus.oversize", S_ORD, "Pbft/Consensus", o_big, I_OK, 0, 0, FL_EMALFORMED, "be32(replica id)"),
    C("Pbft/Consensus.wrong-type", S_ORD, "Pbft/Consensus", w_get_block, I_OK, 0, 0, FL_EMALFORMED, "be32(replica id)"),
    C("Pbft/Consensus.wrong-role", S_ORD, "Pbft/Consensus", b_consensus, I_OK, 0, 0, FL_EPERM, "not an orderer"),
    C("Pbft/Consensus.self", S_ORD, "Pbft/Consensus", x_consensus_self, I_OK, 0, 0, FL_EPERM, "not a replica"),
    {"Pbft/Consensus.impersonation", S_ORD, "Pbft/Consensus", b_consensus, I_OK, T_ORD3, 0, 0,
     FL_EPERM, "not replica", 0},
};
/* clang-format on */

#define NCASES (sizeof(g_cases) / sizeof(g_cases[0]))

/* ------------------------------------------------------------- runner */

typedef struct out_s {
  int code;
  char text[600];
  int nblocks; /* Deliver: blocks received */
} out_t;

static bool is_stream(const char *m) { return m && strstr(m, "Deliver") != NULL; }

static void outcome_payload(const char *method, fl_buf_t pl, out_t *o) {
  o->code = 0;
  o->text[0] = '\0';
  if (method == NULL) return;
  if (!strcmp(method, "Peer/Endorse") || !strcmp(method, "Peer/EndorseAt") ||
      !strcmp(method, "Peer/Evaluate")) {
    Fl__Peer__ProposalResponse *r = fl__peer__proposal_response__unpack(NULL, pl.len, pl.data);
    if (r == NULL || r->response == NULL) {
      o->code = FL_EMALFORMED;
      snprintf(o->text, sizeof(o->text), "test: reply does not decode");
    } else {
      o->code = r->response->status;
      snprintf(o->text, sizeof(o->text), "%s", r->response->message);
    }
    if (r) fl__peer__proposal_response__free_unpacked(r, NULL);
  } else if (!strcmp(method, "Gateway/Endorse")) {
    Fl__Peer__EndorseResponse *r = fl__peer__endorse_response__unpack(NULL, pl.len, pl.data);
    if (r == NULL) {
      o->code = FL_EMALFORMED;
      snprintf(o->text, sizeof(o->text), "test: reply does not decode");
    } else if (r->result) {
      o->code = r->result->status;
      snprintf(o->text, sizeof(o->text), "%s", r->result->message);
    }
    if (r) fl__peer__endorse_response__free_unpacked(r, NULL);
  } else if (!strcmp(method, "Gateway/Evaluate")) {
    Fl__Peer__EvaluateResponse *r = fl__peer__evaluate_response__unpack(NULL, pl.len, pl.data);
    if (r && r->result) {
      o->code = r->result->status;
      snprintf(o->text, sizeof(o->text), "%s", r->result->message);
    }
    if (r) fl__peer__evaluate_response__free_unpacked(r, NULL);
  } else if (!strcmp(method, "Orderer/Broadcast")) {
    Fl__Orderer__BroadcastResponse *r =
        fl__orderer__broadcast_response__unpack(NULL, pl.len, pl.data);
    if (r) {
      o->code = r->status;
      snprintf(o->text, sizeof(o->text), "%s", r->info ? r->info : "");
      fl__orderer__broadcast_response__free_unpacked(r, NULL);
    }
  } else if (is_stream(method)) {
    Fl__Orderer__DeliverResponse *r = fl__orderer__deliver_response__unpack(NULL, pl.len, pl.data);
    if (r && r->type_case == FL__ORDERER__DELIVER_RESPONSE__TYPE_BLOCK) o->nblocks++;
    else if (r && r->type_case == FL__ORDERER__DELIVER_RESPONSE__TYPE_STATUS) o->code = r->status;
    if (r) fl__orderer__deliver_response__free_unpacked(r, NULL);
  }
}

/* Plain TCP (no TLS): writes bytes, reads until close; the server must
 * drop the connection. */
static void run_plain(uint16_t port, fl_buf_t bytes, out_t *o) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  o->code = FL_EINTERNAL;
  snprintf(o->text, sizeof(o->text), "test: connect failed");
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
    (void)!write(fd, bytes.data, bytes.len);
    uint8_t b[512];
    ssize_t n;
    size_t total = 0;
    while ((n = read(fd, b, sizeof(b))) > 0) total += (size_t)n;
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      o->code = FL_ECLOSED;
      snprintf(o->text, sizeof(o->text), "server closed the connection (%zu bytes of TLS alert)",
               total);
    } else {
      o->code = FL_ETIMEDOUT;
      snprintf(o->text, sizeof(o->text), "server kept the plaintext connection open");
    }
  }
  close(fd);
}

static uint16_t port_of(int srv) { return srv == S_PEER ? g.net->pport[0] : g.net->oport[0]; }

/* Sends the case's bytes and collects the outcome. */
static void run_case(const bi_case_t *c, req_t *r, out_t *o) {
  memset(o, 0, sizeof(*o));
  fl_sbuf_t bytes = {0};
  if (c->flags & F_RAW) {
    fl_sbuf_append(&bytes, r->b.data, r->b.len);
  } else {
    bi_frame(&bytes, 1, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, c->method, fl_sbuf_view(&r->b));
  }
  if (c->tls == T_PLAIN) {
    run_plain(port_of(c->srv), fl_sbuf_view(&bytes), o);
    fl_sbuf_free(&bytes);
    return;
  }
  bi_raw_t *raw = NULL;
  char err[512] = "";
  fl_status_t rc = bi_raw_open(port_of(c->srv), g.tls_cert[c->tls], g.tls_key[c->tls],
                               g.net->tls_roots, &raw, err, sizeof(err));
  if (rc == FL_OK) rc = bi_raw_write(raw, bytes.data, bytes.len);
  if (rc == FL_OK && (c->flags & F_SHUT)) bi_raw_shutdown(raw);
  bool last_req_done = false;
  uint64_t want = (c->flags & F_RAW) ? 0 : 1;
  while (rc == FL_OK) {
    fl_frame_t *f = NULL;
    rc = bi_raw_read_frame(raw, 15000, &f, err, sizeof(err));
    if (rc != FL_OK) break;
    if (f->flags & FL_FRAME_ERROR) {
      o->code = f->status;
      snprintf(o->text, sizeof(o->text), "%s", f->error ? f->error : "");
      bool conn_level = f->call_id == 0;
      uint64_t id = f->call_id;
      fl_frame_free(f);
      /* for raw cases, the answer to the last frame sent decides; call
       * 11 (the orphans' valid request) or any error */
      if (conn_level || want == 0 || id == want) {
        last_req_done = true;
        break;
      }
      continue;
    }
    if (f->payload.len > 0) outcome_payload(c->method ? c->method
                                                      : (c->srv == S_ORD ? "Orderer/Deliver"
                                                                         : "Peer/ChainInfo"),
                                            f->payload, o);
    bool end = (f->flags & FL_FRAME_END_STREAM) != 0;
    fl_frame_free(f);
    if (end) {
      last_req_done = true;
      break;
    }
  }
  if (!last_req_done && rc != FL_OK) {
    o->code = rc;
    snprintf(o->text, sizeof(o->text), "%s", err);
  }
  /* the connection still serves after a per-call error */
  if (last_req_done && (c->flags & F_SAMECONN)) {
    fl_sbuf_t v = {0};
    bi_frame(&v, 2, FL_FRAME_REQUEST | FL_FRAME_END_STREAM, "Peer/ChainInfo", (fl_buf_t){0});
    fl_frame_t *f = NULL;
    fl_status_t vr = bi_raw_write(raw, v.data, v.len);
    if (vr == FL_OK) vr = bi_raw_read_frame(raw, 10000, &f, err, sizeof(err));
    if (vr != FL_OK || f == NULL || (f->flags & FL_FRAME_ERROR)) {
      o->code = FL_EINTERNAL;
      snprintf(o->text, sizeof(o->text), "same connection no longer serves: %s", err);
    }
    fl_frame_free(f);
    fl_sbuf_free(&v);
  }
  bi_raw_close(raw);
  fl_sbuf_free(&bytes);
}

/* ---------------------------------------------------- stored-state checks */

static void add_txid(char (**arr)[FL_TXID_HEX_LEN + 1], size_t *n, const char *txid) {
  if (txid == NULL || txid[0] == '\0') return;
  if (*n % 64 == 0) *arr = fl_reallocarray(*arr, *n + 64, sizeof(**arr));
  snprintf((*arr)[*n], FL_TXID_HEX_LEN + 1, "%s", txid);
  (*n)++;
}

static void add_allowed(const char *txid) { add_txid(&g.allowed, &g.n_allowed, txid); }

/* A sentinel: "put bi-sentinel-N" through peer 0's gateway; must commit
 * VALID. Returns its block. */
static uint64_t sentinel(void) {
  char key[64];
  snprintf(key, sizeof(key), "bi-sentinel-%d", g.nsent++);
  fl_sbuf_t sp = {0}, pl = {0}, env = {0};
  char txid[FL_TXID_HEX_LEN + 1];
  proposal(I_OK, "put", key, &sp, txid);
  int cs = 0, code = -1;
  uint64_t blk = 0;
  char *err = NULL;
  fl_status_t rc = pn_gw_endorse(g.gw, fl_sbuf_view(&sp), txid, &pl, &cs, NULL, &err);
  if (rc == FL_OK && cs == 200) rc = pn_sign_envelope(g.net, 0, fl_sbuf_view(&pl), &env);
  if (rc == FL_OK) rc = pn_gw_submit(g.gw, fl_sbuf_view(&env), txid, &err);
  if (rc == FL_OK) rc = pn_gw_status(g.net, g.gw, 0, txid, 30000, &code, &blk, &err);
  if (rc != FL_OK || code != 0)
    fail_msg("sentinel transaction failed: %s (%s) code %d", fl_status_name(rc), err ? err : "",
             code);
  fl_free(err);
  g.last_sp.len = 0;
  fl_sbuf_append(&g.last_sp, sp.data, sp.len);
  g.last_env.len = 0;
  fl_sbuf_append(&g.last_env, env.data, env.len);
  memcpy(g.last_txid, txid, sizeof(txid));
  g.last_block = blk;
  add_txid(&g.allowed, &g.n_allowed, txid);
  fl_sbuf_free(&sp);
  fl_sbuf_free(&pl);
  fl_sbuf_free(&env);
  return blk;
}

static void chain_info(uint64_t *h, uint8_t hash[32]) {
  assert_int_equal(pn_chain_info(g.gw, h, hash), FL_OK);
}

static size_t block_txs(uint64_t n, uint8_t prev[32]) {
  fl_sbuf_t b = {0};
  assert_int_equal(pn_get_block(g.gw, n, &b), FL_OK);
  fl_block_t *blk = NULL;
  assert_int_equal(fl_block_decode(b.data, b.len, &blk, NULL), FL_OK);
  size_t k = blk->n_envelopes;
  memcpy(prev, blk->previous_hash, 32);
  fl_block_free(blk);
  fl_sbuf_free(&b);
  return k;
}

/* The bad key must still be absent (kvstore get: 404). */
static void check_evil_absent(const char *name) {
  static const char *const args[] = {"get", EVIL_KEY, NULL};
  int st = 0;
  fl_sbuf_t pl = {0};
  assert_int_equal(pn_gw_evaluate(g.net, g.gw, 0, "kvstore", args, &st, &pl), FL_OK);
  if (st != 404) fail_msg("%s: key %s was written (get -> %d)", name, EVIL_KEY, st);
  fl_sbuf_free(&pl);
}

/* --------------------------------------------------------------- setup */

static const char *kv_so(void) {
  const char *p = getenv("FL_KVSTORE_SO");
  return p ? p : "";
}

/* Rewrites the harness' network.yaml with client2@org1 revoked and makes
 * the genesis block again (before any process starts). */
static void revoke_in_genesis(const bi_ident_t *rev) {
  char p[600], gen[600], cli[2400];
  snprintf(p, sizeof(p), "%s/network.yaml", g.net->dir);
  fl_sbuf_t y = {0};
  assert_int_equal(bi_slurp(p, &y), FL_OK);
  fl_sbuf_append(&y, "", 1);
  const char *at = strstr((const char *)y.data, "revoked: []");
  assert_non_null(at);
  char hex[65];
  const uint8_t *sha = fl_cert_sha256(rev->cert);
  for (int k = 0; k < 32; k++) snprintf(hex + 2 * k, 3, "%02x", sha[k]);
  char *ny = fl_sprintf("%.*srevoked:\n  - {mspid: Org1MSP, cert_sha256: %s, reason: "
                        "\"badinput test\"}%s",
                        (int)(at - (const char *)y.data), (const char *)y.data, hex,
                        at + strlen("revoked: []"));
  assert_int_equal(bi_write_file(p, ny, strlen(ny)), FL_OK);
  fl_free(ny);
  fl_sbuf_free(&y);
  snprintf(gen, sizeof(gen), "%s/genesis.block", g.net->dir);
  snprintf(cli, sizeof(cli), "%s/fedledger genesis --force -c %s -o %s > %s/genesis2.log 2>&1",
           g.net->bin, p, gen, g.net->dir);
  assert_int_equal(system(cli), 0);
}

static int setup(void **state) {
  (void)state;
  big_string();
  const char *bin = getenv("FL_PEER_BIN_DIR");
  const char *cso = getenv("FL_COUNTER_SO");
  if (bin == NULL || cso == NULL) {
    fprintf(stderr, "badinput: FL_PEER_BIN_DIR / FL_COUNTER_SO not set (run through ctest)\n");
    return -1;
  }
  pn_opts_t o = {.log = "info", .batch_timeout = "5ms"};
  if (pn_net_new(&o, bin, kv_so(), cso, &g.net) != FL_OK) return -1;
  char d[700];
  int64_t now = (int64_t)time(NULL);
  /* identities */
  fl_cert_t *evil_ca = NULL, *org1_ca = NULL, *org1_tlsca = NULL;
  fl_signer_t *evil_key = NULL, *org1_key = NULL, *org1_tlskey = NULL;
  char tlsdir[600];
  snprintf(tlsdir, sizeof(tlsdir), "%s/badtls", g.net->dir);
  mkdir(tlsdir, 0700);
  const char *o1 = "pki/peerOrganizations/org1.example.com";
  fl_status_t rc = bi_make_ca("ca.evil.example.com", &evil_ca, &evil_key);
  snprintf(d, sizeof(d), "%s/%s/ca/ca.org1.example.com-cert.pem", g.net->dir, o1);
  if (rc == FL_OK) rc = fl_cert_load_file(d, &org1_ca);
  snprintf(d, sizeof(d), "%s/%s/ca/priv_sk", g.net->dir, o1);
  if (rc == FL_OK) rc = fl_signer_load_file(d, &org1_key);
  snprintf(d, sizeof(d), "%s/%s/tlsca/tlsca.org1.example.com-cert.pem", g.net->dir, o1);
  if (rc == FL_OK) rc = fl_cert_load_file(d, &org1_tlsca);
  snprintf(d, sizeof(d), "%s/%s/tlsca/priv_sk", g.net->dir, o1);
  if (rc == FL_OK) rc = fl_signer_load_file(d, &org1_tlskey);
  if (rc == FL_OK)
    rc = bi_make_ident("Org1MSP", "mallory@org1.example.com", "client", evil_ca, evil_key,
                       now - 3600, now + 86400, NULL, &g.ids[I_EVIL]);
  if (rc == FL_OK)
    rc = bi_make_ident("Org1MSP", "expired@org1.example.com", "client", org1_ca, org1_key,
                       now - 7200, now - 3600, NULL, &g.ids[I_EXPIRED]);
  if (rc == FL_OK)
    rc = bi_make_ident("Org1MSP", "mallory-tls", "client", evil_ca, evil_key, now - 3600,
                       now + 86400, tlsdir, &g.evil_tls);
  if (rc == FL_OK)
    rc = bi_make_ident("Org1MSP", "expired-tls", "client", org1_tlsca, org1_tlskey, now - 7200,
                       now - 3600, tlsdir, &g.expired_tls);
  snprintf(d, sizeof(d), "%s/%s/users/client2@org1.example.com", g.net->dir, o1);
  if (rc == FL_OK) rc = bi_load_ident("Org1MSP", d, &g.ids[I_REVOKED]);
  snprintf(d, sizeof(d), "%s/%s/peers/peer0.org1.example.com", g.net->dir, o1);
  if (rc == FL_OK) rc = bi_load_ident("Org1MSP", d, &g.ids[I_PEER]);
  snprintf(d, sizeof(d), "%s/pki/ordererOrganizations/example.com/orderers/orderer0.example.com",
           g.net->dir);
  if (rc == FL_OK) rc = bi_load_ident("OrdererMSP", d, &g.ids[I_ORDERER]);
  fl_cert_free(evil_ca);
  fl_cert_free(org1_ca);
  fl_cert_free(org1_tlsca);
  fl_signer_free(evil_key);
  fl_signer_free(org1_key);
  fl_signer_free(org1_tlskey);
  if (rc != FL_OK) {
    fprintf(stderr, "badinput: identities: %s\n", fl_status_str(rc));
    return -1;
  }
  revoke_in_genesis(&g.ids[I_REVOKED]);
  g.tls_cert[T_OK] = g.net->client[0].tls_cert;
  g.tls_key[T_OK] = g.net->client[0].tls_key;
  g.tls_cert[T_EVIL] = g.evil_tls.id.tls_cert;
  g.tls_key[T_EVIL] = g.evil_tls.id.tls_key;
  g.tls_cert[T_EXPIRED] = g.expired_tls.id.tls_cert;
  g.tls_key[T_EXPIRED] = g.expired_tls.id.tls_key;
  snprintf(g.ord3_cert, sizeof(g.ord3_cert),
           "%s/pki/ordererOrganizations/example.com/orderers/orderer3.example.com/tls/server.crt",
           g.net->dir);
  snprintf(g.ord3_key, sizeof(g.ord3_key),
           "%s/pki/ordererOrganizations/example.com/orderers/orderer3.example.com/tls/server.key",
           g.net->dir);
  g.tls_cert[T_ORD3] = g.ord3_cert;
  g.tls_key[T_ORD3] = g.ord3_key;
  uint64_t t0 = pn_now_ms();
  if (pn_start_all(g.net) != FL_OK) return -1;
  if (pn_connect_peer(g.net, 0, 0, &g.gw) != FL_OK) return -1;
  fprintf(stderr, "badinput: network up in %llu ms\n", (unsigned long long)(pn_now_ms() - t0));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fl_rpc_sync_close(g.gw);
  for (int i = 0; i < I_N; i++) bi_ident_clear(&g.ids[i]);
  bi_ident_clear(&g.evil_tls);
  bi_ident_clear(&g.expired_tls);
  fl_sbuf_free(&g.last_sp);
  fl_sbuf_free(&g.last_env);
  fl_free(g.allowed);
  fl_free(g.refused);
  pn_net_free(g.net);
  return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_catalogue(void **state) {
  (void)state;
  const char *v = getenv("FL_BADINPUT_VERBOSE");
  bool verbose = v && v[0] == '1';
  sentinel(); /* a first committed transaction for the replay cases */
  int failed = 0;
  uint64_t t0 = pn_now_ms();
  for (size_t k = 0; k < NCASES; k++) {
    const bi_case_t *c = &g_cases[k];
    /* a fresh gateway connection per case: a blocking client idle for
     * longer than a call timeout misfires its next timer (see
     * docs/security.md, findings) */
    fl_rpc_sync_close(g.gw);
    g.gw = NULL;
    assert_int_equal(pn_connect_peer(g.net, 0, 0, &g.gw), FL_OK);
    req_t r;
    memset(&r, 0, sizeof(r));
    c->build(&r, c->ident);
    uint64_t h0 = 0;
    uint8_t head0[32];
    chain_info(&h0, head0);
    if (c->mut == 1) truncate_half(&r);
    out_t o;
    run_case(c, &r, &o);
    /* (a) the answer */
    bool ok = o.code == c->expect && strstr(o.text, c->text) != NULL;
    if (verbose || !ok)
      fprintf(stderr, "%s %-40s code=%d (%s) text=\"%.300s\"%s\n", ok ? "ok  " : "FAIL", c->name,
              o.code, o.code < 0 ? fl_status_name(o.code) : "status", o.text,
              ok ? "" : " <- expected different answer");
    if (!ok) {
      fprintf(stderr, "     expected code=%d text~\"%s\"\n", c->expect, c->text);
      failed++;
    }
    /* (c) the target is alive */
    pid_t pid = c->srv == S_PEER ? g.net->ppid[0] : g.net->opid[0];
    if (!bi_alive(pid)) fail_msg("%s: the %s died", c->name, c->srv == S_PEER ? "peer" : "orderer");
    /* (b) nothing stored: ordered-by-design cases get their code first */
    if (c->flags & F_ORDERED) {
      int code = -1;
      uint64_t blk = 0;
      char *err = NULL;
      fl_status_t rc = pn_gw_status(g.net, g.gw, 0, r.txid, 30000, &code, &blk, &err);
      if (rc != FL_OK || code != c->vcode) {
        fprintf(stderr, "FAIL %-40s committed %s code %d, expected code %d (%s)\n", c->name,
                fl_status_name(rc), code, c->vcode, err ? err : "");
        failed++;
      }
      fl_free(err);
      add_txid(&g.allowed, &g.n_allowed, r.txid);
      chain_info(&h0, head0);
    } else {
      add_txid(&g.refused, &g.n_refused, r.txid);
    }
    uint64_t b = sentinel();
    uint8_t prev[32];
    size_t ntx = block_txs(b, prev);
    if (b != h0 || ntx != 1 || memcmp(prev, head0, 32) != 0) {
      fprintf(stderr,
              "FAIL %-40s stored state changed: sentinel in block %llu (expected %llu) with %zu "
              "transactions, previous hash %s\n",
              c->name, (unsigned long long)b, (unsigned long long)h0, ntx,
              memcmp(prev, head0, 32) ? "differs" : "same");
      failed++;
    }
    check_evil_absent(c->name);
    if (strstr(c->name, "stale-read")) {
      /* only the first of the two increments was applied */
      static const char *const args[] = {"get", "bi-counter", NULL};
      int st = 0;
      fl_sbuf_t pl = {0};
      assert_int_equal(pn_gw_evaluate(g.net, g.gw, 0, "counter", args, &st, &pl), FL_OK);
      assert_int_equal(st, 200);
      assert_true(pl.len == 1 && pl.data[0] == '1');
      fl_sbuf_free(&pl);
    }
    /* (c) a valid request of the same server still succeeds */
    if (c->srv == S_ORD && pn_wait_orderer(g.net, 0, 10000) != FL_OK)
      fail_msg("%s: orderer 0 no longer serves Deliver", c->name);
    fl_sbuf_free(&r.b);
  }
  fprintf(stderr, "badinput: %zu RPC cases in %llu ms, %d failed\n", NCASES,
          (unsigned long long)(pn_now_ms() - t0), failed);
  assert_int_equal(failed, 0);
}

/* At the end: every transaction in the chain is a sentinel or a case that
 * is ordered by design; the four peers hold the same head. */
static int final_cb(void *arg, fl_buf_t block) {
  int *bad = arg;
  fl_block_t *b = NULL;
  if (fl_block_decode(block.data, block.len, &b, NULL) != FL_OK) return 1;
  for (size_t k = 0; b->number > 0 && k < b->n_envelopes; k++) {
    fl_envelope_t *e = NULL;
    bool known = false;
    if (fl_envelope_decode(b->envelopes[k].data, b->envelopes[k].len, &e, NULL) == FL_OK) {
      for (size_t j = 0; j < g.n_allowed && !known; j++)
        known = strcmp(g.allowed[j], e->header.tx_id) == 0;
      if (!known) {
        fprintf(stderr, "FAIL unexpected transaction %s in block %llu\n", e->header.tx_id,
                (unsigned long long)b->number);
        (*bad)++;
      }
    } else {
      fprintf(stderr, "FAIL undecodable envelope in block %llu\n", (unsigned long long)b->number);
      (*bad)++;
    }
    fl_envelope_free(e);
  }
  fl_block_free(b);
  return 0;
}

static void test_chain_clean(void **state) {
  (void)state;
  uint64_t h = 0;
  uint8_t head[32];
  chain_info(&h, head);
  int bad = 0;
  assert_int_equal(pn_deliver(g.net, g.gw, 0, h - 1, final_cb, &bad), FL_OK);
  assert_int_equal(bad, 0);
  for (int i = 1; i < PN_NPEER; i++) {
    assert_int_equal(pn_wait_height(g.net, i, h, 30000), FL_OK);
    fl_sbuf_t a = {0}, b = {0};
    fl_rpc_sync_t *s = NULL;
    assert_int_equal(pn_connect_peer(g.net, i, 0, &s), FL_OK);
    assert_int_equal(pn_get_block(s, h - 1, &a), FL_OK);
    assert_int_equal(pn_get_block(g.gw, h - 1, &b), FL_OK);
    fl_block_t *ba = NULL, *bb = NULL;
    assert_int_equal(fl_block_decode(a.data, a.len, &ba, NULL), FL_OK);
    assert_int_equal(fl_block_decode(b.data, b.len, &bb, NULL), FL_OK);
    assert_memory_equal(ba->header_hash, bb->header_hash, 32);
    fl_block_free(ba);
    fl_block_free(bb);
    fl_sbuf_free(&a);
    fl_sbuf_free(&b);
    fl_rpc_sync_close(s);
    assert_true(bi_alive(g.net->ppid[i]));
  }
  for (int i = 0; i < PN_NORD; i++) assert_true(bi_alive(g.net->opid[i]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_catalogue),
      cmocka_unit_test(test_chain_clean),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
