import Foundation
import Glibc
import Synchronization
import Testing
@testable import HeraldCore
import IP
import IPAM
import Store

private func result(_ ok: Bool, _ detail: String = "", at: Int64 = 0) -> HealthCheckResult {
    HealthCheckResult(ok: ok, detail: detail.isEmpty ? (ok ? "connected" : "connection refused") : detail, at: at)
}

/// The rise/fall state machine as a transcript: one result in, the transition (or none) out.
@Suite struct NodeHealthStateTests {
    @Test func fallFailuresInARowTakeANodeDownAndRiseSuccessesBringItBack() {
        var health = NodeHealth(rise: 2, fall: 3)
        #expect(health.state == .unknown && health.state.serves)
        #expect(health.record(result(true, at: 1)) == nil)
        #expect(health.state == .up && health.lastChange == 1 && health.transitions == 0, "unknown → up is silent: routes do not change")

        #expect(health.record(result(false, at: 2)) == nil)
        #expect(health.record(result(false, at: 3)) == nil)
        #expect(health.state == .up && health.failures == 2)
        let down = health.record(result(false, at: 4))
        #expect(down == NodeHealth.Transition(from: .up, to: .down, streak: 3, result: result(false, at: 4)))
        #expect(health.state == .down && !health.state.serves && health.lastChange == 4 && health.transitions == 1)
        #expect(health.record(result(false, at: 5)) == nil, "already down: no second transition")

        #expect(health.record(result(true, at: 6)) == nil)
        #expect(health.state == .down, "one success is not rise = 2")
        let up = health.record(result(true, at: 7))
        #expect(up?.from == .down && up?.to == .up && up?.streak == 2)
        #expect(health.state == .up && health.transitions == 2 && health.lastChange == 7)
        #expect(health.checks == 7 && health.failedChecks == 4)
    }

    @Test func aSuccessBreaksAFailureStreakAndAFailureBreaksARiseStreak() {
        var health = NodeHealth(rise: 2, fall: 2)
        for ok in [false, true, false, true, false] { #expect(health.record(result(ok)) == nil) }
        #expect(health.state == .up, "never two failures in a row")
        #expect(health.record(result(false))?.to == .down)
        for ok in [true, false, true, false] { #expect(health.record(result(ok)) == nil) }
        #expect(health.state == .down, "never two successes in a row")
        #expect(health.record(result(true)) == nil)
        #expect(health.record(result(true))?.to == .up)
    }

    @Test func anUncheckedNodeGoesDownAfterFallFailures() {
        var health = NodeHealth(rise: 1, fall: 1)
        let down = health.record(result(false, "timed out after 300 ms", at: 9))
        #expect(down?.from == .unknown && down?.to == .down)
        #expect(NodeHealth.reason(node: "n2", target: "tcp 192.0.2.12:443", down!) == "node n2 down: tcp 192.0.2.12:443 timed out after 300 ms ×1")
        #expect(health.record(result(true))?.to == .up, "rise 1")
    }

    @Test func theReasonNamesTheNodeTheTargetTheResultAndTheStreak() {
        var health = NodeHealth(rise: 2, fall: 3)
        var last: NodeHealth.Transition?
        for _ in 0..<3 { last = health.record(result(false)) }
        let check = HealthCheck(kind: .tcp, port: 443)
        #expect(NodeHealth.reason(node: "n2", target: check.target(try! IPAddress(parsing: "192.0.2.12")), last!)
                == "node n2 down: tcp 192.0.2.12:443 connection refused ×3")
        let http = HealthCheck(kind: .http, port: 8080, path: "/healthz")
        #expect(http.target(try! IPAddress(parsing: "2001:db8::1")) == "http [2001:db8::1]:8080/healthz")
    }
}

/// Down nodes leave routes; fail_open keeps a route with no healthy node on all of them.
@Suite struct HealthDerivationTests {
    func fixture(failOpen: Bool) throws -> DomainFixture {
        let f = try DomainFixture()
        let spec = PoolSpec(blocks: [try PoolBlock(parsing: "192.0.2.0/24")], failOpen: failOpen)
        _ = try f.write { db in try Pools.put(db, name: "lb", spec: spec, now: 1) }
        let check = HealthCheck(kind: .tcp, port: 443)
        for index in 1...3 {
            let spec = NodeSpec(addresses: [try IPAddress(parsing: "100.64.0.1\(index)")], healthCheck: index == 3 ? nil : check)
            _ = try f.write { db in try Nodes.put(db, name: "n\(index)", spec: spec, now: 1) }
        }
        _ = try f.allocate("web", AllocationSpec(pool: "lb", trafficPolicy: .local, nodes: ["n1", "n2"]))
        _ = try f.allocate("all")
        _ = try f.write { db in
            try StaticRoutes.put(db, name: "pods", spec: StaticRouteSpec(prefix: try IPPrefix(parsing: "10.1.0.0/24"), nextHops: [.node("n1")]), now: 1)
        }
        return f
    }

    func routes(_ f: DomainFixture, down: Set<String>) throws -> [String: [String]] {
        try f.store.read { db in try DesiredRoutes.derive(db, down: down) }
            .reduce(into: [:]) { $0[$1.key.description] = $1.value.paths.map(\.nextHop.description) }
    }

    @Test func aDownNodeLeavesEveryRouteAndARouteWithNoHealthyNodeIsWithdrawn() throws {
        let f = try fixture(failOpen: false)
        #expect(try routes(f, down: []) == ["192.0.2.1/32": ["100.64.0.11", "100.64.0.12"],
                                            "192.0.2.2/32": ["100.64.0.11", "100.64.0.12", "100.64.0.13"],
                                            "10.1.0.0/24": ["100.64.0.11"]])
        #expect(try routes(f, down: ["n2"]) == ["192.0.2.1/32": ["100.64.0.11"],
                                                "192.0.2.2/32": ["100.64.0.11", "100.64.0.13"],
                                                "10.1.0.0/24": ["100.64.0.11"]])
        #expect(try routes(f, down: ["n1", "n2"]) == ["192.0.2.2/32": ["100.64.0.13"]],
                "web has no healthy node left: withdrawn, as is the static route via n1")
        #expect(try routes(f, down: ["n3"]) == routes(f, down: []), "n3 has no health check: never down")
        // Only some prefixes, same rule.
        let only = try f.store.read { db in try DesiredRoutes.derive(db, only: [try IPPrefix(parsing: "192.0.2.1/32")], down: ["n1"]) }
        #expect(only.values.first?.paths.map(\.nextHop.description) == ["100.64.0.12"])
    }

    @Test func failOpenKeepsTheRouteOnAllItsNodesWhenNoneIsHealthy() throws {
        let f = try fixture(failOpen: true)
        #expect(try routes(f, down: ["n2"])["192.0.2.1/32"] == ["100.64.0.11"], "one healthy node left: only it")
        #expect(try routes(f, down: ["n1", "n2"])["192.0.2.1/32"] == ["100.64.0.11", "100.64.0.12"], "none healthy: all of them")
        let pool = try f.store.read { db in try Pools.get(db, name: "lb") }
        #expect(pool?.spec.failOpen == true)
    }

    @Test func healthTransitionsGoThroughTheCommitterWithTheirReason() async throws {
        let f = try fixture(failOpen: false)
        let committer = try Committer(store: f.store)
        let down = try await committer.setNodeHealth("n2", down: true, reason: "node n2 down: tcp 100.64.0.12:443 connection refused ×3", now: 50)
        #expect(down.updated.map(\.prefix.description) == ["192.0.2.1/32", "192.0.2.2/32"])
        #expect(committer.downNodes == ["n2"])
        // An allocation change meanwhile is derived with n2 still down.
        try await committer.mutate(reason: "allocation web changed", affecting: [try IPPrefix(parsing: "192.0.2.1/32")]) { db in
            try Allocations.put(db, name: "web", spec: AllocationSpec(pool: "lb", trafficPolicy: .local, nodes: ["n2", "n3"]), now: 51)
        }
        #expect(committer.desiredRoutes[try IPPrefix(parsing: "192.0.2.1/32")]?.paths.map(\.nextHop.description) == ["100.64.0.13"])
        try await committer.setNodeHealth("n2", down: false, reason: "node n2 up: tcp 100.64.0.12:443 connected ×2", now: 52)
        #expect(committer.downNodes.isEmpty)
        #expect(committer.desiredRoutes == (try f.store.read { db in try DesiredRoutes.derive(db) }), "the same table a restart derives")
        let history = try f.store.read { db in try RouteHistory.list(db, within: try IPPrefix(parsing: "192.0.2.2/32")) }
        #expect(history.map(\.reason).suffix(2) == ["node n2 down: tcp 100.64.0.12:443 connection refused ×3",
                                                    "node n2 up: tcp 100.64.0.12:443 connected ×2"])
    }
}

/// The health_check and fail_open fields through the API.
@Suite struct HealthAPITests {
    @Test func nodesCarryAHealthCheckWithDefaultsAndPoolsFailOpen() async throws {
        let api = try APIFixture()
        let created = try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11"],"health_check":{"kind":"http","port":8080,"path":"/healthz","fall":2}}"#)
        #expect(created.status == 201, "\(created.text)")
        let check = created["health_check"] as? [String: Any]
        #expect(check?["kind"] as? String == "http" && check?["port"] as? Int == 8080 && check?["path"] as? String == "/healthz")
        #expect(check?["interval"] as? Int == 2000 && check?["timeout"] as? Int == 1000 && check?["rise"] as? Int == 2 && check?["fall"] as? Int == 2)
        let fetched = try await api.call(.GET, "/v1/nodes/n1")
        #expect((fetched["health_check"] as? [String: Any])?["path"] as? String == "/healthz")
        // Removing the check.
        let plain = try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11"]}"#)
        #expect(plain.status == 200 && plain["health_check"] == nil, "\(plain.text)")

        let pool = try await api.call(.PUT, "/v1/pools/lb", #"{"blocks":["192.0.2.0/24"],"fail_open":true}"#)
        #expect(pool.status == 201 && pool["fail_open"] as? Bool == true, "\(pool.text)")
        let other = try await api.call(.PUT, "/v1/pools/lb2", #"{"blocks":["198.51.100.0/24"]}"#)
        #expect(other["fail_open"] as? Bool == false)
    }

    @Test func badHealthChecksAreRefusedNamingEachField() async throws {
        let api = try APIFixture()
        let bad = try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11"],"health_check":{"kind":"tcp","port":0,"path":"/x","interval":50,"timeout":0,"rise":0,"fall":101,"address":"0.0.0.0"}}"#)
        #expect(bad.status == 422, "\(bad.text)")
        let fields = Set(((bad["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
        #expect(fields == ["health_check.port", "health_check.path", "health_check.interval", "health_check.timeout", "health_check.rise",
                           "health_check.fall", "health_check.address"], "\(bad.text)")
        let kind = try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11"],"health_check":{"kind":"icmp","port":1}}"#)
        #expect(kind.status == 422 && kind.text.contains("health_check.kind"), "\(kind.text)")
        let slow = try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11"],"health_check":{"kind":"tcp","port":1,"interval":1000,"timeout":2000}}"#)
        #expect(slow.status == 422 && slow.text.contains("must not exceed the interval"), "\(slow.text)")
        let unknown = try await api.call(.PUT, "/v1/nodes/n1", #"{"addresses":["100.64.0.11"],"health_check":{"kind":"tcp","port":1,"every":5}}"#)
        #expect(unknown.status == 400 && unknown.text.contains("health_check.every"), "\(unknown.text)")
    }
}

// MARK: - Checks on the event loop against real sockets

/// A TCP listener on a loopback address that accepts and drops connections on its own thread
/// (so the accept queue never fills), until closed.
final class TestListener: @unchecked Sendable {
    let address: String
    let port: UInt16
    private let fd: Int32
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    let accepted = Atomic<Int>(0)

    init(address: String = "127.0.0.1", port: UInt16 = 0) throws {
        self.address = address
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        inet_pton(AF_INET, address, &sin.sin_addr)
        let bound = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 1024) == 0 else {
            Glibc.close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.fd = fd
        self.port = UInt16(bigEndian: sin.sin_port)
        let thread = Thread { [self] in
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while !stopped.load(ordering: .relaxed) {
                if poll(&poller, 1, 20) > 0 {
                    let client = accept(fd, nil, nil)
                    if client >= 0 {
                        accepted.add(1, ordering: .relaxed)
                        Glibc.close(client)
                    }
                }
            }
            done.signal()
        }
        thread.start()
    }

    /// Stops accepting and closes the socket: connects are refused from now on.
    func close() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        done.wait()
        Glibc.close(fd)
    }

    deinit { close() }
}

func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ probe: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await probe() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw HealthTestError("timed out waiting for \(what)")
}

struct HealthTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
