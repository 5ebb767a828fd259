#!/usr/bin/env bash
# Slow-backend scenario: four demo backends, one of them 10x slower, and the same
# fixed-rate open-loop load (crates/tango/examples/loadgen.rs) through
#   tango round_robin, tango least_request, tango peak_ewma,
#   nginx least_conn (keepalive pool) and haproxy leastconn (http-reuse always).
# Every backend answers its name, so the load generator counts each backend's share
# the same way for every proxy. Latency is measured from each request's scheduled send
# time, so time spent behind a slow backend is never hidden by a lower offered load.
#
# usage: bench/slow-backend.sh [-r RATE] [-d SECONDS] [-w WARMUP] [-f FAST] [-s SLOW]
#                              [-e EWMA_DECAY] [-t TARGETS] [-n] [-o OUTDIR]
#   -r  requests per second (1000)            -d  measured seconds per target (20)
#   -w  warm-up seconds per target (3)        -f  fast backends' latency (2ms)
#   -s  slow backend's latency (20ms)         -e  ewma_decay of the peak_ewma pool (10s)
#   -t  targets, comma-separated (all: tango-rr,tango-lr,tango-ewma,nginx,haproxy)
#   -n  do not run `cargo build --release -p tango --bins --examples` first
#   -o  keep configs, logs and per-target JSON in OUTDIR (default: a temp dir)
# Run from the project's root. needs: nginx, haproxy, jq, curl
#   (Debian packages: nginx-light haproxy jq curl); taskset is used if present.
# Ports sit below Linux's ephemeral range: backends 28301-28304, tango 28310-28312
# (admin 28320-28322), nginx 28313, haproxy 28314.
# Prints a markdown table, then one line comparing peak_ewma's p99 with the peers':
#   peak_ewma p99 X ms vs nginx Y ms, haproxy Z ms: beats both | does NOT beat both
# and exits 0 either way (the numbers are the result; the line is the verdict).
set -euo pipefail

rate=1000 duration=20 warmup=3 fast=2ms slow=20ms decay=10s build=1 out=""
targets="tango-rr,tango-lr,tango-ewma,nginx,haproxy"
while getopts "r:d:w:f:s:e:t:no:" opt; do
  case $opt in
    r) rate=$OPTARG ;; d) duration=$OPTARG ;; w) warmup=$OPTARG ;;
    f) fast=$OPTARG ;; s) slow=$OPTARG ;; e) decay=$OPTARG ;;
    t) targets=$OPTARG ;; n) build=0 ;; o) out=$OPTARG ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
done
for tool in nginx haproxy jq curl; do
  command -v "$tool" >/dev/null || { echo "slow-backend.sh: $tool not found (apt-get install -y nginx-light haproxy jq curl)" >&2; exit 2; }
done
[[ -f crates/tango/examples/loadgen.rs ]] || { echo "slow-backend.sh: run from the project root" >&2; exit 2; }
if (( build )); then
  cargo build --release -p tango --bins --examples
fi
tango=target/release/tango loadgen=target/release/examples/loadgen
for bin in "$tango" "$loadgen"; do
  [[ -x $bin ]] || { echo "slow-backend.sh: $bin missing; run: cargo build --release -p tango --bins --examples" >&2; exit 2; }
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_dirs slow-backend keep

# The proxy under test gets CPU 1; the load generator and the backends share CPU 0.
pin_proxy="" pin_load=""
if (( $(nproc) >= 2 )) && command -v taskset >/dev/null; then
  pin_proxy="taskset -c 1" pin_load="taskset -c 0"
fi

backend_ports=(28301 28302 28303 28304)
declare -A port=([tango-rr]=28310 [tango-lr]=28311 [tango-ewma]=28312 [nginx]=28313 [haproxy]=28314)
declare -A policy=([tango-rr]=round_robin [tango-lr]=least_request [tango-ewma]=peak_ewma)
declare -A admin=([tango-rr]=28320 [tango-lr]=28321 [tango-ewma]=28322)
declare -A label=([tango-rr]="tango round_robin" [tango-lr]="tango least_request"
  [tango-ewma]="tango peak_ewma (ewma_decay $decay)" [nginx]="nginx least_conn" [haproxy]="haproxy leastconn")

tango_config() { # target
  local t=$1 n
  cat <<EOF
[admin]
listen = "127.0.0.1:${admin[$t]}"
state_dir = "$dir/state-$t"

[[listener]]
name = "bench"
listen = "127.0.0.1:${port[$t]}"
max_connections = 20000

[[pool]]
name = "bench"
policy = "${policy[$t]}"
EOF
  [[ $t == tango-ewma ]] && echo "ewma_decay = \"$decay\""
  for n in 1 2 3 4; do
    printf '\n[[pool.backend]]\nname = "s%s"\naddress = "127.0.0.1:%s"\n' "$n" "${backend_ports[n-1]}"
  done
}

cat >"$out/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/nginx.err warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  upstream pool {
    least_conn;
    server 127.0.0.1:28301; server 127.0.0.1:28302;
    server 127.0.0.1:28303; server 127.0.0.1:28304;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port[nginx]};
    location / { proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
haproxy_config "${port[haproxy]}" leastconn 1 8000 28301 28302 28303 28304 >"$out/haproxy.cfg"

# shellcheck disable=SC2086
for n in 1 2 3 4; do
  lat=$fast; (( n == 4 )) && lat=$slow
  start "backend-s$n" $pin_load "$tango" demo-backend --listen "127.0.0.1:${backend_ports[n-1]}" --name "s$n" --latency "$lat"
done
IFS=, read -r -a todo <<<"$targets"
for t in "${todo[@]}"; do
  [[ -n ${port[$t]:-} ]] || { echo "slow-backend.sh: unknown target $t" >&2; exit 2; }
  # shellcheck disable=SC2086
  case $t in
    tango-*) mkdir -p "$dir/state-$t"; tango_config "$t" >"$out/$t.toml"
             start "$t" $pin_proxy "$tango" run --config "$out/$t.toml" --workers 1 ;;
    nginx) start nginx $pin_proxy nginx -c "$out/nginx.conf" -p "$dir" ;;
    haproxy) start haproxy $pin_proxy haproxy -f "$out/haproxy.cfg" ;;
  esac
done

for p in "${backend_ports[@]}"; do wait_port "$p"; done
for t in "${todo[@]}"; do wait_port "${port[$t]}"; done

echo "slow backend: s4 at $slow, fast: s1-s3 at $fast; $rate req/s for ${duration}s after ${warmup}s warm-up per target" >&2
for t in "${todo[@]}"; do
  # shellcheck disable=SC2086
  $pin_load "$loadgen" --url "http://127.0.0.1:${port[$t]}/" --rate "$rate" \
    --duration "$duration" --warmup "$warmup" >"$out/$t.json"
done

echo
echo "| target | p50 ms | p99 ms | slow backend share | errors |"
echo "| --- | ---: | ---: | ---: | ---: |"
for t in "${todo[@]}"; do
  jq -r --arg name "${label[$t]}" '
    "| \($name) | \(.p50_ms) | \(.p99_ms) | \(if .ok > 0 then ((.bodies.s4 // 0) * 1000 / .ok | round / 10) else 0 end)% | \(.errors + .dropped) |"' \
    "$out/$t.json"
done
echo
p99() { jq -r .p99_ms "$out/$1.json"; }
if [[ -f $out/tango-ewma.json && -f $out/nginx.json && -f $out/haproxy.json ]]; then
  e=$(p99 tango-ewma) n=$(p99 nginx) h=$(p99 haproxy)
  verdict=$(jq -rn --argjson e "$e" --argjson n "$n" --argjson h "$h" \
    'if $e < $n and $e < $h then "beats both" else "does NOT beat both" end')
  echo "peak_ewma p99 $e ms vs nginx $n ms, haproxy $h ms: $verdict"
fi
echo "configs, logs and per-target JSON: $out" >&2
