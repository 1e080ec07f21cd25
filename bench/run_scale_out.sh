#!/usr/bin/env bash
# Scale-out benchmark: several reprise-server processes on one PostgreSQL 15
# store (a throwaway cluster started for the run by bench/bench_pg, the tests'
# own, on disk under BUILD/bench-data/scale-out, durable commits). Prints
# numbers; asserts nothing.
#   (a) COUNT scheduled deployments (log-only plans) due within WINDOW_MS:
#       firing lateness p50/p99 (target p99 < 100 ms) and whether each fired
#       exactly once, on two servers sharing the store, on one server on the
#       same kind of store, and on one server on SQLite (as run_engine.sh);
#       which server fired how many (the scheduler histogram of /metrics);
#   (b) wrk GET /api/v1/applications/bench0 on both servers at once (two wrk,
#       half the connections each), then on one (the other stopped), same
#       store and data;
#   (c) AGENTS idle agents, each connected to both servers (agents connect to
#       every server in their list, docs/scale-out.md): RSS of each server.
# Each burst is given DRAIN_S seconds after it fell due to run to the end; what
# is still queued then is counted, and cancelled (servers stopped, through the
# Store) before the next part, so that it does not weigh on it.
#   bench/run_scale_out.sh BUILD_DIR   (COUNT=10000 APPS=10 WINDOW_MS=2000 LEAD_MS=8000
#       DRAIN_S=120 WRK_SECONDS=10 AGENTS=5000 SQLITE=1 DURABLE=1; KEEP_DATA=1 keeps the data)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"  # set -euo pipefail; build_dir from $1
settings COUNT=10000 APPS=10 WINDOW_MS=2000 LEAD_MS=8000 DRAIN_S=120 WRK_SECONDS=10 AGENTS=5000 \
  SQLITE=1 DURABLE=1
data="$build_dir/bench-data/scale-out"
server="$build_dir/bin/reprise-server"

skip_without curl "curl not found; skipping the scale-out benchmark"
if [[ ! -x "${REPRISE_PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ]]; then
  echo "PostgreSQL 15 not found (scripts/install-deps.sh installs postgresql-15); skipping the scale-out benchmark"
  exit 0
fi
ensure_built bench_pg bench_engine bench_agents reprise-server

rm -rf "$data"
mkdir -p "$data"
chmod 755 "$data"  # the cluster's directory below it belongs to the postgres user when run as root
token=$(new_token scale)
now_ms() { date +%s%3N; }

declare -A pids=() ports=() agent_ports=() fingerprints=()
pg_pid=""
stop_one() {  # NAME
  local name=$1
  [[ -n "${pids[$name]:-}" ]] || return 0
  kill "${pids[$name]}" 2>/dev/null || true
  wait "${pids[$name]}" 2>/dev/null || true
  unset "pids[$name]"
}
stop_all() {
  local name
  for name in "${!pids[@]}"; do stop_one "$name"; done
}
cleanup() {
  stop_all
  if [[ -n "$pg_pid" ]]; then
    kill "$pg_pid" 2>/dev/null || true
    wait "$pg_pid" 2>/dev/null || true
  fi
  [[ -n "${KEEP_DATA:-}" ]] || rm -rf "$data"
}
trap cleanup EXIT

# The PostgreSQL cluster: three fresh databases (two servers, one server, spare).
REPRISE_TEST_TMPDIR="$data" "$bin/bench_pg" --databases 3 --durable "$durable" \
  --max-seconds 3600 >"$data/pg.out" 2>"$data/pg.log" &
pg_pid=$!
for _ in $(seq 1 1200); do
  grep -qx ready "$data/pg.out" && break
  kill -0 "$pg_pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -qx ready "$data/pg.out"; then
  echo "the PostgreSQL cluster did not start:" >&2
  cat "$data/pg.log" >&2
  exit 1
fi
mapfile -t databases < <(grep '^postgresql:' "$data/pg.out")

# start_server RUN NAME STORE: reprise-server NAME (its --server-id) on
# RUN's data, on STORE (empty: SQLite in its data directory); waits for
# /api/v1/health and notes its ports and certificate fingerprint.
start_server() {
  local run=$1 name=$2 store=$3 log="$data/$1/$2.log"
  local args=(--data "$data/$run/$name" --http 127.0.0.1:0 --agent-port 0 --agent-host 127.0.0.1
    --server-id "$name" --artifact-dir "$data/$run/artifacts")
  [[ -z "$store" ]] || args+=(--store "$store")
  mkdir -p "$data/$run/$name"
  : >"$log"
  REPRISE_ADMIN_TOKEN="$token" "$server" "${args[@]}" >>"$log" 2>&1 &
  pids[$name]=$!
  port=""
  for _ in $(seq 1 600); do
    port=$(listening_port "$log")
    [[ -n "$port" ]] && grep -q '^server id:' "$log" && break
    sleep 0.05
  done
  if [[ -z "$port" ]] || ! curl -s -f -o /dev/null "http://127.0.0.1:$port/api/v1/health"; then
    echo "server $name did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  ports[$name]=$port
  agent_ports[$name]=$(sed -n 's/^agents connect to port \([0-9]*\) .*/\1/p' "$log")
  fingerprints[$name]=$(sed -n 's/^agents connect to port [0-9]* (certificate sha256 \([0-9a-f]*\))$/\1/p' "$log")
}

# configure NAME: over NAME's API, APPS applications bench0.. with one stage
# `Run` each on its own target and a plan with only a log step (any server
# may run it: no agent work), a release 1.0 and its build 1.
configure() {
  port=${ports[$1]}
  log_only_apps box "$data/box"
}

any_in() {  # NAME STATUSES: 1 while any deployment has one of STATUSES
  curl -s -H "Authorization: Bearer $token" \
    "http://127.0.0.1:${ports[$1]}/api/v1/deployments?status=$2&limit=1" |
    grep -c '"id":' || true
}

# fired_here NAME: how many scheduled deployments NAME fired, and its id, from
# its /metrics (the scheduler's lateness histogram counts each firing).
fired_here() {
  curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:${ports[$1]}/metrics" |
    awk '/^reprise_scheduler_lateness_seconds_count/ {n = $2}
         /^reprise_server_info/ {match($0, /server_id="[^"]*"/); id = substr($0, RSTART + 11, RLENGTH - 12)}
         END {printf "%s fired %d", id, n}'
}

# schedule RUN STORE NAME...: configure on the first server, stop it, seed
# COUNT deployments due LEAD_MS after seeding, start the servers NAME...,
# wait until every deployment is final (at most DRAIN_S after the first was
# due), report, stop the servers and cancel what is not final.
schedule() {
  local run=$1 store=$2
  shift 2
  local names=("$@") seed_store=$store name drained_ms fired=""
  [[ -n "$store" ]] || seed_store="sqlite:$data/$run/${names[0]}"
  start_server "$run" "${names[0]}" "$store"
  configure "${names[0]}"
  stop_one "${names[0]}"
  local seeded
  seeded=$("$bin/bench_engine" seed --store "$seed_store" --apps "$apps" --count "$count" \
    --lead-ms "$lead_ms" --window-ms "$window_ms")
  local due_ms
  due_ms=$(sed -n 's/^first due at \([0-9]*\).*/\1/p' <<<"$seeded")
  for name in "${names[@]}"; do start_server "$run" "$name" "$store"; done
  if (($(now_ms) >= due_ms)); then
    echo "WARNING: the servers started after the first deployment was due (raise LEAD_MS)"
  fi
  local fired_ms=""
  while true; do
    sleep 1
    (($(now_ms) > due_ms + window_ms)) || continue
    if [[ -z "$fired_ms" && "$(any_in "${names[0]}" scheduled)" == 0 ]]; then
      fired_ms=$(($(now_ms) - due_ms))
    fi
    [[ "$(any_in "${names[0]}" scheduled,waiting,queued,running)" == 0 ]] && break
    (($(now_ms) < due_ms + drain_s * 1000)) || break
  done
  drained_ms=$(($(now_ms) - due_ms))
  for name in "${names[@]}"; do fired+="${fired:+, }$(fired_here "$name")"; done
  local kind=SQLite
  [[ -z "$store" ]] || kind=PostgreSQL
  echo "-- $run: ${#names[@]} server(s) on $kind; $count scheduled deployments over $apps applications/targets due within $window_ms ms"
  echo "$seeded" | head -1
  "$bin/bench_engine" report --store "$seed_store" --apps "$apps" | grep -v '^$' | grep -v '^all finished'
  printf 'none scheduled %.1f s after the first was due; stopped waiting at %.1f s; %s\n' \
    "$(awk -v m="${fired_ms:-0}" 'BEGIN {print m / 1000}')" "$(awk -v m="$drained_ms" 'BEGIN {print m / 1000}')" "$fired"
  stop_all
  "$bin/bench_engine" settle --store "$seed_store" --apps "$apps" --count "$count"
}

# wrk_line NAME CONNECTIONS: wrk on NAME's GET /api/v1/applications/bench0.
wrk_line() {
  local out
  out=$(wrk -t"$(($2 > 32 ? 2 : 1))" -c"$2" -d"${wrk_seconds}s" --latency \
    -H "Authorization: Bearer $token" "http://127.0.0.1:${ports[$1]}/api/v1/applications/bench0" 2>&1)
  awk '/^Requests\/sec:/ {rps = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
       /Non-2xx|Socket errors/ {err = err " " $0}
       END {printf "%s req/s, p50 %s, p99 %s%s", rps, p50, p99, err}' <<<"$out"
}

echo "scale-out: PostgreSQL 15 (durable commits: $durable) and the servers on this machine; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# (a) The same burst on one server (PostgreSQL, then SQLite), then on two.
schedule pg-one "${databases[1]}" alpha
[[ "$sqlite" != 1 ]] || schedule sqlite-one "" alpha
schedule pg-two "${databases[0]}" alpha beta
for name in alpha beta; do start_server pg-two "$name" "${databases[0]}"; done

# (b) API reads on the store the two servers just drained: both at once
# (half the connections each), then alpha alone with all of them.
if command -v wrk >/dev/null; then
  wrk_line alpha 32 >"$data/wrk-alpha" &
  wrk_alpha=$!
  wrk_beta=$(wrk_line beta 32)
  wait "$wrk_alpha"
  echo "-- wrk -c64 -d${wrk_seconds}s GET /api/v1/applications/bench0 ($count deployments in the store)"
  echo "two servers at once: alpha $(cat "$data/wrk-alpha"); beta $wrk_beta"
  stop_one beta
  echo "one server (alpha, beta stopped): $(wrk_line alpha 64)"
  start_server pg-two beta "${databases[0]}"
else
  echo "-- wrk: skipped (wrk not installed; apt-get install -y wrk)"
fi

# (c) Idle agents, each connected to both servers over TLS (the default).
if ((agents > 0)); then
  port=${ports[alpha]}
  enroll=$(curl -sS -f -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
    --data '{"pre_approved": true}' "http://127.0.0.1:$port/api/v1/agents/enrollment-tokens" |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  list=""
  for name in alpha beta; do
    list+="${list:+,}${agent_ports[$name]}/${pids[$name]}/${fingerprints[$name]}"
  done
  echo "-- $agents idle agents, each connected to both servers (TLS; agent ports: alpha ${agent_ports[alpha]}, beta ${agent_ports[beta]})"
  "$bin/bench_agents" --idle-servers "$list" --token "$enroll" --idle "$agents" || true
fi
stop_all
