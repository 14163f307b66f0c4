import Foundation
import IP
import Synchronization
import Testing
import TestSupport

// Issue #17 item 1, FRR's half: a restart of `herald serve` with BFD on must not take the routes
// away at the router. FRR runs docs/routers/frr.md's configuration exactly as written: its first
// block in bgpd, its second (the BFD profile) in bfdd, and zebra between them, because bgpd hears
// bfdd's session states only through zebra. Only the documentation addresses are replaced by the
// test link's, and log lines are added. Herald has the cookbook's pairing (`"bfd": {"enabled":
// true}`) with 1,100 static routes. The test counts the routes FRR has from Herald (bgpd's
// table, and the kernel's BGP routes in FRR's namespace) every 100 ms through a SIGTERM and
// restart, a `kill -9` and restart, and a `kill -9` with the restart 2 s later: neither count
// may drop.

@Suite(.timeLimit(.minutes(4)), .timingSensitive)
struct FRRCookbookRestartTests {
    static let heraldASN: UInt32 = 64512
    static let routes = 1_100

    @Test(.interop(.frr, .bfdd, .zebra))
    func frrKeepsEveryRouteThroughRestartsWithBFDAndGracefulRestart() async throws {
        guard try Interop.ready(.frr, .bfdd, .zebra) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let directory = try network.directory("herald")
        var herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN)
        try herald.must("POST", "/v1/peers", #"{"name":"frr","address":"\#(link.b.ipv4)","asn":65000,"bfd":{"enabled":true}}"#, status: 201)
        let batch = (0..<Self.routes).map { #"{"prefix":"100.66.\#($0 / 256).\#($0 % 256)/32"}"# }.joined(separator: ",")
        try herald.must("POST", "/v1/routes:batch", "[\(batch)]", status: 200)

        // frr.md: the bgpd block, then the `bfd` block with the profile.
        let blocks = try CookbookTests.configBlocks("frr.md").map {
            $0.replacingOccurrences(of: "192.0.2.254", with: link.b.ipv4.description)
                .replacingOccurrences(of: "192.0.2.1", with: link.a.ipv4.description)
        }
        let bgpdBlock = try #require(blocks.first { $0.contains("router bgp") })
        let bfddBlock = try #require(blocks.first { $0.hasPrefix("bfd\n") })
        let frr = try network.directory("frr-cookbook")
        let logging = "log stdout debugging\n"
        let configs = [
            "zebra.conf": logging,
            "bfdd.conf": logging + bfddBlock,
            "bgpd.conf": logging + "debug bgp bfd\ndebug bgp neighbor-events\ndebug bgp graceful-restart\n" + bgpdBlock,
        ]
        for (name, text) in configs {
            try text.write(toFile: frr + "/" + name, atomically: true, encoding: .utf8)
            guard chmod(frr + "/" + name, 0o644) == 0 else { throw HarnessError("chmod \(name): errno \(errno)") }
        }
        // zebra and bfdd drop to user frr before they write their pid files and sockets (bfdd has no
        // -S); bgpd stays root with -S, as in Support/FRR.swift. All three meet at zebra's zserv.api.
        guard chmod(frr, 0o777) == 0 else { throw HarnessError("chmod \(frr): errno \(errno)") }
        let zserv = frr + "/zserv.api"
        let common = ["--vty_socket", frr, "-z", zserv, "-A", "127.0.0.1", "-P", "0"]
        let zebra = try link.b.namespace.spawn([Interop.frrZebra(), "-f", frr + "/zebra.conf", "-i", frr + "/zebra.pid", "-u", "frr", "-g", "frr"] + common,
                                               logPath: frr + "/zebra.log")
        defer { zebra.stop() }
        _ = try await eventually("zebra's zserv socket") { FileManager.default.fileExists(atPath: zserv) ? true : nil }
        let bfdd = try link.b.namespace.spawn([Interop.frrBFDD(), "-f", frr + "/bfdd.conf", "-i", frr + "/bfdd.pid", "--bfdctl", frr + "/bfdd.sock",
                                               "-u", "frr", "-g", "frr"] + common,
                                              logPath: frr + "/bfdd.log")
        defer { bfdd.stop() }
        let bgpd = try link.b.namespace.spawn([Interop.frrBGPD(), "-f", frr + "/bgpd.conf", "-i", frr + "/bgpd.pid", "-S"] + common,
                                              logPath: frr + "/bgpd.log")
        defer { bgpd.stop() }

        @Sendable func vtysh(_ commands: String...) -> String {
            (try? Command.run([Interop.vtysh(), "--vty_socket", frr] + commands.flatMap { ["-c", $0] }).stdout) ?? ""
        }
        @Sendable func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }
        let heraldAddress = link.a.ipv4.description
        let routerNamespace = link.b.namespace.name
        /// The prefixes in bgpd's IPv4 table ("Total Prefixes" of its statistics: all from Herald,
        /// stale ones included while Herald restarts), the kernel's BGP routes in FRR's namespace
        /// (what the router forwards with), and the neighbor's `pfxRcd`, only printed: it can read
        /// 0 for a sample while the new session replaces the old one. One vtysh call (two take
        /// twice as long); -1 for a count that could not be read. (zebra's own `show ip route
        /// summary` FIB count is not used: it read 899 for one sample while zebra reinstalled the
        /// routes after a restart, bgpd's table full.)
        @Sendable func counts() -> (bgp: Int, fib: Int, received: Int) {
            let text = vtysh("show bgp ipv4 unicast summary json", "show bgp ipv4 unicast statistics")
            let kernel = try? Command.run(["ip", "-n", routerNamespace, "-4", "route", "show", "proto", "bgp"])
            let fib = kernel.map { $0.succeeded ? $0.stdout.split(separator: "\n").count : -1 } ?? -1
            guard let end = text.range(of: "\n}\n") else { return (-1, fib, -1) }
            let summary = json(String(text[..<end.upperBound])) as? [String: Any]
            let statistics = text[end.upperBound...].split(separator: "\n").first { $0.contains("Total Prefixes") }
            let peer = (summary?["peers"] as? [String: Any])?[heraldAddress] as? [String: Any]
            return (statistics?.split(separator: " ").last.flatMap { Int($0) } ?? -1, fib, peer?["pfxRcd"] as? Int ?? -1)
        }
        @Sendable func bfdStatus() -> String? {
            (json(vtysh("show bfd peers json")) as? [[String: Any]])?.first { ($0["peer"] as? String) == heraldAddress }?["status"] as? String
        }
        func logs() -> String {
            "bgpd:\n\(bgpd.logTail(40))\nbfdd:\n\(bfdd.logTail(10))\nzebra:\n\(zebra.logTail(10))"
        }
        do {
            _ = try await eventually("FRR holds every route", timeout: .seconds(60)) {
                let counts = counts()
                return counts.bgp == Self.routes && counts.fib == Self.routes ? true : nil
            }
            _ = try await eventually("BFD up at FRR") { bfdStatus() == "up" ? true : nil }
        } catch {
            Issue.record("FRR never got the routes with BFD up: \(error); counts (table, FIB, received) \(counts()), BFD \(bfdStatus() ?? "?")\n\(logs())")
            throw error
        }

        // The third run waits 2 s before the restart, so that FRR's BFD detection time (900 ms) runs
        // out while Herald is away instead of Herald's new BFD session taking it down.
        for (kill9, pause) in [(false, Duration.zero), (true, .zero), (true, .seconds(2))] {
            let restart = try await restartWhileSampling(herald, kill9: kill9, pause: pause, peer: "frr", routes: Self.routes, restart: {
                try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN)
            }, sample: counts)
            herald = restart.herald
            let back = restart.back
            let seen = restart.samples
            let gaps = seen.filter { $0.bgp != Self.routes || $0.fib != Self.routes }
            print("""
                cookbook restart (\(kill9 ? "kill -9" : "SIGTERM")\(pause == .zero ? "" : ", restarted after \(pause)")), FRR with bfd check-control-plane-failure + graceful-restart: \
                session and BFD back after \(back); \(seen.count) samples every 100 ms, lowest bgpd table \(seen.map(\.bgp).min() ?? -1), \
                kernel \(seen.map(\.fib).min() ?? -1) of \(Self.routes), \(gaps.count) below; \
                neighbor pfxRcd lowest \(seen.map(\.received).min() ?? -1), \(seen.filter { $0.received != Self.routes }.count) below
                """)
            #expect(seen.count >= 10 && gaps.isEmpty, "FRR's route count left \(Self.routes): \(gaps.prefix(20)); logs:\n\(logs())")
            #expect(bfdStatus() == "up")
        }
        #expect(herald.stop() == 0)
    }
}
