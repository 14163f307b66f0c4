import Glibc
import CSystem

/// Options applied to a socket before it binds or connects. BGP sessions use TTL, minimum TTL
/// (GTSM, RFC 5082) and the TCP MD5 signature (RFC 2385); they must be set before `connect`.
public struct SocketOptions: Sendable, Hashable {
    /// `SO_REUSEADDR`: lets a listener bind while old connections sit in TIME_WAIT.
    public var reuseAddress: Bool = true
    /// `TCP_NODELAY`: send small writes at once (request/response and BGP messages both want it).
    public var noDelay: Bool = true
    /// Outgoing IP TTL / IPv6 unicast hop limit (e.g. 255 for GTSM, or a multihop count).
    public var ttl: Int?
    /// Drop incoming packets with a lower TTL / hop count (GTSM: 254).
    public var minimumTTL: Int?
    /// RFC 2385 MD5 key for the remote address (outgoing connections only; for a listener use
    /// `Listener.setMD5Key(_:for:)`).
    public var md5Key: [UInt8]?
    /// `SO_RCVBUF` / `SO_SNDBUF`, when set.
    public var receiveBufferSize: Int?
    public var sendBufferSize: Int?

    public init(
        reuseAddress: Bool = true, noDelay: Bool = true, ttl: Int? = nil, minimumTTL: Int? = nil,
        md5Key: [UInt8]? = nil, receiveBufferSize: Int? = nil, sendBufferSize: Int? = nil
    ) {
        self.reuseAddress = reuseAddress
        self.noDelay = noDelay
        self.ttl = ttl
        self.minimumTTL = minimumTTL
        self.md5Key = md5Key
        self.receiveBufferSize = receiveBufferSize
        self.sendBufferSize = sendBufferSize
    }
}

/// Thin wrappers over the socket system calls, shared by `Listener` and `Connection`.
enum Socket {
    static func make(family: Int32) throws(SocketError) -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.current("socket") }
        return fd
    }

    static func setInt(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ what: String) throws(SocketError) {
        var v = value
        guard setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw SocketError.current("setsockopt(\(what))")
        }
    }

    static func getInt(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32? {
        var v: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, name, &v, &len) == 0 else { return nil }
        return v
    }

    /// The TTL (IPv4) or hop limit (IPv6) of what the socket sends.
    static func setTTL(_ ttl: Int, fd: Int32, family: Int32) throws(SocketError) {
        if family == AF_INET6 {
            try setInt(fd, Int32(IPPROTO_IPV6), csystem_IPV6_UNICAST_HOPS, Int32(clamping: ttl), "IPV6_UNICAST_HOPS")
        } else {
            try setInt(fd, Int32(IPPROTO_IP), csystem_IP_TTL, Int32(clamping: ttl), "IP_TTL")
        }
    }

    /// RFC 5082 GTSM: packets arriving with a lower TTL (hop limit) are dropped by the kernel;
    /// 0 takes every TTL. On a listener it applies to SYNs, and accepted sockets inherit it.
    static func setMinimumTTL(_ minimum: Int, fd: Int32, family: Int32) throws(SocketError) {
        if family == AF_INET6 {
            try setInt(fd, Int32(IPPROTO_IPV6), csystem_IPV6_MINHOPCOUNT, Int32(clamping: minimum), "IPV6_MINHOPCOUNT")
        } else {
            try setInt(fd, Int32(IPPROTO_IP), csystem_IP_MINTTL, Int32(clamping: minimum), "IP_MINTTL")
        }
    }

    /// Applies `options` for a socket of `family`; `remote` is needed for the MD5 key.
    static func apply(_ options: SocketOptions, fd: Int32, family: Int32, remote: SocketAddress?) throws(SocketError) {
        if options.reuseAddress { try setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR") }
        if options.noDelay { try setInt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "TCP_NODELAY") }
        if let size = options.receiveBufferSize { try setInt(fd, SOL_SOCKET, SO_RCVBUF, Int32(clamping: size), "SO_RCVBUF") }
        if let size = options.sendBufferSize { try setInt(fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: size), "SO_SNDBUF") }
        if let ttl = options.ttl { try setTTL(ttl, fd: fd, family: family) }
        if let minimum = options.minimumTTL { try setMinimumTTL(minimum, fd: fd, family: family) }
        if let key = options.md5Key, let remote {
            try setMD5(fd: fd, key: key, peer: remote)
        }
    }

    static func setMD5(fd: Int32, key: [UInt8], peer: SocketAddress) throws(SocketError) {
        let rc = peer.withSockAddr { addr, len in
            key.withUnsafeBufferPointer { csystem_set_tcp_md5(fd, addr, len, $0.baseAddress, Int32(key.count)) }
        }
        guard rc == 0 else { throw SocketError.current("setsockopt(TCP_MD5SIG)") }
    }

    static func bind(_ fd: Int32, to address: SocketAddress) throws(SocketError) {
        let rc = address.withSockAddr { Glibc.bind(fd, $0, $1) }
        guard rc == 0 else { throw SocketError.current("bind \(address)") }
    }
}
