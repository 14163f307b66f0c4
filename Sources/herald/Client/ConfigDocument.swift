import Foundation
import Yams

// The file `herald apply` reads and `herald export` writes: one YAML (or JSON) document whose
// top-level lists hold objects shaped like the API's PUT and POST bodies, name included
// (docs/apply.md). Reading is driven by a schema of those bodies, so a value is taken as the type
// its field has (a label value `50` or a community `65000:50` stays a string, where YAML 1.1
// would read a number), and an unknown field or a wrong type is refused before anything is sent,
// naming the line.

// MARK: - Schema

/// The type of a field in an apply file.
indirect enum FieldType: Equatable, Sendable {
    case string
    case int
    case bool
    case strings
    /// Labels and selectors: string keys, string values.
    case labels
    case object([Field])
}

/// One field of an object, in the order `export` writes them.
struct Field: Equatable, Sendable {
    let name: String
    let type: FieldType

    init(_ name: String, _ type: FieldType) {
        self.name = name
        self.type = type
    }
}

/// The kinds of object an apply file declares, in the order apply creates and changes them
/// (what others refer to first); prune deletes in the reverse order.
enum ConfigKind: String, CaseIterable, Sendable {
    case nodes, pools, peers, allocations, routes

    /// The word the plan's lines use: `+ pool lb`.
    var singular: String {
        switch self {
        case .nodes: "node"
        case .pools: "pool"
        case .peers: "peer"
        case .allocations: "allocation"
        case .routes: "route"
        }
    }

    /// The API collection: `PATH/{name}` is one object (`/v1/routes/{name}` a static route).
    var path: String { "/v1/\(rawValue)" }

    /// The paged list of the kind's objects (`GET /v1/routes` is what Herald originates; the
    /// static routes are `/v1/routes:static`).
    var listPath: String { self == .routes ? "/v1/routes:static" : path }

    static let announce: [Field] = [
        Field("communities", .strings), Field("large_communities", .strings), Field("local_pref", .int), Field("med", .int),
        Field("as_path_prepend", .int), Field("peer_selector", .labels), Field("aggregation_length", .int),
        Field("aggregation_length_v6", .int),
    ]

    /// The fields of the kind's API input (openapi.yaml: NodeInput, PoolInput, PeerInput,
    /// AllocationInput, StaticRouteInput), `name` first; `password_file` is apply's own.
    var fields: [Field] {
        switch self {
        case .nodes:
            [Field("name", .string), Field("addresses", .strings), Field("labels", .labels), Field("health_check", .object([
                Field("kind", .string), Field("port", .int), Field("path", .string), Field("address", .string), Field("interval", .int),
                Field("timeout", .int), Field("rise", .int), Field("fall", .int),
            ]))]
        case .pools:
            [Field("name", .string), Field("blocks", .strings), Field("service_selector", .labels), Field("node_selector", .labels),
             Field("allow_first_last_ips", .bool), Field("disabled", .bool), Field("fail_open", .bool), Field("announce", .object(Self.announce)),
             Field("description", .string), Field("labels", .labels)]
        case .peers:
            [Field("name", .string), Field("address", .string), Field("asn", .int), Field("port", .int), Field("local_address", .string),
             Field("other_family_next_hop", .string), Field("password", .string), Field("password_file", .string),
             Field("ebgp_multihop", .int), Field("ttl_security", .int), Field("hold_time", .int), Field("keepalive_time", .int),
             Field("connect_retry_time", .int), Field("passive", .bool), Field("families", .strings), Field("add_path_send", .bool),
             Field("graceful_restart", .bool), Field("max_prefixes", .int), Field("enabled", .bool), Field("description", .string),
             Field("labels", .labels), Field("bfd", .object([
                Field("enabled", .bool), Field("min_tx", .int), Field("min_rx", .int), Field("multiplier", .int),
             ]))]
        case .allocations:
            [Field("name", .string), Field("pool", .string), Field("address", .string), Field("addresses", .strings), Field("family", .string),
             Field("sharing_key", .string), Field("traffic_policy", .string), Field("nodes", .strings), Field("labels", .labels)]
        case .routes:
            [Field("name", .string), Field("prefix", .string), Field("next_hops", .strings), Field("announce", .object(Self.announce)),
             Field("labels", .labels)]
        }
    }

    /// What the API needs to create one.
    var required: [String] {
        switch self {
        case .nodes: ["addresses"]
        case .pools: ["blocks"]
        case .peers: ["address", "asn"]
        case .allocations: []
        case .routes: ["prefix"]
        }
    }
}

// MARK: - The document

/// A parsed apply file: each kind's objects by name, as JSON values (`[String: Any]`) in the
/// shape of the API's bodies, with nulls left out.
struct ConfigDocument {
    var objects: [ConfigKind: [String: [String: Any]]] = [:]

    /// Every key a document may have at its top.
    static let topLevelKeys = ["version"] + ConfigKind.allCases.map(\.rawValue)

    /// A problem with the file, with the line it is on when known.
    struct Problem: Error, CustomStringConvertible {
        let line: Int?
        let message: String

        var description: String { line.map { "line \($0): \(message)" } ?? message }
    }

    /// The names `herald` takes: those of the API's Name schema.
    static func validName(_ name: String) -> Bool {
        name.range(of: "^[a-z0-9][a-z0-9._-]{0,62}$", options: .regularExpression) != nil
    }

    /// Parses YAML, or JSON (YAML's flow style reads it), refusing unknown keys and fields, wrong
    /// types, objects without a name and names given twice.
    static func parse(_ text: String) throws -> ConfigDocument {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw Problem(line: nil, message: "not YAML or JSON: \(error)")
        }
        var document = ConfigDocument()
        guard let root else { return document }  // an empty file declares nothing
        guard case .mapping(let top) = root else {
            throw Problem(line: root.mark?.line, message: "expected a mapping with the keys \(topLevelKeys.joined(separator: ", "))")
        }
        for (keyNode, value) in top {
            let key = written(keyNode)
            if key == "version" {
                guard case .scalar(let scalar) = value, scalar.string == "1", scalar.style == .plain else {
                    throw Problem(line: value.mark?.line, message: "version: this Herald reads version 1")
                }
                continue
            }
            guard let kind = ConfigKind(rawValue: key) else {
                throw Problem(line: keyNode.mark?.line,
                              message: "unknown key \"\(key)\" (a document has \(topLevelKeys.joined(separator: ", ")))")
            }
            if isNull(value) { continue }
            guard case .sequence(let items) = value else {
                throw Problem(line: value.mark?.line, message: "\(key): expected a list of \(kind.rawValue)")
            }
            var byName: [String: [String: Any]] = [:]
            for (index, item) in items.enumerated() {
                let path = "\(key)[\(index)]"
                guard case .mapping = item else { throw Problem(line: item.mark?.line, message: "\(path): expected an object") }
                let object = try convert(item, .object(kind.fields), path: path) as? [String: Any] ?? [:]
                guard let name = object["name"] as? String else {
                    throw Problem(line: item.mark?.line, message: "\(path): every \(kind.singular) needs a name")
                }
                guard validName(name) else {
                    throw Problem(line: item["name"]?.mark?.line,
                                  message: "\(path).name: \"\(name)\" is not a name (1–63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit)")
                }
                guard byName[name] == nil else {
                    throw Problem(line: item.mark?.line, message: "\(path): \(kind.singular) \(name) is declared twice")
                }
                for field in kind.required where object[field] == nil {
                    throw Problem(line: item.mark?.line, message: "\(path): \(kind.singular) \(name) needs \(field)")
                }
                if object["password"] != nil && object["password_file"] != nil {
                    throw Problem(line: item.mark?.line, message: "\(path): give password or password_file, not both")
                }
                if object["address"] != nil && object["addresses"] != nil {
                    throw Problem(line: item.mark?.line, message: "\(path): give address or addresses, not both")
                }
                byName[name] = object
            }
            document.objects[kind] = byName
        }
        return document
    }

    /// A scalar's text as written (a mapping key, say), "" for anything else.
    private static func written(_ node: Node) -> String {
        if case .scalar(let scalar) = node { return scalar.string }
        return ""
    }

    private static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// `node` as the JSON value `type` asks for; nil for a null.
    private static func convert(_ node: Node, _ type: FieldType, path: String) throws -> Any? {
        if isNull(node) { return nil }
        func refuse(_ expected: String) -> Problem {
            Problem(line: node.mark?.line, message: "\(path): expected \(expected)")
        }
        switch type {
        case .string:
            // Any scalar, as written: `65000:50`, `yes` and `0755` stay strings.
            guard case .scalar(let scalar) = node else { throw refuse("a string") }
            return scalar.string
        case .int:
            guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) else { throw refuse("a whole number") }
            return value
        case .bool:
            guard case .scalar(let scalar) = node, scalar.style == .plain else { throw refuse("true or false") }
            switch scalar.string {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            default: throw refuse("true or false")
            }
        case .strings:
            guard case .sequence(let items) = node else { throw refuse("a list of strings") }
            return try items.enumerated().map { index, item in
                guard case .scalar(let scalar) = item, !isNull(item) else {
                    throw Problem(line: item.mark?.line, message: "\(path)[\(index)]: expected a string")
                }
                return scalar.string
            }
        case .labels:
            guard case .mapping(let pairs) = node else { throw refuse("a mapping of strings to strings") }
            var labels: [String: String] = [:]
            for (key, value) in pairs {
                guard case .scalar(let keyScalar) = key, case .scalar(let valueScalar) = value else {
                    throw Problem(line: key.mark?.line, message: "\(path): expected string keys and values")
                }
                // `key:` is the empty value; `key: null` is refused rather than read as "null".
                if isNull(value) && valueScalar.string != "" {
                    throw Problem(line: value.mark?.line, message: "\(path).\(keyScalar.string): expected a string (quote it)")
                }
                labels[keyScalar.string] = valueScalar.string
            }
            return labels
        case .object(let fields):
            guard case .mapping(let pairs) = node else { throw refuse("an object") }
            var object: [String: Any] = [:]
            for (key, value) in pairs {
                let name = written(key)
                guard let field = fields.first(where: { $0.name == name }) else {
                    throw Problem(line: key.mark?.line,
                                  message: "\(path): unknown field \"\(name)\" (expected \(fields.map(\.name).joined(separator: ", ")))")
                }
                if object[name] != nil { throw Problem(line: key.mark?.line, message: "\(path).\(name) is given twice") }
                object[name] = try convert(value, field.type, path: "\(path).\(name)")
            }
            return object
        }
    }
}

// MARK: - Writing YAML

/// Writes apply files: block style, fields in schema order, every string that another YAML
/// reader could take for something else quoted, so that the output reads back the same anywhere.
enum ConfigYAML {
    /// `objects` of each kind, sorted by name, under a header comment. `comments` are written above
    /// an object (`peers` → name → "password set: not exported").
    static func document(_ objects: [ConfigKind: [[String: Any]]], comments: [ConfigKind: [String: String]] = [:], header: [String] = []) -> String {
        var lines = header.map { "# \($0)" }
        lines.append("version: 1")
        for kind in ConfigKind.allCases {
            let items = (objects[kind] ?? []).sorted { ($0["name"] as? String ?? "") < ($1["name"] as? String ?? "") }
            if items.isEmpty {
                lines.append("\(kind.rawValue): []")
                continue
            }
            lines.append("\(kind.rawValue):")
            for item in items {
                if let comment = comments[kind]?[item["name"] as? String ?? ""] { lines.append("  # \(comment)") }
                var body = object(item, kind.fields, indent: "    ")
                if !body.isEmpty { body[0] = "  - " + body[0].dropFirst(4) }
                lines += body
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func object(_ object: [String: Any], _ fields: [Field], indent: String) -> [String] {
        var lines: [String] = []
        for field in fields {
            guard let value = object[field.name], !(value is NSNull) else { continue }
            let key = indent + field.name + ":"
            switch (field.type, value) {
            case (.strings, let items as [Any]):
                if items.isEmpty { lines.append(key + " []"); continue }
                lines.append(key)
                lines += items.map { "\(indent)  - \(scalar($0))" }
            case (.labels, let map as [String: Any]):
                if map.isEmpty { lines.append(key + " {}"); continue }
                lines.append(key)
                lines += map.sorted { $0.key < $1.key }.map { "\(indent)  \(string($0.key)): \(scalar($0.value))" }
            case (.object(let inner), let map as [String: Any]):
                let body = self.object(map, inner, indent: indent + "  ")
                if body.isEmpty { lines.append(key + " {}"); continue }
                lines.append(key)
                lines += body
            default:
                lines.append("\(key) \(scalar(value))")
            }
        }
        return lines
    }

    /// A number, a boolean or a string.
    static func scalar(_ value: Any) -> String {
        switch value {
        case let text as String: string(text)
        case let bool as Bool: bool ? "true" : "false"
        case let number as NSNumber where String(cString: number.objCType) == "c": number.boolValue ? "true" : "false"
        case let number as NSNumber: number.stringValue
        default: string("\(value)")
        }
    }

    /// A string plain when every YAML reader takes it as that string, else double-quoted
    /// (JSON's escapes are YAML's).
    static func string(_ text: String) -> String {
        let plain = text.range(of: "^[A-Za-z0-9_./][A-Za-z0-9_./-]*$", options: .regularExpression) != nil
            // Numbers in YAML 1.1 or 1.2 (an IPv4 address has too many dots to be one).
            && text.range(of: "^[-+]?(\\.[0-9]+|[0-9][0-9_]*(\\.[0-9_]*)?)([eE][-+]?[0-9]+)?$", options: .regularExpression) == nil
            && text.range(of: "^[-+]?0[xXoObB][0-9a-fA-F_]+$", options: .regularExpression) == nil
            && !["y", "n", "yes", "no", "on", "off", "true", "false", "null", ".inf", ".nan"].contains(text.lowercased())
        if plain { return text }
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }
}
