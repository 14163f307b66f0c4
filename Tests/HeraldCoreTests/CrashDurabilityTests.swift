import Foundation
import Testing

/// scripts/reliability/crash-durability.py against the built binary: 16 clients, 20 SIGKILLs at
/// random moments, a restart after each; every acknowledged change survives, nothing unanswered
/// is half-applied, no address is held twice, integrity_check is ok.
@Suite struct CrashDurabilityTests {
    @Test func acknowledgedChangesSurviveKill9() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/reliability/crash-durability.py").path
        let directory = ScratchDirectory()
        let result = try HeraldBinaryTests.run("/usr/bin/env", ["python3", script, HeraldBinaryTests.builtBinary, "--kills", "20"],
                                               in: directory.path, signal: nil)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("kills: 20") && result.output.contains("failures: 0"), "\(result.output)")
    }
}
