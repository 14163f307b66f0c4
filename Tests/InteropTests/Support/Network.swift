import Foundation
import IP
import Synchronization

/// Every name this harness creates starts with this, followed by the creating process's PID:
/// `hrld-<pid>-<n>` for namespaces and `/tmp/hrld-<pid>-<n>` for work directories. A sweep
/// removes those whose PID is no longer alive (left by a crashed earlier run of the harness).
let harnessPrefix = "hrld-"

private let namespaceCounter = Atomic<Int>(0)
private let networkCounter = Atomic<Int>(0)

/// A network namespace created by the harness. It is removed by `remove()` or `deinit`; any
/// process still inside it (necessarily one the harness started there) is stopped first.
final class NetworkNamespace: @unchecked Sendable, CustomStringConvertible {
    let name: String
    private let children = Mutex<[ChildProcess]>([])
    private let removed = Mutex(false)

    /// Creates `hrld-<pid>-<n>` with `lo` up.
    init() throws {
        name = "\(harnessPrefix)\(getpid())-\(namespaceCounter.add(1, ordering: .relaxed).newValue)"
        try Command.check(["ip", "netns", "add", name])
        do {
            try Command.check(["ip", "-n", name, "link", "set", "lo", "up"])
        } catch {
            _ = try? Command.run(["ip", "netns", "delete", name])
            throw error
        }
    }

    var description: String { name }

    /// `ip netns exec NAME arguments…`
    func wrap(_ arguments: [String]) -> [String] { ["ip", "netns", "exec", name] + arguments }

    /// Runs a command inside the namespace to completion.
    @discardableResult
    func run(_ arguments: [String], timeout: Duration = .seconds(20)) throws -> CommandResult {
        try Command.run(wrap(arguments), timeout: timeout)
    }

    /// Runs a command inside the namespace; a non-zero exit is an error.
    @discardableResult
    func check(_ arguments: [String], timeout: Duration = .seconds(20)) throws -> CommandResult {
        try Command.check(wrap(arguments), timeout: timeout)
    }

    /// Starts a long-running command inside the namespace. `ip netns exec` execs the command, so
    /// the child's PID is the daemon's PID. The child is stopped when the namespace is removed.
    /// `environment` is added to the test process's own (e.g. `HERALD_*` settings for `herald serve`).
    func spawn(_ arguments: [String], logPath: String, environment: [String: String] = [:]) throws -> ChildProcess {
        let child = try ChildProcess(wrap(arguments), logPath: logPath, environment: environment)
        children.withLock { $0.append(child) }
        return child
    }

    /// PIDs of every process currently inside the namespace.
    func pids() -> [Int32] {
        guard let result = try? Command.run(["ip", "netns", "pids", name]), result.succeeded else { return [] }
        return result.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
    }

    /// Stops the children started here (SIGTERM, then SIGKILL), then anything else still inside,
    /// then deletes the namespace (which destroys its veth ends). Idempotent.
    func remove() {
        let first = removed.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        for child in children.withLock({ $0 }) { child.stop() }
        Self.killAll(in: name)
        _ = try? Command.run(["ip", "netns", "delete", name])
    }

    deinit { remove() }

    /// SIGKILLs the processes inside `namespace` (only ever one of ours) and waits for them to go.
    fileprivate static func killAll(in namespace: String) {
        guard let result = try? Command.run(["ip", "netns", "pids", namespace]), result.succeeded else { return }
        let pids = result.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
        guard !pids.isEmpty else { return }
        for pid in pids { kill(pid, SIGKILL) }
        let deadline = ContinuousClock.now + .seconds(5)
        while pids.contains(where: processExists) && ContinuousClock.now < deadline { usleep(10_000) }
    }

    /// Removes namespaces `hrld-<pid>-*` and directories `/tmp/hrld-<pid>-*` whose creating process
    /// is gone (a crashed or killed earlier run). Never touches those of a live process.
    static func sweepStale() {
        let me = getpid()
        func staleOwner(_ name: String) -> Bool {
            guard name.hasPrefix(harnessPrefix) else { return false }
            let rest = name.dropFirst(harnessPrefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]) else { return false }
            return pid != me && !processExists(pid)
        }
        if let list = try? Command.run(["ip", "netns", "list"]), list.succeeded {
            for line in list.stdout.split(separator: "\n") {
                guard let name = line.split(separator: " ").first.map(String.init), staleOwner(name) else { continue }
                killAll(in: name)
                _ = try? Command.run(["ip", "netns", "delete", name])
            }
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/tmp") {
            for entry in entries where staleOwner(entry) {
                try? FileManager.default.removeItem(atPath: "/tmp/" + entry)
            }
        }
    }
}

/// One end of a veth pair: its namespace, interface name and addresses.
struct LinkEnd: Sendable {
    let namespace: NetworkNamespace
    let interface: String
    /// The IPv4 address (100.64.0.0/10) and its /31.
    let ipv4: IPAddress
    let ipv4Subnet: IPPrefix
    /// The IPv6 address (fd64::/16 ULA) and its /64.
    let ipv6: IPAddress
    let ipv6Subnet: IPPrefix

    /// The address of `family`.
    func address(_ family: IPFamily) -> IPAddress { family == .ipv4 ? ipv4 : ipv6 }
}

/// A veth pair; both ends live in namespaces created by the test. The interfaces have no IPv6
/// link-local address (addrgenmode none), only the global ones below.
struct Link: Sendable {
    let a: LinkEnd
    let b: LinkEnd
}

/// herald — router — peer, with forwarding on in the router and static routes on both ends, for
/// multihop and GTSM tests. `heraldLink.a` is Herald's side, `peerLink.b` the peer's.
struct TwoHopTopology: Sendable {
    let herald: NetworkNamespace
    let router: NetworkNamespace
    let peer: NetworkNamespace
    let heraldLink: Link
    let peerLink: Link
}

/// The namespaces, links and daemons of one test, and a scratch directory for their files.
/// Each network gets its own address block (a /24 of 100.64.0.0/10 and fd64:0:<block>::/48), so
/// parallel tests never share an address. Everything is removed by `shutdown()` or `deinit`.
final class TestNetwork: @unchecked Sendable {
    /// This network's block number (0 ..< 16384).
    let block: Int
    /// `/tmp/hrld-<pid>-n<k>`: configs, sockets, pid files and daemon logs.
    let directory: String
    private let state = Mutex<(namespaces: [NetworkNamespace], links: Int, down: Bool)>(([], 0, false))

    private static let swept: Void = NetworkNamespace.sweepStale()

    init() throws {
        _ = Self.swept
        let serial = networkCounter.add(1, ordering: .relaxed).newValue
        block = (Int(getpid()) &* 61 &+ serial) % 16384
        directory = "/tmp/\(harnessPrefix)\(getpid())-n\(serial)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// A new namespace belonging to this network.
    func namespace() throws -> NetworkNamespace {
        let namespace = try NetworkNamespace()
        state.withLock { $0.namespaces.append(namespace) }
        return namespace
    }

    /// A subdirectory of `directory`, created if needed.
    func directory(_ name: String) throws -> String {
        let path = directory + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Joins two namespaces with a veth pair: `.a` gets the lower address of a fresh /31
    /// and ::1 of a fresh /64, `.b` the other. The pair is created directly inside the two
    /// namespaces (never in the root namespace) and brought up.
    ///
    /// The interfaces get no IPv6 link-local address (see `Link`) unless `linkLocal` asks for one
    /// on that side (fe80::<link>:1 or :2, without DAD): a *router* needs one, because it can only
    /// solicit neighbors for forwarded packets from a link-local source.
    func link(_ first: NetworkNamespace, _ second: NetworkNamespace, linkLocal: (a: Bool, b: Bool) = (false, false)) throws -> Link {
        let index = state.withLock { state in
            state.links += 1
            return state.links
        }
        precondition(index < 128, "at most 127 links per TestNetwork")
        let base = UInt32(100) << 24 | UInt32(64) << 16 | UInt32(block) << 8
        let v4a = IPAddress.v4(IPv4Address(base + UInt32(2 * index)))
        let v4b = IPAddress.v4(IPv4Address(base + UInt32(2 * index + 1)))
        let v6net = UInt128(0xfd64) << 112 | UInt128(block) << 80 | UInt128(index) << 64
        let v6a = IPAddress.v6(IPv6Address(v6net | 1)), v6b = IPAddress.v6(IPv6Address(v6net | 2))
        let ifa = "h\(block)l\(index)a", ifb = "h\(block)l\(index)b"

        try Command.check(["ip", "link", "add", ifa, "netns", first.name, "type", "veth", "peer", "name", ifb, "netns", second.name])
        let ends = [
            LinkEnd(namespace: first, interface: ifa, ipv4: v4a, ipv4Subnet: IPPrefix(truncating: v4a, length: 31),
                    ipv6: v6a, ipv6Subnet: IPPrefix(truncating: v6a, length: 64)),
            LinkEnd(namespace: second, interface: ifb, ipv4: v4b, ipv4Subnet: IPPrefix(truncating: v4b, length: 31),
                    ipv6: v6b, ipv6Subnet: IPPrefix(truncating: v6b, length: 64)),
        ]
        for (side, end) in ends.enumerated() {
            let ns = end.namespace.name
            // No IPv6 link-local address: otherwise BIRD starts adding a link-local next hop to its
            // IPv6 announcements as soon as DAD finishes (a race), which FRR without zebra rejects.
            try Command.check(["ip", "-n", ns, "link", "set", end.interface, "addrgenmode", "none"])
            try Command.check(["ip", "-n", ns, "addr", "add", "\(end.ipv4)/31", "dev", end.interface])
            // nodad: the address is usable at once instead of "tentative" for a second or so.
            try Command.check(["ip", "-n", ns, "-6", "addr", "add", "\(end.ipv6)/64", "dev", end.interface, "nodad"])
            if side == 0 ? linkLocal.a : linkLocal.b {
                let address = "fe80::\(String(index, radix: 16)):\(side + 1)/64"
                try Command.check(["ip", "-n", ns, "-6", "addr", "add", address, "dev", end.interface, "nodad"])
            }
            try Command.check(["ip", "-n", ns, "link", "set", end.interface, "up"])
        }
        return Link(a: ends[0], b: ends[1])
    }

    /// Two fresh namespaces joined by one link: `link.a` (e.g. Herald or the first daemon) and `link.b`.
    func pair() throws -> Link {
        try link(namespace(), namespace())
    }

    /// herald-ns — router-ns — peer-ns. The router forwards IPv4 and IPv6 (its interfaces have
    /// link-local addresses, the ends' do not); the two ends have static routes to each other's
    /// link through it, so their addresses are two hops apart.
    func twoHop() throws -> TwoHopTopology {
        let herald = try namespace(), router = try namespace(), peer = try namespace()
        let heraldLink = try link(herald, router, linkLocal: (false, true))
        let peerLink = try link(router, peer, linkLocal: (true, false))
        try router.check(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
        try Command.check(["ip", "-n", herald.name, "route", "add", "\(peerLink.a.ipv4Subnet)", "via", "\(heraldLink.b.ipv4)"])
        try Command.check(["ip", "-n", herald.name, "-6", "route", "add", "\(peerLink.a.ipv6Subnet)", "via", "\(heraldLink.b.ipv6)"])
        try Command.check(["ip", "-n", peer.name, "route", "add", "\(heraldLink.a.ipv4Subnet)", "via", "\(peerLink.a.ipv4)"])
        try Command.check(["ip", "-n", peer.name, "-6", "route", "add", "\(heraldLink.a.ipv6Subnet)", "via", "\(peerLink.a.ipv6)"])
        return TwoHopTopology(herald: herald, router: router, peer: peer, heraldLink: heraldLink, peerLink: peerLink)
    }

    /// The names of the namespaces created so far.
    var namespaceNames: [String] { state.withLock { $0.namespaces.map(\.name) } }

    /// Stops every daemon, removes every namespace (and so every veth) and the work directory.
    /// Set HERALD_INTEROP_KEEP=1 to keep the directory (configs and daemon logs) for debugging.
    func shutdown() {
        let namespaces = state.withLock { state -> [NetworkNamespace] in
            if state.down { return [] }
            state.down = true
            return state.namespaces
        }
        for namespace in namespaces.reversed() { namespace.remove() }
        if ProcessInfo.processInfo.environment["HERALD_INTEROP_KEEP"] != "1" {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    deinit { shutdown() }
}
