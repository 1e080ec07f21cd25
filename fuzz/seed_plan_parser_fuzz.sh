#!/usr/bin/env bash
# Seeds the plan parser fuzzer with the example plans and the demo spec.
set -euo pipefail
corpus=${1:?usage: seed_plan_parser_fuzz.sh CORPUS_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$corpus"
for f in plans/*.yaml; do cp "$f" "$corpus/seed-$(basename "$f")"; done
