import Foundation
import IP
import Testing

/// A read-only database (its file system remounted read-only while Herald was stopped, as after
/// an operator or the kernel turns a failing volume read-only): Herald still starts, answers
/// reads, refuses every change with 503 and a problem body that says why, and announces the
/// stored routes — a GR-helper BIRD ends with exactly the table it had. Once the volume is
/// writable again and Herald restarts, changes work. Needs root (tmpfs mount, namespaces).
@Suite(.timeLimit(.minutes(3)))
struct ReadOnlyDatabaseTests {
    static let heraldASN: UInt32 = 65020
    static let birdASN: UInt32 = 65010

    /// `stopped`: SIGTERM (clean close, no -wal left) or SIGKILL (a -wal and -shm left behind,
    /// which SQLite then reads without writing).
    @Test(.interop(.bird), arguments: ["SIGTERM", "SIGKILL"])
    func readOnlyDatabaseServesReadsAndKeepsAnnouncing(stopped: String) async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        let directory = try network.directory("herald")
        // The database on its own small file system, so that it alone can be made read-only
        // (the log stays writable next to it).
        let volume = directory + "/volume"
        try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
        try Command.check(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", volume])
        defer { _ = try? Command.run(["umount", "-l", volume]) }
        let database = volume + "/herald.db"

        let first = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN, database: database)
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: Self.birdASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: Self.heraldASN, families: [.ipv4])],
            gracefulRestart: true, holdTime: 9), network: network)
        try first.must("POST", "/v1/peers", #"{"name":"bird","address":"\#(link.b.ipv4)","asn":\#(Self.birdASN)}"#, status: 201)
        try first.must("PUT", "/v1/pools/lb", #"{"blocks":["203.0.113.0/28"]}"#, status: 201)
        try first.must("PUT", "/v1/allocations/web", #"{"pool":"lb"}"#, status: 201)
        try first.must("PUT", "/v1/allocations/api", #"{"pool":"lb"}"#, status: 201)
        let expected: Set<IPPrefix> = [try IPPrefix(parsing: "203.0.113.1/32"), try IPPrefix(parsing: "203.0.113.2/32")]
        try await bird.waitEstablished(with: link.a.ipv4)
        for prefix in expected { try await bird.waitForRoute(prefix) }
        if stopped == "SIGKILL" {
            first.kill9()
            #expect(FileManager.default.fileExists(atPath: database + "-wal"), "a crash leaves the WAL")
        } else {
            #expect(first.stop() == 0)
        }

        // The volume turns read-only while Herald is down.
        try Command.check(["mount", "-o", "remount,ro", volume])
        let readOnly = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN, database: database)
        #expect(readOnly.child.logTail(50).contains("database is read-only"), "\(readOnly.child.logTail())")

        // Reads work.
        let allocations = try readOnly.must("GET", "/v1/allocations", status: 200)
        #expect(allocations.body.contains("\"web\"") && allocations.body.contains("\"api\""), "\(allocations.body)")
        try readOnly.must("GET", "/v1/history", status: 200)
        try readOnly.must("GET", "/healthz", status: 200)

        // Every change: 503 with a problem body that says what happened; nothing changes.
        let changes: [(String, String, String?)] = [
            ("PUT", "/v1/allocations/new", #"{"pool":"lb"}"#),
            ("DELETE", "/v1/allocations/web", nil),
            ("PUT", "/v1/pools/more", #"{"blocks":["198.51.100.0/28"]}"#),
            ("POST", "/v1/peers", #"{"name":"other","address":"192.0.2.77","asn":65099}"#),
        ]
        for (method, path, body) in changes {
            let reply = try readOnly.call(method, path, body)
            #expect(reply.status == 503, "\(method) \(path): \(reply.status) \(reply.body)")
            #expect(reply.body.contains("not saved") && reply.body.contains("readonly"), "\(method) \(path): \(reply.body)")
        }

        // BGP: the session comes back and BIRD ends with exactly the stored table, which stays.
        try await bird.waitEstablished(with: link.a.ipv4)
        _ = try await eventually("BIRD holds exactly the stored routes", timeout: .seconds(30)) { () -> Bool? in
            let held = Set(try bird.receivedRoutes().map(\.prefix))
            return held == expected ? true : nil
        }
        try await Task.sleep(for: .seconds(3))  // past End-of-RIB and any stale-route flush
        #expect(Set(try bird.receivedRoutes().map(\.prefix)) == expected, "the DELETE refused above withdrew nothing")
        let peers = try readOnly.must("GET", "/v1/peers", status: 200)
        #expect(peers.body.contains("\"established\""), "\(peers.body)")
        #expect(readOnly.stop() == 0, "\(readOnly.child.logTail())")

        // Writable again: the next start takes changes.
        try Command.check(["mount", "-o", "remount,rw", volume])
        let writable = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN, database: database)
        try writable.must("PUT", "/v1/allocations/new", #"{"pool":"lb"}"#, status: 201)
        #expect(writable.stop() == 0)
    }
}
