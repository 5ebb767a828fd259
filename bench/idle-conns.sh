#!/usr/bin/env bash
# Memory per idle client connection: tango, nginx and haproxy, in one run, each in
# front of the same small backend (nginx answering a fixed 200), on loopback.
# For every proxy and scenario a fresh proxy process is started, warmed up with one
# request, measured, then bench/idle_conns.py opens N connections to it and holds them:
#   silent     connect and send nothing
#   keepalive  one HTTP/1.1 request per connection, its whole response read, then the
#              connection left open and idle
# Memory is VmRSS (/proc/PID/status) and Pss (/proc/PID/smaps_rollup) summed over the
# proxy's processes (nginx: master and worker), read before the connections open and
# once the proxy has accepted all of them (`ss`: N established on its port, its accept
# queue empty) plus a 1 s settle. KB per connection = (after - before) / N.
# Fair settings: one worker each (nginx worker_processes 1, haproxy nbthread 1, tango
# --workers 1), idle and header timeouts of 300 s so nothing is closed while measured,
# connection limits above N, and the open-file limit raised to fit.
#
# usage: bench/idle-conns.sh [-c CONNS] [-t TARGETS] [-s SCENARIOS] [-n] [-o OUTDIR]
#   -c  connections per proxy and scenario (3000)
#   -t  proxies, comma-separated (tango,nginx,haproxy)
#   -s  scenarios, comma-separated (keepalive,silent)
#   -n  do not run `cargo build --release -p tango --bins` first
#   -o  keep configs and logs in OUTDIR (default: a temp dir, removed at the end)
# Run from the project's root. needs: nginx, haproxy, curl, ss, python3 (the missing
# Debian packages nginx-light haproxy curl iproute2 are installed with apt).
# Ports sit below Linux's ephemeral range: backend 28501, tango 28510 (admin 28520),
# nginx 28511, haproxy 28512.
# Prints a markdown table: one row per proxy and scenario, "closed early" counting
# connections the proxy ended before the client did (0 when the timeouts held).
set -euo pipefail

cmdline="$0${*:+ $*}"
conns=3000 targets="tango,nginx,haproxy" scenarios="keepalive,silent" build=1 out=""
while getopts "c:t:s:no:" opt; do
  case $opt in
    c) conns=$OPTARG ;; t) targets=$OPTARG ;; s) scenarios=$OPTARG ;;
    n) build=0 ;; o) out=$OPTARG ;;
    *) sed -n '2,27p' "$0"; exit 2 ;;
  esac
done
[[ -f bench/idle_conns.py ]] || { echo "idle-conns.sh: run from the project root" >&2; exit 2; }

# shellcheck source=scripts/need.sh
. scripts/need.sh
need nginx nginx-light
need haproxy haproxy
need curl curl
need ss iproute2
command -v python3 >/dev/null || { echo "idle-conns.sh: python3 not found" >&2; exit 2; }

tango=target/release/tango tango_v=""
if [[ ,$targets, == *,tango,* ]]; then
  (( build )) && cargo build --release -p tango --bins
  [[ -x $tango ]] || { echo "idle-conns.sh: $tango missing; run: cargo build --release -p tango --bins" >&2; exit 2; }
  tango_v="tango $("$tango" --version | awk '{ print $2 }') ($(git rev-parse --short HEAD 2>/dev/null || echo unknown)), "
fi

# Each connection is a descriptor in the client and one or two in the proxy.
want_fds=$(( conns * 2 + 1024 ))
if (( $(ulimit -n) < want_fds )); then
  ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
(( $(ulimit -n) >= want_fds )) || { echo "idle-conns.sh: open-file limit $(ulimit -n) is below $want_fds; lower -c" >&2; exit 2; }

backend_port=28501 admin_port=28520
declare -A port=([tango]=28510 [nginx]=28511 [haproxy]=28512)
for p in "$backend_port" "$admin_port" "${port[@]}"; do
  if [[ -n $(ss -Htln "( sport = :$p )") ]]; then
    echo "idle-conns.sh: port $p is already in use" >&2; exit 2
  fi
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_dirs idle-conns

cat >"$out/backend.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/backend.pid;
error_log $out/backend.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server { listen 127.0.0.1:$backend_port; location / { return 200 "backend\n"; } }
}
EOF
cat >"$out/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $want_fds;
daemon off;
pid $dir/nginx.pid;
error_log $out/nginx.err warn;
events { worker_connections $(( conns * 2 + 100 )); }
http {
  access_log off;
  keepalive_requests 10000000;
  client_header_timeout 300s;
  keepalive_timeout 300s;
  upstream pool { server 127.0.0.1:$backend_port; keepalive 64; }
  server {
    listen 127.0.0.1:${port[nginx]};
    location / { proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
haproxy_defaults="  maxconn $(( conns + 100 ))
  timeout client 300s
  timeout http-request 300s
  timeout http-keep-alive 300s" \
  haproxy_config "${port[haproxy]}" roundrobin 1 $(( conns + 100 )) "$backend_port" >"$out/haproxy.cfg"
cat >"$out/tango.toml" <<EOF
[admin]
listen = "127.0.0.1:$admin_port"

[[listener]]
name = "bench"
listen = "127.0.0.1:${port[tango]}"
header_timeout = "300s"
first_byte_timeout = "300s"
idle_timeout = "300s"
max_connections = $(( conns * 2 ))

[[pool]]
name = "bench"

[[pool.backend]]
name = "b1"
address = "127.0.0.1:$backend_port"
EOF

# Wait until CONDITION (a command) holds, checking every 0.1 s, for at most SECONDS.
wait_for() { # seconds, what, condition...
  local secs=$1 what=$2 i; shift 2
  for (( i = 0; i < secs * 10; i++ )); do
    "$@" && return 0
    sleep 0.1
  done
  echo "idle-conns.sh: timed out waiting for $what; logs: $out" >&2
  tail -n 5 "$out"/*.log >&2 || true
  exit 1
}
answers() { curl -fsS -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null; }
established() { ss -Htn state established "( sport = :$1 )" | wc -l; }
accept_queue() { ss -Htln "( sport = :$1 )" | awk '{ q += $2 } END { print q + 0 }'; }
# All N connections accepted by the proxy: established on its port, none left queued.
all_accepted() { # port, count
  (( $(established "$1") == $2 && $(accept_queue "$1") == 0 ))
}
# The PIDs of a process and all its descendants.
proc_tree() {
  local p
  for p in "$@"; do
    echo "$p"
    # shellcheck disable=SC2046
    proc_tree $(pgrep -P "$p" || true)
  done
}
# "RSS_KB PSS_KB" summed over a process tree.
mem() { # pid
  local rss=0 pss=0 p
  for p in $(proc_tree "$1"); do
    rss=$(( rss + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status") ))
    pss=$(( pss + $(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup") ))
  done
  echo "$rss $pss"
}

start_proxy() { # target (sets $started)
  case $1 in
    tango) start tango "$tango" run --config "$out/tango.toml" --workers 1 ;;
    nginx) start nginx nginx -c "$out/nginx.conf" -p "$dir" ;;
    haproxy) start haproxy haproxy -db -f "$out/haproxy.cfg" ;;
  esac
}

# One proxy, one scenario: prints a table row.
measure() { # target, scenario
  local t=$1 mode=$2 p=${port[$1]} proxy line closed before after
  start_proxy "$t"; proxy=$started
  wait_for 10 "$t to answer on $p" answers "$p"
  # The warm-up request's connection is gone on the proxy's side too.
  wait_for 10 "$t to close the warm-up connection" all_accepted "$p" 0
  sleep 1
  read -r -a before < <(mem "$proxy")

  coproc CLIENT { exec python3 bench/idle_conns.py --port "$p" -n "$conns" --mode "$mode"; }
  local client=$CLIENT_PID in=${CLIENT[0]} hold=${CLIENT[1]}
  read -r -t 300 line <&"$in" || true
  [[ $line == "ready $conns" ]] || { echo "idle-conns.sh: $t $mode: client said '$line'" >&2; exit 1; }
  wait_for 60 "$t to accept $conns connections" all_accepted "$p" "$conns"
  sleep 1
  read -r -a after < <(mem "$proxy")
  local still; still=$(established "$p")
  (( ${#before[@]} == 2 && ${#after[@]} == 2 )) || { echo "idle-conns.sh: $t $mode: no memory reading; logs: $out" >&2; exit 1; }

  exec {hold}>&-
  read -r -t 60 line <&"$in" || true
  closed=${line#closed }
  wait "$client" || true
  stop "$proxy"
  (( still == conns )) || closed="$closed (established at the end: $still)"
  awk -v t="$t" -v m="$mode" -v n="$conns" -v c="$closed" \
    -v rb="${before[0]}" -v ra="${after[0]}" -v pb="${before[1]}" -v pa="${after[1]}" 'BEGIN {
      printf "| %s | %s | %d | %d | %d | %.2f | %d | %d | %.2f | %s |\n",
        t, m, n, rb, ra, (ra - rb) / n, pb, pa, (pa - pb) / n, c }'
}

start backend nginx -c "$out/backend.conf" -p "$dir"
wait_for 10 "the backend on $backend_port" answers "$backend_port"

nginx_v=$(nginx -v 2>&1 | sed 's/.*nginx\///')
haproxy_v=$(haproxy -v | awk 'NR == 1 { print $3 }')
echo "command: $cmdline"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); ${tango_v}nginx $nginx_v, haproxy $haproxy_v; $(nproc) CPUs"
echo
echo "| proxy | scenario | connections | RSS before KB | RSS after KB | RSS KB/conn | Pss before KB | Pss after KB | Pss KB/conn | closed early |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
IFS=, read -r -a todo_t <<<"$targets"
IFS=, read -r -a todo_s <<<"$scenarios"
for t in "${todo_t[@]}"; do
  [[ -n ${port[$t]:-} ]] || { echo "idle-conns.sh: unknown proxy $t" >&2; exit 2; }
  for s in "${todo_s[@]}"; do
    [[ $s == silent || $s == keepalive ]] || { echo "idle-conns.sh: unknown scenario $s" >&2; exit 2; }
    measure "$t" "$s"
  done
done
[[ $out == "$dir" ]] || echo "configs and logs: $out" >&2
