# SPDX-License-Identifier: Apache-2.0
#
# ledger_net.sh: starts and stops the fedledger network of the ledger FL
# benchmarks (bench/run fl --ledger, bench/run fl-round, the fl integration
# test). Sourced, not run. It reuses make demo's helpers
# (scripts/demo/lib.sh: templates, free ports, readiness probes, a PID table
# so that exactly the processes started here are stopped) and this
# folder's templates (net/*.in), which differ from the demo's in what
# matters for round latency (see net/network.yaml.in and
# docs/experiments.md section 5).
#
#   ledger_net_up BUILD_DIR RUN_DIR N_CLIENTS
#       wipes RUN_DIR (only if it is empty or an earlier run folder), makes
#       crypto material with ceil(N/2) clients per organisation, the genesis
#       block with BUILD_DIR's mlupdate chaincode, starts 4 orderers (PBFT
#       f = 1) and Org1, Org2 with 2 peers each on free 127.0.0.1 ports,
#       waits until all are ready and writes RUN_DIR/net.conf (the file
#       fl_bench --ledger-net reads). Returns non-zero with a message on
#       failure (what it started is still recorded for ledger_net_down).
#   ledger_net_down
#       stops every process ledger_net_up started (SIGTERM, then SIGKILL
#       after 10 s), by PID.
#
# Environment: FL_BENCH_BATCH_TIMEOUT (default 2ms), FL_BENCH_BATCH (block
# size, default max(N, 10)), FL_BENCH_WORKERS (chaincode workers per peer,
# default 2), FL_BENCH_SYNC=1 (orderers fsync), FL_BENCH_REQUEST_TIMEOUT
# (orderers' pbft.request_timeout, default 5s), FL_BENCH_NODE_LOG (warn),
# FL_BENCH_PIN=1 (every node on the machine's last CPU, taskset; bench/run
# puts the runner, i.e. the clients, on CPU 0: clients that train on their
# own hardware, as edge devices do, instead of sharing cores with the nodes),
# FL_BENCH_IDLE=1 (every node under SCHED_IDLE, chrt --idle: it runs only on
# a CPU that nothing else wants, so the runner's training, the edge devices'
# work, is never preempted by a node; bench/run fl-round's default).

LEDGER_NET_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/demo/lib.sh
source "$LEDGER_NET_SRC/scripts/demo/lib.sh"
declare -A PROC_PID=()

ln_say() { echo "ledger-net: $*" >&2; }

ledger_net_up() {
  local build=$1 n=$3 i
  RUN=$2
  local bin=$build/bin tpl=$LEDGER_NET_SRC/bench/fl/net
  local fed=$bin/fedledger so=$build/chaincode/mlupdate.so
  local f
  for f in "$fed" "$bin/fedledger-orderer" "$bin/fedledger-peer" "$so"; do
    [[ -e "$f" ]] || { ln_say "missing $f (build fedledger fedledger-orderer fedledger-peer fl_cc_mlupdate)"; return 1; }
  done
  if [[ -f "$RUN/pids" ]] && (($(count_alive "$RUN/pids") > 0)); then
    ln_say "stopping processes left by an earlier run in $RUN"
    stop_pids "$RUN/pids"
  fi
  if [[ -d "$RUN" && ! -f "$RUN/pids" && -n "$(ls -A "$RUN" 2>/dev/null)" ]]; then
    ln_say "$RUN exists and is not a ledger-net run folder: refusing to wipe it"
    return 1
  fi
  rm -rf "$RUN" && mkdir -p "$RUN/logs" "$RUN/chaincode" "$RUN/data" || return 1
  : >"$RUN/pids"
  local users=$(((n + 1) / 2))
  ((users < 1)) && users=1
  local batch=${FL_BENCH_BATCH:-$((n > 10 ? n : 10))}
  local log=${FL_BENCH_NODE_LOG:-warn}
  local sync=false
  [[ "${FL_BENCH_SYNC:-0}" == 1 ]] && sync=true
  cp "$so" "$RUN/chaincode/mlupdate.so"
  fill "$tpl/crypto-config.yaml.in" "$RUN/crypto-config.yaml" USERS=$users || return 1
  "$fed" cryptogen generate --config "$RUN/crypto-config.yaml" --output "$RUN/organizations" \
    >"$RUN/logs/cryptogen.log" 2>&1 || { ln_say "cryptogen failed ($RUN/logs/cryptogen.log)"; return 1; }
  local ord_port=() peer_port=() ev_port=() ops_port=() pin=()
  local cpu="" idle=""
  [[ "${FL_BENCH_PIN:-0}" == 1 ]] && cpu=$(($(nproc) - 1)) && pin=(taskset -c "$cpu")
  [[ "${FL_BENCH_IDLE:-0}" == 1 ]] && idle=1 && pin=(chrt --idle 0 "${pin[@]}")
  local names=(peer0.org1.example.com peer1.org1.example.com peer0.org2.example.com peer1.org2.example.com)
  local doms=(org1.example.com org1.example.com org2.example.com org2.example.com)
  local msps=(Org1MSP Org1MSP Org2MSP Org2MSP)
  for i in 0 1 2 3; do
    take_port "ord_port[i]" && take_port "peer_port[i]" && take_port "ev_port[i]" &&
      take_port "ops_port[i]" || return 1
  done
  fill "$tpl/network.yaml.in" "$RUN/network.head" BATCH="$batch" \
    BATCH_TIMEOUT="${FL_BENCH_BATCH_TIMEOUT:-2ms}" || return 1
  {
    cat "$RUN/network.head"
    echo "orderers:"
    for i in 0 1 2 3; do
      echo "  - {id: $i, mspid: OrdererMSP, host: 127.0.0.1, port: ${ord_port[i]}, msp_dir: ordererOrganizations/example.com/orderers/orderer$i.example.com/msp}"
    done
    echo "peers:"
    for i in 0 1 2 3; do
      echo "  - {mspid: ${msps[i]}, name: ${names[i]}, host: 127.0.0.1, port: ${peer_port[i]}, events_port: ${ev_port[i]}}"
    done
  } >"$RUN/network.yaml" || return 1
  "$fed" genesis -c "$RUN/network.yaml" -o "$RUN/genesis.block" >"$RUN/logs/genesis.log" 2>&1 ||
    { ln_say "genesis failed ($RUN/logs/genesis.log)"; return 1; }
  for i in 0 1 2 3; do
    fill "$tpl/orderer.yaml.in" "$RUN/orderer$i.yaml" ID=$i PORT="${ord_port[i]}" RUN="$RUN" \
      DATA_DIR="$RUN/data/orderer$i" LOG="$log" SYNC=$sync \
      REQUEST_TIMEOUT="${FL_BENCH_REQUEST_TIMEOUT:-5s}" \
      NODE_DIR="$RUN/organizations/ordererOrganizations/example.com/orderers/orderer$i.example.com" || return 1
    start_proc "orderer$i" "$RUN/logs/orderer$i.log" "${pin[@]}" "$bin/fedledger-orderer" --config "$RUN/orderer$i.yaml"
  done
  for i in 0 1 2 3; do
    fill "$tpl/core.yaml.in" "$RUN/peer$i.yaml" NAME="${names[i]}" RUN="$RUN" \
      DATA_DIR="$RUN/data/${names[i]}" LOG="$log" OPS_PORT="${ops_port[i]}" \
      WORKERS="${FL_BENCH_WORKERS:-2}" \
      NODE_DIR="$RUN/organizations/peerOrganizations/${doms[i]}/peers/${names[i]}" || return 1
    start_proc "${names[i]}" "$RUN/logs/${names[i]}.log" "${pin[@]}" "$bin/fedledger-peer" --config "$RUN/peer$i.yaml"
  done
  for i in 0 1 2 3; do
    wait_until 60 "orderer$i" eval "proc_running orderer$i && listening ${ord_port[i]}" ||
      { ln_say "orderer$i did not start ($RUN/logs/orderer$i.log)"; return 1; }
  done
  for i in 0 1 2 3; do
    wait_until 60 "${names[i]}" eval "proc_running ${names[i]} && [[ \$(http_status ${ops_port[i]} /healthz) == 200 ]]" ||
      { ln_say "${names[i]} not healthy ($RUN/logs/${names[i]}.log)"; return 1; }
  done
  local o1=$RUN/organizations/peerOrganizations/org1.example.com
  local o2=$RUN/organizations/peerOrganizations/org2.example.com
  cat >"$RUN/net.conf" <<NET
channel fedledger
org Org1MSP $o1 org1.example.com 127.0.0.1:${peer_port[0]} 127.0.0.1:${peer_port[1]}
org Org2MSP $o2 org2.example.com 127.0.0.1:${peer_port[2]} 127.0.0.1:${peer_port[3]}
users $users
NET
  ln_say "4 orderers + 4 peers ready in $RUN (block <= $batch tx, batch_timeout ${FL_BENCH_BATCH_TIMEOUT:-2ms}, $users clients per org${cpu:+, nodes pinned to CPU $cpu}${idle:+, nodes under SCHED_IDLE})"
}

ledger_net_down() {
  [[ -n "${RUN:-}" && -f "$RUN/pids" ]] || return 0
  stop_pids "$RUN/pids"
  [[ -z "$STOP_UNCLEAN" ]] || ln_say "did not exit cleanly: $STOP_UNCLEAN (logs in $RUN/logs)"
}
