/* SPDX-License-Identifier: Apache-2.0
 *
 * pbft_int.h: internals shared by the files of orderer/pbft (not API).
 *
 * Three layers:
 *   - pbft_map.c   an open-addressing hash map keyed by byte strings
 *                  (tx ids), with backward-shift deletion (no tombstones);
 *   - pbft_codec.c protobuf-c in and out: a received SignedMessage is
 *                  unpacked, its signature (and every embedded one) checked,
 *                  its content validated and copied into a refcounted
 *                  fl__pbft_smsg_t; protobuf-c structs never leave the file;
 *   - pbft.c, pbft_vc.c, pbft_st.c  the state machine: normal case,
 *                  checkpoints, execution and blocks; view change; state
 *                  transfer, persistence and restore.
 *
 * Invariants of fl_pbft_t (checked with FL_ASSERT where cheap):
 *   1. low <= last_exec or a state transfer is active (st.active);
 *   2. a log slot log[s % L] is in use iff slot.seq == s and low < s <= low+L;
 *   3. every vote stored in a slot belongs to slot.view == the current view
 *      (a view change resets them); the prepared certificate may be older;
 *   4. blocks are numbered by executed batches that kept >= 1 request; block
 *      b is delivered only after b-1, with >= 2f+1 verified signatures over
 *      the header hash this replica computed itself;
 *   5. COMMITTED records are emitted in seq order, each only after the block
 *      its seq made (if any) was delivered;
 *   6. this replica signs at most one pre-prepare per (view, seq) and one
 *      header per block number; the record that proves it is persisted
 *      (emitted as PERSIST) before the message leaves (the SEND after it).
 */
#ifndef FL_ORDERER_PBFT_PBFT_INT_H
#define FL_ORDERER_PBFT_PBFT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/buf.h"
#include "common/base/status.h"
#include "orderer/pbft/pbft.h"

#define FL__PBFT_LOG "pbft"
#define DLEN FL_PBFT_DIGEST_LEN

/* ---------------------------------------------------------------- map */

typedef struct fl__pbft_slot_s {
  const uint8_t *key; /* NULL = empty; memory owned by the value's owner */
  uint32_t len;
  uint32_t hash;
  uint64_t val;
  void *ptr;
} fl__pbft_slot_t;

typedef struct fl__pbft_map_s {
  fl__pbft_slot_t *slots;
  size_t cap; /* power of two, or 0 */
  size_t count;
  uint64_t seed;
} fl__pbft_map_t;

void fl__pbft_map_init(fl__pbft_map_t *m, uint64_t seed);
void fl__pbft_map_free(fl__pbft_map_t *m);
void fl__pbft_map_clear(fl__pbft_map_t *m);
fl__pbft_slot_t *fl__pbft_map_get(const fl__pbft_map_t *m, const uint8_t *key,
                                  size_t len);
/* Inserts key (borrowed; must stay valid while present) or finds it; the
 * returned slot is valid until the next put/del. */
fl__pbft_slot_t *fl__pbft_map_put(fl__pbft_map_t *m, const uint8_t *key,
                                  size_t len, bool *existed);
bool fl__pbft_map_del(fl__pbft_map_t *m, const uint8_t *key, size_t len);

/* -------------------------------------------------------------- batch */

/* A decoded Batch (or a Forward's requests), refcounted and immutable. */
typedef struct fl__pbft_batch_s {
  uint32_t refs;
  uint32_t nreq;
  uint8_t digest[DLEN];   /* SHA-256 of bytes (of "" for a null batch)   */
  uint64_t timestamp_ms;
  size_t payload;         /* sum of envelope lengths                     */
  fl_pbft_request_t *reqs; /* views into store                           */
  uint8_t *store;
  uint8_t *bytes;         /* exact serialized Batch (NULL for null/forward) */
  size_t len;
} fl__pbft_batch_t;

fl__pbft_batch_t *fl__pbft_batch_ref(fl__pbft_batch_t *b);
void fl__pbft_batch_unref(fl__pbft_batch_t *b);

/* ------------------------------------------------------------ message */

typedef struct fl__pbft_smsg_s fl__pbft_smsg_t;

typedef struct fl__pbft_sig_s {
  uint32_t replica;
  fl_buf_t sig;
} fl__pbft_sig_t;

typedef struct fl__pbft_cert_s {
  fl__pbft_smsg_t *pp;
  fl__pbft_smsg_t **prep;
  uint32_t nprep;
} fl__pbft_cert_t;

typedef struct fl__pbft_xentry_s {
  uint64_t seq, view;
  fl__pbft_batch_t *batch;
  fl__pbft_sig_t *sigs; /* views into the owning message's store */
  uint32_t nsig;
  /* The rest of the record, for installing it by record (pbft_st.c). */
  bool full;            /* state_digest and head_hash were present */
  uint8_t state[DLEN], head[DLEN];
  uint64_t block_number, ts;
  uint8_t *header;      /* owned; NULL when the seq made no block */
  size_t header_len;
  uint32_t *dropped;    /* owned */
  uint32_t ndropped;
} fl__pbft_xentry_t;

struct fl__pbft_smsg_s {
  uint32_t refs;
  uint32_t replica;
  fl_pbft_msg_type_t type;
  uint8_t *msg; /* exact signed Message bytes */
  size_t msg_len;
  uint8_t *sig;
  size_t sig_len;
  uint8_t *store; /* owned copies for views in the union, if any */
  union {
    struct {
      uint64_t view, seq;
      uint8_t d[DLEN];
      /* The batch (from the payload, or attached later when found
       * locally or fetched: its digest is d); NULL for a pre-prepare that
       * came without one (in a certificate or a NEW-VIEW). */
      fl__pbft_batch_t *batch;
    } pp;
    struct {
      uint64_t view, seq;
      uint8_t d[DLEN];
    } vote; /* PREPARE, COMMIT */
    struct {
      uint64_t seq;
      uint8_t d[DLEN];
    } ck;
    struct {
      uint64_t new_view, stable_seq;
      fl__pbft_smsg_t **proof;
      uint32_t nproof;
      fl__pbft_cert_t *certs;
      uint32_t ncert;
    } vc;
    struct {
      uint64_t view;
      fl__pbft_smsg_t **vcs;
      uint32_t nvc;
      fl__pbft_smsg_t **pps;
      uint32_t npp;
    } nv;
    struct {
      uint64_t from, to;
    } sreq;
    struct {
      fl__pbft_xentry_t *ents;
      uint32_t nent;
      fl__pbft_smsg_t **proof;
      uint32_t nproof;
      fl__pbft_xentry_t base; /* has_base: the record before ents[0] */
      bool has_base;
    } sresp;
    struct {
      fl__pbft_batch_t *reqs;
    } fwd;
    struct {
      uint64_t seq, number;
      uint8_t hash[DLEN];
      fl__pbft_sig_t *sigs;
      uint32_t nsig;
    } bs;
    struct {
      uint64_t view, last_exec, stable, delivered;
      bool vc;
    } st;
    struct {
      uint64_t seq;
      uint8_t d[DLEN];
    } bf; /* BATCH_FETCH */
    struct {
      uint64_t seq;
      fl__pbft_batch_t *batch; /* its digest computed at decode */
    } bd; /* BATCH_DATA */
  } u;
};

/* What fl_pbft_msg_decode hands the host: one decoded, verified message. */
struct fl_pbft_msg_s {
  fl__pbft_smsg_t *m;
};

fl__pbft_smsg_t *fl__pbft_smsg_ref(fl__pbft_smsg_t *m);
void fl__pbft_smsg_unref(fl__pbft_smsg_t *m);

/* ---------------------------------------------------------------- codec */

typedef struct fl__pbft_codec_s {
  const fl_pbft_ops_t *ops;
  uint8_t null_digest[DLEN]; /* SHA-256("") */
  uint32_t n;
  uint32_t max_batch;   /* requests per batch / forward                  */
  uint32_t max_entries; /* per StateResponse / certificates per VC       */
  bool verify;          /* false only when decoding our own output       */
} fl__pbft_codec_t;

/* Decodes a SignedMessage, checking every signature it carries. Returns FL_OK
 * and *out (unref), FL_EMALFORMED, FL_EBADSIG, or FL_EPERM (non-member). */
fl_status_t fl__pbft_decode(const fl__pbft_codec_t *c, fl_buf_t bytes,
                            fl__pbft_smsg_t **out);
/* Decodes a serialized Batch; bytes == empty gives the null batch. */
fl_status_t fl__pbft_batch_decode(const fl__pbft_codec_t *c, fl_buf_t bytes,
                                  fl__pbft_batch_t **out);
/* Encodes a Batch from requests. */
void fl__pbft_batch_encode(const fl_pbft_request_t *reqs, size_t n,
                           uint64_t ts, fl_sbuf_t *out);

/* Wraps Message bytes into a signed SignedMessage appended to *out; the
 * _payload variant adds the (unsigned) payload of a pre-prepare. */
fl_status_t fl__pbft_sign_wrap(const fl_pbft_ops_t *ops, uint32_t self,
                               fl_buf_t msg, fl_sbuf_t *out);
fl_status_t fl__pbft_sign_wrap_payload(const fl_pbft_ops_t *ops, uint32_t self,
                                       fl_buf_t msg, fl_buf_t payload,
                                       fl_sbuf_t *out);

/* Builders of Message bytes (unsigned), appended to *out. A pre-prepare's
 * batch is not part of its Message: sign it as the payload. */
void fl__pbft_enc_pp(uint64_t view, uint64_t seq, const uint8_t d[DLEN],
                     fl_sbuf_t *out);
void fl__pbft_enc_bfetch(uint64_t seq, const uint8_t d[DLEN], fl_sbuf_t *out);
void fl__pbft_enc_bdata(uint64_t seq, fl_buf_t batch, fl_sbuf_t *out);
void fl__pbft_enc_vote(fl_pbft_msg_type_t type, uint64_t view, uint64_t seq,
                       const uint8_t d[DLEN], fl_sbuf_t *out);
void fl__pbft_enc_ckpt(uint64_t seq, const uint8_t d[DLEN], fl_sbuf_t *out);
void fl__pbft_enc_vc(uint64_t new_view, uint64_t stable_seq,
                     fl__pbft_smsg_t *const *proof, uint32_t nproof,
                     const fl__pbft_cert_t *certs, uint32_t ncert,
                     fl_sbuf_t *out);
void fl__pbft_enc_nv(uint64_t view, fl__pbft_smsg_t *const *vcs, uint32_t nvc,
                     fl__pbft_smsg_t *const *pps, uint32_t npp, fl_sbuf_t *out);
void fl__pbft_enc_sreq(uint64_t from, uint64_t to, fl_sbuf_t *out);
void fl__pbft_enc_bsign(uint64_t seq, uint64_t number, const uint8_t h[DLEN],
                        const fl__pbft_sig_t *sigs, uint32_t nsig,
                        fl_sbuf_t *out);
void fl__pbft_enc_status(uint64_t view, bool vc, uint64_t last_exec,
                         uint64_t stable, uint64_t delivered, fl_sbuf_t *out);
/* Manual protobuf framing (for messages built by concatenation). */
void fl__pbft_put_varint(fl_sbuf_t *b, uint64_t v);
void fl__pbft_put_field(fl_sbuf_t *b, uint32_t field, fl_buf_t bytes);
/* Serialized SignedMessage of m, with a pre-prepare's batch as payload when
 * it has one. */
void fl__pbft_smsg_pack(const fl__pbft_smsg_t *m, fl_sbuf_t *out);

/* Persisted records. */
void fl__pbft_enc_viewstate(uint64_t view, bool vc, fl_sbuf_t *out);
fl_status_t fl__pbft_dec_viewstate(fl_buf_t b, uint64_t *view, bool *vc);
void fl__pbft_enc_logentry(uint64_t seq, const fl__pbft_smsg_t *pp,
                           const fl__pbft_cert_t *cert, fl_sbuf_t *out);
fl_status_t fl__pbft_dec_logentry(const fl__pbft_codec_t *c, fl_buf_t b,
                                  uint64_t *seq, fl__pbft_smsg_t **pp,
                                  fl__pbft_cert_t *cert);
/* The PREPARED record: the prepares of the certificate for the ENTRY's own
 * pre-prepare (the ENCODED log entry then omits that certificate). */
void fl__pbft_enc_prepared(uint64_t seq, uint64_t view, const uint8_t d[DLEN],
                           fl__pbft_smsg_t *const *prep, uint32_t nprep,
                           fl_sbuf_t *out);
fl_status_t fl__pbft_dec_prepared(const fl__pbft_codec_t *c, fl_buf_t b,
                                  uint64_t *seq, uint64_t *view, uint8_t d[DLEN],
                                  fl__pbft_smsg_t ***prep, uint32_t *nprep);
void fl__pbft_enc_stable(uint64_t seq, const uint8_t d[DLEN],
                         fl__pbft_smsg_t *const *proof, uint32_t nproof,
                         fl_sbuf_t *out);
fl_status_t fl__pbft_dec_stable(const fl__pbft_codec_t *c, fl_buf_t b,
                                uint64_t *seq, uint8_t d[DLEN],
                                fl__pbft_smsg_t ***proof, uint32_t *nproof);

/* A COMMITTED record / StateResponse entry in C form. */
typedef struct fl__pbft_committed_s {
  uint64_t seq, view, block_number, timestamp_ms;
  uint8_t state[DLEN], head[DLEN];
  fl_buf_t batch;  /* views (into whatever was decoded or the caller's data) */
  fl_buf_t header; /* empty when seq made no block */
  const fl__pbft_sig_t *sigs;
  uint32_t nsig;
  const uint32_t *dropped;
  uint32_t ndropped;
} fl__pbft_committed_t;

void fl__pbft_enc_committed(const fl__pbft_committed_t *ce, fl_sbuf_t *out);
/* Decodes a CommittedEntry; views in *ce point into *store (fl_free). */
fl_status_t fl__pbft_dec_committed(fl_buf_t b, fl__pbft_committed_t *ce,
                                   uint8_t **store, uint32_t max_sigs);

/* Block pieces: the data hash over the kept envelopes (docs/protocol.md
 * section 4), the BlockHeader bytes, and the full Block. */
void fl__pbft_block_data_hash(const fl_pbft_ops_t *ops, const fl__pbft_batch_t *b,
                              const uint8_t *keep, uint8_t out[DLEN]);
void fl__pbft_enc_block_header(uint64_t number, const uint8_t prev[DLEN],
                               const uint8_t data_hash[DLEN], fl_sbuf_t *out);
void fl__pbft_enc_block(fl_buf_t header, const fl__pbft_batch_t *b,
                        const uint8_t *keep, const fl__pbft_sig_t *sigs,
                        uint32_t nsig, uint64_t view, uint64_t seq,
                        uint64_t ts, fl_sbuf_t *out);

void fl__pbft_cert_clear(fl__pbft_cert_t *c);
void fl__pbft_cert_copy(fl__pbft_cert_t *dst, const fl__pbft_cert_t *src);

/* ---------------------------------------------------------------- core */

typedef struct fl__pbft_entry_s {
  uint64_t seq;              /* 0 = unused */
  uint64_t view;             /* view of pp / prep / com                 */
  fl__pbft_smsg_t *pp;       /* accepted pre-prepare in `view`          */
  fl__pbft_smsg_t **prep;    /* [n] first PREPARE per replica in `view` */
  fl__pbft_smsg_t **com;     /* [n] first COMMIT per replica in `view`  */
  uint32_t nprep, ncom;      /* of those, matching pp's digest          */
  bool prepared, committed;
  uint64_t sent_at;          /* last (re)transmission of our messages   */
  uint32_t ntx;              /* retransmissions so far (backoff)        */
  fl__pbft_cert_t cert;      /* highest-view prepared certificate       */
} fl__pbft_entry_t;

/* Votes for a seq in a view older than ours, kept so that a replica that
 * left a view early can still execute what that view committed (a
 * pre-prepare and 2f+1 matching commits prove it). */
typedef struct fl__pbft_cc_s {
  uint64_t seq, view;
  fl__pbft_smsg_t *pp;
  fl__pbft_smsg_t **com;     /* [n] */
} fl__pbft_cc_t;

typedef struct fl__pbft_ck_s {
  uint64_t seq;
  fl__pbft_smsg_t **from;    /* [n] */
  bool have_own;
  uint8_t own[DLEN];
} fl__pbft_ck_t;

typedef struct fl__pbft_blk_s {
  uint64_t number;           /* 0 = free */
  bool built, delivered;
  uint64_t seq, view, ts;
  fl__pbft_batch_t *batch;
  uint8_t *keep;             /* [batch->nreq] */
  uint32_t nkept;
  fl_sbuf_t header;
  uint8_t hash[DLEN];
  fl_sbuf_t *sig;            /* [n] */
  uint8_t (*early_hash)[DLEN]; /* [n] claimed hash of an unverified sig */
  uint64_t valid, early;     /* masks over replicas                     */
  uint32_t nvalid;
} fl__pbft_blk_t;

typedef struct fl__pbft_exrec_s {
  uint64_t seq, view, ts, number, block_after;
  uint8_t state[DLEN], head[DLEN];
  fl__pbft_batch_t *batch;
  uint32_t *dropped;
  uint32_t ndropped;
} fl__pbft_exrec_t;

typedef struct fl__pbft_dd_s {
  uint64_t seq;              /* 0 = empty */
  uint8_t *ids;              /* concatenated tx ids (map keys point here) */
  uint32_t *lens;
  uint32_t n;
} fl__pbft_dd_t;

typedef struct fl__pbft_preq_s {
  struct fl__pbft_preq_s *prev, *next;
  uint64_t arrival, fwd_at, inflight_seq;
  uint64_t starve_at;        /* censor timeout: no pre-prepare carried it by then */
  bool relayed;              /* multicast in this view (or came as a multicast) */
  uint32_t txlen, envlen;
  uint8_t data[];            /* tx id, then envelope */
} fl__pbft_preq_t;

typedef struct fl__pbft_plist_s {
  fl__pbft_preq_t *head, *tail;
  size_t count, bytes;
} fl__pbft_plist_t;

typedef struct fl__pbft_restore_s {
  bool any;
  bool have_view;
  uint64_t view;
  bool vc;
  uint64_t ck_seq;
  uint8_t ck_d[DLEN];
  fl__pbft_smsg_t **ck_proof;
  uint32_t nck_proof;
  struct { uint64_t seq; fl__pbft_smsg_t *pp; fl__pbft_cert_t cert; } *ents;
  size_t nents, capents;
  struct {
    uint64_t seq, view;
    uint8_t d[DLEN];
    fl__pbft_smsg_t **prep;
    uint32_t nprep;
  } *preps;
  size_t npreps, cappreps;
  struct { fl__pbft_committed_t ce; uint8_t *store; } *recs;
  size_t nrecs, caprecs;
} fl__pbft_restore_t;

struct fl_pbft_s {
  fl_pbft_config_t cfg;
  fl_pbft_ops_t ops;
  fl__pbft_codec_t codec, own_codec;
  uint32_t n, f, q, self, K, L, D, nblk;
  bool started;
  uint64_t now;
  fl_pbft_stats_t stats;
  uint8_t genesis[DLEN];
  uint8_t null_digest[DLEN];

  /* view */
  uint64_t view;
  bool in_vc;
  uint32_t backoff;
  uint32_t vc_streak;          /* view changes since a batch last executed */
  uint64_t unreachable;        /* mask: replicas the host reports down    */
  uint64_t vc_deadline;
  fl__pbft_smsg_t *own_vc;
  fl__pbft_smsg_t **vc_from;   /* [n] latest valid VIEW-CHANGE per replica */
  fl__pbft_smsg_t *last_nv;

  /* log and checkpoints */
  uint64_t low;
  uint8_t low_d[DLEN];
  fl__pbft_smsg_t **low_proof;
  uint32_t nlow_proof;
  fl__pbft_entry_t *log;       /* [L] */
  uint64_t next_seq;
  uint64_t last_cut;           /* now of our last proposal (cut_when_idle) */
  bool has_cut;
  uint64_t last_ts;            /* timestamp of our last proposed batch */
  fl__pbft_ck_t *ck;           /* [L/K] */
  uint32_t nck;
  fl__pbft_smsg_t *own_ck;

  /* execution and blocks */
  uint64_t last_exec;
  uint8_t state[DLEN];
  uint64_t last_block;
  uint8_t head[DLEN];
  fl__pbft_dd_t *dd;           /* [D] */
  fl__pbft_map_t ddmap;        /* tx id -> seq executed */
  fl__pbft_blk_t *blk;         /* [nblk] */
  uint64_t delivered;
  fl__pbft_exrec_t *exq;       /* ring of unpersisted executions */
  size_t exq_head, exq_count, exq_cap;

  /* client requests */
  fl__pbft_map_t pending;      /* tx id -> preq */
  fl__pbft_plist_t queued, infl;
  fl__pbft_map_t inflight;     /* tx id -> seq of an accepted pre-prepare */
  fl_sbuf_t fwdbuf;            /* Forward body being built */
  uint32_t nfwd;
  uint64_t fwd_sent_at;        /* when the last FORWARD to the primary left */
  fl_sbuf_t relaybuf;          /* Forward body to every replica (relay) */
  uint32_t nrelay;
  uint64_t starve_min;         /* earliest starve_at of a queued request (a
                                * lower bound: rescanned before it is acted on) */
  fl__pbft_cc_t *cc;           /* [L] */
  uint64_t exec_at;            /* time of the last execution */
  uint64_t exec_gap;           /* EWMA of gaps between executions (ms)   */
  uint64_t exec_view;          /* view of the last execution             */
  uint64_t blk_wait_since;     /* since when delivered < last_block */
  uint32_t sig_peer;           /* last replica asked for block signatures */
  uint32_t fetch_peer;         /* last replica asked for missing batches  */
  uint64_t fetch_at;           /* no batch fetch before this time         */

  /* state transfer */
  struct {
    bool active;
    uint64_t target;
    uint8_t d[DLEN];
    uint64_t peers;            /* mask of replicas that signed the proof */
    uint32_t peer;
    uint64_t deadline;
    uint64_t rec_until;        /* seqs up to here are installed by record */
  } st;

  /* timers */
  uint64_t status_at;
  uint64_t *help_at;           /* [n] */

  fl__pbft_restore_t *rst;

  /* actions */
  fl_pbft_action_t *acts;
  void **act_own;
  size_t nacts, capacts;
};

/* pbft.c, used by pbft_vc.c and pbft_st.c */
uint32_t fl__pbft_primary(const fl_pbft_t *p, uint64_t view);
fl__pbft_entry_t *fl__pbft_entry(fl_pbft_t *p, uint64_t seq);
void fl__pbft_entry_reset_view(fl_pbft_t *p, fl__pbft_entry_t *e);
void fl__pbft_persist(fl_pbft_t *p, fl_pbft_record_t kind, uint64_t seq,
                      fl_sbuf_t *bytes);
void fl__pbft_send_raw(fl_pbft_t *p, uint32_t to, fl_buf_t signed_bytes);
fl__pbft_smsg_t *fl__pbft_send_own(fl_pbft_t *p, uint32_t to, fl_sbuf_t *msg);
void fl__pbft_send_smsg(fl_pbft_t *p, uint32_t to, const fl__pbft_smsg_t *m);
void fl__pbft_persist_entry(fl_pbft_t *p, fl__pbft_entry_t *e);
void fl__pbft_accept_pp(fl_pbft_t *p, fl__pbft_entry_t *e,
                        fl__pbft_smsg_t *pp);
/* Gives pp (a pre-prepare that came without its batch) the batch of the
 * same seq and digest if this replica holds one. True when pp has a batch. */
bool fl__pbft_attach_batch(fl_pbft_t *p, fl__pbft_smsg_t *pp);
void fl__pbft_adopt_stable(fl_pbft_t *p, uint64_t seq, const uint8_t d[DLEN],
                           fl__pbft_smsg_t *const *proof, uint32_t nproof);
bool fl__pbft_check_proof(fl_pbft_t *p, fl__pbft_smsg_t *const *proof,
                          uint32_t nproof, uint64_t *seq, uint8_t d[DLEN]);
bool fl__pbft_execute(fl_pbft_t *p, uint64_t seq, uint64_t view,
                      fl__pbft_batch_t *b, const fl__pbft_sig_t *sigs,
                      uint32_t nsig);
void fl__pbft_try_execute(fl_pbft_t *p);
void fl__pbft_attach_sigs(fl_pbft_t *p, uint64_t seq, const fl__pbft_sig_t *sigs,
                          uint32_t nsig);
void fl__pbft_propose(fl_pbft_t *p);
void fl__pbft_chain(fl_pbft_t *p, uint8_t state[DLEN], uint64_t seq,
                    const uint8_t digest[DLEN]);
void fl__pbft_plist_remove(fl__pbft_plist_t *l, fl__pbft_preq_t *r);
void fl__pbft_plist_push(fl__pbft_plist_t *l, fl__pbft_preq_t *r, bool front);
void fl__pbft_mark_inflight(fl_pbft_t *p, fl__pbft_batch_t *b, uint64_t seq);
void fl__pbft_forward_queued(fl_pbft_t *p, bool all);
void fl__pbft_flush_forwards(fl_pbft_t *p);
void fl__pbft_starve_scan(fl_pbft_t *p);
void fl__pbft_dd_evict(fl_pbft_t *p, fl__pbft_dd_t *s);
/* Records the kept requests of b (keep[i], nkept of them, idbytes of tx
 * ids) as executed at seq: copies their tx ids into the window slot
 * dd[seq % D] (evicted by the caller) and points the at-most-once map's
 * entries (added if missing) at those copies. */
void fl__pbft_dd_store(fl_pbft_t *p, uint64_t seq, const fl__pbft_batch_t *b,
                       const uint8_t *keep, uint32_t nkept, size_t idbytes);
void fl__pbft_forget_batch(fl_pbft_t *p, const fl__pbft_batch_t *b, uint64_t seq);
void fl__pbft_emit_execute(fl_pbft_t *p, uint64_t seq, uint64_t view,
                           const uint8_t batch_digest[DLEN], uint64_t block, uint32_t nkept,
                           uint32_t ndrop);
void fl__pbft_exec_reset(fl_pbft_t *p);
void fl__pbft_requeue_inflight(fl_pbft_t *p);
void fl__pbft_blk_forget_upto(fl_pbft_t *p, uint64_t num);
void fl__pbft_restart_timers(fl_pbft_t *p);

/* pbft_vc.c */
void fl__pbft_start_vc(fl_pbft_t *p, uint64_t new_view);
void fl__pbft_on_vc(fl_pbft_t *p, fl__pbft_smsg_t *m);
void fl__pbft_on_nv(fl_pbft_t *p, fl__pbft_smsg_t *m);
void fl__pbft_vc_tick(fl_pbft_t *p);

/* pbft_st.c */
void fl__pbft_st_begin(fl_pbft_t *p, uint64_t target, const uint8_t d[DLEN],
                       fl__pbft_smsg_t *const *proof, uint32_t nproof);
void fl__pbft_st_tick(fl_pbft_t *p);
void fl__pbft_on_sreq(fl_pbft_t *p, fl__pbft_smsg_t *m);
void fl__pbft_on_sresp(fl_pbft_t *p, fl__pbft_smsg_t *m);
fl_status_t fl__pbft_restore_finish(fl_pbft_t *p);
void fl__pbft_restore_free(fl__pbft_restore_t *r);

#endif /* FL_ORDERER_PBFT_PBFT_INT_H */
