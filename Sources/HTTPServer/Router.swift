public import Logging
internal import JSON
import Synchronization

/// Per-request facts a handler may need beyond the request itself.
public struct RequestContext: Sendable {
    /// Values of `{name}` segments in the matched pattern, percent-decoded.
    public var parameters: [String: String]
    /// The request id (echoed from `X-Request-Id` or generated); also sent back in the response.
    public var requestID: String
    /// A logger carrying the request id as metadata.
    public var logger: Logger

    public init(parameters: [String: String] = [:], requestID: String = RequestID.generate(), logger: Logger = Logger(label: "herald.http")) {
        self.parameters = parameters
        self.requestID = requestID
        self.logger = logger
    }

    /// The parameter called `name`; a route pattern guarantees it, so a miss is a 500.
    public func parameter(_ name: String) throws -> String {
        guard let value = parameters[name] else {
            throw HTTPError(.internalServerError, detail: "route has no parameter {\(name)}")
        }
        return value
    }
}

/// `async throws` (request, context) → response.
public typealias HTTPHandler = @Sendable (HTTPRequest, RequestContext) async throws -> HTTPResponse

/// Method + path pattern routing. Patterns are literal segments and `{name}` parameters:
/// `/v1/peers/{name}`. A path that matches a pattern but not its method gets 405 with `Allow`;
/// no match gets 404. HEAD is served by the GET handler without the body. A route names the
/// query parameters it takes; any other one is a 400 naming it, so a misspelt or unsupported
/// filter (`?limt=2`, `?order=desc`) is never silently ignored. Likewise a parameter given twice
/// is a 400 unless the route declares it repeatable: a handler reads one value, and the others
/// would be dropped without a word.
public final class Router: Sendable {
    struct Route: Sendable {
        enum Segment: Sendable, Equatable {
            case literal(String)
            case parameter(String)
        }
        let method: HTTPMethod
        let pattern: String
        let segments: [Segment]
        let query: Set<String>
        /// The parameters of `query` that may be given more than once.
        let repeatable: Set<String>
        let handler: HTTPHandler
    }

    private let routes = Mutex<[Route]>([])

    public init() {}

    /// Adds a route taking the query parameters `query` (none by default), of which those in
    /// `repeatable` may be given several times. Registering the same method and pattern twice is a
    /// programming error.
    public func on(_ method: HTTPMethod, _ pattern: String, query: Set<String> = [], repeatable: Set<String> = [],
                   _ handler: @escaping HTTPHandler) {
        precondition(repeatable.isSubset(of: query), "repeatable parameters \(repeatable.subtracting(query).sorted()) are not in query")
        let segments = Self.split(pattern).map { part -> Route.Segment in
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                return .parameter(String(part.dropFirst().dropLast()))
            }
            return .literal(part)
        }
        routes.withLock { routes in
            precondition(!routes.contains { $0.method == method && $0.segments == segments }, "duplicate route \(method) \(pattern)")
            routes.append(Route(method: method, pattern: pattern, segments: segments, query: query, repeatable: repeatable, handler: handler))
        }
    }

    /// The pattern of the route that serves `request` (e.g. `/v1/peers/{name}`), or nil when
    /// none does: a label for metrics that does not grow with the names in paths.
    public func pattern(for request: HTTPRequest) -> String? {
        let raw = Self.split(request.path)
        guard let decoded = try? raw.map({ segment throws(HTTPError) in try PercentDecoding.decode(segment, plusIsSpace: false) }) else { return nil }
        let method = request.method == .HEAD ? HTTPMethod.GET : request.method
        return routes.withLock { routes in
            routes.first { $0.method == method && Self.bind($0.segments, decoded) != nil }?.pattern
        }
    }

    /// Every registered method and pattern, in registration order (for checking the API
    /// description against the server).
    public var registeredRoutes: [(method: HTTPMethod, pattern: String, query: Set<String>, repeatable: Set<String>)] {
        routes.withLock { $0.map { ($0.method, $0.pattern, $0.query, $0.repeatable) } }
    }

    public func get(_ pattern: String, query: Set<String> = [], repeatable: Set<String> = [], _ handler: @escaping HTTPHandler) {
        on(.GET, pattern, query: query, repeatable: repeatable, handler)
    }
    public func post(_ pattern: String, query: Set<String> = [], _ handler: @escaping HTTPHandler) { on(.POST, pattern, query: query, handler) }
    public func put(_ pattern: String, query: Set<String> = [], _ handler: @escaping HTTPHandler) { on(.PUT, pattern, query: query, handler) }
    public func patch(_ pattern: String, query: Set<String> = [], _ handler: @escaping HTTPHandler) { on(.PATCH, pattern, query: query, handler) }
    public func delete(_ pattern: String, query: Set<String> = [], _ handler: @escaping HTTPHandler) { on(.DELETE, pattern, query: query, handler) }

    /// Routes the request, runs the handler, and turns any thrown error into a problem
    /// response. Never throws: this is the one place errors become responses.
    public func respond(to request: HTTPRequest, context: RequestContext = RequestContext()) async -> HTTPResponse {
        var context = context
        do {
            let route = try match(request, parameters: &context.parameters)
            if let unknown = request.query.first(where: { !route.query.contains($0.name) }) {
                let takes = route.query.isEmpty ? "takes no query parameters" : "takes \(route.query.sorted().joined(separator: ", "))"
                throw ValidationError(field: unknown.name, "is not a query parameter of \(route.method) \(route.pattern), which \(takes)",
                                      status: .badRequest)
            }
            var seen: Set<String> = []
            if let repeated = request.query.first(where: { !route.repeatable.contains($0.name) && !seen.insert($0.name).inserted }) {
                throw ValidationError(field: repeated.name, "is given more than once, but \(route.method) \(route.pattern) uses one value: give it once",
                                      status: .badRequest)
            }
            var response = try await route.handler(request, context)
            if request.method == .HEAD, case .bytes(let b) = response.body {
                // HEAD: same headers, no body; the length is what GET would send.
                response.headers.set("Content-Length", String(b.count))
                response.body = .bytes([])
            }
            return response
        } catch {
            if !(error is HTTPError || error is ValidationError || error is JSONInputError) {
                context.logger.error("handler failed", metadata: ["error": "\(error)", "path": "\(request.path)"])
            }
            return ProblemDetails.response(for: error)
        }
    }

    /// Finds the handler, or throws 404 / 405 (with `Allow`) / 400 (bad percent-encoding).
    func match(_ request: HTTPRequest, parameters: inout [String: String]) throws -> Route {
        let raw = Self.split(request.path)
        var decoded: [String] = []
        decoded.reserveCapacity(raw.count)
        for segment in raw { decoded.append(try PercentDecoding.decode(segment, plusIsSpace: false)) }
        let snapshot = routes.withLock { $0 }
        var allowed: Set<HTTPMethod> = []
        for route in snapshot {
            guard let values = Self.bind(route.segments, decoded) else { continue }
            if route.method == request.method || (request.method == .HEAD && route.method == .GET) {
                if route.method == .GET && request.method == .HEAD,
                   snapshot.contains(where: { $0.method == .HEAD && Self.bind($0.segments, decoded) != nil }) {
                    continue  // an explicit HEAD route wins
                }
                parameters.merge(values) { $1 }
                return route
            }
            allowed.insert(route.method)
        }
        if allowed.isEmpty {
            throw HTTPError(.notFound, detail: "no resource at \(request.path)")
        }
        if allowed.contains(.GET) { allowed.insert(.HEAD) }
        let allow = allowed.map(\.rawValue).sorted().joined(separator: ", ")
        throw HTTPError(.methodNotAllowed, detail: "\(request.method) is not allowed on \(request.path)", headers: ["Allow": allow])
    }

    private static func bind(_ segments: [Route.Segment], _ path: [String]) -> [String: String]? {
        guard segments.count == path.count else { return nil }
        var values: [String: String] = [:]
        for (segment, part) in zip(segments, path) {
            switch segment {
            case .literal(let literal): guard literal == part else { return nil }
            case .parameter(let name):
                guard !part.isEmpty else { return nil }
                values[name] = part
            }
        }
        return values
    }

    /// "/v1/peers/x" → ["v1", "peers", "x"]; "/" → []; a trailing slash keeps an empty segment.
    static func split(_ path: String) -> [String] {
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.first == "" { parts.removeFirst() }
        if parts == [""] { return [] }
        return parts
    }
}

/// Request ids: echoed when the client's is sane, otherwise 16 random hex digits.
public enum RequestID {
    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        let value = rng.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The client's `X-Request-Id` when it is 1–128 visible ASCII characters, else a new one.
    public static func from(_ headers: HTTPHeaders) -> String {
        if let given = headers["X-Request-Id"], !given.isEmpty, given.utf8.count <= 128,
           given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            return given
        }
        return generate()
    }
}
