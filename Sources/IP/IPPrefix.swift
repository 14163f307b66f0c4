/// A CIDR prefix: a network address and a length, with no host bits set.
///
/// Parsing is strict: "10.0.0.1/24" is refused with a suggestion of "10.0.0.0/24", because a
/// prefix with host bits is almost always a typo for either the network or a /32.
public struct IPPrefix: Hashable, Comparable, Sendable {
    public let network: IPAddress
    /// Stored in a byte (at most 128): with `network` that keeps a prefix at 24 bytes.
    private let storedLength: UInt8
    public var length: Int { Int(storedLength) }

    /// One or two words per prefix rather than the synthesized walk through the enum: prefixes
    /// are hashed several times each when a million-entry table is built or sent.
    public func hash(into hasher: inout Hasher) {
        switch network {
        case .v4(let address):
            hasher.combine(UInt64(address.value) << 8 | UInt64(storedLength))
        case .v6(let address):
            let value = address.value
            hasher.combine(UInt64(truncatingIfNeeded: value >> 64))
            hasher.combine(UInt64(truncatingIfNeeded: value) ^ UInt64(storedLength) << 56 ^ 0x1)
        }
    }

    public var family: IPFamily { network.family }

    /// Builds a prefix, refusing a length out of range or host bits set.
    public init(network: IPAddress, length: Int) throws(IPParseError) {
        guard (0...network.family.bitWidth).contains(length) else {
            throw IPParseError(input: "\(network)/\(length)", reason: "has a prefix length out of range (0–\(network.family.bitWidth))")
        }
        let truncated = IPPrefix(truncating: network, length: length)
        guard truncated.network == network else {
            throw IPParseError(input: "\(network)/\(length)", reason: "has host bits set; did you mean \(truncated)?")
        }
        self = truncated
    }

    /// Builds the prefix of `length` that contains `address`, clearing its host bits.
    /// `length` is clamped to the family's width.
    public init(truncating address: IPAddress, length: Int) {
        let width = address.family.bitWidth
        let length = min(max(length, 0), width)
        storedLength = UInt8(length)
        network = IPAddress(family: address.family, bits: address.bits & Self.mask(length: length, width: width))
    }

    /// The single-address prefix (/32 or /128) of `address`.
    public init(host address: IPAddress) {
        self.init(truncating: address, length: address.family.bitWidth)
    }

    static func mask(length: Int, width: Int) -> UInt128 {
        let all: UInt128 = width == 128 ? .max : (UInt128(1) << width) - 1
        guard length > 0 else { return 0 }
        return all & ~((all >> length))
    }

    /// The netmask, as an address of the prefix's family (e.g. 255.255.255.0 for a /24).
    public var netmask: IPAddress {
        IPAddress(family: family, bits: Self.mask(length: length, width: family.bitWidth))
    }

    /// The first address (the network address).
    public var first: IPAddress { network }

    /// The last address (all host bits set).
    public var last: IPAddress {
        let width = family.bitWidth
        let hostMask = ~Self.mask(length: length, width: width) & (width == 128 ? .max : (UInt128(1) << width) - 1)
        return IPAddress(family: family, bits: network.bits | hostMask)
    }

    /// Number of host bits (32 − length or 128 − length).
    public var hostBits: Int { family.bitWidth - length }

    /// How many addresses the prefix holds; saturates at `UInt128.max` for `::/0`.
    public var addressCount: UInt128 {
        hostBits >= 128 ? .max : UInt128(1) << hostBits
    }

    /// True for a /32 or /128.
    public var isHost: Bool { hostBits == 0 }

    public func contains(_ address: IPAddress) -> Bool {
        address.family == family
            && address.bits & Self.mask(length: length, width: family.bitWidth) == network.bits
    }

    /// True when `other` lies entirely inside this prefix (a prefix contains itself).
    public func contains(_ other: IPPrefix) -> Bool {
        other.length >= length && contains(other.network)
    }

    /// True when the two prefixes share at least one address.
    public func overlaps(_ other: IPPrefix) -> Bool {
        contains(other) || other.contains(self)
    }

    /// Every address of the prefix in order, network and last address included.
    public var addresses: IPAddressSequence { IPAddressSequence(first: first, last: last) }

    /// The prefixes of `newLength` that tile this one, in order (`10.0.0.0/23` → two /24s).
    /// Empty when `newLength` is shorter than this prefix or longer than the family allows.
    public func subnets(ofLength newLength: Int) -> IPPrefixSequence {
        IPPrefixSequence(parent: self, length: newLength)
    }

    /// Orders by family, then network address, then shorter prefix first.
    public static func < (lhs: IPPrefix, rhs: IPPrefix) -> Bool {
        (lhs.network, lhs.length) < (rhs.network, rhs.length)
    }

    // MARK: - Parsing

    /// Parses "address/length" strictly.
    public init(parsing text: some StringProtocol) throws(IPParseError) {
        let input = String(text)
        let parts = input.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 1 {
            if let address = try? IPAddress(parsing: input) {
                throw IPParseError(input: input, reason: "has no prefix length; did you mean \(IPPrefix(host: address))?")
            }
            throw IPParseError(input: input, reason: "is not a prefix: expected address/length such as 192.0.2.0/24")
        }
        guard parts.count == 2 else {
            throw IPParseError(input: input, reason: "is not a prefix: more than one \"/\"")
        }
        let address: IPAddress
        do { address = try IPAddress(parsing: parts[0]) } catch {
            throw IPParseError(input: input, reason: "is not a prefix: \"\(error.input)\" \(error.reason)")
        }
        let lengthText = parts[1]
        guard !lengthText.isEmpty, lengthText.count <= 3,
              lengthText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              !(lengthText.count > 1 && lengthText.first == "0"),
              let length = Int(lengthText), length <= address.family.bitWidth
        else {
            throw IPParseError(input: input, reason: "has an invalid prefix length \"\(lengthText)\"; expected 0–\(address.family.bitWidth)")
        }
        let truncated = IPPrefix(truncating: address, length: length)
        guard truncated.network == address else {
            throw IPParseError(input: input, reason: "has host bits set; did you mean \(truncated)?")
        }
        self = truncated
    }
}

extension IPPrefix: CustomStringConvertible, IPTextRepresentable, Codable {
    public var description: String { "\(network)/\(length)" }
}

// MARK: - Iteration

/// The addresses from `first` through `last` inclusive (same family), in order.
public struct IPAddressSequence: Sequence, Sendable {
    public let first: IPAddress
    public let last: IPAddress

    public struct Iterator: IteratorProtocol, Sendable {
        var current: IPAddress?
        let last: IPAddress

        public mutating func next() -> IPAddress? {
            guard let value = current else { return nil }
            current = value == last ? nil : value.next
            return value
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(current: first <= last ? first : nil, last: last)
    }
}

/// The prefixes of one length that tile a parent prefix, in order.
public struct IPPrefixSequence: Sequence, Sendable {
    public let parent: IPPrefix
    public let length: Int

    public struct Iterator: IteratorProtocol, Sendable {
        var current: IPPrefix?
        let step: UInt128
        let last: IPAddress

        public mutating func next() -> IPPrefix? {
            guard let value = current else { return nil }
            if value.last == last {
                current = nil
            } else {
                current = IPPrefix(truncating: IPAddress(family: value.family, bits: value.network.bits &+ step), length: value.length)
            }
            return value
        }
    }

    public func makeIterator() -> Iterator {
        guard length >= parent.length, length <= parent.family.bitWidth else {
            return Iterator(current: nil, step: 0, last: parent.last)
        }
        let hostBits = parent.family.bitWidth - length
        let step: UInt128 = hostBits >= 128 ? 0 : UInt128(1) << hostBits
        return Iterator(current: IPPrefix(truncating: parent.network, length: length), step: step, last: parent.last)
    }
}
