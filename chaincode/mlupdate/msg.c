/* SPDX-License-Identifier: Apache-2.0
 *
 * msg.c: the signed update message, client ids, key names and reason names
 * of the mlupdate chaincode (mlupdate.h).
 */
#include "chaincode/mlupdate/mlupdate.h"

#include <inttypes.h>
#include <string.h>

#include "common/base/alloc.h"

static const char *const reason_names[] = {
    "OK",          "BAD_HASH",          "BAD_SIGNATURE",    "WRONG_ROLE",
    "REVOKED",     "ROUND_CLOSED",      "DUPLICATE",        "BAD_BLOB",
    "SHAPE_MISMATCH", "OUTLIER_MAX_NORM", "OUTLIER_NORM_Z", "OUTLIER_COSINE",
};

const char *fl_mlu_reason_name(fl_mlu_reason_t r) {
  return (unsigned)r < sizeof reason_names / sizeof reason_names[0] ? reason_names[r]
                                                                   : "UNKNOWN";
}

static bool id_char(char c, bool at_ok) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-' || (at_ok && c == '@');
}

bool fl_mlu_task_id_ok(const char *s, size_t n) {
  if (s == NULL || n == 0 || n > FL_MLU_TASK_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (!id_char(s[i], false)) return false;
  return true;
}

fl_status_t fl_mlu_signed_msg(const char *task, size_t task_len, uint64_t round,
                              const uint8_t hash[32], fl_sbuf_t *out) {
  if (!fl_mlu_task_id_ok(task, task_len) || hash == NULL) return FL_EINVAL;
  fl_sbuf_append(out, FL_MLU_SIG_DOMAIN, sizeof FL_MLU_SIG_DOMAIN); /* with NUL */
  fl_sbuf_append(out, task, task_len);
  fl_sbuf_append(out, "", 1);
  fl_sbuf_append_be64(out, round);
  fl_sbuf_append(out, hash, 32);
  return FL_OK;
}

static bool part_ok(const char *s, size_t n) {
  if (n == 0 || n > 96) return false;
  for (size_t i = 0; i < n; i++)
    if (!id_char(s[i], true)) return false;
  return true;
}

fl_status_t fl_mlu_client_id(const char *mspid, size_t mspid_len, const char *cn,
                             char **out) {
  *out = NULL;
  if (mspid == NULL || cn == NULL) return FL_EINVAL;
  size_t cn_len = strlen(cn);
  if (!part_ok(mspid, mspid_len) || !part_ok(cn, cn_len)) return FL_EINVAL;
  char *s = fl_malloc(mspid_len + cn_len + 2);
  memcpy(s, mspid, mspid_len);
  s[mspid_len] = ':';
  memcpy(s + mspid_len + 1, cn, cn_len + 1);
  *out = s;
  return FL_OK;
}

bool fl_mlu_client_id_ok(const char *s, size_t n) {
  if (s == NULL) return false;
  const char *colon = memchr(s, ':', n);
  if (colon == NULL) return false;
  size_t a = (size_t)(colon - s);
  return part_ok(s, a) && part_ok(colon + 1, n - a - 1);
}

char *fl_mlu_key_task(const char *task) { return fl_sprintf("task/%s", task); }

char *fl_mlu_key_round(const char *task, uint64_t round) {
  return fl_sprintf("round/%s/%" PRIu64, task, round);
}

char *fl_mlu_key_update(const char *task, uint64_t round, const char *client) {
  return fl_sprintf("update/%s/%" PRIu64 "/%s", task, round, client);
}

char *fl_mlu_key_model(const char *task, uint64_t round) {
  return fl_sprintf("model/%s/%" PRIu64, task, round);
}

char *fl_mlu_key_client(const char *client) { return fl_sprintf("client/%s", client); }

char *fl_mlu_key_blob(const uint8_t hash[32]) {
  char h[65];
  fl_hex_encode(hash, 32, h);
  return fl_sprintf("blob/%s", h);
}
