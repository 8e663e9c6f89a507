import PKNumerics

/// A network as training, replay and the analyzer use it: a function `f(x; w)` of a flat
/// parameter vector, with its derivatives and its tangent features. Two kinds exist:
///
/// - `MLP` (`{"kind": "mlp"}`): the dense network, with structured tangent features (one factor
///   block per dense layer, `TangentFeatures`), fused forward-mode JVPs and its own fast pullback;
/// - `LayerNetwork` (`{"kind": "sequential"}`): any composition of `Layer`s (convolution, pooling,
///   layer norm, residual blocks, per-layer activations), whose tangent features are its explicit
///   per-example Jacobian rows (`Layer.jacobians`): the generic exact route, correct for every
///   layer, as fast as the Jacobians are.
///
/// `Network.make(spec)` builds the one a `ModelSpec` names. Everything downstream (the trainer,
/// `GradientTransformation.step`, the analyzer's kernel routes) takes `any Network`.
///
/// Shapes: `x` is `n × inputDim` (images flattened NCHW), outputs and output cotangents
/// `n × outputDim`, parameters and tangents `parameterCount` scalars in `layout` order.
public protocol Network: Sendable {
    /// The spec the network was built from (written into traces).
    var spec: ModelSpec { get }
    /// Scalars of one input example (`C·H·W` for images).
    var inputDim: Int { get }
    /// Number of outputs C.
    var outputDim: Int { get }
    var parameterCount: Int { get }
    /// The parameter tensors in flattening order (recorded in traces).
    var layout: [ParameterTensor] { get }
    /// True when the network has kinks (ReLU, leaky ReLU, max pooling): path integrals need
    /// kink-aware quadrature.
    var isPiecewiseLinear: Bool { get }
    /// One line for reports: `MLP 2-64-1 tanh`, `conv2d(8, 3×3) relu maxpool2d(2) … dense(10)`.
    var summary: String { get }
    /// The factor blocks of `tangentFeatures`, in order: block `l` is a `DenseLayer` whose weight
    /// `[outputs, inputs]` sits at `weightOffset` (and bias at `biasOffset`), so that
    /// `∂f_c/∂W_l[i, k] = s_W δ_{l,c}[i] a_l[k]` with `a_l = features.inputs[l]` and
    /// `δ_{l,c} = features.signals[l]`. The MLP's dense layers; for a `LayerNetwork` one block of
    /// `P` outputs and one input fixed at 1 (the Jacobian rows themselves).
    var featureBlocks: [DenseLayer] { get }
    /// Scalars that `tangentFeatures` keeps per example (all channels): sizes query blocks.
    var featureScalarsPerExample: Int { get }
    /// Scalars of activations one example keeps in a forward pass with its cache (memory limits).
    var activationsPerExample: Int { get }
    /// One example's tangent features (all C channels, with a JVP) in flop-equivalents at the
    /// GEMM rate: the analyzer's cost model for progress and ETAs (never a result).
    var featureCostPerExample: Double { get }
    /// Per smooth activation (tanh, sigmoid, gelu, erf, softplus: a transcendental function per
    /// unit), the units one example's forward pass evaluates it on: the cost model prices them at
    /// the rate measured on this machine (`featureCostPerExample` counts GEMM work only).
    var smoothActivationUnits: [Activation: Int] { get }

    /// Initial parameters, a deterministic function of `seed` (`Docs/networks.md`, Initialization).
    func initialParameters(seed: UInt64) -> [Double]
    /// `f(x_r; w)` for every row (`n × outputDim`).
    func forward(_ w: [Double], _ x: Matrix) -> Matrix
    /// The outputs and a pullback sharing one forward pass: `pullback(u) = vjp(w, x, cotangent: u)`.
    func forwardWithPullback(_ w: [Double], _ x: Matrix) -> (output: Matrix, pullback: @Sendable (Matrix) -> [Double])
    /// `∂/∂w Σ_r ⟨cotangent[r, :], f(x_r; w)⟩` (`parameterCount` scalars).
    func vjp(_ w: [Double], _ x: Matrix, cotangent: Matrix) -> [Double]
    /// `J(x_r; w)·v` for every row (`n × outputDim`).
    func jvp(_ w: [Double], _ x: Matrix, tangent v: [Double]) -> Matrix
    /// Per-example Jacobians, `(n·C) × P`, row `r·C + c` = `∂f_c(x_r; w)/∂w`.
    func jacobians(_ w: [Double], _ x: Matrix) -> Matrix
    /// The tangent features of every row of `x` at `w` in precision `S` (`TangentFeatures`,
    /// blocks as `featureBlocks`), with `J(x; w)·v` for each of `tangents` in `outputTangents`.
    func tangentFeatures<S: BLASScalar>(_ w: [Double], _ x: Matrix, as: S.Type, tangents: [[Double]]) -> TangentFeatures<S>
    /// Which side of each kink every example is on at `w` (ReLU signs, max-pool arg-maxes), as
    /// numbers: equal patterns at two weights mean no kink was crossed between them along a
    /// segment on which the pattern is monotone (adaptive quadrature's test). Empty for smooth networks.
    func kinkPattern(_ w: [Double], _ x: Matrix) -> [Double]

    /// The degree in t of `J(x; w + tΔw)` between the breakpoints of `segmentBreakpoints`, when
    /// exact quadrature through the kinks applies (path-kernel math §1.1): the network has kinks
    /// and is piecewise polynomial along a segment (MLP: relu or leaky-relu, degree L − 1; layer
    /// network: every layer has a `segmentDegree`, degree D − 1 with D the network's). nil otherwise.
    var piecewiseJacobianDegree: Int? { get }
    /// Per row of `x`, the t in (0, 1), ascending, where the network's pattern changes along
    /// `w(t) = start + t·delta` (a relu input's sign, a max-pooling window's arg-max): between
    /// them `J(x; w(t))` is a polynomial of degree `piecewiseJacobianDegree`. Empty lists when
    /// that is nil.
    func segmentBreakpoints(start: [Double], delta: [Double], _ x: Matrix) -> [[Double]]
    /// Tangent features (as `tangentFeatures`, with the JVPs of `tangents`) of row r of `x` at its
    /// own point `start + t[r]·delta` of the segment, in precision `S`: what per-query
    /// quadrature nodes need. Agrees with `tangentFeatures` at each row's point to round-off.
    func segmentFeatures<S: BLASScalar>(start: [Double], delta: [Double], _ x: Matrix, at t: [Double],
                                        as: S.Type, tangents: [[Double]]) -> TangentFeatures<S>
}

extension Network {
    /// `(name, count)` of every parameter tensor in layout order (what an optimizer with
    /// parameter groups needs to place them).
    public var parameterTensors: [(name: String, count: Int)] { layout.map { ($0.name, $0.count) } }

    /// Tangent features in float64 without tangents.
    public func features(_ w: [Double], _ x: Matrix) -> TangentFeatures<Double> {
        tangentFeatures(w, x, as: Double.self, tangents: [])
    }

    /// Checks `w` and `x` against the network's sizes (a programming error otherwise).
    func checkSizes(_ w: [Double], _ x: Matrix, function: StaticString = #function) {
        precondition(w.count == parameterCount, "\(function): \(w.count) parameters, the network has \(parameterCount)")
        precondition(x.cols == inputDim, "\(function): inputs have \(x.cols) columns, the network takes \(inputDim)")
    }
}

/// Builds the network a spec names.
public enum Networks {
    /// `MLP` for `{"kind": "mlp"}`, `LayerNetwork` for `{"kind": "sequential"}`; throws a
    /// `ModelSpecError` naming the first bad setting.
    public static func make(_ spec: ModelSpec) throws -> any Network {
        switch spec.kind {
        case "sequential": return try LayerNetwork(spec: spec)
        default: return try MLP(spec: spec)
        }
    }
}

extension MLP: Network {
    public var isPiecewiseLinear: Bool { [.relu, .leakyRelu].contains(activation) && depth > 1 }
    public var summary: String { "MLP \(spec.layers.map(String.init).joined(separator: "-")) \(activation.rawValue)" }
    public var featureBlocks: [DenseLayer] { layers }
    public var featureScalarsPerExample: Int { layers.reduce(0) { $0 + $1.inputs + outputDim * $1.outputs } }
    public var activationsPerExample: Int { spec.layers.reduce(0, +) }
    /// The GEMM flops `featureRows` spends per example: the forward pass `2F`, one JVP
    /// `2(2F − F_0)` (the input has no tangent) and the C stacked backward passes
    /// (`featureCostWithoutTangents`), with `F_l = in_l·out_l` and `F = Σ_l F_l`. (Until session
    /// 11 `2·P·(2 + C)`, which counted the first layer's and the last layer's weights in every
    /// backward pass: 2.6 times too much on fmnist-mlp, C = 10.)
    public var featureCostPerExample: Double {
        let F = layers.reduce(0.0) { $0 + Double($1.inputs * $1.outputs) }
        return featureCostWithoutTangents + 2 * (2 * F - Double(layers[0].inputs * layers[0].outputs))
    }

    /// The forward pass `2F` and the C stacked backward passes `2C·Σ_{0<l<L−1} F_l` per example:
    /// the last layer's signals are written out from its weights (no GEMM) and the first layer's
    /// are not propagated to the input (Docs/path-kernel.md §7).
    public var featureCostWithoutTangents: Double {
        let F = layers.reduce(0.0) { $0 + Double($1.inputs * $1.outputs) }
        let inner = layers.dropFirst().dropLast().reduce(0.0) { $0 + Double($1.inputs * $1.outputs) }
        return 2 * F + 2 * Double(outputDim) * inner
    }
    /// Every hidden unit when the activation is smooth.
    public var smoothActivationUnits: [Activation: Int] {
        activation.isSmooth ? [activation: spec.layers.dropFirst().dropLast().reduce(0, +)] : [:]
    }

    public func kinkPattern(_ w: [Double], _ x: Matrix) -> [Double] {
        isPiecewiseLinear ? forwardCache(w, x).activationDerivatives.flatMap(\.data) : []
    }

    /// `segmentJacobianDegree` (L − 1) for relu and leaky-relu.
    public var piecewiseJacobianDegree: Int? { isPiecewiseLinear ? segmentJacobianDegree : nil }
}
