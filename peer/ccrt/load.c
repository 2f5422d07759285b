/* SPDX-License-Identifier: Apache-2.0
 *
 * load.c: the runtime object, loading chaincode shared objects, and the
 * simulate entry point that drives one of the two execution modes.
 *
 * Loading reads the whole .so into memory and hashes THOSE bytes; if the
 * SHA-256 matches the definition it copies them into a sealed memfd and
 * dlopens /proc/self/fd/<n>, so the code that runs is exactly the code that
 * was hashed (no window in which the file could be swapped). The memfd stays
 * open while the chaincode is loaded: glibc recognises an already-loaded
 * object by its path, and a reused fd number must never alias a different
 * chaincode.
 */
/* memfd_create, F_ADD_SEALS and the F_SEAL_* flags are Linux extensions. */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "common/base/file.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/crypto/hash.h"
#include "peer/ccrt/ccrt_int.h"

#define DEFAULT_MAX_SO (256u * 1024u * 1024u)

void fl__ccrt_err(char **err, const char *fmt, ...) {
  if (!err) return;
  va_list ap;
  va_start(ap, fmt);
  char tmp[1];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  char *s = fl_malloc((size_t)n + 1);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  fl_free(*err);
  *err = s;
}

fl_status_t fl_ccrt_new(const fl_ccrt_opts_t *opts, fl_ccrt_t **out) {
  if (!out) return FL_EINVAL;
  *out = NULL;
  if (!opts || !opts->cc_dir || !*opts->cc_dir) return FL_EINVAL;
  if (opts->mode != FL_CCRT_FORK && opts->mode != FL_CCRT_IN_PROCESS) return FL_EINVAL;
  if (opts->workers > 64) return FL_EINVAL;
  fl_ccrt_t *rt = fl_calloc(1, sizeof *rt);
  rt->cc_dir = fl_strdup(opts->cc_dir);
  rt->mode = opts->mode;
  rt->workers = opts->workers ? opts->workers : 2;
  rt->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 30000;
  rt->max_so_bytes = opts->max_so_bytes ? opts->max_so_bytes : DEFAULT_MAX_SO;
  *out = rt;
  return FL_OK;
}

static void cc_free(fl_ccrt_cc_t *cc) {
  if (!cc) return;
  if (cc->workers) fl__pool_stop(cc);
  if (cc->dl) dlclose(cc->dl);
  if (cc->memfd >= 0) close(cc->memfd);
  pthread_mutex_destroy(&cc->mu);
  pthread_cond_destroy(&cc->cv);
  fl_free(cc->name);
  fl_free(cc->version);
  fl_free(cc);
}

void fl_ccrt_free(fl_ccrt_t *rt) {
  if (!rt) return;
  while (rt->ccs) {
    fl_ccrt_cc_t *cc = rt->ccs;
    rt->ccs = cc->next;
    cc_free(cc);
  }
  fl_free(rt->cc_dir);
  fl_free(rt);
}

fl_ccrt_cc_t *fl_ccrt_find(fl_ccrt_t *rt, const char *name) {
  if (!rt || !name) return NULL;
  for (fl_ccrt_cc_t *cc = rt->ccs; cc; cc = cc->next)
    if (strcmp(cc->name, name) == 0) return cc;
  return NULL;
}

const char *fl_ccrt_cc_name(const fl_ccrt_cc_t *cc) { return cc->name; }
const char *fl_ccrt_cc_version(const fl_ccrt_cc_t *cc) { return cc->version; }

unsigned fl_ccrt_cc_live_workers(fl_ccrt_cc_t *cc) {
  return cc && cc->workers ? fl__pool_live(cc) : 0;
}

fl_status_t fl_ccrt_file_sha256(const char *path, size_t max_bytes,
                                uint8_t out[FL_CCRT_HASH_LEN]) {
  if (!path || !out) return FL_EINVAL;
  fl_sbuf_t b = {0};
  fl_status_t rc = fl_file_read(path, max_bytes ? max_bytes : DEFAULT_MAX_SO, &b);
  if (rc == FL_OK) fl_sha256(b.data, b.len, out);
  fl_sbuf_free(&b);
  return rc;
}

/* Copies bytes into a sealed memfd; returns its fd or -1. */
static int sealed_memfd(const char *name, fl_buf_t bytes) {
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off < bytes.len) {
    ssize_t n = write(fd, bytes.data + off, bytes.len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) goto fail;
    off += (size_t)n;
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    goto fail;
  return fd;
fail:
  close(fd);
  return -1;
}

static bool bad_def(const fl_ccrt_def_t *d) {
  return !d || !d->name || !*d->name || !d->version || !d->sha256 || !d->library ||
         !*d->library || strchr(d->library, '/') || strcmp(d->library, ".") == 0 ||
         strcmp(d->library, "..") == 0;
}

fl_status_t fl_ccrt_load(fl_ccrt_t *rt, const fl_ccrt_def_t *def,
                         fl_ccrt_cc_t **out, char **err) {
  if (out) *out = NULL;
  if (err) *err = NULL;
  if (!rt || !out || bad_def(def)) {
    fl__ccrt_err(err, "bad chaincode definition (name, version, sha256 and a plain "
                      "library file name are required)");
    return FL_EINVAL;
  }
  if (fl_ccrt_find(rt, def->name)) {
    fl__ccrt_err(err, "chaincode %s is already loaded", def->name);
    return FL_EEXIST;
  }
  fl_status_t rc;
  fl_sbuf_t bytes = {0};
  fl_ccrt_cc_t *cc = NULL;
  char *path = fl_sprintf("%s/%s", rt->cc_dir, def->library);
  rc = fl_file_read(path, rt->max_so_bytes, &bytes);
  if (rc != FL_OK) {
    fl__ccrt_err(err, "chaincode %s: cannot read %s: %s", def->name, path,
                 rc == FL_ETOOBIG ? "larger than the limit" : fl_status_str(rc));
    goto fail;
  }
  uint8_t got[FL_CCRT_HASH_LEN];
  fl_sha256(bytes.data, bytes.len, got);
  if (memcmp(got, def->sha256, FL_CCRT_HASH_LEN) != 0) {
    char hg[2 * FL_CCRT_HASH_LEN + 1], hw[2 * FL_CCRT_HASH_LEN + 1];
    fl_hex_encode(got, FL_CCRT_HASH_LEN, hg);
    fl_hex_encode(def->sha256, FL_CCRT_HASH_LEN, hw);
    fl__ccrt_err(err,
                 "chaincode %s: refusing %s: its SHA-256 is %s but the definition "
                 "requires %s",
                 def->name, path, hg, hw);
    rc = FL_EPERM;
    goto fail;
  }

  cc = fl_calloc(1, sizeof *cc);
  cc->memfd = -1;
  pthread_mutex_init(&cc->mu, NULL);
  pthread_cond_init(&cc->cv, NULL);
  cc->rt = rt;
  cc->name = fl_strdup(def->name);
  cc->version = fl_strdup(def->version);
  cc->memfd = sealed_memfd(def->name, fl_sbuf_view(&bytes));
  if (cc->memfd < 0) {
    fl__ccrt_err(err, "chaincode %s: memfd: %s", def->name, strerror(errno));
    rc = FL_EINTERNAL;
    goto fail;
  }
  char fdpath[64];
  snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", cc->memfd);
  cc->dl = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
  if (!cc->dl) {
    const char *why = dlerror();
    fl__ccrt_err(err, "chaincode %s: %s is not a loadable shared object: %s", def->name,
                 path, why ? why : "?");
    rc = FL_ECONFIG;
    goto fail;
  }
  /* dlsym returns an object pointer; POSIX guarantees it converts to a
   * function pointer. Copy through memcpy to stay within ISO C. */
  void *sym = dlsym(cc->dl, FL_CC_ENTRY_SYMBOL);
  if (!sym) {
    fl__ccrt_err(err, "chaincode %s: %s does not export %s", def->name, path,
                 FL_CC_ENTRY_SYMBOL);
    rc = FL_ECONFIG;
    goto fail;
  }
  const fl_chaincode_t *(*entry)(void);
  memcpy(&entry, &sym, sizeof entry);
  const fl_chaincode_t *d = entry();
  if (!d) {
    fl__ccrt_err(err, "chaincode %s: %s returned no descriptor", def->name,
                 FL_CC_ENTRY_SYMBOL);
    rc = FL_ECONFIG;
    goto fail;
  }
  /* Versions from FL_CC_ABI_MIN_VERSION on only appended to the stub's
   * table, which an older chaincode never reads past (shim.h). */
  if (d->abi_version < FL_CC_ABI_MIN_VERSION || d->abi_version > FL_CC_ABI_VERSION) {
    fl__ccrt_err(err, "chaincode %s: %s has ABI version %u, this peer speaks %u to %u",
                 def->name, path, (unsigned)d->abi_version, (unsigned)FL_CC_ABI_MIN_VERSION,
                 (unsigned)FL_CC_ABI_VERSION);
    rc = FL_ECONFIG;
    goto fail;
  }
  if (!d->name || strcmp(d->name, def->name) != 0) {
    fl__ccrt_err(err, "chaincode %s: %s calls itself \"%s\"", def->name, path,
                 d->name ? d->name : "(null)");
    rc = FL_ECONFIG;
    goto fail;
  }
  if (!d->invoke) {
    fl__ccrt_err(err, "chaincode %s: %s has no invoke function", def->name, path);
    rc = FL_ECONFIG;
    goto fail;
  }
  cc->desc = d;
  if (rt->mode == FL_CCRT_FORK) {
    rc = fl__pool_start(cc, err);
    if (rc != FL_OK) goto fail;
  }
  cc->next = rt->ccs;
  rt->ccs = cc;
  FL_INFO(FL__CCRT_LOG, "chaincode loaded name=%s version=%s library=%s mode=%s workers=%u",
          cc->name, cc->version, def->library,
          rt->mode == FL_CCRT_FORK ? "fork" : "in-process", cc->nworkers);
  fl_free(path);
  fl_sbuf_free(&bytes);
  *out = cc;
  return FL_OK;

fail:
  FL_ERROR(FL__CCRT_LOG, "chaincode load failed name=%s rc=%s: %s", def->name,
           fl_status_name(rc), err && *err ? *err : "");
  cc_free(cc);
  fl_free(path);
  fl_sbuf_free(&bytes);
  return rc;
}

/* ---- simulate ------------------------------------------------------------ */

static bool ops_ok(const fl_ccrt_state_ops_t *o) {
  return o && o->get && o->range_new && o->range_next && o->range_free && o->hist_new &&
         o->hist_next && o->hist_free && o->blob_get;
}

static bool bufs_ok(const fl_buf_t *b, size_t n) {
  if (n && !b) return false;
  for (size_t i = 0; i < n; i++)
    if (b[i].len && !b[i].data) return false;
  return true;
}

fl_status_t fl_ccrt_simulate(fl_ccrt_cc_t *cc, const fl_ccrt_state_ops_t *ops,
                             void *ctx, const fl_ccrt_invocation_t *inv,
                             fl_ccrt_result_t **out, char **err) {
  if (out) *out = NULL;
  if (err) *err = NULL;
  if (!cc || !out || !ops_ok(ops) || !inv || inv->nargs < 1 ||
      !bufs_ok(inv->args, inv->nargs) || !bufs_ok(inv->blobs, inv->nblobs) ||
      !bufs_ok(&inv->transient, 1) || !bufs_ok(&inv->tx_id, 1) ||
      !bufs_ok(&inv->creator.mspid, 1) || !bufs_ok(&inv->creator.cert_pem, 1) ||
      !bufs_ok(&inv->creator.role, 1)) {
    fl__ccrt_err(err, "bad invocation (needs chaincode, state ops and args[0])");
    return FL_EINVAL;
  }
  fl__sim_t sim;
  fl__sim_init(&sim, ops, ctx);
  int32_t status = 0;
  fl_sbuf_t msg = {0}, payload = {0};
  uint64_t t0 = fl_mono_ns();
  fl_status_t rc;
  if (cc->rt->mode == FL_CCRT_FORK)
    rc = fl__fork_simulate(cc, &sim, inv, &status, &msg, &payload, err);
  else
    rc = fl__inproc_simulate(cc, &sim, inv, &status, &msg, &payload, err);
  if (rc == FL_OK && sim.failed != FL_OK) {
    rc = sim.failed;
    if (rc == FL_ETIMEDOUT)
      fl__ccrt_err(err, "chaincode %s timed out after %u ms", cc->name,
                   (unsigned)cc->rt->timeout_ms);
    else
      fl__ccrt_err(err, "chaincode %s: reading the world state failed: %s", cc->name,
                   fl_status_str(rc));
  }
  if (rc == FL_OK) {
    rc = fl__sim_finish(&sim, cc->name, status, fl_sbuf_view(&msg),
                        fl_sbuf_view(&payload), out);
    if (rc != FL_OK)
      fl__ccrt_err(err, "chaincode %s: cannot encode the result: %s", cc->name,
                   fl_status_str(rc));
    else
      (*out)->elapsed_ns = fl_mono_ns() - t0;
  }
  if (rc != FL_OK)
    FL_WARN(FL__CCRT_LOG, "simulation failed chaincode=%s txid=%.*s rc=%s", cc->name,
            (int)(inv->tx_id.len > 64 ? 64 : inv->tx_id.len),
            inv->tx_id.len ? (const char *)inv->tx_id.data : "", fl_status_name(rc));
  fl__sim_close(&sim);
  fl_sbuf_free(&msg);
  fl_sbuf_free(&payload);
  return rc;
}
