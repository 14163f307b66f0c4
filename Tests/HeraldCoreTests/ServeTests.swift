import Foundation
import Glibc
import Testing
import HeraldCore
import IP
import Store

/// A fresh directory per test, removed afterwards.
final class ScratchDirectory {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "herald-core-XXXXXX").utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite struct SpeakerBootstrapTests {
    let directory = ScratchDirectory()

    func configuration(_ flags: ServeConfiguration.Flags) throws -> ServeConfiguration {
        try ServeConfiguration.resolve(flags: flags, environment: [:])
    }

    @Test func firstStartCreatesTheSpeakerWithDefaults() throws {
        let store = try Store(path: directory.file("h.db"))
        let result = try SpeakerBootstrap.run(store: store, configuration: configuration(.init()),
                                              hostRouterID: { IPv4Address(192, 0, 2, 9) }, now: 5)
        #expect(result.created)
        #expect(result.settings.asn == 64512)
        #expect(result.settings.routerID.description == "192.0.2.9")
        #expect(result.settings.listen.description == "0.0.0.0:179")
        #expect(try store.read { db in try SpeakerSettings.load(db) } == result.settings)
    }

    @Test func laterStartsKeepStoredValuesUnlessAskedToChange() throws {
        let path = directory.file("h.db")
        do {
            let store = try Store(path: path)
            _ = try SpeakerBootstrap.run(store: store, configuration: configuration(.init(asn: "65010", routerID: "192.0.2.1")),
                                         hostRouterID: { nil }, now: 1)
        }
        let store = try Store(path: path)
        let kept = try SpeakerBootstrap.run(store: store, configuration: configuration(.init()), hostRouterID: { IPv4Address(10, 9, 9, 9) }, now: 2)
        #expect(!kept.created && kept.changes.isEmpty)
        #expect(kept.settings.asn == 65010 && kept.settings.routerID.description == "192.0.2.1")

        let changed = try SpeakerBootstrap.run(store: store, configuration: configuration(.init(bgpListen: "[::]:1179", asn: "65020")),
                                               hostRouterID: { nil }, now: 3)
        #expect(changed.changes == ["asn 65010 → 65020", "bgp_listen 0.0.0.0:179 → [::]:1179"])
        #expect(try store.read { db in try SpeakerSettings.load(db) }?.asn == 65020)
    }

    @Test func hostWithoutIPv4FallsBackToLoopbackID() throws {
        let store = try Store(path: directory.file("h.db"))
        let result = try SpeakerBootstrap.run(store: store, configuration: configuration(.init()), hostRouterID: { nil }, now: 1)
        #expect(result.settings.routerID.description == "127.0.0.1")
    }
}

/// Runs the built `herald` binary as a user would.
@Suite(.serialized) struct HeraldBinaryTests {
    /// The `herald` executable SwiftPM built next to this test bundle.
    static var builtBinary: String {
        let runner = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: runner).deletingLastPathComponent().appendingPathComponent("herald").path
    }

    struct Finished {
        let status: Int32
        let output: String
    }

    /// Starts `arguments` in `directory`, waits until its output contains `readyLine` (or 20 s; not
    /// at all for ""), sends `signal`, and returns the exit status and everything written to stderr
    /// and stdout.
    static func run(_ executable: String, _ arguments: [String], in directory: String, environment: [String: String] = [:],
                    signal: Int32? = SIGTERM, readyLine: String = "herald started",
                    whenReady: (String) -> Void = { _ in }) throws -> Finished {
        let logPath = directory + "/output.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = ["PATH": "/usr/bin:/bin"].merging(environment) { $1 }
        process.standardOutput = log
        process.standardError = log
        // A binary just written may still be open for writing in a child that another test
        // forked at that moment (until it execs): exec then fails with ETXTBSY for a short while.
        var attempt = 0
        while true {
            do {
                try process.run()
                break
            } catch let error as NSError where attempt < 50 && (error.userInfo[NSUnderlyingErrorKey] as? NSError)?.code == Int(ETXTBSY) {
                attempt += 1
                usleep(20_000)
            }
        }
        func output() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        if let signal {
            let deadline = Date().addingTimeInterval(20)
            while !readyLine.isEmpty && !output().contains(readyLine) && Date() < deadline && process.isRunning { usleep(20_000) }
            if process.isRunning { whenReady(output()) }
            if process.isRunning { kill(process.processIdentifier, signal) }
        }
        process.waitUntilExit()
        try log.close()
        return Finished(status: process.terminationStatus, output: output())
    }

    @Test func printsItsVersion() throws {
        let directory = ScratchDirectory()
        let result = try Self.run(Self.builtBinary, ["--version"], in: directory.path, signal: nil)
        #expect(result.status == 0)
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines) == HeraldVersion.string)
    }

    @Test func generatesShellCompletions() throws {
        let directory = ScratchDirectory()
        for shell in ["bash", "zsh", "fish"] {
            let result = try Self.run(Self.builtBinary, ["--generate-completion-script", shell], in: directory.path, signal: nil)
            #expect(result.status == 0 && result.output.contains("alloc") && result.output.contains("serve"), "\(shell): \(result.output.prefix(200))")
        }
    }

    /// Copies a binary through a close-on-exec descriptor, so no child spawned meanwhile by
    /// another test keeps it open for writing (which would make exec fail with ETXTBSY).
    static func copyExecutable(from source: String, to destination: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        let fd = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                guard written > 0 else { throw CocoaError(.fileWriteUnknown) }
                offset += written
            }
        }
    }

    /// The binary alone, copied to an empty directory, creates herald.db there with the schema
    /// applied and exits 0 on SIGTERM: no resource bundle or source tree is needed.
    @Test func runsAloneFromAnEmptyDirectoryAndStopsOnSIGTERM() throws {
        let directory = ScratchDirectory()
        let copy = directory.file("herald")
        try Self.copyExecutable(from: Self.builtBinary, to: copy)
        let result = try Self.run(copy, ["serve", "--api-listen", "127.0.0.1:0", "--bgp-listen", "127.0.0.1:0"], in: directory.path)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("msg=\"herald started\""), "\(result.output)")
        #expect(result.output.contains("msg=\"shutting down\" signal=SIGTERM"), "\(result.output)")
        let store = try Store(path: directory.file("herald.db"))
        #expect(store.appliedAtOpen.isEmpty, "the binary applied every migration")
        #expect(store.schemaVersion == Migrator.herald.latestVersion)
        #expect(try store.read { db in try SpeakerSettings.load(db) } != nil)
    }

    @Test func stopsOnSIGINTToo() throws {
        let directory = ScratchDirectory()
        let result = try Self.run(Self.builtBinary, ["serve", "--log-format", "json", "--api-listen", "127.0.0.1:0"], in: directory.path, signal: SIGINT)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains(#""signal":"SIGINT""#), "\(result.output)")
    }

    @Test func refusesAnInvalidFlagWithOneClearLine() throws {
        let directory = ScratchDirectory()
        let result = try Self.run(Self.builtBinary, ["serve", "--asn", "23456"], in: directory.path, signal: nil)
        #expect(result.status == 64)
        #expect(result.output.contains("--asn \"23456\" AS 23456 is AS_TRANS"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("herald.db")), "nothing is created on a usage error")
    }

    @Test func environmentVariablesConfigureServe() throws {
        let directory = ScratchDirectory()
        let result = try Self.run(Self.builtBinary, ["serve"], in: directory.path,
                                  environment: ["HERALD_DB": "state.db", "HERALD_ASN": "65123", "HERALD_ROUTER_ID": "192.0.2.77",
                                                "HERALD_API_LISTEN": "127.0.0.1:0"])
        #expect(result.status == 0, "\(result.output)")
        let store = try Store(path: directory.file("state.db"))
        let speaker = try store.read { db in try SpeakerSettings.load(db) }
        #expect(speaker?.asn == 65123 && speaker?.routerID.description == "192.0.2.77")
    }

    @Test func refusesADatabaseFromANewerHerald() throws {
        let directory = ScratchDirectory()
        let path = directory.file("herald.db")
        let future = Migration(version: 999, name: "future", sql: "CREATE TABLE future (x INTEGER);\n")
        _ = try Store(path: path, migrator: Migrator(migrations: Migrator.herald.migrations + [future]))
        let result = try Self.run(Self.builtBinary, ["serve", "--api-listen", "127.0.0.1:0"], in: directory.path, signal: nil)
        #expect(result.status == 78, "\(result.output)")
        #expect(result.output.contains("newer Herald"), "\(result.output)")
    }

    /// `herald backup` copies the database of a running Herald; the copy serves the same state.
    /// With no Herald answering at the API address it copies ./herald.db, and says so.
    @Test func backsUpALiveDatabase() throws {
        let directory = ScratchDirectory()
        var backup: Finished?
        let refusing = try RefusingPort()
        let noServer = ["HERALD_SERVER": "http://127.0.0.1:\(refusing.port)"]
        let result = try Self.run(Self.builtBinary, ["serve", "--api-listen", "127.0.0.1:0", "--asn", "65077"], in: directory.path, whenReady: { _ in
            backup = try? Self.run(Self.builtBinary, ["backup", "copy.db"], in: directory.path, environment: noServer, signal: nil)
        })
        #expect(result.status == 0, "\(result.output)")
        #expect(backup?.status == 0, "\(backup?.output ?? "not run")")
        #expect(backup?.output.contains("copying ./herald.db instead") == true, "\(backup?.output ?? "not run")")
        let copy = try Store(path: directory.file("copy.db"))
        #expect(try copy.read { db in try SpeakerSettings.load(db) }?.asn == 65077)
        let again = try Self.run(Self.builtBinary, ["backup", "copy.db"], in: directory.path, signal: nil)
        #expect(again.status == 73 && again.output.contains("already exists"), "\(again.output)")
        let missing = try Self.run(Self.builtBinary, ["backup", "--db", "nope.db", "x.db"], in: directory.path, signal: nil)
        #expect(missing.status == 66, "\(missing.output)")
    }

    /// `herald backup FILE` with no --db asks the running Herald (`GET /v1/backup`) for a copy of
    /// the database it serves, from a directory with no database in it: the copy holds what the
    /// server holds, is one file (no -wal/-shm), and nothing is left beside the served database.
    /// Without the token it gets the 401 and leaves no file.
    @Test func backupWithNoDatabaseFlagAsksTheRunningHerald() throws {
        let served = ScratchDirectory(), elsewhere = ScratchDirectory()
        let token = "backup-test-token-0123456789"
        var withToken: Finished?, withoutToken: Finished?, leftBeside: [String] = ["not run"]
        let result = try Self.run(Self.builtBinary, ["serve", "--api-listen", "127.0.0.1:0", "--asn", "65078"], in: served.path,
                                  environment: ["HERALD_TOKEN": token], whenReady: { log in
            guard let port = log.firstMatch(of: /api_listen=127\.0\.0\.1:(\d+)/).map({ String($0.1) }) else { return }
            _ = try? SimpleHTTP.send(port: UInt16(port)!, method: "PUT", path: "/v1/pools/lb", token: token, json: #"{"blocks":["192.0.2.0/28"]}"#)
            let server = "http://127.0.0.1:\(port)"
            withoutToken = try? Self.run(Self.builtBinary, ["backup", "refused.db"], in: elsewhere.path, environment: ["HERALD_SERVER": server], signal: nil)
            withToken = try? Self.run(Self.builtBinary, ["backup", "--server", server, "copy.db"], in: elsewhere.path,
                                      environment: ["HERALD_TOKEN": token], signal: nil)
            leftBeside = (try? FileManager.default.contentsOfDirectory(atPath: served.path).filter { $0.hasPrefix(".herald-backup-") }) ?? ["unreadable"]
        })
        #expect(result.status == 0, "\(result.output)")
        #expect(withToken?.status == 0, "\(withToken?.output ?? "not run")")
        #expect(withToken?.output.contains("backed up the database of the Herald at 127.0.0.1:") == true, "\(withToken?.output ?? "")")
        #expect(leftBeside.isEmpty, "\(leftBeside)")
        // The copy stands alone (no -wal or -shm beside it) and is private, as the database is.
        let files = try FileManager.default.contentsOfDirectory(atPath: elsewhere.path).filter { $0.hasPrefix("copy.db") }
        #expect(files == ["copy.db"], "\(files)")
        var info = stat()
        #expect(stat(elsewhere.file("copy.db"), &info) == 0 && info.st_mode & 0o777 == 0o600)
        let copy = try Store(path: elsewhere.file("copy.db"))
        #expect(try copy.read { db in try SpeakerSettings.load(db) }?.asn == 65078)
        #expect(try copy.read { db in try Pools.get(db, name: "lb") } != nil)
        #expect(withoutToken?.status == 1 && withoutToken?.output.contains("401") == true, "\(withoutToken?.output ?? "not run")")
        #expect(!FileManager.default.fileExists(atPath: elsewhere.file("refused.db")))
        // Nothing answers and there is no ./herald.db: a clear failure, no file.
        let refusing = try RefusingPort()
        let nobody = try Self.run(Self.builtBinary, ["backup", "x.db"], in: elsewhere.path, environment: ["HERALD_SERVER": "http://127.0.0.1:\(refusing.port)"], signal: nil)
        #expect(nobody.status == 69 && nobody.output.contains("no ./herald.db here"), "\(nobody.output)")
        #expect(!FileManager.default.fileExists(atPath: elsewhere.file("x.db")))
    }

    /// The CLI against a running Herald: tables for people, JSON for scripts, one-line errors and
    /// exit statuses scripts can rely on (0 ok, 1 refused, 3 not found, 69 unreachable).
    @Test func clientCommandsTalkToTheAPI() throws {
        let directory = ScratchDirectory()
        var outputs: [String: Finished] = [:]
        let token = "cli-test-token-0123456789"
        let result = try Self.run(Self.builtBinary, ["serve", "--api-listen", "127.0.0.1:0"], in: directory.path,
                                  environment: ["HERALD_TOKEN": token], whenReady: { log in
            guard let port = log.firstMatch(of: /api_listen=127\.0\.0\.1:(\d+)/).map({ String($0.1) }) else { return }
            let environment = ["HERALD_SERVER": "http://127.0.0.1:\(port)", "HERALD_TOKEN": token]
            _ = try? SimpleHTTP.send(port: UInt16(port)!, method: "PUT", path: "/v1/pools/lb", token: token, json: #"{"blocks":["192.0.2.0/28"]}"#)
            for (key, arguments) in [
                ("set", ["alloc", "set", "default.web", "--pool", "lb"]),
                ("setAgain", ["alloc", "set", "default.web", "--pool", "lb"]),
                ("list", ["alloc"]),
                ("json", ["pools", "--output", "json"]),
                ("missing", ["alloc", "get", "nope"]),
                ("refused", ["alloc", "set", "x", "--pool", "nope"]),
                ("history", ["history"]),
                ("status", ["status"]),
                ("setOther", ["alloc", "set", "default.api", "--pool", "lb"]),
                ("newest", ["history", "--limit", "1"]),
                ("oldest", ["history", "--limit", "1", "--oldest-first"]),
            ] {
                outputs[key] = try? Self.run(Self.builtBinary, arguments, in: directory.path, environment: environment, signal: nil)
            }
            // The next page of the newest-first list: the cursor `history` printed.
            if let cursor = outputs["newest"]?.output.firstMatch(of: /more events: --cursor (\d+)/)?.1 {
                outputs["older"] = try? Self.run(Self.builtBinary, ["history", "--limit", "1", "--cursor", String(cursor)], in: directory.path,
                                                 environment: environment, signal: nil)
            }
            outputs["noToken"] = try? Self.run(Self.builtBinary, ["pools"], in: directory.path,
                                               environment: ["HERALD_SERVER": "http://127.0.0.1:\(port)", "HERALD_TOKEN": "wrong-token-0123456789"], signal: nil)
            if let refusing = try? RefusingPort() {
                outputs["unreachable"] = try? Self.run(Self.builtBinary, ["pools", "--server", "127.0.0.1:\(refusing.port)"], in: directory.path, signal: nil)
            }
        })
        #expect(result.status == 0, "\(result.output)")
        // The address on stdout; on stderr (captured with it here) why it reaches no router:
        // this test runs no peer.
        let warning = "herald: warning: 192.0.2.1 is announced to no router: no enabled peer carries ipv4-unicast\n"
        for key in ["set", "setAgain"] {
            let output = outputs[key]?.output ?? ""
            #expect(outputs[key]?.status == 0 && output.replacingOccurrences(of: warning, with: "") == "192.0.2.1\n" && output.contains(warning),
                    "\(key) (idempotent): \(String(describing: outputs[key]))")
        }
        #expect(outputs["list"]?.output.contains("default.web  lb    192.0.2.1") == true, "\(outputs["list"]?.output ?? "")")
        #expect(outputs["json"]?.output.contains(#""allocated" : 1"#) == true, "\(outputs["json"]?.output ?? "")")
        #expect(outputs["missing"]?.status == 3 && outputs["missing"]?.output == "herald: 404 Not Found: allocation \"nope\" does not exist\n")
        #expect(outputs["refused"]?.status == 1 && outputs["refused"]?.output.contains("pool \"nope\" does not exist") == true)
        #expect(outputs["history"]?.output.contains("announce  192.0.2.1/32") == true, "\(outputs["history"]?.output ?? "")")
        // Newest first by default; --oldest-first and --cursor page the other way and onwards.
        #expect(outputs["newest"]?.output.contains("192.0.2.2/32") == true && outputs["newest"]?.output.contains("192.0.2.1/32") == false,
                "\(outputs["newest"]?.output ?? "")")
        #expect(outputs["oldest"]?.output.contains("192.0.2.1/32") == true && outputs["oldest"]?.output.contains("192.0.2.2/32") == false,
                "\(outputs["oldest"]?.output ?? "")")
        #expect(outputs["older"]?.output.contains("192.0.2.1/32") == true, "\(outputs["older"]?.output ?? "no cursor printed")")
        #expect(outputs["status"]?.output.contains("allocations    1") == true, "\(outputs["status"]?.output ?? "")")
        #expect(outputs["noToken"]?.status == 1 && outputs["noToken"]?.output.contains("401") == true
                && outputs["noToken"]?.output.contains("give --token-file FILE or HERALD_TOKEN") == true, "\(String(describing: outputs["noToken"]))")
        #expect(outputs["unreachable"]?.status == 69 && outputs["unreachable"]?.output.contains("cannot reach Herald") == true)
    }

    @Test func refusesANonLoopbackAPIWithoutAToken() throws {
        let directory = ScratchDirectory()
        let result = try Self.run(Self.builtBinary, ["serve", "--api-listen", "0.0.0.0:0"], in: directory.path, signal: nil)
        #expect(result.status == 78, "\(result.output)")
        #expect(result.output.contains("requires an API token"), "\(result.output)")
    }

    /// /metrics is public by default (a scraper on loopback); `--metrics-auth` makes it need the
    /// token like every other path, and without a token the flag is refused rather than ignored.
    @Test func metricsAuthPutsMetricsBehindTheToken() throws {
        let token = "metrics-token-0123456789"
        func metrics(_ flags: [String]) throws -> (status: Int32, answers: [String]) {
            let directory = ScratchDirectory()
            var answers: [String] = []
            let result = try Self.run(Self.builtBinary, ["serve", "--api-listen", "127.0.0.1:0"] + flags, in: directory.path,
                                      environment: ["HERALD_TOKEN": token], whenReady: { output in
                guard let port = output.firstMatch(of: /api_listen=127\.0\.0\.1:(\d+)/).flatMap({ UInt16($0.1) }) else { return }
                answers.append((try? SimpleHTTP.get(port: port, path: "/metrics")) ?? "no answer")
                answers.append((try? SimpleHTTP.get(port: port, path: "/metrics", token: token)) ?? "no answer")
            })
            return (result.status, answers)
        }
        let open = try metrics([])
        #expect(open.status == 0 && open.answers.count == 2)
        #expect(open.answers.allSatisfy { $0.hasPrefix("HTTP/1.1 200") }, "public by default: \(open.answers.map { $0.prefix(40) })")
        let guarded = try metrics(["--metrics-auth"])
        #expect(guarded.status == 0 && guarded.answers.count == 2)
        #expect(guarded.answers.first?.hasPrefix("HTTP/1.1 401") == true, "\(guarded.answers.first?.prefix(200) ?? "")")
        #expect(guarded.answers.last?.hasPrefix("HTTP/1.1 200") == true && guarded.answers.last?.contains("herald_") == true)

        let directory = ScratchDirectory()
        let refused = try Self.run(Self.builtBinary, ["serve", "--api-listen", "127.0.0.1:0", "--metrics-auth"], in: directory.path, signal: nil)
        #expect(refused.status == 78 && refused.output.contains("--metrics-auth needs an API token"), "\(refused.output)")
    }

    /// The API answers on the address it logs, and /v1/status reports the database and speaker.
    @Test func servesHealthAndStatus() throws {
        let directory = ScratchDirectory()
        var answers: [String] = []
        let result = try Self.run(Self.builtBinary, ["serve", "--api-listen", "127.0.0.1:0", "--asn", "65010"], in: directory.path,
                                  environment: ["HERALD_TOKEN": "0123456789abcdef0123"], whenReady: { output in
            guard let port = output.firstMatch(of: /api_listen=127\.0\.0\.1:(\d+)/).flatMap({ UInt16($0.1) }) else { return }
            answers.append((try? SimpleHTTP.get(port: port, path: "/healthz")) ?? "no answer")
            answers.append((try? SimpleHTTP.get(port: port, path: "/v1/status")) ?? "no answer")
            answers.append((try? SimpleHTTP.get(port: port, path: "/v1/status", token: "0123456789abcdef0123")) ?? "no answer")
        })
        #expect(result.status == 0, "\(result.output)")
        #expect(answers.count == 3)
        #expect(answers.first?.hasPrefix("HTTP/1.1 200") == true && answers.first?.hasSuffix(#"{"status":"ok"}"#) == true, "\(answers)")
        #expect(answers.dropFirst().first?.hasPrefix("HTTP/1.1 401") == true, "the token is required: \(answers)")
        let status = answers.last ?? ""
        #expect(status.hasPrefix("HTTP/1.1 200"), "\(status)")
        #expect(status.contains(#""schema_version":\#(Migrator.herald.latestVersion)"#) && status.contains(#""asn":65010"#) && status.contains(#""version":"\#(HeraldVersion.string)""#), "\(status)")
        #expect(!result.output.contains("0123456789abcdef0123"), "the token is never logged")
    }
}

/// A minimal HTTP/1.1 client over a blocking socket, for talking to a `herald serve` child.
/// A loopback port where a connect is refused for as long as this lives: bound, never listening
/// (a fixed port such as 1 may have a listener on a shared machine).
final class RefusingPort {
    let descriptor: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        descriptor = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, bound else { throw SimpleHTTP.Failure(what: "bind errno \(errno)") }
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(descriptor) }
}

enum SimpleHTTP {
    struct Failure: Error { let what: String }

    static func get(port: UInt16, path: String, token: String? = nil) throws -> String {
        try send(port: port, method: "GET", path: path, token: token, json: nil)
    }

    /// Sends one request with `Connection: close` and returns the whole response as text.
    static func send(port: UInt16, method: String, path: String, token: String? = nil, json: String?) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(what: "socket") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(what: "connect errno \(errno)") }
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        if let json { request += "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n" }
        request += "\r\n" + (json ?? "")
        let bytes = Array(request.utf8)
        guard Glibc.send(fd, bytes, bytes.count, 0) == bytes.count else { throw Failure(what: "send") }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }
}
