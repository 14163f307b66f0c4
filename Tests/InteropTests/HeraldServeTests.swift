import BGP
import Foundation
import IP
import Testing
import TestSupport

// The whole product against a real router: `herald serve` (the built binary) in one namespace,
// BIRD in another, driven only through the REST API — the README's seed scenario.

private func prefix(_ text: String) -> IPPrefix { try! IPPrefix(parsing: text) }

/// `herald serve` running inside a test namespace, with its API reached through `curl` run in
/// the same namespace (the API listens on that namespace's loopback).
final class HeraldProcess: Sendable {
    let namespace: NetworkNamespace
    let child: ChildProcess
    let databasePath: String

    static var binary: String {
        let runner = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: runner).deletingLastPathComponent().appendingPathComponent("herald").path
    }

    static func start(in namespace: NetworkNamespace, on end: LinkEnd, directory: String, asn: UInt32,
                      extra: [String] = [], database: String? = nil) async throws -> HeraldProcess {
        let database = database ?? directory + "/herald.db"
        return try await start(in: namespace, serve: ["--db", database, "--api-listen", "127.0.0.1:8179", "--bgp-listen", "\(end.ipv4):179",
                                                     "--asn", "\(asn)", "--router-id", "\(end.ipv4)"] + extra,
                               directory: directory, databasePath: database)
    }

    /// `herald serve ARGUMENTS…` (which must put the API on 127.0.0.1:8179), its log in
    /// `directory`; returns once `/healthz` answers. `databasePath` is the file, or in cluster
    /// mode the replica's `--cluster-dir`.
    static func start(in namespace: NetworkNamespace, serve arguments: [String], directory: String, databasePath: String,
                      timeout: Duration = .seconds(30)) async throws -> HeraldProcess {
        let child = try namespace.spawn([binary, "serve"] + arguments, logPath: directory + "/herald-\(UInt64.random(in: 0...UInt64.max)).log")
        let herald = HeraldProcess(namespace: namespace, child: child, databasePath: databasePath)
        _ = try await eventually("herald API up", timeout: timeout) {
            if let status = child.exitStatus { throw HarnessError("herald exited with \(status):\n\(child.logTail())") }
            return (try? herald.call("GET", "/healthz"))?.status == 200 ? true : nil
        }
        return herald
    }

    private init(namespace: NetworkNamespace, child: ChildProcess, databasePath: String) {
        self.namespace = namespace
        self.child = child
        self.databasePath = databasePath
    }

    struct Reply: Sendable {
        let status: Int
        let body: String

        var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]) ?? [:] }
    }

    /// One API call; the body is JSON text.
    func call(_ method: String, _ path: String, _ body: String? = nil) throws -> Reply {
        var arguments = ["curl", "-s", "-S", "-o", "-", "-w", "\n%{http_code}", "-X", method, "http://127.0.0.1:8179\(path)"]
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        let result = try namespace.run(arguments)
        guard result.succeeded, let newline = result.stdout.lastIndex(of: "\n"), let status = Int(result.stdout[result.stdout.index(after: newline)...]) else {
            throw HarnessError("curl \(method) \(path) failed: \(result)")
        }
        return Reply(status: status, body: String(result.stdout[..<newline]))
    }

    /// A call that must succeed with `expected`.
    @discardableResult
    func must(_ method: String, _ path: String, _ body: String? = nil, status expected: Int) throws -> Reply {
        let reply = try call(method, path, body)
        guard reply.status == expected else {
            throw HarnessError("\(method) \(path) answered \(reply.status), expected \(expected): \(reply.body)")
        }
        return reply
    }

    func stop() -> Int32? {
        child.stop()
        return child.exitStatus
    }

    func kill9() {
        kill(child.pid, SIGKILL)
        _ = try? Command.run(["true"])  // give the kernel a moment; exitStatus below reaps
        while child.isRunning { usleep(10_000) }
    }
}

/// Renders `GET /` in headless Chromium inside `namespace` and returns the DOM (nil when chromium
/// is missing and the test may skip), keeping a screenshot in `.build/artifacts/NAME.png`.
func renderStatusPage(in namespace: NetworkNamespace, network: TestNetwork, screenshot name: String) throws -> String? {
    guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        if ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "required" {
            Issue.record("chromium is missing (Debian package chromium)")
        } else {
            print("skipping the status page check: chromium is not installed")
        }
        return nil
    }
    let profile = try network.directory("chromium")
    // ?live=0: without the page's EventSource the network goes idle, so the virtual time budget
    // lets every fetch finish before the DOM is dumped.
    let flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--user-data-dir=\(profile)", "--virtual-time-budget=5000"]
    let dom = try namespace.run(flags + ["--dump-dom", "http://127.0.0.1:8179/?live=0"], timeout: .seconds(60))
    #expect(dom.succeeded, "\(dom)")
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let artifacts = root.appendingPathComponent(".build/artifacts").path
    try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
    let shot = try namespace.run(flags + ["--window-size=1200,700", "--screenshot=\(artifacts)/\(name).png", "http://127.0.0.1:8179/?live=0"],
                                 timeout: .seconds(60))
    #expect(shot.succeeded && FileManager.default.fileExists(atPath: "\(artifacts)/\(name).png"), "\(shot)")
    return dom.stdout
}

@Suite(.timeLimit(.minutes(4)))
struct HeraldServeTests {
    static let heraldASN: UInt32 = 65020
    static let birdASN: UInt32 = 65010

    /// A peer, a pool, three nodes, a `local` and a `cluster` allocation: BIRD shows each /32 with
    /// the right next hops; a node change moves them; DELETE withdraws; history has every step.
    @Test(.interop(.bird))
    func seedScenarioThroughTheAPI() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        // Three on-link node addresses for BIRD: a /28 at the top of this network's /24.
        let base = link.b.ipv4.v4.value & 0xFFFF_FF00
        let nodes = (0xF1...0xF3).map { IPv4Address(base | UInt32($0)) }
        try link.b.namespace.check(["ip", "addr", "add", "\(IPv4Address(base | 0xFE))/28", "dev", link.b.interface])

        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: try network.directory("herald"), asn: Self.heraldASN)
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: Self.birdASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: Self.heraldASN, addPathReceive: true, families: [.ipv4])]),
            network: network)

        try herald.must("POST", "/v1/peers", #"{"name":"bird","address":"\#(link.b.ipv4)","asn":\#(Self.birdASN),"add_path_send":true}"#, status: 201)
        try herald.must("PUT", "/v1/pools/lb", #"{"blocks":["203.0.113.0/28"],"announce":{"communities":["65020:100"],"large_communities":["65020:1:2"]}}"#, status: 201)
        for (index, address) in nodes.enumerated() {
            try herald.must("PUT", "/v1/nodes/n\(index + 1)", #"{"addresses":["\#(address)"]}"#, status: 201)
        }
        let web = try herald.must("PUT", "/v1/allocations/default.web", #"{"pool":"lb","traffic_policy":"local","nodes":["n1"]}"#, status: 201)
        #expect(web.json["addresses"] as? [String] == ["203.0.113.1"])
        try herald.must("PUT", "/v1/allocations/default.api", #"{"pool":"lb"}"#, status: 201)

        try await bird.waitEstablished(with: link.a.ipv4)
        let local = try await bird.waitForRoute(prefix("203.0.113.1/32")) { $0.map(\.nextHop) == [.v4(nodes[0])] }
        #expect(local.first?.asPath == [Self.heraldASN])
        #expect(local.first?.communities == [Community(65020, 100)])
        #expect(local.first?.largeCommunities == [LargeCommunity(65020, 1, 2)])
        let cluster = try await bird.waitForRoute(prefix("203.0.113.2/32")) { $0.count == 3 }
        #expect(Set(cluster.compactMap(\.nextHop)) == Set(nodes.map(IPAddress.v4)))

        // The pods move to n2: the next hop follows at once.
        try herald.must("PUT", "/v1/allocations/default.web", #"{"pool":"lb","traffic_policy":"local","nodes":["n2"]}"#, status: 200)
        try await bird.waitForRoute(prefix("203.0.113.1/32")) { $0.map(\.nextHop) == [.v4(nodes[1])] }
        // Released: withdrawn.
        try herald.must("DELETE", "/v1/allocations/default.web", status: 204)
        try await bird.waitForWithdrawal(prefix("203.0.113.1/32"))

        let history = try herald.must("GET", "/v1/history?prefix=203.0.113.1", status: 200).json["events"] as? [[String: Any]] ?? []
        #expect(history.compactMap { $0["action"] as? String } == ["announce", "update", "withdraw"])
        #expect(history.compactMap { $0["reason"] as? String } == ["allocation default.web created", "allocation default.web changed", "allocation default.web deleted"])
        let peer = try herald.must("GET", "/v1/peers/bird", status: 200).json
        #expect(peer["state"] as? String == "established", "\(peer)")
        let advertised = try herald.must("GET", "/v1/peers/bird/routes/advertised", status: 200).json["routes"] as? [[String: Any]] ?? []
        #expect(advertised.compactMap { $0["prefix"] as? String }.contains("203.0.113.2/32"))
        let events = try herald.must("GET", "/v1/peers/bird/events", status: 200).json["events"] as? [[String: Any]] ?? []
        #expect(events.contains { $0["kind"] as? String == "established" }, "\(events)")
        // Metrics show the session, and promtool accepts them.
        let metrics = try herald.must("GET", "/metrics", status: 200).body
        #expect(metrics.contains(#"herald_bgp_peer_state{peer="bird",state="established"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"herald_bgp_prefixes_advertised{peer="bird"} 1"#), "\(metrics)")
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
            let file = try network.directory("metrics") + "/metrics.txt"
            try metrics.write(toFile: file, atomically: true, encoding: .utf8)
            let check = try Command.run(["sh", "-c", "/usr/bin/promtool check metrics < \(file)"])
            #expect(check.succeeded && check.stdout.isEmpty && check.stderr.isEmpty, "\(check)")
        }
        // BIRD resets the session; once it is back up, the reset is Herald's last error.
        _ = try bird.birdc(["restart", BIRD.protocolName(0)])
        _ = try await eventually("the session re-established after a reset") {
            let peer = try herald.must("GET", "/v1/peers/bird", status: 200).json
            return peer["state"] as? String == "established" && peer["last_error"] is [String: Any] ? true : nil
        }
        // The status page, rendered by headless Chromium in Herald's namespace, shows the peer up,
        // its last error muted (not red while Established), and the pool.
        if let dom = try renderStatusPage(in: link.a.namespace, network: network, screenshot: "status-page") {
            #expect(dom.contains(#"<tr data-peer="bird"><td>bird</td>"#), "\(dom)")
            #expect(dom.contains(#"<td class="state established">established</td>"#), "\(dom)")
            let row = dom.firstMatch(of: #/<tr data-peer="bird">.*?</tr>/#).map { String($0.0) } ?? ""
            #expect(row.contains(#"<td class="muted">previous error (20"#) && !row.contains(#"class="error""#), "\(row)")
            #expect(dom.contains("203.0.113.0/28"), "the pool row")
        }
        // The CLI shows the same, as `cilium bgp peers` would.
        let peers = try link.a.namespace.run([HeraldProcess.binary, "peers"])
        #expect(peers.succeeded && peers.stdout.contains("bird") && peers.stdout.contains("established"), "\(peers)")
        let sent = try link.a.namespace.run([HeraldProcess.binary, "routes", "advertised", "--peer", "bird"])
        #expect(sent.succeeded && sent.stdout.contains("203.0.113.2/32"), "\(sent)")
        #expect(herald.stop() == 0, "herald exits 0 on SIGTERM:\n\(herald.child.logTail())")
    }

    /// The status page after 1,100 changes: the newest history events (not the first thousand's
    /// last), every allocation with its address, pool and nodes, times in UTC with their "Z", and
    /// an IPv6 pool's size as a power of two (the API's number is a rounded double).
    @Test(.interop())
    func statusPageShowsTheNewestHistoryAndTheAllocations() async throws {
        guard try Interop.ready() else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: try network.directory("herald"), asn: Self.heraldASN)
        try herald.must("PUT", "/v1/pools/lb", #"{"blocks":["203.0.113.0/28"]}"#, status: 201)
        try herald.must("PUT", "/v1/pools/v6", #"{"blocks":["2001:db8:1::/64"]}"#, status: 201)
        try herald.must("PUT", "/v1/nodes/n1", #"{"addresses":["192.0.2.11"]}"#, status: 201)
        try herald.must("PUT", "/v1/allocations/default.web", #"{"pool":"lb","traffic_policy":"local","nodes":["n1"]}"#, status: 201)
        try herald.must("PUT", "/v1/allocations/default.api", #"{"pool":"lb"}"#, status: 201)
        try herald.must("PUT", "/v1/allocations/default.web6", #"{"pool":"v6"}"#, status: 201)
        // 1,100 static routes: one history event each, more than the thousand the page once read.
        let routes = (0..<1100).map { #"{"prefix":"10.1.\#($0 / 256).\#($0 % 256)/32"}"# }.joined(separator: ",")
        try herald.must("POST", "/v1/routes:batch", "[\(routes)]", status: 200)
        try herald.must("DELETE", "/v1/routes/10.1.0.7_32", status: 204)
        let newest = try herald.must("GET", "/v1/history?order=desc&limit=1", status: 200).json["events"] as? [[String: Any]] ?? []
        let newestID = try #require((newest.first?["id"] as? NSNumber)?.intValue)
        #expect(newestID > 1000 && newest.first?["prefix"] as? String == "10.1.0.7/32", "\(newest)")

        guard let dom = try renderStatusPage(in: link.a.namespace, network: network, screenshot: "status-page-history") else { return }
        let history = dom.firstMatch(of: #/<table id="history">.*?</table>/#).map { String($0.0) } ?? ""
        #expect(history.contains(#"<tbody><tr data-event="\#(newestID)"><td>"#), "the newest event first: \(history)")
        #expect(history.contains("<td>withdraw</td><td>10.1.0.7/32</td>"), "\(history)")
        #expect(history.matches(of: #/<tr data-event=/#).count == 50, "\(history)")
        #expect(!history.contains(#"data-event="1000""#), "not the end of the first thousand: \(history)")
        // Times as the API gives them: ISO 8601 in UTC, with the Z.
        #expect(history.contains(#/<tr data-event="\d+"><td>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z</td>/#), "\(history)")

        #expect(dom.contains(#"<tr data-allocation="default.web"><td>default.web</td><td>203.0.113.1</td><td>lb</td><td>local</td><td>n1</td></tr>"#), "\(dom)")
        #expect(dom.contains(#"<tr data-allocation="default.api"><td>default.api</td><td>203.0.113.2</td><td>lb</td><td>cluster</td>"#), "\(dom)")
        #expect(dom.contains(#"<tr data-allocation="default.web6"><td>default.web6</td><td>2001:db8:1::1</td><td>v6</td>"#), "\(dom)")
        let pool = dom.firstMatch(of: #/<tr data-pool="v6">.*?</tr>/#).map { String($0.0) } ?? ""
        #expect(pool.contains("<td>1 of ≈2^64</td>"), "\(pool)")
        #expect(herald.stop() == 0)
    }

    /// `kill -9` loses nothing acknowledged: after a restart on the same database, BIRD has the
    /// same table, and (graceful restart) kept the routes meanwhile.
    @Test(.interop(.bird))
    func killedAndRestartedConvergesToTheSameTable() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let directory = try network.directory("herald")
        let first = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN)
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: Self.birdASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: Self.heraldASN, families: [.ipv4])],
            gracefulRestart: true, holdTime: 9), network: network)
        try first.must("POST", "/v1/peers", #"{"name":"bird","address":"\#(link.b.ipv4)","asn":\#(Self.birdASN)}"#, status: 201)
        try first.must("PUT", "/v1/pools/lb", #"{"blocks":["203.0.113.0/28"]}"#, status: 201)
        for index in 1...5 { try first.must("PUT", "/v1/allocations/svc-\(index)", #"{"pool":"lb"}"#, status: 201) }
        let prefixes = (1...5).map { prefix("203.0.113.\($0)/32") }
        try await bird.waitEstablished(with: link.a.ipv4)
        for p in prefixes { try await bird.waitForRoute(p) }

        first.kill9()
        let second = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN)
        try await bird.waitEstablished(with: link.a.ipv4)
        // Every acknowledged allocation survived, with the same address.
        let allocations = try second.must("GET", "/v1/allocations", status: 200).json["allocations"] as? [[String: Any]] ?? []
        #expect(allocations.compactMap { ($0["addresses"] as? [String])?.first }.sorted() == prefixes.map(\.network.description).sorted())
        for p in prefixes { try await bird.waitForRoute(p) { paths in paths.allSatisfy { !$0.stale } } }
        #expect(second.stop() == 0)
    }
}

/// The README's walkthrough, run as written (addresses swapped for the test network's) against
/// `herald serve` and a real BIRD: a newcomer who pastes it gets the route on the router.
@Suite(.timeLimit(.minutes(3)))
struct ReadmeWalkthroughTests {
    /// The shell commands between `<!-- walkthrough -->` and `<!-- /walkthrough -->`, with
    /// backslash continuations joined and comments dropped.
    static func walkthroughCommands(_ marker: String = "walkthrough") throws -> [String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        guard let start = readme.range(of: "<!-- \(marker) -->"), let end = readme.range(of: "<!-- /\(marker) -->") else {
            throw HarnessError("README.md has no \(marker) markers")
        }
        var commands: [String] = []
        var current = ""
        for line in readme[start.upperBound..<end.lowerBound].split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty || text.hasPrefix("#") || text.hasPrefix("```") { continue }
            if text.hasSuffix("\\") {
                current += text.dropLast() + " "
            } else {
                commands.append(current + text)
                current = ""
            }
        }
        return commands
    }

    @Test func theWalkthroughIsThere() throws {
        let commands = try Self.walkthroughCommands()
        #expect(commands.count >= 6 && commands.allSatisfy { $0.hasPrefix("curl -sf") }, "\(commands)")
        let backups = try Self.walkthroughCommands("backups")
        #expect(backups.count == 2 && backups[0].hasPrefix("herald backup ") && backups[1].hasPrefix("herald serve --db "), "\(backups)")
    }

    @Test(.interop(.bird))
    func readmeWalkthroughAnnouncesTheRouteToBIRD() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let base = link.b.ipv4.v4.value & 0xFFFF_FF00
        let node1 = IPv4Address(base | 0xF1), node2 = IPv4Address(base | 0xF2)
        try link.b.namespace.check(["ip", "addr", "add", "\(IPv4Address(base | 0xFE))/28", "dev", link.b.interface])
        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: try network.directory("herald"), asn: 64512)
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: 65000, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: 64512, families: [.ipv4])]), network: network)

        for command in try Self.walkthroughCommands() {
            let adapted = command.replacingOccurrences(of: "192.0.2.254", with: "\(link.b.ipv4)")
                .replacingOccurrences(of: "192.0.2.11", with: "\(node1)").replacingOccurrences(of: "192.0.2.12", with: "\(node2)")
            let result = try link.a.namespace.run(["sh", "-c", adapted])
            #expect(result.succeeded, "\(adapted)\n\(result)\n\(herald.child.logTail())")
        }
        try await bird.waitEstablished(with: link.a.ipv4)
        let paths = try await bird.waitForRoute(try IPPrefix(parsing: "203.0.113.1/32")) { $0.map(\.nextHop) == [.v4(node1)] }
        #expect(paths.first?.asPath == [64512])

        // The README's backup block as written (its directory swapped for a scratch one): no
        // flags beside the default `herald serve`, run from a directory with no database in it;
        // then the restore: Herald stopped and started on the copy serves the same state.
        let backups = try Self.walkthroughCommands("backups")
        let copies = try network.directory("backups")
        let path = URL(fileURLWithPath: HeraldProcess.binary).deletingLastPathComponent().path
        let backup = backups[0].replacingOccurrences(of: "/var/backups", with: copies)
        let made = try link.a.namespace.run(["sh", "-c", "cd \(copies) && PATH=\(path):$PATH \(backup)"])
        #expect(made.succeeded && made.stdout.contains("backed up the database of the Herald at 127.0.0.1:8179"), "\(backup)\n\(made)")
        let copy = try #require(try FileManager.default.contentsOfDirectory(atPath: copies).first { $0.hasPrefix("herald-") }, "no copy in \(copies)")
        #expect(herald.stop() == 0)
        let restore = backups[1].split(separator: "#")[0].replacingOccurrences(of: "/var/backups", with: copies)
            .replacing(/herald-\d{4}-\d{2}-\d{2}\.db/, with: copy)
        let arguments = restore.split(separator: " ").dropFirst(2).map(String.init)
        #expect(arguments == ["--db", copies + "/" + copy], "\(restore)")
        let restored = try await HeraldProcess.start(in: link.a.namespace, serve: arguments, directory: copies, databasePath: copies + "/" + copy)
        let allocation = try restored.must("GET", "/v1/allocations/default.web", status: 200).json
        #expect(allocation["addresses"] as? [String] == ["203.0.113.1"], "\(allocation)")
        _ = try await eventually("the restored Herald's session with BIRD", timeout: .seconds(30)) {
            (try? restored.call("GET", "/v1/peers/router"))?.json["state"] as? String == "established" ? true : nil
        }
        #expect(restored.stop() == 0)
    }
}

/// The README's command-line section, every line as written (addresses swapped for the test
/// network's, the password file made), in order, against a fresh `herald serve` and a BIRD peer
/// that needs the password: each command succeeds, and BIRD ends up with what the section built
/// — the allocations' routes with the pool's community, and the static route to node1.
@Suite(.timeLimit(.minutes(3)))
struct ReadmeCommandLineTests {
    @Test func theSectionIsThere() throws {
        let commands = try ReadmeWalkthroughTests.walkthroughCommands("cli")
        #expect(commands.count >= 15 && commands.allSatisfy { $0.hasPrefix("herald ") }, "\(commands)")
    }

    @Test(.interop(.bird))
    func everyCommandOfTheSectionRunsAsWritten() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let base = link.b.ipv4.v4.value & 0xFFFF_FF00
        let node1 = IPv4Address(base | 0xF1)
        // node1 is on BIRD's link (as in the walkthrough) and answers the section's health
        // check (`http:10256/healthz`) from Herald's side, so its routes are announced.
        try link.b.namespace.check(["ip", "addr", "add", "\(IPv4Address(base | 0xFE))/28", "dev", link.b.interface])
        try link.a.namespace.check(["ip", "addr", "add", "\(node1)/32", "dev", "lo"])
        let directory = try network.directory("herald")
        let site = try network.directory("healthz")
        try "ok\n".write(toFile: site + "/healthz", atomically: true, encoding: .utf8)
        _ = try link.a.namespace.spawn(["python3", "-m", "http.server", "10256", "--bind", "\(node1)", "--directory", site], logPath: site + "/server.log")
        let keyFile = directory + "/router.key"
        try "cli-section-key\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: 64512)
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: 65000, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: 64512, password: "cli-section-key", families: [.ipv4])]), network: network)
        let path = URL(fileURLWithPath: HeraldProcess.binary).deletingLastPathComponent().path

        for command in try ReadmeWalkthroughTests.walkthroughCommands("cli") {
            let adapted = command.replacingOccurrences(of: "192.0.2.254", with: "\(link.b.ipv4)")
                .replacingOccurrences(of: "192.0.2.11", with: "\(node1)")
                .replacingOccurrences(of: "/etc/herald/router.key", with: keyFile)
            if adapted.hasPrefix("herald peer reset") {
                // A route refresh asks an established session: wait for it, as a reader would.
                try await bird.waitEstablished(with: link.a.ipv4)
            }
            // `herald events` follows the stream until stopped: two seconds of it.
            let following = adapted.hasPrefix("herald events")
            let result = try link.a.namespace.run(["sh", "-c", "cd \(directory) && PATH=\(path):$PATH \(following ? "timeout 2 " : "")\(adapted)"])
            #expect(result.status == (following ? 124 : 0), "\(adapted)\n\(result)\n\(herald.child.logTail())")
        }
        try await bird.waitEstablished(with: link.a.ipv4)
        let web = try herald.must("GET", "/v1/allocations/default.web", status: 200).json["addresses"] as? [String] ?? []
        let api = try herald.must("GET", "/v1/allocations/default.api", status: 200).json["addresses"] as? [String] ?? []
        for address in web + api {
            let paths = try await bird.waitForRoute(try IPPrefix(parsing: address + "/32"))
            #expect(paths.first?.communities.map(\.description) == ["65000:100"], "\(address): \(paths)")
        }
        #expect(web.count == 1 && api.count == 1)
        let pods = try await bird.waitForRoute(try IPPrefix(parsing: "10.244.1.0/24"))
        #expect(pods.map(\.nextHop) == [.v4(node1)])
        #expect(herald.stop() == 0)
    }
}

/// The Herald-side commands of the router cookbook (docs/routers/README.md) and of
/// docs/health-checks.md, each `sh` block run as written (`sh -e`, addresses swapped for the
/// test network's) against `herald serve`: every call succeeds and the peer and node end as the
/// blocks say.
@Suite(.timeLimit(.minutes(3)))
struct DocsCommandTests {
    static func shellBlocks(_ file: String) throws -> [String] { try CookbookTests.fencedBlocks(file, opening: "```sh\n") }

    @Test(.interop())
    func cookbookAndHealthCheckCommandsRunAsWritten() async throws {
        guard try Interop.ready() else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: try network.directory("herald"), asn: 64512)
        let node2 = IPv4Address((link.b.ipv4.v4.value & 0xFFFF_FF00) | 0xF2)
        let blocks = try Self.shellBlocks("docs/routers/README.md") + Self.shellBlocks("docs/health-checks.md")
        #expect(blocks.count == 3)
        for block in blocks {
            let adapted = block.replacingOccurrences(of: "192.0.2.254", with: "\(link.b.ipv4)").replacingOccurrences(of: "192.0.2.12", with: "\(node2)")
            let result = try link.a.namespace.run(["sh", "-ec", adapted])
            #expect(result.succeeded, "\(adapted)\n\(result)")
        }
        let peer = try herald.must("GET", "/v1/peers/router", status: 200).json
        #expect(peer["address"] as? String == "\(link.b.ipv4)" && peer["password_set"] as? Bool == true, "\(peer)")
        #expect(peer["ttl_security"] as? Int == 1 && peer["add_path_send"] as? Bool == true, "\(peer)")
        #expect((peer["bfd"] as? [String: Any])?["enabled"] as? Bool == true, "\(peer)")
        let node = try herald.must("GET", "/v1/nodes/node2", status: 200).json
        // The cookbook's block set a TCP check; docs/health-checks.md's, run last, the HTTP one.
        #expect((node["health_check"] as? [String: Any])?["kind"] as? String == "http", "\(node)")
        #expect((node["health_check"] as? [String: Any])?["port"] as? Int == 10256, "\(node)")
        #expect(herald.stop() == 0)
    }
}

/// What SIGTERM does to the routes a GR-helper router holds: by default they stay (graceful
/// restart, RFC 4724) while Herald restarts; with `--shutdown withdraw` they go within a second.
@Suite(.timeLimit(.minutes(3)))
struct HeraldShutdownTests {
    static let heraldASN: UInt32 = 65020
    static let birdASN: UInt32 = 65010

    func scenario(shutdown: String?) async throws -> (network: TestNetwork, link: Link, herald: HeraldProcess, bird: BIRD, prefix: IPPrefix, directory: String) {
        let network = try TestNetwork()
        let link = try network.pair()
        let directory = try network.directory("herald")
        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN,
                                                   extra: shutdown.map { ["--shutdown", $0] } ?? [])
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: Self.birdASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: Self.heraldASN, families: [.ipv4])],
            gracefulRestart: true, holdTime: 9), network: network)
        try herald.must("POST", "/v1/peers", #"{"name":"bird","address":"\#(link.b.ipv4)","asn":\#(Self.birdASN)}"#, status: 201)
        try herald.must("PUT", "/v1/pools/lb", #"{"blocks":["203.0.113.0/28"]}"#, status: 201)
        try herald.must("PUT", "/v1/allocations/web", #"{"pool":"lb"}"#, status: 201)
        let p = try IPPrefix(parsing: "203.0.113.1/32")
        try await bird.waitEstablished(with: link.a.ipv4)
        try await bird.waitForRoute(p)
        return (network, link, herald, bird, p, directory)
    }

    @Test(.interop(.bird), .timingSensitive)
    func withdrawModeDropsTheRoutesAtOnce() async throws {
        guard try Interop.ready(.bird) else { return }
        let s = try await scenario(shutdown: "withdraw")
        defer { s.network.shutdown() }
        let stopped = ContinuousClock.now
        #expect(s.herald.stop() == 0)
        try await s.bird.waitForWithdrawal(s.prefix, timeout: .seconds(5))
        #expect(ContinuousClock.now - stopped < .seconds(2), "the Cease makes BIRD drop the route at once")
    }

    @Test(.interop(.bird))
    func gracefulRestartKeepsTheRoutesThroughARestart() async throws {
        guard try Interop.ready(.bird) else { return }
        let s = try await scenario(shutdown: nil)
        defer { s.network.shutdown() }
        #expect(s.herald.stop() == 0)
        // While Herald is down, BIRD (the GR helper) keeps the route.
        for _ in 0..<10 {
            #expect(try s.bird.receivedRoutes().contains { $0.prefix == s.prefix }, "kept while Herald is down")
            try await Task.sleep(for: .milliseconds(100))
        }
        let again = try await HeraldProcess.start(in: s.link.a.namespace, on: s.link.a, directory: s.directory, asn: Self.heraldASN)
        try await s.bird.waitEstablished(with: s.link.a.ipv4)
        try await s.bird.waitForRoute(s.prefix)
        #expect(try s.bird.receivedRoutes().contains { $0.prefix == s.prefix })
        #expect(again.stop() == 0)
    }

    /// Every session's final "down" is in the history after SIGTERM: two sessions with one BIRD
    /// (one over IPv4, one over IPv6) Established, SIGTERM, and a restart on the same database
    /// finds each peer's history as "established", "down" before anything of the new process.
    @Test(.interop(.bird), arguments: ["graceful-restart", "withdraw"])
    func shutdownRecordsEverySessionsDownEvent(mode: String) async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let directory = try network.directory("herald")
        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN,
                                                   extra: ["--shutdown", mode])
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: Self.birdASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: Self.heraldASN, families: [.ipv4]),
                                                      Neighbor(address: link.a.ipv6, asn: Self.heraldASN, families: [.ipv4])],
            gracefulRestart: true, holdTime: 9), network: network)
        let peers = ["bird4": link.b.ipv4, "bird6": link.b.ipv6]
        for (name, address) in peers {
            try herald.must("POST", "/v1/peers", #"{"name":"\#(name)","address":"\#(address)","asn":\#(Self.birdASN)}"#, status: 201)
        }
        try await bird.waitEstablished(with: link.a.ipv4)
        try await bird.waitEstablished(with: link.a.ipv6)
        // The history has both "established" rows before the SIGTERM.
        for name in peers.keys {
            _ = try await eventually("\(name) established in history") {
                let events = try herald.must("GET", "/v1/peers/\(name)/events", status: 200).json["events"] as? [[String: Any]] ?? []
                return events.contains { $0["kind"] as? String == "established" } ? true : nil
            }
        }
        #expect(herald.stop() == 0, "herald exits 0 on SIGTERM:\n\(herald.child.logTail())")
        #expect(!herald.child.logTail(500).contains("cannot record a session event"), "\(herald.child.logTail())")

        let again = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN)
        for name in peers.keys.sorted() {
            let events = try again.must("GET", "/v1/peers/\(name)/events", status: 200).json["events"] as? [[String: Any]] ?? []
            let sessions = events.compactMap { $0["kind"] as? String }.filter { $0 == "established" || $0 == "down" }
            #expect(sessions.prefix(2) == ["established", "down"], "\(name): \(events)\n\(herald.child.logTail())")
        }
        #expect(again.stop() == 0)
    }
}
