#!/usr/bin/env bash
# /auth/me requests/s with the per-request access line off, on (text) and on (json), same binary.
# Build first: cargo build --release -p latchkey --bin latchkey. Run: bench/access_log.sh
set -euo pipefail
BIN=${LATCHKEY_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/release/latchkey}
D=$(mktemp -d)
PORT=18931
PW='Gl4cier-Marmot-Tandem-Quill-77'
start() { # $1 = LATCHKEY_LOG, $2 = format
  env -i PATH=$PATH LATCHKEY_DATABASE_URL=sqlite://$D/db.sqlite LATCHKEY_LISTEN=127.0.0.1:$PORT \
    LATCHKEY_COOKIE_SECURE=false LATCHKEY_LOG="$1" LATCHKEY_LOG_FORMAT="$2" "$BIN" serve 2>"$D/log" &
  SPID=$!
  for _ in $(seq 100); do curl -fs http://127.0.0.1:$PORT/healthz >/dev/null && return; sleep 0.05; done
}
stop() { kill "$SPID"; wait "$SPID" 2>/dev/null || true; }
start info text
curl -fs -XPOST -H 'content-type: application/json' -d "{\"username\":\"bench\",\"password\":\"$PW\"}" http://127.0.0.1:$PORT/auth/register >/dev/null
TOKEN=$(curl -fs -XPOST -H 'content-type: application/json' -d "{\"username\":\"bench\",\"password\":\"$PW\"}" http://127.0.0.1:$PORT/auth/login | jq -r .access_token)
stop
for round in 1 2; do
  for mode in "info,latchkey::access=off text" "info text" "info json"; do
    set -- $mode
    start "$1" "$2"
    wrk -t2 -c32 -d3s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$PORT/auth/me >/dev/null
    rps=$(wrk -t2 -c32 -d10s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$PORT/auth/me | awk '/Requests\/sec/ {print $2}')
    echo "round $round  LATCHKEY_LOG=$1 format=$2  /auth/me $rps req/s  (log $(wc -c <"$D/log") bytes)"
    stop
  done
done
rm -rf "$D"
