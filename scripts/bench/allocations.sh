#!/usr/bin/env bash
# Durable allocations per second through the API (release build): wrk PUTs distinct
# allocations from one pool; every 201 has been committed with synchronous=FULL.
#   scripts/bench/allocations.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
connections=${2:-1}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)/herald
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin" serve --db "$dir/h.db" --api-listen 127.0.0.1:18299 --bgp-listen 127.0.0.1:0 --log-level error > "$dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf 127.0.0.1:18299/healthz >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf -X PUT 127.0.0.1:18299/v1/pools/bench -H 'Content-Type: application/json' -d '{"blocks":["10.0.0.0/8"]}' >/dev/null
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
wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$dir/put.lua" http://127.0.0.1:18299 | tee "$dir/wrk.txt"
count=$(sqlite3 "$dir/h.db" 'SELECT count(*) FROM allocations')
echo "allocations committed: $count in ${seconds}s with $connections connection(s): $((count / seconds))/s"
