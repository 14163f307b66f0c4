import TestSupport
import Foundation
import Testing
@testable import BGP
import IP

/// Messages captured from a real BIRD 2 ⇄ GoBGP 3 session (Fixtures/bird2-gobgp3-session.txt):
/// each decodes without error and re-encodes to the same bytes.
@Suite struct CapturedSessionTests {
    struct Captured {
        let sender: String
        let type: String
        let bytes: [UInt8]
    }

    static func load(_ name: String = "bird2-gobgp3-session") throws -> [Captured] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "txt", subdirectory: "Fixtures"))
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        var result: [Captured] = []
        var index = 0
        while index + 1 < lines.count {
            let header = lines[index].split(separator: " ")
            result.append(Captured(sender: String(header[0]), type: String(header[1]), bytes: hex(String(lines[index + 1]))))
            index += 2
        }
        return result
    }

    /// Replays a capture: OPENs with the initial context, then every message with the context
    /// its receiver negotiated; each must decode cleanly and re-encode to the same bytes.
    /// Returns what each side negotiated, keyed by that side.
    @discardableResult
    static func replay(_ name: String) throws -> [String: SessionParameters] {
        let messages = try load(name)
        var opens: [String: OpenMessage] = [:]
        var negotiated: [String: SessionParameters] = [:]
        for captured in messages {
            #expect(try MessageFraming.nextMessageLength(in: captured.bytes) == captured.bytes.count)
            let receiver = opens.keys.first { $0 != captured.sender }
            let context = receiver.flatMap { negotiated[$0]?.receiveContext } ?? .initial
            let message = try BGPMessage.decode(captured.bytes, context: context)
            #expect(message.encoded(context: context).hexString == captured.bytes.hexString, "\(name): \(captured.sender) \(captured.type)")
            if case .update(let u) = message { #expect(u.errors.isEmpty, "\(name): \(captured.sender) \(captured.type)") }
            if case .open(let open) = message {
                opens[captured.sender] = open
                if opens.count == 2 {
                    for (me, mine) in opens {
                        let theirs = opens.first { $0.key != me }!.value
                        negotiated[me] = try SessionParameters.negotiate(local: mine, remote: theirs).get()
                    }
                }
            }
        }
        #expect(negotiated.count == 2)
        return negotiated
    }

    @Test func birdAndGoBGPRoundTrip() throws {
        #expect(try Self.load().count == 14)
        let n = try Self.replay("bird2-gobgp3-session")
        let p = try #require(n["bird"])
        #expect(p.fourOctetASN && p.holdTime == 90)
        #expect(p.families == [.ipv4Unicast, .ipv6Unicast])
        #expect(p.addPathSend == [.ipv4Unicast] && p.addPathReceive == [.ipv4Unicast])
        #expect(!p.extendedMessages)
        #expect(p.peerHostname == "vm")
    }

    @Test func birdAndFRRRoundTrip() throws {
        let n = try Self.replay("bird2-frr-session")
        let bird = try #require(n["bird"]), frr = try #require(n["frr"])
        #expect(bird.holdTime == 60 && bird.peerASN == 65003)
        #expect(bird.addPathReceive == [.ipv4Unicast] && bird.addPathSend.isEmpty)
        #expect(frr.addPathSend == [.ipv4Unicast])
        #expect(bird.enhancedRouteRefresh && bird.routeRefresh)
        #expect(bird.peerHostname == "frr-lab")
    }

    @Test func whatFRRSaid() throws {
        let messages = try Self.load("bird2-frr-session")
        let fromFRR = CodecContext(fourOctetASN: true, addPath: [.ipv4Unicast])
        guard case .update(let v4) = try BGPMessage.decode(messages[4].bytes, context: fromFRR) else { Issue.record("no UPDATE"); return }
        // FRR sets Extended Length on AS_PATH even when short; the override keeps that.
        #expect(v4.extendedLengthOverrides == [AttributeType.asPath.rawValue: true])
        #expect(v4.attributes.asPath == .sequence([65003, 65003, 65003]))
        #expect(v4.attributes.communities == [Community(asn: 65003, value: 1), .blackhole, .noExport])
        #expect(v4.attributes.multiExitDiscriminator == 20)
        guard case .update(let mp) = try BGPMessage.decode(messages[5].bytes, context: fromFRR) else { Issue.record("no UPDATE"); return }
        // No IPv6 address on the session: FRR sends the IPv4-mapped address as next hop.
        #expect(mp.attributes.mpReachNLRI?.nextHop == .ipv6(v6("::ffff:100.64.1.2"), linkLocal: nil))
        // Enhanced route refresh: BIRD brackets its re-advertisement with BoRR / EoRR.
        let refreshes = try messages.filter { $0.type == "ROUTE-REFRESH" }.map { try BGPMessage.decode($0.bytes) }
        #expect(refreshes == [.routeRefresh(RouteRefreshMessage(family: .ipv4Unicast)),
                              .routeRefresh(RouteRefreshMessage(family: .ipv4Unicast, subtype: .beginningOfRouteRefresh)),
                              .routeRefresh(RouteRefreshMessage(family: .ipv4Unicast, subtype: .endOfRouteRefresh))])
        guard case .notification(let n) = try BGPMessage.decode(messages.last!.bytes) else { Issue.record("no NOTIFICATION"); return }
        #expect(n.description == "6/2 (Administrative Shutdown): 'rack move in progress'")
    }

    @Test func whatTheMessagesSay() throws {
        let messages = try Self.load()
        let context = CodecContext(fourOctetASN: true, addPath: [.ipv4Unicast])
        func decode(_ i: Int) throws -> BGPMessage { try BGPMessage.decode(messages[i].bytes, context: i < 2 ? .initial : context) }

        guard case .open(let bird) = try decode(0), case .open(let gobgp) = try decode(1) else { Issue.record("no OPENs"); return }
        #expect(bird.asn == 65001 && gobgp.asn == 65002)
        #expect(bird.capabilities.contains(.gracefulRestart(GracefulRestart(restartTime: 120, families: [.init(.ipv4Unicast), .init(.ipv6Unicast)]))))
        #expect(bird.capabilities.contains(.unknown(code: 71, value: [])))  // long-lived graceful restart
        #expect(gobgp.capabilities.contains(.fqdn(hostname: "vm", domain: "")))
        #expect(gobgp.capabilities.contains(.extendedNextHop([ExtendedNextHopEntry(family: .ipv4Unicast, nextHopAFI: .ipv6)])))

        // BIRD's IPv4 announcement with ADD-PATH path identifiers and its communities.
        guard case .update(let v4) = try decode(4) else { Issue.record("no UPDATE"); return }
        #expect(v4.attributes.communities == [Community(asn: 65001, value: 100), .noExport])
        #expect(v4.attributes.largeCommunities == [LargeCommunity(65001, 1, 2)])
        #expect(v4.attributes.extendedCommunities == [.routeTarget(asn: 65001, value: 100)])
        #expect(Set(v4.nlri.map(\.prefix)) == [prefix("192.0.2.0/24"), prefix("198.51.100.1/32"), prefix("198.51.100.2/32")])
        #expect(v4.nlri.allSatisfy { $0.pathID != nil })

        // End-of-RIB markers from BIRD: IPv4 (empty UPDATE) and IPv6 (MP_UNREACH with a one-octet length).
        guard case .update(let eor4) = try decode(5), case .update(let eor6) = try decode(7) else { Issue.record("no EoR"); return }
        #expect(eor4.endOfRIB == .ipv4Unicast && eor6.endOfRIB == .ipv6Unicast)

        // BIRD's IPv6 announcement: global + link-local next hop.
        guard case .update(let v6update) = try decode(6), let mp = v6update.attributes.mpReachNLRI,
              case .ipv6(let global, let linkLocal?) = mp.nextHop else { Issue.record("no MP_REACH"); return }
        #expect(global == v6("fd00::1") && linkLocal.isLinkLocal)
        #expect(mp.nlri.map(\.prefix) == [prefix("2001:db8:1::/48"), prefix("2001:db8:2::/64")])

        // GoBGP's withdrawal of a path and BIRD's shutdown.
        guard case .update(let withdrawal) = try decode(11) else { Issue.record("no withdrawal"); return }
        #expect(withdrawal.withdrawn == [nlri("203.0.113.128/25", pathID: 1)])
        guard case .notification(let n) = try decode(13) else { Issue.record("no NOTIFICATION"); return }
        #expect(n.description == "6/2 (Administrative Shutdown): 'maintenance window 42'")
    }
}
