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

#include <stdbool.h>
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

/** Makes glibc malloc serve every block of 256 KiB or more from its own
 *  mapping, returned to the kernel when freed, for the long-running daemons.
 *
 *  glibc raises its mmap threshold to the size of every mmapped block that is
 *  freed (up to 32 MiB). After the first RocksDB memtable flush, the 1 MiB
 *  memtable arena blocks therefore came from the heap arenas of whichever
 *  threads wrote, and stayed there, free but never given back, when the
 *  flushed memtable freed them: in a soak the allocator's free memory
 *  (mallinfo2 fordblks) climbed from 2 to 20+ MiB in 90 s and the peer's RSS
 *  with it (docs/operations.md, "Soak"). A fixed threshold also turns the
 *  dynamic one off. Call once, before the first allocation of any size that
 *  matters. Returns false when mallopt refused; a no-op returning true under
 *  Address- or ThreadSanitizer, whose allocators replace glibc's. */
bool fl_malloc_keep_large_mapped(void);

/** The opposite policy, for a single-threaded process that runs one job at
 *  a time and would otherwise hand its freed heap back to the kernel after
 *  each and fault it in again for the next (a chaincode worker: its fork
 *  inherits fl_malloc_keep_large_mapped, whose fixed threshold leaves the
 *  trim threshold at 128 KiB): blocks up to 32 MiB come from the heap and
 *  the heap is trimmed only above 64 MiB of free top. Same return and
 *  sanitizer rules as fl_malloc_keep_large_mapped. */
bool fl_malloc_keep_freed(void);

#endif /* FL_BASE_ALLOC_H */
