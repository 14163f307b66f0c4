internal import CSQLite
internal import CSystem

extension Database {
    /// Frees the page cache this connection holds beyond what it is using (SQLite keeps up to
    /// `cache_size` of pages from the last big transaction, which a bulk load fills).
    public func releaseCache() {
        _ = sqlite3_db_release_memory(connection)
    }
}

extension Store {
    /// After a bulk change (a million routes loaded or withdrawn): drops the writer's page cache
    /// and hands the heap pages freed by the change back to the kernel. glibc only returns the
    /// top of the heap by itself, so the transient arrays of a bulk load would otherwise stay in
    /// the process's resident set for good.
    public func releaseMemoryAfterBulkChange() {
        _ = try? writer.withConnection { db in db.releaseCache() }
        Self.returnFreeHeapToKernel()
    }

    /// `malloc_trim(0)`: free pages anywhere in the heap go back to the kernel.
    public static func returnFreeHeapToKernel() {
        _ = csystem_release_free_heap()
    }
}
