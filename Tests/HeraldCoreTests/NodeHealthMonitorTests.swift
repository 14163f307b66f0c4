import BGPSpeaker
import Foundation
import Glibc
import HTTPServer
import Logging
import Sockets
import Synchronization
import Testing
@testable import HeraldCore
import IP
import IPAM
import Store

private func ip(_ text: String) -> IPAddress { try! IPAddress(parsing: text) }
private func prefix(_ text: String) -> IPPrefix { try! IPPrefix(parsing: text) }

/// CPU seconds (user + system) the calling thread has used, from /proc/thread-self/stat.
private func threadCPUSeconds() -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/thread-self/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return 0 }
    // Fields after "(comm)": state is field 3, utime 14 and stime 15 (proc(5)).
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// The checker on a real event loop against real sockets on loopback addresses.
@Suite(.serialized, .timeLimit(.minutes(2)), .timingSensitive) struct NodeHealthMonitorTests {
    struct Setup {
        let directory = ScratchDirectory()
        let store: Store
        let committer: Committer
        let loop: EventLoop
        let bus = EventPublisher(epoch: 1)
        let monitor: NodeHealthMonitor

        init(failOpen: Bool = false, checks: [String: HealthCheck], maxInFlight: Int = 64,
             commitObserver: (@Sendable (Double) -> Void)? = nil) throws {
            store = try Store(path: directory.file("herald.db"))
            let spec = PoolSpec(blocks: [try PoolBlock(parsing: "192.0.2.0/24")], failOpen: failOpen)
            try store.write { db in
                _ = try Pools.put(db, name: "lb", spec: spec, now: 1)
                for (index, name) in checks.keys.sorted().enumerated() {
                    _ = try Nodes.put(db, name: name, spec: NodeSpec(addresses: [.v4(IPv4Address(100 << 24 | 64 << 16 | UInt32(index + 1)))],
                                                                     healthCheck: checks[name]), now: 1)
                }
                _ = try Allocations.put(db, name: "web", spec: AllocationSpec(pool: "lb"), now: 1)
            }
            committer = try Committer(store: store, events: bus, commitObserver: commitObserver)
            loop = try EventLoop(name: "health-test")
            monitor = NodeHealthMonitor(loop: loop, committer: committer, maxInFlight: maxInFlight)
        }

        func paths() -> [String] {
            committer.desiredRoutes[prefix("192.0.2.1/32")]?.paths.compactMap(\.node) ?? []
        }

        func stop() async {
            await monitor.stop()
            committer.finish()
            loop.shutdown()
        }
    }

    @Test func closingAListenerTakesItsNodeOutAndReopeningPutsItBack() async throws {
        let listeners = try (2...4).map { try TestListener(address: "127.0.0.\($0)") }
        var checks: [String: HealthCheck] = [:]
        for (index, listener) in listeners.enumerated() {
            checks["n\(index + 1)"] = HealthCheck(kind: .tcp, port: Int(listener.port), address: ip(listener.address),
                                                  interval: 200, timeout: 150, rise: 2, fall: 2)
        }
        let setup = try Setup(checks: checks)
        let (_, events) = setup.bus.subscribe(after: nil)
        try await setup.monitor.start()
        try await waitUntil("every node up") { setup.monitor.status.values.filter { $0.health.state == .up }.count == 3 }
        #expect(setup.paths() == ["n1", "n2", "n3"])

        listeners[1].close()
        let closed = ContinuousClock.now
        try await waitUntil("n2 withdrawn") { setup.paths() == ["n1", "n3"] }
        let took = ContinuousClock.now - closed
        // The bound the issue sets is interval × fall + 1 s (checked against BIRD by the interop
        // test); here, in a debug build beside whatever else the suite runs in parallel, allow
        // 3 s more so a loaded machine does not fail it.
        #expect(took < .milliseconds(200 * 2 + 4000), "within interval × fall + 4 s, took \(took)")
        let status = try #require(setup.monitor.status(of: "n2"))
        #expect(status.health.state == .down && status.health.transitions == 1)
        #expect(status.health.lastResult?.detail == "connection refused")
        #expect(setup.committer.downNodes == ["n2"])
        let metrics = try Metrics().render(speaker: nil, store: setup.store, routes: 1, health: Array(setup.monitor.status.values))
        #expect(metrics.contains(#"herald_node_health_up{node="n2"} 0"#) && metrics.contains(#"herald_node_health_up{node="n1"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"herald_node_health_transitions_total{node="n2"} 1"#))

        let reopened = try TestListener(address: listeners[1].address, port: listeners[1].port)
        defer { reopened.close() }
        try await waitUntil("n2 back") { setup.paths() == ["n1", "n2", "n3"] }

        let history = try setup.store.read { db in try RouteHistory.list(db, within: prefix("192.0.2.1/32")) }
        let target = "tcp 127.0.0.3:\(listeners[1].port)"
        #expect(history.map(\.reason).suffix(2) == ["node n2 down: \(target) connection refused ×2", "node n2 up: \(target) connected ×2"])
        #expect(history.last?.action == .update)

        // The event stream: the node event and the route update, both with the reason.
        var seen: [EventPublisher.Event] = []
        for await event in events {
            seen.append(event)
            if seen.filter({ $0.kind == "node" }).count == 2 { break }
        }
        let nodeEvents = seen.filter { $0.kind == "node" }.map(\.json)
        #expect(nodeEvents.first?.contains(#""from":"up","node":"n2","reason":"node n2 down: \#(target) connection refused ×2""#) == true, "\(nodeEvents)")
        #expect(nodeEvents.last?.contains(#""to":"up""#) == true && nodeEvents.last?.contains(#""transitions":2"#) == true, "\(nodeEvents)")
        #expect(seen.contains { $0.kind == "route" && $0.json.contains("node n2 down") })
        for listener in listeners { listener.close() }
        await setup.stop()
    }

    @Test func failOpenKeepsTheRouteWhenEveryNodeIsDownAndRemovingACheckPutsTheNodeBack() async throws {
        // Nothing listens on these ports: every check is refused.
        let closed = try TestListener(address: "127.0.0.5")
        let port = closed.port
        closed.close()
        let check = HealthCheck(kind: .tcp, port: Int(port), address: ip("127.0.0.5"), interval: 100, timeout: 50, rise: 1, fall: 1)
        let setup = try Setup(failOpen: true, checks: ["n1": check, "n2": check])
        try await setup.monitor.start()
        try await waitUntil("both down") { setup.committer.downNodes == ["n1", "n2"] }
        #expect(setup.paths() == ["n1", "n2"], "fail_open: no healthy node, so all of them")

        // Without fail_open the route goes.
        try await setup.committer.mutate(reason: "pool lb changed") { db in
            _ = try Pools.put(db, name: "lb", spec: PoolSpec(blocks: [try PoolBlock(parsing: "192.0.2.0/24")], failOpen: false), now: 2)
        }
        #expect(setup.paths() == [])

        // n1's check is removed: it serves again at once.
        try await setup.committer.mutate(reason: "node n1 changed") { db in
            _ = try Nodes.put(db, name: "n1", spec: NodeSpec(addresses: [ip("100.64.0.1")]), now: 3)
        }
        // (The API's node change tells the checks in commit order; this test writes the row itself.)
        try await setup.committer.commit { change in try change.nodesChanged() }
        try await waitUntil("the checks follow the node change") { setup.monitor.status(of: "n1") == nil }
        // An unchecked node is never down, so the node change itself brought it back; the
        // monitor then forgets it.
        #expect(setup.paths() == ["n1"])
        try await waitUntil("n1 no longer down") { setup.committer.downNodes == ["n2"] }
        #expect(setup.monitor.status(of: "n1") == nil)
        let reasons = try setup.store.read { db in try RouteHistory.list(db) }.map(\.reason)
        #expect(reasons.last == "node n1 changed", "\(reasons)")
        await setup.stop()
    }

    /// Forty nodes go down while a commit holds the committer: their transitions wait in one
    /// list and go into the next commit together, not one commit each, one after the other (so
    /// the list never holds more than one commit's worth). None is lost: every node is out of
    /// the routes, with its history row and its node event.
    @Test func nodesFlippingTogetherShareOneCommitAndEveryTransitionIsRecorded() async throws {
        let closed = try TestListener(address: "127.0.0.11")
        let port = closed.port
        closed.close()
        let check = HealthCheck(kind: .tcp, port: Int(port), address: ip("127.0.0.11"), interval: 100, timeout: 100, rise: 1, fall: 1)
        let names = (1...40).map { String(format: "n%02d", $0) }
        let commits = Atomic<Int>(0)
        let setup = try Setup(checks: Dictionary(uniqueKeysWithValues: names.map { ($0, check) }),
                              commitObserver: { _ in commits.add(1, ordering: .relaxed) })
        let (_, events) = setup.bus.subscribe(after: nil)
        let holding = Atomic<Bool>(false)
        let release = DispatchSemaphore(value: 0)
        let held = Task { [committer = setup.committer] in
            try await committer.commit { _ in
                holding.store(true, ordering: .relaxed)
                release.wait()
            }
        }
        try await waitUntil("the committer held") { holding.load(ordering: .relaxed) }

        try await setup.monitor.start()
        // A transition is queued before the status shows it.
        try await waitUntil("every check failed") { setup.monitor.status.values.filter { $0.health.state == .down }.count == names.count }
        release.signal()
        try await held.value
        try await waitUntil("every node out of the routes") { setup.committer.downNodes == Set(names) }
        let healthCommits = commits.load(ordering: .relaxed) - 1
        #expect((1...2).contains(healthCommits), "\(names.count) transitions in \(healthCommits) commits")

        let reasons = try setup.store.read { db in try RouteHistory.list(db, within: prefix("192.0.2.1/32"), limit: 1000) }.map(\.reason)
        #expect(Set(reasons.filter { $0.contains(" down: ") }.map { String($0.split(separator: " ")[1]) }) == Set(names), "\(reasons)")
        var nodeEvents: [String] = []
        for await event in events where event.kind == "node" {
            nodeEvents.append(event.json)
            if nodeEvents.count == names.count { break }
        }
        #expect(nodeEvents.allSatisfy { $0.contains(#""to":"down""#) })
        await setup.stop()
    }

    @Test func httpChecksWantA2xxStatus() async throws {
        let loop = try EventLoop(name: "http-backend")
        defer { loop.shutdown() }
        let router = Router()
        let healthy = Atomic<Bool>(true)
        router.get("/healthz") { _, _ in healthy.load(ordering: .relaxed) ? .text("ok") : .text("draining", status: .serviceUnavailable) }
        var configuration = HTTPServer.Configuration(address: ip("127.0.0.6"), port: 0)
        configuration.accessLog = false
        let server = HTTPServer(loop: loop, configuration: configuration, router: router)
        try await server.start()
        let port = Int(try #require(server.localAddress).port)
        let setup = try Setup(checks: ["n1": HealthCheck(kind: .http, port: port, path: "/healthz", address: ip("127.0.0.6"),
                                                        // Generous: the whole suite runs at once on two cores.
                                                        interval: 2000, timeout: 1500, rise: 1, fall: 2)])
        try await setup.monitor.start()
        try await waitUntil("n1 up") { setup.monitor.status(of: "n1")?.health.state == .up }
        #expect(setup.monitor.status(of: "n1")?.health.lastResult?.detail == "HTTP 200")
        healthy.store(false, ordering: .relaxed)
        // The route change commits just after the monitor's state changes.
        try await waitUntil("n1 taken out of the routes") { setup.committer.downNodes == ["n1"] }
        #expect(setup.monitor.status(of: "n1")?.health.state == .down)
        #expect(setup.monitor.status(of: "n1")?.health.lastResult?.detail == "HTTP 503")
        let reasons = try setup.store.read { db in try RouteHistory.list(db) }.map(\.reason)
        #expect(reasons.last == "node n1 down: http 127.0.0.6:\(port)/healthz HTTP 503 ×2", "\(reasons)")
        await setup.stop()
        await server.shutdown(gracePeriod: .seconds(1))
    }

    @Test func checksReachIPv6Targets() async throws {
        let loop = try EventLoop(name: "http-backend-v6")
        defer { loop.shutdown() }
        let router = Router()
        router.get("/") { _, _ in .text("ok") }
        var configuration = HTTPServer.Configuration(address: ip("::1"), port: 0)
        configuration.accessLog = false
        let server = HTTPServer(loop: loop, configuration: configuration, router: router)
        try await server.start()
        let port = Int(try #require(server.localAddress).port)
        let setup = try Setup(checks: ["n1": HealthCheck(kind: .http, port: port, address: ip("::1"), interval: 100, timeout: 100, rise: 1, fall: 1),
                                       "n2": HealthCheck(kind: .tcp, port: port, address: ip("::1"), interval: 100, timeout: 100, rise: 1, fall: 1)])
        try await setup.monitor.start()
        try await waitUntil("both up") { setup.monitor.status.values.filter { $0.health.state == .up }.count == 2 }
        #expect(setup.monitor.status(of: "n1")?.target == "http [::1]:\(port)/")
        #expect(setup.monitor.status(of: "n1")?.health.lastResult?.detail == "HTTP 200")
        #expect(setup.monitor.status(of: "n2")?.health.lastResult?.detail == "connected")
        await setup.stop()
        await server.shutdown(gracePeriod: .seconds(1))
    }

    @Test func aCheckThatNeverAnswersTimesOut() async throws {
        // A listener whose accept queue is full never completes the handshake: SYNs are dropped.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.7", &sin.sin_addr)
        _ = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = Int(UInt16(bigEndian: sin.sin_port))
        // Fill the queue (backlog 0 admits one) with connections nobody accepts.
        var fillers: [Int32] = []
        defer { for f in fillers { close(f) } }
        for _ in 0..<3 {
            let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            _ = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            fillers.append(c)
        }
        try await Task.sleep(for: .milliseconds(100))
        let setup = try Setup(checks: ["n1": HealthCheck(kind: .tcp, port: port, address: ip("127.0.0.7"), interval: 200, timeout: 100, rise: 1, fall: 1)])
        try await setup.monitor.start()
        try await waitUntil("n1 down") { setup.monitor.status(of: "n1")?.health.state == .down }
        #expect(setup.monitor.status(of: "n1")?.health.lastResult?.detail == "timed out after 100 ms")
        await setup.stop()
    }

    /// 200 nodes checked every second on the event loop that also runs a BGP session with a
    /// 3 s hold time (keepalive every second): every node gets its checks, the session never
    /// drops, keepalives keep coming once a second, and the loop stays responsive.
    @Test func twoHundredNodesAtOneSecondLeaveBGPKeepalivesOnSchedule() async throws {
        let listener = try TestListener(address: "127.0.0.8")
        defer { listener.close() }
        var checks: [String: HealthCheck] = [:]
        for index in 0..<200 {
            checks[String(format: "n%03d", index)] = HealthCheck(kind: .tcp, port: Int(listener.port), address: ip("127.0.0.8"),
                                                                interval: 1000, timeout: 500, rise: 2, fall: 3)
        }
        let setup = try Setup(checks: checks, maxInFlight: 32)
        var logger = Logger(label: "test")
        logger.logLevel = .error
        func settings(_ id: UInt8, _ host: String) -> BGPSpeaker.SpeakerSettings {
            BGPSpeaker.SpeakerSettings(asn: 65000 + UInt32(id), routerID: IPv4Address(10, 0, 0, id), listenAddresses: [ip(host)], listenPort: 0,
                            holdTime: 3, connectRetryTime: 1, idleHoldTime: 1, maximumIdleHoldTime: 2)
        }
        let a = Speaker(settings: settings(1, "127.0.0.9"), loop: setup.loop, logger: logger)
        let b = Speaker(settings: settings(2, "127.0.0.10"), loop: setup.loop, logger: logger)
        try await a.start()
        try await b.start()
        func port(_ s: Speaker) async -> UInt16 { UInt16(await s.listeningAddresses().first!.split(separator: ":").last!)! }
        let pb = await port(b)
        try await a.addPeer(PeerSettings(name: "b", address: ip("127.0.0.10"), asn: 65002, port: pb, localAddress: ip("127.0.0.9")))
        let pa = await port(a)
        try await b.addPeer(PeerSettings(name: "a", address: ip("127.0.0.9"), asn: 65001, port: pa, localAddress: ip("127.0.0.10"), passive: true))
        try await waitUntil("session up") { await b.peer(named: "a")?.state == .established }

        // A 50 ms loop timer measures how late the loop runs things while the checks go on.
        let lateness = Mutex<(max: UInt64, samples: Int)>((0, 0))
        let ticking = Atomic<Bool>(true)
        let loop = setup.loop
        @Sendable func tick(_ due: UInt64) {
            loop.scheduleTimer(after: .milliseconds(50)) {
                let late = EventLoop.now() &- due
                lateness.withLock { $0 = (max($0.max, late), $0.samples + 1) }
                if ticking.load(ordering: .relaxed) { tick(EventLoop.now() + 50_000_000) }
            }
        }
        loop.execute { tick(EventLoop.now() + 50_000_000) }

        try await setup.monitor.start()
        // Warm-up: every node's first check lands inside the first second.
        try await waitUntil("every node checked", timeout: .seconds(3)) { setup.monitor.status.values.allSatisfy { $0.health.checks > 0 } }
        let keepalivesBefore = await b.peer(named: "a")!.counters.messagesIn
        let checksBefore = setup.monitor.status.values.reduce(0) { $0 + $1.health.checks }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpuBefore = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        let loopBefore = try await loop.submit { threadCPUSeconds() }
        let started = ContinuousClock.now
        try await Task.sleep(for: .seconds(6))
        let elapsed = ContinuousClock.now - started
        let loopCPU = try await loop.submit { threadCPUSeconds() } - loopBefore
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6 - cpuBefore
        ticking.store(false, ordering: .relaxed)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let statuses = setup.monitor.status.values
        let checksRun = statuses.reduce(0) { $0 + $1.health.checks } - checksBefore
        let keepalives = await b.peer(named: "a")!.counters.messagesIn - keepalivesBefore
        let slowest = statuses.compactMap { $0.health.lastResult?.milliseconds }.max() ?? 0
        let (maxLate, samples) = lateness.withLock { $0 }
        print("""
            health-bench: 200 nodes, interval 1 s, \(String(format: "%.2f", seconds)) s: \(checksRun) checks \
            (\(String(format: "%.1f", Double(checksRun) / seconds))/s), \(listener.accepted.load(ordering: .relaxed)) accepted, \
            event-loop thread CPU \(String(format: "%.3f", loopCPU)) s (\(String(format: "%.1f", loopCPU / seconds * 100))% of one core; \
            whole test process \(String(format: "%.1f", cpu / seconds * 100))%), \
            slowest last check \(String(format: "%.2f", slowest)) ms, BGP messages from peer \(keepalives), \
            loop timer max lateness \(String(format: "%.1f", Double(maxLate) / 1e6)) ms over \(samples) ticks
            """)
        #expect(Double(checksRun) >= 200 * (seconds - 1), "every node checked about once a second: \(checksRun) in \(seconds) s")
        #expect(statuses.allSatisfy { $0.health.state == .up && $0.health.failedChecks == 0 }, "no check failed or timed out")
        #expect(keepalives >= Int(seconds) - 1, "keepalives once a second: \(keepalives) in \(seconds) s")
        let flaps = await b.peer(named: "a")?.counters.flaps
        let stateA = await a.peer(named: "b")?.state
        #expect(flaps == 0 && stateA == .established)
        // Generous: on a shared CI machine the thread itself may wait for a core; the checks
        // take well under a millisecond each.
        #expect(maxLate < 250_000_000, "the loop never ran a timer 250 ms late: \(Double(maxLate) / 1e6) ms")
        #expect(loopCPU / seconds < 0.25, "low CPU on the loop thread (checks, BGP, timers): \(loopCPU) s in \(seconds) s")
        await a.shutdown(mode: ShutdownMode.withdraw(message: nil))
        await b.shutdown(mode: ShutdownMode.withdraw(message: nil))
        await setup.stop()
    }
}
