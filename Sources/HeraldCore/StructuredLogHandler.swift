public import Logging
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `ts=… level=info msg="session established" peer=r1`: easy to read and to grep.
    case logfmt
    /// One JSON object per line, for log shippers.
    case json
}

/// A swift-log handler that writes one structured line per event to standard error.
///
/// Each line is written with a single `write(2)`, so lines from different threads never
/// interleave. Metadata keys are written in sorted order, so the same event always looks the same.
public struct StructuredLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public let label: String
    public let format: LogFormat
    private let sink: LogSink

    public init(label: String, level: Logger.Level, format: LogFormat, sink: LogSink = .standardError) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let line = Self.format(format, timestamp: Self.timestamp(), level: event.level, message: "\(event.message)", metadata: merged)
        sink.write(line + "\n")
    }

    /// Formats one line (without the newline). Pure, so tests can check the exact text.
    public static func format(_ format: LogFormat, timestamp: String, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        let fields = metadata.sorted { $0.key < $1.key }
        switch format {
        case .logfmt:
            var parts = ["ts=\(timestamp)", "level=\(level.rawValue)", "msg=\(logfmtValue(message))"]
            for (key, value) in fields { parts.append("\(logfmtKey(key))=\(logfmtValue(flatten(value)))") }
            return parts.joined(separator: " ")
        case .json:
            var parts = ["\"ts\":\(jsonString(timestamp))", "\"level\":\(jsonString(level.rawValue))", "\"msg\":\(jsonString(message))"]
            for (key, value) in fields where !["ts", "level", "msg"].contains(key) {
                parts.append("\(jsonString(key)):\(jsonValue(value))")
            }
            return "{" + parts.joined(separator: ",") + "}"
        }
    }

    // MARK: - logfmt

    static func logfmtKey(_ key: String) -> String {
        String(key.map { $0 == " " || $0 == "=" || $0 == "\"" ? "_" : $0 })
    }

    /// Bare when safe; otherwise quoted with `"` and `\` escaped and control characters spelled out.
    static func logfmtValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0.value < 0x20 || $0 == "\\" }
        guard needsQuotes else { return value }
        return "\"" + escaped(value) + "\""
    }

    static func flatten(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): s
        case .stringConvertible(let s): s.description
        case .array(let values): "[" + values.map(flatten).joined(separator: ",") + "]"
        case .dictionary(let dict): "{" + dict.sorted { $0.key < $1.key }.map { "\($0.key):\(flatten($0.value))" }.joined(separator: ",") + "}"
        }
    }

    // MARK: - JSON

    static func jsonValue(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): jsonString(s)
        case .stringConvertible(let s): jsonString(s.description)
        case .array(let values): "[" + values.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let dict): "{" + dict.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonValue($0.value))" }.joined(separator: ",") + "}"
        }
    }

    static func jsonString(_ value: String) -> String { "\"" + escaped(value) + "\"" }

    /// Escapes for a double-quoted string, valid both in logfmt and in JSON (RFC 8259 §7).
    static func escaped(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// RFC 3339 UTC with milliseconds: 2026-11-26T22:48:29.123Z.
    static func timestamp() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(spec.tv_nsec / 1_000_000), 3))Z"
    }
}

/// Where log lines go: standard error, or a buffer that tests read.
public final class LogSink: Sendable {
    private let descriptor: Int32?
    private let captured = Mutex<[String]>([])

    private init(descriptor: Int32?) { self.descriptor = descriptor }

    public static let standardError = LogSink(descriptor: 2)

    /// A sink that keeps lines in memory.
    public static func memory() -> LogSink { LogSink(descriptor: nil) }

    /// The lines written to a memory sink.
    public var lines: [String] { captured.withLock { $0 } }

    func write(_ line: String) {
        guard let descriptor else {
            captured.withLock { $0.append(line) }
            return
        }
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 { if errno == EINTR { continue } else { return } }
                offset += written
            }
        }
    }
}
