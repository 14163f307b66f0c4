#!/usr/bin/env bash
# Management API throughput (release build, loopback only, no root needed):
#  1. durable allocations/s: wrk PUTs distinct allocations from one pool (every 201 is committed
#     with synchronous=FULL), one connection (sequential) and 16 concurrent connections, each on a
#     fresh database; the count is read back from the database, not from wrk;
#  2. GET /v1/status requests/s (wrk -t2 -c64);
#  3. scripts/bench/http.sh (Herald's HTTPServer vs Hummingbird 2), unless --no-http.
#   scripts/bench/api.sh [--seconds 10] [--no-http]
# Release build of herald unless HERALD_BIN is set. See docs/performance.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=10
http=1
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --no-http) http=0; shift ;;
        *) echo "usage: $0 [--seconds S] [--no-http]" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "needs sqlite3 (apt-get install sqlite3)" >&2; exit 1; }
if [ -n "${HERALD_BIN:-}" ]; then
    bin=$HERALD_BIN
else
    (cd "$here/../.." && swift build -c release --product herald >&2)
    bin="$(cd "$here/../.." && swift build -c release --show-bin-path)/herald"
fi
dir=$(mktemp -d /tmp/herald-api-bench-$$.XXXX)
# Below the ephemeral range, and per run, so concurrent runs do not collide.
port=$((20000 + $$ % 9000))
pid=
stop_herald() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap 'stop_herald; rm -rf "$dir"' EXIT

start_herald() {  # start_herald DB
    "$bin" serve --db "$1" --api-listen "127.0.0.1:$port" --bgp-listen 127.0.0.1:0 --log-level error >> "$dir/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do curl -sf "127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "herald did not start; see $dir/serve.log" >&2; exit 1
}

cat > "$dir/put.lua" <<'LUA'
local counter = 0
local thread_id = 0
function setup(thread) thread:set("id", thread_id); thread_id = thread_id + 1 end
function init(args) prefix = "t" .. id .. "-" end
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/v1/allocations/" .. prefix .. counter, {["Content-Type"] = "application/json"}, '{"pool":"bench"}')
end
LUA

allocations() {  # allocations THREADS CONNECTIONS → prints "count rate p50 p99"
    local db="$dir/alloc-$2.db"
    start_herald "$db"
    curl -sf -X PUT "127.0.0.1:$port/v1/pools/bench" -H 'Content-Type: application/json' -d '{"blocks":["10.0.0.0/8"]}' >/dev/null
    wrk -t"$1" -c"$2" -d"${seconds}s" --latency -s "$dir/put.lua" "http://127.0.0.1:$port" > "$dir/wrk-alloc-$2.txt"
    stop_herald
    local count p50 p99
    count=$(sqlite3 "$db" 'SELECT count(*) FROM allocations')
    p50=$(awk '$1 == "50%" {print $2}' "$dir/wrk-alloc-$2.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$dir/wrk-alloc-$2.txt")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$dir/wrk-alloc-$2.txt")
    [ -z "$non2xx" ] || echo "warning: $non2xx non-2xx answers with $2 connection(s)" >&2
    echo "$count $(awk -v c="$count" -v s="$seconds" 'BEGIN { printf "%.0f", c / s }') $p50 $p99"
}

uptime
# The floor under a durable commit: write 4 KiB + fdatasync on the database's file system, 200 times.
fsync_ms=$(python3 - "$dir" <<'PY'
import os, statistics, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
samples = []
for i in range(200):
    os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
    start = time.monotonic()
    os.fdatasync(fd)
    samples.append((time.monotonic() - start) * 1000)
os.close(fd)
samples.sort()
print(f"{statistics.median(samples):.2f} ms / {samples[int(len(samples) * 0.99) - 1]:.2f} ms")
PY
)
read -r seq_count seq_rate seq_p50 seq_p99 < <(allocations 1 1)
load_seq=$(cut -d' ' -f1-3 /proc/loadavg)
read -r con_count con_rate con_p50 con_p99 < <(allocations 2 16)
load_con=$(cut -d' ' -f1-3 /proc/loadavg)

start_herald "$dir/get.db"
wrk -t2 -c64 -d2s "http://127.0.0.1:$port/v1/status" >/dev/null   # warm-up
wrk -t2 -c64 -d"${seconds}s" --latency "http://127.0.0.1:$port/v1/status" > "$dir/wrk-get.txt"
stop_herald
get_rps=$(awk '/^Requests\/sec:/ {print $2}' "$dir/wrk-get.txt")
get_p99=$(awk '$1 == "99%" {print $2}' "$dir/wrk-get.txt")
load_get=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "### Management API (wrk, ${seconds} s each, loopback)"
echo
echo "| measurement | result | latency p50 / p99 | load avg (1/5/15 min) |"
echo "|---|---:|---:|---|"
echo "| durable allocations, sequential (wrk -t1 -c1, PUT /v1/allocations/NAME) | $seq_rate/s ($seq_count committed) | $seq_p50 / $seq_p99 | $load_seq |"
echo "| durable allocations, 16 concurrent clients (wrk -t2 -c16) | $con_rate/s ($con_count committed) | $con_p50 / $con_p99 | $load_con |"
echo "| GET /v1/status (wrk -t2 -c64) | $get_rps req/s | – / $get_p99 | $load_get |"
echo "| fdatasync of 4 KiB on the database's file system (the floor under one durable commit) | – | $fsync_ms | $load_get |"
echo
uptime
if [ $http = 1 ] && [ -x "$here/http.sh" ]; then
    echo
    echo "### HTTP server: Herald vs Hummingbird 2 (scripts/bench/http.sh)"
    "$here/http.sh" "$seconds"
fi
