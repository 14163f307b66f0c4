import Foundation
import Testing

/// contrib/systemd/herald.service is a unit systemd accepts without a single warning.
@Suite struct SystemdUnitTests {
    @Test func unitVerifiesCleanly() throws {
        let tool = "/usr/bin/systemd-analyze"
        guard FileManager.default.isExecutableFile(atPath: tool) else {
            if ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "required" {
                Issue.record("systemd-analyze is missing (Debian package systemd)")
            } else {
                print("skipping: systemd-analyze is not installed")
            }
            return
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let unit = try String(contentsOf: root.appendingPathComponent("contrib/systemd/herald.service"), encoding: .utf8)
        #expect(unit.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE") && unit.contains("StateDirectory=herald"))
        // Point ExecStart at the binary this test run built, which exists, as verify requires.
        let directory = ScratchDirectory()
        let path = directory.file("herald.service")
        try unit.replacingOccurrences(of: "/usr/local/bin/herald", with: HeraldBinaryTests.builtBinary).write(toFile: path, atomically: true, encoding: .utf8)
        let result = try HeraldBinaryTests.run(tool, ["verify", path], in: directory.path, signal: nil)
        #expect(result.status == 0 && result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(result.output)")
    }
}
