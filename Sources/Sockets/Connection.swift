import Glibc
import CSystem

/// What a connection tells its owner. All calls arrive on the loop thread.
public protocol ConnectionDelegate: AnyObject {
    /// Bytes arrived. The buffer is only valid during the call: copy what you keep.
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer)
    /// The peer half-closed its side (read returned 0). Default: close once pending writes flush.
    func connectionDidReadEOF(_ connection: Connection)
    /// The write buffer drained below the low watermark after having exceeded the high one.
    func connectionBecameWritable(_ connection: Connection)
    /// An outgoing connect completed.
    func connectionDidConnect(_ connection: Connection)
    /// The connection is closed (by either side, or an error) and its descriptor released.
    /// Called exactly once; `error` is nil for an orderly close.
    func connection(_ connection: Connection, didCloseWith error: SocketError?)
}

extension ConnectionDelegate {
    public func connectionDidReadEOF(_ connection: Connection) { connection.closeAfterFlush() }
    public func connectionBecameWritable(_ connection: Connection) {}
    public func connectionDidConnect(_ connection: Connection) {}
}

/// A non-blocking TCP connection on an `EventLoop`. Loop-confined: use it on the loop thread only
/// (it is `Sendable` so that a task can carry it back to the loop inside `loop.execute`).
///
/// Writes are buffered: `write(_:)` never blocks and never fails; bytes the kernel does not take
/// at once wait in the buffer and go out when the socket is writable. `isWritable` turns false
/// above `highWatermark`; the delegate hears `connectionBecameWritable` once the buffer falls
/// below `lowWatermark`. Owners that produce unbounded data (SSE, BGP updates) must respect it.
public final class Connection: Selectable, LoopClosable, @unchecked Sendable, CustomStringConvertible {
    public enum State: Sendable, Equatable {
        case connecting, open, closed
    }

    public let loop: EventLoop
    public private(set) var state: State
    public let remoteAddress: SocketAddress?
    public private(set) var localAddress: SocketAddress?
    /// The owner. Held strongly until the connection closes, then released.
    public var delegate: (any ConnectionDelegate)?
    /// Free slot for the owner (e.g. a session id).
    public var userInfo: UInt64 = 0

    public var highWatermark: Int = 256 * 1024
    public var lowWatermark: Int = 64 * 1024
    public private(set) var bufferedBytes = 0
    public var isWritable: Bool { bufferedBytes < highWatermark }
    /// Since when (`EventLoop.now()`) bytes have been waiting that the kernel would not take,
    /// with no progress at all; nil while sending keeps up. The owner's send hold timer
    /// (RFC 9687) reads it: a peer whose TCP window stays closed never moves it forward.
    public private(set) var sendStalledSince: UInt64?

    let fd: Int32
    private var registration: UInt64 = 0
    private var chunks: [[UInt8]] = []
    private var firstOffset = 0
    private var interest: UInt32 = 0
    private var readingPaused = false
    private var readEOF = false
    private var notifyWritable = false
    private var closeWhenFlushed = false
    private var shutdownWhenFlushed = false

    init(fd: Int32, loop: EventLoop, state: State, remote: SocketAddress?) {
        self.fd = fd
        self.loop = loop
        self.state = state
        self.remoteAddress = remote
        self.localAddress = SocketAddress.local(of: fd)
    }

    public var description: String {
        "Connection(fd: \(fd), \(localAddress.map(\.description) ?? "?") ↔ \(remoteAddress.map(\.description) ?? "?"), \(state))"
    }

    /// Registers an accepted socket with the loop and starts reading.
    func start(delegate: any ConnectionDelegate) throws(SocketError) {
        self.delegate = delegate
        interest = wantedInterest()
        registration = try loop.register(fd: fd, events: interest, self)
    }

    // MARK: - Outgoing connections

    /// Opens an outgoing connection without blocking. Options (TTL, minimum TTL, MD5) are set
    /// before `connect`; `local` binds the source address (port 0 = any). The delegate hears
    /// `connectionDidConnect` or `didCloseWith(error)`. Loop thread only.
    public static func connect(
        to remote: SocketAddress, from local: SocketAddress? = nil, options: SocketOptions = SocketOptions(),
        on loop: EventLoop, delegate: any ConnectionDelegate
    ) throws(SocketError) -> Connection {
        loop.preconditionInEventLoop()
        let fd = try Socket.make(family: remote.family)
        do {
            try Socket.apply(options, fd: fd, family: remote.family, remote: remote)
            if let local { try Socket.bind(fd, to: local) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        let rc = remote.withSockAddr { Glibc.connect(fd, $0, $1) }
        if rc != 0 && errno != EINPROGRESS {
            let error = SocketError.current("connect \(remote)")
            Glibc.close(fd)
            throw error
        }
        let connection = Connection(fd: fd, loop: loop, state: rc == 0 ? .open : .connecting, remote: remote)
        connection.delegate = delegate
        connection.interest = csystem_EPOLLIN | csystem_EPOLLRDHUP | csystem_EPOLLOUT
        do {
            connection.registration = try loop.register(fd: fd, events: connection.interest, connection)
        } catch {
            Glibc.close(fd)
            throw error
        }
        if rc == 0 {
            loop.execute { [connection] in
                guard connection.state == .open else { return }
                connection.updateInterest()
                connection.delegate?.connectionDidConnect(connection)
            }
        }
        return connection
    }

    // MARK: - Writing

    /// Queues bytes for sending and tries to send them now. Ignored once closed or closing.
    public func write(_ bytes: [UInt8]) {
        loop.preconditionInEventLoop()
        guard state != .closed, !closeWhenFlushed, !shutdownWhenFlushed, !bytes.isEmpty else { return }
        chunks.append(bytes)
        bufferedBytes += bytes.count
        if state == .open && chunks.count == 1 { flush() }
        if bufferedBytes >= highWatermark { notifyWritable = true }
        updateInterest()
    }

    /// Closes once everything buffered has been sent.
    public func closeAfterFlush() {
        loop.preconditionInEventLoop()
        guard state != .closed else { return }
        if chunks.isEmpty && state == .open { close() } else { closeWhenFlushed = true }
    }

    /// Sends FIN (half-close) once everything buffered has been sent; reading continues.
    public func shutdownWriteAfterFlush() {
        loop.preconditionInEventLoop()
        guard state != .closed else { return }
        if chunks.isEmpty && state == .open { Glibc.shutdown(fd, Int32(SHUT_WR)) } else { shutdownWhenFlushed = true }
    }

    // MARK: - Reading

    /// Stops read events (backpressure towards the peer) until `resumeReading()`.
    public func pauseReading() {
        loop.preconditionInEventLoop()
        guard !readingPaused else { return }
        readingPaused = true
        updateInterest()
    }

    public func resumeReading() {
        loop.preconditionInEventLoop()
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
    }

    // MARK: - Closing

    /// Closes now, dropping unsent bytes. With `reset`, sends RST instead of FIN (SO_LINGER 0).
    public func close(reset: Bool = false) {
        loop.preconditionInEventLoop()
        close(error: nil, reset: reset)
    }

    func closeForLoopShutdown() { close(error: SocketError.closed, reset: false) }

    private func close(error: SocketError?, reset: Bool) {
        guard state != .closed else { return }
        state = .closed
        if reset {
            var l = linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        }
        loop.deregister(fd: fd, registration: registration)
        Glibc.close(fd)
        chunks.removeAll()
        bufferedBytes = 0
        let delegate = self.delegate
        self.delegate = nil
        delegate?.connection(self, didCloseWith: error)
    }

    /// The outgoing TTL (hop limit) and, for GTSM, the minimum accepted one, on an open
    /// connection (an accepted socket before its first byte is read); loop thread only.
    public func setHopLimits(ttl: Int?, minimum: Int?) throws(SocketError) {
        loop.preconditionInEventLoop()
        let family = (remoteAddress ?? localAddress)?.family ?? AF_INET
        if let ttl { try Socket.setTTL(ttl, fd: fd, family: family) }
        if let minimum { try Socket.setMinimumTTL(minimum, fd: fd, family: family) }
    }

    // MARK: - Events

    func handleEvents(_ events: UInt32) {
        if state == .connecting {
            if events & (csystem_EPOLLOUT | csystem_EPOLLERR | csystem_EPOLLHUP) != 0 {
                finishConnect()
            }
            return
        }
        if events & csystem_EPOLLOUT != 0 && state == .open { flush(); updateInterest() }
        if state == .open && events & (csystem_EPOLLIN | csystem_EPOLLRDHUP | csystem_EPOLLHUP | csystem_EPOLLERR) != 0 {
            if !readingPaused && !readEOF {
                readOnce()
            } else if events & (csystem_EPOLLERR | csystem_EPOLLHUP) != 0 {
                let code = Socket.getInt(fd, SOL_SOCKET, SO_ERROR) ?? 0
                close(error: code == 0 ? nil : SocketError("socket", errno: code), reset: false)
            }
        }
    }

    private func finishConnect() {
        let code = Socket.getInt(fd, SOL_SOCKET, SO_ERROR) ?? EIO
        guard code == 0 else {
            close(error: SocketError("connect \(remoteAddress.map(\.description) ?? "")", errno: code), reset: false)
            return
        }
        state = .open
        localAddress = SocketAddress.local(of: fd)
        delegate?.connectionDidConnect(self)
        guard state == .open else { return }
        if !chunks.isEmpty { flush() }
        updateInterest()
    }

    private func readOnce() {
        let buffer = loop.readBuffer
        let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
        if n > 0 {
            delegate?.connection(self, didRead: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        } else if n == 0 {
            readEOF = true
            updateInterest()
            if let delegate { delegate.connectionDidReadEOF(self) } else { close() }
        } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
            close(error: SocketError.current("read"), reset: false)
        }
    }

    private func flush() {
        var progressed = false
        defer {
            if chunks.isEmpty || state != .open {
                sendStalledSince = nil
            } else if progressed || sendStalledSince == nil {
                sendStalledSince = EventLoop.now()
            }
        }
        while state == .open, !chunks.isEmpty {
            let written = chunks[0].withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + firstOffset, raw.count - firstOffset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { break }
                if errno == EINTR { continue }
                close(error: SocketError.current("send"), reset: false)
                return
            }
            if written > 0 { progressed = true }
            bufferedBytes -= written
            firstOffset += written
            if firstOffset == chunks[0].count {
                chunks.removeFirst()
                firstOffset = 0
            } else {
                break  // the kernel buffer is full
            }
        }
        guard state == .open else { return }
        if chunks.isEmpty {
            if closeWhenFlushed { close(); return }
            if shutdownWhenFlushed {
                shutdownWhenFlushed = false
                Glibc.shutdown(fd, Int32(SHUT_WR))
            }
        }
        if notifyWritable && bufferedBytes <= lowWatermark {
            notifyWritable = false
            delegate?.connectionBecameWritable(self)
        }
    }

    private func wantedInterest() -> UInt32 {
        var wanted: UInt32 = 0
        if !readingPaused && !readEOF { wanted |= csystem_EPOLLIN | csystem_EPOLLRDHUP }
        if !chunks.isEmpty || state == .connecting { wanted |= csystem_EPOLLOUT }
        return wanted
    }

    private func updateInterest() {
        guard state != .closed, registration != 0 else { return }
        let wanted = wantedInterest()
        if wanted != interest {
            interest = wanted
            loop.modify(fd: fd, registration: registration, events: wanted)
        }
    }
}
