import Testing
import Synchronization
import Foundation
@testable import Sockets
import IP

/// Polls `condition` until it holds or `seconds` pass; returns whether it held.
func eventually(timeout seconds: Double = 20, _ condition: @Sendable () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// Records everything a connection reports, for tests to poll.
final class Recorder: ConnectionDelegate, @unchecked Sendable {
    struct State {
        var received: [UInt8] = []
        var eof = false
        var connected = false
        var writableCount = 0
        var closed = false
        var closeError: SocketError?
    }
    let state = Mutex(State())
    /// Echo what arrives back to the sender.
    let echo: Bool
    var onRead: ((Connection, [UInt8]) -> Void)?

    init(echo: Bool = false) { self.echo = echo }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let data = Array(bytes)
        state.withLock { $0.received += data }
        if echo { connection.write(data) }
        onRead?(connection, data)
    }

    func connectionDidReadEOF(_ connection: Connection) {
        state.withLock { $0.eof = true }
        connection.closeAfterFlush()
    }

    func connectionBecameWritable(_ connection: Connection) {
        state.withLock { $0.writableCount += 1 }
    }

    func connectionDidConnect(_ connection: Connection) {
        state.withLock { $0.connected = true }
    }

    func connection(_ connection: Connection, didCloseWith error: SocketError?) {
        state.withLock {
            $0.closed = true
            $0.closeError = error
        }
    }

    var received: [UInt8] { state.withLock { $0.received } }
    var closed: Bool { state.withLock { $0.closed } }
    var connected: Bool { state.withLock { $0.connected } }
}

/// Holds values produced on the loop for the test to read.
final class Box<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    init(_ value: T) { _value = value }
    var value: T {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
}
