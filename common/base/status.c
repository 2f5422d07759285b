/* SPDX-License-Identifier: Apache-2.0
 * status.c: strings for fl_status_t. */
#include "common/base/status.h"

#include <string.h>

const char *fl_status_str(int rc) {
  switch (rc) {
#define FL__STATUS_STR(name, val, str) case (val): return (str);
    FL_STATUS_MAP(FL__STATUS_STR)
#undef FL__STATUS_STR
  }
  return "unknown status";
}

const char *fl_status_name(int rc) {
  switch (rc) {
#define FL__STATUS_NAME(name, val, str) case (val): return #name;
    FL_STATUS_MAP(FL__STATUS_NAME)
#undef FL__STATUS_NAME
  }
  return "UNKNOWN";
}

int fl_status_from_name(const char *name) {
#define FL__STATUS_FROM(n, val, str) if (strcmp(name, #n) == 0) return (val);
  FL_STATUS_MAP(FL__STATUS_FROM)
#undef FL__STATUS_FROM
  return FL_EINTERNAL;
}
