import CKernels

/// The hyperbolic tangent as pathkernel computes it wherever a network or an analytic kernel
/// evaluates one (`Activation.tanh`: training, the analysis's features, the replay's step check,
/// the infinite-width kernels' quadrature): the C kernel `pk_tanh`, within 2 ulp of the exact
/// value, by one fixed sequence of correctly rounded operations, so that the scalar call
/// here and the vector loops of `BLASScalar.tanhInPlace` (AVX-512, AVX2, SSE2) give the same bits.
/// A loop of it runs about 5–8 times as fast as glibc's `tanh` (AVX2; Docs/benchmarks.md).
/// Special values: `±1` for `±∞` and from `|x| ≥ 20` on, `−0` for `−0`, NaN for NaN.
public enum Tanh {
    public static func value(_ x: Double) -> Double { pk_tanh(x) }
}
