#!/usr/bin/env bash
# Time for N prefixes to reach a fresh BIRD 2 receiver over one eBGP session, per sender (Herald,
# BIRD, GoBGP, FRR), each with its table preloaded before the session comes up. Run as root.
#   scripts/bench/bgp-convergence.sh [--runs R] [--senders herald,bird,gobgp,frr] [--family ipv4|ipv6]
#                                    [--frr-max N] [--json FILE] [N …]      (default N: 10000 100000 1000000)
# Release build of herald unless HERALD_BIN is set. Prints a markdown table (medians of R runs) and
# Herald's ratios to each alternative. See docs/performance.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
herald_release_bin
uptime
# exec: the driver keeps this PID, which names its namespaces (hrld-<pid>-b<k>); it removes them
# and stops its daemons on exit (also on Ctrl-C or SIGTERM).
exec python3 "$here/bgpbench.py" convergence --herald "$herald_bin" "$@"
