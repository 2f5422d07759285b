#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Usage: promtool-check.sh <ops_metrics_sample binary>
# Pipes the sample exposition into `promtool check metrics` (Debian package
# `prometheus`). Exit 77 (ctest SKIP_RETURN_CODE) when promtool is missing.
set -u
sample=$1
if ! command -v promtool >/dev/null 2>&1; then
  echo "SKIP: promtool not found; install Debian's prometheus package" \
       "(apt-get install --no-install-recommends prometheus)"
  exit 77
fi
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
"$sample" >"$out" || { echo "FAIL: $sample exited with $?"; exit 1; }
[ -s "$out" ] || { echo "FAIL: empty exposition"; exit 1; }
promtool check metrics <"$out"
rc=$?
if [ "$rc" -eq 0 ]; then
  echo "promtool check metrics: OK ($(wc -l <"$out") lines)"
  exit 0
fi
echo "FAIL: promtool check metrics exited with $rc on:"
cat "$out"
exit 1
