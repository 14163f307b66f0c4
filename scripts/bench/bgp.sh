#!/usr/bin/env bash
# Issue #5's benchmark: 1,000,000 IPv4 prefixes Herald → BIRD, side by side in the same run with
# GoBGP → BIRD and BIRD → BIRD, and Herald's RSS at that point. Run as root.
#   scripts/bench/bgp.sh [--runs R]        (default 3; release build unless HERALD_BIN is set)
# A thin wrapper over bgp-convergence.sh; extra arguments are passed on.
set -euo pipefail
exec "$(dirname "$0")/bgp-convergence.sh" --senders herald,gobgp,bird "$@" 1000000
