/* SPDX-License-Identifier: Apache-2.0
 *
 * task_def.h: turns a YAML task definition into what mlupdate CreateTask
 * takes: the task id, the definition JSON (docs/mlupdate.md, "CreateTask")
 * and the initial model blob with its SHA-256.
 *
 * YAML keys (unknown keys are refused):
 *   task          task id (required; 1..64 bytes of [A-Za-z0-9._-])
 *   arch          free text (default: made from `model`)
 *   model         {kind: logreg|mlp|proto, inputs, classes, hidden: [..],
 *                  protos_per_class, seed}: the generated initial model;
 *                  not needed with a model file
 *   rule          fedavg|krum|multikrum|median|trimmed|bulyan (required)
 *   min_updates   (required)
 *   round         a duration ("30s"), or round_ms: milliseconds (one required)
 *   f, m, clip_norm, max_norm_z, min_cosine, max_norm, norm_window,
 *   max_updates, reject_limit, reject_min   as the chaincode defines them
 *                 (absent keys take the chaincode's defaults)
 *
 * No network; deterministic: the same file and seed give the same bytes.
 */
#ifndef FL_CLI_TASK_DEF_H
#define FL_CLI_TASK_DEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

typedef struct fl_cli_task_def_s {
  char *task;              /* owned */
  fl_sbuf_t definition;    /* CreateTask's definition JSON */
  fl_sbuf_t blob;          /* the initial model (tensor blob) */
  char init_hash[65];      /* hex SHA-256 of blob */
  size_t n_params;         /* float values in the model */
} fl_cli_task_def_t;

/** Reads the YAML file `path`; the initial model is the tensor blob in
 *  model_file when not NULL, else generated from `model:` with its seed (or
 *  `seed` when seed_set). Returns FL_OK with *out filled (free with
 *  fl_cli_task_def_free); FL_ECONFIG / FL_EINVAL (a bad or unknown key, a
 *  bad model spec) or FL_EMALFORMED (the model file is not a tensor blob),
 *  FL_NOTFOUND / FL_EIO (unreadable file), with *err owned (fl_free). */
fl_status_t fl_cli_task_def_load(const char *path, const char *model_file, bool seed_set,
                                 uint64_t seed, fl_cli_task_def_t *out /* out */,
                                 char **err /* out */);

/** Frees what def owns and zeroes it. NULL-safe. */
void fl_cli_task_def_free(fl_cli_task_def_t *def);

#endif /* FL_CLI_TASK_DEF_H */
