import ArgumentParser
import Foundation
import JSON

/// Options every client command shares.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "Herald's API. [HERALD_SERVER] (default: http://127.0.0.1:8179)")
    var server: String?

    @Option(name: .long, help: "File holding the API token (its first token line is used). [HERALD_TOKEN_FILE]; or set HERALD_TOKEN")
    var tokenFile: String?

    @Option(name: .shortAndLong, help: "table (for people) or json (for scripts).")
    var output: OutputFormat = .table

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case table, json }

    /// `herald --server X status`: the options above given before the command are moved after
    /// it, where the command reads them. (Declared on the root command instead, ArgumentParser
    /// would take them from anywhere on the line, `serve --token-file` too.)
    static func movedAfterTheCommand(_ arguments: [String]) -> [String] {
        let names = ["--server", "--token-file", "--output", "-o"]
        var leading: [String] = []
        var rest = arguments[...]
        while let first = rest.first {
            if names.contains(first) {
                leading += rest.prefix(2)
                rest = rest.dropFirst(2)
            } else if names.contains(where: { first.hasPrefix($0 + "=") }) {
                leading.append(first)
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        let end = rest.firstIndex(of: "--") ?? rest.endIndex
        return Array(rest[..<end]) + leading + Array(rest[end...])
    }

    func client() throws -> APIClient { try Self.client(server: server, tokenFile: tokenFile) }

    /// The token file a service installed from contrib/systemd reads: used when no token is
    /// given and it is readable (root on the same host), so the CLI there needs no flag.
    static let serviceTokenFile = "/etc/herald/tokens"

    static func client(server: String?, tokenFile: String?) throws -> APIClient {
        let environment = ProcessInfo.processInfo.environment
        let server = server ?? environment["HERALD_SERVER"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8179"
        var token = environment["HERALD_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        var tokenFile = tokenFile ?? environment["HERALD_TOKEN_FILE"].flatMap({ $0.isEmpty ? nil : $0 })
        if token == nil, tokenFile == nil, access(serviceTokenFile, R_OK) == 0 { tokenFile = serviceTokenFile }
        if let file = tokenFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CLIFailure(message: "cannot read token file \(file)", status: 78)
            }
            token = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty && !$0.hasPrefix("#") }
            guard token != nil else { throw CLIFailure(message: "token file \(file) holds no token", status: 78) }
        }
        do { return try APIClient(server: server, token: token) } catch { throw CLIFailure(message: "\(error)", status: 69) }
    }
}

/// A failure the CLI reports as one line and an exit status scripts can rely on:
/// 1 the API refused the request, 3 not found, 69 Herald unreachable or failing, 78 bad local setup.
/// (A command line a command does not take exits 64, from ArgumentParser.)
struct CLIFailure: Error {
    let message: String
    let status: Int32
}

/// Runs a client command body, printing a failure as one clear line.
func runClient(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let failure as CLIFailure {
        FileHandle.standardError.write(Data("herald: \(failure.message)\n".utf8))
        throw ExitCode(failure.status)
    } catch let error as APIClient.Unreachable {
        FileHandle.standardError.write(Data("herald: \(error)\n".utf8))
        throw ExitCode(69)
    }
}

extension APIClient {
    /// Sends and returns the JSON body of a 2xx answer; turns anything else into a `CLIFailure`
    /// with the problem's title, detail and field errors on one line.
    func call(_ method: String, _ path: String, json: Any? = nil) throws -> Any? {
        let response = try send(method, path, json: json)
        if (200..<300).contains(response.status) { return response.body.isEmpty ? nil : response.json() }
        throw Self.failure(response)
    }

    /// GETs every page of a paged list (`/v1/peers`, `/v1/allocations?pool=lb`, …), calling
    /// `onPage` with each as it arrives: follows `next_cursor` until a page has none, so that a
    /// list is never cut at the server's page size (1,000 by default).
    func pages(_ path: String, onPage: ([String: Any]) throws -> Void) throws {
        var cursor: String?
        var seen: Set<String> = []
        repeat {
            let target = cursor.map { path + (path.contains("?") ? "&" : "?") + "cursor=\(escape($0))" } ?? path
            let page = try call("GET", target) as? [String: Any] ?? [:]
            try onPage(page)
            cursor = page["next_cursor"] as? String
            // A server that hands back a cursor it gave before would have us loop for ever.
            if let cursor, !seen.insert(cursor).inserted {
                throw CLIFailure(message: "GET \(path): the server repeated a cursor; stopped", status: 69)
            }
        } while cursor != nil
    }

    /// The whole of a paged list: the items under `key` of every page, in order, in one object
    /// shaped like a page (its other fields kept, no `next_cursor`), as the API answered before
    /// lists paged.
    func getAll(_ path: String, key: String) throws -> [String: Any] {
        var whole: [String: Any] = [:]
        var items: [Any] = []
        try pages(path) { page in
            items += page[key] as? [Any] ?? []
            whole = page
        }
        whole[key] = items
        whole["next_cursor"] = nil
        return whole
    }

    /// A non-2xx answer as a `CLIFailure`: the problem's title and detail, then its field errors,
    /// on the same line for one ("400 Bad Request: The request is invalid: limit: must be 1–1000"),
    /// one line each for several.
    static func failure(_ response: Response) -> CLIFailure {
        var message = "\(response.status)"
        if let problem = response.json() as? [String: Any] {
            if let title = problem["title"] as? String { message += " \(title)" }
            let errors = (problem["errors"] as? [[String: Any]] ?? []).map { "\($0["field"] as? String ?? "?"): \($0["message"] as? String ?? "")" }
            if var detail = problem["detail"] as? String {
                // A detail that introduces the field errors ends in a colon, not a full stop.
                if !errors.isEmpty && detail.hasSuffix(".") { detail.removeLast() }
                message += ": \(detail)"
            }
            if errors.count == 1 {
                message += ": \(errors[0])"
            } else if !errors.isEmpty {
                message += ":" + errors.map { "\n  \($0)" }.joined()
            }
        } else if !response.text.isEmpty {
            message += ": \(response.text.prefix(200))"
        }
        if response.status == 401 {
            // The service's token file is root's (contrib/systemd): the CLI reads it when it can,
            // else says where to point it.
            message += "\n  the server wants an API token: give --token-file FILE or HERALD_TOKEN (a service installed from contrib/systemd reads /etc/herald/tokens, which the CLI uses by itself when it may read it: run as root)"
        }
        let status: Int32 = switch response.status {
        case 404: 3
        case 400..<500: 1
        default: 69
        }
        return CLIFailure(message: message, status: status)
    }
}

// MARK: - Output

enum Output {
    /// Prints JSON as the API returned it (pretty, keys sorted), for scripts.
    static func json(_ value: Any?) {
        guard let value, let data = try? JSONSerialization.data(withJSONObject: value, options: jsonOptions) else { return }
        print(String(decoding: data, as: UTF8.self))
    }

    /// Prints rows under a header with aligned columns.
    static func table(_ header: [String], _ rows: [[String]]) {
        var table = Table(header)
        table.print(rows)
    }

    /// A table printed a batch of rows at a time (a list too large to hold, page by page): the
    /// columns are as wide as the header and the first batch need, and widen when a later batch
    /// has a wider cell. With one batch the output is that of `Output.table`.
    struct Table {
        let header: [String]
        private var widths: [Int]
        private var headerPrinted = false

        init(_ header: [String]) {
            self.header = header
            widths = header.map(\.count)
        }

        mutating func print(_ rows: [[String]]) {
            for row in rows { for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) } }
            if !headerPrinted {
                headerPrinted = true
                Swift.print(line(header))
            }
            for row in rows { Swift.print(line(row)) }
        }

        private func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }

    /// A list printed as `Output.json` prints the whole of it, `{…, "KEY" : [items…]}` (pretty,
    /// keys sorted), with the items written as they arrive rather than held: the fields around
    /// the array come from `envelope` (a page, say), and each item is printed indented to its
    /// place in the array.
    struct JSONList {
        private let head: String
        private let tail: String
        private let indent: String
        private var count = 0

        init(_ envelope: [String: Any], key: String) {
            // The envelope printed with a marker in place of the items tells where they go and
            // how deep, in exactly the formatting JSONSerialization gives the whole.
            let marker = "herald-items-\(UUID().uuidString)"
            var shell = envelope
            shell["next_cursor"] = nil
            shell[key] = [marker]
            let text = (try? JSONSerialization.data(withJSONObject: shell, options: Output.jsonOptions)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let quoted = "\"\(marker)\""
            if let at = text.range(of: quoted), let lineStart = text[..<at.lowerBound].lastIndex(of: "\n") {
                head = String(text[...lineStart])
                indent = String(text[text.index(after: lineStart)..<at.lowerBound])
                tail = String(text[at.upperBound...])
            } else {
                head = "{\n  \"\(key)\" : [\n"
                indent = "    "
                tail = "\n  ]\n}"
            }
        }

        mutating func print(_ items: [Any]) {
            var text = ""
            for item in items {
                guard let data = try? JSONSerialization.data(withJSONObject: item, options: Output.jsonOptions) else { continue }
                if count == 0 { text += head } else { text += ",\n" }
                count += 1
                // Every line one level deeper, but blank ones (an empty object's) stay blank.
                text += String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                    .map { $0.isEmpty ? "" : indent + $0 }.joined(separator: "\n")
            }
            if !text.isEmpty { Swift.print(text, terminator: "") }
        }

        func finish() {
            Swift.print((count == 0 ? head : "") + tail)
        }
    }

    static let jsonOptions: JSONSerialization.WritingOptions = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]

    /// One object (a peer, a pool, …): as JSON for scripts, or a FIELD/VALUE table.
    static func object(_ value: Any?, _ format: ClientOptions.OutputFormat) {
        let object = value as? [String: Any] ?? [:]
        if format == .json { return json(object) }
        table(["FIELD", "VALUE"], object.sorted { $0.key < $1.key }.map { [$0.key, string($0.value)] })
    }

    static func string(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: "-"
        case let array as [Any]: array.isEmpty ? "-" : array.map { string($0) }.joined(separator: ",")
        case let dictionary as [String: Any]: dictionary.isEmpty ? "-" : dictionary.sorted { $0.key < $1.key }.map { "\($0.key)=\(string($0.value))" }.joined(separator: ",")
        // JSONSerialization gives booleans as NSNumber with the "c" (char) type.
        case let number as NSNumber where String(cString: number.objCType) == "c": number.boolValue ? "yes" : "no"
        case let number as Double where number.rounded() == number && abs(number) < 1e15: String(Int64(number))
        case let number as Double where abs(number) >= 1e15: "~2^\(Int(log2(number).rounded()))"  // IPv6 pool sizes
        case let value?: "\(value)"
        }
    }

    /// A duration in seconds as people read it: 45s, 12m, 3h20m, 2d4h.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" }
        if s < 86_400 { return "\(s / 3600)h\(s % 3600 / 60)m" }
        return "\(s / 86_400)d\(s % 86_400 / 3600)h"
    }
}

/// Percent-encodes one path segment or query value.
func escape(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
}

// MARK: - Commands

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show Herald's version, uptime, speaker and object counts.")
    @OptionGroup var options: ClientOptions

    func run() throws {
        try runClient {
            let status = try options.client().call("GET", "/v1/status") as? [String: Any] ?? [:]
            if options.output == .json { return Output.json(status) }
            let speaker = status["speaker"] as? [String: Any] ?? [:]
            let database = status["database"] as? [String: Any] ?? [:]
            let counts = status["counts"] as? [String: Any] ?? [:]
            Output.table(["FIELD", "VALUE"], [
                ["version", Output.string(status["version"])],
                ["uptime", Output.duration(status["uptime_seconds"] as? Double ?? 0)],
                ["database", "\(Output.string(database["path"])) (schema \(Output.string(database["schema_version"])))"],
                ["asn", Output.string(speaker["asn"])],
                ["router id", Output.string(speaker["router_id"])],
                ["bgp listen", Output.string(speaker["listen"])],
            ] + counts.sorted { $0.key < $1.key }.map { [$0.key.replacingOccurrences(of: "_", with: " "), Output.string($0.value)] })
        }
    }
}

struct PeersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers", abstract: "List, show, add, change, remove or reset BGP peers.",
        subcommands: [List.self, Show.self, Add.self, Set.self, Remove.self, Reset.self], defaultSubcommand: List.self, aliases: ["peer"])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List peers with their state and last error.")
        @OptionGroup var options: ClientOptions

        func run() throws {
            try runClient {
                let reply = try options.client().getAll("/v1/peers", key: "peers")
                if options.output == .json { return Output.json(reply) }
                let peers = reply["peers"] as? [[String: Any]] ?? []
                Output.table(["NAME", "ADDRESS", "ASN", "STATE", "BFD", "UPTIME", "RECEIVED", "ADVERTISED", "LAST ERROR"], peers.map { peer in
                    let lastError = (peer["last_error"] as? [String: Any])?["reason"]
                    // BFD: the live state with its detection time ("up 900ms"), or "-" when off.
                    let bfd = peer["bfd"] as? [String: Any] ?? [:]
                    let session = bfd["session"] as? [String: Any]
                    let bfdText = (bfd["enabled"] as? Bool) != true ? "-"
                        : session.map { s in Output.string(s["state"]) + ((s["detection_time"] as? Double).map { " \(Int($0))ms" } ?? "") } ?? "on"
                    let uptime = (peer["uptime_seconds"] as? Double).map(Output.duration) ?? "-"
                    let counters = peer["counters"] as? [String: Any] ?? [:]
                    return [Output.string(peer["name"]), Output.string(peer["address"]), Output.string(peer["asn"]),
                            Output.string(peer["state"] ?? ((peer["enabled"] as? Bool) == false ? "disabled" : nil)), bfdText, uptime,
                            Output.string(counters["prefixes_received"]), Output.string(counters["prefixes_advertised"]), Output.string(lastError)]
                })
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one peer.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The peer's name.") var name: String

        func run() throws {
            try runClient {
                Output.object(try options.client().call("GET", "/v1/peers/\(escape(name))"), options.output)
            }
        }
    }
}

struct NodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nodes", abstract: "List, set or remove nodes.",
                                                    subcommands: [List.self, Set.self, Remove.self], defaultSubcommand: List.self, aliases: ["node"])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List nodes with their health-check state.")
        @OptionGroup var options: ClientOptions

        func run() throws {
            try runClient {
                let reply = try options.client().getAll("/v1/nodes", key: "nodes")
                if options.output == .json { return Output.json(reply) }
                let nodes = reply["nodes"] as? [[String: Any]] ?? []
                Output.table(["NAME", "ADDRESSES", "CHECK", "HEALTH", "SINCE", "TRANSITIONS", "LAST RESULT"], nodes.map { node in
                    let health = node["health"] as? [String: Any]
                    let last = health?["last_result"] as? [String: Any]
                    return [Output.string(node["name"]), Output.string(node["addresses"]), Output.string(health?["target"]),
                            health == nil && node["health_check"] == nil ? "-" : Output.string(health?["state"]),
                            Output.string(health?["last_change"]), Output.string(health?["transitions"]), Output.string(last?["detail"])]
                })
            }
        }
    }
}

struct PoolsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pools", abstract: "List, add, change or remove address pools.",
                                                    subcommands: [List.self, Add.self, Set.self, Remove.self], defaultSubcommand: List.self, aliases: ["pool"])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List address pools and their usage.")
        @OptionGroup var options: ClientOptions

        func run() throws {
            try runClient {
                let reply = try options.client().getAll("/v1/pools", key: "pools")
                if options.output == .json { return Output.json(reply) }
                let pools = reply["pools"] as? [[String: Any]] ?? []
                Output.table(["NAME", "BLOCKS", "SIZE", "ALLOCATED", "FREE", "DISABLED"], pools.map { pool in
                    [Output.string(pool["name"]), Output.string(pool["blocks"]), Output.string(pool["size"]), Output.string(pool["allocated"]),
                     Output.string(pool["free"]), Output.string(pool["disabled"])]
                })
            }
        }
    }
}

struct AllocCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "alloc", abstract: "List, get, set or remove allocations.",
                                                    subcommands: [List.self, Get.self, Set.self, Remove.self], defaultSubcommand: List.self)

    static func rows(_ allocations: [[String: Any]]) -> [[String]] {
        allocations.map { a in
            [Output.string(a["name"]), Output.string(a["pool"]), Output.string(a["addresses"]), Output.string(a["traffic_policy"]),
             Output.string(a["nodes"]), Output.string(a["sharing_key"])]
        }
    }

    static let header = ["NAME", "POOL", "ADDRESSES", "POLICY", "NODES", "SHARING KEY"]

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List allocations.")
        @OptionGroup var options: ClientOptions
        @Option(help: "Only this pool.") var pool: String?

        func run() throws {
            try runClient {
                let path = "/v1/allocations" + (pool.map { "?pool=\(escape($0))" } ?? "")
                let reply = try options.client().getAll(path, key: "allocations")
                if options.output == .json { return Output.json(reply) }
                Output.table(AllocCommand.header, AllocCommand.rows(reply["allocations"] as? [[String: Any]] ?? []))
            }
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one allocation.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The allocation's name (convention: namespace.service).") var name: String

        func run() throws {
            try runClient {
                let allocation = try options.client().call("GET", "/v1/allocations/\(escape(name))") as? [String: Any] ?? [:]
                if options.output == .json { return Output.json(allocation) }
                Output.table(AllocCommand.header, AllocCommand.rows([allocation]))
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an allocation, or change only the options given (idempotent); prints its address.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The allocation's name (convention: namespace.service).") var name: String
        @Option(help: "Pool to draw from (else chosen by --label against the pools' selectors).") var pool: String?
        @Option(help: "A specific address to hold (repeat for dual stack).") var address: [String] = []
        @Option(help: "ipv4, ipv6 or dual.") var family: String?
        @Option(help: "Allocations with the same key share an address; \"\" stops sharing.") var sharingKey: String?
        @Option(help: "cluster (every node the pool selects) or local (the --node list).") var trafficPolicy: String?
        @Option(help: "Nodes serving the traffic (traffic policy local); repeat or comma-separate (replaces them).") var node: [String] = []
        @Option(help: "A label key=value; repeat for more (replaces the labels).") var label: [KeyValue] = []

        func run() throws {
            try runClient {
                var given = GivenFields()
                given.set("pool", pool)
                given.set("addresses", list: address)
                given.set("family", family)
                given.set("sharing_key", sharingKey.map { $0.isEmpty ? NSNull() : $0 as Any })
                given.set("labels", pairs: label)
                given.set("nodes", list: node)
                // Listing nodes means traffic policy local; cluster takes none.
                if !node.isEmpty { given.set("traffic_policy", "local") }
                if trafficPolicy == "cluster" && node.isEmpty { given.set("nodes", [String]()) }
                given.set("traffic_policy", trafficPolicy)
                // Not its addresses: Herald keeps them while the pool and the sharing key stay, and
                // sent back they would hold it to a pool being left.
                let kept = ["pool", "family", "sharing_key", "traffic_policy", "nodes", "labels"]
                let allocation = try options.client().change("/v1/allocations/\(escape(name))", given, keeping: kept)
                if options.output == .json { return Output.json(allocation) }
                print(Output.string(allocation["addresses"]).replacingOccurrences(of: ",", with: " "))
                // The address is stored either way; why it reaches no router goes to stderr.
                for warning in allocation["warnings"] as? [String] ?? [] {
                    FileHandle.standardError.write(Data("herald: warning: \(warning)\n".utf8))
                }
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Release an allocation (its routes are withdrawn).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The allocation's name.") var name: String

        func run() throws {
            try runClient { _ = try options.client().call("DELETE", "/v1/allocations/\(escape(name))") }
        }
    }
}

struct RoutesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes", abstract: "List the routes Herald originates or a peer was sent or sent back; add, change or remove static routes.",
        subcommands: [Originated.self, Advertised.self, Received.self, Add.self, Set.self, Remove.self], defaultSubcommand: Originated.self,
        aliases: ["route"])

    struct Originated: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every route Herald originates, with its next hops and sources.")
        @OptionGroup var options: ClientOptions

        /// Streamed from `GET /v1/routes:export` (one route per line) and printed 1,000 routes at
        /// a time: a table of a million routes is never held, here or in Herald.
        func run() throws {
            try runClient {
                let client = try options.client()
                var table = Output.Table(["PREFIX", "NEXT HOPS", "SOURCES"])
                var json = Output.JSONList([:], key: "routes")
                var batch: [[String: Any]] = []
                func flush() {
                    if options.output == .json {
                        json.print(batch)
                    } else {
                        table.print(batch.map(RoutesCommand.originatedRow))
                    }
                    batch.removeAll(keepingCapacity: true)
                }
                let failed = try client.lines("/v1/routes:export") { line in
                    guard let route = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                        throw CLIFailure(message: "GET /v1/routes:export: a line is not a JSON object: \(String(decoding: line.prefix(80), as: UTF8.self))", status: 69)
                    }
                    batch.append(route)
                    if batch.count == 1000 { flush() }
                }
                if let failed { throw APIClient.failure(failed) }
                flush()
                if options.output == .json { json.finish() }
            }
        }
    }

    static func originatedRow(_ route: [String: Any]) -> [String] {
        let hops = (route["paths"] as? [[String: Any]] ?? []).map { Output.string($0["next_hop"]) }
        let sources = (route["sources"] as? [[String: Any]] ?? []).map { "\(Output.string($0["kind"])) \(Output.string($0["name"]))" }
        return [Output.string(route["prefix"]), hops.joined(separator: ","), sources.joined(separator: ", ")]
    }

    static func ribRow(_ r: [String: Any]) -> [String] {
        [Output.string(r["prefix"]), Output.string(r["path_id"]), Output.string(r["next_hop"]),
         (r["as_path"] as? [Any] ?? []).map { Output.string($0) }.joined(separator: " "),
         Output.string((r["communities"] as? [Any] ?? []) + (r["large_communities"] as? [Any] ?? [])), Output.string(r["stale"])]
    }

    /// One peer's Adj-RIB-Out or Adj-RIB-In, printed page by page as the pages arrive (it can
    /// hold every route Herald originates).
    static func ribList(_ options: ClientOptions, peer: String, _ which: String) throws {
        let client = try options.client()
        var table = Output.Table(["PREFIX", "PATH ID", "NEXT HOP", "AS PATH", "COMMUNITIES", "STALE"])
        var json: Output.JSONList?
        try client.pages("/v1/peers/\(escape(peer))/routes/\(which)") { page in
            let routes = page["routes"] as? [[String: Any]] ?? []
            if options.output == .json {
                if json == nil { json = Output.JSONList(page, key: "routes") }
                json?.print(routes)
            } else {
                table.print(routes.map(ribRow))
            }
        }
        json?.finish()
    }

    struct Advertised: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What Herald sends one peer (its Adj-RIB-Out).")
        @OptionGroup var options: ClientOptions
        @Option(help: "The peer's name.") var peer: String

        func run() throws {
            try runClient { try RoutesCommand.ribList(options, peer: peer, "advertised") }
        }
    }

    struct Received: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What one peer sent Herald (its Adj-RIB-In).")
        @OptionGroup var options: ClientOptions
        @Option(help: "The peer's name.") var peer: String

        func run() throws {
            try runClient { try RoutesCommand.ribList(options, peer: peer, "received") }
        }
    }
}

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "Show announce/withdraw history, newest first.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Only this prefix or address, or prefixes inside it.") var prefix: String?
    @Option(help: "Only events at or after this RFC 3339 time.") var since: String?
    @Option(help: "At most this many events (1–1000).") var limit: Int = 100
    // Newest first: someone looking at history wants what just changed, not the first events
    // of the database (which is what the API's default order gives).
    @Flag(help: "Oldest events first.") var oldestFirst = false
    @Option(help: "Continue after this cursor (printed when more events follow), in the same order.") var cursor: String?

    func run() throws {
        try runClient {
            var query = ["order=\(oldestFirst ? "asc" : "desc")", "limit=\(limit)"]
            if let prefix { query.append("prefix=\(escape(prefix))") }
            if let since { query.append("since=\(escape(since))") }
            if let cursor { query.append("cursor=\(escape(cursor))") }
            let reply = try options.client().call("GET", "/v1/history?" + query.joined(separator: "&")) as? [String: Any] ?? [:]
            if options.output == .json { return Output.json(reply) }
            let events = reply["events"] as? [[String: Any]] ?? []
            Output.table(["TIME", "ACTION", "PREFIX", "NEXT HOPS", "REASON"], events.map { event in
                let hops = (event["paths"] as? [[String: Any]] ?? []).map { Output.string($0["next_hop"]) }
                return [Output.string(event["at"]), Output.string(event["action"]), Output.string(event["prefix"]),
                        hops.isEmpty ? "-" : hops.joined(separator: ","), Output.string(event["reason"])]
            })
            // On stderr, so that the table alone goes down a pipe.
            if let next = reply["next_cursor"] as? String {
                FileHandle.standardError.write(Data("more events: --cursor \(next)\n".utf8))
            }
        }
    }
}

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "Follow Herald's live event stream (Ctrl-C to stop).")
    @OptionGroup var options: ClientOptions

    func run() throws {
        try runClient {
            let client = try options.client()
            let failed = try client.follow("/v1/events") { event, _, data in
                print(Self.line(event, data, options.output))
                fflush(nil)  // one line per event, as it happens
            }
            if let failed {
                _ = try client.call("GET", "/v1/events")  // reports the problem the same way as other commands
                throw CLIFailure(message: "unexpected answer \(failed.status)", status: 69)
            }
        }
    }

    /// One event on one line, its time (`at`, milliseconds in the stream) in RFC 3339 as `history`
    /// prints it. A table line reads `TIME  EVENT  key=value …`, its time that of arrival for an
    /// event without one (a peer's state change); JSON is `{"data":{…},"event":"…"}`.
    static func line(_ event: String, _ data: String, _ format: ClientOptions.OutputFormat) -> String {
        guard var fields = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] else { return "\(event)  \(data)" }
        let at = (fields["at"] as? NSNumber)?.int64Value
        if let at { fields["at"] = JSONTime.format(milliseconds: at) }
        if format == .json {
            let json = try? JSONSerialization.data(withJSONObject: ["event": event, "data": fields], options: [.sortedKeys, .withoutEscapingSlashes])
            return json.map { String(decoding: $0, as: UTF8.self) } ?? data
        }
        let pairs = fields.filter { $0.key != "at" && !($0.value is NSNull) }.sorted { $0.key < $1.key }.map { key, value in
            let text = Output.string(value)
            return "\(key)=" + (text.contains(" ") || text.contains("\"") ? "\"\(text.replacingOccurrences(of: "\"", with: "\\\""))\"" : text)
        }
        let time = at ?? Int64((Date().timeIntervalSince1970 * 1000).rounded())
        return "\(JSONTime.format(milliseconds: time))  \(event)  \(pairs.joined(separator: " "))"
    }
}
