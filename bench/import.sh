#!/usr/bin/env bash
# `latchkey user import` rate (issue 11 "Measures"): BENCH_USERS lines (default 100,000) of
# JSON Lines into a fresh SQLite database, half bcrypt hashes, half passport-local-mongoose
# hashes (512-byte keys, as the library stores them), with emails, roles and creation times.
#
#   bench/import.sh          # release build if present (LATCHKEY_BIN to choose), else debug
#
# Prints users/s of a first run (all created) and of a second run (all skipped).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
USERS=${BENCH_USERS:-100000}
LATCHKEY=${LATCHKEY_BIN:-$ROOT/target/release/latchkey}
[[ -x $LATCHKEY ]] || LATCHKEY=$ROOT/target/debug/latchkey
[[ -x $LATCHKEY ]] || { echo "no latchkey binary (cargo build --release -p latchkey)" >&2; exit 1; }
LATCHKEY=$(realpath "$LATCHKEY")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/import-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
HEX=$(head -c 512 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
BCRYPT='$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy'
awk -v n="$USERS" -v hex="$HEX" -v bc="$BCRYPT" 'BEGIN {
    for (i = 1; i <= n; i++) {
        if (i % 2)
            printf "{\"username\":\"user%d\",\"email\":\"user%d@example.com\",\"roles\":[\"member\"],\"created_at\":\"2021-06-01T12:00:00Z\",\"password_hash\":\"%s\"}\n", i, i, bc
        else
            printf "{\"username\":\"user%d\",\"passport_local_mongoose\":{\"salt\":\"%064d\",\"hash\":\"%s\"}}\n", i, i, hex
    }
}' >"$WORK/users.jsonl"
echo "binary: $LATCHKEY; $(wc -l <"$WORK/users.jsonl") lines, $(du -h "$WORK/users.jsonl" | cut -f1)"

run() {
    local start end out
    start=$(date +%s.%N)
    out=$(cd "$WORK" && LATCHKEY_DATABASE_URL="sqlite://$WORK/latchkey.db" LATCHKEY_LOG=warn \
        "$LATCHKEY" user import "$WORK/users.jsonl" 2>"$WORK/errors.txt") || true
    [[ -n $out ]] || { echo "import failed: $(tail -3 "$WORK/errors.txt")" >&2; exit 1; }
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" -v n="$USERS" -v label="$1" -v out="$out" \
        'BEGIN { printf "%s: %s -> %.0f users/s (%.1f s)\n", label, out, n / (e - s), e - s }'
}
run "first run (create)"
run "second run (skip)"
