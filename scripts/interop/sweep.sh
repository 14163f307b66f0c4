#!/usr/bin/env bash
# Removes what a crashed or killed interop test run left behind: network namespaces
# `hrld-<pid>-*` and work directories `/tmp/hrld-<pid>-*` whose <pid> is no longer alive, after
# SIGKILLing (by PID) the processes still inside such a namespace — daemons the harness started
# there. Names belonging to a live process (a run in progress) are never touched.
# The test harness does the same sweep on start-up; this is for doing it by hand (as root).
# Usage: sudo scripts/interop/sweep.sh [-n]     (-n: only print what would be removed)
set -euo pipefail
dry=0
[ "${1:-}" = "-n" ] && dry=1

stale() {  # stale NAME → true if NAME is hrld-<pid>-… and <pid> is gone
  [[ $1 =~ ^hrld-([0-9]+)- ]] || return 1
  ! kill -0 "${BASH_REMATCH[1]}" 2>/dev/null
}

for ns in $(ip netns list | awk '{print $1}'); do
  stale "$ns" || continue
  pids=$(ip netns pids "$ns" || true)
  echo "namespace $ns${pids:+ (processes: $pids)}"
  [ $dry = 1 ] && continue
  for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
  ip netns delete "$ns"
done
for dir in /tmp/hrld-*; do
  [ -e "$dir" ] || continue
  stale "$(basename "$dir")" || continue
  echo "directory $dir"
  [ $dry = 1 ] || rm -rf "$dir"
done
