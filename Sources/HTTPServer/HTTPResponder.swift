public import Logging
import Sockets

/// Everything between a parsed request and its response that does not touch a socket:
/// request id, authentication, routing, error mapping, access log. Usable in-process.
public struct HTTPResponder: Sendable {
    public let router: Router
    public let logger: Logger
    public let accessLog: Bool
    private let tokens: [[UInt8]]
    private let publicPaths: Set<String>
    /// Told about every request once it is answered (for metrics).
    public let observer: (@Sendable (RequestObservation) -> Void)?

    public init(router: Router, tokens: [String] = [], publicPaths: Set<String> = ["/healthz", "/metrics"], logger: Logger = Logger(label: "herald.http"),
                accessLog: Bool = true, observer: (@Sendable (RequestObservation) -> Void)? = nil) {
        self.router = router
        self.observer = observer
        self.tokens = tokens.map { Array($0.utf8) }
        self.publicPaths = publicPaths
        self.logger = logger
        self.accessLog = accessLog
    }

    /// True when a bearer token is required (at least one is configured).
    public var requiresToken: Bool { !tokens.isEmpty }

    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        let start = EventLoop.now()
        let requestID = RequestID.from(request.headers)
        var logger = self.logger
        logger[metadataKey: "request_id"] = "\(requestID)"
        var response: HTTPResponse
        if let denied = authenticate(request) {
            response = denied
        } else {
            response = await router.respond(to: request, context: RequestContext(requestID: requestID, logger: logger))
        }
        response.headers.set("X-Request-Id", requestID)
        if let observer {
            observer(RequestObservation(method: request.method, route: router.pattern(for: request), status: response.status.code,
                                        seconds: Double(EventLoop.now() - start) / 1e9))
        }
        if accessLog {
            let micros = (EventLoop.now() - start) / 1000
            let bytes: String
            switch response.body {
            case .bytes(let b): bytes = String(b.count)
            case .stream: bytes = "stream"
            }
            // Never the Authorization header, never the query string (it may carry secrets).
            logger.info("\(request.method) \(request.path) \(response.status.code)", metadata: [
                "method": "\(request.method)", "path": "\(request.path)", "status": "\(response.status.code)",
                "duration_ms": "\(Double(micros) / 1000)", "bytes": "\(bytes)",
            ])
        }
        return response
    }

    /// One answered request: its route pattern (nil: no route matched), status and duration.
    public struct RequestObservation: Sendable {
        public let method: HTTPMethod
        public let route: String?
        public let status: Int
        public let seconds: Double
    }

    // MARK: - Bearer tokens (RFC 6750)

    /// nil when the request may proceed; otherwise the 401 to send.
    func authenticate(_ request: HTTPRequest) -> HTTPResponse? {
        authenticate(path: request.path, headers: request.headers)
    }

    /// The same check on a request head alone: the connection runs it before reading a body.
    func authenticate(path: String, headers: HTTPHeaders) -> HTTPResponse? {
        guard !tokens.isEmpty, !publicPaths.contains(path) else { return nil }
        var offered: [UInt8]?
        if let authorization = headers["Authorization"] {
            let utf8 = Array(authorization.utf8)
            let prefix = Array("bearer ".utf8)
            if utf8.count > prefix.count, zip(utf8, prefix).allSatisfy({ ($0 | 0x20) == $1 || $0 == $1 }) {
                offered = Array(utf8[prefix.count...].drop { $0 == 0x20 })
            }
        }
        if let offered, Self.matchesAny(offered, tokens) { return nil }
        let challenge = offered == nil ? #"Bearer realm="herald""# : #"Bearer realm="herald", error="invalid_token""#
        return ProblemDetails.response(for: HTTPError(
            .unauthorized, detail: offered == nil ? "a bearer token is required" : "the bearer token is not valid",
            headers: ["WWW-Authenticate": challenge]))
    }

    /// Compares against every token without stopping early.
    static func matchesAny(_ offered: [UInt8], _ tokens: [[UInt8]]) -> Bool {
        var matched = false
        for token in tokens where constantTimeEquals(offered, token) { matched = true }
        return matched
    }

    /// Time depends only on the longer length, not on where the inputs differ.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff: UInt = a.count == b.count ? 0 : 1
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            diff |= UInt(x ^ y)
        }
        return diff == 0
    }
}
