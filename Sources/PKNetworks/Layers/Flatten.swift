import PKNumerics

/// Flattens an example to a feature vector: `[C, H, W]` (or any shape) → `[C·H·W]`.
///
/// Batches are already stored flattened in NCHW order (`TensorShape`), so this is the identity
/// on the numbers and changes only the shape, like PyTorch's `nn.Flatten()` (which flattens
/// `C, H, W` in that order). No parameters; the pullback and the tangent are the identity.
public struct Flatten: Layer {
    public let inputShape: TensorShape

    public init(inputShape: TensorShape) throws {
        guard inputShape.isValid else { throw LayerError("flatten: input shape \(inputShape) must have positive sizes") }
        self.inputShape = inputShape
    }

    public var outputShape: TensorShape { .features(inputShape.count) }
    public var parameters: [LayerParameter] { [] }
    public var isPiecewiseLinear: Bool { false }
    /// Linear, no parameters: the degree is kept and the coefficients pooled (`linearSegmentPieces`).
    public var segmentDegree: Int? { 0 }

    public func segmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double]) -> SegmentPieces? {
        linearSegmentPieces(input)
    }

    public func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache) {
        checkArguments(x, w)
        return (x, .empty)
    }

    public func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool)
        -> (input: DenseMatrix<S>?, parameters: [S]) {
        (needsInputCotangent ? cotangent : nil, [])
    }

    public func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent: [S], cache: LayerCache) -> DenseMatrix<S>? {
        inputTangent
    }

    /// The identity, row by row; no parameters.
    public func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                            input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                            parameterRows: ParameterRows<S>) -> DenseMatrix<S>? {
        needsInputCotangent ? cotangent : nil
    }
}

// MARK: - JSON

extension Flatten {
    /// `{"kind": "flatten"}`.
    public struct Specification: LayerSpecification {
        public static let kinds = ["flatten"]
        public init() {}
        enum CodingKeys: String, CodingKey, CaseIterable { case kind }

        public init(from decoder: Decoder) throws { try decoder.rejectUnknownKeys(CodingKeys.self) }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode("flatten", forKey: .kind)
        }

        public func build(input: TensorShape, defaults: LayerDefaults) throws -> any Layer { try Flatten(inputShape: input) }
    }
}

extension Flatten: EventSweepLayer {
    /// The identity on the numbers.
    public var sweepStage: SweepStage? { .linear(.identity(inputShape.count)) }
}
