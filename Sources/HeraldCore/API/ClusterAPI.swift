public import HTTPServer
internal import Store

/// `/v1/cluster`: the replicas (cluster mode, docs/cluster.md) — members and roles, the leader,
/// this replica's contact with it and how far behind it is — and membership changes.
public struct ClusterAPI: Sendable {
    let services: APIServices

    public init(services: APIServices) { self.services = services }

    public func register(on router: Router) {
        router.get("/v1/cluster") { _, _ in try .json(await status()) }
        router.post("/v1/cluster/members") { request, _ in try await add(request) }
        router.delete("/v1/cluster/members/{id}") { _, context in try await remove(try context.parameter("id")) }
        router.post("/v1/cluster/transfer") { request, _ in try await transfer(request) }
    }

    struct MemberBody: Encodable {
        /// A string: node IDs are 64-bit, beyond what a JSON number holds exactly.
        let id: String
        let address: String
        let role: String
        let leader: Bool
        let reachable: Bool
        let this: Bool
    }

    struct ClusterBody: Encodable {
        let mode: String
        let nodeId: String?
        let address: String?
        let leader: String?
        let isLeader: Bool?
        let hasQuorum: Bool?
        let quorumLostSince: String?
        let lastContact: String?
        let revision: Int64?
        let lagRevisions: Int64?
        let degraded: Bool?
        let leaderChanges: Int?
        let lastError: String?
        let members: [MemberBody]?
    }

    func status() async throws -> ClusterBody {
        guard let cluster = services.cluster else {
            return ClusterBody(mode: "single", nodeId: nil, address: nil, leader: nil, isLeader: nil, hasQuorum: nil, quorumLostSince: nil,
                               lastContact: nil, revision: nil, lagRevisions: nil, degraded: nil, leaderChanges: nil, lastError: nil, members: nil)
        }
        let store = services.store
        let live = await Blocking.run { store.clusterStatus() }
        let state = cluster.current
        let members = live?.members.map { members in
            members.map { member in
                MemberBody(id: String(member.id), address: member.address, role: member.role.rawValue, leader: member.address == live?.leader,
                           reachable: live?.reachable.contains(member.address) ?? false, this: member.id == state.nodeID)
            }
        }
        return ClusterBody(mode: "cluster", nodeId: String(state.nodeID), address: state.address, leader: live?.leader ?? state.leader,
                           isLeader: (live?.leader ?? state.leader) == state.address, hasQuorum: state.hasQuorum,
                           quorumLostSince: state.quorumLostSince.map(APITime.format), lastContact: state.lastContact.map(APITime.format),
                           revision: state.revision, lagRevisions: state.lagRevisions, degraded: state.degraded,
                           leaderChanges: state.leaderChanges, lastError: state.lastError, members: members)
    }

    func clusterStore() throws -> Store {
        guard services.cluster != nil else {
            throw HTTPError(.conflict, detail: "Herald runs on one SQLite file: start it with --cluster-dir to run replicas")
        }
        return services.store
    }

    struct MemberInput: Decodable {
        let id: String
        let address: String
        let voter: Bool?
    }

    /// A membership change the cluster refused is a 409 with dqlite's words; no leader is a 503.
    static func membership(_ change: @escaping @Sendable () throws -> Void) async throws {
        do {
            try await Blocking.run(change)
        } catch let error as DatabaseError where !error.isClusterUnavailability {
            throw HTTPError(.conflict, detail: "the cluster refused the change: \(error.message)")
        } catch {
            throw APIErrors.http(error)
        }
    }

    static func nodeID(_ text: String, field: String) throws -> UInt64 {
        guard let id = UInt64(text), id > 0 else { throw ValidationError(field: field, "must be a node ID (a positive 64-bit number, as a string)") }
        return id
    }

    func add(_ request: HTTPRequest) async throws -> HTTPResponse {
        let input = try request.decode(MemberInput.self)
        let id = try Self.nodeID(input.id, field: "id")
        let store = try clusterStore()
        try await Self.membership { try store.addClusterMember(id: id, address: input.address, voter: input.voter ?? true) }
        return try .json(try await status(), status: .created)
    }

    func remove(_ text: String) async throws -> HTTPResponse {
        let id = try Self.nodeID(text, field: "id")
        let store = try clusterStore()
        try await Self.membership { try store.removeClusterMember(id: id) }
        return .noContent
    }

    struct TransferInput: Decodable {
        let id: String
    }

    func transfer(_ request: HTTPRequest) async throws -> HTTPResponse {
        let input = try request.decode(TransferInput.self)
        let id = try Self.nodeID(input.id, field: "id")
        let store = try clusterStore()
        try await Self.membership { try store.transferLeadership(to: id) }
        return try .json(try await status())
    }
}
