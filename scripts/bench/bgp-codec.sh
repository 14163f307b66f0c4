#!/usr/bin/env bash
# Release micro-benchmark of the BGP codec.
#
#   scripts/bench/bgp-codec.sh [prefixes] [rounds] [--extended]    # defaults: 1000000 5
#
# Builds IP, BGP and the benchmark with -O into .build/bench/ (separately from `swift build`)
# and prints prefixes/s for packing /32s into UPDATEs and for decoding them back.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=.build/bench
SWIFTC="${SWIFTC:-swiftc}"
mkdir -p "$OUT"
FLAGS=(-parse-as-library -O -wmo -swift-version 6
       -enable-upcoming-feature ExistentialAny -enable-upcoming-feature InternalImportsByDefault)
"$SWIFTC" "${FLAGS[@]}" -module-name IP -emit-module -emit-module-path "$OUT/IP.swiftmodule" \
    -c Sources/IP/*.swift -o "$OUT/IP.o"
"$SWIFTC" "${FLAGS[@]}" -module-name BGP -I "$OUT" -emit-module -emit-module-path "$OUT/BGP.swiftmodule" \
    -c Sources/BGP/*.swift -o "$OUT/BGP.o"
"$SWIFTC" "${FLAGS[@]}" -module-name BGPCodecBenchmark -I "$OUT" scripts/bench/BGPCodecBenchmark.swift \
    "$OUT/IP.o" "$OUT/BGP.o" -o "$OUT/bgp-codec-benchmark"
"$OUT/bgp-codec-benchmark" "$@"
