/* SPDX-License-Identifier: Apache-2.0
 *
 * cmd_events.c: `fedledger events [--follow]`: a peer's block and chaincode
 * events as they come (the peer's nanomsg PUB socket, common/client
 * events.h). Events are notifications, not proof: use `block get` or
 * `ledger verify` for verified data.
 *
 * Without --follow the command stops after --count events or when nothing
 * arrived for --timeout; with --follow it runs until --count events or
 * SIGINT/SIGTERM (exit 0). --json prints one object per line.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "chaincode/mlupdate/json.h"
#include "cli/cli.h"
#include "cli/net.h"
#include "cli/out.h"
#include "common/base/alloc.h"
#include "common/base/clock.h"
#include "common/client/events.h"

static int run_events(const char *path, int argc, char **argv);

const fl_cli_cmd_t fl_cli_cmd_events = {
    .name = "events",
    .summary = "Print a peer's block and chaincode events as they come",
    .help = "Subscribes to the peer's events socket (--events URL, or the events port of\n"
            "--peer in the genesis peer list). --follow keeps going until interrupted;\n"
            "otherwise it stops after --timeout without events. --json: one object per line.",
    .run = run_events,
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void print_event(const fl_client_event_t *e, bool json) {
  fl_sbuf_t b = {0};
  char hh[65] = "";
  if (e->kind == FL_CLIENT_EVENT_BLOCK) {
    if (e->header_hash.len == 32) fl_hex_encode(e->header_hash.data, 32, hh);
    if (json) {
      fl_sbuf_append_str(&b, "{");
      fl_mlu_jw_key(&b, "kind");
      fl_mlu_jw_str(&b, "block");
      fl_mlu_jw_key(&b, "peer");
      fl_mlu_jw_str(&b, e->peer);
      fl_mlu_jw_key(&b, "number");
      fl_mlu_jw_u64(&b, e->number);
      fl_mlu_jw_key(&b, "header_hash");
      fl_mlu_jw_str(&b, hh[0] ? hh : NULL);
      fl_mlu_jw_key(&b, "txs");
      fl_sbuf_append_str(&b, "[");
      for (size_t i = 0; i < e->n_txs; i++) {
        if (i) fl_sbuf_append_str(&b, ",");
        fl_sbuf_append_str(&b, "{");
        fl_mlu_jw_key(&b, "tx_id");
        fl_mlu_jw_str(&b, e->txs[i].tx_id);
        fl_mlu_jw_key(&b, "code");
        fl_sbuf_printf(&b, "%d", (int)e->txs[i].code);
        fl_mlu_jw_key(&b, "code_name");
        fl_mlu_jw_str(&b, fl_client_code_name(e->txs[i].code));
        fl_mlu_jw_key(&b, "chaincode");
        fl_mlu_jw_str(&b, e->txs[i].chaincode[0] ? e->txs[i].chaincode : NULL);
        fl_sbuf_append_str(&b, "}");
      }
      fl_sbuf_append_str(&b, "]}");
      fl_cli_json_print(stdout, &b);
    } else {
      char h[17];
      printf("block %llu  %s  %zu tx%s  (%s)\n", (unsigned long long)e->number,
             fl_cli_short_hash(hh, h), e->n_txs, e->n_txs == 1 ? "" : "s", e->peer);
      for (size_t i = 0; i < e->n_txs; i++)
        printf("  %s  %-20s %s\n", e->txs[i].tx_id, fl_client_code_name(e->txs[i].code),
               e->txs[i].chaincode[0] ? e->txs[i].chaincode : "-");
      fflush(stdout);
    }
  } else {
    fl_mlu_json_t *pj = NULL;
    if (fl_mlu_json_parse(e->payload, &pj) != FL_OK) pj = NULL;
    if (json) {
      fl_sbuf_append_str(&b, "{");
      fl_mlu_jw_key(&b, "kind");
      fl_mlu_jw_str(&b, "chaincode");
      fl_mlu_jw_key(&b, "peer");
      fl_mlu_jw_str(&b, e->peer);
      fl_mlu_jw_key(&b, "block");
      fl_mlu_jw_u64(&b, e->block_number);
      fl_mlu_jw_key(&b, "tx_id");
      fl_mlu_jw_str(&b, e->tx_id);
      fl_mlu_jw_key(&b, "chaincode");
      fl_mlu_jw_str(&b, e->chaincode);
      fl_mlu_jw_key(&b, "name");
      fl_mlu_jw_str(&b, e->name);
      fl_mlu_jw_key(&b, "payload");
      if (pj != NULL) {
        fl_cli_jw_value(&b, pj);
      } else {
        /* Not JSON: hex, so the line stays valid JSON whatever the bytes. */
        char *hx = fl_hex_dup(e->payload);
        fl_mlu_jw_str(&b, hx);
        fl_free(hx);
      }
      fl_sbuf_append_str(&b, "}");
      fl_cli_json_print(stdout, &b);
    } else {
      fl_sbuf_t p = {0};
      if (pj) fl_cli_jw_value(&p, pj);
      char t[17];
      printf("event %s  %s  block %llu  tx %s  %.*s\n", e->name, e->chaincode,
             (unsigned long long)e->block_number, fl_cli_short_hash(e->tx_id, t),
             (int)(p.len > 300 ? 300 : p.len), p.data ? (const char *)p.data : "");
      fl_sbuf_free(&p);
      fflush(stdout);
    }
    fl_mlu_json_free(pj);
  }
  fl_sbuf_free(&b);
}

static int run_events(const char *path, int argc, char **argv) {
  bool follow = false, blocks_only = false;
  uint64_t count = 0;
  const char *cc = NULL;
  const fl_cli_flag_t own[] = {
      {"follow", 'f', FL_CLI_FLAG_BOOL, NULL, "keep printing until interrupted", &follow, false},
      {"count", 'n', FL_CLI_FLAG_UINT, "N", "stop after N events", &count, false},
      {"chaincode", 0, FL_CLI_FLAG_STRING, "NAME", "only this chaincode's events (default all)",
       &cc, false},
      {"blocks-only", 0, FL_CLI_FLAG_BOOL, NULL, "only block events", &blocks_only, false},
  };
  fl_cli_net_t n = {0};
  fl_client_events_t *ev = NULL;
  int nargs = 0;
  int rc = fl_cli_net_parse(&n, &fl_cli_cmd_events, path, own, 4, argc, argv, &nargs);
  if (rc < 0) {
    rc = FL_CLI_OK;
    goto done;
  }
  if (rc != FL_CLI_OK) goto done;
  if (nargs > 0) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", path, argv[1]);
    rc = FL_CLI_USAGE;
    goto done;
  }
  const char *url = fl_cli_net_events_url(&n);
  if (url == NULL) {
    rc = FL_CLI_USAGE;
    goto done;
  }
  fl_status_t st = fl_client_events_open(url, &ev);
  if (st == FL_OK) st = fl_client_events_subscribe_blocks(ev);
  if (st == FL_OK && !blocks_only) st = fl_client_events_subscribe_chaincode(ev, cc);
  if (st != FL_OK) {
    fprintf(stderr, "%s: events %s: %s\n", path, url, fl_status_str(st));
    rc = st == FL_EINVAL ? FL_CLI_USAGE : FL_CLI_UNREACHABLE;
    goto done;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  if (!n.json) {
    fprintf(stderr, "listening on %s%s\n", url, follow ? " (Ctrl-C to stop)" : "");
  }
  uint64_t seen = 0, last = fl_mono_ns() / 1000000u;
  while (!g_stop && (count == 0 || seen < count)) {
    fl_client_event_t e;
    st = fl_client_events_next(ev, 200, &e);
    uint64_t now = fl_mono_ns() / 1000000u;
    if (st == FL_OK) {
      print_event(&e, n.json);
      fl_client_event_clear(&e);
      seen++;
      last = now;
      continue;
    }
    if (st == FL_ETIMEDOUT || st == FL_AGAIN) {
      if (!follow && now - last >= n.timeout_ms) break;
      continue;
    }
    fprintf(stderr, "%s: events %s: %s\n", path, url, fl_status_str(st));
    rc = FL_CLI_UNREACHABLE;
    break;
  }
done:
  fl_client_events_close(ev);
  fl_cli_net_close(&n);
  return rc;
}
