#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit and black-box tests.
# Services the tests need are installed here and started by the tests themselves: the
# OpenID provider of the OIDC tests (npm `oidc-provider`, run with node).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== OpenID provider for the OIDC tests (npm ci)"
if command -v npm >/dev/null 2>&1; then
  # Idempotent: npm ci reinstalls exactly the locked versions.
  (cd crates/latchkey/tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "npm not found: the OIDC tests will skip (and fail under CI=true)"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --locked --no-fail-fast
  # nextest does not run doctests
  cargo test --workspace --doc --locked
else
  cargo test --workspace --all-targets --locked --no-fail-fast
fi
