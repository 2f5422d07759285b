/* SPDX-License-Identifier: Apache-2.0
 * alloc.c: allocation wrappers that abort on out-of-memory. */
#include "common/base/alloc.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(M_MMAP_THRESHOLD) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define FL_GLIBC_MALLOC 1
#endif

bool fl_malloc_keep_large_mapped(void) {
#ifdef FL_GLIBC_MALLOC
  return mallopt(M_MMAP_THRESHOLD, 256 * 1024) == 1;
#else
  return true;
#endif
}

bool fl_malloc_keep_freed(void) {
#ifdef FL_GLIBC_MALLOC
  return mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1 &&
         mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024) == 1;
#else
  return true;
#endif
}

static void oom(size_t n) {
  fprintf(stderr, "fedledger: out of memory allocating %zu bytes\n", n);
  abort();
}

void *fl_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) oom(n);
  return p;
}

void *fl_calloc(size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size) oom(SIZE_MAX);
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) oom(n * size);
  return p;
}

void *fl_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) oom(n);
  return q;
}

void *fl_reallocarray(void *p, size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size) oom(SIZE_MAX);
  return fl_realloc(p, n * size);
}

void fl_free(void *p) { free(p); }

char *fl_strdup(const char *s) { return fl_strndup(s, strlen(s)); }

char *fl_strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *d = fl_malloc(len + 1);
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

void *fl_memdup(const void *p, size_t n) {
  void *d = fl_malloc(n);
  if (n) memcpy(d, p, n);
  return d;
}

char *fl_sprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) oom(0);
  char *s = fl_malloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}
