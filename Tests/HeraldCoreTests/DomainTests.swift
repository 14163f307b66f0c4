import Foundation
import Testing
@testable import HeraldCore
import IP
import IPAM
import Store

/// A fresh store with helpers for the domain tests.
struct DomainFixture {
    let directory = ScratchDirectory()
    let store: Store

    init() throws { store = try Store(path: directory.file("herald.db")) }

    func write<T: Sendable>(_ body: (Database) throws -> T) throws -> T { try store.write(body) }

    func pool(_ name: String, _ blocks: [String], selector: [String: String] = [:], nodeSelector: [String: String] = [:],
              allowFirstLast: Bool? = nil, disabled: Bool = false) throws -> Pool {
        let spec = PoolSpec(blocks: try blocks.map { try PoolBlock(parsing: $0) }, serviceSelector: selector, nodeSelector: nodeSelector,
                            allowFirstLastIPs: allowFirstLast, disabled: disabled)
        return try write { db in try Pools.put(db, name: name, spec: spec, now: 1).pool }
    }

    func node(_ name: String, _ addresses: [String], labels: [String: String] = [:]) throws {
        let spec = NodeSpec(addresses: try addresses.map { try IPAddress(parsing: $0) }, labels: labels)
        try write { db in _ = try Nodes.put(db, name: name, spec: spec, now: 1) }
    }

    func allocate(_ name: String, _ spec: AllocationSpec = AllocationSpec(pool: "lb")) throws -> AllocationChange {
        try write { db in try Allocations.put(db, name: name, spec: spec, now: 2) }
    }

    func routes() throws -> [String: [String]] {
        let derived = try store.read { db in try DesiredRoutes.derive(db) }
        return derived.reduce(into: [:]) { $0[$1.key.description] = $1.value.paths.map(\.nextHop.description) }
    }
}

/// Asserts that `body` throws the DomainError case matched by `matches`, whose text contains `text`.
func expectDomainError(_ text: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error containing \"\(text)\"", sourceLocation: sourceLocation)
    } catch let error as DomainError {
        #expect(error.description.contains(text), "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a DomainError, got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct NodeDomainTests {
    @Test func createReplaceAndValidate() throws {
        let f = try DomainFixture()
        try f.node("n1", ["100.64.0.2", "fd64::2"], labels: ["zone": "a"])
        let node = try #require(try f.store.read { db in try Nodes.get(db, name: "n1") })
        #expect(node.addresses.map(\.description) == ["100.64.0.2", "fd64::2"])
        #expect(node.labels == ["zone": "a"])
        try f.node("n1", ["100.64.0.3"])
        #expect(try f.store.read { db in try Nodes.get(db, name: "n1") }?.addresses.map(\.description) == ["100.64.0.3"])

        expectDomainError("already belongs to node \"n1\"") { try f.node("n2", ["100.64.0.3"]) }
        expectDomainError("addresses: a node needs at least one address") { try f.node("n3", []) }
        expectDomainError("at most one ipv4 address") { try f.node("n3", ["100.64.0.4", "100.64.0.5"]) }
        expectDomainError("cannot be a next hop") { try f.node("n3", ["127.0.0.1"]) }
        expectDomainError("name: may contain only") { try f.node("n 3", ["100.64.0.9"]) }
    }

    @Test func aNodeInUseCannotBeDeleted() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/28"])
        try f.node("n1", ["100.64.0.2"])
        _ = try f.allocate("default.web", AllocationSpec(pool: "lb", trafficPolicy: .local, nodes: ["n1"]))
        expectDomainError("next hop of allocation \"default.web\"") { try f.write { db in try Nodes.delete(db, name: "n1") } }
        try f.write { db in _ = try Allocations.delete(db, name: "default.web") }
        try f.write { db in try Nodes.delete(db, name: "n1") }
        expectDomainError("node \"n1\" does not exist") { try f.write { db in try Nodes.delete(db, name: "n1") } }
    }
}

@Suite struct PoolDomainTests {
    @Test func usageCountsUsableAddresses() throws {
        let f = try DomainFixture()
        let pool = try f.pool("lb", ["192.0.2.0/28", "2001:db8::/120"])
        #expect(pool.usage[.ipv4] == PoolUsage(size: 14, allocated: 0))
        #expect(pool.usage[.ipv6]?.size == 255, "the Subnet-Router anycast address is kept back")
        _ = try f.allocate("a")
        #expect(try f.store.read { db in try Pools.get(db, name: "lb") }?.usage[.ipv4]?.free == 13)
    }

    @Test func overlappingPoolIsNamed() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24"])
        expectDomainError("block 192.0.2.128/25 overlaps block 192.0.2.0/24 of pool \"lb\"") { _ = try f.pool("other", ["192.0.2.128/25"]) }
        expectDomainError("blocks: block 198.51.100.0/24 overlaps block 198.51.100.7-198.51.100.9") {
            _ = try f.pool("other", ["198.51.100.0/24", "198.51.100.7-198.51.100.9"])
        }
        expectDomainError("leaves no usable address") { _ = try f.pool("tiny", ["203.0.113.9/32"], allowFirstLast: false) }
    }

    @Test func blocksHoldingAllocationsStay() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/25", "198.51.100.0/24"])
        _ = try f.allocate("default.web")  // 192.0.2.1
        // Growing the block that holds it is fine; dropping it is not; dropping the unused one is.
        _ = try f.pool("lb", ["192.0.2.0/24", "198.51.100.0/24"])
        #expect(try f.allocate("default.web").allocation.addresses.map(\.description) == ["192.0.2.1"], "kept through the resize")
        expectDomainError("still holds addresses of allocation \"default.web\"") { _ = try f.pool("lb", ["198.51.100.0/24"]) }
        _ = try f.pool("lb", ["192.0.2.0/24"])
        expectDomainError("still has allocation \"default.web\"") { try f.write { db in try Pools.delete(db, name: "lb") } }
        expectDomainError("still holds addresses") { _ = try f.pool("lb", ["192.0.2.2-192.0.2.20"]) }
        // Keeping network and broadcast back again would take the allocated 198.51.100.0 away.
        _ = try f.pool("edge", ["198.51.100.0/30"], allowFirstLast: true)
        #expect(try f.allocate("edge.svc", AllocationSpec(pool: "edge")).allocation.addresses.map(\.description) == ["198.51.100.0"])
        expectDomainError("would no longer hand out") { _ = try f.pool("edge", ["198.51.100.0/30"]) }
    }
}

@Suite struct AllocationDomainTests {
    @Test func repeatingAPutReturnsTheSameAddress() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24"])
        let first = try f.allocate("default.web")
        #expect(first.created && first.assigned.map(\.description) == ["192.0.2.1"])
        let again = try f.allocate("default.web")
        #expect(!again.created && again.assigned.isEmpty && again.released.isEmpty)
        #expect(again.allocation.addresses == first.allocation.addresses)
        #expect(try f.allocate("default.api").allocation.addresses.map(\.description) == ["192.0.2.2"])
    }

    @Test func requestedAddresses() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24"])
        let wanted = try IPAddress(parsing: "192.0.2.50")
        #expect(try f.allocate("a", AllocationSpec(pool: "lb", addresses: [wanted])).allocation.addresses == [wanted])
        expectDomainError("already allocated to \"a\"") { _ = try f.allocate("b", AllocationSpec(pool: "lb", addresses: [wanted])) }
        expectDomainError("not in a usable block of pool \"lb\"") {
            _ = try f.allocate("b", AllocationSpec(pool: "lb", addresses: [try IPAddress(parsing: "192.0.2.255")]))
        }
        // Moving to another address releases the old one.
        let moved = try f.allocate("a", AllocationSpec(pool: "lb", addresses: [try IPAddress(parsing: "192.0.2.60")]))
        #expect(moved.released == [wanted] && moved.assigned.map(\.description) == ["192.0.2.60"])
        #expect(try f.allocate("b", AllocationSpec(pool: "lb", addresses: [wanted])).allocation.addresses == [wanted])
    }

    @Test func sharingKeyShares() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24"])
        let tcp = try f.allocate("dns.tcp", AllocationSpec(pool: "lb", sharingKey: "dns"))
        let udp = try f.allocate("dns.udp", AllocationSpec(pool: "lb", sharingKey: "dns"))
        #expect(tcp.allocation.addresses == udp.allocation.addresses)
        let other = try f.allocate("web", AllocationSpec(pool: "lb", sharingKey: "web"))
        #expect(other.allocation.addresses != tcp.allocation.addresses)
        expectDomainError("already allocated") {
            _ = try f.allocate("intruder", AllocationSpec(pool: "lb", addresses: tcp.allocation.addresses, sharingKey: "other"))
        }
        #expect(try f.store.read { db in try Pools.get(db, name: "lb") }?.usage[.ipv4]?.allocated == 2, "a shared address counts once")
    }

    @Test func dualStackAndFamilies() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24", "2001:db8:1::/64"])
        let dual = try f.allocate("web", AllocationSpec(pool: "lb", family: .dual))
        #expect(dual.allocation.addresses.map(\.description) == ["192.0.2.1", "2001:db8:1::1"])
        #expect(try f.allocate("v6", AllocationSpec(pool: "lb", family: .ipv6)).allocation.addresses.map(\.description) == ["2001:db8:1::2"])
        expectDomainError("pool \"v4only\" has no usable ipv6 block") {
            _ = try f.pool("v4only", ["198.51.100.0/24"])
            _ = try f.allocate("x", AllocationSpec(pool: "v4only", family: .ipv6))
        }
    }

    @Test func exhaustionAndDisabledPools() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/30"])  // .1 and .2 usable
        _ = try f.allocate("a")
        _ = try f.allocate("b")
        expectDomainError("pool \"lb\" has no free ipv4 address") { _ = try f.allocate("c") }
        _ = try f.pool("lb", ["192.0.2.0/30"], disabled: true)
        #expect(try f.allocate("a").allocation.addresses.count == 1, "existing allocations stay")
        try f.write { db in _ = try Allocations.delete(db, name: "b") }
        expectDomainError("is disabled") { _ = try f.allocate("c") }
    }

    @Test func poolChosenByLabels() throws {
        let f = try DomainFixture()
        expectDomainError("no pool exists yet") { _ = try f.allocate("x", AllocationSpec(labels: ["tier": "web"])) }
        _ = try f.pool("default", ["192.0.2.0/24"])
        _ = try f.pool("web", ["198.51.100.0/24"], selector: ["tier": "web"])
        _ = try f.pool("web2", ["203.0.113.0/24"], selector: ["tier": "web", "zone": "b"])
        #expect(try f.allocate("a", AllocationSpec(labels: ["tier": "web"])).allocation.pool == "web")
        #expect(try f.allocate("b", AllocationSpec(labels: ["tier": "web", "zone": "b"])).allocation.pool == "web2", "most specific wins")
        #expect(try f.allocate("c", AllocationSpec(labels: ["app": "x"])).allocation.pool == "default", "empty selector is the fallback")
        _ = try f.pool("web3", ["100.64.10.0/24"], selector: ["zone": "b", "tier": "db"])
        _ = try f.pool("web4", ["100.64.11.0/24"], selector: ["zone": "b", "tier": "web", "x": "y"])
        _ = try f.pool("web5", ["100.64.12.0/24"], selector: ["zone": "b", "extra": "1"])
        expectDomainError("match several pools equally (\"web2\", \"web5\")") {
            _ = try f.allocate("d", AllocationSpec(labels: ["tier": "web", "zone": "b", "extra": "1"]))
        }
        expectDomainError("pool: pool \"nope\" does not exist") { _ = try f.allocate("e", AllocationSpec(pool: "nope")) }
    }

    @Test func validationNamesEveryField() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24"])
        do {
            _ = try f.allocate("Bad Name", AllocationSpec(pool: "lb", addresses: [try IPAddress(parsing: "2001:db8::1")], family: .ipv4,
                                                          sharingKey: "", trafficPolicy: .local, nodes: ["ghost"]))
            Issue.record("expected validation errors")
        } catch DomainError.invalid(let errors) {
            #expect(Set(errors.map(\.field)) == ["name", "sharing_key", "addresses[0]", "nodes[0]"])
        }
    }

    @Test func movingPoolsReleasesAddresses() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24"])
        _ = try f.pool("other", ["198.51.100.0/24"])
        _ = try f.allocate("web")
        let moved = try f.allocate("web", AllocationSpec(pool: "other"))
        #expect(moved.released.map(\.description) == ["192.0.2.1"] && moved.assigned.map(\.description) == ["198.51.100.1"])
        #expect(try f.allocate("next").allocation.addresses.map(\.description) == ["192.0.2.1"], "the old address is free again")
    }

    /// 64 clients allocating from one pool at once never get the same address.
    @Test func concurrentAllocationsAreUnique() async throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24"])
        let store = f.store
        let addresses = try await withThrowingTaskGroup(of: [IPAddress].self) { group in
            for i in 0..<64 {
                group.addTask {
                    try store.write { db in try Allocations.put(db, name: "svc-\(i)", spec: AllocationSpec(pool: "lb"), now: 1).allocation.addresses }
                }
            }
            return try await group.reduce(into: [IPAddress]()) { $0 += $1 }
        }
        #expect(addresses.count == 64 && Set(addresses).count == 64)
    }
}

@Suite struct DesiredRouteTests {
    @Test func withoutNodesTheNextHopIsTheSession() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24"])
        _ = try f.allocate("web")
        #expect(try f.routes() == ["192.0.2.1/32": ["self"]])
    }

    @Test func localAndClusterPolicies() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24", "2001:db8::/64"], nodeSelector: ["role": "worker"])
        try f.node("n1", ["100.64.0.11", "fd64::11"], labels: ["role": "worker"])
        try f.node("n2", ["100.64.0.12"], labels: ["role": "worker"])
        try f.node("n3", ["100.64.0.13"], labels: ["role": "control-plane"])
        _ = try f.allocate("cluster", AllocationSpec(pool: "lb", family: .dual))
        _ = try f.allocate("local", AllocationSpec(pool: "lb", trafficPolicy: .local, nodes: ["n3"]))
        #expect(try f.routes() == [
            "192.0.2.1/32": ["100.64.0.11", "100.64.0.12"],
            "2001:db8::1/128": ["fd64::11"],  // n2 has no IPv6 address
            "192.0.2.2/32": ["100.64.0.13"],
        ])
        // Moving the local allocation's node moves its next hop.
        _ = try f.allocate("local", AllocationSpec(pool: "lb", trafficPolicy: .local, nodes: ["n1", "n2"]))
        #expect(try f.routes()["192.0.2.2/32"] == ["100.64.0.11", "100.64.0.12"])
        // A node that loses the selector's label stops serving cluster traffic.
        try f.node("n2", ["100.64.0.12"], labels: [:])
        #expect(try f.routes()["192.0.2.1/32"] == ["100.64.0.11"])
    }

    @Test func noQualifyingNodeMeansNoRoute() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24"], nodeSelector: ["role": "ingress"])
        try f.node("n1", ["100.64.0.11"])
        _ = try f.allocate("web")
        #expect(try f.routes().isEmpty)
    }

    @Test func sharedAddressesMergeAndStaticRoutesResolve() throws {
        let f = try DomainFixture()
        _ = try f.pool("lb", ["192.0.2.0/24"])
        try f.node("n1", ["100.64.0.11"])
        try f.node("n2", ["100.64.0.12"])
        _ = try f.allocate("dns.tcp", AllocationSpec(pool: "lb", sharingKey: "dns", trafficPolicy: .local, nodes: ["n1"]))
        _ = try f.allocate("dns.udp", AllocationSpec(pool: "lb", sharingKey: "dns", trafficPolicy: .local, nodes: ["n2"]))
        try f.write { db in
            _ = try StaticRoutes.put(db, name: "pods-n1", spec: StaticRouteSpec(prefix: try IPPrefix(parsing: "10.244.1.0/24"), nextHops: [.node("n1")]), now: 1)
            _ = try StaticRoutes.put(db, name: "svc", spec: StaticRouteSpec(prefix: try IPPrefix(parsing: "10.96.0.0/12"),
                                                                            nextHops: [.session, .address(try IPAddress(parsing: "100.64.0.99"))]), now: 1)
        }
        let derived = try f.store.read { db in try DesiredRoutes.derive(db) }
        let shared = try #require(derived[try IPPrefix(parsing: "192.0.2.1/32")])
        #expect(shared.paths.map(\.nextHop.description) == ["100.64.0.11", "100.64.0.12"])
        #expect(shared.sources.map(\.name) == ["dns.tcp", "dns.udp"])
        #expect(try f.routes()["10.244.1.0/24"] == ["100.64.0.11"])
        #expect(try f.routes()["10.96.0.0/12"] == ["self", "100.64.0.99"])
        expectDomainError("is already the static route \"svc\"") {
            try f.write { db in _ = try StaticRoutes.put(db, name: "dup", spec: StaticRouteSpec(prefix: try IPPrefix(parsing: "10.96.0.0/12")), now: 1) }
        }
        expectDomainError("not of the prefix's family") {
            try f.write { db in _ = try StaticRoutes.put(db, name: "x", spec: StaticRouteSpec(prefix: try IPPrefix(parsing: "10.0.0.0/8"), nextHops: [.address(try IPAddress(parsing: "fd64::1"))]), now: 1) }
        }
    }
}
