import TestSupport
import IP
import Testing

@Suite struct PrefixMapTests {
    /// A seeded walk of inserts, replacements and removals over both families, checked after
    /// every step against a plain `Dictionary` (the model): lookups, counts, iteration and keys.
    @Test func behavesLikeADictionary() throws {
        var rng = SeededGenerator(state: 0x9E7)
        var map = PrefixMap<Int>()
        var model: [IPPrefix: Int] = [:]
        func randomPrefix() -> IPPrefix {
            if rng.next() % 3 == 0 {
                let length = Int(rng.next() % 129)
                return IPPrefix(truncating: .v6(IPv6Address(UInt128(rng.next() % 64) << 120 | UInt128(rng.next() % 8))), length: length)
            }
            // Few distinct values, so the walk revisits keys; /0 and /32 included.
            let length = [0, 8, 24, 31, 32][Int(rng.next() % 5)]
            return IPPrefix(truncating: .v4(IPv4Address(UInt32(rng.next() % 16) << 28 | UInt32(rng.next() % 4))), length: length)
        }
        for step in 0..<5_000 {
            let prefix = randomPrefix()
            switch rng.next() % 3 {
            case 0:
                let value = Int(rng.next() % 1000)
                #expect(map.updateValue(value, forKey: prefix) == model.updateValue(value, forKey: prefix))
            case 1:
                #expect(map.removeValue(forKey: prefix) == model.removeValue(forKey: prefix))
            default:
                let value = Int(rng.next() % 1000)
                map[prefix] = value
                model[prefix] = value
            }
            #expect(map[prefix] == model[prefix])
            #expect(map.count == model.count)
            if step % 500 == 0 {
                #expect(Dictionary(uniqueKeysWithValues: map.map { ($0.key, $0.value) }) == model)
                #expect(Set(map.keys) == Set(model.keys))
                #expect(map.count(of: .ipv4) == model.keys.filter { $0.family == .ipv4 }.count)
            }
        }
        #expect(map.mapValues { $0 * 2 }[model.first!.key] == model.first!.value * 2)
        var copy = map
        #expect(copy == map)
        copy[try IPPrefix(parsing: "192.0.2.0/24")] = -1
        #expect(copy != map, "a copy is a value")
    }

    @Test func ipv4KeysKeepTheirLength() throws {
        var map = PrefixMap<String>()
        for text in ["10.0.0.0/8", "10.0.0.0/16", "10.0.0.0/32", "0.0.0.0/0", "255.255.255.255/32"] {
            map[try IPPrefix(parsing: text)] = text
        }
        #expect(map.count == 5)
        for (prefix, text) in map { #expect(prefix.description == text) }
    }
}
