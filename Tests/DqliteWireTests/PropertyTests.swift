import TestSupport
import Testing
@testable import DqliteWire

/// Seeded properties: random messages survive encode → decode, and random mutations of valid
/// messages decode or throw, never trap.
@Suite struct PropertyTests {
    // MARK: - Generators

    static func text(_ g: inout SeededGenerator) -> String {
        let alphabet = Array("abc xyz_-:é€😀'\"\\")
        return String((0..<Int.random(in: 0...20, using: &g)).map { _ in alphabet.randomElement(using: &g)! })
    }

    static func value(_ g: inout SeededGenerator) -> DqliteValue {
        switch Int.random(in: 0..<5, using: &g) {
        case 0: .integer(Int64(bitPattern: g.next()))
        // Any bit pattern but NaN, which is not equal to itself.
        case 1: .real({ let d = Double(bitPattern: g.next()); return d.isNaN ? 0.5 : d }())
        case 2: .text(text(&g))
        case 3: .blob((0..<Int.random(in: 0...19, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) })
        default: .null
        }
    }

    static func values(_ g: inout SeededGenerator, count: Int? = nil) -> [DqliteValue] {
        (0..<(count ?? Int.random(in: 0...20, using: &g))).map { _ in value(&g) }
    }

    static func request(_ g: inout SeededGenerator) -> DqliteRequest {
        let db = UInt32.random(in: 0...3, using: &g), id = g.next()
        switch Int.random(in: 0..<18, using: &g) {
        case 0: return .leader
        case 1: return .client(id: id)
        case 2: return .heartbeat(timestamp: id)
        case 3: return .open(name: text(&g), flags: id, vfs: text(&g))
        case 4: return .prepare(database: db, sql: text(&g))
        case 5: return .exec(database: db, statement: UInt32(truncatingIfNeeded: id), parameters: values(&g))
        case 6: return .query(database: db, statement: UInt32(truncatingIfNeeded: id), parameters: values(&g))
        case 7: return .finalize(database: db, statement: UInt32(truncatingIfNeeded: id))
        case 8: return .execSQL(database: db, sql: text(&g), parameters: values(&g))
        case 9: return .querySQL(database: db, sql: text(&g), parameters: values(&g))
        case 10: return .interrupt(database: db)
        case 11: return .add(id: id, address: text(&g))
        case 12: return .assign(id: id, role: DqliteRole.allCases.randomElement(using: &g)!)
        case 13: return .remove(id: id)
        case 14: return .dump(name: text(&g))
        case 15: return .cluster
        case 16: return .transfer(id: id)
        default: return .describe
        }
    }

    static func response(_ g: inout SeededGenerator) -> DqliteResponse {
        let id = g.next()
        switch Int.random(in: 0..<11, using: &g) {
        case 0: return .failure(DqliteFailure(code: id, message: text(&g)))
        case 1: return .node(id: id, address: text(&g))
        case 2: return .welcome(heartbeatTimeout: id)
        case 3: return .nodes((0..<Int.random(in: 0...4, using: &g)).map { _ in
            DqliteNode(id: g.next(), address: text(&g), role: DqliteRole.allCases.randomElement(using: &g)!)
        })
        case 4: return .database(id: UInt32(truncatingIfNeeded: id))
        case 5: return .statement(DqliteStatement(database: 0, id: UInt32(truncatingIfNeeded: id), parameterCount: g.next() >> 50,
                                                  tailOffset: Bool.random(using: &g) ? g.next() : nil))
        case 6: return .result(DqliteResult(lastInsertID: Int64(bitPattern: id), rowsAffected: g.next()))
        case 7:
            let columns = Int.random(in: 1...18, using: &g)
            return .rows(DqliteRows(columns: (0..<columns).map { _ in text(&g) },
                                    rows: (0..<Int.random(in: 0...5, using: &g)).map { _ in values(&g, count: columns) },
                                    hasMore: Bool.random(using: &g)))
        case 8: return .empty
        case 9: return .files((0..<Int.random(in: 0...3, using: &g)).map { _ in
            DqliteFile(name: text(&g), data: (0..<Int.random(in: 0...40, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) })
        })
        default: return .metadata(failureDomain: id, weight: g.next())
        }
    }

    // MARK: - Round trips

    @Test func requestsRoundTrip() throws {
        var g = SeededGenerator(seed: 0xD0_11_7E)
        for _ in 0..<2000 {
            let request = Self.request(&g)
            let schema: DqliteParameterSchema? = Bool.random(using: &g) ? nil : .v1
            let bytes = try request.encoded(parameterSchema: schema)
            #expect(bytes.count % 8 == 0)
            #expect(try DqliteFraming.nextMessage(in: bytes) == .message(DqliteHeader(bytes)!, length: bytes.count))
            #expect(try DqliteRequest.decode(bytes) == request, "\(request)")
        }
    }

    @Test func responsesRoundTrip() throws {
        var g = SeededGenerator(seed: 0x5E_ED)
        for _ in 0..<2000 {
            let response = Self.response(&g)
            let bytes = try response.encoded()
            let decoded = try DqliteResponse.decode(bytes)
            #expect(decoded == response, "\(response)")
            #expect(try decoded.encoded() == bytes)
        }
    }

    // MARK: - Mutations

    /// Valid messages to mutate: every vector kind, plus random ones.
    static func corpus() throws -> [[UInt8]] {
        var g = SeededGenerator(seed: 42)
        var messages: [[UInt8]] = []
        for _ in 0..<60 { messages.append(try response(&g).encoded()) }
        for _ in 0..<40 { messages.append(try request(&g).encoded(parameterSchema: Bool.random(using: &g) ? nil : .v1)) }
        return messages
    }

    /// Decodes whatever it is given as a response and as a request; anything that decodes must
    /// re-encode to bytes that decode to the same bytes again (compared as bytes, so that a NaN
    /// does not count as a change).
    static func exercise(_ bytes: [UInt8]) {
        _ = try? DqliteFraming.nextMessage(in: bytes, maximumBodyLength: 1 << 16)
        if let response = try? DqliteResponse.decode(bytes) {
            let again = try? response.encoded()
            #expect(again != nil)
            if let again { #expect((try? DqliteResponse.decode(again).encoded()) == again) }
        }
        if let request = try? DqliteRequest.decode(bytes) {
            let again = try? request.encoded()
            #expect(again != nil)
            if let again { #expect((try? DqliteRequest.decode(again).encoded()) == again) }
        }
    }

    @Test func mutationsNeverTrap() throws {
        var g = SeededGenerator(seed: 0xF0_22)
        let corpus = try Self.corpus()
        var decodedCount = 0
        for _ in 0..<6000 {
            var bytes = corpus.randomElement(using: &g)!
            for _ in 0..<Int.random(in: 1...4, using: &g) {
                switch Int.random(in: 0..<7, using: &g) {
                case 0 where !bytes.isEmpty:
                    bytes[Int.random(in: 0..<bytes.count, using: &g)] = UInt8.random(in: 0...255, using: &g)
                case 1 where !bytes.isEmpty:
                    bytes[Int.random(in: 0..<bytes.count, using: &g)] ^= 1 << UInt8.random(in: 0..<8, using: &g)
                case 2:
                    bytes.removeLast(Int.random(in: 0...min(bytes.count, 16), using: &g))
                case 3:
                    bytes += (0..<8).map { _ in UInt8.random(in: 0...255, using: &g) }
                case 4 where bytes.count > 8:
                    // an interesting word somewhere in the body: a marker, a huge count, zero
                    let word: [UInt8] = [[0xff], [0xee], [0x00], [0x7f]].randomElement(using: &g)! + [UInt8](repeating: 0xff, count: 7)
                    let at = 8 + Int.random(in: 0...(bytes.count - 8) / 8, using: &g) * 8
                    bytes.replaceSubrange(at..<min(at + 8, bytes.count), with: word)
                case 5 where bytes.count > 16:
                    bytes.removeSubrange(8 + Int.random(in: 0..<(bytes.count - 16), using: &g)..<bytes.count - 8)
                case 6 where bytes.count > 5:
                    bytes[4] = UInt8.random(in: 0...12, using: &g)
                    bytes[5] = UInt8.random(in: 0...2, using: &g)
                default:
                    break
                }
            }
            // Most of the time, keep the header's length true so that the body decoders run.
            if bytes.count >= 8, bytes.count % 8 == 0, Int.random(in: 0..<4, using: &g) != 0 {
                let words = UInt32(bytes.count / 8 - 1)
                for i in 0..<4 { bytes[i] = UInt8(truncatingIfNeeded: words >> UInt32(8 * i)) }
            }
            Self.exercise(bytes)
            if (try? DqliteResponse.decode(bytes)) != nil { decodedCount += 1 }
        }
        // The mutations are not all rejected by the length check alone.
        #expect(decodedCount > 100)
    }
}
