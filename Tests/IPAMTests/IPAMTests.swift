import Testing
import IP
import IPAM

@Suite struct PoolBlockTests {
    @Test func parsesBothForms() throws {
        let cidr = try PoolBlock(parsing: "192.0.2.0/24")
        #expect(cidr.prefix?.description == "192.0.2.0/24" && cidr.description == "192.0.2.0/24")
        let range = try PoolBlock(parsing: "192.0.2.10-192.0.2.20")
        #expect(range.prefix == nil && range.range.addressCount == 11 && range.description == "192.0.2.10-192.0.2.20")
        #expect(throws: IPParseError.self) { try PoolBlock(parsing: "192.0.2.1") }
        #expect(throws: IPParseError.self) { try PoolBlock(parsing: "192.0.2.1/24") }
    }

    @Test func networkAndBroadcastAreKeptBackByDefault() throws {
        #expect(try PoolBlock(parsing: "192.0.2.0/24").usableRange(allowFirstLast: nil)?.description == "192.0.2.1-192.0.2.254")
        #expect(try PoolBlock(parsing: "192.0.2.0/24").usableRange(allowFirstLast: true)?.description == "192.0.2.0-192.0.2.255")
        #expect(try PoolBlock(parsing: "192.0.2.0/31").usableRange(allowFirstLast: nil)?.addressCount == 2, "RFC 3021 /31")
        #expect(try PoolBlock(parsing: "192.0.2.7/32").usableRange(allowFirstLast: nil)?.addressCount == 1)
        #expect(try PoolBlock(parsing: "192.0.2.7/32").usableRange(allowFirstLast: false) == nil, "nothing left")
        #expect(try PoolBlock(parsing: "192.0.2.10-192.0.2.20").usableRange(allowFirstLast: nil)?.addressCount == 11, "ranges are exact")
        #expect(try PoolBlock(parsing: "2001:db8::/126").usableRange(allowFirstLast: nil)?.description == "2001:db8::1-2001:db8::3",
                "IPv6 has no broadcast; the first address is the Subnet-Router anycast address")
        #expect(try PoolBlock(parsing: "2001:db8::/127").usableRange(allowFirstLast: nil)?.addressCount == 2, "RFC 6164 /127")
        #expect(try PoolBlock(parsing: "2001:db8::/126").usableRange(allowFirstLast: true)?.addressCount == 4)
        #expect(try PoolBlock(parsing: "192.0.2.10-192.0.2.20").usableRange(allowFirstLast: false)?.description == "192.0.2.11-192.0.2.19")
    }

    @Test func overlappingBlocksAreNamed() throws {
        let blocks = try ["192.0.2.0/25", "198.51.100.0/24", "192.0.2.100-192.0.2.200"].map { try PoolBlock(parsing: $0) }
        #expect(throws: PoolBlockError.overlap(blocks[0], blocks[2])) { try blocks.validateDisjoint() }
        #expect(throws: PoolBlockError.empty) { try [PoolBlock]().validateDisjoint() }
        try [blocks[0], blocks[1]].validateDisjoint()
    }
}

@Suite struct AllocatorTests {
    func usable(_ texts: [String]) throws -> [UsableBlock<Int>] {
        try texts.enumerated().map { UsableBlock(id: $0.offset, range: try PoolBlock(parsing: $0.element).usableRange(allowFirstLast: nil)!) }
    }

    func addresses(_ texts: [String]) throws -> [IPAddress] { try texts.map { try IPAddress(parsing: $0) } }

    @Test func picksTheLowestFreeAddress() throws {
        let blocks = try usable(["192.0.2.0/29"])
        #expect(Allocator.lowestFree(family: .ipv4, in: blocks) { _ in [] }?.address.description == "192.0.2.1")
        let taken = try addresses(["192.0.2.1", "192.0.2.2", "192.0.2.4"])
        #expect(Allocator.lowestFree(family: .ipv4, in: blocks) { _ in taken }?.address.description == "192.0.2.3")
    }

    @Test func movesToTheNextBlockWhenFull() throws {
        let blocks = try usable(["192.0.2.0/30", "198.51.100.8-198.51.100.9"])
        let taken = try addresses(["192.0.2.1", "192.0.2.2", "198.51.100.8"])
        let pick = try #require(Allocator.lowestFree(family: .ipv4, in: blocks) { range in taken.filter { range.contains($0) } })
        #expect(pick.block == 1 && pick.address.description == "198.51.100.9")
        let all = taken + (try addresses(["198.51.100.9"]))
        #expect(Allocator.lowestFree(family: .ipv4, in: blocks) { range in all.filter { range.contains($0) } } == nil, "exhausted")
    }

    @Test func familiesAreSeparate() throws {
        let blocks = try usable(["192.0.2.0/30", "2001:db8::/64"])
        #expect(Allocator.lowestFree(family: .ipv6, in: blocks) { _ in [] }?.address.description == "2001:db8::1")
        #expect(Allocator.lowestFree(family: .ipv6, in: try usable(["192.0.2.0/30"])) { _ in [] } == nil)
    }

    @Test func hugeBlocksCostOnlyWhatIsTaken() throws {
        let blocks = try usable(["2001:db8::/32"])
        var calls = 0
        let pick = Allocator.lowestFree(family: .ipv6, in: blocks) { _ in calls += 1; return [] }
        #expect(pick?.address.description == "2001:db8::1" && calls == 1)
        #expect(Allocator.size(of: blocks) == (UInt128(1) << 96) - 1)
        #expect(Allocator.size(of: try usable(["::/0", "::/1"])) == .max, "saturates")
    }

    @Test func findsTheBlockOfARequestedAddress() throws {
        let blocks = try usable(["192.0.2.0/24", "198.51.100.0/24"])
        #expect(Allocator.block(containing: try IPAddress(parsing: "198.51.100.7"), in: blocks) == 1)
        #expect(Allocator.block(containing: try IPAddress(parsing: "192.0.2.0"), in: blocks) == nil, "network address is not usable")
        #expect(Allocator.block(containing: try IPAddress(parsing: "203.0.113.1"), in: blocks) == nil)
    }

    /// Allocating until the pool is exhausted hands out every usable address exactly once.
    @Test func exhaustsWithoutDuplicates() throws {
        let blocks = try usable(["192.0.2.0/28", "192.0.2.100-192.0.2.103"])
        var taken: [IPAddress] = []
        while let pick = Allocator.lowestFree(family: .ipv4, in: blocks, taken: { range in taken.filter { range.contains($0) }.sorted() }) {
            #expect(!taken.contains(pick.address))
            taken.append(pick.address)
        }
        #expect(taken.count == 14 + 4)
        #expect(UInt128(taken.count) == Allocator.size(of: blocks))
    }
}
