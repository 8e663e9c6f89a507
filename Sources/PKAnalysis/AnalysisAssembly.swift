import Foundation
import PKNetworks
import PKNumerics
import PKOptim

/// The end of an analysis, after the last step (and the backward pass): the network's outputs at
/// both ends, the kernel machines (`KernelMachines`), their fidelity (path-kernel math §4), the
/// notes, the reconstruction residuals, the attribution, and the `AnalysisResult`.
struct AnalysisAssembly {
    let context: AnalysisContext
    let route: any KernelRoute
    /// The optimizer chain's kernel form (its weight decay for the decay note).
    let form: KernelForm?
    /// The run's notes and the route selection's, in order.
    let notes: [String]
    /// The step check's figures and checkpoint resolution, from the path after its last segment.
    let path: ReplaySummary
    /// Weights at step 0, at step T, and of the linearized network (ntk0-km).
    let w0: [Double], wT: [Double], wLin: [Double]
    /// The dynamics' points and the size of their training subset.
    let dynamics: [AnalysisResult.DynamicsPoint]
    let dynamicsSubset: Int
    let quadrature: SegmentQuadrature

    /// The result and K^p. `machinesProgress(finished)` is called before the kernel machines and
    /// after them (scope full).
    func assemble(_ acc: KernelAccumulators, started: Date, machinesProgress: (_ finished: Bool) -> Void) throws
        -> (result: AnalysisResult, kernel: Matrix) {
        let run = context.run, model = context.model, exactOnly = context.exactOnly, kernelForm = route.hasKernelForm

        // Network outputs at both ends.
        let f0 = model.forward(w0, context.xq)
        let fT = model.forward(wT, context.xq)
        let change = fT - f0

        // Kernel machines (`KernelMachines.all`, one file each under Machines/): those that apply
        // to this analysis, in the report's order.
        if !exactOnly { machinesProgress(false) }
        let machineContext = KernelMachineContext(
            run: run, model: model, settings: context.settings, outputs: context.outputs, train: context.train,
            heldOut: context.heldOut, queries: context.queries, mode: context.mode, blocks: context.blocks, kernelForm: kernelForm,
            xq: context.xq, w0: w0, wT: wT, wLin: wLin, f0: f0, fT: fT, change: change, kp: acc.kp, nSum: acc.nSum,
            nDiag: acc.nDiag, rwd: acc.rwd, jvpSum: acc.jvpSum, cSum: acc.cSum, gSum: acc.gSum)
        // They are independent and run side by side (each one's GEMMs on one BLAS thread, so each
        // computes the same bits on any thread): the two ridge machines' eigendecompositions, most
        // of the phase, each on a core of its own.
        let rules = KernelMachines.applicable(fullScope: !exactOnly, kernelForm: kernelForm)
        let outcomes = LockedBox<[Int: KernelMachineOutcome]>([:])
        Parallel.forEach(rules.count) { i in
            let outcome = rules[i].predict(machineContext)
            outcomes.withLock { $0[i] = outcome }
        }
        let machineOutcomes = outcomes.withLock { done in rules.indices.map { (rule: rules[$0], outcome: done[$0]!) } }
        // The reconstruction residuals read `exact`'s prediction (the same function, the same bits).
        let exact = ExactMachine.prediction(machineContext)

        // The over-parameterization diagnostics (ntk-family §5), from the machines' predictions
        // where they are the figures' predictors.
        func predictions(_ name: String) -> Matrix? {
            guard case .prediction(let p)? = machineOutcomes.first(where: { $0.rule.name == name })?.outcome else { return nil }
            return p
        }
        let diagnostics = exactOnly ? nil
            : OverParameterization(context: context, w0: w0, wT: wT, fT: fT, f0: f0, linearization: predictions("ntk0-lin"),
                                   kernelMachine: predictions("ntk0-km"), analyticQX: machineContext.analyticNTK.kernel,
                                   analyticMachine: predictions("ntkinf-km")).compute()

        if !exactOnly { machinesProgress(true) }

        // Fidelity per machine and split.
        let scoring = Scoring(context: context, f0: f0, fT: fT)
        var notes = notesBeforeMachines(acc, change: change)
        var machines: [AnalysisResult.KernelMachine] = []
        for (rule, outcome) in machineOutcomes {
            let desc = rule.description(in: machineContext)
            switch outcome {
            case .prediction(let prediction):
                machines.append(scoring.machine(rule.name, desc, prediction))
            case .ridge(let fit, let prediction):
                var km = scoring.machine(rule.name, desc, prediction, ridge: fit.ridge)
                km.negativeSpectralMass = fit.negativeMass
                km.negativeEigenvalues = fit.negativeCount
                machines.append(km)
            case .skipped(let note):
                notes.append(note)
                machines.append(.init(name: rule.name, description: desc, train: nil, test: nil, ridge: nil))
            }
        }
        if exactOnly {
            notes.append("scope exact: only the exact decomposition, the path kernel and path-km on held-out queries were computed")
        }

        let residual = { (rows: [Int]) in self.residual(rows, change: change, fT: fT, exact: exact, jvpSum: acc.jvpSum) }
        var result = AnalysisResult(
            settings: resolvedSettings,
            run: runSummary(notes: notes, scoring: scoring),
            replay: replay,
            reconstruction: .init(train: scoring.showTrain ? residual(scoring.train) : nil, test: scoring.showTest ? residual(scoring.test) : nil,
                                  meanNodesPerStep: Double(quadrature.nodeCount) / Double(max(context.steps, 1)), maxDepth: quadrature.maxDepth,
                                  exact: exactFigures),
            kernelMachines: machines, dynamics: dynamics, dynamicsSubset: dynamicsSubset,
            attribution: kernelForm ? attribution(acc, change: change, fT: fT) : [],
            seconds: Date().timeIntervalSince(started), toolVersion: "")
        result.diagnostics = diagnostics
        // Never a table of NaN: a run whose weights or outputs are too large for float64 kernels
        // (a diverged run its writer did not mark) is refused, naming the likely cause.
        let json = AnalysisStore.encode(result)
        if json.contains("\"nan\"") || acc.kp.data.contains(where: \.isNaN) {
            let largest = wT.reduce(0) { max($0, abs($1)) }
            throw AnalysisError("\(run.path): the analysis gives NaN (the final weights reach |w| = \(String(format: "%.3g", largest)), the outputs \(String(format: "%.3g", fT.data.reduce(0) { max($0, abs($1)) }))): the run probably diverged without being marked so; analyze a trace that stops before the divergence (pathkernel train marks it `diverged` and keeps the finite prefix)")
        }
        return (result, acc.kp)
    }

    /// The fidelity figures (math §4) of a machine's predictions on each split, against the
    /// network's outputs at both ends and the labels.
    struct Scoring {
        let context: AnalysisContext
        let f0: Matrix, fT: Matrix
        /// Labels of every query row (held-out, then training).
        let labels: [Double]
        /// Query rows of each split (train empty in scope exact).
        let test: [Int], train: [Int]
        let showTrain: Bool, showTest: Bool

        init(context: AnalysisContext, f0: Matrix, fT: Matrix) {
            let run = context.run, nT = context.heldOut
            self.context = context
            self.f0 = f0
            self.fT = fT
            labels = (0..<nT).map { run.testY[$0, 0] } + (0..<context.train).map { run.trainY[$0, 0] }
            test = Array(0..<nT)
            train = Array(nT..<context.queries)
            showTrain = context.settings.queries != .test
            showTest = context.settings.queries != .train && nT > 0
        }

        func fidelity(_ pred: Matrix, _ rows: [Int]) -> AnalysisResult.Fidelity? {
            guard !rows.isEmpty else { return nil }
            return PathAnalyzer.fidelity(pred: pred.rows(at: rows), network: fT.rows(at: rows), initial: f0.rows(at: rows),
                                         labels: rows.map { labels[$0] }, task: context.run.info.task)
        }

        func machine(_ name: String, _ desc: String, _ pred: Matrix, ridge: Double? = nil) -> AnalysisResult.KernelMachine {
            .init(name: name, description: desc, train: showTrain ? fidelity(pred, train) : nil,
                  test: showTest ? fidelity(pred, test) : nil, ridge: ridge)
        }

        /// The network's accuracy at w_T on `rows` (classification only).
        func accuracy(_ rows: [Int]) -> Double? {
            guard !rows.isEmpty, context.run.isClassification else { return nil }
            return PathAnalyzer.accuracy(fT.rows(at: rows), labels: rows.map { labels[$0] }, task: context.run.info.task)
        }
    }

    /// The settings as resolved, with the kernel used named for the report (math §2, §5).
    var resolvedSettings: AnalysisResult.Settings {
        let settings = context.settings
        return AnalysisResult.Settings(nodes: settings.nodes, adaptiveTolerance: settings.adaptiveTolerance,
                                       queries: settings.queries.rawValue, maxQueries: settings.maxQueries,
                                       kernel: context.mode.rawValue, ridge: settings.ridge,
                                       precision: settings.precision.rawValue, scope: settings.scope.rawValue,
                                       pathKernel: route.kernelName, quadrature: quadrature.kind == .exact ? "exact" : nil)
    }

    /// Exact quadrature's figures for the report (nil with the Gauss rules).
    var exactFigures: AnalysisResult.ExactQuadrature? {
        guard quadrature.kind == .exact else { return nil }
        let q = quadrature
        return .init(nodesPerPiece: q.rule.nodes.count, kinkedShare: Double(q.kinkedPairs) / Double(max(q.pairs, 1)),
                     breakpointsPerKinkedPair: Double(q.breakpoints) / Double(max(q.kinkedPairs, 1)),
                     nodesPerQueryStep: Double(q.queryNodes) / Double(max(q.pairs, 1)),
                     sweepEventsPerQueryStep: q.sweepEvents.map { Double($0.events) / Double(max(q.pairs, 1)) },
                     sweepSilentPerQueryStep: q.sweepEvents.map { Double($0.silent) / Double(max(q.pairs, 1)) })
    }

    /// The run's summary in the result, with the report's notes.
    func runSummary(notes: [String], scoring: Scoring) -> AnalysisResult.Run {
        let run = context.run, model = context.model
        return .init(name: run.info.name, model: model.summary,
                     parameterCount: model.parameterCount, task: run.info.task, loss: run.loss.rawValue,
                     optimizer: run.optimizer.summary, status: run.info.status.rawValue, precision: run.info.precision.rawValue,
                     steps: context.steps, trainCount: context.train, testQueries: context.heldOut, outputs: context.outputs,
                     networkTrainAccuracy: scoring.accuracy(scoring.train), networkTestAccuracy: scoring.accuracy(scoring.test),
                     notes: notes)
    }

    /// The step check's figures.
    var replay: AnalysisResult.Replay {
        let every = context.run.info.checkpointEvery
        return .init(mode: path.checkpointResolution
                        ? "checkpoint resolution (no optimizer state; segments of \(every) steps)"
                        : every == 1 ? "every step stored, each recomputed and compared" : "replayed between checkpoints every \(every) steps, compared at each",
                     checkpointEvery: every, largestMismatch: path.largestMismatch, tolerance: path.tolerance,
                     worstStep: path.worstStep, checkedSteps: path.checkedSteps, inconsistent: inconsistent)
    }

    /// The step check found stored weights that are not the recorded steps (`--allow-inconsistent-steps`).
    var inconsistent: Bool { path.largestMismatch > path.tolerance }

    /// The notes up to the machines': the run's and the route selection's, the weight-decay term's
    /// size, the route's own note, then (first of all) an inconsistent trace and a quadrature that
    /// reached its node budget, and last checkpoint resolution.
    func notesBeforeMachines(_ acc: KernelAccumulators, change: Matrix) -> [String] {
        var notes = self.notes
        let C = context.outputs, T = context.steps, settings = context.settings
        // Coupled decay λ_c is part of u_s, decoupled λ_d the term −η_tλ_d w_t (a recorded
        // OptimizerSpec has one of them at most, so λ is the spec's weight decay).
        let decoupledWD = form?.decoupledDecay ?? 0
        let lambdaWD = (form?.coupledDecay ?? 0) + decoupledWD
        if lambdaWD > 0 && (route.hasKernelForm || decoupledWD > 0) {
            var num = 0.0, den = 0.0
            for q in context.fidelityRows { for c in 0..<C { num += acc.rwd[q, c] * acc.rwd[q, c]; den += change[q, c] * change[q, c] } }
            let share = den > 0 ? (num / den).squareRoot() : 0
            notes.append("weight decay (\(decoupledWD > 0 ? "decoupled" : "coupled L2")\(form?.decayAnchor != nil ? " towards w₀" : ""), λ = \(lambdaWD)\(form?.decayByParameter != nil ? " at most, per parameter group" : "")): its term R_wd = Σ_t J̄_t(−η_tλ·\(form?.decayAnchor != nil ? "(w − w₀)" : "w")) has ‖R_wd‖/‖f_T − f_0‖ = \(String(format: "%.3g", share)) on the \(context.heldOut > 0 ? "held-out" : "training") queries")
        }
        if let note = route.note { notes.append(note) }
        if inconsistent {
            notes.insert("INCONSISTENT TRACE, analyzed anyway (--allow-inconsistent-steps): the stored weights are not gradient steps of the recorded loss and optimizer (step \(path.worstStep ?? 0): relative mismatch \(String(format: "%.2e", path.largestMismatch)), tolerance \(String(format: "%.0e", path.tolerance))). The JVP decomposition still adds up, but the path kernel's kernel form and every path machine describe the recorded loss, not this run", at: 0)
        }
        if quadrature.budgetSteps > 0 {
            notes.insert("adaptive quadrature stopped at its node budget (--max-nodes \(settings.maxNodes ?? PathAnalyzer.defaultMaxAdaptiveNodes) per step) on \(quadrature.budgetSteps) of \(T) steps before reaching --adaptive \(settings.adaptiveTolerance ?? 0): the reconstruction residual is what it reached (raise --max-nodes, or loosen --adaptive)", at: 0)
        }
        if path.checkpointResolution {
            notes.append("the decomposition is at checkpoint resolution: the trace stores no optimizer state for its \(context.run.optimizer.kind.rawValue) updates, so the steps between checkpoints cannot be replayed and each straight segment between checkpoints is integrated instead")
        }
        return notes
    }

    /// Reconstruction residuals on the query rows `rows`: `f_T − f_0` against the JVP sum, and the
    /// kernel form (`exact`) against f_T.
    func residual(_ rows: [Int], change: Matrix, fT: Matrix, exact: Matrix, jvpSum: Matrix) -> AnalysisResult.Residual? {
        guard !rows.isEmpty else { return nil }
        var num = 0.0, den = 0.0, mx = 0.0, km = 0.0
        for q in rows {
            for c in 0..<context.outputs {
                let r = change[q, c] - jvpSum[q, c]
                num += r * r
                den += change[q, c] * change[q, c]
                mx = max(mx, abs(r))
                km = max(km, abs(fT[q, c] - exact[q, c]))
            }
        }
        return .init(relativeResidual: den > 0 ? (num / den).squareRoot() : (num > 0 ? .infinity : 0), maxAbsResidual: mx, kernelFormMaxAbs: km)
    }

    /// Attribution for the first few queries (Docs/path-kernel.md §4, Attribution): each
    /// training example's contribution `−N(x, i)` to `f_T(x) − f_0(x)` in output units, as one
    /// scalar per example (the output for C = 1, the predicted class's output for classification,
    /// the projection on the change direction for regression with C > 1), the largest positive and
    /// negative ones, and their total over all examples; plus the shares of the change (`top`).
    /// Needs the kernel form (none for runs analyzed by the JVP route).
    func attribution(_ acc: KernelAccumulators, change: Matrix, fT: Matrix) -> [AnalysisResult.Attribution] {
        let C = context.outputs, n = context.train, run = context.run
        /// Contributions listed on each side.
        let listed = 5
        var attribution: [AnalysisResult.Attribution] = []
        for (a, (split, index, q)) in context.attributed.enumerated() {
            let d = (0..<C).map { change[q, $0] }
            let dd = d.reduce(0) { $0 + $1 * $1 }
            var shares: [(Int, Double)] = []
            for i in 0..<n {
                var dot = 0.0
                for c in 0..<C { dot += -acc.nAttr[a][c, i] * d[c] }
                shares.append((i, dd > 0 ? dot / dd : 0))
            }
            // The scalar per example: a weight vector u on the C outputs.
            let component: String, u: [Double]
            if C == 1 {
                (component, u) = ("output", [1])
            } else if run.isClassification {
                let k = (0..<C).max { fT[q, $0] < fT[q, $1] } ?? 0
                (component, u) = ("class \(k)", (0..<C).map { $0 == k ? 1 : 0 })
            } else {
                let norm = dd.squareRoot()
                (component, u) = ("change direction", d.map { norm > 0 ? $0 / norm : 0 })
            }
            var values: [(Int, Double)] = []
            var total = 0.0
            for i in 0..<n {
                var v = 0.0
                for c in 0..<C where u[c] != 0 { v += -acc.nAttr[a][c, i] * u[c] }
                values.append((i, v))
                total += v
            }
            let label = { (i: Int) in run.trainY[i, 0] }
            let up = values.filter { $0.1 > 0 }.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.prefix(listed)
            let down = values.filter { $0.1 < 0 }.sorted { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.prefix(listed)
            shares.sort { abs($0.1) > abs($1.1) }
            attribution.append(.init(split: split, query: index, output: (0..<C).map { fT[q, $0] }, change: d,
                                     top: shares.prefix(5).map { .init(trainIndex: $0.0, share: $0.1, label: label($0.0)) },
                                     component: component, componentChange: zip(d, u).reduce(0) { $0 + $1.0 * $1.1 },
                                     examplesSum: total, examples: n,
                                     pushedUp: up.map { .init(trainIndex: $0.0, value: $0.1, label: label($0.0)) },
                                     pushedDown: down.map { .init(trainIndex: $0.0, value: $0.1, label: label($0.0)) }))
        }
        return attribution
    }
}
