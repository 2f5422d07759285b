#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# run_demo_test.sh: runs scripts/demo.sh (what `make demo` calls after
# building) against this build tree and checks its report, four times in the
# same run folder:
#   A. the default run (NSL-KDD when ../shared/datasets has it): exit 0, every
#      round completed, the malicious client REJECTED and revoked by mlupdate,
#      `ledger verify` OK, and none of the processes it recorded is left;
#   B. a run with the generated dataset (FL_DEMO_DATASET=generated), stopped
#      with SIGTERM while the rounds run: it exits 143 and stops every
#      process it started;
#   C. the same, killed with SIGKILL (no cleanup possible): its processes
#      are left running, as expected;
#   D. a full run with the generated dataset: it says so, removes C's
#      leftovers (by C's recorded PIDs), recreates the run folder (a marker
#      file left in it is gone) and passes like A.
# A process "left" is a recorded PID still alive, or any process whose
# command line names the run folder (pgrep -f).
#
# Environment (set by CMake): FL_SOURCE_DIR, FL_BINARY_DIR; optional
# FL_SHARED_DIR (datasets), FL_TEST_KEEP=1 (keep the run folder). Exit 77
# (skipped) when a binary is missing.
set -u

SRC=${FL_SOURCE_DIR:?}
BLD=${FL_BINARY_DIR:?}
for f in fedledger fedledger-orderer fedledger-peer fedledger-edge fedledger-keeper; do
  [[ -x "$BLD/bin/$f" ]] || { echo "SKIP: missing $BLD/bin/$f"; exit 77; }
done
[[ -f "$BLD/chaincode/mlupdate.so" ]] || { echo "SKIP: missing $BLD/chaincode/mlupdate.so"; exit 77; }

ROUNDS=${FL_DEMO_ROUNDS:-5}
export FL_DEMO_ROUNDS=$ROUNDS
export FL_DEMO_DIR=$BLD/demo-test-run # not demo-run: a `make demo` may use that one
RUN=$FL_DEMO_DIR
OUT=$(mktemp -d "${TMPDIR:-/tmp}/fl-demo-test-XXXXXX")
FAILS=0
CHECKS=0
BG=""

cleanup() {
  [[ -n "$BG" ]] && kill -KILL "$BG" 2>/dev/null
  # Whatever a failed check left behind: by the demo's own PID list.
  if [[ -f "$RUN/pids" ]]; then
    while read -r pid _; do
      tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$RUN/" && kill -KILL "$pid" 2>/dev/null
    done <"$RUN/pids"
  fi
  if [[ "${FL_TEST_KEEP:-0}" == 1 ]]; then echo "kept $RUN and $OUT"; else rm -rf "$RUN" "$OUT"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { CHECKS=$((CHECKS + 1)); }
check() { # description, command...
  local what=$1
  shift
  if "$@"; then pass; else fail "$what"; fi
}
has() { grep -qF -- "$2" "$OUT/$1"; }
hasre() { grep -qE -- "$2" "$OUT/$1"; }

alive() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n "$st" && "$st" != Z* ]]
}
# left_behind: prints the recorded PIDs still alive and every process whose
# command line names the run folder.
left_behind() {
  local pid name
  if [[ -f "$RUN/pids" ]]; then
    while read -r pid name; do
      alive "$pid" && echo "$pid $name (recorded)"
    done <"$RUN/pids"
  fi
  pgrep -af -- "$RUN/" | grep -v -e pgrep -e run_demo_test || true
}
none_left() {
  local l
  l=$(left_behind)
  [[ -z "$l" ]] || { echo "left behind:"; echo "$l"; return 1; }
}

# report NAME DATASET: checks a successful run's output $OUT/NAME.
report() {
  local n=$1 ds=$2 r
  check "$n: summary says $ROUNDS rounds" has "$n" "rounds completed: $ROUNDS of $ROUNDS"
  for r in $(seq 0 $((ROUNDS - 1))); do
    # progress line: round, accepted, rejected, model hash prefix. Rejected is
    # the attacker's update (1), or 0 when the keeper closed the round (4
    # accepted) before that update committed: it then conflicts with the
    # close and leaves no record, which the edge logs as a missed round.
    check "$n: progress line of round $r" hasre "$n" "^$r +[1-9][0-9]* +[01] +[0-9a-f]{16} "
  done
  check "$n: the attacker's update is rejected in some round" \
    hasre "$n" "^[0-9]+ +[1-9][0-9]* +1 +[0-9a-f]{16} "
  check "$n: model history lists $ROUNDS rounds" \
    test "$(sed -n '/^\$ fedledger model history/,/^\$ fedledger model show/p' "$OUT/$n" |
      grep -cE '^[0-9]+ +[0-9a-f]{16} +[0-9a-f]{16} ')" = "$ROUNDS"
  check "$n: the last round in detail" has "$n" "round:            $((ROUNDS - 1)) (CLOSED)"
  # (unless its update missed that round: see the progress lines above)
  if hasre "$n" "^$((ROUNDS - 1)) +[1-9][0-9]* +1 +[0-9a-f]{16} "; then
    check "$n: attacker REJECTED in the last round" \
      hasre "$n" "^Org2MSP:client3@org2.example.com +REJECTED +(REVOKED|OUTLIER_MAX_NORM)"
  fi
  check "$n: honest updates ACCEPTED" \
    test "$(grep -cE '^Org[12]MSP:client[12]@org[12].example.com +ACCEPTED' "$OUT/$n")" = 4
  check "$n: attacker revoked" has "$n" "revoked:          true"
  check "$n: revoked by mlupdate" has "$n" "revoked_by:       mlupdate"
  check "$n: rejected for its norm" has "$n" "malicious client: Org2MSP:client3@org2.example.com REJECTED in"
  check "$n: ledger verify OK" hasre "$n" "^OK: [0-9]+ blocks .* $ROUNDS global models match their blobs"
  check "$n: summary verify OK" has "$n" "ledger verify: OK"
  check "$n: demo OK" has "$n" "demo: OK"
  check "$n: says where the logs are" has "$n" "process logs in $RUN/logs"
  check "$n: node logs written" test -s "$RUN/logs/peer0.org1.example.com.log" -a -s "$RUN/logs/orderer3.log"
  check "$n: 14 processes recorded" test "$(wc -l <"$RUN/pids")" = 14
  if [[ $ds == generated ]]; then
    check "$n: says it uses a generated dataset" has "$n" "this run uses a GENERATED dataset"
  else
    check "$n: says it uses NSL-KDD" has "$n" "data      NSL-KDD"
  fi
  check "$n: every node exited 0 on SIGTERM" has "$n" "every process stopped cleanly (14 started, none left)"
  check "$n: no process left" none_left
}

# start_bg NAME ENV...: runs the demo in the background, output in $OUT/NAME.
start_bg() {
  local n=$1
  shift
  env "$@" bash "$SRC/scripts/demo.sh" "$BLD" >"$OUT/$n" 2>&1 &
  BG=$!
}
# wait_for NAME TEXT: until the output shows TEXT (60 s).
wait_for() {
  local i
  for i in $(seq 1 300); do
    grep -qF -- "$2" "$OUT/$1" && return 0
    alive "$BG" || return 1
    sleep 0.2
  done
  return 1
}

# ---- A: the default run ----------------------------------------------------------------
DS=generated
[[ -r "${FL_SHARED_DIR:-$SRC/../shared}/datasets/nsl-kdd/KDDTrain+_20Percent.txt.gz" ]] && DS=nsl-kdd
t=$SECONDS
bash "$SRC/scripts/demo.sh" "$BLD" >"$OUT/A" 2>&1
rc=$?
echo "run A ($DS): exit $rc in $((SECONDS - t)) s"
check "A: exit 0 (got $rc)" test "$rc" = 0
report A $DS
((rc == 0)) || tail -n 30 "$OUT/A"

# ---- B: SIGTERM while the rounds run ---------------------------------------------------------
# 40 rounds, so that the rounds still run 0.5 s later however fast they are.
start_bg B FL_DEMO_DATASET=generated FL_DEMO_ROUNDS=40
if wait_for B "running 40 rounds"; then
  sleep 0.5
  kill -TERM "$BG"
  wait "$BG"
  rc=$?
  BG=""
  echo "run B (SIGTERM): exit $rc"
  check "B: exit 143 after SIGTERM (got $rc)" test "$rc" = 143
  check "B: says it stops its processes" has B "== stopping"
  check "B: no process left after SIGTERM" none_left
else
  fail "B: the demo did not reach the rounds"; tail -n 20 "$OUT/B"
fi

# ---- C: SIGKILL (no cleanup) ------------------------------------------------------------------
start_bg C FL_DEMO_DATASET=generated
if wait_for C "running $ROUNDS rounds"; then
  kill -KILL "$BG"
  wait "$BG" 2>/dev/null
  BG=""
  cp "$RUN/pids" "$OUT/C.pids"
  check "C: its nodes outlive a SIGKILL of the script" test -n "$(left_behind)"
  touch "$RUN/marker"
else
  fail "C: the demo did not reach the rounds"; tail -n 20 "$OUT/C"
fi

# ---- D: generated dataset, after C's leftovers ----------------------------------------------------
t=$SECONDS
FL_DEMO_DATASET=generated bash "$SRC/scripts/demo.sh" "$BLD" >"$OUT/D" 2>&1
rc=$?
echo "run D (generated): exit $rc in $((SECONDS - t)) s"
check "D: exit 0 (got $rc)" test "$rc" = 0
report D generated
check "D: run folder recreated" test ! -e "$RUN/marker"
if [[ -f "$OUT/C.pids" ]]; then
  still=0
  while read -r pid name; do alive "$pid" && still=1; done <"$OUT/C.pids"
  check "D: C's leftover processes were stopped" test $still = 0
fi
((rc == 0)) || tail -n 30 "$OUT/D"

echo "demo test: $CHECKS checks passed, $FAILS failed"
if ((FAILS)); then
  echo "outputs in $OUT, run folder $RUN (FL_TEST_KEEP=1 keeps them)"
  exit 1
fi
exit 0
