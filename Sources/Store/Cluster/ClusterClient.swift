internal import DqliteWire
internal import Synchronization

/// Finds the cluster's leader and opens connections to it: dqlite runs every statement on the
/// Raft leader, whichever replica asks.
final class ClusterClient: Sendable {
    /// This replica's node address (its own node is always a candidate).
    let ownAddress: String
    /// Sent in CLIENT: one per process, so the leader can tell its clients apart.
    let clientID: UInt64
    /// Per request, answer included.
    let timeoutMilliseconds: Int32
    /// Every member address known: this node, the addresses given to join, and what CLUSTER
    /// answered since. The last known leader first.
    private let known: Mutex<(members: [String], leader: String?)>

    init(ownAddress: String, join: [String], timeoutMilliseconds: Int32 = 2_000) {
        self.ownAddress = ownAddress
        self.clientID = UInt64.random(in: 1...UInt64.max)
        self.timeoutMilliseconds = timeoutMilliseconds
        var members = [ownAddress]
        for address in join where !members.contains(address) { members.append(address) }
        known = Mutex((members, nil))
    }

    /// The member addresses known now.
    var members: [String] { known.withLock { $0.members } }

    /// Remembers the members a CLUSTER answer listed (so a leader found later may be a node
    /// added after this replica started).
    func learn(_ nodes: [DqliteNode]) {
        known.withLock { state in
            for node in nodes where !state.members.contains(node.address) { state.members.append(node.address) }
        }
    }

    /// A connection to the leader, registered as a client. Throws `DatabaseError.unavailable`
    /// saying how many members answered when none is, or knows, the leader (no quorum).
    func connectToLeader() throws(DatabaseError) -> DqliteSocket {
        let (members, lastLeader) = known.withLock { ($0.members, $0.leader) }
        var candidates = lastLeader.map { [$0] } ?? []
        candidates += members.filter { $0 != lastLeader }
        var tried: Set<String> = []
        var answered: Set<String> = []
        var problems: [String] = []
        var index = 0
        while index < candidates.count {
            let address = candidates[index]
            index += 1
            guard tried.insert(address).inserted else { continue }
            let socket: DqliteSocket
            do { socket = try DqliteSocket(address: address, timeoutMilliseconds: timeoutMilliseconds) } catch {
                problems.append(error.message)
                continue
            }
            do {
                let answer = try socket.call(.leader)
                answered.insert(address)
                guard case .node(_, let leader) = answer else {
                    problems.append("\(address) answered LEADER with \(answer.type)")
                    continue
                }
                if leader == address {
                    // RFC-less but dqlite's rule (go-dqlite's connector): register, then use it.
                    guard case .welcome = try socket.call(.client(id: clientID)) else {
                        problems.append("\(address) refused CLIENT")
                        continue
                    }
                    known.withLock { $0.leader = address }
                    return socket
                }
                // This node knows the leader (or, with "", none): follow the hint.
                if !leader.isEmpty { candidates.insert(leader, at: index) }
            } catch {
                problems.append(error.message)
            }
        }
        known.withLock { $0.leader = nil }
        let total = Set(members).count
        throw DatabaseError.unavailable("no quorum: \(answered.count) of \(total) replicas reachable and none is or knows the leader"
            + (problems.isEmpty ? "" : " (\(problems.prefix(3).joined(separator: "; ")))"))
    }
}
