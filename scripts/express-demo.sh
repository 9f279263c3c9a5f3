#!/usr/bin/env bash
# Runs Latchkey and the Express files API (examples/express-api) side by side until Ctrl-C:
#   Latchkey     http://127.0.0.1:${LATCHKEY_PORT:-8080}   (SQLite file ./express-demo.db)
#   files API    http://127.0.0.1:${FILES_PORT:-8081}      (files in memory)
# Browser origins allowed by both (the demo app): DEMO_ORIGINS, default http://127.0.0.1:5173.
# Uses target/release/latchkey, else target/debug/latchkey (or LATCHKEY_BIN).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LATCHKEY=${LATCHKEY_BIN:-$ROOT/target/release/latchkey}
[[ -x $LATCHKEY ]] || LATCHKEY=$ROOT/target/debug/latchkey
[[ -x $LATCHKEY ]] || { echo "build latchkey first: cargo build -p latchkey" >&2; exit 1; }
LK_PORT=${LATCHKEY_PORT:-8080}
FILES_PORT=${FILES_PORT:-8081}
ORIGINS=${DEMO_ORIGINS:-http://127.0.0.1:5173}

if [[ ! -f $ROOT/clients/express/dist/esm/index.js ]]; then
  (cd "$ROOT/clients/express" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
fi
[[ -d $ROOT/examples/express-api/node_modules ]] ||
  (cd "$ROOT/examples/express-api" && npm ci --no-audit --no-fund --loglevel=error)

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait' EXIT
trap 'exit 130' INT TERM

LATCHKEY_LISTEN=127.0.0.1:$LK_PORT LATCHKEY_COOKIE_SECURE=false LATCHKEY_ALLOWED_ORIGINS=$ORIGINS \
  LATCHKEY_DATABASE_URL=${LATCHKEY_DATABASE_URL:-sqlite://express-demo.db} "$LATCHKEY" serve &
PIDS+=($!)
for _ in $(seq 1 300); do curl -fs -o /dev/null "http://127.0.0.1:$LK_PORT/healthz" && break; sleep 0.1; done
(cd "$ROOT/examples/express-api" && FILES_ISSUER=http://127.0.0.1:$LK_PORT FILES_LISTEN=127.0.0.1:$FILES_PORT \
  FILES_ALLOWED_ORIGINS=$ORIGINS exec node server.mjs) &
PIDS+=($!)
echo "Latchkey http://127.0.0.1:$LK_PORT, files API http://127.0.0.1:$FILES_PORT; Ctrl-C stops both"
wait
