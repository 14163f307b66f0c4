import Foundation
import IP

// What `herald apply` does, worked out before it sends anything: each declared object compared
// with Herald's, both brought to the state a write would leave (defaults filled in, read-only and
// server-chosen fields set aside, addresses in one spelling, lists as sets), so that a file that
// matches Herald plans nothing and a second apply makes no request that writes.

/// The label apply puts on every object it creates or changes; `--prune` deletes only objects
/// carrying it, and `export --managed-only` writes only those. The key is the one
/// contrib/k8s-sync marks its allocations with (value `k8s-sync`): an object has one manager,
/// and apply neither takes over nor exports another's.
enum ManagedLabel {
    static let key = "herald.io/managed-by"
    static let value = "apply"

    /// The tool that manages `object`, if one does.
    static func manager(_ object: [String: Any]) -> String? {
        (object["labels"] as? [String: Any])?[key] as? String
    }

    static func isManaged(_ object: [String: Any]) -> Bool { manager(object) == value }

    /// Managed by something other than apply (the Kubernetes sync).
    static func isOthers(_ object: [String: Any]) -> Bool { manager(object).map { $0 != value } ?? false }
}

/// One change of the plan: what is printed and what is sent.
struct PlannedChange {
    enum Action: String { case create, change, delete }

    let action: Action
    let kind: ConfigKind
    let name: String
    /// Field by field, for a change: `hold_time: 90 → 30`.
    let differences: [String]
    /// A change that puts the managed label on an object apply did not manage.
    let adopts: Bool
    let method: String
    let path: String
    let body: [String: Any]?

    /// `+ pool lb`, `~ peer bird (hold_time: 90 → 30)`, `- allocation default.web`.
    var line: String {
        let sign = switch action { case .create: "+"; case .change: "~"; case .delete: "-" }
        var notes = differences
        if adopts { notes.insert("adopted: now managed by apply", at: 0) }
        return "\(sign) \(kind.singular) \(name)" + (notes.isEmpty ? "" : " (\(notes.joined(separator: "; ")))")
    }
}

struct ConfigPlan {
    var changes: [PlannedChange] = []
    /// Objects apply manages that the file no longer declares, left alone without `--prune`.
    var undeclared: [(kind: ConfigKind, name: String)] = []
    /// Declared objects that another tool manages: apply refuses to run while there are any.
    var conflicts: [(kind: ConfigKind, name: String, manager: String)] = []

    func count(_ action: PlannedChange.Action) -> Int { changes.filter { $0.action == action }.count }

    /// `3 to create, 1 to change, 0 to delete`, or `no changes`.
    var summary: String {
        changes.isEmpty ? "no changes" : "\(count(.create)) to create, \(count(.change)) to change, \(count(.delete)) to delete"
    }

    /// Works out the changes that make `current` (each kind's objects as the API lists them)
    /// match `document`. A declared peer password is sent when the peer is created or has none,
    /// and to a peer that has one only with `sendPasswords` (Herald never shows it, so apply
    /// cannot tell whether it differs).
    static func make(_ document: ConfigDocument, current: [ConfigKind: [[String: Any]]], prune: Bool, sendPasswords: Bool = false) -> ConfigPlan {
        var plan = ConfigPlan()
        for kind in ConfigKind.allCases {
            let existing = Dictionary((current[kind] ?? []).map { ($0["name"] as? String ?? "", $0) }) { first, _ in first }
            for (name, declared) in (document.objects[kind] ?? [:]).sorted(by: { $0.key < $1.key }) {
                if let current = existing[name], ManagedLabel.isOthers(current) {
                    plan.conflicts.append((kind, name, ManagedLabel.manager(current) ?? ""))
                    continue
                }
                if let change = Self.change(kind, name, declared, existing[name], sendPasswords: sendPasswords) { plan.changes.append(change) }
            }
        }
        for kind in ConfigKind.allCases.reversed() {
            let declared = document.objects[kind] ?? [:]
            let stale = (current[kind] ?? []).filter { ManagedLabel.isManaged($0) }.compactMap { $0["name"] as? String }
                .filter { declared[$0] == nil }.sorted()
            for name in stale {
                if prune {
                    plan.changes.append(PlannedChange(action: .delete, kind: kind, name: name, differences: [], adopts: false,
                                                      method: "DELETE", path: "\(kind.path)/\(escape(name))", body: nil))
                } else {
                    plan.undeclared.append((kind, name))
                }
            }
        }
        return plan
    }

    // MARK: - One object

    private static func change(_ kind: ConfigKind, _ name: String, _ declared: [String: Any], _ current: [String: Any]?, sendPasswords: Bool) -> PlannedChange? {
        var body = declared
        body["name"] = nil
        let password = body.removeValue(forKey: "password") as? String
        body["password_file"] = nil
        var labels = body["labels"] as? [String: Any] ?? [:]
        labels[ManagedLabel.key] = ManagedLabel.value
        body["labels"] = labels
        let path = "\(kind.path)/\(escape(name))"

        guard let current else {
            if kind == .peers {
                body["name"] = name
                if let password, !password.isEmpty { body["password"] = password }
                return PlannedChange(action: .create, kind: kind, name: name, differences: [], adopts: false, method: "POST", path: kind.path, body: body)
            }
            return PlannedChange(action: .create, kind: kind, name: name, differences: [], adopts: false, method: "PUT", path: path, body: body)
        }

        // What apply keeps when the file leaves it out: an allocation's pool and family (sent
        // back) and addresses (which Herald keeps by itself while pool and sharing key stay:
        // sent, they would hold it to a pool being left), a peer's timers (PATCH cannot unset them).
        var compared = body
        for field in keptWhenLeftOut(kind) where body[field] == nil && !(field == "addresses" && body["address"] != nil) {
            guard let value = current[field], !(value is NSNull) else { continue }
            compared[field] = value
            if field != "addresses" { body[field] = value }
        }
        let wanted = effective(kind, compared)
        let now = effective(kind, current)
        var differences: [String] = []
        var changedFields: Set<String> = []
        for field in kind.fields.map(\.name) where field != "name" {
            for (leaf, before, after) in compare(field, now[field], wanted[field]) {
                differences.append("\(leaf): \(show(before)) → \(show(after))")
                changedFields.insert(field)
            }
        }
        let adopts = !ManagedLabel.isManaged(current)
        var passwordChange = false
        if kind == .peers, let password {
            let isSet = (current["password_set"] as? NSNumber)?.boolValue ?? (current["password_set"] as? Bool ?? false)
            if password.isEmpty && isSet {
                differences.append("password: set → removed")
                passwordChange = true
            } else if !password.isEmpty && (!isSet || sendPasswords) {
                differences.append(isSet ? "password: sent" : "password: none → set")
                passwordChange = true
            }
        }
        guard !differences.isEmpty || adopts else { return nil }

        if kind == .peers {
            // PATCH: only what differs, a cleared field as the API clears it.
            var patch: [String: Any] = [:]
            for field in changedFields.union(adopts ? ["labels"] : []) {
                // The labels as written (with the managed one, which the normal form sets apart).
                patch[field] = field == "labels" ? body["labels"] : wanted[field] ?? cleared(field)
            }
            if passwordChange { patch["password"] = password ?? "" }
            return PlannedChange(action: .change, kind: kind, name: name, differences: differences, adopts: adopts, method: "PATCH", path: path, body: patch)
        }
        return PlannedChange(action: .change, kind: kind, name: name, differences: differences, adopts: adopts, method: "PUT", path: path, body: body)
    }

    static func keptWhenLeftOut(_ kind: ConfigKind) -> [String] {
        switch kind {
        case .allocations: ["pool", "family", "addresses"]
        case .peers: ["hold_time", "keepalive_time", "connect_retry_time"]
        default: []
        }
    }

    /// The PATCH value that clears a peer field.
    private static func cleared(_ field: String) -> Any {
        switch field {
        case "ebgp_multihop", "ttl_security", "max_prefixes": 0
        case "labels": [String: Any]()
        default: ""
        }
    }

    // MARK: - Normal form

    /// Defaults the API fills in for a field left out (openapi.yaml); empty ones need none,
    /// since the normal form drops empty values.
    static func defaults(_ kind: ConfigKind) -> [String: Any] {
        switch kind {
        case .nodes: [:]
        case .pools: ["disabled": false, "fail_open": false]
        case .peers:
            ["port": 179, "passive": false, "families": ["ipv4-unicast"], "add_path_send": false, "graceful_restart": true, "enabled": true,
             "bfd": ["enabled": false, "min_tx": 300, "min_rx": 300, "multiplier": 3]]
        case .allocations: ["traffic_policy": "cluster"]
        case .routes: ["next_hops": ["self"]]
        }
    }

    /// The state a write of `object` leaves (or, for an object read from Herald, the state it
    /// has): the kind's input fields only, defaults filled in, nested objects over their
    /// defaults, nulls, empty values and zeros that mean "none" dropped, addresses in their
    /// canonical spelling, lists sorted.
    static func effective(_ kind: ConfigKind, _ object: [String: Any]) -> [String: Any] {
        var state = defaults(kind)
        for field in kind.fields where !["name", "password", "password_file"].contains(field.name) {
            guard let value = object[field.name], !(value is NSNull) else { continue }
            if let given = value as? [String: Any], let base = state[field.name] as? [String: Any], case .object = field.type {
                state[field.name] = base.merging(given) { $1 }
            } else {
                state[field.name] = value
            }
        }
        if kind == .allocations {
            // `address: A` is `addresses: [A]`.
            if let address = state.removeValue(forKey: "address") as? String, state["addresses"] == nil { state["addresses"] = [address] }
        }
        if kind == .nodes, var check = state["health_check"] as? [String: Any] {
            check = ["interval": 2000, "timeout": 1000, "rise": 2, "fall": 3].merging(check) { $1 }
            if check["kind"] as? String == "http" && check["path"] == nil { check["path"] = "/" }
            state["health_check"] = check
        }
        if kind == .peers {
            for field in ["ebgp_multihop", "ttl_security", "max_prefixes"] where integer(state[field]) == 0 { state[field] = nil }
        }
        var normal: [String: Any] = [:]
        for field in kind.fields {
            if let value = state[field.name], let kept = normalised(value, field.type, field: field.name) { normal[field.name] = kept }
        }
        return normal
    }

    private static func normalised(_ value: Any, _ type: FieldType, field: String) -> Any? {
        switch value {
        case is NSNull: return nil
        case let text as String:
            if text.isEmpty { return nil }
            return ["description", "name", "pool", "sharing_key"].contains(field) ? text : canonical(text)
        case let items as [Any]:
            let texts = items.map { $0 as? String ?? "\($0)" }.map(canonical).sorted()
            return texts.isEmpty ? nil : texts
        case let map as [String: Any]:
            if case .object(let fields) = type {
                var inner: [String: Any] = [:]
                for field in fields {
                    if let value = map[field.name], let kept = normalised(value, field.type, field: field.name) { inner[field.name] = kept }
                }
                return inner.isEmpty ? nil : inner
            }
            // Labels and selectors; the managed label is compared apart.
            let labels = map.filter { $0.key != ManagedLabel.key || field != "labels" }
            return labels.isEmpty ? nil : labels
        default:
            return value
        }
    }

    /// An address, prefix or range in the spelling Herald answers with; anything else as it is.
    static func canonical(_ text: String) -> String {
        if text.contains("/"), let prefix = try? IPPrefix(parsing: text) { return prefix.description }
        if text.contains("-"), let range = try? IPRange(parsing: text) { return range.description }
        if let address = try? IPAddress(parsing: text) { return address.description }
        return text
    }

    // MARK: - Differences

    /// The leaves of `field` that differ: an object's fields one by one (`bfd.min_tx`), any
    /// other value whole.
    private static func compare(_ field: String, _ before: Any?, _ after: Any?) -> [(String, Any?, Any?)] {
        if let old = before as? [String: Any], let new = after as? [String: Any], field != "labels" && !field.hasSuffix("selector") {
            return Set(old.keys).union(new.keys).sorted().flatMap { compare("\(field).\($0)", old[$0], new[$0]) }
        }
        if before == nil && after == nil { return [] }
        if let before, let after, json(before) == json(after) { return [] }
        return [(field, before, after)]
    }

    /// A whole number from Swift or from JSONSerialization (NSNumber).
    static func integer(_ value: Any?) -> Int? {
        if let number = value as? NSNumber { return number.intValue }
        return value as? Int
    }

    /// A value as canonical JSON text, for comparing: keys sorted, Swift's and Foundation's
    /// numbers and booleans alike.
    static func json(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]) else {
            return "\(value)"
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A value in a plan line: `-` for none, lists in brackets, labels as `k=v`.
    static func show(_ value: Any?) -> String {
        switch value {
        case nil: "-"
        case let items as [Any]: "[" + items.map { show($0) }.joined(separator: ", ") + "]"
        case let map as [String: Any]: "{" + map.sorted { $0.key < $1.key }.map { "\($0.key)=\(show($0.value))" }.joined(separator: ", ") + "}"
        case let text as String: text.contains(" ") || text.isEmpty ? "\"\(text)\"" : text
        case let value?: ConfigYAML.scalar(value)
        }
    }

    // MARK: - Export

    /// An object read from Herald in the apply file's shape: its input fields only, without the
    /// values a write would give anyway (defaults, empties), the managed label or the password.
    static func exported(_ kind: ConfigKind, _ object: [String: Any]) -> [String: Any] {
        let normal = effective(kind, object)
        let base = effective(kind, [:])
        var out: [String: Any] = ["name": object["name"] as? String ?? ""]
        for field in kind.fields where field.name != "name" {
            guard var value = normal[field.name] else { continue }
            if var map = value as? [String: Any], let fallback = base[field.name] as? [String: Any] {
                // A nested object without the fields that hold their default (bfd).
                for (key, inner) in fallback where map[key].map(json) == json(inner) { map[key] = nil }
                if map.isEmpty { continue }
                value = map
            } else if let fallback = base[field.name], json(fallback) == json(value) {
                continue
            }
            if kind == .nodes && field.name == "health_check", var check = value as? [String: Any] {
                for (key, fallback) in ["interval": 2000, "timeout": 1000, "rise": 2, "fall": 3] where integer(check[key]) == fallback {
                    check[key] = nil
                }
                if check["kind"] as? String == "http" && check["path"] as? String == "/" { check["path"] = nil }
                value = check
            }
            out[field.name] = value
        }
        if var labels = out["labels"] as? [String: Any] {
            labels[ManagedLabel.key] = nil
            out["labels"] = labels.isEmpty ? nil : labels
        }
        // Its addresses tell an allocation's family.
        if kind == .allocations && out["addresses"] != nil { out["family"] = nil }
        return out
    }
}
