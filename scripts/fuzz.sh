#!/usr/bin/env bash
# Build one libFuzzer target from the PomeriumHTTP sources and run it for a bounded time.
#
# Usage: scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags]
#   TARGET   request | response | text (cookies, URLs, queries, paths)
#   SECONDS  wall-clock budget, passed as -max_total_time
#
# The modules PomeriumHTTP depends on (PomeriumLogging, PomeriumCore) and PomeriumHTTP itself are
# compiled with -O and -sanitize=fuzzer,address (SANITIZERS overrides, e.g. SANITIZERS=fuzzer).
# The run starts from the checked-in seed corpus Fuzz/corpus/TARGET and writes new inputs to
# .build/fuzz/corpus-TARGET, so the checked-in seeds stay unchanged. Crashing inputs land in
# .build/fuzz/artifacts/. The last line printed is the execution count and rate.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ $# -lt 2 ]; then
  echo "usage: scripts/fuzz.sh request|response|text SECONDS [libFuzzer flags]" >&2
  exit 2
fi
TARGET="$1"
SECONDS_BUDGET="$2"
shift 2
case "$TARGET" in
  request) SOURCE=Fuzz/RequestParserFuzz.swift ;;
  response) SOURCE=Fuzz/ResponseParserFuzz.swift ;;
  text) SOURCE=Fuzz/TextParsersFuzz.swift ;;
  *) echo "unknown fuzz target '$TARGET': use request, response or text" >&2; exit 2 ;;
esac
if ! [[ "$SECONDS_BUDGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_BUDGET" -lt 1 ]; then
  echo "invalid SECONDS '$SECONDS_BUDGET': use a whole number of seconds, at least 1" >&2
  exit 2
fi

SANITIZERS="${SANITIZERS:-fuzzer,address}"
OUT="$ROOT/.build/fuzz"
MODULES="$OUT/modules-${SANITIZERS//,/-}"
mkdir -p "$MODULES" "$OUT/artifacts" "$OUT/corpus-$TARGET"
FLAGS=(-O -sanitize="$SANITIZERS" -parse-as-library -swift-version 6 -enable-upcoming-feature ExistentialAny)

# Compile one module to an object file and a .swiftmodule that later modules import.
build_module() {
  local name="$1"
  echo "==> compiling $name"
  swiftc "${FLAGS[@]}" -wmo -module-name "$name" -emit-module -emit-module-path "$MODULES/$name.swiftmodule" \
    -I "$MODULES" -c "Sources/$name"/*.swift -o "$MODULES/$name.o"
}

build_module PomeriumLogging
build_module PomeriumCore
build_module PomeriumHTTP

BINARY="$OUT/fuzz-$TARGET"
echo "==> linking $BINARY"
swiftc "${FLAGS[@]}" -module-name "Fuzz_$TARGET" -I "$MODULES" Fuzz/FuzzSupport.swift "$SOURCE" \
  "$MODULES"/PomeriumLogging.o "$MODULES"/PomeriumCore.o "$MODULES"/PomeriumHTTP.o -o "$BINARY" \
  2> >(grep -v "Cannot export local symbol '__asan" >&2)

echo "==> fuzzing $TARGET for $SECONDS_BUDGET s"
LOG="$OUT/fuzz-$TARGET.log"
set +e
"$BINARY" -max_total_time="$SECONDS_BUDGET" -print_final_stats=1 -artifact_prefix="$OUT/artifacts/" \
  -max_len=4096 -timeout=10 "$@" "$OUT/corpus-$TARGET" "Fuzz/corpus/$TARGET" 2>&1 | tee "$LOG" | grep -v "^#" | tail -n 40
STATUS=${PIPESTATUS[0]}
set -e
EXECUTIONS="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$LOG" | grep -o '[0-9]*$' || true)"
RATE="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$LOG" | grep -o '[0-9]*$' || true)"
echo "executions: ${EXECUTIONS:-unknown} in ${SECONDS_BUDGET} s (${RATE:-unknown} per second), exit status $STATUS"
exit "$STATUS"
