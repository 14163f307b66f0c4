#!/usr/bin/env bash
# Runs schemathesis (PyPI) against a live `herald serve` with openapi.yaml as the contract, with
# every check (`--checks all`): no 5xx, every response matches its schema, schema-valid requests
# are accepted (positive_data_acceptance) and schema-violating ones refused
# (negative_data_rejection, issue #17 item 9), undeclared methods, missing headers, etc.
#
#   scripts/schemathesis.sh [path/to/herald] [max-examples]     # defaults: the release build, 25
#
# scripts/schemathesis.toml narrows what JSON Schema cannot say, each with its reason: opaque
# cursors, prefix filters and the history peer filter get real values; writes whose valid bodies
# may break a rule across fields or against stored state may answer 422 (never 400).
# GET /v1/events is a never-ending Server-Sent Events stream; EventsAPI tests cover it.
# The seed is fixed (--seed; HERALD_SCHEMATHESIS_SEED=n explores another) and the examples
# bounded, so a run is repeatable and takes a minute or two.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$(swift build -c release --show-bin-path)/herald}
examples=${2:-25}
version=4.32.5  # .ci/run installs the same
schemathesis --version 2>/dev/null | grep -q "$version" || python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$version"
# The fixture server's speaker connects to every peer schemathesis makes up and probes every
# node's health check, at whatever addresses it generates: the server and schemathesis run in a
# network namespace of their own with only loopback (`unshare -n`; `-r` too when not root), so
# nothing leaves the machine.
if [ -z "${HERALD_SCHEMATHESIS_ISOLATED:-}" ]; then
    isolate=(unshare -n)
    [ "$(id -u)" = 0 ] || isolate=(unshare -r -n)
    exec env HERALD_SCHEMATHESIS_ISOLATED=1 "${isolate[@]}" bash -c 'ip link set lo up && exec bash "$0" "$@"' \
        "$(pwd)/scripts/schemathesis.sh" "$@"
fi
dir=$(mktemp -d)
port=18398
"$bin" serve --db "$dir/h.db" --api-listen 127.0.0.1:$port --bgp-listen 127.0.0.1:0 --asn 64512 --router-id 192.0.2.1 \
    --log-level error > "$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf 127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.05; done
api() { curl -sf -X "$1" "127.0.0.1:$port$2" -H 'Content-Type: application/json' -d "$3" >/dev/null; }
# Objects for the {name} paths, named as the examples in openapi.yaml name them.
api PUT /v1/nodes/n1 '{"addresses":["100.64.0.11","fd64::11"]}'
api PUT /v1/nodes/n2 '{"addresses":["100.64.0.12"]}'
api POST /v1/pools '{"name":"lb","blocks":["192.0.2.0/24","2001:db8::/120"]}'
api POST /v1/peers '{"name":"r1","address":"100.64.0.1","asn":65001}'
api PUT /v1/allocations/default.web '{"pool":"lb"}'
api POST /v1/routes/pods-n1 '{"prefix":"10.244.1.0/24","next_hops":["n1"]}'
schemathesis --config-file scripts/schemathesis.toml run openapi.yaml -u "http://127.0.0.1:$port" --checks all \
    --exclude-path /v1/events --max-examples "$examples" --workers 1 --seed ${HERALD_SCHEMATHESIS_SEED:-20261127} --request-timeout 10
echo "schemathesis: passed; herald still answering: $(curl -sf 127.0.0.1:$port/healthz)"
