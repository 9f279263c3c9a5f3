#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit and black-box tests.
# Services the tests need are installed here and started by the tests themselves: the
# OpenID provider of the OIDC tests (npm `oidc-provider`, run with node) and SecantusDB for the
# MongoDB tests (pip).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== OpenID provider for the OIDC tests (npm ci)"
if command -v npm >/dev/null 2>&1; then
  # Idempotent: npm ci reinstalls exactly the locked versions.
  (cd crates/latchkey/tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
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

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The black-box API tests that open the SQLite file itself (to read or move stored expiry
# times), left out of the run against MongoDB; the conformance suite covers those behaviours
# there.
SQLITE_FILE_TESTS=(
  restart::several_restarts_in_a_row_keep_one_signing_key
  cookie_sessions::nothing_is_stored_in_the_database_for_a_cookie_session
  sessions::a_live_session_cookie_sent_to_login_is_ended_and_replaced
  sessions::a_session_past_its_idle_timeout_is_401
  sessions::a_session_past_its_absolute_timeout_is_401_although_recently_used
  sessions::an_expired_session_is_not_listed_and_cannot_be_used_for_auth_routes
  sessions::every_request_slides_the_idle_timeout
  sessions::the_idle_timeout_never_slides_past_the_absolute_timeout
  sessions::the_store_keeps_only_the_sha256_of_the_session_id
  sessions::logout_is_204_clears_the_cookie_and_the_old_cookie_is_then_refused
  sessions::disabling_the_user_ends_the_session
  hardening::the_database_file_is_private_and_a_readable_one_stops_the_start
)

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --locked --no-fail-fast
  # nextest does not run doctests
  cargo test --workspace --doc --locked
  echo "== black-box API, admin and sign-in tests against MongoDB"
  filter="not ($(printf 'test(=%s) | ' "${SQLITE_FILE_TESTS[@]}" | sed 's/ | $//'))"
  LATCHKEY_TEST_STORE=mongodb cargo nextest run -p latchkey --test api --test admin --test oidc \
    --locked --no-fail-fast -E "$filter"
else
  cargo test --workspace --all-targets --locked --no-fail-fast
  echo "== black-box API, admin and sign-in tests against MongoDB"
  skips=()
  for t in "${SQLITE_FILE_TESTS[@]}"; do skips+=(--skip "$t"); done
  LATCHKEY_TEST_STORE=mongodb cargo test -p latchkey --test api --test admin --test oidc \
    --locked --no-fail-fast -- --exact "${skips[@]}"
fi

echo "== Express: @latchkey/express and examples/express-api (node tests against target/debug/latchkey)"
bash scripts/test-express.sh

echo "== browser client and demo app (node --test, playwright-core + Debian chromium)"
bash scripts/test-browser.sh

echo "== fuzzing the HTTP API against docs/openapi.yaml (schemathesis)"
bash scripts/fuzz.sh
