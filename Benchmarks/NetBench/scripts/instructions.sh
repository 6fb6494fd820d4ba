#!/usr/bin/env bash
# Counts the user-space instructions of one reverse-proxy hop with callgrind. The proxy is
# NetBench's proxy mode (`ours`), NetBench's auth mode (`auth`: the proxy service with a session
# cookie, a route and a cached assertion) or nginx, in front of the same upstream (`NetBench hello`).
#
#   instructions.sh ours|auth|nginx NETBENCH_BINARY [REQUESTS]
#
# The proxy runs under callgrind with one loop. After 1,000 warm-up requests the counters are
# zeroed, REQUESTS (default 5,000) keep-alive requests go over 8 connections, and the counters are
# dumped. Unlike wall-clock numbers, instruction counts do not depend on other load on the
# machine. Kernel time (system calls, TCP) is not counted.
set -euo pipefail
which=$1
binary=$(realpath "$2")
total=${3:-5000}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run=$(mktemp -d)
upstream_port=$((20000 + RANDOM % 10000))
proxy_port=$((upstream_port + 1))

"$binary" hello --listen "127.0.0.1:$upstream_port" --loops 1 >/dev/null &
upstream=$!
client_args=()
if [ "$which" = ours ]; then
  valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$run/callgrind.%p" "$binary" proxy \
    --listen "127.0.0.1:$proxy_port" --upstream "http://127.0.0.1:$upstream_port" --loops 1 \
    >"$run/proxy.log" 2>&1 &
elif [ "$which" = auth ]; then
  valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$run/callgrind.%p" "$binary" auth \
    --listen "127.0.0.1:$proxy_port" --upstream "http://127.0.0.1:$upstream_port" --loops 1 \
    --cookie-file "$run/cookie" >"$run/proxy.log" 2>&1 &
  client_args=(app.example.test "$run/cookie")
else
  sed -e "s|@RUN@|$run|g; s|@UP_PORT@|$upstream_port|; s|@PROXY_PORT@|$proxy_port|" \
    "$here/nginx-proxy.conf.in" >"$run/nginx.conf"
  valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$run/callgrind.%p" \
    nginx -c "$run/nginx.conf" -g 'daemon off; master_process off;' >"$run/proxy.log" 2>&1 &
fi
proxy=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$proxy_port/" && break
  sleep 0.3
done
python3 "$here/count_requests.py" "$proxy_port" 1000 8 300 "${client_args[@]}" >/dev/null
callgrind_control -z "$proxy" >/dev/null 2>&1
python3 "$here/count_requests.py" "$proxy_port" "$total" 8 600 "${client_args[@]}" >/dev/null
callgrind_control -d "$proxy" >/dev/null 2>&1
sleep 1
kill -TERM "$proxy" "$upstream"
wait "$proxy" "$upstream" || true
dump=$(ls "$run"/callgrind.*.1)
instructions=$(grep -E '^(summary|totals):' "$dump" | head -1 | awk '{print $2}')
echo "$which: $((instructions / total)) instructions per request ($instructions for $total requests)"
echo "profile: $dump (callgrind_annotate --threshold=100 $dump)"
