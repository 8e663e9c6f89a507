import PKNumerics

/// A pointwise nonlinearity `y = φ(x)` as a layer: every `Activation` (the table, the kink
/// conventions and the formulas are on that type and in `Docs/networks.md`).
///
/// Shapes: any input shape; the output has the same shape. No parameters.
/// Pullback `∂x = u ⊙ φ'(x)`, tangent `ẏ = ẋ ⊙ φ'(x)`, with `φ'` kept from the forward pass
/// (computed by `Activation.applyInPlace`, as `MLP` does, so the numbers are the same).
/// Piecewise linear: `relu` and `leaky-relu` (kink at 0, left derivative taken there).
public struct ActivationLayer: Layer {
    public let activation: Activation
    /// Slope `α` of `leaky-relu` for negative inputs (unused by the other activations).
    public let leakySlope: Double
    public let inputShape: TensorShape

    public init(_ activation: Activation, shape: TensorShape, leakySlope: Double = 0.01) throws {
        guard shape.isValid else { throw LayerError("\(activation.rawValue): input shape \(shape) must have positive sizes") }
        guard leakySlope.isFinite else { throw LayerError("\(activation.rawValue): leakySlope must be finite, got \(leakySlope)") }
        self.activation = activation
        self.leakySlope = leakySlope
        self.inputShape = shape
    }

    public var outputShape: TensorShape { inputShape }
    public var parameters: [LayerParameter] { [] }
    public var isPiecewiseLinear: Bool { activation == .relu || activation == .leakyRelu }
    /// Relu, leaky relu and the identity keep the degree (their slopes are fixed on a piece);
    /// the smooth activations are not polynomial along a segment (nil).
    public var segmentDegree: Int? { isPiecewiseLinear || activation == .identity ? 0 : nil }

    /// Relu and leaky relu: the switching functions are the inputs themselves; each one's sign
    /// changes inside a row's piece (`SegmentPieces.signChanges`) cut the row, and on every new
    /// piece the slopes (1 above 0, else 0 or α: the forward pass's rule), read at its midpoint,
    /// multiply the coefficients. The identity passes the pieces on.
    public func segmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double]) -> SegmentPieces? {
        if activation == .identity { return input }
        guard isPiecewiseLinear else { return nil }
        let alpha = activation == .leakyRelu ? leakySlope : 0
        let width = input.width, d = input.degree
        var cuts = [[Double]](repeating: [], count: input.rows)
        var c = [Double](repeating: 0, count: d + 1)
        for r in 0..<input.rows {
            var roots: [Double] = []
            for j in 0..<width {
                for k in 0...d { c[k] = input.coefficients[k][r, j] }
                roots += SegmentPieces.signChanges(c, in: input.lo[r], input.hi[r])
            }
            cuts[r] = roots.sorted()
        }
        let s = input.split(cuts)
        var out = [Matrix](repeating: Matrix(rows: s.example.count, cols: width), count: d + 1)
        for i in s.example.indices {
            let p = s.parent[i]
            for j in 0..<width {
                let slope = input.value(p, j, at: s.midpoint[i]) > 0 ? 1 : alpha
                for k in 0...d { out[k][i, j] = slope * input.coefficients[k][p, j] }
            }
        }
        return SegmentPieces(example: s.example, lo: s.lo, hi: s.hi, coefficients: out, fusesRectifiedPools: input.fusesRectifiedPools)
    }

    /// The slope α ≥ 0 for negative inputs when this is a relu (0) or a leaky relu with α ≥ 0:
    /// then φ is nondecreasing, so a max pool after it commutes with it (`max_i φ(z_i) =
    /// φ(max_i z_i)`, and the first arg-max of the φ(z_i) is the first arg-max of the z_i
    /// wherever the maximum is positive, or for α > 0 everywhere), and `Sequential` searches the
    /// two as one layer (`MaxPool2D.rectifiedSegmentPieces`). nil otherwise.
    var poolFusionSlope: Double? {
        switch activation {
        case .relu: return 0
        case .leakyRelu: return leakySlope >= 0 ? leakySlope : nil
        default: return nil
        }
    }

    /// `φ'` at every input entry.
    struct Cache<S: BLASScalar>: Sendable { let derivatives: DenseMatrix<S> }

    public func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache) {
        checkArguments(x, w)
        var y = x
        let derivatives = activation.applyInPlace(&y, leakySlope: leakySlope)
        return (y, LayerCache(Cache(derivatives: derivatives)))
    }

    public func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool)
        -> (input: DenseMatrix<S>?, parameters: [S]) {
        let c = cache.contents(as: Cache<S>.self)
        return (needsInputCotangent ? cotangent.hadamard(c.derivatives) : nil, [])
    }

    /// ReLU and leaky ReLU: the sign of every input (1 above 0, else 0).
    public func kinkPattern(_ x: Matrix, parameters w: [Double], into pattern: inout [Double]) -> Matrix {
        if isPiecewiseLinear { pattern.append(contentsOf: x.data.map { $0 > 0 ? 1 : 0 }) }
        return apply(x, parameters: w)
    }

    public func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent: [S], cache: LayerCache) -> DenseMatrix<S>? {
        let c = cache.contents(as: Cache<S>.self)
        return inputTangent?.hadamard(c.derivatives)
    }

    /// Row `i`: `u_i ⊙ φ'(x_{i / repeats})`; no parameters.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                            input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                            parameterRows: ParameterRows<S>) -> DenseMatrix<S>? {
        guard needsInputCotangent else { return nil }
        let c = cache.contents(as: Cache<S>.self)
        let m = cotangent.rows, d = inputShape.count
        precondition(repeats >= 1 && m == c.derivatives.rows * repeats && cotangent.cols == d,
                     "\(activation.rawValue) pullbackRows: cotangent is \(m)×\(cotangent.cols), outputs are \(c.derivatives.rows)×\(d) repeated \(repeats) times")
        if repeats == 1 { return cotangent.hadamard(c.derivatives) }
        var dx = cotangent
        dx.data.withUnsafeMutableBufferPointer { xp in
            c.derivatives.data.withUnsafeBufferPointer { dp in
                for i in 0..<m {
                    let row = xp.baseAddress! + i * d, phi = dp.baseAddress! + (i / repeats) * d
                    for k in 0..<d { row[k] = row[k] * phi[k] }
                }
            }
        }
        return dx
    }
}

// MARK: - JSON

extension ActivationLayer {
    /// `{"kind": "tanh"}`, one kind per activation (`relu`, `leaky-relu`, `tanh`, `sigmoid`, `gelu`,
    /// `erf`, `softplus`, `identity`); `leaky-relu` alone takes `"leakySlope"` (default from
    /// `LayerDefaults`). The output has the input's shape.
    public struct Specification: LayerSpecification {
        public static let kinds = Activation.allCases.map(\.rawValue)
        public var activation: Activation
        public var leakySlope: Double?

        public init(_ activation: Activation, leakySlope: Double? = nil) {
            self.activation = activation
            self.leakySlope = leakySlope
        }

        enum CodingKeys: String, CodingKey { case kind, leakySlope }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let kind = try c.decode(String.self, forKey: .kind)
            guard let activation = Activation(rawValue: kind) else {
                throw ConfigProblem.decodingError("unknown activation \"\(kind)\"", at: c.codingPath + [CodingKeys.kind])
            }
            try decoder.rejectUnknownKeys(allowed: activation == .leakyRelu ? ["kind", "leakySlope"] : ["kind"])
            self.activation = activation
            leakySlope = try c.decodeNumberIfPresent(forKey: .leakySlope)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(activation.rawValue, forKey: .kind)
            try c.encodeIfPresent(leakySlope, forKey: .leakySlope)
        }

        public func build(input: TensorShape, defaults: LayerDefaults) throws -> any Layer {
            try ActivationLayer(activation, shape: input, leakySlope: leakySlope ?? defaults.leakySlope)
        }
    }
}

extension ActivationLayer: EventSweepLayer {
    public var sweepCovered: Bool { activation == .relu || activation == .leakyRelu || activation == .identity }

    /// Relu and leaky relu rectify (the forward pass's rule: slope 1 above 0, else 0 or α); the
    /// identity maps; the smooth activations are not polynomial along a segment (nil).
    public var sweepStage: SweepStage? {
        switch activation {
        case .relu: return .rectifier(slope: 0)
        case .leakyRelu: return .rectifier(slope: leakySlope)
        case .identity: return .linear(.identity(inputShape.count))
        default: return nil
        }
    }
}
