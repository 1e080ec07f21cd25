#!/usr/bin/env bash
# Agent benchmarks: fresh deploy vs bsdtar -xzf, small deploy vs Ansible
# unarchive, rollback (re-deploy of a cached build) for both sizes, fan-out to
# 10 agents vs 10 sequential bsdtar and vs Ansible with forks 10, and the
# hub's RSS with 1,000 idle agents. Prints numbers side by side; asserts nothing.
#   bench/run_agents.sh BUILD_DIR     (FILES=5000 MB=200 SMALL_FILES=200 SMALL_MB=5
#                                      FANOUT=10 IDLE=1000 SKIP_ANSIBLE=1 to change)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"  # set -euo pipefail; build_dir from $1
settings FILES=5000 MB=200 SMALL_FILES=200 SMALL_MB=5 FANOUT=10 IDLE=1000
data=$(data_dir agents)

ensure_built bench_agents gen_artifact reprise-agent
skip_without bsdtar "bsdtar not found (apt-get install libarchive-tools); skipping the agent benchmark"

big1="$data/big1-${files}f-${mb}mb.tar.gz"
big2="$data/big2-${files}f-${mb}mb.tar.gz"
small1="$data/small1-${small_files}f-${small_mb}mb.tar.gz"
small2="$data/small2-${small_files}f-${small_mb}mb.tar.gz"
# Build 2: 10% of the files changed, 2% deleted, 2% added.
gen "$big1" --files "$files" --mb "$mb" --seed 1
gen "$big2" --variant-of "${big1%.tar.gz}.tree" --seed 2 --changed-pct 10 --deleted-pct 2 --added-pct 2
gen "$small1" --files "$small_files" --mb "$small_mb" --seed 3
gen "$small2" --variant-of "${small1%.tar.gz}.tree" --seed 4 --changed-pct 10 --deleted-pct 2 --added-pct 2

ansible_small=-1
ansible_fanout=-1
if [[ -z "${SKIP_ANSIBLE:-}" ]] && command -v ansible-playbook >/dev/null; then
  adir="$data/ansible"
  rm -rf "$adir"
  mkdir -p "$adir"
  playbook() {  # NAME ARCHIVE: unarchive ARCHIVE into a directory per host
    cat >"$adir/$1.yml" <<YML
- hosts: all
  gather_facts: false
  tasks:
    - file: { path: "$adir/out-$1-{{ inventory_hostname }}", state: directory }
    - unarchive: { src: "$2", dest: "$adir/out-$1-{{ inventory_hostname }}", remote_src: true }
YML
  }
  playbook small "$small1"
  playbook fan "$big1"
  : >"$adir/hosts"
  for ((i = 0; i < fanout; i++)); do echo "host$i ansible_connection=local ansible_python_interpreter=/usr/bin/python3" >>"$adir/hosts"; done
  tsec() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || echo "ansible run failed" >&2; e=$(date +%s.%N); awk -v a="$s" -v b="$e" 'BEGIN {printf "%.3f", b - a}'; }
  export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_RETRY_FILES_ENABLED=False
  ansible_small=$(tsec ansible-playbook -i "localhost," -c local "$adir/small.yml")
  ansible_fanout=$(tsec ansible-playbook -i "$adir/hosts" -f "$fanout" "$adir/fan.yml")
  rm -rf "$adir"/out-*
fi

sync
"$bin/bench_agents" --bin "$build_dir/bin" --work "$data/work" \
  --big1 "$big1" --big2 "$big2" --small1 "$small1" --small2 "$small2" \
  --fanout "$fanout" --idle "$idle" \
  --ansible-small "$ansible_small" --ansible-fanout "$ansible_fanout"
