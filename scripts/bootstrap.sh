#!/usr/bin/env bash
# Install what building and testing need, on a Debian 12 machine: the C libraries and servers from
# Debian's packages, and the Python tools (pinned in tests/requirements.txt) in .build/venv.
# Safe to run again: it installs only what is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  libssl-dev libnghttp2-dev libyaml-dev liblmdb-dev libhiredis-dev libxxhash-dev libpcre2-dev pkg-config
  redis-server nginx curl openssl procps python3-venv chromium chromium-driver
)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: missing Debian packages: ${missing[*]}; run this script as root or install them" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}"
  apt-get update -qq
  # Keep the packages from starting their system services (nginx on port 80, redis on 6379):
  # tests start their own instances on free loopback ports.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ $made_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

venv="$ROOT/.build/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$ROOT/tests/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/tests/requirements.txt"
  echo "$wanted" > "$stamp"
fi
echo "bootstrap: ready"
