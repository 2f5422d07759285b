/* SPDX-License-Identifier: Apache-2.0
 *
 * test_badinput_data.c: the bad-input catalogue of the dataset loaders
 * (ml/dataset.h; docs/security.md, "Catalogue"). Every loader an edge
 * client can be pointed at (CSV, LIBSVM, NSL-KDD, UNSW-NB15, BoT-IoT,
 * Iris) gets truncated, malformed, wrong-width, huge-valued, empty,
 * binary and missing files, plain and gzip. Each case asserts:
 *   (a) the documented status and an error naming the file, the line (for
 *       a bad row) and the problem;
 *   (b) nothing is returned: the table is zeroed;
 *   (c) the loader still works: the valid file of the same kind loads
 *       right after (and ASan sees no leak in the failed attempt).
 * FL_BADINPUT_VERBOSE=1 prints every outcome.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/base/alloc.h"
#include "ml/dataset.h"

enum { L_CSV, L_LIBSVM, L_NSL, L_UNSW_MC, L_UNSW_BIN, L_BOT, L_IRIS };

static const char *const g_ldname[] = {"csv", "libsvm", "nsl-kdd", "unsw-nb15 (multiclass)",
                                       "unsw-nb15 (binary)", "bot-iot", "iris"};

#define CSV0 "id,proto,a,b,label\n1,tcp,0.5,10,normal\n2,udp,1.5,-3,attack\n3,tcp,2.5e2,0,normal\n"
#define NSL1                                                                                     \
  "0,tcp,ftp_data,SF,491,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,0.00,0.00,0.00,0.00,1.00,0.00,"   \
  "0.00,150,25,0.17,0.03,0.17,0.00,0.00,0.00,0.05,0.00,normal,20\n"
#define NSL2                                                                                     \
  "0,udp,other,SF,146,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,13,1,0.00,0.00,0.00,0.00,0.08,0.15,"     \
  "0.00,255,1,0.00,0.60,0.88,0.00,0.00,0.00,0.00,0.00,neptune,15\n"
#define UNSW_H                                                                                   \
  "id,dur,proto,service,state,spkts,dpkts,sbytes,dbytes,rate,sttl,dttl,sload,dload,sloss,dloss," \
  "sinpkt,dinpkt,sjit,djit,swin,stcpb,dtcpb,dwin,tcprtt,synack,ackdat,smean,dmean,trans_depth,"  \
  "response_body_len,ct_srv_src,ct_state_ttl,ct_dst_ltm,ct_src_dport_ltm,ct_dst_sport_ltm,"      \
  "ct_dst_src_ltm,is_ftp_login,ct_ftp_cmd,ct_flw_http_mthd,ct_src_ltm,ct_srv_dst,"               \
  "is_sm_ips_ports,attack_cat,label\n"
#define UNSW1                                                                                    \
  "1,0.121478,tcp,-,FIN,6,4,258,172,74.08749,252,254,14158.94238,8495.365234,0,0,24.2956,8.375," \
  "30.177547,11.830604,255,621772692,2202533631,255,0,0,0,43,43,0,0,1,0,1,1,1,1,0,0,0,1,1,0,"    \
  "Normal,0\n"
#define UNSW2                                                                                    \
  "2,0.000009,udp,dns,INT,2,0,114,0,111111.1072,254,0,50666664,0,0,0,0.009,0,0,0,0,0,0,0,0,0,0," \
  "57,0,0,0,33,2,33,33,33,33,0,0,0,33,33,0,Generic,1\n"
#define BOT_H                                                                                    \
  "pkSeqID,proto,saddr,sport,daddr,dport,seq,stddev,N_IN_Conn_P_SrcIP,min,state_number,mean,"    \
  "N_IN_Conn_P_DstIP,drate,srate,max,attack,category,subcategory\n"
#define BOT1                                                                                     \
  "3142762,udp,192.168.100.150,6551,192.168.100.3,80,251984,1.900363,100,0,4,2.687519,100,0,"    \
  "0.4046,2.979367,1,DDoS,UDP\n"
#define BOT2 "2,tcp,192.168.100.7,0x0303,192.168.100.3,80,1,0,1,0,1,0,1,0,0,0,0,Normal,Normal\n"
#define IRIS "150,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\n7.0,3.2,4.7,1.4,1\n"
#define LIBSVM "1 1:0.5 3:2\n-1 2:1 32:7.5\n0 1:1e-3\n"

static const char *const g_valid[] = {CSV0, LIBSVM, NSL1 NSL2, UNSW_H UNSW1 UNSW2,
                                      UNSW_H UNSW1 UNSW2, BOT_H BOT1 BOT2, IRIS};

typedef struct dcase_s {
  const char *name;  /* catalogue id */
  int loader;
  const char *text;  /* file content; NULL = the file does not exist */
  int gz;            /* 1: gzip it, 2: gzip and cut the stream in half */
  fl_status_t expect;
  const char *why;   /* substring of the error */
  bool has_line;     /* the error names a line ("file:N:") */
} dcase_t;

/* A numeric field of 400 digits: a finite double cannot hold it. */
#define HUGE_NUM                                                                                \
  "9999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999" \
  "9999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999" \
  "9999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999" \
  "9999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999" \
  "999999999999999999999999999999999999"

/* One row per case, one line per row (long lines on purpose). */
/* clang-format off */
static const dcase_t g_cases[] = {
    /* CSV (the edge's "csv" dataset kind) */
    {"csv.truncated-row", L_CSV, "id,proto,a,b,label\n1,tcp,0.5,10,normal\n2,udp,1.5", 0, FL_EMALFORMED, "expected 5 fields, got 3", true},
    {"csv.truncated-gzip", L_CSV, CSV0, 2, FL_EIO, "unexpected end of file", true},
    {"csv.malformed-number", L_CSV, "id,proto,a,b,label\n1,tcp,zero,10,normal\n", 0, FL_EMALFORMED, "is not a finite number", true},
    {"csv.unterminated-quote", L_CSV, "id,proto,a,b,label\n1,\"tcp,0.5,1,normal\n", 0, FL_EMALFORMED, "bad quoting", true},
    {"csv.too-few-columns", L_CSV, "id,proto,a,b,label\n1,tcp,0.5,normal\n", 0, FL_EMALFORMED, "expected 5 fields, got 4", true},
    {"csv.too-many-columns", L_CSV, "id,proto,a,b,label\n1,tcp,0.5,1,normal,extra\n", 0, FL_EMALFORMED, "expected 5 fields, got 6", true},
    {"csv.huge-value", L_CSV, "id,proto,a,b,label\n1,tcp," HUGE_NUM ",1,normal\n", 0, FL_EMALFORMED, "is not a finite number", true},
    {"csv.nan", L_CSV, "id,proto,a,b,label\n1,tcp,nan,1,normal\n", 0, FL_EMALFORMED, "is not a finite number", true},
    {"csv.no-label-column", L_CSV, "id,proto,a,b\n1,tcp,1,2\n", 0, FL_EINVAL, "no label column 'label'", false},
    {"csv.empty", L_CSV, "", 0, FL_EMALFORMED, "no header line", false},
    {"csv.binary", L_CSV, "\x01\x02\xff\xfe\x00garbage\n\x7f", 0, FL_EMALFORMED, "bad header line", false},
    {"csv.missing-file", L_CSV, NULL, 0, FL_EIO, "cannot open", false},
    /* LIBSVM */
    {"libsvm.indices-not-increasing", L_LIBSVM, "1 3:1 2:1\n", 0, FL_EMALFORMED, "bad feature '2:1'", true},
    {"libsvm.index-zero", L_LIBSVM, "1 0:1\n", 0, FL_EMALFORMED, "bad feature '0:1'", true},
    {"libsvm.index-over-max", L_LIBSVM, "1 33:1\n", 0, FL_EMALFORMED, "bad feature '33:1'", true},
    {"libsvm.malformed-pair", L_LIBSVM, "1 a:b\n", 0, FL_EMALFORMED, "bad feature 'a:b'", true},
    {"libsvm.huge-value", L_LIBSVM, "1 1:" HUGE_NUM "\n", 0, FL_EMALFORMED, "bad feature", true},
    {"libsvm.truncated-gzip", L_LIBSVM, LIBSVM LIBSVM LIBSVM, 2, FL_EIO, "unexpected end of file", true},
    {"libsvm.missing-file", L_LIBSVM, NULL, 0, FL_EIO, "cannot open", false},
    /* NSL-KDD */
    {"nsl-kdd.truncated-row", L_NSL, NSL1 "0,udp,other,SF,146,0,0", 0, FL_EMALFORMED, "expected 43 fields, got 7", true},
    {"nsl-kdd.truncated-gzip", L_NSL, NSL1 NSL2 NSL1 NSL2, 2, FL_EIO, "unexpected end of file", true},
    {"nsl-kdd.short-row", L_NSL, "0,tcp,ftp_data,SF,491,normal,20\n", 0, FL_EMALFORMED, "expected 43 fields, got 7", true},
    {"nsl-kdd.long-row", L_NSL, "0,tcp,ftp_data,SF,491,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,0.00,0.00,0.00,0.00,1.00,0.00,0.00,150,25,0.17,0.03,0.17,0.00,0.00,0.00,0.05,0.00,normal,20,7\n", 0, FL_EMALFORMED, "expected 43 fields, got 44", true},
    {"nsl-kdd.malformed-number", L_NSL, "0,tcp,ftp_data,SF,lots,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,0.00,0.00,0.00,0.00,1.00,0.00,0.00,150,25,0.17,0.03,0.17,0.00,0.00,0.00,0.05,0.00,normal,20\n", 0, FL_EMALFORMED, "'lots' is not a finite number", true},
    {"nsl-kdd.huge-value", L_NSL, "0,tcp,ftp_data,SF," HUGE_NUM ",0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,0.00,0.00,0.00,0.00,1.00,0.00,0.00,150,25,0.17,0.03,0.17,0.00,0.00,0.00,0.05,0.00,normal,20\n", 0, FL_EMALFORMED, "is not a finite number", true},
    {"nsl-kdd.binary", L_NSL, "\x01\x02\x03,\xff\xfe\n\x7f\x80", 0, FL_EMALFORMED, "expected 43 fields", true},
    {"nsl-kdd.empty", L_NSL, "", 0, FL_EMALFORMED, "no data rows", false},
    {"nsl-kdd.missing-file", L_NSL, NULL, 0, FL_EIO, "cannot open", false},
    /* UNSW-NB15 */
    {"unsw.header-only", L_UNSW_BIN, UNSW_H, 0, FL_EMALFORMED, "no data rows", false},
    {"unsw.truncated-row", L_UNSW_MC, UNSW_H UNSW1 "2,0.000009,udp,dns", 0, FL_EMALFORMED, "expected 45 fields, got 4", true},
    {"unsw.missing-column", L_UNSW_MC, "id,dur,proto\n1,0.1,tcp\n", 0, FL_EINVAL, "no label column 'attack_cat'", false},
    {"unsw.malformed-number", L_UNSW_BIN, UNSW_H "1,fast,tcp,-,FIN,6,4,258,172,74.08749,252,254,14158.94238,8495.365234,0,0,24.2956,8.375,30.177547,11.830604,255,621772692,2202533631,255,0,0,0,43,43,0,0,1,0,1,1,1,1,0,0,0,1,1,0,Normal,0\n", 0, FL_EMALFORMED, "'fast' is not a finite number", true},
    {"unsw.huge-value", L_UNSW_BIN, UNSW_H "1," HUGE_NUM ",tcp,-,FIN,6,4,258,172,74.08749,252,254,14158.94238,8495.365234,0,0,24.2956,8.375,30.177547,11.830604,255,621772692,2202533631,255,0,0,0,43,43,0,0,1,0,1,1,1,1,0,0,0,1,1,0,Normal,0\n", 0, FL_EMALFORMED, "is not a finite number", true},
    {"unsw.truncated-gzip", L_UNSW_BIN, UNSW_H UNSW1 UNSW2 UNSW1 UNSW2, 2, FL_EIO, "unexpected end of file", true},
    /* BoT-IoT */
    {"botiot.truncated-row", L_BOT, BOT_H BOT1 "2,tcp,192.168", 0, FL_EMALFORMED, "expected 19 fields, got 3", true},
    {"botiot.missing-label", L_BOT, "pkSeqID,proto,saddr\n1,udp,1.2.3.4\n", 0, FL_EINVAL, "no label column 'category'", false},
    {"botiot.huge-value", L_BOT, BOT_H "3142762,udp,192.168.100.150,6551,192.168.100.3,80,251984," HUGE_NUM ",100,0,4,2.687519,100,0,0.4046,2.979367,1,DDoS,UDP\n", 0, FL_EMALFORMED, "is not a finite number", true},
    /* Iris */
    {"iris.malformed-number", L_IRIS, "150,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\nseven,3.2,4.7,1.4,1\n", 0, FL_EMALFORMED, "'seven' is not a finite number", true},
    {"iris.too-few-columns", L_IRIS, "150,4,setosa,versicolor,virginica\n5.1,3.5,0\n", 0, FL_EMALFORMED, "expected 5 fields, got 3", true},
    {"iris.empty", L_IRIS, "", 0, FL_EMALFORMED, "no data rows", false},
};
/* clang-format on */

static char g_dir[256];

static void write_case(const char *path, const char *text, size_t len, int gz) {
  if (gz == 0) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    fclose(fp);
    return;
  }
  /* gzip in memory, then write all or half of it */
  uLongf cap = compressBound((uLong)len) + 64;
  uint8_t *out = fl_malloc(cap);
  z_stream z;
  memset(&z, 0, sizeof(z));
  assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = (Bytef *)(uintptr_t)text;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  size_t n = z.total_out;
  deflateEnd(&z);
  if (gz == 2) n /= 2;
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(out, 1, n, fp), n);
  fclose(fp);
  fl_free(out);
}

static fl_status_t load(int loader, const char *path, fl_ml_raw_t *raw, char *err, size_t n) {
  switch (loader) {
  case L_CSV: {
    fl_ml_csv_spec_t s = {.header = true, .label = "label", .categorical = "proto",
                          .ignore = "id"};
    return fl_ml_raw_load_csv(path, &s, raw, err, n);
  }
  case L_LIBSVM: return fl_ml_raw_load_libsvm(path, 32, raw, err, n);
  case L_NSL: return fl_ml_load_nsl_kdd(path, raw, err, n);
  case L_UNSW_MC: return fl_ml_load_unsw_nb15(path, true, raw, err, n);
  case L_UNSW_BIN: return fl_ml_load_unsw_nb15(path, false, raw, err, n);
  case L_BOT: return fl_ml_load_botiot(path, true, raw, err, n);
  default: return fl_ml_load_iris(path, raw, err, n);
  }
}

static bool zeroed(const fl_ml_raw_t *r) {
  return r->n == 0 && r->n_num == 0 && r->n_cat == 0 && r->num == NULL && r->cat == NULL &&
         r->label == NULL && r->num_names == NULL && r->cat_names == NULL;
}

static void test_loaders(void **state) {
  (void)state;
  const char *v = getenv("FL_BADINPUT_VERBOSE");
  bool verbose = v && v[0] == '1';
  int failed = 0;
  for (size_t k = 0; k < sizeof(g_cases) / sizeof(g_cases[0]); k++) {
    const dcase_t *c = &g_cases[k];
    char path[512];
    snprintf(path, sizeof(path), "%s/%s%s", g_dir, c->name, c->gz ? ".csv.gz" : ".csv");
    if (c->text) write_case(path, c->text, strlen(c->text), c->gz);
    fl_ml_raw_t raw;
    memset(&raw, 0x5a, sizeof(raw)); /* the loader must zero it */
    char err[512] = "";
    fl_status_t rc = load(c->loader, path, &raw, err, sizeof(err));
    const char *base = strrchr(path, '/') + 1;
    bool names_file = strstr(err, base) != NULL;
    char linepfx[600];
    snprintf(linepfx, sizeof(linepfx), "%s:", base);
    const char *after = strstr(err, linepfx);
    bool names_line = after && after[strlen(linepfx)] >= '1' && after[strlen(linepfx)] <= '9';
    bool ok = rc == c->expect && strstr(err, c->why) && names_file &&
              (!c->has_line || names_line) && (rc == FL_OK || zeroed(&raw));
    if (verbose || !ok)
      fprintf(stderr, "%s %-32s %-24s %s \"%s\"\n", ok ? "ok  " : "FAIL", c->name,
              g_ldname[c->loader], fl_status_name(rc), err);
    if (!ok) {
      fprintf(stderr, "     expected %s, \"%s\"%s, file named, table zeroed\n",
              fl_status_name(c->expect), c->why, c->has_line ? ", a line number" : "");
      failed++;
    }
    if (rc == FL_OK) fl_ml_raw_free(&raw);
    /* (c) the same loader reads a valid file right after */
    char vpath[512];
    snprintf(vpath, sizeof(vpath), "%s/valid-%d.csv", g_dir, c->loader);
    write_case(vpath, g_valid[c->loader], strlen(g_valid[c->loader]), 0);
    fl_ml_raw_t ok_raw;
    rc = load(c->loader, vpath, &ok_raw, err, sizeof(err));
    if (rc != FL_OK || ok_raw.n < 2) {
      fprintf(stderr, "FAIL %s: the valid %s file no longer loads: %s\n", c->name,
              g_ldname[c->loader], err);
      failed++;
    }
    if (rc == FL_OK) fl_ml_raw_free(&ok_raw);
    unlink(vpath);
    unlink(path);
  }
  fprintf(stderr, "badinput: %zu dataset cases, %d failed\n", sizeof(g_cases) / sizeof(g_cases[0]),
          failed);
  assert_int_equal(failed, 0);
}

static int setup(void **state) {
  (void)state;
  const char *tmp = getenv("TMPDIR");
  snprintf(g_dir, sizeof(g_dir), "%s/fl-badds-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  rmdir(g_dir);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_loaders)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
