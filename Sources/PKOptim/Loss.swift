import Foundation
import PKNumerics

/// Per-example losses `ℓ(f, y)` and their output gradients `g = ∂ℓ/∂f`.
///
/// Priorities, in order: no overflow or NaN for any finite outputs (logits of ±1000 included),
/// values and gradients matching the closed forms below to round-off, then speed.
///
/// Shapes: outputs `f` are `n × C` (one example per row), targets `y` are
/// - `mse`: `n × C`, real values; `ℓ = ½‖f − y‖²`, `g = f − y`;
/// - `crossEntropy`: `n × 1`, the class index `k ∈ 0..<C` stored as a `Double`;
///   `ℓ = logsumexp(f) − f_k`, `g = softmax(f) − onehot(k)`, computed as `(m − f_k) + log Σ_c e^{f_c − m}` with `m = max f`;
/// - `logistic`: `C = 1`, `n × 1` targets in {0, 1} (any value in [0, 1] works);
///   `ℓ = softplus(f) − y f = max(f, 0) − y f + log1p(e^{−|f|})`, `g = σ(f) − y`.
public enum LossKind: String, Codable, Sendable, CaseIterable {
    case mse
    case crossEntropy = "cross-entropy"
    case logistic

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let name = try c.decode(String.self)
        guard let kind = LossKind(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "unknown loss kind \"\(name)\" (supported: \(LossKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self = kind
    }
}

/// The loss as it appears in run configs: `{"kind": "mse"}`.
public struct LossSpec: Codable, Sendable, Equatable {
    public var kind: LossKind
    public init(kind: LossKind) { self.kind = kind }

    private enum CodingKeys: String, CodingKey, CaseIterable { case kind }

    /// The JSON keys a loss spec accepts; any other is refused.
    public static let jsonKeys = CodingKeys.allCases.map(\.rawValue)

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        kind = try decoder.container(keyedBy: CodingKeys.self).decode(LossKind.self, forKey: .kind)
    }
}

extension LossKind {
    /// The mean loss over the batch, `(1/n) Σ_i ℓ_i`, and the per-example output gradients
    /// `g_i = ∂ℓ_i/∂f_i` (`n × C`, *not* divided by `n`: the gradient of the mean loss with
    /// respect to `f` is `g/n`). An empty batch gives loss 0.
    public func evaluate(outputs f: Matrix, targets y: Matrix) -> (loss: Double, perExampleGradient: Matrix) {
        checkShapes(f, y)
        var total = 0.0
        var g = Matrix(rows: f.rows, cols: f.cols)
        for r in 0..<f.rows {
            total += example(f, y, r, gradient: &g)
        }
        return (f.rows == 0 ? 0 : total / Double(f.rows), g)
    }

    /// `ℓ_i` for every row (length `n`).
    public func perExampleLoss(outputs f: Matrix, targets y: Matrix) -> [Double] {
        checkShapes(f, y)
        var g = Matrix(rows: f.rows, cols: f.cols)
        return (0..<f.rows).map { example(f, y, $0, gradient: &g) }
    }

    private func checkShapes(_ f: Matrix, _ y: Matrix) {
        precondition(f.rows == y.rows, "\(rawValue): \(f.rows) outputs, \(y.rows) targets")
        switch self {
        case .mse:
            precondition(f.cols == y.cols, "mse: outputs have \(f.cols) columns, targets \(y.cols)")
        case .crossEntropy:
            precondition(y.cols == 1, "cross-entropy: targets must be one class index per row, got \(y.cols) columns")
        case .logistic:
            precondition(f.cols == 1 && y.cols == 1, "logistic: needs one output and one target per row, got \(f.cols) and \(y.cols)")
        }
    }

    /// `ℓ` of row `r`; writes `∂ℓ/∂f` into row `r` of `g`.
    private func example(_ f: Matrix, _ y: Matrix, _ r: Int, gradient g: inout Matrix) -> Double {
        let C = f.cols
        switch self {
        case .mse:
            var s = 0.0
            for c in 0..<C {
                let d = f[r, c] - y[r, c]
                g[r, c] = d
                s += d * d
            }
            return 0.5 * s
        case .crossEntropy:
            let k = Int(y[r, 0].rounded())
            precondition(k >= 0 && k < C, "cross-entropy: class \(y[r, 0]) in row \(r) is outside 0..<\(C)")
            var m = -Double.infinity
            for c in 0..<C { m = max(m, f[r, c]) }
            var z = 0.0
            for c in 0..<C {
                let e = Foundation.exp(f[r, c] - m)
                g[r, c] = e
                z += e
            }
            for c in 0..<C { g[r, c] /= z }
            g[r, k] -= 1
            // (m − f_k) first: exact when f_k is the maximum, so no digits are lost to m's size.
            return (m - f[r, k]) + Foundation.log(z)
        case .logistic:
            let x = f[r, 0], t = y[r, 0]
            let e = Foundation.exp(-abs(x))
            // σ(x) from e = exp(−|x|): 1/(1+e) for x ≥ 0, e/(1+e) for x < 0.
            g[r, 0] = (x >= 0 ? 1 / (1 + e) : e / (1 + e)) - t
            return max(x, 0) - t * x + Foundation.log1p(e)
        }
    }
}
