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
[ "$(id -u)" = 0 ] || { echo "run as root: the benchmarks create network namespaces" >&2; exit 1; }
