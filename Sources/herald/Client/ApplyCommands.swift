import ArgumentParser
import Foundation

// `herald apply -f FILE` and `herald export`: Herald's peers, nodes, pools, allocations and
// static routes kept in a file (in Git, say), as MetalLB and Cilium users keep their CRDs.
// docs/apply.md has the format and the rules.

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make Herald match a file of peers, nodes, pools, allocations and static routes (YAML or JSON).",
        discussion: """
            Creates what the file declares and Herald lacks, changes what differs, and with --prune \
            deletes what an earlier apply created and the file no longer declares. Every object \
            apply writes carries the label \(ManagedLabel.key)=\(ManagedLabel.value); objects \
            without it are never deleted. `herald export` writes the file. See docs/apply.md.
            """)
    @OptionGroup var options: ClientOptions
    @Option(name: .shortAndLong, help: "The file (YAML or JSON); - reads standard input.") var file: String
    @Flag(help: "Print the changes without making them.") var dryRun = false
    @Flag(help: "Delete the objects labelled \(ManagedLabel.key)=\(ManagedLabel.value) that the file no longer declares.") var prune = false
    @Flag(help: "Send every password the file gives, also to peers that have one (Herald never shows a password, so apply cannot tell whether it changed).")
    var sendPasswords = false

    func run() throws {
        try runClient {
            var document = try Self.read(file)
            try Self.resolvePasswordFiles(&document, relativeTo: file == "-" ? FileManager.default.currentDirectoryPath
                                                                          : URL(fileURLWithPath: file).deletingLastPathComponent().path)
            let client = try options.client()
            let plan = ConfigPlan.make(document, current: try Self.current(client), prune: prune, sendPasswords: sendPasswords)
            if !plan.conflicts.isEmpty {
                let names = plan.conflicts.map { "\($0.kind.singular) \($0.name) (\($0.manager))" }.joined(separator: ", ")
                throw CLIFailure(message: "managed by another tool (label \(ManagedLabel.key)), so not applied: \(names); "
                                 + "take it out of the file, or remove the label to hand it to apply. Nothing was changed.", status: 1)
            }
            if !plan.undeclared.isEmpty {
                let names = plan.undeclared.map { "\($0.kind.singular) \($0.name)" }.joined(separator: ", ")
                FileHandle.standardError.write(Data("herald: managed by apply but no longer in the file (--prune deletes them): \(names)\n".utf8))
            }
            let json = options.output == .json
            if dryRun {
                if json { return Output.json(Self.report(plan, dryRun: true)) }
                for change in plan.changes { print(change.line) }
                print(plan.summary)
                return
            }
            for (index, change) in plan.changes.enumerated() {
                let reply: Any?
                do {
                    reply = try client.call(change.method, change.path, json: change.body)
                } catch let failure as CLIFailure {
                    throw CLIFailure(message: "\(change.line): \(failure.message)\nherald: stopped: \(index) of \(plan.changes.count) changes made (printed above), the others not tried",
                                     status: failure.status)
                }
                if !json {
                    print(change.line)
                    fflush(nil)
                }
                for warning in (reply as? [String: Any])?["warnings"] as? [String] ?? [] {
                    FileHandle.standardError.write(Data("herald: warning: \(change.kind.singular) \(change.name): \(warning)\n".utf8))
                }
            }
            if json { return Output.json(Self.report(plan, dryRun: false)) }
            print(plan.changes.isEmpty ? "no changes" : "\(plan.count(.create)) created, \(plan.count(.change)) changed, \(plan.count(.delete)) deleted")
        }
    }

    /// The plan for scripts (`--output json`): each change with its differences, and the counts.
    static func report(_ plan: ConfigPlan, dryRun: Bool) -> [String: Any] {
        [
            "dry_run": dryRun,
            "changes": plan.changes.map { change -> [String: Any] in
                ["action": change.action.rawValue, "kind": change.kind.singular, "name": change.name, "differences": change.differences,
                 "adopted": change.adopts]
            },
            "created": plan.count(.create), "changed": plan.count(.change), "deleted": plan.count(.delete),
            "undeclared": plan.undeclared.map { ["kind": $0.kind.singular, "name": $0.name] },
        ]
    }

    /// The file parsed; a file that cannot be read or parsed is bad local setup (exit 78).
    static func read(_ file: String) throws -> ConfigDocument {
        let text: String
        if file == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let contents = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CLIFailure(message: "cannot read \(file)", status: 78)
            }
            text = contents
        }
        do {
            return try ConfigDocument.parse(text)
        } catch let problem as ConfigDocument.Problem {
            throw CLIFailure(message: "\(file == "-" ? "standard input" : file): \(problem)", status: 78)
        }
    }

    /// Reads each peer's `password_file` (its first line, as `peer set --password-file` does), a
    /// relative path being taken from the apply file's directory.
    static func resolvePasswordFiles(_ document: inout ConfigDocument, relativeTo directory: String) throws {
        for (name, peer) in document.objects[.peers] ?? [:] {
            guard let path = peer["password_file"] as? String else { continue }
            let full = path.hasPrefix("/") ? path : directory + "/" + path
            guard let text = try? String(contentsOfFile: full, encoding: .utf8) else {
                throw CLIFailure(message: "peer \(name): cannot read password file \(full)", status: 78)
            }
            var resolved = peer
            resolved["password"] = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            resolved["password_file"] = nil
            document.objects[.peers]?[name] = resolved
        }
    }

    /// Every object of every kind, each list followed to its last page.
    static func current(_ client: APIClient) throws -> [ConfigKind: [[String: Any]]] {
        var current: [ConfigKind: [[String: Any]]] = [:]
        for kind in ConfigKind.allCases {
            current[kind] = try client.getAll(kind.listPath, key: kind.rawValue)[kind.rawValue] as? [[String: Any]] ?? []
        }
        return current
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write Herald's peers, nodes, pools, allocations and static routes as a file for `herald apply` (passwords left out).",
        discussion: """
            YAML, or JSON with --output json; objects sorted by name, fields in a fixed order, so that the output diffs well. \
            Objects another tool manages (label \(ManagedLabel.key), such as the Kubernetes sync's allocations) are left out.
            """)
    @OptionGroup var options: ClientOptions
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var file: String?
    @Flag(help: "Only the objects apply manages (label \(ManagedLabel.key)=\(ManagedLabel.value)).") var managedOnly = false

    func run() throws {
        try runClient {
            let current = try Apply.current(try options.client())
            var objects: [ConfigKind: [[String: Any]]] = [:]
            var comments: [ConfigKind: [String: String]] = [:]
            var others: [String: Int] = [:]
            for (kind, items) in current {
                // What another tool manages (the Kubernetes sync) is that tool's to declare.
                for item in items where ManagedLabel.isOthers(item) { others[ManagedLabel.manager(item) ?? "", default: 0] += 1 }
                let kept = items.filter { managedOnly ? ManagedLabel.isManaged($0) : !ManagedLabel.isOthers($0) }
                objects[kind] = kept.map { ConfigPlan.exported(kind, $0) }
                for peer in kept where kind == .peers && (peer["password_set"] as? NSNumber)?.boolValue == true {
                    comments[.peers, default: [:]][peer["name"] as? String ?? ""] =
                        "has a password, not exported: apply keeps it (give password or password_file to change it)"
                }
            }
            let text: String
            if options.output == .json {
                var document: [String: Any] = ["version": 1]
                for kind in ConfigKind.allCases {
                    document[kind.rawValue] = (objects[kind] ?? []).sorted { ($0["name"] as? String ?? "") < ($1["name"] as? String ?? "") }
                }
                let data = try JSONSerialization.data(withJSONObject: document, options: Output.jsonOptions)
                text = String(decoding: data, as: UTF8.self) + "\n"
            } else {
                text = ConfigYAML.document(objects, comments: comments, header: [
                    "Herald's peers, nodes, pools, allocations and static routes (herald export\(managedOnly ? " --managed-only" : "")).",
                    "herald apply -f FILE makes a Herald match it; passwords are not exported.",
                ] + others.sorted { $0.key < $1.key }.map { "Left out: \($0.value) managed by \($0.key) (label \(ManagedLabel.key))." })
            }
            if let file {
                guard FileManager.default.createFile(atPath: file, contents: Data(text.utf8)) else {
                    throw CLIFailure(message: "cannot write \(file)", status: 78)
                }
            } else {
                print(text, terminator: "")
            }
        }
    }
}
