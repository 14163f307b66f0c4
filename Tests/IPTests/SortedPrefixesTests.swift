import TestSupport
import IP
import Testing

@Suite struct SortedPrefixesTests {
    /// Random tables of both families: every page walk (after any cursor, inside any prefix)
    /// gives exactly what sorting and filtering the whole table gives, the model.
    @Test func walksEqualSortingAndFilteringTheWholeTable() {
        var rng = SeededGenerator(state: 0x50F7)
        func randomPrefix() -> IPPrefix {
            if rng.next() % 4 == 0 {
                let length = Int(rng.next() % 129)
                return IPPrefix(truncating: .v6(IPv6Address(UInt128(rng.next() % 16) << 124 | UInt128(rng.next() % 1024))), length: length)
            }
            let length = [0, 1, 7, 8, 16, 23, 24, 25, 31, 32][Int(rng.next() % 10)]
            return IPPrefix(truncating: .v4(IPv4Address(UInt32(rng.next() % 4) << 30 | UInt32(rng.next() % 0x3FF) << 8)), length: length)
        }
        for _ in 0..<20 {
            var map = PrefixMap<Int>()
            for n in 0..<Int(rng.next() % 600) { map[randomPrefix()] = n }
            let sorted = SortedPrefixes(map)
            let model = map.keys.sorted()
            #expect(sorted.count == model.count)
            #expect(Array(sorted.prefixes()) == model)
            for _ in 0..<40 {
                let cursor: IPPrefix? = rng.next() % 4 == 0 ? nil : (rng.next() % 2 == 0 ? model.randomElement(using: &rng) : randomPrefix())
                let within: IPPrefix? = rng.next() % 3 == 0 ? nil : randomPrefix()
                let expected = model.filter { prefix in
                    (cursor.map { prefix > $0 } ?? true) && (within.map { $0.contains(prefix) } ?? true)
                }
                #expect(Array(sorted.prefixes(after: cursor, within: within)) == expected,
                        "after \(cursor?.description ?? "-") within \(within?.description ?? "-")")
            }
        }
    }

    /// Paging by the last prefix of each page visits every prefix once, in order.
    @Test func pagingVisitsEveryPrefixOnce() {
        var map = PrefixMap<Int>()
        for n in 0..<5_000 { map[IPPrefix(host: .v4(IPv4Address(0x0A00_0000 | UInt32(n * 7))))] = n }
        for n in 0..<100 { map[IPPrefix(truncating: .v6(IPv6Address(UInt128(0x2001_0db8) << 96 | UInt128(n) << 64)), length: 64)] = n }
        let sorted = SortedPrefixes(map)
        var seen: [IPPrefix] = []
        var cursor: IPPrefix?
        while true {
            let page = Array(sorted.prefixes(after: cursor).prefix(333))
            guard let last = page.last else { break }
            seen += page
            cursor = last
        }
        #expect(seen == map.keys.sorted())
    }
}
