#!/usr/bin/env bash
# files-api benchmark (issue 6 "Performance"): GET /files/{id} with token verification against
# the same route with verification switched off, same binary, same machine, same load tool.
#
#   bench/files.sh          # about 1 minute after the release build
#
# Starts Latchkey and files-api (release builds) on free ports with fresh temporary databases,
# creates a user and one file, then alternates ROUNDS times:
#   verify    files-api verifying the Bearer token (guard: SHA-256 of the token + cache lookup;
#             the EdDSA signature is checked once per token and cached until it expires)
#   no-verify files-api with FILES_INSECURE_NO_VERIFY=true, the caller taken from X-Bench-User
# each with `wrk -t2 -c32 -d${BENCH_DURATION}s`. Target: verify >= 0.8 x no-verify.
# Then prints the guard's own cost per call from the verify_cost example (cached and
# uncached verification on one core).
#
# Knobs: BENCH_DURATION (seconds per wrk run, default 10), BENCH_ROUNDS (default 2),
# BENCH_SKIP_BUILD=1 (use the binaries already built).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-2}
# BENCH_PROFILE=debug runs the debug binaries (a smoke run of the script, not a measure).
PROFILE=${BENCH_PROFILE:-release}
LATCHKEY=$ROOT/target/$PROFILE/latchkey
FILES=$ROOT/target/$PROFILE/files-api
COST=$ROOT/target/$PROFILE/examples/verify_cost
PASSWORD='quartz lantern ferry mosaic 71'

log() { printf '[files-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in curl wrk awk; do command -v "$tool" >/dev/null || die "$tool is required (apt-get install $tool)"; done
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "building release binaries"
    (cd "$ROOT" && cargo build --release -p latchkey -p files-api && cargo build --release -p latchkey-guard --example verify_cost)
fi
[[ -x $LATCHKEY && -x $FILES && -x $COST ]] || die "missing $PROFILE binaries"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/files-bench.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# now_us, free_port (Latchkey: its issuer is its URL, so the port comes first), wait_http,
# log_lines, listening_addr
source "$ROOT/bench/lib.sh"
json_field() { sed -nE "s/.*\"$1\" *: *\"([^\"]+)\".*/\1/p"; }

# ---------------------------------------------------------------- Latchkey and a user
LK_PORT=$(free_port)
LK=http://127.0.0.1:$LK_PORT
LATCHKEY_DATABASE_URL="sqlite://$WORK/latchkey.db" LATCHKEY_COOKIE_SECURE=false \
    LATCHKEY_LISTEN="127.0.0.1:$LK_PORT" LATCHKEY_LOG=warn "$LATCHKEY" serve >>"$WORK/latchkey.log" 2>&1 &
PIDS+=($!)
wait_http "$!" "$LK/healthz" "$WORK/latchkey.log"
BODY="{\"username\":\"bench\",\"password\":\"$PASSWORD\"}"
curl -fsS -o /dev/null -H 'content-type: application/json' --data "$BODY" "$LK/auth/register"
LOGIN=$(curl -fsS -H 'content-type: application/json' --data "$BODY" "$LK/auth/login")
TOKEN=$(json_field access_token <<<"$LOGIN")
USER_ID=$(sed -nE 's/.*"user" *: *\{[^}]*"id" *: *"([^"]+)".*/\1/p' <<<"$LOGIN")
[[ -n $TOKEN && -n $USER_ID ]] || die "login gave no token or user id: $LOGIN"

# ---------------------------------------------------------------- files-api, both modes
FILES_PID=
start_files() { # extra env assignments...
    local skip
    skip=$(log_lines "$WORK/files.log")
    # Port 0: files-api logs the address it got (its info line; the rest stays at warn).
    env FILES_LISTEN="127.0.0.1:0" FILES_ISSUER="$LK" FILES_LOG=warn,files_api=info \
        FILES_DATABASE_URL="sqlite://$WORK/files.db" "$@" "$FILES" >>"$WORK/files.log" 2>&1 &
    FILES_PID=$!
    PIDS+=("$FILES_PID")
    FB=http://$(listening_addr "$FILES_PID" "$WORK/files.log" files-api "$skip")
    wait_http "$FILES_PID" "$FB/healthz" "$WORK/files.log"
}
stop_files() { kill "$FILES_PID" 2>/dev/null || true; wait "$FILES_PID" 2>/dev/null || true; }

start_files
FILE_ID=$(curl -fsS -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    --data '{"name":"bench.txt","content":"a small file, as most are"}' "$FB/files" | json_field id)
[[ -n $FILE_ID ]] || die "could not create the file"
stop_files

rps() { awk '/^Requests\/sec:/ { print $2 }'; }
run() { # MODE -> requests/s
    local mode=$1 out
    if [[ $mode == verify ]]; then
        start_files
        curl -fsS -o /dev/null -H "authorization: Bearer $TOKEN" "$FB/files/$FILE_ID" || die "verify-mode GET failed"
        wrk -t2 -c32 -d2s -H "Authorization: Bearer $TOKEN" "$FB/files/$FILE_ID" >/dev/null
        out=$(wrk -t2 -c32 -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$FB/files/$FILE_ID")
    else
        start_files FILES_INSECURE_NO_VERIFY=true
        curl -fsS -o /dev/null -H "x-bench-user: $USER_ID" "$FB/files/$FILE_ID" || die "no-verify GET failed"
        wrk -t2 -c32 -d2s -H "X-Bench-User: $USER_ID" "$FB/files/$FILE_ID" >/dev/null
        out=$(wrk -t2 -c32 -d"${DURATION}s" --latency -H "X-Bench-User: $USER_ID" "$FB/files/$FILE_ID")
    fi
    stop_files
    echo "$out" >&2
    grep -q 'Non-2xx' <<<"$out" && die "$mode: non-2xx answers"
    rps <<<"$out"
}

VERIFY=()
PLAIN=()
for round in $(seq 1 "$ROUNDS"); do
    log "round $round/$ROUNDS: verify"
    VERIFY+=("$(run verify)")
    log "round $round/$ROUNDS: no-verify"
    PLAIN+=("$(run no-verify)")
done
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.0f", s / NR }'; }
V=$(mean "${VERIFY[@]}")
P=$(mean "${PLAIN[@]}")
RATIO=$(awk -v a="$V" -v b="$P" 'BEGIN { printf "%.2f", a / b }')
VERDICT=$(awk -v r="$RATIO" 'BEGIN { print (r >= 0.8 ? "PASS" : "MISS") }')

log "guard cost per call (one core)"
COST_LINES=$("$COST")

cat <<REPORT

## files-api GET /files/{id}: verification on vs off ($(nproc) cores, wrk -t2 -c32 -d${DURATION}s, $ROUNDS rounds)
| mode | requests/s per round | mean |
|---|---|---|
| verify (Bearer, guard) | ${VERIFY[*]} | $V |
| no-verify (X-Bench-User) | ${PLAIN[*]} | $P |
ratio verify / no-verify: **$RATIO** (target >= 0.8: $VERDICT)

guard cost per call:
$COST_LINES
REPORT
