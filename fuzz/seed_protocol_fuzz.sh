#!/usr/bin/env bash
# Seeds the protocol fuzzer with one frame header of each message type.
set -euo pipefail
corpus=${1:?usage: seed_protocol_fuzz.sh CORPUS_DIR}
mkdir -p "$corpus"
n=0
for h in \
  '{"type":"hello","protocol":1,"name":"web-1","version":"1.0","public_key":"ab","enroll_token":"t"}' \
  '{"type":"challenge","nonce":"00112233445566778899aabbccddeeff"}' \
  '{"type":"auth","signature":"ab"}' '{"type":"welcome","status":"approved"}' \
  '{"type":"refused","code":"unauthenticated","message":"no","permanent":true}' \
  '{"type":"heartbeat"}' '{"type":"heartbeat_ack"}' \
  '{"type":"run","op":1,"target_path":"/srv","release":"1","build":"2","operation":"{}","limits":"{}"}' \
  '{"type":"cancel","op":1}' '{"type":"log","op":1,"level":"info"}' \
  '{"type":"progress","op":1,"phase":"transfer","bytes_done":1,"bytes_total":2,"files_done":0,"files_total":0}' \
  '{"type":"result","op":1,"kind":"error","message":"m","code":"io"}' \
  '{"type":"blob_get","op":1,"sha256":"ab","offset":0,"stream":3}' \
  '{"type":"blob_data","op":1,"offset":0,"total":5,"eof":true,"stream":3}' \
  '{"type":"blob_error","op":1,"message":"m","stream":3}' \
  '{"type":"files_get","op":1,"sha256":"ab","index":true,"stream":4}' \
  '{"type":"state_request","req":1,"target_path":"/srv"}' \
  '{"type":"validate_request","req":1,"target_path":"/srv","more":true}' \
  '{"type":"reply","req":1,"ok":false,"code":"not_found","message":"m"}' \
  '{"type":"probe_request","req":1,"target_path":"/srv"}'; do
  printf '%s' "$h" >"$corpus/seed-$n.json"
  n=$((n + 1))
done
echo "seeded $n headers into $corpus"
