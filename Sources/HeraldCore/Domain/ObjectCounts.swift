internal import Store

/// How many of each configured object the database holds (for `/v1/status`).
struct ObjectCounts: Encodable, Sendable {
    let peers: Int
    let nodes: Int
    let pools: Int
    let allocations: Int
    let staticRoutes: Int

    static func read(_ db: Database) throws -> ObjectCounts {
        func count(_ table: String) throws -> Int { try db.firstRow("SELECT count(*) FROM \(table)")!.get(0) }
        return ObjectCounts(peers: try count("peers"), nodes: try count("nodes"), pools: try count("pools"),
                            allocations: try count("allocations"), staticRoutes: try count("routes"))
    }
}
