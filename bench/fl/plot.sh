#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/fl/plot.sh: the SVG figures of docs/experiments.md section 5, drawn
# with gnuplot from the CSV files the benchmarks write (nothing is measured
# here; see bench/README.md for how each input is made).
#
#   plot.sh accuracy OUT.svg TITLE PLAIN_CURVES.csv LEDGER_CURVES.csv
#       accuracy per round of every (rule/attack) column: plain FL as lines,
#       the ledger run as points on them (they must coincide).
#   plot.sh overhead OUT.svg SWEEP.csv
#       fl-round-sweep's per-run rows: round time plain and ledger (mean per
#       client count, min-max bars) and the overhead, against the client count.
set -euo pipefail

die() {
  echo "plot.sh: $*" >&2
  exit 2
}

command -v gnuplot >/dev/null || die "gnuplot is not installed (make deps installs it)"
[[ $# -ge 2 ]] || die "usage: plot.sh accuracy|overhead OUT.svg ..."
kind=$1 out=$2
shift 2

# ncols FILE: the number of comma-separated columns of FILE's header.
ncols() { head -1 "$1" | awk -F, '{print NF}'; }

plot_accuracy() {
  [[ $# -eq 3 ]] || die "usage: plot.sh accuracy OUT.svg TITLE PLAIN_CURVES LEDGER_CURVES"
  local title=$1 plain=$2 ledger=$3 n
  [[ -s $plain && -s $ledger ]] || die "missing curves file: $plain or $ledger"
  n=$(ncols "$plain")
  [[ $n -eq $(ncols "$ledger") ]] || die "$plain and $ledger have different columns"
  gnuplot <<GP
set terminal svg size 820,480 font 'sans,11' noenhanced
set output '$out'
set datafile separator ','
set key outside right
set grid
set xlabel 'round'
set ylabel 'accuracy (KDDTest+)'
set title '$title'
plot for [i=2:$n] '$plain' using 1:i with lines lw 2 lc i title columnheader(i).' plain', \
     for [i=2:$n] '$ledger' using 1:i with points pt 6 ps 1.2 lc i title columnheader(i).' ledger'
GP
}

# The sweep CSV: clients,run,round_ms_plain,round_ms_ledger,overhead_ms,
# server_ms_ledger,mismatches. gnuplot gets one row per client count:
# clients, then mean/min/max of plain, ledger and overhead.
plot_overhead() {
  [[ $# -eq 1 ]] || die "usage: plot.sh overhead OUT.svg SWEEP.csv"
  local sweep=$1 agg
  [[ -s $sweep ]] || die "missing sweep file: $sweep"
  agg=$(mktemp)
  awk -F, 'NR > 1 {
      c = $1; n[c]++
      for (k = 3; k <= 5; k++) {
        s[c, k] += $k
        if (n[c] == 1 || $k < lo[c, k]) lo[c, k] = $k
        if (n[c] == 1 || $k > hi[c, k]) hi[c, k] = $k
      }
    }
    END {
      for (c in n) {
        line = c
        for (k = 3; k <= 5; k++) line = line " " s[c, k] / n[c] " " lo[c, k] " " hi[c, k]
        print line
      }
    }' "$sweep" | sort -n >"$agg"
  gnuplot <<GP
set terminal svg size 820,480 font 'sans,11' noenhanced
set output '$out'
set key bottom right box opaque
set grid
set logscale y
set xlabel 'clients'
set ylabel 'ms per round (log scale)'
set title 'plain FL vs the ledger, NSL-KDD MLP, 127.0.0.1 (mean of the runs, min-max bars)'
set xrange [0:*]
plot '$agg' using 1:2:3:4 with yerrorlines lw 2 title 'round, plain', \
     '$agg' using 1:5:6:7 with yerrorlines lw 2 title 'round, ledger', \
     '$agg' using 1:8:9:10 with yerrorlines lw 2 title 'overhead (ledger - plain)', \
     40 with lines dt 2 lc rgb 'red' title 'target at 10 clients: 40 ms'
GP
  rm -f "$agg"
}

case "$kind" in
  accuracy) plot_accuracy "$@" ;;
  overhead) plot_overhead "$@" ;;
  *) die "unknown figure '$kind' (accuracy, overhead)" ;;
esac
echo "plot.sh: wrote $out" >&2
