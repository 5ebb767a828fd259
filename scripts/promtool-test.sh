#!/usr/bin/env bash
# Checks and unit-tests the fleet-wide Prometheus rules in deploy/prometheus/.
# Installs promtool (Debian package `prometheus`) when it is missing.
set -euo pipefail

cd "$(dirname "$0")/../deploy/prometheus"

if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool not found; installing the prometheus package" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y prometheus
fi

promtool check rules tango-rules.yml
promtool test rules tango-rules.test.yml
