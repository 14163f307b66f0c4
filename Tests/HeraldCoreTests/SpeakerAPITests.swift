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
}
