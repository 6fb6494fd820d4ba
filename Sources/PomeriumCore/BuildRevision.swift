// Overwritten by scripts/build-info.sh before release builds.
let buildRevision = "unknown"
