public import HTTPServer
public import Store
public import IP
internal import JSON
internal import Synchronization

/// `GET /healthz` and `GET /v1/status`.
public struct StatusAPI: Sendable {
    public let store: Store
    /// Wall-clock milliseconds when the process started.
    public let startedAt: Int64

    /// The stored part of the status, and the `Store.commitCount` it was read at: counting a
    /// million static routes costs milliseconds, and a monitor may ask every second.
    private let stored = StoredStatus()

    private final class StoredStatus: Sendable {
        /// The encoded `StoredPart`, and the commit (and cluster state) it was read at.
        let value = Mutex<(commit: Int, cluster: ClusterPart?, encoded: [UInt8])?>(nil)
    }

    /// Cluster mode: this replica's view of the cluster.
    let cluster: ClusterSupervisor?
    /// Cluster mode: this replica's own router ID (the stored one is not used).
    let localRouterID: IPv4Address?

    public init(store: Store, startedAt: Int64, cluster: ClusterSupervisor? = nil, localRouterID: IPv4Address? = nil) {
        self.store = store
        self.startedAt = startedAt
        self.cluster = cluster
        self.localRouterID = localRouterID
    }

    /// Cluster mode: the replica's standing (the rest is `GET /v1/cluster`).
    struct ClusterPart: Encodable, Equatable {
        let leader: String?
        let isLeader: Bool
        let hasQuorum: Bool
        let degraded: Bool
        let revision: Int64
    }

    struct Health: Encodable { let status: String }

    /// Everything in the status but the uptime and version, which follow it in key order.
    struct StoredPart: Encodable {
        let cluster: ClusterPart?
        let counts: ObjectCounts
        let database: DatabaseStatus
        let speaker: SpeakerStatus?
        let startedAt: Int64
    }

    struct DatabaseStatus: Encodable {
        let path: String
        let schemaVersion: Int
    }

    struct SpeakerStatus: Encodable {
        let asn: UInt32
        let routerId: String
        let listen: String
        let holdTime: Int
        let keepaliveTime: Int
        let gracefulRestart: Bool
        let gracefulRestartTime: Int
    }


    public func register(on router: Router) {
        router.get("/healthz") { _, _ in try .json(Health(status: "ok")) }
        router.get("/v1/status") { _, _ in
            HTTPResponse(status: .ok, headers: ["Content-Type": "application/json"], body: .bytes(try self.statusBody()))
        }
    }

    /// The `/v1/status` JSON, written as `.json` writes it (`JSONCoding`). Monitors poll it, so
    /// the stored part is read and encoded once per commit; a request adds only the uptime.
    func statusBody(now: Int64 = Clock.nowMilliseconds()) throws -> [UInt8] {
        // Taken before the read: a commit that lands during the read makes the next call read
        // again, never the reverse.
        let commit = store.commitCount
        let clusterPart = cluster.map { supervisor in
            let state = supervisor.current
            return ClusterPart(leader: state.leader, isLeader: state.isLeader, hasQuorum: state.hasQuorum, degraded: state.degraded,
                               revision: state.revision)
        }
        var part: [UInt8]
        if let cached = stored.value.withLock({ $0 }), cached.commit == commit, cached.cluster == clusterPart {
            part = cached.encoded
        } else {
            let (speaker, counts) = try read()
            part = try JSONCoding.encode(StoredPart(cluster: clusterPart, counts: counts,
                                                    database: DatabaseStatus(path: store.path, schemaVersion: store.schemaVersion),
                                                    speaker: speaker, startedAt: startedAt))
            stored.value.withLock { [part] in $0 = (commit, clusterPart, part) }
        }
        // The members after the stored ones in key order, as `.json` would sort them.
        guard var body = JSONObjectWriter(extending: part) else { preconditionFailure("an encoded struct is a JSON object") }
        body.add("uptime_seconds", Double(now - startedAt) / 1000)
        body.add("version", HeraldVersion.string)
        return body.encoded
    }

    private func read() throws -> (SpeakerStatus?, ObjectCounts) {
        try store.read { db in
            let speaker = try SpeakerSettings.load(db).map {
                SpeakerStatus(asn: $0.asn, routerId: (localRouterID ?? $0.routerID).description, listen: $0.listen.description, holdTime: $0.holdTime,
                              keepaliveTime: $0.keepaliveTime, gracefulRestart: $0.gracefulRestartEnabled,
                              gracefulRestartTime: $0.gracefulRestartTime)
            }
            return (speaker, try ObjectCounts.read(db))
        }
    }
}
