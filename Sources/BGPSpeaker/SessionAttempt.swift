import BGP
import IP
import Sockets

/// One TCP connection and the `SessionFSM` that runs on it (RFC 4271 §8: one FSM per
/// connection). A peer has a primary attempt and, while a connection collision is being
/// resolved (§6.8), a secondary one. Loop-confined.
final class SessionAttempt: ConnectionDelegate, @unchecked Sendable {
    weak var peer: PeerDriver?
    var fsm: SessionFSM
    let origin: ConnectionOrigin
    var connection: Connection?
    var timers: [SessionTimer: TimerHandle] = [:]
    /// The RFC 9687 send hold check (outside the FSM: it watches the socket, not messages).
    var sendHoldCheck: TimerHandle?
    /// Agreed parameters once the peer's OPEN was accepted (OpenConfirm and Established).
    var parameters: SessionParameters?
    /// The NOTIFICATION sent or received on this connection, for the down reason.
    var notification: NotificationInfo?
    /// An accepted connection: the FSM's `.connect` is already satisfied.
    var ignoreConnect = false
    /// No longer the peer's: only sends and closes are performed for it.
    var retired = false
    /// Unix time (ms) when the current outgoing connect started.
    var connectStartedAt: Int64?
    /// The source address of an outgoing connection, kept past its close for the reason of a
    /// failure (the kernel picks it when `local_address` is not set).
    var localAddress: IPAddress?

    var buffer: [UInt8] = []
    var readIndex = 0

    init(peer: PeerDriver, configuration: SessionConfiguration, origin: ConnectionOrigin) {
        self.peer = peer
        self.fsm = SessionFSM(configuration: configuration)
        self.origin = origin
    }

    var isEstablished: Bool {
        if case .established = fsm.state { return true }
        return false
    }

    /// OpenSent, OpenConfirm or Established: the states that take part in collision detection.
    var isColliding: Bool {
        switch fsm.state {
        case .openSent, .openConfirm, .established: true
        default: false
        }
    }

    func cancelTimers(on loop: EventLoop) {
        for handle in timers.values { loop.cancelTimer(handle) }
        timers.removeAll()
        if let sendHoldCheck { loop.cancelTimer(sendHoldCheck) }
        sendHoldCheck = nil
    }

    /// Closes the connection without reporting back: pending bytes (a NOTIFICATION) are flushed
    /// for up to two seconds, then the socket is closed regardless.
    func closeConnection() {
        guard let c = connection else { return }
        connection = nil
        buffer = []
        readIndex = 0
        c.delegate = nil
        if c.state == .connecting {
            c.close()
        } else {
            c.closeAfterFlush()
            c.loop.scheduleTimer(after: .seconds(2)) { c.close() }
        }
    }

    // MARK: - ConnectionDelegate

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        guard connection === self.connection else { return }
        buffer.append(contentsOf: bytes)
        peer?.didRead(self)
    }

    func connectionDidReadEOF(_ connection: Connection) {
        guard connection === self.connection else { return }
        self.connection = nil
        connection.delegate = nil
        connection.close()
        peer?.connectionFailed(self, "TCP connection closed by peer", errno: nil)
    }

    func connectionBecameWritable(_ connection: Connection) {
        guard connection === self.connection else { return }
        peer?.connectionWritable(self)
    }

    func connectionDidConnect(_ connection: Connection) {
        guard connection === self.connection else { return }
        peer?.connectionUp(self)
    }

    func connection(_ connection: Connection, didCloseWith error: SocketError?) {
        guard connection === self.connection else { return }
        self.connection = nil
        let reason: String
        if let error {
            reason = "TCP \(error)"
        } else {
            reason = "TCP connection closed"
        }
        // Deferred: this callback can arrive in the middle of performing FSM actions.
        let loop = connection.loop
        loop.execute { [weak self] in
            guard let self else { return }
            self.peer?.connectionFailed(self, reason, errno: error?.errno)
        }
    }
}
