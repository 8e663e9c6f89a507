/// A seeded random generator that gives the same numbers on every machine and platform.
///
/// Bits: xoshiro256** (Blackman & Vigna 2018, "Scrambled linear pseudorandom number
/// generators"), its 256-bit state filled from the 64-bit seed by SplitMix64 (Steele et al.
/// 2014), exactly as the reference C code `xoshiro256starstar.c` / `splitmix64.c` do.
///
/// - `nextUInt64()`: the raw 64-bit output.
/// - `uniform()`: `(nextUInt64() >> 11) · 2⁻⁵³`, a double in [0, 1).
/// - `normal()`: Marsaglia's polar method (Marsaglia & Bray 1964): draw `u, v` uniform in
///   (−1, 1) until `0 < s = u² + v² < 1`, return `u·√(−2 ln s / s)` and keep `v·√(−2 ln s / s)`
///   for the next call. Only IEEE-754 basic operations and `sqrt` are used (correctly rounded
///   everywhere), and `ln` is `PortableRandom.log`, written with basic operations alone, so the
///   stream is bit-identical across libm implementations.
/// - `index(below:)`: Lemire's nearly-divisionless bounded integer (2019), unbiased.
/// - `shuffle(_:)`: Fisher–Yates from the last element down, using `index(below:)`.
///
/// Not cryptographic. Not thread-safe (a value type: copy it to fork a stream).
public struct PortableRandom: Sendable, Equatable {
    private var s0, s1, s2, s3: UInt64
    private var spareNormal: Double?

    public init(seed: UInt64) {
        var sm = seed
        func splitmix() -> UInt64 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(); s1 = splitmix(); s2 = splitmix(); s3 = splitmix()
        spareNormal = nil
    }

    /// An independent stream derived from this seed and a label (for example one per layer),
    /// so that adding a consumer does not shift the numbers others draw.
    public static func stream(seed: UInt64, label: UInt64) -> PortableRandom {
        PortableRandom(seed: seed ^ (label &* 0xD1B5_4A32_D192_ED03))
    }

    @inline(__always) private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func nextUInt64() -> UInt64 {
        let result = PortableRandom.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = PortableRandom.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(nextUInt64() >> 11) * 0x1.0p-53 }

    /// Uniform in [a, b).
    public mutating func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * uniform() }

    /// Standard normal, by the polar method.
    public mutating func normal() -> Double {
        if let z = spareNormal { spareNormal = nil; return z }
        while true {
            let u = 2 * uniform() - 1
            let v = 2 * uniform() - 1
            let s = u * u + v * v
            if s > 0 && s < 1 {
                let f = (-2 * PortableRandom.log(s) / s).squareRoot()
                spareNormal = v * f
                return u * f
            }
        }
    }

    /// Normal with mean `mu` and standard deviation `sigma`.
    public mutating func normal(mean mu: Double, std sigma: Double) -> Double { mu + sigma * normal() }

    /// Uniform integer in `0..<n` (Lemire 2019).
    public mutating func index(below n: Int) -> Int {
        precondition(n > 0, "index(below:) needs a positive bound")
        let bound = UInt64(n)
        var m = nextUInt64().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = nextUInt64().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Fisher–Yates shuffle in place.
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = index(below: i + 1)
            if i != j { a.swapAt(i, j) }
        }
    }

    /// A random permutation of `0..<n`.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }

    /// Natural logarithm of a positive finite double using only +, −, ×, ÷ (deterministic on
    /// every IEEE-754 machine). `x = m·2ᵉ` with `m ∈ [√½, √2)`; `ln m = 2 atanh(t)`,
    /// `t = (m − 1)/(m + 1)`, summed to `t²³`; `ln 2` split in two parts. Error below 2 ulp.
    public static func log(_ x: Double) -> Double {
        precondition(x > 0 && x.isFinite, "log of \(x)")
        var m = x.significand            // [1, 2), exact also for subnormals
        var e = Double(x.exponent)
        if m > 1.4142135623730951 { m /= 2; e += 1 }
        let t = (m - 1) / (m + 1)
        let t2 = t * t
        // Σ_{k odd ≤ 23} tᵏ/k by Horner's rule in t², highest term first.
        var sum = 1.0 / 23
        var k = 21.0
        while k >= 1 { sum = sum * t2 + 1 / k; k -= 2 }
        sum *= t
        let ln2hi = 0.693147180369123816490   // 0x3FE62E42FEE00000
        let ln2lo = 1.90821492927058770002e-10 // 0x3DEA39EF35793C76
        return e * ln2hi + (2 * sum + e * ln2lo)
    }
}
