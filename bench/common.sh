# Sourced first by the bench/run_*.sh scripts: what they share. Sets
# `set -euo pipefail`, build_dir (the script's first argument, default
# build) and bin (build_dir/bench, the benchmark programs), and defines:
#   settings NAME=DEFAULT...   sets each lower-case name (FILES=5000: files) to
#                              the environment's NAME, or DEFAULT
#   data_dir NAME              prints build_dir/bench-data/NAME, created
#   ensure_built TARGET...     builds the targets unless every binary is there
#   skip_without TOOL MESSAGE  prints MESSAGE and exits 0 when TOOL is missing
#   gen OUT ARGS...            gen_artifact OUT with ARGS, unless OUT exists
#   new_token NAME             a random admin token for a benchmark's server
#   api METHOD PATH BODY [TYPE]  the server's /api/v1 as $token on $port
#   stop_server                stops the server $pid (set on EXIT by the caller)
#   listening_port LOG         the HTTP port the server's LOG says it listens on
#   await_port LOG             sets port once LOG says it; prints LOG and exits if it never does
#   ratio A B                  A / B to two decimals

set -euo pipefail
build_dir=$(cd "${1:-build}" && pwd)
bin="$build_dir/bench"

settings() {
  local setting name
  for setting in "$@"; do
    name=${setting%%=*}
    printf -v "${name,,}" '%s' "${!name:-${setting#*=}}"
  done
}

data_dir() {
  mkdir -p "$build_dir/bench-data/$1"
  echo "$build_dir/bench-data/$1"
}

ensure_built() {
  local t path
  for t in "$@"; do
    if [[ "$t" == reprise* ]]; then path="$build_dir/bin/$t"; else path="$build_dir/bench/$t"; fi
    if [[ ! -x "$path" ]]; then
      cmake --build "$build_dir" --target "$@" >/dev/null
      return
    fi
  done
}

skip_without() {
  if ! command -v "$1" >/dev/null; then
    echo "$2"
    exit 0
  fi
}

gen() {  # OUT ARGS...
  local out=$1
  shift
  [[ -f "$out" ]] || "$build_dir/bench/gen_artifact" --out "$out" "$@" >/dev/null
}

new_token() { echo "bench-$1-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"; }

pid=""
port=""
api() {  # METHOD PATH BODY [CONTENT_TYPE]
  curl -sS -f -o /dev/null -X "$1" -H "Authorization: Bearer $token" \
    -H "Content-Type: ${4:-application/json}" --data-binary "$3" "http://127.0.0.1:$port/api/v1$2"
}
stop_server() {
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
listening_port() {
  sed -n 's|^reprise-server listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$1" | tail -1
}

await_port() {
  for _ in $(seq 1 200); do
    port=$(listening_port "$1")
    [[ -n "$port" ]] && return 0
    sleep 0.05
  done
  echo "the server did not start:" >&2
  cat "$1" >&2
  exit 1
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# The scheduler benchmarks' catalog, over the API of the server on $port:
# $apps applications bench0…, each one stage on its own target tN of agent
# AGENT under DIR/tN, a plan with only a log step, release 1.0 and build 1.
log_only_apps() {  # AGENT DIR
  api PUT /environments/Bench '{"variables": {}}'
  local a
  for ((a = 0; a < apps; a++)); do
    api PUT "/targets/t$a" "{\"environment\": \"Bench\", \"agent\": \"$1\", \"path\": \"$2/t$a\"}"
    api PUT "/applications/bench$a" "$(printf 'pipeline:\n  - stage: Run\n    environment: Bench\n    targets: [t%d]\n    plan: note\nplans:\n  note: |\n    - log: "scheduled run of build $BuildNumber"\n' "$a")" application/yaml
    api POST "/applications/bench$a/releases" '{"number": "1.0"}'
    api POST "/applications/bench$a/releases/1.0/builds" '{}'
  done
}
