#!/usr/bin/env bash
# Runs every benchmark script bench/run_*.sh against the given build directory.
set -euo pipefail
build_dir=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/.."
shopt -s nullglob
for script in bench/run_*.sh; do
  echo "== $script"
  bash "$script" "$build_dir"
done
