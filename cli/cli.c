/* SPDX-License-Identifier: Apache-2.0
 *
 * cli.c: command dispatch and flag parsing for the fedledger CLI (cli.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/base/alloc.h"

static bool is_help(const char *a) {
  return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "help") == 0;
}

static void print_group_usage(FILE *f, const fl_cli_cmd_t *cmd, const char *path) {
  fprintf(f, "Usage: %s <command> [flags]\n\n", path);
  if (cmd->help != NULL) fprintf(f, "%s\n\n", cmd->help);
  fprintf(f, "Commands:\n");
  for (const fl_cli_cmd_t *const *s = cmd->subs; *s != NULL; s++)
    fprintf(f, "  %-14s %s\n", (*s)->name, (*s)->summary);
  fprintf(f, "\nRun '%s <command> --help' for a command's flags.\n", path);
}

int fl_cli_dispatch(const fl_cli_cmd_t *cmd, const char *path, int argc, char **argv) {
  if (cmd->run != NULL) return cmd->run(path, argc, argv);
  if (argc < 2) {
    fprintf(stderr, "%s: missing command\n\n", path);
    print_group_usage(stderr, cmd, path);
    return FL_CLI_USAGE;
  }
  if (is_help(argv[1])) {
    print_group_usage(stdout, cmd, path);
    return FL_CLI_OK;
  }
  for (const fl_cli_cmd_t *const *s = cmd->subs; *s != NULL; s++) {
    if (strcmp((*s)->name, argv[1]) == 0) {
      char *sub = fl_sprintf("%s %s", path, (*s)->name);
      int rc = fl_cli_dispatch(*s, sub, argc - 1, argv + 1);
      fl_free(sub);
      return rc;
    }
  }
  fprintf(stderr, "%s: unknown command '%s'\n\n", path, argv[1]);
  print_group_usage(stderr, cmd, path);
  return FL_CLI_USAGE;
}

void fl_cli_print_usage(FILE *f, const fl_cli_cmd_t *cmd, const char *path,
                        const fl_cli_flag_t *flags, size_t n_flags) {
  fprintf(f, "Usage: %s [flags]\n\n%s\n", path, cmd->summary);
  if (cmd->help != NULL) fprintf(f, "\n%s\n", cmd->help);
  fprintf(f, "\nFlags:\n");
  for (size_t i = 0; i < n_flags; i++) {
    const fl_cli_flag_t *fl = &flags[i];
    char shortpart[8] = "    ";
    if (fl->short_name) snprintf(shortpart, sizeof shortpart, "-%c, ", fl->short_name);
    char left[80];
    snprintf(left, sizeof left, "%s--%s%s%s", shortpart, fl->name,
             fl->kind == FL_CLI_FLAG_BOOL ? "" : " ",
             fl->kind == FL_CLI_FLAG_BOOL ? "" : (fl->metavar ? fl->metavar : "VALUE"));
    fprintf(f, "  %-28s %s%s\n", left, fl->help, fl->required ? " (required)" : "");
  }
  fprintf(f, "  %-28s %s\n", "-h, --help", "show this help");
}

static const fl_cli_flag_t *find_flag(const fl_cli_flag_t *flags, size_t n, const char *name,
                                      size_t len, char short_name) {
  for (size_t i = 0; i < n; i++) {
    if (short_name != 0 ? flags[i].short_name == short_name
                        : strlen(flags[i].name) == len && memcmp(flags[i].name, name, len) == 0)
      return &flags[i];
  }
  return NULL;
}

static int usage_error(const fl_cli_cmd_t *cmd, const char *path, const fl_cli_flag_t *flags,
                       size_t n, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int usage_error(const fl_cli_cmd_t *cmd, const char *path, const fl_cli_flag_t *flags,
                       size_t n, const char *fmt, ...) {
  fprintf(stderr, "%s: ", path);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n\n");
  fl_cli_print_usage(stderr, cmd, path, flags, n);
  return FL_CLI_USAGE;
}

int fl_cli_parse_flags(const fl_cli_cmd_t *cmd, const char *path, const fl_cli_flag_t *flags,
                       size_t n, int argc, char **argv, int *nargs) {
  bool *seen = fl_calloc(n ? n : 1, sizeof *seen);
  int out = 1, rc = FL_CLI_OK;
  bool flags_done = false;
  for (int i = 1; i < argc && rc == FL_CLI_OK; i++) {
    char *a = argv[i];
    if (flags_done || a[0] != '-' || a[1] == '\0') {
      argv[out++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      flags_done = true;
      continue;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fl_cli_print_usage(stdout, cmd, path, flags, n);
      rc = -1;
      break;
    }
    const fl_cli_flag_t *f;
    const char *value = NULL;
    if (a[1] == '-') {
      const char *name = a + 2, *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      f = find_flag(flags, n, name, len, 0);
      if (eq != NULL) value = eq + 1;
    } else {
      f = a[2] == '\0' ? find_flag(flags, n, NULL, 0, a[1]) : NULL;
    }
    if (f == NULL) {
      rc = usage_error(cmd, path, flags, n, "unknown flag '%s'", a);
      break;
    }
    seen[f - flags] = true;
    if (f->kind == FL_CLI_FLAG_BOOL) {
      if (value != NULL) {
        rc = usage_error(cmd, path, flags, n, "flag '%s' takes no value", a);
        break;
      }
      *(bool *)f->dest = true;
      continue;
    }
    if (value == NULL) {
      if (i + 1 >= argc) {
        rc = usage_error(cmd, path, flags, n, "flag '%s' needs a value", a);
        break;
      }
      value = argv[++i];
    }
    if (f->kind == FL_CLI_FLAG_STRING) {
      *(const char **)f->dest = value;
    } else {
      char *end = NULL;
      errno = 0;
      unsigned long long v = strtoull(value, &end, 10);
      if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0) {
        rc = usage_error(cmd, path, flags, n, "flag '%s' expects a non-negative integer, got '%s'",
                         a, value);
        break;
      }
      *(uint64_t *)f->dest = v;
    }
  }
  for (size_t i = 0; i < n && rc == FL_CLI_OK; i++)
    if (flags[i].required && !seen[i]) {
      char name[80];
      snprintf(name, sizeof name, "--%s", flags[i].name);
      rc = usage_error(cmd, path, flags, n, "missing required flag %s", name);
    }
  fl_free(seen);
  *nargs = out - 1;
  return rc;
}
