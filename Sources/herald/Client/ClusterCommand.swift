import ArgumentParser

/// `herald cluster status|add|remove|transfer`: the replicas of cluster mode (docs/cluster.md).
struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Show the replicas of cluster mode, or change who is a member or the leader.",
        subcommands: [Status.self, Add.self, Remove.self, Transfer.self], defaultSubcommand: Status.self)

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Members, roles, the leader, and this replica's contact with it.")
        @OptionGroup var options: ClientOptions

        func run() throws {
            try runClient {
                let cluster = try options.client().call("GET", "/v1/cluster") as? [String: Any] ?? [:]
                if options.output == .json { return Output.json(cluster) }
                guard cluster["mode"] as? String == "cluster" else {
                    print("single SQLite file: not in cluster mode (start herald serve with --cluster-dir)")
                    return
                }
                Output.table(["FIELD", "VALUE"], [
                    ["this replica", "\(Output.string(cluster["node_id"])) \(Output.string(cluster["address"]))"],
                    ["leader", Output.string(cluster["leader"])],
                    ["quorum", (cluster["has_quorum"] as? Bool) == true ? "yes" : "no, since \(Output.string(cluster["quorum_lost_since"]))"],
                    ["degraded", Output.string(cluster["degraded"])],
                    ["last contact", Output.string(cluster["last_contact"])],
                    ["revision", "\(Output.string(cluster["revision"])) (\(Output.string(cluster["lag_revisions"])) behind at the last poll)"],
                    ["leader changes", Output.string(cluster["leader_changes"])],
                ])
                print()
                let members = cluster["members"] as? [[String: Any]] ?? []
                Output.table(["ID", "ADDRESS", "ROLE", "LEADER", "REACHABLE", "THIS"], members.map { member in
                    [Output.string(member["id"]), Output.string(member["address"]), Output.string(member["role"]),
                     Output.string(member["leader"]), Output.string(member["reachable"]), Output.string(member["this"])]
                })
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a member by node ID and address (a replica started with --cluster-join adds itself; this is for recovery).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The node's ID (its cluster directory's 'replica' file).") var id: String
        @Argument(help: "The node's --cluster-listen address.") var address: String
        @Flag(help: "Add it as a spare, not a voter.") var spare = false

        func run() throws {
            try runClient {
                _ = try options.client().call("POST", "/v1/cluster/members", json: ["id": id, "address": address, "voter": !spare])
                print("added \(id) \(address)\(spare ? " as a spare" : "")")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a member (a replica taken out of service for good).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The node's ID.") var id: String

        func run() throws {
            try runClient {
                _ = try options.client().call("DELETE", "/v1/cluster/members/\(escape(id))")
                print("removed \(id)")
            }
        }
    }

    struct Transfer: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Hand leadership to another voter (before restarting the leader).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The voter's node ID.") var id: String

        func run() throws {
            try runClient {
                let cluster = try options.client().call("POST", "/v1/cluster/transfer", json: ["id": id]) as? [String: Any] ?? [:]
                print("leader: \(Output.string(cluster["leader"]))")
            }
        }
    }
}
