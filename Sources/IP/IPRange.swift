/// An inclusive range of addresses of one family, such as "192.0.2.10-192.0.2.20".
public struct IPRange: Hashable, Sendable {
    public let lower: IPAddress
    public let upper: IPAddress

    public var family: IPFamily { lower.family }

    public init(lower: IPAddress, upper: IPAddress) throws(IPParseError) {
        guard lower.family == upper.family else {
            throw IPParseError(input: "\(lower)-\(upper)", reason: "mixes IPv4 and IPv6")
        }
        guard lower <= upper else {
            throw IPParseError(input: "\(lower)-\(upper)", reason: "ends before it starts; did you mean \(upper)-\(lower)?")
        }
        self.lower = lower
        self.upper = upper
    }

    /// The range covering exactly the addresses of `prefix`.
    public init(_ prefix: IPPrefix) {
        lower = prefix.first
        upper = prefix.last
    }

    /// How many addresses the range holds; saturates at `UInt128.max` for the whole IPv6 space.
    public var addressCount: UInt128 {
        let span = upper.bits - lower.bits
        return span == .max ? .max : span + 1
    }

    public func contains(_ address: IPAddress) -> Bool {
        address.family == family && lower <= address && address <= upper
    }

    public func contains(_ other: IPRange) -> Bool {
        other.family == family && lower <= other.lower && other.upper <= upper
    }

    public func overlaps(_ other: IPRange) -> Bool {
        other.family == family && lower <= other.upper && other.lower <= upper
    }

    public var addresses: IPAddressSequence { IPAddressSequence(first: lower, last: upper) }

    /// The fewest CIDR prefixes that cover exactly this range, in order.
    public var prefixes: [IPPrefix] {
        var result: [IPPrefix] = []
        let width = family.bitWidth
        var start = lower.bits
        let end = upper.bits
        while true {
            // The largest aligned block starting at `start` that does not pass `end`.
            var hostBits = start == 0 ? width : min(start.trailingZeroBitCount, width)
            while hostBits > 0 {
                let blockLast = hostBits >= 128 ? UInt128.max : start | ((UInt128(1) << hostBits) - 1)
                if blockLast <= end { break }
                hostBits -= 1
            }
            result.append(IPPrefix(truncating: IPAddress(family: family, bits: start), length: width - hostBits))
            let blockLast = hostBits >= 128 ? UInt128.max : start | ((UInt128(1) << hostBits) - 1)
            if blockLast >= end { break }
            start = blockLast + 1
        }
        return result
    }

    // MARK: - Parsing

    /// Parses "first-last" (no spaces) or a CIDR prefix.
    public init(parsing text: some StringProtocol) throws(IPParseError) {
        let input = String(text)
        if input.contains("/") {
            self.init(try IPPrefix(parsing: input))
            return
        }
        let parts = input.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw IPParseError(input: input, reason: "is not a range: expected first-last such as 192.0.2.10-192.0.2.20, or a prefix")
        }
        let lower: IPAddress, upper: IPAddress
        do {
            lower = try IPAddress(parsing: parts[0])
            upper = try IPAddress(parsing: parts[1])
        } catch {
            throw IPParseError(input: input, reason: "is not a range: \"\(error.input)\" \(error.reason)")
        }
        try self.init(lower: lower, upper: upper)
    }
}

extension IPRange: CustomStringConvertible, IPTextRepresentable, Codable {
    public var description: String { "\(lower)-\(upper)" }
}
