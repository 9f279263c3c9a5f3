#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit and black-box tests.
# Services the tests need are installed here; the tests start their own instances.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== test services"
# SecantusDB: a MongoDB-wire-compatible server (PyPI) for the MongoDB store tests, which start
# one per test process on a free port with in-memory storage.
if [ ! -x .venv/bin/secantusd-py ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check secantusdb
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
