import Foundation
import Testing
@testable import HeraldCore
import HTTPServer
import Store

/// `GET /v1/backup` in-process: one copy at a time, held only by the response that streams it,
/// and nothing left beside the database.
@Suite struct BackupAPITests {
    func leftovers(_ api: APIFixture) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: api.store.scratchDirectory).filter { $0.hasPrefix(BackupAPI.scratchPrefix) }
    }

    func backup(_ api: APIFixture) async throws -> HTTPResponse {
        await api.router.respond(to: try HTTPRequest(.GET, "/v1/backup"), context: RequestContext(requestID: "backup"))
    }

    @Test func oneBackupAtATimeHeldOnlyByItsStream() async throws {
        let api = try APIFixture()
        var first: HTTPResponse? = try await backup(api)
        #expect(first?.status == .ok)
        #expect(first?.headers["Content-Type"] == "application/vnd.sqlite3")
        #expect(Int(first?.headers["Herald-Backup-Size"] ?? "") ?? 0 > 0)
        // The copy is unlinked before the first byte goes out: only the open descriptor holds it.
        #expect(try leftovers(api).isEmpty)

        let second = try await backup(api)
        #expect(second.status == .conflict)
        #expect(second.headers["Retry-After"] == "5")
        #expect(String(decoding: second.bodyBytes, as: UTF8.self).contains("another backup is being taken"))

        // A response dropped unsent (the client went away) closes its copy and frees the slot.
        first = nil
        #expect(first == nil)
        let third = try await backup(api)
        #expect(third.status == .ok)
    }

    @Test func aCopyLeftByAKilledProcessIsRemovedAtTheNextStart() throws {
        let api = try APIFixture()
        let stale = api.store.scratchDirectory + "/" + BackupAPI.scratchPrefix + "stale.db"
        #expect(FileManager.default.createFile(atPath: stale, contents: Data(count: 4096)))
        APIServices(committer: api.committer).register(on: Router(), startedAt: 0)
        #expect(try leftovers(api).isEmpty)
        #expect(FileManager.default.fileExists(atPath: api.directory.file("herald.db")))
    }

    @Test func theScratchDirectoryIsTheDatabasesOwn() throws {
        let api = try APIFixture()
        #expect(api.store.scratchDirectory == api.directory.path)
    }
}
