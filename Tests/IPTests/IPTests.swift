import Foundation
import Testing
import IP
import TestSupport

// MARK: - IPv4

@Suite struct IPv4Parsing {
    @Test(arguments: ["0.0.0.0", "192.0.2.1", "255.255.255.255", "10.0.0.0", "100.64.0.1"])
    func accepts(_ text: String) throws {
        #expect(try IPv4Address(parsing: text).description == text)
    }

    @Test(arguments: [
        ("", "is empty"),
        ("1.2.3", "found 3 parts"),
        ("1.2.3.4.5", "found 5 parts"),
        ("01.2.3.4", "leading zero"),
        ("1.2.3.00", "leading zero"),
        ("256.0.0.1", "greater than 255"),
        ("1.2.3.1000", "greater than 255"),
        ("1..3.4", "octet is empty"),
        ("1.2.3.4 ", "not a decimal number"),
        (" 1.2.3.4", "not a decimal number"),
        ("1.2.3.a", "not a decimal number"),
        ("+1.2.3.4", "not a decimal number"),
    ])
    func rejects(_ text: String, _ why: String) {
        #expect {
            try IPv4Address(parsing: text)
        } throws: { error in
            (error as? IPParseError)?.description.contains(why) == true
        }
    }

    @Test func nextAndPrevious() throws {
        let a = try IPv4Address(parsing: "10.0.0.255")
        #expect(a.next?.description == "10.0.1.0")
        #expect(a.previous?.description == "10.0.0.254")
        #expect(IPv4Address.broadcast.next == nil)
        #expect(IPv4Address.any.previous == nil)
    }

    @Test func octetsRoundTrip() {
        let a = IPv4Address(192, 0, 2, 7)
        #expect(a.octets == [192, 0, 2, 7])
        #expect(IPv4Address(octets: a.octets) == a)
        #expect(IPv4Address(octets: [1, 2, 3]) == nil)
    }
}

// MARK: - IPv6

@Suite struct IPv6Parsing {
    @Test(arguments: [
        // RFC 4291 §2.2 form 1, 2 and 3 → RFC 5952 canonical text
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("fe80::", "fe80::"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // §4.2.3: first of equal runs
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // §4.2.2: one zero group stays
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),  // §4.2.3: the longest run
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("::ffff:c000:0201", "::ffff:192.0.2.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("::192.0.2.1", "::c000:201"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("1::8", "1::8"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
    ])
    func canonical(_ text: String, _ expected: String) throws {
        #expect(try IPv6Address(parsing: text).description == expected)
    }

    @Test(arguments: [
        ("", "is empty"),
        ("fe80::1%eth0", "zone IDs"),
        ("[2001:db8::1]", "brackets"),
        ("1::2::3", "only once"),
        ("1:2:3:4:5:6:7", "eight groups"),
        ("1:2:3:4:5:6:7:8:9", "eight groups"),
        ("1:2:3:4:5:6:7:8::", "at least one group"),
        ("12345::", "four hex digits"),
        ("g::", "not hexadecimal"),
        (":1::", "empty"),
        ("1:::2", "empty"),
        ("1:2:3:4:5:6:7:", "empty"),
        ("::1.2.3.4:5", "last 32 bits"),
        ("::1.2.3", "embedded IPv4"),
        ("::01.2.3.4", "embedded IPv4"),
    ])
    func rejects(_ text: String, _ why: String) {
        #expect {
            try IPv6Address(parsing: text)
        } throws: { error in
            (error as? IPParseError)?.description.contains(why) == true
        }
    }

    @Test func classification() throws {
        #expect(try IPv6Address(parsing: "fe80::1").isLinkLocal)
        #expect(try IPv6Address(parsing: "febf::1").isLinkLocal)
        #expect(try !IPv6Address(parsing: "fec0::1").isLinkLocal)
        #expect(try IPv6Address(parsing: "ff02::5").isMulticast)
        #expect(IPv6Address.loopback.isLoopback)
    }

    @Test func bytesRoundTrip() throws {
        let a = try IPv6Address(parsing: "2001:db8::aa:1")
        #expect(a.bytes.count == 16)
        #expect(a.bytes.prefix(4) == [0x20, 0x01, 0x0d, 0xb8])
        #expect(IPv6Address(bytes: a.bytes) == a)
    }
}

// MARK: - Mixed families

@Suite struct IPAddressTests {
    @Test func familyAndOrder() throws {
        let v4 = try IPAddress(parsing: "255.255.255.255")
        let v6 = try IPAddress(parsing: "::")
        #expect(v4.family == .ipv4 && v6.family == .ipv6)
        #expect(v4 < v6)
        #expect(try IPAddress(parsing: "10.0.0.2") > IPAddress(parsing: "10.0.0.1"))
    }

    @Test func codableAsString() throws {
        struct Holder: Codable, Equatable { var address: IPAddress; var prefix: IPPrefix; var range: IPRange }
        let value = Holder(
            address: try IPAddress(parsing: "2001:db8::1"),
            prefix: try IPPrefix(parsing: "192.0.2.0/24"),
            range: try IPRange(parsing: "192.0.2.10-192.0.2.20"))
        let json = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
        #expect(json.contains("\"2001:db8::1\"") && json.contains("\"192.0.2.0\\/24\"") && json.contains("\"192.0.2.10-192.0.2.20\""))
        #expect(try JSONDecoder().decode(Holder.self, from: Data(json.utf8)) == value)
    }

    @Test func decodingErrorNamesTheProblem() {
        let json = Data(#"{"prefix":"10.0.0.1/24"}"#.utf8)
        struct Holder: Codable { var prefix: IPPrefix }
        #expect {
            try JSONDecoder().decode(Holder.self, from: json)
        } throws: { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return false }
            return context.debugDescription.contains("did you mean 10.0.0.0/24?")
        }
    }
}

// MARK: - Prefixes

@Suite struct IPPrefixTests {
    @Test func hostBitsSuggestion() {
        #expect {
            try IPPrefix(parsing: "10.0.0.1/24")
        } throws: { error in
            (error as? IPParseError)?.description == "\"10.0.0.1/24\" has host bits set; did you mean 10.0.0.0/24?"
        }
        #expect {
            try IPPrefix(parsing: "2001:db8::1/64")
        } throws: { error in
            (error as? IPParseError)?.description.contains("did you mean 2001:db8::/64?") == true
        }
    }

    @Test(arguments: [
        ("10.0.0.1", "did you mean 10.0.0.1/32?"),
        ("2001:db8::1", "did you mean 2001:db8::1/128?"),
        ("10.0.0.0/33", "invalid prefix length"),
        ("10.0.0.0/", "invalid prefix length"),
        ("10.0.0.0/024", "invalid prefix length"),
        ("10.0.0.0/-1", "invalid prefix length"),
        ("::/129", "invalid prefix length"),
        ("10.0.0.0/8/8", "more than one"),
        ("10.0.0/8", "not a prefix"),
        ("nonsense", "not a prefix"),
    ])
    func rejects(_ text: String, _ why: String) {
        #expect {
            try IPPrefix(parsing: text)
        } throws: { error in
            (error as? IPParseError)?.description.contains(why) == true
        }
    }

    @Test func geometry() throws {
        let p = try IPPrefix(parsing: "192.0.2.0/24")
        #expect(p.first.description == "192.0.2.0")
        #expect(p.last.description == "192.0.2.255")
        #expect(p.netmask.description == "255.255.255.0")
        #expect(p.addressCount == 256)
        #expect(try IPPrefix(parsing: "0.0.0.0/0").last.description == "255.255.255.255")
        #expect(try IPPrefix(parsing: "::/0").addressCount == .max)
        #expect(try IPPrefix(parsing: "2001:db8::/32").last.description == "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")
        #expect(try IPPrefix(parsing: "10.1.2.3/32").isHost)
    }

    @Test func containmentAndOverlap() throws {
        let p16 = try IPPrefix(parsing: "10.1.0.0/16")
        let p24 = try IPPrefix(parsing: "10.1.2.0/24")
        let other = try IPPrefix(parsing: "10.2.0.0/16")
        let v6 = try IPPrefix(parsing: "::/0")
        #expect(p16.contains(p24) && !p24.contains(p16) && p16.contains(p16))
        #expect(p16.overlaps(p24) && p24.overlaps(p16) && !p16.overlaps(other))
        #expect(p16.contains(try IPAddress(parsing: "10.1.255.255")))
        #expect(!p16.contains(try IPAddress(parsing: "10.2.0.0")))
        #expect(!v6.contains(try IPAddress(parsing: "10.1.0.1")), "families never contain each other")
        #expect(!v6.overlaps(p16))
    }

    @Test func iteration() throws {
        let p = try IPPrefix(parsing: "192.0.2.252/30")
        #expect(p.addresses.map(\.description) == ["192.0.2.252", "192.0.2.253", "192.0.2.254", "192.0.2.255"])
        let top = try IPPrefix(parsing: "255.255.255.254/31")
        #expect(Array(top.addresses).count == 2, "iteration stops at the end of the address space")
        let subnets = try IPPrefix(parsing: "10.0.0.0/22").subnets(ofLength: 24).map(\.description)
        #expect(subnets == ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"])
        #expect(Array(try IPPrefix(parsing: "10.0.0.0/24").subnets(ofLength: 16)).isEmpty)
        #expect(Array(try IPPrefix(parsing: "::/0").subnets(ofLength: 1)).map(\.description) == ["::/1", "8000::/1"])
        #expect(Array(try IPPrefix(parsing: "0.0.0.0/0").subnets(ofLength: 0)).count == 1)
    }

    @Test func ordering() throws {
        let sorted = try ["10.0.0.0/24", "::/0", "10.0.0.0/8", "9.0.0.0/8"].map { try IPPrefix(parsing: $0) }.sorted()
        #expect(sorted.map(\.description) == ["9.0.0.0/8", "10.0.0.0/8", "10.0.0.0/24", "::/0"])
    }
}

// MARK: - Ranges

@Suite struct IPRangeTests {
    @Test func parseAndCount() throws {
        let r = try IPRange(parsing: "192.0.2.10-192.0.2.20")
        #expect(r.addressCount == 11)
        #expect(r.contains(try IPAddress(parsing: "192.0.2.15")))
        #expect(!r.contains(try IPAddress(parsing: "192.0.2.21")))
        #expect(try IPRange(parsing: "10.0.0.0/30").description == "10.0.0.0-10.0.0.3")
        #expect(try IPRange(parsing: "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").addressCount == .max)
    }

    @Test(arguments: [
        ("192.0.2.20-192.0.2.10", "did you mean 192.0.2.10-192.0.2.20?"),
        ("192.0.2.1-2001:db8::1", "mixes IPv4 and IPv6"),
        ("192.0.2.1", "expected first-last"),
        ("192.0.2.1-192.0.2.300", "greater than 255"),
    ])
    func rejects(_ text: String, _ why: String) {
        #expect {
            try IPRange(parsing: text)
        } throws: { error in
            (error as? IPParseError)?.description.contains(why) == true
        }
    }

    @Test func minimalPrefixCover() throws {
        #expect(try IPRange(parsing: "192.0.2.10-192.0.2.20").prefixes.map(\.description)
            == ["192.0.2.10/31", "192.0.2.12/30", "192.0.2.16/30", "192.0.2.20/32"])
        #expect(try IPRange(parsing: "0.0.0.0-255.255.255.255").prefixes.map(\.description) == ["0.0.0.0/0"])
        #expect(try IPRange(parsing: "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").prefixes.map(\.description) == ["::/0"])
        #expect(try IPRange(parsing: "255.255.255.255-255.255.255.255").prefixes.map(\.description) == ["255.255.255.255/32"])
    }

    @Test func overlap() throws {
        let a = try IPRange(parsing: "10.0.0.1-10.0.0.10")
        #expect(a.overlaps(try IPRange(parsing: "10.0.0.10-10.0.0.20")))
        #expect(!a.overlaps(try IPRange(parsing: "10.0.0.11-10.0.0.20")))
        #expect(a.contains(try IPRange(parsing: "10.0.0.2-10.0.0.3")))
    }
}

// MARK: - Properties over random values


@Suite struct RoundTripProperties {
    /// IPv6 values biased towards zero runs, where RFC 5952 compression is decided.
    static func randomIPv6(_ rng: inout SeededGenerator) -> IPv6Address {
        var value: UInt128 = 0
        for _ in 0..<8 {
            let group: UInt16 = switch rng.next() % 4 {
            case 0, 1: 0
            case 2: UInt16.random(in: 1...0xF, using: &rng)
            default: UInt16.random(in: 0...0xFFFF, using: &rng)
            }
            value = value << 16 | UInt128(group)
        }
        if rng.next() % 10 == 0 { value = 0xFFFF_0000_0000 | UInt128(UInt32.random(in: 0...UInt32.max, using: &rng)) }
        return IPv6Address(value)
    }

    @Test func addressesRoundTrip() throws {
        var rng = SeededGenerator(state: 0x4845_5241_4C44)
        for _ in 0..<20_000 {
            let v4 = IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng))
            #expect(try IPv4Address(parsing: v4.description) == v4)
            let v6 = Self.randomIPv6(&rng)
            let text = v6.description
            #expect(try IPv6Address(parsing: text) == v6, "\(text)")
            #expect(text == text.lowercased())
        }
    }

    @Test func prefixesRoundTrip() throws {
        var rng = SeededGenerator(state: 7)
        for _ in 0..<20_000 {
            let address: IPAddress = rng.next() % 2 == 0
                ? .v4(IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng)))
                : .v6(Self.randomIPv6(&rng))
            let prefix = IPPrefix(truncating: address, length: Int.random(in: 0...address.family.bitWidth, using: &rng))
            #expect(try IPPrefix(parsing: prefix.description) == prefix)
            #expect(prefix.contains(address))
            let range = IPRange(prefix)
            #expect(range.prefixes == [prefix])
        }
    }

    @Test func rangeCoverIsExact() throws {
        var rng = SeededGenerator(state: 99)
        for _ in 0..<2_000 {
            let a = UInt32.random(in: 0...UInt32.max, using: &rng)
            let b = a &+ UInt32.random(in: 0...5_000, using: &rng)
            let range = try IPRange(lower: .v4(IPv4Address(min(a, b))), upper: .v4(IPv4Address(max(a, b))))
            let cover = range.prefixes
            #expect(cover.first?.first == range.lower && cover.last?.last == range.upper)
            #expect(cover.reduce(UInt128(0)) { $0 + $1.addressCount } == range.addressCount)
            for (left, right) in zip(cover, cover.dropFirst()) {
                #expect(left.last.next == right.first, "prefixes are contiguous and do not overlap")
            }
            #expect(try IPRange(parsing: range.description) == range)
        }
    }

    @Test(.heavy) func garbageNeverTraps() {
        var rng = SeededGenerator(state: 1)
        let alphabet = Array("0123456789abcdefABCDEF:./%-[] xg".utf8)
        for _ in 0..<50_000 {
            let bytes = (0..<Int.random(in: 0...45, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let text = String(decoding: bytes, as: UTF8.self)
            if let address = IPAddress(text) { #expect(IPAddress(address.description) == address) }
            if let prefix = IPPrefix(text) { #expect(IPPrefix(prefix.description) == prefix) }
            _ = IPRange(text)
        }
    }
}
