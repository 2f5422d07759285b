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
#   plot.sh overhead OUT.svg SUMMARY.csv
#       fl-round-sweep's summary.csv: round time plain and ledger (mean per
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

# fl-round-sweep's summary.csv: clients, runs, then mean/min/max of the
# plain round, the ledger round and the overhead (columns 3-11).
plot_overhead() {
  [[ $# -eq 1 ]] || die "usage: plot.sh overhead OUT.svg SUMMARY.csv"
  local sum=$1
  [[ -s $sum ]] || die "missing summary file: $sum"
  gnuplot <<GP
set terminal svg size 820,480 font 'sans,11' noenhanced
set output '$out'
set datafile separator ','
set key bottom right box opaque
set grid
set logscale y
set xlabel 'clients'
set ylabel 'ms per round (log scale)'
set title 'plain FL vs the ledger, NSL-KDD MLP, 127.0.0.1 (mean of the runs, min-max bars)'
set xrange [0:*]
plot '$sum' using 1:3:4:5 skip 1 with yerrorlines lw 2 title 'round, plain', \
     '$sum' using 1:6:7:8 skip 1 with yerrorlines lw 2 title 'round, ledger', \
     '$sum' using 1:9:10:11 skip 1 with yerrorlines lw 2 title 'overhead (ledger - plain)', \
     40 with lines dt 2 lc rgb 'red' title 'target at 10 clients: 40 ms'
GP
}

case "$kind" in
  accuracy) plot_accuracy "$@" ;;
  overhead) plot_overhead "$@" ;;
  *) die "unknown figure '$kind' (accuracy, overhead)" ;;
esac
echo "plot.sh: wrote $out" >&2
