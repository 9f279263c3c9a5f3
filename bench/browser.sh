#!/usr/bin/env bash
# Browser client figures: bundle size (minified + gzip, target under 4 KB) and the time from
# page load to signed-in user on a warm server (headless Chromium, loopback).
#   LATCHKEY_BIN / FILES_API_BIN   default target/debug/*; use release binaries for real figures:
#     cargo build --release -p latchkey -p files-api
#     LATCHKEY_BIN=target/release/latchkey FILES_API_BIN=target/release/files-api bash bench/browser.sh
#   RUNS                           page loads to time (default 30)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/clients/browser"
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
npm run --silent build >/dev/null
raw=$(wc -c < src/latchkey.ts)
min=$(wc -c < dist/latchkey.js)
gz=$(gzip -9 -c dist/latchkey.js | wc -c)
echo "bundle: dist/latchkey.js ${min} bytes minified, ${gz} bytes minified+gzip (source ${raw} bytes; target < 4096)"
[ -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ] || { echo "bench/browser: chromium is missing (bash scripts/test-browser.sh installs it)" >&2; exit 1; }
echo "servers: ${LATCHKEY_BIN:-target/debug/latchkey}, ${FILES_API_BIN:-target/debug/files-api}"
node scripts/bench-load.mjs
if [ "$gz" -ge 4096 ]; then echo "bench/browser: bundle over 4 KB" >&2; exit 1; fi
