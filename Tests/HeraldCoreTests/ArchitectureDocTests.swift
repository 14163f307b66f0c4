import Foundation
import Testing

/// docs/architecture.md's table of module dependencies is Package.swift's, arrow for arrow: the
/// map a newcomer reads is the one the compiler enforces.
@Suite struct ArchitectureDocTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every non-test target of Package.swift and the package's own targets it depends on.
    static func packageTargets() throws -> [String: Set<String>] {
        let text = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        var targets: [String: Set<String>] = [:]
        // A target declaration runs from `.target(` (or `.executableTarget(`, `.systemLibrary(`) to
        // the next declaration; the quoted names in its `dependencies:` list are its arrows
        // (products of other packages are `.product(…)` and not quoted names of ours).
        let pieces = text.components(separatedBy: "\n        .")
        for piece in pieces {
            guard piece.hasPrefix("target(") || piece.hasPrefix("executableTarget(") || piece.hasPrefix("systemLibrary(") else { continue }
            guard let name = piece.firstMatch(of: #/name: "([A-Za-z]+)"/#)?.1 else { continue }
            guard !piece.contains("path: \"Tests/") else { continue }
            var dependencies: Set<String> = []
            if let list = piece.firstMatch(of: #/dependencies: \[([^\]]*)\]/#)?.1 {
                let names = list.replacing(#/\.product\([^)]*\)/#, with: "")
                for match in names.matches(of: #/"([A-Za-z]+)"/#) { dependencies.insert(String(match.1)) }
            }
            targets[String(name)] = dependencies
        }
        return targets
    }

    /// The table between the `module-dependencies` markers.
    static func documentedTargets() throws -> [String: Set<String>] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        guard let begin = text.range(of: "<!-- module-dependencies: begin -->"),
              let end = text.range(of: "<!-- module-dependencies: end -->") else { return [:] }
        var targets: [String: Set<String>] = [:]
        for line in text[begin.upperBound..<end.lowerBound].split(separator: "\n") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3, !cells[1].isEmpty, cells[1] != "module", !cells[1].hasPrefix("-") else { continue }
            targets[cells[1]] = Set(cells[2].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        return targets
    }

    @Test func theDocumentedArrowsArePackageSwifts() throws {
        let package = try Self.packageTargets(), documented = try Self.documentedTargets()
        #expect(package.count > 10, "Package.swift was read: \(package.keys.sorted())")
        #expect(Set(documented.keys) == Set(package.keys), "modules: documented \(documented.keys.sorted()), package \(package.keys.sorted())")
        for (module, dependencies) in package.sorted(by: { $0.key < $1.key }) {
            #expect(documented[module] == dependencies, "\(module): documented \(documented[module]?.sorted() ?? []), package \(dependencies.sorted())")
        }
    }
}
