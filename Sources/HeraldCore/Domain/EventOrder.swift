/// The order a history list is paged in (`order=asc|desc`): by id, which is commit order.
/// Oldest first stays the default, so that clients written before `desc` page as they did.
public enum EventOrder: String, Sendable {
    case asc, desc

    /// The cursor of the first page: an id before every row in this order.
    var start: Int64 { self == .asc ? 0 : .max }
    /// The SQL operator that keeps the ids after the cursor in this order (`id > cursor`).
    var after: String { self == .asc ? ">" : "<" }
    /// SQL `ORDER BY` direction.
    var direction: String { self == .asc ? "" : " DESC" }
}
