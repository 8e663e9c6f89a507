import CBLAS

/// The process's heap policy for numeric work, set once at program start.
///
/// An analysis allocates and frees the same large scratch matrices over and over (features,
/// Grams, GEMM outputs of 1–30 MB). glibc's defaults serve such blocks by `mmap` and return them
/// to the system on `free`, so every call page-faults its buffers afresh: on W1 (`bench --workload
/// W1`) 134,000 page faults and 25–30% of the kernel's time. Raising the mmap threshold to its
/// maximum (32 MiB on 64-bit glibc) and never trimming the heap keeps freed blocks for reuse:
/// 19,000 page faults on the same run. Peak memory is unchanged (the freed blocks were
/// the peak); the resident size no longer shrinks after a peak. Blocks above 32 MiB (an analysis's
/// query-side R) are still mapped and unmapped on their own.
public enum AllocatorPolicy {
    /// glibc's largest mmap threshold on 64-bit systems (`DEFAULT_MMAP_THRESHOLD_MAX`).
    public static let mmapThreshold: Int32 = 32 << 20

    /// Applies the policy (idempotent; a no-op off glibc). Returns whether glibc accepted both
    /// settings. Call it first thing in `main`, before any thread starts: glibc's `mallopt` is not
    /// safe while other threads allocate (a test that called it amid the parallel test run crashed
    /// the runner), so no test calls it.
    @discardableResult
    public static func apply() -> Bool {
        pathkernel_keep_freed_blocks(mmapThreshold) == 1
    }
}
