#!/usr/bin/env bash
# Fuzzes the HTTP/1.1 request parser with libFuzzer.
#   scripts/fuzz/http.sh [seconds] [target]    (default 600 s, target "parser"; or "json")
# Builds with swiftc -sanitize=fuzzer,address from the parser's own sources (nothing here is part
# of `swift build`). The corpus grows in scripts/fuzz/http/corpus (seeds committed); crashers land
# in scripts/fuzz/http/crashes — turn each into a test in Tests/HTTPServerTests/FuzzRegressionTests.swift.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-600}"
target="${2:-parser}"
out=.build/fuzz
common=(Sources/HTTPServer/HTTPTypes.swift Sources/HTTPServer/HTTPRequestParser.swift)
case "$target" in
    parser) sources=("${common[@]}" scripts/fuzz/http/FuzzHTTPParser.swift); seeds=scripts/fuzz/http/seeds ;;
    json) sources=("${common[@]}" Sources/HTTPServer/JSONParser.swift scripts/fuzz/http/FuzzJSONParser.swift); seeds=scripts/fuzz/http/json-seeds ;;
    *) echo "unknown target $target (parser | json)" >&2; exit 2 ;;
esac
corpus="scripts/fuzz/http/corpus/$target"
mkdir -p "$out" "$corpus" scripts/fuzz/http/crashes
swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
    -module-name HTTPFuzz -o "$out/fuzz-http-$target" "${sources[@]}"
"$out/fuzz-http-$target" -max_total_time="$seconds" -max_len=2048 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="scripts/fuzz/http/crashes/$target-" -print_final_stats=1 \
    "$corpus" "$seeds"
