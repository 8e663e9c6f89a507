/// Large arrays handed back by their last user for the next call that needs one of the same size.
///
/// Why: by default glibc serves every block above its mmap threshold with a fresh mapping and
/// unmaps it on `free`, so a routine that allocates such a block per call page-faults all of it
/// again on every call (the layer networks' Jacobian rows in the backward route: 68 MB per
/// quadrature node and step on `fmnist-cnn`, Docs/benchmarks.md). The `pathkernel` executable's
/// `AllocatorPolicy` now keeps such blocks in the heap itself (`M_MMAP_MAX` 0), which covers
/// most of this; the pool still covers a process that does not apply the policy (the tests, a
/// library user) and blocks above 64 MiB freed on a worker thread, which glibc maps anyway. A
/// pool kept by the caller across calls lets the next call write into the pages the previous one
/// touched.
///
/// What does *not* hold: a taken array's contents are whatever its last user left (the taker must
/// write every element it reads); an array still referenced elsewhere when it is written is copied
/// first (Swift's copy on write: correct, only the saving is lost). Not thread-safe: one owner.
public final class ArrayPool<Element> {
    private var free: [[Element]] = []
    /// The most arrays kept; giving back one more drops the oldest.
    public let limit: Int

    public init(limit: Int) {
        precondition(limit >= 0, "an array pool keeps a non-negative number of arrays, got \(limit)")
        self.limit = limit
    }

    /// An array given back earlier with exactly `count` elements (the most recently given of them),
    /// removed from the pool; nil when there is none.
    public func take(count: Int) -> [Element]? {
        guard let i = free.lastIndex(where: { $0.count == count }) else { return nil }
        return free.remove(at: i)
    }

    /// Keeps `array` for a later `take` (dropping the oldest kept array beyond `limit`).
    public func give(_ array: [Element]) {
        guard limit > 0 else { return }
        if free.count == limit { free.removeFirst() }
        free.append(array)
    }

    /// Arrays kept now.
    public var count: Int { free.count }
}

extension Array where Element: BLASScalar {
    /// `count` scalars whose values are unspecified, for a caller that writes every one of them
    /// before reading it: the array moved out of `reusing` (left nil) when it has exactly `count`
    /// elements (its old values stay until overwritten), else a new array without the zero-fill
    /// of `init(repeating:count:)` (a fresh mapping's first touch is then the caller's own write).
    /// `inout` so that the array is handed over without a second reference: a copy kept by the
    /// caller would make the first write copy all of it. In debug builds every element is set to
    /// NaN first, so that an element the caller misses shows up in tests.
    @inlinable
    public static func forOverwriting(count: Int, reusing: inout [Element]?) -> [Element] {
        precondition(count >= 0, "negative array size \(count)")
        var array = reusing.take() ?? []
        if array.count != count {
            // Uninitialized memory of a trivial type; every element is written before it is read.
            array = [Element](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        }
        if _isDebugAssertConfiguration() {
            array.withUnsafeMutableBufferPointer { p in
                for i in p.indices { p[i] = .nan }
            }
        }
        return array
    }
}
