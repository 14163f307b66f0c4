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

    @Argument(help: "Where to write the copy; must not exist.")
    var file: String

    func run() throws {
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
            let database = try Database(path: source, mode: .readOnly)
            try database.backup(to: file)
            let check = try Database(path: file, mode: .readOnly)
            let integrity = try check.firstRow("PRAGMA integrity_check")?.get(0, as: String.self)
            guard integrity == "ok" else {
                FileHandle.standardError.write(Data("herald backup: the copy failed its integrity check: \(integrity ?? "no answer")\n".utf8))
                throw ExitCode(74)
            }
        } catch let error as DatabaseError {
            FileHandle.standardError.write(Data("herald backup: \(error)\n".utf8))
            try? FileManager.default.removeItem(atPath: file)
            throw ExitCode(74)  // EX_IOERR
        }
        print("backed up \(source) to \(file)")
    }
}
