#!/usr/bin/env bash
# Runs one suite of web UI scenarios: installs playwright-core from the
# lockfile when needed (npm ci), then node run.mjs SUITE SERVER_BINARY SCREENSHOT_DIR.
# Usage: tests/browser/run.sh core build/bin/reprise-server build/screenshots
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
suite="${1:?usage: run.sh SUITE REPRISE_SERVER SCREENSHOT_DIR}"
server="$(realpath "${2:?usage: run.sh SUITE REPRISE_SERVER SCREENSHOT_DIR}")"
shots="${3:?usage: run.sh SUITE REPRISE_SERVER SCREENSHOT_DIR}"
mkdir -p "$shots"
shots="$(realpath "$shots")"
command -v node >/dev/null || { echo "browser tests: node is not installed (scripts/install-deps.sh --browser)" >&2; exit 1; }
chromium="${CHROMIUM:-/usr/bin/chromium}"
[[ -x "$chromium" ]] || { echo "browser tests: $chromium is missing (scripts/install-deps.sh --browser)" >&2; exit 1; }
cd "$here"
# One installer at a time (parallel builds share this directory).
exec 9>"$here/.npm-install.lock"
flock 9
if [[ ! -f node_modules/playwright-core/package.json ]] ||
   [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --prefer-offline >&2
fi
flock -u 9
exec node "$here/run.mjs" "$suite" "$server" "$shots" "$chromium"
