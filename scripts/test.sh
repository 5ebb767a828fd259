#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: installs what the tests need
# (promtool, for the fleet-wide Prometheus rules), then runs every Rust test and the
# promtool rule tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (workspace)"
cargo test --workspace --all-targets

echo "== Prometheus rules (promtool)"
scripts/promtool-test.sh
