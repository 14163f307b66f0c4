public import IP
public import Logging
public import Store

/// The settings `herald serve` runs with, resolved from flags, then `HERALD_*` environment
/// variables, then built-in defaults. Pure: the command line and environment are inputs.
public struct ServeConfiguration: Sendable, Equatable {
    public var databasePath: String
    public var apiListen: IPEndpoint
    /// Explicitly requested BGP listener; nil keeps the stored speaker setting (or the default
    /// 0.0.0.0:179 for a new database).
    public var bgpListen: IPEndpoint?
    /// Explicitly requested local ASN; nil keeps the stored one (or the default for a new database).
    public var asn: UInt32?
    /// Explicitly requested router ID; nil keeps the stored one (or one picked from the host).
    public var routerID: IPv4Address?
    public var tokenFile: String?
    /// `/metrics` needs a bearer token like the rest of the API (it is public by default).
    public var metricsAuth = false
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    /// What SIGTERM/SIGINT does to BGP sessions.
    public var shutdown: ShutdownPolicy = .gracefulRestart
    /// When a commit counts as done: synced to disk (`full`) or written to the OS (`normal`).
    public var sync: Store.Synchronous = .full
    /// How much route and session history is kept.
    public var retention: HistoryRetention = .default
    /// Cluster mode (`--cluster-dir`); nil: the single SQLite file (`databasePath`).
    public var cluster: Cluster?

    /// One replica of a cluster on dqlite (docs/cluster.md).
    public struct Cluster: Sendable, Equatable {
        /// This replica's dqlite directory (Raft log, snapshots, its identity).
        public var directory: String
        /// Where this replica's node listens for Raft and clients.
        public var listen: IPEndpoint
        /// Members to join through on the first start (empty: bootstrap a new cluster).
        public var join: [IPEndpoint]
        /// How long a replica that has lost the quorum keeps announcing as before; after that it
        /// announces worse paths, so replicas that still have the quorum win at the router.
        public var gracePeriodSeconds: Int
        /// Added to each path's MED once the grace period is over.
        public var degradedMED: UInt32
        /// Extra copies of the local AS prepended once the grace period is over.
        public var degradedPrepend: Int

        public static let defaultGracePeriodSeconds = 30
        public static let defaultDegradedMED: UInt32 = 1000
    }

    /// `graceful-restart` (default): close sessions so RFC 4724 helpers keep Herald's routes
    /// through a restart. `withdraw`: Cease/Administrative Shutdown, so peers drop them at once.
    public enum ShutdownPolicy: String, Sendable, CaseIterable {
        case gracefulRestart = "graceful-restart"
        case withdraw
    }

    public static let defaultDatabasePath = "./herald.db"
    public static let defaultAPIListen = IPEndpoint(address: .v4(IPv4Address(127, 0, 0, 1)), port: 8179)
    public static let defaultBGPListen = IPEndpoint(address: .v4(.any), port: 179)
    /// The first 16-bit private ASN (RFC 6996): a safe default for a lab that has not chosen one.
    public static let defaultASN: UInt32 = 64512

    /// Raw text of each setting as given on the command line (nil when absent).
    public struct Flags: Sendable, Equatable {
        public var db: String?
        public var apiListen: String?
        public var bgpListen: String?
        public var asn: String?
        public var routerID: String?
        public var tokenFile: String?
        public var logLevel: String?
        public var logFormat: String?
        public var shutdown: String?
        public var sync: String?
        public var historyDays: String?
        public var historyRows: String?
        public var clusterDir: String?
        public var clusterListen: String?
        public var clusterJoin: String?
        /// "true" when the flag is given (it takes no value).
        public var clusterTrustedNetwork: String?
        public var clusterGrace: String?
        public var clusterDegradedMED: String?
        public var clusterDegradedPrepend: String?
        /// "true" when the flag is given (it takes no value).
        public var metricsAuth: String?

        public init(db: String? = nil, apiListen: String? = nil, bgpListen: String? = nil, asn: String? = nil,
                    routerID: String? = nil, tokenFile: String? = nil, logLevel: String? = nil, logFormat: String? = nil,
                    shutdown: String? = nil, sync: String? = nil, historyDays: String? = nil, historyRows: String? = nil,
                    clusterDir: String? = nil, clusterListen: String? = nil, clusterJoin: String? = nil, clusterTrustedNetwork: String? = nil,
                    clusterGrace: String? = nil, clusterDegradedMED: String? = nil, clusterDegradedPrepend: String? = nil,
                    metricsAuth: String? = nil) {
            self.metricsAuth = metricsAuth
            self.clusterDir = clusterDir
            self.clusterListen = clusterListen
            self.clusterJoin = clusterJoin
            self.clusterTrustedNetwork = clusterTrustedNetwork
            self.clusterGrace = clusterGrace
            self.clusterDegradedMED = clusterDegradedMED
            self.clusterDegradedPrepend = clusterDegradedPrepend
            self.shutdown = shutdown
            self.sync = sync
            self.historyDays = historyDays
            self.historyRows = historyRows
            self.db = db
            self.apiListen = apiListen
            self.bgpListen = bgpListen
            self.asn = asn
            self.routerID = routerID
            self.tokenFile = tokenFile
            self.logLevel = logLevel
            self.logFormat = logFormat
        }
    }

    /// One setting: its flag and its environment variable.
    public enum Setting: String, Sendable, CaseIterable {
        case db, apiListen, bgpListen, asn, routerID, tokenFile, metricsAuth, logLevel, logFormat, shutdown, sync, historyDays, historyRows
        case clusterDir, clusterListen, clusterJoin, clusterTrustedNetwork, clusterGrace, clusterDegradedMED, clusterDegradedPrepend

        public var flag: String {
            switch self {
            case .db: "--db"
            case .apiListen: "--api-listen"
            case .bgpListen: "--bgp-listen"
            case .asn: "--asn"
            case .routerID: "--router-id"
            case .tokenFile: "--token-file"
            case .metricsAuth: "--metrics-auth"
            case .logLevel: "--log-level"
            case .logFormat: "--log-format"
            case .shutdown: "--shutdown"
            case .sync: "--sync"
            case .historyDays: "--history-days"
            case .historyRows: "--history-rows"
            case .clusterDir: "--cluster-dir"
            case .clusterListen: "--cluster-listen"
            case .clusterJoin: "--cluster-join"
            case .clusterTrustedNetwork: "--cluster-trusted-network"
            case .clusterGrace: "--cluster-grace"
            case .clusterDegradedMED: "--cluster-degraded-med"
            case .clusterDegradedPrepend: "--cluster-degraded-prepend"
            }
        }

        /// HERALD_ and the flag in upper snake case: --api-listen → HERALD_API_LISTEN.
        public var environment: String {
            "HERALD_" + flag.dropFirst(2).uppercased().replacingDashes()
        }

        func flagValue(_ flags: Flags) -> String? {
            switch self {
            case .db: flags.db
            case .apiListen: flags.apiListen
            case .bgpListen: flags.bgpListen
            case .asn: flags.asn
            case .routerID: flags.routerID
            case .tokenFile: flags.tokenFile
            case .metricsAuth: flags.metricsAuth
            case .logLevel: flags.logLevel
            case .logFormat: flags.logFormat
            case .shutdown: flags.shutdown
            case .sync: flags.sync
            case .historyDays: flags.historyDays
            case .historyRows: flags.historyRows
            case .clusterDir: flags.clusterDir
            case .clusterListen: flags.clusterListen
            case .clusterJoin: flags.clusterJoin
            case .clusterTrustedNetwork: flags.clusterTrustedNetwork
            case .clusterGrace: flags.clusterGrace
            case .clusterDegradedMED: flags.clusterDegradedMED
            case .clusterDegradedPrepend: flags.clusterDegradedPrepend
            }
        }
    }

    /// Resolves every setting; the first invalid one is reported with its flag and variable.
    public static func resolve(flags: Flags, environment: [String: String]) throws(ConfigurationError) -> ServeConfiguration {
        func value(_ setting: Setting) -> (text: String, setting: Setting, source: String)? {
            if let text = setting.flagValue(flags) { return (text, setting, setting.flag) }
            if let text = environment[setting.environment], !text.isEmpty { return (text, setting, setting.environment) }
            return nil
        }
        func parse<T>(_ key: Setting, _ body: (String) throws(ConfigurationError.Reason) -> T) throws(ConfigurationError) -> T? {
            guard let (text, setting, source) = value(key) else { return nil }
            do { return try body(text) } catch {
                throw ConfigurationError(setting: setting, source: source, value: text, reason: error.text)
            }
        }

        let databasePath = try parse(.db) { text throws(ConfigurationError.Reason) in
            guard !text.isEmpty else { throw .init("must not be empty") }
            return text
        } ?? defaultDatabasePath
        let apiListen = try parse(.apiListen, endpoint) ?? defaultAPIListen
        let bgpListen = try parse(.bgpListen, endpoint)
        let asn = try parse(.asn, parseASN)
        let routerID = try parse(.routerID) { text throws(ConfigurationError.Reason) in
            let id: IPv4Address
            do throws(IPParseError) { id = try IPv4Address(parsing: text) } catch { throw .init("is not an IPv4 address: \(error.reason)") }
            // RFC 6286 §2.1: the BGP Identifier is a non-zero 32-bit value.
            guard id != .any else { throw .init("must not be 0.0.0.0 (RFC 6286: the BGP identifier is non-zero)") }
            return id
        }
        let tokenFile = try parse(.tokenFile) { text throws(ConfigurationError.Reason) in
            guard !text.isEmpty else { throw .init("must not be empty") }
            return text
        }
        let metricsAuth = try parse(.metricsAuth, boolean) ?? false
        /// One of an enumeration's values, written in any case; the error lists them (or says
        /// `expected`).
        func choice<T: RawRepresentable & CaseIterable>(_ key: Setting, expected: String? = nil) throws(ConfigurationError) -> T?
            where T.RawValue == String {
            try parse(key) { text throws(ConfigurationError.Reason) in
                guard let value = T(rawValue: text.lowercased()) else {
                    throw .init(expected ?? "expected one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return value
            }
        }
        let logLevel: Logger.Level = try choice(.logLevel) ?? .info
        let logFormat: LogFormat = try choice(.logFormat) ?? .logfmt
        let sync: Store.Synchronous = try choice(.sync, expected: "expected full (commits survive power loss) or normal (commits survive a crash of Herald, not of the machine)") ?? .full
        let shutdown: ShutdownPolicy = try choice(.shutdown) ?? .gracefulRestart

        func positive(_ text: String) throws(ConfigurationError.Reason) -> Int {
            guard let value = Int(text), value >= 1 else { throw .init("must be a whole number of at least 1") }
            return value
        }
        let days = try parse(.historyDays, positive) ?? 90
        let rows = try parse(.historyRows, positive) ?? 1_000_000
        let cluster = try resolveCluster(value: value, parse: parse)
        if cluster != nil, let given = value(.db) {
            throw ConfigurationError(setting: .db, source: given.source, value: given.text,
                                     reason: "is not used in cluster mode: the database lives in --cluster-dir; give one or the other")
        }

        return ServeConfiguration(databasePath: databasePath, apiListen: apiListen, bgpListen: bgpListen, asn: asn,
                                  routerID: routerID, tokenFile: tokenFile, metricsAuth: metricsAuth, logLevel: logLevel, logFormat: logFormat, shutdown: shutdown, sync: sync,
                                  retention: HistoryRetention(maxAgeDays: days, maxRows: rows), cluster: cluster)
    }

    /// The cluster settings, when `--cluster-dir` is given; every other cluster flag needs it.
    private static func resolveCluster(
        value: (Setting) -> (text: String, setting: Setting, source: String)?,
        parse: (Setting, (String) throws(ConfigurationError.Reason) -> Any) throws(ConfigurationError) -> Any?
    ) throws(ConfigurationError) -> Cluster? {
        func typed<T>(_ key: Setting, _ body: @escaping (String) throws(ConfigurationError.Reason) -> T) throws(ConfigurationError) -> T? {
            try parse(key) { text throws(ConfigurationError.Reason) -> Any in try body(text) } as? T
        }
        guard let directory = try typed(.clusterDir, { text throws(ConfigurationError.Reason) -> String in
            guard !text.isEmpty else { throw .init("must not be empty") }
            return text
        }) else {
            for setting in Setting.allCases where setting.rawValue.hasPrefix("cluster") {
                if let given = value(setting) {
                    throw ConfigurationError(setting: setting, source: given.source, value: given.text, reason: "needs --cluster-dir (cluster mode)")
                }
            }
            return nil
        }
        guard let listen = try typed(.clusterListen, endpoint) else {
            let given = value(.clusterDir)!
            throw ConfigurationError(setting: .clusterListen, source: given.source, value: given.text,
                                     reason: "needs --cluster-listen ADDRESS:PORT too: where the other replicas reach this one")
        }
        let join = try typed(.clusterJoin) { text throws(ConfigurationError.Reason) -> [IPEndpoint] in
            try text.split(separator: ",").map { part throws(ConfigurationError.Reason) in try endpoint(part.trimmingCharacters(in: .whitespaces)) }
        } ?? []
        let trusted = try typed(.clusterTrustedNetwork, boolean) ?? false
        // dqlite 1.11's Raft and client traffic is plain TCP: refuse to put it anywhere but
        // loopback unless the operator says the network is trusted (docs/cluster.md).
        if !listen.address.isLoopback && !trusted {
            let given = value(.clusterListen)!
            throw ConfigurationError(setting: .clusterListen, source: given.source, value: given.text,
                                     reason: "is not a loopback address, and Raft traffic has no TLS in dqlite 1.11: keep it on a trusted network (a VLAN or WireGuard between the replicas) and say so with --cluster-trusted-network")
        }
        func natural(_ text: String) throws(ConfigurationError.Reason) -> Int {
            guard let value = Int(text), value >= 0 else { throw .init("must be a whole number of at least 0") }
            return value
        }
        let grace = try typed(.clusterGrace, natural) ?? Cluster.defaultGracePeriodSeconds
        let med = try typed(.clusterDegradedMED) { text throws(ConfigurationError.Reason) -> UInt32 in
            guard let value = UInt32(text) else { throw .init("must be 0–4294967295") }
            return value
        } ?? Cluster.defaultDegradedMED
        let prepend = try typed(.clusterDegradedPrepend) { text throws(ConfigurationError.Reason) -> Int in
            guard let value = Int(text), (0...16).contains(value) else { throw .init("must be 0–16") }
            return value
        } ?? 0
        return Cluster(directory: directory, listen: listen, join: join, gracePeriodSeconds: grace, degradedMED: med, degradedPrepend: prepend)
    }

    /// A switch given as a flag ("true") or in the environment (1/true/yes, 0/false/no).
    static func boolean(_ text: String) throws(ConfigurationError.Reason) -> Bool {
        switch text.lowercased() {
        case "1", "true", "yes": return true
        case "0", "false", "no": return false
        default: throw .init("expected true or false")
        }
    }

    static func endpoint(_ text: String) throws(ConfigurationError.Reason) -> IPEndpoint {
        do { return try IPEndpoint(parsing: text) } catch { throw .init(error.reason) }
    }

    /// An ASN as a plain number (RFC 6793) or in asdot notation "high.low" (RFC 5396).
    public static func parseASN(_ text: String) throws(ConfigurationError.Reason) -> UInt32 {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let value: UInt32
        if parts.count == 2, let high = UInt16(parts[0]), let low = UInt16(parts[1]) {
            value = UInt32(high) << 16 | UInt32(low)
        } else if parts.count == 1, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let number = UInt32(text) {
            value = number
        } else {
            throw .init("is not an AS number: expected 1–4294967295 or asdot such as 1.10")
        }
        guard value != 0 else { throw .init("AS 0 is reserved (RFC 7607) and cannot be used") }
        guard value != 23456 else { throw .init("AS 23456 is AS_TRANS (RFC 6793), a placeholder, not a real AS number") }
        return value
    }
}

extension String {
    func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}

/// A setting that could not be used: which flag or variable, what it said, and why.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let setting: ServeConfiguration.Setting
    /// The flag or environment variable the value came from.
    public let source: String
    public let value: String
    public let reason: String

    public var description: String {
        "\(source) \"\(value)\" \(reason) (set with \(setting.flag) or \(setting.environment))"
    }

    public struct Reason: Error, Sendable {
        public let text: String
        public init(_ text: String) { self.text = text }
    }
}
