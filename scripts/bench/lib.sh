# Shared by the BGP benchmark wrappers: a release build of herald (unless HERALD_BIN is set).
# Sourced; sets $herald_bin.
herald_release_bin() {
    if [ -n "${HERALD_BIN:-}" ]; then
        herald_bin=$HERALD_BIN
    else
        local root
        root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
        echo "building herald (release)…" >&2
        (cd "$root" && swift build -c release --product herald >&2)
        herald_bin="$(cd "$root" && swift build -c release --show-bin-path)/herald"
    fi
    [ -x "$herald_bin" ] || { echo "no herald binary at $herald_bin" >&2; exit 1; }
}

# `herald serve` on loopback with a fresh database DB (API on PORT, BGP on PORT + 1), its log
# appended to LOG; sets $pid and returns once /healthz answers (or exits with the log).
start_herald_serve() {
    local db=$1 port=$2 log=$3
    "$herald_bin" serve --db "$db" --api-listen "127.0.0.1:$port" --bgp-listen "127.0.0.1:$((port + 1))" \
        --asn 65001 --router-id 10.255.0.1 --log-level error >> "$log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do curl -sf "127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "herald did not start:" >&2; cat "$log" >&2; exit 1
}

# The loopback-only benchmarks (batch-load.sh, batch-resend.sh) set HERALD_BENCH_LOOPBACK_ONLY.
[ -n "${HERALD_BENCH_LOOPBACK_ONLY:-}" ] || [ "$(id -u)" = 0 ] || { echo "run as root: the benchmarks create network namespaces" >&2; exit 1; }
