#!/usr/bin/env bash
# bench/ab.sh A B [ROUNDS] [SECS]: two tango binaries, the same load in alternated rounds.
# Both run on CPU 1 (W workers each, default 1) behind the same four nginx backends on
# CPU 0, with bench/peers.toml (B on its own listener and admin ports); wrk -c64 on CPU 0 loads A, then
# B, then B, then A, ... Each round prints CPU microseconds per request (the process's
# utime+stime from /proc around the round) and requests a second, and the last line
# the means and B/A. Taking turns puts both in the same phase of a noisy host.
# Run from the project root after building both binaries; needs nginx, wrk, taskset.
set -euo pipefail
A=$1 B=$2 rounds=${3:-8} secs=${4:-3} W=${W:-1}
dir=$(mktemp -d -t duel.XXXX); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
cat >"$dir/backends.conf" <<EOC
worker_processes 1; daemon off; pid $dir/b.pid; error_log $dir/b.err warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:28101; location / { return 200 "backend-1\n"; } }
  server { listen 127.0.0.1:28102; location / { return 200 "backend-2\n"; } }
  server { listen 127.0.0.1:28103; location / { return 200 "backend-3\n"; } }
  server { listen 127.0.0.1:28104; location / { return 200 "backend-4\n"; } } }
EOC
sed 's/28090/28091/; s/28083/28093/' bench/peers.toml > "$dir/b.toml"
taskset -c 0 nginx -c "$dir/backends.conf" -p "$dir" >/dev/null 2>&1 & pids+=($!)
taskset -c 1 "$A" run --config bench/peers.toml --workers "$W" >"$dir/a.log" 2>&1 & pa=$!; pids+=($pa)
taskset -c 1 "$B" run --config "$dir/b.toml" --workers "$W" >"$dir/b.log" 2>&1 & pb=$!; pids+=($pb)
for port in 28101 28083 28093; do for _ in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:$port/ 2>/dev/null && break; sleep 0.1; done; done
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
one() { local pid=$1 port=$2 b a n; b=$(ticks $pid)
  taskset -c 0 wrk -t1 -c64 -d${secs}s http://127.0.0.1:$port/ > "$dir/w.txt"; a=$(ticks $pid)
  n=$(awk '/requests in/ {print $1}' "$dir/w.txt"); awk -v a=$a -v b=$b -v n=$n 'BEGIN{printf "%.2f %d", (a-b)/100*1e6/n, n/'"$secs"'}'; }
sa=0; sb=0
for r in $(seq $rounds); do
  if (( r % 2 )); then x=$(one $pa 28083); y=$(one $pb 28093); else y=$(one $pb 28093); x=$(one $pa 28083); fi
  echo "round $r  A $x   B $y"
done | tee "$dir/res"
awk '{a+=$4; b+=$7; n++} END {printf "mean A %.2f  B %.2f  B/A %.3f\n", a/n, b/n, b/a}' "$dir/res"
