import CBLAS

/// The process's heap policy for numeric work, set once at program start.
///
/// An analysis allocates and frees the same large scratch matrices over and over (features,
/// Jacobians, Grams, GEMM outputs of 1 MB to several hundred MB), and training allocates its
/// weight-sized vectors at every step. glibc's defaults serve blocks above its mmap threshold by
/// `mmap` and return them to the system on `free`, so every call page-faults its buffers afresh.
/// The policy keeps freed blocks of every size for reuse:
///
/// - the mmap threshold at its maximum (32 MiB on 64-bit glibc) and no trimming of the heap
///   (W1, `bench --workload W1`: 134,000 page faults and 25–30 % of the kernel's time before,
///   19,000 page faults after);
/// - no `mmap` for blocks above the threshold either (`M_MMAP_MAX` 0): they come from the heap
///   and stay there when freed. Before this, every block above 32 MiB was still mapped and
///   unmapped on its own: a layer network's Jacobians (`fmnist-cnn`, 20 steps, q = 4: 3.1 M page
///   faults and 7.7 s of system time in 35 CPU s; after, 0.12 M and 0.3 s) and training's weight
///   vectors at widths of 2,048 and more (a 54 MB vector: 79,000 page faults per step; after,
///   none). `Tools/checks/heap_policy.py` checks it on the release binary.
///
/// Peak memory is about the same (the freed blocks were the peak; fragmentation measured +1 % on
/// `fmnist-cnn` and +11 % on a width sweep); the resident size no longer shrinks after a peak.
/// A worker thread's block above 64 MiB (the size of glibc's per-thread arena heaps) is still
/// mapped and unmapped on its own (glibc falls back to `mmap` there; a C check: 100 MB in a
/// worker faulted all 25,600 pages on every round, 40 MB only on the first, 100 MB on the main
/// thread only on the first): allocate large scratch on the calling thread.
public enum AllocatorPolicy {
    /// glibc's largest mmap threshold on 64-bit systems (`DEFAULT_MMAP_THRESHOLD_MAX`).
    public static let mmapThreshold: Int32 = 32 << 20

    /// Applies the policy (idempotent; a no-op off glibc). Returns whether glibc accepted every
    /// setting. Call it first thing in `main`, before any thread starts: glibc's `mallopt` is not
    /// safe while other threads allocate (a test that called it amid the parallel test run crashed
    /// the runner), so no test calls it.
    @discardableResult
    public static func apply() -> Bool {
        pathkernel_keep_freed_blocks(mmapThreshold) == 1
    }
}
