import Foundation
import Testing

/// contrib/k8s-sync against a real `herald serve`, with a stand-in kubectl serving recorded
/// `kubectl … -o json` output from contrib/k8s-sync/fixtures (a scenario's folder there replaces
/// the files it has) and recording what the script writes: status patches, annotations (both
/// applied to the recorded Services, so the next pass sees them) and Events.
@Suite(.serialized, .heavy) struct KubernetesSyncTests {
    /// Services become allocations, addresses go back into the Service status, a second run
    /// changes nothing, and a deleted Service releases its allocation. The script reads every
    /// page of its allocations (one a page here, HERALD_PAGE_LIMIT=1): a stale one past the first
    /// page is released too, and one it did not make is left alone.
    @Test func servicesBecomeAllocationsAndDeletedOnesAreReleased() throws {
        try Self.withCluster(scenario: nil, setup: { cluster in
            // Left by an earlier pass for a Service deleted since (sorted after the others, so on
            // the last page), and one made by hand; addresses from the top of the pool.
            cluster.put("/v1/allocations/zz.stale", #"{"pool":"default","address":"203.0.113.14","labels":{"herald.io/managed-by":"k8s-sync"}}"#)
            cluster.put("/v1/allocations/zz.manual", #"{"pool":"default","address":"203.0.113.13"}"#)
        }) { cluster in
            let environment = ["HERALD_PAGE_LIMIT": "1",
                               // Checked on loopback only: the fixtures' node addresses are not ours.
                               "HERALD_NODE_HEALTH_CHECK": #"{"kind":"tcp","port":9,"address":"127.0.0.1","interval":60000}"#]
            let first = cluster.sync(environment: environment)
            let afterFirst = cluster.allocations()
            let second = cluster.sync(environment: environment)
            let afterSecond = cluster.allocations()
            cluster.editServices { $0.removeAll { $0.name == "web" } }
            let third = cluster.sync(environment: environment)
            let afterThird = cluster.allocations()
            #expect([first, second, third].allSatisfy { $0.status == 0 }, "\([first, second, third].map(\.output))")
            // First run: both LoadBalancer Services, the ClusterIP one ignored.
            #expect(afterFirst["default.web"]?.addresses == ["203.0.113.1"], "\(afterFirst)")
            #expect(afterFirst["shop.api"]?.addresses == ["198.51.100.1"], "\(afterFirst)")
            #expect(afterFirst["shop.api"]?.nodes == ["node-a"] && afterFirst["shop.api"]?.trafficPolicy == "local", "only the node with a ready endpoint")
            #expect(!afterFirst.keys.contains { $0.contains("kube-dns") })
            #expect(afterFirst["zz.stale"] == nil && afterFirst["zz.manual"] != nil, "\(afterFirst)")
            #expect(first.output.contains("released zz.stale (Service deleted)"), "\(first.output)")
            // Second run: the same (idempotent), no status written again.
            #expect(Self.held(afterSecond) == Self.held(afterFirst))
            // Third run: default.web released.
            #expect(afterThird["default.web"] == nil && afterThird["shop.api"] != nil && afterThird["zz.manual"] != nil, "\(afterThird)")
            let nodes = cluster.body("/v1/nodes")
            #expect(nodes.contains(#""health_check":{"address":"127.0.0.1","fall":3,"interval":60000,"kind":"tcp","port":9,"rise":2,"timeout":1000}"#), "\(nodes)")
            #expect(cluster.lines("patches.log") == [#"default/web {"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.1"}]}}}"#,
                                                     #"shop/api {"status":{"loadBalancer":{"ingress":[{"ip":"198.51.100.1"}]}}}"#])
            #expect(cluster.lines("events.log").isEmpty)
        }
    }

    /// Herald's class is herald.io/bgp; class-less Services are Herald's unless the script runs
    /// with HERALD_DEFAULT_CLASS=0 or --no-default-class; another class is never touched, not
    /// even its allocation made earlier.
    @Test func onlyHeraldsClassAndClassLessServicesAreSynced() throws {
        try Self.withCluster(scenario: "classes", setup: { cluster in
            cluster.put("/v1/allocations/default.cilium", #"{"pool":"default","address":"203.0.113.14","labels":{"herald.io/managed-by":"k8s-sync","k8s.namespace":"default","k8s.service":"cilium"}}"#)
        }) { cluster in
            let before = cluster.allocations()
            let withoutDefault = cluster.sync(environment: ["HERALD_DEFAULT_CLASS": "0"])
            let afterFirst = cluster.allocations()
            let withDefault = cluster.sync()
            let afterSecond = cluster.allocations()
            let flagged = cluster.sync(["--no-default-class"])
            let afterThird = cluster.allocations()
            #expect([withoutDefault, withDefault, flagged].allSatisfy { $0.status == 0 }, "\([withoutDefault, withDefault, flagged].map(\.output))")
            #expect(afterFirst["default.herald"]?.addresses == ["203.0.113.1"], "\(afterFirst)")
            #expect(afterFirst["default.plain"] == nil, "\(afterFirst)")
            #expect(afterSecond["default.plain"]?.addresses == ["203.0.113.2"], "\(afterSecond)")
            // Left alone without the default class: neither released nor changed.
            #expect(Self.held(afterThird) == Self.held(afterSecond))
            for allocations in [afterFirst, afterSecond, afterThird] {
                #expect(allocations["default.cilium"] == before["default.cilium"], "the other class's allocation is untouched")
            }
            #expect(cluster.lines("patches.log") == [#"default/herald {"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.1"}]}}}"#,
                                                     #"default/plain {"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.2"}]}}}"#])
            #expect(cluster.sync(["--no-such-flag"]).status == 2)
        }
    }

    /// The requested-address annotations of MetalLB, Cilium and kube-vip and
    /// spec.loadBalancerIP; sources that disagree change nothing and say why in an Event; more
    /// than one address of a family holds the first and says which were not held.
    @Test func requestedAddressesComeFromEachSource() throws {
        try Self.withCluster(scenario: "addresses", setup: { cluster in
            cluster.put("/v1/pools/default", #"{"blocks":["203.0.113.0/28","2001:db8::/120"]}"#)
        }) { cluster in
            let first = cluster.sync()
            let afterFirst = cluster.allocations()
            let second = cluster.sync()
            #expect(first.status == 1 && second.status == 1, "the disagreeing Service fails: \(first.output)")
            #expect(afterFirst["default.metallb"]?.addresses == ["203.0.113.5"], "\(afterFirst)")
            #expect(afterFirst["default.cilium"]?.addresses == ["203.0.113.6"], "\(afterFirst)")
            #expect(afterFirst["default.kube-vip"]?.addresses == ["203.0.113.7"], "\(afterFirst)")
            #expect(afterFirst["default.spec"]?.addresses == ["203.0.113.8"], "\(afterFirst)")
            #expect(afterFirst["default.agreeing"]?.addresses == ["203.0.113.9"], "\(afterFirst)")
            #expect(afterFirst["default.two"]?.addresses == ["203.0.113.12"], "\(afterFirst)")
            #expect(afterFirst["default.dual"]?.addresses == ["203.0.113.3", "2001:db8::5"], "\(afterFirst)")
            #expect(afterFirst["default.disagreeing"] == nil, "\(afterFirst)")
            #expect(Self.held(cluster.allocations()) == Self.held(afterFirst))
            let events = cluster.events()
            #expect(events.count == 2, "once each, not again on the second run: \(events)")
            #expect(events.contains { $0.service == "default/disagreeing" && $0.reason == "AllocationFailed"
                    && $0.message == "requested addresses disagree: metallb.io/loadBalancerIPs asks 203.0.113.10, spec.loadBalancerIP asks 203.0.113.11" }, "\(events)")
            #expect(events.contains { $0.service == "default/two" && $0.reason == "AddressNotHeld"
                    && $0.message == "Herald holds one address per family; not held: 203.0.113.13" }, "\(events)")
        }
    }

    /// metallb.io/allow-shared-ip and lbipam.cilium.io/sharing-key become the allocation's
    /// sharing_key: Services with the same key share an address, which is held until the last
    /// of them goes.
    @Test func servicesWithTheSameSharingKeyShareAnAddress() throws {
        try Self.withCluster(scenario: "sharing") { cluster in
            let first = cluster.sync()
            let afterFirst = cluster.allocations()
            #expect(first.status == 1, "default/e's keys disagree: \(first.output)")
            #expect(afterFirst["default.a"]?.addresses == ["203.0.113.9"] && afterFirst["default.b"]?.addresses == ["203.0.113.9"], "\(afterFirst)")
            #expect(afterFirst["default.a"]?.sharingKey == "web", "\(afterFirst)")
            #expect(afterFirst["other.c"]?.addresses == ["203.0.113.1"] && afterFirst["other.d"]?.addresses == ["203.0.113.1"], "\(afterFirst)")
            #expect(afterFirst["default.e"] == nil)
            #expect(cluster.events().map(\.message) == ["sharing keys disagree: metallb.io/allow-shared-ip is x, lbipam.cilium.io/sharing-key is y"])
            #expect(cluster.lines("patches.log").filter { $0.contains("203.0.113.9") }.count == 2)

            cluster.editServices { $0.removeAll { $0.name == "a" } }
            _ = cluster.sync()
            let afterOne = cluster.allocations()
            #expect(afterOne["default.a"] == nil && afterOne["default.b"]?.addresses == ["203.0.113.9"], "\(afterOne)")
            #expect(cluster.put("/v1/allocations/by-hand", #"{"pool":"default","address":"203.0.113.9"}"#).hasPrefix("HTTP/1.1 409"), "still held")

            cluster.editServices { $0.removeAll { $0.name == "b" } }
            _ = cluster.sync()
            #expect(cluster.allocations()["default.b"] == nil)
            #expect(cluster.put("/v1/allocations/by-hand", #"{"pool":"default","address":"203.0.113.9"}"#).hasPrefix("HTTP/1.1 201"), "released with the last")
        }
    }

    /// externalTrafficPolicy Local: the nodes of the Service's ready endpoints (in its own
    /// namespace, across its EndpointSlices; a ready condition left unset counts as ready), read
    /// with one EndpointSlice list; a Service without a ready endpoint is left as it is.
    @Test func localServicesFollowTheirReadyEndpoints() throws {
        try Self.withCluster(scenario: "local") { cluster in
            let first = cluster.sync()
            let afterFirst = cluster.allocations()
            #expect(first.status == 0, "\(first.output)")
            #expect(afterFirst["shop.api"]?.nodes == ["node-a"] && afterFirst["shop.api"]?.trafficPolicy == "local", "\(afterFirst)")
            #expect(afterFirst["default.api"]?.nodes == ["node-b"], "\(afterFirst)")
            #expect(afterFirst["default.idle"] == nil && first.output.contains("default/idle: externalTrafficPolicy Local but no ready endpoint"), "\(first.output)")
            // node-b's endpoint of shop/api becomes ready.
            try cluster.edit("endpointslices.json") { text in text.replacingOccurrences(of: #""conditions": {"ready": false}, "nodeName": "node-b""#,
                                                                                      with: #""conditions": {"ready": true}, "nodeName": "node-b""#) }
            _ = cluster.sync()
            let afterSecond = cluster.allocations()
            #expect(afterSecond["shop.api"]?.nodes == ["node-a", "node-b"], "\(afterSecond)")
            #expect(afterSecond["default.idle"]?.nodes == ["node-b"], "\(afterSecond)")
        }
    }

    /// `namespace.service` over 63 characters gets a stable shortened name with the full name in
    /// the labels; an allocation made earlier for a Service is found by its labels, whatever its
    /// name.
    @Test func longNamesAreShortenedStablyAndFoundByLabels() throws {
        let long = "cattle-monitoring-system.rancher-monitoring-promethe-0ea5f00257"  // sha256sum of namespace/service
        try Self.withCluster(scenario: "long-names", setup: { cluster in
            cluster.put("/v1/allocations/legacy-web", #"{"pool":"default","address":"203.0.113.12","labels":{"herald.io/managed-by":"k8s-sync","k8s.namespace":"default","k8s.service":"web"}}"#)
        }) { cluster in
            let first = cluster.sync()
            let afterFirst = cluster.allocations()
            let second = cluster.sync()
            #expect(first.status == 0 && second.status == 0, "\(first.output) \(second.output)")
            #expect(afterFirst[long]?.addresses == ["203.0.113.1"], "\(afterFirst)")
            #expect(afterFirst[long]?.labels["k8s.namespace"] == "cattle-monitoring-system", "\(afterFirst)")
            #expect(afterFirst[long]?.labels["k8s.service"] == "rancher-monitoring-prometheus-node-exporter", "\(afterFirst)")
            #expect(afterFirst["legacy-web"]?.addresses == ["203.0.113.12"] && afterFirst["default.web"] == nil, "\(afterFirst)")
            #expect(Self.held(cluster.allocations()) == Self.held(afterFirst), "the second run changes nothing")
            cluster.editServices { $0.removeAll { $0.name.hasPrefix("rancher-") } }
            _ = cluster.sync()
            #expect(cluster.allocations()[long] == nil)
        }
    }

    /// A Service Herald refuses: the log and a Warning Event carry the problem's field errors;
    /// the Event is written once (herald.io/last-error remembers it), and the annotation goes
    /// when the Service syncs again.
    @Test func aFailureIsWrittenBackOnceAsAnEvent() throws {
        try Self.withCluster(scenario: "failure") { cluster in
            let first = cluster.sync()
            let second = cluster.sync()
            #expect(first.status == 1 && second.status == 1)
            #expect(first.output.contains(#"PUT /v1/allocations/shop.broken answered 422"#) && first.output.contains(#"pool: pool "nope" does not exist"#), "\(first.output)")
            #expect(cluster.allocations()["shop.fine"] != nil && cluster.allocations()["shop.broken"] == nil)
            let events = cluster.events()
            #expect(events.count == 1, "\(events)")
            #expect(events.first?.service == "shop/broken" && events.first?.reason == "AllocationFailed" && events.first?.type == "Warning", "\(events)")
            #expect(events.first?.message.contains(#"pool: pool "nope" does not exist"#) == true, "\(events)")
            #expect(events.first?.uid == "uid-shop-broken")

            cluster.editServices { services in
                for index in services.indices where services[index].name == "broken" {
                    var metadata = services[index]["metadata"] as? [String: Any] ?? [:]
                    var annotations = metadata["annotations"] as? [String: Any] ?? [:]
                    annotations["herald.io/pool"] = nil
                    metadata["annotations"] = annotations
                    services[index]["metadata"] = metadata
                }
            }
            let third = cluster.sync()
            #expect(third.status == 0, "\(third.output)")
            #expect(cluster.allocations()["shop.broken"] != nil)
            #expect(cluster.events().count == 1)
            #expect(cluster.lines("annotations.log").last == "shop/broken herald.io/last-error-", "\(cluster.lines("annotations.log"))")
        }
    }

    // MARK: - The cluster

    struct Allocation: Equatable {
        let addresses: [String]
        let nodes: [String]
        let trafficPolicy: String
        let sharingKey: String?
        let labels: [String: String]
        let updatedAt: String
    }

    /// The allocations without their updated_at, which every PUT moves even when nothing changes.
    static func held(_ allocations: [String: Allocation]) -> [String: Allocation] {
        allocations.mapValues { Allocation(addresses: $0.addresses, nodes: $0.nodes, trafficPolicy: $0.trafficPolicy, sharingKey: $0.sharingKey,
                                           labels: $0.labels, updatedAt: "") }
    }

    struct Event {
        let service: String
        let uid: String
        let reason: String
        let type: String
        let message: String
    }

    /// One `herald serve` with the pools `default` and `shop`, and the fixtures the script reads.
    struct Cluster {
        let port: UInt16
        let fixtures: String
        let runs: String
        let script: String
        let stubs: String

        /// Runs the script once; its output is what it logged.
        func sync(_ arguments: [String] = [], environment: [String: String] = [:]) -> HeraldBinaryTests.Finished {
            let environment = ["HERALD_SERVER": "http://127.0.0.1:\(port)", "FIXTURES": fixtures,
                               // The stand-in kubectl runs from the repository (a freshly copied
                               // executable can fail to exec with ETXTBSY); its data is the copy.
                               "PATH": "\(stubs):/usr/bin:/bin"].merging(environment) { $1 }
            return (try? HeraldBinaryTests.run("/bin/bash", [script] + arguments, in: runs, environment: environment, signal: nil))
                ?? HeraldBinaryTests.Finished(status: -1, output: "could not run \(script)")
        }

        @discardableResult func put(_ path: String, _ json: String) -> String {
            (try? SimpleHTTP.send(port: port, method: "PUT", path: path, json: json)) ?? ""
        }

        /// The body of a GET.
        func body(_ path: String) -> String {
            let response = (try? SimpleHTTP.get(port: port, path: path)) ?? ""
            return response.range(of: "\r\n\r\n").map { String(response[$0.upperBound...]) } ?? ""
        }

        func allocations() -> [String: Allocation] {
            guard let json = try? JSONSerialization.jsonObject(with: Data(body("/v1/allocations?limit=1000").utf8)) as? [String: Any],
                  let items = json["allocations"] as? [[String: Any]] else { return [:] }
            var result: [String: Allocation] = [:]
            for item in items {
                guard let name = item["name"] as? String else { continue }
                result[name] = Allocation(addresses: item["addresses"] as? [String] ?? [], nodes: item["nodes"] as? [String] ?? [],
                                          trafficPolicy: item["traffic_policy"] as? String ?? "", sharingKey: item["sharing_key"] as? String,
                                          labels: item["labels"] as? [String: String] ?? [:], updatedAt: item["updated_at"] as? String ?? "")
            }
            return result
        }

        func lines(_ file: String) -> [String] {
            ((try? String(contentsOfFile: fixtures + "/" + file, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        func events() -> [Event] {
            lines("events.log").compactMap { line in
                guard let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let object = json["involvedObject"] as? [String: Any] else { return nil }
                return Event(service: "\(object["namespace"] ?? "")/\(object["name"] ?? "")", uid: object["uid"] as? String ?? "",
                             reason: json["reason"] as? String ?? "", type: json["type"] as? String ?? "", message: json["message"] as? String ?? "")
            }
        }

        func edit(_ file: String, _ change: (String) -> String) throws {
            let path = fixtures + "/" + file
            try change(try String(contentsOfFile: path, encoding: .utf8)).write(toFile: path, atomically: true, encoding: .utf8)
        }

        /// Changes the recorded Services (as `kubectl delete` or `kubectl edit` would).
        func editServices(_ change: (inout [[String: Any]]) -> Void) {
            let path = fixtures + "/services.json"
            guard let data = FileManager.default.contents(atPath: path),
                  var json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  var items = json["items"] as? [[String: Any]] else { Issue.record("cannot read \(path)"); return }
            change(&items)
            json["items"] = items
            try? JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        }
    }

    /// Starts `herald serve` with the pools default (203.0.113.0/28) and shop (198.51.100.0/28,
    /// for Services labelled tier=shop), copies the fixtures with `scenario`'s files over them,
    /// runs `setup` and then `body`.
    static func withCluster(scenario: String?, setup: (Cluster) -> Void = { _ in }, _ body: (Cluster) throws -> Void) throws {
        for tool in ["/usr/bin/jq", "/usr/bin/curl", "/usr/bin/sha256sum"] where !FileManager.default.isExecutableFile(atPath: tool) {
            if ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "required" {
                Issue.record("\(tool) is missing (Debian packages jq, curl and coreutils)")
            } else {
                print("skipping: \(tool) is not installed")
            }
            return
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let contrib = root.appendingPathComponent("contrib/k8s-sync")
        let recorded = contrib.appendingPathComponent("fixtures").path
        let directory = ScratchDirectory()
        // A private copy of the fixtures: the stand-in kubectl writes into it.
        let fixtures = directory.file("fixtures")
        let runs = directory.file("runs")
        try FileManager.default.copyItem(atPath: recorded, toPath: fixtures)
        try FileManager.default.createDirectory(atPath: runs, withIntermediateDirectories: true)
        if let scenario {
            for file in try FileManager.default.contentsOfDirectory(atPath: recorded + "/" + scenario) {
                try? FileManager.default.removeItem(atPath: fixtures + "/" + file)
                try FileManager.default.copyItem(atPath: recorded + "/" + scenario + "/" + file, toPath: fixtures + "/" + file)
            }
        }
        var failure: (any Error)?
        let serve = try HeraldBinaryTests.run(HeraldBinaryTests.builtBinary, ["serve", "--api-listen", "127.0.0.1:0"], in: directory.path, whenReady: { log in
            guard let port = log.firstMatch(of: /api_listen=127\.0\.0\.1:(\d+)/).map({ String($0.1) }), let number = UInt16(port) else { return }
            let cluster = Cluster(port: number, fixtures: fixtures, runs: runs, script: contrib.appendingPathComponent("herald-k8s-sync.sh").path, stubs: recorded)
            cluster.put("/v1/pools/default", #"{"blocks":["203.0.113.0/28"]}"#)
            cluster.put("/v1/pools/shop", #"{"blocks":["198.51.100.0/28"],"service_selector":{"tier":"shop"}}"#)
            setup(cluster)
            do { try body(cluster) } catch { failure = error }
        })
        if let failure { throw failure }
        #expect(serve.status == 0, "\(serve.output)")
    }
}

private extension Dictionary where Key == String, Value == Any {
    var name: String { (self["metadata"] as? [String: Any])?["name"] as? String ?? "" }
}
