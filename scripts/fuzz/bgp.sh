#!/usr/bin/env bash
# Fuzz BGP message decoding with libFuzzer.
#
#   scripts/fuzz/bgp.sh [seconds]        # default 600
#
# Builds IP and BGP with coverage instrumentation (swiftc -sanitize=fuzzer,address) into
# .build/fuzz/, separately from `swift build`, then runs the fuzzer on one core. The corpus
# grows in .build/fuzz/corpus (seeded from scripts/fuzz/seeds.txt); crashes land in
# .build/fuzz/artifacts/ — turn each into a row of Tests/BGPTests/FuzzRegressionTests.swift.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN="${1:-600}"
OUT=.build/fuzz
SWIFTC="${SWIFTC:-swiftc}"
mkdir -p "$OUT/corpus" "$OUT/artifacts"
FLAGS=(-parse-as-library -O -g -sanitize=fuzzer,address -swift-version 6
       -enable-upcoming-feature ExistentialAny -enable-upcoming-feature InternalImportsByDefault)

echo "building IP and BGP with fuzzer instrumentation…"
"$SWIFTC" "${FLAGS[@]}" -module-name IP -emit-module -emit-module-path "$OUT/IP.swiftmodule" \
    -wmo -c Sources/IP/*.swift -o "$OUT/IP.o"
"$SWIFTC" "${FLAGS[@]}" -module-name BGP -I "$OUT" -emit-module -emit-module-path "$OUT/BGP.swiftmodule" \
    -wmo -c Sources/BGP/*.swift -o "$OUT/BGP.o"
"$SWIFTC" "${FLAGS[@]}" -module-name FuzzBGP -I "$OUT" scripts/fuzz/FuzzBGPMessage.swift \
    "$OUT/IP.o" "$OUT/BGP.o" -o "$OUT/fuzz-bgp-message"

# Seeds: one hex message per line.
n=0
grep -v '^#' scripts/fuzz/seeds.txt | while read -r line; do
    [ -z "$line" ] && continue
    n=$((n + 1))
    echo "$line" | tr -d ' ' | xxd -r -p > "$OUT/corpus/seed-$n"
done

echo "fuzzing for ${SECONDS_TO_RUN}s…"
"$OUT/fuzz-bgp-message" "$OUT/corpus" \
    -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$OUT/artifacts/" -print_final_stats=1 2>&1 | tee "$OUT/last-run.log"
echo "crashes kept in $OUT/artifacts/: $(ls "$OUT/artifacts" | wc -l)"
