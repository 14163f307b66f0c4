public import HTTPServer
public import Store
internal import IP
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
        /// The encoded `StoredPart`, and the commit it was read at.
        let value = Mutex<(commit: Int, encoded: [UInt8])?>(nil)
    }

    public init(store: Store, startedAt: Int64) {
        self.store = store
        self.startedAt = startedAt
    }

    struct Health: Encodable { let status: String }

    /// Everything in the status but the uptime and version, which follow it in key order.
    struct StoredPart: Encodable {
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
        var part: [UInt8]
        if let cached = stored.value.withLock({ $0 }), cached.commit == commit {
            part = cached.encoded
        } else {
            let (speaker, counts) = try read()
            part = try JSONCoding.encode(StoredPart(counts: counts, database: DatabaseStatus(path: store.path, schemaVersion: store.schemaVersion),
                                                    speaker: speaker, startedAt: startedAt))
            stored.value.withLock { [part] in $0 = (commit, part) }
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
                SpeakerStatus(asn: $0.asn, routerId: $0.routerID.description, listen: $0.listen.description, holdTime: $0.holdTime,
                              keepaliveTime: $0.keepaliveTime, gracefulRestart: $0.gracefulRestartEnabled,
                              gracefulRestartTime: $0.gracefulRestartTime)
            }
            return (speaker, try ObjectCounts.read(db))
        }
    }
}
