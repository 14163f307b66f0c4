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
        // posix_spawn with the output files opened in the child: Foundation's Process on Linux
        // closes descriptors it was handed (FileHandle.nullDevice among them) after the spawn, and
        // a descriptor number closed twice can be another test's socket by then.
        let child = try ChildProcess(arguments, logPath: outURL.path, errorPath: errURL.path)
        let deadline = ContinuousClock.now + timeout
        var timedOut = false
        while child.isRunning {
            if ContinuousClock.now > deadline {
                timedOut = true
                kill(child.pid, SIGKILL)
                while child.isRunning { usleep(1_000) }
                break
            }
            usleep(2_000)
        }
        let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return CommandResult(arguments: arguments, status: timedOut ? 124 : child.exitStatus ?? -1,
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
///
/// Started with posix_spawn rather than Foundation's `Process`: a child inherits the signal mask
/// of the spawning thread, and Swift's concurrency threads block nearly every signal, so a daemon
/// started with `Process` from a test ignores SIGTERM (and SIGCHLD, SIGALRM…). Here the child
/// gets an empty signal mask, default dispositions, /dev/null as stdin and no other inherited
/// descriptors.
final class ChildProcess: @unchecked Sendable {
    let arguments: [String]
    let logPath: String
    let pid: Int32
    /// nil while running; the wait status once reaped.
    private let reaped = Mutex<Int32?>(nil)
    private let stopped = Mutex(false)

    /// Starts `arguments` with the test process's environment plus `environment` (which wins).
    init(_ arguments: [String], logPath: String, errorPath: String? = nil, environment: [String: String] = [:]) throws {
        self.arguments = arguments
        self.logPath = logPath
        let executable = Command.resolve(arguments[0])

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t(), allSignals = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o644)
        if let errorPath {
            posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // No other inherited descriptor (closefrom_np is not visible to Swift; closing a
        // descriptor that is gone by then is ignored by glibc).
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let fd = Int32(entry), fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        }

        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let variables = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let error = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard error == 0 else {
            throw HarnessError("cannot start `\(arguments.joined(separator: " "))`: \(String(cString: strerror(error)))")
        }
        self.pid = pid
    }

    /// Reaps the child if it has ended (never blocks).
    var isRunning: Bool { poll() == nil }

    /// The exit status (or 128 + signal) once the child has ended, nil while it runs.
    var exitStatus: Int32? {
        poll().map { status in status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + status & 0x7f }
    }

    private func poll(blocking: Bool = false) -> Int32? {
        reaped.withLock { reaped in
            if let status = reaped { return status }
            var status: Int32 = 0
            while true {
                let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
                if result == pid {
                    reaped = status
                    return status
                }
                if result == -1 && errno == EINTR { continue }
                if result == -1 {
                    // Not our child any more (reaped elsewhere): treat as ended.
                    reaped = -1
                    return -1
                }
                return nil
            }
        }
    }

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
        guard isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning && ContinuousClock.now < deadline { usleep(5_000) }
        if isRunning {
            kill(pid, SIGKILL)
            _ = poll(blocking: true)
        }
    }

    deinit { stop() }
}

/// True while a process with this PID exists (zombies included).
func processExists(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
}

private let blockingQueue = DispatchQueue(label: "herald.interop.blocking", attributes: .concurrent)

/// Runs blocking work (commands, waits for children) on a Dispatch queue instead of a Swift
/// concurrency thread: parallel tests on a 2-core CI machine would otherwise take the whole
/// cooperative pool hostage while their commands run.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        blockingQueue.async { continuation.resume(with: Result { try body() }) }
    }
}

/// Polls `probe` until it returns a value, or fails after `timeout` with the last error seen.
/// This is how tests wait: never a fixed sleep, always a condition with a deadline.
func eventually<T: Sendable>(
    _ what: @autoclosure () -> String,
    timeout: Duration = .seconds(30),
    every interval: Duration = .milliseconds(200),
    _ probe: @escaping @Sendable () throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while true {
        do {
            if let value = try await blocking(probe) { return value }
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
