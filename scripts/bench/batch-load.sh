#!/usr/bin/env bash
# Bulk load through the API (issue #7: "1M routes through the batch API in ≤ 10 s, durable commit
# included"): N distinct IPv4 /32 static routes as one NDJSON `POST /v1/routes:batch` into a
# fresh database; the answer comes after COMMIT with synchronous=FULL. Prints the wall time of the
# request (curl's time_total), the load average before, and Herald's RSS and VmHWM after.
#   scripts/bench/batch-load.sh [--runs R] [--port P] [N]      (default N = 1000000, R = 1)
# With --runs, the median wall time is printed last. Loopback only; no root needed. Release build
# of herald unless HERALD_BIN is set. See docs/performance.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=1
count=1000000
port=18279
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        [0-9]*) count=$1; shift ;;
        *) echo "usage: $0 [--runs R] [--port P] [N]" >&2; exit 2 ;;
    esac
done
HERALD_BENCH_LOOPBACK_ONLY=1 source "$here/lib.sh"
herald_release_bin
dir=$(mktemp -d /tmp/herald-batch-bench-$$.XXXX)
pid=
stop_herald() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap 'stop_herald; rm -rf "$dir"' EXIT

python3 - "$dir/routes.ndjson" "$count" <<'PY'
import ipaddress, sys
base = int(ipaddress.IPv4Address("10.0.0.0"))
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write('{"prefix":"%s/32"}\n' % ipaddress.IPv4Address(base + i))
PY
echo "body: $count routes, $(stat -c %s "$dir/routes.ndjson") bytes (NDJSON)"

times=()
for run in $(seq "$runs"); do
    db="$dir/run-$run.db"
    start_herald_serve "$db" "$port" "$dir/serve.log"
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    out=$(curl -s -o "$dir/answer.json" -w '%{http_code} %{time_total}' -X POST -H 'Content-Type: application/x-ndjson' \
        --data-binary @"$dir/routes.ndjson" "http://127.0.0.1:$port/v1/routes:batch")
    code=${out% *}
    wall=${out#* }
    [ "$code" = 200 ] || { echo "run $run: HTTP $code: $(head -c 500 "$dir/answer.json")" >&2; exit 1; }
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
    printf 'run %d: %.2f s  (load before: %s; herald RSS %d MiB, VmHWM %d MiB; answer %s)\n' \
        "$run" "$wall" "$load" $((rss / 1024)) $((hwm / 1024)) "$(cat "$dir/answer.json")"
    times+=("$wall")
    stop_herald
    rm -f "$db" "$db-wal" "$db-shm"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
printf 'median of %d: %.2f s for %d routes\n' "$runs" "$median" "$count"
