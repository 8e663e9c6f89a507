/// Everything an analysis found: what `pathkernel report` prints and what the trace stores.
/// Encoded with snake_case keys (`pathkernel report --format json`, Docs/cli.md). Every number is defined in
/// `Docs/path-kernel.md` (the math contract).
public struct AnalysisResult: Codable, Sendable {
    public struct Settings: Codable, Sendable, Equatable {
        public var nodes: Int
        public var adaptiveTolerance: Double?
        public var queries: String
        public var maxQueries: Int?
        public var kernel: String
        public var ridge: Double
        /// Compute precision ("f64" or "f32"); nil in results from before it existed (f64).
        public var precision: String?
        /// "full" or "exact" (see `AnalysisSettings.Scope`); nil in older results (full).
        public var scope: String?
        /// The path kernel the analysis used for this run's optimizer (math §2, §5), or how the
        /// decomposition was computed without one; nil in older results.
        public var pathKernel: String?
        /// "exact" when each query was integrated through its kinks (math §1.1); nil: Gauss–Legendre
        /// with `nodes` per step (adaptive when `adaptiveTolerance` is set), as in older results.
        public var quadrature: String?
    }

    public struct Run: Codable, Sendable {
        public var name: String
        public var model: String
        public var parameterCount: Int
        public var task: String
        public var loss: String
        public var optimizer: String
        public var status: String
        public var precision: String
        public var steps: Int
        public var trainCount: Int
        public var testQueries: Int
        public var outputs: Int
        public var networkTrainAccuracy: Double?
        public var networkTestAccuracy: Double?
        public var notes: [String]
    }

    public struct Replay: Codable, Sendable {
        /// How the weights along the path were obtained and checked: "every step stored, each
        /// recomputed and compared", "replayed between checkpoints every k steps, compared at
        /// each", or checkpoint resolution (nothing recomputed).
        public var mode: String
        public var checkpointEvery: Int
        /// Largest relative mismatch between a replayed and a stored checkpoint (0 when nothing was replayed).
        public var largestMismatch: Double
        public var tolerance: Double
        /// The step t whose update w_t → w_{t+1} had the largest mismatch; nil when nothing was
        /// compared (or in results from before the step check).
        public var worstStep: Int?
        /// Stored weight vectors compared with recomputed ones (every step when each is stored);
        /// 0 at checkpoint resolution (nothing can be recomputed); nil in older results.
        public var checkedSteps: Int?
        /// True when the mismatch exceeded the tolerance and the analysis went on
        /// (`--allow-inconsistent-steps`): the stored weights are not gradient steps of the
        /// recorded loss and optimizer, and the kernel form does not describe the run.
        public var inconsistent: Bool?

        public init(mode: String, checkpointEvery: Int, largestMismatch: Double, tolerance: Double,
                    worstStep: Int? = nil, checkedSteps: Int? = nil, inconsistent: Bool? = nil) {
            self.mode = mode
            self.checkpointEvery = checkpointEvery
            self.largestMismatch = largestMismatch
            self.tolerance = tolerance
            self.worstStep = worstStep
            self.checkedSteps = checkedSteps
            self.inconsistent = inconsistent
        }
    }

    public struct Residual: Codable, Sendable {
        /// ‖f_T − f_0 − Σ_t J̄_t Δw_t‖_F / ‖f_T − f_0‖_F over the split's queries.
        public var relativeResidual: Double
        /// max |f_T − f_0 − Σ_t J̄_t Δw_t|.
        public var maxAbsResidual: Double
        /// max |f_T − exact| where `exact` is the kernel form f_0 − Σ_i K̄g + R_wd (checks the
        /// kernel accumulation against the JVP form).
        public var kernelFormMaxAbs: Double
    }

    public struct Reconstruction: Codable, Sendable {
        public var train: Residual?
        public var test: Residual?
        /// Gauss–Legendre evaluations per segment (mean) and the largest split depth (adaptive).
        public var meanNodesPerStep: Double
        public var maxDepth: Int
        /// Exact quadrature's figures (math §1.1); nil with the Gauss rules.
        public var exact: ExactQuadrature?
    }

    /// What exact quadrature did (math §1.1): the rule per piece and how often queries crossed kinks.
    public struct ExactQuadrature: Codable, Sendable {
        /// Gauss–Legendre nodes per piece between breakpoints (and on the kink-free segments).
        public var nodesPerPiece: Int
        /// Share of the (query, step) pairs whose segment holds at least one breakpoint.
        public var kinkedShare: Double
        /// Mean breakpoints of those pairs.
        public var breakpointsPerKinkedPair: Double
        /// Mean node evaluations per query and step (all pairs); 0 with the event sweep.
        public var nodesPerQueryStep: Double
        /// The event sweep (a layer network it covers, `LayerNetwork.segmentSweptJacobians`): mean
        /// events per query and step that changed J, and silent ones; nil on the node route.
        public var sweepEventsPerQueryStep: Double?
        public var sweepSilentPerQueryStep: Double?

        public init(nodesPerPiece: Int, kinkedShare: Double, breakpointsPerKinkedPair: Double, nodesPerQueryStep: Double,
                    sweepEventsPerQueryStep: Double? = nil, sweepSilentPerQueryStep: Double? = nil) {
            self.nodesPerPiece = nodesPerPiece
            self.kinkedShare = kinkedShare
            self.breakpointsPerKinkedPair = breakpointsPerKinkedPair
            self.nodesPerQueryStep = nodesPerQueryStep
            self.sweepEventsPerQueryStep = sweepEventsPerQueryStep
            self.sweepSilentPerQueryStep = sweepSilentPerQueryStep
        }
    }

    public struct Fidelity: Codable, Sendable {
        public var relativeError: Double
        public var rmse: Double
        public var maxAbsError: Double
        public var r2: Double
        public var pearson: Double
        public var argmaxAgreement: Double?
        public var accuracy: Double?
    }

    public struct KernelMachine: Codable, Sendable {
        public var name: String
        public var description: String
        public var train: Fidelity?
        public var test: Fidelity?
        /// The ridge λ used (ridge machines): `ρ · tr(K₊)/m`, K₊ the PSD part of the symmetrized
        /// training kernel (math: Docs/path-kernel.md §3).
        public var ridge: Double?
        /// Ridge machines: `Σ_{λ_j<0} |λ_j| / Σ_j |λ_j|` of the symmetrized training kernel, the
        /// share of its spectrum discarded with the negative eigenvalues; nil when not measured
        /// (systems solved by Cholesky, older results).
        public var negativeSpectralMass: Double?
        /// Ridge machines: how many eigenvalues were negative (nil when not measured).
        public var negativeEigenvalues: Int?

        public init(name: String, description: String, train: Fidelity?, test: Fidelity?, ridge: Double? = nil,
                    negativeSpectralMass: Double? = nil, negativeEigenvalues: Int? = nil) {
            self.name = name
            self.description = description
            self.train = train
            self.test = test
            self.ridge = ridge
            self.negativeSpectralMass = negativeSpectralMass
            self.negativeEigenvalues = negativeEigenvalues
        }
    }

    public struct DynamicsPoint: Codable, Sendable {
        public var step: Int
        /// 1 − ⟨Θ_0, Θ_t⟩_F / (‖Θ_0‖‖Θ_t‖) on the dynamics subset.
        public var kernelDistance: Double
        /// ⟨Θ_t, YYᵀ⟩_F / (‖Θ_t‖‖YYᵀ‖).
        public var alignment: Double
        /// ‖w_t − w_0‖ / ‖w_0‖.
        public var weightTravel: Double
        /// Relative error of `path-km` built from steps 0..<t against the network at w_t
        /// (held-out queries, or training points when there are none).
        public var pathKmError: Double?
    }

    public struct Support: Codable, Sendable {
        public var trainIndex: Int
        /// ⟨K^p(x, x_i) a_i(x), Δf(x)⟩ / ‖Δf(x)‖²: the part of the change f_T(x) − f_0(x) this example carries.
        public var share: Double
        public var label: Double
    }

    /// One training example's signed contribution to a query's change, in output units (§4).
    public struct Contribution: Codable, Sendable, Equatable {
        public var trainIndex: Int
        /// The component (`Attribution.component`) of `−N(x, i)`.
        public var value: Double
        public var label: Double
    }

    public struct Attribution: Codable, Sendable {
        public var split: String
        public var query: Int
        public var output: [Double]
        public var change: [Double]
        /// The five largest shares of the change (the form before contributions in output units;
        /// kept for readers of the JSON).
        public var top: [Support]
        /// Which scalar of the C outputs the contributions are (Docs/path-kernel.md §4,
        /// Attribution): `output` (C = 1), `class k` (the network's predicted class at w_T), or
        /// `change direction` (regression with C > 1: the projection on (f_T − f_0)/‖f_T − f_0‖).
        /// Nil in results from before it (they have `top` only).
        public var component: String?
        /// f_T(x) − f_0(x) in that component.
        public var componentChange: Double?
        /// Σ_i over every training example of its contribution.
        public var examplesSum: Double?
        /// The number of training examples summed.
        public var examples: Int?
        /// The largest positive contributions, largest first (at most five).
        public var pushedUp: [Contribution]?
        /// The most negative contributions, most negative first (at most five).
        public var pushedDown: [Contribution]?

        public init(split: String, query: Int, output: [Double], change: [Double], top: [Support], component: String? = nil,
                    componentChange: Double? = nil, examplesSum: Double? = nil, examples: Int? = nil,
                    pushedUp: [Contribution]? = nil, pushedDown: [Contribution]? = nil) {
            self.split = split
            self.query = query
            self.output = output
            self.change = change
            self.top = top
            self.component = component
            self.componentChange = componentChange
            self.examplesSum = examplesSum
            self.examples = examples
            self.pushedUp = pushedUp
            self.pushedDown = pushedDown
        }

        /// The examples not listed: `examplesSum` less the listed contributions.
        public var rest: Double? {
            guard let total = examplesSum, let up = pushedUp, let down = pushedDown else { return nil }
            return total - up.reduce(0) { $0 + $1.value } - down.reduce(0) { $0 + $1.value }
        }

        /// What no training example carries: `componentChange − examplesSum` (decoupled weight
        /// decay's part R_wd and the reconstruction residual).
        public var notFromExamples: Double? {
            guard let change = componentChange, let total = examplesSum else { return nil }
            return change - total
        }
    }

    public var settings: Settings
    public var run: Run
    public var replay: Replay
    public var reconstruction: Reconstruction
    public var kernelMachines: [KernelMachine]
    public var dynamics: [DynamicsPoint]
    public var dynamicsSubset: Int
    public var attribution: [Attribution]
    public var seconds: Double
    public var toolVersion: String
    /// The over-parameterization diagnostics (ntk-family contract §5, Docs/ntk-family.md
    /// "Over-parameterization diagnostics"): computed in every full-scope analysis; absent in
    /// scope exact and in results from before them.
    public var diagnostics: Diagnostics? = nil
    /// Set when the analysis was computed in shards and merged (`analyze --shard`, `merge`);
    /// absent otherwise.
    public var sharding: Sharding? = nil

    /// How a sharded analysis was computed (Docs/scale-out.md).
    public struct Sharding: Codable, Sendable {
        /// Shards of the query rows.
        public var shards: Int
        /// CPU seconds (user + system) of all shards together, of the longest shard's wall
        /// time, and of the merge.
        public var shardCpuSeconds: Double
        public var longestShardSeconds: Double
        public var mergeCpuSeconds: Double
    }

    /// Where the run sits between the lazy (kernel) regime and feature learning (ntk-family
    /// contract §5; Docs/path-kernel.md §7 "Over-parameterization diagnostics"). Every figure is
    /// nil when it could not be computed, with the reason in the matching note.
    public struct Diagnostics: Codable, Sendable {
        /// The training points the kernels, their λ_min and the separation are computed on: the
        /// whole training set when it has at most `points` rows, else `points` evenly spaced
        /// ones (the dynamics' subset) — `subset` says which.
        public var points: Int
        public var subset: Bool
        /// Rows of the empirical kernels: `points · C` (C×C blocks, ntk-family §0).
        public var kernelRows: Int
        /// `λ_min(Θ̂_{w_0}(X, X))` and `λ_min(Θ̂_{w_T}(X, X))` (full C×C blocks, symmetrized).
        public var lambdaMinStart: Double?
        public var lambdaMinEnd: Double?
        /// `λ_min(Θ(X, X))` of the analytic NTK of the MLP spec on the same points (ntk-family §1;
        /// `Θ ⊗ I_C` has the same smallest eigenvalue); nil with `analyticNote` saying why
        /// (`analyticNote` also says when the value is at round-off).
        public var analyticLambdaMin: Double?
        public var analyticNote: String?
        /// `δ = min_{i≠j} ‖x̂_i − x̂_j‖` over the same points, `x̂ = x/‖x‖` (zero rows left out;
        /// nil for fewer than two nonzero rows).
        public var separation: Double?
        /// `‖Θ̂_T − Θ̂_0‖_F / ‖Θ̂_0‖_F` and `1 − ⟨Θ̂_0, Θ̂_T⟩_F/(‖Θ̂_0‖‖Θ̂_T‖)` on the same kernels.
        public var kernelChange: Double?
        public var kernelDistance: Double?
        /// Per parameter tensor (an MLP's `layers.l.weight`, `layers.l.bias`), in layout order.
        public var travel: [Travel]
        /// `‖w_T − w_0‖ / ‖w_0‖` over every parameter (nil when `w_0 = 0`).
        public var totalTravel: Double?
        /// Per hidden layer of an MLP; nil with `patternNote` for other networks.
        public var patternChange: [PatternChange]?
        public var patternNote: String?
        /// The held-out loss of the network against two kernel predictors; nil with
        /// `beyondKernelNote` when there are no held-out queries.
        public var beyondKernel: BeyondKernel?
        public var beyondKernelNote: String?
        /// Why a figure above is absent or approximate (kernel or eigen-solver failures).
        public var notes: [String]?

        public init(points: Int, subset: Bool, kernelRows: Int, travel: [Travel]) {
            self.points = points
            self.subset = subset
            self.kernelRows = kernelRows
            self.travel = travel
        }
    }

    /// `‖W_T − W_0‖_F / ‖W_0‖_F` of one parameter tensor on its raw (stored) values.
    public struct Travel: Codable, Sendable, Equatable {
        public var tensor: String
        /// `‖W_T − W_0‖_F` and `‖W_0‖_F`.
        public var change: Double
        public var initialNorm: Double
        /// `change / initialNorm`; nil when `initialNorm = 0` (biases initialized at zero).
        public var relative: Double?

        public init(tensor: String, change: Double, initialNorm: Double, relative: Double?) {
            self.tensor = tensor
            self.change = change
            self.initialNorm = initialNorm
            self.relative = relative
        }
    }

    /// The share of (training example, unit) pairs of one hidden layer whose pre-activation sign
    /// (`z > 0` or not) differs between `w_0` and `w_T`.
    public struct PatternChange: Codable, Sendable, Equatable {
        /// Hidden layer `l = 1 … L−1` (its pre-activation is dense layer `l − 1`'s output).
        public var layer: Int
        public var units: Int
        /// Training examples compared (every one).
        public var examples: Int
        public var flipped: Int
        public var fraction: Double

        public init(layer: Int, units: Int, examples: Int, flipped: Int, fraction: Double) {
            self.layer = layer
            self.units = units
            self.examples = examples
            self.flipped = flipped
            self.fraction = fraction
        }
    }

    /// The run's loss, mean over the analyzed held-out queries, of the network at `w_T` and of
    /// three kernel predictors; a gap is the network's loss minus the predictor's (positive: the
    /// kernel predicts the held-out data better than the trained network). For classification
    /// also each one's held-out accuracy (nil for regression and in older results).
    public struct BeyondKernel: Codable, Sendable {
        public var heldOut: Int
        public var loss: String
        public var networkLoss: Double
        public var networkAccuracy: Double?
        /// `ntk0-lin`: `f_0 + J(·; w_0)(w_T − w_0)`.
        public var linearizationLoss: Double?
        public var linearizationGap: Double?
        public var linearizationAccuracy: Double?
        /// `ntkinf-km`: the analytic (infinite-width) NTK's kernel machine, where the analysis
        /// ran it (its note in the run's notes says why not).
        public var analyticLoss: Double?
        public var analyticGap: Double?
        public var analyticAccuracy: Double?
        /// §2's closed form `f_0(x) + Θ̂_{w_0}(x, X) G_T (Y − F_0)` (discrete GD, T steps, the first
        /// step's rate); `closedFormSource` names how it was obtained; nil with `closedFormNote`.
        public var closedFormLoss: Double?
        public var closedFormGap: Double?
        public var closedFormSource: String?
        public var closedFormNote: String?
        public var closedFormAccuracy: Double?

        public init(heldOut: Int, loss: String, networkLoss: Double) {
            self.heldOut = heldOut
            self.loss = loss
            self.networkLoss = networkLoss
        }
    }
}
