import Foundation
public import BGPSpeaker
public import HTTPServer
internal import IP
public import Store
internal import Synchronization

/// Prometheus metrics (`GET /metrics`, text format 0.0.4): BGP sessions, pools, routes, HTTP
/// requests and SQLite commit latency, process memory and descriptors. Names follow Prometheus
/// conventions (`_total` counters, `_seconds` and `_bytes` units) and pass `promtool check metrics`.
public final class Metrics: Sendable {
    /// Upper bounds, in seconds, of the latency histogram buckets.
    static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    struct Histogram: Sendable {
        var counts = [UInt64](repeating: 0, count: Metrics.buckets.count)
        var count: UInt64 = 0
        var sum: Double = 0

        mutating func observe(_ seconds: Double) {
            for (index, bound) in Metrics.buckets.enumerated() where seconds <= bound { counts[index] += 1 }
            count += 1
            sum += seconds
        }
    }

    struct RequestKey: Hashable, Sendable {
        let method: String
        let route: String
        let status: Int
    }

    private let requests = Mutex<[RequestKey: UInt64]>([:])
    private let requestLatency = Mutex<[String: Histogram]>([:])  // key: "METHOD route"
    private let commits = Mutex(Histogram())

    public init() {}

    /// For `HTTPServer.Configuration.observer`.
    public func observe(_ request: HTTPResponder.RequestObservation) {
        let route = request.route ?? "unmatched"
        requests.withLock { $0[RequestKey(method: request.method.rawValue, route: route, status: request.status), default: 0] += 1 }
        requestLatency.withLock { $0["\(request.method.rawValue) \(route)", default: Histogram()].observe(request.seconds) }
    }

    /// For `Committer(commitObserver:)`: one batch commit took `seconds`.
    public func observeCommit(seconds: Double) {
        commits.withLock { $0.observe(seconds) }
    }

    // MARK: - Rendering

    /// The exposition text. `speaker` and the database give the current state; counters and
    /// histograms come from what was observed.
    /// BFD sessions (RFC 5880), for the peers that run one.
    private func renderBFD(_ sessions: [(peer: String, bfd: BFDSnapshot)], into out: inout Exposition) {
        guard !sessions.isEmpty else { return }
        out.family("herald_bfd_session_state", "gauge", "1 for the peer's current BFD session state.")
        for (peer, bfd) in sessions {
            for state in ["admin_down", "down", "init", "up"] { out.sample("herald_bfd_session_state", ["peer": peer, "state": state], bfd.state == state ? 1 : 0) }
        }
        out.family("herald_bfd_detection_time_seconds", "gauge", "Negotiated BFD detection time; 0 before the peer is heard.")
        for (peer, bfd) in sessions { out.sample("herald_bfd_detection_time_seconds", ["peer": peer], (bfd.detectionTime ?? 0) / 1000) }
        let counters: [(String, String, (BFDSnapshot) -> Int)] = [
            ("herald_bfd_packets_received_total", "BFD Control packets accepted.", { $0.packetsIn }),
            ("herald_bfd_packets_sent_total", "BFD Control packets sent.", { $0.packetsOut }),
            ("herald_bfd_packets_discarded_total", "BFD Control packets dropped: malformed, or TTL other than 255.", { $0.packetsDiscarded }),
        ]
        for (name, help, value) in counters {
            out.family(name, "counter", help)
            for (peer, bfd) in sessions { out.sample(name, ["peer": peer], Double(value(bfd))) }
        }
    }

    /// Cluster mode: this replica's standing.
    private func renderCluster(_ cluster: ClusterState, into out: inout Exposition) {
        let now = Clock.nowMilliseconds()
        let gauges: [(String, String, Double)] = [
            ("herald_cluster_leader", "1 when this replica's node is the Raft leader.", cluster.isLeader ? 1 : 0),
            ("herald_cluster_quorum", "1 while a leader is reachable (writes work).", cluster.hasQuorum ? 1 : 0),
            ("herald_cluster_degraded", "1 while this replica announces worse paths (no quorum for the grace period).", cluster.degraded ? 1 : 0),
            ("herald_cluster_revision", "The last replication log revision this replica applied.", Double(cluster.revision)),
            ("herald_cluster_replication_lag_revisions", "Replication log rows this replica was behind at its last poll.", Double(cluster.lagRevisions)),
            ("herald_cluster_last_contact_age_seconds", "Seconds since this replica last reached the leader.",
             cluster.lastContact.map { Double(now - $0) / 1000 } ?? -1),
        ]
        for (name, help, value) in gauges {
            out.family(name, "gauge", help)
            out.sample(name, [:], value)
        }
        out.family("herald_cluster_leader_changes_total", "counter", "Times the leader changed, as seen from this replica.")
        out.sample("herald_cluster_leader_changes_total", [:], Double(cluster.leaderChanges))
    }

    public func render(speaker: SpeakerSnapshot?, store: Store, routes: Int, health: [NodeHealthStatus] = [],
                       cluster: ClusterState? = nil) throws -> String {
        var out = Exposition()
        out.family("herald_build_info", "gauge", "Herald's version.")
        out.sample("herald_build_info", ["version": HeraldVersion.string], 1)
        if let cluster { renderCluster(cluster, into: &out) }

        if let speaker {
            let states = ["disabled", "idle", "connect", "active", "opensent", "openconfirm", "established"]
            out.family("herald_bgp_peer_state", "gauge", "1 for the peer's current RFC 4271 session state.")
            for peer in speaker.peers {
                for state in states { out.sample("herald_bgp_peer_state", ["peer": peer.name, "state": state], peer.state.rawValue == state ? 1 : 0) }
            }
            out.family("herald_bgp_peer_established_since_seconds", "gauge", "Unix time the current session was established; 0 when it is not.")
            for peer in speaker.peers {
                out.sample("herald_bgp_peer_established_since_seconds", ["peer": peer.name], Double(peer.establishedAt ?? 0) / 1000)
            }
            let counters: [(String, String, String, (PeerCounters) -> Int)] = [
                ("herald_bgp_messages_received_total", "counter", "BGP messages received.", { $0.messagesIn }),
                ("herald_bgp_messages_sent_total", "counter", "BGP messages sent.", { $0.messagesOut }),
                ("herald_bgp_updates_received_total", "counter", "UPDATE messages received.", { $0.updatesIn }),
                ("herald_bgp_updates_sent_total", "counter", "UPDATE messages sent.", { $0.updatesOut }),
                ("herald_bgp_peer_flaps_total", "counter", "Times an established session went down.", { $0.flaps }),
                ("herald_bgp_prefixes_received", "gauge", "Prefixes in the peer's Adj-RIB-In.", { $0.prefixesReceived }),
                ("herald_bgp_prefixes_advertised", "gauge", "Prefixes in the peer's Adj-RIB-Out.", { $0.prefixesAdvertised }),
                ("herald_bgp_prefixes_with_fewer_paths", "gauge", "Prefixes sent with fewer paths than they have (no ADD-PATH).", { $0.prefixesWithFewerPaths }),
            ]
            for (name, type, help, value) in counters {
                out.family(name, type, help)
                for peer in speaker.peers { out.sample(name, ["peer": peer.name], Double(value(peer.counters))) }
            }
            renderBFD(speaker.peers.compactMap { peer in peer.bfd.map { (peer.name, $0) } }, into: &out)
        }

        let pools = try store.read { db in try Pools.list(db) }
        out.family("herald_pool_addresses", "gauge", "Addresses a pool can hand out, per family.")
        for pool in pools { for (family, usage) in pool.usage { out.sample("herald_pool_addresses", ["pool": pool.name, "family": family.rawValue], Double(usage.size)) } }
        out.family("herald_pool_allocated_addresses", "gauge", "Addresses a pool has handed out, per family.")
        for pool in pools { for (family, usage) in pool.usage { out.sample("herald_pool_allocated_addresses", ["pool": pool.name, "family": family.rawValue], Double(usage.allocated)) } }
        out.family("herald_routes_originated", "gauge", "Prefixes Herald announces.")
        out.sample("herald_routes_originated", [:], Double(routes))
        // Lags `herald_routes_originated` while a bulk change is being handed to the speaker.
        if let speaker {
            out.family("herald_bgp_loc_rib_prefixes", "gauge", "Prefixes in the BGP speaker's Loc-RIB.")
            out.sample("herald_bgp_loc_rib_prefixes", [:], Double(speaker.locRIBPrefixes))
        }

        let checked = health.sorted { $0.node < $1.node }
        out.family("herald_node_health_up", "gauge", "1 while a checked node serves traffic (up or not yet checked), 0 while its health check has it down.")
        for s in checked { out.sample("herald_node_health_up", ["node": s.node], s.health.state.serves ? 1 : 0) }
        out.family("herald_node_health_state", "gauge", "1 for the checked node's current health state.")
        for s in checked {
            for state in ["unknown", "up", "down"] { out.sample("herald_node_health_state", ["node": s.node, "state": state], s.health.state.rawValue == state ? 1 : 0) }
        }
        out.family("herald_node_health_transitions_total", "counter", "Times a checked node went down or came back up.")
        for s in checked { out.sample("herald_node_health_transitions_total", ["node": s.node], Double(s.health.transitions)) }
        out.family("herald_node_health_checks_total", "counter", "Health checks run, by result.")
        for s in checked {
            out.sample("herald_node_health_checks_total", ["node": s.node, "result": "ok"], Double(s.health.checks - s.health.failedChecks))
            out.sample("herald_node_health_checks_total", ["node": s.node, "result": "failed"], Double(s.health.failedChecks))
        }
        out.family("herald_node_health_last_check_seconds", "gauge", "How long the node's last health check took.")
        for s in checked { if let last = s.health.lastResult { out.sample("herald_node_health_last_check_seconds", ["node": s.node], last.milliseconds / 1000) } }

        out.family("herald_http_requests_total", "counter", "HTTP requests answered, by route pattern and status.")
        for (key, count) in requests.withLock({ $0 }).sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            out.sample("herald_http_requests_total", ["method": key.method, "route": key.route, "status": String(key.status)], Double(count))
        }
        out.family("herald_http_request_duration_seconds", "histogram", "Time to answer an HTTP request.")
        for (key, histogram) in requestLatency.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: " ", maxSplits: 1)
            out.histogram("herald_http_request_duration_seconds", ["method": String(parts[0]), "route": String(parts[1])], histogram)
        }
        out.family("herald_sqlite_commit_duration_seconds", "histogram", "Time to commit one batch of changes (fsync included).")
        out.histogram("herald_sqlite_commit_duration_seconds", [:], commits.withLock { $0 })

        out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
        out.sample("process_resident_memory_bytes", [:], Double(Self.residentBytes()))
        out.family("process_open_fds", "gauge", "Number of open file descriptors.")
        out.sample("process_open_fds", [:], Double((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0))
        return out.text
    }

    static func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Text format 0.0.4 writer.
    struct Exposition {
        var text = ""

        mutating func family(_ name: String, _ type: String, _ help: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }

        mutating func sample(_ name: String, _ labels: [String: String], _ value: Double) {
            text += name + Self.labels(labels) + " " + Self.number(value) + "\n"
        }

        mutating func histogram(_ name: String, _ labels: [String: String], _ h: Histogram) {
            for (index, bound) in Metrics.buckets.enumerated() {
                sample(name + "_bucket", labels.merging(["le": Self.number(bound)]) { $1 }, Double(h.counts[index]))
            }
            sample(name + "_bucket", labels.merging(["le": "+Inf"]) { $1 }, Double(h.count))
            sample(name + "_sum", labels, h.sum)
            sample(name + "_count", labels, Double(h.count))
        }

        static func labels(_ labels: [String: String]) -> String {
            guard !labels.isEmpty else { return "" }
            let pairs = labels.sorted { $0.key < $1.key }.map { key, value in
                let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                    .replacingOccurrences(of: "\n", with: "\\n")
                return "\(key)=\"\(escaped)\""
            }
            return "{" + pairs.joined(separator: ",") + "}"
        }

        static func number(_ value: Double) -> String {
            if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
            return String(value)
        }
    }
}
