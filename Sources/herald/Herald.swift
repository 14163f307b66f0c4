import ArgumentParser
import HeraldCore

@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "LoadBalancer addresses and BGP announcements for small bare-metal clusters.",
        discussion: """
            Herald hands out LoadBalancer IP addresses from pools and announces them, and other \
            prefixes such as pod CIDRs, over BGP to your router. State lives in one SQLite file.
            """,
        version: HeraldVersion.string,
        subcommands: [Serve.self, Status.self, PeersCommand.self, NodesCommand.self, PoolsCommand.self, AllocCommand.self, RoutesCommand.self, HistoryCommand.self, EventsCommand.self, ClusterCommand.self, Backup.self]
    )
}
