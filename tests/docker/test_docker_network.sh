#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# test_docker_network.sh (ctest label docker): the docker-compose consortium
# end to end, with the image built from this build tree (offline path).
#
#   1. docker/build-offline.sh: the image (fedledger:<version>-ctest<pid>)
#      from FL_BINARY_DIR's binaries; the base image is made with
#      debootstrap when missing and kept as a cache;
#   2. network.sh up (own project name, generated folder and random host
#      ports): 4 orderers, 2x2 peers, the CLI, the task, 4 edges, a keeper;
#   3. 3 FL rounds close;
#   4. `docker-compose stop` of orderer2 and peer1.org2 (both exit 0 on
#      SIGTERM), and 3 more rounds close without them;
#   5. both start again and are healthy; the rounds go on; then orderer1 is
#      stopped, which leaves {0, 2, 3}: every further block needs
#      orderer2's vote and signature, so rounds closing now prove that the
#      restarted orderer caught up; orderer1 starts again;
#   6. the edges and the keeper stop; every peer reaches the same height
#      (peer1.org2 caught up), `fedledger ledger verify` passes inside the
#      CLI container against every peer (hash links, 2f+1 orderer
#      signatures, every global model blob) and every peer has the same
#      header hash at the tip and at sampled heights (with verified hash
#      links, one equal tip hash means equal chains);
#   7. network.sh down leaves no container and no network but the 8
#      volumes; network.sh clean leaves no container, volume or network of
#      the project and no generated folder.
# Everything the test made is removed on failure too (EXIT trap; a run
# killed with SIGKILL is cleaned up by the next run, by project name).
#
# Exit 77 (ctest SKIP_RETURN_CODE) when no Docker engine answers or the
# build tree is a sanitizer build (the image carries no sanitizer runtime).
set -uo pipefail

src=${FL_SOURCE_DIR:?FL_SOURCE_DIR not set}
bin=${FL_BINARY_DIR:?FL_BINARY_DIR not set}
budget=${FL_DOCKER_TEST_BUDGET:-560} # seconds; ctest's TIMEOUT is 600
t_start=$SECONDS

say() { echo "[$(date +%T) +$((SECONDS - t_start))s] $*" >&2; }

if ! docker_info=$(timeout 20 docker info --format '{{.ServerVersion}}' 2>&1); then
  echo "SKIPPED: no Docker engine (docker info: $(echo "$docker_info" | tail -1))"
  exit 77
fi
if [[ "${FL_SANITIZE:-OFF}" =~ ^(ON|on|1|TRUE|true)$ ]]; then
  echo "SKIPPED: sanitizer build tree ($bin); the image is built from a normal build"
  exit 77
fi
if command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  echo "FAIL: a Docker engine answers but neither docker-compose nor 'docker compose' exists" >&2
  exit 1
fi

version=$(sed -n 's/^project(fedledger VERSION \([0-9][0-9.]*\).*/\1/p' "$src/CMakeLists.txt" | head -1)
export FL_PROJECT=fltest$$
export FL_IMAGE=fedledger:${version}-ctest$$
export FL_NETWORK_DIR
FL_NETWORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fl-docker-XXXXXX")
export FL_PORTS=random
export FL_BUILD_DIR=$bin
export FL_TASK=ctest
export FL_UP_TIMEOUT=180
net=$src/docker/network.sh
ORG=/etc/fedledger/organizations/peerOrganizations
PEERS=(peer0.org1.example.com peer1.org1.example.com peer0.org2.example.com peer1.org2.example.com)

# Leftovers of an earlier run that was killed (SIGKILL skips the trap):
# projects fltest<pid> whose process is gone.
for p in $({ docker ps -a --format '{{.Label "com.docker.compose.project"}}'
             docker volume ls --format '{{.Label "com.docker.compose.project"}}'
             docker network ls --format '{{.Label "com.docker.compose.project"}}'; } 2>/dev/null |
           grep -E '^fltest[0-9]+$' | sort -u); do
  kill -0 "${p#fltest}" 2>/dev/null && continue
  say "removing leftovers of project $p"
  docker rm -f $(docker ps -aq --filter "label=com.docker.compose.project=$p") >/dev/null 2>&1
  docker volume rm $(docker volume ls -q --filter "label=com.docker.compose.project=$p") >/dev/null 2>&1
  docker network rm $(docker network ls -q --filter "label=com.docker.compose.project=$p") >/dev/null 2>&1
  docker rmi "fedledger:${version}-ctest${p#fltest}" >/dev/null 2>&1
done

cleaned=0
cleanup() {
  local rc=$?
  if ((!cleaned)); then
    if ((rc != 0)); then
      say "failed: last lines of every container's log"
      compose logs --tail 15 2>/dev/null | tail -250 >&2
    fi
    "$net" clean >/dev/null 2>&1 || true
  fi
  # Belt and braces: nothing of the project stays, whatever happened.
  docker rm -f $(docker ps -aq --filter "label=com.docker.compose.project=$FL_PROJECT") >/dev/null 2>&1
  docker volume rm $(docker volume ls -q --filter "label=com.docker.compose.project=$FL_PROJECT") >/dev/null 2>&1
  docker network rm $(docker network ls -q --filter "label=com.docker.compose.project=$FL_PROJECT") >/dev/null 2>&1
  docker rmi "$FL_IMAGE" >/dev/null 2>&1
  rm -rf "$FL_NETWORK_DIR" 2>/dev/null
  say "total $((SECONDS - t_start)) s, exit $rc"
  exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

fail() { say "FAIL: $*"; exit 1; }
# Runs a command in its own process group and ends the whole group (the
# command and e.g. the docker-compose it started) after `secs` seconds, so
# that nothing of it is still creating containers when cleanup runs.
bounded() { # secs command...
  local secs=$1 pid dog rc
  shift
  setsid "$@" &
  pid=$!
  setsid bash -c 'sleep "$1"; kill -TERM -- "-$2"; sleep 5; kill -KILL -- "-$2"' _ "$secs" "$pid" \
    >/dev/null 2>&1 &
  dog=$!
  wait "$pid"
  rc=$?
  kill -- "-$dog" 2>/dev/null
  wait "$dog" 2>/dev/null
  return $rc
}
# Seconds left of the budget, at least 1.
left() {
  local l=$((budget - (SECONDS - t_start)))
  echo $((l > 0 ? l : 1))
}
compose() {
  "${COMPOSE[@]}" --env-file "$FL_NETWORK_DIR/compose.env" -p "$FL_PROJECT" \
    -f "$src/docker/docker-compose.yaml" "$@"
}
cli() { compose exec -T cli "$@"; }
# Admin identity flags of the organisation of a peer.
admin_of() {
  local o=org1 m=Org1MSP
  [[ "$1" == *org2* ]] && o=org2 m=Org2MSP
  echo "--peer $1:7051 --mspid $m --msp-dir $ORG/$o.example.com/users/Admin@$o.example.com/msp"
}
rounds_closed() {
  cli fedledger task show --task "$FL_TASK" --json 2>/dev/null |
    sed -n 's/.*"rounds_closed":\([0-9][0-9]*\).*/\1/p'
}
wait_rounds() { # target timeout_s what
  local target=$1 deadline=$((SECONDS + $2)) r=""
  while ((SECONDS < deadline && SECONDS - t_start < budget)); do
    r=$(rounds_closed)
    [[ -n "$r" ]] && ((r >= target)) && { say "$3: $r rounds closed"; return 0; }
    sleep 2
  done
  fail "$3: rounds closed ${r:-?}, wanted $target within $2 s"
}
state_of() { docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(compose ps -q "$1")"; }
health_of() {
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
    "$(compose ps -q "$1")" 2>/dev/null
}
wait_healthy() { # timeout_s services...
  local deadline=$((SECONDS + $1)) s ok
  shift
  while ((SECONDS < deadline)); do
    ok=1
    for s in "$@"; do [[ "$(health_of "$s")" == healthy ]] || ok=0; done
    ((ok)) && return 0
    sleep 2
  done
  fail "not healthy within the time: $(for s in "$@"; do printf '%s=%s ' "$s" "$(health_of "$s")"; done)"
}
height_of() { compose exec -T "$1" fedledger-probe metric fl_peer_ledger_height 2>/dev/null | tr -d '\r'; }
project_objects() { # kind: containers | volumes | networks -> count
  case "$1" in
    containers) docker ps -aq --filter "label=com.docker.compose.project=$FL_PROJECT" ;;
    volumes) docker volume ls -q --filter "label=com.docker.compose.project=$FL_PROJECT" ;;
    networks) docker network ls -q --filter "label=com.docker.compose.project=$FL_PROJECT" ;;
  esac | wc -l
}

# ---- 1. the image -----------------------------------------------------------
t0=$SECONDS
bounded "$(left)" "$src/docker/build-offline.sh" --build-dir "$bin" --tag "$FL_IMAGE" ||
  fail "build-offline.sh failed"
t_image=$((SECONDS - t0))
size=$(docker image inspect -f '{{.Size}}' "$FL_IMAGE")
say "image $FL_IMAGE: $((size / 1000000)) MB, built in ${t_image} s"

# ---- 2. network.sh up -------------------------------------------------------
t0=$SECONDS
bounded "$(left)" "$net" up || fail "network.sh up failed"
t_up=$((SECONDS - t0))
say "network up and healthy in ${t_up} s"

# ---- 3. three rounds ----------------------------------------------------------
wait_rounds 3 120 "with every node"

# ---- 4. one orderer and one peer stopped ---------------------------------------
compose stop orderer2.example.com peer1.org2.example.com || fail "docker-compose stop failed"
for s in orderer2.example.com peer1.org2.example.com; do
  st=$(state_of "$s")
  [[ "$st" == "exited 0" ]] || fail "$s after docker-compose stop: '$st' (want exited 0: clean SIGTERM shutdown)"
done
r0=$(rounds_closed)
[[ -n "$r0" ]] || fail "cannot read the task's rounds"
wait_rounds $((r0 + 3)) 120 "orderer2 and peer1.org2 stopped"

# ---- 5. they start again and catch up ------------------------------------------
compose start orderer2.example.com peer1.org2.example.com || fail "docker-compose start failed"
wait_healthy 120 orderer2.example.com peer1.org2.example.com
r1=$(rounds_closed)
wait_rounds $((r1 + 2)) 120 "orderer2 and peer1.org2 back"
compose stop orderer1.example.com || fail "docker-compose stop orderer1 failed"
r1=$(rounds_closed)
wait_rounds $((r1 + 2)) 150 "orderer1 stopped (blocks need orderer2's signature)"
compose start orderer1.example.com || fail "docker-compose start orderer1 failed"
wait_healthy 120 orderer1.example.com
# (Not `| grep -q`: under pipefail its early exit fails the pipeline.)
edge4_log=$(compose logs --no-color edge4.org2 2>/dev/null)
[[ "$edge4_log" == *"gateway reconnected"* ]] ||
  fail "edge4.org2 never logged 'gateway reconnected' after its peer came back"

# ---- 6. same ledger everywhere, verified ----------------------------------------
compose stop edge1.org1 edge2.org1 edge3.org2 edge4.org2 keeper.org1 || fail "stopping the clients failed"
deadline=$((SECONDS + 90))
prev=""
while :; do
  hs=()
  for p in "${PEERS[@]}"; do hs+=("$(height_of "$p")"); done
  cur="${hs[*]}"
  same=1
  for h in "${hs[@]}"; do [[ -n "$h" && "$h" == "${hs[0]}" ]] || same=0; done
  # All equal, and unchanged since the last poll (nothing in flight).
  ((same)) && [[ "$cur" == "$prev" ]] && break
  ((SECONDS < deadline)) || fail "peers' heights differ: ${PEERS[*]} = $cur"
  prev=$cur
  sleep 3
done
H=${hs[0]}
say "every peer at height $H"
((H > 10)) || fail "height $H is too low for 8+ rounds"

samples="0 1 2 $((H / 4)) $((H / 3)) $((H / 2)) $((2 * H / 3)) $((3 * H / 4)) $((H - 3)) $((H - 2)) $((H - 1))"
ref=""
for p in "${PEERS[@]}"; do
  # shellcheck disable=SC2046
  out=$(cli fedledger ledger verify --json $(admin_of "$p")) || fail "ledger verify against $p failed (exit $?): $out"
  [[ "$out" == *'"ok":true'* ]] || fail "ledger verify on $p: $out"
  [[ "$out" == *"\"height\":$H,"* ]] || fail "ledger verify on $p: height is not $H: ${out:0:200}"
  models=$(sed -n 's/.*"models_verified":\([0-9]*\).*/\1/p' <<<"$out")
  # shellcheck disable=SC2046
  hashes=$(cli bash -c 'for n in '"$samples"'; do
             printf "%s " "$n"
             fedledger block get "$n" --json '"$(admin_of "$p")"' |
               sed -n "s/.*\"header_hash\":\"\([0-9a-f]*\)\".*/\1/p"
           done') || fail "block get on $p failed"
  [[ $(grep -c '^[0-9]* [0-9a-f]\{64\}$' <<<"$hashes") -eq $(wc -w <<<"$samples") ]] ||
    fail "block get on $p: unexpected output: $hashes"
  say "$p: ledger verify ok, height $H, $models global models verified, tip $(tail -1 <<<"$hashes")"
  if [[ -z "$ref" ]]; then ref=$hashes
  elif [[ "$hashes" != "$ref" ]]; then
    fail "block hashes of $p differ from ${PEERS[0]}:"$'\n'"$(diff <(echo "$ref") <(echo "$hashes"))"
  fi
done
rounds=$(rounds_closed)
say "$rounds rounds closed in total; ledgers identical"

# ---- 7. down keeps volumes, clean removes everything ------------------------------
bounded 120 "$net" down || fail "network.sh down failed"
c=$(project_objects containers) v=$(project_objects volumes) n=$(project_objects networks)
((c == 0 && n == 0)) || fail "after down: $c containers, $n networks of $FL_PROJECT remain"
((v == 8)) || fail "after down: $v volumes, want the 8 ledger/orderer volumes kept"
bounded 120 "$net" clean || fail "network.sh clean failed"
cleaned=1
c=$(project_objects containers) v=$(project_objects volumes) n=$(project_objects networks)
((c == 0 && v == 0 && n == 0)) || fail "after clean: $c containers, $v volumes, $n networks remain"
[[ ! -e "$FL_NETWORK_DIR" ]] || fail "after clean: $FL_NETWORK_DIR remains"

say "PASS: image ${t_image} s ($((size / 1000000)) MB), up ${t_up} s, $rounds rounds, height $H"
exit 0
