#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# e2e_smoke.sh STANDIN BENCH PKI: runs bench/e2e's program for 2 seconds
# against the gateway stand-in process and checks its JSON summary: some
# transactions committed, none invalid, no errors.
set -eu
STANDIN="$1" BENCH="$2" PKI="$3"
dir=$(mktemp -d /tmp/fl-e2e-smoke-XXXXXX)
spid=
cleanup() {
  exec 3>&- 2>/dev/null || true
  [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
mkfifo "$dir/in"
"$STANDIN" "$PKI" >"$dir/port" <"$dir/in" &
spid=$!
exec 3>"$dir/in"
i=0
while [ ! -s "$dir/port" ]; do
  i=$((i + 1))
  [ $i -lt 100 ] || { echo "stand-in did not start" >&2; exit 1; }
  sleep 0.1
done
port=$(cat "$dir/port")
id="$PKI/peerOrganizations/org1.example.com/users/client1@org1.example.com"
"$BENCH" --seconds 2 --clients 2 --inflight 16 --gateway "127.0.0.1:$port=Org1MSP:$id" \
  >"$dir/out"
cat "$dir/out"
last=$(tail -n 1 "$dir/out")
echo "$last" | grep -q '"bench":"e2e"' || { echo "no summary" >&2; exit 1; }
echo "$last" | grep -q '"invalid":0,' || { echo "invalid transactions" >&2; exit 1; }
echo "$last" | grep -q '"errors":0,' || { echo "errors" >&2; exit 1; }
echo "$last" | grep -q '"committed":0,' && { echo "nothing committed" >&2; exit 1; }
exec 3>&-
wait "$spid"
spid=
