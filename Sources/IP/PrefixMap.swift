/// A dictionary keyed by prefix that stores IPv4 keys in one 64-bit word.
///
/// Herald keeps three tables with an entry per announced prefix (the desired routes, the
/// Loc-RIB, and each peer's Adj-RIB-Out), and a bulk load makes that a million entries each. An
/// `IPPrefix` key takes 24 bytes because it can hold IPv6; the IPv4 prefixes, nearly always the
/// bulk, are kept here as `network << 8 | length`, which a third of the memory holds and hashes
/// faster. IPv6 prefixes keep full keys. Order of iteration is unspecified, as for `Dictionary`.
public struct PrefixMap<Value> {
    // Internal, not private: `SortedPrefixes` sorts the packed IPv4 keys as they are.
    private(set) var v4: [UInt64: Value] = [:]
    private(set) var v6: [IPPrefix: Value] = [:]

    public init() {}

    public var count: Int { v4.count + v6.count }
    public var isEmpty: Bool { v4.isEmpty && v6.isEmpty }

    /// Entries of one family.
    public func count(of family: IPFamily) -> Int { family == .ipv4 ? v4.count : v6.count }

    /// Room for this many entries of each family without growing.
    public mutating func reserveCapacity(ipv4: Int, ipv6: Int) {
        v4.reserveCapacity(ipv4)
        v6.reserveCapacity(ipv6)
    }

    /// Room for `prefixes` on top of the entries held (an upper bound: some may be there already).
    public mutating func reserveCapacity(adding prefixes: some Sequence<IPPrefix>) {
        var ipv4 = 0, ipv6 = 0
        for prefix in prefixes { if prefix.family == .ipv4 { ipv4 += 1 } else { ipv6 += 1 } }
        reserveCapacity(ipv4: v4.count + ipv4, ipv6: v6.count + ipv6)
    }

    public subscript(prefix: IPPrefix) -> Value? {
        get {
            if case .v4(let address) = prefix.network { return v4[Self.key(address, prefix.length)] }
            return v6[prefix]
        }
        set {
            if case .v4(let address) = prefix.network { v4[Self.key(address, prefix.length)] = newValue } else { v6[prefix] = newValue }
        }
    }

    /// Sets the value and returns the one it replaced.
    @discardableResult
    public mutating func updateValue(_ value: Value, forKey prefix: IPPrefix) -> Value? {
        if case .v4(let address) = prefix.network { return v4.updateValue(value, forKey: Self.key(address, prefix.length)) }
        return v6.updateValue(value, forKey: prefix)
    }

    @discardableResult
    public mutating func removeValue(forKey prefix: IPPrefix) -> Value? {
        if case .v4(let address) = prefix.network { return v4.removeValue(forKey: Self.key(address, prefix.length)) }
        return v6.removeValue(forKey: prefix)
    }

    public mutating func removeAll() {
        v4 = [:]
        v6 = [:]
    }

    /// Every prefix, IPv4 first.
    public var keys: some Sequence<IPPrefix> {
        v4.keys.lazy.map(Self.prefix).concatenated(with: v6.keys)
    }

    public func mapValues<T>(_ transform: (Value) throws -> T) rethrows -> PrefixMap<T> {
        var mapped = PrefixMap<T>()
        mapped.v4 = try v4.mapValues(transform)
        mapped.v6 = try v6.mapValues(transform)
        return mapped
    }

    static func key(_ address: IPv4Address, _ length: Int) -> UInt64 {
        UInt64(address.value) << 8 | UInt64(length)
    }

    static func prefix(_ key: UInt64) -> IPPrefix {
        IPPrefix(validIPv4: IPv4Address(UInt32(truncatingIfNeeded: key >> 8)), length: Int(key & 0xFF))
    }
}

extension PrefixMap: Sequence {
    public struct Iterator: IteratorProtocol {
        var v4: Dictionary<UInt64, Value>.Iterator
        var v6: Dictionary<IPPrefix, Value>.Iterator

        public mutating func next() -> (key: IPPrefix, value: Value)? {
            if let (key, value) = v4.next() { return (PrefixMap.prefix(key), value) }
            return v6.next()
        }
    }

    public func makeIterator() -> Iterator { Iterator(v4: v4.makeIterator(), v6: v6.makeIterator()) }
    public var underestimatedCount: Int { count }
}

extension PrefixMap: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (IPPrefix, Value)...) {
        self.init()
        for (prefix, value) in elements { self[prefix] = value }
    }
}

extension PrefixMap: Equatable where Value: Equatable {}
extension PrefixMap: Sendable where Value: Sendable {}

extension IPPrefix {
    /// A prefix known to have no host bits (taken from a `PrefixMap` key).
    init(validIPv4 network: IPv4Address, length: Int) {
        self.init(truncating: .v4(network), length: length)
    }
}

extension Sequence {
    /// This sequence followed by `other` (lazily).
    fileprivate func concatenated<Other: Sequence>(with other: Other) -> some Sequence<Element> where Other.Element == Element {
        [AnySequence(self), AnySequence(other)].lazy.flatMap { $0 }
    }
}
