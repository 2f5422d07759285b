#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# build-offline.sh: builds the fedledger image on a machine that reaches no
# container registry, from this machine alone:
#
#   1. the base image (fedledger-base:bookworm, once): a Debian bookworm
#      root file system made with `debootstrap --variant=minbase` from the
#      Debian mirror apt already uses here (read from /etc/apt/sources.list
#      and /etc/apt/sources.list.d/*; never another host), with only the
#      runtime libraries the binaries link against, slimmed (no apt lists,
#      package cache, docs, man pages, locales) and `docker import`ed;
#   2. a small build context: docker/config/, docker/fedledger-probe and
#      dist/ = the binaries and chaincode .so files of a local build tree
#      (stripped copies);
#   3. `docker build --target prebuilt` of docker/Dockerfile FROM that base:
#      the same base stage (user, directories, configuration) as the normal
#      multi-stage build, and the same image name and tag, fedledger:<version>
#      with the CMake project version.
#
# Usage: docker/build-offline.sh [--build-dir DIR] [--tag IMAGE] [--base IMAGE]
#                                [--rebuild-base] [--mirror URL]
#   --build-dir DIR  CMake build tree with bin/ and chaincode/ (default:
#                    $FL_BUILD_DIR or <repo>/build); must not be a sanitizer
#                    build (the image has no sanitizer runtimes)
#   --tag IMAGE      image to build (default fedledger:<version>)
#   --base IMAGE     base image name (default fedledger-base:bookworm)
#   --rebuild-base   make the base again even if it exists
#   --mirror URL     Debian mirror (default: the bookworm source apt uses)
#
# Needs: docker, and for the base (first run only) root and debootstrap
# (installed with apt-get when missing and running as root).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

die() { echo "build-offline: $*" >&2; exit 1; }
log() { echo "build-offline: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

version=$(sed -n 's/^project(fedledger VERSION \([0-9][0-9.]*\).*/\1/p' "$repo/CMakeLists.txt" | head -1)
[[ -n "$version" ]] || die "cannot read the project version from $repo/CMakeLists.txt"

build_dir=${FL_BUILD_DIR:-$repo/build}
tag=${FL_IMAGE:-fedledger:$version}
base=${FL_BASE_IMAGE:-fedledger-base:bookworm}
rebuild_base=0
mirror=""
while (($#)); do
  case "$1" in
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --tag) tag=${2:?}; shift 2 ;;
    --base) base=${2:?}; shift 2 ;;
    --rebuild-base) rebuild_base=1; shift ;;
    --mirror) mirror=${2:?}; shift 2 ;;
    -h|--help) sed -n '3,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# The runtime libraries: the same list as the Dockerfile's base stage.
RUNTIME_PKGS=(libuv1 libprotobuf-c1 librocksdb7.8 libssl3 libnanomsg5 libyaml-0-2 zlib1g
              ca-certificates)
BINS=(fedledger fedledger-orderer fedledger-peer fedledger-edge fedledger-keeper)
CHAINCODES=(kvstore mlupdate)

docker info >/dev/null 2>&1 || die "no Docker engine answers 'docker info'"
# Without the buildx plugin a DOCKER_BUILDKIT=1 in the environment makes
# `docker build` fail; the legacy builder builds the prebuilt target fine.
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi

# ---- the binaries -----------------------------------------------------------
build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "no build tree at '$build_dir'"
for b in "${BINS[@]}"; do
  [[ -x "$build_dir/bin/$b" ]] || die "missing $build_dir/bin/$b (build it: cmake --build $build_dir --target $b)"
done
for c in "${CHAINCODES[@]}"; do
  [[ -f "$build_dir/chaincode/$c.so" ]] || die "missing $build_dir/chaincode/$c.so"
done
if ldd "$build_dir/bin/fedledger-peer" | grep -Eq 'lib(asan|ubsan|tsan)'; then
  die "$build_dir is a sanitizer build; build the image from a normal build tree"
fi

# ---- the Debian mirror apt uses ---------------------------------------------
# The first deb source of suite bookworm, deb822 (*.sources) or one-line
# (*.list) format.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ / bookworm / && enabled != "no" && uri != "")
          { print uri; found = 1; exit }
        types = suites = uri = enabled = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:" { $1 = ""; types = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "enabled:" { enabled = tolower($2) }
      END { if (!found) flush() }' "$f"
  done | head -1 | grep . && return 0
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                       if ($(i + 1) == "bookworm") { print $i; exit } }' | grep .
}

# ---- 1. the base image ------------------------------------------------------
t_all=$(now)
if ((rebuild_base)) || ! docker image inspect "$base" >/dev/null 2>&1; then
  t0=$(now)
  [[ $(id -u) -eq 0 ]] || die "making the base image needs root (debootstrap); run as root once, or docker load a saved $base"
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; } ||
      die "cannot install debootstrap"
  fi
  [[ -n "$mirror" ]] || mirror=$(apt_mirror) || die "no bookworm source in /etc/apt/sources.list*; pass --mirror URL"
  work=$(mktemp -d "${TMPDIR:-/tmp}/fl-base-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  include=$(IFS=,; echo "${RUNTIME_PKGS[*]}")
  log "debootstrap --variant=minbase bookworm from $mirror (+ $include)"
  if ! debootstrap --variant=minbase --include="$include" bookworm "$work/rootfs" "$mirror" \
       >"$work/debootstrap.log" 2>&1; then
    tail -20 "$work/debootstrap.log" >&2
    die "debootstrap failed"
  fi
  r=$work/rootfs
  # Slim it: the image never runs apt (no lists, no cache), no docs.
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
         "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
         "$r"/usr/share/locale/* "$r"/var/log/* "$r"/tmp/* "$r"/debootstrap
  # The mirror apt used inside the chroot stays in its sources.list, which
  # is what a user of the base would expect (it names the same mirror).
  tar --numeric-owner -C "$r" -c . |
    docker import --change 'CMD ["/bin/bash"]' \
      --message "fedledger offline base: debootstrap minbase bookworm + runtime libraries" \
      - "$base" >/dev/null
  rm -rf "$work"
  trap - EXIT
  log "base $base made in $(since "$t0") s"
else
  log "base $base exists (--rebuild-base to make it again)"
fi

# ---- 2. the build context ---------------------------------------------------
t0=$(now)
ctx=$(mktemp -d "${TMPDIR:-/tmp}/fl-ctx-XXXXXX")
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/docker" "$ctx/dist/bin" "$ctx/dist/lib/chaincode"
cp -r "$here/config" "$ctx/docker/config"
cp "$here/fedledger-probe" "$ctx/docker/fedledger-probe"
chmod 0755 "$ctx/docker/fedledger-probe"
for b in "${BINS[@]}"; do cp "$build_dir/bin/$b" "$ctx/dist/bin/$b"; done
for c in "${CHAINCODES[@]}"; do cp "$build_dir/chaincode/$c.so" "$ctx/dist/lib/chaincode/$c.so"; done
if command -v strip >/dev/null; then
  strip --strip-unneeded "$ctx"/dist/bin/* "$ctx"/dist/lib/chaincode/*.so
fi
chmod 0755 "$ctx"/dist/bin/*
chmod 0644 "$ctx"/dist/lib/chaincode/*.so

# ---- 3. the image -----------------------------------------------------------
log "docker build --target prebuilt FROM $base -> $tag"
if ! docker build -q -f "$here/Dockerfile" --target prebuilt \
     --build-arg BASE_IMAGE="$base" --build-arg VERSION="$version" \
     --label org.opencontainers.image.revision="$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)" \
     -t "$tag" "$ctx" >"$ctx/build.log" 2>&1; then
  cat "$ctx/build.log" >&2
  die "docker build failed"
fi
log "image $tag built in $(since "$t0") s"

# Every binary finds every library it links against, and runs.
missing=$(docker run --rm --entrypoint /bin/sh "$tag" -c \
  'for f in /opt/fedledger/bin/fedledger /opt/fedledger/bin/fedledger-* /opt/fedledger/lib/chaincode/*.so; do
     case "$f" in */fedledger-probe) continue ;; esac
     ldd "$f" | sed -n "s|^|$f: |; /not found/p"; done') ||
  die "cannot run a container of $tag"
[[ -z "$missing" ]] || die "libraries missing in $tag:"$'\n'"$missing"
docker run --rm "$tag" fedledger --help >/dev/null || die "fedledger --help fails in $tag"
[[ "$(docker run --rm "$tag" id -un)" == fedledger ]] || die "$tag does not run as user fedledger"

size=$(docker image inspect -f '{{.Size}}' "$tag")
log "done: $tag ($((size / 1000000)) MB) in $(since "$t_all") s"
