import PKNumerics

/// Layer normalization over all the features of each example, PyTorch's `nn.LayerNorm` with
/// `normalized_shape` = the whole example shape (`[d]`, or `[C, H, W]` for images) and
/// `elementwise_affine=True` (Ba, Kiros & Hinton 2016, "Layer Normalization"; PyTorch,
/// "LayerNorm", https://pytorch.org/docs/stable/generated/torch.nn.LayerNorm.html).
///
/// Priorities, in order: PyTorch's definition (biased variance, `ε` inside the square root,
/// default `ε = 1e-5`), row statistics accumulated in Double whatever the compute precision,
/// then speed.
///
/// For one example with `d` features:
///
///     μ = (1/d) Σ x_k,   σ² = (1/d) Σ (x_k − μ)²,   r = 1/√(σ² + ε),   x̂ = (x − μ)·r
///     y = γ ⊙ x̂ + β
///
/// Tensors (with `affine`): `weight` (`γ`) and `bias` (`β`), each of the input's shape, initialized
/// to 1 and 0 under both parameterizations (PyTorch's initialization; no forward scale).
/// The Jacobian of `x̂` in `x` is the symmetric `r (I − 11ᵀ/d − x̂ x̂ᵀ/d)`, so with `g = γ ⊙ u`:
///
///     ∂x = r (g − mean(g) − x̂ · mean(g ⊙ x̂)),   ∂γ = Σ_examples u ⊙ x̂,   ∂β = Σ_examples u
///     ẏ = γ ⊙ r (ẋ − mean(ẋ) − x̂ · mean(ẋ ⊙ x̂)) + γ̇ ⊙ x̂ + β̇
///
/// Each example is normalized by its own statistics, so per-example Jacobians exist (unlike
/// BatchNorm in training mode). Smooth (`ε > 0`).
public struct LayerNorm: Layer {
    public let inputShape: TensorShape
    /// `ε`, added to the variance.
    public let epsilon: Double
    /// Whether the layer has `weight` and `bias` (PyTorch's `elementwise_affine`).
    public let isAffine: Bool
    public let parameters: [LayerParameter]

    /// PyTorch's default `ε`.
    public static let defaultEpsilon = 1e-5

    public init(inputShape: TensorShape, epsilon: Double = LayerNorm.defaultEpsilon, affine: Bool = true) throws {
        guard inputShape.isValid else { throw LayerError("layernorm: input shape \(inputShape) must have positive sizes") }
        guard epsilon > 0, epsilon.isFinite else { throw LayerError("layernorm: eps must be a positive number, got \(epsilon)") }
        self.inputShape = inputShape
        self.epsilon = epsilon
        self.isAffine = affine
        parameters = affine ? [
            LayerParameter(name: "weight", shape: inputShape.dimensions, initialization: .constant(1), slot: 0),
            LayerParameter(name: "bias", shape: inputShape.dimensions, initialization: .constant(0), slot: 1),
        ] : []
    }

    public var outputShape: TensorShape { inputShape }
    public var isPiecewiseLinear: Bool { false }

    /// `x̂` (`n × d`), `r` per example, and `γ` (nil without affine parameters).
    struct Cache<S: BLASScalar>: Sendable {
        let normalized: DenseMatrix<S>
        let inverseStd: [Double]
        let gamma: [S]?
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache) {
        checkArguments(x, w)
        let n = x.rows, d = inputShape.count
        var normalized = DenseMatrix<S>(rows: n, cols: d)
        var inverseStd = [Double](repeating: 0, count: n)
        for r in 0..<n {
            var mean = 0.0
            for k in 0..<d { mean += Double(x.data[r * d + k]) }
            mean /= Double(d)
            var variance = 0.0
            for k in 0..<d {
                let e = Double(x.data[r * d + k]) - mean
                variance += e * e
            }
            variance /= Double(d)
            let rstd = 1 / (variance + epsilon).squareRoot()
            inverseStd[r] = rstd
            for k in 0..<d { normalized.data[r * d + k] = S((Double(x.data[r * d + k]) - mean) * rstd) }
        }
        guard isAffine else { return (normalized, LayerCache(Cache(normalized: normalized, inverseStd: inverseStd, gamma: nil))) }
        let gamma = Array(w[0..<d]), beta = Array(w[d..<(2 * d)])
        var y = normalized
        for r in 0..<n {
            for k in 0..<d { y.data[r * d + k] = gamma[k] * normalized.data[r * d + k] + beta[k] }
        }
        return (y, LayerCache(Cache(normalized: normalized, inverseStd: inverseStd, gamma: gamma)))
    }

    /// `r (g − mean(g) − x̂ · mean(g ⊙ x̂))` for every row: the Jacobian of `x̂` (symmetric) applied to `g`.
    /// Row `i` of `g` is taken at example `i / repeats` of the cache.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    func normalizedJacobian<S: BLASScalar>(_ g: DenseMatrix<S>, _ c: Cache<S>, repeats: Int = 1) -> DenseMatrix<S> {
        let n = g.rows, d = inputShape.count
        var out = DenseMatrix<S>(rows: n, cols: d)
        for r in 0..<n {
            let e = (r / repeats) * d
            var meanG = 0.0, meanGX = 0.0
            for k in 0..<d {
                let gk = Double(g.data[r * d + k])
                meanG += gk
                meanGX += gk * Double(c.normalized.data[e + k])
            }
            meanG /= Double(d)
            meanGX /= Double(d)
            let rstd = c.inverseStd[r / repeats]
            for k in 0..<d {
                out.data[r * d + k] = S(rstd * (Double(g.data[r * d + k]) - meanG - Double(c.normalized.data[e + k]) * meanGX))
            }
        }
        return out
    }

    /// `γ ⊙ v` in every row (`v` itself without affine parameters).
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    func scaledByGamma<S: BLASScalar>(_ v: DenseMatrix<S>, _ c: Cache<S>) -> DenseMatrix<S> {
        guard let gamma = c.gamma else { return v }
        let d = inputShape.count
        var out = v
        for r in 0..<v.rows { for k in 0..<d { out.data[r * d + k] *= gamma[k] } }
        return out
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool)
        -> (input: DenseMatrix<S>?, parameters: [S]) {
        let c = cache.contents(as: Cache<S>.self)
        let n = cotangent.rows, d = inputShape.count
        precondition(n == c.normalized.rows && cotangent.cols == d, "layernorm pullback: cotangent is \(n)×\(cotangent.cols), outputs are \(c.normalized.rows)×\(d)")
        var gradient: [S] = []
        if isAffine {
            var dGamma = [S](repeating: 0, count: d), dBeta = [S](repeating: 0, count: d)
            for r in 0..<n {
                for k in 0..<d {
                    let u = cotangent.data[r * d + k]
                    dGamma[k] += u * c.normalized.data[r * d + k]
                    dBeta[k] += u
                }
            }
            gradient = dGamma + dBeta
        }
        let dx = needsInputCotangent ? normalizedJacobian(scaledByGamma(cotangent, c), c) : nil
        return (dx, gradient)
    }

    /// Row `i` (example `r = i / repeats`): `∂γ = u_i ⊙ x̂_r`, `∂β = u_i`; the input cotangent is
    /// `pullback`'s with example `r`'s statistics.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                            input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                            parameterRows: ParameterRows<S>) -> DenseMatrix<S>? {
        let c = cache.contents(as: Cache<S>.self)
        let m = cotangent.rows, d = inputShape.count
        precondition(repeats >= 1 && m == c.normalized.rows * repeats && cotangent.cols == d,
                     "layernorm pullbackRows: cotangent is \(m)×\(cotangent.cols), outputs are \(c.normalized.rows)×\(d) repeated \(repeats) times")
        if isAffine {
            cotangent.data.withUnsafeBufferPointer { up in
                c.normalized.data.withUnsafeBufferPointer { xp in
                    for i in 0..<m {
                        let row = parameterRows.row(i), u = up.baseAddress! + i * d, xh = xp.baseAddress! + (i / repeats) * d
                        for k in 0..<d {
                            row[k] = u[k] * xh[k]
                            row[d + k] = u[k]
                        }
                    }
                }
            }
        }
        return needsInputCotangent ? normalizedJacobian(scaledByGamma(cotangent, c), c, repeats: repeats) : nil
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent v: [S], cache: LayerCache) -> DenseMatrix<S>? {
        let c = cache.contents(as: Cache<S>.self)
        precondition(v.count == parameterCount, "layernorm jvp: parameter tangent has \(v.count) scalars, the layer has \(parameterCount)")
        let n = c.normalized.rows, d = inputShape.count
        let normalizedTangent = inputTangent.map { scaledByGamma(normalizedJacobian($0, c), c) }
        guard isAffine else { return normalizedTangent }
        var dy = normalizedTangent ?? DenseMatrix<S>(rows: n, cols: d)
        for r in 0..<n {
            for k in 0..<d { dy.data[r * d + k] += v[k] * c.normalized.data[r * d + k] + v[d + k] }
        }
        return dy
    }
}

// MARK: - JSON

extension LayerNorm {
    /// `{"kind": "layernorm", "eps": 1e-5, "affine": true}` (both optional, PyTorch's defaults).
    public struct Specification: LayerSpecification {
        public static let kinds = ["layernorm"]
        public var epsilon: Double
        public var affine: Bool

        public init(epsilon: Double = LayerNorm.defaultEpsilon, affine: Bool = true) {
            self.epsilon = epsilon
            self.affine = affine
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case kind, epsilon = "eps", affine }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            epsilon = try c.decodeNumberIfPresent(forKey: .epsilon) ?? LayerNorm.defaultEpsilon
            affine = try c.decodeIfPresent(Bool.self, forKey: .affine) ?? true
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode("layernorm", forKey: .kind)
            try c.encode(epsilon, forKey: .epsilon)
            try c.encode(affine, forKey: .affine)
        }

        public func build(input: TensorShape, defaults: LayerDefaults) throws -> any Layer {
            try LayerNorm(inputShape: input, epsilon: epsilon, affine: affine)
        }
    }
}
