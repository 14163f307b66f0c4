/// The limits BGP puts on the speaker's and the peers' settings, with what to tell the operator.
enum BGPLimits {
    /// RFC 6793: 23456 is AS_TRANS, never a real ASN.
    static func isValidASN(_ asn: Int64) -> Bool { (1...4_294_967_295).contains(asn) && asn != 23456 }
    static let asnRule = "must be 1–4294967295 and not 23456 (AS_TRANS)"
    /// RFC 4271 §4.2: a hold time is 0 (no keepalives) or at least 3 seconds.
    static func isValidHoldTime(_ seconds: Int) -> Bool { seconds == 0 || (3...65535).contains(seconds) }
    static let holdTimeRule = "must be 0 or 3–65535 seconds"
    static let keepaliveTimes = 0...21845
    static let keepaliveRule = "must be 0–21845 seconds"

    /// RFC 4271 §4.4 and §10: KEEPALIVEs at most a third of the hold time apart (0: a third of
    /// the hold time the session negotiates). The one rule for the speaker and every peer; a
    /// session also caps it at a third of the hold time the peer agreed to.
    static func keepaliveProblem(_ keepalive: Int, holdTime: Int?) -> String? {
        guard keepaliveTimes.contains(keepalive) else { return keepaliveRule }
        if let hold = holdTime, hold > 0, keepalive > hold / 3 { return "must be at most a third of hold_time (\(hold / 3) s)" }
        return nil
    }
    static let connectRetryTimes = 1...65535
    static let connectRetryRule = "must be 1–65535 seconds"
}

