#!/usr/bin/env bash
# Latency alerts under a CPU hog: four equal demo backends (2 ms) behind the release
# tango, fixed-rate open-loop load (crates/tango/examples/loadgen.rs), and beside the
# proxy busy-loop processes that this script starts and stops by PID:
#   steady  the hogs run the whole time
#   bursts  the hogs run for 1 s in every 3 s (short stalls)
# With -p (and 2+ CPUs) tango and the hogs share CPU 1 while the backends and the load
# generator have CPU 0 (at nice -10 when run as root): the hog stalls the proxy, which
# serves every backend alike, so every latency signal the watch fires is a false alarm. Without -p everything shares
# every CPU, and a hog that starves one backend's process makes that backend slower
# for real. Counted from tango's journal: latency signals fired, the ticks (seconds)
# with one active, and incidents of any kind.
#
# usage: bench/cpu-hog.sh [-r RATE] [-d SECONDS] [-m MODE] [-k HOGS] [-p] [-n] [-o OUTDIR]
#   -r  requests per second (200)     -d  measured seconds (600)
#   -m  steady | bursts (bursts)      -k  busy loops (one per CPU)
#   -p  pin: tango and the hogs on CPU 1, the rest on CPU 0
#   -n  do not build first
#   -o  keep the config, logs, journal and load JSON in OUTDIR (default: a temp dir)
# Run from the project's root. needs: jq, curl.
# Ports: backends 28401-28404, tango 28410 (admin 28420).
# Prints one markdown table row:
#   | mode | req/s | seconds | latency signals | ticks with one active | incidents | p50 / p99 ms |
set -euo pipefail

rate=200 duration=600 mode=bursts build=1 out="" hogs_n=$(nproc) pin=0
while getopts "r:d:m:k:pno:" opt; do
  case $opt in
    r) rate=$OPTARG ;; d) duration=$OPTARG ;; m) mode=$OPTARG ;;
    k) hogs_n=$OPTARG ;; p) pin=1 ;; n) build=0 ;; o) out=$OPTARG ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
  esac
done
pin_proxy="" pin_rest=""
if (( pin )); then
  (( $(nproc) >= 2 )) && command -v taskset >/dev/null || { echo "cpu-hog.sh: -p needs 2+ CPUs and taskset" >&2; exit 2; }
  pin_proxy="taskset -c 1" pin_rest="taskset -c 0"
  # The backends and the load generator must not be what the hog (or anything else
  # on the machine) slows: as root they also get a higher priority.
  (( EUID == 0 )) && pin_rest="nice -n -10 $pin_rest"
fi
[[ $mode == steady || $mode == bursts ]] || { echo "cpu-hog.sh: -m steady|bursts" >&2; exit 2; }
for tool in jq curl; do
  command -v "$tool" >/dev/null || { echo "cpu-hog.sh: $tool not found (apt-get install -y jq curl)" >&2; exit 2; }
done
[[ -f crates/tango/examples/loadgen.rs ]] || { echo "cpu-hog.sh: run from the project root" >&2; exit 2; }
if (( build )); then
  cargo build --release -p tango --bins --examples
fi
tango=target/release/tango loadgen=target/release/examples/loadgen

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_dirs cpu-hog keep
hogs=()
stop_hogs() {
  for h in "${hogs[@]}"; do kill "$h" 2>/dev/null || true; done
  hogs=()
}
on_exit() { stop_hogs; }
start_hogs() {
  for _ in $(seq 1 "$hogs_n"); do
    # shellcheck disable=SC2086
    $pin_proxy bash -c 'while :; do :; done' &
    hogs+=($!)
  done
}

ports=(28401 28402 28403 28404)
for n in 1 2 3 4; do
  # shellcheck disable=SC2086
  start "backend-b$n" $pin_rest "$tango" demo-backend --listen "127.0.0.1:${ports[n-1]}" --name "b$n" --latency 2ms
done
mkdir -p "$out/state"
{
  printf '[admin]\nlisten = "127.0.0.1:28420"\nstate_dir = "%s"\n\n' "$out/state"
  printf '[[listener]]\nname = "bench"\nlisten = "127.0.0.1:28410"\n\n[[pool]]\nname = "bench"\n'
  for n in 1 2 3 4; do
    printf '\n[[pool.backend]]\nname = "b%s"\naddress = "127.0.0.1:%s"\n' "$n" "${ports[n-1]}"
  done
} >"$out/tango.toml"
# shellcheck disable=SC2086
start tango $pin_proxy "$tango" run --config "$out/tango.toml"
for p in "${ports[@]}" 28410; do
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$p/" 2>/dev/null && break
    sleep 0.1
  done
done

# Warm up (the watch learns the split), then the measured run with the hog beside it.
# shellcheck disable=SC2086
$pin_rest "$loadgen" --url http://127.0.0.1:28410/ --rate "$rate" --duration 20 >/dev/null
from_ms=$(( $(date +%s%3N) ))
# shellcheck disable=SC2086
$pin_rest "$loadgen" --url http://127.0.0.1:28410/ --rate "$rate" --duration "$duration" >"$out/load.json" &
load=$!
if [[ $mode == steady ]]; then
  start_hogs
  wait "$load"
else
  while kill -0 "$load" 2>/dev/null; do
    start_hogs; sleep 1; stop_hogs; sleep 2
  done
  wait "$load" || true
fi
stop_hogs
to_ms=$(( $(date +%s%3N) ))
sleep 2

journal="$out/state/journal.jsonl"
(( pin )) && mode="$mode, pinned"
mode="$mode, $hogs_n hogs"
jq -rs --arg mode "$mode" --argjson rate "$rate" --argjson secs "$duration" \
  --argjson from "$from_ms" --argjson to "$to_ms" --slurpfile load "$out/load.json" '
  [ .[] | select(.ts_ms >= $from and .ts_ms <= $to) ] as $run
  | [ $run[] | select(.type == "alert_fired" and .evidence.kind == "latency") ] as $fired
  | [ $run[] | select(.type == "alert_resolved" and .evidence.kind == "latency") ] as $resolved
  | ([ $fired[] | . as $f
       | ([ $resolved[] | select(.evidence.backend == $f.evidence.backend and .ts_ms >= $f.ts_ms) | .ts_ms ] | min // $to)
       - $f.ts_ms ] | add // 0) as $active_ms
  | [ $run[] | select(.type == "incident_opened") ] as $incidents
  | "| \($mode) | \($rate) | \($secs) | \($fired | length) | \(($active_ms / 1000) | floor) of \($secs) (\(($active_ms / $secs / 10) * 100 | round / 100)%) | \($incidents | length) | \($load[0].p50_ms) / \($load[0].p99_ms) |"
' "$journal"
echo "config, logs, journal and load JSON: $out" >&2
