import Testing
@testable import BGP
import IP

/// Two FSMs joined by an in-memory byte stream, driven the way BGPSpeaker will drive them:
/// framing → decode → event → actions → encode. No sockets, no clocks.
@Suite struct LoopbackSessionTests {
    struct Speaker {
        var fsm: SessionFSM
        var inbox: [UInt8] = []
        var parameters: SessionParameters?
        var downReasons: [String] = []
        var received: [UpdateMessage] = []
        var receiveContext: CodecContext { parameters?.receiveContext ?? .initial }
        var sendContext: CodecContext { parameters?.sendContext ?? .initial }
    }

    var a: Speaker
    var b: Speaker

    init() {
        let openA = OpenMessage(asn: 4_200_000_001, holdTime: 90, bgpIdentifier: IPv4Address(100, 64, 0, 1), capabilities: [
            .multiprotocol(.ipv4Unicast), .multiprotocol(.ipv6Unicast), .routeRefresh, .addPath([.ipv4Unicast: .send]),
            .gracefulRestart(GracefulRestart(restartTime: 120, families: [.init(.ipv4Unicast)])),
        ])
        let openB = OpenMessage(asn: 65002, holdTime: 30, bgpIdentifier: IPv4Address(100, 64, 0, 2), capabilities: [
            .multiprotocol(.ipv4Unicast), .multiprotocol(.ipv6Unicast), .routeRefresh, .addPath([.ipv4Unicast: .receive]),
            .gracefulRestart(GracefulRestart(restartTime: 90, families: [.init(.ipv4Unicast, forwardingPreserved: true)])),
        ])
        a = Speaker(fsm: SessionFSM(configuration: SessionConfiguration(localOpen: openA, expectations: PeerExpectations(peerASN: 65002))))
        b = Speaker(fsm: SessionFSM(configuration: SessionConfiguration(localOpen: openB, expectations: PeerExpectations(peerASN: 4_200_000_001), passive: true)))
    }

    /// Performs `actions` of one side; returns whether it asked to connect.
    static func perform(_ actions: [SessionAction], by speaker: inout Speaker, to peer: inout Speaker) -> Bool {
        var connect = false
        for action in actions {
            switch action {
            case .connect: connect = true
            case .send(let message): peer.inbox += message.encoded(context: speaker.sendContext)
            case .established(let parameters): speaker.parameters = parameters
            case .down(let reason): speaker.downReasons.append(reason)
            case .arm, .stop, .closeConnection: break
            }
        }
        return connect
    }

    /// Delivers every complete message in `speaker`'s inbox as events.
    static func deliver(to speaker: inout Speaker, from peer: inout Speaker) throws {
        while let length = try MessageFraming.nextMessageLength(in: speaker.inbox, maxMessageLength: speaker.receiveContext.maxMessageLength),
              length <= speaker.inbox.count {
            let bytes = Array(speaker.inbox[0..<length])
            speaker.inbox.removeFirst(length)
            let event: SessionEvent
            do {
                switch try BGPMessage.decode(bytes, context: speaker.receiveContext) {
                case .open(let open): event = .bgpOpen(open)
                case .keepalive: event = .keepaliveMessage
                case .update(let update):
                    speaker.received.append(update)
                    event = .updateMessage
                case .notification(let notification): event = .notificationMessage(notification)
                case .routeRefresh: continue
                }
            } catch {
                event = .messageError(error)
            }
            _ = perform(speaker.fsm.handle(event), by: &speaker, to: &peer)
        }
    }

    mutating func pump() throws {
        for _ in 0..<10 {
            try Self.deliver(to: &a, from: &b)
            try Self.deliver(to: &b, from: &a)
        }
    }

    @Test mutating func sessionComesUpCarriesRoutesAndShutsDown() throws {
        _ = Self.perform(b.fsm.handle(.manualStart), by: &b, to: &a)
        #expect(b.fsm.state == .active)
        let connect = Self.perform(a.fsm.handle(.manualStart), by: &a, to: &b)
        #expect(connect)
        _ = Self.perform(a.fsm.handle(.tcpConnectionAcknowledged), by: &a, to: &b)
        _ = Self.perform(b.fsm.handle(.tcpConnectionConfirmed), by: &b, to: &a)
        try pump()

        let pa = try #require(a.parameters), pb = try #require(b.parameters)
        #expect(a.fsm.state == .established(pa) && b.fsm.state == .established(pb))
        #expect(pa.holdTime == 30 && pb.holdTime == 30)
        #expect(pa.fourOctetASN && pa.peerASN == 65002 && pb.peerASN == 4_200_000_001)
        #expect(pa.addPathSend == [.ipv4Unicast] && pb.addPathReceive == [.ipv4Unicast])
        #expect(pb.peerGracefulRestart?.restartTime == 120)

        // A packs 5000 host routes (with path ids, as ADD-PATH was agreed) plus End-of-RIB.
        let prefixes = (0..<5000).map { NLRI(IPPrefix(host: .v4(IPv4Address(0x6440_1000 + UInt32($0)))), pathID: 1) }
        let packer = UpdatePacker(parameters: pa)
        let attributes: [PathAttribute] = [.origin(.igp), .asPath(.sequence([4_200_000_001])), .communities([.noExport])]
        for bytes in try packer.announcements(prefixes, attributes: attributes, nextHop: .ipv4(IPv4Address(100, 64, 0, 1))) + [packer.endOfRIB(.ipv4Unicast)] {
            b.inbox += bytes
        }
        try pump()
        #expect(b.received.flatMap(\.announced) == prefixes)
        #expect(b.received.last?.endOfRIB == .ipv4Unicast)
        #expect(b.received.allSatisfy { $0.errors.isEmpty })

        // A's operator shuts the session down with a message for B's operator.
        _ = Self.perform(a.fsm.handle(.manualStop(communication: "maintenance")), by: &a, to: &b)
        try pump()
        #expect(a.downReasons == ["stopped by operator: 'maintenance'"])
        #expect(b.downReasons == ["peer sent NOTIFICATION 6/2 (Administrative Shutdown): 'maintenance'"])
        #expect(a.fsm.state == .idle && b.fsm.state == .idle)
    }

    @Test mutating func wrongPeerASIsRefusedWithANotification() throws {
        let wrong = OpenMessage(asn: 65099, holdTime: 90, bgpIdentifier: IPv4Address(100, 64, 0, 9), capabilities: [.multiprotocol(.ipv4Unicast)])
        b = Speaker(fsm: SessionFSM(configuration: SessionConfiguration(localOpen: wrong, passive: true)))
        _ = Self.perform(b.fsm.handle(.manualStart), by: &b, to: &a)
        _ = Self.perform(a.fsm.handle(.manualStart), by: &a, to: &b)
        _ = Self.perform(a.fsm.handle(.tcpConnectionAcknowledged), by: &a, to: &b)
        _ = Self.perform(b.fsm.handle(.tcpConnectionConfirmed), by: &b, to: &a)
        try pump()
        #expect(a.downReasons == ["OPEN refused: 2/2 (Bad Peer AS): peer is AS65099, expected AS65002"])
        #expect(b.downReasons == ["peer sent NOTIFICATION 2/2 (Bad Peer AS) while in OpenConfirm"])
    }
}
