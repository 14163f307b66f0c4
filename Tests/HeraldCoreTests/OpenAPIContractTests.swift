import Foundation
import Testing
@testable import HeraldCore
import HTTPServer
import Store

/// openapi.yaml is the contract: every route the server registers is documented there, with its
/// method, and the document describes no route the server lacks.
@Suite struct OpenAPIContractTests {
    static func documentedOperations() throws -> Set<String> {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
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
        StatusAPI(store: store, startedAt: 0).register(on: router)
        ResourceAPI(reconciler: try Reconciler(store: store)).register(on: router)
        PeersAPI(store: store).register(on: router)
        SpeakerAPI(store: store).register(on: router)
        EventsAPI(bus: EventBus(epoch: 0)).register(on: router)
        let reconciler = try Reconciler(store: store)
        MetricsAPI(metrics: Metrics(), store: store, reconciler: reconciler, speaker: nil).register(on: router)
        StatusPage().register(on: router)
        let served = Set(router.registeredRoutes.map { "\($0.method) \($0.pattern)" })
        let documented = try Self.documentedOperations()
        #expect(served.subtracting(documented).isEmpty, "served but not in openapi.yaml: \(served.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "in openapi.yaml but not served: \(documented.subtracting(served).sorted())")
        #expect(served.count > 10)
    }
}
