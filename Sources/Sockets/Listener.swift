public import IP
import Glibc
import CSystem

/// A listening TCP socket on an `EventLoop`. Loop-confined; create it on the loop thread
/// (e.g. inside `loop.submit`). Each accepted socket becomes a `Connection` handed to
/// `onAccept`, which returns the connection's delegate.
public final class Listener: Selectable, LoopClosable, @unchecked Sendable {
    public let loop: EventLoop
    /// The bound address; its port is the real one when port 0 was asked for.
    public let localAddress: SocketAddress
    public private(set) var isOpen = true

    private let fd: Int32
    private var registration: UInt64 = 0
    private let options: SocketOptions
    private let onAccept: (Connection) -> (any ConnectionDelegate)?
    private var acceptPaused = false

    /// Binds and listens. `onAccept` returns the delegate for the new connection, or nil to
    /// close it at once. Accepted sockets get `options` (TCP_NODELAY etc.; MD5 via `setMD5Key`).
    public init(
        bindingTo address: SocketAddress, backlog: Int32 = 1024, options: SocketOptions = SocketOptions(),
        on loop: EventLoop, onAccept: @escaping (Connection) -> (any ConnectionDelegate)?
    ) throws(SocketError) {
        loop.preconditionInEventLoop()
        let fd = try Socket.make(family: address.family)
        do throws(SocketError) {
            if address.family == AF_INET6 {
                try Socket.setInt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, "IPV6_V6ONLY")
            }
            var listenOptions = options
            listenOptions.md5Key = nil
            try Socket.apply(listenOptions, fd: fd, family: address.family, remote: nil)
            try Socket.bind(fd, to: address)
            guard listen(fd, backlog) == 0 else { throw SocketError.current("listen") }
        } catch {
            Glibc.close(fd)
            throw error
        }
        self.fd = fd
        self.loop = loop
        self.options = options
        self.onAccept = onAccept
        self.localAddress = SocketAddress.local(of: fd) ?? address
        do {
            registration = try loop.register(fd: fd, events: csystem_EPOLLIN, self)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// Installs (or with nil removes) the RFC 2385 MD5 key expected from `peer`.
    public func setMD5Key(_ key: [UInt8]?, for peer: IPAddress) throws(SocketError) {
        loop.preconditionInEventLoop()
        try Socket.setMD5(fd: fd, key: key ?? [], peer: SocketAddress(peer, port: 0))
    }

    /// RFC 5082 GTSM on the listener: SYNs arriving with a TTL (hop limit) below `minimum` are
    /// dropped by the kernel, so no connection is made and no byte read; accepted sockets inherit
    /// it. 0 takes every TTL.
    public func setMinimumTTL(_ minimum: Int) throws(SocketError) {
        loop.preconditionInEventLoop()
        try Socket.setMinimumTTL(minimum, fd: fd, family: localAddress.family)
    }

    /// Stops listening and releases the descriptor. Accepted connections are unaffected.
    public func close() {
        loop.preconditionInEventLoop()
        guard isOpen else { return }
        isOpen = false
        loop.deregister(fd: fd, registration: registration)
        Glibc.close(fd)
    }

    func closeForLoopShutdown() { close() }

    func handleEvents(_ events: UInt32) {
        for _ in 0..<64 {
            guard isOpen, !acceptPaused else { return }
            var storage = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    csystem_accept4(fd, $0, &len)
                }
            }
            if client < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK: return
                case EINTR, ECONNABORTED, EPROTO: continue
                case let code where DescriptorBudget.isLocalShortage(code):
                    // Out of descriptors: level-triggered epoll would spin, so back off a little.
                    acceptPaused = true
                    loop.modify(fd: fd, registration: registration, events: 0)
                    loop.scheduleTimer(after: .milliseconds(100)) { [self] in
                        acceptPaused = false
                        if isOpen { loop.modify(fd: fd, registration: registration, events: csystem_EPOLLIN) }
                    }
                    return
                default: return
                }
            }
            if options.noDelay { _ = try? Socket.setInt(client, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "TCP_NODELAY") }
            let connection = Connection(fd: client, loop: loop, state: .open, remote: SocketAddress(storage: storage))
            guard let delegate = onAccept(connection) else {
                connection.close()
                continue
            }
            guard connection.state == .open else { continue }  // the owner already closed it
            do {
                try connection.start(delegate: delegate)
            } catch {
                connection.close()
            }
        }
    }
}
