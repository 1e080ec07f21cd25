#!/bin/sh
# reprise-deploy.sh: create a build, upload its artifact, deploy it to a stage
# and wait for the result, with curl only (no reprise CLI needed).
#
#   reprise-deploy.sh APP RELEASE ARTIFACT_NAME FILE STAGE
#
# Environment: REPRISE_SERVER (https://reprise.example.com), REPRISE_TOKEN (a
# deployer token), optional REPRISE_TIMEOUT (seconds to wait, default 1800)
# and REPRISE_POLL (seconds between polls, default 2).
# Needs: a POSIX sh, curl 7.76 or newer (--fail-with-body), grep, sed, cut.
# Exit: 0 the deployment succeeded; 1 it did not (failed, cancelled, rejected,
# interrupted, expired, still not done at the timeout) or an API error; 2 usage.
set -eu

if [ $# -ne 5 ]; then
  echo "usage: reprise-deploy.sh APP RELEASE ARTIFACT_NAME FILE STAGE" >&2
  exit 2
fi
app=$1 release=$2 name=$3 file=$4 stage=$5
for value in "$app" "$release" "$name" "$stage"; do
  case $value in
    '' | *[!A-Za-z0-9._-]*)
      echo "reprise-deploy: '$value' must be letters, digits, '.', '_' or '-'" >&2
      exit 2 ;;
  esac
done
[ -f "$file" ] || { echo "reprise-deploy: no file '$file'" >&2; exit 2; }
: "${REPRISE_SERVER:?set REPRISE_SERVER to the server URL}"
: "${REPRISE_TOKEN:?set REPRISE_TOKEN to a deployer token}"
timeout=${REPRISE_TIMEOUT:-1800} poll=${REPRISE_POLL:-2}
api="${REPRISE_SERVER%/}/api/v1"
release_path="$api/applications/$app/releases/$release"

# The token goes to curl in a file only we can read, never on a command line.
headers=$(mktemp)
trap 'rm -f "$headers"' EXIT
printf 'Authorization: Bearer %s\n' "$REPRISE_TOKEN" >"$headers"
json='Content-Type: application/json'

# call METHOD URL [curl options...]: prints the answer; an HTTP error prints
# the API's message and stops the script.
call() {
  method=$1 url=$2
  shift 2
  if ! answer=$(curl -sS --fail-with-body -X "$method" -H @"$headers" "$@" "$url"); then
    echo "reprise-deploy: $method $url failed: $answer" >&2
    exit 1
  fi
  printf '%s\n' "$answer"
}
# number KEY: the first "KEY":123 of the JSON on stdin.
number() { grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2; }

# The release, unless it exists (a second build of the same version).
code=$(curl -sS -o /dev/null -w '%{http_code}' -H @"$headers" "$release_path")
if [ "$code" = 404 ]; then
  call POST "$api/applications/$app/releases" -H "$json" --data "{\"number\":\"$release\"}" >/dev/null
elif [ "$code" != 200 ]; then
  echo "reprise-deploy: GET $release_path answered HTTP $code" >&2
  exit 1
fi
answer=$(call POST "$release_path/builds" -H "$json" --data '{}')
build=$(printf '%s\n' "$answer" | number number)
echo "reprise-deploy: $app $release build $build"
call PUT "$release_path/builds/$build/artifacts/$name" \
  -H 'Content-Type: application/octet-stream' --data-binary @"$file" >/dev/null
answer=$(call POST "$release_path/builds/$build/deploy" -H "$json" --data "{\"stage\":\"$stage\"}")
id=$(printf '%s\n' "$answer" | number id)
echo "reprise-deploy: deployment $id of $app $release build $build to $stage"

# Poll the log until the deployment is final, printing its lines as they come.
seq=0 waited=0 status=
step=${poll%.*}
[ "${step:-0}" -ge 1 ] || step=1
while :; do
  page=$(call GET "$api/deployments/$id/log?after=$seq")
  printf '%s\n' "$page" | grep -o '"text":"\([^"\\]\|\\.\)*"' | sed 's/^"text":"//; s/"$//' || true
  last=$(printf '%s\n' "$page" | grep -o '"seq":[0-9]*' | tail -n 1 | cut -d: -f2)
  seq=${last:-$seq}
  status=$(printf '%s\n' "$page" | grep -o '"status":"[a-z]*"' | tail -n 1 | cut -d'"' -f4)
  case $status in succeeded | failed | cancelled | interrupted | expired) break ;; esac
  if [ "$waited" -ge "$timeout" ]; then
    echo "reprise-deploy: deployment $id is still $status after ${timeout}s (left running)" >&2
    exit 1
  fi
  sleep "$poll"
  waited=$((waited + step))
done
echo "reprise-deploy: deployment $id $status"
[ "$status" = succeeded ]
