import Testing
@testable import HeraldCore
import BGPSpeaker
import IP
import Store

@Suite struct PeerDomainTests {
    func config(_ address: String, asn: UInt32 = 65001) throws -> PeerConfig {
        PeerConfig(address: try IPAddress(parsing: address), asn: asn)
    }

    /// A configuration in a log line or a `dump` names the neighbour and says whether a password
    /// is set; the MD5 key itself never appears, neither in HeraldCore's `PeerConfig` nor in the
    /// speaker's `PeerSettings`.
    @Test func descriptionsNeverShowThePassword() throws {
        var configured = try config("100.64.0.1")
        configured.password = "md5-Secret-9f3a"
        let settings = SpeakerMapping.peerSettings(name: "r1", configured)
        var dumped = ""
        dump(configured, to: &dumped)
        dump(settings, to: &dumped)
        let shown = [String(describing: configured), String(reflecting: configured), "\(configured)",
                     String(describing: settings), String(reflecting: settings), "\(settings)", dumped]
        for text in shown {
            #expect(!text.contains("md5-Secret-9f3a"), "\(text)")
        }
        #expect(String(describing: configured).contains("100.64.0.1") && String(describing: configured).contains("password: set"),
                "\(configured)")
        #expect("\(settings)".contains("r1") && "\(settings)".contains("password: set"), "\(settings)")
    }

    @Test func createReadUpdateDelete() throws {
        let f = try DomainFixture()
        var wanted = try config("100.64.0.1")
        wanted.password = "s3cret"
        wanted.families = [.ipv4Unicast, .ipv6Unicast]
        wanted.labels = ["site": "lab"]
        let created = try f.write { db in try Peers.create(db, name: "r1", config: wanted, now: 1) }
        #expect(created.passwordSet && created.config == wanted)
        expectDomainError("peer \"r1\" already exists") { _ = try f.write { db in try Peers.create(db, name: "r1", config: wanted, now: 1) } }
        expectDomainError("already peer \"r1\"") { _ = try f.write { db in try Peers.create(db, name: "r2", config: wanted, now: 1) } }

        let cosmetic = try f.write { db in try Peers.update(db, name: "r1", now: 2) { $0.description = "core router"; $0.labels = [:] } }
        #expect(SpeakerConfiguration.sessionResetFields(SpeakerMapping.peerSettings(name: "r1", created.config),
                                                        SpeakerMapping.peerSettings(name: "r1", cosmetic.config)).isEmpty,
                "description and labels do not reset the session")
        let real = try f.write { db in try Peers.update(db, name: "r1", now: 3) { $0.asn = 65002; $0.password = nil } }
        #expect(SpeakerConfiguration.sessionResetFields(SpeakerMapping.peerSettings(name: "r1", cosmetic.config),
                                                        SpeakerMapping.peerSettings(name: "r1", real.config)) == ["asn", "password"])
        #expect(!real.passwordSet)

        #expect(try f.write { db in try Peers.delete(db, name: "r1") }.name == "r1")
        expectDomainError("peer \"r1\" does not exist") { _ = try f.write { db in try Peers.delete(db, name: "r1") } }
    }

    @Test func validationNamesEveryField() throws {
        let f = try DomainFixture()
        var bad = try config("100.64.0.1", asn: 23456)
        bad.localAddress = try IPAddress(parsing: "fd64::1")
        bad.password = String(repeating: "k", count: 81)
        bad.ebgpMultihop = 2
        bad.ttlSecurity = 1
        bad.holdTime = 2
        bad.keepaliveTime = 30
        bad.families = []
        bad.port = 0
        do {
            _ = try f.write { db in try Peers.create(db, name: "R1", config: bad, now: 1) }
            Issue.record("expected validation errors")
        } catch DomainError.invalid(let errors) {
            #expect(Set(errors.map(\.field)) == ["name", "asn", "local_address", "password", "ttl_security", "hold_time", "keepalive_time", "families", "port"])
        }
        var keepalive = try config("100.64.0.1")
        keepalive.holdTime = 9
        keepalive.keepaliveTime = 9
        expectDomainError("keepalive_time: must be at most a third of hold_time (3 s)") { _ = try f.write { db in try Peers.create(db, name: "r", config: keepalive, now: 1) } }
    }

    @Test func sessionHistory() throws {
        let f = try DomainFixture()
        try f.write { db in
            try PeerEvents.append(db, peer: "r1", kind: .established, from: "OpenConfirm", to: "Established", reason: "session established", now: 1)
            try PeerEvents.append(db, peer: "r1", kind: .down, from: "Established", to: "Idle",
                                  reason: "peer sent NOTIFICATION 6/2 (Administrative Shutdown): 'maintenance'",
                                  notification: RecordedNotification(code: 6, subcode: 2, text: "maintenance", direction: .received), now: 2)
            try PeerEvents.append(db, peer: "r2", kind: .down, reason: "hold timer expired after 90 s", now: 3)
        }
        let events = try f.store.read { db in try PeerEvents.list(db, peer: "r1") }
        #expect(events.map(\.kind) == [.established, .down])
        #expect(events[1].notification == RecordedNotification(code: 6, subcode: 2, text: "maintenance", direction: .received))
        #expect(try f.store.read { db in try PeerEvents.list(db, peer: "r1", after: events[0].id) }.count == 1)
    }
}
