#!/usr/bin/env bash
# Fuzzes the HTTP API against docs/openapi.yaml with schemathesis (PyPI), bounded in examples
# and time, against a real Latchkey server with signed-in users.
#
#   scripts/fuzz.sh     # after `cargo build -p latchkey`; about 40 s and 3,000 requests
#
# 1. installs schemathesis and openapi-spec-validator (pinned) into the repository's .venv
#    when missing;
# 2. validates docs/openapi.yaml (OpenAPI 3.1, openapi-spec-validator);
# 3. starts target/debug/latchkey (or $LATCHKEY_BIN) on a free loopback port with a fresh
#    SQLite database in a temporary directory; creates an admin with the CLI; registers and
#    signs in a user (Bearer token, refresh cookie, classic session and its CSRF token);
# 4. runs schemathesis on every documented operation with the checks not_a_server_error,
#    status_code_conformance, content_type_conformance, response_schema_conformance and
#    response_headers_conformance (documented headers, when sent, match their schema);
#    settings in scripts/fuzz/schemathesis.toml, cookie names in scripts/fuzz/hooks.py;
# 5. fails when schemathesis finds anything, when the run exceeds its time limit, or when the
#    server died or logged a panic.
#
# Knobs (environment): FUZZ_MAX_EXAMPLES (per operation and phase, default 100),
# FUZZ_WORKERS (default 1: with 2, hypothesis once failed describing a filter lambda with
# CPython's "AST constructor recursion depth mismatch", a thread race in `ast`), FUZZ_SEED (reproduce a run: schemathesis prints its seed),
# FUZZ_TIMEOUT (hard limit of the schemathesis run in seconds, default 180), FUZZ_ARGS (more
# `schemathesis run` arguments, e.g. "--include-path /auth/me --phases fuzzing"),
# LATCHKEY_BIN (the server binary). Under CI=true a schemathesis that cannot be installed is a
# failure; elsewhere the run is skipped with a message.
#
# What is fuzzed, and how the throttles are kept from turning the run into 429s:
# - Password hashing runs with LATCHKEY_ARGON2_MEMORY_KIB=1024 and ITERATIONS=1 (as in the
#   black-box tests): the run checks the HTTP contract, not Argon2's cost; a debug build hashes
#   the default parameters at a few per second, which would make the run minutes long.
# - Nothing is excluded. POST /auth/login, /session/login, /auth/register, /auth/password and
#   /auth/oauth/{provider}/authorize are throttled (per address, account, user or in total),
#   but most generated bodies are invalid (400) or name unknown users (401), so only the last
#   few dozen of their ~100 cases per phase reach a limit, and the 429 they then get is
#   documented and checked like any answer. The users fuzzed with are signed in before the
#   run and are signed in again by the hooks when a fuzzed logout ended their login.
# - Every password-change attempt (always a wrong current password) runs as a third user, so
#   that its per-user throttle can never lock the fuzzed user out of the re-logins.
# - POST /auth/logout-all and DELETE /auth/sessions/{id} also run as that third user, and the
#   admin routes never act on the three fuzzing users (scripts/fuzz/hooks.py): otherwise one
#   fuzzed call would end the logins, and the rest of the run would only see 401s.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.9.0
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-100}
WORKERS=${FUZZ_WORKERS:-1}
RUN_TIMEOUT=${FUZZ_TIMEOUT:-180}
BIN=${LATCHKEY_BIN:-$ROOT/target/debug/latchkey}
VENV=$ROOT/.venv

log() { printf '[fuzz %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
skip_or_fail() {
    if [[ ${CI:-} == true ]]; then die "$* (CI=true: a missing tool is a failure)"; fi
    log "SKIPPED: $*"
    exit 0
}

# No __pycache__ next to the hooks.
export PYTHONDONTWRITEBYTECODE=1

# ---------------------------------------------------------------------------- tools
installed_version() { "$VENV/bin/python" -c \
    "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null || true; }
if [[ $(installed_version schemathesis) != "$SCHEMATHESIS_VERSION" ||
      $(installed_version openapi-spec-validator) != "$VALIDATOR_VERSION" ]]; then
    command -v python3 >/dev/null || skip_or_fail "python3 not found"
    log "installing schemathesis $SCHEMATHESIS_VERSION and openapi-spec-validator into .venv"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" || skip_or_fail "python3 -m venv failed"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$VALIDATOR_VERSION" ||
        skip_or_fail "pip could not install schemathesis"
fi
[[ -x $BIN ]] || die "$BIN not found: build it first (cargo build -p latchkey)"

# ---------------------------------------------------------------------------- the document
log "validating docs/openapi.yaml"
"$VENV/bin/openapi-spec-validator" docs/openapi.yaml || die "docs/openapi.yaml is not valid OpenAPI"

# ---------------------------------------------------------------------------- the server
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lkfuzz.XXXXXX")
# Its own name, so that something stopping "latchkey" processes by name spares it.
SERVER_BIN=$WORK/lkfuzz-server
cp "$BIN" "$SERVER_BIN"
SERVER_PID=
cleanup() {
    local rc=$?
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $rc != 0 && -f $WORK/server.log ]]; then
        cp "$WORK/server.log" "${TMPDIR:-/tmp}/latchkey-fuzz-server.log"
        log "server log kept in ${TMPDIR:-/tmp}/latchkey-fuzz-server.log"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$("$VENV/bin/python" -c \
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
# A clean environment (no LATCHKEY_* of the caller) and a working directory without `.env`.
server_env=(
    env -i "PATH=$PATH" "HOME=$WORK"
    "LATCHKEY_LISTEN=127.0.0.1:$PORT"
    "LATCHKEY_ISSUER=$BASE"
    "LATCHKEY_DATABASE_URL=sqlite://$WORK/fuzz.db"
    LATCHKEY_COOKIE_SECURE=false
    LATCHKEY_ARGON2_MEMORY_KIB=1024
    LATCHKEY_ARGON2_ITERATIONS=1
    LATCHKEY_LOG=warn
    # The email routes run too: log:// writes messages to the log (at info, below LATCHKEY_LOG).
    LATCHKEY_SMTP_URL=log://
)
ADMIN=fuzz-admin
ADMIN_PASSWORD=Quartz-Harbor-Meadow-Falcon-52
USERNAME=fuzz-user
PASSWORD=Gl4cier-Marmot-Tandem-Quill-77

log "creating the admin with the CLI"
(cd "$WORK" && printf '%s\n' "$ADMIN_PASSWORD" |
    "${server_env[@]}" "$SERVER_BIN" user create --username "$ADMIN" --role admin --password-stdin \
    >/dev/null) || die "latchkey user create failed"

log "starting the server on $BASE"
(cd "$WORK" && exec "${server_env[@]}" "$SERVER_BIN" serve >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
ready() { "$VENV/bin/python" -c \
    'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$BASE/readyz" \
    2>/dev/null; }
for _ in $(seq 1 100); do
    ready && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server exited"; }
    sleep 0.1
done
ready || die "the server is not ready after 10 s"

log "signing in $USERNAME and $ADMIN"
credentials=$("$VENV/bin/python" scripts/fuzz/sign_in.py "$BASE" "$USERNAME" "$PASSWORD" \
    "$ADMIN" "$ADMIN_PASSWORD") || die "signing in failed"
while IFS='=' read -r name value; do
    export "$name=$value"
done <<<"$credentials"
# For the hooks (scripts/fuzz/hooks.py): signing in again, and counting requests.
export FUZZ_BASE_URL=$BASE FUZZ_USERNAME=$USERNAME FUZZ_PASSWORD=$PASSWORD
export FUZZ_REQUEST_COUNT_FILE=$WORK/requests

# ---------------------------------------------------------------------------- the run
args=(
    --config-file scripts/fuzz/schemathesis.toml
    run docs/openapi.yaml
    --url "$BASE"
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
    --max-examples "$MAX_EXAMPLES"
    --workers "$WORKERS"
)
[[ -n ${FUZZ_SEED:-} ]] && args+=(--seed "$FUZZ_SEED")
# shellcheck disable=SC2206 # extra arguments, split on purpose
[[ -n ${FUZZ_ARGS:-} ]] && args+=($FUZZ_ARGS)
log "schemathesis ${args[*]}"
started=$(date +%s)
status=0
SCHEMATHESIS_HOOKS=$ROOT/scripts/fuzz/hooks.py NO_COLOR=1 \
    timeout --kill-after=10 "$RUN_TIMEOUT" "$VENV/bin/schemathesis" "${args[@]}" || status=$?
elapsed=$(($(date +%s) - started))
requests=$(cat "$WORK/requests" 2>/dev/null || echo '?')
log "schemathesis finished in ${elapsed}s with exit status $status; $requests requests to the server"

kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during the run"
if grep -n -i -E 'panicked|internal error' "$WORK/server.log" >&2; then
    die "the server logged a panic or an internal error (above)"
fi
[[ $status == 124 || $status == 137 ]] && die "the run exceeded FUZZ_TIMEOUT=${RUN_TIMEOUT}s (a hang?)"
[[ $status == 0 ]] || die "schemathesis found failures (exit status $status)"
log "passed"
