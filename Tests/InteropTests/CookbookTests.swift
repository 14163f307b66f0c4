import Foundation
import Testing

/// The router recipes in docs/routers are configurations the daemons accept as written:
/// BIRD checks its with `bird -p`, FRR's bgpd with `-C` (a dry run that reports unknown commands).
@Suite struct CookbookTests {
    static func firstConfigBlock(_ file: String) throws -> String {
        guard let first = try configBlocks(file).first else { throw HarnessError("docs/routers/\(file) has no configuration block") }
        return first
    }

    /// Every ``` block of docs/routers/FILE, in order.
    static func configBlocks(_ file: String) throws -> [String] {
        try fencedBlocks("docs/routers/\(file)", opening: "```\n")
    }

    /// The text of every fenced block of the repository's file PATH that opens with `opening`
    /// (```` ``` ```` plus its info string and newline), in order.
    static func fencedBlocks(_ path: String, opening: String) throws -> [String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var text = try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)[...]
        var blocks: [String] = []
        while let start = text.range(of: opening), let end = text.range(of: "```", range: start.upperBound..<text.endIndex) {
            blocks.append(String(text[start.upperBound..<end.lowerBound]))
            text = text[end.upperBound...]
        }
        return blocks
    }

    @Test(.interop(.bird))
    func birdRecipeParses() throws {
        guard try Interop.ready(.bird) else { return }
        let path = NSTemporaryDirectory() + "herald-cookbook-\(getpid())-bird.conf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.firstConfigBlock("bird.md").write(toFile: path, atomically: true, encoding: .utf8)
        let result = try Command.run([Interop.bird(), "-p", "-c", path])
        #expect(result.succeeded, "\(result)")
    }

    @Test(.interop(.frr))
    func frrRecipeParses() throws {
        guard try Interop.ready(.frr) else { return }
        let path = NSTemporaryDirectory() + "herald-cookbook-\(getpid())-frr.conf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.firstConfigBlock("frr.md").write(toFile: path, atomically: true, encoding: .utf8)
        let result = try Command.run([Interop.frrBGPD(), "-C", "-f", path, "-Z", "-S"])
        let output = result.stdout + result.stderr
        #expect(result.succeeded && !output.contains("No such command") && !output.contains("Unknown command"), "\(result)")
    }
}
