import Glibc

/// A failed system call: which one and the `errno` it left.
public struct SocketError: Error, Hashable, Sendable, CustomStringConvertible {
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// The connection was closed by this side before the operation could finish.
    public static let closed = SocketError("closed", errno: EPIPE)

    public var description: String {
        "\(operation): \(String(cString: strerror(errno))) (errno \(errno))"
    }

    /// Builds the error from the current `errno`.
    static func current(_ operation: String) -> SocketError {
        SocketError(operation, errno: Glibc.errno)
    }
}
