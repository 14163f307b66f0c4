#!/usr/bin/env bash
# Issue #19: the whole table sent again with 1% of the next hops changed. Loads N IPv4 /32s
# (next hop node n1) through `POST /v1/routes:batch` into a fresh database, then posts the same N
# with every 100th via n2; the second answer comes after the durable COMMIT. Prints curl's wall
# time of the re-send per run and the median, the answer's created/updated/unchanged, the load
# average before each run; each re-send starts once the first load has settled (the speaker holds
# the N routes, then 2 s). (That only the changed prefixes reach a router is
# Tests/InteropTests/BulkResendTests.)
#   scripts/bench/batch-resend.sh [--runs R] [--port P] [N]      (default N = 1000000, R = 3)
# Loopback only; no root needed. Release build of herald unless HERALD_BIN is set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=3
count=1000000
port=18579
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        [0-9]*) count=$1; shift ;;
        *) echo "usage: $0 [--runs R] [--port P] [N]" >&2; exit 2 ;;
    esac
done
HERALD_BENCH_LOOPBACK_ONLY=1 source "$here/lib.sh"
herald_release_bin
dir=$(mktemp -d /tmp/herald-resend-bench-$$.XXXX)
pid=
stop_herald() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap 'stop_herald; rm -rf "$dir"' EXIT

python3 - "$dir" "$count" <<'PY'
import ipaddress, sys
directory, count = sys.argv[1], int(sys.argv[2])
base = int(ipaddress.IPv4Address("10.0.0.0"))
with open(directory + "/first.ndjson", "w") as first, open(directory + "/again.ndjson", "w") as again:
    for i in range(count):
        prefix = ipaddress.IPv4Address(base + i)
        first.write('{"prefix":"%s/32","next_hops":["n1"]}\n' % prefix)
        again.write('{"prefix":"%s/32","next_hops":["%s"]}\n' % (prefix, "n2" if i % 100 == 0 else "n1"))
PY
post() { curl -s -o "$dir/answer.json" -w '%{http_code} %{time_total}' -X POST -H 'Content-Type: application/x-ndjson' \
    --data-binary @"$1" "http://127.0.0.1:$port/v1/routes:batch"; }
times=()
for run in $(seq "$runs"); do
    db="$dir/run-$run.db"
    start_herald_serve "$db" "$port" "$dir/serve.log"
    for node in n1:10.255.1.1 n2:10.255.1.2; do
        curl -sf -X PUT "127.0.0.1:$port/v1/nodes/${node%%:*}" -H 'Content-Type: application/json' -d "{\"addresses\":[\"${node#*:}\"]}" >/dev/null
    done
    out=$(post "$dir/first.ndjson"); [ "${out% *}" = 200 ] || { echo "load: HTTP ${out% *}: $(head -c 300 "$dir/answer.json")" >&2; exit 1; }
    # The re-send of a sync loop comes after the first load has settled: the speaker holds the
    # table (its Loc-RIB metric says N) and the WAL of the load is checkpointed (2 s more), so the
    # figure is the re-send's own, not the tail of the load's work on the same two cores.
    for _ in $(seq 600); do
        held=$(curl -s "127.0.0.1:$port/metrics" | awk '$1 == "herald_bgp_loc_rib_prefixes" {print $2}')
        [ "${held:-0}" -ge "$count" ] 2>/dev/null && break
        sleep 0.1
    done
    sleep 2
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    out=$(post "$dir/again.ndjson"); [ "${out% *}" = 200 ] || { echo "re-send: HTTP ${out% *}: $(head -c 300 "$dir/answer.json")" >&2; exit 1; }
    printf 're-send %d: %.2f s  (load before: %s; answer %s)\n' "$run" "${out#* }" "$load" "$(cat "$dir/answer.json")"
    times+=("${out#* }")
    stop_herald
    rm -f "$db" "$db-wal" "$db-shm"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
printf 'median of %d: %.2f s to re-send %d routes with 1%% changed\n' "$runs" "$median" "$count"
