/* SPDX-License-Identifier: Apache-2.0
 * Unit tests for peer/policy: parsing (canonical form, every error message),
 * MAJORITY/ANY compilation, evaluation (identity used once, duplicates,
 * order independence, cross-checked against a brute-force evaluator on
 * random policies), hostile inputs, and endorser planning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "common/base/alloc.h"
#include "common/base/buf.h"
#include "common/base/status.h"
#include "peer/policy/policy.h"

/* ---- helpers ---------------------------------------------------------- */

static fl_policy_t *must_parse(const char *text) {
  fl_policy_t *p = NULL;
  char *err = NULL;
  fl_status_t rc = fl_policy_parse(text, strlen(text), &p, &err);
  if (rc != FL_OK) fail_msg("parse %s: %s", text, err ? err : "(no message)");
  assert_null(err);
  return p;
}

static fl_policy_t *must_new(const char *text, const char *const *orgs,
                             size_t norgs) {
  fl_policy_t *p = NULL;
  char *err = NULL;
  fl_status_t rc = fl_policy_new(text, strlen(text), orgs, norgs, &p, &err);
  if (rc != FL_OK) fail_msg("new %s: %s", text, err ? err : "(no message)");
  return p;
}

static void expect_canon(const char *text, const char *canon) {
  fl_policy_t *p = must_parse(text);
  char *s = fl_policy_to_string(p);
  assert_string_equal(s, canon);
  fl_free(s);
  fl_policy_free(p);
}

/* Parses (and compiles against orgs when norgs > 0) and checks the code and
 * the exact message. */
static void expect_err_n(const char *text, size_t len, const char *const *orgs,
                         size_t norgs, fl_status_t want, const char *msg) {
  fl_policy_t *p = (fl_policy_t *)0x1;
  char *err = NULL;
  fl_status_t rc = norgs > 0 ? fl_policy_new(text, len, orgs, norgs, &p, &err)
                             : fl_policy_parse(text, len, &p, &err);
  assert_null(p);
  if (rc != want)
    fail_msg("rc %s want %s for %.60s: %s", fl_status_name(rc),
             fl_status_name(want), text, err ? err : "");
  assert_non_null(err);
  assert_string_equal(err, msg);
  fl_free(err);
}

static void expect_err(const char *text, fl_status_t want, const char *msg) {
  expect_err_n(text, strlen(text), NULL, 0, want, msg);
}

static fl_policy_signer_t sg(const char *mspid, fl_policy_role_t role,
                             const char *id) {
  return (fl_policy_signer_t){.mspid = mspid, .role = role,
                              .id = FL_BUF(id, strlen(id))};
}

static bool eval(const fl_policy_t *p, const fl_policy_signer_t *s, size_t n) {
  bool ok = true;
  fl_status_t rc = fl_policy_evaluate(p, s, n, &ok);
  if (rc != FL_OK) fail_msg("evaluate: %s", fl_status_name(rc));
  return ok;
}

static bool eval_text(const char *text, const fl_policy_signer_t *s, size_t n) {
  fl_policy_t *p = must_parse(text);
  bool ok = eval(p, s, n);
  fl_policy_free(p);
  return ok;
}

#define PEER FL_POLICY_ROLE_PEER
#define ADMIN FL_POLICY_ROLE_ADMIN
#define MEMBER FL_POLICY_ROLE_MEMBER
#define CLIENT FL_POLICY_ROLE_CLIENT
#define ORDERER FL_POLICY_ROLE_ORDERER

/* ---- parsing ---------------------------------------------------------- */

static void test_parse_canonical(void **state) {
  (void)state;
  expect_canon("'Org1MSP.peer'", "'Org1MSP.peer'");
  expect_canon("\"Org1MSP.peer\"", "'Org1MSP.peer'");
  expect_canon("AND('Org1MSP.peer','Org2MSP.peer')",
               "AND('Org1MSP.peer', 'Org2MSP.peer')");
  expect_canon("  and ( \"Org1MSP.PEER\" ,\t'Org2MSP.Admin' )\n",
               "AND('Org1MSP.peer', 'Org2MSP.admin')");
  expect_canon("outof(2,'A.peer','B.client',\r\n'C.member','D.orderer')",
               "OutOf(2, 'A.peer', 'B.client', 'C.member', 'D.orderer')");
  expect_canon("Or(majority, any, 'A.peer')", "OR(MAJORITY, ANY, 'A.peer')");
  expect_canon("OUTOF(1,'x-y_z.peer')", "OutOf(1, 'x-y_z.peer')");
  /* MSP ids may contain dots: the role is after the last one. */
  expect_canon("'org1.example.com.member'", "'org1.example.com.member'");
  expect_canon("OutOf(007, 'A.peer', 'B.peer', 'C.peer', 'D.peer', 'E.peer', "
               "'F.peer', 'G.peer')",
               "OutOf(7, 'A.peer', 'B.peer', 'C.peer', 'D.peer', 'E.peer', "
               "'F.peer', 'G.peer')");
  assert_string_equal(fl_policy_role_name(FL_POLICY_ROLE_ORDERER), "orderer");
  assert_string_equal(fl_policy_role_name((fl_policy_role_t)9), "?");
}

static void test_round_trip(void **state) {
  (void)state;
  const char *cases[] = {
      "'A.peer'",
      "AND('A.peer', 'B.peer')",
      "OR('A.peer', AND('B.admin', 'C.member'), OutOf(2, 'D.peer', "
      "'E.peer', 'F.client'))",
      "OutOf(1, OutOf(1, OutOf(1, 'A.orderer')))",
      "AND(MAJORITY, OR(ANY, 'Org1MSP.admin'))",
      "  or(  'a.b.c.peer'  ,\"d.MEMBER\")  ",
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    fl_policy_t *p = must_parse(cases[i]);
    char *s1 = fl_policy_to_string(p);
    fl_policy_t *q = must_parse(s1);
    char *s2 = fl_policy_to_string(q);
    assert_string_equal(s1, s2);
    assert_int_equal(fl_policy_is_symbolic(p), fl_policy_is_symbolic(q));
    fl_free(s1);
    fl_free(s2);
    fl_policy_free(p);
    fl_policy_free(q);
  }
  /* A compiled policy round-trips too and stays compiled. */
  const char *orgs[] = {"Org1MSP", "Org2MSP", "Org3MSP"};
  fl_policy_t *p = must_new("AND(MAJORITY, ANY)", orgs, 3);
  char *s = fl_policy_to_string(p);
  assert_string_equal(s, "AND(OutOf(2, 'Org1MSP.peer', 'Org2MSP.peer', "
                         "'Org3MSP.peer'), OR('Org1MSP.peer', "
                         "'Org2MSP.peer', 'Org3MSP.peer'))");
  fl_policy_t *q = must_new(s, orgs, 3);
  char *s2 = fl_policy_to_string(q);
  assert_string_equal(s, s2);
  fl_free(s);
  fl_free(s2);
  fl_policy_free(p);
  fl_policy_free(q);
}

static void test_parse_errors(void **state) {
  (void)state;
  expect_err("AND('Org1MSP.peer' x)", FL_EMALFORMED,
             "policy: column 20: expected ',' or ')' after principal, got 'x'");
  expect_err("AND(OR('A.peer') 'B.peer')", FL_EMALFORMED,
             "policy: column 18: expected ',' or ')' after sub-policy, got "
             "\"'\"");
  expect_err("AND('A.peer'", FL_EMALFORMED,
             "policy: column 13: expected ',' or ')' after principal, got end "
             "of input");
  expect_err("OutOf(5, 'A.peer', 'B.peer', 'C.peer')", FL_EMALFORMED,
             "policy: column 1: OutOf: n=5 but only 3 sub-policies");
  expect_err("OR('Z.peer', OutOf(2, 'A.peer'))", FL_EMALFORMED,
             "policy: column 14: OutOf: n=2 but only 1 sub-policy");
  expect_err("OutOf(0, 'A.peer')", FL_EMALFORMED,
             "policy: column 1: OutOf: n must be at least 1");
  expect_err("OutOf(99999999999999999999999999, 'A.peer')", FL_EMALFORMED,
             "policy: column 1: OutOf: n=9999999999999999... but only 1 "
             "sub-policy");
  expect_err("OutOf(-1, 'A.peer')", FL_EMALFORMED,
             "policy: column 7: expected the count n after 'OutOf(', got '-'");
  expect_err("OutOf('A.peer')", FL_EMALFORMED,
             "policy: column 7: expected the count n after 'OutOf(', got "
             "\"'\"");
  expect_err("OutOf(2 'A.peer')", FL_EMALFORMED,
             "policy: column 9: expected ',' after the count of OutOf, got "
             "\"'\"");
  expect_err("AND 'A.peer'", FL_EMALFORMED,
             "policy: column 5: expected '(' after AND, got \"'\"");
  expect_err("OR", FL_EMALFORMED,
             "policy: column 3: expected '(' after OR, got end of input");
  expect_err("AND()", FL_EMALFORMED,
             "policy: column 5: expected a policy (AND, OR, OutOf, MAJORITY, "
             "ANY or a quoted principal), got ')'");
  expect_err("AND('A.peer',)", FL_EMALFORMED,
             "policy: column 14: expected a policy (AND, OR, OutOf, MAJORITY, "
             "ANY or a quoted principal), got ')'");
  expect_err("NAND('A.peer')", FL_EMALFORMED,
             "policy: column 1: expected a policy (AND, OR, OutOf, MAJORITY, "
             "ANY or a quoted principal), got 'NAND'");
  expect_err("OR('A.peer', Org1MSP.peer)", FL_EMALFORMED,
             "policy: column 14: expected a policy (AND, OR, OutOf, MAJORITY, "
             "ANY or a quoted principal), got 'Org1MSP'");
  expect_err("'Org1MSP.peer", FL_EMALFORMED,
             "policy: column 1: unterminated principal: missing closing '");
  expect_err("AND(\"Org1MSP.peer", FL_EMALFORMED,
             "policy: column 5: unterminated principal: missing closing \"");
  expect_err("\"Org1MSP.peer'", FL_EMALFORMED,
             "policy: column 14: expected closing \" of principal or a letter, "
             "digit, '.', '-' or '_', got \"'\"");
  expect_err("'Org 1.peer'", FL_EMALFORMED,
             "policy: column 5: expected closing ' of principal or a letter, "
             "digit, '.', '-' or '_', got ' '");
  expect_err("'Org1MSP'", FL_EMALFORMED,
             "policy: column 1: principal 'Org1MSP' has no role; expected "
             "'MSPID.role'");
  expect_err("'.peer'", FL_EMALFORMED,
             "policy: column 1: principal '.peer' has an empty organisation id");
  expect_err("OR('A.peer', 'Org1MSP.king')", FL_EMALFORMED,
             "policy: column 14: unknown role 'king' in principal "
             "'Org1MSP.king'; expected peer, admin, member, client or orderer");
  expect_err("'Org1MSP.'", FL_EMALFORMED,
             "policy: column 1: unknown role '' in principal 'Org1MSP.'; "
             "expected peer, admin, member, client or orderer");
  expect_err("''", FL_EMALFORMED,
             "policy: column 1: empty principal; expected 'MSPID.role'");
  expect_err("'A.peer' 'B.peer'", FL_EMALFORMED,
             "policy: column 10: unexpected \"'\" after the end of the policy");
  expect_err("MAJORITY ANY", FL_EMALFORMED,
             "policy: column 10: unexpected 'ANY' after the end of the policy");
  expect_err("", FL_EMALFORMED, "policy: empty policy");
  expect_err(" \t\r\n ", FL_EMALFORMED, "policy: empty policy");
  expect_err_n("AND(\0'A.peer')", 13, NULL, 0, FL_EMALFORMED,
               "policy: column 5: expected a policy (AND, OR, OutOf, "
               "MAJORITY, ANY or a quoted principal), got byte 0x00");
  expect_err("OR('A.peer', \x01)", FL_EMALFORMED,
             "policy: column 14: expected a policy (AND, OR, OutOf, MAJORITY, "
             "ANY or a quoted principal), got byte 0x01");
  expect_err("OR('A.peer') ThisIsAVeryLongIdentifierIndeed", FL_EMALFORMED,
             "policy: column 14: unexpected 'ThisIsAVeryLongIdentifie...' "
             "after the end of the policy");

  /* Arguments. */
  fl_policy_t *p = NULL;
  char *err = NULL;
  assert_int_equal(fl_policy_parse(NULL, 3, &p, &err), FL_EINVAL);
  assert_null(p);
  assert_string_equal(err, "policy: no text");
  fl_free(err);
  assert_int_equal(fl_policy_parse("'A.peer'", 8, NULL, NULL), FL_EINVAL);
  /* err is optional. */
  assert_int_equal(fl_policy_parse("AND(", 4, &p, NULL), FL_EMALFORMED);
  assert_null(p);
}

static void test_compile(void **state) {
  (void)state;
  const char *two[] = {"Org1MSP", "Org2MSP"};
  const char *four[] = {"Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP"};
  fl_policy_t *p = must_new("MAJORITY", two, 2);
  char *s = fl_policy_to_string(p);
  assert_string_equal(s, "OutOf(2, 'Org1MSP.peer', 'Org2MSP.peer')");
  assert_false(fl_policy_is_symbolic(p));
  fl_free(s);
  fl_policy_free(p);
  p = must_new("majority", four, 4);
  s = fl_policy_to_string(p);
  assert_string_equal(s, "OutOf(3, 'Org1MSP.peer', 'Org2MSP.peer', "
                         "'Org3MSP.peer', 'Org4MSP.peer')");
  fl_free(s);
  fl_policy_free(p);
  p = must_new("ANY", four, 1);
  s = fl_policy_to_string(p);
  assert_string_equal(s, "OR('Org1MSP.peer')");
  fl_free(s);
  fl_policy_free(p);

  /* Parse-only keeps MAJORITY symbolic; compile later. */
  fl_policy_t *sym = must_parse("OR(MAJORITY, 'Org2MSP.admin')");
  assert_true(fl_policy_is_symbolic(sym));
  bool ok = true;
  fl_policy_signer_t one = sg("Org1MSP", PEER, "p1");
  assert_int_equal(fl_policy_evaluate(sym, &one, 1, &ok), FL_ESTATE);
  assert_false(ok);
  fl_policy_need_t *needs = NULL;
  size_t nneeds = 9;
  fl_policy_org_t po = {.mspid = "Org1MSP", .peers = 1};
  assert_int_equal(fl_policy_plan(sym, &po, 1, &needs, &nneeds), FL_ESTATE);
  assert_null(needs);
  assert_int_equal(nneeds, 0);
  fl_policy_t *c = NULL;
  char *err = NULL;
  assert_int_equal(fl_policy_compile(sym, two, 2, &c, &err), FL_OK);
  assert_null(err);
  s = fl_policy_to_string(c);
  assert_string_equal(s, "OR(OutOf(2, 'Org1MSP.peer', 'Org2MSP.peer'), "
                         "'Org2MSP.admin')");
  fl_free(s);
  fl_policy_free(c);

  /* Compile errors. */
  assert_int_equal(fl_policy_compile(sym, NULL, 0, &c, &err), FL_ECONFIG);
  assert_null(c);
  assert_string_equal(err,
                      "policy: column 4: MAJORITY needs the list of organisations");
  fl_free(err);
  fl_policy_free(sym);
  expect_err_n("AND('Org1MSP.peer', 'Org9MSP.peer')", 35, two, 2, FL_ECONFIG,
               "policy: column 21: unknown organisation 'Org9MSP'");
  const char *dup[] = {"Org1MSP", "Org2MSP", "Org1MSP"};
  expect_err_n("MAJORITY", 8, dup, 3, FL_EINVAL,
               "policy: organisation 'Org1MSP' is listed twice");
  const char *bad[] = {"Org1MSP", "Org 2"};
  expect_err_n("MAJORITY", 8, bad, 2, FL_EINVAL,
               "policy: organisation 1 has an invalid MSP id");
  const char *empty[] = {""};
  expect_err_n("ANY", 3, empty, 1, FL_EINVAL,
               "policy: organisation 0 has an invalid MSP id");
  /* Without a list, principals are not checked and no MAJORITY is fine. */
  p = must_new("AND('Org9MSP.peer')", NULL, 0);
  assert_int_equal(fl_policy_compile(NULL, two, 2, &c, NULL), FL_EINVAL);
  assert_null(c);
  assert_int_equal(fl_policy_compile(p, two, 2, NULL, NULL), FL_EINVAL);
  assert_int_equal(fl_policy_compile(p, NULL, 2, &c, NULL), FL_EINVAL);
  fl_policy_free(p);

  /* Expansion that would exceed the element limit. */
  static char names[FL_POLICY_MAX_ORGS][16];
  const char *many[FL_POLICY_MAX_ORGS];
  for (int i = 0; i < FL_POLICY_MAX_ORGS; i++) {
    snprintf(names[i], sizeof(names[i]), "Org%dMSP", i);
    many[i] = names[i];
  }
  expect_err_n("AND(MAJORITY, MAJORITY, MAJORITY, MAJORITY)", 43, many,
               FL_POLICY_MAX_ORGS, FL_ETOOBIG,
               "policy: column 35: more than 1024 elements after expanding "
               "MAJORITY/ANY");
  expect_err_n("ANY", 3, many, FL_POLICY_MAX_ORGS + 1, FL_EINVAL,
               "policy: 257 organisations, limit is 256");
}

static void test_hostile(void **state) {
  (void)state;
  /* Length limit. */
  size_t big = FL_POLICY_MAX_TEXT + 1;
  char *t = fl_malloc(big);
  memset(t, ' ', big);
  expect_err_n(t, big, NULL, 0, FL_ETOOBIG,
               "policy: policy is 16385 bytes, limit is 16384");
  fl_free(t);

  /* Depth: 31 ANDs around a leaf is 32 levels (ok), 32 ANDs is too deep. */
  fl_sbuf_t b = {0};
  for (int i = 0; i < 31; i++) fl_sbuf_append_str(&b, "AND(");
  fl_sbuf_append_str(&b, "'A.peer'");
  for (int i = 0; i < 31; i++) fl_sbuf_append_str(&b, ")");
  fl_policy_t *p = must_parse(fl_sbuf_cstr(&b));
  fl_policy_signer_t a = sg("A", PEER, "a");
  assert_true(eval(p, &a, 1));
  fl_policy_free(p);
  fl_sbuf_free(&b);
  for (int i = 0; i < 32; i++) fl_sbuf_append_str(&b, "AND(");
  fl_sbuf_append_str(&b, "'A.peer'");
  for (int i = 0; i < 32; i++) fl_sbuf_append_str(&b, ")");
  expect_err(fl_sbuf_cstr(&b), FL_ETOOBIG,
             "policy: column 129: nesting deeper than 32 levels");
  fl_sbuf_free(&b);
  /* Very deep, unbalanced: stops at the limit, never recurses further. */
  for (int i = 0; i < 5000; i++) fl_sbuf_append_str(&b, "OR(");
  expect_err(fl_sbuf_cstr(&b), FL_ETOOBIG,
             "policy: column 97: nesting deeper than 32 levels");
  fl_sbuf_free(&b);

  /* Element limit. */
  fl_sbuf_append_str(&b, "OR(");
  for (int i = 0; i < 1100; i++)
    fl_sbuf_printf(&b, "%s'A.peer'", i ? "," : "");
  fl_sbuf_append_str(&b, ")");
  fl_policy_t *q = NULL;
  char *err = NULL;
  assert_int_equal(fl_policy_parse((const char *)b.data, b.len, &q, &err),
                   FL_ETOOBIG);
  assert_null(q);
  assert_string_equal(err, "policy: column 9211: more than 1024 elements");
  fl_free(err);
  fl_sbuf_free(&b);

  /* Principal length limit. */
  fl_sbuf_append_str(&b, "'");
  for (int i = 0; i < 300; i++) fl_sbuf_append_str(&b, "x");
  fl_sbuf_append_str(&b, ".peer'");
  expect_err(fl_sbuf_cstr(&b), FL_ETOOBIG,
             "policy: column 1: principal is 305 bytes, limit is 255");
  fl_sbuf_free(&b);

  /* Huge n, and n as large as uint32 wraps. */
  expect_err("OutOf(4294967297, 'A.peer')", FL_EMALFORMED,
             "policy: column 1: OutOf: n=4294967297 but only 1 sub-policy");

  /* Every prefix of a valid policy fails cleanly (never crashes). */
  const char *full = "OR(OutOf(2, 'A.peer', \"B.admin\"), AND(MAJORITY, ANY))";
  for (size_t n = 0; n < strlen(full); n++) {
    fl_policy_t *r = NULL;
    char *e = NULL;
    assert_int_not_equal(fl_policy_parse(full, n, &r, &e), FL_OK);
    assert_null(r);
    assert_non_null(e);
    assert_memory_equal(e, "policy: ", 8);
    fl_free(e);
  }
  /* Random bytes never crash and never leak. */
  uint32_t seed = 12345;
  for (int it = 0; it < 20000; it++) {
    char buf[40];
    size_t n = 1 + (size_t)(it % 39);
    const char alphabet[] = "ANDORoutfMAJIYy(),'\". 0123.peerXx";
    for (size_t i = 0; i < n; i++) {
      seed = seed * 1103515245u + 12345u;
      buf[i] = (it & 1) ? (char)(seed >> 16)
                        : alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
    }
    fl_policy_t *r = NULL;
    char *e = NULL;
    fl_status_t rc = fl_policy_parse(buf, n, &r, &e);
    if (rc == FL_OK) {
      assert_null(e);
      char *s = fl_policy_to_string(r);
      fl_policy_t *r2 = must_parse(s);
      char *s2 = fl_policy_to_string(r2);
      assert_string_equal(s, s2);
      fl_free(s);
      fl_free(s2);
      fl_policy_free(r2);
    } else {
      assert_null(r);
      assert_non_null(e);
    }
    fl_policy_free(r);
    fl_free(e);
  }
}

/* ---- evaluation ------------------------------------------------------- */

static void test_eval_principals(void **state) {
  (void)state;
  fl_policy_signer_t peer = sg("Org1MSP", PEER, "p1");
  fl_policy_signer_t admin = sg("Org1MSP", ADMIN, "a1");
  fl_policy_signer_t client = sg("Org1MSP", CLIENT, "c1");
  fl_policy_signer_t ord = sg("Org1MSP", ORDERER, "o1");
  fl_policy_signer_t plain = sg("Org1MSP", MEMBER, "m1");
  fl_policy_signer_t other = sg("Org2MSP", PEER, "q1");
  assert_true(eval_text("'Org1MSP.peer'", &peer, 1));
  assert_false(eval_text("'Org1MSP.peer'", &admin, 1));
  assert_false(eval_text("'Org1MSP.peer'", &other, 1));
  assert_false(eval_text("'Org1MSP.peer'", &plain, 1));
  assert_true(eval_text("'Org1MSP.admin'", &admin, 1));
  assert_true(eval_text("'Org1MSP.client'", &client, 1));
  assert_false(eval_text("'Org1MSP.client'", &peer, 1));
  assert_true(eval_text("'Org1MSP.orderer'", &ord, 1));
  /* member = any role of that organisation */
  assert_true(eval_text("'Org1MSP.member'", &peer, 1));
  assert_true(eval_text("'Org1MSP.member'", &admin, 1));
  assert_true(eval_text("'Org1MSP.member'", &client, 1));
  assert_true(eval_text("'Org1MSP.member'", &ord, 1));
  assert_true(eval_text("'Org1MSP.member'", &plain, 1));
  assert_false(eval_text("'Org1MSP.member'", &other, 1));
  assert_false(eval_text("'Org1MSP.member'", NULL, 0));
  /* MSP ids are case-sensitive. */
  fl_policy_signer_t lower = sg("org1msp", PEER, "l1");
  assert_false(eval_text("'Org1MSP.peer'", &lower, 1));
}

static void test_eval_nesting(void **state) {
  (void)state;
  fl_policy_signer_t a = sg("A", PEER, "a"), b = sg("B", PEER, "b"),
                     c = sg("C", PEER, "c"), ca = sg("C", ADMIN, "ca"),
                     d = sg("D", PEER, "d");
  const char *and2 = "AND('A.peer', 'B.peer')";
  assert_true(eval_text(and2, (fl_policy_signer_t[]){a, b}, 2));
  assert_false(eval_text(and2, (fl_policy_signer_t[]){a, c}, 2));
  assert_false(eval_text(and2, (fl_policy_signer_t[]){a}, 1));
  const char *or2 = "OR('A.peer', 'B.peer')";
  assert_true(eval_text(or2, (fl_policy_signer_t[]){b}, 1));
  assert_false(eval_text(or2, (fl_policy_signer_t[]){c, d}, 2));
  const char *oo = "OutOf(2, 'A.peer', 'B.peer', 'C.admin')";
  assert_true(eval_text(oo, (fl_policy_signer_t[]){a, ca}, 2));
  assert_true(eval_text(oo, (fl_policy_signer_t[]){b, ca, d}, 3));
  assert_false(eval_text(oo, (fl_policy_signer_t[]){a, c}, 2));
  const char *nest =
      "OR(AND('A.peer', OutOf(2, 'B.peer', 'C.peer', 'D.peer')), "
      "AND('C.admin', 'D.peer'))";
  assert_true(eval_text(nest, (fl_policy_signer_t[]){a, b, d}, 3));
  assert_true(eval_text(nest, (fl_policy_signer_t[]){ca, d}, 2));
  assert_false(eval_text(nest, (fl_policy_signer_t[]){a, b, ca}, 3));
  assert_false(eval_text(nest, (fl_policy_signer_t[]){b, c, d}, 3));
  assert_true(eval_text(nest, (fl_policy_signer_t[]){a, c, d}, 3));
  /* AND of ORs sharing an organisation. */
  const char *share = "AND(OR('A.peer', 'B.peer'), OR('A.peer', 'C.peer'))";
  assert_false(eval_text(share, (fl_policy_signer_t[]){a}, 1));
  assert_true(eval_text(share, (fl_policy_signer_t[]){a, c}, 2));
  assert_true(eval_text(share, (fl_policy_signer_t[]){b, a}, 2));
  fl_policy_signer_t a2 = sg("A", PEER, "a2");
  assert_true(eval_text(share, (fl_policy_signer_t[]){a, a2}, 2));
  /* Signers of organisations the policy does not name are ignored. */
  fl_policy_signer_t z = sg("Zed", PEER, "z");
  assert_true(eval_text(and2, (fl_policy_signer_t[]){z, a, z, b}, 4));
}

static void test_eval_majority_any(void **state) {
  (void)state;
  const char *orgs[] = {"Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP"};
  fl_policy_signer_t s[4] = {
      sg("Org1MSP", PEER, "p1"), sg("Org2MSP", PEER, "p2"),
      sg("Org3MSP", PEER, "p3"), sg("Org4MSP", PEER, "p4")};
  /* need[k] = signers needed for MAJORITY with k orgs */
  const size_t need[5] = {0, 1, 2, 2, 3};
  for (size_t k = 1; k <= 4; k++) {
    fl_policy_t *p = must_new("MAJORITY", orgs, k);
    for (size_t n = 0; n <= k; n++)
      assert_int_equal(eval(p, s, n), n >= need[k]);
    /* The same organisation twice is not a majority. */
    if (k >= 3) {
      fl_policy_signer_t twice[] = {s[0], sg("Org1MSP", PEER, "p1b")};
      assert_false(eval(p, twice, 2));
    }
    /* Admins are not peers. */
    fl_policy_signer_t adm[] = {sg("Org1MSP", ADMIN, "x"),
                                sg("Org2MSP", ADMIN, "y"),
                                sg("Org3MSP", ADMIN, "z")};
    assert_false(eval(p, adm, 3));
    fl_policy_free(p);
    p = must_new("ANY", orgs, k);
    assert_false(eval(p, NULL, 0));
    assert_true(eval(p, &s[k - 1], 1));
    assert_false(eval(p, adm, 3));
    fl_policy_free(p);
  }
  /* Large network: 50 organisations, MAJORITY = 26, quickly. */
  static char names[50][16];
  const char *many[50];
  fl_policy_signer_t ss[50];
  for (int i = 0; i < 50; i++) {
    snprintf(names[i], sizeof(names[i]), "Org%dMSP", i);
    many[i] = names[i];
    ss[i] = sg(names[i], PEER, names[i]);
  }
  fl_policy_t *p = must_new("AND(MAJORITY, 'Org7MSP.member')", many, 50);
  clock_t t0 = clock();
  assert_false(eval(p, ss + 8, 26)); /* a majority, but Org7 missing */
  /* Org7's single peer cannot stand for both its MAJORITY vote and the
   * member principal: 26 organisations including Org7 are not enough. */
  assert_false(eval(p, ss, 26));
  assert_true(eval(p, ss, 27));
  fl_policy_signer_t more[28];
  memcpy(more, ss + 8, 26 * sizeof(*more));
  more[26] = sg("Org7MSP", ADMIN, "org7-admin");
  assert_true(eval(p, more, 27));
  assert_false(eval(p, more + 1, 26));
  assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
  fl_policy_free(p);
}

static void test_eval_identity_once(void **state) {
  (void)state;
  fl_policy_signer_t a = sg("A", PEER, "a");
  fl_policy_signer_t a_again = sg("A", PEER, "a");
  fl_policy_signer_t a2 = sg("A", PEER, "a2");
  fl_policy_signer_t aadm = sg("A", ADMIN, "aadm");
  /* Duplicated signers are not double-counted. */
  const char *two = "AND('A.peer', 'A.peer')";
  assert_false(eval_text(two, (fl_policy_signer_t[]){a, a_again}, 2));
  assert_false(eval_text(two, (fl_policy_signer_t[]){a, a, a, a}, 4));
  assert_true(eval_text(two, (fl_policy_signer_t[]){a, a2}, 2));
  assert_true(eval_text(two, (fl_policy_signer_t[]){a, a, a2}, 3));
  assert_false(eval_text("OutOf(2, 'A.peer', 'B.peer', 'A.member')",
                         (fl_policy_signer_t[]){a, a}, 2));
  /* One identity cannot satisfy two principals of one OutOf. */
  const char *pm = "OutOf(2, 'A.peer', 'A.member')";
  assert_false(eval_text(pm, (fl_policy_signer_t[]){a}, 1));
  assert_true(eval_text(pm, (fl_policy_signer_t[]){a, a2}, 2));
  /* Fabric's greedy order would give the peer to 'A.member' first and then
   * fail 'A.peer'; the correct matching gives the admin to 'A.member'. */
  const char *mp = "OutOf(2, 'A.member', 'A.peer')";
  assert_true(eval_text(mp, (fl_policy_signer_t[]){a, aadm}, 2));
  assert_true(eval_text(mp, (fl_policy_signer_t[]){aadm, a}, 2));
  assert_false(eval_text(mp, (fl_policy_signer_t[]){aadm, sg("A", ADMIN, "x")},
                         2));
  /* ... also across nested branches. */
  const char *nest = "AND('A.member', OR('A.peer', 'B.peer'))";
  assert_false(eval_text(nest, (fl_policy_signer_t[]){a}, 1));
  assert_true(eval_text(nest, (fl_policy_signer_t[]){a, aadm}, 2));
  assert_true(eval_text(nest, (fl_policy_signer_t[]){aadm, a}, 2));
  assert_true(eval_text(nest, (fl_policy_signer_t[]){a, sg("B", PEER, "b")},
                        2));
  const char *three = "AND('A.member', 'A.member', 'A.admin')";
  assert_false(eval_text(three, (fl_policy_signer_t[]){a, a2, a}, 3));
  assert_true(eval_text(three, (fl_policy_signer_t[]){a, aadm, a2}, 3));
}

static void test_eval_errors(void **state) {
  (void)state;
  fl_policy_t *p = must_parse("'A.peer'");
  bool ok = true;
  fl_policy_signer_t good = sg("A", PEER, "a");
  assert_int_equal(fl_policy_evaluate(p, &good, 1, NULL), FL_EINVAL);
  assert_int_equal(fl_policy_evaluate(NULL, &good, 1, &ok), FL_EINVAL);
  assert_false(ok);
  ok = true;
  assert_int_equal(fl_policy_evaluate(p, NULL, 1, &ok), FL_EINVAL);
  assert_false(ok);
  fl_policy_signer_t nomsp = {.mspid = NULL, .role = PEER, .id = FL_BUF("x", 1)};
  assert_int_equal(fl_policy_evaluate(p, &nomsp, 1, &ok), FL_EINVAL);
  fl_policy_signer_t noid = {.mspid = "A", .role = PEER, .id = FL_BUF("", 0)};
  assert_int_equal(fl_policy_evaluate(p, &noid, 1, &ok), FL_EINVAL);
  fl_policy_signer_t badrole = sg("A", (fl_policy_role_t)7, "r");
  assert_int_equal(fl_policy_evaluate(p, &badrole, 1, &ok), FL_EINVAL);
  /* One identity described two ways is a caller bug, not a signer. */
  fl_policy_signer_t incons[] = {sg("A", PEER, "same"), sg("B", PEER, "same")};
  assert_int_equal(fl_policy_evaluate(p, incons, 2, &ok), FL_EINVAL);
  fl_policy_signer_t incons2[] = {sg("A", PEER, "same"), sg("A", ADMIN, "same")};
  assert_int_equal(fl_policy_evaluate(p, incons2, 2, &ok), FL_EINVAL);
  assert_false(ok);
  static fl_policy_signer_t lots[FL_POLICY_MAX_SIGNERS + 1];
  for (size_t i = 0; i < FL_POLICY_MAX_SIGNERS + 1; i++) lots[i] = good;
  assert_int_equal(fl_policy_evaluate(p, lots, FL_POLICY_MAX_SIGNERS + 1, &ok),
                   FL_ETOOBIG);
  assert_int_equal(fl_policy_evaluate(p, lots, FL_POLICY_MAX_SIGNERS, &ok),
                   FL_OK);
  assert_true(ok);
  fl_policy_free(p);
}

/* A ring of 40 organisations, OutOf(20) of AND over neighbours: choosing
 * pairs is a matching problem whose partial answers do not collapse; the
 * work budget must stop it cleanly and quickly. */
static void test_eval_budget(void **state) {
  (void)state;
  enum { N = 40 };
  fl_sbuf_t b = {0};
  fl_sbuf_printf(&b, "OutOf(%d", N / 2);
  for (int i = 0; i < N; i++)
    fl_sbuf_printf(&b, ", AND('O%d.peer', 'O%d.peer')", i, (i + 1) % N);
  fl_sbuf_append_str(&b, ")");
  fl_policy_t *p = must_parse(fl_sbuf_cstr(&b));
  fl_sbuf_free(&b);
  static char names[N][8];
  fl_policy_signer_t s[N];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof(names[i]), "O%d", i);
    s[i] = sg(names[i], PEER, names[i]);
  }
  bool ok = true;
  clock_t t0 = clock();
  assert_int_equal(fl_policy_evaluate(p, s, N, &ok), FL_ETOOBIG);
  assert_false(ok);
  assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 10.0);
  fl_policy_free(p);
  /* A smaller ring is solved exactly: 8 organisations, 4 disjoint pairs. */
  fl_sbuf_printf(&b, "OutOf(4");
  for (int i = 0; i < 8; i++)
    fl_sbuf_printf(&b, ", AND('O%d.peer', 'O%d.peer')", i, (i + 1) % 8);
  fl_sbuf_append_str(&b, ")");
  p = must_parse(fl_sbuf_cstr(&b));
  fl_sbuf_free(&b);
  assert_true(eval(p, s, 8));
  assert_false(eval(p, s, 7));
  fl_policy_signer_t gap[] = {s[0], s[1], s[2], s[3], s[5], s[6], s[7]};
  assert_false(eval(p, gap, 7));
  fl_policy_free(p);
}

/* ---- brute-force cross-check ------------------------------------------ */

/* A test-side tree, generated together with its text. */
typedef struct tnode {
  int kind;  /* 0 leaf, 1 threshold */
  int org, role;
  int n, nchild;
  struct tnode *child[4];
} tnode;

static uint32_t rng = 2463534242u;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng % n;
}

static const char *const org_names[] = {"A", "B", "C"};
static const fl_policy_role_t prin_roles[] = {PEER, ADMIN, MEMBER};

static tnode *gen(int depth, fl_sbuf_t *b) {
  tnode *t = fl_calloc(1, sizeof(*t));
  if (depth >= 3 || rnd(3) == 0) {
    t->org = (int)rnd(3);
    t->role = (int)prin_roles[rnd(3)];
    fl_sbuf_printf(b, "'%s.%s'", org_names[t->org],
                   fl_policy_role_name((fl_policy_role_t)t->role));
    return t;
  }
  t->kind = 1;
  t->nchild = 1 + (int)rnd(4);
  int k = (int)rnd(3);
  if (k == 0) {
    t->n = t->nchild;
    fl_sbuf_append_str(b, "AND(");
  } else if (k == 1) {
    t->n = 1;
    fl_sbuf_append_str(b, "OR(");
  } else {
    t->n = 1 + (int)rnd((uint32_t)t->nchild);
    fl_sbuf_printf(b, "OutOf(%d, ", t->n);
  }
  for (int i = 0; i < t->nchild; i++) {
    if (i) fl_sbuf_append_str(b, ", ");
    t->child[i] = gen(depth + 1, b);
  }
  fl_sbuf_append_str(b, ")");
  return t;
}

static void tfree(tnode *t) {
  if (t == NULL) return;
  for (int i = 0; i < t->nchild; i++) tfree(t->child[i]);
  fl_free(t);
}

typedef struct bsigner {
  int org, role;
} bsigner;

/* Returns the set (bit m of the result) of used-signer masks reachable after
 * satisfying t starting from mask `in`; up to 6 distinct signers. */
static uint64_t bf(const tnode *t, uint32_t in, const bsigner *s, int ns) {
  uint64_t out = 0;
  if (t->kind == 0) {
    for (int i = 0; i < ns; i++) {
      if (in & (1u << i)) continue;
      if (s[i].org != t->org) continue;
      if (t->role != MEMBER && s[i].role != t->role) continue;
      out |= 1ull << (in | (1u << i));
    }
    return out;
  }
  /* states[c] = masks after satisfying c of the children seen so far */
  uint64_t states[5] = {1ull << in, 0, 0, 0, 0};
  for (int i = 0; i < t->nchild; i++) {
    for (int c = t->n; c >= 1; c--) {
      for (uint32_t m = 0; m < 64; m++) {
        if (!(states[c - 1] >> m & 1)) continue;
        states[c] |= bf(t->child[i], m, s, ns);
      }
    }
  }
  return states[t->n];
}

static void test_eval_bruteforce(void **state) {
  (void)state;
  static const char *ids[] = {"s0", "s1", "s2", "s3", "s4", "s5"};
  const fl_policy_role_t sroles[] = {PEER, ADMIN, CLIENT};
  int sat = 0, unsat = 0;
  for (int it = 0; it < 3000; it++) {
    fl_sbuf_t b = {0};
    tnode *t = gen(0, &b);
    fl_policy_t *p = must_parse(fl_sbuf_cstr(&b));
    int ns = (int)rnd(7);
    bsigner bs[6];
    fl_policy_signer_t fs[12];
    size_t nf = 0;
    for (int i = 0; i < ns; i++) {
      bs[i].org = (int)rnd(3);
      bs[i].role = (int)sroles[rnd(3)];
      fs[nf++] = sg(org_names[bs[i].org], (fl_policy_role_t)bs[i].role, ids[i]);
      if (rnd(3) == 0) { /* duplicate */
        fs[nf] = fs[nf - 1];
        nf++;
      }
    }
    bool want = bf(t, 0, bs, ns) != 0;
    bool got = eval(p, fs, nf);
    if (want != got)
      fail_msg("policy %s with %d signers: want %d got %d",
               fl_sbuf_cstr(&b), ns, want, got);
    /* Order independence: reverse the signers. */
    for (size_t i = 0; i < nf / 2; i++) {
      fl_policy_signer_t x = fs[i];
      fs[i] = fs[nf - 1 - i];
      fs[nf - 1 - i] = x;
    }
    assert_int_equal(eval(p, fs, nf), want);
    want ? sat++ : unsat++;
    fl_policy_free(p);
    tfree(t);
    fl_sbuf_free(&b);
  }
  /* Both outcomes were exercised a fair amount. */
  assert_true(sat > 300);
  assert_true(unsat > 300);
}

/* ---- planning --------------------------------------------------------- */

static void expect_plan(const char *text, const fl_policy_org_t *orgs,
                        size_t norgs, const char *want) {
  fl_policy_t *p = must_parse(text);
  fl_policy_need_t *needs = NULL;
  size_t n = 0;
  fl_status_t rc = fl_policy_plan(p, orgs, norgs, &needs, &n);
  fl_sbuf_t b = {0};
  if (rc != FL_OK) {
    fl_sbuf_append_str(&b, fl_status_name(rc));
    assert_null(needs);
    assert_int_equal(n, 0);
  }
  for (size_t i = 0; i < n; i++)
    fl_sbuf_printf(&b, "%s%s:%u", i ? " " : "", orgs[needs[i].org].mspid,
                   needs[i].peers);
  if (strcmp(fl_sbuf_cstr(&b), want) != 0)
    fail_msg("plan %s: got '%s' want '%s'", text, fl_sbuf_cstr(&b), want);
  /* A plan, turned into that many peers per organisation, satisfies p. */
  if (rc == FL_OK) {
    fl_policy_signer_t s[64];
    static char idbuf[64][32];
    size_t ns = 0;
    for (size_t i = 0; i < n; i++)
      for (uint32_t k = 0; k < needs[i].peers; k++) {
        snprintf(idbuf[ns], sizeof(idbuf[ns]), "%s#%u",
                 orgs[needs[i].org].mspid, k);
        s[ns] = sg(orgs[needs[i].org].mspid, PEER, idbuf[ns]);
        ns++;
      }
    assert_true(eval(p, s, ns));
  }
  fl_free(needs);
  fl_sbuf_free(&b);
  fl_policy_free(p);
}

static void test_plan(void **state) {
  (void)state;
  const fl_policy_org_t abc[] = {{"A", 2}, {"B", 2}, {"C", 2}};
  const fl_policy_org_t cba[] = {{"C", 2}, {"B", 2}, {"A", 2}};
  const fl_policy_org_t bac[] = {{"B", 1}, {"A", 1}, {"C", 1}};
  expect_plan("AND('A.peer', 'B.peer')", abc, 3, "A:1 B:1");
  expect_plan("AND('A.peer', 'B.peer')", cba, 3, "B:1 A:1");
  expect_plan("OutOf(2, 'A.peer', 'B.peer', 'C.peer')", abc, 3, "A:1 B:1");
  expect_plan("OutOf(2, 'A.peer', 'B.peer', 'C.peer')", bac, 3, "B:1 A:1");
  expect_plan("OutOf(2, 'A.peer', 'B.peer', 'C.peer')", cba, 3, "C:1 B:1");
  /* Fewest peers beats fewest organisations. */
  expect_plan("OR(AND('A.peer', 'A.peer', 'A.peer'), AND('B.peer', 'C.peer'))",
              (fl_policy_org_t[]){{"A", 5}, {"B", 1}, {"C", 1}}, 3, "B:1 C:1");
  /* ...and with equal counts the preferred organisation is leaned on. */
  expect_plan("OR(AND('A.peer', 'A.peer'), AND('B.peer', 'C.peer'))",
              (fl_policy_org_t[]){{"A", 5}, {"B", 1}, {"C", 1}}, 3, "A:2");
  expect_plan("OR(AND('A.peer', 'A.peer'), AND('B.peer', 'C.peer'))",
              (fl_policy_org_t[]){{"B", 1}, {"A", 5}, {"C", 1}}, 3, "B:1 C:1");
  /* Supply matters. */
  expect_plan("AND('A.peer', 'A.peer')", (fl_policy_org_t[]){{"A", 1}}, 1,
              "NOTFOUND");
  expect_plan("AND('A.peer', 'A.member')", (fl_policy_org_t[]){{"A", 2}}, 1,
              "A:2");
  expect_plan("OR(AND('A.peer', 'A.peer'), 'B.peer')",
              (fl_policy_org_t[]){{"A", 1}, {"B", 1}}, 2, "B:1");
  expect_plan("'A.peer'", (fl_policy_org_t[]){{"A", 0}, {"B", 3}}, 2,
              "NOTFOUND");
  /* Peers cannot stand for admins, clients or orderers. */
  expect_plan("OR('A.admin', 'B.peer')", abc, 3, "B:1");
  expect_plan("AND('A.admin', 'B.peer')", abc, 3, "NOTFOUND");
  expect_plan("OR('A.client', 'B.orderer', 'C.member')", abc, 3, "C:1");
  /* Organisations missing from the list are not used. */
  expect_plan("OR('D.peer', 'C.peer')", abc, 3, "C:1");
  expect_plan("'D.peer'", abc, 3, "NOTFOUND");
  /* MAJORITY of four. */
  const char *orgs4[] = {"O1", "O2", "O3", "O4"};
  fl_policy_t *p = must_new("MAJORITY", orgs4, 4);
  fl_policy_org_t avail[] = {{"O3", 1}, {"O1", 1}, {"O4", 0}, {"O2", 1}};
  fl_policy_need_t *needs = NULL;
  size_t n = 0;
  assert_int_equal(fl_policy_plan(p, avail, 4, &needs, &n), FL_OK);
  assert_int_equal(n, 3);
  assert_int_equal(needs[0].org, 0);
  assert_int_equal(needs[1].org, 1);
  assert_int_equal(needs[2].org, 3);
  fl_free(needs);
  avail[3].peers = 0;
  assert_int_equal(fl_policy_plan(p, avail, 4, &needs, &n), FL_NOTFOUND);
  assert_null(needs);
  /* Argument errors. */
  fl_policy_org_t dup[] = {{"O1", 1}, {"O1", 1}};
  assert_int_equal(fl_policy_plan(p, dup, 2, &needs, &n), FL_EINVAL);
  fl_policy_org_t nul[] = {{NULL, 1}};
  assert_int_equal(fl_policy_plan(p, nul, 1, &needs, &n), FL_EINVAL);
  assert_int_equal(fl_policy_plan(p, NULL, 1, &needs, &n), FL_EINVAL);
  assert_int_equal(fl_policy_plan(NULL, avail, 1, &needs, &n), FL_EINVAL);
  assert_int_equal(fl_policy_plan(p, avail, 1, NULL, &n), FL_EINVAL);
  assert_int_equal(fl_policy_plan(p, NULL, 0, &needs, &n), FL_NOTFOUND);
  fl_policy_free(p);
}

/* The plan is optimal: no vector of per-organisation peer counts with a
 * smaller total satisfies the policy (exhaustive over 0..2 per org). */
static void test_plan_optimal(void **state) {
  (void)state;
  const fl_policy_org_t orgs[] = {{"A", 2}, {"B", 2}, {"C", 2}};
  static char ids[3][2][8];
  for (int o = 0; o < 3; o++)
    for (int k = 0; k < 2; k++)
      snprintf(ids[o][k], sizeof(ids[o][k]), "%s%d", org_names[o], k);
  for (int it = 0; it < 1500; it++) {
    fl_sbuf_t b = {0};
    tnode *t = gen(0, &b);
    fl_policy_t *p = must_parse(fl_sbuf_cstr(&b));
    int best = 99;
    for (int v = 0; v < 27; v++) {
      int cnt[3] = {v % 3, v / 3 % 3, v / 9};
      fl_policy_signer_t s[6];
      size_t ns = 0;
      for (int o = 0; o < 3; o++)
        for (int k = 0; k < cnt[o]; k++) s[ns++] = sg(org_names[o], PEER, ids[o][k]);
      if (eval(p, s, ns) && (int)ns < best) best = (int)ns;
    }
    fl_policy_need_t *needs = NULL;
    size_t n = 0;
    fl_status_t rc = fl_policy_plan(p, orgs, 3, &needs, &n);
    if (best == 99) {
      assert_int_equal(rc, FL_NOTFOUND);
    } else {
      assert_int_equal(rc, FL_OK);
      int total = 0;
      for (size_t i = 0; i < n; i++) total += (int)needs[i].peers;
      if (total != best)
        fail_msg("plan %s: %d peers, optimum %d", fl_sbuf_cstr(&b), total, best);
    }
    fl_free(needs);
    fl_policy_free(p);
    tfree(t);
    fl_sbuf_free(&b);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_canonical),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_compile),
      cmocka_unit_test(test_hostile),
      cmocka_unit_test(test_eval_principals),
      cmocka_unit_test(test_eval_nesting),
      cmocka_unit_test(test_eval_majority_any),
      cmocka_unit_test(test_eval_identity_once),
      cmocka_unit_test(test_eval_errors),
      cmocka_unit_test(test_eval_budget),
      cmocka_unit_test(test_eval_bruteforce),
      cmocka_unit_test(test_plan),
      cmocka_unit_test(test_plan_optimal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
