/* SPDX-License-Identifier: Apache-2.0
 *
 * server_ledger.c: fl_bench's FL server through a live fedledger network
 * (server.h). One libuv loop, one Gateway SDK connection (fl_client_t) per
 * client identity plus one for the organisation admin that creates tasks
 * and closes rounds. A round:
 *
 *   1. every client k builds its SubmitUpdate exactly as fedledger-edge does
 *      (fl_edge_submission_build: update blob, SHA-256, signature over
 *      (task, round, hash) with the client's own key, the data-batch hash
 *      of its rows, timestamp and id) and submits it through the gateway of
 *      its organisation's peer with its own identity (early, see below, or
 *      all at once in ledger_round) and each waits for its commit status
 *      (VALID required); the
 *      endorsed response is the update record (ACCEPTED / REJECTED reason);
 *   2. the admin submits CloseRound (the round keeper's transaction; the
 *      runner plays the keeper, closing as soon as every submission is
 *      committed) and waits for its commit; the response is model/<t>/<r>;
 *   3. GetModel (a query of the committed state) and GetBlob of the new
 *      model's hash are read back; the blob's SHA-256 must equal the hash in
 *      both records, and its layout the task's; its values become the
 *      global model.
 * Pipelining (fl_bsrv_submit_early): a client whose update is final as
 * soon as its local training ends builds and signs its SubmitUpdate right
 * then, in the caller's thread, and hands it to a background thread that
 * runs the network loop (submit, commit status) while the next clients
 * train; ledger_round takes the loop back (stops and joins that thread),
 * submits the remaining clients (those of update attacks, whose updates
 * need the benign ones), and goes on with 1-3 as above. Only the loop's
 * owner touches the loop, the clients and the ops: the background thread
 * between the first early submission of a round and ledger_round, the
 * caller's thread otherwise; the queue of clients to send is under a mutex.
 * mlupdate scores an update against the previous rounds' statistics only
 * (round/<t>/<r>) and updates of different clients never conflict, so the
 * order of submission changes no record.
 * Then the shadow plain server (server_plain.c, filter rule "ledger") runs
 * on the same updates and start model, and the round counts as a mismatch
 * unless the accepted set, the selection and the new model's bytes are all
 * equal.
 *
 * Client k gets the k-th client id in strcmp order among the identities
 * used (Org1MSP:client1@org1..., Org2MSP:client1@org2...): mlupdate
 * aggregates in client id order, the plain server in index order, and the
 * two orders must agree for the sums to be bit-identical.
 *
 * Network file (bench/fl/ledger_net.sh writes it), one item per line:
 *   channel NAME
 *   org MSPID ORG_DIR DOMAIN GATEWAY0 GATEWAY1   (cryptogen peerOrganizations/<domain>)
 *   users M                                      (client1..clientM in every org)
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "bench/fl/server.h"
#include "chaincode/mlupdate/json.h"
#include "chaincode/mlupdate/mlupdate.h"
#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/clock.h"
#include "common/client/client.h"
#include "common/client/identity.h"
#include "common/crypto/hash.h"
#include "ml/edge/ledger.h"
#include "ml/edge/update.h"

#define MAX_ORGS 4
/* A transaction handed to the orderers but not seen committed after this
 * long is looked up on the ledger and sent again if it is not there (an
 * ordering service under heavy load can drop a request in a view change). */
#define COMMIT_TIMEOUT_MS 120000

typedef struct org_s {
  char *mspid, *dir, *domain, *gw[2];
} org_t;

typedef struct ledger_s ledger_t;

/* One outstanding operation and its outcome. */
typedef struct op_s {
  ledger_t *L;
  fl_client_t *c;
  int done;
  double t_start, t_ordered, t_end; /* ms: call, endorsed + handed to the orderers, done */
  fl_status_t st;
  char err[512];
  int32_t cc_status;
  bool committed;
  int32_t code;
  uint64_t block;    /* when committed */
  char tx_id[FL_TXID_HEX_LEN + 1];
  fl_sbuf_t payload; /* copied response payload / blob bytes */
} op_t;

typedef struct conn_s {
  ledger_t *L;
  char *client_id;
  char host[64];
  uint16_t port;
  fl_client_identity_t *id;
  fl_client_tls_t *tls;
  fl_client_t *c;
  fl_status_t conn_st;
  op_t op;
  fl_edge_submission_t sub;
  int probing; /* a lookup of a lost transaction is in flight */
  int resent;  /* this round's update was sent again after a lookup */
  int skip; /* this round's update is not finite: it cannot be sent (plain
               cannot encode it either, and rejects it) */
  int early;    /* this round's update came through fl_bsrv_submit_early */
  double bytes; /* this round's SubmitUpdate: blob, arguments, creator */
} conn_t;

struct ledger_s {
  fl_bsrv_t base;
  uv_loop_t loop;
  char *channel;
  org_t orgs[MAX_ORGS];
  int n_orgs;
  uint32_t users, N;
  conn_t *cl;   /* N clients, client id order */
  conn_t admin;
  int pending;
  /* the current run */
  int in_run;
  char task[FL_MLU_TASK_MAX + 1];
  uint64_t n_tasks;
  fl_ml_tensors_t layout; /* scratch with the task's layout */
  double *samples;
  uint8_t *rows_hash;     /* N x 32 */
  fl_bsrv_plain_run_t *shadow;
  double retries;
  float *sh_global;
  uint8_t *sh_acc, *sh_sel;
  /* pipelining (fl_bsrv_submit_early) */
  uv_async_t wake;     /* tells the loop thread that q has clients */
  uv_mutex_t mu;       /* q, nq, stop */
  uv_thread_t thr;
  int thr_on;          /* the loop thread runs: the caller's thread keeps off the loop */
  int stop;
  uint32_t *q, nq;     /* clients whose built submission is to be sent */
  uint32_t *q2;        /* the loop owner's copy of q */
  uint32_t early_round, n_early;
  float *early_upd;    /* N x P: what each early client sent */
  double early_ms;     /* the caller's time in this round's fl_bsrv_submit_early */
  double early_t0;     /* when the round's first early submission was made */
  int no_early;        /* FL_BENCH_EARLY=0: ignore fl_bsrv_submit_early */
  double thr_cpu_ms;   /* CPU time of this round's loop thread (written by it, read after
                          the join) */
};

static double now_ms(void) { return (double)fl_mono_ns() / 1e6; }

static void on_wake(uv_async_t *h);
static void stop_thread(ledger_t *L);

static void sleep_us(long us) {
  struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

static void wait_all(ledger_t *L) {
  while (L->pending > 0) uv_run(&L->loop, UV_RUN_ONCE);
}

static void op_reset(op_t *o, ledger_t *L) {
  fl_sbuf_free(&o->payload);
  memset(o, 0, sizeof *o);
  o->L = L;
}

static void op_finish(op_t *o, const fl_client_result_t *res) {
  o->st = res->status;
  snprintf(o->err, sizeof o->err, "%s%s%s", res->error, *res->cc_message ? ": " : "",
           res->cc_message);
  o->committed = res->committed;
  o->code = res->code;
  o->block = res->block_number;
  if (res->tx_id[0]) memcpy(o->tx_id, res->tx_id, sizeof o->tx_id);
  o->done = 1;
  o->t_end = now_ms();
  o->L->pending--;
}

static void on_result(void *arg, const fl_client_result_t *res) {
  op_t *o = arg;
  o->cc_status = res->cc_status;
  fl_sbuf_append(&o->payload, res->payload.data, res->payload.len);
  op_finish(o, res);
}

static void on_committed(void *arg, const fl_client_result_t *res) { op_finish(arg, res); }

/* Submit without waiting: endorsed and handed to the orderers. Then the
 * commit status, as a second call (so that the two stages can be timed). */
static void on_submitted(void *arg, const fl_client_result_t *res) {
  op_t *o = arg;
  o->cc_status = res->cc_status;
  fl_sbuf_append(&o->payload, res->payload.data, res->payload.len);
  o->t_ordered = now_ms();
  if (res->status != FL_OK) {
    op_finish(o, res);
    return;
  }
  fl_status_t rc = fl_client_commit_status(o->c, res->tx_id, on_committed, o);
  if (rc != FL_OK) {
    fl_client_result_t r = {.status = rc, .error = "commit status", .cc_message = ""};
    op_finish(o, &r);
  }
}

static void on_blob(void *arg, fl_status_t st, const char *errmsg, fl_buf_t data) {
  op_t *o = arg;
  o->st = st;
  snprintf(o->err, sizeof o->err, "%s", errmsg ? errmsg : "");
  if (st == FL_OK) fl_sbuf_append(&o->payload, data.data, data.len);
  o->done = 1;
  o->L->pending--;
}

static void on_connect(fl_client_t *c, fl_status_t st, void *arg) {
  (void)c;
  conn_t *cn = arg;
  cn->conn_st = st;
  cn->L->pending--;
}

static void on_closed(fl_client_t *c, void *arg) {
  (void)c;
  ((ledger_t *)arg)->pending--;
}

/* Loads an identity and starts connecting it to gw ("host:port"). */
static void conn_open(ledger_t *L, conn_t *cn, const char *mspid, const char *user_dir,
                      const char *gw) {
  cn->L = L;
  const char *colon = strrchr(gw, ':');
  if (colon == NULL || (size_t)(colon - gw) >= sizeof cn->host)
    fl_bsrv_die("ledger network: bad gateway '%s'", gw);
  memcpy(cn->host, gw, (size_t)(colon - gw));
  cn->host[colon - gw] = '\0';
  cn->port = (uint16_t)atoi(colon + 1);
  char *msp = fl_sprintf("%s/msp", user_dir), *tls = fl_sprintf("%s/tls", user_dir);
  char *err = NULL;
  fl_status_t rc = fl_client_identity_load_msp(mspid, msp, &cn->id, &err);
  if (rc == FL_OK) rc = fl_client_tls_load_dir(tls, cn->host, &cn->tls, &err);
  if (rc != FL_OK) fl_bsrv_die("identity %s: %s", user_dir, err ? err : fl_status_str(rc));
  const char *cnm = fl_client_identity_cn(cn->id);
  if (fl_mlu_client_id(mspid, strlen(mspid), cnm ? cnm : "", &cn->client_id) != FL_OK)
    fl_bsrv_die("identity %s gives no client id", user_dir);
  fl_client_opts_t o = {.host = cn->host, .port = cn->port,
                        .tls = fl_client_tls_config(cn->tls), .channel = L->channel,
                        .call_timeout_ms = 30000, .commit_timeout_ms = COMMIT_TIMEOUT_MS,
                        .on_connect = on_connect, .arg = cn};
  if (fl_client_new(&L->loop, &o, cn->id, &cn->c, &err) != FL_OK)
    fl_bsrv_die("gateway %s: %s", gw, err ? err : "cannot create the client");
  L->pending++;
  fl_free(msp);
  fl_free(tls);
  fl_free(err);
}

static void conn_free(conn_t *cn) {
  fl_edge_submission_clear(&cn->sub);
  fl_sbuf_free(&cn->op.payload);
  fl_client_identity_free(cn->id);
  fl_client_tls_free(cn->tls);
  fl_free(cn->client_id);
}

/* ---- network file ---------------------------------------------------------- */

static void read_net(ledger_t *L, const char *path) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL) fl_bsrv_die("cannot read the ledger network file %s", path);
  char line[4096];
  while (fgets(line, sizeof line, fp)) {
    char a[5][1024];
    int n = sscanf(line, "%1023s %1023s %1023s %1023s %1023s", a[0], a[1], a[2], a[3], a[4]);
    char g1[1024];
    if (n <= 0 || a[0][0] == '#') continue;
    if (strcmp(a[0], "channel") == 0 && n == 2) {
      fl_free(L->channel);
      L->channel = fl_strdup(a[1]);
    } else if (strcmp(a[0], "users") == 0 && n == 2) {
      L->users = (uint32_t)strtoul(a[1], NULL, 10);
    } else if (strcmp(a[0], "org") == 0 && n == 5 &&
               sscanf(line, "%*s %*s %*s %*s %*s %1023s", g1) == 1) {
      if (L->n_orgs == MAX_ORGS) fl_bsrv_die("%s: too many organisations", path);
      org_t *o = &L->orgs[L->n_orgs++];
      o->mspid = fl_strdup(a[1]);
      o->dir = fl_strdup(a[2]);
      o->domain = fl_strdup(a[3]);
      o->gw[0] = fl_strdup(a[4]);
      o->gw[1] = fl_strdup(g1);
    } else {
      fl_bsrv_die("%s: bad line '%s'", path, line);
    }
  }
  fclose(fp);
  if (L->channel == NULL || L->n_orgs == 0 || L->users == 0)
    fl_bsrv_die("%s: needs channel, org and users lines", path);
}

typedef struct cand_s {
  char *id;
  int org;
  uint32_t j;
} cand_t;

static int cmp_cand(const void *a, const void *b) {
  return strcmp(((const cand_t *)a)->id, ((const cand_t *)b)->id);
}

/* ---- lifecycle -------------------------------------------------------------- */

static const fl_bsrv_ops_t ledger_ops;

fl_bsrv_t *fl_bsrv_ledger_new(const char *net_file, uint32_t n_clients) {
  ledger_t *L = fl_calloc(1, sizeof *L);
  L->base.ops = &ledger_ops;
  read_net(L, net_file);
  L->N = n_clients;
  /* Candidates: clients 1.. of each org, spread evenly; then id order. */
  uint32_t per = (n_clients + (uint32_t)L->n_orgs - 1) / (uint32_t)L->n_orgs;
  if (per > L->users)
    fl_bsrv_die("the network has %u clients per organisation, %u needed", L->users, per);
  cand_t *cand = fl_calloc(n_clients, sizeof *cand);
  uint32_t nc = 0;
  for (uint32_t j = 1; nc < n_clients; j++)
    for (int o = 0; o < L->n_orgs && nc < n_clients; o++) {
      cand[nc].id = fl_sprintf("%s:client%u@%s", L->orgs[o].mspid, j, L->orgs[o].domain);
      cand[nc].org = o;
      cand[nc++].j = j;
    }
  qsort(cand, nc, sizeof *cand, cmp_cand);
  if (uv_loop_init(&L->loop) != 0) fl_bsrv_die("uv_loop_init failed");
  if (uv_mutex_init(&L->mu) != 0 || uv_async_init(&L->loop, &L->wake, on_wake) != 0)
    fl_bsrv_die("cannot set up the loop thread's queue");
  L->wake.data = L;
  const char *ev = getenv("FL_BENCH_EARLY");
  L->no_early = ev != NULL && strcmp(ev, "0") == 0;
  L->q = fl_calloc(n_clients + 1, sizeof *L->q);
  L->q2 = fl_calloc(n_clients + 1, sizeof *L->q2);
  L->cl = fl_calloc(n_clients, sizeof *L->cl);
  for (uint32_t k = 0; k < n_clients; k++) {
    const org_t *o = &L->orgs[cand[k].org];
    char *dir = fl_sprintf("%s/users/client%u@%s", o->dir, cand[k].j, o->domain);
    conn_open(L, &L->cl[k], o->mspid, dir, o->gw[cand[k].j % 2]);
    if (strcmp(L->cl[k].client_id, cand[k].id) != 0)
      fl_bsrv_die("%s: client id %s, expected %s", dir, L->cl[k].client_id, cand[k].id);
    fl_free(dir);
    fl_free(cand[k].id);
  }
  fl_free(cand);
  char *adir = fl_sprintf("%s/users/Admin@%s", L->orgs[0].dir, L->orgs[0].domain);
  conn_open(L, &L->admin, L->orgs[0].mspid, adir, L->orgs[0].gw[0]);
  fl_free(adir);
  wait_all(L);
  for (uint32_t k = 0; k <= n_clients; k++) {
    conn_t *cn = k < n_clients ? &L->cl[k] : &L->admin;
    if (cn->conn_st != FL_OK)
      fl_bsrv_die("%s: cannot connect to %s:%u: %s", cn->client_id, cn->host, cn->port,
                  fl_status_str(cn->conn_st));
  }
  return &L->base;
}

static void ledger_end(fl_bsrv_t *s) {
  ledger_t *L = (ledger_t *)s;
  if (!L->in_run) return;
  stop_thread(L);
  wait_all(L); /* early submissions of a round that never ran */
  for (uint32_t k = 0; k < L->N; k++) L->cl[k].early = 0;
  L->n_early = 0;
  L->early_ms = 0;
  fl_free(L->early_upd);
  L->early_upd = NULL;
  fl_bsrv_plain_run_free(L->shadow);
  L->shadow = NULL;
  fl_ml_tensors_free(&L->layout);
  fl_free(L->samples);
  fl_free(L->rows_hash);
  fl_free(L->sh_global);
  fl_free(L->sh_acc);
  fl_free(L->sh_sel);
  L->samples = NULL;
  L->rows_hash = NULL;
  L->sh_global = NULL;
  L->sh_acc = L->sh_sel = NULL;
  L->in_run = 0;
}

static void ledger_free(fl_bsrv_t *s) {
  ledger_t *L = (ledger_t *)s;
  ledger_end(s);
  for (uint32_t k = 0; k < L->N; k++) {
    fl_client_close(L->cl[k].c, on_closed, L);
    L->pending++;
  }
  fl_client_close(L->admin.c, on_closed, L);
  L->pending++;
  wait_all(L);
  uv_close((uv_handle_t *)&L->wake, NULL);
  uv_run(&L->loop, UV_RUN_DEFAULT);
  (void)uv_loop_close(&L->loop);
  uv_mutex_destroy(&L->mu);
  fl_free(L->q);
  fl_free(L->q2);
  for (uint32_t k = 0; k < L->N; k++) conn_free(&L->cl[k]);
  conn_free(&L->admin);
  fl_free(L->cl);
  for (int o = 0; o < L->n_orgs; o++) {
    fl_free(L->orgs[o].mspid);
    fl_free(L->orgs[o].dir);
    fl_free(L->orgs[o].domain);
    fl_free(L->orgs[o].gw[0]);
    fl_free(L->orgs[o].gw[1]);
  }
  fl_free(L->channel);
  fl_free(L);
}

/* Submits (then waits for the commit status) or evaluates args through cn;
 * the caller waits (wait_all). A call that cannot start is finished at once
 * with its status (the loop thread must not die; check_op reports it). */
static fl_status_t call_try(ledger_t *L, conn_t *cn, int submit, const fl_buf_t *args, size_t n,
                            const fl_buf_t *blobs, size_t nb) {
  op_reset(&cn->op, L);
  cn->op.c = cn->c;
  cn->op.t_start = now_ms();
  fl_client_proposal_t p = {.chaincode = FL_MLU_NAME, .args = args, .n_args = n,
                            .blobs = blobs, .n_blobs = nb};
  fl_status_t rc = submit ? fl_client_submit(cn->c, &p, false, on_submitted, &cn->op, NULL)
                          : fl_client_evaluate(cn->c, &p, on_result, &cn->op);
  if (rc != FL_OK) {
    cn->op.st = rc;
    snprintf(cn->op.err, sizeof cn->op.err, "%.*s could not be started", (int)args[0].len,
             (const char *)args[0].data);
    cn->op.done = 1;
    return rc;
  }
  L->pending++;
  return FL_OK;
}
static void call(ledger_t *L, conn_t *cn, int submit, const fl_buf_t *args, size_t n,
                 const fl_buf_t *blobs, size_t nb) {
  fl_status_t rc = call_try(L, cn, submit, args, n, blobs, nb);
  if (rc != FL_OK) fl_bsrv_die("%.*s: %s", (int)args[0].len, (const char *)args[0].data,
                               fl_status_str(rc));
}

/* Builds client k's SubmitUpdate of `round` from its update u exactly as
 * fedledger-edge does (fl_edge_submission_build: blob, SHA-256, the client's
 * signature, data-batch hash) into cn->sub and counts its bytes. Uses no
 * loop state (the caller's thread may run it while the loop thread runs).
 * Returns 0 when u is not finite: it cannot be sent (cn->skip). */
static int prepare(ledger_t *L, uint32_t k, uint32_t round, const float *u) {
  conn_t *cn = &L->cl[k];
  size_t P = L->layout.n_values;
  fl_edge_submission_clear(&cn->sub);
  memcpy(L->layout.values, u, P * sizeof(float));
  cn->skip = 0;
  cn->resent = 0;
  cn->bytes = 0;
  for (size_t j = 0; j < P && !cn->skip; j++) cn->skip = !isfinite(L->layout.values[j]);
  if (cn->skip) return 0;
  uint8_t dh[32];
  fl_edge_data_hash(L->rows_hash + 32 * (size_t)k, fl_wall_ms(), cn->client_id, dh);
  fl_status_t rc = fl_edge_submission_build(fl_client_identity_signer(cn->id), L->task, round,
                                            &L->layout, (uint64_t)L->samples[k], dh, &cn->sub);
  if (rc != FL_OK) fl_bsrv_die("client %u: cannot build its update: %s", k, fl_status_str(rc));
  fl_buf_t args[7];
  fl_edge_submission_args(&cn->sub, L->task, args);
  for (int i = 0; i < 7; i++) cn->bytes += (double)args[i].len;
  cn->bytes += (double)cn->sub.blob.len + (double)fl_client_identity_creator(cn->id).len;
  return 1;
}

/* Sends the submission prepare() built (the loop's owner only). */
static fl_status_t send_update(ledger_t *L, conn_t *cn) {
  fl_buf_t args[7];
  fl_edge_submission_args(&cn->sub, L->task, args);
  fl_buf_t blob = fl_sbuf_view(&cn->sub.blob);
  return call_try(L, cn, 1, args, 7, &blob, 1);
}

/* ---- the loop thread (pipelining) ------------------------------------------ */

/* Sends every queued early submission (the loop's owner only). */
static void drain(ledger_t *L) {
  uv_mutex_lock(&L->mu);
  uint32_t n = L->nq;
  memcpy(L->q2, L->q, n * sizeof *L->q);
  L->nq = 0;
  uv_mutex_unlock(&L->mu);
  for (uint32_t i = 0; i < n; i++) (void)send_update(L, &L->cl[L->q2[i]]);
}

static void on_wake(uv_async_t *h) { drain(h->data); }

static void loop_thread(void *arg) {
  ledger_t *L = arg;
  for (;;) {
    uv_mutex_lock(&L->mu);
    int stop = L->stop;
    uv_mutex_unlock(&L->mu);
    if (stop) break;
    uv_run(&L->loop, UV_RUN_ONCE);
  }
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
    L->thr_cpu_ms += (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Takes the loop back from the loop thread (if it runs) and sends what is
 * still queued. The ops it started keep going under wait_all. */
static void stop_thread(ledger_t *L) {
  if (!L->thr_on) return;
  uv_mutex_lock(&L->mu);
  L->stop = 1;
  uv_mutex_unlock(&L->mu);
  if (uv_async_send(&L->wake) != 0) fl_bsrv_die("uv_async_send failed");
  if (uv_thread_join(&L->thr) != 0) fl_bsrv_die("cannot join the loop thread");
  L->thr_on = 0;
  drain(L);
}

static void ledger_submit_early(fl_bsrv_t *s, uint32_t round, uint32_t k, const float *u) {
  ledger_t *L = (ledger_t *)s;
  if (L->no_early) return; /* FL_BENCH_EARLY=0: everything in ledger_round */
  double t = now_ms();
  if (!L->in_run) fl_bsrv_die("fl_bsrv_submit_early outside a run");
  if (k >= L->N) fl_bsrv_die("fl_bsrv_submit_early: client %u of %u", k, L->N);
  if (L->n_early > 0 && round != L->early_round)
    fl_bsrv_die("fl_bsrv_submit_early: round %u while round %u is open", round, L->early_round);
  conn_t *cn = &L->cl[k];
  if (cn->early) fl_bsrv_die("fl_bsrv_submit_early: client %u twice in round %u", k, round);
  if (L->n_early == 0) L->early_t0 = t;
  L->early_round = round;
  L->n_early++;
  cn->early = 1;
  size_t P = L->layout.n_values;
  memcpy(L->early_upd + (size_t)k * P, u, P * sizeof(float));
  /* cn's op of the previous round is finished and not queued: the loop
   * thread does not touch it until k is in the queue. */
  op_reset(&cn->op, L);
  if (prepare(L, k, round, u)) {
    if (!L->thr_on) {
      L->stop = 0; /* the thread is not running: no lock needed */
      if (uv_thread_create(&L->thr, loop_thread, L) != 0)
        fl_bsrv_die("cannot start the loop thread");
      L->thr_on = 1;
    }
    uv_mutex_lock(&L->mu);
    L->q[L->nq++] = k;
    uv_mutex_unlock(&L->mu);
    if (uv_async_send(&L->wake) != 0) fl_bsrv_die("uv_async_send failed");
  }
  L->early_ms += now_ms() - t;
}

/* A transaction that certainly did not take effect and may succeed when
 * sent again: the endorsers disagreed or did not know the round yet (a peer
 * of the other organisation had not committed the previous block), or it
 * was invalidated at commit by a conflict. */
static int retryable(const op_t *o) {
  return o->st == FL_ECONFLICT || o->st == FL_AGAIN ||
         (o->st == FL_NOTFOUND && o->cc_status == 404 && !o->committed) ||
         (o->st == FL_ETIMEDOUT && o->t_ordered == 0);
}

/* Handed to the orderers, then no commit status in time: it may or may not
 * be on the ledger. */
static int lost(const op_t *o) { return o->st == FL_ETIMEDOUT && o->t_ordered > 0; }

/* Looks a lost transaction up with the query q (args, n): found = it was
 * committed and the query's answer (the record) stands for its response;
 * 404 = it was not, send it again (FL_AGAIN). Starts the query; settle()
 * decides once it is done. */
static void probe(ledger_t *L, conn_t *cn, const fl_buf_t *q, size_t n) {
  cn->probing = 1;
  call(L, cn, 0, q, n, NULL, 0);
}
static void settle(conn_t *cn) {
  if (!cn->probing) return;
  cn->probing = 0;
  op_t *o = &cn->op;
  if (o->st == FL_OK) {
    o->committed = true;
    o->code = FL_CLIENT_CODE_VALID;
  } else if (o->st == FL_NOTFOUND) {
    o->st = FL_AGAIN;
    cn->resent = 1;
  }
  fprintf(stderr, "fl_bench: %s: a transaction without commit status was %s\n", cn->client_id,
          o->st == FL_OK ? "found committed" : "not on the ledger: sending it again");
}

#define MAX_ATTEMPTS 400
#define RETRY_SLEEP_US 2000

static void check_op(const conn_t *cn, const char *what, int committed) {
  const op_t *o = &cn->op;
  if (o->st != FL_OK)
    fl_bsrv_die("%s by %s: %s (%s)", what, cn->client_id, fl_status_str(o->st), o->err);
  if (committed && (!o->committed || o->code != FL_CLIENT_CODE_VALID))
    fl_bsrv_die("%s by %s: committed with %s", what, cn->client_id,
                fl_client_code_name(o->code));
}

static void ledger_begin(fl_bsrv_t *s, const fl_bsrv_task_t *t) {
  ledger_t *L = (ledger_t *)s;
  ledger_end(s);
  if (t->n_clients != L->N) fl_bsrv_die("the ledger server was made for %u clients", L->N);
  if (t->filter_rule != FL_BSRV_FILTER_LEDGER)
    fl_bsrv_die("the ledger applies mlupdate's filter rule only (--filter-rule ledger)");
  L->in_run = 1;
  fl_ml_tensors_copy(&L->layout, t->model);
  L->samples = fl_memdup(t->samples, L->N * sizeof(double));
  L->rows_hash = fl_calloc(L->N, 32);
  if (t->rows_hash) memcpy(L->rows_hash, t->rows_hash, (size_t)L->N * 32);
  L->shadow = fl_bsrv_plain_run_new(t);
  L->sh_global = fl_malloc((L->layout.n_values + 1) * sizeof(float));
  L->sh_acc = fl_malloc(L->N + 1);
  L->sh_sel = fl_malloc(L->N + 1);
  L->early_upd = fl_malloc(((size_t)L->N * L->layout.n_values + 1) * sizeof(float));
  snprintf(L->task, sizeof L->task, "b%ld-%" PRIu64, (long)getpid(), ++L->n_tasks);
  /* CreateTask: the run's initial model, its rule and filter. min_updates 1
   * and round_ms 1: the runner (as keeper) may close whenever it wants,
   * which is once every submission of the round is committed. reject_limit
   * 1: no automatic revocation (plain FL has none). */
  fl_sbuf_t blob = {0}, def = {0};
  if (fl_ml_blob_encode(t->model, &blob) != FL_OK) fl_bsrv_die("initial model not finite");
  uint8_t h[32];
  fl_sha256(blob.data, blob.len, h);
  fl_sbuf_append_str(&def, "{\"arch\":");
  fl_mlu_jw_str(&def, t->label ? t->label : "fl_bench");
  fl_sbuf_append_str(&def, ",\"rule\":");
  fl_mlu_jw_str(&def, fl_ml_rule_name(t->rule));
  fl_sbuf_printf(&def, ",\"f\":%u,\"clip_norm\":", t->f);
  fl_mlu_jw_num(&def, t->clip_norm);
  fl_sbuf_append_str(&def, ",\"max_norm_z\":");
  fl_mlu_jw_num(&def, t->filter.max_norm_z);
  fl_sbuf_append_str(&def, ",\"min_cosine\":");
  fl_mlu_jw_num(&def, t->filter.min_cosine);
  fl_sbuf_append_str(&def, ",\"max_norm\":");
  fl_mlu_jw_num(&def, t->filter.max_norm);
  fl_sbuf_append_str(&def, ",\"collusion\":");
  fl_mlu_jw_num(&def, t->collusion);
  fl_sbuf_append_str(&def, ",\"median_cosine\":");
  fl_mlu_jw_num(&def, t->median_cosine);
  fl_sbuf_printf(&def, ",\"norm_window\":%u,\"min_updates\":1,\"round_ms\":1,"
                       "\"reject_limit\":1,\"init_hash\":",
                 t->norm_window);
  fl_mlu_jw_hex(&def, h, 32);
  fl_sbuf_append_str(&def, "}");
  fl_buf_t args[3] = {FL_BUF("CreateTask", 10), FL_BUF(L->task, strlen(L->task)),
                      fl_sbuf_view(&def)};
  fl_buf_t b = fl_sbuf_view(&blob);
  call(L, &L->admin, 1, args, 3, &b, 1);
  wait_all(L);
  check_op(&L->admin, "CreateTask", 1);
  fl_sbuf_free(&blob);
  fl_sbuf_free(&def);
}

/* The "updates" of a model record: selected[k] for the clients listed. */
static void parse_model(ledger_t *L, fl_buf_t json, uint8_t hash[32], uint8_t *selected) {
  fl_mlu_json_t *j = NULL;
  if (fl_mlu_json_parse(json, &j) != FL_OK) fl_bsrv_die("model record: not JSON");
  const char *hx = fl_mlu_json_str(fl_mlu_json_get(j, "hash"));
  if (hx == NULL || strlen(hx) != 64 || fl_hex_decode(hx, 64, hash, 32) != 32)
    fl_bsrv_die("model record: bad hash");
  const fl_mlu_json_t *ups = fl_mlu_json_get(j, "updates");
  if (ups == NULL || ups->kind != FL_MLU_JARR) fl_bsrv_die("model record: no updates");
  if (selected) {
    memset(selected, 0, L->N);
    uint32_t k = 0;
    for (size_t i = 0; i < ups->n; i++) {
      const char *id = fl_mlu_json_str(fl_mlu_json_get(&ups->items[i], "client"));
      const fl_mlu_json_t *sel = fl_mlu_json_get(&ups->items[i], "selected");
      if (id == NULL || sel == NULL || sel->kind != FL_MLU_JBOOL)
        fl_bsrv_die("model record: bad update entry");
      while (k < L->N && strcmp(L->cl[k].client_id, id) != 0) k++;
      if (k == L->N) fl_bsrv_die("model record: unknown or unordered client %s", id);
      selected[k] = sel->b;
    }
  }
  fl_mlu_json_free(j);
}

static void ledger_round(fl_bsrv_t *s, fl_bsrv_round_t *r) {
  ledger_t *L = (ledger_t *)s;
  uint32_t N = L->N;
  size_t P = L->layout.n_values;
  double t0 = now_ms();
  r->bytes = 0;
  /* 1. every client submits its signed update: the early ones are on their
   * way already (the loop thread sent them); take the loop back and send
   * the rest. */
  if (L->n_early > 0 && L->early_round != r->round)
    fl_bsrv_die("round %u: early submissions were for round %u", r->round, L->early_round);
  stop_thread(L);
  uint32_t n_early = L->n_early, early_done = 0;
  double retries = 0;
  for (uint32_t k = 0; k < N; k++) {
    conn_t *cn = &L->cl[k];
    if (cn->early) {
      if (memcmp(L->early_upd + (size_t)k * P, r->updates + (size_t)k * P, P * sizeof(float)))
        fl_bsrv_die("round %u: client %u's update changed after fl_bsrv_submit_early", r->round,
                    k);
      early_done += cn->op.done;
    } else {
      op_reset(&cn->op, L);
      if (prepare(L, k, r->round, r->updates + (size_t)k * P) && send_update(L, cn) != FL_OK)
        fl_bsrv_die("SubmitUpdate by %s: %s", cn->client_id, cn->op.err);
    }
    r->bytes += cn->bytes;
  }
  wait_all(L);
  char round_s[24];
  snprintf(round_s, sizeof round_s, "%u", r->round);
  for (int attempt = 1;; attempt++) {
    uint32_t nlost = 0;
    for (uint32_t k = 0; k < N; k++) {
      conn_t *cn = &L->cl[k];
      if (!lost(&cn->op)) continue;
      fl_buf_t q[4] = {FL_BUF("GetUpdate", 9), FL_BUF(L->task, strlen(L->task)),
                       FL_BUF(round_s, strlen(round_s)),
                       FL_BUF(cn->client_id, strlen(cn->client_id))};
      probe(L, cn, q, 4);
      nlost++;
    }
    if (nlost) {
      wait_all(L);
      for (uint32_t k = 0; k < N; k++) settle(&L->cl[k]);
    }
    uint32_t again = 0;
    for (uint32_t k = 0; k < N; k++) again += retryable(&L->cl[k].op);
    if (again == 0 || attempt == MAX_ATTEMPTS) break;
    sleep_us(RETRY_SLEEP_US);
    for (uint32_t k = 0; k < N; k++) {
      conn_t *cn = &L->cl[k];
      if (!retryable(&cn->op)) continue;
      fl_buf_t args[7];
      fl_edge_submission_args(&cn->sub, L->task, args);
      fl_buf_t blob = fl_sbuf_view(&cn->sub.blob);
      call(L, cn, 1, args, 7, &blob, 1);
      retries++;
    }
    wait_all(L);
  }
  /* A lookup can miss a transaction that is still being ordered; its second
   * copy is then recorded as a DUPLICATE attempt while the first one
   * counts. The first record is the one that counts: read it. */
  uint32_t ndup = 0;
  for (uint32_t k = 0; k < N; k++) {
    conn_t *cn = &L->cl[k];
    fl_edge_update_rec_t rec;
    char err[256];
    if (!cn->resent || cn->op.st != FL_OK ||
        fl_edge_update_rec_parse(fl_sbuf_view(&cn->op.payload), &rec, err, sizeof err) != FL_OK ||
        rec.reason_code != FL_MLU_DUPLICATE)
      continue;
    fl_buf_t q[4] = {FL_BUF("GetUpdate", 9), FL_BUF(L->task, strlen(L->task)),
                     FL_BUF(round_s, strlen(round_s)),
                     FL_BUF(cn->client_id, strlen(cn->client_id))};
    call(L, cn, 0, q, 4, NULL, 0);
    cn->probing = 2;
    ndup++;
  }
  if (ndup) {
    wait_all(L);
    for (uint32_t k = 0; k < N; k++) {
      conn_t *cn = &L->cl[k];
      if (cn->probing != 2) continue;
      cn->probing = 0;
      cn->op.committed = cn->op.st == FL_OK; /* the record read is a committed one */
      cn->op.code = FL_CLIENT_CODE_VALID;
    }
  }
  double t_ord = 0, t_end = 0;
  r->n_accepted = 0;
  for (uint32_t k = 0; k < N; k++) {
    conn_t *cn = &L->cl[k];
    if (cn->skip) {
      r->accepted[k] = 0;
      continue;
    }
    check_op(cn, "SubmitUpdate", 1);
    if (cn->op.t_ordered - t0 > t_ord) t_ord = cn->op.t_ordered - t0;
    if (cn->op.t_end - t0 > t_end) t_end = cn->op.t_end - t0;
    fl_edge_update_rec_t rec;
    char err[256];
    if (fl_edge_update_rec_parse(fl_sbuf_view(&cn->op.payload), &rec, err, sizeof err) != FL_OK)
      fl_bsrv_die("update record of %s: %s", cn->client_id, err);
    r->accepted[k] = rec.accepted;
    r->n_accepted += rec.accepted;
  }
  double t1 = now_ms();
  /* 2. CloseRound, as the round keeper. A keeper acts on what its own peer
   * has committed: the clients' commit statuses came from their gateways,
   * which may be ahead of the keeper's, and a CloseRound endorsed there
   * before the round's last update block would scan fewer updates than
   * the block that validates it (PHANTOM_READ_CONFLICT, then a retry). So
   * first the commit status, on the keeper's gateway, of the update in
   * the highest block. */
  uint32_t last = N;
  for (uint32_t k = 0; k < N; k++)
    if (!L->cl[k].skip && L->cl[k].op.committed && L->cl[k].op.tx_id[0] &&
        (last == N || L->cl[k].op.block > L->cl[last].op.block))
      last = k;
  if (last < N) {
    op_reset(&L->admin.op, L);
    L->admin.op.c = L->admin.c;
    if (fl_client_commit_status(L->admin.c, L->cl[last].op.tx_id, on_committed,
                                &L->admin.op) != FL_OK)
      fl_bsrv_die("CommitStatus on the keeper's gateway: cannot start");
    L->pending++;
    wait_all(L);
    check_op(&L->admin, "CommitStatus of the round's last update", 1);
  }
  double t_keeper = now_ms() - t1;
  fl_buf_t cargs[3] = {FL_BUF("CloseRound", 10), FL_BUF(L->task, strlen(L->task)),
                       FL_BUF(round_s, strlen(round_s))};
  fl_buf_t gargs[3] = {FL_BUF("GetModel", 8), FL_BUF(L->task, strlen(L->task)),
                       FL_BUF(round_s, strlen(round_s))};
  for (int attempt = 1;; attempt++) {
    call(L, &L->admin, 1, cargs, 3, NULL, 0);
    wait_all(L);
    if (lost(&L->admin.op)) {
      probe(L, &L->admin, gargs, 3); /* the model record is CloseRound's response */
      wait_all(L);
      settle(&L->admin);
    }
    if (!retryable(&L->admin.op) || attempt == MAX_ATTEMPTS) break;
    retries++;
    sleep_us(RETRY_SLEEP_US);
  }
  check_op(&L->admin, "CloseRound", 1);
  double c_ord = L->admin.op.t_ordered - t1;
  r->bytes += (double)(10 + strlen(L->task) + strlen(round_s));
  uint8_t h_close[32], h_model[32];
  parse_model(L, fl_sbuf_view(&L->admin.op.payload), h_close, r->selected);
  double t2 = now_ms();
  /* 3. read back: the committed model record and the blob it names. */
  call(L, &L->admin, 0, gargs, 3, NULL, 0);
  wait_all(L);
  check_op(&L->admin, "GetModel", 0);
  parse_model(L, fl_sbuf_view(&L->admin.op.payload), h_model, NULL);
  op_reset(&L->admin.op, L);
  if (fl_client_get_blob(L->admin.c, h_model, on_blob, &L->admin.op) != FL_OK)
    fl_bsrv_die("GetBlob: cannot start");
  L->pending++;
  wait_all(L);
  check_op(&L->admin, "GetBlob", 0);
  uint8_t h_blob[32];
  fl_buf_t mb = fl_sbuf_view(&L->admin.op.payload);
  fl_sha256(mb.data, mb.len, h_blob);
  fl_ml_tensors_t model;
  if (memcmp(h_close, h_model, 32) != 0 || memcmp(h_model, h_blob, 32) != 0) {
    s->hash_failures++;
    fl_bsrv_die("round %u: model hash of CloseRound, GetModel and SHA-256(GetBlob) differ",
                r->round);
  }
  if (fl_edge_model_check(mb, h_model, &L->layout, &model) != FL_OK)
    fl_bsrv_die("round %u: the model blob does not decode to the task's layout", r->round);
  double t3 = now_ms();
  /* The shadow plain server on the same inputs. */
  memcpy(L->sh_global, r->global, P * sizeof(float));
  fl_bsrv_round_t pr = {.round = r->round, .updates = r->updates, .ag = r->ag,
                        .global = L->sh_global, .accepted = L->sh_acc, .selected = L->sh_sel};
  fl_bsrv_plain_run_round(L->shadow, &pr);
  int same = memcmp(L->sh_acc, r->accepted, N) == 0 && memcmp(L->sh_sel, r->selected, N) == 0 &&
             memcmp(L->sh_global, model.values, P * sizeof(float)) == 0;
  if (!same) {
    s->mismatches++;
    fprintf(stderr, "fl_bench: round %u of task %s: the ledger's result differs from the plain "
                    "server's (accepted %u vs %u)\n",
            r->round, L->task, r->n_accepted, pr.n_accepted);
  }
  memcpy(r->global, model.values, P * sizeof(float));
  fl_ml_tensors_free(&model);
  r->server_ms = t3 - t0 + L->early_ms;
  r->agg_ms = r->server_ms;
  double early_ms = L->early_ms, early_t0 = L->early_t0, thr_cpu = L->thr_cpu_ms;
  L->thr_cpu_ms = 0;
  for (uint32_t k = 0; k < N; k++) L->cl[k].early = 0;
  L->n_early = 0;
  L->early_ms = 0;
  r->plain_ms = pr.server_ms;
  r->plain_bytes = pr.bytes;
  if (getenv("FL_BENCH_LEDGER_TRACE")) {
    if (n_early > 0)
      fprintf(stderr,
              "ledger round %u: early %u/%u (first sent %.1f ms before the server part, "
              "%u committed by then, %.1f ms building them, loop thread CPU %.1f ms); ",
              r->round, n_early, N, t0 - early_t0, early_done, early_ms, thr_cpu);
    else
      fprintf(stderr, "ledger round %u: ", r->round);
    fprintf(stderr,
            "updates endorsed+sent %.1f ms, committed %.1f ms; close (keeper's commit "
            "status %.1f ms) endorsed+sent %.1f ms, committed %.1f ms; read back %.1f ms; "
            "retries %.0f\n",
            t_ord, t_end, t_keeper, c_ord, t2 - t1, t3 - t2, retries);
  }
  L->retries += retries;
}

static const fl_bsrv_ops_t ledger_ops = {ledger_begin, ledger_round, ledger_end, ledger_free,
                                         ledger_submit_early};
