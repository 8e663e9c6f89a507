import PKNumerics

/// A dense (fully connected) layer `z = s_W · x Wᵀ + s_b · 1 bᵀ` on a batch of feature vectors.
///
/// Priorities, in order: the same numbers as `DenseLayer`/`MLP` (the same GEMM calls in the same
/// order, so a `Sequential` MLP is bit-identical to `MLP` in Double), then GEMM-bound cost.
///
/// Shapes: input `[inputs]`, output `[outputs]`; tensors `weight` `[outputs, inputs]` (row-major,
/// PyTorch's `nn.Linear.weight`) and, with `bias`, `bias` `[outputs]`.
///
/// Parameterizations (`Docs/networks.md`; Jacot et al. 2018; neural-tangents `stax.Dense`), with
/// fan-in `n = inputs`:
///
/// | | initialization | forward scales |
/// | --- | --- | --- |
/// | `ntk` | `W, b ~ N(0, 1)` | `s_W = σ_w/√n`, `s_b = σ_b` |
/// | `standard` | `W ~ N(0, σ_w²/n)`, `b ~ N(0, σ_b²)` | `s_W = s_b = 1` |
///
/// Derivatives, with `u = ∂s/∂z`: `∂s/∂W = s_W uᵀ x`, `∂s/∂b = s_b Σ_rows u`, `∂s/∂x = s_W u W`;
/// `ż = s_W (ẋ Wᵀ + x Ẇᵀ) + s_b 1 ḃᵀ`.
public struct Dense: Layer {
    public let inputs: Int
    public let outputs: Int
    public let hasBias: Bool
    public let parameterization: Parameterization
    public let sigmaW: Double
    public let sigmaB: Double
    /// `s_W`: multiplies `x Wᵀ` in the forward pass.
    public let weightScale: Double
    /// `s_b`: multiplies `b` in the forward pass (unused without a bias).
    public let biasScale: Double
    public let parameters: [LayerParameter]

    public init(inputs: Int, outputs: Int, bias: Bool = true, parameterization: Parameterization = .ntk,
                sigmaW: Double = 1, sigmaB: Double = 0.1) throws {
        guard inputs >= 1, outputs >= 1 else {
            throw LayerError("dense: inputs and outputs must be at least 1, got \(inputs) → \(outputs)")
        }
        try checkScales(sigmaW: sigmaW, sigmaB: sigmaB, layer: "dense")
        self.inputs = inputs
        self.outputs = outputs
        self.hasBias = bias
        self.parameterization = parameterization
        self.sigmaW = sigmaW
        self.sigmaB = sigmaB
        let w = parameterization.weightScaling(sigmaW: sigmaW, fanIn: inputs)
        let b = parameterization.biasScaling(sigmaB: sigmaB)
        weightScale = w.forwardScale
        biasScale = b.forwardScale
        var tensors = [LayerParameter(name: "weight", shape: [outputs, inputs],
                                      initialization: .normal(standardDeviation: w.standardDeviation), slot: 0)]
        if bias {
            tensors.append(LayerParameter(name: "bias", shape: [outputs],
                                          initialization: .normal(standardDeviation: b.standardDeviation), slot: 1))
        }
        parameters = tensors
    }

    public var inputShape: TensorShape { .features(inputs) }
    public var outputShape: TensorShape { .features(outputs) }
    public var isPiecewiseLinear: Bool { false }
    /// Bilinear in `x` and `W` plus the bias: one degree more along a segment (`affineSegmentPieces`).
    public var segmentDegree: Int? { 1 }

    public func segmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double]) -> SegmentPieces? {
        affineSegmentPieces(input, start: w, delta: v, bias: hasBias ? (outputs * inputs)..<(outputs * inputs + outputs) : nil)
    }

    /// The input (for `∂/∂W`) and `W` (for `∂/∂x` and the tangent).
    struct Cache<S: BLASScalar>: Sendable {
        let input: DenseMatrix<S>
        let weight: DenseMatrix<S>
    }

    /// `W` as an `outputs × inputs` matrix (a copy of the first `outputs·inputs` scalars of `w`).
    func weight<S: BLASScalar>(_ w: [S]) -> DenseMatrix<S> {
        DenseMatrix(rows: outputs, cols: inputs, data: Array(w[0..<(outputs * inputs)]))
    }

    /// An `n × outputs` matrix whose every row is `s_b · b` (zero without a bias).
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    func broadcastBias<S: BLASScalar>(_ w: [S], rows n: Int) -> DenseMatrix<S> {
        var z = DenseMatrix<S>(rows: n, cols: outputs)
        guard hasBias else { return z }
        let bo = outputs * inputs, sB = S(biasScale)
        z.data.withUnsafeMutableBufferPointer { zp in
            for i in 0..<outputs {
                let bi = sB * w[bo + i]
                for r in 0..<n { zp[r * outputs + i] = bi }
            }
        }
        return z
    }

    // MARK: Forward

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache) {
        checkArguments(x, w)
        let W = weight(w)
        var z = broadcastBias(w, rows: x.rows)
        DenseMatrix.gemm(x, W, transposeB: true, alpha: S(weightScale), beta: 1, into: &z)
        return (z, LayerCache(Cache(input: x, weight: W)))
    }

    // MARK: Pullback

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool)
        -> (input: DenseMatrix<S>?, parameters: [S]) {
        let c = cache.contents(as: Cache<S>.self)
        precondition(cotangent.rows == c.input.rows && cotangent.cols == outputs, "dense pullback: cotangent is \(cotangent.rows)×\(cotangent.cols), outputs are \(c.input.rows)×\(outputs)")
        var dW = DenseMatrix<S>(rows: outputs, cols: inputs)
        DenseMatrix.gemm(cotangent, transposeA: true, c.input, alpha: S(weightScale), into: &dW)
        var gradient = dW.data
        if hasBias {
            let sB = S(biasScale)
            gradient.append(contentsOf: cotangent.columnSums().map { sB * $0 })
        }
        guard needsInputCotangent else { return (nil, gradient) }
        var dx = DenseMatrix<S>(rows: cotangent.rows, cols: inputs)
        DenseMatrix.gemm(cotangent, c.weight, alpha: S(weightScale), into: &dx)
        return (dx, gradient)
    }

    // MARK: Per-row pullback

    /// Row `i` (example `r = i / repeats`): `∂W = s_W·(u_i ⊗ a_r)` (each entry `s_W·(u·a)`, the
    /// association of `pullback`'s GEMM), `∂b = s_b u_i`; the input cotangent is one GEMM `s_W U W`
    /// over all rows.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                            input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                            parameterRows: ParameterRows<S>) -> DenseMatrix<S>? {
        let c = cache.contents(as: Cache<S>.self)
        let m = cotangent.rows, I = inputs, O = outputs
        precondition(repeats >= 1 && m == c.input.rows * repeats && cotangent.cols == O,
                     "dense pullbackRows: cotangent is \(m)×\(cotangent.cols), outputs are \(c.input.rows)×\(O) repeated \(repeats) times")
        let sW = S(weightScale), sB = S(biasScale)
        cotangent.data.withUnsafeBufferPointer { up in
            c.input.data.withUnsafeBufferPointer { ap in
                for i in 0..<m {
                    let row = parameterRows.row(i), u = up.baseAddress! + i * O, a = ap.baseAddress! + (i / repeats) * I
                    for o in 0..<O {
                        let uo = u[o], dst = row + o * I
                        for k in 0..<I { dst[k] = sW * (uo * a[k]) }
                    }
                    if hasBias { for o in 0..<O { row[O * I + o] = sB * u[o] } }
                }
            }
        }
        guard needsInputCotangent else { return nil }
        var dx = DenseMatrix<S>(rows: m, cols: I)
        DenseMatrix.gemm(cotangent, c.weight, alpha: sW, into: &dx)
        return dx
    }

    // MARK: Tangent

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent v: [S], cache: LayerCache) -> DenseMatrix<S>? {
        let c = cache.contents(as: Cache<S>.self)
        precondition(v.count == parameterCount, "dense jvp: parameter tangent has \(v.count) scalars, the layer has \(parameterCount)")
        var dz = broadcastBias(v, rows: c.input.rows)
        DenseMatrix.gemm(c.input, weight(v), transposeB: true, alpha: S(weightScale), beta: 1, into: &dz)
        if let dx = inputTangent {
            DenseMatrix.gemm(dx, c.weight, transposeB: true, alpha: S(weightScale), beta: 1, into: &dz)
        }
        return dz
    }
}

// MARK: - JSON

extension Dense {
    /// `{"kind": "dense", "out": 10, "bias": true, "parameterization": "ntk", "sigmaW": 1.0, "sigmaB": 0.1}`:
    /// `out` required; `bias` defaults to true; the others, when absent, come from `LayerDefaults`.
    /// The input must be a feature vector (put a `flatten` before it after images).
    public struct Specification: LayerSpecification {
        public static let kinds = ["dense"]
        public var outputs: Int
        public var bias: Bool
        public var parameterization: Parameterization?
        public var sigmaW: Double?
        public var sigmaB: Double?

        public init(outputs: Int, bias: Bool = true, parameterization: Parameterization? = nil, sigmaW: Double? = nil, sigmaB: Double? = nil) {
            self.outputs = outputs
            self.bias = bias
            self.parameterization = parameterization
            self.sigmaW = sigmaW
            self.sigmaB = sigmaB
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case kind, outputs = "out", bias, parameterization, sigmaW, sigmaB }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            outputs = try c.decodeInteger(Int.self, forKey: .outputs, in: 1...ConfigLimits.maxWidth)
            bias = try c.decodeIfPresent(Bool.self, forKey: .bias) ?? true
            parameterization = try c.decodeChoiceIfPresent(Parameterization.self, forKey: .parameterization)
            sigmaW = try c.decodeNumberIfPresent(forKey: .sigmaW)
            sigmaB = try c.decodeNumberIfPresent(forKey: .sigmaB)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode("dense", forKey: .kind)
            try c.encode(outputs, forKey: .outputs)
            try c.encode(bias, forKey: .bias)
            try c.encodeIfPresent(parameterization, forKey: .parameterization)
            try c.encodeIfPresent(sigmaW, forKey: .sigmaW)
            try c.encodeIfPresent(sigmaB, forKey: .sigmaB)
        }

        public func build(input: TensorShape, defaults: LayerDefaults) throws -> any Layer {
            guard input.dimensions.count == 1 else {
                throw LayerError("dense: needs a feature vector input [d], got \(input) (put a flatten layer before it)")
            }
            return try Dense(inputs: input.count, outputs: outputs, bias: bias,
                             parameterization: parameterization ?? defaults.parameterization,
                             sigmaW: sigmaW ?? defaults.sigmaW, sigmaB: sigmaB ?? defaults.sigmaB)
        }
    }
}

extension Dense: EventSweepLayer {
    /// Every output reads every input: `W[o, i]` at `o·inputs + i`, the bias after the weights.
    public var sweepStage: SweepStage? {
        let n = inputs
        let bias = (0..<outputs).map { hasBias ? Int32(outputs * n + $0) : -1 }
        return .bilinear(SweepConnections(inputs: n, outputs: outputs, weightScale: weightScale, biasScale: biasScale, bias: bias) { o in
            (0..<n).map { (input: $0, weight: o * n + $0) }
        })
    }
}
