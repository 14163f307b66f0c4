import Foundation
import Glibc
import Testing

/// The CLI creates, changes and removes every resource against a running Herald: a change sends
/// only the options given, so an option left out keeps its value (`alloc set default.web --pool
/// lb` once turned a traffic-policy-local allocation into cluster with no nodes); the connection
/// options work before the command; `events` prints RFC 3339 times like `history`; and a refused
/// request names each field on its own line.
@Suite(.serialized) struct CLIChangeTests {
    @Test func createChangeAndRemoveEveryResource() throws {
        let directory = ScratchDirectory()
        let clients = ScratchDirectory()
        var outputs: [String: HeraldBinaryTests.Finished] = [:]
        var events = "", eventsJSON = "", routeGone = ""
        let result = try HeraldBinaryTests.run(
            HeraldBinaryTests.builtBinary, ["serve", "--api-listen", "127.0.0.1:0", "--bgp-listen", "127.0.0.1:0"],
            in: directory.path, whenReady: { log in
                guard let text = log.firstMatch(of: /api_listen=127\.0\.0\.1:(\d+)/).map({ String($0.1) }), let port = UInt16(text) else { return }
                let server = "http://127.0.0.1:\(port)"
                func herald(_ arguments: [String], environment: [String: String] = ["HERALD_SERVER": server]) -> HeraldBinaryTests.Finished? {
                    try? HeraldBinaryTests.run(HeraldBinaryTests.builtBinary, arguments, in: clients.path, environment: environment, signal: nil)
                }
                for (key, arguments) in [
                    // Herald probes within a second: the check goes to loopback, never to 192.0.2.11.
                    ("node", ["node", "set", "n1", "--address", "192.0.2.11", "--label", "zone=a", "--health-check", "http:10256/healthz",
                              "--health-address", "127.0.0.31",
                              "--health-interval", "60000", "-o", "json"]),
                    ("nodeLabel", ["node", "set", "n1", "--label", "zone=b", "-o", "json"]),
                    ("node2", ["node", "set", "n2", "--address", "192.0.2.12"]),
                    ("pool", ["pool", "add", "lb", "--block", "192.0.2.0/28", "--service-selector", "app=web", "--announce-community", "65000:1",
                              "--announce-med", "10", "-o", "json"]),
                    ("poolLocalPref", ["pool", "set", "lb", "--announce-local-pref", "200", "-o", "json"]),
                    ("alloc", ["alloc", "set", "default.web", "--pool", "lb", "--node", "n1", "-o", "json"]),
                    ("allocPool", ["alloc", "set", "default.web", "--pool", "lb", "-o", "json"]),
                    ("allocCluster", ["alloc", "set", "default.web", "--traffic-policy", "cluster", "-o", "json"]),
                    ("route", ["route", "add", "pods", "--prefix", "10.244.0.0/24", "--next-hop", "n1", "--label", "k=v", "-o", "json"]),
                    ("routeMED", ["route", "set", "pods", "--announce-med", "5", "-o", "json"]),
                    ("peer", ["peer", "add", "edge", "--address", "127.0.0.9", "--asn", "65009", "--passive", "--hold-time", "30",
                              "--families", "ipv4-unicast", "--label", "site=a", "--bfd", "-o", "json"]),
                    ("peerHoldTime", ["peer", "set", "edge", "--hold-time", "60", "-o", "json"]),
                    ("peerReset", ["peer", "reset", "edge", "--soft", "--direction", "out"]),
                    ("speaker", ["speaker", "set", "--hold-time", "120", "-o", "json"]),
                    ("oneFieldError", ["history", "--limit", "5000"]),
                    ("fieldErrors", ["peer", "set", "edge", "--hold-time", "1", "--port", "0"]),
                    ("badLabel", ["alloc", "set", "x", "--label", "novalue"]),
                ] {
                    outputs[key] = herald(arguments)
                }
                outputs["rootServer"] = herald(["--server", server, "status"], environment: [:])
                outputs["rootServerJSON"] = herald(["--server=\(server)", "-o", "json", "speaker"], environment: [:])

                // Each follower is told of changes (a node's label, again and again until it has
                // subscribed) until it prints one.
                func follow(_ arguments: [String]) -> String {
                    let own = ScratchDirectory()
                    var change = 0
                    let followed = try? HeraldBinaryTests.run(HeraldBinaryTests.builtBinary, arguments, in: own.path,
                                                              environment: ["HERALD_SERVER": server], readyLine: "", whenReady: { _ in
                        let deadline = Date().addingTimeInterval(20)
                        repeat {
                            change += 1
                            _ = try? SimpleHTTP.send(port: port, method: "PUT", path: "/v1/nodes/n2", json: #"{"addresses":["192.0.2.12"],"labels":{"change":"\#(change)"}}"#)
                            usleep(200_000)
                        } while (try? String(contentsOfFile: own.file("output.log"), encoding: .utf8))?.contains("node n2 changed") != true && Date() < deadline
                    })
                    return followed?.output ?? ""
                }
                events = follow(["events"])
                eventsJSON = follow(["events", "-o", "json"])

                for (key, arguments) in [
                    ("allocRemoved", ["alloc", "rm", "default.web"]), ("routeRemoved", ["route", "rm", "pods"]), ("poolRemoved", ["pool", "rm", "lb"]),
                    ("nodeRemoved", ["node", "rm", "n1"]), ("node2Removed", ["node", "rm", "n2"]), ("peerRemoved", ["peer", "rm", "edge"]),
                    ("pools", ["pools", "-o", "json"]), ("nodes", ["nodes", "-o", "json"]), ("peers", ["peers", "-o", "json"]),
                    ("allocGone", ["alloc", "get", "default.web"]),
                ] {
                    outputs[key] = herald(arguments)
                }
                routeGone = (try? SimpleHTTP.get(port: port, path: "/v1/routes/pods")) ?? "no answer"
            })
        #expect(result.status == 0, "\(result.output)")
        func object(_ key: String) -> [String: Any] {
            let output = outputs[key]?.output ?? ""
            let parsed = (try? JSONSerialization.jsonObject(with: Data(output.utf8))) as? [String: Any]
            #expect(outputs[key]?.status == 0 && parsed != nil, "\(key): \(output)")
            return parsed ?? [:]
        }

        // Nodes: labels changed; the address and the health check kept.
        #expect(object("node")["labels"] as? [String: String] == ["zone": "a"])
        let node = object("nodeLabel")
        #expect(node["labels"] as? [String: String] == ["zone": "b"] && node["addresses"] as? [String] == ["192.0.2.11"], "\(node)")
        let check = node["health_check"] as? [String: Any] ?? [:]
        #expect(check["kind"] as? String == "http" && check["port"] as? Int == 10256 && check["path"] as? String == "/healthz"
                && check["interval"] as? Int == 60000 && check["address"] as? String == "127.0.0.31", "\(check)")

        // Pools: one announce attribute added; the blocks, selector and other attributes kept.
        let pool = object("poolLocalPref")
        #expect(pool["blocks"] as? [String] == ["192.0.2.0/28"] && pool["service_selector"] as? [String: String] == ["app": "web"], "\(pool)")
        let announce = pool["announce"] as? [String: Any] ?? [:]
        #expect(announce["communities"] as? [String] == ["65000:1"] && announce["med"] as? Int == 10 && announce["local_pref"] as? Int == 200,
                "\(announce)")

        // Allocations: the pool given again, the traffic policy and nodes not given stay.
        #expect(object("alloc")["traffic_policy"] as? String == "local")
        let allocation = object("allocPool")
        #expect(allocation["traffic_policy"] as? String == "local" && allocation["nodes"] as? [String] == ["n1"], "\(allocation)")
        #expect(allocation["addresses"] as? [String] == object("alloc")["addresses"] as? [String])
        let cluster = object("allocCluster")
        #expect(cluster["traffic_policy"] as? String == "cluster" && cluster["nodes"] as? [String] == [] && cluster["pool"] as? String == "lb",
                "\(cluster)")

        // Static routes: MED added; the prefix, next hop and labels kept.
        let route = object("routeMED")
        #expect(route["prefix"] as? String == "10.244.0.0/24" && route["next_hops"] as? [String] == ["n1"]
                && route["labels"] as? [String: String] == ["k": "v"], "\(route)")
        #expect((route["announce"] as? [String: Any])?["med"] as? Int == 5)

        // Peers: PATCH with the hold time alone.
        #expect(object("peer")["hold_time"] as? Int == 30)
        let peer = object("peerHoldTime")
        #expect(peer["hold_time"] as? Int == 60 && peer["passive"] as? Bool == true && peer["families"] as? [String] == ["ipv4-unicast"]
                && peer["labels"] as? [String: String] == ["site": "a"] && (peer["bfd"] as? [String: Any])?["enabled"] as? Bool == true, "\(peer)")
        #expect(outputs["peerReset"]?.status == 0 && outputs["peerReset"]?.output == "soft reset of edge\n", "\(String(describing: outputs["peerReset"]))")

        // The speaker: hold time changed, the rest kept (the default AS).
        let speaker = object("speaker")
        #expect(speaker["hold_time"] as? Int == 120 && speaker["asn"] as? Int == 64512 && speaker["keepalive_time"] as? Int == 30, "\(speaker)")

        // --server (and --output) before the command, without HERALD_SERVER.
        #expect(outputs["rootServer"]?.status == 0 && outputs["rootServer"]?.output.contains("router id") == true,
                "\(String(describing: outputs["rootServer"]))")
        #expect(object("rootServerJSON")["hold_time"] as? Int == 120)

        // Refusals: one field on the line, several one per line; a malformed option is a usage error.
        #expect(outputs["oneFieldError"]?.status == 1
                && outputs["oneFieldError"]?.output == "herald: 400 Bad Request: The request is invalid: limit: must be 1–1000\n",
                "\(String(describing: outputs["oneFieldError"]))")
        let errors = outputs["fieldErrors"]?.output ?? ""
        #expect(outputs["fieldErrors"]?.status == 1 && errors.hasPrefix("herald: 422 Unprocessable Content: The request is invalid:\n  port: must be 1–65535\n  hold_time: "),
                "\(errors)")
        #expect(outputs["badLabel"]?.status == 64 && outputs["badLabel"]?.output.contains("'novalue' is invalid for '--label") == true,
                "\(String(describing: outputs["badLabel"]))")

        // Events: RFC 3339 times, as history prints them, not milliseconds.
        let change = events.split(separator: "\n").first { $0.contains("node n2 changed") } ?? ""
        #expect(change.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  change  reason="node n2 changed" request_id=\S+/) != nil, "\(events)")
        let changeJSON = eventsJSON.split(separator: "\n").first { $0.contains("node n2 changed") } ?? ""
        #expect(changeJSON.contains(/"at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/) && changeJSON.hasSuffix(#""event":"change"}"#), "\(eventsJSON)")

        // Removed, each of them.
        for key in ["allocRemoved", "routeRemoved", "poolRemoved", "nodeRemoved", "node2Removed", "peerRemoved"] {
            #expect(outputs[key]?.status == 0 && outputs[key]?.output == "", "\(key): \(String(describing: outputs[key]))")
        }
        for (key, list) in [("pools", "pools"), ("nodes", "nodes"), ("peers", "peers")] {
            #expect((object(key)[list] as? [Any])?.isEmpty == true, "\(key)")
        }
        #expect(outputs["allocGone"]?.status == 3)
        #expect(routeGone.hasPrefix("HTTP/1.1 404"), "\(routeGone.prefix(200))")
    }
}
