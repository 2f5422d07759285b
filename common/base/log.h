/* SPDX-License-Identifier: Apache-2.0
 *
 * log.h: leveled, key=value logging.
 *
 * A line looks like
 *   2026-11-21T06:30:00.123Z INFO  rpc     accepted conn peer=127.0.0.1:5000
 * Messages put their context as key=value pairs after a short phrase
 * (Fabric's flogging, nginx's error_log). FL_LOG tests the level before the
 * arguments are evaluated, so a disabled DEBUG line costs one branch.
 *
 * The log configuration is the one piece of process-wide mutable state in
 * fedledger (like Redis' verbosity): a spec string such as
 *   "info"  or  "warn,rpc=debug,pbft=trace"
 * set once at start-up (fl_log_configure) or from FEDLEDGER_LOG. Lines go to
 * stderr with one write(2) each, so lines from threads never interleave.
 * Never log keys, weights or payload bytes.
 */
#ifndef FL_BASE_LOG_H
#define FL_BASE_LOG_H

#include <stdbool.h>

typedef enum fl_log_level_e {
  FL_LOG_ERROR = 0,
  FL_LOG_WARN = 1,
  FL_LOG_INFO = 2,
  FL_LOG_DEBUG = 3,
  FL_LOG_TRACE = 4,
} fl_log_level_t;

/** Parses spec ("info", "warn,rpc=debug") and applies it. Returns 0, or -1
 *  (and changes nothing) when spec is malformed. Not thread-safe: call at
 *  start-up before threads exist. */
int fl_log_configure(const char *spec);
/** Applies FEDLEDGER_LOG if set; returns what fl_log_configure returned, or 0. */
int fl_log_configure_from_env(void);
/** Sets a file descriptor for log output (default 2). */
void fl_log_set_fd(int fd);
/** True when a line of this level for module would be written. */
bool fl_log_enabled(fl_log_level_t level, const char *module);
/** Writes one line. Use FL_LOG instead. */
void fl_log_write(fl_log_level_t level, const char *module, const char *fmt,
                  ...) __attribute__((format(printf, 3, 4)));
/** Parses a level name ("error".."trace"); returns -1 if unknown. */
int fl_log_level_parse(const char *name);

#define FL_LOG(level, module, ...)                                            \
  do {                                                                        \
    if (fl_log_enabled((level), (module)))                                    \
      fl_log_write((level), (module), __VA_ARGS__);                           \
  } while (0)

#define FL_ERROR(module, ...) FL_LOG(FL_LOG_ERROR, module, __VA_ARGS__)
#define FL_WARN(module, ...)  FL_LOG(FL_LOG_WARN, module, __VA_ARGS__)
#define FL_INFO(module, ...)  FL_LOG(FL_LOG_INFO, module, __VA_ARGS__)
#define FL_DEBUG(module, ...) FL_LOG(FL_LOG_DEBUG, module, __VA_ARGS__)
#define FL_TRACE(module, ...) FL_LOG(FL_LOG_TRACE, module, __VA_ARGS__)

/* Propagation helpers: log file:line at DEBUG where an error passes through
 * (zstd's error_private.h), so a DEBUG run shows the whole path of a failure. */
#define FL_FORWARD(expr)                                                      \
  do {                                                                        \
    int fl__rc = (expr);                                                      \
    if (fl__rc < 0) {                                                         \
      FL_DEBUG("trace", "forward rc=%d at=%s:%d", fl__rc, __FILE__, __LINE__);\
      return fl__rc;                                                          \
    }                                                                         \
  } while (0)

#define FL_RETURN_IF(cond, rc)                                                \
  do {                                                                        \
    if (cond) {                                                               \
      FL_DEBUG("trace", "return rc=%d cond=%s at=%s:%d", (int)(rc), #cond,    \
               __FILE__, __LINE__);                                           \
      return (rc);                                                            \
    }                                                                         \
  } while (0)

/** Aborts with file:line when an invariant of the ledger or consensus does
 *  not hold. Always on, also in release builds. Never use it on input. */
#define FL_ASSERT(cond)                                                       \
  do {                                                                        \
    if (!(cond)) fl__assert_fail(#cond, __FILE__, __LINE__);                  \
  } while (0)

_Noreturn void fl__assert_fail(const char *expr, const char *file, int line);

#endif /* FL_BASE_LOG_H */
