#!/usr/bin/env bash
# Benchmarks, each measured in one run on this machine against the peers of ../shared/bench. Every
# part writes its generated section of docs/benchmarks.md (between <!-- bench:PART:begin --> and
# <!-- bench:PART:end -->; the hand-written text around them stays) and appends it to a fresh
# report in .build/bench/report.md.
#
#   scripts/bench.sh [peers] [variants] [netcore] [stores] [sessions]     (default: all five)
#
# peers:    the peer harness ../shared/bench/run.sh with this project's pomerium as the product.
#           It runs its conformance checks first. Its table then lists the direct upstream, nginx
#           proxy_pass, Apache mod_auth_openidc, nginx auth_request in front of Apache, and
#           pomerium with a session cookie and without one (the sign-in redirect).
# variants: pomerium alone against nginx in one run: 10 routes against 10,000 routes on the
#           authenticated path, TLS, the Redis session store, and Redis commands per request.
# netcore:  the reverse-proxy hop of the network core (NetBench proxy, plain and TLS) against
#           nginx proxy_pass with upstream keep-alive, both in front of the same upstream nginx.
# stores:   get/set throughput of each session store (StoreBench).
# sessions: the per-request cost of opening a session cookie and attaching a cached assertion.
#
# Knobs: DURATION (10s), WARMUP (2s), CONNS (32), QUIET_WAIT (90 s of waiting for other load to
# stop before each row), RETRIES (2), ROUNDS (3: the peers part runs the harness that many times,
# and the variants and netcore parts measure their rows that many times; all three report
# medians), PEERS_BASE_PORT (18100), BASE_PORT (18200 for variants,
# +100 for netcore), DOC (docs/benchmarks.md, or DOC= for none), FWD_AUTH (1: also measure nginx
# auth_request in front of pomerium's forward-auth endpoint; 0: leave that row out),
# NETBENCH_OPTIONS (more options for the netcore part's `NetBench proxy`, such as
# "--output-delay-limit 0"). Servers run
# on CPU 0 and wrk on the other CPUs. Everything listens on 127.0.0.1; every process started here
# is stopped on exit. Exit status 1 when a conformance check failed or a row is marked BAD.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
# A git worktree under <checkout>/../wt/NAME finds the harness one level further up.
[ -d "$SHARED" ] || [ -n "${SHARED_BENCH:-}" ] || SHARED="$ROOT/../../shared/bench"
[ -d "$SHARED" ] || { echo "bench: the peer harness was not found; set SHARED_BENCH to its folder" >&2; exit 1; }
SHARED="$(cd "$SHARED" && pwd)"
source "$SHARED/lib.sh"

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(peers variants netcore stores sessions)
for part in "${parts[@]}"; do
  case "$part" in
    peers | variants | netcore | stores | sessions) ;;
    *) echo "bench: unknown part \"$part\"; use peers, variants, netcore, stores or sessions" >&2; exit 2 ;;
  esac
done

export DURATION="${DURATION:-10s}" WARMUP="${WARMUP:-2s}" CONNS="${CONNS:-32}"
export QUIET_WAIT="${QUIET_WAIT:-90}" RETRIES="${RETRIES:-2}" ROUNDS="${ROUNDS:-3}"
FWD_AUTH="${FWD_AUTH:-1}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: ROUNDS=$ROUNDS: use a whole number of rounds, at least 1" >&2; exit 2; }
DOC="${DOC-$ROOT/docs/benchmarks.md}"
[ -z "$DOC" ] || [ -f "$DOC" ] || { echo "bench: $DOC not found; set DOC to the benchmarks page or DOC= for none" >&2; exit 1; }

"$SHARED/setup.sh" >/dev/null
swift build -c release --product pomerium >/dev/null
OUT="$ROOT/.build/bench"
mkdir -p "$OUT"
REPORT="$OUT/report.md"
STARTED_AT=$(date +%s)
RUN_DATE="$(date -u +%Y-%m-%d\ %H:%M\ UTC)"
CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
MACHINE="$(nproc) CPUs ($CPU_MODEL), $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr),"
MACHINE="$MACHINE $(nginx -v 2>&1 | cut -d' ' -f3), $(swift --version 2>&1 | head -1 | sed 's/ (.*//')"
LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"
{
  echo "# Benchmark run $RUN_DATE"
  echo
  echo "Machine: $MACHINE; load average at start $LOAD_AT_START."
  echo "Command: scripts/bench.sh ${parts[*]}"
} >"$REPORT"

export RUN="$(mktemp -d -t pomerium-bench.XXXXXX)"
chmod 755 "$RUN"
LOAD_CPUS="1-$(($(nproc) - 1))"
[ "$(nproc)" -ge 2 ] || LOAD_CPUS=0
STATUS=0
declare -a STARTED=()
cleanup() {
  [ ${#STARTED[@]} -gt 0 ] || return 0
  local all
  all="$(tree_pids "${STARTED[@]}")"
  kill $all 2>/dev/null || true
  for _ in $(seq 50); do alive $all || break; sleep 0.1; done
  kill -KILL $all 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# start NAME PORT CMD...: run CMD pinned to CPU 0 in the background and wait for PORT; sets
# PID_NAME and STARTUP_NAME (seconds until the port accepted connections).
start() {
  local name=$1 port=$2 began
  shift 2
  if port_open "$port"; then
    echo "bench: port $port is in use; set BASE_PORT (or PEERS_BASE_PORT) to free ports" >&2
    exit 1
  fi
  began=$(date +%s.%N)
  taskset -c 0 "$@" >"$RUN/$name.log" 2>&1 &
  STARTED+=($!)
  eval "PID_${name//-/_}=$!"
  wait_port "$port" 120 || { tail -20 "$RUN/$name.log" >&2; exit 1; }
  eval "STARTUP_${name//-/_}=$(echo "$(date +%s.%N) - $began" | bc)"
}

# measure NAME TARGETS UP_PORT: wrk over every row of TARGETS (see measure.py), ROUNDS times in a
# row, so a drift of the machine spreads over every target. Each round's table is
# $RUN/NAME-table-N.txt, and $RUN/NAME-table.txt contains the medians of the rounds.
measure() {
  local name=$1 targets=$2 up_port=$3 round tables=()
  for round in $(seq "$ROUNDS"); do
    echo "== $name: round $round of $ROUNDS"
    taskset -c "$LOAD_CPUS" "$PY" "$SHARED/measure.py" "$targets" --duration "$DURATION" \
      --warmup "$WARMUP" --threads "$(($(nproc) > 1 ? $(nproc) - 1 : 1))" --conns "$CONNS" \
      --quiet-wait "$QUIET_WAIT" --retries "$RETRIES" --load-cpus "$LOAD_CPUS" \
      --up-status "http://127.0.0.1:$up_port/_up_status" --own-root $$ \
      --out "$RUN/$name-table-$round.txt" --raw "$RUN/$name-wrk.txt"
    tables+=("$RUN/$name-table-$round.txt")
  done
  "$PY" "$ROOT/scripts/bench_doc.py" median "$RUN/$name-table.txt" "${tables[@]}"
  if grep -q ' BAD$' "$RUN/$name-table.txt"; then
    echo "bench: $name: a row is marked BAD (wrong status, leaked requests or errors); see $RUN" >&2
    STATUS=1
  fi
}

# rounds_notes NAME: the per-round ratios of NAME's rows, for the doc.
rounds_notes() {
  echo "Each row is the median of $ROUNDS rounds over every target (in each round every row once,"
  echo "in the order listed); \`err\` is the sum and peak RSS and \`bg\` the largest over the rounds."
  echo "Each round's ratios to the nginx row of the same round:"
  echo
  "$PY" "$ROOT/scripts/bench_doc.py" rounds "$RUN/$1"-table-[0-9]*.txt --ref "nginx plain proxy" \
    --tls-ref "TLS nginx plain proxy"
}

# publish PART FILE: add FILE to the report and write it into the doc between PART's markers.
publish() {
  cat "$2" >>"$REPORT"
  [ -z "$DOC" ] || "$PY" "$ROOT/scripts/bench_doc.py" section "$DOC" "$1" "$2"
}

# header FILE TITLE COMMAND [wrk]: start a doc section with the date, the command and the
# machine, and with the load settings when the part runs wrk.
header() {
  {
    echo "### $2"
    echo
    echo "Generated by \`$3\` on $RUN_DATE."
    echo "Machine: $MACHINE."
    echo "Load average when this part started: $(cut -d" " -f1-3 /proc/loadavg)."
    if [ "${4:-}" = wrk ]; then
      echo "wrk \`-c$CONNS -d$DURATION\` after a $WARMUP warm-up, servers pinned to CPU 0 and wrk to"
      echo "CPU $LOAD_CPUS; every request sends \`Accept: text/html\`."
    fi
    echo
  } >"$1"
}

TABLE_NOTES='`bg` is the CPU (in cores) that processes outside the run used during the row: rows
with `bg` above 0.1 were disturbed and are not comparable. `up/req` is upstream requests per
request (1.00: every request was authenticated and proxied; 0.00: none leaked past the
redirect). RSS is the whole process tree of the target, idle and peak under load.'

# per_request COUNT REQUESTS: COUNT / REQUESTS with four decimals.
per_request() { awk -v c="$1" -v r="$2" 'BEGIN { printf "%.4f", (r > 0 ? c / r : 0) }'; }

secrets() {
  export BENCH_SHARED_SECRET="$(head -c32 /dev/urandom | base64)"
  export BENCH_COOKIE_SECRET="$(head -c32 /dev/urandom | base64)"
}

bench_peers() {
  secrets
  local base="${PEERS_BASE_PORT:-18100}" harness_run fwd=() writer_options="" round log tables=() logs=()
  if [ "$FWD_AUTH" = 1 ]; then
    # nginx auth_request on BASE+31 asks the product's /verify on the application's own Host; a
    # 401 sends the browser to the product's sign-in with the same URL.
    writer_options="--forward-auth $((base + 31))"
    fwd=(PRODUCT_FWD_AUTH_PATH="/verify?uri=\$scheme://\$http_host\$request_uri"
      PRODUCT_FWD_SIGNIN="http://127.0.0.1:$((base + 40))/?uri=\$scheme://\$http_host\$request_uri")
  fi
  # One harness run measures each row once. The nginx row alone moved by about 20% between two
  # runs on a 2-CPU virtual machine, so the harness runs ROUNDS times and the table shows medians.
  for round in $(seq "$ROUNDS"); do
    log="$RUN/peers-run-$round.log"
    echo "== peers: round $round of $ROUNDS: ../shared/bench/run.sh with pomerium as the product (log in $log)"
    env BASE_PORT="$base" PRODUCT_NAME=pomerium PRODUCT_IDENTITY=pomerium PRODUCT_CHECK_ADMIN=1 \
      PRODUCT_CMD="exec '$ROOT/scripts/bench-pomerium.sh' \"\$RUN/pomerium.yaml\" \"\$PRODUCT_PORT\" $writer_options" \
      "${fwd[@]}" "$SHARED/run.sh" 2>&1 | tee "$log"
    harness_run="$(sed -n 's/^== starting (run dir \(.*\))$/\1/p' "$log")"
    [ -f "$harness_run/table.txt" ] || { echo "bench: the harness printed no table; see $log" >&2; exit 1; }
    cp "$harness_run/table.txt" "$RUN/peers-table-$round.txt"
    tables+=("$RUN/peers-table-$round.txt")
    logs+=("$log")
  done
  "$PY" "$ROOT/scripts/bench_doc.py" median "$RUN/peers-table.txt" "${tables[@]}"
  local clean failed passed failures
  # A run is clean when the harness ends its checks with this line.
  clean="$(cat "${logs[@]}" | grep -c '^conformance: 0 target(s) with failures$' || true)"
  failed="$(grep -h '^FAIL' "${logs[@]}" || true)"
  passed="$(cat "${logs[@]}" | grep -cE '^ok ' || true)"
  failures="$(cat "${logs[@]}" | grep -c '^FAIL' || true)"
  [ "$failures" = 0 ] && [ "$clean" = "$ROUNDS" ] || STATUS=1
  grep -q ' BAD$' "$RUN/peers-table.txt" && STATUS=1

  local section="$RUN/peers.md"
  header "$section" "Pomerium against its peers" "scripts/bench.sh peers" wrk
  {
    echo "Harness: the shared peer harness \`run.sh\`, with \`scripts/bench-pomerium.sh\` as"
    echo "\`PRODUCT_CMD\`: the release binary, in-memory sessions, \`log_level: warn\` (no access log,"
    echo "like the peers). The harness ran $ROUNDS times in a row; each row shows the median of its"
    echo "$ROUNDS measurements, and ratios are to the median of the nginx plain proxy. One pomerium"
    echo "process serves one listener, so pomerium's TLS row is in the next table, as a process of its own."
    echo "Versions: $(grep -h '^versions:' "${logs[0]}" | cut -d' ' -f2-)."
    echo
    echo "Conformance: over the $ROUNDS runs, $passed checks passed and $failures failed; $clean of the"
    echo "$ROUNDS runs reported no target with failures."
    if [ -n "$failed" ]; then
      echo
      echo '```'
      echo "$failed"
      echo '```'
    fi
    echo
    "$PY" "$ROOT/scripts/bench_doc.py" table "$RUN/peers-table.txt" --ref "nginx plain proxy" \
      --tls-ref "TLS nginx plain proxy"
    echo
    echo "$TABLE_NOTES"
    echo
    echo "Each run's ratios to the nginx row of the same run:"
    echo
    "$PY" "$ROOT/scripts/bench_doc.py" rounds "${tables[@]}" --ref "nginx plain proxy" \
      --tls-ref "TLS nginx plain proxy"
    echo
    echo "Pomerium with a session against Apache mod_auth_openidc with a session, run by run:"
    echo
    "$PY" "$ROOT/scripts/bench_doc.py" multiple "pomerium, cookie" "apache oidc, cookie" "${tables[@]}"
    echo
    if [ "$FWD_AUTH" = 1 ]; then
      echo "\"nginx auth_req>pomerium\": the harness's nginx \`auth_request\` asks pomerium's"
      echo "\`/verify?uri=\$scheme://\$http_host\$request_uri\` (\`forward_auth_url: http://127.0.0.1\` and a route"
      echo "for nginx's own host) with the cookie of a login at pomerium, and sends a 401 to"
      echo "\`/?uri=...\` to sign in. The harness's nginx copies the oauth2-proxy headers"
      echo "\`X-Auth-Request-*\` to the application, which pomerium does not send (it sends"
      echo "\`X-Pomerium-Jwt-Assertion\` and \`X-Pomerium-Claim-*\`), so in this row the application"
      echo "gets no identity headers; the row measures the authorization round trip."
    else
      echo "The row \"nginx auth_req>pomerium\" is off (FWD_AUTH=0)."
    fi
    echo
    echo "The medians in the harness's own format (ratios to the direct upstream):"
    echo
    echo '```'
    cat "$RUN/peers-table.txt"
    echo '```'
  } >>"$section"
  publish peers "$section"
}

bench_variants() {
  secrets
  local base="${BASE_PORT:-18200}"
  export IDP_PORT=$base UP_PORT=$((base + 1)) ECHO_PORT=$((base + 2)) WS_PORT=$((base + 3))
  export PLAIN_PORT=$((base + 10)) PLAIN_TLS_PORT=$((base + 11)) WORKERS=1
  export IDP_URL="http://127.0.0.1:$IDP_PORT" UPSTREAM_URL="http://127.0.0.1:$UP_PORT"
  local p10=$((base + 40)) p10k=$((base + 41)) ptls=$((base + 42)) predis=$((base + 43)) redis_port=$((base + 50))
  mkdir -p "$RUN/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" 2>/dev/null
  echo "== variants: starting (run dir $RUN)"
  start idp "$IDP_PORT" "$SHARED/idp/start.sh" "$IDP_PORT"
  start echo "$ECHO_PORT" "$PY" "$SHARED/upstream/echo.py" "$ECHO_PORT"
  start ws "$WS_PORT" "$PY" "$SHARED/upstream/ws_echo.py" "$WS_PORT"
  start upstream "$UP_PORT" "$SHARED/upstream/start.sh"
  start nginx-plain "$PLAIN_PORT" "$SHARED/peers/nginx-plain/start.sh"
  start redis "$redis_port" redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no
  local writer="$ROOT/scripts/bench-pomerium.sh" pomerium="$ROOT/.build/release/pomerium"
  "$writer" "$RUN/pom10.yaml" "$p10" --write-only
  "$writer" "$RUN/pom10k.yaml" "$p10k" --routes 10000 --write-only
  "$writer" "$RUN/pomtls.yaml" "$ptls" --tls "$RUN/tls/cert.pem" "$RUN/tls/key.pem" --write-only
  "$writer" "$RUN/pomredis.yaml" "$predis" --redis "127.0.0.1:$redis_port" --write-only
  start pom10 "$p10" "$pomerium" -config "$RUN/pom10.yaml"
  start pom10k "$p10k" "$pomerium" -config "$RUN/pom10k.yaml"
  start pomtls "$ptls" "$pomerium" -config "$RUN/pomtls.yaml"
  start pomredis "$predis" "$pomerium" -config "$RUN/pomredis.yaml"

  echo "== variants: logging in and checking each pomerium"
  local rcli=(redis-cli -h 127.0.0.1 -p "$redis_port")
  "${rcli[@]}" INFO commandstats >"$RUN/redis-0.txt"
  declare -A BOB EVE
  local name port scheme fails=0 checks="$RUN/variants-checks.log"
  : >"$checks"
  for name in pom10 pom10k pomtls pomredis; do
    case $name in
      pom10) port=$p10 scheme=http ;; pom10k) port=$p10k scheme=http ;;
      pomtls) port=$ptls scheme=https ;; pomredis) port=$predis scheme=http ;;
    esac
    # login.py verifies TLS; the bench certificate covers 127.0.0.1 and localhost.
    BOB[$name]="$(REQUESTS_CA_BUNDLE="$RUN/tls/cert.pem" "$PY" "$SHARED/login.py" --sub bob \
      --email bob@example.com --groups admins,devs "$scheme://127.0.0.1:$port/")" || BOB[$name]=-
    if [ $name = pomredis ]; then "${rcli[@]}" INFO commandstats >"$RUN/redis-1.txt"; fi
    EVE[$name]="$(REQUESTS_CA_BUNDLE="$RUN/tls/cert.pem" "$PY" "$SHARED/login.py" --sub eve \
      --email eve@example.com --groups devs "$scheme://127.0.0.1:$port/")" || EVE[$name]=-
    "$PY" "$SHARED/checks.py" "$name" "$scheme://127.0.0.1:$port" --cookie "${BOB[$name]}" \
      --user bob@example.com --groups admins,devs --admin-cookie "${BOB[$name]}" \
      --other-cookie "${EVE[$name]}" --identity pomerium | tee -a "$checks" || fails=$((fails + 1))
  done
  [ $fails = 0 ] || STATUS=1

  # Redis commands per request on the authenticated path, and for the sign-in redirect: a
  # bounded wrk run each, between two INFO commandstats.
  echo "== variants: Redis commands per request"
  local wrk_cmd=(taskset -c "$LOAD_CPUS" wrk -t1 -c8 -d3s -H 'Accept: text/html')
  "${rcli[@]}" INFO commandstats >"$RUN/redis-2.txt"
  "${wrk_cmd[@]}" -H "Cookie: ${BOB[pomredis]}" "http://127.0.0.1:$predis/" >"$RUN/redis-wrk-cookie.txt"
  "${rcli[@]}" INFO commandstats >"$RUN/redis-3.txt"
  "${wrk_cmd[@]}" "http://127.0.0.1:$predis/" >"$RUN/redis-wrk-nocookie.txt"
  "${rcli[@]}" INFO commandstats >"$RUN/redis-4.txt"
  local login_cmds cookie_cmds cookie_reqs nocookie_cmds nocookie_reqs
  login_cmds=$("$PY" "$ROOT/scripts/bench_doc.py" redis "$RUN/redis-0.txt" "$RUN/redis-1.txt")
  cookie_cmds=$("$PY" "$ROOT/scripts/bench_doc.py" redis "$RUN/redis-2.txt" "$RUN/redis-3.txt")
  nocookie_cmds=$("$PY" "$ROOT/scripts/bench_doc.py" redis "$RUN/redis-3.txt" "$RUN/redis-4.txt")
  cookie_reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$RUN/redis-wrk-cookie.txt")
  nocookie_reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$RUN/redis-wrk-nocookie.txt")
  grep -q 'Non-2xx' "$RUN/redis-wrk-cookie.txt" && STATUS=1

  local targets="$RUN/variants.tsv" up=$PID_upstream
  row() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$targets"; }
  : >"$targets"
  row "direct upstream" "http://127.0.0.1:$UP_PORT/" - 200 "$up"
  row "nginx plain proxy" "http://127.0.0.1:$PLAIN_PORT/" - 200 "$PID_nginx_plain"
  # 10 and 10,000 routes in the order A B B A, so that a drift of the machine cancels out.
  row "pomerium 10 routes, cookie" "http://127.0.0.1:$p10/" "${BOB[pom10]}" 200 "$PID_pom10"
  row "pomerium 10000 routes, cookie" "http://127.0.0.1:$p10k/" "${BOB[pom10k]}" 200 "$PID_pom10k"
  row "pomerium 10000 routes, cookie (again)" "http://127.0.0.1:$p10k/" "${BOB[pom10k]}" 200 "$PID_pom10k"
  row "pomerium 10 routes, cookie (again)" "http://127.0.0.1:$p10/" "${BOB[pom10]}" 200 "$PID_pom10"
  row "pomerium redis store, cookie" "http://127.0.0.1:$predis/" "${BOB[pomredis]}" 200 "$PID_pomredis"
  row "TLS nginx plain proxy" "https://127.0.0.1:$PLAIN_TLS_PORT/" - 200 "$PID_nginx_plain"
  row "TLS pomerium, cookie" "https://127.0.0.1:$ptls/" "${BOB[pomtls]}" 200 "$PID_pomtls"
  echo "== variants: load"
  measure variants "$targets" "$UP_PORT"

  local cmp rps10 rps10k diff max_bg route_verdict redis_verdict
  cmp="$("$PY" "$ROOT/scripts/bench_doc.py" compare "pomerium 10 routes" "pomerium 10000 routes" \
    "$RUN"/variants-table-[0-9]*.txt)"
  read -r rps10 rps10k diff max_bg <<<"$cmp"
  if awk -v d="$diff" 'BEGIN { exit !(d > -5 && d < 5) }'; then route_verdict=met; else route_verdict="not met"; fi
  if awk -v b="$max_bg" 'BEGIN { exit !(b > 0.1) }'; then
    route_verdict="$route_verdict (not conclusive: other load disturbed these rows, bg up to $max_bg)"
  fi
  if [ "$cookie_cmds" = 0 ]; then redis_verdict=met; else redis_verdict="not met"; fi
  local section="$RUN/variants.md"
  header "$section" "Route count, TLS and the Redis store" "scripts/bench.sh variants" wrk
  {
    echo "One IdP, upstream and nginx as in the peer harness, and four pomerium processes with the"
    echo "config of \`scripts/bench-pomerium.sh\`: 10 routes; 10,000 routes (9,990 more first, three"
    echo "per host on 3,330 other hosts, so the measured catch-all route is the last of 10,000 and"
    echo "the last of its host's ten); TLS (one process serves one listener, so TLS is a process of"
    echo "its own and its row shows that process alone); Redis as \`cache_store\`. Ratios are to the"
    echo "nginx plain proxy of the same run (TLS rows: to TLS nginx)."
    echo
    echo "Conformance of the four processes: $(grep -c '^ok ' "$checks") checks passed," \
      "$(grep -c '^FAIL' "$checks" || true) failed."
    if grep -q '^FAIL' "$checks"; then
      echo
      echo '```'
      grep '^FAIL' "$checks"
      echo '```'
    fi
    echo
    "$PY" "$ROOT/scripts/bench_doc.py" table "$RUN/variants-table.txt" --ref "nginx plain proxy" \
      --tls-ref "TLS nginx plain proxy"
    echo
    echo "$TABLE_NOTES"
    echo
    rounds_notes variants
    echo
    echo "- 10 against 10,000 routes (target: less than 5% apart): $rps10 against $rps10k req/s,"
    echo "  ${diff}%. Each figure is the mean of $((2 * ROUNDS)) rows: two per round, in the order A B B A."
    echo "  The target is $route_verdict."
    echo "  From start until the port accepted connections:"
    echo "  $(printf %.2f "$STARTUP_pom10") s with 10 routes, $(printf %.2f "$STARTUP_pom10k") s with 10,000."
    echo "- Redis commands per request (target: 0 when the cookie suffices, at most 1 when the store"
    echo "  is consulted), counted with \`INFO commandstats\` before and after bounded"
    echo "  \`wrk -t1 -c8 -d3s\` runs: $cookie_cmds commands for $cookie_reqs authenticated requests"
    echo "  ($(per_request "$cookie_cmds" "$cookie_reqs") per request, target $redis_verdict); $nocookie_cmds for"
    echo "  $nocookie_reqs sign-in redirects without a cookie ($(per_request "$nocookie_cmds" "$nocookie_reqs") per request)."
    echo "  One complete sign-in (login.py through every redirect of the code flow) took $login_cmds"
    echo "  commands."
  } >>"$section"
  publish variants "$section"
  cleanup
  STARTED=()
}

bench_netcore() {
  swift build -c release --product NetBench >/dev/null
  local base=$((${BASE_PORT:-18200} + 100))
  export WORKERS=1 UP_PORT=$((base + 1)) ECHO_PORT=$((base + 2)) WS_PORT=$((base + 3))
  export PLAIN_PORT=$((base + 10)) PLAIN_TLS_PORT=$((base + 11))
  local proxy_port=$((base + 40)) proxy_tls_port=$((base + 41))
  mkdir -p "$RUN/tls"
  [ -f "$RUN/tls/cert.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" 2>/dev/null
  start upstream "$UP_PORT" "$SHARED/upstream/start.sh"
  start nginx-plain "$PLAIN_PORT" "$SHARED/peers/nginx-plain/start.sh"
  # shellcheck disable=SC2086 # NETBENCH_OPTIONS is a list of options.
  start proxy "$proxy_port" "$ROOT/.build/release/NetBench" proxy --loops 1 ${NETBENCH_OPTIONS:-} \
    --listen "127.0.0.1:$proxy_port" --upstream "http://127.0.0.1:$UP_PORT"
  # shellcheck disable=SC2086
  start proxy-tls "$proxy_tls_port" "$ROOT/.build/release/NetBench" proxy --loops 1 ${NETBENCH_OPTIONS:-} \
    --listen "127.0.0.1:$proxy_tls_port" --upstream "http://127.0.0.1:$UP_PORT" \
    --tls-cert "$RUN/tls/cert.pem" --tls-key "$RUN/tls/key.pem"
  local targets="$RUN/netcore.tsv"
  printf '%s\t%s\t-\t200\t%s\n' \
    "direct upstream" "http://127.0.0.1:$UP_PORT/" "$PID_upstream" \
    "nginx plain proxy" "http://127.0.0.1:$PLAIN_PORT/" "$PID_nginx_plain" \
    "pomerium-swift proxy hop" "http://127.0.0.1:$proxy_port/" "$PID_proxy" \
    "TLS nginx plain proxy" "https://127.0.0.1:$PLAIN_TLS_PORT/" "$PID_nginx_plain" \
    "TLS pomerium-swift proxy hop" "https://127.0.0.1:$proxy_tls_port/" "$PID_proxy_tls" >"$targets"
  echo "== netcore: load"
  measure netcore "$targets" "$UP_PORT"
  local section="$RUN/netcore.md"
  header "$section" "Network core: the proxy hop alone" "scripts/bench.sh netcore" wrk
  {
    echo "\`NetBench proxy\` (one event loop, no authentication) and nginx \`proxy_pass\` with upstream"
    echo "keep-alive and one worker, in front of the same upstream nginx. Ratios are to nginx."
    echo
    "$PY" "$ROOT/scripts/bench_doc.py" table "$RUN/netcore-table.txt" --ref "nginx plain proxy" \
      --tls-ref "TLS nginx plain proxy"
    echo
    echo "$TABLE_NOTES"
    echo
    rounds_notes netcore
  } >>"$section"
  publish netcore "$section"
  cleanup
  STARTED=()
}

bench_stores() {
  swift build -c release --product StoreBench >/dev/null
  local section="$RUN/stores.md"
  header "$section" "Session stores" "scripts/bench.sh stores"
  {
    echo "\`StoreBench\`: one task (Redis also 32 tasks pipelined), 1 KiB values, each phase at most"
    echo "100,000 operations or 5 s; the benchmark starts its own redis-server."
    echo
    echo '```'
    "$ROOT/.build/release/StoreBench"
    echo '```'
  } >>"$section"
  publish stores "$section"
}

bench_sessions() {
  # The tests need -enable-testing, which changes every module's flags: building them in .build
  # would make the next release build of pomerium start over, so they get a folder of their own.
  local scratch=(--scratch-path "$ROOT/.build/bench-tests")
  echo "== sessions: release test build in .build/bench-tests (the first one takes long)"
  swift build -c release "${scratch[@]}" --build-tests -Xswiftc -enable-testing >/dev/null
  local section="$RUN/sessions.md"
  header "$section" "Session cookie and cached assertion, per request" "scripts/bench.sh sessions"
  {
    echo "\`POMERIUM_BENCH=1 swift test -c release --filter 'SessionBenchmarkTests|ProxyBenchmarkTests'\`."
    echo
    echo '```'
    POMERIUM_BENCH=1 swift test -c release "${scratch[@]}" --skip-build -Xswiftc -enable-testing \
      --filter 'SessionBenchmarkTests|ProxyBenchmarkTests' 2>&1 | grep -E 'µs|✘' || true
    echo '```'
  } >>"$section"
  publish sessions "$section"
}

for part in "${parts[@]}"; do
  "bench_$part"
done
ELAPSED=$(($(date +%s) - STARTED_AT))
echo >>"$REPORT"
echo "Wall time of this run: $((ELAPSED / 60)) min $((ELAPSED % 60)) s." >>"$REPORT"
if [ -n "$DOC" ]; then
  printf 'Last generated by `scripts/bench.sh %s` on %s; that run took %d min %d s.\n' \
    "${parts[*]}" "$RUN_DATE" $((ELAPSED / 60)) $((ELAPSED % 60)) >"$RUN/summary.md"
  "$PY" "$ROOT/scripts/bench_doc.py" section "$DOC" summary "$RUN/summary.md"
fi
cat "$REPORT"
echo "bench: report in $REPORT; doc ${DOC:-not written}; run folder $RUN"
[ $STATUS = 0 ] || echo "bench: some checks failed or rows are BAD; see the report" >&2
exit $STATUS
