import ArgumentParser
import Foundation

/// The JSON body of a create or change: only the fields whose options were given, so that an
/// option left out changes nothing. A peer takes it as a PATCH; a resource the API only
/// replaces whole (PUT) gets it laid over its current state (`APIClient.change`).
struct GivenFields {
    private(set) var json: [String: Any] = [:]
    /// Nested objects given field by field (`announce`, `health_check`, `bfd`): merged into the
    /// current object rather than replacing it.
    private var merged: Set<String> = []

    /// Sets `field` (`"announce.med"` for a field of a nested object) when `value` is given;
    /// `NSNull()` removes it.
    mutating func set(_ field: String, _ value: Any?) {
        guard let value else { return }
        let path = field.split(separator: ".", maxSplits: 1).map(String.init)
        if path.count == 2 {
            merged.insert(path[0])
            var inner = json[path[0]] as? [String: Any] ?? [:]
            inner[path[1]] = value
            json[path[0]] = inner
        } else {
            json[field] = value
        }
    }

    /// A repeatable option whose values may also be comma-separated; given when not empty.
    mutating func set(_ field: String, list values: [String]) {
        let items = values.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
        if !items.isEmpty { set(field, items) }
    }

    /// Repeatable `key=value` options (labels, selectors) as one object, which replaces the
    /// current one; given when not empty.
    mutating func set(_ field: String, pairs: [KeyValue]) {
        if !pairs.isEmpty { set(field, Dictionary(pairs.map { ($0.key, $0.value) }) { _, last in last }) }
    }

    /// The given fields laid over `current` (a GET body; empty for a resource that does not
    /// exist yet), of which only the `kept` fields are carried over: those its PUT accepts.
    func over(_ current: [String: Any], keeping kept: [String]) -> [String: Any] {
        var body = current.filter { kept.contains($0.key) }
        for (field, value) in json {
            if merged.contains(field), let given = value as? [String: Any] {
                body[field] = (body[field] as? [String: Any] ?? [:]).merging(given) { $1 }
            } else {
                body[field] = value
            }
        }
        return body.compactMapValues(Self.withoutNulls)
    }

    /// A value without its nulls (the API's `null` for "not set", or a field given as removed):
    /// nil for a null itself.
    private static func withoutNulls(_ value: Any) -> Any? {
        switch value {
        case is NSNull: nil
        case let object as [String: Any]: object.compactMapValues(withoutNulls)
        default: value
        }
    }
}

/// A `key=value` option: a label or a selector.
struct KeyValue: ExpressibleByArgument {
    let key: String
    let value: String

    init?(argument: String) {
        let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else { return nil }
        key = String(parts[0])
        value = String(parts[1])
    }
}

/// `--enabled` or `--disabled`; neither keeps what is set.
enum Enablement: String, EnumerableFlag {
    case enabled, disabled
}

extension APIClient {
    /// Changes the given fields of a resource the API replaces whole (PUT): reads it, lays the
    /// given fields over it and writes it back, so that what no option names keeps its value. A
    /// resource not there yet is created from the given fields alone.
    func change(_ path: String, _ given: GivenFields, keeping kept: [String]) throws -> [String: Any] {
        let response = try send("GET", path)
        let current: [String: Any]
        switch response.status {
        case 200: current = response.json() as? [String: Any] ?? [:]
        case 404: current = [:]
        default: throw Self.failure(response)
        }
        return try call("PUT", path, json: given.over(current, keeping: kept)) as? [String: Any] ?? [:]
    }
}
