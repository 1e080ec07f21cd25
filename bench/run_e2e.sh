#!/usr/bin/env bash
# End-to-end benchmark, measured as a user sees it: a real reprise-server, a
# real reprise-agent connected over TLS (its own process, pinned
# certificate), the generated 200 MB / 5,000-file artifact and its variant
# (10% changed, 2% deleted, 2% added). Each round, interleaved:
#   upload   `curl -T` of build 1's archive until 201    vs `sha256sum` of it
#   fresh    deploy build 1 to an agent that has nothing  vs `bsdtar -xzf` into an empty dir
#   update   deploy build 2 over build 1                  vs `rsync -a --delete` of the
#                                                            unpacked build 2 over build 1's tree
#            (the agent fetches only the changed files; the deploys of a round
#            start once the server has derived the uploads' file indexes)
#   rollback re-deploy build 1 (cached), big and small    (targets: <= 15 ms, big/small <= 1.5x)
#   small    deploy the 5 MB / 200-file build fresh       vs Ansible `unarchive` (when present)
# A deployment's time runs from the POST until its live log's `end` event
# says it is final (client: an API client's view, bench/deploy_wait.py), and
# from its creation to its finish as the server recorded them (server).
# Medians of RUNS rounds. Each round uploads its own builds, so its deploys
# are first deploys of those builds to the round's new agent (a build
# deployed before would be re-deployed "as deployed", with the earlier
# round's target). Prints numbers and ratios, and where the time of
# the last round's fresh, update and rollback deploys went (their log lines,
# in ms since the request); asserts nothing.
#   bench/run_e2e.sh BUILD_DIR   (RUNS=5 FILES=5000 MB=200 SMALL_FILES=200 SMALL_MB=5 SKIP_ANSIBLE=1)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"  # set -euo pipefail; build_dir from $1
settings RUNS=5 FILES=5000 MB=200 SMALL_FILES=200 SMALL_MB=5
arts=$(data_dir artifacts)
data=$(data_dir e2e)

ensure_built gen_artifact reprise-server reprise-agent
for tool in bsdtar curl jq sha256sum python3; do
  skip_without "$tool" "$tool not found; skipping the end-to-end benchmark (scripts/install-deps.sh --bench)"
done
have_rsync=$(command -v rsync >/dev/null && echo 1 || echo "")
have_ansible=$([[ -z "${SKIP_ANSIBLE:-}" ]] && command -v ansible-playbook >/dev/null && echo 1 || echo "")

big1="$arts/base-${files}f-${mb}mb.tar.gz"  # the archive of run_extract.sh and run_upload.sh
big2="$arts/variant-${files}f-${mb}mb.tar.gz"
small1="$arts/small-${small_files}f-${small_mb}mb.tar.gz"
gen "$big1" --files "$files" --mb "$mb" --seed 1
gen "$big2" --variant-of "${big1%.tar.gz}.tree" --seed 2 --changed-pct 10 --deleted-pct 2 --added-pct 2
gen "$small1" --files "$small_files" --mb "$small_mb" --seed 5

token=$(new_token e2e)
agents=()
cleanup() {
  local a
  for a in "${agents[@]}"; do kill "$a" 2>/dev/null || true; done
  stop_server
}
trap cleanup EXIT

rm -rf "$data/var" "$data/agents" "$data/tools"
mkdir -p "$data/agents" "$data/tools"
REPRISE_ADMIN_TOKEN="$token" "$build_dir/bin/reprise-server" --data "$data/var" \
  --http 127.0.0.1:0 --agent-port 0 --agent-host 127.0.0.1 >"$data/server.log" 2>&1 &
pid=$!
await_port "$data/server.log"
agent_port=$(sed -n 's/^agents connect to port \([0-9]*\) .*/\1/p' "$data/server.log")
fingerprint=$(sed -n 's/^agents connect to port [0-9]* (certificate sha256 \([0-9a-f]*\))$/\1/p' "$data/server.log")

get() { curl -sS -f -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1$1"; }
post() { curl -sS -f -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
  --data-binary "$2" "http://127.0.0.1:$port/api/v1$1"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", b - a}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# One application per size; the stage's target points at a directory of the
# round's agent (set before each round).
api PUT /environments/E2E '{"variables": {}}'
for app in big small; do
  api PUT "/targets/e2e-$app" "{\"environment\": \"E2E\", \"agent\": \"none\", \"path\": \"/nonexistent\"}"
  api PUT "/applications/e2e$app" "$(printf 'pipeline:\n  - stage: Live\n    environment: E2E\n    targets: [e2e-%s]\n    plan: deploy\nplans:\n  deploy: |\n    - deploy-artifact: { artifact: web }\n' "$app")" application/yaml
  api POST "/applications/e2e$app/releases" '{"number": "1.0"}'
done

# upload APP FILE: a new build of APP with FILE as its artifact `web`; prints
# the build number, and writes the seconds from the PUT to its 201 into
# $data/upload.last.
upload() {
  local build t0 t1 code
  build=$(post "/applications/$1/releases/1.0/builds" '{}' | jq -r .number)
  t0=$(now)
  code=$(curl -sS -T "$2" -H "Authorization: Bearer $token" -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:$port/api/v1/applications/$1/releases/1.0/builds/$build/artifacts/web")
  t1=$(now)
  [[ "$code" == 201 ]] || { echo "upload answered HTTP $code" >&2; exit 1; }
  secs "$t0" "$t1" >"$data/upload.last"
  echo "$build"
}

# deploy APP BUILD: prints "client_seconds server_seconds"; fails unless it succeeded.
# The client's time is an API client's (bench/deploy_wait.py): from sending
# the POST until the deployment's live log (server-sent events) delivers its
# `end` event with the final status, timed inside that one process. Polling
# with a curl process per poll, as this script did before, added a process
# start (10-20 ms on a loaded machine) to every poll and to the result.
deploy() {
  local out secs d status
  out=$(python3 "$(dirname "${BASH_SOURCE[0]}")/deploy_wait.py" "$port" "$token" "$1" 1.0 "$2" Live)
  secs=$(head -1 <<<"$out")
  d=$(tail -1 <<<"$out")
  status=$(jq -r .status <<<"$d")
  [[ "$status" == succeeded ]] || { echo "deployment of $1 build $2: $status: $(jq -r .error <<<"$d")" >&2; exit 1; }
  jq -r .id <<<"$d" >"$data/deploy.last"
  echo "$secs $(server_seconds "$d")"
}
# timeline ID: the deployment's log lines, each with the ms since its creation.
timeline() {
  local created
  created=$(get "/deployments/$1" | jq -r .created_at)
  get "/deployments/$1/log" | jq -r --arg c "$created" '
    def ms: capture("T(?<h>[0-9]+):(?<m>[0-9]+):(?<s>[0-9.]+)Z") | ((.h | tonumber) * 3600 + (.m | tonumber) * 60 + (.s | tonumber)) * 1000;
    .lines[] | "  \((.at | ms) - ($c | ms) | round | tostring | (" " * (6 - length)) + .) ms  \(.text)"'
}
# The server's own record: created_at -> finished_at (millisecond RFC 3339).
server_seconds() {
  jq -r '[.created_at, .finished_at] | map(capture("T(?<h>[0-9]+):(?<m>[0-9]+):(?<s>[0-9.]+)Z") | (.h | tonumber) * 3600 + (.m | tonumber) * 60 + (.s | tonumber)) | .[1] - .[0] | . * 10000 | round / 10000' <<<"$1"
}

# new_agent N: a reprise-agent of its own (fresh root and state, nothing
# cached) over TLS, pre-approved; both targets point into its root.
new_agent() {
  local name="e2e-agent-$1" root="$data/agents/$1" enroll
  mkdir -p "$root"
  enroll=$(post /agents/enrollment-tokens '{"pre_approved": true}' | jq -r .token)
  "$build_dir/bin/reprise-agent" --server "127.0.0.1:$agent_port" --fingerprint "$fingerprint" \
    --name "$name" --root "$root" --state "$root/.state" --enroll-token "$enroll" >"$root.log" 2>&1 &
  agents+=($!)
  for _ in $(seq 1 400); do
    [[ "$(get /agents | jq -r --arg n "$name" '.items[] | select(.name == $n) | .online')" == true ]] && break
    sleep 0.05
  done
  for app in big small; do
    api PUT "/targets/e2e-$app" "{\"environment\": \"E2E\", \"agent\": \"$name\", \"path\": \"$root/$app\"}"
  done
}

timed() {  # CMD...: prints the wall seconds of CMD
  local t0 t1
  t0=$(now)
  "$@" >/dev/null 2>&1
  t1=$(now)
  secs "$t0" "$t1"
}

if [[ -n "$have_ansible" ]]; then
  cat >"$data/tools/small.yml" <<YML
- hosts: all
  gather_facts: false
  tasks:
    - unarchive: { src: "$small1", dest: "{{ dest }}", remote_src: true }
YML
fi

sha_big1=$(sha256sum "$big1" | cut -d' ' -f1)
sha_big2=$(sha256sum "$big2" | cut -d' ' -f1)
derive_secs=""
declare -a up sha fresh fresh_s tar upd upd_s rsy rb rb_s rbs rbs_s sm sm_s ans
for ((i = 1; i <= runs; i++)); do
  echo "round $i of $runs" >&2
  # Upload vs sha256sum, alternating which goes first; the upload is the
  # round's build 1.
  if ((i % 2)); then
    b1=$(upload e2ebig "$big1"); sha+=("$(timed sha256sum "$big1")")
  else
    sha+=("$(timed sha256sum "$big1")"); b1=$(upload e2ebig "$big1")
  fi
  up+=("$(cat "$data/upload.last")")
  b2=$(upload e2ebig "$big2")
  t_b2=$(now)
  s1=$(upload e2esmall "$small1")
  s2=$(upload e2esmall "$small1")  # a second build to roll back from
  # The server derives each upload's file index in the background (what an
  # update fetches changed files by); the deploys are measured once it is
  # done, so that it does not run beside them. Round 1 records how long
  # build 2's took after its upload answered.
  for _ in $(seq 1 1200); do
    [[ -e "$data/var/artifacts/files/index/$sha_big1.json" && -e "$data/var/artifacts/files/index/$sha_big2.json" ]] && break
    sleep 0.1
  done
  [[ -e "$data/var/artifacts/files/index/$sha_big2.json" ]] || echo "build 2's file index is not there: the update fetches the whole archive" >&2
  ((i == 1)) && derive_secs=$(secs "$t_b2" "$(now)")

  new_agent "$i"
  sync
  # Fresh deploy vs bsdtar into an empty directory.
  mkdir -p "$data/tools/tar-$i"
  read -r c s <<<"$(deploy e2ebig "$b1")"; fresh+=("$c"); fresh_s+=("$s")
  fresh_id=$(cat "$data/deploy.last")
  sync
  tar+=("$(timed bsdtar -xzf "$big1" -C "$data/tools/tar-$i")")
  # Update: build 2 over build 1, vs rsync of the unpacked build 2 over build 1's tree.
  # After a sync, as rsync: the update's syncfs would otherwise write back
  # the 200 MB bsdtar just extracted on the same filesystem.
  sync
  read -r c s <<<"$(deploy e2ebig "$b2")"; upd+=("$c"); upd_s+=("$s")
  update_id=$(cat "$data/deploy.last")
  if [[ -n "$have_rsync" ]]; then
    sync
    rsy+=("$(timed rsync -a --delete "${big2%.tar.gz}.tree/" "$data/tools/tar-$i/")")
  fi
  # Rollback to the cached build 1, then the small ones. After a sync, as
  # before the other tools: the 200 MB rsync just wrote would otherwise be
  # flushed by the rollback's first fsync (ext4's ordered journal).
  sync
  read -r c s <<<"$(deploy e2ebig "$b1")"; rb+=("$c"); rb_s+=("$s")
  rollback_id=$(cat "$data/deploy.last")
  read -r c s <<<"$(deploy e2esmall "$s1")"; sm+=("$c"); sm_s+=("$s")
  read -r c s <<<"$(deploy e2esmall "$s2")"
  read -r c s <<<"$(deploy e2esmall "$s1")"; rbs+=("$c"); rbs_s+=("$s")
  rollback_small_id=$(cat "$data/deploy.last")
  if [[ -n "$have_ansible" ]]; then
    mkdir -p "$data/tools/ansible-$i"
    ans+=("$(timed ansible-playbook -i localhost, -c local -e "dest=$data/tools/ansible-$i" "$data/tools/small.yml")")
  fi
done

m() { median "$@"; }
printf '\n%-40s %12s %12s %12s %8s  %s\n' "end to end (median of $runs)" "reprise" "server" "other tool" "ratio" "goal"
row() {  # LABEL OURS SERVER THEIRS TOOL GOAL
  local r="-"
  [[ -n "$4" ]] && r=$(ratio "$2" "$4")
  printf '%-40s %11.3fs %11.3fs %11s %7sx  %s\n' "$1" "$2" "$3" "${4:+$(printf '%.3fs' "$4")}" "$r" "$5 ($6)"
}
row "upload, curl -T to 201" "$(m "${up[@]}")" "$(m "${up[@]}")" "$(m "${sha[@]}")" sha256sum "throughput >= 0.8x: ratio <= 1.25"
row "fresh deploy, big" "$(m "${fresh[@]}")" "$(m "${fresh_s[@]}")" "$(m "${tar[@]}")" "bsdtar -xzf" "<= 0.9x"
if [[ -n "$have_rsync" ]]; then
  row "update deploy (build 2 over 1)" "$(m "${upd[@]}")" "$(m "${upd_s[@]}")" "$(m "${rsy[@]}")" "rsync -a --delete" "<= 1.0x"
else
  row "update deploy (build 2 over 1)" "$(m "${upd[@]}")" "$(m "${upd_s[@]}")" "" "rsync missing" "<= 1.0x rsync"
fi
printf '%-40s %12s %12s %12s %7sx  %s\n' "update / fresh" "" "" "" "$(ratio "$(m "${upd[@]}")" "$(m "${fresh[@]}")")" "<= 0.35x"
row "rollback to cached build 1, big" "$(m "${rb[@]}")" "$(m "${rb_s[@]}")" "" "" "<= 15 ms"
row "rollback to cached build, small" "$(m "${rbs[@]}")" "$(m "${rbs_s[@]}")" "" "" "-"
printf '%-40s %12s %12s %12s %7sx  %s\n' "rollback big / small" "" "" "" "$(ratio "$(m "${rb[@]}")" "$(m "${rbs[@]}")")" "<= 1.5x"
if [[ -n "$have_ansible" ]]; then
  row "small deploy, fresh" "$(m "${sm[@]}")" "$(m "${sm_s[@]}")" "$(m "${ans[@]}")" "ansible unarchive" ">= 20x faster: ratio <= 0.05"
else
  row "small deploy, fresh" "$(m "${sm[@]}")" "$(m "${sm_s[@]}")" "" "" "Ansible not installed: not compared"
fi
# The last round's rollbacks put back exactly the builds: the live trees
# against the generator's trees, file by file (types, modes, contents).
same_tree() {  # A B: prints identical or differs
  local a b
  a=$(cd "$1" && find . -printf '%y %m %P\n' | sort)
  b=$(cd "$2" && find . -printf '%y %m %P\n' | sort)
  if [[ "$a" == "$b" ]] && diff -r --no-dereference "$1" "$2" >/dev/null; then echo identical; else echo differs; fi
}
printf '%-40s %s\n' "tree after the rollback, big" "$(same_tree "$data/agents/$runs/big/current/" "${big1%.tar.gz}.tree/")"
printf '%-40s %s\n' "tree after the rollback, small" "$(same_tree "$data/agents/$runs/small/current/" "${small1%.tar.gz}.tree/")"
printf '\nwhere the time went, last round (ms since the request; load: %s)\n' "$(uptime | sed 's/.*load average: //')"
echo "fresh deploy:"
timeline "$fresh_id"
echo "update deploy:"
timeline "$update_id"
echo "rollback, big:"
timeline "$rollback_id"
echo "rollback, small:"
timeline "$rollback_small_id"
echo "build 2's file index was ready ${derive_secs:-?} s after its upload answered (round 1, at most; derived in the background)"
