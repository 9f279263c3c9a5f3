#!/usr/bin/env bash
# Latchkey under a registration flood (issue 9, item 1 "Bench").
#
#   bench/flood.sh            # about 2 minutes with the default BENCH_DURATION=15
#
# Starts one release server on 127.0.0.1 with a fresh temporary SQLite database and measures,
# in one run, with wrk:
#   idle   POST /auth/login (wrk -t1 -c2) then GET /auth/me with a bearer token (wrk -t1 -c4),
#          BENCH_DURATION seconds each: p50, p99, rate;
#   flood  the same two, while a separate wrk (-t1 -c64, started BENCH_FLOOD_WARMUP seconds
#          before and lasting until after both) posts /auth/register with a new username on
#          every request (register.lua): how many got 201, 503 `overloaded`, anything else,
#          and their p50/p99;
#   after  the same two again once the flood has ended (BENCH_AFTER=0 skips it).
# and prints a summary with the flood/idle ratios of the p99s, also written to
# bench/results-flood.md (gitignored).
#
# The registration throttles are raised (LATCHKEY_REGISTER_MAX_PER_IP / _MAX_GLOBAL = 1000000)
# so the flood reaches the hashing queue, and so are the login throttles (per account / per
# address) so the measured logins are never throttled. LATCHKEY_PASSWORD_QUEUE keeps its
# default (32: 32 waiting logins, 8 waiting registrations).
#
# Knobs (environment): LATCHKEY_BIN (server binary; default target/release/latchkey, built with
# cargo when missing), BENCH_SKIP_BUILD=1 (never build), BENCH_DURATION (seconds per
# measurement, default 15), BENCH_FLOOD_CONNECTIONS (default 64), BENCH_FLOOD_WARMUP (seconds
# between the flood's start and the first measurement, default 2), BENCH_LOGIN_CONNECTIONS
# (default 2), BENCH_ME_CONNECTIONS (default 4), BENCH_AFTER (default 1).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
DURATION=${BENCH_DURATION:-15}
FLOOD_CONN=${BENCH_FLOOD_CONNECTIONS:-64}
FLOOD_WARMUP=${BENCH_FLOOD_WARMUP:-2}
LOGIN_CONN=${BENCH_LOGIN_CONNECTIONS:-2}
ME_CONN=${BENCH_ME_CONNECTIONS:-4}
AFTER=${BENCH_AFTER:-1}
RESULTS=$BENCH_DIR/results-flood.md

USERNAME=bench-user
PASSWORD='correct horse battery staple 7'

log() { printf '[flood %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for knob in DURATION FLOOD_CONN FLOOD_WARMUP LOGIN_CONN ME_CONN; do
    [[ ${!knob} =~ ^[1-9][0-9]{0,3}$ ]] || die "$knob must be a whole number from 1 to 9999 (got '${!knob}')"
done
# The flood outlasts both measurements: warm-up + 2 measurements + a 3 s margin.
FLOOD_SECONDS=$((FLOOD_WARMUP + 2 * DURATION + 3))

# ---------------------------------------------------------------------------- tools, binary
if ! command -v wrk >/dev/null; then
    log "wrk not found: installing it with apt-get"
    if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq wrk
fi
for tool in curl wrk awk; do command -v "$tool" >/dev/null || die "$tool is required"; done

if [[ -n ${LATCHKEY_BIN:-} ]]; then
    BIN=$LATCHKEY_BIN
else
    BIN=$ROOT/target/release/latchkey
    if [[ ! -x $BIN && ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
        log "building the release binary"
        (cd "$ROOT" && cargo build --release -p latchkey --bin latchkey)
    fi
fi
[[ -x $BIN ]] || die "no server binary at $BIN (set LATCHKEY_BIN, or build it)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lkflood.XXXXXX")
# A copy with its own name, out of reach of scripts that stop "latchkey" processes by name.
SERVER_BIN=$WORK/lkflood-server
cp "$BIN" "$SERVER_BIN"
SERVER_PID=
FLOOD_PID=
stop_flood() {
    if [[ -n $FLOOD_PID ]]; then
        kill "$FLOOD_PID" 2>/dev/null || true
        wait "$FLOOD_PID" 2>/dev/null || true
        FLOOD_PID=
    fi
}
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
cleanup() {
    local rc=$?
    stop_flood
    stop_server
    if [[ $rc != 0 && -f $WORK/server.log ]]; then
        cp "$WORK/server.log" "${TMPDIR:-/tmp}/latchkey-flood-server.log"
        log "failed (exit $rc); server log kept in ${TMPDIR:-/tmp}/latchkey-flood-server.log"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------- helpers
# now_us, probe_healthz, log_lines, listening_addr
source "$BENCH_DIR/lib.sh"

start_server() {
    local db=$1 deadline skip
    skip=$(log_lines "$WORK/server.log")
    LATCHKEY_DATABASE_URL="sqlite://$db" \
        LATCHKEY_COOKIE_SECURE=false \
        LATCHKEY_LISTEN="127.0.0.1:0" \
        LATCHKEY_REGISTER_MAX_PER_IP=1000000 \
        LATCHKEY_REGISTER_MAX_GLOBAL=1000000 \
        LATCHKEY_LOGIN_MAX_FAILURES_PER_IP=1000000 \
        LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT=1000000 \
        "$SERVER_BIN" serve >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    # The server binds a port the system picks and logs it (no port to guess and race for).
    PORT=$(listening_addr "$SERVER_PID" "$WORK/server.log" latchkey "$skip")
    PORT=${PORT##*:}
    BASE=http://127.0.0.1:$PORT
    deadline=$(($(now_us) + 10000000))
    until probe_healthz; do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; SERVER_PID=; die "server exited"; }
        (($(now_us) < deadline)) || die "server not ready within 10 s"
        sleep 0.01
    done
}

rss_kb() {
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; die "the server (pid $SERVER_PID) has exited"; }
    awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# field "BENCH a=1 b=2" b -> 2
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }

export LKBENCH_DIR=$BENCH_DIR
export LKBENCH_USER=$USERNAME
export LKBENCH_PASSWORD=$PASSWORD
LKBENCH_RUN=$(printf '%x%04x' "$(date +%s)" "$RANDOM")
export LKBENCH_RUN

# run_wrk NAME ARGS...: runs wrk in the foreground, keeps its output in $WORK/NAME.txt and
# prints its BENCH line.
run_wrk() {
    local name=$1
    shift
    log "wrk $name: wrk $*"
    wrk --timeout 10s "$@" >"$WORK/$name.txt" 2>&1 || { cat "$WORK/$name.txt" >&2; die "wrk $name failed"; }
    cat "$WORK/$name.txt" >&2
    grep '^BENCH ' "$WORK/$name.txt" | tail -1
}

# measure PHASE: one login measurement, then one /auth/me measurement; sets LOGIN_<PHASE> and
# ME_<PHASE> to their BENCH lines.
measure() {
    local phase=$1 line
    line=$(run_wrk "login-$phase" -t1 -c"$LOGIN_CONN" -d"${DURATION}s" -s "$BENCH_DIR/login.lua" "$BASE/auth/login")
    printf -v "LOGIN_$phase" '%s' "$line"
    line=$(run_wrk "me-$phase" -t1 -c"$ME_CONN" -d"${DURATION}s" -s "$BENCH_DIR/plain.lua" \
        -H "Authorization: Bearer $ACCESS" "$BASE/auth/me")
    printf -v "ME_$phase" '%s' "$line"
}

# ---------------------------------------------------------------------------- server, user
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
DB=$WORK/flood.db
start_server "$DB"
log "server pid $SERVER_PID on $BASE (fresh DB $DB)"

LOGIN_BODY=$(printf '{"username":"%s","password":"%s"}' "$USERNAME" "$PASSWORD")
code=$(curl -sS -o "$WORK/register.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data "$LOGIN_BODY" "$BASE/auth/register")
[[ $code == 201 ]] || { cat "$WORK/register.json" >&2; die "register answered $code"; }
code=$(curl -sS -o "$WORK/login.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data "$LOGIN_BODY" "$BASE/auth/login")
[[ $code == 200 ]] || { cat "$WORK/login.json" >&2; die "login answered $code"; }
ACCESS=$(sed -nE 's/.*"access_token" *: *"([^"]+)".*/\1/p' "$WORK/login.json")
[[ -n $ACCESS ]] || die "no access_token in the login answer"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ACCESS" "$BASE/auth/me")
[[ $code == 200 ]] || die "/auth/me answered $code"
# The token must outlive the run (the default access-token TTL is 10 minutes).

# ---------------------------------------------------------------------------- warm-up, idle
wrk -t1 -c"$LOGIN_CONN" -d2s -s "$BENCH_DIR/login.lua" "$BASE/auth/login" >/dev/null
wrk -t1 -c"$ME_CONN" -d2s -H "Authorization: Bearer $ACCESS" "$BASE/auth/me" >/dev/null
RSS_IDLE=$(rss_kb)
log "idle: login and /auth/me, ${DURATION} s each"
measure idle

# ---------------------------------------------------------------------------- flood
log "flood: wrk -t1 -c$FLOOD_CONN -d${FLOOD_SECONDS}s on /auth/register (register.lua), started in the background"
wrk --timeout 10s -t1 -c"$FLOOD_CONN" -d"${FLOOD_SECONDS}s" -s "$BENCH_DIR/register.lua" \
    "$BASE/auth/register" >"$WORK/flood.txt" 2>&1 &
FLOOD_PID=$!
FLOOD_T0=$(now_us)
sleep "$FLOOD_WARMUP"
kill -0 "$FLOOD_PID" 2>/dev/null || { cat "$WORK/flood.txt" >&2; die "the flood's wrk ended early"; }
measure flood
MEASURED_US=$(($(now_us) - FLOOD_T0))
kill -0 "$FLOOD_PID" 2>/dev/null || die "the flood ended before the measurements did (raise the margin)"
RSS_FLOOD=$(rss_kb)
# Wait for the flood's own end (bounded: its duration plus 20 s for wrk's 10 s timeout).
deadline=$((FLOOD_T0 + (FLOOD_SECONDS + 20) * 1000000))
while kill -0 "$FLOOD_PID" 2>/dev/null; do
    (($(now_us) < deadline)) || { stop_flood; die "the flood's wrk did not end"; }
    sleep 0.2
done
flood_rc=0
wait "$FLOOD_PID" || flood_rc=$?
FLOOD_PID=
cat "$WORK/flood.txt" >&2
[[ $flood_rc == 0 ]] || die "the flood's wrk failed (exit $flood_rc)"
FLOOD=$(grep '^BENCH ' "$WORK/flood.txt" | tail -1)
[[ -n $FLOOD ]] || die "no BENCH line from the flood"
log "flood ended; measurements covered $((MEASURED_US / 1000)) ms of its ${FLOOD_SECONDS} s"

# ---------------------------------------------------------------------------- after
if [[ $AFTER == 1 ]]; then
    log "after the flood: login and /auth/me, ${DURATION} s each"
    measure after
fi
RSS_END=$(rss_kb)
USERS=$(awk -v n="$(field "$FLOOD" created)" 'BEGIN { print n + 1 }')
stop_server

# ---------------------------------------------------------------------------- summary
errors_of() {
    local e="$(field "$1" non2xx) non-2xx"
    [[ $(field "$1" socket_errors) == 0 ]] || e+=", $(field "$1" socket_errors) socket errors"
    [[ $(field "$1" timeouts) == 0 ]] || e+=", $(field "$1" timeouts) timeouts"
    echo "$e"
}
# lat BENCH_LINE KEY: a latency, or "none" when wrk completed no request in the measurement
# (wrk's percentiles only cover completed requests).
lat() {
    if [[ $(field "$1" requests) == 0 ]]; then echo none; else field "$1" "$2"; fi
}
# p99ratio A B: p99 of A / p99 of B, "n/a" when either completed nothing
p99ratio() {
    local a b
    a=$(lat "$1" p99_ms)
    b=$(lat "$2" p99_ms)
    if [[ $a == none || $b == none ]]; then echo n/a; else ratio "$a" "$b"; fi
}
row() { # row LABEL IDLE FLOOD AFTER
    local label=$1 idle=$2 flood=$3 after=${4:-} a_p50=- a_p99=- a_ratio=-
    if [[ -n $after ]]; then
        a_p50=$(lat "$after" p50_ms)
        a_p99=$(lat "$after" p99_ms)
        a_ratio=$(p99ratio "$after" "$idle")
    fi
    echo "| $label | $(lat "$idle" p50_ms) | $(lat "$idle" p99_ms) | $(lat "$flood" p50_ms) | $(lat "$flood" p99_ms) | **$(p99ratio "$flood" "$idle")** | $a_p50 | $a_p99 | $a_ratio | $(field "$idle" rps) / $(field "$flood" rps)${after:+ / $(field "$after" rps)} | $(errors_of "$idle"); $(errors_of "$flood")${after:+; $(errors_of "$after")} |"
}

{
    echo "# Latchkey under a registration flood"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Commit: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff HEAD --quiet -- crates 2>/dev/null || echo ' (with uncommitted changes under crates/)'); binary $BIN, built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC')"
    echo "- Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo); server and every wrk on the same machine (127.0.0.1)"
    echo "- Command: BENCH_DURATION=$DURATION bench/flood.sh (login: wrk -t1 -c$LOGIN_CONN, /auth/me: wrk -t1 -c$ME_CONN, ${DURATION} s each; flood: wrk -t1 -c$FLOOD_CONN -d${FLOOD_SECONDS}s, started ${FLOOD_WARMUP} s before the first measurement)"
    echo "- Server: LATCHKEY_PASSWORD_QUEUE default (32), LATCHKEY_REGISTER_MAX_PER_IP / _MAX_GLOBAL = 1000000, LATCHKEY_LOGIN_MAX_FAILURES_PER_IP / _PER_ACCOUNT = 1000000, fresh SQLite DB"
    echo "- Load average (1 min) at the start / end of the run: $LOAD_START / $(cut -d' ' -f1 /proc/loadavg)"
    echo
    echo "Latency in ms. Ratio = p99 under the flood (or after it) / p99 idle. wrk's percentiles cover"
    echo "completed requests only (one still waiting when a measurement ends is not counted; one over"
    echo "10 s is a timeout, listed with the errors)."
    echo
    echo "| Route | idle p50 | idle p99 | flood p50 | flood p99 | **p99 flood / idle** | after p50 | after p99 | p99 after / idle | req/s idle / flood / after | errors idle; flood; after |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    row "POST /auth/login" "$LOGIN_idle" "$LOGIN_flood" "${LOGIN_after:-}"
    row "GET /auth/me (Bearer)" "$ME_idle" "$ME_flood" "${ME_after:-}"
    echo
    echo "| Registration flood (wrk -t1 -c$FLOOD_CONN, ${FLOOD_SECONDS} s) | |"
    echo "|---|---|"
    echo "| requests answered | $(field "$FLOOD" requests) ($(field "$FLOOD" rps)/s) |"
    echo "| 201 created | $(field "$FLOOD" created) |"
    echo "| 503 \`overloaded\` | $(field "$FLOOD" overloaded) ($(field "$FLOOD" retry_after) with Retry-After) |"
    echo "| other answers | 503 other $(field "$FLOOD" other503), 429 $(field "$FLOOD" throttled), 409 $(field "$FLOOD" taken), else $(field "$FLOOD" other); wrk non-2xx $(field "$FLOOD" non2xx), socket errors $(field "$FLOOD" socket_errors), timeouts $(field "$FLOOD" timeouts) |"
    echo "| latency of all answers (201 and 503 together) | p50 $(field "$FLOOD" p50_ms) ms, p90 $(field "$FLOOD" p90_ms) ms, p99 $(field "$FLOOD" p99_ms) ms, max $(field "$FLOOD" max_ms) ms |"
    echo "| server RSS idle / end of flood / end of run | $(mb "$RSS_IDLE") / $(mb "$RSS_FLOOD") / $(mb "$RSS_END") MB ($USERS users in the DB) |"
    echo
    echo "<details><summary>Raw wrk output</summary>"
    echo
    for f in login-idle me-idle flood login-flood me-flood login-after me-after; do
        [[ -f $WORK/$f.txt ]] || continue
        echo '```'
        echo "== $f"
        cat "$WORK/$f.txt"
        echo '```'
    done
    echo "</details>"
} >"$RESULTS"

echo
cat "$RESULTS"
log "written to $RESULTS"
