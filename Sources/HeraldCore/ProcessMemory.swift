internal import CSystem

/// The process's heap, as a whole.
enum ProcessMemory {
    /// `malloc_trim(0)`: free pages anywhere in the heap go back to the kernel. glibc only returns
    /// the top of the heap by itself, so after a bulk change (a million routes loaded, handed to
    /// the speaker or withdrawn) the transient arrays would stay in the resident set for good.
    static func returnFreeHeapToKernel() {
        _ = csystem_release_free_heap()
    }
}
