#!/usr/bin/env bash
# herald-k8s-sync: makes Herald's allocations follow the cluster's Services of type LoadBalancer.
#
#   HERALD_SERVER=http://127.0.0.1:8179 HERALD_TOKEN=… herald-k8s-sync.sh          # one pass
#   while sleep 10; do herald-k8s-sync.sh; done                                     # or a CronJob
#
# For each Service of type LoadBalancer it PUTs the allocation `namespace.service` (idempotent):
#   labels          the Service's labels, plus k8s.namespace / k8s.service and the managed-by mark
#   pool            the annotation herald.io/pool, else chosen by Herald from the labels
#   address         spec.loadBalancerIP, when set
#   traffic_policy  local for externalTrafficPolicy: Local (next hops: the nodes running ready
#                   endpoints, from the EndpointSlices), else cluster (the pool's nodes)
# and writes the address Herald chose into the Service's status. Nodes are registered from
# `kubectl get nodes` (InternalIP addresses), each with the health check in
# HERALD_NODE_HEALTH_CHECK when it is set (a JSON object, e.g. kube-proxy's health endpoint:
# '{"kind":"http","port":10256,"path":"/healthz"}'; see docs/health-checks.md): a node PUT
# replaces the node, so a check set by hand would be dropped on the next pass.
# Allocations it made whose Service is gone are released (every page of the list is read;
# HERALD_PAGE_LIMIT sets the page size, 1000 by default). Needs kubectl, curl and jq. Exit
# status: 0 done, 1 some Service failed (the others were still synced), 2 Herald or the
# cluster could not be read.
set -uo pipefail

server=${HERALD_SERVER:-http://127.0.0.1:8179}
server=${server%/}
[[ $server == http://* ]] || server="http://$server"
auth=()
[[ -n ${HERALD_TOKEN:-} ]] && auth=(-H "Authorization: Bearer $HERALD_TOKEN")
managed_label="herald.io/managed-by"
managed_value="k8s-sync"
# Allocations asked for per request when listing (Herald pages every list; 1..10000).
page_limit=${HERALD_PAGE_LIMIT:-1000}
[[ $page_limit =~ ^[1-9][0-9]*$ ]] || { printf 'herald-k8s-sync: HERALD_PAGE_LIMIT is not a number\n' >&2; exit 2; }
status=0

log() { printf 'herald-k8s-sync: %s\n' "$*" >&2; }

# api METHOD PATH [JSON] → prints the body; fails (non-zero) on a non-2xx answer, logging it.
api() {
    local method=$1 path=$2 body=${3:-} out code
    out=$(mktemp)
    if [[ -n $body ]]; then
        code=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "${auth[@]}" -H 'Content-Type: application/json' --data-binary "$body" "$server$path") || { rm -f "$out"; return 2; }
    else
        code=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "${auth[@]}" "$server$path") || { rm -f "$out"; return 2; }
    fi
    if [[ $code != 2* ]]; then
        log "$method $path answered $code: $(jq -r '[.title, .detail] | map(select(. != null)) | join(": ")' "$out" 2>/dev/null || cat "$out")"
        rm -f "$out"
        return 1
    fi
    cat "$out"
    rm -f "$out"
}

services=$(kubectl get services --all-namespaces -o json) || { log "cannot list Services"; exit 2; }
nodes=$(kubectl get nodes -o json) || { log "cannot list nodes"; exit 2; }
api GET /healthz >/dev/null || { log "Herald at $server does not answer"; exit 2; }
health_check=${HERALD_NODE_HEALTH_CHECK:-null}
jq -e 'type == "object" or type == "null"' <<<"$health_check" >/dev/null 2>&1 || { log "HERALD_NODE_HEALTH_CHECK is not a JSON object"; exit 2; }

# Nodes: name and InternalIP addresses (IPv4 and/or IPv6).
while IFS=$'\t' read -r node addresses; do
    [[ -z $node ]] && continue
    api PUT "/v1/nodes/$node" "$(jq -cn --argjson a "$addresses" --argjson hc "$health_check" \
        '{addresses: $a, labels: {"k8s.node": "true"}} + (if $hc == null then {} else {health_check: $hc} end)')" >/dev/null || status=1
done < <(jq -r '.items[] | [.metadata.name, ([.status.addresses[] | select(.type == "InternalIP") | .address] | tostring)] | @tsv' <<<"$nodes")

declare -A wanted=()
while IFS= read -r svc; do
    ns=$(jq -r '.metadata.namespace' <<<"$svc")
    name=$(jq -r '.metadata.name' <<<"$svc")
    allocation="$ns.$name"
    wanted[$allocation]=1
    policy=cluster
    local_nodes='[]'
    if [[ $(jq -r '.spec.externalTrafficPolicy // "Cluster"' <<<"$svc") == Local ]]; then
        policy=local
        slices=$(kubectl get endpointslices -n "$ns" -l "kubernetes.io/service-name=$name" -o json) || { log "cannot read EndpointSlices of $allocation"; status=1; continue; }
        local_nodes=$(jq -c '[.items[].endpoints[]? | select(.conditions.ready != false) | .nodeName | select(. != null)] | unique' <<<"$slices")
        if [[ $local_nodes == '[]' ]]; then
            log "$allocation: externalTrafficPolicy Local but no ready endpoint; leaving it as it is"
            continue
        fi
    fi
    body=$(jq -c --arg policy "$policy" --argjson nodes "$local_nodes" --arg key "$managed_label" --arg value "$managed_value" '
        {labels: ((.metadata.labels // {}) + {"k8s.namespace": .metadata.namespace, "k8s.service": .metadata.name, ($key): $value}),
         traffic_policy: $policy}
        + (if $policy == "local" then {nodes: $nodes} else {} end)
        + (if .metadata.annotations["herald.io/pool"] then {pool: .metadata.annotations["herald.io/pool"]} else {} end)
        + (if .spec.loadBalancerIP then {address: .spec.loadBalancerIP} else {} end)' <<<"$svc")
    reply=$(api PUT "/v1/allocations/$allocation" "$body") || { status=1; continue; }
    addresses=$(jq -c '[.addresses[] | {ip: .}]' <<<"$reply")
    current=$(jq -c '[.status.loadBalancer.ingress // [] | .[] | {ip: .ip}]' <<<"$svc")
    if [[ $addresses != "$current" ]]; then
        kubectl patch service -n "$ns" "$name" --subresource=status --type=merge \
            -p "$(jq -cn --argjson i "$addresses" '{status: {loadBalancer: {ingress: $i}}}')" >/dev/null \
            || { log "$allocation: cannot write the address into the Service status"; status=1; }
    fi
done < <(jq -c '.items[] | select(.spec.type == "LoadBalancer")' <<<"$services")

# Release what this script allocated for Services that no longer exist. The list pages: every
# page is read (following next_cursor) before anything is released, so that an allocation past
# the first page is seen, and a failure part-way releases nothing.
existing=()
path="/v1/allocations?label=$managed_label%3D$managed_value&limit=$page_limit"
cursor=
pages=0
while :; do
    page=$(api GET "$path${cursor:+&cursor=$cursor}") || exit 2
    mapfile -t -O "${#existing[@]}" existing < <(jq -r '.allocations[].name' <<<"$page")
    cursor=$(jq -r '.next_cursor // empty | @uri' <<<"$page")
    [[ -z $cursor ]] && break
    # A server handing out cursors for ever must not keep this loop going.
    (( ++pages < 100000 )) || { log "GET /v1/allocations: more than 100000 pages; giving up"; exit 2; }
done
for allocation in "${existing[@]}"; do
    [[ -z $allocation || -n ${wanted[$allocation]:-} ]] && continue
    api DELETE "/v1/allocations/$allocation" >/dev/null && log "released $allocation (Service deleted)" || status=1
done

exit $status
