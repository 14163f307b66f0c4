import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Catches SIGINT and SIGTERM for a clean shutdown.
///
/// `install()` runs first thing, so a signal that arrives while the database is still opening is
/// not lost (nor does it kill the process half-way): the handler only writes the signal number to
/// a pipe (write(2) is async-signal-safe), and `wait()` reads it on a dedicated thread, so no
/// thread of the concurrency pool is blocked.
enum TerminationSignal {
    /// The pipe's ends; set once by `install()` before any handler can run.
    nonisolated(unsafe) private static var pipeEnds: [Int32] = [-1, -1]
    nonisolated(unsafe) private static var pipeWriteEnd: Int32 = -1

    static func install() {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { fatalError("pipe() failed: errno \(errno)") }
        pipeEnds = ends
        pipeWriteEnd = ends[1]
        for signalNumber in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = Glibc.write(TerminationSignal.pipeWriteEnd, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signalNumber, &action, nil)
        }
    }

    /// Suspends until SIGINT or SIGTERM has arrived (possibly before the call) and returns it.
    static func wait() async -> Int32 {
        let readEnd = pipeEnds[0]
        precondition(readEnd >= 0, "TerminationSignal.install() must run first")
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var byte: UInt8 = 0
                while read(readEnd, &byte, 1) != 1 {
                    if errno != EINTR { break }
                }
                continuation.resume(returning: Int32(byte))
            }
        }
    }

    static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}
