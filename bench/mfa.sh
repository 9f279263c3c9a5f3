#!/usr/bin/env bash
# Logins/s with TOTP against password alone, and the server time of the second step
# (issue 12 "Measures": the second step must add well under 1 ms of server time).
#
#   bench/mfa.sh            # release build, then about a minute
#
# Starts the release server on a free port with a fresh SQLite database (registration limits
# raised for the setup), then runs bench/mfa.mjs (Node 20): see its header for what is measured.
# Knobs: MFA_USERS (300 per group), MFA_CONCURRENCY (8), BENCH_DURATION (10 s per phase),
# BENCH_SKIP_BUILD=1, BENCH_PROFILE=debug (a smoke run, not a measure).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
PROFILE=${BENCH_PROFILE:-release}
BIN=$ROOT/target/$PROFILE/latchkey

log() { printf '[mfa-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for tool in curl node; do command -v "$tool" >/dev/null || die "$tool is required"; done
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --"$PROFILE" -p latchkey --bin latchkey 2>/dev/null ||
        cargo build -p latchkey --bin latchkey)
fi
[[ -x $BIN ]] || die "missing $BIN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lkmfa.XXXXXX")
SERVER_BIN=$WORK/lkmfa-server
cp "$BIN" "$SERVER_BIN"
SERVER_PID=
cleanup() {
    [[ -n $SERVER_PID ]] && { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
LATCHKEY_DATABASE_URL="sqlite://$WORK/bench.db" \
    LATCHKEY_COOKIE_SECURE=false \
    LATCHKEY_LISTEN="127.0.0.1:0" \
    LATCHKEY_REGISTER_MAX_PER_IP=100000 \
    LATCHKEY_REGISTER_MAX_GLOBAL=100000 \
    LATCHKEY_LOGIN_MAX_FAILURES_PER_IP=100000 \
    "$SERVER_BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
ADDR=$(listening_addr "$SERVER_PID" "$WORK/server.log" latchkey 0)
export BASE=http://$ADDR SERVER_PID
wait_http "$SERVER_PID" "$BASE/healthz" "$WORK/server.log"
log "server $PROFILE at $BASE (pid $SERVER_PID), $(nproc) cores"
node "$BENCH_DIR/mfa.mjs"
