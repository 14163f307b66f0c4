public import IP
internal import Sockets

/// Addresses configured on this host's interfaces.
public enum HostAddresses {
    /// The IPv4 addresses of the interfaces that are up, loopback excluded, with their interface.
    static func ipv4ByInterface() -> [(interface: String, address: IPv4Address)] {
        InterfaceAddresses.up().compactMap { entry in
            guard case .v4(let ip) = entry.address, !ip.isLoopback else { return nil }
            return (entry.interface, ip)
        }
    }

    /// The IPv4 addresses of all interfaces that are up, loopback excluded, in order.
    public static func ipv4() -> [IPv4Address] { ipv4ByInterface().map(\.address).sorted() }

    /// A router ID taken from the host, with how it was chosen (for the start log).
    public struct RouterIDChoice: Sendable, Equatable {
        public let routerID: IPv4Address
        public let reason: String
    }

    /// The router ID when none is configured: the lowest IPv4 address of the interface toward the
    /// IPv4 default route (the lowest metric). "The lowest address of the host", as routers
    /// traditionally pick, tends on a homelab host to be docker0, cni0, a Tailscale or another
    /// process's veth address — none of which the router knows. Without a default route the
    /// lowest address is a guess, and the reason says to set --router-id. Nil with no address.
    public static func defaultRouterID() -> RouterIDChoice? {
        let routes = (try? String(contentsOfFile: "/proc/thread-self/net/route", encoding: .utf8)) ?? ""
        return chooseRouterID(defaultInterface: defaultRouteInterface(routes), addresses: ipv4ByInterface())
    }

    static func chooseRouterID(defaultInterface: String?, addresses: [(interface: String, address: IPv4Address)]) -> RouterIDChoice? {
        if let defaultInterface, let address = addresses.filter({ $0.interface == defaultInterface }).map(\.address).min() {
            return RouterIDChoice(routerID: address, reason: "the address of \(defaultInterface), the interface toward the default route")
        }
        guard let lowest = addresses.map(\.address).min() else { return nil }
        return RouterIDChoice(routerID: lowest, reason: "no IPv4 default route: the lowest address of the host, a guess; set --router-id (HERALD_ROUTER_ID)")
    }

    /// The interface of the IPv4 default route with the lowest metric, from `/proc/net/route`
    /// (columns Iface, Destination, Gateway, Flags, RefCnt, Use, Metric, Mask; hex, host order).
    static func defaultRouteInterface(_ table: String) -> String? {
        var best: (interface: String, metric: Int)?
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count >= 8, fields[1] == "00000000", fields[7] == "00000000",
                  let flags = Int(fields[3], radix: 16), flags & 0x1 != 0, let metric = Int(fields[6]) else { continue }
            if best == nil || metric < best!.metric { best = (String(fields[0]), metric) }
        }
        return best?.interface
    }
}
