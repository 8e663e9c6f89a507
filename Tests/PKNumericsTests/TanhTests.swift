import Foundation
import Testing
@testable import PKNumerics

/// `Tanh.value` (the C kernel `pk_tanh`) against an independent tanh, and its vector loops
/// (`BLASScalar.tanhInPlace`) against the scalar call bit for bit in every version the CPU has.
@Suite("tanh: accuracy against tanhl, one set of bits in every version", .serialized)
struct TanhTests {
    /// The largest error allowed, in units in the last place of the correctly rounded double:
    /// `Tools/reference/tanh_coefficients.py --check` finds 1.83 ulp over 10⁵ points against
    /// mpmath (the two polynomials fit to 4e-18; the rest is the rounding of the formula's ~30
    /// operations, largest just above the switch to the exponential at |x| = 0.625).
    static let ulpBound = 2.0

    /// The error of `Tanh.value(x)` in ulps of the exact value, the reference `tanhl` in x87
    /// extended precision (64-bit significand: its own error is ~2^−11 of a double's ulp) where
    /// there is one, else glibc's double `tanh` (within 1 ulp itself: the bound is widened by it).
    static func ulpError(_ x: Double) -> Double {
        let got = Tanh.value(x)
        #if arch(x86_64) && os(Linux)
        let exact = Foundation.tanh(Float80(x))
        let spacing = Float80(Double(exact).ulp)
        return spacing == 0 ? 0 : Double(abs(Float80(got) - exact) / spacing)
        #else
        let reference = Foundation.tanh(x)
        return reference == 0 ? 0 : abs(got - reference) / reference.ulp - 1
        #endif
    }

    /// 200,000 points: uniform on [−1.5, 1.5] and [−25, 25], log-uniform magnitudes from 1e−12 to
    /// 1, and a dense grid around the branch switch at 0.625.
    @Test func withinTheBoundOfTheExactValue() {
        var rng = PortableRandom(seed: 24)
        var worst = 0.0, at = 0.0
        func probe(_ x: Double) {
            let e = Self.ulpError(x)
            if e > worst { worst = e; at = x }
        }
        for _ in 0..<50_000 {
            probe(3 * rng.uniform() - 1.5)
            probe(50 * rng.uniform() - 25)
            probe((rng.uniform() < 0.5 ? -1 : 1) * Foundation.pow(10, -12 * rng.uniform()))
        }
        for k in -25_000..<25_000 { probe(0.625 + Double(k) * 1e-6) }
        #expect(worst <= Self.ulpBound, "tanh is \(worst) ulp off at x = \(at)")
        #expect(worst > 0.5, "a bound that every input meets by a wide margin tests nothing: \(worst)")
    }

    @Test func specialValuesAndSymmetry() {
        #expect(Tanh.value(0).bitPattern == 0)
        #expect(Tanh.value(-0.0).bitPattern == (-0.0).bitPattern)
        #expect(Tanh.value(.infinity) == 1 && Tanh.value(-.infinity) == -1)
        #expect(Tanh.value(.nan).isNaN && Tanh.value(-.nan).isNaN)
        for x in [20.0, 21, 40, 1e10, 1e300, .greatestFiniteMagnitude] {
            #expect(Tanh.value(x) == 1 && Tanh.value(-x) == -1, "tanh(±\(x))")
        }
        // Subnormal and tiny inputs: tanh x = x.
        for x in [Double.leastNonzeroMagnitude, 1e-310, 1e-200, 1e-20, 1e-9] {
            #expect(Tanh.value(x) == x && Tanh.value(-x) == -x, "tanh(\(x))")
        }
        var rng = PortableRandom(seed: 5)
        for _ in 0..<10_000 {
            let x = 10 * rng.normal()
            #expect(Tanh.value(-x).bitPattern == (-Tanh.value(x)).bitPattern)
        }
    }

    /// Every version (AVX-512F, AVX2, the SSE2 baseline, each where the CPU has it) over lengths
    /// 0…40 and 1,037 (vector bodies and tails) and every kind of input: the scalar call's bits, and
    /// for Float the double result rounded once (value and derivative).
    @Test func vectorLoopsGiveTheScalarBits() {
        var rng = PortableRandom(seed: 11)
        let specials: [Double] = [0, -0.0, .infinity, -.infinity, .nan, 0.625, -0.625, 20, -19.5, 1e-310, 3e38, 1e-45]
        for level in [2, 1, 0] {
            ElementwiseKernels.forceMaxLevel(level)
            defer { ElementwiseKernels.forceMaxLevel(2) }
            for n in Array(0...40) + [1037] {
                let x = (0..<n).map { i in i < specials.count && n > 30 ? specials[i] : 4 * rng.normal() }
                var v = x, d = [Double](repeating: 0, count: n)
                v.withUnsafeMutableBufferPointer { vp in
                    d.withUnsafeMutableBufferPointer { dp in
                        if n > 0 { Double.tanhInPlace(vp.baseAddress!, derivatives: dp.baseAddress!, count: n) }
                    }
                }
                var vf = x.map(Float.init), df = [Float](repeating: 0, count: n)
                vf.withUnsafeMutableBufferPointer { vp in
                    df.withUnsafeMutableBufferPointer { dp in
                        if n > 0 { Float.tanhInPlace(vp.baseAddress!, derivatives: dp.baseAddress!, count: n) }
                    }
                }
                for i in 0..<n {
                    let t = Tanh.value(x[i])
                    #expect(v[i].bitPattern == t.bitPattern || (v[i].isNaN && t.isNaN), "level \(level), n \(n), x \(x[i])")
                    #expect(d[i].bitPattern == (1 - t * t).bitPattern || (d[i].isNaN && t.isNaN))
                    let tf = Tanh.value(Double(Float(x[i])))
                    #expect(vf[i].bitPattern == Float(tf).bitPattern || (vf[i].isNaN && tf.isNaN))
                    #expect(df[i].bitPattern == Float(1 - tf * tf).bitPattern || (df[i].isNaN && tf.isNaN))
                }
            }
        }
    }
}
