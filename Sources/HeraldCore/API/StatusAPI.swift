public import HTTPServer
public import Store
internal import IP
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
        let value = Mutex<(commit: Int, speaker: SpeakerStatus?, counts: Counts)?>(nil)
    }

    public init(store: Store, startedAt: Int64) {
        self.store = store
        self.startedAt = startedAt
    }

    struct Health: Encodable { let status: String }

    struct Status: Encodable {
        let version: String
        let startedAt: Int64
        let uptimeSeconds: Double
        let database: DatabaseStatus
        let speaker: SpeakerStatus?
        let counts: Counts
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

    struct Counts: Encodable {
        let peers: Int
        let nodes: Int
        let pools: Int
        let allocations: Int
        let staticRoutes: Int
    }

    public func register(on router: Router) {
        router.get("/healthz") { _, _ in try .json(Health(status: "ok")) }
        router.get("/v1/status") { _, _ in try .json(try self.status()) }
    }

    func status(now: Int64 = Clock.nowMilliseconds()) throws -> Status {
        // Taken before the read: a commit that lands during the read makes the next call read
        // again, never the reverse.
        let commit = store.commitCount
        let speaker: SpeakerStatus?, counts: Counts
        if let cached = stored.value.withLock({ $0 }), cached.commit == commit {
            (speaker, counts) = (cached.speaker, cached.counts)
        } else {
            (speaker, counts) = try read()
            stored.value.withLock { $0 = (commit, speaker, counts) }
        }
        return Status(version: HeraldVersion.string, startedAt: startedAt, uptimeSeconds: Double(now - startedAt) / 1000,
                      database: DatabaseStatus(path: store.path, schemaVersion: store.schemaVersion), speaker: speaker, counts: counts)
    }

    private func read() throws -> (SpeakerStatus?, Counts) {
        try store.read { db in
            let speaker = try SpeakerSettings.load(db).map {
                SpeakerStatus(asn: $0.asn, routerId: $0.routerID.description, listen: $0.listen.description, holdTime: $0.holdTime,
                              keepaliveTime: $0.keepaliveTime, gracefulRestart: $0.gracefulRestartEnabled,
                              gracefulRestartTime: $0.gracefulRestartTime)
            }
            func count(_ table: String) throws -> Int { try db.firstRow("SELECT count(*) FROM \(table)")!.get(0) }
            return (speaker, Counts(peers: try count("peers"), nodes: try count("nodes"), pools: try count("pools"),
                                    allocations: try count("allocations"), staticRoutes: try count("routes")))
        }
    }
}
