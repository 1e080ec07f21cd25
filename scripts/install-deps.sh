#!/usr/bin/env bash
# Installs the Debian packages Reprise builds and tests with, only when missing.
# PostgreSQL 15 (server and libpq) is always installed: the server links libpq
# and `make test` runs the store suite on a throwaway PostgreSQL cluster too.
# Usage: scripts/install-deps.sh [--browser] [--format] [--fuzz] [--package] [--bench]
#   --browser  Chromium + Node for the UI tests
#   --format   clang-format for `make format`
#   --fuzz     clang and its runtimes (libFuzzer, sanitizers) for `make fuzz`
#   --package  dpkg-dev and systemd (for systemd-analyze) for `make package`
#   --bench    the tools `make bench` compares with and drives (curl, jq, rsync,
#              Ansible, wrk, python3)
set -euo pipefail

packages=(g++ cmake make ninja-build pkg-config libboost-dev libcpp-httplib-dev libsqlitecpp-dev
  libsqlite3-dev libyaml-cpp-dev libarchive-dev libfmt-dev doctest-dev
  nlohmann-json3-dev libssl-dev libarchive-tools tzdata libhowardhinnant-date-dev
  prometheus-cpp-dev libisal-dev postgresql-15 libpq-dev)
browser=false
for arg in "$@"; do
  case "$arg" in
    --browser) browser=true; packages+=(chromium nodejs npm) ;;
    --format) packages+=(clang-format) ;;
    --fuzz) packages+=(clang libclang-rt-dev) ;;
    --package) packages+=(dpkg-dev fakeroot systemd adduser) ;;
    --bench) packages+=(curl jq rsync ansible-core wrk python3) ;;
    *) echo "install-deps: unknown option '$arg' (use --browser, --format, --fuzz, --package, --bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# nodejs/npm may come from outside Debian's packages on some machines.
if $browser && command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
