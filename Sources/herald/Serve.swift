import ArgumentParser
import BGPSpeaker
import Foundation
import HTTPServer
import HeraldCore
import IP
import Logging
import Sockets
import Store

/// `herald serve`: open the database, bring it to the current schema, and run until SIGINT or
/// SIGTERM. Every flag can also be given as a `HERALD_*` environment variable; a flag wins.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Herald: the API, the BGP speaker and the database.",
        discussion: """
            Every option can also be set with an environment variable (shown in brackets); \
            an option on the command line wins over the variable.
            """
    )

    @Option(name: .long, help: "SQLite database file, created if missing. [HERALD_DB] (default: ./herald.db)")
    var db: String?

    @Option(name: .long, help: "Address and port of the REST API. [HERALD_API_LISTEN] (default: 127.0.0.1:8179)")
    var apiListen: String?

    @Option(name: .long, help: "Address and port for incoming BGP sessions. [HERALD_BGP_LISTEN] (default: 0.0.0.0:179)")
    var bgpListen: String?

    @Option(name: .long, help: "Local AS number, plain or asdot; kept in the database. [HERALD_ASN] (default on first start: 64512)")
    var asn: String?

    @Option(name: .customLong("router-id"), help: "BGP router ID (IPv4); kept in the database. [HERALD_ROUTER_ID] (default on first start: the address of the interface toward the default route)")
    var routerID: String?

    @Option(name: .long, help: "File of API bearer tokens, one per line. [HERALD_TOKEN_FILE]; a single token may also come from HERALD_TOKEN")
    var tokenFile: String?

    @Flag(name: .long, help: "/metrics needs a bearer token like the rest of the API (by default it is public, for a scraper on loopback). [HERALD_METRICS_AUTH]")
    var metricsAuth = false

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical. [HERALD_LOG_LEVEL] (default: info)")
    var logLevel: String?

    @Option(name: .long, help: "logfmt or json. [HERALD_LOG_FORMAT] (default: logfmt)")
    var logFormat: String?

    @Option(name: .long, help: "Days of route and session history kept. [HERALD_HISTORY_DAYS] (default: 90)")
    var historyDays: String?

    @Option(name: .long, help: "Most rows of route (and of session) history kept. [HERALD_HISTORY_ROWS] (default: 1000000)")
    var historyRows: String?

    @Option(name: .long, help: "When a change counts as saved: full (synced to disk at every commit: survives power loss) or normal (written to the OS: survives a crash of Herald, not a power cut; several times the write rate on slow disks). [HERALD_SYNC] (default: full)")
    var sync: String?

    @Option(name: .long, help: "On SIGTERM: graceful-restart (peers keep the routes while Herald restarts) or withdraw (peers drop them at once). [HERALD_SHUTDOWN] (default: graceful-restart)")
    var shutdown: String?

    @Option(name: .long, help: "Cluster mode: this replica's dqlite directory (docs/cluster.md). [HERALD_CLUSTER_DIR] (default: off, one SQLite file)")
    var clusterDir: String?

    @Option(name: .long, help: "Cluster mode: this replica's Raft address, ADDRESS:PORT. [HERALD_CLUSTER_LISTEN]")
    var clusterListen: String?

    @Option(name: .long, help: "Cluster mode, first start: members to join through, ADDRESS:PORT,… (none: bootstrap a new cluster). [HERALD_CLUSTER_JOIN]")
    var clusterJoin: String?

    @Flag(name: .long, help: "Cluster mode: the network between the replicas is trusted (dqlite's Raft traffic has no TLS); needed for a non-loopback --cluster-listen. [HERALD_CLUSTER_TRUSTED_NETWORK]")
    var clusterTrustedNetwork = false

    @Option(name: .long, help: "Cluster mode: seconds without quorum before this replica announces worse paths. [HERALD_CLUSTER_GRACE] (default: 30)")
    var clusterGrace: String?

    @Option(name: .customLong("cluster-degraded-med"), help: "Cluster mode: MED added to every path after the grace period. [HERALD_CLUSTER_DEGRADED_MED] (default: 1000)")
    var clusterDegradedMED: String?

    @Option(name: .long, help: "Cluster mode: extra AS-path prepends after the grace period. [HERALD_CLUSTER_DEGRADED_PREPEND] (default: 0)")
    var clusterDegradedPrepend: String?

    func run() async throws {
        let startedAt = Clock.nowMilliseconds()
        let environment = ProcessInfo.processInfo.environment
        let configuration: ServeConfiguration
        do {
            configuration = try ServeConfiguration.resolve(
                flags: .init(db: db, apiListen: apiListen, bgpListen: bgpListen, asn: asn, routerID: routerID,
                             tokenFile: tokenFile, logLevel: logLevel, logFormat: logFormat, shutdown: shutdown, sync: sync,
                             historyDays: historyDays, historyRows: historyRows, clusterDir: clusterDir, clusterListen: clusterListen,
                             clusterJoin: clusterJoin, clusterTrustedNetwork: clusterTrustedNetwork ? "true" : nil, clusterGrace: clusterGrace,
                             clusterDegradedMED: clusterDegradedMED, clusterDegradedPrepend: clusterDegradedPrepend,
                             metricsAuth: metricsAuth ? "true" : nil),
                environment: environment)
        } catch {
            FileHandle.standardError.write(Data("herald serve: \(error)\n".utf8))
            throw ExitCode(64)  // EX_USAGE
        }

        let level = configuration.logLevel
        let format = configuration.logFormat
        LoggingSystem.bootstrap { label in StructuredLogHandler(label: label, level: level, format: format) }
        let logger = Logger(label: "herald")
        TerminationSignal.install()
        // Before anything opens a descriptor: the soft limit up to the hard one, and HTTP sized
        // so that it can never take the descriptors BGP, BFD, health checks and SQLite need.
        let descriptorLimit = DescriptorBudget.raiseSoftLimit()

        // Tokens are read now so that a bad --token-file stops the start, not the first request.
        let tokens: [String]
        do {
            tokens = try APITokens.load(file: configuration.tokenFile, environmentToken: environment["HERALD_TOKEN"])
        } catch {
            logger.critical("cannot read API tokens", metadata: ["error": "\(error)"])
            throw ExitCode(78)  // EX_CONFIG
        }
        if configuration.metricsAuth && tokens.isEmpty {
            // Accepted and ignored would leave /metrics as open as before: refuse instead.
            logger.critical("--metrics-auth needs an API token (--token-file or HERALD_TOKEN); without one every path is public")
            throw ExitCode(78)
        }

        let store: Store
        do {
            if let cluster = configuration.cluster {
                logger.info("starting this replica's dqlite node", metadata: ["dir": "\(cluster.directory)", "listen": "\(cluster.listen)",
                                                                              "join": "\(cluster.join.map(\.description).joined(separator: ","))"])
                store = try Store(cluster: ClusterOptions(directory: cluster.directory, listen: cluster.listen.description,
                                                          join: cluster.join.map(\.description)))
            } else {
                store = try Store(path: configuration.databasePath, synchronous: configuration.sync)
            }
        } catch let error as MigrationError {
            logger.critical("database refused", metadata: ["path": "\(configuration.databasePath)", "error": "\(error)"])
            throw ExitCode(78)
        } catch {
            logger.critical("cannot open database", metadata: ["path": "\(configuration.databasePath)", "error": "\(error)"])
            throw ExitCode(74)  // EX_IOERR
        }
        if store.isReadOnly {
            // A read-only volume (or file) is served rather than refused: routers keep getting
            // the stored routes and the API keeps answering reads; each change gets 503.
            logger.warning("database is read-only: serving reads and the stored routes; changes get 503 until it is writable and Herald restarts",
                           metadata: ["path": "\(configuration.databasePath)"])
        }
        for migration in store.appliedAtOpen {
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
        }

        // Cluster mode: this replica's name in the replication log, its own router ID, and its
        // own BGP listener when --bgp-listen gives one.
        let replica = store.clusterNode.map(\.address)
        // The host's router ID, chosen once (it reads the route table and the interfaces), and
        // only when none is given.
        let hostRouterID = configuration.routerID == nil ? HostAddresses.defaultRouterID() : nil
        let localRouterID = configuration.cluster == nil ? nil
            : configuration.routerID ?? hostRouterID?.routerID ?? IPv4Address(127, 0, 0, 1)
        let localListen = configuration.cluster == nil ? nil : configuration.bgpListen
        let bootstrap: SpeakerBootstrap
        do {
            bootstrap = try SpeakerBootstrap.run(store: store, configuration: configuration,
                                                 hostRouterID: { hostRouterID?.routerID },
                                                 now: Clock.nowMilliseconds(), replica: replica)
        } catch {
            logger.critical("cannot store speaker settings", metadata: ["error": "\(error)"])
            throw ExitCode(74)
        }
        let speaker = bootstrap.settings
        if bootstrap.created {
            // Say how the router ID was chosen when nobody gave one: it is stored, and every
            // OPEN carries it from now on.
            let chosen = hostRouterID.map { "\($0.routerID): \($0.reason)" }
            logger.info("speaker created", metadata: ["asn": "\(speaker.asn)", "router_id": "\(chosen ?? "\(speaker.routerID)")",
                                                      "bgp_listen": "\(speaker.listen)"])
        }
        for change in bootstrap.changes {
            logger.notice("speaker setting changed by start-up option", metadata: ["change": "\(change)"])
        }

        // The API: one event loop serves HTTP now and BGP sessions later.
        let loop: EventLoop
        do { loop = try EventLoop() } catch {
            logger.critical("cannot create the event loop", metadata: ["error": "\(error)"])
            throw ExitCode(71)  // EX_OSERR
        }
        let events = EventPublisher(epoch: startedAt)
        let metrics = Metrics()
        let committer: Committer
        do {
            committer = try Committer(store: store, events: events, replica: replica, localRouterID: localRouterID, localListen: localListen,
                                      commitObserver: { metrics.observeCommit(seconds: $0) })
        } catch {
            logger.critical("cannot derive routes from the database", metadata: ["error": "\(error)"])
            throw ExitCode(74)
        }
        // The BGP speaker shares the event loop; it follows the committer: every committed peer
        // and route at start, then every change in commit order.
        let bgp = Speaker(settings: SpeakerMapping.settings(speaker, restarting: !bootstrap.created && configuration.cluster == nil,
                                                            routerID: localRouterID, listen: localListen),
                          loop: loop, logger: Logger(label: "herald.bgp"))
        let bridge = SpeakerBridge(speaker: bgp, committer: committer, logger: logger)
        let sessionEvents = await bgp.events()
        let recording = Task { await SessionRecorder(committer: committer, logger: logger).record(sessionEvents) }
        let following: Task<Void, Never>
        do { following = try await bridge.start() } catch {
            logger.critical("cannot start the BGP speaker", metadata: ["error": "\(error)"])
            throw ExitCode(71)
        }
        // Node health checks run on the same loop; their transitions are route changes. History
        // stays bounded: pruned at start, then whenever a look every 30 s finds a table past its
        // bounds. In cluster mode both run on the leader only (the supervisor starts them when
        // this replica becomes leader).
        let healthChecks = HealthChecks()
        let retention = configuration.retention
        let leaderJobs: @Sendable () async -> (@Sendable () async -> Void) = { [logger] in
            let health = NodeHealthMonitor(loop: loop, committer: committer, logger: Logger(label: "herald.health"))
            do { try await health.start() } catch {
                logger.error("cannot start node health checks", metadata: ["error": "\(error)"])
            }
            healthChecks.set(health)
            // Rows written before migration 0006 get their prefix key, a batch per commit; the
            // history's prefix queries are correct meanwhile, only slower (they test those rows).
            let keying = Task.detached {
                do {
                    let rows = try await RouteHistory.fillPrefixKeys(committer)
                    if rows > 0 { logger.info("indexed history rows by prefix", metadata: ["rows": "\(rows)"]) }
                } catch {
                    logger.warning("cannot index history rows by prefix; the next start (or next leader) tries again", metadata: ["error": "\(error)"])
                }
            }
            let pruning = Task.detached {
                var first = true
                while !Task.isCancelled {
                    do {
                        let now = Clock.nowMilliseconds()
                        if try await first ? true : retention.isPastBounds(committer, now: now) {
                            let deleted = try await retention.prune(committer, now: now)
                            if deleted > 0 { logger.info("pruned history", metadata: ["rows": "\(deleted)"]) }
                        }
                        first = false
                    } catch {
                        logger.warning("cannot prune history", metadata: ["error": "\(error)"])
                    }
                    try? await Task.sleep(for: HistoryRetention.checkInterval)
                }
            }
            return {
                keying.cancel()
                pruning.cancel()
                healthChecks.set(nil)
                await health.stop()
            }
        }
        var supervisor: ClusterSupervisor?
        var supervising: Task<Void, Never>?
        var stopLeaderJobs: (@Sendable () async -> Void)?
        if let cluster = configuration.cluster {
            let watcher = ClusterSupervisor(store: store, committer: committer, speaker: bgp, settings: cluster,
                                            logger: Logger(label: "herald.cluster"), leaderJobs: leaderJobs)
            supervisor = watcher
            supervising = Task { await watcher.run() }
        } else {
            stopLeaderJobs = await leaderJobs()
        }
        let router = Router()
        APIServices(committer: committer, bridge: bridge, healthChecks: healthChecks, cluster: supervisor)
            .register(on: router, startedAt: startedAt, metrics: metrics)
        var httpConfiguration = HTTPServer.Configuration(
            address: configuration.apiListen.address, port: configuration.apiListen.port, tokens: tokens,
            logger: Logger(label: "herald.http"))
        httpConfiguration.observer = { metrics.observe($0) }
        httpConfiguration.bodyLimits = RoutesAPI.bodyLimits
        httpConfiguration.maxConnections = DescriptorBudget.httpConnections(limit: descriptorLimit)
        // The status page holds no data and asks for the token itself.
        httpConfiguration.publicPaths.insert("/")
        if configuration.metricsAuth { httpConfiguration.publicPaths.remove("/metrics") }
        do { try httpConfiguration.validateExposure() } catch {
            logger.critical("refusing to start", metadata: ["reason": "\(error.description)"])
            throw ExitCode(78)
        }
        let server = HTTPServer(loop: loop, configuration: httpConfiguration, router: router)
        do { try await server.start() } catch {
            logger.critical("cannot listen for the API", metadata: ["address": "\(configuration.apiListen)", "error": "\(error)"])
            throw ExitCode(74)
        }
        let apiAddress = server.localAddress.map { "\($0)" } ?? "\(configuration.apiListen)"

        let bgpListening = await bgp.listeningAddresses()
        logger.info("herald started", metadata: [
            "version": "\(HeraldVersion.string)",
            "db": "\(configuration.cluster.map { "cluster \($0.directory) (\($0.listen))" } ?? configuration.databasePath)",
            "schema_version": "\(store.schemaVersion)",
            "api_listen": "\(apiAddress)",
            "asn": "\(speaker.asn)",
            "router_id": "\(localRouterID ?? speaker.routerID)",
            "api_tokens": "\(tokens.count)",
            "descriptors": "\(descriptorLimit) (HTTP connections at most \(httpConfiguration.maxConnections))",
            "bgp_listen": "\(bgpListening.isEmpty ? "none (outgoing sessions only)" : bgpListening.joined(separator: ","))",
            "routes": "\(committer.desiredRouteCount)",
        ])

        let signal = await TerminationSignal.wait()
        logger.info("shutting down", metadata: ["signal": "\(TerminationSignal.name(signal))"])
        // End event streams, stop accepting, let in-flight requests finish (bounded); then leave
        // BGP as --shutdown says, and close the loop.
        events.finish()
        await server.shutdown(gracePeriod: .seconds(5))
        switch configuration.shutdown {
        case .gracefulRestart:
            logger.info("closing BGP sessions for a graceful restart: peers keep Herald's routes for the restart time")
            await bgp.shutdown(mode: .gracefulRestart)
        case .withdraw:
            logger.info("closing BGP sessions with Cease/Administrative Shutdown: peers drop Herald's routes")
            await bgp.shutdown(mode: .withdraw(message: "Herald shutting down"))
        }
        supervising?.cancel()
        await supervising?.value
        await stopLeaderJobs?()
        // The speaker's shutdown ended its event stream after the last session went down: the
        // recorder writes those final events (through the committer) before it finishes.
        await recording.value
        committer.finish()
        await following.value
        loop.shutdown()
        // Every write was committed before it was acknowledged; closing checkpoints the WAL.
        store.close()
        logger.info("stopped")
    }
}
