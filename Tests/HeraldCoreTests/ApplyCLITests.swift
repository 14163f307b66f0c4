import Foundation
import Glibc
import Testing

/// `herald apply` and `herald export` against a running `herald serve`: a dry run changes
/// nothing; apply creates every kind of object with the managed label; applying the same file
/// again, or what export wrote, makes no change (no object's updated_at moves, no peer event);
/// an edit changes what was edited; `--prune` deletes what the file dropped and never an object
/// made through the API; a refused change stops apply and says what was done.
@Suite(.serialized) struct ApplyCLITests {
    static let first = """
        # Declared in Git.
        version: 1
        nodes:
          - name: n1
            addresses: [192.0.2.11]
            labels: { zone: a }
            health_check: { kind: tcp, port: 9, address: 127.0.0.1, interval: 60000 }
        pools:
          - name: lb
            blocks: [192.0.2.0/28]
            service_selector: { app: web }
            announce:
              communities: [65000:50]
              med: 10
        peers:
          - name: edge
            address: 127.0.0.9
            asn: 65009
            passive: true
            hold_time: 90
            password_file: edge.key
            bfd: { min_tx: 500 }
        allocations:
          - name: default.web
            pool: lb
            traffic_policy: local
            nodes: [n1]
        routes:
          - name: pods
            prefix: 10.244.0.0/24
            next_hops: [n1]
        """

    /// The peer's hold time changed, a second allocation, the static route dropped.
    static let second = first.replacingOccurrences(of: "hold_time: 90", with: "hold_time: 30")
        .replacingOccurrences(of: "routes:\n  - name: pods\n    prefix: 10.244.0.0/24\n    next_hops: [n1]", with: "routes: []")

    static func body(_ response: String) -> [String: Any] {
        guard let split = response.range(of: "\r\n\r\n") else { return [:] }
        return (try? JSONSerialization.jsonObject(with: Data(response[split.upperBound...].utf8))) as? [String: Any] ?? [:]
    }

    @Test func applyEditReapplyAndPrune() throws {
        let directory = ScratchDirectory()
        let clients = ScratchDirectory()
        var runs: [String: HeraldBinaryTests.Finished] = [:]
        var before: [String: String] = [:], afterAgain: [String: String] = [:]
        var objects: [String: [String: Any]] = [:]
        var missing: [String: String] = [:]
        var peerEvents = (0, 0)
        try "s3cret\n".write(toFile: clients.file("edge.key"), atomically: true, encoding: .utf8)
        try Self.first.write(toFile: clients.file("first.yaml"), atomically: true, encoding: .utf8)
        try Self.second.write(toFile: clients.file("second.yaml"), atomically: true, encoding: .utf8)
        try "version: 1\nnodes:\n  - name: n2\n    addresses: [192.0.2.12]\npools:\n  - name: bad\n    blocks: [not-a-block]\n"
            .write(toFile: clients.file("bad.yaml"), atomically: true, encoding: .utf8)
        try "allocations:\n  - name: default.sync\n    pool: manual\n".write(toFile: clients.file("conflict.yaml"), atomically: true, encoding: .utf8)
        try "version: 1\npol:\n  - name: lb\n".write(toFile: clients.file("typo.yaml"), atomically: true, encoding: .utf8)

        let result = try HeraldBinaryTests.run(
            HeraldBinaryTests.builtBinary, ["serve", "--api-listen", "127.0.0.1:0", "--bgp-listen", "127.0.0.1:0"],
            in: directory.path, whenReady: { log in
                guard let text = log.firstMatch(of: /api_listen=127\.0\.0\.1:(\d+)/).map({ String($0.1) }), let port = UInt16(text) else { return }
                let server = "http://127.0.0.1:\(port)"
                func herald(_ key: String, _ arguments: [String]) {
                    runs[key] = try? HeraldBinaryTests.run(HeraldBinaryTests.builtBinary, arguments, in: clients.path,
                                                           environment: ["HERALD_SERVER": server], signal: nil)
                }
                func get(_ path: String) -> [String: Any] { Self.body((try? SimpleHTTP.get(port: port, path: path)) ?? "") }
                func stamps() -> [String: String] {
                    var stamps: [String: String] = [:]
                    for (kind, key) in [("nodes", "nodes"), ("pools", "pools"), ("peers", "peers"), ("allocations", "allocations")] {
                        for item in get("/v1/\(kind)")[key] as? [[String: Any]] ?? [] {
                            stamps["\(kind)/\(item["name"] as? String ?? "")"] = item["updated_at"] as? String
                        }
                    }
                    stamps["routes/pods"] = get("/v1/routes/pods")["updated_at"] as? String
                    return stamps
                }
                func events() -> Int { (get("/v1/peers/edge/events")["events"] as? [[String: Any]] ?? []).count }

                // An object made through the API, which apply must never delete.
                _ = try? SimpleHTTP.send(port: port, method: "PUT", path: "/v1/pools/manual", json: #"{"blocks":["198.51.100.0/24"]}"#)
                // One the Kubernetes sync manages, which apply must neither export, take over nor delete.
                _ = try? SimpleHTTP.send(port: port, method: "PUT", path: "/v1/allocations/default.sync",
                                         json: #"{"pool":"manual","labels":{"herald.io/managed-by":"k8s-sync"}}"#)

                herald("dryRun", ["apply", "-f", "first.yaml", "--dry-run"])
                missing["afterDryRun"] = (try? SimpleHTTP.get(port: port, path: "/v1/pools/lb")) ?? ""
                herald("typo", ["apply", "-f", "typo.yaml"])
                // The connection options may come before the command.
                runs["apply"] = try? HeraldBinaryTests.run(HeraldBinaryTests.builtBinary, ["--server", server, "apply", "-f", "first.yaml"],
                                                           in: clients.path, signal: nil)
                for (key, path) in [("node", "/v1/nodes/n1"), ("pool", "/v1/pools/lb"), ("peer", "/v1/peers/edge"),
                                    ("allocation", "/v1/allocations/default.web"), ("route", "/v1/routes/pods")] {
                    objects[key] = get(path)
                }
                before = stamps()
                peerEvents.0 = events()
                herald("again", ["apply", "-f", "first.yaml"])
                herald("exportManaged", ["export", "--managed-only", "-f", "managed.yaml"])
                herald("exportAll", ["export"])
                herald("exportJSON", ["export", "-o", "json", "--managed-only", "-f", "managed.json"])
                herald("roundTrip", ["apply", "-f", "managed.yaml", "--dry-run"])
                herald("roundTripJSON", ["apply", "-f", "managed.json", "--dry-run"])
                if let all = runs["exportAll"]?.output { try? all.write(toFile: clients.file("all.yaml"), atomically: true, encoding: .utf8) }
                herald("roundTripAll", ["apply", "-f", "all.yaml", "--dry-run"])
                afterAgain = stamps()
                peerEvents.1 = events()

                herald("edit", ["apply", "-f", "second.yaml"])
                objects["peerEdited"] = get("/v1/peers/edge")
                missing["routeKept"] = (try? SimpleHTTP.get(port: port, path: "/v1/routes/pods")) ?? ""
                herald("pruneDryRun", ["apply", "-f", "second.yaml", "--prune", "--dry-run"])
                herald("pruneDryRunJSON", ["apply", "-f", "second.yaml", "--prune", "--dry-run", "-o", "json"])
                herald("prune", ["apply", "-f", "second.yaml", "--prune"])
                missing["routePruned"] = (try? SimpleHTTP.get(port: port, path: "/v1/routes/pods")) ?? ""
                missing["manualKept"] = (try? SimpleHTTP.get(port: port, path: "/v1/pools/manual")) ?? ""
                herald("bad", ["apply", "-f", "bad.yaml"])
                herald("conflict", ["apply", "-f", "conflict.yaml", "--dry-run"])
                missing["syncKept"] = (try? SimpleHTTP.get(port: port, path: "/v1/allocations/default.sync")) ?? ""
            })
        #expect(result.status == 0, "\(result.output)")
        func run(_ key: String, status: Int32 = 0) -> String {
            let finished = runs[key]
            #expect(finished?.status == status, "\(key): \(finished?.output ?? "not run")")
            return finished?.output ?? ""
        }

        // The dry run lists what it would do and does none of it.
        #expect(run("dryRun") == """
            + node n1
            + pool lb
            + peer edge
            + allocation default.web
            + route pods
            5 to create, 0 to change, 0 to delete

            """)
        #expect(missing["afterDryRun"]?.hasPrefix("HTTP/1.1 404") == true)
        // A key the format does not have is refused with its line, before anything is sent.
        #expect(run("typo", status: 78).contains("herald: typo.yaml: line 2: unknown key \"pol\""))

        // Apply made each object as declared, with the managed label and the defaults.
        #expect(run("apply").hasSuffix("5 created, 0 changed, 0 deleted\n"))
        for (key, object) in objects where key != "peerEdited" {
            #expect((object["labels"] as? [String: Any])?["herald.io/managed-by"] as? String == "apply", "\(key): \(object)")
        }
        let node = objects["node"] ?? [:]
        #expect((node["health_check"] as? [String: Any])?["interval"] as? Int == 60000 && (node["labels"] as? [String: Any])?["zone"] as? String == "a")
        let pool = objects["pool"] ?? [:]
        #expect((pool["announce"] as? [String: Any])?["communities"] as? [String] == ["65000:50"], "\(pool)")
        let peer = objects["peer"] ?? [:]
        #expect(peer["hold_time"] as? Int == 90 && peer["password_set"] as? Bool == true && (peer["bfd"] as? [String: Any])?["min_tx"] as? Int == 500,
                "\(peer)")
        #expect(objects["allocation"]?["nodes"] as? [String] == ["n1"] && objects["route"]?["next_hops"] as? [String] == ["n1"])

        // Again, and the exports applied: no change, and no request that writes.
        #expect(run("again") == "no changes\n")
        #expect(run("roundTrip") == "no changes\n")
        #expect(run("roundTripJSON") == "no changes\n")
        #expect(before.count == 7 && before == afterAgain, "\(before) → \(afterAgain)")
        #expect(peerEvents.0 > 0 && peerEvents.0 == peerEvents.1, "\(peerEvents)")
        // Everything exported: the pool made through the API would be adopted, nothing else changes.
        #expect(run("roundTripAll") == "~ pool manual (adopted: now managed by apply)\n0 to create, 1 to change, 0 to delete\n")
        let exported = run("exportAll")
        #expect(exported.contains("  - name: edge\n    address: 127.0.0.9\n    asn: 65009\n    hold_time: 90\n    passive: true\n"), "\(exported)")
        #expect(exported.contains("# Left out: 1 managed by k8s-sync (label herald.io/managed-by).") && !exported.contains("default.sync"), "\(exported)")
        #expect(exported.contains("# has a password, not exported") && !exported.contains("s3cret") && !exported.contains("herald.io/managed-by: apply"))

        // The edit: the peer's hold time changed; the route dropped from the file stays without --prune.
        #expect(run("edit") == """
            herald: managed by apply but no longer in the file (--prune deletes them): route pods
            ~ peer edge (hold_time: 90 → 30)
            0 created, 1 changed, 0 deleted

            """)
        #expect(objects["peerEdited"]?["hold_time"] as? Int == 30 && objects["peerEdited"]?["password_set"] as? Bool == true)
        #expect(missing["routeKept"]?.hasPrefix("HTTP/1.1 200") == true)

        // Prune: the route goes; the pool made through the API stays.
        #expect(run("pruneDryRun") == "- route pods\n0 to create, 0 to change, 1 to delete\n")
        let report = (try? JSONSerialization.jsonObject(with: Data(run("pruneDryRunJSON").utf8))) as? [String: Any] ?? [:]
        #expect(report["dry_run"] as? Bool == true && report["deleted"] as? Int == 1
                && (report["changes"] as? [[String: Any]])?.first?["name"] as? String == "pods", "\(report)")
        #expect(run("prune") == "- route pods\n0 created, 0 changed, 1 deleted\n")
        #expect(missing["routePruned"]?.hasPrefix("HTTP/1.1 404") == true)
        #expect(missing["manualKept"]?.hasPrefix("HTTP/1.1 200") == true)

        // The Kubernetes sync's allocation: never deleted, and a file that declares it is refused.
        #expect(missing["syncKept"]?.hasPrefix("HTTP/1.1 200") == true)
        #expect(run("conflict", status: 1).contains("herald: managed by another tool (label herald.io/managed-by), so not applied: allocation default.sync (k8s-sync)"))

        // A refused change stops apply, in the CLI's error format, saying how far it got.
        let bad = run("bad", status: 1)
        #expect(bad.hasPrefix("herald: managed by apply but no longer in the file"), "\(bad)")
        #expect(bad.contains("\n+ node n2\nherald: + pool bad: 4"), "\(bad)")
        #expect(bad.contains("herald: stopped: 1 of 2 changes made"), "\(bad)")
    }
}
