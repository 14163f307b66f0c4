import BFD
import Glibc
import IP
import Logging
import Sockets

/// One peer's BFD session on sockets: the pure `BFDSession` plus its send socket and timers.
final class BFDLink {
    let name: String
    var remote: IPAddress
    var local: IPAddress?
    var session: BFDSession
    /// RFC 5881 §4: packets go out from a port in 49152–65535, with TTL 255.
    var sender: DatagramSocket?
    /// The receive socket's bind address (shared with other links on the same local address).
    var receiverKey: SocketAddress?
    var timers: [BFDTimer: TimerHandle] = [:]
    var retryTimer: TimerHandle?
    var packetsIn = 0
    var packetsOut = 0
    var packetsDiscarded = 0
    var error: String?
    var upSince: Int64?
    var lastChange: Int64?

    init(name: String, remote: IPAddress, local: IPAddress?, session: BFDSession) {
        self.name = name
        self.remote = remote
        self.local = local
        self.session = session
    }
}

/// The BFD I/O shell on the speaker's event loop (RFC 5881 single hop): receive sockets on
/// UDP 3784 per local address, one send socket per session, the loop's timers, and the GTSM
/// check on every received packet. Loop-confined: the entry points check it
/// (`preconditionInEventLoop`), in release builds too.
final class BFDService {
    let loop: EventLoop
    let port: UInt16
    let logger: Logger
    /// Called on every state change, with the session after it.
    var onTransition: (BFDLink, BFDTransition) -> Void = { _, _ in }

    private(set) var links: [String: BFDLink] = [:]
    private var byDiscriminator: [UInt32: BFDLink] = [:]
    private var receivers: [SocketAddress: (socket: DatagramSocket, users: Int)] = [:]
    private var random = SystemRandomNumberGenerator()
    /// Packets that matched no session or failed a check before one was found.
    private(set) var unmatched = 0

    init(loop: EventLoop, port: UInt16, logger: Logger) {
        self.loop = loop
        self.port = port
        self.logger = logger
    }

    /// Monotonic microseconds: the pure session's clock.
    static func now() -> UInt64 { EventLoop.now() / 1_000 }

    static func configuration(_ s: PeerBFDSettings) -> BFDConfiguration {
        BFDConfiguration(desiredMinTxInterval: UInt32(clamping: s.minTx * 1_000), requiredMinRxInterval: UInt32(clamping: s.minRx * 1_000),
                         detectMultiplier: UInt8(clamping: max(1, s.multiplier)))
    }

    // MARK: - Sessions

    func add(name: String, remote: IPAddress, local: IPAddress?, settings: PeerBFDSettings) {
        loop.preconditionInEventLoop()
        remove(name)
        var discriminator: UInt32 = 0
        // RFC 5880 §6.8.1: bfd.LocalDiscr is nonzero and unique on this system; random values
        // keep a restarted Herald from being mistaken for its previous incarnation.
        while discriminator == 0 || byDiscriminator[discriminator] != nil { discriminator = random.next() }
        let link = BFDLink(name: name, remote: remote, local: local,
                           session: BFDSession(configuration: Self.configuration(settings), localDiscriminator: discriminator,
                                               seed: random.next()))
        links[name] = link
        byDiscriminator[discriminator] = link
        open(link)
    }

    /// New settings: timers change in place (a Poll Sequence while Up); new addresses restart
    /// the session.
    func update(name: String, remote: IPAddress, local: IPAddress?, settings: PeerBFDSettings) {
        loop.preconditionInEventLoop()
        guard let link = links[name] else { return add(name: name, remote: remote, local: local, settings: settings) }
        if link.remote != remote || link.local != local {
            return add(name: name, remote: remote, local: local, settings: settings)
        }
        let configuration = Self.configuration(settings)
        if configuration != link.session.configuration {
            perform(link.session.reconfigure(configuration, now: Self.now()), link)
        }
    }

    /// Ends the session, telling the peer with AdminDown (RFC 5880 §6.8.16) so that it does not
    /// take its BGP session down because of us (RFC 5882 §3.2). One lost packet would let the
    /// peer's detection timer decide instead, so the AdminDown packet goes out three times, one
    /// transmit interval (at most 1 s) apart, before the send socket closes. Returns how long
    /// the last packet waits: a process that stops must keep its loop running that long, or
    /// only the first packet leaves (the peer then sees a detection timeout, not AdminDown).
    @discardableResult
    func remove(_ name: String) -> Duration {
        loop.preconditionInEventLoop()
        guard let link = links.removeValue(forKey: name) else { return .zero }
        byDiscriminator[link.session.localDiscriminator] = nil
        let sender = link.sender
        link.sender = nil
        close(link)
        guard let sender else { return .zero }
        // The rate the peer expects now (AdminDown itself advertises the 1 s slow rate).
        let interval = Duration.microseconds(Int64(min(link.session.transmitInterval, 1_000_000)))
        let packets = link.session.adminDown(now: Self.now()).compactMap { action -> BFDControlPacket? in
            if case .send(let packet) = action { packet } else { nil }
        }
        guard let packet = packets.last else {
            sender.close()
            return .zero
        }
        let destination = SocketAddress(link.remote, port: port)
        try? sender.send(packet.encoded(), to: destination)
        loop.scheduleTimer(after: interval) { [loop] in
            try? sender.send(packet.encoded(), to: destination)
            loop.scheduleTimer(after: interval) {
                try? sender.send(packet.encoded(), to: destination)
                sender.close()
            }
        }
        return interval * 2
    }

    /// Ends every session (AdminDown); returns how long until the last AdminDown packet is out.
    func shutdown() -> Duration {
        loop.preconditionInEventLoop()
        return Array(links.keys).map { remove($0) }.max() ?? .zero
    }

    func snapshot(_ name: String) -> BFDSnapshot? {
        loop.preconditionInEventLoop()
        guard let link = links[name] else { return nil }
        let s = link.session
        return BFDSnapshot(
            state: s.state.description, localDiscriminator: s.localDiscriminator,
            remoteDiscriminator: s.remoteDiscriminator == 0 ? nil : s.remoteDiscriminator, remoteState: s.remoteState.description,
            transmitInterval: Double(s.transmitInterval) / 1_000, detectionTime: s.detectionTime == 0 ? nil : Double(s.detectionTime) / 1_000,
            lastDiagnostic: s.localDiagnostic == .none ? nil : s.localDiagnostic.description,
            remoteDiagnostic: s.remoteDiagnostic == .none ? nil : s.remoteDiagnostic.description,
            upSince: link.upSince, lastChange: link.lastChange,
            packetsIn: link.packetsIn, packetsOut: link.packetsOut, packetsDiscarded: link.packetsDiscarded, error: link.error)
    }

    // MARK: - Sockets

    /// Opens the receive and send sockets and starts the session; on failure (the local address
    /// is not configured yet, the port is taken) says why and tries again in 5 s.
    private func open(_ link: BFDLink) {
        let family = link.remote.family
        let local = link.local ?? (family == .ipv4 ? .v4(.any) : .v6(.any))
        do {
            link.receiverKey = try attachReceiver(local)
            link.sender = try bindSender(local)
        } catch {
            retryLater(link, "cannot open BFD sockets on \(local): \(error)")
            return
        }
        link.error = nil
        perform(link.session.start(now: Self.now()), link)
    }

    private func retryLater(_ link: BFDLink, _ reason: String) {
        link.error = reason
        logger.warning("BFD sockets could not be opened; retrying in 5 s", metadata: ["peer": "\(link.name)", "error": "\(reason)"])
        close(link)
        link.retryTimer = loop.scheduleTimer(after: .seconds(5)) { [weak self, weak link] in
            guard let self, let link, self.links[link.name] === link else { return }
            link.retryTimer = nil
            self.open(link)
        }
    }

    /// The socket that receives a link's Control packets (RFC 5881 §4: port 3784), counted by
    /// its users. Bound without SO_REUSEADDR, so no other local process can bind the same address
    /// and port and take the packets. Without SO_REUSEADDR the kernel refuses a wildcard socket
    /// beside specific ones on the same port, so once a link needs the wildcard (no local
    /// address) it replaces the family's specific sockets, and their links share it:
    /// demultiplexing also matches the source address (`received`).
    private func attachReceiver(_ local: IPAddress) throws(SocketError) -> SocketAddress {
        let wildcard = SocketAddress(local.family == .ipv4 ? .v4(.any) : .v6(.any), port: port)
        let key = SocketAddress(local, port: port)
        for existing in [wildcard, key] where receivers[existing] != nil {
            receivers[existing]!.users += 1
            return existing
        }
        guard key == wildcard else {
            receivers[key] = (try bindReceiver(local), 1)
            return key
        }
        let specific = receivers.filter { $0.key.family == wildcard.family }
        for entry in specific.values { entry.socket.close() }
        for old in specific.keys { receivers[old] = nil }
        let socket: DatagramSocket
        do {
            socket = try bindReceiver(local)
        } catch {
            // Put the specific sockets back; a link whose socket cannot come back tries again later.
            for (old, entry) in specific {
                if let again = try? bindReceiver(old.address) {
                    receivers[old] = (again, entry.users)
                } else {
                    for link in links.values where link.receiverKey == old { retryLater(link, "cannot reopen BFD socket on \(old)") }
                }
            }
            throw error
        }
        receivers[wildcard] = (socket, 1 + specific.values.reduce(0) { $0 + $1.users })
        for link in links.values where link.receiverKey.map({ specific.keys.contains($0) }) == true { link.receiverKey = wildcard }
        return wildcard
    }

    private func bindReceiver(_ local: IPAddress) throws(SocketError) -> DatagramSocket {
        try DatagramSocket(bindingTo: SocketAddress(local, port: port), receiveTTL: true, on: loop) { [weak self] datagram in
            self?.received(datagram, on: local)
        }
    }

    /// RFC 5881 §4: "The source port MUST be in the range 49152 through 65535"; TTL 255 (§5).
    private func bindSender(_ local: IPAddress) throws(SocketError) -> DatagramSocket {
        var lastError = SocketError("bind", errno: EADDRINUSE)
        for _ in 0..<64 {
            let candidate = UInt16.random(in: 49152...65535, using: &random)
            do {
                return try DatagramSocket(bindingTo: SocketAddress(local, port: candidate), ttl: 255, on: loop, onReceive: nil)
            } catch {
                lastError = error
                if error.errno != EADDRINUSE { throw error }
            }
        }
        throw lastError
    }

    private func close(_ link: BFDLink) {
        for handle in link.timers.values { loop.cancelTimer(handle) }
        link.timers = [:]
        if let retry = link.retryTimer { loop.cancelTimer(retry) }
        link.retryTimer = nil
        link.sender?.close()
        link.sender = nil
        if let key = link.receiverKey, let entry = receivers[key] {
            if entry.users <= 1 {
                entry.socket.close()
                receivers[key] = nil
            } else {
                receivers[key]!.users -= 1
            }
        }
        link.receiverKey = nil
    }

    // MARK: - Receive

    private func received(_ datagram: Datagram, on local: IPAddress) {
        // RFC 5881 §5: "If BFD authentication is not in use on a session, all BFD Control
        // packets for the session MUST be sent with a Time to Live (TTL) or Hop Limit value of
        // 255. All received BFD Control packets that are demultiplexed to the session MUST be
        // discarded if the received TTL or Hop Limit is not equal to 255."
        let candidate = datagram.ttl == 255 ? nil : links.values.first { $0.remote == datagram.source.address }
        guard datagram.ttl == 255 else {
            if let candidate { candidate.packetsDiscarded += 1 } else { unmatched += 1 }
            logger.debug("BFD packet with TTL \(datagram.ttl.map(String.init) ?? "?") discarded (GTSM)", metadata: ["source": "\(datagram.source)"])
            return
        }
        let packet: BFDControlPacket
        do {
            packet = try BFDControlPacket(decoding: datagram.bytes)
        } catch {
            if let link = links.values.first(where: { $0.remote == datagram.source.address }) { link.packetsDiscarded += 1 } else { unmatched += 1 }
            logger.debug("BFD packet discarded: \(error)", metadata: ["source": "\(datagram.source)"])
            return
        }
        // RFC 5880 §6.8.6: a nonzero Your Discriminator selects the session; otherwise the
        // source address (and the address it was sent to) does (RFC 5881 §3).
        let link: BFDLink?
        if packet.yourDiscriminator != 0 {
            link = byDiscriminator[packet.yourDiscriminator].flatMap { $0.remote == datagram.source.address ? $0 : nil }
        } else {
            link = links.values.first { $0.remote == datagram.source.address && ($0.local == nil || $0.local == local || local.isUnspecified) }
        }
        guard let link, link.sender != nil else {
            unmatched += 1
            return
        }
        link.packetsIn += 1
        perform(link.session.receive(packet, now: Self.now()), link)
    }

    // MARK: - Actions

    private func perform(_ actions: [BFDAction], _ link: BFDLink) {
        for action in actions {
            switch action {
            case .send(let packet):
                send(packet, link)
            case .arm(let timer, let microseconds):
                if let old = link.timers[timer] { loop.cancelTimer(old) }
                link.timers[timer] = loop.scheduleTimer(after: .microseconds(Int64(clamping: microseconds))) { [weak self, weak link] in
                    guard let self, let link, self.links[link.name] === link else { return }
                    link.timers[timer] = nil
                    let now = Self.now()
                    switch timer {
                    case .transmit: self.perform(link.session.transmitTimerExpired(now: now), link)
                    case .detection: self.perform(link.session.detectionTimerExpired(now: now), link)
                    }
                }
            case .stop(let timer):
                if let old = link.timers.removeValue(forKey: timer) { loop.cancelTimer(old) }
            case .stateChanged(let transition):
                let now = wallClockMillis()
                link.lastChange = now
                link.upSince = transition.to == .up ? now : nil
                logger.info("BFD session \(transition.from) → \(transition.to)", metadata: [
                    "peer": "\(link.name)", "diagnostic": "\(transition.diagnostic)",
                    "detection_time_ms": "\(transition.detectionTime / 1_000)",
                ])
                onTransition(link, transition)
            }
        }
    }

    private func send(_ packet: BFDControlPacket, _ link: BFDLink) {
        guard let sender = link.sender else { return }
        do {
            try sender.send(packet.encoded(), to: SocketAddress(link.remote, port: port))
            link.packetsOut += 1
            if link.error != nil { link.error = nil }
        } catch {
            // No route, or the address went away: keep trying at the transmit interval.
            link.error = "cannot send BFD packets to \(link.remote): \(error)"
        }
    }
}
