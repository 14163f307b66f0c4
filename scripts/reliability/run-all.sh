#!/usr/bin/env bash
# Runs every reliability check (docs/reliability.md) and prints one summary line per case.
#
#   scripts/reliability/run-all.sh [--soak SECONDS] [--fuzz SECONDS]
#
# The Swift tests run with HERALD_INTEROP=required (root and bird2/gobgpd/frr needed, as in CI).
# --soak adds scripts/reliability/soak.sh for that long (e.g. 600); --fuzz adds every fuzzer for
# that long each. Exit status: the number of failed cases (0: all passed).
set -uo pipefail
cd "$(dirname "$0")/../.."

soak="" fuzz=""
while [ $# -gt 0 ]; do
    case "$1" in
        --soak) soak="$2"; shift 2 ;;
        --fuzz) fuzz="$2"; shift 2 ;;
        -h|--help) sed -n 2,9p "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 64 ;;
    esac
done

export HERALD_WERROR=1 HERALD_INTEROP=required
logs=$(mktemp -d /tmp/herald-reliability-XXXXXX)
summary=()
failed=0

run() {  # run NAME COMMAND...
    local name="$1"; shift
    local started=$SECONDS log="$logs/${name// /-}.log"
    if "$@" >"$log" 2>&1; then
        summary+=("PASS  $name  ($((SECONDS - started)) s)")
    else
        summary+=("FAIL  $name  ($((SECONDS - started)) s, log: $log)")
        failed=$((failed + 1))
    fi
    echo "${summary[-1]}"
}

if ! swift build --build-tests >"$logs/build.log" 2>&1; then
    echo "FAIL  build (log: $logs/build.log)"
    exit 1
fi
herald="$(swift build --show-bin-path)/herald"

run "crash durability (16 clients, 20 x kill -9)" swift test --skip-build --filter CrashDurabilityTests
run "kill -9 and restart against BIRD" swift test --skip-build --filter "HeraldServeTests|HeraldShutdownTests"
run "disk full: 503, reads work" swift test --skip-build --filter DiskFullTests
run "read-only database: 503, reads and routes kept" swift test --skip-build --filter ReadOnlyDatabaseTests
run "malformed BGP from a live peer" swift test --skip-build --filter MalformedPeerTests
run "session faults (send hold, flapping peer, 50 peers)" swift test --skip-build --filter "SessionFaultTests|SessionTests"
run "HTTP abuse against herald serve" swift test --skip-build --filter HTTPAbuseTests
run "HTTP server limits and parser (in-process)" swift test --skip-build --filter HTTPServerTests
run "event bus under cancellation" swift test --skip-build --filter EventBusTests
if [ -n "$soak" ]; then
    run "soak ${soak} s" scripts/reliability/soak.sh --duration "$soak" --herald "$herald"
fi
if [ -n "$fuzz" ]; then
    run "fuzz BGP decoder ${fuzz} s" scripts/fuzz/bgp.sh "$fuzz"
    run "fuzz HTTP parser ${fuzz} s" scripts/fuzz/http.sh "$fuzz" parser
    run "fuzz JSON parser ${fuzz} s" scripts/fuzz/http.sh "$fuzz" json
    run "fuzz dqlite wire decoder ${fuzz} s" scripts/fuzz/dqlite.sh "$fuzz"
fi

echo
echo "== reliability summary (logs in $logs)"
printf '%s\n' "${summary[@]}"
exit "$failed"
