internal import DqliteWire
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// How a replica joins the cluster (`herald serve --cluster-dir --cluster-listen
/// [--cluster-join]`).
public struct ClusterOptions: Sendable, Equatable {
    /// Where this replica's dqlite node keeps its Raft log and snapshots, and its identity.
    public var directory: String
    /// The node's address for Raft and clients, "host:port" with an IP address.
    public var listen: String
    /// Members to join through on the first start; empty: bootstrap a new cluster.
    public var join: [String]
    /// dqlite's estimate of the one-way network delay, from which it sets heartbeats and the
    /// election timeout (dqlite derives an election timeout of about 15 × this).
    public var latencyMilliseconds: UInt32

    public init(directory: String, listen: String, join: [String] = [], latencyMilliseconds: UInt32 = 20) {
        self.directory = directory
        self.listen = listen
        self.join = join
        self.latencyMilliseconds = latencyMilliseconds
    }
}

/// A member as the cluster lists it.
public struct ClusterMember: Sendable, Equatable {
    public enum Role: String, Sendable { case voter, standby, spare }
    public let id: UInt64
    public let address: String
    public let role: Role
}

/// What a replica knows of the cluster now.
public struct ClusterStatus: Sendable, Equatable {
    /// This replica's node.
    public let id: UInt64
    public let address: String
    /// The members (nil when no leader answered: no quorum reachable).
    public let members: [ClusterMember]?
    /// The leader's address, when one is known.
    public let leader: String?
    /// Members whose node answered a handshake just now.
    public let reachable: [String]

    public var isLeader: Bool { leader == address }
}

/// This replica's part of the cluster: its dqlite node and the client that reaches the leader.
final class Cluster: Sendable {
    let node: ClusterNode
    let client: ClusterClient
    let options: ClusterOptions

    /// Starts this replica's node, bootstrapping a new cluster or joining one on the first start
    /// and coming back as the same member later, and waits (up to `timeout`) for a leader.
    init(_ options: ClusterOptions, timeoutMilliseconds: Int64 = 30_000) throws(DatabaseError) {
        self.options = options
        try Self.makeDirectory(options.directory)
        let identity = try Identity.load(options.directory)
        if let identity, identity.address != options.listen {
            throw DatabaseError.unavailable("\(options.directory) belongs to member \(identity.id) at \(identity.address), not \(options.listen): "
                + "give the same --cluster-listen, or remove it from the cluster and start with an empty directory")
        }
        // dqlite.h: the node that bootstraps a new cluster has ID 1; a joining one any other.
        let id = identity?.id ?? (options.join.isEmpty ? 1 : UInt64.random(in: 2...UInt64(Int64.max)))
        node = try ClusterNode(id: id, address: options.listen, directory: options.directory, latencyMilliseconds: options.latencyMilliseconds)
        try node.start()
        client = ClusterClient(ownAddress: options.listen, join: options.join)
        if identity == nil && !options.join.isEmpty {
            try join(id: id, deadline: DqliteSocket.now() + timeoutMilliseconds)
        }
        try Identity(id: id, address: options.listen).save(options.directory)
        try waitForLeader(deadline: DqliteSocket.now() + timeoutMilliseconds)
        learnMembers()
    }

    /// Asks the leader for the members, so that "N of M replicas reachable" counts them all and a
    /// leader elected among members added later is found.
    func learnMembers() {
        guard let leader = try? client.connectToLeader() else { return }
        defer { leader.close() }
        if case .nodes(let nodes)? = try? leader.call(.cluster) { client.learn(nodes) }
    }

    /// ADD (as a spare), then ASSIGN voter, through the leader.
    private func join(id: UInt64, deadline: Int64) throws(DatabaseError) {
        var last: DatabaseError?
        while DqliteSocket.now() < deadline {
            do {
                let leader = try client.connectToLeader()
                defer { leader.close() }
                try expectEmpty(try leader.call(.add(id: id, address: options.listen)), "ADD")
                try expectEmpty(try leader.call(.assign(id: id, role: .voter)), "ASSIGN")
                return
            } catch {
                last = error
                usleep(200_000)
            }
        }
        throw last ?? DatabaseError.unavailable("could not join the cluster through \(options.join.joined(separator: ", "))")
    }

    private func waitForLeader(deadline: Int64) throws(DatabaseError) {
        while true {
            do {
                try client.connectToLeader().close()
                return
            } catch {
                if DqliteSocket.now() >= deadline { throw error }
                usleep(100_000)
            }
        }
    }

    func expectEmpty(_ answer: DqliteResponse, _ request: String) throws(DatabaseError) {
        switch answer {
        case .empty: return
        case .failure(let failure): throw DatabaseError(extendedCode: Int32(truncatingIfNeeded: failure.code), message: "\(request): \(failure.message)")
        default: throw DatabaseError.unavailable("\(request) was answered with \(answer.type)")
        }
    }

    func stop() {
        node.stop()
    }

    // MARK: - Status and membership

    /// The leader's address as this replica's own node knows it (nil: none known — no quorum,
    /// or an election under way). One request to the local node: cheap enough to poll.
    func leaderAddress() -> String? {
        guard let socket = try? DqliteSocket(address: node.address, timeoutMilliseconds: 500) else { return nil }
        defer { socket.close() }
        guard case .node(_, let leader)? = try? socket.call(.leader), !leader.isEmpty else { return nil }
        return leader
    }

    func status() -> ClusterStatus {
        var members: [ClusterMember]?
        var leaderAddress: String?
        if let leader = try? client.connectToLeader() {
            leaderAddress = leader.address
            if case .nodes(let nodes)? = try? leader.call(.cluster) {
                client.learn(nodes)
                members = nodes.map { node in
                    ClusterMember(id: node.id, address: node.address, role: node.role == .voter ? .voter : node.role == .standby ? .standby : .spare)
                }
            }
            leader.close()
        }
        // Who answers a handshake and LEADER now: every member known, listed or not.
        var reachable: [String] = []
        for address in client.members {
            if let socket = try? DqliteSocket(address: address, timeoutMilliseconds: 500), (try? socket.call(.leader)) != nil {
                reachable.append(address)
                socket.close()
            }
        }
        return ClusterStatus(id: node.id, address: node.address, members: members, leader: leaderAddress, reachable: reachable)
    }

    /// Runs one membership request on the leader.
    func manage(_ request: DqliteRequest, _ name: String) throws(DatabaseError) {
        let leader = try client.connectToLeader()
        defer { leader.close() }
        try expectEmpty(try leader.call(request), name)
    }

    /// The database's file and WAL from the leader (DUMP).
    func dump(_ database: String) throws(DatabaseError) -> [DqliteFile] {
        let leader = try client.connectToLeader()
        defer { leader.close() }
        // The answer carries the whole database: read it with a limit to match.
        try leader.send(.dump(name: database))
        let answer = try leader.receive(maximumBodyLength: 4 << 30)
        switch answer {
        case .files(let files): return files
        case .failure(let failure): throw DatabaseError(extendedCode: Int32(truncatingIfNeeded: failure.code), message: "DUMP: \(failure.message)")
        default: throw DatabaseError.unavailable("DUMP was answered with \(answer.type)")
        }
    }

    // MARK: - Identity

    /// Who this replica is in the cluster, kept in the cluster directory (`replica`).
    struct Identity: Equatable {
        let id: UInt64
        let address: String

        static func load(_ directory: String) throws(DatabaseError) -> Identity? {
            guard let text = readFile(directory + "/replica") else { return nil }
            let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
            guard parts.count == 2, let id = UInt64(parts[0]) else {
                throw DatabaseError.unavailable("\(directory)/replica is not \"<id> <address>\"")
            }
            return Identity(id: id, address: String(parts[1]))
        }

        func save(_ directory: String) throws(DatabaseError) {
            try writeFile(directory + "/replica", "\(id) \(address)\n")
        }
    }

    static func makeDirectory(_ path: String) throws(DatabaseError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw DatabaseError.unavailable("cannot create the cluster directory \(path): \(String(cString: strerror(errno)))")
        }
    }
}

private func readFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        bytes += chunk[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes `text` to `path` durably (a temporary file, fsync, rename), mode 0600.
private func writeFile(_ path: String, _ text: String) throws(DatabaseError) {
    let temporary = path + ".tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw DatabaseError.unavailable("cannot write \(path): \(String(cString: strerror(errno)))") }
    let bytes = Array(text.utf8)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    let synced = fsync(fd)
    close(fd)
    guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
        throw DatabaseError.unavailable("cannot write \(path): \(String(cString: strerror(errno)))")
    }
}
