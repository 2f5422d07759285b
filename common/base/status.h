/* SPDX-License-Identifier: Apache-2.0
 *
 * status.h: the one error type of fedledger.
 *
 * Every fallible function returns fl_status_t: FL_OK (0) on success, a
 * negative code otherwise. The list is one X-macro so that the enum and the
 * strings never drift apart (the libuv uv.h pattern). Codes that are not
 * failures in every context (FL_NOTFOUND, FL_AGAIN) are still negative so a
 * plain `if (rc < 0)` catches everything not FL_OK; callers that expect them
 * test for them by name.
 */
#ifndef FL_BASE_STATUS_H
#define FL_BASE_STATUS_H

#define FL_STATUS_MAP(X)                                                      \
  X(OK,            0,  "ok")                                                  \
  X(NOTFOUND,     -1,  "not found")                                           \
  X(AGAIN,        -2,  "try again")                                           \
  X(EINVAL,       -3,  "invalid argument")                                    \
  X(ENOMEM,       -4,  "out of memory")                                       \
  X(EIO,          -5,  "i/o error")                                           \
  X(EMALFORMED,   -6,  "malformed input")                                     \
  X(ETOOBIG,      -7,  "too big")                                             \
  X(ECRYPTO,      -8,  "cryptographic library error")                         \
  X(EBADSIG,      -9,  "bad signature")                                       \
  X(EPERM,       -10,  "access denied")                                       \
  X(EREVOKED,    -11,  "identity revoked")                                    \
  X(EUNTRUSTED,  -12,  "certificate not trusted")                             \
  X(ETIMEDOUT,   -13,  "timed out")                                           \
  X(ECLOSED,     -14,  "connection closed")                                   \
  X(ECONNREFUSED,-15,  "connection refused")                                  \
  X(ECONFIG,     -16,  "bad configuration")                                   \
  X(ESTORE,      -17,  "storage error")                                       \
  X(EEXIST,      -18,  "already exists")                                      \
  X(ECONFLICT,   -19,  "conflict")                                            \
  X(ENOMETHOD,   -20,  "unknown method")                                      \
  X(EPROTO,      -21,  "protocol error")                                      \
  X(ENOSPC,      -22,  "no space left")                                       \
  X(ECANCELED,   -23,  "canceled")                                            \
  X(ESTATE,      -24,  "wrong state")                                         \
  X(EUNAVAIL,    -25,  "unavailable")                                         \
  X(EINTERNAL,   -26,  "internal error")                                      \
  X(ECORRUPT,    -27,  "corrupt data")

typedef enum fl_status_e {
#define FL__STATUS_ENUM(name, val, str) FL_##name = (val),
  FL_STATUS_MAP(FL__STATUS_ENUM)
#undef FL__STATUS_ENUM
} fl_status_t;

/** Returns a static, human-readable string for rc ("unknown status" for a
 *  value not in the list). Never NULL. Thread-safe. */
const char *fl_status_str(int rc);

/** Returns the symbolic name of rc without the FL_ prefix ("EBADSIG"), or
 *  "UNKNOWN". Never NULL. Used on the wire and in JSON output. */
const char *fl_status_name(int rc);

/** Maps a symbolic name (as fl_status_name returns) back to its code; returns
 *  FL_EINTERNAL for a name not in the list. */
int fl_status_from_name(const char *name);

#endif /* FL_BASE_STATUS_H */
