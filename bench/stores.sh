#!/usr/bin/env bash
# Logins/s and refreshes/s on each store, one after the other in one run, same load tool (wrk)
# and scripts as bench/run.sh (login.lua, refresh.lua, report.lua, looked up in
# LKBENCH_DIR, default this directory):
#
#   bench/stores.sh            # SQLite, PostgreSQL, then MongoDB (SecantusDB from .venv, see
#                              # scripts/test.sh); refreshes with 2, 4 and 16 families
#
# PostgreSQL is a throw-away cluster from scripts/postgres.sh (Debian's postgresql, installed
# when missing) with the server's default durability (fsync, synchronous_commit on).
# MongoDB here is SecantusDB, a wire-compatible test server written in Python, on the same
# machine: its figures say what Latchkey does against a slow database, not what a production
# MongoDB allows. Knobs: BENCH_DURATION (wrk seconds, default 10), BENCH_SKIP_BUILD=1,
# BENCH_STORES (default "sqlite postgres mongodb"), BENCH_FAMILIES (default "2 4 16"),
# BENCH_MONGO_URL and BENCH_POSTGRES_URL (measure an existing server instead of starting one).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
DURATION=${BENCH_DURATION:-10}
# BENCH_PROFILE=debug runs the debug binary (a smoke run of the script, not a measure).
BIN=$ROOT/target/${BENCH_PROFILE:-release}/latchkey
STORES=${BENCH_STORES:-sqlite postgres mongodb}
FAMILIES=${BENCH_FAMILIES:-2 4 16}
SECANTUSD=$ROOT/.venv/bin/secantusd-py
export LKBENCH_DIR=${LKBENCH_DIR:-$BENCH_DIR}
export LKBENCH_USER=bench-user
export LKBENCH_PASSWORD='correct horse battery staple 7'

log() { printf '[stores %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for f in login.lua refresh.lua report.lua; do
    [[ -f $LKBENCH_DIR/$f ]] || die "$f not found in $LKBENCH_DIR (set LKBENCH_DIR)"
done
command -v wrk >/dev/null || die "wrk is required (apt-get install wrk)"
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release -p latchkey --bin latchkey)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-stores.XXXXXX")
SERVER_PID=
MONGO_PID=
cleanup() {
    [[ -n $SERVER_PID ]] && { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
    [[ -n $MONGO_PID ]] && { kill -9 "$MONGO_PID" 2>/dev/null || true; wait "$MONGO_PID" 2>/dev/null || true; }
    rm -rf "$WORK"
}
trap cleanup EXIT

# free_port (below the ephemeral range, for SecantusDB), listening_addr
source "$BENCH_DIR/lib.sh"
wait_port() {
    for _ in $(seq 1 600); do
        { exec 9<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null && { exec 9<&-; return 0; }
        sleep 0.05
    done
    die "nothing listens on $1"
}
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }

BODY=$(printf '{"username":"%s","password":"%s"}' "$LKBENCH_USER" "$LKBENCH_PASSWORD")
login() {
    curl -sS -o "$1.json" -D "$1.hdr" -H 'Content-Type: application/json' --data "$BODY" "$BASE/auth/login"
    tr -d '\r' <"$1.hdr" | sed -nE 's/^[Ss]et-[Cc]ookie: refresh_token=([^;]+).*/\1/p' | tail -1
}

# measure NAME URL: prints "NAME logins=... l_p99=... l_bad=... r2=... r2_p99=... r2_bad=... ..."
# (one rN group per number of families in FAMILIES)
measure() {
    local name=$1 url=$2 addr
    # Port 0: the server logs the address it got (its info line; the rest stays at warn).
    LATCHKEY_DATABASE_URL=$url LATCHKEY_COOKIE_SECURE=false LATCHKEY_LISTEN=127.0.0.1:0 \
        LATCHKEY_LOG=warn,latchkey::server=info "$BIN" serve >>"$WORK/$name-server.log" 2>&1 &
    SERVER_PID=$!
    addr=$(listening_addr "$SERVER_PID" "$WORK/$name-server.log" latchkey 0)
    BASE=http://$addr
    curl -sS -o /dev/null -H 'Content-Type: application/json' --data "$BODY" "$BASE/auth/register"
    login "$WORK/warm" >/dev/null
    log "$name: logins (wrk -t2 -c8 -d${DURATION}s)"
    local l r bad=0 line
    l=$(wrk --timeout 10s -t2 -c8 -d"${DURATION}s" -s "$LKBENCH_DIR/login.lua" "$BASE/auth/login" | grep '^BENCH ')
    line="$name logins=$(field "$l" rps) l_p99=$(field "$l" p99_ms) l_bad=$(field "$l" non2xx)"
    for n in $FAMILIES; do
        : >"$WORK/cookies-$n"
        for i in $(seq 1 "$n"); do login "$WORK/l-$n-$i" >>"$WORK/cookies-$n"; done
        log "$name: refreshes, $n families (wrk -t$n -c$n -d${DURATION}s)"
        r=$(LKBENCH_COOKIES=$WORK/cookies-$n wrk --timeout 10s -t"$n" -c"$n" -d"${DURATION}s" \
            -s "$LKBENCH_DIR/refresh.lua" "$BASE/auth/refresh" | grep '^BENCH ')
        line+=" r$n=$(field "$r" rps) r${n}_p99=$(field "$r" p99_ms) r${n}_bad=$(field "$r" non200)"
    done
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    echo "$line"
}

RESULTS=()
for store in $STORES; do
    case $store in
    sqlite) RESULTS+=("$(measure sqlite "sqlite://$WORK/bench.db")") ;;
    postgres)
        if [[ -n ${BENCH_POSTGRES_URL:-} ]]; then
            RESULTS+=("$(measure postgres "$BENCH_POSTGRES_URL")")
        else
            # shellcheck source=../scripts/postgres.sh
            source "$ROOT/scripts/postgres.sh"
            LATCHKEY_PG_DURABLE=1 latchkey_pg_up || die "no PostgreSQL cluster"
            RESULTS+=("$(measure postgres "$LATCHKEY_TEST_POSTGRES_URL")")
        fi
        ;;
    mongodb)
        if [[ -n ${BENCH_MONGO_URL:-} ]]; then
            RESULTS+=("$(measure mongodb "$BENCH_MONGO_URL")")
        else
            [[ -x $SECANTUSD ]] || die "SecantusDB is not installed: run scripts/test.sh once (it creates .venv)"
            mport=$(free_port)
            mkdir "$WORK/mongo"
            "$SECANTUSD" --host 127.0.0.1 --port "$mport" --storage-path "$WORK/mongo" --log-level WARNING \
                >"$WORK/secantus.log" 2>&1 &
            MONGO_PID=$!
            wait_port "$mport"
            RESULTS+=("$(measure mongodb "mongodb://127.0.0.1:$mport/bench?directConnection=true")")
        fi
        ;;
    *) die "unknown store in BENCH_STORES: $store (sqlite, postgres, mongodb)" ;;
    esac
done

echo
header="| store | logins/s (p99 ms) |"
rule="|---|---|"
for n in $FAMILIES; do
    header+=" refreshes/s, $n families (p99 ms) |"
    rule+="---|"
done
echo "$header non-2xx |"
echo "$rule---|"
for line in "${RESULTS[@]}"; do
    bad=$(field "$line" l_bad)
    row="| ${line%% *} | $(field "$line" logins) ($(field "$line" l_p99)) |"
    for n in $FAMILIES; do
        bad=$(( bad + $(field "$line" "r${n}_bad") ))
        row+=" $(field "$line" "r$n") ($(field "$line" "r${n}_p99")) |"
    done
    echo "$row $bad |"
done
