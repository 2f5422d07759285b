/* SPDX-License-Identifier: Apache-2.0
 * file.c: whole-file reads and first-file lookup. */
#include "common/base/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/alloc.h"

fl_status_t fl_file_read(const char *path, size_t max, fl_sbuf_t *out) {
  out->len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? FL_NOTFOUND : FL_EIO;
  fl_status_t rc = FL_OK;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rc = FL_EIO;
  } else if ((uintmax_t)st.st_size > max) {
    rc = FL_ETOOBIG;
  } else {
    for (;;) {
      fl_sbuf_reserve(out, 64 * 1024);
      ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        rc = FL_EIO;
        break;
      }
      if (n == 0) break;
      out->len += (size_t)n;
      if (out->len > max) { /* the file grew while we read */
        rc = FL_ETOOBIG;
        break;
      }
    }
  }
  close(fd);
  if (rc != FL_OK) out->len = 0;
  return rc;
}

char *fl_dir_first_file(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return NULL;
  char *best = NULL;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (best != NULL && strcmp(e->d_name, strrchr(best, '/') + 1) >= 0) continue;
    char *p = fl_sprintf("%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
      fl_free(best);
      best = p;
    } else {
      fl_free(p);
    }
  }
  closedir(d);
  return best;
}
