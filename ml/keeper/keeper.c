/* SPDX-License-Identifier: Apache-2.0
 *
 * keeper.c: the round keeper (keeper.h): its decision function, settings and
 * loop.
 */
#include "ml/keeper/keeper.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/mlupdate.h"
#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "ml/edge/ledger.h"

#define LOGM "keeper"
#define OFF(f) offsetof(fl_keeper_cfg_t, f)

fl_keeper_action_t fl_keeper_decide(const fl_keeper_view_t *v, uint64_t now_ms, uint64_t grace_ms,
                                    uint64_t *wait_ms) {
  if (wait_ms) *wait_ms = 0;
  if (!v->open) return FL_KEEPER_CLOSED;
  uint64_t need = v->min_updates > 0 ? v->min_updates : 1;
  if (v->accepted >= need) return FL_KEEPER_CLOSE_ENOUGH;
  uint64_t due = v->deadline_ts > UINT64_MAX - grace_ms ? UINT64_MAX : v->deadline_ts + grace_ms;
  if (now_ms >= due) return FL_KEEPER_CLOSE_DEADLINE;
  if (wait_ms) *wait_ms = due - now_ms;
  return FL_KEEPER_WAIT;
}

const char *fl_keeper_action_name(fl_keeper_action_t a) {
  switch (a) {
  case FL_KEEPER_WAIT: return "wait";
  case FL_KEEPER_CLOSE_ENOUGH: return "close-enough";
  case FL_KEEPER_CLOSE_DEADLINE: return "close-deadline";
  case FL_KEEPER_CLOSED: return "closed";
  }
  return "unknown";
}

/* clang-format off */
static const fl_edge_opt_t keeper_table[] = {
  {"identity.mspid", "mspid", FL_EDGE_OPT_STR, OFF(mspid), NULL, 0, 0, 0, 0, "MSP id of the keeper's organisation"},
  {"identity.msp_dir", "msp-dir", FL_EDGE_OPT_STR, OFF(msp_dir), NULL, 0, 0, 0, 0, "MSP folder of an admin or peer identity"},
  {"identity.tls_dir", "tls-dir", FL_EDGE_OPT_STR, OFF(tls_dir), NULL, 0, 0, 0, 0, "TLS folder (client.crt or server.crt, ca.crt)"},
  {"identity.tls_ca", "tls-ca", FL_EDGE_OPT_STR, OFF(tls_ca), "", 0, 0, 0, 0, "extra trusted TLS CA file"},
  {"gateway.endpoint", "gateway", FL_EDGE_OPT_STR, OFF(gateway), NULL, 0, 0, 0, 0, "gateway peer HOST:PORT"},
  {"gateway.server_name", "server-name", FL_EDGE_OPT_STR, OFF(server_name), "", 0, 0, 0, 0, "name in the peer's TLS certificate (default: host)"},
  {"gateway.channel", "channel", FL_EDGE_OPT_STR, OFF(channel), "fedledger", 0, 0, 0, 0, "channel"},
  {"gateway.call_timeout", "call-timeout", FL_EDGE_OPT_MS, OFF(call_timeout_ms), "30s", 100, 3600000, 0, 0, "Endorse/Evaluate timeout"},
  {"gateway.commit_timeout", "commit-timeout", FL_EDGE_OPT_MS, OFF(commit_timeout_ms), "60s", 100, 3600000, 0, 0, "commit status wait"},
  {"gateway.backoff_min", "backoff-min", FL_EDGE_OPT_MS, OFF(backoff_min_ms), "200ms", 1, 600000, 0, 0, "first reconnect delay"},
  {"gateway.backoff_max", "backoff-max", FL_EDGE_OPT_MS, OFF(backoff_max_ms), "5s", 1, 3600000, 0, 0, "longest reconnect delay"},
  {"events.endpoint", "events", FL_EDGE_OPT_STR, OFF(events), "", 0, 0, 0, 0, "peer events URL; empty = poll only"},
  {"events.poll", "poll", FL_EDGE_OPT_MS, OFF(poll_ms), "1s", 50, 600000, 0, 0, "re-check interval without events"},
  {"task", "task", FL_EDGE_OPT_STR, OFF(task), NULL, 0, 0, 0, 0, "FL task id"},
  {"keeper.grace", "grace", FL_EDGE_OPT_MS, OFF(grace_ms), "500ms", 0, 3600000, 0, 0, "margin after the deadline before closing"},
  {"rounds", "rounds", FL_EDGE_OPT_U64, OFF(rounds), "0", 0, UINT64_MAX, 0, 0, "stop after N closed rounds (0 = never)"},
  {"log", "log", FL_EDGE_OPT_STR, OFF(log), "info", 0, 0, 0, 0, "log spec"},
  {NULL, NULL, 0, 0, NULL, 0, 0, 0, 0, NULL},
};
/* clang-format on */

const fl_edge_opt_t *fl_keeper_cfg_table(void) { return keeper_table; }

void fl_keeper_cfg_free(fl_keeper_cfg_t *c) { fl_edge_opts_free(keeper_table, c); }

fl_status_t fl_keeper_cfg_load(int argc, char *const *argv, fl_keeper_cfg_t *c, bool *help,
                               char **err) {
  memset(c, 0, sizeof *c);
  *err = NULL;
  const char *path = fl_edge_opts_config_arg(argc, argv, help);
  if (*help) return FL_OK;
  fl_edge_opts_src_t src = {0};
  fl_status_t rc = fl_edge_opts_load(keeper_table, path, argc, argv, c, &src, err);
  if (rc != FL_OK) return rc;
  char host[256];
  uint16_t port;
  const char *bad = NULL, *what = NULL, *val = NULL;
  if (fl_edge_parse_endpoint(c->gateway, host, sizeof host, &port) < 0) {
    bad = "gateway.endpoint", what = "expected HOST:PORT", val = c->gateway;
  } else if (!fl_mlu_task_id_ok(c->task, strlen(c->task))) {
    bad = "task", what = "expected 1..64 bytes of [A-Za-z0-9._-]", val = c->task;
  } else if (c->backoff_max_ms < c->backoff_min_ms) {
    bad = "gateway.backoff_max", what = "must not be below gateway.backoff_min", val = "";
  } else if (fl_log_configure(c->log) < 0) {
    bad = "log", what = "expected a log spec such as info or warn,keeper=debug", val = c->log;
  }
  if (bad != NULL) {
    const char *w = fl_edge_opts_where(keeper_table, &src, bad);
    *err = strchr(w, ':') != NULL ? fl_sprintf("%s: %s, got '%s'", w, what, val)
                                  : fl_sprintf("%s (%s): %s, got '%s'", w, bad, what, val);
    fl_edge_opts_src_free(&src);
    fl_keeper_cfg_free(c);
    return FL_ECONFIG;
  }
  fl_edge_opts_src_free(&src);
  return FL_OK;
}

/* Counts the round's accepted updates (ListUpdates). */
static fl_status_t count_accepted(fl_edge_session_t *s, const char *task, uint64_t round,
                                  uint64_t *accepted, uint64_t *records) {
  char rs[24];
  snprintf(rs, sizeof rs, "%" PRIu64, round);
  fl_buf_t a[] = {FL_BUF_STR("ListUpdates"), FL_BUF_STR(task), FL_BUF_STR(rs)};
  fl_client_result_t r;
  fl_status_t st = fl_edge_session_evaluate(s, a, 3, &r);
  if (st == FL_OK) st = fl_edge_count_updates(r.payload, accepted, records);
  fl_client_result_clear(&r);
  return st;
}

typedef enum close_e { CLOSE_DONE, CLOSE_AGAIN, CLOSE_RETRY, CLOSE_LATER, CLOSE_FATAL } close_t;

static close_t close_round(fl_edge_session_t *s, const char *task, uint64_t round,
                           fl_keeper_action_t why) {
  char rs[24];
  snprintf(rs, sizeof rs, "%" PRIu64, round);
  fl_buf_t a[] = {FL_BUF_STR("CloseRound"), FL_BUF_STR(task), FL_BUF_STR(rs)};
  fl_client_result_t r;
  uint64_t t0 = fl_mono_ns();
  fl_status_t st = fl_edge_session_submit(s, a, 3, NULL, 0, &r);
  close_t out;
  if (st == FL_OK) {
    FL_INFO(LOGM, "round closed task=%s round=%s why=%s tx=%s block=%" PRIu64 " ms=%.1f", task, rs,
            fl_keeper_action_name(why), r.tx_id, r.block_number,
            (double)(fl_mono_ns() - t0) / 1e6);
    out = CLOSE_DONE;
  } else if (st == FL_ECONFLICT) {
    /* Another keeper's CloseRound (or a late submission to this round) won
     * the block: harmless, the round record says which. */
    FL_INFO(LOGM,
            "CloseRound invalidated (%s): another keeper closed it or a submission raced it "
            "task=%s round=%s tx=%s",
            fl_client_code_name(r.code), task, rs, r.tx_id);
    out = CLOSE_AGAIN;
  } else if (fl_edge_status_transport(st)) {
    FL_WARN(LOGM, "CloseRound not confirmed status=%s err=\"%s\"", fl_status_name(st), r.error);
    out = CLOSE_RETRY;
  } else if (st == FL_EPERM) {
    FL_ERROR(LOGM, "this identity may not close rounds (needs role admin or peer): %s",
             r.cc_message);
    out = CLOSE_FATAL;
  } else {
    /* 400 "not ready": e.g. our clock is behind the chaincode's deadline
     * check, or an accepted update we counted was not committed yet. */
    FL_INFO(LOGM, "CloseRound refused for now task=%s round=%s status=%s msg=\"%s\"", task, rs,
            fl_status_name(st), r.cc_message);
    out = CLOSE_LATER;
  }
  fl_client_result_clear(&r);
  return out;
}

fl_status_t fl_keeper_run(const fl_keeper_cfg_t *c, volatile sig_atomic_t *stop) {
  fl_edge_session_t *s = NULL;
  fl_edge_task_t task = {0};
  char *err = NULL;
  fl_edge_conn_t conn = {.mspid = c->mspid,
                         .msp_dir = c->msp_dir,
                         .tls_dir = c->tls_dir,
                         .tls_ca = c->tls_ca,
                         .gateway = c->gateway,
                         .server_name = c->server_name,
                         .events = c->events,
                         .channel = c->channel,
                         .call_timeout_ms = c->call_timeout_ms,
                         .commit_timeout_ms = c->commit_timeout_ms,
                         .backoff_min_ms = c->backoff_min_ms,
                         .backoff_max_ms = c->backoff_max_ms,
                         .stop = stop};
  fl_status_t rc = fl_edge_session_open(&conn, &s, &err);
  if (rc != FL_OK) {
    FL_ERROR(LOGM, "identity or connection settings: %s", err ? err : fl_status_str(rc));
    fl_free(err);
    return FL_ECONFIG;
  }
  FL_INFO(LOGM, "keeper starting identity=%s gateway=%s task=%s", fl_edge_session_client_id(s),
          c->gateway, c->task);
  unsigned tries = 0;
  for (;;) {
    char e[256];
    fl_status_t st = fl_edge_get_task(s, c->task, &task, e, sizeof e);
    if (st == FL_OK) break;
    if (st == FL_NOTFOUND || fl_edge_status_transport(st)) {
      if (st == FL_NOTFOUND && tries++ % 10 == 0)
        FL_INFO(LOGM, "waiting for the task to be created task=%s", c->task);
      if (!(st == FL_NOTFOUND ? fl_edge_session_sleep(s, c->poll_ms) : fl_edge_session_backoff(s)))
        goto out;
      continue;
    }
    FL_ERROR(LOGM, "cannot read the task task=%s status=%s err=\"%s\"", c->task, fl_status_name(st),
             e);
    rc = st;
    goto out;
  }
  FL_INFO(LOGM, "task task=%s min_updates=%" PRIu64 " round_ms=%" PRIu64, task.task,
          task.min_updates, task.round_ms);
  /* Rounds closed since start (by this keeper or any other) = the open
   * round now minus the open round at start. */
  uint64_t hint = 0, start = UINT64_MAX, closed = 0;
  while ((c->rounds == 0 || closed < c->rounds) && !fl_edge_session_stopped(s)) {
    fl_edge_round_t r;
    fl_status_t st = fl_edge_find_round(s, task.task, hint, &r);
    if (st != FL_OK) {
      if (!fl_edge_session_backoff(s)) break;
      continue;
    }
    hint = r.round;
    if (start == UINT64_MAX) start = r.round;
    closed = r.round - start + (r.open ? 0 : 1);
    if (c->rounds != 0 && closed >= c->rounds) break;
    uint64_t accepted = 0, records = 0;
    if (r.open && (st = count_accepted(s, task.task, r.round, &accepted, &records)) != FL_OK) {
      if (!fl_edge_session_backoff(s)) break;
      continue;
    }
    fl_keeper_view_t v = {.open = r.open, .accepted = accepted, .min_updates = task.min_updates,
                          .deadline_ts = r.deadline_ts};
    uint64_t wait = 0;
    fl_keeper_action_t act = fl_keeper_decide(&v, fl_wall_ms(), c->grace_ms, &wait);
    FL_DEBUG(LOGM, "round task=%s round=%" PRIu64 " accepted=%" PRIu64 " records=%" PRIu64
                   " action=%s",
             task.task, r.round, accepted, records, fl_keeper_action_name(act));
    if (act == FL_KEEPER_CLOSE_ENOUGH || act == FL_KEEPER_CLOSE_DEADLINE) {
      FL_INFO(LOGM, "closing task=%s round=%" PRIu64 " accepted=%" PRIu64 " min=%" PRIu64 " why=%s",
              task.task, r.round, accepted, task.min_updates, fl_keeper_action_name(act));
      close_t cr = close_round(s, task.task, r.round, act);
      if (cr == CLOSE_FATAL) {
        rc = FL_ECONFIG;
        goto out;
      }
      if (cr == CLOSE_DONE) {
        hint = r.round + 1;
        continue;
      }
      /* CLOSE_AGAIN: look at the round again right away (closed by someone
       * else, or still open after a conflict with a late submission). */
      if (cr == CLOSE_RETRY && !fl_edge_session_backoff(s)) break;
      if (cr == CLOSE_LATER && !fl_edge_session_sleep(s, c->poll_ms)) break;
      continue;
    }
    if (act == FL_KEEPER_CLOSED) {
      /* CloseRound writes r CLOSED and r+1 OPEN together: a peer catching up. */
      if (!fl_edge_session_sleep(s, c->poll_ms)) break;
      continue;
    }
    /* WAIT: until an event, the deadline, or the poll interval. */
    uint64_t t = wait < c->poll_ms ? wait : c->poll_ms;
    fl_edge_event_t ev;
    st = fl_edge_session_next_event(s, t ? t : 1, &ev);
    if (st == FL_ECANCELED) break;
    if (st == FL_OK && ev.kind == FL_EDGE_EV_ROUND_CLOSED && strcmp(ev.task, task.task) == 0)
      hint = ev.next_round > hint ? ev.next_round : hint;
  }
  FL_INFO(LOGM, "keeper finished closed=%" PRIu64, closed);
  rc = FL_OK;
out:
  fl_edge_task_clear(&task);
  fl_edge_session_close(s);
  return rc;
}

/* The one process-wide flag a signal handler may touch (sig_atomic_t). */
static volatile sig_atomic_t keeper_stop;

static void on_signal(int sig) {
  (void)sig;
  keeper_stop = 1;
}

int fl_keeper_main(int argc, char **argv) {
  fl_log_configure_from_env();
  fl_keeper_cfg_t c;
  bool help = false;
  char *err = NULL;
  if (fl_keeper_cfg_load(argc, argv, &c, &help, &err) != FL_OK) {
    fprintf(stderr, "fedledger-keeper: %s\n", err ? err : "bad settings");
    fl_free(err);
    return 2;
  }
  if (help) {
    printf("usage: fedledger-keeper [--config keeper.yaml] [--flag VALUE ...]\n"
           "Settings (flag, keeper.yaml key; env FEDLEDGER_<KEY> with dots as _):\n");
    fl_edge_opts_usage(keeper_table, stdout);
    return 0;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  fl_status_t rc = fl_keeper_run(&c, &keeper_stop);
  fl_keeper_cfg_free(&c);
  if (rc == FL_ECONFIG) {
    fprintf(stderr, "fedledger-keeper: configuration or identity error (see the log above)\n");
    return 2;
  }
  return rc == FL_OK ? 0 : 1;
}
