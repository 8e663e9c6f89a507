import PKNetworks
import PKNumerics

/// What an analysis computes; the key under which its result is stored in the trace.
public struct AnalysisSettings: Codable, Sendable, Equatable, Hashable {
    public enum Queries: String, Codable, Sendable, CaseIterable { case test, train, both }
    /// Compute precision of the kernel side.
    public enum Precision: String, Codable, Sendable, CaseIterable {
        /// Everything in float64.
        case f64
        /// Tangent features, kernels and the reconstruction's JVPs in float32; every path sum
        /// (K^p, N, the reconstruction) accumulated in float64.
        case f32
    }
    /// How much is computed.
    public enum Scope: String, Codable, Sendable, CaseIterable {
        /// Every kernel machine, the dynamics and the attribution; training points are queries too.
        case full
        /// The exact decomposition, the path kernel K^p(test, X) and path-km on held-out queries
        /// only: no training-point queries, no NTK machines, no dynamics.
        case exact
    }
    /// How each segment's integral is computed (path-kernel math §1, §1.1, §7).
    public enum Quadrature: String, Codable, Sendable, CaseIterable {
        /// Exact for piecewise-linear networks (relu, leaky-relu MLPs; layer networks of dense,
        /// conv2d, relu, leaky-relu, max and average pooling, flatten, residual blocks) on every
        /// kernel route: each query's breakpoints on the segment, and on each piece the
        /// Gauss–Legendre rule exact for its degree (for layer networks the event sweep covers,
        /// `LayerNetwork.segmentSweptJacobians`: each query's integral by its events).
        case exact
        /// Gauss–Legendre with `nodes` nodes on the whole segment.
        case gauss
        /// Globally adaptive Gauss–Legendre to `adaptiveTolerance` (needs it).
        case adaptive
    }
    /// nil (default): `adaptive` with `--adaptive`, else `exact` where it applies (a
    /// piecewise-linear network, as `exact` says), else `gauss`. (Optional so that the stored keys of
    /// analyses made without it stay the same.)
    public var quadrature: Quadrature? = nil
    /// Gauss–Legendre nodes per segment (or per sub-segment in adaptive mode; exact quadrature
    /// chooses its own).
    public var nodes: Int = 4
    /// Adaptive mode: target for the reconstruction error summed over all steps (output units);
    /// nil = fixed `nodes` per segment.
    public var adaptiveTolerance: Double? = nil
    /// Adaptive mode: at most this many nodes per segment (nil: `defaultMaxAdaptiveNodes`, 256);
    /// when reached the analysis goes on with the nodes it has and says so.
    public var maxNodes: Int? = nil
    /// Which splits' fidelity is reported. Training points are always queries internally
    /// (`path-krr` and `path-km-self` need the path kernel between training points).
    public var queries: Queries = .both
    /// At most this many held-out queries (the first ones); nil = all.
    public var maxQueries: Int? = nil
    /// `full` C×C blocks or their trace. nil = `full` for C = 1 or small problems, else `trace`.
    public var kernel: KernelMode? = nil
    /// Relative ridge ρ: λ = ρ · tr(K(X, X))/n.
    public var ridge: Double = 1e-6
    public var precision: Precision = .f64
    public var scope: Scope = .full
    /// Momentum runs: nil (default) sums the two-time kernel exactly, backwards in time (§5);
    /// a value uses the windowed sum, where earlier steps leave once μ^{t−s} is below it.
    public var momentumTolerance: Double? = nil
    /// Analyze a trace whose stored weights are not the recorded steps (step check above its
    /// tolerance), continuing from the stored weights; the report is marked. nil/false: an error.
    /// (Optional so that the stored keys of analyses made without it stay the same.)
    public var allowInconsistentSteps: Bool? = nil

    public init(nodes: Int = 4, adaptiveTolerance: Double? = nil, queries: Queries = .both, maxQueries: Int? = nil,
                kernel: KernelMode? = nil, ridge: Double = 1e-6, precision: Precision = .f64, scope: Scope = .full) {
        self.nodes = nodes
        self.adaptiveTolerance = adaptiveTolerance
        self.queries = queries
        self.maxQueries = maxQueries
        self.kernel = kernel
        self.ridge = ridge
        self.precision = precision
        self.scope = scope
    }

    /// The allowed values of each setting (the command line's options check the same ranges).
    public static let nodesRange = 1...64
    public static let maxQueriesRange = 1...ConfigLimits.maxExamples
    public static let adaptiveRange = NumberRange.above(0)
    public static let maxNodesRange = 2...1_000_000
    public static let ridgeRange = NumberRange.atLeast(0)
    public static let momentumToleranceRange = NumberRange.between(0, 1)

    public func validate() throws {
        guard Self.nodesRange.contains(nodes) else {
            throw AnalysisError("--nodes must be \(ConfigLimits.describe(Self.nodesRange)), got \(nodes)")
        }
        if let t = adaptiveTolerance, !Self.adaptiveRange.contains(t) {
            throw AnalysisError("--adaptive must be \(Self.adaptiveRange) (a tolerance in output units), got \(t)")
        }
        if let m = maxNodes, !Self.maxNodesRange.contains(m) {
            throw AnalysisError("--max-nodes must be \(ConfigLimits.describe(Self.maxNodesRange)), got \(m)")
        }
        if maxNodes != nil && adaptiveTolerance == nil { throw AnalysisError("--max-nodes bounds adaptive quadrature: pass --adaptive TOL too") }
        if quadrature == .adaptive && adaptiveTolerance == nil {
            throw AnalysisError("--quadrature adaptive needs its tolerance: pass --adaptive TOL too")
        }
        if let q = quadrature, q != .adaptive, adaptiveTolerance != nil {
            throw AnalysisError("--adaptive sets the tolerance of --quadrature adaptive, not of --quadrature \(q.rawValue): drop one of them")
        }
        if let m = maxQueries, !Self.maxQueriesRange.contains(m) {
            throw AnalysisError("--max-queries must be \(ConfigLimits.describe(Self.maxQueriesRange)), got \(m)")
        }
        guard Self.ridgeRange.contains(ridge) else { throw AnalysisError("--ridge must be \(Self.ridgeRange), got \(ridge)") }
        if let m = momentumTolerance, !Self.momentumToleranceRange.contains(m) {
            throw AnalysisError("--momentum-tolerance must be \(Self.momentumToleranceRange), got \(m)")
        }
        if scope == .exact && queries != .test { throw AnalysisError("--scope exact analyzes held-out queries only: pass --queries test") }
    }
}
