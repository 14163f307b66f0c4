#!/usr/bin/env bash
# Issue #19: loading a table, Herald against BIRD, side by side in one run. Per run:
#   BIRD:   `bird` started on a configuration with N static IPv4 /32s (`protocol static`,
#           blackhole) in a fresh network namespace (`unshare -n`: it talks to no kernel table
#           and no network); the time from exec until `birdc show route count` says N, and
#           BIRD's VmRSS and VmHWM then.
#   Herald: the same N /32s as one NDJSON `POST /v1/routes:batch` into a fresh database (the
#           answer comes after the durable COMMIT, synchronous=FULL); curl's wall time, and
#           Herald's VmRSS and VmHWM (the peak during the load) after.
# Prints each run, then the medians and the ratios Herald/BIRD (time and peak RSS), with the load
# average before each run.
#   scripts/bench/bird-load.sh [--runs R] [--port P] [N]      (default N = 1000000, R = 3)
# Root (for unshare), bird2 installed. Release build of herald unless HERALD_BIN is set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=3
count=1000000
port=18479
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        [0-9]*) count=$1; shift ;;
        *) echo "usage: $0 [--runs R] [--port P] [N]" >&2; exit 2 ;;
    esac
done
source "$here/lib.sh"
bird_bin=$(command -v bird || true)
[ -n "$bird_bin" ] || { echo "bird is not installed (Debian package bird2)" >&2; exit 1; }
herald_release_bin

dir=$(mktemp -d /tmp/herald-bird-load-$$.XXXX)
pid=
bird_pid=
stop_all() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi
    if [ -n "$bird_pid" ]; then kill "$bird_pid" 2>/dev/null || true; wait "$bird_pid" 2>/dev/null || true; bird_pid=; fi
}
trap 'stop_all; rm -rf "$dir"' EXIT

python3 - "$dir" "$count" <<'PY'
import ipaddress, sys
directory, count = sys.argv[1], int(sys.argv[2])
base = int(ipaddress.IPv4Address("10.0.0.0"))
with open(directory + "/routes.ndjson", "w") as ndjson, open(directory + "/bird.conf", "w") as conf:
    conf.write("router id 10.255.0.1;\nprotocol device {}\nprotocol static load {\n  ipv4;\n")
    for i in range(count):
        address = ipaddress.IPv4Address(base + i)
        ndjson.write('{"prefix":"%s/32"}\n' % address)
        conf.write("  route %s/32 blackhole;\n" % address)
    conf.write("}\n")
PY
echo "table: $count IPv4 /32s; $(stat -c %s "$dir/routes.ndjson") bytes of NDJSON, $(stat -c %s "$dir/bird.conf") bytes of bird.conf"
echo "bird: $("$bird_bin" --version 2>&1 | head -1); herald: $herald_bin"

kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$2/status"; }
bird_times=(); herald_times=(); bird_peaks=(); herald_peaks=()
for run in $(seq "$runs"); do
    # BIRD
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    start=$(date +%s.%N)
    unshare -n "$bird_bin" -f -c "$dir/bird.conf" -s "$dir/bird.ctl" -P "$dir/bird.pid" > "$dir/bird.log" 2>&1 &
    bird_pid=$!
    loaded=0
    for _ in $(seq 6000); do
        counted=$(birdc -s "$dir/bird.ctl" show route count 2>/dev/null | awk '/routes/ {print $1; exit}' || true)
        if [ "${counted:-0}" -ge "$count" ] 2>/dev/null; then loaded=1; break; fi
        sleep 0.02
    done
    end=$(date +%s.%N)
    [ "$loaded" = 1 ] || { echo "BIRD never held $count routes:" >&2; cat "$dir/bird.log" >&2; exit 1; }
    bird_wall=$(echo "$end - $start" | bc)
    bird_rss=$(kib VmRSS "$bird_pid"); bird_hwm=$(kib VmHWM "$bird_pid")
    stop_all

    # Herald
    db="$dir/run-$run.db"
    start_herald_serve "$db" "$port" "$dir/serve.log"
    out=$(curl -s -o "$dir/answer.json" -w '%{http_code} %{time_total}' -X POST -H 'Content-Type: application/x-ndjson' \
        --data-binary @"$dir/routes.ndjson" "http://127.0.0.1:$port/v1/routes:batch")
    code=${out% *}
    herald_wall=${out#* }
    [ "$code" = 200 ] || { echo "run $run: HTTP $code: $(head -c 500 "$dir/answer.json")" >&2; exit 1; }
    herald_rss=$(kib VmRSS "$pid"); herald_hwm=$(kib VmHWM "$pid")
    stop_all
    rm -f "$db" "$db-wal" "$db-shm"

    printf 'run %d (load before: %s)\n' "$run" "$load"
    printf '  BIRD   %6.2f s  RSS %4d MiB  VmHWM %4d MiB\n' "$bird_wall" $((bird_rss / 1024)) $((bird_hwm / 1024))
    printf '  Herald %6.2f s  RSS %4d MiB  VmHWM %4d MiB  (%.2f× the time, %.2f× the peak)\n' "$herald_wall" \
        $((herald_rss / 1024)) $((herald_hwm / 1024)) "$(echo "$herald_wall / $bird_wall" | bc -l)" "$(echo "$herald_hwm / $bird_hwm" | bc -l)"
    bird_times+=("$bird_wall"); herald_times+=("$herald_wall"); bird_peaks+=("$bird_hwm"); herald_peaks+=("$herald_hwm")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
bt=$(median "${bird_times[@]}"); ht=$(median "${herald_times[@]}")
bp=$(median "${bird_peaks[@]}"); hp=$(median "${herald_peaks[@]}")
printf 'median of %d: BIRD %.2f s, %d MiB peak; Herald %.2f s, %d MiB peak; Herald/BIRD: %.2f× the time, %.2f× the peak RSS\n' \
    "$runs" "$bt" $((${bp%.*} / 1024)) "$ht" $((${hp%.*} / 1024)) "$(echo "$ht / $bt" | bc -l)" "$(echo "$hp / $bp" | bc -l)"
