/* SPDX-License-Identifier: Apache-2.0
 *
 * mlupdate.h: what the outside world needs to talk to the FL chaincode
 * `mlupdate` (chaincode/mlupdate, docs/mlupdate.md): the exact bytes a
 * client signs for an update, how a client id is derived from a certificate,
 * the world-state key names, and the reason codes of rejected updates.
 *
 * Target fl_mlupdate (static, no dependency on the peer): linked into the
 * chaincode .so itself and usable by the edge client, the round keeper and
 * the CLI, so that signer and verifier share one definition.
 *
 * Signed update message (version 1), the input of ECDSA P-256/SHA-256:
 *
 *   offset      size  field
 *   0           12    "mlupdate/v1" followed by one 0x00 byte
 *   12          T     task id bytes (1..64 bytes of [A-Za-z0-9._-])
 *   12+T        1     0x00
 *   13+T        8     round, u64 big-endian
 *   21+T        32    the update blob's SHA-256 (raw bytes, not hex)
 *
 * The task id has no NUL byte, so the encoding is unambiguous.
 */
#ifndef FL_CHAINCODE_MLUPDATE_MLUPDATE_H
#define FL_CHAINCODE_MLUPDATE_MLUPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"

/** The chaincode's name (the definition's and the .so descriptor's). */
#define FL_MLU_NAME "mlupdate"
/** Prefix of the signed message, including its NUL (12 bytes). */
#define FL_MLU_SIG_DOMAIN "mlupdate/v1"
#define FL_MLU_TASK_MAX 64
#define FL_MLU_CLIENT_MAX 200

/** Reason codes of a REJECTED update, in the order SubmitUpdate checks. */
typedef enum fl_mlu_reason_e {
  FL_MLU_OK = 0,               /* accepted */
  FL_MLU_BAD_HASH = 1,         /* SHA-256(blob) != declared hash */
  FL_MLU_BAD_SIGNATURE = 2,    /* signature over the message above invalid */
  FL_MLU_WRONG_ROLE = 3,       /* creator's NodeOU is not "client" */
  FL_MLU_REVOKED = 4,          /* client/<id> says revoked */
  FL_MLU_ROUND_CLOSED = 5,     /* the round is CLOSED */
  FL_MLU_DUPLICATE = 6,        /* the client already submitted in this round */
  FL_MLU_BAD_BLOB = 7,         /* blob is not a valid tensor blob */
  FL_MLU_SHAPE_MISMATCH = 8,   /* tensors differ from the task's model */
  FL_MLU_OUTLIER_MAX_NORM = 9, /* L2 norm above the task's max_norm */
  FL_MLU_OUTLIER_NORM_Z = 10,  /* robust norm z-score above max_norm_z */
  FL_MLU_OUTLIER_COSINE = 11,  /* cosine to the previous global step too low */
} fl_mlu_reason_t;

/** The reason's stable name ("BAD_HASH", ...; "OK" for FL_MLU_OK,
 *  "UNKNOWN" out of range). Never NULL; static. */
const char *fl_mlu_reason_name(fl_mlu_reason_t r);

/** True when s (n bytes) is a valid task id: 1..64 bytes of
 *  [A-Za-z0-9._-]. */
bool fl_mlu_task_id_ok(const char *s, size_t n);

/** Appends the signed update message for (task, round, hash) to out (see
 *  the layout above). Returns FL_EINVAL (nothing appended) for a bad task
 *  id. Borrows task and hash. */
fl_status_t fl_mlu_signed_msg(const char *task, size_t task_len, uint64_t round,
                              const uint8_t hash[32], fl_sbuf_t *out /* out */);

/** Derives the client id of a certificate holder: "<mspid>:<CN>", e.g.
 *  "Org1MSP:client1@org1.example.com". Both parts must be 1..96 bytes of
 *  [A-Za-z0-9._@-]. Returns an owned string (fl_free) in *out, or FL_EINVAL
 *  with *out NULL. */
fl_status_t fl_mlu_client_id(const char *mspid, size_t mspid_len, const char *cn,
                             char **out /* out */);

/** True when s is a syntactically valid client id (as fl_mlu_client_id
 *  makes them). */
bool fl_mlu_client_id_ok(const char *s, size_t n);

/* World-state keys (docs/mlupdate.md, "Keys"). Each returns an owned
 * NUL-terminated string (fl_free). Rounds are plain decimal. */
char *fl_mlu_key_task(const char *task);
char *fl_mlu_key_round(const char *task, uint64_t round);
char *fl_mlu_key_update(const char *task, uint64_t round, const char *client);
char *fl_mlu_key_model(const char *task, uint64_t round);
char *fl_mlu_key_client(const char *client);
/** "blob/<64 hex digits>": a tensor blob kept in the world state so that
 *  later transactions can read it (the shim has no committed-blob read). */
char *fl_mlu_key_blob(const uint8_t hash[32]);

#endif /* FL_CHAINCODE_MLUPDATE_MLUPDATE_H */
