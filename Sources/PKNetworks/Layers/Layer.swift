import PKNumerics

/// One kind of network layer: its parameter tensors, its shapes, and its forward pass, pullback
/// (VJP) and tangent rule (JVP) side by side, in one file per kind (in the spirit of
/// neural-tangents' stax, where each layer is an `(init_fn, apply_fn, kernel_fn)` triple, and of
/// micrograd, where each op's `_backward` sits next to its forward).
///
/// A layer value is resolved: it knows the shape of one input example (`inputShape`: `[d]`, or
/// `[C, H, W]` for images) and hence its output shape and its parameter shapes. Composition
/// (`Sequential`, `Residual`) checks that shapes chain and defines the parameter flattening order:
/// the concatenation of the children's tensors in composition order (`Docs/networks.md`, "Layers").
///
/// Shapes of the calls, for a batch of `n` examples (`DenseMatrix` rows are examples, images
/// flattened in NCHW order, `TensorShape`):
///
/// | value | shape |
/// | --- | --- |
/// | `x`, input cotangent, `ẋ` | `n × inputShape.count` |
/// | `f(x; w)`, output cotangent `u`, output tangent | `n × outputShape.count` |
/// | `w`, parameter gradient, `ẇ` | `parameterCount` scalars: the tensors of `parameters` in order, each row-major |
///
/// The contract every kind keeps (checked for each one in `Tests/PKNetworksTests/LayerDerivativeTests.swift`):
/// - `forward(x, w)` returns `f(x; w)` and a cache; `apply(x, w)` returns the same output.
/// - `pullback(u, cache)` returns `∂/∂x Σ_r ⟨u[r], f(x_r; w)⟩` (when `needsInputCotangent`, else
///   nil) and `∂/∂w Σ_r ⟨u[r], f(x_r; w)⟩`.
/// - `jvp(ẋ, ẇ, cache)` returns `∂f/∂x · ẋ + ∂f/∂w · ẇ`; a nil `ẋ` means zero, and a nil result
///   means zero (only layers without parameters return it, for a nil `ẋ`).
/// - Row `r` of every result depends on row `r` of `x`, `u` and `ẋ` alone: per-example Jacobians
///   exist. (So BatchNorm in training mode cannot be a layer.)
/// - `pullbackRows` gives row by row what `pullback` sums over the rows (optional: the protocol's
///   default derives it from `forward` and `pullback`; checked against `jacobiansOneByOne` in
///   `Tests/PKNetworksTests/LayerBatchedJacobianTests.swift`).
///
/// The scalar type `S` is the compute precision (`Double`, or `Float` for the f32 kernels); the
/// layer's own constants (scales, `ε`) are `Double` and rounded once to `S`.
public protocol Layer: Sendable {
    /// Shape of one input example.
    var inputShape: TensorShape { get }
    /// Shape of one output example, a function of `inputShape` and the layer's settings.
    var outputShape: TensorShape { get }
    /// The layer's parameter tensors in flattening order, names relative to the layer.
    var parameters: [LayerParameter] { get }
    /// True when the layer is piecewise linear with kinks: its Jacobian jumps across boundaries
    /// in input or weight space (ReLU, leaky ReLU, max pooling). Path integrals through such a
    /// layer need kink-aware quadrature. Smooth layers, linear ones included, say false.
    var isPiecewiseLinear: Bool { get }

    /// `f(x; w)` (`n × outputShape.count`) and what `pullback` and `jvp` need.
    func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache)
    /// `f(x; w)` alone (a layer may skip what only the derivatives need).
    func apply<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> DenseMatrix<S>
    /// Reverse mode: the cotangents of the input (nil unless `needsInputCotangent`) and of the
    /// parameters (`parameterCount` scalars) for the output cotangent `u`.
    func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool)
        -> (input: DenseMatrix<S>?, parameters: [S])
    /// Forward mode: the output tangent for an input tangent (nil: zero) and a parameter tangent
    /// (`parameterCount` scalars) at the point `cache` was made at; nil when it is zero.
    func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent: [S], cache: LayerCache) -> DenseMatrix<S>?
    /// `f(x; w)`, appending to `pattern` which side of each of the layer's kinks every example is
    /// on (a piecewise-linear layer: the sign of each ReLU input, the arg-max of each max-pooling
    /// window; combinators their children's, in order). Equal patterns at the ends of a segment
    /// mean no kink was crossed (adaptive quadrature's test, `Network.kinkPattern`). The default,
    /// for smooth layers: `apply`, nothing appended.
    func kinkPattern(_ x: Matrix, parameters w: [Double], into pattern: inout [Double]) -> Matrix
    /// The degree in t that the layer adds to its input's along a weight segment `w + tΔw` on
    /// which its pattern is fixed (path-kernel math §1.1, "Layer networks"): 1 for a layer
    /// bilinear in its input and weights plus a bias (dense, convolution), 0 for a linear or
    /// piecewise-linear layer without parameters (pooling, flatten, relu, leaky relu, identity);
    /// `Sequential` the sum of its children's, `Residual` the larger of its branches'. nil, the
    /// default: the layer is not piecewise polynomial along a segment (tanh, gelu, layer norm …),
    /// and exact quadrature does not apply to a network that contains it.
    var segmentDegree: Int? { get }
    /// `input` (the polynomials in t of this layer's input on pieces of the segment
    /// `w + tΔw`, `w` and `v = Δw` this layer's slices) carried through the layer: the output's
    /// polynomials, one degree higher per `segmentDegree`, the rows cut where the layer's own
    /// pattern changes (a ReLU input's sign, a max-pooling window's arg-max), so that on every
    /// output row every piecewise-linear layer so far keeps its pattern. nil exactly when
    /// `segmentDegree` is (the default).
    func segmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double]) -> SegmentPieces?
    /// Multiply-adds ×2 of one example's forward pass, roughly (progress estimates only, never a
    /// result). The default, `2·parameterCount + 4·(input + output scalars)`, fits dense,
    /// elementwise and normalization layers; a layer that reuses its weights (a convolution) says
    /// its own.
    var forwardFlops: Double { get }

    /// Reverse mode one cotangent row at a time, for per-example Jacobians (`jacobians(_:_:)`):
    /// `cache` was made by `forward` on a batch `x` of `n` rows, and `cotangent` has `n·repeats`
    /// rows, row `i` a cotangent `u_i` for example `x_{i / repeats}`. Writes into `parameterRows`
    /// row `i` the `parameterCount` scalars `∂/∂w ⟨u_i, f(x_{i / repeats}; w)⟩` (not summed over
    /// rows), and returns the `n·repeats`-row input cotangent, row `i` = `∂/∂x ⟨u_i, f(x; w)⟩` at
    /// `x_{i / repeats}` (nil unless `needsInputCotangent`).
    ///
    /// `w` are the parameters `cache` was made with, and `input` gives `x` on demand. A default
    /// implementation exists (it needs `input`): a layer without parameters runs `repeats` batch
    /// pullbacks; a layer with parameters runs each example alone (one 1-row forward, `repeats`
    /// 1-row pullbacks). Kinds with their own rule (every kind in this module) never call `input`.
    func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                     input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                     parameterRows: ParameterRows<S>) -> DenseMatrix<S>?
}

extension Layer {
    public var forwardFlops: Double { 2 * Double(parameterCount) + 4 * Double(inputShape.count + outputShape.count) }

    public func kinkPattern(_ x: Matrix, parameters w: [Double], into pattern: inout [Double]) -> Matrix {
        apply(x, parameters: w)
    }

    public var segmentDegree: Int? { nil }

    public func segmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double]) -> SegmentPieces? { nil }

    public func apply<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> DenseMatrix<S> {
        forward(x, parameters: w).output
    }

    /// Number of parameter scalars (the sum of the tensors' counts).
    public var parameterCount: Int { parameters.scalarCount }

    /// Stops with a message when `x` or `w` do not fit this layer.
    func checkArguments<S>(_ x: DenseMatrix<S>, _ w: [S], function: StaticString = #function) {
        precondition(x.cols == inputShape.count,
                     "\(Self.self).\(function): input has \(x.cols) columns, the layer takes \(inputShape) = \(inputShape.count)")
        precondition(w.count == parameterCount,
                     "\(Self.self).\(function): \(w.count) parameters, the layer has \(parameterCount)")
    }
}

/// A layer that cannot be built as asked, described in one line (which setting, what is allowed),
/// with where it sits in a JSON layer list (`layers[1].block.layers[0]: conv2d: …`).
public struct LayerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The place in a layer list, outermost first (`["layers[1]", "block"]`); empty for a layer built directly.
    public let path: [String]
    public let message: String

    public init(_ message: String) {
        self.path = []
        self.message = message
    }

    init(path: [String], message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path.joined(separator: ".")): \(message)" }

    /// The same error one level further out: `component` prepended to the path.
    public func within(_ component: String) -> LayerError { LayerError(path: [component] + path, message: message) }
}

extension Parameterization {
    /// `(forward scale, initial standard deviation)` of a weight with fan-in `fanIn` (`Docs/networks.md`):
    /// `ntk`: `(σ_w/√fanIn, 1)`; `standard`: `(1, σ_w/√fanIn)`. The same expressions as `MLP`.
    func weightScaling(sigmaW: Double, fanIn: Int) -> (forwardScale: Double, standardDeviation: Double) {
        self == .ntk ? (sigmaW / Double(fanIn).squareRoot(), 1) : (1, sigmaW / Double(fanIn).squareRoot())
    }

    /// `(forward scale, initial standard deviation)` of a bias: `ntk`: `(σ_b, 1)`; `standard`: `(1, σ_b)`.
    func biasScaling(sigmaB: Double) -> (forwardScale: Double, standardDeviation: Double) {
        self == .ntk ? (sigmaB, 1) : (1, sigmaB)
    }
}

/// Checks shared by the layers that have weights: `σ_w > 0`, `σ_b ≥ 0`, both finite.
func checkScales(sigmaW: Double, sigmaB: Double, layer: String) throws {
    guard sigmaW > 0, sigmaW.isFinite else { throw LayerError("\(layer): sigmaW must be a positive number, got \(sigmaW)") }
    guard sigmaB >= 0, sigmaB.isFinite else { throw LayerError("\(layer): sigmaB must be ≥ 0, got \(sigmaB)") }
}
