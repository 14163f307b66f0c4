import Foundation
import IP
import Testing

/// `herald apply` against `herald serve` and a real BIRD in network namespaces: a file declaring
/// the peer, a node, a pool and an allocation gets the route to BIRD; an edit that adds an
/// allocation and a static route gets those to BIRD too; pruning the first allocation withdraws
/// it from BIRD, and the API and BIRD agree after every step.
@Suite(.timeLimit(.minutes(3)))
struct ApplyInteropTests {
    static let heraldASN: UInt32 = 64512
    static let birdASN: UInt32 = 65000

    @Test(.interop(.bird))
    func applyEditAndPruneReachBIRD() async throws {
        guard try Interop.ready(.bird) else { return }
        let network = try TestNetwork()
        defer { network.shutdown() }
        let link = try network.pair()
        // The node and the addresses to hand out, in this network's /24 of 100.64.0.0/10: the
        // node on BIRD's side so that its next hop is on-link there.
        let base = link.b.ipv4.v4.value & 0xFFFF_FF00
        let node = IPv4Address(base | 0xF1)
        try link.b.namespace.check(["ip", "addr", "add", "\(IPv4Address(base | 0xFE))/28", "dev", link.b.interface])
        let block = "\(IPv4Address(base | 0xC0))/28", pods = "\(IPv4Address(base | 0xD0))/28"
        let directory = try network.directory("herald")
        let herald = try await HeraldProcess.start(in: link.a.namespace, on: link.a, directory: directory, asn: Self.heraldASN)
        let bird = try await BIRD.start(in: link.b.namespace, config: DaemonConfig(
            asn: Self.birdASN, on: link.b, neighbors: [Neighbor(address: link.a.ipv4, asn: Self.heraldASN, families: [.ipv4])]), network: network)

        let declared = """
            version: 1
            peers:
              - name: bird
                address: "\(link.b.ipv4)"
                asn: \(Self.birdASN)
            nodes:
              - name: node1
                addresses: ["\(node)"]
            pools:
              - name: lb
                blocks: ["\(block)"]
                announce: { communities: ["65000:50"] }

            """
        let webAllocation = "  - name: default.web\n    pool: lb\n    traffic_policy: local\n    nodes: [node1]\n"
        let apiAllocation = "  - name: default.api\n    pool: lb\n"
        let route = "routes:\n  - name: pods\n    prefix: \"\(pods)\"\n    next_hops: [node1]\n"
        let first = declared + "allocations:\n" + webAllocation
        let second = first + apiAllocation + route
        let third = declared + "allocations:\n" + apiAllocation + route
        func apply(_ text: String, _ name: String, _ flags: [String] = []) throws -> CommandResult {
            let file = directory + "/" + name
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let result = try link.a.namespace.run([HeraldProcess.binary, "apply", "-f", file] + flags)
            #expect(result.succeeded, "\(name): \(result)\n\(herald.child.logTail())")
            return result
        }
        func addresses(_ name: String) throws -> [String] {
            try herald.must("GET", "/v1/allocations/\(name)", status: 200).json["addresses"] as? [String] ?? []
        }

        // 1. The peer, the node, the pool and one allocation: BIRD gets its address via the node.
        #expect(try apply(first, "first.yaml").stdout.hasSuffix("4 created, 0 changed, 0 deleted\n"))
        try await bird.waitEstablished(with: link.a.ipv4)
        let web = try IPPrefix(parsing: "\(try #require(try addresses("default.web").first))/32")
        let paths = try await bird.waitForRoute(web) { $0.map(\.nextHop) == [.v4(node)] }
        #expect(paths.first?.asPath == [Self.heraldASN] && paths.first?.communities == [Community(65000, 50)], "\(paths)")
        #expect(try apply(first, "first.yaml", ["--dry-run"]).stdout == "no changes\n")

        // 2. Edited: a second allocation and a static route, both announced; the first unchanged.
        let edit = try apply(second, "second.yaml")
        #expect(edit.stdout == "+ allocation default.api\n+ route pods\n2 created, 0 changed, 0 deleted\n", "\(edit)")
        let api = try IPPrefix(parsing: "\(try #require(try addresses("default.api").first))/32")
        #expect(api != web)
        try await bird.waitForRoute(api)
        try await bird.waitForRoute(try IPPrefix(parsing: pods)) { $0.map(\.nextHop) == [.v4(node)] }
        #expect(try bird.receivedRoutes().contains { $0.prefix == web })

        // 3. The first allocation dropped from the file: kept without --prune, withdrawn with it.
        #expect(try apply(third, "third.yaml").stdout == "no changes\n")
        #expect(try herald.call("GET", "/v1/allocations/default.web").status == 200)
        #expect(try apply(third, "third.yaml", ["--prune"]).stdout == "- allocation default.web\n0 created, 0 changed, 1 deleted\n")
        try await bird.waitForWithdrawal(web)
        #expect(try herald.call("GET", "/v1/allocations/default.web").status == 404)
        let left = Set(try bird.receivedRoutes().map(\.prefix))
        let podsPrefix = try IPPrefix(parsing: pods)
        #expect(left.contains(api) && left.contains(podsPrefix) && !left.contains(web), "\(left)")
        #expect(herald.stop() == 0)
    }
}
