import RealModule

/// Gauss–Legendre quadrature on [0, 1].
///
/// With `q` nodes the rule is exact for polynomials of degree at most `2q − 1`.
/// Nodes are the roots of the Legendre polynomial `P_q`, found by Newton's method from the
/// Tricomi initial guess `cos(π(i − ¼)/(q + ½))`, then mapped from [−1, 1] to [0, 1]
/// (weights halved). Reference: Golub & Welsch (1969); Numerical Recipes §4.6 `gauleg`.
///
/// Does *not* hold: exactness for non-polynomial integrands (ReLU kinks converge slowly).
public struct GaussLegendre: Sendable, Equatable {
    /// Nodes in (0, 1), ascending.
    public let nodes: [Double]
    /// Weights, positive, summing to 1.
    public let weights: [Double]

    public static let maximumNodes = 64

    public init(nodes q: Int) {
        precondition(q >= 1 && q <= GaussLegendre.maximumNodes, "Gauss–Legendre needs 1…64 nodes, got \(q)")
        var x = [Double](repeating: 0, count: q)
        var w = [Double](repeating: 0, count: q)
        let m = (q + 1) / 2
        for i in 0..<m {
            var z = Double.cos(Double.pi * (Double(i) + 0.75) / (Double(q) + 0.5))
            var pp = 0.0
            for _ in 0..<100 {
                // Evaluate P_q(z) by the three-term recurrence, and its derivative.
                var p1 = 1.0, p2 = 0.0
                for j in 1...q {
                    let p3 = p2
                    p2 = p1
                    p1 = ((2 * Double(j) - 1) * z * p2 - (Double(j) - 1) * p3) / Double(j)
                }
                pp = Double(q) * (z * p1 - p2) / (z * z - 1)
                let dz = p1 / pp
                z -= dz
                if abs(dz) < 1e-16 { break }
            }
            // Root z in (−1, 1) descending with i; map to (0, 1).
            x[i] = (1 - z) / 2
            x[q - 1 - i] = (1 + z) / 2
            let wi = 2 / ((1 - z * z) * pp * pp)
            w[i] = wi / 2
            w[q - 1 - i] = wi / 2
        }
        nodes = x
        weights = w
    }

    /// `∫₀¹ f(s) ds` by this rule.
    public func integrate(_ f: (Double) -> Double) -> Double {
        var s = 0.0
        for (x, w) in zip(nodes, weights) { s += w * f(x) }
        return s
    }
}
