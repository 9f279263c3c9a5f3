#!/usr/bin/env bash
# Login throughput with the audit trail on against off, in one run (issue 14; target: on / off
# >= 0.95). Each login with the trail on writes its refresh family and its `login` record in
# one transaction; with LATCHKEY_AUDIT=false only the family.
#
#   bench/audit.sh                 # builds target/release/latchkey first
#   BENCH_SKIP_BUILD=1 bench/audit.sh
#
# Knobs: BENCH_DURATION (seconds per wrk run, default 10), BENCH_ROUNDS (on/off alternations,
# default 3; the ratio is of the summed rates), BENCH_STORE_URL_ON / _OFF (default: fresh
# SQLite files). Each round starts a fresh server per mode (each mode on its own database),
# registers the bench user once, warms up 2 s, then runs `wrk -t2 -c8 -s login.lua`.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
BIN=$ROOT/target/release/latchkey
USERNAME=bench-user
PASSWORD='correct horse battery staple 7'

log() { printf '[audit-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk)"
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release -p latchkey --bin latchkey)
fi
[[ -x $BIN ]] || die "$BIN is missing"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lkaudit.XXXXXX")
SERVER_BIN=$WORK/lkaudit-server
cp "$BIN" "$SERVER_BIN"
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
source "$BENCH_DIR/lib.sh"

# start_server MODE(true|false) URL: sets SERVER_PID and BASE.
start_server() {
    local skip addr
    skip=$(log_lines "$WORK/server.log")
    LATCHKEY_DATABASE_URL="$2" LATCHKEY_AUDIT="$1" LATCHKEY_COOKIE_SECURE=false \
        LATCHKEY_LISTEN="127.0.0.1:0" "$SERVER_BIN" serve >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    addr=$(listening_addr "$SERVER_PID" "$WORK/server.log" latchkey "$skip")
    BASE=http://$addr
    wait_http "$SERVER_PID" "$BASE/healthz" "$WORK/server.log"
}

export LKBENCH_DIR=$BENCH_DIR LKBENCH_USER=$USERNAME LKBENCH_PASSWORD=$PASSWORD
BODY=$(printf '{"username":"%s","password":"%s"}' "$USERNAME" "$PASSWORD")
declare -A URL=(
    [true]=${BENCH_STORE_URL_ON:-sqlite://$WORK/on.db}
    [false]=${BENCH_STORE_URL_OFF:-sqlite://$WORK/off.db}
)
declare -A TOTAL_REQ=([true]=0 [false]=0) TOTAL_SEC=([true]=0 [false]=0) REGISTERED=()
for round in $(seq 1 "$ROUNDS"); do
    for mode in true false; do
        start_server "$mode" "${URL[$mode]}"
        if [[ -z ${REGISTERED[$mode]:-} ]]; then
            curl -fsS -o /dev/null -H 'Content-Type: application/json' --data "$BODY" \
                "$BASE/auth/register" || die "registration failed"
            REGISTERED[$mode]=1
        fi
        wrk -t2 -c8 -d2s -s "$BENCH_DIR/login.lua" "$BASE/auth/login" >/dev/null 2>&1 || true
        out=$(wrk --timeout 10s -t2 -c8 -d"${DURATION}s" -s "$BENCH_DIR/login.lua" "$BASE/auth/login")
        line=$(grep '^BENCH ' <<<"$out" | tail -1)
        req=$(tr ' ' '\n' <<<"$line" | sed -n 's/^requests=//p')
        sec=$(tr ' ' '\n' <<<"$line" | sed -n 's/^seconds=//p')
        non2xx=$(tr ' ' '\n' <<<"$line" | sed -n 's/^non2xx=//p')
        [[ $non2xx == 0 ]] || die "audit=$mode: $non2xx non-2xx answers"
        log "round $round audit=$mode: $line"
        TOTAL_REQ[$mode]=$((TOTAL_REQ[$mode] + req))
        TOTAL_SEC[$mode]=$(awk -v a="${TOTAL_SEC[$mode]}" -v b="$sec" 'BEGIN { print a + b }')
        stop_server
    done
done
ON=$(awk -v r="${TOTAL_REQ[true]}" -v s="${TOTAL_SEC[true]}" 'BEGIN { printf "%.1f", r / s }')
OFF=$(awk -v r="${TOTAL_REQ[false]}" -v s="${TOTAL_SEC[false]}" 'BEGIN { printf "%.1f", r / s }')
RATIO=$(awk -v a="$ON" -v b="$OFF" 'BEGIN { printf "%.3f", a / b }')
VERDICT=$(awk -v r="$RATIO" 'BEGIN { print (r >= 0.95 ? "PASS" : "MISS") }')
echo "| measure | audit on | audit off | on / off | target |"
echo "| --- | --- | --- | --- | --- |"
echo "| POST /auth/login (wrk -t2 -c8, ${ROUNDS}×${DURATION}s each) | $ON logins/s | $OFF logins/s | $RATIO | >= 0.95 $VERDICT |"
