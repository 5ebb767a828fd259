#!/usr/bin/env bash
# Where a proxied request's CPU goes: user space against the kernel, and the TCP
# segments and bytes on loopback, for tango, nginx and haproxy under the same load as
# ../shared/bench/peers.sh (four nginx backends answering a fixed 200; wrk -c64 and the
# backends on CPU 0, the proxy alone on CPU 1).
#
# For each round and proxy: the proxy's user and system CPU time (utime and stime of
# every thread of its processes, from /proc) around one wrk run, and the host's TCP
# counters (nstat: segments out, octets out) over the same run, each divided by the
# requests wrk counted. The counters are host-wide: they hold the load side's segments
# too, which are the same for every proxy, so the proxies compare; tango's requests to
# its backends are longer by the X-Forwarded-For, -Proto, -Host and X-Request-Id fields
# it adds, which the peers' configurations here do not.
# utime and stime are sampled by the kernel at each clock tick, so a round of a few
# seconds holds a few hundred samples a proxy: take the mean of several rounds.
#
# usage: bench/cpu-split.sh [-r ROUNDS] [-d SECONDS] [-q RATE] [-n]
#   -r  rounds (3), each running every proxy once, in turn
#   -d  seconds of load per run (4)
#   -q  offer RATE requests a second in all (h2load --h1 --rps, 64 connections) instead
#       of wrk's closed loop: every proxy then serves the same load and none is driven
#       to its limit, so none gets the larger batches of ready connections a saturated
#       proxy finds at each wait (the closed loop gives them only to the slower ones)
#   -n  do not run `cargo build --release -p tango --bins` first
# Run from the project's root. needs: nginx, haproxy, wrk, nstat, taskset, curl (the
# missing Debian packages nginx-light haproxy wrk iproute2 util-linux curl are installed).
# Ports sit below Linux's ephemeral range: backends 28601-28604, tango 28610 (admin
# 28620), nginx 28611, haproxy 28612.
# Prints a markdown table: per proxy, the mean over the rounds of requests served a
# second, user us/request, system us/request, their sum, TCP segments out per request,
# octets out per request, and how busy the proxy kept its core (its CPU time over the
# run's wall time). A proxy that is not the bottleneck waits between batches of ready
# connections, and every wait costs it an epoll_wait that a saturated one shares among
# more requests.
# Then the proxy's blocking waits per request (voluntary context switches of all its
# threads) and the wake-up interrupts its core received per request (function-call
# and reschedule IPIs on CPU 1, from /proc/interrupts: host-wide, so the load side's
# own wake-ups of CPU 1 count too). A wait with nothing ready lets the idle core halt;
# the footer says whether the idle driver polls before halting (guest_halt_poll_ns).
set -euo pipefail

rounds=3 secs=4 build=1 rate=""
while getopts "r:d:q:n" opt; do
  case $opt in
    r) rounds=$OPTARG ;; d) secs=$OPTARG ;; q) rate=$OPTARG ;; n) build=0 ;;
    *) sed -n '2,31p' "$0"; exit 2 ;;
  esac
done
[[ -f bench/peers.toml ]] || { echo "cpu-split.sh: run from the project root" >&2; exit 2; }
(( $(nproc) >= 2 )) || { echo "cpu-split.sh: needs 2 CPUs (the proxy alone on one)" >&2; exit 2; }

# shellcheck source=scripts/need.sh
. scripts/need.sh
need nginx nginx-light
need haproxy haproxy
need wrk wrk
need nstat iproute2
need taskset util-linux
need curl curl
[[ -n $rate ]] && need h2load nghttp2-client

tango=target/release/tango
(( build )) && cargo build --release -p tango --bins
[[ -x $tango ]] || { echo "cpu-split.sh: $tango missing; run: cargo build --release -p tango --bins" >&2; exit 2; }

declare -A port=([tango]=28610 [nginx]=28611 [haproxy]=28612)
for p in 28601 28602 28603 28604 28620 "${port[@]}"; do
  if [[ -n $(ss -Htln "( sport = :$p )") ]]; then
    echo "cpu-split.sh: port $p is already in use" >&2; exit 2
  fi
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_dirs cpu-split
# nstat keeps the counters it last saw in a history file: a private one, so that
# nobody else's nstat deltas are disturbed.
export NSTAT_HISTORY=$dir/nstat.history

pool="server 127.0.0.1:28601; server 127.0.0.1:28602; server 127.0.0.1:28603; server 127.0.0.1:28604;"
cat >"$dir/backends.conf" <<EOF
worker_processes 1; daemon off; pid $dir/backends.pid; error_log $dir/backends.err warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:28601; location / { return 200 "backend-1\n"; } }
  server { listen 127.0.0.1:28602; location / { return 200 "backend-2\n"; } }
  server { listen 127.0.0.1:28603; location / { return 200 "backend-3\n"; } }
  server { listen 127.0.0.1:28604; location / { return 200 "backend-4\n"; } } }
EOF
cat >"$dir/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $dir/nginx.pid; error_log $dir/nginx.err warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 10000000;
  upstream pool { $pool keepalive 256; }
  server { listen 127.0.0.1:${port[nginx]};
    location / { proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF
haproxy_config "${port[haproxy]}" roundrobin 1 8000 28601 28602 28603 28604 >"$dir/haproxy.cfg"
sed -e "s/28083/${port[tango]}/; s/28090/28620/" -e 's/2810\([1-4]\)/2860\1/' bench/peers.toml >"$dir/tango.toml"

declare -A pid_of
start backends taskset -c 0 nginx -c "$dir/backends.conf" -p "$dir"
start nginx taskset -c 1 nginx -c "$dir/nginx.conf" -p "$dir"
pid_of[nginx]=$started
start haproxy taskset -c 1 haproxy -f "$dir/haproxy.cfg"
pid_of[haproxy]=$started
start tango taskset -c 1 "$tango" run --config "$dir/tango.toml" --workers 1
pid_of[tango]=$started
for p in 28601 "${port[@]}"; do wait_port "$p"; done

# utime and stime (ticks) of every thread of a process and of its children
ticks() {
  local u=0 s=0 p t a b
  for p in "$1" $(pgrep -P "$1" || true); do
    for t in /proc/"$p"/task/*/stat; do
      read -r a b < <(awk '{ print $14, $15 }' "$t" 2>/dev/null || echo "0 0")
      u=$((u + a)) s=$((s + b))
    done
  done
  echo "$u $s"
}
hz=$(getconf CLK_TCK)
# Blocking waits: voluntary context switches of every thread of a process and its children
waits() {
  local w=0 p t
  for p in "$1" $(pgrep -P "$1" || true); do
    for t in /proc/"$p"/task/*/status; do
      w=$((w + $(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t" 2>/dev/null || echo 0)))
    done
  done
  echo "$w"
}
# Wake-up interrupts the proxy's core (CPU 1) received: function-call and reschedule IPIs
ipis() { awk '$1 == "CAL:" || $1 == "RES:" { n += $3 } END { print n + 0 }' /proc/interrupts; }

# One run of load on CPU 0 against URL: wrk's closed loop, or h2load at the rate asked.
load() {
  if [[ -z $rate ]]; then
    taskset -c 0 wrk -t1 -c64 -d"${secs}s" "$1"
  else
    taskset -c 0 h2load --h1 -t1 -c64 --rps=$(( (rate + 63) / 64 )) -D "$secs" "$1"
  fi
}

: >"$dir/rounds.tsv"
for _ in $(seq 1 "$rounds"); do
  for t in tango nginx haproxy; do
    read -r u0 s0 < <(ticks "${pid_of[$t]}")
    w0=$(waits "${pid_of[$t]}") i0=$(ipis)
    nstat -n >/dev/null
    load "http://127.0.0.1:${port[$t]}/" >"$dir/wrk.txt" 2>&1
    read -r segs octets < <(nstat 2>/dev/null |
      awk '$1 == "TcpOutSegs" { g = $2 } $1 == "IpExtOutOctets" { o = $2 } END { print g + 0, o + 0 }')
    read -r u1 s1 < <(ticks "${pid_of[$t]}")
    w1=$(waits "${pid_of[$t]}") i1=$(ipis)
    n=$(awk '/requests in/ { print $1 } /^requests: .* succeeded/ { print $8 }' "$dir/wrk.txt")
    awk -v t="$t" -v n="${n:-0}" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" \
      -v g="${segs:-0}" -v o="${octets:-0}" -v secs="$secs" -v w=$((w1 - w0)) -v i=$((i1 - i0)) 'BEGIN { if (n > 0)
        printf "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.4f\t%.4f\t%.0f\n", t, u/hz*1e6/n, s/hz*1e6/n, g/n, o/n, (u+s)/hz/secs*100, w/n, i/n, n/secs }' >>"$dir/rounds.tsv"
  done
done

echo "| proxy | requests/s | user us/request | system us/request | CPU us/request | TCP segments out/request | IP octets out/request | core busy % | blocking waits/request | wake-up IPIs/request |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{ n[$1]++; u[$1] += $2; s[$1] += $3; g[$1] += $4; o[$1] += $5; b[$1] += $6; wt[$1] += $7; ip[$1] += $8; q[$1] += $9 }
  END { split("tango nginx haproxy", order, " ")
    for (i = 1; i <= 3; i++) { t = order[i]; if (!n[t]) continue
      printf "| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.0f | %.1f | %.4f | %.4f |\n", t, q[t]/n[t], u[t]/n[t], s[t]/n[t], (u[t]+s[t])/n[t], g[t]/n[t], o[t]/n[t], b[t]/n[t], wt[t]/n[t], ip[t]/n[t] } }' "$dir/rounds.tsv"
echo
poll=$(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns 2>/dev/null || echo "n/a")
echo "idle driver $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo n/a), guest_halt_poll_ns=$poll"
how="wrk -c64, closed loop"
[[ -n $rate ]] && how="h2load --h1 -c64 at $rate requests/s"
echo "rounds=$rounds seconds=$secs load=$how; tango $("$tango" --version | awk '{ print $2 }') ($(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
