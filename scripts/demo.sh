#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# demo.sh: the one-command local network demo (`make demo`, README command
# 1). `make demo` installs the packages and builds first, then runs
#
#   bash scripts/demo.sh BUILD_DIR
#
# which, in BUILD_DIR/demo-run (wiped at start; logs stay there afterwards):
#   1. makes crypto material (`fedledger cryptogen generate`) and the genesis
#      block (`fedledger genesis`, with BUILD_DIR's mlupdate chaincode);
#   2. starts 4 fedledger-orderer (PBFT, f = 1) and 2 organisations x 2
#      fedledger-peer on 127.0.0.1, on free ports chosen now, and waits until
#      every orderer listens and every peer's /healthz answers 200;
#   3. creates an FL task (`fedledger task create`: trimmed mean, a max_norm
#      outlier filter, automatic revocation), starts 5 fedledger-edge clients
#      (4 honest, 1 sign-flipping with a large norm) on shards of NSL-KDD
#      from ../shared/datasets (a generated dataset when it is missing, which
#      is said at the start) and a fedledger-keeper, and prints one line per
#      closed round;
#   4. prints the provenance report with the CLI: model history, the last
#      round in detail, the revoked client, ledger verify;
#   5. stops every process it started, by PID (also on failure or Ctrl-C).
# Exit 0 only when all of it worked: every round closed, the attacker was
# rejected and revoked, the ledger verified.
#
# Environment: FL_DEMO_DIR (run folder, default BUILD_DIR/demo-run),
# FL_DEMO_ROUNDS (default 5), FL_DEMO_DATASETS (dataset folder, default
# ../shared/datasets next to the repository, or $FL_SHARED_DIR/datasets),
# FL_DEMO_DATASET=generated (force the generated dataset), FL_DEMO_LOG (log
# spec of the nodes, default info). docs/operations.md explains the pieces.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
[[ "$BUILD" == /* ]] || BUILD=$REPO/$BUILD
# shellcheck source=demo/lib.sh
source "$REPO/scripts/demo/lib.sh"
TPL=$REPO/scripts/demo

BIN=$BUILD/bin
FED=$BIN/fedledger
MLUPDATE_SO=$BUILD/chaincode/mlupdate.so
RUN=${FL_DEMO_DIR:-$BUILD/demo-run}
[[ "$RUN" == /* ]] || RUN=$PWD/$RUN
ROUNDS=${FL_DEMO_ROUNDS:-5}
NODE_LOG=${FL_DEMO_LOG:-info}
TASK=ids-demo
NEDGE=5
ATTACKER=4 # the last edge: Org2MSP:client3@org2.example.com
declare -A PROC_PID=()

T0=$SECONDS
say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
die() {
  printf '\ndemo: FAILED: %s\n' "$*" >&2
  printf 'demo: process logs are in %s\n' "$RUN/logs" >&2
  exit 1
}

for f in "$FED" "$BIN/fedledger-orderer" "$BIN/fedledger-peer" "$BIN/fedledger-edge" \
  "$BIN/fedledger-keeper" "$MLUPDATE_SO"; do
  [[ -e "$f" ]] || die "missing $f: build first (make build, or cmake --build $BUILD)"
done
command -v ss >/dev/null || die "ss (iproute2) not found: run make deps"

# ---- the run folder ------------------------------------------------------------
# Processes of an earlier run that was killed before it could clean up: the
# PIDs it recorded, if they still run from this folder.
n=$(count_alive "$RUN/pids")
if ((n > 0)); then
  echo "demo: stopping $n processes left by an earlier run that did not finish ($RUN/pids)"
  stop_pids "$RUN/pids"
fi
if [[ "$RUN" == / || "$RUN" == "$REPO" || "$RUN" == "$BUILD" || "$RUN" == "${HOME:-/}" ]]; then
  die "refusing to use $RUN as the run folder (it is wiped at start)"
fi
if [[ -d "$RUN" && ! -f "$RUN/pids" && -n "$(ls -A "$RUN" 2>/dev/null)" ]]; then
  die "$RUN exists and is not a demo run folder (no pids file): refusing to wipe it"
fi
rm -rf "$RUN" || die "cannot remove $RUN"
mkdir -p "$RUN/logs" "$RUN/chaincode" "$RUN/data" || die "cannot create $RUN"
: >"$RUN/pids"

# stop_all: stops whatever still runs of this run's processes; false when
# one did not exit 0 on SIGTERM or could not be stopped.
stop_all() {
  local n ok=0
  n=$(count_alive "$RUN/pids")
  if ((n > 0)); then
    printf '\n== stopping %d processes (by PID, from %s)\n' "$n" "$RUN/pids"
    stop_pids "$RUN/pids"
  fi
  if [[ -n "$STOP_UNCLEAN" ]]; then
    echo "demo: did not exit cleanly on SIGTERM: $STOP_UNCLEAN(logs in $RUN/logs)" >&2
    ok=1
  fi
  n=$(count_alive "$RUN/pids")
  if ((n > 0)); then
    echo "demo: $n processes could not be stopped: $(cut -d' ' -f1 "$RUN/pids" | tr '\n' ' ')" >&2
    ok=1
  fi
  return $ok
}
STOPPING=0
cleanup() {
  local rc=$?
  ((STOPPING)) && return
  STOPPING=1
  trap '' INT TERM HUP PIPE
  stop_all || { ((rc == 0)) && rc=1; }
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT
trap 'echo "demo: terminated"; exit 143' TERM
trap 'exit 129' HUP
# Output piped into a reader that went away (`make demo | head`): stop too.
trap 'exit 141' PIPE

# ---- the dataset -------------------------------------------------------------------
DATASETS=${FL_DEMO_DATASETS:-${FL_SHARED_DIR:-$REPO/../shared}/datasets}
[[ -d "$DATASETS" ]] && DATASETS=$(cd "$DATASETS" && pwd)
NSLKDD=$DATASETS/nsl-kdd/KDDTrain+_20Percent.txt.gz
if [[ "${FL_DEMO_DATASET:-}" != generated && -r "$NSLKDD" ]]; then
  DATASET=nsl-kdd
  DATA_NOTE="NSL-KDD ($NSLKDD), binary normal/attack, 5 IID shards"
else
  DATASET=generated
  why="$NSLKDD not found"
  [[ "${FL_DEMO_DATASET:-}" == generated ]] && why="FL_DEMO_DATASET=generated"
  DATA_NOTE="GENERATED DATA ($why): every edge trains on a seeded Gaussian mixture (20 features, 2 classes) instead of NSL-KDD"
fi

cat <<EOF
fedledger demo: a consortium on 127.0.0.1 running federated learning end to end
  network   4 orderers (PBFT f=1), Org1 and Org2 with 2 peers each, mutual TLS
  task      $TASK: $ROUNDS rounds, trimmed mean (f=1), 5 edge clients (1 malicious: sign flip x50)
  data      $DATA_NOTE
  run dir   $RUN (process logs in $RUN/logs)
EOF
if [[ $DATASET == generated ]]; then
  say ""
  say "  *** NOTE: NSL-KDD is not available; this run uses a GENERATED dataset. ***"
fi

# ---- 1. crypto material and genesis ---------------------------------------------
step "crypto material and genesis block"
cp "$MLUPDATE_SO" "$RUN/chaincode/mlupdate.so"
"$FED" cryptogen generate --config "$REPO/crypto-config/crypto-config.yaml" \
  --output "$RUN/organizations" >"$RUN/logs/cryptogen.log" 2>&1 ||
  die "cryptogen failed (see $RUN/logs/cryptogen.log)"

ORD_PORT=()
for i in 0 1 2 3; do take_port "ORD_PORT[i]" || die "no free port"; done
PEER_NAME=(peer0.org1.example.com peer1.org1.example.com peer0.org2.example.com peer1.org2.example.com)
PEER_DOM=(org1.example.com org1.example.com org2.example.com org2.example.com)
PEER_MSP=(Org1MSP Org1MSP Org2MSP Org2MSP)
PEER_PORT=() EV_PORT=() OPS_PORT=()
for i in 0 1 2 3; do
  take_port "PEER_PORT[i]" && take_port "EV_PORT[i]" && take_port "OPS_PORT[i]" ||
    die "no free port"
done
{
  cat "$TPL/network.yaml.in"
  echo "orderers:"
  for i in 0 1 2 3; do
    echo "  - {id: $i, mspid: OrdererMSP, host: 127.0.0.1, port: ${ORD_PORT[i]}, msp_dir: ordererOrganizations/example.com/orderers/orderer$i.example.com/msp}"
  done
  echo "peers:"
  for i in 0 1 2 3; do
    echo "  - {mspid: ${PEER_MSP[i]}, name: ${PEER_NAME[i]}, host: 127.0.0.1, port: ${PEER_PORT[i]}, events_port: ${EV_PORT[i]}}"
  done
} >"$RUN/network.yaml"
"$FED" genesis -c "$RUN/network.yaml" -o "$RUN/genesis.block" >"$RUN/logs/genesis.log" 2>&1 ||
  die "genesis failed (see $RUN/logs/genesis.log)"
say "organizations/ (cryptogen), network.yaml, genesis.block with chaincode mlupdate ($(sha256sum "$MLUPDATE_SO" | cut -c1-16)...)"

# ---- 2. orderers and peers -----------------------------------------------------------
step "starting 4 orderers and 4 peers"
for i in 0 1 2 3; do
  fill "$TPL/orderer.yaml.in" "$RUN/orderer$i.yaml" ID=$i PORT="${ORD_PORT[i]}" RUN="$RUN" \
    DATA_DIR="$RUN/data/orderer$i" LOG="$NODE_LOG" \
    NODE_DIR="$RUN/organizations/ordererOrganizations/example.com/orderers/orderer$i.example.com" ||
    die "orderer$i.yaml"
  start_proc "orderer$i" "$RUN/logs/orderer$i.log" "$BIN/fedledger-orderer" --config "$RUN/orderer$i.yaml"
done
for i in 0 1 2 3; do
  fill "$TPL/core.yaml.in" "$RUN/peer$i.yaml" NAME="${PEER_NAME[i]}" RUN="$RUN" \
    DATA_DIR="$RUN/data/${PEER_NAME[i]}" LOG="$NODE_LOG" OPS_PORT="${OPS_PORT[i]}" \
    NODE_DIR="$RUN/organizations/peerOrganizations/${PEER_DOM[i]}/peers/${PEER_NAME[i]}" ||
    die "peer$i.yaml"
  start_proc "${PEER_NAME[i]}" "$RUN/logs/${PEER_NAME[i]}.log" "$BIN/fedledger-peer" --config "$RUN/peer$i.yaml"
done

node_ready_orderer() { proc_running "orderer$1" && listening "${ORD_PORT[$1]}"; }
node_ready_peer() { proc_running "${PEER_NAME[$1]}" && [[ "$(http_status "${OPS_PORT[$1]}" /healthz)" == 200 ]]; }
for i in 0 1 2 3; do
  wait_until 30 "orderer$i (127.0.0.1:${ORD_PORT[i]})" node_ready_orderer "$i" ||
    { tail -n 15 "$RUN/logs/orderer$i.log" >&2; die "orderer$i did not start (see $RUN/logs/orderer$i.log)"; }
  say "orderer$i.example.com  127.0.0.1:${ORD_PORT[i]}  ready"
done
for i in 0 1 2 3; do
  wait_until 30 "${PEER_NAME[i]}" node_ready_peer "$i" ||
    { tail -n 15 "$RUN/logs/${PEER_NAME[i]}.log" >&2; die "${PEER_NAME[i]} not healthy (see $RUN/logs/${PEER_NAME[i]}.log)"; }
  say "${PEER_NAME[i]}  127.0.0.1:${PEER_PORT[i]}  events :${EV_PORT[i]}  /healthz :${OPS_PORT[i]}  ready"
done

# The CLI: Org1's admin through peer0.org1 (relative paths: from the file).
cat >"$RUN/cli.yaml" <<EOF
peer: 127.0.0.1:${PEER_PORT[0]}
mspid: Org1MSP
msp_dir: organizations/peerOrganizations/org1.example.com/users/Admin@org1.example.com/msp
tls_dir: organizations/peerOrganizations/org1.example.com/users/Admin@org1.example.com/tls
genesis: genesis.block
timeout: 20s
EOF
export FEDLEDGER_CLI_CONFIG=$RUN/cli.yaml
unset FEDLEDGER_PEER FEDLEDGER_MSPID FEDLEDGER_MSP_DIR FEDLEDGER_TLS_DIR FEDLEDGER_GENESIS \
  FEDLEDGER_CHANNEL FEDLEDGER_EVENTS FEDLEDGER_TIMEOUT
fed() { "$FED" "$@"; }

# ---- 3. the FL task, edges and keeper ---------------------------------------------------
step "creating FL task $TASK"
# The model's input size is the number of encoded features of the edges'
# data. For NSL-KDD it depends on the categories in the file: one edge run
# against a 1-input probe task reports it (and exits, as the layout differs).
create_task() { # file -> 0 when committed
  local tries
  for tries in $(seq 1 20); do
    fed task create --file "$1" >"$RUN/logs/task-create.out" 2>&1 && return 0
    grep -q 'exists already' "$RUN/logs/task-create.out" && return 0
    sleep 0.5
  done
  return 1
}
edge_id() { # i -> "mspid user peer-index"
  case $1 in
    0) echo "Org1MSP client1@org1.example.com 0" ;;
    1) echo "Org1MSP client2@org1.example.com 1" ;;
    2) echo "Org2MSP client1@org2.example.com 2" ;;
    3) echo "Org2MSP client2@org2.example.com 3" ;;
    4) echo "Org2MSP client3@org2.example.com 2" ;;
  esac
}
edge_args() { # i task rounds -> EDGE_ARGS: the edge's command line
  local mspid user p dom
  read -r mspid user p <<<"$(edge_id "$1")"
  dom=${user#*@}
  local u=$RUN/organizations/peerOrganizations/$dom/users/$user
  EDGE_ARGS=("$BIN/fedledger-edge" --config "$RUN/edge.yaml" --mspid "$mspid"
    --msp-dir "$u/msp" --tls-dir "$u/tls"
    --gateway "127.0.0.1:${PEER_PORT[p]}" --events "tcp://127.0.0.1:${EV_PORT[p]}"
    --task "$2" --rounds "$3" --partition "$1/$NEDGE" --train-seed $((100 + $1)))
}
fill "$TPL/edge.yaml.in" "$RUN/edge.yaml" TASK=$TASK ROUNDS="$ROUNDS" DATASET=$DATASET \
  DATA_DIR="$DATASETS" NEDGE=$NEDGE MAX_ROWS=0 LR=0.01 || die "edge.yaml"

if [[ $DATASET == nsl-kdd ]]; then
  fill "$TPL/task.yaml.in" "$RUN/probe-task.yaml" TASK=features-probe INPUTS=1 MIN_UPDATES=1 \
    MAX_NORM=0 || die "probe task"
  create_task "$RUN/probe-task.yaml" || die "task create failed: $(cat "$RUN/logs/task-create.out")"
  edge_args 0 features-probe 1
  "${EDGE_ARGS[@]}" >"$RUN/logs/features-probe.log" 2>&1 </dev/null
  INPUTS=$(sed -n 's/.*local data .* features=\([0-9]*\) .*/\1/p' "$RUN/logs/features-probe.log" | head -1)
  [[ -n "$INPUTS" ]] || die "could not learn the feature count (see $RUN/logs/features-probe.log)"
else
  INPUTS=20
fi
fill "$TPL/task.yaml.in" "$RUN/task.yaml" TASK=$TASK INPUTS="$INPUTS" MIN_UPDATES=4 \
  MAX_NORM=20 || die "task.yaml"
create_task "$RUN/task.yaml" || die "task create failed: $(cat "$RUN/logs/task-create.out")"
sed 's/^/  /' "$RUN/logs/task-create.out"
say "  model: logistic regression, $INPUTS inputs; rule trimmed mean f=1; max_norm 20; revoke after >50% of >=2 rejected"

step "running $ROUNDS rounds: 5 edge clients + round keeper"
fill "$TPL/keeper.yaml.in" "$RUN/keeper.yaml" RUN="$RUN" TASK=$TASK ROUNDS="$ROUNDS" \
  GATEWAY_PORT="${PEER_PORT[0]}" EVENTS_PORT="${EV_PORT[0]}" || die "keeper.yaml"
start_proc keeper "$RUN/logs/keeper.log" "$BIN/fedledger-keeper" --config "$RUN/keeper.yaml"
for i in $(seq 0 $((NEDGE - 1))); do
  # Edge 0 stays one round longer: it reports the held-out accuracy of the
  # last global model before it is stopped.
  n=$ROUNDS
  ((i == 0)) && n=$((ROUNDS + 1))
  extra=()
  ((i == ATTACKER)) && extra=(--attack signflip --attack-scale 50)
  edge_args "$i" $TASK $n
  start_proc "edge$i" "$RUN/logs/edge$i.log" "${EDGE_ARGS[@]}" "${extra[@]}"
  read -r mspid user _ <<<"$(edge_id "$i")"
  if ((i == ATTACKER)); then
    say "edge$i  $mspid:$user  MALICIOUS (sign flip x50)  via ${PEER_NAME[$(edge_id $i | cut -d' ' -f3)]}"
  else
    say "edge$i  $mspid:$user  honest  via ${PEER_NAME[$(edge_id $i | cut -d' ' -f3)]}"
  fi
done
say "keeper  Org1MSP:Admin@org1.example.com  via ${PEER_NAME[0]}"
say ""
printf '%-6s %-9s %-9s %-18s %-9s %s\n' ROUND ACCEPTED REJECTED "GLOBAL MODEL" ACCURACY ELAPSED
TR=${EPOCHREALTIME/[.,]/}
elapsed() { # seconds since the edges started, 0.1 s precision
  local us=$((${EPOCHREALTIME/[.,]/} - TR))
  printf '%d.%ds' $((us / 1000000)) $((us / 100000 % 10))
}
accuracy_of() { # round -> held-out accuracy of its model (edge 0's log) or ""
  sed -n "s/.*global model task=$TASK round=$(($1 + 1)) held_out_accuracy=\([0-9.]*\).*/\1/p" \
    "$RUN/logs/edge0.log" | head -1
}
r=0
deadline=$((SECONDS + 60 + 20 * ROUNDS))
while ((r < ROUNDS)); do
  ((SECONDS < deadline)) || die "round $r did not close in time (see $RUN/logs/keeper.log)"
  proc_running keeper || [[ -n "$(fed model show --task $TASK --round $r --json 2>/dev/null | grep '"status":"CLOSED"')" ]] ||
    die "the keeper stopped early (see $RUN/logs/keeper.log)"
  out=$(fed model show --task $TASK --round $r --json 2>/dev/null) || { sleep 0.5; continue; }
  [[ "$(json_field "$out" status)" == CLOSED ]] || { sleep 0.5; continue; }
  acc=""
  for _ in $(seq 1 25); do
    acc=$(accuracy_of $r)
    [[ -n "$acc" ]] && break
    proc_running edge0 || break
    sleep 0.2
  done
  model=$(json_field "$out" model)
  printf '%-6s %-9s %-9s %-18s %-9s %s\n' "$r" "$(json_field "$out" accepted)" \
    "$(json_field "$out" rejected)" "${model:0:16}" "${acc:--}" "$(elapsed)"
  r=$((r + 1))
done

# The keeper and the edges finish by themselves (edge 0 after its extra
# round, which stays open: the keeper stops after $ROUNDS).
for i in $(seq 0 $((NEDGE - 1))) keeper; do
  name=$i
  [[ $i == keeper ]] || name=edge$i
  wait_until 30 "$name to finish" eval '! proc_running '"$name" || die "$name did not finish"
  wait "${PROC_PID[$name]}"
  rc=$?
  ((rc == 0)) || die "$name exited with $rc (see $RUN/logs/$name.log)"
done

# ---- 4. the provenance report -------------------------------------------------------------
ATT_ID="Org2MSP:client3@org2.example.com"
step "provenance report (fedledger CLI, as Org1's admin through peer0.org1)"
say "\$ fedledger model history --task $TASK"
fed model history --task $TASK || die "model history failed"
last=$((ROUNDS - 1))
say ""
say "\$ fedledger model show --task $TASK --round $last"
fed model show --task $TASK --round $last || die "model show failed"
say ""
say "\$ fedledger client show --client $ATT_ID"
fed client show --client "$ATT_ID" || die "client show failed"
say ""
say "\$ fedledger ledger verify"
fed ledger verify
vrc=$?

# ---- checks --------------------------------------------------------------------------------
ok=1
cjson=$(fed client show --client "$ATT_ID" --json 2>/dev/null)
if [[ "$(json_field "$cjson" revoked)" != true ]]; then
  say "CHECK FAILED: $ATT_ID was not revoked"; ok=0
fi
rejected_rounds=0
unrecorded=0 # closed rounds without an update of it (exit 3, not found): it was not in yet
for r in $(seq 0 $last); do
  u=$(fed update show --task $TASK --round $r --client "$ATT_ID" --json 2>/dev/null) ||
    { (($? == 3)) && unrecorded=$((unrecorded + 1)); continue; }
  [[ "$(json_field "$u" status)" == REJECTED ]] && rejected_rounds=$((rejected_rounds + 1))
  [[ "$(json_field "$u" status)" == ACCEPTED ]] && { say "CHECK FAILED: the attacker was ACCEPTED in round $r"; ok=0; }
done
((rejected_rounds >= 2)) || { say "CHECK FAILED: the attacker was rejected in only $rejected_rounds rounds"; ok=0; }
((vrc == 0)) || { say "CHECK FAILED: ledger verify exited $vrc"; ok=0; }

stop_all && say "every process stopped cleanly ($(wc -l <"$RUN/pids") started, none left)" || ok=0

step "summary"
say "rounds completed: $ROUNDS of $ROUNDS"
say "malicious client: $ATT_ID REJECTED in $rejected_rounds of $ROUNDS rounds$( ((unrecorded > 0)) && echo " (in $unrecorded its update was not in yet when the keeper closed the round)"), revoked: $(json_field "$cjson" revoked) (by $(json_field "$cjson" revoked_by))"
say "ledger verify: $([[ $vrc == 0 ]] && echo OK || echo FAILED)"
say "logs: $RUN/logs   CLI config: $RUN/cli.yaml (FEDLEDGER_CLI_CONFIG=$RUN/cli.yaml fedledger ...)"
say "time: $((SECONDS - T0))s"
((ok)) || die "some checks failed (above)"
say "demo: OK"
exit 0
