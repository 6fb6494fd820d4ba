#!/usr/bin/env bash
# Run every test: install what is missing, check formatting, build with warnings as errors, run
# the Swift tests in debug and in release mode, then the Python integration and end-to-end tests.
# Each server a test needs is started by the test itself on a free 127.0.0.1 port and stopped
# afterwards.
#
# Environment: SKIP_RELEASE=1 skips the release-mode run (faster local loops; CI runs both).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

step "installing build and test dependencies"
scripts/bootstrap.sh
scripts/build-info.sh

step "checking formatting (swift format lint --strict)"
swift format lint --strict --parallel -r Sources Tests Package.swift

step "building (debug, warnings as errors)"
swift build --build-tests -Xswiftc -warnings-as-errors

step "Swift tests, debug build"
swift test --skip-build

if [ "${SKIP_RELEASE:-0}" != 1 ]; then
  # Swift 6.3.1 has been seen to miscompile an await loop under -O, so the tests run optimised too.
  step "building (release, warnings as errors)"
  swift build -c release --build-tests -Xswiftc -warnings-as-errors -Xswiftc -enable-testing
  step "Swift tests, release build"
  swift test -c release --skip-build -Xswiftc -enable-testing
fi

step "fuzzing the HTTP/1.1 parsers (bounded: ${FUZZ_SECONDS:-60} s per target)"
for target in request response text; do
  scripts/fuzz.sh "$target" "${FUZZ_SECONDS:-60}" | tail -n 1
done

step "Python integration tests"
swift build -c release --product pomerium
swift build -c release --product pomerium-cli
export POMERIUM_BINARY="$ROOT/.build/release/pomerium"
export POMERIUM_CLI_BINARY="$ROOT/.build/release/pomerium-cli"
status=0
.build/venv/bin/python -m pytest -q -p no:cacheprovider tests/integration || status=$?

step "end-to-end tests (release binary, provider, upstreams, Redis, headless Chromium)"
# Screenshots of the provider hand-off, the dashboard and the 403 page land in artifacts/.
.build/venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e || status=$?
# pytest exits 5 when it collects no test; that is a failure here, since tests are expected.
exit $status
