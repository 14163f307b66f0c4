#!/usr/bin/env bash
# HTTP throughput: Herald's HTTPServer vs a minimal Hummingbird 2 server, same JSON, loopback only.
#   scripts/bench/http.sh [duration-seconds]     (default 10)
# Release builds of both (Hummingbird's first build takes several minutes), then
# `wrk -t2 -c64 -d10s --latency` against GET /v1/status on each; prints requests/s, p99 and the ratio.
set -euo pipefail
cd "$(dirname "$0")"
duration="${1:-10}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

swift build -c release --package-path http-bench --scratch-path .build-http-bench 2>&1 | tail -1
swift build -c release --package-path hb-baseline --scratch-path .build-hb-baseline 2>&1 | tail -1
herald_bin=.build-http-bench/release/herald-http-bench
hb_bin=.build-hb-baseline/release/hb-baseline

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

bench() {  # name port → "rps p99"
    local name=$1 port=$2
    curl -sf "http://127.0.0.1:$port/v1/status" >/dev/null || { echo "$name: GET /v1/status failed" >&2; return 1; }
    wrk -t2 -c64 -d2s "http://127.0.0.1:$port/v1/status" >/dev/null   # warm-up
    wrk -t2 -c64 -d"${duration}s" --latency "http://127.0.0.1:$port/v1/status" > "/tmp/wrk-$name.txt"
    local rps p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' "/tmp/wrk-$name.txt")
    p99=$(awk '$1 == "99%" {print $2}' "/tmp/wrk-$name.txt")
    echo "$rps $p99"
}

"$herald_bin" 18179 > /tmp/herald-http-bench.log 2>&1 & pids+=($!)
wait_port 18179
read -r herald_rps herald_p99 < <(bench herald 18179)
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true

"$hb_bin" 18180 > /tmp/hb-baseline.log 2>&1 & pids+=($!)
wait_port 18180
read -r hb_rps hb_p99 < <(bench hummingbird 18180)

printf '%-12s %14s %10s\n' server requests/s p99
printf '%-12s %14s %10s\n' herald "$herald_rps" "$herald_p99"
printf '%-12s %14s %10s\n' hummingbird "$hb_rps" "$hb_p99"
awk -v a="$herald_rps" -v b="$hb_rps" 'BEGIN { printf "ratio herald/hummingbird: %.2f\n", a / b }'
echo "(wrk -t2 -c64 -d${duration}s --latency, GET /v1/status; full output in /tmp/wrk-herald.txt and /tmp/wrk-hummingbird.txt)"
