#!/usr/bin/env bash
# herald-k8s-sync: makes Herald's allocations follow the cluster's Services of type LoadBalancer.
#
#   HERALD_SERVER=http://127.0.0.1:8179 HERALD_TOKEN=… herald-k8s-sync.sh          # one pass
#   while sleep 10; do herald-k8s-sync.sh; done                                     # or a CronJob
#
# Herald's Services: type LoadBalancer with spec.loadBalancerClass herald.io/bgp, and those with
# no class unless it runs with --no-default-class (HERALD_DEFAULT_CLASS=0): turn that off where
# another implementation (k3s ServiceLB, Cilium LB IPAM, MetalLB) also takes class-less
# Services. Services of another class are never touched: not allocated, released or patched.
# For each of Herald's Services it PUTs one allocation (idempotent):
#   name            namespace.service; over 63 characters, its first 52 characters, '-' and 10
#                   hex digits of the SHA-256 of namespace/service. An allocation it made earlier
#                   for the Service is found by its labels and keeps its name.
#   labels          the Service's labels, plus k8s.namespace / k8s.service and the managed-by mark
#   pool            the annotation herald.io/pool, else chosen by Herald from the labels
#   addresses       requested by metallb.io/loadBalancerIPs, lbipam.cilium.io/ips,
#                   kube-vip.io/loadbalancerIPs (comma-separated) or spec.loadBalancerIP: one
#                   per family is held (the first); sources that disagree change nothing
#   sharing_key     metallb.io/allow-shared-ip or lbipam.cilium.io/sharing-key: Services with the
#                   same key (cluster-wide) in the same pool share their address
#   traffic_policy  local for externalTrafficPolicy: Local (next hops: the nodes running ready
#                   endpoints, from the EndpointSlices), else cluster (the pool's nodes)
# and writes the address Herald chose into the Service's status. When a Service cannot be served
# as asked, the reason (Herald's detail and each field error) becomes a Warning Event on the
# Service, once: the annotation herald.io/last-error keeps it until it changes or clears.
# Nodes are registered from `kubectl get nodes` (InternalIP addresses), each with the health
# check in HERALD_NODE_HEALTH_CHECK when it is set (a JSON object, e.g. kube-proxy's health
# endpoint: '{"kind":"http","port":10256,"path":"/healthz"}'; see docs/health-checks.md): a node
# PUT replaces the node, so a check set by hand would be dropped on the next pass.
# Allocations it made whose Service is gone are released (every page of the list is read;
# HERALD_PAGE_LIMIT sets the page size, 1000 by default). Needs kubectl, curl, jq and sha256sum.
# Exit status: 0 done, 1 some Service failed (the others were still synced), 2 Herald or the
# cluster could not be read, or a bad argument.
set -uo pipefail

log() { printf 'herald-k8s-sync: %s\n' "$*" >&2; }

server=${HERALD_SERVER:-http://127.0.0.1:8179}
server=${server%/}
[[ $server == http://* ]] || server="http://$server"
auth=()
[[ -n ${HERALD_TOKEN:-} ]] && auth=(-H "Authorization: Bearer $HERALD_TOKEN")
herald_class="herald.io/bgp"
managed_label="herald.io/managed-by"
managed_value="k8s-sync"
error_annotation="herald.io/last-error"
default_class=${HERALD_DEFAULT_CLASS:-1}
for argument; do
    case $argument in
        --default-class) default_class=1 ;;
        --no-default-class) default_class=0 ;;
        *) log "unknown argument $argument (takes --default-class or --no-default-class)"; exit 2 ;;
    esac
done
[[ $default_class == [01] ]] || { log "HERALD_DEFAULT_CLASS is neither 0 nor 1"; exit 2; }
# Allocations asked for per request when listing (Herald pages every list; 1..10000).
page_limit=${HERALD_PAGE_LIMIT:-1000}
[[ $page_limit =~ ^[1-9][0-9]*$ ]] || { log "HERALD_PAGE_LIMIT is not a number"; exit 2; }
status=0
work=$(mktemp -d) || exit 2
trap 'rm -rf "$work"' EXIT

# api METHOD PATH [JSON] → prints the body. On a non-2xx answer it logs the problem (title,
# detail and every field error), leaves a 4xx's detail and field errors in $work/problem and
# fails with 1; 2 when Herald does not answer.
api() {
    local method=$1 path=$2 body=${3:-} out="$work/answer" code
    : >"$work/problem"
    if [[ -n $body ]]; then
        code=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "${auth[@]}" -H 'Content-Type: application/json' --data-binary "$body" "$server$path") || return 2
    else
        code=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "${auth[@]}" "$server$path") || return 2
    fi
    if [[ $code != 2* ]]; then
        # The detail, then each field error: "The request is invalid. pool: pool "x" does not exist".
        jq -r '[.detail // .title, ((.errors // []) | map("\(.field): \(.message)") | join("; "))]
               | map(select(. != null and . != "")) | join(" ")' "$out" >"$work/problem" 2>/dev/null \
            || head -c 1000 "$out" >"$work/problem"
        log "$method $path answered $code$(jq -r '.title // empty | ": \(.)"' "$out" 2>/dev/null): $(<"$work/problem")"
        [[ $code == 4* ]] || : >"$work/problem"  # only a refusal is the Service's to hear about
        return 1
    fi
    cat "$out"
}

# allocation_name NAMESPACE SERVICE → namespace.service, shortened stably when over 63 characters.
allocation_name() {
    local full="$1.$2" hash
    if (( ${#full} <= 63 )); then
        printf '%s\n' "$full"
    else
        hash=$(printf '%s/%s' "$1" "$2" | sha256sum) || return 1
        printf '%s-%s\n' "${full:0:52}" "${hash:0:10}"
    fi
}

# report NAMESPACE SERVICE UID LAST REASON MESSAGE: a Warning Event on the Service when MESSAGE
# differs from LAST (its herald.io/last-error annotation), which then becomes MESSAGE. An empty
# MESSAGE clears the annotation.
report() {
    local ns=$1 name=$2 uid=$3 last=$4 reason=$5 message=${6:0:1000} now
    [[ $message == "$last" ]] && return
    if [[ -z $message ]]; then
        kubectl annotate service -n "$ns" "$name" --overwrite "$error_annotation-" >/dev/null || log "$ns/$name: cannot clear $error_annotation"
        return
    fi
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    jq -cn --arg ns "$ns" --arg name "$name" --arg uid "$uid" --arg reason "$reason" --arg message "$message" --arg now "$now" '
        {apiVersion: "v1", kind: "Event", metadata: {generateName: "\($name).", namespace: $ns},
         involvedObject: {apiVersion: "v1", kind: "Service", namespace: $ns, name: $name, uid: $uid},
         reason: $reason, message: $message, type: "Warning", source: {component: "herald-k8s-sync"},
         firstTimestamp: $now, lastTimestamp: $now, count: 1}' | kubectl create -f - >/dev/null \
        && kubectl annotate service -n "$ns" "$name" --overwrite "$error_annotation=$message" >/dev/null \
        || log "$ns/$name: cannot write the reason (an Event and $error_annotation)"
}

services=$(kubectl get services --all-namespaces -o json) || { log "cannot list Services"; exit 2; }
nodes=$(kubectl get nodes -o json) || { log "cannot list nodes"; exit 2; }
# For Local Services: the nodes with a ready endpoint (ready unset counts as ready), by Service.
echo '{}' >"$work/ready.json"
if jq -e 'any(.items[]; .spec.type == "LoadBalancer" and .spec.externalTrafficPolicy == "Local")' <<<"$services" >/dev/null; then
    kubectl get endpointslices --all-namespaces -o json \
        | jq -c 'reduce (.items[] | select(.metadata.labels["kubernetes.io/service-name"] != null)) as $slice ({};
              .["\($slice.metadata.namespace)/\($slice.metadata.labels["kubernetes.io/service-name"])"] +=
                  [$slice.endpoints[]? | select(.conditions.ready != false) | .nodeName | select(. != null)])
              | map_values(unique)' >"$work/ready.json" \
        || { log "cannot list EndpointSlices"; exit 2; }
fi
api GET /healthz >/dev/null || { log "Herald at $server does not answer"; exit 2; }
health_check=${HERALD_NODE_HEALTH_CHECK:-null}
jq -e 'type == "object" or type == "null"' <<<"$health_check" >/dev/null 2>&1 || { log "HERALD_NODE_HEALTH_CHECK is not a JSON object"; exit 2; }

# The allocations this script made, by name and by the Service in their labels. The list pages:
# every page is read (following next_cursor) before anything changes, so that an allocation past
# the first page is found, and a failure part-way changes nothing.
declare -A made_for=() by_service=()
path="/v1/allocations?label=$managed_label%3D$managed_value&limit=$page_limit"
cursor=
pages=0
while :; do
    page=$(api GET "$path${cursor:+&cursor=$cursor}") || exit 2
    while IFS=$'\t' read -r allocation key; do
        [[ -z $allocation ]] && continue
        made_for[$allocation]=$key
        [[ $key != / && -z ${by_service[$key]:-} ]] && by_service[$key]=$allocation
    done < <(jq -r '.allocations[] | [.name, "\(.labels["k8s.namespace"] // "")/\(.labels["k8s.service"] // "")"] | @tsv' <<<"$page")
    cursor=$(jq -r '.next_cursor // empty | @uri' <<<"$page")
    [[ -z $cursor ]] && break
    # A server handing out cursors for ever must not keep this loop going.
    (( ++pages < 100000 )) || { log "GET /v1/allocations: more than 100000 pages; giving up"; exit 2; }
done

# Nodes: name and InternalIP addresses (IPv4 and/or IPv6).
while IFS=$'\t' read -r node addresses; do
    [[ -z $node ]] && continue
    api PUT "/v1/nodes/$node" "$(jq -cn --argjson a "$addresses" --argjson hc "$health_check" \
        '{addresses: $a, labels: {"k8s.node": "true"}} + (if $hc == null then {} else {health_check: $hc} end)')" >/dev/null || status=1
done < <(jq -r '.items[] | [.metadata.name, ([.status.addresses[] | select(.type == "InternalIP") | .address] | tostring)] | @tsv' <<<"$nodes")

# What a Service asks for, as shell assignments: whether it is Herald's, the allocation body,
# and why it cannot be served as asked (problem: nothing changes; warning: served in part).
plan='
def list: if . == null then [] else tostring | split(",") | map(gsub("^\\s+|\\s+$"; "")) | map(select(length > 0)) end;
(.metadata.annotations // {}) as $notes
| "\(.metadata.namespace)/\(.metadata.name)" as $key
| ([{from: "metallb.io/loadBalancerIPs", ips: ($notes["metallb.io/loadBalancerIPs"] | list)},
   {from: "lbipam.cilium.io/ips", ips: ($notes["lbipam.cilium.io/ips"] | list)},
   {from: "kube-vip.io/loadbalancerIPs", ips: ($notes["kube-vip.io/loadbalancerIPs"] | list)},
   {from: "spec.loadBalancerIP", ips: (.spec.loadBalancerIP | list)}] | map(select(.ips != []))) as $asked
| ($asked[0].ips // []) as $ips
| ([$ips[] | select(contains(":") | not)][:1] + [$ips[] | select(contains(":"))][:1]) as $held
| ([{from: "metallb.io/allow-shared-ip", key: $notes["metallb.io/allow-shared-ip"]},
   {from: "lbipam.cilium.io/sharing-key", key: $notes["lbipam.cilium.io/sharing-key"]}]
  | map(select(.key != null and .key != ""))) as $sharing
| (if ($asked | map(.ips | unique) | unique | length) > 1
   then "requested addresses disagree: " + ($asked | map("\(.from) asks \(.ips | join(","))") | join(", "))
   elif ($sharing | map(.key) | unique | length) > 1
   then "sharing keys disagree: " + ($sharing | map("\(.from) is \(.key)") | join(", "))
   else "" end) as $problem
| (.spec.externalTrafficPolicy // "Cluster") as $policy
| ($ready[0][$key] // []) as $nodes
| @sh "ns=\(.metadata.namespace) name=\(.metadata.name) uid=\(.metadata.uid // "")",
  @sh "mine=\(if .spec.loadBalancerClass == null then $default == "1" else .spec.loadBalancerClass == $class end)",
  @sh "last_error=\($notes[$error] // "") problem=\($problem) is_local=\($policy == "Local") ready_nodes=\($nodes | length)",
  @sh "warning=\(if ($ips - $held) == [] or $problem != "" then "" else "Herald holds one address per family; not held: \($ips - $held | join(", "))" end)",
  @sh "current=\([.status.loadBalancer.ingress // [] | .[] | {ip: .ip}] | tojson)",
  @sh "body=\({labels: ((.metadata.labels // {}) + {"k8s.namespace": .metadata.namespace, "k8s.service": .metadata.name, ($managed): $value}),
               traffic_policy: (if $policy == "Local" then "local" else "cluster" end)}
              + (if $policy == "Local" then {nodes: $nodes} else {} end)
              + (if $notes["herald.io/pool"] then {pool: $notes["herald.io/pool"]} else {} end)
              + (if $held != [] then {addresses: $held} else {} end)
              + (if $sharing != [] then {sharing_key: $sharing[0].key} else {} end) | tojson)"'

declare -A wanted=() others=()
unsure=  # set when a Service could not be read: then nothing is released
while IFS= read -r svc; do
    plan_lines=$(jq -r --arg class "$herald_class" --arg default "$default_class" --arg error "$error_annotation" \
        --arg managed "$managed_label" --arg value "$managed_value" --slurpfile ready "$work/ready.json" "$plan" <<<"$svc") \
        || { log "cannot read a Service; releasing nothing this pass"; status=1; unsure=1; continue; }
    eval "$plan_lines"
    if [[ $mine != true ]]; then
        others[$ns/$name]=1
        continue
    fi
    allocation=${by_service[$ns/$name]:-}
    [[ -n $allocation ]] || allocation=$(allocation_name "$ns" "$name") \
        || { log "$ns/$name: cannot name its allocation; releasing nothing this pass"; status=1; unsure=1; continue; }
    wanted[$allocation]=1
    if [[ -n $problem ]]; then
        log "$ns/$name: $problem; the allocation is left as it is"
        report "$ns" "$name" "$uid" "$last_error" AllocationFailed "$problem"
        status=1
        continue
    fi
    if [[ $is_local == true && $ready_nodes == 0 ]]; then
        log "$ns/$name: externalTrafficPolicy Local but no ready endpoint; leaving it as it is"
        continue
    fi
    if ! reply=$(api PUT "/v1/allocations/$allocation" "$body"); then
        status=1
        [[ -s $work/problem ]] && report "$ns" "$name" "$uid" "$last_error" AllocationFailed "$(<"$work/problem")"
        continue
    fi
    if [[ -n $warning ]]; then
        log "$ns/$name: $warning"
        report "$ns" "$name" "$uid" "$last_error" AddressNotHeld "$warning"
    else
        report "$ns" "$name" "$uid" "$last_error" "" ""
    fi
    addresses=$(jq -c '[.addresses[] | {ip: .}]' <<<"$reply")
    if [[ $addresses != "$current" ]]; then
        kubectl patch service -n "$ns" "$name" --subresource=status --type=merge \
            -p "$(jq -cn --argjson i "$addresses" '{status: {loadBalancer: {ingress: $i}}}')" >/dev/null \
            || { log "$ns/$name: cannot write the address into the Service status"; status=1; }
    fi
done < <(jq -c '.items[] | select(.spec.type == "LoadBalancer")' <<<"$services")

# Release what this script allocated for Services that no longer exist (or are no longer of type
# LoadBalancer); an allocation of a Service that now belongs to another class is left alone.
[[ -n $unsure ]] && exit 1
for allocation in "${!made_for[@]}"; do
    [[ -n ${wanted[$allocation]:-} || -n ${others[${made_for[$allocation]}]:-} ]] && continue
    api DELETE "/v1/allocations/$allocation" >/dev/null && log "released $allocation (Service deleted)" || status=1
done

exit $status
