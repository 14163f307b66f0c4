import ArgumentParser
import Foundation
import Store

/// `herald backup FILE`: a consistent copy of the live database, taken while Herald serves.
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the database to FILE while Herald keeps running.",
        discussion: """
            Uses SQLite's online backup API: the copy is the state at one commit, and writers are \
            not blocked. To restore, stop Herald and start it with --db FILE (or copy FILE over \
            the database).
            """
    )

    @Option(name: .long, help: "The database to copy. [HERALD_DB] (default: ./herald.db)")
    var db: String?

    @Option(name: .long, help: "Cluster mode: a replica's --cluster-listen address (any member; the copy comes from the leader). [HERALD_CLUSTER_LISTEN]")
    var cluster: String?

    @Argument(help: "Where to write the copy; must not exist.")
    var file: String

    func run() throws {
        if let cluster = cluster ?? (db == nil ? ProcessInfo.processInfo.environment["HERALD_CLUSTER_LISTEN"].flatMap({ $0.isEmpty ? nil : $0 }) : nil) {
            guard !FileManager.default.fileExists(atPath: file) else {
                FileHandle.standardError.write(Data("herald backup: \(file) already exists; choose a new file\n".utf8))
                throw ExitCode(73)
            }
            do {
                try Store.backup(clusterMembers: cluster.split(separator: ",").map(String.init), to: file)
            } catch {
                FileHandle.standardError.write(Data("herald backup: \(error)\n".utf8))
                try? FileManager.default.removeItem(atPath: file)
                throw ExitCode(74)
            }
            print("backed up the cluster (through \(cluster)) to \(file)")
            return
        }
        let source = db ?? ProcessInfo.processInfo.environment["HERALD_DB"].flatMap { $0.isEmpty ? nil : $0 } ?? "./herald.db"
        guard FileManager.default.fileExists(atPath: source) else {
            FileHandle.standardError.write(Data("herald backup: database \(source) does not exist\n".utf8))
            throw ExitCode(66)  // EX_NOINPUT
        }
        guard !FileManager.default.fileExists(atPath: file) else {
            FileHandle.standardError.write(Data("herald backup: \(file) already exists; choose a new file\n".utf8))
            throw ExitCode(73)  // EX_CANTCREAT
        }
        do {
            try Store.backup(databaseAt: source, to: file)
        } catch let error as DatabaseError {
            FileHandle.standardError.write(Data("herald backup: \(error)\n".utf8))
            try? FileManager.default.removeItem(atPath: file)
            throw ExitCode(74)  // EX_IOERR
        }
        print("backed up \(source) to \(file)")
    }
}
