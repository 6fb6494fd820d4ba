#!/usr/bin/env bash
# The main job: an all-in-one pomerium in front of a demo upstream, with a local OpenID Connect
# provider, all on 127.0.0.1. Ctrl-C stops everything.
#
#   provider  http://127.0.0.1:5556        oidc-provider-mock, users listed below
#   upstream  http://127.0.0.1:8000        shows the verified identity it received
#   pomerium  https://*.localhost:8443     app.localhost (example.com users), public.localhost
#
# DEMO_CONFIG picks another config (default scripts/demo/config.yaml). DEMO_STORE picks the session
# store: memory (default), bolt (an LMDB file in .build/demo, sessions survive a restart) or redis
# (a redis-server started on 127.0.0.1:6380). POMERIUM_BINARY picks another build of pomerium.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE="$ROOT/.build/demo"
CONFIG="${DEMO_CONFIG:-scripts/demo/config.yaml}"
BINARY="${POMERIUM_BINARY:-.build/release/pomerium}"
STORE="${DEMO_STORE:-memory}"
mkdir -p "$STATE/tls"
chmod 700 "$STATE"

if [ ! -x "$BINARY" ]; then
  echo "demo: $BINARY is missing; build it with: swift build -c release --product pomerium (or make run)" >&2
  exit 1
fi
ports=(5556 8000 8443)
case "$STORE" in
  memory) ;;
  bolt)
    export CACHE_STORE=bolt CACHE_STORE_PATH="$STATE/sessions.db" ;;
  redis)
    ports+=(6380)
    export CACHE_STORE=redis CACHE_STORE_ADDRESS=127.0.0.1:6380 ;;
  *)
    echo "demo: DEMO_STORE must be memory, bolt or redis, not \"$STORE\"" >&2
    exit 1 ;;
esac

for port in "${ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port on 127.0.0.1 is in use; stop what uses it and run again" >&2
    exit 1
  fi
done

if [ ! -f "$STATE/tls/cert.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj /CN=pomerium-demo \
    -addext subjectAltName=DNS:authenticate.localhost,DNS:app.localhost,DNS:public.localhost,IP:127.0.0.1 \
    -keyout "$STATE/tls/key.pem" -out "$STATE/tls/cert.pem" 2>/dev/null
  chmod 600 "$STATE/tls/key.pem"
fi
if [ ! -f "$STATE/secrets.env" ]; then
  umask 077
  {
    echo "COOKIE_SECRET=$(head -c 32 /dev/urandom | base64)"
    echo "SHARED_SECRET=$(head -c 32 /dev/urandom | base64)"
  } >"$STATE/secrets.env"
fi
set -a
source "$STATE/secrets.env"
set +a

pids=()
cleanup() {
  trap - EXIT INT TERM
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "demo: stopped"
}
trap cleanup EXIT INT TERM

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: nothing listens on 127.0.0.1:$1; see the logs in $STATE" >&2
  return 1
}

users='[{"sub":"alice","email":"alice@example.com","name":"Alice","groups":["devs"]},
        {"sub":"admin","email":"admin@example.com","name":"Admin","groups":["admins"]},
        {"sub":"mallory","email":"mallory@other.test","name":"Mallory","groups":[]}]'
if [ "$STORE" = redis ]; then
  redis-server --bind 127.0.0.1 --port 6380 --save "" --appendonly no --dir "$STATE" \
    >"$STATE/redis.log" 2>&1 &
  pids+=($!)
  wait_port 6380
fi

NO_COLOR=1 PYTHONWARNINGS=ignore .build/venv/bin/oidc-provider-mock --host 127.0.0.1 --port 5556 \
  >"$STATE/provider.log" 2>&1 &
pids+=($!)
wait_port 5556
# Preset the users' claims, so logging in as "alice" releases her email and groups.
.build/venv/bin/python - "$users" <<'PY'
import json, sys, urllib.request
for user in json.loads(sys.argv[1]):
    claims = {key: value for key, value in user.items() if key != "sub"}
    request = urllib.request.Request(
        f"http://127.0.0.1:5556/users/{user['sub']}", data=json.dumps(claims).encode(), method="PUT",
        headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).close()
PY

.build/venv/bin/python scripts/demo/upstream.py --port 8000 \
  --jwks-url https://authenticate.localhost:8443/.well-known/pomerium/jwks.json \
  --ca-file "$STATE/tls/cert.pem" --resolve authenticate.localhost:127.0.0.1 >"$STATE/upstream.log" 2>&1 &
pids+=($!)
wait_port 8000

"$BINARY" -config "$CONFIG" >"$STATE/pomerium.log" 2>&1 &
pids+=($!)
if ! wait_port 8443; then
  tail -n 20 "$STATE/pomerium.log" >&2
  exit 1
fi

cat <<TEXT

Pomerium demo is running (the certificate is self-signed: $STATE/tls/cert.pem).
Session store: $STORE. Logs: $STATE/pomerium.log, provider.log, upstream.log.

  Protected app:  https://app.localhost:8443/       (users of example.com)
  Public app:     https://public.localhost:8443/    (no login)
  Your session:   https://app.localhost:8443/.pomerium/

Log in at the provider by typing one of these user names:
  alice     alice@example.com, group devs        -> allowed
  admin     admin@example.com, group admins      -> allowed, may impersonate
  mallory   mallory@other.test                   -> denied (403)

From a shell: curl --cacert $STATE/tls/cert.pem https://public.localhost:8443/
Press Ctrl-C to stop.
TEXT
wait "${pids[-1]}"
