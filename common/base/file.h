/* SPDX-License-Identifier: Apache-2.0
 *
 * file.h: reading small files whole, and picking a file in a folder (the
 * MSP layout: signcerts/, keystore/ hold one file each).
 */
#ifndef FL_BASE_FILE_H
#define FL_BASE_FILE_H

#include <stddef.h>

#include "common/base/buf.h"
#include "common/base/status.h"

/** Reads the regular file at path into *out (contents replaced), refusing
 *  more than max bytes. Returns FL_OK; FL_NOTFOUND when path does not exist;
 *  FL_ETOOBIG over max; FL_EIO on any other error or when path is not a
 *  regular file. On error *out holds no partial contents (len 0). */
fl_status_t fl_file_read(const char *path, size_t max, fl_sbuf_t *out /* out */);

/** Returns the first regular file of dir in name order, not counting names
 *  starting with '.', as an owned path "dir/name" (fl_free), or NULL when
 *  dir cannot be read or holds none. */
char *fl_dir_first_file(const char *dir);

#endif /* FL_BASE_FILE_H */
