#!/usr/bin/env bash
# Writes seed archives for archive_fuzz into the corpus directory $1:
#  - the malicious corpus the tests refuse (tests/agents/deployer/archive_corpus.h),
#    written by BUILD/tests/write_archive_seeds (make fuzz builds it; BUILD is
#    the build directory two levels above $1, as scripts/fuzz.sh lays it out,
#    or $WRITE_ARCHIVE_SEEDS names the tool);
#  - good archives made with bsdtar (and GNU tar when present): tar, tar.gz,
#    zip and gnutar/pax variants with files, dirs, symlinks, hardlinks, a
#    traversal and a sparse file.
# Nothing is stored in the repository.
set -euo pipefail
corpus=$(mkdir -p "$1" && cd "$1" && pwd)
writer=${WRITE_ARCHIVE_SEEDS:-$(cd "$corpus/../.." && pwd)/tests/write_archive_seeds}
if [[ -x "$writer" ]]; then
  "$writer" "$corpus"
else
  echo "no $writer: the malicious corpus is not seeded (build the target write_archive_seeds)" >&2
fi
command -v bsdtar >/dev/null || { echo "bsdtar missing: no bsdtar seeds"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/src"
mkdir -p "$src/app/bin" "$src/app/static"
printf '#!/bin/sh\necho hi\n' >"$src/app/bin/run" && chmod 755 "$src/app/bin/run"
printf 'body { color: red }\n' >"$src/app/static/site.css"
head -c 3000 /dev/zero | tr '\0' 'a' >"$src/app/static/big.txt"
ln -s app/bin "$src/current"
ln -s ../static/site.css "$src/app/bin/css"
ln "$src/app/static/site.css" "$src/app/static/site2.css"
: >"$src/empty"
cd "$src"
bsdtar -cf "$corpus/seed.tar" .
bsdtar -czf "$corpus/seed.tar.gz" .
bsdtar --format zip -cf "$corpus/seed.zip" .
bsdtar --format ustar -cf "$corpus/seed-ustar.tar" app
bsdtar --format pax -cf "$corpus/seed-pax.tar" app current
bsdtar --format gnutar -cf "$corpus/seed-gnu.tar" app
bsdtar -cjf "$corpus/seed.tar.bz2" app 2>/dev/null || true
bsdtar -cJf "$corpus/seed.tar.xz" app 2>/dev/null || true
# A refused one: traversal via -s rewriting.
bsdtar -cf "$corpus/seed-traversal.tar" -s ',^app,../app,' app 2>/dev/null || true
if tar --version 2>/dev/null | grep -q GNU; then
  truncate -s 64K "$work/sparse" && printf x >>"$work/sparse"
  tar --sparse -C "$work" -cf "$corpus/seed-sparse.tar" sparse
fi
echo "seeded $(ls "$corpus" | wc -l) archives into $corpus"
