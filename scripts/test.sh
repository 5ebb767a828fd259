#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: installs what the tests need
# (promtool for the Prometheus rules and `promtool check metrics` on a real scrape,
# Alertmanager for alert delivery, Chromium for the dashboard), then runs every Rust
# test and the promtool rule tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Install a Debian package when the command it provides is missing. Packages that start
# a system service (prometheus on :9090, Alertmanager on :9093) have it stopped: the
# tests start what they need on port 0.
need() {
    local cmd=$1 pkg=$2 why=$3 sudo=""
    command -v "$cmd" >/dev/null 2>&1 && return 0
    echo "== installing $pkg (apt, $why)"
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$pkg" >/dev/null
    $sudo systemctl stop "$pkg" 2>/dev/null || true
}

need promtool prometheus "promtool: rule tests and \`promtool check metrics\` on a real scrape"
need prometheus-alertmanager prometheus-alertmanager "the alert-delivery test posts to a real one"
need chromium chromium "the dashboard test loads the admin page in a headless browser"

echo "== cargo test (workspace)"
cargo test --workspace --all-targets

echo "== Prometheus rules (promtool)"
scripts/promtool-test.sh

echo "== deploy/: Grafana queries parse, systemd unit verifies"
scripts/deploy-test.sh
