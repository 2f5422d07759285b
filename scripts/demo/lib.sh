# SPDX-License-Identifier: Apache-2.0
#
# lib.sh: helpers of scripts/demo.sh (sourced, not run): templates, free
# ports, readiness probes, and the process table that lets the demo stop
# exactly the processes it started. Needs only bash and iproute2 (`ss`),
# which scripts/deps.sh installs; no python, curl or jq.
#
# Process table: $RUN/pids, one line "PID NAME" per started process. Every
# process is started from this shell with `start_proc`, so $! is the
# program's own PID (bash forks and execs it directly).

# fill TEMPLATE OUT KEY=VALUE...: copies TEMPLATE to OUT replacing @KEY@.
fill() {
  local tpl=$1 out=$2 kv expr=()
  shift 2
  for kv in "$@"; do
    local v=${kv#*=}
    v=${v//\\/\\\\}
    v=${v//|/\\|}
    v=${v//&/\\&}
    expr+=(-e "s|@${kv%%=*}@|${v}|g")
  done
  sed "${expr[@]}" "$tpl" >"$out"
  if grep -q '@[A-Z_]*@' "$out"; then
    echo "demo: unfilled placeholder in $out: $(grep -o '@[A-Z_]*@' "$out" | head -1)" >&2
    return 1
  fi
}

# Ports handed out in this run, so that two picks never collide.
DEMO_PORTS=" "

# port_in_use PORT: true when something listens on 127.0.0.1:PORT (or any
# address) or a connection to it is open.
port_in_use() {
  [[ -n "$(ss -Htan "( sport = :$1 or dport = :$1 )" 2>/dev/null)" ]]
}

# free_port: prints a port that nobody listens on and that this run has not
# handed out yet, taken below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768..60999 by default): a port inside it
# can be taken as the local end of some outgoing connection between the pick
# and the node's bind, which made a node fail to start now and then when
# many tests ran at once.
free_port() {
  local p tries lo=32768 base=10000 span
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
  span=$((lo - base))
  if ((span < 1000)); then base=20000; span=40000; fi
  for tries in $(seq 1 200); do
    p=$((base + (RANDOM * 32768 + RANDOM) % span))
    [[ "$DEMO_PORTS" == *" $p "* ]] && continue
    port_in_use "$p" && continue
    DEMO_PORTS+="$p "
    echo "$p"
    return 0
  done
  echo "demo: no free port found" >&2
  return 1
}

# start_proc NAME LOG CMD...: starts CMD in the background with stdout and
# stderr to LOG and records its PID.
start_proc() {
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid $name" >>"$RUN/pids"
  PROC_PID[$name]=$pid
}

# alive PID: the process exists and is not a zombie.
alive() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n "$st" && "$st" != Z* ]]
}

# stop_pids FILE: SIGTERM to every PID of FILE (edges and keeper first, then
# peers, then orderers: the reverse of the start order), up to 10 s for each
# to exit, then SIGKILL. Only PIDs whose command line still names this run
# folder are signalled, so a PID reused by an unrelated process is left alone.
# STOP_UNCLEAN lists the children of this shell that did not exit 0 (every
# node exits 0 on SIGTERM).
STOP_UNCLEAN=""
stop_pids() {
  local file=$1 pid name mine=() names=() deadline i rc
  [[ -f "$file" ]] || return 0
  while read -r pid name; do
    [[ -n "$pid" ]] || continue
    if alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$RUN/"; then
      mine=("$pid" "${mine[@]}")
      names=("$name" "${names[@]}")
    fi
  done <"$file"
  ((${#mine[@]})) || return 0
  for pid in "${mine[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 10))
  for i in "${!mine[@]}"; do
    pid=${mine[i]}
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if alive "$pid"; then
      echo "demo: ${names[i]} (PID $pid) did not stop after SIGTERM, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    # 127: not a child of this shell (a leftover of an earlier run).
    ((rc == 0 || rc == 127)) || STOP_UNCLEAN+="${names[i]}(exit $rc) "
  done
}

# http_status PORT PATH: the status code of GET http://127.0.0.1:PORT/PATH
# (empty when nothing answers), through bash's /dev/tcp.
http_status() {
  local line=""
  {
    exec 9<>"/dev/tcp/127.0.0.1/$1" || return 0
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&9
    IFS= read -r -t 3 line <&9 || true
    exec 9>&-
  } 2>/dev/null
  line=${line#HTTP/1.? }
  echo "${line%% *}"
}

# listening PORT: something accepts TCP connections on 127.0.0.1:PORT.
listening() {
  [[ -n "$(ss -Htln "( sport = :$1 )" 2>/dev/null)" ]]
}

# wait_until SECONDS WHAT CMD...: runs CMD every 0.2 s until it succeeds;
# false (and a message) after SECONDS.
wait_until() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      echo "demo: $what not ready after ${limit}s" >&2
      return 1
    fi
    sleep 0.2
  done
}

# proc_running NAME: the process NAME started by start_proc is still alive.
proc_running() {
  alive "${PROC_PID[$1]}"
}

# json_field JSON KEY: the first value of "KEY": in a flat JSON text (a
# number, null, true/false or a string without escapes). Enough for the
# CLI's documented --json outputs (docs/cli-json.md) that the demo reads.
json_field() {
  local re="\"$2\":[[:space:]]*(\"[^\"]*\"|[^,}[:space:]]*)"
  [[ "$1" =~ $re ]] || return 1
  local v=${BASH_REMATCH[1]}
  v=${v#\"}
  echo "${v%\"}"
}

# count_alive FILE: how many PIDs of FILE still run from this run folder.
count_alive() {
  local pid name n=0
  if [[ -f "$1" ]]; then
    while read -r pid name; do
      [[ -n "$pid" ]] && alive "$pid" &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$RUN/" && n=$((n + 1))
    done <"$1"
  fi
  echo "$n"
}
