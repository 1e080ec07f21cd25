#!/usr/bin/env bash
# Engine benchmark: 10,000 scheduled deployments (plans with only a `log` step:
# no agent work) due within a short window — how late they fire (target p99 <
# 100 ms) and start; the server's start time with them all pending (target < 1 s,
# compared with a start on an empty store); and `wrk -c64 -d10s` of
# GET /api/v1/applications/{app}. Prints numbers; asserts nothing.
#
# The deployments are written by bench/bench_engine.cpp through the Store
# interface into the stopped server's SQLite file (10,000 API calls would time
# the HTTP API, not the scheduler); applications, releases and builds are
# created over the API first.
#   bench/run_engine.sh BUILD_DIR   (COUNT=10000 APPS=10 WINDOW_MS=2000 LEAD_S=auto WRK_SECONDS=10;
#                                    KEEP_DATA=1 keeps the server's data directory)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"  # set -euo pipefail; build_dir from $1
settings COUNT=10000 APPS=10 WINDOW_MS=2000 WRK_SECONDS=10
data="$build_dir/bench-data/engine"
server="$build_dir/bin/reprise-server"
helper="$bin/bench_engine"

ensure_built bench_engine reprise-server
skip_without curl "curl not found; skipping the engine benchmark"

token=$(new_token engine)
trap stop_server EXIT
now_ms() { date +%s%3N; }

# start_server: on $data/var, HTTP on $port (0 the first time: any free port).
# Sets start_ms to how long until /api/v1/health answered.
start_server() {
  local t0 t1
  t0=$(now_ms)
  REPRISE_ADMIN_TOKEN="$token" "$server" --data "$data/var" --http "127.0.0.1:${port:-0}" \
    --agent-port 0 --agent-host 127.0.0.1 --local-agent >>"$data/server.log" 2>&1 &
  pid=$!
  if [[ -z "$port" ]]; then
    for _ in $(seq 1 400); do
      port=$(listening_port "$data/server.log")
      [[ -n "$port" ]] && break
      sleep 0.005
    done
  fi
  for _ in $(seq 1 4000); do
    if curl -s -o /dev/null -f "http://127.0.0.1:$port/api/v1/health" 2>/dev/null; then
      t1=$(now_ms)
      start_ms=$((t1 - t0))
      return 0
    fi
    sleep 0.005
  done
  echo "the server did not answer /api/v1/health:" >&2
  tail -20 "$data/server.log" >&2
  exit 1
}
busy() {  # 1 while any deployment is scheduled, waiting, queued or running
  curl -s -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port/api/v1/deployments?status=scheduled,waiting,queued,running&limit=1" |
    grep -c '"id":' || true
}

rm -rf "$data"
mkdir -p "$data/targets"
: >"$data/server.log"

# 1. Configuration over the API: K applications, each one stage on its own
#    target (deployments of different applications run in parallel; those of
#    one application queue on its target), a plan with only a log step.
start_server
empty_start_ms=$start_ms
log_only_apps local "$data/targets"
stop_server
# A second start on the same (nearly empty) store, for comparison.
start_server
empty_start_ms=$start_ms
stop_server

# 2. Seed: time 200 on a scratch copy of the store to know how long 10,000
#    take, then schedule them to fall due LEAD_S after seeding ends.
for f in "$data"/var/reprise.db*; do cp "$f" "$data/probe.db${f#"$data"/var/reprise.db}"; done
probe=200
t0=$(now_ms)
"$helper" seed --db "$data/probe.db" --apps "$apps" --count "$probe" --start-ms "$t0" \
  --window-ms 1000 >/dev/null
per_us=$(( ($(now_ms) - t0) * 1000 / probe ))
rm -f "$data"/probe.db*
lead_s=${LEAD_S:-$(( per_us * count / 1000000 + 8 ))}
due_ms=$(( $(now_ms) + lead_s * 1000 ))
"$helper" seed --db "$data/var/reprise.db" --apps "$apps" --count "$count" \
  --start-ms "$due_ms" --window-ms "$window_ms"
if (($(now_ms) >= due_ms)); then
  echo "WARNING: seeding took longer than the lead; deployments fell due while the server was down"
fi

# 3. Start with all of them pending.
start_server
pending_start_ms=$start_ms
echo "server started with $count scheduled deployments pending; first due in $(( (due_ms - $(now_ms)) / 1000 )) s"

# 4. Let them fire and run; wait until none is scheduled, waiting, queued or running.
while true; do
  sleep 1
  (($(now_ms) > due_ms + window_ms)) || continue
  [[ "$(busy)" == 0 ]] && break
  if (($(now_ms) > due_ms + 900000)); then
    echo "WARNING: gave up waiting after 15 minutes"
    break
  fi
done
drained_ms=$(( $(now_ms) - due_ms ))

# 5. wrk against the API while the server holds 10,000 finished deployments.
wrk_line="skipped (wrk not installed; apt-get install -y wrk)"
if command -v wrk >/dev/null; then
  out=$(wrk -t2 -c64 -d"${wrk_seconds}s" --latency -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port/api/v1/applications/bench0" 2>&1)
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)
  wrk_line="$rps requests/s, latency p50 $p50, p99 $p99 ${errors}"
fi
stop_server

# 6. Report from the store.
echo "engine: $count scheduled deployments over ${apps} applications/targets, due within ${window_ms} ms"
"$helper" report --db "$data/var/reprise.db" --apps "$apps" | grep -v '^$'
printf 'drained (all final) %.1f s after the first was due\n' "$(awk -v m="$drained_ms" 'BEGIN {print m / 1000}')"
printf 'server start until /api/v1/health answers: empty store %s ms; with %s pending %s ms   (target < 1000 ms)\n' \
  "$empty_start_ms" "$count" "$pending_start_ms"
printf 'wrk -c64 -d%ss GET /api/v1/applications/bench0: %s\n' "$wrk_seconds" "$wrk_line"
[[ -n "${KEEP_DATA:-}" ]] || rm -rf "$data"
