import PKNumerics

/// Global average pooling: the mean of each channel over all positions, `[C, H, W]` → `[C]`.
///
/// `y[c] = (1/(H·W)) Σ_{y,x} x[c, y, x]`. PyTorch writes it `nn.AdaptiveAvgPool2d(1)` (output
/// `[C, 1, 1]`) followed by `nn.Flatten()`; this layer is both (neural-tangents
/// `stax.GlobalAvgPool` also outputs `[C]`). No parameters; linear, so the tangent is the layer
/// applied to `ẋ` and the pullback spreads `u[c]/(H·W)` over channel `c`.
public struct GlobalAvgPool: Layer {
    public let inputShape: TensorShape

    public init(inputShape: TensorShape) throws {
        guard inputShape.image != nil, inputShape.isValid else {
            throw LayerError("globalavgpool: needs an image input [C, H, W], got \(inputShape)")
        }
        self.inputShape = inputShape
    }

    var channels: Int { inputShape.dimensions[0] }
    /// `H·W`.
    var positions: Int { inputShape.dimensions[1] * inputShape.dimensions[2] }

    public var outputShape: TensorShape { .features(channels) }
    public var parameters: [LayerParameter] { [] }
    public var isPiecewiseLinear: Bool { false }
    /// Linear, no parameters: the degree is kept and the coefficients pooled (`linearSegmentPieces`).
    public var segmentDegree: Int? { 0 }

    public func segmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double]) -> SegmentPieces? {
        linearSegmentPieces(input)
    }

    public func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache) {
        checkArguments(x, w)
        return (mean(x), .empty)
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    func mean<S: BLASScalar>(_ x: DenseMatrix<S>) -> DenseMatrix<S> {
        let C = channels, P = positions, divisor = S(positions)
        var y = DenseMatrix<S>(rows: x.rows, cols: C)
        x.data.withUnsafeBufferPointer { xp in
            for r in 0..<x.rows {
                for c in 0..<C {
                    var sum: S = 0
                    let base = (r * C + c) * P
                    for p in 0..<P { sum += xp[base + p] }
                    y.data[r * C + c] = sum / divisor
                }
            }
        }
        return y
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool)
        -> (input: DenseMatrix<S>?, parameters: [S]) {
        guard needsInputCotangent else { return (nil, []) }
        let C = channels, P = positions, divisor = S(positions)
        precondition(cotangent.cols == C, "globalavgpool pullback: cotangent has \(cotangent.cols) columns, outputs have \(C)")
        var dx = DenseMatrix<S>(rows: cotangent.rows, cols: C * P)
        for r in 0..<cotangent.rows {
            for c in 0..<C {
                let share = cotangent.data[r * C + c] / divisor
                for p in 0..<P { dx.data[(r * C + c) * P + p] = share }
            }
        }
        return (dx, [])
    }

    /// The pullback itself, which keeps no cache and treats rows alike: linear, no parameters.
    public func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                            input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                            parameterRows: ParameterRows<S>) -> DenseMatrix<S>? {
        pullback(cotangent, cache: cache, needsInputCotangent: needsInputCotangent).input
    }

    public func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent: [S], cache: LayerCache) -> DenseMatrix<S>? {
        inputTangent.map { mean($0) }
    }
}

// MARK: - JSON

extension GlobalAvgPool {
    /// `{"kind": "globalavgpool"}`.
    public struct Specification: LayerSpecification {
        public static let kinds = ["globalavgpool"]
        public init() {}
        enum CodingKeys: String, CodingKey, CaseIterable { case kind }

        public init(from decoder: Decoder) throws { try decoder.rejectUnknownKeys(CodingKeys.self) }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode("globalavgpool", forKey: .kind)
        }

        public func build(input: TensorShape, defaults: LayerDefaults) throws -> any Layer { try GlobalAvgPool(inputShape: input) }
    }
}
