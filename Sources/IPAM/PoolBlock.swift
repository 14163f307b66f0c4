public import IP

/// One block of a pool, as the operator wrote it: a CIDR prefix or a first–last range.
public struct PoolBlock: Hashable, Sendable, CustomStringConvertible {
    /// Every address the block covers.
    public let range: IPRange
    /// The prefix, when the block was written as one (decides network/broadcast exclusion).
    public let prefix: IPPrefix?

    public var family: IPFamily { range.family }

    public init(prefix: IPPrefix) {
        self.prefix = prefix
        range = IPRange(prefix)
    }

    public init(range: IPRange) {
        prefix = nil
        self.range = range
    }

    /// Parses "192.0.2.0/24" or "192.0.2.10-192.0.2.20" (either family).
    public init(parsing text: String) throws(IPParseError) {
        if text.contains("/") {
            self.init(prefix: try IPPrefix(parsing: text))
        } else if text.contains("-") {
            self.init(range: try IPRange(parsing: text))
        } else {
            throw IPParseError(input: text, reason: "is not a pool block: expected a prefix such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20")
        }
    }

    /// Address space no pool may cover, and why: an address from it can never be a working
    /// service address, whatever the network around it does. (Private, shared and documentation
    /// space stay allowed: they work inside a network, which is where pools are used.)
    public static let reservedSpace: [(prefix: IPPrefix, why: String)] = [
        ("0.0.0.0/8", "\"this network\" (RFC 1122 §3.2.1.3): a source address for a host that has none yet, never a destination"),
        ("127.0.0.0/8", "loopback (RFC 1122 §3.2.1.3): never leaves the host"),
        ("169.254.0.0/16", "link-local (RFC 3927): routers do not forward it"),
        ("224.0.0.0/4", "multicast (RFC 5771): a group, not a host"),
        ("240.0.0.0/4", "reserved for future use (RFC 1112 §4), with broadcast 255.255.255.255: most hosts drop it"),
        ("::/128", "the unspecified address (RFC 4291 §2.5.2)"),
        ("::1/128", "loopback (RFC 4291 §2.5.3): never leaves the host"),
        ("::ffff:0:0/96", "IPv4-mapped (RFC 4291 §2.5.5.2): IPv4 addresses written as IPv6; give the IPv4 block instead"),
        ("fe80::/10", "link-local (RFC 4291 §2.5.6): routers do not forward it"),
        ("ff00::/8", "multicast (RFC 4291 §2.7): a group, not a host"),
    ].map { (IPPrefix($0.0)!, $0.1) }

    /// The first reserved space the block overlaps, if any.
    public var reservedOverlap: (prefix: IPPrefix, why: String)? {
        Self.reservedSpace.first { range.overlaps(IPRange($0.prefix)) }
    }

    /// The block as written: the prefix, or "first-last".
    public var description: String { prefix?.description ?? range.description }

    /// The addresses that may be handed out.
    ///
    /// By default an IPv4 block written as a prefix shorter than /31 keeps its network and
    /// broadcast addresses back: many clients and routers treat x.x.x.0 and x.x.x.255 of a subnet
    /// specially, and an address that some clients cannot reach is worse than one address fewer.
    /// An IPv6 prefix shorter than /127 keeps its first address back: it is the Subnet-Router
    /// anycast address (RFC 4291 §2.6.1). /31 and /32 (RFC 3021), /127 and /128 (RFC 6164) and
    /// ranges use every address. `allowFirstLast` true hands out every address; false keeps both
    /// ends of any block back. Nil when nothing is left.
    public func usableRange(allowFirstLast: Bool?) -> IPRange? {
        var lower = range.lower
        var upper = range.upper
        switch allowFirstLast {
        case true?:
            return range
        case false?:
            guard let next = lower.next, let previous = upper.previous else { return nil }
            lower = next
            upper = previous
        case nil:
            guard let prefix else { return range }
            switch family {
            case .ipv4 where prefix.length < 31:
                guard let next = lower.next, let previous = upper.previous else { return nil }
                lower = next
                upper = previous
            case .ipv6 where prefix.length < 127:
                guard let next = lower.next else { return nil }
                lower = next
            default:
                return range
            }
        }
        guard lower <= upper else { return nil }
        return try? IPRange(lower: lower, upper: upper)
    }
}

/// A problem with a pool's set of blocks, naming the blocks involved.
public enum PoolBlockError: Error, Hashable, Sendable, CustomStringConvertible {
    case overlap(PoolBlock, PoolBlock)
    case empty

    public var description: String {
        switch self {
        case let .overlap(a, b): "block \(a) overlaps block \(b)"
        case .empty: "a pool needs at least one block"
        }
    }
}

extension Array where Element == PoolBlock {
    /// Checks that the blocks of one pool do not overlap each other. (Overlap with other pools
    /// is checked against the database, which also enforces it.)
    public func validateDisjoint() throws(PoolBlockError) {
        guard !isEmpty else { throw .empty }
        let sorted = self.sorted { ($0.range.lower, $0.range.upper) < ($1.range.lower, $1.range.upper) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.range.overlaps(b.range) {
            throw .overlap(a, b)
        }
    }
}
