import Foundation
import Testing
@testable import HeraldCore
import HTTPServer
import Store

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
}
