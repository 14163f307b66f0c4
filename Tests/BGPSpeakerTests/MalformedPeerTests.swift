import BGP
import BGPSpeaker
import Foundation
import Glibc
import IP
import Logging
import Sockets
import Testing

// A scripted peer on a plain socket completes the OPEN handshake with a running speaker, then
// sends malformed messages. RFC 4271 §6 errors must close the session with the right
// NOTIFICATION; RFC 7606 errors in optional attributes must cost routes, never the session; the
// speaker must never crash.

/// A blocking BGP "peer" built from raw bytes.
final class ScriptedPeer {
    let fd: Int32
    var buffer: [UInt8] = []

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(fd); throw TimeoutError(what: "connect errno \(errno)", lastError: nil) }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// The next whole message, or nil when the connection closed.
    func receive() throws -> BGPMessage? {
        while true {
            if let length = try MessageFraming.nextMessageLength(in: buffer) {
                let message = Array(buffer[0..<length])
                buffer.removeFirst(length)
                return try BGPMessage.decode(message, context: CodecContext(fourOctetASN: true))
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { return nil }
            buffer += chunk[0..<count]
        }
    }

    /// Reads until a NOTIFICATION arrives (or the connection closes).
    func notification() throws -> NotificationMessage? {
        while let message = try receive() {
            if case .notification(let n) = message { return n }
        }
        return nil
    }

    static func header(type: UInt8, body: [UInt8], marker: [UInt8] = Array(repeating: 0xFF, count: 16)) -> [UInt8] {
        let length = UInt16(19 + body.count)
        return marker + [UInt8(length >> 8), UInt8(length & 0xFF), type] + body
    }

    static let keepalive = header(type: 4, body: [])

    /// An UPDATE from raw attribute bytes and NLRI bytes (no withdrawn routes).
    static func update(attributes: [UInt8], nlri: [UInt8]) -> [UInt8] {
        header(type: 2, body: [0, 0, UInt8(attributes.count >> 8), UInt8(attributes.count & 0xFF)] + attributes + nlri)
    }

    // ORIGIN IGP, AS_PATH [65001] (four-octet), NEXT_HOP 127.0.0.1.
    static let mandatory: [UInt8] = [0x40, 1, 1, 0] + [0x40, 2, 6, 2, 1, 0, 0, 0xFD, 0xE9] + [0x40, 3, 4, 127, 0, 0, 1]
    static let nlri10_1: [UInt8] = [24, 10, 1, 0]
}

@Suite(.serialized, .timeLimit(.minutes(2)))
struct MalformedPeerTests {
    /// A speaker waiting for the scripted peer at 127.0.0.1.
    static func speaker() async throws -> (EventLoop, Speaker, UInt16) {
        let loop = try EventLoop(name: "malformed-test")
        let speaker = Speaker(settings: SpeakerSettings(asn: 65000, routerID: IPv4Address(192, 0, 2, 1), listenAddresses: [ip("127.0.0.1")],
                                                        listenPort: 0, holdTime: 90, idleHoldTime: 1, maximumIdleHoldTime: 1),
                              loop: loop, logger: Logger(label: "test"))
        try await speaker.addPeer(PeerSettings(name: "scripted", address: ip("127.0.0.1"), asn: 65001, passive: true, families: [.ipv4]))
        try await speaker.start()
        let listening = await speaker.listeningAddresses()
        guard let port = listening.first.flatMap({ $0.split(separator: ":").last }).flatMap({ UInt16($0) }) else {
            throw TimeoutError(what: "a listening port", lastError: "\(listening)")
        }
        return (loop, speaker, port)
    }

    /// Connects and completes OPEN/KEEPALIVE; returns once the speaker says Established.
    static func establish(_ speaker: Speaker, port: UInt16) async throws -> ScriptedPeer {
        let peer = try ScriptedPeer(port: port)
        let open = BGPMessage.open(OpenMessage(asn: 65001, holdTime: 90, bgpIdentifier: IPv4Address(10, 0, 0, 9),
                                               capabilities: [.multiprotocol(.ipv4Unicast), .fourOctetASN(65001)]))
        peer.send(open.encoded())
        guard case .open = try peer.receive() else { throw TimeoutError(what: "the speaker's OPEN", lastError: nil) }
        peer.send(ScriptedPeer.keepalive)
        _ = try await eventually("Established") { await speaker.peer(named: "scripted")?.state == .established ? true : nil }
        return peer
    }

    /// A router that echoes our routes back (AS_PATH [65001, 65000] to the speaker of AS 65000):
    /// RFC 4271 §9.1.2 makes them loops. They are shown marked and counted, not mixed unmarked
    /// with the router's own routes (issue #17 item 13); a withdrawal takes the count back down.
    @Test func ownASInTheReceivedPathIsMarkedAsALoop() async throws {
        let (loop, speaker, port) = try await Self.speaker()
        defer { loop.shutdown() }
        let peer = try await Self.establish(speaker, port: port)
        // ORIGIN IGP, AS_PATH AS_SEQUENCE [65001, 65000] (four-octet), NEXT_HOP 127.0.0.1.
        let echoed: [UInt8] = [0x40, 1, 1, 0] + [0x40, 2, 10, 2, 2, 0, 0, 0xFD, 0xE9, 0, 0, 0xFD, 0xE8] + [0x40, 3, 4, 127, 0, 0, 1]
        peer.send(ScriptedPeer.update(attributes: echoed, nlri: [32, 100, 64, 0, 1]))
        peer.send(ScriptedPeer.update(attributes: ScriptedPeer.mandatory, nlri: ScriptedPeer.nlri10_1))
        let routes = try await eventually("both routes received") { () -> [RIBEntry]? in
            let routes = try await speaker.receivedRoutes(peer: "scripted")
            return routes.count == 2 ? routes : nil
        }
        #expect(routes.map(\.asLoop) == [false, true], "\(routes)")  // 10.1.0.0/24 sorts before 100.64.0.1/32
        #expect(routes.first { $0.asLoop }?.prefix == prefix("100.64.0.1/32"))
        #expect(await speaker.peer(named: "scripted")?.counters.prefixesWithASLoop == 1)
        // The same prefix announced again without the loop, then withdrawn: the count follows.
        peer.send(ScriptedPeer.update(attributes: ScriptedPeer.mandatory, nlri: [32, 100, 64, 0, 1]))
        _ = try await eventually("the loop replaced") { await speaker.peer(named: "scripted")?.counters.prefixesWithASLoop == 0 ? true : nil }
        peer.send(ScriptedPeer.update(attributes: echoed, nlri: [32, 100, 64, 0, 1]))
        _ = try await eventually("the loop back") { await speaker.peer(named: "scripted")?.counters.prefixesWithASLoop == 1 ? true : nil }
        peer.send(ScriptedPeer.header(type: 2, body: [0, 5, 32, 100, 64, 0, 1, 0, 0]))
        _ = try await eventually("the loop withdrawn") { await speaker.peer(named: "scripted")?.counters.prefixesWithASLoop == 0 ? true : nil }
    }

    @Test func malformedOptionalAttributeCostsTheRouteNotTheSession() async throws {
        let (loop, speaker, port) = try await Self.speaker()
        defer { loop.shutdown() }
        let peer = try await Self.establish(speaker, port: port)
        peer.send(ScriptedPeer.update(attributes: ScriptedPeer.mandatory, nlri: ScriptedPeer.nlri10_1))
        _ = try await eventually("the route in Adj-RIB-In") { try await speaker.receivedRoutes(peer: "scripted").isEmpty ? nil : true }
        // RFC 7606 §7.8: a COMMUNITIES attribute whose length is not a multiple of 4 → treat-as-withdraw.
        peer.send(ScriptedPeer.update(attributes: ScriptedPeer.mandatory + [0xC0, 8, 3, 1, 2, 3], nlri: ScriptedPeer.nlri10_1))
        _ = try await eventually("the route withdrawn") { try await speaker.receivedRoutes(peer: "scripted").isEmpty ? true : nil }
        // An unknown optional transitive attribute with garbage inside is kept or dropped, never a reset.
        peer.send(ScriptedPeer.update(attributes: ScriptedPeer.mandatory + [0xC0, 0xF0, 3, 0xDE, 0xAD, 0xBE], nlri: ScriptedPeer.nlri10_1))
        _ = try await eventually("the route back") { try await speaker.receivedRoutes(peer: "scripted").isEmpty ? nil : true }
        // RFC 7606 §4: the last attribute's length overruns the Total Path Attribute Length →
        // treat-as-withdraw (the total length still locates the NLRI), not a reset.
        peer.send(ScriptedPeer.update(attributes: ScriptedPeer.mandatory + [0xC0, 8, 8, 0, 0], nlri: ScriptedPeer.nlri10_1))
        _ = try await eventually("the route withdrawn again") { try await speaker.receivedRoutes(peer: "scripted").isEmpty ? true : nil }
        peer.send(ScriptedPeer.keepalive)
        try await Task.sleep(for: .milliseconds(200))
        #expect(await speaker.peer(named: "scripted")?.state == .established, "the session survived every RFC 7606 case")
    }

    struct SessionError: Sendable, CustomStringConvertible {
        let name: String
        let bytes: [UInt8]
        let code: UInt8
        let subcode: UInt8
        var description: String { name }
    }

    static let sessionErrors: [SessionError] = [
        // RFC 4271 §6.1: Connection Not Synchronized.
        SessionError(name: "bad marker", bytes: ScriptedPeer.header(type: 4, body: [], marker: Array(repeating: 0xFF, count: 15) + [0]), code: 1, subcode: 1),
        // §6.1: Bad Message Length (a KEEPALIVE is exactly 19 octets).
        SessionError(name: "KEEPALIVE with a body", bytes: ScriptedPeer.header(type: 4, body: [0]), code: 1, subcode: 2),
        // §6.1: Bad Message Type.
        SessionError(name: "unknown type 9", bytes: ScriptedPeer.header(type: 9, body: []), code: 1, subcode: 3),
        // RFC 7606 §5.3: an invalid NLRI prefix length is a session reset (Invalid Network Field).
        SessionError(name: "NLRI length 33", bytes: ScriptedPeer.update(attributes: ScriptedPeer.mandatory, nlri: [33, 10, 1, 0, 0, 0]), code: 3, subcode: 10),
        // §6.2 style: a second OPEN in Established is an FSM error.
        SessionError(name: "OPEN in Established", bytes: BGPMessage.open(OpenMessage(asn: 65001, holdTime: 90, bgpIdentifier: IPv4Address(10, 0, 0, 9),
                                                                                   capabilities: [.fourOctetASN(65001)])).encoded(), code: 5, subcode: 3),
    ]

    @Test(arguments: sessionErrors)
    func sessionErrorsCloseWithTheRightNotification(_ error: SessionError) async throws {
        let (loop, speaker, port) = try await Self.speaker()
        defer { loop.shutdown() }
        let peer = try await Self.establish(speaker, port: port)
        peer.send(error.bytes)
        let notification = try peer.notification()
        #expect(notification?.code == error.code && notification?.subcode == error.subcode, "\(error.name): got \(String(describing: notification))")
        let down = try await eventually("the session down with a reason") { () -> PeerSnapshot? in
            let peer = await speaker.peer(named: "scripted")
            return peer?.state != .established && peer?.lastError != nil ? peer : nil
        }
        #expect(down.lastError?.notification?.direction == .sent, "\(error.name): \(String(describing: down.lastError))")
        // And the speaker is still alive for the next peer.
        let again = try await Self.establish(speaker, port: port)
        again.send(ScriptedPeer.keepalive)
    }
}
