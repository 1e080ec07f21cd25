#!/usr/bin/env bash
# Builds the Debian packages, installs them with dpkg -i, checks the systemd
# units with systemd-analyze verify, and starts the installed server with the
# installed configuration until it answers /api/v1/health. Removes the packages
# again at the end. Needs root (dpkg). Usage: scripts/package-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

make package
debs=(build-package/reprise-server_*.deb build-package/reprise-agent_*.deb build-package/reprise-cli_*.deb)
dpkg -i "${debs[@]}"
cleanup() {
  local rc=$?
  if [[ -n "${server_pid:-}" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  dpkg --purge reprise-server reprise-agent reprise-cli >/dev/null || true
  exit "$rc"
}
trap cleanup EXIT

for f in /usr/bin/reprise-server /usr/bin/reprise-agent /usr/bin/reprise \
         /usr/share/bash-completion/completions/reprise \
         /etc/reprise/server.yaml /etc/reprise/agent.yaml \
         /usr/lib/systemd/system/reprise-server.service /usr/lib/systemd/system/reprise-agent.service; do
  [[ -e "$f" ]] || { echo "package-check: $f is not installed" >&2; exit 1; }
done
getent passwd reprise >/dev/null || { echo "package-check: user reprise missing" >&2; exit 1; }
systemd-analyze verify /usr/lib/systemd/system/reprise-server.service \
  /usr/lib/systemd/system/reprise-agent.service
reprise-server --config /etc/reprise/server.yaml --print-config >/dev/null

# The installed configuration, on free loopback ports so nothing else is disturbed.
log=$(mktemp)
runuser -u reprise -- /usr/bin/reprise-server --config /etc/reprise/server.yaml \
  --http 127.0.0.1:0 --agent-host 127.0.0.1 --agent-port 0 >"$log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  port=$(sed -n 's#.*listening on http://127.0.0.1:\([0-9]*\).*#\1#p' "$log" | head -n 1)
  if [[ -n "$port" ]] && curl -fsS "http://127.0.0.1:$port/api/v1/health" >/dev/null 2>&1; then
    echo "package-check: installed reprise-server answers /api/v1/health"
    exit 0
  fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
echo "package-check: the installed server did not answer; its log:" >&2
cat "$log" >&2
exit 1
