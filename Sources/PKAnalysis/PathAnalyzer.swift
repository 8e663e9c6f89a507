import Foundation
import PKNetworks
import PKNumerics
import PKOptim
import PKStep
import PKTrace

/// The path-kernel analysis of a recorded run (path-kernel math §1–4).
///
/// Priorities: exactness of the decomposition first (the reconstruction residual is reported and
/// must sit at round-off on smooth networks), then memory (streams over steps, holding only the
/// accumulators and one step's factors), then speed (tangent kernels by structured GEMMs).
///
/// For each step t, with Δw_t = w_{t+1} − w_t and a Gauss–Legendre rule (s_j, ω_j) on [0, 1]:
///   J̄_t(x)Δw_t = Σ_j ω_j J(x; w_t + s_j Δw_t) Δw_t               (forward-mode JVPs)
///   K̄_t(x, x_i) = Σ_j ω_j Θ(x, x_i; w_t + s_j Δw_t, w_t)          (structured kernels)
///   K^p += c_t K̄_t,  N(x, i) += c_t K̄_t(x, x_i) g_{i,t},  c_t = η_t / |B_t|
/// so that `exact(x) = f_0(x) − Σ_i N(x, i) + R_wd(x)` equals f_T(x) up to quadrature error.
public struct PathAnalyzer {
    public let settings: AnalysisSettings

    /// Tests only: layer networks the event sweep covers take exact quadrature's node route
    /// (breakpoints, Gauss nodes per piece), the oracle the sweep's analyses are tested against.
    /// A property of this analyzer, not of the process, so that suites running side by side
    /// never see another's choice.
    var nodeRouteForLayerNetworks = false

    public init(settings: AnalysisSettings) { self.settings = settings }

    /// Runs the analysis; `progress` is called after each step of each phase and after the
    /// kernel machines (its `done`/`total` in estimated cost, see `AnalysisProgress`).
    public func analyze(reader: TraceReader, progress: (AnalysisProgress) -> Void = { _ in }) throws -> AnalysisResult {
        try analyzeWithKernel(reader: reader, progress: progress).result
    }

    /// The analysis and the accumulated path kernel `K^p` (rows: held-out queries, then every
    /// training point; `full`: (n_q·C) × (n·C) in C×C blocks, `trace`: n_q × n).
    ///
    /// One pass over the weight path, forwards in time: per segment the dynamics sample, the
    /// quadrature nodes, the kernel route (`KernelRoutes.select`, one type per route under
    /// `Routes/`) and the linearized network; then the route's finish (the backward pass of the
    /// two-time kernels) and the result (`AnalysisAssembly`: the kernel machines, their fidelity,
    /// the notes, residuals and attribution).
    public func analyzeWithKernel(reader: TraceReader, progress: (AnalysisProgress) -> Void = { _ in }) throws
        -> (result: AnalysisResult, kernel: Matrix) {
        // One BLAS thread, held for the whole analysis (BLASThreads: another count set meanwhile would change the bits).
        return try BLASThreads.with(1) {
            let started = Date()
            let walk = try self.walk(reader: reader, shard: nil, progress: progress)
            return try walk.assembly().assemble(walk.acc, started: started) { finished in
                progress(AnalysisProgress(done: finished ? walk.totalWork : walk.workBeforeMachines, total: walk.totalWork,
                                          phase: .machines, step: 0, steps: 0))
            }
        }
    }

    /// Everything before the assembly: the accumulated sums of the query rows of `shard` (all
    /// rows when nil), and what the assembly reads of the path.
    struct PathWalk {
        let context: AnalysisContext
        let route: any KernelRoute
        let form: KernelForm?
        let notes: [String]
        let replay: ReplaySummary
        let w0: [Double], wT: [Double], wLin: [Double]
        let dynamics: DynamicsSampler
        let quadrature: SegmentQuadrature
        let acc: KernelAccumulators
        let cost: AnalysisCostModel
        /// The progress's units: each phase's estimated seconds (`AnalysisCostModel.seconds`).
        let units: ProgressUnits
        /// The walk's work, as its last progress report counts it (the steps at the kinked shares
        /// they measured, `KinkProfile`), and with the machines'.
        let workBeforeMachines: Double
        var totalWork: Double { workBeforeMachines + units.machines }

        func assembly() -> AnalysisAssembly {
            AnalysisAssembly(context: context, route: route, form: form, notes: notes, path: replay, w0: w0, wT: wT, wLin: wLin,
                             dynamics: dynamics.points, dynamicsSubset: dynamics.indices.count, quadrature: quadrature)
        }
    }

    /// One pass over the weight path, forwards in time: per segment the dynamics sample, the
    /// quadrature nodes, the kernel route and the linearized network; then the route's finish.
    /// Called inside a lease of one BLAS thread (`BLASThreads.with(1)`: many small GEMMs).
    func walk(reader: TraceReader, shard: AnalysisShard?, progress: (AnalysisProgress) -> Void) throws -> PathWalk {
        try settings.validate()
        let run = try TraceRun.load(reader)
        let context = try AnalysisContext(settings: settings, run: run, shard: shard)
        let T = context.steps
        var path = try WeightPath(run: run, reader: reader, allowMismatch: settings.allowInconsistentSteps == true)
        let w0 = path.current
        // The update rule, for the routes and the linearized network (ntk0-km) trained like the network.
        let optimizer = try run.optimizer.transformation(parameters: run.model.parameterTensors)
        var linearized = LinearizedTraining(context: context, optimizer: optimizer, w0: w0, initialState: path.initialStoredState)
        let selection = KernelRoutes.select(context: context, optimizer: optimizer, checkpointResolution: path.checkpointResolution,
                                            initialState: path.initialStoredState)
        var route = selection.route
        // Progress in estimated cost (AnalysisProgress), so that the ETA holds across phases.
        let cost = AnalysisCostModel(context: context, route: route)
        let units = cost.seconds(precision: settings.precision)
        // Each step counted at the kinked share it measured, the steps to come at the profile's
        // prediction (exact quadrature; the steps phase's price has no slope in the share otherwise).
        var kinks = KinkProfile(records: run.stepRecords, steps: T, prior: AnalysisCostModel.exactKinkedShare)
        let backwardWork = Double(T) * units.backwardPerStep
        func work() -> (done: Double, total: Double) {
            let done = units.forward(steps: kinks.done, shareSum: kinks.measuredSum)
            let left = units.forward(steps: T - kinks.done, shareSum: kinks.predictedRemainingSum)
            return (done, done + left + backwardWork + units.machines)
        }
        var dynamics = DynamicsSampler(context: context, w0: w0, pathKM: route.summedForwards)
        let (exact, quadratureNotes) = Self.exactQuadrature(settings: settings, model: context.model, route: route)
        var quadrature = SegmentQuadrature(settings: settings, steps: T, model: context.model, exact: exact,
                                           nodeRoute: nodeRouteForLayerNetworks)
        var acc = KernelAccumulators(zeroFor: context)
        // The queries whose nodes this process chooses (a shard's rows only).
        let xNodes = context.allRows ? context.xq : context.xq.rows(context.rows)

        while let seg = try path.next() {
            dynamics.sample(segment: seg, acc)
            let delta = seg.delta
            let batch = seg.record.batch.map(Int.init)
            let nodes = quadrature.nodes(model: context.model, start: seg.start, delta: delta, x: xNodes, rowOffset: context.rows.lowerBound)
            let step = RouteSegment(segment: seg, delta: delta, batch: batch, xb: run.trainX.rows(at: batch),
                                    yb: run.trainY.rows(at: batch), nodes: nodes.shared, piecewise: nodes.piecewise)
            route.consume(step, into: &acc)
            linearized.train(step)
            // The node route's kinked share of this segment's queries (the event sweep's is not priced by it).
            let kinked = nodes.piecewise.flatMap { $0.sweep == nil ? xNodes.rows - $0.smoothRows.count : nil } ?? 0
            kinks.record(Double(kinked) / Double(max(xNodes.rows, 1)), span: seg.span)
            let w = work()
            progress(AnalysisProgress(done: w.done, total: w.total, phase: .forward, step: step.step + seg.span, steps: T))
        }
        let wT = path.current
        dynamics.sample(step: T, w: wT, acc)
        // Every step measured: the steps phase's work is known.
        let forwardWork = units.forward(steps: T, shareSum: kinks.measuredSum)
        let workBeforeMachines = forwardWork + backwardWork, totalWork = workBeforeMachines + units.machines
        if cost.backwardPerStep > 0 {
            // The backward phase starts here: its first own report comes only after its first group
            // of steps (R's allocation and a share of its work), which would otherwise be timed as
            // the steps' phase (bench's phase times, the bar's phase name).
            progress(AnalysisProgress(done: forwardWork, total: totalWork, phase: .backward, step: 0, steps: T))
        }
        route.finish(end: wT, into: &acc) { done, total in
            let part = Double(done) / Double(max(total, 1))
            progress(AnalysisProgress(done: forwardWork + part * backwardWork, total: totalWork,
                                      phase: .backward, step: Int((part * Double(T)).rounded()), steps: T))
        }
        return PathWalk(context: context, route: route, form: optimizer.kernelForm, notes: run.notes + selection.notes + quadratureNotes,
                        replay: path.summary, w0: w0, wT: wT, wLin: linearized.weights, dynamics: dynamics, quadrature: quadrature,
                        acc: acc, cost: cost, units: units, workBeforeMachines: workBeforeMachines)
    }

    /// Whether the analysis integrates exactly through each query's kinks (math §1.1), and the
    /// notes that say why not where it was asked for or would have applied: exact quadrature needs
    /// a network with a `piecewiseJacobianDegree` (an MLP with relu or leaky-relu, a layer network
    /// whose every layer is piecewise polynomial along a segment) and a route that takes
    /// per-query nodes (all of them: (S)GD, momentum exact or windowed, Adam, AdamW, RMSProp, the
    /// JVP route);
    /// `--adaptive` or `--quadrature gauss|adaptive` choose the Gauss rules instead.
    static func exactQuadrature(settings: AnalysisSettings, model: any Network, route: any KernelRoute) -> (Bool, [String]) {
        guard settings.quadrature == .exact || (settings.quadrature == nil && settings.adaptiveTolerance == nil) else { return (false, []) }
        guard model.isPiecewiseLinear || settings.quadrature == .exact else { return (false, []) }
        let gauss = "Gauss–Legendre with q = \(settings.nodes) nodes per step (its residual carries the quadrature error at the kinks; --nodes or --adaptive shrink it)"
        if !model.isPiecewiseLinear {
            return (false, ["--quadrature exact applies to piecewise-linear networks (relu, leaky-relu); this one is smooth: integrated with \(gauss.prefix { $0 != "(" })".trimmingCharacters(in: .whitespaces)])
        }
        if model.piecewiseJacobianDegree == nil {
            return (false, ["exact quadrature through the kinks needs every layer piecewise polynomial along a step (dense, conv2d, relu, leaky-relu, identity, max and average pooling, flatten, residual); this network has a smooth nonlinear one (tanh, gelu, layernorm …) besides its kinks: integrated with \(gauss)"])
        }
        if !route.takesPiecewiseNodes {
            return (false, ["exact quadrature through the kinks is not implemented for this run's kernel route: it is integrated with \(gauss)"])
        }
        // A layer network on a backward route (momentum, Adam, …): by default when the event
        // sweep covers it (`LayerNetwork.eventSweepEligible`: each query's J̄ from its first
        // pattern and one local correction per event: 1.3 times the wall time of q = 4 on
        // fmnist-cnn, 1.5 times its CPU, issue 16); otherwise (residual blocks) only when asked for: its kinked
        // queries' Jacobians are evaluated at each of their own nodes (~144 nodes each on a CNN
        // step), 4–10 times the time of q = 4 (Docs/benchmarks.md).
        if settings.quadrature == nil && route.backwardPass, let network = model as? LayerNetwork, !network.eventSweepEligible {
            return (false, ["exact quadrature through the kinks is not the default for this layer network on this kernel route (its layers are not all covered by the event sweep: each kinked query is evaluated at its own nodes, about 10 times the time of q = 4 on a CNN: --quadrature exact to take it): integrated with \(gauss)"])
        }
        return (true, [])
    }
}
