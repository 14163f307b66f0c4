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
