import Glibc
import CSystem

/// One received UDP datagram.
public struct Datagram: Sendable, Hashable {
    public var bytes: [UInt8]
    public var source: SocketAddress
    /// The IP TTL / IPv6 hop limit it arrived with, when `receiveTTL` was asked for.
    public var ttl: Int?
}

/// A bound UDP socket on an `EventLoop` (BFD, RFC 5881). Loop-confined, like `Listener`.
/// Sends are fire-and-forget: a full send buffer drops the datagram, which is what an
/// unreliable periodic protocol wants (the next packet carries the same state).
public final class DatagramSocket: Selectable, LoopClosable, @unchecked Sendable {
    public let loop: EventLoop
    /// The bound address; its port is the real one when port 0 was asked for.
    public let localAddress: SocketAddress
    public private(set) var isOpen = true

    private let fd: Int32
    private var registration: UInt64 = 0
    private let onReceive: ((Datagram) -> Void)?

    /// Binds to `address`. `ttl` sets the outgoing TTL / hop limit; `receiveTTL` asks the kernel
    /// for each datagram's TTL (IP_RECVTTL / IPV6_RECVHOPLIMIT). With `onReceive` nil the socket
    /// only sends and is not registered with the loop.
    public init(
        bindingTo address: SocketAddress, ttl: Int? = nil, receiveTTL: Bool = false,
        on loop: EventLoop, onReceive: ((Datagram) -> Void)?
    ) throws(SocketError) {
        loop.preconditionInEventLoop()
        let family = address.family
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.current("socket(UDP)") }
        do throws(SocketError) {
            if family == AF_INET6 {
                try Socket.setInt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, "IPV6_V6ONLY")
            }
            try Socket.apply(SocketOptions(reuseAddress: false, noDelay: false, ttl: ttl), fd: fd, family: family, remote: nil)
            if receiveTTL, csystem_enable_receive_ttl(fd, family) != 0 {
                throw SocketError.current(family == AF_INET6 ? "setsockopt(IPV6_RECVHOPLIMIT)" : "setsockopt(IP_RECVTTL)")
            }
            try Socket.bind(fd, to: address)
        } catch {
            Glibc.close(fd)
            throw error
        }
        self.fd = fd
        self.loop = loop
        self.onReceive = onReceive
        self.localAddress = SocketAddress.local(of: fd) ?? address
        if onReceive != nil {
            do {
                registration = try loop.register(fd: fd, events: csystem_EPOLLIN, self)
            } catch {
                Glibc.close(fd)
                throw error
            }
        }
    }

    deinit {
        // A send-only socket is not registered with the loop, so nothing else would close it
        // (e.g. when the loop stops with a timer still holding it).
        if isOpen, onReceive == nil { Glibc.close(fd) }
    }

    /// Sends one datagram. Errors other than a full buffer are thrown (e.g. no route).
    public func send(_ bytes: [UInt8], to destination: SocketAddress) throws(SocketError) {
        loop.preconditionInEventLoop()
        guard isOpen else { throw .closed }
        let rc = destination.withSockAddr { addr, len in
            bytes.withUnsafeBytes { Glibc.sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), addr, len) }
        }
        if rc < 0, errno != EAGAIN, errno != EWOULDBLOCK { throw SocketError.current("sendto \(destination)") }
    }

    public func close() {
        loop.preconditionInEventLoop()
        guard isOpen else { return }
        isOpen = false
        if onReceive != nil { loop.deregister(fd: fd, registration: registration) }
        Glibc.close(fd)
    }

    func closeForLoopShutdown() { close() }

    func handleEvents(_ events: UInt32) {
        let buffer = loop.readBuffer
        // Bounded per wake-up so one busy socket cannot starve the loop.
        for _ in 0..<64 {
            guard isOpen, let onReceive else { return }
            var storage = sockaddr_storage()
            var ttl: Int32 = -1
            let n = csystem_recv_datagram(fd, buffer.baseAddress, buffer.count, &storage, &ttl)
            if n < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN, or an ICMP error queued on the socket: nothing to read now
            }
            guard let source = SocketAddress(storage: storage) else { continue }
            let bytes = Array(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            onReceive(Datagram(bytes: bytes, source: source, ttl: ttl >= 0 ? Int(ttl) : nil))
        }
    }
}
