#!/usr/bin/env bash
# The demo in one command: Latchkey on http://localhost:8080, files-api on
# http://localhost:8081 and the demo app on http://localhost:5173 (all on 127.0.0.1), with
# plain-http development settings. Builds what is missing; Ctrl-C stops all three.
#   LATCHKEY_PORT, FILES_PORT, SPA_PORT   other ports
#   DEMO_DIR                              where the SQLite files live (default .demo/)
# Extra LATCHKEY_* variables (e.g. LATCHKEY_OAUTH_PROVIDERS) are passed through.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LP=${LATCHKEY_PORT:-8080} FP=${FILES_PORT:-8081} SP=${SPA_PORT:-5173}
DIR=$(mkdir -p "${DEMO_DIR:-.demo}" && cd "${DEMO_DIR:-.demo}" && pwd)
ISSUER=http://localhost:$LP FILES=http://localhost:$FP APP=http://localhost:$SP

LATCHKEY_BIN=${LATCHKEY_BIN:-target/debug/latchkey}
FILES_API_BIN=${FILES_API_BIN:-target/debug/files-api}
if [ ! -x "$LATCHKEY_BIN" ] || [ ! -x "$FILES_API_BIN" ]; then
  cargo build -p latchkey -p files-api
fi
if [ ! -f clients/browser/dist/latchkey.js ] || [ ! -f examples/spa/dist/app.js ]; then
  (cd clients/browser && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
fi

pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT
trap 'exit 130' INT TERM

wait_for() { # url name
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: $2 did not start (see $DIR/$2.log)" >&2
  exit 1
}

(cd "$DIR" && exec env \
  LATCHKEY_LISTEN="127.0.0.1:$LP" \
  LATCHKEY_ISSUER="$ISSUER" \
  LATCHKEY_DATABASE_URL="${LATCHKEY_DATABASE_URL:-sqlite://$DIR/latchkey.db}" \
  LATCHKEY_COOKIE_SECURE=false \
  LATCHKEY_ALLOWED_ORIGINS="$APP" \
  LATCHKEY_PASSWORD_MIN_LENGTH="${LATCHKEY_PASSWORD_MIN_LENGTH:-15}" \
  "$ROOT/$LATCHKEY_BIN" serve) >"$DIR/latchkey.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$LP/readyz" latchkey

(cd "$DIR" && exec env \
  FILES_LISTEN="127.0.0.1:$FP" \
  FILES_ISSUER="$ISSUER" \
  FILES_DATABASE_URL="sqlite://$DIR/files.db" \
  FILES_ALLOWED_ORIGINS="$APP" \
  "$ROOT/$FILES_API_BIN") >"$DIR/files-api.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$FP/healthz" files-api

SPA_LISTEN="127.0.0.1:$SP" SPA_ISSUER="$ISSUER" SPA_FILES_API="$FILES" \
  node examples/spa/server.mjs >"$DIR/spa.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$SP/" spa

cat <<MSG
Latchkey demo running (logs in $DIR):
  app        $APP        <- open this
  latchkey   $ISSUER
  files-api  $FILES
Ctrl-C stops all three.
MSG
wait -n "${pids[@]}" || true
echo "demo: a process exited; stopping (see the logs in $DIR)" >&2
exit 1
