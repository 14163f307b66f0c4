import Foundation
import IP
import Synchronization
import Testing
import TestSupport

// Issue #17 item 1: a restart of `herald serve` with BFD on must not take the routes away at the
// router. BIRD runs docs/routers/bird.md's configuration exactly as written (BFD 300 ms × 3,
// `bfd graceful`, `graceful restart on`; only the documentation addresses are replaced by the
// test link's, and a log line added), Herald the cookbook's pairing (`"bfd": {"enabled": true}`)
// with 1,100 static routes. The test counts BIRD's routes every 100 ms through a SIGTERM and
// restart, then through a `kill -9` and restart: the count must never drop.

@Suite(.timeLimit(.minutes(4)), .timingSensitive)
struct CookbookRestartTests {
    static let heraldASN: UInt32 = 64512
    static let routes = 1_100

    @Test(.interop(.bird))
    func birdKeepsEveryRouteThroughRestartsWithBFDAndGracefulRestart() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let directory = try network.directory("herald")
        var herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN)
        try herald.must("POST", "/v1/peers", #"{"name":"bird","address":"\#(link.b.ipv4)","asn":65000,"bfd":{"enabled":true}}"#, status: 201)
        let batch = (0..<Self.routes).map { #"{"prefix":"100.66.\#($0 / 256).\#($0 % 256)/32"}"# }.joined(separator: ",")
        try herald.must("POST", "/v1/routes:batch", "[\(batch)]", status: 200)

        let birdDirectory = try network.directory("bird-cookbook")
        let config = "log stderr all;\n" + (try CookbookTests.firstConfigBlock("bird.md"))
            .replacingOccurrences(of: "192.0.2.254", with: link.b.ipv4.description)
            .replacingOccurrences(of: "192.0.2.1", with: link.a.ipv4.description)
        try config.write(toFile: birdDirectory + "/bird.conf", atomically: true, encoding: .utf8)
        let socket = birdDirectory + "/bird.ctl"
        let bird = try link.b.namespace.spawn([Interop.bird(), "-f", "-c", birdDirectory + "/bird.conf", "-s", socket, "-P", birdDirectory + "/bird.pid"],
                                              logPath: birdDirectory + "/bird.log")
        defer { bird.stop() }
        @Sendable func birdc(_ arguments: String...) -> String { (try? Command.run([Interop.birdc(), "-s", socket] + arguments).stdout) ?? "" }
        @Sendable func routeCount() -> Int? {
            // "1100 of 1100 routes for 1100 networks in table master4"
            for line in birdc("show", "route", "count", "table", "master4").split(separator: "\n") {
                let words = line.split(separator: " ")
                if words.count > 2, words[1] == "of", let count = Int(words[0]) { return count }
            }
            return nil
        }
        _ = try await eventually("BIRD holds every route", timeout: .seconds(60)) { routeCount() == Self.routes ? true : nil }
        _ = try await eventually("BFD Up at BIRD") { birdc("show", "bfd", "sessions").contains("Up") ? true : nil }

        for kill9 in [false, true] {
            let samples = Mutex<[Int]>([])
            let sampling = Mutex(true)
            let sampler = Task.detached {
                while sampling.withLock({ $0 }) {
                    samples.withLock { $0.append(routeCount() ?? -1) }
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            if kill9 { herald.kill9() } else { #expect(herald.stop() == 0) }
            let restarted = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN)
            herald = restarted
            let back = try await eventually("the session back with BFD Up", timeout: .seconds(60)) { () -> Duration? in
                let peer = try restarted.must("GET", "/v1/peers/bird", status: 200).json
                let bfd = ((peer["bfd"] as? [String: Any])?["session"] as? [String: Any])?["state"] as? String
                let sent = (peer["counters"] as? [String: Any])?["prefixes_advertised"] as? Int
                return peer["state"] as? String == "established" && bfd == "up" && sent == Self.routes ? ContinuousClock.now - started : nil
            }
            // BIRD drops the stale copies once End-of-RIB arrives: a few more samples after that.
            try await Task.sleep(for: .seconds(2))
            sampling.withLock { $0 = false }
            await sampler.value
            let seen = samples.withLock { $0 }
            let gaps = seen.filter { $0 != Self.routes }
            print("""
                cookbook restart (\(kill9 ? "kill -9" : "SIGTERM")), BIRD with bfd graceful + graceful restart: session and BFD back after \
                \(back); \(seen.count) samples every 100 ms, lowest \(seen.min() ?? -1) of \(Self.routes), \(gaps.count) below
                """)
            #expect(seen.count >= 10 && gaps.isEmpty, "BIRD's route count left \(Self.routes): \(gaps.prefix(20)); BIRD log:\n\(bird.logTail(40))")
            #expect(birdc("show", "protocols", "all", "herald").contains("Established"))
        }
        #expect(herald.stop() == 0)
    }
}
