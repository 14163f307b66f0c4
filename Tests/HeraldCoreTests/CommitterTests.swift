import Foundation
import Testing
@testable import HeraldCore
import IP
import IPAM
import Store
import Synchronization

@Suite struct CommitterTests {
    func blocks(_ texts: String...) throws -> [PoolBlock] { try texts.map { try PoolBlock(parsing: $0) } }

    @Test func everyChangeIsRecordedWithItsReasonAndPublishedInOrder() async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        let committer = try Committer(store: store)
        var diffs = committer.routeDiffs().makeAsyncIterator()
        #expect(await diffs.next()?.isEmpty == true, "the start-up table of an empty database is empty")

        let spec = PoolSpec(blocks: try blocks("192.0.2.0/24"))
        try await committer.mutate(requestID: "r1", now: 10, reason: "pool lb created") { db in
            _ = try Pools.put(db, name: "lb", spec: spec, now: 10)
        }
        let created = try await committer.mutate(requestID: "r2", now: 11, reason: "allocation default.web created", affecting: [try IPPrefix(parsing: "192.0.2.1/32")]) { db in
            try Allocations.put(db, name: "default.web", spec: AllocationSpec(pool: "lb"), now: 11)
        }
        #expect(created.diff.announced.map(\.prefix.description) == ["192.0.2.1/32"])
        #expect(await diffs.next()?.announced.first?.paths == [RoutePath(nextHop: .session)])

        try await committer.mutate(requestID: "r3", now: 12, reason: "node n1 created") { db in
            _ = try Nodes.put(db, name: "n1", spec: NodeSpec(addresses: [try IPAddress(parsing: "100.64.0.11")]), now: 12)
        }
        let moved = await diffs.next()
        #expect(moved?.updated.first?.paths.map(\.nextHop.description) == ["100.64.0.11"])

        try await committer.mutate(requestID: "r4", now: 13, reason: "allocation default.web deleted") { db in
            try Allocations.delete(db, name: "default.web")
        }
        #expect(await diffs.next()?.withdrawn.map(\.prefix.description) == ["192.0.2.1/32"])
        #expect(committer.desiredRoutes.isEmpty)

        let history = try store.read { db in try RouteHistory.list(db) }
        #expect(history.map(\.action) == [.announce, .update, .withdraw])
        #expect(history.map(\.reason) == ["allocation default.web created", "node n1 created", "allocation default.web deleted"])
        #expect(history.map(\.requestID) == ["r2", "r3", "r4"])
        #expect(history[1].pathsJSON.contains(#""next_hop":"100.64.0.11""#) && history[1].pathsJSON.contains(#""node":"n1""#))
        #expect(history.allSatisfy { $0.source == RouteSource(kind: .allocation, name: "default.web") })
    }

    /// Backpressure instead of an unbounded queue: a follower that stops taking changes holds
    /// the writers back once it is `Follower.backlogLimit` changes behind; taking them lets the
    /// writers go on. (Before, the committer went on and the follower's queue grew without bound.)
    @Test func aFollowerFarBehindHoldsTheWritersBack() async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        let committer = try Committer(store: store)
        try await committer.mutate(now: 1, reason: "pool lb created") { db in
            _ = try Pools.put(db, name: "lb", spec: PoolSpec(blocks: try blocks("100.64.0.0/21")), now: 1)
        }
        let limit = 20
        var changes = committer.subscribe(backlogLimit: limit).makeAsyncIterator()
        _ = await changes.next()  // the snapshot, taken
        let total = 60
        let committed = CommitCounter()
        let writer = Task {
            for i in 0..<total {
                try await committer.mutate(now: 2, reason: "allocation a\(i) created") { db in
                    try Allocations.put(db, name: "default.a\(i)", spec: AllocationSpec(pool: "lb"), now: 2)
                }
                committed.add()
            }
        }
        // Wait until the writers reach the limit (a loaded machine commits slowly), then give
        // them a second more: they must not pass it while the follower takes nothing.
        let deadline = ContinuousClock.now + .seconds(60)
        while committed.value < limit, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .seconds(1))
        let held = committed.value
        #expect(held >= limit && held <= limit + 2, "\(held) of \(total) committed while the follower took nothing")
        for _ in 0..<total { _ = await changes.next() }
        try await writer.value
        #expect(committed.value == total)
    }

    @Test func aFailedChangeLeavesNoTrace() async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        let committer = try Committer(store: store)
        let spec = PoolSpec(blocks: try blocks("192.0.2.0/24"))
        try await committer.mutate(reason: "pool") { db in _ = try Pools.put(db, name: "lb", spec: spec, now: 1) }
        await #expect(throws: DomainError.self) {
            try await committer.mutate(reason: "never") { db in
                _ = try Allocations.put(db, name: "a", spec: AllocationSpec(pool: "lb"), now: 1)
                return try Allocations.put(db, name: "b", spec: AllocationSpec(pool: "missing"), now: 1)
            }
        }
        #expect(committer.desiredRoutes.isEmpty)
        #expect(try store.read { db in try RouteHistory.list(db) }.isEmpty)
        #expect(try store.read { db in try Allocations.list(db) }.isEmpty, "the first allocation was rolled back too")
    }

    @Test func restartDerivesTheSameTable() async throws {
        let directory = ScratchDirectory()
        let path = directory.file("herald.db")
        let before: [IPPrefix: DesiredRoute]
        do {
            let committer = try Committer(store: try Store(path: path))
            let spec = PoolSpec(blocks: try blocks("192.0.2.0/24", "2001:db8::/64"))
            try await committer.mutate(reason: "setup") { db in
                _ = try Pools.put(db, name: "lb", spec: spec, now: 1)
                _ = try Nodes.put(db, name: "n1", spec: NodeSpec(addresses: [try IPAddress(parsing: "100.64.0.11"), try IPAddress(parsing: "fd64::11")]), now: 1)
                for i in 0..<20 {
                    _ = try Allocations.put(db, name: "svc-\(i)", spec: AllocationSpec(pool: "lb", family: i % 3 == 0 ? .dual : .ipv4), now: 1)
                }
                _ = try StaticRoutes.put(db, name: "pods", spec: StaticRouteSpec(prefix: try IPPrefix(parsing: "10.244.0.0/24"), nextHops: [.node("n1")]), now: 1)
            }
            before = committer.desiredRoutes
        }
        let restarted = try Committer(store: try Store(path: path))
        #expect(restarted.desiredRoutes == before)
        #expect(before.count == 20 + 7 + 1)
    }

    @Test func historyFilters() async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        let committer = try Committer(store: store)
        let spec = PoolSpec(blocks: try blocks("192.0.2.0/24"))
        try await committer.mutate(now: 1, reason: "pool") { db in _ = try Pools.put(db, name: "lb", spec: spec, now: 1) }
        for i in 0..<5 {
            try await committer.mutate(now: Int64(100 + i), reason: "svc \(i)") { db in
                try Allocations.put(db, name: "svc-\(i)", spec: AllocationSpec(pool: "lb"), now: 1)
            }
        }
        try store.read { db in
            #expect(try RouteHistory.list(db, within: try IPPrefix(parsing: "192.0.2.3/32")).map(\.reason) == ["svc 2"])
            #expect(try RouteHistory.list(db, within: try IPPrefix(parsing: "192.0.2.0/30")).map(\.reason) == ["svc 0", "svc 1", "svc 2"])
            #expect(try RouteHistory.list(db, since: 103).map(\.reason) == ["svc 3", "svc 4"])
            let first = try RouteHistory.list(db, limit: 2)
            #expect(first.map(\.reason) == ["svc 0", "svc 1"])
            #expect(try RouteHistory.list(db, after: first.last!.id, limit: 2).map(\.reason) == ["svc 2", "svc 3"])
        }
    }

    /// Concurrent mutations are committed in batches (one fsync for many); a refused one is
    /// rolled back alone, and every acknowledged one is in the database and the history.
    @Test func groupCommitKeepsEachMutationSeparate() async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        let committer = try Committer(store: store)
        let spec = PoolSpec(blocks: [try PoolBlock(parsing: "192.0.2.0/24")])
        try await committer.mutate(reason: "pool") { db in _ = try Pools.put(db, name: "lb", spec: spec, now: 1) }
        let outcomes = await withTaskGroup(of: (Int, Result<[IPAddress], any Error>).self) { group in
            for i in 0..<64 {
                group.addTask {
                    do {
                        let change = try await committer.mutate(reason: "svc svc-\(i)") { db in
                            try Allocations.put(db, name: "svc-\(i)", spec: AllocationSpec(pool: i == 13 ? "missing" : "lb"), now: 2)
                        }
                        return (i, .success(change.result.allocation.addresses))
                    } catch {
                        return (i, .failure(error))
                    }
                }
            }
            return await group.reduce(into: [Int: Result<[IPAddress], any Error>]()) { $0[$1.0] = $1.1 }
        }
        let addresses = outcomes.compactMap { try? $0.value.get() }.flatMap { $0 }
        #expect(addresses.count == 63 && Set(addresses).count == 63, "unique addresses for every acknowledged allocation")
        if case .success = outcomes[13] { Issue.record("the allocation from a missing pool must fail") }
        #expect(try store.read { db in try Allocations.list(db) }.count == 63)
        #expect(try store.read { db in try RouteHistory.list(db, limit: 1000) }.count == 63)
        #expect(committer.desiredRoutes.count == 63)
        committer.finish()
        await #expect(throws: DomainError.self) {
            try await committer.mutate(reason: "late") { _ in }
        }
    }
}

@Suite struct HistoryRetentionTests {
    @Test func prunesByAgeThenByCount() async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        let day: Int64 = 86_400_000
        try store.write { db in
            for i in 0..<50 {
                try db.execute("""
                    INSERT INTO route_events (at, action, prefix, family, source, source_name, reason) VALUES (?, 'announce', '192.0.2.1/32', 'ipv4', 'static', 'r', 'x')
                    """, [Int64(i) * day])
                try PeerEvents.append(db, peer: "r1", kind: .down, reason: "x", now: Int64(i) * day)
            }
        }
        // Now is day 100; keep 60 days → days 40…49 remain (10 rows each); at most 4 rows → the newest 4.
        let retention = HistoryRetention(maxAgeDays: 60, maxRows: 4, batch: 3)
        let committer = try Committer(store: store)
        let deleted = try await retention.prune(committer, now: 100 * day)
        #expect(deleted == 2 * 46)
        let left = try store.read { db in try RouteHistory.list(db, limit: 100).map(\.at) }
        #expect(left == [46, 47, 48, 49].map { Int64($0) * day })
        #expect(try store.read { db in try PeerEvents.list(db, peer: "r1") }.count == 4)
        #expect(try await retention.prune(committer, now: 100 * day) == 0, "nothing more to do")
    }

    /// The cheap look `herald serve` takes every 30 s: past the row cap or the age limit in
    /// either table says so; within both says no, so nothing is pruned needlessly.
    @Test func looksPastTheBoundsCheaply() async throws {
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("herald.db"))
        let committer = try Committer(store: store)
        let day: Int64 = 86_400_000
        let retention = HistoryRetention(maxAgeDays: 10, maxRows: 5)
        #expect(try await retention.isPastBounds(committer, now: 100 * day) == false, "empty tables")
        try store.write { db in
            for i in 95..<100 {
                try db.execute("INSERT INTO route_events (at, action, prefix, family, source, source_name, reason) VALUES (?, 'announce', '192.0.2.1/32', 'ipv4', 'static', 'r', 'x')", [Int64(i) * day])
            }
        }
        #expect(try await retention.isPastBounds(committer, now: 100 * day) == false, "5 rows of the last 5 days: within both")
        try store.write { db in try PeerEvents.append(db, peer: "r1", kind: .down, reason: "x", now: 80 * day) }
        #expect(try await retention.isPastBounds(committer, now: 100 * day), "a peer event 20 days old")
        try await retention.prune(committer, now: 100 * day)
        #expect(try await retention.isPastBounds(committer, now: 100 * day) == false)
        try store.write { db in
            try db.execute("INSERT INTO route_events (at, action, prefix, family, source, source_name, reason) VALUES (?, 'announce', '192.0.2.1/32', 'ipv4', 'static', 'r', 'x')", [100 * day])
        }
        #expect(try await retention.isPastBounds(committer, now: 100 * day), "6 route events, 5 allowed")
    }
}

/// Counts from one task, read from another.
final class CommitCounter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
