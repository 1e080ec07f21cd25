#!/usr/bin/env bash
# HTTP server benchmark: /api/v1/health latency while 1,000 connections trickle
# their headers (target p99 < 50 ms), and 1,000 live log streams (SSE) of one
# running deployment (all must receive every line; server RSS < 150 MB).
# Loopback only; every loop is bounded. Prints numbers; asserts nothing.
#   bench/run_http.sh BUILD_DIR   (TRICKLE=1000 STREAMS=1000 LINES=200 PROBES=500 to change)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"  # set -euo pipefail; build_dir from $1
ensure_built bench_http reprise-server
# Two thousand sockets on each side: raise the soft descriptor limit if we may.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
"$bin/bench_http" --server "$build_dir/bin/reprise-server" \
  --work "$build_dir/bench-data/http" --trickle "${TRICKLE:-1000}" --streams "${STREAMS:-1000}" \
  --lines "${LINES:-200}" --probes "${PROBES:-500}"
