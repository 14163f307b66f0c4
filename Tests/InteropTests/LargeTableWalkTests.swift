import Foundation
import IP
import Testing
import TestSupport

// Issue #16, item 3: a read-only call or a big transfer must never cost a session. `herald
// serve` (debug build) in one namespace, BIRD in another with BFD at 50 ms × 3 (detection in
// 150 ms); 100,000 static routes arrive through POST /v1/routes:batch and travel to BIRD; then
// the test pages through every advertised route and every route of GET /v1/routes, and exports
// the table as NDJSON. Throughout, BFD must stay Up and the session Established (Herald's flap
// counter stays 0, BIRD's BFD session never leaves Up), and the walk must leave the process's
// memory where it was (within 64 MiB), as must the export while it streams. The same walk at a
// million routes in a release build is scripts/bench/walk.sh.

@Suite(.timeLimit(.minutes(6)), .heavy)
struct LargeTableWalkTests {
    static let heraldASN: UInt32 = 65040
    static let birdASN: UInt32 = 65041
    static let routes = 100_000

    @Test(.interop(.bird))
    func pagingAndExportingATableKeepBFDAndTheSession() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let directory = try network.directory("herald")
        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN)
        defer { _ = herald.stop() }
        var neighbor = Neighbor(address: link.a.ipv4, asn: Self.heraldASN, families: [.ipv4])
        neighbor.bfd = true
        var config = DaemonConfig(asn: Self.birdASN, routerID: link.b.ipv4.v4, localIPv4: link.b.ipv4, neighbors: [neighbor])
        config.bfdTimers = (minRx: 50, minTx: 50, multiplier: 3)
        let bird = try await BIRD.start(in: link.b.namespace, config: config, network: network)
        defer { bird.stop() }
        try herald.must("POST", "/v1/peers", #"""
            {"name":"bird","address":"\#(link.b.ipv4)","asn":\#(Self.birdASN),"bfd":{"enabled":true,"min_tx":50,"min_rx":50,"multiplier":3}}
            """#, status: 201)
        try await bird.waitEstablished(with: link.a.ipv4)
        _ = try await eventually("BFD Up at BIRD") { try bird.bfdState(of: link.a.ipv4) == "Up" ? true : nil }

        // BIRD's BFD state, sampled every 20 ms from here to the end: it must never leave Up.
        let watching = Watch()
        let watcher = Task.detached {
            while !watching.stopped {
                if let state = try? bird.bfdState(of: link.a.ipv4) { watching.saw(state) }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        defer { watching.stop() }

        let path = directory + "/routes.ndjson"
        var text = ""
        text.reserveCapacity(Self.routes * 40)
        for n in 0..<Self.routes { text += #"{"prefix":"10.\#(100 + (n >> 16)).\#((n >> 8) & 255).\#(n & 255)/32"}"# + "\n" }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let namespace = link.a.namespace
        let loaded = try await blocking {
            try namespace.run(["curl", "-s", "-S", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/x-ndjson",
                               "--data-binary", "@\(path)", "http://127.0.0.1:8179/v1/routes:batch"], timeout: .seconds(180))
        }
        #expect(loaded.stdout == "200", "\(loaded)")
        _ = try await eventually("every route at BIRD", timeout: .seconds(120)) {
            try bird.birdc(["show", "route", "count"]).contains("\(Self.routes) of \(Self.routes)") ? true : nil
        }

        // Every page of the advertised view and of /v1/routes, 1,000 at a time.
        let before = Self.residentMiB(herald.child.pid)
        let started = ContinuousClock.now
        let advertised = try await blocking { try Self.walk(herald, "/v1/peers/bird/routes/advertised?limit=1000") }
        let originated = try await blocking { try Self.walk(herald, "/v1/routes?limit=1000") }
        let walkTime = ContinuousClock.now - started
        let after = Self.residentMiB(herald.child.pid)
        #expect(advertised.routes == Self.routes && advertised.pages == Self.routes / 1000, "\(advertised)")
        #expect(originated.routes == Self.routes && originated.pages == Self.routes / 1000, "\(originated)")
        #expect(after - before <= 64, "the walk left the process \(after - before) MiB larger (\(before) → \(after) MiB)")

        // The NDJSON export of the whole table, read slowly: the server's memory must not follow.
        let sampling = Peak(pid: herald.child.pid)
        let sampler = Task.detached { await sampling.run() }
        let exported = try await blocking {
            try namespace.run(["sh", "-c", "curl -s -S --limit-rate 4M http://127.0.0.1:8179/v1/routes:export | wc -l"], timeout: .seconds(120))
        }
        sampling.stop()
        await sampler.value
        #expect(Int(exported.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == Self.routes, "\(exported)")
        #expect(sampling.peak - after <= 64, "the export grew the process by \(sampling.peak - after) MiB")

        watching.stop()
        await watcher.value
        let peer = try await blocking { try herald.must("GET", "/v1/peers/bird", status: 200) }.json
        let flaps = (peer["counters"] as? [String: Any])?["flaps"] as? Int
        let bfdState = ((peer["bfd"] as? [String: Any])?["session"] as? [String: Any])?["state"] as? String
        print("""
            large table walk: \(Self.routes) routes; advertised \(advertised.pages) pages, /v1/routes \(originated.pages) pages in \
            \(walkTime); RSS \(before) → \(after) MiB, export peak \(sampling.peak) MiB; BIRD BFD states \(watching.states.sorted()) \
            (\(watching.samples) samples); Herald flaps \(flaps ?? -1), BFD \(bfdState ?? "?")
            """)
        #expect(watching.states == ["Up"], "BIRD's BFD session left Up: \(watching.states)")
        #expect(watching.samples > 50)
        let events = try await blocking { try herald.must("GET", "/v1/peers/bird/events", status: 200) }.body
        #expect(flaps == 0 && peer["state"] as? String == "established" && bfdState == "up", "\(peer)\n\(events)")
    }

    /// Follows `next_cursor` from `target`: the pages and routes seen.
    static func walk(_ herald: HeraldProcess, _ target: String) throws -> (pages: Int, routes: Int) {
        var pages = 0, routes = 0
        var cursor: String?
        repeat {
            let page = try herald.must("GET", target + (cursor.map { "&cursor=\($0)" } ?? ""), status: 200).json
            pages += 1
            routes += (page["routes"] as? [Any])?.count ?? 0
            cursor = page["next_cursor"] as? String
        } while cursor != nil
        return (pages, routes)
    }

    static func residentMiB(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
    }

    /// BFD states seen.
    final class Watch: @unchecked Sendable {
        private let lock = NSLock()
        private var seen: Set<String> = []
        private var count = 0
        private var done = false
        func saw(_ state: String) { lock.withLock { seen.insert(state); count += 1 } }
        func stop() { lock.withLock { done = true } }
        var stopped: Bool { lock.withLock { done } }
        var states: Set<String> { lock.withLock { seen } }
        var samples: Int { lock.withLock { count } }
    }

    /// The highest resident size of a process, sampled every 20 ms until stopped.
    final class Peak: @unchecked Sendable {
        private let lock = NSLock()
        private var highest = 0
        private var done = false
        let pid: pid_t
        init(pid: pid_t) { self.pid = pid }
        func run() async {
            while !(lock.withLock { done }) {
                let now = LargeTableWalkTests.residentMiB(pid)
                lock.withLock { highest = max(highest, now) }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        func stop() { lock.withLock { done = true } }
        var peak: Int { lock.withLock { highest } }
    }
}
