#!/usr/bin/env bash
# Extraction benchmark: ExtractArchive vs `bsdtar -xzf` on the same generated
# 200 MB / 5,000-file tar.gz (target: ours <= 1.2x bsdtar), and ScanArchive +
# SHA-256 of the blob vs `sha256sum`. Prints numbers; asserts nothing.
#   bench/run_extract.sh BUILD_DIR      (RUNS=5 FILES=5000 MB=200 to change)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"  # set -euo pipefail; build_dir from $1
settings RUNS=5 FILES=5000 MB=200
data=$(data_dir artifacts)
archive="$data/base-${files}f-${mb}mb.tar.gz"

ensure_built bench_extract gen_artifact
skip_without bsdtar "bsdtar not found (apt-get install libarchive-tools); skipping extraction benchmark"
if [[ ! -f "$archive" ]]; then
  echo "generating $archive"
  "$bin/gen_artifact" --out "$archive" --files "$files" --mb "$mb" --seed 1
fi


# Each run extracts into fresh directories, deleted only at the end: creating
# files right after deleting as many is much slower on ext4 (inode reuse
# checks) and would punish whichever tool runs second. The order alternates.
# timed VAR CMD...: runs CMD, appends "wall cpu" seconds (cpu = user + sys) to array VAR.
timed() {
  local -n out=$1
  shift
  local TIMEFORMAT='%R %U %S' t
  t=$( { time "$@" >/dev/null; } 2>&1 | tail -1)
  out+=("$(awk '{printf "%.3f %.3f", $1, $2 + $3}' <<<"$t")")
}
ours=() theirs=() scans=() sums=()
rm -rf "$data"/x-ours-* "$data"/x-bsdtar-*
sync
for ((i = 1; i <= runs; i++)); do
  mkdir "$data/x-bsdtar-$i"
  if ((i % 2)); then
    timed ours "$bin/bench_extract" extract "$archive" "$data/x-ours-$i"; sync
    timed theirs bsdtar -xzf "$archive" -C "$data/x-bsdtar-$i"
  else
    timed theirs bsdtar -xzf "$archive" -C "$data/x-bsdtar-$i"; sync
    timed ours "$bin/bench_extract" extract "$archive" "$data/x-ours-$i"
  fi
  sync
  timed scans "$bin/bench_extract" scan "$archive"
  timed sums sha256sum "$archive"
done
if ! diff -r "$data/x-ours-1" "$data/x-bsdtar-1" >/dev/null; then
  echo "WARNING: ExtractArchive and bsdtar produced different trees"
fi
rm -rf "$data"/x-ours-* "$data"/x-bsdtar-*

# median COLUMN VALUES...: the median of column 1 (wall) or 2 (cpu).
median() {
  local col=$1
  shift
  printf '%s\n' "$@" | awk -v c="$col" '{print $c}' | sort -g |
    awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
}
report() {  # NAME ARRAY
  local -n arr=$2
  printf '%-24s median wall %6.2fs  cpu %6.2fs   (runs, wall/cpu: %s)\n' "$1" \
    "$(median 1 "${arr[@]}")" "$(median 2 "${arr[@]}")" "$(printf '%s, ' "${arr[@]}")"
}
printf 'archive: %s (%s MB, %s runs)\n' "$archive" "$(du -m "$archive" | cut -f1)" "$runs"
report "ExtractArchive" ours
report "bsdtar -xzf" theirs
printf 'ratio extract/bsdtar     wall %sx  cpu %sx   (target <= 1.20x)\n' \
  "$(ratio "$(median 1 "${ours[@]}")" "$(median 1 "${theirs[@]}")")" \
  "$(ratio "$(median 2 "${ours[@]}")" "$(median 2 "${theirs[@]}")")"
report "ScanArchive + sha256" scans
report "sha256sum" sums
printf 'ratio scan+hash/sha256sum wall %sx  (the scan also inflates and hashes every entry)\n' \
  "$(ratio "$(median 1 "${scans[@]}")" "$(median 1 "${sums[@]}")")"
