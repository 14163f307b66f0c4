#!/usr/bin/env bash
# Fuzzes the HTTP/1.1 request parser with libFuzzer.
#   scripts/fuzz/http.sh [seconds]        (default 600)
# Builds with swiftc -sanitize=fuzzer,address from the parser's own sources (nothing here is part
# of `swift build`). The corpus grows in scripts/fuzz/http/corpus (seeds committed); crashers land
# in scripts/fuzz/http/crashes — turn each into a test in Tests/HTTPServerTests/FuzzRegressionTests.swift.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-600}"
out=.build/fuzz
mkdir -p "$out" scripts/fuzz/http/corpus scripts/fuzz/http/crashes
swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
    -module-name HTTPFuzz -o "$out/fuzz-http" \
    Sources/HTTPServer/HTTPTypes.swift Sources/HTTPServer/HTTPRequestParser.swift \
    scripts/fuzz/http/FuzzHTTPParser.swift
"$out/fuzz-http" -max_total_time="$seconds" -max_len=2048 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=scripts/fuzz/http/crashes/ -print_final_stats=1 \
    scripts/fuzz/http/corpus scripts/fuzz/http/seeds
