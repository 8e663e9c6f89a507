import PKNetworks
import PKNumerics

/// Tolerances, named for what they bound.
enum Tolerance {
    /// Central differences with step `1e-6`: truncation ~h² and cancellation ~ε/h ≈ 1e-10 relative.
    static let finiteDifference = 1e-6
    /// Two routes to the same number through different GEMM shapes or summation orders.
    static let roundOff = 1e-12
}

/// Step of the central differences against which hand-written derivatives are checked.
let finiteDifferenceStep = 1e-6

/// `(φ(w + h e_k) − φ(w − h e_k)) / 2h` for every coordinate `k`.
func centralDifferences(at w: [Double], step h: Double = finiteDifferenceStep, _ phi: ([Double]) -> Double) -> [Double] {
    var probe = w
    return w.indices.map { k in
        probe[k] = w[k] + h
        let up = phi(probe)
        probe[k] = w[k] - h
        let down = phi(probe)
        probe[k] = w[k]
        return (up - down) / (2 * h)
    }
}

/// `max_k |a_k − b_k| / max_k |b_k|`: the error relative to the size of the reference `b`;
/// infinite when any entry of either is NaN (`Swift.max` would drop it, and an entry a routine
/// never wrote is NaN in debug builds: `Array.forOverwriting`).
func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "comparing lengths \(a.count) and \(b.count)")
    var diff = 0.0, scale = 0.0
    for (x, y) in zip(a, b) {
        if x.isNaN || y.isNaN { return .infinity }
        diff = max(diff, abs(x - y))
        scale = max(scale, abs(y))
    }
    return scale == 0 ? diff : diff / scale
}

/// `|a − b| ≤ tol · max(1, |a|, |b|)`.
func isClose(_ a: Double, _ b: Double, tolerance tol: Double) -> Bool {
    abs(a - b) <= tol * max(1, abs(a), abs(b))
}

/// A matrix of standard normals (deterministic).
func randomMatrix(rows: Int, cols: Int, seed: UInt64, scale: Double = 1) -> Matrix {
    var rng = PortableRandom(seed: seed)
    return Matrix(rows: rows, cols: cols, data: (0..<(rows * cols)).map { _ in scale * rng.normal() })
}

func randomVector(_ count: Int, seed: UInt64) -> [Double] {
    randomMatrix(rows: 1, cols: count, seed: seed).data
}

/// One network configuration of the derivative tables.
struct NetCase: Sendable, CustomStringConvertible {
    var activation: Activation
    var parameterization: Parameterization
    var bias: Bool

    var spec: ModelSpec {
        ModelSpec(layers: [3, 5, 4, 2], activation: activation, parameterization: parameterization,
                  sigmaW: 1.5, sigmaB: 0.3, bias: bias, leakySlope: 0.2)
    }

    var description: String { "\(activation.rawValue)/\(parameterization.rawValue)/\(bias ? "bias" : "no-bias")" }

    /// Every activation × parameterization × bias on/off.
    static let all: [NetCase] = Activation.allCases.flatMap { a in
        Parameterization.allCases.flatMap { p in [true, false].map { NetCase(activation: a, parameterization: p, bias: $0) } }
    }
}
