#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: installs what the tests need
# (promtool for the Prometheus rules and `promtool check metrics` on a real scrape,
# Alertmanager for alert delivery, Chromium for the dashboard), then runs every Rust
# test and the promtool rule tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# promtool: the e2e metrics test pipes a real scrape through `promtool check metrics`.
if ! command -v promtool >/dev/null 2>&1; then
    echo "== installing prometheus (apt, for promtool)"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus >/dev/null
    # The package starts a system service on :9090; the tests start what they need.
    $sudo systemctl stop prometheus 2>/dev/null || true
fi

# Alertmanager: the alert-delivery test posts to a real one on loopback.
if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
    echo "== installing prometheus-alertmanager (apt)"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus-alertmanager >/dev/null
    # The package starts a system service on :9093; the tests start their own.
    $sudo systemctl stop prometheus-alertmanager 2>/dev/null || true
fi

# Chromium: the dashboard test loads the admin page in a real headless browser.
if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing chromium (apt)"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

echo "== cargo test (workspace)"
cargo test --workspace --all-targets

echo "== Prometheus rules (promtool)"
scripts/promtool-test.sh

echo "== deploy/: Grafana queries parse, systemd unit verifies"
scripts/deploy-test.sh
