#!/usr/bin/env bash
# Write the git revision into Sources/PomeriumCore/BuildRevision.swift so `pomerium -version`
# prints it. The committed file says "unknown"; git is told to ignore the local change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
file="$ROOT/Sources/PomeriumCore/BuildRevision.swift"
revision="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if ! git -C "$ROOT" diff --quiet HEAD -- Sources 2>/dev/null; then revision="$revision-dirty"; fi
content="// Overwritten by scripts/build-info.sh before release builds.
let buildRevision = \"$revision\""
if [ "$(cat "$file")" != "$content" ]; then
  git -C "$ROOT" update-index --skip-worktree Sources/PomeriumCore/BuildRevision.swift 2>/dev/null || true
  printf '%s\n' "$content" > "$file"
fi
