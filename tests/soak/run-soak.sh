#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# run-soak.sh [BUILD_DIR]: the soak test (`make soak`; not part of
# `make test`). In BUILD_DIR (default build):
#
#   1. starts a network with tests/soak/soak_net (4 fedledger-orderer, 2x2
#      fedledger-peer, kvstore; real TLS and RocksDB) and keeps it up;
#   2. measures the maximum end-to-end throughput with bench/e2e's load
#      generator (e2e_bench, closed loop, SOAK_MAX_SECONDS) through the
#      gateways of peer0.org1 and peer0.org2, unless SOAK_RATE is given;
#   3. offers half of it (open loop, e2e_bench --rate) for SOAK_SECONDS, in
#      windows of SOAK_WINDOW seconds (one e2e_bench run each: its summary
#      gives that window's committed tx/s, p50, p99, errors, invalid);
#   4. samples VmRSS of every network process (orderers, peers, the peers'
#      chaincode workers) from /proc/<pid>/status every SOAK_SAMPLE seconds
#      into rss.csv (t_s,name,pid,rss_kb);
#   5. judges: PASS when
#        - no process died, no window had an error or an invalid commit,
#          and every window committed >= 90% of the offered rate;
#        - each process's mean RSS over the last SOAK_RSS_SPAN seconds is
#          at most SOAK_RSS_PCT (5) % above its mean over the first
#          SOAK_RSS_SPAN seconds after SOAK_WARMUP (or at most 1 MiB above,
#          for small processes whose RSS moves by pages). The span (120 s)
#          covers one memtable flush cycle of a loaded peer, within which
#          its RSS swings by ~7 MB: a shorter span compares two points of
#          that sawtooth rather than two levels;
#        - the mean p99 of the last third of the windows is at most
#          SOAK_P99_RATIO (1.5) x the mean p99 of the first third.
#
# Output in SOAK_OUT (default BUILD_DIR/soak-out/<date>): rss.csv,
# windows.jsonl (one e2e summary per window), max.jsonl, soak_net.log,
# summary.txt, and the network's folder fl-peers-*/ (its logs; its ledgers
# too after a FAIL); the last line printed is a JSON summary. Exit 0 = PASS.
#
# Environment (defaults): SOAK_SECONDS (600), SOAK_WINDOW (60), SOAK_SAMPLE
# (5), SOAK_WARMUP (120), SOAK_RSS_SPAN (120), SOAK_MAX_SECONDS (20),
# SOAK_RATE (measured / 2),
# SOAK_RSS_PCT (5), SOAK_P99_RATIO (1.5), SOAK_OUT, SOAK_BIN_DIR (BUILD/bin).
#
# Also written: peer-mem.csv, per peer every SOAK_SAMPLE s: anonymous and
# file RSS (smaps_rollup) and the ledger's RocksDB memory from its /metrics.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-${FL_BUILD_DIR:-build}}
[[ "$BUILD" == /* ]] || BUILD=$REPO/$BUILD
SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_WINDOW=${SOAK_WINDOW:-60}
SOAK_SAMPLE=${SOAK_SAMPLE:-5}
SOAK_WARMUP=${SOAK_WARMUP:-120}
SOAK_RSS_SPAN=${SOAK_RSS_SPAN:-120}
if ((SOAK_RSS_SPAN < SOAK_SAMPLE)); then SOAK_RSS_SPAN=$SOAK_SAMPLE; fi
SOAK_MAX_SECONDS=${SOAK_MAX_SECONDS:-20}
SOAK_RSS_PCT=${SOAK_RSS_PCT:-5}
SOAK_P99_RATIO=${SOAK_P99_RATIO:-1.5}
OUT=${SOAK_OUT:-$BUILD/soak-out/$(date +%Y%m%d-%H%M%S)}

die() {
  echo "soak: FAILED: $*" >&2
  exit 1
}
((SOAK_WINDOW > 0 && SOAK_SECONDS >= SOAK_WINDOW)) || die "SOAK_SECONDS must be >= SOAK_WINDOW > 0"
if ((SOAK_WARMUP + SOAK_WINDOW > SOAK_SECONDS)); then
  SOAK_WARMUP=$((SOAK_SECONDS / 5))
  echo "soak: SOAK_WARMUP lowered to $SOAK_WARMUP s for a $SOAK_SECONDS s run"
fi
if ((SOAK_WARMUP + 2 * SOAK_RSS_SPAN > SOAK_SECONDS)); then
  SOAK_RSS_SPAN=$(((SOAK_SECONDS - SOAK_WARMUP) / 2))
  ((SOAK_RSS_SPAN >= SOAK_SAMPLE)) || SOAK_RSS_SPAN=$SOAK_SAMPLE
fi

SOAK_NET=$BUILD/tests/soak/soak_net
E2E=$BUILD/bench/e2e/e2e_bench
for f in "$SOAK_NET" "$E2E" "$BUILD/bin/fedledger-peer" "$BUILD/bin/fedledger-orderer"; do
  [[ -x "$f" ]] || die "missing $f (build first: cmake --build $BUILD --target soak_net e2e_bench)"
done
mkdir -p "$OUT" || die "cannot create $OUT"

# SOAK_BIN_DIR: where the network's binaries are taken from (default
# BUILD/bin); e.g. a folder of symlinks to them with fedledger-peer replaced
# by a wrapper that runs the peer under a heap profiler or another
# environment.
export FL_SOURCE_DIR=$REPO FL_BINARY_DIR=$BUILD FL_PEER_BIN_DIR=${SOAK_BIN_DIR:-$BUILD/bin}
export FL_KVSTORE_SO=$BUILD/chaincode/kvstore.so
export FL_COUNTER_SO=$BUILD/tests/integration/peer/cc/counter.so

NET_PID=""
SAMPLER_PID=""
cleanup() {
  [[ -n "$SAMPLER_PID" ]] && kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
  [[ -n "${MEM_SAMPLER_PID:-}" ]] && kill "$MEM_SAMPLER_PID" 2>/dev/null &&
    wait "$MEM_SAMPLER_PID" 2>/dev/null
  if [[ -n "$NET_PID" ]] && kill -0 "$NET_PID" 2>/dev/null; then
    kill -TERM "$NET_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$NET_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NET_PID" 2>/dev/null
    wait "$NET_PID" 2>/dev/null
  fi
  NET_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. the network ------------------------------------------------------------
# The network's folder (logs, ledgers) lives in $OUT, not /tmp: it is kept
# for a look after a failure; after a PASS only its logs stay.
ENVF=$OUT/net.env
LIFETIME=$((SOAK_SECONDS + SOAK_MAX_SECONDS + SOAK_SECONDS / 2 + 300))
TMPDIR=$OUT FL_TEST_KEEP=1 "$SOAK_NET" "$ENVF" "$LIFETIME" >"$OUT/soak_net.log" 2>&1 &
NET_PID=$!
for _ in $(seq 1 600); do
  [[ -f "$ENVF" ]] && break
  kill -0 "$NET_PID" 2>/dev/null || die "soak_net exited (see $OUT/soak_net.log)"
  sleep 0.2
done
[[ -f "$ENVF" ]] || die "the network did not come up in 120 s (see $OUT/soak_net.log)"
# shellcheck disable=SC1090
source "$ENVF"
echo "soak: network up ($SOAK_DIR): $SOAK_PIDS"
E2E_NET=(--network "$SOAK_PKI" --peers "$SOAK_GW1,$SOAK_GW2" --channel fedledger)

json_num() { # line key -> number ("" when absent)
  sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" <<<"$1" | head -1
}

# ---- 2. maximum throughput -------------------------------------------------------
if [[ -z "${SOAK_RATE:-}" ]]; then
  "$E2E" "${E2E_NET[@]}" --seconds "$SOAK_MAX_SECONDS" >"$OUT/max.jsonl" 2>"$OUT/max.err" ||
    die "the max-throughput run failed (see $OUT/max.err)"
  MAX_TPS=$(json_num "$(tail -1 "$OUT/max.jsonl")" tx_per_s)
  [[ -n "$MAX_TPS" ]] || die "no tx_per_s in $OUT/max.jsonl"
  SOAK_RATE=$(awk -v m="$MAX_TPS" 'BEGIN { r = int(m / 2); print r < 1 ? 1 : r }')
  echo "soak: maximum $MAX_TPS tx/s (closed loop, $SOAK_MAX_SECONDS s); soaking at $SOAK_RATE tx/s"
else
  MAX_TPS=""
  echo "soak: soaking at SOAK_RATE=$SOAK_RATE tx/s"
fi

# ---- 4. the RSS sampler ------------------------------------------------------------
procs() { # name pid per line: the nodes and the peers' chaincode workers
  local np name pid k
  for np in $SOAK_PIDS; do
    name=${np%%:*} pid=${np##*:}
    echo "$name $pid"
    if [[ $name == peer* ]]; then
      k=0
      for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        echo "$name-cc$k $c"
        k=$((k + 1))
      done
    fi
  done
}
procs >"$OUT/procs.txt"
T0=$(date +%s)
sampler() {
  echo "t_s,name,pid,rss_kb" >"$OUT/rss.csv"
  while :; do
    local t name pid rss
    t=$(($(date +%s) - T0))
    while read -r name pid; do
      rss=$(awk '/^VmRSS:/ { print $2 }' /proc/"$pid"/status 2>/dev/null)
      echo "$t,$name,$pid,${rss:-dead}" >>"$OUT/rss.csv"
    done <"$OUT/procs.txt"
    sleep "$SOAK_SAMPLE"
  done
}
# Per peer, every SOAK_SAMPLE s, what the RSS is made of, into peer-mem.csv:
# anonymous and file-backed RSS (/proc/<pid>/smaps_rollup) and the ledger's
# RocksDB memory from the peer's /metrics (memtables summed over the CFs,
# table readers outside the block cache, block cache usage and pinned).
metric_sum() { # metrics-text name -> the sum of its series ("" when absent)
  awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF; f = 1 } END { if (f) printf "%.0f", s }' <<<"$1"
}
mem_sampler() {
  echo "t_s,name,rss_kb,anon_kb,file_kb,memtables_b,table_readers_b,block_cache_b,block_cache_pinned_b,malloc_in_use_b,malloc_free_b,malloc_mmapped_b" \
    >"$OUT/peer-mem.csv"
  while :; do
    local t np name port pid m anon file
    t=$(($(date +%s) - T0))
    for np in ${SOAK_OPS:-}; do
      name=${np%%:*} port=${np##*:}
      pid=$(awk -v n="$name" '$1 == n { print $2 }' "$OUT/procs.txt")
      [[ -n "$pid" ]] || continue
      read -r anon file < <(awk '/^Rss:/ { r = $2 } /^Anonymous:/ { a = $2 }
        END { print a + 0, r - a }' /proc/"$pid"/smaps_rollup 2>/dev/null)
      m=$(curl -s --max-time 2 "http://127.0.0.1:$port/metrics" 2>/dev/null)
      echo "$t,$name,$(awk '/^VmRSS:/ { print $2 }' /proc/"$pid"/status 2>/dev/null),${anon:-},${file:-},$(metric_sum "$m" fl_peer_ledger_memtable_bytes),$(metric_sum "$m" fl_peer_ledger_table_readers_bytes),$(metric_sum "$m" fl_peer_ledger_block_cache_bytes),$(metric_sum "$m" fl_peer_ledger_block_cache_pinned_bytes),$(metric_sum "$m" 'fl_peer_malloc_bytes{kind="in_use"}'),$(metric_sum "$m" 'fl_peer_malloc_bytes{kind="free"}'),$(metric_sum "$m" 'fl_peer_malloc_bytes{kind="mmapped"}')" \
        >>"$OUT/peer-mem.csv"
    done
    sleep "$SOAK_SAMPLE"
  done
}
sampler &
SAMPLER_PID=$!
MEM_SAMPLER_PID=""
if command -v curl >/dev/null; then
  mem_sampler &
  MEM_SAMPLER_PID=$!
fi

# ---- 3. the soak ------------------------------------------------------------------
NWIN=$((SOAK_SECONDS / SOAK_WINDOW))
: >"$OUT/windows.jsonl"
echo "soak: $NWIN windows of $SOAK_WINDOW s, RSS every $SOAK_SAMPLE s -> $OUT"
printf '%-7s %-8s %-9s %-9s %-9s %s\n' WINDOW TX/S P50_MS P99_MS ERRORS INVALID
for w in $(seq 1 "$NWIN"); do
  "$E2E" "${E2E_NET[@]}" --rate "$SOAK_RATE" --seconds "$SOAK_WINDOW" >"$OUT/win$w.jsonl" \
    2>"$OUT/win$w.err"
  rc=$?
  line=$(tail -1 "$OUT/win$w.jsonl")
  [[ $line == *'"seconds"'* ]] || line="{\"bench\":\"e2e\",\"errors\":1,\"rc\":$rc}"
  echo "{\"window\":$w,\"rc\":$rc,${line#\{}" >>"$OUT/windows.jsonl"
  printf '%-7s %-8s %-9s %-9s %-9s %s\n' "$w" "$(json_num "$line" tx_per_s)" \
    "$(json_num "$line" p50_ms)" "$(json_num "$line" p99_ms)" "$(json_num "$line" errors)" \
    "$(json_num "$line" invalid)"
done
kill "$SAMPLER_PID" 2>/dev/null
wait "$SAMPLER_PID" 2>/dev/null
SAMPLER_PID=""
if [[ -n "$MEM_SAMPLER_PID" ]]; then
  kill "$MEM_SAMPLER_PID" 2>/dev/null
  wait "$MEM_SAMPLER_PID" 2>/dev/null
  MEM_SAMPLER_PID=""
fi
T_END=$(($(date +%s) - T0))

# ---- 5. the verdict -----------------------------------------------------------------
fail=()
dead=$(awk -F, '$4 == "dead" { print $2 }' "$OUT/rss.csv" | sort -u | tr '\n' ' ')
[[ -z "$dead" ]] || fail+=("processes died: $dead")
read -r errs inval short n_win <<<"$(awk -v rate="$SOAK_RATE" '
  function num(k,   m) { if (match($0, "\"" k "\":[-0-9.eE+]*")) { m = substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3); return m + 0 } return 0 }
  { e += num("errors") + (num("rc") != 0); i += num("invalid"); if (num("tx_per_s") < 0.9 * rate) s++; n++ }
  END { printf "%d %d %d %d\n", e, i, s, n }' "$OUT/windows.jsonl")"
((errs == 0)) || fail+=("$errs errors")
((inval == 0)) || fail+=("$inval invalid commits")
((short == 0)) || fail+=("$short windows committed < 90% of $SOAK_RATE tx/s")
read -r p99_first p99_last <<<"$(awk '
  function num(k) { if (match($0, "\"" k "\":[-0-9.eE+]*")) return substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) + 0; return 0 }
  { p[NR] = num("p99_ms") }
  END { t = int(NR / 3); if (t < 1) t = 1; for (k = 1; k <= t; k++) { a += p[k]; b += p[NR - t + k] }
        printf "%.1f %.1f\n", a / t, b / t }' "$OUT/windows.jsonl")"
p99_ok=$(awk -v a="$p99_first" -v b="$p99_last" -v r="$SOAK_P99_RATIO" 'BEGIN { print (b <= a * r) ? 1 : 0 }')
((p99_ok)) || fail+=("p99 grew: ${p99_first} ms (first third) -> ${p99_last} ms (last third), limit x$SOAK_P99_RATIO")
# RSS per process: mean over [warmup, warmup + span) vs over the last span.
awk -F, -v w0="$SOAK_WARMUP" -v win="$SOAK_RSS_SPAN" -v tend="$T_END" -v pct="$SOAK_RSS_PCT" '
  NR == 1 || $4 == "dead" { next }
  { if ($1 >= w0 && $1 < w0 + win) { b[$2] += $4; nb[$2]++ }
    if ($1 >= tend - win) { e[$2] += $4; ne[$2]++ } }
  END {
    for (k in b) if (nb[k] && ne[k]) {
      base = b[k] / nb[k]; end = e[k] / ne[k]; g = (end - base) / base * 100
      ok = (g <= pct || end - base <= 1024) ? "ok" : "GROWTH"
      tb += base; te += end
      printf "%-16s %10.0f %10.0f %+7.2f%% %s\n", k, base, end, g, ok
    }
    if (tb > 0) printf "%-16s %10.0f %10.0f %+7.2f%% total\n", "ALL", tb, te, (te - tb) / tb * 100
  }' "$OUT/rss.csv" | sort >"$OUT/rss-growth.txt"
grown=$(awk '$5 == "GROWTH" { print $1 }' "$OUT/rss-growth.txt" | tr '\n' ' ')
[[ -z "$grown" ]] || fail+=("RSS grew > ${SOAK_RSS_PCT}%: $grown")
[[ -s "$OUT/rss-growth.txt" ]] || fail+=("no RSS samples after the warm-up")
total_growth=$(awk '$1 == "ALL" { print $4 }' "$OUT/rss-growth.txt")
max_growth=$(awk '$1 != "ALL" { g = $4 + 0; if (g > m || NR == 1) m = g } END { printf "%+.2f%%", m }' "$OUT/rss-growth.txt")

{
  echo "soak: $SOAK_SECONDS s at $SOAK_RATE tx/s (max ${MAX_TPS:-not measured}), $n_win windows"
  echo "RSS (KB, mean of the first ${SOAK_RSS_SPAN} s after the ${SOAK_WARMUP} s warm-up -> mean of the last ${SOAK_RSS_SPAN} s):"
  echo "process              after-warmup     end   growth"
  cat "$OUT/rss-growth.txt"
  if [[ -s "$OUT/peer-mem.csv" ]]; then
    # Not part of the verdict: where each peer's memory went between the
    # same two windows (KB; anon RSS, the ledger's memtables and block cache,
    # and malloc's free memory), to tell a filling bounded cache from a leak.
    echo "peers' memory (KB, same windows): anon, memtables, block cache, malloc free"
    awk -F, -v w0="$SOAK_WARMUP" -v win="$SOAK_RSS_SPAN" -v tend="$T_END" '
      NR == 1 { next }
      { k = $2; for (c = 4; c <= 11; c++) v[c] = $c + 0
        if ($1 >= w0 && $1 < w0 + win) { nb[k]++; for (c in v) b[k, c] += v[c] }
        if ($1 >= tend - win) { ne[k]++; for (c in v) e[k, c] += v[c] } }
      END { for (k in nb) if (ne[k])
        printf "%-8s anon %6.0f -> %6.0f  memtables %6.0f -> %6.0f  block-cache %6.0f -> %6.0f  malloc-free %6.0f -> %6.0f\n", k,
          b[k, 4] / nb[k], e[k, 4] / ne[k], b[k, 6] / nb[k] / 1024, e[k, 6] / ne[k] / 1024,
          b[k, 8] / nb[k] / 1024, e[k, 8] / ne[k] / 1024, b[k, 11] / nb[k] / 1024, e[k, 11] / ne[k] / 1024 }' \
      "$OUT/peer-mem.csv" | sort
  fi
  echo "p99: first third ${p99_first} ms, last third ${p99_last} ms; errors $errs, invalid $inval"
} | tee "$OUT/summary.txt"
verdict=PASS
((${#fail[@]} == 0)) || verdict=FAIL
for f in "${fail[@]}"; do echo "soak: $f" | tee -a "$OUT/summary.txt"; done
cleanup
if [[ $verdict == PASS ]]; then
  rm -rf "$SOAK_DIR"/odata* "$SOAK_DIR"/pdata* "$SOAK_DIR"/pki "$SOAK_DIR"/cc
fi
echo "soak: $verdict (files in $OUT; the network's logs in $SOAK_DIR)"
printf '{"bench":"soak","seconds":%s,"rate":%s,"max_tx_per_s":"%s","windows":%s,"errors":%s,"invalid":%s,"p99_first_ms":%s,"p99_last_ms":%s,"rss_total_growth":"%s","rss_max_growth":"%s","verdict":"%s"}\n' \
  "$SOAK_SECONDS" "$SOAK_RATE" "${MAX_TPS:-}" "$n_win" "$errs" "$inval" "$p99_first" "$p99_last" \
  "${total_growth:-}" "$max_growth" "$verdict"
[[ $verdict == PASS ]]
