#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit and black-box tests.
# Services the tests need are installed and started here (none yet besides the embedded
# SQLite store, which needs nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

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
