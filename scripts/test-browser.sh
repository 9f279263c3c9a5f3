#!/usr/bin/env bash
# Tests of the browser client (@latchkey/browser) and the demo app: type check, unit tests
# (fake fetch) and browser tests (playwright-core driving Debian's Chromium against the real
# latchkey and files-api debug binaries, started on free loopback ports).
#   LATCHKEY_BIN, FILES_API_BIN   binaries to test (default target/debug/latchkey, files-api)
#   CHROMIUM_BIN                  default /usr/bin/chromium (installed with apt when missing)
# Screenshots of the pages of a failed browser test land in test-results/browser/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

chromium=${CHROMIUM_BIN:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-browser: installing chromium with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test-browser: $chromium is missing (apt-get install chromium)" >&2
    exit 1
  fi
fi
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "test-browser: $tool is missing" >&2; exit 1; }
done
for bin in "${LATCHKEY_BIN:-target/debug/latchkey}" "${FILES_API_BIN:-target/debug/files-api}"; do
  if [ ! -x "$bin" ]; then
    echo "test-browser: $bin is missing, building the debug binaries"
    cargo build -q -p latchkey -p files-api
    break
  fi
done

# The sign-in test drives the OpenID Provider of Latchkey's own OIDC tests (npm oidc-provider).
if [ ! -d crates/latchkey/tests/server/oidc/node_modules/oidc-provider ]; then
  (cd crates/latchkey/tests/server/oidc && npm ci --no-audit --no-fund --loglevel=error)
fi

cd clients/browser
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
npm run --silent lint
rm -rf "$ROOT/test-results/browser"
node --test --test-concurrency=1 test/unit/ test/browser/
