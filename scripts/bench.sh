#!/usr/bin/env bash
# Benchmarks, each measured in one run on this machine against the peers of ../shared/bench, with
# the results appended to a fresh report in .build/bench/report.md (copy the tables you keep into
# docs/benchmarks.md together with the machine line and this command).
#
#   scripts/bench.sh [netcore] [stores] [sessions]     (default: all three)
#
# netcore: the reverse-proxy hop of the network core (NetBench proxy, plain and TLS) against nginx
#          proxy_pass with upstream keep-alive, both in front of the same upstream nginx; wrk
#          through ../shared/bench/measure.py, servers pinned to CPU 0 and wrk to the rest.
# stores:  get/set throughput of each session store (StoreBench).
# sessions: the per-request cost of opening a session cookie and attaching a cached assertion.
#
# Knobs: DURATION (10s), CONNS (32), WARMUP (2s), BASE_PORT (18300). Everything listens on
# 127.0.0.1; every process started here is stopped on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
[ -d "$SHARED" ] || { echo "bench: $SHARED not found; set SHARED_BENCH to the peer harness folder" >&2; exit 1; }
source "$SHARED/lib.sh"

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(netcore stores sessions)

"$SHARED/setup.sh" >/dev/null
swift build -c release --product NetBench >/dev/null
OUT="$ROOT/.build/bench"
mkdir -p "$OUT"
REPORT="$OUT/report.md"
{
  echo "# Benchmark run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/ {print $2}') GiB,"
  echo "$(uname -sr); $(nginx -v 2>&1 | cut -d' ' -f3); $(swift --version 2>&1 | head -1)."
  echo "Command: scripts/bench.sh ${parts[*]}"
} >"$REPORT"

BASE_PORT="${BASE_PORT:-18300}"
export RUN="$(mktemp -d -t pomerium-bench.XXXXXX)"
chmod 755 "$RUN"
declare -a STARTED=()
cleanup() {
  [ ${#STARTED[@]} -gt 0 ] || return 0
  local all
  all="$(tree_pids "${STARTED[@]}")"
  kill $all 2>/dev/null || true
  sleep 0.5
  kill -KILL $all 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# start NAME PORT CMD...: run CMD pinned to CPU 0 in the background and wait for PORT.
start() {
  local name=$1 port=$2; shift 2
  taskset -c 0 "$@" >"$RUN/$name.log" 2>&1 &
  STARTED+=($!)
  eval "PID_${name//-/_}=$!"
  wait_port "$port" 30 || { tail -20 "$RUN/$name.log" >&2; exit 1; }
}

bench_netcore() {
  export WORKERS=1 UP_PORT=$((BASE_PORT + 1)) ECHO_PORT=$((BASE_PORT + 2)) WS_PORT=$((BASE_PORT + 3))
  export PLAIN_PORT=$((BASE_PORT + 10)) PLAIN_TLS_PORT=$((BASE_PORT + 11))
  local proxy_port=$((BASE_PORT + 40)) proxy_tls_port=$((BASE_PORT + 41))
  mkdir -p "$RUN/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" 2>/dev/null
  start upstream "$UP_PORT" "$SHARED/upstream/start.sh"
  start nginx-plain "$PLAIN_PORT" "$SHARED/peers/nginx-plain/start.sh"
  start proxy "$proxy_port" "$ROOT/.build/release/NetBench" proxy --loops 1 \
    --listen "127.0.0.1:$proxy_port" --upstream "http://127.0.0.1:$UP_PORT"
  start proxy-tls "$proxy_tls_port" "$ROOT/.build/release/NetBench" proxy --loops 1 \
    --listen "127.0.0.1:$proxy_tls_port" --upstream "http://127.0.0.1:$UP_PORT" \
    --tls-cert "$RUN/tls/cert.pem" --tls-key "$RUN/tls/key.pem"
  local targets="$RUN/netcore.tsv"
  printf '%s\t%s\t-\t200\t%s\n' \
    "direct upstream" "http://127.0.0.1:$UP_PORT/" "$PID_upstream" \
    "nginx proxy_pass" "http://127.0.0.1:$PLAIN_PORT/" "$PID_nginx_plain" \
    "pomerium-swift proxy hop" "http://127.0.0.1:$proxy_port/" "$PID_proxy" \
    "TLS nginx proxy_pass" "https://127.0.0.1:$PLAIN_TLS_PORT/" "$PID_nginx_plain" \
    "TLS pomerium-swift proxy hop" "https://127.0.0.1:$proxy_tls_port/" "$PID_proxy_tls" >"$targets"
  local load_cpus="1-$(($(nproc) - 1))"
  taskset -c "$load_cpus" "$PY" "$SHARED/measure.py" "$targets" --duration "${DURATION:-10s}" \
    --warmup "${WARMUP:-2s}" --threads 1 --conns "${CONNS:-32}" --quiet-wait 60 --retries 2 \
    --load-cpus "$load_cpus" --up-status "http://127.0.0.1:$UP_PORT/_up_status" --own-root $$ \
    --out "$RUN/netcore-table.txt" --raw "$RUN/netcore-wrk.txt"
  {
    echo
    echo "## Network core: proxy hop"
    echo
    echo '```'
    cat "$RUN/netcore-table.txt"
    echo '```'
  } >>"$REPORT"
}

bench_stores() {
  swift build -c release --product StoreBench >/dev/null
  {
    echo
    echo "## Session stores"
    echo
    echo '```'
    "$ROOT/.build/release/StoreBench"
    echo '```'
  } >>"$REPORT"
}

bench_sessions() {
  {
    echo
    echo "## Session cookie and cached assertion, per request"
    echo
    echo '```'
    swift build -c release --build-tests -Xswiftc -enable-testing >/dev/null
    POMERIUM_BENCH=1 swift test -c release --skip-build -Xswiftc -enable-testing \
      --filter 'SessionBenchmarkTests|ProxyBenchmarkTests' 2>&1 | grep -E 'µs|✘' || true
    echo '```'
  } >>"$REPORT"
}

for part in "${parts[@]}"; do
  case "$part" in
    netcore) bench_netcore ;;
    stores) bench_stores ;;
    sessions) bench_sessions ;;
    *) echo "bench: unknown part \"$part\"; use netcore, stores or sessions" >&2; exit 2 ;;
  esac
done
cat "$REPORT"
echo "bench: report in $REPORT; run folder $RUN"
