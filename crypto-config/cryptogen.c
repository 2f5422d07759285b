/* SPDX-License-Identifier: Apache-2.0
 *
 * cryptogen.c: crypto-config.yaml -> organisation specs -> keys, certificates
 * and Fabric's MSP directory tree (see cryptogen.h).
 *
 * Three phases, so a failure never leaves half an organisation:
 *   1. parse and check the whole configuration (names, counts, duplicates);
 *   2. check that no target organisation directory exists (unless force);
 *   3. generate everything under OUT/.cryptogen.XXXXXX, then move each
 *      organisation into place (removing the old one first with force).
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/log.h"
#include "common/config/config.h"
#include "common/crypto/sign.h"
#include "common/crypto/x509.h"
#include "crypto-config/cryptogen.h"

typedef struct node_spec_s {
  char *host; /* short host name, "peer0" */
  char *fqdn; /* "peer0.org1.example.com" */
  char **sans;
  size_t n_sans;
} node_spec_t;

typedef struct org_spec_s {
  bool orderer;
  char *name, *domain, *mspid;
  char *country, *province, *locality;
  node_spec_t *nodes;
  size_t n_nodes;
  uint64_t admins, users;
} org_spec_t;

typedef struct gen_s {
  const fl_cryptogen_opts_t *o;
  org_spec_t *orgs;
  size_t n_orgs;
  char *tmp;        /* OUT/.cryptogen.XXXXXX */
  int64_t nb, na;   /* validity */
  char **err;
  size_t identities;
} gen_t;

static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char **err, const char *fmt, ...) {
  if (err == NULL || *err != NULL) return; /* keep the first, most precise */
  va_list ap;
  va_start(ap, fmt);
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  *err = fl_strdup(buf);
}

static void org_spec_free(org_spec_t *o) {
  for (size_t i = 0; i < o->n_nodes; i++) {
    fl_free(o->nodes[i].host);
    fl_free(o->nodes[i].fqdn);
    for (size_t j = 0; j < o->nodes[i].n_sans; j++) fl_free(o->nodes[i].sans[j]);
    fl_free(o->nodes[i].sans);
  }
  fl_free(o->nodes);
  fl_free(o->name);
  fl_free(o->domain);
  fl_free(o->mspid);
  fl_free(o->country);
  fl_free(o->province);
  fl_free(o->locality);
}

/* ---- phase 1: configuration ---------------------------------------------- */

static bool dns_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.') return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '.'))
      return false;
    if (c == '.' && s[i + 1] == '.') return false;
  }
  return true;
}

static bool id_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '.' || c == '_'))
      return false;
  }
  return true;
}

static fl_status_t add_node(gen_t *g, org_spec_t *org, const fl_config_t *cfg,
                            const fl_config_node_t *at, const char *host) {
  if (!dns_ok(host) || strchr(host, '.') != NULL) {
    set_err(g->err, "%s:%d: %s: host name '%s' must be one DNS label ([A-Za-z0-9-])",
            fl_config_file(cfg), fl_config_node_line(at), fl_config_node_path(at), host);
    return FL_ECONFIG;
  }
  char *fqdn = fl_sprintf("%s.%s", host, org->domain);
  for (size_t i = 0; i < org->n_nodes; i++) {
    if (strcmp(org->nodes[i].fqdn, fqdn) == 0) {
      set_err(g->err, "%s:%d: %s: node %s is defined twice", fl_config_file(cfg),
              fl_config_node_line(at), fl_config_node_path(at), fqdn);
      fl_free(fqdn);
      return FL_ECONFIG;
    }
  }
  if (org->n_nodes >= FL_CRYPTOGEN_MAX_COUNT) {
    set_err(g->err, "%s: %s: more than %d nodes", fl_config_file(cfg), org->domain,
            FL_CRYPTOGEN_MAX_COUNT);
    fl_free(fqdn);
    return FL_ECONFIG;
  }
  org->nodes = fl_reallocarray(org->nodes, org->n_nodes + 1, sizeof *org->nodes);
  org->nodes[org->n_nodes++] = (node_spec_t){.host = fl_strdup(host), .fqdn = fqdn};
  return FL_OK;
}

#define CK(expr)                                                               \
  do {                                                                         \
    fl_status_t rc_ = (expr);                                                  \
    if (rc_ != FL_OK) return rc_;                                              \
  } while (0)

/* Config getters report through a local message, copied into g->err. */
#define CFG(expr)                                                              \
  do {                                                                         \
    char *m_ = NULL;                                                           \
    char **err = &m_;                                                          \
    fl_status_t rc_ = (expr);                                                  \
    if (rc_ != FL_OK) {                                                        \
      set_err(g->err, "%s", m_ ? m_ : "configuration error");                  \
      fl_free(m_);                                                             \
      return rc_;                                                              \
    }                                                                          \
  } while (0)

static fl_status_t parse_org(gen_t *g, const fl_config_t *cfg, const fl_config_node_t *n,
                             bool orderer, org_spec_t *org) {
  const char *s;
  org->orderer = orderer;
  CFG(fl_config_get_string(cfg, n, "name", NULL, &s, err));
  if (!id_ok(s)) {
    set_err(g->err, "%s:%d: %s.name: '%s' must be 1-64 characters of [A-Za-z0-9._-]",
            fl_config_file(cfg), fl_config_node_line(n), fl_config_node_path(n), s);
    return FL_ECONFIG;
  }
  org->name = fl_strdup(s);
  CFG(fl_config_get_string(cfg, n, "domain", NULL, &s, err));
  if (!dns_ok(s)) {
    const fl_config_node_t *d = fl_config_find(cfg, n, "domain");
    set_err(g->err, "%s:%d: %s: '%s' is not a DNS domain name", fl_config_file(cfg),
            fl_config_node_line(d), fl_config_node_path(d), s);
    return FL_ECONFIG;
  }
  org->domain = fl_strdup(s);
  char *defid = fl_sprintf("%sMSP", org->name);
  char *m = NULL;
  fl_status_t rc = fl_config_get_string(cfg, n, "mspid", defid, &s, &m);
  if (rc == FL_OK) org->mspid = fl_strdup(s);
  fl_free(defid);
  if (rc != FL_OK) {
    set_err(g->err, "%s", m);
    fl_free(m);
    return rc;
  }
  if (!id_ok(org->mspid)) {
    set_err(g->err, "%s: %s.mspid: '%s' must be 1-64 characters of [A-Za-z0-9._-]",
            fl_config_file(cfg), fl_config_node_path(n), org->mspid);
    return FL_ECONFIG;
  }
  CFG(fl_config_get_string(cfg, n, "country", "US", &s, err));
  org->country = fl_strdup(s);
  CFG(fl_config_get_string(cfg, n, "province", "California", &s, err));
  org->province = fl_strdup(s);
  CFG(fl_config_get_string(cfg, n, "locality", "San Francisco", &s, err));
  org->locality = fl_strdup(s);

  /* Explicit specs first, then the template, as Fabric does. */
  const fl_config_node_t *specs;
  size_t ns;
  CFG(fl_config_get_seq(cfg, n, "specs", &specs, &ns, err));
  for (size_t i = 0; i < ns; i++) {
    const fl_config_node_t *sp = fl_config_node_child(specs, i);
    CFG(fl_config_get_string(cfg, sp, "hostname", NULL, &s, err));
    CK(add_node(g, org, cfg, sp, s));
    node_spec_t *node = &org->nodes[org->n_nodes - 1];
    const fl_config_node_t *sans;
    size_t nsans;
    CFG(fl_config_get_seq(cfg, sp, "sans", &sans, &nsans, err));
    for (size_t j = 0; j < nsans; j++) {
      const fl_config_node_t *sn = fl_config_node_child(sans, j);
      const char *v = fl_config_node_scalar(sn);
      if (v == NULL || !dns_ok(v)) {
        set_err(g->err, "%s:%d: %s: a SAN must be a DNS name", fl_config_file(cfg),
                fl_config_node_line(sn), fl_config_node_path(sn));
        return FL_ECONFIG;
      }
      node->sans = fl_reallocarray(node->sans, node->n_sans + 1, sizeof *node->sans);
      node->sans[node->n_sans++] = fl_strdup(v);
    }
  }
  uint64_t count, start;
  CFG(fl_config_get_uint64(cfg, n, "template.count", 0, FL_CRYPTOGEN_MAX_COUNT,
                           &(uint64_t){0}, &count, err));
  CFG(fl_config_get_uint64(cfg, n, "template.start", 0, 1000000, &(uint64_t){0}, &start,
                           err));
  CFG(fl_config_get_string(cfg, n, "template.prefix", orderer ? "orderer" : "peer", &s,
                           err));
  const fl_config_node_t *tn = fl_config_find(cfg, n, "template");
  for (uint64_t i = 0; i < count; i++) {
    char host[96];
    snprintf(host, sizeof host, "%s%llu", s, (unsigned long long)(start + i));
    CK(add_node(g, org, cfg, tn != NULL ? tn : n, host));
  }
  CFG(fl_config_get_uint64(cfg, n, "admins.count", 0, FL_CRYPTOGEN_MAX_COUNT,
                           &(uint64_t){1}, &org->admins, err));
  CFG(fl_config_get_uint64(cfg, n, "users.count", 0, FL_CRYPTOGEN_MAX_COUNT,
                           &(uint64_t){0}, &org->users, err));
  return FL_OK;
}

static fl_status_t parse_config(gen_t *g) {
  fl_config_t *cfg = NULL;
  char *m = NULL;
  /* No environment overrides: the material must follow the file alone. */
  fl_status_t rc = fl_config_load(g->o->config_path, "", &cfg, &m);
  if (rc != FL_OK) {
    set_err(g->err, "%s", m);
    fl_free(m);
    return rc == FL_NOTFOUND || rc == FL_EIO ? rc : FL_ECONFIG;
  }
  static const char *const keys[2] = {"orderer_orgs", "peer_orgs"};
  for (int k = 0; k < 2 && rc == FL_OK; k++) {
    const fl_config_node_t *seq;
    size_t n;
    rc = fl_config_get_seq(cfg, NULL, keys[k], &seq, &n, &m);
    if (rc != FL_OK) {
      set_err(g->err, "%s", m);
      fl_free(m);
      break;
    }
    for (size_t i = 0; i < n && rc == FL_OK; i++) {
      g->orgs = fl_reallocarray(g->orgs, g->n_orgs + 1, sizeof *g->orgs);
      org_spec_t *org = &g->orgs[g->n_orgs++];
      *org = (org_spec_t){0};
      const fl_config_node_t *on = fl_config_node_child(seq, i);
      rc = parse_org(g, cfg, on, k == 0, org);
      for (size_t j = 0; rc == FL_OK && j + 1 < g->n_orgs; j++) {
        if (strcmp(g->orgs[j].domain, org->domain) == 0 ||
            strcmp(g->orgs[j].mspid, org->mspid) == 0) {
          set_err(g->err, "%s:%d: %s: domain %s / mspid %s is already used by another "
                  "organisation", fl_config_file(cfg), fl_config_node_line(on),
                  fl_config_node_path(on), org->domain, org->mspid);
          rc = FL_ECONFIG;
        }
      }
    }
  }
  if (rc == FL_OK && g->n_orgs == 0) {
    set_err(g->err, "%s: no organisations (orderer_orgs and peer_orgs are empty)",
            g->o->config_path);
    rc = FL_ECONFIG;
  }
  fl_config_free(cfg);
  return rc;
}

/* ---- files ---------------------------------------------------------------- */

static const char *kind_dir(const org_spec_t *o) {
  return o->orderer ? "ordererOrganizations" : "peerOrganizations";
}

/* mkdir -p for the parents of path (path itself excluded). */
static int mkparents(char *path) {
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    int r = mkdir(path, 0755);
    int e = errno;
    *p = '/';
    if (r != 0 && e != EEXIST) {
      errno = e;
      return -1;
    }
  }
  return 0;
}

/* Writes a new file under the temp tree; messages name the final path. */
static fl_status_t put(gen_t *g, const char *rel, const void *data, size_t len, mode_t mode) {
  char *path = fl_sprintf("%s/%s", g->tmp, rel);
  int fd = -1;
  if (mkparents(path) != 0) goto fail;
  /* O_EXCL + the mode at creation: a key file is never, not even for a
   * moment, readable by others. */
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) goto fail;
  const uint8_t *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) goto fail;
    p += n;
    len -= (size_t)n;
  }
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fl_free(path);
  return FL_OK;
fail:
  set_err(g->err, "%s/%s: %s", g->o->output_dir, rel, strerror(errno));
  if (fd >= 0) close(fd);
  fl_free(path);
  return FL_EIO;
}

static fl_status_t put_cert(gen_t *g, const char *rel, const fl_cert_t *c) {
  fl_sbuf_t pem = {0};
  fl_cert_to_pem(c, &pem);
  fl_status_t rc = put(g, rel, pem.data, pem.len, 0644);
  fl_sbuf_free(&pem);
  return rc;
}

static fl_status_t put_key(gen_t *g, const char *rel, const fl_signer_t *k) {
  fl_sbuf_t pem = {0};
  fl_status_t rc = fl_signer_to_pem(k, &pem);
  if (rc != FL_OK) set_err(g->err, "%s/%s: cannot encode the private key", g->o->output_dir, rel);
  else rc = put(g, rel, pem.data, pem.len, 0600);
  if (pem.data != NULL) memset(pem.data, 0, pem.cap);
  fl_sbuf_free(&pem);
  return rc;
}

/* rm -rf, not following symlinks; depth-bounded. */
static int remove_tree(const char *path, int depth) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
  if (!S_ISDIR(st.st_mode)) return unlink(path);
  if (depth > 32) {
    errno = ELOOP;
    return -1;
  }
  DIR *d = opendir(path);
  if (d == NULL) return -1;
  struct dirent *de;
  int rc = 0;
  while (rc == 0 && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char *child = fl_sprintf("%s/%s", path, de->d_name);
    rc = remove_tree(child, depth + 1);
    fl_free(child);
  }
  closedir(d);
  return rc == 0 ? rmdir(path) : rc;
}

/* ---- phase 3: generation -------------------------------------------------- */

typedef struct ca_s {
  fl_signer_t *key;
  fl_cert_t *cert;
} ca_t;

static void ca_free(ca_t *ca) {
  fl_signer_free(ca->key);
  fl_cert_free(ca->cert);
}

static fl_status_t make_ca(gen_t *g, const org_spec_t *org, const char *prefix, ca_t *ca) {
  char *cn = fl_sprintf("%s.%s", prefix, org->domain);
  fl_cert_template_t t = {
      .country = org->country, .province = org->province, .locality = org->locality,
      .org = org->domain, .cn = cn, .is_ca = true,
      .key_usage = FL_KU_DIGITAL_SIGNATURE | FL_KU_KEY_ENCIPHERMENT | FL_KU_KEY_CERT_SIGN |
                   FL_KU_CRL_SIGN,
      .not_before = g->nb, .not_after = g->na};
  fl_status_t rc = fl_signer_generate(&ca->key);
  if (rc == FL_OK) rc = fl_cert_issue(&t, ca->key, NULL, ca->key, &ca->cert);
  if (rc != FL_OK)
    set_err(g->err, "%s: cannot create CA %s: %s", org->domain, cn, fl_status_str(rc));
  fl_free(cn);
  return rc;
}

/* One identity: dir is "peers/peer0.org1.example.com" etc. */
static fl_status_t make_identity(gen_t *g, const org_spec_t *org, const ca_t *ca,
                                 const ca_t *tlsca, const char *dir, const char *name,
                                 fl_role_t role, const node_spec_t *node) {
  const char *kd = kind_dir(org);
  const char *role_ou = fl_role_name(role);
  fl_signer_t *skey = NULL, *tkey = NULL;
  fl_cert_t *scert = NULL, *tcert = NULL;
  char *rel = NULL;
  fl_status_t rc;

  fl_cert_template_t st = {
      .country = org->country, .province = org->province, .locality = org->locality,
      .org = org->domain, .ous = &role_ou, .n_ous = 1, .cn = name,
      .key_usage = FL_KU_DIGITAL_SIGNATURE, .not_before = g->nb, .not_after = g->na};
  rc = fl_signer_generate(&skey);
  if (rc == FL_OK) rc = fl_cert_issue(&st, skey, ca->cert, ca->key, &scert);
  if (rc != FL_OK) {
    set_err(g->err, "%s: cannot issue the signing certificate: %s", name, fl_status_str(rc));
    goto done;
  }

  const char *dns[8];
  size_t n_dns = 0;
  if (node != NULL) {
    dns[n_dns++] = node->fqdn;
    dns[n_dns++] = node->host;
  }
  dns[n_dns++] = "localhost";
  const char *ips[] = {"127.0.0.1"};
  fl_cert_template_t tt = st;
  tt.key_usage = FL_KU_DIGITAL_SIGNATURE | FL_KU_KEY_ENCIPHERMENT;
  tt.ext_key_usage = FL_EKU_SERVER_AUTH | FL_EKU_CLIENT_AUTH;
  /* Extra SANs from the spec follow the standard ones. */
  const char **all = fl_calloc(n_dns + (node ? node->n_sans : 0), sizeof *all);
  memcpy(all, dns, n_dns * sizeof *all);
  if (node != NULL)
    for (size_t i = 0; i < node->n_sans; i++) all[n_dns++] = node->sans[i];
  tt.dns_names = all;
  tt.n_dns = n_dns;
  tt.ips = ips;
  tt.n_ips = 1;
  rc = fl_signer_generate(&tkey);
  if (rc == FL_OK) rc = fl_cert_issue(&tt, tkey, tlsca->cert, tlsca->key, &tcert);
  fl_free(all);
  if (rc != FL_OK) {
    set_err(g->err, "%s: cannot issue the TLS certificate: %s", name, fl_status_str(rc));
    goto done;
  }

  const char *tls_base = node != NULL ? "server" : "client";
#define PATH(...) (fl_free(rel), rel = fl_sprintf(__VA_ARGS__))
  if ((rc = put_cert(g, PATH("%s/%s/%s/msp/signcerts/%s-cert.pem", kd, org->domain, dir, name),
                     scert)) ||
      (rc = put_key(g, PATH("%s/%s/%s/msp/keystore/priv_sk", kd, org->domain, dir), skey)) ||
      (rc = put_cert(g, PATH("%s/%s/%s/msp/cacerts/ca.%s-cert.pem", kd, org->domain, dir,
                             org->domain), ca->cert)) ||
      (rc = put_cert(g, PATH("%s/%s/%s/msp/tlscacerts/tlsca.%s-cert.pem", kd, org->domain, dir,
                             org->domain), tlsca->cert)) ||
      (rc = put_cert(g, PATH("%s/%s/%s/tls/ca.crt", kd, org->domain, dir), tlsca->cert)) ||
      (rc = put_cert(g, PATH("%s/%s/%s/tls/%s.crt", kd, org->domain, dir, tls_base), tcert)) ||
      (rc = put_key(g, PATH("%s/%s/%s/tls/%s.key", kd, org->domain, dir, tls_base), tkey)))
    goto done;
#undef PATH
  g->identities++;
done:
  fl_free(rel);
  fl_signer_free(skey);
  fl_signer_free(tkey);
  fl_cert_free(scert);
  fl_cert_free(tcert);
  return rc;
}

static fl_status_t make_org(gen_t *g, const org_spec_t *org) {
  const char *kd = kind_dir(org);
  ca_t ca = {0}, tlsca = {0};
  char *rel = NULL;
  fl_status_t rc;
#define PATH(...) (fl_free(rel), rel = fl_sprintf(__VA_ARGS__))
  if ((rc = make_ca(g, org, "ca", &ca)) || (rc = make_ca(g, org, "tlsca", &tlsca)) ||
      (rc = put_cert(g, PATH("%s/%s/ca/ca.%s-cert.pem", kd, org->domain, org->domain),
                     ca.cert)) ||
      (rc = put_key(g, PATH("%s/%s/ca/priv_sk", kd, org->domain), ca.key)) ||
      (rc = put_cert(g, PATH("%s/%s/tlsca/tlsca.%s-cert.pem", kd, org->domain, org->domain),
                     tlsca.cert)) ||
      (rc = put_key(g, PATH("%s/%s/tlsca/priv_sk", kd, org->domain), tlsca.key)) ||
      (rc = put_cert(g, PATH("%s/%s/msp/cacerts/ca.%s-cert.pem", kd, org->domain,
                             org->domain), ca.cert)) ||
      (rc = put_cert(g, PATH("%s/%s/msp/tlscacerts/tlsca.%s-cert.pem", kd, org->domain,
                             org->domain), tlsca.cert)))
    goto done;
  for (size_t i = 0; i < org->n_nodes; i++) {
    const node_spec_t *n = &org->nodes[i];
    PATH("%s/%s", org->orderer ? "orderers" : "peers", n->fqdn);
    rc = make_identity(g, org, &ca, &tlsca, rel, n->fqdn,
                       org->orderer ? FL_ROLE_ORDERER : FL_ROLE_PEER, n);
    if (rc != FL_OK) goto done;
  }
  for (uint64_t i = 0; i < org->admins + org->users; i++) {
    bool admin = i < org->admins;
    char user[64];
    if (admin && i == 0) snprintf(user, sizeof user, "Admin");
    else if (admin) snprintf(user, sizeof user, "Admin%llu", (unsigned long long)i + 1);
    else snprintf(user, sizeof user, "client%llu", (unsigned long long)(i - org->admins + 1));
    char *name = fl_sprintf("%s@%s", user, org->domain);
    PATH("users/%s", name);
    rc = make_identity(g, org, &ca, &tlsca, rel, name,
                       admin ? FL_ROLE_ADMIN : FL_ROLE_CLIENT, NULL);
    fl_free(name);
    if (rc != FL_OK) goto done;
  }
#undef PATH
done:
  fl_free(rel);
  ca_free(&ca);
  ca_free(&tlsca);
  return rc;
}

fl_status_t fl_cryptogen_generate(const fl_cryptogen_opts_t *o, fl_cryptogen_result_t *result,
                                  char **err) {
  if (err != NULL) *err = NULL;
  if (o == NULL || o->config_path == NULL || o->output_dir == NULL || o->output_dir[0] == '\0') {
    set_err(err, "cryptogen: a configuration file and an output directory are required");
    return FL_EINVAL;
  }
  gen_t g = {.o = o, .err = err};
  fl_status_t rc = parse_config(&g);
  if (rc != FL_OK) goto done;

  /* Phase 2: no silent overwrite. */
  for (size_t i = 0; i < g.n_orgs; i++) {
    char *p = fl_sprintf("%s/%s/%s", o->output_dir, kind_dir(&g.orgs[i]), g.orgs[i].domain);
    struct stat st;
    bool exists = lstat(p, &st) == 0;
    if (exists && !o->force) {
      set_err(err, "%s: already exists; refusing to overwrite crypto material "
              "(use --force to replace it)", p);
      rc = FL_EEXIST;
    }
    fl_free(p);
    if (rc != FL_OK) goto done;
  }

  int64_t now = (int64_t)time(NULL);
  uint32_t days = o->validity_days ? o->validity_days : FL_CRYPTOGEN_DEFAULT_DAYS;
  g.nb = o->not_before ? o->not_before : now - 300; /* tolerate clock skew */
  g.na = g.nb + 300 + (int64_t)days * 86400;

  /* mkdir -p OUT (mkparents creates every parent of OUT/x). */
  char *probe = fl_sprintf("%s/x", o->output_dir);
  int mk = mkparents(probe);
  fl_free(probe);
  if (mk != 0) {
    set_err(err, "%s: cannot create: %s", o->output_dir, strerror(errno));
    rc = FL_EIO;
    goto done;
  }
  g.tmp = fl_sprintf("%s/.cryptogen.XXXXXX", o->output_dir);
  if (mkdtemp(g.tmp) == NULL) {
    set_err(err, "%s: cannot create a temporary directory: %s", o->output_dir,
            strerror(errno));
    fl_free(g.tmp);
    g.tmp = NULL;
    rc = FL_EIO;
    goto done;
  }
  for (size_t i = 0; i < g.n_orgs && rc == FL_OK; i++) rc = make_org(&g, &g.orgs[i]);

  /* Move each organisation into place. */
  for (size_t i = 0; i < g.n_orgs && rc == FL_OK; i++) {
    const org_spec_t *org = &g.orgs[i];
    char *from = fl_sprintf("%s/%s/%s", g.tmp, kind_dir(org), org->domain);
    char *to = fl_sprintf("%s/%s/%s", o->output_dir, kind_dir(org), org->domain);
    if (o->force && remove_tree(to, 0) != 0) {
      set_err(err, "%s: cannot remove the old material: %s", to, strerror(errno));
      rc = FL_EIO;
    } else if (mkparents(to) != 0 || rename(from, to) != 0) {
      set_err(err, "%s: cannot move into place: %s", to, strerror(errno));
      rc = FL_EIO;
    }
    fl_free(from);
    fl_free(to);
  }
  FL_DEBUG("cryptogen", "generated orgs=%zu identities=%zu out=%s", g.n_orgs, g.identities,
           o->output_dir);

done:
  if (g.tmp != NULL) {
    remove_tree(g.tmp, 0);
    fl_free(g.tmp);
  }
  if (rc == FL_OK && result != NULL) {
    result->orgs = g.n_orgs;
    result->identities = g.identities;
  }
  for (size_t i = 0; i < g.n_orgs; i++) org_spec_free(&g.orgs[i]);
  fl_free(g.orgs);
  return rc;
}
