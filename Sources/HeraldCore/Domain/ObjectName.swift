/// Names of peers, nodes, pools, allocations and routes: `[a-z0-9][a-z0-9._-]{0,62}`, so they are
/// safe in URLs, logs and shell scripts. Allocations by convention use `namespace.service`.
public enum ObjectName {
    public static func validate(_ name: String) -> String? {
        // Reads the UTF-8 view in place (no array per name: a bulk load checks a million).
        let bytes = name.utf8
        guard !bytes.isEmpty else { return "must not be empty" }
        guard bytes.count <= 63 else { return "must be at most 63 characters (has \(bytes.count))" }
        func alphanumeric(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        guard alphanumeric(bytes.first!) else { return "must start with a lowercase letter or digit" }
        guard bytes.allSatisfy({ alphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }) else {
            return "may contain only lowercase letters, digits, '.', '_' and '-'"
        }
        return nil
    }
}

