/* SPDX-License-Identifier: Apache-2.0
 *
 * gen_corpus.c: writes the binary seed corpora of the fuzz targets whose
 * inputs are signed protobuf messages, tensor blobs and PBFT traces, which
 * are impractical to write by hand:
 *   fuzz_proposal, fuzz_proposal_response, fuzz_tx, fuzz_rwset,
 *   fuzz_netconfig, fuzz_genesis, fuzz_ab, fuzz_blob, fuzz_pbft.
 * (The text corpora are written by gen-corpus-text.py.)
 *
 * Usage: fuzz_gen_corpus CORPUS_DIR   (tests/fuzz/corpus). Existing files
 * of the same names are replaced; regress-* seeds are never touched.
 *
 * It makes a throw-away PKI (a CA, a client, a peer and an orderer admin,
 * certificates valid until 2099) with the project's own crypto, builds real
 * messages with the project's builders, and derives truncated and
 * corrupted variants. ECDSA signatures and nonces are random, so a rerun
 * gives different bytes of the same shapes. The PBFT traces come from a
 * simulation of four replicas with the ops of pbft_fuzz.h: the messages
 * (and ticks, submits) one replica received, in the target's input format,
 * so a trace replays the same run in fuzz_pbft.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/log.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"
#include "common/crypto/x509.h"
#include "common/protoutil/block.h"
#include "common/protoutil/envelope.h"
#include "common/protoutil/genesis.h"
#include "common/protoutil/proposal.h"
#include "common/protoutil/rwset.h"
#include "ml/tensor.h"
#include "orderer/node/ab.h"
#include "orderer/pbft/pbft.h"
#include "tests/fuzz/pbft_fuzz.h"

static const char *g_dir;

static void die(const char *what, int rc) {
  fprintf(stderr, "gen_corpus: %s failed (%d)\n", what, rc);
  exit(1);
}

#define MUST(x)                     \
  do {                              \
    int rc_ = (int)(x);             \
    if (rc_ != 0) die(#x, rc_);     \
  } while (0)

static void put(const char *target, const char *name, const void *data, size_t len) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", g_dir, target);
  if (mkdir(path, 0755) != 0 && errno != EEXIST) die("mkdir", errno);
  snprintf(path, sizeof(path), "%s/%s/%s", g_dir, target, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL) die(path, errno);
  if (len && fwrite(data, 1, len, f) != len) die("fwrite", errno);
  fclose(f);
}

static void put_buf(const char *target, const char *name, fl_buf_t b) {
  put(target, name, b.data, b.len);
}

/* Writes b, b cut in half, and b with a flipped byte in the middle. */
static void put_variants(const char *target, const char *name, fl_buf_t b) {
  char n2[256];
  put_buf(target, name, b);
  snprintf(n2, sizeof(n2), "%s_truncated", name);
  put(target, n2, b.data, b.len / 2);
  uint8_t *c = fl_memdup(b.data, b.len);
  if (b.len) c[b.len / 2] ^= 0x5a;
  snprintf(n2, sizeof(n2), "%s_flipped", name);
  put(target, n2, c, b.len);
  fl_free(c);
}

static void put_garbage(const char *target) {
  static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80, 0x80, 0x80,
                                    0x80, 0x10, 0x0a, 0x05, 'h',  'e',  0x00, 0x7f};
  put(target, "garbage", garbage, sizeof(garbage));
  put(target, "empty", "", 0);
}

/* ---- PKI -------------------------------------------------------------- */

typedef struct ident_s {
  fl_signer_t *key;
  fl_cert_t *cert;
  fl_sbuf_t pem;
  fl_sbuf_t sid; /* serialized identity */
} ident_t;

static int64_t g_now;

static void issue(ident_t *id, const char *cn, const char *ou, bool ca, const ident_t *issuer,
                  const char *mspid) {
  memset(id, 0, sizeof(*id));
  MUST(fl_signer_generate(&id->key));
  const char *ous[1] = {ou};
  fl_cert_template_t t = {.org = "org1.example.com", .ous = ous, .n_ous = ou ? 1 : 0,
                          .cn = cn, .is_ca = ca,
                          .key_usage = ca ? FL_KU_KEY_CERT_SIGN | FL_KU_CRL_SIGN
                                          : FL_KU_DIGITAL_SIGNATURE,
                          .not_before = g_now - 86400, .not_after = 4070908800 /* 2099 */};
  MUST(fl_cert_issue(&t, id->key, issuer ? issuer->cert : NULL,
                     issuer ? issuer->key : id->key, &id->cert));
  fl_cert_to_pem(id->cert, &id->pem);
  MUST(fl_msp_serialize_identity(mspid, id->pem.data, id->pem.len, &id->sid));
}

static void ident_free(ident_t *id) {
  fl_signer_free(id->key);
  fl_cert_free(id->cert);
  fl_sbuf_free(&id->pem);
  fl_sbuf_free(&id->sid);
}

/* ---- endorsement flow --------------------------------------------------- */

static void gen_rwset(fl_sbuf_t *out, bool full) {
  static const fl_kv_read_t reads[] = {
      {.key = "task/t1", .has_version = true, .version = {.block_num = 7, .tx_num = 2}},
      {.key = "round/t1/3", .has_version = false},
  };
  static const fl_kv_read_t rr_reads[] = {
      {.key = "update/t1/3/a", .has_version = true, .version = {.block_num = 9, .tx_num = 0}},
  };
  const fl_kv_write_t writes[] = {
      {.key = "update/t1/3/Org1MSP:client1", .value = FL_BUF_STR("{\"ok\":true}")},
      {.key = "old/key", .is_delete = true},
  };
  const fl_range_read_t rr[] = {{.start_key = "update/t1/3/", .end_key = "update/t1/3/~",
                                 .reads = rr_reads, .n_reads = 1, .exhausted = true}};
  const fl_buf_t blobs[] = {FL_BUF_STR("FLTN-blob-bytes")};
  fl_rwset_t rw = {.ns = "mlupdate", .reads = reads, .n_reads = 2, .writes = writes,
                   .n_writes = full ? 2 : 1};
  if (full) {
    rw.range_reads = rr;
    rw.n_range_reads = 1;
    rw.blobs = blobs;
    rw.n_blobs = 1;
  }
  MUST(fl_rwset_encode(&rw, out));
}

static void gen_endorsement(const ident_t *client, const ident_t *peer) {
  /* Proposals. */
  fl_buf_t args[4] = {FL_BUF_STR("SubmitUpdate"), FL_BUF_STR("t1"), FL_BUF_STR("3"),
                      FL_BUF_STR("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")};
  fl_buf_t blobs[1] = {FL_BUF_STR("FLTN-blob-bytes")};
  fl_proposal_spec_t spec = {.channel = "fedchannel", .creator = fl_sbuf_view(&client->sid),
                             .chaincode = "mlupdate", .args = args, .n_args = 4,
                             .blobs = blobs, .n_blobs = 1, .transient = FL_BUF_STR("secret")};
  fl_sbuf_t sp = {0}, sp_min = {0};
  MUST(fl_proposal_build(&spec, client->key, &sp, NULL));
  fl_proposal_spec_t min = {.channel = "c", .creator = fl_sbuf_view(&client->sid),
                            .chaincode = "kv", .args = args, .n_args = 1};
  MUST(fl_proposal_build(&min, client->key, &sp_min, NULL));
  put_variants("fuzz_proposal", "signed_proposal", fl_sbuf_view(&sp));
  put_buf("fuzz_proposal", "signed_proposal_minimal", fl_sbuf_view(&sp_min));
  fl_proposal_t *prop = NULL;
  MUST(fl_signed_proposal_decode(sp.data, sp.len, &prop, NULL));
  put_variants("fuzz_proposal", "proposal_bytes", prop->proposal_bytes);
  put_garbage("fuzz_proposal");

  /* Read-write sets. */
  fl_sbuf_t rw = {0}, rw_small = {0};
  gen_rwset(&rw, true);
  gen_rwset(&rw_small, false);
  put_variants("fuzz_rwset", "rwset_full", fl_sbuf_view(&rw));
  put_buf("fuzz_rwset", "rwset_small", fl_sbuf_view(&rw_small));
  put_garbage("fuzz_rwset");

  /* Response payload, endorsements, proposal responses. */
  fl_resp_payload_t rp = {.results = fl_sbuf_view(&rw), .has_event = true,
                          .event = {.chaincode = "mlupdate", .tx_id = prop->header.tx_id,
                                    .name = "UpdateAccepted", .payload = FL_BUF_STR("{}")},
                          .response = {.status = 200, .message = "", .payload = FL_BUF_STR("ok")},
                          .chaincode_version = "1.0"};
  memcpy(rp.proposal_hash, prop->proposal_hash, FL_SHA256_LEN);
  fl_sbuf_t rpb = {0}, sig1 = {0}, sig2 = {0}, prb = {0}, prb_refused = {0};
  MUST(fl_resp_payload_encode(&rp, &rpb));
  MUST(fl_endorsement_sign(fl_sbuf_view(&rpb), fl_sbuf_view(&peer->sid), peer->key, &sig1));
  MUST(fl_endorsement_sign(fl_sbuf_view(&rpb), fl_sbuf_view(&client->sid), client->key, &sig2));
  fl_proposal_response_t pr = {.response = {.status = 200, .message = "OK"},
                               .payload = fl_sbuf_view(&rpb), .has_endorsement = true,
                               .endorsement = {.endorser = fl_sbuf_view(&peer->sid),
                                               .signature = fl_sbuf_view(&sig1)}};
  MUST(fl_proposal_response_encode(&pr, &prb));
  fl_proposal_response_t refused = {
      .response = {.status = 500, .message = "chaincode mlupdate: round 3 is closed"}};
  MUST(fl_proposal_response_encode(&refused, &prb_refused));
  put_variants("fuzz_proposal_response", "proposal_response", fl_sbuf_view(&prb));
  put_buf("fuzz_proposal_response", "proposal_response_refused", fl_sbuf_view(&prb_refused));
  put_variants("fuzz_proposal_response", "response_payload", fl_sbuf_view(&rpb));
  put_garbage("fuzz_proposal_response");

  /* Transactions: the Transaction bytes inside the envelope. */
  fl_endorsed_t ends[2] = {
      {.payload = fl_sbuf_view(&rpb),
       .endorsement = {.endorser = fl_sbuf_view(&peer->sid), .signature = fl_sbuf_view(&sig1)}},
      {.payload = fl_sbuf_view(&rpb),
       .endorsement = {.endorser = fl_sbuf_view(&client->sid), .signature = fl_sbuf_view(&sig2)}},
  };
  for (size_t n = 1; n <= 2; n++) {
    fl_sbuf_t envb = {0};
    MUST(fl_tx_assemble(prop, ends, n, client->key, &envb, NULL));
    fl_envelope_t *env = NULL;
    MUST(fl_envelope_decode(envb.data, envb.len, &env, NULL));
    put_variants("fuzz_tx", n == 1 ? "tx_one_endorsement" : "tx_two_endorsements", env->data);
    fl_envelope_free(env);
    fl_sbuf_free(&envb);
  }
  put_garbage("fuzz_tx");

  fl_sbuf_free(&prb_refused);
  fl_sbuf_free(&prb);
  fl_sbuf_free(&sig2);
  fl_sbuf_free(&sig1);
  fl_sbuf_free(&rpb);
  fl_sbuf_free(&rw_small);
  fl_sbuf_free(&rw);
  fl_proposal_free(prop);
  fl_sbuf_free(&sp_min);
  fl_sbuf_free(&sp);
}

/* ---- network configuration, genesis, orderer messages -------------------- */

static void gen_config(const ident_t *ca, const ident_t *admin, const ident_t *client) {
  fl_buf_t roots[1] = {fl_sbuf_view(&ca->pem)};
  fl_net_org_t orgs[2] = {
      {.mspid = "OrdererMSP", .name = "example.com", .root_certs = roots, .n_root_certs = 1,
       .tls_root_certs = roots, .n_tls_root_certs = 1, .is_orderer_org = true},
      {.mspid = "Org1MSP", .name = "org1.example.com", .root_certs = roots, .n_root_certs = 1},
  };
  fl_net_orderer_t ords[4];
  const char *hosts[4] = {"orderer0", "orderer1", "orderer2", "orderer3"};
  for (uint32_t i = 0; i < 4; i++)
    ords[i] = (fl_net_orderer_t){.id = i, .mspid = "OrdererMSP", .host = hosts[i],
                                 .port = 7050 + i, .identity_cert = fl_sbuf_view(&admin->pem)};
  fl_net_peer_t peers[2] = {
      {.mspid = "Org1MSP", .name = "peer0.org1", .host = "127.0.0.1", .port = 7051,
       .events_port = 7053},
      {.mspid = "Org1MSP", .name = "peer1.org1", .host = "127.0.0.1", .port = 8051},
  };
  fl_net_chaincode_t ccs[1] = {{.name = "mlupdate", .version = "1.0", .policy = "MAJORITY",
                                .library = "mlupdate.so"}};
  fl_net_revoked_t rev[1] = {{.mspid = "Org1MSP", .reason = "key compromise",
                              .revoked_at_ms = 1700000000000ull}};
  memcpy(rev[0].cert_sha256, fl_cert_sha256(client->cert), FL_SHA256_LEN);
  fl_netconfig_t cfg = {.channel = "fedchannel", .orgs = orgs, .n_orgs = 2,
                        .orderers = ords, .n_orderers = 4, .peers = peers, .n_peers = 2,
                        .pbft = {.n = 4, .f = 1, .batch_max_count = 100,
                                 .batch_max_bytes = 1 << 20, .batch_timeout_ms = 50,
                                 .checkpoint_interval = 16, .watermark_window = 64,
                                 .view_change_timeout_ms = 2000},
                        .endorsement_policy = "MAJORITY", .chaincodes = ccs, .n_chaincodes = 1,
                        .revoked = rev, .n_revoked = 1,
                        .max_message_bytes = FL_NETCONFIG_DEFAULT_MESSAGE_BYTES};
  fl_sbuf_t enc = {0};
  MUST(fl_netconfig_encode(&cfg, &enc, NULL));
  put_variants("fuzz_netconfig", "netconfig_full", fl_sbuf_view(&enc));
  fl_netconfig_t one = cfg;
  one.n_orgs = 1;
  one.orderers = ords;
  one.n_orderers = 1;
  one.pbft.n = 1;
  one.pbft.f = 0;
  one.n_peers = 0;
  one.n_chaincodes = 0;
  one.n_revoked = 0;
  fl_sbuf_t enc1 = {0};
  MUST(fl_netconfig_encode(&one, &enc1, NULL));
  put_buf("fuzz_netconfig", "netconfig_single_orderer", fl_sbuf_view(&enc1));
  put_garbage("fuzz_netconfig");

  /* Genesis blocks: the full and the one-orderer configuration. */
  fl_block_t *g = NULL;
  fl_sbuf_t gb = {0};
  const char *why = NULL;
  if (fl_genesis_build(&cfg, fl_sbuf_view(&admin->sid), admin->key, &g, &why) != FL_OK) {
    fprintf(stderr, "genesis: %s\n", why);
    exit(1);
  }
  MUST(fl_block_encode(g, &gb));
  put_variants("fuzz_genesis", "genesis_full", fl_sbuf_view(&gb));
  put_variants("fuzz_ab", "block_genesis", fl_sbuf_view(&gb));
  fl_sbuf_t dl = {0};
  fl_ab_deliver_block_encode(fl_sbuf_view(&gb), &dl);
  put_buf("fuzz_ab", "deliver_block", fl_sbuf_view(&dl));
  fl_block_free(g);
  g = NULL;
  gb.len = 0;
  MUST(fl_genesis_build(&one, fl_sbuf_view(&admin->sid), admin->key, &g, NULL));
  MUST(fl_block_encode(g, &gb));
  put_buf("fuzz_genesis", "genesis_single_orderer", fl_sbuf_view(&gb));
  /* Signed by a client, not an admin: refused. */
  fl_block_t *bad = NULL;
  fl_sbuf_t envb = {0};
  MUST(fl_envelope_build(FL_HDR_CONFIG, "fedchannel", fl_sbuf_view(&client->sid), client->key,
                         fl_sbuf_view(&enc), &envb, NULL));
  fl_buf_t one_env = fl_sbuf_view(&envb);
  MUST(fl_block_build(0, NULL, &one_env, 1, &bad));
  gb.len = 0;
  MUST(fl_block_encode(bad, &gb));
  put_buf("fuzz_genesis", "genesis_client_creator", fl_sbuf_view(&gb));
  put_garbage("fuzz_genesis");

  /* A block 1 of two envelopes, for the light block parser. */
  uint8_t prev[32] = {1, 2, 3};
  fl_buf_t envs[2] = {one_env, one_env};
  fl_block_t *b1 = NULL;
  MUST(fl_block_build(1, prev, envs, 2, &b1));
  gb.len = 0;
  MUST(fl_block_encode(b1, &gb));
  put_buf("fuzz_ab", "block_two_envelopes", fl_sbuf_view(&gb));

  /* Seek infos, deliver and broadcast responses. */
  const fl_ab_seek_t seeks[4] = {
      {.start_kind = FL_AB_NEWEST},
      {.start_kind = FL_AB_OLDEST, .has_stop = true, .stop_kind = FL_AB_SPECIFIED, .stop = 10},
      {.start_kind = FL_AB_SPECIFIED, .start = 5, .has_stop = true,
       .stop_kind = FL_AB_SPECIFIED, .stop = 5, .fail_if_not_ready = true},
      {.start_kind = FL_AB_SPECIFIED, .start = UINT64_MAX, .has_stop = true,
       .stop_kind = FL_AB_NEWEST},
  };
  for (int i = 0; i < 4; i++) {
    fl_sbuf_t s = {0};
    char name[32];
    MUST(fl_ab_seek_encode(&seeks[i], fl_sbuf_view(&client->sid), client->key, &s));
    snprintf(name, sizeof(name), "seek_%d", i);
    if (i == 1)
      put_variants("fuzz_ab", name, fl_sbuf_view(&s));
    else
      put_buf("fuzz_ab", name, fl_sbuf_view(&s));
    fl_sbuf_free(&s);
  }
  dl.len = 0;
  fl_ab_deliver_status_encode(FL_NOTFOUND, &dl);
  put_buf("fuzz_ab", "deliver_status", fl_sbuf_view(&dl));
  fl_sbuf_t br = {0};
  fl_ab_broadcast_response_encode(FL_OK, NULL, &br);
  put_buf("fuzz_ab", "broadcast_ok", fl_sbuf_view(&br));
  fl_ab_broadcast_response_encode(FL_EBADSIG, "envelope: creator signature does not verify",
                                  &br);
  put_buf("fuzz_ab", "broadcast_refused", fl_sbuf_view(&br));
  put_garbage("fuzz_ab");

  fl_sbuf_free(&br);
  fl_block_free(b1);
  fl_block_free(bad);
  fl_sbuf_free(&envb);
  fl_sbuf_free(&dl);
  fl_sbuf_free(&gb);
  fl_block_free(g);
  fl_sbuf_free(&enc1);
  fl_sbuf_free(&enc);
}

/* ---- tensor blobs -------------------------------------------------------- */

static void gen_blobs(void) {
  fl_ml_tensors_t t = {0};
  const uint32_t d1[1] = {3}, d2[2] = {2, 3}, d4[4] = {1, 2, 1, 2};
  MUST(fl_ml_tensors_add(&t, "dense/bias", 1, d1));
  for (size_t i = 0; i < t.n_values; i++) t.values[i] = 0.5f * (float)i - 1.0f;
  fl_sbuf_t b = {0};
  MUST(fl_ml_blob_encode(&t, &b));
  put_buf("fuzz_blob", "one_tensor", fl_sbuf_view(&b));
  MUST(fl_ml_tensors_add(&t, "dense:kernel", 2, d2));
  MUST(fl_ml_tensors_add(&t, "conv.w-1", 4, d4));
  for (size_t i = 0; i < t.n_values; i++) t.values[i] = (float)i * 0.25f - 2.0f;
  b.len = 0;
  MUST(fl_ml_blob_encode(&t, &b));
  put_variants("fuzz_blob", "three_tensors", fl_sbuf_view(&b));
  fl_sbuf_t g = {0};
  fl_sbuf_append(&g, b.data, b.len);
  fl_sbuf_append(&g, "x", 1);
  put_buf("fuzz_blob", "trailing_byte", fl_sbuf_view(&g));
  /* The last value made NaN (0x7fc00000 little-endian). */
  g.len = b.len;
  memcpy(g.data + g.len - 4, "\x00\x00\xc0\x7f", 4);
  put_buf("fuzz_blob", "nan_value", fl_sbuf_view(&g));
  /* Version 2, flags set, zero tensors. */
  memcpy(g.data, b.data, b.len);
  g.data[4] = 2;
  put(("fuzz_blob"), "bad_version", g.data, 12);
  memcpy(g.data, b.data, 12);
  g.data[6] = 1;
  put("fuzz_blob", "bad_flags", g.data, b.len);
  memcpy(g.data, b.data, 12);
  memset(g.data + 8, 0, 4);
  put("fuzz_blob", "zero_tensors", g.data, 12);
  put_garbage("fuzz_blob");
  fl_sbuf_free(&g);
  fl_sbuf_free(&b);
  fl_ml_tensors_free(&t);
}

/* ---- PBFT traces ----------------------------------------------------------- */

#define PF_MAX_TYPES 32

typedef struct sim_rep_s {
  uint32_t id; /* first member: pf_sign reads it through ctx */
  fl_pbft_t *p;
  fl_pbft_ops_t ops;
  pf_store_t store;
  fl_sbuf_t trace;  /* what this replica received, in fuzz_pbft's format */
  uint64_t traced;  /* time of the last record in trace */
} sim_rep_t;

typedef struct msg_s {
  uint32_t from, to;
  fl_sbuf_t bytes;
} msg_t;

typedef struct sim_s {
  sim_rep_t r[PF_N];
  msg_t *q;
  size_t nq, head, capq;
  uint64_t now;
  bool cut[PF_N]; /* replica cut off: nothing in or out */
} sim_t;

static fl_status_t sim_load(void *ctx, fl_pbft_record_t kind, uint64_t seq, fl_sbuf_t *out) {
  return pf_store_load(&((sim_rep_t *)ctx)->store, kind, seq, out);
}

/* Brings the trace's clock to now with a tick record, if it lags. */
static void trace_time(sim_rep_t *r, uint64_t now) {
  if (now == r->traced) return;
  uint64_t units = (now - r->traced) / PF_TICK_MS;
  uint8_t u[2] = {(uint8_t)units, (uint8_t)(units >> 8)};
  pf_record(&r->trace, PF_OP_TICK, u, 2);
  r->traced = now;
}

static void collect(sim_t *s, sim_rep_t *r) {
  const fl_pbft_action_t *acts = NULL;
  size_t n = fl_pbft_actions(r->p, &acts);
  for (size_t i = 0; i < n; i++) {
    const fl_pbft_action_t *a = &acts[i];
    if (a->type == FL_PBFT_ACT_PERSIST) pf_store_put(&r->store, a->kind, a->seq, a->bytes);
    if (a->type == FL_PBFT_ACT_TRUNCATE) pf_store_truncate(&r->store, a->seq);
    if (a->type != FL_PBFT_ACT_SEND || s->cut[r->id]) continue;
    for (uint32_t to = 0; to < PF_N; to++) {
      if (to == r->id || s->cut[to] || (a->to != FL_PBFT_TO_ALL && a->to != to)) continue;
      if (s->nq == s->capq) {
        s->capq = s->capq ? 2 * s->capq : 256;
        s->q = fl_reallocarray(s->q, s->capq, sizeof(msg_t));
      }
      msg_t *m = &s->q[s->nq++];
      *m = (msg_t){.from = r->id, .to = to};
      fl_sbuf_append(&m->bytes, a->bytes.data, a->bytes.len);
    }
  }
  fl_pbft_actions_clear(r->p);
}

static void sim_init(sim_t *s) {
  memset(s, 0, sizeof(*s));
  s->now = PF_T0;
  for (uint32_t i = 0; i < PF_N; i++) {
    sim_rep_t *r = &s->r[i];
    r->id = i;
    r->ops = (fl_pbft_ops_t){.ctx = r, .sign = pf_sign, .verify = pf_verify,
                             .sign_digest = pf_sign_digest, .verify_digest = pf_verify_digest,
                             .sha256 = pf_sha256, .check_request = pf_check_request,
                             .load = sim_load};
    fl_pbft_config_t cfg = pf_config(i);
    MUST(fl_pbft_new(&cfg, &r->ops, &r->p));
    MUST(fl_pbft_start(r->p, s->now));
    uint8_t self = (uint8_t)i;
    fl_sbuf_append(&r->trace, &self, 1);
    r->traced = s->now;
    collect(s, r);
  }
}

static void sim_free(sim_t *s) {
  for (uint32_t i = 0; i < PF_N; i++) {
    fl_pbft_free(s->r[i].p);
    pf_store_free(&s->r[i].store);
    fl_sbuf_free(&s->r[i].trace);
  }
  for (size_t i = s->head; i < s->nq; i++) fl_sbuf_free(&s->q[i].bytes);
  fl_free(s->q);
}

static void sim_submit(sim_t *s, uint32_t to, int k) {
  char env[64], tx[32];
  snprintf(tx, sizeof(tx), "tx%04d", k);
  int n = snprintf(env, sizeof(env), "env:%s:payload-%d", tx, k);
  sim_rep_t *r = &s->r[to];
  trace_time(r, s->now);
  pf_record(&r->trace, PF_OP_SUBMIT, env, (size_t)n);
  fl_pbft_submit(r->p, FL_BUF(env, (size_t)n), FL_BUF_STR(tx), s->now);
  collect(s, r);
}

/* Delivers queued messages, then advances time in ticks, for ms. */
static void sim_run(sim_t *s, uint64_t ms) {
  uint64_t end = s->now + ms;
  for (;;) {
    while (s->head < s->nq) {
      msg_t m = s->q[s->head++];
      sim_rep_t *r = &s->r[m.to];
      if (!s->cut[m.to] && !s->cut[m.from]) {
        trace_time(r, s->now);
        pf_record(&r->trace, PF_OP_STEP, m.bytes.data, m.bytes.len);
        fl_pbft_step(r->p, fl_sbuf_view(&m.bytes), s->now);
        collect(s, r);
      }
      fl_sbuf_free(&m.bytes);
    }
    if (s->head == s->nq) s->head = s->nq = 0;
    if (s->now >= end) return;
    s->now += PF_TICK_MS;
    for (uint32_t i = 0; i < PF_N; i++) {
      sim_rep_t *r = &s->r[i];
      if (s->cut[i] || fl_pbft_next_deadline(r->p) > s->now) continue;
      trace_time(r, s->now);
      fl_pbft_tick(r->p, s->now);
      collect(s, r);
    }
  }
}

static void put_trace(const char *name, const sim_rep_t *r) {
  put("fuzz_pbft", name, r->trace.data, r->trace.len);
  fprintf(stderr, "fuzz_pbft/%s: %zu bytes\n", name, r->trace.len);
}

/* One seed per message type: the first message of each type in trace. */
static void put_singles(const sim_rep_t *r, bool *seen) {
  static const char *const names[] = {"", "pre_prepare", "prepare", "commit", "checkpoint",
                                      "view_change", "new_view", "state_request",
                                      "state_response", "forward", "block_sign", "status",
                                      "batch_fetch", "batch_data"};
  size_t off = 1;
  while (off + 3 <= r->trace.len) {
    uint8_t op = r->trace.data[off];
    size_t len = r->trace.data[off + 1] | (size_t)r->trace.data[off + 2] << 8;
    fl_buf_t b = FL_BUF(r->trace.data + off + 3, len);
    off += 3 + len;
    fl_pbft_msg_info_t info;
    if (op != PF_OP_STEP || fl_pbft_msg_peek(b, &info) != FL_OK || info.type >= PF_MAX_TYPES ||
        seen[info.type])
      continue;
    seen[info.type] = true;
    fl_sbuf_t one = {0};
    uint8_t self = r->trace.data[0];
    fl_sbuf_append(&one, &self, 1);
    pf_record(&one, PF_OP_STEP, b.data, b.len);
    char name[64];
    if (info.type < sizeof(names) / sizeof(names[0]))
      snprintf(name, sizeof(name), "msg_%s", names[info.type]);
    else
      snprintf(name, sizeof(name), "msg_type%d", (int)info.type);
    put("fuzz_pbft", name, one.data, one.len);
    if (info.type == FL_PBFT_MSG_PREPARE) {
      /* The same prepare under the wildcard signature. */
      fl_pbft_ops_t ops = r->ops;
      ops.sign = pf_star_sign;
      fl_sbuf_t forged = {0};
      MUST(fl_pbft_resign(&ops, info.replica, b, &forged));
      one.len = 1;
      pf_record(&one, PF_OP_STEP, forged.data, forged.len);
      put("fuzz_pbft", "msg_prepare_wildcard_sig", one.data, one.len);
      fl_sbuf_free(&forged);
    }
    fl_sbuf_free(&one);
  }
}

static void gen_pbft(void) {
  bool seen[PF_MAX_TYPES] = {false};
  /* 1. Normal operation: 10 requests at the primary, blocks, checkpoints;
   *    a restart record in the middle of replica 1's trace. */
  sim_t s;
  sim_init(&s);
  for (int k = 0; k < 10; k++) {
    sim_submit(&s, 0, k);
    sim_run(&s, 30);
    if (k == 5) pf_record(&s.r[1].trace, PF_OP_RESTART, NULL, 0);
  }
  sim_run(&s, 400);
  put_trace("trace_normal_backup_restart", &s.r[1]);
  put_trace("trace_normal_primary", &s.r[0]);
  put_singles(&s.r[1], seen);
  sim_free(&s);

  /* 2. View change: the primary goes silent; requests reach the backups,
   *    time out, and replica 1 becomes primary of view 1. */
  sim_init(&s);
  sim_submit(&s, 0, 100);
  sim_run(&s, 50);
  s.cut[0] = true;
  for (int k = 101; k < 104; k++) {
    sim_submit(&s, 1, k);
    sim_submit(&s, 2, k);
    sim_run(&s, 20);
  }
  sim_run(&s, 1500);
  put_trace("trace_view_change_new_primary", &s.r[1]);
  put_trace("trace_view_change_backup", &s.r[2]);
  put_singles(&s.r[2], seen);
  put_singles(&s.r[1], seen);
  sim_free(&s);

  /* 3. State transfer: replica 3 is cut off while 12 requests commit, then
   *    comes back and catches up. */
  sim_init(&s);
  s.cut[3] = true;
  for (int k = 200; k < 212; k++) {
    sim_submit(&s, 0, k);
    sim_run(&s, 30);
  }
  sim_run(&s, 200);
  s.cut[3] = false;
  s.r[3].trace.len = 1; /* what it saw before is nothing; start here */
  s.r[3].traced = PF_T0;
  sim_run(&s, 1500);
  put_trace("trace_state_transfer", &s.r[3]);
  put_singles(&s.r[3], seen);
  for (uint32_t i = 0; i < 3; i++) put_singles(&s.r[i], seen);
  sim_free(&s);

  for (int t = 1; t <= 11; t++) /* the types every run exercises */
    if (!seen[t]) fprintf(stderr, "fuzz_pbft: no seed for message type %d\n", t);
  put_garbage("fuzz_pbft");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  fl_log_configure("warn");
  g_now = (int64_t)time(NULL);
  ident_t ca, client, peer, admin;
  issue(&ca, "ca.example.com", NULL, true, NULL, "OrdererMSP");
  issue(&client, "client1@org1.example.com", "client", false, &ca, "Org1MSP");
  issue(&peer, "peer0.org1.example.com", "peer", false, &ca, "Org1MSP");
  issue(&admin, "Admin@example.com", "admin", false, &ca, "OrdererMSP");
  gen_endorsement(&client, &peer);
  gen_config(&ca, &admin, &client);
  gen_blobs();
  gen_pbft();
  ident_free(&admin);
  ident_free(&peer);
  ident_free(&client);
  ident_free(&ca);
  return 0;
}
