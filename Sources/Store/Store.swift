internal import CSQLite
internal import DqliteWire
internal import Synchronization

/// Herald's database: the one place that knows the storage engine. The rest of Herald sees
/// transactions, statements and rows (`Database`, `Statement`, `Row`), never files or SQLite.
///
/// The engine here is one SQLite file: one writer connection and one reader connection.
///
/// All writes go through the single writer, one transaction at a time, so concurrent API calls
/// never interleave half-done changes and never fail with SQLITE_BUSY against each other.
/// Reads use their own connection and, thanks to WAL, see the last committed state without
/// waiting for a writer. A `write` that returns has committed with `synchronous=FULL`.
public final class Store: Sendable {
    public let path: String
    let writer: GuardedConnection
    private let reader: GuardedConnection
    /// Counts committed write transactions (see `commitCount`).
    private let commits = Atomic<Int>(0)
    /// Checkpoints the WAL off the commit path (nil when read-only).
    private let checkpointer: Checkpointer?
    /// The schema version after opening (the newest applied migration).
    public let schemaVersion: Int
    /// Migrations applied while opening (empty when the file was already current).
    public let appliedAtOpen: [Migration]
    /// The file (or its directory, or its file system) cannot be written: reads work, every
    /// `write` fails with SQLITE_READONLY, which the API answers with 503.
    public let isReadOnly: Bool
    /// Cluster mode: this replica's dqlite node and the client that reaches the leader. Nil for
    /// the single-file default.
    let cluster: Cluster?

    /// Opens (creating if needed) the database at `path` and brings it to `migrator`'s schema.
    /// Throws `MigrationError` for an edited migration or a database from a newer Herald.
    /// An existing database that cannot be written (read-only file system, file or directory
    /// without write permission) opens read-only when its schema is current.
    /// When a commit is done. `full` (the default): the WAL is synced to disk at every commit,
    /// so an acknowledged change survives power loss; each commit costs an fsync. `normal`: the
    /// WAL is written to the operating system at every commit and synced at checkpoints, so an
    /// acknowledged change survives a crash or `kill -9` of Herald, but the last moments of
    /// changes may be lost if the machine itself loses power (never corrupted: SQLite WAL).
    public enum Synchronous: String, Sendable, CaseIterable {
        case full, normal
    }

    public init(path: String, migrator: Migrator = .herald, now: Int64 = Clock.nowMilliseconds(), synchronous: Synchronous = .full) throws {
        self.path = path
        cluster = nil
        if let writer = try Self.openWriter(path) {
            if synchronous == .normal { try writer.execute("PRAGMA synchronous = NORMAL") }
            isReadOnly = false
            appliedAtOpen = try migrator.migrate(writer, now: now)
            schemaVersion = try migrator.currentVersion(writer)
            let checkpointer = try Checkpointer(path: path)
            checkpointer.attach(to: writer)
            self.checkpointer = checkpointer
            self.writer = GuardedConnection(writer)
            self.reader = GuardedConnection(try Database(path: path, mode: .readOnly))
        } else {
            let first = try Self.openReadOnly(path)
            let version = try migrator.currentVersion(first)
            guard version == migrator.latestVersion else {
                throw DatabaseError(extendedCode: SQLITE_READONLY,
                                    message: "\(path) is read-only and needs migrations \(version + 1)...\(migrator.latestVersion)")
            }
            try migrator.verify(first)
            isReadOnly = true
            appliedAtOpen = []
            schemaVersion = version
            checkpointer = nil
            self.writer = GuardedConnection(first)
            self.reader = GuardedConnection(try Self.openReadOnly(path))
        }
    }

    /// Cluster mode: starts this replica's dqlite node (bootstrapping a new cluster, joining one,
    /// or coming back as the member it was), waits for a leader, and brings the replicated
    /// database to `migrator`'s schema — once, whichever replica gets there first (the
    /// migrator's transaction decides).
    public init(cluster options: ClusterOptions, migrator: Migrator = .herald, now: Int64 = Clock.nowMilliseconds()) throws {
        let cluster = try Cluster(options)
        self.cluster = cluster
        path = options.directory
        isReadOnly = false
        checkpointer = nil
        let writer = Database(engine: DqliteConnection(client: cluster.client, database: Self.clusterDatabase))
        do {
            appliedAtOpen = try migrator.migrate(writer, now: now)
            schemaVersion = try migrator.currentVersion(writer)
        } catch {
            cluster.stop()
            throw error
        }
        self.writer = GuardedConnection(writer)
        reader = GuardedConnection(Database(engine: DqliteConnection(client: cluster.client, database: Self.clusterDatabase)))
    }

    /// The replicated database's name in dqlite.
    static let clusterDatabase = "herald"

    /// True in cluster mode.
    public var isClustered: Bool { cluster != nil }

    /// Cluster mode: the members, the leader and who answered (nil in the single-file default).
    /// Blocks for up to a few hundred milliseconds per unreachable member.
    public func clusterStatus() -> ClusterStatus? {
        cluster?.status()
    }

    /// Cluster mode: the leader's address as this replica's node knows it, nil when it knows none
    /// (and always nil in the single-file default).
    public func clusterLeader() -> String? {
        cluster?.leaderAddress()
    }

    /// Cluster mode: refreshes the member list this replica knows (from the leader).
    public func learnClusterMembers() {
        cluster?.learnMembers()
    }

    /// Cluster mode: this replica's node (ID and address).
    public var clusterNode: (id: UInt64, address: String)? {
        cluster.map { ($0.node.id, $0.node.address) }
    }

    /// Cluster mode: adds a member (as a spare, then a voter) by its node ID and address.
    public func addClusterMember(id: UInt64, address: String, voter: Bool = true) throws {
        guard let cluster else { throw DatabaseError.unavailable("not in cluster mode") }
        try cluster.manage(.add(id: id, address: address), "ADD")
        if voter { try cluster.manage(.assign(id: id, role: .voter), "ASSIGN") }
    }

    /// Cluster mode: removes a member.
    public func removeClusterMember(id: UInt64) throws {
        guard let cluster else { throw DatabaseError.unavailable("not in cluster mode") }
        try cluster.manage(.remove(id: id), "REMOVE")
    }

    /// Cluster mode: hands leadership to another voter (before restarting the leader).
    public func transferLeadership(to id: UInt64) throws {
        guard let cluster else { throw DatabaseError.unavailable("not in cluster mode") }
        try cluster.manage(.transfer(id: id), "TRANSFER")
    }

    /// The page size of a database Herald creates: SQLite's default, 4 KiB. 16 KiB made a bulk
    /// load of a million routes a little faster (7.8 s against 8.0 s through the batch API) but
    /// every small commit writes and syncs four times the bytes: durable allocations fell from
    /// 1,442/s to 772/s (p99 1.1 ms → 38 ms; `scripts/bench/api.sh`), and those are the common
    /// case. An existing file keeps its page size.
    public static let pageSize = 4096

    /// The read-write connection, or nil when the database exists but cannot be written.
    private static func openWriter(_ path: String) throws -> Database? {
        do {
            let writer = try Database(path: path, mode: .readWrite, pageSizeForNewFile: pageSize)
            if writer.opensReadOnly {
                writer.close()
                return nil
            }
            return writer
        } catch {
            if cannotWrite(path) { return nil }
            throw error
        }
    }

    /// True when `path` exists but this process may not write it, its directory (SQLite creates
    /// the -wal and -shm files there) or its file system.
    static func cannotWrite(_ path: String) -> Bool {
        guard access(path, F_OK) == 0 else { return false }
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        return access(path, W_OK) != 0 || access(directory, W_OK) != 0
    }

    /// Read-only, with the WAL index if SQLite can use one, else (read-only file system)
    /// immutable — but never when a -wal file still holds commits immutable mode would ignore.
    static func openReadOnly(_ path: String) throws -> Database {
        do {
            return try Database(path: path, mode: .readOnly)
        } catch {
            var info = stat()
            if stat(path + "-wal", &info) == 0 && info.st_size > 0 { throw error }
            return try Database(path: path, mode: .immutable)
        }
    }

    private func refuseWhenReadOnly() throws {
        if isReadOnly {
            throw DatabaseError(extendedCode: SQLITE_READONLY, message: "\(path) is read-only (its file, directory or file system cannot be written)")
        }
    }

    /// Closes both connections, the reader first, so that the writer's close (the last one)
    /// checkpoints the WAL into the main file and removes it. Further use fails.
    public func close() {
        reader.close()
        checkpointer?.close()
        writer.close()
        cluster?.stop()
    }

    deinit {
        // The writer's WAL hook points at the checkpointer: stop it before either goes.
        checkpointer?.close()
        try? writer.withConnection { db in db.sqlite?.detachWALHook() }
    }

    /// How many `write`s have committed since the store was opened, counted just after each
    /// COMMIT and before `write` returns. Whatever was read after this number was taken is at
    /// least as new as its commits, so a cache of a read can be kept until the number changes.
    public var commitCount: Int { commits.load(ordering: .acquiring) }

    /// Runs `body` in one IMMEDIATE transaction on the writer connection; returns after COMMIT.
    public func write<T: Sendable>(_ body: (Database) throws -> T) throws -> T {
        try refuseWhenReadOnly()
        return try writer.withConnection { db in
            let result = try db.transaction(.immediate, body)
            commits.wrappingAdd(1, ordering: .releasing)
            return result
        }
    }

    /// Like `write`, then runs `afterCommit` with the result once COMMIT succeeded, still holding
    /// the writer lock: whatever `afterCommit` publishes is published in commit order, and only
    /// for commits that happened.
    public func write<T: Sendable>(_ body: (Database) throws -> T, afterCommit: (T) -> Void) throws -> T {
        try refuseWhenReadOnly()
        return try writer.withConnection { db in
            let result = try db.transaction(.immediate, body)
            commits.wrappingAdd(1, ordering: .releasing)
            afterCommit(result)
            return result
        }
    }

    /// Gives back memory the store holds beyond what it uses now: the page cache a bulk change
    /// filled (SQLite keeps up to `cache_size` of pages from the last big transaction).
    public func releaseMemory() {
        _ = try? writer.withConnection { db in db.releaseCache() }
    }

    /// Writes a consistent copy of the database to `path` (which must not exist) while writes go
    /// on; `herald serve --db path` on the copy restores it.
    public func backup(to path: String) throws {
        if let cluster {
            try Self.writeDump(try cluster.dump(Self.clusterDatabase), to: path)
        } else {
            try reader.withConnection { db in try db.backup(to: path) }
        }
        try Self.checkIntegrity(path)
    }

    /// A directory on the database's own file system for a copy of it (`GET /v1/backup` writes
    /// one there before streaming it): the database's directory, or the cluster's data directory.
    /// A copy of the size of the database fits where the database grew; `/tmp` may be a small
    /// tmpfs, and a systemd service may write nowhere else.
    public var scratchDirectory: String {
        if cluster != nil { return path }
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Writes a DUMP (the database file and its WAL, at one commit) as one self-contained file.
    static func writeDump(_ files: [DqliteFile], to path: String) throws {
        guard access(path, F_OK) != 0 else { throw DatabaseError(extendedCode: SQLITE_CANTOPEN, message: "\(path) already exists") }
        for file in files {
            let target = file.name.hasSuffix("-wal") ? path + "-wal" : path
            let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw DatabaseError(extendedCode: SQLITE_CANTOPEN, message: "cannot create \(target): \(String(cString: strerror(errno)))") }
            let written = file.data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            let synced = fsync(fd)
            Glibc.close(fd)
            guard written == file.data.count, synced == 0 else {
                throw DatabaseError(extendedCode: SQLITE_IOERR, message: "cannot write \(target): \(String(cString: strerror(errno)))")
            }
        }
        // Fold the WAL into the file, as a SQLite backup leaves it.
        try SQLiteConnection(path: path, mode: .readWrite).executeScript("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// The same for a database that this process does not serve (`herald backup` beside a
    /// running `herald serve`): read-only, so the server's writes go on.
    public static func backup(databaseAt source: String, to path: String) throws {
        try Database(path: source, mode: .readOnly).backup(to: path)
        try checkIntegrity(path)
    }

    /// The same for a cluster (`herald backup --cluster ADDRESS:PORT`): the database at one
    /// commit, from the leader, found through any member.
    public static func backup(clusterMembers members: [String], to path: String) throws {
        guard let first = members.first else { throw DatabaseError.unavailable("no cluster member to ask") }
        let client = ClusterClient(ownAddress: first, join: Array(members.dropFirst()))
        let leader = try client.connectToLeader()
        defer { leader.close() }
        try leader.send(.dump(name: clusterDatabase))
        let answer = try leader.receive(maximumBodyLength: 4 << 30)
        switch answer {
        case .files(let files): try writeDump(files, to: path)
        case .failure(let failure): throw DatabaseError(extendedCode: Int32(truncatingIfNeeded: failure.code), message: "DUMP: \(failure.message)")
        default: throw DatabaseError.unavailable("DUMP was answered with \(answer.type)")
        }
        try checkIntegrity(path)
    }

    /// Refuses a copy that fails SQLite's integrity check (`herald backup` checks what the API
    /// sent before it keeps it).
    public static func checkIntegrity(ofCopyAt path: String) throws { try checkIntegrity(path) }

    /// Refuses a copy that fails SQLite's integrity check.
    static func checkIntegrity(_ path: String) throws {
        let integrity = try Database(path: path, mode: .readOnly).firstRow("PRAGMA integrity_check")?.get(0, as: String.self)
        guard integrity == "ok" else {
            throw DatabaseError(extendedCode: SQLITE_CORRUPT, message: "the copy \(path) failed its integrity check: \(integrity ?? "no answer")")
        }
    }

    /// Runs `body` on the reader connection in one read transaction (a consistent snapshot).
    /// In cluster mode a read without a leader is answered from the read mirror, unless
    /// `fromLeader` is set: catching up must see the leader's data (and fail without quorum,
    /// which is how a replica learns it has none).
    public func read<T: Sendable>(fromLeader: Bool = false, _ body: (Database) throws -> T) throws -> T {
        do {
            return try reader.withConnection { db in
                try db.transaction(.deferred, body)
            }
        } catch let error as DatabaseError where error.isClusterUnavailability && !fromLeader {
            // No leader (no quorum): reads are answered from this replica's last copy.
            guard let mirror = readMirror.withLock({ $0 }) else { throw error }
            return try mirror.withConnection { db in try db.transaction(.deferred, body) }
        }
    }

    // MARK: - Reads without quorum (cluster mode)

    /// Cluster mode: a local copy of the database (a DUMP from the leader, kept in the cluster
    /// directory) that reads fall back to while no leader is reachable, so the API keeps
    /// answering reads without quorum — with the state of the copy's revision.
    private let readMirror = Mutex<GuardedConnection?>(nil)

    /// Cluster mode: copies the database from the leader into `read-mirror.db` in the cluster
    /// directory and reads from it when the leader is gone. Blocks for the copy (a DUMP: the
    /// whole database); the caller decides how often.
    public func refreshReadMirror() throws {
        guard let cluster else { return }
        let path = cluster.options.directory + "/read-mirror.db"
        let temporary = path + ".next"
        unlink(temporary)
        unlink(temporary + "-wal")
        try Self.writeDump(try cluster.dump(Self.clusterDatabase), to: temporary)
        unlink(temporary + "-wal")
        unlink(temporary + "-shm")
        guard rename(temporary, path) == 0 else {
            throw DatabaseError(extendedCode: SQLITE_IOERR, message: "cannot replace \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        mirrorBytes.store(stat(path, &info) == 0 ? Int(info.st_size) : 0, ordering: .relaxed)
        let fresh = GuardedConnection(try Database(path: path, mode: .readOnly))
        let old = readMirror.withLock { mirror in
            defer { mirror = fresh }
            return mirror
        }
        old?.close()
    }

    /// The size of the last copy, bytes.
    private let mirrorBytes = Atomic<Int>(0)
    public var readMirrorBytes: Int { mirrorBytes.load(ordering: .relaxed) }

    /// True when reads can fall back to a local copy.
    public var hasReadMirror: Bool { readMirror.withLock { $0 != nil } }
}

/// A connection used by one thread at a time. The only `@unchecked Sendable` in Store: the
/// connection is private and every use goes through the lock.
final class GuardedConnection: @unchecked Sendable {
    private let lock = Mutex(())
    private let connection: Database

    init(_ connection: Database) { self.connection = connection }

    func close() {
        lock.withLock { _ in connection.close() }
    }

    func withConnection<T: Sendable>(_ body: (Database) throws -> T) throws -> T {
        try lock.withLock { _ in try body(connection) }
    }
}

/// Wall-clock milliseconds since the Unix epoch, the time unit of every `*_at` column.
public enum Clock {
    public static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif
