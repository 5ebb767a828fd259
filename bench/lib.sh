# shellcheck shell=bash
# What the bench scripts share: sourced by them, from the project's root.
#
#   bench_dirs NAME [keep]
#                        a temporary directory ($dir) and the directory the configs and
#                        logs go to ($out: -o's, or $dir), and an EXIT trap that stops
#                        every process started with `start` (by PID, never by name),
#                        runs `on_exit` when the script defines it, and removes $dir;
#                        with `keep`, $dir stays when the logs are in it
#   start NAME CMD...    CMD in the background, its output appended to $out/NAME.log;
#                        its PID in $started
#   stop PID             stop one process `start` started, and wait for it
#   wait_port PORT       until something answers HTTP on 127.0.0.1:PORT (10 s); else the
#                        logs' last lines and exit 1
#   haproxy_config PORT BALANCE THREADS MAXCONN SERVER_PORT...
#                        an haproxy configuration on stdout: one frontend on PORT, one
#                        backend pool of the servers on 127.0.0.1, HTTP reuse always;
#                        extra `defaults` lines from $haproxy_defaults
# Each function names the calling script ($bench) in its messages.

bench=$(basename "$0")
pids=()

bench_dirs() { # name, [keep]
  dir=$(mktemp -d -t "$1.XXXXXX")
  out=${out:-$dir}
  keep_logs=${2:-}
  mkdir -p "$out"
  trap bench_cleanup EXIT
}

bench_cleanup() {
  if declare -F on_exit >/dev/null; then on_exit; fi
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $keep_logs != keep || $out != "$dir" ]]; then rm -rf "$dir"; fi
}

start() { # name, command...
  local name=$1; shift
  "$@" >>"$out/$name.log" 2>&1 &
  started=$!
  pids+=("$started")
}

stop() { # pid
  local p=$1 kept=() q
  kill "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  for q in "${pids[@]}"; do [[ $q == "$p" ]] || kept+=("$q"); done
  pids=("${kept[@]}")
}

wait_port() { # port
  local _
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$bench: nothing answers on port $1; logs: $out" >&2
  tail -n 20 "$out"/*.log >&2 || true
  exit 1
}

haproxy_config() { # port, balance, threads, maxconn, server ports...
  local port=$1 balance=$2 threads=$3 maxconn=$4 n=0 p
  shift 4
  printf 'global\n  nbthread %s\n  maxconn %s\n' "$threads" "$maxconn"
  printf 'defaults\n  mode http\n  timeout connect 5s\n  timeout server 30s\n'
  printf '%s\n' "${haproxy_defaults:-  timeout client 30s}"
  printf '  http-reuse always\n'
  printf 'frontend fe\n  bind 127.0.0.1:%s\n  default_backend pool\n' "$port"
  printf 'backend pool\n  balance %s\n' "$balance"
  for p in "$@"; do
    n=$((n + 1))
    printf '  server s%s 127.0.0.1:%s\n' "$n" "$p"
  done
}
