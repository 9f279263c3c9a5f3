#!/usr/bin/env bash
# Latchkey load benchmarks (DESIGN.md "Measures of success", issue 2 "Performance").
#
#   bench/run.sh            # everything, about 3 minutes after the release build
#
# Builds the release binary and the argon2_rate example, starts the server on 127.0.0.1 with a
# fresh temporary SQLite database and measures, in one run and with one load tool (wrk):
#   1. GET /healthz requests/s          (wrk -t2 -c32 -d10s)
#   2. GET /auth/me with a bearer token  (same settings) -> ratio me/healthz       (>= 0.8)
#      (1 and 2 alternate for BENCH_ROUNDS rounds; the ratio is of the summed rates, so that
#      other load on a shared machine hits both routes alike)
#   3. POST /auth/login logins/s         (wrk -t2 -c8 -d10s) vs Argon2id hashes/s  (>= 0.9)
#      (the argon2_rate example runs just before and just after the logins, in two modes:
#      allocating per hash as a server does, and with reused memory, the pure computation;
#      the reference is the higher of the two modes' before/after means)
#   4. POST /auth/refresh with rotation, one refresh family per connection, N = 2 and 4
#                                                                                 (>= 2000/s)
#   5. server RSS idle after start and after the load                             (< 20 MB)
#   6. start-to-ready (exec to first 200 on /healthz), fresh and existing DB      (< 100 ms)
# The summary is printed and written to bench/results-latest.md (gitignored).
#
# Knobs (environment): BENCH_DURATION (wrk seconds, default 10), BENCH_ROUNDS (healthz/me
# alternations, default 3), BENCH_START_RUNS (default 5),
# BENCH_ARGON2_SECONDS (default 5), BENCH_SKIP_BUILD=1 (use the binaries already built).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
DURATION=${BENCH_DURATION:-10}
START_RUNS=${BENCH_START_RUNS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
ARGON2_SECONDS=${BENCH_ARGON2_SECONDS:-5}
# BENCH_PROFILE=debug runs the debug binaries (a smoke run of the script, not a measure).
PROFILE=${BENCH_PROFILE:-release}
BIN=$ROOT/target/$PROFILE/latchkey
ARGON2_RATE=$ROOT/target/$PROFILE/examples/argon2_rate
RESULTS=$BENCH_DIR/results-latest.md

USERNAME=bench-user
PASSWORD='correct horse battery staple 7'

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------- tools
if ! command -v wrk >/dev/null; then
    log "wrk not found: installing it with apt-get"
    if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq wrk
fi
for tool in curl wrk awk; do command -v "$tool" >/dev/null || die "$tool is required"; done

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "building release binary and argon2_rate example"
    (cd "$ROOT" && cargo build --release -p latchkey --bin latchkey --example argon2_rate)
fi
[[ -x $BIN && -x $ARGON2_RATE ]] || die "missing $BIN or $ARGON2_RATE"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lkbench.XXXXXX")
# The server runs from a copy with its own name, so that another script on a shared machine
# that stops "latchkey" processes by name (pkill/killall) cannot stop it in the middle of a run.
SERVER_BIN=$WORK/lkbench-server
cp "$BIN" "$SERVER_BIN"
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
cleanup() {
    local rc=$?
    stop_server
    if [[ $rc != 0 && -f $WORK/server.log ]]; then
        cp "$WORK/server.log" "${TMPDIR:-/tmp}/latchkey-bench-server.log"
        log "failed (exit $rc); server log kept in ${TMPDIR:-/tmp}/latchkey-bench-server.log"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------- helpers
# now_us, probe_healthz, log_lines, listening_addr
source "$BENCH_DIR/lib.sh"

# start_server DB_FILE: starts the server on port 0 (it reports the port it got) and sets SERVER_PID, PORT, BASE and
# READY_MS (exec to first 200 on /healthz, polled every ~2 ms).
start_server() {
    local db=$1 t0 deadline skip
    skip=$(log_lines "$WORK/server.log")
    t0=$(now_us)
    LATCHKEY_DATABASE_URL="sqlite://$db" \
        LATCHKEY_COOKIE_SECURE=false \
        LATCHKEY_LISTEN="127.0.0.1:0" \
        "$SERVER_BIN" serve >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    # The server binds a port the system picks and logs it (no port to guess and race for).
    PORT=$(listening_addr "$SERVER_PID" "$WORK/server.log" latchkey "$skip")
    PORT=${PORT##*:}
    BASE=http://127.0.0.1:$PORT
    deadline=$((t0 + 10000000))
    until probe_healthz; do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; die "server exited"; }
        (($(now_us) < deadline)) || die "server not ready within 10 s"
        sleep 0.002
    done
    READY_MS=$(awk -v a="$t0" -v b="$(now_us)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
}

rss_kb() {
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; die "the server (pid $SERVER_PID) has exited"; }
    awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# verdict VALUE OP TARGET -> PASS / MISS
verdict() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? (v >= t) : (v < t); print (ok ? "PASS" : "MISS") }'; }
# field "BENCH a=1 b=2" b -> 2
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
# median and max of the numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }

export LKBENCH_DIR=$BENCH_DIR
export LKBENCH_USER=$USERNAME
export LKBENCH_PASSWORD=$PASSWORD

# run_wrk NAME ARGS...: runs wrk, keeps its output in $WORK/NAME.txt, prints the BENCH line.
run_wrk() {
    local name=$1
    shift
    log "wrk $name: wrk $*"
    wrk --timeout 10s "$@" >"$WORK/$name.txt" 2>&1 || { cat "$WORK/$name.txt" >&2; die "wrk $name failed"; }
    cat "$WORK/$name.txt" >&2
    grep '^BENCH ' "$WORK/$name.txt" | tail -1
}

LOGIN_BODY=$(printf '{"username":"%s","password":"%s"}' "$USERNAME" "$PASSWORD")
# login FILE_PREFIX: logs in with curl; FILE_PREFIX.json gets the body, .hdr the headers.
login() {
    local code
    code=$(curl -sS -o "$1.json" -D "$1.hdr" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data "$LOGIN_BODY" "$BASE/auth/login")
    [[ $code == 200 ]] || { cat "$1.json" >&2; die "login answered $code"; }
}
refresh_token_of() { tr -d '\r' <"$1.hdr" | sed -nE 's/^[Ss]et-[Cc]ookie: refresh_token=([^;]+).*/\1/p' | tail -1; }
access_token_of() { sed -nE 's/.*"access_token" *: *"([^"]+)".*/\1/p' "$1.json"; }

# ---------------------------------------------------------------------------- 6. start to ready
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
log "start-to-ready: $START_RUNS starts on a fresh DB, $START_RUNS on an existing one"
FRESH_MS=()
EXISTING_MS=()
for i in $(seq 1 "$START_RUNS"); do
    start_server "$WORK/fresh-$i.db"
    FRESH_MS+=("$READY_MS")
    stop_server
done
for _ in $(seq 1 "$START_RUNS"); do
    start_server "$WORK/fresh-1.db"
    EXISTING_MS+=("$READY_MS")
    stop_server
done
log "fresh DB ready in ms: ${FRESH_MS[*]}; existing DB: ${EXISTING_MS[*]}"

# ---------------------------------------------------------------------------- server for the load
DB=$WORK/bench.db
start_server "$DB"
log "server pid $SERVER_PID on $BASE (fresh DB $DB), ready in $READY_MS ms"
sleep 1
RSS_START=$(rss_kb)
log "idle RSS after start: $RSS_START kB"

code=$(curl -sS -o "$WORK/register.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data "$LOGIN_BODY" "$BASE/auth/register")
[[ $code == 200 || $code == 201 ]] || { cat "$WORK/register.json" >&2; die "register answered $code"; }
login "$WORK/me-login"
ACCESS=$(access_token_of "$WORK/me-login")
[[ -n $ACCESS ]] || die "no access_token in the login answer"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ACCESS" "$BASE/auth/me")
[[ $code == 200 ]] || die "/auth/me answered $code"
RSS_AFTER_AUTH=$(rss_kb)
log "RSS after one registration and one login: $RSS_AFTER_AUTH kB"

# ---------------------------------------------------------------------------- 1, 2. healthz vs me
wrk -t2 -c32 -d2s "$BASE/healthz" >/dev/null # warm-up
HEALTHZ=()
ME=()
for r in $(seq 1 "$ROUNDS"); do
    HEALTHZ+=("$(run_wrk "healthz-$r" -t2 -c32 -d"${DURATION}s" -s "$BENCH_DIR/plain.lua" "$BASE/healthz")")
    ME+=("$(run_wrk "me-$r" -t2 -c32 -d"${DURATION}s" -s "$BENCH_DIR/plain.lua" \
        -H "Authorization: Bearer $ACCESS" "$BASE/auth/me")")
done
RSS_AFTER_ME=$(rss_kb)

# ---------------------------------------------------------------------------- 3. logins vs Argon2id
argon2_rate() {
    local line
    log "argon2_rate: 2 x ${ARGON2_SECONDS} s"
    line=$("$ARGON2_RATE" "$ARGON2_SECONDS")
    log "$line"
    echo "$line"
}
ARGON2_BEFORE=$(argon2_rate)
LOGIN=$(run_wrk login -t2 -c8 -d"${DURATION}s" -s "$BENCH_DIR/login.lua" "$BASE/auth/login")
RSS_AFTER_LOGIN=$(rss_kb)
ARGON2_AFTER=$(argon2_rate)
A1=$(field "$ARGON2_BEFORE" argon2id_hashes_per_sec)
A2=$(field "$ARGON2_AFTER" argon2id_hashes_per_sec)
R1=$(field "$ARGON2_BEFORE" argon2id_reused_memory_hashes_per_sec)
R2=$(field "$ARGON2_AFTER" argon2id_reused_memory_hashes_per_sec)
mean2() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a + b) / 2 }'; }
ARGON2_RATE_HPS=$(maxof "$(mean2 "$A1" "$A2")" "$(mean2 "$R1" "$R2")")
ARGON2_THREADS=$(field "$ARGON2_BEFORE" threads)

# ---------------------------------------------------------------------------- 4. refresh rotation
declare -A REFRESH
for n in 2 4; do
    : >"$WORK/cookies-$n.txt"
    for i in $(seq 1 "$n"); do
        login "$WORK/refresh-$n-$i"
        token=$(refresh_token_of "$WORK/refresh-$n-$i")
        [[ -n $token ]] || die "no refresh_token cookie in the login answer"
        echo "$token" >>"$WORK/cookies-$n.txt"
    done
    export LKBENCH_COOKIES="$WORK/cookies-$n.txt"
    REFRESH[$n]=$(run_wrk "refresh-$n" -t"$n" -c"$n" -d"${DURATION}s" -s "$BENCH_DIR/refresh.lua" "$BASE/auth/refresh")
done

# ---------------------------------------------------------------------------- 5. memory after load
RSS_AFTER=$(rss_kb)
sleep 2
RSS_AFTER_IDLE=$(rss_kb)
kill -0 "$SERVER_PID" || die "server died during the load"
stop_server

# ---------------------------------------------------------------------------- summary
# summed rate over the rounds: total requests / total seconds
sum_rate() { printf '%s\n' "$@" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "requests") n += kv[2]; if (kv[1] == "seconds") s += kv[2] } } END { printf "%.1f", n / s }'; }
max_field() { local key=$1; shift; printf '%s\n' "$@" | while read -r l; do field "$l" "$key"; done | sort -g | tail -1; }
sum_field() { local key=$1; shift; printf '%s\n' "$@" | while read -r l; do field "$l" "$key"; done | awk '{ s += $1 } END { print s + 0 }'; }
H_RPS=$(sum_rate "${HEALTHZ[@]}")
M_RPS=$(sum_rate "${ME[@]}")
ROUND_RATIOS=()
for r in $(seq 0 $((ROUNDS - 1))); do
    ROUND_RATIOS+=("$(ratio "$(field "${ME[$r]}" rps)" "$(field "${HEALTHZ[$r]}" rps)")")
done
errors_all() { echo "$(sum_field non2xx "$@") non-2xx, $(sum_field socket_errors "$@") socket errors, $(sum_field timeouts "$@") timeouts"; }
L_RPS=$(field "$LOGIN" rps)
ME_RATIO=$(ratio "$M_RPS" "$H_RPS")
LOGIN_RATIO=$(ratio "$L_RPS" "$ARGON2_RATE_HPS")
FRESH_MED=$(median "${FRESH_MS[@]}")
FRESH_MAX=$(maxof "${FRESH_MS[@]}")
EXIST_MED=$(median "${EXISTING_MS[@]}")
EXIST_MAX=$(maxof "${EXISTING_MS[@]}")
errors_of() { echo "$(field "$1" non2xx) non-2xx, $(field "$1" socket_errors) socket errors, $(field "$1" timeouts) timeouts"; }

{
    echo "# Latchkey benchmark results"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Commit: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff HEAD --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo)"
    echo "- Tool: $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), ${DURATION} s per measurement, server and wrk on the same machine (127.0.0.1)"
    echo "- Command: bench/run.sh"
    echo "- Load average (1 min) at the start / end of the run: $LOAD_START / $(cut -d' ' -f1 /proc/loadavg) (other work on the machine makes the figures noisy)"
    echo
    echo "| Measure | Result | Target | Verdict |"
    echo "|---|---|---|---|"
    echo "| GET /healthz (-t2 -c32, $ROUNDS x ${DURATION} s) | $H_RPS req/s (rounds: $(for l in "${HEALTHZ[@]}"; do printf '%s ' "$(field "$l" rps)"; done| sed 's/ $//'); worst p99 $(max_field p99_ms "${HEALTHZ[@]}") ms; $(errors_all "${HEALTHZ[@]}")) | | |"
    echo "| GET /auth/me, bearer (-t2 -c32, $ROUNDS x ${DURATION} s) | $M_RPS req/s (rounds: $(for l in "${ME[@]}"; do printf '%s ' "$(field "$l" rps)"; done | sed 's/ $//'); worst p99 $(max_field p99_ms "${ME[@]}") ms; $(errors_all "${ME[@]}")) | | |"
    echo "| me / healthz | $ME_RATIO (per round: ${ROUND_RATIOS[*]}; median $(median "${ROUND_RATIOS[@]}")) | >= 0.8 | $(verdict "$ME_RATIO" '>=' 0.8) |"
    echo "| Argon2id alone ($ARGON2_THREADS threads, m=19456 KiB t=2 p=1) | $ARGON2_RATE_HPS hashes/s (the higher mean of: hash_password before / after the logins $A1 / $A2, reused memory $R1 / $R2) | | |"
    echo "| POST /auth/login (-t2 -c8) | $L_RPS logins/s (p50 $(field "$LOGIN" p50_ms) ms, p99 $(field "$LOGIN" p99_ms) ms; $(errors_of "$LOGIN")) | | |"
    echo "| logins / Argon2id | $LOGIN_RATIO | >= 0.9 | $(verdict "$LOGIN_RATIO" '>=' 0.9) |"
    for n in 2 4; do
        r=${REFRESH[$n]}
        bad=$(field "$r" non200)
        v=$(verdict "$(field "$r" rps)" '>=' 2000)
        [[ $bad == 0 && $(field "$r" socket_errors) == 0 ]] || v=MISS
        echo "| POST /auth/refresh, SQLite, $n families (-t$n -c$n) | $(field "$r" rps) refreshes/s (p99 $(field "$r" p99_ms) ms; $(field "$r" rotated) rotations, $bad non-200, $(field "$r" socket_errors) socket errors) | >= 2000/s, 0 non-200 | $v |"
    done
    echo "| RSS idle after start | $(mb "$RSS_START") MB | < 20 MB | $(verdict "$(mb "$RSS_START")" '<' 20) |"
    echo "| RSS after 1 registration + 1 login / after healthz+me / after logins / after refreshes / 2 s later | $(mb "$RSS_AFTER_AUTH") / $(mb "$RSS_AFTER_ME") / $(mb "$RSS_AFTER_LOGIN") / $(mb "$RSS_AFTER") / $(mb "$RSS_AFTER_IDLE") MB | (reported) | |"
    echo "| Start to ready, fresh DB (median / max of $START_RUNS) | $FRESH_MED / $FRESH_MAX ms | < 100 ms | $(verdict "$FRESH_MAX" '<' 100) |"
    echo "| Start to ready, existing DB (median / max of $START_RUNS) | $EXIST_MED / $EXIST_MAX ms | < 100 ms | $(verdict "$EXIST_MAX" '<' 100) |"
    echo
    echo "Start-to-ready runs (ms): fresh ${FRESH_MS[*]}; existing ${EXISTING_MS[*]}."
    echo
    echo "<details><summary>Raw wrk output</summary>"
    echo
    for name in $(for r in $(seq 1 "$ROUNDS"); do echo "healthz-$r me-$r"; done) login refresh-2 refresh-4; do
        echo "### $name"
        echo
        echo '```'
        cat "$WORK/$name.txt"
        echo '```'
        echo
    done
    echo "</details>"
} >"$RESULTS"

echo
cat "$RESULTS"
log "written to $RESULTS"
