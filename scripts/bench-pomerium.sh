#!/usr/bin/env bash
# Writes a pomerium config for the benchmarks and runs the release binary on it in the foreground.
# scripts/bench.sh uses it as the PRODUCT_CMD of the peer harness (../shared/bench/run.sh) and for
# its own product variants.
#
#   scripts/bench-pomerium.sh CONFIG PORT [--tls CERT KEY] [--routes N] [--redis HOST:PORT] [--forward-auth PORT] [--write-only]
#
# Needs IDP_URL and UPSTREAM_URL (the harness exports them) and BENCH_SHARED_SECRET,
# BENCH_COOKIE_SECRET (base64 of 32 bytes; scripts/bench.sh makes them per run). The config is the
# one of the harness README: the route host is 127.0.0.1:PORT and the authenticate service is
# localhost:PORT, so both reach this listener and keep their cookies apart. Ten routes serve that
# host: eight prefix routes that no request uses, /admin for group admins, and the catch-all for
# example.com addresses, which is the one measured and the last one of the host.
#
# --routes N (at least 10) puts N-10 more routes first, three per host on hosts
# app-NNNNN.bench.test: two prefix routes and a catch-all, so the measured route is the last of
# N in the file. --tls serves HTTPS with the PEM files (the authenticate URL becomes https too).
# --redis keeps sessions in Redis instead of memory. Access logs are off (log_level warn), as
# they are for the nginx and Apache peers. --forward-auth PORT serves the forward-auth endpoints
# on every port of 127.0.0.1 and adds a route for an application behind nginx auth_request at
# http://127.0.0.1:PORT. --write-only writes the config and exits, so that a
# start-up time measured afterwards leaves out the config generation.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CONFIG PORT [--tls CERT KEY] [--routes N] [--redis HOST:PORT] [--forward-auth PORT] [--write-only]" >&2; exit 2; }
config=$1 port=$2
shift 2
scheme=http cert="" key="" routes=10 redis="" forward_auth_port="" write_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tls) scheme=https cert=$2 key=$3; shift 3 ;;
    --routes) routes=$2; shift 2 ;;
    --redis) redis=$2; shift 2 ;;
    --forward-auth) forward_auth_port=$2; shift 2 ;;
    --write-only) write_only=1; shift ;;
    *) echo "bench-pomerium: unknown option \"$1\"" >&2; exit 2 ;;
  esac
done
: "${IDP_URL:?set IDP_URL to the issuer}" "${UPSTREAM_URL:?set UPSTREAM_URL}"
: "${BENCH_SHARED_SECRET:?set BENCH_SHARED_SECRET}" "${BENCH_COOKIE_SECRET:?set BENCH_COOKIE_SECRET}"
[ "$routes" -ge 10 ] 2>/dev/null || { echo "bench-pomerium: --routes needs a number of at least 10" >&2; exit 2; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${POMERIUM_BIN:-$ROOT/.build/release/pomerium}"

{
  if [ "$scheme" = https ]; then
    echo "insecure_server: false"
    echo "certificate_file: $cert"
    echo "certificate_key_file: $key"
  else
    echo "insecure_server: true"
  fi
  cat <<EOF
address: 127.0.0.1:$port
log_level: warn
cookie_secure: false
authenticate_service_url: $scheme://localhost:$port
idp_provider: oidc
idp_provider_url: $IDP_URL
idp_client_id: bench
idp_client_secret: bench
shared_secret: $BENCH_SHARED_SECRET
cookie_secret: $BENCH_COOKIE_SECRET
jwt_claims_headers: [email, groups]
EOF
  if [ -n "$forward_auth_port" ]; then
    # Without a port the endpoints serve every port of 127.0.0.1, this listener's included.
    echo "forward_auth_url: http://127.0.0.1"
  fi
  if [ -n "$redis" ]; then
    echo "cache_store: redis"
    echo "cache_store_address: $redis"
  fi
  echo "policy:"
  extra=$((routes - 10))
  for ((i = 0; i < extra; i++)); do
    host="app-$(printf %05d $((i / 3))).bench.test"
    case $((i % 3)) in
      0) printf '  - from: http://%s\n    prefix: /api/\n    to: %s\n    allowed_groups: [admins]\n' "$host" "$UPSTREAM_URL" ;;
      1) printf '  - from: http://%s\n    prefix: /static/\n    to: %s\n    allowed_domains: [example.com]\n' "$host" "$UPSTREAM_URL" ;;
      2) printf '  - from: http://%s\n    to: %s\n    allowed_domains: [example.com]\n' "$host" "$UPSTREAM_URL" ;;
    esac
  done
  if [ -n "$forward_auth_port" ]; then
    printf '  - from: http://127.0.0.1:%s\n    to: %s\n    allowed_domains: [example.com]\n' \
      "$forward_auth_port" "$UPSTREAM_URL"
  fi
  for ((i = 1; i <= 8; i++)); do
    printf '  - from: %s://127.0.0.1:%s\n    prefix: /unused-%d/\n    to: %s\n    allowed_groups: [admins]\n' \
      "$scheme" "$port" "$i" "$UPSTREAM_URL"
  done
  cat <<EOF
  - from: $scheme://127.0.0.1:$port
    prefix: /admin
    to: $UPSTREAM_URL
    allowed_groups: [admins]
    allow_websockets: true
  - from: $scheme://127.0.0.1:$port
    to: $UPSTREAM_URL
    allowed_domains: [example.com]
    allow_websockets: true
EOF
} >"$config"
[ $write_only = 0 ] || exit 0
exec "$BIN" -config "$config"
