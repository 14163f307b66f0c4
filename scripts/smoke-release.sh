#!/usr/bin/env bash
# Copies a herald binary alone into an empty directory, starts `./herald serve` there, checks
# that herald.db appears with the schema applied, sends SIGTERM and expects exit status 0.
set -euo pipefail
binary=${1:?usage: smoke-release.sh PATH/TO/herald}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$binary" "$dir/herald"
cd "$dir"
./herald serve --api-listen 127.0.0.1:0 --bgp-listen 127.0.0.1:0 > serve.log 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  grep -q 'herald started' serve.log && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
if ! grep -q 'herald started' serve.log; then
  echo "smoke: herald did not start" >&2; cat serve.log >&2; kill "$pid" 2>/dev/null || true; exit 1
fi
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
cat serve.log
if [ "$status" -ne 0 ]; then echo "smoke: exit status $status on SIGTERM, expected 0" >&2; exit 1; fi
version=$(sqlite3 herald.db 'SELECT max(version) FROM schema_migrations')
tables=$(sqlite3 herald.db "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('speaker','peers','nodes','pools','pool_blocks','allocations','routes','route_events','peer_events')")
if [ "$tables" -ne 9 ] || [ -z "$version" ]; then echo "smoke: schema missing (version '$version', $tables of 9 tables)" >&2; exit 1; fi
echo "smoke: ok (schema version $version, exit 0 on SIGTERM, $(stat -c %s herald) byte binary)"
