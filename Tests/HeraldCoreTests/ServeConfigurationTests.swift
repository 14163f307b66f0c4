import Foundation
import Store
import Testing
@testable import HeraldCore
import IP
import Logging

@Suite struct ServeConfigurationTests {
    @Test func syncChoosesWhenACommitIsDone() throws {
        #expect(try ServeConfiguration.resolve(flags: .init(), environment: [:]).sync == .full)
        #expect(try ServeConfiguration.resolve(flags: .init(), environment: ["HERALD_SYNC": "normal"]).sync == .normal)
        #expect(throws: ConfigurationError.self) { try ServeConfiguration.resolve(flags: .init(sync: "off"), environment: [:]) }
        let directory = ScratchDirectory()
        let store = try Store(path: directory.file("h.db"), synchronous: .normal)
        // PRAGMA synchronous: 1 = NORMAL, 2 = FULL.
        #expect(try store.write { db in try db.firstRow("PRAGMA synchronous")?.get(0, as: Int.self) } == 1)
        let full = try Store(path: directory.file("f.db"))
        #expect(try full.write { db in try db.firstRow("PRAGMA synchronous")?.get(0, as: Int.self) } == 2)
    }

    /// Cluster mode is opt-in, complete, and refuses an untrusted network or a --db it would
    /// not use (docs/cluster.md).
    @Test func clusterSettings() throws {
        #expect(try ServeConfiguration.resolve(flags: .init(), environment: [:]).cluster == nil, "the default is one SQLite file")
        let config = try ServeConfiguration.resolve(flags: .init(clusterDir: "/var/lib/herald/raft", clusterListen: "127.0.0.1:9001",
                                                                 clusterJoin: "127.0.0.2:9001, 127.0.0.3:9001"), environment: [:])
        #expect(config.cluster?.join.map(\.description) == ["127.0.0.2:9001", "127.0.0.3:9001"])
        #expect(config.cluster?.gracePeriodSeconds == 30 && config.cluster?.degradedMED == 1000 && config.cluster?.degradedPrepend == 0)
        let fromEnvironment = try ServeConfiguration.resolve(flags: .init(), environment: [
            "HERALD_CLUSTER_DIR": "/d", "HERALD_CLUSTER_LISTEN": "100.64.0.1:9001", "HERALD_CLUSTER_TRUSTED_NETWORK": "true",
            "HERALD_CLUSTER_GRACE": "5", "HERALD_CLUSTER_DEGRADED_PREPEND": "2",
        ])
        #expect(fromEnvironment.cluster?.listen.description == "100.64.0.1:9001" && fromEnvironment.cluster?.gracePeriodSeconds == 5)
        #expect(fromEnvironment.cluster?.degradedPrepend == 2)
        func refusal(_ flags: ServeConfiguration.Flags) -> String {
            do { _ = try ServeConfiguration.resolve(flags: flags, environment: [:]) } catch { return error.description }
            return "accepted"
        }
        #expect(refusal(.init(clusterDir: "/d", clusterListen: "100.64.0.1:9001")).contains("--cluster-trusted-network"))
        #expect(refusal(.init(clusterListen: "127.0.0.1:9001")).contains("needs --cluster-dir"))
        #expect(refusal(.init(clusterDir: "/d")).contains("needs --cluster-listen"))
        #expect(refusal(.init(db: "/x.db", clusterDir: "/d", clusterListen: "127.0.0.1:9001")).contains("not used in cluster mode"))
        #expect(refusal(.init(clusterDir: "/d", clusterListen: "127.0.0.1:9001", clusterDegradedPrepend: "17")).contains("0–16"))
    }

    @Test func defaults() throws {
        let config = try ServeConfiguration.resolve(flags: .init(), environment: [:])
        #expect(config.databasePath == "./herald.db")
        #expect(config.apiListen.description == "127.0.0.1:8179")
        #expect(config.bgpListen == nil && config.asn == nil && config.routerID == nil && config.tokenFile == nil)
        #expect(config.logLevel == .info && config.logFormat == .logfmt)
    }

    @Test func environmentFillsInAndFlagsWin() throws {
        let environment = [
            "HERALD_DB": "/var/lib/herald/h.db", "HERALD_API_LISTEN": "[::1]:9000", "HERALD_BGP_LISTEN": "100.64.0.1:1179",
            "HERALD_ASN": "4200000001", "HERALD_ROUTER_ID": "192.0.2.1", "HERALD_TOKEN_FILE": "/etc/herald/tokens",
            "HERALD_LOG_LEVEL": "debug", "HERALD_LOG_FORMAT": "json",
        ]
        let fromEnvironment = try ServeConfiguration.resolve(flags: .init(), environment: environment)
        #expect(fromEnvironment.databasePath == "/var/lib/herald/h.db")
        #expect(fromEnvironment.apiListen.description == "[::1]:9000")
        #expect(fromEnvironment.bgpListen?.description == "100.64.0.1:1179")
        #expect(fromEnvironment.asn == 4_200_000_001)
        #expect(fromEnvironment.routerID?.description == "192.0.2.1")
        #expect(fromEnvironment.tokenFile == "/etc/herald/tokens")
        #expect(fromEnvironment.logLevel == .debug && fromEnvironment.logFormat == .json)

        let flagged = try ServeConfiguration.resolve(flags: .init(db: "x.db", asn: "65001", logFormat: "logfmt"), environment: environment)
        #expect(flagged.databasePath == "x.db" && flagged.asn == 65001 && flagged.logFormat == .logfmt)
        #expect(flagged.routerID?.description == "192.0.2.1", "unflagged settings still come from the environment")
    }

    @Test func everySettingHasAVariableNamedAfterItsFlag() {
        #expect(ServeConfiguration.Setting.apiListen.environment == "HERALD_API_LISTEN")
        #expect(ServeConfiguration.Setting.routerID.environment == "HERALD_ROUTER_ID")
        #expect(Set(ServeConfiguration.Setting.allCases.map(\.environment)).count == ServeConfiguration.Setting.allCases.count)
    }

    @Test(arguments: [
        (ServeConfiguration.Flags(asn: "23456"), "AS_TRANS"),
        (ServeConfiguration.Flags(asn: "0"), "reserved"),
        (ServeConfiguration.Flags(asn: "4294967296"), "not an AS number"),
        (ServeConfiguration.Flags(asn: "-1"), "not an AS number"),
        (ServeConfiguration.Flags(asn: "AS65000"), "not an AS number"),
        (ServeConfiguration.Flags(routerID: "0.0.0.0"), "non-zero"),
        (ServeConfiguration.Flags(routerID: "2001:db8::1"), "not an IPv4 address"),
        (ServeConfiguration.Flags(apiListen: "127.0.0.1"), "has no port"),
        (ServeConfiguration.Flags(apiListen: "::1:8179"), "brackets"),
        (ServeConfiguration.Flags(apiListen: "127.0.0.1:70000"), "invalid port"),
        (ServeConfiguration.Flags(bgpListen: "localhost:179"), "invalid address"),
        (ServeConfiguration.Flags(logLevel: "verbose"), "expected one of trace, debug"),
        (ServeConfiguration.Flags(logFormat: "xml"), "expected one of logfmt, json"),
        (ServeConfiguration.Flags(db: ""), "must not be empty"),
        (ServeConfiguration.Flags(shutdown: "now"), "expected one of graceful-restart, withdraw"),
        (ServeConfiguration.Flags(historyDays: "0"), "at least 1"),
        (ServeConfiguration.Flags(historyRows: "many"), "whole number"),
    ])
    func rejectsWithTheFlagAndTheReason(_ flags: ServeConfiguration.Flags, _ why: String) {
        #expect {
            try ServeConfiguration.resolve(flags: flags, environment: [:])
        } throws: { error in
            let text = "\(error)"
            return text.contains(why) && text.contains("--") && text.contains("HERALD_")
        }
    }

    @Test func environmentErrorsNameTheVariable() {
        #expect {
            try ServeConfiguration.resolve(flags: .init(), environment: ["HERALD_ASN": "23456"])
        } throws: { error in
            "\(error)".hasPrefix("HERALD_ASN \"23456\"")
        }
    }

    @Test func shutdownAndRetention() throws {
        let config = try ServeConfiguration.resolve(flags: .init(shutdown: "withdraw"), environment: ["HERALD_HISTORY_DAYS": "7", "HERALD_HISTORY_ROWS": "500"])
        #expect(config.shutdown == .withdraw)
        #expect(config.retention == HistoryRetention(maxAgeDays: 7, maxRows: 500))
        #expect(try ServeConfiguration.resolve(flags: .init(), environment: [:]).retention == .default)
    }

    @Test func asdotNotation() throws {
        #expect(try ServeConfiguration.parseASN("1.10") == 65546)
        #expect(try ServeConfiguration.parseASN("65535.65535") == .max)
        #expect(try ServeConfiguration.parseASN("64512") == 64512)
    }
}

@Suite struct LogFormatTests {
    @Test func logfmtLine() {
        let line = StructuredLogHandler.format(.logfmt, timestamp: "2026-11-26T00:00:00.000Z", level: .info,
                                               message: "session established", metadata: ["peer": "r1", "note": "a \"b\"=c", "empty": ""])
        #expect(line == #"ts=2026-11-26T00:00:00.000Z level=info msg="session established" empty="" note="a \"b\"=c" peer=r1"#)
    }

    @Test func jsonLineIsValidJSON() throws {
        let line = StructuredLogHandler.format(.json, timestamp: "t", level: .warning, message: "line\nbreak \u{1}",
                                               metadata: ["n": .stringConvertible(5), "list": .array(["a", "b"]), "msg": "shadowed"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["msg"] as? String == "line\nbreak \u{1}")
        #expect(object["level"] as? String == "warning")
        #expect(object["n"] as? String == "5")
        #expect(object["list"] as? [String] == ["a", "b"])
    }

    @Test func handlerWritesToItsSink() {
        let sink = LogSink.memory()
        var logger = Logger(label: "t") { label in StructuredLogHandler(label: label, level: .notice, format: .logfmt, sink: sink) }
        logger[metadataKey: "component"] = "test"
        logger.info("dropped below the level")
        logger.notice("kept", metadata: ["k": "v"])
        #expect(sink.lines.count == 1)
        #expect(sink.lines.first?.contains(#"level=notice msg=kept component=test k=v"#) == true)
    }
}

@Suite struct APITokensTests {
    @Test func readsFileAndEnvironment() throws {
        let path = NSTemporaryDirectory() + "herald-tokens-\(UUID().uuidString)"
        try "# operators\n\n  0123456789abcdef0123  \nsecond-token-long-enough\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tokens = try APITokens.load(file: path, environmentToken: "from-the-environment-1")
        #expect(tokens == ["0123456789abcdef0123", "second-token-long-enough", "from-the-environment-1"])
    }

    @Test func refusesMissingEmptyOrShort() throws {
        #expect(throws: APITokens.LoadError.self) { try APITokens.load(file: "/nonexistent/tokens", environmentToken: nil) }
        let path = NSTemporaryDirectory() + "herald-tokens-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "# nothing\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: APITokens.LoadError.self) { try APITokens.load(file: path, environmentToken: nil) }
        try "tiny-tok\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: APITokens.LoadError.self) { try APITokens.load(file: path, environmentToken: nil) }
        #expect(error?.description.contains("line 1") == true)
        #expect(error?.description.contains("tiny-tok") == false, "the token itself is never printed")
        #expect(try APITokens.load(file: nil, environmentToken: nil).isEmpty)
    }
}

