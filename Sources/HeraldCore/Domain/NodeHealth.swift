public import IP

/// How Herald checks that a node can take traffic. Stored as JSON in `nodes.health_check`.
///
/// Times are integer milliseconds (`interval`, `timeout`), like every duration in the schema.
/// `rise`/`fall` follow HAProxy and keepalived: `fall` failed checks in a row take the node
/// down, `rise` successful ones in a row bring it back, so one lost SYN does not move traffic.
public struct HealthCheck: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A TCP handshake to `port` completes.
        case tcp
        /// `GET path` on `port` answers 2xx.
        case http
    }

    public var kind: Kind
    public var port: Int
    /// The HTTP request path (http only; default "/").
    public var path: String?
    /// Where to connect instead of the node's own address (its first, IPv4 before IPv6): for a
    /// check that must go to another address than the next hop, such as a management address
    /// or a local proxy. May be loopback, unlike a next hop.
    public var address: IPAddress?
    public var interval: Int
    public var timeout: Int
    public var rise: Int
    public var fall: Int

    public static let defaultInterval = 2000
    public static let defaultTimeout = 1000
    public static let defaultRise = 2
    public static let defaultFall = 3

    public init(kind: Kind, port: Int, path: String? = nil, address: IPAddress? = nil, interval: Int = defaultInterval,
                timeout: Int = defaultTimeout, rise: Int = defaultRise, fall: Int = defaultFall) {
        self.kind = kind
        self.port = port
        self.path = path
        self.address = address
        self.interval = interval
        self.timeout = timeout
        self.rise = rise
        self.fall = fall
    }

    /// The request path actually sent (http).
    public var requestPath: String { path ?? "/" }

    func validate(field: String, into validator: inout Validator) {
        if !(1...65535).contains(port) { validator.add("\(field).port", "must be a TCP port 1–65535") }
        if !(100...3_600_000).contains(interval) { validator.add("\(field).interval", "must be 100–3600000 milliseconds") }
        if !(10...600_000).contains(timeout) {
            validator.add("\(field).timeout", "must be 10–600000 milliseconds")
        } else if timeout > interval {
            validator.add("\(field).timeout", "must not exceed the interval (\(interval) ms): a check must end before the next one starts")
        }
        if !(1...100).contains(rise) { validator.add("\(field).rise", "must be 1–100 successful checks") }
        if !(1...100).contains(fall) { validator.add("\(field).fall", "must be 1–100 failed checks") }
        if let path {
            if kind != .http {
                validator.add("\(field).path", "only an http check has a path")
            } else if !path.hasPrefix("/") || path.utf8.count > 1024 || path.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7F }) {
                validator.add("\(field).path", "must start with / and be at most 1024 printable ASCII characters without spaces")
            }
        }
        if let address, address.isUnspecified || address.isMulticast {
            validator.add("\(field).address", "\(address) cannot be connected to (unspecified or multicast)")
        }
    }

    /// "tcp 192.0.2.12:443", "http 192.0.2.12:8080/healthz": what a check connects to, in words.
    public func target(_ address: IPAddress) -> String {
        let endpoint = address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
        return kind == .http ? "http \(endpoint)\(requestPath)" : "tcp \(endpoint)"
    }
}

/// The outcome of one check.
public struct HealthCheckResult: Sendable, Equatable {
    public var ok: Bool
    /// "connected", "HTTP 200", "connection refused", "timed out after 1000 ms", "HTTP 503"…
    public var detail: String
    /// When it finished (Unix milliseconds).
    public var at: Int64
    /// How long it took.
    public var milliseconds: Double

    public init(ok: Bool, detail: String, at: Int64, milliseconds: Double = 0) {
        self.ok = ok
        self.detail = detail
        self.at = at
        self.milliseconds = milliseconds
    }
}

/// The rise/fall state of one checked node: a pure value, fed one result at a time.
///
/// A node starts `unknown`, which serves traffic (a restart must not withdraw every route until
/// the first checks come back); `fall` failures in a row make it `down`, `rise` successes in a
/// row make a down node `up`. An unknown node is `up` after one success: nothing changes for
/// routing, so there is no reason to wait.
public struct NodeHealth: Sendable, Equatable {
    public enum State: String, Sendable {
        case unknown, up, down

        /// Whether the node's next hops are announced.
        public var serves: Bool { self != .down }
    }

    /// A change that moves routes (a node going down, or coming back up).
    public struct Transition: Sendable, Equatable {
        public let from: State
        public let to: State
        /// How many results in a row caused it (`fall` or `rise`).
        public let streak: Int
        public let result: HealthCheckResult
    }

    public let rise: Int
    public let fall: Int
    public private(set) var state: State = .unknown
    public private(set) var successes = 0
    public private(set) var failures = 0
    public private(set) var lastResult: HealthCheckResult?
    /// When `state` last changed (Unix milliseconds), nil while unknown.
    public private(set) var lastChange: Int64?
    /// Times the node went down or came back up.
    public private(set) var transitions = 0
    public private(set) var checks = 0
    public private(set) var failedChecks = 0

    public init(rise: Int, fall: Int) {
        self.rise = max(1, rise)
        self.fall = max(1, fall)
    }

    /// Takes one result; returns the transition when routes must change.
    public mutating func record(_ result: HealthCheckResult) -> Transition? {
        lastResult = result
        checks += 1
        if result.ok {
            successes += 1
            failures = 0
        } else {
            failedChecks += 1
            failures += 1
            successes = 0
        }
        switch state {
        case .unknown where result.ok:
            state = .up
            lastChange = result.at
            return nil
        case .unknown, .up:
            guard failures >= fall else { return nil }
            return move(to: .down, streak: failures, result)
        case .down:
            guard successes >= rise else { return nil }
            return move(to: .up, streak: successes, result)
        }
    }

    private mutating func move(to next: State, streak: Int, _ result: HealthCheckResult) -> Transition {
        let transition = Transition(from: state, to: next, streak: streak, result: result)
        state = next
        lastChange = result.at
        transitions += 1
        return transition
    }

    /// The history reason: "node n2 down: tcp 192.0.2.12:443 connection refused ×3".
    public static func reason(node: String, target: String, _ transition: Transition) -> String {
        "node \(node) \(transition.to.rawValue): \(target) \(transition.result.detail) ×\(transition.streak)"
    }
}
