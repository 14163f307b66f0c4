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

            The commands that talk to a running Herald take --server, --token-file and --output \
            before or after the command.
            """,
        version: HeraldVersion.string,
        subcommands: [Serve.self, Status.self, PeersCommand.self, NodesCommand.self, PoolsCommand.self, AllocCommand.self, RoutesCommand.self, SpeakerCommand.self, Apply.self, Export.self, HistoryCommand.self, EventsCommand.self, ClusterCommand.self, Backup.self]
    )

    static func main() async {
        await main(ClientOptions.movedAfterTheCommand(Array(CommandLine.arguments.dropFirst())))
    }
}
