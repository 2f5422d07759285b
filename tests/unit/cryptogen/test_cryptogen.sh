#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# test_cryptogen.sh FEDLEDGER CRYPTO_CONFIG_YAML [OPENSSL]
#
# Runs `fedledger cryptogen generate` on the sample configuration and checks
# the result with the openssl CLI: every signing certificate verifies against
# its own organisation's CA and is rejected by another organisation's CA (and
# by its own TLS CA), the same for TLS certificates against TLS CAs; keys are
# mode 0600 and match their certificates; roles (OU) and names (CN, SAN) are
# right; the identity counts match the sample; a second run without --force
# fails with a clear error, with --force it replaces the material. Also the
# CLI's usage behaviour (help, unknown command, missing flag).
set -u
FEDLEDGER=$1
CONFIG=$2
OPENSSL=${3:-openssl}

TMP=$(mktemp -d /tmp/fl-test-cryptogen-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/organizations
failures=0
checks=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
check() { # check DESCRIPTION CMD...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then ok; else fail "$what"; fi
}
check_not() {
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then fail "$what"; else ok; fi
}

# ---- generate ---------------------------------------------------------------
if ! "$FEDLEDGER" cryptogen generate --config "$CONFIG" --output "$OUT" >"$TMP/gen.out" 2>&1; then
  cat "$TMP/gen.out" >&2
  echo "FAIL: cryptogen generate failed" >&2
  exit 1
fi
grep -q "3 organisations, 21 identities" "$TMP/gen.out" || fail "summary line: $(cat "$TMP/gen.out")"
[ -z "$(ls -A "$OUT" | grep '^\.cryptogen')" ] || fail "temporary directory left behind"

ORD=$OUT/ordererOrganizations/example.com
ORG1=$OUT/peerOrganizations/org1.example.com
ORG2=$OUT/peerOrganizations/org2.example.com

# The organisation directory of an identity and another organisation to test
# rejection against.
org_of() { # path -> org dir
  case $1 in
    "$ORD"/*) echo "$ORD" ;;
    "$ORG1"/*) echo "$ORG1" ;;
    "$ORG2"/*) echo "$ORG2" ;;
  esac
}
other_of() {
  case $1 in
    "$ORD") echo "$ORG1" ;;
    "$ORG1") echo "$ORG2" ;;
    "$ORG2") echo "$ORG1" ;;
  esac
}
ca_of() { echo "$1/ca/ca.$(basename "$1")-cert.pem"; }
tlsca_of() { echo "$1/tlsca/tlsca.$(basename "$1")-cert.pem"; }

# ---- counts ---------------------------------------------------------------------
count() { find "$OUT" "$@" | wc -l; }
[ "$(count -path '*/orderers/*/msp/signcerts/*-cert.pem')" -eq 4 ] || fail "expected 4 orderers"
[ "$(count -path '*/peers/*/msp/signcerts/*-cert.pem')" -eq 4 ] || fail "expected 4 peers"
[ "$(count -path '*/users/Admin@*/msp/signcerts/*-cert.pem')" -eq 3 ] || fail "expected 3 admins (one per organisation)"
[ "$(count -path '*/users/client*@*/msp/signcerts/*-cert.pem')" -eq 10 ] || fail "expected 10 clients"
[ "$(count -path '*/msp/signcerts/*-cert.pem')" -eq 21 ] || fail "expected 21 signing certs"
[ "$(count -path '*/tls/server.crt')" -eq 8 ] || fail "expected 8 server TLS certs"
[ "$(count -path '*/tls/client.crt')" -eq 13 ] || fail "expected 13 client TLS certs"
[ "$(count -path '*/tls/ca.crt')" -eq 21 ] || fail "expected 21 tls/ca.crt"
[ "$(count -name priv_sk)" -eq 27 ] || fail "expected 27 priv_sk (21 identities + 6 CAs)"
for d in orderer0 orderer1 orderer2 orderer3; do
  [ -d "$ORD/orderers/$d.example.com" ] || fail "missing $d.example.com"
done
for o in 1 2; do
  for d in peers/peer0.org$o.example.com peers/peer1.org$o.example.com \
           users/Admin@org$o.example.com users/client1@org$o.example.com \
           users/client5@org$o.example.com; do
    [ -d "$OUT/peerOrganizations/org$o.example.com/$d" ] || fail "missing org$o $d"
  done
done
[ "$(count -type f)" -eq 165 ] || fail "expected 165 files, got $(count -type f)"
ok

# ---- CAs --------------------------------------------------------------------------
for org in "$ORD" "$ORG1" "$ORG2"; do
  for ca in "$(ca_of "$org")" "$(tlsca_of "$org")"; do
    txt=$("$OPENSSL" x509 -in "$ca" -noout -text)
    echo "$txt" | grep -A1 "Basic Constraints: critical" | grep -q "CA:TRUE" || fail "$ca: not CA:TRUE"
    echo "$txt" | grep -A1 "Key Usage: critical" | grep -q "Certificate Sign" || fail "$ca: no keyCertSign"
    echo "$txt" | grep -q "ASN1 OID: prime256v1" || fail "$ca: not P-256"
    check "$ca: self-signed" "$OPENSSL" verify -CAfile "$ca" "$ca"
  done
  cmp -s "$(ca_of "$org")" "$org/msp/cacerts/$(basename "$(ca_of "$org")")" || fail "$org: msp/cacerts differs"
  cmp -s "$(tlsca_of "$org")" "$org/msp/tlscacerts/$(basename "$(tlsca_of "$org")")" || fail "$org: msp/tlscacerts differs"
done

# ---- every identity -----------------------------------------------------------------
while IFS= read -r signcert; do
  idir=$(dirname "$(dirname "$(dirname "$signcert")")")
  name=$(basename "$idir")
  org=$(org_of "$idir")
  other=$(other_of "$org")
  kind=$(basename "$(dirname "$idir")")   # orderers / peers / users
  case $kind in
    orderers) role=orderer; tls=server ;;
    peers) role=peer; tls=server ;;
    users) case $name in Admin*) role=admin ;; *) role=client ;; esac; tls=client ;;
  esac
  tlscert=$idir/tls/$tls.crt
  tlskey=$idir/tls/$tls.key
  signkey=$idir/msp/keystore/priv_sk

  # chains: own CA yes; other org's CA no; own TLS CA no (distinct CAs)
  check "$name: sign cert vs own CA" "$OPENSSL" verify -CAfile "$(ca_of "$org")" "$signcert"
  check_not "$name: sign cert vs other org's CA" "$OPENSSL" verify -CAfile "$(ca_of "$other")" "$signcert"
  check_not "$name: sign cert vs own TLS CA" "$OPENSSL" verify -CAfile "$(tlsca_of "$org")" "$signcert"
  check "$name: TLS cert vs own TLS CA" "$OPENSSL" verify -CAfile "$(tlsca_of "$org")" "$tlscert"
  check_not "$name: TLS cert vs other org's TLS CA" "$OPENSSL" verify -CAfile "$(tlsca_of "$other")" "$tlscert"
  check_not "$name: TLS cert vs own signing CA" "$OPENSSL" verify -CAfile "$(ca_of "$org")" "$tlscert"
  check "$name: tls/ca.crt is the TLS CA" cmp -s "$idir/tls/ca.crt" "$(tlsca_of "$org")"
  check "$name: msp/cacerts" cmp -s "$idir/msp/cacerts/$(basename "$(ca_of "$org")")" "$(ca_of "$org")"

  # TLS usable both ways; host names and loopback IP verify for nodes
  check "$name: TLS serverAuth" "$OPENSSL" verify -purpose sslserver -CAfile "$(tlsca_of "$org")" "$tlscert"
  check "$name: TLS clientAuth" "$OPENSSL" verify -purpose sslclient -CAfile "$(tlsca_of "$org")" "$tlscert"
  check "$name: TLS 127.0.0.1" "$OPENSSL" verify -verify_ip 127.0.0.1 -CAfile "$(tlsca_of "$org")" "$tlscert"
  check "$name: TLS localhost" "$OPENSSL" verify -verify_hostname localhost -CAfile "$(tlsca_of "$org")" "$tlscert"
  if [ "$tls" = server ]; then
    check "$name: TLS host name" "$OPENSSL" verify -verify_hostname "$name" -CAfile "$(tlsca_of "$org")" "$tlscert"
    check_not "$name: TLS wrong host name" "$OPENSSL" verify -verify_hostname "evil.example.org" -CAfile "$(tlsca_of "$org")" "$tlscert"
  fi

  # subject: CN = name, OU = role, in both certificates
  for c in "$signcert" "$tlscert"; do
    subj=$("$OPENSSL" x509 -in "$c" -noout -subject -nameopt RFC2253)
    case $subj in *"CN=$name,OU=$role,"*) ok ;; *) fail "$c: subject '$subj' lacks CN=$name,OU=$role" ;; esac
    txt=$("$OPENSSL" x509 -in "$c" -noout -text)
    echo "$txt" | grep -A1 "Basic Constraints: critical" | grep -q "CA:FALSE" || fail "$c: not CA:FALSE"
    serial=$("$OPENSSL" x509 -in "$c" -noout -serial | cut -d= -f2)
    [ ${#serial} -eq 32 ] || fail "$c: serial $serial is not 128 bits"
    echo "$serial" >>"$TMP/serials"
  done
  "$OPENSSL" x509 -in "$tlscert" -noout -ext extendedKeyUsage | grep -q "TLS Web Server Authentication, TLS Web Client Authentication" \
    || fail "$tlscert: EKU"

  # keys: 0600, PKCS#8, and the public half of each certificate
  for k in "$signkey" "$tlskey"; do
    [ "$(stat -c %a "$k")" = 600 ] || fail "$k: mode $(stat -c %a "$k"), want 600"
    head -1 "$k" | grep -q -- "-----BEGIN PRIVATE KEY-----" || fail "$k: not PKCS#8 PEM"
  done
  [ "$("$OPENSSL" pkey -in "$signkey" -pubout)" = "$("$OPENSSL" x509 -in "$signcert" -noout -pubkey)" ] \
    || fail "$name: signing key does not match certificate"
  [ "$("$OPENSSL" pkey -in "$tlskey" -pubout)" = "$("$OPENSSL" x509 -in "$tlscert" -noout -pubkey)" ] \
    || fail "$name: TLS key does not match certificate"
done < <(find "$OUT" -path '*/msp/signcerts/*-cert.pem' | sort)

for k in $(find "$OUT" -path '*/ca/priv_sk' -o -path '*/tlsca/priv_sk'); do
  [ "$(stat -c %a "$k")" = 600 ] || fail "$k: mode $(stat -c %a "$k"), want 600"
done
[ "$(sort "$TMP/serials" | uniq -d | wc -l)" -eq 0 ] || fail "duplicate serial numbers"

# ---- no silent overwrite -----------------------------------------------------------------
before=$(sha256sum "$(ca_of "$ORG1")")
if "$FEDLEDGER" cryptogen generate --config "$CONFIG" --output "$OUT" >"$TMP/again.out" 2>&1; then
  fail "second run without --force succeeded"
else
  rc=$?
  [ $rc -eq 1 ] || fail "second run: exit $rc, want 1"
  grep -q "already exists" "$TMP/again.out" || fail "second run: message '$(cat "$TMP/again.out")'"
  grep -q -- "--force" "$TMP/again.out" || fail "second run: message does not mention --force"
  grep -q "ordererOrganizations/example.com" "$TMP/again.out" || fail "second run: message does not name the directory"
fi
[ "$before" = "$(sha256sum "$(ca_of "$ORG1")")" ] || fail "failed run modified the material"
check "run with --force" "$FEDLEDGER" cryptogen generate --config "$CONFIG" --output "$OUT" --force
[ "$before" != "$(sha256sum "$(ca_of "$ORG1")")" ] || fail "--force did not replace the CA"
[ "$(find "$OUT" -type f | wc -l)" -eq 165 ] || fail "--force: wrong file count"
check "--force: new peer cert verifies" "$OPENSSL" verify -CAfile "$(ca_of "$ORG1")" \
  "$ORG1/peers/peer0.org1.example.com/msp/signcerts/peer0.org1.example.com-cert.pem"

# ---- configuration errors name file and line -------------------------------------------
printf 'peer_orgs:\n  - name: Org1\n    domain: org1.example.com\n    template:\n      count: lots\n' >"$TMP/bad.yaml"
"$FEDLEDGER" cryptogen generate --config "$TMP/bad.yaml" --output "$TMP/bad" >"$TMP/bad.out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "bad config: exit $rc"
grep -q "$TMP/bad.yaml:5: peer_orgs.0.template.count: expected an integer between 0 and 10000, got 'lots'" "$TMP/bad.out" \
  || fail "bad config message: $(cat "$TMP/bad.out")"
[ ! -e "$TMP/bad/peerOrganizations" ] || fail "bad config left output"

# ---- CLI usage ------------------------------------------------------------------------------
"$FEDLEDGER" frobnicate >"$TMP/u.out" 2>"$TMP/u.err"; rc=$?
[ $rc -eq 2 ] || fail "unknown command: exit $rc, want 2"
grep -q "unknown command 'frobnicate'" "$TMP/u.err" || fail "unknown command: stderr"
grep -q "cryptogen" "$TMP/u.err" || fail "unknown command: usage lists cryptogen"
[ ! -s "$TMP/u.out" ] || fail "unknown command: wrote to stdout"
"$FEDLEDGER" cryptogen frob 2>"$TMP/u.err" >/dev/null; rc=$?
[ $rc -eq 2 ] || fail "unknown subcommand: exit $rc"
"$FEDLEDGER" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "no command: exit $rc"
for lvl in "" "cryptogen" "cryptogen generate"; do
  # shellcheck disable=SC2086
  "$FEDLEDGER" $lvl --help >"$TMP/h.out" 2>&1; rc=$?
  [ $rc -eq 0 ] || fail "'fedledger $lvl --help': exit $rc"
  grep -q "Usage: fedledger" "$TMP/h.out" || fail "'fedledger $lvl --help': no usage"
done
grep -q -- "--config FILE" "$TMP/h.out" || fail "generate --help lists --config"
"$FEDLEDGER" cryptogen generate --output "$TMP/x" >/dev/null 2>"$TMP/m.err"; rc=$?
[ $rc -eq 2 ] || fail "missing --config: exit $rc"
grep -q "missing required flag --config" "$TMP/m.err" || fail "missing --config: message"
"$FEDLEDGER" cryptogen generate --config "$CONFIG" --bogus >/dev/null 2>"$TMP/m.err"; rc=$?
[ $rc -eq 2 ] || fail "unknown flag: exit $rc"
"$FEDLEDGER" cryptogen generate --config /nonexistent.yaml --output "$TMP/y" >/dev/null 2>"$TMP/m.err"; rc=$?
[ $rc -eq 1 ] || fail "missing config file: exit $rc"
grep -q "/nonexistent.yaml" "$TMP/m.err" || fail "missing config file: message names it"

if [ $failures -ne 0 ]; then
  echo "test_cryptogen: $failures failure(s), $checks checks passed" >&2
  exit 1
fi
echo "test_cryptogen: all $checks checks passed"
