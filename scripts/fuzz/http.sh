#!/usr/bin/env bash
# Fuzzes the HTTP/1.1 request parser (target "parser") or the JSON parser ("json") with libFuzzer.
#   scripts/fuzz/http.sh [seconds] [target]    (default 600 s, target "parser"; or "json")
# Builds with swiftc -sanitize=fuzzer,address from the parser's own sources (nothing here is part
# of `swift build`). The corpus grows in scripts/fuzz/http/corpus (seeds committed); crashers land
# in scripts/fuzz/http/crashes — turn each into a test in Tests/HTTPServerTests/FuzzRegressionTests.swift
# (parser) or Tests/JSONTests/FuzzRegressionTests.swift (json).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-600}"
target="${2:-parser}"
out=.build/fuzz
case "$target" in
    parser) sources=(Sources/HTTPServer/HTTPTypes.swift Sources/HTTPServer/HTTPRequestParser.swift scripts/fuzz/http/FuzzHTTPParser.swift)
            seeds=scripts/fuzz/http/seeds ;;
    json) sources=(Sources/JSON/JSONParser.swift scripts/fuzz/http/FuzzJSONParser.swift); seeds=scripts/fuzz/http/json-seeds ;;
    *) echo "unknown target $target (parser | json)" >&2; exit 2 ;;
esac
corpus="scripts/fuzz/http/corpus/$target"
mkdir -p "$out" "$corpus" scripts/fuzz/http/crashes
swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
    -module-name HTTPFuzz -o "$out/fuzz-http-$target" "${sources[@]}"
"$out/fuzz-http-$target" -max_total_time="$seconds" -max_len=2048 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="scripts/fuzz/http/crashes/$target-" -print_final_stats=1 \
    "$corpus" "$seeds"
