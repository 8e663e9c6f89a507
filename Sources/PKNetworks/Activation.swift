import Foundation
import PKNumerics

/// Pointwise nonlinearities of the hidden layers, with their derivatives.
///
/// Priorities, in order: values and derivatives that agree to round-off with the closed forms
/// below, no overflow or NaN for any finite input, then speed.
///
/// | case | `φ(x)` | `φ'(x)` |
/// | --- | --- | --- |
/// | `identity` | `x` | `1` |
/// | `relu` | `max(x, 0)` | `1` if `x > 0`, else `0` (so `φ'(0) = 0`) |
/// | `leakyRelu` | `x` if `x > 0`, else `α x` | `1` if `x > 0`, else `α` (so `φ'(0) = α`) |
/// | `tanh` | `tanh x` (`Tanh.value`, within 2 ulp of the exact value) | `1 − tanh² x` |
/// | `sigmoid` | `1 / (1 + e^{−x})` | `σ(x)(1 − σ(x))` |
/// | `gelu` | `x Φ(x)`, `Φ(x) = ½(1 + erf(x/√2))` (exact, not the tanh approximation; Hendrycks & Gimpel 2016) | `Φ(x) + x φ_N(x)`, `φ_N(x) = e^{−x²/2}/√(2π)` |
/// | `erf` | `erf x` | `(2/√π) e^{−x²}` |
/// | `softplus` | `log(1 + eˣ)`, computed as `max(x, 0) + log1p(e^{−|x|})` | `σ(x)` |
///
/// `α` is the spec's `leakySlope` (default 0.01). At the kink `x = 0` ReLU and leaky ReLU take
/// the left derivative. Does *not* hold: `derivative` is not a limit of finite differences at
/// `x = 0` for ReLU and leaky ReLU (none exists there).
public enum Activation: String, Codable, Sendable, CaseIterable {
    case identity, relu, leakyRelu = "leaky-relu", tanh, sigmoid, gelu, erf, softplus

    /// Whether `φ` calls a transcendental function (tanh, sigmoid, gelu, erf, softplus): not the
    /// identity nor the piecewise-linear relu and leaky relu.
    public var isSmooth: Bool { ![.identity, .relu, .leakyRelu].contains(self) }

    /// `φ(x)`.
    @inlinable
    public func value(_ x: Double, leakySlope alpha: Double = 0.01) -> Double {
        switch self {
        case .identity: return x
        case .relu: return x > 0 ? x : 0
        case .leakyRelu: return x > 0 ? x : alpha * x
        case .tanh: return Tanh.value(x)
        case .sigmoid: return Activation.logistic(x)
        case .gelu: return x * Activation.normalCDF(x)
        case .erf: return Foundation.erf(x)
        case .softplus: return max(x, 0) + Foundation.log1p(Foundation.exp(-abs(x)))
        }
    }

    /// `φ'(x)`, with the conventions at kinks stated on the type.
    @inlinable
    public func derivative(_ x: Double, leakySlope alpha: Double = 0.01) -> Double {
        switch self {
        case .identity: return 1
        case .relu: return x > 0 ? 1 : 0
        case .leakyRelu: return x > 0 ? 1 : alpha
        case .tanh:
            let t = Tanh.value(x)
            return 1 - t * t
        case .sigmoid:
            let s = Activation.logistic(x)
            return s * (1 - s)
        case .gelu:
            return Activation.normalCDF(x) + x * Foundation.exp(-0.5 * x * x) * Activation.inverseSqrt2Pi
        case .erf:
            return Activation.twoOverSqrtPi * Foundation.exp(-x * x)
        case .softplus:
            return Activation.logistic(x)
        }
    }

    /// `φ''(x)`: `0` for the piecewise-linear cases (also at the kink, where none exists),
    /// `−2 tanh x (1 − tanh² x)`, `σ(1 − σ)(1 − 2σ)`, `φ_N(x)(2 − x²)` (gelu),
    /// `−(4x/√π) e^{−x²}` (erf), `σ(x)(1 − σ(x))` (softplus). What second-order methods
    /// (Neural Tangent Transfer's kernel gradient, ntk-family contract §7) need.
    @inlinable
    public func secondDerivative(_ x: Double, leakySlope alpha: Double = 0.01) -> Double {
        switch self {
        case .identity, .relu, .leakyRelu: return 0
        case .tanh:
            let t = Tanh.value(x)
            return -2 * t * (1 - t * t)
        case .sigmoid, .softplus:
            let s = Activation.logistic(x)
            return self == .sigmoid ? s * (1 - s) * (1 - 2 * s) : s * (1 - s)
        case .gelu:
            return Foundation.exp(-0.5 * x * x) * Activation.inverseSqrt2Pi * (2 - x * x)
        case .erf:
            return -2 * x * Activation.twoOverSqrtPi * Foundation.exp(-x * x)
        }
    }

    /// `(φ(x), φ'(x))`, sharing the expensive part (one `tanh`, `exp` or `erfc` per call).
    /// Agrees with `value` and `derivative` to round-off (bit-identical for the piecewise-linear
    /// cases, `tanh`, `sigmoid` and `erf`).
    @inlinable
    public func valueAndDerivative(_ x: Double, leakySlope alpha: Double = 0.01) -> (value: Double, derivative: Double) {
        switch self {
        case .identity: return (x, 1)
        case .relu: return x > 0 ? (x, 1) : (0, 0)
        case .leakyRelu: return x > 0 ? (x, 1) : (alpha * x, alpha)
        case .tanh:
            let t = Tanh.value(x)
            return (t, 1 - t * t)
        case .sigmoid:
            let s = Activation.logistic(x)
            return (s, s * (1 - s))
        case .gelu:
            let p = Activation.normalCDF(x)
            return (x * p, p + x * Foundation.exp(-0.5 * x * x) * Activation.inverseSqrt2Pi)
        case .erf:
            return (Foundation.erf(x), Activation.twoOverSqrtPi * Foundation.exp(-x * x))
        case .softplus:
            let e = Foundation.exp(-abs(x))
            return (max(x, 0) + Foundation.log1p(e), x >= 0 ? 1 / (1 + e) : e / (1 + e))
        }
    }

    /// `φ` and `φ'` at every element of `z`, in one pass (in `z`'s precision; `Float` goes
    /// through the `Double` formulas and rounds once, except for the piecewise-linear cases).
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func valuesAndDerivatives<S: BLASScalar>(_ z: DenseMatrix<S>, leakySlope alpha: Double = 0.01)
        -> (values: DenseMatrix<S>, derivatives: DenseMatrix<S>) {
        var values = z
        let derivatives = applyInPlace(&values, leakySlope: alpha)
        return (values, derivatives)
    }

    /// Replaces `z` by `φ(z)` and returns `φ'(z)`: `valuesAndDerivatives` without a copy of `z`.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func applyInPlace<S: BLASScalar>(_ z: inout DenseMatrix<S>, leakySlope alpha: Double = 0.01) -> DenseMatrix<S> {
        if self == .identity { return DenseMatrix<S>(rows: z.rows, cols: z.cols, repeating: 1) }
        // One vector pass for tanh (`pk_tanh_in_place`: the bits of `Tanh.value`, 5–8 times as fast
        // as a loop of it) and ReLU (without branches: the signs of z are random, so a branch
        // mispredicts half the time and the loop does not vectorize; φ' = [z > 0], φ = z·[z > 0],
        // 0 for NaN).
        if self == .tanh || self == .relu {
            let count = z.data.count, tanh = self == .tanh
            let slopes = z.data.withUnsafeMutableBufferPointer { vp in
                [S](unsafeUninitializedCapacity: count) { dp, initialized in
                    if count > 0 {
                        if tanh {
                            S.tanhInPlace(vp.baseAddress!, derivatives: dp.baseAddress!, count: count)
                        } else {
                            S.reluInPlace(vp.baseAddress!, derivatives: dp.baseAddress!, count: count)
                        }
                    }
                    initialized = count
                }
            }
            return DenseMatrix(rows: z.rows, cols: z.cols, data: slopes)
        }
        var derivatives = DenseMatrix<S>(rows: z.rows, cols: z.cols, repeating: 0)
        z.data.withUnsafeMutableBufferPointer { vp in
            derivatives.data.withUnsafeMutableBufferPointer { dp in
                switch self {
                default:
                    for k in 0..<vp.count {
                        let (v, d) = valueAndDerivative(Double(vp[k]), leakySlope: alpha)
                        vp[k] = S(v); dp[k] = S(d)
                    }
                }
            }
        }
        return derivatives
    }

    /// `φ` applied to every element.
    public func values(_ z: Matrix, leakySlope alpha: Double = 0.01) -> Matrix {
        if self == .identity { return z }
        if self == .tanh {
            // One vector pass (the bits of `value`); the derivatives it also gives are dropped.
            var v = z
            _ = applyInPlace(&v, leakySlope: alpha)
            return v
        }
        return z.map { value($0, leakySlope: alpha) }
    }

    /// `φ'` at every element.
    public func derivatives(_ z: Matrix, leakySlope alpha: Double = 0.01) -> Matrix {
        z.map { derivative($0, leakySlope: alpha) }
    }

    // MARK: Helpers

    /// `σ(x) = 1/(1 + e^{−x})` without overflow: the exponential is always of `−|x|`.
    @usableFromInline
    static func logistic(_ x: Double) -> Double {
        if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
        let e = Foundation.exp(x)
        return e / (1 + e)
    }

    /// The standard normal CDF `Φ(x) = ½ erfc(−x/√2)` (erfc keeps the left tail accurate).
    @usableFromInline
    static func normalCDF(_ x: Double) -> Double { 0.5 * Foundation.erfc(-x * inverseSqrt2) }

    @usableFromInline static let inverseSqrt2 = 0.70710678118654752440
    @usableFromInline static let inverseSqrt2Pi = 0.39894228040143267794
    @usableFromInline static let twoOverSqrtPi = 1.12837916709551257390
}
