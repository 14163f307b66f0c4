import TestSupport
@testable import BGPSpeaker
import IP
import Testing

@Suite struct InternTableTests {
    @Test func equalValuesShareOneIDAndAreDroppedWithTheLastReference() {
        var table = InternTable<[String]>()
        let a = table.retain(["x", "y"])
        let b = table.retain(["x", "y"])
        let c = table.retain(["z"])
        #expect(a == b)
        #expect(a != c)
        #expect(table.count == 2)
        #expect(table.referenceCount(a) == 2)
        #expect(table.release(a) == nil, "one reference is left")
        #expect(table[a] == ["x", "y"])
        #expect(table.release(a) == ["x", "y"], "the last reference returns the value")
        #expect(table.count == 1)
        // A released ID is reused for the next new value.
        let d = table.retain(["w"])
        #expect(d == a)
        #expect(table[d] == ["w"])
        #expect(table.retain(["x", "y"]) != d)
    }

    /// A seeded random walk against a model: counts and values stay exact and IDs of live
    /// values never collide.
    @Test func randomRetainsAndReleasesMatchAModel() {
        var random = SeededGenerator(state: 7)
        var table = InternTable<Int>()
        var model: [Int: (id: UInt32, references: Int)] = [:]
        for _ in 0..<20_000 {
            let value = Int(random.next() % 50)
            if random.next() % 2 == 0 || model[value] == nil {
                let id = table.retain(value)
                if let known = model[value] { #expect(known.id == id) }
                model[value] = (id, (model[value]?.references ?? 0) + 1)
            } else if let known = model[value] {
                let dropped = table.release(known.id)
                if known.references == 1 {
                    #expect(dropped == value)
                    model[value] = nil
                } else {
                    #expect(dropped == nil)
                    model[value] = (known.id, known.references - 1)
                }
            }
            #expect(table.count == model.count)
        }
        for (value, entry) in model {
            #expect(table[entry.id] == value)
            #expect(table.referenceCount(entry.id) == entry.references)
        }
        #expect(Set(model.values.map(\.id)).count == model.count)
    }

    /// The Loc-RIB and the Adj-RIB-Out hold their interned path sets by reference count: after
    /// routes move between path sets and are withdrawn, nothing is left behind (a leak here
    /// would grow with every attribute change over the life of a session).
    @Test func speakerTablesReleaseEveryPathSet() async throws {
        let pair = try await Pair.make(peerA: { $0.addPathSend = true }, peerB: { $0.addPathReceive = true })
        defer { Task { await pair.close() } }
        try await pair.waitEstablished()
        let prefixes = (0..<300).map { prefix("100.64.\($0 / 250).\($0 % 250)/32") }
        let hops = (11...14).map { Path(nextHop: .address(ip("127.0.0.\($0)"))) }
        for round in 0..<4 {
            // Each round gives each prefix a different subset of the next hops and MED.
            let routes = prefixes.enumerated().map { index, p in
                Route(prefix: p, paths: (0...(index + round) % 3).map { var path = hops[($0 + round) % 4]; path.med = UInt32(round); return path })
            }
            await pair.a.apply(announce: routes, withdraw: [])
        }
        _ = try await eventually("B has every prefix") {
            Set(try await pair.b.receivedRoutes(peer: "a").map(\.prefix)).count == prefixes.count ? true : nil
        }
        let core = pair.a.core
        let held = try await pair.loop.submit { (core.pathSets.count, core.peers["b"]!.sentSets.count, core.peers["b"]!.sentPaths.count) }
        #expect(held.0 == 3 && held.1 == 3, "three distinct path sets, each exported once: \(held)")
        await pair.a.withdraw(prefixes)
        _ = try await eventually("B has nothing") { try await pair.b.receivedRoutes(peer: "a").isEmpty ? true : nil }
        let after = try await pair.loop.submit { (core.pathSets.count, core.peers["b"]!.sentSets.count, core.peers["b"]!.sentPaths.count) }
        #expect(after == (0, 0, 0), "\(after)")
    }
}

