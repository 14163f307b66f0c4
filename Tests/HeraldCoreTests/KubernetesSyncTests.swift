import Foundation
import Testing

/// contrib/k8s-sync against a real `herald serve`, with a stand-in kubectl serving recorded
/// `kubectl … -o json` output: Services become allocations, addresses go back into the Service
/// status, a second run changes nothing, and a deleted Service releases its allocation. The
/// script reads every page of its allocations (one a page here, HERALD_PAGE_LIMIT=1): a stale
/// one past the first page is released too, and one it did not make is left alone.
@Suite(.serialized, .heavy) struct KubernetesSyncTests {
    @Test func servicesBecomeAllocationsAndDeletedOnesAreReleased() throws {
        for tool in ["/usr/bin/jq", "/usr/bin/curl"] where !FileManager.default.isExecutableFile(atPath: tool) {
            if ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "required" {
                Issue.record("\(tool) is missing (Debian packages jq and curl)")
            } else {
                print("skipping: \(tool) is not installed")
            }
            return
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let contrib = root.appendingPathComponent("contrib/k8s-sync")
        let directory = ScratchDirectory()
        // A private copy of the fixtures: the test rewrites services.json and collects patches.
        let fixtures = directory.file("fixtures")
        try FileManager.default.copyItem(atPath: contrib.appendingPathComponent("fixtures").path, toPath: fixtures)
        let script = contrib.appendingPathComponent("herald-k8s-sync.sh").path

        var runs: [HeraldBinaryTests.Finished] = []
        var allocations: [String] = []
        var nodes = ""
        let serve = try HeraldBinaryTests.run(HeraldBinaryTests.builtBinary, ["serve", "--api-listen", "127.0.0.1:0"], in: directory.path, whenReady: { log in
            guard let port = log.firstMatch(of: /api_listen=127\.0\.0\.1:(\d+)/).map({ String($0.1) }), let number = UInt16(port) else { return }
            _ = try? SimpleHTTP.send(port: number, method: "PUT", path: "/v1/pools/default", json: #"{"blocks":["203.0.113.0/28"]}"#)
            _ = try? SimpleHTTP.send(port: number, method: "PUT", path: "/v1/pools/shop", json: #"{"blocks":["198.51.100.0/28"],"service_selector":{"tier":"shop"}}"#)
            // Left by an earlier pass for a Service deleted since (sorted after the others, so on
            // the last page), and one made by hand; addresses from the top of the pool.
            _ = try? SimpleHTTP.send(port: number, method: "PUT", path: "/v1/allocations/zz.stale",
                                     json: #"{"pool":"default","address":"203.0.113.14","labels":{"herald.io/managed-by":"k8s-sync"}}"#)
            _ = try? SimpleHTTP.send(port: number, method: "PUT", path: "/v1/allocations/zz.manual", json: #"{"pool":"default","address":"203.0.113.13"}"#)
            let environment = ["HERALD_SERVER": "http://127.0.0.1:\(port)", "FIXTURES": fixtures, "HERALD_PAGE_LIMIT": "1",
                               // Checked on loopback only: the fixtures' node addresses are not ours.
                               "HERALD_NODE_HEALTH_CHECK": #"{"kind":"tcp","port":9,"address":"127.0.0.1","interval":60000}"#,
                               // The stand-in kubectl runs from the repository (a freshly copied
                               // executable can fail to exec with ETXTBSY); its data is the copy.
                               "PATH": "\(contrib.appendingPathComponent("fixtures").path):/usr/bin:/bin"]
            if let first = try? HeraldBinaryTests.run("/bin/bash", [script], in: directory.path, environment: environment, signal: nil) { runs.append(first) }
            allocations.append((try? SimpleHTTP.get(port: number, path: "/v1/allocations")) ?? "")
            if let second = try? HeraldBinaryTests.run("/bin/bash", [script], in: directory.path, environment: environment, signal: nil) { runs.append(second) }
            allocations.append((try? SimpleHTTP.get(port: number, path: "/v1/allocations")) ?? "")
            // default/web is deleted from the cluster.
            if let text = try? String(contentsOfFile: fixtures + "/services.json", encoding: .utf8),
               var json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
               let items = json["items"] as? [[String: Any]] {
                json["items"] = items.filter { ($0["metadata"] as? [String: Any])?["name"] as? String != "web" }
                try? JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: fixtures + "/services.json"))
            }
            if let third = try? HeraldBinaryTests.run("/bin/bash", [script], in: directory.path, environment: environment, signal: nil) { runs.append(third) }
            allocations.append((try? SimpleHTTP.get(port: number, path: "/v1/allocations")) ?? "")
            nodes = (try? SimpleHTTP.get(port: number, path: "/v1/nodes")) ?? ""
        })
        #expect(serve.status == 0, "\(serve.output)")
        #expect(runs.count == 3 && runs.allSatisfy { $0.status == 0 }, "\(runs.map(\.output))")
        #expect(allocations.count == 3)
        guard allocations.count == 3 else { return }
        // First run: both LoadBalancer Services, the ClusterIP one ignored.
        #expect(allocations[0].contains(#""name":"default.web""#) && allocations[0].contains(#""addresses":["203.0.113.1"]"#), "\(allocations[0])")
        #expect(allocations[0].contains(#""name":"shop.api""#) && allocations[0].contains(#""addresses":["198.51.100.1"]"#), "\(allocations[0])")
        #expect(allocations[0].contains(#""nodes":["node-a"]"#) && allocations[0].contains(#""traffic_policy":"local""#), "only the node with a ready endpoint")
        #expect(!allocations[0].contains("kube-dns"))
        #expect(!allocations[0].contains("zz.stale") && allocations[0].contains(#""name":"zz.manual""#), "\(allocations[0])")
        #expect(runs.first?.output.contains("released zz.stale (Service deleted)") == true, "\(runs.first?.output ?? "")")
        // Second run: the same (idempotent).
        #expect(allocations[1].components(separatedBy: "updated_at").count == allocations[0].components(separatedBy: "updated_at").count)
        #expect(allocations[1].contains(#""addresses":["203.0.113.1"]"#) && allocations[1].contains(#""addresses":["198.51.100.1"]"#))
        // Third run: default.web released.
        #expect(!allocations[2].contains("default.web") && allocations[2].contains("shop.api") && allocations[2].contains("zz.manual"), "\(allocations[2])")
        #expect(nodes.contains(#""health_check":{"address":"127.0.0.1","fall":3,"interval":60000,"kind":"tcp","port":9,"rise":2,"timeout":1000}"#), "\(nodes)")
        let patches = (try? String(contentsOfFile: fixtures + "/patches.log", encoding: .utf8)) ?? ""
        #expect(patches.contains(#"default/web {"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.1"}]}}}"#), "\(patches)")
        #expect(patches.contains(#"shop/api {"status":{"loadBalancer":{"ingress":[{"ip":"198.51.100.1"}]}}}"#), "\(patches)")
    }
}
