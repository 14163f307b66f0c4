public import IP
#if canImport(Glibc)
internal import Glibc
#endif

/// Addresses configured on this host's interfaces.
public enum HostAddresses {
    /// The IPv4 addresses of all interfaces that are up, loopback excluded, in order.
    public static func ipv4() -> [IPv4Address] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var result: [IPv4Address] = []
        var cursor = head
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                  entry.pointee.ifa_flags & UInt32(IFF_UP) != 0 else { continue }
            let ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { IPv4Address(UInt32(bigEndian: $0.pointee.sin_addr.s_addr)) }
            if !ip.isLoopback { result.append(ip) }
        }
        return result.sorted()
    }

    /// A router ID taken from the host, as routers do when none is configured: the lowest
    /// non-loopback IPv4 address. Nil on a host with none.
    public static func defaultRouterID() -> IPv4Address? { ipv4().first }
}
