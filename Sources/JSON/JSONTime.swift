import Foundation

/// The one timestamp format of JSON bodies: RFC 3339, UTC, with milliseconds
/// (`2026-11-26T22:00:00.000Z`), kept as integer milliseconds since 1970.
public enum JSONTime {
    /// By hand (days-to-civil-date, H. Hinnant's algorithm): every allocation and peer body has
    /// timestamps, and building an ISO8601DateFormatter per call showed up in profiles.
    public static func format(milliseconds: Int64) -> String {
        let (seconds, millis) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        let adjustedSeconds = millis < 0 ? seconds - 1 : seconds
        let ms = millis < 0 ? millis + 1000 : millis
        let (days, secondOfDay) = { () -> (Int64, Int64) in
            let (d, r) = adjustedSeconds.quotientAndRemainder(dividingBy: 86_400)
            return r < 0 ? (d - 1, r + 86_400) : (d, r)
        }()
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(ms, 3))Z"
    }

    /// Milliseconds since 1970 for an RFC 3339 time, with or without fractional seconds
    /// (`2026-11-26T22:00:00Z`, `2026-11-26T23:00:00.250+01:00`); nil for anything else.
    public static func parse(_ text: String) -> Int64? {
        guard let date = formatter().date(from: text) ?? plainFormatter().date(from: text) else { return nil }
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    private static func formatter() -> ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }

    private static func plainFormatter() -> ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter
    }
}
