#!/usr/bin/env bash
# Measures req/s, p99 latency and the proxy's CPU time per request with wrk, for NetBench's proxy
# mode (`ours`), NetBench's auth mode (`auth`: the proxy service, every request carrying a valid
# session cookie) or nginx, in front of the same upstream (`NetBench hello`).
#
#   wallclock.sh ours|auth|nginx NETBENCH_BINARY [SECONDS] [CONNECTIONS]
#
# NETBENCH_OPTIONS adds options to `NetBench proxy`, for example
# NETBENCH_OPTIONS="--output-delay-limit 0" to send output after each event.
#
# The proxy and the upstream run on CPU 0 and wrk (one thread) on CPU 1. CPU time comes from
# /proc (user plus system) of the proxy process, so it also counts the kernel's TCP work. The load
# average is printed because other work on the machine moves these numbers.
set -euo pipefail
which=$1
binary=$(realpath "$2")
seconds=${3:-5}
connections=${4:-32}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run=$(mktemp -d)
upstream_port=$((20000 + RANDOM % 10000))
proxy_port=$((upstream_port + 1))

taskset -c 0 "$binary" hello --listen "127.0.0.1:$upstream_port" --loops 1 >/dev/null &
upstream=$!
wrk_headers=()
if [ "$which" = ours ]; then
  taskset -c 0 "$binary" proxy --listen "127.0.0.1:$proxy_port" ${NETBENCH_OPTIONS:-} \
    --upstream "http://127.0.0.1:$upstream_port" --loops 1 >"$run/proxy.log" 2>&1 &
elif [ "$which" = auth ]; then
  taskset -c 0 "$binary" auth --listen "127.0.0.1:$proxy_port" \
    --upstream "http://127.0.0.1:$upstream_port" --loops 1 --cookie-file "$run/cookie" >"$run/proxy.log" 2>&1 &
else
  sed -e "s|@RUN@|$run|g; s|@UP_PORT@|$upstream_port|; s|@PROXY_PORT@|$proxy_port|" \
    "$here/nginx-proxy.conf.in" >"$run/nginx.conf"
  taskset -c 0 nginx -c "$run/nginx.conf" -g 'daemon off; master_process off;' >"$run/proxy.log" 2>&1 &
fi
proxy=$!
for _ in $(seq 1 50); do
  curl -s -o /dev/null "http://127.0.0.1:$proxy_port/" && break
  sleep 0.2
done
if [ "$which" = auth ]; then
  wrk_headers=(-H "Host: app.example.test" -H "Cookie: $(cat "$run/cookie")")
fi
taskset -c 1 wrk -t1 -c"$connections" -d1s "${wrk_headers[@]}" "http://127.0.0.1:$proxy_port/" >/dev/null
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
before=$(cpu_ticks "$proxy")
taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" --latency "${wrk_headers[@]}" \
  "http://127.0.0.1:$proxy_port/" >"$run/wrk.txt"
after=$(cpu_ticks "$proxy")
kill -TERM "$proxy" "$upstream"
wait "$proxy" "$upstream" || true
requests=$(awk '/requests in/ {print $1}' "$run/wrk.txt")
rate=$(awk '/Requests\/sec/ {print $2}' "$run/wrk.txt")
p99=$(awk '$1 == "99%" {print $2}' "$run/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$run/wrk.txt")
if [ -n "$non2xx" ]; then echo "$which: $non2xx responses were not 2xx" >&2; fi
cpu=$(python3 -c "print(round(($after - $before) / $(getconf CLK_TCK) * 1e6 / $requests, 1))")
echo "$which: $rate req/s, p99 $p99, proxy CPU $cpu us/request, load average $(cut -d' ' -f1 /proc/loadavg)"
