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

    /// The install steps in the unit's header run as written on a fresh tree (issue #18: the
    /// token file's `install` failed on a fresh system, which has no /etc/herald). Every absolute
    /// path is moved under a scratch root; `systemctl` is left to the real system.
    @Test func installStepsRunAsWrittenOnAFreshTree() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let unit = try String(contentsOf: root.appendingPathComponent("contrib/systemd/herald.service"), encoding: .utf8)
        let steps = unit.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("#   ") else { return nil }
            let command = line.dropFirst(4).split(separator: "#", maxSplits: 1)[0].trimmingCharacters(in: .whitespaces)
            return command.hasPrefix("systemctl") ? nil : command
        }
        #expect(steps.count == 4 && steps.allSatisfy { $0.hasPrefix("install ") }, "\(steps)")
        let scratch = ScratchDirectory()
        let fresh = scratch.path + "/root"
        try FileManager.default.createDirectory(atPath: fresh + "/usr/local/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: fresh + "/etc/systemd/system", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: fresh + "/.build/release", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: HeraldBinaryTests.builtBinary, toPath: fresh + "/.build/release/herald")
        try FileManager.default.createDirectory(atPath: fresh + "/contrib/systemd", withIntermediateDirectories: true)
        try unit.write(toFile: fresh + "/contrib/systemd/herald.service", atomically: true, encoding: .utf8)
        for step in steps {
            var moved = step.replacingOccurrences(of: " /", with: " \(fresh)/").replacingOccurrences(of: " \(fresh)/dev/null", with: " /dev/null")
            // Not root in every test run: the owner is left out there (it is the caller anyway).
            if getuid() != 0 { moved = moved.replacingOccurrences(of: " -o root", with: "") }
            let result = try HeraldBinaryTests.run("/bin/sh", ["-c", moved], in: fresh, signal: nil, readyLine: "")
            #expect(result.status == 0, "\(moved): \(result.output)")
        }
        var info = stat()
        #expect(stat(fresh + "/etc/herald/tokens", &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(stat(fresh + "/etc/herald", &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(FileManager.default.isExecutableFile(atPath: fresh + "/usr/local/bin/herald"))
    }
}
