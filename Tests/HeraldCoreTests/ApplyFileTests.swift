import Foundation
import Testing
@testable import herald

/// The file `herald apply` reads and `herald export` writes, and the plan apply works out:
/// YAML and JSON read alike, an unknown key or a wrong type is refused naming it and its line,
/// strings stay strings whatever YAML 1.1 would make of them, an object that matches Herald
/// plans nothing (defaults and read-only fields aside), and what export writes plans nothing.
@Suite struct ApplyFileTests {
    static let yaml = """
        version: 1
        nodes:
          - name: n1
            addresses: [192.0.2.11]
            health_check: { kind: http, port: 10256, address: 127.0.0.1 }
        pools:
          - name: lb
            blocks:
              - 192.0.2.0/28
            announce:
              communities: [65000:50, 65000:1:2]
              med: 10
            labels:
              tier: yes
              version: 2
        peers:
          - name: edge
            address: 127.0.0.9
            asn: 65009
            hold_time: 90
            passive: true
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

    static let json = """
        {"version": 1,
         "nodes": [{"name": "n1", "addresses": ["192.0.2.11"], "health_check": {"kind":"http","port":10256,"address":"127.0.0.1"}}],
         "pools": [{"name":"lb","blocks":["192.0.2.0/28"],"announce":{"communities":["65000:50","65000:1:2"],"med":10},
                    "labels":{"tier":"yes","version":"2"}}],
         "peers": [{"name":"edge","address":"127.0.0.9","asn":65009,"hold_time":90,"passive":true}],
         "allocations": [{"name":"default.web","pool":"lb","traffic_policy":"local","nodes":["n1"]}],
         "routes": [{"name":"pods","prefix":"10.244.0.0/24","next_hops":["n1"]}]}
        """

    static func text(_ document: ConfigDocument) -> String {
        ConfigPlan.json(Dictionary(uniqueKeysWithValues: document.objects.map { ($0.key.rawValue, $0.value) }))
    }

    @Test func yamlAndJSONReadAlike() throws {
        let fromYAML = try ConfigDocument.parse(Self.yaml)
        let fromJSON = try ConfigDocument.parse(Self.json)
        #expect(Self.text(fromYAML) == Self.text(fromJSON))
        #expect(fromYAML.objects[.peers]?["edge"]?["hold_time"] as? Int == 90)
        #expect(fromYAML.objects[.peers]?["edge"]?["passive"] as? Bool == true)
    }

    /// YAML 1.1 reads `65000:50` as the number 3900050 (base 60), `65000:1:2` as another and
    /// `yes` as true; a field of type string takes them as written.
    @Test func stringsStayStrings() throws {
        let pool = try #require(try ConfigDocument.parse(Self.yaml).objects[.pools]?["lb"])
        #expect((pool["announce"] as? [String: Any])?["communities"] as? [String] == ["65000:50", "65000:1:2"])
        #expect(pool["labels"] as? [String: String] == ["tier": "yes", "version": "2"])
    }

    @Test(arguments: [
        ("version: 1\npool:\n  - name: lb\n", "line 2: unknown key \"pool\""),
        ("pools:\n  - name: lb\n    blocks: [192.0.2.0/28]\n    blcks: []\n", "line 4: pools[0]: unknown field \"blcks\""),
        ("peers:\n  - name: r\n    address: 127.0.0.9\n    asn: 65000\n    bfd: { enabled: true, min_txx: 3 }\n",
         "line 5: peers[0].bfd: unknown field \"min_txx\""),
        ("peers:\n  - name: r\n    address: 127.0.0.9\n    asn: 65000\n    hold_time: thirty\n", "line 5: peers[0].hold_time: expected a whole number"),
        ("peers:\n  - name: r\n    address: 127.0.0.9\n    asn: 65000\n    passive: yes\n", "line 5: peers[0].passive: expected true or false"),
        ("pools: { name: lb }\n", "line 1: pools: expected a list of pools"),
        ("nodes:\n  - addresses: [192.0.2.1]\n", "line 2: nodes[0]: every node needs a name"),
        ("nodes:\n  - name: N1\n    addresses: [192.0.2.1]\n", "line 2: nodes[0].name: \"N1\" is not a name"),
        ("nodes:\n  - name: n1\n    addresses: 192.0.2.1\n", "line 3: nodes[0].addresses: expected a list of strings"),
        ("nodes:\n  - name: n1\n    addresses: [192.0.2.1]\n  - name: n1\n    addresses: [192.0.2.2]\n", "line 4: nodes[1]: node n1 is declared twice"),
        ("pools:\n  - name: lb\n", "line 2: pools[0]: pool lb needs blocks"),
        ("version: 2\n", "line 1: version: this Herald reads version 1"),
        ("{\"routes\": [{\"name\": \"r\", \"prefix\": \"10.0.0.0/8\", \"next_hop\": [\"self\"]}]}", "line 1: routes[0]: unknown field \"next_hop\""),
        ("- a\n- b\n", "line 1: expected a mapping"),
    ])
    func refusesWhatItCannotApply(text: String, message: String) {
        do {
            _ = try ConfigDocument.parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect("\(error)".hasPrefix(message), "\(error)")
        }
    }

    @Test func anEmptyFileDeclaresNothing() throws {
        #expect(try ConfigDocument.parse("").objects.isEmpty)
        #expect(try ConfigDocument.parse("version: 1\npools:\n").objects.isEmpty)
    }

    // MARK: - Plans

    /// What Herald answers for the objects of `yaml` once applied: read-only fields, defaults
    /// filled in, the managed label.
    static func current(managed: Bool = true) -> [ConfigKind: [[String: Any]]] {
        let labels: [String: Any] = managed ? [ManagedLabel.key: ManagedLabel.value] : [:]
        return [
            .nodes: [["name": "n1", "addresses": ["192.0.2.11"], "labels": labels, "created_at": "t", "updated_at": "t",
                      "health_check": ["kind": "http", "port": 10256, "path": "/", "address": "127.0.0.1", "interval": 2000, "timeout": 1000,
                                       "rise": 2, "fall": 3],
                      "health": ["state": "down"]]],
            .pools: [["name": "lb", "blocks": ["192.0.2.0/28"], "service_selector": [String: Any](), "node_selector": [String: Any](),
                      "allow_first_last_ips": NSNull(), "disabled": false, "fail_open": false, "description": "",
                      "announce": ["communities": ["65000:50", "65000:1:2"], "med": 10],
                      "labels": labels.merging(["tier": "yes", "version": "2"]) { $1 }, "usage": [String: Any](), "size": 14, "allocated": 1,
                      "free": 13, "created_at": "t", "updated_at": "t"]],
            .peers: [["name": "edge", "address": "127.0.0.9", "port": 179, "asn": 65009, "local_address": NSNull(), "password_set": false,
                      "ebgp_multihop": NSNull(), "ttl_security": NSNull(), "hold_time": 90, "keepalive_time": NSNull(),
                      "connect_retry_time": NSNull(), "passive": true, "families": ["ipv4-unicast"], "add_path_send": false,
                      "graceful_restart": true, "max_prefixes": NSNull(), "labels": labels, "enabled": true, "description": "",
                      "bfd": ["enabled": false, "min_tx": 300, "min_rx": 300, "multiplier": 3], "state": "active", "created_at": "t", "updated_at": "t"]],
            .allocations: [["name": "default.web", "pool": "lb", "family": "ipv4", "addresses": ["192.0.2.1"], "sharing_key": NSNull(),
                            "traffic_policy": "local", "nodes": ["n1"], "labels": labels, "created_at": "t", "updated_at": "t"]],
            .routes: [["name": "pods", "prefix": "10.244.0.0/24", "next_hops": ["n1"], "announce": [String: Any](), "labels": labels,
                       "created_at": "t", "updated_at": "t"]],
        ]
    }

    @Test func aFileThatMatchesPlansNothing() throws {
        let plan = ConfigPlan.make(try ConfigDocument.parse(Self.yaml), current: Self.current(), prune: true)
        #expect(plan.changes.map(\.line) == [])
        #expect(plan.summary == "no changes")
    }

    @Test func everythingNewIsCreatedInOrder() throws {
        let plan = ConfigPlan.make(try ConfigDocument.parse(Self.yaml), current: [:], prune: true)
        #expect(plan.changes.map(\.line) == ["+ node n1", "+ pool lb", "+ peer edge", "+ allocation default.web", "+ route pods"])
        #expect(plan.summary == "5 to create, 0 to change, 0 to delete")
        // Each write carries the managed label; a peer is created by POST with its name.
        for change in plan.changes {
            #expect((change.body?["labels"] as? [String: Any])?[ManagedLabel.key] as? String == ManagedLabel.value)
        }
        let peer = try #require(plan.changes.first { $0.kind == .peers })
        #expect(peer.method == "POST" && peer.path == "/v1/peers" && peer.body?["name"] as? String == "edge")
        let node = try #require(plan.changes.first { $0.kind == .nodes })
        #expect(node.method == "PUT" && node.path == "/v1/nodes/n1" && node.body?["name"] == nil)
    }

    @Test func aChangeNamesEachField() throws {
        let edited = Self.yaml.replacingOccurrences(of: "hold_time: 90", with: "hold_time: 30")
            .replacingOccurrences(of: "med: 10", with: "med: 20\n      local_pref: 200")
        let plan = ConfigPlan.make(try ConfigDocument.parse(edited), current: Self.current(), prune: false)
        #expect(plan.changes.map(\.line) == ["~ pool lb (announce.local_pref: - → 200; announce.med: 10 → 20)", "~ peer edge (hold_time: 90 → 30)"])
        // A peer is PATCHed with what differs only.
        let peer = try #require(plan.changes.last)
        #expect(peer.method == "PATCH" && ConfigPlan.json(peer.body ?? [:]) == #"{"hold_time":30}"#)
    }

    /// A field the file leaves out means the API's default: a peer that is passive in Herald
    /// and not in the file is changed back, with the value PATCH takes.
    @Test func aFieldLeftOutIsTheDefault() throws {
        let edited = Self.yaml.replacingOccurrences(of: "    passive: true\n", with: "")
            .replacingOccurrences(of: "    traffic_policy: local\n    nodes: [n1]\n", with: "")
        let plan = ConfigPlan.make(try ConfigDocument.parse(edited), current: Self.current(), prune: false)
        #expect(plan.changes.map(\.line) == ["~ peer edge (passive: true → false)",
                                             "~ allocation default.web (traffic_policy: local → cluster; nodes: [n1] → -)"])
        // The allocation keeps its pool; its addresses are Herald's to keep.
        let allocation = try #require(plan.changes.last?.body)
        #expect(allocation["pool"] as? String == "lb" && allocation["addresses"] == nil)
    }

    @Test func pruneDeletesOnlyWhatApplyManagesInReverseOrder() throws {
        var current = Self.current()
        current[.pools]?.append(["name": "manual", "blocks": ["198.51.100.0/24"], "labels": [String: Any]()])
        let without = try ConfigDocument.parse("version: 1\n")
        let plan = ConfigPlan.make(without, current: current, prune: true)
        #expect(plan.changes.map(\.line) == ["- route pods", "- allocation default.web", "- peer edge", "- pool lb", "- node n1"])
        #expect(plan.changes.allSatisfy { $0.method == "DELETE" })
        let kept = ConfigPlan.make(without, current: current, prune: false)
        #expect(kept.changes.isEmpty)
        #expect(kept.undeclared.map { "\($0.kind.singular) \($0.name)" } == ["route pods", "allocation default.web", "peer edge", "pool lb", "node n1"])
    }

    @Test func anUnmanagedObjectIsAdopted() throws {
        let plan = ConfigPlan.make(try ConfigDocument.parse(Self.yaml), current: Self.current(managed: false), prune: true)
        #expect(plan.changes.map(\.line) == ["~ node n1 (adopted: now managed by apply)", "~ pool lb (adopted: now managed by apply)",
                                             "~ peer edge (adopted: now managed by apply)", "~ allocation default.web (adopted: now managed by apply)",
                                             "~ route pods (adopted: now managed by apply)"])
        let peer = try #require(plan.changes.first { $0.kind == .peers })
        #expect(ConfigPlan.json(peer.body ?? [:]) == #"{"labels":{"herald.io/managed-by":"apply"}}"#)
    }

    /// An object the Kubernetes sync manages (same label key, its own value) is neither taken
    /// over when the file declares it nor pruned when it does not.
    @Test func anotherToolsObjectIsNeitherAdoptedNorPruned() throws {
        var current = Self.current()
        current[.allocations]?.append(["name": "default.sync", "pool": "lb", "addresses": ["192.0.2.2"],
                                       "labels": [ManagedLabel.key: "k8s-sync"]])
        let withIt = Self.yaml.replacingOccurrences(of: "allocations:\n", with: "allocations:\n  - name: default.sync\n    pool: lb\n")
        let plan = ConfigPlan.make(try ConfigDocument.parse(withIt), current: current, prune: true)
        #expect(plan.conflicts.map { "\($0.kind.singular) \($0.name) \($0.manager)" } == ["allocation default.sync k8s-sync"])
        #expect(plan.changes.isEmpty)
        #expect(ConfigPlan.make(try ConfigDocument.parse(Self.yaml), current: current, prune: true).changes.isEmpty)
    }

    /// Herald never shows a password: one in the file is set on a peer that has none, kept on
    /// one that has one (unless --send-passwords), and `""` removes it; no password in the file
    /// leaves the peer's alone.
    @Test func passwords() throws {
        func plan(_ password: String?, set: Bool, send: Bool = false) throws -> [String] {
            let text = Self.yaml.replacingOccurrences(of: "    passive: true\n", with: "    passive: true\n" + (password.map { "    password: \"\($0)\"\n" } ?? ""))
            var current = Self.current()
            current[.peers]?[0]["password_set"] = set
            return ConfigPlan.make(try ConfigDocument.parse(text), current: current, prune: false, sendPasswords: send).changes.map(\.line)
        }
        #expect(try plan(nil, set: true) == [])
        #expect(try plan("s3cret", set: true) == [])
        #expect(try plan("s3cret", set: false) == ["~ peer edge (password: none → set)"])
        #expect(try plan("s3cret", set: true, send: true) == ["~ peer edge (password: sent)"])
        #expect(try plan("", set: true) == ["~ peer edge (password: set → removed)"])
    }

    @Test func addressesAreComparedInOneSpelling() throws {
        let text = "nodes:\n  - name: n1\n    addresses: [\"2001:DB8:0:0::11\", 192.0.2.11]\n"
        let current: [ConfigKind: [[String: Any]]] = [.nodes: [["name": "n1", "addresses": ["192.0.2.11", "2001:db8::11"],
                                                                "labels": [ManagedLabel.key: ManagedLabel.value]]]]
        #expect(ConfigPlan.make(try ConfigDocument.parse(text), current: current, prune: false).changes.isEmpty)
    }

    // MARK: - Export

    @Test func whatExportWritesPlansNothing() throws {
        for managed in [true, false] {
            let current = Self.current(managed: managed)
            let objects = current.mapValues { _ in [[String: Any]]() }.merging(
                Dictionary(uniqueKeysWithValues: current.map { kind, items in (kind, items.map { ConfigPlan.exported(kind, $0) }) })) { $1 }
            let text = ConfigYAML.document(objects, header: ["test"])
            let plan = ConfigPlan.make(try ConfigDocument.parse(text), current: managed ? current : Self.current(), prune: true)
            #expect(plan.changes.map(\.line) == [], "\(text)")
        }
    }

    @Test func exportWritesOnlyWhatIsNotTheDefault() throws {
        let text = ConfigYAML.document([.peers: [ConfigPlan.exported(.peers, Self.current()[.peers]![0])]])
        #expect(text == """
            version: 1
            nodes: []
            pools: []
            peers:
              - name: edge
                address: 127.0.0.9
                asn: 65009
                hold_time: 90
                passive: true
            allocations: []
            routes: []

            """)
        let pool = ConfigYAML.document([.pools: [ConfigPlan.exported(.pools, Self.current()[.pools]![0])]])
        #expect(pool.contains("""
              - name: lb
                blocks:
                  - 192.0.2.0/28
                announce:
                  communities:
                    - "65000:1:2"
                    - "65000:50"
                  med: 10
                labels:
                  tier: "yes"
                  version: "2"
            """), "\(pool)")
    }

    @Test(arguments: [("lb", "lb"), ("192.0.2.0/28", "192.0.2.0/28"), ("65000:50", "\"65000:50\""), ("yes", "\"yes\""), ("10", "\"10\""),
                      ("1.5", "\"1.5\""), ("", "\"\""), ("a b", "\"a b\""), ("say \"hi\"", "\"say \\\"hi\\\"\""), ("fd00::1", "\"fd00::1\""),
                      ("null", "\"null\""), ("-x", "\"-x\""), ("127.0.0.9", "127.0.0.9"), ("0x1f", "\"0x1f\""), ("1e5", "\"1e5\"")])
    func yamlQuotesWhatAnotherReaderWouldMisread(text: String, written: String) {
        #expect(ConfigYAML.string(text) == written)
    }

    // MARK: - In step with the API

    /// The fields apply reads for each kind are those of the API's input schema in openapi.yaml
    /// (plus `name`, and a peer's `password_file`).
    @Test func theFileHasTheAPIsFields() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let spec = try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        func properties(_ schema: String) -> Set<String> {
            let lines = spec.components(separatedBy: "\n")
            guard let start = lines.firstIndex(of: "    \(schema):") else { return [] }
            var names: Set<String> = []
            var inProperties = false
            for line in lines[(start + 1)...] {
                if !line.hasPrefix("      ") && !line.isEmpty { break }
                if line == "      properties:" { inProperties = true; continue }
                if inProperties, line.hasPrefix("        "), !line.hasPrefix("         "), let colon = line.firstIndex(of: ":") {
                    names.insert(line[line.index(line.startIndex, offsetBy: 8)..<colon].trimmingCharacters(in: .whitespaces))
                } else if inProperties && line.hasPrefix("      ") && !line.hasPrefix("       ") {
                    inProperties = false
                }
            }
            return names
        }
        let schemas: [ConfigKind: String] = [.nodes: "NodeInput", .pools: "PoolInput", .peers: "PeerInput", .allocations: "AllocationInput",
                                             .routes: "StaticRouteInput"]
        for (kind, schema) in schemas {
            let api = properties(schema).union(["name"]).union(kind == .peers ? ["password_file"] : [])
            #expect(Set(kind.fields.map(\.name)) == api, "\(kind): \(schema) has \(api.sorted())")
        }
        #expect(Set(ConfigKind.announce.map(\.name)) == properties("Announce"))
        #expect(Set(ConfigKind.nodes.fields.compactMap { field -> [Field]? in
            if case .object(let inner) = field.type { return inner } else { return nil }
        }.flatMap { $0 }.map(\.name)) == properties("HealthCheck"))
    }
}
