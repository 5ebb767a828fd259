#!/usr/bin/env bash
# Checks the files in deploy/ with the tools that will read them:
#   - every PromQL query in the Grafana dashboard parses (promtool check rules, over a
#     rules file made of the dashboard's queries with Grafana's variables filled in);
#     that they name only metrics tango exports is the e2e test operator::deploy;
#   - the systemd unit passes `systemd-analyze verify` (skipped, with a notice, where
#     systemd-analyze cannot run).
# Needs promtool (scripts/test.sh installs it) and jq.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== Grafana dashboard queries (promtool)"
dashboard=deploy/grafana/tango.json
# Every "expr" anywhere in the dashboard (panels, annotations), with Grafana's
# variables replaced by values of the right kind: intervals by a duration, the
# dashboard's own variables (used only inside label matchers) by a regex.
jq '[.. | objects | select(has("expr")) | .expr]' "$dashboard" >"$tmp/exprs.json"
count=$(jq 'length' "$tmp/exprs.json")
[ "$count" -gt 0 ] || { echo "no queries found in $dashboard" >&2; exit 1; }
jq '{groups: [{name: "grafana", rules: [to_entries[] | {
        record: ("grafana:query_" + (.key | tostring)),
        expr: (.value
          | gsub("\\$__(rate_interval|interval|range)"; "5m")
          | gsub("\\$\\{?[A-Za-z_][A-Za-z0-9_]*\\}?"; ".*"))
      }]}]}' "$tmp/exprs.json" >"$tmp/dashboard-rules.json"
promtool check rules "$tmp/dashboard-rules.json"
echo "$count queries parse"

echo "== systemd unit (systemd-analyze verify)"
unit=deploy/systemd/tango.service
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "notice: systemd-analyze not found; $unit not verified"
    exit 0
fi
# verify insists that ExecStart's program exists: point it at a stand-in.
mkdir -p "$tmp/unit"
printf '#!/bin/sh\nexit 0\n' >"$tmp/tango"
chmod +x "$tmp/tango"
sed "s|/usr/local/bin/tango|$tmp/tango|g" "$unit" >"$tmp/unit/tango.service"
if ! out=$(systemd-analyze verify "$tmp/unit/tango.service" 2>&1); then
    if grep -qiE "not booted|Failed to (connect|initialize)|System has not been booted" <<<"$out"; then
        echo "notice: systemd-analyze cannot run here ($out); $unit not verified"
        exit 0
    fi
    echo "$out" >&2
    exit 1
fi
# verify exits 0 on some warnings it prints; the unit must produce none.
if [ -n "$out" ]; then
    echo "$out" >&2
    exit 1
fi
echo "$unit verifies"
