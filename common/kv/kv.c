/* SPDX-License-Identifier: Apache-2.0
 *
 * kv.c: fl_kv over RocksDB's C API (rocksdb/c.h, RocksDB 7.8).
 *
 * The wrapper adds four things to the C API: column families by name (the
 * full on-disk list is opened, so extra CFs never block an open), error
 * translation to fl_status_t with the text kept per thread, bounded
 * iterators that work the same forward and in reverse, and a write counter
 * with fault injection for crash and I/O-failure tests.
 *
 * Invariants:
 *   1. kv->cfs[0] is "default"; every CF handle lives until fl_kv_close.
 *   2. kv->live counts iterators, pins and snapshots not yet freed; it is 0
 *      at fl_kv_close (FL_ASSERT), because each of them points into the DB.
 *   3. Every write call (put, delete, batch write) passes through
 *      write_begin exactly once, which counts it and applies the armed fault
 *      before RocksDB is touched; a FAIL fault never reaches RocksDB, so
 *      nothing of the failed write exists afterwards.
 *   4. Every errptr RocksDB hands back is freed in set_rocks_error.
 */
#include "common/kv/kv.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "common/base/alloc.h"
#include "common/base/log.h"
#include "common/kv/kv_int.h"

#define MOD "kv"
#define DEFAULT_CACHE_BYTES ((size_t)64 << 20)
#define DEFAULT_WBUF_BYTES ((size_t)32 << 20)
#define DEFAULT_FAULT_EXIT 86
#define LARGE_VALUE_BYTES 4096 /* large_values CFs: min size kept in blob files */

struct fl_kv_cf_s {
  char *name;
  rocksdb_column_family_handle_t *h;
  const fl_kv_t *owner;
};

struct fl_kv_s {
  rocksdb_t *db;
  char *path;
  fl_kv_cf_t **cfs;   /* cfs[0] is "default" */
  size_t ncfs;
  rocksdb_cache_t *cache;
  rocksdb_writeoptions_t *wo_sync;
  rocksdb_writeoptions_t *wo_async;
  rocksdb_readoptions_t *ro_latest;
  rocksdb_readoptions_t *ro_nofill;  /* fl_kv_probe: fill_cache off */
  rocksdb_flushoptions_t *fo;
  atomic_long live;               /* invariant 2 */
  atomic_uint_fast64_t writes;    /* invariant 3 */
  atomic_bool fault_armed;        /* fast path: no lock when off */
  pthread_mutex_t fault_mu;       /* guards fault */
  fl_kv_fault_t fault;
};

struct fl_kv_batch_s {
  rocksdb_writebatch_t *wb;
  const fl_kv_t *owner;  /* handle of the CFs used so far; NULL = none yet */
};

struct fl_kv_snapshot_s {
  const rocksdb_snapshot_t *s;
  fl_kv_t *kv;
};

struct fl_kv_pinned_s {
  rocksdb_pinnableslice_t *ps;
  fl_kv_t *kv;
};

struct fl_kv_iter_s {
  fl_kv_t *kv;
  rocksdb_readoptions_t *ro;
  rocksdb_iterator_t *it;
  uint8_t *lo;   /* inclusive lower bound, owned; NULL = none */
  size_t lolen;
  uint8_t *hi;   /* exclusive upper bound, owned; NULL = none */
  size_t hilen;
  bool reverse;
  bool started;
  bool done;
};

/* ---- errors ---------------------------------------------------------- */

/* Per-thread, like errno: concurrent calls on one handle never see each
 * other's text, and a fixed buffer means nothing to free at thread exit. */
static _Thread_local char last_err[512];

const char *fl_kv_last_error(void) { return last_err; }

__attribute__((format(printf, 2, 3)))
static fl_status_t set_error(fl_status_t rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_err, sizeof last_err, fmt, ap);
  va_end(ap);
  return rc;
}

/* Classifies a RocksDB status string. The C API gives only
 * Status::ToString(), so the code is read back from its text: the prefix
 * names the Status code ("Corruption: ...", "IO error: ...") and the errno
 * text of an I/O error is carried in the message. */
fl_status_t fl__kv_status_from_rocks(const char *msg) {
  if (strstr(msg, "No space left on device") != NULL ||
      strstr(msg, "NoSpace") != NULL)
    return FL_ENOSPC;
  if (strncmp(msg, "Corruption", 10) == 0) return FL_ECORRUPT;
  if (strstr(msg, "lock hold by current process") != NULL ||
      (strstr(msg, "LOCK") != NULL &&
       (strstr(msg, "Resource temporarily unavailable") != NULL ||
        strstr(msg, "No locks available") != NULL)))
    return FL_EUNAVAIL;
  if (strstr(msg, "does not exist (create_if_missing is false)") != NULL)
    return FL_NOTFOUND;
  return FL_ESTORE;
}

static fl_status_t set_rocks_error(char *err, const char *what) {
  fl_status_t rc = fl__kv_status_from_rocks(err);
  set_error(rc, "%s: %s", what, err);
  rocksdb_free(err);
  return rc;
}

static bool view_ok(fl_buf_t b) { return b.len == 0 || b.data != NULL; }

/* RocksDB takes (const char *, size_t); an empty view may have data NULL. */
static const char *cptr(fl_buf_t b) {
  return b.data != NULL ? (const char *)b.data : "";
}

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                     size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n > 0 ? memcmp(a, b, n) : 0;
  if (c != 0) return c;
  return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/* ---- open / close ---------------------------------------------------- */

static rocksdb_options_t *base_options(const fl_kv_opts_t *o) {
  rocksdb_options_t *opt = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(opt, o->create_if_missing);
  rocksdb_options_set_create_missing_column_families(opt, 1);
  rocksdb_options_set_paranoid_checks(opt, 1);
  /* Recover up to the last intact WAL record: a torn tail from a crash is
   * dropped, never half-applied; a batch is one record. */
  rocksdb_options_set_wal_recovery_mode(opt, 2 /* kPointInTimeRecovery */);
  rocksdb_options_set_compaction_style(opt, rocksdb_level_compaction);
  rocksdb_options_set_level_compaction_dynamic_level_bytes(opt, 1);
  rocksdb_options_set_compression(opt, rocksdb_lz4_compression);
  rocksdb_options_set_bottommost_compression(opt, rocksdb_zstd_compression);
  rocksdb_options_set_max_background_jobs(opt, 4);
  rocksdb_options_set_bytes_per_sync(opt, (uint64_t)1 << 20);
  rocksdb_options_set_wal_bytes_per_sync(opt, (uint64_t)1 << 20);
  size_t wbuf = o->write_buffer_bytes ? o->write_buffer_bytes
                                      : DEFAULT_WBUF_BYTES;
  rocksdb_options_set_write_buffer_size(opt, wbuf);
  if (o->memtable_budget_bytes > 0)
    rocksdb_options_set_db_write_buffer_size(opt, o->memtable_budget_bytes);
  /* With several CFs a rarely written one would pin old WAL files; force
   * its flush once the WAL grows past this. */
  rocksdb_options_set_max_total_wal_size(opt, (uint64_t)wbuf * 8);
  rocksdb_options_set_keep_log_file_num(opt, 4);
  rocksdb_options_set_max_log_file_size(opt, (size_t)16 << 20);
  return opt;
}

static rocksdb_options_t *cf_options(rocksdb_options_t *base,
                                     rocksdb_cache_t *cache,
                                     const fl_kv_cf_spec_t *spec) {
  rocksdb_options_t *opt = rocksdb_options_create_copy(base);
  if (spec->large_values) {
    /* Written once and never deleted: no blob GC, which would rewrite live
     * blobs whenever a compaction touches the oldest files. */
    rocksdb_options_set_enable_blob_files(opt, 1);
    rocksdb_options_set_min_blob_size(opt, LARGE_VALUE_BYTES);
    rocksdb_options_set_blob_compression_type(opt, rocksdb_no_compression);
    rocksdb_options_set_enable_blob_gc(opt, 0);
  }
  if (spec->transient) {
    rocksdb_options_set_compression(opt, rocksdb_no_compression);
    rocksdb_options_set_bottommost_compression(opt, rocksdb_no_compression);
  }
  rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
  rocksdb_block_based_options_set_block_cache(t, cache);
  rocksdb_block_based_options_set_block_size(t, 16 * 1024);
  rocksdb_block_based_options_set_format_version(t, 5);
  rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
  rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t,
                                                                          1);
  if (spec->bloom) {
    /* set_filter_policy takes ownership of the policy. */
    rocksdb_block_based_options_set_filter_policy(
        t, rocksdb_filterpolicy_create_bloom_full(10));
  }
  rocksdb_options_set_block_based_table_factory(opt, t);  /* copies t */
  rocksdb_block_based_options_destroy(t);
  return opt;
}

/* Adds the CF to the list unless present (then ORs its tuning flags in);
 * returns its index. names[i] is owned; specs[i].name is not used. */
static size_t name_add(char ***names, fl_kv_cf_spec_t **specs, size_t *n,
                       const char *name, const fl_kv_cf_spec_t *want) {
  for (size_t i = 0; i < *n; i++) {
    if (strcmp((*names)[i], name) == 0) {
      (*specs)[i].bloom = (*specs)[i].bloom || want->bloom;
      (*specs)[i].large_values = (*specs)[i].large_values || want->large_values;
      (*specs)[i].transient = (*specs)[i].transient || want->transient;
      return i;
    }
  }
  *names = fl_reallocarray(*names, *n + 1, sizeof **names);
  *specs = fl_reallocarray(*specs, *n + 1, sizeof **specs);
  (*names)[*n] = fl_strdup(name);
  (*specs)[*n] = *want;
  (*specs)[*n].name = NULL;
  return (*n)++;
}

static bool file_exists(const char *dir, const char *leaf) {
  char *p = fl_sprintf("%s/%s", dir, leaf);
  struct stat st;
  bool ok = stat(p, &st) == 0;
  fl_free(p);
  return ok;
}

fl_status_t fl_kv_open(const char *path, const fl_kv_opts_t *opts,
                       fl_kv_t **out) {
  if (out != NULL) *out = NULL;
  if (path == NULL || *path == '\0' || opts == NULL || out == NULL)
    return set_error(FL_EINVAL, "kv open: NULL or empty argument");
  if (opts->ncfs > 0 && opts->cfs == NULL)
    return set_error(FL_EINVAL, "kv open: ncfs > 0 with cfs NULL");
  for (size_t i = 0; i < opts->ncfs; i++) {
    if (opts->cfs[i].name == NULL || opts->cfs[i].name[0] == '\0')
      return set_error(FL_EINVAL, "kv open: column family %zu has no name", i);
    for (size_t j = 0; j < i; j++)
      if (strcmp(opts->cfs[i].name, opts->cfs[j].name) == 0)
        return set_error(FL_EINVAL, "kv open: duplicate column family %s",
                         opts->cfs[i].name);
  }

  struct stat st;
  if (stat(path, &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return set_error(FL_EINVAL, "kv open: %s exists and is not a directory",
                       path);
  } else if (errno != ENOENT) {
    return set_error(FL_ESTORE, "kv open: stat %s: %s", path, strerror(errno));
  } else if (!opts->create_if_missing) {
    return set_error(FL_NOTFOUND,
                     "kv open: %s does not exist (create_if_missing is off)",
                     path);
  }

  fl_status_t rc = FL_OK;
  fl_kv_t *kv = NULL;
  rocksdb_options_t *base = NULL;
  rocksdb_options_t **cfo = NULL;
  rocksdb_column_family_handle_t **handles = NULL;
  char **names = NULL;
  fl_kv_cf_spec_t *specs = NULL;
  static const fl_kv_cf_spec_t plain = {0};
  size_t n = 0;
  char *err = NULL;

  kv = fl_calloc(1, sizeof *kv);
  kv->path = fl_strdup(path);
  atomic_init(&kv->live, 0);
  atomic_init(&kv->writes, 0);
  atomic_init(&kv->fault_armed, false);
  pthread_mutex_init(&kv->fault_mu, NULL);
  if (opts->fault != NULL) {
    rc = fl_kv_fault_set(kv, opts->fault);
    if (rc < 0) goto fail;
  }
  kv->cache = rocksdb_cache_create_lru(opts->block_cache_bytes
                                           ? opts->block_cache_bytes
                                           : DEFAULT_CACHE_BYTES);
  base = base_options(opts);

  name_add(&names, &specs, &n, FL_KV_DEFAULT_CF, &plain);
  for (size_t i = 0; i < opts->ncfs; i++)
    name_add(&names, &specs, &n, opts->cfs[i].name, &opts->cfs[i]);
  /* An existing DB must be opened with all of its CFs. */
  if (file_exists(path, "CURRENT")) {
    size_t nexist = 0;
    char **exist = rocksdb_list_column_families(base, path, &nexist, &err);
    /* RocksDB 7.8 returns a (possibly empty) malloc'd array even on error:
     * free it in both cases. */
    if (err == NULL)
      for (size_t i = 0; i < nexist; i++)
        name_add(&names, &specs, &n, exist[i], &plain);
    if (exist != NULL) rocksdb_list_column_families_destroy(exist, nexist);
    if (err != NULL) {
      rc = set_rocks_error(err, "kv open: list column families");
      goto fail;
    }
  }

  cfo = fl_calloc(n, sizeof *cfo);
  for (size_t i = 0; i < n; i++) cfo[i] = cf_options(base, kv->cache, &specs[i]);
  handles = fl_calloc(n, sizeof *handles);
  kv->db = rocksdb_open_column_families(
      base, path, (int)n, (const char *const *)names,
      (const rocksdb_options_t *const *)cfo, handles, &err);
  if (err != NULL) {
    kv->db = NULL;
    rc = set_rocks_error(err, "kv open");
    goto fail;
  }
  kv->cfs = fl_calloc(n, sizeof *kv->cfs);
  kv->ncfs = n;
  for (size_t i = 0; i < n; i++) {
    kv->cfs[i] = fl_malloc(sizeof *kv->cfs[i]);
    kv->cfs[i]->name = names[i];
    kv->cfs[i]->h = handles[i];
    kv->cfs[i]->owner = kv;
    names[i] = NULL;
  }
  kv->wo_sync = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(kv->wo_sync, 1);
  kv->wo_async = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(kv->wo_async, 0);
  kv->ro_latest = rocksdb_readoptions_create();
  kv->ro_nofill = rocksdb_readoptions_create();
  rocksdb_readoptions_set_fill_cache(kv->ro_nofill, 0);
  kv->fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(kv->fo, 1);
  FL_DEBUG(MOD, "opened path=%s cfs=%zu", path, n);
  *out = kv;
  kv = NULL;

fail:
  for (size_t i = 0; i < n; i++) {
    if (cfo != NULL && cfo[i] != NULL) rocksdb_options_destroy(cfo[i]);
    fl_free(names[i]);
  }
  fl_free(cfo);
  fl_free(handles);
  fl_free(names);
  fl_free(specs);
  if (base != NULL) rocksdb_options_destroy(base);
  fl_kv_close(kv);
  return rc;
}

void fl_kv_close(fl_kv_t *kv) {
  if (kv == NULL) return;
  long live = atomic_load(&kv->live);
  if (live != 0)
    FL_ERROR(MOD, "close with live iterators/pins/snapshots path=%s live=%ld",
             kv->path, live);
  FL_ASSERT(live == 0);
  for (size_t i = 0; i < kv->ncfs; i++) {
    rocksdb_column_family_handle_destroy(kv->cfs[i]->h);
    fl_free(kv->cfs[i]->name);
    fl_free(kv->cfs[i]);
  }
  fl_free(kv->cfs);
  if (kv->db != NULL) rocksdb_close(kv->db);
  if (kv->cache != NULL) rocksdb_cache_destroy(kv->cache);
  if (kv->wo_sync != NULL) rocksdb_writeoptions_destroy(kv->wo_sync);
  if (kv->wo_async != NULL) rocksdb_writeoptions_destroy(kv->wo_async);
  if (kv->ro_latest != NULL) rocksdb_readoptions_destroy(kv->ro_latest);
  if (kv->ro_nofill != NULL) rocksdb_readoptions_destroy(kv->ro_nofill);
  if (kv->fo != NULL) rocksdb_flushoptions_destroy(kv->fo);
  pthread_mutex_destroy(&kv->fault_mu);
  fl_free(kv->path);
  fl_free(kv);
}

fl_kv_cf_t *fl_kv_cf(fl_kv_t *kv, const char *name) {
  if (kv == NULL) return NULL;
  if (name == NULL) return kv->cfs[0];
  for (size_t i = 0; i < kv->ncfs; i++)
    if (strcmp(kv->cfs[i]->name, name) == 0) return kv->cfs[i];
  return NULL;
}

const char *fl_kv_cf_name(const fl_kv_cf_t *cf) {
  return cf != NULL ? cf->name : NULL;
}

size_t fl_kv_cf_count(const fl_kv_t *kv) { return kv != NULL ? kv->ncfs : 0; }

const char *fl_kv_cf_name_at(const fl_kv_t *kv, size_t i) {
  return kv != NULL && i < kv->ncfs ? kv->cfs[i]->name : NULL;
}

static rocksdb_column_family_handle_t *cfh(fl_kv_t *kv, fl_kv_cf_t *cf) {
  return cf != NULL ? cf->h : kv->cfs[0]->h;
}

/* A CF handle of another database would make RocksDB write into the wrong
 * place (or crash): refuse it. */
static bool cf_ok(const fl_kv_t *kv, const fl_kv_cf_t *cf) {
  return cf == NULL || cf->owner == kv;
}

/* ---- reads ----------------------------------------------------------- */

static fl_status_t get_pinned_ro(fl_kv_t *kv, fl_kv_cf_t *cf,
                                 const fl_kv_snapshot_t *snap, fl_buf_t key,
                                 bool fill_cache,
                                 rocksdb_pinnableslice_t **ps) {
  *ps = NULL;
  if (kv == NULL || !view_ok(key) || !cf_ok(kv, cf))
    return set_error(FL_EINVAL, "kv get: bad argument");
  if (snap != NULL && snap->kv != kv)
    return set_error(FL_EINVAL, "kv get: snapshot of another handle");
  rocksdb_readoptions_t *ro = fill_cache ? kv->ro_latest : kv->ro_nofill;
  if (snap != NULL) {
    ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap->s);
    rocksdb_readoptions_set_fill_cache(ro, fill_cache);
  }
  char *err = NULL;
  *ps = rocksdb_get_pinned_cf(kv->db, ro, cfh(kv, cf), cptr(key), key.len,
                              &err);
  if (snap != NULL) rocksdb_readoptions_destroy(ro);
  if (err != NULL) {
    if (*ps != NULL) rocksdb_pinnableslice_destroy(*ps);
    *ps = NULL;
    return set_rocks_error(err, "kv get");
  }
  return *ps != NULL ? FL_OK : FL_NOTFOUND;
}

static fl_status_t get_pinned(fl_kv_t *kv, fl_kv_cf_t *cf,
                              const fl_kv_snapshot_t *snap, fl_buf_t key,
                              rocksdb_pinnableslice_t **ps) {
  return get_pinned_ro(kv, cf, snap, key, true, ps);
}

fl_status_t fl_kv_probe(fl_kv_t *kv, fl_kv_cf_t *cf,
                        const fl_kv_snapshot_t *snap, fl_buf_t key,
                        fl_sbuf_t *val) {
  if (val != NULL) val->len = 0;
  rocksdb_pinnableslice_t *ps = NULL;
  fl_status_t rc = get_pinned_ro(kv, cf, snap, key, false, &ps);
  if (rc < 0) return rc;
  if (val != NULL) {
    size_t n = 0;
    const char *v = rocksdb_pinnableslice_value(ps, &n);
    fl_sbuf_append(val, v, n);
    if (val->data == NULL) fl_sbuf_reserve(val, 1);  /* as fl_kv_get */
  }
  rocksdb_pinnableslice_destroy(ps);
  return FL_OK;
}

fl_status_t fl_kv_get(fl_kv_t *kv, fl_kv_cf_t *cf, const fl_kv_snapshot_t *snap,
                      fl_buf_t key, fl_sbuf_t *val) {
  if (val == NULL) return set_error(FL_EINVAL, "kv get: NULL out");
  val->len = 0;
  rocksdb_pinnableslice_t *ps = NULL;
  fl_status_t rc = get_pinned(kv, cf, snap, key, &ps);
  if (rc < 0) return rc;
  size_t vlen = 0;
  const char *v = rocksdb_pinnableslice_value(ps, &vlen);
  fl_sbuf_append(val, v, vlen);
  if (val->data == NULL) fl_sbuf_reserve(val, 1);  /* FL_OK => data != NULL */
  rocksdb_pinnableslice_destroy(ps);
  return FL_OK;
}

fl_status_t fl_kv_get_pinned(fl_kv_t *kv, fl_kv_cf_t *cf,
                             const fl_kv_snapshot_t *snap, fl_buf_t key,
                             fl_kv_pinned_t **pin, fl_buf_t *val) {
  if (pin != NULL) *pin = NULL;
  if (val != NULL) *val = (fl_buf_t){0};
  if (pin == NULL || val == NULL)
    return set_error(FL_EINVAL, "kv get: NULL out");
  rocksdb_pinnableslice_t *ps = NULL;
  fl_status_t rc = get_pinned(kv, cf, snap, key, &ps);
  if (rc < 0) return rc;
  size_t vlen = 0;
  const char *v = rocksdb_pinnableslice_value(ps, &vlen);
  *pin = fl_malloc(sizeof **pin);
  (*pin)->ps = ps;
  (*pin)->kv = kv;
  atomic_fetch_add(&kv->live, 1);
  *val = FL_BUF(v, vlen);
  return FL_OK;
}

void fl_kv_pinned_free(fl_kv_pinned_t *pin) {
  if (pin == NULL) return;
  rocksdb_pinnableslice_destroy(pin->ps);
  atomic_fetch_sub(&pin->kv->live, 1);
  fl_free(pin);
}

/* ---- fault injection and writes -------------------------------------- */

fl_status_t fl_kv_fault_set(fl_kv_t *kv, const fl_kv_fault_t *f) {
  if (kv == NULL) return set_error(FL_EINVAL, "kv fault: NULL handle");
  if (f != NULL && f->mode != FL_KV_FAULT_NONE) {
    if (f->nth == 0 || (int)f->mode < (int)FL_KV_FAULT_NONE ||
        (int)f->mode > (int)FL_KV_FAULT_EXIT_AFTER)
      return set_error(FL_EINVAL, "kv fault: bad mode or nth == 0");
    if (f->mode == FL_KV_FAULT_FAIL && f->rc > 0)
      return set_error(FL_EINVAL, "kv fault: rc must be a negative status");
  }
  pthread_mutex_lock(&kv->fault_mu);
  if (f != NULL) kv->fault = *f;
  else kv->fault = (fl_kv_fault_t){0};
  atomic_store(&kv->writes, 0);
  atomic_store(&kv->fault_armed, kv->fault.mode != FL_KV_FAULT_NONE);
  pthread_mutex_unlock(&kv->fault_mu);
  return FL_OK;
}

uint64_t fl_kv_write_count(const fl_kv_t *kv) {
  return kv != NULL ? atomic_load(&kv->writes) : 0;
}

fl_status_t fl_kv_fault_parse(const char *spec, fl_kv_fault_t *f) {
  if (f == NULL) return set_error(FL_EINVAL, "kv fault: NULL out");
  *f = (fl_kv_fault_t){0};
  if (spec == NULL) return set_error(FL_EINVAL, "kv fault: NULL spec");
  static const struct {
    const char *name;
    fl_kv_fault_mode_t mode;
    int rc;
  } kinds[] = {
      {"fail:", FL_KV_FAULT_FAIL, FL_EIO},
      {"fail-nospc:", FL_KV_FAULT_FAIL, FL_ENOSPC},
      {"exit-before:", FL_KV_FAULT_EXIT_BEFORE, 0},
      {"exit-after:", FL_KV_FAULT_EXIT_AFTER, 0},
  };
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    size_t kl = strlen(kinds[i].name);
    if (strncmp(spec, kinds[i].name, kl) != 0) continue;
    const char *p = spec + kl;
    if (*p < '0' || *p > '9') break;
    char *end = NULL;
    errno = 0;
    unsigned long long nth = strtoull(p, &end, 10);
    if (errno != 0 || nth == 0) break;
    bool sticky = false;
    if (*end == ':' && kinds[i].mode == FL_KV_FAULT_FAIL &&
        strcmp(end + 1, "sticky") == 0)
      sticky = true;
    else if (*end != '\0')
      break;
    *f = (fl_kv_fault_t){.mode = kinds[i].mode, .nth = nth, .rc = kinds[i].rc,
                         .sticky = sticky};
    return FL_OK;
  }
  return set_error(FL_EINVAL, "kv fault: bad spec \"%s\"", spec);
}

/* Counts one write and applies the armed fault (invariant 3). Returns FL_OK
 * to go on, or the injected status. *exit_after is set to an exit status
 * when the process must _exit right after the write, else to -1. */
static fl_status_t write_begin(fl_kv_t *kv, const char *what,
                               int *exit_after) {
  *exit_after = -1;
  uint64_t n = atomic_fetch_add(&kv->writes, 1) + 1;
  if (!atomic_load_explicit(&kv->fault_armed, memory_order_acquire))
    return FL_OK;
  pthread_mutex_lock(&kv->fault_mu);
  fl_kv_fault_t f = kv->fault;
  pthread_mutex_unlock(&kv->fault_mu);
  bool hit = n == f.nth || (f.sticky && n > f.nth);
  if (!hit) return FL_OK;
  int code = f.exit_code ? f.exit_code : DEFAULT_FAULT_EXIT;
  switch (f.mode) {
    case FL_KV_FAULT_FAIL: {
      fl_status_t rc = f.rc < 0 ? (fl_status_t)f.rc : FL_EIO;
      return set_error(rc, "%s: injected fault at write %llu (%s)", what,
                       (unsigned long long)n, fl_status_str(rc));
    }
    case FL_KV_FAULT_EXIT_BEFORE:
      _exit(code);
    case FL_KV_FAULT_EXIT_AFTER:
      *exit_after = code;
      return FL_OK;
    case FL_KV_FAULT_NONE:
      break;
  }
  return FL_OK;
}

static fl_status_t write_end(char *err, const char *what, int exit_after) {
  fl_status_t rc = err != NULL ? set_rocks_error(err, what) : FL_OK;
  if (exit_after >= 0) _exit(exit_after);
  return rc;
}

fl_status_t fl_kv_put(fl_kv_t *kv, fl_kv_cf_t *cf, fl_buf_t key, fl_buf_t val,
                      bool sync) {
  if (kv == NULL || !view_ok(key) || !view_ok(val) || !cf_ok(kv, cf))
    return set_error(FL_EINVAL, "kv put: bad argument");
  int exit_after;
  fl_status_t rc = write_begin(kv, "kv put", &exit_after);
  if (rc < 0) return rc;
  char *err = NULL;
  rocksdb_put_cf(kv->db, sync ? kv->wo_sync : kv->wo_async, cfh(kv, cf),
                 cptr(key), key.len, cptr(val), val.len, &err);
  return write_end(err, "kv put", exit_after);
}

fl_status_t fl_kv_delete(fl_kv_t *kv, fl_kv_cf_t *cf, fl_buf_t key, bool sync) {
  if (kv == NULL || !view_ok(key) || !cf_ok(kv, cf))
    return set_error(FL_EINVAL, "kv delete: bad argument");
  int exit_after;
  fl_status_t rc = write_begin(kv, "kv delete", &exit_after);
  if (rc < 0) return rc;
  char *err = NULL;
  rocksdb_delete_cf(kv->db, sync ? kv->wo_sync : kv->wo_async, cfh(kv, cf),
                    cptr(key), key.len, &err);
  return write_end(err, "kv delete", exit_after);
}

/* ---- batches --------------------------------------------------------- */

fl_kv_batch_t *fl_kv_batch_new(void) {
  fl_kv_batch_t *b = fl_malloc(sizeof *b);
  b->wb = rocksdb_writebatch_create();
  b->owner = NULL;
  return b;
}

void fl_kv_batch_free(fl_kv_batch_t *b) {
  if (b == NULL) return;
  rocksdb_writebatch_destroy(b->wb);
  fl_free(b);
}

/* All CFs of one batch must belong to one handle (checked again at write). */
static bool batch_cf_ok(fl_kv_batch_t *b, const fl_kv_cf_t *cf) {
  if (cf == NULL) return true;
  if (b->owner == NULL) b->owner = cf->owner;
  return b->owner == cf->owner;
}

fl_status_t fl_kv_batch_put(fl_kv_batch_t *b, fl_kv_cf_t *cf, fl_buf_t key,
                            fl_buf_t val) {
  if (b == NULL || !view_ok(key) || !view_ok(val) || !batch_cf_ok(b, cf))
    return set_error(FL_EINVAL, "kv batch put: bad argument");
  if (cf != NULL)
    rocksdb_writebatch_put_cf(b->wb, cf->h, cptr(key), key.len, cptr(val),
                              val.len);
  else
    rocksdb_writebatch_put(b->wb, cptr(key), key.len, cptr(val), val.len);
  return FL_OK;
}

fl_status_t fl_kv_batch_delete(fl_kv_batch_t *b, fl_kv_cf_t *cf, fl_buf_t key) {
  if (b == NULL || !view_ok(key) || !batch_cf_ok(b, cf))
    return set_error(FL_EINVAL, "kv batch delete: bad argument");
  if (cf != NULL)
    rocksdb_writebatch_delete_cf(b->wb, cf->h, cptr(key), key.len);
  else
    rocksdb_writebatch_delete(b->wb, cptr(key), key.len);
  return FL_OK;
}

size_t fl_kv_batch_count(const fl_kv_batch_t *b) {
  if (b == NULL) return 0;
  int n = rocksdb_writebatch_count(b->wb);
  return n > 0 ? (size_t)n : 0;
}

size_t fl_kv_batch_bytes(const fl_kv_batch_t *b) {
  if (b == NULL) return 0;
  size_t n = 0;
  (void)rocksdb_writebatch_data(b->wb, &n);
  return n;
}

void fl_kv_batch_clear(fl_kv_batch_t *b) {
  if (b == NULL) return;
  rocksdb_writebatch_clear(b->wb);
  b->owner = NULL;
}

fl_status_t fl_kv_write(fl_kv_t *kv, fl_kv_batch_t *b, bool sync) {
  if (kv == NULL || b == NULL)
    return set_error(FL_EINVAL, "kv write: NULL argument");
  if (b->owner != NULL && b->owner != kv)
    return set_error(FL_EINVAL, "kv write: batch holds CFs of another handle");
  int exit_after;
  fl_status_t rc = write_begin(kv, "kv write", &exit_after);
  if (rc < 0) return rc;
  char *err = NULL;
  rocksdb_write(kv->db, sync ? kv->wo_sync : kv->wo_async, b->wb, &err);
  return write_end(err, "kv write", exit_after);
}

/* ---- snapshots ------------------------------------------------------- */

fl_kv_snapshot_t *fl_kv_snapshot_new(fl_kv_t *kv) {
  if (kv == NULL) return NULL;
  fl_kv_snapshot_t *s = fl_malloc(sizeof *s);
  s->s = rocksdb_create_snapshot(kv->db);
  s->kv = kv;
  atomic_fetch_add(&kv->live, 1);
  return s;
}

void fl_kv_snapshot_free(fl_kv_t *kv, fl_kv_snapshot_t *snap) {
  if (snap == NULL) return;
  FL_ASSERT(kv == snap->kv);
  rocksdb_release_snapshot(kv->db, snap->s);
  atomic_fetch_sub(&kv->live, 1);
  fl_free(snap);
}

/* ---- iterators ------------------------------------------------------- */

/* The smallest key greater than every key with this prefix: drop trailing
 * 0xff bytes and increment the last one. Returns false when there is none
 * (the prefix is all 0xff), i.e. no upper bound. */
static bool prefix_successor(fl_buf_t p, uint8_t **out, size_t *outlen) {
  size_t n = p.len;
  while (n > 0 && p.data[n - 1] == 0xff) n--;
  if (n == 0) return false;
  *out = fl_memdup(p.data, n);
  (*out)[n - 1]++;
  *outlen = n;
  return true;
}

fl_status_t fl_kv_iter_new(fl_kv_t *kv, fl_kv_cf_t *cf,
                           const fl_kv_iter_opts_t *opts, fl_kv_iter_t **out) {
  if (out != NULL) *out = NULL;
  fl_kv_iter_opts_t o = opts != NULL ? *opts : (fl_kv_iter_opts_t){0};
  if (kv == NULL || out == NULL || !view_ok(o.start) || !view_ok(o.end) ||
      !view_ok(o.prefix) || !cf_ok(kv, cf))
    return set_error(FL_EINVAL, "kv iter: bad argument");
  if (o.snap != NULL && o.snap->kv != kv)
    return set_error(FL_EINVAL, "kv iter: snapshot of another handle");

  fl_kv_iter_t *it = fl_calloc(1, sizeof *it);
  it->kv = kv;
  it->reverse = o.reverse;
  if (o.prefix.len > 0) {
    it->lo = fl_memdup(o.prefix.data, o.prefix.len);
    it->lolen = o.prefix.len;
    (void)prefix_successor(o.prefix, &it->hi, &it->hilen);
  } else {
    if (o.start.len > 0) {
      it->lo = fl_memdup(o.start.data, o.start.len);
      it->lolen = o.start.len;
    }
    if (o.end.len > 0) {
      it->hi = fl_memdup(o.end.data, o.end.len);
      it->hilen = o.end.len;
    }
  }
  if (it->lo != NULL && it->hi != NULL &&
      bytes_cmp(it->lo, it->lolen, it->hi, it->hilen) >= 0)
    it->done = true;  /* empty range */

  it->ro = rocksdb_readoptions_create();
  if (o.snap != NULL) rocksdb_readoptions_set_snapshot(it->ro, o.snap->s);
  /* Bounds let RocksDB stop early and skip tombstones outside the range;
   * the buffers live in `it` as long as the iterator. */
  if (it->lo != NULL)
    rocksdb_readoptions_set_iterate_lower_bound(it->ro, (const char *)it->lo,
                                                it->lolen);
  if (it->hi != NULL)
    rocksdb_readoptions_set_iterate_upper_bound(it->ro, (const char *)it->hi,
                                                it->hilen);
  it->it = rocksdb_create_iterator_cf(kv->db, it->ro, cfh(kv, cf));
  atomic_fetch_add(&kv->live, 1);
  *out = it;
  return FL_OK;
}

static bool in_range(const fl_kv_iter_t *it, const uint8_t *k, size_t klen) {
  if (it->lo != NULL && bytes_cmp(k, klen, it->lo, it->lolen) < 0) return false;
  if (it->hi != NULL && bytes_cmp(k, klen, it->hi, it->hilen) >= 0)
    return false;
  return true;
}

fl_status_t fl_kv_iter_next(fl_kv_iter_t *it, fl_buf_t *key, fl_buf_t *val) {
  if (key != NULL) *key = (fl_buf_t){0};
  if (val != NULL) *val = (fl_buf_t){0};
  if (it == NULL) return set_error(FL_EINVAL, "kv iter: NULL iterator");
  if (it->done) return FL_NOTFOUND;
  if (!it->started) {
    it->started = true;
    if (!it->reverse) {
      if (it->lo != NULL)
        rocksdb_iter_seek(it->it, (const char *)it->lo, it->lolen);
      else
        rocksdb_iter_seek_to_first(it->it);
    } else if (it->hi != NULL) {
      /* Last key <= hi; hi itself is excluded, so step over it. */
      rocksdb_iter_seek_for_prev(it->it, (const char *)it->hi, it->hilen);
      if (rocksdb_iter_valid(it->it)) {
        size_t kl = 0;
        const char *k = rocksdb_iter_key(it->it, &kl);
        if (bytes_cmp((const uint8_t *)k, kl, it->hi, it->hilen) >= 0)
          rocksdb_iter_prev(it->it);
      }
    } else {
      rocksdb_iter_seek_to_last(it->it);
    }
  } else if (!it->reverse) {
    rocksdb_iter_next(it->it);
  } else {
    rocksdb_iter_prev(it->it);
  }
  if (!rocksdb_iter_valid(it->it)) {
    it->done = true;
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    if (err != NULL) return set_rocks_error(err, "kv iter");
    return FL_NOTFOUND;
  }
  size_t kl = 0, vl = 0;
  const char *k = rocksdb_iter_key(it->it, &kl);
  if (!in_range(it, (const uint8_t *)k, kl)) {
    it->done = true;
    return FL_NOTFOUND;
  }
  const char *v = rocksdb_iter_value(it->it, &vl);
  if (key != NULL) *key = FL_BUF(k, kl);
  if (val != NULL) *val = FL_BUF(v, vl);
  return FL_OK;
}

void fl_kv_iter_free(fl_kv_iter_t *it) {
  if (it == NULL) return;
  rocksdb_iter_destroy(it->it);
  rocksdb_readoptions_destroy(it->ro);
  atomic_fetch_sub(&it->kv->live, 1);
  fl_free(it->lo);
  fl_free(it->hi);
  fl_free(it);
}

/* ---- maintenance ----------------------------------------------------- */

fl_status_t fl_kv_flush(fl_kv_t *kv) {
  if (kv == NULL) return set_error(FL_EINVAL, "kv flush: NULL handle");
  for (size_t i = 0; i < kv->ncfs; i++) {
    char *err = NULL;
    rocksdb_flush_cf(kv->db, kv->fo, kv->cfs[i]->h, &err);
    if (err != NULL) return set_rocks_error(err, "kv flush");
  }
  return FL_OK;
}

/* ---- memory ------------------------------------------------------------ */

static fl_status_t cf_prop(fl_kv_t *kv, fl_kv_cf_t *cf, const char *name,
                           uint64_t *v) {
  *v = 0;
  if (rocksdb_property_int_cf(kv->db, cf->h, name, v) != 0)
    return set_error(FL_ESTORE, "kv mem: no property %s on cf %s", name,
                     cf->name);
  return FL_OK;
}

fl_status_t fl_kv_cf_memtables(fl_kv_t *kv, fl_kv_cf_t *cf, uint64_t *bytes) {
  if (bytes != NULL) *bytes = 0;
  if (kv == NULL || bytes == NULL || !cf_ok(kv, cf))
    return set_error(FL_EINVAL, "kv mem: bad argument");
  return cf_prop(kv, cf != NULL ? cf : kv->cfs[0], "rocksdb.size-all-mem-tables",
                 bytes);
}

fl_status_t fl_kv_mem(fl_kv_t *kv, fl_kv_mem_t *out) {
  if (out != NULL) *out = (fl_kv_mem_t){0};
  if (kv == NULL || out == NULL)
    return set_error(FL_EINVAL, "kv mem: NULL argument");
  for (size_t i = 0; i < kv->ncfs; i++) {
    uint64_t mt, tr;
    fl_status_t rc = cf_prop(kv, kv->cfs[i], "rocksdb.size-all-mem-tables", &mt);
    if (rc == FL_OK)
      rc = cf_prop(kv, kv->cfs[i], "rocksdb.estimate-table-readers-mem", &tr);
    if (rc < 0) return rc;
    out->memtables += mt;
    out->table_readers += tr;
  }
  out->block_cache = rocksdb_cache_get_usage(kv->cache);
  out->block_cache_pinned = rocksdb_cache_get_pinned_usage(kv->cache);
  out->block_cache_capacity = rocksdb_cache_get_capacity(kv->cache);
  return FL_OK;
}

fl_status_t fl_kv_property(fl_kv_t *kv, fl_kv_cf_t *cf, const char *name, fl_sbuf_t *out) {
  if (kv == NULL || name == NULL || out == NULL || !cf_ok(kv, cf))
    return set_error(FL_EINVAL, "kv property: bad argument");
  char *v = rocksdb_property_value_cf(kv->db, cfh(kv, cf), name);
  if (v == NULL) return set_error(FL_NOTFOUND, "kv property: unknown %s", name);
  fl_sbuf_append_str(out, v);
  rocksdb_free(v);
  return FL_OK;
}
