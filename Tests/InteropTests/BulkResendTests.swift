import Foundation
import IP
import Testing

/// Issue #19: the whole table sent again through `POST /v1/routes:batch` with 1% of the next hops
/// changed commits only those, and the router gets only those: BIRD's count of received import
/// updates rises by exactly the number of changed prefixes (a re-send that re-announced the table
/// would add all of them).
@Suite(.timeLimit(.minutes(3)))
struct BulkResendTests {
    static let count = 20_000
    static let changed = 200

    @Test(.interop(.bird))
    func resendingTheTableWithOnePercentChangedSendsOnlyThoseRoutes() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        // Two nodes on BIRD's side of the link, so that both next hops are on-link there.
        let base = link.b.ipv4.v4.value & 0xFFFF_FF00
        let n1 = IPv4Address(base | 0xF1), n2 = IPv4Address(base | 0xF2)
        try link.b.namespace.check(["ip", "addr", "add", "\(IPv4Address(base | 0xFE))/28", "dev", link.b.interface])
        let directory = try network.directory("herald")
        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: 64512)
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: 65000, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: 64512, families: [.ipv4])]), network: network)
        try herald.must("PUT", "/v1/nodes/n1", #"{"addresses":["\#(n1)"]}"#, status: 201)
        try herald.must("PUT", "/v1/nodes/n2", #"{"addresses":["\#(n2)"]}"#, status: 201)
        try herald.must("POST", "/v1/peers", #"{"name":"bird","address":"\#(link.b.ipv4)","asn":65000,"families":["ipv4-unicast"]}"#, status: 201)
        try await bird.waitEstablished(with: link.a.ipv4)

        // 10.128.0.0/32 onwards via n1; in the re-send, every 100th via n2.
        func post(changed: Bool) throws -> [String: Any] {
            var body = ""
            body.reserveCapacity(Self.count * 48)
            for index in 0..<Self.count {
                let hop = changed && index % (Self.count / Self.changed) == 0 ? "n2" : "n1"
                body += #"{"prefix":"\#(IPv4Address(0x0A80_0000 + UInt32(index)))/32","next_hops":["\#(hop)"]}"# + "\n"
            }
            let file = directory + "/batch-\(changed).ndjson"
            try body.write(toFile: file, atomically: true, encoding: .utf8)
            let result = try link.a.namespace.run(["curl", "-s", "-S", "-X", "POST", "-H", "Content-Type: application/x-ndjson",
                                                   "--data-binary", "@" + file, "http://127.0.0.1:8179/v1/routes:batch"], timeout: .seconds(60))
            guard result.succeeded, let answer = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
                throw HarnessError("batch failed: \(result)")
            }
            return answer
        }
        @Sendable func routes(via hop: IPv4Address? = nil) throws -> Int {
            let filter = hop.map { ["where", "gw", "=", "\($0)"] } ?? []
            let text = try bird.birdc(["show", "route"] + filter + ["count"])
            return Int(text.firstMatch(of: /(\d+) of \d+ routes/)?.1 ?? "") ?? -1
        }
        func importUpdates() throws -> Int {
            let text = try bird.birdc(["show", "protocols", "all", BIRD.protocolName(0)])
            return Int(text.firstMatch(of: /Import updates:\s+(\d+)/)?.1 ?? "") ?? -1
        }

        let first = try post(changed: false)
        #expect(first["created"] as? Int == Self.count, "\(first)")
        _ = try await eventually("BIRD holds the table", timeout: .seconds(60)) { try routes() == Self.count ? true : nil }
        let before = try importUpdates()
        #expect(before == Self.count, "the initial transfer: one update per prefix")

        let started = ContinuousClock.now
        let again = try post(changed: true)
        print("bulk re-send of \(Self.count) routes, \(Self.changed) changed: answered after \(ContinuousClock.now - started) (debug build)")
        #expect(again["updated"] as? Int == Self.changed && again["unchanged"] as? Int == Self.count - Self.changed, "\(again)")
        _ = try await eventually("BIRD has the changed next hops", timeout: .seconds(60)) { try routes(via: n2) == Self.changed ? true : nil }
        // Let anything else that would come arrive before counting.
        try await Task.sleep(for: .seconds(1))
        #expect(try importUpdates() - before == Self.changed)
        #expect(try routes() == Self.count && routes(via: n1) == Self.count - Self.changed)
        #expect(herald.stop() == 0)
    }
}
