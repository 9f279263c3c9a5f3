#!/usr/bin/env bash
# @latchkey/express benchmark (issue 11 "Measures"): requests/s of an Express route behind
# auth.required() against the same route without it, same process, same token header, in one run.
#
#   bench/express.sh        # about 1 minute; needs node, npm, wrk
#
# Starts Latchkey (release build if present, else debug; it only serves the discovery document
# and the JWKS once) and examples/express-api/bench-server.mjs on free ports, logs a user in, then alternates
# BENCH_ROUNDS times `wrk -t1 -c32 -d${BENCH_DURATION}s` on /unprotected and /protected, both
# with the Authorization header. Target: protected >= 0.9 x unprotected (verified tokens are
# cached by the SHA-256 of their text until they expire, so the signature is checked once).
# Then prints the cost of one verify() call, cached and uncached (examples/express-api/bench-verify.mjs).
#
# Knobs: BENCH_DURATION (default 10), BENCH_ROUNDS (default 2), LATCHKEY_BIN.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-2}
LATCHKEY=${LATCHKEY_BIN:-$ROOT/target/release/latchkey}
[[ -x $LATCHKEY ]] || LATCHKEY=$ROOT/target/debug/latchkey
PASSWORD='quartz lantern ferry mosaic 71'

log() { printf '[express-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for tool in curl wrk node npm awk; do command -v "$tool" >/dev/null || die "$tool is required"; done
[[ -x $LATCHKEY ]] || die "no latchkey binary (cargo build -p latchkey)"

if [[ ! -d $ROOT/clients/express/node_modules || ! -f $ROOT/clients/express/dist/esm/index.js ]]; then
    (cd "$ROOT/clients/express" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
fi
if [[ ! -d $ROOT/examples/express-api/node_modules ]]; then
    (cd "$ROOT/examples/express-api" && npm ci --no-audit --no-fund --loglevel=error)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/express-bench.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
wait_ready() {
    for _ in $(seq 1 1500); do curl -fs -o /dev/null "$1" && return 0; sleep 0.02; done
    die "$1 not ready"
}

LK_PORT=$(free_port)
LK=http://127.0.0.1:$LK_PORT
(cd "$WORK" && LATCHKEY_DATABASE_URL="sqlite://$WORK/latchkey.db" LATCHKEY_COOKIE_SECURE=false \
    LATCHKEY_LISTEN="127.0.0.1:$LK_PORT" LATCHKEY_LOG=warn exec "$LATCHKEY" serve) >>"$WORK/latchkey.log" 2>&1 &
PIDS+=($!)
wait_ready "$LK/healthz"
BODY="{\"username\":\"bench\",\"password\":\"$PASSWORD\"}"
curl -fsS -o /dev/null -H 'content-type: application/json' --data "$BODY" "$LK/auth/register"
TOKEN=$(curl -fsS -H 'content-type: application/json' --data "$BODY" "$LK/auth/login" |
    sed -nE 's/.*"access_token" *: *"([^"]+)".*/\1/p')
[[ -n $TOKEN ]] || die "no token"

EX_PORT=$(free_port)
EX=http://127.0.0.1:$EX_PORT
# Run from examples/express-api so that `express` and `@latchkey/express` resolve there.
(cd "$ROOT/examples/express-api" && BENCH_ISSUER=$LK BENCH_PORT=$EX_PORT NODE_ENV=production \
    exec node bench-server.mjs) >>"$WORK/express.log" 2>&1 &
PIDS+=($!)
wait_ready "$EX/unprotected"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$EX/protected") == 401 ]] || die "protected route is open"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $TOKEN" "$EX/protected") == 200 ]] || die "token refused"

run() { # PATH -> requests/s
    wrk -t1 -c32 -d"${DURATION}s" -H "authorization: Bearer $TOKEN" "$EX$1" | awk '/Requests\/sec/ {print $2}'
}
declare -a U P
for i in $(seq 1 "$ROUNDS"); do
    U+=("$(run /unprotected)"); log "round $i unprotected ${U[-1]} req/s"
    P+=("$(run /protected)"); log "round $i protected   ${P[-1]} req/s"
done
TOKEN2=$(curl -fsS -H 'content-type: application/json' --data "$BODY" "$LK/auth/login" |
    sed -nE 's/.*"access_token" *: *"([^"]+)".*/\1/p')
(cd "$ROOT/examples/express-api" && BENCH_ISSUER=$LK BENCH_TOKEN=$TOKEN BENCH_TOKEN2=$TOKEN2 node bench-verify.mjs)
awk -v u="${U[*]}" -v p="${P[*]}" 'BEGIN {
    n = split(u, a, " "); split(p, b, " "); su = 0; sp = 0
    for (i = 1; i <= n; i++) { su += a[i]; sp += b[i] }
    printf "unprotected %.0f req/s, protected %.0f req/s, ratio %.3f (target >= 0.9)\n", su / n, sp / n, sp / su
}'
