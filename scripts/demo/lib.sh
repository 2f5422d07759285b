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

# port_in_use PORT: true when something listens on 127.0.0.1:PORT (or any
# address) or a connection to it is open.
port_in_use() {
  [[ -n "$(ss -Htan "( sport = :$1 or dport = :$1 )" 2>/dev/null)" ]]
}

# take_port VAR: sets VAR (a name, array elements too: 'P[3]') to a port that
# nobody uses and that this shell has not handed out before. It sets a
# variable instead of printing, because `$(...)` runs in a subshell that
# would forget which ports it handed out.
#
# Ports come from below the kernel's ephemeral range (ip_local_port_range),
# so no outgoing connection takes one between the pick and the node's bind.
# That range from 10000 up is cut into blocks of FL_PORT_SPAN ports (default
# 200); this shell owns block k while it holds flock on
# $TMPDIR/fedledger-ports/k.lock (the peer test harness does the same), so
# tests run side by side by ctest, the demo and a benchmark never pick the
# same port. The lock goes when the shell and the nodes it started (they
# inherit the descriptor) have exited. FL_PORT_BASE names a block outright.
DEMO_PORT_NEXT=-1
take_port() {
  local lo span k dir fd p
  span=${FL_PORT_SPAN:-200}
  if ((DEMO_PORT_NEXT < 0)); then
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    ((lo - 10000 < 2 * span)) && lo=$((10000 + 2 * span))
    DEMO_PORT_BASE=${FL_PORT_BASE:-}
    if [[ -z "$DEMO_PORT_BASE" ]] && command -v flock >/dev/null; then
      dir=${TMPDIR:-/tmp}/fedledger-ports
      mkdir -p "$dir" 2>/dev/null && chmod 1777 "$dir" 2>/dev/null
      for ((k = 0; k < (lo - 10000) / span; k++)); do
        exec {fd}>>"$dir/$k.lock" || continue
        if flock -n "$fd"; then DEMO_PORT_BASE=$((10000 + k * span)); break; fi
        exec {fd}>&-
      done
    fi
    [[ -z "$DEMO_PORT_BASE" ]] &&
      DEMO_PORT_BASE=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000 - span)))
    DEMO_PORT_NEXT=0
  fi
  while ((DEMO_PORT_NEXT < span)); do
    p=$((DEMO_PORT_BASE + DEMO_PORT_NEXT))
    DEMO_PORT_NEXT=$((DEMO_PORT_NEXT + 1))
    port_in_use "$p" && continue
    printf -v "$1" '%s' "$p"
    return 0
  done
  echo "demo: no free port in $DEMO_PORT_BASE..$((DEMO_PORT_BASE + span - 1))" >&2
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
