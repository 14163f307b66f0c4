internal import JSON

/// Throw from a handler to answer with an RFC 9457 problem document.
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPStatus
    public var title: String?
    public var detail: String?
    public var type: String?
    /// Extra response headers (e.g. `Allow`, `WWW-Authenticate`, `Retry-After`).
    public var headers: HTTPHeaders

    public init(_ status: HTTPStatus, title: String? = nil, detail: String? = nil, type: String? = nil, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.headers = headers
    }

    public var description: String { "\(status)" + (detail.map { ": \($0)" } ?? "") }
}

/// One invalid input field: `field` is a JSON path in snake_case (`nodes[2].address`).
public struct FieldError: Error, Sendable, Hashable, Codable {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

/// Throw when input is well-formed but invalid; becomes a problem document with `errors`.
public struct ValidationError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPStatus
    public var errors: [FieldError]
    public var detail: String?

    public init(_ errors: [FieldError], status: HTTPStatus = .unprocessableContent, detail: String? = nil) {
        self.errors = errors
        self.status = status
        self.detail = detail
    }

    public init(field: String, _ message: String, status: HTTPStatus = .unprocessableContent) {
        self.init([FieldError(field: field, message: message)], status: status)
    }

    public var description: String { errors.map { "\($0.field): \($0.message)" }.joined(separator: "; ") }
}

/// RFC 9457 problem details (`application/problem+json`).
public struct ProblemDetails: Codable, Sendable, Hashable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String?
    public var errors: [FieldError]?

    public init(type: String = "about:blank", title: String, status: Int, detail: String? = nil, errors: [FieldError]? = nil) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.errors = errors
    }

    /// The one place an error becomes a response. Unknown errors become a bare 500: their
    /// text may hold internals and is left to the log.
    public static func response(for error: any Error) -> HTTPResponse {
        let problem: ProblemDetails
        var headers = HTTPHeaders()
        switch error {
        case let e as HTTPError:
            problem = ProblemDetails(type: e.type ?? "about:blank", title: e.title ?? e.status.reason, status: e.status.code, detail: e.detail)
            headers = e.headers
        case let e as ValidationError:
            problem = ProblemDetails(title: e.status.reason, status: e.status.code, detail: e.detail ?? "The request is invalid.", errors: e.errors)
        case let e as HTTPParseError:
            problem = ProblemDetails(title: e.status.reason, status: e.status.code, detail: e.reason)
        case let e as JSONInputError:
            return response(for: e.answer)
        default:
            problem = ProblemDetails(title: HTTPStatus.internalServerError.reason, status: 500)
        }
        return response(problem, headers: headers)
    }

    public static func response(_ problem: ProblemDetails, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        var headers = headers
        headers.set("Content-Type", "application/problem+json")
        let body = (try? JSONCoding.encode(problem)) ?? Array(#"{"status":500,"title":"Internal Server Error","type":"about:blank"}"#.utf8)
        return HTTPResponse(status: HTTPStatus(code: problem.status), headers: headers, body: .bytes(body))
    }
}
