internal import CDqlite
#if canImport(Glibc)
internal import Glibc
#endif

/// This replica's dqlite node: Raft and the replicated SQLite, running on dqlite's own thread in
/// this process. Clients (this process's store included) reach the cluster through the node's
/// address with dqlite's wire protocol; the node itself never answers Herald's calls directly.
final class ClusterNode: @unchecked Sendable {
    /// Raft's node ID: 1 for the replica that bootstraps a new cluster (dqlite.h: "The very first
    /// node … must have ID #1"), a random one for each replica that joins; kept in the cluster
    /// directory so a restart comes back as the same member.
    let id: UInt64
    /// Where the other replicas and clients reach this node ("host:port").
    let address: String
    let directory: String
    /// Owned; touched only by start/stop, which the store serialises.
    private let node: OpaquePointer

    /// Creates the node (not yet running). `latency` is dqlite's estimate of the one-way network
    /// delay, from which it derives heartbeats and the election timeout.
    init(id: UInt64, address: String, directory: String, latencyMilliseconds: UInt32 = 20) throws(DatabaseError) {
        try Self.loadLibrary()
        self.id = id
        self.address = address
        self.directory = directory
        var created: OpaquePointer?
        let rc = herald_dqlite_node_create(id, address, directory, &created)
        guard rc == 0, let created else {
            let message = created.map { String(cString: herald_dqlite_node_errmsg($0)) } ?? "code \(rc)"
            if let created { herald_dqlite_node_destroy(created) }
            throw DatabaseError.unavailable("cannot create the dqlite node \(id) at \(address) in \(directory): \(message)")
        }
        node = created
        // (From here on `deinit` destroys the node, also when this initializer throws.)
        for (what, code) in [("bind address", herald_dqlite_node_set_bind_address(node, address)),
                             ("network latency", herald_dqlite_node_set_network_latency_ms(node, latencyMilliseconds))] where code != 0 {
            throw DatabaseError.unavailable("cannot set the dqlite node's \(what) (\(address)): \(String(cString: herald_dqlite_node_errmsg(node)))")
        }
    }

    /// Loads libdqlite (once): cluster mode needs it, the single-file default does not.
    static func loadLibrary() throws(DatabaseError) {
        var error = [CChar](repeating: 0, count: 300)
        guard herald_dqlite_load(&error, error.count) == 0 else {
            throw DatabaseError.unavailable(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }

    private var running = false

    func start() throws(DatabaseError) {
        guard !running else { return }
        // dqlite's Raft transport (libuv) writes to peers with plain write(2): a peer that went
        // away would kill the process with SIGPIPE. Herald's own sockets use MSG_NOSIGNAL.
        signal(SIGPIPE, SIG_IGN)
        guard herald_dqlite_node_start(node) == 0 else {
            throw DatabaseError.unavailable("cannot start the dqlite node at \(address): \(String(cString: herald_dqlite_node_errmsg(node)))")
        }
        running = true
    }

    /// Stops serving: in-flight requests finish, connections close, the node's thread exits.
    func stop() {
        guard running else { return }
        running = false
        _ = herald_dqlite_node_stop(node)
    }

    deinit {
        stop()
        herald_dqlite_node_destroy(node)
    }
}
