internal import JSON

/// What a handler returns.
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: Body

    public enum Body: Sendable {
        case bytes([UInt8])
        /// Sent with chunked transfer coding as the producer writes (SSE and other streams).
        case stream(ResponseStream)
    }

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body bytes of a non-streaming response (empty for a stream).
    public var bodyBytes: [UInt8] {
        if case .bytes(let b) = body { return b }
        return []
    }

    // MARK: - Builders

    /// JSON with snake_case keys and sorted keys.
    public static func json(_ value: some Encodable, status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders()) throws -> HTTPResponse {
        var headers = headers
        headers.set("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: .bytes(try JSONCoding.encode(value)))
    }

    public static func text(_ text: String, status: HTTPStatus = .ok, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: .bytes(Array(text.utf8)))
    }

    public static func status(_ status: HTTPStatus) -> HTTPResponse {
        HTTPResponse(status: status)
    }

    public static var noContent: HTTPResponse { HTTPResponse(status: .noContent) }
}

/// A response body produced over time. `produce` writes through the writer until it returns
/// (the stream ends cleanly) or throws (the connection is closed). When the client goes away,
/// the writer throws and the producing task is cancelled.
public struct ResponseStream: Sendable {
    public let produce: @Sendable (ResponseBodyWriter) async throws -> Void
    /// Bytes the connection may hold unsent before the client is dropped as too slow.
    public let bufferLimit: Int
    /// Whether a write waits while the client is behind (an export: the client sets the pace)
    /// rather than dropping it past `bufferLimit` (a live feed, whose client can resume).
    /// Either way the unsent bytes held stay bounded.
    public let waitsForClient: Bool

    public init(bufferLimit: Int = 1024 * 1024, waitsForClient: Bool = false, produce: @escaping @Sendable (ResponseBodyWriter) async throws -> Void) {
        self.bufferLimit = bufferLimit
        self.waitsForClient = waitsForClient
        self.produce = produce
    }
}

/// Why a stream write failed.
public enum ResponseStreamError: Error, Sendable, Equatable {
    /// The client closed the connection.
    case connectionClosed
    /// The client read too slowly: more than the stream's buffer limit was waiting. The
    /// connection was closed; an SSE client can reconnect with Last-Event-ID.
    case slowConsumer
}

/// Writes body bytes of a streaming response. Safe to use from any task.
public final class ResponseBodyWriter: Sendable {
    let sink: @Sendable ([UInt8]) async throws(ResponseStreamError) -> Void

    init(sink: @escaping @Sendable ([UInt8]) async throws(ResponseStreamError) -> Void) {
        self.sink = sink
    }

    public func write(_ bytes: [UInt8]) async throws(ResponseStreamError) {
        guard !bytes.isEmpty else { return }
        try await sink(bytes)
    }

    public func write(_ text: String) async throws(ResponseStreamError) {
        try await write(Array(text.utf8))
    }
}
