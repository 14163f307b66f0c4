#!/usr/bin/env bash
# Fuzz the dqlite wire codec (framing, response and request decoding) with libFuzzer.
#
#   scripts/fuzz/dqlite.sh [seconds]        # default 600
#
# Compiles Sources/DqliteWire together with scripts/fuzz/dqlite/FuzzDqliteWire.swift
# (swiftc -sanitize=fuzzer,address, one module, so the test-only encoders are in reach) into
# .build/fuzz/, separately from `swift build`, then runs the fuzzer on one core. The corpus grows
# in .build/fuzz/dqlite-corpus (seeded from scripts/fuzz/dqlite/seeds.txt); crashes land in
# .build/fuzz/dqlite-artifacts/ — turn each into a row of
# Tests/DqliteWireTests/FuzzRegressionTests.swift.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN="${1:-600}"
OUT=.build/fuzz
SWIFTC="${SWIFTC:-swiftc}"
mkdir -p "$OUT/dqlite-corpus" "$OUT/dqlite-artifacts"

echo "building DqliteWire with fuzzer instrumentation…"
"$SWIFTC" -parse-as-library -O -g -sanitize=fuzzer,address -swift-version 6 \
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature InternalImportsByDefault \
    -module-name DqliteWireFuzz Sources/DqliteWire/*.swift scripts/fuzz/dqlite/FuzzDqliteWire.swift \
    -o "$OUT/fuzz-dqlite-wire"

# Seeds: one hex line each (whole messages).
n=0
grep -v '^#' scripts/fuzz/dqlite/seeds.txt | while read -r line; do
    [ -z "$line" ] && continue
    n=$((n + 1))
    echo "$line" | tr -d ' ' | xxd -r -p > "$OUT/dqlite-corpus/seed-$n"
done

echo "fuzzing for ${SECONDS_TO_RUN}s…"
"$OUT/fuzz-dqlite-wire" "$OUT/dqlite-corpus" \
    -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$OUT/dqlite-artifacts/" -print_final_stats=1 2>&1 | tee "$OUT/dqlite-last-run.log"
echo "crashes kept in $OUT/dqlite-artifacts/: $(ls "$OUT/dqlite-artifacts" | wc -l)"
