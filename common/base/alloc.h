/* SPDX-License-Identifier: Apache-2.0
 *
 * alloc.h: the only allocator entry points fedledger code uses.
 *
 * Out of memory is not a recoverable condition for a ledger node: these abort
 * with a message instead of returning NULL (the Redis zmalloc policy), so no
 * caller carries an OOM branch it could never test. Sizes that come from the
 * wire must be bounded by the caller *before* calling these.
 */
#ifndef FL_BASE_ALLOC_H
#define FL_BASE_ALLOC_H

#include <stddef.h>

/** malloc that never returns NULL (aborts on OOM). fl_malloc(0) returns a
 *  unique pointer that must be freed. */
void *fl_malloc(size_t n);
/** calloc that aborts on OOM and on n*size overflow. */
void *fl_calloc(size_t n, size_t size);
/** realloc that aborts on OOM. */
void *fl_realloc(void *p, size_t n);
/** reallocarray: aborts on OOM and on n*size overflow. */
void *fl_reallocarray(void *p, size_t n, size_t size);
/** Frees p; NULL is fine. */
void fl_free(void *p);
/** Returns an owned NUL-terminated copy of s (free with fl_free). */
char *fl_strdup(const char *s);
/** Returns an owned NUL-terminated copy of the first n bytes of s. */
char *fl_strndup(const char *s, size_t n);
/** Returns an owned copy of n bytes (fl_malloc(0) semantics for n == 0). */
void *fl_memdup(const void *p, size_t n);
/** Returns an owned string built like printf (free with fl_free). */
char *fl_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* FL_BASE_ALLOC_H */
