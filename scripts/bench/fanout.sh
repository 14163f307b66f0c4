#!/usr/bin/env bash
# Fan-out: one Herald with PREFIXES static routes (batch API) announcing to 1, 4 and 16 BIRD
# receivers at once, each in its own namespace joined to Herald's by a veth pair; time until every
# receiver holds every prefix, and Herald's RSS per configuration. Run as root.
#   scripts/bench/fanout.sh [--prefixes 100000] [--peers 1,4,16] [--runs 1]
# Release build of herald unless HERALD_BIN is set. See docs/performance.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
herald_release_bin
uptime
exec python3 "$here/bgpbench.py" fanout --herald "$herald_bin" "$@"
