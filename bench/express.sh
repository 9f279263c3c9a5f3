#!/usr/bin/env bash
# @latchkey/express benchmark (issue 11 "Measures"): requests/s of an Express route behind
# auth.required() against the same route without it, same process, same token header, in one run.
#
#   bench/express.sh        # about 1 minute; needs node, npm, wrk
#
# Starts Latchkey (release build if present, else debug; it only serves the discovery document
# and the JWKS once) and examples/express-api/bench-server.mjs on free ports, logs a user in, then alternates
# BENCH_ROUNDS (4) times `wrk -t1 -c32 -d${BENCH_DURATION}s` (5 s) on /unprotected and /protected, both
# with the Authorization header, after a warm-up, in alternating order. Target: protected >= 0.9 x unprotected (verified tokens are
# cached by the SHA-256 of their text until they expire, so the signature is checked once).
# The Express process's CPU time per request (from /proc) is printed too: the capacity ratio it
# gives is what a dedicated core would see, and moves far less with the load of a shared machine.
# Then prints the cost of one verify() call, cached and uncached (examples/express-api/bench-verify.mjs).
#
# Knobs: BENCH_DURATION (default 5), BENCH_ROUNDS (default 4), LATCHKEY_BIN.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-4}
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

# now_us, free_port, wait_http
source "$ROOT/bench/lib.sh"

LK_PORT=$(free_port)
LK=http://127.0.0.1:$LK_PORT
(cd "$WORK" && LATCHKEY_DATABASE_URL="sqlite://$WORK/latchkey.db" LATCHKEY_COOKIE_SECURE=false \
    LATCHKEY_LISTEN="127.0.0.1:$LK_PORT" LATCHKEY_LOG=warn exec "$LATCHKEY" serve) >>"$WORK/latchkey.log" 2>&1 &
PIDS+=($!)
wait_http "$!" "$LK/healthz" "$WORK/latchkey.log"
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
wait_http "$!" "$EX/unprotected" "$WORK/express.log"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$EX/protected") == 401 ]] || die "protected route is open"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $TOKEN" "$EX/protected") == 200 ]] || die "token refused"

EX_PID=${PIDS[-1]}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$EX_PID/stat"; }
declare -a U P CU CP
run() { # PATH -> "requests/s cpu-µs-per-request" of the Express process
    local before after out
    before=$(cpu_ticks)
    out=$(wrk -t1 -c32 -d"${DURATION}s" -H "authorization: Bearer $TOKEN" "$EX$1")
    after=$(cpu_ticks)
    awk -v b="$before" -v a="$after" -v hz="$(getconf CLK_TCK)" '
        / requests in / {n = $1} /Requests\/sec/ {r = $2}
        END {printf "%s %.1f\n", r, (a - b) * 1e6 / hz / n}' <<<"$out"
}
# A warm-up of each route, then rounds in alternating order (U P, P U, ...) so that a drift
# in the machine's load falls on both routes alike.
wrk -t1 -c32 -d2s -H "authorization: Bearer $TOKEN" "$EX/unprotected" >/dev/null
wrk -t1 -c32 -d2s -H "authorization: Bearer $TOKEN" "$EX/protected" >/dev/null
for i in $(seq 1 "$ROUNDS"); do
    if (( i % 2 )); then
        read -r u cu <<<"$(run /unprotected)"; read -r p cp <<<"$(run /protected)"
    else
        read -r p cp <<<"$(run /protected)"; read -r u cu <<<"$(run /unprotected)"
    fi
    U+=("$u"); P+=("$p"); CU+=("$cu"); CP+=("$cp")
    log "round $i unprotected $u req/s ($cu µs CPU/req), protected $p req/s ($cp µs CPU/req)"
done
TOKEN2=$(curl -fsS -H 'content-type: application/json' --data "$BODY" "$LK/auth/login" |
    sed -nE 's/.*"access_token" *: *"([^"]+)".*/\1/p')
(cd "$ROOT/examples/express-api" && BENCH_ISSUER=$LK BENCH_TOKEN=$TOKEN BENCH_TOKEN2=$TOKEN2 node bench-verify.mjs)
awk -v u="${U[*]}" -v p="${P[*]}" -v cu="${CU[*]}" -v cp="${CP[*]}" 'BEGIN {
    n = split(u, a, " "); split(p, b, " "); split(cu, c, " "); split(cp, d, " ")
    su = 0; sp = 0; scu = 0; scp = 0
    for (i = 1; i <= n; i++) { su += a[i]; sp += b[i]; scu += c[i]; scp += d[i] }
    printf "unprotected %.0f req/s, protected %.0f req/s, ratio %.3f (target >= 0.9)\n", su / n, sp / n, sp / su
    printf "CPU of the Express process per request: unprotected %.1f µs, protected %.1f µs: capacity ratio %.3f\n", scu / n, scp / n, scu / scp
}'
