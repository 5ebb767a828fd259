#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: installs what the tests need
# (promtool for the Prometheus rules and `promtool check metrics` on a real scrape,
# Alertmanager for alert delivery, Chromium for the dashboard), then runs every Rust
# test and the promtool rule tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/need.sh
. scripts/need.sh

need promtool prometheus "promtool: rule tests and \`promtool check metrics\` on a real scrape"
need prometheus-alertmanager prometheus-alertmanager "the alert-delivery test posts to a real one"
need chromium chromium "the dashboard test loads the admin page in a headless browser"
need ss iproute2 "the cut-response tests read tango's socket queues"

echo "== cargo test (workspace)"
cargo test --workspace --all-targets

# The fuzz targets are a crate of their own (outside the workspace, run with
# cargo-fuzz in CI): check they still build against the current APIs.
echo "== fuzz targets build"
cargo check --manifest-path fuzz/Cargo.toml --bins

echo "== Prometheus rules (promtool)"
scripts/promtool-test.sh

echo "== deploy/: Grafana queries parse, systemd unit verifies"
scripts/deploy-test.sh
