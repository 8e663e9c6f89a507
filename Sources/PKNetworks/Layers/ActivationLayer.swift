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

    public func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent: [S], cache: LayerCache) -> DenseMatrix<S>? {
        let c = cache.contents(as: Cache<S>.self)
        return inputTangent?.hadamard(c.derivatives)
    }
}
