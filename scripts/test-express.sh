#!/usr/bin/env bash
# Tests of the Node side: @latchkey/express (clients/express: type check, ESM + CJS build, node
# tests against a real Latchkey for EdDSA, ES256 and RS256, passport, `latchkey user import` of
# hashes made by bcryptjs and passport-local-mongoose) and the Express files API example
# (examples/express-api). Uses the already-built target/debug/latchkey (override: LATCHKEY_BIN);
# each test starts its own Latchkey on a free loopback port with a throw-away SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."

export LATCHKEY_BIN="${LATCHKEY_BIN:-$PWD/target/debug/latchkey}"
if [ ! -x "$LATCHKEY_BIN" ]; then
  echo "test-express: $LATCHKEY_BIN is missing; build it first (cargo build -p latchkey)" >&2
  exit 1
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "test-express: node and npm are required under CI=true" >&2
    exit 1
  fi
  echo "test-express: node/npm not found, skipping the Express tests"
  exit 0
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "test-express: node >= 20.19 needed (found $(node --version))" >&2
  exit 1
fi

echo "== @latchkey/express: npm ci, type check, build"
(cd clients/express && npm ci --no-audit --no-fund --loglevel=error && npm run --silent lint && npm run --silent build)

echo "== @latchkey/express: node tests against a real Latchkey"
(cd clients/express && node --test --test-concurrency=1 test/)

echo "== examples/express-api: npm ci, node tests"
(cd examples/express-api && npm ci --no-audit --no-fund --loglevel=error && node --test --test-concurrency=1 test/)
