internal import Foundation
internal import HTTPServer
internal import Store
internal import Synchronization

/// `GET /v1/backup`: a consistent copy of the database, streamed to the client, so that
/// `herald backup FILE` works from any host that may use the API, with no access to the
/// database file (a systemd service keeps it in a private state directory).
///
/// The copy is taken with the store's own backup (SQLite's online backup API, or a cluster DUMP
/// from the leader) into a file beside the database, checked with `PRAGMA integrity_check`,
/// unlinked at once and then streamed from its open descriptor: memory stays one chunk whatever
/// the size, nothing is left behind when the client goes away or the process is killed while
/// streaming, and writers are never blocked. One backup at a time: each holds disk space the
/// size of the database.
struct BackupAPI: Sendable {
    let services: APIServices
    private let running = BackupRunning()

    /// Names of the copies being taken, so that one left by a process killed between the copy and
    /// its unlink is removed at the next start.
    static let scratchPrefix = ".herald-backup-"

    init(services: APIServices) {
        self.services = services
        Self.removeLeftovers(in: services.store.scratchDirectory)
    }

    func register(on router: Router) {
        router.get("/v1/backup") { _, _ in try await backup() }
    }

    func backup() async throws -> HTTPResponse {
        guard running.busy.withLock({ busy in defer { busy = true }; return !busy }) else {
            throw HTTPError(.conflict, title: "Backup in progress",
                            detail: "another backup is being taken; try again when it is done", headers: ["Retry-After": "5"])
        }
        let copy: CopiedDatabase
        do {
            let store = services.store
            let running = running
            copy = try await Blocking.run { try CopiedDatabase(store: store, running: running) }
        } catch {
            running.busy.withLock { $0 = false }
            // A full disk beside the database, a failed integrity check, a cluster without a leader.
            throw error as? HTTPError ?? HTTPError(.serviceUnavailable, title: "Backup failed", detail: "the copy could not be taken: \(error)")
        }
        // The stream holds the copy; when it is done or dropped, the copy is closed and the next
        // backup may start.
        let stream = ResponseStream(bufferLimit: 4 * 1024 * 1024, waitsForClient: true) { out in
            var offset: off_t = 0
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            while offset < copy.size {
                let count = chunk.withUnsafeMutableBytes { pread(copy.descriptor, $0.baseAddress, $0.count, offset) }
                guard count > 0 else {
                    throw HTTPError(.internalServerError, detail: "reading the copy failed: \(String(cString: strerror(errno)))")
                }
                offset += off_t(count)
                try await out.write(Array(chunk[..<count]))
            }
        }
        let stamp = APITime.format(Clock.nowMilliseconds()).prefix(10)
        return HTTPResponse(status: .ok, headers: [
            "Content-Type": "application/vnd.sqlite3",
            "Content-Disposition": "attachment; filename=\"herald-\(stamp).db\"",
            "Herald-Backup-Size": String(copy.size),
        ], body: .stream(stream))
    }

    static func removeLeftovers(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(scratchPrefix) {
            unlink(directory + "/" + name)
        }
    }
}

/// Whether a backup is being taken or streamed.
private final class BackupRunning: Sendable {
    let busy = Mutex(false)
}

/// A checked copy of the database, open and already unlinked: the descriptor is all that holds it.
private final class CopiedDatabase: Sendable {
    let descriptor: Int32
    let size: off_t
    private let running: BackupRunning

    init(store: Store, running: BackupRunning) throws {
        self.running = running
        let path = store.scratchDirectory + "/" + BackupAPI.scratchPrefix + UUID().uuidString + ".db"
        defer { for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) } }
        try store.backup(to: path)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw HTTPError(.internalServerError, detail: "cannot open the copy \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            close(descriptor)
            throw HTTPError(.internalServerError, detail: "cannot read the size of the copy: \(String(cString: strerror(errno)))")
        }
        self.descriptor = descriptor
        size = info.st_size
    }

    deinit {
        close(descriptor)
        running.busy.withLock { $0 = false }
    }
}
