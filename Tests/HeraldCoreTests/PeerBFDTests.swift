import BGPSpeaker
import Foundation
import HTTPServer
import Logging
import Sockets
import Store
import Testing
@testable import HeraldCore
import IP

@Suite struct PeerBFDTests {
    @Test func bfdSettingsThroughTheAPI() async throws {
        let api = try APIFixture()
        let plain = try await api.call(.POST, "/v1/peers", #"{"name":"r0","address":"100.64.0.9","asn":65001}"#)
        let defaults = plain["bfd"] as? [String: Any]
        #expect(defaults?["enabled"] as? Bool == false && defaults?["min_tx"] as? Int == 300 && defaults?["min_rx"] as? Int == 300
            && defaults?["multiplier"] as? Int == 3 && defaults?["session"] == nil, "\(plain.text)")

        let created = try await api.call(.POST, "/v1/peers", #"{"name":"r1","address":"100.64.0.1","asn":65001,"bfd":{"enabled":true,"min_tx":100}}"#)
        #expect(created.status == 201, "\(created.text)")
        let bfd = created["bfd"] as? [String: Any]
        #expect(bfd?["enabled"] as? Bool == true && bfd?["min_tx"] as? Int == 100 && bfd?["min_rx"] as? Int == 300)

        // BFD timers change with a Poll Sequence, not a BGP reset.
        let patched = try await api.call(.PATCH, "/v1/peers/r1", #"{"bfd":{"multiplier":5,"min_rx":50}}"#)
        let after = patched["bfd"] as? [String: Any]
        #expect(patched.status == 200 && after?["multiplier"] as? Int == 5 && after?["min_rx"] as? Int == 50 && after?["min_tx"] as? Int == 100)
        let reread = try await api.call(.GET, "/v1/peers/r1")
        #expect((reread["bfd"] as? [String: Any])?["multiplier"] as? Int == 5)

        let bad = try await api.call(.PATCH, "/v1/peers/r1", #"{"bfd":{"min_tx":5,"min_rx":70000,"multiplier":0}}"#)
        let fields = ((bad["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
        #expect(bad.status == 422 && Set(fields) == ["bfd.min_tx", "bfd.min_rx", "bfd.multiplier"], "\(bad.text)")
        let unknown = try await api.call(.PATCH, "/v1/peers/r1", #"{"bfd":{"interval":5}}"#)
        #expect(unknown.status == 400 && unknown.text.contains("interval"), "\(unknown.text)")
        let multihop = try await api.call(.PATCH, "/v1/peers/r1", #"{"ebgp_multihop":3}"#)
        #expect(multihop.status == 422 && multihop.text.contains("bfd.enabled"), "\(multihop.text)")

        let events = try await api.call(.GET, "/v1/peers/r1/events")
        let reasons = (events["events"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
        #expect(reasons == ["peer created", "peer changed"], "\(events.text)")
    }

    @Test func storedBFDSettingsSurviveAReopen() throws {
        let directory = ScratchDirectory()
        let path = directory.file("herald.db")
        do {
            let store = try Store(path: path)
            var config = PeerConfig(address: try IPAddress(parsing: "100.64.0.1"), asn: 65001)
            config.bfd = PeerBFD(enabled: true, minTx: 50, minRx: 60, multiplier: 4)
            _ = try store.write { db in try Peers.create(db, name: "r1", config: config, now: 1) }
            store.close()
        }
        let store = try Store(path: path)
        #expect(try store.read { db in try Peers.get(db, name: "r1") }?.config.bfd == PeerBFD(enabled: true, minTx: 50, minRx: 60, multiplier: 4))
        // The schema refuses what the domain refuses.
        #expect(throws: DatabaseError.self) { try store.write { db in try db.execute("UPDATE peers SET bfd_multiplier = 0") } }
        store.close()
    }

    @Test func peerSettingsCarryBFDOnlyWhenEnabled() throws {
        var config = PeerConfig(address: try IPAddress(parsing: "100.64.0.1"), asn: 65001)
        #expect(SpeakerMapping.peerSettings(name: "r1", config).bfd == nil)
        config.bfd = PeerBFD(enabled: true, minTx: 100, minRx: 200, multiplier: 5)
        #expect(SpeakerMapping.peerSettings(name: "r1", config).bfd == PeerBFDSettings(minTx: 100, minRx: 200, multiplier: 5))
    }

    /// With a running speaker, reads show the live BFD session (here Down: nobody answers).
    @Test func readsShowTheLiveSession() async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        let loop = try EventLoop(name: "bfd-api")
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let speaker = Speaker(settings: BGPSpeaker.SpeakerSettings(asn: 65000, routerID: IPv4Address(10, 0, 0, 1), listenAddresses: [],
                                                                   bfdPort: 23_791),
                              loop: loop, logger: logger)
        let committer = try Committer(store: store)
        let bridge = SpeakerBridge(speaker: speaker, committer: committer, logger: logger)
        let following = try await bridge.start()
        let router = Router()
        PeersAPI(services: APIServices(committer: committer, bridge: bridge)).register(on: router)
        let body = #"{"name":"r1","address":"127.0.0.2","local_address":"127.0.0.1","asn":65001,"passive":true,"bfd":{"enabled":true}}"#
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/json")
        let created = await router.respond(to: try HTTPRequest(.POST, "/v1/peers", headers: headers, body: Array(body.utf8)),
                                           context: RequestContext(requestID: "t"))
        #expect(created.status.code == 201)
        try await Task.sleep(for: .milliseconds(200))
        let read = await router.respond(to: try HTTPRequest(.GET, "/v1/peers/r1"), context: RequestContext(requestID: "t"))
        let json = try JSONSerialization.jsonObject(with: Data(read.bodyBytes)) as? [String: Any]
        let session = (json?["bfd"] as? [String: Any])?["session"] as? [String: Any]
        #expect(session?["state"] as? String == "down", "\(String(decoding: read.bodyBytes, as: UTF8.self))")
        #expect(session?["transmit_interval"] as? Double == 1000)  // the slow rate while not Up (RFC 5880 §6.8.3)
        #expect((session?["packets_out"] as? Int ?? 0) >= 1 && session?["remote_discriminator"] == nil)
        // Turning BFD off ends the session.
        let off = #"{"bfd":{"enabled":false}}"#
        let patched = await router.respond(to: try HTTPRequest(.PATCH, "/v1/peers/r1", headers: headers, body: Array(off.utf8)),
                                           context: RequestContext(requestID: "t"))
        let patchedJSON = try JSONSerialization.jsonObject(with: Data(patched.bodyBytes)) as? [String: Any]
        #expect((patchedJSON?["bfd"] as? [String: Any])?["session"] == nil)
        await speaker.shutdown(mode: .withdraw(message: nil))
        committer.finish()
        await following.value
        loop.shutdown()
        store.close()
    }

    /// BFD going up and down lands in the peer's history (`state` rows), next to the session's.
    @Test(.timingSensitive) func bfdTransitionsAreRecordedInPeerEvents() async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let port: UInt16 = 23_792
        let loopA = try EventLoop(name: "bfd-events-a"), loopB = try EventLoop(name: "bfd-events-b")
        let a = Speaker(settings: BGPSpeaker.SpeakerSettings(asn: 65000, routerID: IPv4Address(10, 0, 0, 1), listenAddresses: [],
                                                             bfdPort: port),
                        loop: loopA, logger: logger)
        let committer = try Committer(store: store)
        let bridge = SpeakerBridge(speaker: a, committer: committer, logger: logger)
        let recorder = Task { await SessionRecorder(committer: committer, logger: logger).record(await a.events()) }
        let following = try await bridge.start()
        var config = PeerConfig(address: try IPAddress(parsing: "127.0.0.2"), asn: 65001)
        config.localAddress = try IPAddress(parsing: "127.0.0.1")
        config.passive = true
        // Slow timers (5 s detection): the test runs beside hundreds of others and must not flap.
        config.bfd = PeerBFD(enabled: true, minTx: 1_000, minRx: 1_000, multiplier: 5)
        let settings = config
        try await committer.commit { change in
            _ = try Peers.create(change.db, name: "r1", config: settings, now: 1)
            _ = try change.apply(.add(SpeakerMapping.peerSettings(name: "r1", settings)))
        }

        // The other end: a plain speaker with BFD towards A (BGP stays passive on both sides).
        let b = Speaker(settings: BGPSpeaker.SpeakerSettings(asn: 65001, routerID: IPv4Address(10, 0, 0, 2), bfdPort: port),
                        loop: loopB, logger: logger)
        try await b.start()
        var toA = PeerSettings(name: "a", address: try IPAddress(parsing: "127.0.0.1"), asn: 65000,
                               localAddress: try IPAddress(parsing: "127.0.0.2"), passive: true,
                               bfd: PeerBFDSettings(minTx: 1_000, minRx: 1_000, multiplier: 5))
        try await b.addPeer(toA)
        func reasons() throws -> [String] {
            try store.read { db in try PeerEvents.list(db, peer: "r1") }.filter { $0.kind == .state }.map(\.reason)
        }
        // Generous: BFD runs at its 1 s slow rate until Up, beside the whole suite.
        let deadline = ContinuousClock.now + .seconds(45)
        while try !reasons().contains("BFD up"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let first = try reasons()
        #expect(first == ["BFD up"], "\(first)")
        toA.bfd = nil
        try await b.updatePeer(toA)  // AdminDown to A
        while try reasons().count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let second = try reasons()
        #expect(second == ["BFD up", "BFD down: neighbor signaled session down"], "\(second)")
        await a.shutdown(mode: .withdraw(message: nil))
        await b.shutdown(mode: .withdraw(message: nil))
        await recorder.value
        committer.finish()
        await following.value
        loopA.shutdown()
        loopB.shutdown()
        store.close()
    }
}
