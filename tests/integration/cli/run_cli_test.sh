#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# run_cli_test.sh: the `fedledger` CLI against a live local network.
#
# Starts, on 127.0.0.1 in a temp dir: crypto material and a genesis block
# made by the real CLI, FL_CLI_ORDERERS fedledger-orderer processes (default
# 4, PBFT f = 1; 1 gives f = 0) and two fedledger-peer processes (peer0 of Org1
# and Org2) with the mlupdate chaincode. Then:
#   1. `task create` (human and --json), cli_seed runs rounds 0 and 1 (4
#      honest clients, 1 malicious that the task's max_norm rejects and that
#      mlupdate revokes automatically), `client revoke` of one honest client
#      by its organisation's admin, round 2;
#   2. every subcommand in both output forms; each --json output is checked
#      against its schema in docs/cli-json.md (check_schema.py);
#   3. exit codes: usage 2, not found 3, access denied 4, unreachable 5;
#   4. `ledger verify` passes; then peer0.org1 is stopped, one byte of one
#      stored block is flipped on disk (cli_flip), the peer restarted, and
#      `ledger verify` must fail with exit 6 naming that block; on
#      peer0.org2 one byte of the last global model's blob is flipped:
#      `model get` refuses it (exit 6, no file) and `ledger verify` fails
#      with check model_blob at the block that recorded that model.
# Every process is started here and killed by PID at the end.
#
# Environment (set by CMake): FL_BIN_DIR (fedledger, fedledger-peer,
# fedledger-orderer), FL_MLUPDATE_SO, FL_CLI_SEED, FL_CLI_FLIP,
# FL_SOURCE_DIR; optional FL_FEDLEDGER (the CLI binary to test, default
# FL_BIN_DIR/fedledger), FL_CLI_ORDERERS, FL_TEST_KEEP=1 (keep the temp dir).
# Exit 77 (skipped) when a binary is missing.
set -u

SRC=${FL_SOURCE_DIR:?}
BIN=${FL_BIN_DIR:?}
FED=${FL_FEDLEDGER:-$BIN/fedledger}   # FL_FEDLEDGER: e.g. an ASan build of the CLI
NORD=${FL_CLI_ORDERERS:-4}
for f in "$FED" "$BIN/fedledger-peer" "$BIN/fedledger-orderer" "${FL_MLUPDATE_SO:-}" \
         "${FL_CLI_SEED:-}" "${FL_CLI_FLIP:-}"; do
  if [ -z "$f" ] || [ ! -x "$f" -a ! -f "$f" ]; then
    echo "SKIP: missing $f (build fedledger, fedledger-peer, fedledger-orderer, mlupdate.so," \
         "cli_seed and cli_flip)"
    exit 77
  fi
done
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/fl-cli-XXXXXX")
PIDS=()
FAILS=0
CHECKS=0
cleanup() {
  for p in "${PIDS[@]}"; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  if [ "${FL_TEST_KEEP:-0}" = 1 ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { CHECKS=$((CHECKS + 1)); }

# The demo's port picker (scripts/demo/lib.sh): ports below the kernel's
# ephemeral range, from this test's own block (FL_PORT_BASE, set by CMake).
# shellcheck source=../../../scripts/demo/lib.sh
source "$SRC/scripts/demo/lib.sh"

# ---- network files ----------------------------------------------------------------
mkdir -p "$DIR/cc"
cp "$FL_MLUPDATE_SO" "$DIR/cc/mlupdate.so"
"$FED" cryptogen generate --config "$SRC/crypto-config/crypto-config.yaml" --output "$DIR/pki" \
  >"$DIR/cryptogen.log" 2>&1 || { echo "cryptogen failed"; cat "$DIR/cryptogen.log"; exit 1; }
F=$(( (NORD - 1) / 3 ))
OPORT=() PPORT=() EPORT=() OPS=()
for i in $(seq 0 $((NORD - 1))); do take_port "OPORT[$i]" || exit 1; done
for i in 0 1; do take_port "PPORT[$i]" && take_port "EPORT[$i]" && take_port "OPS[$i]" || exit 1; done
PNAME=(peer0.org1.example.com peer0.org2.example.com)
PDOM=(org1.example.com org2.example.com)
PMSP=(Org1MSP Org2MSP)
{
  echo "channel: fedledger"
  echo "crypto_dir: pki"
  echo "chaincode_dir: cc"
  echo "organizations:"
  echo "  - {mspid: OrdererMSP, name: example.com, orderer_org: true, msp_dir: ordererOrganizations/example.com/msp}"
  echo "  - {mspid: Org1MSP, name: org1.example.com, msp_dir: peerOrganizations/org1.example.com/msp}"
  echo "  - {mspid: Org2MSP, name: org2.example.com, msp_dir: peerOrganizations/org2.example.com/msp}"
  echo "orderers:"
  for i in $(seq 0 $((NORD - 1))); do
    echo "  - {id: $i, mspid: OrdererMSP, host: 127.0.0.1, port: ${OPORT[$i]}, msp_dir: ordererOrganizations/example.com/orderers/orderer$i.example.com/msp}"
  done
  echo "peers:"
  for i in 0 1; do
    echo "  - {mspid: ${PMSP[$i]}, name: ${PNAME[$i]}, host: 127.0.0.1, port: ${PPORT[$i]}, events_port: ${EPORT[$i]}}"
  done
  cat <<EOF
pbft:
  f: $F
  batch_max_count: 100
  batch_max_bytes: 4194304
  batch_timeout: 20ms
  checkpoint_interval: 16
  watermark_window: 64
  view_change_timeout: 2s
endorsement_policy: MAJORITY
chaincodes:
  - {name: mlupdate, version: "1.0", library: mlupdate.so}
revoked: []
max_message_bytes: 16777216
admin:
  mspid: OrdererMSP
  msp_dir: ordererOrganizations/example.com/users/Admin@example.com/msp
EOF
} >"$DIR/network.yaml"
"$FED" genesis -c "$DIR/network.yaml" -o "$DIR/genesis.block" >"$DIR/genesis.log" 2>&1 ||
  { echo "genesis failed"; cat "$DIR/genesis.log"; exit 1; }
for i in $(seq 0 $((NORD - 1))); do
  OD=$DIR/pki/ordererOrganizations/example.com/orderers/orderer$i.example.com
  cat >"$DIR/orderer$i.yaml" <<EOF
general:
  id: $i
  data_dir: $DIR/odata$i
  genesis: $DIR/genesis.block
  log: info
msp:
  dir: $OD/msp
tls:
  enabled: true
  cert: $OD/tls/server.crt
  key: $OD/tls/server.key
EOF
done
for i in 0 1; do
  PD=$DIR/pki/peerOrganizations/${PDOM[$i]}/peers/${PNAME[$i]}
  cat >"$DIR/peer$i.yaml" <<EOF
peer:
  name: ${PNAME[$i]}
  msp_dir: $PD/msp
  data_dir: $DIR/pdata$i
  genesis: $DIR/genesis.block
  chaincode_dir: $DIR/cc
  log: info
tls:
  cert: $PD/tls/server.crt
  key: $PD/tls/server.key
operations:
  port: ${OPS[$i]}
deliver:
  stall_timeout: 2s
  orderers: []
chaincode:
  mode: fork
  workers: 2
gateway:
  commit_timeout: 30s
EOF
done

OPID=(); PPID_=()
start_orderer() { "$BIN/fedledger-orderer" --config "$DIR/orderer$1.yaml" >>"$DIR/orderer$1.log" 2>&1 & OPID[$1]=$!; PIDS+=($!); }
start_peer() { "$BIN/fedledger-peer" --config "$DIR/peer$1.yaml" >>"$DIR/peer$1.log" 2>&1 & PPID_[$1]=$!; PIDS+=($!); }
for i in $(seq 0 $((NORD - 1))); do start_orderer "$i"; done
start_peer 0; start_peer 1

# The CLI's configuration: relative paths resolve against this file's folder.
ADMIN1=pki/peerOrganizations/org1.example.com/users/Admin@org1.example.com
cat >"$DIR/cli.yaml" <<EOF
peer: 127.0.0.1:${PPORT[0]}
mspid: Org1MSP
msp_dir: $ADMIN1/msp
tls_dir: $ADMIN1/tls
genesis: genesis.block
timeout: 20s
EOF
export FEDLEDGER_CLI_CONFIG=$DIR/cli.yaml
unset FEDLEDGER_PEER FEDLEDGER_MSPID FEDLEDGER_MSP_DIR FEDLEDGER_TLS_DIR FEDLEDGER_GENESIS
P1=127.0.0.1:${PPORT[0]}
P2=127.0.0.1:${PPORT[1]}

ADMIN2=$DIR/pki/peerOrganizations/org2.example.com/users/Admin@org2.example.com
AS_ORG2=(--mspid Org2MSP --msp-dir "$ADMIN2/msp" --tls-dir "$ADMIN2/tls")
wait_peer() { # peer address, identity flags...; waits until `block get 0` answers
  local p=$1; shift
  for _ in $(seq 1 150); do
    "$FED" block get 0 --peer "$p" "$@" >/dev/null 2>"$DIR/wait.err" && return 0
    sleep 0.2
  done
  cat "$DIR/wait.err"
  return 1
}
wait_peer "$P1" && wait_peer "$P2" "${AS_ORG2[@]}" || { echo "peers did not come up"; for l in "$DIR"/peer*.log; do tail -n 20 "$l"; done; exit 1; }

SCHEMA="python3 $SRC/tests/integration/cli/check_schema.py $SRC/docs/cli-json.md"

# run NAME EXPECTED_RC CMD... : runs the CLI, keeps stdout in $DIR/out/NAME,
# stderr in $DIR/out/NAME.err, checks the exit code.
mkdir -p "$DIR/out"
run() {
  local name=$1 want=$2; shift 2
  "$FED" "$@" >"$DIR/out/$name" 2>"$DIR/out/$name.err"
  local rc=$?
  if [ "$rc" != "$want" ]; then
    fail "$name: fedledger $* exited $rc, want $want"
    sed 's/^/    /' "$DIR/out/$name.err" | head -5
  else
    pass
  fi
}
# jrun NAME SCHEMA CMD... : --json form, exit 0, validated against SCHEMA.
jrun() {
  local name=$1 schema=$2; shift 2
  run "$name" 0 "$@" --json
  if ! $SCHEMA "$schema" <"$DIR/out/$name" >"$DIR/out/$name.schema" 2>&1; then
    fail "$name: output does not match schema $schema"; sed 's/^/    /' "$DIR/out/$name.schema" | head -5
  else
    pass
  fi
}
has() { # NAME TEXT : stdout of NAME contains TEXT
  if grep -qF -- "$2" "$DIR/out/$1"; then pass; else fail "$1: output lacks '$2'"; sed 's/^/    /' "$DIR/out/$1" | head -8; fi
}
errhas() {
  if grep -qF -- "$2" "$DIR/out/$1.err"; then pass; else fail "$1: stderr lacks '$2'"; sed 's/^/    /' "$DIR/out/$1.err" | head -5; fi
}
jget() { # NAME PYEXPR : evaluates PYEXPR on the parsed JSON `j`
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$DIR/out/$1"
}

# ---- 1. a task and three rounds ------------------------------------------------------
cat >"$DIR/task.yaml" <<EOF
task: t1
model: {kind: mlp, inputs: 8, classes: 2, hidden: [6], seed: 11}
rule: fedavg
min_updates: 3
round: 10m
max_norm: 5
reject_limit: 0.5
reject_min: 2
EOF
sed -e 's/^task: t1/task: t2/' -e 's/^rule: fedavg/rule: median/' "$DIR/task.yaml" >"$DIR/task2.yaml"
run task_create 0 task create --file "$DIR/task.yaml"
has task_create "created task t1"
jrun task_create_json task-create task create --file "$DIR/task2.yaml"
run task_dup 1 task create --file "$DIR/task.yaml"
errhas task_dup "exists already"
jrun task_dry task-create task create --file "$DIR/task.yaml" --dry-run --seed 5 --peer 127.0.0.1:1

PKI=$DIR/pki
for r in 0 1; do
  "$FL_CLI_SEED" "$PKI" "$P1" "$P2" t1 $r >"$DIR/out/seed$r" 2>&1 || { fail "cli_seed round $r"; cat "$DIR/out/seed$r"; }
done
cat "$DIR/out/seed0" "$DIR/out/seed1"
run revoke 0 client revoke --client Org1MSP:client2@org1.example.com --reason "device lost"
has revoke "revoked client Org1MSP:client2@org1.example.com"
jrun revoke_again client-revoke client revoke --client Org1MSP:client2@org1.example.com --reason "again"
[ "$(jget revoke_again 'j["already_revoked"]')" = True ] && pass || fail "second revoke not reported as already revoked"
"$FL_CLI_SEED" "$PKI" "$P1" "$P2" t1 2 >"$DIR/out/seed2" 2>&1 || { fail "cli_seed round 2"; cat "$DIR/out/seed2"; }
cat "$DIR/out/seed2"

# ---- 2. every subcommand, both forms ----------------------------------------------------
run task_show 0 task show --task t1
has task_show "rounds closed:    3"
jrun task_show_json task-show task show --task t1

run hist 0 model history --task t1
has hist "ROUND"
jrun hist_json model-history model history --task t1
[ "$(jget hist_json 'len(j["rounds"])')" = 3 ] && pass || fail "model history: want 3 rounds"
[ "$(jget hist_json 'j["rounds"][0]["rejected"]')" = 1 ] && pass || fail "round 0: want 1 rejected"
M2=$(jget hist_json 'j["rounds"][2]["hash"]')
M0=$(jget hist_json 'j["rounds"][0]["hash"]')
CLOSE_TX=$(jget hist_json 'j["rounds"][1]["tx_id"]')
CLOSE_BLOCK=$(jget hist_json 'j["rounds"][1]["block"]')

run show2 0 model show --task t1 --round 2
has show2 "REVOKED"
jrun show2_json model-show model show --task t1 --round 2
[ "$(jget show2_json 'sorted(u["reason"] or "OK" for u in j["updates"])')" = "['OK', 'OK', 'OK', 'REVOKED', 'REVOKED']" ] \
  && pass || fail "round 2 reasons: $(jget show2_json '[u["reason"] for u in j["updates"]]')"
[ "$(jget show2_json 'round(sum(u["weight"] or 0 for u in j["updates"]), 6)')" = 1.0 ] && pass || fail "round 2 weights do not sum to 1"
jrun show0_json model-show model show --task t1 --round 0

run lineage 0 model lineage --task t1 "${M2:0:16}"
has lineage "every parent matches"
jrun lineage_json model-lineage model lineage --task t1 "$M2"
[ "$(jget lineage_json 'len(j["lineage"])')" = 3 ] && pass || fail "lineage: want 3 steps"

run get 0 model get --task t1 --round 2 -o "$DIR/m2.bin"
has get "matches the ledger"
[ "$(sha256sum "$DIR/m2.bin" | cut -d' ' -f1)" = "$M2" ] && pass || fail "model get: file hash differs"
jrun get_json model-get model get --task t1 --round 1 -o "$DIR/m1.bin"

run upd 0 update show --task t1 --round 0 --client Org1MSP:client3@org1.example.com
has upd "OUTLIER_MAX_NORM"
jrun upd_json update-show update show --task t1 --round 2 --client Org1MSP:client2@org1.example.com
[ "$(jget upd_json 'j["reason"]')" = REVOKED ] && pass || fail "client2 round 2: want REVOKED"

run cshow 0 client show --client Org1MSP:client3@org1.example.com
has cshow "mlupdate"
jrun cshow_json client-show client show --client Org1MSP:client2@org1.example.com
[ "$(jget cshow_json 'j["revoked_reason"]')" = "device lost" ] && pass || fail "client2 revoked_reason"
run clist 0 client list --revoked
has clist "Org1MSP:client2@org1.example.com"
has clist "Org1MSP:client3@org1.example.com"
jrun clist_json client-list client list
[ "$(jget clist_json 'sum(1 for c in j["clients"] if c["revoked"])')" = 2 ] && pass || fail "client list: want 2 revoked"

run blk 0 block get "$CLOSE_BLOCK"
has blk "valid of"
has blk "CloseRound"
jrun blk_json block-get block get "$CLOSE_BLOCK"
[ "$(jget blk_json 'j["signatures"]["verified"]')" = True ] && pass || fail "block signatures not verified"
jrun blk0_json block-get block get 0

run tx 0 tx get "$CLOSE_TX"
has tx "CloseRound"
has tx "Admin@org1.example.com"
jrun tx_json tx-get tx get "$CLOSE_TX"
[ "$(jget tx_json 'j["code_name"]')" = VALID ] && pass || fail "tx code"

run key 0 key history client/Org1MSP:client2@org1.example.com
has key "versions"
jrun key_json key-history key history model/t1/1

# events: one follower in each form, then a transaction to see.
"$FED" events --follow --json >"$DIR/out/events_json" 2>"$DIR/out/events_json.err" & EVJ=$!; PIDS+=($EVJ)
"$FED" events --follow >"$DIR/out/events" 2>"$DIR/out/events.err" & EVH=$!; PIDS+=($EVH)
# nanomsg subscriptions become live some time after connect (slow joiner):
# create tasks until both followers have shown a TaskCreated event, instead
# of trusting a fixed sleep (the CI runs this under ASan load).
sleep 1
evseen=0
for n in 3 4 5 6 7; do
  sed -e "s/^task: t1/task: t$n/" "$DIR/task.yaml" >"$DIR/task$n.yaml"
  run "task$n" 0 task create --file "$DIR/task$n.yaml"
  for _ in $(seq 1 25); do
    if grep -q '"TaskCreated"' "$DIR/out/events_json" && grep -q 'event TaskCreated' "$DIR/out/events"; then
      evseen=1; break
    fi
    sleep 0.2
  done
  [ $evseen = 1 ] && break
done
kill -INT $EVJ $EVH; wait $EVJ; EVJRC=$?; wait $EVH; EVHRC=$?
[ $EVJRC = 0 ] && [ $EVHRC = 0 ] && pass || fail "events exit codes $EVJRC $EVHRC"
grep -q '"TaskCreated"' "$DIR/out/events_json" && pass || fail "events --json: no TaskCreated"
grep -q '"kind":"block"' "$DIR/out/events_json" && pass || fail "events --json: no block event"
has events "event TaskCreated"
while IFS= read -r line; do
  kind=$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["kind"])')
  if printf '%s\n' "$line" | $SCHEMA "events-$kind" >/dev/null 2>"$DIR/out/ev.schema"; then pass; else
    fail "events line does not match events-$kind: $(cat "$DIR/out/ev.schema")"; fi
done <"$DIR/out/events_json"
run events_count 0 events --count 1 --timeout 500ms

# ---- 3. exit codes and messages ----------------------------------------------------------
run nf_task 3 model history --task nosuch
errhas nf_task "unknown task 'nosuch'"
run nf_round 3 model show --task t1 --round 99
errhas nf_round "unknown round 99"
run nf_block 3 block get 100000
run nf_tx 3 tx get 0000000000000000000000000000000000000000000000000000000000000000
run nf_client 3 client show --client Org1MSP:nobody@org1.example.com
run usage1 2 model show --task t1
run usage2 2 block get notanumber
run usage3 2 frobnicate
run denied 4 client revoke --client Org2MSP:client1@org2.example.com --reason "not mine"
errhas denied "access denied"
run unreach 5 block get 0 --peer 127.0.0.1:1
errhas unreach "peer 127.0.0.1:1 unreachable: connection refused"
FEDLEDGER_PEER=127.0.0.1:1 "$FED" task show --task t1 >/dev/null 2>"$DIR/out/envpeer.err"
[ $? = 5 ] && pass || fail "FEDLEDGER_PEER override not used"
# explicit flags instead of the config file
FEDLEDGER_CLI_CONFIG=/dev/null "$FED" model history --task t1 --peer "$P2" --mspid Org2MSP \
  --msp-dir "$ADMIN2/msp" --json >"$DIR/out/flags" 2>"$DIR/out/flags.err" && pass || fail "flags-only invocation: $(cat "$DIR/out/flags.err")"

# ---- 4. ledger verify, healthy and damaged ---------------------------------------------------
run verify 0 ledger verify
has verify "OK:"
jrun verify_json ledger-verify ledger verify
[ "$(jget verify_json 'j["models_verified"]')" = 3 ] && pass || fail "verify: want the 3 models of t1, got $(jget verify_json 'j["models_verified"]')"
BAD=$CLOSE_BLOCK
kill -TERM "${PPID_[0]}"; wait "${PPID_[0]}" 2>/dev/null
"$FL_CLI_FLIP" "$DIR/pdata0/ledger" "$BAD" >"$DIR/out/flip" 2>&1 && pass || { fail "cli_flip"; cat "$DIR/out/flip"; }
start_peer 0
for _ in $(seq 1 150); do "$FED" block get 0 >/dev/null 2>&1 && break; sleep 0.2; done
run verify_bad 6 ledger verify
has verify_bad "FAILED at block $BAD "
errhas verify_bad "failed at block $BAD"
"$FED" ledger verify --json >"$DIR/out/verify_bad_json" 2>/dev/null
[ $? = 6 ] && pass || fail "verify --json on damage: want exit 6"
$SCHEMA ledger-verify <"$DIR/out/verify_bad_json" >/dev/null && pass || fail "damaged verify json schema"
[ "$(jget verify_bad_json 'j["first_failure"]["block"]')" = "$BAD" ] && pass || fail "verify json names block $(jget verify_bad_json 'j["first_failure"]')"
run blk_bad 6 block get "$BAD"
run verify_p2_ok 0 ledger verify --peer "$P2" "${AS_ORG2[@]}"
# The other peer: its chain is intact, but one global model blob is damaged.
CLOSE2_BLOCK=$(jget hist_json 'j["rounds"][2]["block"]')
kill -TERM "${PPID_[1]}"; wait "${PPID_[1]}" 2>/dev/null
"$FL_CLI_FLIP" "$DIR/pdata1/ledger" blob "$M2" >"$DIR/out/flipblob" 2>&1 && pass || { fail "cli_flip blob"; cat "$DIR/out/flipblob"; }
start_peer 1
for _ in $(seq 1 150); do "$FED" block get 0 --peer "$P2" "${AS_ORG2[@]}" >/dev/null 2>&1 && break; sleep 0.2; done
run get_bad 6 model get --task t1 --round 2 -o "$DIR/m2bad.bin" --peer "$P2" "${AS_ORG2[@]}"
errhas get_bad "refusing the model"
[ ! -e "$DIR/m2bad.bin" ] && pass || fail "model get wrote a file that does not match the ledger"
run verify_p2 6 ledger verify --peer "$P2" "${AS_ORG2[@]}"
has verify_p2 "FAILED at block $CLOSE2_BLOCK (model_blob)"

# A sanitizer build of the CLI (FL_FEDLEDGER) must not have reported anything.
if grep -lE "AddressSanitizer|LeakSanitizer|runtime error:" "$DIR"/out/*.err "$DIR"/out/*/*.err \
     2>/dev/null; then
  fail "sanitizer reports in the files above"
else
  pass
fi

echo "cli integration: $CHECKS checks passed, $FAILS failed"
if [ "$FAILS" != 0 ]; then
  echo "logs in $DIR (FL_TEST_KEEP=1 keeps them)"; tail -n 5 "$DIR/peer0.log"
  exit 1
fi
exit 0
