#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS (default 30), seeded from fuzz/corpus/NAME
# when present (areas may generate seeds with fuzz/seed_NAME.sh). With FUZZ_RUNS=0 each
# only replays its corpus (the seeds, and on a developer's machine what earlier fuzzing
# kept; a crash on one fails), no new inputs: deterministic, for CI's clean checkout.
set -euo pipefail
build_dir=$(cd "${1:-build-fuzz}" && pwd)
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
for fuzzer in "$build_dir"/fuzz/*; do
  [[ -f "$fuzzer" && -x "$fuzzer" ]] || continue
  name=$(basename "$fuzzer")
  corpus="$build_dir/fuzz-corpus/$name"
  mkdir -p "$corpus"
  if [[ -x "fuzz/seed_$name.sh" ]]; then "fuzz/seed_$name.sh" "$corpus"; fi
  if [[ -n "${FUZZ_RUNS:-}" ]]; then
    echo "== $name: its seeds, then ${FUZZ_RUNS} new inputs"
    "$fuzzer" -runs="$FUZZ_RUNS" "$corpus"
  else
    echo "== $name for ${seconds}s"
    "$fuzzer" -max_total_time="$seconds" "$corpus"
  fi
done
