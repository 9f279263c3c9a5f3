#!/usr/bin/env bash
# What Prometheus metrics cost on the hot path (issue 14): GET /auth/me requests/s with metrics
# on against metrics off, in one run.
#
#   bench/metrics.sh        # about 2 minutes after the release build
#
# Builds the release binary, then starts two servers on one fresh temporary SQLite database:
# one with metrics off (the default) and one with LATCHKEY_METRICS_LISTEN=127.0.0.1:0 (the
# recorder, the request layer, the store decorator and the verifier counters all live). One
# registered user, one access token (both servers load the same keys from the store). After a
# warm-up of each, `wrk -t2 -c32 -d${BENCH_DURATION}s` alternates between them BENCH_ROUNDS
# times, the order flipped every round, so drift on a shared machine hits both alike; the
# ratio is of the summed rates (total requests / total seconds). Target: on / off >= 0.97.
# Finally the metrics listener is scraped once, to show the load was counted.
#
# Knobs: BENCH_DURATION (default 10), BENCH_ROUNDS (default 4), BENCH_SKIP_BUILD=1,
# BENCH_PROFILE=debug (a smoke run of the script, not a measure).
# The summary is printed and written to bench/results-metrics-latest.md (gitignored).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-4}
PROFILE=${BENCH_PROFILE:-release}
BIN=$ROOT/target/$PROFILE/latchkey
RESULTS=$BENCH_DIR/results-metrics-latest.md

USERNAME=bench-user
PASSWORD='correct horse battery staple 7'

log() { printf '[bench-metrics %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if ! command -v wrk >/dev/null; then
    log "wrk not found: installing it with apt-get"
    if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq wrk
fi
for tool in curl wrk awk; do command -v "$tool" >/dev/null || die "$tool is required"; done

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "building the $PROFILE binary"
    if [[ $PROFILE == release ]]; then
        (cd "$ROOT" && cargo build --release -p latchkey --bin latchkey)
    else
        (cd "$ROOT" && cargo build -p latchkey --bin latchkey)
    fi
fi
[[ -x $BIN ]] || die "missing $BIN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lkbench-metrics.XXXXXX")
# Copies with names of their own: a script stopping "latchkey" by name cannot stop them.
cp "$BIN" "$WORK/lkbench-off"
cp "$BIN" "$WORK/lkbench-on"
PIDS=()
cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $rc != 0 ]]; then
        for which in off on; do
            [[ -f $WORK/$which.log ]] && cp "$WORK/$which.log" "${TMPDIR:-/tmp}/latchkey-bench-metrics-$which.log"
        done
        log "failed (exit $rc); server logs kept in ${TMPDIR:-/tmp}/latchkey-bench-metrics-*.log"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# now_us, listening_addr, ...
source "$BENCH_DIR/lib.sh"

DB=$WORK/bench.db
# start WHICH [VAR=VALUE...]: starts a server on port 0, sets PID_<WHICH> and BASE_<WHICH>.
start() {
    local which=$1 addr pid
    shift
    env LATCHKEY_DATABASE_URL="sqlite://$DB" LATCHKEY_COOKIE_SECURE=false \
        LATCHKEY_LISTEN=127.0.0.1:0 "$@" \
        "$WORK/lkbench-$which" serve >>"$WORK/$which.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    addr=$(listening_addr "$pid" "$WORK/$which.log" latchkey 0)
    wait_http "$pid" "http://$addr/healthz" "$WORK/$which.log"
    printf -v "PID_$which" '%s' "$pid"
    printf -v "BASE_$which" '%s' "http://$addr"
}

start off
start on LATCHKEY_METRICS_LISTEN=127.0.0.1:0
METRICS_ADDR=$(listening_addr "$PID_on" "$WORK/on.log" metrics 0)
log "metrics off: $BASE_off; metrics on: $BASE_on (scrape http://$METRICS_ADDR/metrics)"

BODY=$(printf '{"username":"%s","password":"%s"}' "$USERNAME" "$PASSWORD")
code=$(curl -sS -o "$WORK/register.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data "$BODY" "$BASE_off/auth/register")
[[ $code == 201 ]] || { cat "$WORK/register.json" >&2; die "register answered $code"; }
code=$(curl -sS -o "$WORK/login.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data "$BODY" "$BASE_off/auth/login")
[[ $code == 200 ]] || { cat "$WORK/login.json" >&2; die "login answered $code"; }
ACCESS=$(sed -nE 's/.*"access_token" *: *"([^"]+)".*/\1/p' "$WORK/login.json")
[[ -n $ACCESS ]] || die "no access_token in the login answer"
for which in off on; do
    base=BASE_$which
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ACCESS" "${!base}/auth/me")
    [[ $code == 200 ]] || die "/auth/me with metrics $which answered $code"
done

export LKBENCH_DIR=$BENCH_DIR
# run_wrk NAME URL: GET /auth/me with the token; prints wrk's BENCH line.
run_wrk() {
    local name=$1 url=$2
    log "wrk $name: wrk -t2 -c32 -d${DURATION}s $url"
    wrk --timeout 10s -t2 -c32 -d"${DURATION}s" -s "$BENCH_DIR/plain.lua" \
        -H "Authorization: Bearer $ACCESS" "$url" >"$WORK/$name.txt" 2>&1 ||
        { cat "$WORK/$name.txt" >&2; die "wrk $name failed"; }
    grep '^BENCH ' "$WORK/$name.txt" | tail -1
}
# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks (/proc/PID/stat).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
sum_rate() { printf '%s\n' "$@" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "requests") n += kv[2]; if (kv[1] == "seconds") s += kv[2] } } END { printf "%.1f", n / s }'; }
sum_field() { local key=$1; shift; printf '%s\n' "$@" | while read -r l; do field "$l" "$key"; done | awk '{ s += $1 } END { print s + 0 }'; }

for which in off on; do
    base=BASE_$which
    wrk -t2 -c32 -d2s -H "Authorization: Bearer $ACCESS" "${!base}/auth/me" >/dev/null # warm-up
done

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
OFF=()
ON=()
ROWS=()
declare -A TICKS=([off]=0 [on]=0)
for r in $(seq 1 "$ROUNDS"); do
    if ((r % 2)); then order=(off on); else order=(on off); fi
    for which in "${order[@]}"; do
        base=BASE_$which
        pid=PID_$which
        t0=$(cpu_ticks "${!pid}")
        line=$(run_wrk "$which-$r" "${!base}/auth/me")
        TICKS[$which]=$((TICKS[$which] + $(cpu_ticks "${!pid}") - t0))
        log "round $r, metrics $which: $(field "$line" rps) req/s"
        if [[ $which == off ]]; then OFF+=("$line"); else ON+=("$line"); fi
    done
    ROWS+=("| $r | $(field "${OFF[-1]}" rps) | $(field "${ON[-1]}" rps) | $(awk -v a="$(field "${ON[-1]}" rps)" -v b="$(field "${OFF[-1]}" rps)" 'BEGIN { printf "%.3f", a / b }') |")
done
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
for pid in "$PID_off" "$PID_on"; do kill -0 "$pid" || die "a server died during the load"; done

curl -fsS "http://$METRICS_ADDR/metrics" >"$WORK/scrape.txt" || die "scraping the metrics listener failed"
COUNTED=$(awk '/^latchkey_http_requests_total\{route="\/auth\/me",method="GET",status="200"\}/ { print $2 }' "$WORK/scrape.txt")
HITS=$(awk '/^latchkey_token_verifications_total\{result="cache_hit"\}/ { print $2 }' "$WORK/scrape.txt")
SENT=$(($(sum_field requests "${ON[@]}") ))

OFF_RPS=$(sum_rate "${OFF[@]}")
ON_RPS=$(sum_rate "${ON[@]}")
RATIO=$(awk -v a="$ON_RPS" -v b="$OFF_RPS" 'BEGIN { printf "%.3f", a / b }')
# The median of the per-round ratios: robust to a burst of other load in one run.
MEDIAN_RATIO=$(printf '%s\n' "${ROWS[@]}" | awk -F'|' '{ print $5 + 0 }' | sort -g |
    awk '{ a[NR] = $1 } END { printf "%.3f", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')
# Server CPU per request: far less sensitive than requests/s to other load on the machine.
HZ=$(getconf CLK_TCK)
cpu_us() { awk -v t="$1" -v hz="$HZ" -v n="$2" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }'; }
OFF_CPU=$(cpu_us "${TICKS[off]}" "$(sum_field requests "${OFF[@]}")")
ON_CPU=$(cpu_us "${TICKS[on]}" "$(sum_field requests "${ON[@]}")")
CPU_RATIO=$(awk -v a="$OFF_CPU" -v b="$ON_CPU" 'BEGIN { printf "%.3f", a / b }')
VERDICT=$(awk -v v="$RATIO" 'BEGIN { print (v >= 0.97 ? "PASS" : "MISS") }')
ERRORS="off: $(sum_field non2xx "${OFF[@]}") non-2xx, $(sum_field socket_errors "${OFF[@]}") socket errors; on: $(sum_field non2xx "${ON[@]}") non-2xx, $(sum_field socket_errors "${ON[@]}") socket errors"

{
    echo "# Metrics on vs off: GET /auth/me"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $LOAD_START at the start, $LOAD_END at the end;"
    echo "$PROFILE build, SQLite, \`wrk -t2 -c32 -d${DURATION}s\`, $ROUNDS rounds alternating (order flipped each round)."
    echo
    echo "| round | metrics off (req/s) | metrics on (req/s) | on / off |"
    echo "|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "| | requests/s (summed over rounds) |"
    echo "|---|---|"
    echo "| metrics off | $OFF_RPS |"
    echo "| metrics on | $ON_RPS |"
    echo "| **on / off** | **$RATIO** (target >= 0.97: $VERDICT) |"
    echo "| median of the rounds' on / off | $MEDIAN_RATIO |"
    echo
    echo "| | server CPU per request (user + system) |"
    echo "|---|---|"
    echo "| metrics off | $OFF_CPU µs |"
    echo "| metrics on | $ON_CPU µs |"
    echo "| **off / on** (the throughput ratio a CPU-bound server would see) | **$CPU_RATIO** |"
    echo
    echo "Errors: $ERRORS."
    echo "The metrics listener counted $COUNTED \`GET /auth/me\` 200s (wrk sent $SENT measured requests, plus"
    echo "warm-up and checks) and $HITS verified-token cache hits."
} | tee "$RESULTS"
log "written to $RESULTS"
