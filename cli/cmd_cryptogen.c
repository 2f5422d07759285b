/* SPDX-License-Identifier: Apache-2.0
 *
 * cmd_cryptogen.c: `fedledger cryptogen generate`, the front end of
 * crypto-config/cryptogen (Fabric's cryptogen).
 */
#include <stdio.h>

#include "cli/cli.h"
#include "common/base/alloc.h"
#include "common/base/status.h"
#include "crypto-config/cryptogen.h"

static int run_generate(const char *path, int argc, char **argv);

static const fl_cli_cmd_t generate_cmd = {
    .name = "generate",
    .summary = "Generate CAs, keys and certificates for every organisation",
    .help = "Reads a crypto-config.yaml (see crypto-config/crypto-config.yaml) and writes\n"
            "Fabric-style MSP and TLS material under the output directory. Refuses to\n"
            "replace an organisation's existing material unless --force is given.",
    .run = run_generate,
};

static const fl_cli_cmd_t *const cryptogen_subs[] = {&generate_cmd, NULL};

const fl_cli_cmd_t fl_cli_cmd_cryptogen = {
    .name = "cryptogen",
    .summary = "Generate crypto material (MSP and TLS) for a consortium",
    .subs = cryptogen_subs,
};

static int run_generate(const char *path, int argc, char **argv) {
  const char *config = NULL, *output = "organizations";
  bool force = false;
  uint64_t days = FL_CRYPTOGEN_DEFAULT_DAYS;
  const fl_cli_flag_t flags[] = {
      {"config", 'c', FL_CLI_FLAG_STRING, "FILE", "crypto-config.yaml to read", &config, true},
      {"output", 'o', FL_CLI_FLAG_STRING, "DIR",
       "output directory (default \"organizations\")", &output, false},
      {"force", 'f', FL_CLI_FLAG_BOOL, NULL, "replace existing organisations' material",
       &force, false},
      {"validity-days", 0, FL_CLI_FLAG_UINT, "N",
       "certificate validity in days (default 3650)", &days, false},
  };
  size_t nf = sizeof flags / sizeof flags[0];
  int nargs = 0;
  int rc = fl_cli_parse_flags(&generate_cmd, path, flags, nf, argc, argv, &nargs);
  if (rc < 0) return FL_CLI_OK;
  if (rc != FL_CLI_OK) return rc;
  if (nargs > 0) {
    fprintf(stderr, "%s: unexpected argument '%s'\n\n", path, argv[1]);
    fl_cli_print_usage(stderr, &generate_cmd, path, flags, nf);
    return FL_CLI_USAGE;
  }
  if (days == 0 || days > 36500) {
    fprintf(stderr, "%s: --validity-days must be between 1 and 36500\n", path);
    return FL_CLI_USAGE;
  }
  fl_cryptogen_opts_t o = {.config_path = config, .output_dir = output, .force = force,
                           .validity_days = (uint32_t)days};
  fl_cryptogen_result_t res = {0};
  char *err = NULL;
  fl_status_t st = fl_cryptogen_generate(&o, &res, &err);
  if (st != FL_OK) {
    fprintf(stderr, "%s: %s\n", path, err != NULL ? err : fl_status_str(st));
    fl_free(err);
    return FL_CLI_FAIL;
  }
  printf("generated crypto material for %zu organisations, %zu identities in %s\n", res.orgs,
         res.identities, output);
  return FL_CLI_OK;
}
