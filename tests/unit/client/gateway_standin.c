/* SPDX-License-Identifier: Apache-2.0
 *
 * gateway_standin.c: the gateway stand-in of the client tests (see
 * gateway_standin.h for what it does and why each step is real).
 *
 * Everything below runs on the server thread except gw_start/gw_stop and
 * the atomics (mode, stats), which the test thread touches.
 */
#include "tests/unit/client/gateway_standin.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/crypto/hash.h"
#include "common/crypto/x509.h"
#include "common/net/rpc.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/genesis.h"
#include "common/protoutil/proposal.h"
#include "common/protoutil/rwset.h"
#include "fl/common/common.pb-c.h"
#include "fl/orderer/ab.pb-c.h"
#include "fl/peer/gateway.pb-c.h"
#include "fl/peer/proposal.pb-c.h"

#define CHANNEL "fedchannel"
#define N_ORD 4
#define MAX_HELD 64
#define TXS_PER_BLOCK 100

#define DIE(...)                                                              \
  do {                                                                        \
    fprintf(stderr, "gateway stand-in: " __VA_ARGS__);                        \
    fprintf(stderr, "\n");                                                    \
    abort();                                                                  \
  } while (0)

typedef struct txrec_s {
  char tx_id[FL_TXID_HEX_LEN + 1];
  fl_sbuf_t creator;
  fl_sbuf_t env;      /* the client-signed envelope as submitted */
  uint64_t block, num;
} txrec_t;

typedef struct kv_s {
  char *key, *value;
} kv_t;

struct gw_s {
  pthread_t thread;
  uv_loop_t loop;
  uv_async_t stop;
  fl_rpc_server_t *srv;
  uint16_t port;
  atomic_int mode;
  gw_stats_t stats;
  char *pki;
  /* identities */
  gw_ident_t client1, client2, peer1, peer2, ord_admin, orderer[N_ORD];
  fl_msp_t *msp;
  /* ledger */
  fl_sbuf_t genesis;
  fl_sbuf_t blocks[4], bad_sig2, bad_link2; /* encoded; blocks[0] = genesis */
  fl_sbuf_t blob;
  uint8_t blob_hash[FL_SHA256_LEN];
  txrec_t *txs;
  size_t n_txs, cap_txs;
  kv_t *kv;
  size_t n_kv, cap_kv;
  fl_rpc_call_t *held[MAX_HELD];
  size_t n_held;
};

/* ---- fixture files ------------------------------------------------------- */

static void read_all(const char *path, fl_sbuf_t *out) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) DIE("cannot open %s", path);
  uint8_t tmp[4096];
  size_t n;
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) fl_sbuf_append(out, tmp, n);
  fclose(f);
}

static char *first_in(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) DIE("cannot open %s", dir);
  struct dirent *e;
  char *found = NULL;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && found == NULL) found = fl_sprintf("%s/%s", dir, e->d_name);
  closedir(d);
  if (found == NULL) DIE("empty %s", dir);
  return found;
}

void gw_ident_load(gw_ident_t *id, const char *pki, const char *rel, const char *mspid) {
  memset(id, 0, sizeof *id);
  id->mspid = mspid;
  char *sd = fl_sprintf("%s/%s/msp/signcerts", pki, rel);
  char *kd = fl_sprintf("%s/%s/msp/keystore", pki, rel);
  char *cp = first_in(sd), *kp = first_in(kd);
  read_all(cp, &id->pem);
  if (fl_signer_load_file(kp, &id->key) != FL_OK) DIE("bad key %s", kp);
  if (fl_msp_serialize_identity(mspid, id->pem.data, id->pem.len, &id->sid) != FL_OK)
    DIE("cannot serialize %s", rel);
  fl_free(sd);
  fl_free(kd);
  fl_free(cp);
  fl_free(kp);
}

void gw_ident_free(gw_ident_t *id) {
  fl_sbuf_free(&id->pem);
  fl_sbuf_free(&id->sid);
  fl_signer_free(id->key);
}

/* ---- the chain ------------------------------------------------------------ */

static void make_genesis(gw_t *gw) {
  fl_sbuf_t ord_ca = {0}, ord_tls = {0}, o1_ca = {0}, o1_tls = {0}, o2_ca = {0}, o2_tls = {0};
  char *p;
#define RD(buf, rel)                                                          \
  p = fl_sprintf("%s/%s", gw->pki, rel);                                      \
  read_all(p, buf);                                                           \
  fl_free(p)
  RD(&ord_ca, "ordererOrganizations/example.com/msp/cacerts/ca.example.com-cert.pem");
  RD(&ord_tls, "ordererOrganizations/example.com/msp/tlscacerts/tlsca.example.com-cert.pem");
  RD(&o1_ca, "peerOrganizations/org1.example.com/msp/cacerts/ca.org1.example.com-cert.pem");
  RD(&o1_tls,
     "peerOrganizations/org1.example.com/msp/tlscacerts/tlsca.org1.example.com-cert.pem");
  RD(&o2_ca, "peerOrganizations/org2.example.com/msp/cacerts/ca.org2.example.com-cert.pem");
  RD(&o2_tls,
     "peerOrganizations/org2.example.com/msp/tlscacerts/tlsca.org2.example.com-cert.pem");
#undef RD
  fl_buf_t r0 = fl_sbuf_view(&ord_ca), t0 = fl_sbuf_view(&ord_tls);
  fl_buf_t r1 = fl_sbuf_view(&o1_ca), t1 = fl_sbuf_view(&o1_tls);
  fl_buf_t r2 = fl_sbuf_view(&o2_ca), t2 = fl_sbuf_view(&o2_tls);
  fl_net_org_t orgs[3] = {
      {.mspid = "OrdererMSP", .name = "example.com", .root_certs = &r0, .n_root_certs = 1,
       .tls_root_certs = &t0, .n_tls_root_certs = 1, .is_orderer_org = true},
      {.mspid = "Org1MSP", .name = "org1.example.com", .root_certs = &r1, .n_root_certs = 1,
       .tls_root_certs = &t1, .n_tls_root_certs = 1},
      {.mspid = "Org2MSP", .name = "org2.example.com", .root_certs = &r2, .n_root_certs = 1,
       .tls_root_certs = &t2, .n_tls_root_certs = 1},
  };
  fl_net_orderer_t ords[N_ORD];
  for (uint32_t i = 0; i < N_ORD; i++)
    ords[i] = (fl_net_orderer_t){.id = i, .mspid = "OrdererMSP", .host = "127.0.0.1",
                                 .port = 7050 + i,
                                 .identity_cert = fl_sbuf_view(&gw->orderer[i].pem)};
  fl_net_chaincode_t cc = {.name = "kvstore", .version = "1.0", .policy = "", .library = ""};
  fl_netconfig_t cfg = {
      .channel = CHANNEL, .orgs = orgs, .n_orgs = 3, .orderers = ords, .n_orderers = N_ORD,
      .pbft = {.n = N_ORD, .f = 1, .batch_max_count = 100, .batch_max_bytes = 1 << 20,
               .batch_timeout_ms = 50, .checkpoint_interval = 10, .watermark_window = 40,
               .view_change_timeout_ms = 2000},
      .endorsement_policy = "AND('Org1MSP.peer','Org2MSP.peer')", .chaincodes = &cc,
      .n_chaincodes = 1, .max_message_bytes = FL_NETCONFIG_DEFAULT_MESSAGE_BYTES,
      .created_ms = (uint64_t)time(NULL) * 1000};
  fl_block_t *g = NULL;
  const char *why = NULL;
  if (fl_genesis_build(&cfg, fl_sbuf_view(&gw->ord_admin.sid), gw->ord_admin.key, &g, &why) !=
      FL_OK)
    DIE("genesis: %s", why ? why : "?");
  if (fl_block_encode(g, &gw->genesis) != FL_OK) DIE("genesis encode");
  fl_sbuf_append(&gw->blocks[0], gw->genesis.data, gw->genesis.len);
  if (fl_netconfig_msp_new(&cfg, &gw->msp, &why) != FL_OK) DIE("msp: %s", why ? why : "?");

  /* blocks 1..3, each of two real envelopes, signed by orderers 0..2 */
  uint8_t prev[FL_SHA256_LEN];
  memcpy(prev, g->header_hash, FL_SHA256_LEN);
  fl_block_free(g);
  for (uint64_t n = 1; n <= 3; n++) {
    fl_sbuf_t e[2] = {{0}, {0}};
    fl_buf_t ev[2];
    for (int i = 0; i < 2; i++) {
      char data[32];
      snprintf(data, sizeof data, "block %llu tx %d", (unsigned long long)n, i);
      if (fl_envelope_build(FL_HDR_ENDORSER_TX, CHANNEL, fl_sbuf_view(&gw->client1.sid),
                            gw->client1.key, FL_BUF(data, strlen(data)), &e[i], NULL) != FL_OK)
        DIE("envelope");
      ev[i] = fl_sbuf_view(&e[i]);
    }
    fl_block_t *b = NULL;
    if (fl_block_build(n, prev, ev, 2, &b) != FL_OK) DIE("block build");
    for (uint32_t r = 0; r < 3; r++)
      if (fl_block_sign(b, r, gw->orderer[r].key) != FL_OK) DIE("block sign");
    if (fl_block_encode(b, &gw->blocks[n]) != FL_OK) DIE("block encode");
    if (n == 2) {
      /* two good signatures and one by a key that is not orderer 2's */
      fl_block_t *bad = NULL;
      if (fl_block_build(n, prev, ev, 2, &bad) != FL_OK) DIE("block build");
      if (fl_block_sign(bad, 0, gw->orderer[0].key) != FL_OK ||
          fl_block_sign(bad, 1, gw->orderer[1].key) != FL_OK ||
          fl_block_sign(bad, 2, gw->peer1.key) != FL_OK ||
          fl_block_encode(bad, &gw->bad_sig2) != FL_OK)
        DIE("bad block");
      fl_block_free(bad);
      /* fully signed, but linked to nothing we know */
      uint8_t wrong[FL_SHA256_LEN];
      memset(wrong, 0xab, sizeof wrong);
      if (fl_block_build(n, wrong, ev, 2, &bad) != FL_OK) DIE("block build");
      for (uint32_t r = 0; r < 3; r++)
        if (fl_block_sign(bad, r, gw->orderer[r].key) != FL_OK) DIE("block sign");
      if (fl_block_encode(bad, &gw->bad_link2) != FL_OK) DIE("bad block");
      fl_block_free(bad);
    }
    memcpy(prev, b->header_hash, FL_SHA256_LEN);
    fl_block_free(b);
    fl_sbuf_free(&e[0]);
    fl_sbuf_free(&e[1]);
  }
  fl_sbuf_free(&ord_ca);
  fl_sbuf_free(&ord_tls);
  fl_sbuf_free(&o1_ca);
  fl_sbuf_free(&o1_tls);
  fl_sbuf_free(&o2_ca);
  fl_sbuf_free(&o2_tls);
}

/* ---- kvstore ------------------------------------------------------------- */

static kv_t *kv_find(gw_t *gw, const char *key) {
  for (size_t i = 0; i < gw->n_kv; i++)
    if (strcmp(gw->kv[i].key, key) == 0) return &gw->kv[i];
  return NULL;
}

static void kv_put(gw_t *gw, const char *key, fl_buf_t value) {
  kv_t *e = kv_find(gw, key);
  if (e == NULL) {
    if (gw->n_kv == gw->cap_kv) {
      gw->cap_kv = gw->cap_kv ? 2 * gw->cap_kv : 1024;
      gw->kv = fl_reallocarray(gw->kv, gw->cap_kv, sizeof *gw->kv);
    }
    e = &gw->kv[gw->n_kv++];
    e->key = fl_strdup(key);
  } else {
    fl_free(e->value);
  }
  e->value = value.len ? fl_strndup((const char *)value.data, value.len) : fl_strdup("");
}

/* Simulates p: fills *resp and the encoded rwset (results). */
typedef struct sim_s {
  int32_t status;
  char message[96];
  fl_sbuf_t payload;
  fl_sbuf_t results;
} sim_t;

static void simulate(gw_t *gw, const fl_proposal_t *p, sim_t *s) {
  memset(s, 0, sizeof *s);
  char fn[32] = "", key[256] = "";
  snprintf(fn, sizeof fn, "%.*s", (int)p->args[0].len, (const char *)p->args[0].data);
  if (p->n_args > 1)
    snprintf(key, sizeof key, "%.*s", (int)p->args[1].len, (const char *)p->args[1].data);
  fl_kv_read_t rd = {.key = key};
  fl_kv_write_t wr = {.key = key};
  fl_rwset_t rw = {.ns = p->chaincode};
  s->status = 200;
  if (strcmp(fn, "put") == 0 && p->n_args == 3 && key[0]) {
    wr.value = p->args[2];
    rw.writes = &wr;
    rw.n_writes = 1;
  } else if (strcmp(fn, "get") == 0 && key[0]) {
    rw.reads = &rd;
    rw.n_reads = 1;
    kv_t *e = kv_find(gw, key);
    if (e == NULL) {
      s->status = 404;
      snprintf(s->message, sizeof s->message, "kvstore: %s not found", key);
    } else {
      rd.has_version = true;
      fl_sbuf_append_str(&s->payload, e->value);
    }
  } else if (strcmp(fn, "fail") == 0) {
    s->status = 500;
    snprintf(s->message, sizeof s->message, "kvstore: failure requested");
  } else {
    s->status = 400;
    snprintf(s->message, sizeof s->message, "kvstore: unknown function %s", fn);
  }
  if (fl_rwset_encode(&rw, &s->results) != FL_OK) DIE("rwset");
}

static void sim_free(sim_t *s) {
  fl_sbuf_free(&s->payload);
  fl_sbuf_free(&s->results);
}

/* ---- helpers --------------------------------------------------------------- */

static void reply_pb(fl_rpc_call_t *call, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = fl_malloc(n ? n : 1);
  protobuf_c_message_pack(m, buf);
  (void)fl_rpc_call_reply(call, FL_OK, FL_BUF(buf, n));
  fl_free(buf);
}

static void refuse(gw_t *gw, fl_rpc_call_t *call, fl_status_t st, const char *why) {
  atomic_fetch_add(&gw->stats.refused, 1);
  (void)fl_rpc_call_end(call, st, why);
}

static const fl_signer_t *client_key(gw_t *gw, fl_buf_t creator) {
  if (fl_buf_eq(creator, fl_sbuf_view(&gw->client1.sid))) return gw->client1.key;
  if (fl_buf_eq(creator, fl_sbuf_view(&gw->client2.sid))) return gw->client2.key;
  return NULL;
}

/* Decodes and verifies a SignedProposal message; *out owned on FL_OK. */
static fl_status_t take_proposal(gw_t *gw, const Fl__Peer__SignedProposal *sp, const char *tx_id,
                                 fl_proposal_t **out, const char **why) {
  *out = NULL;
  if (sp == NULL) {
    *why = "no proposal";
    return FL_EMALFORMED;
  }
  size_t n = fl__peer__signed_proposal__get_packed_size(sp);
  uint8_t *buf = fl_malloc(n ? n : 1);
  fl__peer__signed_proposal__pack(sp, buf);
  fl_status_t rc = fl_signed_proposal_decode(buf, n, out, why);
  fl_free(buf);
  if (rc != FL_OK) return rc;
  rc = fl_proposal_verify_creator(*out, gw->msp, FL_ROLE_NONE, NULL);
  if (rc != FL_OK) {
    *why = "proposal signature or creator refused";
  } else if (tx_id == NULL || strcmp(tx_id, (*out)->header.tx_id) != 0) {
    rc = FL_EINVAL;
    *why = "request tx id differs from the proposal's";
  }
  if (rc != FL_OK) {
    fl_proposal_free(*out);
    *out = NULL;
    return rc;
  }
  atomic_fetch_add(&gw->stats.proposals_verified, 1);
  return FL_OK;
}

/* ---- Gateway/Endorse ----------------------------------------------------- */

static void on_held_cancel(fl_rpc_call_t *call, void *arg) {
  gw_t *gw = arg;
  for (size_t i = 0; i < gw->n_held; i++)
    if (gw->held[i] == call) {
      gw->held[i] = gw->held[--gw->n_held];
      break;
    }
  (void)fl_rpc_call_end(call, FL_ECANCELED, "cancelled");
}

/* Endorses p (sim) as peer0.org1 and peer0.org2 and assembles the prepared
 * (unsigned) envelope payload into *payload. */
static fl_status_t endorse(gw_t *gw, const fl_proposal_t *p, const sim_t *s, gw_mode_t mode,
                           fl_sbuf_t *payload, const char **why) {
  fl_resp_payload_t rp = {
      .results = fl_sbuf_view(&s->results),
      .response = {.status = mode == GW_ENDORSED_500 ? 500 : s->status,
                   .message = mode == GW_ENDORSED_500 ? "endorsed failure" : s->message,
                   .payload = fl_sbuf_view(&s->payload)},
      .chaincode_version = "1.0"};
  memcpy(rp.proposal_hash, p->proposal_hash, FL_SHA256_LEN);
  fl_sbuf_t rpb = {0}, sig1 = {0}, sig2 = {0}, env = {0};
  fl_envelope_t *e = NULL;
  fl_status_t rc = fl_resp_payload_encode(&rp, &rpb);
  fl_buf_t e1 = fl_sbuf_view(&gw->peer1.sid), e2 = fl_sbuf_view(&gw->peer2.sid);
  if (rc == FL_OK) rc = fl_endorsement_sign(fl_sbuf_view(&rpb), e1, gw->peer1.key, &sig1);
  if (rc == FL_OK)
    rc = fl_endorsement_sign(fl_sbuf_view(&rpb), e2,
                             mode == GW_BAD_ENDORSEMENT ? gw->peer1.key : gw->peer2.key, &sig2);
  if (rc != FL_OK) {
    *why = "cannot endorse";
    goto done;
  }
  fl_endorsed_t ends[2] = {
      {.payload = fl_sbuf_view(&rpb), .endorsement = {e1, fl_sbuf_view(&sig1)}},
      {.payload = fl_sbuf_view(&rpb), .endorsement = {e2, fl_sbuf_view(&sig2)}},
  };
  const fl_signer_t *ck = client_key(gw, p->header.creator);
  if (ck == NULL) {
    rc = FL_EPERM;
    *why = "unknown test client";
    goto done;
  }
  rc = fl_tx_assemble(p, ends, 2, ck, &env, why);
  if (rc == FL_OK) rc = fl_envelope_decode(env.data, env.len, &e, why);
  if (rc == FL_OK) fl_sbuf_append(payload, e->payload.data, e->payload.len);
done:
  fl_envelope_free(e);
  fl_sbuf_free(&env);
  fl_sbuf_free(&rpb);
  fl_sbuf_free(&sig1);
  fl_sbuf_free(&sig2);
  return rc;
}

static void h_endorse(fl_rpc_call_t *call, void *arg) {
  gw_t *gw = arg;
  gw_mode_t mode = (gw_mode_t)atomic_load(&gw->mode);
  fl_buf_t req = fl_rpc_call_request(call);
  Fl__Peer__EndorseRequest *er = fl__peer__endorse_request__unpack(NULL, req.len, req.data);
  fl_proposal_t *p = NULL, *other = NULL;
  const char *why = NULL;
  sim_t s = {0};
  fl_sbuf_t payload = {0}, otherb = {0};
  if (er == NULL) {
    refuse(gw, call, FL_EMALFORMED, "bad EndorseRequest");
    return;
  }
  fl_status_t rc = take_proposal(gw, er->proposed, er->tx_id, &p, &why);
  if (rc != FL_OK) {
    refuse(gw, call, rc, why);
    goto done;
  }
  if (mode == GW_SILENT) {
    if (gw->n_held == MAX_HELD) DIE("too many held calls");
    gw->held[gw->n_held++] = call;
    fl_rpc_call_on_cancel(call, on_held_cancel, gw);
    goto done;
  }
  simulate(gw, p, &s);
  Fl__Peer__Response result = FL__PEER__RESPONSE__INIT;
  result.status = s.status;
  result.message = s.message;
  result.payload.data = s.payload.data;
  result.payload.len = s.payload.len;
  Fl__Peer__EndorseResponse out = FL__PEER__ENDORSE_RESPONSE__INIT;
  Fl__Common__Envelope prepared = FL__COMMON__ENVELOPE__INIT;
  out.result = &result;
  if (s.status >= 400 && mode != GW_ENDORSED_500) {
    /* a chaincode failure: no transaction, as Fabric's gateway */
    reply_pb(call, &out.base);
    goto done;
  }
  const fl_proposal_t *use = p;
  if (mode == GW_WRONG_TXID || mode == GW_OTHER_PROPOSAL) {
    /* the same client's proposal with other arguments */
    fl_buf_t args[3] = {FL_BUF("put", 3), FL_BUF("stolen", 6), FL_BUF("value", 5)};
    fl_proposal_spec_t spec = {.channel = CHANNEL, .creator = p->header.creator,
                               .chaincode = p->chaincode, .args = args, .n_args = 3};
    if (fl_proposal_build(&spec, client_key(gw, p->header.creator), &otherb, NULL) != FL_OK ||
        fl_signed_proposal_decode(otherb.data, otherb.len, &other, NULL) != FL_OK)
      DIE("other proposal");
    if (mode == GW_OTHER_PROPOSAL) other->header = p->header; /* keep OUR header */
    use = other;
    sim_free(&s);
    simulate(gw, use, &s);
  }
  rc = endorse(gw, use, &s, mode, &payload, &why);
  if (rc != FL_OK) {
    refuse(gw, call, rc, why);
    goto done;
  }
  prepared.payload.data = payload.data;
  prepared.payload.len = payload.len;
  out.prepared = &prepared;
  reply_pb(call, &out.base);
done:
  sim_free(&s);
  fl_sbuf_free(&payload);
  fl_sbuf_free(&otherb);
  fl_proposal_free(other);
  fl_proposal_free(p);
  fl__peer__endorse_request__free_unpacked(er, NULL);
}

/* ---- Gateway/Evaluate ---------------------------------------------------- */

static void h_evaluate(fl_rpc_call_t *call, void *arg) {
  gw_t *gw = arg;
  fl_buf_t req = fl_rpc_call_request(call);
  Fl__Peer__EvaluateRequest *er = fl__peer__evaluate_request__unpack(NULL, req.len, req.data);
  if (er == NULL) {
    refuse(gw, call, FL_EMALFORMED, "bad EvaluateRequest");
    return;
  }
  fl_proposal_t *p = NULL;
  const char *why = NULL;
  fl_status_t rc = take_proposal(gw, er->proposed, er->tx_id, &p, &why);
  if (rc != FL_OK) {
    refuse(gw, call, rc, why);
  } else {
    sim_t s;
    simulate(gw, p, &s);
    Fl__Peer__Response result = FL__PEER__RESPONSE__INIT;
    result.status = s.status;
    result.message = s.message;
    result.payload.data = s.payload.data;
    result.payload.len = s.payload.len;
    Fl__Peer__EvaluateResponse out = FL__PEER__EVALUATE_RESPONSE__INIT;
    out.result = &result;
    reply_pb(call, &out.base);
    sim_free(&s);
  }
  fl_proposal_free(p);
  fl__peer__evaluate_request__free_unpacked(er, NULL);
}

/* ---- Gateway/Submit ------------------------------------------------------- */

static txrec_t *tx_find(gw_t *gw, const char *tx_id) {
  for (size_t i = gw->n_txs; i-- > 0;)
    if (strcmp(gw->txs[i].tx_id, tx_id) == 0) return &gw->txs[i];
  return NULL;
}

static void h_submit(fl_rpc_call_t *call, void *arg) {
  gw_t *gw = arg;
  fl_buf_t req = fl_rpc_call_request(call);
  Fl__Peer__SubmitRequest *sr = fl__peer__submit_request__unpack(NULL, req.len, req.data);
  fl_envelope_t *e = NULL;
  fl_tx_t *tx = NULL;
  fl_rwset_t *rw = NULL;
  uint8_t *envb = NULL;
  size_t envn = 0;
  const char *why = NULL;
  fl_status_t rc;
  if (sr == NULL || sr->prepared == NULL) {
    refuse(gw, call, FL_EMALFORMED, "bad SubmitRequest");
    goto done;
  }
  envn = fl__common__envelope__get_packed_size(sr->prepared);
  envb = fl_malloc(envn ? envn : 1);
  fl__common__envelope__pack(sr->prepared, envb);
  rc = fl_envelope_decode(envb, envn, &e, &why);
  if (rc != FL_OK) {
    refuse(gw, call, rc, why);
    goto done;
  }
  rc = fl_envelope_verify_creator(e, gw->msp, FL_ROLE_NONE, NULL);
  if (rc != FL_OK) {
    refuse(gw, call, rc, "envelope signature refused");
    goto done;
  }
  atomic_fetch_add(&gw->stats.envelopes_verified, 1);
  rc = fl_tx_decode(e, &tx, &why);
  if (rc == FL_OK) rc = fl_proposal_verify_creator(tx->proposal, gw->msp, FL_ROLE_NONE, NULL);
  for (size_t i = 0; rc == FL_OK && i < tx->n_endorsements; i++)
    rc = fl_endorsement_verify(tx->response_payload, &tx->endorsements[i], gw->msp,
                               FL_ROLE_PEER, NULL);
  if (rc != FL_OK) {
    refuse(gw, call, rc, why ? why : "transaction refused: a signature does not verify");
    goto done;
  }
  if (sr->tx_id == NULL || strcmp(sr->tx_id, e->header.tx_id) != 0) {
    refuse(gw, call, FL_EINVAL, "request tx id differs from the envelope's");
    goto done;
  }
  if (tx_find(gw, e->header.tx_id) != NULL) {
    refuse(gw, call, FL_EEXIST, "duplicate transaction");
    goto done;
  }
  if (gw->n_txs == gw->cap_txs) {
    gw->cap_txs = gw->cap_txs ? 2 * gw->cap_txs : 1024;
    gw->txs = fl_reallocarray(gw->txs, gw->cap_txs, sizeof *gw->txs);
  }
  txrec_t *t = &gw->txs[gw->n_txs];
  memset(t, 0, sizeof *t);
  memcpy(t->tx_id, e->header.tx_id, sizeof t->tx_id);
  fl_sbuf_append(&t->creator, e->header.creator.data, e->header.creator.len);
  fl_sbuf_append(&t->env, envb, envn);
  t->block = 4 + gw->n_txs / TXS_PER_BLOCK;
  t->num = gw->n_txs % TXS_PER_BLOCK;
  gw->n_txs++;
  if (fl_rwset_decode(tx->payload->results.data, tx->payload->results.len, &rw, NULL) == FL_OK)
    for (size_t i = 0; i < rw->n_writes; i++) kv_put(gw, rw->writes[i].key, rw->writes[i].value);
  atomic_fetch_add(&gw->stats.submits, 1);
  Fl__Peer__SubmitResponse out = FL__PEER__SUBMIT_RESPONSE__INIT;
  reply_pb(call, &out.base);
done:
  fl_rwset_free(rw);
  fl_tx_free(tx);
  fl_envelope_free(e);
  fl_free(envb);
  if (sr) fl__peer__submit_request__free_unpacked(sr, NULL);
}

/* ---- Gateway/CommitStatus ------------------------------------------------- */

static void h_commit_status(fl_rpc_call_t *call, void *arg) {
  gw_t *gw = arg;
  fl_buf_t req = fl_rpc_call_request(call);
  Fl__Peer__SignedCommitStatusRequest *sr =
      fl__peer__signed_commit_status_request__unpack(NULL, req.len, req.data);
  Fl__Peer__CommitStatusRequest *cr = NULL;
  if (sr == NULL ||
      (cr = fl__peer__commit_status_request__unpack(NULL, sr->request.len, sr->request.data)) ==
          NULL) {
    refuse(gw, call, FL_EMALFORMED, "bad SignedCommitStatusRequest");
    goto done;
  }
  fl_status_t rc = fl_msp_verify_signature(gw->msp, cr->identity.data, cr->identity.len,
                                           sr->request.data, sr->request.len, sr->signature.data,
                                           sr->signature.len, FL_ROLE_NONE, NULL);
  if (rc != FL_OK) {
    refuse(gw, call, rc, "commit status request signature refused");
    goto done;
  }
  atomic_fetch_add(&gw->stats.status_requests_verified, 1);
  txrec_t *t = tx_find(gw, cr->tx_id ? cr->tx_id : "");
  if (t == NULL) {
    refuse(gw, call, FL_NOTFOUND, "no such transaction");
    goto done;
  }
  if (!fl_buf_eq(fl_sbuf_view(&t->creator), FL_BUF(cr->identity.data, cr->identity.len))) {
    refuse(gw, call, FL_EPERM, "not the transaction's creator");
    goto done;
  }
  Fl__Peer__CommitStatusResponse out = FL__PEER__COMMIT_STATUS_RESPONSE__INIT;
  out.result = atomic_load(&gw->mode) == GW_INVALID_COMMIT
                   ? FL__COMMON__TX_VALIDATION_CODE__MVCC_READ_CONFLICT
                   : FL__COMMON__TX_VALIDATION_CODE__VALID;
  out.block_number = t->block;
  reply_pb(call, &out.base);
done:
  if (cr) fl__peer__commit_status_request__free_unpacked(cr, NULL);
  if (sr) fl__peer__signed_commit_status_request__free_unpacked(sr, NULL);
}

/* ---- Peer queries ----------------------------------------------------------- */

static void h_get_blob(fl_rpc_call_t *call, void *arg) {
  gw_t *gw = arg;
  fl_buf_t req = fl_rpc_call_request(call);
  Fl__Peer__GetBlobRequest *r = fl__peer__get_blob_request__unpack(NULL, req.len, req.data);
  if (r == NULL || r->hash.len != FL_SHA256_LEN ||
      memcmp(r->hash.data, gw->blob_hash, FL_SHA256_LEN) != 0) {
    refuse(gw, call, FL_NOTFOUND, "no such blob");
  } else {
    Fl__Peer__GetBlobResponse out = FL__PEER__GET_BLOB_RESPONSE__INIT;
    fl_sbuf_t data = {0};
    fl_sbuf_append(&data, gw->blob.data, gw->blob.len);
    if (atomic_load(&gw->mode) == GW_BAD_BLOB) data.data[0] ^= 1;
    out.data.data = data.data;
    out.data.len = data.len;
    reply_pb(call, &out.base);
    fl_sbuf_free(&data);
  }
  if (r) fl__peer__get_blob_request__free_unpacked(r, NULL);
}

static const fl_sbuf_t *block_at(gw_t *gw, uint64_t n) {
  gw_mode_t mode = (gw_mode_t)atomic_load(&gw->mode);
  if (n >= 4) return NULL;
  if (n == 2 && mode == GW_DELIVER_BADSIG) return &gw->bad_sig2;
  if (n == 2 && mode == GW_DELIVER_BADLINK) return &gw->bad_link2;
  return &gw->blocks[n];
}

static void h_get_block(fl_rpc_call_t *call, void *arg) {
  gw_t *gw = arg;
  fl_buf_t req = fl_rpc_call_request(call);
  Fl__Peer__GetBlockRequest *r = fl__peer__get_block_request__unpack(NULL, req.len, req.data);
  const fl_sbuf_t *b = r ? block_at(gw, r->number) : NULL;
  if (b == NULL) refuse(gw, call, FL_NOTFOUND, "no such block");
  else (void)fl_rpc_call_reply(call, FL_OK, fl_sbuf_view(b));
  if (r) fl__peer__get_block_request__free_unpacked(r, NULL);
}

static void h_get_tx(fl_rpc_call_t *call, void *arg) {
  gw_t *gw = arg;
  fl_buf_t req = fl_rpc_call_request(call);
  Fl__Peer__GetTransactionRequest *r =
      fl__peer__get_transaction_request__unpack(NULL, req.len, req.data);
  txrec_t *t = r && r->tx_id ? tx_find(gw, r->tx_id) : NULL;
  if (t == NULL) {
    refuse(gw, call, FL_NOTFOUND, "no such transaction");
  } else {
    Fl__Peer__ProcessedTransaction out = FL__PEER__PROCESSED_TRANSACTION__INIT;
    out.envelope.data = t->env.data;
    out.envelope.len = t->env.len;
    out.validation_code = FL__COMMON__TX_VALIDATION_CODE__VALID;
    out.block_num = t->block;
    out.tx_num = t->num;
    reply_pb(call, &out.base);
  }
  if (r) fl__peer__get_transaction_request__free_unpacked(r, NULL);
}

static void h_chain_info(fl_rpc_call_t *call, void *arg) {
  gw_t *gw = arg;
  fl_block_t *b = NULL, *p = NULL;
  if (fl_block_decode(gw->blocks[3].data, gw->blocks[3].len, &b, NULL) != FL_OK ||
      fl_block_decode(gw->blocks[2].data, gw->blocks[2].len, &p, NULL) != FL_OK)
    DIE("chain info");
  Fl__Peer__ChainInfo out = FL__PEER__CHAIN_INFO__INIT;
  out.height = 4;
  out.current_block_hash.data = b->header_hash;
  out.current_block_hash.len = FL_SHA256_LEN;
  out.previous_block_hash.data = p->header_hash;
  out.previous_block_hash.len = FL_SHA256_LEN;
  reply_pb(call, &out.base);
  fl_block_free(b);
  fl_block_free(p);
}

static void send_pb(fl_rpc_call_t *call, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = fl_malloc(n ? n : 1);
  protobuf_c_message_pack(m, buf);
  if (fl_rpc_call_send(call, FL_BUF(buf, n)) != FL_OK) DIE("stream send");
  fl_free(buf);
}

static void h_deliver(fl_rpc_call_t *call, void *arg) {
  gw_t *gw = arg;
  fl_buf_t req = fl_rpc_call_request(call);
  Fl__Orderer__SignedSeekInfo *ss = fl__orderer__signed_seek_info__unpack(NULL, req.len, req.data);
  Fl__Orderer__SeekInfo *si = NULL;
  if (ss == NULL ||
      (si = fl__orderer__seek_info__unpack(NULL, ss->seek_info.len, ss->seek_info.data)) ==
          NULL ||
      si->start == NULL) {
    refuse(gw, call, FL_EMALFORMED, "bad SignedSeekInfo");
    goto done;
  }
  fl_status_t rc = fl_msp_verify_signature(gw->msp, ss->identity.data, ss->identity.len,
                                           ss->seek_info.data, ss->seek_info.len,
                                           ss->signature.data, ss->signature.len, FL_ROLE_NONE,
                                           NULL);
  if (rc != FL_OK) {
    refuse(gw, call, rc, "seek signature refused");
    goto done;
  }
  uint64_t stop = si->stop ? si->stop->number : 3;
  for (uint64_t n = si->start->number; n <= stop && n < 4; n++) {
    const fl_sbuf_t *b = block_at(gw, n);
    Fl__Common__Block *blk = fl__common__block__unpack(NULL, b->len, b->data);
    if (blk == NULL) DIE("block unpack");
    Fl__Orderer__DeliverResponse dr = FL__ORDERER__DELIVER_RESPONSE__INIT;
    dr.type_case = FL__ORDERER__DELIVER_RESPONSE__TYPE_BLOCK;
    dr.block = blk;
    send_pb(call, &dr.base);
    fl__common__block__free_unpacked(blk, NULL);
  }
  Fl__Orderer__DeliverResponse fin = FL__ORDERER__DELIVER_RESPONSE__INIT;
  fin.type_case = FL__ORDERER__DELIVER_RESPONSE__TYPE_STATUS;
  fin.status = 0;
  send_pb(call, &fin.base);
  (void)fl_rpc_call_end(call, FL_OK, NULL);
done:
  if (si) fl__orderer__seek_info__free_unpacked(si, NULL);
  if (ss) fl__orderer__signed_seek_info__free_unpacked(ss, NULL);
}

/* ---- thread and lifecycle ---------------------------------------------------- */

static void on_stop(uv_async_t *a) {
  gw_t *gw = a->data;
  /* held calls are cancelled by the close; their cancel callbacks end them */
  fl_rpc_server_close(gw->srv, NULL, NULL);
  uv_close((uv_handle_t *)&gw->stop, NULL);
}

static void *gw_thread(void *arg) {
  gw_t *gw = arg;
  uv_run(&gw->loop, UV_RUN_DEFAULT);
  return NULL;
}

gw_t *gw_start(const char *pki) {
  gw_t *gw = fl_calloc(1, sizeof *gw);
  gw->pki = fl_strdup(pki);
  gw_ident_load(&gw->client1, pki, "peerOrganizations/org1.example.com/users/client1@org1.example.com",
                "Org1MSP");
  gw_ident_load(&gw->client2, pki, "peerOrganizations/org2.example.com/users/client1@org2.example.com",
                "Org2MSP");
  gw_ident_load(&gw->peer1, pki, "peerOrganizations/org1.example.com/peers/peer0.org1.example.com",
                "Org1MSP");
  gw_ident_load(&gw->peer2, pki, "peerOrganizations/org2.example.com/peers/peer0.org2.example.com",
                "Org2MSP");
  gw_ident_load(&gw->ord_admin, pki, "ordererOrganizations/example.com/users/Admin@example.com",
                "OrdererMSP");
  for (int i = 0; i < N_ORD; i++) {
    char rel[128];
    snprintf(rel, sizeof rel, "ordererOrganizations/example.com/orderers/orderer%d.example.com", i);
    gw_ident_load(&gw->orderer[i], pki, rel, "OrdererMSP");
  }
  make_genesis(gw);
  for (int i = 0; i < 100000; i++) fl_sbuf_append_be32(&gw->blob, (uint32_t)i * 2654435761u);
  fl_sha256(gw->blob.data, gw->blob.len, gw->blob_hash);

  if (uv_loop_init(&gw->loop) != 0) DIE("loop");
  char *cert = fl_sprintf("%s/peerOrganizations/org1.example.com/peers/peer0.org1.example.com/tls/server.crt", pki);
  char *key = fl_sprintf("%s/peerOrganizations/org1.example.com/peers/peer0.org1.example.com/tls/server.key", pki);
  char *ca1 = fl_sprintf("%s/peerOrganizations/org1.example.com/tlsca/tlsca.org1.example.com-cert.pem", pki);
  char *ca2 = fl_sprintf("%s/peerOrganizations/org2.example.com/tlsca/tlsca.org2.example.com-cert.pem", pki);
  const char *cas[2] = {ca1, ca2};
  fl_tls_config_t tls = {.cert_file = cert, .key_file = key, .ca_files = cas, .n_ca_files = 2};
  fl_rpc_server_opts_t so = {.host = "127.0.0.1", .port = 0, .tls = &tls, .max_calls = 8192};
  char *err = NULL;
  if (fl_rpc_server_new(&gw->loop, &so, &gw->srv, &err) != FL_OK) DIE("server: %s", err ? err : "?");
  fl_free(cert);
  fl_free(key);
  fl_free(ca1);
  fl_free(ca2);
  struct {
    const char *m;
    fl_rpc_kind_t k;
    fl_rpc_handler_fn h;
  } hs[] = {
      {"Gateway/Endorse", FL_RPC_UNARY, h_endorse},
      {"Gateway/Evaluate", FL_RPC_UNARY, h_evaluate},
      {"Gateway/Submit", FL_RPC_UNARY, h_submit},
      {"Gateway/CommitStatus", FL_RPC_UNARY, h_commit_status},
      {"Peer/GetBlob", FL_RPC_UNARY, h_get_blob},
      {"Peer/GetBlock", FL_RPC_UNARY, h_get_block},
      {"Peer/GetTransaction", FL_RPC_UNARY, h_get_tx},
      {"Peer/ChainInfo", FL_RPC_UNARY, h_chain_info},
      {"Peer/Deliver", FL_RPC_SERVER_STREAM, h_deliver},
  };
  for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
    if (fl_rpc_server_handle(gw->srv, hs[i].m, hs[i].k, hs[i].h, gw) != FL_OK) DIE("handle");
  if (fl_rpc_server_start(gw->srv) != FL_OK) DIE("start");
  gw->port = fl_rpc_server_port(gw->srv);
  gw->stop.data = gw;
  if (uv_async_init(&gw->loop, &gw->stop, on_stop) != 0) DIE("async");
  if (pthread_create(&gw->thread, NULL, gw_thread, gw) != 0) DIE("thread");
  return gw;
}

void gw_stop(gw_t *gw) {
  if (gw == NULL) return;
  uv_async_send(&gw->stop);
  pthread_join(gw->thread, NULL);
  (void)uv_loop_close(&gw->loop);
  for (size_t i = 0; i < gw->n_txs; i++) {
    fl_sbuf_free(&gw->txs[i].creator);
    fl_sbuf_free(&gw->txs[i].env);
  }
  fl_free(gw->txs);
  for (size_t i = 0; i < gw->n_kv; i++) {
    fl_free(gw->kv[i].key);
    fl_free(gw->kv[i].value);
  }
  fl_free(gw->kv);
  for (int i = 0; i < 4; i++) fl_sbuf_free(&gw->blocks[i]);
  fl_sbuf_free(&gw->bad_sig2);
  fl_sbuf_free(&gw->bad_link2);
  fl_sbuf_free(&gw->genesis);
  fl_sbuf_free(&gw->blob);
  fl_msp_free(gw->msp);
  gw_ident_free(&gw->client1);
  gw_ident_free(&gw->client2);
  gw_ident_free(&gw->peer1);
  gw_ident_free(&gw->peer2);
  gw_ident_free(&gw->ord_admin);
  for (int i = 0; i < N_ORD; i++) gw_ident_free(&gw->orderer[i]);
  fl_free(gw->pki);
  fl_free(gw);
}

uint16_t gw_port(const gw_t *gw) { return gw->port; }
void gw_set_mode(gw_t *gw, gw_mode_t mode) { atomic_store(&gw->mode, (int)mode); }
gw_stats_t *gw_stats(gw_t *gw) { return &gw->stats; }
fl_buf_t gw_genesis(const gw_t *gw) { return fl_sbuf_view(&gw->genesis); }
fl_buf_t gw_blob(const gw_t *gw, uint8_t hash[32]) {
  memcpy(hash, gw->blob_hash, FL_SHA256_LEN);
  return fl_sbuf_view(&gw->blob);
}
fl_msp_t *gw_msp(gw_t *gw) { return gw->msp; }
uint64_t gw_height(const gw_t *gw) {
  (void)gw;
  return 4;
}
