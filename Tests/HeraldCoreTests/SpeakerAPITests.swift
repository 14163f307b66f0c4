import Foundation
import Testing
@testable import HeraldCore
import HTTPServer
import IP
import Store

@Suite struct SpeakerAPITests {
    func fixture() throws -> APIFixture {
        let api = try APIFixture()
        let settings = SpeakerSettings(asn: 64512, routerID: IPv4Address(192, 0, 2, 1), listen: IPEndpoint(address: .v4(.any), port: 179),
                                       holdTime: 90, keepaliveTime: 30, connectRetryTime: 120, gracefulRestartEnabled: true,
                                       gracefulRestartTime: 120)
        try api.store.write { db in try settings.save(db, now: 1) }
        return api
    }

    @Test func readsAndChangesTheSpeakerDurably() async throws {
        let api = try fixture()
        let read = try await api.call(.GET, "/v1/speaker")
        #expect(read.status == 200 && read["asn"] as? Int == 64512 && read["router_id"] as? String == "192.0.2.1", "\(read.text)")
        #expect((read["graceful_restart"] as? [String: Any])?["restart_time"] as? Int == 120)

        let changed = try await api.call(.PUT, "/v1/speaker", #"{"asn":4200000000,"router_id":"192.0.2.9","hold_time":9,"keepalive_time":3,"graceful_restart":{"restart_time":60}}"#)
        #expect(changed.status == 200, "\(changed.text)")
        let notes = changed["notes"] as? [String] ?? []
        #expect(notes.contains { $0.contains("asn 64512 → 4200000000") && $0.contains("reset") }, "\(notes)")
        #expect(notes.contains { $0.contains("router_id") } && notes.contains { $0.contains("from now on") }, "\(notes)")
        let stored = try api.store.read { db in try SpeakerSettings.load(db) }
        #expect(stored?.asn == 4_200_000_000 && stored?.routerID == IPv4Address(192, 0, 2, 9) && stored?.holdTime == 9)
        #expect(stored?.gracefulRestartTime == 60 && stored?.gracefulRestartEnabled == true && stored?.listen.port == 179)
    }

    @Test func invalidSettingsAreRefusedByFieldAndChangeNothing() async throws {
        let api = try fixture()
        let bad = try await api.call(.PUT, "/v1/speaker", #"{"asn":23456,"router_id":"0.0.0.0","hold_time":2,"listen_port":70000,"graceful_restart":{"restart_time":5000}}"#)
        #expect(bad.status == 422, "\(bad.text)")
        let fields = Set(((bad["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
        #expect(fields == ["asn", "router_id", "hold_time", "listen_port", "graceful_restart.restart_time"], "\(bad.text)")
        let keepalive = try await api.call(.PUT, "/v1/speaker", #"{"hold_time":30,"keepalive_time":11}"#)
        #expect(keepalive.status == 422 && keepalive.text.contains("third of hold_time"), "\(keepalive.text)")
        let unknown = try await api.call(.PUT, "/v1/speaker", #"{"as":1}"#)
        #expect(unknown.status == 400 && unknown.text.contains("\"as\""), "\(unknown.text)")
        #expect(try api.store.read { db in try SpeakerSettings.load(db) }?.asn == 64512)
    }

    /// docs/cluster.md: each replica announces with its own --router-id and, given --bgp-listen,
    /// its own listener; PUT /v1/speaker refuses to change them there and takes the rest.
    @Test func aReplicaKeepsItsOwnRouterIDAndListener() async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        let settings = SpeakerSettings(asn: 64512, routerID: IPv4Address(192, 0, 2, 1), listen: IPEndpoint(address: .v4(.any), port: 179),
                                       holdTime: 90, keepaliveTime: 30, connectRetryTime: 120, gracefulRestartEnabled: false,
                                       gracefulRestartTime: 120)
        try store.write { db in try settings.save(db, now: 1) }
        let committer = try Committer(store: store, localRouterID: IPv4Address(10, 0, 10, 2),
                                      localListen: IPEndpoint(address: .v4(IPv4Address(10, 0, 10, 2)), port: 179))
        let router = Router()
        APIServices(committer: committer).register(on: router, startedAt: 0)
        func put(_ body: String) async throws -> (status: Int, text: String) {
            let request = try HTTPRequest(.PUT, "/v1/speaker", headers: ["Content-Type": "application/json"], body: Array(body.utf8))
            let response = await router.respond(to: request, context: RequestContext(requestID: "test"))
            return (Int(response.status.code), String(decoding: response.bodyBytes, as: UTF8.self))
        }
        let routerID = try await put(#"{"router_id":"192.0.2.9"}"#)
        #expect(routerID.status == 422 && routerID.text.contains("router_id") && routerID.text.contains("--router-id"), "\(routerID.text)")
        let listen = try await put(#"{"listen_port":1179}"#)
        #expect(listen.status == 422 && listen.text.contains("listen_port") && listen.text.contains("--bgp-listen"), "\(listen.text)")
        let hold = try await put(#"{"hold_time":120}"#)
        #expect(hold.status == 200, "\(hold.text)")
        let stored = try store.read { db in try SpeakerSettings.load(db) }
        #expect(stored?.routerID == IPv4Address(192, 0, 2, 1) && stored?.listen.port == 179 && stored?.holdTime == 120)
    }
}
