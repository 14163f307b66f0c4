import BGP
import Foundation
import IP
import Synchronization
import Testing
import TestSupport

// Node health checks against a real router: `herald serve` in one namespace, BIRD (ADD-PATH
// receive, so it sees every next hop) in another. The check targets are TCP listeners the test
// itself opens on loopback addresses inside Herald's namespace (health_check.address), while the
// nodes' next hops are on-link 100.64.x addresses BIRD accepts: a loopback next hop would be
// rejected by the router, and the check address override is how an operator points a check at
// another address than the next hop (docs/health-checks.md).

@Suite(.timeLimit(.minutes(3)), .timingSensitive)
struct HealthCheckInteropTests {
    static let heraldASN: UInt32 = 65020
    static let birdASN: UInt32 = 65010

    @Test(.interop(.bird))
    func closingAListenerWithdrawsItsNextHopAtBIRDAndReopeningRestoresIt() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let base = link.b.ipv4.v4.value & 0xFFFF_FF00
        let nodes = (0xF1...0xF3).map { IPv4Address(base | UInt32($0)) }
        try link.b.namespace.check(["ip", "addr", "add", "\(IPv4Address(base | 0xFE))/28", "dev", link.b.interface])

        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: try network.directory("herald"), asn: Self.heraldASN)
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: Self.birdASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: Self.heraldASN, addPathReceive: true, families: [.ipv4])]),
            network: network)
        var listeners = try (2...4).map { try NamespaceListener(in: link.a.namespace, address: "127.0.0.\($0)") }
        defer { for listener in listeners { listener.close() } }

        let interval = 500, fall = 3, rise = 2
        try herald.must("POST", "/v1/peers", #"{"name":"bird","address":"\#(link.b.ipv4)","asn":\#(Self.birdASN),"add_path_send":true}"#, status: 201)
        try herald.must("PUT", "/v1/pools/lb", #"{"blocks":["203.0.113.0/28"]}"#, status: 201)
        for (index, address) in nodes.enumerated() {
            let check = #"{"kind":"tcp","address":"\#(listeners[index].address)","port":\#(listeners[index].port),"interval":\#(interval),"timeout":300,"rise":\#(rise),"fall":\#(fall)}"#
            try herald.must("PUT", "/v1/nodes/n\(index + 1)", #"{"addresses":["\#(address)"],"health_check":\#(check)}"#, status: 201)
        }
        try herald.must("PUT", "/v1/allocations/default.web", #"{"pool":"lb"}"#, status: 201)
        let route = try IPPrefix(parsing: "203.0.113.1/32")

        try await bird.waitEstablished(with: link.a.ipv4)
        try await bird.waitForRoute(route) { Set($0.compactMap(\.nextHop)) == Set(nodes.map(IPAddress.v4)) }
        _ = try await eventually("every node up") {
            let list = try herald.must("GET", "/v1/nodes", status: 200).json["nodes"] as? [[String: Any]] ?? []
            return list.allSatisfy { ($0["health"] as? [String: Any])?["state"] as? String == "up" } ? true : nil
        }

        // n2's listener goes away: its next hop leaves BIRD within interval × fall + 1 s.
        listeners[1].close()
        let closed = ContinuousClock.now
        // Each probe runs birdc in BIRD's namespace, which takes a while on a loaded machine: the
        // path may have left during the last probe, so its duration is the measurement's grain.
        let bound = Duration.milliseconds(interval * fall + 1000)
        func measureWithdrawal(since closed: ContinuousClock.Instant) async throws -> Duration {
            let probeStarted = Mutex(ContinuousClock.now)
            _ = try await eventually("BIRD to drop n2's path", timeout: .seconds(15), every: .milliseconds(50)) {
                probeStarted.withLock { $0 = ContinuousClock.now }
                let hops = Set(try bird.receivedRoutes().filter { $0.prefix == route }.compactMap(\.nextHop))
                return hops == [.v4(nodes[0]), .v4(nodes[2])] ? true : nil
            }
            let withdrawal = ContinuousClock.now - closed
            let grain = ContinuousClock.now - probeStarted.withLock { $0 }
            print("health-interop: n2's next hop left BIRD \(withdrawal) after its listener closed (bound \(bound), last probe took \(grain))")
            return withdrawal - grain
        }
        var withdrawals = [try await measureWithdrawal(since: closed)]

        let n2 = try herald.must("GET", "/v1/nodes/n2", status: 200).json
        let health = n2["health"] as? [String: Any] ?? [:]
        #expect(health["state"] as? String == "down", "\(n2)")
        #expect(health["transitions"] as? Int == 1, "\(n2)")
        #expect((health["last_result"] as? [String: Any])?["detail"] as? String == "connection refused", "\(n2)")
        #expect(health["last_change"] is String, "\(n2)")
        let cli = try link.a.namespace.run([HeraldProcess.binary, "nodes"])
        let row = cli.stdout.split(separator: "\n").first { $0.hasPrefix("n2 ") }.map(String.init) ?? ""
        #expect(cli.succeeded && row.contains("tcp 127.0.0.3:") && row.contains("down") && row.contains("connection refused"), "\(cli)")
        // The status page shows it (headless Chromium in Herald's namespace, as the seed test does).
        if let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            let dom = try link.a.namespace.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                                                "--user-data-dir=\(try network.directory("chromium"))", "--virtual-time-budget=5000",
                                                "--dump-dom", "http://127.0.0.1:8179/?live=0"], timeout: .seconds(60))
            let row = dom.stdout.components(separatedBy: #"<tr data-node="n2">"#).dropFirst().first?.components(separatedBy: "</tr>").first ?? ""
            #expect(row.contains(#"<td class="state down">down</td>"#) && row.contains("connection refused"), "\(dom)")
        } else if Interop.isRequired {
            Issue.record("chromium is missing (Debian package chromium)")
        }
        let metrics = try herald.must("GET", "/metrics", status: 200).body
        #expect(metrics.contains(#"herald_node_health_up{node="n2"} 0"#) && metrics.contains(#"herald_node_health_up{node="n1"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"herald_node_health_transitions_total{node="n2"} 1"#), "\(metrics)")
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
            let file = try network.directory("metrics") + "/metrics.txt"
            try metrics.write(toFile: file, atomically: true, encoding: .utf8)
            let check = try Command.run(["sh", "-c", "/usr/bin/promtool check metrics < \(file)"])
            #expect(check.succeeded && check.stdout.isEmpty && check.stderr.isEmpty, "\(check)")
        }

        // The listener comes back on the same address and port: so does the next hop.
        let port = listeners[1].port
        listeners[1] = try NamespaceListener(in: link.a.namespace, address: "127.0.0.3", port: port)
        let reopened = ContinuousClock.now
        try await bird.waitForRoute(route, timeout: .seconds(10)) { Set($0.compactMap(\.nextHop)) == Set(nodes.map(IPAddress.v4)) }
        print("health-interop: n2's next hop back at BIRD \(ContinuousClock.now - reopened) after its listener reopened (rise \(rise) × \(interval) ms)")

        let history = try herald.must("GET", "/v1/history?prefix=203.0.113.1", status: 200).json["events"] as? [[String: Any]] ?? []
        let reasons = history.compactMap { $0["reason"] as? String }
        #expect(reasons == ["allocation default.web created",
                            "node n2 down: tcp 127.0.0.3:\(port) connection refused ×\(fall)",
                            "node n2 up: tcp 127.0.0.3:\(port) connected ×\(rise)"], "\(reasons)")
        #expect(history.compactMap { $0["action"] as? String } == ["announce", "update", "update"])
        let paths = history.map { ($0["paths"] as? [[String: Any]] ?? []).compactMap { $0["node"] as? String } }
        #expect(paths == [["n1", "n2", "n3"], ["n1", "n3"], ["n1", "n2", "n3"]], "\(paths)")

        // The bound: within interval × fall + 1 s. The suite runs dozens of tests at once on two
        // cores, so a cycle that misses it is repeated (at most twice more, every figure printed)
        // and the best one is judged: the claim is what Herald does, not what a starved debug
        // build beside a slowloris test does.
        while withdrawals.min()! > bound, withdrawals.count < 3 {
            try await Task.sleep(for: .seconds(3))  // rise × interval and then some: n2 is up again
            listeners[1].close()
            let again = ContinuousClock.now
            withdrawals.append(try await measureWithdrawal(since: again))
            listeners[1] = try NamespaceListener(in: link.a.namespace, address: "127.0.0.3", port: port)
            try await bird.waitForRoute(route, timeout: .seconds(15)) { Set($0.compactMap(\.nextHop)) == Set(nodes.map(IPAddress.v4)) }
        }
        #expect(withdrawals.min()! <= bound, "withdrawn in \(withdrawals) (best of \(withdrawals.count)), bound interval × fall + 1 s = \(bound)")
        #expect(herald.stop() == 0, "herald exits 0 on SIGTERM:\n\(herald.child.logTail())")
    }
}
