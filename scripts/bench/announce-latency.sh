#!/usr/bin/env bash
# Single-route latency, command → receiver: with the session up, COUNT announces and withdraws of
# one /32 each through Herald's API (PUT/DELETE /v1/allocations/NAME with a specific address, or
# with --via route PUT/DELETE /v1/routes/NAME), each timed until a GoBGP receiver in another
# namespace reports it (`gobgp monitor global rib -j`); side by side with `gobgp global rib add/del`
# on a GoBGP sender → the same kind of receiver. Prints p50/p99. Run as root.
#   scripts/bench/announce-latency.sh [--count 200] [--via allocation|route] [--senders herald,gobgp]
# Release build of herald unless HERALD_BIN is set. See docs/performance.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
herald_release_bin
uptime
exec python3 "$here/bgpbench.py" latency --herald "$herald_bin" "$@"
