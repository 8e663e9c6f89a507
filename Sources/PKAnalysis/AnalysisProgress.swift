import PKNetworks
import PKNumerics

/// Where an analysis stands, in units of estimated cost, so that a progress bar's ETA stays
/// honest across phases of very different cost per step (the forward pass of an Adam or
/// momentum run is a small fraction of its backward pass; the ridge machines' eigendecomposition
/// comes after every step).
public struct AnalysisProgress: Sendable {
    /// The phases, in order.
    public enum Phase: Int, Sendable, CaseIterable {
        /// Steps in time order: the step check, the path integration (plain (S)GD, windowed
        /// momentum), the linearized network.
        case forward
        /// The exact two-time kernels (momentum, Adam, AdamW, RMSProp), steps backwards in time.
        case backward
        /// Kernel machines: the ridge fits and the final NTK.
        case machines

        public var label: String {
            switch self {
            case .forward: return "steps"
            case .backward: return "kernel (backwards)"
            case .machines: return "kernel machines"
            }
        }
    }

    /// Work done and in all (each phase's estimated seconds on one thread,
    /// `AnalysisCostModel.seconds`; only their ratio means anything).
    public var done: Double
    public var total: Double
    public var phase: Phase
    /// Steps of this phase done, of `steps` (forward and backward); 0 of 0 for `machines`.
    public var step: Int
    public var steps: Int

    public var fraction: Double { total > 0 ? min(1, done / total) : 1 }
}

/// The cost model behind `AnalysisProgress` (flop-equivalents per step of each phase).
///
/// Dominant terms only: the queries' tangent features and JVPs at each node
/// (`n_q·Network.featureCostPerExample`), their kernels against the training side (`2·n_q·n_b·Σ_l(in_l + C·out_l)`
/// per side and node), the training side's features, the step check and the linearized update
/// (`≈ 10·n_b·P`); the backward pass's update of the query side R and its products with the batch
/// (`2·C·n_q·P_R·(q + n_b)`, `P_R` R's scalars per query and channel, `meanQuerySideScalars`: a
/// compact first layer counts each query's nonzero inputs), and
/// for an MLP its memory-bound passes over R (`C·n_q·(P_R + rowScalars·rows)` scalars at the
/// speed the plan measures, `backwardGemmEfficiency`) and its float64 kernel sums (at the
/// measured `dsymv` speed, `kernelAddFactor`); the ridge machines' eigendecompositions (`9m³` each, or `m³/3` by
/// Cholesky above `eigenRidgeLimit`). Checked against measured runs in Docs/path-kernel.md §7.
/// With exact quadrature (math §1.1) `q` is ⌈L/2⌉ and a share `exactKinkedShare` of the (query,
/// step) pairs takes `(1 + exactBreakpoints)·q` nodes of its own, each at about twice a shared
/// node's feature cost (`segmentFeatures`); the backward pass computes the shared nodes for every
/// query of a block, the forward routes for the queries without a kink only; the breakpoint
/// search counts its GEMMs (`breakpointSearchPerQuery`). A layer network's kinked query enters
/// R's update and the kernels as one row (its `J̄` summed over its own nodes,
/// `LayerNetwork.segmentIntegratedJacobians`); the JVP route still takes one JVP per node. An
/// MLP's steps phase and its backward pass's query features count `gemmWidthFactor`
/// flop-equivalents per GEMM flop (small GEMMs' lower rate, the feature rows' own work; half
/// widths `gemmHalfWidth` and `queryFeatureHalfWidth`), and the measured activation and
/// quadrature times are multiplied by `activationSlowdown` (Docs/path-kernel.md §7, Size-aware
/// efficiency).
struct AnalysisCostModel {
    /// An MLP's backward pass in two parts (session 14, Docs/path-kernel.md §7): its GEMM work
    /// (the products of R with the batch, R's update and the query features) at the GEMM rate,
    /// and its memory-bound passes over R (the update's loads and stores, the zeroing, the
    /// contraction with the batch's signals) at the speed `measuredQuerySideSeconds` measures,
    /// which a faster GEMM does not raise. With OpenBLAS's products, W5 and W6 (f64, f32) on the
    /// model-207 Xeon with its Prescott, Haswell and SkylakeX kernels (15, 40 and 72 GFLOP/s per
    /// core, quiet) gave a backward phase `a/rate + b` in every case. With the products by
    /// `rowsTimesBatch` (no packing of R; on AVX-512 faster than the plan's 1024² OpenBLAS GEMM,
    /// hence an efficiency above 1) refitted on W5 (40 steps) and W6 (12 steps) there: within
    /// 1 % (f64) and −1 … +12 % (f32) at the fit. `querySideFactor` times the microbenchmark's
    /// time per scalar and thread, `C·n_q·(P_R + rowScalars·rows)` scalars per step.
    static let backwardGemmEfficiency = 1.15
    /// R's scalars a row's contraction costs in the memory-bound part (a row: one output unit of
    /// one layer for one query and channel; see `backwardGemmEfficiency`).
    static let rowScalars = 4.0
    /// The memory-bound part's time per R scalar in units of `measuredQuerySideSeconds` (see
    /// `backwardGemmEfficiency`).
    static let querySideFactor = 2.0
    /// R's own kernels (its update and its products with the batch, which do not use OpenBLAS)
    /// run at `productKernelEfficiency × threads ×` the one-core rate `measuredProductRate`
    /// measures; the rest of the GEMM work (the query features, by OpenBLAS) at
    /// `backwardGemmEfficiency ×` the GEMM rate. `backwardGemmEfficiency ×` DGEMM's one-core rate
    /// over the kernel's in a first, cache-resident version of the measurement (1.15 × 70/87 on
    /// the model-207 Xeon with OpenBLAS's SkylakeX kernels, which would leave the plan fitted
    /// there unchanged); with the final measurement W5's, W6's and teacher-adam's backward
    /// phases land within ±10 % there (session 16, Docs/path-kernel.md §7).
    static let productKernelEfficiency = 0.93
    /// An MLP's backward pass adds each row's kernel values into float64 sums that do not stay in
    /// cache: per step and layer, each (query, channel) row's `n_b` values into N's block and its
    /// C·n_b (`--kernel full`) or n_b (trace) values into the step's kernel block; then, per step,
    /// the block into K^p (`n_q·C·C·n_b` scattered values in full mode, `n_q·n_b` in trace mode).
    /// Priced per value in units of the measured `dsymv` time per element (`SymvSpeed`: a
    /// memory-bound pass, both threads busy): `kernelAddFactor` per added value,
    /// `kernelScatterFactor` per scattered one. Fitted in session 21 on fmnist-adamw (full mode,
    /// C = 10, 500 queries, batches of 50, two layers; the AMD EPYC, AVX2): perf put the adds at
    /// 2.9 ns and the scatter at 13.2 ns of CPU per value, with `dsymv` at 0.88 ns per element.
    /// Unpriced until then: fmnist-adamw's backward phase ran 1.3–1.7 times its estimate.
    static let kernelAddFactor = 3.3
    static let kernelScatterFactor = 15.0
    /// A ridge machine's eigendecomposition (`dsyevd` on its m training rows, on one thread: the
    /// machines run side by side, one per core) in two parts: `eigenGemmFactor·m³` flops at one
    /// core's GEMM rate (the reduction's `dsyr2k` half, the divide and conquer's products and the
    /// back-transformation) and `eigenSymvFactor·m³/6` element reads at the `dsymv` speed
    /// `SymvSpeed` measures with every ridge machine's thread busy (the reduction's other half,
    /// memory-bound, whose speed does not follow the GEMM rate). Fitted on fmnist-adamw's machines
    /// phase (two eigendecompositions of m = 4,000 side by side) on the model-207 Xeon with
    /// OpenBLAS's SkylakeX and Prescott kernels: 10.8 s and 23.5 s at 60 and 12 GFLOP/s per core,
    /// `dsymv` about 0.36 and 0.45 ns per element (session 16, Docs/path-kernel.md §7). A kernel
    /// matrix's fast-decaying spectrum deflates most of the divide and conquer's products, hence
    /// fewer GEMM flops than a random matrix's 4m³.
    static let eigenGemmFactor = 2.6
    static let eigenSymvFactor = 2.1
    /// From `eigenProbeFrom` rows on, a ridge machine's eigendecomposition is priced instead as
    /// the measured time of one of `eigenProbeRows` rows (`PathAnalyzer.measuredEigenSeconds`,
    /// side by side as the machines run) times `(m/eigenProbeRows)³`: the two parts above were
    /// fitted on the Xeon, and on the AVX2 EPYC of sessions 17–22 the same eigendecomposition's
    /// parts are near 1·m³/6 element reads and 5·m³ GEMM-rate flops (perf of `dsyevd` on 4,000
    /// rows), so the fitted sum priced fmnist-adamw's machines phase 30–40 % high there. Below
    /// `eigenProbeFrom` rows the probe (0.3–0.4 s there) would cost more than a third of a fit.
    /// On that EPYC, `dsyevd` side by side on two threads: 0.37 s at 1,024 rows, 2.6 s at 2,048,
    /// 23 s at 4,000 (the probe's cube predicts 21.8 s; Docs/path-kernel.md §7, Session 22).
    static var eigenProbeRows: Int { PathAnalyzer.eigenProbeRows }
    static var eigenProbeFrom: Int { PathAnalyzer.eigenProbeFrom }
    /// Exact quadrature's estimate before the run (Docs/path-kernel.md §7): the share of (query,
    /// step) pairs that cross a kink and their mean breakpoints, as measured on the relu presets
    /// (10–33 % of the pairs, 1.1–1.2 breakpoints each).
    static let exactKinkedShare = 0.25
    static let exactBreakpoints = 1.2
    /// The event sweep's work per query and step in one example's feature cost (GEMM-rate units):
    /// its initial work is ≈ 2.1 full Jacobian evaluations in the NumPy reference's multiply-add
    /// count, plus the events, but it runs at a lower rate (sparse loops, small GEMMs, root
    /// finding); 5.5 puts fmnist-cnn's planned backward phase against q = 4's where the measured
    /// times are (issue 16: 30.3 s against 23.3 s wall; one trace, one run each: a first estimate).
    static let sweepFeatureFactor = 5.5
    /// The hidden width at which an MLP's GEMMs reach half their large-size rate: its steps
    /// phase (features, kernels against the batch, the training side) counts `(k + h)/k` flop-
    /// equivalents per flop, k its mean hidden width (`gemmWidthFactor`). Fitted with
    /// `PathAnalyzer.efficiency.forward` and `activationSlowdown` on the four plain (S)GD presets
    /// (Docs/path-kernel.md §7): widths 64 (moons-mlp), 128 (sine-tanh), 256 (teacher-relu,
    /// fmnist-mlp). 200 from session 11 to 24; 120 since session 25, refitted on the five plain
    /// (S)GD presets (beyond-kernels too, width 64) once `Parallel.forEach`'s workers stopped
    /// sleeping between the steps phase's short regions (their waking had been part of the
    /// price of small widths).
    static let gemmHalfWidth = 120.0
    /// The same for the query features of an MLP's backward pass (`gemmWidthFactor` with this
    /// half width; fitted in session 23 on teacher-adam, whose feature GEMMs and rows took 2.7
    /// times their bare flops at width 128; its regions are few and long, so session 25's
    /// workers did not change it).
    static let queryFeatureHalfWidth = 200.0
    /// How much slower the smooth activations and the analytic quadrature run inside the
    /// analysis than in the plan's microbenchmarks (`measuredActivationSeconds`,
    /// `measuredQuadratureSeconds`: 16,384 inputs, one pair, on every thread at once): strided
    /// rows, caches shared with the GEMMs. 2.5 from session 11 to 22, fitted with `gemmHalfWidth`
    /// against microbenchmarks of one core alone; on the AMD EPYC of sessions 17–23 moons-mlp's
    /// estimate was then 29–55 % high, its tanh at about 1.3–1.9 times that microbenchmark's time
    /// (whose median itself moves between 20 and 31 ns an evaluation with the VM's speed). 1.5
    /// from session 23, fitted there, with the microbenchmark on every thread at once (which
    /// carries into it what two threads sharing one core's units would cost, on a machine whose
    /// vCPUs are hyperthreads; Docs/path-kernel.md §7, Session 23; not checked on the Xeon).
    /// Since session 24 the tanh it multiplies is pathkernel's vectorized one (5.5 ns against
    /// glibc's 20–35 there): not refitted, the time it scales is measured.
    static let activationSlowdown = 1.5
    /// The same for the analytic kernels' quadrature (`measuredQuadratureSeconds`): 1. Until
    /// session 26 it took `activationSlowdown`, and sine-tanh's machines phase (`ntkinf-km`'s
    /// quadrature most of it) ran at 0.59–0.82 of its price in five runs (0.97–1.03 s priced, about
    /// 1/1.5): the quadrature is one tight loop per pair, not rows strided among GEMMs.
    static let quadratureSlowdown = 1.0
    /// A layer network's steps phase on the backward route (the batch's Jacobian rows and the
    /// dynamics' 100 points per step, in calls of a few examples into fresh arrays) counts this
    /// many times its feature cost, which the backward pass's shared nodes (every query of a
    /// block at once, into reused arrays) meet at 1. Fitted on the quiet phase times of session 12
    /// (fmnist-cnn: steps 7.5 s and backward 16 s real; fmnist-resnet 4.6 s and 19 s): the ETA
    /// at 10 % of the work, which falls in the steps phase, was 2.3 and 1.6 times the time left.
    /// 2.4 from session 12 to 24; 1.8 since session 25: in nine plan runs of sessions 24 and 25
    /// (the event sweep the CNNs' default since session 13) both presets' steps phases ran at
    /// 0.65–0.87 of their backward phases' real-to-estimated ratio at 2.4 (geometric mean 0.73;
    /// fmnist-cnn 0.70, 0.71 in one episode of the VM, 0.86, 0.87 in a later one; fmnist-resnet
    /// 0.65–0.68, then 0.73, 0.75), and their ETAs at 10 % were −18 … −40 %.
    static let layerStepsFactor = 1.8
    /// The share of a layer network's feature time that runs at the GEMM rate; the rest (im2col,
    /// col2im, the layers' per-example loops, writing the rows) runs at the machine's memory and
    /// scalar speed, which an AVX-512 GEMM's doubled rate does not raise. Measured on fmnist-cnn
    /// on the model-207 Xeon of session 13 (q = 4, quiet): 42.9 s with OpenBLAS's Prescott
    /// kernels (about 14 GFLOP/s per core) against 24.0 s with SkylakeX's (63.5): a part
    /// proportional to 1/rate of 5.3 s and a fixed 18.7 s, 22 % and 78 % at SkylakeX's rate.
    static let layerGemmShare = 0.22
    /// The per-core GEMM rate (GFLOP/s; float64, float32) of the machine where
    /// `LayerNetwork.featureCostPerExample` was fitted (session 12's AMD Zen 3, 34–42 and 80–88):
    /// the rate at which the fixed part of the feature time is priced.
    static let layerReferenceRate = (f64: 40.0, f32: 84.0)

    /// A layer network's feature cost per example in flop-equivalents at `gemmRate` (one core's
    /// GFLOP/s in `precision`): `featureCostPerExample` (fitted at `layerReferenceRate`) with its
    /// share `1 − layerGemmShare` scaled to take the time it took there, `rate/reference` times
    /// the flop-equivalents; the GEMM share at the rate itself (Docs/path-kernel.md §7).
    static func layerFeatureCost(_ network: LayerNetwork, gemmRate: Double, precision: AnalysisSettings.Precision,
                                 probeSeconds: Double? = nil) -> Double {
        let reference = precision == .f32 ? layerReferenceRate.f32 : layerReferenceRate.f64
        return network.featureCostPerExample * (layerGemmShare + (1 - layerGemmShare) * gemmRate / reference
            * layerSpeedFactor(probeSeconds: probeSeconds, precision: precision))
    }

    /// The layer probe's time on the machine where the feature cost's fixed part runs at
    /// `layerReferenceRate` (float64, float32; seconds for `measuredLayerProbeSeconds`' 4
    /// examples). Fitted in session 19 (Docs/path-kernel.md §7) on the AMD EPYC of that session
    /// (AVX2, 2 vCPUs), where the probe took about 2.0 ms (f64; 1.6–2.1 over five plans, moving
    /// with the GEMM rate the same plans measured) and 1.17 ms (f32), and the fixed part of
    /// fmnist-cnn (exact and q = 4) and fmnist-resnet ran 1.90, 1.62 and 1.42 times as long as
    /// `layerReferenceRate` priced it (the rate fitted on session 12's Zen 3 and checked on
    /// session 13's Xeon): their geometric mean, 1.64, sets the reference at 2.0 / 1.64 ms. The
    /// float32 reference takes the same ratio (no float32 layer network was timed).
    static let layerProbeReference = (f64: 2.0e-3 / 1.64, f32: 1.17e-3 / 1.64)

    /// How much longer than at `layerReferenceRate` a layer network's fixed feature work takes on
    /// this machine: the probe's time over `layerProbeReference`, within [0.25, 4] (a probe slowed
    /// or sped by something else than the machine does not move the plan further); 1 without a probe.
    static func layerSpeedFactor(probeSeconds: Double?, precision: AnalysisSettings.Precision) -> Double {
        guard let probeSeconds, probeSeconds > 0, probeSeconds.isFinite else { return 1 }
        let reference = precision == .f32 ? layerProbeReference.f32 : layerProbeReference.f64
        return min(4, max(0.25, probeSeconds / reference))
    }

    /// Flop-equivalents per GEMM flop of `model`'s steps phase: `(k + h)/k` for an MLP of mean
    /// hidden width k (its input width when it has no hidden layer), h `gemmHalfWidth` (or
    /// `queryFeatureHalfWidth` for the backward pass's query features), 1 for a layer network
    /// (whose feature cost, `LayerNetwork.featureCostPerExample`, carries its own rate).
    static func gemmWidthFactor(_ model: any Network, halfWidth: Double = gemmHalfWidth) -> Double {
        guard let mlp = model as? MLP else { return 1 }
        let hidden = mlp.layers.dropFirst().map(\.inputs)
        let k = Double(hidden.isEmpty ? mlp.inputDim : hidden.reduce(0, +) / hidden.count)
        return (max(k, 1) + halfWidth) / max(k, 1)
    }

    /// Exact quadrature's breakpoint search per query and step, for an MLP (math §1.1): the
    /// first layer's two GEMMs on the queries (`2·in_0·out_0` flops each), then four per layer
    /// on the pieces (`(1 + f·k̄)` per query, `exactKinkedShare` f, `exactBreakpoints` k̄).
    static func breakpointSearchPerQuery(_ mlp: MLP, share: Double = exactKinkedShare) -> Double {
        let first = Double(mlp.layers[0].inputs * mlp.layers[0].outputs)
        let rest = mlp.layers.dropFirst().reduce(0.0) { $0 + Double($1.inputs * $1.outputs) }
        return 2 * (2 * first + 4 * (1 + share * exactBreakpoints) * rest)
    }

    /// Each step's work at the kinked share `exactKinkedShare` (the plan's estimate).
    let forwardPerStep: Double
    let backwardPerStep: Double
    /// How a step's work in the steps phase moves with its kinked share f (exact quadrature; 0
    /// otherwise): it is affine in f, `forwardPerStep + forwardPerKinkedShare·(f − exactKinkedShare)`,
    /// so the progress counts each step at the share it measured (`KinkProfile`). The backward
    /// pass keeps the plan's share: its constants (`kernelAddFactor`, `kernelScatterFactor`) were
    /// fitted on fmnist-adamw's backward phase priced at that share, and counted at the share it
    /// measures (0.10) that phase ran 1.8 times its price, which the bar carried over to the
    /// machines (ETA at 10 % +42 %; Docs/benchmarks.md, `plan`, Session 26).
    let forwardPerKinkedShare: Double
    let machines: Double

    /// `smoothPerExample`: one example's smooth activations (`Network.smoothActivationUnits`) in
    /// flop-equivalents of the steps' phase (their measured time at that phase's rate);
    /// `quadrature`: the machines' and diagnostics' analytic kernels on the quadrature route, in
    /// the machines' flop-equivalents; `analyticTraining`: ntkinf-km's function-space training
    /// (`analyticTrainingElements`), in the same units, on one thread (its GEMMs are one call each).
    /// `querySideScalarCost`: flop-equivalents of the backward phase per R scalar of an MLP's
    /// memory-bound part (`querySideFactor × measuredQuerySideSeconds × rate × efficiency`).
    /// `symvElementCost`: the machines phase's flop-equivalents per element read by `dsymv` in an
    /// eigendecomposition (`SymvSpeed`'s seconds × float64 rate × efficiency); `eigenProbeCost`:
    /// the same for one eigendecomposition of `eigenProbeRows` rows (`EigenSpeed`'s seconds), 0
    /// when not measured (systems below `eigenProbeFrom` rows); `threads`: the
    /// threads the plan divides the work by.
    /// `productFlopCost`: GEMM flops' worth of one flop of R's own kernels in an MLP's backward
    /// pass (`backwardGemmEfficiency × rate / (productKernelEfficiency × measuredProductRate)`);
    /// `compactQuerySide`: the part of `querySide` in a compact first layer (its outputs times the
    /// queries' mean nonzero inputs), whose products with the batch are priced at
    /// `compactProductFlopCost` (the same with `measuredCompactProductRate`).
    /// `kernelValueCost`: flop-equivalents of the backward phase per element of a memory-bound
    /// pass (`SymvSpeed`'s seconds × rate × efficiency), the price of an MLP's kernel sums
    /// (`kernelAddFactor`, `kernelScatterFactor`; `blocks` C in full mode, 1 in trace mode).
    init(model: any Network, queries nQ: Int, train n: Int, meanBatch nb: Double, nodes q: Int, exact: Bool = false, blocks: Int,
         kernelForm: Bool, backward: Bool, querySide: Double? = nil, windowSides: Double, machines fitRows: Int?, dynamicsPerStep: Double = 0,
         smoothPerExample: Double = 0, quadrature: Double = 0, analyticTraining: Double = 0, featureCost: Double? = nil, querySideScalarCost: Double = 0,
         productFlopCost: Double = 1, compactQuerySide: Double = 0, compactProductFlopCost: Double = 1, kernelValueCost: Double = 0,
         symvElementCost: Double = 0, eigenProbeCost: Double = 0,
         threads: Int = 1) {
        let featureCostPerExample = featureCost ?? model.featureCostPerExample
        let P = Double(model.parameterCount), PR = querySide ?? Double(model.parameterCount), Q = Double(nQ), C = Double(model.outputDim)
        let widths = Double(model.featureScalarsPerExample)
        // One example's tangent features: GEMM flops (`Network.featureCostPerExample`: the
        // forward pass, a JVP and C backward passes for an MLP; a layer network's Jacobian passes
        // and rows) and its smooth activations.
        let perExample = featureCostPerExample + smoothPerExample
        let features = Q * perExample
        // What a step's work does not owe to its kinked share.
        let own = (1 + Self.exactBreakpoints) * Double(q)
        // The event sweep (a layer network it covers): one row per query and step, no shared
        // nodes, its work `sweepFeatureFactor` shared nodes' features.
        let swept = exact && (model as? LayerNetwork)?.eventSweepEligible == true
        // Per step, GEMMs: the step check and the linearized update (`10·n_b·P`), the training
        // side's features (an MLP's without JVP), the dynamics' features, exact quadrature's
        // breakpoint search (in `perStep`); activations: the training side's, the replay's forward
        // passes at w_s and w_{s+1} and the linearized network's JVP, the dynamics'.
        let mlp = model as? MLP
        let gemmBesidesSearch = 10 * nb * P + nb * (mlp?.featureCostWithoutTangents ?? featureCostPerExample)
            + dynamicsPerStep * featureCostPerExample
        let perStepSmooth = (3 * nb + dynamicsPerStep) * smoothPerExample
        // The steps phase's GEMMs at their width's rate (1 for a layer network).
        let width = Self.gemmWidthFactor(model)
        // One step's work at kinked share `share` (exact quadrature; the share is unused otherwise).
        func perStep(_ share: Double) -> (forward: Double, backward: Double) {
            let stepForward: Double, stepBackward: Double
            // Node evaluations per query and step (R's updates, kernels, JVPs: qd) and their feature
            // cost in shared nodes' units (qf): q, or exact quadrature's estimate (see above).
            let qd = swept ? 1 : exact ? (1 - share) * Double(q) + share * own : Double(q)
            // Rows per query and step of R's update and of the kernels: a layer network's kinked query one.
            let rowsPerQuery = swept ? 1 : exact && model is LayerNetwork ? (1 - share) * Double(q) + share : qd
            let qf = swept ? Self.sweepFeatureFactor : exact ? (backward ? Double(q) : (1 - share) * Double(q)) + 2 * share * own : Double(q)
            let perStepGemm = gemmBesidesSearch + (exact ? mlp.map { Q * Self.breakpointSearchPerQuery($0, share: share) } ?? 0 : 0)
            if backward {
                stepForward = (model is LayerNetwork ? Self.layerStepsFactor : width) * perStepGemm + perStepSmooth
                if let mlp {
                    // GEMM work at `backwardGemmEfficiency` (in the phase's units, whose efficiency is
                    // `PathAnalyzer.efficiency.backward`), the memory-bound passes over R at their own speed.
                    let rows = Double(mlp.layers.reduce(0) { $0 + $1.outputs })
                    // R's update over all of P_R, its products with the batch over the compact layer's
                    // `compactQuerySide` scalars at that kernel's own rate.
                    let products = productFlopCost * 2 * C * Q * (PR * rowsPerQuery + (PR - compactQuerySide) * nb)
                        + compactProductFlopCost * 2 * C * Q * compactQuerySide * nb
                    // The queries' features at their width's rate, as in the steps phase (the same
                    // small GEMMs and per-row work; session 23: teacher-adam's feature GEMMs and rows
                    // took 2.7 times their flat price on the AMD EPYC, `gemmWidthFactor` 2.6 at width
                    // 128 with `queryFeatureHalfWidth`).
                    let queryWidth = Self.gemmWidthFactor(model, halfWidth: Self.queryFeatureHalfWidth)
                    let queryFeatures = Q * (queryWidth * featureCostPerExample + smoothPerExample)
                    let gemm = (qf * queryFeatures + products) * PathAnalyzer.efficiency.backward / Self.backwardGemmEfficiency
                    // The kernel sums: N's and the kernel block's per layer, then the scatter into K^p.
                    let layers = Double(mlp.layers.count), B = Double(blocks)
                    let added = Q * C * layers * nb * (1 + B), scattered = Q * B * B * nb
                    stepBackward = gemm + querySideScalarCost * C * Q * (PR + Self.rowScalars * rows)
                        + kernelValueCost * (Self.kernelAddFactor * added + Self.kernelScatterFactor * scattered)
                } else {
                    stepBackward = qf * features + 2 * C * Q * PR * (rowsPerQuery + nb)
                }
            } else if kernelForm {
                stepForward = width * (perStepGemm + qf * Q * featureCostPerExample + rowsPerQuery * 2 * Q * nb * windowSides * widths * Double(blocks))
                    + perStepSmooth + qf * Q * smoothPerExample
                stepBackward = 0
            } else {
                stepForward = width * (perStepGemm + qd * 4 * Q * P) + perStepSmooth
                stepBackward = 0
            }
            return (stepForward, stepBackward)
        }
        let atPlan = perStep(Self.exactKinkedShare), none = perStep(0).forward, all = perStep(1).forward
        forwardPerStep = atPlan.forward
        backwardPerStep = atPlan.backward
        forwardPerKinkedShare = exact ? all - none : 0
        if let m = fitRows.map(Double.init) {
            // The two ridge fits (path-krr, ntkT-krr) run side by side on one thread each: on
            // more than two threads the phase waits for them, not for its work over every thread.
            let probe = m / Double(Self.eigenProbeRows)
            let fit = m <= Double(PathAnalyzer.eigenRidgeLimit) && m >= Double(Self.eigenProbeFrom) && eigenProbeCost > 0
                ? eigenProbeCost * probe * probe * probe
                : m <= Double(PathAnalyzer.eigenRidgeLimit)
                ? Self.eigenGemmFactor * PathAnalyzer.efficiency.machines * m * m * m + Self.eigenSymvFactor * m * m * m / 6 * symvElementCost
                : m * m * m / 3
            machines = 2 * fit * max(1, Double(threads) / 2) + (Q + Double(n)) * perExample + 2 * Q * Double(n) * widths * Double(blocks) + quadrature
                + analyticTraining * Double(threads)
        } else {
            machines = 0
        }
    }
}

/// The progress's units: each phase's work in estimated seconds of one thread
/// (`AnalysisCostModel.seconds`), a step's at the plan's kinked share `exactKinkedShare`, and the
/// steps phase's slope in the share (exact quadrature; 0 otherwise).
struct ProgressUnits {
    var forwardPerStep: Double, backwardPerStep: Double
    var forwardPerKinkedShare: Double
    var machines: Double

    /// The steps phase's work over `steps` steps whose kinked shares sum to `shareSum`.
    func forward(steps: Int, shareSum: Double) -> Double {
        Double(steps) * forwardPerStep + forwardPerKinkedShare * (shareSum - Double(steps) * AnalysisCostModel.exactKinkedShare)
    }
}

extension AnalysisCostModel {
    /// The phases' work in seconds of one thread, as the plan prices it (each phase at its rate
    /// and efficiency: the steps and the backward pass at the analysis precision's GEMM rate, the
    /// machines at float64's; `AnalysisPlan` divides by the threads too): the progress bar's
    /// units, so that the rate measured in one phase prices the other phases' work at its worth
    /// (flop-equivalents of different phases are not worth the same time).
    func seconds(precision: AnalysisSettings.Precision) -> ProgressUnits {
        let rate = PathAnalyzer.measuredGemmRate(precision) * 1e9
        let f64 = PathAnalyzer.measuredGemmRate(.f64) * 1e9
        let e = PathAnalyzer.efficiency
        return ProgressUnits(forwardPerStep: forwardPerStep / (rate * e.forward), backwardPerStep: backwardPerStep / (rate * e.backward),
                             forwardPerKinkedShare: forwardPerKinkedShare / (rate * e.forward),
                             machines: machines > 0 ? machines / (f64 * e.machines) : 0)
    }

    /// ntkinf-km's function-space training (`NTKInfKM.train`) in kernel values passed over: per
    /// step its GEMM reads `Θ(queries, B_t)`, `n_q·|B_t|` values, which are first gathered from Θ
    /// (read and written: twice as many) unless the batch is every training point in order. Each
    /// value priced at the measured `dsymv` time per element: beyond-kernels (1,000 full-batch
    /// steps of 1,200 × 800 values) spent 0.8 s of its 1.0-s machines phase there, 0.83 ns a value
    /// where `dsymv` took about 0.9 (Docs/benchmarks.md, `plan`, Session 26). 0 where the machine
    /// is skipped (scope exact, not an MLP, not plain (S)GD, too many quadrature pairs).
    static func analyticTrainingElements(context: AnalysisContext) -> Double {
        let run = context.run, n = context.train
        guard !context.exactOnly, context.model is MLP,
              NTKInfKM.inapplicable(spec: context.model.spec, optimizer: run.optimizer, queries: context.queries, train: n) == nil
        else { return 0 }
        return run.stepRecords.prefix(run.steps).reduce(0.0) { sum, record in
            let nb = record.batch.count
            let whole = nb == n && record.batch.elementsEqual(0..<Int32(n))
            return sum + Double(context.queries * nb) * (whole ? 1 : 2)
        }
    }

    /// The cost of `context`'s analysis by `route` (its dynamics sampled on at most 100 points
    /// every `max(1, ⌊T/40⌋)` steps; no machines nor dynamics in scope exact), for the query rows
    /// it computes (a shard's: `AnalysisContext.rows`).
    ///
    /// `gemmRate`: one core's GEMM rate (GFLOP/s) in the analysis precision that the time will be
    /// reckoned at (measured when nil); it converts the measured activation times into work.
    init(context: AnalysisContext, route: any KernelRoute, gemmRate: Double? = nil, threads: Int = Parallel.threads) {
        let T = context.steps, n = context.train
        let meanBatch = Double(context.run.stepRecords.reduce(0) { $0 + $1.batch.count }) / Double(max(T, 1))
        let exact = PathAnalyzer.exactQuadrature(settings: context.settings, model: context.model, route: route).0
        let nodes = exact ? (context.model as? MLP).map(PiecewiseNodes.nodesPerPiece) ?? context.settings.nodes : context.settings.nodes
        // Smooth activations and the analytic kernels' quadrature at the rates measured now, as
        // flop-equivalents of their phases (the steps at the analysis precision's GEMM rate and
        // efficiency, the machines at float64's).
        let precision = context.settings.precision
        let units = context.model.smoothActivationUnits
        func rate(_ p: AnalysisSettings.Precision) -> Double {
            (p == precision ? gemmRate : nil) ?? PathAnalyzer.measuredGemmRate(p)
        }
        let slowdown = Self.activationSlowdown
        let stepRate = units.isEmpty ? 0 : rate(precision) * 1e9 * PathAnalyzer.efficiency.forward
        let smooth = units.reduce(0.0) { sum, unit in
            sum + Double(unit.value) * slowdown * PathAnalyzer.measuredActivationSeconds(unit.key, precision) * stepRate
        }
        var quadrature = 0.0
        if !context.exactOnly, let spec = context.model.spec.kind == "mlp" ? context.model.spec : nil,
           !GaussianExpectation.hasClosedForm(spec.activation), let kernel = try? InfiniteWidthKernel(spec: spec) {
            let evaluations = NTKInfKM.inapplicable(spec: spec, optimizer: context.run.optimizer, queries: context.queries, train: n) == nil
                ? kernel.quadratureEvaluations(context.xq, context.run.trainX)
                : OverParameterization.analyticGram(context: context).map { kernel.quadratureEvaluations($0) } ?? 0
            quadrature = evaluations * Self.quadratureSlowdown * PathAnalyzer.measuredQuadratureSeconds(spec.activation)
                * rate(.f64) * 1e9 * PathAnalyzer.efficiency.machines
        }
        // ntkinf-km's training: memory-bound passes over Θ's batch columns, at the `dsymv` speed.
        let trainingElements = Self.analyticTrainingElements(context: context)
        let analyticTraining = trainingElements > 0
            ? trainingElements * PathAnalyzer.measuredSymvSeconds() * rate(.f64) * 1e9 * PathAnalyzer.efficiency.machines : 0
        // A layer network's feature cost at this machine's rates (`layerFeatureCost`).
        let featureCost = (context.model as? LayerNetwork).map {
            Self.layerFeatureCost($0, gemmRate: rate(precision), precision: precision, probeSeconds: PathAnalyzer.measuredLayerProbeSeconds(precision))
        }
        let mlpBackward = route.backwardPass && context.model is MLP
        let compact = mlpBackward ? (route as? PreconditionedRoute).flatMap {
            PathAnalyzer.compactShape(model: context.model, form: $0.form, queries: context.xq, rows: context.rows)
        } : nil
        let compactKernel = compact == nil ? nil : PathAnalyzer.compactProductShape(context: context, route: route)
        // (Each price apart: one expression of them all is too much for the type checker.)
        let backwardUnit: Double = rate(precision) * 1e9 * PathAnalyzer.efficiency.backward
        let querySideScalarCost: Double = mlpBackward
            ? Self.querySideFactor * PathAnalyzer.measuredQuerySideSeconds(precision) * backwardUnit : 0
        let productFlopCost: Double = mlpBackward
            ? Self.backwardGemmEfficiency * rate(precision) / (Self.productKernelEfficiency * PathAnalyzer.measuredProductRate(precision, batch: context.meanBatch))
            : 1
        let compactProductFlopCost: Double = compactKernel.map {
            Self.backwardGemmEfficiency * rate(precision) / (Self.productKernelEfficiency * PathAnalyzer.measuredCompactProductRate(
                precision, batch: context.meanBatch, outputs: $0.outputs, support: $0.support, inputs: $0.inputs))
        } ?? 1
        let kernelValueCost: Double = mlpBackward ? PathAnalyzer.measuredSymvSeconds() * backwardUnit : 0
        let symvElementCost: Double = context.exactOnly || n * context.blocks > PathAnalyzer.eigenRidgeLimit
            ? 0 : PathAnalyzer.measuredSymvSeconds() * rate(.f64) * 1e9 * PathAnalyzer.efficiency.machines
        let machineRows = n * context.blocks
        let eigenProbeCost: Double = !context.exactOnly && machineRows <= PathAnalyzer.eigenRidgeLimit && machineRows >= Self.eigenProbeFrom
            ? (PathAnalyzer.measuredEigenSeconds() ?? 0) * rate(.f64) * 1e9 * PathAnalyzer.efficiency.machines : 0
        let querySide: Double? = (route as? PreconditionedRoute).map {
            PathAnalyzer.meanQuerySideScalars(model: context.model, form: $0.form, queries: context.xq, rows: context.rows)
        }
        self.init(model: context.model, queries: context.rows.count, train: n, meanBatch: meanBatch, nodes: nodes, exact: exact,
                  blocks: context.blocks, kernelForm: route.hasKernelForm, backward: route.backwardPass,
                  querySide: querySide,
                  windowSides: route.windowSides,
                  machines: context.exactOnly ? nil : n * context.blocks,
                  dynamicsPerStep: context.exactOnly ? 0 : Double(min(n, 100)) / Double(max(1, T / 40)),
                  smoothPerExample: smooth, quadrature: quadrature, analyticTraining: analyticTraining, featureCost: featureCost,
                  querySideScalarCost: querySideScalarCost, productFlopCost: productFlopCost,
                  compactQuerySide: compact.map { Double($0.outputs) * $0.support } ?? 0,
                  compactProductFlopCost: compactProductFlopCost, kernelValueCost: kernelValueCost,
                  symvElementCost: symvElementCost, eigenProbeCost: eigenProbeCost,
                  threads: threads)
    }
}
