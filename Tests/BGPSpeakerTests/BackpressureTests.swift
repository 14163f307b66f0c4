import BGP
import BGPSpeaker
import Glibc
import IP
import Logging
import Sockets
import Testing
import TestSupport

/// A blocking TCP client playing a BGP peer that stops reading: Adj-RIB-Out must coalesce.
private final class StalledPeer {
    let fd: Int32

    init(from source: String, to port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = port.bigEndian
        remote.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, connected == 0 else { throw TimeoutError(what: "connect (errno \(errno))", lastError: nil) }
    }

    deinit { close(fd) }

    func send(_ message: BGPMessage) {
        let bytes = message.encoded()
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Reads until nothing arrives for a second.
    func readAll() -> [UInt8] {
        var all: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return all }
            all += buffer[0..<n]
        }
    }
}

@Suite(.timeLimit(.minutes(1)), .heavy) struct AdjRIBOutBackpressureTests {
    /// The peer reads nothing while 30 rounds of changes to 5,000 prefixes are applied; when it
    /// reads again it gets the latest state, having been sent far fewer routes than changes made.
    @Test func stalledPeerGetsLatestStateNotEveryChange() async throws {
        let loop = try EventLoop(name: "backpressure-test")
        defer { loop.shutdown() }
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let a = Speaker(settings: SpeakerSettings(asn: 65001, routerID: IPv4Address(10, 0, 0, 1), listenAddresses: [ip("127.0.0.1")], listenPort: 0),
                        loop: loop, logger: logger)
        try await a.start()
        defer { Task { await a.shutdown(mode: .withdraw(message: nil)) } }
        let port = UInt16(await a.listeningAddresses().first!.split(separator: ":").last!)!
        try await a.addPeer(PeerSettings(name: "slow", address: ip("127.0.0.7"), asn: 65002, passive: true))

        let peer = try StalledPeer(from: "127.0.0.7", to: port)
        // Hold time 0: no keepalives needed while the test holds the peer still.
        peer.send(.open(OpenMessage(asn: 65002, holdTime: 0, bgpIdentifier: IPv4Address(10, 0, 0, 7),
                                    capabilities: [.multiprotocol(.ipv4Unicast), .fourOctetASN(65002)])))
        peer.send(.keepalive)
        _ = try await eventually("Established") { await a.peer(named: "slow")?.state == .established ? true : nil }

        let count = 5_000, rounds = 30
        let prefixes = (0..<count).map { IPPrefix(host: .v4(IPv4Address(UInt32(100) << 24 | UInt32(66) << 16 | UInt32($0)))) }
        let padding = (1...7).map { Community(asn: 65535, value: UInt16($0)) }
        for round in 1...rounds {
            // A community per prefix: one UPDATE per prefix, so the changes far exceed any socket buffer.
            await a.announce(prefixes.enumerated().map { i, p in
                Route(prefix: p, path: Path(communities: [Community(asn: UInt16(round), value: UInt16(i))] + padding))
            })
        }

        // Read everything and replay it.
        let bytes = peer.readAll()
        var offset = 0, announced = 0
        var final: [IPPrefix: [Community]] = [:]
        let context = CodecContext(fourOctetASN: true)
        while let length = try MessageFraming.nextMessageLength(in: bytes[offset...]), offset + length <= bytes.count {
            if case .update(let update) = try BGPMessage.decode(bytes[offset..<offset + length], context: context) {
                for n in update.announced {
                    final[n.prefix] = update.attributes.communities
                    announced += 1
                }
            }
            offset += length
        }
        #expect(final.count == count)
        #expect(prefixes.enumerated().allSatisfy { i, p in final[p]?.first == Community(asn: UInt16(rounds), value: UInt16(i)) })
        #expect(announced < count * rounds / 2, "sent \(announced) announcements for \(count * rounds) changes")
    }
}
