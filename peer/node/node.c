/* SPDX-License-Identifier: Apache-2.0
 *
 * node.c: the peer process around its parts: configuration (core.yaml with
 * FEDLEDGER_* overrides), genesis, identity, TLS roots, chaincode runtime,
 * ledger (and the genesis commit), metrics and the operations endpoint,
 * the events socket, remote clients to other nodes, signals and shutdown.
 * The commit pipeline is in commit.c, the Peer services in service.c,
 * the gateway in gateway.c.
 */
#include <dirent.h>
#include <errno.h>
#include <malloc.h> /* mallinfo2 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/base/alloc.h"
#include "common/base/file.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/crypto/x509.h"
#include "peer/node/node_int.h"
#include "peer/node/peer.h"

/* Largest file a node reads whole (genesis block, PEM files). */
#define NODE_MAX_FILE (512u << 20)
#define LOG FL__PEER_LOG
#define FL_PEER_VERSION "0.1.0"

uint64_t fl__peer_now_ms(void) { return fl_mono_ns() / 1000000u; }

/* ------------------------------------------------------------ utilities */

void fl__peer_rpc_error(fl__peer_t *p, const char *method) {
  const char *vals[1] = {method};
  long s = fl_counter_series(p->m.rpc_errors, vals);
  fl_counter_add(p->m.rpc_errors, s < 0 ? 0 : (size_t)s, 1);
}

/* --------------------------------------------------------------- remotes */

static void remote_closed(fl_rpc_client_t *c, void *arg) {
  (void)c;
  (void)arg;
}

void fl__remote_close(fl__remote_t *r) {
  if (r->client == NULL) return;
  fl_rpc_client_t *c = r->client;
  r->client = NULL;
  fl_rpc_client_close(c, remote_closed, NULL);
}

void fl__remote_fail(fl__remote_t *r) {
  if (r->client == NULL) return;
  r->down = true;
  fl__remote_close(r);
  r->retry_at_ms = fl__peer_now_ms() + r->backoff_ms;
  r->backoff_ms = r->backoff_ms * 2 > 2000 ? 2000 : r->backoff_ms * 2;
}

static void remote_on_connect(fl_rpc_client_t *c, fl_status_t st, void *arg) {
  fl__remote_t *r = arg;
  if (c != r->client) return;
  if (st < 0) {
    FL_DEBUG(LOG, "connect failed node=%s rc=%s", r->name, fl_status_name(st));
    fl__remote_fail(r);
    return;
  }
  r->backoff_ms = 100;
  r->down = false;
}

static void remote_on_disconnect(fl_rpc_client_t *c, fl_status_t st, void *arg) {
  fl__remote_t *r = arg;
  if (c != r->client) return;
  FL_DEBUG(LOG, "connection lost node=%s rc=%s", r->name, fl_status_name(st));
  fl__remote_fail(r);
}

fl_rpc_client_t *fl__remote_client(fl__remote_t *r) {
  fl__peer_t *p = r->p;
  if (p->stopping) return NULL;
  if (r->client != NULL) {
    fl_status_t st = fl_rpc_client_state(r->client);
    if (st == FL_OK || st == FL_AGAIN) return r->client;
    fl__remote_fail(r);
  }
  if (fl__peer_now_ms() < r->retry_at_ms) return NULL;
  fl_tls_config_t tls = p->tls_srv;
  tls.server_name = r->host;
  fl_rpc_client_opts_t o = {.host = r->host, .port = r->port, .tls = p->tls_on ? &tls : NULL,
                            .max_frame = p->max_msg + 65536, .connect_timeout_ms = 2000,
                            .on_connect = remote_on_connect,
                            .on_disconnect = remote_on_disconnect, .arg = r};
  char *err = NULL;
  fl_status_t rc = fl_rpc_client_new(&p->loop, &o, &r->client, &err);
  if (rc < 0) {
    FL_ERROR(LOG, "client setup failed node=%s rc=%s err=%s", r->name, fl_status_name(rc),
             err ? err : "");
    fl_free(err);
    r->client = NULL;
    r->retry_at_ms = fl__peer_now_ms() + 2000;
    return NULL;
  }
  return r->client;
}

/* ---------------------------------------------------------- configuration */

/* Every key core.yaml may hold (docs/peer.md); any other is refused, so a
 * misspelt setting does not silently take its default. deliver.orderers is
 * a list the node reads whole. */
static const char *const known_keys[] = {
    "peer.name", "peer.msp_dir", "peer.data_dir", "peer.genesis", "peer.chaincode_dir",
    "peer.listen_host", "peer.listen_port", "peer.events_host", "peer.events_port", "peer.log",
    "operations.host", "operations.port", "tls.enabled", "tls.cert", "tls.key",
    "chaincode.mode", "chaincode.workers", "chaincode.timeout", "deliver.orderers",
    "deliver.retry", "deliver.stall_timeout", "gateway.endorse_timeout",
    "gateway.broadcast_timeout", "gateway.commit_timeout", "endorser.timestamp_window",
    "validator.parallel", "rpc.max_message_bytes", "ledger.min_free_bytes", NULL};

static fl_status_t load_config(fl__peer_t *p, const char *path) {
  char *err = NULL;
  fl_status_t rc = fl_config_load(path, NULL, &p->cfg, &err);
  if (rc < 0) goto fail;
  const fl_config_t *c = p->cfg;
  const char *logspec = NULL, *mode = NULL;
  uint64_t u = 0, d0 = 0;
  bool b = false, dtrue = true;
  if ((rc = fl_config_get_string(c, NULL, "peer.log", "info", &logspec, &err)) < 0) goto fail;
  if (fl_log_configure(logspec) != 0) {
    err = fl_sprintf("peer.log: bad log spec '%s'", logspec);
    rc = FL_ECONFIG;
    goto fail;
  }
  fl_log_configure_from_env();
  if ((rc = fl_config_get_string(c, NULL, "peer.name", NULL, &p->name, &err)) < 0 ||
      (rc = fl_config_get_string(c, NULL, "peer.msp_dir", NULL, &p->msp_dir, &err)) < 0 ||
      (rc = fl_config_get_string(c, NULL, "peer.data_dir", NULL, &p->data_dir, &err)) < 0 ||
      (rc = fl_config_get_string(c, NULL, "peer.genesis", NULL, &p->genesis_path, &err)) < 0 ||
      (rc = fl_config_get_string(c, NULL, "peer.chaincode_dir", "", &p->cc_dir, &err)) < 0 ||
      (rc = fl_config_get_string(c, NULL, "peer.listen_host", "", &p->listen_host, &err)) < 0 ||
      (rc = fl_config_get_string(c, NULL, "peer.events_host", "", &p->events_host, &err)) < 0 ||
      (rc = fl_config_get_string(c, NULL, "operations.host", "127.0.0.1", &p->ops_host, &err)) < 0)
    goto fail;
  uint64_t none = UINT64_MAX;
  if ((rc = fl_config_get_uint64(c, NULL, "peer.listen_port", 0, UINT64_MAX, &none, &u, &err)) < 0)
    goto fail;
  if (u != UINT64_MAX && u > 65535) {
    err = fl_sprintf("peer.listen_port: expected 0..65535");
    rc = FL_ECONFIG;
    goto fail;
  }
  p->listen_port = u == UINT64_MAX ? 0 : (uint16_t)u;
  if ((rc = fl_config_get_uint64(c, NULL, "peer.events_port", 0, UINT64_MAX, &none, &u, &err)) < 0)
    goto fail;
  if (u != UINT64_MAX && u > 65535) {
    err = fl_sprintf("peer.events_port: expected 0..65535");
    rc = FL_ECONFIG;
    goto fail;
  }
  p->events_port = u == UINT64_MAX ? 0xffffu : (uint16_t)u; /* 0xffff: from genesis */
  if ((rc = fl_config_get_uint64(c, NULL, "operations.port", 0, 65535, &d0, &u, &err)) < 0) goto fail;
  p->ops_port = (uint16_t)u;
  if ((rc = fl_config_get_bool(c, NULL, "tls.enabled", &dtrue, &b, &err)) < 0) goto fail;
  p->tls_on = b;
  if (p->tls_on) {
    if ((rc = fl_config_get_string(c, NULL, "tls.cert", NULL, &p->tls_cert, &err)) < 0 ||
        (rc = fl_config_get_string(c, NULL, "tls.key", NULL, &p->tls_key, &err)) < 0)
      goto fail;
  }
  if ((rc = fl_config_get_string(c, NULL, "chaincode.mode", "fork", &mode, &err)) < 0) goto fail;
  if (strcmp(mode, "fork") == 0) {
    p->cc_mode = FL_CCRT_FORK;
  } else if (strcmp(mode, "in_process") == 0) {
    p->cc_mode = FL_CCRT_IN_PROCESS;
  } else {
    err = fl_sprintf("chaincode.mode: expected fork or in_process, got '%s'", mode);
    rc = FL_ECONFIG;
    goto fail;
  }
  uint64_t dv = 2;
  if ((rc = fl_config_get_uint64(c, NULL, "chaincode.workers", 1, 64, &dv, &u, &err)) < 0) goto fail;
  p->cc_workers = (unsigned)u;
  dv = 30000;
  if ((rc = fl_config_get_duration_ms(c, NULL, "chaincode.timeout", &dv, &p->cc_timeout_ms, &err)) < 0)
    goto fail;
  dv = 5000;
  if ((rc = fl_config_get_duration_ms(c, NULL, "deliver.stall_timeout", &dv, &p->stall_ms, &err)) < 0)
    goto fail;
  dv = 200;
  if ((rc = fl_config_get_duration_ms(c, NULL, "deliver.retry", &dv, &p->retry_ms, &err)) < 0)
    goto fail;
  dv = 10000;
  if ((rc = fl_config_get_duration_ms(c, NULL, "gateway.endorse_timeout", &dv,
                                      &p->endorse_timeout_ms, &err)) < 0 ||
      (rc = fl_config_get_duration_ms(c, NULL, "gateway.broadcast_timeout", &dv,
                                      &p->broadcast_timeout_ms, &err)) < 0)
    goto fail;
  dv = 60000;
  if ((rc = fl_config_get_duration_ms(c, NULL, "gateway.commit_timeout", &dv,
                                      &p->commit_timeout_ms, &err)) < 0)
    goto fail;
  dv = FL_ENDORSER_TS_WINDOW_DEFAULT_MS;
  if ((rc = fl_config_get_duration_ms(c, NULL, "endorser.timestamp_window", &dv,
                                      &p->ts_window_ms, &err)) < 0)
    goto fail;
  if (p->ts_window_ms == 0) p->ts_window_ms = UINT64_MAX; /* "0s": no check */
  dv = 4;
  if ((rc = fl_config_get_uint64(c, NULL, "validator.parallel", 1, 64, &dv, &u, &err)) < 0) goto fail;
  p->vparallel = (unsigned)u;
  dv = 0;
  if ((rc = fl_config_get_uint64(c, NULL, "rpc.max_message_bytes", 0, 1u << 30, &dv, &u, &err)) < 0)
    goto fail;
  p->max_msg = (size_t)u;
  dv = (uint64_t)64 << 20;
  if ((rc = fl_config_get_uint64(c, NULL, "ledger.min_free_bytes", 0, UINT64_MAX, &dv,
                                 &p->min_free, &err)) < 0)
    goto fail;
  if (p->stall_ms < 100) p->stall_ms = 100;
  if ((rc = fl_config_check_keys(c, known_keys, &err)) < 0) goto fail;
  return FL_OK;
fail:
  FL_ERROR(LOG, "bad configuration file=%s rc=%s err=%s", path, fl_status_name(rc),
           err ? err : "?");
  fl_free(err);
  return rc;
}

static fl_status_t load_genesis(fl__peer_t *p) {
  fl_sbuf_t gb = {0};
  const char *why = "?";
  fl_status_t rc = fl_file_read(p->genesis_path, NODE_MAX_FILE, &gb);
  if (rc < 0) {
    why = "cannot read the file";
    goto fail;
  }
  if ((rc = fl_block_decode(gb.data, gb.len, &p->genesis, &why)) < 0) goto fail;
  if ((rc = fl_genesis_decode(p->genesis, &p->net, &why)) < 0) goto fail;
  if ((rc = fl_netconfig_msp_new(p->net, &p->msp, &why)) < 0) goto fail;
  for (size_t i = 0; i < p->net->n_peers; i++)
    if (strcmp(p->net->peers[i].name, p->name) == 0) p->self_entry = &p->net->peers[i];
  if (p->self_entry == NULL) {
    rc = FL_ECONFIG;
    why = "peer.name is not a peer of the genesis configuration";
    goto fail;
  }
  p->mspid = p->self_entry->mspid;
  if (p->listen_host[0] == '\0') p->listen_host = p->self_entry->host;
  if (p->listen_port == 0) p->listen_port = (uint16_t)p->self_entry->port;
  if (p->events_host[0] == '\0') p->events_host = p->listen_host;
  if (p->events_port == 0xffffu) p->events_port = (uint16_t)p->self_entry->events_port;
  if (p->max_msg == 0) p->max_msg = p->net->max_message_bytes;
  /* Every organisation's TLS roots, for mutual TLS both ways. */
  p->tls_roots = fl_sprintf("%s/tls-roots.pem", p->data_dir);
  FILE *fp = fopen(p->tls_roots, "wb");
  if (fp == NULL) {
    rc = FL_EIO;
    why = "cannot write data_dir/tls-roots.pem";
    goto fail;
  }
  for (size_t i = 0; i < p->net->n_orgs; i++)
    for (size_t k = 0; k < p->net->orgs[i].n_tls_root_certs; k++) {
      fl_buf_t c = p->net->orgs[i].tls_root_certs[k];
      fwrite(c.data, 1, c.len, fp);
      if (c.len && c.data[c.len - 1] != '\n') fputc('\n', fp);
    }
  if (fclose(fp) != 0) {
    rc = FL_EIO;
    why = "cannot write data_dir/tls-roots.pem";
    goto fail;
  }
  fl_sbuf_free(&gb);
  return FL_OK;
fail:
  FL_ERROR(LOG, "bad genesis block file=%s rc=%s reason=%s", p->genesis_path, fl_status_name(rc),
           why);
  fl_sbuf_free(&gb);
  return rc;
}

static fl_status_t load_identity(fl__peer_t *p) {
  char *sdir = fl_sprintf("%s/signcerts", p->msp_dir);
  char *kdir = fl_sprintf("%s/keystore", p->msp_dir);
  char *cpath = fl_dir_first_file(sdir), *kpath = fl_dir_first_file(kdir);
  fl_sbuf_t pem = {0};
  const char *why = "?";
  fl_status_t rc = FL_ECONFIG;
  if (cpath == NULL || kpath == NULL) {
    why = "peer.msp_dir needs signcerts/ and keystore/ with one file each";
    goto fail;
  }
  if ((rc = fl_file_read(cpath, NODE_MAX_FILE, &pem)) < 0) {
    why = "signing certificate unreadable";
    goto fail;
  }
  if ((rc = fl_signer_load_file(kpath, &p->signer)) < 0) {
    why = "signing key unreadable";
    goto fail;
  }
  if ((rc = fl_msp_serialize_identity(p->mspid, pem.data, pem.len, &p->identity)) < 0) {
    why = "cannot serialize identity";
    goto fail;
  }
  rc = FL_OK;
fail:
  if (rc < 0)
    FL_ERROR(LOG, "bad identity msp_dir=%s rc=%s reason=%s", p->msp_dir, fl_status_name(rc), why);
  fl_sbuf_free(&pem);
  fl_free(cpath);
  fl_free(kpath);
  fl_free(sdir);
  fl_free(kdir);
  return rc;
}

static fl_status_t load_chaincodes(fl__peer_t *p) {
  fl_ccrt_opts_t o = {.cc_dir = p->cc_dir[0] ? p->cc_dir : ".", .mode = p->cc_mode,
                      .workers = p->cc_workers, .timeout_ms = (uint32_t)p->cc_timeout_ms};
  fl_status_t rc = fl_ccrt_new(&o, &p->ccrt);
  if (rc < 0) {
    FL_ERROR(LOG, "chaincode runtime refused its options rc=%s", fl_status_name(rc));
    return rc;
  }
  for (size_t i = 0; i < p->net->n_chaincodes; i++) {
    const fl_net_chaincode_t *cc = &p->net->chaincodes[i];
    if (cc->library[0] == '\0' || p->cc_dir[0] == '\0') {
      FL_INFO(LOG, "chaincode not installed (validation only) name=%s", cc->name);
      continue;
    }
    fl_ccrt_def_t def = {.name = cc->name, .version = cc->version, .sha256 = cc->sha256,
                         .library = cc->library};
    fl_ccrt_cc_t *h = NULL;
    char *err = NULL;
    rc = fl_ccrt_load(p->ccrt, &def, &h, &err);
    if (rc < 0)
      FL_WARN(LOG, "chaincode not loaded (this peer cannot endorse it) name=%s rc=%s err=%s",
              cc->name, fl_status_name(rc), err ? err : "");
    else
      FL_INFO(LOG, "chaincode loaded name=%s version=%s", cc->name, cc->version);
    fl_free(err);
  }
  return FL_OK;
}

/* Opens the ledger; commits block 0 on first start, else checks that the
 * ledger belongs to this genesis. */
static fl_status_t open_ledger(fl__peer_t *p) {
  char *dir = fl_sprintf("%s/ledger", p->data_dir);
  /* Memtables: 8 MiB per column family and 16 MiB for all seven together.
   * With fl_kv's 32 MiB per CF and no budget, the CFs that grow slowly under
   * load (txids, state, history, meta) each kept their memtable for tens of
   * minutes on the way to 32 MiB, so the peer's RSS rose with the data for
   * that long (docs/operations.md, "Soak"); with the budget the oldest
   * memtable is flushed once all of them hold 16 MiB, which a loaded peer
   * reaches in about a minute. */
  fl_ledger_opts_t lo = {.create_if_missing = true, .block_cache_bytes = 32u << 20,
                         .write_buffer_bytes = 8u << 20, .memtable_budget_bytes = 16u << 20};
  fl_status_t rc = fl_ledger_open(dir, &lo, &p->ledger);
  fl_free(dir);
  if (rc < 0) {
    FL_ERROR(LOG, "cannot open the ledger dir=%s rc=%s", p->data_dir, fl_status_name(rc));
    return rc;
  }
  if (fl_ledger_height(p->ledger) == 0) {
    fl_sbuf_t gb = {0};
    fl_block_t *copy = NULL;
    fl_block_encode(p->genesis, &gb);
    rc = fl_block_decode(gb.data, gb.len, &copy, NULL);
    fl_sbuf_free(&gb);
    if (rc < 0) return rc;
    fl_vblock_t *vb = fl_vblock_new(p->validator, copy);
    fl_vblock_check(vb, 0, fl_vblock_ntx(vb));
    rc = fl_vblock_commit(vb, p->ledger);
    fl_vblock_free(vb);
    if (rc < 0) {
      FL_ERROR(LOG, "cannot commit the genesis block rc=%s", fl_status_name(rc));
      return rc;
    }
    FL_INFO(LOG, "genesis block committed channel=%s", p->net->channel);
  } else {
    fl_sbuf_t b0 = {0};
    uint8_t h[32];
    rc = fl_ledger_block_get(p->ledger, NULL, 0, &b0, h);
    fl_sbuf_free(&b0);
    if (rc < 0 || memcmp(h, p->genesis->header_hash, 32) != 0) {
      FL_ERROR(LOG, "the ledger belongs to another network dir=%s", p->data_dir);
      return FL_ECONFIG;
    }
  }
  p->height = fl_ledger_height(p->ledger);
  p->accept_number = p->height - 1;
  if ((rc = fl_ledger_last_hash(p->ledger, p->accept_hash)) < 0) return rc;
  return FL_OK;
}

/* --------------------------------------------------------------- metrics */

static const char *const code_names[] = {
    "VALID", "NIL_ENVELOPE", "BAD_PAYLOAD", "BAD_CREATOR_SIGNATURE", "BAD_PROPOSAL",
    "BAD_PROPOSAL_TXID", "DUPLICATE_TXID", "ENDORSEMENT_POLICY_FAILURE", "BAD_ENDORSEMENT",
    "MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT", "BAD_RWSET", "UNKNOWN_TX_TYPE",
    "CREATOR_REVOKED", "UNKNOWN_CHAINCODE", "CREATOR_NOT_AUTHORIZED", "INVALID_OTHER_REASON",
    "UNKNOWN"};

static const char *const methods[] = {
    "Peer/Endorse", "Peer/Evaluate", "Peer/Deliver", "Peer/GetBlob", "Peer/GetBlock",
    "Peer/GetTransaction", "Peer/ChainInfo", "Gateway/Endorse", "Gateway/Submit",
    "Gateway/CommitStatus", "Gateway/Evaluate", "Orderer/Deliver", "Orderer/Broadcast"};

/* The ledger's column families (peer/ledger/ledger.c) and RocksDB's own. */
static const char *const kv_cfs[] = {"default", "blocks", "txids", "state",
                                     "history", "blobs",   "meta"};
#define N_KV_CFS (sizeof(kv_cfs) / sizeof(kv_cfs[0]))
static const char *const heap_kinds[] = {"in_use", "free", "mmapped"};
#define N_HEAP_KINDS (sizeof(heap_kinds) / sizeof(heap_kinds[0]))

/* RocksDB's memory, so that an operator can tell it from the rest of the
 * RSS: memtables grow with writes until a flush, index and filter blocks
 * live in the block cache (cache_index_and_filter_blocks), so table readers
 * outside it should stay near 0 and the cache at or under its capacity. */
static void setup_kv_metrics(fl__metrics_t *m) {
  fl_metric_label_t cf = {.name = "cf", .values = kv_cfs, .n_values = N_KV_CFS};
  fl_metric_desc_t d;
  d = (fl_metric_desc_t){.name = "fl_peer_ledger_memtable_bytes",
                         .help = "RocksDB memtables of the ledger (active, immutable, pinned), "
                                 "by column family.",
                         .labels = &cf, .n_labels = 1};
  fl_metrics_gauge(m->reg, &d, &m->kv_memtables);
  d = (fl_metric_desc_t){.name = "fl_peer_ledger_table_readers_bytes",
                         .help = "RocksDB table readers of the ledger outside the block cache."};
  fl_metrics_gauge(m->reg, &d, &m->kv_table_readers);
  d = (fl_metric_desc_t){.name = "fl_peer_ledger_block_cache_bytes",
                         .help = "RocksDB block cache of the ledger in use (data, index and "
                                 "filter blocks)."};
  fl_metrics_gauge(m->reg, &d, &m->kv_cache_usage);
  d = (fl_metric_desc_t){.name = "fl_peer_ledger_block_cache_pinned_bytes",
                         .help = "Part of the ledger's block cache that is pinned (in use, or "
                                 "L0 index and filter blocks)."};
  fl_metrics_gauge(m->reg, &d, &m->kv_cache_pinned);
  d = (fl_metric_desc_t){.name = "fl_peer_ledger_block_cache_capacity_bytes",
                         .help = "Capacity of the ledger's RocksDB block cache."};
  fl_metrics_gauge(m->reg, &d, &m->kv_cache_capacity);
  fl_metric_label_t kind = {.name = "kind", .values = heap_kinds, .n_values = N_HEAP_KINDS};
  d = (fl_metric_desc_t){.name = "fl_peer_malloc_bytes",
                         .help = "The C allocator's memory (glibc mallinfo2): in_use = allocated "
                                 "from the heap arenas, free = held by the arenas but free, "
                                 "mmapped = large blocks mapped on their own.",
                         .labels = &kind, .n_labels = 1};
  fl_metrics_gauge(m->reg, &d, &m->heap);
}

/* The allocator's view: with in_use flat and free growing, RSS growth is
 * memory freed but kept by malloc, not memory the program holds. */
static void update_heap_metrics(fl__peer_t *p) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 mi = mallinfo2();
  fl_gauge_set(p->m.heap, 0, (double)mi.uordblks);
  fl_gauge_set(p->m.heap, 1, (double)mi.fordblks);
  fl_gauge_set(p->m.heap, 2, (double)mi.hblkhd);
#else
  (void)p;
#endif
}

/* Refreshes the RocksDB gauges, at most once a second (the properties take
 * RocksDB's DB mutex; the tick runs every 250 ms). */
static void update_kv_metrics(fl__peer_t *p) {
  uint64_t now = fl__peer_now_ms();
  if (p->ledger == NULL || now - p->m.kv_mem_at_ms < 1000) return;
  p->m.kv_mem_at_ms = now;
  fl_kv_t *kv = fl_ledger_kv(p->ledger);
  fl_kv_mem_t mem;
  if (fl_kv_mem(kv, &mem) == FL_OK) {
    fl_gauge_set(p->m.kv_table_readers, 0, (double)mem.table_readers);
    fl_gauge_set(p->m.kv_cache_usage, 0, (double)mem.block_cache);
    fl_gauge_set(p->m.kv_cache_pinned, 0, (double)mem.block_cache_pinned);
    fl_gauge_set(p->m.kv_cache_capacity, 0, (double)mem.block_cache_capacity);
  }
  for (size_t i = 0; i < N_KV_CFS; i++) {
    fl_kv_cf_t *cf = fl_kv_cf(kv, kv_cfs[i]);
    uint64_t bytes = 0;
    if (cf != NULL && fl_kv_cf_memtables(kv, cf, &bytes) == FL_OK)
      fl_gauge_set(p->m.kv_memtables, i, (double)bytes);
  }
  update_heap_metrics(p);
}

static void setup_metrics(fl__peer_t *p) {
  fl__metrics_t *m = &p->m;
  m->reg = fl_metrics_new();
  fl_metric_label_t code = {.name = "code", .values = code_names,
                            .n_values = sizeof(code_names) / sizeof(code_names[0])};
  fl_metric_label_t meth = {.name = "method", .values = methods,
                            .n_values = sizeof(methods) / sizeof(methods[0])};
  fl_metric_desc_t d;
  d = (fl_metric_desc_t){.name = "fl_peer_ledger_height", .help = "Committed blocks."};
  fl_metrics_gauge(m->reg, &d, &m->height);
  d = (fl_metric_desc_t){.name = "fl_peer_tx_validated_total",
                         .help = "Transactions committed, by validation code.",
                         .labels = &code, .n_labels = 1};
  fl_metrics_counter(m->reg, &d, &m->tx_validated);
  d = (fl_metric_desc_t){.name = "fl_peer_endorsement_seconds",
                         .help = "Time to check, simulate and sign a proposal.",
                         .buckets = fl_metrics_latency_buckets,
                         .n_buckets = FL_METRICS_LATENCY_BUCKETS_N};
  fl_metrics_histogram(m->reg, &d, &m->endorse_s);
  d.name = "fl_peer_block_commit_seconds";
  d.help = "Time of stage B per block: duplicate tx ids, MVCC, ledger commit.";
  fl_metrics_histogram(m->reg, &d, &m->commit_s);
  d.name = "fl_peer_block_validation_seconds";
  d.help = "Time of stage A per block: orderer signatures, hash link, transaction checks.";
  fl_metrics_histogram(m->reg, &d, &m->validate_s);
  d = (fl_metric_desc_t){.name = "fl_peer_rpc_errors_total",
                         .help = "RPC calls answered with (or, as a client, failed with) an error.",
                         .labels = &meth, .n_labels = 1};
  fl_metrics_counter(m->reg, &d, &m->rpc_errors);
  d = (fl_metric_desc_t){.name = "fl_peer_orderer_failovers_total",
                         .help = "Times the Deliver client moved to another orderer."};
  fl_metrics_counter(m->reg, &d, &m->failovers);
  d = (fl_metric_desc_t){.name = "fl_peer_blocks_refused_total",
                         .help = "Blocks refused for bad orderer signatures or a broken hash link."};
  fl_metrics_counter(m->reg, &d, &m->blocks_refused);
  d = (fl_metric_desc_t){.name = "fl_peer_sigcache_hits",
                         .help = "Signature verifications saved by the verified-signature cache."};
  fl_metrics_gauge(m->reg, &d, &m->sig_hits);
  d = (fl_metric_desc_t){.name = "fl_peer_sigcache_misses",
                         .help = "Signature verifications run (cache misses)."};
  fl_metrics_gauge(m->reg, &d, &m->sig_misses);
  d = (fl_metric_desc_t){.name = "fl_peer_gateway_rebroadcasts",
                         .help = "Submitted envelopes sent again to another orderer because they "
                                 "were not committed in time after an acknowledgement."};
  fl_metrics_gauge(m->reg, &d, &m->rebroadcasts);
  d = (fl_metric_desc_t){.name = "fl_peer_gateway_watched_envelopes",
                         .help = "Submitted envelopes the gateway watches until they commit."};
  fl_metrics_gauge(m->reg, &d, &m->watched);
  d = (fl_metric_desc_t){.name = "fl_peer_gateway_broadcasts",
                         .help = "Broadcast attempts of Gateway/Submit (retries included)."};
  fl_metrics_gauge(m->reg, &d, &m->bc_sent);
  d = (fl_metric_desc_t){.name = "fl_peer_gateway_broadcasts_to_primary",
                         .help = "Broadcast attempts sent to the primary of the newest checked "
                                 "block's view (light load), not round robin."};
  fl_metrics_gauge(m->reg, &d, &m->bc_hinted);
  setup_kv_metrics(m);
}

static fl_status_t check_ledger(void *arg, fl_sbuf_t *reason) {
  fl__peer_t *p = arg;
  if (p->ledger == NULL || p->fatal) {
    fl_sbuf_append_str(reason, "ledger not usable (a commit failed)");
    return FL_ESTORE;
  }
  if (p->disk_low) {
    fl_sbuf_append_str(reason, "disk full: free space under ledger.min_free_bytes, not committing");
    return FL_ESTORE;
  }
  return FL_OK;
}

static fl_status_t check_orderer(void *arg, fl_sbuf_t *reason) {
  fl__peer_t *p = arg;
  if (p->connected_ms == 0) {
    fl_sbuf_append_str(reason, "no Deliver stream from any orderer");
    return FL_EUNAVAIL;
  }
  return FL_OK;
}

/* ---------------------------------------------------------------- lifecycle */

static void on_tick(uv_timer_t *t) {
  fl__peer_t *p = t->data;
  if (p->stopping) return;
  uint64_t hits = 0, misses = 0;
  fl_sigcache_stats(p->sigcache, &hits, &misses, NULL);
  fl_gauge_set(p->m.sig_hits, 0, (double)hits);
  fl_gauge_set(p->m.sig_misses, 0, (double)misses);
  fl_gauge_set(p->m.rebroadcasts, 0, (double)p->rebroadcasts);
  fl_gauge_set(p->m.watched, 0, (double)p->gwatch_n);
  fl_gauge_set(p->m.bc_sent, 0, (double)p->bc_sent);
  fl_gauge_set(p->m.bc_hinted, 0, (double)p->bc_hinted);
  update_kv_metrics(p);
  fl__commit_tick(p);
  fl__gateway_tick(p);
}

static void ops_closed(void *arg) { (void)arg; }

static void srv_closed(fl_rpc_server_t *srv, void *arg) {
  (void)srv;
  fl__peer_t *p = arg;
  p->srv = NULL;
}

void fl__peer_stop(fl__peer_t *p, int code) {
  if (code > p->exit_code) p->exit_code = code;
  if (p->stopping) return;
  p->stopping = true;
  FL_INFO(LOG, "shutting down peer=%s height=%llu", p->name, (unsigned long long)p->height);
  fl__jobs_close(p);
  uv_timer_stop(&p->tick);
  uv_close((uv_handle_t *)&p->tick, NULL);
  uv_close((uv_handle_t *)&p->sigterm, NULL);
  uv_close((uv_handle_t *)&p->sigint, NULL);
  fl__commit_close(p);
  fl__gateway_close(p);
  fl__service_close(p);
  for (size_t i = 0; i < p->npeers; i++) fl__remote_close(&p->peers[i]);
  for (size_t i = 0; i < p->nord; i++) fl__remote_close(&p->ords[i]);
  if (p->ops) {
    fl_ops_server_close(p->ops, ops_closed, NULL);
    p->ops = NULL;
  }
  if (p->srv) fl_rpc_server_close(p->srv, srv_closed, p);
}

static void on_signal(uv_signal_t *s, int signum) {
  fl__peer_t *p = s->data;
  FL_INFO(LOG, "signal received signum=%d", signum);
  fl__peer_stop(p, 0);
}

static fl_status_t start_services(fl__peer_t *p) {
  p->ca_files[0] = p->tls_roots;
  p->tls_srv = (fl_tls_config_t){.cert_file = p->tls_cert, .key_file = p->tls_key,
                                 .ca_files = p->ca_files, .n_ca_files = 1};
  fl_rpc_server_opts_t so = {.host = p->listen_host, .port = p->listen_port,
                             .tls = p->tls_on ? &p->tls_srv : NULL,
                             .max_frame = p->max_msg + 65536, .max_calls = 65536,
                             .write_hwm = 16u << 20};
  char *err = NULL;
  fl_status_t rc = fl_rpc_server_new(&p->loop, &so, &p->srv, &err);
  if (rc == FL_OK) {
    fl__service_register(p);
    fl__gateway_register(p);
    rc = fl_rpc_server_start(p->srv);
    if (rc < 0) err = fl_sprintf("cannot listen on %s:%u", p->listen_host, p->listen_port);
  }
  if (rc < 0) {
    FL_ERROR(LOG, "rpc server failed rc=%s err=%s", fl_status_name(rc), err ? err : "");
    fl_free(err);
    return rc;
  }
  if (p->events_port != 0) {
    char *url = fl_sprintf("tcp://%s:%u", p->events_host, p->events_port);
    rc = fl_events_pub_new(0, &p->pub);
    if (rc == FL_OK) rc = fl_events_pub_bind(p->pub, url);
    if (rc < 0) {
      FL_ERROR(LOG, "events socket failed url=%s rc=%s err=%s", url, fl_status_name(rc),
               fl_events_last_error());
      fl_free(url);
      return rc;
    }
    fl_free(url);
  }
  if (p->ops_port != 0) {
    fl_ops_config_t oc = {.host = p->ops_host, .port = p->ops_port, .version = FL_PEER_VERSION};
    rc = fl_ops_server_start(&p->loop, &oc, p->m.reg, &p->ops);
    if (rc < 0) {
      FL_ERROR(LOG, "operations endpoint failed host=%s port=%u rc=%s", p->ops_host,
               p->ops_port, fl_status_name(rc));
      return rc;
    }
    fl_ops_register_check(p->ops, "ledger", check_ledger, p);
    fl_ops_register_check(p->ops, "orderer", check_orderer, p);
  }
  return FL_OK;
}

static void setup_remotes(fl__peer_t *p) {
  p->npeers = p->net->n_peers;
  p->peers = fl_calloc(p->npeers + 1, sizeof(*p->peers));
  for (size_t i = 0; i < p->npeers; i++) {
    const fl_net_peer_t *e = &p->net->peers[i];
    p->peers[i] = (fl__remote_t){.p = p, .name = e->name, .mspid = e->mspid,
                                 .host = fl_strdup(e->host), .port = (uint16_t)e->port,
                                 .backoff_ms = 100, .self = e == p->self_entry};
  }
  /* Orderers: the genesis endpoints, or deliver.orderers ("host:port"). */
  const fl_config_node_t *seq = NULL;
  size_t n = 0;
  fl_config_get_seq(p->cfg, NULL, "deliver.orderers", &seq, &n, NULL);
  if (n == 0) {
    p->ords_by_id = true;
    p->nord = p->net->n_orderers;
    p->ords = fl_calloc(p->nord + 1, sizeof(*p->ords));
    for (size_t i = 0; i < p->nord; i++) {
      const fl_net_orderer_t *o = fl_netconfig_orderer(p->net, (uint32_t)i);
      p->ords[i] = (fl__remote_t){.p = p, .host = fl_strdup(o->host), .port = (uint16_t)o->port,
                                  .backoff_ms = 100};
    }
  } else {
    p->ords = fl_calloc(n + 1, sizeof(*p->ords));
    for (size_t i = 0; i < n; i++) {
      const char *s = fl_config_node_scalar(fl_config_node_child(seq, i));
      const char *colon = s ? strrchr(s, ':') : NULL;
      long port = colon ? strtol(colon + 1, NULL, 10) : 0;
      if (colon == NULL || port <= 0 || port > 65535) {
        FL_WARN(LOG, "deliver.orderers entry ignored (want host:port) entry=%s", s ? s : "?");
        continue;
      }
      p->ords[p->nord++] = (fl__remote_t){.p = p, .host = fl_strndup(s, (size_t)(colon - s)),
                                          .port = (uint16_t)port, .backoff_ms = 100};
    }
  }
  for (size_t i = 0; i < p->nord; i++) p->ords[i].name = fl_sprintf("orderer%zu", i);
}

/* uv_walk callback: names a handle still open when the loop should be empty. */
static void log_left_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  FL_WARN(LOG, "open handle type=%s active=%d closing=%d", uv_handle_type_name(h->type),
          uv_is_active(h), uv_is_closing(h));
}

static void peer_free(fl__peer_t *p) {
  fl__jobs_free(p);
  fl_endorser_free(p->endorser);
  fl_validator_free(p->validator);
  fl_ccrt_free(p->ccrt);
  fl_ledger_close(p->ledger);
  fl_events_pub_free(p->pub);
  fl_sigcache_free(p->sigcache);
  fl_metrics_free(p->m.reg);
  for (size_t i = 0; i < p->npeers; i++) fl_free(p->peers[i].host);
  fl_free(p->peers);
  for (size_t i = 0; i < p->nord; i++) {
    fl_free(p->ords[i].host);
    fl_free((char *)(uintptr_t)p->ords[i].name);
  }
  fl_free(p->ords);
  fl_signer_free(p->signer);
  fl_sbuf_free(&p->identity);
  fl_msp_free(p->msp);
  fl_netconfig_free(p->net);
  fl_block_free(p->genesis);
  fl_free(p->tls_roots);
  fl_config_free(p->cfg);
}

int fl_peer_main(const char *config_path) {
  if (!fl_malloc_keep_large_mapped())
    FL_WARN(LOG, "mallopt(M_MMAP_THRESHOLD) refused; RSS may keep freed memtables");
  fl__peer_t *p = fl_calloc(1, sizeof(*p));
  int code = 1;
  bool loop_ok = false;
  if (load_config(p, config_path) < 0) goto done;
  /* libuv's pool serves chaincode runs, signature checks and RocksDB work;
   * it must be sized before the loop first uses it. */
  if (getenv("UV_THREADPOOL_SIZE") == NULL) {
    char v[16];
    snprintf(v, sizeof(v), "%u", p->vparallel + 4);
    setenv("UV_THREADPOOL_SIZE", v, 0);
  }
  if (uv_loop_init(&p->loop) != 0) goto done;
  loop_ok = true;
  if (mkdir(p->data_dir, 0700) != 0 && errno != EEXIST) {
    FL_ERROR(LOG, "cannot create data_dir=%s errno=%d", p->data_dir, errno);
    goto done;
  }
  if (load_genesis(p) < 0 || load_identity(p) < 0) goto done;
  p->sigcache = fl_sigcache_new(p->msp, 1u << 16);
  char *err = NULL;
  fl_validator_opts_t vo = {.net = p->net, .msp = p->msp, .sigcache = p->sigcache};
  if (fl_validator_new(&vo, &p->validator, &err) < 0) {
    FL_ERROR(LOG, "bad network configuration err=%s", err ? err : "?");
    fl_free(err);
    goto done;
  }
  if (load_chaincodes(p) < 0 || open_ledger(p) < 0) goto done;
  fl_endorser_opts_t eo = {.channel = p->net->channel, .msp = p->msp, .sigcache = p->sigcache,
                           .ledger = p->ledger, .ccrt = p->ccrt, .signer = p->signer,
                           .identity = fl_sbuf_view(&p->identity),
                           .timestamp_window_ms = p->ts_window_ms};
  if (fl_endorser_new(&eo, &p->endorser) < 0) {
    FL_ERROR(LOG, "this peer's identity cannot endorse (see above) msp_dir=%s", p->msp_dir);
    goto done;
  }
  setup_metrics(p);
  fl_gauge_set(p->m.height, 0, (double)p->height);
  setup_remotes(p);
  if (fl__commit_init(p) < 0) goto done;
  uv_timer_init(&p->loop, &p->tick);
  p->tick.data = p;
  uv_signal_init(&p->loop, &p->sigterm);
  uv_signal_init(&p->loop, &p->sigint);
  p->sigterm.data = p->sigint.data = p;
  uv_signal_start(&p->sigterm, on_signal, SIGTERM);
  uv_signal_start(&p->sigint, on_signal, SIGINT);
  fl__jobs_init(p);
  if (start_services(p) < 0) {
    p->exit_code = 1;
    fl__peer_stop(p, 1);
  } else {
    uint64_t period = p->stall_ms / 4 < 250 ? p->stall_ms / 4 : 250;
    uv_timer_start(&p->tick, on_tick, period, period);
    fl__commit_start(p);
    FL_INFO(LOG, "peer ready name=%s mspid=%s listen=%s:%u events=%u operations=%u height=%llu "
            "orderers=%zu", p->name, p->mspid, p->listen_host, (unsigned)p->listen_port,
            (unsigned)p->events_port, (unsigned)p->ops_port, (unsigned long long)p->height,
            p->nord);
  }
  uv_run(&p->loop, UV_RUN_DEFAULT);
  code = p->exit_code;
  FL_INFO(LOG, "peer stopped name=%s height=%llu exit=%d", p->name,
          (unsigned long long)p->height, code);
done:
  if (loop_ok) {
    uv_run(&p->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&p->loop) != 0) {
      FL_WARN(LOG, "loop still has handles at exit");
      uv_walk(&p->loop, log_left_handle, NULL);
    }
  }
  peer_free(p);
  fl_free(p);
  return code;
}
