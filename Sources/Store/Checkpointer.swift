internal import CSQLite
internal import Dispatch
internal import Synchronization

/// Checkpoints the WAL in the background, off the commit path.
///
/// SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1000 pages,
/// before the commit returns: after a bulk load of a million routes that is ~350 MB copied into
/// the database file and synced while the client waits (~0.7 s measured) although the change
/// is already durable (the WAL was synced at COMMIT, `synchronous=FULL`). Here the writer's WAL
/// hook only notes the size, and past the same 1000 pages a passive checkpoint runs on this
/// object's own connection, on its own queue. Crash safety is SQLite's WAL recovery, unchanged.
final class Checkpointer: Sendable {
    /// SQLite's default `wal_autocheckpoint`.
    static let thresholdPages: Int32 = 1000
    private let connection: GuardedConnection
    private let queue = DispatchQueue(label: "herald-checkpoint")
    private let pending = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)

    init(path: String) throws {
        connection = GuardedConnection(try Database(path: path, mode: .readWrite))
    }

    /// Takes over checkpointing from `writer`'s automatic checkpoint.
    func attach(to writer: Database) {
        sqlite3_wal_hook(writer.sqlite!.connection, { context, _, _, pages in
            if let context, pages >= Checkpointer.thresholdPages {
                Unmanaged<Checkpointer>.fromOpaque(context).takeUnretainedValue().request()
            }
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Called on the writer's thread, inside COMMIT: must not block.
    func request() {
        guard !closed.load(ordering: .relaxed), !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queue.async { [self] in
            pending.store(false, ordering: .releasing)
            guard !closed.load(ordering: .acquiring) else { return }
            // Passive: copies what no reader still needs, never waits for a lock. A failure
            // (busy at shutdown) is left to the next checkpoint or to the writer's close.
            try? connection.withConnection { db in
                _ = sqlite3_wal_checkpoint_v2(db.sqlite!.connection, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            }
        }
    }

    /// Waits for a running checkpoint and closes the connection (before the writer closes, so
    /// that the writer's close is the last one and removes the WAL).
    func close() {
        closed.store(true, ordering: .releasing)
        queue.sync {}
        connection.close()
    }
}
