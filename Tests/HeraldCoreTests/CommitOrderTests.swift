import BGPSpeaker
import Foundation
@testable import HeraldCore
import HTTPServer
import IP
import Logging
import Sockets
import Store
import Testing

/// Every change goes through one committer, and the speaker follows in commit order: however
/// API calls race, the speaker ends up configured exactly as the database says.
@Suite(.serialized) struct CommitOrderTests {
    /// Herald's side with a running speaker (no listener reachable from outside: 127.0.0.1,
    /// a free port; peers are passive, so nothing connects anywhere).
    final class Herald: @unchecked Sendable {
        let directory = ScratchDirectory()
        let store: Store
        let committer: Committer
        let loop: EventLoop
        let speaker: Speaker
        let following: Task<Void, Never>
        let router = Router()

        init() async throws {
            store = try Store(path: directory.file("herald.db"))
            let row = SpeakerSettings(asn: 64512, routerID: IPv4Address(192, 0, 2, 1), listen: IPEndpoint(address: .v4(IPv4Address(127, 0, 0, 1)), port: 0),
                                      holdTime: 90, keepaliveTime: 30, connectRetryTime: 120, gracefulRestartEnabled: true, gracefulRestartTime: 120)
            try store.write { db in try row.save(db, now: 1) }
            committer = try Committer(store: store)
            loop = try EventLoop(name: "commit-order")
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            var settings = SpeakerMapping.settings(row, restarting: false)
            settings.bfdPort = 23_811
            speaker = Speaker(settings: settings, loop: loop, logger: logger)
            let bridge = SpeakerBridge(speaker: speaker, committer: committer, logger: logger)
            following = try await bridge.start()
            APIServices(committer: committer, bridge: bridge).register(on: router, startedAt: 0)
        }

        @discardableResult
        func call(_ method: HTTPMethod, _ target: String, _ body: String? = nil) async throws -> (status: Int, text: String) {
            var headers = HTTPHeaders()
            if body != nil { headers.set("Content-Type", "application/json") }
            let request = try HTTPRequest(method, target, headers: headers, body: Array((body ?? "").utf8))
            let response = await router.respond(to: request, context: RequestContext(requestID: "t"))
            return (Int(response.status.code), String(decoding: response.bodyBytes, as: UTF8.self))
        }

        func stop() async {
            await speaker.shutdown(mode: .withdraw(message: nil))
            committer.finish()
            await following.value
            loop.shutdown()
            store.close()
        }
    }

    @Test(.heavy, .timeLimit(.minutes(2))) func racingPeerAndSpeakerChangesLeaveTheSpeakerEqualToTheDatabase() async throws {
        let herald = try await Herald()
        var statuses: [Int: Int] = [:]
        for round in 0..<300 {
            let address = "127.0.0.\(2 + round % 5)"
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                group.addTask { try await herald.call(.DELETE, "/v1/peers/r1").status }
                group.addTask {
                    try await herald.call(.POST, "/v1/peers", #"{"name":"r1","address":"\#(address)","asn":65001,"passive":true}"#).status
                }
                group.addTask { try await herald.call(.PATCH, "/v1/peers/r1", #"{"hold_time":\#(30 + round % 7 * 3),"description":"round \#(round)"}"#).status }
                group.addTask { try await herald.call(.PATCH, "/v1/peers/r1", #"{"asn":\#(65001 + round % 3),"labels":{"round":"\#(round)"}}"#).status }
                group.addTask { try await herald.call(.PUT, "/v1/speaker", #"{"hold_time":\#(90 + round % 4 * 3),"connect_retry_time":\#(10 + round % 5)}"#).status }
                group.addTask {
                    try await herald.call(.POST, "/v1/peers", #"{"name":"r\#(2 + round % 3)","address":"127.0.1.\#(round % 3)","asn":65002,"passive":true}"#).status
                }
                group.addTask { try await herald.call(.DELETE, "/v1/peers/r\(2 + (round + 1) % 3)").status }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            for status in results { statuses[status, default: 0] += 1 }
            #expect(results.allSatisfy { [200, 201, 204, 404, 409].contains($0) }, "round \(round): \(results)")
        }
        #expect((statuses[200] ?? 0) > 0 && (statuses[201] ?? 0) > 0 && (statuses[204] ?? 0) > 0, "\(statuses)")

        // Each call answered after the speaker applied it, so the speaker is current now.
        let stored = try herald.store.read { db in (try Peers.list(db), try SpeakerSettings.load(db)!) }
        let expected = Dictionary(uniqueKeysWithValues: stored.0.map { ($0.name, SpeakerMapping.peerSettings(name: $0.name, $0.config)) })
        let running = try #require(await herald.speaker.configuration())
        #expect(running.peers == expected)
        var settings = SpeakerMapping.settings(stored.1, restarting: false)
        settings.bfdPort = 23_811
        #expect(running.settings == settings)
        #expect(await herald.speaker.snapshot().peers.map(\.name) == stored.0.map(\.name).sorted(), "one session driver per stored peer")
        #expect(herald.committer.speakerConfiguration.peers == expected, "the committer's copy agrees too")
        await herald.stop()
    }

    /// A refused change leaves nothing behind: an IPv4-mapped address is the same neighbour as
    /// the IPv4 address (the speaker's configuration would refuse a second peer for it, 409);
    /// validation now refuses the mapped form first (422, naming the IPv4 address), and either
    /// way nothing is stored and no history is written.
    @Test func aChangeTheSpeakerWouldRefuseIsRefusedAndNothingIsStored() async throws {
        let herald = try await Herald()
        #expect(try await herald.call(.POST, "/v1/peers", #"{"name":"r1","address":"127.0.0.3","asn":65001,"passive":true}"#).status == 201)
        let refused = try await herald.call(.POST, "/v1/peers", #"{"name":"r2","address":"::ffff:127.0.0.3","asn":65001,"passive":true}"#)
        #expect(refused.status == 422 && refused.text.contains("use 127.0.0.3"), "\(refused.text)")
        #expect(try await herald.call(.POST, "/v1/peers", #"{"name":"r2","address":"127.0.0.4","asn":65001,"passive":true}"#).status == 201)
        let moved = try await herald.call(.PATCH, "/v1/peers/r2", #"{"address":"::ffff:127.0.0.3"}"#)
        #expect(moved.status == 422, "\(moved.text)")
        let stored = try herald.store.read { db in try Peers.list(db) }
        #expect(stored.map(\.config.address.description) == ["127.0.0.3", "127.0.0.4"])
        let history = try herald.store.read { db in try PeerEvents.list(db, peer: "r2") }
        #expect(history.map(\.reason) == ["peer created"], "the refused changes left no history")
        #expect(try #require(await herald.speaker.configuration()).peers.keys.sorted() == ["r1", "r2"])
        await herald.stop()
    }

    /// The history says exactly what a change did to the session: the speaker's own rule decides.
    @Test func historySaysWhetherTheSessionWasReset() async throws {
        let herald = try await Herald()
        #expect(try await herald.call(.POST, "/v1/peers", #"{"name":"r1","address":"127.0.0.3","asn":65001,"passive":true}"#).status == 201)
        #expect(try await herald.call(.PATCH, "/v1/peers/r1", #"{"connect_retry_time":30,"labels":{"a":"b"},"max_prefixes":10}"#).status == 200)
        #expect(try await herald.call(.PATCH, "/v1/peers/r1", #"{"hold_time":30,"keepalive_time":10}"#).status == 200)
        #expect(try await herald.call(.PATCH, "/v1/peers/r1", #"{"enabled":false}"#).status == 200)
        #expect(try await herald.call(.PATCH, "/v1/peers/r1", #"{"enabled":true}"#).status == 200)
        let reasons = try herald.store.read { db in try PeerEvents.list(db, peer: "r1") }.filter { $0.kind == .config }.map(\.reason)
        #expect(reasons == ["peer created", "peer changed", "peer changed (hold_time, keepalive_time): session reset",
                            "peer changed: disabled, session shut down", "peer changed: enabled, session starting"])
        await herald.stop()
    }
}
