// Server-Sent Events (HTML Living Standard §9.2, `text/event-stream`).
//
// A stream is a chunked response whose producer sends events through an `EventStreamWriter`.
// Heartbeat comments keep proxies and idle timers from closing a quiet stream and reveal dead
// clients. A client that reads too slowly is dropped once the stream's buffer limit is exceeded
// (`ResponseStreamError.slowConsumer`); it reconnects with `Last-Event-ID` and the producer
// resumes from there (`request.lastEventID`). Memory per subscriber is therefore bounded.

internal import JSON

/// One event. `data` may span lines; `id` and `event` must not (line breaks are removed).
public struct ServerSentEvent: Sendable, Hashable {
    public var id: String?
    public var event: String?
    public var data: String
    /// Reconnection delay hint for the client, in milliseconds.
    public var retry: Int?

    public init(id: String? = nil, event: String? = nil, data: String, retry: Int? = nil) {
        self.id = id
        self.event = event
        self.data = data
        self.retry = retry
    }

    /// JSON data with snake_case keys.
    public init(id: String? = nil, event: String? = nil, json value: some Encodable) throws {
        self.init(id: id, event: event, data: String(decoding: try JSONCoding.encode(value), as: UTF8.self))
    }

    /// The wire form, ending in the blank line that dispatches the event.
    public var encoded: [UInt8] {
        func clean(_ s: String) -> String { String(s.filter { $0 != "\r" && $0 != "\n" && $0 != "\r\n" }) }
        var text = ""
        if let event { text += "event: \(clean(event))\n" }
        if let id { text += "id: \(clean(id.replacingNUL()))\n" }
        if let retry { text += "retry: \(retry)\n" }
        let lines = data.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
        for line in lines { text += "data: \(line)\n" }
        text += "\n"
        return Array(text.utf8)
    }
}

extension String {
    fileprivate func replacingNUL() -> String { String(filter { $0 != "\u{0}" }) }
}

/// Sends events on one stream. Any task may use it; a failed send means the stream is over.
public struct EventStreamWriter: Sendable {
    let body: ResponseBodyWriter

    public func send(_ event: ServerSentEvent) async throws(ResponseStreamError) {
        try await body.write(event.encoded)
    }

    /// A comment line (ignored by clients): `: text`.
    public func comment(_ text: String) async throws(ResponseStreamError) {
        try await body.write(": \(text.filter { $0 != "\r" && $0 != "\n" && $0 != "\r\n" })\n\n")
    }
}

extension HTTPResponse {
    /// A `text/event-stream` response. `produce` runs until it returns (the stream ends), throws,
    /// or is cancelled because the client left or the server shuts down. A heartbeat comment goes
    /// out every `heartbeat`; more than `bufferLimit` unsent bytes drop the client.
    public static func eventStream(
        heartbeat: Duration = .seconds(15), bufferLimit: Int = 256 * 1024,
        _ produce: @escaping @Sendable (EventStreamWriter) async throws -> Void
    ) -> HTTPResponse {
        let stream = ResponseStream(bufferLimit: bufferLimit) { body in
            let writer = EventStreamWriter(body: body)
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    while true {
                        try await Task.sleep(for: heartbeat)
                        try await writer.comment("heartbeat")
                    }
                }
                group.addTask {
                    try await produce(writer)
                    return true
                }
                defer { group.cancelAll() }
                _ = try await group.next()
            }
        }
        return HTTPResponse(
            status: .ok,
            headers: ["Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"],
            body: .stream(stream))
    }
}
