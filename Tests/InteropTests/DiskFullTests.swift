import Foundation
import Testing

/// A full disk: mutating calls get 503 with a clear problem body and change nothing, reads keep
/// working, and once space is back writes succeed again. Needs root (it mounts a 2 MiB tmpfs).
@Suite(.timeLimit(.minutes(2)))
struct DiskFullTests {
    @Test func fullDiskGives503AndRecovers() async throws {
        guard getuid() == 0 else {
            if ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "required" { Issue.record("needs root to mount a tmpfs") }
            else { print("skipping: needs root to mount a tmpfs") }
            return
        }
        let mountPoint = NSTemporaryDirectory() + "hrld-full-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        try Command.check(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint])
        defer {
            _ = try? Command.run(["umount", mountPoint])
            try? FileManager.default.removeItem(atPath: mountPoint)
        }
        let logs = NSTemporaryDirectory() + "hrld-full-log-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: logs) }
        let port = Int.random(in: 20_000...29_999)
        let herald = try ChildProcess([HeraldProcess.binary, "serve", "--db", mountPoint + "/herald.db", "--api-listen", "127.0.0.1:\(port)",
                                       "--bgp-listen", "127.0.0.1:0"], logPath: logs + "/herald.log")
        defer { herald.stop() }
        @Sendable func call(_ method: String, _ path: String, _ body: String? = nil) throws -> (status: Int, body: String) {
            var arguments = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "http://127.0.0.1:\(port)\(path)"]
            if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
            let result = try Command.run(arguments)
            let text = result.stdout
            guard let newline = text.lastIndex(of: "\n"), let status = Int(text[text.index(after: newline)...]) else { return (0, text) }
            return (status, String(text[..<newline]))
        }
        _ = try await eventually("herald up", timeout: .seconds(20)) { (try? call("GET", "/healthz"))?.status == 200 ? true : nil }
        #expect(try call("PUT", "/v1/pools/lb", #"{"blocks":["10.0.0.0/16"]}"#).status == 201)
        #expect(try call("PUT", "/v1/allocations/before", #"{"pool":"lb"}"#).status == 201)

        // Fill the file system.
        _ = try Command.run(["dd", "if=/dev/zero", "of=\(mountPoint)/filler", "bs=64k"])
        for index in 0..<3 {
            let refused = try call("PUT", "/v1/allocations/during-\(index)", #"{"pool":"lb"}"#)
            #expect(refused.status == 503, "\(refused)")
            #expect(refused.body.contains("the change was not saved") && refused.body.contains("full"), "\(refused.body)")
        }
        let read = try call("GET", "/v1/allocations")
        #expect(read.status == 200 && read.body.contains("before") && !read.body.contains("during"), "reads work; nothing half-applied: \(read)")

        // Space is back: writes work again.
        try FileManager.default.removeItem(atPath: mountPoint + "/filler")
        #expect(try call("PUT", "/v1/allocations/after", #"{"pool":"lb"}"#).status == 201)
        let history = try call("GET", "/v1/history")
        #expect(!history.body.contains("during"), "no history for refused changes")
        herald.stop()
        #expect(herald.exitStatus == 0, "\(herald.logTail())")
    }
}
