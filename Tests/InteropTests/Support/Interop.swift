import Foundation
import Testing

/// A program an interop test needs.
enum InteropTool: String, CaseIterable, Sendable {
    case bird, gobgp, frr
    /// nftables, for tests that drop chosen packets inside a namespace (BFD).
    case nft
    /// FRR's BFD daemon, run on its own with configured peers (BFD interop).
    case bfdd
    /// FRR's zebra: bgpd hears bfdd's session states only through it (BFD with BGP).
    case zebra
    /// The HTTP load generator, for the event-loop starvation test.
    case wrk
    /// The dqlite shell (go-dqlite), for the cluster tests; `herald serve --cluster-dir` itself
    /// needs libdqlite0.
    case dqlite

    /// The binaries, each overridable by an environment variable (for other distributions).
    var binaries: [(variable: String, path: String)] {
        switch self {
        case .bird: [("HERALD_BIRD", "/usr/sbin/bird"), ("HERALD_BIRDC", "/usr/sbin/birdc")]
        case .gobgp: [("HERALD_GOBGPD", "/usr/bin/gobgpd"), ("HERALD_GOBGP", "/usr/bin/gobgp")]
        case .frr: [("HERALD_FRR_BGPD", "/usr/lib/frr/bgpd"), ("HERALD_VTYSH", "/usr/bin/vtysh")]
        case .nft: [("HERALD_NFT", "/usr/sbin/nft")]
        case .bfdd: [("HERALD_FRR_BFDD", "/usr/lib/frr/bfdd"), ("HERALD_VTYSH", "/usr/bin/vtysh")]
        case .zebra: [("HERALD_FRR_ZEBRA", "/usr/lib/frr/zebra")]
        case .wrk: [("HERALD_WRK", "/usr/bin/wrk")]
        case .dqlite: [("HERALD_DQLITE", "/usr/bin/dqlite")]
        }
    }

    var package: String {
        switch self {
        case .bird: "bird2"
        case .gobgp: "gobgpd"
        case .frr: "frr"
        case .nft: "nftables"
        case .bfdd: "frr"
        case .zebra: "frr"
        case .wrk: "wrk"
        case .dqlite: "go-dqlite"
        }
    }
}

/// The requirement policy, set by `HERALD_INTEROP`:
/// - unset (or anything but `required`): a test whose prerequisites are missing is skipped, and
///   the reason is printed;
/// - `required` (CI): the same test fails, naming what is missing.
///
/// Prerequisites: root, `ip`, network namespaces that can actually be created, and each daemon's
/// binaries. Use the trait: `@Test(.interop(.bird, .gobgp)) func …`.
enum Interop {
    static var isRequired: Bool {
        ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "required"
    }

    /// The path of a binary, honouring its environment override.
    static func binary(_ variable: String, default path: String) -> String {
        ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 } ?? path
    }

    static func bird() -> String { binary("HERALD_BIRD", default: "/usr/sbin/bird") }
    static func birdc() -> String { binary("HERALD_BIRDC", default: "/usr/sbin/birdc") }
    static func gobgpd() -> String { binary("HERALD_GOBGPD", default: "/usr/bin/gobgpd") }
    static func gobgp() -> String { binary("HERALD_GOBGP", default: "/usr/bin/gobgp") }
    static func frrBGPD() -> String { binary("HERALD_FRR_BGPD", default: "/usr/lib/frr/bgpd") }
    static func vtysh() -> String { binary("HERALD_VTYSH", default: "/usr/bin/vtysh") }
    static func nft() -> String { binary("HERALD_NFT", default: "/usr/sbin/nft") }
    static func frrBFDD() -> String { binary("HERALD_FRR_BFDD", default: "/usr/lib/frr/bfdd") }
    static func frrZebra() -> String { binary("HERALD_FRR_ZEBRA", default: "/usr/lib/frr/zebra") }
    static func dqlite() -> String { binary("HERALD_DQLITE", default: "/usr/bin/dqlite") }

    /// Everything missing for a test that uses `tools`; empty when it can run.
    static func missing(_ tools: [InteropTool]) -> [String] {
        var missing = base
        for tool in tools {
            for (variable, path) in tool.binaries {
                let actual = binary(variable, default: path)
                if !FileManager.default.isExecutableFile(atPath: actual) {
                    missing.append("\(actual) (Debian package \(tool.package); or set \(variable))")
                }
            }
        }
        return missing
    }

    /// Root, `ip`, and a namespace that can really be added and removed: checked once per process.
    private static let base: [String] = {
        if geteuid() != 0 { return ["root (interop tests create network namespaces; run with sudo)"] }
        let ip = Command.resolve("ip")
        guard FileManager.default.isExecutableFile(atPath: ip) else { return ["the `ip` command (Debian package iproute2)"] }
        NetworkNamespace.sweepStale()
        let probe = "hrld-\(getpid())-probe"
        do {
            try Command.check([ip, "netns", "add", probe])
            try Command.check([ip, "netns", "delete", probe])
            return []
        } catch {
            _ = try? Command.run([ip, "netns", "delete", probe])
            return ["permission to create network namespaces (\(error))"]
        }
    }()

    /// Evaluated by the `.interop(…)` trait before the test runs.
    static func evaluate(_ tools: [InteropTool], test: String) throws -> Bool {
        let missing = missing(tools)
        if missing.isEmpty { return true }
        let list = missing.joined(separator: ", ")
        if isRequired {
            throw HarnessError("HERALD_INTEROP=required but interop test \(test) cannot run: missing \(list)")
        }
        print("⚠︎ skipping interop test \(test): missing \(list) (set HERALD_INTEROP=required to make this a failure)")
        return false
    }

    /// The same check for use inside a test body: throws when required, else returns false after
    /// printing the reason. Tests also call it so that the policy holds even if a trait is dropped.
    static func ready(_ tools: InteropTool..., test: String = #function) throws -> Bool {
        try evaluate(tools, test: test)
    }
}

extension Trait where Self == ConditionTrait {
    /// Skips (HERALD_INTEROP unset) or fails (HERALD_INTEROP=required) a test whose prerequisites
    /// for `tools` are missing; the reason is printed either way.
    static func interop(_ tools: InteropTool...) -> Self {
        let names = (["root", "ip"] + tools.map(\.rawValue)).joined(separator: ", ")
        return .enabled("interop prerequisites: \(names)") {
            try Interop.evaluate(tools, test: "(needs \(names))")
        }
    }
}
