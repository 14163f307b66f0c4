#!/usr/bin/env bash
# Issue #16: a million routes advertised to BIRD with BFD at 50 ms × 3, then every page of the
# advertised view and of GET /v1/routes, and the NDJSON export; page times, RSS, BFD. Run as root.
#   scripts/bench/walk.sh [--routes 1000000] [--runs 3]
# Release build of herald unless HERALD_BIN is set. See docs/performance.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
herald_release_bin
uptime
exec python3 "$here/walkbench.py" --herald "$herald_bin" "$@"
