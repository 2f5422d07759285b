#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs the Debian packages fedledger needs to build, test and run, and
# only those that are missing. Idempotent: a second run installs nothing and
# takes well under a second. Needs root or sudo when something is missing.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  libuv1-dev libprotobuf-c-dev protobuf-c-compiler
  librocksdb-dev libssl-dev openssl
  libnanomsg-dev libyaml-dev libcmocka-dev zlib1g-dev
  clang libclang-rt-14-dev      # libFuzzer and sanitizer runtimes (fuzz build)
  valgrind                      # leak checks in tests
  gnuplot-nox                   # experiment plots (bench/)
  prometheus                    # promtool: checks /metrics output in tests
  procps psmisc iproute2        # process and network helpers used by tests
  debootstrap                   # offline Docker base image (docker/build-offline.sh)
)

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$st" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
