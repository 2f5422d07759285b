/* SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests for common/client (the Gateway SDK), against the gateway
 * stand-in of gateway_standin.c: a real fl_rpc server over mutual TLS that
 * verifies every signature the client makes with fl_msp and answers with
 * real endorsements, transactions and orderer-signed blocks from the
 * cryptogen fixture (FL_TEST_PKI_DIR).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/client/chain.h"
#include "common/client/client.h"
#include "common/client/events.h"
#include "common/client/identity.h"
#include "common/protoutil/pb.h"
#include "common/events/events.h"
#include "common/protoutil/proposal.h"
#include "fl/events/events.pb-c.h"
#include "tests/unit/client/gateway_standin.h"

#define ORG1 "peerOrganizations/org1.example.com/"
#define ORG2 "peerOrganizations/org2.example.com/"
#define CLIENT1 ORG1 "users/client1@org1.example.com"
#define CLIENT1_ORG2 ORG2 "users/client1@org2.example.com"
#define PEER0 ORG1 "peers/peer0.org1.example.com"

static const char *pki;
static gw_t *gw;
static fl_client_identity_t *id1;
static fl_client_tls_t *tls1;

static char *path(const char *rel) { return fl_sprintf("%s/%s", pki, rel); }

static int setup(void **state) {
  (void)state;
  pki = getenv("FL_TEST_PKI_DIR");
  if (pki == NULL) {
    fprintf(stderr, "FL_TEST_PKI_DIR is not set\n");
    return -1;
  }
  gw = gw_start(pki);
  char *msp = path(CLIENT1 "/msp"), *tls = path(CLIENT1 "/tls");
  char *err = NULL;
  if (fl_client_identity_load_msp("Org1MSP", msp, &id1, &err) != FL_OK ||
      fl_client_tls_load_dir(tls, "127.0.0.1", &tls1, &err) != FL_OK) {
    fprintf(stderr, "setup: %s\n", err ? err : "?");
    return -1;
  }
  fl_free(msp);
  fl_free(tls);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  gw_stop(gw);
  fl_client_identity_free(id1);
  fl_client_tls_free(tls1);
  return 0;
}

static int reset_mode(void **state) {
  (void)state;
  gw_set_mode(gw, GW_OK);
  return 0;
}

static fl_client_opts_t opts(void) {
  return (fl_client_opts_t){.host = "127.0.0.1", .port = gw_port(gw),
                            .tls = fl_client_tls_config(tls1), .channel = "fedchannel",
                            .call_timeout_ms = 5000, .commit_timeout_ms = 5000};
}

static fl_client_sync_t *connect_sync(const fl_client_opts_t *o) {
  fl_client_sync_t *s = NULL;
  char *err = NULL;
  fl_status_t rc = fl_client_sync_connect(o, id1, &s, &err);
  if (rc != FL_OK) fprintf(stderr, "connect: %s\n", err ? err : "?");
  fl_free(err);
  assert_int_equal(rc, FL_OK);
  return s;
}

static fl_client_proposal_t put(fl_buf_t *args, const char *k, const char *v) {
  args[0] = FL_BUF_STR("put");
  args[1] = FL_BUF_STR(k);
  args[2] = FL_BUF_STR(v);
  return (fl_client_proposal_t){.chaincode = "kvstore", .args = args, .n_args = 3};
}

/* ---- identity -------------------------------------------------------------- */

static void test_identity(void **state) {
  (void)state;
  assert_string_equal(fl_client_identity_mspid(id1), "Org1MSP");
  assert_string_equal(fl_client_identity_cn(id1), "client1@org1.example.com");
  fl_sbuf_t sid = {0};
  fl_buf_t pem = fl_client_identity_cert_pem(id1);
  assert_int_equal(fl_msp_serialize_identity("Org1MSP", pem.data, pem.len, &sid), FL_OK);
  assert_true(fl_buf_eq(fl_sbuf_view(&sid), fl_client_identity_creator(id1)));
  fl_sbuf_free(&sid);
  /* the identity's signatures verify through the network's MSP */
  fl_sbuf_t sig = {0};
  assert_int_equal(fl_signer_sign(fl_client_identity_signer(id1), "m", 1, &sig), FL_OK);
  fl_buf_t cr = fl_client_identity_creator(id1);
  assert_int_equal(fl_msp_verify_signature(gw_msp(gw), cr.data, cr.len, "m", 1, sig.data,
                                           sig.len, FL_ROLE_CLIENT, NULL),
                   FL_OK);
  fl_sbuf_free(&sig);

  /* a key that is not the certificate's */
  gw_ident_t c1, p0;
  gw_ident_load(&c1, pki, CLIENT1, "Org1MSP");
  gw_ident_load(&p0, pki, PEER0, "Org1MSP");
  char *kp = path(PEER0 "/msp/keystore/priv_sk");
  fl_sbuf_t key = {0};
  FILE *f = fopen(kp, "rb");
  assert_non_null(f);
  uint8_t tmp[4096];
  size_t n = fread(tmp, 1, sizeof tmp, f);
  fclose(f);
  fl_sbuf_append(&key, tmp, n);
  fl_client_identity_t *bad = NULL;
  char *err = NULL;
  assert_int_equal(fl_client_identity_from_pem("Org1MSP", fl_sbuf_view(&c1.pem),
                                               fl_sbuf_view(&key), &bad, &err),
                   FL_EPERM);
  assert_null(bad);
  assert_non_null(strstr(err, "does not belong"));
  fl_free(err);
  assert_int_equal(fl_client_identity_from_pem("Org1MSP", FL_BUF("junk", 4), fl_sbuf_view(&key),
                                               &bad, NULL),
                   FL_EMALFORMED);
  assert_int_equal(fl_client_identity_from_pem("", fl_sbuf_view(&c1.pem), fl_sbuf_view(&key),
                                               &bad, NULL),
                   FL_EINVAL);
  fl_sbuf_free(&key);
  fl_free(kp);
  gw_ident_free(&c1);
  gw_ident_free(&p0);

  /* missing folders */
  assert_int_equal(fl_client_identity_load_msp("Org1MSP", "/nonexistent/msp", &bad, &err),
                   FL_NOTFOUND);
  assert_non_null(strstr(err, "signcerts"));
  fl_free(err);
  fl_client_tls_t *t = NULL;
  assert_int_equal(fl_client_tls_load_dir("/nonexistent/tls", NULL, &t, &err), FL_NOTFOUND);
  assert_null(t);
  fl_free(err);
  /* a node's tls folder (server.crt) loads too, and extra CAs can be added */
  char *ptls = path(PEER0 "/tls"), *ca2 = path(ORG2 "tlsca/tlsca.org2.example.com-cert.pem");
  assert_int_equal(fl_client_tls_load_dir(ptls, NULL, &t, NULL), FL_OK);
  assert_non_null(strstr(fl_client_tls_config(t)->cert_file, "server.crt"));
  assert_int_equal(fl_client_tls_add_ca(t, ca2), FL_OK);
  assert_int_equal(fl_client_tls_config(t)->n_ca_files, 2);
  assert_int_equal(fl_client_tls_add_ca(t, "/nonexistent.pem"), FL_NOTFOUND);
  fl_client_tls_free(t);
  fl_free(ptls);
  fl_free(ca2);
}

/* ---- submit, evaluate, tx ---------------------------------------------------- */

static bool is_hex64(const char *s) {
  if (strlen(s) != 64) return false;
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
  return true;
}

static void test_submit_commit_evaluate(void **state) {
  (void)state;
  fl_client_opts_t o = opts();
  fl_client_sync_t *s = connect_sync(&o);
  gw_stats_t *st = gw_stats(gw);
  uint64_t props0 = atomic_load(&st->proposals_verified);
  uint64_t envs0 = atomic_load(&st->envelopes_verified);
  uint64_t stat0 = atomic_load(&st->status_requests_verified);

  fl_buf_t args[3];
  fl_client_proposal_t p = put(args, "k1", "v1");
  fl_client_result_t r;
  assert_int_equal(fl_client_sync_submit(s, &p, true, &r), FL_OK);
  assert_string_equal(r.error, "");
  assert_true(is_hex64(r.tx_id));
  assert_int_equal(r.cc_status, 200);
  assert_true(r.committed);
  assert_int_equal(r.code, FL_CLIENT_CODE_VALID);
  assert_true(r.block_number >= 4);
  char tx_id[FL_TXID_HEX_LEN + 1];
  memcpy(tx_id, r.tx_id, sizeof tx_id);
  fl_client_result_clear(&r);
  /* the server verified the proposal, the envelope and the status request */
  assert_int_equal(atomic_load(&st->proposals_verified), props0 + 1);
  assert_int_equal(atomic_load(&st->envelopes_verified), envs0 + 1);
  assert_int_equal(atomic_load(&st->status_requests_verified), stat0 + 1);

  /* the committed transaction: its tx id is SHA-256(nonce || creator), the
   * creator is us, and the proposal inside is a kvstore put */
  fl_client_tx_info_t *tx = NULL;
  char *err = NULL;
  assert_int_equal(fl_client_sync_get_tx(s, tx_id, &tx, &err), FL_OK);
  assert_string_equal(tx->envelope->header.tx_id, tx_id);
  char recomputed[FL_TXID_HEX_LEN + 1];
  fl_tx_id_compute(tx->envelope->header.nonce, tx->envelope->header.creator, recomputed);
  assert_string_equal(recomputed, tx_id);
  assert_int_equal(tx->envelope->header.nonce.len, FL_NONCE_LEN);
  assert_true(fl_buf_eq(tx->envelope->header.creator, fl_client_identity_creator(id1)));
  assert_string_equal(tx->envelope->header.channel, "fedchannel");
  assert_int_equal(fl_envelope_verify_creator(tx->envelope, gw_msp(gw), FL_ROLE_CLIENT, NULL),
                   FL_OK);
  fl_tx_t *dec = NULL;
  assert_int_equal(fl_tx_decode(tx->envelope, &dec, NULL), FL_OK);
  assert_string_equal(dec->proposal->chaincode, "kvstore");
  assert_int_equal(dec->proposal->n_args, 3);
  assert_memory_equal(dec->proposal->args[1].data, "k1", 2);
  assert_int_equal(dec->n_endorsements, 2);
  fl_tx_free(dec);
  fl_client_tx_info_free(tx);

  /* an unknown tx id is the server's NOTFOUND, a malformed one never leaves */
  assert_int_equal(fl_client_sync_get_tx(s, "00000000000000000000000000000000000000000000000000000000000000ff", &tx, &err),
                   FL_NOTFOUND);
  assert_null(tx);
  assert_non_null(strstr(err, "no such transaction"));
  fl_free(err);
  assert_int_equal(fl_client_sync_get_tx(s, "xyz", &tx, NULL), FL_EINVAL);

  /* commit status on its own */
  assert_int_equal(fl_client_sync_commit_status(s, tx_id, &r), FL_OK);
  assert_true(r.committed);
  assert_int_equal(r.code, 0);
  fl_client_result_clear(&r);

  /* evaluate sees the committed value; a missing key is a 404 */
  fl_buf_t gargs[2] = {FL_BUF_STR("get"), FL_BUF_STR("k1")};
  fl_client_proposal_t g = {.chaincode = "kvstore", .args = gargs, .n_args = 2};
  assert_int_equal(fl_client_sync_evaluate(s, &g, &r), FL_OK);
  assert_int_equal(r.payload.len, 2);
  assert_memory_equal(r.payload.data, "v1", 2);
  assert_false(r.committed);
  fl_client_result_clear(&r);
  gargs[1] = FL_BUF_STR("nope");
  assert_int_equal(fl_client_sync_evaluate(s, &g, &r), FL_NOTFOUND);
  assert_int_equal(r.cc_status, 404);
  assert_non_null(strstr(r.cc_message, "not found"));
  fl_client_result_clear(&r);

  /* submit without waiting: no commit status */
  p = put(args, "k2", "v2");
  assert_int_equal(fl_client_sync_submit(s, &p, false, &r), FL_OK);
  assert_false(r.committed);
  fl_client_result_clear(&r);

  /* bad proposals never leave the client */
  fl_client_proposal_t bad = {.chaincode = "kvstore", .args = args, .n_args = 0};
  assert_int_equal(fl_client_sync_submit(s, &bad, true, &r), FL_EINVAL);
  fl_client_result_clear(&r);
  fl_client_sync_close(s);
}

/* ---- prepared transactions that are not ours ------------------------------- */

static void refused_case(gw_mode_t mode, fl_status_t want, const char *text) {
  gw_set_mode(gw, mode);
  fl_client_opts_t o = opts();
  fl_client_sync_t *s = connect_sync(&o);
  uint64_t submits0 = atomic_load(&gw_stats(gw)->submits);
  uint64_t envs0 = atomic_load(&gw_stats(gw)->envelopes_verified);
  fl_buf_t args[3];
  fl_client_proposal_t p = put(args, "kx", "vx");
  fl_client_result_t r;
  assert_int_equal(fl_client_sync_submit(s, &p, true, &r), want);
  if (strstr(r.error, text) == NULL) fprintf(stderr, "error was: %s\n", r.error);
  assert_non_null(strstr(r.error, text));
  assert_false(r.committed);
  fl_client_result_clear(&r);
  /* nothing reached Submit */
  assert_int_equal(atomic_load(&gw_stats(gw)->submits), submits0);
  assert_int_equal(atomic_load(&gw_stats(gw)->envelopes_verified), envs0);
  fl_client_sync_close(s);
  gw_set_mode(gw, GW_OK);
}

static void test_refuses_wrong_txid(void **state) {
  (void)state;
  refused_case(GW_WRONG_TXID, FL_EPROTO, "prepared transaction has tx id");
}

static void test_refuses_other_proposal(void **state) {
  (void)state;
  refused_case(GW_OTHER_PROPOSAL, FL_EPROTO, "prepared transaction refused");
}

static void test_chaincode_error(void **state) {
  (void)state;
  fl_client_opts_t o = opts();
  fl_client_sync_t *s = connect_sync(&o);
  uint64_t submits0 = atomic_load(&gw_stats(gw)->submits);
  fl_buf_t args[1] = {FL_BUF_STR("fail")};
  fl_client_proposal_t p = {.chaincode = "kvstore", .args = args, .n_args = 1};
  fl_client_result_t r;
  assert_int_equal(fl_client_sync_submit(s, &p, true, &r), FL_EINVAL);
  assert_int_equal(r.cc_status, 500);
  assert_string_equal(r.cc_message, "kvstore: failure requested");
  assert_non_null(strstr(r.error, "status 500"));
  fl_client_result_clear(&r);
  assert_int_equal(atomic_load(&gw_stats(gw)->submits), submits0);
  fl_client_sync_close(s);
  /* a gateway that hands back a transaction whose endorsed response failed */
  refused_case(GW_ENDORSED_500, FL_EINVAL, "status 500");
}

static void test_bad_endorsement(void **state) {
  (void)state;
  /* with an MSP the client catches it before submitting */
  fl_client_opts_t o = opts();
  o.endorsement_msp = gw_msp(gw);
  gw_set_mode(gw, GW_BAD_ENDORSEMENT);
  fl_client_sync_t *s = connect_sync(&o);
  uint64_t submits0 = atomic_load(&gw_stats(gw)->submits);
  fl_buf_t args[3];
  fl_client_proposal_t p = put(args, "ke", "ve");
  fl_client_result_t r;
  assert_int_equal(fl_client_sync_submit(s, &p, true, &r), FL_EBADSIG);
  assert_non_null(strstr(r.error, "endorsement 1 does not verify"));
  fl_client_result_clear(&r);
  assert_int_equal(atomic_load(&gw_stats(gw)->submits), submits0);
  fl_client_sync_close(s);
  /* without, the server's verification refuses it and the client says so */
  o.endorsement_msp = NULL;
  s = connect_sync(&o);
  assert_int_equal(fl_client_sync_submit(s, &p, true, &r), FL_EBADSIG);
  assert_non_null(strstr(r.error, "submit:"));
  fl_client_result_clear(&r);
  assert_int_equal(atomic_load(&gw_stats(gw)->submits), submits0);
  fl_client_sync_close(s);
  /* and a good transaction with endorsement checks passes */
  gw_set_mode(gw, GW_OK);
  o.endorsement_msp = gw_msp(gw);
  s = connect_sync(&o);
  assert_int_equal(fl_client_sync_submit(s, &p, true, &r), FL_OK);
  fl_client_result_clear(&r);
  fl_client_sync_close(s);
}

static void test_invalid_commit(void **state) {
  (void)state;
  gw_set_mode(gw, GW_INVALID_COMMIT);
  fl_client_opts_t o = opts();
  fl_client_sync_t *s = connect_sync(&o);
  fl_buf_t args[3];
  fl_client_proposal_t p = put(args, "km", "vm");
  fl_client_result_t r;
  assert_int_equal(fl_client_sync_submit(s, &p, true, &r), FL_ECONFLICT);
  assert_true(r.committed);
  assert_int_equal(r.code, 9);
  assert_string_equal(fl_client_code_name(r.code), "MVCC_READ_CONFLICT");
  assert_non_null(strstr(r.error, "MVCC_READ_CONFLICT"));
  fl_client_result_clear(&r);
  fl_client_sync_close(s);
  assert_int_equal(fl_client_code_status(0), FL_OK);
  assert_int_equal(fl_client_code_status(3), FL_EBADSIG);
  assert_int_equal(fl_client_code_status(13), FL_EREVOKED);
  assert_string_equal(fl_client_code_name(12345), "UNKNOWN");
}

/* ---- transport failures ------------------------------------------------------ */

static void test_timeout(void **state) {
  (void)state;
  gw_set_mode(gw, GW_SILENT);
  fl_client_opts_t o = opts();
  o.call_timeout_ms = 200;
  fl_client_sync_t *s = connect_sync(&o);
  fl_buf_t args[3];
  fl_client_proposal_t p = put(args, "kt", "vt");
  fl_client_result_t r;
  uint64_t t0 = fl_mono_ns();
  assert_int_equal(fl_client_sync_submit(s, &p, true, &r), FL_ETIMEDOUT);
  uint64_t ms = (fl_mono_ns() - t0) / 1000000;
  assert_true(ms >= 150 && ms < 3000);
  assert_non_null(strstr(r.error, "endorse"));
  fl_client_result_clear(&r);
  fl_client_sync_close(s);
  gw_set_mode(gw, GW_OK);
}

static void test_connection_refused(void **state) {
  (void)state;
  /* a port nobody listens on: bind one, learn it, close it */
  fl_client_opts_t o = opts();
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  uv_tcp_t t;
  uv_tcp_init(&loop, &t);
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&sa, 0), 0);
  struct sockaddr_in got;
  int len = sizeof got;
  uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  o.port = ntohs(got.sin_port);
  fl_client_sync_t *s = NULL;
  char *err = NULL;
  assert_int_equal(fl_client_sync_connect(&o, id1, &s, &err), FL_ECONNREFUSED);
  assert_null(s);
  assert_non_null(strstr(err, "cannot connect"));
  fl_free(err);

  /* a client that trusts only org2's TLS CA refuses org1's peer */
  fl_client_tls_t *t2 = NULL;
  char *d = path(CLIENT1_ORG2 "/tls");
  assert_int_equal(fl_client_tls_load_dir(d, "127.0.0.1", &t2, NULL), FL_OK);
  fl_free(d);
  o = opts();
  o.tls = fl_client_tls_config(t2);
  assert_int_equal(fl_client_sync_connect(&o, id1, &s, NULL), FL_EUNTRUSTED);
  fl_client_tls_free(t2);
  /* missing channel */
  o = opts();
  o.channel = NULL;
  assert_int_equal(fl_client_sync_connect(&o, id1, &s, NULL), FL_EINVAL);
  /* no handle */
  fl_client_chain_info_t info;
  fl_client_result_t r;
  assert_int_equal(fl_client_sync_chain_info(NULL, &info, NULL), FL_EINVAL);
  assert_int_equal(fl_client_sync_commit_status(NULL, "x", &r), FL_EINVAL);
  fl_client_result_clear(&r);
}

/* ---- async: 1,000 pipelined submits ------------------------------------------ */

typedef struct pipe_s {
  int done, ok;
  fl_status_t first_err;
  char (*ids)[FL_TXID_HEX_LEN + 1];
  int n_ids;
  bool connected;
  fl_status_t conn;
} pipe_t;

static void pipe_cb(void *arg, const fl_client_result_t *r) {
  pipe_t *p = arg;
  p->done++;
  if (r->status == FL_OK && r->committed && r->code == 0) p->ok++;
  else if (p->first_err == FL_OK) p->first_err = r->status;
  memcpy(p->ids[p->n_ids++], r->tx_id, FL_TXID_HEX_LEN + 1);
}

static void pipe_conn(fl_client_t *c, fl_status_t st, void *arg) {
  (void)c;
  pipe_t *p = arg;
  p->connected = true;
  p->conn = st;
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

static void on_closed(fl_client_t *c, void *arg) {
  (void)c;
  *(bool *)arg = true;
}

static void test_pipelined_1000(void **state) {
  (void)state;
  enum { N = 1000 };
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  pipe_t pp = {.ids = fl_calloc(N, sizeof *pp.ids)};
  fl_client_opts_t o = opts();
  /* all 1,000 are queued at once: under ASan on a loaded machine the last
   * ones wait many seconds for the server */
  o.call_timeout_ms = o.commit_timeout_ms = 100000;
  o.on_connect = pipe_conn;
  o.arg = &pp;
  fl_client_t *c = NULL;
  assert_int_equal(fl_client_new(&loop, &o, id1, &c, NULL), FL_OK);
  uint64_t submits0 = atomic_load(&gw_stats(gw)->submits);
  uint64_t t0 = fl_mono_ns();
  /* all queued before the connection is even up */
  for (int i = 0; i < N; i++) {
    char k[32], v[32];
    snprintf(k, sizeof k, "pipe-%d", i);
    snprintf(v, sizeof v, "value-%d", i);
    fl_buf_t args[3];
    fl_client_proposal_t p = put(args, k, v);
    char txid[FL_TXID_HEX_LEN + 1];
    assert_int_equal(fl_client_submit(c, &p, true, pipe_cb, &pp, txid), FL_OK);
    assert_true(is_hex64(txid));
  }
  assert_int_equal(fl_client_inflight(c), N);
  while (pp.done < N && uv_run(&loop, UV_RUN_ONCE) != 0) {
  }
  double secs = (double)(fl_mono_ns() - t0) / 1e9;
  fprintf(stderr, "# 1000 pipelined submits+commit: %.3f s (%.0f tx/s)\n", secs, N / secs);
  assert_true(pp.connected);
  assert_int_equal(pp.conn, FL_OK);
  assert_int_equal(pp.done, N);
  assert_int_equal(pp.first_err, FL_OK);
  assert_int_equal(pp.ok, N);
  assert_int_equal(fl_client_inflight(c), 0);
  assert_int_equal(atomic_load(&gw_stats(gw)->submits), submits0 + N);
  qsort(pp.ids, N, sizeof *pp.ids, cmp_id);
  for (int i = 1; i < N; i++) assert_string_not_equal(pp.ids[i - 1], pp.ids[i]);

  /* close with work in flight: every callback runs with FL_ECANCELED */
  gw_set_mode(gw, GW_SILENT);
  pipe_t pc = {.ids = fl_calloc(5, sizeof *pc.ids)};
  for (int i = 0; i < 5; i++) {
    fl_buf_t args[3];
    fl_client_proposal_t p = put(args, "c", "c");
    assert_int_equal(fl_client_submit(c, &p, true, pipe_cb, &pc, NULL), FL_OK);
  }
  for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT);
  bool closed = false;
  fl_client_close(c, on_closed, &closed);
  while (!closed && uv_run(&loop, UV_RUN_ONCE) != 0) {
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(closed);
  assert_int_equal(pc.done, 5);
  assert_int_equal(pc.ok, 0);
  assert_int_equal(pc.first_err, FL_ECANCELED);
  assert_int_equal(uv_loop_close(&loop), 0);
  fl_free(pp.ids);
  fl_free(pc.ids);
  gw_set_mode(gw, GW_OK);
}

/* ---- blobs, blocks, deliver ---------------------------------------------------- */

static void test_blob(void **state) {
  (void)state;
  fl_client_opts_t o = opts();
  fl_client_sync_t *s = connect_sync(&o);
  uint8_t h[32];
  fl_buf_t want = gw_blob(gw, h);
  fl_sbuf_t got = {0};
  char *err = NULL;
  assert_int_equal(fl_client_sync_get_blob(s, h, &got, &err), FL_OK);
  assert_true(fl_buf_eq(fl_sbuf_view(&got), want));
  fl_sbuf_free(&got);
  gw_set_mode(gw, GW_BAD_BLOB);
  assert_int_equal(fl_client_sync_get_blob(s, h, &got, &err), FL_ECORRUPT);
  assert_int_equal(got.len, 0);
  assert_non_null(strstr(err, "do not match"));
  fl_free(err);
  gw_set_mode(gw, GW_OK);
  h[0] ^= 1;
  assert_int_equal(fl_client_sync_get_blob(s, h, &got, NULL), FL_NOTFOUND);
  fl_client_sync_close(s);
}

typedef struct seen_s {
  uint64_t numbers[16];
  int n;
  int stop_after;
} seen_t;

static int on_block(void *arg, const fl_block_t *b) {
  seen_t *s = arg;
  s->numbers[s->n++] = b->number;
  return s->stop_after && s->n >= s->stop_after;
}

static void test_blocks_and_deliver(void **state) {
  (void)state;
  fl_client_chain_t *chain = NULL;
  fl_buf_t g = gw_genesis(gw);
  char *err = NULL;
  assert_int_equal(fl_client_chain_new(g.data, g.len, &chain, &err), FL_OK);
  assert_int_equal(fl_client_chain_config(chain)->pbft.f, 1);
  assert_int_equal(fl_client_chain_new((const uint8_t *)"junk", 4, &(fl_client_chain_t *){NULL},
                                       &err),
                   FL_EMALFORMED);
  fl_free(err);

  fl_client_opts_t o = opts();
  fl_client_sync_t *s = connect_sync(&o);
  fl_client_chain_info_t info;
  assert_int_equal(fl_client_sync_chain_info(s, &info, NULL), FL_OK);
  assert_int_equal(info.height, 4);

  /* get_block + verify, block by block */
  for (uint64_t n = 0; n < 4; n++) {
    fl_block_t *b = NULL;
    assert_int_equal(fl_client_sync_get_block(s, n, &b, NULL), FL_OK);
    assert_int_equal(b->number, n);
    assert_int_equal(fl_client_chain_verify(chain, b, NULL), FL_OK);
    if (n == 3) assert_memory_equal(b->header_hash, info.current_hash, 32);
    fl_block_free(b);
  }
  assert_int_equal(fl_client_chain_last(chain), 3);
  fl_block_t *b = NULL;
  assert_int_equal(fl_client_sync_get_block(s, 9, &b, NULL), FL_NOTFOUND);

  /* deliver 0..3, verified */
  seen_t seen = {0};
  assert_int_equal(fl_client_sync_deliver(s, chain, 0, 3, on_block, &seen, &err), FL_OK);
  assert_int_equal(seen.n, 4);
  for (int i = 0; i < 4; i++) assert_int_equal(seen.numbers[i], i);
  /* the consumer stops early */
  seen = (seen_t){.stop_after = 2};
  fl_client_chain_reset(chain);
  assert_int_equal(fl_client_sync_deliver(s, chain, 0, UINT64_MAX, on_block, &seen, NULL), FL_OK);
  assert_int_equal(seen.n, 2);

  /* a block with 2 valid orderer signatures of the 3 needed */
  gw_set_mode(gw, GW_DELIVER_BADSIG);
  fl_client_chain_reset(chain);
  seen = (seen_t){0};
  assert_int_equal(fl_client_sync_deliver(s, chain, 0, 3, on_block, &seen, &err), FL_EBADSIG);
  assert_int_equal(seen.n, 2); /* blocks 0 and 1 only */
  assert_non_null(strstr(err, "block 2"));
  fl_free(err);
  assert_int_equal(fl_client_sync_get_block(s, 2, &b, NULL), FL_OK);
  assert_int_equal(fl_client_chain_verify(chain, b, NULL), FL_EBADSIG);
  fl_block_free(b);

  /* a fully signed block 2 that does not link to block 1 */
  gw_set_mode(gw, GW_DELIVER_BADLINK);
  fl_client_chain_reset(chain);
  seen = (seen_t){0};
  assert_int_equal(fl_client_sync_deliver(s, chain, 0, 3, on_block, &seen, &err), FL_ECORRUPT);
  assert_int_equal(seen.n, 2);
  fl_free(err);
  /* unverified, the same stream goes through */
  seen = (seen_t){0};
  assert_int_equal(fl_client_sync_deliver(s, NULL, 0, 3, on_block, &seen, NULL), FL_OK);
  assert_int_equal(seen.n, 4);
  gw_set_mode(gw, GW_OK);

  fl_client_sync_close(s);
  fl_client_chain_free(chain);
}

/* ---- events -------------------------------------------------------------------- */

static void pack_event(const Fl__Events__Event *e, fl_sbuf_t *out) {
  out->len = 0;
  size_t n = fl__events__event__get_packed_size(e);
  fl_sbuf_reserve(out, n);
  fl__events__event__pack(e, out->data);
  out->len = n;
}

static void test_events(void **state) {
  (void)state;
  char dir[] = "/tmp/fl-client-events-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char *url = fl_sprintf("ipc://%s/events", dir);
  fl_events_pub_t *pub = NULL;
  assert_int_equal(fl_events_pub_new(0, &pub), FL_OK);
  assert_int_equal(fl_events_pub_bind(pub, url), FL_OK);
  fl_client_events_t *ev = NULL;
  assert_int_equal(fl_client_events_open(url, &ev), FL_OK);
  assert_int_equal(fl_client_events_subscribe_blocks(ev), FL_OK);
  assert_int_equal(fl_client_events_subscribe_chaincode(ev, "kvstore"), FL_OK);

  Fl__Events__TxStatus t0 = FL__EVENTS__TX_STATUS__INIT, t1 = FL__EVENTS__TX_STATUS__INIT;
  t0.tx_id = "aa";
  t0.code = 0;
  t0.chaincode = "kvstore";
  t1.tx_id = "bb";
  t1.code = 9;
  t1.chaincode = "kvstore";
  Fl__Events__TxStatus *txs[2] = {&t0, &t1};
  Fl__Events__BlockEvent be = FL__EVENTS__BLOCK_EVENT__INIT;
  uint8_t hh[32];
  memset(hh, 7, sizeof hh);
  be.number = 42;
  be.header_hash.data = hh;
  be.header_hash.len = 32;
  be.n_txs = 2;
  be.txs = txs;
  Fl__Events__Event e = FL__EVENTS__EVENT__INIT;
  e.peer = "peer0.org1.example.com";
  e.type_case = FL__EVENTS__EVENT__TYPE_BLOCK;
  e.block = &be;
  fl_sbuf_t blk = {0}, cc = {0};
  pack_event(&e, &blk);
  Fl__Events__ChaincodeEvent ce = FL__EVENTS__CHAINCODE_EVENT__INIT;
  ce.block_number = 42;
  ce.tx_id = "aa";
  ce.chaincode = "kvstore";
  ce.name = "stored";
  ce.payload.data = (uint8_t *)hh;
  ce.payload.len = 3;
  e.type_case = FL__EVENTS__EVENT__TYPE_CHAINCODE;
  e.chaincode = &ce;
  pack_event(&e, &cc);

  /* a subscriber connects asynchronously: publish until it hears; first a
   * malformed message and a block event sent under a chaincode topic, which
   * must be skipped */
  fl_client_event_t got = {0};
  fl_status_t rc = FL_ETIMEDOUT;
  for (int i = 0; i < 100 && rc != FL_OK; i++) {
    (void)fl_events_publish(pub, "block", "\x01\x02garbage", 9);
    (void)fl_events_publish(pub, "cc/kvstore", blk.data, blk.len);
    (void)fl_events_publish(pub, "block", blk.data, blk.len);
    rc = fl_client_events_next(ev, 50, &got);
  }
  assert_int_equal(rc, FL_OK);
  assert_int_equal(got.kind, FL_CLIENT_EVENT_BLOCK);
  assert_string_equal(got.peer, "peer0.org1.example.com");
  assert_int_equal(got.number, 42);
  assert_int_equal(got.header_hash.len, 32);
  assert_int_equal(got.n_txs, 2);
  assert_string_equal(got.txs[1].tx_id, "bb");
  assert_int_equal(got.txs[1].code, 9);
  fl_client_event_clear(&got);
  /* Now that the subscription is up, messages arrive in order: a malformed
   * one and a misfiled one, then block 43. When 43 is read, the two before
   * it have been seen and skipped (the loop above may have delivered the
   * subscriber's first block before any garbage reached it). */
  while (fl_client_events_next(ev, 0, &got) == FL_OK) fl_client_event_clear(&got);
  uint64_t skipped0 = fl_client_events_skipped(ev);
  be.number = 43;
  e.type_case = FL__EVENTS__EVENT__TYPE_BLOCK;
  e.block = &be;
  fl_sbuf_t blk43 = {0};
  pack_event(&e, &blk43);
  assert_int_equal(fl_events_publish(pub, "block", "\x01\x02garbage", 9), FL_OK);
  assert_int_equal(fl_events_publish(pub, "cc/kvstore", blk43.data, blk43.len), FL_OK);
  assert_int_equal(fl_events_publish(pub, "block", blk43.data, blk43.len), FL_OK);
  do {
    rc = fl_client_events_next(ev, 2000, &got);
    if (rc != FL_OK) break;
    uint64_t n = got.number;
    fl_client_event_clear(&got);
    if (n == 43) break;
  } while (1);
  assert_int_equal(rc, FL_OK);
  assert_true(fl_client_events_skipped(ev) >= skipped0 + 2);
  fl_sbuf_free(&blk43);
  /* then a chaincode event */
  assert_int_equal(fl_events_publish(pub, "cc/kvstore", cc.data, cc.len), FL_OK);
  rc = fl_client_events_next(ev, 2000, &got);
  while (rc == FL_OK && got.kind != FL_CLIENT_EVENT_CHAINCODE) {
    fl_client_event_clear(&got);
    rc = fl_client_events_next(ev, 2000, &got);
  }
  assert_int_equal(rc, FL_OK);
  assert_string_equal(got.name, "stored");
  assert_string_equal(got.chaincode, "kvstore");
  assert_int_equal(got.block_number, 42);
  assert_int_equal(got.payload.len, 3);
  fl_client_event_clear(&got);
  fl_client_event_clear(&got); /* idempotent */
  int fd = -1;
  assert_int_equal(fl_client_events_fd(ev, &fd), FL_OK);
  assert_true(fd >= 0);
  assert_int_equal(fl_client_events_next(ev, 0, &got), FL_AGAIN);
  assert_int_equal(fl_client_event_decode(FL_BUF("\xff\xff", 2), &got), FL_EMALFORMED);
  assert_int_equal(fl_client_events_subscribe_chaincode(ev, ""), FL_EINVAL);

  fl_client_events_close(ev);
  fl_events_pub_free(pub);
  fl_sbuf_free(&blk);
  fl_sbuf_free(&cc);
  char *sock = fl_sprintf("%s/events", dir);
  unlink(sock);
  fl_free(sock);
  rmdir(dir);
  fl_free(url);
}

/* ---- the wire helpers ---------------------------------------------------------- */

static void test_pb_reader(void **state) {
  (void)state;
  fl_sbuf_t b = {0};
  fl__pb_put_varint(&b, 1, 300);
  fl__pb_put_bytes(&b, 2, "abc", 3);
  fl__pb_put_varint(&b, 100000, UINT64_MAX);
  fl__pb_reader_t r;
  fl__pb_field_t f;
  fl__pb_reader_init(&r, fl_sbuf_view(&b));
  assert_true(fl__pb_next(&r, &f));
  assert_int_equal(f.field, 1);
  assert_int_equal(f.v, 300);
  assert_true(fl__pb_next(&r, &f));
  assert_int_equal(f.field, 2);
  assert_int_equal(f.bytes.len, 3);
  assert_true(fl__pb_next(&r, &f));
  assert_int_equal(f.field, 100000);
  assert_true(f.v == UINT64_MAX);
  assert_false(fl__pb_next(&r, &f));
  assert_false(r.bad);
  /* every truncation is detected, never read past the end */
  for (size_t cut = 1; cut < b.len; cut++) {
    fl__pb_reader_init(&r, FL_BUF(b.data, cut));
    while (fl__pb_next(&r, &f)) {
    }
    if (cut != 3 && cut != 8) assert_true(r.bad); /* 3 and 8 end on a field */
  }
  assert_int_equal(fl__pb_zigzag(3), -2);
  assert_int_equal(fl__pb_zigzag(1000), 500);
  fl_sbuf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pb_reader),
      cmocka_unit_test(test_identity),
      cmocka_unit_test_setup(test_submit_commit_evaluate, reset_mode),
      cmocka_unit_test_setup(test_refuses_wrong_txid, reset_mode),
      cmocka_unit_test_setup(test_refuses_other_proposal, reset_mode),
      cmocka_unit_test_setup(test_chaincode_error, reset_mode),
      cmocka_unit_test_setup(test_bad_endorsement, reset_mode),
      cmocka_unit_test_setup(test_invalid_commit, reset_mode),
      cmocka_unit_test_setup(test_timeout, reset_mode),
      cmocka_unit_test_setup(test_connection_refused, reset_mode),
      cmocka_unit_test_setup(test_pipelined_1000, reset_mode),
      cmocka_unit_test_setup(test_blob, reset_mode),
      cmocka_unit_test_setup(test_blocks_and_deliver, reset_mode),
      cmocka_unit_test(test_events),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
