import PKNetworks
import PKNumerics

extension Tolerance {
    /// Float32 results against the Double ones, relative to the largest Double entry: a few units
    /// of float32 round-off (6e-8) accumulated over the ≤ 100-term sums of these small layers
    /// (measured ≤ 2.1e-7 over every case of `LayerDerivativeTests`).
    static let floatAgainstDouble = 2e-6
    /// `⟨J ẋ, u⟩` against `⟨ẋ, Jᵀ u⟩`: the same sums in another order, relative to `Σ |terms|`
    /// (measured ≤ 3e-16).
    static let adjointness = 1e-13
}

/// One layer under test, with inputs that keep finite differences valid for it.
struct LayerCase: Sendable, CustomStringConvertible {
    let name: String
    let layer: any Layer
    /// Whether central differences are an oracle at the test point (false for compositions with
    /// kinks whose pre-activations are not controlled).
    var finiteDifferences = true
    /// The input batch: standard normals, or values kept away from the layer's kinks.
    var inputs: InputKind = .normal

    enum InputKind: Sendable {
        /// Standard normals.
        case normal
        /// Standard normals pushed 0.1 away from 0 (ReLU's kink is beyond any finite-difference step).
        case awayFromZero
        /// A shuffled grid with spacing 0.1 (no two entries of a pooling window within 0.1).
        case distinct
    }

    var description: String { name }

    static let rows = 3

    func input(seed: UInt64) -> Matrix {
        let d = layer.inputShape.count
        switch inputs {
        case .normal:
            return randomMatrix(rows: Self.rows, cols: d, seed: seed)
        case .awayFromZero:
            return randomMatrix(rows: Self.rows, cols: d, seed: seed).map { $0 + ($0 < 0 ? -0.1 : 0.1) }
        case .distinct:
            var rng = PortableRandom(seed: seed)
            var values = (0..<(Self.rows * d)).map { 0.1 * Double($0) - 0.05 * Double(Self.rows * d) }
            rng.shuffle(&values)
            return Matrix(rows: Self.rows, cols: d, data: values)
        }
    }

    /// Parameters at a generic point: the initialization plus noise, so that LayerNorm's `γ = 1,
    /// β = 0` and zero biases do not hide a wrong derivative.
    func parameters(seed: UInt64) -> [Double] {
        let w = layer.initialParameters(seed: seed)
        let noise = randomVector(max(w.count, 1), seed: seed + 1000)
        return zip(w, noise).map { $0 + 0.3 * $1 }
    }
}

/// `⟨a, b⟩` and `Σ |a_k b_k|` (the scale against which the inner product's round-off is measured).
func innerProduct(_ a: [Double], _ b: [Double]) -> (value: Double, scale: Double) {
    precondition(a.count == b.count)
    var s = 0.0, m = 0.0
    for (x, y) in zip(a, b) { s += x * y; m += abs(x * y) }
    return (s, m)
}

/// The error of a Float result against the Double one, relative to the largest Double entry.
func floatError(_ a: [Float], _ b: [Double]) -> Double {
    relativeError(a.map(Double.init), b)
}
