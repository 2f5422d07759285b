/* SPDX-License-Identifier: Apache-2.0
 *
 * kv_int.h: internals of common/kv shared with its unit tests. Not API.
 */
#ifndef FL_COMMON_KV_KV_INT_H
#define FL_COMMON_KV_KV_INT_H

#include "common/base/status.h"

/** Maps a RocksDB status string (Status::ToString(), as the C API's errptr
 *  carries it) to an fl_status_t; see kv.h for the table. Never fails. */
fl_status_t fl__kv_status_from_rocks(const char *msg);

#endif /* FL_COMMON_KV_KV_INT_H */
