import ArgumentParser
import Foundation
import Store

/// `herald backup FILE`: a consistent copy of the live database, taken while Herald serves.
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the database to FILE while Herald keeps running.",
        discussion: """
            With no --db or --cluster, asks the running Herald (--server, default \
            http://127.0.0.1:8179) for a copy of the database it serves (GET /v1/backup), so it \
            works wherever the API does, whatever directory the database is in; when no Herald \
            answers there, copies ./herald.db. With --db (or HERALD_DB), copies that file \
            directly. Either way SQLite's online backup API takes the copy at one commit, writers \
            are not blocked, and the copy is checked with PRAGMA integrity_check. To restore, stop \
            Herald and start it with --db FILE (or copy FILE over the database).
            """
    )

    @Option(name: .long, help: "Copy this database file directly, not through the API. [HERALD_DB]")
    var db: String?

    @Option(name: .long, help: "Cluster mode: a replica's --cluster-listen address (any member; the copy comes from the leader). [HERALD_CLUSTER_LISTEN]")
    var cluster: String?

    @Option(name: .long, help: "Herald's API, asked for the copy when --db is not given. [HERALD_SERVER] (default: http://127.0.0.1:8179)")
    var server: String?

    @Option(name: .long, help: "File holding the API token (its first token line is used). [HERALD_TOKEN_FILE]; or set HERALD_TOKEN")
    var tokenFile: String?

    @Argument(help: "Where to write the copy; must not exist.")
    var file: String

    /// The database `herald serve` uses when given none.
    static let defaultDatabase = "./herald.db"

    func run() throws {
        do {
            try backUp()
        } catch let failure as CLIFailure {
            FileHandle.standardError.write(Data("herald backup: \(failure.message)\n".utf8))
            throw ExitCode(failure.status)
        }
    }

    func backUp() throws {
        let environment = ProcessInfo.processInfo.environment
        func given(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard !FileManager.default.fileExists(atPath: file) else {
            throw fail("\(file) already exists; choose a new file", status: 73)  // EX_CANTCREAT
        }
        if let cluster = cluster ?? (db == nil ? given("HERALD_CLUSTER_LISTEN") : nil) {
            do {
                try Store.backup(clusterMembers: cluster.split(separator: ",").map(String.init), to: file)
            } catch {
                try? FileManager.default.removeItem(atPath: file)
                throw fail("\(error)", status: 74)
            }
            print("backed up the cluster (through \(cluster)) to \(file)")
            return
        }
        if let source = db ?? given("HERALD_DB") {
            try copyFile(source)
            return
        }
        let client: APIClient
        do { client = try ClientOptions.client(server: server, tokenFile: tokenFile) } catch let failure as CLIFailure {
            throw failure
        } catch {
            throw fail("\(error)", status: 69)
        }
        switch try copyThroughAPI(client) {
        case .copied: return
        case .unreachable(let why):
            // No Herald answers: the database of a stopped `herald serve` in this directory.
            guard FileManager.default.fileExists(atPath: Self.defaultDatabase) else {
                throw fail("\(why); and there is no \(Self.defaultDatabase) here to copy (give --db FILE for a database file)", status: 69)
            }
            FileHandle.standardError.write(Data("herald backup: \(why); copying \(Self.defaultDatabase) instead\n".utf8))
            try copyFile(Self.defaultDatabase)
        }
    }

    enum APICopy {
        case copied
        case unreachable(String)
    }

    /// `GET /v1/backup` into a new file, checked before it is kept.
    func copyThroughAPI(_ client: APIClient) throws -> APICopy {
        let descriptor = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw fail("cannot create \(file): \(String(cString: strerror(errno)))", status: 73) }
        var kept = false
        defer {
            close(descriptor)
            if !kept { unlink(file) }
        }
        let answer: APIClient.Download
        do {
            answer = try client.download("/v1/backup", into: descriptor)
        } catch let error as APIClient.Unreachable {
            // Refused before anything came back: no Herald there. Cut off mid-copy: a failure.
            if error.nobodyListening { return .unreachable(error.description) }
            throw fail("the copy was cut short: \(error.description)", status: 74)
        } catch {
            throw fail("the copy failed: \(error)", status: 74)
        }
        switch answer {
        case .refused(let response):
            throw APIClient.failure(response)
        case .written(let bytes):
            guard fsync(descriptor) == 0 else { throw fail("cannot write \(file): \(String(cString: strerror(errno)))", status: 74) }
            do {
                try Store.checkIntegrity(ofCopyAt: file)
            } catch {
                throw fail("the copy failed its check: \(error)", status: 74)
            }
            kept = true
            print("backed up the database of the Herald at \(client.host):\(client.port) to \(file) (\(bytes) bytes)")
            return .copied
        }
    }

    /// A database file copied directly (read-only, beside a running Herald).
    func copyFile(_ source: String) throws {
        guard FileManager.default.fileExists(atPath: source) else {
            throw fail("database \(source) does not exist", status: 66)  // EX_NOINPUT
        }
        do {
            try Store.backup(databaseAt: source, to: file)
        } catch {
            try? FileManager.default.removeItem(atPath: file)
            throw fail("\(error)", status: 74)  // EX_IOERR
        }
        print("backed up \(source) to \(file)")
    }

    /// Why the backup failed, and the exit status that says so (sysexits.h).
    func fail(_ message: String, status: Int32) -> CLIFailure { CLIFailure(message: message, status: status) }
}
