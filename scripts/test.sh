#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit and black-box tests.
# Services the tests need are installed here and started by the tests themselves: the
# OpenID provider of the OIDC tests (npm `oidc-provider`, run with node), SecantusDB for the
# MongoDB tests and aiosmtpd for the email tests (pip); PostgreSQL (apt) is started here, once,
# by scripts/postgres.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== OpenID provider for the OIDC tests (npm ci)"
if command -v npm >/dev/null 2>&1; then
  # Idempotent: npm ci reinstalls exactly the locked versions.
  (cd crates/latchkey/tests/server/oidc && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "npm not found: the OIDC tests will skip (and fail under CI=true)"
fi

echo "== SecantusDB for the MongoDB tests (pip, into .venv)"
# A MongoDB-wire-compatible server (PyPI); the MongoDB tests start their own on free ports with
# throw-away storage.
if [ ! -x .venv/bin/secantusd-py ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check secantusdb
fi

echo "== aiosmtpd for the email tests (pip, into .venv)"
# A real SMTP server (PyPI); the email tests start their own on free ports
# (crates/latchkey/tests/server/email/smtp_sink.py) and read the mail it receives.
if ! .venv/bin/python -c 'import aiosmtpd' >/dev/null 2>&1; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check aiosmtpd
fi

echo "== PostgreSQL for the PostgreSQL tests (Debian's postgresql, installed when missing)"
# One throw-away cluster for the whole run (initdb into a temporary folder as an unprivileged
# user, a free port), stopped and removed when this script exits; its URL is exported as
# LATCHKEY_TEST_POSTGRES_URL for the conformance suite, the `postgres` area and the run on
# postgres below (each test makes a fresh database on it; the outage tests start clusters of
# their own with the same script).
# shellcheck source=postgres.sh
source scripts/postgres.sh
latchkey_pg_up

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p latchkey --no-default-features --all-targets --locked -- -D warnings

# The server's black-box tests (crates/latchkey/tests/server) run once per store, chosen by
# LATCHKEY_TEST_STORE; the first, complete run is on SQLite. The `mongo` area brings its own
# MongoDB servers, so it runs only once; the `postgres` area brings its own databases and
# clusters, the same. A new backend is one more name here.
BACKENDS=(mongodb postgres)
AREA_FILTER='not test(/^mongo::/) & not test(/^postgres::/)'

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --locked --no-fail-fast
  # nextest does not run doctests
  cargo test --workspace --doc --locked
  for store in "${BACKENDS[@]}"; do
    echo "== the server's black-box tests on $store"
    LATCHKEY_TEST_STORE=$store cargo nextest run -p latchkey --test server --locked \
      --no-fail-fast -E "$AREA_FILTER"
  done
else
  cargo test --workspace --all-targets --locked --no-fail-fast
  for store in "${BACKENDS[@]}"; do
    echo "== the server's black-box tests on $store"
    LATCHKEY_TEST_STORE=$store cargo test -p latchkey --test server --locked --no-fail-fast \
      -- --skip mongo:: --skip postgres::
  done
fi

echo "== Express: @latchkey/express and examples/express-api (node tests against target/debug/latchkey)"
bash scripts/test-express.sh

echo "== browser client and demo app (node --test, playwright-core + Debian chromium)"
bash scripts/test-browser.sh

echo "== fuzzing the HTTP API against docs/openapi.yaml (schemathesis)"
bash scripts/fuzz.sh
