import ArgumentParser
import Foundation

// Create, change and remove peers, nodes, pools, static routes and the speaker. A change sends
// only the options given (`GivenFields`): an option left out keeps its value.

// MARK: - Peers

/// A peer's settings as options, for `peer add` and `peer set`.
struct PeerOptions: ParsableArguments {
    @Option(help: "The neighbour's address (IPv4 or IPv6).") var address: String?
    @Option(help: "The neighbour's AS number.") var asn: UInt32?
    @Option(help: "The neighbour's BGP port (default 179).") var port: Int?
    @Option(help: "Source address of the session; \"\" clears it.") var localAddress: String?
    @Option(help: "File whose first line is the TCP MD5 password (RFC 2385); an empty file removes the password.") var passwordFile: String?
    @Option(help: "Seconds: 0, or 3–65535.") var holdTime: Int?
    @Option(help: "Seconds between KEEPALIVEs (at most a third of the hold time).") var keepaliveTime: Int?
    @Option(help: "Seconds between connection attempts.") var connectRetryTime: Int?
    @Flag(inversion: .prefixedNo, help: "Wait for the neighbour to connect; never connect to it.") var passive: Bool?
    @Option(help: "ipv4-unicast, ipv6-unicast; repeat or comma-separate.") var families: [String] = []
    @Option(help: "TTL for a neighbour more than one hop away; 0 clears.") var ebgpMultihop: Int?
    @Option(help: "GTSM (RFC 5082) hop count; 0 clears.") var ttlSecurity: Int?
    @Flag(inversion: .prefixedNo, help: "Send every path of a prefix (ADD-PATH, RFC 7911).") var addPathSend: Bool?
    @Flag(inversion: .prefixedNo, help: "Graceful restart (RFC 4724) for this session.") var gracefulRestart: Bool?
    @Option(help: "Close the session above this many received prefixes; 0 clears.") var maxPrefixes: Int?
    @Option(help: "A label key=value; repeat for more (replaces the labels).") var label: [KeyValue] = []
    @Option(name: .customLong("description"), help: "Free text.") var text: String?
    @Flag(help: "Whether Herald runs the session.") var state: Enablement?
    @Flag(inversion: .prefixedNo, help: "BFD (RFC 5880) on the session: a dead link is noticed in about a second.") var bfd: Bool?
    @Option(help: "BFD Desired Min TX Interval, ms.") var bfdMinTx: Int?
    @Option(help: "BFD Required Min RX Interval, ms.") var bfdMinRx: Int?
    @Option(help: "BFD Detect Mult.") var bfdMultiplier: Int?

    func fields() throws -> GivenFields {
        var given = GivenFields()
        given.set("address", address)
        given.set("asn", asn)
        given.set("port", port)
        given.set("local_address", localAddress)
        if let passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw CLIFailure(message: "cannot read password file \(passwordFile)", status: 78)
            }
            given.set("password", text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? "")
        }
        given.set("hold_time", holdTime)
        given.set("keepalive_time", keepaliveTime)
        given.set("connect_retry_time", connectRetryTime)
        given.set("passive", passive)
        given.set("families", list: families)
        given.set("ebgp_multihop", ebgpMultihop)
        given.set("ttl_security", ttlSecurity)
        given.set("add_path_send", addPathSend)
        given.set("graceful_restart", gracefulRestart)
        given.set("max_prefixes", maxPrefixes)
        given.set("labels", pairs: label)
        given.set("description", text)
        given.set("enabled", state.map { $0 == .enabled })
        given.set("bfd.enabled", bfd)
        given.set("bfd.min_tx", bfdMinTx)
        given.set("bfd.min_rx", bfdMinRx)
        given.set("bfd.multiplier", bfdMultiplier)
        return given
    }
}

extension PeersCommand {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a BGP peer (--address and --asn at least).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The peer's name.") var name: String
        @OptionGroup(title: "Peer") var peer: PeerOptions

        func validate() throws {
            if peer.address == nil || peer.asn == nil { throw ValidationError("a new peer needs --address and --asn") }
        }

        func run() throws {
            try runClient {
                var given = try peer.fields()
                given.set("name", name)
                Output.object(try options.client().call("POST", "/v1/peers", json: given.json), options.output)
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a peer: only the options given (PATCH); a change that needs a new session resets it.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The peer's name.") var name: String
        @OptionGroup(title: "Peer") var peer: PeerOptions

        func run() throws {
            try runClient {
                Output.object(try options.client().call("PATCH", "/v1/peers/\(escape(name))", json: try peer.fields().json), options.output)
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a peer (its session is closed).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The peer's name.") var name: String

        func run() throws {
            try runClient { _ = try options.client().call("DELETE", "/v1/peers/\(escape(name))") }
        }
    }

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reset a peer's session: close and reconnect, or with --soft exchange the routes again without closing it.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The peer's name.") var name: String
        @Flag(help: "Route refresh (RFC 2918) instead of closing the session.") var soft = false
        @Option(help: "With --soft: in (ask the peer to resend), out (resend Herald's routes) or both.") var direction: String?
        @Option(help: "Without --soft: the shutdown communication (RFC 8203) sent with the Cease.") var message: String?

        func validate() throws {
            if direction != nil && !soft { throw ValidationError("--direction is for a soft reset: add --soft") }
            if message != nil && soft { throw ValidationError("--message is sent when the session is closed: leave out --soft") }
        }

        func run() throws {
            try runClient {
                var given = GivenFields()
                given.set("soft", soft ? true : nil)
                given.set("direction", direction)
                given.set("message", message)
                let reply = try options.client().call("POST", "/v1/peers/\(escape(name))/reset", json: given.json) as? [String: Any] ?? [:]
                if options.output == .json { return Output.json(reply) }
                print("\(Output.string(reply["reset"])) reset of \(name)")
            }
        }
    }
}

// MARK: - Nodes

/// `--health-check tcp:PORT`, `http:PORT/PATH` or `none`.
enum HealthCheckOption: ExpressibleByArgument {
    case none
    case check(kind: String, port: Int, path: String?)

    init?(argument: String) {
        if argument == "none" { self = .none; return }
        let parts = argument.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, ["tcp", "http"].contains(parts[0]) else { return nil }
        let rest = parts[1]
        let slash = rest.firstIndex(of: "/")
        guard let port = Int(rest[..<(slash ?? rest.endIndex)]), parts[0] == "http" || slash == nil else { return nil }
        self = .check(kind: String(parts[0]), port: port, path: slash.map { String(rest[$0...]) })
    }
}

extension NodesCommand {
    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a node, or change only the options given.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The node's name (its Kubernetes name).") var name: String
        @Option(help: "An address routes point at (next hop); repeat or comma-separate (replaces them).") var address: [String] = []
        @Option(help: "A label key=value; repeat for more (replaces the labels).") var label: [KeyValue] = []
        @Option(help: "How Herald checks the node takes traffic: tcp:PORT, http:PORT/PATH, or none to stop checking.") var healthCheck: HealthCheckOption?
        @Option(help: "Check this address instead of the node's first (may be loopback).") var healthAddress: String?
        @Option(help: "Milliseconds between checks.") var healthInterval: Int?
        @Option(help: "Milliseconds a check may take.") var healthTimeout: Int?
        @Option(help: "Successful checks in a row that bring the node back.") var healthRise: Int?
        @Option(help: "Failed checks in a row that take the node down.") var healthFall: Int?

        func run() throws {
            try runClient {
                var given = GivenFields()
                given.set("addresses", list: address)
                given.set("labels", pairs: label)
                switch healthCheck {
                case .none?:
                    given.set("health_check", NSNull())
                case let .check(kind, port, path)?:
                    given.set("health_check.kind", kind)
                    given.set("health_check.port", port)
                    given.set("health_check.path", (path as Any?) ?? NSNull())
                case nil:
                    break
                }
                given.set("health_check.address", healthAddress)
                given.set("health_check.interval", healthInterval)
                given.set("health_check.timeout", healthTimeout)
                given.set("health_check.rise", healthRise)
                given.set("health_check.fall", healthFall)
                let kept = ["addresses", "labels", "health_check"]
                Output.object(try options.client().change("/v1/nodes/\(escape(name))", given, keeping: kept), options.output)
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a node (routes stop pointing at it).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The node's name.") var name: String

        func run() throws {
            try runClient { _ = try options.client().call("DELETE", "/v1/nodes/\(escape(name))") }
        }
    }
}

// MARK: - Pools

/// The BGP attributes a pool's or a static route's routes carry.
struct AnnounceOptions: ParsableArguments {
    @Option(name: .customLong("announce-community"), help: "A community (ASN:VALUE, no-export, …); repeat or comma-separate (replaces them).")
    var communities: [String] = []
    @Option(name: .customLong("announce-large-community"), help: "A large community GLOBAL:LOCAL1:LOCAL2; repeat or comma-separate (replaces them).")
    var largeCommunities: [String] = []
    @Option(name: .customLong("announce-local-pref"), help: "LOCAL_PREF (iBGP).") var localPref: UInt32?
    @Option(name: .customLong("announce-med"), help: "MED.") var med: UInt32?
    @Option(name: .customLong("announce-prepend"), help: "Extra times Herald's AS is prepended (eBGP), 0–16.") var prepend: Int?
    @Option(name: .customLong("announce-peer-selector"), help: "Only to peers with this label key=value; repeat for more (replaces it).")
    var peerSelector: [KeyValue] = []
    @Option(name: .customLong("announce-aggregate"), help: "Announce the covering prefix of this length instead of each address.")
    var aggregationLength: Int?

    func add(to given: inout GivenFields) {
        given.set("announce.communities", list: communities)
        given.set("announce.large_communities", list: largeCommunities)
        given.set("announce.local_pref", localPref)
        given.set("announce.med", med)
        given.set("announce.as_path_prepend", prepend)
        given.set("announce.peer_selector", pairs: peerSelector)
        given.set("announce.aggregation_length", aggregationLength)
    }
}

/// A pool's settings as options, for `pool add` and `pool set`.
struct PoolOptions: ParsableArguments {
    @Option(help: "A block of addresses: a prefix or a range FIRST-LAST; repeat or comma-separate (replaces them).") var block: [String] = []
    @Option(help: "Serve Services with this label key=value; repeat for more (replaces it).") var serviceSelector: [KeyValue] = []
    @Option(help: "Next hops: the nodes with this label key=value; repeat for more (replaces it).") var nodeSelector: [KeyValue] = []
    @Flag(inversion: .prefixedNo, help: "Hand out the first and last address of each block too.") var allowFirstLastIps: Bool?
    @Flag(help: "A disabled pool keeps its allocations but hands out no new address.") var state: Enablement?
    @Flag(inversion: .prefixedNo, help: "When every node that would serve an allocation is down, announce it on all of them rather than withdraw it.") var failOpen: Bool?
    @Option(name: .customLong("description"), help: "Free text.") var text: String?
    @Option(help: "A label key=value; repeat for more (replaces the labels).") var label: [KeyValue] = []
    @OptionGroup(title: "Announce") var announce: AnnounceOptions

    var fields: GivenFields {
        var given = GivenFields()
        given.set("blocks", list: block)
        given.set("service_selector", pairs: serviceSelector)
        given.set("node_selector", pairs: nodeSelector)
        given.set("allow_first_last_ips", allowFirstLastIps)
        given.set("disabled", state.map { $0 == .disabled })
        given.set("fail_open", failOpen)
        given.set("description", text)
        given.set("labels", pairs: label)
        announce.add(to: &given)
        return given
    }
}

extension PoolsCommand {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an address pool (--block at least); refused if it exists.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The pool's name.") var name: String
        @OptionGroup(title: "Pool") var pool: PoolOptions

        func validate() throws {
            if pool.block.isEmpty { throw ValidationError("a new pool needs --block") }
        }

        func run() throws {
            try runClient {
                var given = pool.fields
                given.set("name", name)
                Output.object(try options.client().call("POST", "/v1/pools", json: given.json), options.output)
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a pool, or change only the options given (its routes are derived again).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The pool's name.") var name: String
        @OptionGroup(title: "Pool") var pool: PoolOptions

        func run() throws {
            try runClient {
                let kept = ["blocks", "service_selector", "node_selector", "allow_first_last_ips", "disabled", "announce", "description", "labels", "fail_open"]
                Output.object(try options.client().change("/v1/pools/\(escape(name))", pool.fields, keeping: kept), options.output)
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a pool (refused while it has allocations).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The pool's name.") var name: String

        func run() throws {
            try runClient { _ = try options.client().call("DELETE", "/v1/pools/\(escape(name))") }
        }
    }
}

// MARK: - Static routes

/// A static route's settings as options, for `route add` and `route set`.
struct StaticRouteOptions: ParsableArguments {
    @Option(help: "The prefix to announce, e.g. a pod CIDR.") var prefix: String?
    @Option(help: "A next hop: an address, a node's name or self; repeat or comma-separate (default self; replaces them).") var nextHop: [String] = []
    @Option(help: "A label key=value; repeat for more (replaces the labels).") var label: [KeyValue] = []
    @OptionGroup(title: "Announce") var announce: AnnounceOptions

    var fields: GivenFields {
        var given = GivenFields()
        given.set("prefix", prefix)
        given.set("next_hops", list: nextHop)
        given.set("labels", pairs: label)
        announce.add(to: &given)
        return given
    }
}

extension RoutesCommand {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a static route (--prefix at least); refused if it exists.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The route's name.") var name: String
        @OptionGroup(title: "Route") var route: StaticRouteOptions

        func validate() throws {
            if route.prefix == nil { throw ValidationError("a new route needs --prefix") }
        }

        func run() throws {
            try runClient {
                Output.object(try options.client().call("POST", "/v1/routes/\(escape(name))", json: route.fields.json), options.output)
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a static route, or change only the options given.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The route's name.") var name: String
        @OptionGroup(title: "Route") var route: StaticRouteOptions

        func run() throws {
            try runClient {
                let kept = ["prefix", "next_hops", "announce", "labels"]
                Output.object(try options.client().change("/v1/routes/\(escape(name))", route.fields, keeping: kept), options.output)
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a static route (it is withdrawn).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The route's name.") var name: String

        func run() throws {
            try runClient { _ = try options.client().call("DELETE", "/v1/routes/\(escape(name))") }
        }
    }
}

// MARK: - Speaker

struct SpeakerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speaker", abstract: "Show or change Herald's BGP identity, listener and session defaults.",
        subcommands: [Show.self, Set.self], defaultSubcommand: Show.self)

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the AS, router ID, listener and timers.")
        @OptionGroup var options: ClientOptions

        func run() throws {
            try runClient { Output.object(try options.client().call("GET", "/v1/speaker") as? [String: Any] ?? [:], options.output) }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change only the options given; a new AS or router ID resets every session (they are listed).")
        @OptionGroup var options: ClientOptions
        @Option(help: "Herald's AS number.") var asn: UInt32?
        @Option(help: "BGP identifier, an IPv4 address.") var routerId: String?
        @Option(help: "Address for incoming BGP sessions (0.0.0.0 or :: for all).") var listenAddress: String?
        @Option(help: "Port for incoming BGP sessions.") var listenPort: Int?
        @Option(help: "Default hold time, seconds.") var holdTime: Int?
        @Option(help: "Default keepalive time, seconds.") var keepaliveTime: Int?
        @Option(help: "Default seconds between connection attempts.") var connectRetryTime: Int?
        @Flag(inversion: .prefixedNo, help: "Graceful restart (RFC 4724): peers keep the routes while Herald restarts.") var gracefulRestart: Bool?
        @Option(help: "Graceful restart time announced to peers, seconds (0–4095).") var restartTime: Int?

        func run() throws {
            try runClient {
                // The API keeps what a PUT leaves out: only the given fields are sent (in cluster
                // mode a router ID or listener sent back unchanged would be refused).
                var given = GivenFields()
                given.set("asn", asn)
                given.set("router_id", routerId)
                given.set("listen_address", listenAddress)
                given.set("listen_port", listenPort)
                given.set("hold_time", holdTime)
                given.set("keepalive_time", keepaliveTime)
                given.set("connect_retry_time", connectRetryTime)
                given.set("graceful_restart.enabled", gracefulRestart)
                given.set("graceful_restart.restart_time", restartTime)
                Output.object(try options.client().call("PUT", "/v1/speaker", json: given.json), options.output)
            }
        }
    }
}
