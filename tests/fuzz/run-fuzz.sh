#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# run-fuzz.sh TARGET [SOURCE_DIR [BUILD_DIR]]
#
# Runs libFuzzer target TARGET for $FL_FUZZ_SECONDS seconds on a copy of its
# seed corpus (tests/fuzz/corpus/TARGET), in a separate clang -DFUZZ=ON tree
# that builds the fuzz targets only: $FL_FUZZ_BUILD_DIR, by default
# build-fuzz next to BUILD_DIR (SOURCE_DIR/build when not given). Exits 77
# (ctest: skipped) when FL_FUZZ_SECONDS is unset or clang is missing, non-zero
# on any crash, leak or sanitizer report; the crashing input is kept in the
# fuzz tree as crash-* / leak-* / timeout-*.
set -euo pipefail
target=${1:?usage: run-fuzz.sh TARGET [SOURCE_DIR [BUILD_DIR]]}
here=$(cd "$(dirname "$0")" && pwd)
src=${2:-$(cd "$here/../.." && pwd)}
bin=${3:-$src/build}
if [ -z "${FL_FUZZ_SECONDS:-}" ]; then
  echo "FL_FUZZ_SECONDS not set: skipping $target (set it to fuzz for that many seconds)"
  exit 77
fi
if ! command -v clang >/dev/null; then
  echo "clang not found: cannot build libFuzzer targets, skipping"
  exit 77
fi
seconds=$FL_FUZZ_SECONDS
if [ -n "${FL_FUZZ_MIN_SECONDS:-}" ] && [ "$seconds" -lt "$FL_FUZZ_MIN_SECONDS" ]; then
  seconds=$FL_FUZZ_MIN_SECONDS
fi
fuzzdir=${FL_FUZZ_BUILD_DIR:-$(dirname "$bin")/build-fuzz}
jobs=${FL_FUZZ_JOBS:-2}

cmake -S "$src" -B "$fuzzdir" -DCMAKE_C_COMPILER=clang -DFUZZ=ON -DBUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$fuzzdir" -j"$jobs" --target "$target"
exe=$(find "$fuzzdir" -type f -name "$target" -perm -u+x | head -n 1)
[ -n "$exe" ] || { echo "fuzz binary $target not found in $fuzzdir"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$src/tests/fuzz/corpus/$target/." "$work/"
echo "fuzzing $target for ${seconds}s on $(ls "$work" | wc -l) seeds"
# libFuzzer's default error exit code is 77, which ctest reads as "skipped":
# make every crash, leak or timeout a plain failure.
"$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -print_final_stats=1 -artifact_prefix="$fuzzdir/$target-" "$work"
