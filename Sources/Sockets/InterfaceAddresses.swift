public import IP
import Glibc

/// The addresses configured on this host's interfaces, for the next hop a session gives routes
/// of the other family than its own.
public enum InterfaceAddresses {
    /// An address of `family` on the interface that holds `address` (the local end of a
    /// session), usable as a next hop by a router on that link: up, not loopback, link-local,
    /// multicast or IPv4-mapped; the lowest when there are several. Nil when `address` is on no
    /// interface or its interface has none. Reads the interfaces (getifaddrs: one netlink dump),
    /// so it is meant for a session coming up, not for every route.
    public static func sibling(of address: IPAddress, family: IPFamily) -> IPAddress? {
        let all = up()
        guard let holder = all.first(where: { $0.address == address })?.interface else { return nil }
        return all.filter { $0.interface == holder && $0.address.family == family && usableAsNextHop($0.address) }.map(\.address).min()
    }

    /// Every address of every interface that is up, with its interface's name, in the order the
    /// kernel lists them (getifaddrs).
    public static func up() -> [(interface: String, address: IPAddress)] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var result: [(interface: String, address: IPAddress)] = []
        var cursor = head
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let socketAddress = entry.pointee.ifa_addr, entry.pointee.ifa_flags & UInt32(IFF_UP) != 0,
                  let ip = Self.address(socketAddress) else { continue }
            result.append((String(cString: entry.pointee.ifa_name), ip))
        }
        return result
    }

    static func usableAsNextHop(_ address: IPAddress) -> Bool {
        guard !address.isLoopback, !address.isMulticast, !address.isUnspecified else { return false }
        if case .v6(let v6) = address {
            return !v6.isLinkLocal && v6.ipv4Mapped == nil
        }
        return true
    }

    private static func address(_ pointer: UnsafeMutablePointer<sockaddr>) -> IPAddress? {
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { .v4(IPv4Address(UInt32(bigEndian: $0.pointee.sin_addr.s_addr))) }
        case AF_INET6:
            let bytes = pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in withUnsafeBytes(of: sin6.pointee.sin6_addr) { Array($0) } }
            return IPv6Address(bytes: bytes).map(IPAddress.v6)
        default:
            return nil
        }
    }
}
