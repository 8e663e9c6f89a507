import Foundation
import PKNetworks
import PKNumerics

/// The two Gaussian expectations an activation layer contributes to the infinite-width kernels
/// (ntk-family contract §1):
///
///     E[φ(u)φ(v)]  and  E[φ'(u)φ'(v)],   (u, v) ~ N(0, [[q₁, c], [c, q₂]])
///
/// Priorities, in order: the contract's numbers (closed forms to round-off; quadrature to 1e-10
/// absolute, relative above 1, for `q ≤ 32`); exact self pairs (`q₁ = q₂ = c` gives `θ = 0`,
/// `ρ = 1` exactly); no NaN for any finite non-negative variances; then speed.
///
/// References: Cho & Saul 2009 (arc-cosine kernels: relu, leaky relu), Williams 1997 (erf),
/// Tsuchida, Pearce, van der Heide, Roosta & Gallagher 2020 (gelu), all as neural-tangents'
/// `stax.ABRelu`, `stax.Erf`, `stax.Gelu`.
///
/// Does *not* hold: the quadrature's error bound was measured for `q ≤ 32` only; its node count is
/// capped at `maxNodes` (reached at `q ≈ 1800`), beyond which the error is not bounded.
public enum GaussianExpectation {
    /// How the expectations are evaluated.
    public enum Route: String, Sendable, CaseIterable {
        /// Closed forms where they exist (identity, relu, leaky-relu, erf, gelu), the trapezoidal
        /// rule otherwise (tanh, sigmoid, softplus).
        case automatic
        /// The trapezoidal rule for every activation (the closed forms' independent check; not
        /// accurate for relu and leaky-relu, whose kink the rule does not resolve to 1e-10).
        case quadrature
    }

    /// `E[φ(u)φ(v)]` (`value`) and `E[φ'(u)φ'(v)]` (`derivative`).
    public struct Pair: Sendable, Equatable {
        public var value: Double
        public var derivative: Double
    }

    /// Whether `activation` has a closed form here.
    public static func hasClosedForm(_ activation: Activation) -> Bool {
        switch activation {
        case .identity, .relu, .leakyRelu, .erf, .gelu: return true
        case .tanh, .sigmoid, .softplus: return false
        }
    }

    /// The expectations for variances `q1`, `q2` (≥ 0) and covariance `c`. `q1 q2 − c²` is
    /// clamped at 0 (a covariance matrix made slightly indefinite by round-off).
    public static func pair(_ activation: Activation, leakySlope alpha: Double,
                            q1: Double, q2: Double, c: Double, route: Route = .automatic) -> Pair {
        if route == .quadrature || !hasClosedForm(activation) {
            return trapezoid(activation, leakySlope: alpha, q1: q1, q2: q2, c: c)
        }
        switch activation {
        case .identity:
            return Pair(value: c, derivative: 1)
        case .relu:
            return arcCosine(slope: 0, q1: q1, q2: q2, c: c)
        case .leakyRelu:
            return arcCosine(slope: alpha, q1: q1, q2: q2, c: c)
        case .erf:
            // (1+2q₁)(1+2q₂) − 4c² = 1 + 2(q₁+q₂) + 4(q₁q₂ − c²), with the last term clamped.
            let p = (1 + 2 * q1) * (1 + 2 * q2)
            let gap = 1 + 2 * (q1 + q2) + 4 * max(q1 * q2 - c * c, 0)
            let ratio = min(max(2 * c / p.squareRoot(), -1), 1)
            return Pair(value: 2 / Double.pi * asin(ratio), derivative: 4 / Double.pi / gap.squareRoot())
        case .gelu:
            let prod = q1 * q2
            let p1 = (1 + q1) * (1 + q2)
            // Δ² = P₁ − c² = 1 + q₁ + q₂ + (q₁q₂ − c²), clamped: Δ² ≥ 1.
            let delta2 = 1 + q1 + q2 + max(prod - c * c, 0)
            let delta = delta2.squareRoot()
            let psi = atan2(c, delta)
            let value = c / 4 + ((c * c + prod * delta2) / (p1 * delta) + c * psi) / (2 * Double.pi)
            let derivative = 0.25 + psi / (2 * Double.pi)
                + c * (1 / delta2 + (1 - prod) / p1 + 1) / (2 * Double.pi * delta)
            return Pair(value: value, derivative: derivative)
        case .tanh, .sigmoid, .softplus:
            return trapezoid(activation, leakySlope: alpha, q1: q1, q2: q2, c: c)
        }
    }

    /// Leaky ReLU with slope `α` below 0 (relu: `α = 0`), the arc-cosine kernel of degree 1 and 0:
    /// `A·s + (B − Aθ)·c` and `B − Aθ`, `s = √max(q₁q₂ − c², 0)`, `θ = atan2(s, c)` (evaluated
    /// by `angle`), `A = (1−α)²/(2π)`, `B = (1+α²)/2`. A zero variance gives `θ = π/2` (any θ would
    /// do: `c = 0`).
    static func arcCosine(slope alpha: Double, q1: Double, q2: Double, c: Double) -> Pair {
        let a = (1 - alpha) * (1 - alpha) / (2 * Double.pi)
        let b = (1 + alpha * alpha) / 2
        let s = max(q1 * q2 - c * c, 0).squareRoot()
        let theta = q1 * q2 == 0 ? Double.pi / 2 : angle(s: s, c: c)
        let derivative = b - a * theta
        return Pair(value: a * s + derivative * c, derivative: derivative)
    }

    /// `atan2(s, c)` for `s ≥ 0`, as `atan(s/c)` put in its quadrant: `atan(s/c)` for `c > 0`,
    /// `π + atan(s/c)` for `c < 0`, `π/2` for `c = 0`. One division and glibc's `atan` cost about
    /// a quarter less than its `atan2` (the CNTK's `gap` readout spent about a third of its time
    /// on this angle). Exact where the closed forms need it: `s = 0` gives `θ = 0` (`c > 0`: self
    /// pairs) and `θ = π` (`c < 0`: anti-parallel pairs) exactly; elsewhere within a few ulp of
    /// `atan2` (the quotient's rounding, then `atan`'s; `π + atan` adds at most an ulp of `π`),
    /// checked at 1e-13 relative in `InfiniteWidthKernelTests.arcCosineAngleMatchesAtan2`. `s/c`
    /// may overflow to ±∞ for a subnormal `c`: `atan` then gives ±π/2, the right limit.
    @inline(__always)
    static func angle(s: Double, c: Double) -> Double {
        if c > 0 { return atan(s / c) }
        if c < 0 { return Double.pi + atan(s / c) }
        return Double.pi / 2
    }

    // MARK: - Trapezoidal rule

    /// Half-width of the integration interval in standard-normal units (`e^{−81/2} ≈ 2.6e-18`).
    public static let halfWidth = 9.0
    /// Most nodes per axis (reached at `q ≈ 1800`).
    public static let maxNodes = 4097

    /// `M = 2·⌈48·√max(1, q)⌉ + 1` nodes per axis for the larger variance `q` (97 for `q ≤ 1`,
    /// 545 at `q = 32`), at most `maxNodes`.
    public static func nodeCount(maxVariance q: Double) -> Int {
        let r = 48 * max(1, q).squareRoot()
        guard r.isFinite, r < Double(maxNodes) else { return maxNodes }
        return min(2 * Int(r.rounded(.up)) + 1, maxNodes)
    }

    /// The trapezoidal rule on `[−9, 9]` in standard-normal coordinates: `u = √q₁ s`,
    /// `v = √q₂ (ρ s + √(1−ρ²) t)`, `ρ = c/√(q₁q₂)` clipped to `[−1, 1]` (0 when `q₁q₂ = 0`),
    /// `E ≈ Σ_jk w_j w_k φ(u_j) φ(v_jk)` with `w_j = h e^{−s_j²/2}/√(2π)`; a 1-D sum when `|ρ| = 1`.
    /// Cost: `M` evaluations for `u`, `M²` for `v` (`M` for `|ρ| = 1`).
    public static func trapezoid(_ activation: Activation, leakySlope alpha: Double,
                                 q1: Double, q2: Double, c: Double) -> Pair {
        let m = nodeCount(maxVariance: max(q1, q2))
        let h = 2 * halfWidth / Double(m - 1)
        let norm = h / (2 * Double.pi).squareRoot()
        let r1 = max(q1, 0).squareRoot(), r2 = max(q2, 0).squareRoot()
        var rho = 0.0
        if q1 * q2 > 0 {
            rho = (q1 == q2 && c == q1) ? 1 : min(max(c / (r1 * r2), -1), 1)
        }
        let nodes = (0..<m).map { -halfWidth + Double($0) * h }
        let weights = nodes.map { norm * exp(-0.5 * $0 * $0) }
        var value = 0.0, derivative = 0.0
        if abs(rho) == 1 {
            for j in 0..<m {
                let u = r1 * nodes[j], v = rho * r2 * nodes[j]
                let w = weights[j]
                let (fu, du) = valueAndDerivative(activation, u, leakySlope: alpha)
                let (fv, dv) = valueAndDerivative(activation, v, leakySlope: alpha)
                value += w * fu * fv
                derivative += w * du * dv
            }
            return Pair(value: value, derivative: derivative)
        }
        let across = (1 - rho * rho).squareRoot()
        let step = across * r2
        for j in 0..<m {
            let u = r1 * nodes[j]
            let (fu, du) = valueAndDerivative(activation, u, leakySlope: alpha)
            let base = rho * r2 * nodes[j]
            var rowValue = 0.0, rowDerivative = 0.0
            if activation == .tanh || activation == .sigmoid {
                (rowValue, rowDerivative) = geometricRow(activation, from: base - halfWidth * step, by: step * h, weights: weights)
            } else {
                for k in 0..<m {
                    let v = base + step * nodes[k]
                    let w = weights[k]
                    let (fv, dv) = valueAndDerivative(activation, v, leakySlope: alpha)
                    rowValue += w * fv
                    rowDerivative += w * dv
                }
            }
            value += weights[j] * fu * rowValue
            derivative += weights[j] * du * rowDerivative
        }
        return Pair(value: value, derivative: derivative)
    }

    /// Evaluations per exact exponential in `geometricRow`: the products between two restarts
    /// carry at most this many roundings (relative 32ε ≈ 7e-15 in `e^{2v}`).
    static let geometricRun = 32

    /// `Σ_k w_k φ(v_k)` and `Σ_k w_k φ'(v_k)` along the row's nodes `v_k = v₀ + k·d` (`d ≥ 0`) for
    /// tanh and the logistic sigmoid, with the exponential of the nodes as a geometric sequence:
    /// `tanh v = 1 − 2/(e^{2v} + 1)`, `σ(v) = 1/(1 + e^{−v})`, `e^{2v_{k+1}} = e^{2v_k}·e^{2d}`,
    /// restarted from an exact `exp` every `geometricRun` nodes. One multiplication and one
    /// division per node instead of a `tanh` (the quadrature's inner loop, where it spends its
    /// time). Accuracy: absolute, about 1e-14 per evaluation (the rule's own error is 1e-10); an
    /// exponential that overflows or underflows at a restart stays there for the run, where the
    /// function is ±1 (0, 1) to double precision, since the nodes move by at most
    /// `geometricRun·d ≤ 6` within one (`d ≤ 18·√1800/4096`).
    static func geometricRow(_ activation: Activation, from v0: Double, by d: Double, weights: [Double]) -> (Double, Double) {
        let m = weights.count
        let sign: Double = activation == .tanh ? 2 : -1       // tanh: e^{2v}; sigmoid: e^{−v}
        let ratio = exp(sign * d)
        var value = 0.0, derivative = 0.0
        weights.withUnsafeBufferPointer { w in
            var k = 0
            while k < m {
                var e = exp(sign * (v0 + Double(k) * d))
                let end = min(k + geometricRun, m)
                if activation == .tanh {
                    while k < end {
                        let t = 1 - 2 / (e + 1)
                        value += w[k] * t
                        derivative += w[k] * (1 - t * t)
                        e *= ratio
                        k += 1
                    }
                } else {
                    while k < end {
                        let s = 1 / (1 + e)
                        value += w[k] * s
                        derivative += w[k] * (s * (1 - s))
                        e *= ratio
                        k += 1
                    }
                }
            }
        }
        return (value, derivative)
    }

    /// `(φ(x), φ'(x))` with one transcendental evaluation for tanh, sigmoid and softplus (the
    /// quadrature's inner loop); the definitions of `Activation`, equal to them to round-off.
    @inline(__always)
    static func valueAndDerivative(_ activation: Activation, _ x: Double, leakySlope alpha: Double) -> (Double, Double) {
        switch activation {
        case .tanh:
            let t = Tanh.value(x)
            return (t, 1 - t * t)
        case .sigmoid:
            let e = exp(-abs(x))
            let s = x >= 0 ? 1 / (1 + e) : e / (1 + e)
            return (s, s * (1 - s))
        case .softplus:
            let e = exp(-abs(x))
            return (max(x, 0) + log1p(e), x >= 0 ? 1 / (1 + e) : e / (1 + e))
        default:
            return (activation.value(x, leakySlope: alpha), activation.derivative(x, leakySlope: alpha))
        }
    }
}
