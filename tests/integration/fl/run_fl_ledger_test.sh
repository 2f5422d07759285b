#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# run_fl_ledger_test.sh: `bench/run fl --ledger` against the plain runner on
# the same job (see CMakeLists.txt). Environment (set by CMake):
# FL_SOURCE_DIR, FL_BINARY_DIR; FL_TEST_KEEP=1 keeps the output folder.
set -u

SRC=${FL_SOURCE_DIR:?}
BLD=${FL_BINARY_DIR:?}
for f in bin/fedledger bin/fedledger-orderer bin/fedledger-peer chaincode/mlupdate.so \
  bench/fl/fl_bench; do
  [[ -e "$BLD/$f" ]] || { echo "SKIP: missing $BLD/$f"; exit 77; }
done

OUT=$(mktemp -d "${TMPDIR:-/tmp}/fl-ledger-test-XXXXXX")
FAILS=0
CHECKS=0
cleanup() {
  # Whatever a failure left behind: by the network's own PID list.
  local net
  for net in fl-net fl-round-net; do
    [[ -f "$OUT/$net/pids" ]] || continue
    while read -r pid _; do
      { tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$OUT/" && kill -KILL "$pid"; } 2>/dev/null
    done <"$OUT/$net/pids" 2>/dev/null
  done
  if [[ "${FL_TEST_KEEP:-0}" == 1 ]]; then echo "kept $OUT"; else rm -rf "$OUT"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
check() { # description, command...
  local what=$1
  shift
  if "$@"; then CHECKS=$((CHECKS + 1)); else fail "$what"; fi
}

# A generated dataset: two Gaussian-ish classes in 6 features (awk's seeded
# rand), 900 rows; the runner splits it 80/20 and encodes it.
awk 'BEGIN { srand(7); print "a,b,c,d,e,f,label";
  for (i = 0; i < 900; i++) { y = i % 2; line = "";
    for (j = 0; j < 6; j++) { v = (rand() + rand() + rand() - 1.5) + (y ? 0.6 : -0.6) * (j % 3 == 0 ? 1 : 0.4);
      line = line sprintf("%.5f,", v) }
    print line y } }' >"$OUT/data.csv"

# 5 clients, 2 malicious: sign flippers (norm x20, rejected by max_norm at
# SubmitUpdate) and IPM senders (identical small updates, accepted at
# SubmitUpdate and left out by CloseRound's collusion filter, a task field).
JOB=(--dataset csv --csv "$OUT/data.csv" --columns label=label --clients 5 --rounds 2 --seeds 1
  --model logreg --lr 0.05 --rule fedavg --attack signflip,ipm --malicious 0.4 --scale 20
  --filter-max-norm 3 --filter-collusion 0.1 --quiet)

export FL_BUILD_DIR=$BLD FL_NO_BUILD=1 FL_BENCH_OUT=$OUT
t=$SECONDS
"$BLD/bench/fl/fl_bench" "${JOB[@]}" --filter-rule ledger --out "$OUT/plain" --name job \
  >"$OUT/plain.out" 2>&1
rc=$?
check "plain run exits 0 (got $rc)" test "$rc" = 0
# bench_run WHAT OUTFILE ARGS...: bench/run ARGS (150 s at most) into
# OUTFILE; checks its exit status, shows its tail on failure.
bench_run() {
  local what=$1 out=$2 rc
  shift 2
  timeout 150 bash "$SRC/bench/run" "$@" >"$out" 2>&1
  rc=$?
  echo "$what run: $((SECONDS - t)) s"
  check "$what run exits 0 (got $rc)" test "$rc" = 0
  ((rc == 0)) || tail -n 20 "$out"
}
FL_BENCH_LEDGER_TRACE=1 bench_run "plain + ledger" "$OUT/ledger.out" fl --ledger "${JOB[@]}" \
  --out "$OUT/ledger" --name job

last=$(tail -n 1 "$OUT/ledger.out")
check "ledger summary is the last line" grep -q '^{"bench":"fl","mode":"ledger"' <<<"$last"
check "6 rounds through the ledger (clean run + 2 attacks, 2 rounds each)" grep -q '"ledger_rounds":6,' <<<"$last"
check "no round differs from the plain server" grep -q '"mismatches":0,' <<<"$last"
check "every model hash matches its blob" grep -q '"hash_failures":0,' <<<"$last"
check "plain_equal" grep -q '"plain_equal":true' <<<"$last"
# Pipelining (fl_bsrv_submit_early): every client of the clean run and the 3
# honest clients of each update attack submitted while later clients were
# still training; the 2 attackers of signflip/ipm only in the round itself.
check "clean run: 5 of 5 updates submitted early in both rounds" \
  test "$(grep -c '^ledger round [01]: early 5/5 ' "$OUT/ledger.out")" = 2
check "update attacks: 3 of 5 submitted early (attackers at the round) in 4 rounds" \
  test "$(grep -c '^ledger round [01]: early 3/5 ' "$OUT/ledger.out")" = 4

# The runner's own table and files: same accuracy, same per-round accepted
# counts and accuracy in the rounds CSV (all columns but round_ms).
cut -d, -f1-9 "$OUT/plain/job-rounds.csv" >"$OUT/plain.rounds"
cut -d, -f1-9 "$OUT/ledger/job-rounds.csv" >"$OUT/ledger.rounds"
check "rounds CSV: 6 rounds" test "$(wc -l <"$OUT/plain.rounds")" = 7
check "rounds CSV equal (accuracy, f1, accepted, malicious accepted)" \
  cmp -s "$OUT/plain.rounds" "$OUT/ledger.rounds"
acc() { # the accuracy-type fields of the runner's JSON rows (not the timings)
  grep -E '^\{"bench":"fl","mode":"(plain|ledger)","dataset"' "$1" | grep '"rows":' | tail -n 1 |
    grep -o '"rows":.*' |
    grep -oE '"(accuracy|accuracy_sd|precision|recall|f1|fpr|macro_f1|malicious_accepted|benign_accepted|asr)":[^,}]*'
}
check "same accuracy rows (table JSON)" test "$(acc "$OUT/plain.out")" = "$(acc "$OUT/ledger.out")"
check "accuracy rows present" test -n "$(acc "$OUT/plain.out")"
# The filter had something to do: the sign flipper (norm x20) was rejected
# in at least one round on both sides.
check "sign flippers rejected at submit (3 of 5 accepted, none malicious aggregated)" \
  grep -qE '^csv,fedavg,signflip,1,[12],[0-9.]+,[0-9.]+,0,3$' "$OUT/ledger.rounds"
check "IPM senders accepted at submit but left out by the collusion filter" \
  grep -qE '^csv,fedavg,ipm,1,[12],[0-9.]+,[0-9.]+,0,5$' "$OUT/ledger.rounds"
# Nothing left running.
left=""
if [[ -f "$OUT/fl-net/pids" ]]; then
  while read -r pid name; do
    st=$(ps -o stat= -p "$pid" 2>/dev/null) && [[ "$st" != Z* ]] && left+="$pid($name) "
  done <"$OUT/fl-net/pids"
fi
check "every node stopped (left: $left)" test -z "$left"
check "network ran 8 nodes" test "$(wc -l <"$OUT/fl-net/pids" 2>/dev/null)" = 8

# bench/run fl-round on the same data, 3 rounds: the solo training pass runs
# before the ledger round in rounds 0 and 2 and after it in round 1, and
# each time must give the ledger pass's updates bit for bit (the runner dies
# otherwise); the nodes run under SCHED_IDLE (its default).
t=$SECONDS
bench_run fl-round "$OUT/round.out" fl-round --dataset csv --csv "$OUT/data.csv" \
  --columns label=label --clients 3 --rounds 3 --model logreg --lr 0.05
last=$(tail -n 1 "$OUT/round.out")
check "fl-round summary is the last line" grep -q '^{"bench":"fl-round",' <<<"$last"
check "fl-round: 3 rounds, no mismatch, every hash matches" \
  grep -qE '"rounds":3,.*"mismatches":0,"hash_failures":0' <<<"$last"
check "fl-round: overhead_ms and server_ms_ledger are numbers" \
  grep -qE '"overhead_ms":-?[0-9.]+,.*"server_ms_ledger":[0-9.]+,' <<<"$last"
check "fl-round nodes ran under SCHED_IDLE" grep -q 'nodes under SCHED_IDLE' "$OUT/round.out"

# The figures of docs/experiments.md section 5: the accuracy plot from the two
# runs' curves, and fl-round-sweep (one run at 2 and at 3 clients, 1 round)
# with its CSV, summary and overhead plot.
plot=$SRC/bench/fl/plot.sh
bash "$plot" accuracy "$OUT/acc.svg" "test" "$OUT/plain/job-curves.csv" \
  "$OUT/ledger/job-curves.csv" 2>/dev/null
check "accuracy plot written" grep -q '<svg' "$OUT/acc.svg"
check "accuracy plot: a bad curves file is refused" \
  bash -c "! bash '$plot' accuracy '$OUT/x.svg' t '$OUT/plain/job-curves.csv' '$OUT/none.csv' 2>/dev/null"
t=$SECONDS
bench_run fl-round-sweep "$OUT/sweep.out" fl-round-sweep --runs 1 --clients 2,3 --rounds 1 \
  --dataset csv --csv "$OUT/data.csv" --columns label=label --model logreg --lr 0.05
last=$(tail -n 1 "$OUT/sweep.out")
check "sweep summary: 2 and 3 clients, one run each, no mismatch" grep -qE \
  '^\{"bench":"fl-round-sweep","sizes":\[\{"clients":2,"runs":1,.*"mismatches":0\},\{"clients":3,"runs":1,.*"mismatches":0\}\]\}$' \
  <<<"$last"
check "sweep CSV: a header and 2 numeric rows" test "$(grep -cE \
  '^[23],1,[0-9.]+,[0-9.]+,-?[0-9.]+,[0-9.]+,0$' "$OUT/fl-round-sweep/sweep.csv")" = 2
check "sweep kept both summaries" test "$(grep -c '"bench":"fl-round"' \
  "$OUT/fl-round-sweep/runs.jsonl")" = 2
check "sweep overhead plot written" grep -q '<svg' "$OUT/fl-round-sweep/overhead.svg"
check "sweep refuses a bad --runs" bash -c "! bash '$SRC/bench/run' fl-round-sweep --runs 0 2>/dev/null"

echo "fl ledger test: $CHECKS checks passed, $FAILS failed"
if ((FAILS)); then
  diff "$OUT/plain.rounds" "$OUT/ledger.rounds" | head -20
  FL_TEST_KEEP=1
  exit 1
fi
exit 0
