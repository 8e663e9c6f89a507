extension Array where Element: BLASScalar {
    /// `count` scalars whose values are unspecified, for a caller that writes every one of them
    /// before reading it: the array moved out of `reusing` (left nil) when it has exactly `count`
    /// elements (its old values stay until overwritten), else a new array without the zero-fill
    /// of `init(repeating:count:)` (a fresh mapping's first touch is then the caller's own write).
    /// `inout` so that the array is handed over without a second reference: a copy kept by the
    /// caller would make the first write copy all of it. Where `poisonsUninitialized` (debug builds,
    /// and the release build `./dev test` runs the tests in, compiled with `-D PATHKERNEL_POISON`)
    /// every element is set to NaN first, so that an element the caller misses shows up in tests.
    @inlinable
    public static func forOverwriting(count: Int, reusing: inout [Element]?) -> [Element] {
        precondition(count >= 0, "negative array size \(count)")
        var array = reusing.take() ?? []
        if array.count != count {
            // Uninitialized memory of a trivial type; every element is written before it is read.
            array = [Element](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        }
        if poisonsUninitialized {
            array.withUnsafeMutableBufferPointer { p in
                for i in p.indices { p[i] = .nan }
            }
        }
        return array
    }
}

/// Whether `forOverwriting` fills its arrays with NaN before handing them over: in debug builds
/// and in builds compiled with `-D PATHKERNEL_POISON` (`./dev test` runs the tests and the
/// release-binary checks in such a release build), never in a plain release build.
@inlinable
public var poisonsUninitialized: Bool {
    #if DEBUG || PATHKERNEL_POISON
    return true
    #else
    return false
    #endif
}
