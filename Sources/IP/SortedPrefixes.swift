/// The prefixes of a table in order, for paging through it: sorting a million routes costs about
/// a tenth of a second, a page only a binary search and `limit` steps. Built once per version of
/// a table and reused while the table gains no prefix (a removed one is skipped by the reader,
/// who looks each prefix up in the table it pages).
///
/// IPv4 prefixes are kept as `PrefixMap`'s packed keys (`network << 8 | length`, 8 bytes each),
/// whose integer order is the order of `IPPrefix`: network address, then shorter prefix first.
public struct SortedPrefixes: Sendable {
    private let v4: [UInt64]
    private let v6: [IPPrefix]

    /// The prefixes of `map`, sorted.
    public init<Value>(_ map: PrefixMap<Value>) {
        v4 = map.v4.keys.sorted()
        v6 = map.v6.keys.sorted()
    }

    /// The given prefixes, sorted (duplicates kept once).
    public init(_ prefixes: some Sequence<IPPrefix>) {
        var v4: Set<UInt64> = [], v6: Set<IPPrefix> = []
        for prefix in prefixes {
            if case .v4(let address) = prefix.network { v4.insert(PrefixMap<Void>.key(address, prefix.length)) } else { v6.insert(prefix) }
        }
        self.v4 = v4.sorted()
        self.v6 = v6.sorted()
    }

    public var count: Int { v4.count + v6.count }

    /// The prefixes after `cursor` (not including it), only those inside `within` when given,
    /// in order: IPv4 first, then IPv6.
    ///
    /// A canonical prefix lies inside `within` exactly when its network address is in
    /// `within`'s range and it is no shorter, and those are the keys from (`within.network`,
    /// `within.length`) to (`within.last`, full length): one contiguous run of the sorted keys.
    public func prefixes(after cursor: IPPrefix? = nil, within: IPPrefix? = nil) -> some Sequence<IPPrefix> {
        var v4Range = 0..<v4.count
        var v6Range = 0..<v6.count
        if let within {
            if case .v4(let first) = within.network, case .v4(let last) = within.last {
                v4Range = Self.range(v4, from: PrefixMap<Void>.key(first, within.length), through: PrefixMap<Void>.key(last, 32))
                v6Range = 0..<0
            } else {
                v4Range = 0..<0
                v6Range = Self.range(v6, from: within, through: IPPrefix(host: within.last))
            }
        }
        if let cursor {
            if case .v4(let address) = cursor.network {
                v4Range = Self.clamp(v4Range, from: Self.firstIndex(in: v4, after: PrefixMap<Void>.key(address, cursor.length)))
            } else {
                v4Range = v4Range.upperBound..<v4Range.upperBound
                v6Range = Self.clamp(v6Range, from: Self.firstIndex(in: v6, after: cursor))
            }
        }
        let ipv4 = v4[v4Range].lazy.map { PrefixMap<Void>.prefix($0) }
        return [AnySequence(ipv4), AnySequence(v6[v6Range])].lazy.flatMap { $0 }
    }

    /// The part of `range` from `start` on (empty when `start` is past it).
    private static func clamp(_ range: Range<Int>, from start: Int) -> Range<Int> {
        min(max(range.lowerBound, start), range.upperBound)..<range.upperBound
    }

    /// Indices of the keys from `low` through `high`.
    private static func range<Key: Comparable>(_ keys: [Key], from low: Key, through high: Key) -> Range<Int> {
        let start = firstIndex(in: keys, notBelow: low)
        return start..<max(start, firstIndex(in: keys, after: high))
    }

    /// The index of the first key ≥ `key` (binary search).
    private static func firstIndex<Key: Comparable>(in keys: [Key], notBelow key: Key) -> Int {
        var low = 0, high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if keys[middle] < key { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The index of the first key > `key`.
    private static func firstIndex<Key: Comparable>(in keys: [Key], after key: Key) -> Int {
        var low = 0, high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if keys[middle] <= key { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
