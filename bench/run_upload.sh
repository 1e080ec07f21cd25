#!/usr/bin/env bash
# Artifact upload benchmark: a real reprise-server (fresh --data under the
# build directory), artifacts PUT with `curl -T` and with `reprise upload`,
# against `sha256sum` of the same file (what a user would otherwise run over
# the bytes: the server hashes, stores and scans the whole archive). Target:
# throughput >= 0.8x sha256sum. Also the server's peak RSS (VmHWM) after a
# 20 MB and a 200 MB upload, each on a fresh server (target < 64 MB, flat).
# Prints numbers; asserts nothing.
#   bench/run_upload.sh BUILD_DIR   (RUNS=3 FILES=5000 MB=200 SMALL_FILES=500 SMALL_MB=20 KEEP_DATA=1)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"  # set -euo pipefail; build_dir from $1
settings RUNS=3 FILES=5000 MB=200 SMALL_FILES=500 SMALL_MB=20
arts=$(data_dir artifacts)
data=$(data_dir upload)

ensure_built gen_artifact reprise-server reprise
skip_without curl "curl not found; skipping the upload benchmark"

# The big archive is the one bench/run_extract.sh uses (same arguments, same bytes).
big="$arts/base-${files}f-${mb}mb.tar.gz"
small="$arts/small-${small_files}f-${small_mb}mb.tar.gz"
gen "$big" --files "$files" --mb "$mb" --seed 1
gen "$small" --files "$small_files" --mb "$small_mb" --seed 5

token=$(new_token upload)
trap stop_server EXIT

# start_server NAME: a fresh data directory, HTTP on a free port.
start_server() {
  local dir="$data/$1"
  rm -rf "$dir"
  mkdir -p "$dir/target"
  : >"$dir/server.log"  # there before await_port reads it, whenever the server starts
  REPRISE_ADMIN_TOKEN="$token" "$build_dir/bin/reprise-server" --data "$dir/var" \
    --http 127.0.0.1:0 --agent-port 0 --agent-host 127.0.0.1 >"$dir/server.log" 2>&1 &
  pid=$!
  await_port "$dir/server.log"
  # The least an upload needs: an environment, a target, an application whose
  # one stage uses them, and a release.
  api PUT /environments/Bench '{"variables": {}}'
  api PUT /targets/bench-target "{\"environment\": \"Bench\", \"agent\": \"local\", \"path\": \"$dir/target\"}"
  api PUT /applications/benchapp "$(printf 'pipeline:\n  - stage: Bench\n    environment: Bench\n    targets: [bench-target]\n    plan: noop\nplans:\n  noop: |\n    - log: "bench"\n')" application/yaml
  cli release create benchapp 1.0 >/dev/null
}
cli() { REPRISE_SERVER="http://127.0.0.1:$port" REPRISE_TOKEN="$token" "$build_dir/bin/reprise" "$@"; }
new_build() { cli build create benchapp 1.0; }
artifact_url() { echo "http://127.0.0.1:$port/api/v1/applications/benchapp/releases/1.0/builds/$1/artifacts/web"; }
curl_upload() {  # FILE BUILD
  local code
  code=$(curl -sS -T "$1" -H "Authorization: Bearer $token" -o /dev/null -w '%{http_code}' "$(artifact_url "$2")")
  [[ "$code" == 201 ]] || echo "upload answered HTTP $code" >&2
}
cli_upload() { cli upload benchapp 1.0 "$2" web "$1" 2>/dev/null; }  # FILE BUILD
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$pid/status"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }

# timed VAR CMD...: runs CMD, appends its wall seconds to array VAR.
timed() {
  local -n acc=$1
  shift
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null
  e=$(date +%s.%N)
  acc+=("$(awk -v a="$s" -v b="$e" 'BEGIN {printf "%.3f", b - a}')")
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

big_bytes=$(stat -c %s "$big")
small_bytes=$(stat -c %s "$small")

# Peak RSS: each size on a fresh server, so each peak is that upload's own.
start_server rss-small
idle_kb=$(hwm_kb)
b=$(new_build); curl_upload "$small" "$b"
small_hwm_kb=$(hwm_kb)
stop_server
start_server rss-big
b=$(new_build); curl_upload "$big" "$b"
big_hwm_kb=$(hwm_kb)
after_kb=$(rss_kb)

# Throughput: on the same server, alternating the tools; the file is in the
# page cache for all of them (it was just generated and read).
sha256sum "$big" >/dev/null
sums=() curls=() clis=()
for ((i = 1; i <= runs; i++)); do
  timed sums sha256sum "$big"
  b=$(new_build); timed curls curl_upload "$big" "$b"
  b=$(new_build); timed clis cli_upload "$big" "$b"
done
stop_server

rate() { awk -v b="$big_bytes" -v t="$1" 'BEGIN {printf "%.0f", b / 1048576 / t}'; }
s=$(median "${sums[@]}") c=$(median "${curls[@]}") r=$(median "${clis[@]}")
printf 'archive: %s (%s MiB, %s files); small: %s MiB (%s files); %s runs\n' \
  "$big" "$(mib "$big_bytes")" "$files" "$(mib "$small_bytes")" "$small_files" "$runs"
printf '%-28s %8s %9s   %s\n' "" "median" "MiB/s" "runs (s)"
printf '%-28s %7ss %9s   %s\n' "sha256sum" "$s" "$(rate "$s")" "${sums[*]}"
printf '%-28s %7ss %9s   %s\n' "curl -T (PUT, stored)" "$c" "$(rate "$c")" "${curls[*]}"
printf '%-28s %7ss %9s   %s\n' "reprise upload (CLI)" "$r" "$(rate "$r")" "${clis[*]}"
printf 'throughput curl -T / sha256sum:        %sx   (target >= 0.80x)\n' "$(ratio "$s" "$c")"
printf 'throughput reprise upload / sha256sum: %sx\n' "$(ratio "$s" "$r")"
printf 'server peak RSS (VmHWM, target < 64 MiB and flat):\n'
printf '  %-52s %7s MiB\n' "idle, after setup" "$(mib $((idle_kb * 1024)))"
printf '  %-52s %7s MiB\n' "after a ${small_mb} MB tree (${small_files} files, $(mib "$small_bytes") MiB archive)" "$(mib $((small_hwm_kb * 1024)))"
printf '  %-52s %7s MiB   (RSS afterwards %s MiB)\n' "after a ${mb} MB tree (${files} files, $(mib "$big_bytes") MiB archive)" \
  "$(mib $((big_hwm_kb * 1024)))" "$(mib $((after_kb * 1024)))"
[[ -n "${KEEP_DATA:-}" ]] || rm -rf "$data"
