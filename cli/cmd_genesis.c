/* SPDX-License-Identifier: Apache-2.0
 *
 * cmd_genesis.c: `fedledger genesis`, Fabric's configtxgen: reads a
 * network.yaml (schema: crypto-config/network.yaml), collects the CA
 * certificates and node identities from a cryptogen tree, and writes the
 * genesis block (block 0) carrying the fl.config.NetworkConfig, signed by an
 * orderer-organisation admin.
 *
 * Paths in network.yaml are relative to `crypto_dir` (itself relative to
 * the YAML file's folder unless absolute, or replaced by --crypto-dir);
 * chaincode libraries are looked up in `chaincode_dir` (or --chaincode-dir)
 * to compute their SHA-256 when the file does not state it.
 *
 * The block is written atomically (temporary file, fsync, rename) and an
 * existing file is kept unless --force is given.
 */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/config/config.h"
#include "common/crypto/hash.h"
#include "common/crypto/msp.h"
#include "common/crypto/sign.h"
#include "common/protoutil/block.h"
#include "common/protoutil/genesis.h"
#include "peer/policy/policy.h"

#define MAX_PEM_FILE (1u << 20)
#define MAX_SO_FILE (256u << 20)

static int run_genesis(const char *path, int argc, char **argv);

const fl_cli_cmd_t fl_cli_cmd_genesis = {
    .name = "genesis",
    .summary = "Write the genesis block of a network from network.yaml",
    .help = "Reads network.yaml (organisations, orderers, peers, PBFT parameters,\n"
            "endorsement policy, chaincodes, revoked identities), takes CA certificates\n"
            "and identities from a cryptogen tree, and writes block 0 signed by the\n"
            "orderer-organisation admin named under `admin:`. See crypto-config/network.yaml.",
    .run = run_genesis,
};

/* Everything the configuration borrows, kept alive until the block is built. */
typedef struct gen_s {
  fl_config_t *cfg;
  char *crypto_dir;
  char *cc_dir;
  fl_sbuf_t **bufs; /* owned file contents, each allocated on its own */
  size_t nbufs;
  fl_net_org_t *orgs;
  fl_buf_t *org_pems; /* 2 per org: roots, tls roots */
  fl_net_orderer_t *orderers;
  fl_net_peer_t *peers;
  fl_net_chaincode_t *ccs;
  fl_net_revoked_t *revoked;
  char *err;
} gen_t;

static void gen_free(gen_t *g) {
  for (size_t i = 0; i < g->nbufs; i++) {
    fl_sbuf_free(g->bufs[i]);
    fl_free(g->bufs[i]);
  }
  fl_free(g->bufs);
  fl_free(g->orgs);
  fl_free(g->org_pems);
  fl_free(g->orderers);
  fl_free(g->peers);
  fl_free(g->ccs);
  fl_free(g->revoked);
  fl_free(g->crypto_dir);
  fl_free(g->cc_dir);
  fl_free(g->err);
  fl_config_free(g->cfg);
}

static void set_err(gen_t *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(gen_t *g, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  fl_free(g->err);
  g->err = fl_strdup(tmp);
}

/* A new empty buffer owned by g; its address never changes. */
static fl_sbuf_t *new_buf(gen_t *g) {
  g->bufs = fl_reallocarray(g->bufs, g->nbufs + 1, sizeof g->bufs[0]);
  g->bufs[g->nbufs] = fl_calloc(1, sizeof(fl_sbuf_t));
  return g->bufs[g->nbufs++];
}

/* Reads a whole file (at most max bytes) into a new owned buffer of g.
 * Returns the buffer, or NULL with g->err set. */
static fl_sbuf_t *slurp(gen_t *g, const char *file, size_t max) {
  FILE *f = fopen(file, "rb");
  if (f == NULL) {
    set_err(g, "cannot read %s: %s", file, strerror(errno));
    return NULL;
  }
  fl_sbuf_t *b = new_buf(g);
  uint8_t chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (b->len + n > max) {
      fclose(f);
      set_err(g, "%s: file larger than the limit",
file);
      return NULL;
    }
    fl_sbuf_append(b, chunk, n);
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    set_err(g, "cannot read %s: %s", file, "read error");
    return NULL;
  }
  return b;
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects the regular files of dir in name order (owned array of owned
 * names). Returns the count, or -1 with g->err set. */
static long list_files(gen_t *g, const char *dir, char ***out) {
  *out = NULL;
  DIR *d = opendir(dir);
  if (d == NULL) {
    set_err(g, "cannot open folder %s: %s", dir, strerror(errno));
    return -1;
  }
  char **names = NULL;
  long n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char *p = fl_sprintf("%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
      names = fl_reallocarray(names, (size_t)n + 1, sizeof *names);
      names[n++] = p;
    } else {
      fl_free(p);
    }
  }
  closedir(d);
  if (n > 1) qsort(names, (size_t)n, sizeof *names, name_cmp);
  *out = names;
  return n;
}

static void free_names(char **names, long n) {
  for (long i = 0; i < n; i++) fl_free(names[i]);
  fl_free(names);
}

/* Concatenates every file of dir into one owned buffer (PEM bundles). */
static fl_sbuf_t *slurp_dir(gen_t *g, const char *dir, bool required) {
  char **names = NULL;
  long n = list_files(g, dir, &names);
  if (n < 0) {
    if (!required) {
      fl_free(g->err);
      g->err = NULL;
      return new_buf(g);
    }
    return NULL;
  }
  if (n == 0 && required) {
    set_err(g, "folder %s holds no certificate",
dir);
    free_names(names, n);
    return NULL;
  }
  fl_sbuf_t *all = new_buf(g);
  for (long i = 0; i < n; i++) {
    fl_sbuf_t *one = slurp(g, names[i], MAX_PEM_FILE);
    if (one == NULL) {
      free_names(names, n);
      return NULL;
    }
    fl_sbuf_append(all, one->data, one->len);
    fl_sbuf_free(one);
  }
  free_names(names, n);
  return all;
}

/* The first file of dir (signcerts/, keystore/). */
static fl_sbuf_t *slurp_first(gen_t *g, const char *dir) {
  char **names = NULL;
  long n = list_files(g, dir, &names);
  if (n < 0) return NULL;
  if (n == 0) {
    set_err(g, "folder %s is empty",
dir);
    fl_free(names);
    return NULL;
  }
  fl_sbuf_t *b = slurp(g, names[0], MAX_PEM_FILE);
  free_names(names, n);
  return b;
}

static char *join(const char *dir, const char *rel) {
  if (rel[0] == '/' || dir == NULL || dir[0] == '\0') return fl_strdup(rel);
  return fl_sprintf("%s/%s", dir, rel);
}

static char *dir_of(const char *file) {
  const char *slash = strrchr(file, '/');
  return slash ? fl_strndup(file, (size_t)(slash - file)) : fl_strdup(".");
}

#define CHECK(expr)                                                           \
  do {                                                                        \
    if ((expr) != FL_OK) goto fail;                                           \
  } while (0)

static int load_orgs(gen_t *g, fl_netconfig_t *nc) {
  const fl_config_node_t *seq;
  size_t n;
  CHECK(fl_config_get_seq(g->cfg, NULL, "organizations", &seq, &n, &g->err));
  g->orgs = fl_calloc(n ? n : 1, sizeof *g->orgs);
  g->org_pems = fl_calloc(2 * (n ? n : 1), sizeof *g->org_pems);
  for (size_t i = 0; i < n; i++) {
    const fl_config_node_t *o = fl_config_node_child(seq, i);
    const char *msp_dir;
    bool is_ord;
    const bool no = false;
    fl_net_org_t *org = &g->orgs[i];
    CHECK(fl_config_get_string(g->cfg, o, "mspid", NULL, &org->mspid, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "name", "", &org->name, &g->err));
    CHECK(fl_config_get_bool(g->cfg, o, "orderer_org", &no, &is_ord, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "msp_dir", NULL, &msp_dir, &g->err));
    org->is_orderer_org = is_ord;
    char *base = join(g->crypto_dir, msp_dir);
    char *ca = fl_sprintf("%s/cacerts", base), *tls = fl_sprintf("%s/tlscacerts", base);
    fl_free(base);
    fl_sbuf_t *roots = slurp_dir(g, ca, true);
    fl_sbuf_t *tlsroots = roots ? slurp_dir(g, tls, false) : NULL;
    fl_free(ca);
    fl_free(tls);
    if (roots == NULL || tlsroots == NULL) goto fail;
    g->org_pems[2 * i] = fl_sbuf_view(roots);
    g->org_pems[2 * i + 1] = fl_sbuf_view(tlsroots);
    org->root_certs = &g->org_pems[2 * i];
    org->n_root_certs = 1;
    org->tls_root_certs = &g->org_pems[2 * i + 1];
    org->n_tls_root_certs = tlsroots->len ? 1 : 0;
  }
  nc->orgs = g->orgs;
  nc->n_orgs = n;
  return 0;
fail:
  return -1;
}

static int load_orderers(gen_t *g, fl_netconfig_t *nc) {
  const fl_config_node_t *seq;
  size_t n;
  CHECK(fl_config_get_seq(g->cfg, NULL, "orderers", &seq, &n, &g->err));
  g->orderers = fl_calloc(n ? n : 1, sizeof *g->orderers);
  for (size_t i = 0; i < n; i++) {
    const fl_config_node_t *o = fl_config_node_child(seq, i);
    fl_net_orderer_t *ord = &g->orderers[i];
    uint64_t id, port;
    const char *msp_dir;
    CHECK(fl_config_get_uint64(g->cfg, o, "id", 0, 1023, NULL, &id, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "mspid", NULL, &ord->mspid, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "host", NULL, &ord->host, &g->err));
    CHECK(fl_config_get_uint64(g->cfg, o, "port", 1, 65535, NULL, &port, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "msp_dir", NULL, &msp_dir, &g->err));
    ord->id = (uint32_t)id;
    ord->port = (uint32_t)port;
    char *base = join(g->crypto_dir, msp_dir);
    char *sc = fl_sprintf("%s/signcerts", base);
    fl_free(base);
    fl_sbuf_t *cert = slurp_first(g, sc);
    fl_free(sc);
    if (cert == NULL) goto fail;
    ord->identity_cert = fl_sbuf_view(cert);
  }
  nc->orderers = g->orderers;
  nc->n_orderers = n;
  return 0;
fail:
  return -1;
}

static int load_peers(gen_t *g, fl_netconfig_t *nc) {
  const fl_config_node_t *seq;
  size_t n;
  CHECK(fl_config_get_seq(g->cfg, NULL, "peers", &seq, &n, &g->err));
  g->peers = fl_calloc(n ? n : 1, sizeof *g->peers);
  for (size_t i = 0; i < n; i++) {
    const fl_config_node_t *o = fl_config_node_child(seq, i);
    fl_net_peer_t *p = &g->peers[i];
    uint64_t port, ev;
    const uint64_t zero = 0;
    CHECK(fl_config_get_string(g->cfg, o, "mspid", NULL, &p->mspid, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "name", NULL, &p->name, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "host", NULL, &p->host, &g->err));
    CHECK(fl_config_get_uint64(g->cfg, o, "port", 1, 65535, NULL, &port, &g->err));
    CHECK(fl_config_get_uint64(g->cfg, o, "events_port", 0, 65535, &zero, &ev, &g->err));
    p->port = (uint32_t)port;
    p->events_port = (uint32_t)ev;
  }
  nc->peers = g->peers;
  nc->n_peers = n;
  return 0;
fail:
  return -1;
}

static int parse_hash(gen_t *g, const char *hex, const char *where, uint8_t out[32]) {
  if (strlen(hex) != 64 || fl_hex_decode(hex, 64, out, 32) != 32) {
    set_err(g, "%s: expected 64 hex digits (a SHA-256), got '%s'", where, hex);
    return -1;
  }
  return 0;
}

static int load_chaincodes(gen_t *g, fl_netconfig_t *nc) {
  const fl_config_node_t *seq;
  size_t n;
  CHECK(fl_config_get_seq(g->cfg, NULL, "chaincodes", &seq, &n, &g->err));
  g->ccs = fl_calloc(n ? n : 1, sizeof *g->ccs);
  for (size_t i = 0; i < n; i++) {
    const fl_config_node_t *o = fl_config_node_child(seq, i);
    fl_net_chaincode_t *cc = &g->ccs[i];
    const char *hash;
    CHECK(fl_config_get_string(g->cfg, o, "name", NULL, &cc->name, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "version", NULL, &cc->version, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "policy", "", &cc->policy, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "library", "", &cc->library, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "sha256", "", &hash, &g->err));
    if (hash[0] != '\0') {
      if (parse_hash(g, hash, fl_config_node_path(o), cc->sha256) < 0) goto fail;
      continue;
    }
    if (cc->library[0] == '\0') {
      set_err(g, "%s: a chaincode needs `library` (to hash) or `sha256`",
fl_config_node_path(o));
      goto fail;
    }
    char *so = join(g->cc_dir, cc->library);
    fl_sbuf_t *bytes = slurp(g, so, MAX_SO_FILE);
    fl_free(so);
    if (bytes == NULL) goto fail;
    fl_sha256(bytes->data, bytes->len, cc->sha256);
    fl_sbuf_free(bytes);
  }
  nc->chaincodes = g->ccs;
  nc->n_chaincodes = n;
  return 0;
fail:
  return -1;
}

static int load_revoked(gen_t *g, fl_netconfig_t *nc) {
  const fl_config_node_t *seq;
  size_t n;
  CHECK(fl_config_get_seq(g->cfg, NULL, "revoked", &seq, &n, &g->err));
  g->revoked = fl_calloc(n ? n : 1, sizeof *g->revoked);
  for (size_t i = 0; i < n; i++) {
    const fl_config_node_t *o = fl_config_node_child(seq, i);
    fl_net_revoked_t *r = &g->revoked[i];
    const char *hash;
    CHECK(fl_config_get_string(g->cfg, o, "mspid", NULL, &r->mspid, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "cert_sha256", NULL, &hash, &g->err));
    CHECK(fl_config_get_string(g->cfg, o, "reason", "", &r->reason, &g->err));
    if (parse_hash(g, hash, fl_config_node_path(o), r->cert_sha256) < 0) goto fail;
    r->revoked_at_ms = fl_wall_ms();
  }
  nc->revoked = g->revoked;
  nc->n_revoked = n;
  return 0;
fail:
  return -1;
}

/* The peers compile every chaincode's endorsement policy (its own or the
 * default) against the application organisations when they start, and
 * refuse to run with one that does not compile. Check the same here, before
 * anything is written, so that a typo in a policy is reported by the tool
 * that reads network.yaml and not by every peer later. Without application
 * organisations (an ordering-only network) the policies are only parsed:
 * MAJORITY and ANY have nothing to expand to yet. */
static int check_policies(gen_t *g, const fl_netconfig_t *nc) {
  const char **orgs = fl_calloc(nc->n_orgs + 1, sizeof(*orgs));
  size_t norgs = 0;
  for (size_t i = 0; i < nc->n_orgs; i++)
    if (!nc->orgs[i].is_orderer_org) orgs[norgs++] = nc->orgs[i].mspid;
  int rc = 0;
  for (size_t i = 0; i <= nc->n_chaincodes && rc == 0; i++) {
    const char *text = i == 0 ? nc->endorsement_policy : nc->chaincodes[i - 1].policy;
    if (text == NULL || text[0] == '\0') continue; /* a chaincode without one uses the default */
    fl_policy_t *pol = NULL;
    char *perr = NULL;
    fl_status_t st = norgs > 0 ? fl_policy_new(text, strlen(text), orgs, norgs, &pol, &perr)
                               : fl_policy_parse(text, strlen(text), &pol, &perr);
    if (st != FL_OK) {
      if (i == 0)
        set_err(g, "endorsement_policy '%s': %s", text, perr ? perr : fl_status_str(st));
      else
        set_err(g, "chaincodes.%zu (%s): policy '%s': %s", i - 1, nc->chaincodes[i - 1].name,
                text, perr ? perr : fl_status_str(st));
      rc = -1;
    }
    fl_free(perr);
    fl_policy_free(pol);
  }
  fl_free(orgs);
  return rc;
}

static int load_pbft(gen_t *g, fl_netconfig_t *nc) {
  /* Defaults: docs/ordering.md lists them with their reasons. */
  const uint64_t d_f = 1, d_count = 500, d_bytes = 4u << 20, d_to = 10, d_ck = 16,
                 d_wm = 64, d_vc = 2000;
  uint64_t f, count, bytes, to, ck, wm, vc;
  CHECK(fl_config_get_uint64(g->cfg, NULL, "pbft.f", 0, 100, &d_f, &f, &g->err));
  CHECK(fl_config_get_uint64(g->cfg, NULL, "pbft.batch_max_count", 1, 1000000, &d_count,
                             &count, &g->err));
  CHECK(fl_config_get_uint64(g->cfg, NULL, "pbft.batch_max_bytes", 1024, 1u << 30, &d_bytes,
                             &bytes, &g->err));
  CHECK(fl_config_get_duration_ms(g->cfg, NULL, "pbft.batch_timeout", &d_to, &to, &g->err));
  CHECK(fl_config_get_uint64(g->cfg, NULL, "pbft.checkpoint_interval", 1, 1000000, &d_ck, &ck,
                             &g->err));
  CHECK(fl_config_get_uint64(g->cfg, NULL, "pbft.watermark_window", 1, 100000000, &d_wm, &wm,
                             &g->err));
  CHECK(fl_config_get_duration_ms(g->cfg, NULL, "pbft.view_change_timeout", &d_vc, &vc,
                                  &g->err));
  if (to == 0 || to > UINT32_MAX || vc == 0 || vc > UINT32_MAX) {
    set_err(g, "%s: pbft timeouts must be between 1ms and 49 days",
fl_config_file(g->cfg));
    goto fail;
  }
  nc->pbft = (fl_pbft_params_t){.n = (uint32_t)nc->n_orderers,
                                .f = (uint32_t)f,
                                .batch_max_count = (uint32_t)count,
                                .batch_max_bytes = (uint32_t)bytes,
                                .batch_timeout_ms = (uint32_t)to,
                                .checkpoint_interval = (uint32_t)ck,
                                .watermark_window = (uint32_t)wm,
                                .view_change_timeout_ms = (uint32_t)vc};
  return 0;
fail:
  return -1;
}

/* Writes data to path atomically: path.tmp, fsync, rename. */
static int write_atomic(gen_t *g, const char *path, fl_buf_t data, bool force) {
  struct stat st;
  if (!force && stat(path, &st) == 0) {
    set_err(g, "%s exists; pass --force to replace it",
path);
    return -1;
  }
  char *tmp = fl_sprintf("%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    set_err(g, "cannot create %s: %s", tmp, strerror(errno));
    fl_free(tmp);
    return -1;
  }
  size_t off = 0;
  while (off < data.len) {
    ssize_t w = write(fd, data.data + off, data.len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  int ok = off == data.len && fsync(fd) == 0;
  ok = (close(fd) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    set_err(g, "cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
    fl_free(tmp);
    return -1;
  }
  fl_free(tmp);
  return 0;
}

static void print_summary(const fl_netconfig_t *nc, fl_buf_t header_hash, size_t bytes) {
  char hex[65];
  fl_hex_encode(header_hash.data, header_hash.len < 32 ? header_hash.len : 32, hex);
  printf("genesis block: %zu bytes, header hash %s\n", bytes, hex);
  printf("channel: %s\n", nc->channel);
  for (size_t i = 0; i < nc->n_orgs; i++)
    printf("organization: %s%s\n", nc->orgs[i].mspid,
           nc->orgs[i].is_orderer_org ? " (orderer)" : "");
  for (size_t i = 0; i < nc->n_orderers; i++)
    printf("orderer: %" PRIu32 " %s %s:%" PRIu32 "\n", nc->orderers[i].id,
           nc->orderers[i].mspid, nc->orderers[i].host, nc->orderers[i].port);
  for (size_t i = 0; i < nc->n_peers; i++)
    printf("peer: %s %s %s:%" PRIu32 "\n", nc->peers[i].mspid, nc->peers[i].name,
           nc->peers[i].host, nc->peers[i].port);
  printf("pbft: n=%" PRIu32 " f=%" PRIu32 " batch=%" PRIu32 " timeout=%" PRIu32
         "ms checkpoint=%" PRIu32 "\n",
         nc->pbft.n, nc->pbft.f, nc->pbft.batch_max_count, nc->pbft.batch_timeout_ms,
         nc->pbft.checkpoint_interval);
  printf("endorsement_policy: %s\n", nc->endorsement_policy);
  for (size_t i = 0; i < nc->n_chaincodes; i++) {
    fl_hex_encode(nc->chaincodes[i].sha256, 32, hex);
    printf("chaincode: %s %s sha256=%s\n", nc->chaincodes[i].name, nc->chaincodes[i].version,
           hex);
  }
  printf("revoked: %zu\n", nc->n_revoked);
}

static int run_genesis(const char *path, int argc, char **argv) {
  const char *config = NULL, *output = "genesis.block", *crypto = NULL, *ccdir = NULL;
  bool force = false;
  const fl_cli_flag_t flags[] = {
      {"config", 'c', FL_CLI_FLAG_STRING, "FILE", "network.yaml to read", &config, true},
      {"output", 'o', FL_CLI_FLAG_STRING, "FILE", "genesis block to write (default genesis.block)",
       &output, false},
      {"crypto-dir", 0, FL_CLI_FLAG_STRING, "DIR",
       "cryptogen output (overrides crypto_dir in the file)", &crypto, false},
      {"chaincode-dir", 0, FL_CLI_FLAG_STRING, "DIR",
       "where chaincode libraries are (overrides chaincode_dir)", &ccdir, false},
      {"force", 'f', FL_CLI_FLAG_BOOL, NULL, "replace an existing output file", &force, false},
  };
  size_t nf = sizeof flags / sizeof flags[0];
  int nargs = 0;
  int rc = fl_cli_parse_flags(&fl_cli_cmd_genesis, path, flags, nf, argc, argv, &nargs);
  if (rc < 0) return FL_CLI_OK;
  if (rc != FL_CLI_OK) return rc;
  if (nargs > 0) {
    fprintf(stderr, "%s: unexpected argument '%s'\n\n", path, argv[1]);
    fl_cli_print_usage(stderr, &fl_cli_cmd_genesis, path, flags, nf);
    return FL_CLI_USAGE;
  }

  gen_t g = {0};
  fl_netconfig_t nc = {0};
  fl_block_t *block = NULL;
  fl_netconfig_t *back = NULL;
  fl_signer_t *signer = NULL;
  fl_sbuf_t creator = {0}, bytes = {0};
  const char *reason = NULL;
  int exit_code = FL_CLI_FAIL;

  if (fl_config_load(config, "FEDLEDGER", &g.cfg, &g.err) != FL_OK) goto out;
  char *yaml_dir = dir_of(config);
  const char *cdir, *chdir_;
  if (fl_config_get_string(g.cfg, NULL, "crypto_dir", "organizations", &cdir, &g.err) != FL_OK ||
      fl_config_get_string(g.cfg, NULL, "chaincode_dir", ".", &chdir_, &g.err) != FL_OK) {
    fl_free(yaml_dir);
    goto out;
  }
  g.crypto_dir = crypto ? fl_strdup(crypto) : join(yaml_dir, cdir);
  g.cc_dir = ccdir ? fl_strdup(ccdir) : join(yaml_dir, chdir_);
  fl_free(yaml_dir);

  const uint64_t d_max = FL_NETCONFIG_DEFAULT_MESSAGE_BYTES;
  uint64_t maxmsg;
  if (fl_config_get_string(g.cfg, NULL, "channel", "fedledger", &nc.channel, &g.err) != FL_OK ||
      fl_config_get_string(g.cfg, NULL, "endorsement_policy", "MAJORITY",
                           &nc.endorsement_policy, &g.err) != FL_OK ||
      fl_config_get_uint64(g.cfg, NULL, "max_message_bytes", FL_NETCONFIG_MIN_MESSAGE_BYTES,
                           1u << 30, &d_max, &maxmsg, &g.err) != FL_OK)
    goto out;
  nc.max_message_bytes = (uint32_t)maxmsg;
  if (load_orgs(&g, &nc) < 0 || load_orderers(&g, &nc) < 0 || load_peers(&g, &nc) < 0 ||
      load_pbft(&g, &nc) < 0 || load_chaincodes(&g, &nc) < 0 || load_revoked(&g, &nc) < 0 ||
      check_policies(&g, &nc) < 0)
    goto out;
  nc.created_ms = fl_wall_ms();

  /* The signer: an orderer-organisation admin. */
  const char *admin_msp, *admin_dir;
  if (fl_config_get_string(g.cfg, NULL, "admin.mspid", NULL, &admin_msp, &g.err) != FL_OK ||
      fl_config_get_string(g.cfg, NULL, "admin.msp_dir", NULL, &admin_dir, &g.err) != FL_OK)
    goto out;
  char *abase = join(g.crypto_dir, admin_dir);
  char *sc = fl_sprintf("%s/signcerts", abase), *ks = fl_sprintf("%s/keystore", abase);
  fl_free(abase);
  fl_sbuf_t *acert = slurp_first(&g, sc);
  fl_sbuf_t *akey = acert ? slurp_first(&g, ks) : NULL;
  fl_free(sc);
  fl_free(ks);
  if (akey == NULL) goto out;
  fl_status_t st = fl_signer_from_pem(akey->data, akey->len, &signer);
  fl_sbuf_free(akey);
  if (st != FL_OK) {
    set_err(&g, "admin key in %s: %s", admin_dir, fl_status_str(st));
    goto out;
  }
  st = fl_msp_serialize_identity(admin_msp, acert->data, acert->len, &creator);
  if (st != FL_OK) {
    set_err(&g, "admin certificate in %s: %s", admin_dir, fl_status_str(st));
    goto out;
  }
  st = fl_genesis_build(&nc, fl_sbuf_view(&creator), signer, &block, &reason);
  if (st != FL_OK) {
    set_err(&g, "cannot build the genesis block: %s (%s)", reason ? reason : "",
            fl_status_str(st));
    goto out;
  }
  if (fl_block_encode(block, &bytes) != FL_OK) {
    set_err(&g, "cannot encode the genesis block");
    goto out;
  }
  /* Read it back the way every node will before trusting it. */
  st = fl_genesis_decode(block, &back, &reason);
  if (st != FL_OK) {
    set_err(&g, "the genesis block does not read back: %s (%s)", reason ? reason : "",
            fl_status_str(st));
    goto out;
  }
  if (write_atomic(&g, output, fl_sbuf_view(&bytes), force) < 0) goto out;
  print_summary(back, FL_BUF(block->header_hash, sizeof block->header_hash), bytes.len);
  printf("wrote %s\n", output);
  exit_code = FL_CLI_OK;
out:
  if (exit_code != FL_CLI_OK) fprintf(stderr, "%s: %s\n", path, g.err ? g.err : "failed");
  fl_netconfig_free(back);
  fl_block_free(block);
  fl_signer_free(signer);
  fl_sbuf_free(&creator);
  fl_sbuf_free(&bytes);
  gen_free(&g);
  return exit_code;
}
