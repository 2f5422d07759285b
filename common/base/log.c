/* SPDX-License-Identifier: Apache-2.0
 * log.c: the logger behind FL_LOG. */
#include "common/base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_OVERRIDES 32
#define MODULE_LEN 16

struct override {
  char module[MODULE_LEN];
  fl_log_level_t level;
};

/* Process-wide, written only by fl_log_configure at start-up. */
static struct {
  fl_log_level_t level;
  int n_overrides;
  struct override overrides[MAX_OVERRIDES];
  int fd;
} cfg = {.level = FL_LOG_INFO, .fd = 2};

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG",
                                          "TRACE"};

int fl_log_level_parse(const char *name) {
  for (int i = 0; i <= FL_LOG_TRACE; i++)
    if (strcasecmp(name, level_names[i]) == 0) return i;
  return -1;
}

int fl_log_configure(const char *spec) {
  fl_log_level_t level = cfg.level;
  struct override ov[MAX_OVERRIDES];
  int n = 0;
  char tmp[512];
  if (strlen(spec) >= sizeof tmp) return -1;
  strcpy(tmp, spec);
  char *save = NULL;
  for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    char *eq = strchr(tok, '=');
    if (eq == NULL) {
      int l = fl_log_level_parse(tok);
      if (l < 0) return -1;
      level = (fl_log_level_t)l;
      continue;
    }
    *eq = '\0';
    int l = fl_log_level_parse(eq + 1);
    if (l < 0 || n == MAX_OVERRIDES || strlen(tok) == 0 || strlen(tok) >= MODULE_LEN)
      return -1;
    strcpy(ov[n].module, tok);
    ov[n].level = (fl_log_level_t)l;
    n++;
  }
  cfg.level = level;
  cfg.n_overrides = n;
  memcpy(cfg.overrides, ov, sizeof(ov[0]) * (size_t)n);
  return 0;
}

int fl_log_configure_from_env(void) {
  const char *s = getenv("FEDLEDGER_LOG");
  return s && *s ? fl_log_configure(s) : 0;
}

void fl_log_set_fd(int fd) { cfg.fd = fd; }

bool fl_log_enabled(fl_log_level_t level, const char *module) {
  for (int i = 0; i < cfg.n_overrides; i++)
    if (strcmp(cfg.overrides[i].module, module) == 0)
      return level <= cfg.overrides[i].level;
  return level <= cfg.level;
}

void fl_log_write(fl_log_level_t level, const char *module, const char *fmt, ...) {
  char line[2048];
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  int n = snprintf(line, sizeof line,
                   "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %-7s ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                   level_names[level], module);
  if (n < 0) return;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  ssize_t w = write(cfg.fd, line, len);
  (void)w; /* nothing sensible to do when stderr is gone */
}

void fl__assert_fail(const char *expr, const char *file, int line) {
  fl_log_write(FL_LOG_ERROR, "assert", "invariant failed expr=\"%s\" at=%s:%d",
               expr, file, line);
  abort();
}
