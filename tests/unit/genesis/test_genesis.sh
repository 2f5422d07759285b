#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# test_genesis.sh FEDLEDGER NETWORK_YAML PKI_DIR: `fedledger genesis` writes a
# genesis block that reads back, refuses to overwrite, reports bad values by
# file and line or by environment variable, lets the environment override the
# file, and refuses a signer who is not an orderer-organisation admin.
set -uo pipefail
FL=$1 NET=$2 PKI=$3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0 checks=0
ok()   { checks=$((checks + 1)); }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect() { # description, then a command whose status must be 0
  local what=$1; shift
  if "$@"; then ok; else fail "$what"; fi
}

# 1. A good network.
"$FL" genesis -c "$NET" --crypto-dir "$PKI" -o "$TMP/g.block" >"$TMP/out" 2>"$TMP/err"
expect "good network exits 0 ($(cat "$TMP/err"))" test $? -eq 0
expect "block written" test -s "$TMP/g.block"
expect "summary names 4 orderers" test "$(grep -c '^orderer: ' "$TMP/out")" -eq 4
expect "summary names 3 organisations" test "$(grep -c '^organization: ' "$TMP/out")" -eq 3
expect "pbft defaults from file" grep -q '^pbft: n=4 f=1 batch=500 timeout=10ms checkpoint=16' "$TMP/out"

# 2. No silent overwrite.
"$FL" genesis -c "$NET" --crypto-dir "$PKI" -o "$TMP/g.block" >/dev/null 2>"$TMP/err"
expect "second run without --force exits 1" test $? -eq 1
expect "second run names --force" grep -q -- '--force' "$TMP/err"
before=$(sha256sum "$TMP/g.block")
expect "file untouched" test "$before" = "$(sha256sum "$TMP/g.block")"

# 3. Environment override wins over the file.
FEDLEDGER_PBFT_BATCH_TIMEOUT=5ms "$FL" genesis -c "$NET" --crypto-dir "$PKI" \
  -o "$TMP/g2.block" >"$TMP/out" 2>&1
expect "env override applied" grep -q 'timeout=5ms' "$TMP/out"

# 4. A bad value in the environment names the variable.
FEDLEDGER_PBFT_F=many "$FL" genesis -c "$NET" --crypto-dir "$PKI" -o "$TMP/g3.block" \
  >/dev/null 2>"$TMP/err"
expect "bad env value exits 1" test $? -eq 1
expect "bad env value names the variable" grep -q 'FEDLEDGER_PBFT_F' "$TMP/err"

# 5. A bad value in the file names file and line.
sed 's/port: 7150,/port: seventy,/' "$NET" >"$TMP/bad.yaml"
line=$(grep -n 'port: seventy' "$TMP/bad.yaml" | cut -d: -f1)
"$FL" genesis -c "$TMP/bad.yaml" --crypto-dir "$PKI" -o "$TMP/g4.block" >/dev/null 2>"$TMP/err"
expect "bad port exits 1" test $? -eq 1
expect "bad port names file:line ($line): $(cat "$TMP/err")" grep -q "bad.yaml:$line" "$TMP/err"
expect "no block written on error" test ! -e "$TMP/g4.block"

# 6. N < 3f+1 is refused.
FEDLEDGER_PBFT_F=2 "$FL" genesis -c "$NET" --crypto-dir "$PKI" -o "$TMP/g5.block" \
  >/dev/null 2>"$TMP/err"
expect "f=2 with 4 orderers exits 1" test $? -eq 1
expect "f=2 reason mentions 3f+1: $(cat "$TMP/err")" grep -q '3f+1' "$TMP/err"

# 7. The signer must be an orderer-org admin.
sed -e 's#^  mspid: OrdererMSP$#  mspid: Org1MSP#' \
    -e 's#users/Admin@example.com/msp#../peerOrganizations/org1.example.com/users/Admin@org1.example.com/msp#' \
    -e 's#^  msp_dir: ordererOrganizations/example.com/../#  msp_dir: #' "$NET" >"$TMP/peeradmin.yaml"
grep -q 'Admin@org1' "$TMP/peeradmin.yaml" || fail "test setup: signer not replaced"
"$FL" genesis -c "$TMP/peeradmin.yaml" --crypto-dir "$PKI" -o "$TMP/g6.block" \
  >/dev/null 2>"$TMP/err"
expect "peer-org admin signer exits 1" test $? -eq 1
expect "peer-org admin reason: $(cat "$TMP/err")" grep -q 'not in an orderer organi' "$TMP/err"

# 8. A missing MSP folder is named.
"$FL" genesis -c "$NET" --crypto-dir "$TMP/nowhere" -o "$TMP/g7.block" >/dev/null 2>"$TMP/err"
expect "missing crypto exits 1" test $? -eq 1
expect "missing crypto names the folder" grep -q "$TMP/nowhere" "$TMP/err"

# 9. Usage errors exit 2.
"$FL" genesis >/dev/null 2>&1
expect "missing --config exits 2" test $? -eq 2

echo "test_genesis: $fails failure(s), $checks checks passed"
[ "$fails" -eq 0 ]
