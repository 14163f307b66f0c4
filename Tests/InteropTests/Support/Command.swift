import Foundation
import Synchronization

/// What a command printed and how it ended.
struct CommandResult: Sendable, CustomStringConvertible {
    var arguments: [String]
    var status: Int32
    var stdout: String
    var stderr: String

    var succeeded: Bool { status == 0 }

    var description: String {
        "`\(arguments.joined(separator: " "))` exited \(status)"
            + (stdout.isEmpty ? "" : "\nstdout: \(stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
            + (stderr.isEmpty ? "" : "\nstderr: \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
    }
}

/// An error from the harness itself (a command failed, a daemon did not come up, a wait timed out).
struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs commands to completion, synchronously (cleanup runs in `deinit`, which cannot await).
/// Output goes to temporary files rather than pipes so that a chatty command can never block.
enum Command {
    /// Runs `arguments[0]` (an absolute path or a name looked up in PATH) and waits for it.
    /// A command still running after `timeout` is killed and reported as status 124.
    @discardableResult
    static func run(_ arguments: [String], timeout: Duration = .seconds(20)) throws -> CommandResult {
        precondition(!arguments.isEmpty)
        let outURL = temporaryFile("out"), errURL = temporaryFile("err")
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        guard FileManager.default.createFile(atPath: outURL.path, contents: nil),
              FileManager.default.createFile(atPath: errURL.path, contents: nil) else {
            throw HarnessError("cannot create output files in \(NSTemporaryDirectory())")
        }
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        defer { try? out.close(); try? err.close() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: resolve(arguments[0]))
        process.arguments = Array(arguments.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch {
            throw HarnessError("cannot start `\(arguments.joined(separator: " "))`: \(error)")
        }
        let deadline = ContinuousClock.now + timeout
        var timedOut = false
        while process.isRunning {
            if ContinuousClock.now > deadline {
                timedOut = true
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                break
            }
            usleep(2_000)
        }
        let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return CommandResult(arguments: arguments, status: timedOut ? 124 : process.terminationStatus,
                             stdout: stdout, stderr: timedOut ? stderr + "\n(killed after \(timeout))" : stderr)
    }

    /// Like `run`, but a non-zero exit status is an error carrying the command's output.
    @discardableResult
    static func check(_ arguments: [String], timeout: Duration = .seconds(20)) throws -> CommandResult {
        let result = try run(arguments, timeout: timeout)
        guard result.succeeded else { throw HarnessError(result.description) }
        return result
    }

    /// The absolute path of `name`, searched in PATH plus the sbin directories (which a non-login
    /// root shell may lack); `name` itself if it contains a slash or is not found.
    static func resolve(_ name: String) -> String {
        if name.contains("/") { return name }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in directories where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
            return directory + "/" + name
        }
        return name
    }

    private static func temporaryFile(_ tag: String) -> URL {
        URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("hrld-cmd-\(getpid())-\(UUID().uuidString)-\(tag)")
    }
}

/// A long-running child (a daemon), started by the harness and stopped by its PID:
/// SIGTERM, then SIGKILL if it is still alive after a grace period, and always reaped.
/// stdout and stderr go to `logPath`, which `logTail()` reads back for error messages.
final class ChildProcess: @unchecked Sendable {
    let arguments: [String]
    let logPath: String
    let pid: Int32
    private let process: Process
    private let log: FileHandle
    private let stopped = Mutex(false)

    init(_ arguments: [String], logPath: String) throws {
        self.arguments = arguments
        self.logPath = logPath
        guard FileManager.default.createFile(atPath: logPath, contents: nil),
              let log = FileHandle(forWritingAtPath: logPath) else { throw HarnessError("cannot open \(logPath)") }
        self.log = log
        process = Process()
        process.executableURL = URL(fileURLWithPath: Command.resolve(arguments[0]))
        process.arguments = Array(arguments.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        do { try process.run() } catch {
            try? log.close()
            throw HarnessError("cannot start `\(arguments.joined(separator: " "))`: \(error)")
        }
        pid = process.processIdentifier
    }

    var isRunning: Bool { process.isRunning }

    /// The exit status once the child has ended, nil while it runs.
    var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    /// The last `lines` lines the child wrote.
    func logTail(_ lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; returns once the child is reaped. Idempotent.
    func stop(grace: Duration = .seconds(5)) {
        let first = stopped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        if process.isRunning {
            kill(pid, SIGTERM)
            let deadline = ContinuousClock.now + grace
            while process.isRunning && ContinuousClock.now < deadline { usleep(5_000) }
            if process.isRunning {
                kill(pid, SIGKILL)
            }
        }
        process.waitUntilExit()
        try? log.close()
    }

    deinit { stop() }
}

/// True while a process with this PID exists (zombies included).
func processExists(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
}

/// Polls `probe` until it returns a value, or fails after `timeout` with the last error seen.
/// This is how tests wait: never a fixed sleep, always a condition with a deadline.
func eventually<T>(
    _ what: @autoclosure () -> String,
    timeout: Duration = .seconds(30),
    every interval: Duration = .milliseconds(200),
    _ probe: () throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while true {
        do {
            if let value = try probe() { return value }
            lastError = nil
        } catch {
            lastError = error
        }
        if ContinuousClock.now >= deadline {
            throw HarnessError("timed out after \(timeout) waiting for \(what())" + (lastError.map { ": \($0)" } ?? ""))
        }
        try await Task.sleep(for: interval)
    }
}
