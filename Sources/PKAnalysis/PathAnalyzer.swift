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

    public init(settings: AnalysisSettings) { self.settings = settings }

    /// Runs the analysis; `progress` is called after each step of each phase and after the
    /// kernel machines (its `done`/`total` in estimated cost, see `AnalysisProgress`).
    public func analyze(reader: TraceReader, progress: (AnalysisProgress) -> Void = { _ in }) throws -> AnalysisResult {
        try analyzeWithKernel(reader: reader, progress: progress).result
    }

    /// The analysis and the accumulated path kernel `K^p` (rows: held-out queries, then every
    /// training point; `full`: (n_q·C) × (n·C) in C×C blocks, `trace`: n_q × n).
    public func analyzeWithKernel(reader: TraceReader, progress: (AnalysisProgress) -> Void = { _ in }) throws
        -> (result: AnalysisResult, kernel: Matrix) {
        try settings.validate()
        // Many small GEMMs: one BLAS thread (see `BLASThreads`).
        BLASThreads.set(1)
        let started = Date()
        let run = try TraceRun.load(reader)
        let model = run.model
        let C = model.outputDim
        let n = run.trainX.rows
        let T = run.steps
        let exactOnly = settings.scope == .exact
        let nT = settings.queries == .train ? 0 : min(run.testX.rows, settings.maxQueries ?? run.testX.rows)
        if exactOnly && nT == 0 { throw AnalysisError("--scope exact needs held-out queries, and \(run.path) has none") }
        // Queries: the held-out ones, then (scope full) every training point.
        let nQ = nT + (exactOnly ? 0 : n)
        var xq = Matrix(rows: nQ, cols: run.trainX.cols)
        if nT > 0 { xq.data.replaceSubrange(0..<(nT * xq.cols), with: run.testX.data[0..<(nT * xq.cols)]) }
        if !exactOnly { xq.data.replaceSubrange((nT * xq.cols)..<(nQ * xq.cols), with: run.trainX.data) }
        let mode = settings.kernel ?? PathAnalyzer.defaultKernel(queries: nQ, train: n, outputs: C)
        let blocks = mode == .full ? C : 1
        let attrRows: [(String, Int, Int)] = nT > 0 ? (0..<min(nT, 3)).map { ("test", $0, $0) }
                                                    : (0..<min(n, 3)).map { ("train", $0, nT + $0) }

        // Accumulators (see the type's doc). N(x, i) is kept only as far as it is read: its row
        // sums (the exact decomposition), its diagonal N(x_i, i) (path-km-self) and the rows of
        // the attributed queries.
        var kp = Matrix(rows: nQ * blocks, cols: n * blocks)
        var nSum = Matrix(rows: nQ, cols: C)
        var nDiag = Matrix(rows: exactOnly ? 0 : n, cols: C)
        var nAttr = attrRows.map { _ in Matrix(rows: C, cols: n) }
        var jvpSum = Matrix(rows: nQ, cols: C)
        var rwd = Matrix(rows: nQ, cols: C)
        var cSum = [Double](repeating: 0, count: n)
        var gSum = Matrix(rows: n, cols: C)
        var path = try WeightPath(run: run, reader: reader, allowMismatch: settings.allowInconsistentSteps == true)
        let w0 = path.current
        let f0Train = exactOnly ? Matrix(rows: 0, cols: 0) : model.forward(w0, run.trainX)
        var wLin = w0
        // The update rule, for the linearized network (ntk0-km) trained like the network.
        let optimizer = try run.optimizer.transformation(parameters: model.parameterTensors)
        // From the trace's own state at step 0 when it stores one (a resumed run's buffers).
        let storedState0 = try reader.optimizerState(step: 0)
        var linState = optimizer.initialState(parameterCount: model.parameterCount)
        if let s0 = storedState0, let restored = try? optimizer.restoreState(count: s0.count, names: s0.names, values: s0.values,
                                                                              parameterCount: model.parameterCount) {
            linState = restored
        }
        // A state at step 0 that is not fresh holds gradients from before the trace: no kernel form
        // (windowed or exact) can write the updates as sums of recorded gradients.
        let freshStart = (storedState0?.count ?? 0) == 0
        // The routes follow the optimizer chain's own kernel form (`KernelForm`, Docs/optimizers.md):
        // (S)GD, clipped or not, has the kernel form of math §2, momentum and Adam-type updates the
        // two-time (preconditioned) forms of §5 (the windowed momentum route in float64 only); a
        // chain without one has the JVP route only.
        let chainForm = optimizer.kernelForm
        // Coupled decay λ_c is part of u_s, decoupled λ_d the term −η_tλ_d w_t (a recorded
        // OptimizerSpec has one of them at most, so λ is the spec's weight decay).
        let decoupledWD = chainForm?.decoupledDecay ?? 0
        let lambdaWD = (chainForm?.coupledDecay ?? 0) + decoupledWD
        let mu = chainForm?.momentum?.rho ?? 0, damp = chainForm?.momentum?.dampening ?? 0
        let nesterov = chainForm?.momentum?.nesterov ?? false
        // Momentum with --momentum-tolerance (or too many steps × parameters to keep every w_t for
        // the exact sum): the windowed two-time kernel, in the forward pass (coupled decay only).
        let sgdMomentum = chainForm?.momentum != nil && decoupledWD == 0 && settings.precision == .f64
        let pathBytes = 8 * Double(T) * Double(model.parameterCount)
        let momentumForm = sgdMomentum && freshStart && (settings.momentumTolerance != nil || pathBytes > 4e9)
        let momentumTolerance = settings.momentumTolerance ?? 1e-8
        // Momentum (by default), Adam, AdamW, RMSProp: the exact two-time kernel of PreconditionedForm,
        // computed backwards in time after the forward pass (either precision); it keeps w_t (and D_t)
        // of every step. Its K^p exists only at the end, so the dynamics have no path-km error.
        var notes = run.notes
        if momentumForm && settings.momentumTolerance == nil {
            notes.append("the exact momentum kernel would keep w_t of all \(T) steps (\(String(format: "%.1f", pathBytes / 1e9)) GB): summed over a window instead, tail < \(momentumTolerance)")
        }
        if chainForm == nil {
            notes.append("the optimizer \(optimizer.description) has no kernel form (Docs/optimizers.md, Kernel forms): exact decomposition by the JVP route")
        }
        var preconditioned: PreconditionedForm? = nil
        if let form = chainForm.flatMap({ PreconditionedForm($0, recordedKind: run.optimizer.kind) }), !path.checkpointResolution, !momentumForm {
            let bytes = (form.hasPreconditioner ? 16 : 8) * Double(T) * Double(model.parameterCount)
            if let s0 = storedState0, s0.count > 0 {
                notes.append("the trace's optimizer state at step 0 is not fresh (\(s0.count) earlier updates): its buffers hold gradients from before the trace, which are not recorded, so \(form.name)'s path kernel is skipped (exact decomposition by the JVP route)")
            } else if bytes > 4e9 {
                notes.append("\(form.name)'s path kernel would hold w_t and D_t of all \(T) steps (\(String(format: "%.1f", bytes / 1e9)) GB); skipped (exact decomposition by the JVP route)")
            } else {
                preconditioned = form
            }
        }
        // The exact backward-in-time kernel (momentum, Adam, AdamW, RMSProp).
        let adaptiveForm = preconditioned != nil
        var pcState = optimizer.initialState(parameterCount: model.parameterCount)
        let kernelForm = (chainForm?.update == .plain || momentumForm || adaptiveForm) && !path.checkpointResolution
        // Progress in estimated cost (AnalysisProgress), so that the ETA holds across phases.
        let meanBatch = Double(run.stepRecords.reduce(0) { $0 + $1.batch.count }) / Double(max(T, 1))
        let windowSides = momentumForm && mu > 0 ? min(Double(T), max(1, (log(momentumTolerance) / log(mu)).rounded(.up))) : 1
        let cost = AnalysisCostModel(model: model, queries: nQ, train: n, meanBatch: meanBatch, nodes: settings.nodes,
                                     blocks: blocks, kernelForm: kernelForm, backward: adaptiveForm,
                                     querySide: preconditioned.map { PathAnalyzer.querySideScalars(model: model, form: $0) }, windowSides: windowSides,
                                     machines: exactOnly ? nil : n * blocks,
                                     dynamicsPerStep: exactOnly ? 0 : Double(min(n, 100)) / Double(max(1, T / 40)))
        let totalWork = Double(T) * (cost.forwardPerStep + cost.backwardPerStep) + cost.machines
        func momentumCoefficient(t: Int, s: Int) -> Double {
            PathAnalyzer.momentumCoefficient(t: t, s: s, momentum: mu, dampening: damp, nesterov: nesterov)
        }

        // Dynamics on a subset of training points, at about 40 sampled steps.
        let dynIdx = PathAnalyzer.evenlySpaced(n, count: min(n, 100))
        let xDyn = run.trainX.rows(at: dynIdx)
        let yyT = PathAnalyzer.targetGram(run.trainY.rows(at: dynIdx), task: run.info.task, outputs: C)
        let sampleEvery = max(1, T / 40)
        var theta0: Matrix? = nil
        var dynamics: [AnalysisResult.DynamicsPoint] = []
        let fidelityRows = nT > 0 ? Array(0..<nT) : Array(0..<n).map { $0 + nT }
        func sampleDynamics(step: Int, w: [Double]) {
            guard !exactOnly else { return }
            let f = model.features(w, xDyn)
            let theta = TangentFeatures.kernel(f, f, mode: .trace)
            if theta0 == nil { theta0 = theta }
            let dist = 1 - PathAnalyzer.cosine(theta0!, theta)
            let align = PathAnalyzer.cosine(theta, yyT)
            let travel = Vec.norm(zip(w, w0).map { $0 - $1 }) / max(Vec.norm(w0), .leastNormalMagnitude)
            var pkm: Double? = nil
            if step > 0 && kernelForm && !adaptiveForm {
                let a = PathAnalyzer.fixedCoefficients(cSum: cSum, gSum: gSum)
                var num = 0.0, den = 0.0
                for q in fidelityRows {
                    let pred = PathAnalyzer.kernelTimes(kp, row: q, coefficients: a, blocks: blocks, outputs: C)
                    for c in 0..<C {
                        let ft = jvpSum[q, c]   // f_t − f_0 up to quadrature
                        num += (pred[c] - ft) * (pred[c] - ft)
                        den += ft * ft
                    }
                }
                pkm = den > 0 ? (num / den).squareRoot() : nil
            }
            dynamics.append(.init(step: step, kernelDistance: dist, alignment: align, weightTravel: travel, pathKmError: pkm))
        }

        // Query rows per block: each block's kernels (K̄ and, for trace, N) stay under about 128 MB.
        let rowBytes = 8 * n * blocks * blocks + (mode == .trace ? 8 * C * n : 0)
        // A layer network's features are its Jacobian rows (C·P scalars per example): at most
        // about 256 MB of them per block too.
        let featureRows = (256 << 20) / max(8 * model.featureScalarsPerExample, 1)
        let chunk = model is MLP ? max(64, min(nQ, 128 << 20 / max(rowBytes, 1)))
                                 : max(16, min(nQ, 128 << 20 / max(rowBytes, 1), featureRows))
        let queryBlocks = stride(from: 0, to: nQ, by: chunk).map { $0..<min($0 + chunk, nQ) }
        let xqBlocks = queryBlocks.map { xq.rows($0) }
        let attrIndex = Dictionary(uniqueKeysWithValues: attrRows.enumerated().map { ($1.2, $0) })

        /// One segment's quadrature in precision S: per node the queries' features (with the fused
        /// JVPs) and their kernels against each training side in `sides` (the current step's, and
        /// with momentum the earlier steps' still in the window), weighted by `η_t c_{t,s}` and
        /// accumulated in f64.
        func integrate<S: BLASScalar>(_: S.Type, seg: WeightPath.Segment, sides weighted: [(side: TrainingSide<S>, weight: Double)],
                                      nodes: [(s: Double, w: Double)], tangents: [[Double]]) {
            // Sides joined into groups of at most max(4n, one batch) examples (one kernel call per
            // group, node and query block; memory stays bounded for full-batch momentum), each
            // example column carrying its side's weight.
            var groups: [[(side: TrainingSide<S>, weight: Double)]] = [[]]
            var columns = 0
            for w in weighted {
                if columns > 0 && columns + w.side.batch.count > 4 * n { groups.append([]); columns = 0 }
                groups[groups.count - 1].append(w)
                columns += w.side.batch.count
            }
            let sides = groups.map { group in
                (group.count == 1 ? group[0].side : TrainingSide<S>.concatenating(group.map(\.side)),
                 group.flatMap { w in [Double](repeating: w.weight, count: w.side.batch.count) })
            }
            for (s, omega) in nodes {
                var ws = seg.start
                Vec.axpy(s, tangents[0], &ws)   // tangents[0] is Δw_t
                for (qb, rows) in queryBlocks.enumerated() {
                    let fq = model.tangentFeatures(ws, xqBlocks[qb], as: S.self, tangents: tangents)
                    // JΔw (reconstruction) and J·(decay part of Δw) (the term R_wd) from the same pass.
                    for (j, jv) in fq.outputTangents.enumerated() {
                        for r in 0..<rows.count { for c in 0..<C {
                            let v = omega * Double(jv[r, c])
                            if j == 0 { jvpSum[rows.lowerBound + r, c] += v } else { rwd[rows.lowerBound + r, c] += v }
                        } }
                    }
                    for (side, columnWeight) in sides {
                        let batch = side.batch, nb = batch.count, g = side.g
                        let ks = TangentFeatures.kernels(fq, mode == .trace ? [(side.fb, .trace), (side.fbg!, .full)] : [(side.fb, .full)])
                        let kk = ks[0]
                        kk.data.withUnsafeBufferPointer { kkp in
                            kp.data.withUnsafeMutableBufferPointer { kpp in
                                for r in 0..<(rows.count * blocks) {
                                    let src = r * nb * blocks, dst = (rows.lowerBound * blocks + r) * n * blocks
                                    for (b, i) in batch.enumerated() {
                                        let to = dst + i * blocks, from = src + b * blocks, w = omega * columnWeight[b]
                                        for k in 0..<blocks {
                                            let v: Double = Double(kkp[from + k])
                                            kpp[to + k] += w * v
                                        }
                                    }
                                }
                            }
                        }
                        // N's contributions: Σ_k K̄_ck(x, x_b) g_bk, from K̄ (full) or the contracted kernel (trace).
                        for r in 0..<rows.count {
                            let q = rows.lowerBound + r
                            let diag = (!exactOnly && q >= nT) ? q - nT : -1
                            let attr = attrIndex[q]
                            for c in 0..<C {
                                var rowSum = 0.0
                                for (b, i) in batch.enumerated() {
                                    let w = omega * columnWeight[b]
                                    var v = 0.0
                                    if mode == .trace {
                                        v = Double(ks[1][r * C + c, b])
                                    } else {
                                        let base = (r * C + c) * nb * C + b * C
                                        for k in 0..<C { v += Double(kk.data[base + k]) * g[b, k] }
                                    }
                                    rowSum += w * v
                                    if i == diag { nDiag[i, c] += w * v }
                                    if let attr { nAttr[attr][c, i] += w * v }
                                }
                                nSum[q, c] += rowSum
                            }
                        }
                    }
                }
            }
        }

        /// The training side of step `seg.step`: features at `w_s`, `g_{i,s}`, the scale `s_s/|B_s|`.
        func trainingSide<S: BLASScalar>(_: S.Type, seg: WeightPath.Segment, batch: [Int], xb: Matrix, yb: Matrix) -> TrainingSide<S> {
            let fb = model.tangentFeatures(seg.start, xb, as: S.self, tangents: [])
            let g = seg.outputGradient ?? run.loss.evaluate(outputs: Matrix(fb.outputs), targets: yb).perExampleGradient
            return TrainingSide(step: seg.step, batch: batch, fb: fb, fbg: mode == .trace ? fb.contracted(with: g) : nil, g: g,
                                scale: (seg.record.clipScale ?? 1) / Double(batch.count))
        }
        // Momentum (math §5): Δw_t = −η_t Σ_{s≤t} c_{t,s} u_s; earlier training sides stay in a
        // window until μ^{t−s} drops below `momentumTolerance` (float64 only).
        var window: [TrainingSide<Double>] = []
        var decayBuffer: [Double]? = nil

        var nodeCount = 0, maxDepth = 0, budgetSteps = 0
        let rule = GaussLegendre(nodes: settings.nodes)
        while let seg = try path.next() {
            let t = seg.step
            if (t..<(t + seg.span)).contains(where: { $0 % sampleEvery == 0 }) { sampleDynamics(step: t, w: seg.start) }
            let delta = seg.delta
            let batch = seg.record.batch.map(Int.init)
            let xb = run.trainX.rows(at: batch)
            let yb = run.trainY.rows(at: batch)
            let eta = seg.record.learningRate   // clipping's s_t/|B_t| is in TrainingSide.scale

            // Quadrature nodes for this segment.
            var nodes: [(s: Double, w: Double)]
            if let tol = settings.adaptiveTolerance {
                let (ns, depth, capped) = PathAnalyzer.adaptiveNodes(model: model, start: seg.start, delta: delta, x: xq, rule: rule,
                                                                      tolerance: tol / Double(T),
                                                                      maxNodes: settings.maxNodes ?? PathAnalyzer.defaultMaxAdaptiveNodes)
                nodes = ns
                maxDepth = max(maxDepth, depth)
                if capped { budgetSteps += 1 }
            } else {
                nodes = zip(rule.nodes, rule.weights).map { ($0, $1) }
            }
            nodeCount += nodes.count

            // The decay part of Δw_t: −η_t λ Σ_s c_{t,s} w_s (just −η_t λ w_t without momentum).
            var decayTangent: [Double]? = nil
            if lambdaWD > 0 && !adaptiveForm {
                var dec = seg.start
                if momentumForm {
                    var buf = decayBuffer ?? seg.start
                    if decayBuffer != nil {
                        for k in buf.indices { buf[k] = mu * buf[k] + (1 - damp) * seg.start[k] }
                    }
                    decayBuffer = buf
                    dec = nesterov ? zip(seg.start, buf).map { $0 + mu * $1 } : buf
                }
                decayTangent = chainForm!.decay(of: dec, times: -eta, lambda: lambdaWD)   // λ_k per parameter with groups
            }
            let tangents = decayTangent.map { [delta, $0] } ?? [delta]
            var sides: [(step: Int, batch: [Int], g: Matrix, weight: Double)] = []
            if let form = preconditioned {
                // The backward pass (PreconditionedForm) does all the query-side work, JVPs included;
                // here only what it needs of step t: w_t, the batch, and D_t from the optimizer state
                // after update t (the trace's, stored or replayed, else our own update).
                var d: [Double] = []
                if form.hasPreconditioner {
                    if let st = seg.state {
                        pcState = st
                    } else {
                        pcState = optimizer.step(model: model, parameters: seg.start, state: pcState, inputs: xb, targets: yb,
                                                 loss: run.loss, learningRate: eta).state ?? pcState
                    }
                    d = optimizer.preconditioner(pcState) ?? [Double](repeating: 1, count: model.parameterCount)
                }
                preconditioned!.steps.append(.init(start: seg.start, preconditioner: d, batch: batch, learningRate: eta,
                                                   scale: (seg.record.clipScale ?? 1) / Double(batch.count), nodes: nodes))
            } else if !kernelForm {
                // Σ_j ω_j J(x; w_t + s_jΔw_t)Δw_t only: the whole update is the decomposition's term.
                // AdamW's decoupled decay −η_tλw_t is a separate part of Δw_t: its share (R_wd) is sized too.
                let decoupled = decoupledWD > 0 ? chainForm!.decay(of: seg.start, times: -eta, lambda: decoupledWD) : nil
                for (s, omega) in nodes {
                    var ws = seg.start
                    Vec.axpy(s, delta, &ws)
                    let jv = model.jvp(ws, xq, tangent: delta)
                    for i in jvpSum.data.indices { jvpSum.data[i] += omega * jv.data[i] }
                    if let decoupled {
                        let jd = model.jvp(ws, xq, tangent: decoupled)
                        for i in rwd.data.indices { rwd.data[i] += omega * jd.data[i] }
                    }
                }
            } else if momentumForm {
                window.append(trainingSide(Double.self, seg: seg, batch: batch, xb: xb, yb: yb))
                window.removeAll { pow(mu, Double(t - $0.step)) < momentumTolerance && $0.step != t }
                let weighted = window.map { ($0, eta * momentumCoefficient(t: t, s: $0.step) * $0.scale) }
                integrate(Double.self, seg: seg, sides: weighted, nodes: nodes, tangents: tangents)
                sides = weighted.map { ($0.0.step, $0.0.batch, $0.0.g, $0.1) }
            } else {
                switch settings.precision {
                case .f64:
                    let side = trainingSide(Double.self, seg: seg, batch: batch, xb: xb, yb: yb)
                    integrate(Double.self, seg: seg, sides: [(side, eta * side.scale)], nodes: nodes, tangents: tangents)
                    sides = [(t, batch, side.g, eta * side.scale)]
                case .f32:
                    let side = trainingSide(Float.self, seg: seg, batch: batch, xb: xb, yb: yb)
                    integrate(Float.self, seg: seg, sides: [(side, eta * side.scale)], nodes: nodes, tangents: tangents)
                    sides = [(t, batch, side.g, eta * side.scale)]
                }
            }
            for side in sides {
                for (b, i) in side.batch.enumerated() {
                    cSum[i] += side.weight
                    for c in 0..<C { gSum[i, c] += side.weight * side.g[b, c] }
                }
            }

            // The linearized network (ntk0-km), trained with the same batches and rates.
            // (Every recorded step of the segment: several at checkpoint resolution.)
            if !exactOnly {
                for record in run.stepRecords[t..<(t + seg.span)] {
                    let b = record.batch.map(Int.init)
                    let xs = seg.span == 1 ? xb : run.trainX.rows(at: b), ys = seg.span == 1 ? yb : run.trainY.rows(at: b)
                    let fLin = f0Train.rows(at: b) + model.jvp(w0, xs, tangent: zip(wLin, w0).map { $0 - $1 })
                    let (_, gLin) = run.loss.evaluate(outputs: fLin, targets: ys)
                    let gradLin = model.vjp(w0, xs, cotangent: (1.0 / Double(b.count)) * gLin)
                    let u = optimizer.update(gradLin, state: linState, parameters: wLin, learningRate: record.learningRate)
                    linState = u.state
                    Vec.axpy(1, u.updates, &wLin)
                }
            }
            progress(AnalysisProgress(done: Double(t + seg.span) * cost.forwardPerStep, total: totalWork, phase: .forward,
                                      step: t + seg.span, steps: T))
        }
        let wT = path.current
        sampleDynamics(step: T, w: wT)
        if var form = preconditioned {
            form.end = wT
            var acc = KernelAccumulators(kp: kp, nSum: nSum, nDiag: nDiag, nAttr: nAttr, rwd: rwd, jvpSum: jvpSum, cSum: cSum, gSum: gSum)
            kp = Matrix(rows: 0, cols: 0)   // one copy of K^p
            let report: (Int, Int) -> Void = { done, total in
                let part = Double(done) / Double(max(total, 1))
                progress(AnalysisProgress(done: Double(T) * (cost.forwardPerStep + part * cost.backwardPerStep), total: totalWork,
                                          phase: .backward, step: Int((part * Double(T)).rounded()), steps: T))
            }
            switch settings.precision {
            case .f64:
                PathAnalyzer.accumulatePreconditioned(Double.self, form, model: model, run: run, xq: xq, nT: nT, exactOnly: exactOnly,
                                                      mode: mode, attrIndex: attrIndex, into: &acc, progress: report)
            case .f32:
                PathAnalyzer.accumulatePreconditioned(Float.self, form, model: model, run: run, xq: xq, nT: nT, exactOnly: exactOnly,
                                                      mode: mode, attrIndex: attrIndex, into: &acc, progress: report)
            }
            (kp, nSum, nDiag, nAttr, rwd, jvpSum, cSum, gSum) = (acc.kp, acc.nSum, acc.nDiag, acc.nAttr, acc.rwd, acc.jvpSum, acc.cSum, acc.gSum)
        }

        // Network outputs at both ends.
        let f0 = model.forward(w0, xq)
        let fT = model.forward(wT, xq)
        let change = fT - f0

        // Kernel machines (`KernelMachines.all`, one file each under Machines/): those that apply
        // to this analysis, in the report's order.
        if !exactOnly { progress(AnalysisProgress(done: totalWork - cost.machines, total: totalWork, phase: .machines, step: 0, steps: 0)) }
        let machineContext = KernelMachineContext(
            run: run, model: model, settings: settings, outputs: C, train: n, heldOut: nT, queries: nQ, mode: mode, blocks: blocks,
            kernelForm: kernelForm, xq: xq, w0: w0, wT: wT, wLin: wLin, f0: f0, fT: fT, change: change, kp: kp,
            nSum: nSum, nDiag: nDiag, rwd: rwd, jvpSum: jvpSum, cSum: cSum, gSum: gSum)
        let machineOutcomes = KernelMachines.applicable(fullScope: !exactOnly, kernelForm: kernelForm).map { rule in
            (rule: rule, outcome: rule.predict(machineContext))
        }
        // The reconstruction residuals read `exact`'s prediction (the same function, the same bits).
        let exact = ExactMachine.prediction(machineContext)

        if !exactOnly { progress(AnalysisProgress(done: totalWork, total: totalWork, phase: .machines, step: 0, steps: 0)) }

        // Fidelity per machine and split.
        let labels: [Double] = (0..<nT).map { run.testY[$0, 0] } + (0..<n).map { run.trainY[$0, 0] }
        let splits: [(String, [Int])] = [("test", Array(0..<nT)), ("train", Array(nT..<nQ))]   // train empty in scope exact
        func fid(_ pred: Matrix, _ rows: [Int]) -> AnalysisResult.Fidelity? {
            guard !rows.isEmpty else { return nil }
            return PathAnalyzer.fidelity(pred: pred.rows(at: rows), network: fT.rows(at: rows), initial: f0.rows(at: rows),
                                         labels: rows.map { labels[$0] }, task: run.info.task)
        }
        let showTrain = settings.queries != .test, showTest = settings.queries != .train && nT > 0
        func machine(_ name: String, _ desc: String, _ pred: Matrix, ridge: Double? = nil) -> AnalysisResult.KernelMachine {
            .init(name: name, description: desc, train: showTrain ? fid(pred, splits[1].1) : nil,
                  test: showTest ? fid(pred, splits[0].1) : nil, ridge: ridge)
        }
        if lambdaWD > 0 && (kernelForm || decoupledWD > 0) {
            let rows = fidelityRows
            var num = 0.0, den = 0.0
            for q in rows { for c in 0..<C { num += rwd[q, c] * rwd[q, c]; den += change[q, c] * change[q, c] } }
            let share = den > 0 ? (num / den).squareRoot() : 0
            notes.append("weight decay (\(decoupledWD > 0 ? "decoupled" : "coupled L2"), λ = \(lambdaWD)\(chainForm?.decayByParameter != nil ? " at most, per parameter group" : "")): its term R_wd = Σ_t J̄_t(−η_tλ·w) has ‖R_wd‖/‖f_T − f_0‖ = \(String(format: "%.3g", share)) on the \(nT > 0 ? "held-out" : "training") queries")
        }
        if momentumForm && kernelForm {
            notes.append("momentum \(mu)\(nesterov ? " (Nesterov)" : ""): two-time path kernel J̄_t(x)·J(x_i; w_s)ᵀ weighted by η_t c_{t,s}; earlier steps leave it once μ^{t−s} < \(momentumTolerance) (what they would add shows in the kernel-form residual)")
        }
        if let preconditioned { notes.append(preconditioned.description) }
        let inconsistent = path.largestMismatch > path.tolerance
        if inconsistent {
            notes.insert("INCONSISTENT TRACE, analyzed anyway (--allow-inconsistent-steps): the stored weights are not gradient steps of the recorded loss and optimizer (step \(path.worstStep ?? 0): relative mismatch \(String(format: "%.2e", path.largestMismatch)), tolerance \(String(format: "%.0e", path.tolerance))). The JVP decomposition still adds up, but the path kernel's kernel form and every path machine describe the recorded loss, not this run", at: 0)
        }
        if budgetSteps > 0 {
            notes.insert("adaptive quadrature stopped at its node budget (--max-nodes \(settings.maxNodes ?? PathAnalyzer.defaultMaxAdaptiveNodes) per step) on \(budgetSteps) of \(T) steps before reaching --adaptive \(settings.adaptiveTolerance ?? 0): the reconstruction residual is what it reached (raise --max-nodes, or loosen --adaptive)", at: 0)
        }
        if path.checkpointResolution {
            notes.append("the decomposition is at checkpoint resolution: the trace stores no optimizer state for its \(run.optimizer.kind.rawValue) updates, so the steps between checkpoints cannot be replayed and each straight segment between checkpoints is integrated instead")
        }
        var machines: [AnalysisResult.KernelMachine] = []
        for (rule, outcome) in machineOutcomes {
            let desc = rule.description(in: machineContext)
            switch outcome {
            case .prediction(let prediction):
                machines.append(machine(rule.name, desc, prediction))
            case .ridge(let fit, let prediction):
                var km = machine(rule.name, desc, prediction, ridge: fit.ridge)
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

        // Reconstruction residuals.
        func residual(_ rows: [Int]) -> AnalysisResult.Residual? {
            guard !rows.isEmpty else { return nil }
            var num = 0.0, den = 0.0, mx = 0.0, km = 0.0
            for q in rows {
                for c in 0..<C {
                    let r = change[q, c] - jvpSum[q, c]
                    num += r * r
                    den += change[q, c] * change[q, c]
                    mx = max(mx, abs(r))
                    km = max(km, abs(fT[q, c] - exact[q, c]))
                }
            }
            return .init(relativeResidual: den > 0 ? (num / den).squareRoot() : (num > 0 ? .infinity : 0), maxAbsResidual: mx, kernelFormMaxAbs: km)
        }

        // Attribution for the first few queries.
        var attribution: [AnalysisResult.Attribution] = []
        // Attribution needs N(x, i), the kernel form: none for optimizers analyzed by the JVP route.
        for (a, (split, index, q)) in attrRows.enumerated() where kernelForm {
            let d = (0..<C).map { change[q, $0] }
            let dd = d.reduce(0) { $0 + $1 * $1 }
            var shares: [(Int, Double)] = []
            for i in 0..<n {
                var dot = 0.0
                for c in 0..<C { dot += -nAttr[a][c, i] * d[c] }
                shares.append((i, dd > 0 ? dot / dd : 0))
            }
            shares.sort { abs($0.1) > abs($1.1) }
            attribution.append(.init(split: split, query: index, output: (0..<C).map { fT[q, $0] }, change: d,
                                     top: shares.prefix(5).map { .init(trainIndex: $0.0, share: $0.1, label: run.trainY[$0.0, 0]) }))
        }

        let netAcc: (Matrix, [Int]) -> Double? = { f, rows in
            guard !rows.isEmpty, run.isClassification else { return nil }
            return PathAnalyzer.accuracy(f.rows(at: rows), labels: rows.map { labels[$0] }, task: run.info.task)
        }
        // The kernel used, named for the report (math §2, §5).
        let clipped = chainForm?.clipped == true ? ", recorded clip scales" : ""
        let pathKernelName: String
        if !kernelForm {
            pathKernelName = "none: the exact decomposition by the JVP route only (see the notes)"
        } else if let preconditioned {
            pathKernelName = preconditioned.kernelName + clipped
        } else if momentumForm {
            pathKernelName = "two-time path kernel (momentum \(mu)\(nesterov ? ", Nesterov" : "")), tail < \(momentumTolerance)\(clipped)"
        } else {
            pathKernelName = "path kernel Σ_t η_t/|B_t| K̄_t(x, x_i) of (S)GD\(clipped)"
        }
        let resolved = AnalysisResult.Settings(nodes: settings.nodes, adaptiveTolerance: settings.adaptiveTolerance,
                                               queries: settings.queries.rawValue, maxQueries: settings.maxQueries,
                                               kernel: mode.rawValue, ridge: settings.ridge,
                                               precision: settings.precision.rawValue, scope: settings.scope.rawValue,
                                               pathKernel: pathKernelName)
        let result = AnalysisResult(
            settings: resolved,
            run: .init(name: run.info.name, model: model.summary,
                       parameterCount: model.parameterCount, task: run.info.task, loss: run.loss.rawValue,
                       optimizer: run.optimizer.summary, status: run.info.status.rawValue, precision: run.info.precision.rawValue,
                       steps: T, trainCount: n, testQueries: nT, outputs: C,
                       networkTrainAccuracy: netAcc(fT, splits[1].1), networkTestAccuracy: netAcc(fT, splits[0].1),
                       notes: notes),
            replay: .init(mode: path.checkpointResolution
                            ? "checkpoint resolution (no optimizer state; segments of \(run.info.checkpointEvery) steps)"
                            : run.info.checkpointEvery == 1 ? "every step stored, each recomputed and compared" : "replayed between checkpoints every \(run.info.checkpointEvery) steps, compared at each",
                          checkpointEvery: run.info.checkpointEvery, largestMismatch: path.largestMismatch, tolerance: path.tolerance,
                          worstStep: path.worstStep, checkedSteps: path.checkedSteps, inconsistent: inconsistent),
            reconstruction: .init(train: showTrain ? residual(splits[1].1) : nil, test: showTest ? residual(splits[0].1) : nil,
                                  meanNodesPerStep: Double(nodeCount) / Double(max(T, 1)), maxDepth: maxDepth),
            kernelMachines: machines, dynamics: dynamics, dynamicsSubset: dynIdx.count, attribution: attribution,
            seconds: Date().timeIntervalSince(started), toolVersion: "")
        // Never a table of NaN: a run whose weights or outputs are too large for float64 kernels
        // (a diverged run its writer did not mark) is refused, naming the likely cause.
        let json = AnalysisStore.encode(result)
        if json.contains("\"nan\"") || kp.data.contains(where: \.isNaN) {
            let largest = wT.reduce(0) { max($0, abs($1)) }
            throw AnalysisError("\(run.path): the analysis gives NaN (the final weights reach |w| = \(String(format: "%.3g", largest)), the outputs \(String(format: "%.3g", fT.data.reduce(0) { max($0, abs($1)) }))): the run probably diverged without being marked so; analyze a trace that stops before the divergence (pathkernel train marks it `diverged` and keeps the finite prefix)")
        }
        return (result, kp)
    }
}

extension PathAnalyzer {
    /// `c_{t,s}` of `Δw_t = −η_t Σ_{s≤t} c_{t,s} u_s` for PyTorch's momentum (`u_s` the batch
    /// gradient plus coupled decay): heavy ball `μ^{t−s}` times 1 for `s = 0` and `1 − dampening`
    /// after; Nesterov `μ` times that plus 1 at `s = t`.
    static func momentumCoefficient(t: Int, s: Int, momentum mu: Double, dampening: Double, nesterov: Bool) -> Double {
        var c = pow(mu, Double(t - s)) * (s == 0 ? 1 : 1 - dampening)
        if nesterov { c = mu * c + (s == t ? 1 : 0) }
        return c
    }
}

/// One step's training side of the kernel: features at `w_s` on its batch, `g_{i,s}`, and the
/// per-example scale `s_s/|B_s|` (clip scale over batch size).
struct TrainingSide<S: BLASScalar> {
    let step: Int
    let batch: [Int]
    let fb: TangentFeatures<S>
    let fbg: TangentFeatures<S>?
    let g: Matrix
    let scale: Double

    /// The sides' examples one after another (batch indices, features, gradients); `step` and
    /// `scale` of the first (per-side weights are kept by the caller).
    static func concatenating(_ parts: [TrainingSide]) -> TrainingSide {
        let g = Matrix(rows: parts.reduce(0) { $0 + $1.g.rows }, cols: parts[0].g.cols, data: parts.flatMap(\.g.data))
        return TrainingSide(step: parts[0].step, batch: parts.flatMap(\.batch),
                            fb: TangentFeatures.concatenating(parts.map(\.fb)),
                            fbg: parts[0].fbg == nil ? nil : TangentFeatures.concatenating(parts.map { $0.fbg! }),
                            g: g, scale: parts[0].scale)
    }
}
