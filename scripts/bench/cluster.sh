#!/usr/bin/env bash
# Cluster mode next to one SQLite file, in one run (loopback, no root needed): durable
# allocations/s and latency, kill -9 of the leader to the first successful write (median of
# --rounds), and commit-to-announce on followers. Release build unless HERALD_BIN is set.
#   scripts/bench/cluster.sh [--seconds 8] [--rounds 5] [--writes 50]
# Needs wrk and libdqlite0. See docs/performance.md and docs/cluster.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${HERALD_BIN:-}" ]; then
    bin=$HERALD_BIN
else
    (cd "$here/../.." && swift build -c release --product herald >&2)
    bin="$(cd "$here/../.." && swift build -c release --show-bin-path)/herald"
fi
exec python3 "$here/clusterbench.py" "$bin" "$@"
