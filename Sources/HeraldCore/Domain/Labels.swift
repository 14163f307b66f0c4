/// Key/value labels, as in Kubernetes: keys up to 253 characters of `[A-Za-z0-9._/-]`, values up
/// to 63 characters (code points) on one line.
public enum Labels {
    public static func validate(_ labels: [String: String], field: String, into validator: inout Validator) {
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            let keyOK = !key.isEmpty && key.utf8.count <= 253 && key.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39)
                    || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "/")
            }
            if !keyOK { validator.add("\(field).\(key)", "label keys are 1–253 characters of letters, digits, '.', '_', '-' and '/'") }
            // Characters as JSON Schema's maxLength counts them (code points), not bytes.
            if value.unicodeScalars.count > 63 || value.contains(where: { $0.isNewline }) {
                validator.add("\(field).\(key)", "label values are at most 63 characters on one line")
            }
        }
    }

    /// True when every pair of `selector` is in `labels` (an empty selector matches everything).
    public static func matches(_ selector: [String: String], _ labels: [String: String]) -> Bool {
        selector.allSatisfy { labels[$0.key] == $0.value }
    }
}
