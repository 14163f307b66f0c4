import BGPSpeaker
import Foundation
@testable import HeraldCore
import IP
import IPAM
import Store
import Testing

/// Cluster mode's committers: several replicas writing one database keep the same route table,
/// speaker configuration and node health by replaying the replication log. (Two stores on one
/// SQLite file stand in for two replicas on dqlite: the rules are the committer's, not the
/// engine's.)
@Suite struct ReplicationTests {
    struct Replicas {
        let directory = ScratchDirectory()
        let a: Committer
        let b: Committer

        init() throws {
            let path = directory.file("herald.db")
            a = try Committer(store: try Store(path: path), replica: "a")
            b = try Committer(store: try Store(path: path), replica: "b")
        }

        func expectSame(_ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(a.desiredRoutes == b.desiredRoutes, comment, sourceLocation: sourceLocation)
            #expect(a.speakerConfiguration.peers == b.speakerConfiguration.peers, comment, sourceLocation: sourceLocation)
            #expect(a.downNodes == b.downNodes, comment, sourceLocation: sourceLocation)
            let derived = try a.store.read { db in try DesiredRoutes.derive(db, down: try StoredNodeHealth.down(db)) }
            #expect(a.desiredRoutes == derived, "the table a restart derives", sourceLocation: sourceLocation)
        }
    }

    @Test func aChangeOnOneReplicaReachesTheOther() async throws {
        let r = try Replicas()
        let followed = r.b.routeDiffs()
        var diffs = followed.makeAsyncIterator()
        _ = await diffs.next()  // the (empty) start-up table
        try await r.a.commit { change in
            _ = try Pools.put(change.db, name: "lb", spec: PoolSpec(blocks: [try PoolBlock(parsing: "192.0.2.0/24")]), now: change.now)
            let created = try Allocations.put(change.db, name: "web", spec: AllocationSpec(pool: "lb"), now: change.now)
            try change.rederive(Set(created.allocation.addresses.map { IPPrefix(host: $0) }), reason: "allocation web created")
        }
        #expect(r.b.desiredRoutes.isEmpty, "b has not caught up yet")
        #expect(try await r.b.catchUp() == 1)
        #expect(await diffs.next()?.announced.map(\.prefix.description) == ["192.0.2.1/32"], "b's speaker is told")
        try r.expectSame("after one allocation")
        #expect(try await r.b.catchUp() == 0, "nothing more")
        // The history was written once, by the replica that made the change.
        #expect(try r.a.store.read { db in try RouteHistory.list(db) }.map(\.reason) == ["allocation web created"])
    }

    @Test func peersSpeakerSettingsAndHealthFollow() async throws {
        let r = try Replicas()
        let row = SpeakerSettings(asn: 64512, routerID: IPv4Address(192, 0, 2, 1), listen: IPEndpoint(address: .v4(.any), port: 179),
                                  holdTime: 90, keepaliveTime: 30, connectRetryTime: 120, gracefulRestartEnabled: true, gracefulRestartTime: 120)
        try await r.a.commit { change in
            try row.save(change.db, now: change.now)
            change.apply(settings: SpeakerMapping.settings(row, restarting: false))
            let config = PeerConfig(address: try IPAddress(parsing: "100.64.0.1"), asn: 65001)
            _ = try Peers.create(change.db, name: "r1", config: config, now: change.now)
            try change.apply(.add(SpeakerMapping.peerSettings(name: "r1", config)))
            _ = try Nodes.put(change.db, name: "n1", spec: NodeSpec(addresses: [try IPAddress(parsing: "100.64.0.11")], healthCheck: HealthCheck(kind: .tcp, port: 443)), now: change.now)
            _ = try Pools.put(change.db, name: "lb", spec: PoolSpec(blocks: [try PoolBlock(parsing: "192.0.2.0/24")], failOpen: false), now: change.now)
            _ = try Allocations.put(change.db, name: "web", spec: AllocationSpec(pool: "lb"), now: change.now)
            try change.nodesChanged()
            try change.rederiveAll(reason: "setup")
        }
        try await r.b.catchUp()
        try r.expectSame("after the setup")
        #expect(r.b.speakerConfiguration.settings.asn == 64512)

        // b changes the peer; a's copy follows, and a refusal on a is refused on b too.
        try await r.b.commit { change in
            let after = try Peers.update(change.db, name: "r1", now: change.now) { $0.holdTime = 30 }
            try change.apply(.update(SpeakerMapping.peerSettings(name: "r1", after.config)))
        }
        try await r.a.catchUp()
        #expect(r.a.speakerConfiguration.peers["r1"]?.holdTime == 30)

        // Health from the leader's checks reaches every replica through the database.
        try await r.a.setNodeHealth("n1", down: true, reason: "node n1 down: test")
        try await r.b.catchUp()
        #expect(r.b.downNodes == ["n1"])
        #expect(r.b.desiredRoutes.isEmpty, "n1 was the only next hop")
        try r.expectSame("after n1 went down")
        // A replica started now begins from the stored health, not from "all up".
        let c = try Committer(store: try Store(path: r.directory.file("herald.db")), replica: "c")
        #expect(c.downNodes == ["n1"] && c.desiredRoutes.isEmpty)

        try await r.b.commit { change in
            try Peers.delete(change.db, name: "r1")
            try change.apply(.remove(name: "r1"))
        }
        try await r.a.catchUp()
        #expect(r.a.speakerConfiguration.peers.isEmpty)
    }

    /// Both replicas write at once; each batch replays the other's first, so every change is
    /// derived against the latest state and the two end up equal to a full derivation.
    @Test func concurrentWritersConverge() async throws {
        let r = try Replicas()
        try await r.a.commit { change in
            _ = try Pools.put(change.db, name: "lb", spec: PoolSpec(blocks: [try PoolBlock(parsing: "192.0.2.0/24")]), now: change.now)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<40 {
                let writer = i % 2 == 0 ? r.a : r.b
                group.addTask {
                    try await writer.commit { change in
                        let name = "svc-\(i % 13)"
                        if i % 5 == 4, try Allocations.get(change.db, name: name) != nil {
                            let released = try Allocations.delete(change.db, name: name, hints: change.hints)
                            try change.rederive(Set(released.map { IPPrefix(host: $0) }), reason: "\(name) deleted")
                        } else {
                            let result = try Allocations.put(change.db, name: name, spec: AllocationSpec(pool: "lb"), now: change.now, hints: change.hints)
                            try change.rederive(Set((result.allocation.addresses + result.released).map { IPPrefix(host: $0) }), reason: "\(name)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        try await r.a.catchUp()
        try await r.b.catchUp()
        try r.expectSame("after 40 concurrent changes")
        #expect(r.a.revision == r.b.revision)
    }
}
