public import IP
public import Logging
public import Sockets
import Glibc
import Synchronization

/// The HTTP/1.1 server: one listener on an `EventLoop`, a connection handler per socket,
/// handlers run as tasks through an `HTTPResponder`.
///
/// ```swift
/// let loop = try EventLoop()
/// let router = Router()
/// router.get("/healthz") { _, _ in try .json(["status": "ok"]) }
/// let server = HTTPServer(loop: loop, configuration: .init(address: .v4(.init(127, 0, 0, 1)), port: 8179), router: router)
/// try await server.start()
/// …
/// await server.shutdown(gracePeriod: .seconds(5))
/// ```
public final class HTTPServer: Sendable {
    public struct Configuration: Sendable {
        public var address: IPAddress
        /// 0 picks a free port; read `HTTPServer.localAddress` after `start()`.
        public var port: UInt16
        /// Accepted bearer tokens; empty disables authentication.
        public var tokens: [String]
        /// Paths served without a token.
        public var publicPaths: Set<String>
        public var logger: Logger
        /// One info line per request (method, path, status, duration, bytes, request id).
        public var accessLog: Bool
        public var limits: HTTPParserLimits
        /// Larger body limits for particular request paths (exact match), for bulk endpoints
        /// such as `POST /v1/routes:batch`; every other path keeps `limits.maxBodyBytes`.
        public var bodyLimits: [String: Int] = [:]
        /// Open connections beyond this are accepted, answered 503 and closed.
        public var maxConnections: Int
        /// The request line and headers must arrive within this time (from the first byte, or from
        /// connecting) → 408 and close.
        public var headerTimeout: Duration
        /// A body must make progress at least this often → 408 and close.
        public var bodyTimeout: Duration
        /// And on average (bytes per second, after a `bodyTimeout` head start) at least this
        /// fast → 408 and close: a body trickled a byte just inside every `bodyTimeout` would
        /// otherwise hold its connection for days (the "slow body" / R-U-Dead-Yet attack;
        /// Apache's mod_reqtimeout uses the same MinRate rule). 0 turns it off.
        public var minimumBodyRate: Int = 500
        /// A keep-alive connection with no request is closed after this.
        public var idleTimeout: Duration
        public var backlog: Int32
        /// Told about every answered request (for metrics).
        public var observer: (@Sendable (HTTPResponder.RequestObservation) -> Void)?

        public init(
            address: IPAddress = .v4(IPv4Address(127, 0, 0, 1)), port: UInt16 = 8179, tokens: [String] = [],
            publicPaths: Set<String> = ["/healthz", "/metrics"], logger: Logger = Logger(label: "herald.http"),
            accessLog: Bool = true, limits: HTTPParserLimits = HTTPParserLimits(), maxConnections: Int = 1024,
            headerTimeout: Duration = .seconds(10), bodyTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(60),
            backlog: Int32 = 1024
        ) {
            self.address = address
            self.port = port
            self.tokens = tokens
            self.publicPaths = publicPaths
            self.logger = logger
            self.accessLog = accessLog
            self.limits = limits
            self.maxConnections = maxConnections
            self.headerTimeout = headerTimeout
            self.bodyTimeout = bodyTimeout
            self.idleTimeout = idleTimeout
            self.backlog = backlog
        }

        /// The body limit for a request to `path`.
        public func bodyLimit(for path: String) -> Int { bodyLimits[path] ?? limits.maxBodyBytes }

        /// What the parser enforces before the path is known: the largest limit of any path.
        var parserLimits: HTTPParserLimits {
            var limits = limits
            limits.maxBodyBytes = max(limits.maxBodyBytes, bodyLimits.values.max() ?? 0)
            return limits
        }

        /// Refuses to serve a non-loopback address without a token: call before `start()`.
        public func validateExposure() throws(ExposureError) {
            if !address.isLoopback && tokens.allSatisfy(\.isEmpty) {
                throw ExposureError(address: address)
            }
        }
    }

    public let loop: EventLoop
    public let configuration: Configuration
    public let responder: HTTPResponder
    let core: ServerCore

    public init(loop: EventLoop, configuration: Configuration, router: Router) {
        self.loop = loop
        self.configuration = configuration
        self.responder = HTTPResponder(
            router: router, tokens: configuration.tokens.filter { !$0.isEmpty }, publicPaths: configuration.publicPaths,
            logger: configuration.logger, accessLog: configuration.accessLog, observer: configuration.observer)
        self.core = ServerCore(loop: loop, configuration: configuration, responder: responder)
    }

    /// Binds and starts accepting. Throws `SocketError` (e.g. address in use).
    public func start() async throws {
        try await loop.submit { [core] in try core.start() }
    }

    /// The bound address (with the real port when 0 was configured); nil before `start()`.
    public var localAddress: SocketAddress? { core.boundAddress.withLock { $0 } }

    /// Open connections (for tests and metrics).
    public func connectionCount() async -> Int {
        (try? await loop.submit { [core] in core.handlers.count }) ?? 0
    }

    /// Stops accepting, lets in-flight requests finish for up to `gracePeriod` (idle
    /// connections close at once, streams are cancelled), then closes whatever is left.
    public func shutdown(gracePeriod: Duration = .seconds(5)) async {
        _ = try? await loop.submit { [core] in core.beginDrain() }
        let deadline = ContinuousClock.now + gracePeriod
        while ContinuousClock.now < deadline {
            let open = (try? await loop.submit { [core] in core.handlers.count }) ?? 0
            if open == 0 { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        _ = try? await loop.submit { [core] in core.closeAll() }
    }
}

/// Thrown by `Configuration.validateExposure()`: a non-loopback address without any token.
public struct ExposureError: Error, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public var description: String {
        "listening on \(address) (not loopback) requires an API token (--token-file or HERALD_TOKEN)"
    }
}

// MARK: - Loop-confined server state

final class ServerCore: @unchecked Sendable {
    let loop: EventLoop
    let configuration: Configuration
    let responder: HTTPResponder
    let boundAddress = Mutex<SocketAddress?>(nil)
    typealias Configuration = HTTPServer.Configuration

    var listener: Listener?
    var handlers: [ObjectIdentifier: HTTPConnectionHandler] = [:]
    var draining = false
    private var dateSecond = -1
    private var dateBytes: [UInt8] = []

    init(loop: EventLoop, configuration: Configuration, responder: HTTPResponder) {
        self.loop = loop
        self.configuration = configuration
        self.responder = responder
    }

    func start() throws {
        loop.preconditionInEventLoop()
        precondition(listener == nil, "HTTPServer.start() called twice")
        let listener = try Listener(
            bindingTo: SocketAddress(configuration.address, port: configuration.port), backlog: configuration.backlog,
            on: loop
        ) { [weak self] connection in self?.accept(connection) }
        self.listener = listener
        boundAddress.withLock { $0 = listener.localAddress }
    }

    private func accept(_ connection: Connection) -> (any ConnectionDelegate)? {
        guard !draining else { return nil }
        if handlers.count >= configuration.maxConnections, let idle = longestIdleKeepAlive() {
            // At the limit, an idle keep-alive connection gives way to a new client, as nginx
            // reuses keep-alive connections: otherwise a few thousand idle clients (each one
            // legal, RFC 9112 §9.3) would lock everyone else out until the idle timeout. A client
            // may close an idle persistent connection at any time (RFC 9112 §9.5), and so may we.
            idle.connection.close()
        }
        if handlers.count >= configuration.maxConnections {
            return RejectedConnection(connection, loop: loop, response: serialize(
                ProblemDetails.response(for: HTTPError(.serviceUnavailable, detail: "too many open connections")),
                headRequest: false, keepAlive: false, streaming: false))
        }
        let handler = HTTPConnectionHandler(core: self, connection: connection)
        handlers[ObjectIdentifier(handler)] = handler
        return handler
    }

    /// The keep-alive connection that has waited longest for its next request, if any.
    private func longestIdleKeepAlive() -> HTTPConnectionHandler? {
        var oldest: HTTPConnectionHandler?
        for handler in handlers.values {
            guard let since = handler.idleKeepAliveSince else { continue }
            if let current = oldest?.idleKeepAliveSince, current <= since { continue }
            oldest = handler
        }
        return oldest
    }

    func remove(_ handler: HTTPConnectionHandler) {
        handlers[ObjectIdentifier(handler)] = nil
    }

    func beginDrain() {
        loop.preconditionInEventLoop()
        draining = true
        listener?.close()
        for handler in Array(handlers.values) { handler.drain() }
    }

    func closeAll() {
        loop.preconditionInEventLoop()
        listener?.close()
        for handler in Array(handlers.values) { handler.connection.close() }
    }

    // MARK: - Serialization

    /// IMF-fixdate for the current second (RFC 9110 §5.6.7), cached per second.
    func date() -> [UInt8] {
        var now = time(nil)
        if Int(now) != dateSecond {
            dateSecond = Int(now)
            var parts = tm()
            gmtime_r(&now, &parts)
            let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
            let text = "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
                + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
            dateBytes = Array(text.utf8)
        }
        return dateBytes
    }

    /// The status line and headers, plus the body for a non-streaming response.
    func serialize(_ response: HTTPResponse, headRequest: Bool, keepAlive: Bool, streaming: Bool, http10: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        let body = response.bodyBytes
        out.reserveCapacity(256 + body.count)
        out += Array("HTTP/1.1 \(response.status.code) \(response.status.reason)\r\n".utf8)
        let noBody = response.status.code < 200 || response.status.code == 204 || response.status.code == 304
        for (name, value) in response.headers {
            let lower = name.lowercased()
            if lower == "connection" || lower == "transfer-encoding" || lower == "date" { continue }
            if lower == "content-length" && !(headRequest && !streaming) { continue }
            Self.appendField(&out, name, value)
        }
        if streaming {
            if !http10 { out += Array("Transfer-Encoding: chunked\r\n".utf8) }
        } else if !noBody && !(headRequest && response.headers.contains("Content-Length")) {
            out += Array("Content-Length: \(body.count)\r\n".utf8)
        }
        out += Array("Date: ".utf8)
        out += date()
        out += [13, 10]
        if !keepAlive {
            out += Array("Connection: close\r\n".utf8)
        } else if http10 {
            out += Array("Connection: keep-alive\r\n".utf8)
        }
        out += [13, 10]
        if !streaming && !headRequest && !noBody { out += body }
        return out
    }

    /// Appends one field, replacing bytes that would split the response (CR, LF, NUL, CTLs).
    private static func appendField(_ out: inout [UInt8], _ name: String, _ value: String) {
        for b in name.utf8 { out.append(HTTPSyntax.isTokenByte(b) ? b : UInt8(ascii: "_")) }
        out += [UInt8(ascii: ":"), 0x20]
        for b in value.utf8 { out.append(HTTPSyntax.isFieldValueByte(b) ? b : 0x20) }
        out += [13, 10]
    }
}

/// A connection over the limit: gets 503, then a lingering close.
final class RejectedConnection: ConnectionDelegate {
    init(_ connection: Connection, loop: EventLoop, response: [UInt8]) {
        connection.write(response)
        connection.shutdownWriteAfterFlush()
        loop.scheduleTimer(after: .seconds(2)) { [weak connection] in connection?.close() }
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
    func connectionDidReadEOF(_ connection: Connection) { connection.close() }
    func connection(_ connection: Connection, didCloseWith error: SocketError?) {}
}
