import TestSupport
import BGPSpeaker
import Foundation
@testable import HeraldCore
import HTTPServer
import IP
import Logging
import Sockets
import Store
import Testing

/// The issue's rule, end to end through the speaker: after any random sequence of API calls and
/// a restart, each peer's Adj-RIB-Out — and what the peer actually received — equals the set
/// derived from the database alone.
@Suite("Adj-RIB-Out equals the derived set", .serialized, .timingSensitive)
struct AdjRIBOutConvergenceTests {
    /// Herald's side: store, committer, speaker and API, as `herald serve` wires them.
    final class Herald: @unchecked Sendable {
        let loop: EventLoop
        let committer: Committer
        let speaker: Speaker
        let bridge: SpeakerBridge
        let router = Router()
        let following: Task<Void, Never>

        init(store: Store, port: UInt16, logger: Logger) async throws {
            loop = try EventLoop(name: "herald-a")
            committer = try Committer(store: store)
            speaker = Speaker(settings: BGPSpeaker.SpeakerSettings(asn: 65001, routerID: IPv4Address(10, 0, 0, 1),
                                                                   listenAddresses: [.v4(IPv4Address(127, 0, 0, 1))], listenPort: port,
                                                                   holdTime: 9, connectRetryTime: 2, idleHoldTime: 1, maximumIdleHoldTime: 2,
                                                                   bfdPort: 23_801),
                              loop: loop, logger: logger)
            bridge = SpeakerBridge(speaker: speaker, committer: committer, logger: logger)
            following = try await bridge.start()
            APIServices(committer: committer, bridge: bridge).register(on: router, startedAt: 0)
        }

        @discardableResult
        func call(_ method: HTTPMethod, _ target: String, _ body: String? = nil) async throws -> Int {
            var headers = HTTPHeaders()
            if body != nil { headers.set("Content-Type", "application/json") }
            let request = try HTTPRequest(method, target, headers: headers, body: Array((body ?? "").utf8))
            return Int(await router.respond(to: request, context: RequestContext(requestID: "t")).status.code)
        }

        /// Stops like a crash would leave it: no Cease, the committer's queue drained.
        func stop() async {
            await speaker.shutdown(mode: .gracefulRestart)
            committer.finish()
            await following.value
            loop.shutdown()
        }
    }

    /// (prefix, next hop) pairs: what a peer with ADD-PATH should hold for `routes`.
    static func expected(_ routes: [IPPrefix: DesiredRoute], session: IPAddress) -> Set<String> {
        Set(routes.values.flatMap { route in
            route.paths.map { path -> String in
                switch path.nextHop {
                case .session: "\(route.prefix) via \(session)"
                case .address(let address): "\(route.prefix) via \(address)"
                }
            }
        })
    }

    static func pairs(_ entries: [RIBEntry]) -> Set<String> {
        Set(entries.map { "\($0.prefix) via \($0.nextHop.map(\.description) ?? "?")" })
    }

    @Test(arguments: [1, 2, 3])
    func randomCallsThenARestartConverge(seed: UInt64) async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let port = UInt16(24_100 + seed)
        var herald: Herald? = try await Herald(store: store, port: port, logger: logger)

        // The peer: a plain speaker that connects to Herald and takes every path (ADD-PATH).
        let peerLoop = try EventLoop(name: "peer-b")
        let peer = Speaker(settings: BGPSpeaker.SpeakerSettings(asn: 65002, routerID: IPv4Address(10, 0, 0, 2), holdTime: 9,
                                                                connectRetryTime: 1, idleHoldTime: 1, maximumIdleHoldTime: 1, bfdPort: 23_802),
                           loop: peerLoop, logger: logger)
        try await peer.start()
        try await peer.addPeer(PeerSettings(name: "herald", address: .v4(IPv4Address(127, 0, 0, 1)), asn: 65001, port: port,
                                            localAddress: .v4(IPv4Address(127, 0, 0, 2)), addPathReceive: true))
        defer {
            Task {
                await peer.shutdown(mode: .withdraw(message: nil))
                peerLoop.shutdown()
            }
        }
        let h = try #require(herald)
        #expect(try await h.call(.POST, "/v1/peers", #"{"name":"b","address":"127.0.0.2","local_address":"127.0.0.1","asn":65002,"passive":true,"add_path_send":true}"#) == 201)

        // A seeded random walk over the API: pools, nodes, allocations, static routes.
        var rng = SeededGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15)
        _ = try await h.call(.PUT, "/v1/pools/lb", #"{"blocks":["198.51.100.0/27"],"node_selector":{"role":"worker"}}"#)
        for step in 0..<120 {
            let name = "svc-\(Int.random(in: 0..<10, using: &rng))"
            let node = "n\(Int.random(in: 1...3, using: &rng))"
            switch Int.random(in: 0..<8, using: &rng) {
            case 0: try await h.call(.DELETE, "/v1/allocations/\(name)")
            case 1: try await h.call(.PUT, "/v1/allocations/\(name)", #"{"pool":"lb"}"#)
            case 2: try await h.call(.PUT, "/v1/allocations/\(name)", #"{"pool":"lb","traffic_policy":"local","nodes":["\#(node)"]}"#)
            case 3: try await h.call(.PUT, "/v1/nodes/\(node)",
                                     #"{"addresses":["100.64.0.\#(Int.random(in: 1...6, using: &rng))"],"labels":{"role":"\#(Bool.random(using: &rng) ? "worker" : "spare")"}}"#)
            case 4: try await h.call(.DELETE, "/v1/nodes/\(node)")
            case 5: try await h.call(.PUT, "/v1/routes/r\(step % 5)", #"{"prefix":"10.\#(Int.random(in: 0...4, using: &rng)).0.0/16","next_hops":["\#(node)","self"]}"#)
            case 6: try await h.call(.DELETE, "/v1/routes/r\(step % 5)")
            default: try await h.call(.PUT, "/v1/pools/lb", #"{"blocks":["198.51.100.0/27"],"node_selector":{"role":"\#(Bool.random(using: &rng) ? "worker" : "spare")"}}"#)
            }
        }

        // Restart: everything in memory is gone; a new process derives from the database.
        await h.stop()
        herald = nil
        let restarted = try await Herald(store: store, port: port, logger: logger)
        let derived = try store.read { db in try DesiredRoutes.derive(db) }
        let want = Self.expected(derived, session: .v4(IPv4Address(127, 0, 0, 1)))
        #expect(restarted.committer.desiredRoutes == derived)
        #expect(want.count >= 3, "the walk left routes to compare: \(want)")

        var advertised: Set<String> = []
        try await waitUntil("Adj-RIB-Out equals the derived set (\(want.count) paths)", timeout: .seconds(30)) {
            guard await restarted.speaker.peer(named: "b")?.state == .established else { return false }
            advertised = Self.pairs(try await restarted.speaker.advertisedRoutes(peer: "b"))
            return advertised == want
        }
        #expect(advertised == want)
        // And on the wire: the peer holds exactly that (no stale leftovers from before the restart).
        var received: Set<String> = []
        try await waitUntil("the peer received the derived set", timeout: .seconds(30)) {
            let entries = try await peer.receivedRoutes(peer: "herald")
            received = Self.pairs(entries)
            return received == want && !entries.contains(where: \.stale)
        }
        #expect(received == want)
        await restarted.stop()
    }
}

