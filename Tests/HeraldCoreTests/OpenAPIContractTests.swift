import Foundation
import Testing
@testable import HeraldCore
import HTTPServer
import IP
import IPAM
import Store
import TestSupport

/// openapi.yaml is the contract: every route the server registers is documented there, with its
/// method, and the document describes no route the server lacks.
@Suite struct OpenAPIContractTests {
    static func document() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
    }

    static func documentedOperations() throws -> Set<String> {
        let text = try document()
        var operations: Set<String> = []
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            if inPaths, !line.isEmpty, !line.hasPrefix(" ") { break }
            if let match = line.wholeMatch(of: #/  (\/[^ ]*):/#) { path = String(match.1); continue }
            if let path, let match = line.wholeMatch(of: #/    (get|put|post|delete|patch):/#) {
                operations.insert("\(match.1.uppercased()) \(path)")
            }
        }
        return operations
    }

    @Test func everyRouteIsDocumentedAndNothingElse() throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        let router = Router()
        APIServices(committer: try Committer(store: store, events: EventPublisher(epoch: 0))).register(on: router, startedAt: 0)
        let served = Set(router.registeredRoutes.map { "\($0.method) \($0.pattern)" })
        let documented = try Self.documentedOperations()
        #expect(served.subtracting(documented).isEmpty, "served but not in openapi.yaml: \(served.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "in openapi.yaml but not served: \(documented.subtracting(served).sorted())")
        #expect(served.count > 10)
    }

    /// The query parameters each operation documents ("GET /v1/history" → its names), only those
    /// whose line passes `filter` (e.g. the repeatable ones, `type: array`).
    static func documentedQueryParameters(where filter: (Substring) -> Bool = { _ in true }) throws -> [String: Set<String>] {
        var parameters: [String: Set<String>] = [:]
        var inPaths = false
        var path: String?, operation: String?
        for line in try document().split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            if inPaths, !line.isEmpty, !line.hasPrefix(" ") { break }
            if let match = line.wholeMatch(of: #/  (\/[^ ]*):/#) { path = String(match.1); operation = nil; continue }
            if let path, let match = line.wholeMatch(of: #/    (get|put|post|delete|patch):/#) {
                operation = "\(match.1.uppercased()) \(path)"
                parameters[operation!] = []
                continue
            }
            if let operation, let match = line.firstMatch(of: #/- \{ name: ([a-z_]+), in: query/#), filter(line) {
                parameters[operation, default: []].insert(String(match.1))
            }
        }
        return parameters
    }

    /// Each route takes exactly the query parameters openapi.yaml documents for it; any other is
    /// a 400 naming it (so `?limit=2` on a list without paging is refused, not ignored).
    @Test func everyRouteTakesExactlyItsDocumentedQueryParameters() async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        let router = Router()
        APIServices(committer: try Committer(store: store, events: EventPublisher(epoch: 0))).register(on: router, startedAt: 0)
        let documented = try Self.documentedQueryParameters()
        // A parameter the route takes several times is documented as an array, and only then.
        let repeatable = try Self.documentedQueryParameters { $0.contains("type: array") }
        for route in router.registeredRoutes {
            let key = "\(route.method) \(route.pattern)"
            #expect(route.query == (documented[key] ?? []), "\(key): serves \(route.query.sorted()), documents \((documented[key] ?? []).sorted())")
            #expect(route.repeatable == (repeatable[key] ?? []), "\(key): repeats \(route.repeatable.sorted()), documents \((repeatable[key] ?? []).sorted()) as arrays")
        }
        #expect(documented.values.reduce(0) { $0 + $1.count } == 37)
        let unknown = await router.respond(to: try HTTPRequest(.GET, "/v1/speaker?limit=2"))
        #expect(unknown.status.code == 400)
        let text = String(decoding: unknown.bodyBytes, as: UTF8.self)
        #expect(text.contains(#""field":"limit""#) && text.contains("takes no query parameters"), "\(text)")
        let misspelt = await router.respond(to: try HTTPRequest(.GET, "/v1/history?limt=2"))
        let misspeltText = String(decoding: misspelt.bodyBytes, as: UTF8.self)
        #expect(misspelt.status.code == 400 && misspeltText.contains(#""field":"limt""#) && misspeltText.contains("takes cursor, limit, order, peer, prefix, since, until"), "\(misspeltText)")
        #expect(await router.respond(to: try HTTPRequest(.GET, "/v1/history?limit=2")).status.code == 200)
    }

    /// `x-event-kinds` of `/v1/events`: each kind and the schema of its data.
    static func documentedEventKinds() throws -> [String: String] {
        let lines = try document().split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: "      x-event-kinds:") else { return [:] }
        var kinds: [String: String] = [:]
        for line in lines[(start + 1)...] {
            guard let match = line.wholeMatch(of: #/        ([a-z]+): \{ \$ref: "#\/components\/schemas\/([A-Za-z]+)" \}/#) else { break }
            kinds[String(match.1)] = String(match.2)
        }
        return kinds
    }

    /// A component schema's `required` list and property names.
    static func schema(_ name: String) throws -> (required: Set<String>, properties: Set<String>) {
        let lines = try document().split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: "    \(name):") else { return ([], []) }
        var required: Set<String> = [], properties: Set<String> = []
        var inProperties = false
        for line in lines[(start + 1)...] {
            guard line.hasPrefix("      ") else { break }
            if let match = line.wholeMatch(of: #/      required: \[(.*)\]/#) {
                required = Set(match.1.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            }
            if line == "      properties:" { inProperties = true; continue }
            if inProperties, let match = line.wholeMatch(of: #/        ([a-z_]+): .*/#) { properties.insert(String(match.1)) }
        }
        return (required, properties)
    }

    /// The closed list of event kinds (`HeraldEvent.Kind`) is the documented one, and each
    /// kind's payload has exactly the documented fields.
    @Test func everyEventKindIsDocumentedWithItsFields() throws {
        let documented = try Self.documentedEventKinds()
        #expect(Set(documented.keys) == Set(HeraldEvent.Kind.allCases.map(\.rawValue)))
        let samples: [HeraldEvent] = [
            .change(.init(reason: "r", requestId: "id", at: 1)),
            .route(.init(action: "announce", prefix: "192.0.2.1/32", nextHops: ["self"], reason: "r", requestId: "id", at: 1)),
            .routes(.init(announced: 1, updated: 2, withdrawn: 3, reason: "r", requestId: "id", at: 1)),
            .node(.init(node: "n1", from: "up", to: "down", reason: "r", transitions: 1, at: 1)),
            .peer(.init(peer: "p", from: "idle", to: "connect", reason: "r")),
        ]
        #expect(Set(samples.map(\.kind)) == Set(HeraldEvent.Kind.allCases.filter { $0 != .resync }), "a sample of every published kind")
        for event in samples {
            let json = try JSONSerialization.jsonObject(with: Data(try event.json().utf8)) as? [String: Any] ?? [:]
            let schema = try Self.schema(documented[event.kind.rawValue] ?? "?")
            #expect(Set(json.keys) == schema.properties, "\(event.kind) fields")
            #expect(schema.required.isSubset(of: Set(json.keys)), "\(event.kind) required fields")
        }
    }

    /// The `pattern` of a string schema in components (`IPAddress`, `Community`…).
    static func componentPattern(_ name: String) throws -> NSRegularExpression {
        let text = try document()
        let start = try #require(text.range(of: "\n    \(name):\n"), "components.schemas.\(name)")
        let rest = text[start.upperBound...]
        let line = try #require(rest.split(separator: "\n").prefix(4).first { $0.hasPrefix("      pattern: ") }, "\(name).pattern")
        var pattern = line.dropFirst("      pattern: ".count)
        if pattern.hasPrefix("'") { pattern = pattern.dropFirst().dropLast() } else if pattern.hasPrefix("\"") { pattern = pattern.dropFirst().dropLast() }
        // JSON Schema patterns are ECMA-262, where $ is the end of the text; ICU's $ also
        // matches before a final newline, which \z does not.
        if pattern.hasSuffix("$") { pattern = pattern.dropLast() + "\\z" }
        return try NSRegularExpression(pattern: String(pattern))
    }

    static func matches(_ regex: NSRegularExpression, _ text: String) -> Bool {
        regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// Issue #17 item 9: the string rules of openapi.yaml are the server's parsers' rules (host
    /// bits, reserved space and families aside, which the descriptions say): each example matches
    /// the pattern exactly when the parser takes it.
    @Test func theStringPatternsAgreeWithTheParsers() throws {
        let address = try Self.componentPattern("IPAddress"), prefix = try Self.componentPattern("IPPrefix")
        let block = try Self.componentPattern("PoolBlock"), community = try Self.componentPattern("Community")
        let large = try Self.componentPattern("LargeCommunity")
        let addresses = ["1.2.3.4", "0.0.0.0", "255.255.255.255", "::", "::1", "2001:db8::1", "2001:DB8::1", "::ffff:1.2.3.4",
                         "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "fe80::", "1::", "::2:3:4:5:6:7:8",
                         "01.2.3.4", "1.2.3", "256.1.1.1", "1.2.3.4 ", "1.2.3.4\n", "1:2:3:4:5:6:7:8:9", ":::", "1::2::3",
                         "12345::", "fe80::1%eth0", "", "x", "1.2.3.4/32", "[::1]"]
        var generator = SeededGenerator(seed: 0x1709)
        let random = (0..<200).map { _ in
            IPAddress.v6(IPv6Address(UInt128(generator.next() as UInt64) << UInt64.random(in: 0...64, using: &generator) | UInt128(generator.next() as UInt64 >> UInt64.random(in: 0...63, using: &generator)))).description
        }
        for text in addresses + random {
            #expect(Self.matches(address, text) == (IPAddress(text) != nil), "address \(text.debugDescription)")
        }
        for text in ["10.0.0.0/8", "0.0.0.0/0", "2001:db8::/32", "::/0", "10.0.0.0/33", "10.0.0.0/024", "2001:db8::/129",
                     "10.0.0.0", "10.0.0.0/", "/8", "2001:db8::/64 "] {
            #expect(Self.matches(prefix, text) == (IPPrefix(text) != nil), "prefix \(text.debugDescription)")
        }
        for text in ["192.0.2.0/24", "192.0.2.10-192.0.2.20", "2001:db8::/120", "2001:db8::1-2001:db8::9", "192.0.2.0-2001:db8::1",
                     "192.0.2.0", "192.0.2.0/24-192.0.2.9", "192.0.2.1 - 192.0.2.9"] {
            #expect(Self.matches(block, text) == ((try? PoolBlock(parsing: text)) != nil), "block \(text.debugDescription)")
        }
        func taken(_ attributes: AnnounceAttributes) -> Bool {
            var validator = Validator()
            attributes.validate(field: "announce", into: &validator)
            return validator.errors.isEmpty
        }
        for text in ["65000:100", "0:0", "65535:65535", "065000:0100", "+1:2", "65536:1", "1:65536", "1", "1:2:3", "no-export",
                     "no-advertise", "no-export-subconfed", "blackhole", "graceful-shutdown", "NO-EXPORT", "", ":1"] {
            #expect(Self.matches(community, text) == taken(AnnounceAttributes(communities: [text])), "community \(text.debugDescription)")
        }
        for text in ["1:2:3", "4294967295:0:4294967295", "4294967296:0:0", "1:2", "1:2:3:4", "+1:2:3", "a:b:c", "01:02:03"] {
            #expect(Self.matches(large, text) == taken(AnnounceAttributes(largeCommunities: [text])), "large community \(text.debugDescription)")
        }
    }
}
